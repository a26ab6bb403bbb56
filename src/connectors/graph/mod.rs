//! Microsoft Graph (Entra ID) connector.
//!
//! Reads users, groups (with members), organisational contacts and devices from Microsoft
//! Graph v1.0 and writes users, groups and group memberships back through `$batch`.
//!
//! - **Identity.** The CS anchor of every object is its Graph object id (stable, what every
//!   import reports). Objects get a synthetic DN, `CN=<objectId>,OU=Users` (`OU=Groups`,
//!   `OU=Contacts`, `OU=Devices`); `member` and `manager` are references to those DNs.
//! - **Sync anchor.** Every object dirsync creates carries a directory extension
//!   (`anchor_attribute`, by default `extension_<appIdNoDashes>_dirsyncAnchor`, registered on
//!   the application when missing) and, for users, `onPremisesImmutableId` when Graph accepts
//!   the value. A create first looks the anchor up (hard match), then in
//!   `/directory/deletedItems` (restore instead of create), then optionally soft-matches on
//!   `userPrincipalName` or `mail`. So a create retried after a timeout or a lost result never
//!   duplicates.
//! - **Attributes** carry their Graph property names (`displayName`, `userPrincipalName`,
//!   `proxyAddresses`, ...). Special attributes on export: `member` (groups), `manager`
//!   (users), `password` (users: the initial password; otherwise a random strong one is
//!   generated) and the anchor attribute.
//! - **Export** goes through `$batch` (at most 20 requests per call, `dependsOn` to order the
//!   requests of one object), with per-item results, per-item 429 handling and a client-side
//!   write pacer at the documented quota (3,000 writes per 150 s per app and tenant).
//! - **Delta import** uses `/users/delta` and `/groups/delta` (`members@delta`); the watermark
//!   is a JSON object with both deltaLinks. An expired delta token (400 `syncStateNotFound`)
//!   is reported as [`ConnectorError::WatermarkExpired`] so that the engine runs a full
//!   import. Contacts and devices are refreshed by full imports only.
//! - A rename (`new_dn`) is accepted and ignored: Graph objects have no DN.

mod auth;
mod export;
mod http;
mod import;
pub mod settings;

pub use settings::{CertificateSettings, GraphSettings, SoftMatch};

use crate::connectors::{
    Capabilities, Connector, ConnectorError, ConnectorSpaceView, ExportRequest, ExportResult,
    ImportSink, Watermark,
};
use crate::model::{AttrType, AttributeDef, Dn, ObjectTypeDef, Rdn, Schema, Value};
use std::path::Path;
use std::sync::Arc;

/// The kinds of Graph directory objects the connector knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `microsoft.graph.user`.
    User,
    /// `microsoft.graph.group`.
    Group,
    /// `microsoft.graph.orgContact`.
    Contact,
    /// `microsoft.graph.device`.
    Device,
}

impl Kind {
    /// From a connector object type.
    pub fn from_object_type(t: &str) -> Option<Kind> {
        match t.to_ascii_lowercase().as_str() {
            "user" | "person" => Some(Kind::User),
            "group" => Some(Kind::Group),
            "contact" | "orgcontact" => Some(Kind::Contact),
            "device" | "computer" => Some(Kind::Device),
            _ => None,
        }
    }
    /// From an `@odata.type` value.
    pub fn from_odata(t: &str) -> Option<Kind> {
        match t.trim_start_matches('#') {
            "microsoft.graph.user" => Some(Kind::User),
            "microsoft.graph.group" => Some(Kind::Group),
            "microsoft.graph.orgContact" => Some(Kind::Contact),
            "microsoft.graph.device" => Some(Kind::Device),
            _ => None,
        }
    }
    /// The connector object type.
    pub fn object_type(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Contact => "contact",
            Kind::Device => "device",
        }
    }
    /// The entity set (`users`, `groups`, `contacts`, `devices`).
    pub fn collection(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::Group => "groups",
            Kind::Contact => "contacts",
            Kind::Device => "devices",
        }
    }
    /// The container of the synthetic DN.
    pub fn ou(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
            Kind::Contact => "Contacts",
            Kind::Device => "Devices",
        }
    }
    /// The type cast segment for `/directory/deletedItems/...`.
    pub fn cast(self) -> &'static str {
        match self {
            Kind::User => "microsoft.graph.user",
            Kind::Group => "microsoft.graph.group",
            Kind::Contact => "microsoft.graph.orgContact",
            Kind::Device => "microsoft.graph.device",
        }
    }
}

/// The synthetic DN of a Graph object: `CN=<id>,OU=Users` and so on.
pub fn synthetic_dn(kind: Kind, id: &str) -> Dn {
    Dn::root()
        .child(Rdn::new("OU", kind.ou()))
        .child(Rdn::new("CN", id))
}

/// The kind and object id of a synthetic DN.
pub fn parse_synthetic(dn: &Dn) -> Option<(Kind, String)> {
    if dn.depth() != 2 {
        return None;
    }
    let leaf = dn.rdn()?;
    let ou = dn.rdns.get(1)?;
    if !leaf.attr().eq_ignore_ascii_case("CN") || !ou.attr().eq_ignore_ascii_case("OU") {
        return None;
    }
    let kind = [Kind::User, Kind::Group, Kind::Contact, Kind::Device]
        .into_iter()
        .find(|k| k.ou().eq_ignore_ascii_case(ou.value()))?;
    let id = leaf.value();
    uuid::Uuid::parse_str(id).ok()?;
    Some((kind, id.to_ascii_lowercase()))
}

/// Graph properties that are collections of strings.
pub const MULTI_VALUED: &[&str] = &[
    "businessPhones",
    "otherMails",
    "groupTypes",
    "interests",
    "pastProjects",
    "responsibilities",
    "schools",
    "skills",
    "proxyAddresses",
    "imAddresses",
];

/// Graph properties that are booleans.
pub const BOOLEANS: &[&str] = &[
    "accountEnabled",
    "mailEnabled",
    "securityEnabled",
    "isAssignableToRole",
    "showInAddressList",
];

/// Default user properties read on import.
pub const USER_PROPERTIES: &[&str] = &[
    "displayName",
    "givenName",
    "surname",
    "userPrincipalName",
    "mail",
    "mailNickname",
    "jobTitle",
    "department",
    "companyName",
    "employeeId",
    "employeeType",
    "accountEnabled",
    "proxyAddresses",
    "onPremisesImmutableId",
    "usageLocation",
    "mobilePhone",
    "businessPhones",
    "officeLocation",
    "city",
    "country",
    "state",
    "streetAddress",
    "postalCode",
    "otherMails",
    "userType",
    "preferredLanguage",
];

/// Default group properties read on import.
pub const GROUP_PROPERTIES: &[&str] = &[
    "displayName",
    "description",
    "mailEnabled",
    "securityEnabled",
    "mailNickname",
    "mail",
    "groupTypes",
    "proxyAddresses",
    "visibility",
];

/// Contact properties read on import.
pub const CONTACT_PROPERTIES: &[&str] = &[
    "displayName",
    "givenName",
    "surname",
    "mail",
    "mailNickname",
    "proxyAddresses",
    "companyName",
    "jobTitle",
    "department",
];

/// Device properties read on import.
pub const DEVICE_PROPERTIES: &[&str] = &[
    "displayName",
    "deviceId",
    "operatingSystem",
    "operatingSystemVersion",
    "accountEnabled",
    "trustType",
];

/// Converts one Graph JSON property value into attribute values (null and objects: none).
pub fn json_to_values(v: &serde_json::Value) -> Vec<Value> {
    match v {
        serde_json::Value::String(s) => vec![Value::Str(s.clone())],
        serde_json::Value::Bool(b) => vec![Value::Bool(*b)],
        serde_json::Value::Number(n) => n.as_i64().map(Value::Int).into_iter().collect(),
        serde_json::Value::Array(a) => a.iter().flat_map(json_to_values).collect(),
        _ => Vec::new(),
    }
}

/// The Microsoft Graph connector.
pub struct GraphConnector {
    settings: GraphSettings,
    http: Arc<http::GraphHttp>,
    rt: tokio::runtime::Runtime,
    /// What export calls of this instance share (placeholders, anchor snapshot).
    state: export::ExportState,
}

impl GraphConnector {
    /// Builds the connector; reads the credential (secret or key) but does not connect yet.
    pub fn new(settings: GraphSettings, base_dir: &Path) -> Result<Self, ConnectorError> {
        settings.validate().map_err(ConnectorError::Config)?;
        let cred = auth::Credential::load(&settings, base_dir)?;
        let http = Arc::new(http::GraphHttp::new(settings.clone(), cred)?);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ConnectorError::Config(format!("async runtime: {e}")))?;
        Ok(Self {
            settings,
            http,
            rt,
            state: export::ExportState::default(),
        })
    }

    /// Number of 429 answers this connector has received so far.
    pub fn throttled_count(&self) -> u64 {
        self.http
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn type_enabled(&self, k: Kind) -> bool {
        self.settings
            .object_types
            .iter()
            .any(|t| Kind::from_object_type(t) == Some(k))
    }
}

impl Connector for GraphConnector {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            delta_import: true,
            export: true,
        }
    }

    fn schema(&mut self) -> Result<Schema, ConnectorError> {
        let mut schema = Schema::default();
        let def = |name: &str| {
            let ty = if BOOLEANS.contains(&name) {
                AttrType::Boolean
            } else {
                AttrType::String
            };
            AttributeDef {
                ty,
                multi_valued: MULTI_VALUED.contains(&name),
            }
        };
        let anchor = self.settings.anchor_attribute.clone();
        let mk = |props: &[&str], extra: &[String], refs: &[(&str, bool)], anchor: bool| {
            let mut t = ObjectTypeDef::default();
            t.attributes.insert(
                "id".into(),
                AttributeDef {
                    ty: AttrType::String,
                    multi_valued: false,
                },
            );
            for p in props
                .iter()
                .copied()
                .chain(extra.iter().map(String::as_str))
            {
                t.attributes.insert(p.to_string(), def(p));
            }
            for (r, multi) in refs {
                t.attributes.insert(
                    (*r).to_string(),
                    AttributeDef {
                        ty: AttrType::Reference,
                        multi_valued: *multi,
                    },
                );
            }
            (t, anchor)
        };
        for (kind, (mut t, with_anchor)) in [
            (
                Kind::User,
                mk(
                    USER_PROPERTIES,
                    &self.settings.extra_user_properties,
                    &[("manager", false)],
                    true,
                ),
            ),
            (
                Kind::Group,
                mk(
                    GROUP_PROPERTIES,
                    &self.settings.extra_group_properties,
                    &[("member", true)],
                    true,
                ),
            ),
            (Kind::Contact, mk(CONTACT_PROPERTIES, &[], &[], false)),
            (Kind::Device, mk(DEVICE_PROPERTIES, &[], &[], false)),
        ] {
            if !self.type_enabled(kind) {
                continue;
            }
            if with_anchor {
                t.attributes.insert(
                    anchor.clone(),
                    AttributeDef {
                        ty: AttrType::String,
                        multi_valued: false,
                    },
                );
            }
            schema.object_types.insert(kind.object_type().into(), t);
        }
        Ok(schema)
    }

    fn full_import(&mut self, sink: &mut dyn ImportSink) -> Result<Watermark, ConnectorError> {
        let http = self.http.clone();
        let settings = self.settings.clone();
        self.rt
            .block_on(async move { import::full(&http, &settings, sink).await })
            .map(Some)
    }

    fn delta_import(
        &mut self,
        watermark: &str,
        cs: &dyn ConnectorSpaceView,
        sink: &mut dyn ImportSink,
    ) -> Result<Watermark, ConnectorError> {
        let http = self.http.clone();
        let settings = self.settings.clone();
        self.rt
            .block_on(async move { import::delta(&http, &settings, watermark, cs, sink).await })
            .map(Some)
    }

    fn export_batch_size(&self) -> usize {
        self.settings.export_batch_size.max(1)
    }

    fn export(&mut self, batch: &[ExportRequest]) -> Result<Vec<ExportResult>, ConnectorError> {
        let http = self.http.clone();
        let settings = self.settings.clone();
        let state = &mut self.state;
        self.rt
            .block_on(async { export::run(&http, &settings, state, batch).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_dns_round_trip() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let dn = synthetic_dn(Kind::Group, id);
        assert_eq!(dn.to_string(), format!("CN={id},OU=Groups"));
        assert_eq!(parse_synthetic(&dn), Some((Kind::Group, id.to_string())));
        let other = Dn::parse("CN=ann,OU=Users").unwrap();
        assert_eq!(parse_synthetic(&other), None);
    }

    #[test]
    fn json_values() {
        assert_eq!(
            json_to_values(&serde_json::json!(["a", "b"])),
            vec![Value::Str("a".into()), Value::Str("b".into())]
        );
        assert!(json_to_values(&serde_json::Value::Null).is_empty());
        assert_eq!(
            json_to_values(&serde_json::json!(true)),
            vec![Value::Bool(true)]
        );
    }
}

//! The emulated tenant: directory objects, uniqueness indexes, soft delete, membership,
//! directory extensions and the change log that drives delta queries.
//!
//! Every mutating operation takes one tenant change number (`seq`). Objects remember the
//! change number of each property and of each membership change, which lets delta queries
//! answer "what changed since N" with only the changed properties.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::odata::{GraphError, QueryOptions, lookup_ci};

/// The kind of a directory object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectKind {
    /// `microsoft.graph.user`.
    User,
    /// `microsoft.graph.group`.
    Group,
    /// `microsoft.graph.orgContact` (read-only through Graph v1.0).
    Contact,
    /// `microsoft.graph.device`.
    Device,
}

impl ObjectKind {
    /// The `@odata.type` value.
    pub fn odata_type(self) -> &'static str {
        match self {
            ObjectKind::User => "#microsoft.graph.user",
            ObjectKind::Group => "#microsoft.graph.group",
            ObjectKind::Contact => "#microsoft.graph.orgContact",
            ObjectKind::Device => "#microsoft.graph.device",
        }
    }
    /// The entity set name (`users`, `groups`, `contacts`, `devices`).
    pub fn collection(self) -> &'static str {
        match self {
            ObjectKind::User => "users",
            ObjectKind::Group => "groups",
            ObjectKind::Contact => "contacts",
            ObjectKind::Device => "devices",
        }
    }
    /// The resource name used in error messages and extension `targetObjects`.
    pub fn resource(self) -> &'static str {
        match self {
            ObjectKind::User => "User",
            ObjectKind::Group => "Group",
            ObjectKind::Contact => "Contact",
            ObjectKind::Device => "Device",
        }
    }
}

/// One membership change of a group (the last one per member).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberChange {
    /// Tenant change number.
    pub seq: u64,
    /// Whether the member is present after the change.
    pub present: bool,
    /// Kind of the member.
    pub kind: ObjectKind,
}

/// A directory object (user, group, contact or device).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirObject {
    /// Object id (GUID).
    pub id: String,
    /// Kind.
    pub kind: ObjectKind,
    /// Properties (without `id`), canonical Graph names.
    pub props: Map<String, Value>,
    /// Change number of the last change of each property.
    #[serde(default)]
    pub versions: BTreeMap<String, u64>,
    /// Change number of the last change of the object (properties or membership).
    pub changed_at: u64,
    /// Member ids (groups only).
    #[serde(default)]
    pub members: BTreeSet<String>,
    /// Last membership change per member id (groups only).
    #[serde(default)]
    pub member_changes: BTreeMap<String, MemberChange>,
    /// Change number of the soft delete, when in deleted items.
    #[serde(default)]
    pub deleted_at: Option<u64>,
    /// Groups the object belonged to when it was soft-deleted (restored with it).
    #[serde(default)]
    pub member_of_before_delete: Vec<String>,
    /// Manager (users only), set through `PUT /users/{id}/manager/$ref`.
    #[serde(default)]
    pub manager: Option<String>,
    /// Wall-clock time of the soft delete (unix ms), for the retention period.
    #[serde(default)]
    pub deleted_unix_ms: Option<u64>,
}

/// A permanently deleted object, remembered for delta (`@removed` reason `deleted`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tombstone {
    /// Object id.
    pub id: String,
    /// Kind.
    pub kind: ObjectKind,
    /// Change number of the hard delete.
    pub seq: u64,
}

/// A directory extension definition (`extensionProperty`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtensionProperty {
    /// Object id.
    pub id: String,
    /// Full name `extension_<appIdNoDashes>_<name>`.
    pub name: String,
    /// `String`, `Integer`, `Boolean`, `DateTime`, `Binary`, `LargeInteger`.
    pub data_type: String,
    /// Multi-valued flag.
    pub is_multi_valued: bool,
    /// `User`, `Group`, ... resources the extension applies to.
    pub target_objects: Vec<String>,
    /// Display name of the owning app.
    pub app_display_name: String,
}

impl ExtensionProperty {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "deletedDateTime": null,
            "appDisplayName": self.app_display_name,
            "dataType": self.data_type,
            "isMultiValued": self.is_multi_valued,
            "isSyncedFromOnPremises": false,
            "name": self.name,
            "targetObjects": self.target_objects,
        })
    }
}

/// An application registration object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Application {
    /// Object id (used in `/applications/{id}`).
    pub id: String,
    /// Application (client) id.
    pub app_id: String,
    /// Display name.
    pub display_name: String,
    /// Directory extensions owned by the app.
    #[serde(default)]
    pub extension_properties: Vec<ExtensionProperty>,
}

impl Application {
    /// The JSON representation.
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "appId": self.app_id, "displayName": self.display_name})
    }
}

/// The whole emulated tenant (what is persisted to the state file).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tenant {
    /// Tenant id (GUID).
    pub tenant_id: String,
    /// Verified domains; empty means any UPN domain is accepted.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Domain used for generated mail addresses.
    #[serde(default)]
    pub default_domain: String,
    /// Federated domains: users with a UPN in one of them need `onPremisesImmutableId`.
    #[serde(default)]
    pub federated_domains: Vec<String>,
    /// Tenant change counter.
    pub seq: u64,
    /// Live objects by id.
    pub objects: BTreeMap<String, DirObject>,
    /// Soft-deleted objects by id (`/directory/deletedItems`).
    pub deleted: BTreeMap<String, DirObject>,
    /// Permanently deleted objects.
    #[serde(default)]
    pub tombstones: Vec<Tombstone>,
    /// Application registrations by object id.
    #[serde(default)]
    pub applications: BTreeMap<String, Application>,
    /// Delta token generation; bumped to invalidate every outstanding delta token.
    #[serde(default)]
    pub delta_epoch: u64,
    #[serde(skip)]
    upn_index: HashMap<String, String>,
    #[serde(skip)]
    smtp_index: HashMap<String, String>,
    #[serde(skip)]
    immutable_index: HashMap<String, String>,
}

const USER_WRITABLE: &[&str] = &[
    "aboutMe",
    "accountEnabled",
    "ageGroup",
    "birthday",
    "businessPhones",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "creationType",
    "department",
    "displayName",
    "employeeHireDate",
    "employeeId",
    "employeeLeaveDateTime",
    "employeeOrgData",
    "employeeType",
    "faxNumber",
    "givenName",
    "hireDate",
    "identities",
    "interests",
    "jobTitle",
    "mail",
    "mailNickname",
    "mobilePhone",
    "mySite",
    "officeLocation",
    "onPremisesExtensionAttributes",
    "onPremisesImmutableId",
    "otherMails",
    "passwordPolicies",
    "passwordProfile",
    "pastProjects",
    "postalCode",
    "preferredDataLocation",
    "preferredLanguage",
    "preferredName",
    "responsibilities",
    "schools",
    "showInAddressList",
    "skills",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

const USER_READ_ONLY: &[&str] = &[
    "assignedLicenses",
    "assignedPlans",
    "createdDateTime",
    "deletedDateTime",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "imAddresses",
    "lastPasswordChangeDateTime",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "provisionedPlans",
    "proxyAddresses",
    "securityIdentifier",
    "signInSessionsValidFromDateTime",
];

const GROUP_WRITABLE: &[&str] = &[
    "classification",
    "description",
    "displayName",
    "groupTypes",
    "isAssignableToRole",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "preferredDataLocation",
    "preferredLanguage",
    "securityEnabled",
    "theme",
    "uniqueName",
    "visibility",
];

const GROUP_READ_ONLY: &[&str] = &[
    "createdDateTime",
    "deletedDateTime",
    "expirationDateTime",
    "mail",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesProvisioningErrors",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "proxyAddresses",
    "renewedDateTime",
    "securityIdentifier",
];

const BOOL_PROPS: &[&str] = &[
    "accountEnabled",
    "mailEnabled",
    "securityEnabled",
    "isAssignableToRole",
    "showInAddressList",
];
const STRING_LIST_PROPS: &[&str] = &[
    "businessPhones",
    "otherMails",
    "groupTypes",
    "interests",
    "pastProjects",
    "responsibilities",
    "schools",
    "skills",
];
const OBJECT_PROPS: &[&str] = &[
    "passwordProfile",
    "onPremisesExtensionAttributes",
    "employeeOrgData",
];
const LIST_PROPS: &[&str] = &["identities"];

/// The properties Graph v1.0 returns for a user when no `$select` is given.
pub const USER_DEFAULT_SELECT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

/// Properties never returned (write-only).
const HIDDEN: &[&str] = &["passwordProfile"];

/// Default tenant id of [`super::EmulatorConfig::default`].
pub const DEFAULT_TENANT_ID: &str = "00000000-0000-4000-8000-00000000e1a7";
/// Default application (client) id registered by [`super::EmulatorConfig::default`].
pub const DEFAULT_CLIENT_ID: &str = "11111111-2222-4333-8444-555555555555";
/// Default client secret of [`DEFAULT_CLIENT_ID`].
pub const DEFAULT_CLIENT_SECRET: &str = "emulator-secret";

/// Maximum number of `members@odata.bind` references per request.
pub const MAX_BIND_MEMBERS: usize = 20;

fn canonical(name: &str, list: &[&'static str]) -> Option<&'static str> {
    list.iter().copied().find(|p| p.eq_ignore_ascii_case(name))
}

fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn smtp_addresses(props: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Value::Array(items)) = props.get("proxyAddresses") {
        for v in items {
            if let Some((prefix, addr)) = v.as_str().and_then(|s| s.split_once(':'))
                && prefix.eq_ignore_ascii_case("smtp")
                && !addr.is_empty()
            {
                out.push(addr.to_lowercase());
            }
        }
    }
    if let Some(Value::String(m)) = props.get("mail") {
        let m = m.to_lowercase();
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

/// Extracts the object id from an `@odata.id` / `members@odata.bind` reference URL.
pub fn id_from_reference(url: &str) -> Option<String> {
    let last = url.trim_end_matches('/').rsplit('/').next()?;
    // Forms: .../directoryObjects/{id}, .../users/{id}, .../directoryObjects('{id}')
    let last = if let Some(start) = last.find("('") {
        last[start + 2..].trim_end_matches("')").to_string()
    } else {
        last.to_string()
    };
    if last.is_empty() { None } else { Some(last) }
}

impl Tenant {
    /// An empty tenant.
    pub fn new(tenant_id: &str, domains: Vec<String>) -> Self {
        let default_domain = domains
            .first()
            .cloned()
            .unwrap_or_else(|| "emulator.onmicrosoft.com".to_string());
        Tenant {
            tenant_id: tenant_id.to_string(),
            domains,
            default_domain,
            ..Default::default()
        }
    }

    /// Rebuilds the in-memory uniqueness indexes (after loading from a file).
    pub fn rebuild_indexes(&mut self) {
        self.upn_index.clear();
        self.smtp_index.clear();
        self.immutable_index.clear();
        let ids: Vec<String> = self.objects.keys().cloned().collect();
        for id in ids {
            self.index_object(&id);
        }
    }

    fn index_object(&mut self, id: &str) {
        let Some(obj) = self.objects.get(id) else {
            return;
        };
        if let Some(Value::String(upn)) = obj.props.get("userPrincipalName") {
            self.upn_index.insert(upn.to_lowercase(), id.to_string());
        }
        if let Some(Value::String(imm)) = obj.props.get("onPremisesImmutableId") {
            self.immutable_index.insert(imm.clone(), id.to_string());
        }
        for a in smtp_addresses(&obj.props) {
            self.smtp_index.insert(a, id.to_string());
        }
    }

    fn unindex_object(&mut self, id: &str) {
        let Some(obj) = self.objects.get(id) else {
            return;
        };
        if let Some(Value::String(upn)) = obj.props.get("userPrincipalName") {
            self.upn_index.remove(&upn.to_lowercase());
        }
        if let Some(Value::String(imm)) = obj.props.get("onPremisesImmutableId") {
            self.immutable_index.remove(imm);
        }
        for a in smtp_addresses(&obj.props) {
            if self.smtp_index.get(&a).map(String::as_str) == Some(id) {
                self.smtp_index.remove(&a);
            }
        }
    }

    /// Checks the uniqueness of UPN, SMTP addresses and immutable id of `props` against
    /// every live object except `self_id`.
    fn check_unique(&self, self_id: &str, props: &Map<String, Value>) -> Result<(), GraphError> {
        if let Some(Value::String(upn)) = props.get("userPrincipalName")
            && let Some(other) = self.upn_index.get(&upn.to_lowercase())
            && other != self_id
        {
            return Err(GraphError::conflict("userPrincipalName"));
        }
        if let Some(Value::String(imm)) = props.get("onPremisesImmutableId")
            && let Some(other) = self.immutable_index.get(imm)
            && other != self_id
        {
            return Err(GraphError::conflict("onPremisesImmutableId"));
        }
        for a in smtp_addresses(props) {
            if let Some(other) = self.smtp_index.get(&a)
                && other != self_id
            {
                return Err(GraphError::conflict("proxyAddresses"));
            }
        }
        Ok(())
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn extension_def(&self, name: &str) -> Option<&ExtensionProperty> {
        self.applications
            .values()
            .flat_map(|a| a.extension_properties.iter())
            .find(|e| e.name.eq_ignore_ascii_case(name))
    }

    /// Validates and canonicalises the writable properties of a create/update body.
    /// Returns the property map (annotations such as `members@odata.bind` removed).
    fn validate_body(
        &self,
        kind: ObjectKind,
        body: &Value,
        seeding: bool,
    ) -> Result<Map<String, Value>, GraphError> {
        let Value::Object(map) = body else {
            return Err(GraphError::bad_request(
                "Invalid request body: a JSON object was expected.",
            ));
        };
        let (writable, read_only) = match kind {
            ObjectKind::User => (USER_WRITABLE, USER_READ_ONLY),
            ObjectKind::Group => (GROUP_WRITABLE, GROUP_READ_ONLY),
            ObjectKind::Contact | ObjectKind::Device => (&[][..], &[][..]),
        };
        let resource = kind.resource();
        let mut out = Map::new();
        for (k, v) in map {
            if k.contains('@') {
                // Annotations (@odata.type, members@odata.bind, owners@odata.bind) are
                // handled by the caller.
                continue;
            }
            if k.eq_ignore_ascii_case("id") {
                if seeding {
                    continue;
                }
                return Err(GraphError::read_only("id"));
            }
            let name: String = if let Some(c) = canonical(k, writable) {
                c.to_string()
            } else if let Some(c) = canonical(k, read_only) {
                if !seeding {
                    return Err(GraphError::read_only(c));
                }
                c.to_string()
            } else if k.to_ascii_lowercase().starts_with("extension_") {
                let Some(def) = self.extension_def(k) else {
                    return Err(GraphError::bad_request(format!(
                        "Property '{k}' does not exist as a declared property or extension property."
                    )));
                };
                if !def
                    .target_objects
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(resource))
                {
                    return Err(GraphError::bad_request(format!(
                        "Property '{k}' does not exist as a declared property or extension property."
                    )));
                }
                check_extension_value(def, v)?;
                def.name.clone()
            } else if seeding || matches!(kind, ObjectKind::Contact | ObjectKind::Device) {
                k.clone()
            } else {
                return Err(GraphError::bad_request(format!(
                    "Property '{k}' does not exist as a declared property or extension property."
                )));
            };
            check_type(&name, v, resource)?;
            if name == "onPremisesImmutableId"
                && let Value::String(s) = v
                && (s.contains('$') || s.contains('_') || s.is_empty())
            {
                return Err(GraphError::invalid_value(&name, resource));
            }
            if name == "userPrincipalName"
                && let Value::String(s) = v
            {
                self.check_upn(s)?;
            }
            if name == "mailNickname"
                && let Value::String(s) = v
                && (s.is_empty() || s.len() > 64 || s.contains(' ') || s.contains('@'))
            {
                return Err(GraphError::invalid_value(&name, resource));
            }
            out.insert(name, v.clone());
        }
        Ok(out)
    }

    fn check_upn(&self, upn: &str) -> Result<(), GraphError> {
        let Some((local, domain)) = upn.rsplit_once('@') else {
            return Err(GraphError::invalid_value("userPrincipalName", "User"));
        };
        if local.is_empty() || domain.is_empty() || local.contains(' ') {
            return Err(GraphError::invalid_value("userPrincipalName", "User"));
        }
        if !self.domains.is_empty() && !self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
        {
            return Err(GraphError::bad_request(
                "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
            ));
        }
        Ok(())
    }

    fn bind_members(&self, body: &Value) -> Result<Option<Vec<String>>, GraphError> {
        let Some(v) = body
            .as_object()
            .and_then(|m| lookup_ci(m, "members@odata.bind"))
        else {
            return Ok(None);
        };
        let Value::Array(items) = v else {
            return Err(GraphError::bad_request(
                "Invalid value for 'members@odata.bind': an array of URLs was expected.",
            ));
        };
        if items.len() > MAX_BIND_MEMBERS {
            return Err(GraphError::bad_request(format!(
                "The request contains {} member references in 'members@odata.bind'; at most {MAX_BIND_MEMBERS} are allowed in one request.",
                items.len()
            )));
        }
        let mut ids = Vec::new();
        for it in items {
            let id = it.as_str().and_then(id_from_reference).ok_or_else(|| {
                GraphError::bad_request("Invalid object identifier in 'members@odata.bind'.")
            })?;
            if !self.objects.contains_key(&id) {
                return Err(GraphError::not_found(&id));
            }
            ids.push(id);
        }
        Ok(Some(ids))
    }

    /// Creates a user (`POST /users`). Returns the new object's id.
    pub fn create_user(&mut self, body: &Value) -> Result<String, GraphError> {
        self.create_user_inner(body, false)
    }

    fn create_user_inner(&mut self, body: &Value, seeding: bool) -> Result<String, GraphError> {
        let mut props = self.validate_body(ObjectKind::User, body, seeding)?;
        if !seeding {
            for req in [
                "accountEnabled",
                "displayName",
                "mailNickname",
                "userPrincipalName",
                "passwordProfile",
            ] {
                if props.get(req).is_none_or(Value::is_null) {
                    return Err(GraphError::required(req, "User"));
                }
            }
            let pw = props
                .get("passwordProfile")
                .and_then(|p| p.get("password"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if pw.is_empty() {
                return Err(GraphError::required("passwordProfile.password", "User"));
            }
            let federated = props
                .get("userPrincipalName")
                .and_then(Value::as_str)
                .and_then(|u| u.rsplit_once('@'))
                .is_some_and(|(_, d)| {
                    self.federated_domains
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(d))
                });
            if federated
                && props
                    .get("onPremisesImmutableId")
                    .is_none_or(Value::is_null)
            {
                return Err(GraphError::required("onPremisesImmutableId", "User"));
            }
        }
        if let Some(Value::String(mail)) = props.get("mail").cloned()
            && !props.contains_key("proxyAddresses")
        {
            props.insert("proxyAddresses".into(), json!([format!("SMTP:{mail}")]));
        }
        props.entry("proxyAddresses").or_insert_with(|| json!([]));
        props.entry("businessPhones").or_insert_with(|| json!([]));
        props.entry("userType").or_insert_with(|| json!("Member"));
        props
            .entry("createdDateTime")
            .or_insert_with(|| json!(now_iso()));
        props.entry("onPremisesSyncEnabled").or_insert(Value::Null);
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .filter(|_| seeding)
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        self.check_unique(&id, &props)?;
        self.insert_new(id.clone(), ObjectKind::User, props);
        Ok(id)
    }

    fn insert_new(&mut self, id: String, kind: ObjectKind, props: Map<String, Value>) {
        let seq = self.next_seq();
        let versions = props.keys().map(|k| (k.clone(), seq)).collect();
        self.objects.insert(
            id.clone(),
            DirObject {
                id: id.clone(),
                kind,
                props,
                versions,
                changed_at: seq,
                members: BTreeSet::new(),
                member_changes: BTreeMap::new(),
                deleted_at: None,
                member_of_before_delete: Vec::new(),
                manager: None,
                deleted_unix_ms: None,
            },
        );
        self.index_object(&id);
    }

    /// Creates a group (`POST /groups`, with optional `members@odata.bind`).
    pub fn create_group(&mut self, body: &Value) -> Result<String, GraphError> {
        self.create_group_inner(body, false)
    }

    fn create_group_inner(&mut self, body: &Value, seeding: bool) -> Result<String, GraphError> {
        let mut props = self.validate_body(ObjectKind::Group, body, seeding)?;
        let members = self.bind_members(body)?;
        for req in [
            "displayName",
            "mailEnabled",
            "mailNickname",
            "securityEnabled",
        ] {
            if props.get(req).is_none_or(Value::is_null) {
                return Err(GraphError::required(req, "Group"));
            }
        }
        let unified = props
            .get("groupTypes")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter().any(|t| {
                    t.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case("Unified"))
                })
            });
        let mail_enabled = props
            .get("mailEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if mail_enabled && !unified && !seeding {
            return Err(GraphError::bad_request(
                "Creating mail-enabled security groups or distribution groups is not supported through this API. Only Microsoft 365 groups (groupTypes 'Unified') can be mail-enabled.",
            ));
        }
        if mail_enabled && !props.contains_key("mail") {
            let nick = props
                .get("mailNickname")
                .and_then(Value::as_str)
                .unwrap_or("group");
            let mail = format!("{nick}@{}", self.default_domain);
            props.insert("proxyAddresses".into(), json!([format!("SMTP:{mail}")]));
            props.insert("mail".into(), json!(mail));
        }
        props.entry("proxyAddresses").or_insert_with(|| json!([]));
        props.entry("groupTypes").or_insert_with(|| json!([]));
        props.entry("mail").or_insert(Value::Null);
        props
            .entry("createdDateTime")
            .or_insert_with(|| json!(now_iso()));
        props.entry("onPremisesSyncEnabled").or_insert(Value::Null);
        if unified {
            props.entry("visibility").or_insert_with(|| json!("Public"));
        }
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .filter(|_| seeding)
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        self.check_unique(&id, &props)?;
        self.insert_new(id.clone(), ObjectKind::Group, props);
        if let Some(members) = members {
            let seq = self.seq;
            for m in members {
                self.link_member(&id, &m, seq);
            }
        }
        Ok(id)
    }

    /// Seeds an object directly (test hook): read-only properties such as `proxyAddresses`
    /// or `onPremisesSyncEnabled` are accepted, required properties are not enforced, an
    /// `id` in the body is kept. Uniqueness is still enforced.
    pub fn seed(&mut self, kind: ObjectKind, body: &Value) -> Result<String, GraphError> {
        match kind {
            ObjectKind::User => self.create_user_inner(body, true),
            ObjectKind::Group => self.create_group_inner(body, true),
            ObjectKind::Contact | ObjectKind::Device => {
                let props = self.validate_body(kind, body, true)?;
                let id = body
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                self.check_unique(&id, &props)?;
                self.insert_new(id.clone(), kind, props);
                Ok(id)
            }
        }
    }

    /// Resolves a key (id, or userPrincipalName for users) to a live object id of `kind`.
    pub fn resolve(&self, kind: ObjectKind, key: &str) -> Result<String, GraphError> {
        if let Some(o) = self.objects.get(key)
            && o.kind == kind
        {
            return Ok(key.to_string());
        }
        if kind == ObjectKind::User
            && key.contains('@')
            && let Some(id) = self.upn_index.get(&key.to_lowercase())
        {
            return Ok(id.clone());
        }
        Err(GraphError::not_found(key))
    }

    /// Updates an object (`PATCH`). For groups, `members@odata.bind` adds up to 20 members.
    pub fn update(&mut self, kind: ObjectKind, id: &str, body: &Value) -> Result<(), GraphError> {
        self.update_inner(kind, id, body, false)
    }

    /// Updates an object directly (test hook): read-only properties such as `proxyAddresses`
    /// are accepted, as Exchange Online sets them. Recorded as a change for delta queries.
    pub fn seed_update(
        &mut self,
        kind: ObjectKind,
        id: &str,
        body: &Value,
    ) -> Result<(), GraphError> {
        self.update_inner(kind, id, body, true)
    }

    fn update_inner(
        &mut self,
        kind: ObjectKind,
        id: &str,
        body: &Value,
        seeding: bool,
    ) -> Result<(), GraphError> {
        if matches!(kind, ObjectKind::Contact | ObjectKind::Device) {
            return Err(GraphError::new(
                405,
                "Request_BadRequest",
                format!(
                    "Updating '{}' objects is not supported by the emulator.",
                    kind.resource()
                ),
            ));
        }
        let id = self.resolve(kind, id)?;
        let changes = self.validate_body(kind, body, seeding)?;
        let members = if kind == ObjectKind::Group {
            self.bind_members(body)?
        } else {
            None
        };
        if let Some(ms) = &members
            && let Some(g) = self.objects.get(&id)
            && ms.iter().any(|m| g.members.contains(m))
        {
            return Err(GraphError::bad_request(
                "One or more added object references already exist for the following modified properties: 'members'.",
            ));
        }
        for req in [
            "displayName",
            "mailNickname",
            "userPrincipalName",
            "accountEnabled",
        ] {
            if changes.get(req).is_some_and(Value::is_null) {
                return Err(GraphError::invalid_value(req, kind.resource()));
            }
        }
        let Some(current) = self.objects.get(&id) else {
            return Err(GraphError::not_found(&id));
        };
        let mut next = current.props.clone();
        let mut changed: Vec<String> = Vec::new();
        for (k, v) in &changes {
            if next.get(k) != Some(v) {
                changed.push(k.clone());
                next.insert(k.clone(), v.clone());
            }
        }
        if changed.iter().any(|c| c == "mail") {
            // The new mail becomes the primary SMTP address; older ones become secondary.
            let mut addrs: Vec<Value> = Vec::new();
            if let Some(Value::String(m)) = next.get("mail") {
                addrs.push(json!(format!("SMTP:{m}")));
            }
            let new_mail = next
                .get("mail")
                .and_then(Value::as_str)
                .map(str::to_lowercase);
            if let Some(Value::Array(old)) = current.props.get("proxyAddresses") {
                for a in old.iter().filter_map(Value::as_str) {
                    let (prefix, addr) = a.split_once(':').unwrap_or(("smtp", a));
                    if prefix.eq_ignore_ascii_case("smtp") {
                        if Some(addr.to_lowercase()) != new_mail {
                            addrs.push(json!(format!("smtp:{addr}")));
                        }
                    } else {
                        addrs.push(json!(a));
                    }
                }
            }
            next.insert("proxyAddresses".into(), Value::Array(addrs));
            changed.push("proxyAddresses".into());
        }
        self.check_unique(&id, &next)?;
        if changed.is_empty() && members.as_ref().is_none_or(Vec::is_empty) {
            return Ok(());
        }
        let seq = self.next_seq();
        self.unindex_object(&id);
        if let Some(obj) = self.objects.get_mut(&id) {
            obj.props = next;
            for c in &changed {
                obj.versions.insert(c.clone(), seq);
            }
            if !changed.is_empty() {
                obj.changed_at = seq;
            }
        }
        self.index_object(&id);
        if let Some(ms) = members {
            for m in ms {
                self.link_member(&id, &m, seq);
            }
        }
        Ok(())
    }

    fn link_member(&mut self, group_id: &str, member_id: &str, seq: u64) {
        let mkind = self
            .objects
            .get(member_id)
            .map(|o| o.kind)
            .unwrap_or(ObjectKind::User);
        if let Some(g) = self.objects.get_mut(group_id)
            && g.members.insert(member_id.to_string())
        {
            g.member_changes.insert(
                member_id.to_string(),
                MemberChange {
                    seq,
                    present: true,
                    kind: mkind,
                },
            );
            g.changed_at = seq;
        }
    }

    fn unlink_member(&mut self, group_id: &str, member_id: &str, seq: u64, kind: ObjectKind) {
        if let Some(g) = self.objects.get_mut(group_id)
            && g.members.remove(member_id)
        {
            g.member_changes.insert(
                member_id.to_string(),
                MemberChange {
                    seq,
                    present: false,
                    kind,
                },
            );
            g.changed_at = seq;
        }
    }

    /// Adds a member (`POST /groups/{id}/members/$ref`).
    pub fn add_member(&mut self, group_id: &str, member_id: &str) -> Result<(), GraphError> {
        let gid = self.resolve(ObjectKind::Group, group_id)?;
        if !self.objects.contains_key(member_id) {
            return Err(GraphError::not_found(member_id));
        }
        if gid == member_id {
            return Err(GraphError::bad_request(
                "A group cannot be a member of itself.",
            ));
        }
        if self
            .objects
            .get(&gid)
            .is_some_and(|g| g.members.contains(member_id))
        {
            return Err(GraphError::bad_request(
                "One or more added object references already exist for the following modified properties: 'members'.",
            ));
        }
        let seq = self.next_seq();
        self.link_member(&gid, member_id, seq);
        Ok(())
    }

    /// Removes a member (`DELETE /groups/{id}/members/{memberId}/$ref`).
    pub fn remove_member(&mut self, group_id: &str, member_id: &str) -> Result<(), GraphError> {
        let gid = self.resolve(ObjectKind::Group, group_id)?;
        if !self
            .objects
            .get(&gid)
            .is_some_and(|g| g.members.contains(member_id))
        {
            return Err(GraphError::not_found(member_id));
        }
        let kind = self
            .objects
            .get(member_id)
            .map(|o| o.kind)
            .unwrap_or(ObjectKind::User);
        let seq = self.next_seq();
        self.unlink_member(&gid, member_id, seq, kind);
        Ok(())
    }

    /// Deletes an object. Users and Microsoft 365 / security groups go to deleted items
    /// (soft delete, restorable); distribution groups, contacts and devices are removed
    /// permanently.
    pub fn delete(&mut self, kind: ObjectKind, key: &str) -> Result<(), GraphError> {
        let id = self.resolve(kind, key)?;
        let soft = match kind {
            ObjectKind::User => true,
            ObjectKind::Group => self.objects.get(&id).is_some_and(|g| {
                let unified = g
                    .props
                    .get("groupTypes")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|t| t.as_str() == Some("Unified")));
                let security = g
                    .props
                    .get("securityEnabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                unified || security
            }),
            _ => false,
        };
        let seq = self.next_seq();
        // Remove memberships held by the object.
        let groups: Vec<String> = self
            .objects
            .values()
            .filter(|g| g.kind == ObjectKind::Group && g.members.contains(&id))
            .map(|g| g.id.clone())
            .collect();
        for g in &groups {
            self.unlink_member(g, &id, seq, kind);
        }
        let reports: Vec<String> = self
            .objects
            .values()
            .filter(|o| o.manager.as_deref() == Some(id.as_str()))
            .map(|o| o.id.clone())
            .collect();
        for r in reports {
            if let Some(o) = self.objects.get_mut(&r) {
                o.manager = None;
                o.versions.insert("manager".into(), seq);
                o.changed_at = seq;
            }
        }
        self.unindex_object(&id);
        let Some(mut obj) = self.objects.remove(&id) else {
            return Err(GraphError::not_found(&id));
        };
        if soft {
            obj.deleted_at = Some(seq);
            obj.member_of_before_delete = groups;
            obj.props.insert("deletedDateTime".into(), json!(now_iso()));
            obj.deleted_unix_ms = Some(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0),
            );
            self.deleted.insert(id, obj);
        } else {
            self.tombstones.push(Tombstone { id, kind, seq });
        }
        Ok(())
    }

    /// Restores a soft-deleted object (`POST /directory/deletedItems/{id}/restore`).
    pub fn restore(&mut self, id: &str) -> Result<String, GraphError> {
        let Some(obj) = self.deleted.get(id) else {
            return Err(GraphError::not_found(id));
        };
        let mut props = obj.props.clone();
        props.remove("deletedDateTime");
        self.check_unique(id, &props)?;
        let Some(mut obj) = self.deleted.remove(id) else {
            return Err(GraphError::not_found(id));
        };
        let seq = self.next_seq();
        obj.props = props;
        obj.props.insert("deletedDateTime".into(), Value::Null);
        obj.deleted_at = None;
        obj.changed_at = seq;
        for v in obj.versions.values_mut() {
            *v = seq;
        }
        for k in obj.props.keys() {
            obj.versions.insert(k.clone(), seq);
        }
        for mc in obj.member_changes.values_mut() {
            if mc.present {
                mc.seq = seq;
            }
        }
        let groups = std::mem::take(&mut obj.member_of_before_delete);
        self.objects.insert(id.to_string(), obj);
        self.index_object(id);
        for g in groups {
            if self.objects.contains_key(&g) {
                self.link_member(&g, id, seq);
            }
        }
        Ok(id.to_string())
    }

    /// Permanently deletes a soft-deleted object (`DELETE /directory/deletedItems/{id}`).
    pub fn purge(&mut self, id: &str) -> Result<(), GraphError> {
        let Some(obj) = self.deleted.remove(id) else {
            return Err(GraphError::not_found(id));
        };
        let seq = self.next_seq();
        self.tombstones.push(Tombstone {
            id: obj.id,
            kind: obj.kind,
            seq,
        });
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) the manager of a user.
    pub fn set_manager(&mut self, user: &str, manager: Option<&str>) -> Result<(), GraphError> {
        let uid = self.resolve(ObjectKind::User, user)?;
        if let Some(m) = manager {
            let Some(mo) = self.objects.get(m) else {
                return Err(GraphError::not_found(m));
            };
            if !matches!(mo.kind, ObjectKind::User | ObjectKind::Contact) {
                return Err(GraphError::bad_request(
                    "The manager must be a user or an organizational contact.",
                ));
            }
            if m == uid {
                return Err(GraphError::bad_request(
                    "A user cannot be their own manager.",
                ));
            }
        } else if self.objects.get(&uid).is_some_and(|o| o.manager.is_none()) {
            return Err(GraphError::not_found("manager"));
        }
        let seq = self.next_seq();
        if let Some(o) = self.objects.get_mut(&uid) {
            o.manager = manager.map(str::to_string);
            o.versions.insert("manager".into(), seq);
            o.changed_at = seq;
        }
        Ok(())
    }

    /// Permanently deletes soft-deleted objects older than `retention_ms`. Returns how many.
    pub fn purge_expired(&mut self, now_ms: u64, retention_ms: u64) -> usize {
        let expired: Vec<String> = self
            .deleted
            .values()
            .filter(|o| {
                o.deleted_unix_ms
                    .is_some_and(|d| d.saturating_add(retention_ms) < now_ms)
            })
            .map(|o| o.id.clone())
            .collect();
        for id in &expired {
            let _ = self.purge(id);
        }
        expired.len()
    }

    /// Whether a soft-deleted object is older than `retention_ms`.
    pub fn has_expired(&self, now_ms: u64, retention_ms: u64) -> bool {
        self.deleted.values().any(|o| {
            o.deleted_unix_ms
                .is_some_and(|d| d.saturating_add(retention_ms) < now_ms)
        })
    }

    /// Registers a directory extension on an application (`POST
    /// /applications/{id}/extensionProperties`).
    pub fn add_extension(
        &mut self,
        app_object_id: &str,
        body: &Value,
    ) -> Result<Value, GraphError> {
        let Some(app) = self.applications.get(app_object_id) else {
            return Err(GraphError::not_found(app_object_id));
        };
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| GraphError::required("name", "ExtensionProperty"))?;
        let data_type = body
            .get("dataType")
            .and_then(Value::as_str)
            .ok_or_else(|| GraphError::required("dataType", "ExtensionProperty"))?;
        let dt = [
            "Binary",
            "Boolean",
            "DateTime",
            "Integer",
            "LargeInteger",
            "String",
        ]
        .iter()
        .find(|t| t.eq_ignore_ascii_case(data_type))
        .ok_or_else(|| GraphError::invalid_value("dataType", "ExtensionProperty"))?;
        let targets: Vec<String> = match body.get("targetObjects") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| GraphError::invalid_value("targetObjects", "ExtensionProperty"))?,
            _ => return Err(GraphError::required("targetObjects", "ExtensionProperty")),
        };
        let full = format!("extension_{}_{}", app.app_id.replace('-', ""), name);
        if self.extension_def(&full).is_some() {
            return Err(GraphError::conflict("name"));
        }
        let ext = ExtensionProperty {
            id: uuid::Uuid::new_v4().to_string(),
            name: full,
            data_type: dt.to_string(),
            is_multi_valued: body
                .get("isMultiValued")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            target_objects: targets,
            app_display_name: app.display_name.clone(),
        };
        let out = ext.to_json();
        if let Some(app) = self.applications.get_mut(app_object_id) {
            app.extension_properties.push(ext);
        }
        Ok(out)
    }

    /// Lists the extensions of an application.
    pub fn list_extensions(&self, app_object_id: &str) -> Result<Vec<Value>, GraphError> {
        let app = self
            .applications
            .get(app_object_id)
            .ok_or_else(|| GraphError::not_found(app_object_id))?;
        Ok(app
            .extension_properties
            .iter()
            .map(ExtensionProperty::to_json)
            .collect())
    }

    /// Deletes an extension definition.
    pub fn delete_extension(
        &mut self,
        app_object_id: &str,
        ext_id: &str,
    ) -> Result<(), GraphError> {
        let app = self
            .applications
            .get_mut(app_object_id)
            .ok_or_else(|| GraphError::not_found(app_object_id))?;
        let before = app.extension_properties.len();
        app.extension_properties.retain(|e| e.id != ext_id);
        if app.extension_properties.len() == before {
            return Err(GraphError::not_found(ext_id));
        }
        Ok(())
    }

    /// Renders an object with `$select` applied (`id` always included).
    pub fn render(
        obj: &DirObject,
        select: Option<&[String]>,
        with_type: bool,
    ) -> Map<String, Value> {
        let mut m = Map::new();
        if with_type {
            m.insert("@odata.type".into(), json!(obj.kind.odata_type()));
        }
        m.insert("id".into(), json!(obj.id));
        match select {
            Some(sel) => {
                for s in sel {
                    if s.eq_ignore_ascii_case("id")
                        || s.eq_ignore_ascii_case("members")
                        || s.eq_ignore_ascii_case("manager")
                    {
                        continue;
                    }
                    let (name, val) =
                        match obj.props.iter().find(|(k, _)| k.eq_ignore_ascii_case(s)) {
                            Some((k, v)) => (k.clone(), v.clone()),
                            None => (s.clone(), Value::Null),
                        };
                    if HIDDEN.contains(&name.as_str()) {
                        m.insert(name, Value::Null);
                    } else {
                        m.insert(name, val);
                    }
                }
            }
            None if obj.kind == ObjectKind::User => {
                for p in USER_DEFAULT_SELECT {
                    m.insert(
                        (*p).to_string(),
                        obj.props.get(*p).cloned().unwrap_or(Value::Null),
                    );
                }
            }
            None => {
                for (k, v) in &obj.props {
                    if !HIDDEN.contains(&k.as_str()) && !k.starts_with("extension_") {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        m
    }

    /// Live objects of a kind matching the filter, in id order, after `cursor`.
    pub fn list<'a>(
        &'a self,
        kind: ObjectKind,
        q: &'a QueryOptions,
        cursor: Option<&'a str>,
    ) -> impl Iterator<Item = &'a DirObject> + 'a {
        let range = match cursor {
            Some(c) => self
                .objects
                .range::<str, _>((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded)),
            None => self.objects.range::<str, _>(..),
        };
        range
            .map(|(_, o)| o)
            .filter(move |o| o.kind == kind)
            .filter(move |o| q.filter.as_ref().is_none_or(|f| f.matches(&o.id, &o.props)))
    }

    /// Delta page: objects of `kind` changed after `since` (0 = everything), in id order
    /// after `cursor`, at most `limit`. Returns the entries and whether more remain.
    pub fn delta_page(
        &self,
        kind: ObjectKind,
        since: u64,
        cursor: Option<&str>,
        limit: usize,
        select: Option<&[String]>,
    ) -> (Vec<Value>, Option<String>) {
        enum Src<'a> {
            Live(&'a DirObject),
            SoftDeleted,
            HardDeleted,
        }
        let lower = match cursor {
            Some(c) => std::ops::Bound::Excluded(c),
            None => std::ops::Bound::Unbounded,
        };
        let after = |id: &str| cursor.is_none_or(|c| id > c);
        // Phase 1: pick the ids of the page (cheap checks, in id order).
        let mut picked: BTreeMap<&str, Src<'_>> = BTreeMap::new();
        for o in self
            .objects
            .range::<str, _>((lower, std::ops::Bound::Unbounded))
            .map(|(_, o)| o)
        {
            if o.kind != kind {
                continue;
            }
            let include = since == 0
                || o.changed_at > since
                || o.member_changes.values().any(|c| c.seq > since);
            if include {
                picked.insert(&o.id, Src::Live(o));
                if since == 0 && picked.len() > limit {
                    break;
                }
            }
        }
        if since > 0 {
            for o in self
                .deleted
                .range::<str, _>((lower, std::ops::Bound::Unbounded))
                .map(|(_, o)| o)
            {
                if o.kind == kind && o.deleted_at.is_some_and(|d| d > since) {
                    picked.insert(&o.id, Src::SoftDeleted);
                }
            }
            for t in &self.tombstones {
                if t.kind == kind && after(&t.id) && t.seq > since {
                    picked.insert(&t.id, Src::HardDeleted);
                }
            }
        }
        let more = picked.len() > limit;
        let want_members =
            select.is_none_or(|s| s.iter().any(|p| p.eq_ignore_ascii_case("members")));
        // Phase 2: render the page.
        let mut out = Vec::new();
        let mut last = None;
        for (id, src) in picked.into_iter().take(limit) {
            last = Some(id.to_string());
            let v = match src {
                Src::SoftDeleted => json!({"id": id, "@removed": {"reason": "changed"}}),
                Src::HardDeleted => json!({"id": id, "@removed": {"reason": "deleted"}}),
                Src::Live(o) if since == 0 => {
                    let mut m = Self::render(o, select, false);
                    if kind == ObjectKind::User
                        && select
                            .is_some_and(|s| s.iter().any(|x| x.eq_ignore_ascii_case("manager")))
                    {
                        m.remove("manager");
                        if o.manager.is_some() {
                            m.insert("manager@delta".into(), manager_delta(self, o));
                        }
                    }
                    if kind == ObjectKind::Group && want_members {
                        let members: Vec<Value> = o
                            .members
                            .iter()
                            .map(|mid| {
                                let k = self
                                    .objects
                                    .get(mid)
                                    .map(|x| x.kind)
                                    .unwrap_or(ObjectKind::User);
                                json!({"@odata.type": k.odata_type(), "id": mid})
                            })
                            .collect();
                        m.insert("members@delta".into(), Value::Array(members));
                    }
                    Value::Object(m)
                }
                Src::Live(o) => {
                    let mut m = Map::new();
                    m.insert("id".into(), json!(o.id));
                    for (p, ver) in &o.versions {
                        if *ver <= since || HIDDEN.contains(&p.as_str()) {
                            continue;
                        }
                        if p == "manager" {
                            if select.is_some_and(|s| {
                                s.iter().any(|x| x.eq_ignore_ascii_case("manager"))
                            }) {
                                m.insert("manager@delta".into(), manager_delta(self, o));
                            }
                            continue;
                        }
                        if let Some(sel) = select
                            && !sel.iter().any(|s| s.eq_ignore_ascii_case(p))
                        {
                            continue;
                        }
                        m.insert(p.clone(), o.props.get(p).cloned().unwrap_or(Value::Null));
                    }
                    if kind == ObjectKind::Group && want_members {
                        let changes: Vec<Value> = o
                            .member_changes
                            .iter()
                            .filter(|(_, c)| c.seq > since)
                            .map(|(mid, c)| {
                                if c.present {
                                    json!({"@odata.type": c.kind.odata_type(), "id": mid})
                                } else {
                                    json!({"@odata.type": c.kind.odata_type(), "id": mid, "@removed": {"reason": "deleted"}})
                                }
                            })
                            .collect();
                        if !changes.is_empty() {
                            m.insert("members@delta".into(), Value::Array(changes));
                        }
                    }
                    Value::Object(m)
                }
            };
            out.push(v);
        }
        (out, if more { last } else { None })
    }
}

fn manager_delta(t: &Tenant, o: &DirObject) -> Value {
    match &o.manager {
        Some(mid) => {
            let k = t
                .objects
                .get(mid)
                .map(|x| x.kind)
                .unwrap_or(ObjectKind::User);
            json!([{"@odata.type": k.odata_type(), "id": mid}])
        }
        None => json!([]),
    }
}

fn check_type(name: &str, v: &Value, resource: &str) -> Result<(), GraphError> {
    if v.is_null() || name.starts_with("extension_") {
        return Ok(());
    }
    let ok = if BOOL_PROPS.contains(&name) {
        v.is_boolean()
    } else if STRING_LIST_PROPS.contains(&name) {
        v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    } else if OBJECT_PROPS.contains(&name) {
        v.is_object()
    } else if LIST_PROPS.contains(&name) {
        v.is_array()
    } else if USER_WRITABLE.contains(&name) || GROUP_WRITABLE.contains(&name) {
        v.is_string()
    } else {
        true
    };
    if ok {
        Ok(())
    } else {
        Err(GraphError::invalid_value(name, resource))
    }
}

fn check_extension_value(def: &ExtensionProperty, v: &Value) -> Result<(), GraphError> {
    if v.is_null() {
        return Ok(());
    }
    let one = |x: &Value| match def.data_type.as_str() {
        "String" => x.as_str().is_some_and(|s| s.chars().count() <= 256),
        "Boolean" => x.is_boolean(),
        "Integer" => x.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "LargeInteger" => x.is_i64() || x.is_u64(),
        "DateTime" | "Binary" => x.is_string(),
        _ => false,
    };
    let ok = if def.is_multi_valued {
        v.as_array().is_some_and(|a| a.iter().all(one))
    } else {
        one(v)
    };
    if ok {
        Ok(())
    } else {
        Err(GraphError::bad_request(format!(
            "Invalid value specified for property '{}' of resource '{}'.",
            def.name,
            def.target_objects
                .first()
                .map(String::as_str)
                .unwrap_or("User")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(upn: &str) -> Value {
        json!({"accountEnabled": true, "displayName": upn, "mailNickname": "x",
               "userPrincipalName": upn, "passwordProfile": {"password": "P@ssw0rd!"}})
    }

    #[test]
    fn create_requires_properties_and_unique_upn() {
        let mut t = Tenant::new("t", vec![]);
        let e = t.create_user(&json!({"displayName": "a"})).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("accountEnabled"));
        t.create_user(&user("a@x.com")).unwrap();
        let e = t.create_user(&user("A@X.com")).unwrap_err();
        assert_eq!(
            e.message,
            "Another object with the same value for property userPrincipalName already exists."
        );
    }

    #[test]
    fn delta_reports_changes_and_removals() {
        let mut t = Tenant::new("t", vec![]);
        let a = t.create_user(&user("a@x.com")).unwrap();
        let b = t.create_user(&user("b@x.com")).unwrap();
        let mark = t.seq;
        t.update(ObjectKind::User, &a, &json!({"jobTitle": "CEO"}))
            .unwrap();
        t.delete(ObjectKind::User, &b).unwrap();
        let (page, more) = t.delta_page(ObjectKind::User, mark, None, 100, None);
        assert!(more.is_none());
        assert_eq!(page.len(), 2);
        let changed = page.iter().find(|v| v["id"] == json!(a)).unwrap();
        assert_eq!(changed["jobTitle"], json!("CEO"));
        assert!(changed.get("displayName").is_none());
        let removed = page.iter().find(|v| v["id"] == json!(b)).unwrap();
        assert_eq!(removed["@removed"]["reason"], json!("changed"));
        t.restore(&b).unwrap();
        t.purge(&b).unwrap_err();
    }
}

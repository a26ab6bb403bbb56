//! The generic LDAP connector (OpenLDAP, 389-ds and other RFC 4511 servers).
//!
//! Full import is a paged subtree search per partition; delta import uses RFC 4533 content
//! synchronization (refreshOnly, the cookie is the watermark, deletes from the delete or present
//! phase) or `modifyTimestamp` polling; export writes adds, modifies, renames/moves and deletes
//! with one result per object.

use super::ber;
use super::connection::{
    LdapClient, RawEntry, SearchMsg, export_error_kind, rc_name, result_error,
};
use super::filter;
use super::settings::{DeltaMethod, LdapSettings, PartitionSettings};
use crate::connectors::{
    Capabilities, Connector, ConnectorError, ConnectorSpaceView, ExportErrorKind, ExportOperation,
    ExportOutcome, ExportRequest, ExportResult, ImportChange, ImportSink, Watermark,
};
use crate::model::{
    AttrType, AttributeChange, AttributeDef, Dn, Object, ObjectTypeDef, Schema, Value,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ldap3::Mod;
use ldap3::Scope;
use ldap3::controls::RawControl;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// OID of the RFC 4533 sync request control.
pub const SYNC_REQUEST_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";
/// OID of the RFC 4533 sync state control.
pub const SYNC_STATE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.2";
/// OID of the RFC 4533 sync done control.
pub const SYNC_DONE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.3";
/// OID of the RFC 4533 sync info intermediate response.
pub const SYNC_INFO_OID: &str = "1.3.6.1.4.1.4203.1.9.1.4";

/// A partition with parsed DNs.
#[derive(Debug, Clone)]
pub struct Partition {
    /// Base DN.
    pub base: Dn,
    /// Containers in scope (empty: all).
    pub include: Vec<Dn>,
    /// Containers out of scope.
    pub exclude: Vec<Dn>,
}

impl Partition {
    /// Parses the configured DNs.
    pub fn from_settings(p: &PartitionSettings) -> Result<Partition, ConnectorError> {
        let parse =
            |s: &str| Dn::parse(s).map_err(|e| ConnectorError::Config(format!("partition: {e}")));
        Ok(Partition {
            base: parse(&p.base)?,
            include: p
                .include
                .iter()
                .map(|s| parse(s))
                .collect::<Result<_, _>>()?,
            exclude: p
                .exclude
                .iter()
                .map(|s| parse(s))
                .collect::<Result<_, _>>()?,
        })
    }

    /// True when `dn` lies in this partition and passes the container filters.
    pub fn in_scope(&self, dn: &Dn) -> bool {
        dn.is_within(&self.base)
            && (self.include.is_empty() || self.include.iter().any(|c| dn.is_within(c)))
            && !self.exclude.iter().any(|c| dn.is_within(c))
    }
}

/// Converts LDAP values to typed values and back.
#[derive(Debug, Clone, Default)]
pub struct ValueCodec {
    binary: HashSet<String>,
    types: BTreeMap<String, AttrType>,
}

impl ValueCodec {
    /// A codec with these binary attributes and attribute types (names case-insensitive).
    pub fn new<'a>(
        binary: impl IntoIterator<Item = &'a String>,
        types: &BTreeMap<String, AttrType>,
    ) -> ValueCodec {
        ValueCodec {
            binary: binary.into_iter().map(|s| s.to_ascii_lowercase()).collect(),
            types: types
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), *v))
                .collect(),
        }
    }

    /// Adds a type for an attribute.
    pub fn set_type(&mut self, name: &str, ty: AttrType) {
        if ty == AttrType::Binary {
            self.binary.insert(name.to_ascii_lowercase());
        } else {
            self.types.insert(name.to_ascii_lowercase(), ty);
        }
    }

    /// The configured type of an attribute (None: string or binary by content).
    pub fn type_of(&self, name: &str) -> Option<AttrType> {
        let lower = name.to_ascii_lowercase();
        let base = lower.split(';').next().unwrap_or(&lower);
        if self.binary.contains(base) || self.binary.contains(&lower) {
            return Some(AttrType::Binary);
        }
        self.types.get(base).copied()
    }

    /// Decodes one wire value.
    pub fn decode(&self, name: &str, raw: &[u8]) -> Value {
        Self::decode_as(self.type_of(name), name, raw)
    }

    /// Decodes one wire value with the attribute's type already looked up.
    pub fn decode_as(ty: Option<AttrType>, name: &str, raw: &[u8]) -> Value {
        match ty {
            Some(AttrType::Binary) => Value::Bin(raw.to_vec()),
            Some(ty) => match std::str::from_utf8(raw) {
                Ok(text) => Value::parse_as(text, ty).unwrap_or_else(|e| {
                    tracing::debug!(attribute = name, error = %e, "value kept as a string");
                    Value::Str(text.to_string())
                }),
                Err(_) => Value::Bin(raw.to_vec()),
            },
            None => match std::str::from_utf8(raw) {
                Ok(text) => Value::Str(text.to_string()),
                Err(_) => Value::Bin(raw.to_vec()),
            },
        }
    }

    /// Decodes one wire value, taking ownership (no copy for strings and binaries).
    pub fn decode_owned(ty: Option<AttrType>, name: &str, raw: Vec<u8>) -> Value {
        match ty {
            Some(AttrType::Binary) => Value::Bin(raw),
            None => match String::from_utf8(raw) {
                Ok(text) => Value::Str(text),
                Err(e) => Value::Bin(e.into_bytes()),
            },
            Some(_) => Self::decode_as(ty, name, &raw),
        }
    }

    /// Encodes one value for the wire.
    pub fn encode(value: &Value) -> Vec<u8> {
        match value {
            Value::Str(s) | Value::Ref(s) => s.as_bytes().to_vec(),
            Value::Bin(b) => b.clone(),
            Value::Int(i) => i.to_string().into_bytes(),
            Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.as_bytes().to_vec(),
            Value::Dt(d) => d.format("%Y%m%d%H%M%SZ").to_string().into_bytes(),
        }
    }
}

/// Formats a 16-byte UUID (RFC 4122 byte order) as OpenLDAP writes `entryUUID`.
pub fn uuid_text(bytes: &[u8]) -> Option<String> {
    let b: [u8; 16] = bytes.try_into().ok()?;
    Some(uuid::Uuid::from_bytes(b).hyphenated().to_string())
}

/// Entries handed from the reader thread to the converter at once.
const IMPORT_BATCH: usize = 256;

/// The delta watermark of the generic connector.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "method", rename_all = "snake_case")]
enum LdapWatermark {
    /// RFC 4533 cookies (base64) by partition base.
    Syncrepl { cookies: BTreeMap<String, String> },
    /// Highest `modifyTimestamp` (GeneralizedTime) seen.
    ModifyTimestamp { since: String },
}

/// Maps entries to objects: object types, scope, anchor, value types.
#[derive(Debug, Clone)]
pub struct EntryMapper {
    /// Object type name -> object class.
    pub object_types: BTreeMap<String, String>,
    /// Partitions with their container filters.
    pub partitions: Vec<Partition>,
    /// Anchor attribute.
    pub anchor_attribute: String,
    /// Value conversion.
    pub codec: ValueCodec,
}

impl EntryMapper {
    /// The object type for these object classes.
    pub fn object_type(&self, classes: &[Vec<u8>]) -> Option<String> {
        self.object_types.iter().find_map(|(ty, oc)| {
            classes
                .iter()
                .any(|c| c.eq_ignore_ascii_case(oc.as_bytes()))
                .then(|| ty.clone())
        })
    }

    /// True when `dn` is inside a partition and its container filters.
    pub fn in_scope(&self, dn: &Dn) -> bool {
        self.partitions.iter().any(|p| p.in_scope(dn))
    }

    /// Converts an entry; `Ok(None)` when it is not an object this connector manages
    /// (the scope is not checked here). Values are moved, not copied.
    pub fn to_object(&self, e: RawEntry) -> Result<Option<Object>, ConnectorError> {
        let Some(ty) = e.values("objectClass").and_then(|c| self.object_type(c)) else {
            return Ok(None);
        };
        let anchor_name = &self.anchor_attribute;
        let anchor = match e.values(anchor_name).and_then(|v| v.first()) {
            Some(v) => match self.codec.decode(anchor_name, v) {
                Value::Bin(b) => B64.encode(b),
                other => other.to_text(),
            },
            None => {
                tracing::warn!(dn = %e.dn, anchor = %anchor_name, "entry without anchor skipped");
                return Ok(None);
            }
        };
        let dn = Dn::parse(&e.dn).map_err(|err| ConnectorError::Protocol(err.to_string()))?;
        let mut obj = Object::new(Some(anchor), dn, &ty);
        for (name, vals) in e.attrs {
            if vals.is_empty() || name.eq_ignore_ascii_case("modifyTimestamp") {
                continue;
            }
            let ty = self.codec.type_of(&name);
            let values: Vec<Value> = vals
                .into_iter()
                .map(|v| ValueCodec::decode_owned(ty, &name, v))
                .collect();
            obj.attributes.insert(name, values);
        }
        Ok(Some(obj))
    }
}

/// A change collected during a content synchronization search, converted afterwards.
enum Pending {
    Upsert(RawEntry),
    Delete(String),
}

/// The generic LDAP connector.
#[derive(Debug)]
pub struct LdapConnector {
    settings: LdapSettings,
    client: LdapClient,
    map: EntryMapper,
}

impl LdapConnector {
    /// Creates the connector; the password comes from `bind_password_env` / `bind_password_file`.
    pub fn new(settings: LdapSettings) -> Result<LdapConnector, ConnectorError> {
        let client = LdapClient::new(settings.connection.clone())?;
        Self::build(settings, client)
    }

    /// Creates the connector with a password handed over by the caller.
    pub fn with_password(
        settings: LdapSettings,
        password: Option<String>,
    ) -> Result<LdapConnector, ConnectorError> {
        let client = LdapClient::with_password(settings.connection.clone(), password)?;
        Self::build(settings, client)
    }

    fn build(settings: LdapSettings, client: LdapClient) -> Result<LdapConnector, ConnectorError> {
        if settings.partitions.is_empty() {
            return Err(ConnectorError::Config(
                "at least one partition is needed".into(),
            ));
        }
        if settings.object_types.is_empty() {
            return Err(ConnectorError::Config(
                "at least one object type is needed".into(),
            ));
        }
        if settings.page_size == 0 {
            return Err(ConnectorError::Config(
                "page_size must be at least 1".into(),
            ));
        }
        let partitions = settings
            .partitions
            .iter()
            .map(Partition::from_settings)
            .collect::<Result<Vec<_>, _>>()?;
        let map = EntryMapper {
            object_types: settings.object_types.clone(),
            partitions,
            anchor_attribute: settings.anchor_attribute.clone(),
            codec: ValueCodec::new(&settings.binary_attributes, &settings.attribute_types),
        };
        Ok(LdapConnector {
            settings,
            client,
            map,
        })
    }

    fn filter(&self) -> String {
        filter::any_object_class(self.settings.object_types.values().map(String::as_str))
    }

    fn requested_attributes(&self, with_timestamp: bool) -> Vec<String> {
        let mut attrs = if self.settings.attributes.is_empty() {
            vec!["*".to_string()]
        } else {
            let mut a = self.settings.attributes.clone();
            a.push("objectClass".into());
            a
        };
        a_push(&mut attrs, &self.settings.anchor_attribute);
        if with_timestamp {
            a_push(&mut attrs, "modifyTimestamp");
        }
        attrs
    }

    /// Reads the current RFC 4533 cookie of a partition without transferring entries.
    fn current_cookie(&mut self, base: &str) -> Result<Vec<u8>, ConnectorError> {
        let done = self.client.search(
            base,
            Scope::Subtree,
            "(&(objectClass=*)(!(objectClass=*)))",
            &["1.1".to_string()],
            vec![sync_request(None)],
            &mut |_| Ok(()),
        )?;
        if done.rc != 0 {
            return Err(result_error(
                self.client.target(),
                done.rc,
                &done.text,
                base,
            ));
        }
        let cookie = done
            .control(SYNC_DONE_OID)
            .and_then(|c| c.val.as_deref())
            .and_then(|v| parse_sync_done(v).ok())
            .and_then(|d| d.0);
        cookie.ok_or_else(|| {
            ConnectorError::Unsupported(format!(
                "the server returned no content synchronization cookie for '{base}' \
                 (is the syncprov overlay configured?); use delta = \"modify_timestamp\""
            ))
        })
    }

    /// Paged search of every partition; returns the highest modifyTimestamp seen.
    fn paged_import(
        &mut self,
        sink: &mut dyn ImportSink,
        since: Option<&str>,
    ) -> Result<Option<String>, ConnectorError> {
        let mut filter = self.filter();
        if let Some(ts) = since {
            filter = format!(
                "(&{filter}(modifyTimestamp>={}))",
                filter::escape_filter_value(ts)
            );
        }
        let timestamps = self.settings.delta == DeltaMethod::ModifyTimestamp;
        let attrs = self.requested_attributes(timestamps);
        let page = self.settings.page_size;
        let map = &self.map;
        let client = &mut self.client;
        let mut max_ts: Option<String> = since.map(str::to_string);
        let mut count = 0u64;
        for p in &map.partitions {
            let base = p.base.to_string();
            // The search (network and BER decoding) runs on a helper thread and hands over
            // batches of entries; this thread converts them and feeds the sink.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<RawEntry>>(8);
            let pages = std::thread::scope(|scope| -> Result<u32, ConnectorError> {
                let (filter, attrs, base) = (&filter, &attrs, &base);
                let client = &mut *client;
                let reader = scope.spawn(move || {
                    let mut batch: Vec<RawEntry> = Vec::with_capacity(IMPORT_BATCH);
                    let r = client.search_paged(
                        base,
                        Scope::Subtree,
                        filter,
                        attrs,
                        page,
                        &[],
                        &mut |e| {
                            batch.push(e);
                            if batch.len() >= IMPORT_BATCH {
                                let full =
                                    std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH));
                                tx.send(full).map_err(|_| ConnectorError::Cancelled)?;
                            }
                            Ok(())
                        },
                    );
                    if r.is_ok() && !batch.is_empty() {
                        let _ = tx.send(batch);
                    }
                    r
                });
                let mut consumer = || -> Result<(), ConnectorError> {
                    for batch in rx.iter() {
                        for e in batch {
                            if timestamps
                                && let Some(ts) = e.first_text("modifyTimestamp")
                                && max_ts.as_deref().is_none_or(|m| ts.as_str() > m)
                            {
                                max_ts = Some(ts);
                            }
                            if let Some(obj) = map.to_object(e)?
                                && p.in_scope(&obj.dn)
                            {
                                count += 1;
                                sink.push(ImportChange::Upsert(obj))?;
                            }
                        }
                    }
                    Ok(())
                };
                let consumed = consumer();
                // On a consumer error the receiver is dropped here and the reader stops.
                drop(rx);
                let read = reader.join().map_err(|_| {
                    ConnectorError::Protocol("the LDAP reader thread panicked".into())
                })?;
                consumed?;
                read
            })?;
            tracing::info!(base = %base, pages, objects = count, "LDAP partition imported");
        }
        Ok(max_ts)
    }

    fn delta_syncrepl(
        &mut self,
        cookies: BTreeMap<String, String>,
        cs: &dyn ConnectorSpaceView,
        sink: &mut dyn ImportSink,
    ) -> Result<Watermark, ConnectorError> {
        let mut next = BTreeMap::new();
        let filter = self.filter();
        let attrs = self.requested_attributes(false);
        let partitions = self.map.partitions.clone();
        for p in &partitions {
            let base = p.base.to_string();
            let cookie = match cookies.get(&base) {
                Some(c) => B64
                    .decode(c)
                    .map_err(|_| ConnectorError::WatermarkExpired("undecodable cookie".into()))?,
                None => {
                    return Err(ConnectorError::WatermarkExpired(format!(
                        "no cookie for partition '{base}'"
                    )));
                }
            };
            let mut present: HashSet<String> = HashSet::new();
            let mut pending: Vec<Pending> = Vec::new();
            let mut latest_cookie: Option<Vec<u8>> = None;
            let mut proto_err: Option<ConnectorError> = None;
            let done = self.client.search(
                &base,
                Scope::Subtree,
                &filter,
                &attrs,
                vec![sync_request(Some(&cookie))],
                &mut |m| {
                    match m {
                        SearchMsg::Entry(e) => {
                            let state = e
                                .controls
                                .iter()
                                .find(|c| c.ctype == SYNC_STATE_OID)
                                .and_then(|c| c.val.as_deref())
                                .map(parse_sync_state);
                            let Some(Ok((state, uuid, ck))) = state else {
                                proto_err = Some(ConnectorError::Protocol(format!(
                                    "entry '{}' without a valid sync state control",
                                    e.dn
                                )));
                                return Ok(());
                            };
                            if ck.is_some() {
                                latest_cookie = ck;
                            }
                            let uuid = uuid_text(&uuid).unwrap_or_default();
                            present.insert(uuid.clone());
                            match state {
                                1 | 2 => pending.push(Pending::Upsert(e)),
                                3 => pending.push(Pending::Delete(uuid)),
                                _ => {}
                            }
                        }
                        SearchMsg::Intermediate { oid, value, .. } => {
                            if oid.as_deref() != Some(SYNC_INFO_OID) {
                                return Ok(());
                            }
                            match value.as_deref().map(parse_sync_info) {
                                Some(Ok(info)) => {
                                    if info.cookie.is_some() {
                                        latest_cookie = info.cookie;
                                    }
                                    for u in info.uuids {
                                        let u = uuid_text(&u).unwrap_or_default();
                                        if info.deletes {
                                            pending.push(Pending::Delete(u));
                                        } else {
                                            present.insert(u);
                                        }
                                    }
                                }
                                _ => {
                                    proto_err = Some(ConnectorError::Protocol(
                                        "malformed syncInfo message".into(),
                                    ))
                                }
                            }
                        }
                    }
                    Ok(())
                },
            )?;
            if let Some(e) = proto_err {
                return Err(e);
            }
            match done.rc {
                0 => {}
                4096 => {
                    return Err(ConnectorError::WatermarkExpired(format!(
                        "the server asks for a full refresh of '{base}' ({})",
                        done.text
                    )));
                }
                rc => {
                    return Err(ConnectorError::Protocol(format!(
                        "content synchronization of '{base}' failed: {} ({rc}) {}",
                        rc_name(rc),
                        done.text
                    )));
                }
            }
            let Some(Ok((done_cookie, refresh_deletes))) = done
                .control(SYNC_DONE_OID)
                .and_then(|c| c.val.as_deref())
                .map(parse_sync_done)
            else {
                return Err(ConnectorError::Protocol(
                    "content synchronization ended without a sync done control".into(),
                ));
            };
            let mut upserted: HashSet<String> = HashSet::new();
            let mut deleted: HashSet<String> = HashSet::new();
            for c in pending {
                match c {
                    Pending::Upsert(raw) => match self.map.to_object(raw)? {
                        Some(obj) if p.in_scope(&obj.dn) => {
                            if let Some(a) = &obj.anchor {
                                upserted.insert(a.clone());
                            }
                            sink.push(ImportChange::Upsert(obj))?;
                        }
                        Some(obj) => {
                            // Moved out of scope: gone from the connector's point of view.
                            if let Some(a) = obj.anchor
                                && cs.by_anchor(&a).is_some()
                                && deleted.insert(a.clone())
                            {
                                sink.push(ImportChange::Delete { anchor: a })?;
                            }
                        }
                        None => {}
                    },
                    Pending::Delete(anchor) => {
                        if cs.by_anchor(&anchor).is_some() && deleted.insert(anchor.clone()) {
                            sink.push(ImportChange::Delete { anchor })?;
                        }
                    }
                }
            }
            if !refresh_deletes {
                // Present phase: what the connector space holds in this partition and the
                // server did not name is gone.
                for obj in cs.descendants(&p.base) {
                    let Some(a) = obj.anchor else { continue };
                    if !present.contains(&a) && !upserted.contains(&a) && deleted.insert(a.clone())
                    {
                        sink.push(ImportChange::Delete { anchor: a })?;
                    }
                }
            }
            tracing::info!(base = %base, upserts = upserted.len(), deletes = deleted.len(), present_phase = !refresh_deletes, "LDAP content synchronization done");
            let new_cookie = done_cookie.or(latest_cookie).unwrap_or(cookie);
            next.insert(base, B64.encode(new_cookie));
        }
        encode_watermark(&LdapWatermark::Syncrepl { cookies: next })
    }

    fn export_one(&mut self, req: &ExportRequest) -> ExportOutcome {
        let anchor_name = self.settings.anchor_attribute.clone();
        let codec = self.map.codec.clone();
        export_request(
            &mut self.client,
            req,
            &|_, v| ValueCodec::encode(v),
            &mut |client, dn| {
                read_anchor(
                    client,
                    dn,
                    &anchor_name,
                    &|raw| match codec.decode(&anchor_name, raw) {
                        Value::Bin(b) => B64.encode(b),
                        other => other.to_text(),
                    },
                )
            },
        )
    }
}

/// Encodes one value for an attribute on the wire.
pub type Encoder<'a> = &'a dyn Fn(&str, &Value) -> Vec<u8>;

/// Reads the anchor of a freshly added entry.
pub type AnchorReader<'a> =
    &'a mut dyn FnMut(&mut LdapClient, &str) -> Result<Option<String>, ExportOutcome>;

/// Runs one export request (add, modify, rename/move, delete) and returns its outcome.
pub fn export_request(
    client: &mut LdapClient,
    req: &ExportRequest,
    encode: Encoder<'_>,
    anchor: AnchorReader<'_>,
) -> ExportOutcome {
    match export_inner(client, req, encode, anchor) {
        Ok(anchor) => ExportOutcome::Success { anchor },
        Err(f) => f,
    }
}

fn ldap_call(
    client: &mut LdapClient,
    what: &str,
    dn: &str,
    r: Result<ldap3::LdapResult, ldap3::LdapError>,
) -> Result<(), ExportOutcome> {
    match client.write_result(r) {
        Ok(res) if res.rc == 0 => Ok(()),
        Ok(res) => Err(ExportOutcome::Failed {
            kind: export_error_kind(res.rc),
            message: format!(
                "{what} '{dn}': {} ({}) {}",
                rc_name(res.rc),
                res.rc,
                res.text
            ),
        }),
        Err(e) => Err(ExportOutcome::Failed {
            kind: ExportErrorKind::Transient,
            message: format!("{what} '{dn}': {e}"),
        }),
    }
}

fn export_inner(
    client: &mut LdapClient,
    req: &ExportRequest,
    encode: Encoder<'_>,
    anchor: AnchorReader<'_>,
) -> Result<Option<String>, ExportOutcome> {
    let dn = req.dn.to_string();
    let timeout = client.timeout();
    let conn_fail = |e: ConnectorError| ExportOutcome::Failed {
        kind: ExportErrorKind::Transient,
        message: e.to_string(),
    };
    match &req.operation {
        ExportOperation::Add { attributes } => {
            let mut attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = Vec::new();
            for (name, vals) in attributes {
                if vals.is_empty() {
                    continue;
                }
                attrs.push((
                    name.as_bytes().to_vec(),
                    vals.iter().map(|v| encode(name, v)).collect(),
                ));
            }
            let r = client
                .conn()
                .map_err(conn_fail)?
                .with_timeout(timeout)
                .add(&dn, attrs);
            ldap_call(client, "add", &dn, r)?;
            anchor(client, &dn)
        }
        ExportOperation::Update { changes, new_dn } => {
            let mut current = dn.clone();
            if let Some(target) = new_dn.as_ref().filter(|t| **t != req.dn) {
                let rdn =
                    target
                        .rdn()
                        .map(|r| r.to_string())
                        .ok_or_else(|| ExportOutcome::Failed {
                            kind: ExportErrorKind::IdentityDataValidationFailed,
                            message: "the new DN is empty".into(),
                        })?;
                let parent = target.parent();
                let new_sup = (parent != req.dn.parent()).then(|| parent.to_string());
                let r = client
                    .conn()
                    .map_err(conn_fail)?
                    .with_timeout(timeout)
                    .modifydn(&dn, &rdn, true, new_sup.as_deref());
                ldap_call(client, "rename", &dn, r)?;
                current = target.to_string();
            }
            if !changes.is_empty() {
                let mods = to_mods(changes, encode);
                let r = client
                    .conn()
                    .map_err(conn_fail)?
                    .with_timeout(timeout)
                    .modify(&current, mods);
                ldap_call(client, "modify", &current, r)?;
            }
            Ok(req.anchor.clone())
        }
        ExportOperation::Delete => {
            let r = client
                .conn()
                .map_err(conn_fail)?
                .with_timeout(timeout)
                .delete(&dn);
            ldap_call(client, "delete", &dn, r)?;
            Ok(req.anchor.clone())
        }
    }
}

/// Reads one attribute of an entry as the anchor (after an add).
pub fn read_anchor(
    client: &mut LdapClient,
    dn: &str,
    anchor_name: &str,
    to_text: &dyn Fn(&[u8]) -> String,
) -> Result<Option<String>, ExportOutcome> {
    let entry = client
        .read_entry(dn, &[anchor_name.to_string()], Vec::new())
        .map_err(|e| ExportOutcome::Failed {
            kind: ExportErrorKind::Transient,
            message: format!("added '{dn}' but could not read its anchor: {e}"),
        })?;
    Ok(entry
        .and_then(|e| e.values(anchor_name).and_then(|v| v.first().cloned()))
        .map(|v| to_text(&v)))
}

/// Converts attribute changes into LDAP modify operations.
pub fn to_mods(changes: &[AttributeChange], encode: Encoder<'_>) -> Vec<Mod<Vec<u8>>> {
    changes
        .iter()
        .map(|c| {
            let set = |name: &str, vals: &[Value]| {
                vals.iter().map(|v| encode(name, v)).collect::<HashSet<_>>()
            };
            match c {
                AttributeChange::Add { name, values } => {
                    Mod::Add(name.as_bytes().to_vec(), set(name, values))
                }
                AttributeChange::Remove { name, values } => {
                    Mod::Delete(name.as_bytes().to_vec(), set(name, values))
                }
                AttributeChange::Replace { name, values } => {
                    Mod::Replace(name.as_bytes().to_vec(), set(name, values))
                }
            }
        })
        .collect()
}

fn encode_watermark(wm: &LdapWatermark) -> Result<Watermark, ConnectorError> {
    serde_json::to_string(wm)
        .map(Some)
        .map_err(|e| ConnectorError::Protocol(format!("watermark: {e}")))
}

impl Connector for LdapConnector {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            delta_import: true,
            export: true,
        }
    }

    fn schema(&mut self) -> Result<Schema, ConnectorError> {
        let types: Vec<(String, String)> = self
            .settings
            .object_types
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match super::subschema::discover(
            &mut self.client,
            &types,
            &self.settings.attributes,
            &self.map.codec,
        ) {
            Ok(schema) => Ok(schema),
            Err(e @ (ConnectorError::Unsupported(_) | ConnectorError::Protocol(_))) => {
                tracing::warn!(error = %e, "schema discovery failed; using the configured attributes");
                let mut schema = Schema::default();
                for ty in self.settings.object_types.keys() {
                    let mut def = ObjectTypeDef::default();
                    for a in &self.settings.attributes {
                        let t = self.map.codec.type_of(a).unwrap_or(AttrType::String);
                        def.attributes.insert(
                            a.clone(),
                            AttributeDef {
                                ty: t,
                                multi_valued: true,
                            },
                        );
                    }
                    schema.object_types.insert(ty.clone(), def);
                }
                Ok(schema)
            }
            Err(e) => Err(e),
        }
    }

    fn full_import(&mut self, sink: &mut dyn ImportSink) -> Result<Watermark, ConnectorError> {
        match self.settings.delta {
            DeltaMethod::Syncrepl => {
                // Take the cookies first: changes made during the import come again in the
                // next delta (at least once), never lost.
                let mut cookies = BTreeMap::new();
                for base in self
                    .map
                    .partitions
                    .iter()
                    .map(|p| p.base.to_string())
                    .collect::<Vec<_>>()
                {
                    match self.current_cookie(&base) {
                        Ok(c) => {
                            cookies.insert(base, B64.encode(c));
                        }
                        // No content synchronization on this server: the import still runs,
                        // without a delta watermark (every run is a full import).
                        Err(e @ (ConnectorError::Unsupported(_) | ConnectorError::Protocol(_))) => {
                            tracing::warn!(base = %base, error = %e, "no RFC 4533 cookie; delta import unavailable");
                            self.paged_import(sink, None)?;
                            return Ok(None);
                        }
                        Err(e) => return Err(e),
                    }
                }
                self.paged_import(sink, None)?;
                encode_watermark(&LdapWatermark::Syncrepl { cookies })
            }
            DeltaMethod::ModifyTimestamp => {
                let ts = self.paged_import(sink, None)?;
                match ts {
                    Some(since) => encode_watermark(&LdapWatermark::ModifyTimestamp { since }),
                    None => Ok(None),
                }
            }
        }
    }

    fn delta_import(
        &mut self,
        watermark: &str,
        cs: &dyn ConnectorSpaceView,
        sink: &mut dyn ImportSink,
    ) -> Result<Watermark, ConnectorError> {
        let wm: LdapWatermark = serde_json::from_str(watermark)
            .map_err(|e| ConnectorError::WatermarkExpired(format!("unreadable watermark: {e}")))?;
        match (wm, self.settings.delta) {
            (LdapWatermark::Syncrepl { cookies }, DeltaMethod::Syncrepl) => {
                self.delta_syncrepl(cookies, cs, sink)
            }
            (LdapWatermark::ModifyTimestamp { since }, DeltaMethod::ModifyTimestamp) => {
                let ts = self.paged_import(sink, Some(&since))?;
                encode_watermark(&LdapWatermark::ModifyTimestamp {
                    since: ts.unwrap_or(since),
                })
            }
            _ => Err(ConnectorError::WatermarkExpired(
                "the delta method changed since the last import".into(),
            )),
        }
    }

    fn export(&mut self, batch: &[ExportRequest]) -> Result<Vec<ExportResult>, ConnectorError> {
        let mut out = Vec::with_capacity(batch.len());
        for req in batch {
            let outcome = self.export_one(req);
            match &outcome {
                ExportOutcome::Success { .. } => {
                    tracing::debug!(id = req.id, dn = %req.dn, "LDAP export written")
                }
                ExportOutcome::Failed { kind, message } => {
                    tracing::warn!(id = req.id, dn = %req.dn, ?kind, %message, "LDAP export failed")
                }
            }
            out.push(ExportResult {
                id: req.id,
                outcome,
            });
        }
        Ok(out)
    }
}

fn a_push(attrs: &mut Vec<String>, name: &str) {
    if !attrs.iter().any(|a| a.eq_ignore_ascii_case(name)) {
        attrs.push(name.to_string());
    }
}

/// Builds the RFC 4533 sync request control (refreshOnly).
pub fn sync_request(cookie: Option<&[u8]>) -> RawControl {
    let mut body = Vec::new();
    ber::write_enum(&mut body, 1);
    if let Some(c) = cookie {
        ber::write_octets(&mut body, c);
    }
    RawControl {
        ctype: SYNC_REQUEST_OID.to_string(),
        crit: true,
        val: Some(ber::sequence(&body)),
    }
}

/// A decoded sync state control: (state, entryUUID bytes, cookie).
pub type SyncStateValue = (i64, Vec<u8>, Option<Vec<u8>>);

/// Parses a sync state control value: (state, entryUUID bytes, cookie).
pub fn parse_sync_state(v: &[u8]) -> Result<SyncStateValue, ber::BerError> {
    let (seq, _) = ber::read(v)?;
    let items = ber::children(seq.value)?;
    let state = ber::int(items.first().ok_or(ber::BerError("no state"))?.value)?;
    let uuid = items
        .get(1)
        .ok_or(ber::BerError("no entryUUID"))?
        .value
        .to_vec();
    let cookie = items.get(2).map(|t| t.value.to_vec());
    Ok((state, uuid, cookie))
}

/// Parses a sync done control value: (cookie, refreshDeletes).
pub fn parse_sync_done(v: &[u8]) -> Result<(Option<Vec<u8>>, bool), ber::BerError> {
    let (seq, _) = ber::read(v)?;
    let mut cookie = None;
    let mut deletes = false;
    for t in ber::children(seq.value)? {
        match t.tag {
            ber::OCTET_STRING => cookie = Some(t.value.to_vec()),
            ber::BOOLEAN => deletes = ber::boolean(t.value)?,
            _ => {}
        }
    }
    Ok((cookie, deletes))
}

/// A decoded syncInfo message.
#[derive(Debug, Default, PartialEq)]
pub struct SyncInfo {
    /// New cookie, if any.
    pub cookie: Option<Vec<u8>>,
    /// For a syncIdSet: true when the UUIDs are deleted entries, false when present ones.
    pub deletes: bool,
    /// UUIDs of a syncIdSet.
    pub uuids: Vec<Vec<u8>>,
}

/// Parses a syncInfo value (newcookie, refreshDelete, refreshPresent or syncIdSet).
pub fn parse_sync_info(v: &[u8]) -> Result<SyncInfo, ber::BerError> {
    let (t, _) = ber::read(v)?;
    let mut info = SyncInfo::default();
    match (t.class(), t.number()) {
        (0x80, 0) => info.cookie = Some(t.value.to_vec()),
        (0x80, 1) | (0x80, 2) => {
            for c in ber::children(t.value)? {
                if c.tag == ber::OCTET_STRING {
                    info.cookie = Some(c.value.to_vec());
                }
            }
        }
        (0x80, 3) => {
            for c in ber::children(t.value)? {
                match c.tag {
                    ber::OCTET_STRING => info.cookie = Some(c.value.to_vec()),
                    ber::BOOLEAN => info.deletes = ber::boolean(c.value)?,
                    ber::SET => {
                        info.uuids = ber::children(c.value)?
                            .into_iter()
                            .map(|u| u.value.to_vec())
                            .collect()
                    }
                    _ => {}
                }
            }
        }
        _ => return Err(ber::BerError("unknown syncInfo choice")),
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_controls_round_trip() {
        let c = sync_request(Some(b"rid=000,csn=1"));
        let v = c.val.unwrap();
        let (seq, _) = ber::read(&v).unwrap();
        let items = ber::children(seq.value).unwrap();
        assert_eq!(ber::int(items[0].value).unwrap(), 1);
        assert_eq!(items[1].value, b"rid=000,csn=1");
        // syncDone { cookie, refreshDeletes TRUE }
        let mut body = Vec::new();
        ber::write_octets(&mut body, b"ck");
        ber::write_bool(&mut body, true);
        assert_eq!(
            parse_sync_done(&ber::sequence(&body)).unwrap(),
            (Some(b"ck".to_vec()), true)
        );
        // syncIdSet [3] { refreshDeletes TRUE, SET { uuid } }
        let mut inner = Vec::new();
        ber::write_bool(&mut inner, true);
        let mut set = Vec::new();
        ber::write_octets(&mut set, &[1u8; 16]);
        ber::write_tlv(&mut inner, ber::SET, &set);
        let mut v = Vec::new();
        ber::write_tlv(&mut v, 0xa3, &inner);
        let info = parse_sync_info(&v).unwrap();
        assert!(info.deletes);
        assert_eq!(info.uuids, vec![vec![1u8; 16]]);
        assert_eq!(
            uuid_text(&[
                0x36, 0x19, 0x3f, 0x48, 0x7b, 0x6c, 0x10, 0x41, 0x8d, 0x7a, 0x1b, 0xb5, 0xcf, 0x98,
                0x0f, 0x58
            ])
            .unwrap(),
            "36193f48-7b6c-1041-8d7a-1bb5cf980f58"
        );
    }

    #[test]
    fn scope_honours_include_and_exclude() {
        let p = Partition::from_settings(&PartitionSettings {
            base: "dc=ex,dc=org".into(),
            include: vec!["ou=a,dc=ex,dc=org".into()],
            exclude: vec!["ou=x,ou=a,dc=ex,dc=org".into()],
        })
        .unwrap();
        assert!(p.in_scope(&Dn::parse("cn=1,ou=a,dc=ex,dc=org").unwrap()));
        assert!(!p.in_scope(&Dn::parse("cn=1,ou=x,ou=a,dc=ex,dc=org").unwrap()));
        assert!(!p.in_scope(&Dn::parse("cn=1,ou=b,dc=ex,dc=org").unwrap()));
    }
}

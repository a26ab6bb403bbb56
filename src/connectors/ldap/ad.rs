//! The Active Directory connector (Windows AD and Samba AD DC).
//!
//! - rootDSE discovery: naming contexts, `dnsHostName`, `highestCommittedUSN`, supported controls.
//! - Anchor: `objectGUID` as a GUID string; `sourceAnchor` holds the immutableId form (base64 of
//!   the GUID bytes, from `mS-DS-ConsistencyGuid` when set); `objectSid` is a `S-1-5-...` string.
//! - Full import: paged search per partition; ranged values (`member;range=0-1499`) completed.
//! - Delta import: the DirSync control (follows moreResults; tombstones become deletes; changed
//!   objects are re-read by `<GUID=...>` since DirSync returns only changed attributes; a renamed
//!   or moved container has its children re-read, as DirSync does not report them). The DC name
//!   is stored with the cookie: another DC or a rejected cookie asks for a full import.
//! - Export: add, modify, rename/move, delete; `unicodePwd` encoded as AD expects (LDAPS only).

use super::ber;
use super::connection::{LdapClient, RawEntry, SearchMsg, rc_name, result_error};
use super::filter;
use super::generic::{Partition, ValueCodec, export_request, read_anchor};
use super::settings::{AdDeltaMethod, AdSettings};
use crate::connectors::{
    Capabilities, Connector, ConnectorError, ConnectorSpaceView, ExportOperation, ExportOutcome,
    ExportRequest, ExportResult, ImportChange, ImportSink, Watermark,
};
use crate::model::{AttrType, AttributeDef, Dn, Object, Schema, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ldap3::Scope;
use ldap3::controls::RawControl;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// OID of the DirSync control.
pub const DIRSYNC_OID: &str = "1.2.840.113556.1.4.841";
/// OID of the show-deleted control.
pub const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";

/// What the rootDSE says about the DC.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RootDse {
    /// `defaultNamingContext`.
    pub default_naming_context: String,
    /// `namingContexts`.
    pub naming_contexts: Vec<String>,
    /// `dnsHostName` of the DC.
    pub dns_host_name: String,
    /// `highestCommittedUSN`.
    pub highest_committed_usn: i64,
    /// `supportedControl` OIDs.
    pub supported_controls: Vec<String>,
}

/// The delta watermark of the AD connector.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct AdWatermark {
    /// `dirsync` or `usn_changed`.
    #[serde(default = "dirsync_method")]
    method: String,
    /// DC the cookies belong to.
    dc: String,
    /// DirSync cookies (base64) by partition.
    cookies: BTreeMap<String, String>,
    /// `highestCommittedUSN` at the time of the import.
    usn: i64,
}

fn dirsync_method() -> String {
    "dirsync".to_string()
}

fn method_name(m: AdDeltaMethod) -> String {
    match m {
        AdDeltaMethod::Dirsync => "dirsync".to_string(),
        AdDeltaMethod::UsnChanged => "usn_changed".to_string(),
    }
}

/// Builds the DirSync request control value: `SEQUENCE { flags, maxBytes, cookie }`.
pub fn dirsync_control(flags: i64, max_bytes: i64, cookie: &[u8]) -> RawControl {
    let mut body = Vec::new();
    ber::write_int(&mut body, flags);
    ber::write_int(&mut body, max_bytes);
    ber::write_octets(&mut body, cookie);
    RawControl {
        ctype: DIRSYNC_OID.to_string(),
        crit: true,
        val: Some(ber::sequence(&body)),
    }
}

/// Parses the DirSync response control value: (moreResults, cookie).
pub fn parse_dirsync_response(v: &[u8]) -> Result<(bool, Vec<u8>), ber::BerError> {
    let (seq, _) = ber::read(v)?;
    let items = ber::children(seq.value)?;
    let more = ber::int(items.first().ok_or(ber::BerError("no moreResults"))?.value)? != 0;
    let cookie = items
        .get(2)
        .ok_or(ber::BerError("no cookie"))?
        .value
        .to_vec();
    Ok((more, cookie))
}

/// GUID bytes (AD's little-endian layout) as the usual string form.
pub fn guid_text(bytes: &[u8]) -> Option<String> {
    let b: [u8; 16] = bytes.try_into().ok()?;
    Some(uuid::Uuid::from_bytes_le(b).hyphenated().to_string())
}

/// The GUID string back to AD's byte layout.
pub fn guid_bytes(text: &str) -> Option<Vec<u8>> {
    uuid::Uuid::parse_str(text)
        .ok()
        .map(|u| u.to_bytes_le().to_vec())
}

/// The immutableId form of GUID bytes (base64).
pub fn immutable_id(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The GUID string of an immutableId (base64 of the 16 GUID bytes), if it is one.
pub fn guid_from_immutable_id(immutable_id: &str) -> Option<String> {
    B64.decode(immutable_id.trim())
        .ok()
        .and_then(|b| guid_text(&b))
}

/// A binary SID as `S-1-5-21-...`.
pub fn sid_text(b: &[u8]) -> Option<String> {
    if b.len() < 8 {
        return None;
    }
    let rev = b[0];
    let count = usize::from(b[1]);
    if b.len() != 8 + 4 * count {
        return None;
    }
    let mut auth: u64 = 0;
    for &x in &b[2..8] {
        auth = (auth << 8) | u64::from(x);
    }
    let mut s = format!("S-{rev}-{auth}");
    for i in 0..count {
        let o = 8 + 4 * i;
        let sub = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        s.push_str(&format!("-{sub}"));
    }
    Some(s)
}

/// A ranged attribute description (`member;range=0-1499`): (name, start, end or None for `*`).
pub fn parse_range(attr: &str) -> Option<(String, u64, Option<u64>)> {
    let mut base = Vec::new();
    let mut range = None;
    for part in attr.split(';') {
        match part.get(..6).filter(|p| p.eq_ignore_ascii_case("range=")) {
            Some(_) => range = Some(&part[6..]),
            None => base.push(part),
        }
    }
    let (lo, hi) = range?.split_once('-')?;
    let lo = lo.parse().ok()?;
    let hi = if hi == "*" {
        None
    } else {
        Some(hi.parse().ok()?)
    };
    Some((base.join(";"), lo, hi))
}

/// AD attribute types beyond strings.
fn ad_codec() -> ValueCodec {
    let mut c = ValueCodec::default();
    for b in [
        "objectGUID",
        "objectSid",
        "mS-DS-ConsistencyGuid",
        "msDS-ConsistencyGuid",
        "thumbnailPhoto",
        "jpegPhoto",
        "userCertificate",
        "sIDHistory",
        "nTSecurityDescriptor",
        "logonHours",
        "msExchMailboxGuid",
        "replPropertyMetaData",
        "tokenGroups",
        "dSASignature",
        "msDS-GenerationId",
    ] {
        c.set_type(b, AttrType::Binary);
    }
    for r in [
        "member",
        "memberOf",
        "manager",
        "directReports",
        "managedBy",
        "managedObjects",
        "secretary",
        "seeAlso",
    ] {
        c.set_type(r, AttrType::Reference);
    }
    for i in [
        "userAccountControl",
        "primaryGroupID",
        "sAMAccountType",
        "groupType",
        "instanceType",
        "uSNChanged",
        "uSNCreated",
        "accountExpires",
        "pwdLastSet",
        "lastLogonTimestamp",
        "badPwdCount",
        "logonCount",
        "codePage",
        "countryCode",
        "systemFlags",
    ] {
        c.set_type(i, AttrType::Integer);
    }
    for d in ["whenCreated", "whenChanged"] {
        c.set_type(d, AttrType::DateTime);
    }
    c
}

/// Object types and the object class that identifies them, most specific first.
const AD_TYPES: &[(&str, &str)] = &[
    ("computer", "computer"),
    ("user", "user"),
    ("group", "group"),
    ("contact", "contact"),
    ("organizationalUnit", "organizationalUnit"),
];

/// Object classes of containers whose renames move their children.
const CONTAINER_CLASSES: &[&str] = &["organizationalUnit", "container", "builtinDomain"];

/// The Active Directory connector.
#[derive(Debug)]
pub struct AdConnector {
    settings: AdSettings,
    client: LdapClient,
    codec: ValueCodec,
    partitions: Vec<Partition>,
    types: Vec<String>,
    root: Option<RootDse>,
    /// DNs that disappeared during the current delta (deleted, renamed or moved objects).
    old_dns: Vec<Dn>,
    /// Objects that came into the scope during the current delta although they existed before
    /// the last import (moved in or restored): others may reference them under their old DN.
    moved_in: Vec<Dn>,
    /// `highestCommittedUSN` stored with the watermark of the current delta.
    prev_usn: i64,
}

impl AdConnector {
    /// Creates the connector; the password comes from `bind_password_env` / `bind_password_file`.
    pub fn new(settings: AdSettings) -> Result<AdConnector, ConnectorError> {
        let client = LdapClient::new(settings.connection.clone())?;
        Self::build(settings, client)
    }

    /// Creates the connector with a password handed over by the caller.
    pub fn with_password(
        settings: AdSettings,
        password: Option<String>,
    ) -> Result<AdConnector, ConnectorError> {
        let client = LdapClient::with_password(settings.connection.clone(), password)?;
        Self::build(settings, client)
    }

    fn build(settings: AdSettings, client: LdapClient) -> Result<AdConnector, ConnectorError> {
        for t in &settings.object_types {
            if !AD_TYPES.iter().any(|(n, _)| n == t) {
                return Err(ConnectorError::Config(format!(
                    "unknown AD object type '{t}' (known: {})",
                    AD_TYPES.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
                )));
            }
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
        Ok(AdConnector {
            types: settings.object_types.clone(),
            settings,
            client,
            codec: ad_codec(),
            partitions,
            root: None,
            old_dns: Vec::new(),
            moved_in: Vec::new(),
            prev_usn: 0,
        })
    }

    /// The connection (for checks that need raw searches).
    pub fn client_mut(&mut self) -> &mut LdapClient {
        &mut self.client
    }

    /// Base DNs of the partitions (the default naming context when none was configured and the
    /// rootDSE has been read).
    pub fn partition_bases(&self) -> Vec<String> {
        self.partitions.iter().map(|p| p.base.to_string()).collect()
    }

    /// Containers whose objects are synchronized: each partition's include list, or its base.
    pub fn scope_roots(&self) -> Vec<String> {
        self.partitions
            .iter()
            .flat_map(|p| {
                if p.include.is_empty() {
                    vec![p.base.to_string()]
                } else {
                    p.include.iter().map(|d| d.to_string()).collect()
                }
            })
            .collect()
    }

    /// The current DirSync cookie of a partition (also a test of the DirSync right).
    pub fn dirsync_cookie(&mut self, base: &str) -> Result<Vec<u8>, ConnectorError> {
        self.current_cookie(base)
    }

    /// Reads the rootDSE (and remembers it).
    pub fn root_dse(&mut self) -> Result<RootDse, ConnectorError> {
        let attrs: Vec<String> = [
            "defaultNamingContext",
            "namingContexts",
            "dnsHostName",
            "highestCommittedUSN",
            "supportedControl",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let e = self
            .client
            .read_entry("", &attrs, Vec::new())?
            .ok_or_else(|| ConnectorError::Protocol("the server returned no rootDSE".into()))?;
        let texts = |n: &str| -> Vec<String> {
            e.values(n)
                .map(|v| {
                    v.iter()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let root = RootDse {
            default_naming_context: e.first_text("defaultNamingContext").unwrap_or_default(),
            naming_contexts: texts("namingContexts"),
            dns_host_name: e.first_text("dnsHostName").unwrap_or_default(),
            highest_committed_usn: e
                .first_text("highestCommittedUSN")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            supported_controls: texts("supportedControl"),
        };
        if root.default_naming_context.is_empty() {
            return Err(ConnectorError::Protocol(
                "the rootDSE has no defaultNamingContext: is this an Active Directory DC?".into(),
            ));
        }
        tracing::info!(dc = %root.dns_host_name, nc = %root.default_naming_context, usn = root.highest_committed_usn, "AD rootDSE read");
        if self.partitions.is_empty() {
            let base = Dn::parse(&root.default_naming_context)
                .map_err(|e| ConnectorError::Protocol(e.to_string()))?;
            self.partitions.push(Partition {
                base,
                include: Vec::new(),
                exclude: Vec::new(),
            });
        }
        self.root = Some(root.clone());
        Ok(root)
    }

    fn filter(&self) -> String {
        let classes: Vec<&str> = self
            .types
            .iter()
            .filter_map(|t| AD_TYPES.iter().find(|(n, _)| n == t).map(|(_, c)| *c))
            .collect();
        filter::any_object_class(classes)
    }

    fn read_attributes(&self) -> Vec<String> {
        let mut a = if self.settings.attributes.is_empty() {
            vec!["*".to_string()]
        } else {
            self.settings.attributes.clone()
        };
        for extra in [
            "objectGUID",
            "objectSid",
            "objectClass",
            "mS-DS-ConsistencyGuid",
            "userAccountControl",
            "adminDescription",
            "uSNCreated",
        ] {
            if !a.iter().any(|x| x.eq_ignore_ascii_case(extra)) {
                a.push(extra.to_string());
            }
        }
        a
    }

    fn in_scope(&self, dn: &Dn) -> bool {
        self.partitions.iter().any(|p| p.in_scope(dn))
    }

    fn object_type(classes: &[Vec<u8>], types: &[String]) -> Option<String> {
        AD_TYPES.iter().find_map(|(name, class)| {
            (classes
                .iter()
                .any(|c| c.eq_ignore_ascii_case(class.as_bytes()))
                && types.iter().any(|t| t == name))
            .then(|| name.to_string())
        })
    }

    fn is_container(e: &RawEntry) -> bool {
        e.values("objectClass").is_some_and(|cs| {
            cs.iter().any(|c| {
                CONTAINER_CLASSES
                    .iter()
                    .any(|k| c.eq_ignore_ascii_case(k.as_bytes()))
            })
        })
    }

    /// Converts an entry (completing ranged values first); `Ok(None)` when its type is not imported.
    fn convert(&mut self, mut e: RawEntry) -> Result<Option<Object>, ConnectorError> {
        if e.attrs.iter().any(|(n, _)| parse_range(n).is_some()) {
            self.complete_ranges(&mut e)?;
        }
        ad_object(&e, &self.types, &self.codec, &self.settings)
    }

    /// Fetches the remaining ranges of ranged attributes and merges them.
    fn complete_ranges(&mut self, e: &mut RawEntry) -> Result<(), ConnectorError> {
        let ranged: Vec<(usize, String, Option<u64>)> = e
            .attrs
            .iter()
            .enumerate()
            .filter_map(|(i, (n, _))| parse_range(n).map(|(b, _, hi)| (i, b, hi)))
            .collect();
        for (idx, base, mut hi) in ranged.into_iter().rev() {
            let mut values = std::mem::take(&mut e.attrs[idx].1);
            while let Some(end) = hi {
                let want = format!("{base};range={}-*", end + 1);
                let next =
                    self.client
                        .read_entry(&e.dn, std::slice::from_ref(&want), Vec::new())?;
                let Some(next) = next else { break };
                let part = next
                    .attrs
                    .into_iter()
                    .find_map(|(n, v)| parse_range(&n).map(|(_, _, h)| (h, v)));
                match part {
                    Some((h, v)) => {
                        values.extend(v);
                        hi = h;
                    }
                    None => break,
                }
            }
            e.attrs[idx] = (base, values);
        }
        Ok(())
    }

    /// Reads the current DirSync cookie of a partition without transferring objects.
    fn current_cookie(&mut self, base: &str) -> Result<Vec<u8>, ConnectorError> {
        let mut cookie = Vec::new();
        loop {
            let done = self.client.search(
                base,
                Scope::Subtree,
                "(objectGUID=\\00)",
                &["objectGUID".to_string()],
                vec![dirsync_control(0, 0, &cookie)],
                &mut |_| Ok(()),
            )?;
            if done.rc != 0 {
                return Err(dirsync_error(
                    self.client.target(),
                    done.rc,
                    &done.text,
                    base,
                ));
            }
            let (more, c) = done
                .control(DIRSYNC_OID)
                .and_then(|c| c.val.as_deref())
                .map(parse_dirsync_response)
                .transpose()
                .map_err(|e| ConnectorError::Protocol(format!("DirSync response: {e}")))?
                .ok_or_else(|| {
                    ConnectorError::Unsupported(format!(
                        "the DC returned no DirSync control for '{base}'"
                    ))
                })?;
            cookie = c;
            if !more {
                return Ok(cookie);
            }
        }
    }

    /// Re-reads one object by GUID (None when it no longer exists).
    fn read_by_guid(&mut self, guid: &[u8]) -> Result<Option<RawEntry>, ConnectorError> {
        let hex: String = guid.iter().map(|b| format!("{b:02x}")).collect();
        let attrs = self.read_attributes();
        self.client
            .read_entry(&format!("<GUID={hex}>"), &attrs, Vec::new())
    }

    /// Upserts an object (or deletes it from the connector space when it left the scope).
    fn emit(
        &mut self,
        e: RawEntry,
        cs: &dyn ConnectorSpaceView,
        sink: &mut dyn ImportSink,
        emitted: &mut HashSet<String>,
    ) -> Result<(), ConnectorError> {
        if let Some(obj) = self.convert(e)? {
            let Some(anchor) = obj.anchor.clone() else {
                return Ok(());
            };
            if !emitted.insert(anchor.clone()) {
                return Ok(());
            }
            let known = cs.by_anchor(&anchor);
            if let Some(k) = &known
                && k.dn != obj.dn
            {
                self.old_dns.push(k.dn.clone());
            }
            if self.in_scope(&obj.dn) {
                let existed_before = obj
                    .first("uSNCreated")
                    .is_some_and(|v| matches!(v, Value::Int(u) if *u <= self.prev_usn));
                if known.is_none() && existed_before {
                    self.moved_in.push(obj.dn.clone());
                }
                sink.push(ImportChange::Upsert(obj))?;
            } else if let Some(k) = known {
                self.old_dns.push(k.dn);
                sink.push(ImportChange::Delete { anchor })?;
            }
        }
        Ok(())
    }

    /// Delta through `uSNChanged` polling on the same DC.
    fn delta_usn(
        &mut self,
        wm: AdWatermark,
        now_usn: i64,
        cs: &dyn ConnectorSpaceView,
        sink: &mut dyn ImportSink,
    ) -> Result<Watermark, ConnectorError> {
        let mut emitted: HashSet<String> = HashSet::new();
        self.old_dns.clear();
        self.moved_in.clear();
        self.prev_usn = wm.usn;
        let since = wm.usn + 1;
        let attrs = self.read_attributes();
        let page = self.settings.page_size;
        for p in self.partitions.clone() {
            let base = p.base.to_string();
            // Tombstones (needs the right to list deleted objects; otherwise the scheduled full
            // import finds the deletes).
            let mut gone: Vec<String> = Vec::new();
            let show_deleted = RawControl {
                ctype: SHOW_DELETED_OID.to_string(),
                crit: false,
                val: None,
            };
            let r = self.client.search_paged(
                &base,
                Scope::Subtree,
                &format!("(&(isDeleted=TRUE)(uSNChanged>={since}))"),
                &["objectGUID".to_string()],
                page,
                std::slice::from_ref(&show_deleted),
                &mut |e| {
                    if let Some(a) = e
                        .values("objectGUID")
                        .and_then(|v| v.first())
                        .and_then(|g| guid_text(g))
                    {
                        gone.push(a);
                    }
                    Ok(())
                },
            );
            if let Err(e) = r {
                tracing::warn!(base = %base, error = %e, "tombstones not readable: deletes wait for the next full import");
            }
            for a in gone {
                if let Some(k) = cs.by_anchor(&a)
                    && emitted.insert(a.clone())
                {
                    self.old_dns.push(k.dn);
                    sink.push(ImportChange::Delete { anchor: a })?;
                }
            }
            // Changed containers first, then changed objects.
            let mut containers: Vec<RawEntry> = Vec::new();
            self.client.search_paged(
                &base,
                Scope::Subtree,
                &format!(
                    "(&(|(objectClass=organizationalUnit)(objectClass=container))(uSNChanged>={since}))"
                ),
                &attrs,
                page,
                &[],
                &mut |e| {
                    containers.push(e);
                    Ok(())
                },
            )?;
            for c in &containers {
                self.converge_children(c, cs, sink, &mut emitted)?;
            }
            let mut changed: Vec<RawEntry> = Vec::new();
            let filter = format!("(&{}(uSNChanged>={since}))", self.filter());
            self.client.search_paged(
                &base,
                Scope::Subtree,
                &filter,
                &attrs,
                page,
                &[],
                &mut |e| {
                    changed.push(e);
                    Ok(())
                },
            )?;
            tracing::info!(base = %base, since, changed = changed.len(), containers = containers.len(), "uSNChanged delta read");
            for e in changed {
                self.emit(e, cs, sink, &mut emitted)?;
            }
        }
        self.fix_references(cs, sink, &mut emitted)?;
        encode(&AdWatermark {
            method: wm.method,
            dc: wm.dc,
            cookies: BTreeMap::new(),
            usn: now_usn,
        })
    }

    /// Re-reads objects whose references name a DN that disappeared in this delta: AD rewrites
    /// or drops such link values without DirSync reporting the referencing object.
    fn fix_references(
        &mut self,
        cs: &dyn ConnectorSpaceView,
        sink: &mut dyn ImportSink,
        emitted: &mut HashSet<String>,
    ) -> Result<(), ConnectorError> {
        let mut stale: Vec<String> = Vec::new();
        // Who references the objects that came back into the scope (the server knows).
        let moved_in = std::mem::take(&mut self.moved_in);
        for dn in &moved_in {
            let v = filter::escape_filter_value(&dn.to_string());
            let f = format!("(|(member={v})(manager={v})(managedBy={v})(secretary={v}))");
            for base in self.partition_bases() {
                let mut found: Vec<String> = Vec::new();
                self.client.search_paged(
                    &base,
                    Scope::Subtree,
                    &f,
                    &["objectGUID".to_string()],
                    self.settings.page_size,
                    &[],
                    &mut |e| {
                        if let Some(a) = e
                            .values("objectGUID")
                            .and_then(|v| v.first())
                            .and_then(|g| guid_text(g))
                        {
                            found.push(a);
                        }
                        Ok(())
                    },
                )?;
                stale.extend(found.into_iter().filter(|a| !emitted.contains(a)));
            }
        }
        if self.old_dns.is_empty() && stale.is_empty() {
            return Ok(());
        }
        let gone: HashSet<String> = self.old_dns.iter().map(Dn::normalized).collect();
        for p in &self.partitions {
            for o in cs.descendants(&p.base) {
                let Some(a) = &o.anchor else { continue };
                if emitted.contains(a) {
                    continue;
                }
                let refers = o.attributes.values().flatten().any(|v| match v {
                    Value::Ref(r) => Dn::parse(r).is_ok_and(|d| gone.contains(&d.normalized())),
                    _ => false,
                });
                if refers {
                    stale.push(a.clone());
                }
            }
        }
        tracing::debug!(
            objects = stale.len(),
            "re-reading objects with references to moved or deleted objects"
        );
        for a in stale {
            if let Some(g) = guid_bytes(&a)
                && let Some(e) = self.read_by_guid(&g)?
            {
                self.emit(e, cs, sink, emitted)?;
            }
        }
        Ok(())
    }

    /// Re-reads the children of a renamed or moved container: DirSync reports only the container.
    fn converge_children(
        &mut self,
        container: &RawEntry,
        cs: &dyn ConnectorSpaceView,
        sink: &mut dyn ImportSink,
        emitted: &mut HashSet<String>,
    ) -> Result<(), ConnectorError> {
        let new_dn =
            Dn::parse(&container.dn).map_err(|e| ConnectorError::Protocol(e.to_string()))?;
        let old_dn = container
            .values("objectGUID")
            .and_then(|v| v.first())
            .and_then(|g| guid_text(g))
            .and_then(|a| cs.by_anchor(&a))
            .map(|o| o.dn);
        if old_dn.as_ref() == Some(&new_dn) {
            return Ok(());
        }
        // Children the connector space holds under the old name (when the container itself is
        // imported) and the objects under the new name.
        let mut stale: Vec<String> = match &old_dn {
            Some(old) => cs
                .descendants(old)
                .into_iter()
                .filter_map(|o| o.anchor)
                .collect(),
            None => Vec::new(),
        };
        let mut found: Vec<RawEntry> = Vec::new();
        let base = container.dn.clone();
        let filter = self.filter();
        let attrs = self.read_attributes();
        let page = self.settings.page_size;
        self.client.search_paged(
            &base,
            Scope::Subtree,
            &filter,
            &attrs,
            page,
            &[],
            &mut |e| {
                found.push(e);
                Ok(())
            },
        )?;
        let mut moved = 0usize;
        for e in found {
            let anchor = e
                .values("objectGUID")
                .and_then(|v| v.first())
                .and_then(|g| guid_text(g));
            let dn = Dn::parse(&e.dn).ok();
            let known = anchor.as_ref().and_then(|a| cs.by_anchor(a));
            if let Some(a) = &anchor {
                stale.retain(|s| s != a);
            }
            let changed = match (&known, &dn) {
                (Some(k), Some(d)) => &k.dn != d,
                _ => true,
            };
            if changed {
                moved += 1;
                self.emit(e, cs, sink, emitted)?;
            }
        }
        for a in stale {
            // Held under the old name but not found under the new one: re-read by GUID.
            if let Some(g) = guid_bytes(&a) {
                match self.read_by_guid(&g)? {
                    Some(e) => self.emit(e, cs, sink, emitted)?,
                    None => {
                        if emitted.insert(a.clone()) {
                            if let Some(k) = cs.by_anchor(&a) {
                                self.old_dns.push(k.dn);
                            }
                            sink.push(ImportChange::Delete { anchor: a })?;
                        }
                    }
                }
            }
        }
        tracing::info!(container = %base, moved, "children of a renamed container re-read");
        Ok(())
    }

    fn delta_dirsync(
        &mut self,
        wm: AdWatermark,
        cs: &dyn ConnectorSpaceView,
        sink: &mut dyn ImportSink,
    ) -> Result<Watermark, ConnectorError> {
        let mut next = BTreeMap::new();
        let mut emitted: HashSet<String> = HashSet::new();
        self.old_dns.clear();
        self.moved_in.clear();
        self.prev_usn = wm.usn;
        let mut filter = self.filter();
        // Containers too, so that their renames are seen.
        filter = format!("(|{filter}(objectClass=organizationalUnit)(objectClass=container))");
        let parts = self.partitions.clone();
        for p in &parts {
            let base = p.base.to_string();
            let mut cookie = match wm.cookies.get(&base) {
                Some(c) => B64
                    .decode(c)
                    .map_err(|_| ConnectorError::WatermarkExpired("undecodable cookie".into()))?,
                None => {
                    return Err(ConnectorError::WatermarkExpired(format!(
                        "no DirSync cookie for partition '{base}'"
                    )));
                }
            };
            let mut changed: Vec<Vec<u8>> = Vec::new();
            let mut deletes: Vec<String> = Vec::new();
            let mut rounds = 0;
            loop {
                rounds += 1;
                let attrs = vec![
                    "objectGUID".to_string(),
                    "isDeleted".to_string(),
                    "objectClass".to_string(),
                    "name".to_string(),
                    "*".to_string(),
                ];
                let done = self.client.search(
                    &base,
                    Scope::Subtree,
                    &filter,
                    &attrs,
                    vec![
                        dirsync_control(0, 0, &cookie),
                        RawControl {
                            ctype: SHOW_DELETED_OID.to_string(),
                            crit: false,
                            val: None,
                        },
                    ],
                    &mut |m| {
                        if let SearchMsg::Entry(e) = m {
                            let Some(guid) = e.values("objectGUID").and_then(|v| v.first()) else {
                                return Ok(());
                            };
                            let deleted = e
                                .first_text("isDeleted")
                                .is_some_and(|v| v.eq_ignore_ascii_case("TRUE"))
                                || e.dn.contains("\\0ADEL:");
                            if deleted {
                                if let Some(a) = guid_text(guid) {
                                    deletes.push(a);
                                }
                            } else {
                                changed.push(guid.clone());
                            }
                        }
                        Ok(())
                    },
                )?;
                if done.rc != 0 {
                    return Err(dirsync_error(
                        self.client.target(),
                        done.rc,
                        &done.text,
                        &base,
                    ));
                }
                let (more, c) = done
                    .control(DIRSYNC_OID)
                    .and_then(|c| c.val.as_deref())
                    .map(parse_dirsync_response)
                    .transpose()
                    .map_err(|e| ConnectorError::Protocol(format!("DirSync response: {e}")))?
                    .ok_or_else(|| {
                        ConnectorError::Protocol("DirSync search without a response control".into())
                    })?;
                cookie = c;
                if !more {
                    break;
                }
            }
            tracing::info!(base = %base, rounds, changed = changed.len(), deleted = deletes.len(), "DirSync changes read");
            for a in deletes {
                if let Some(k) = cs.by_anchor(&a)
                    && emitted.insert(a.clone())
                {
                    self.old_dns.push(k.dn);
                    sink.push(ImportChange::Delete { anchor: a })?;
                }
            }
            // Re-read everything (DirSync returned only the changed attributes), then handle
            // containers first: their children may need re-reading.
            let mut seen: HashSet<Vec<u8>> = HashSet::new();
            let mut fresh: Vec<RawEntry> = Vec::new();
            for guid in changed {
                if seen.insert(guid.clone())
                    && let Some(e) = self.read_by_guid(&guid)?
                {
                    fresh.push(e);
                }
            }
            fresh.sort_by_key(|e| !Self::is_container(e));
            for e in fresh {
                if Self::is_container(&e) {
                    self.converge_children(&e, cs, sink, &mut emitted)?;
                }
                self.emit(e, cs, sink, &mut emitted)?;
            }
            next.insert(base, B64.encode(&cookie));
        }
        self.fix_references(cs, sink, &mut emitted)?;
        let usn = self
            .root
            .as_ref()
            .map(|r| r.highest_committed_usn)
            .unwrap_or(0);
        encode(&AdWatermark {
            method: wm.method,
            dc: wm.dc,
            cookies: next,
            usn,
        })
    }
}

/// Converts an entry whose values are complete; `Ok(None)` when its type is not imported.
fn ad_object(
    e: &RawEntry,
    types: &[String],
    codec: &ValueCodec,
    settings: &AdSettings,
) -> Result<Option<Object>, ConnectorError> {
    let use_consistency_guid = settings.use_consistency_guid;
    let Some(ty) = e
        .values("objectClass")
        .and_then(|c| AdConnector::object_type(c, types))
    else {
        return Ok(None);
    };
    if !settings.import_writeback_objects
        && !settings.writeback_tag.is_empty()
        && e.first_text("adminDescription")
            .is_some_and(|d| d.starts_with(&settings.writeback_tag))
    {
        tracing::debug!(dn = %e.dn, "object written back by dirsync not imported");
        return Ok(None);
    }
    let Some(guid) = e.values("objectGUID").and_then(|v| v.first()).cloned() else {
        tracing::warn!(dn = %e.dn, "entry without objectGUID skipped");
        return Ok(None);
    };
    let anchor = guid_text(&guid)
        .ok_or_else(|| ConnectorError::Protocol(format!("bad objectGUID on '{}'", e.dn)))?;
    let dn = Dn::parse(&e.dn).map_err(|err| ConnectorError::Protocol(err.to_string()))?;
    let mut obj = Object::new(Some(anchor), dn, &ty);
    let mut consistency: Option<Vec<u8>> = None;
    for (name, vals) in &e.attrs {
        if vals.is_empty() {
            continue;
        }
        if name.eq_ignore_ascii_case("objectSid") || name.eq_ignore_ascii_case("sIDHistory") {
            let v: Vec<Value> = vals
                .iter()
                .map(|b| sid_text(b).map(Value::Str).unwrap_or(Value::Bin(b.clone())))
                .collect();
            obj.attributes.insert(name.clone(), v);
            continue;
        }
        if name.eq_ignore_ascii_case("mS-DS-ConsistencyGuid") {
            consistency = vals.first().cloned();
        }
        let ty = codec.type_of(name);
        let mut values: Vec<Value> = vals
            .iter()
            .map(|v| ValueCodec::decode_as(ty, name, v))
            .collect();
        // References to deleted objects are hidden, as Windows AD does.
        values.retain(|v| !matches!(v, Value::Ref(r) if r.contains("\\0ADEL:")));
        if !values.is_empty() {
            obj.attributes.insert(name.clone(), values);
        }
    }
    let source = match consistency {
        Some(c) if use_consistency_guid && c.len() == 16 => c,
        _ => guid,
    };
    obj.attributes.insert(
        "sourceAnchor".into(),
        vec![Value::Str(immutable_id(&source))],
    );
    Ok(Some(obj))
}

fn encode(wm: &AdWatermark) -> Result<Watermark, ConnectorError> {
    serde_json::to_string(wm)
        .map(Some)
        .map_err(|e| ConnectorError::Protocol(format!("watermark: {e}")))
}

/// A DirSync failure: a rejected cookie asks for a full import.
fn dirsync_error(target: &str, rc: u32, text: &str, base: &str) -> ConnectorError {
    match rc {
        // protocolError, unwillingToPerform, other: the DC refused the cookie.
        2 | 53 | 80 => ConnectorError::WatermarkExpired(format!(
            "the DC rejected the DirSync cookie for '{base}': {} ({rc}) {text}",
            rc_name(rc)
        )),
        12 if text.contains("cookie") => ConnectorError::WatermarkExpired(format!(
            "the DC rejected the DirSync cookie for '{base}': {text}"
        )),
        12 => ConnectorError::Unsupported(format!(
            "the DC does not support the DirSync control on '{base}': {text}"
        )),
        50 => ConnectorError::Authentication(format!(
            "DirSync on '{base}' needs the 'Replicating Directory Changes' right: {text}"
        )),
        _ => result_error(target, rc, text, base),
    }
}

/// Encodes a value for AD: `unicodePwd` is the quoted password in UTF-16LE.
pub fn ad_encode(name: &str, v: &Value) -> Vec<u8> {
    if name.eq_ignore_ascii_case("unicodePwd")
        && let Value::Str(s) = v
    {
        return format!("\"{s}\"")
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
    }
    if (name.eq_ignore_ascii_case("objectGUID")
        || name.eq_ignore_ascii_case("mS-DS-ConsistencyGuid"))
        && let Value::Str(s) = v
    {
        if let Some(b) = guid_bytes(s) {
            return b;
        }
        if let Ok(b) = B64.decode(s) {
            return b;
        }
    }
    ValueCodec::encode(v)
}

impl Connector for AdConnector {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            delta_import: true,
            export: true,
        }
    }

    fn schema(&mut self) -> Result<Schema, ConnectorError> {
        let types: Vec<(String, String)> = self
            .types
            .iter()
            .filter_map(|t| {
                AD_TYPES
                    .iter()
                    .find(|(n, _)| n == t)
                    .map(|(n, c)| (n.to_string(), c.to_string()))
            })
            .collect();
        let mut schema = super::subschema::discover(
            &mut self.client,
            &types,
            &self.settings.attributes,
            &self.codec,
        )?;
        for def in schema.object_types.values_mut() {
            // Converted on import: SIDs become strings; the immutableId form is added.
            for sid in ["objectSid", "sIDHistory"] {
                if let Some(a) = def.attributes.get_mut(sid) {
                    a.ty = AttrType::String;
                }
            }
            def.attributes.insert(
                "sourceAnchor".into(),
                AttributeDef {
                    ty: AttrType::String,
                    multi_valued: false,
                },
            );
        }
        Ok(schema)
    }

    fn full_import(&mut self, sink: &mut dyn ImportSink) -> Result<Watermark, ConnectorError> {
        let root = self.root_dse()?;
        let bases: Vec<String> = self.partitions.iter().map(|p| p.base.to_string()).collect();
        // Cookies first: changes made during the import come again in the next delta.
        let mut cookies = BTreeMap::new();
        if self.settings.delta == AdDeltaMethod::Dirsync {
            for b in &bases {
                let c = self.current_cookie(b)?;
                cookies.insert(b.clone(), B64.encode(c));
            }
        }
        let filter = self.filter();
        let attrs = self.read_attributes();
        let page = self.settings.page_size;
        let parts = self.partitions.clone();
        let mut total = 0usize;
        for p in &parts {
            let base = p.base.to_string();
            // Entries with ranged values are completed after the search (the connection is busy).
            let mut deferred: Vec<RawEntry> = Vec::new();
            let types = &self.types;
            let codec = &self.codec;
            let settings = &self.settings;
            let pages = self.client.search_paged(
                &base,
                Scope::Subtree,
                &filter,
                &attrs,
                page,
                &[],
                &mut |e| {
                    if e.attrs.iter().any(|(n, _)| parse_range(n).is_some()) {
                        deferred.push(e);
                        return Ok(());
                    }
                    if let Some(obj) = ad_object(&e, types, codec, settings)?
                        && p.in_scope(&obj.dn)
                    {
                        total += 1;
                        sink.push(ImportChange::Upsert(obj))?;
                    }
                    Ok(())
                },
            )?;
            for e in deferred {
                if let Some(obj) = self.convert(e)?
                    && p.in_scope(&obj.dn)
                {
                    total += 1;
                    sink.push(ImportChange::Upsert(obj))?;
                }
            }
            tracing::info!(base = %base, pages, objects = total, "AD partition imported");
        }
        encode(&AdWatermark {
            method: method_name(self.settings.delta),
            dc: root.dns_host_name,
            cookies,
            usn: root.highest_committed_usn,
        })
    }

    fn delta_import(
        &mut self,
        watermark: &str,
        cs: &dyn ConnectorSpaceView,
        sink: &mut dyn ImportSink,
    ) -> Result<Watermark, ConnectorError> {
        let wm: AdWatermark = serde_json::from_str(watermark)
            .map_err(|e| ConnectorError::WatermarkExpired(format!("unreadable watermark: {e}")))?;
        let root = self.root_dse()?;
        if !root.dns_host_name.eq_ignore_ascii_case(&wm.dc) {
            return Err(ConnectorError::WatermarkExpired(format!(
                "the delta watermark belongs to DC '{}' but the connection reached '{}'",
                wm.dc, root.dns_host_name
            )));
        }
        if wm.method != method_name(self.settings.delta) {
            return Err(ConnectorError::WatermarkExpired(format!(
                "the delta method changed from '{}' to '{}'",
                wm.method,
                method_name(self.settings.delta)
            )));
        }
        match self.settings.delta {
            AdDeltaMethod::Dirsync => self.delta_dirsync(wm, cs, sink),
            AdDeltaMethod::UsnChanged => self.delta_usn(wm, root.highest_committed_usn, cs, sink),
        }
    }

    fn export(&mut self, batch: &[ExportRequest]) -> Result<Vec<ExportResult>, ConnectorError> {
        let mut out = Vec::with_capacity(batch.len());
        let tag = self.settings.writeback_tag.clone();
        for req in batch {
            // Objects dirsync creates carry the writeback tag.
            let tagged;
            let req = match &req.operation {
                ExportOperation::Add { attributes }
                    if !tag.is_empty()
                        && !attributes
                            .keys()
                            .any(|k| k.eq_ignore_ascii_case("adminDescription")) =>
                {
                    let mut attributes = attributes.clone();
                    attributes.insert("adminDescription".into(), vec![Value::Str(tag.clone())]);
                    tagged = ExportRequest {
                        operation: ExportOperation::Add { attributes },
                        ..req.clone()
                    };
                    &tagged
                }
                _ => req,
            };
            let outcome = export_request(&mut self.client, req, &ad_encode, &mut |client, dn| {
                read_anchor(client, dn, "objectGUID", &|raw| {
                    guid_text(raw).unwrap_or_else(|| B64.encode(raw))
                })
            });
            if let ExportOutcome::Failed { kind, message } = &outcome {
                tracing::warn!(id = req.id, dn = %req.dn, ?kind, %message, "AD export failed");
            }
            out.push(ExportResult {
                id: req.id,
                outcome,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranged_attribute_names_parse() {
        assert_eq!(
            parse_range("member;range=0-1499"),
            Some(("member".to_string(), 0, Some(1499)))
        );
        assert_eq!(
            parse_range("member;range=1500-*"),
            Some(("member".to_string(), 1500, None))
        );
        assert_eq!(
            parse_range("member;Range=3000-4499"),
            Some(("member".to_string(), 3000, Some(4499)))
        );
        assert_eq!(parse_range("member"), None);
        assert_eq!(parse_range("member;range=x-1"), None);
        assert_eq!(parse_range("member;range=5"), None);
    }

    #[test]
    fn guid_forms_match_the_reference_example() {
        let g = guid_bytes("88666888-0101-1111-bbbb-1234567890ab").unwrap();
        assert_eq!(immutable_id(&g), "iGhmiAEBERG7uxI0VniQqw==");
        assert_eq!(
            guid_from_immutable_id("iGhmiAEBERG7uxI0VniQqw==").as_deref(),
            Some("88666888-0101-1111-bbbb-1234567890ab")
        );
        assert_eq!(guid_from_immutable_id("not base64!"), None);
        assert_eq!(
            guid_text(&g).unwrap(),
            "88666888-0101-1111-bbbb-1234567890ab"
        );
    }

    #[test]
    fn sid_to_string() {
        let mut b = vec![1u8, 4, 0, 0, 0, 0, 0, 5];
        for sub in [21u32, 2159607466, 1072312258, 500] {
            b.extend_from_slice(&sub.to_le_bytes());
        }
        assert_eq!(sid_text(&b).unwrap(), "S-1-5-21-2159607466-1072312258-500");
        assert_eq!(sid_text(&b[..9]), None);
    }

    #[test]
    fn dirsync_control_round_trip() {
        let c = dirsync_control(0, 1048576, b"MSDS");
        let v = c.val.unwrap();
        let (seq, _) = ber::read(&v).unwrap();
        let items = ber::children(seq.value).unwrap();
        assert_eq!(ber::int(items[1].value).unwrap(), 1048576);
        let mut body = Vec::new();
        ber::write_int(&mut body, 1);
        ber::write_int(&mut body, 0);
        ber::write_octets(&mut body, b"cookie");
        assert_eq!(
            parse_dirsync_response(&ber::sequence(&body)).unwrap(),
            (true, b"cookie".to_vec())
        );
        assert!(parse_dirsync_response(&[0x30, 0x01]).is_err());
    }

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        assert_eq!(
            ad_encode("unicodePwd", &Value::Str("ab".into())),
            vec![b'"', 0, b'a', 0, b'b', 0, b'"', 0]
        );
    }
}

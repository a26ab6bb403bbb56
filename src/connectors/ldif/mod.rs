//! LDIF connector (RFC 2849).
//!
//! The directory is one LDIF file of content records ([`LdifSettings::path`]): a full import
//! reads it, an export applies a batch of changes to it and rewrites it atomically as the new
//! target state. Delta imports read a folder of change-record files
//! ([`LdifSettings::changes_dir`]) in lexical file-name order; the watermark is the name of the
//! last file applied. A full import returns the name of the newest change file present (the
//! empty string when the folder has none, `None` without a changes folder), so that the next
//! delta starts after it.
//!
//! Attribute names compare case-insensitively (as in LDAP); values are typed by
//! [`LdifSettings::attribute_types`] over built-in defaults (`member`, `manager` ... are
//! references, `userAccountControl`, `uidNumber` ... integers, `objectGUID`, `jpegPhoto` ...
//! binary, everything else strings).
//!
//! ```toml
//! [[connectors]]
//! name = "corp"
//! type = "ldif"
//! [connectors.settings]
//! path = "corp.ldif"              # content records
//! changes_dir = "changes/corp"    # *.ldif change records, applied in file-name order
//! anchor_attribute = "entryUUID"  # the default
//! exclude = ["ou=Lab,dc=corp,dc=example"]   # container filter of imports (also `include`)
//! export_batch_size = 200000      # the default: pending exports per rewrite of the file
//! [connectors.settings.attribute_types]
//! employeeNumber = "integer"
//! [connectors.settings.object_types]
//! posixGroup = "group"
//! ```
//!
//! Export works like a directory server: adds of an existing DN fail, an add without an
//! anchor gets a new UUID, renames move the subtree, references (`member`, `manager` ...)
//! follow renames and disappear with deleted entries, and non-leaf entries cannot be deleted.
//! Delta imports apply the change records as written: references held by other entries are
//! not rewritten (as AD's DirSync does not report them either).
//!
//! An export's memory follows its batch, not the directory: it reads the file once for the
//! entries the batch touches (its DNs, new DNs and their subtrees, its anchors), then streams
//! the file into the new one in DN order, merging in the changed entries and fixing the
//! references of the others (a batch of adds only takes a single pass). The file is written
//! in DN order (parents first); a file in another order is loaded whole once and written in
//! order.

mod delta;
mod export;
mod parse;
mod write;

use crate::connectors::ldap::generic::Partition;
use crate::connectors::{
    Capabilities, Connector, ConnectorError, ConnectorSpaceView, ExportOperation, ExportRequest,
    ExportResult, ImportChange, ImportSink, Watermark,
};
use crate::model::{AttrType, AttributeDef, Attributes, Dn, Object, Schema, Value};
use parse::{AttrValue, LdifReader, RawValue, RecordBody, input_error};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Default of [`LdifSettings::export_batch_size`].
const DEFAULT_EXPORT_BATCH: usize = 200_000;

/// Settings of an LDIF connector (the `settings` table of a connector of type `ldif`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdifSettings {
    /// The directory file (content records). A full import reads it; an export rewrites it
    /// as the target state. A missing file is an empty directory. Relative to the base
    /// directory given to [`LdifConnector::new`].
    pub path: PathBuf,
    /// A folder of change-record files (`*.ldif`) applied in lexical file-name order by a
    /// delta import. Without it the connector has no delta import.
    #[serde(default)]
    pub changes_dir: Option<PathBuf>,
    /// The attribute holding the immutable anchor (default `entryUUID`). Binary anchors are
    /// rendered as base64.
    #[serde(default = "default_anchor_attribute")]
    pub anchor_attribute: String,
    /// Attribute types overriding the built-in defaults (name, case-insensitive -> type).
    #[serde(default)]
    pub attribute_types: BTreeMap<String, AttrType>,
    /// objectClass value (case-insensitive) -> object type, overriding the built-in mapping.
    #[serde(default)]
    pub object_types: BTreeMap<String, String>,
    /// Container filter of imports (DNs), as the LDAP connectors' partition `include`: only
    /// entries inside these containers are imported; empty means every entry.
    #[serde(default)]
    pub include: Vec<String>,
    /// Container filter of imports (DNs), as the LDAP connectors' partition `exclude`: entries
    /// inside these containers are not imported (wins over `include`). An entry moved out of
    /// scope by a delta comes back as a delete; change records about entries outside the
    /// scope are skipped.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Pending exports handed to one export call (default 200,000). Each call streams the
    /// whole file once to read and once to write, and holds only its own requests and the
    /// entries they touch: the batch size bounds the memory of a large export (the initial
    /// export of a big directory), a larger one takes fewer passes over the file.
    #[serde(default)]
    pub export_batch_size: Option<usize>,
}

fn default_anchor_attribute() -> String {
    "entryUUID".to_string()
}

impl LdifSettings {
    /// Settings for the file at `path` with every other setting at its default.
    pub fn new(path: impl Into<PathBuf>) -> LdifSettings {
        LdifSettings {
            path: path.into(),
            changes_dir: None,
            anchor_attribute: default_anchor_attribute(),
            attribute_types: BTreeMap::new(),
            object_types: BTreeMap::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            export_batch_size: None,
        }
    }
}

/// The container filter of imports (`include` / `exclude`): a partition over the whole tree.
fn containers(settings: &LdifSettings) -> Result<Partition, ConnectorError> {
    let parse = |key: &str, list: &[String]| -> Result<Vec<Dn>, ConnectorError> {
        list.iter()
            .map(|s| Dn::parse(s).map_err(|e| ConnectorError::Config(format!("ldif: {key}: {e}"))))
            .collect()
    };
    Ok(Partition {
        base: Dn::root(),
        include: parse("include", &settings.include)?,
        exclude: parse("exclude", &settings.exclude)?,
    })
}

/// Built-in attribute types (lower-case names); everything else is a string.
const DEFAULT_TYPES: &[(&str, AttrType)] = &[
    ("member", AttrType::Reference),
    ("manager", AttrType::Reference),
    ("owner", AttrType::Reference),
    ("seealso", AttrType::Reference),
    ("memberof", AttrType::Reference),
    ("directreports", AttrType::Reference),
    ("secretary", AttrType::Reference),
    ("useraccountcontrol", AttrType::Integer),
    ("grouptype", AttrType::Integer),
    ("uidnumber", AttrType::Integer),
    ("gidnumber", AttrType::Integer),
    ("pwdlastset", AttrType::Integer),
    ("accountexpires", AttrType::Integer),
    ("objectguid", AttrType::Binary),
    ("objectsid", AttrType::Binary),
    ("ms-ds-consistencyguid", AttrType::Binary),
    ("jpegphoto", AttrType::Binary),
    ("thumbnailphoto", AttrType::Binary),
    ("usercertificate", AttrType::Binary),
];

/// Built-in objectClass -> object type mapping, in priority order (an AD computer is also a
/// user, an AD contact also a person).
const DEFAULT_OBJECT_TYPES: &[(&[&str], &str)] = &[
    (&["group", "groupofnames", "groupofuniquenames"], "group"),
    (&["contact"], "contact"),
    (&["computer"], "computer"),
    (&["organizationalunit"], "organizationalUnit"),
    (&["container", "domain", "dcobject"], "container"),
    (
        &["user", "inetorgperson", "person", "organizationalperson"],
        "user",
    ),
];

/// How names and values of this connector are typed.
#[derive(Debug, Clone)]
pub(crate) struct Typing {
    anchor_attribute: String,
    attribute_types: HashMap<String, AttrType>,
    object_types: HashMap<String, String>,
    /// Object type -> objectClass written when an added object has none.
    object_classes: HashMap<String, String>,
    /// Container filter of imports (based at the root).
    pub(crate) containers: Partition,
}

impl Typing {
    /// The typing of `settings`; an error when an `include`/`exclude` DN does not parse.
    fn new(settings: &LdifSettings) -> Result<Typing, ConnectorError> {
        let mut attribute_types: HashMap<String, AttrType> = DEFAULT_TYPES
            .iter()
            .map(|(n, t)| (n.to_string(), *t))
            .collect();
        for (n, t) in &settings.attribute_types {
            attribute_types.insert(n.to_ascii_lowercase(), *t);
        }
        let object_types: HashMap<String, String> = settings
            .object_types
            .iter()
            .map(|(c, t)| (c.to_ascii_lowercase(), t.clone()))
            .collect();
        let mut object_classes: HashMap<String, String> = [
            ("group", "groupOfNames"),
            ("contact", "contact"),
            ("computer", "computer"),
            ("organizationalUnit", "organizationalUnit"),
            ("container", "container"),
            ("user", "inetOrgPerson"),
        ]
        .iter()
        .map(|(t, c)| (t.to_string(), c.to_string()))
        .collect();
        for (class, ty) in settings.object_types.iter().rev() {
            object_classes.insert(ty.clone(), class.clone());
        }
        Ok(Typing {
            anchor_attribute: settings.anchor_attribute.clone(),
            attribute_types,
            object_types,
            object_classes,
            containers: containers(settings)?,
        })
    }

    /// The type of an attribute (options such as `;lang-en` ignored).
    pub(crate) fn attr_type(&self, name: &str) -> AttrType {
        let base = name.split(';').next().unwrap_or(name);
        self.attribute_types
            .get(&base.to_ascii_lowercase())
            .copied()
            .unwrap_or(AttrType::String)
    }

    /// Splits an attribute description into the stored attribute name (without the
    /// `;binary` option), its type and whether `;binary` was given.
    fn describe(&self, desc: &str) -> (String, AttrType, bool) {
        let mut parts = desc.split(';');
        let base = parts.next().unwrap_or(desc);
        let mut binary = false;
        let mut name = base.to_string();
        for opt in parts {
            if opt.eq_ignore_ascii_case("binary") {
                binary = true;
            } else {
                name.push(';');
                name.push_str(opt);
            }
        }
        let ty = if binary {
            AttrType::Binary
        } else {
            self.attr_type(base)
        };
        (name, ty, binary)
    }

    /// Converts one raw value to a typed value: binary types keep the bytes; base64 values
    /// that are not UTF-8 become binary for string attributes.
    fn convert(raw: &RawValue, ty: AttrType) -> Result<Value, String> {
        if ty == AttrType::Binary {
            return Ok(Value::Bin(raw.bytes().to_vec()));
        }
        match raw {
            RawValue::Text(t) => Value::parse_as(t, ty),
            RawValue::Bytes(b) => match std::str::from_utf8(b) {
                Ok(t) => Value::parse_as(t, ty),
                Err(_) if ty == AttrType::String => Ok(Value::Bin(b.clone())),
                Err(_) => Err(format!("a {ty:?} value must be valid UTF-8")),
            },
        }
    }

    /// The stored attribute name and typed value of one `attr: value` line.
    fn typed(&self, av: &AttrValue, file: &str) -> Result<(String, Value), ConnectorError> {
        let (name, ty, _) = self.describe(&av.desc);
        let v = Self::convert(&av.value, ty)
            .map_err(|m| input_error(file, av.line, format!("attribute '{}': {m}", av.desc)))?;
        Ok((name, v))
    }

    /// Builds an object from the attribute lines of a content or add record. When
    /// `require_anchor` is set, an entry without the anchor attribute is an error.
    fn build(
        &self,
        file: &str,
        line: usize,
        dn: Dn,
        avs: Vec<AttrValue>,
        require_anchor: bool,
    ) -> Result<Object, ConnectorError> {
        let mut attrs = Attributes::new();
        // Values of one attribute are usually consecutive: resolve each description once.
        let mut last: Option<(String, String, AttrType)> = None;
        for av in avs {
            let (key, ty) = match &last {
                Some((desc, key, ty)) if *desc == av.desc => (key.clone(), *ty),
                _ => {
                    let (name, ty, _) = self.describe(&av.desc);
                    let key = ci_key(&attrs, &name).unwrap_or(name);
                    last = Some((av.desc.clone(), key.clone(), ty));
                    (key, ty)
                }
            };
            let v = match (av.value, ty) {
                // Plain text of string-like attributes: no copy, no parsing.
                (RawValue::Text(t), AttrType::String) => Value::Str(t),
                (RawValue::Text(t), AttrType::Reference) => Value::Ref(t),
                (raw, ty) => Self::convert(&raw, ty).map_err(|m| {
                    input_error(file, av.line, format!("attribute '{}': {m}", av.desc))
                })?,
            };
            attrs.entry(key).or_default().push(v);
        }
        for values in attrs.values_mut() {
            if values.len() > 1 {
                dedup_exact(values);
            }
        }
        let anchor = self.anchor_of(&attrs);
        if anchor.is_none() && require_anchor {
            return Err(input_error(
                file,
                line,
                format!(
                    "entry '{dn}' has no anchor attribute '{}'",
                    self.anchor_attribute
                ),
            ));
        }
        let object_type = self.object_type_of(&attrs);
        Ok(Object {
            anchor,
            dn,
            object_type,
            attributes: attrs,
        })
    }

    /// The anchor of an entry: the first value of the anchor attribute (base64 when binary).
    pub(crate) fn anchor_of(&self, attrs: &Attributes) -> Option<String> {
        let key = ci_key(attrs, &self.anchor_attribute)?;
        attrs
            .get(&key)?
            .first()
            .map(Value::to_text)
            .filter(|a| !a.is_empty())
    }

    /// The object type of an entry from its objectClass values: the settings mapping (the
    /// last mapped value wins), then the built-in mapping, else the last objectClass value.
    pub(crate) fn object_type_of(&self, attrs: &Attributes) -> String {
        let classes: Vec<String> = ci_key(attrs, "objectClass")
            .and_then(|k| attrs.get(&k))
            .map(|vs| vs.iter().map(Value::to_text).collect())
            .unwrap_or_default();
        if let Some(t) = classes
            .iter()
            .rev()
            .find_map(|c| self.object_types.get(&c.to_ascii_lowercase()))
        {
            return t.clone();
        }
        for (names, ty) in DEFAULT_OBJECT_TYPES {
            if classes
                .iter()
                .any(|c| names.contains(&c.to_ascii_lowercase().as_str()))
            {
                return ty.to_string();
            }
        }
        classes.last().cloned().unwrap_or_else(|| "top".to_string())
    }

    /// The objectClass written for an added object of this type that has none.
    fn object_class_for(&self, object_type: &str) -> String {
        self.object_classes
            .get(object_type)
            .cloned()
            .unwrap_or_else(|| object_type.to_string())
    }
}

/// The key of attribute `name` in `attrs`, compared case-insensitively.
pub(crate) fn ci_key(attrs: &Attributes, name: &str) -> Option<String> {
    if attrs.contains_key(name) {
        return Some(name.to_string());
    }
    attrs.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// The matching key of a value for an attribute of type `ty`: references compare as
/// normalized DNs, strings case-insensitively (LDAP's usual caseIgnoreMatch), binary values
/// by their bytes, the rest by their text form.
pub(crate) fn value_key(v: &Value, ty: AttrType) -> String {
    match (ty, v) {
        (_, Value::Bin(_)) => format!("\u{0}bin:{}", v.to_text()),
        (AttrType::Reference, _) => {
            let t = v.to_text();
            Dn::parse(&t)
                .map(|d| d.normalized())
                .unwrap_or_else(|_| t.to_lowercase())
        }
        (AttrType::String, _) => v.to_text().to_lowercase(),
        _ => v.to_text(),
    }
}

/// Whether two values are equal for an attribute of type `ty` (see [`value_key`]).
#[cfg(test)]
pub(crate) fn values_match(a: &Value, b: &Value, ty: AttrType) -> bool {
    a == b || value_key(a, ty) == value_key(b, ty)
}

/// Removes values that repeat exactly, keeping the first of each. Cheap (no DN parsing), so
/// that importing a directory with huge groups stays fast.
fn dedup_exact(values: &mut Vec<Value>) {
    let dups: HashSet<usize> = {
        let mut seen: HashSet<&Value> = HashSet::with_capacity(values.len());
        values
            .iter()
            .enumerate()
            .filter(|(_, v)| !seen.insert(*v))
            .map(|(i, _)| i)
            .collect()
    };
    if !dups.is_empty() {
        let mut i = 0;
        values.retain(|_| {
            i += 1;
            !dups.contains(&(i - 1))
        });
    }
}

/// Adds values to an attribute (matched case-insensitively), skipping values present already.
/// Linear in the number of values, so that one member added to a huge group stays cheap.
pub(crate) fn add_values(attrs: &mut Attributes, name: &str, values: Vec<Value>, ty: AttrType) {
    if values.is_empty() {
        return;
    }
    let key = ci_key(attrs, name).unwrap_or_else(|| name.to_string());
    let entry = attrs.entry(key).or_default();
    let mut present: HashSet<String> = entry.iter().map(|v| value_key(v, ty)).collect();
    for v in values {
        if present.insert(value_key(&v, ty)) {
            entry.push(v);
        }
    }
}

/// Removes values from an attribute (all of them when `values` is empty).
pub(crate) fn remove_values(attrs: &mut Attributes, name: &str, values: &[Value], ty: AttrType) {
    let Some(key) = ci_key(attrs, name) else {
        return;
    };
    if values.is_empty() {
        attrs.remove(&key);
        return;
    }
    let gone: HashSet<String> = values.iter().map(|v| value_key(v, ty)).collect();
    if let Some(e) = attrs.get_mut(&key) {
        e.retain(|v| !gone.contains(&value_key(v, ty)));
        if e.is_empty() {
            attrs.remove(&key);
        }
    }
}

/// Replaces all values of an attribute (an empty list removes it).
pub(crate) fn replace_values(attrs: &mut Attributes, name: &str, values: Vec<Value>) {
    let key = ci_key(attrs, name).unwrap_or_else(|| name.to_string());
    if values.is_empty() {
        attrs.remove(&key);
    } else {
        attrs.insert(key, values);
    }
}

/// Renames an entry's RDN values like LDAP modrdn: removes the old RDN values (when
/// `delete_old` is set) and adds the new ones.
pub(crate) fn apply_rdn_change(
    typing: &Typing,
    attrs: &mut Attributes,
    old_dn: &Dn,
    new_dn: &Dn,
    delete_old: bool,
) {
    if let Some(old) = old_dn.rdn().filter(|_| delete_old) {
        for ava in &old.avas {
            let ty = typing.attr_type(&ava.attr);
            remove_values(attrs, &ava.attr, &[Value::Str(ava.value.clone())], ty);
        }
    }
    if let Some(new) = new_dn.rdn() {
        for ava in &new.avas {
            let ty = typing.attr_type(&ava.attr);
            let v =
                Value::parse_as(&ava.value, ty).unwrap_or_else(|_| Value::Str(ava.value.clone()));
            add_values(attrs, &ava.attr, vec![v], ty);
        }
    }
}

/// Writes `content` to `path` atomically: a temporary file in the same folder, fsync, rename,
/// then fsync of the folder.
pub(crate) fn write_atomic(path: &Path, content: &[u8]) -> Result<(), ConnectorError> {
    write_atomic_with(path, |w| {
        w.write_all(content).map_err(|source| ConnectorError::Io {
            path: path.display().to_string(),
            source,
        })
    })
}

/// Writes `path` atomically with what `fill` writes (buffered): a temporary file in the same
/// folder, fsync, rename, then fsync of the folder. On any error the temporary file is
/// removed and `path` is untouched.
pub(crate) fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn std::io::Write) -> Result<(), ConnectorError>,
) -> Result<(), ConnectorError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source: std::io::Error| ConnectorError::Io { path: p, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dirsync".to_string());
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io(path))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The LDIF connector. See the module documentation.
#[derive(Debug)]
pub struct LdifConnector {
    path: PathBuf,
    changes_dir: Option<PathBuf>,
    typing: Typing,
    /// Requests per export call.
    export_batch_size: usize,
}

impl LdifConnector {
    /// Creates the connector; relative paths in `settings` resolve against `base_dir`.
    pub fn new(settings: LdifSettings, base_dir: &Path) -> Result<Self, ConnectorError> {
        if settings.path.as_os_str().is_empty() {
            return Err(ConnectorError::Config("ldif: 'path' is empty".into()));
        }
        if !parse::valid_description(&settings.anchor_attribute) {
            return Err(ConnectorError::Config(format!(
                "ldif: anchor_attribute '{}' is not a valid attribute name",
                settings.anchor_attribute
            )));
        }
        for name in settings.attribute_types.keys() {
            if !parse::valid_description(name) {
                return Err(ConnectorError::Config(format!(
                    "ldif: attribute_types: '{name}' is not a valid attribute name"
                )));
            }
        }
        let typing = Typing::new(&settings)?;
        if settings.export_batch_size == Some(0) {
            return Err(ConnectorError::Config(
                "ldif: export_batch_size must be at least 1".into(),
            ));
        }
        Ok(LdifConnector {
            export_batch_size: settings.export_batch_size.unwrap_or(DEFAULT_EXPORT_BATCH),
            path: base_dir.join(&settings.path),
            changes_dir: settings.changes_dir.map(|d| base_dir.join(d)),
            typing,
        })
    }

    /// The resolved directory file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file_label(&self) -> String {
        self.path.display().to_string()
    }

    /// Reads every entry of the directory file, calling `f` with each object and the line
    /// of its `dn:`. A missing file (in an existing folder) is an empty directory.
    fn read_content(
        &self,
        require_anchor: bool,
        f: impl FnMut(Object, usize) -> Result<(), ConnectorError>,
    ) -> Result<(), ConnectorError> {
        self.read_content_checked(require_anchor, Unique::Both, f)
    }

    /// [`Self::read_content`] with a choice of uniqueness checks (each keeps a set of every
    /// DN or anchor of the file): an export's passes skip what they check otherwise.
    fn read_content_checked(
        &self,
        require_anchor: bool,
        unique: Unique,
        mut f: impl FnMut(Object, usize) -> Result<(), ConnectorError>,
    ) -> Result<(), ConnectorError> {
        let check_dns = unique == Unique::Both;
        let check_anchors = unique != Unique::Unchecked;
        let file = self.file_label();
        let handle = match std::fs::File::open(&self.path) {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent_exists = self
                    .path
                    .parent()
                    .is_none_or(|p| p.as_os_str().is_empty() || p.is_dir());
                if parent_exists {
                    tracing::warn!(file = %file, "LDIF file does not exist: empty directory");
                    return Ok(());
                }
                return Err(ConnectorError::Io {
                    path: file,
                    source: e,
                });
            }
            Err(e) => {
                return Err(ConnectorError::Io {
                    path: file,
                    source: e,
                });
            }
        };
        let url_base = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let reader = LdifReader::new(std::io::BufReader::new(handle), &file, &url_base);
        let mut seen_dns: HashMap<String, usize> = HashMap::new();
        let mut seen_anchors: HashMap<String, usize> = HashMap::new();
        for rec in reader {
            let rec = rec?;
            // `changetype: add` records (ldapadd input) are entries too.
            let (RecordBody::Content(avs) | RecordBody::Add(avs)) = rec.body else {
                return Err(input_error(
                    &file,
                    rec.line,
                    "change record (changetype: modify/delete/modrdn) in a content file",
                ));
            };
            let obj = self
                .typing
                .build(&file, rec.line, rec.dn, avs, require_anchor)?;
            if check_dns && let Some(first) = seen_dns.insert(obj.dn.normalized(), rec.line) {
                return Err(input_error(
                    &file,
                    rec.line,
                    format!("duplicate entry '{}' (first at line {first})", obj.dn),
                ));
            }
            if check_anchors
                && let Some(a) = &obj.anchor
                && let Some(first) = seen_anchors.insert(a.clone(), rec.line)
            {
                return Err(input_error(
                    &file,
                    rec.line,
                    format!("duplicate anchor '{a}' (first at line {first})"),
                ));
            }
            f(obj, rec.line)?;
        }
        Ok(())
    }

    /// Reads the directory file for an export of a batch: the entries `wanted` names, whether
    /// some entry lacks an anchor, and the number of entries. `None` when the file is not in
    /// the writer's order (parents first, by normalized DN), which the streaming merge needs.
    fn scan_for_export(
        &self,
        wanted: &export::Wanted,
    ) -> Result<Option<ExportScan>, ConnectorError> {
        let mut scan = ExportScan {
            loaded: Vec::new(),
            missing_anchor: false,
            entries: 0,
        };
        let mut sorted = true;
        let mut prev: Option<Vec<String>> = None;
        let mut normalized = String::new();
        // Strictly increasing DNs are unique DNs: only anchors need a set.
        self.read_content_checked(false, Unique::Anchors, |obj, _| {
            if !sorted {
                return Ok(());
            }
            let key = write::dn_sort_key(&obj.dn);
            if prev.as_ref().is_some_and(|p| *p >= key) {
                sorted = false;
                scan.loaded = Vec::new();
                return Ok(());
            }
            scan.entries += 1;
            scan.missing_anchor |= obj.anchor.is_none();
            if wanted.matches(obj.anchor.as_deref(), &key, &mut normalized) {
                scan.loaded.push(obj);
            }
            prev = Some(key);
            Ok(())
        })?;
        if !sorted {
            tracing::info!(file = %self.file_label(), "LDIF file not in DN order: export loads it whole");
            return Ok(None);
        }
        Ok(Some(scan))
    }

    /// Exports with the whole directory in memory (a file not in the writer's order).
    fn export_whole(&self, batch: &[ExportRequest]) -> Result<Vec<ExportResult>, ConnectorError> {
        let mut objects: Vec<Object> = Vec::new();
        self.read_content(false, |obj, _| {
            objects.push(obj);
            Ok(())
        })?;
        let mut store = export::Store::new(&self.typing, objects);
        let results: Vec<ExportResult> = batch.iter().map(|r| store.apply(r)).collect();
        if store.dirty {
            let text = write::render(store.objects());
            write_atomic(&self.path, text.as_bytes())?;
            tracing::info!(file = %self.file_label(), requests = batch.len(), "LDIF export written");
        }
        Ok(results)
    }

    /// Writes the new directory file: the current file's entries that are not in the store
    /// (their references fixed for the batch's renames and deletes, an anchor given where
    /// missing), merged in DN order with the store's entries (`loaded_dns`: the normalized
    /// DNs the store was loaded with). With `unchecked_file` (no scan before: a store of
    /// adds only), the file's order and its DNs and anchors are checked on the way: on a
    /// file out of order or holding a DN or anchor of the store, nothing is written and the
    /// answer is false.
    fn write_merged(
        &self,
        store: &export::Store<'_>,
        loaded_dns: &HashSet<String>,
        unchecked_file: bool,
    ) -> Result<bool, ConnectorError> {
        let mut mine: Vec<(Vec<String>, &Object)> = store
            .objects()
            .map(|o| (write::dn_sort_key(&o.dn), o))
            .collect();
        mine.sort_by(|a, b| a.0.cmp(&b.0));
        let io = |source: std::io::Error| ConnectorError::Io {
            path: self.file_label(),
            source,
        };
        let mut conflict = false;
        let conflict_error = || ConnectorError::Unsupported("LDIF one-pass export conflict".into());
        let written = write_atomic_with(&self.path, |w| {
            w.write_all(b"version: 1\n\n").map_err(io)?;
            let mut next = 0usize;
            let mut skipped = 0usize;
            let mut buf = String::with_capacity(1 << 16);
            let mut prev: Option<Vec<String>> = None;
            // Without a scan before, anchors are checked here; else the scan checked the file.
            let unique = if unchecked_file {
                Unique::Anchors
            } else {
                Unique::Unchecked
            };
            self.read_content_checked(false, unique, |mut obj, _| {
                let key = write::dn_sort_key(&obj.dn);
                // The normalized DN is the sort key's RDNs joined leaf first.
                let normalized = key
                    .iter()
                    .rev()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(",");
                if !loaded_dns.is_empty() && loaded_dns.contains(&normalized) {
                    skipped += 1;
                    return Ok(());
                }
                if unchecked_file {
                    if prev.as_ref().is_some_and(|p| *p >= key)
                        || store.holds(&normalized, obj.anchor.as_deref())
                    {
                        conflict = true;
                        return Err(conflict_error());
                    }
                    prev = Some(key.clone());
                }
                while let Some((_, o)) = mine.get(next).filter(|(k, _)| *k < key) {
                    write::push_entry(&mut buf, &o.dn, o);
                    next += 1;
                }
                export::give_anchor(&self.typing, &mut obj);
                store.fix_foreign(&mut obj);
                write::push_entry(&mut buf, &obj.dn, &obj);
                if buf.len() >= 1 << 16 {
                    w.write_all(buf.as_bytes()).map_err(io)?;
                    buf.clear();
                }
                Ok(())
            })?;
            if skipped != loaded_dns.len() {
                return Err(ConnectorError::Connection {
                    target: self.file_label(),
                    message: "the LDIF file changed during the export; nothing was written".into(),
                });
            }
            for (_, o) in &mine[next..] {
                write::push_entry(&mut buf, &o.dn, o);
            }
            w.write_all(buf.as_bytes()).map_err(io)
        });
        match written {
            Ok(()) => Ok(true),
            Err(_) if conflict => {
                tracing::debug!(file = %self.file_label(), "LDIF one-pass export not possible: general path");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The change files (`*.ldif`) of the changes folder, sorted by name.
    fn change_files(&self) -> Result<Vec<(String, PathBuf)>, ConnectorError> {
        let Some(dir) = &self.changes_dir else {
            return Ok(Vec::new());
        };
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), "LDIF changes folder does not exist");
                return Ok(Vec::new());
            }
            Err(e) => {
                return Err(ConnectorError::Io {
                    path: dir.display().to_string(),
                    source: e,
                });
            }
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| ConnectorError::Io {
                path: dir.display().to_string(),
                source: e,
            })?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                tracing::warn!(file = ?entry.file_name(), "skipping a change file whose name is not UTF-8");
                continue;
            };
            let is_ldif = name.to_ascii_lowercase().ends_with(".ldif") && !name.starts_with('.');
            if is_ldif && entry.path().is_file() {
                out.push((name, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Uniqueness checks of a content read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unique {
    /// DNs and anchors.
    Both,
    /// Anchors only.
    Anchors,
    /// None.
    Unchecked,
}

/// What [`LdifConnector::scan_for_export`] found.
struct ExportScan {
    /// The entries the batch can touch, in file order.
    loaded: Vec<Object>,
    /// True when some entry of the file has no anchor (one is written).
    missing_anchor: bool,
    /// Entries in the file.
    entries: usize,
}

/// Applies the container filter to delta changes: an entry that ends up outside the scope
/// is a delete when the connector space (or this run) has it, and nothing otherwise.
fn scope_changes(
    containers: &Partition,
    changes: Vec<ImportChange>,
    cs: &dyn ConnectorSpaceView,
) -> Vec<ImportChange> {
    let mut upserted: HashSet<String> = HashSet::new();
    let mut left: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        match c {
            ImportChange::Upsert(o) if !containers.in_scope(&o.dn) => {
                let Some(a) = o.anchor.clone() else { continue };
                let known = upserted.remove(&a) || cs.by_anchor(&a).is_some();
                if known && left.insert(a.clone()) {
                    tracing::debug!(dn = %o.dn, "entry left the LDIF container scope: delete");
                    out.push(ImportChange::Delete { anchor: a });
                }
            }
            ImportChange::Upsert(o) => {
                if let Some(a) = &o.anchor {
                    upserted.insert(a.clone());
                    left.remove(a);
                }
                out.push(ImportChange::Upsert(o));
            }
            ImportChange::Delete { anchor } => {
                upserted.remove(&anchor);
                if !left.contains(&anchor) {
                    out.push(ImportChange::Delete { anchor });
                }
            }
        }
    }
    out
}

impl Connector for LdifConnector {
    /// The whole target file is rewritten per call (streaming, only the entries the batch
    /// touches are held): large batches (`export_batch_size`).
    fn export_batch_size(&self) -> usize {
        self.export_batch_size
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            delta_import: self.changes_dir.is_some(),
            export: true,
        }
    }

    fn schema(&mut self) -> Result<Schema, ConnectorError> {
        let mut schema = Schema::default();
        self.read_content(false, |obj, _| {
            let t = schema
                .object_types
                .entry(obj.object_type.clone())
                .or_default();
            for (name, values) in &obj.attributes {
                let ty = values
                    .first()
                    .map(Value::attr_type)
                    .unwrap_or_else(|| self.typing.attr_type(name));
                let def = t.attributes.entry(name.clone()).or_insert(AttributeDef {
                    ty,
                    multi_valued: false,
                });
                def.multi_valued |= values.len() > 1;
            }
            Ok(())
        })?;
        Ok(schema)
    }

    fn full_import(&mut self, sink: &mut dyn ImportSink) -> Result<Watermark, ConnectorError> {
        // The watermark is taken before reading so that a change file written during the
        // import is applied by the next delta.
        // With a changes folder a delta is always possible: an empty folder gives the empty
        // watermark ("before every file").
        let watermark = match &self.changes_dir {
            Some(_) => Some(
                self.change_files()?
                    .pop()
                    .map(|(n, _)| n)
                    .unwrap_or_default(),
            ),
            None => None,
        };
        let mut count = 0usize;
        let containers = &self.typing.containers;
        self.read_content(true, |obj, _| {
            if !containers.in_scope(&obj.dn) {
                return Ok(());
            }
            count += 1;
            sink.push(ImportChange::Upsert(obj))
        })?;
        tracing::info!(file = %self.file_label(), objects = count, watermark = ?watermark, "LDIF full import");
        Ok(watermark)
    }

    fn delta_import(
        &mut self,
        watermark: &str,
        cs: &dyn ConnectorSpaceView,
        sink: &mut dyn ImportSink,
    ) -> Result<Watermark, ConnectorError> {
        if self.changes_dir.is_none() {
            return Err(ConnectorError::Unsupported(
                "ldif: delta import needs 'changes_dir'".into(),
            ));
        }
        let files: Vec<(String, PathBuf)> = self
            .change_files()?
            .into_iter()
            .filter(|(n, _)| n.as_str() > watermark)
            .collect();
        let Some(last) = files.last().map(|(n, _)| n.clone()) else {
            return Ok(Some(watermark.to_string()));
        };
        let changes = delta::apply_files(&self.typing, &files, cs)?;
        let changes = scope_changes(&self.typing.containers, changes, cs);
        tracing::info!(files = files.len(), changes = changes.len(), watermark = %last, "LDIF delta import");
        for c in changes {
            sink.push(c)?;
        }
        Ok(Some(last))
    }

    fn export(&mut self, batch: &[ExportRequest]) -> Result<Vec<ExportResult>, ConnectorError> {
        // Only the entries the batch can touch are loaded; the others are streamed from the
        // current file into the new one. That needs the file in the order the writer uses
        // (every file this connector wrote is); any other file is loaded whole, once.
        // A batch of adds only (an initial export) is tried in one pass: the adds are applied
        // to an empty store and merged into the file, unless the file turns out to hold one
        // of their DNs or anchors (or not to be in order): then the batch takes the general
        // path, the file untouched.
        if batch
            .iter()
            .all(|r| matches!(r.operation, ExportOperation::Add { .. }))
        {
            let mut store = export::Store::new(&self.typing, Vec::new());
            let results: Vec<ExportResult> = batch.iter().map(|r| store.apply(r)).collect();
            if store.dirty && self.write_merged(&store, &HashSet::new(), true)? {
                tracing::info!(file = %self.file_label(), requests = batch.len(), "LDIF export written (adds, one pass)");
                return Ok(results);
            }
        }
        let mut wanted = export::Wanted::of(&self.typing, batch);
        let scan = loop {
            let scan = self.scan_for_export(&wanted)?;
            let Some(scan) = scan else {
                return self.export_whole(batch);
            };
            // An entry found by its anchor under another DN than the request's: its
            // subtree matters too (non-leaf check, subtree rename).
            let missing: Vec<String> = scan
                .loaded
                .iter()
                .filter(|o| !wanted.covers(&o.dn))
                .map(|o| o.dn.normalized())
                .collect();
            if missing.is_empty() {
                break scan;
            }
            wanted.dns.extend(missing);
        };
        let loaded_dns: HashSet<String> = scan.loaded.iter().map(|o| o.dn.normalized()).collect();
        let mut store = export::Store::new(&self.typing, scan.loaded);
        let results: Vec<ExportResult> = batch.iter().map(|r| store.apply(r)).collect();
        if store.dirty || scan.missing_anchor {
            self.write_merged(&store, &loaded_dns, false)?;
            tracing::info!(
                file = %self.file_label(),
                requests = batch.len(),
                loaded = loaded_dns.len(),
                entries = scan.entries,
                "LDIF export written"
            );
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::ExportOutcome;
    use crate::model::AttributeChange;

    fn typing() -> Typing {
        Typing::new(&LdifSettings::new("x.ldif")).unwrap()
    }

    #[test]
    fn default_types_and_object_types() {
        let t = typing();
        assert_eq!(t.attr_type("Member"), AttrType::Reference);
        assert_eq!(t.attr_type("uidNumber"), AttrType::Integer);
        assert_eq!(t.attr_type("objectGUID"), AttrType::Binary);
        assert_eq!(t.attr_type("cn"), AttrType::String);
        let mut a = Attributes::new();
        a.insert(
            "objectClass".into(),
            ["top", "person", "organizationalPerson", "user", "computer"]
                .iter()
                .map(|s| Value::from(*s))
                .collect(),
        );
        assert_eq!(t.object_type_of(&a), "computer");
        a.insert("objectClass".into(), vec!["top".into(), "device".into()]);
        assert_eq!(t.object_type_of(&a), "device");
        a.insert("objectclass".into(), vec!["groupOfNames".into()]);
        a.remove("objectClass");
        assert_eq!(t.object_type_of(&a), "group");
        let mut s = LdifSettings::new("x");
        s.object_types.insert("groupOfNames".into(), "team".into());
        assert_eq!(Typing::new(&s).unwrap().object_type_of(&a), "team");
        assert_eq!(
            Typing::new(&s).unwrap().object_class_for("team"),
            "groupOfNames"
        );
    }

    #[test]
    fn base64_values_decode_by_type() {
        assert_eq!(
            Typing::convert(&RawValue::Bytes(b"abc".to_vec()), AttrType::String),
            Ok(Value::Str("abc".into()))
        );
        assert_eq!(
            Typing::convert(&RawValue::Bytes(vec![0xff, 0]), AttrType::String),
            Ok(Value::Bin(vec![0xff, 0]))
        );
        assert_eq!(
            Typing::convert(&RawValue::Bytes(b"abc".to_vec()), AttrType::Binary),
            Ok(Value::Bin(b"abc".to_vec()))
        );
        assert!(Typing::convert(&RawValue::Text("x".into()), AttrType::Integer).is_err());
        let t = typing();
        assert_eq!(
            t.describe("userCertificate;binary"),
            ("userCertificate".into(), AttrType::Binary, true)
        );
        assert_eq!(
            t.describe("description;lang-fr"),
            ("description;lang-fr".into(), AttrType::String, false)
        );
        assert_eq!(t.describe("cn;binary").1, AttrType::Binary);
    }

    #[test]
    fn settings_deny_unknown_fields_and_default() {
        let s: LdifSettings = toml::from_str("path = \"a.ldif\"").unwrap();
        assert_eq!(s, LdifSettings::new("a.ldif"));
        assert!(toml::from_str::<LdifSettings>("path = \"a\"\nanchor = \"x\"").is_err());
        let s: LdifSettings = toml::from_str(
            "path = \"a\"\nanchor_attribute = \"objectGUID\"\n[attribute_types]\nemployeeNumber = \"integer\"\n",
        )
        .unwrap();
        assert_eq!(s.attribute_types["employeeNumber"], AttrType::Integer);
    }

    #[test]
    fn value_matching() {
        assert!(values_match(
            &Value::Ref("CN=A,DC=X".into()),
            &Value::Str("cn=a, dc=x".into()),
            AttrType::Reference
        ));
        assert!(values_match(
            &Value::from("Smith"),
            &Value::from("smith"),
            AttrType::String
        ));
        assert!(!values_match(
            &Value::from("a"),
            &Value::from("b"),
            AttrType::String
        ));
        let mut v: Vec<Value> = (0..100).map(|i| Value::Ref(format!("cn=u{i}"))).collect();
        v.push(Value::Ref("cn=u5".into()));
        v.insert(0, Value::Ref("cn=u7".into()));
        dedup_exact(&mut v);
        assert_eq!(v.len(), 100);
        assert_eq!(v[0], Value::Ref("cn=u7".into()));
        assert_eq!(v[1], Value::Ref("cn=u0".into()));
        let mut attrs = Attributes::new();
        attrs.insert("member".into(), v.clone());
        add_values(
            &mut attrs,
            "MEMBER",
            vec![Value::Str("CN=U5".into())],
            AttrType::Reference,
        );
        assert_eq!(attrs["member"].len(), 100, "DN-equal value not added twice");
        remove_values(
            &mut attrs,
            "member",
            &[Value::Str("CN=U5".into())],
            AttrType::Reference,
        );
        assert_eq!(attrs["member"].len(), 99);
    }

    #[test]
    fn generated_values_round_trip_through_writer_and_parser() {
        // Deterministic pseudo-random strings over an alphabet of troublemakers.
        let alphabet: Vec<char> = " :<#,+\"\\;=>\t\r\n\0\u{7f}aZ9-ëÜ漢🙂".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let t = typing();
        let mut objects = Vec::new();
        for i in 0..200 {
            let len = next(120);
            let text: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            let rdn_value: String = (0..1 + next(12))
                .map(|_| alphabet[next(alphabet.len())])
                .filter(|c| *c != '\0')
                .collect();
            let rdn_value = if rdn_value.trim().is_empty() {
                format!("x{rdn_value}x")
            } else {
                rdn_value
            };
            let dn = Dn::root()
                .child(crate::model::Rdn::new("dc", "x"))
                .child(crate::model::Rdn::new("cn", &format!("{i}{rdn_value}")));
            let mut o = Object::new(Some(format!("a{i}")), dn, "user");
            o.set("entryUUID", vec![Value::Str(format!("a{i}"))]);
            o.set("objectClass", vec![Value::from("inetOrgPerson")]);
            if !text.is_empty() {
                o.set("description", vec![Value::Str(text)]);
            }
            let bytes: Vec<u8> = (0..next(40)).map(|_| next(256) as u8).collect();
            if !bytes.is_empty() {
                o.set("jpegPhoto", vec![Value::Bin(bytes)]);
            }
            objects.push(o);
        }
        let text = write::render(objects.iter());
        assert!(text.is_ascii());
        assert!(text.lines().all(|l| l.len() <= 76));
        let parsed = parse::LdifReader::new(text.as_bytes(), "gen", Path::new("."))
            .map(|r| {
                let r = r.unwrap();
                let RecordBody::Content(avs) = r.body else {
                    panic!("content expected")
                };
                t.build("gen", r.line, r.dn, avs, true).unwrap()
            })
            .collect::<Vec<_>>();
        assert_eq!(parsed.len(), objects.len());
        for o in &objects {
            let p = parsed.iter().find(|p| p.anchor == o.anchor).unwrap();
            assert_eq!(p.dn.to_string(), o.dn.to_string());
            assert_eq!(p.attributes, o.attributes, "{}", o.dn);
        }
    }

    /// A batch of every kind of request against a file in the writer's order: the streaming
    /// export (only the touched entries loaded) writes exactly what the whole-file export
    /// writes, with the same per-request results.
    #[test]
    fn streaming_export_matches_whole_file_export() {
        let ex = |i: i64, dn: &str, anchor: Option<&str>, op: ExportOperation| ExportRequest {
            id: i,
            object_type: "user".into(),
            anchor: anchor.map(str::to_string),
            dn: Dn::parse(dn).unwrap(),
            operation: op,
        };
        let attrs = |pairs: &[(&str, Value)]| {
            let mut a = Attributes::new();
            for (n, v) in pairs {
                a.entry(n.to_string()).or_default().push(v.clone());
            }
            a
        };
        let upd = |changes: Vec<AttributeChange>, new_dn: Option<&str>| ExportOperation::Update {
            changes,
            new_dn: new_dn.map(|d| Dn::parse(d).unwrap()),
        };
        let mut objects = Vec::new();
        let mut entry = |dn: &str, anchor: &str, class: &str, extra: &[(&str, Value)]| {
            let mut o = Object::new(Some(anchor.into()), Dn::parse(dn).unwrap(), "x");
            o.set("entryUUID", vec![Value::from(anchor)]);
            o.set("objectClass", vec![Value::from(class)]);
            for (n, v) in extra {
                o.attributes
                    .entry(n.to_string())
                    .or_default()
                    .push(v.clone());
            }
            objects.push(o);
        };
        entry("dc=x", "root", "domain", &[]);
        entry("ou=a,dc=x", "ou-a", "organizationalUnit", &[]);
        entry("ou=b,dc=x", "ou-b", "organizationalUnit", &[]);
        entry("ou=sub,ou=a,dc=x", "ou-sub", "organizationalUnit", &[]);
        for i in 0..200 {
            entry(
                &format!("cn=u{i},ou=a,dc=x"),
                &format!("u{i}"),
                "inetOrgPerson",
                &[("title", Value::from("t"))],
            );
        }
        for i in 0..10 {
            entry(
                &format!("cn=s{i},ou=sub,ou=a,dc=x"),
                &format!("s{i}"),
                "inetOrgPerson",
                &[],
            );
        }
        for g in 0..10 {
            let members: Vec<(&str, Value)> = (0..8)
                .map(|m| ("member", Value::Ref(format!("CN=U{},OU=A,DC=X", g * 4 + m))))
                .chain(std::iter::once((
                    "member",
                    Value::Ref(format!("cn=s{g},ou=sub,ou=a,dc=x")),
                )))
                .collect();
            entry(
                &format!("cn=g{g},ou=b,dc=x"),
                &format!("g{g}"),
                "groupOfNames",
                &members,
            );
        }
        let batch = vec![
            ex(
                1,
                "cn=u1,ou=a,dc=x",
                Some("u1"),
                upd(
                    vec![AttributeChange::Replace {
                        name: "title".into(),
                        values: vec!["new".into()],
                    }],
                    None,
                ),
            ),
            ex(
                2,
                "cn=u2,ou=a,dc=x",
                Some("u2"),
                upd(vec![], Some("cn=u2x,ou=b,dc=x")),
            ),
            ex(
                3,
                "ou=sub,ou=a,dc=x",
                Some("ou-sub"),
                upd(vec![], Some("ou=sub2,dc=x")),
            ),
            ex(4, "cn=u3,ou=a,dc=x", Some("u3"), ExportOperation::Delete),
            ex(5, "ou=sub2,dc=x", Some("ou-sub"), ExportOperation::Delete),
            ex(
                6,
                "cn=new,ou=b,dc=x",
                Some("n1"),
                ExportOperation::Add {
                    attributes: attrs(&[("member", Value::Ref("cn=u4,ou=a,dc=x".into()))]),
                },
            ),
            ex(
                7,
                "cn=new,ou=b,dc=x",
                Some("n1"),
                upd(vec![], Some("cn=new2,ou=b,dc=x")),
            ),
            ex(
                8,
                "cn=u5,ou=a,dc=x",
                Some("u5x"),
                ExportOperation::Add {
                    attributes: attrs(&[]),
                },
            ),
            // A stale DN: found by its anchor, renamed under its real DN.
            ex(
                9,
                "cn=stale,dc=x",
                Some("u6"),
                upd(vec![], Some("cn=u6x,ou=a,dc=x")),
            ),
            // Chains: u7 -> u7b -> u7c; u8 deleted, then u9 renamed to u8's old DN.
            ex(
                10,
                "cn=u7,ou=a,dc=x",
                Some("u7"),
                upd(vec![], Some("cn=u7b,ou=a,dc=x")),
            ),
            ex(
                11,
                "cn=u7b,ou=a,dc=x",
                Some("u7"),
                upd(vec![], Some("cn=u7c,ou=a,dc=x")),
            ),
            ex(12, "cn=u8,ou=a,dc=x", Some("u8"), ExportOperation::Delete),
            ex(
                13,
                "cn=u9,ou=a,dc=x",
                Some("u9"),
                upd(vec![], Some("cn=u8,ou=a,dc=x")),
            ),
            ex(
                14,
                "cn=s5,ou=sub2,dc=x",
                Some("s5"),
                ExportOperation::Delete,
            ),
            ex(15, "cn=zz,ou=a,dc=x", Some("nope"), ExportOperation::Delete),
        ];
        let dir = tempfile::tempdir().unwrap();
        let text = write::render(objects.iter());
        let run = |name: &str, stream: bool| {
            std::fs::write(dir.path().join(name), &text).unwrap();
            let mut c = LdifConnector::new(LdifSettings::new(name), dir.path()).unwrap();
            let results = if stream {
                let scan = c
                    .scan_for_export(&export::Wanted::of(&c.typing, &batch))
                    .unwrap()
                    .expect("a rendered file is in DN order");
                assert!(
                    scan.loaded.len() < scan.entries / 2,
                    "{}",
                    scan.loaded.len()
                );
                c.export(&batch).unwrap()
            } else {
                c.export_whole(&batch).unwrap()
            };
            (
                results,
                std::fs::read_to_string(dir.path().join(name)).unwrap(),
            )
        };
        let (r_stream, t_stream) = run("stream.ldif", true);
        let (r_whole, t_whole) = run("whole.ldif", false);
        assert_eq!(r_stream, r_whole);
        assert_eq!(t_stream, t_whole);
        // The requests did what they say (the comparison alone would pass on a no-op).
        let fails: Vec<i64> = r_stream
            .iter()
            .filter(|r| !matches!(r.outcome, ExportOutcome::Success { .. }))
            .map(|r| r.id)
            .collect();
        assert_eq!(
            fails,
            vec![5, 8, 15],
            "non-leaf delete, existing DN, unknown entry"
        );
        assert!(t_stream.contains("member: cn=u2x,ou=b,dc=x\n"));
        assert!(t_stream.contains("member: cn=s0,ou=sub2,dc=x\n"));
        assert!(t_stream.contains("dn: cn=u7c,ou=a,dc=x\n"));
        assert!(
            !t_stream.contains("cn=u3,ou=a,dc=x"),
            "deleted u3 and references to it"
        );
        assert!(!t_stream.to_lowercase().contains("cn=u7,ou=a"));
        // References to u8 were removed with it; u9's became references to u8's DN.
        assert!(!t_stream.to_lowercase().contains("cn=u9,ou=a"));
        // A second export on the written file streams again and changes nothing else.
        let mut c = LdifConnector::new(LdifSettings::new("stream.ldif"), dir.path()).unwrap();
        let r = c.export(&[ex(
            20,
            "cn=u10,ou=a,dc=x",
            Some("u10"),
            ExportOperation::Delete,
        )]);
        assert!(matches!(
            r.unwrap()[0].outcome,
            ExportOutcome::Success { .. }
        ));
        let after = std::fs::read_to_string(dir.path().join("stream.ldif")).unwrap();
        assert_eq!(
            after.matches("dn: ").count(),
            t_stream.matches("dn: ").count() - 1
        );
    }

    /// Batches of adds only (one pass, falling back to the general path when the file holds
    /// one of their DNs or anchors, or is out of order) give exactly the whole-file results.
    #[test]
    fn add_only_batches_match_whole_file_export() {
        let add = |i: i64, dn: &str, anchor: &str| ExportRequest {
            id: i,
            object_type: "user".into(),
            anchor: Some(anchor.into()),
            dn: Dn::parse(dn).unwrap(),
            operation: ExportOperation::Add {
                attributes: [("sn".to_string(), vec![Value::from("x")])].into(),
            },
        };
        let sorted = write::render(
            (0..50)
                .map(|i| {
                    let mut o = Object::new(
                        Some(format!("a{i}")),
                        Dn::parse(&format!("cn=e{i},dc=x")).unwrap(),
                        "user",
                    );
                    o.set("entryUUID", vec![Value::Str(format!("a{i}"))]);
                    o.set("objectClass", vec![Value::from("person")]);
                    o
                })
                .collect::<Vec<_>>()
                .iter(),
        );
        let unsorted = "version: 1\n\ndn: cn=z,dc=x\nentryUUID: z\nobjectClass: person\n\n\
                        dn: cn=b,dc=x\nentryUUID: b\nobjectClass: person\n\n";
        let clean = vec![add(1, "cn=n1,dc=x", "n1"), add(2, "cn=e7x,dc=x", "n2")];
        let dn_clash = vec![add(1, "cn=n1,dc=x", "n1"), add(2, "CN=E7,dc=x", "n2")];
        let anchor_clash = vec![add(1, "cn=n1,dc=x", "a9"), add(2, "cn=n2,dc=x", "n2")];
        let dir = tempfile::tempdir().unwrap();
        for (n, (file, batch, fails)) in [
            (sorted.as_str(), &clean, 0),
            (sorted.as_str(), &dn_clash, 1),
            (sorted.as_str(), &anchor_clash, 1),
            (unsorted, &clean, 0),
        ]
        .into_iter()
        .enumerate()
        {
            let mut out = Vec::new();
            for whole in [false, true] {
                let name = format!("{n}{whole}.ldif");
                std::fs::write(dir.path().join(&name), file).unwrap();
                let mut c = LdifConnector::new(LdifSettings::new(&name), dir.path()).unwrap();
                let r = if whole {
                    c.export_whole(batch).unwrap()
                } else {
                    c.export(batch).unwrap()
                };
                let failed = r
                    .iter()
                    .filter(|r| !matches!(r.outcome, ExportOutcome::Success { .. }))
                    .count();
                assert_eq!(failed, fails, "case {n}");
                out.push((r, std::fs::read_to_string(dir.path().join(&name)).unwrap()));
            }
            assert_eq!(out[0], out[1], "case {n}");
            assert!(
                out[0].1.contains("dn: cn=n1,dc=x\n") || fails > 0,
                "case {n}"
            );
        }
    }

    /// A file not in the writer's order is exported whole once and written in order.
    #[test]
    fn unordered_file_is_exported_whole_and_written_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("t.ldif"),
            "version: 1\n\ndn: cn=b,dc=x\nentryUUID: b\nobjectClass: person\n\n\
             dn: cn=a,dc=x\nobjectClass: person\n\ndn: dc=x\nentryUUID: x\nobjectClass: domain\n\n",
        )
        .unwrap();
        let mut c = LdifConnector::new(LdifSettings::new("t.ldif"), dir.path()).unwrap();
        assert!(
            c.scan_for_export(&export::Wanted::default())
                .unwrap()
                .is_none()
        );
        let r = c.export(&[ExportRequest {
            id: 1,
            object_type: "user".into(),
            anchor: Some("b".into()),
            dn: Dn::parse("cn=b,dc=x").unwrap(),
            operation: ExportOperation::Delete,
        }]);
        assert!(matches!(
            r.unwrap()[0].outcome,
            ExportOutcome::Success { .. }
        ));
        let text = std::fs::read_to_string(dir.path().join("t.ldif")).unwrap();
        let dns: Vec<&str> = text.lines().filter(|l| l.starts_with("dn: ")).collect();
        assert_eq!(dns, vec!["dn: dc=x", "dn: cn=a,dc=x"]);
        assert!(
            c.scan_for_export(&export::Wanted::default())
                .unwrap()
                .is_some()
        );
        // The entry that had no anchor got one.
        assert_eq!(text.matches("entryUUID: ").count(), 2);
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.ldif");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

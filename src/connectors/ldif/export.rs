//! Export: applies requests to the in-memory directory with directory semantics (unique DNs
//! and anchors, no deletion of non-leaf entries, subtree renames, referential integrity of
//! reference attributes) and reports one result per request.
//!
//! The store need not hold the whole directory: [`Wanted`] names the entries a batch can
//! touch (its DNs and new DNs with their subtrees, its anchors), and only those are loaded.
//! Every other entry can only change through referential integrity; the store records the
//! composed effect of its renames and deletes on reference values ([`Store::fix_foreign`]),
//! which the writer applies to those entries while streaming the file.

use super::{
    Typing, add_values, apply_rdn_change, ci_key, dedup_exact, parse, remove_values, replace_values,
};
use crate::connectors::{
    ExportErrorKind, ExportOperation, ExportOutcome, ExportRequest, ExportResult,
};
use crate::model::{AttrType, AttributeChange, Attributes, Dn, Object, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use std::collections::{HashMap, HashSet};

/// The entries a batch can touch: those whose DN lies within (or is) one of `dns`, or whose
/// anchor is one of `anchors`.
#[derive(Debug, Default)]
pub(super) struct Wanted {
    /// Normalized DNs: request DNs, new DNs, and DNs found for the batch's anchors.
    pub(super) dns: HashSet<String>,
    anchors: HashSet<String>,
}

impl Wanted {
    /// The DNs and anchors of `batch` (including anchors given in the attributes of adds).
    pub(super) fn of(typing: &Typing, batch: &[ExportRequest]) -> Self {
        let mut w = Wanted::default();
        for r in batch {
            w.dns.insert(r.dn.normalized());
            if let Some(a) = &r.anchor {
                w.anchors.insert(a.clone());
            }
            match &r.operation {
                ExportOperation::Add { attributes } => {
                    if let Some(a) = typing.anchor_of(attributes) {
                        w.anchors.insert(a);
                    }
                }
                ExportOperation::Update {
                    new_dn: Some(n), ..
                } => {
                    w.dns.insert(n.normalized());
                }
                _ => {}
            }
        }
        w
    }

    /// True when the entry with this anchor and DN (given by its [`super::write::dn_sort_key`],
    /// the normalized RDNs from the root down) is wanted; `normalized` receives the
    /// entry's normalized DN.
    pub(super) fn matches(
        &self,
        anchor: Option<&str>,
        sort_key: &[String],
        normalized: &mut String,
    ) -> bool {
        // Ancestors from the root down: "dc=x", "ou=a,dc=x", ...
        normalized.clear();
        let mut hit = false;
        for (i, rdn) in sort_key.iter().enumerate() {
            if i == 0 {
                normalized.push_str(rdn);
            } else {
                normalized.insert(0, ',');
                normalized.insert_str(0, rdn);
            }
            hit = hit || self.dns.contains(normalized.as_str());
        }
        hit || anchor.is_some_and(|a| self.anchors.contains(a))
    }

    /// True when `dn` or one of its ancestors is among the DNs.
    pub(super) fn covers(&self, dn: &Dn) -> bool {
        let mut d = dn.clone();
        loop {
            if self.dns.contains(&d.normalized()) {
                return true;
            }
            if d.is_root() {
                return false;
            }
            d = d.parent();
        }
    }
}

/// The composed effect of a batch's renames and deletes on reference values held by entries
/// outside the store: normalized old DN -> new DN text, `None` when removed.
#[derive(Debug, Default)]
struct RefMoves {
    map: HashMap<String, Option<String>>,
    /// Normalized new DN -> the old DNs mapped to it.
    by_target: HashMap<String, Vec<String>>,
}

impl RefMoves {
    /// Records that references to `old` now point to `new` (or are removed): references
    /// already redirected to `old` follow, and references to `old` that an earlier step
    /// already redirected or removed stay as they are.
    fn record(&mut self, old: &Dn, new: Option<&Dn>) {
        let old_n = old.normalized();
        let new_n = new.map(Dn::normalized);
        let new_t = new.map(Dn::to_string);
        if let Some(keys) = self.by_target.remove(&old_n) {
            for k in keys {
                if let Some(n) = &new_n {
                    self.by_target.entry(n.clone()).or_default().push(k.clone());
                }
                self.map.insert(k, new_t.clone());
            }
        }
        if !self.map.contains_key(&old_n) {
            if let Some(n) = &new_n {
                self.by_target
                    .entry(n.clone())
                    .or_default()
                    .push(old_n.clone());
            }
            self.map.insert(old_n, new_t);
        }
    }
}

/// Rewrites the reference values of `o` as `lookup` says: `None` keeps a value,
/// `Some(None)` removes it, `Some(Some(new))` replaces it with `new`; attributes left without
/// values are dropped. True when something changed.
fn rewrite_refs(
    typing: &Typing,
    o: &mut Object,
    lookup: impl Fn(&str) -> Option<Option<String>>,
) -> bool {
    let mut changed = false;
    for (name, values) in o.attributes.iter_mut() {
        if typing.attr_type(name) != AttrType::Reference {
            continue;
        }
        values.retain_mut(|v| {
            let hit = match v {
                Value::Ref(t) | Value::Str(t) => lookup(t),
                _ => None,
            };
            match hit {
                None => true,
                Some(None) => {
                    changed = true;
                    false
                }
                Some(Some(n)) => {
                    *v = Value::Ref(n);
                    changed = true;
                    true
                }
            }
        });
    }
    if changed {
        o.attributes.retain(|_, vs| !vs.is_empty());
        tracing::debug!(referrer = %o.dn, "referential integrity: references updated");
    }
    changed
}

/// The anchor value for an entry that has none, and its text form: the given anchor, else a
/// new UUID v4 (as 16 raw bytes, rendered base64, when the anchor attribute is binary).
fn new_anchor(typing: &Typing, given: Option<&str>) -> (Value, String) {
    if typing.attr_type(&typing.anchor_attribute) == AttrType::Binary {
        let bytes = given
            .and_then(|g| B64.decode(g).ok())
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_bytes().to_vec());
        let text = B64.encode(&bytes);
        return (Value::Bin(bytes), text);
    }
    let text = given
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    (Value::Str(text.clone()), text)
}

/// Gives `o` a new anchor when it has none; true when it did.
pub(super) fn give_anchor(typing: &Typing, o: &mut Object) -> bool {
    if o.anchor.is_some() {
        return false;
    }
    let (v, a) = new_anchor(typing, None);
    o.set(&typing.anchor_attribute, vec![v]);
    o.anchor = Some(a);
    true
}

/// A per-request failure.
struct Fail(ExportErrorKind, String);

type Outcome = Result<Option<String>, Fail>;

/// The directory being exported to.
pub(super) struct Store<'t> {
    typing: &'t Typing,
    entries: Vec<Option<Object>>,
    by_dn: HashMap<String, usize>,
    by_anchor: HashMap<String, usize>,
    /// Normalized parent DN -> number of direct children.
    children: HashMap<String, usize>,
    /// Reverse index of reference values (normalized DN -> entries that may hold it, with
    /// the value's exact text), built on the first rename or delete. Entries may be stale:
    /// users re-check the values.
    refs: Option<HashMap<String, Vec<(usize, String)>>>,
    /// Renames and deletes as they affect references held outside the store.
    ref_moves: RefMoves,
    /// True once anything changed and the file must be rewritten.
    pub(super) dirty: bool,
}

impl<'t> Store<'t> {
    /// A store holding `objects`; entries without an anchor get a new UUID (and make the
    /// store dirty so that the anchor is written).
    pub(super) fn new(typing: &'t Typing, objects: Vec<Object>) -> Self {
        let mut s = Store {
            typing,
            entries: Vec::with_capacity(objects.len()),
            by_dn: HashMap::with_capacity(objects.len()),
            by_anchor: HashMap::with_capacity(objects.len()),
            children: HashMap::new(),
            refs: None,
            ref_moves: RefMoves::default(),
            dirty: false,
        };
        for mut o in objects {
            s.dirty |= give_anchor(typing, &mut o);
            s.insert(o);
        }
        s
    }

    /// True when the store has an entry with this normalized DN or this anchor.
    pub(super) fn holds(&self, normalized_dn: &str, anchor: Option<&str>) -> bool {
        self.by_dn.contains_key(normalized_dn)
            || anchor.is_some_and(|a| self.by_anchor.contains_key(a))
    }

    /// The entries currently in the directory.
    pub(super) fn objects(&self) -> impl Iterator<Item = &Object> {
        self.entries.iter().flatten()
    }

    fn insert(&mut self, o: Object) -> usize {
        let id = self.entries.len();
        self.by_dn.insert(o.dn.normalized(), id);
        if let Some(a) = &o.anchor {
            self.by_anchor.insert(a.clone(), id);
        }
        *self.children.entry(o.dn.parent().normalized()).or_default() += 1;
        self.entries.push(Some(o));
        self.index_refs(id);
        id
    }

    fn remove(&mut self, id: usize) -> Option<Object> {
        let o = self.entries.get_mut(id)?.take()?;
        self.by_dn.remove(&o.dn.normalized());
        if let Some(a) = &o.anchor {
            self.by_anchor.remove(a);
        }
        if let Some(c) = self.children.get_mut(&o.dn.parent().normalized()) {
            *c = c.saturating_sub(1);
        }
        Some(o)
    }

    fn set_dn(&mut self, id: usize, new_dn: Dn) {
        let Some(Some(o)) = self.entries.get_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut o.dn, new_dn.clone());
        self.by_dn.remove(&old.normalized());
        self.by_dn.insert(new_dn.normalized(), id);
        if let Some(c) = self.children.get_mut(&old.parent().normalized()) {
            *c = c.saturating_sub(1);
        }
        *self
            .children
            .entry(new_dn.parent().normalized())
            .or_default() += 1;
    }

    fn find(&self, anchor: Option<&str>, dn: &Dn) -> Option<usize> {
        anchor
            .and_then(|a| self.by_anchor.get(a))
            .or_else(|| self.by_dn.get(&dn.normalized()))
            .copied()
    }

    fn has_children(&self, dn: &Dn) -> bool {
        self.children.get(&dn.normalized()).copied().unwrap_or(0) > 0
    }

    fn descendants(&self, dn: &Dn) -> Vec<usize> {
        if !self.has_children(dn) {
            return Vec::new();
        }
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                o.as_ref()
                    .filter(|o| o.dn.is_within(dn) && o.dn != *dn)
                    .map(|_| i)
            })
            .collect()
    }

    /// Adds the reference values of entry `id` to the reverse index (when it exists).
    fn index_refs(&mut self, id: usize) {
        let Some(refs) = self.refs.as_mut() else {
            return;
        };
        let Some(Some(o)) = self.entries.get(id) else {
            return;
        };
        for (name, values) in &o.attributes {
            if self.typing.attr_type(name) != AttrType::Reference {
                continue;
            }
            for v in values {
                let text = v.to_text();
                if let Ok(d) = Dn::parse(&text) {
                    refs.entry(d.normalized()).or_default().push((id, text));
                }
            }
        }
    }

    /// Adds reference values just written to entry `id` to the reverse index (when it exists).
    fn index_values(&mut self, id: usize, texts: Vec<String>) {
        let Some(refs) = self.refs.as_mut() else {
            return;
        };
        for text in texts {
            if let Ok(d) = Dn::parse(&text) {
                refs.entry(d.normalized()).or_default().push((id, text));
            }
        }
    }

    /// Builds the reverse reference index on first use.
    fn ensure_ref_index(&mut self) {
        if self.refs.is_none() {
            self.refs = Some(HashMap::new());
            for id in 0..self.entries.len() {
                self.index_refs(id);
            }
        }
    }

    /// Rewrites (`Some(new)`) or removes (`None`) every reference to the old DNs in `moves`,
    /// in every entry. Each referrer is scanned once per call, and values are matched by
    /// their exact text from the index, so that a subtree move or a member of a huge group
    /// stays linear.
    fn fix_references(&mut self, moves: &[(Dn, Option<Dn>)]) {
        for (old, new) in moves {
            self.ref_moves.record(old, new.as_ref());
        }
        self.ensure_ref_index();
        let Some(refs) = self.refs.as_mut() else {
            return;
        };
        // Referrer -> (value text -> replacement text, `None` to remove).
        let mut per_id: HashMap<usize, HashMap<String, Option<String>>> = HashMap::new();
        for (old, new) in moves {
            let Some(list) = refs.remove(&old.normalized()) else {
                continue;
            };
            let new_text = new.as_ref().map(Dn::to_string);
            for (id, text) in list {
                per_id.entry(id).or_default().insert(text, new_text.clone());
            }
        }
        let mut reindex: Vec<(usize, Dn, String)> = Vec::new();
        for (id, map) in per_id {
            let Some(Some(o)) = self.entries.get_mut(id) else {
                continue;
            };
            if rewrite_refs(self.typing, o, |t| map.get(t).cloned()) {
                for n in map.values().flatten() {
                    if let Ok(d) = Dn::parse(n) {
                        reindex.push((id, d, n.clone()));
                    }
                }
            }
        }
        if let Some(refs) = self.refs.as_mut() {
            for (id, d, text) in reindex {
                refs.entry(d.normalized()).or_default().push((id, text));
            }
        }
    }

    /// Applies the batch's renames and deletes so far to the reference values of `o`, an
    /// entry of the directory that is not in the store; true when something changed.
    pub(super) fn fix_foreign(&self, o: &mut Object) -> bool {
        if self.ref_moves.map.is_empty() {
            return false;
        }
        rewrite_refs(self.typing, o, |t| {
            Dn::parse(t)
                .ok()
                .and_then(|d| self.ref_moves.map.get(&d.normalized()).cloned())
        })
    }

    /// Applies one request.
    pub(super) fn apply(&mut self, req: &ExportRequest) -> ExportResult {
        let outcome = match &req.operation {
            ExportOperation::Add { attributes } => self.add(req, attributes),
            ExportOperation::Update { changes, new_dn } => {
                self.update(req, changes, new_dn.as_ref())
            }
            ExportOperation::Delete => self.delete(req),
        };
        let outcome = match outcome {
            Ok(anchor) => {
                self.dirty = true;
                ExportOutcome::Success { anchor }
            }
            Err(Fail(kind, message)) => {
                tracing::warn!(id = req.id, dn = %req.dn, ?kind, %message, "LDIF export failed");
                ExportOutcome::Failed { kind, message }
            }
        };
        ExportResult {
            id: req.id,
            outcome,
        }
    }

    /// Converts incoming values to the attribute's type where the text form allows it
    /// (a string DN given for a reference attribute becomes a reference).
    fn coerce(&self, name: &str, values: &[Value]) -> Vec<Value> {
        let ty = self.typing.attr_type(name);
        values
            .iter()
            .map(|v| match (ty, v) {
                (AttrType::Reference, Value::Str(s)) => Value::Ref(s.clone()),
                _ => v.clone(),
            })
            .collect()
    }

    fn check_name(name: &str) -> Result<(), Fail> {
        if parse::valid_description(name) {
            Ok(())
        } else {
            Err(Fail(
                ExportErrorKind::IdentityDataValidationFailed,
                format!("'{name}' is not a valid LDAP attribute name"),
            ))
        }
    }

    fn add(&mut self, req: &ExportRequest, attributes: &Attributes) -> Outcome {
        if req.dn.is_root() {
            return Err(Fail(
                ExportErrorKind::IdentityDataValidationFailed,
                "cannot add an entry with an empty DN".into(),
            ));
        }
        if self.by_dn.contains_key(&req.dn.normalized()) {
            return Err(Fail(
                ExportErrorKind::ObjectAlreadyExists,
                format!("entry '{}' already exists", req.dn),
            ));
        }
        let mut attrs = Attributes::new();
        for (name, values) in attributes {
            Self::check_name(name)?;
            let key = ci_key(&attrs, name).unwrap_or_else(|| name.clone());
            attrs
                .entry(key)
                .or_default()
                .extend(self.coerce(name, values));
        }
        attrs.retain(|_, vs| !vs.is_empty());
        for values in attrs.values_mut() {
            if values.len() > 1 {
                dedup_exact(values);
            }
        }
        let anchor_attr = self.typing.anchor_attribute.clone();
        let anchor = match self.typing.anchor_of(&attrs) {
            Some(a) => a,
            None => {
                let ty = self.typing.attr_type(&anchor_attr);
                if req.anchor.is_none()
                    && !matches!(
                        ty,
                        AttrType::String | AttrType::Binary | AttrType::Reference
                    )
                {
                    return Err(Fail(
                        ExportErrorKind::IdentityDataValidationFailed,
                        format!("no value for the {ty:?} anchor attribute '{anchor_attr}'"),
                    ));
                }
                let (v, a) = new_anchor(self.typing, req.anchor.as_deref());
                replace_values(&mut attrs, &anchor_attr, vec![v]);
                a
            }
        };
        if self.by_anchor.contains_key(&anchor) {
            return Err(Fail(
                ExportErrorKind::ObjectAlreadyExists,
                format!("anchor '{anchor}' is already used by another entry"),
            ));
        }
        if ci_key(&attrs, "objectClass").is_none() {
            let class = self.typing.object_class_for(&req.object_type);
            attrs.insert("objectClass".into(), vec![Value::Str(class)]);
        }
        // The naming attribute must hold the RDN value, as directories enforce.
        apply_rdn_change(self.typing, &mut attrs, &req.dn, &req.dn, false);
        let object_type = self.typing.object_type_of(&attrs);
        self.insert(Object {
            anchor: Some(anchor.clone()),
            dn: req.dn.clone(),
            object_type,
            attributes: attrs,
        });
        Ok(Some(anchor))
    }

    fn update(
        &mut self,
        req: &ExportRequest,
        changes: &[AttributeChange],
        new_dn: Option<&Dn>,
    ) -> Outcome {
        let id = self.find(req.anchor.as_deref(), &req.dn).ok_or_else(|| {
            Fail(
                ExportErrorKind::ObjectNotFound,
                format!("entry '{}' does not exist", req.dn),
            )
        })?;
        let Some(Some(current)) = self.entries.get(id) else {
            return Err(Fail(
                ExportErrorKind::Other,
                "internal: stale entry id".into(),
            ));
        };
        let mut obj = current.clone();
        let anchor = obj.anchor.clone();
        let mut new_refs: Vec<String> = Vec::new();
        for c in changes {
            Self::check_name(c.name())?;
            if c.name().eq_ignore_ascii_case(&self.typing.anchor_attribute) {
                return Err(Fail(
                    ExportErrorKind::IdentityDataValidationFailed,
                    format!(
                        "the anchor attribute '{}' cannot be changed",
                        self.typing.anchor_attribute
                    ),
                ));
            }
            let ty = self.typing.attr_type(c.name());
            if let (
                AttrType::Reference,
                AttributeChange::Add { values, .. } | AttributeChange::Replace { values, .. },
            ) = (ty, c)
            {
                new_refs.extend(values.iter().map(Value::to_text));
            }
            match c {
                AttributeChange::Add { name, values } => {
                    add_values(&mut obj.attributes, name, self.coerce(name, values), ty)
                }
                AttributeChange::Remove { name, values } => {
                    remove_values(&mut obj.attributes, name, &self.coerce(name, values), ty)
                }
                AttributeChange::Replace { name, values } => {
                    replace_values(&mut obj.attributes, name, self.coerce(name, values))
                }
            }
        }
        let old_dn = obj.dn.clone();
        let rename = new_dn.filter(|n| n.to_string() != old_dn.to_string());
        if let Some(n) = rename {
            if n.is_root() {
                return Err(Fail(
                    ExportErrorKind::IdentityDataValidationFailed,
                    "cannot rename to an empty DN".into(),
                ));
            }
            if *n != old_dn {
                if self.by_dn.contains_key(&n.normalized()) {
                    return Err(Fail(
                        ExportErrorKind::ObjectAlreadyExists,
                        format!("cannot rename '{old_dn}': '{n}' exists already"),
                    ));
                }
                if n.is_within(&old_dn) {
                    return Err(Fail(
                        ExportErrorKind::Other,
                        format!("cannot move '{old_dn}' below itself"),
                    ));
                }
            }
            let rdn_changed = n.rdn().map(|r| r.to_string().to_lowercase())
                != old_dn.rdn().map(|r| r.to_string().to_lowercase());
            if rdn_changed {
                apply_rdn_change(self.typing, &mut obj.attributes, &old_dn, n, true);
            }
        }
        obj.object_type = self.typing.object_type_of(&obj.attributes);
        if let Some(Some(slot)) = self.entries.get_mut(id) {
            slot.attributes = obj.attributes;
            slot.object_type = obj.object_type;
        }
        self.index_values(id, new_refs);
        if let Some(n) = rename {
            let moves: Vec<(usize, Dn, Dn)> = std::iter::once(id)
                .chain(self.descendants(&old_dn))
                .filter_map(|i| {
                    let o = self.entries.get(i)?.as_ref()?;
                    let to = if i == id {
                        n.clone()
                    } else {
                        o.dn.rebase(&old_dn, n)?
                    };
                    Some((i, o.dn.clone(), to))
                })
                .collect();
            for (i, _, to) in &moves {
                self.set_dn(*i, to.clone());
            }
            let pairs: Vec<(Dn, Option<Dn>)> = moves
                .into_iter()
                .filter(|(_, from, to)| from.to_string() != to.to_string())
                .map(|(_, from, to)| (from, Some(to)))
                .collect();
            let moved = pairs.len();
            self.fix_references(&pairs);
            tracing::debug!(from = %old_dn, to = %n, moved, "LDIF rename");
        }
        Ok(anchor)
    }

    fn delete(&mut self, req: &ExportRequest) -> Outcome {
        let id = self.find(req.anchor.as_deref(), &req.dn).ok_or_else(|| {
            Fail(
                ExportErrorKind::ObjectNotFound,
                format!("entry '{}' does not exist", req.dn),
            )
        })?;
        let dn = match self.entries.get(id) {
            Some(Some(o)) => o.dn.clone(),
            _ => {
                return Err(Fail(
                    ExportErrorKind::Other,
                    "internal: stale entry id".into(),
                ));
            }
        };
        if self.has_children(&dn) {
            return Err(Fail(
                ExportErrorKind::Other,
                format!("notAllowedOnNonLeaf: '{dn}' has child entries"),
            ));
        }
        let removed = self.remove(id);
        self.fix_references(&[(dn, None)]);
        Ok(removed.and_then(|o| o.anchor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::ldif::LdifSettings;

    fn typing() -> Typing {
        Typing::new(&LdifSettings::new("x")).unwrap()
    }

    fn req(id: i64, dn: &str, op: ExportOperation) -> ExportRequest {
        ExportRequest {
            id,
            object_type: "user".into(),
            anchor: None,
            dn: Dn::parse(dn).unwrap(),
            operation: op,
        }
    }

    fn add(id: i64, dn: &str, attrs: &[(&str, Value)]) -> ExportRequest {
        let mut a = Attributes::new();
        for (n, v) in attrs {
            a.entry(n.to_string()).or_default().push(v.clone());
        }
        req(id, dn, ExportOperation::Add { attributes: a })
    }

    fn ok(r: &ExportResult) -> bool {
        matches!(r.outcome, ExportOutcome::Success { .. })
    }

    fn kind(r: &ExportResult) -> Option<ExportErrorKind> {
        match &r.outcome {
            ExportOutcome::Failed { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    #[test]
    fn add_generates_anchor_object_class_and_rdn_value() {
        let t = typing();
        let mut s = Store::new(&t, vec![]);
        let r = s.apply(&add(1, "cn=Zoë,dc=x", &[("sn", "Z".into())]));
        let ExportOutcome::Success { anchor: Some(a) } = &r.outcome else {
            panic!("{r:?}")
        };
        assert!(uuid::Uuid::parse_str(a).is_ok());
        let o = s.objects().next().unwrap();
        assert_eq!(o.values("cn"), &[Value::from("Zoë")]);
        assert_eq!(o.values("objectClass"), &[Value::from("inetOrgPerson")]);
        assert_eq!(o.object_type, "user");
        assert_eq!(
            kind(&s.apply(&add(2, "CN=ZOË,DC=X", &[]))),
            Some(ExportErrorKind::ObjectAlreadyExists)
        );
        assert_eq!(
            kind(&s.apply(&add(3, "cn=y,dc=x", &[("bad name", "v".into())]))),
            Some(ExportErrorKind::IdentityDataValidationFailed)
        );
    }

    #[test]
    fn subtree_rename_rewrites_references_and_delete_removes_them() {
        let t = typing();
        let mut s = Store::new(&t, vec![]);
        assert!(ok(&s.apply(&add(
            1,
            "ou=old,dc=x",
            &[("objectClass", "organizationalUnit".into())]
        ))));
        assert!(ok(&s.apply(&add(
            2,
            "cn=u,ou=old,dc=x",
            &[("entryUUID", "u".into())]
        ))));
        assert!(ok(&s.apply(&add(
            3,
            "cn=g,dc=x",
            &[
                ("objectClass", "groupOfNames".into()),
                ("member", Value::Ref("CN=U,OU=OLD,DC=X".into())),
                ("member", Value::Ref("cn=other,dc=x".into())),
            ]
        ))));
        let r = s.apply(&req(
            4,
            "ou=old,dc=x",
            ExportOperation::Update {
                changes: vec![],
                new_dn: Some(Dn::parse("ou=new,dc=x").unwrap()),
            },
        ));
        assert!(ok(&r), "{r:?}");
        let g = s
            .objects()
            .find(|o| o.dn.to_string() == "cn=g,dc=x")
            .unwrap();
        assert_eq!(
            g.values("member"),
            &[
                Value::Ref("cn=u,ou=new,dc=x".into()),
                Value::Ref("cn=other,dc=x".into())
            ]
        );
        let ou = s
            .objects()
            .find(|o| o.object_type == "organizationalUnit")
            .unwrap();
        assert_eq!(ou.values("ou"), &[Value::from("new")]);
        // Non-leaf delete refused; leaf delete removes the reference.
        assert_eq!(
            kind(&s.apply(&req(5, "ou=new,dc=x", ExportOperation::Delete))),
            Some(ExportErrorKind::Other)
        );
        let mut d = req(6, "cn=ignored,dc=x", ExportOperation::Delete);
        d.anchor = Some("u".into());
        assert!(ok(&s.apply(&d)));
        let g = s
            .objects()
            .find(|o| o.dn.to_string() == "cn=g,dc=x")
            .unwrap();
        assert_eq!(g.values("member"), &[Value::Ref("cn=other,dc=x".into())]);
        assert!(ok(&s.apply(&req(
            7,
            "ou=new,dc=x",
            ExportOperation::Delete
        ))));
        assert_eq!(
            kind(&s.apply(&req(8, "ou=new,dc=x", ExportOperation::Delete))),
            Some(ExportErrorKind::ObjectNotFound)
        );
    }

    #[test]
    fn update_rules() {
        let t = typing();
        let mut s = Store::new(&t, vec![]);
        assert!(ok(&s.apply(&add(
            1,
            "cn=a,dc=x",
            &[("entryUUID", "a".into())]
        ))));
        assert!(ok(&s.apply(&add(2, "cn=b,dc=x", &[]))));
        let upd = |id, dn: &str, changes, new_dn: Option<&str>| {
            req(
                id,
                dn,
                ExportOperation::Update {
                    changes,
                    new_dn: new_dn.map(|d| Dn::parse(d).unwrap()),
                },
            )
        };
        assert_eq!(
            kind(&s.apply(&upd(3, "cn=a,dc=x", vec![], Some("cn=b,dc=x")))),
            Some(ExportErrorKind::ObjectAlreadyExists)
        );
        assert_eq!(
            kind(&s.apply(&upd(4, "cn=zz,dc=x", vec![], None))),
            Some(ExportErrorKind::ObjectNotFound)
        );
        assert_eq!(
            kind(&s.apply(&upd(
                5,
                "cn=a,dc=x",
                vec![AttributeChange::Replace {
                    name: "entryUUID".into(),
                    values: vec!["z".into()]
                }],
                None
            ))),
            Some(ExportErrorKind::IdentityDataValidationFailed)
        );
        let r = s.apply(&upd(
            6,
            "cn=a,dc=x",
            vec![
                AttributeChange::Add {
                    name: "Mail".into(),
                    values: vec!["a@x".into(), "b@x".into()],
                },
                AttributeChange::Remove {
                    name: "mail".into(),
                    values: vec!["A@X".into()],
                },
            ],
            None,
        ));
        assert_eq!(
            r.outcome,
            ExportOutcome::Success {
                anchor: Some("a".into())
            }
        );
        let a = s
            .objects()
            .find(|o| o.anchor.as_deref() == Some("a"))
            .unwrap();
        assert_eq!(a.values("Mail"), &[Value::from("b@x")]);
    }
}

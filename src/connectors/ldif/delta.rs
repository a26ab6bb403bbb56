//! Delta import: applies change-record files on top of the connector space.
//!
//! Changes inside one run compose: an overlay keeps every object changed so far (by anchor),
//! so a modify after a rename finds the entry under its new DN, and the old DN is gone.

use super::parse::{LdifReader, ModOp, Modification, RecordBody, input_error};
use super::{Typing, add_values, apply_rdn_change, remove_values, replace_values};
use crate::connectors::{ConnectorError, ConnectorSpaceView, ImportChange};
use crate::model::{AttrType, Dn, Object, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The connector space as changed by the records applied so far in this run.
struct Overlay<'a> {
    cs: &'a dyn ConnectorSpaceView,
    /// Anchor -> current object (`None`: deleted in this run).
    by_anchor: HashMap<String, Option<Object>>,
    /// Normalized DN -> anchor of the overlay object last placed there.
    by_dn: HashMap<String, String>,
}

impl<'a> Overlay<'a> {
    fn new(cs: &'a dyn ConnectorSpaceView) -> Self {
        Overlay {
            cs,
            by_anchor: HashMap::new(),
            by_dn: HashMap::new(),
        }
    }

    /// The object currently at `dn`.
    fn get(&self, dn: &Dn) -> Option<Object> {
        if let Some(anchor) = self.by_dn.get(&dn.normalized())
            && let Some(Some(o)) = self.by_anchor.get(anchor)
            && o.dn == *dn
        {
            return Some(o.clone());
        }
        let o = self.cs.by_dn(dn)?;
        match &o.anchor {
            // Changed in this run: it is no longer here (renamed or deleted), or the branch
            // above would have found it.
            Some(a) if self.by_anchor.contains_key(a) => None,
            _ => Some(o),
        }
    }

    fn put(&mut self, anchor: &str, obj: Object) {
        self.by_dn.insert(obj.dn.normalized(), anchor.to_string());
        self.by_anchor.insert(anchor.to_string(), Some(obj));
    }

    fn delete(&mut self, anchor: &str) {
        self.by_anchor.insert(anchor.to_string(), None);
    }

    /// Objects strictly below `dn` as of now.
    fn descendants(&self, dn: &Dn) -> Vec<Object> {
        let mut out: Vec<Object> = self
            .cs
            .descendants(dn)
            .into_iter()
            .filter(|o| {
                o.anchor
                    .as_ref()
                    .is_none_or(|a| !self.by_anchor.contains_key(a))
            })
            .collect();
        out.extend(
            self.by_anchor
                .values()
                .flatten()
                .filter(|o| o.dn.is_within(dn) && o.dn != *dn)
                .cloned(),
        );
        out
    }
}

/// Applies the change files in order and returns the import changes they produce. Nothing
/// is returned unless every file applies cleanly.
pub(super) fn apply_files(
    typing: &Typing,
    files: &[(String, PathBuf)],
    cs: &dyn ConnectorSpaceView,
) -> Result<Vec<ImportChange>, ConnectorError> {
    let mut overlay = Overlay::new(cs);
    let mut out = Vec::new();
    for (_, path) in files {
        let file = path.display().to_string();
        let handle = std::fs::File::open(path).map_err(|e| ConnectorError::Io {
            path: file.clone(),
            source: e,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let reader = LdifReader::new(std::io::BufReader::new(handle), &file, &base);
        let mut n = 0usize;
        for rec in reader {
            let rec = rec?;
            apply_record(typing, &file, rec, &mut overlay, &mut out)?;
            n += 1;
        }
        tracing::debug!(file = %file, records = n, "applied LDIF change file");
    }
    Ok(out)
}

fn anchor_of(file: &str, line: usize, o: &Object) -> Result<String, ConnectorError> {
    o.anchor
        .clone()
        .ok_or_else(|| input_error(file, line, format!("entry '{}' has no anchor", o.dn)))
}

fn apply_record(
    typing: &Typing,
    file: &str,
    rec: super::parse::Record,
    overlay: &mut Overlay<'_>,
    out: &mut Vec<ImportChange>,
) -> Result<(), ConnectorError> {
    let line = rec.line;
    let dn = rec.dn;
    // Records about entries outside the container filter that were never imported are
    // skipped (an entry moved into the scope needs a full import to be read whole).
    if !typing.containers.in_scope(&dn) && overlay.get(&dn).is_none() {
        if let RecordBody::ModDn {
            new_rdn,
            new_superior,
            ..
        } = &rec.body
        {
            let parent = new_superior.clone().unwrap_or_else(|| dn.parent());
            if typing.containers.in_scope(&parent.child(new_rdn.clone())) {
                tracing::warn!(dn = %dn, file = %file, line, "entry moved into the LDIF container scope: run a full import to read it");
            }
        }
        tracing::debug!(dn = %dn, file = %file, line, "change record outside the LDIF container scope skipped");
        return Ok(());
    }
    let current = |overlay: &Overlay<'_>| {
        overlay.get(&dn).ok_or_else(|| {
            input_error(
                file,
                line,
                format!("no entry '{dn}' in the connector space"),
            )
        })
    };
    match rec.body {
        RecordBody::Content(_) => {
            return Err(input_error(
                file,
                line,
                "a change file needs 'changetype:' in every record",
            ));
        }
        RecordBody::Add(avs) => {
            let obj = typing.build(file, line, dn.clone(), avs, true)?;
            let anchor = anchor_of(file, line, &obj)?;
            if let Some(existing) = overlay.get(&dn)
                && existing.anchor.as_deref() != Some(anchor.as_str())
            {
                return Err(input_error(
                    file,
                    line,
                    format!("entry '{dn}' already exists with another anchor"),
                ));
            }
            overlay.put(&anchor, obj.clone());
            out.push(ImportChange::Upsert(obj));
        }
        RecordBody::Delete => {
            let obj = current(overlay)?;
            let anchor = anchor_of(file, line, &obj)?;
            overlay.delete(&anchor);
            out.push(ImportChange::Delete { anchor });
        }
        RecordBody::Modify(mods) => {
            let mut obj = current(overlay)?;
            let anchor = anchor_of(file, line, &obj)?;
            for m in &mods {
                apply_modification(typing, file, &mut obj, m)?;
            }
            if typing.anchor_of(&obj.attributes).as_deref() != Some(anchor.as_str()) {
                return Err(input_error(
                    file,
                    line,
                    format!(
                        "modify of '{dn}' changes the anchor attribute '{}'",
                        typing.anchor_attribute
                    ),
                ));
            }
            obj.object_type = typing.object_type_of(&obj.attributes);
            overlay.put(&anchor, obj.clone());
            out.push(ImportChange::Upsert(obj));
        }
        RecordBody::ModDn {
            new_rdn,
            delete_old_rdn,
            new_superior,
        } => {
            let mut obj = current(overlay)?;
            let anchor = anchor_of(file, line, &obj)?;
            let parent = new_superior.unwrap_or_else(|| dn.parent());
            let new_dn = parent.child(new_rdn);
            if new_dn.is_within(&dn) && new_dn != dn {
                return Err(input_error(
                    file,
                    line,
                    format!("cannot move '{dn}' below itself"),
                ));
            }
            if new_dn != dn
                && let Some(other) = overlay.get(&new_dn)
                && other.anchor.as_deref() != Some(anchor.as_str())
            {
                return Err(input_error(
                    file,
                    line,
                    format!("cannot rename '{dn}': '{new_dn}' exists already"),
                ));
            }
            let descendants = overlay.descendants(&dn);
            apply_rdn_change(typing, &mut obj.attributes, &dn, &new_dn, delete_old_rdn);
            obj.dn = new_dn.clone();
            overlay.put(&anchor, obj.clone());
            out.push(ImportChange::Upsert(obj));
            for mut child in descendants {
                let Some(moved) = child.dn.rebase(&dn, &new_dn) else {
                    continue;
                };
                let child_anchor = anchor_of(file, line, &child)?;
                child.dn = moved;
                overlay.put(&child_anchor, child.clone());
                out.push(ImportChange::Upsert(child));
            }
        }
    }
    Ok(())
}

fn apply_modification(
    typing: &Typing,
    file: &str,
    obj: &mut Object,
    m: &Modification,
) -> Result<(), ConnectorError> {
    let (name, ty, _) = typing.describe(&m.desc);
    let mut values = Vec::with_capacity(m.values.len());
    for av in &m.values {
        values.push(typing.typed(av, file)?.1);
    }
    match m.op {
        ModOp::Add => {
            if values.is_empty() {
                return Err(input_error(
                    file,
                    m.line,
                    format!("'add: {}' without values", m.desc),
                ));
            }
            add_values(&mut obj.attributes, &name, values, ty);
        }
        ModOp::Delete => remove_values(&mut obj.attributes, &name, &values, ty),
        ModOp::Replace => replace_values(&mut obj.attributes, &name, values),
        ModOp::Increment => {
            let [Value::Int(by)] = values.as_slice() else {
                return Err(input_error(
                    file,
                    m.line,
                    format!("'increment: {}' needs exactly one integer value", m.desc),
                ));
            };
            if ty != AttrType::Integer {
                return Err(input_error(
                    file,
                    m.line,
                    format!("'increment: {}' on a non-integer attribute", m.desc),
                ));
            }
            let key = super::ci_key(&obj.attributes, &name).ok_or_else(|| {
                input_error(
                    file,
                    m.line,
                    format!("'increment: {}' on an absent attribute", m.desc),
                )
            })?;
            if let Some(vs) = obj.attributes.get_mut(&key) {
                for v in vs.iter_mut() {
                    if let Value::Int(i) = v {
                        *i = i.saturating_add(*by);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::ldif::LdifSettings;
    use std::cell::RefCell;

    /// A connector space backed by a list of objects.
    pub(crate) struct MemCs(pub RefCell<Vec<Object>>);

    impl ConnectorSpaceView for MemCs {
        fn by_anchor(&self, anchor: &str) -> Option<Object> {
            self.0
                .borrow()
                .iter()
                .find(|o| o.anchor.as_deref() == Some(anchor))
                .cloned()
        }
        fn by_dn(&self, dn: &Dn) -> Option<Object> {
            self.0.borrow().iter().find(|o| o.dn == *dn).cloned()
        }
        fn descendants(&self, dn: &Dn) -> Vec<Object> {
            self.0
                .borrow()
                .iter()
                .filter(|o| o.dn.is_within(dn) && o.dn != *dn)
                .cloned()
                .collect()
        }
    }

    fn obj(anchor: &str, dn: &str, cn: &str) -> Object {
        let mut o = Object::new(Some(anchor.into()), Dn::parse(dn).unwrap(), "user");
        o.set("cn", vec![cn.into()]);
        o.set("entryUUID", vec![anchor.into()]);
        o
    }

    fn run(cs: &MemCs, files: &[&str]) -> Result<Vec<ImportChange>, ConnectorError> {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (i, text) in files.iter().enumerate() {
            let name = format!("{i:03}.ldif");
            let p = dir.path().join(&name);
            std::fs::write(&p, text).unwrap();
            paths.push((name, p));
        }
        let typing = Typing::new(&LdifSettings::new("x")).unwrap();
        apply_files(&typing, &paths, cs)
    }

    fn upserts(changes: &[ImportChange]) -> Vec<&Object> {
        changes
            .iter()
            .filter_map(|c| match c {
                ImportChange::Upsert(o) => Some(o),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rename_then_modify_composes() {
        let cs = MemCs(RefCell::new(vec![obj("1", "cn=a,dc=x", "a")]));
        let changes = run(
            &cs,
            &[
                "dn: cn=a,dc=x\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 1\n",
                "dn: cn=b,dc=x\nchangetype: modify\nreplace: sn\nsn: B\n-\n",
            ],
        )
        .unwrap();
        let ups = upserts(&changes);
        assert_eq!(ups.len(), 2);
        assert_eq!(ups[1].dn.to_string(), "cn=b,dc=x");
        assert_eq!(ups[1].values("cn"), &[Value::from("b")]);
        assert_eq!(ups[1].values("sn"), &[Value::from("B")]);
        // The old DN is gone within the run.
        let err = run(
            &cs,
            &["dn: cn=a,dc=x\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 0\n\ndn: cn=a,dc=x\nchangetype: delete\n"],
        )
        .unwrap_err();
        assert!(err.to_string().contains(":6:"), "{err}");
    }

    #[test]
    fn deleteoldrdn_zero_keeps_the_old_value() {
        let cs = MemCs(RefCell::new(vec![obj("1", "cn=a,dc=x", "a")]));
        let changes = run(
            &cs,
            &["dn: cn=a,dc=x\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 0\n"],
        )
        .unwrap();
        let ups = upserts(&changes);
        assert_eq!(ups[0].values("cn"), &[Value::from("a"), Value::from("b")]);
    }

    #[test]
    fn add_modify_delete_in_one_run() {
        let cs = MemCs(RefCell::new(vec![]));
        let changes = run(
            &cs,
            &["dn: cn=n,dc=x\nchangetype: add\ncn: n\nentryUUID: 9\nuidNumber: 5\n\n\
               dn: cn=n,dc=x\nchangetype: modify\nincrement: uidNumber\nuidNumber: 2\n-\nadd: mail\nmail: n@x\n-\n\n\
               dn: cn=n,dc=x\nchangetype: delete\n"],
        )
        .unwrap();
        assert_eq!(changes.len(), 3);
        let ups = upserts(&changes);
        assert_eq!(ups[1].values("uidNumber"), &[Value::Int(7)]);
        assert_eq!(changes[2], ImportChange::Delete { anchor: "9".into() });
    }

    #[test]
    fn container_filter_turns_moves_out_into_deletes_and_skips_outside_records() {
        let cs = MemCs(RefCell::new(vec![
            obj("1", "cn=a,ou=in,dc=x", "a"),
            obj("2", "cn=b,ou=in,dc=x", "b"),
        ]));
        let mut settings = LdifSettings::new("x");
        settings.exclude = vec!["ou=out,dc=x".into()];
        let typing = Typing::new(&settings).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("001.ldif");
        std::fs::write(
            &p,
            "dn: cn=a,ou=in,dc=x\nchangetype: modrdn\nnewrdn: cn=a\ndeleteoldrdn: 1\nnewsuperior: ou=out,dc=x\n\n\
             dn: cn=a,ou=out,dc=x\nchangetype: modify\nreplace: sn\nsn: A\n-\n\n\
             dn: cn=z,ou=out,dc=x\nchangetype: modify\nreplace: sn\nsn: Z\n-\n\n\
             dn: cn=n,ou=out,dc=x\nchangetype: add\ncn: n\nentryUUID: 9\n\n\
             dn: cn=b,ou=in,dc=x\nchangetype: modify\nreplace: sn\nsn: B\n-\n",
        )
        .unwrap();
        let changes = apply_files(&typing, &[("001.ldif".into(), p)], &cs).unwrap();
        let changes = crate::connectors::ldif::scope_changes(&typing.containers, changes, &cs);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0], ImportChange::Delete { anchor: "1".into() });
        let ups = upserts(&changes);
        assert_eq!(ups[0].dn.to_string(), "cn=b,ou=in,dc=x");
    }

    #[test]
    fn modify_of_the_anchor_is_rejected() {
        let cs = MemCs(RefCell::new(vec![obj("1", "cn=a,dc=x", "a")]));
        let err = run(
            &cs,
            &["dn: cn=a,dc=x\nchangetype: modify\nreplace: entryUUID\nentryUUID: 2\n-\n"],
        )
        .unwrap_err();
        assert!(err.to_string().contains(":1:"), "{err}");
    }
}

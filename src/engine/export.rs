//! Export: write pending exports through the connector, after the safety guards.
//!
//! Results are recorded per object; a success leaves the written values as "unconfirmed"
//! until the next import reads them back, a failure keeps the export pending for a retry.

use super::{
    Engine, EngineError, Result, RunOptions, StepCounters, build_connector, crash_point, history,
};
use crate::connectors::{ConnectorError, ExportOperation, ExportOutcome, ExportRequest};
use crate::model::{Attributes, Dn, retarget_references};
use crate::store::{self, StoreError};
use std::collections::HashMap;

/// The state setting that records an admin's confirmation of deletes above the threshold.
const CONFIRM_KEY: &str = "confirm_deletes";

impl Engine {
    /// Stops when the pending deletes of a connector exceed the configured threshold.
    pub(super) fn check_deletion_threshold(
        &self,
        connector: &str,
        opts: &RunOptions,
    ) -> Result<()> {
        if opts.confirm_deletes || store::setting(self.store.conn(), CONFIRM_KEY)?.is_some() {
            return Ok(());
        }
        let cid = self.connector_id(connector)?;
        let deletes = store::pending_delete_count(self.store.conn(), cid)?;
        if deletes == 0 {
            return Ok(());
        }
        let total = store::cs_count(self.store.conn(), cid)?.max(0) as u64;
        let s = &self.config.safety;
        if s.deletion_threshold_count > 0 && deletes > s.deletion_threshold_count {
            return Err(EngineError::DeletionThreshold {
                connector: connector.into(),
                deletes,
                total,
                threshold: format!("{} objects", s.deletion_threshold_count),
            });
        }
        if s.deletion_threshold_percent > 0.0 && total > 0 {
            let pct = deletes as f64 * 100.0 / total as f64;
            if pct > s.deletion_threshold_percent {
                return Err(EngineError::DeletionThreshold {
                    connector: connector.into(),
                    deletes,
                    total,
                    threshold: format!("{}%", s.deletion_threshold_percent),
                });
            }
        }
        Ok(())
    }

    /// Records an admin's confirmation: the next export may exceed the deletion threshold once.
    pub fn confirm_deletes(&mut self) -> Result<()> {
        store::set_setting(self.store.conn(), CONFIRM_KEY, Some(&store::now()))?;
        Ok(())
    }

    pub(super) fn export(
        &mut self,
        connector: &str,
        opts: &RunOptions,
        counters: &mut StepCounters,
    ) -> Result<()> {
        if opts.dry_run || self.config.safety.staging_mode {
            tracing::info!(connector, "staging mode / dry run: export skipped");
            return Ok(());
        }
        self.check_deletion_threshold(connector, opts)?;
        let cid = self.connector_id(connector)?;
        let pending = order_by_new_references(store::pending_list(self.store.conn(), Some(cid))?);
        if pending.is_empty() {
            return Ok(());
        }
        let mut conn = build_connector(&self.config, connector)?;
        let total = pending.len() as u64;
        let mut done = 0u64;
        for chunk in pending.chunks(conn.export_batch_size().max(1)) {
            self.check_cancel()?;
            let mut requests = Vec::with_capacity(chunk.len());
            let mut by_id = HashMap::new();
            for p in chunk {
                let Some(cs) = store::cs_get(self.store.conn(), p.cs_id)? else {
                    store::pending_clear(self.store.conn(), p.cs_id)?;
                    continue;
                };
                let operation = match p.op.as_str() {
                    "add" => {
                        let mut attributes = Attributes::new();
                        for ch in &p.changes {
                            ch.apply(&mut attributes);
                        }
                        ExportOperation::Add { attributes }
                    }
                    "delete" => ExportOperation::Delete,
                    _ => ExportOperation::Update {
                        changes: p.changes.clone(),
                        new_dn: p.new_dn.as_deref().and_then(|d| Dn::parse(d).ok()),
                    },
                };
                by_id.insert(p.cs_id, (requests.len(), p, cs.clone()));
                requests.push(ExportRequest {
                    id: p.cs_id,
                    object_type: cs.object_type,
                    anchor: cs.anchor,
                    dn: cs.dn,
                    operation,
                });
            }
            crash_point("export.before_write");
            let results = match conn.export(&requests) {
                Ok(r) => r,
                Err(ConnectorError::Cancelled) => return Err(EngineError::Cancelled),
                Err(e) => {
                    return Err(EngineError::Connector {
                        connector: connector.into(),
                        source: e,
                    });
                }
            };
            crash_point("export.after_write");
            let tx = self.store.transaction()?;
            for r in results {
                let Some((idx, p, mut cs)) = by_id.remove(&r.id) else {
                    continue;
                };
                let changes = &p.changes;
                let written = requests.get(idx).map(|q| &q.operation);
                match r.outcome {
                    ExportOutcome::Success { anchor } => match p.op.as_str() {
                        "delete" => {
                            store::cs_delete(&tx, cs.id)?;
                            counters.export_deletes += 1;
                        }
                        "add" => {
                            let attrs = match written {
                                Some(ExportOperation::Add { attributes }) => attributes.clone(),
                                _ => Attributes::new(),
                            };
                            cs.anchor = anchor.or(cs.anchor);
                            cs.placeholder = false;
                            cs.unconfirmed = Some(attrs);
                            store::cs_update(&tx, &cs)?;
                            store::pending_clear(&tx, cs.id)?;
                            counters.export_adds += 1;
                        }
                        _ => {
                            let mut attrs = cs.effective_attributes().clone();
                            for ch in changes {
                                ch.apply(&mut attrs);
                            }
                            cs.unconfirmed = Some(attrs);
                            if let Some(n) = p.new_dn.as_deref().and_then(|d| Dn::parse(d).ok()) {
                                let old = cs.dn.clone();
                                cs.dn = n.clone();
                                store::cs_update(&tx, &cs)?;
                                follow_rename(&tx, cs.connector_id, &old, &n)?;
                                counters.export_renames += 1;
                            } else {
                                store::cs_update(&tx, &cs)?;
                            }
                            store::pending_clear(&tx, cs.id)?;
                            counters.export_updates += 1;
                        }
                    },
                    ExportOutcome::Failed { kind, message } => {
                        let msg = format!("{kind:?}: {message}");
                        store::pending_fail(&tx, cs.id, &msg)?;
                        counters.export_failures += 1;
                        counters.errors.push(history::ObjectError {
                            object: p.dn.clone(),
                            stage: "export".into(),
                            message: msg,
                        });
                    }
                }
                crash_point("export.result");
            }
            tx.commit().map_err(StoreError::from)?;
            done += chunk.len() as u64;
            self.report(connector, super::RunProfile::Export, done, Some(total));
        }
        store::set_setting(self.store.conn(), CONFIRM_KEY, None)?;
        Ok(())
    }
}

/// Orders pending exports so that an export referencing an object being added in the same
/// export (a group whose member or a user whose manager is new, a nested group) comes after
/// that add: Active Directory refuses references to objects that do not exist yet. Otherwise
/// the order is kept; reference cycles keep their original order.
fn order_by_new_references(pending: Vec<store::PendingExport>) -> Vec<store::PendingExport> {
    use crate::model::Value;
    let norm = |d: &str| Dn::parse(d).map(|d| d.normalized()).ok();
    let adds: HashMap<String, usize> = pending
        .iter()
        .enumerate()
        .filter(|(_, p)| p.op == "add")
        .filter_map(|(i, p)| norm(&p.dn).map(|d| (d, i)))
        .collect();
    if adds.is_empty() {
        return pending;
    }
    let deps: Vec<Vec<usize>> = pending
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut d: Vec<usize> = p
                .changes
                .iter()
                .flat_map(|c| match c {
                    crate::model::AttributeChange::Add { values, .. }
                    | crate::model::AttributeChange::Replace { values, .. } => values.as_slice(),
                    crate::model::AttributeChange::Remove { .. } => &[],
                })
                .filter_map(|v| match v {
                    Value::Ref(r) => norm(r).and_then(|n| adds.get(&n).copied()),
                    _ => None,
                })
                .filter(|j| *j != i)
                .collect();
            d.sort_unstable();
            d.dedup();
            d
        })
        .collect();
    if deps.iter().all(Vec::is_empty) {
        return pending;
    }
    let mut done = vec![false; pending.len()];
    let mut order = Vec::with_capacity(pending.len());
    loop {
        let mut progress = false;
        for i in 0..pending.len() {
            if !done[i] && deps[i].iter().all(|j| done[*j]) {
                done[i] = true;
                order.push(i);
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    order.extend((0..pending.len()).filter(|i| !done[*i]));
    let mut slots: Vec<Option<store::PendingExport>> = pending.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// A directory moves an object's children and keeps references pointing at it when it is
/// renamed; the connector space mirrors that until the next import confirms it.
fn follow_rename(c: &rusqlite::Connection, connector_id: i64, old: &Dn, new: &Dn) -> Result<()> {
    for mut d in store::cs_descendants(c, connector_id, old)? {
        if let Some(n) = d.dn.rebase(old, new) {
            d.dn = n;
            store::cs_update(c, &d)?;
        }
    }
    let old_norm = old.normalized();
    for id in store::cs_referrers(c, connector_id, &old_norm)? {
        if let Some(mut o) = store::cs_get(c, id)? {
            let mut attrs = o.effective_attributes().clone();
            retarget_references(&mut attrs, &old_norm, &new.to_string());
            o.unconfirmed = Some(attrs);
            store::cs_update(c, &o)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttributeChange, Value};

    fn p(id: i64, op: &str, dn: &str, refs: &[&str]) -> store::PendingExport {
        store::PendingExport {
            cs_id: id,
            connector_id: 1,
            op: op.into(),
            dn: dn.into(),
            new_dn: None,
            changes: vec![AttributeChange::Replace {
                name: "member".into(),
                values: refs.iter().map(|r| Value::Ref(r.to_string())).collect(),
            }],
            attempts: 0,
            last_error: None,
        }
    }

    #[test]
    fn adds_referencing_new_objects_go_after_them() {
        let list = vec![
            p(1, "add", "CN=Outer,OU=G", &["cn=inner,ou=g", "CN=Old,OU=U"]),
            p(2, "update", "CN=Old,OU=G", &["CN=New,OU=U"]),
            p(3, "add", "CN=Inner,OU=G", &["CN=New,OU=U"]),
            p(4, "add", "CN=New,OU=U", &[]),
            p(5, "delete", "CN=Gone,OU=U", &[]),
        ];
        let ids: Vec<i64> = order_by_new_references(list)
            .iter()
            .map(|p| p.cs_id)
            .collect();
        assert_eq!(ids, vec![4, 5, 2, 3, 1]);
        // A cycle keeps its order; nothing is lost.
        let cyc = vec![
            p(1, "add", "CN=A", &["CN=B"]),
            p(2, "add", "CN=B", &["CN=A"]),
            p(3, "add", "CN=C", &[]),
        ];
        let ids: Vec<i64> = order_by_new_references(cyc)
            .iter()
            .map(|p| p.cs_id)
            .collect();
        assert_eq!(ids, vec![3, 1, 2]);
    }
}

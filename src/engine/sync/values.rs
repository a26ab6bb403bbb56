//! Value-level synchronization of large multi-valued attributes.
//!
//! When an import recorded that the only changes of a linked connector-space object since its
//! last synchronization are value adds and removes (`store::ObjectDelta`), and each changed
//! attribute reaches the metaverse through one unambiguous Direct flow (Update merge, the
//! contributing rule is the recorded winner, no apply-once), only the changed values are
//! resolved (DN -> metaverse id -> target DN), applied to the metaverse with incremental index
//! updates, and folded into the target's pending export. One member of a 250,000-member group
//! thus costs a handful of lookups instead of 250,000.
//!
//! Flows that read none of the changed attributes keep their values: their inputs did not
//! change (an expression whose result changes by itself, such as one reading the clock, is
//! re-evaluated only by the full path). An import that reads back exactly what dirsync
//! exported (`confirmed`) changes nothing on either side for a provisioned object of a
//! connector without inbound rules, and is skipped.
//!
//! Every condition the shortcut cannot prove sends the object down the full path
//! (`mv_phase` / `outbound`), which gives the same end state; nothing is written before the
//! decision, and everything runs inside the batch transaction of the caller.

use super::{MvScope, SyncRun};
use crate::config::MergeType;
use crate::model::{AttributeChange, Dn, Value};
use crate::rules::{FlowSource, Rule, evaluate_scope};
use crate::store::{self, CsObject, LinkKind, MvObject, ObjectDelta, PendingExport, ValueDelta};
use rusqlite::Connection;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

type Result<T> = super::Result<T>;

/// True when a rule's scope reads one of the changed attributes.
fn scope_reads(rule: &Rule, changed: &dyn Fn(&str) -> bool) -> bool {
    rule.scope
        .iter()
        .flat_map(|g| g.clauses.iter())
        .any(|cl| changed(&cl.attribute))
}

/// The attribute a flow copies when it is a plain Direct flow.
fn direct_source(f: &crate::rules::Flow) -> Option<&str> {
    match &f.source {
        FlowSource::Direct(a) => Some(a),
        _ => None,
    }
}

/// True when `f` copies `attr` as is into a value that changes with it (Direct, Update
/// merge, every time, not the DN): the flows whose value changes can be followed one by one.
fn plain_direct(f: &crate::rules::Flow, attr: &str) -> bool {
    direct_source(f) == Some(attr)
        && f.merge == MergeType::Update
        && !f.apply_once
        && f.target != "dn"
}

impl SyncRun<'_> {
    /// Loads a pending object for the batch, with its recorded changes. When no inbound
    /// scope reads the changed attributes, they are left out (not decoded): the batch only
    /// evaluates scopes on it, and the full path reloads what it evaluates.
    pub(super) fn load_pending(
        &self,
        c: &Connection,
        id: i64,
    ) -> Result<Option<(CsObject, Option<ObjectDelta>)>> {
        // Most objects have no record: one key lookup, then the plain load.
        let Some(delta) = store::cs_delta_get(c, id)? else {
            return Ok(store::cs_get(c, id)?.map(|o| (o, None)));
        };
        let Some(head) = store::cs_head(c, id)? else {
            return Ok(None);
        };
        if head.mv_id.is_none() || head.deleted || head.placeholder {
            return Ok(store::cs_get(c, id)?.map(|o| (o, None)));
        }
        let name = self.connector_name(head.connector_id);
        let changed = |a: &str| delta.attributes.contains_key(a);
        let scope_safe = !self
            .engine
            .rules
            .inbound(&name, &head.object_type)
            .any(|r| scope_reads(r, &changed));
        let skip: BTreeSet<String> = if scope_safe {
            delta.attributes.keys().cloned().collect()
        } else {
            BTreeSet::new()
        };
        Ok(store::cs_get_except(c, id, &skip)?.map(|o| (o, Some(delta))))
    }

    /// Value-level recompute of metaverse object `m`, whose only pending contributors are
    /// `items` (each still linked, with its recorded changes). Returns None, having written
    /// nothing, when the full path must run instead.
    pub(super) fn mv_phase_values(
        &mut self,
        c: &Connection,
        m: i64,
        items: &[(CsObject, ObjectDelta)],
    ) -> Result<Option<Vec<i64>>> {
        // Every recorded delta is large (`ObjectDelta::is_large`): imports record no other.
        // Confirmed exports of provisioned objects of connectors that flow nothing inbound
        // change neither the metaverse nor the target side: nothing to evaluate.
        let mut contributing = Vec::new();
        for (o, d) in items {
            if !d.confirmed {
                contributing.push((o, d));
                continue;
            }
            let cname = self.connector_name(o.connector_id);
            if o.link != Some(LinkKind::Provisioned)
                || self
                    .engine
                    .rules
                    .inbound(&cname, &o.object_type)
                    .next()
                    .is_some()
            {
                return Ok(None);
            }
        }
        if contributing.is_empty() {
            tracing::debug!(mv = m, "value-level sync: confirmed export only");
            return Ok(Some(Vec::new()));
        }
        let links = store::cs_links_by_mv(c, m)?;
        if !links
            .iter()
            .any(|l| l.link.map(LinkKind::keeps_alive).unwrap_or(false))
        {
            return Ok(None);
        }
        let Some(mut mv) = store::mv_get(c, m)? else {
            return Ok(None);
        };
        let Some(changes) = self.inbound_value_changes(c, &mv, &contributing)? else {
            return Ok(None);
        };
        // Apply to the metaverse values; the full path's result would hold each resolved
        // value once, so anything ambiguous (duplicates) goes the full way.
        let now = store::now();
        let mut applied: BTreeMap<String, ValueDelta> = BTreeMap::new();
        for (target, d) in changes {
            let Some(list) = mv.attributes.get_mut(&target) else {
                return Ok(None);
            };
            let mut done = ValueDelta::default();
            // How often each current value occurs (counted once per attribute).
            let mut counts: HashMap<&Value, usize> = HashMap::new();
            for x in list.iter() {
                *counts.entry(x).or_default() += 1;
            }
            let mut gone: HashSet<&Value> = HashSet::new();
            for r in &d.removed {
                match counts.get_mut(r) {
                    None | Some(0) => {}
                    Some(n) if *n == 1 => {
                        *n = 0;
                        gone.insert(r);
                        done.removed.push(r.clone());
                    }
                    Some(_) => return Ok(None),
                }
            }
            let mut fresh: HashSet<&Value> = HashSet::new();
            for a in &d.added {
                if counts.get(a).is_some_and(|n| *n > 0) || !fresh.insert(a) {
                    return Ok(None);
                }
            }
            list.retain(|x| !gone.contains(x));
            list.extend(d.added.iter().cloned());
            done.added = d.added;
            if list.is_empty() {
                // The winner may change: leave it to precedence resolution.
                return Ok(None);
            }
            if done.added.is_empty() && done.removed.is_empty() {
                continue;
            }
            if let Some(p) = mv.provenance.get_mut(&target) {
                p.modified = now.clone();
            }
            applied.insert(target, done);
        }
        if applied.is_empty() {
            // Nothing reached the metaverse: the outbound side is unchanged as well.
            tracing::debug!(mv = m, "value-level sync: no metaverse change");
            return Ok(Some(Vec::new()));
        }
        store::mv_update_values(c, &mv, &self.mv_join_attrs, &applied)?;
        self.counters.mv_updates += 1;
        self.counters.mv_value_updates += 1;
        tracing::debug!(
            mv = m,
            attributes = applied.len(),
            values = applied
                .values()
                .map(|d| d.added.len() + d.removed.len())
                .sum::<usize>(),
            "value-level sync: metaverse updated"
        );
        if self.outbound_values(c, &mv, &applied)? {
            return Ok(Some(Vec::new()));
        }
        Ok(Some(self.outbound(c, &mv)?))
    }

    /// The metaverse value changes the items' recorded changes imply, per metaverse attribute;
    /// None when the value-level path cannot prove them.
    fn inbound_value_changes(
        &self,
        c: &Connection,
        mv: &MvObject,
        items: &[(&CsObject, &ObjectDelta)],
    ) -> Result<Option<BTreeMap<String, ValueDelta>>> {
        let outbound_targets: BTreeSet<&str> = self
            .engine
            .rules
            .outbound(&mv.object_type)
            .map(|r| r.connector.as_str())
            .collect();
        let mut changes: BTreeMap<String, ValueDelta> = BTreeMap::new();
        for &(o, delta) in items {
            let cname = self.connector_name(o.connector_id);
            // A target-side object's changes matter for its pending export: evaluate whole.
            if outbound_targets.contains(cname.as_str())
                || o.link == Some(LinkKind::Provisioned)
                || o.unconfirmed.is_some()
            {
                return Ok(None);
            }
            let changed = |a: &str| delta.attributes.contains_key(a);
            if self
                .engine
                .rules
                .inbound(&cname, &o.object_type)
                .any(|r| scope_reads(r, &changed))
            {
                return Ok(None);
            }
            for rule in self.in_scope_inbound(c, o) {
                if rule.target_type != mv.object_type {
                    continue;
                }
                for f in &rule.flows {
                    let reads = f.reads();
                    let Some((attr, d)) = delta.attributes.iter().find(|(a, _)| reads.contains(a))
                    else {
                        continue;
                    };
                    let winner = mv
                        .provenance
                        .get(&f.target)
                        .is_some_and(|p| p.rule == rule.name && p.connector == cname);
                    if !plain_direct(f, attr) || !winner || changes.contains_key(&f.target) {
                        return Ok(None);
                    }
                    let mut out = ValueDelta::default();
                    for v in &d.added {
                        if let Some(v) = self.inbound_added(c, o.connector_id, v)? {
                            out.added.push(v);
                        }
                    }
                    for v in &d.removed {
                        match self.inbound_removed(c, o.connector_id, v)? {
                            Removed::Value(v) => out.removed.push(v),
                            Removed::NeverResolved => {}
                            Removed::Unknown => return Ok(None),
                        }
                    }
                    changes.insert(f.target.clone(), out);
                }
            }
        }
        Ok(Some(changes))
    }

    /// An added source value as the full path would resolve it (None: dropped, unresolvable).
    fn inbound_added(&self, c: &Connection, cid: i64, v: &Value) -> Result<Option<Value>> {
        let Value::Ref(dn) = v else {
            return Ok(Some(v.clone()));
        };
        let Ok(d) = Dn::parse(dn) else {
            return Ok(None);
        };
        Ok(match store::cs_link_by_dn(c, cid, &d.normalized())? {
            Some((_, Some(mv))) => Some(Value::Ref(mv.to_string())),
            _ => None,
        })
    }

    /// A removed source value as the last synchronization resolved it.
    fn inbound_removed(&self, c: &Connection, cid: i64, v: &Value) -> Result<Removed> {
        let Value::Ref(dn) = v else {
            return Ok(Removed::Value(v.clone()));
        };
        let Ok(d) = Dn::parse(dn) else {
            // The full path drops unparsable references: never in the metaverse.
            return Ok(Removed::NeverResolved);
        };
        // Deleted objects count: their link is what the metaverse holds until their own sync.
        let links = store::cs_mv_links_by_dn(c, cid, &d.normalized())?;
        Ok(match links.as_slice() {
            [Some(mv)] => Removed::Value(Value::Ref(mv.to_string())),
            _ => Removed::Unknown,
        })
    }

    /// Folds metaverse value changes into the pending exports of the linked target objects.
    /// False (nothing written) when a target needs the full outbound evaluation.
    fn outbound_values(
        &mut self,
        c: &Connection,
        mv: &MvObject,
        applied: &BTreeMap<String, ValueDelta>,
    ) -> Result<bool> {
        let scope = MvScope { conn: c, obj: mv };
        let changed = |a: &str| applied.contains_key(a);
        let mut by_connector: BTreeMap<String, Vec<&Rule>> = BTreeMap::new();
        let mut all_targets: BTreeSet<String> = BTreeSet::new();
        for r in self.engine.rules.outbound(&mv.object_type) {
            if scope_reads(r, &changed) {
                return Ok(false);
            }
            all_targets.insert(r.connector.clone());
            if evaluate_scope(&r.scope, &scope).in_scope {
                by_connector.entry(r.connector.clone()).or_default().push(r);
            }
        }
        let links = store::cs_links_by_mv(c, mv.id)?;
        // Plan every target first; write only when all of them can take the shortcut.
        let mut plans = Vec::new();
        for target in &all_targets {
            let Some(&tid) = self.ids.get(target) else {
                continue;
            };
            let Some(rules) = by_connector.get(target) else {
                return Ok(false);
            };
            let Some(link) = links.iter().find(|l| l.connector_id == tid) else {
                return Ok(false);
            };
            if link.placeholder {
                return Ok(false);
            }
            let mut per_attr: Vec<(String, ValueDelta)> = Vec::new();
            for r in rules {
                for f in &r.flows {
                    let reads = f.reads();
                    let Some((attr, d)) = applied.iter().find(|(a, _)| reads.contains(a)) else {
                        continue;
                    };
                    let sole = rules
                        .iter()
                        .flat_map(|x| x.flows.iter())
                        .filter(|x| x.target == f.target)
                        .count()
                        == 1;
                    if !plain_direct(f, attr) || !sole {
                        return Ok(false);
                    }
                    let mut out = ValueDelta::default();
                    for v in &d.added {
                        if let Some(v) = outbound_value(c, tid, v)? {
                            out.added.push(v);
                        }
                    }
                    for v in &d.removed {
                        match outbound_value(c, tid, v)? {
                            Some(v) => out.removed.push(v),
                            None => return Ok(false),
                        }
                    }
                    per_attr.push((f.target.clone(), out));
                }
            }
            if !per_attr.is_empty() {
                plans.push((tid, link.id, per_attr));
            }
        }
        let mut writes: Vec<(i64, Option<PendingExport>)> = Vec::new();
        for (tid, cs_id, per_attr) in plans {
            let Some(w) = fold_pending(c, tid, cs_id, &per_attr)? else {
                return Ok(false);
            };
            writes.push((cs_id, w));
        }
        for (cs_id, w) in writes {
            match w {
                Some(p) => store::pending_put(c, &p)?,
                None => store::pending_clear(c, cs_id)?,
            }
        }
        Ok(true)
    }
}

/// How a removed source value was resolved at the last synchronization.
enum Removed {
    /// This metaverse value.
    Value(Value),
    /// Never resolvable: not in the metaverse.
    NeverResolved,
    /// Cannot tell (the referenced object is gone or ambiguous).
    Unknown,
}

/// A metaverse value as the target sees it (references become the target's DNs); None when a
/// reference has no object in the target.
fn outbound_value(c: &Connection, tid: i64, v: &Value) -> Result<Option<Value>> {
    let Value::Ref(id) = v else {
        return Ok(Some(v.clone()));
    };
    let Ok(mid) = id.parse::<i64>() else {
        return Ok(None);
    };
    Ok(store::cs_dn_by_mv(c, mid, tid)?.map(Value::Ref))
}

/// The pending export of target object `cs_id` (of connector `tid`) after the desired values
/// of some attributes changed by `per_attr`, given that the stored pending export is the
/// difference between the previous desired state and the target's effective state (what the
/// full path keeps). `Some(None)`: nothing left to export. None: the full path must decide.
fn fold_pending(
    c: &Connection,
    tid: i64,
    cs_id: i64,
    per_attr: &[(String, ValueDelta)],
) -> Result<Option<Option<PendingExport>>> {
    let names: Vec<&str> = per_attr.iter().map(|(n, _)| n.as_str()).collect();
    let Some(effective) = store::cs_effective_raw(c, cs_id, &names)? else {
        return Ok(None);
    };
    let mut pending = match store::pending_get(c, cs_id)? {
        Some(p) if p.op == "update" => p,
        Some(_) => return Ok(None),
        None => {
            let dn = store::cs_dn(c, cs_id)?.unwrap_or_default();
            PendingExport {
                cs_id,
                connector_id: tid,
                op: "update".into(),
                dn,
                new_dn: None,
                changes: Vec::new(),
                attempts: 0,
                last_error: None,
            }
        }
    };
    for (name, d) in per_attr {
        // The target's values stay encoded: membership compares each value's JSON form (one
        // serializer writes both, so equal values have equal text).
        let old: Vec<&RawValue> = match effective.get(name) {
            Some(raw) => {
                serde_json::from_str(raw).map_err(|e| store::StoreError::Corrupt(e.to_string()))?
            }
            None => Vec::new(),
        };
        // Small attributes are replaced whole by the full path.
        if old.len() <= 1 {
            return Ok(None);
        }
        let old_texts: HashSet<&str> = old.iter().map(|x| x.get()).collect();
        let holds = |v: &Value| -> Result<bool> {
            let text =
                serde_json::to_string(v).map_err(|e| store::StoreError::Corrupt(e.to_string()))?;
            Ok(old_texts.contains(text.as_str()))
        };
        let mut add: Vec<Value> = Vec::new();
        let mut remove: Vec<Value> = Vec::new();
        for ch in pending.changes.iter().filter(|ch| ch.name() == name) {
            match ch {
                AttributeChange::Add { values, .. } => add.extend(values.iter().cloned()),
                AttributeChange::Remove { values, .. } if !values.is_empty() => {
                    remove.extend(values.iter().cloned())
                }
                _ => return Ok(None),
            }
        }
        for v in &d.removed {
            if let Some(i) = add.iter().position(|x| x == v) {
                add.remove(i);
            } else if !remove.contains(v) && holds(v)? {
                remove.push(v.clone());
            }
        }
        for v in &d.added {
            if let Some(i) = remove.iter().position(|x| x == v) {
                remove.remove(i);
            } else if !add.contains(v) && !holds(v)? {
                add.push(v.clone());
            }
        }
        if add.is_empty() && !remove.is_empty() {
            // When every current value goes, nothing may be desired any more: the full path
            // clears the attribute then. (Stops at the first value that stays.)
            let gone: Result<BTreeSet<String>> = remove
                .iter()
                .map(|v| {
                    serde_json::to_string(v)
                        .map_err(|e| store::StoreError::Corrupt(e.to_string()).into())
                })
                .collect();
            let gone = gone?;
            if old.iter().all(|x| gone.contains(x.get())) {
                return Ok(None);
            }
        }
        let at = pending
            .changes
            .iter()
            .position(|ch| ch.name() > name.as_str())
            .unwrap_or(pending.changes.len());
        let mut fresh = Vec::new();
        if !remove.is_empty() {
            fresh.push(AttributeChange::Remove {
                name: name.clone(),
                values: remove,
            });
        }
        if !add.is_empty() {
            fresh.push(AttributeChange::Add {
                name: name.clone(),
                values: add,
            });
        }
        let mut rest: Vec<AttributeChange> = Vec::new();
        for (i, ch) in std::mem::take(&mut pending.changes).into_iter().enumerate() {
            if i == at {
                rest.append(&mut fresh);
            }
            if ch.name() != name {
                rest.push(ch);
            }
        }
        rest.append(&mut fresh);
        pending.changes = rest;
    }
    if pending.changes.is_empty() && pending.new_dn.is_none() {
        return Ok(Some(None));
    }
    Ok(Some(Some(pending)))
}

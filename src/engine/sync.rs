//! Synchronization: connector space -> metaverse -> pending exports.
//!
//! Objects are processed in batches, one transaction each. Phase 1 links each pending
//! connector-space object (delete, disconnect, join, project); phase 2 recomputes every affected
//! metaverse object from all its contributors by precedence and then its outbound side
//! (provision, join, deprovision, desired attributes -> pending export). Objects whose
//! references could not resolve yet are queued again when the referenced object gets linked.

use super::{Engine, Result, StepCounters, crash_point, history};
use crate::config::{Deprovision, LinkType, MergeType};
use crate::expr::FlowValue;
use crate::model::{AttributeChange, Attributes, Dn, Value, diff_values};
use crate::rules::{ObjectContext, Rule, ScopeContext, evaluate_scope};
use crate::store::{self, CsObject, LinkKind, MvObject, PendingExport, Provenance};
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

mod values;

const BATCH: usize = 1000;

/// Scope context over a connector-space object.
pub(super) struct CsScope<'a> {
    pub(super) conn: &'a Connection,
    pub(super) obj: &'a CsObject,
}

impl ScopeContext for CsScope<'_> {
    fn values(&self, attribute: &str) -> Vec<Value> {
        if attribute == "dn" {
            return vec![Value::Str(self.obj.dn.to_string())];
        }
        self.obj
            .attributes
            .get(attribute)
            .cloned()
            .unwrap_or_default()
    }
    fn is_member_of(&self, group_dn: &str) -> bool {
        let Ok(g) = Dn::parse(group_dn) else {
            return false;
        };
        let Ok(Some(group)) = store::cs_by_dn(self.conn, self.obj.connector_id, &g) else {
            return false;
        };
        let me = self.obj.dn.normalized();
        group.attributes.values().flatten().any(|v| match v {
            Value::Ref(d) => Dn::parse(d).map(|d| d.normalized() == me).unwrap_or(false),
            _ => false,
        })
    }
}

/// Scope context over a metaverse object.
struct MvScope<'a> {
    conn: &'a Connection,
    obj: &'a MvObject,
}

impl ScopeContext for MvScope<'_> {
    fn values(&self, attribute: &str) -> Vec<Value> {
        self.obj
            .attributes
            .get(attribute)
            .cloned()
            .unwrap_or_default()
    }
    fn is_member_of(&self, group_dn: &str) -> bool {
        // In the metaverse a group is named by any connector-space DN joined to it.
        let Ok(g) = Dn::parse(group_dn) else {
            return false;
        };
        let Ok(names) = store::connector_names(self.conn) else {
            return false;
        };
        let me = self.obj.id.to_string();
        names.keys().any(|cid| {
            let Ok(Some((_, Some(group_mv)))) =
                store::cs_link_by_dn(self.conn, *cid, &g.normalized())
            else {
                return false;
            };
            store::mv_get(self.conn, group_mv)
                .ok()
                .flatten()
                .map(|gm| {
                    gm.attributes
                        .values()
                        .flatten()
                        .any(|v| matches!(v, Value::Ref(r) if *r == me))
                })
                .unwrap_or(false)
        })
    }
}

/// One contribution to a metaverse attribute.
struct Contribution {
    precedence: i64,
    merge: MergeType,
    value: FlowValue,
    rule: String,
    connector: String,
}

/// Work state of one sync run.
struct SyncRun<'e> {
    engine: &'e Engine,
    names: BTreeMap<i64, String>,
    ids: HashMap<String, i64>,
    mv_join_attrs: Vec<String>,
    counters: StepCounters,
    errors: Vec<(String, String)>,
    /// Metaverse objects to evaluate again after pass 2 (referrers of replaced placeholders).
    reevaluate: BTreeSet<i64>,
    /// Outbound join candidates, loaded once per target connector and batch.
    joinable: HashMap<i64, JoinPool>,
}

/// What every run of one sync shares: connector names both ways and the metaverse join
/// attributes.
struct RunSetup {
    names: BTreeMap<i64, String>,
    ids: HashMap<String, i64>,
    mv_join_attrs: Vec<String>,
}

impl RunSetup {
    fn load(engine: &Engine, c: &Connection) -> Result<Self> {
        let names = store::connector_names(c)?;
        let ids = names.iter().map(|(k, v)| (v.clone(), *k)).collect();
        Ok(RunSetup {
            names,
            ids,
            mv_join_attrs: engine.rules.mv_join_attributes(),
        })
    }
}

/// The objects of one target connector that an outbound join may take, indexed by the
/// case-folded text of each join attribute on first use.
#[derive(Default)]
struct JoinPool {
    objects: Vec<CsObject>,
    by_attr: HashMap<String, HashMap<String, Vec<usize>>>,
}

impl JoinPool {
    /// Positions of the objects whose `attr` has one of `texts` (case-insensitively).
    fn candidates(&mut self, attr: &str, texts: &[String]) -> Vec<usize> {
        let objects = &self.objects;
        let index = self.by_attr.entry(attr.to_string()).or_insert_with(|| {
            let mut m: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, o) in objects.iter().enumerate() {
                for v in o.attributes.get(attr).map(Vec::as_slice).unwrap_or(&[]) {
                    m.entry(v.to_text().to_lowercase()).or_default().push(i);
                }
            }
            m
        });
        let mut out: Vec<usize> = texts
            .iter()
            .filter_map(|t| index.get(&t.to_lowercase()))
            .flatten()
            .copied()
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl Engine {
    pub(super) fn sync(
        &mut self,
        connector: &str,
        full: bool,
        counters: &mut StepCounters,
    ) -> Result<()> {
        let cid = self.connector_id(connector)?;
        if full {
            let tx = self.store.transaction()?;
            store::cs_mark_all_pending(&tx, cid)?;
            store::set_connector_counter(&tx, cid, store::ConnectorCounter::FullSyncRequired, 0)?;
            tx.commit().map_err(store::StoreError::from)?;
            crash_point("sync.marked");
        }
        let setup = RunSetup::load(self, self.store.conn())?;
        // Pass 1: joins and projections for every pending object, so that references between
        // objects of this run resolve in pass 2 whatever their order. Idempotent.
        let pending = store::cs_pending_ids(self.store.conn(), cid)?;
        let mut reevaluate = BTreeSet::new();
        for chunk in pending.chunks(BATCH) {
            self.check_cancel()?;
            let mut run = SyncRun::new(self, &setup);
            self.in_transaction(true, |c| run.link_pass(c, chunk))?;
            counters.add(&run.counters);
            reevaluate.append(&mut run.reevaluate);
        }
        // Pass 2: metaverse recompute and outbound for every pending object.
        let pending = store::cs_pending_ids(self.store.conn(), cid)?;
        let total = pending.len() as u64;
        let mut processed = 0u64;
        for chunk in pending.chunks(BATCH) {
            self.check_cancel()?;
            let mut run = SyncRun::new(self, &setup);
            self.in_transaction(true, |c| run.batch(c, chunk))?;
            counters.add(&run.into_counters());
            processed += chunk.len() as u64;
            self.report(
                connector,
                if full {
                    super::RunProfile::FullSync
                } else {
                    super::RunProfile::DeltaSync
                },
                processed,
                Some(total),
            );
        }
        // Referrers of placeholders that imported objects replaced in pass 1: their pending
        // exports still name the placeholders' DNs.
        let reevaluate: Vec<i64> = reevaluate.into_iter().collect();
        for chunk in reevaluate.chunks(BATCH) {
            self.check_cancel()?;
            let mut run = SyncRun::new(self, &setup);
            self.in_transaction(true, |c| run.recompute(c, chunk.iter().copied().collect()))?;
            counters.add(&run.into_counters());
        }
        Ok(())
    }
}

impl Engine {
    /// Synchronizes one connector-space object in the caller's open transaction: both passes
    /// of a sync run over just this object (the single-object sync of `preview`). Returns the
    /// run's counters, per-object errors included.
    pub(super) fn sync_one_in_transaction(
        &self,
        c: &Connection,
        cs_id: i64,
    ) -> Result<StepCounters> {
        let setup = RunSetup::load(self, c)?;
        let mut run = SyncRun::new(self, &setup);
        run.link_pass(c, &[cs_id])?;
        run.batch(c, &[cs_id])?;
        let reevaluate = std::mem::take(&mut run.reevaluate);
        run.recompute(c, reevaluate)?;
        Ok(run.into_counters())
    }
}

impl Engine {
    /// Runs `f` in an immediate transaction on the state connection, which ends in COMMIT
    /// when `keep` (ROLLBACK otherwise) once `f` succeeded and in ROLLBACK when `f` or the
    /// COMMIT failed (a failed COMMIT leaves the transaction open).
    pub(super) fn in_transaction<T>(
        &self,
        keep: bool,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let conn = self.store.conn();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let value = match f(conn) {
            Ok(value) => value,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        };
        if keep {
            crash_point("sync.before_commit");
        }
        if let Err(e) = conn.execute_batch(if keep { "COMMIT" } else { "ROLLBACK" }) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        if keep {
            crash_point("sync.after_commit");
        }
        Ok(value)
    }
}

impl<'e> SyncRun<'e> {
    fn new(engine: &'e Engine, setup: &RunSetup) -> Self {
        SyncRun {
            engine,
            names: setup.names.clone(),
            ids: setup.ids.clone(),
            mv_join_attrs: setup.mv_join_attrs.clone(),
            counters: StepCounters::default(),
            errors: Vec::new(),
            reevaluate: BTreeSet::new(),
            joinable: HashMap::new(),
        }
    }

    /// The run's counters with its per-object errors folded in.
    fn into_counters(self) -> StepCounters {
        let mut counters = self.counters;
        counters
            .errors
            .extend(
                self.errors
                    .into_iter()
                    .map(|(object, message)| history::ObjectError {
                        object,
                        stage: "sync".into(),
                        message,
                    }),
            );
        counters
    }

    /// Pass 1: join or project live unlinked objects. Deletions and disconnections wait for
    /// pass 2, which recomputes the metaverse object they leave (a disconnection here would
    /// leave it unevaluated: its identity and target objects would outlive the source).
    fn link_pass(&mut self, c: &Connection, chunk: &[i64]) -> Result<()> {
        let mut affected = BTreeSet::new();
        for id in chunk {
            // Linked or deleted objects wait for pass 2: no need to decode them here.
            if !store::cs_head(c, *id)?.is_some_and(|h| h.mv_id.is_none() && !h.deleted) {
                continue;
            }
            if let Some(mut o) = store::cs_get(c, *id)? {
                self.link_phase(c, &mut o, &mut affected)?;
            }
            crash_point("sync.link");
        }
        Ok(())
    }
}

impl SyncRun<'_> {
    fn batch(&mut self, c: &Connection, chunk: &[i64]) -> Result<()> {
        let mut affected: BTreeSet<i64> = BTreeSet::new();
        // Metaverse objects whose only pending contributors carry value-level changes, and
        // those touched any other way (evaluated whole).
        let mut by_values: HashMap<i64, Vec<(CsObject, store::ObjectDelta)>> = HashMap::new();
        let mut whole: BTreeSet<i64> = BTreeSet::new();
        for id in chunk {
            if let Some((mut o, delta)) = self.load_pending(c, *id)? {
                let linked = o.mv_id.filter(|_| !o.deleted && !o.placeholder);
                let mut touched = BTreeSet::new();
                self.link_phase(c, &mut o, &mut touched)?;
                match (delta, linked) {
                    (Some(d), Some(mv))
                        if o.mv_id == Some(mv) && touched.len() == 1 && touched.contains(&mv) =>
                    {
                        by_values.entry(mv).or_default().push((o, d));
                    }
                    _ => whole.extend(touched.iter().copied()),
                }
                affected.extend(touched);
            }
            crash_point("sync.link");
        }
        // Cleared before the metaverse phase (same transaction): objects of this batch count
        // as evaluated when referrers are requeued below.
        for id in chunk {
            store::cs_set_sync_pending(c, *id, false)?;
        }
        self.recompute_with(c, affected, by_values, whole)
    }

    /// Phase 2 for these metaverse objects and the referrers that become resolvable.
    fn recompute(&mut self, c: &Connection, affected: BTreeSet<i64>) -> Result<()> {
        self.recompute_with(c, affected, HashMap::new(), BTreeSet::new())
    }

    /// Phase 2; metaverse objects in `by_values` and not in `whole` first try the
    /// value-level path with their contributors' recorded changes.
    fn recompute_with(
        &mut self,
        c: &Connection,
        affected: BTreeSet<i64>,
        mut by_values: HashMap<i64, Vec<(CsObject, store::ObjectDelta)>>,
        mut whole: BTreeSet<i64>,
    ) -> Result<()> {
        let mut queue: VecDeque<i64> = affected.iter().copied().collect();
        let mut done: BTreeSet<i64> = BTreeSet::new();
        while let Some(m) = queue.pop_front() {
            if !done.insert(m) {
                continue;
            }
            // Objects returned here reference something that just became resolvable (a new
            // target object): evaluate them again even when done already. Each object is
            // provisioned once, so this terminates.
            crash_point("sync.metaverse");
            let extras = match by_values.remove(&m) {
                Some(items) if !whole.contains(&m) => match self.mv_phase_values(c, m, &items)? {
                    Some(extras) => extras,
                    None => self.mv_phase(c, m)?,
                },
                _ => self.mv_phase(c, m)?,
            };
            for extra in extras {
                whole.insert(extra);
                done.remove(&extra);
                queue.push_back(extra);
            }
        }
        Ok(())
    }

    fn connector_name(&self, id: i64) -> String {
        self.names.get(&id).cloned().unwrap_or_default()
    }

    fn in_scope_inbound<'r>(&'r self, c: &Connection, o: &CsObject) -> Vec<&'r Rule> {
        let name = self.connector_name(o.connector_id);
        let scope = CsScope { conn: c, obj: o };
        let rules: &'r crate::rules::RuleSet = &self.engine.rules;
        rules
            .inbound(&name, &o.object_type)
            .filter(|r| evaluate_scope(&r.scope, &scope).in_scope)
            .collect()
    }

    /// Phase 1: deletes, disconnects, joins and projections.
    fn link_phase(
        &mut self,
        c: &Connection,
        o: &mut CsObject,
        affected: &mut BTreeSet<i64>,
    ) -> Result<()> {
        if o.deleted {
            if let Some(mv) = o.mv_id {
                affected.insert(mv);
                self.counters.disconnects += 1;
            }
            store::cs_delete(c, o.id)?;
            self.counters.deletes += 1;
            return Ok(());
        }
        if o.placeholder {
            return Ok(());
        }
        let rules = self.in_scope_inbound(c, o);
        if let Some(mv) = o.mv_id {
            // Objects provisioned by outbound rules stay linked; others need an in-scope inbound rule.
            let keep = o.link == Some(LinkKind::Provisioned) || !rules.is_empty();
            if !keep {
                o.mv_id = None;
                o.link = None;
                o.link_rule = None;
                store::cs_set_link(c, o.id, o.mv_id, o.link, o.link_rule.as_deref())?;
                self.counters.disconnects += 1;
            }
            affected.insert(mv);
            return Ok(());
        }
        // Not linked: join, then project.
        if let Some(jr) = rules.iter().find(|r| !r.join.is_empty())
            && let Some(mv) = self.find_inbound_join(c, o, jr)?
        {
            o.mv_id = Some(mv);
            o.link = Some(if jr.link_type == LinkType::StickyJoin {
                LinkKind::Sticky
            } else {
                LinkKind::Joined
            });
            o.link_rule = Some(jr.name.clone());
            self.replace_placeholder(c, o, mv)?;
            store::cs_set_link(c, o.id, o.mv_id, o.link, o.link_rule.as_deref())?;
            self.counters.joins += 1;
            affected.insert(mv);
            self.queue_cs_referrers(c, o, affected)?;
            return Ok(());
        }
        if let Some(pr) = rules.iter().find(|r| r.link_type == LinkType::Provision) {
            let has_join_value = pr.join.is_empty()
                || pr.join.iter().flat_map(|g| g.clauses.iter()).any(|cl| {
                    !o.attributes
                        .get(&cl.source)
                        .map(Vec::is_empty)
                        .unwrap_or(true)
                });
            if has_join_value {
                let mv = store::mv_insert(c, &pr.target_type)?;
                o.mv_id = Some(mv);
                o.link = Some(LinkKind::Projected);
                o.link_rule = Some(pr.name.clone());
                store::cs_set_link(c, o.id, o.mv_id, o.link, o.link_rule.as_deref())?;
                self.counters.projections += 1;
                affected.insert(mv);
                self.queue_cs_referrers(c, o, affected)?;
            }
        }
        Ok(())
    }

    /// Objects of the same connector space that reference a newly linked object get
    /// re-evaluated: those already synced are marked pending again (pass 2 of this run or the
    /// next run picks them up); those still pending will be evaluated anyway.
    fn queue_cs_referrers(
        &self,
        c: &Connection,
        o: &CsObject,
        affected: &mut BTreeSet<i64>,
    ) -> Result<()> {
        for (rid, mv, pending) in store::cs_referrer_links(c, o.connector_id, &o.dn.normalized())? {
            if let (Some(mv), false) = (mv, pending) {
                store::cs_set_sync_pending(c, rid, true)?;
                affected.insert(mv);
            }
        }
        Ok(())
    }

    /// An imported object joined a metaverse object whose object in this connector is still a
    /// placeholder (a pending add this server never exported, e.g. because it runs in staging
    /// mode while the active server created the object): the imported object is that object.
    /// The placeholder and its pending add go; the imported object takes over its link (so
    /// deprovisioning on scope exit works as for an object this server created) and the
    /// objects that reference it are evaluated again at the end of the sync run, so their
    /// pending exports name the real DN.
    fn replace_placeholder(&mut self, c: &Connection, o: &mut CsObject, mv: i64) -> Result<()> {
        let Some(ph) = store::cs_links_by_mv(c, mv)?
            .into_iter()
            .find(|x| x.connector_id == o.connector_id && x.placeholder && x.id != o.id)
        else {
            return Ok(());
        };
        let Some(ph) = store::cs_get(c, ph.id)? else {
            return Ok(());
        };
        tracing::info!(
            connector = %self.connector_name(o.connector_id),
            placeholder = %ph.dn,
            dn = %o.dn,
            mv_id = mv,
            "an imported object replaces the pending add of the same identity"
        );
        store::cs_delete(c, ph.id)?;
        o.link = ph.link;
        o.link_rule = ph.link_rule;
        self.reevaluate.extend(store::mv_referrers(c, mv)?);
        Ok(())
    }

    fn find_inbound_join(&self, c: &Connection, o: &CsObject, rule: &Rule) -> Result<Option<i64>> {
        for group in &rule.join {
            let mut candidates: Option<BTreeSet<i64>> = None;
            for cl in &group.clauses {
                let vals = o.attributes.get(&cl.source).cloned().unwrap_or_default();
                if vals.is_empty() {
                    candidates = Some(BTreeSet::new());
                    break;
                }
                let mut found = BTreeSet::new();
                for v in &vals {
                    let text = v.to_text();
                    for m in store::mv_find(c, &cl.target, &text)? {
                        if cl.case_sensitive {
                            let ok = store::mv_get(c, m)?
                                .map(|mo| {
                                    mo.attributes
                                        .get(&cl.target)
                                        .map(|vs| vs.iter().any(|x| x.to_text() == text))
                                        .unwrap_or(false)
                                })
                                .unwrap_or(false);
                            if !ok {
                                continue;
                            }
                        }
                        found.insert(m);
                    }
                }
                candidates = Some(match candidates {
                    None => found,
                    Some(prev) => prev.intersection(&found).copied().collect(),
                });
            }
            let mut cands: Vec<i64> = candidates.unwrap_or_default().into_iter().collect();
            // Same type, and not already joined to another object of this connector.
            cands.retain(|m| {
                let Ok(Some(mo)) = store::mv_get(c, *m) else {
                    return false;
                };
                if mo.object_type != rule.target_type {
                    return false;
                }
                // A placeholder (a pending add never exported) does not count: the object it
                // would create exists already (see `replace_placeholder`).
                store::cs_links_by_mv(c, *m)
                    .map(|l| {
                        !l.iter()
                            .any(|x| x.connector_id == o.connector_id && !x.placeholder)
                    })
                    .unwrap_or(false)
            });
            if cands.len() == 1 {
                return Ok(cands.first().copied());
            }
        }
        Ok(None)
    }

    /// Phase 2: recompute a metaverse object and its outbound side.
    /// Returns further metaverse objects to process (referrers that can now resolve).
    fn mv_phase(&mut self, c: &Connection, m: i64) -> Result<Vec<i64>> {
        let Some(mut mv) = store::mv_get(c, m)? else {
            return Ok(Vec::new());
        };
        let linked = store::cs_by_mv(c, m)?;
        let mut more = Vec::new();
        if !linked
            .iter()
            .any(|l| l.link.map(LinkKind::keeps_alive).unwrap_or(false))
        {
            // No projecting or sticky contributor remains: the identity is gone.
            for mut l in linked {
                if l.link == Some(LinkKind::Provisioned) {
                    let rule = l.link_rule.clone().unwrap_or_default();
                    let action = self
                        .engine
                        .rules
                        .get(&rule)
                        .map(|r| r.deprovision)
                        .unwrap_or(Deprovision::Delete);
                    self.deprovision(c, &mut l, action, true)?;
                } else {
                    l.mv_id = None;
                    l.link = None;
                    l.link_rule = None;
                    store::cs_set_link(c, l.id, l.mv_id, l.link, l.link_rule.as_deref())?;
                }
            }
            more.extend(store::mv_referrers(c, m)?);
            store::mv_delete(c, m)?;
            self.counters.mv_deletes += 1;
            return Ok(more);
        }
        // Inbound: recompute every attribute from all contributors.
        let params = &self.engine.config.parameters;
        let mut contributions: BTreeMap<String, Vec<Contribution>> = BTreeMap::new();
        let mut flow_targets: BTreeSet<String> = BTreeSet::new();
        let mut apply_once: BTreeSet<String> = BTreeSet::new();
        for l in &linked {
            if l.placeholder {
                continue;
            }
            let cname = self.connector_name(l.connector_id);
            for rule in self.in_scope_inbound(c, l) {
                if rule.target_type != mv.object_type {
                    continue;
                }
                let ctx = ObjectContext::with_dn(&l.attributes, &l.dn, params);
                for f in &rule.flows {
                    flow_targets.insert(f.target.clone());
                    if f.apply_once {
                        apply_once.insert(f.target.clone());
                        if mv.attributes.contains_key(&f.target) {
                            continue;
                        }
                    }
                    let value = match f.evaluate(&ctx) {
                        Ok(v) => self.resolve_inbound_refs(c, l.connector_id, v)?,
                        Err(e) => {
                            self.errors.push((
                                l.dn.to_string(),
                                format!("rule '{}', flow to '{}': {}", rule.name, f.target, e),
                            ));
                            self.counters.sync_errors += 1;
                            return Ok(more);
                        }
                    };
                    contributions
                        .entry(f.target.clone())
                        .or_default()
                        .push(Contribution {
                            precedence: rule.precedence,
                            merge: f.merge,
                            value,
                            rule: rule.name.clone(),
                            connector: cname.clone(),
                        });
                }
            }
        }
        let mut new_attrs = Attributes::new();
        let mut new_prov = BTreeMap::new();
        let now = store::now();
        for target in &flow_targets {
            let mut list = contributions.remove(target).unwrap_or_default();
            list.sort_by_key(|x| x.precedence);
            let existing = mv.attributes.get(target);
            let (values, winner) = resolve(&list);
            let values = match values {
                Resolved::Keep => existing.cloned().unwrap_or_default(),
                Resolved::Set(v) => v,
            };
            let values = if apply_once.contains(target) && existing.is_some() && list.is_empty() {
                existing.cloned().unwrap_or_default()
            } else {
                values
            };
            if !values.is_empty() {
                let changed = existing != Some(&values);
                let prov = match (winner, mv.provenance.get(target)) {
                    (Some(w), Some(old)) if !changed && old.rule == w.0 => old.clone(),
                    (Some(w), _) => Provenance {
                        rule: w.0,
                        connector: w.1,
                        modified: now.clone(),
                    },
                    (None, Some(old)) => old.clone(),
                    (None, None) => Provenance {
                        rule: String::new(),
                        connector: String::new(),
                        modified: now.clone(),
                    },
                };
                new_prov.insert(target.clone(), prov);
                new_attrs.insert(target.clone(), values);
            }
        }
        if new_attrs != mv.attributes {
            let was_new = mv.attributes.is_empty();
            mv.attributes = new_attrs;
            mv.provenance = new_prov;
            store::mv_update(c, &mv, &self.mv_join_attrs)?;
            if was_new {
                self.counters.mv_adds += 1;
            } else {
                self.counters.mv_updates += 1;
            }
        } else if new_prov != mv.provenance {
            mv.provenance = new_prov;
            store::mv_update(c, &mv, &self.mv_join_attrs)?;
        }
        more.extend(self.outbound(c, &mv)?);
        Ok(more)
    }

    /// CS reference values (DNs) become metaverse references (ids); unresolved ones are dropped.
    fn resolve_inbound_refs(
        &self,
        c: &Connection,
        connector_id: i64,
        v: FlowValue,
    ) -> Result<FlowValue> {
        let FlowValue::Values(vals) = v else {
            return Ok(v);
        };
        let mut out = Vec::with_capacity(vals.len());
        for val in vals {
            match val {
                Value::Ref(dn) => {
                    let Ok(d) = Dn::parse(&dn) else { continue };
                    if let Some((_, Some(mv))) =
                        store::cs_link_by_dn(c, connector_id, &d.normalized())?
                    {
                        out.push(Value::Ref(mv.to_string()));
                    }
                }
                other => out.push(other),
            }
        }
        Ok(FlowValue::Values(out))
    }

    fn deprovision(
        &mut self,
        c: &Connection,
        l: &mut CsObject,
        action: Deprovision,
        unlink: bool,
    ) -> Result<()> {
        match action {
            Deprovision::Disconnect => {
                l.mv_id = None;
                l.link = None;
                l.link_rule = None;
                store::cs_set_link(c, l.id, l.mv_id, l.link, l.link_rule.as_deref())?;
                store::pending_clear(c, l.id)?;
                self.counters.disconnects += 1;
            }
            Deprovision::Delete => {
                if l.placeholder {
                    // Never created in the target: nothing to delete there.
                    store::cs_delete(c, l.id)?;
                } else {
                    store::pending_put(
                        c,
                        &PendingExport {
                            cs_id: l.id,
                            connector_id: l.connector_id,
                            op: "delete".into(),
                            dn: l.dn.to_string(),
                            new_dn: None,
                            changes: Vec::new(),
                            attempts: 0,
                            last_error: None,
                        },
                    )?;
                    if unlink {
                        l.mv_id = None;
                        l.link = None;
                        store::cs_set_link(c, l.id, l.mv_id, l.link, l.link_rule.as_deref())?;
                    }
                }
                self.counters.deprovisions += 1;
            }
        }
        Ok(())
    }

    /// Outbound: for every target connector, provision/join/deprovision and compute the pending export.
    fn outbound(&mut self, c: &Connection, mv: &MvObject) -> Result<Vec<i64>> {
        let mut more = Vec::new();
        let params = &self.engine.config.parameters;
        let scope = MvScope { conn: c, obj: mv };
        let mut by_connector: BTreeMap<String, Vec<&Rule>> = BTreeMap::new();
        let mut all_targets: BTreeSet<String> = BTreeSet::new();
        for r in self.engine.rules.outbound(&mv.object_type) {
            all_targets.insert(r.connector.clone());
            if evaluate_scope(&r.scope, &scope).in_scope {
                by_connector.entry(r.connector.clone()).or_default().push(r);
            }
        }
        let linked = store::cs_by_mv(c, mv.id)?;
        for target in &all_targets {
            let Some(&tid) = self.ids.get(target) else {
                continue;
            };
            let existing = linked.iter().find(|l| l.connector_id == tid).cloned();
            let rules = by_connector.get(target).cloned().unwrap_or_default();
            if rules.is_empty() {
                if let Some(mut l) = existing
                    && l.link == Some(LinkKind::Provisioned)
                {
                    let action = l
                        .link_rule
                        .as_deref()
                        .and_then(|n| self.engine.rules.get(n))
                        .map(|r| r.deprovision)
                        .unwrap_or(Deprovision::Delete);
                    self.deprovision(c, &mut l, action, false)?;
                }
                continue;
            }
            let desired = self.desired(c, tid, mv, &rules, params)?;
            let mut cs = match existing {
                Some(l) => l,
                None => match self.outbound_join(c, tid, mv, &rules)? {
                    Some(l) => l,
                    None => {
                        let Some(pr) = rules.iter().find(|r| r.link_type == LinkType::Provision)
                        else {
                            continue;
                        };
                        let Some(dn) = desired.dn.clone() else {
                            self.errors.push((
                                format!("mv:{}", mv.id),
                                format!(
                                    "rule '{}' provisions to '{}' but no flow sets 'dn'",
                                    pr.name, target
                                ),
                            ));
                            self.counters.sync_errors += 1;
                            continue;
                        };
                        if let Some(clash) = store::cs_by_dn(c, tid, &dn)?
                            && clash.mv_id.is_some()
                        {
                            self.errors.push((
                                    dn.to_string(),
                                    format!("cannot provision: '{dn}' already exists in '{target}' and is linked to another identity"),
                                ));
                            self.counters.sync_errors += 1;
                            continue;
                        }
                        let o = CsObject {
                            id: 0,
                            connector_id: tid,
                            anchor: None,
                            dn,
                            object_type: pr.target_type.clone(),
                            attributes: Attributes::new(),
                            unconfirmed: None,
                            placeholder: true,
                            mv_id: Some(mv.id),
                            link: Some(LinkKind::Provisioned),
                            link_rule: Some(pr.name.clone()),
                            deleted: false,
                            sync_pending: false,
                        };
                        let id = store::cs_insert(c, &o, 0)?;
                        self.counters.provisions += 1;
                        // Referrers can now resolve this object; those still pending are
                        // evaluated later in the run anyway.
                        for r in store::mv_referrers(c, mv.id)? {
                            if !store::mv_has_pending(c, r)? {
                                more.push(r);
                            }
                        }
                        CsObject { id, ..o }
                    }
                },
            };
            self.write_pending(c, &mut cs, &desired)?;
        }
        Ok(more)
    }

    fn outbound_join(
        &mut self,
        c: &Connection,
        tid: i64,
        mv: &MvObject,
        rules: &[&Rule],
    ) -> Result<Option<CsObject>> {
        let Some(jr) = rules.iter().find(|r| !r.join.is_empty()) else {
            return Ok(None);
        };
        let pool = match self.joinable.entry(tid) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(JoinPool {
                objects: store::cs_joinable(c, tid)?,
                by_attr: HashMap::new(),
            }),
        };
        for group in &jr.join {
            // Positions in the pool of the objects every clause so far matched.
            let mut cands: Option<Vec<usize>> = None;
            for cl in &group.clauses {
                let texts: Vec<String> = mv
                    .attributes
                    .get(&cl.source)
                    .map(|vs| vs.iter().map(Value::to_text).collect())
                    .unwrap_or_default();
                let mut found = Vec::new();
                for i in pool.candidates(&cl.target, &texts) {
                    let o = &pool.objects[i];
                    let exact = !cl.case_sensitive
                        || o.attributes
                            .get(&cl.target)
                            .is_some_and(|vs| vs.iter().any(|v| texts.contains(&v.to_text())));
                    // Linked earlier in this batch (by a join or an import-side link)?
                    if exact
                        && store::cs_head(c, o.id)?
                            .is_some_and(|h| h.mv_id.is_none() && !h.deleted && !h.placeholder)
                    {
                        found.push(i);
                    }
                }
                cands = Some(match cands {
                    None => found,
                    Some(prev) => prev.into_iter().filter(|p| found.contains(p)).collect(),
                });
            }
            if let Some([winner]) = cands.as_deref() {
                let mut o = pool.objects[*winner].clone();
                o.mv_id = Some(mv.id);
                o.link = Some(if jr.link_type == LinkType::Provision {
                    LinkKind::Provisioned
                } else {
                    LinkKind::Joined
                });
                o.link_rule = Some(jr.name.clone());
                store::cs_set_link(c, o.id, o.mv_id, o.link, o.link_rule.as_deref())?;
                self.counters.joins += 1;
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    /// Desired target state of an MV object in one target connector.
    fn desired(
        &mut self,
        c: &Connection,
        tid: i64,
        mv: &MvObject,
        rules: &[&Rule],
        params: &BTreeMap<String, String>,
    ) -> Result<Desired> {
        let ctx = ObjectContext::attributes(&mv.attributes, params);
        let mut per_attr: BTreeMap<String, Vec<(MergeType, bool, FlowValue)>> = BTreeMap::new();
        for r in rules {
            for f in &r.flows {
                match f.evaluate(&ctx) {
                    Ok(v) => {
                        let v = self.resolve_outbound_refs(c, tid, v)?;
                        per_attr.entry(f.target.clone()).or_default().push((
                            f.merge,
                            f.apply_once,
                            v,
                        ));
                    }
                    Err(e) => {
                        self.errors.push((
                            format!("mv:{}", mv.id),
                            format!("rule '{}', flow to '{}': {}", r.name, f.target, e),
                        ));
                        self.counters.sync_errors += 1;
                        per_attr.entry(f.target.clone()).or_default().push((
                            f.merge,
                            f.apply_once,
                            FlowValue::IgnoreThisFlow,
                        ));
                    }
                }
            }
        }
        let mut out = Desired::default();
        for (attr, list) in per_attr {
            let contribs: Vec<Contribution> = list
                .iter()
                .map(|(m, _, v)| Contribution {
                    precedence: 0,
                    merge: *m,
                    value: v.clone(),
                    rule: String::new(),
                    connector: String::new(),
                })
                .collect();
            let once = list.iter().any(|(_, a, _)| *a);
            let (resolved, _) = resolve(&contribs);
            let value = match resolved {
                Resolved::Keep => None,
                Resolved::Set(v) => Some(v),
            };
            if attr == "dn" {
                if let Some(v) = value.and_then(|v| v.into_iter().next()) {
                    match Dn::parse(&v.to_text()) {
                        Ok(d) => out.dn = Some(d),
                        Err(e) => {
                            self.errors.push((
                                format!("mv:{}", mv.id),
                                format!("flow to 'dn' gave an invalid DN: {e}"),
                            ));
                            self.counters.sync_errors += 1;
                        }
                    }
                }
                continue;
            }
            out.attrs.insert(attr, (value, once));
        }
        Ok(out)
    }

    /// MV references (ids) become the DNs of the referenced objects in the target connector.
    fn resolve_outbound_refs(&self, c: &Connection, tid: i64, v: FlowValue) -> Result<FlowValue> {
        let FlowValue::Values(vals) = v else {
            return Ok(v);
        };
        let mut out = Vec::with_capacity(vals.len());
        for val in vals {
            match val {
                Value::Ref(id) => {
                    let Ok(mid) = id.parse::<i64>() else { continue };
                    if let Some(dn) = store::cs_dn_by_mv(c, mid, tid)? {
                        out.push(Value::Ref(dn));
                    }
                }
                other => out.push(other),
            }
        }
        Ok(FlowValue::Values(out))
    }

    fn write_pending(
        &mut self,
        c: &Connection,
        cs: &mut CsObject,
        desired: &Desired,
    ) -> Result<()> {
        let eff = cs.effective_attributes().clone();
        let mut changes: Vec<AttributeChange> = Vec::new();
        for (attr, (value, once)) in &desired.attrs {
            let Some(new) = value else { continue };
            let old = eff.get(attr).map(Vec::as_slice).unwrap_or(&[]);
            if *once && !old.is_empty() {
                continue;
            }
            changes.extend(diff_values(attr, old, new));
        }
        if cs.placeholder {
            if let Some(dn) = &desired.dn
                && (*dn != cs.dn || dn.to_string() != cs.dn.to_string())
            {
                cs.dn = dn.clone();
                store::cs_update(c, cs)?;
            }
            let attrs: Vec<AttributeChange> = desired
                .attrs
                .iter()
                .filter_map(|(a, (v, _))| {
                    v.as_ref()
                        .filter(|v| !v.is_empty())
                        .map(|v| AttributeChange::Replace {
                            name: a.clone(),
                            values: v.clone(),
                        })
                })
                .collect();
            store::pending_put(
                c,
                &PendingExport {
                    cs_id: cs.id,
                    connector_id: cs.connector_id,
                    op: "add".into(),
                    dn: cs.dn.to_string(),
                    new_dn: None,
                    changes: attrs,
                    attempts: 0,
                    last_error: None,
                },
            )?;
            return Ok(());
        }
        let new_dn = desired
            .dn
            .as_ref()
            .filter(|d| **d != cs.dn || d.to_string() != cs.dn.to_string())
            .map(|d| d.to_string());
        if changes.is_empty() && new_dn.is_none() {
            store::pending_clear(c, cs.id)?;
            return Ok(());
        }
        store::pending_put(
            c,
            &PendingExport {
                cs_id: cs.id,
                connector_id: cs.connector_id,
                op: "update".into(),
                dn: cs.dn.to_string(),
                new_dn,
                changes,
                attempts: 0,
                last_error: None,
            },
        )?;
        Ok(())
    }
}

/// Desired target values: attribute -> (values or None to leave alone, apply-once).
#[derive(Default)]
struct Desired {
    dn: Option<Dn>,
    attrs: BTreeMap<String, (Option<Vec<Value>>, bool)>,
}

enum Resolved {
    Keep,
    Set(Vec<Value>),
}

/// Resolves contributions (already in precedence order) into a value.
/// Returns the winning (rule, connector) for provenance.
fn resolve(list: &[Contribution]) -> (Resolved, Option<(String, String)>) {
    let merge = list.first().map(|c| c.merge).unwrap_or_default();
    let mut ignored = false;
    match merge {
        MergeType::Update => {
            for c in list {
                match &c.value {
                    FlowValue::Values(v) if !v.is_empty() => {
                        return (
                            Resolved::Set(v.clone()),
                            Some((c.rule.clone(), c.connector.clone())),
                        );
                    }
                    FlowValue::Values(_) => {}
                    FlowValue::AuthoritativeNull => {
                        return (
                            Resolved::Set(Vec::new()),
                            Some((c.rule.clone(), c.connector.clone())),
                        );
                    }
                    FlowValue::IgnoreThisFlow => ignored = true,
                }
            }
        }
        MergeType::Merge | MergeType::MergeCaseInsensitive => {
            let mut out: Vec<Value> = Vec::new();
            let mut winner = None;
            for c in list {
                match &c.value {
                    FlowValue::Values(v) => {
                        for x in v {
                            let dup = out.iter().any(|y| {
                                if merge == MergeType::MergeCaseInsensitive {
                                    y.to_text().eq_ignore_ascii_case(&x.to_text())
                                } else {
                                    y == x
                                }
                            });
                            if !dup {
                                out.push(x.clone());
                            }
                        }
                        if winner.is_none() && !v.is_empty() {
                            winner = Some((c.rule.clone(), c.connector.clone()));
                        }
                    }
                    FlowValue::AuthoritativeNull => break,
                    FlowValue::IgnoreThisFlow => ignored = true,
                }
            }
            if !out.is_empty() || !ignored {
                return (Resolved::Set(out), winner);
            }
        }
    }
    if ignored {
        (Resolved::Keep, None)
    } else {
        (Resolved::Set(Vec::new()), None)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::engine::{CyclePolicy, Engine, RunOptions, RunProfile};
    use crate::store::LinkKind;

    const CONFIG: &str = r#"
[state]
path = "state.db"

[safety]
staging_mode = true

[[connectors]]
name = "hr"
type = "csv"
[connectors.settings]
path = "hr.csv"
anchor_column = "id"
object_type = "person"

[[connectors]]
name = "cloud"
type = "csv"
[connectors.settings]
path = "cloud.csv"
anchor_column = "oid"
object_type = "user"
dn_template = "CN={oid},OU=Users"

[[rules]]
name = "hr in"
direction = "inbound"
connector = "hr"
source_type = "person"
target_type = "person"
precedence = 100
link_type = "provision"
[[rules.join]]
clauses = [{ source = "id", target = "key" }]
[[rules.flows]]
target = "key"
source = "id"
[[rules.flows]]
target = "name"
source = "name"

[[rules]]
name = "cloud in"
direction = "inbound"
connector = "cloud"
source_type = "user"
target_type = "person"
precedence = 200
[[rules.join]]
clauses = [{ source = "key", target = "key" }]
[[rules.flows]]
target = "cloudId"
source = "oid"

[[rules]]
name = "out"
direction = "outbound"
connector = "cloud"
source_type = "person"
target_type = "user"
precedence = 100
link_type = "provision"
deprovision = "delete"
[[rules.flows]]
target = "dn"
expression = 'IIF(IsPresent([cloudId]), "CN=" & [cloudId] & ",OU=Users", "CN=" & [key] & ",OU=New")'
[[rules.flows]]
target = "key"
source = "key"
[[rules.flows]]
target = "name"
source = "name"
"#;

    /// A staging server's pending adds disappear when the import finds the objects another
    /// server created (another DN, joined by an inbound rule); the imported objects take the
    /// placeholders' provisioning link, so a scope exit plans their delete.
    #[test]
    fn imported_objects_replace_pending_adds_of_the_same_identity() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        std::fs::write(d.join("dirsync.toml"), CONFIG).expect("config");
        std::fs::write(d.join("hr.csv"), "id,name\n1,Ann\n2,Bob\n").expect("hr");
        std::fs::write(d.join("cloud.csv"), "oid,key,name\n").expect("cloud");
        let mut eng =
            Engine::open(Config::load(&d.join("dirsync.toml")).expect("load")).expect("open");
        let run = RunOptions {
            allow_empty_import: true,
            ..RunOptions::default()
        };
        eng.cycle(CyclePolicy::Initial, &run).expect("initial");
        let plan = eng.plan().expect("plan");
        assert_eq!(plan.summary.adds, 2, "{}", plan.to_table());

        // The active server created both objects (ids g1, g2).
        std::fs::write(d.join("cloud.csv"), "oid,key,name\ng1,1,Ann\ng2,2,Bob\n").expect("cloud");
        eng.cycle(CyclePolicy::Delta, &run).expect("delta");
        let plan = eng.plan().expect("plan");
        assert!(plan.objects.is_empty(), "{}", plan.to_table());
        let cs = eng.cs_objects("cloud", None, None).expect("cs");
        let mut dns: Vec<String> = cs.iter().map(|o| o.dn.to_string()).collect();
        dns.sort();
        assert_eq!(dns, vec!["CN=g1,OU=Users", "CN=g2,OU=Users"]);
        assert!(cs.iter().all(|o| !o.placeholder
            && o.mv_id.is_some()
            && o.link == Some(LinkKind::Provisioned)
            && o.link_rule.as_deref() == Some("out")));

        // Bob leaves the source: his cloud object is deprovisioned.
        std::fs::write(d.join("hr.csv"), "id,name\n1,Ann\n").expect("hr");
        eng.cycle(CyclePolicy::Delta, &run).expect("delta 2");
        let plan = eng.plan().expect("plan");
        assert_eq!(plan.summary.deletes, 1, "{}", plan.to_table());
        assert_eq!(plan.objects[0].dn, "CN=g2,OU=Users");
        assert_eq!(plan.objects.len(), 1, "{}", plan.to_table());
    }

    const REF_CONFIG: &str = r#"
[state]
path = "state.db"

[safety]
staging_mode = true

[[connectors]]
name = "src"
type = "ldif"
[connectors.settings]
path = "src.ldif"
anchor_attribute = "id"
[connectors.settings.object_types]
inetOrgPerson = "person"
groupOfNames = "group"

[[connectors]]
name = "cloud"
type = "ldif"
[connectors.settings]
path = "cloud.ldif"
anchor_attribute = "oid"
[connectors.settings.object_types]
inetOrgPerson = "user"
groupOfNames = "group"

[[rules]]
name = "src person in"
direction = "inbound"
connector = "src"
source_type = "person"
target_type = "person"
precedence = 100
link_type = "provision"
[[rules.join]]
clauses = [{ source = "id", target = "key" }]
[[rules.flows]]
target = "key"
source = "id"

[[rules]]
name = "src group in"
direction = "inbound"
connector = "src"
source_type = "group"
target_type = "group"
precedence = 110
link_type = "provision"
[[rules.join]]
clauses = [{ source = "id", target = "key" }]
[[rules.flows]]
target = "key"
source = "id"
[[rules.flows]]
target = "member"
source = "member"

[[rules]]
name = "cloud user in"
direction = "inbound"
connector = "cloud"
source_type = "user"
target_type = "person"
precedence = 200
[[rules.join]]
clauses = [{ source = "key", target = "key" }]
[[rules.flows]]
target = "cloudId"
source = "oid"

[[rules]]
name = "cloud group in"
direction = "inbound"
connector = "cloud"
source_type = "group"
target_type = "group"
precedence = 210
[[rules.join]]
clauses = [{ source = "key", target = "key" }]
[[rules.flows]]
target = "cloudId"
source = "oid"

[[rules]]
name = "out user"
direction = "outbound"
connector = "cloud"
source_type = "person"
target_type = "user"
precedence = 100
link_type = "provision"
[[rules.flows]]
target = "dn"
expression = 'IIF(IsPresent([cloudId]), "uid=" & [cloudId] & ",ou=cloud", "uid=" & [key] & ",ou=new")'
[[rules.flows]]
target = "objectClass"
constant = "inetOrgPerson"
[[rules.flows]]
target = "key"
source = "key"

[[rules]]
name = "out group"
direction = "outbound"
connector = "cloud"
source_type = "group"
target_type = "group"
precedence = 110
link_type = "provision"
[[rules.flows]]
target = "dn"
expression = 'IIF(IsPresent([cloudId]), "cn=" & [cloudId] & ",ou=cloud", "cn=" & [key] & ",ou=new")'
[[rules.flows]]
target = "objectClass"
constant = "groupOfNames"
[[rules.flows]]
target = "key"
source = "key"
[[rules.flows]]
target = "member"
source = "member"
"#;

    /// When the imported objects replace placeholders that a pending add of another
    /// placeholder references (the active server created the users, its group add is still to
    /// come), that pending add moves to the real DNs.
    #[test]
    fn pending_adds_referencing_replaced_placeholders_follow_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        std::fs::write(d.join("dirsync.toml"), REF_CONFIG).expect("config");
        std::fs::write(
            d.join("src.ldif"),
            "dn: uid=u1,ou=src\nobjectClass: inetOrgPerson\nid: 1\n\n\
             dn: uid=u2,ou=src\nobjectClass: inetOrgPerson\nid: 2\n\n\
             dn: cn=grp,ou=src\nobjectClass: groupOfNames\nid: 3\nmember: uid=u1,ou=src\nmember: uid=u2,ou=src\n",
        )
        .expect("src");
        std::fs::write(d.join("cloud.ldif"), "").expect("cloud");
        let mut eng =
            Engine::open(Config::load(&d.join("dirsync.toml")).expect("load")).expect("open");
        let run = RunOptions {
            allow_empty_import: true,
            ..RunOptions::default()
        };
        eng.cycle(CyclePolicy::Initial, &run).expect("initial");
        let members = |eng: &Engine| {
            let plan = eng.plan().expect("plan");
            let g = plan
                .objects
                .iter()
                .find(|o| o.object_type == "group")
                .unwrap_or_else(|| panic!("{}", plan.to_table()));
            assert_eq!(g.operation, "add");
            let mut m = g
                .attributes
                .iter()
                .find(|a| a.attribute == "member")
                .map(|a| a.new.clone())
                .unwrap_or_default();
            m.sort();
            (plan.objects.len(), m)
        };
        assert_eq!(
            members(&eng),
            (
                3,
                vec!["uid=1,ou=new".to_string(), "uid=2,ou=new".to_string()]
            )
        );
        std::fs::write(
            d.join("cloud.ldif"),
            "dn: uid=g1,ou=cloud\nobjectClass: inetOrgPerson\noid: g1\nkey: 1\n\n\
             dn: uid=g2,ou=cloud\nobjectClass: inetOrgPerson\noid: g2\nkey: 2\n",
        )
        .expect("cloud");
        eng.run_profile("cloud", RunProfile::FullImport, &run, None)
            .expect("import");
        eng.run_profile("cloud", RunProfile::DeltaSync, &run, None)
            .expect("sync");
        assert_eq!(
            members(&eng),
            (
                1,
                vec!["uid=g1,ou=cloud".to_string(), "uid=g2,ou=cloud".to_string()]
            )
        );
    }
}

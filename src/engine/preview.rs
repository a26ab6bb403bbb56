//! Single-object sync (the `Sync-ADSyncCSObject` equivalent): synchronizes one connector-space
//! object through the real sync code path inside one state transaction, reports what happened
//! (inbound rules considered, the join/projection decision, metaverse attribute changes with
//! their contributing rule, the export each target connector would get), then rolls the
//! transaction back (preview) or commits it.
//!
//! The "before" side of the report is read through a second, read-only connection to the state:
//! SQLite (WAL) shows it the last committed state while the sync's transaction is open, so any
//! object the sync touched (a metaverse object it joined, a target object it provisioned) can be
//! compared with its state before the sync.

use super::sync::CsScope;
use super::{Engine, EngineError, Result, StepCounters, history::ObjectError, plan};
use crate::config::{Direction, LinkType};
use crate::model::{Dn, Value};
use crate::rules::evaluate_scope;
use crate::store::{self, CsObject, LinkKind, MvObject, StoreError};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Names one connector-space object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectRef {
    /// By distinguished name (RFC 4514).
    Dn(String),
    /// By anchor (the connector's immutable identifier).
    Anchor(String),
}

/// One inbound rule of the object's connector as the sync considered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleEvaluation {
    /// Rule name.
    pub rule: String,
    /// Precedence (lower wins).
    pub precedence: i64,
    /// `join` or `provision`.
    pub link_type: LinkType,
    /// Metaverse object type the rule writes.
    pub target_type: String,
    /// The rule's source type is the object's type.
    pub applies: bool,
    /// In scope (false when the rule does not apply).
    pub in_scope: bool,
    /// The scoping group that matched (1-based).
    pub group: Option<usize>,
    /// Why in or out.
    pub reason: String,
}

/// What the sync did with the object's link to the metaverse.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkDecision {
    /// `join`, `project`, `stay`, `disconnect`, `delete` or `none`.
    pub action: String,
    /// The rule that made the link (join, project, stay).
    pub rule: Option<String>,
    /// The link kind after the sync.
    pub link: Option<LinkKind>,
    /// Metaverse object linked before.
    pub mv_before: Option<i64>,
    /// Metaverse object linked after.
    pub mv_after: Option<i64>,
    /// Human explanation.
    pub reason: String,
}

/// One metaverse attribute that changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MvAttributeChange {
    /// Attribute.
    pub attribute: String,
    /// Values before the sync.
    pub old: Vec<Value>,
    /// Values after the sync (empty: removed).
    pub new: Vec<Value>,
    /// The rule whose flow set the new value (from the provenance).
    pub rule: Option<String>,
    /// The connector of the contributing object.
    pub connector: Option<String>,
}

/// The metaverse object of the sync.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MvPreview {
    /// Metaverse id.
    pub id: i64,
    /// Object type.
    pub object_type: String,
    /// `created`, `updated`, `unchanged` or `deleted`.
    pub outcome: String,
    /// Changed attributes.
    pub changes: Vec<MvAttributeChange>,
    /// Attributes after the sync (empty when deleted).
    pub attributes: BTreeMap<String, Vec<Value>>,
}

/// The export a connector-space object linked to the metaverse object has before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportPreview {
    /// Connector.
    pub connector: String,
    /// DN of the object in that connector (for a provisioned object: the DN it gets).
    pub dn: String,
    /// Link kind after the sync (None: unlinked by this sync).
    pub link: Option<LinkKind>,
    /// The pending export before the sync.
    pub before: Option<plan::ObjectPlan>,
    /// The pending export after the sync: what the next export writes.
    pub after: Option<plan::ObjectPlan>,
    /// This sync changed the pending export.
    pub changed: bool,
}

/// Result of a single-object sync.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectSyncReport {
    /// The changes were committed (false: preview, rolled back).
    pub committed: bool,
    /// Connector of the object.
    pub connector: String,
    /// The connector-space object as the sync read it.
    pub object: CsObject,
    /// The inbound rules of the connector, in precedence order.
    pub inbound_rules: Vec<RuleEvaluation>,
    /// Join, projection or disconnection.
    pub link: LinkDecision,
    /// The metaverse object (None when the object is not and was not linked).
    pub metaverse: Option<MvPreview>,
    /// Per linked connector-space object (the targets): the export it gets.
    pub exports: Vec<ExportPreview>,
    /// Counters of the sync (joins, projections, provisions, metaverse changes...).
    pub counters: StepCounters,
    /// Per-object sync errors.
    pub errors: Vec<ObjectError>,
}

impl Engine {
    /// Synchronizes one connector-space object as a sync run would (inbound rules, join or
    /// projection, metaverse recompute, outbound provisioning and pending exports) and reports
    /// every decision. With `commit` false nothing is kept (the transaction is rolled back);
    /// with `commit` true the result is committed and the object is no longer pending.
    /// Nothing is exported either way.
    pub fn sync_object(
        &mut self,
        connector: &str,
        object: &ObjectRef,
        commit: bool,
    ) -> Result<ObjectSyncReport> {
        self.check_cancel()?;
        let (dn, anchor) = match object {
            ObjectRef::Dn(d) => (Some(d.as_str()), None),
            ObjectRef::Anchor(a) => (None, Some(a.as_str())),
        };
        let found = self.cs_objects(connector, dn, anchor)?;
        let Some(cs) = found.into_iter().next() else {
            let what = match object {
                ObjectRef::Dn(d) => format!("DN '{d}'"),
                ObjectRef::Anchor(a) => format!("anchor '{a}'"),
            };
            return Err(EngineError::NotFound(format!(
                "connector '{connector}' has no object with {what}"
            )));
        };
        let inbound_rules = self.inbound_evaluation(connector, &cs);
        let before = self.before_reader()?;
        let mut report = self.in_transaction(commit, |conn| {
            let counters = self.sync_one_in_transaction(conn, cs.id)?;
            self.object_report(conn, &before, connector, &cs, counters)
        })?;
        report.committed = commit;
        report.inbound_rules = inbound_rules;
        tracing::info!(
            connector,
            dn = %cs.dn,
            commit,
            action = %report.link.action,
            exports = report.exports.iter().filter(|e| e.changed).count(),
            "single-object sync"
        );
        Ok(report)
    }

    /// A read-only connection to the state: the committed state while the sync runs.
    fn before_reader(&self) -> Result<Connection> {
        let c = Connection::open_with_flags(
            self.store.path(),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(StoreError::from)?;
        c.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(StoreError::from)?;
        // Pin the snapshot now, before the sync writes anything.
        c.execute_batch("BEGIN")?;
        c.query_row("SELECT COUNT(*) FROM connector", [], |r| r.get::<_, i64>(0))?;
        Ok(c)
    }

    /// Every inbound rule of the connector evaluated against the object, as the sync does.
    fn inbound_evaluation(&self, connector: &str, cs: &CsObject) -> Vec<RuleEvaluation> {
        let scope = CsScope {
            conn: self.store.conn(),
            obj: cs,
        };
        self.rules
            .rules
            .iter()
            .filter(|r| r.direction == Direction::Inbound && r.connector == connector)
            .map(|r| {
                let applies = r.source_type == cs.object_type;
                let (in_scope, group, reason) = if !applies {
                    (
                        false,
                        None,
                        format!(
                            "the rule reads '{}' objects, this one is '{}'",
                            r.source_type, cs.object_type
                        ),
                    )
                } else if cs.placeholder {
                    (
                        false,
                        None,
                        "the object was provisioned and not yet imported: inbound rules wait for the import".into(),
                    )
                } else {
                    let d = evaluate_scope(&r.scope, &scope);
                    (d.in_scope, d.group.map(|g| g + 1), d.reason)
                };
                RuleEvaluation {
                    rule: r.name.clone(),
                    precedence: r.precedence,
                    link_type: r.link_type,
                    target_type: r.target_type.clone(),
                    applies,
                    in_scope,
                    group,
                    reason,
                }
            })
            .collect()
    }

    /// Compares the state after the sync (`c`, in the open transaction) with the committed
    /// state (`before`).
    fn object_report(
        &self,
        c: &Connection,
        before: &Connection,
        connector: &str,
        cs: &CsObject,
        counters: StepCounters,
    ) -> Result<ObjectSyncReport> {
        let after_cs = store::cs_get(c, cs.id)?;
        let mv_before = cs.mv_id;
        let mv_after = after_cs.as_ref().and_then(|o| o.mv_id);
        let link = self.link_decision(cs, after_cs.as_ref(), &counters);
        let mv_id = mv_after.or(mv_before);
        let metaverse = match mv_id {
            Some(id) => Some(mv_preview(
                store::mv_get(before, id)?,
                store::mv_get(c, id)?,
                id,
            )),
            None => None,
        };
        // The objects linked to the metaverse object before or after, the synced one first.
        let mut linked: Vec<i64> = vec![cs.id];
        if let Some(id) = mv_id {
            for o in store::cs_by_mv(before, id)?
                .into_iter()
                .chain(store::cs_by_mv(c, id)?)
            {
                if !linked.contains(&o.id) {
                    linked.push(o.id);
                }
            }
        }
        let names = store::connector_names(c)?;
        let mut exports = Vec::new();
        for id in linked {
            let pending_before = store::pending_get(before, id)?;
            let pending_after = store::pending_get(c, id)?;
            let changed = pending_before.as_ref().map(strip_attempts)
                != pending_after.as_ref().map(strip_attempts);
            let now = store::cs_get(c, id)?;
            let then = store::cs_get(before, id)?;
            let Some(obj) = now.as_ref().or(then.as_ref()) else {
                continue;
            };
            if id == cs.id && pending_before.is_none() && pending_after.is_none() {
                continue;
            }
            exports.push(ExportPreview {
                connector: names.get(&obj.connector_id).cloned().unwrap_or_default(),
                dn: obj.dn.to_string(),
                link: now.as_ref().and_then(|o| o.link),
                before: match pending_before {
                    Some(p) => Some(plan::object_plan(before, &names, p)?),
                    None => None,
                },
                after: match pending_after {
                    Some(p) => Some(plan::object_plan(c, &names, p)?),
                    None => None,
                },
                changed,
            });
        }
        let errors = counters.errors.clone();
        Ok(ObjectSyncReport {
            committed: false,
            connector: connector.to_string(),
            object: cs.clone(),
            inbound_rules: Vec::new(),
            link,
            metaverse,
            exports,
            counters,
            errors,
        })
    }

    fn link_decision(
        &self,
        cs: &CsObject,
        after: Option<&CsObject>,
        counters: &StepCounters,
    ) -> LinkDecision {
        let mv_before = cs.mv_id;
        let mv_after = after.and_then(|o| o.mv_id);
        let rule = after.and_then(|o| o.link_rule.clone());
        let link = after.and_then(|o| o.link);
        let (action, reason) = if cs.deleted {
            (
                "delete",
                "the last import found the object deleted: it leaves the connector space"
                    .to_string(),
            )
        } else if cs.placeholder {
            (
                "none",
                "provisioned by dirsync and not yet confirmed by an import: only its metaverse object is evaluated".to_string(),
            )
        } else {
            match (mv_before, mv_after) {
                (Some(_), None) => (
                    "disconnect",
                    "no inbound rule has the object in scope any more".to_string(),
                ),
                (Some(a), Some(b)) if a == b => (
                    "stay",
                    format!(
                        "stays linked to metaverse object {b} ({})",
                        link.map(|l| format!("{l:?}").to_lowercase())
                            .unwrap_or_default()
                    ),
                ),
                (_, Some(b)) => match link {
                    Some(LinkKind::Projected) => (
                        "project",
                        format!(
                            "no metaverse object matched the join rules: rule '{}' projected metaverse object {b}",
                            rule.as_deref().unwrap_or_default()
                        ),
                    ),
                    _ => (
                        "join",
                        format!(
                            "rule '{}' joined metaverse object {b}",
                            rule.as_deref().unwrap_or_default()
                        ),
                    ),
                },
                (None, None) => ("none", self.why_not_linked(cs, counters)),
            }
        };
        LinkDecision {
            action: action.into(),
            rule: if action == "disconnect" || action == "delete" {
                cs.link_rule.clone()
            } else {
                rule
            },
            link,
            mv_before,
            mv_after,
            reason,
        }
    }

    /// Why an unlinked object stayed unlinked.
    fn why_not_linked(&self, cs: &CsObject, counters: &StepCounters) -> String {
        let connector = store::connector_names(self.store.conn())
            .ok()
            .and_then(|n| n.get(&cs.connector_id).cloned())
            .unwrap_or_default();
        let scope = CsScope {
            conn: self.store.conn(),
            obj: cs,
        };
        let in_scope: Vec<&crate::rules::Rule> = self
            .rules
            .inbound(&connector, &cs.object_type)
            .filter(|r| evaluate_scope(&r.scope, &scope).in_scope)
            .collect();
        if counters.sync_errors > 0 {
            return "the sync reported an error for this object (see errors)".into();
        }
        if in_scope.is_empty() {
            return "no inbound rule has the object in scope".into();
        }
        match in_scope.iter().find(|r| r.link_type == LinkType::Provision) {
            None => {
                "no metaverse object matched the join rules and no in-scope rule projects".into()
            }
            Some(r) => format!(
                "no metaverse object matched and rule '{}' projects only objects with a value for its join attributes",
                r.name
            ),
        }
    }
}

/// A pending export without its retry bookkeeping (for before/after comparison).
fn strip_attempts(p: &store::PendingExport) -> store::PendingExport {
    store::PendingExport {
        attempts: 0,
        last_error: None,
        ..p.clone()
    }
}

fn mv_preview(before: Option<MvObject>, after: Option<MvObject>, id: i64) -> MvPreview {
    let empty = BTreeMap::new();
    let old = before.as_ref().map(|m| &m.attributes).unwrap_or(&empty);
    let new = after.as_ref().map(|m| &m.attributes).unwrap_or(&empty);
    let outcome = match (&before, &after) {
        (None, Some(_)) => "created",
        (Some(_), None) => "deleted",
        _ if old != new => "updated",
        _ => "unchanged",
    };
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut changes = Vec::new();
    for n in names {
        let o = old.get(n).cloned().unwrap_or_default();
        let v = new.get(n).cloned().unwrap_or_default();
        if o == v {
            continue;
        }
        // The provenance names who set the new value; a removed value names who set the old one.
        let prov = after
            .as_ref()
            .and_then(|m| m.provenance.get(n))
            .or_else(|| before.as_ref().and_then(|m| m.provenance.get(n)));
        changes.push(MvAttributeChange {
            attribute: n.clone(),
            old: o,
            new: v,
            rule: prov.map(|p| p.rule.clone()).filter(|r| !r.is_empty()),
            connector: prov.map(|p| p.connector.clone()).filter(|r| !r.is_empty()),
        });
    }
    let object_type = after
        .as_ref()
        .or(before.as_ref())
        .map(|m| m.object_type.clone())
        .unwrap_or_default();
    MvPreview {
        id,
        object_type,
        outcome: outcome.into(),
        changes,
        attributes: new.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

impl ObjectRef {
    /// Checks the reference: a DN must parse (RFC 4514), an anchor must not be empty.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match self {
            ObjectRef::Dn(d) => Dn::parse(d)
                .map(|_| ())
                .map_err(|e| format!("dn '{d}': {e}")),
            ObjectRef::Anchor(a) if a.is_empty() => Err("anchor is empty".into()),
            ObjectRef::Anchor(_) => Ok(()),
        }
    }
}

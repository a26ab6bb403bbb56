//! Import: stream a connector's objects into its connector space in one transaction.
//!
//! A failed import rolls back whole (nothing changes); a full import that returns nothing
//! where the connector space has objects is refused unless the admin confirms; objects a full
//! import did not see are marked deleted (the sync stage decides what that means). An import
//! also confirms earlier exports: imported values replace the unconfirmed ones.

use super::{
    Engine, EngineError, Result, RunOptions, RunProfile, StepCounters, build_connector, crash_point,
};
use crate::connectors::{ConnectorError, ConnectorSpaceView, ImportChange, ImportSink};
use crate::model::{Attributes, Dn, Object, Value, retarget_references};
use crate::store::{self, ConnectorCounter, CsObject, StoreError};
use rusqlite::Connection;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Read view of a connector space for delta imports.
struct CsView<'a> {
    conn: &'a Connection,
    connector_id: i64,
}

fn to_object(o: CsObject) -> Object {
    let attributes = o.attributes;
    Object {
        anchor: o.anchor,
        dn: o.dn,
        object_type: o.object_type,
        attributes,
    }
}

impl ConnectorSpaceView for CsView<'_> {
    fn by_anchor(&self, anchor: &str) -> Option<Object> {
        store::cs_by_anchor(self.conn, self.connector_id, anchor)
            .ok()
            .flatten()
            .filter(|o| !o.deleted && !o.placeholder)
            .map(to_object)
    }
    fn by_dn(&self, dn: &Dn) -> Option<Object> {
        store::cs_by_dn(self.conn, self.connector_id, dn)
            .ok()
            .flatten()
            .filter(|o| !o.deleted && !o.placeholder)
            .map(to_object)
    }
    fn descendants(&self, dn: &Dn) -> Vec<Object> {
        store::cs_descendants(self.conn, self.connector_id, dn)
            .unwrap_or_default()
            .into_iter()
            .filter(|o| !o.deleted && !o.placeholder)
            .map(to_object)
            .collect()
    }
}

/// Applies imported changes to the connector space.
struct Applier<'a> {
    conn: &'a Connection,
    connector_id: i64,
    generation: Option<i64>,
    counters: RefCell<StepCounters>,
    seen: u64,
    cancel: Arc<AtomicBool>,
    error: Option<StoreError>,
}

impl Applier<'_> {
    fn apply(&mut self, change: ImportChange) -> std::result::Result<(), StoreError> {
        match change {
            ImportChange::Upsert(obj) => self.upsert(obj),
            ImportChange::Delete { anchor } => {
                if let Some(mut o) = store::cs_by_anchor(self.conn, self.connector_id, &anchor)?
                    && !o.deleted
                {
                    o.deleted = true;
                    o.sync_pending = true;
                    store::cs_update(self.conn, &o)?;
                    self.counters.borrow_mut().deletes += 1;
                }
                Ok(())
            }
        }
    }

    fn upsert(&mut self, obj: Object) -> std::result::Result<(), StoreError> {
        self.seen += 1;
        let Some(anchor) = obj.anchor.clone() else {
            return Err(StoreError::Corrupt(format!(
                "connector returned object {} without an anchor",
                obj.dn
            )));
        };
        let existing = match store::cs_by_anchor(self.conn, self.connector_id, &anchor)? {
            Some(o) => Some(o),
            // Export confirmation of an add whose result was never recorded (crash, timeout):
            // adopt the placeholder with the same DN instead of creating a duplicate.
            None => store::cs_by_dn(self.conn, self.connector_id, &obj.dn)?
                .filter(|o| o.placeholder || o.anchor.is_none()),
        };
        let mut counters = self.counters.borrow_mut();
        match existing {
            Some(mut o) => {
                let renamed = o.dn != obj.dn || o.dn.to_string() != obj.dn.to_string();
                let changed = renamed
                    || o.attributes != obj.attributes
                    || o.object_type != obj.object_type
                    || o.deleted
                    || o.placeholder
                    || o.unconfirmed.is_some();
                if changed {
                    // Value-level changes since the last sync, when they tell the whole story.
                    let plain = !renamed
                        && o.object_type == obj.object_type
                        && !o.deleted
                        && !o.placeholder
                        && o.mv_id.is_some();
                    let delta = if plain && o.unconfirmed.is_none() {
                        let before = if o.sync_pending {
                            store::cs_delta_get(self.conn, o.id)?.filter(|d| !d.confirmed)
                        } else {
                            Some(store::ObjectDelta::default())
                        };
                        before.and_then(|b| value_delta(b, &o.attributes, &obj.attributes))
                    } else if plain
                        && !o.sync_pending
                        && o.unconfirmed.as_ref() == Some(&obj.attributes)
                    {
                        // An export read back as written: nothing changed on the target side.
                        value_delta(
                            store::ObjectDelta::default(),
                            &o.attributes,
                            &obj.attributes,
                        )
                        .map(|d| store::ObjectDelta {
                            confirmed: true,
                            ..d
                        })
                    } else {
                        None
                    };
                    // Only changes of large attributes are worth recording: everything else
                    // is cheap to evaluate whole (and the full path runs without a record).
                    let delta = delta.filter(store::ObjectDelta::is_large);
                    let old_dn = o.dn.clone();
                    o.anchor = Some(anchor);
                    o.dn = obj.dn;
                    o.object_type = obj.object_type;
                    o.attributes = obj.attributes;
                    o.unconfirmed = None;
                    o.deleted = false;
                    o.placeholder = false;
                    o.sync_pending = true;
                    match &delta {
                        Some(d) => {
                            store::cs_update_values(self.conn, &o, d)?;
                            store::cs_delta_put(self.conn, o.id, d)?;
                        }
                        None => store::cs_update(self.conn, &o)?,
                    }
                    if renamed {
                        counters.renames += 1;
                        rewrite_references(self.conn, self.connector_id, &old_dn, &o.dn)?;
                    } else {
                        counters.updates += 1;
                    }
                } else {
                    counters.no_change += 1;
                }
                if let Some(g) = self.generation {
                    store::cs_mark_seen(self.conn, o.id, g)?;
                }
            }
            None => {
                let o = CsObject {
                    id: 0,
                    connector_id: self.connector_id,
                    anchor: Some(anchor),
                    dn: obj.dn,
                    object_type: obj.object_type,
                    attributes: obj.attributes,
                    unconfirmed: None,
                    placeholder: false,
                    mv_id: None,
                    link: None,
                    link_rule: None,
                    deleted: false,
                    sync_pending: true,
                };
                store::cs_insert(self.conn, &o, self.generation.unwrap_or(0))?;
                counters.adds += 1;
            }
        }
        Ok(())
    }
}

/// Adds the value-level changes from `old` to `new` onto `before` (the changes since the last
/// sync). None when they do not describe the change exactly: an attribute whose values repeat
/// or only changed order (the whole attribute must be re-evaluated then).
fn value_delta(
    mut before: store::ObjectDelta,
    old: &Attributes,
    new: &Attributes,
) -> Option<store::ObjectDelta> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let o = old.get(name).map(Vec::as_slice).unwrap_or(&[]);
        let n = new.get(name).map(Vec::as_slice).unwrap_or(&[]);
        if o == n {
            continue;
        }
        let os: HashSet<&Value> = o.iter().collect();
        let ns: HashSet<&Value> = n.iter().collect();
        if os.len() != o.len() || ns.len() != n.len() {
            return None;
        }
        let added: Vec<&Value> = n.iter().filter(|v| !os.contains(v)).collect();
        let removed: Vec<&Value> = o.iter().filter(|v| !ns.contains(v)).collect();
        if added.is_empty() && removed.is_empty() {
            return None;
        }
        let d = before.attributes.entry(name.clone()).or_default();
        d.len = n.len();
        for v in removed {
            if let Some(i) = d.added.iter().position(|x| x == v) {
                d.added.remove(i);
            } else {
                d.removed.push(v.clone());
            }
        }
        for v in added {
            if let Some(i) = d.removed.iter().position(|x| x == v) {
                d.removed.remove(i);
            } else {
                d.added.push(v.clone());
            }
        }
        if d.added.is_empty() && d.removed.is_empty() {
            before.attributes.remove(name);
        }
    }
    Some(before)
}

/// After a rename, reference values held by other objects of the same connector space follow it.
fn rewrite_references(
    conn: &Connection,
    connector_id: i64,
    old: &Dn,
    new: &Dn,
) -> std::result::Result<(), StoreError> {
    let old_norm = old.normalized();
    let new_text = new.to_string();
    for id in store::cs_referrers(conn, connector_id, &old_norm)? {
        if let Some(mut o) = store::cs_get(conn, id)? {
            let touched = retarget_references(&mut o.attributes, &old_norm, &new_text);
            if touched {
                store::cs_update(conn, &o)?;
            }
        }
    }
    Ok(())
}

impl ImportSink for Applier<'_> {
    fn push(&mut self, change: ImportChange) -> std::result::Result<(), ConnectorError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(ConnectorError::Cancelled);
        }
        if let Err(e) = self.apply(change) {
            let msg = e.to_string();
            self.error = Some(e);
            return Err(ConnectorError::Protocol(msg));
        }
        crash_point("import.object");
        Ok(())
    }
}

impl Engine {
    pub(super) fn import(
        &mut self,
        connector: &str,
        full_requested: bool,
        opts: &RunOptions,
        counters: &mut StepCounters,
    ) -> Result<()> {
        let mut conn = build_connector(&self.config, connector)?;
        let cid = self.connector_id(connector)?;
        let cancel = self.cancel.clone();
        let wrap = |source: ConnectorError| EngineError::Connector {
            connector: connector.to_string(),
            source,
        };
        let watermark = store::watermark(self.store.conn(), cid)?;
        let mut full = full_requested || !conn.capabilities().delta_import || watermark.is_none();
        let profile = if full {
            RunProfile::FullImport
        } else {
            RunProfile::DeltaImport
        };
        self.report(connector, profile, 0, None);
        let tx = self.store.transaction()?;
        let existing = store::cs_count(&tx, cid)?;
        let mut generation = None;
        let outcome = loop {
            let mut applier = Applier {
                conn: &tx,
                connector_id: cid,
                generation,
                counters: RefCell::new(StepCounters::default()),
                seen: 0,
                cancel: cancel.clone(),
                error: None,
            };
            let result = if full {
                let g = store::connector_counter(&tx, cid, ConnectorCounter::ImportGeneration)? + 1;
                applier.generation = Some(g);
                generation = Some(g);
                conn.full_import(&mut applier)
            } else {
                let view = CsView {
                    conn: &tx,
                    connector_id: cid,
                };
                conn.delta_import(watermark.as_deref().unwrap_or(""), &view, &mut applier)
            };
            if let Some(e) = applier.error.take() {
                return Err(e.into());
            }
            match result {
                Err(ConnectorError::WatermarkExpired(why)) if !full => {
                    tracing::warn!(connector, reason = %why, "delta watermark rejected; falling back to a full import");
                    full = true;
                    continue;
                }
                Err(ConnectorError::Cancelled) => break Err(EngineError::Cancelled),
                Err(e) => break Err(wrap(e)),
                Ok(wm) => break Ok((wm, applier.seen, applier.counters.into_inner())),
            }
        };
        let (wm, seen, c) = outcome?;
        counters.add(&c);
        if let Some(g) = generation {
            if seen == 0 && existing > 0 && !opts.allow_empty_import {
                return Err(EngineError::EmptyImport {
                    connector: connector.to_string(),
                    existing,
                });
            }
            for id in store::cs_unseen(&tx, cid, g)? {
                if let Some(mut o) = store::cs_get(&tx, id)? {
                    o.deleted = true;
                    o.sync_pending = true;
                    store::cs_update(&tx, &o)?;
                    counters.deletes += 1;
                }
            }
            store::set_connector_counter(&tx, cid, ConnectorCounter::ImportGeneration, g)?;
            store::set_connector_counter(&tx, cid, ConnectorCounter::FullImportRequired, 0)?;
        }
        store::set_watermark(&tx, cid, wm.as_deref())?;
        crash_point("import.before_commit");
        tx.commit().map_err(StoreError::from)?;
        crash_point("import.after_commit");
        self.report(connector, profile, seen, Some(seen));
        tracing::info!(
            connector,
            profile = profile.name(),
            seen,
            adds = counters.adds,
            updates = counters.updates,
            deletes = counters.deletes,
            "import finished"
        );
        Ok(())
    }
}

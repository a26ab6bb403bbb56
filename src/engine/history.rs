//! Run history: one row per cycle and per step, counters, result and per-object errors.

use super::EngineError;
use crate::store::{self, Result};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

/// An error tied to one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectError {
    /// DN or identifier.
    pub object: String,
    /// `import`, `sync` or `export`.
    pub stage: String,
    /// Detail.
    pub message: String,
}

/// Counters of a run step (the ADSync run-step names where they exist).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepCounters {
    /// Import: new objects.
    pub adds: u64,
    /// Import: changed objects.
    pub updates: u64,
    /// Import: renamed or moved objects.
    pub renames: u64,
    /// Import: deleted objects (sync: removed connector-space objects).
    pub deletes: u64,
    /// Import: objects without changes.
    pub no_change: u64,
    /// Sync: joins.
    pub joins: u64,
    /// Sync: projections.
    pub projections: u64,
    /// Sync: disconnections.
    pub disconnects: u64,
    /// Sync: metaverse objects created.
    pub mv_adds: u64,
    /// Sync: metaverse objects changed.
    pub mv_updates: u64,
    /// Sync: metaverse objects deleted.
    pub mv_deletes: u64,
    /// Sync: metaverse objects updated from changed values only (large multi-valued
    /// attributes; also counted in `mv_updates`).
    #[serde(default)]
    pub mv_value_updates: u64,
    /// Sync: target objects provisioned.
    pub provisions: u64,
    /// Sync: target objects deprovisioned.
    pub deprovisions: u64,
    /// Sync: objects with errors.
    pub sync_errors: u64,
    /// Export: adds written.
    pub export_adds: u64,
    /// Export: updates written.
    pub export_updates: u64,
    /// Export: renames written.
    pub export_renames: u64,
    /// Export: deletes written.
    pub export_deletes: u64,
    /// Export: failures.
    pub export_failures: u64,
    /// Per-object errors (stored separately, not in the counters column).
    #[serde(skip)]
    pub errors: Vec<ObjectError>,
}

impl StepCounters {
    /// Adds another step's counters.
    pub fn add(&mut self, o: &StepCounters) {
        self.adds += o.adds;
        self.updates += o.updates;
        self.renames += o.renames;
        self.deletes += o.deletes;
        self.no_change += o.no_change;
        self.joins += o.joins;
        self.projections += o.projections;
        self.disconnects += o.disconnects;
        self.mv_adds += o.mv_adds;
        self.mv_updates += o.mv_updates;
        self.mv_deletes += o.mv_deletes;
        self.mv_value_updates += o.mv_value_updates;
        self.provisions += o.provisions;
        self.deprovisions += o.deprovisions;
        self.sync_errors += o.sync_errors;
        self.export_adds += o.export_adds;
        self.export_updates += o.export_updates;
        self.export_renames += o.export_renames;
        self.export_deletes += o.export_deletes;
        self.export_failures += o.export_failures;
        self.errors.extend(o.errors.iter().cloned());
    }
}

/// One run (a cycle or a step) as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// Run id.
    pub id: i64,
    /// Cycle this step belongs to.
    pub parent_id: Option<i64>,
    /// Connector (steps only).
    pub connector: Option<String>,
    /// Run profile or cycle kind.
    pub profile: String,
    /// Start (RFC 3339).
    pub started: String,
    /// End.
    pub ended: Option<String>,
    /// `success`, `completed-sync-errors`, `completed-export-errors`,
    /// `stopped-deletion-threshold-exceeded`, `stopped-empty-import`, `stopped-cancelled`,
    /// `stopped-connector-error`, `stopped-error`, or `in-progress`.
    pub result: String,
    /// Counters.
    pub counters: StepCounters,
    /// Error message when stopped.
    pub message: Option<String>,
    /// Per-object errors.
    pub errors: Vec<ObjectError>,
}

/// Records the start of a run.
pub fn start(
    c: &Connection,
    parent: Option<i64>,
    connector: Option<&str>,
    profile: &str,
) -> Result<i64> {
    c.execute(
        "INSERT INTO run(parent_id, connector, profile, started, result) VALUES (?1, ?2, ?3, ?4, 'in-progress')",
        params![parent, connector, profile, store::now()],
    )?;
    Ok(c.last_insert_rowid())
}

fn result_of(counters: &StepCounters, err: Option<&EngineError>) -> &'static str {
    match err {
        Some(EngineError::DeletionThreshold { .. }) => "stopped-deletion-threshold-exceeded",
        Some(EngineError::EmptyImport { .. }) => "stopped-empty-import",
        Some(EngineError::Cancelled) => "stopped-cancelled",
        Some(EngineError::Connector { .. }) => "stopped-connector-error",
        Some(_) => "stopped-error",
        None if counters.export_failures > 0 => "completed-export-errors",
        None if counters.sync_errors > 0 => "completed-sync-errors",
        None => "success",
    }
}

/// Records the end of a run and returns it.
pub fn finish(
    c: &Connection,
    id: i64,
    counters: &StepCounters,
    err: Option<&EngineError>,
) -> Result<RunRecord> {
    let result = result_of(counters, err);
    let message = err.map(|e| e.to_string());
    c.execute(
        "UPDATE run SET ended=?2, result=?3, counters=?4, message=?5 WHERE id=?1",
        params![
            id,
            store::now(),
            result,
            serde_json::to_string(counters).unwrap_or_else(|_| "{}".into()),
            message
        ],
    )?;
    let mut st = c.prepare_cached(
        "INSERT INTO run_error(run_id, object, stage, message) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for e in counters.errors.iter().take(10_000) {
        st.execute(params![id, e.object, e.stage, e.message])?;
    }
    get(c, id)
}

fn get(c: &Connection, id: i64) -> Result<RunRecord> {
    let mut rec = c.query_row(
        "SELECT id, parent_id, connector, profile, started, ended, result, counters, message FROM run WHERE id=?1",
        [id],
        row_to_record,
    )?;
    rec.errors = errors_of(c, id)?;
    Ok(rec)
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let counters: String = r.get(7)?;
    Ok(RunRecord {
        id: r.get(0)?,
        parent_id: r.get(1)?,
        connector: r.get(2)?,
        profile: r.get(3)?,
        started: r.get(4)?,
        ended: r.get(5)?,
        result: r.get(6)?,
        counters: serde_json::from_str(&counters).unwrap_or_default(),
        message: r.get(8)?,
        errors: Vec::new(),
    })
}

fn errors_of(c: &Connection, id: i64) -> Result<Vec<ObjectError>> {
    let mut st = c.prepare_cached(
        "SELECT object, stage, message FROM run_error WHERE run_id=?1 ORDER BY rowid",
    )?;
    let rows = st.query_map([id], |r| {
        Ok(ObjectError {
            object: r.get(0)?,
            stage: r.get(1)?,
            message: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Recent runs, newest first (cycles and steps), without their per-object errors.
fn records(c: &Connection, limit: usize) -> Result<Vec<RunRecord>> {
    let mut st = c.prepare_cached(
        "SELECT id, parent_id, connector, profile, started, ended, result, counters, message FROM run ORDER BY id DESC LIMIT ?1",
    )?;
    Ok(st
        .query_map([limit as i64], row_to_record)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

impl super::Engine {
    /// Recent runs, newest first, with `errors` left empty: for readers of results and
    /// counters only (the scheduler), which need not load every run's per-object errors.
    pub(crate) fn history_without_errors(&self, limit: usize) -> Result<Vec<RunRecord>> {
        records(self.store.conn(), limit)
    }
}

/// Recent runs, newest first (cycles and steps).
pub fn list(c: &Connection, limit: usize) -> Result<Vec<RunRecord>> {
    let mut out = records(c, limit)?;
    for r in &mut out {
        r.errors = errors_of(c, r.id)?;
    }
    Ok(out)
}

/// Removes runs older than the retention.
pub fn purge(c: &Connection, retention_days: u32) -> Result<()> {
    let cutoff = (chrono::Utc::now() - chrono::Duration::days(i64::from(retention_days)))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    c.execute(
        "DELETE FROM run_error WHERE run_id IN (SELECT id FROM run WHERE started < ?1)",
        [&cutoff],
    )?;
    c.execute("DELETE FROM run WHERE started < ?1", [&cutoff])?;
    Ok(())
}

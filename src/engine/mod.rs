//! The sync engine: run profiles over connector spaces and the metaverse.
//!
//! Data path (one direction): connector import -> connector space -> inbound rules ->
//! metaverse -> outbound rules -> pending exports -> plan -> safety guards -> connector export,
//! confirmed by the next import.

mod check;
mod crashpoint;
mod export;
mod history;
mod import;
pub mod plan;
mod preview;
mod sync;
pub mod writeback;

pub use check::RuleCheckReport;
pub use crashpoint::crash_point;
pub use history::{RunRecord, StepCounters};
pub use preview::{
    ExportPreview, LinkDecision, MvAttributeChange, MvPreview, ObjectRef, ObjectSyncReport,
    RuleEvaluation,
};
pub use writeback::{AdUser, PasswordResult, WritebackError};

use crate::config::{Config, ConfigError};
use crate::connectors::{Connector, ConnectorError};
use crate::rules::RuleSet;
use crate::store::{self, Store, StoreError};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Errors of engine operations.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// State failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A connector failed as a whole.
    #[error("connector '{connector}': {source}")]
    Connector {
        /// Connector name.
        connector: String,
        /// Cause.
        #[source]
        source: ConnectorError,
    },
    /// A full import returned nothing where the connector space had objects.
    #[error(
        "connector '{connector}': the import returned no objects but the connector space holds {existing}; refusing to treat that as deletes (rerun with --allow-empty-import after checking the source)"
    )]
    EmptyImport {
        /// Connector name.
        connector: String,
        /// Objects in the connector space.
        existing: i64,
    },
    /// The export would delete more than the threshold allows.
    #[error(
        "stopped: deletion threshold exceeded: connector '{connector}' would delete {deletes} of {total} objects (threshold {threshold}); review with `dirsync plan`, then confirm with `dirsync cycle --confirm-deletes`"
    )]
    DeletionThreshold {
        /// Connector name.
        connector: String,
        /// Deletes pending.
        deletes: u64,
        /// Objects in the connector space.
        total: u64,
        /// The threshold that was exceeded, as text.
        threshold: String,
    },
    /// Unknown connector or run profile.
    #[error("{0}")]
    NotFound(String),
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// Writeback or password failure.
    #[error(transparent)]
    Writeback(#[from] WritebackError),
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        EngineError::Store(StoreError::Sqlite(e))
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, EngineError>;

/// Run profiles (MIM / Entra Connect names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunProfile {
    /// Read every object.
    FullImport,
    /// Read changes since the watermark.
    DeltaImport,
    /// Re-evaluate every object of the connector.
    FullSync,
    /// Evaluate objects with pending imports.
    DeltaSync,
    /// Write pending exports.
    Export,
}

impl RunProfile {
    /// Parses `FullImport`, `full-import`, `full_import` and the like.
    pub fn parse(s: &str) -> Option<RunProfile> {
        let k: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match k.as_str() {
            "fullimport" => RunProfile::FullImport,
            "deltaimport" => RunProfile::DeltaImport,
            "fullsync" | "fullsynchronization" => RunProfile::FullSync,
            "deltasync" | "deltasynchronization" => RunProfile::DeltaSync,
            "export" => RunProfile::Export,
            _ => return None,
        })
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            RunProfile::FullImport => "FullImport",
            RunProfile::DeltaImport => "DeltaImport",
            RunProfile::FullSync => "FullSync",
            RunProfile::DeltaSync => "DeltaSync",
            RunProfile::Export => "Export",
        }
    }
}

/// Cycle policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CyclePolicy {
    /// Delta import all -> delta sync all -> export all.
    Delta,
    /// Full import all -> full sync all -> export all.
    Initial,
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Compute everything, export nothing (also forced by staging mode).
    pub dry_run: bool,
    /// The admin confirmed deletes above the threshold.
    pub confirm_deletes: bool,
    /// The admin confirmed that an empty import is real.
    pub allow_empty_import: bool,
}

/// Progress events for callers (CLI progress bars, the ABI callback).
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Connector.
    pub connector: String,
    /// Run profile.
    pub profile: &'static str,
    /// Objects processed so far.
    pub processed: u64,
    /// Total when known.
    pub total: Option<u64>,
}

/// A progress sink.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Builds a connector from its configuration.
pub fn build_connector(cfg: &Config, name: &str) -> Result<Box<dyn Connector>> {
    let cc = cfg
        .connector(name)
        .ok_or_else(|| EngineError::NotFound(format!("unknown connector '{name}'")))?;
    let bad = |msg: String| {
        EngineError::Config(cfg.invalid(
            &format!("\"{name}\""),
            &format!("connectors.{name}.settings"),
            msg,
        ))
    };
    let settings = if cc.settings.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        cc.settings.clone()
    };
    crate::connectors::build(&cc.kind, settings, &cfg.base_dir).map_err(|e| bad(e.to_string()))
}

/// The engine: a configuration, its compiled rules and the state.
pub struct Engine {
    /// Configuration.
    pub config: Config,
    /// Compiled rules.
    pub rules: RuleSet,
    store: Store,
    cancel: Arc<AtomicBool>,
    stop_after_step: Arc<AtomicBool>,
    progress: Option<ProgressFn>,
}

impl Engine {
    /// Opens the engine: compiles the rules and opens (locks) the state.
    pub fn open(mut config: Config) -> Result<Engine> {
        // Staging mode switched at runtime (`dirsync scheduler set --staging`,
        // Set-DirSyncScheduler) holds for every run, not only scheduled cycles.
        if let Some(on) = crate::scheduler::settings::staging_override(&config)
            .map_err(|e| EngineError::Store(StoreError::Corrupt(e.to_string())))?
        {
            config.safety.staging_mode = on;
        }
        let rules = RuleSet::compile(&config)?;
        let path = config.resolve(&config.state.path);
        let mut store = Store::open(&path)?;
        {
            let tx = store.transaction()?;
            for c in &config.connectors {
                store::connector_id(&tx, &c.name)?;
            }
            tx.commit().map_err(StoreError::from)?;
        }
        Ok(Engine {
            config,
            rules,
            store,
            cancel: Arc::new(AtomicBool::new(false)),
            stop_after_step: Arc::new(AtomicBool::new(false)),
            progress: None,
        })
    }

    /// The state store (read access).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A flag that cancels the running operation when set (from any thread).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Uses `flag` as the "stop after the current step" flag: when it is set, a running cycle
    /// lets the current run step finish and starts no further step; the cycle is recorded as
    /// stopped (`stopped-cancelled`) with every finished step intact (graceful shutdown).
    pub fn set_stop_after_step_flag(&mut self, flag: Arc<AtomicBool>) {
        self.stop_after_step = flag;
    }

    fn check_stop_after_step(&self) -> Result<()> {
        if self.stop_after_step.load(Ordering::SeqCst) {
            tracing::info!("stop requested: no further run step starts");
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Installs a progress sink.
    pub fn set_progress(&mut self, f: Option<ProgressFn>) {
        self.progress = f;
    }

    fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn report(&self, connector: &str, profile: RunProfile, processed: u64, total: Option<u64>) {
        if let Some(p) = &self.progress {
            p(&Progress {
                connector: connector.to_string(),
                profile: profile.name(),
                processed,
                total,
            });
        }
    }

    /// Connector names in configuration (cycle) order.
    pub fn connector_names(&self) -> Vec<String> {
        self.config
            .connectors
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// Runs one run profile on one connector and records it in the run history.
    pub fn run_profile(
        &mut self,
        connector: &str,
        profile: RunProfile,
        opts: &RunOptions,
        parent_run: Option<i64>,
    ) -> Result<RunRecord> {
        if self.config.connector(connector).is_none() {
            return Err(EngineError::NotFound(format!(
                "unknown connector '{connector}'"
            )));
        }
        let run_id = history::start(
            self.store.conn(),
            parent_run,
            Some(connector),
            profile.name(),
        )?;
        let mut counters = StepCounters::default();
        let outcome = match profile {
            RunProfile::FullImport => self.import(connector, true, opts, &mut counters),
            RunProfile::DeltaImport => self.import(connector, false, opts, &mut counters),
            RunProfile::FullSync => self.sync(connector, true, &mut counters),
            RunProfile::DeltaSync => self.sync(connector, false, &mut counters),
            RunProfile::Export => self.export(connector, opts, &mut counters),
        };
        let record = history::finish(self.store.conn(), run_id, &counters, outcome.as_ref().err())?;
        outcome.map(|_| record)
    }

    /// Runs a cycle: every connector's import, then every sync, then every export.
    pub fn cycle(&mut self, policy: CyclePolicy, opts: &RunOptions) -> Result<Vec<RunRecord>> {
        let profile_name = match policy {
            CyclePolicy::Delta => "DeltaCycle",
            CyclePolicy::Initial => "InitialCycle",
        };
        let names = self.connector_names();
        let exports: Vec<String> = names.iter().rev().cloned().collect();
        let initial = policy == CyclePolicy::Initial;
        let (_, _, result) = self.recorded_run(profile_name, &names, &exports, initial, opts)?;
        result
    }

    /// Records one multi-step run named `run_name` in the run history around
    /// [`Engine::run_steps`]: starts the run, sums the steps' counters into it, finishes it
    /// and purges old history. Returns the run id, the summed counters and the steps'
    /// outcome; the outer error is a history failure.
    fn recorded_run(
        &mut self,
        run_name: &str,
        imports: &[String],
        exports: &[String],
        initial: bool,
        opts: &RunOptions,
    ) -> Result<(i64, StepCounters, Result<Vec<RunRecord>>)> {
        self.check_cancel()?;
        self.check_stop_after_step()?;
        let run_id = history::start(self.store.conn(), None, None, run_name)?;
        let result = self.run_steps(imports, exports, initial, opts, run_id);
        let mut total = StepCounters::default();
        if let Ok(steps) = &result {
            for s in steps {
                total.add(&s.counters);
            }
        }
        history::finish(self.store.conn(), run_id, &total, result.as_ref().err())?;
        history::purge(self.store.conn(), self.config.history.retention_days)?;
        Ok((run_id, total, result))
    }

    /// The steps of a multi-step run: an import of every connector in `imports` (full when
    /// `initial` or required, else delta), then a synchronization of each (likewise), then
    /// the deletion threshold check of every connector in `exports` (unless a dry run or
    /// staging mode) and an export to each, in the order given.
    fn run_steps(
        &mut self,
        imports: &[String],
        exports: &[String],
        initial: bool,
        opts: &RunOptions,
        run_id: i64,
    ) -> Result<Vec<RunRecord>> {
        let mut records = Vec::new();
        for n in imports {
            self.check_cancel()?;
            self.check_stop_after_step()?;
            let full = initial || self.full_import_required(n)?;
            let p = if full {
                RunProfile::FullImport
            } else {
                RunProfile::DeltaImport
            };
            records.push(self.run_profile(n, p, opts, Some(run_id))?);
        }
        for n in imports {
            self.check_cancel()?;
            self.check_stop_after_step()?;
            let full = initial || self.full_sync_required(n)?;
            let p = if full {
                RunProfile::FullSync
            } else {
                RunProfile::DeltaSync
            };
            records.push(self.run_profile(n, p, opts, Some(run_id))?);
        }
        if !(opts.dry_run || self.config.safety.staging_mode) {
            // Threshold check across all export targets before anything is written.
            for n in exports {
                self.check_deletion_threshold(n, opts)?;
            }
        }
        for n in exports {
            self.check_cancel()?;
            self.check_stop_after_step()?;
            records.push(self.run_profile(n, RunProfile::Export, opts, Some(run_id))?);
        }
        Ok(records)
    }

    fn connector_id(&self, name: &str) -> Result<i64> {
        Ok(store::connector_id(self.store.conn(), name)?)
    }

    fn full_import_required(&self, name: &str) -> Result<bool> {
        let id = self.connector_id(name)?;
        Ok(store::connector_counter(
            self.store.conn(),
            id,
            store::ConnectorCounter::FullImportRequired,
        )? != 0)
    }

    fn full_sync_required(&self, name: &str) -> Result<bool> {
        let id = self.connector_id(name)?;
        Ok(store::connector_counter(
            self.store.conn(),
            id,
            store::ConnectorCounter::FullSyncRequired,
        )? != 0)
    }

    /// Requires a full import (and sync) of a connector on the next cycle.
    pub fn require_full(&mut self, name: &str, import: bool, sync: bool) -> Result<()> {
        let id = self.connector_id(name)?;
        let c = self.store.conn();
        if import {
            store::set_connector_counter(c, id, store::ConnectorCounter::FullImportRequired, 1)?;
        }
        if sync {
            store::set_connector_counter(c, id, store::ConnectorCounter::FullSyncRequired, 1)?;
        }
        Ok(())
    }

    /// The pending exports as a plan.
    pub fn plan(&self) -> Result<plan::Plan> {
        Ok(plan::build(self.store.conn())?)
    }

    /// Recent runs, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<RunRecord>> {
        Ok(history::list(self.store.conn(), limit)?)
    }
}

/// Per-connector status.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorStatus {
    /// Name.
    pub name: String,
    /// Live objects in the connector space.
    pub objects: i64,
    /// Objects linked to the metaverse.
    pub joined: i64,
    /// Objects waiting for sync.
    pub pending_sync: i64,
    /// Pending exports.
    pub pending_exports: i64,
    /// Pending adds.
    pub pending_adds: i64,
    /// Pending updates.
    pub pending_updates: i64,
    /// Pending deletes.
    pub pending_deletes: i64,
}

/// Engine status.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Metaverse size.
    pub metaverse_objects: i64,
    /// Connectors.
    pub connectors: Vec<ConnectorStatus>,
    /// The most recent cycle or run.
    pub last_run: Option<RunRecord>,
}

impl Engine {
    /// Counts per connector and the last run.
    pub fn status(&self) -> Result<Status> {
        let c = self.store.conn();
        let metaverse_objects = c.query_row("SELECT COUNT(*) FROM mv_object", [], |r| r.get(0))?;
        let mut connectors = Vec::new();
        for name in self.connector_names() {
            let id = self.connector_id(&name)?;
            let q = |sql: &str| -> Result<i64> { Ok(c.query_row(sql, [id], |r| r.get(0))?) };
            connectors.push(ConnectorStatus {
                objects: store::cs_count(c, id)?,
                joined: q(
                    "SELECT COUNT(*) FROM cs_object WHERE connector_id=?1 AND mv_id IS NOT NULL",
                )?,
                pending_sync: q(
                    "SELECT COUNT(*) FROM cs_object WHERE connector_id=?1 AND sync_pending=1",
                )?,
                pending_exports: q("SELECT COUNT(*) FROM pending_export WHERE connector_id=?1")?,
                pending_adds: q(
                    "SELECT COUNT(*) FROM pending_export WHERE connector_id=?1 AND op='add'",
                )?,
                pending_updates: q(
                    "SELECT COUNT(*) FROM pending_export WHERE connector_id=?1 AND op='update'",
                )?,
                pending_deletes: q(
                    "SELECT COUNT(*) FROM pending_export WHERE connector_id=?1 AND op='delete'",
                )?,
                name,
            });
        }
        let last_run = history::list(c, 64)?
            .into_iter()
            .find(|r| r.parent_id.is_none());
        Ok(Status {
            metaverse_objects,
            connectors,
            last_run,
        })
    }

    /// Connector-space objects: one by DN or anchor, or the whole connector space.
    pub fn cs_objects(
        &self,
        connector: &str,
        dn: Option<&str>,
        anchor: Option<&str>,
    ) -> Result<Vec<store::CsObject>> {
        if self.config.connector(connector).is_none() {
            return Err(EngineError::NotFound(format!(
                "unknown connector '{connector}'"
            )));
        }
        let id = self.connector_id(connector)?;
        let c = self.store.conn();
        if let Some(d) = dn {
            let d = crate::model::Dn::parse(d).map_err(|e| EngineError::NotFound(e.to_string()))?;
            return Ok(store::cs_by_dn(c, id, &d)?.into_iter().collect());
        }
        if let Some(a) = anchor {
            return Ok(store::cs_by_anchor(c, id, a)?.into_iter().collect());
        }
        Ok(store::cs_all(c, id)?)
    }

    /// One metaverse object, or all.
    pub fn mv_objects(&self, id: Option<i64>) -> Result<Vec<store::MvObject>> {
        let c = self.store.conn();
        let ids = match id {
            Some(i) => vec![i],
            None => store::mv_ids(c)?,
        };
        let mut out = Vec::new();
        for i in ids {
            if let Some(o) = store::mv_get(c, i)? {
                out.push(o);
            }
        }
        if id.is_some() && out.is_empty() {
            return Err(EngineError::NotFound(format!(
                "no metaverse object {}",
                id.unwrap_or_default()
            )));
        }
        Ok(out)
    }
}

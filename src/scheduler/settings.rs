//! Scheduler settings (Get-/Set-ADSyncScheduler and the connector overrides).
//!
//! Defaults come from the `[scheduler]` section of the configuration (and
//! `safety.staging_mode`, `history.retention_days`). Admin changes made at runtime are kept
//! in a small side file next to the state, `<state>.scheduler.json`, as an overlay of the
//! fields that were set. The side file, not the SQLite state, holds them because the state is
//! locked by whichever engine is running: `dirsync scheduler suspend` must work while
//! `dirsync serve` is in the middle of a cycle, and the scheduler re-reads the file before
//! every cycle. Writers serialize through `<state>.scheduler.lock` and replace the file
//! atomically (write a temporary file, then rename), so a reader never sees half a file.

use crate::config::{Config, parse_duration_secs};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::SchedulerError;

/// The policy of the next cycle (NextSyncCyclePolicyType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum NextCyclePolicy {
    /// Delta import, delta sync, export.
    #[default]
    Delta,
    /// Full import, full sync, export (once; the scheduler then goes back to Delta).
    Initial,
}

impl NextCyclePolicy {
    /// The engine's cycle policy.
    pub fn cycle_policy(self) -> crate::engine::CyclePolicy {
        match self {
            NextCyclePolicy::Delta => crate::engine::CyclePolicy::Delta,
            NextCyclePolicy::Initial => crate::engine::CyclePolicy::Initial,
        }
    }
}

/// Per-connector scheduler override (Get-/Set-ADSyncSchedulerConnectorOverride).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorOverride {
    /// The next cycle runs a full import on this connector (consumed by that import).
    pub full_import_required: bool,
    /// The next cycle runs a full sync on this connector (consumed by that sync).
    pub full_sync_required: bool,
    /// Scheduled full reconciliation for this connector in hours (`None`: the global
    /// `full_import_interval_hours`; `Some(0)`: never).
    pub full_import_interval_hours: Option<u64>,
}

impl ConnectorOverride {
    fn is_empty(&self) -> bool {
        *self == ConnectorOverride::default()
    }
}

/// The effective scheduler settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerSettings {
    /// Cycles run at all (SyncCycleEnabled).
    pub sync_cycle_enabled: bool,
    /// Seconds between cycle starts (CustomizedSyncCycleInterval; default 1800).
    pub interval_seconds: u64,
    /// Suspended by an admin (SchedulerSuspended): no new cycle starts.
    pub suspended: bool,
    /// Import and sync run, export does not (StagingModeEnabled).
    pub staging_mode: bool,
    /// Policy of the next cycle (NextSyncCyclePolicyType).
    pub next_cycle_policy: NextCyclePolicy,
    /// Requested start of the next cycle, RFC 3339 UTC (NextSyncCycleStartTimeInUTC);
    /// `None`: one interval after the previous start.
    pub next_cycle_start_utc: Option<String>,
    /// Days of run history kept (PurgeRunHistoryInterval).
    pub purge_run_history_days: u32,
    /// Run-history purge after cycles (MaintenanceEnabled).
    pub maintenance_enabled: bool,
    /// Scheduled full reconciliation interval in hours (0 = off; default 168).
    pub full_import_interval_hours: u64,
    /// Per-connector overrides (connectors without any are left out).
    pub connector_overrides: BTreeMap<String, ConnectorOverride>,
}

/// A change of per-connector override fields; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorOverridePatch {
    /// See [`ConnectorOverride::full_import_required`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_import_required: Option<bool>,
    /// See [`ConnectorOverride::full_sync_required`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_sync_required: Option<bool>,
    /// See [`ConnectorOverride::full_import_interval_hours`]; JSON `null` goes back to the
    /// global interval.
    #[serde(
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub full_import_interval_hours: Option<Option<u64>>,
}

/// A change of scheduler settings; absent fields stay as they are (deny_unknown_fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerPatch {
    /// See [`SchedulerSettings::sync_cycle_enabled`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_cycle_enabled: Option<bool>,
    /// See [`SchedulerSettings::interval_seconds`] (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// See [`SchedulerSettings::suspended`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
    /// See [`SchedulerSettings::staging_mode`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staging_mode: Option<bool>,
    /// See [`SchedulerSettings::next_cycle_policy`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cycle_policy: Option<NextCyclePolicy>,
    /// See [`SchedulerSettings::next_cycle_start_utc`]; JSON `null` clears it.
    #[serde(
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_cycle_start_utc: Option<Option<String>>,
    /// See [`SchedulerSettings::purge_run_history_days`] (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_run_history_days: Option<u32>,
    /// See [`SchedulerSettings::maintenance_enabled`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_enabled: Option<bool>,
    /// See [`SchedulerSettings::full_import_interval_hours`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_import_interval_hours: Option<u64>,
    /// Per-connector changes, merged field by field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_overrides: Option<BTreeMap<String, ConnectorOverridePatch>>,
}

/// `null` -> `Some(None)`, a value -> `Some(Some(v))`, absent -> `None` (with `default`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl SchedulerPatch {
    /// Checks values and connector names against the configuration.
    pub fn validate(&self, config: &Config) -> Result<(), SchedulerError> {
        let bad = |key: &str, message: String| SchedulerError::Invalid {
            key: key.to_string(),
            message,
        };
        if self.interval_seconds == Some(0) {
            return Err(bad("interval_seconds", "must be at least 1".into()));
        }
        if self.purge_run_history_days == Some(0) {
            return Err(bad("purge_run_history_days", "must be at least 1".into()));
        }
        if let Some(Some(t)) = &self.next_cycle_start_utc {
            chrono::DateTime::parse_from_rfc3339(t).map_err(|e| {
                bad(
                    "next_cycle_start_utc",
                    format!("'{t}' is not an RFC 3339 time: {e}"),
                )
            })?;
        }
        if let Some(map) = &self.connector_overrides {
            for name in map.keys() {
                if config.connector(name).is_none() {
                    return Err(bad(
                        "connector_overrides",
                        format!("unknown connector '{name}'"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Applies `other` on top of this overlay (later values win, maps merge per connector).
    pub fn merge(&mut self, other: &SchedulerPatch) {
        macro_rules! take {
            ($($f:ident),*) => {$( if other.$f.is_some() { self.$f = other.$f.clone(); } )*};
        }
        take!(
            sync_cycle_enabled,
            interval_seconds,
            suspended,
            staging_mode,
            next_cycle_policy,
            next_cycle_start_utc,
            purge_run_history_days,
            maintenance_enabled,
            full_import_interval_hours
        );
        if let Some(map) = &other.connector_overrides {
            let mine = self.connector_overrides.get_or_insert_with(BTreeMap::new);
            for (name, p) in map {
                let e = mine.entry(name.clone()).or_default();
                if p.full_import_required.is_some() {
                    e.full_import_required = p.full_import_required;
                }
                if p.full_sync_required.is_some() {
                    e.full_sync_required = p.full_sync_required;
                }
                if p.full_import_interval_hours.is_some() {
                    e.full_import_interval_hours = p.full_import_interval_hours;
                }
            }
        }
    }
}

impl SchedulerSettings {
    /// The defaults of a configuration (no admin changes).
    pub fn defaults(config: &Config) -> SchedulerSettings {
        let s = &config.scheduler;
        SchedulerSettings {
            sync_cycle_enabled: s.sync_cycle_enabled,
            interval_seconds: parse_duration_secs(&s.interval)
                .filter(|v| *v > 0)
                .unwrap_or(1800),
            suspended: false,
            staging_mode: config.safety.staging_mode,
            next_cycle_policy: NextCyclePolicy::Delta,
            next_cycle_start_utc: None,
            purge_run_history_days: config.history.retention_days.max(1),
            maintenance_enabled: true,
            full_import_interval_hours: duration_hours(&s.full_import_interval).unwrap_or(168),
            connector_overrides: BTreeMap::new(),
        }
    }

    /// The defaults with an overlay applied.
    pub fn with_overlay(mut self, o: &SchedulerPatch) -> SchedulerSettings {
        if let Some(v) = o.sync_cycle_enabled {
            self.sync_cycle_enabled = v;
        }
        if let Some(v) = o.interval_seconds {
            self.interval_seconds = v.max(1);
        }
        if let Some(v) = o.suspended {
            self.suspended = v;
        }
        if let Some(v) = o.staging_mode {
            self.staging_mode = v;
        }
        if let Some(v) = o.next_cycle_policy {
            self.next_cycle_policy = v;
        }
        if let Some(v) = &o.next_cycle_start_utc {
            self.next_cycle_start_utc = v.clone();
        }
        if let Some(v) = o.purge_run_history_days {
            self.purge_run_history_days = v.max(1);
        }
        if let Some(v) = o.maintenance_enabled {
            self.maintenance_enabled = v;
        }
        if let Some(v) = o.full_import_interval_hours {
            self.full_import_interval_hours = v;
        }
        if let Some(map) = &o.connector_overrides {
            for (name, p) in map {
                let e = self.connector_overrides.entry(name.clone()).or_default();
                if let Some(v) = p.full_import_required {
                    e.full_import_required = v;
                }
                if let Some(v) = p.full_sync_required {
                    e.full_sync_required = v;
                }
                if let Some(v) = p.full_import_interval_hours {
                    e.full_import_interval_hours = v;
                }
            }
            self.connector_overrides.retain(|_, o| !o.is_empty());
        }
        self
    }

    /// The full-import interval of one connector in hours (0 = never).
    pub fn full_import_interval_for(&self, connector: &str) -> u64 {
        self.connector_overrides
            .get(connector)
            .and_then(|o| o.full_import_interval_hours)
            .unwrap_or(self.full_import_interval_hours)
    }
}

/// A duration (`7d`, `24h`, `30m`, `90s`) in whole hours, rounded up.
pub fn duration_hours(s: &str) -> Option<u64> {
    parse_duration_secs(s).map(|v| v.div_ceil(3600))
}

/// A file next to a configuration's state: the state path with `suffix` appended.
pub(crate) fn state_side_path(config: &Config, suffix: &str) -> PathBuf {
    let state = config.resolve(&config.state.path);
    PathBuf::from(format!("{}{suffix}", state.display()))
}

/// The side file holding admin changes for a configuration's state.
pub fn settings_path(config: &Config) -> PathBuf {
    state_side_path(config, ".scheduler.json")
}

fn lock_path(config: &Config) -> PathBuf {
    state_side_path(config, ".scheduler.lock")
}

fn io_err(path: &Path, e: std::io::Error) -> SchedulerError {
    SchedulerError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Reads the stored overlay (empty when there is no side file yet).
pub fn load_overlay(config: &Config) -> Result<SchedulerPatch, SchedulerError> {
    let path = settings_path(config);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SchedulerPatch::default()),
        Err(e) => return Err(io_err(&path, e)),
    };
    serde_json::from_str(&text).map_err(|e| SchedulerError::Corrupt {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Staging mode as an admin switched it at runtime (`None`: the configuration decides).
pub fn staging_override(config: &Config) -> Result<Option<bool>, SchedulerError> {
    Ok(load_overlay(config)?.staging_mode)
}

/// The effective settings: configuration defaults plus the stored admin changes.
pub fn load_settings(config: &Config) -> Result<SchedulerSettings, SchedulerError> {
    Ok(SchedulerSettings::defaults(config).with_overlay(&load_overlay(config)?))
}

/// Validates and stores a change; returns the new effective settings.
pub fn update_settings(
    config: &Config,
    patch: &SchedulerPatch,
) -> Result<SchedulerSettings, SchedulerError> {
    patch.validate(config)?;
    modify_overlay(config, |o| o.merge(patch))?;
    load_settings(config)
}

/// Read-modify-write of the overlay under the side-file lock.
pub(crate) fn modify_overlay(
    config: &Config,
    f: impl FnOnce(&mut SchedulerPatch),
) -> Result<(), SchedulerError> {
    let path = settings_path(config);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    }
    let lp = lock_path(config);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lp)
        .map_err(|e| io_err(&lp, e))?;
    lock.lock().map_err(|e| io_err(&lp, e))?;
    let mut overlay = load_overlay(config)?;
    f(&mut overlay);
    if let Some(map) = &mut overlay.connector_overrides {
        map.retain(|_, p| *p != ConnectorOverridePatch::default());
    }
    let text = serde_json::to_string_pretty(&overlay).map_err(|e| SchedulerError::Corrupt {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let tmp = PathBuf::from(format!("{}.tmp{}", path.display(), std::process::id()));
    {
        let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.write_all(b"\n"))
            .and_then(|_| f.sync_all())
            .map_err(|e| io_err(&tmp, e))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    tracing::info!(file = %path.display(), "scheduler settings stored");
    drop(lock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> Config {
        Config::from_toml_str(
            "[state]\npath = \"s/state.db\"\n[scheduler]\ninterval = \"10m\"\n[[connectors]]\nname = \"a\"\ntype = \"ldif\"\n",
            "t.toml",
            dir,
        )
        .unwrap()
    }

    #[test]
    fn overlay_round_trip_and_merge() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        let s = load_settings(&c).unwrap();
        assert_eq!(s.interval_seconds, 600);
        assert_eq!(s.full_import_interval_hours, 168);
        assert!(!s.suspended);
        let p: SchedulerPatch = serde_json::from_str(
            r#"{"suspended":true,"connector_overrides":{"a":{"full_import_required":true}}}"#,
        )
        .unwrap();
        let s = update_settings(&c, &p).unwrap();
        assert!(s.suspended);
        assert!(s.connector_overrides["a"].full_import_required);
        let p2: SchedulerPatch = serde_json::from_str(
            r#"{"interval_seconds":5,"next_cycle_start_utc":"2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let s = update_settings(&c, &p2).unwrap();
        assert!(s.suspended, "earlier change kept");
        assert_eq!(s.interval_seconds, 5);
        assert_eq!(
            s.next_cycle_start_utc.as_deref(),
            Some("2030-01-01T00:00:00Z")
        );
        let p3: SchedulerPatch = serde_json::from_str(
            r#"{"next_cycle_start_utc":null,"connector_overrides":{"a":{"full_import_required":false}}}"#,
        )
        .unwrap();
        let s = update_settings(&c, &p3).unwrap();
        assert_eq!(s.next_cycle_start_utc, None);
        assert!(s.connector_overrides.is_empty());
    }

    #[test]
    fn engine_follows_a_staging_switch() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = crate::engine::Engine::open(cfg(dir.path())).unwrap();
        assert!(!e.config.safety.staging_mode);
        let p: SchedulerPatch = serde_json::from_str(r#"{"staging_mode":true}"#).unwrap();
        let s = e.set_scheduler_settings(&p).unwrap();
        assert!(s.staging_mode && e.config.safety.staging_mode);
        assert!(e.scheduler_settings().unwrap().staging_mode);
        drop(e);
        let e = crate::engine::Engine::open(cfg(dir.path())).unwrap();
        assert!(e.config.safety.staging_mode, "reopened engine keeps it");
    }

    #[test]
    fn bad_patches_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        assert!(serde_json::from_str::<SchedulerPatch>(r#"{"intervall":5}"#).is_err());
        let p: SchedulerPatch = serde_json::from_str(r#"{"interval_seconds":0}"#).unwrap();
        assert!(matches!(
            update_settings(&c, &p),
            Err(SchedulerError::Invalid { .. })
        ));
        let p: SchedulerPatch =
            serde_json::from_str(r#"{"connector_overrides":{"nope":{"full_sync_required":true}}}"#)
                .unwrap();
        let e = update_settings(&c, &p).unwrap_err().to_string();
        assert!(e.contains("unknown connector 'nope'"), "{e}");
        let p: SchedulerPatch =
            serde_json::from_str(r#"{"next_cycle_start_utc":"tomorrow"}"#).unwrap();
        assert!(update_settings(&c, &p).is_err());
        assert!(
            !settings_path(&c).exists(),
            "nothing stored by refused changes"
        );
    }
}

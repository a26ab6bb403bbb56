//! What the scheduler knows about its cycles, for `/healthz` and `/metrics`
//! (Prometheus text exposition format 0.0.4).

use crate::engine::RunRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Upper bounds (seconds) of the cycle duration histogram buckets.
pub const DURATION_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];

/// The last finished cycle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CycleSummary {
    /// Run id of the cycle in the run history (None when the cycle could not start).
    pub run_id: Option<i64>,
    /// `DeltaCycle` or `InitialCycle`.
    pub policy: String,
    /// Run-history result (`success`, `stopped-...`).
    pub result: String,
    /// Start, RFC 3339.
    pub started: String,
    /// End, RFC 3339.
    pub ended: String,
    /// Wall time in seconds.
    pub duration_seconds: f64,
    /// Why it stopped, when it did.
    pub message: Option<String>,
}

impl CycleSummary {
    /// A completed cycle (possibly with per-object errors) rather than a stopped one.
    pub fn completed(&self) -> bool {
        !self.result.starts_with("stopped")
    }
}

/// Counters and gauges the scheduler keeps (reset when `dirsync serve` restarts).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Cycles by result.
    pub cycles: BTreeMap<String, u64>,
    /// Histogram bucket counts (same length as [`DURATION_BUCKETS`]).
    pub duration_buckets: Vec<u64>,
    /// Sum of cycle durations.
    pub duration_sum: f64,
    /// Number of observed durations.
    pub duration_count: u64,
    /// (connector, change) -> objects imported.
    pub imported: BTreeMap<(String, &'static str), u64>,
    /// (connector, kind) -> sync outcomes.
    pub synced: BTreeMap<(String, &'static str), u64>,
    /// (connector, op) -> objects exported.
    pub exported: BTreeMap<(String, &'static str), u64>,
    /// (connector, stage) -> per-object errors.
    pub errors: BTreeMap<(String, &'static str), u64>,
    /// (connector, op) -> pending exports after the last cycle.
    pub pending_exports: BTreeMap<(String, &'static str), i64>,
    /// Connector -> live connector-space objects after the last cycle.
    pub connector_objects: BTreeMap<String, i64>,
    /// Metaverse objects after the last cycle.
    pub metaverse_objects: Option<i64>,
    /// Cycles stopped by the deletion threshold.
    pub threshold_stops: u64,
    /// Cycles not started because another process held the state.
    pub state_busy: u64,
    /// End (RFC 3339) of the last completed cycle.
    pub last_success: Option<String>,
}

impl Metrics {
    /// Takes the gauges of the engine's status after a cycle.
    pub fn set_status(&mut self, st: &crate::engine::Status) {
        self.pending_exports.clear();
        self.connector_objects.clear();
        for c in &st.connectors {
            self.pending_exports
                .insert((c.name.clone(), "add"), c.pending_adds);
            self.pending_exports
                .insert((c.name.clone(), "update"), c.pending_updates);
            self.pending_exports
                .insert((c.name.clone(), "delete"), c.pending_deletes);
            self.connector_objects.insert(c.name.clone(), c.objects);
        }
        self.metaverse_objects = Some(st.metaverse_objects);
    }

    /// Records a finished cycle and its steps.
    pub fn observe_cycle(&mut self, cycle: &CycleSummary, steps: &[RunRecord]) {
        *self.cycles.entry(cycle.result.clone()).or_default() += 1;
        if self.duration_buckets.len() != DURATION_BUCKETS.len() {
            self.duration_buckets = vec![0; DURATION_BUCKETS.len()];
        }
        for (i, b) in DURATION_BUCKETS.iter().enumerate() {
            if cycle.duration_seconds <= *b {
                self.duration_buckets[i] += 1;
            }
        }
        self.duration_sum += cycle.duration_seconds;
        self.duration_count += 1;
        if cycle.result == "stopped-deletion-threshold-exceeded" {
            self.threshold_stops += 1;
        }
        if cycle.completed() {
            self.last_success = Some(cycle.ended.clone());
        }
        for s in steps {
            let Some(conn) = s.connector.clone() else {
                continue;
            };
            let c = &s.counters;
            let add = |map: &mut BTreeMap<(String, &'static str), u64>, k: &'static str, v: u64| {
                *map.entry((conn.clone(), k)).or_default() += v;
            };
            match s.profile.as_str() {
                "FullImport" | "DeltaImport" => {
                    add(&mut self.imported, "add", c.adds);
                    add(&mut self.imported, "update", c.updates);
                    add(&mut self.imported, "rename", c.renames);
                    add(&mut self.imported, "delete", c.deletes);
                }
                "FullSync" | "DeltaSync" => {
                    add(&mut self.synced, "join", c.joins);
                    add(&mut self.synced, "projection", c.projections);
                    add(&mut self.synced, "disconnect", c.disconnects);
                    add(&mut self.synced, "provision", c.provisions);
                    add(&mut self.synced, "deprovision", c.deprovisions);
                    add(&mut self.synced, "mv_add", c.mv_adds);
                    add(&mut self.synced, "mv_update", c.mv_updates);
                    add(&mut self.synced, "mv_delete", c.mv_deletes);
                    add(&mut self.errors, "sync", c.sync_errors);
                }
                "Export" => {
                    add(&mut self.exported, "add", c.export_adds);
                    add(&mut self.exported, "update", c.export_updates);
                    add(&mut self.exported, "rename", c.export_renames);
                    add(&mut self.exported, "delete", c.export_deletes);
                    add(&mut self.errors, "export", c.export_failures);
                }
                _ => {}
            }
            if s.result.starts_with("stopped") && s.result != "stopped-cancelled" {
                add(&mut self.errors, "step", 1);
            }
        }
    }

    /// Prometheus text format 0.0.4. `gauges` are the scheduler's current state.
    pub fn render(&self, g: &Gauges) -> String {
        let mut o = String::new();
        let b = |v: bool| if v { 1 } else { 0 };
        head(
            &mut o,
            "dirsync_cycles_total",
            "counter",
            "Sync cycles finished by this scheduler, by run-history result.",
        );
        for r in [
            "success",
            "completed-sync-errors",
            "completed-export-errors",
            "stopped-deletion-threshold-exceeded",
        ] {
            if !self.cycles.contains_key(r) {
                let _ = writeln!(o, "dirsync_cycles_total{{result=\"{r}\"}} 0");
            }
        }
        for (r, n) in &self.cycles {
            let _ = writeln!(o, "dirsync_cycles_total{{result=\"{}\"}} {n}", esc(r));
        }
        head(
            &mut o,
            "dirsync_cycle_duration_seconds",
            "histogram",
            "Wall time of sync cycles.",
        );
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            let n = self.duration_buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "dirsync_cycle_duration_seconds_bucket{{le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            o,
            "dirsync_cycle_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            self.duration_count
        );
        let _ = writeln!(
            o,
            "dirsync_cycle_duration_seconds_sum {}",
            fmt_f(self.duration_sum)
        );
        let _ = writeln!(
            o,
            "dirsync_cycle_duration_seconds_count {}",
            self.duration_count
        );
        labelled(
            &mut o,
            "dirsync_objects_imported_total",
            "counter",
            "Objects imported into the connector space, by connector and change.",
            "change",
            &self.imported,
        );
        labelled(
            &mut o,
            "dirsync_objects_synced_total",
            "counter",
            "Synchronization outcomes, by connector and kind.",
            "kind",
            &self.synced,
        );
        labelled(
            &mut o,
            "dirsync_objects_exported_total",
            "counter",
            "Objects written to the connected directory, by connector and operation.",
            "op",
            &self.exported,
        );
        labelled(
            &mut o,
            "dirsync_errors_total",
            "counter",
            "Per-object errors (sync, export) and stopped run steps, by connector and stage.",
            "stage",
            &self.errors,
        );
        labelled(
            &mut o,
            "dirsync_pending_exports",
            "gauge",
            "Pending exports after the last cycle, by connector and operation.",
            "op",
            &self.pending_exports,
        );
        head(
            &mut o,
            "dirsync_connector_space_objects",
            "gauge",
            "Live connector-space objects after the last cycle, by connector.",
        );
        for (c, n) in &self.connector_objects {
            let _ = writeln!(
                o,
                "dirsync_connector_space_objects{{connector=\"{}\"}} {n}",
                esc(c)
            );
        }
        if let Some(n) = self.metaverse_objects {
            scalar(
                &mut o,
                "dirsync_metaverse_objects",
                "gauge",
                "Metaverse objects after the last cycle.",
                n as f64,
            );
        }
        head(
            &mut o,
            "dirsync_build_info",
            "gauge",
            "Always 1; the version is a label.",
        );
        let _ = writeln!(
            o,
            "dirsync_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        scalar(
            &mut o,
            "dirsync_threshold_stops_total",
            "counter",
            "Cycles stopped by the deletion threshold.",
            self.threshold_stops as f64,
        );
        scalar(
            &mut o,
            "dirsync_state_busy_total",
            "counter",
            "Cycle starts put off because another dirsync process held the state.",
            self.state_busy as f64,
        );
        scalar(
            &mut o,
            "dirsync_last_success_timestamp_seconds",
            "gauge",
            "Unix time the last completed cycle ended (0: none yet).",
            self.last_success
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or(0.0, |t| t.timestamp_millis() as f64 / 1000.0),
        );
        scalar(
            &mut o,
            "dirsync_scheduler_suspended",
            "gauge",
            "1 when an admin suspended the scheduler.",
            f64::from(b(g.suspended)),
        );
        scalar(
            &mut o,
            "dirsync_scheduler_enabled",
            "gauge",
            "1 when sync cycles are enabled.",
            f64::from(b(g.enabled)),
        );
        scalar(
            &mut o,
            "dirsync_staging_mode",
            "gauge",
            "1 when staging mode is on (no exports).",
            f64::from(b(g.staging)),
        );
        scalar(
            &mut o,
            "dirsync_cycle_in_progress",
            "gauge",
            "1 while a cycle runs.",
            f64::from(b(g.in_progress)),
        );
        scalar(
            &mut o,
            "dirsync_next_cycle_timestamp_seconds",
            "gauge",
            "Unix time the next cycle is due (0: none scheduled).",
            g.next_cycle.unwrap_or(0.0),
        );
        scalar(
            &mut o,
            "dirsync_scheduler_interval_seconds",
            "gauge",
            "Configured time between cycle starts.",
            g.interval_seconds as f64,
        );
        o
    }
}

/// The scheduler's current state as gauges.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Suspended by an admin.
    pub suspended: bool,
    /// Cycles enabled.
    pub enabled: bool,
    /// Staging mode.
    pub staging: bool,
    /// A cycle is running.
    pub in_progress: bool,
    /// Unix time of the next due cycle.
    pub next_cycle: Option<f64>,
    /// Interval.
    pub interval_seconds: u64,
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn scalar(o: &mut String, name: &str, kind: &str, help: &str, v: f64) {
    head(o, name, kind, help);
    let _ = writeln!(o, "{name} {}", fmt_f(v));
}

fn labelled<T: std::fmt::Display>(
    o: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    map: &BTreeMap<(String, &'static str), T>,
) {
    head(o, name, kind, help);
    for ((c, k), n) in map {
        let _ = writeln!(o, "{name}{{connector=\"{}\",{label}=\"{k}\"}} {n}", esc(c));
    }
}

/// Label value escaping (backslash, double quote, newline).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn fmt_f(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut m = Metrics::default();
        m.pending_exports.insert(("x\"y".into(), "add"), 2);
        let t = m.render(&Gauges::default());
        assert!(
            t.contains("dirsync_pending_exports{connector=\"x\\\"y\",op=\"add\"} 2"),
            "{t}"
        );
        assert!(t.contains("dirsync_cycle_duration_seconds_bucket{le=\"+Inf\"} 0"));
    }
}

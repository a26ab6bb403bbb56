//! CLI of the scheduler: `dirsync serve` and `dirsync scheduler get|set|suspend|resume|override`.
//!
//! Neither opens the engine for settings: they live in a side file next to the state, so
//! `dirsync scheduler suspend` works while `dirsync serve` holds the state for a cycle.

use clap::{Subcommand, ValueEnum};
use dirsync::config::{Config, parse_duration_secs};
use dirsync::engine::EngineError;
use dirsync::scheduler::{
    self, ConnectorOverridePatch, CycleSummary, NextCyclePolicy, SchedulerPatch, SchedulerSettings,
    ServeOptions,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// on / off.
#[derive(Clone, Copy, ValueEnum)]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

/// delta / initial.
#[derive(Clone, Copy, ValueEnum)]
pub enum Policy {
    /// Delta import, delta sync, export.
    Delta,
    /// Full import, full sync, export (once).
    Initial,
}

/// `dirsync scheduler ...`.
#[derive(Subcommand)]
pub enum SchedulerCommand {
    /// Show the effective settings (configuration defaults plus admin changes).
    Get,
    /// Change settings; a running `dirsync serve` applies them before its next cycle.
    Set {
        /// Time between cycle starts (`30m`, `1h`, `90s`, seconds).
        #[arg(long, value_name = "DURATION")]
        interval: Option<String>,
        /// Enable sync cycles.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Disable sync cycles.
        #[arg(long)]
        disable: bool,
        /// Staging mode: import and sync, no export.
        #[arg(long, value_enum)]
        staging: Option<OnOff>,
        /// Policy of the next cycle (initial goes back to delta after it ran).
        #[arg(long, value_enum)]
        next: Option<Policy>,
        /// Start the next cycle at this RFC 3339 time, `now`, or `clear`.
        #[arg(long, value_name = "TIME")]
        start: Option<String>,
        /// Days of run history kept.
        #[arg(long, value_name = "DAYS")]
        purge_days: Option<u32>,
        /// Scheduled full reconciliation interval (`7d`, `24h`; `0` turns it off).
        #[arg(long, value_name = "DURATION")]
        full_import_interval: Option<String>,
    },
    /// Suspend the scheduler: no new cycle starts (a running one finishes).
    Suspend,
    /// Resume a suspended scheduler.
    Resume,
    /// Per-connector override for the next cycle (Set-ADSyncSchedulerConnectorOverride).
    Override {
        /// Connector name.
        connector: String,
        /// Run a full import on this connector in the next cycle.
        #[arg(long)]
        full_import: bool,
        /// Run a full sync on this connector in the next cycle.
        #[arg(long)]
        full_sync: bool,
        /// Scheduled full reconciliation interval of this connector (`24h`; `default` for
        /// the global one).
        #[arg(long, value_name = "DURATION")]
        full_import_interval: Option<String>,
        /// Remove the pending full import / full sync requests.
        #[arg(long, conflicts_with_all = ["full_import", "full_sync"])]
        clear: bool,
    },
}

fn hours(s: &str) -> Result<u64, String> {
    scheduler::settings::duration_hours(s)
        .ok_or_else(|| format!("'{s}' is not a duration (like 7d, 24h, 30m, 90s)"))
}

/// Runs `dirsync scheduler ...`.
pub fn scheduler(config_path: &Path, json: bool, cmd: &SchedulerCommand) -> Result<(), String> {
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    let patch = match cmd {
        SchedulerCommand::Get => None,
        SchedulerCommand::Suspend => Some(SchedulerPatch {
            suspended: Some(true),
            ..SchedulerPatch::default()
        }),
        SchedulerCommand::Resume => Some(SchedulerPatch {
            suspended: Some(false),
            ..SchedulerPatch::default()
        }),
        SchedulerCommand::Set {
            interval,
            enable,
            disable,
            staging,
            next,
            start,
            purge_days,
            full_import_interval,
        } => {
            let mut p = SchedulerPatch::default();
            if let Some(i) = interval {
                p.interval_seconds =
                    Some(parse_duration_secs(i).filter(|v| *v > 0).ok_or_else(|| {
                        format!("--interval: '{i}' is not a duration above zero")
                    })?);
            }
            if *enable {
                p.sync_cycle_enabled = Some(true);
            }
            if *disable {
                p.sync_cycle_enabled = Some(false);
            }
            p.staging_mode = staging.map(|s| matches!(s, OnOff::On));
            p.next_cycle_policy = next.map(|n| match n {
                Policy::Delta => NextCyclePolicy::Delta,
                Policy::Initial => NextCyclePolicy::Initial,
            });
            p.next_cycle_start_utc = start.as_deref().map(|s| match s {
                "clear" => None,
                "now" => Some(dirsync::store::now()),
                t => Some(t.to_string()),
            });
            p.purge_run_history_days = *purge_days;
            if let Some(f) = full_import_interval {
                p.full_import_interval_hours =
                    Some(hours(f).map_err(|e| format!("--full-import-interval: {e}"))?);
            }
            if p == SchedulerPatch::default() {
                return Err("nothing to set; see `dirsync scheduler set --help`".into());
            }
            Some(p)
        }
        SchedulerCommand::Override {
            connector,
            full_import,
            full_sync,
            full_import_interval,
            clear,
        } => {
            let mut o = ConnectorOverridePatch::default();
            if *full_import {
                o.full_import_required = Some(true);
            }
            if *full_sync {
                o.full_sync_required = Some(true);
            }
            if *clear {
                o.full_import_required = Some(false);
                o.full_sync_required = Some(false);
            }
            if let Some(f) = full_import_interval {
                o.full_import_interval_hours = Some(if f == "default" {
                    None
                } else {
                    Some(hours(f).map_err(|e| format!("--full-import-interval: {e}"))?)
                });
            }
            if o == ConnectorOverridePatch::default() {
                return Err(
                    "nothing to set: --full-import, --full-sync, --full-import-interval or --clear"
                        .into(),
                );
            }
            Some(SchedulerPatch {
                connector_overrides: Some(BTreeMap::from([(connector.clone(), o)])),
                ..SchedulerPatch::default()
            })
        }
    };
    let settings = match patch {
        Some(p) => scheduler::update_settings(&config, &p),
        None => scheduler::load_settings(&config),
    }
    .map_err(|e| e.to_string())?;
    let serving = scheduler::serve_status(&config);
    if json {
        let mut v = serde_json::to_value(&settings).map_err(|e| e.to_string())?;
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "serve".into(),
                serde_json::to_value(&serving).map_err(|e| e.to_string())?,
            );
        }
        let text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print_settings(&settings, &scheduler::settings_path(&config));
        match &serving {
            Some(st) => {
                println!(
                    "dirsync serve:            running (pid {}, {}), {} cycles run{}",
                    st.pid,
                    st.endpoint,
                    st.cycles_run,
                    if st.cycle_in_progress {
                        ", a cycle is running"
                    } else {
                        ""
                    }
                );
                println!(
                    "next cycle due (UTC):     {}",
                    st.next_cycle_utc
                        .as_deref()
                        .unwrap_or("none (suspended or disabled)")
                );
                if let Some(c) = &st.last_cycle {
                    println!(
                        "last cycle:               {} {} ({} -> {})",
                        c.policy, c.result, c.started, c.ended
                    );
                }
            }
            None => println!("dirsync serve:            not running"),
        }
    }
    Ok(())
}

fn print_settings(s: &SchedulerSettings, file: &Path) {
    println!("sync cycle enabled:       {}", s.sync_cycle_enabled);
    println!("interval:                 {} s", s.interval_seconds);
    println!("suspended:                {}", s.suspended);
    println!("staging mode:             {}", s.staging_mode);
    println!("next cycle policy:        {:?}", s.next_cycle_policy);
    println!(
        "next cycle start (UTC):   {}",
        s.next_cycle_start_utc
            .as_deref()
            .unwrap_or("one interval after the previous start")
    );
    println!(
        "purge run history after:  {} days",
        s.purge_run_history_days
    );
    println!("maintenance enabled:      {}", s.maintenance_enabled);
    println!(
        "full import every:        {}",
        if s.full_import_interval_hours == 0 {
            "off".to_string()
        } else {
            format!("{} h", s.full_import_interval_hours)
        }
    );
    for (name, o) in &s.connector_overrides {
        println!(
            "override {name}: full import required={} full sync required={} full import every={}",
            o.full_import_required,
            o.full_sync_required,
            o.full_import_interval_hours
                .map(|h| format!("{h} h"))
                .unwrap_or_else(|| "default".into())
        );
    }
    println!("admin changes file:       {}", file.display());
}

/// Runs `dirsync serve`; returns the error of the last cycle for `--once`.
pub fn serve(
    config_path: &Path,
    json: bool,
    listen: Option<SocketAddr>,
    allow_remote: bool,
    once: bool,
) -> Result<Option<EngineError>, String> {
    let on_cycle: scheduler::runner::CycleFn = Arc::new(move |c: &CycleSummary| {
        if json {
            if let Ok(t) = serde_json::to_string(c) {
                println!("{t}");
            }
        } else {
            println!(
                "cycle {} {} {} ({:.1} s){}",
                c.run_id
                    .map(|i| format!("#{i}"))
                    .unwrap_or_else(|| "-".into()),
                c.policy,
                c.result,
                c.duration_seconds,
                c.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
        }
        let _ = std::io::stdout().flush();
    });
    let handle = scheduler::start(
        config_path,
        ServeOptions {
            listen,
            allow_remote,
            once,
            handle_signals: true,
            on_cycle: Some(on_cycle),
        },
    )
    .map_err(|e| e.to_string())?;
    if json {
        println!(
            "{}",
            serde_json::json!({"listening": format!("http://{}", handle.addr)})
        );
    } else {
        println!(
            "dirsync serve: status endpoint http://{} (/healthz, /metrics); SIGINT/SIGTERM stops after the current step",
            handle.addr
        );
    }
    let _ = std::io::stdout().flush();
    let report = handle.join().map_err(|e| e.to_string())?;
    if !json {
        println!(
            "dirsync serve: {} ({} cycles)",
            if report.stopped {
                "stopped"
            } else {
                "finished"
            },
            report.cycles
        );
    }
    Ok(if once && !report.stopped {
        report.last_error
    } else {
        None
    })
}

//! The scheduling loop of `dirsync serve` and its loopback status endpoint.
//!
//! The engine (and with it the state lock) is opened for each cycle only and closed after
//! it, so `dirsync status`, `dirsync plan` or `dirsync confirm-deletes` work between cycles.
//! A cycle that finds the state locked by another process is put off and retried shortly.
//! Settings and the configuration are re-read before every cycle.

use super::SchedulerError;
use super::metrics::{CycleSummary, Gauges, Metrics};
use super::settings::{self, NextCyclePolicy, SchedulerSettings};
use crate::config::Config;
use crate::engine::{Engine, EngineError, RunOptions, RunRecord};
use crate::store::{self, StoreError};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A delta import must run at least this often, or the next import is a full one
/// (REFERENCE section 1: "a delta must run at least every 7 days or a full cycle is needed").
pub const MAX_DELTA_GAP_HOURS: i64 = 7 * 24;

/// How long a cycle start is put off when another process holds the state.
const BUSY_RETRY: Duration = Duration::from_secs(2);

/// Called after every cycle (the CLI prints a line).
pub type CycleFn = Arc<dyn Fn(&CycleSummary) + Send + Sync>;

/// Options of `dirsync serve`.
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Status endpoint address (default: the configuration's `scheduler.listen`).
    pub listen: Option<SocketAddr>,
    /// Allow a non-loopback status endpoint.
    pub allow_remote: bool,
    /// Run one due cycle (unless suspended or disabled) and return.
    pub once: bool,
    /// Stop on SIGINT / SIGTERM (Ctrl+C) after the current run step; a second signal exits
    /// the process at once (code 130). For the CLI: a library host handles its own signals
    /// and calls [`SchedulerHandle::stop`].
    pub handle_signals: bool,
    /// Called after every cycle.
    pub on_cycle: Option<CycleFn>,
}

/// What a finished `serve` did.
#[derive(Debug)]
pub struct ServeReport {
    /// Cycles run.
    pub cycles: u64,
    /// The last cycle.
    pub last_cycle: Option<CycleSummary>,
    /// The error that stopped the last cycle (for `--once` exit codes).
    pub last_error: Option<EngineError>,
    /// Stopped by a signal or [`SchedulerHandle::stop`].
    pub stopped: bool,
}

/// Live scheduler state shared with the HTTP handlers.
#[derive(Debug, Default)]
struct Shared {
    metrics: Metrics,
    last_cycle: Option<CycleSummary>,
    next_cycle: Option<chrono::DateTime<chrono::Utc>>,
    settings: Option<SchedulerSettings>,
    in_progress: bool,
    /// Connector and run profile of the running step.
    current_step: Option<String>,
    /// Start of the running cycle.
    cycle_started: Option<chrono::DateTime<chrono::Utc>>,
    /// When the scheduler last started or became runnable (resumed / enabled).
    active_since: Option<chrono::DateTime<chrono::Utc>>,
}

type SharedRef = Arc<Mutex<Shared>>;

fn lock(s: &SharedRef) -> MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running scheduler.
pub struct SchedulerHandle {
    /// Where `/healthz` and `/metrics` answer.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<ServeReport, SchedulerError>>,
}

impl SchedulerHandle {
    /// Asks the scheduler to stop after the current run step.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// The stop flag (set it to stop after the current step).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Waits for the scheduler to finish.
    pub fn join(self) -> Result<ServeReport, SchedulerError> {
        match self.thread.join() {
            Ok(r) => r,
            Err(_) => Err(SchedulerError::Io {
                path: "scheduler thread".into(),
                source: std::io::Error::other("the scheduler thread panicked"),
            }),
        }
    }
}

/// Starts the scheduler for the configuration file `config_path`: binds the status endpoint,
/// then runs cycles on a thread of its own.
pub fn start(config_path: &Path, opts: ServeOptions) -> Result<SchedulerHandle, SchedulerError> {
    let config = Config::load(config_path)?;
    let listen = match opts.listen {
        Some(a) => a,
        None => config
            .scheduler
            .listen
            .parse()
            .map_err(|_| SchedulerError::Invalid {
                key: "listen".into(),
                message: format!("'{}' is not an address", config.scheduler.listen),
            })?,
    };
    if !listen.ip().is_loopback() && !opts.allow_remote {
        return Err(SchedulerError::NonLoopback(listen.to_string()));
    }
    let serve_lock = serve_lock(&config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("dirsync-serve-http")
        .build()
        .map_err(|e| SchedulerError::Io {
            path: "tokio runtime".into(),
            source: e,
        })?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(listen))
        .map_err(|e| SchedulerError::Io {
            path: listen.to_string(),
            source: e,
        })?;
    let addr = listener.local_addr().map_err(|e| SchedulerError::Io {
        path: listen.to_string(),
        source: e,
    })?;
    let shared: SharedRef = Arc::new(Mutex::new(Shared {
        active_since: Some(chrono::Utc::now()),
        ..Shared::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let app = Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/metrics", axum::routing::get(metrics))
        .with_state(shared.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        let res = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "status endpoint failed");
        }
    });
    if opts.handle_signals {
        let flag = stop.clone();
        rt.spawn(async move {
            wait_for_signal().await;
            tracing::warn!("stop requested by signal: finishing the current run step");
            flag.store(true, Ordering::SeqCst);
            wait_for_signal().await;
            // The state survives an interrupted step (SQLite transactions; the watermark
            // advances only with the batch it covers), so a second signal may cut it short.
            tracing::warn!("second signal: exiting without finishing the current run step");
            std::process::exit(130);
        });
    }
    tracing::info!(%addr, "status endpoint listening (/healthz, /metrics)");
    let path = config_path.to_path_buf();
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("dirsync-scheduler".into())
        .spawn(move || {
            let mut status = StatusFile::new(addr);
            let r = run_loop(&path, &opts, &shared, &flag, &mut status);
            status.remove();
            drop(serve_lock);
            let _ = tx.send(());
            rt.shutdown_timeout(Duration::from_secs(2));
            r
        })
        .map_err(|e| SchedulerError::Io {
            path: "scheduler thread".into(),
            source: e,
        })?;
    Ok(SchedulerHandle { addr, stop, thread })
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; Ctrl+C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

fn sleep_until(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

fn run_loop(
    config_path: &Path,
    opts: &ServeOptions,
    shared: &SharedRef,
    stop: &Arc<AtomicBool>,
    status: &mut StatusFile,
) -> Result<ServeReport, SchedulerError> {
    let mut report = ServeReport {
        cycles: 0,
        last_cycle: None,
        last_error: None,
        stopped: false,
    };
    // The first cycle is due at once; later ones one interval (as set now: a changed
    // interval applies to the cycle being waited for) after the previous start.
    let mut last_start: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut was_runnable = true;
    let mut last_interval = 60;
    let mut loaded = Loaded::default();
    loop {
        if stop.load(Ordering::SeqCst) {
            report.stopped = true;
            break;
        }
        let (config, settings) = match loaded.get(config_path) {
            Ok(x) => x,
            Err(e) => {
                // A broken configuration or settings file fails the cycles that are due (and
                // /healthz with them) until it is fixed; the scheduler keeps going.
                if chrono::Utc::now() >= next_due(last_start, last_interval) {
                    tracing::error!(error = %e, "cycle not started");
                    let now = chrono::Utc::now();
                    let summary = unrecorded_summary(
                        NextCyclePolicy::Delta,
                        now,
                        rfc3339(now),
                        0.0,
                        Some(&e),
                    );
                    record_cycle(
                        shared,
                        opts,
                        &mut report,
                        CycleRun {
                            summary,
                            steps: Vec::new(),
                            error: Some(e),
                            pending: None,
                        },
                    );
                    if opts.once {
                        break;
                    }
                    last_start = Some(now);
                }
                sleep_until(stop, Duration::from_millis(250));
                continue;
            }
        };
        last_interval = settings.interval_seconds;
        let runnable = settings.sync_cycle_enabled && !settings.suspended;
        let requested = settings
            .next_cycle_start_utc
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        let due = requested.unwrap_or_else(|| next_due(last_start, last_interval));
        {
            let mut s = lock(shared);
            if runnable && !was_runnable {
                s.active_since = Some(chrono::Utc::now());
            }
            s.next_cycle = runnable.then_some(due);
            s.settings = Some(settings.clone());
            status.publish(&config, &s);
        }
        was_runnable = runnable;
        if !runnable {
            if opts.once {
                tracing::info!(
                    suspended = settings.suspended,
                    enabled = settings.sync_cycle_enabled,
                    "no cycle: the scheduler is suspended or disabled"
                );
                break;
            }
            sleep_until(stop, Duration::from_millis(250));
            continue;
        }
        let now = chrono::Utc::now();
        if due > now {
            let wait = (due - now).to_std().unwrap_or_default();
            sleep_until(stop, wait.min(Duration::from_millis(250)));
            continue;
        }
        let started = Instant::now();
        let started_utc = chrono::Utc::now();
        {
            let mut s = lock(shared);
            s.in_progress = true;
            s.cycle_started = Some(started_utc);
            status.publish(&config, &s);
        }
        let outcome = run_cycle(&config, &settings, requested.is_some(), stop, shared);
        {
            let mut s = lock(shared);
            s.in_progress = false;
            s.current_step = None;
            s.cycle_started = None;
        }
        match outcome {
            CycleOutcome::Busy => {
                lock(shared).metrics.state_busy += 1;
                tracing::warn!("the state is in use by another dirsync process; cycle put off");
                sleep_until(stop, BUSY_RETRY);
                continue;
            }
            CycleOutcome::Ran(run) => {
                match &run.error {
                    Some(EngineError::Cancelled) => tracing::warn!(
                        result = %run.summary.result,
                        "cycle stopped after the current step"
                    ),
                    Some(e) => {
                        tracing::warn!(result = %run.summary.result, error = %e, "cycle stopped")
                    }
                    None => tracing::info!(
                        result = %run.summary.result,
                        seconds = run.summary.duration_seconds,
                        "cycle finished"
                    ),
                }
                record_cycle(shared, opts, &mut report, *run);
            }
        }
        last_start = Some(started_utc);
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "cycle done"
        );
        if opts.once {
            break;
        }
    }
    report.stopped |= stop.load(Ordering::SeqCst);
    Ok(report)
}

/// What a running `dirsync serve` publishes next to the state (`<state>.serve.json`) for
/// `dirsync scheduler get` and Get-DirSyncScheduler; removed when it stops.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ServeStatus {
    /// Process id of `dirsync serve`.
    pub pid: u32,
    /// Status endpoint (`http://127.0.0.1:9464`).
    pub endpoint: String,
    /// When the next cycle is due (none while suspended or disabled).
    pub next_cycle_utc: Option<String>,
    /// A cycle is running.
    pub cycle_in_progress: bool,
    /// The last cycle.
    pub last_cycle: Option<CycleSummary>,
    /// Cycles run since start.
    pub cycles_run: u64,
}

/// One scheduler per state: `<state>.serve.lock`, held while `dirsync serve` runs.
fn serve_lock(config: &Config) -> Result<std::fs::File, SchedulerError> {
    let path = settings::state_side_path(config, ".serve.lock");
    let io = |e: std::io::Error| SchedulerError::Io {
        path: path.display().to_string(),
        source: e,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    if f.try_lock().is_err() {
        let who = serve_status(config)
            .map(|s| format!(" (pid {}, {})", s.pid, s.endpoint))
            .unwrap_or_default();
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("another dirsync serve runs on this state{who}"),
        )));
    }
    Ok(f)
}

/// The side file of a configuration's running `dirsync serve`.
pub fn serve_status_path(config: &Config) -> std::path::PathBuf {
    settings::state_side_path(config, ".serve.json")
}

/// The status a running `dirsync serve` published, if one runs (a file left behind by a
/// process that no longer exists is ignored).
pub fn serve_status(config: &Config) -> Option<ServeStatus> {
    let text = std::fs::read_to_string(serve_status_path(config)).ok()?;
    let st: ServeStatus = serde_json::from_str(&text).ok()?;
    process_alive(st.pid).then_some(st)
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

/// Writes [`ServeStatus`] when it changes.
struct StatusFile {
    endpoint: String,
    path: Option<std::path::PathBuf>,
    last: Option<ServeStatus>,
}

impl StatusFile {
    fn new(addr: SocketAddr) -> StatusFile {
        StatusFile {
            endpoint: format!("http://{addr}"),
            path: None,
            last: None,
        }
    }

    fn publish(&mut self, config: &Config, s: &Shared) {
        let st = ServeStatus {
            pid: std::process::id(),
            endpoint: self.endpoint.clone(),
            next_cycle_utc: s.next_cycle.map(rfc3339),
            cycle_in_progress: s.in_progress,
            last_cycle: s.last_cycle.clone(),
            cycles_run: s.metrics.duration_count,
        };
        let path = serve_status_path(config);
        if self.last.as_ref() == Some(&st) && self.path.as_ref() == Some(&path) {
            return;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = std::path::PathBuf::from(format!("{}.tmp", path.display()));
        let written = serde_json::to_string_pretty(&st)
            .map_err(std::io::Error::other)
            .and_then(|t| std::fs::write(&tmp, t))
            .and_then(|_| std::fs::rename(&tmp, &path));
        match written {
            Ok(()) => {
                self.last = Some(st);
                self.path = Some(path);
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot write the serve status")
            }
        }
    }

    fn remove(&self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// When the next cycle is due: at once for the first, else one interval after the previous
/// start.
fn next_due(
    last_start: Option<chrono::DateTime<chrono::Utc>>,
    interval_seconds: u64,
) -> chrono::DateTime<chrono::Utc> {
    last_start
        .map(|t| t + chrono::Duration::seconds(interval_seconds as i64))
        .unwrap_or_else(chrono::Utc::now)
}

/// A file's modification time and length, or `None` when it cannot be read (absent).
type Stamp = Option<(std::time::SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// A stamp that can be trusted to change with the file: its modification time lies far
/// enough in the past that a same-length rewrite within the file system's timestamp
/// granularity cannot hide behind it.
fn settled(s: &Stamp) -> bool {
    s.is_none_or(|(t, _)| t.elapsed().is_ok_and(|age| age > Duration::from_secs(2)))
}

/// The last configuration and settings read by the idle wait, with the stamps of the
/// configuration file and the settings side file taken before they were read: they are
/// read again only when either file changed (or was written too recently to tell).
#[derive(Default)]
struct Loaded {
    last: Option<(Stamp, Stamp, Config, SchedulerSettings)>,
}

impl Loaded {
    /// The configuration and the effective scheduler settings, as the files hold them now.
    fn get(&mut self, config_path: &Path) -> Result<(Config, SchedulerSettings), EngineError> {
        let config_stamp = stamp(config_path);
        if let Some((cs, ss, config, settings)) = &self.last
            && *cs == config_stamp
            && settled(cs)
        {
            let side = stamp(&settings::settings_path(config));
            if *ss == side && settled(ss) {
                return Ok((config.clone(), settings.clone()));
            }
        }
        self.last = None;
        let config = Config::load(config_path)?;
        let side_stamp = stamp(&settings::settings_path(&config));
        let settings = settings::load_settings(&config)
            .map_err(|e| EngineError::Store(StoreError::Corrupt(e.to_string())))?;
        self.last = Some((config_stamp, side_stamp, config.clone(), settings.clone()));
        Ok((config, settings))
    }
}

enum CycleOutcome {
    /// Another process holds the state.
    Busy,
    /// The cycle ran (or failed to start for a reason that counts as a failed cycle).
    Ran(Box<CycleRun>),
}

struct CycleRun {
    summary: CycleSummary,
    steps: Vec<RunRecord>,
    error: Option<EngineError>,
    pending: Option<crate::engine::Status>,
}

fn failed(
    policy: NextCyclePolicy,
    started: chrono::DateTime<chrono::Utc>,
    t0: Instant,
    e: EngineError,
) -> CycleOutcome {
    CycleOutcome::Ran(Box::new(CycleRun {
        summary: unrecorded_summary(
            policy,
            started,
            store::now(),
            t0.elapsed().as_secs_f64(),
            Some(&e),
        ),
        steps: Vec::new(),
        error: Some(e),
        pending: None,
    }))
}

/// The summary of a cycle the run history has no record of (it failed to start, or the
/// history is unreadable).
fn unrecorded_summary(
    policy: NextCyclePolicy,
    started: chrono::DateTime<chrono::Utc>,
    ended: String,
    duration_seconds: f64,
    error: Option<&EngineError>,
) -> CycleSummary {
    CycleSummary {
        run_id: None,
        policy: cycle_name(policy).into(),
        result: match error {
            Some(EngineError::Cancelled) => "stopped-cancelled".into(),
            Some(_) => "stopped-error".into(),
            None => "success".into(),
        },
        started: rfc3339(started),
        ended,
        duration_seconds,
        message: error.map(|e| e.to_string()),
    }
}

/// Books a finished (or failed) cycle: metrics, the shared state behind /healthz and the
/// status file, the caller's callback and the report.
fn record_cycle(shared: &SharedRef, opts: &ServeOptions, report: &mut ServeReport, run: CycleRun) {
    let CycleRun {
        summary,
        steps,
        error,
        pending,
    } = run;
    {
        let mut s = lock(shared);
        s.metrics.observe_cycle(&summary, &steps);
        if let Some(st) = &pending {
            s.metrics.set_status(st);
        }
        s.last_cycle = Some(summary.clone());
    }
    report.cycles += 1;
    if let Some(f) = &opts.on_cycle {
        f(&summary);
    }
    report.last_cycle = Some(summary);
    report.last_error = error;
}

fn cycle_name(p: NextCyclePolicy) -> &'static str {
    match p {
        NextCyclePolicy::Delta => "DeltaCycle",
        NextCyclePolicy::Initial => "InitialCycle",
    }
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn run_cycle(
    config: &Config,
    settings: &SchedulerSettings,
    consumed_start_time: bool,
    stop: &Arc<AtomicBool>,
    shared: &SharedRef,
) -> CycleOutcome {
    let t0 = Instant::now();
    let started = chrono::Utc::now();
    let policy = settings.next_cycle_policy;
    let mut engine = match Engine::open(config.clone()) {
        Ok(e) => e,
        Err(EngineError::Store(StoreError::Locked { .. })) => return CycleOutcome::Busy,
        Err(e) => return failed(policy, started, t0, e),
    };
    engine.set_stop_after_step_flag(stop.clone());
    let sh = shared.clone();
    engine.set_progress(Some(Arc::new(move |p: &crate::engine::Progress| {
        let step = format!("{} {}", p.connector, p.profile);
        let mut s = lock(&sh);
        if s.current_step.as_deref() != Some(step.as_str()) {
            s.current_step = Some(step);
        }
    })));
    engine.config.safety.staging_mode = settings.staging_mode;
    engine.config.history.retention_days = if settings.maintenance_enabled {
        settings.purge_run_history_days
    } else {
        36_500
    };
    if let Err(e) = prepare(&mut engine, config, settings) {
        return failed(policy, started, t0, e);
    }
    if consumed_start_time
        && let Err(e) = settings::modify_overlay(config, |o| o.next_cycle_start_utc = None)
    {
        tracing::error!(error = %e, "could not clear the requested start time");
    }
    let before = engine
        .history_without_errors(1)
        .ok()
        .and_then(|h| h.first().map(|r| r.id))
        .unwrap_or(0);
    tracing::info!(
        policy = cycle_name(policy),
        staging = settings.staging_mode,
        "cycle starting"
    );
    // Staging is the engine's own `safety.staging_mode`, set above.
    let result = engine.cycle(policy.cycle_policy(), &RunOptions::default());
    let error = result.err();
    let (cycle, steps) = cycle_records(&engine, before);
    if policy == NextCyclePolicy::Initial
        && matches!(&error, None | Some(EngineError::DeletionThreshold { .. }))
        && let Err(e) = settings::modify_overlay(config, |o| o.next_cycle_policy = None)
    {
        tracing::error!(error = %e, "could not reset the next cycle policy to Delta");
    }
    record_import_times(&engine, &steps);
    let pending = engine.status().ok();
    drop(engine);
    let summary = match cycle {
        Some(c) => CycleSummary {
            run_id: Some(c.id),
            policy: c.profile.clone(),
            result: c.result.clone(),
            started: c.started.clone(),
            ended: c.ended.clone().unwrap_or_else(store::now),
            duration_seconds: t0.elapsed().as_secs_f64(),
            message: c.message.clone(),
        },
        None => unrecorded_summary(
            policy,
            started,
            store::now(),
            t0.elapsed().as_secs_f64(),
            error.as_ref(),
        ),
    };
    CycleOutcome::Ran(Box::new(CycleRun {
        summary,
        steps,
        error,
        pending,
    }))
}

/// Hands the admin's connector overrides to the engine (which clears them when the full
/// import / full sync has run) and schedules full reconciliation where it is due.
fn prepare(
    engine: &mut Engine,
    config: &Config,
    settings: &SchedulerSettings,
) -> Result<(), EngineError> {
    let names = engine.connector_names();
    let mut handed = Vec::new();
    for (name, o) in &settings.connector_overrides {
        if !(o.full_import_required || o.full_sync_required) {
            continue;
        }
        if names.contains(name) {
            tracing::info!(
                connector = %name,
                full_import = o.full_import_required,
                full_sync = o.full_sync_required,
                "connector override: full run required"
            );
            engine.require_full(name, o.full_import_required, o.full_sync_required)?;
        } else {
            tracing::warn!(connector = %name, "override for a connector no longer configured dropped");
        }
        handed.push(name.clone());
    }
    if !handed.is_empty()
        && let Err(e) = settings::modify_overlay(config, |ov| {
            if let Some(map) = &mut ov.connector_overrides {
                for n in &handed {
                    if let Some(p) = map.get_mut(n) {
                        p.full_import_required = None;
                        p.full_sync_required = None;
                    }
                }
            }
        })
    {
        // The flags are in the state now; a second hand-over next cycle is harmless.
        tracing::error!(error = %e, "could not clear the handed-over connector overrides");
    }
    let now = chrono::Utc::now();
    for name in &names {
        let hours = settings.full_import_interval_for(name);
        let last_full = last_import(engine, name, true)?;
        let last_any = last_import(engine, name, false)?;
        let reason = match (last_full, last_any) {
            (None, _) => Some("no full import recorded"),
            (Some(f), _) if hours > 0 && now - f > chrono::Duration::hours(hours as i64) => {
                Some("scheduled full reconciliation")
            }
            (_, Some(a)) if now - a > chrono::Duration::hours(MAX_DELTA_GAP_HOURS) => {
                Some("no import for 7 days")
            }
            _ => None,
        };
        if let Some(reason) = reason {
            tracing::info!(connector = %name, reason, "full import scheduled");
            engine.require_full(name, true, false)?;
        }
    }
    Ok(())
}

fn setting_key(connector: &str, full: bool) -> String {
    format!(
        "scheduler.last_{}import.{connector}",
        if full { "full_" } else { "" }
    )
}

/// The end of the connector's last successful (full) import: the newer of the scheduler's
/// own record (kept past the run-history purge) and the run history.
fn last_import(
    engine: &Engine,
    connector: &str,
    full: bool,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, EngineError> {
    let c = engine.store().conn();
    let stored = store::setting(c, &setting_key(connector, full))?;
    let profiles = if full {
        "'FullImport'"
    } else {
        "'FullImport','DeltaImport'"
    };
    let sql = format!(
        "SELECT MAX(ended) FROM run WHERE connector=?1 AND profile IN ({profiles}) AND result='success'"
    );
    let hist: Option<String> = c.query_row(&sql, [connector], |r| r.get(0))?;
    let parse = |s: Option<String>| {
        s.and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    Ok(parse(stored).max(parse(hist)))
}

fn record_import_times(engine: &Engine, steps: &[RunRecord]) {
    for s in steps {
        let (Some(conn), Some(ended)) = (&s.connector, &s.ended) else {
            continue;
        };
        if s.result != "success" {
            continue;
        }
        let keys: &[bool] = match s.profile.as_str() {
            "FullImport" => &[true, false],
            "DeltaImport" => &[false],
            _ => &[],
        };
        for full in keys {
            if let Err(e) = store::set_setting(
                engine.store().conn(),
                &setting_key(conn, *full),
                Some(ended),
            ) {
                tracing::error!(error = %e, "could not record the import time");
            }
        }
    }
}

/// The cycle record and its steps (oldest first) among runs newer than `before`.
fn cycle_records(engine: &Engine, before: i64) -> (Option<RunRecord>, Vec<RunRecord>) {
    let runs = match engine.history_without_errors(512) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "run history unreadable");
            return (None, Vec::new());
        }
    };
    let cycle = runs
        .iter()
        .find(|r| r.id > before && r.parent_id.is_none())
        .cloned();
    let mut steps: Vec<RunRecord> = match &cycle {
        Some(c) => runs
            .into_iter()
            .filter(|r| r.parent_id == Some(c.id))
            .collect(),
        None => Vec::new(),
    };
    steps.reverse();
    (cycle, steps)
}

/// The `/healthz` body.
#[derive(Debug, Serialize)]
pub struct Health {
    /// dirsync version.
    pub version: &'static str,
    /// `ok`, `failing` (last cycle stopped), `stale` (no cycle started or finished for two
    /// intervals), `suspended`, `disabled` or `starting`.
    pub status: &'static str,
    /// The last cycle.
    pub last_cycle: Option<CycleSummary>,
    /// End of the last completed cycle.
    pub last_success_utc: Option<String>,
    /// When the next cycle is due (none while suspended or disabled).
    pub next_cycle_utc: Option<String>,
    /// Suspended by an admin.
    pub suspended: bool,
    /// Cycles enabled.
    pub sync_cycle_enabled: bool,
    /// Staging mode.
    pub staging_mode: bool,
    /// A cycle is running.
    pub cycle_in_progress: bool,
    /// The running step (`connector Profile`), while a cycle runs.
    pub current_step: Option<String>,
    /// Seconds between cycles.
    pub interval_seconds: u64,
    /// Cycles this scheduler has run.
    pub cycles_run: u64,
}

fn health_of(s: &Shared) -> (StatusCode, Health) {
    let settings = s.settings.clone();
    let (suspended, enabled, staging, interval) = settings
        .as_ref()
        .map(|x| {
            (
                x.suspended,
                x.sync_cycle_enabled,
                x.staging_mode,
                x.interval_seconds,
            )
        })
        .unwrap_or((false, true, false, 1800));
    let now = chrono::Utc::now();
    let last_end = s
        .last_cycle
        .as_ref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(&c.ended).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    let reference = last_end.max(s.active_since).max(s.cycle_started);
    let stale = reference
        .map(|t| now - t > chrono::Duration::seconds(2 * interval as i64))
        .unwrap_or(false);
    let failed = s.last_cycle.as_ref().is_some_and(|c| !c.completed());
    let status = if failed {
        "failing"
    } else if !enabled {
        "disabled"
    } else if suspended {
        "suspended"
    } else if stale {
        "stale"
    } else if s.last_cycle.is_none() {
        "starting"
    } else {
        "ok"
    };
    let code = if failed || (stale && enabled && !suspended) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Health {
            version: env!("CARGO_PKG_VERSION"),
            status,
            last_cycle: s.last_cycle.clone(),
            last_success_utc: s.metrics.last_success.clone(),
            next_cycle_utc: s.next_cycle.map(rfc3339),
            suspended,
            sync_cycle_enabled: enabled,
            staging_mode: staging,
            cycle_in_progress: s.in_progress,
            current_step: s.current_step.clone(),
            interval_seconds: interval,
            cycles_run: s.metrics.duration_count,
        },
    )
}

async fn healthz(State(shared): State<SharedRef>) -> Response {
    let (code, h) = health_of(&lock(&shared));
    (code, axum::Json(h)).into_response()
}

async fn metrics(State(shared): State<SharedRef>) -> Response {
    let s = lock(&shared);
    let g = Gauges {
        suspended: s.settings.as_ref().is_some_and(|x| x.suspended),
        enabled: s.settings.as_ref().is_none_or(|x| x.sync_cycle_enabled),
        staging: s.settings.as_ref().is_some_and(|x| x.staging_mode),
        in_progress: s.in_progress,
        next_cycle: s.next_cycle.map(|t| t.timestamp_millis() as f64 / 1000.0),
        interval_seconds: s.settings.as_ref().map_or(0, |x| x.interval_seconds),
    };
    let body = s.metrics.render(&g);
    drop(s);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Runs the scheduler in the calling thread until it stops (signal, `--once`).
pub fn serve(config_path: &Path, opts: ServeOptions) -> Result<ServeReport, SchedulerError> {
    start(config_path, opts)?.join()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn write_aged(path: &Path, text: &str, mtime: SystemTime) {
        std::fs::write(path, text).unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    #[test]
    fn the_idle_wait_reads_the_files_again_only_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("dirsync.toml");
        let side = dir.path().join("state.db.scheduler.json");
        let old = SystemTime::now() - Duration::from_secs(60);
        write_aged(&cfg, "[state]\npath = \"state.db\"\n", old);
        write_aged(&side, r#"{"interval_seconds":111}"#, old);
        let mut loaded = Loaded::default();
        assert_eq!(loaded.get(&cfg).unwrap().1.interval_seconds, 111);
        // Same length and modification time: the last read stands.
        write_aged(&side, r#"{"interval_seconds":222}"#, old);
        assert_eq!(loaded.get(&cfg).unwrap().1.interval_seconds, 111);
        // Another length: read again.
        write_aged(&side, r#"{"interval_seconds":3333}"#, old);
        assert_eq!(loaded.get(&cfg).unwrap().1.interval_seconds, 3333);
        // Another modification time, same length: read again.
        write_aged(
            &side,
            r#"{"interval_seconds":4444}"#,
            old + Duration::from_secs(1),
        );
        assert_eq!(loaded.get(&cfg).unwrap().1.interval_seconds, 4444);
        // A file written under 2 s ago is never trusted to be unchanged, even with the same
        // length and modification time (a rewrite within the timestamp granularity).
        let recent = SystemTime::now() - Duration::from_millis(500);
        write_aged(&side, r#"{"interval_seconds":5555}"#, recent);
        assert_eq!(loaded.get(&cfg).unwrap().1.interval_seconds, 5555);
        write_aged(&side, r#"{"interval_seconds":6666}"#, recent);
        assert_eq!(loaded.get(&cfg).unwrap().1.interval_seconds, 6666);
        // A changed configuration file is read again (here: the side file disappears with
        // the state path it hangs off).
        write_aged(&cfg, "[state]\npath = \"other.db\"\n", old);
        assert_eq!(
            loaded.get(&cfg).unwrap().1.interval_seconds,
            SchedulerSettings::defaults(&Config::load(&cfg).unwrap()).interval_seconds
        );
    }
}

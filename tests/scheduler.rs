//! The scheduler (`dirsync serve`) on an LDIF source and an LDIF target: cycles on a short
//! interval, `/metrics` and `/healthz` over real HTTP, suspend/resume from another process,
//! connector overrides, the next-cycle policy, scheduled full reconciliation, staging mode,
//! a deletion-threshold stop, a busy state, and SIGTERM on the CLI binary.

use dirsync::config::Config;
use dirsync::engine::{CyclePolicy, Engine, RunOptions, RunRecord};
use dirsync::scheduler::{self, SchedulerHandle, SchedulerPatch, ServeOptions};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[state]
path = "state.db"

[safety]
deletion_threshold_count = 3

[scheduler]
interval = "1s"
listen = "127.0.0.1:0"

[[connectors]]
name = "src"
type = "ldif"
[connectors.settings]
path = "src.ldif"
changes_dir = "changes"

[[connectors]]
name = "tgt"
type = "ldif"
[connectors.settings]
path = "tgt.ldif"

[[rules]]
name = "user in"
direction = "inbound"
connector = "src"
source_type = "user"
target_type = "person"
precedence = 100
link_type = "provision"
[[rules.flows]]
target = "uid"
source = "uid"
[[rules.flows]]
target = "sn"
source = "sn"

[[rules]]
name = "user out"
direction = "outbound"
connector = "tgt"
source_type = "person"
target_type = "user"
precedence = 100
link_type = "provision"
[[rules.flows]]
target = "dn"
expression = '"uid=" & [uid] & ",dc=t"'
[[rules.flows]]
target = "objectClass"
constant = "inetOrgPerson"
[[rules.flows]]
target = "uid"
source = "uid"
[[rules.flows]]
target = "sn"
source = "sn"
"#;

fn user(i: usize) -> String {
    format!(
        "dn: uid=u{i},ou=p,dc=s\nobjectClass: inetOrgPerson\nuid: u{i}\nsn: User {i}\nentryUUID: 00000000-0000-0000-0000-{i:012}\n\n"
    )
}

fn setup(users: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("dirsync.toml"), CONFIG).expect("config");
    let mut src = String::from("version: 1\n\n");
    for i in 0..users {
        src.push_str(&user(i));
    }
    std::fs::write(d.join("src.ldif"), src).expect("source");
    std::fs::create_dir_all(d.join("changes")).expect("changes");
    dir
}

fn change(dir: &Path, name: &str, text: &str) {
    std::fs::write(
        dir.join("changes").join(name),
        format!("version: 1\n\n{text}"),
    )
    .expect("write change");
}

fn cfg(dir: &Path) -> Config {
    Config::load(&dir.join("dirsync.toml")).expect("config")
}

fn set(dir: &Path, json: &str) {
    let p: SchedulerPatch = serde_json::from_str(json).expect("patch");
    scheduler::update_settings(&cfg(dir), &p).expect("update settings");
}

fn start(dir: &Path, once: bool) -> SchedulerHandle {
    scheduler::start(
        &dir.join("dirsync.toml"),
        ServeOptions {
            once,
            ..ServeOptions::default()
        },
    )
    .expect("scheduler starts")
}

/// One scheduled cycle (`serve --once`), returning its cycle record and steps (oldest first).
fn once(dir: &Path) -> (RunRecord, Vec<RunRecord>) {
    let report = start(dir, true).join().expect("serve --once");
    assert_eq!(report.cycles, 1, "one cycle ran");
    let id = report
        .last_cycle
        .and_then(|c| c.run_id)
        .expect("cycle recorded");
    let e = Engine::open(cfg(dir)).expect("engine");
    let runs = e.history(200).expect("history");
    let cycle = runs.iter().find(|r| r.id == id).cloned().expect("cycle");
    let mut steps: Vec<RunRecord> = runs
        .into_iter()
        .filter(|r| r.parent_id == Some(id))
        .collect();
    steps.reverse();
    (cycle, steps)
}

fn profiles(steps: &[RunRecord], connector: &str) -> Vec<String> {
    steps
        .iter()
        .filter(|s| s.connector.as_deref() == Some(connector))
        .map(|s| s.profile.clone())
        .collect()
}

/// A plain HTTP/1.1 GET: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "unexpected chunked body"
    );
    (status, body.to_string())
}

fn health(addr: SocketAddr) -> (u16, serde_json::Value) {
    let (code, body) = get(addr, "/healthz");
    (code, serde_json::from_str(&body).expect("healthz JSON"))
}

fn cycles_run(addr: SocketAddr) -> u64 {
    health(addr).1["cycles_run"].as_u64().expect("cycles_run")
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn valid_name(n: &str) -> bool {
    let mut cs = n.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses Prometheus text format 0.0.4, checking HELP/TYPE lines, metric and label names,
/// label escaping, values, and histogram consistency. Returns series -> value, where a series
/// is `name{l1="v1",l2="v2"}` with labels in their written order.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeMap<String, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap_or("");
            let name = parts.next().unwrap_or("").to_string();
            let val = parts.next().unwrap_or("").to_string();
            assert!(valid_name(&name), "bad metric name in '{line}'");
            match kind {
                "HELP" => {
                    assert!(!val.is_empty(), "empty HELP: {line}");
                    assert!(helps.insert(name, val).is_none(), "second HELP: {line}");
                }
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"]
                            .contains(&val.as_str()),
                        "bad TYPE: {line}"
                    );
                    assert!(
                        !out.keys().any(|k: &String| k.starts_with(&name)),
                        "TYPE after samples: {line}"
                    );
                    assert!(types.insert(name, val).is_none(), "second TYPE: {line}");
                }
                _ => panic!("unknown comment line: {line}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in '{line}'")),
        };
        let name = series.split('{').next().unwrap_or("");
        assert!(valid_name(name), "bad sample name in '{line}'");
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("bad label set in '{line}'"));
            // label="value" pairs with \\, \" and \n escapes only.
            let mut rest = inner;
            while !rest.is_empty() {
                let (lname, after) = rest.split_once("=\"").expect("label=\"");
                assert!(
                    valid_name(lname) && !lname.contains(':'),
                    "bad label name in '{line}'"
                );
                let mut chars = after.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            let (_, e) = chars.next().expect("escape");
                            assert!(matches!(e, '\\' | '"' | 'n'), "bad escape in '{line}'");
                        }
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.expect("closing quote");
                rest = after[end + 1..]
                    .strip_prefix(',')
                    .unwrap_or(&after[end + 1..]);
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        let t = types
            .get(family)
            .unwrap_or_else(|| panic!("sample without TYPE: {line}"));
        assert!(helps.contains_key(family), "sample without HELP: {line}");
        if t == "counter" {
            assert!(
                family.ends_with("_total"),
                "counter not named _total: {line}"
            );
            assert!(v >= 0.0, "negative counter: {line}");
        }
        assert!(
            out.insert(series.to_string(), v).is_none(),
            "duplicate series: {line}"
        );
    }
    // Histograms: cumulative buckets ending in +Inf equal to _count.
    for (name, t) in &types {
        if t != "histogram" {
            continue;
        }
        let buckets: Vec<f64> = out
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{name}_bucket{{")))
            .map(|(_, v)| *v)
            .collect();
        let inf = out[&format!("{name}_bucket{{le=\"+Inf\"}}")];
        assert_eq!(inf, out[&format!("{name}_count")], "{name}: +Inf != count");
        assert!(
            buckets.iter().all(|b| *b <= inf),
            "{name}: bucket above +Inf"
        );
    }
    out
}

fn m(metrics: &BTreeMap<String, f64>, series: &str) -> f64 {
    *metrics
        .get(series)
        .unwrap_or_else(|| panic!("no series {series} in {metrics:#?}"))
}

#[test]
fn cycles_run_on_the_interval_and_metrics_reflect_them() {
    let dir = setup(5);
    let d = dir.path();
    let h = start(d, false);
    let addr = h.addr;
    assert!(addr.ip().is_loopback());
    wait_for("two cycles", Duration::from_secs(20), || {
        cycles_run(addr) >= 2
    });
    let (code, body) = get(addr, "/metrics");
    assert_eq!(code, 200);
    let m1 = parse_metrics(&body);
    assert!(m(&m1, "dirsync_cycles_total{result=\"success\"}") >= 2.0);
    assert_eq!(
        m(
            &m1,
            "dirsync_objects_imported_total{connector=\"src\",change=\"add\"}"
        ),
        5.0
    );
    assert_eq!(
        m(
            &m1,
            "dirsync_objects_synced_total{connector=\"src\",kind=\"projection\"}"
        ),
        5.0
    );
    assert_eq!(
        m(
            &m1,
            "dirsync_objects_exported_total{connector=\"tgt\",op=\"add\"}"
        ),
        5.0
    );
    assert_eq!(
        m(&m1, "dirsync_pending_exports{connector=\"tgt\",op=\"add\"}"),
        0.0
    );
    assert_eq!(m(&m1, "dirsync_scheduler_suspended"), 0.0);
    assert_eq!(m(&m1, "dirsync_threshold_stops_total"), 0.0);
    assert!(m(&m1, "dirsync_last_success_timestamp_seconds") > 1.7e9);
    assert!(m(&m1, "dirsync_next_cycle_timestamp_seconds") > 1.7e9);
    assert_eq!(m(&m1, "dirsync_scheduler_interval_seconds"), 1.0);
    assert_eq!(
        m(&m1, "dirsync_connector_space_objects{connector=\"src\"}"),
        5.0
    );
    assert_eq!(m(&m1, "dirsync_metaverse_objects"), 5.0);
    assert_eq!(
        m(
            &m1,
            &format!(
                "dirsync_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );

    // A change in the source flows through the next cycles and the counters grow.
    let before = cycles_run(addr);
    change(
        d,
        "0001.ldif",
        &format!(
            "{}dn: uid=u1,ou=p,dc=s\nchangetype: modify\nreplace: sn\nsn: Renamed\n-\n",
            user(5).replacen("\nobjectClass", "\nchangetype: add\nobjectClass", 1)
        ),
    );
    wait_for("two more cycles", Duration::from_secs(20), || {
        cycles_run(addr) >= before + 2
    });
    let m2 = parse_metrics(&get(addr, "/metrics").1);
    let total = |mm: &BTreeMap<String, f64>| -> f64 {
        mm.iter()
            .filter(|(k, _)| k.starts_with("dirsync_cycles_total{"))
            .map(|(_, v)| v)
            .sum()
    };
    assert!(total(&m2) >= total(&m1) + 2.0, "cycle counter grows");
    assert_eq!(total(&m2), m(&m2, "dirsync_cycle_duration_seconds_count"));
    assert_eq!(
        m(
            &m2,
            "dirsync_objects_imported_total{connector=\"src\",change=\"add\"}"
        ),
        6.0
    );
    assert!(
        m(
            &m2,
            "dirsync_objects_imported_total{connector=\"src\",change=\"update\"}"
        ) >= 1.0
    );
    assert_eq!(
        m(
            &m2,
            "dirsync_objects_exported_total{connector=\"tgt\",op=\"add\"}"
        ),
        6.0
    );
    assert!(
        m(
            &m2,
            "dirsync_objects_exported_total{connector=\"tgt\",op=\"update\"}"
        ) >= 1.0
    );
    let tgt = std::fs::read_to_string(d.join("tgt.ldif")).expect("target");
    assert!(
        tgt.contains("uid=u5,dc=t") && tgt.contains("sn: Renamed"),
        "{tgt}"
    );

    let (code, hj) = health(addr);
    assert_eq!(code, 200, "{hj}");
    assert_eq!(hj["status"], "ok");
    assert_eq!(hj["last_cycle"]["result"], "success");
    assert!(hj["next_cycle_utc"].is_string());
    assert_eq!(get(addr, "/nope").0, 404);
    h.stop();
    let report = h.join().expect("join");
    assert!(report.stopped);
}

#[test]
fn suspend_from_another_process_stops_cycles_and_resume_restarts_them() {
    let dir = setup(3);
    let d = dir.path();
    let h = start(d, false);
    let addr = h.addr;
    wait_for("a cycle", Duration::from_secs(20), || cycles_run(addr) >= 1);
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
            .arg("--config")
            .arg(d.join("dirsync.toml"))
            .args(args)
            .output()
            .expect("run dirsync");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let got = cli(&["scheduler", "suspend", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&got).expect("json");
    assert_eq!(v["suspended"], true);
    wait_for("suspension seen", Duration::from_secs(10), || {
        health(addr).1["suspended"] == true
    });
    // A cycle that had started before the suspension may still finish.
    wait_for("no cycle in progress", Duration::from_secs(10), || {
        health(addr).1["cycle_in_progress"] == false
    });
    let n = cycles_run(addr);
    std::thread::sleep(Duration::from_millis(2500));
    let (code, hj) = health(addr);
    assert_eq!(
        hj["cycles_run"].as_u64(),
        Some(n),
        "no cycle while suspended"
    );
    assert_eq!(code, 200, "suspension is not a failure: {hj}");
    assert_eq!(hj["status"], "suspended");
    assert!(hj["next_cycle_utc"].is_null());
    let mm = parse_metrics(&get(addr, "/metrics").1);
    assert_eq!(m(&mm, "dirsync_scheduler_suspended"), 1.0);
    let got = cli(&["scheduler", "get"]);
    assert!(got.contains("suspended:                true"), "{got}");
    assert!(got.contains("running (pid "), "{got}");
    let v: serde_json::Value =
        serde_json::from_str(&cli(&["scheduler", "get", "--json"])).expect("json");
    assert_eq!(v["serve"]["endpoint"], format!("http://{addr}"));
    assert!(v["serve"]["next_cycle_utc"].is_null(), "suspended: {v}");

    cli(&["scheduler", "resume"]);
    wait_for("cycles after resume", Duration::from_secs(20), || {
        cycles_run(addr) >= n + 2
    });
    assert_eq!(health(addr).1["status"], "ok");
    assert!(scheduler::serve_status(&cfg(d)).is_some_and(|st| st.next_cycle_utc.is_some()));
    h.stop();
    h.join().expect("join");
    assert!(
        scheduler::serve_status(&cfg(d)).is_none(),
        "status file removed"
    );
    assert!(cli(&["scheduler", "get"]).contains("not running"));
}

#[test]
fn overrides_and_next_policy_are_consumed_by_the_next_cycle() {
    let dir = setup(3);
    let d = dir.path();
    let (c, steps) = once(d);
    assert_eq!(c.result, "success");
    // A fresh state: the first scheduled cycle imports and syncs fully.
    assert_eq!(
        profiles(&steps, "src"),
        ["FullImport", "FullSync", "Export"]
    );
    let (_, steps) = once(d);
    assert_eq!(
        profiles(&steps, "src"),
        ["DeltaImport", "DeltaSync", "Export"]
    );

    set(
        d,
        r#"{"connector_overrides":{"src":{"full_import_required":true},"tgt":{"full_sync_required":true}}}"#,
    );
    let s = scheduler::load_settings(&cfg(d)).expect("settings");
    assert!(s.connector_overrides["src"].full_import_required);
    let (c, steps) = once(d);
    assert_eq!(c.result, "success");
    assert_eq!(
        profiles(&steps, "src"),
        ["FullImport", "DeltaSync", "Export"]
    );
    assert_eq!(
        profiles(&steps, "tgt"),
        ["DeltaImport", "FullSync", "Export"]
    );
    let s = scheduler::load_settings(&cfg(d)).expect("settings");
    assert!(
        s.connector_overrides.is_empty(),
        "overrides consumed: {s:?}"
    );
    let (_, steps) = once(d);
    assert_eq!(
        profiles(&steps, "src"),
        ["DeltaImport", "DeltaSync", "Export"]
    );
    assert_eq!(
        profiles(&steps, "tgt"),
        ["DeltaImport", "DeltaSync", "Export"]
    );

    // Initial once, then back to Delta.
    set(d, r#"{"next_cycle_policy":"Initial"}"#);
    let (c, steps) = once(d);
    assert_eq!(c.profile, "InitialCycle");
    assert_eq!(
        profiles(&steps, "src"),
        ["FullImport", "FullSync", "Export"]
    );
    let s = scheduler::load_settings(&cfg(d)).expect("settings");
    assert_eq!(s.next_cycle_policy, scheduler::NextCyclePolicy::Delta);
    let (c, _) = once(d);
    assert_eq!(c.profile, "DeltaCycle");
}

#[test]
fn scheduled_full_reconciliation_and_the_seven_day_delta_rule() {
    let dir = setup(3);
    let d = dir.path();
    once(d);
    once(d);
    // tgt: reconciliation off and a recent delta import -> stays delta.
    // src: default interval (168 h) and a full import 8 days ago -> full import.
    // hr-like case on tgt is covered by the 7-day rule below.
    set(
        d,
        r#"{"connector_overrides":{"tgt":{"full_import_interval_hours":0}}}"#,
    );
    let age = |sql: &str| {
        let c = rusqlite::Connection::open(d.join("state.db")).expect("state");
        c.execute_batch(sql).expect("age the history");
    };
    let old = (chrono::Utc::now() - chrono::Duration::days(8))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    age(&format!(
        "UPDATE run SET ended='{old}', started='{old}' WHERE profile='FullImport';
         UPDATE setting SET value='{old}' WHERE key LIKE 'scheduler.last_full_import.%';"
    ));
    let (_, steps) = once(d);
    assert_eq!(
        profiles(&steps, "src")[0],
        "FullImport",
        "reconciliation due"
    );
    assert_eq!(
        profiles(&steps, "tgt")[0],
        "DeltaImport",
        "reconciliation off"
    );
    let (_, steps) = once(d);
    assert_eq!(profiles(&steps, "src")[0], "DeltaImport", "reconciled");

    // No import at all for 8 days: a delta watermark that old is not trusted, even with
    // reconciliation off.
    age(&format!(
        "UPDATE run SET ended='{old}', started='{old}' WHERE connector='tgt';
         UPDATE setting SET value='{old}' WHERE key LIKE 'scheduler.last_%import.tgt';"
    ));
    let (c, steps) = once(d);
    assert_eq!(c.result, "success");
    assert_eq!(profiles(&steps, "tgt")[0], "FullImport", "7-day rule");
    assert_eq!(profiles(&steps, "src")[0], "DeltaImport");
}

#[test]
fn staging_mode_writes_nothing_and_leaving_it_exports_the_plan() {
    let dir = setup(4);
    let d = dir.path();
    once(d);
    let tgt_before = std::fs::read(d.join("tgt.ldif")).expect("target");
    set(d, r#"{"staging_mode":true}"#);
    change(
        d,
        "0001.ldif",
        &format!(
            "{}dn: uid=u2,ou=p,dc=s\nchangetype: modify\nreplace: sn\nsn: Staged\n-\n",
            user(9).replacen("\nobjectClass", "\nchangetype: add\nobjectClass", 1)
        ),
    );
    let (c, steps) = once(d);
    assert_eq!(c.result, "success");
    assert!(steps.iter().all(|s| s.counters.export_adds == 0
        && s.counters.export_updates == 0
        && s.counters.export_deletes == 0));
    assert_eq!(
        std::fs::read(d.join("tgt.ldif")).expect("target"),
        tgt_before,
        "staging mode wrote to the target"
    );
    {
        // A manual cycle (`dirsync cycle`) honours the runtime switch too.
        let mut e = Engine::open(cfg(d)).expect("engine");
        assert!(e.config.safety.staging_mode);
        e.cycle(CyclePolicy::Delta, &RunOptions::default())
            .expect("manual cycle");
        assert_eq!(
            std::fs::read(d.join("tgt.ldif")).expect("target"),
            tgt_before,
            "a manual cycle in staging mode wrote to the target"
        );
        let st = e.status().expect("status");
        let t = st.connectors.iter().find(|c| c.name == "tgt").expect("tgt");
        assert_eq!((t.pending_adds, t.pending_updates), (1, 1), "plan computed");
    }
    set(d, r#"{"staging_mode":false}"#);
    let (c, steps) = once(d);
    assert_eq!(c.result, "success");
    let exp = steps
        .iter()
        .find(|s| s.connector.as_deref() == Some("tgt") && s.profile == "Export")
        .expect("export step");
    assert_eq!(
        (exp.counters.export_adds, exp.counters.export_updates),
        (1, 1)
    );
    let tgt = std::fs::read_to_string(d.join("tgt.ldif")).expect("target");
    assert!(tgt.contains("uid=u9,dc=t") && tgt.contains("sn: Staged"));
}

#[test]
fn a_threshold_stop_is_recorded_and_counted_and_scheduling_goes_on() {
    let dir = setup(6);
    let d = dir.path();
    let h = start(d, false);
    let addr = h.addr;
    wait_for("a cycle", Duration::from_secs(20), || cycles_run(addr) >= 1);
    let deletes: String = (0..4)
        .map(|i| format!("dn: uid=u{i},ou=p,dc=s\nchangetype: delete\n\n"))
        .collect();
    change(d, "0001.ldif", &deletes);
    wait_for("two threshold stops", Duration::from_secs(30), || {
        let mm = parse_metrics(&get(addr, "/metrics").1);
        mm.get("dirsync_threshold_stops_total")
            .copied()
            .unwrap_or(0.0)
            >= 2.0
    });
    let (code, hj) = health(addr);
    assert_eq!(code, 503, "{hj}");
    assert_eq!(hj["status"], "failing");
    assert_eq!(
        hj["last_cycle"]["result"],
        "stopped-deletion-threshold-exceeded"
    );
    assert!(
        hj["last_cycle"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("would delete 4")
    );
    let mm = parse_metrics(&get(addr, "/metrics").1);
    assert!(
        m(
            &mm,
            "dirsync_cycles_total{result=\"stopped-deletion-threshold-exceeded\"}"
        ) >= 2.0
    );
    assert_eq!(
        m(
            &mm,
            "dirsync_pending_exports{connector=\"tgt\",op=\"delete\"}"
        ),
        4.0
    );
    let tgt = std::fs::read_to_string(d.join("tgt.ldif")).expect("target");
    assert!(tgt.contains("uid=u0,dc=t"), "nothing deleted");

    // The admin confirms between cycles (the state is free between cycles).
    let mut confirmed = false;
    let end = Instant::now() + Duration::from_secs(20);
    while !confirmed && Instant::now() < end {
        if let Ok(mut e) = Engine::open(cfg(d)) {
            e.confirm_deletes().expect("confirm");
            confirmed = true;
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert!(confirmed, "the state was never free between cycles");
    wait_for("a successful cycle", Duration::from_secs(20), || {
        health(addr).0 == 200
    });
    let tgt = std::fs::read_to_string(d.join("tgt.ldif")).expect("target");
    assert!(!tgt.contains("uid=u0,dc=t") && tgt.contains("uid=u5,dc=t"));
    h.stop();
    h.join().expect("join");
}

#[test]
fn a_busy_state_puts_cycles_off_and_healthz_turns_stale() {
    let dir = setup(2);
    let d = dir.path();
    let h = start(d, false);
    let addr = h.addr;
    wait_for("a cycle", Duration::from_secs(20), || cycles_run(addr) >= 1);
    // Another process (here: this test) holds the state for longer than two intervals.
    let mut held = None;
    wait_for("the state", Duration::from_secs(20), || {
        held = Engine::open(cfg(d)).ok();
        held.is_some()
    });
    std::thread::sleep(Duration::from_millis(2600));
    let (code, hj) = health(addr);
    assert_eq!(code, 503, "{hj}");
    assert_eq!(hj["status"], "stale");
    let mm = parse_metrics(&get(addr, "/metrics").1);
    assert!(m(&mm, "dirsync_state_busy_total") >= 1.0);
    drop(held);
    wait_for("healthy again", Duration::from_secs(20), || {
        health(addr).0 == 200
    });
    h.stop();
    h.join().expect("join");
}

#[test]
fn non_loopback_status_endpoint_is_refused_without_the_flag() {
    let dir = setup(1);
    let r = scheduler::start(
        &dir.path().join("dirsync.toml"),
        ServeOptions {
            listen: Some("0.0.0.0:0".parse().expect("addr")),
            ..ServeOptions::default()
        },
    );
    match r {
        Err(e) => assert!(e.to_string().contains("--allow-remote"), "{e}"),
        Ok(_) => panic!("a non-loopback listener was accepted"),
    }
}

#[cfg(unix)]
#[test]
fn sigterm_stops_serve_after_the_current_step_and_the_next_run_converges() {
    // Enough objects that a cycle takes a while: the signal lands inside a run step.
    let users = 10_000;
    let dir = setup(users);
    let d = dir.path();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("--config")
        .arg(d.join("dirsync.toml"))
        .args(["serve", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start dirsync serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("read");
    let v: serde_json::Value = serde_json::from_str(&first).expect("json");
    let addr: SocketAddr = v["listening"]
        .as_str()
        .and_then(|s| s.strip_prefix("http://"))
        .and_then(|s| s.parse().ok())
        .expect("address");
    wait_for("a run step in progress", Duration::from_secs(20), || {
        health(addr).1["current_step"].is_string()
    });
    let t0 = Instant::now();
    // SAFETY: signalling our own child process by its id.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "serve did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "clean exit");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let cycle: serde_json::Value =
        serde_json::from_str(rest.first().expect("cycle line")).expect("cycle json");
    assert_eq!(cycle["result"], "stopped-cancelled", "{cycle}");

    let mut e = Engine::open(cfg(d)).expect("state free after exit");
    let runs = e.history(100).expect("history");
    assert!(
        runs.iter().all(|r| r.result != "in-progress"),
        "nothing half-recorded: {runs:#?}"
    );
    let id = cycle["run_id"].as_i64().expect("run id");
    let steps: Vec<&RunRecord> = runs.iter().filter(|r| r.parent_id == Some(id)).collect();
    assert!(
        !steps.is_empty() && steps.len() < 6,
        "stopped mid-cycle: {steps:#?}"
    );
    assert!(
        steps.iter().all(|s| s.result == "success"),
        "the running step finished: {steps:#?}"
    );
    // The next run converges: every user arrives, and a further cycle has nothing to do.
    let runs = e
        .cycle(CyclePolicy::Delta, &RunOptions::default())
        .expect("next cycle");
    assert!(runs.iter().all(|r| r.result == "success"));
    let tgt = std::fs::read_to_string(d.join("tgt.ldif")).expect("target");
    assert_eq!(
        tgt.matches("\ndn: uid=u").count() + usize::from(tgt.starts_with("dn: uid=u")),
        users
    );
    let runs = e
        .cycle(CyclePolicy::Delta, &RunOptions::default())
        .expect("converged cycle");
    let c: u64 = runs
        .iter()
        .map(|r| r.counters.export_adds + r.counters.export_updates + r.counters.export_deletes)
        .sum();
    assert_eq!(c, 0, "converged");
    let st = e.status().expect("status");
    assert!(st.connectors.iter().all(|c| c.pending_exports == 0));
}

#[test]
fn a_broken_settings_file_fails_cycles_until_it_is_fixed() {
    let dir = setup(2);
    let d = dir.path();
    let h = start(d, false);
    let addr = h.addr;
    wait_for("a cycle", Duration::from_secs(20), || cycles_run(addr) >= 1);
    let file = scheduler::settings_path(&cfg(d));
    std::fs::write(&file, "{ not json").expect("break the settings");
    wait_for("a failed cycle", Duration::from_secs(20), || {
        health(addr).0 == 503
    });
    let (_, hj) = health(addr);
    assert_eq!(hj["status"], "failing");
    let msg = hj["last_cycle"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(msg.contains("scheduler settings are unreadable"), "{msg}");
    let mm = parse_metrics(&get(addr, "/metrics").1);
    assert!(m(&mm, "dirsync_cycles_total{result=\"stopped-error\"}") >= 1.0);
    std::fs::remove_file(&file).expect("fix");
    wait_for("healthy again", Duration::from_secs(20), || {
        health(addr).0 == 200
    });
    h.stop();
    h.join().expect("join");
}

#[test]
fn serve_once_exits_with_the_cycle_result() {
    let dir = setup(6);
    let d = dir.path();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
            .arg("--config")
            .arg(d.join("dirsync.toml"))
            .args(["serve", "--once"])
            .output()
            .expect("run dirsync serve --once")
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("DeltaCycle success"));
    let deletes: String = (0..4)
        .map(|i| format!("dn: uid=u{i},ou=p,dc=s\nchangetype: delete\n\n"))
        .collect();
    change(d, "0001.ldif", &deletes);
    let out = run();
    assert_eq!(out.status.code(), Some(3), "threshold exit code: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stopped-deletion-threshold-exceeded"),
        "{out:?}"
    );
    // Suspended: no cycle, success.
    set(d, r#"{"suspended":true}"#);
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("(0 cycles)"));
}

#[test]
fn a_changed_interval_applies_to_the_cycle_being_waited_for() {
    let dir = setup(2);
    let d = dir.path();
    let h = start(d, false);
    let addr = h.addr;
    wait_for("a cycle", Duration::from_secs(20), || cycles_run(addr) >= 1);
    set(d, r#"{"interval_seconds":3600}"#);
    wait_for("the hour-long wait", Duration::from_secs(10), || {
        let (_, hj) = health(addr);
        let next = hj["next_cycle_utc"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        next.is_some_and(|t| {
            t.with_timezone(&chrono::Utc) > chrono::Utc::now() + chrono::Duration::minutes(55)
        }) && hj["cycle_in_progress"] == false
    });
    let n = cycles_run(addr);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(cycles_run(addr), n, "no cycle before the hour is up");
    set(d, r#"{"interval_seconds":1}"#);
    wait_for(
        "cycles on the short interval again",
        Duration::from_secs(20),
        || cycles_run(addr) >= n + 2,
    );
    // A requested start time moves the next cycle and is consumed by it.
    set(d, r#"{"interval_seconds":3600}"#);
    wait_for("the hour-long wait", Duration::from_secs(10), || {
        health(addr).1["cycle_in_progress"] == false
    });
    let n = cycles_run(addr);
    set(
        d,
        &format!(r#"{{"next_cycle_start_utc":"{}"}}"#, dirsync::store::now()),
    );
    wait_for("the requested cycle", Duration::from_secs(20), || {
        cycles_run(addr) == n + 1
    });
    wait_for("the request consumed", Duration::from_secs(10), || {
        scheduler::load_settings(&cfg(d))
            .expect("settings")
            .next_cycle_start_utc
            .is_none()
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(cycles_run(addr), n + 1, "back to the hour-long interval");
    h.stop();
    h.join().expect("join");
}

#[test]
fn one_scheduler_per_state() {
    let dir = setup(1);
    let d = dir.path();
    let h = start(d, false);
    let second = scheduler::start(&d.join("dirsync.toml"), ServeOptions::default());
    match second {
        Err(e) => assert!(
            e.to_string()
                .contains("another dirsync serve runs on this state"),
            "{e}"
        ),
        Ok(_) => panic!("a second scheduler started on the same state"),
    }
    h.stop();
    h.join().expect("join");
    let again = start(d, false);
    again.stop();
    again
        .join()
        .expect("a scheduler starts once the first one stopped");
}

//! Graph connector benchmark: user creates plus group memberships against the embedded Graph
//! tenant emulator, with the documented write quota (3,000 writes per 150 s per app) scaled
//! down in time (3,000 writes per 1.5 s) on both sides: the tenant's throttle and the
//! connector's write pacer.
//!
//! Prints one JSON line: writes, seconds, writes_per_sec, quota_per_sec, quota_fraction
//! (achieved writes/s over the quota rate; the bucket starts full, so a short run may exceed
//! 1.0), steady_fraction (the same without the initial burst) and the number of 429 answers.
//!
//! `cargo bench --bench graph` creates 20,000 users (`DIRSYNC_GRAPH_BENCH_USERS` overrides);
//! `cargo test --benches` runs a tiny size.

use dirsync::connectors::{ExportOperation, ExportOutcome, ExportRequest, build};
use dirsync::emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, Emulator, EmulatorConfig,
    ThrottleConfig,
};
use dirsync::model::{Attributes, Dn, Value};
use std::io::Write as _;
use std::time::{Duration, Instant};

const QUOTA: u32 = 3000;
const WINDOW_MS: u64 = 1500;
/// Members per group.
const GROUP_SIZE: usize = 100;

fn user(i: usize) -> ExportRequest {
    let mut a = Attributes::new();
    a.insert(
        "userPrincipalName".into(),
        vec![Value::Str(format!("bench{i}@contoso.com"))],
    );
    a.insert("displayName".into(), vec![Value::Str(format!("Bench {i}"))]);
    a.insert("dirsyncAnchor".into(), vec![Value::Str(format!("bu{i}"))]);
    ExportRequest {
        id: i as i64,
        object_type: "user".into(),
        anchor: None,
        dn: Dn::parse(&format!("CN=bu{i},OU=New")).unwrap_or_default(),
        operation: ExportOperation::Add { attributes: a },
    }
}

fn group(g: usize, users: usize) -> ExportRequest {
    let mut a = Attributes::new();
    a.insert("displayName".into(), vec![Value::Str(format!("Group {g}"))]);
    a.insert("dirsyncAnchor".into(), vec![Value::Str(format!("bg{g}"))]);
    let members: Vec<Value> = (g * GROUP_SIZE..((g + 1) * GROUP_SIZE).min(users))
        .map(|i| Value::Ref(format!("CN=bu{i},OU=New")))
        .collect();
    a.insert("member".into(), members);
    ExportRequest {
        id: 10_000_000 + g as i64,
        object_type: "group".into(),
        anchor: None,
        dn: Dn::parse(&format!("CN=bg{g},OU=New")).unwrap_or_default(),
        operation: ExportOperation::Add { attributes: a },
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let users: usize = if args.iter().any(|a| a == "--bench") {
        std::env::var("DIRSYNC_GRAPH_BENCH_USERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000)
    } else {
        200
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    };
    let cfg = EmulatorConfig {
        throttle: ThrottleConfig {
            enabled: true,
            writes_per_window: QUOTA,
            window: Duration::from_millis(WINDOW_MS),
        },
        ..EmulatorConfig::default()
    };
    let h = match rt.block_on(Emulator::start(cfg)) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("emulator: {e}");
            std::process::exit(1);
        }
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tempdir: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = std::fs::write(dir.path().join("secret.txt"), DEFAULT_CLIENT_SECRET) {
        eprintln!("secret: {e}");
        std::process::exit(1);
    }
    let settings = serde_json::json!({
        "tenant_id": DEFAULT_TENANT_ID,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret_file": "secret.txt",
        "authority": h.base_url(),
        "graph_url": h.graph_url(),
        "write_quota": QUOTA,
        "write_quota_window_ms": WINDOW_MS,
    });
    let mut conn = match build("graph", settings, dir.path()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("connector: {e}");
            std::process::exit(1);
        }
    };
    let mut requests: Vec<ExportRequest> = (0..users).map(user).collect();
    requests.extend((0..users.div_ceil(GROUP_SIZE)).map(|g| group(g, users)));
    let before = h.stats();
    let start = Instant::now();
    let mut failures = 0usize;
    for chunk in requests.chunks(conn.export_batch_size()) {
        match conn.export(chunk) {
            Ok(rs) => {
                for r in rs {
                    if let ExportOutcome::Failed { message, .. } = r.outcome {
                        if failures < 5 {
                            eprintln!("request {}: {message}", r.id);
                        }
                        failures += 1;
                    }
                }
            }
            Err(e) => {
                eprintln!("export: {e}");
                std::process::exit(1);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let after = h.stats();
    let writes = after.writes - before.writes;
    let quota_rate = f64::from(QUOTA) / (WINDOW_MS as f64 / 1000.0);
    let rate = writes as f64 / secs.max(1e-9);
    let steady = (writes as f64 - f64::from(QUOTA)).max(0.0) / secs.max(1e-9);
    let members: usize = h.tenant().objects.values().map(|o| o.members.len()).sum();
    println!(
        "{}",
        serde_json::json!({
            "name": "graph_export",
            "users": users,
            "groups": users.div_ceil(GROUP_SIZE),
            "memberships": members,
            "writes": writes,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "writes_per_sec": rate.round(),
            "quota_per_sec": quota_rate,
            "quota_fraction": (rate / quota_rate * 1000.0).round() / 1000.0,
            "steady_fraction": (steady / quota_rate * 1000.0).round() / 1000.0,
            "http_429": after.throttled - before.throttled,
            "failures": failures,
        })
    );
    let _ = std::io::stdout().flush();
    let _ = rt.block_on(h.shutdown());
    if failures > 0 || members != users {
        std::process::exit(1);
    }
}

//! Scale benchmark: time and peak memory phase by phase (issue 2's 1M-user target).
//!
//! Prints one JSON line per case: name, objects, seconds, objects_per_sec, peak_rss_mb (the
//! peak resident set of that phase alone: the high-water mark is reset before each phase
//! through `/proc/self/clear_refs`), rss_after_mb (resident at the end of the phase) and
//! peak_rss_total_mb (the process's peak so far). The allocator is mimalloc, as in the
//! `dirsync` binary.
//!
//! Sizes come from `DIRSYNC_SCALE_SIZES` (comma separated, default `100000`; `1000000` for
//! the full-size run) when run with `--bench`; without it (`cargo test --benches`) a small
//! smoke size runs. Each size has users, groups of 20 members and one large group
//! (min(250,000, users) members). The source file is written streaming, so that generating
//! it does not count in the peaks.
//!
//! Phases: full_import, full_sync, export (initial export of every object to an LDIF
//! target), target full_import + delta_sync (confirming import), delta_1000 (delta import +
//! delta sync of 1,000 modified users), export_1000 (exporting those 1,000 updates into the
//! full-size LDIF target).

use dirsync::config::Config;
use dirsync::engine::{Engine, RunOptions, RunProfile};
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A field of `/proc/self/status` in MB (0 where unavailable).
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Resets the peak-RSS mark (VmHWM) to the current RSS (Linux 4.0+); false where unsupported.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

struct Meter {
    /// Largest peak seen across phases (the reset hides earlier peaks from VmHWM).
    total_peak: f64,
}

impl Meter {
    fn phase<T>(&mut self, name: &str, objects: usize, f: impl FnOnce() -> T) -> T {
        reset_peak();
        let t = Instant::now();
        let r = f();
        let seconds = t.elapsed().as_secs_f64();
        let peak = status_mb("VmHWM:");
        self.total_peak = self.total_peak.max(peak);
        println!(
            "{}",
            serde_json::json!({
                "name": name,
                "objects": objects,
                "seconds": (seconds * 1000.0).round() / 1000.0,
                "objects_per_sec": (objects as f64 / seconds.max(1e-9)).round(),
                "peak_rss_mb": peak.round(),
                "rss_after_mb": status_mb("VmRSS:").round(),
                "peak_rss_total_mb": self.total_peak.round(),
            })
        );
        let _ = std::io::stdout().flush();
        r
    }
}

/// The synthetic directory's configuration (shared with the other benchmark).
const CONFIG: &str = include_str!("synthetic.toml");

fn user_dn(i: usize) -> String {
    format!("uid=u{i},ou=users,dc=s")
}

/// Writes the source LDIF; returns (objects, members of the large group).
fn generate(dir: &Path, users: usize) -> std::io::Result<(usize, usize)> {
    let mut w = BufWriter::new(std::fs::File::create(dir.join("src.ldif"))?);
    writeln!(w, "version: 1\n")?;
    for i in 0..users {
        writeln!(
            w,
            "dn: {}\nobjectClass: inetOrgPerson\nuid: u{i}\nsn: Surname{i}\ngivenName: Given{i}\ntitle: Title {}\nentryUUID: u-{i}\n",
            user_dn(i),
            i % 97
        )?;
    }
    let groups = users / 20;
    for g in 0..groups {
        writeln!(
            w,
            "dn: cn=g{g},ou=groups,dc=s\nobjectClass: groupOfNames\ncn: g{g}\nentryUUID: g-{g}"
        )?;
        for m in 0..20 {
            writeln!(w, "member: {}", user_dn((g * 20 + m) % users))?;
        }
        writeln!(w)?;
    }
    let big = users.min(250_000);
    writeln!(
        w,
        "dn: cn=big,ou=groups,dc=s\nobjectClass: groupOfNames\ncn: big\nentryUUID: g-big"
    )?;
    for m in 0..big {
        writeln!(w, "member: {}", user_dn(m))?;
    }
    writeln!(w)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::create_dir_all(dir.join("changes"))?;
    Ok((users + groups + 1, big))
}

fn run(e: &mut Engine, c: &str, p: RunProfile) {
    if let Err(err) = e.run_profile(c, p, &RunOptions::default(), None) {
        panic!("{c} {p:?}: {err}");
    }
}

fn count_entries(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().filter(|l| l.starts_with("dn: ")).count())
        .unwrap_or(0)
}

fn bench(users: usize, m: &mut Meter) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (objects, _big) = generate(d, users).expect("generate the source");
    // DIRSYNC_SCALE_LDIF_BATCH: the target's export_batch_size (default: all at once).
    let config = match std::env::var("DIRSYNC_SCALE_LDIF_BATCH") {
        Ok(b) => CONFIG.replace("# EXPORT_BATCH", &format!("export_batch_size = {b}")),
        Err(_) => CONFIG.to_string(),
    };
    std::fs::write(d.join("dirsync.toml"), config).expect("config");
    let cfg = Config::load(&d.join("dirsync.toml")).expect("config");
    let mut e = Engine::open(cfg).expect("engine");
    let tag = |n: &str| format!("scale_{n}_{users}");

    m.phase(&tag("full_import"), objects, || {
        run(&mut e, "src", RunProfile::FullImport)
    });
    m.phase(&tag("full_sync"), objects, || {
        run(&mut e, "src", RunProfile::FullSync)
    });
    m.phase(&tag("export"), objects, || {
        run(&mut e, "tgt", RunProfile::Export)
    });
    assert_eq!(
        count_entries(&d.join("tgt.ldif")),
        objects,
        "every object exported"
    );
    m.phase(&tag("confirm_import"), objects, || {
        run(&mut e, "tgt", RunProfile::FullImport);
        run(&mut e, "tgt", RunProfile::DeltaSync);
    });

    let mut ch = String::from("version: 1\n\n");
    for k in 0..1000 {
        let i = (k * 7919) % users;
        ch.push_str(&format!(
            "dn: {}\nchangetype: modify\nreplace: title\ntitle: Changed {k}\n-\n\n",
            user_dn(i)
        ));
    }
    std::fs::write(d.join("changes/0001.ldif"), ch).expect("changes");
    m.phase(&tag("delta_1000"), 1000, || {
        run(&mut e, "src", RunProfile::DeltaImport);
        run(&mut e, "src", RunProfile::DeltaSync);
    });
    let pending = e.plan().expect("plan").summary.updates;
    assert_eq!(pending, 1000, "1,000 changes give 1,000 updates");
    m.phase(&tag("export_1000"), 1000, || {
        run(&mut e, "tgt", RunProfile::Export)
    });
    let text = std::fs::read_to_string(d.join("tgt.ldif")).expect("target");
    assert!(
        text.contains("title: Changed 999\n"),
        "the last change is exported"
    );
    assert_eq!(e.plan().expect("plan").summary.updates, 0, "nothing left");
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing special: keep it quick.
    let args: Vec<String> = std::env::args().collect();
    let sizes = if args.iter().any(|a| a == "--bench") {
        std::env::var("DIRSYNC_SCALE_SIZES").unwrap_or_else(|_| "100000".into())
    } else {
        "1000".into()
    };
    if !reset_peak() {
        eprintln!("note: /proc/self/clear_refs unavailable: phase peaks are process peaks");
    }
    // RUST_LOG=dirsync=info shows what the engine and the connectors do, on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut m = Meter { total_peak: 0.0 };
    for s in sizes.split(',') {
        match s.trim().parse::<usize>() {
            Ok(n) if n >= 1000 => bench(n, &mut m),
            _ => eprintln!("ignoring size '{s}' (need a number >= 1000)"),
        }
    }
}

//! Sync engine benchmark on a synthetic directory.
//!
//! Prints one JSON line per case: name, objects, seconds, objects_per_sec, peak_rss_mb.
//! Sizes come from `DIRSYNC_BENCH_SIZES` (comma separated, default `100000,250000`; `1000000`
//! for the full-size run). Each size has users, groups of 20 members, and one large group
//! (min(250,000, users) members): the 250,000 size is the one with a 250k-member group.
//!
//! Cases: full_import, full_sync, export, delta_1000 (1,000 modified users: delta import +
//! delta sync), big_group_one_member (one member added to the large group: delta sync work, and
//! the check that exactly one member value is exported), big_group_remove_member (the same for
//! a removal), big_group_confirm_sync (the target sync after the import that confirms that
//! export), big_group_one_member_import (the delta import that reads the one-member change).
//! `DIRSYNC_BENCH_BIG_ROUNDS=n` repeats the remove/add rounds (for profiling).

use dirsync::config::Config;
use dirsync::engine::{Engine, RunOptions, RunProfile};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn report(name: &str, objects: usize, seconds: f64) {
    println!(
        "{}",
        serde_json::json!({
            "name": name,
            "objects": objects,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "objects_per_sec": (objects as f64 / seconds.max(1e-9)).round(),
            "peak_rss_mb": peak_rss_mb().round(),
        })
    );
    let _ = std::io::stdout().flush();
}

/// The synthetic directory's configuration (shared with the other benchmark).
const CONFIG: &str = include_str!("synthetic.toml");

fn user_dn(i: usize) -> String {
    format!("uid=u{i},ou=users,dc=s")
}

fn generate(dir: &Path, users: usize) -> (usize, usize) {
    let mut s = String::with_capacity(users * 200);
    s.push_str("version: 1\n\n");
    for i in 0..users {
        let _ = write!(
            s,
            "dn: {}\nobjectClass: inetOrgPerson\nuid: u{i}\nsn: Surname{i}\ngivenName: Given{i}\ntitle: Title {}\nentryUUID: u-{i}\n\n",
            user_dn(i),
            i % 97
        );
    }
    let groups = users / 20;
    for g in 0..groups {
        let _ = write!(
            s,
            "dn: cn=g{g},ou=groups,dc=s\nobjectClass: groupOfNames\ncn: g{g}\nentryUUID: g-{g}\n"
        );
        for m in 0..20 {
            let _ = writeln!(s, "member: {}", user_dn((g * 20 + m) % users));
        }
        s.push('\n');
    }
    let big = users.min(250_000);
    let _ = write!(
        s,
        "dn: cn=big,ou=groups,dc=s\nobjectClass: groupOfNames\ncn: big\nentryUUID: g-big\n"
    );
    // All but the last user; the last one is added by the one-member case.
    for m in 0..big - 1 {
        let _ = writeln!(s, "member: {}", user_dn(m));
    }
    s.push('\n');
    std::fs::write(dir.join("src.ldif"), s).expect("write source");
    std::fs::create_dir_all(dir.join("changes")).expect("changes");
    (users + groups + 1, big)
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64())
}

fn checkpoint(e: &Engine) {
    if let Err(err) = e
        .store()
        .conn()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
    {
        panic!("checkpoint: {err}");
    }
}

fn run(e: &mut Engine, c: &str, p: RunProfile) {
    if let Err(err) = e.run_profile(c, p, &RunOptions::default(), None) {
        panic!("{c} {p:?}: {err}");
    }
}

fn bench(users: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (objects, big) = generate(d, users);
    std::fs::write(d.join("dirsync.toml"), CONFIG).expect("config");
    let cfg = Config::load(&d.join("dirsync.toml")).expect("config");
    let mut e = Engine::open(cfg).expect("engine");
    let tag = |n: &str| format!("{n}_{users}");

    let (_, s) = time(|| run(&mut e, "src", RunProfile::FullImport));
    report(&tag("full_import"), objects, s);
    let (_, s) = time(|| run(&mut e, "src", RunProfile::FullSync));
    report(&tag("full_sync"), objects, s);
    let (_, s) = time(|| run(&mut e, "tgt", RunProfile::Export));
    report(&tag("export"), objects, s);
    run(&mut e, "tgt", RunProfile::FullImport);
    run(&mut e, "tgt", RunProfile::DeltaSync);

    // 1,000 changed users.
    let mut ch = String::from("version: 1\n\n");
    for k in 0..1000 {
        let i = (k * 7919) % users;
        let _ = write!(
            ch,
            "dn: {}\nchangetype: modify\nreplace: title\ntitle: Changed {k}\n-\n\n",
            user_dn(i)
        );
    }
    std::fs::write(d.join("changes/0001.ldif"), ch).expect("changes");
    let (_, s) = time(|| {
        run(&mut e, "src", RunProfile::DeltaImport);
        run(&mut e, "src", RunProfile::DeltaSync);
    });
    report(&tag("delta_1000"), 1000, s);
    let pending = e.plan().expect("plan").summary.updates;
    assert_eq!(pending, 1000, "1,000 changes give 1,000 updates");
    run(&mut e, "tgt", RunProfile::Export);
    run(&mut e, "tgt", RunProfile::FullImport);
    run(&mut e, "tgt", RunProfile::DeltaSync);

    // One member added to the big group.
    let ch = format!(
        "version: 1\n\ndn: cn=big,ou=groups,dc=s\nchangetype: modify\nadd: member\nmember: {}\n-\n",
        user_dn(big - 1)
    );
    std::fs::write(d.join("changes/0002.ldif"), ch).expect("changes");
    checkpoint(&e);
    let (_, s) = time(|| run(&mut e, "src", RunProfile::DeltaImport));
    report(&tag("big_group_one_member_import"), 1, s);
    checkpoint(&e);
    let (_, s) = time(|| run(&mut e, "src", RunProfile::DeltaSync));
    report(&tag("big_group_one_member_sync"), 1, s);
    let plan = e.plan().expect("plan");
    assert_eq!(plan.objects.len(), 1, "one pending export");
    let attrs = &plan.objects[0].attributes;
    assert_eq!(attrs.len(), 1, "{attrs:?}");
    assert_eq!(attrs[0].operation, "add");
    assert_eq!(attrs[0].new.len(), 1, "exactly one member value exported");
    run(&mut e, "tgt", RunProfile::Export);
    // The target import confirms the export; its sync has nothing to change.
    run(&mut e, "tgt", RunProfile::FullImport);
    // Imports leave write-ahead log pages; a checkpoint before each timed big-group sync keeps
    // the import's writes out of the sync's time.
    checkpoint(&e);
    let (_, s) = time(|| run(&mut e, "tgt", RunProfile::DeltaSync));
    report(&tag("big_group_confirm_sync"), 1, s);
    assert!(
        e.plan().expect("plan").objects.is_empty(),
        "nothing pending"
    );

    // One member removed from the big group (and, for profiling, more add/remove rounds).
    let rounds: usize = std::env::var("DIRSYNC_BENCH_BIG_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for r in 0..rounds {
        let op = if r % 2 == 0 { "delete" } else { "add" };
        let ch = format!(
            "version: 1\n\ndn: cn=big,ou=groups,dc=s\nchangetype: modify\n{op}: member\nmember: {}\n-\n",
            user_dn(0)
        );
        std::fs::write(d.join(format!("changes/{:04}.ldif", 3 + r)), ch).expect("changes");
        run(&mut e, "src", RunProfile::DeltaImport);
        checkpoint(&e);
        let (_, s) = time(|| run(&mut e, "src", RunProfile::DeltaSync));
        if r == 0 {
            report(&tag("big_group_remove_member_sync"), 1, s);
            let plan = e.plan().expect("plan");
            assert_eq!(plan.objects.len(), 1, "one pending export");
            let attrs = &plan.objects[0].attributes;
            assert_eq!(attrs.len(), 1, "{attrs:?}");
            assert_eq!(attrs[0].operation, "remove");
            assert_eq!(attrs[0].new.len(), 1, "exactly one member value removed");
        }
        run(&mut e, "tgt", RunProfile::Export);
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing special: keep it quick there.
    let args: Vec<String> = std::env::args().collect();
    let sizes = if args.iter().any(|a| a == "--bench") {
        std::env::var("DIRSYNC_BENCH_SIZES").unwrap_or_else(|_| "100000,250000".into())
    } else {
        "2000".into()
    };
    for s in sizes.split(',') {
        match s.trim().parse::<usize>() {
            Ok(n) if n >= 100 => bench(n),
            _ => eprintln!("ignoring size '{s}' (need a number >= 100)"),
        }
    }
}

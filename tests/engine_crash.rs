//! Crash consistency: abort the `dirsync` process at many points of a cycle (import, sync and
//! export), rerun, and check that the target converges to exactly what a clean run produces,
//! with no duplicate creates and no lost deletes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dirsync"))
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample")
}

/// Copies the sample without its state and change files.
fn fresh(dir: &Path) {
    for f in ["dirsync.toml", "corp.ldif", "hr.csv"] {
        std::fs::copy(sample().join(f), dir.join(f)).expect("copy sample");
    }
    std::fs::create_dir_all(dir.join("changes/corp")).expect("changes dir");
}

/// Change files with creates, updates, a rename, scope exits and deletes.
fn add_changes(dir: &Path) {
    let text = "version: 1

dn: uid=zed,ou=Sales,ou=People,dc=corp,dc=example
changetype: add
objectClass: inetOrgPerson
uid: zed
cn: Zed
sn: Zed
employeeNumber: E4000
entryUUID: 6f1c3c2e-1111-4a8b-9c0d-000000004000

dn: uid=asmith0,ou=Sales,ou=People,dc=corp,dc=example
changetype: modify
replace: title
title: Team Lead
-

dn: uid=bkowalski1,ou=Engineering,ou=People,dc=corp,dc=example
changetype: modify
add: employeeType
employeeType: disabled
-

dn: uid=candersson2,ou=Finance,ou=People,dc=corp,dc=example
changetype: delete

dn: uid=djensen3,ou=HR,ou=People,dc=corp,dc=example
changetype: moddn
newrdn: uid=djensen3
deleteoldrdn: 1
newsuperior: ou=Excluded,dc=corp,dc=example

dn: cn=Sales Team,ou=Groups,dc=corp,dc=example
changetype: modify
add: member
member: uid=zed,ou=Sales,ou=People,dc=corp,dc=example
-
";
    std::fs::write(dir.join("changes/corp/0001.ldif"), text).expect("write changes");
}

fn run(dir: &Path, args: &[&str], crash: Option<&str>) -> std::process::Output {
    let mut c = Command::new(bin());
    c.arg("--config").arg(dir.join("dirsync.toml")).args(args);
    c.env_remove("DIRSYNC_CRASH_AT");
    if let Some(spec) = crash {
        c.env("DIRSYNC_CRASH_AT", spec);
    }
    c.output().expect("run dirsync")
}

/// Target content without generated anchors, plus the number of entries (to see duplicates).
fn target(dir: &Path) -> (BTreeMap<String, Vec<String>>, usize) {
    let text = std::fs::read_to_string(dir.join("state/target.ldif")).unwrap_or_default();
    let mut map = BTreeMap::new();
    let mut count = 0;
    for rec in text.split("\n\n") {
        let mut lines: Vec<String> = rec
            .lines()
            .filter(|l| {
                !l.starts_with("entryUUID") && !l.starts_with("version") && !l.trim().is_empty()
            })
            .map(str::to_string)
            .collect();
        if lines.is_empty() {
            continue;
        }
        count += 1;
        let dn = lines.remove(0).to_lowercase();
        lines.sort();
        map.insert(dn, lines);
    }
    (map, count)
}

/// After recovery nothing may be left pending or failing: a duplicate create would show up as a
/// failed add (object already exists), a lost delete as a pending delete.
fn settled(dir: &Path, n: usize) {
    let out = run(dir, &["plan", "--format", "json"], None);
    ok(&out, "plan");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan json");
    let left = plan["objects"].as_array().cloned().unwrap_or_default();
    assert!(
        left.is_empty(),
        "{} pending exports left after a crash at point {n}, first: {}",
        left.len(),
        left.first()
            .map(|o| format!("{} {} ({})", o["operation"], o["dn"], o["last_error"]))
            .unwrap_or_default()
    );
    let out = run(dir, &["history", "--json", "--limit", "200"], None);
    let hist: serde_json::Value = serde_json::from_slice(&out.stdout).expect("history json");
    let last_cycle = hist
        .as_array()
        .and_then(|a| a.iter().find(|r| r["parent_id"].is_null()))
        .cloned();
    assert_eq!(
        last_cycle.as_ref().map(|c| c["result"].clone()),
        Some(serde_json::json!("success")),
        "{last_cycle:?}"
    );
}

fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The target after a clean initial cycle (and, with `delta`, a clean delta cycle too).
fn reference(delta: bool) -> BTreeMap<String, Vec<String>> {
    let dir = tempfile::tempdir().expect("tempdir");
    fresh(dir.path());
    ok(
        &run(dir.path(), &["cycle", "--initial"], None),
        "reference initial",
    );
    if delta {
        add_changes(dir.path());
        ok(&run(dir.path(), &["cycle"], None), "reference delta");
    }
    let (map, count) = target(dir.path());
    assert_eq!(map.len(), count);
    map
}

/// Runs `args` with a crash at the n-th crash point, then reruns until done; returns whether it crashed.
fn crash_and_recover(dir: &Path, args: &[&str], n: usize) -> bool {
    let out = run(dir, args, Some(&format!("*:{n}")));
    let crashed = !out.status.success();
    if crashed {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("DIRSYNC_CRASH_AT: aborting at"),
            "unexpected failure at point {n}: {err}"
        );
    }
    // Recovery: the same command again, then a delta cycle that must have nothing left to do.
    ok(&run(dir, args, None), "rerun");
    ok(&run(dir, &["cycle"], None), "settle");
    crashed
}

#[test]
fn crashes_anywhere_in_a_cycle_converge_without_duplicates_or_lost_deletes() {
    let want_initial = reference(false);
    let want_delta = reference(true);
    assert!(want_initial.len() > 50 && want_delta != want_initial);
    let mut crash_sites = std::collections::BTreeSet::new();
    let mut crashes = 0;
    // Initial cycles: crash points are spread over the whole cycle (import, sync, export).
    for n in (1..2000).step_by(23) {
        let dir = tempfile::tempdir().expect("tempdir");
        fresh(dir.path());
        let out = run(dir.path(), &["cycle", "--initial"], Some(&format!("*:{n}")));
        if out.status.success() {
            break; // past the last crash point
        }
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let site = err
            .lines()
            .find_map(|l| l.strip_prefix("DIRSYNC_CRASH_AT: aborting at "))
            .map(str::to_string);
        assert!(site.is_some(), "unexpected failure at point {n}: {err}");
        crash_sites.extend(site);
        crashes += 1;
        ok(
            &run(dir.path(), &["cycle", "--initial"], None),
            "rerun initial",
        );
        ok(&run(dir.path(), &["cycle"], None), "settle");
        settled(dir.path(), n);
        let (map, count) = target(dir.path());
        assert_eq!(
            count,
            map.len(),
            "duplicate entries after a crash at point {n}"
        );
        assert_eq!(
            map, want_initial,
            "target differs after a crash at point {n}"
        );
    }
    // Delta cycles with creates, renames, scope exits and deletes.
    for n in (1..2000).step_by(7) {
        let dir = tempfile::tempdir().expect("tempdir");
        fresh(dir.path());
        ok(&run(dir.path(), &["cycle", "--initial"], None), "initial");
        add_changes(dir.path());
        if !crash_and_recover(dir.path(), &["cycle"], n) {
            break;
        }
        crashes += 1;
        settled(dir.path(), n);
        let (map, count) = target(dir.path());
        assert_eq!(
            count,
            map.len(),
            "duplicate entries after a delta crash at point {n}"
        );
        assert_eq!(
            map, want_delta,
            "target differs after a delta crash at point {n}"
        );
    }
    assert!(crashes >= 50, "only {crashes} crash points were exercised");
    for stage in ["import.", "sync.", "export."] {
        assert!(
            crash_sites.iter().any(|s| s.starts_with(stage)),
            "no crash in {stage}: {crash_sites:?}"
        );
    }
    eprintln!("crash points exercised: {crashes}; sites: {crash_sites:?}");
}

//! Value-level delta sync of large multi-valued attributes: a member added to or removed from a
//! large group is synchronized from the changed values only, exports exactly those values, and
//! ends in the same target state as the full path (a fresh engine over the final source).

use dirsync::config::Config;
use dirsync::connectors::{ImportChange, build};
use dirsync::engine::{CyclePolicy, Engine, RunOptions, RunProfile, StepCounters};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const CONFIG: &str = r#"
[state]
path = "state.db"
[safety]
deletion_threshold_count = 0
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
flows = [{ target = "uid", source = "uid" }, { target = "sn", source = "sn" }]
[[rules]]
name = "group in"
direction = "inbound"
connector = "src"
source_type = "group"
target_type = "group"
precedence = 110
link_type = "provision"
flows = [{ target = "cn", source = "cn" }, { target = "member", source = "member" }]
[[rules]]
name = "user out"
direction = "outbound"
connector = "tgt"
source_type = "person"
target_type = "user"
precedence = 100
link_type = "provision"
flows = [
  { target = "dn", expression = '"uid=" & [uid] & ",ou=u,dc=t"' },
  { target = "objectClass", constant = "inetOrgPerson" },
  { target = "uid", source = "uid" },
  { target = "sn", source = "sn" },
]
[[rules]]
name = "group out"
direction = "outbound"
connector = "tgt"
source_type = "group"
target_type = "group"
precedence = 110
link_type = "provision"
flows = [
  { target = "dn", expression = '"cn=" & [cn] & ",ou=g,dc=t"' },
  { target = "objectClass", constant = "groupOfNames" },
  { target = "cn", source = "cn" },
  { target = "member", source = "member" },
]
"#;

const USERS: usize = 160;

fn user_dn(i: usize) -> String {
    format!("uid=u{i},ou=users,dc=s")
}

fn user_entry(i: usize) -> String {
    format!(
        "dn: {}\nobjectClass: inetOrgPerson\nuid: u{i}\nsn: S{i}\nentryUUID: u-{i}\n\n",
        user_dn(i)
    )
}

/// Source with `users` and a group "big" holding `members`, and a small group.
fn source(users: &[usize], members: &[usize]) -> String {
    let mut s = String::from("version: 1\n\n");
    for i in users {
        s.push_str(&user_entry(*i));
    }
    s.push_str("dn: cn=big,ou=groups,dc=s\nobjectClass: groupOfNames\ncn: big\nentryUUID: g-big\n");
    for m in members {
        let _ = writeln!(s, "member: {}", user_dn(*m));
    }
    s.push('\n');
    s.push_str(
        "dn: cn=small,ou=groups,dc=s\nobjectClass: groupOfNames\ncn: small\nentryUUID: g-small\n",
    );
    let _ = writeln!(s, "member: {}\n", user_dn(1));
    s
}

fn setup(users: &[usize], members: &[usize]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("dirsync.toml"), CONFIG).expect("config");
    std::fs::write(d.join("src.ldif"), source(users, members)).expect("source");
    std::fs::create_dir_all(d.join("changes")).expect("changes dir");
    dir
}

fn engine(d: &Path) -> Engine {
    Engine::open(Config::load(&d.join("dirsync.toml")).expect("config")).expect("engine")
}

fn change(d: &Path, name: &str, text: &str) {
    std::fs::write(
        d.join("changes").join(name),
        format!("version: 1\n\n{text}"),
    )
    .expect("change file");
}

fn member_change(op: &str, users: &[usize]) -> String {
    let mut s = format!("dn: cn=big,ou=groups,dc=s\nchangetype: modify\n{op}: member\n");
    for u in users {
        let _ = writeln!(s, "member: {}", user_dn(*u));
    }
    s.push_str("-\n\n");
    s
}

fn run(e: &mut Engine, c: &str, p: RunProfile) -> StepCounters {
    e.run_profile(c, p, &RunOptions::default(), None)
        .unwrap_or_else(|err| panic!("{c} {p:?}: {err}"))
        .counters
}

/// Delta import + delta sync of the source; the sync counters.
fn delta_sync(e: &mut Engine) -> StepCounters {
    run(e, "src", RunProfile::DeltaImport);
    run(e, "src", RunProfile::DeltaSync)
}

type Snapshot = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// The target directory as DN -> attribute -> sorted values (entryUUID left out).
fn target(d: &Path) -> Snapshot {
    let mut c = build("ldif", serde_json::json!({"path": "tgt.ldif"}), d).expect("target");
    let mut items: Vec<ImportChange> = Vec::new();
    c.full_import(&mut items).expect("read target");
    let mut out = Snapshot::new();
    for i in items {
        if let ImportChange::Upsert(o) = i {
            let mut attrs = BTreeMap::new();
            for (k, vs) in o.attributes {
                if k == "entryUUID" {
                    continue;
                }
                let mut t: Vec<String> = vs.iter().map(|v| v.to_text()).collect();
                t.sort();
                attrs.insert(k, t);
            }
            out.insert(o.dn.to_string(), attrs);
        }
    }
    out
}

/// The target a clean initial cycle produces from this source.
fn full_path_target(users: &[usize], members: &[usize]) -> Snapshot {
    let dir = setup(users, members);
    let mut e = engine(dir.path());
    e.cycle(CyclePolicy::Initial, &RunOptions::default())
        .expect("initial cycle");
    target(dir.path())
}

/// The pending member changes of the big group: (operation, values).
fn pending_member_ops(e: &Engine) -> Vec<(String, Vec<String>)> {
    let plan = e.plan().expect("plan");
    let mut out = Vec::new();
    for o in &plan.objects {
        assert_eq!(
            o.dn, "cn=big,ou=g,dc=t",
            "only the big group changes: {plan:?}"
        );
        for a in &o.attributes {
            assert_eq!(a.attribute, "member", "{plan:?}");
            let mut v = a.new.clone();
            v.sort();
            out.push((a.operation.clone(), v));
        }
    }
    out
}

fn tdn(i: usize) -> String {
    format!("uid=u{i},ou=u,dc=t")
}

#[test]
fn member_changes_in_a_large_group_sync_value_by_value_and_match_the_full_path() {
    let users: Vec<usize> = (0..USERS).collect();
    let mut members: Vec<usize> = (0..120).collect();
    let dir = setup(&users, &members);
    let d = dir.path();
    let mut e = engine(d);
    e.cycle(CyclePolicy::Initial, &RunOptions::default())
        .expect("initial cycle");
    run(&mut e, "tgt", RunProfile::FullImport);
    run(&mut e, "tgt", RunProfile::DeltaSync);
    assert!(e.plan().expect("plan").objects.is_empty());

    // One member added: value-level, exactly that value exported.
    change(d, "0001.ldif", &member_change("add", &[130]));
    let c = delta_sync(&mut e);
    assert_eq!(c.mv_value_updates, 1, "{c:?}");
    assert_eq!(
        pending_member_ops(&e),
        vec![("add".to_string(), vec![tdn(130)])]
    );
    members.push(130);

    // Before that export: one removed, one added; the pending export folds both in.
    change(d, "0002.ldif", &member_change("delete", &[5]));
    change(d, "0003.ldif", &member_change("add", &[131]));
    let c = delta_sync(&mut e);
    assert_eq!(c.mv_value_updates, 1, "{c:?}");
    assert_eq!(
        pending_member_ops(&e),
        vec![
            ("remove".to_string(), vec![tdn(5)]),
            ("add".to_string(), vec![tdn(130), tdn(131)]),
        ]
    );
    members.retain(|m| *m != 5);
    members.push(131);

    // Changes that cancel out across two imports before one sync: only u132 remains.
    change(d, "0004.ldif", &member_change("add", &[132, 133]));
    run(&mut e, "src", RunProfile::DeltaImport);
    change(d, "0005.ldif", &member_change("delete", &[133]));
    let c = delta_sync(&mut e);
    assert_eq!(c.mv_value_updates, 1, "{c:?}");
    members.push(132);
    // A value removed before its add was exported leaves the export.
    change(d, "0006.ldif", &member_change("delete", &[130]));
    delta_sync(&mut e);
    members.retain(|m| *m != 130);
    assert_eq!(
        pending_member_ops(&e),
        vec![
            ("remove".to_string(), vec![tdn(5)]),
            ("add".to_string(), vec![tdn(131), tdn(132)]),
        ]
    );
    run(&mut e, "tgt", RunProfile::Export);
    assert_eq!(target(d), full_path_target(&users, &members));

    // Confirming import, then a member whose user is new in the same delta (resolves only
    // after projection: the full path takes over) and a member whose user is deleted.
    run(&mut e, "tgt", RunProfile::DeltaImport);
    run(&mut e, "tgt", RunProfile::DeltaSync);
    let mut users = users;
    change(
        d,
        "0007.ldif",
        &format!(
            "{}{}dn: {}\nchangetype: delete\n\n",
            user_entry(200).replacen('\n', "\nchangetype: add\n", 1),
            member_change("add", &[200]),
            user_dn(7)
        ),
    );
    change(d, "0008.ldif", &member_change("delete", &[7]));
    delta_sync(&mut e);
    users.push(200);
    users.retain(|u| *u != 7);
    members.push(200);
    members.retain(|m| *m != 7);
    run(&mut e, "tgt", RunProfile::Export);
    assert_eq!(target(d), full_path_target(&users, &members));

    // A full sync afterwards finds nothing to change.
    run(&mut e, "tgt", RunProfile::DeltaImport);
    run(&mut e, "tgt", RunProfile::DeltaSync);
    run(&mut e, "src", RunProfile::FullSync);
    assert!(e.plan().expect("plan").objects.is_empty(), "{:?}", e.plan());
}

#[test]
fn small_groups_take_the_full_path() {
    let users: Vec<usize> = (0..20).collect();
    let members: Vec<usize> = (0..10).collect();
    let dir = setup(&users, &members);
    let d = dir.path();
    let mut e = engine(d);
    e.cycle(CyclePolicy::Initial, &RunOptions::default())
        .expect("initial cycle");
    change(d, "0001.ldif", &member_change("add", &[15]));
    let c = delta_sync(&mut e);
    assert_eq!(c.mv_value_updates, 0, "{c:?}");
    assert_eq!(c.mv_updates, 1, "{c:?}");
    assert_eq!(
        pending_member_ops(&e),
        vec![("add".to_string(), vec![tdn(15)])]
    );
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dirsync"))
}

fn cli(d: &Path, args: &[&str], crash: Option<&str>) -> std::process::Output {
    let mut c = Command::new(bin());
    c.arg("--config").arg(d.join("dirsync.toml")).args(args);
    c.env_remove("DIRSYNC_CRASH_AT");
    if let Some(spec) = crash {
        c.env("DIRSYNC_CRASH_AT", spec);
    }
    c.output().expect("run dirsync")
}

#[test]
fn a_crash_anywhere_in_a_value_level_cycle_converges() {
    let users: Vec<usize> = (0..100).collect();
    let members: Vec<usize> = (0..90).collect();
    let mut final_members = members.clone();
    final_members.retain(|m| *m != 3);
    final_members.push(95);
    let want = full_path_target(&users, &final_members);
    let mut n = 1;
    loop {
        let dir = setup(&users, &members);
        let d = dir.path();
        let out = cli(d, &["cycle", "--initial"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        change(
            d,
            "0001.ldif",
            &format!(
                "{}{}",
                member_change("add", &[95]),
                member_change("delete", &[3])
            ),
        );
        let spec = format!("*:{n}");
        let out = cli(d, &["cycle"], Some(&spec));
        let crashed = !out.status.success();
        if crashed {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("DIRSYNC_CRASH_AT: aborting at"),
                "unexpected failure at point {n}: {err}"
            );
            let out = cli(d, &["cycle"], None);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // A second cycle confirms the export; nothing is left to do.
        let out = cli(d, &["cycle"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(target(d), want, "after a crash at point {n}");
        if !crashed {
            assert!(n > 10, "only {n} crash points reached");
            break;
        }
        n += 1;
    }
}

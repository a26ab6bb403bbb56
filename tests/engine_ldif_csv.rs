//! End-to-end engine tests: an LDIF source and an HR CSV into an LDIF target, across an
//! initial cycle and several delta change files, asserting the exact target content.

use dirsync::config::Config;
use dirsync::connectors::{ImportChange, build};
use dirsync::engine::{CyclePolicy, Engine, EngineError, RunOptions};
use std::collections::BTreeMap;
use std::path::Path;

const CONFIG: &str = r#"
[state]
path = "state.db"

[safety]
deletion_threshold_count = 3

[parameters]
"Domain.FQDN" = "corp.example.com"

[[connectors]]
name = "src"
type = "ldif"
[connectors.settings]
path = "src.ldif"
changes_dir = "changes"

[[connectors]]
name = "hr"
type = "csv"
[connectors.settings]
path = "hr.csv"
anchor_column = "id"
object_type = "person"

[[connectors]]
name = "tgt"
type = "ldif"
[connectors.settings]
path = "tgt.ldif"

[[rules]]
name = "hr in"
direction = "inbound"
connector = "hr"
source_type = "person"
target_type = "person"
precedence = 50
[[rules.join]]
clauses = [{ source = "id", target = "employeeId" }]
[[rules.flows]]
target = "title"
source = "title"

[[rules]]
name = "src user in"
direction = "inbound"
connector = "src"
source_type = "user"
target_type = "person"
precedence = 100
link_type = "provision"
[[rules.scope]]
clauses = [{ attribute = "dn", operator = "NOTCONTAINS", value = "ou=gone" }]
[[rules.join]]
clauses = [{ source = "employeeNumber", target = "employeeId" }]
[[rules.flows]]
target = "employeeId"
source = "employeeNumber"
[[rules.flows]]
target = "uid"
source = "uid"
[[rules.flows]]
target = "title"
source = "title"
[[rules.flows]]
target = "sn"
source = "sn"
[[rules.flows]]
target = "manager"
source = "manager"
[[rules.flows]]
target = "enabled"
source = "employeeType"

[[rules]]
name = "src group in"
direction = "inbound"
connector = "src"
source_type = "group"
target_type = "group"
precedence = 110
link_type = "provision"
[[rules.flows]]
target = "cn"
source = "cn"
[[rules.flows]]
target = "member"
source = "member"

[[rules]]
name = "user out"
direction = "outbound"
connector = "tgt"
source_type = "person"
target_type = "user"
precedence = 100
link_type = "provision"
[[rules.scope]]
clauses = [{ attribute = "enabled", operator = "NOTEQUAL", value = "disabled" }]
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
[[rules.flows]]
target = "title"
source = "title"
[[rules.flows]]
target = "manager"
source = "manager"

[[rules]]
name = "group out"
direction = "outbound"
connector = "tgt"
source_type = "group"
target_type = "group"
precedence = 110
link_type = "provision"
[[rules.flows]]
target = "dn"
expression = '"cn=" & [cn] & ",dc=t"'
[[rules.flows]]
target = "objectClass"
constant = "groupOfNames"
[[rules.flows]]
target = "cn"
source = "cn"
[[rules.flows]]
target = "member"
source = "member"
"#;

const SOURCE: &str = "version: 1

dn: uid=ann,ou=p,dc=s
objectClass: inetOrgPerson
uid: ann
sn: Ann
title: Boss
employeeNumber: 1
entryUUID: 00000000-0000-0000-0000-000000000001

dn: uid=bob,ou=p,dc=s
objectClass: inetOrgPerson
uid: bob
sn: Bob
title: Clerk
employeeNumber: 2
manager: uid=ann,ou=p,dc=s
entryUUID: 00000000-0000-0000-0000-000000000002

dn: uid=cy,ou=p,dc=s
objectClass: inetOrgPerson
uid: cy
sn: Cy
employeeNumber: 3
manager: uid=ann,ou=p,dc=s
entryUUID: 00000000-0000-0000-0000-000000000003

dn: cn=staff,ou=g,dc=s
objectClass: groupOfNames
cn: staff
member: uid=bob,ou=p,dc=s
member: uid=cy,ou=p,dc=s
entryUUID: 00000000-0000-0000-0000-0000000000aa
";

const HR: &str = "id,title\n2,Senior Clerk\n";

type Snapshot = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// The target directory as DN -> attribute -> sorted values (entryUUID left out: generated).
fn target(dir: &Path) -> Snapshot {
    let mut c =
        build("ldif", serde_json::json!({"path": "tgt.ldif"}), dir).expect("target connector");
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

fn entry(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut vs: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            vs.sort();
            (k.to_string(), vs)
        })
        .collect()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("dirsync.toml"), CONFIG).expect("write config");
    std::fs::write(dir.path().join("src.ldif"), SOURCE).expect("write source");
    std::fs::write(dir.path().join("hr.csv"), HR).expect("write hr");
    std::fs::create_dir_all(dir.path().join("changes")).expect("changes dir");
    dir
}

fn engine(dir: &Path) -> Engine {
    let cfg = Config::load(&dir.join("dirsync.toml")).expect("config");
    Engine::open(cfg).expect("engine")
}

fn change(dir: &Path, name: &str, text: &str) {
    std::fs::write(
        dir.join("changes").join(name),
        format!("version: 1\n\n{text}"),
    )
    .expect("write change");
}

#[test]
fn initial_and_delta_cycles_converge_to_exact_target() {
    let dir = setup();
    let d = dir.path();
    let mut e = engine(d);
    let runs = e
        .cycle(CyclePolicy::Initial, &RunOptions::default())
        .expect("initial cycle");
    assert!(runs.iter().all(|r| r.result == "success"), "{runs:#?}");

    let mut want = Snapshot::new();
    want.insert(
        "uid=ann,dc=t".into(),
        entry(&[
            ("objectClass", &["inetOrgPerson"]),
            ("uid", &["ann"]),
            ("sn", &["Ann"]),
            ("title", &["Boss"]),
        ]),
    );
    want.insert(
        "uid=bob,dc=t".into(),
        entry(&[
            ("objectClass", &["inetOrgPerson"]),
            ("uid", &["bob"]),
            ("sn", &["Bob"]),
            ("title", &["Senior Clerk"]),
            ("manager", &["uid=ann,dc=t"]),
        ]),
    );
    want.insert(
        "uid=cy,dc=t".into(),
        entry(&[
            ("objectClass", &["inetOrgPerson"]),
            ("uid", &["cy"]),
            ("sn", &["Cy"]),
            ("manager", &["uid=ann,dc=t"]),
        ]),
    );
    want.insert(
        "cn=staff,dc=t".into(),
        entry(&[
            ("objectClass", &["groupOfNames"]),
            ("cn", &["staff"]),
            ("member", &["uid=bob,dc=t", "uid=cy,dc=t"]),
        ]),
    );
    assert_eq!(target(d), want);
    // The HR precedence (50) beats the directory (100) for title, and provenance says so.
    let mv = e.mv_objects(None).expect("mv");
    let bob = mv
        .iter()
        .find(|o| {
            o.attributes
                .get("uid")
                .is_some_and(|v| v[0].to_text() == "bob")
        })
        .expect("bob in mv");
    assert_eq!(bob.provenance["title"].rule, "hr in");
    assert_eq!(bob.provenance["sn"].connector, "src");

    // A second delta cycle with no change exports nothing and confirms the exports.
    let runs = e
        .cycle(CyclePolicy::Delta, &RunOptions::default())
        .expect("quiet cycle");
    let exported: u64 = runs
        .iter()
        .map(|r| r.counters.export_adds + r.counters.export_updates + r.counters.export_deletes)
        .sum();
    assert_eq!(exported, 0, "{runs:#?}");
    assert_eq!(e.plan().expect("plan").objects.len(), 0);

    // Create, update.
    change(
        d,
        "0001.ldif",
        "dn: uid=dee,ou=p,dc=s\nchangetype: add\nobjectClass: inetOrgPerson\nuid: dee\nsn: Dee\nemployeeNumber: 4\nentryUUID: 00000000-0000-0000-0000-000000000004\n\ndn: uid=cy,ou=p,dc=s\nchangetype: modify\nreplace: sn\nsn: Cyrus\n-\nadd: title\ntitle: Analyst\n-\n\ndn: cn=staff,ou=g,dc=s\nchangetype: modify\nadd: member\nmember: uid=dee,ou=p,dc=s\n-\n",
    );
    e.cycle(CyclePolicy::Delta, &RunOptions::default())
        .expect("delta 1");
    want.insert(
        "uid=dee,dc=t".into(),
        entry(&[
            ("objectClass", &["inetOrgPerson"]),
            ("uid", &["dee"]),
            ("sn", &["Dee"]),
        ]),
    );
    want.insert(
        "uid=cy,dc=t".into(),
        entry(&[
            ("objectClass", &["inetOrgPerson"]),
            ("uid", &["cy"]),
            ("sn", &["Cyrus"]),
            ("title", &["Analyst"]),
            ("manager", &["uid=ann,dc=t"]),
        ]),
    );
    want.insert(
        "cn=staff,dc=t".into(),
        entry(&[
            ("objectClass", &["groupOfNames"]),
            ("cn", &["staff"]),
            ("member", &["uid=bob,dc=t", "uid=cy,dc=t", "uid=dee,dc=t"]),
        ]),
    );
    assert_eq!(target(d), want);

    // Rename (uid changes -> target DN changes; references follow), disable.
    change(
        d,
        "0002.ldif",
        "dn: uid=ann,ou=p,dc=s\nchangetype: modrdn\nnewrdn: uid=anne\ndeleteoldrdn: 1\n\ndn: uid=dee,ou=p,dc=s\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n-\n",
    );
    e.cycle(CyclePolicy::Delta, &RunOptions::default())
        .expect("delta 2");
    want.remove("uid=ann,dc=t");
    want.insert(
        "uid=anne,dc=t".into(),
        entry(&[
            ("objectClass", &["inetOrgPerson"]),
            ("uid", &["anne"]),
            ("sn", &["Ann"]),
            ("title", &["Boss"]),
        ]),
    );
    want.remove("uid=dee,dc=t");
    for u in ["uid=bob,dc=t", "uid=cy,dc=t"] {
        want.get_mut(u)
            .expect("user")
            .insert("manager".into(), vec!["uid=anne,dc=t".into()]);
    }
    want.get_mut("cn=staff,dc=t").expect("group").insert(
        "member".into(),
        vec!["uid=bob,dc=t".into(), "uid=cy,dc=t".into()],
    );
    assert_eq!(target(d), want);

    // Move out of scope, delete.
    change(
        d,
        "0003.ldif",
        "dn: uid=cy,ou=p,dc=s\nchangetype: moddn\nnewrdn: uid=cy\ndeleteoldrdn: 1\nnewsuperior: ou=gone,dc=s\n\ndn: uid=bob,ou=p,dc=s\nchangetype: delete\n",
    );
    e.cycle(CyclePolicy::Delta, &RunOptions::default())
        .expect("delta 3");
    want.remove("uid=cy,dc=t");
    want.remove("uid=bob,dc=t");
    want.get_mut("cn=staff,dc=t")
        .expect("group")
        .remove("member");
    assert_eq!(target(d), want);
    assert_eq!(e.plan().expect("plan").objects.len(), 0);
}

#[test]
fn deletion_threshold_stops_the_whole_export_until_confirmed() {
    let dir = setup();
    let d = dir.path();
    let mut e = engine(d);
    e.cycle(CyclePolicy::Initial, &RunOptions::default())
        .expect("initial");
    let before = target(d);
    // Four deletes (three users and the group) exceed the threshold of 3.
    change(
        d,
        "0001.ldif",
        "dn: uid=ann,ou=p,dc=s\nchangetype: delete\n\ndn: uid=bob,ou=p,dc=s\nchangetype: delete\n\ndn: uid=cy,ou=p,dc=s\nchangetype: delete\n\ndn: cn=staff,ou=g,dc=s\nchangetype: delete\n",
    );
    let err = e
        .cycle(CyclePolicy::Delta, &RunOptions::default())
        .expect_err("threshold");
    assert!(
        matches!(err, EngineError::DeletionThreshold { deletes: 4, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("stopped: deletion threshold exceeded")
    );
    assert_eq!(target(d), before, "nothing may be written");
    let hist = e.history(20).expect("history");
    let cycle = hist
        .iter()
        .find(|r| r.parent_id.is_none())
        .expect("cycle record");
    assert_eq!(cycle.result, "stopped-deletion-threshold-exceeded");
    assert!(
        cycle
            .message
            .as_deref()
            .unwrap_or("")
            .contains("would delete 4 of"),
        "{cycle:?}"
    );
    assert_eq!(e.plan().expect("plan").summary.deletes, 4);
    // Still stopped on the next cycle...
    assert!(e.cycle(CyclePolicy::Delta, &RunOptions::default()).is_err());
    assert_eq!(target(d), before);
    // ...until the admin confirms.
    e.confirm_deletes().expect("confirm");
    e.cycle(CyclePolicy::Delta, &RunOptions::default())
        .expect("confirmed");
    assert!(target(d).is_empty(), "{:?}", target(d));
}

#[test]
fn empty_source_never_turns_into_deletes() {
    let dir = setup();
    let d = dir.path();
    let mut e = engine(d);
    e.cycle(CyclePolicy::Initial, &RunOptions::default())
        .expect("initial");
    let before = target(d);
    std::fs::write(d.join("src.ldif"), "version: 1\n").expect("empty source");
    let err = e
        .cycle(CyclePolicy::Initial, &RunOptions::default())
        .expect_err("empty import");
    assert!(matches!(err, EngineError::EmptyImport { .. }), "{err}");
    assert_eq!(target(d), before);
    assert_eq!(e.status().expect("status").connectors[0].objects, 4);
}

#[test]
fn staging_mode_computes_the_plan_and_writes_nothing() {
    let dir = setup();
    let d = dir.path();
    let text = CONFIG.replace("[safety]\n", "[safety]\nstaging_mode = true\n");
    std::fs::write(d.join("dirsync.toml"), text).expect("config");
    let mut e = engine(d);
    e.cycle(CyclePolicy::Initial, &RunOptions::default())
        .expect("staging cycle");
    assert!(!d.join("tgt.ldif").exists() || target(d).is_empty());
    let plan = e.plan().expect("plan");
    assert_eq!(plan.summary.adds, 4);
    let bob = plan
        .objects
        .iter()
        .find(|o| o.dn == "uid=bob,dc=t")
        .expect("bob planned");
    assert!(
        bob.attributes
            .iter()
            .any(|a| a.attribute == "title" && a.new == vec!["Senior Clerk".to_string()])
    );
    assert!(plan.to_csv().lines().count() > 4);
    assert!(plan.to_table().contains("ADD"));
}

#[test]
fn a_second_engine_on_the_same_state_refuses() {
    let dir = setup();
    let _e = engine(dir.path());
    let cfg = Config::load(&dir.path().join("dirsync.toml")).expect("config");
    let err = Engine::open(cfg).err().expect("second engine refused");
    assert!(
        err.to_string().contains("in use by another dirsync engine"),
        "{err}"
    );
}

//! Single-object sync (`Engine::sync_object`, the Sync-ADSyncCSObject equivalent) over an LDIF
//! source, an HR CSV and an LDIF target: a preview reports every decision and leaves the state
//! byte for byte as it was; a commit leaves the state exactly as the sync run would have.

use dirsync::config::Config;
use dirsync::engine::{CyclePolicy, Engine, ObjectRef, ObjectSyncReport, RunOptions, RunProfile};
use dirsync::model::Value;
use dirsync::store::LinkKind;
use rusqlite::types::Value as Sql;
use std::collections::BTreeMap;
use std::path::Path;

const CONFIG: &str = r#"
[state]
path = "state.db"

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

dn: uid=eve,ou=p,dc=s
objectClass: inetOrgPerson
uid: eve
sn: Eve
employeeNumber: 5
entryUUID: 00000000-0000-0000-0000-000000000005

dn: cn=staff,ou=g,dc=s
objectClass: groupOfNames
cn: staff
member: uid=bob,ou=p,dc=s
entryUUID: 00000000-0000-0000-0000-0000000000aa
";

/// HR knows bob (joins) and dee (not in the directory yet: no metaverse object to join).
const HR: &str = "id,title\n2,Senior Clerk\n4,Analyst\n";

/// bob changes sn, dee is new, cy moves out of scope, eve is deleted, ann's uid (and so her
/// target DN) changes.
const CHANGES: &str = "version: 1

dn: uid=bob,ou=p,dc=s
changetype: modify
replace: sn
sn: Robert
-

dn: uid=dee,ou=p,dc=s
changetype: add
objectClass: inetOrgPerson
uid: dee
sn: Dee
employeeNumber: 4
manager: uid=ann,ou=p,dc=s
entryUUID: 00000000-0000-0000-0000-000000000004

dn: uid=cy,ou=p,dc=s
changetype: moddn
newrdn: uid=cy
deleteoldrdn: 1
newsuperior: ou=gone,dc=s

dn: uid=eve,ou=p,dc=s
changetype: delete

dn: uid=ann,ou=p,dc=s
changetype: modify
replace: uid
uid: anne
-
";

fn engine(dir: &Path) -> Engine {
    let cfg = Config::load(&dir.join("dirsync.toml")).expect("config");
    Engine::open(cfg).expect("engine")
}

/// Initial cycle over the fixture, then the change file imported (not synchronized) on `src`.
fn prepared() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("dirsync.toml"), CONFIG).expect("config");
    std::fs::write(d.join("src.ldif"), SOURCE).expect("source");
    std::fs::write(d.join("hr.csv"), HR).expect("hr");
    std::fs::create_dir_all(d.join("changes")).expect("changes dir");
    let mut e = engine(d);
    let runs = e
        .cycle(CyclePolicy::Initial, &RunOptions::default())
        .expect("initial cycle");
    assert!(runs.iter().all(|r| r.result == "success"), "{runs:#?}");
    std::fs::write(d.join("changes").join("0001.ldif"), CHANGES).expect("change file");
    let r = e
        .run_profile("src", RunProfile::DeltaImport, &RunOptions::default(), None)
        .expect("delta import");
    assert_eq!(
        (
            r.counters.adds,
            r.counters.updates,
            r.counters.renames,
            r.counters.deletes
        ),
        (1, 2, 1, 1),
        "{r:#?}"
    );
    dir
}

/// Every row of every table, as text, in primary-key order. With `normalize`, the columns that
/// hold clock times (and the run history, which differs by nature) are left out.
fn dump(e: &Engine, normalize: bool) -> BTreeMap<String, Vec<Vec<String>>> {
    let c = e.store().conn();
    let mut tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .expect("tables");
    if normalize {
        tables.retain(|t| t != "run" && t != "run_error");
    }
    let mut out = BTreeMap::new();
    for t in tables {
        let mut st = c.prepare(&format!("SELECT * FROM {t}")).expect("select");
        let cols: Vec<String> = st.column_names().map(|s| s.to_string()).collect();
        let mut rows: Vec<Vec<String>> = st
            .query_map([], |r| {
                let mut row = Vec::new();
                for (i, name) in cols.iter().enumerate() {
                    let v: Sql = r.get(i)?;
                    let mut text = format!("{v:?}");
                    if normalize && (name == "created" || name == "updated") {
                        text = "<time>".into();
                    }
                    if normalize
                        && name == "provenance"
                        && let Sql::Text(json) = &v
                    {
                        let mut p: serde_json::Value = serde_json::from_str(json).expect("json");
                        if let Some(m) = p.as_object_mut() {
                            for a in m.values_mut() {
                                if let Some(o) = a.as_object_mut() {
                                    o.remove("modified");
                                }
                            }
                        }
                        text = p.to_string();
                    }
                    row.push(format!("{name}={text}"));
                }
                Ok(row)
            })
            .expect("rows")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        rows.sort();
        out.insert(t, rows);
    }
    out
}

fn texts(v: &[Value]) -> Vec<String> {
    v.iter().map(Value::to_text).collect()
}

fn dn(s: &str) -> ObjectRef {
    ObjectRef::Dn(s.into())
}

fn change<'r>(r: &'r ObjectSyncReport, attr: &str) -> &'r dirsync::engine::MvAttributeChange {
    r.metaverse
        .as_ref()
        .expect("metaverse")
        .changes
        .iter()
        .find(|c| c.attribute == attr)
        .unwrap_or_else(|| panic!("no change of {attr}: {r:#?}"))
}

#[test]
fn preview_reports_every_decision_and_changes_nothing() {
    let dir = prepared();
    let mut e = engine(dir.path());
    let before = dump(&e, false);
    let plan_before = e.plan().expect("plan");

    // An update: stays joined, sn changes by the source rule, the target gets a replace.
    let r = e
        .sync_object("src", &dn("uid=bob,ou=p,dc=s"), false)
        .expect("preview bob");
    assert!(!r.committed);
    assert_eq!(r.object.dn.to_string(), "uid=bob,ou=p,dc=s");
    assert_eq!(r.link.action, "stay", "{r:#?}");
    assert_eq!(r.link.rule.as_deref(), Some("src user in"));
    let rules: Vec<(&str, bool, bool)> = r
        .inbound_rules
        .iter()
        .map(|x| (x.rule.as_str(), x.applies, x.in_scope))
        .collect();
    assert_eq!(
        rules,
        [("src user in", true, true), ("src group in", false, false)]
    );
    let sn = change(&r, "sn");
    assert_eq!(
        (texts(&sn.old), texts(&sn.new)),
        (vec!["Bob".into()], vec!["Robert".into()])
    );
    assert_eq!(sn.rule.as_deref(), Some("src user in"));
    assert_eq!(sn.connector.as_deref(), Some("src"));
    assert_eq!(
        r.metaverse.as_ref().map(|m| m.outcome.as_str()),
        Some("updated")
    );
    // HR's title (precedence 50) still wins: no title change.
    assert!(
        r.metaverse
            .as_ref()
            .unwrap()
            .changes
            .iter()
            .all(|c| c.attribute != "title")
    );
    let tgt: Vec<_> = r.exports.iter().filter(|x| x.connector == "tgt").collect();
    assert_eq!(tgt.len(), 1, "{r:#?}");
    assert!(tgt[0].changed && tgt[0].before.is_none());
    let after = tgt[0].after.as_ref().expect("pending export");
    assert_eq!(
        (after.operation.as_str(), after.dn.as_str()),
        ("update", "uid=bob,dc=t")
    );
    let a = &after.attributes[0];
    assert_eq!(
        (a.attribute.as_str(), a.old.clone(), a.new.clone()),
        ("sn", vec!["Bob".to_string()], vec!["Robert".to_string()])
    );
    // HR's object is linked to the same metaverse object; it gets no export.
    assert!(
        r.exports
            .iter()
            .all(|x| x.connector != "hr" || x.after.is_none())
    );

    // A new object (named by anchor): projected, provisioned to the target as an add.
    let r = e
        .sync_object(
            "src",
            &ObjectRef::Anchor("00000000-0000-0000-0000-000000000004".into()),
            false,
        )
        .expect("preview dee");
    assert_eq!(r.link.action, "project", "{r:#?}");
    assert_eq!(r.link.rule.as_deref(), Some("src user in"));
    let mv = r.metaverse.as_ref().expect("mv");
    assert_eq!(mv.outcome, "created");
    assert_eq!(texts(&change(&r, "uid").new), ["dee"]);
    assert!(change(&r, "uid").old.is_empty());
    assert_eq!(r.counters.projections, 1);
    assert_eq!(r.counters.provisions, 1);
    let add = r
        .exports
        .iter()
        .find(|x| x.connector == "tgt")
        .and_then(|x| x.after.as_ref())
        .expect("add");
    assert_eq!(
        (add.operation.as_str(), add.dn.as_str()),
        ("add", "uid=dee,dc=t")
    );
    let manager = add
        .attributes
        .iter()
        .find(|a| a.attribute == "manager")
        .expect("manager flows");
    assert_eq!(manager.new, ["uid=ann,dc=t"]);

    // Moved out of scope: the rule says why, the object disconnects, the target object goes.
    let r = e
        .sync_object("src", &dn("uid=cy,ou=gone,dc=s"), false)
        .expect("preview cy");
    let rule = &r.inbound_rules[0];
    assert!(rule.applies && !rule.in_scope);
    assert!(rule.reason.contains("not satisfied"), "{}", rule.reason);
    assert_eq!(r.link.action, "disconnect", "{r:#?}");
    assert_eq!(
        r.metaverse.as_ref().map(|m| m.outcome.as_str()),
        Some("deleted")
    );
    let del = r
        .exports
        .iter()
        .find(|x| x.connector == "tgt")
        .and_then(|x| x.after.as_ref())
        .expect("delete");
    assert_eq!(
        (del.operation.as_str(), del.dn.as_str()),
        ("delete", "uid=cy,dc=t")
    );

    // Deleted in the source: the object leaves, its identity and target object go.
    let r = e
        .sync_object(
            "src",
            &ObjectRef::Anchor("00000000-0000-0000-0000-000000000005".into()),
            false,
        )
        .expect("preview eve");
    assert_eq!(r.link.action, "delete", "{r:#?}");
    assert_eq!(r.link.rule.as_deref(), Some("src user in"));
    assert_eq!(
        r.metaverse.as_ref().map(|m| m.outcome.as_str()),
        Some("deleted")
    );
    let del = r
        .exports
        .iter()
        .find(|x| x.connector == "tgt")
        .and_then(|x| x.after.as_ref())
        .expect("delete");
    assert_eq!(
        (del.operation.as_str(), del.dn.as_str()),
        ("delete", "uid=eve,dc=t")
    );

    // A new target DN: the export is a rename.
    let r = e
        .sync_object("src", &dn("uid=ann,ou=p,dc=s"), false)
        .expect("preview ann");
    let ren = r
        .exports
        .iter()
        .find(|x| x.connector == "tgt")
        .and_then(|x| x.after.as_ref())
        .expect("rename");
    assert_eq!(ren.operation, "rename", "{r:#?}");
    assert_eq!(
        (ren.dn.as_str(), ren.new_dn.as_deref()),
        ("uid=ann,dc=t", Some("uid=anne,dc=t"))
    );

    // A target object (exported, provisioned link) has no inbound rule and stays linked.
    let r = e
        .sync_object("tgt", &dn("uid=ann,dc=t"), false)
        .expect("preview target object");
    assert_eq!(r.link.action, "stay", "{r:#?}");
    assert_eq!(r.link.link, Some(LinkKind::Provisioned));
    assert!(r.inbound_rules.is_empty());

    // Nothing to join yet and no projection rule for HR: stays a disconnector, and says why.
    let r = e
        .sync_object("hr", &ObjectRef::Anchor("4".into()), false)
        .expect("preview hr 4");
    assert_eq!(r.link.action, "none");
    assert!(
        r.link.reason.contains("no metaverse object matched"),
        "{}",
        r.link.reason
    );
    assert!(r.metaverse.is_none() && r.exports.is_empty());

    // Unknown objects and connectors are errors.
    assert!(e.sync_object("src", &dn("uid=nobody,dc=s"), false).is_err());
    assert!(
        e.sync_object("nope", &dn("uid=bob,ou=p,dc=s"), false)
            .is_err()
    );

    // The previews left every table as it was.
    assert_eq!(dump(&e, false), before);
    assert_eq!(e.plan().expect("plan"), plan_before);
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn commit_leaves_the_state_the_sync_run_leaves() {
    let a = prepared();
    let b = tempfile::tempdir().expect("tempdir");
    copy_dir(a.path(), b.path());
    let mut ea = engine(a.path());
    let mut eb = engine(b.path());
    assert_eq!(dump(&ea, false), dump(&eb, false));

    // A: each pending object on its own, committed. B: the delta sync run.
    let pending: Vec<String> = ea
        .cs_objects("src", None, None)
        .expect("cs")
        .into_iter()
        .filter(|o| o.sync_pending)
        .map(|o| o.dn.to_string())
        .collect();
    assert_eq!(pending.len(), 5, "{pending:?}");
    for d in &pending {
        let r = ea.sync_object("src", &dn(d), true).expect("commit");
        assert!(r.committed);
        assert!(r.errors.is_empty(), "{r:#?}");
    }
    eb.run_profile("src", RunProfile::DeltaSync, &RunOptions::default(), None)
        .expect("delta sync");
    // dee's target object is provisioned and not yet exported: not evaluated inbound.
    let r = ea
        .sync_object("tgt", &dn("uid=dee,dc=t"), false)
        .expect("preview placeholder");
    assert!(r.object.placeholder);
    assert_eq!(r.link.action, "none");
    assert!(r.link.reason.contains("provisioned"), "{}", r.link.reason);
    assert_eq!(dump(&ea, true), dump(&eb, true));
    assert_eq!(ea.plan().expect("plan a"), eb.plan().expect("plan b"));
    assert_eq!(ea.plan().expect("plan").summary.adds, 1);

    // Now dee is in the metaverse: HR's row 4 joins. A: that object committed; B: full sync of HR.
    let r = ea
        .sync_object("hr", &ObjectRef::Anchor("4".into()), true)
        .expect("commit hr 4");
    assert_eq!(r.link.action, "join", "{r:#?}");
    assert_eq!(r.link.rule.as_deref(), Some("hr in"));
    let title = change(&r, "title");
    assert_eq!(texts(&title.new), ["Analyst"]);
    assert_eq!(title.rule.as_deref(), Some("hr in"));
    eb.run_profile("hr", RunProfile::FullSync, &RunOptions::default(), None)
        .expect("full sync hr");
    assert_eq!(dump(&ea, true), dump(&eb, true));

    // Both export the same and end in the same target directory.
    for e in [&mut ea, &mut eb] {
        e.run_profile("tgt", RunProfile::Export, &RunOptions::default(), None)
            .expect("export");
    }
    let read = |p: &Path| std::fs::read_to_string(p.join("tgt.ldif")).expect("target");
    let (ta, tb) = (read(a.path()), read(b.path()));
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("entryUUID"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&ta), strip(&tb));
    assert!(ta.contains("uid=dee,dc=t") && ta.contains("title: Analyst"));
    assert!(!ta.contains("uid=cy,dc=t") && !ta.contains("uid=eve,dc=t"));
    assert!(ta.contains("dn: uid=anne,dc=t") && ta.contains("manager: uid=anne,dc=t"));
}

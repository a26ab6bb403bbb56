//! The quickstart path end to end: the contoso.example sample (an LDIF export of AD, read as the
//! "ad" connector) through the out-of-box AD -> Entra rules into the Graph tenant emulator.
//!
//! The expected tenant is computed from the sample's model (examples/ad-sample/model.rs) with
//! an independent reading of the template's intent (scope, exclusions, attribute mapping), and
//! compared with the emulator's content: every in-scope user, group and membership, no excluded
//! or filtered object, disabled users disabled; then the change set (create, update, rename,
//! disable, move out of scope, delete, membership change) and a quiet cycle. The last test runs
//! `dirsync quickstart` itself and checks the tenant it leaves behind.

mod sample {
    #![allow(dead_code)]
    include!("../examples/ad-sample/model.rs");
}

use dirsync::config::Config;
use dirsync::emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, EmulatorHandle, ObjectKind,
    Tenant,
};
use dirsync::engine::{CyclePolicy, Engine, RunOptions, RunRecord};
use dirsync::templates::{AdSource, AdToEntraOptions, ad_to_entra_config};
use sample::{Domain, Entry, Kind};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::path::Path;

const SAMPLE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ad-sample");

// ---------------------------------------------------------------------------------------------
// The expected tenant, from the model
// ---------------------------------------------------------------------------------------------

fn starts_ci(v: Option<&str>, prefix: &str) -> bool {
    v.is_some_and(|s| s.to_lowercase().starts_with(&prefix.to_lowercase()))
}

fn in_domain_scope(e: &Entry) -> bool {
    !sample::dn_within(&e.dn, sample::EXCLUDED_OU)
        && e.get("isCriticalSystemObject").is_none()
        && !e.dn.contains("\\0ACNF:")
}

/// Users the template sends to Entra ID.
fn synced_user(e: &Entry) -> bool {
    let sam = e.get("sAMAccountName");
    e.kind == Kind::User
        && in_domain_scope(e)
        && sam.is_some()
        && !starts_ci(sam, "AAD_")
        && !starts_ci(sam, "MSOL_")
        && !starts_ci(sam, "CAS_{")
        && sam != Some("SUPPORT_388945a0")
        && !starts_ci(e.get("mailNickname"), "SystemMailbox{")
        && !starts_ci(e.get("cn"), "SystemMailbox{")
        && !starts_ci(e.get("adminDescription"), "User_")
        && e.get("extensionAttribute15") != Some("NoSync")
}

/// Groups the template sends to Entra ID: in-scope security groups.
fn synced_group(e: &Entry) -> bool {
    e.kind == Kind::Group
        && in_domain_scope(e)
        && e.get("groupType")
            .and_then(|t| t.parse::<i64>().ok())
            .is_some_and(|t| t & 0x8000_0000 != 0)
}

fn upn_of(e: &Entry) -> String {
    match e.get("userPrincipalName") {
        Some(u) => u.trim().to_string(),
        None => format!("{}@{}", e.get("sAMAccountName").unwrap_or(""), sample::FQDN),
    }
}

/// A user as compared: the Graph properties the rules set, the manager's UPN, the anchor.
fn expected_user(
    d: &Domain,
    e: &Entry,
    user_ok: &dyn Fn(&Entry) -> bool,
) -> BTreeMap<String, Json> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
            m.insert(k.to_string(), json!(v));
        }
    };
    put("userPrincipalName", Some(&upn_of(e)));
    put(
        "displayName",
        Some(e.get("displayName").or(e.get("cn")).unwrap_or("")),
    );
    put(
        "mailNickname",
        Some(
            e.get("mailNickname")
                .or(e.get("sAMAccountName"))
                .unwrap_or(""),
        ),
    );
    put("givenName", e.get("givenName"));
    put("surname", e.get("sn"));
    put("mail", e.get("mail"));
    put("mobilePhone", e.get("mobile"));
    put("jobTitle", e.get("title"));
    put("department", e.get("department"));
    put("companyName", e.get("company"));
    put("officeLocation", e.get("physicalDeliveryOfficeName"));
    put("streetAddress", e.get("streetAddress"));
    put("city", e.get("l"));
    put("state", e.get("st"));
    put("postalCode", e.get("postalCode"));
    put("country", e.get("co").or(e.get("c")));
    put(
        "usageLocation",
        e.get("c")
            .filter(|c| c.len() == 2)
            .map(str::to_uppercase)
            .as_deref(),
    );
    put("employeeId", e.get("employeeID"));
    put("onPremisesImmutableId", Some(&e.immutable_id()));
    put("anchor", Some(&e.immutable_id()));
    let uac: i64 = e
        .get("userAccountControl")
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    m.insert("accountEnabled".into(), json!(uac & 2 == 0));
    if let Some(p) = e.get("telephoneNumber") {
        m.insert("businessPhones".into(), json!([p.trim()]));
    }
    if let Some(mgr) = e
        .get("manager")
        .and_then(|dn| d.find(dn))
        .filter(|m| user_ok(m))
    {
        m.insert("manager".into(), json!(upn_of(mgr)));
    }
    m
}

/// The expected tenant: users by UPN, groups by display name (members as `user:<UPN>` or
/// `group:<name>`).
#[derive(Debug, PartialEq)]
struct View {
    users: BTreeMap<String, BTreeMap<String, Json>>,
    groups: BTreeMap<String, BTreeMap<String, Json>>,
}

fn expected(d: &Domain) -> View {
    expected_with(d, None)
}

/// The expected tenant; with group-based filtering, only direct members of `pilot` qualify.
fn expected_with(d: &Domain, pilot: Option<&str>) -> View {
    let in_pilot = |e: &Entry| {
        pilot.is_none_or(|p| {
            d.find(p).is_some_and(|g| {
                g.values("member")
                    .iter()
                    .any(|m| sample::dn_key(m) == sample::dn_key(&e.dn))
            })
        })
    };
    let user_ok = |e: &Entry| synced_user(e) && in_pilot(e);
    let group_ok = |e: &Entry| synced_group(e) && in_pilot(e);
    let mut users = BTreeMap::new();
    for e in d.entries.iter().filter(|e| user_ok(e)) {
        users.insert(upn_of(e), expected_user(d, e, &user_ok));
    }
    let mut groups = BTreeMap::new();
    for g in d.entries.iter().filter(|e| group_ok(e)) {
        let mut m = BTreeMap::new();
        let name = g
            .get("displayName")
            .or(g.get("cn"))
            .unwrap_or("")
            .to_string();
        m.insert("displayName".into(), json!(name));
        if let Some(desc) = g.get("description") {
            m.insert("description".into(), json!(desc.trim()));
        }
        let nick = g
            .get("mailNickname")
            .or(g.get("sAMAccountName"))
            .unwrap_or("")
            .replace(' ', "");
        m.insert("mailNickname".into(), json!(nick));
        m.insert("securityEnabled".into(), json!(true));
        m.insert("mailEnabled".into(), json!(false));
        m.insert("anchor".into(), json!(g.immutable_id()));
        let mut members: Vec<String> = g
            .values("member")
            .iter()
            .filter_map(|dn| d.find(dn))
            .filter_map(|m| {
                if user_ok(m) {
                    Some(format!("user:{}", upn_of(m)))
                } else if group_ok(m) {
                    Some(format!(
                        "group:{}",
                        m.get("displayName").or(m.get("cn")).unwrap_or("")
                    ))
                } else {
                    None
                }
            })
            .collect();
        members.sort();
        m.insert("members".into(), json!(members));
        groups.insert(name, m);
    }
    View { users, groups }
}

// ---------------------------------------------------------------------------------------------
// The tenant as it is
// ---------------------------------------------------------------------------------------------

const USER_PROPS: &[&str] = &[
    "userPrincipalName",
    "displayName",
    "mailNickname",
    "givenName",
    "surname",
    "mail",
    "mobilePhone",
    "jobTitle",
    "department",
    "companyName",
    "officeLocation",
    "streetAddress",
    "city",
    "state",
    "postalCode",
    "country",
    "usageLocation",
    "employeeId",
    "onPremisesImmutableId",
    "accountEnabled",
];

fn anchor_ext() -> String {
    format!(
        "extension_{}_dirsyncAnchor",
        DEFAULT_CLIENT_ID.replace('-', "")
    )
}

fn actual(t: &Tenant) -> View {
    let live = |id: &str| t.objects.get(id).filter(|o| o.deleted_at.is_none());
    let upn = |id: &str| {
        live(id)
            .and_then(|o| o.props.get("userPrincipalName"))
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    let mut users = BTreeMap::new();
    let mut groups = BTreeMap::new();
    for o in t.objects.values().filter(|o| o.deleted_at.is_none()) {
        let mut m = BTreeMap::new();
        let anchor = o.props.get(&anchor_ext()).cloned();
        if let Some(a) = anchor.filter(|a| !a.is_null()) {
            m.insert("anchor".to_string(), a);
        }
        match o.kind {
            ObjectKind::User => {
                for p in USER_PROPS {
                    if let Some(v) = o.props.get(*p).filter(|v| !v.is_null()) {
                        m.insert(p.to_string(), v.clone());
                    }
                }
                if let Some(b) = o
                    .props
                    .get("businessPhones")
                    .filter(|b| b.as_array().is_some_and(|a| !a.is_empty()))
                {
                    m.insert("businessPhones".into(), b.clone());
                }
                if let Some(mgr) = o.manager.as_deref().and_then(upn) {
                    m.insert("manager".into(), json!(mgr));
                }
                users.insert(upn(&o.id).unwrap_or_default(), m);
            }
            ObjectKind::Group => {
                for p in [
                    "displayName",
                    "description",
                    "mailNickname",
                    "securityEnabled",
                    "mailEnabled",
                ] {
                    if let Some(v) = o.props.get(p).filter(|v| !v.is_null()) {
                        m.insert(p.to_string(), v.clone());
                    }
                }
                let mut members: Vec<String> = o
                    .members
                    .iter()
                    .filter_map(|id| live(id))
                    .map(|mo| match mo.kind {
                        ObjectKind::User => format!("user:{}", upn(&mo.id).unwrap_or_default()),
                        _ => format!(
                            "group:{}",
                            mo.props
                                .get("displayName")
                                .and_then(Json::as_str)
                                .unwrap_or("")
                        ),
                    })
                    .collect();
                members.sort();
                m.insert("members".into(), json!(members));
                let name = o
                    .props
                    .get("displayName")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string();
                groups.insert(name, m);
            }
            _ => {}
        }
    }
    View { users, groups }
}

/// Soft-deleted objects' anchors.
fn soft_deleted(t: &Tenant) -> Vec<String> {
    let mut v: Vec<String> = t
        .deleted
        .values()
        .filter_map(|o| {
            o.props
                .get(&anchor_ext())
                .and_then(Json::as_str)
                .map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

/// Equality with a readable report of the first differences.
fn assert_view(actual: &View, want: &View, when: &str) {
    if actual == want {
        return;
    }
    let mut report = Vec::new();
    for (what, a, w) in [
        ("user", &actual.users, &want.users),
        ("group", &actual.groups, &want.groups),
    ] {
        for (k, wv) in w {
            match a.get(k) {
                None => report.push(format!("missing {what} {k}")),
                Some(av) if av != wv => {
                    for (p, x) in wv {
                        if av.get(p) != Some(x) {
                            report.push(format!("{what} {k}: {p} is {:?}, want {x}", av.get(p)));
                        }
                    }
                    for (p, x) in av {
                        if !wv.contains_key(p) {
                            report.push(format!("{what} {k}: unexpected {p} = {x}"));
                        }
                    }
                }
                _ => {}
            }
        }
        for k in a.keys().filter(|k| !w.contains_key(*k)) {
            report.push(format!("unexpected {what} {k}"));
        }
    }
    let n = report.len();
    report.truncate(25);
    panic!(
        "{when}: the tenant differs from the expectation ({n} differences):\n{}",
        report.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

struct Env {
    rt: tokio::runtime::Runtime,
    h: Option<EmulatorHandle>,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let h = rt
            .block_on(Emulator::start(EmulatorConfig::default()))
            .expect("emulator");
        Env {
            rt,
            h: Some(h),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn h(&self) -> &EmulatorHandle {
        self.h.as_ref().expect("handle")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(h) = self.h.take() {
            let _ = self.rt.block_on(h.shutdown());
        }
    }
}

fn exported(runs: &[RunRecord]) -> u64 {
    runs.iter()
        .map(|r| r.counters.export_adds + r.counters.export_updates + r.counters.export_deletes)
        .sum()
}

fn cycle(eng: &mut Engine, policy: CyclePolicy) -> Vec<RunRecord> {
    let runs = eng
        .cycle(policy, &RunOptions::default())
        .unwrap_or_else(|e| panic!("cycle: {e}"));
    for r in &runs {
        assert_eq!(r.result, "success", "{r:#?}");
        assert!(r.errors.is_empty(), "{:#?}", r.errors);
    }
    runs
}

#[test]
fn committed_sample_matches_its_generator() {
    for (name, text) in sample::files() {
        let on_disk = std::fs::read_to_string(Path::new(SAMPLE_DIR).join(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            on_disk == text,
            "{name} differs from examples/ad-sample/model.rs: run `cargo run --example ad-sample`"
        );
    }
    let d = sample::domain();
    let users = d.entries.iter().filter(|e| e.kind == Kind::User).count();
    assert!(users >= 500, "{users} users");
}

/// Writes the sample and a template configuration (the "ad" connector reads the LDIF export)
/// into the environment's folder and opens the engine.
fn open_sample(env: &Env, pilot_group_dn: Option<&str>) -> Engine {
    let d = env.dir.path();
    std::fs::copy(
        Path::new(SAMPLE_DIR).join("contoso.ldif"),
        d.join("contoso.ldif"),
    )
    .expect("copy sample");
    std::fs::create_dir_all(d.join("changes")).expect("changes dir");
    std::fs::write(d.join("graph-secret.txt"), DEFAULT_CLIENT_SECRET).expect("secret");
    let opts = AdToEntraOptions {
        domain_fqdn: sample::FQDN.into(),
        domain_netbios: sample::NETBIOS.into(),
        source: AdSource::LdifExport {
            path: "contoso.ldif".into(),
            changes_dir: Some("changes".into()),
        },
        base_dn: sample::BASE.into(),
        exclude_ous: vec![sample::EXCLUDED_OU.into()],
        tenant_id: env.h().tenant_id().to_string(),
        client_id: DEFAULT_CLIENT_ID.into(),
        client_secret_env: None,
        client_secret_file: Some("graph-secret.txt".into()),
        authority: Some(env.h().base_url().to_string()),
        graph_url: Some(env.h().graph_url()),
        pilot_group_dn: pilot_group_dn.map(str::to_string),
        ..AdToEntraOptions::default()
    };
    std::fs::write(d.join("dirsync.toml"), ad_to_entra_config(&opts)).expect("config");
    Engine::open(Config::load(&d.join("dirsync.toml")).expect("config loads")).expect("open")
}

#[test]
fn sample_domain_through_the_template_into_the_emulator() {
    let env = Env::new();
    let d = env.dir.path();
    let mut eng = open_sample(&env, None);

    let t0 = std::time::Instant::now();
    cycle(&mut eng, CyclePolicy::Initial);
    // The confirming delta finishes references to objects created in the first export.
    cycle(&mut eng, CyclePolicy::Delta);
    eprintln!(
        "initial + confirming cycle: {:?}, emulator {:?}",
        t0.elapsed(),
        env.h().stats()
    );
    let mut model = sample::domain();
    let want = expected(&model);
    assert!(want.users.len() > 500, "{}", want.users.len());
    let memberships: usize = want
        .groups
        .values()
        .map(|g| g["members"].as_array().map_or(0, Vec::len))
        .sum();
    eprintln!(
        "expected tenant: {} users ({} disabled), {} groups, {} memberships",
        want.users.len(),
        want.users
            .values()
            .filter(|u| u["accountEnabled"] == json!(false))
            .count(),
        want.groups.len(),
        memberships
    );
    assert_view(&actual(&env.h().tenant()), &want, "after the initial cycle");
    // Out of scope: the excluded OU, the built-in exclusions, NoSync (cloudFiltered), contacts,
    // distribution groups. They are in the view's complement, checked above; spot-check a few.
    let t = env.h().tenant();
    let view = actual(&t);
    for upn in [
        "administrator@contoso.example",
        "aad_7c3e91a0b5d2@contoso.example",
    ] {
        assert!(!view.users.contains_key(upn), "{upn}");
    }
    assert!(!view.groups.contains_key("DL-Partners"));
    assert!(!view.groups.contains_key("SG-Lab"));
    assert!(
        view.users
            .values()
            .any(|u| u["accountEnabled"] == json!(false))
    );
    assert!(soft_deleted(&t).is_empty());

    // A quiet cycle exports nothing.
    let runs = cycle(&mut eng, CyclePolicy::Delta);
    assert_eq!(exported(&runs), 0, "{runs:#?}");

    // The change set, then a delta cycle and the confirming one.
    let files = sample::change_set(&model);
    for f in &files {
        std::fs::copy(
            Path::new(SAMPLE_DIR).join("changes").join(f.name),
            d.join("changes").join(f.name),
        )
        .expect("copy change file");
        sample::apply(&mut model, &f.changes);
    }
    let before = sample::domain();
    let runs = cycle(&mut eng, CyclePolicy::Delta);
    assert!(exported(&runs) > 0);
    cycle(&mut eng, CyclePolicy::Delta);
    let want2 = expected(&model);
    let t = env.h().tenant();
    assert_view(&actual(&t), &want2, "after the change set");
    // The users that left (moved into the excluded OU, deleted) are soft-deleted, not gone.
    let gone: Vec<String> = before
        .entries
        .iter()
        .filter(|e| synced_user(e))
        .filter(|e| {
            !model
                .entries
                .iter()
                .any(|m| m.guid == e.guid && synced_user(m))
        })
        .map(Entry::immutable_id)
        .collect();
    assert_eq!(gone.len(), 2, "one moved out of scope, one deleted");
    let mut gone_sorted = gone.clone();
    gone_sorted.sort();
    assert_eq!(soft_deleted(&t), gone_sorted);
    // The expectation really changed: created, updated, renamed, disabled, membership.
    assert!(want2.users.contains_key("nina.odegard@contoso.example"));
    assert_ne!(want.users.len(), want2.users.len());
    let changed = |prop: &str| {
        want.users
            .iter()
            .filter(|(k, u)| {
                want2
                    .users
                    .get(*k)
                    .is_some_and(|u2| u2.get(prop) != u.get(prop))
            })
            .count()
    };
    assert_eq!(changed("accountEnabled"), 1, "one account disabled");
    assert_eq!(changed("jobTitle"), 1, "one promotion");
    assert_eq!(changed("displayName"), 1, "one rename");
    assert_ne!(
        want.groups["SG-Platform"]["members"],
        want2.groups["SG-Platform"]["members"]
    );
    let runs = cycle(&mut eng, CyclePolicy::Delta);
    assert_eq!(exported(&runs), 0, "quiet after the change set: {runs:#?}");

    // Restore: the deleted user comes back from the AD Recycle Bin (same objectGUID); the
    // soft-deleted cloud user is restored (same object id), not created again.
    let restore = sample::restore_set(&before);
    let anchor = restore
        .changes
        .iter()
        .find_map(|c| match c {
            sample::Change::Add(e) => Some(e.immutable_id()),
            _ => None,
        })
        .expect("restored entry");
    let anchor_of = |o: &dirsync::emulator::DirObject| {
        o.props
            .get(&anchor_ext())
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    let cloud_id = t
        .deleted
        .values()
        .find(|o| anchor_of(o).as_deref() == Some(anchor.as_str()))
        .map(|o| o.id.clone())
        .expect("the deleted user is soft-deleted");
    std::fs::copy(
        Path::new(SAMPLE_DIR).join("restore").join(restore.name),
        d.join("changes").join(restore.name),
    )
    .expect("copy restore file");
    sample::apply(&mut model, &restore.changes);
    cycle(&mut eng, CyclePolicy::Delta);
    cycle(&mut eng, CyclePolicy::Delta);
    let t = env.h().tenant();
    assert_view(&actual(&t), &expected(&model), "after the restore");
    let restored = t
        .objects
        .get(&cloud_id)
        .expect("same cloud object restored");
    assert_eq!(anchor_of(restored).as_deref(), Some(anchor.as_str()));
    assert_eq!(
        t.deleted.len(),
        1,
        "only the user moved out of scope stays deleted"
    );
    let runs = cycle(&mut eng, CyclePolicy::Delta);
    assert_eq!(exported(&runs), 0, "quiet after the restore: {runs:#?}");
}

/// `dirsync quickstart` itself: it runs offline in seconds, prints the plan and the run results,
/// and leaves the tenant (saved by the emulator) exactly as the rules and the change set say.
#[test]
fn quickstart_command_leaves_the_expected_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let qs = dir.path().join("qs");
    let t0 = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("quickstart")
        .arg("--dir")
        .arg(&qs)
        .output()
        .expect("run dirsync");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("dirsync quickstart: {:?}", t0.elapsed());
    for needle in [
        "== 1. initial cycle, dry run",
        "Pending exports: ",
        "orgContact is read-only",
        "== 5. delta cycle",
        "confirming cycle exported 0 adds, 0 updates, 0 deletes",
        "connector aad",
    ] {
        assert!(stdout.contains(needle), "missing '{needle}' in:\n{stdout}");
    }
    // The quickstart refuses to wipe a folder it did not create.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).expect("dir");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(["quickstart", "--dir"])
        .arg(&other)
        .output()
        .expect("run dirsync");
    assert!(!refused.status.success());

    // Load the saved tenant into an emulator and compare.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let copy = dir.path().join("tenant-copy.json");
    std::fs::copy(qs.join("tenant.json"), &copy).expect("tenant.json saved");
    let h = rt
        .block_on(Emulator::start(
            EmulatorConfig::default().with_state_file(&copy),
        ))
        .expect("emulator");
    let original = sample::domain();
    let mut model = original.clone();
    for f in sample::change_set(&original) {
        sample::apply(&mut model, &f.changes);
    }
    sample::apply(&mut model, &sample::restore_set(&original).changes);
    let t = h.tenant();
    assert_view(&actual(&t), &expected(&model), "after dirsync quickstart");
    assert_eq!(t.deleted.len(), 1);
    rt.block_on(h.shutdown()).expect("shutdown");
}

/// `dirsync init --template ad-to-entra` writes a configuration that loads, with the options
/// given and no secret in it; `dirsync init` alone keeps the LDIF/CSV sample.
#[test]
fn init_writes_loadable_configurations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("prod");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args([
            "init",
            "--template",
            "ad-to-entra",
            "--domain",
            "corp.fabrikam.com",
            "--exclude-ou",
            "OU=Disabled Users,DC=corp,DC=fabrikam,DC=com",
            "--pilot-group",
            "CN=Pilot,OU=Groups,DC=corp,DC=fabrikam,DC=com",
            "--writeback",
            "--dir",
        ])
        .arg(&d)
        .output()
        .expect("run dirsync");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("DIRSYNC_GRAPH_SECRET"), "{stdout}");
    let cfg = Config::load(&d.join("dirsync.toml")).expect("loads");
    dirsync::rules::RuleSet::compile(&cfg).expect("rules compile");
    assert_eq!(cfg.parameters["Domain.FQDN"], "corp.fabrikam.com");
    assert_eq!(cfg.parameters["Domain.Netbios"], "CORP");
    let ad = cfg.connector("ad").expect("ad");
    assert_eq!(ad.kind, "ad");
    assert_eq!(
        ad.settings["partitions"][0]["base"],
        "DC=corp,DC=fabrikam,DC=com"
    );
    assert_eq!(
        ad.settings["partitions"][0]["exclude"][0],
        "OU=Disabled Users,DC=corp,DC=fabrikam,DC=com"
    );
    let text = std::fs::read_to_string(d.join("dirsync.toml")).expect("read");
    assert!(text.contains("ISMEMBEROF"));
    assert!(
        !text.to_lowercase().contains("secret = "),
        "no inline secret"
    );
    // A second init refuses to overwrite.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(["init", "--template", "ad-to-entra", "--dir"])
        .arg(&d)
        .output()
        .expect("run dirsync");
    assert!(!again.status.success());
    // Without a template: the offline LDIF/CSV sample.
    let sample = dir.path().join("sample.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("--config")
        .arg(&sample)
        .arg("init")
        .output()
        .expect("run dirsync");
    assert!(out.status.success());
    let cfg = Config::load(&sample).expect("sample loads");
    assert!(cfg.connector("hr").is_some());
}

/// Group-based filtering: with a pilot group, only its direct members reach the tenant.
#[test]
fn pilot_group_limits_the_scope_to_its_members() {
    let env = Env::new();
    let pilot = format!("CN=SG-Platform,OU=Groups,OU=Corp,{}", sample::BASE);
    let mut eng = open_sample(&env, Some(&pilot));
    cycle(&mut eng, CyclePolicy::Initial);
    cycle(&mut eng, CyclePolicy::Delta);
    let model = sample::domain();
    let want = expected_with(&model, Some(&pilot));
    assert!(
        want.users.len() > 50 && want.users.len() < 100,
        "{}",
        want.users.len()
    );
    assert!(want.groups.is_empty());
    assert_view(&actual(&env.h().tenant()), &want, "pilot");
}

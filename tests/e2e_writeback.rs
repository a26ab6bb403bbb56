//! Writeback end to end: a real Samba AD DC and the Graph tenant emulator, with the
//! `ad-to-entra` template's rules and its writeback rules.
//!
//! Cloud security groups created in the tenant appear in AD in the writeback OU with their
//! members (nesting kept) and are never re-imported as AD-sourced; mS-DS-ConsistencyGuid is
//! written for users without one; msDS-ExternalDirectoryObjectId = User_<objectId>; passwords set
//! through `Engine::set_password` and `dirsync password set` let the user bind to AD.

mod support;

use dirsync::config::Config;
use dirsync::connectors::ldap::ConnectionSettings;
use dirsync::connectors::ldap::connection::{LdapClient, SearchMsg};
use dirsync::emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, Emulator, EmulatorConfig,
    EmulatorHandle, ObjectKind,
};
use dirsync::engine::{CyclePolicy, Engine, EngineError, RunOptions, RunRecord, WritebackError};
use dirsync::templates::{AdSource, AdToEntraOptions, ad_to_entra_config};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use support::samba::{ADMIN, ADMIN_PW, BASE, DC_NAME, Samba};

/// Adds `msDS-ExternalDirectoryObjectId` (Windows Server 2016 schema, as published in Samba's
/// `AD_DS_Attributes__Windows_Server_2016.ldf`) to the DC's 2012 R2 schema through the local
/// database, as an Exchange or 2016 schema update would. Idempotent.
const SCHEMA_2016_ATTR: &str = r#"
import sys
import ldb
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB
conf, url, base = sys.argv[1], sys.argv[2], sys.argv[3]
lp = LoadParm()
lp.load(conf)
lp.set("dsdb:schema update allowed", "true")
db = SamDB(url=url, session_info=system_session(), lp=lp)
schema = "CN=Schema,CN=Configuration," + base
res = db.search(base=schema, scope=ldb.SCOPE_ONELEVEL,
                expression="(lDAPDisplayName=msDS-ExternalDirectoryObjectId)", attrs=["dn"])
if len(res) == 0:
    db.add_ldif("""dn: CN=ms-DS-External-Directory-Object-Id,%s
objectClass: top
objectClass: attributeSchema
cn: ms-DS-External-Directory-Object-Id
attributeID: 1.2.840.113556.1.4.2310
attributeSyntax: 2.5.5.12
isSingleValued: TRUE
rangeUpper: 256
showInAdvancedViewOnly: FALSE
adminDisplayName: ms-DS-External-Directory-Object-Id
adminDescription: ms-DS-External-Directory-Object-Id
oMSyntax: 64
searchFlags: 9
lDAPDisplayName: msDS-ExternalDirectoryObjectId
schemaIDGUID:: kL8pva1m4UCIexDfBwQZpg==
attributeSecurityGUID:: hri1d0qU0RGuvQAA+ANnwQ==
systemOnly: FALSE
systemFlags: 16
isMemberOfPartialAttributeSet: TRUE
""" % schema)
    db.modify_ldif("""dn: CN=Mail-Recipient,%s
changetype: modify
add: mayContain
mayContain: msDS-ExternalDirectoryObjectId
""" % schema)
    print("schema: msDS-ExternalDirectoryObjectId added")
"#;

fn extend_schema(dc: &Samba) {
    let (ok, output) = dc.run_local_python("schema_2016_attr.py", SCHEMA_2016_ATTR, &[BASE]);
    assert!(ok, "schema extension failed: {output}");
    print!("{output}");
}

/// An LDAP client bound as `dn` (plain LDAP on 389).
fn client(dn: &str, pw: &str) -> LdapClient {
    let mut cs = ConnectionSettings::new("ldap://127.0.0.1:389");
    cs.bind_dn = Some(dn.to_string());
    cs.connect_attempts = 1;
    LdapClient::with_password(cs, Some(pw.into())).expect("client")
}

fn admin() -> LdapClient {
    client(ADMIN, ADMIN_PW)
}

/// Reads attributes of one entry.
fn read(dn: &str, attrs: &[&str]) -> dirsync::connectors::ldap::connection::RawEntry {
    let attrs: Vec<String> = attrs.iter().map(|s| s.to_string()).collect();
    admin()
        .read_entry(dn, &attrs, Vec::new())
        .expect("read")
        .unwrap_or_else(|| panic!("{dn} not found"))
}

/// The groups below `base`: (DN, entry).
fn groups_below(base: &str) -> Vec<dirsync::connectors::ldap::connection::RawEntry> {
    let mut out = Vec::new();
    let attrs: Vec<String> = [
        "cn",
        "member",
        "groupType",
        "adminDescription",
        "sAMAccountName",
        "displayName",
        "description",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    admin()
        .search(
            base,
            ldap3::Scope::Subtree,
            "(objectClass=group)",
            &attrs,
            Vec::new(),
            &mut |m| {
                if let SearchMsg::Entry(e) = m {
                    out.push(e);
                }
                Ok(())
            },
        )
        .expect("search");
    out
}

fn texts(e: &dirsync::connectors::ldap::connection::RawEntry, name: &str) -> BTreeSet<String> {
    e.values(name)
        .map(|v| {
            v.iter()
                .map(|b| String::from_utf8_lossy(b).to_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

struct Cloud {
    rt: tokio::runtime::Runtime,
    h: Option<EmulatorHandle>,
}

impl Cloud {
    fn start() -> Cloud {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let h = rt
            .block_on(Emulator::start(EmulatorConfig::default()))
            .expect("emulator");
        Cloud { rt, h: Some(h) }
    }
    fn h(&self) -> &EmulatorHandle {
        self.h.as_ref().expect("handle")
    }
    fn user_id(&self, upn: &str) -> String {
        let t = self.h().tenant();
        t.objects
            .values()
            .find(|o| {
                o.kind == ObjectKind::User
                    && o.props
                        .get("userPrincipalName")
                        .and_then(|v| v.as_str())
                        .is_some_and(|u| u.eq_ignore_ascii_case(upn))
            })
            .map(|o| o.id.clone())
            .unwrap_or_else(|| panic!("no cloud user {upn}"))
    }
    fn group_names(&self) -> Vec<String> {
        let t = self.h().tenant();
        let mut v: Vec<String> = t
            .objects
            .values()
            .filter(|o| o.kind == ObjectKind::Group)
            .map(|o| {
                o.props
                    .get("displayName")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        if let Some(h) = self.h.take() {
            let _ = self.rt.block_on(h.shutdown());
        }
    }
}

fn all_ok(runs: &[RunRecord]) {
    assert!(
        runs.iter().all(|r| r.result == "success"),
        "{:#?}",
        runs.iter()
            .filter(|r| r.result != "success")
            .collect::<Vec<_>>()
    );
}

fn exported(runs: &[RunRecord]) -> u64 {
    runs.iter()
        .map(|r| r.counters.export_adds + r.counters.export_updates + r.counters.export_deletes)
        .sum()
}

fn open(dir: &Path) -> Engine {
    Engine::open(Config::load(&dir.join("dirsync.toml")).expect("config")).expect("engine")
}

const USER_PW: &str = "Wb-Initial-Pw-1!";

#[test]
fn writeback_groups_anchors_exchange_attributes_and_passwords() {
    if !support::require_root(
        "samba",
        "writeback_groups_anchors_exchange_attributes_and_passwords",
    ) {
        return;
    }
    let dc = Samba::shared();
    let ou = dc.fresh_ou("Writeback");
    let people = format!("OU=People,{ou}");
    let wb_ou = format!("OU=Cloud Groups,{ou}");
    let preset_bytes: Vec<u8> = vec![
        0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    let mut ldif = format!(
        "dn: {people}\nobjectClass: organizationalUnit\n\ndn: {wb_ou}\nobjectClass: organizationalUnit\n\n"
    );
    for (cn, sam) in [("wb ann", "wbann"), ("wb bob", "wbbob"), ("wb cy", "wbcy")] {
        ldif.push_str(&format!(
            "dn: CN={cn},{people}\nobjectClass: user\nsAMAccountName: {sam}\nuserPrincipalName: {sam}@corp.example.com\nuserAccountControl: 544\nmail: {sam}@corp.example.com\nproxyAddresses: SMTP:{sam}@corp.example.com\n\n"
        ));
    }
    // A user whose ConsistencyGuid is set already (moved from another forest): left alone.
    ldif.push_str(&format!(
        "dn: CN=wb dee,{people}\nobjectClass: user\nsAMAccountName: wbdee\nuserPrincipalName: wbdee@corp.example.com\nuserAccountControl: 544\nmS-DS-ConsistencyGuid:: {}\n\n",
        base64_encode(&preset_bytes)
    ));
    // An AD security group (synced to the cloud, never written back).
    ldif.push_str(&format!(
        "dn: CN=wb staff,{ou}\nobjectClass: group\nsAMAccountName: wbstaff\nmember: CN=wb ann,{people}\n\n"
    ));
    dc.add(&ldif);

    let cloud = Cloud::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    std::fs::write(d.join("admin.pw"), ADMIN_PW).expect("pw");
    std::fs::write(d.join("secret.txt"), DEFAULT_CLIENT_SECRET).expect("secret");
    let opts = AdToEntraOptions {
        domain_fqdn: "corp.example.com".into(),
        domain_netbios: "CORP".into(),
        source: AdSource::Ldap {
            url: "ldaps://127.0.0.1:636".into(),
            bind_dn: ADMIN.into(),
            bind_password_env: None,
            bind_password_file: Some("admin.pw".into()),
            ca_file: Some(dc.ca_file()),
            tls_server_name: Some(DC_NAME.into()),
        },
        base_dn: BASE.into(),
        include_ous: vec![ou.clone()],
        exclude_ous: Vec::new(),
        pilot_group_dn: None,
        tenant_id: DEFAULT_TENANT_ID.into(),
        client_id: DEFAULT_CLIENT_ID.into(),
        client_secret_env: None,
        client_secret_file: Some("secret.txt".into()),
        authority: Some(cloud.h().base_url().to_string()),
        graph_url: Some(cloud.h().graph_url()),
        with_writeback: true,
        writeback_ou: Some(wb_ou.clone()),
        state_path: "state.db".into(),
        deletion_threshold_count: 500,
    };
    std::fs::write(d.join("dirsync.toml"), ad_to_entra_config(&opts)).expect("config");
    // Samba provisions the Windows Server 2012 R2 schema: `dirsync check-rules` names the
    // Exchange hybrid attribute it lacks (the admin disables that rule, or extends the schema).
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_dirsync"))
            .arg("--config")
            .arg(d.join("dirsync.toml"))
            .arg("check-rules")
            .output()
            .expect("cli");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        text
    };
    let before = check();
    println!("check-rules on the 2012 R2 schema:\n{before}");
    assert!(
        before.lines().any(
            |l| l.contains("warning rule 'Out to AD - User Exchange Hybrid'")
                && l.contains("'msDS-ExternalDirectoryObjectId' is not in the schema")
        ),
        "{before}"
    );
    extend_schema(dc);
    let after = check();
    assert!(!after.contains("msDS-ExternalDirectoryObjectId"), "{after}");
    let run = RunOptions::default();
    let mut eng = open(d);

    // Initial cycle: AD users and the AD group reach the tenant; the confirming cycle joins
    // them (cloudId) and writes ConsistencyGuid and msDS-ExternalDirectoryObjectId back.
    all_ok(&eng.cycle(CyclePolicy::Initial, &run).expect("initial"));
    all_ok(&eng.cycle(CyclePolicy::Delta, &run).expect("delta 1"));
    all_ok(&eng.cycle(CyclePolicy::Delta, &run).expect("delta 2"));
    assert_eq!(cloud.group_names(), vec!["wb staff".to_string()]);
    let ids: Vec<(String, String)> = ["wbann", "wbbob", "wbcy", "wbdee"]
        .iter()
        .map(|s| {
            (
                s.to_string(),
                cloud.user_id(&format!("{s}@corp.example.com")),
            )
        })
        .collect();
    for (sam, id) in &ids {
        let cn = format!("wb {}", &sam[2..]);
        let e = read(
            &format!("CN={cn},{people}"),
            &[
                "objectGUID",
                "mS-DS-ConsistencyGuid",
                "msDS-ExternalDirectoryObjectId",
            ],
        );
        let guid = e.values("objectGUID").and_then(|v| v.first()).cloned();
        let cg = e
            .values("mS-DS-ConsistencyGuid")
            .and_then(|v| v.first())
            .cloned();
        if sam == "wbdee" {
            assert_eq!(cg.as_deref(), Some(&preset_bytes[..]), "{sam}: preset kept");
        } else {
            assert!(guid.is_some());
            assert_eq!(cg, guid, "{sam}: ConsistencyGuid = objectGUID bytes");
        }
        assert_eq!(
            e.first_text("msDS-ExternalDirectoryObjectId"),
            Some(format!("User_{id}")),
            "{sam}"
        );
    }
    assert!(
        groups_below(&wb_ou).is_empty(),
        "nothing is written back before a cloud group exists"
    );

    // Cloud groups: "Cloud Team" (ann, bob) and "Cloud Outer" (Cloud Team, cy) created in the
    // tenant, plus a Microsoft 365 group that is not security-enabled (not written back).
    let h = cloud.h();
    let team = h
        .seed(
            ObjectKind::Group,
            json!({"displayName": "Cloud Team", "mailNickname": "cloudteam", "securityEnabled": true,
                   "mailEnabled": false, "description": "made in the cloud"}),
        )
        .expect("team");
    let outer = h
        .seed(
            ObjectKind::Group,
            json!({"displayName": "Cloud Outer", "mailNickname": "cloudouter", "securityEnabled": true,
                   "mailEnabled": false}),
        )
        .expect("outer");
    h.seed(
        ObjectKind::Group,
        json!({"displayName": "Cloud M365", "mailNickname": "cloudm365", "securityEnabled": false,
               "mailEnabled": true, "groupTypes": ["Unified"]}),
    )
    .expect("m365");
    let id_of = |sam: &str| {
        ids.iter()
            .find(|(s, _)| s == sam)
            .map(|(_, i)| i.clone())
            .unwrap_or_default()
    };
    h.seed_member(&team, &id_of("wbann")).expect("member");
    h.seed_member(&team, &id_of("wbbob")).expect("member");
    h.seed_member(&outer, &team).expect("nested");
    h.seed_member(&outer, &id_of("wbcy")).expect("member");

    let t = std::time::Instant::now();
    let runs = eng.writeback(&run).expect("writeback");
    println!(
        "writeback run (import+sync aad, export ad) in {:?}: {:?}",
        t.elapsed(),
        runs.iter()
            .map(|r| (r.profile.as_str(), r.counters.export_adds))
            .collect::<Vec<_>>()
    );
    all_ok(&runs);
    assert!(
        runs.iter()
            .all(|r| r.connector.as_deref() == Some("aad") || r.profile == "Export"),
        "writeback imports and syncs the cloud connector and exports AD only: {runs:#?}"
    );
    assert_eq!(
        runs.iter().map(|r| r.counters.export_adds).sum::<u64>(),
        2,
        "{runs:#?}"
    );
    let history = eng.history(20).expect("history");
    assert!(
        history
            .iter()
            .any(|r| r.profile == "Writeback" && r.parent_id.is_none())
    );

    let team_dn = format!("CN=Cloud Team_{},{wb_ou}", &team[team.len() - 12..]);
    let outer_dn = format!("CN=Cloud Outer_{},{wb_ou}", &outer[outer.len() - 12..]);
    let check_groups = || {
        let groups = groups_below(&wb_ou);
        let dns: BTreeSet<String> = groups.iter().map(|g| g.dn.to_lowercase()).collect();
        assert_eq!(
            dns,
            [team_dn.to_lowercase(), outer_dn.to_lowercase()]
                .into_iter()
                .collect(),
            "only the security groups are written back"
        );
        let g = |dn: &str| {
            groups
                .iter()
                .find(|g| g.dn.eq_ignore_ascii_case(dn))
                .cloned()
                .expect("group")
        };
        let tg = g(&team_dn);
        assert_eq!(
            texts(&tg, "member"),
            [
                format!("CN=wb ann,{people}").to_lowercase(),
                format!("CN=wb bob,{people}").to_lowercase()
            ]
            .into_iter()
            .collect()
        );
        assert_eq!(tg.first_text("groupType").as_deref(), Some("-2147483640"));
        assert_eq!(
            tg.first_text("adminDescription"),
            Some(format!("Group_{team}"))
        );
        assert_eq!(
            tg.first_text("description").as_deref(),
            Some("made in the cloud")
        );
        let og = g(&outer_dn);
        assert_eq!(
            texts(&og, "member"),
            [
                team_dn.to_lowercase(),
                format!("CN=wb cy,{people}").to_lowercase()
            ]
            .into_iter()
            .collect(),
            "nesting kept"
        );
    };
    check_groups();

    // The next cycles import the written-back groups into the AD connector space (confirming
    // the export) but never as AD-sourced: no second cloud group appears, nothing more moves.
    all_ok(&eng.cycle(CyclePolicy::Delta, &run).expect("delta 3"));
    let quiet = eng.cycle(CyclePolicy::Delta, &run).expect("quiet");
    all_ok(&quiet);
    assert_eq!(exported(&quiet), 0, "{quiet:#?}");
    let full = eng.cycle(CyclePolicy::Initial, &run).expect("full");
    all_ok(&full);
    assert_eq!(exported(&full), 0, "{full:#?}");
    assert_eq!(
        cloud.group_names(),
        vec![
            "Cloud M365".to_string(),
            "Cloud Outer".to_string(),
            "Cloud Team".to_string(),
            "wb staff".to_string()
        ]
    );
    check_groups();
    let ad_cs = eng.cs_objects("ad", Some(&team_dn), None).expect("cs");
    assert_eq!(
        ad_cs.len(),
        1,
        "the written-back group is in the AD connector space"
    );
    assert!(!ad_cs[0].placeholder && ad_cs[0].unconfirmed.is_none());

    // A membership change in the cloud flows to AD, and so does the X500 address Exchange
    // Online gives ann's mailbox (her own addresses stay).
    h.seed_member(&team, &id_of("wbcy")).expect("member");
    let x500 = "x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=wbann-1";
    h.seed_update(
        ObjectKind::User,
        &id_of("wbann"),
        json!({"proxyAddresses": ["SMTP:wbann@corp.example.com", x500]}),
    )
    .expect("proxy addresses");
    all_ok(&eng.writeback(&run).expect("writeback 2"));
    let tg = groups_below(&wb_ou)
        .into_iter()
        .find(|g| g.dn.eq_ignore_ascii_case(&team_dn))
        .expect("team");
    assert!(texts(&tg, "member").contains(&format!("CN=wb cy,{people}").to_lowercase()));
    let ann = read(&format!("CN=wb ann,{people}"), &["proxyAddresses"]);
    assert_eq!(
        texts(&ann, "proxyAddresses"),
        [
            "SMTP:wbann@corp.example.com".to_lowercase(),
            x500.to_lowercase()
        ]
        .into_iter()
        .collect()
    );
    let bob = read(&format!("CN=wb bob,{people}"), &["proxyAddresses"]);
    assert_eq!(
        texts(&bob, "proxyAddresses"),
        ["smtp:wbbob@corp.example.com".to_string()]
            .into_iter()
            .collect()
    );
    all_ok(&eng.cycle(CyclePolicy::Delta, &run).expect("delta 4"));
    let quiet = eng.cycle(CyclePolicy::Delta, &run).expect("quiet 2");
    assert_eq!(exported(&quiet), 0, "{quiet:#?}");

    // A cloud rename renames the AD group; its members and its membership in nothing else
    // change, and the next cycles are quiet.
    h.seed_update(
        ObjectKind::Group,
        &outer,
        json!({"displayName": "Cloud Outer Renamed"}),
    )
    .expect("rename");
    let runs = eng.writeback(&run).expect("writeback rename");
    all_ok(&runs);
    assert_eq!(
        runs.iter().map(|r| r.counters.export_renames).sum::<u64>(),
        1,
        "{runs:#?}"
    );
    let renamed_dn = format!(
        "CN=Cloud Outer Renamed_{},{wb_ou}",
        &outer[outer.len() - 12..]
    );
    let groups = groups_below(&wb_ou);
    assert!(!groups.iter().any(|g| g.dn.eq_ignore_ascii_case(&outer_dn)));
    let og = groups
        .iter()
        .find(|g| g.dn.eq_ignore_ascii_case(&renamed_dn))
        .expect("renamed group");
    assert_eq!(
        texts(og, "member"),
        [
            team_dn.to_lowercase(),
            format!("CN=wb cy,{people}").to_lowercase()
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        og.first_text("displayName").as_deref(),
        Some("Cloud Outer Renamed")
    );
    all_ok(&eng.cycle(CyclePolicy::Delta, &run).expect("delta 5"));
    let quiet = eng.cycle(CyclePolicy::Delta, &run).expect("quiet 3");
    assert_eq!(exported(&quiet), 0, "{quiet:#?}");

    // Passwords: by UPN, then by metaverse id with "must change".
    let ann_dn = format!("CN=wb ann,{people}");
    let pw1 = "Wb-Ann-New-Pw-1!";
    let r = eng
        .set_password("wbann@corp.example.com", pw1, false)
        .expect("set password");
    assert!(r.dn.eq_ignore_ascii_case(&ann_dn), "{r:?}");
    assert_eq!(r.connector, "ad");
    client(&ann_dn, pw1)
        .conn()
        .expect("bind with the new password");
    assert!(client(&ann_dn, USER_PW).conn().is_err());
    let mv = r.mv_id.expect("joined");
    let pw2 = "Wb-Ann-New-Pw-2!";
    let pw2b = "Wb-Ann-New-Pw-2b!";
    eng.set_password(&mv.to_string(), pw2, true)
        .expect("set password by MV id");
    assert_eq!(
        read(&ann_dn, &["pwdLastSet"])
            .first_text("pwdLastSet")
            .as_deref(),
        Some("0")
    );
    // By the DN of the cloud user (another connector's DN of the same identity).
    let ann_cloud = eng
        .cs_objects("aad", None, Some(&id_of("wbann")))
        .expect("cs");
    assert_eq!(ann_cloud.len(), 1);
    let by_cloud_dn = eng
        .set_password(&ann_cloud[0].dn.to_string(), pw2b, true)
        .expect("set password by the cloud DN");
    assert!(by_cloud_dn.dn.eq_ignore_ascii_case(&ann_dn));
    client(&ann_dn, pw2b).conn().expect_err("must change first");
    // Clear errors for identities that cannot take a password.
    match eng.set_password("nobody@corp.example.com", pw1, false) {
        Err(EngineError::Writeback(WritebackError::IdentityNotFound(_))) => {}
        other => panic!("{other:?}"),
    }
    match eng.set_password(&team_dn, pw1, false) {
        Err(e @ EngineError::Writeback(WritebackError::NotAdLinked { .. })) => {
            assert!(e.to_string().contains("not linked to a user"), "{e}");
            assert!(!e.to_string().contains(pw1));
        }
        other => panic!("{other:?}"),
    }
    let too_short = "Qz7!x";
    match eng.set_password("wbbob@corp.example.com", too_short, false) {
        Err(e @ EngineError::Writeback(WritebackError::PasswordRejected { .. })) => {
            assert!(e.to_string().contains("too short"), "{e}");
            assert!(!e.to_string().contains(too_short), "{e}");
        }
        other => panic!("a too short password is refused by the DC: {other:?}"),
    }
    let hist = serde_json::to_string(&eng.history(50).expect("history")).expect("json");
    for pw in [pw1, pw2, pw2b, too_short] {
        assert!(!hist.contains(pw), "a password is in the run history");
    }
    assert!(hist.contains("SetPassword"));
    drop(eng);

    // The CLI: password from an environment variable, then from standard input.
    let bin = env!("CARGO_BIN_EXE_dirsync");
    let cfg = d.join("dirsync.toml");
    let pw3 = "Wb-Bob-Cli-Pw-3!";
    let out = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .args([
            "password",
            "set",
            "wbbob@corp.example.com",
            "--password-env",
            "WB_PW",
        ])
        .env("WB_PW", pw3)
        .output()
        .expect("cli");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains(pw3), "{text}");
    let bob_dn = format!("CN=wb bob,{people}");
    client(&bob_dn, pw3)
        .conn()
        .expect("bind with the CLI password");
    let pw4 = "Wb-Bob-Cli-Pw-4!";
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .args(["password", "set", &bob_dn])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cli");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{pw4}").expect("write");
    }
    let out = child.wait_with_output().expect("cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    client(&bob_dn, pw4)
        .conn()
        .expect("bind with the stdin password");
    let out = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .args([
            "password",
            "set",
            "nobody@corp.example.com",
            "--password-env",
            "WB_PW",
        ])
        .env("WB_PW", pw3)
        .output()
        .expect("cli");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no object matches 'nobody@corp.example.com'"),
        "{err}"
    );

    // `dirsync test-permissions`: the administrator has every right (exit 0, JSON report).
    let out = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .args(["test-permissions", "--json"])
        .output()
        .expect("cli");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report[0]["connector"], "ad");
    assert_eq!(report[0]["all_present"], true);
    assert_eq!(report[0]["writeback_ou"], wb_ou.as_str());

    // A plain user's account lacks the rights: the report says which, the exit code is 1.
    let bob_cfg = d.join("bob.toml");
    std::fs::write(d.join("bob.pw"), pw4).expect("pw");
    let text = std::fs::read_to_string(&cfg).expect("config");
    assert!(text.contains(&format!("bind_dn = \"{ADMIN}\"")));
    std::fs::write(
        &bob_cfg,
        text.replace(
            &format!("bind_dn = \"{ADMIN}\""),
            &format!("bind_dn = \"{bob_dn}\""),
        )
        .replace("admin.pw", "bob.pw")
        .replace("state.db", "bob-state.db"),
    )
    .expect("config");
    let out = Command::new(bin)
        .arg("--config")
        .arg(&bob_cfg)
        .arg("test-permissions")
        .output()
        .expect("cli");
    let table = String::from_utf8_lossy(&out.stdout);
    println!("dirsync test-permissions (plain user):\n{table}");
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains(&format!("create group objects in {wb_ou}"))
                && l.contains("MISSING")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("reset passwords") && l.contains("MISSING")),
        "{table}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("right(s) missing"));

    // A least-privilege sync account (as Entra Connect's ADSyncConfig delegates): Replicating
    // Directory Changes on the domain, create groups in the writeback OU, reset passwords and
    // write mS-DS-ConsistencyGuid on the users below the OU. Every right is reported present.
    let svc_pw = "Svc-Acc0unt-Pw!";
    let svc_dn = format!("CN=wbsvc,{ou}");
    let sam = dc.dir().join("private/sam.ldb");
    let tool = |args: &[&str]| {
        let out = Command::new("samba-tool")
            .args(args)
            .arg(format!("-H{}", sam.display()))
            .output()
            .expect("samba-tool");
        assert!(
            out.status.success(),
            "samba-tool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    tool(&["user", "create", "wbsvc", svc_pw, "--userou=OU=Writeback"]);
    let sid = {
        let e = read(&svc_dn, &["objectSid"]);
        let raw = e
            .values("objectSid")
            .and_then(|v| v.first())
            .cloned()
            .expect("sid");
        dirsync::connectors::ldap::ad::sid_text(&raw).expect("sid text")
    };
    const USER_CLASS: &str = "bf967aba-0de6-11d0-a285-00aa003049e2";
    tool(&[
        "dsacl",
        "set",
        "--car=get-changes",
        "--action=allow",
        &format!("--objectdn={BASE}"),
        &format!("--trusteedn={svc_dn}"),
    ]);
    tool(&[
        "dsacl",
        "set",
        &format!("--objectdn={wb_ou}"),
        &format!("--sddl=(OA;;CC;bf967a9c-0de6-11d0-a285-00aa003049e2;;{sid})"),
    ]);
    tool(&[
        "dsacl",
        "set",
        &format!("--objectdn={ou}"),
        &format!(
            "--sddl=(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;{USER_CLASS};{sid})(OA;CIIO;WP;23773dc2-b63a-11d2-90e1-00c04fd91ab1;{USER_CLASS};{sid})(OA;CIIO;WP;bf9679c0-0de6-11d0-a285-00aa003049e2;{USER_CLASS};{sid})"
        ),
    ]);
    std::fs::write(d.join("svc.pw"), svc_pw).expect("pw");
    let svc_cfg = d.join("svc.toml");
    std::fs::write(
        &svc_cfg,
        text.replace(
            &format!("bind_dn = \"{ADMIN}\""),
            &format!("bind_dn = \"{svc_dn}\""),
        )
        .replace("admin.pw", "svc.pw")
        .replace("state.db", "svc-state.db"),
    )
    .expect("config");
    let out = Command::new(bin)
        .arg("--config")
        .arg(&svc_cfg)
        .arg("test-permissions")
        .output()
        .expect("cli");
    let table = String::from_utf8_lossy(&out.stdout);
    println!("dirsync test-permissions (delegated service account):\n{table}");
    assert!(out.status.success(), "{table}");
    assert!(!table.contains("MISSING"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("reset passwords") && l.contains("present")),
        "{table}"
    );
    // And the delegated account really can: a password set through it lets the user bind.
    for ext in ["", "-wal", "-shm"] {
        let from = d.join(format!("state.db{ext}"));
        if from.exists() {
            std::fs::copy(&from, d.join(format!("svc-state.db{ext}"))).expect("copy state");
        }
    }
    let cy_pw = "Wb-Cy-Svc-Pw-5!";
    let out = Command::new(bin)
        .arg("--config")
        .arg(&svc_cfg)
        .args([
            "password",
            "set",
            "wbcy@corp.example.com",
            "--password-env",
            "WB_PW",
        ])
        .env("WB_PW", cy_pw)
        .output()
        .expect("cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    client(&format!("CN=wb cy,{people}"), cy_pw)
        .conn()
        .expect("bind with the password the service account set");

    // Passwords need an encrypted connection: a plain ldap:// connector is refused before
    // anything is sent.
    let plain = d.join("plain.toml");
    std::fs::write(
        &plain,
        text.replace("ldaps://127.0.0.1:636", "ldap://127.0.0.1:389"),
    )
    .expect("config");
    let mut e = Engine::open(Config::load(&plain).expect("config")).expect("engine");
    match e.set_password("wbann@corp.example.com", pw1, false) {
        Err(err @ EngineError::Writeback(WritebackError::LdapsRequired { .. })) => {
            assert!(err.to_string().contains("ldaps://"), "{err}");
        }
        other => panic!("{other:?}"),
    }
    drop(e);

    // Deleting the cloud group deletes the written-back AD group (`dirsync writeback`).
    cloud_delete_group(&cloud, &outer);
    let out = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .arg("writeback")
        .output()
        .expect("cli");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dns: Vec<String> = groups_below(&wb_ou).into_iter().map(|g| g.dn).collect();
    assert_eq!(dns.len(), 1, "{dns:?}");
    assert!(dns[0].eq_ignore_ascii_case(&team_dn));
    let mut eng = open(d);
    all_ok(
        &eng.cycle(CyclePolicy::Delta, &run)
            .expect("delta after delete"),
    );
    drop(eng);

    // A rebuilt server (new state, as a staging server starts): the written-back group is
    // joined by its tag, not created again; nothing fails and the next cycle is quiet.
    let rebuilt = d.join("rebuilt.toml");
    std::fs::write(&rebuilt, text.replace("state.db", "rebuilt.db")).expect("config");
    let mut eng = Engine::open(Config::load(&rebuilt).expect("config")).expect("engine");
    let first = eng
        .cycle(CyclePolicy::Initial, &run)
        .expect("rebuilt initial");
    println!(
        "rebuilt server, initial cycle exports: {:?}",
        first
            .iter()
            .map(|r| (
                r.connector.clone(),
                r.profile.clone(),
                r.counters.export_adds,
                r.counters.export_updates,
                r.counters.export_failures
            ))
            .collect::<Vec<_>>()
    );
    all_ok(&first);
    for i in 0..2 {
        let runs = eng.cycle(CyclePolicy::Delta, &run).expect("rebuilt delta");
        all_ok(&runs);
        if i == 1 {
            assert_eq!(exported(&runs), 0, "{runs:#?}");
        }
    }
    let dns: Vec<String> = groups_below(&wb_ou).into_iter().map(|g| g.dn).collect();
    assert_eq!(dns.len(), 1, "{dns:?}");
    let linked = eng.cs_objects("ad", Some(&team_dn), None).expect("cs");
    assert!(linked[0].mv_id.is_some(), "joined by its tag");
}

fn cloud_delete_group(cloud: &Cloud, id: &str) {
    // Through Graph, as an admin would.
    let h = cloud.h();
    let base = h.graph_url();
    let token_url = h.token_url();
    let id = id.to_string();
    cloud.rt.block_on(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let tok: serde_json::Value = http
            .post(token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
            ))
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token json");
        let t = tok["access_token"].as_str().expect("access token");
        let r = http
            .delete(format!("{base}/groups/{id}"))
            .bearer_auth(t)
            .send()
            .await
            .expect("delete");
        assert!(r.status().is_success(), "{}", r.status());
    });
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `dirsync password set` on a terminal prompts without echoing what is typed (a pseudo
/// terminal stands in for the admin's terminal; no directory is needed: the password is read
/// before the configuration is opened).
#[test]
fn password_prompt_on_a_terminal_does_not_echo() {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::sync::{Arc, Mutex};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors; the name, termios and winsize are optional.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .args(["password", "set", "someone@corp.example.com"])
        .stdin(slave.try_clone().expect("dup"))
        .stdout(slave.try_clone().expect("dup"))
        .stderr(slave)
        .spawn()
        .expect("cli");
    let mut reader = std::fs::File::from(master.try_clone().expect("dup"));
    let mut writer = std::fs::File::from(master);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let pump = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        // EIO once the child's side is closed.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().expect("lock").extend_from_slice(&buf[..n]);
        }
    });
    let text = || String::from_utf8_lossy(&seen.lock().expect("lock")).into_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !text().contains("New password:") {
        assert!(
            std::time::Instant::now() < deadline,
            "no prompt: {}",
            text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let secret = "Typed-Secret-42";
    writer
        .write_all(format!("{secret}\n").as_bytes())
        .expect("type");
    let status = child.wait().expect("wait");
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(writer);
    let _ = pump.join();
    let out = text();
    assert!(!status.success(), "the configuration is missing: {out}");
    assert!(out.contains("missing.toml"), "{out}");
    assert!(!out.contains(secret), "the password was echoed: {out}");
}

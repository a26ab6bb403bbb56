//! AD -> Entra ID end to end: a real Samba AD DC and the Graph tenant emulator, with the
//! `ad-to-entra` template's out-of-box rules (issue 7, "Show").
//!
//! One test drives one small realistic domain through every scenario, asserting the tenant's
//! content exactly (a normalized view of every live and soft-deleted object) after each step:
//!
//! 1. initial cycle: in-scope users, groups and memberships with the mapped attributes (UPN
//!    fallback, displayName fallback and trimming, accountEnabled, manager, nested group);
//!    the excluded OU, the built-in exclusions, the attribute filter (`extensionAttribute15 =
//!    NoSync`, Exchange's attribute added to Samba's schema), distribution groups and contacts
//!    stay out, each for the right reason (connector space, metaverse, `cloudFiltered`);
//! 2. delta cycles (DirSync): create, update, rename, move, disable, attribute filter lifted,
//!    move out of scope (soft delete), delete (soft delete), and restore: a user moved back
//!    into scope, and a deleted user reanimated from its tombstone over LDAP (Samba 4.17, Recycle Bin off: the
//!    objectGUID survives, most attributes do not) come back as the same soft-deleted cloud
//!    objects (same ids), through the Graph connector's restore of deleted items on add;
//! 3. renaming an included OU trips the deletion threshold; nothing is deleted, the run
//!    history says why, and after `confirm_deletes` the deletes go through; undoing the
//!    rename restores the users and the group (same cloud ids, members back);
//! 4. a staging server (second engine, `staging_mode = true`) runs every cycle next to the
//!    active one: it computes the same plan and never writes to the tenant; promoted to
//!    active at the end, it has nothing to re-export and carries on with the next change.

mod support;

use dirsync::config::Config;
use dirsync::connectors::ldap::ConnectionSettings;
use dirsync::connectors::ldap::connection::LdapClient;
use dirsync::emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, DirObject, Emulator,
    EmulatorConfig, EmulatorHandle, ObjectKind, Tenant,
};
use dirsync::engine::plan::{ObjectPlan, Plan};
use dirsync::engine::{CyclePolicy, Engine, EngineError, RunOptions, RunProfile, RunRecord};
use dirsync::templates::{AdSource, AdToEntraOptions, ad_to_entra_config};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use support::samba::{ADMIN, ADMIN_PW, BASE, DC_NAME, Samba};

const UPN_SUFFIX: &str = "corp.example.com";

// --- the directory --------------------------------------------------------------------------

fn corp() -> String {
    format!("OU=Corp,{BASE}")
}
fn sales() -> String {
    format!("OU=Sales,{}", corp())
}
fn emea() -> String {
    format!("OU=EMEA,{}", sales())
}
fn eng_ou() -> String {
    format!("OU=Engineering,{}", corp())
}
fn excluded() -> String {
    format!("OU=Excluded,{}", corp())
}
fn system_ou() -> String {
    format!("OU=System,{}", corp())
}
fn branch() -> String {
    format!("OU=Branch,{BASE}")
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// One LDIF line; non-ASCII values are base64 (`name:: ...`).
fn line(name: &str, value: &str) -> String {
    if value.is_ascii() && !value.starts_with(' ') && !value.ends_with(' ') {
        format!("{name}: {value}\n")
    } else {
        format!("{name}:: {}\n", b64(value.as_bytes()))
    }
}

/// An LDIF content record.
fn entry(dn: &str, attrs: &[(&str, &str)]) -> String {
    let mut s = line("dn", dn);
    for (n, v) in attrs {
        s.push_str(&line(n, v));
    }
    s.push('\n');
    s
}

/// An enabled user without a password (userAccountControl NORMAL_ACCOUNT | PASSWD_NOTREQD).
const ENABLED: &str = "544";
/// The same, disabled (ACCOUNTDISABLE).
const DISABLED: &str = "546";
/// groupType: global security group.
const GLOBAL_SECURITY: &str = "-2147483646";
/// groupType: universal security group.
const UNIVERSAL_SECURITY: &str = "-2147483640";
/// groupType: universal distribution group.
const UNIVERSAL_DISTRIBUTION: &str = "8";

fn alice() -> String {
    format!("CN=Alice Archer,{}", emea())
}
fn bob() -> String {
    format!("CN=Bob Baker,{}", sales())
}
fn zoe() -> String {
    format!("CN=Zoë Ñúñez,{}", emea())
}
fn john() -> String {
    format!("CN=Smith\\, John,{}", eng_ou())
}
fn dave() -> String {
    format!("CN=Dave Dormant,{}", eng_ou())
}
fn eve() -> String {
    format!("CN=eve,{}", eng_ou())
}
fn leekim() -> String {
    format!("CN=Lee\\+Kim,{}", eng_ou())
}
fn nina() -> String {
    format!("CN=Nina NoSync,{}", eng_ou())
}
fn sales_team() -> String {
    format!("CN=Sales Team,{}", sales())
}
fn all_staff() -> String {
    format!("CN=All Staff,{}", corp())
}

fn domain_ldif() -> String {
    let mut l = String::new();
    for ou in [
        corp(),
        sales(),
        emea(),
        eng_ou(),
        excluded(),
        system_ou(),
        branch(),
    ] {
        l.push_str(&entry(&ou, &[("objectClass", "organizationalUnit")]));
    }
    // In scope.
    l.push_str(&entry(
        &alice(),
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "aarcher"),
            ("userPrincipalName", "alice.archer@corp.example.com"),
            ("userAccountControl", ENABLED),
            ("givenName", "Alice"),
            ("sn", "Archer"),
            ("displayName", "Alice Archer"),
            ("title", "Sales Director"),
            ("department", "Sales"),
            ("company", "Corp Ltd"),
            ("mail", "alice.archer@corp.example.com"),
            ("telephoneNumber", "+49 30 1234"),
            ("mobile", "+49 170 1234"),
            ("physicalDeliveryOfficeName", "BER-1"),
            ("streetAddress", "Unter den Linden 1"),
            ("l", "Berlin"),
            ("st", "BE"),
            ("postalCode", "10117"),
            ("c", "DE"),
            ("co", "Germany"),
            ("employeeID", "E100"),
        ],
    ));
    l.push_str(&entry(
        &bob(),
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "bbaker"),
            ("userPrincipalName", "bob.baker@corp.example.com"),
            ("userAccountControl", ENABLED),
            ("givenName", "Bob"),
            ("sn", "Baker"),
            // Trimmed by the rules.
            ("displayName", "  Bob Baker  "),
            ("title", "Account Executive"),
            ("manager", &alice()),
        ],
    ));
    l.push_str(&entry(
        &zoe(),
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "znunez"),
            ("userPrincipalName", "zoe.nunez@corp.example.com"),
            ("userAccountControl", ENABLED),
            ("givenName", "Zoë"),
            ("sn", "Ñúñez"),
            ("displayName", "Zoë Ñúñez"),
            ("l", "Málaga"),
            ("manager", &alice()),
        ],
    ));
    // No userPrincipalName: sAMAccountName@Domain.FQDN.
    l.push_str(&entry(
        &john(),
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "jsmith"),
            ("userAccountControl", ENABLED),
            ("givenName", "John"),
            ("sn", "Smith"),
            ("displayName", "Smith, John"),
        ],
    ));
    l.push_str(&entry(
        &dave(),
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "ddormant"),
            ("userPrincipalName", "dave.dormant@corp.example.com"),
            ("userAccountControl", DISABLED),
            ("displayName", "Dave Dormant"),
        ],
    ));
    // No displayName: cn.
    l.push_str(&entry(
        &eve(),
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "eve"),
            ("userPrincipalName", "eve@corp.example.com"),
            ("userAccountControl", ENABLED),
        ],
    ));
    l.push_str(&entry(
        &leekim(),
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "leekim"),
            ("userPrincipalName", "lee.kim@corp.example.com"),
            ("userAccountControl", ENABLED),
            ("displayName", "Lee+Kim"),
            ("manager", &john()),
        ],
    ));
    // Attribute filtering: NoSync keeps her in the metaverse, out of the tenant.
    l.push_str(&entry(
        &nina(),
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "nnosync"),
            ("userPrincipalName", "nina.nosync@corp.example.com"),
            ("userAccountControl", ENABLED),
            ("displayName", "Nina NoSync"),
            ("extensionAttribute15", "NoSync"),
        ],
    ));
    // A contact: in the metaverse, never exported (orgContact is read-only in Graph).
    l.push_str(&entry(
        &format!("CN=Pat Partner,{}", sales()),
        &[
            ("objectClass", "contact"),
            ("displayName", "Pat Partner"),
            ("mail", "pat@partner.example"),
        ],
    ));
    // Out of scope: the excluded OU.
    l.push_str(&entry(
        &format!("CN=Xavier Out,{}", excluded()),
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "xout"),
            ("userPrincipalName", "xavier.out@corp.example.com"),
            ("userAccountControl", ENABLED),
        ],
    ));
    l.push_str(&entry(
        &format!("CN=Excluded Group,{}", excluded()),
        &[
            ("objectClass", "group"),
            ("sAMAccountName", "excludedgroup"),
            ("groupType", GLOBAL_SECURITY),
            ("member", &format!("CN=Xavier Out,{}", excluded())),
        ],
    ));
    // Built-in exclusions (in scope by OU, excluded by the rules' scoping filters).
    for (cn, sam, extra) in [
        ("MSOL_0123456789ab", "MSOL_0123456789ab", None),
        ("AAD_5f4dcc3b5aa7", "AAD_5f4dcc3b5aa7", None),
        (
            "SystemMailbox{1f05a927-3e8b-4c5a-9a5e-1c2d3e4f5a6b}",
            "SM_1f05a9273e8b4c5a9",
            None,
        ),
        (
            "Cloud Writeback User",
            "cloudwbuser",
            Some((
                "adminDescription",
                "User_0f5f4a4e-0000-4000-8000-000000000001",
            )),
        ),
    ] {
        let upn = format!("{}@corp.example.com", sam.to_lowercase());
        let dn = format!("CN={cn},{}", system_ou());
        let mut attrs = vec![
            ("objectClass", "user"),
            ("sAMAccountName", sam),
            ("userPrincipalName", upn.as_str()),
            ("userAccountControl", ENABLED),
        ];
        if let Some(x) = extra {
            attrs.push(x);
        }
        l.push_str(&entry(&dn, &attrs));
    }
    l.push_str(&entry(
        &format!("CN=Cloud Writeback Group,{}", system_ou()),
        &[
            ("objectClass", "group"),
            ("sAMAccountName", "cloudwbgroup"),
            ("groupType", UNIVERSAL_SECURITY),
            (
                "adminDescription",
                "Group_0f5f4a4e-0000-4000-8000-000000000002",
            ),
        ],
    ));
    // Groups: a nested security group, a distribution group (stays on-premises).
    l.push_str(&entry(
        &sales_team(),
        &[
            ("objectClass", "group"),
            ("sAMAccountName", "salesteam"),
            ("groupType", GLOBAL_SECURITY),
            ("description", "EMEA and home sales"),
            ("member", &alice()),
            ("member", &bob()),
            ("member", &zoe()),
        ],
    ));
    l.push_str(&entry(
        &all_staff(),
        &[
            ("objectClass", "group"),
            ("sAMAccountName", "allstaff"),
            ("groupType", UNIVERSAL_SECURITY),
            ("member", &sales_team()),
            ("member", &john()),
            ("member", &dave()),
            ("member", &eve()),
            ("member", &leekim()),
            // Neither reaches the tenant: a contact and an out-of-scope user.
            ("member", &format!("CN=Pat Partner,{}", sales())),
            ("member", &format!("CN=Xavier Out,{}", excluded())),
        ],
    ));
    l.push_str(&entry(
        &format!("CN=Sales News,{}", sales()),
        &[
            ("objectClass", "group"),
            ("sAMAccountName", "salesnews"),
            ("groupType", UNIVERSAL_DISTRIBUTION),
            ("mail", "salesnews@corp.example.com"),
            ("member", &alice()),
        ],
    ));
    // The second included OU (renamed in the threshold scenario).
    for i in 1..=4 {
        l.push_str(&entry(
            &format!("CN=Branch User {i},{}", branch()),
            &[
                ("objectClass", "user"),
                ("sAMAccountName", &format!("branch{i}")),
                ("userPrincipalName", &format!("branch{i}@corp.example.com")),
                ("userAccountControl", ENABLED),
            ],
        ));
    }
    l.push_str(&entry(
        &format!("CN=Branch Team,{}", branch()),
        &[
            ("objectClass", "group"),
            ("sAMAccountName", "branchteam"),
            ("groupType", GLOBAL_SECURITY),
            ("member", &format!("CN=Branch User 1,{}", branch())),
            ("member", &format!("CN=Branch User 2,{}", branch())),
        ],
    ));
    l
}

/// Adds Exchange's `extensionAttribute15` (ms-Exch-Extension-Attribute-15, as the Exchange
/// schema update publishes it; the schemaIDGUID is this test's own) to the DC's schema through
/// the local database, so the out-of-box attribute filter (`extensionAttribute15 = NoSync`)
/// can be exercised. Idempotent.
const SCHEMA_EXCHANGE_ATTR: &str = r#"
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
                expression="(lDAPDisplayName=extensionAttribute15)", attrs=["dn"])
if len(res) == 0:
    db.add_ldif("""dn: CN=ms-Exch-Extension-Attribute-15,%s
objectClass: top
objectClass: attributeSchema
cn: ms-Exch-Extension-Attribute-15
attributeID: 1.2.840.113556.1.2.603
attributeSyntax: 2.5.5.12
isSingleValued: TRUE
rangeLower: 1
rangeUpper: 2048
showInAdvancedViewOnly: TRUE
adminDisplayName: ms-Exch-Extension-Attribute-15
oMSyntax: 64
searchFlags: 16
lDAPDisplayName: extensionAttribute15
schemaIDGUID:: 3q2+7wEjRWeJq83vASNFZw==
systemOnly: FALSE
isMemberOfPartialAttributeSet: TRUE
""" % schema)
    db.modify_ldif("""dn: CN=Mail-Recipient,%s
changetype: modify
add: mayContain
mayContain: extensionAttribute15
""" % schema)
    print("schema: extensionAttribute15 added")
"#;

fn extend_schema(dc: &Samba) {
    let (ok, output) =
        dc.run_local_python("schema_exchange_attr.py", SCHEMA_EXCHANGE_ATTR, &[BASE]);
    assert!(ok, "schema extension failed: {output}");
    print!("{output}");
}

// --- AD access ------------------------------------------------------------------------------

fn admin() -> LdapClient {
    let mut cs = ConnectionSettings::new("ldap://127.0.0.1:389");
    cs.bind_dn = Some(ADMIN.to_string());
    cs.connect_attempts = 1;
    LdapClient::with_password(cs, Some(ADMIN_PW.into())).expect("client")
}

/// The immutableId (base64 of the objectGUID bytes) of an AD object.
fn immutable_id(dn: &str) -> String {
    let e = admin()
        .read_entry(dn, &["objectGUID".to_string()], Vec::new())
        .expect("read")
        .unwrap_or_else(|| panic!("{dn} not found"));
    let guid = e
        .values("objectGUID")
        .and_then(|v| v.first())
        .cloned()
        .expect("objectGUID");
    assert_eq!(guid.len(), 16);
    b64(&guid)
}

// --- the tenant -----------------------------------------------------------------------------

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
}

impl Drop for Cloud {
    fn drop(&mut self) {
        if let Some(h) = self.h.take() {
            let _ = self.rt.block_on(h.shutdown());
        }
    }
}

/// User properties the out-of-box rules write (Graph names), shown when set.
const USER_PROPS: &[&str] = &[
    "userPrincipalName",
    "displayName",
    "mailNickname",
    "accountEnabled",
    "givenName",
    "surname",
    "mail",
    "businessPhones",
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
];
/// Group properties the out-of-box rules write.
const GROUP_PROPS: &[&str] = &[
    "displayName",
    "description",
    "mailNickname",
    "securityEnabled",
    "mailEnabled",
];

/// Properties the tenant (or the Graph connector on create) sets by itself: the creation time,
/// the initial password, userType, addresses derived from mail, the connector's DN stamp.
const SERVER_PROPS: &[&str] = &[
    "createdDateTime",
    "passwordProfile",
    "userType",
    "proxyAddresses",
    "securityIdentifier",
    "renewedDateTime",
];

fn is_set(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Array(a) => !a.is_empty(),
        Json::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn name_of(t: &Tenant, id: &str) -> String {
    let o = t
        .objects
        .get(id)
        .or_else(|| t.deleted.get(id))
        .unwrap_or_else(|| panic!("dangling reference {id}"));
    let key = if o.kind == ObjectKind::User {
        "userPrincipalName"
    } else {
        "displayName"
    };
    o.props
        .get(key)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

/// An object as the test compares it: the rule-written properties that are set, the anchor
/// (the application's `dirsyncAnchor` extension), the manager (by UPN) and members (by UPN
/// or group name).
fn object_view(t: &Tenant, o: &DirObject) -> (String, Json) {
    let mut m = serde_json::Map::new();
    let (kind, props) = match o.kind {
        ObjectKind::User => ("user", USER_PROPS),
        ObjectKind::Group => ("group", GROUP_PROPS),
        other => panic!("unexpected {other:?} in the tenant: {:?}", o.props),
    };
    for p in props {
        if let Some(v) = o.props.get(*p).filter(|v| is_set(v)) {
            m.insert((*p).to_string(), v.clone());
        }
    }
    // Nothing else is written: a property outside the rules' outputs fails the comparison.
    let extra: Vec<&String> = o
        .props
        .iter()
        .filter(|(k, v)| {
            is_set(v)
                && !props.contains(&k.as_str())
                && !SERVER_PROPS.contains(&k.as_str())
                && k.as_str() != "deletedDateTime"
                && !(k.starts_with("extension_")
                    && (k.ends_with("_dirsyncAnchor") || k.ends_with("_dirsyncDn")))
        })
        .map(|(k, _)| k)
        .collect();
    if !extra.is_empty() {
        m.insert("unexpected properties".into(), json!(extra));
    }
    if let Some((_, v)) = o
        .props
        .iter()
        .find(|(k, _)| k.starts_with("extension_") && k.ends_with("_dirsyncAnchor"))
    {
        m.insert("anchor".into(), v.clone());
    }
    if let Some(mgr) = &o.manager {
        m.insert("manager".into(), json!(name_of(t, mgr)));
    }
    if o.kind == ObjectKind::Group {
        let mut members: Vec<String> = o.members.iter().map(|id| name_of(t, id)).collect();
        members.sort();
        m.insert("members".into(), json!(members));
    }
    let key = match o.kind {
        ObjectKind::User => m
            .get("userPrincipalName")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => m
            .get("displayName")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    (format!("{kind} {key}"), Json::Object(m))
}

/// The whole tenant: live objects by "user <upn>" / "group <name>", soft-deleted ones under
/// "deleted user <upn>"; the cloud ids alongside.
#[derive(Debug, Clone, PartialEq)]
struct View {
    objects: BTreeMap<String, Json>,
    ids: BTreeMap<String, String>,
}

fn view(cloud: &Cloud) -> View {
    let t = cloud.h().tenant();
    let mut objects = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for o in t.objects.values() {
        let (k, v) = object_view(&t, o);
        assert!(objects.insert(k.clone(), v).is_none(), "duplicate {k}");
        ids.insert(k, o.id.clone());
    }
    for o in t.deleted.values() {
        // The members a soft-deleted group keeps depend on the order of the deletes (a user
        // deleted first leaves the group first): not compared.
        let (k, mut v) = object_view(&t, o);
        if let Some(m) = v.as_object_mut() {
            m.remove("members");
        }
        let k = format!("deleted {k}");
        assert!(objects.insert(k.clone(), v).is_none(), "duplicate {k}");
        ids.insert(k, o.id.clone());
    }
    View { objects, ids }
}

/// Compares the tenant with the expectation, naming every difference.
#[track_caller]
fn assert_tenant(cloud: &Cloud, expected: &BTreeMap<String, Json>, step: &str) -> View {
    let v = view(cloud);
    if &v.objects != expected {
        let mut diff = String::new();
        for (k, e) in expected {
            match v.objects.get(k) {
                None => diff.push_str(&format!("  missing {k}: {e}\n")),
                Some(a) if a != e => diff.push_str(&format!(
                    "  differs {k}:\n    expected {e}\n    actual   {a}\n"
                )),
                _ => {}
            }
        }
        for (k, a) in &v.objects {
            if !expected.contains_key(k) {
                diff.push_str(&format!("  unexpected {k}: {a}\n"));
            }
        }
        panic!("{step}: the tenant differs from the expectation:\n{diff}");
    }
    v
}

// --- engines ----------------------------------------------------------------------------------

fn open(dir: &Path) -> Engine {
    Engine::open(Config::load(&dir.join("dirsync.toml")).expect("config")).expect("engine")
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

/// A plan in a comparable form: objects sorted, attribute values sorted, retry state cleared.
fn normalized(p: &Plan) -> Plan {
    let mut objects: Vec<ObjectPlan> = p
        .objects
        .iter()
        .cloned()
        .map(|mut o| {
            o.attempts = 0;
            o.last_error = None;
            for a in &mut o.attributes {
                a.old.sort();
                a.new.sort();
            }
            o.attributes
                .sort_by(|a, b| (&a.attribute, &a.operation).cmp(&(&b.attribute, &b.operation)));
            o
        })
        .collect();
    objects.sort_by(|a, b| {
        (&a.connector, &a.dn, &a.operation).cmp(&(&b.connector, &b.dn, &b.operation))
    });
    Plan {
        summary: p.summary.clone(),
        objects,
    }
}

/// The active server and the staging server side by side.
struct Servers {
    active: Engine,
    staging: Engine,
    cycles: usize,
    secs: f64,
}

impl Servers {
    /// One cycle on both: the staging server first (it must not change the tenant), then the
    /// active server step by step, with the plan taken after its syncs and compared with the
    /// staging server's. Returns the active server's step records.
    fn cycle(
        &mut self,
        cloud: &Cloud,
        policy: CyclePolicy,
        opts: &RunOptions,
        step: &str,
    ) -> Result<Vec<RunRecord>, EngineError> {
        let started = Instant::now();
        let before = view(cloud);
        let staged = self.staging.cycle(policy, &RunOptions::default());
        let staged = staged.unwrap_or_else(|e| panic!("{step}: staging cycle: {e}"));
        all_ok(&staged);
        assert!(
            staged
                .iter()
                .filter(|r| r.profile == "Export")
                .all(|r| r.counters.export_adds
                    + r.counters.export_updates
                    + r.counters.export_deletes
                    == 0),
            "{step}: the staging server exported: {staged:#?}"
        );
        assert_eq!(
            view(cloud),
            before,
            "{step}: the staging server changed the tenant"
        );
        let staged_plan = normalized(&self.staging.plan().expect("staging plan"));

        let names = self.active.connector_names();
        let mut records = Vec::new();
        for n in &names {
            let p = if policy == CyclePolicy::Initial {
                RunProfile::FullImport
            } else {
                RunProfile::DeltaImport
            };
            records.push(self.active.run_profile(n, p, opts, None)?);
        }
        for n in &names {
            let p = if policy == CyclePolicy::Initial {
                RunProfile::FullSync
            } else {
                RunProfile::DeltaSync
            };
            records.push(self.active.run_profile(n, p, opts, None)?);
        }
        let active_plan = normalized(&self.active.plan().expect("plan"));
        assert_eq!(
            active_plan, staged_plan,
            "{step}: the staging server computed another plan"
        );
        // The cycle again, through Engine::cycle (threshold check, exports, history): the
        // imports and syncs find nothing new; the exports write the plan.
        records.extend(self.active.cycle(CyclePolicy::Delta, opts)?);
        self.cycles += 1;
        self.secs += started.elapsed().as_secs_f64();
        Ok(records)
    }

    /// Cycles until the active server exports nothing (the confirming imports of what was
    /// written); at most `max`.
    fn settle(&mut self, cloud: &Cloud, step: &str, max: usize) {
        for i in 0..max {
            let runs = self
                .cycle(cloud, CyclePolicy::Delta, &RunOptions::default(), step)
                .unwrap_or_else(|e| panic!("{step}: cycle {i}: {e}"));
            all_ok(&runs);
            let exported: u64 = runs
                .iter()
                .map(|r| {
                    r.counters.export_adds + r.counters.export_updates + r.counters.export_deletes
                })
                .sum();
            if exported == 0 && self.active.plan().expect("plan").objects.is_empty() {
                return;
            }
        }
        panic!(
            "{step}: still exporting after {max} cycles: {}",
            self.active.plan().expect("plan").to_table()
        );
    }
}

/// Tombstone reanimation (restore of a deleted object, its objectGUID kept): the standard
/// modify with the show-deleted control (delete `isDeleted`, replace `distinguishedName`),
/// first over LDAP as Administrator, then through the local `sam.ldb` (system session).
/// Prints the route that worked, or every error.
const REANIMATE: &str = r#"
import sys
import ldb
from samba.auth import system_session
from samba.credentials import Credentials
from samba.param import LoadParm
from samba.samdb import SamDB
conf, sam, guid, newdn, user, pw = sys.argv[1:7]
lp = LoadParm()
lp.load(conf)
def reanimate(db):
    res = db.search(base="<GUID=%s>" % guid, scope=ldb.SCOPE_BASE,
                    controls=["show_deleted:1"], attrs=["isDeleted"])
    msg = ldb.Message()
    msg.dn = res[0].dn
    msg["isDeleted"] = ldb.MessageElement([], ldb.FLAG_MOD_DELETE, "isDeleted")
    msg["distinguishedName"] = ldb.MessageElement([newdn], ldb.FLAG_MOD_REPLACE,
                                                  "distinguishedName")
    db.modify(msg, controls=["show_deleted:1"])
errors = []
try:
    creds = Credentials()
    creds.guess(lp)
    creds.set_username(user)
    creds.set_password(pw)
    reanimate(SamDB(url="ldap://127.0.0.1", credentials=creds, lp=lp))
    print("reanimated over LDAP")
    sys.exit(0)
except Exception as e:
    errors.append("LDAP: %s" % (e,))
try:
    reanimate(SamDB(url=sam, session_info=system_session(), lp=lp))
    print("reanimated through the local sam.ldb")
    sys.exit(0)
except Exception as e:
    errors.append("sam.ldb: %s" % (e,))
print("; ".join(errors))
sys.exit(1)
"#;

/// Restores the deleted object with this objectGUID (hex string form) at `new_dn`. `Ok` names
/// the route that worked, `Err` carries the errors of every route.
fn reanimate(dc: &Samba, guid: &str, new_dn: &str) -> Result<String, String> {
    let (ok, text) = dc.run_local_python(
        "reanimate.py",
        REANIMATE,
        &[guid, new_dn, "Administrator", ADMIN_PW],
    );
    let text = text.trim().to_string();
    if ok { Ok(text) } else { Err(text) }
}

/// The objectGUID of an AD object in its string form (`<GUID=...>` bases).
fn guid_string(dn: &str) -> String {
    let e = admin()
        .read_entry(dn, &["objectGUID".to_string()], Vec::new())
        .expect("read")
        .unwrap_or_else(|| panic!("{dn} not found"));
    let b = e
        .values("objectGUID")
        .and_then(|v| v.first())
        .cloned()
        .expect("objectGUID");
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

/// An `ldapmodify` change record.
fn change(dn: &str, body: &str) -> String {
    format!("{}{body}\n", line("dn", dn))
}

/// Moves a key of the expectation to "deleted ..." (the soft-deleted object keeps its view).
fn soft_delete(e: &mut BTreeMap<String, Json>, key: &str) {
    let mut v = e
        .remove(key)
        .unwrap_or_else(|| panic!("{key} expected live"));
    if let Some(m) = v.as_object_mut() {
        m.remove("members");
    }
    e.insert(format!("deleted {key}"), v);
}

/// Sets (or with `Json::Null` removes) properties of an expected object.
fn patch(e: &mut BTreeMap<String, Json>, key: &str, props: Json) {
    let o = e
        .get_mut(key)
        .and_then(Json::as_object_mut)
        .unwrap_or_else(|| panic!("{key} expected"));
    if let Json::Object(p) = props {
        for (k, v) in p {
            if v.is_null() {
                o.remove(&k);
            } else {
                o.insert(k, v);
            }
        }
    }
}

/// The cloud ids stay the same for every key both views have.
#[track_caller]
fn same_ids(before: &View, after: &View, step: &str) {
    for (k, id) in &before.ids {
        if let Some(id2) = after.ids.get(k) {
            assert_eq!(id, id2, "{step}: {k} has a new cloud id");
        }
    }
}

/// The AD connector-space object at `dn`, if any.
fn cs_object(e: &Engine, dn: &str) -> Option<dirsync::store::CsObject> {
    let v = e.cs_objects("ad", Some(dn), None).expect("cs");
    assert!(v.len() <= 1);
    v.into_iter().next()
}

// --- the test ---------------------------------------------------------------------------------

fn user(upn: &str, anchor: &str, extra: Json) -> (String, Json) {
    let mut m = json!({
        "userPrincipalName": upn,
        "accountEnabled": true,
        "anchor": anchor,
        "onPremisesImmutableId": anchor,
    });
    if let (Some(m), Json::Object(x)) = (m.as_object_mut(), extra) {
        m.extend(x);
    }
    (format!("user {upn}"), m)
}

fn group(name: &str, anchor: &str, nick: &str, members: &[&str], extra: Json) -> (String, Json) {
    let mut ms: Vec<&str> = members.to_vec();
    ms.sort();
    let mut m = json!({
        "displayName": name,
        "mailNickname": nick,
        "securityEnabled": true,
        "mailEnabled": false,
        "anchor": anchor,
        "members": ms,
    });
    if let (Some(m), Json::Object(x)) = (m.as_object_mut(), extra) {
        m.extend(x);
    }
    (format!("group {name}"), m)
}

#[test]
fn ad_to_entra_initial_delta_threshold_and_staging() {
    if !support::require_root("samba", "ad_to_entra_initial_delta_threshold_and_staging") {
        return;
    }
    let t0 = Instant::now();
    let dc = Samba::shared();
    let dc_secs = t0.elapsed().as_secs_f64();
    let t = Instant::now();
    extend_schema(dc);
    dc.add(&domain_ldif());
    println!("domain loaded in {:.1} s", t.elapsed().as_secs_f64());

    let cloud = Cloud::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let make = |name: &str, staging: bool| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("admin.pw"), ADMIN_PW).expect("pw");
        std::fs::write(d.join("secret.txt"), DEFAULT_CLIENT_SECRET).expect("secret");
        let opts = AdToEntraOptions {
            domain_fqdn: UPN_SUFFIX.into(),
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
            include_ous: vec![corp(), branch(), format!("CN=Users,{BASE}")],
            exclude_ous: vec![excluded()],
            pilot_group_dn: None,
            tenant_id: DEFAULT_TENANT_ID.into(),
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret_env: None,
            client_secret_file: Some("secret.txt".into()),
            authority: Some(cloud.h().base_url().to_string()),
            graph_url: Some(cloud.h().graph_url()),
            with_writeback: false,
            writeback_ou: None,
            state_path: "state.db".into(),
            deletion_threshold_count: 3,
        };
        let mut text = ad_to_entra_config(&opts);
        if staging {
            let staged = text.replace("staging_mode = false", "staging_mode = true");
            assert_ne!(staged, text, "the template has a staging_mode setting");
            text = staged;
        }
        std::fs::write(d.join("dirsync.toml"), text).expect("config");
        open(&d)
    };
    let mut s = Servers {
        active: make("active", false),
        staging: make("staging", true),
        cycles: 0,
        secs: 0.0,
    };
    let run = RunOptions::default();

    // --- 1. initial cycle ---------------------------------------------------------------------
    let a = |dn: &str| immutable_id(dn);
    let (a_alice, a_bob, a_zoe, a_john, a_dave, a_eve, a_lee) = (
        a(&alice()),
        a(&bob()),
        a(&zoe()),
        a(&john()),
        a(&dave()),
        a(&eve()),
        a(&leekim()),
    );
    let mut expected: BTreeMap<String, Json> = BTreeMap::new();
    let put = |e: &mut BTreeMap<String, Json>, (k, v): (String, Json)| {
        e.insert(k, v);
    };
    put(
        &mut expected,
        user(
            "alice.archer@corp.example.com",
            &a_alice,
            json!({"displayName": "Alice Archer", "mailNickname": "aarcher", "givenName": "Alice",
                   "surname": "Archer", "jobTitle": "Sales Director", "department": "Sales",
                   "companyName": "Corp Ltd", "mail": "alice.archer@corp.example.com",
                   "businessPhones": ["+49 30 1234"], "mobilePhone": "+49 170 1234",
                   "officeLocation": "BER-1", "streetAddress": "Unter den Linden 1",
                   "city": "Berlin", "state": "BE", "postalCode": "10117", "country": "Germany",
                   "usageLocation": "DE", "employeeId": "E100"}),
        ),
    );
    put(
        &mut expected,
        user(
            "bob.baker@corp.example.com",
            &a_bob,
            json!({"displayName": "Bob Baker", "mailNickname": "bbaker", "givenName": "Bob",
                   "surname": "Baker", "jobTitle": "Account Executive",
                   "manager": "alice.archer@corp.example.com"}),
        ),
    );
    put(
        &mut expected,
        user(
            "zoe.nunez@corp.example.com",
            &a_zoe,
            json!({"displayName": "Zoë Ñúñez", "mailNickname": "znunez", "givenName": "Zoë",
                   "surname": "Ñúñez", "city": "Málaga",
                   "manager": "alice.archer@corp.example.com"}),
        ),
    );
    put(
        &mut expected,
        user(
            "jsmith@corp.example.com",
            &a_john,
            json!({"displayName": "Smith, John", "mailNickname": "jsmith", "givenName": "John",
                   "surname": "Smith"}),
        ),
    );
    put(
        &mut expected,
        user(
            "dave.dormant@corp.example.com",
            &a_dave,
            json!({"displayName": "Dave Dormant", "mailNickname": "ddormant",
                   "accountEnabled": false}),
        ),
    );
    put(
        &mut expected,
        user(
            "eve@corp.example.com",
            &a_eve,
            json!({"displayName": "eve", "mailNickname": "eve"}),
        ),
    );
    put(
        &mut expected,
        user(
            "lee.kim@corp.example.com",
            &a_lee,
            json!({"displayName": "Lee+Kim", "mailNickname": "leekim",
                   "manager": "jsmith@corp.example.com"}),
        ),
    );
    let branch_dn = |i: usize| format!("CN=Branch User {i},{}", branch());
    for i in 1..=4 {
        put(
            &mut expected,
            user(
                &format!("branch{i}@corp.example.com"),
                &a(&branch_dn(i)),
                json!({"displayName": format!("Branch User {i}"),
                       "mailNickname": format!("branch{i}")}),
            ),
        );
    }
    put(
        &mut expected,
        group(
            "Sales Team",
            &a(&sales_team()),
            "salesteam",
            &[
                "alice.archer@corp.example.com",
                "bob.baker@corp.example.com",
                "zoe.nunez@corp.example.com",
            ],
            json!({"description": "EMEA and home sales"}),
        ),
    );
    put(
        &mut expected,
        group(
            "All Staff",
            &a(&all_staff()),
            "allstaff",
            &[
                "Sales Team",
                "jsmith@corp.example.com",
                "dave.dormant@corp.example.com",
                "eve@corp.example.com",
                "lee.kim@corp.example.com",
            ],
            json!({}),
        ),
    );
    put(
        &mut expected,
        group(
            "Branch Team",
            &a(&format!("CN=Branch Team,{}", branch())),
            "branchteam",
            &["branch1@corp.example.com", "branch2@corp.example.com"],
            json!({}),
        ),
    );

    let t = Instant::now();
    let runs = s
        .cycle(&cloud, CyclePolicy::Initial, &run, "initial")
        .expect("initial cycle");
    all_ok(&runs);
    let initial_secs = t.elapsed().as_secs_f64();
    let full_import = runs
        .iter()
        .find(|r| r.connector.as_deref() == Some("ad") && r.profile == "FullImport")
        .expect("ad full import")
        .counters
        .adds;
    s.settle(&cloud, "initial", 3);
    let v0 = assert_tenant(&cloud, &expected, "initial cycle");

    // Why the others are absent. The excluded OU is never read; the built-in exclusions
    // (critical system objects of CN=Users, MSOL_/AAD_ accounts, Exchange system mailboxes,
    // objects written back from the cloud) are imported but no rule takes them in; the
    // contact and the distribution group reach the metaverse but no outbound rule exports them.
    let cs = |dn: &str| cs_object(&s.active, dn);
    for dn in [
        format!("CN=Xavier Out,{}", excluded()),
        format!("CN=Excluded Group,{}", excluded()),
    ] {
        assert!(cs(&dn).is_none(), "{dn} is out of the partition scope");
    }
    for dn in [
        format!("CN=Administrator,CN=Users,{BASE}"),
        format!("CN=krbtgt,CN=Users,{BASE}"),
        format!("CN=Domain Admins,CN=Users,{BASE}"),
        format!("CN=MSOL_0123456789ab,{}", system_ou()),
        format!("CN=AAD_5f4dcc3b5aa7,{}", system_ou()),
        format!(
            "CN=SystemMailbox{{1f05a927-3e8b-4c5a-9a5e-1c2d3e4f5a6b}},{}",
            system_ou()
        ),
        format!("CN=Cloud Writeback User,{}", system_ou()),
        format!("CN=Cloud Writeback Group,{}", system_ou()),
    ] {
        let o = cs(&dn).unwrap_or_else(|| panic!("{dn} is imported"));
        assert_eq!(o.mv_id, None, "{dn} is a built-in exclusion");
    }
    for (dn, mv_type) in [
        (nina(), "person"),
        (format!("CN=Pat Partner,{}", sales()), "contact"),
        (format!("CN=Sales News,{}", sales()), "group"),
    ] {
        let o = cs(&dn).unwrap_or_else(|| panic!("{dn} is imported"));
        let mv = s
            .active
            .mv_objects(Some(o.mv_id.expect("projected")))
            .expect("mv");
        assert_eq!(mv.len(), 1);
        assert_eq!(mv[0].object_type, mv_type);
        let filtered: Vec<String> = mv[0]
            .attributes
            .get("cloudFiltered")
            .map(|v| v.iter().map(|x| x.to_text()).collect())
            .unwrap_or_default();
        let want: Vec<String> = if dn == nina() {
            vec!["True".into()]
        } else {
            Vec::new()
        };
        assert_eq!(filtered, want, "{dn}: cloudFiltered");
    }
    println!(
        "initial: {} tenant objects in {initial_secs:.1} s ({} cycles, {:.1} s to settle)",
        v0.objects.len(),
        s.cycles,
        s.secs
    );

    // --- 2. delta cycles (DirSync) --------------------------------------------------------------
    // Create, update (attributes and a membership removal), rename, move within scope.
    let frank = format!("CN=Frank Fresh,{}", eng_ou());
    dc.add(&entry(
        &frank,
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "ffresh"),
            ("userPrincipalName", "frank.fresh@corp.example.com"),
            ("userAccountControl", ENABLED),
            ("displayName", "Frank Fresh"),
            ("title", "Engineer"),
            ("manager", &john()),
        ],
    ));
    let robert = format!("CN=Robert Baker,{}", emea());
    dc.modify(&format!(
        "{}{}{}{}",
        change(
            &all_staff(),
            &format!("changetype: modify\nadd: member\nmember: {frank}\n")
        ),
        change(
            &bob(),
            "changetype: modify\nreplace: title\ntitle: Account Manager\n-\nreplace: telephoneNumber\ntelephoneNumber: +44 20 5555\n-\n"
        ),
        change(
            &sales_team(),
            &format!("changetype: modify\ndelete: member\n{}-\n", line("member", &zoe()))
        ),
        change(&eve(), "changetype: modrdn\nnewrdn: CN=Eve Evans\ndeleteoldrdn: 1\n"),
    ));
    dc.modify(&change(
        &bob(),
        &format!(
            "changetype: modrdn\nnewrdn: CN=Robert Baker\ndeleteoldrdn: 1\nnewsuperior: {}\n",
            emea()
        ),
    ));
    let a_frank = a(&frank);
    put(
        &mut expected,
        user(
            "frank.fresh@corp.example.com",
            &a_frank,
            json!({"displayName": "Frank Fresh", "mailNickname": "ffresh",
                   "jobTitle": "Engineer", "manager": "jsmith@corp.example.com"}),
        ),
    );
    patch(
        &mut expected,
        "user bob.baker@corp.example.com",
        json!({"jobTitle": "Account Manager", "businessPhones": ["+44 20 5555"]}),
    );
    patch(
        &mut expected,
        "group Sales Team",
        json!({"members": ["alice.archer@corp.example.com", "bob.baker@corp.example.com"]}),
    );
    patch(
        &mut expected,
        "group All Staff",
        json!({"members": ["Sales Team", "dave.dormant@corp.example.com", "eve@corp.example.com",
                           "frank.fresh@corp.example.com", "jsmith@corp.example.com",
                           "lee.kim@corp.example.com"]}),
    );
    patch(
        &mut expected,
        "user eve@corp.example.com",
        json!({"displayName": "Eve Evans"}),
    );
    // DirSync: the delta import reads the five changed objects, not the domain.
    let runs = s
        .cycle(&cloud, CyclePolicy::Delta, &run, "create/update/rename")
        .expect("delta cycle");
    all_ok(&runs);
    let imp = &runs
        .iter()
        .find(|r| r.connector.as_deref() == Some("ad") && r.profile == "DeltaImport")
        .expect("ad delta import")
        .counters;
    println!(
        "ad full import: {full_import} objects; DirSync delta import: {} add, {} update, {} rename",
        imp.adds, imp.updates, imp.renames
    );
    assert_eq!(imp.adds, 1, "{imp:?}");
    assert_eq!(imp.deletes, 0, "{imp:?}");
    assert!(imp.updates <= 4 && full_import > 30, "{imp:?}");
    s.settle(&cloud, "create/update/rename", 4);
    let v1 = assert_tenant(&cloud, &expected, "create/update/rename/move");
    same_ids(&v0, &v1, "create/update/rename/move");
    assert!(
        cs_object(&s.active, &robert).is_some_and(|o| o.mv_id.is_some()),
        "the renamed and moved user keeps its identity"
    );

    // Disable, change a manager, lift an attribute filter.
    dc.modify(&change(
        &alice(),
        &format!(
            "changetype: modify\nreplace: userAccountControl\nuserAccountControl: {DISABLED}\n-\n"
        ),
    ));
    // A manager change, to the renamed and moved user.
    dc.modify(&change(
        &zoe(),
        &format!("changetype: modify\nreplace: manager\nmanager: {robert}\n-\n"),
    ));
    patch(
        &mut expected,
        "user zoe.nunez@corp.example.com",
        json!({"manager": "bob.baker@corp.example.com"}),
    );
    // The attribute filter lifted: Nina arrives.
    dc.modify(&change(
        &nina(),
        "changetype: modify\ndelete: extensionAttribute15\n-\n",
    ));
    patch(
        &mut expected,
        "user alice.archer@corp.example.com",
        json!({"accountEnabled": false}),
    );
    put(
        &mut expected,
        user(
            "nina.nosync@corp.example.com",
            &a(&nina()),
            json!({"displayName": "Nina NoSync", "mailNickname": "nnosync"}),
        ),
    );
    s.settle(&cloud, "disable", 4);
    let v2 = assert_tenant(&cloud, &expected, "disable");
    same_ids(&v0, &v2, "disable");

    // Move out of scope (Lee+Kim into the excluded OU) and delete (Frank): soft deletes; the
    // memberships go with them.
    let lee_out = format!("CN=Lee\\+Kim,{}", excluded());
    let frank_guid = guid_string(&frank);
    dc.modify(&change(
        &leekim(),
        &format!(
            "changetype: modrdn\nnewrdn: CN=Lee\\+Kim\ndeleteoldrdn: 1\nnewsuperior: {}\n",
            excluded()
        ),
    ));
    let out = Command::new("ldapdelete")
        .args([
            "-x",
            "-H",
            "ldap://127.0.0.1",
            "-D",
            ADMIN,
            "-w",
            ADMIN_PW,
            &frank,
        ])
        .output()
        .expect("ldapdelete");
    assert!(out.status.success(), "{out:?}");
    soft_delete(&mut expected, "user lee.kim@corp.example.com");
    soft_delete(&mut expected, "user frank.fresh@corp.example.com");
    patch(
        &mut expected,
        "group All Staff",
        json!({"members": ["Sales Team", "dave.dormant@corp.example.com", "eve@corp.example.com",
                           "jsmith@corp.example.com"]}),
    );
    s.settle(&cloud, "scope exit and delete", 4);
    let v3 = assert_tenant(&cloud, &expected, "move out of scope, delete");
    assert_eq!(
        v3.ids["deleted user lee.kim@corp.example.com"],
        v0.ids["user lee.kim@corp.example.com"]
    );
    assert_eq!(
        v3.ids["deleted user frank.fresh@corp.example.com"],
        v1.ids["user frank.fresh@corp.example.com"]
    );

    // Restore: Lee+Kim moves back into scope (the same anchor returns); Frank is reanimated
    // from his tombstone when Samba allows it. Both must come back as the same cloud objects.
    dc.modify(&change(
        &lee_out,
        &format!(
            "changetype: modrdn\nnewrdn: CN=Lee\\+Kim\ndeleteoldrdn: 1\nnewsuperior: {}\n",
            eng_ou()
        ),
    ));
    // Samba 4.17 reanimates a tombstone (Recycle Bin off) over LDAP; required here so that
    // the restore path is always exercised.
    let route = reanimate(dc, &frank_guid, &frank)
        .unwrap_or_else(|e| panic!("tombstone reanimation of {frank} failed: {e}"));
    println!("tombstone reanimation of {frank}: {route}");
    let e = expected
        .remove("deleted user lee.kim@corp.example.com")
        .expect("lee");
    expected.insert("user lee.kim@corp.example.com".into(), e);
    patch(
        &mut expected,
        "group All Staff",
        json!({"members": ["Sales Team", "dave.dormant@corp.example.com", "eve@corp.example.com",
                           "jsmith@corp.example.com", "lee.kim@corp.example.com"]}),
    );
    // A tombstone keeps few attributes (no Recycle Bin): the UPN, title, manager and
    // group memberships are gone, so the restored cloud user shows the fallbacks.
    expected.remove("deleted user frank.fresh@corp.example.com");
    put(
        &mut expected,
        user(
            "ffresh@corp.example.com",
            &a_frank,
            json!({"displayName": "Frank Fresh", "mailNickname": "ffresh"}),
        ),
    );
    s.settle(&cloud, "restore", 4);
    let v4 = assert_tenant(&cloud, &expected, "restore");
    assert_eq!(
        v4.ids["user lee.kim@corp.example.com"], v0.ids["user lee.kim@corp.example.com"],
        "restored, not created"
    );
    assert_eq!(
        v4.ids["user ffresh@corp.example.com"], v1.ids["user frank.fresh@corp.example.com"],
        "restored, not created"
    );
    // The admin puts back what the tombstone lost: the same cloud user follows.
    dc.modify(&format!(
        "{}{}",
        change(
            &frank,
            &format!(
                "changetype: modify\nreplace: userPrincipalName\nuserPrincipalName: frank.fresh@corp.example.com\n-\nreplace: title\ntitle: Engineer\n-\nreplace: manager\n{}-\n",
                line("manager", &john())
            )
        ),
        change(
            &all_staff(),
            &format!("changetype: modify\nadd: member\nmember: {frank}\n")
        ),
    ));
    expected.remove("user ffresh@corp.example.com");
    put(
        &mut expected,
        user(
            "frank.fresh@corp.example.com",
            &a_frank,
            json!({"displayName": "Frank Fresh", "mailNickname": "ffresh",
                   "jobTitle": "Engineer", "manager": "jsmith@corp.example.com"}),
        ),
    );
    patch(
        &mut expected,
        "group All Staff",
        json!({"members": ["Sales Team", "dave.dormant@corp.example.com",
                           "eve@corp.example.com", "frank.fresh@corp.example.com",
                           "jsmith@corp.example.com", "lee.kim@corp.example.com"]}),
    );
    s.settle(&cloud, "restored attributes", 4);
    let v = assert_tenant(&cloud, &expected, "restored attributes");
    assert_eq!(
        v.ids["user frank.fresh@corp.example.com"],
        v1.ids["user frank.fresh@corp.example.com"]
    );

    // --- 3. renaming an included OU trips the deletion threshold ---------------------------------
    dc.modify(&change(
        &branch(),
        "changetype: modrdn\nnewrdn: OU=Branch Old\ndeleteoldrdn: 1\n",
    ));
    let before = view(&cloud);
    match s.cycle(&cloud, CyclePolicy::Delta, &run, "OU rename") {
        Err(EngineError::DeletionThreshold {
            connector, deletes, ..
        }) => {
            assert_eq!(connector, "aad");
            assert_eq!(deletes, 5, "four users and a group left the scope");
        }
        other => panic!("the OU rename did not stop at the threshold: {other:?}"),
    }
    assert_eq!(view(&cloud), before, "nothing was written");
    let history = s.active.history(5).expect("history");
    let stopped = history
        .iter()
        .find(|r| r.parent_id.is_none() && r.profile == "DeltaCycle")
        .expect("the cycle is in the history");
    assert_eq!(stopped.result, "stopped-deletion-threshold-exceeded");
    let why = stopped.message.clone().unwrap_or_default();
    assert!(why.contains('5') && why.contains("aad"), "{why}");
    println!("threshold stop: {why}");
    // Still stopped on the next cycle: the deletes wait for the admin.
    assert!(matches!(
        s.active.cycle(CyclePolicy::Delta, &run),
        Err(EngineError::DeletionThreshold { .. })
    ));
    assert_eq!(view(&cloud), before, "nothing was written");
    s.active.confirm_deletes().expect("confirm");
    for i in 1..=4 {
        soft_delete(&mut expected, &format!("user branch{i}@corp.example.com"));
    }
    soft_delete(&mut expected, "group Branch Team");
    s.settle(&cloud, "confirmed deletes", 4);
    let v5 = assert_tenant(&cloud, &expected, "confirmed deletes");
    same_ids(&v0, &v5, "confirmed deletes");

    // The admin undoes the rename: the four users and the group come back as the same
    // (restored) cloud objects, the group with its members.
    dc.modify(&change(
        &format!("OU=Branch Old,{BASE}"),
        "changetype: modrdn\nnewrdn: OU=Branch\ndeleteoldrdn: 1\n",
    ));
    for key in [
        "user branch1@corp.example.com",
        "user branch2@corp.example.com",
        "user branch3@corp.example.com",
        "user branch4@corp.example.com",
    ] {
        let v = expected.remove(&format!("deleted {key}")).expect("deleted");
        expected.insert(key.to_string(), v);
    }
    expected.remove("deleted group Branch Team");
    put(
        &mut expected,
        group(
            "Branch Team",
            &a(&format!("CN=Branch Team,{}", branch())),
            "branchteam",
            &["branch1@corp.example.com", "branch2@corp.example.com"],
            json!({}),
        ),
    );
    s.settle(&cloud, "OU rename undone", 4);
    let v6 = assert_tenant(&cloud, &expected, "OU rename undone");
    for key in [
        "user branch1@corp.example.com",
        "user branch4@corp.example.com",
        "group Branch Team",
    ] {
        assert_eq!(v6.ids[key], v0.ids[key], "{key}: restored, not created");
    }

    println!(
        "samba DC {dc_secs:.1} s; {} cycles on both servers in {:.1} s; total {:.1} s",
        s.cycles,
        s.secs,
        t0.elapsed().as_secs_f64()
    );

    // --- switch-over: the staging server becomes the active one -------------------------------
    // Converged next to the active server, it has nothing to export when promoted, and then
    // exports the next change itself.
    let Servers {
        active, staging, ..
    } = s;
    drop(active);
    drop(staging);
    let sdir = tmp.path().join("staging");
    let text = std::fs::read_to_string(sdir.join("dirsync.toml")).expect("config");
    std::fs::write(
        sdir.join("dirsync.toml"),
        text.replace("staging_mode = true", "staging_mode = false"),
    )
    .expect("config");
    let mut promoted = open(&sdir);
    let before = view(&cloud);
    let runs = promoted
        .cycle(CyclePolicy::Delta, &run)
        .expect("promoted cycle");
    all_ok(&runs);
    let exported: u64 = runs
        .iter()
        .map(|r| r.counters.export_adds + r.counters.export_updates + r.counters.export_deletes)
        .sum();
    assert_eq!(exported, 0, "the promoted server re-exported: {runs:#?}");
    assert_eq!(view(&cloud), before);
    dc.modify(&change(
        &dave(),
        "changetype: modify\nreplace: title\ntitle: Night Watch\n-\n",
    ));
    patch(
        &mut expected,
        "user dave.dormant@corp.example.com",
        json!({"jobTitle": "Night Watch"}),
    );
    all_ok(
        &promoted
            .cycle(CyclePolicy::Delta, &run)
            .expect("promoted cycle 2"),
    );
    let v7 = assert_tenant(&cloud, &expected, "after the switch-over");
    same_ids(&v0, &v7, "after the switch-over");
}

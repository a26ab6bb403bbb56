//! Microsoft Graph connector against the embedded Graph tenant emulator: paging, delta and
//! expired delta, `$batch` with partial failures, 429 storms, token expiry, conflicts, soft
//! delete and restore, lost answers and reruns without duplicates, contacts, certificate
//! authentication, and an end-to-end engine cycle (LDIF source -> Graph target).

use dirsync::connectors::{
    Connector, ConnectorError, ConnectorSpaceView, ExportErrorKind, ExportOperation, ExportOutcome,
    ExportRequest, ExportResult, ImportChange, build,
};
use dirsync::emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, Emulator, EmulatorConfig,
    EmulatorHandle, FaultConfig, ObjectKind, ThrottleConfig,
};
use dirsync::model::{AttributeChange, Attributes, Dn, Object, Value};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Test-only RSA key and self-signed certificate (generated with openssl for these tests).
const TEST_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDJmjQj4TJL6GZz
If8OUpx982fs3Y28dui7+ZAz5JuHgR53ZAJnzhuBqQ8soVx303nfuxlCTl1ZxQdd
vl3zPtPecQmvSEN2TIDeQGgrOo+HTa+oQwNlazibb0Zdu4OrmwtB/gLx8yvyMcFn
/842xLH+WJ5wS18awkW4sDvySvymy2SoxIAe/f0SV/9gY79Xj5+MkqLT4QBn3b7u
EFaWpZ3alxBIXpubn5zAioopf74CVvfNU85ZajZ03CJJUlzAm5jDA36UDOlS43gf
TGlABONh8qib6xmRyfMNmqMHYJG6de6NRyMNO4PMxpKh6PFDNAjmkE4LntpTot9W
9ztMnqZPAgMBAAECggEAXLUyW/uPrxOIpVJRYYtA1rSrqmO57Zx66xJZK1vp37bT
RVDywDyqLoaJaVss1BemWGnINFMoH4N5HzVPK/BM6uJtczMWftyweEQDAzoTTcO+
TvC+K5HSfrv9jlYQN0Z9t1OxlATgxSf3SjV65XmvZojnFzm52urSuBsm/gVYyPQ2
LgB+ufN6ijVa/FxJf93/KZZ0xgca83S+iqgQWWvfrKD10pvSRgAdIVdMZpLCGRW5
/ih2J5qU95sKaujZRDkfO2jZWMrAd9Oc8tKu2LgldjVbb5J7F9P6rT25i6d9Pgqy
1MAF0grOThJwUQmUFb7ZJ2x5KxaemOsfw04GrQbeIQKBgQD+FErqrHWpBPQVb3LU
y7uLloCnwpmJKX3xssnseyoQmQQw/4UN52mSUWRf+Ns/pE+nqoFCctYcMfSXQIOO
/CArEboedySpo0a+hkri4s3i9581SX941+X+ZvwVQg+riFv9bbv3lE1xtOO0cbyB
9ZdLQSdLokl6+1SfUKSBI0Ax7wKBgQDLIFrg+uVJcPMmJcymiem4sUGPHdW9Gvay
PLfchMB4ZNU0lJwzEOLOqNKKJNNTd7ir1G6ofgcF0Wb3qC+eAdNNrl0l8kGJE7Jh
DozkG/GlxdeJhLdq79z+lUu9TEdssQieXwcca3Tu7oiMQ54+95+/qUc/ZYAEWkQX
75xlIdexoQKBgE0CqZJno2IPdkvo88070ySEAYrXmOHSCbJwlnNvAVj2iCaxzApi
0cTflqTgMNQhYWNYcsVJOUxid9hAXZ/BG57ySI9jXWFtc8vbuGb8h5r7ou3r0Q83
oSZy4IUw+L7tHbS6xfZMpQyJ31qZ/qEFZ04P+XEbR1pXQ1bmgnYB0TtRAoGBAJ3Q
54rApAApV2CeIaCKqiIq5cqx3WxtVJoqfpdANOHVRajyhWFPj0gM9ncKIX5KGBq4
k7kpIX+tsBhefZB/zpIeFJT04WIFAaRSz7gy1c58JffcOz1EWykZCZ1rdFrIOPAC
2N2Fx3YTsdd4eaxma6FXfdmNnKbFEv6d1Z7lalXBAoGAFlGJKjDU2lf7cW3mFPMF
z9hiMuU22iuCKSEVzeew3FeU/GTJy9H/osdFgTxc2mKEgHQ29BebpG5EuLY+SUbZ
xPooqqzz/+S3uSoy5UR+W595EcuYvL7qQQixiAKUfO2WPCNJD1PmJJEiodQdM6Ya
jstuvrcKlhVYHUenKghlleQ=
-----END PRIVATE KEY-----";
const TEST_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIDHTCCAgWgAwIBAgIUbNTenZn5RfztyIpAFSCRvhk6MfgwDQYJKoZIhvcNAQEL
BQAwHTEbMBkGA1UEAwwSZGlyc3luYy1ncmFwaC10ZXN0MCAXDTI2MTEyMzEwMjY1
NloYDzIxMjYxMDMwMTAyNjU2WjAdMRswGQYDVQQDDBJkaXJzeW5jLWdyYXBoLXRl
c3QwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDJmjQj4TJL6GZzIf8O
Upx982fs3Y28dui7+ZAz5JuHgR53ZAJnzhuBqQ8soVx303nfuxlCTl1ZxQddvl3z
PtPecQmvSEN2TIDeQGgrOo+HTa+oQwNlazibb0Zdu4OrmwtB/gLx8yvyMcFn/842
xLH+WJ5wS18awkW4sDvySvymy2SoxIAe/f0SV/9gY79Xj5+MkqLT4QBn3b7uEFaW
pZ3alxBIXpubn5zAioopf74CVvfNU85ZajZ03CJJUlzAm5jDA36UDOlS43gfTGlA
BONh8qib6xmRyfMNmqMHYJG6de6NRyMNO4PMxpKh6PFDNAjmkE4LntpTot9W9ztM
nqZPAgMBAAGjUzBRMB0GA1UdDgQWBBSDEDBv4wotNonJzV21PQKZ7lbeKjAfBgNV
HSMEGDAWgBSDEDBv4wotNonJzV21PQKZ7lbeKjAPBgNVHRMBAf8EBTADAQH/MA0G
CSqGSIb3DQEBCwUAA4IBAQC8Dv3uJTt8qk3BJ9nNs2kn9PNXMwPRV4Td73P+Cvu6
nOXv2JtLzYtLqEh9Yz1UV98NEC9m7AnYNh+ce16RfM9ILZip8VtqmP1taxszcPX2
6OCH4LkM7t38MQUfpsSdiMRzzITWTOa4urmjpZ7XbQzFNrqDqDJSn+UpYhlU08wD
5weaJ8a+Pq6hT84zhCet25MpMGqDZjhxKiHGLiGYpLjOvjNT5WZiUp2rB8OYDg7R
70lGwLerCXDWg1r6/VtLXlW5rYlP/ZpbY1W0ThB6cMtUbRh2eLRwaI+0tI5bzb5f
LO9zFVwlU92rwqPli1BpmBYtCr4IokvAcVJUtzHyVwTm
-----END CERTIFICATE-----";
/// Another certificate (not matching the key above).
const OTHER_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIDAzCCAeugAwIBAgIUba8eHl5aXQEoUwPGBNMcZJrDhb0wDQYJKoZIhvcNAQEL
BQAwEDEOMAwGA1UEAwwFb3RoZXIwIBcNMjYxMTIzMTAyNjU3WhgPMjEyNjEwMzAx
MDI2NTdaMBAxDjAMBgNVBAMMBW90aGVyMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A
MIIBCgKCAQEAnVzJAcbu41WIU8fzqMv7oaaBcGscgWeJUh6pHQo+g9HNcBWarmRw
QK1dVfyOz7M3mbij5wcIstcVwU5Zlw0rRqah6bLfeXwT7+MEJ2h6EKqfufIEVEfs
eAI9e67cKdcW2QqaNL0vMRIi/AOslNtA5UkotSd09FPr4BhVRdju7wFDspwh2+91
U2PIMbRmA1jQOvhkZfIhFhJl0Uc3qG4CKVNG6f6qdaFDjTT8aVOEoikm6ir2JkhQ
Jw3qkW27pNLalkQbF5Wkeo1KOtsJdqjMMWgQikBcFv3Nw14J90oMMDkX6pMN62TH
xkmPV2DCcWOSC9VqPGc/WqQ3gfie80G8ZQIDAQABo1MwUTAdBgNVHQ4EFgQUT1E+
bqCg5lcXDZrLUeXkAzsJ0AQwHwYDVR0jBBgwFoAUT1E+bqCg5lcXDZrLUeXkAzsJ
0AQwDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAeN+ws12zSVZG
2X4cfjmomPdXRckrYokvc5UqJ+dTj9YvfA6sj+A68zkN1lIQm84+9PN4JNAsJ93u
wOroTnn1dNtqCB8RVwK3880ymMIM5kytHwPrq92yzEZyvUpUHSWWPWQhy1n0L1Gn
u/iOkN3zpqv2TnckIX5+epG2cA/IOX0fAbXBzyC76QsKLi9eFRXt5rtau9efLngt
DKwMfnOWFGShQTGcReNWfn2A++5mi4sOfmC5v3v/zlPC4+YXgzAlHqyfn+928+Gf
J9XC6YZy66X+QyeShC1hm0yDqTXhJvjfXqujn9fnGM4GGQOXcL/fAV22zXxLlmYw
sWPkT+Qbgw==
-----END CERTIFICATE-----";

/// An emulator on its own runtime, so connectors (which block) run on the test thread.
struct Env {
    rt: tokio::runtime::Runtime,
    h: Option<EmulatorHandle>,
    dir: tempfile::TempDir,
}

impl Env {
    fn new(cfg: EmulatorConfig) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let h = rt.block_on(Emulator::start(cfg)).expect("emulator");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("secret.txt"), DEFAULT_CLIENT_SECRET).expect("secret");
        Env {
            rt,
            h: Some(h),
            dir,
        }
    }
    fn default() -> Env {
        Env::new(EmulatorConfig::default())
    }
    fn h(&self) -> &EmulatorHandle {
        self.h.as_ref().expect("handle")
    }
    fn settings(&self) -> serde_json::Value {
        json!({
            "tenant_id": DEFAULT_TENANT_ID,
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret_file": "secret.txt",
            "authority": self.h().base_url(),
            "graph_url": self.h().graph_url(),
            "backoff_ms": 5,
            "max_wait_ms": 2000,
            "timeout_ms": 3000,
        })
    }
    fn connector_with(&self, extra: serde_json::Value) -> Box<dyn Connector> {
        let mut s = self.settings();
        if let (Some(m), Some(e)) = (s.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                m.insert(k.clone(), v.clone());
            }
        }
        build("graph", s, self.dir.path()).expect("graph connector")
    }
    fn connector(&self) -> Box<dyn Connector> {
        self.connector_with(json!({}))
    }
    fn users(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.h()
            .tenant()
            .objects
            .values()
            .filter(|o| o.kind == ObjectKind::User)
            .map(|o| o.props.clone())
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(h) = self.h.take() {
            let _ = self.rt.block_on(h.shutdown());
        }
    }
}

fn seed_user(h: &EmulatorHandle, upn: &str) -> String {
    h.seed(
        ObjectKind::User,
        json!({"accountEnabled": true, "displayName": upn, "mailNickname": upn.split('@').next().unwrap_or("x"),
               "userPrincipalName": upn, "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}}),
    )
    .expect("seed user")
}

/// A connector space built from import results.
#[derive(Default)]
struct Cs(HashMap<String, Object>);

impl Cs {
    fn apply(&mut self, changes: Vec<ImportChange>) {
        for c in changes {
            match c {
                ImportChange::Upsert(o) => {
                    self.0.insert(o.anchor.clone().expect("anchor"), o);
                }
                ImportChange::Delete { anchor } => {
                    self.0.remove(&anchor);
                }
            }
        }
    }
}

impl ConnectorSpaceView for Cs {
    fn by_anchor(&self, anchor: &str) -> Option<Object> {
        self.0.get(anchor).cloned()
    }
    fn by_dn(&self, dn: &Dn) -> Option<Object> {
        self.0.values().find(|o| &o.dn == dn).cloned()
    }
    fn descendants(&self, _dn: &Dn) -> Vec<Object> {
        Vec::new()
    }
}

fn s(v: &str) -> Vec<Value> {
    vec![Value::Str(v.to_string())]
}

fn add_user(id: i64, upn: &str, anchor: &str) -> ExportRequest {
    let mut a = Attributes::new();
    a.insert("userPrincipalName".into(), s(upn));
    a.insert(
        "displayName".into(),
        s(upn.split('@').next().unwrap_or(upn)),
    );
    a.insert("dirsyncAnchor".into(), s(anchor));
    ExportRequest {
        id,
        object_type: "user".into(),
        anchor: None,
        dn: Dn::parse(&format!("CN={anchor},OU=Placeholders")).expect("dn"),
        operation: ExportOperation::Add { attributes: a },
    }
}

fn outcome(results: &[ExportResult], id: i64) -> &ExportOutcome {
    &results
        .iter()
        .find(|r| r.id == id)
        .expect("result for request")
        .outcome
}

fn anchor_of(results: &[ExportResult], id: i64) -> String {
    match outcome(results, id) {
        ExportOutcome::Success { anchor: Some(a) } => a.clone(),
        other => panic!("request {id}: {other:?}"),
    }
}

fn all_ok(results: &[ExportResult]) {
    for r in results {
        assert!(
            matches!(r.outcome, ExportOutcome::Success { .. }),
            "request {}: {:?}",
            r.id,
            r.outcome
        );
    }
}

#[test]
fn full_import_pages_every_object_type_with_members_and_managers() {
    let e = Env::default();
    let h = e.h();
    let mut ids = Vec::new();
    for i in 0..230 {
        ids.push(seed_user(h, &format!("u{i:03}@contoso.com")));
    }
    let g = h
        .seed(
            ObjectKind::Group,
            json!({"displayName": "Big", "mailEnabled": false, "mailNickname": "big", "securityEnabled": true}),
        )
        .expect("group");
    for id in &ids[..150] {
        h.seed_member(&g, id).expect("member");
    }
    let c = h
        .seed(
            ObjectKind::Contact,
            json!({"displayName": "Ext", "mail": "ext@fabrikam.com"}),
        )
        .expect("contact");
    h.seed(
        ObjectKind::Device,
        json!({"displayName": "PC1", "operatingSystem": "Windows"}),
    )
    .expect("device");
    let mut conn = e.connector_with(json!({"page_size": 50}));
    // A manager, set through an export of a reference to the synthetic DN.
    let upd = ExportRequest {
        id: 1,
        object_type: "user".into(),
        anchor: Some(ids[1].clone()),
        dn: Dn::parse(&format!("CN={},OU=Users", ids[1])).expect("dn"),
        operation: ExportOperation::Update {
            changes: vec![AttributeChange::Replace {
                name: "manager".into(),
                values: vec![Value::Ref(format!("CN={},OU=Users", ids[0]))],
            }],
            new_dn: None,
        },
    };
    all_ok(&conn.export(&[upd]).expect("export"));
    let before = h.stats();
    let mut items: Vec<ImportChange> = Vec::new();
    let wm = conn.full_import(&mut items).expect("full import");
    assert!(wm.is_some());
    let objs: Vec<Object> = items
        .into_iter()
        .map(|c| match c {
            ImportChange::Upsert(o) => o,
            other => panic!("{other:?}"),
        })
        .collect();
    let count = |t: &str| objs.iter().filter(|o| o.object_type == t).count();
    assert_eq!(count("user"), 230);
    assert_eq!(count("group"), 1);
    assert_eq!(count("contact"), 1);
    assert_eq!(count("device"), 1);
    let group = objs
        .iter()
        .find(|o| o.object_type == "group")
        .expect("group");
    assert_eq!(group.dn.to_string(), format!("CN={g},OU=Groups"));
    assert_eq!(group.values("member").len(), 150);
    assert!(
        group
            .values("member")
            .contains(&Value::Ref(format!("CN={},OU=Users", ids[7])))
    );
    let u1 = objs
        .iter()
        .find(|o| o.anchor.as_deref() == Some(ids[1].as_str()))
        .expect("u1");
    assert_eq!(
        u1.values("manager"),
        &[Value::Ref(format!("CN={},OU=Users", ids[0]))]
    );
    assert_eq!(
        u1.first_text("userPrincipalName").as_deref(),
        Some("u001@contoso.com")
    );
    assert_eq!(u1.values("accountEnabled"), &[Value::Bool(true)]);
    let contact = objs
        .iter()
        .find(|o| o.object_type == "contact")
        .expect("contact");
    assert_eq!(contact.dn.to_string(), format!("CN={c},OU=Contacts"));
    // 230 users at 50 per page is 5 pages; 150 members fit a 999 page.
    let after = h.stats();
    assert!(
        after.requests - before.requests >= 9,
        "{before:?} {after:?}"
    );
}

#[test]
fn delta_merges_partial_changes_removals_and_members_then_expires() {
    let e = Env::default();
    let h = e.h();
    let a = seed_user(h, "a@contoso.com");
    let b = seed_user(h, "b@contoso.com");
    let g = h
        .seed(
            ObjectKind::Group,
            json!({"displayName": "G", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true}),
        )
        .expect("group");
    h.seed_member(&g, &a).expect("member");
    let mut conn = e.connector();
    let mut cs = Cs::default();
    let mut items = Vec::new();
    let wm = conn
        .full_import(&mut items)
        .expect("full")
        .expect("watermark");
    cs.apply(items);
    assert_eq!(cs.0.len(), 3);

    // Nothing changed: an empty delta.
    let mut items = Vec::new();
    let wm = conn
        .delta_import(&wm, &cs, &mut items)
        .expect("delta 0")
        .expect("wm");
    assert!(items.is_empty(), "{items:?}");

    // Change a's title, delete b, add b... no: add a new user c as member, remove a.
    let c = seed_user(h, "c@contoso.com");
    let reqs = vec![
        ExportRequest {
            id: 1,
            object_type: "user".into(),
            anchor: Some(a.clone()),
            dn: Dn::parse(&format!("CN={a},OU=Users")).expect("dn"),
            operation: ExportOperation::Update {
                changes: vec![AttributeChange::Replace {
                    name: "jobTitle".into(),
                    values: s("CEO"),
                }],
                new_dn: None,
            },
        },
        ExportRequest {
            id: 2,
            object_type: "user".into(),
            anchor: Some(b.clone()),
            dn: Dn::parse(&format!("CN={b},OU=Users")).expect("dn"),
            operation: ExportOperation::Delete,
        },
        ExportRequest {
            id: 3,
            object_type: "group".into(),
            anchor: Some(g.clone()),
            dn: Dn::parse(&format!("CN={g},OU=Groups")).expect("dn"),
            operation: ExportOperation::Update {
                changes: vec![
                    AttributeChange::Add {
                        name: "member".into(),
                        values: vec![Value::Ref(format!("CN={c},OU=Users"))],
                    },
                    AttributeChange::Remove {
                        name: "member".into(),
                        values: vec![Value::Ref(format!("CN={a},OU=Users"))],
                    },
                ],
                new_dn: None,
            },
        },
    ];
    all_ok(&conn.export(&reqs).expect("export"));
    let mut items = Vec::new();
    let wm = conn
        .delta_import(&wm, &cs, &mut items)
        .expect("delta 1")
        .expect("wm");
    let mut seen = BTreeMap::new();
    for i in &items {
        match i {
            ImportChange::Upsert(o) => {
                seen.insert(o.anchor.clone().expect("anchor"), Some(o.clone()));
            }
            ImportChange::Delete { anchor } => {
                seen.insert(anchor.clone(), None);
            }
        }
    }
    let ao = seen[&a].as_ref().expect("a upserted");
    assert_eq!(ao.first_text("jobTitle").as_deref(), Some("CEO"));
    // Merged onto the CS copy: unchanged properties are still there.
    assert_eq!(
        ao.first_text("userPrincipalName").as_deref(),
        Some("a@contoso.com")
    );
    assert!(seen[&b].is_none(), "b deleted");
    let go = seen[&g].as_ref().expect("group");
    assert_eq!(
        go.values("member"),
        &[Value::Ref(format!("CN={c},OU=Users"))]
    );
    assert_eq!(go.first_text("displayName").as_deref(), Some("G"));
    assert!(seen.contains_key(&c));
    cs.apply(items);

    // An expired delta token asks for a full import.
    h.expire_delta_tokens();
    let mut items = Vec::new();
    match conn.delta_import(&wm, &cs, &mut items) {
        Err(ConnectorError::WatermarkExpired(_)) => {}
        other => panic!("expected WatermarkExpired, got {other:?}"),
    }
}

#[test]
fn batch_with_partial_failures_conflicts_contacts_and_same_call_references() {
    let e = Env::default();
    let h = e.h();
    seed_user(h, "taken@contoso.com");
    h.seed(
        ObjectKind::User,
        json!({"accountEnabled": true, "displayName": "M", "mailNickname": "m",
               "userPrincipalName": "m@contoso.com", "mail": "shared@contoso.com",
               "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}}),
    )
    .expect("seed");
    let mut reqs: Vec<ExportRequest> = (0..30)
        .map(|i| add_user(i, &format!("n{i}@contoso.com"), &format!("anchor{i}")))
        .collect();
    reqs.push(add_user(100, "taken@contoso.com", "anchor100"));
    let mut dup_mail = add_user(101, "x101@contoso.com", "anchor101");
    if let ExportOperation::Add { attributes } = &mut dup_mail.operation {
        attributes.insert("mail".into(), s("shared@contoso.com"));
    }
    reqs.push(dup_mail);
    reqs.push(ExportRequest {
        id: 102,
        object_type: "contact".into(),
        anchor: None,
        dn: Dn::parse("CN=c,OU=Contacts").expect("dn"),
        operation: ExportOperation::Add {
            attributes: Attributes::new(),
        },
    });
    // A group whose members are created in the same call (placeholders) and one that fails.
    let mut ga = Attributes::new();
    ga.insert("displayName".into(), s("Staff"));
    ga.insert("dirsyncAnchor".into(), s("g1"));
    ga.insert(
        "member".into(),
        (0..25)
            .map(|i| Value::Ref(format!("CN=anchor{i},OU=Placeholders")))
            .chain(std::iter::once(Value::Ref(
                "CN=anchor100,OU=Placeholders".into(),
            )))
            .collect(),
    );
    reqs.push(ExportRequest {
        id: 103,
        object_type: "group".into(),
        anchor: None,
        dn: Dn::parse("CN=g1,OU=Placeholders").expect("dn"),
        operation: ExportOperation::Add {
            attributes: ga.clone(),
        },
    });
    let mut conn = e.connector();
    let res = conn.export(&reqs).expect("export");
    assert_eq!(res.len(), reqs.len());
    for i in 0..30 {
        anchor_of(&res, i);
    }
    match outcome(&res, 100) {
        ExportOutcome::Failed { kind, message } => {
            assert_eq!(
                *kind,
                ExportErrorKind::AttributeValueMustBeUnique,
                "{message}"
            );
            assert!(message.contains("userPrincipalName"), "{message}");
        }
        o => panic!("{o:?}"),
    }
    match outcome(&res, 101) {
        ExportOutcome::Failed { kind, message } => {
            assert_eq!(
                *kind,
                ExportErrorKind::AttributeValueMustBeUnique,
                "{message}"
            )
        }
        o => panic!("{o:?}"),
    }
    match outcome(&res, 102) {
        ExportOutcome::Failed { kind, message } => {
            assert_eq!(*kind, ExportErrorKind::NotSupported);
            assert_eq!(message, "contacts are read-only in Microsoft Graph");
        }
        o => panic!("{o:?}"),
    }
    // The group references a user whose create failed: a clear per-object error.
    match outcome(&res, 103) {
        ExportOutcome::Failed { message, .. } => {
            assert!(message.contains("anchor100"), "{message}")
        }
        o => panic!("{o:?}"),
    }
    let t = h.tenant();
    let group = t
        .objects
        .values()
        .find(|o| o.kind == ObjectKind::Group)
        .expect("group created");
    // The group exists; the members known at creation (none: all placeholders) are bound later.
    // Rerun without the failing reference: members from earlier placeholders resolve.
    ga.insert(
        "member".into(),
        (0..25)
            .map(|i| Value::Ref(format!("CN=anchor{i},OU=Placeholders")))
            .collect(),
    );
    let res2 = conn
        .export(&[ExportRequest {
            id: 103,
            object_type: "group".into(),
            anchor: None,
            dn: Dn::parse("CN=g1,OU=Placeholders").expect("dn"),
            operation: ExportOperation::Add { attributes: ga },
        }])
        .expect("export 2");
    assert_eq!(
        anchor_of(&res2, 103),
        group.id,
        "the rerun matched the group by anchor"
    );
    let t = h.tenant();
    assert_eq!(t.objects[&group.id].members.len(), 25);
    let ext = format!(
        "extension_{}_dirsyncAnchor",
        DEFAULT_CLIENT_ID.replace('-', "")
    );
    let n0 = t
        .objects
        .values()
        .find(|o| o.props.get(&ext) == Some(&json!("anchor0")))
        .expect("anchor written");
    assert_eq!(n0.props["onPremisesImmutableId"], json!("anchor0"));
    assert_eq!(n0.props["mailNickname"], json!("n0"));
    assert_eq!(
        t.objects
            .values()
            .filter(|o| o.kind == ObjectKind::Group)
            .count(),
        1
    );
}

#[test]
fn throttling_storm_is_absorbed_with_retry_after() {
    let e = Env::default();
    let h = e.h();
    // The tenant allows 40 writes per 400 ms; the client paces at 10x that, so it hits 429s.
    h.set_throttle(ThrottleConfig {
        enabled: true,
        writes_per_window: 40,
        window: Duration::from_millis(400),
    });
    let mut conn = e.connector_with(json!({"write_quota": 400, "write_quota_window_ms": 400}));
    let reqs: Vec<ExportRequest> = (0..150)
        .map(|i| add_user(i, &format!("t{i}@contoso.com"), &format!("ta{i}")))
        .collect();
    let res = conn.export(&reqs).expect("export");
    all_ok(&res);
    let st = h.stats();
    assert!(st.throttled > 0, "{st:?}");
    assert_eq!(e.users().len(), 150);

    // With the pacer at the tenant's quota there are (almost) no 429s.
    let e2 = Env::default();
    e2.h().set_throttle(ThrottleConfig {
        enabled: true,
        writes_per_window: 40,
        window: Duration::from_millis(400),
    });
    let mut conn = e2.connector_with(json!({"write_quota": 40, "write_quota_window_ms": 400}));
    let res = conn.export(&reqs).expect("export");
    all_ok(&res);
    assert!(e2.h().stats().throttled <= 3, "{:?}", e2.h().stats());
}

#[test]
fn access_token_expiry_mid_run_is_refreshed() {
    let e = Env::new(EmulatorConfig {
        token_lifetime: Duration::from_secs(3599),
        ..EmulatorConfig::default()
    });
    let h = e.h();
    let mut conn = e.connector();
    let first: Vec<ExportRequest> = (0..10)
        .map(|i| add_user(i, &format!("k{i}@contoso.com"), &format!("ka{i}")))
        .collect();
    all_ok(&conn.export(&first).expect("export 1"));
    h.expire_access_tokens();
    let second: Vec<ExportRequest> = (10..20)
        .map(|i| add_user(i, &format!("k{i}@contoso.com"), &format!("ka{i}")))
        .collect();
    all_ok(&conn.export(&second).expect("export 2"));
    h.expire_access_tokens();
    let mut items = Vec::new();
    conn.full_import(&mut items).expect("import after expiry");
    assert_eq!(items.len(), 20);
}

#[test]
fn wrong_secret_is_an_authentication_error_without_the_secret() {
    let e = Env::default();
    std::fs::write(e.dir.path().join("bad.txt"), "not-the-secret-123").expect("write");
    let mut conn = e.connector_with(json!({"client_secret_file": "bad.txt"}));
    let mut items = Vec::new();
    match conn.full_import(&mut items) {
        Err(ConnectorError::Authentication(m)) => {
            assert!(!m.contains("not-the-secret-123"), "{m}");
            assert!(m.contains("invalid_client"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn soft_delete_then_re_add_restores_the_same_object() {
    let e = Env::default();
    let h = e.h();
    let mut conn = e.connector();
    let res = conn
        .export(&[add_user(1, "r@contoso.com", "ra1")])
        .expect("create");
    let id = anchor_of(&res, 1);
    let del = ExportRequest {
        id: 2,
        object_type: "user".into(),
        anchor: Some(id.clone()),
        dn: Dn::parse(&format!("CN={id},OU=Users")).expect("dn"),
        operation: ExportOperation::Delete,
    };
    all_ok(&conn.export(std::slice::from_ref(&del)).expect("delete"));
    assert!(h.tenant().deleted.contains_key(&id));
    // Deleting again is not an error (already gone).
    all_ok(&conn.export(&[del]).expect("delete again"));
    let mut again = add_user(3, "r@contoso.com", "ra1");
    if let ExportOperation::Add { attributes } = &mut again.operation {
        attributes.insert("jobTitle".into(), s("Back"));
    }
    let res = conn.export(&[again]).expect("re-add");
    assert_eq!(anchor_of(&res, 3), id, "restored, not created");
    let t = h.tenant();
    assert!(t.deleted.is_empty());
    assert_eq!(t.objects[&id].props["jobTitle"], json!("Back"));
    assert_eq!(e.users().len(), 1);

    // The same through the anchor snapshot of a large export step.
    let mut conn = e.connector_with(json!({"lookup_snapshot_threshold": 1}));
    let del = ExportRequest {
        id: 4,
        object_type: "user".into(),
        anchor: Some(id.clone()),
        dn: Dn::parse(&format!("CN={id},OU=Users")).expect("dn"),
        operation: ExportOperation::Delete,
    };
    all_ok(&conn.export(&[del]).expect("delete"));
    let res = conn
        .export(&[add_user(5, "r@contoso.com", "ra1")])
        .expect("re-add");
    assert_eq!(anchor_of(&res, 5), id, "restored through the snapshot");
    assert!(h.tenant().deleted.is_empty());
    assert_eq!(e.users().len(), 1);
}

#[test]
fn dropped_connections_and_lost_results_never_duplicate() {
    let e = Env::default();
    let h = e.h();
    let mut conn =
        e.connector_with(json!({"batch_size": 10, "concurrency": 1, "max_wait_ms": 100}));
    h.set_faults(FaultConfig {
        drop_every_nth: Some(3),
        fail_every_nth: Some(7),
        ..FaultConfig::default()
    });
    let reqs: Vec<ExportRequest> = (0..60)
        .map(|i| add_user(i, &format!("d{i}@contoso.com"), &format!("da{i}")))
        .collect();
    let res = conn.export(&reqs).expect("export under faults");
    all_ok(&res);
    h.set_faults(FaultConfig::default());
    assert_eq!(e.users().len(), 60, "no duplicates");
    // The engine never recorded those results (crash): it runs the same adds again.
    // The rerun reads the tenant's anchors once (snapshot) instead of looking them up.
    let mut fresh = e.connector_with(json!({"lookup_snapshot_threshold": 1}));
    let res2 = fresh.export(&reqs).expect("rerun");
    for i in 0..60 {
        assert_eq!(anchor_of(&res2, i), anchor_of(&res, i));
    }
    assert_eq!(e.users().len(), 60, "the rerun created nothing");
}

#[test]
fn certificate_client_assertion_authenticates() {
    let mut cfg = EmulatorConfig::default();
    cfg.apps[0].certificate_pem = Some(TEST_CERT_PEM.to_string());
    cfg.apps[0].client_secret = None;
    let e = Env::new(cfg);
    seed_user(e.h(), "cert@contoso.com");
    std::fs::write(e.dir.path().join("key.pem"), TEST_KEY_PEM).expect("key");
    std::fs::write(e.dir.path().join("cert.pem"), TEST_CERT_PEM).expect("cert");
    std::fs::write(e.dir.path().join("other.pem"), OTHER_CERT_PEM).expect("cert");
    let mut s = e.settings();
    if let Some(m) = s.as_object_mut() {
        m.remove("client_secret_file");
        m.insert(
            "certificate".into(),
            json!({"key_file": "key.pem", "cert_file": "cert.pem"}),
        );
    }
    let mut conn = build("graph", s.clone(), e.dir.path()).expect("connector");
    let mut items = Vec::new();
    conn.full_import(&mut items)
        .expect("import with a certificate");
    assert_eq!(items.len(), 1);
    // The wrong certificate's thumbprint is refused.
    s["certificate"]["cert_file"] = json!("other.pem");
    let mut conn = build("graph", s, e.dir.path()).expect("connector");
    match conn.full_import(&mut Vec::new()) {
        Err(ConnectorError::Authentication(m)) => {
            assert!(m.contains("invalid_client") || m.contains("AADSTS"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn soft_match_on_upn_adopts_a_cloud_user() {
    let e = Env::default();
    let id = seed_user(e.h(), "cloud@contoso.com");
    let mut conn = e.connector_with(json!({"soft_match": "upn"}));
    let res = conn
        .export(&[add_user(1, "cloud@contoso.com", "sm1")])
        .expect("export");
    assert_eq!(anchor_of(&res, 1), id);
    assert_eq!(e.users().len(), 1);
    // Off by default: the same add is a conflict.
    let mut conn = e.connector();
    let res = conn
        .export(&[add_user(1, "cloud@contoso.com", "sm2")])
        .expect("export");
    assert!(matches!(
        outcome(&res, 1),
        ExportOutcome::Failed {
            kind: ExportErrorKind::AttributeValueMustBeUnique,
            ..
        }
    ));
}

const E2E_RULES: &str = r#"
[[rules]]
name = "src user in"
direction = "inbound"
connector = "src"
source_type = "user"
target_type = "person"
precedence = 100
link_type = "provision"
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
[[rules.flows]]
target = "sourceAnchor"
expression = '"u" & [employeeNumber]'

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
[[rules.flows]]
target = "sourceAnchor"
expression = '"g" & [cn]'

[[rules]]
name = "aad user in"
direction = "inbound"
connector = "aad"
source_type = "user"
target_type = "person"
precedence = 200
[[rules.join]]
clauses = [{ source = "dirsyncAnchor", target = "sourceAnchor" }]
[[rules.flows]]
target = "cloudId"
source = "id"

[[rules]]
name = "aad group in"
direction = "inbound"
connector = "aad"
source_type = "group"
target_type = "group"
precedence = 210
[[rules.join]]
clauses = [{ source = "dirsyncAnchor", target = "sourceAnchor" }]
[[rules.flows]]
target = "cloudId"
source = "id"

[[rules]]
name = "user out"
direction = "outbound"
connector = "aad"
source_type = "person"
target_type = "user"
precedence = 100
link_type = "provision"
[[rules.flows]]
target = "dn"
expression = 'IIF(IsPresent([cloudId]), "CN=" & [cloudId] & ",OU=Users", "CN=" & [uid] & ",OU=New")'
[[rules.flows]]
target = "userPrincipalName"
expression = '[uid] & "@contoso.com"'
[[rules.flows]]
target = "displayName"
source = "sn"
[[rules.flows]]
target = "jobTitle"
source = "title"
[[rules.flows]]
target = "manager"
source = "manager"
[[rules.flows]]
target = "dirsyncAnchor"
source = "sourceAnchor"

[[rules]]
name = "group out"
direction = "outbound"
connector = "aad"
source_type = "group"
target_type = "group"
precedence = 110
link_type = "provision"
[[rules.flows]]
target = "dn"
expression = 'IIF(IsPresent([cloudId]), "CN=" & [cloudId] & ",OU=Groups", "CN=" & [cn] & ",OU=New")'
[[rules.flows]]
target = "displayName"
source = "cn"
[[rules.flows]]
target = "member"
source = "member"
[[rules.flows]]
target = "dirsyncAnchor"
source = "sourceAnchor"
"#;

const E2E_SOURCE: &str = "version: 1

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

dn: cn=staff,ou=g,dc=s
objectClass: groupOfNames
cn: staff
member: uid=ann,ou=p,dc=s
member: uid=bob,ou=p,dc=s
entryUUID: 00000000-0000-0000-0000-0000000000aa
";

/// The tenant as UPN -> (jobTitle, manager UPN) and group name -> member UPNs.
type TenantView = (
    BTreeMap<String, (String, String)>,
    BTreeMap<String, Vec<String>>,
);

fn tenant_view(h: &EmulatorHandle) -> TenantView {
    let t = h.tenant();
    let upn = |id: &str| {
        t.objects
            .get(id)
            .and_then(|o| o.props.get("userPrincipalName"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let mut users = BTreeMap::new();
    let mut groups = BTreeMap::new();
    for o in t.objects.values() {
        match o.kind {
            ObjectKind::User => {
                users.insert(
                    upn(&o.id),
                    (
                        o.props
                            .get("jobTitle")
                            .and_then(|v| v.as_str())
                            .unwrap_or("")
                            .to_string(),
                        o.manager.as_deref().map(upn).unwrap_or_default(),
                    ),
                );
            }
            ObjectKind::Group => {
                let mut m: Vec<String> = o.members.iter().map(|id| upn(id)).collect();
                m.sort();
                groups.insert(
                    o.props
                        .get("displayName")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string(),
                    m,
                );
            }
            _ => {}
        }
    }
    (users, groups)
}

#[test]
fn engine_cycles_from_ldif_into_graph() {
    engine_e2e(E2E_RULES);
}

/// Outbound DNs that never become the Graph DNs: renames are accepted (the DN extension keeps
/// the engine's name), and references by those DNs resolve in later sessions.
#[test]
fn engine_cycles_with_placeholder_dns() {
    let rules = E2E_RULES
        .replace(
            r#"'IIF(IsPresent([cloudId]), "CN=" & [cloudId] & ",OU=Users", "CN=" & [uid] & ",OU=New")'"#,
            r#"'"CN=" & [uid] & ",OU=New"'"#,
        )
        .replace(
            r#"'IIF(IsPresent([cloudId]), "CN=" & [cloudId] & ",OU=Groups", "CN=" & [cn] & ",OU=New")'"#,
            r#"'"CN=" & [cn] & ",OU=New"'"#,
        );
    assert_ne!(rules, E2E_RULES);
    engine_e2e(&rules);
}

fn engine_e2e(rules: &str) {
    use dirsync::config::Config;
    use dirsync::engine::{CyclePolicy, Engine, RunOptions};
    let e = Env::default();
    let d = e.dir.path();
    let config = format!(
        r#"
[state]
path = "state.db"

[[connectors]]
name = "src"
type = "ldif"
[connectors.settings]
path = "src.ldif"
changes_dir = "changes"

[[connectors]]
name = "aad"
type = "graph"
[connectors.settings]
tenant_id = "{DEFAULT_TENANT_ID}"
client_id = "{DEFAULT_CLIENT_ID}"
client_secret_file = "secret.txt"
authority = "{}"
graph_url = "{}"
backoff_ms = 5
{rules}"#,
        e.h().base_url(),
        e.h().graph_url()
    );
    std::fs::write(d.join("dirsync.toml"), config).expect("config");
    std::fs::write(d.join("src.ldif"), E2E_SOURCE).expect("source");
    std::fs::create_dir_all(d.join("changes")).expect("changes");
    let opts = RunOptions {
        allow_empty_import: true,
        ..RunOptions::default()
    };
    let mut eng = Engine::open(Config::load(&d.join("dirsync.toml")).expect("load")).expect("open");
    let runs = eng.cycle(CyclePolicy::Initial, &opts).expect("initial");
    assert!(runs.iter().all(|r| r.result == "success"), "{runs:#?}");
    // The next cycle confirms the exports (and finishes references to new objects).
    let runs = eng
        .cycle(CyclePolicy::Delta, &opts)
        .expect("confirming delta");
    assert!(runs.iter().all(|r| r.result == "success"), "{runs:#?}");
    let want_users: BTreeMap<String, (String, String)> = [
        ("ann@contoso.com", ("Boss", "")),
        ("bob@contoso.com", ("Clerk", "ann@contoso.com")),
    ]
    .iter()
    .map(|(u, (t, m))| (u.to_string(), (t.to_string(), m.to_string())))
    .collect();
    let want_groups: BTreeMap<String, Vec<String>> = [(
        "staff".to_string(),
        vec!["ann@contoso.com".to_string(), "bob@contoso.com".to_string()],
    )]
    .into_iter()
    .collect();
    assert_eq!(
        tenant_view(e.h()),
        (want_users.clone(), want_groups.clone())
    );

    // A quiet cycle writes nothing.
    let runs = eng.cycle(CyclePolicy::Delta, &opts).expect("quiet");
    let exported: u64 = runs
        .iter()
        .map(|r| r.counters.export_adds + r.counters.export_updates + r.counters.export_deletes)
        .sum();
    assert_eq!(exported, 0, "{runs:#?}");

    // Changes: a title, a new member, and bob leaves the group.
    std::fs::write(
        d.join("changes").join("0001.ldif"),
        "version: 1\n\ndn: uid=cy,ou=p,dc=s\nchangetype: add\nobjectClass: inetOrgPerson\nuid: cy\nsn: Cy\nemployeeNumber: 3\nentryUUID: 00000000-0000-0000-0000-000000000003\n\ndn: uid=ann,ou=p,dc=s\nchangetype: modify\nreplace: title\ntitle: Chief\n-\n\ndn: cn=staff,ou=g,dc=s\nchangetype: modify\nadd: member\nmember: uid=cy,ou=p,dc=s\n-\ndelete: member\nmember: uid=bob,ou=p,dc=s\n-\n",
    )
    .expect("change");
    for _ in 0..2 {
        let runs = eng.cycle(CyclePolicy::Delta, &opts).expect("delta");
        assert!(runs.iter().all(|r| r.result == "success"), "{runs:#?}");
    }
    let mut users = want_users;
    users.insert("ann@contoso.com".into(), ("Chief".into(), String::new()));
    users.insert("cy@contoso.com".into(), (String::new(), String::new()));
    let groups: BTreeMap<String, Vec<String>> = [(
        "staff".to_string(),
        vec!["ann@contoso.com".to_string(), "cy@contoso.com".to_string()],
    )]
    .into_iter()
    .collect();
    assert_eq!(tenant_view(e.h()), (users, groups));
    assert_eq!(e.users().len(), 3);
}

#[test]
fn unreachable_graph_is_a_connection_error() {
    let e = Env::default();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut conn = e.connector_with(json!({
        "graph_url": format!("http://127.0.0.1:{port}/v1.0"),
        "max_retries": 1,
    }));
    match conn.full_import(&mut Vec::new()) {
        Err(ConnectorError::Connection { .. }) => {}
        other => panic!("{other:?}"),
    }
}

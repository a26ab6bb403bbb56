//! The Active Directory connector against a real Samba AD DC on loopback (provisioned once per
//! test binary; each test works in its own OU).

mod support;

use base64::Engine as _;
use dirsync::connectors::ldap::connection::LdapClient;
use dirsync::connectors::ldap::{AdConnector, AdSettings, ConnectionSettings};
use dirsync::connectors::{
    Connector, ConnectorError, ExportOperation, ExportOutcome, ExportRequest, ImportChange,
};
use dirsync::model::{AttributeChange, Dn, Object, Value};
use support::MemCs;
use support::samba::{ADMIN, ADMIN_PW, BASE, DC_NAME, Samba};

fn settings(dir: &std::path::Path, url: &str, include: &[String], page: u32) -> AdSettings {
    let pw = dir.join("admin.pw");
    std::fs::write(&pw, ADMIN_PW).expect("password file");
    let include: Vec<String> = include.iter().map(|s| format!("\"{s}\"")).collect();
    let text = format!(
        r#"
        page_size = {page}
        object_types = ["user", "group", "contact", "computer"]
        [[partitions]]
        base = "{BASE}"
        include = [{inc}]
        [connection]
        url = "{url}"
        bind_dn = "{ADMIN}"
        bind_password_file = "{pw}"
        connect_attempts = 1
        "#,
        inc = include.join(", "),
        pw = pw.display(),
    );
    toml::from_str(&text).expect("settings")
}

fn upserts(changes: &[ImportChange]) -> Vec<Object> {
    changes
        .iter()
        .filter_map(|c| match c {
            ImportChange::Upsert(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

fn user_ldif(name_rdn: &str, parent: &str, sam: &str) -> String {
    format!("dn: CN={name_rdn},{parent}\nobjectClass: user\nsAMAccountName: {sam}\n\n")
}

#[test]
fn ad_full_import_nested_ous_types_special_names_and_paging() {
    if !support::require_root(
        "samba",
        "ad_full_import_nested_ous_types_special_names_and_paging",
    ) {
        return;
    }
    let dc = Samba::shared();
    let ou = dc.fresh_ou("FullImport");
    let sub = format!("OU=Sub,{ou}");
    let deeper = format!("OU=Deeper,{sub}");
    let mut ldif = format!(
        "dn: {sub}\nobjectClass: organizationalUnit\n\ndn: {deeper}\nobjectClass: organizationalUnit\n\n"
    );
    for i in 0..12 {
        let parent = [&ou, &sub, &deeper][i % 3];
        ldif.push_str(&user_ldif(
            &format!("fi user {i}"),
            parent,
            &format!("fiuser{i}"),
        ));
    }
    ldif.push_str(&user_ldif(
        "Smith\\, John \\+ \\\"Jr\\\" \\<x\\>\\;y\\=z",
        &sub,
        "fismith",
    ));
    ldif.push_str(&user_ldif("\\#lead\\ ", &sub, "filead"));
    ldif.push_str(&format!(
        "dn:: {}\nobjectClass: user\nsAMAccountName: fiunicode\n\n",
        base64::engine::general_purpose::STANDARD.encode(format!("CN=Zoë Ünïcode 日本,{deeper}"))
    ));
    ldif.push_str(&format!(
        "dn: CN=fi-inner,{sub}\nobjectClass: group\nsAMAccountName: fi-inner\nmember: CN=fi user 1,{sub}\n\n\
         dn: CN=fi-outer,{ou}\nobjectClass: group\nsAMAccountName: fi-outer\nmember: CN=fi-inner,{sub}\nmember: CN=fi user 0,{ou}\n\n\
         dn: CN=fi contact,{deeper}\nobjectClass: contact\nmail: contact@example.org\n\n\
         dn: CN=FIPC01,{sub}\nobjectClass: computer\nsAMAccountName: FIPC01$\n\n"
    ));
    dc.add(&ldif);
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = AdConnector::new(settings(
        dir.path(),
        "ldap://127.0.0.1",
        std::slice::from_ref(&ou),
        5,
    ))
    .expect("connector");
    let t = std::time::Instant::now();
    let mut out: Vec<ImportChange> = Vec::new();
    let wm = c.full_import(&mut out).expect("full import");
    println!(
        "AD full import of {} objects in {:?}",
        out.len(),
        t.elapsed()
    );
    assert!(wm.is_some());
    let objs = upserts(&out);
    assert_eq!(
        objs.len(),
        19,
        "{:#?}",
        objs.iter().map(|o| o.dn.to_string()).collect::<Vec<_>>()
    );
    let count = |t: &str| objs.iter().filter(|o| o.object_type == t).count();
    assert_eq!(
        (
            count("user"),
            count("group"),
            count("contact"),
            count("computer")
        ),
        (15, 2, 1, 1)
    );
    for o in &objs {
        let anchor = o.anchor.clone().expect("anchor");
        let guid = dirsync::connectors::ldap::ad::guid_bytes(&anchor).expect("anchor is a GUID");
        assert_eq!(o.values("objectGUID"), &[Value::Bin(guid.clone())]);
        assert_eq!(
            o.first_text("sourceAnchor"),
            Some(dirsync::connectors::ldap::ad::immutable_id(&guid))
        );
        if o.object_type != "contact" {
            assert!(
                o.first_text("objectSid")
                    .is_some_and(|s| s.starts_with("S-1-5-21-")),
                "{o:?}"
            );
        }
    }
    let by_rdn = |v: &str| {
        objs.iter()
            .find(|o| o.dn.rdn().map(|r| r.value()) == Some(v))
    };
    let smith = by_rdn("Smith, John + \"Jr\" <x>;y=z").expect("special DN");
    assert_eq!(
        smith.first_text("sAMAccountName").as_deref(),
        Some("fismith")
    );
    assert!(by_rdn("#lead ").is_some(), "leading # and trailing space");
    assert!(by_rdn("Zoë Ünïcode 日本").is_some(), "unicode");
    let outer = by_rdn("fi-outer").expect("outer group");
    let members: Vec<String> = outer.values("member").iter().map(|v| v.to_text()).collect();
    assert_eq!(members.len(), 2);
    assert!(
        members.iter().any(|m| m.starts_with("CN=fi-inner")),
        "{members:?}"
    );
    assert!(matches!(outer.values("member")[0], Value::Ref(_)));
    let schema = c.schema().expect("schema");
    let group = &schema.object_types["group"];
    assert_eq!(
        group.attributes["member"].ty,
        dirsync::model::AttrType::Reference
    );
    assert!(group.attributes["member"].multi_valued);
    let user = &schema.object_types["user"];
    assert_eq!(
        user.attributes["objectGUID"].ty,
        dirsync::model::AttrType::Binary
    );
    assert!(!user.attributes["objectGUID"].multi_valued);
    assert_eq!(
        user.attributes["objectSid"].ty,
        dirsync::model::AttrType::String
    );
    assert_eq!(
        user.attributes["userAccountControl"].ty,
        dirsync::model::AttrType::Integer
    );
    assert_eq!(
        user.attributes["sourceAnchor"].ty,
        dirsync::model::AttrType::String
    );
    let pc = by_rdn("FIPC01").expect("computer");
    assert_eq!(pc.object_type, "computer");
    assert!(matches!(
        pc.first("userAccountControl"),
        Some(Value::Int(_))
    ));
}

#[test]
fn ad_dirsync_delta_add_modify_rename_move_delete_disable_and_ou_rename() {
    if !support::require_root(
        "samba",
        "ad_dirsync_delta_add_modify_rename_move_delete_disable_and_ou_rename",
    ) {
        return;
    }
    delta_scenario("Delta", "dl", "");
}

#[test]
fn ad_usn_changed_delta_add_modify_rename_move_delete_disable_and_ou_rename() {
    if !support::require_root(
        "samba",
        "ad_usn_changed_delta_add_modify_rename_move_delete_disable_and_ou_rename",
    ) {
        return;
    }
    delta_scenario("UsnDelta", "us", "usn_changed");
}

/// One scenario for both delta methods: `tag` names the OUs, `sam` prefixes account names.
fn delta_scenario(tag: &str, sam: &str, method: &str) {
    let dc = Samba::shared();
    let ou = dc.fresh_ou(tag);
    let outside = dc.fresh_ou(&format!("{tag}Outside"));
    let child = format!("OU=Child1,{ou}");
    let mut ldif = format!("dn: {child}\nobjectClass: organizationalUnit\n\n");
    for n in ["a", "b", "c", "f"] {
        ldif.push_str(&user_ldif(&format!("dl {n}"), &child, &format!("{sam}{n}")));
    }
    ldif.push_str(&user_ldif("dl d", &ou, &format!("{sam}d")));
    ldif.push_str(&format!(
        "dn: CN=dl grp,{ou}\nobjectClass: group\nsAMAccountName: {sam}grp\nmember: CN=dl a,{child}\nmember: CN=dl d,{ou}\n\n"
    ));
    dc.add(&ldif);
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = settings(
        dir.path(),
        "ldap://127.0.0.1",
        std::slice::from_ref(&ou),
        100,
    );
    if method == "usn_changed" {
        s.delta = dirsync::connectors::ldap::AdDeltaMethod::UsnChanged;
    }
    let mut c = AdConnector::new(s).expect("connector");
    let mut full: Vec<ImportChange> = Vec::new();
    let wm = c.full_import(&mut full).expect("full").expect("watermark");
    let mut cs = MemCs::default();
    cs.apply(&full);
    assert_eq!(cs.objects.len(), 6);
    let anchor = |cs: &MemCs, n: &str| cs.by_rdn(n).and_then(|o| o.anchor.clone()).expect(n);
    let (a, b, cc, d, f) = (
        anchor(&cs, "dl a"),
        anchor(&cs, "dl b"),
        anchor(&cs, "dl c"),
        anchor(&cs, "dl d"),
        anchor(&cs, "dl f"),
    );

    // Quiet: an empty delta.
    let mut d0: Vec<ImportChange> = Vec::new();
    let wm = c
        .delta_import(&wm, &cs, &mut d0)
        .expect("delta 0")
        .expect("wm");
    assert!(d0.is_empty(), "{d0:#?}");

    dc.add(&user_ldif("dl e", &ou, &format!("{sam}e")));
    dc.modify(&format!(
        "dn: CN=dl b,{child}\nchangetype: modify\nreplace: description\ndescription: changed\n-\nreplace: userAccountControl\nuserAccountControl: 514\n\n\
         dn: CN=dl c,{child}\nchangetype: modrdn\nnewrdn: CN=dl c2\ndeleteoldrdn: 1\n\n\
         dn: CN=dl d,{ou}\nchangetype: modrdn\nnewrdn: CN=dl d\ndeleteoldrdn: 1\nnewsuperior: {outside}\n\n\
         dn: CN=dl a,{child}\nchangetype: delete\n\n\
         dn: {child}\nchangetype: modrdn\nnewrdn: OU=Child1Renamed\ndeleteoldrdn: 1\n"
    ));
    let mut d1: Vec<ImportChange> = Vec::new();
    let t = std::time::Instant::now();
    let wm = c
        .delta_import(&wm, &cs, &mut d1)
        .expect("delta 1")
        .expect("wm");
    println!(
        "DirSync delta with {} changes in {:?}",
        d1.len(),
        t.elapsed()
    );
    let deletes: Vec<&String> = d1
        .iter()
        .filter_map(|c| match c {
            ImportChange::Delete { anchor } => Some(anchor),
            _ => None,
        })
        .collect();
    assert!(deletes.contains(&&a), "deleted user: {d1:#?}");
    assert!(deletes.contains(&&d), "moved out of scope: {d1:#?}");
    assert_eq!(deletes.len(), 2, "{d1:#?}");
    cs.apply(&d1);
    let renamed = format!("OU=Child1Renamed,{ou}");
    let get = |cs: &MemCs, a: &str| {
        cs.objects
            .get(a)
            .cloned()
            .expect("object in the connector space")
    };
    let ob = get(&cs, &b);
    assert_eq!(ob.dn, Dn::parse(&format!("CN=dl b,{renamed}")).expect("dn"));
    assert_eq!(ob.first_text("description").as_deref(), Some("changed"));
    assert_eq!(ob.first("userAccountControl"), Some(&Value::Int(514)));
    assert_eq!(
        get(&cs, &cc).dn,
        Dn::parse(&format!("CN=dl c2,{renamed}")).expect("dn")
    );
    // f did not change itself: its new DN comes from the renamed parent.
    assert_eq!(
        get(&cs, &f).dn,
        Dn::parse(&format!("CN=dl f,{renamed}")).expect("dn")
    );
    assert!(cs.by_rdn("dl e").is_some(), "added user");
    // The group lost the deleted member and follows the moved one (re-read although DirSync
    // does not report link value changes made by the DC itself).
    let grp = cs.by_rdn("dl grp").expect("group");
    assert_eq!(
        grp.values("member"),
        &[Value::Ref(format!("CN=dl d,{outside}"))],
        "{:?}",
        grp.values("member")
    );
    assert_eq!(cs.objects.len(), 5);

    // Enable again: a one-attribute change comes back with the full object.
    dc.modify(&format!(
        "dn: CN=dl b,{renamed}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 512\n"
    ));
    let mut d2: Vec<ImportChange> = Vec::new();
    let wm = c
        .delta_import(&wm, &cs, &mut d2)
        .expect("delta 2")
        .expect("wm");
    let ups = upserts(&d2);
    assert_eq!(ups.len(), 1, "{d2:#?}");
    assert_eq!(ups[0].first("userAccountControl"), Some(&Value::Int(512)));
    assert_eq!(
        ups[0].first_text("sAMAccountName").as_deref(),
        Some(format!("{sam}b").as_str())
    );
    cs.apply(&d2);

    // Move within the scope, and back into the scope from outside.
    dc.modify(&format!(
        "dn: CN=dl f,{renamed}\nchangetype: modrdn\nnewrdn: CN=dl f\ndeleteoldrdn: 1\nnewsuperior: {ou}\n\n\
         dn: CN=dl d,{outside}\nchangetype: modrdn\nnewrdn: CN=dl d\ndeleteoldrdn: 1\nnewsuperior: {renamed}\n"
    ));
    let mut d3: Vec<ImportChange> = Vec::new();
    c.delta_import(&wm, &cs, &mut d3).expect("delta 3");
    cs.apply(&d3);
    assert_eq!(
        get(&cs, &f).dn,
        Dn::parse(&format!("CN=dl f,{ou}")).expect("dn"),
        "{d3:#?}"
    );
    assert_eq!(
        get(&cs, &d).dn,
        Dn::parse(&format!("CN=dl d,{renamed}")).expect("dn"),
        "back in scope: {d3:#?}"
    );
    // The group follows its member back into the scope.
    let grp = cs.by_rdn("dl grp").expect("group");
    assert_eq!(
        grp.values("member"),
        &[Value::Ref(format!("CN=dl d,{renamed}"))]
    );
}

#[test]
fn ad_watermark_from_another_dc_or_a_rejected_cookie_asks_for_full_import() {
    if !support::require_root(
        "samba",
        "ad_watermark_from_another_dc_or_a_rejected_cookie_asks_for_full_import",
    ) {
        return;
    }
    let dc = Samba::shared();
    let ou = dc.fresh_ou("Watermark");
    let dir = tempfile::tempdir().expect("tmp");
    let mut c =
        AdConnector::new(settings(dir.path(), "ldap://127.0.0.1", &[ou], 100)).expect("connector");
    let mut full: Vec<ImportChange> = Vec::new();
    let wm = c.full_import(&mut full).expect("full").expect("watermark");
    let cs = MemCs::default();
    assert!(wm.contains(DC_NAME), "{wm}");
    let other = wm.replace(DC_NAME, "DC2.corp.example.com");
    let err = c
        .delta_import(&other, &cs, &mut Vec::new())
        .expect_err("another DC");
    assert!(
        matches!(err, ConnectorError::WatermarkExpired(_)),
        "{err:?}"
    );
    let mut v: serde_json::Value = serde_json::from_str(&wm).expect("json");
    for (_, ck) in v["cookies"].as_object_mut().expect("cookies").iter_mut() {
        *ck = serde_json::Value::String(
            base64::engine::general_purpose::STANDARD.encode(b"MSDSgarbage-cookie"),
        );
    }
    let err = c
        .delta_import(&v.to_string(), &cs, &mut Vec::new())
        .expect_err("rejected cookie");
    assert!(
        matches!(err, ConnectorError::WatermarkExpired(_)),
        "{err:?}"
    );
}

#[test]
fn ad_ldaps_needs_the_ca_and_the_server_name_and_rejects_a_wrong_password() {
    if !support::require_root(
        "samba",
        "ad_ldaps_needs_the_ca_and_the_server_name_and_rejects_a_wrong_password",
    ) {
        return;
    }
    let dc = Samba::shared();
    let ou = dc.fresh_ou("Ldaps");
    dc.add(&user_ldif("tls user", &ou, "tlsuser"));
    let dir = tempfile::tempdir().expect("tmp");

    // CA file + TLS server name: verified and working.
    let mut s = settings(
        dir.path(),
        "ldaps://127.0.0.1:636",
        std::slice::from_ref(&ou),
        100,
    );
    s.connection.ca_file = Some(dc.ca_file());
    s.connection.tls_server_name = Some(DC_NAME.to_string());
    let mut c = AdConnector::new(s.clone()).expect("connector");
    let mut out: Vec<ImportChange> = Vec::new();
    c.full_import(&mut out).expect("import over LDAPS");
    assert_eq!(upserts(&out).len(), 1);

    // Without the CA file: a clear verification failure.
    let mut no_ca = s.clone();
    no_ca.connection.ca_file = None;
    let err = AdConnector::new(no_ca)
        .expect("connector")
        .full_import(&mut Vec::new())
        .expect_err("untrusted CA");
    let msg = err.to_string();
    assert!(matches!(err, ConnectorError::Connection { .. }), "{err:?}");
    assert!(msg.contains("TLS") && msg.contains("ca_file"), "{msg}");

    // With the CA but verifying against 127.0.0.1: the name does not match.
    let mut no_name = s.clone();
    no_name.connection.tls_server_name = None;
    let err = AdConnector::new(no_name)
        .expect("connector")
        .full_import(&mut Vec::new())
        .expect_err("name mismatch");
    assert!(err.to_string().contains("tls_server_name"), "{err}");

    // StartTLS on 389 with the same trust settings.
    let mut st = s.clone();
    st.connection.url = "ldap://127.0.0.1:389".into();
    st.connection.starttls = true;
    let mut out: Vec<ImportChange> = Vec::new();
    AdConnector::new(st)
        .expect("connector")
        .full_import(&mut out)
        .expect("StartTLS");
    assert_eq!(upserts(&out).len(), 1);

    // Wrong password.
    std::fs::write(dir.path().join("bad.pw"), "Wrong-Password-1").expect("pw");
    let mut bad = s;
    bad.connection.bind_password_file = Some(dir.path().join("bad.pw"));
    let err = AdConnector::new(bad)
        .expect("connector")
        .full_import(&mut Vec::new())
        .expect_err("bad password");
    assert!(matches!(err, ConnectorError::Authentication(_)), "{err:?}");
    assert!(!err.to_string().contains("Wrong-Password-1"));
}

#[test]
fn ad_password_set_over_ldaps_then_bind_with_it() {
    if !support::require_root("samba", "ad_password_set_over_ldaps_then_bind_with_it") {
        return;
    }
    let dc = Samba::shared();
    let ou = dc.fresh_ou("Passwords");
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = settings(
        dir.path(),
        "ldaps://127.0.0.1:636",
        std::slice::from_ref(&ou),
        100,
    );
    s.connection.ca_file = Some(dc.ca_file());
    s.connection.tls_server_name = Some(DC_NAME.to_string());
    let mut c = AdConnector::new(s.clone()).expect("connector");
    let user_dn = Dn::parse(&format!("CN=pw user,{ou}")).expect("dn");
    let mut attrs = dirsync::model::Attributes::new();
    attrs.insert("objectClass".into(), vec!["user".into()]);
    attrs.insert("sAMAccountName".into(), vec!["pwuser".into()]);
    attrs.insert(
        "userPrincipalName".into(),
        vec!["pwuser@corp.example.com".into()],
    );
    let new_pw = "N3w-Secret-Pw!x";
    let res = c
        .export(&[
            ExportRequest {
                id: 1,
                object_type: "user".into(),
                anchor: None,
                dn: user_dn.clone(),
                operation: ExportOperation::Add { attributes: attrs },
            },
            ExportRequest {
                id: 2,
                object_type: "user".into(),
                anchor: None,
                dn: user_dn.clone(),
                operation: ExportOperation::Update {
                    changes: vec![
                        AttributeChange::Replace {
                            name: "unicodePwd".into(),
                            values: vec![Value::Str(new_pw.into())],
                        },
                        AttributeChange::Replace {
                            name: "userAccountControl".into(),
                            values: vec![Value::Int(512)],
                        },
                    ],
                    new_dn: None,
                },
            },
        ])
        .expect("export");
    match &res[0].outcome {
        ExportOutcome::Success { anchor } => {
            assert!(anchor.as_ref().is_some_and(|a| a.len() == 36), "{res:?}")
        }
        other => panic!("add failed: {other:?}"),
    }
    assert!(
        matches!(res[1].outcome, ExportOutcome::Success { .. }),
        "{res:?}"
    );
    let mut cs = ConnectionSettings::new("ldap://127.0.0.1:389");
    cs.bind_dn = Some(user_dn.to_string());
    cs.connect_attempts = 1;
    let mut client = LdapClient::with_password(cs.clone(), Some(new_pw.into())).expect("client");
    client.conn().expect("bind with the new password");
    let mut wrong = LdapClient::with_password(cs, Some("Old-or-wrong-1".into())).expect("client");
    assert!(matches!(
        wrong.conn(),
        Err(ConnectorError::Authentication(_))
    ));
}

#[test]
fn ad_bulk_ou_with_a_large_group_imports_completely() {
    if !support::require_root("samba", "ad_bulk_ou_with_a_large_group_imports_completely") {
        return;
    }
    let dc = Samba::shared();
    dc.ensure_bulk();
    let n = support::samba::bulk_users();
    let ou = format!("OU=Bulk,{BASE}");
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = settings(
        dir.path(),
        "ldap://127.0.0.1",
        std::slice::from_ref(&ou),
        1000,
    );
    s.attributes = [
        "sAMAccountName",
        "givenName",
        "sn",
        "mail",
        "userPrincipalName",
        "member",
        "userAccountControl",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let mut c = AdConnector::new(s).expect("connector");
    let t = std::time::Instant::now();
    let mut out: Vec<ImportChange> = Vec::new();
    c.full_import(&mut out).expect("full import");
    let secs = t.elapsed().as_secs_f64();
    let objs = upserts(&out);
    assert_eq!(objs.len(), n + 1);
    let group = objs
        .iter()
        .find(|o| o.object_type == "group")
        .expect("group");
    assert_eq!(group.values("member").len(), n);
    println!(
        "FIGURE samba full import: {n} users + a {n}-member group in {secs:.2} s ({:.0} objects/s); DC startup {:.1} s",
        (n + 1) as f64 / secs,
        dc.startup_secs
    );
}

#[test]
fn ad_writeback_creates_tagged_groups_writes_consistency_guid_and_permissions_are_reported() {
    if !support::require_root(
        "samba",
        "ad_writeback_creates_tagged_groups_writes_consistency_guid_and_permissions_are_reported",
    ) {
        return;
    }
    let dc = Samba::shared();
    let ou = dc.fresh_ou("Writeback");
    dc.add(&user_ldif("wb user", &ou, "wbuser"));
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = AdConnector::new(settings(
        dir.path(),
        "ldap://127.0.0.1",
        std::slice::from_ref(&ou),
        100,
    ))
    .expect("connector");
    let mut full: Vec<ImportChange> = Vec::new();
    c.full_import(&mut full).expect("full");
    let user = upserts(&full).pop().expect("user");
    let user_anchor = user.anchor.clone().expect("anchor");

    // Write back a cloud group into the OU and a consistency GUID on the user.
    let cloud_guid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    let mut g = dirsync::model::Attributes::new();
    g.insert("objectClass".into(), vec!["group".into()]);
    g.insert("sAMAccountName".into(), vec!["wb-cloud-group".into()]);
    g.insert("member".into(), vec![Value::Ref(user.dn.to_string())]);
    let res = c
        .export(&[
            ExportRequest {
                id: 1,
                object_type: "group".into(),
                anchor: None,
                dn: Dn::parse(&format!("CN=wb cloud group,{ou}")).expect("dn"),
                operation: ExportOperation::Add { attributes: g },
            },
            ExportRequest {
                id: 2,
                object_type: "user".into(),
                anchor: Some(user_anchor.clone()),
                dn: user.dn.clone(),
                operation: ExportOperation::Update {
                    changes: vec![AttributeChange::Replace {
                        name: "mS-DS-ConsistencyGuid".into(),
                        values: vec![Value::Str(cloud_guid.into())],
                    }],
                    new_dn: None,
                },
            },
        ])
        .expect("export");
    assert!(
        res.iter()
            .all(|r| matches!(r.outcome, ExportOutcome::Success { .. })),
        "{res:?}"
    );
    let text = support::ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-H",
            "ldap://127.0.0.1",
            "-D",
            ADMIN,
            "-w",
            ADMIN_PW,
            "-b",
            &ou,
            "(sAMAccountName=wb-cloud-group)",
            "adminDescription",
            "member",
        ],
        "",
    );
    assert!(
        text.contains("adminDescription: DirSyncWriteback"),
        "{text}"
    );
    assert!(text.contains("member: CN=wb user"), "{text}");

    // Re-import: the written-back group is not taken as AD-sourced; the user's sourceAnchor
    // now comes from the consistency GUID.
    let mut again: Vec<ImportChange> = Vec::new();
    c.full_import(&mut again).expect("full again");
    let objs = upserts(&again);
    assert_eq!(objs.len(), 1, "{objs:#?}");
    let u = &objs[0];
    let cg = dirsync::connectors::ldap::ad::guid_bytes(cloud_guid).expect("guid");
    assert_eq!(u.values("mS-DS-ConsistencyGuid"), &[Value::Bin(cg.clone())]);
    assert_eq!(
        u.first_text("sourceAnchor"),
        Some(dirsync::connectors::ldap::ad::immutable_id(&cg))
    );
    assert_eq!(u.anchor.as_deref(), Some(user_anchor.as_str()));

    // Permission report for the administrator: everything present.
    let report = dirsync::connectors::ldap::permissions::test_permissions(&mut c, Some(&ou))
        .expect("permission check");
    assert_eq!(report.dc, DC_NAME);
    assert!(report.all_present(), "{report:#?}");
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.right.starts_with("DirSync on"))
    );
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.right.starts_with("reset passwords"))
    );
}

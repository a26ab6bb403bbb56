//! Integration tests of the LDIF connector: full import, delta import from change files,
//! export with directory semantics, round trips and located errors.

use dirsync::connectors::ldif::{LdifConnector, LdifSettings};
use dirsync::connectors::{
    Connector, ConnectorError, ConnectorSpaceView, ExportErrorKind, ExportOperation, ExportOutcome,
    ExportRequest, ExportResult, ImportChange,
};
use dirsync::model::{AttrType, AttributeChange, Attributes, Dn, Object, Rdn, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ldif")
}

fn dn(s: &str) -> Dn {
    Dn::parse(s).unwrap()
}

/// A connector space as the engine keeps it: objects by anchor, updated from import changes.
#[derive(Default)]
struct Cs {
    objects: BTreeMap<String, Object>,
}

impl Cs {
    fn apply(&mut self, changes: Vec<ImportChange>) {
        for c in changes {
            match c {
                ImportChange::Upsert(o) => {
                    self.objects.insert(o.anchor.clone().unwrap(), o);
                }
                ImportChange::Delete { anchor } => {
                    self.objects.remove(&anchor);
                }
            }
        }
    }

    fn get(&self, d: &str) -> &Object {
        let d = dn(d);
        self.objects
            .values()
            .find(|o| o.dn == d)
            .unwrap_or_else(|| panic!("no object {d} in {:?}", self.dns()))
    }

    fn dns(&self) -> Vec<String> {
        let mut v: Vec<String> = self.objects.values().map(|o| o.dn.to_string()).collect();
        v.sort();
        v
    }
}

impl ConnectorSpaceView for Cs {
    fn by_anchor(&self, anchor: &str) -> Option<Object> {
        self.objects.get(anchor).cloned()
    }
    fn by_dn(&self, d: &Dn) -> Option<Object> {
        self.objects.values().find(|o| o.dn == *d).cloned()
    }
    fn descendants(&self, d: &Dn) -> Vec<Object> {
        self.objects
            .values()
            .filter(|o| o.dn.is_within(d) && o.dn != *d)
            .cloned()
            .collect()
    }
}

fn import(c: &mut LdifConnector) -> Result<(Vec<Object>, Option<String>), ConnectorError> {
    let mut changes: Vec<ImportChange> = Vec::new();
    let wm = c.full_import(&mut changes)?;
    let objs = changes
        .into_iter()
        .map(|c| match c {
            ImportChange::Upsert(o) => o,
            other => panic!("full import gave {other:?}"),
        })
        .collect();
    Ok((objs, wm))
}

fn source() -> LdifConnector {
    let mut s = LdifSettings::new("directory.ldif");
    s.changes_dir = Some("changes".into());
    LdifConnector::new(s, &data_dir()).unwrap()
}

fn target(dir: &Path) -> LdifConnector {
    LdifConnector::new(LdifSettings::new("target.ldif"), dir).unwrap()
}

fn add_req(id: i64, o: &Object) -> ExportRequest {
    ExportRequest {
        id,
        object_type: o.object_type.clone(),
        anchor: None,
        dn: o.dn.clone(),
        operation: ExportOperation::Add {
            attributes: o.attributes.clone(),
        },
    }
}

fn update_req(
    id: i64,
    d: &str,
    changes: Vec<AttributeChange>,
    new_dn: Option<&str>,
) -> ExportRequest {
    ExportRequest {
        id,
        object_type: "user".into(),
        anchor: None,
        dn: dn(d),
        operation: ExportOperation::Update {
            changes,
            new_dn: new_dn.map(dn),
        },
    }
}

fn delete_req(id: i64, d: &str) -> ExportRequest {
    ExportRequest {
        id,
        object_type: "user".into(),
        anchor: None,
        dn: dn(d),
        operation: ExportOperation::Delete,
    }
}

fn all_ok(results: &[ExportResult]) {
    for r in results {
        assert!(matches!(r.outcome, ExportOutcome::Success { .. }), "{r:?}");
    }
}

fn failed(r: &ExportResult) -> ExportErrorKind {
    match &r.outcome {
        ExportOutcome::Failed { kind, .. } => *kind,
        other => panic!("request {} succeeded: {other:?}", r.id),
    }
}

fn sorted(mut v: Vec<Object>) -> Vec<Object> {
    v.sort_by_key(|o| o.dn.normalized());
    v
}

#[test]
fn full_import_reads_every_entry_with_types() {
    let mut c = source();
    let (objs, wm) = import(&mut c).unwrap();
    assert_eq!(objs.len(), 8);
    assert_eq!(wm.as_deref(), Some("0003-move-and-delete.ldif"));
    let find = |d: &str| objs.iter().find(|o| o.dn == dn(d)).unwrap();

    let john = find("cn=Smith\\, John,ou=People,dc=corp,dc=example");
    assert_eq!(
        john.anchor.as_deref(),
        Some("00000000-0000-4000-8000-000000000003")
    );
    assert_eq!(john.object_type, "user");
    assert_eq!(john.values("uidNumber"), &[Value::Int(1001)]);
    assert_eq!(
        john.values("manager"),
        &[Value::Ref(
            "cn=Zo\\C3\\AB M\\C3\\BCller,ou=People,dc=corp,dc=example".into()
        )]
    );
    assert_eq!(
        john.first_text("description").unwrap(),
        "A long description that is folded across more than one line because it is longer than seventy-six characters."
    );
    assert_eq!(john.values("objectClass").len(), 4);

    let zoe = find("cn=Zoë Müller,ou=People,dc=corp,dc=example");
    assert_eq!(zoe.values("cn"), &[Value::from("Zoë Müller")]);
    assert_eq!(
        zoe.values("jpegPhoto"),
        &[Value::Bin(vec![
            0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1
        ])]
    );
    // A DN given as UTF-8 text and one given as base64 name the same entry.
    let staff = find("cn=Staff,ou=Groups,dc=corp,dc=example");
    assert_eq!(staff.object_type, "group");
    assert!(Dn::parse(&staff.values("member")[1].to_text()).unwrap() == zoe.dn);

    let special =
        find("cn=\\#hash\\+plus\\=eq\\;semi\\<lt\\>gt\\\"q\\\\bs,ou=People,dc=corp,dc=example");
    assert_eq!(
        special.dn.rdn().unwrap().value(),
        "#hash+plus=eq;semi<lt>gt\"q\\bs"
    );
    let spaces = find("cn=\\ leading and trailing\\ ,ou=People,dc=corp,dc=example");
    assert_eq!(
        spaces.values("cn"),
        &[Value::from(" leading and trailing ")]
    );

    assert_eq!(find("dc=corp,dc=example").object_type, "container");
    assert_eq!(
        find("ou=Groups,dc=corp,dc=example").object_type,
        "organizationalUnit"
    );

    let schema = c.schema().unwrap();
    let user = &schema.object_types["user"];
    assert_eq!(user.attributes["uidNumber"].ty, AttrType::Integer);
    assert!(user.attributes["objectClass"].multi_valued);
    assert_eq!(
        schema.object_types["group"].attributes["member"].ty,
        AttrType::Reference
    );
    assert!(schema.object_types["group"].attributes["member"].multi_valued);
    assert_eq!(user.attributes["jpegPhoto"].ty, AttrType::Binary);
}

#[test]
fn round_trip_parse_write_parse_is_lossless_and_stable() {
    let (objs, _) = import(&mut source()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut t1 = target(dir.path());
    let batch: Vec<ExportRequest> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| add_req(i as i64, o))
        .collect();
    let results = t1.export(&batch).unwrap();
    assert_eq!(results.len(), objs.len());
    all_ok(&results);
    let (back, wm) = import(&mut t1).unwrap();
    assert_eq!(wm, None);
    assert_eq!(sorted(back.clone()), sorted(objs));
    for (a, b) in sorted(back.clone())
        .iter()
        .zip(sorted(import(&mut source()).unwrap().0))
    {
        assert_eq!(a.dn.to_string(), b.dn.to_string());
    }

    // Writing what was read back gives the same bytes.
    let text1 = std::fs::read_to_string(dir.path().join("target.ldif")).unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let mut t2 = target(dir2.path());
    let batch2: Vec<ExportRequest> = back
        .iter()
        .rev()
        .enumerate()
        .map(|(i, o)| add_req(i as i64, o))
        .collect();
    all_ok(&t2.export(&batch2).unwrap());
    let text2 = std::fs::read_to_string(dir2.path().join("target.ldif")).unwrap();
    assert_eq!(text1, text2);

    // Strict RFC 2849 output: ASCII only, folded at 76 columns, parents before children.
    assert!(text1.is_ascii());
    assert!(text1.lines().all(|l| l.len() <= 76), "{text1}");
    assert!(
        text1.starts_with("version: 1\n\ndn: dc=corp,dc=example\n"),
        "{text1}"
    );
    let pos = |needle: &str| {
        text1
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} not in {text1}"))
    };
    assert!(pos("dn: ou=People,") < pos("dn: cn=Smith\\, John,ou=People,"));
    assert!(pos("dn: ou=Groups,") < pos("dn: cn=Staff,ou=Groups"));
    // Non-ASCII and leading-space values are base64; binary too.
    assert!(text1.contains("cn:: Wm/DqyBNw7xsbGVy\n"), "{text1}");
    assert!(
        text1.contains("cn:: IGxlYWRpbmcgYW5kIHRyYWlsaW5nIA==\n"),
        "{text1}"
    );
    assert!(
        text1.contains("jpegPhoto:: /9j/4AAQSkZJRgABAQ==\n"),
        "{text1}"
    );
    assert!(text1.contains("\n "), "long values are folded: {text1}");
}

#[test]
fn export_writes_exact_rfc2849_content() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(dir.path());
    let mut attrs = Attributes::new();
    attrs.insert("entryUUID".into(), vec!["u-1".into()]);
    attrs.insert("sn".into(), vec!["Brontë".into()]);
    attrs.insert("userAccountControl".into(), vec![Value::Int(512)]);
    attrs.insert("objectGUID".into(), vec![Value::Bin(vec![0, 1, 2, 255])]);
    attrs.insert(
        "note".into(),
        vec![":colon".into(), "<angle".into(), "ok".into()],
    );
    let req = ExportRequest {
        id: 1,
        object_type: "user".into(),
        anchor: None,
        dn: Dn::root().child(Rdn::new("cn", "Brontë, Émily")),
        operation: ExportOperation::Add { attributes: attrs },
    };
    let r = t.export(&[req]).unwrap();
    assert_eq!(
        r[0].outcome,
        ExportOutcome::Success {
            anchor: Some("u-1".into())
        }
    );
    let text = std::fs::read_to_string(dir.path().join("target.ldif")).unwrap();
    assert_eq!(
        text,
        "version: 1\n\n\
         dn:: Y249QnJvbnTDq1wsIMOJbWlseQ==\n\
         objectClass: inetOrgPerson\n\
         cn:: QnJvbnTDqywgw4ltaWx5\n\
         entryUUID: u-1\n\
         note:: OmNvbG9u\n\
         note:: PGFuZ2xl\n\
         note: ok\n\
         objectGUID:: AAEC/w==\n\
         sn:: QnJvbnTDqw==\n\
         userAccountControl: 512\n\n"
    );
    let (objs, _) = import(&mut t).unwrap();
    assert_eq!(objs[0].dn.rdn().unwrap().value(), "Brontë, Émily");
    assert_eq!(
        objs[0].values("objectGUID"),
        &[Value::Bin(vec![0, 1, 2, 255])]
    );
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn delta_import_applies_every_change_type_and_composes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        data_dir().join("directory.ldif"),
        dir.path().join("directory.ldif"),
    )
    .unwrap();
    let changes = dir.path().join("changes");
    std::fs::create_dir(&changes).unwrap();
    let mut s = LdifSettings::new("directory.ldif");
    s.changes_dir = Some("changes".into());
    let mut c = LdifConnector::new(s, dir.path()).unwrap();
    assert!(c.capabilities().delta_import);

    let (objs, wm) = import(&mut c).unwrap();
    assert_eq!(
        wm.as_deref(),
        Some(""),
        "no change file yet: start before every file"
    );
    let mut cs = Cs::default();
    cs.apply(objs.into_iter().map(ImportChange::Upsert).collect());

    let copy = |name: &str| {
        std::fs::copy(data_dir().join("changes").join(name), changes.join(name)).unwrap();
    };
    let delta = |c: &mut LdifConnector, cs: &mut Cs, wm: &str| {
        let mut out: Vec<ImportChange> = Vec::new();
        let wm = c.delta_import(wm, cs, &mut out).unwrap();
        let n = out.len();
        cs.apply(out);
        (wm.unwrap(), n)
    };

    // 1: add, modify (replace, add, delete all, delete one value), group member add.
    copy("0001-add-and-modify.ldif");
    let (wm, n) = delta(&mut c, &mut cs, "");
    assert_eq!(wm, "0001-add-and-modify.ldif");
    assert_eq!(n, 3);
    let john = cs.get("cn=Smith\\, John,ou=People,dc=corp,dc=example");
    assert_eq!(john.values("mail"), &[Value::from("jsmith@corp.example")]);
    assert_eq!(
        john.values("telephoneNumber"),
        &[Value::from("+1 555 0100")]
    );
    assert!(john.values("description").is_empty());
    let new_user = cs.get("cn=New User,ou=People,dc=corp,dc=example");
    assert_eq!(
        new_user.anchor.as_deref(),
        Some("00000000-0000-4000-8000-000000000009")
    );
    assert_eq!(
        cs.get("cn=Staff,ou=Groups,dc=corp,dc=example")
            .values("member")
            .len(),
        4
    );

    // Nothing new: same watermark, no changes.
    let (wm2, n) = delta(&mut c, &mut cs, &wm);
    assert_eq!((wm2.as_str(), n), (wm.as_str(), 0));

    // 2 and 3 together: subtree rename then a modify under the new name, a move with
    // newsuperior and deleteoldrdn 0, a delete under the renamed OU.
    copy("0002-rename-ou.ldif");
    copy("0003-move-and-delete.ldif");
    let (wm, _) = delta(&mut c, &mut cs, &wm);
    assert_eq!(wm, "0003-move-and-delete.ldif");
    let ou = cs.get("ou=Staff People,dc=corp,dc=example");
    assert_eq!(ou.values("ou"), &[Value::from("Staff People")]);
    assert_eq!(
        ou.anchor.as_deref(),
        Some("00000000-0000-4000-8000-000000000002")
    );
    let john = cs.get("cn=Smith\\, John,ou=Staff People,dc=corp,dc=example");
    assert_eq!(john.values("title"), &[Value::from("Engineer")]);
    assert_eq!(john.values("mail"), &[Value::from("jsmith@corp.example")]);
    cs.get("cn=New User,ou=Staff People,dc=corp,dc=example");
    cs.get("cn=\\ leading and trailing\\ ,ou=Staff People,dc=corp,dc=example");
    let zoe = cs.get("cn=Zoë Müller-Brown,ou=Groups,dc=corp,dc=example");
    assert_eq!(
        zoe.values("cn"),
        &[Value::from("Zoë Müller"), Value::from("Zoë Müller-Brown")]
    );
    assert_eq!(
        zoe.anchor.as_deref(),
        Some("00000000-0000-4000-8000-000000000004")
    );
    assert!(
        !cs.objects
            .contains_key("00000000-0000-4000-8000-000000000005")
    );
    assert!(
        !cs.dns().iter().any(|d| d.contains("ou=People,")),
        "{:?}",
        cs.dns()
    );
    assert_eq!(cs.objects.len(), 8);

    // A full import now starts after the last change file.
    let (_, wm) = import(&mut c).unwrap();
    assert_eq!(wm.as_deref(), Some("0003-move-and-delete.ldif"));
}

#[test]
fn delta_errors_name_file_and_line_and_push_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let changes = dir.path().join("changes");
    std::fs::create_dir(&changes).unwrap();
    std::fs::write(
        changes.join("01.ldif"),
        "dn: cn=a,dc=x\nchangetype: add\ncn: a\nentryUUID: a\n\n\
         dn: cn=missing,dc=x\nchangetype: modify\nreplace: sn\nsn: x\n-\n",
    )
    .unwrap();
    let mut s = LdifSettings::new("d.ldif");
    s.changes_dir = Some("changes".into());
    let mut c = LdifConnector::new(s, dir.path()).unwrap();
    let mut out: Vec<ImportChange> = Vec::new();
    let err = c.delta_import("", &Cs::default(), &mut out).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("01.ldif:6:"), "{msg}");
    assert!(msg.contains("cn=missing,dc=x"), "{msg}");
    assert!(
        out.is_empty(),
        "a failed delta must not push partial changes"
    );

    // Without a changes folder there is no delta import.
    let mut plain = LdifConnector::new(LdifSettings::new("d.ldif"), dir.path()).unwrap();
    assert!(!plain.capabilities().delta_import);
    assert!(matches!(
        plain.delta_import("", &Cs::default(), &mut out),
        Err(ConnectorError::Unsupported(_))
    ));
}

/// Loads the sample directory into a fresh target file.
fn seeded_target(dir: &Path) -> LdifConnector {
    let (objs, _) = import(&mut source()).unwrap();
    let mut t = target(dir);
    let batch: Vec<ExportRequest> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| add_req(i as i64, o))
        .collect();
    all_ok(&t.export(&batch).unwrap());
    t
}

fn members(t: &mut LdifConnector) -> Vec<String> {
    let (objs, _) = import(t).unwrap();
    let g = objs
        .iter()
        .find(|o| o.dn == dn("cn=Staff,ou=Groups,dc=corp,dc=example"))
        .unwrap();
    g.values("member").iter().map(Value::to_text).collect()
}

#[test]
fn export_rename_and_move_keep_references_and_children() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = seeded_target(dir.path());

    // Rename John: the group's member value follows.
    let r = t
        .export(&[update_req(
            1,
            "cn=Smith\\, John,ou=People,dc=corp,dc=example",
            vec![AttributeChange::Replace {
                name: "sn".into(),
                values: vec!["Smith-Jones".into()],
            }],
            Some("cn=Smith-Jones\\, John,ou=People,dc=corp,dc=example"),
        )])
        .unwrap();
    all_ok(&r);
    assert_eq!(
        r[0].outcome,
        ExportOutcome::Success {
            anchor: Some("00000000-0000-4000-8000-000000000003".into())
        }
    );
    let m = members(&mut t);
    assert_eq!(m[0], "cn=Smith-Jones\\, John,ou=People,dc=corp,dc=example");

    // Rename the OU: children move, every reference below it is rebased.
    all_ok(
        &t.export(&[update_req(
            2,
            "ou=People,dc=corp,dc=example",
            vec![],
            Some("ou=Users,dc=corp,dc=example"),
        )])
        .unwrap(),
    );
    let (objs, _) = import(&mut t).unwrap();
    let dns: Vec<String> = objs.iter().map(|o| o.dn.to_string()).collect();
    assert!(!dns.iter().any(|d| d.contains("ou=People")), "{dns:?}");
    assert!(
        dns.contains(&"cn=Smith-Jones\\, John,ou=Users,dc=corp,dc=example".to_string()),
        "{dns:?}"
    );
    let ou = objs
        .iter()
        .find(|o| o.dn == dn("ou=Users,dc=corp,dc=example"))
        .unwrap();
    assert_eq!(ou.values("ou"), &[Value::from("Users")]);
    let john = objs
        .iter()
        .find(|o| o.anchor.as_deref() == Some("00000000-0000-4000-8000-000000000003"))
        .unwrap();
    assert_eq!(john.values("cn"), &[Value::from("Smith-Jones, John")]);
    assert_eq!(
        Dn::parse(&john.values("manager")[0].to_text()).unwrap(),
        dn("cn=Zoë Müller,ou=Users,dc=corp,dc=example")
    );
    let m = members(&mut t);
    assert_eq!(
        m.iter().map(|v| Dn::parse(v).unwrap()).collect::<Vec<_>>(),
        vec![
            dn("cn=Smith-Jones\\, John,ou=Users,dc=corp,dc=example"),
            dn("cn=Zoë Müller,ou=Users,dc=corp,dc=example"),
            dn("cn=\\ leading and trailing\\ ,ou=Users,dc=corp,dc=example"),
        ]
    );

    // Move a user into another OU by anchor.
    let mut mv = update_req(
        3,
        "cn=stale dn,dc=corp,dc=example",
        vec![],
        Some("cn=Zoë Müller,ou=Groups,dc=corp,dc=example"),
    );
    mv.anchor = Some("00000000-0000-4000-8000-000000000004".into());
    all_ok(&t.export(&[mv]).unwrap());
    assert_eq!(
        Dn::parse(&members(&mut t)[1]).unwrap(),
        dn("cn=Zoë Müller,ou=Groups,dc=corp,dc=example")
    );
}

#[test]
fn export_delete_removes_references_and_refuses_non_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = seeded_target(dir.path());
    let r = t
        .export(&[
            delete_req(1, "ou=People,dc=corp,dc=example"),
            delete_req(2, "cn=Zoë Müller,ou=People,dc=corp,dc=example"),
            delete_req(3, "cn=Zoë Müller,ou=People,dc=corp,dc=example"),
        ])
        .unwrap();
    assert_eq!(failed(&r[0]), ExportErrorKind::Other);
    match &r[0].outcome {
        ExportOutcome::Failed { message, .. } => {
            assert!(message.contains("notAllowedOnNonLeaf"), "{message}")
        }
        _ => unreachable!(),
    }
    assert_eq!(
        r[1].outcome,
        ExportOutcome::Success {
            anchor: Some("00000000-0000-4000-8000-000000000004".into())
        }
    );
    assert_eq!(failed(&r[2]), ExportErrorKind::ObjectNotFound);
    let m = members(&mut t);
    assert_eq!(m.len(), 2);
    assert!(!m.iter().any(|v| v.contains("Zo")), "{m:?}");
    let (objs, _) = import(&mut t).unwrap();
    let john = objs
        .iter()
        .find(|o| o.anchor.as_deref() == Some("00000000-0000-4000-8000-000000000003"))
        .unwrap();
    assert!(
        john.values("manager").is_empty(),
        "manager pointed at the deleted entry"
    );
}

#[test]
fn export_reports_per_object_failures_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = seeded_target(dir.path());
    let (objs, _) = import(&mut t).unwrap();
    let john = objs
        .iter()
        .find(|o| o.dn == dn("cn=Smith\\, John,ou=People,dc=corp,dc=example"))
        .unwrap();
    let mut new_attrs = Attributes::new();
    new_attrs.insert("sn".into(), vec!["Doe".into()]);
    new_attrs.insert(
        "member".into(),
        vec![Value::Str(
            "cn=Smith\\, John,ou=People,dc=corp,dc=example".into(),
        )],
    );
    let r = t
        .export(&[
            add_req(1, john),
            update_req(2, "cn=Nobody,dc=corp,dc=example", vec![], None),
            update_req(
                3,
                "cn=Smith\\, John,ou=People,dc=corp,dc=example",
                vec![],
                Some("cn=Staff,ou=Groups,dc=corp,dc=example"),
            ),
            ExportRequest {
                id: 4,
                object_type: "group".into(),
                anchor: None,
                dn: dn("cn=Jane Doe,ou=People,dc=corp,dc=example"),
                operation: ExportOperation::Add {
                    attributes: new_attrs,
                },
            },
            update_req(
                5,
                "cn=Smith\\, John,ou=People,dc=corp,dc=example",
                vec![
                    AttributeChange::Remove {
                        name: "objectClass".into(),
                        values: vec!["person".into()],
                    },
                    AttributeChange::Add {
                        name: "employeeType".into(),
                        values: vec!["staff".into()],
                    },
                ],
                None,
            ),
            update_req(
                6,
                "ou=Groups,dc=corp,dc=example",
                vec![],
                Some("ou=Sub,ou=Groups,dc=corp,dc=example"),
            ),
        ])
        .unwrap();
    assert_eq!(
        r.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(failed(&r[0]), ExportErrorKind::ObjectAlreadyExists);
    assert_eq!(failed(&r[1]), ExportErrorKind::ObjectNotFound);
    assert_eq!(failed(&r[2]), ExportErrorKind::ObjectAlreadyExists);
    let ExportOutcome::Success {
        anchor: Some(anchor),
    } = &r[3].outcome
    else {
        panic!("{:?}", r[3])
    };
    assert!(
        uuid::Uuid::parse_str(anchor).is_ok(),
        "generated anchor {anchor}"
    );
    assert!(matches!(r[4].outcome, ExportOutcome::Success { .. }));
    assert_eq!(failed(&r[5]), ExportErrorKind::Other);

    let (objs, _) = import(&mut t).unwrap();
    assert_eq!(objs.len(), 9);
    let jane = objs
        .iter()
        .find(|o| o.anchor.as_deref() == Some(anchor.as_str()))
        .unwrap();
    assert_eq!(jane.object_type, "group");
    assert_eq!(jane.values("objectClass"), &[Value::from("groupOfNames")]);
    assert_eq!(jane.values("cn"), &[Value::from("Jane Doe")]);
    assert_eq!(jane.values("entryUUID"), &[Value::Str(anchor.clone())]);
    assert_eq!(
        jane.values("member"),
        &[Value::Ref(
            "cn=Smith\\, John,ou=People,dc=corp,dc=example".into()
        )]
    );
    let john = objs
        .iter()
        .find(|o| o.dn == dn("cn=Smith\\, John,ou=People,dc=corp,dc=example"))
        .unwrap();
    assert_eq!(john.values("objectClass").len(), 3);
    assert_eq!(john.values("employeeType"), &[Value::from("staff")]);
}

#[test]
fn export_to_a_missing_file_and_an_empty_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(dir.path());
    assert!(
        import(&mut t).unwrap().0.is_empty(),
        "a missing target file is an empty directory"
    );
    assert!(t.export(&[]).unwrap().is_empty());
    assert!(!dir.path().join("target.ldif").exists(), "nothing to write");
    let r = t.export(&[delete_req(1, "cn=x,dc=y")]).unwrap();
    assert_eq!(failed(&r[0]), ExportErrorKind::ObjectNotFound);
    assert!(!dir.path().join("target.ldif").exists());
    // A missing folder is an error, not an empty directory.
    let mut bad = LdifConnector::new(LdifSettings::new("no/such/dir/t.ldif"), dir.path()).unwrap();
    assert!(matches!(import(&mut bad), Err(ConnectorError::Io { .. })));
}

/// Writes `text` as `bad.ldif` and returns the import error message.
fn import_error(text: &[u8], settings: impl FnOnce(&mut LdifSettings)) -> (String, usize, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.ldif"), text).unwrap();
    let mut s = LdifSettings::new("bad.ldif");
    settings(&mut s);
    let mut c = LdifConnector::new(s, dir.path()).unwrap();
    match import(&mut c) {
        Err(ConnectorError::Input {
            file,
            line,
            message,
        }) => {
            assert!(file.ends_with("bad.ldif"), "{file}");
            (file, line, message)
        }
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn bad_input_is_located() {
    let cases: Vec<(&[u8], usize, &str)> = vec![
        (
            b"dn: cn=a,dc=x\nentryUUID: 1\ncn:: not*base64\n",
            3,
            "base64",
        ),
        (
            b"version: 1\n\ndn: cn=a,dc=x\ncn: a\n",
            3,
            "no anchor attribute 'entryUUID'",
        ),
        (
            b"dn: cn=a,dc=x\nentryUUID: 1\n\ndn: CN=A,DC=X\nentryUUID: 2\n",
            4,
            "duplicate entry",
        ),
        (
            b"dn: cn=a,dc=x\nentryUUID: 1\n\ndn: cn=b,dc=x\nentryUUID: 1\n",
            4,
            "duplicate anchor",
        ),
        (b"dn: cn=a,dc=x\nchangetype: delete\n", 1, "change record"),
        (b"dn: cn=a,,dc=x\nentryUUID: 1\n", 1, "invalid DN"),
        (
            b"dn: cn=a,dc=x\nentryUUID: 1\nuidNumber: 12a\n",
            3,
            "uidNumber",
        ),
        (
            b"dn: cn=a,dc=x\nentryUUID: 1\nthis is not an attribute\n",
            3,
            "expected 'attribute: value'",
        ),
        (b"# comment\nentryUUID: 1\n", 2, "must start with 'dn:'"),
        (b"version: 3\n", 1, "version"),
        (
            b"dn: cn=a,dc=x\nentryUUID: 1\nphoto:< ftp://host/x\n",
            3,
            "file://",
        ),
        (b"dn: cn=a,dc=x\nentryUUID: 1\ncn: \xff\xfe\n", 3, "UTF-8"),
    ];
    for (text, line, needle) in cases {
        let (file, l, msg) = import_error(text, |_| {});
        assert_eq!(
            l,
            line,
            "{file}:{l}: {msg} (input {:?})",
            String::from_utf8_lossy(text)
        );
        assert!(msg.contains(needle), "{msg} lacks {needle}");
    }
    // Typed attributes from the settings are checked too; the message has file:line.
    let (file, line, msg) =
        import_error(b"dn: cn=a,dc=x\nentryUUID: 1\nemployeeNumber: x\n", |s| {
            s.attribute_types
                .insert("employeeNumber".into(), AttrType::Integer);
        });
    assert_eq!(line, 3);
    let full = ConnectorError::Input {
        file: file.clone(),
        line,
        message: msg,
    }
    .to_string();
    assert!(full.starts_with(&format!("{file}:3: ")), "{full}");
}

#[test]
fn binary_anchor_and_object_type_mapping() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ad.ldif"),
        "dn: CN=PC1,OU=Computers,DC=corp\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\nobjectClass: computer\nobjectGUID:: iGhmiAEBERG7uxI0VniQqw==\nuserAccountControl: 4096\n\n\
         dn: CN=Printer,DC=corp\nobjectClass: printQueue\nobjectGUID:: AAAAAAAAAAAAAAAAAAAAAQ==\n",
    )
    .unwrap();
    let mut s = LdifSettings::new("ad.ldif");
    s.anchor_attribute = "objectGUID".into();
    s.object_types.insert("printQueue".into(), "device".into());
    let mut c = LdifConnector::new(s, dir.path()).unwrap();
    let (objs, _) = import(&mut c).unwrap();
    assert_eq!(objs[0].anchor.as_deref(), Some("iGhmiAEBERG7uxI0VniQqw=="));
    assert_eq!(objs[0].object_type, "computer");
    assert_eq!(objs[0].values("userAccountControl"), &[Value::Int(4096)]);
    assert_eq!(objs[1].object_type, "device");
}

#[test]
fn add_records_in_a_content_file_and_file_urls_inside_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("photo.jpg"), [0xffu8, 0xd8, 0xff]).unwrap();
    std::fs::write(
        dir.path().join("d.ldif"),
        "version: 1\ndn: cn=a,dc=x\nchangetype: add\nobjectClass: person\ncn: a\nentryUUID: a\njpegPhoto:< file://photo.jpg\n",
    )
    .unwrap();
    let mut c = LdifConnector::new(LdifSettings::new("d.ldif"), dir.path()).unwrap();
    let (objs, _) = import(&mut c).unwrap();
    assert_eq!(objs.len(), 1);
    assert_eq!(
        objs[0].values("jpegPhoto"),
        &[Value::Bin(vec![0xff, 0xd8, 0xff])]
    );
    assert_eq!(objs[0].object_type, "user");
}

#[test]
fn export_generates_binary_anchors_that_import_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = LdifSettings::new("ad.ldif");
    s.anchor_attribute = "objectGUID".into();
    let mut c = LdifConnector::new(s, dir.path()).unwrap();
    let mut attrs = Attributes::new();
    attrs.insert("sn".into(), vec!["x".into()]);
    let r = c
        .export(&[ExportRequest {
            id: 1,
            object_type: "user".into(),
            anchor: None,
            dn: dn("CN=x,DC=corp"),
            operation: ExportOperation::Add { attributes: attrs },
        }])
        .unwrap();
    let ExportOutcome::Success {
        anchor: Some(anchor),
    } = &r[0].outcome
    else {
        panic!("{r:?}")
    };
    let (objs, _) = import(&mut c).unwrap();
    assert_eq!(objs[0].anchor.as_ref(), Some(anchor));
    assert!(matches!(&objs[0].values("objectGUID")[0], Value::Bin(b) if b.len() == 16));
    // An integer anchor cannot be invented.
    let mut s = LdifSettings::new("n.ldif");
    s.anchor_attribute = "uidNumber".into();
    let mut c = LdifConnector::new(s, dir.path()).unwrap();
    let r = c
        .export(&[ExportRequest {
            id: 2,
            object_type: "user".into(),
            anchor: None,
            dn: dn("CN=y,DC=corp"),
            operation: ExportOperation::Add {
                attributes: Attributes::new(),
            },
        }])
        .unwrap();
    assert_eq!(failed(&r[0]), ExportErrorKind::IdentityDataValidationFailed);
}

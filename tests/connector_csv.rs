//! Integration tests of the CSV connector: BOM, delimiters and separators, typed columns,
//! DN templates with special characters, located errors, export and round trips.

use dirsync::connectors::csv::{CsvConnector, CsvSettings};
use dirsync::connectors::{
    Connector, ConnectorError, ConnectorSpaceView, ExportErrorKind, ExportOperation, ExportOutcome,
    ExportRequest, ExportResult, ImportChange,
};
use dirsync::model::{AttrType, AttributeChange, Attributes, Dn, Object, Value, parse_datetime};
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/csv")
}

fn hr_settings(path: &str) -> CsvSettings {
    let mut s = CsvSettings::new(path, "employeeId");
    s.dn_template = "CN={displayName},OU={department},DC=corp".into();
    s.multi_valued_columns = vec!["roles".into()];
    s.column_types
        .insert("costCenter".into(), AttrType::Integer);
    s.column_types.insert("active".into(), AttrType::Boolean);
    s.column_types.insert("hireDate".into(), AttrType::DateTime);
    s.ignore_columns = vec!["notes".into()];
    s
}

fn import(c: &mut CsvConnector) -> Result<Vec<Object>, ConnectorError> {
    let mut changes: Vec<ImportChange> = Vec::new();
    let wm = c.full_import(&mut changes)?;
    assert_eq!(wm, None);
    Ok(changes
        .into_iter()
        .map(|c| match c {
            ImportChange::Upsert(o) => o,
            other => panic!("unexpected {other:?}"),
        })
        .collect())
}

fn by_anchor<'a>(objs: &'a [Object], a: &str) -> &'a Object {
    objs.iter()
        .find(|o| o.anchor.as_deref() == Some(a))
        .unwrap_or_else(|| panic!("no {a}"))
}

#[test]
fn imports_hr_file_with_bom_types_and_special_dns() {
    let mut c = CsvConnector::new(hr_settings("hr.csv"), &data_dir()).unwrap();
    assert!(!c.capabilities().delta_import);
    assert!(c.capabilities().export);
    let objs = import(&mut c).unwrap();
    assert_eq!(objs.len(), 5);

    let john = by_anchor(&objs, "1001");
    assert_eq!(john.object_type, "person");
    // The BOM is not part of the first column name.
    assert_eq!(john.values("employeeId"), &[Value::from("1001")]);
    assert_eq!(john.dn.to_string(), "CN=Smith\\, John,OU=Sales,DC=corp");
    assert_eq!(
        john.values("roles"),
        &[Value::from("sales"), Value::from("crm")]
    );
    assert_eq!(john.values("costCenter"), &[Value::Int(4200)]);
    assert_eq!(john.values("active"), &[Value::Bool(true)]);
    assert_eq!(
        john.values("hireDate"),
        &[Value::Dt(parse_datetime("2020-01-15T00:00:00Z").unwrap())]
    );
    assert!(john.values("notes").is_empty(), "ignored column");

    let zoe = by_anchor(&objs, "1002");
    assert_eq!(zoe.dn.rdn().unwrap().value(), "Zoë Müller");
    assert!(zoe.values("roles").is_empty(), "empty cell = no value");
    assert_eq!(
        zoe.values("hireDate"),
        &[Value::Dt(parse_datetime("2019-03-01T00:00:00Z").unwrap())]
    );
    assert_eq!(zoe.dn.rdns[1].value(), "R&D");

    let special = by_anchor(&objs, "1003");
    assert_eq!(
        special.dn.rdn().unwrap().value(),
        "#hash+plus=eq;semi<lt>gt\"q\\bs"
    );
    assert_eq!(special.dn.rdns.len(), 3);
    assert_eq!(
        Dn::parse(&special.dn.to_string()).unwrap(),
        special.dn,
        "escaped DN parses back"
    );
    assert_eq!(special.values("active"), &[Value::Bool(true)]);

    let spaces = by_anchor(&objs, "1004");
    assert_eq!(spaces.dn.rdn().unwrap().value(), " Leading and trailing ");
    assert!(
        spaces
            .dn
            .to_string()
            .starts_with("CN=\\ Leading and trailing\\ ,")
    );
    assert_eq!(
        spaces.values("roles"),
        &[Value::from("a"), Value::from("b"), Value::from("c")]
    );
    assert_eq!(spaces.values("active"), &[Value::Bool(false)]);

    let uni = by_anchor(&objs, "1005");
    assert_eq!(uni.dn.rdn().unwrap().value(), "Ünïcødé Ñame");
    assert!(uni.values("active").is_empty());

    let schema = c.schema().unwrap();
    let person = &schema.object_types["person"];
    assert_eq!(person.attributes["costCenter"].ty, AttrType::Integer);
    assert!(person.attributes["roles"].multi_valued);
    assert_eq!(person.attributes["displayName"].ty, AttrType::String);
    assert!(!person.attributes.contains_key("notes"));
    assert_eq!(person.attributes.len(), 9);
}

#[test]
fn delimiter_and_multi_value_separator_are_configurable() {
    let mut s = CsvSettings::new("hr_semicolon.csv", "id");
    s.delimiter = ";".into();
    s.multi_value_separator = "|".into();
    s.multi_valued_columns = vec!["groups".into()];
    s.column_types.insert("level".into(), AttrType::Integer);
    s.object_type = "employee".into();
    let mut c = CsvConnector::new(s, &data_dir()).unwrap();
    let objs = import(&mut c).unwrap();
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0].dn.to_string(), "CN=a1");
    assert_eq!(objs[0].object_type, "employee");
    assert_eq!(objs[0].values("name"), &[Value::from("Alpha, Inc.")]);
    assert_eq!(
        objs[0].values("groups"),
        &[Value::from("g1"), Value::from("g2"), Value::from("g3")]
    );
    assert_eq!(objs[0].values("level"), &[Value::Int(3)]);
    assert_eq!(objs[1].values("name"), &[Value::from("Beta; Two")]);
    assert!(objs[1].values("level").is_empty());
    let mut out: Vec<ImportChange> = Vec::new();
    struct NoCs;
    impl ConnectorSpaceView for NoCs {
        fn by_anchor(&self, _: &str) -> Option<Object> {
            None
        }
        fn by_dn(&self, _: &Dn) -> Option<Object> {
            None
        }
        fn descendants(&self, _: &Dn) -> Vec<Object> {
            Vec::new()
        }
    }
    assert!(matches!(
        c.delta_import("", &NoCs, &mut out),
        Err(ConnectorError::Unsupported(_))
    ));
}

/// Imports `text` as `bad.csv` (anchor column `id`) and returns (line, message).
fn import_error(text: &[u8], f: impl FnOnce(&mut CsvSettings)) -> (usize, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.csv"), text).unwrap();
    let mut s = CsvSettings::new("bad.csv", "id");
    s.column_types.insert("level".into(), AttrType::Integer);
    s.column_types.insert("active".into(), AttrType::Boolean);
    s.column_types.insert("hired".into(), AttrType::DateTime);
    f(&mut s);
    let mut c = CsvConnector::new(s, dir.path()).unwrap();
    let err = import(&mut c).unwrap_err();
    let full = err.to_string();
    match err {
        ConnectorError::Input {
            file,
            line,
            message,
        } => {
            assert!(file.ends_with("bad.csv"), "{file}");
            assert!(full.starts_with(&format!("{file}:{line}: ")), "{full}");
            (line, message)
        }
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn bad_input_names_file_line_and_column() {
    let cases: Vec<(&[u8], usize, &[&str])> = vec![
        (
            b"id,name\n1,a\n2,b\n1,c\n",
            4,
            &["duplicate anchor '1'", "'id'", "line 2"],
        ),
        (b"id,name\n1,a\n ,b\n", 3, &["empty anchor", "'id'"]),
        (b"name,level\na,1\n", 1, &["anchor column 'id' is missing"]),
        (
            b"id,name\n1,a\n2,b,extra\n",
            3,
            &["expected 2 fields", "found 3"],
        ),
        (
            b"id,level\n1,12\n2,twelve\n",
            3,
            &["column 'level'", "twelve"],
        ),
        (b"id,active\n1,maybe\n", 2, &["column 'active'", "boolean"]),
        (
            b"id,hired\n1,yesterday\n",
            2,
            &["column 'hired'", "date-time"],
        ),
        (b"id,name\n1,caf\xe9\n", 2, &["field 2", "UTF-8"]),
        (b"", 1, &["header row is required"]),
        (b"id,name,Name\n", 1, &["duplicate column 'Name'"]),
        (b"id,,x\n", 1, &["column 2 has no name"]),
        // A quoted multi-line field: the error after it names the physical line.
        (
            b"id,note,level\n1,\"two\nlines\",1\n2,x,bad\n",
            4,
            &["column 'level'"],
        ),
        // A BOM does not shift line numbers.
        (b"\xef\xbb\xbfid,level\n1,x\n", 2, &["column 'level'"]),
    ];
    for (text, line, needles) in cases {
        let (l, msg) = import_error(text, |_| {});
        assert_eq!(l, line, "{msg} (input {:?})", String::from_utf8_lossy(text));
        for n in needles {
            assert!(msg.contains(n), "'{msg}' lacks '{n}'");
        }
    }
    let (l, msg) = import_error(b"id,name\n1,a\n", |s| {
        s.dn_template = "CN={displayName}".into()
    });
    assert_eq!(l, 1);
    assert!(msg.contains("displayName"), "{msg}");
    let (l, msg) = import_error(b"id,name\n1,a\n2,\n", |s| {
        s.dn_template = "CN={name}".into()
    });
    assert_eq!(l, 3);
    assert!(msg.contains("column 'name' is empty"), "{msg}");
    let (l, msg) = import_error(b"id,name\n1,a\n2,A\n", |s| {
        s.dn_template = "CN={name}".into()
    });
    assert_eq!(l, 3);
    assert!(msg.contains("duplicate DN"), "{msg}");
}

fn req(id: i64, anchor: Option<&str>, dn: &str, operation: ExportOperation) -> ExportRequest {
    ExportRequest {
        id,
        object_type: "person".into(),
        anchor: anchor.map(str::to_string),
        dn: Dn::parse(dn).unwrap(),
        operation,
    }
}

fn failed(r: &ExportResult) -> ExportErrorKind {
    match &r.outcome {
        ExportOutcome::Failed { kind, .. } => *kind,
        other => panic!("request {} succeeded: {other:?}", r.id),
    }
}

#[test]
fn export_updates_rows_in_place_with_per_object_results() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(data_dir().join("hr.csv"), dir.path().join("hr.csv")).unwrap();
    let mut c = CsvConnector::new(hr_settings("hr.csv"), dir.path()).unwrap();
    let mut new_attrs = Attributes::new();
    new_attrs.insert("employeeId".into(), vec!["2001".into()]);
    new_attrs.insert("displayName".into(), vec!["Nuño, Ana".into()]);
    new_attrs.insert("department".into(), vec!["HR".into()]);
    new_attrs.insert("roles".into(), vec!["x".into(), "y".into()]);
    new_attrs.insert("costCenter".into(), vec![Value::Int(7)]);
    new_attrs.insert("active".into(), vec![Value::Bool(true)]);
    let mut unknown_col = Attributes::new();
    unknown_col.insert("employeeId".into(), vec!["2002".into()]);
    unknown_col.insert("shoeSize".into(), vec!["44".into()]);
    let replace = |name: &str, values: Vec<Value>| AttributeChange::Replace {
        name: name.into(),
        values,
    };
    let batch = vec![
        req(
            1,
            Some("1001"),
            "CN=Smith\\, John,OU=Sales,DC=corp",
            ExportOperation::Update {
                changes: vec![
                    replace("Department", vec!["Marketing".into()]),
                    AttributeChange::Add {
                        name: "roles".into(),
                        values: vec!["lead".into()],
                    },
                    AttributeChange::Remove {
                        name: "roles".into(),
                        values: vec!["crm".into()],
                    },
                    replace("active", vec![Value::Bool(false)]),
                ],
                new_dn: None,
            },
        ),
        req(2, Some("1002"), "CN=x", ExportOperation::Delete),
        req(
            3,
            None,
            "CN=Nuño\\, Ana,OU=HR,DC=corp",
            ExportOperation::Add {
                attributes: new_attrs.clone(),
            },
        ),
        req(
            4,
            None,
            "CN=dup",
            ExportOperation::Add {
                attributes: new_attrs,
            },
        ),
        req(5, Some("9999"), "CN=nobody", ExportOperation::Delete),
        req(
            6,
            None,
            "CN=x",
            ExportOperation::Add {
                attributes: unknown_col,
            },
        ),
        req(
            7,
            Some("1003"),
            "CN=x",
            ExportOperation::Update {
                changes: vec![replace("sn", vec!["a".into(), "b".into()])],
                new_dn: None,
            },
        ),
        req(
            8,
            Some("1003"),
            "CN=x",
            ExportOperation::Update {
                changes: vec![replace("employeeId", vec!["1".into()])],
                new_dn: None,
            },
        ),
        // Found by DN when the anchor is unknown.
        req(
            9,
            None,
            "CN=Ünïcødé Ñame,OU=IT,DC=corp",
            ExportOperation::Update {
                changes: vec![replace("costCenter", vec![Value::Int(99)])],
                new_dn: None,
            },
        ),
        req(
            10,
            None,
            "CN=x",
            ExportOperation::Add {
                attributes: Attributes::new(),
            },
        ),
    ];
    let r = c.export(&batch).unwrap();
    assert_eq!(r.len(), 10);
    assert_eq!(
        r[0].outcome,
        ExportOutcome::Success {
            anchor: Some("1001".into())
        }
    );
    assert_eq!(
        r[1].outcome,
        ExportOutcome::Success {
            anchor: Some("1002".into())
        }
    );
    assert_eq!(
        r[2].outcome,
        ExportOutcome::Success {
            anchor: Some("2001".into())
        }
    );
    assert_eq!(failed(&r[3]), ExportErrorKind::ObjectAlreadyExists);
    assert_eq!(failed(&r[4]), ExportErrorKind::ObjectNotFound);
    assert_eq!(failed(&r[5]), ExportErrorKind::IdentityDataValidationFailed);
    assert_eq!(failed(&r[6]), ExportErrorKind::IdentityDataValidationFailed);
    assert_eq!(failed(&r[7]), ExportErrorKind::IdentityDataValidationFailed);
    assert!(matches!(r[8].outcome, ExportOutcome::Success { .. }));
    assert_eq!(failed(&r[9]), ExportErrorKind::IdentityDataValidationFailed);

    let bytes = std::fs::read(dir.path().join("hr.csv")).unwrap();
    assert!(bytes.starts_with(b"\xef\xbb\xbf"), "the BOM is kept");
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains("1001,\"Smith, John\",John,Smith,Marketing,sales;lead,4200,false,2020-01-15T00:00:00Z,\"keep me, please\"\n"),
        "{text}"
    );
    assert!(!text.contains("1002,"), "{text}");
    assert!(
        text.ends_with("2001,\"Nuño, Ana\",,,HR,x;y,7,true,,\n"),
        "{text}"
    );
    assert!(text.contains("\"multi\nline note\""), "{text}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let objs = import(&mut c).unwrap();
    assert_eq!(objs.len(), 5);
    let john = by_anchor(&objs, "1001");
    assert_eq!(john.dn.to_string(), "CN=Smith\\, John,OU=Marketing,DC=corp");
    assert_eq!(
        john.values("roles"),
        &[Value::from("sales"), Value::from("lead")]
    );
    assert_eq!(
        by_anchor(&objs, "1005").values("costCenter"),
        &[Value::Int(99)]
    );
    let ana = by_anchor(&objs, "2001");
    assert_eq!(ana.dn.rdn().unwrap().value(), "Nuño, Ana");
    assert_eq!(ana.values("active"), &[Value::Bool(true)]);
}

#[test]
fn export_round_trip_into_a_new_file() {
    let mut src = CsvConnector::new(hr_settings("hr.csv"), &data_dir()).unwrap();
    let objs = import(&mut src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut dst = CsvConnector::new(hr_settings("out/hr.csv"), dir.path()).unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    // Schema of a file that does not exist yet comes from the settings.
    let schema = dst.schema().unwrap();
    assert!(schema.object_types["person"].attributes["roles"].multi_valued);
    let batch: Vec<ExportRequest> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| ExportRequest {
            id: i as i64,
            object_type: o.object_type.clone(),
            anchor: None,
            dn: o.dn.clone(),
            operation: ExportOperation::Add {
                attributes: o.attributes.clone(),
            },
        })
        .collect();
    let r = dst.export(&batch).unwrap();
    assert!(
        r.iter()
            .all(|x| matches!(x.outcome, ExportOutcome::Success { .. })),
        "{r:?}"
    );
    let back = import(&mut dst).unwrap();
    assert_eq!(back, objs);
    let text = std::fs::read_to_string(dir.path().join("out/hr.csv")).unwrap();
    assert!(text.starts_with("employeeId,"), "{text}");
}

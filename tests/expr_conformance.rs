//! Table-driven conformance suite for the expression language (issue 3).
//!
//! Every function of the catalogue (except Cert*), the documented examples and edge cases of
//! Microsoft's "Functions Reference", operator levels, per-value application on multi-valued
//! attributes and the default-rule expressions of Entra Connect.

use chrono::{DateTime, Utc};
use dirsync::expr::{EvalContext, Expression, FlowValue};
use dirsync::model::Value;
use std::collections::HashMap;

/// An object with attributes, imported attributes and parameters.
struct Ctx {
    attrs: HashMap<String, Vec<Value>>,
    imported: HashMap<String, Vec<Value>>,
    params: HashMap<String, String>,
}

impl EvalContext for Ctx {
    fn attribute(&self, name: &str) -> &[Value] {
        self.attrs.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
    fn imported_attribute(&self, name: &str) -> &[Value] {
        self.imported.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
    fn parameter(&self, name: &str) -> Option<String> {
        self.params.get(name).cloned()
    }
}

fn s(x: &str) -> Value {
    Value::Str(x.to_string())
}
fn r(x: &str) -> Value {
    Value::Ref(x.to_string())
}

const GUID_BYTES: [u8; 16] = [
    186, 40, 78, 27, 161, 47, 210, 17, 136, 63, 0, 22, 211, 204, 164, 39,
];
const CGUID_BYTES: [u8; 16] = [
    94, 45, 60, 15, 123, 106, 141, 76, 158, 15, 161, 178, 195, 212, 229, 246,
];
const SID_BYTES: [u8; 28] = [
    1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 220, 244, 220, 59, 131, 61, 43, 70, 130, 139, 166, 40, 0,
    2, 0, 0,
];

fn params() -> HashMap<String, String> {
    [
        ("Domain.FQDN", "contoso.com"),
        ("Domain.Netbios", "CONTOSO"),
        ("Domain.LDAP", "DC=contoso,DC=com"),
        ("Forest.FQDN", "contoso.com"),
        ("Forest.Netbios", "CONTOSO"),
        ("Forest.LDAP", "DC=contoso,DC=com"),
        ("ForestLDAP", "DC=contoso,DC=com"),
        ("Connector.ID", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
        ("ReplaceString", "’:,Å:A,Ä:A,Ö:O,å:a,ä:a,ö:o"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Context "a": an enabled user without userPrincipalName and a distribution group type.
fn ctx_a() -> Ctx {
    let mut a: HashMap<String, Vec<Value>> = HashMap::new();
    let mut put = |k: &str, v: Vec<Value>| {
        a.insert(k.to_string(), v);
    };
    put("givenName", vec![s(" John ")]);
    put("sn", vec![s("Doe ")]);
    put("sAMAccountName", vec![s("jdoe")]);
    put("displayName", vec![s("Doe, John")]);
    put("cn", vec![s("John Doe")]);
    put("userAccountControl", vec![Value::Int(512)]);
    put("groupType", vec![Value::Int(2)]);
    put(
        "proxyAddresses",
        vec![
            s("SMTP:john.doe@contoso.com"),
            s(" smtp:jd@contoso.com "),
            s("SIP:john.doe@contoso.com"),
            s("x500:/o=Contoso"),
        ],
    );
    put("otherPhone", vec![s("555-123-4567"), s("555-987-6543")]);
    put("dupes", vec![s("a"), s("b"), s("a"), s("c"), s("b")]);
    put("objectGUID", vec![Value::Bin(GUID_BYTES.to_vec())]);
    put("objectSid", vec![Value::Bin(SID_BYTES.to_vec())]);
    put(
        "dn",
        vec![r("cn=Joe,ou=Atlanta,ou=GA,ou=US, dc=contoso,dc=com")],
    );
    put("pwdLastSet", vec![Value::Int(130_543_784_930_000_000)]);
    put("employeeStartTime", vec![s("2013-01-10 4:00 PM -8")]);
    put("mail", vec![s("John.Doe@Contoso.com")]);
    put("address", vec![s("1 Main St\r\nSeattle")]);
    put("empty", vec![s("")]);
    put("number", vec![s("42")]);
    put("guidText", vec![s("0f3c2d5e-6a7b-4c8d-9e0f-a1b2c3d4e5f6")]);
    put(
        "member",
        vec![
            r("CN=A,OU=Users,DC=contoso,DC=com"),
            r("CN=B,OU=Users,DC=contoso,DC=com"),
            r("CN=C,OU=Users,DC=contoso,DC=com"),
        ],
    );
    put("city", vec![s("Rome")]);
    put("enabled", vec![Value::Bool(true)]);
    put(
        "whenCreated",
        vec![Value::Dt(
            "2012-01-01T23:00:00Z"
                .parse::<DateTime<Utc>>()
                .unwrap_or_default(),
        )],
    );
    let mut imported = a.clone();
    imported.insert("mail".to_string(), vec![s("old@contoso.com")]);
    Ctx {
        attrs: a,
        imported,
        params: params(),
    }
}

/// Context "b": a disabled user with a UPN and a ConsistencyGuid; a security group type;
/// a critical system object.
fn ctx_b() -> Ctx {
    let mut c = ctx_a();
    let a = &mut c.attrs;
    a.insert("userPrincipalName".into(), vec![s("jane@contoso.com")]);
    a.insert("userAccountControl".into(), vec![Value::Int(514)]);
    a.insert("groupType".into(), vec![Value::Int(-2_147_483_646)]);
    a.insert(
        "mS-DS-ConsistencyGuid".into(),
        vec![Value::Bin(CGUID_BYTES.to_vec())],
    );
    a.insert("isCriticalSystemObject".into(), vec![Value::Bool(true)]);
    a.insert("sAMAccountName".into(), vec![s("AAD_1234")]);
    a.insert("city".into(), vec![s("Oslo")]);
    c
}

/// Context "c": an empty object (every attribute absent).
fn ctx_c() -> Ctx {
    Ctx {
        attrs: HashMap::new(),
        imported: HashMap::new(),
        params: params(),
    }
}

/// Expected outcome of one case.
#[derive(Debug, Clone)]
enum X {
    /// One string value.
    S(&'static str),
    /// One integer.
    I(i64),
    /// One boolean.
    B(bool),
    /// NULL (no values).
    N,
    /// Several string values.
    M(&'static [&'static str]),
    /// One binary value, given as base64.
    Bin64(&'static str),
    /// One reference.
    R(&'static str),
    /// One date-time (RFC 3339).
    Dt(&'static str),
    /// AuthoritativeNull.
    AuthNull,
    /// IgnoreThisFlow.
    Ignore,
    /// A runtime error whose message contains the text.
    Fail(&'static str),
    /// A parse error whose message contains the text.
    Parse(&'static str),
    /// Any single string matching a predicate name (checked separately).
    Guid,
}

use X::*;

/// (context, expression, expected)
const CASES: &[(char, &str, X)] = &[
    // ---------- literals ----------
    ('a', r#""Contoso""#, S("Contoso")),
    ('a', r#""say ""hi""""#, S("say \"hi\"")),
    ('a', r#""""#, S("")),
    ('a', "42", I(42)),
    ('a', "-42", I(-42)),
    ('a', "-9223372036854775808", I(i64::MIN)),
    ('a', "9223372036854775807", I(i64::MAX)),
    ('a', "&HFF", I(255)),
    ('a', "&hff", I(255)),
    ('a', "&HF7", I(247)),
    ('a', "&H80000000", I(2_147_483_648)),
    ('a', "&HFFFFFFFFFFFFFFFF", I(-1)),
    ('a', "True", B(true)),
    ('a', "False", B(false)),
    ('a', "NULL", N),
    ('a', "CRLF", S("\r\n")),
    ('a', "IgnoreThisFlow", Ignore),
    ('a', "AuthoritativeNull", AuthNull),
    ('a', r#""a" & CRLF & "b""#, S("a\r\nb")),
    ('a', "(((7)))", I(7)),
    // ---------- attributes and parameters ----------
    ('a', "[sAMAccountName]", S("jdoe")),
    ('a', "[userPrincipalName]", N),
    ('a', "[userAccountControl]", I(512)),
    ('a', "[enabled]", B(true)),
    (
        'a',
        "[dn]",
        R("cn=Joe,ou=Atlanta,ou=GA,ou=US, dc=contoso,dc=com"),
    ),
    ('a', "[whenCreated]", Dt("2012-01-01T23:00:00Z")),
    ('a', "[objectGUID]", Bin64("uihOG6Ev0hGIPwAW08ykJw==")),
    ('a', "[otherPhone]", M(&["555-123-4567", "555-987-6543"])),
    ('a', "[samaccountname]", N),
    ('a', "%Domain.FQDN%", S("contoso.com")),
    ('a', "%Domain.Netbios%", S("CONTOSO")),
    ('a', "%Domain.LDAP%", S("DC=contoso,DC=com")),
    ('a', "%Forest.FQDN%", S("contoso.com")),
    ('a', "%Forest.Netbios%", S("CONTOSO")),
    ('a', "%Forest.LDAP%", S("DC=contoso,DC=com")),
    (
        'a',
        "%Connector.ID%",
        S("3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    ),
    ('a', "%NoSuchParameter%", Fail("unknown parameter")),
    (
        'a',
        r#"%Domain.Netbios% & "\" & [sAMAccountName]"#,
        S("CONTOSO\\jdoe"),
    ),
    ('a', r#"ImportedValue("mail")"#, S("old@contoso.com")),
    ('a', r#"ValueCount("member")"#, I(3)),
    ('a', r#"ValueCount("nothing")"#, I(0)),
    ('a', r#"ValueCount("proxyAddresses") > 1"#, B(true)),
    // ---------- operators: three levels, left to right inside a level ----------
    ('a', "2+3*4", I(20)),
    ('a', "5-2*3", I(9)),
    ('a', "2*3+4", I(10)),
    ('a', "10-3-2", I(5)),
    ('a', "2*(3+4)", I(14)),
    ('a', "2*(5+3)", I(16)),
    ('a', "2*5+3", I(13)),
    ('a', "2*(5+3) = 2*5+3", B(false)),
    ('a', "1+2=3", B(true)),
    ('a', "3=1+2", B(true)),
    ('a', "1+1=2 && 2*2=4", B(true)),
    ('a', "1=2 || 2=2", B(true)),
    ('a', "1=2 || 2=3", B(false)),
    ('a', "True || False && False", B(false)),
    ('a', "False && True || True", B(true)),
    ('a', "1 < 2", B(true)),
    ('a', "2 <= 2", B(true)),
    ('a', "2 <> 2", B(false)),
    ('a', "3 > 2", B(true)),
    ('a', "3 >= 4", B(false)),
    ('a', "2 < 10", B(true)),
    ('a', r#""2" < "10""#, B(false)),
    ('a', r#""abc" = "abc""#, B(true)),
    ('a', r#""abc" = "ABC""#, B(false)),
    ('a', r#""abc" <> "ABC""#, B(true)),
    ('a', r#""a" < "b""#, B(true)),
    ('a', r#""42" = 42"#, B(true)),
    ('a', "[number] + 1", I(43)),
    ('a', r#""1" + "2""#, S("12")),
    ('a', r#""a" & 1 & True"#, S("a1True")),
    ('a', r#"NULL & "x""#, S("x")),
    ('a', "NULL & NULL", N),
    ('a', "NULL + 1", N),
    ('a', "NULL = NULL", B(true)),
    ('a', "[userPrincipalName] = \"x\"", B(false)),
    ('a', "[userPrincipalName] <> \"x\"", B(true)),
    ('a', "-(2+3)", I(-5)),
    ('a', "4 - -2", I(6)),
    ('a', "+5", I(5)),
    ('a', "3 - +2", I(1)),
    ('a', "- -7", I(7)),
    ('a', "-[userAccountControl]", I(-512)),
    ('a', "-[userPrincipalName]", N),
    ('a', r#"-"x""#, Fail("not a number")),
    ('a', "9223372036854775807 + 1", Fail("overflow")),
    ('a', "[objectGUID] = [objectGUID]", B(true)),
    ('a', "[whenCreated] < Now()", B(true)),
    (
        'a',
        r#"[whenCreated] = CDate("2012-01-01 23:00:00")"#,
        B(true),
    ),
    ('a', "True = 1", B(true)),
    ('a', r#"IsPresent([sAMAccountName]) = "True""#, B(true)),
    // ---------- per-value application on multi-valued attributes ----------
    (
        'a',
        "Trim([proxyAddresses])",
        M(&[
            "SMTP:john.doe@contoso.com",
            "smtp:jd@contoso.com",
            "SIP:john.doe@contoso.com",
            "x500:/o=Contoso",
        ]),
    ),
    (
        'a',
        "LCase(Trim([proxyAddresses]))",
        M(&[
            "smtp:john.doe@contoso.com",
            "smtp:jd@contoso.com",
            "sip:john.doe@contoso.com",
            "x500:/o=contoso",
        ]),
    ),
    (
        'a',
        r#"IIF(InStr([proxyAddresses],"SIP:")=1,NULL,[proxyAddresses])"#,
        M(&[
            "SMTP:john.doe@contoso.com",
            " smtp:jd@contoso.com ",
            "x500:/o=Contoso",
        ]),
    ),
    (
        'a',
        r#"Word(Trim([proxyAddresses]),1,":")"#,
        M(&["SMTP", "smtp", "SIP", "x500"]),
    ),
    (
        'a',
        r#"[otherPhone] & "!""#,
        M(&["555-123-4567!", "555-987-6543!"]),
    ),
    (
        'a',
        r#"Word(Trim([proxyAddresses]),1,"@") & "@fabrikam.com""#,
        M(&[
            "SMTP:john.doe@fabrikam.com",
            "smtp:jd@fabrikam.com",
            "SIP:john.doe@fabrikam.com",
            "x500:/o=Contoso@fabrikam.com",
        ]),
    ),
    (
        'a',
        r#"Replace([otherPhone],"-","")"#,
        M(&["5551234567", "5559876543"]),
    ),
    ('a', "Len([otherPhone])", M(&["12", "12"])),
    ('a', r#"Left([otherPhone],3) = "555""#, M(&["True", "True"])),
    (
        'a',
        "UCase([member])",
        M(&[
            "CN=A,OU=USERS,DC=CONTOSO,DC=COM",
            "CN=B,OU=USERS,DC=CONTOSO,DC=COM",
            "CN=C,OU=USERS,DC=CONTOSO,DC=COM",
        ]),
    ),
    ('a', r#"DNComponent([member],1)"#, M(&["A", "B", "C"])),
    (
        'a',
        r#"Split([otherPhone],"-")"#,
        M(&["555", "123", "4567", "555", "987", "6543"]),
    ),
    (
        'a',
        r#"[otherPhone] & [otherPhone]"#,
        M(&["555-123-4567555-123-4567", "555-987-6543555-987-6543"]),
    ),
    (
        'a',
        r#"[otherPhone] & [proxyAddresses]"#,
        Fail("different lengths"),
    ),
    ('c', "Trim([proxyAddresses])", N),
    // ---------- default-rule expressions ----------
    (
        'a',
        "IIF(BitAnd([userAccountControl],2)=0,True,False)",
        B(true),
    ),
    (
        'b',
        "IIF(BitAnd([userAccountControl],2)=0,True,False)",
        B(false),
    ),
    (
        'a',
        r#"IIF(IsPresent([userPrincipalName]),[userPrincipalName],[sAMAccountName]&"@"&%Domain.FQDN%)"#,
        S("jdoe@contoso.com"),
    ),
    (
        'b',
        r#"IIF(IsPresent([userPrincipalName]),[userPrincipalName],[sAMAccountName]&"@"&%Domain.FQDN%)"#,
        S("jane@contoso.com"),
    ),
    (
        'a',
        r#"[sAMAccountName]&"@"&%Domain.FQDN%"#,
        S("jdoe@contoso.com"),
    ),
    ('a', "CBool(BitAnd([groupType],-2147483648))", B(false)),
    ('b', "CBool(BitAnd([groupType],-2147483648))", B(true)),
    ('b', "BitAnd([groupType],-2147483648)", I(-2_147_483_648)),
    ('b', "BitAnd([groupType],&H80000000) <> 0", B(true)),
    (
        'a',
        "ConvertToBase64(IIF(IsPresent([mS-DS-ConsistencyGuid]),[mS-DS-ConsistencyGuid],[objectGUID]))",
        S("uihOG6Ev0hGIPwAW08ykJw=="),
    ),
    (
        'b',
        "ConvertToBase64(IIF(IsPresent([mS-DS-ConsistencyGuid]),[mS-DS-ConsistencyGuid],[objectGUID]))",
        S("Xi08D3tqjUyeD6Gyw9Tl9g=="),
    ),
    (
        'a',
        "IIF(IsPresent([mS-DS-ConsistencyGuid]),[mS-DS-ConsistencyGuid],[objectGUID])",
        Bin64("uihOG6Ev0hGIPwAW08ykJw=="),
    ),
    (
        'a',
        "ConvertToBase64([objectGUID])",
        S("uihOG6Ev0hGIPwAW08ykJw=="),
    ),
    (
        'a',
        r#"IIF(IsPresent([isCriticalSystemObject]) || IsPresent([sAMAccountName]) = False || [sAMAccountName] = "SUPPORT_388945a0" || Left([sAMAccountName], 4) = "AAD_", True, NULL)"#,
        N,
    ),
    (
        'b',
        r#"IIF(IsPresent([isCriticalSystemObject]) || IsPresent([sAMAccountName]) = False || [sAMAccountName] = "SUPPORT_388945a0" || Left([sAMAccountName], 4) = "AAD_", True, NULL)"#,
        B(true),
    ),
    (
        'c',
        r#"IIF(IsPresent([isCriticalSystemObject]) || IsPresent([sAMAccountName]) = False || [sAMAccountName] = "SUPPORT_388945a0" || Left([sAMAccountName], 4) = "AAD_", True, NULL)"#,
        B(true),
    ),
    (
        'b',
        r#"IIF(IsPresent([sAMAccountName]) = False || Left([sAMAccountName], 4) = "AAD_", True, NULL)"#,
        B(true),
    ),
    (
        'a',
        r#"IIF(IsPresent([displayName]),[displayName],[cn])"#,
        S("Doe, John"),
    ),
    (
        'c',
        r#"IIF(IsPresent([displayName]),[displayName],[cn])"#,
        N,
    ),
    ('a', "Trim([givenName])", S("John")),
    ('c', "Trim([givenName])", N),
    ('a', "Trim([mail])", S("John.Doe@Contoso.com")),
    (
        'a',
        r#"Trim([givenName]) & " " & Trim([sn])"#,
        S("John Doe"),
    ),
    (
        'a',
        r#"IIF(IsNullOrEmpty([userPrincipalName]),AuthoritativeNull,[userPrincipalName])"#,
        AuthNull,
    ),
    (
        'a',
        r#"IIF(IsPresent([userPrincipalName]),[userPrincipalName],IgnoreThisFlow)"#,
        Ignore,
    ),
    (
        'a',
        r#"IIF(Contains([proxyAddresses],"SMTP:")>0,[proxyAddresses],Error("No primary SMTP address found."))"#,
        M(&[
            "SMTP:john.doe@contoso.com",
            " smtp:jd@contoso.com ",
            "SIP:john.doe@contoso.com",
            "x500:/o=Contoso",
        ]),
    ),
    (
        'c',
        r#"IIF(Contains([proxyAddresses],"SMTP:")>0,[proxyAddresses],Error("No primary SMTP address found."))"#,
        Fail("No primary SMTP address found."),
    ),
    // ---------- BitAnd / BitOr / IsBitSet / RandomNum ----------
    ('a', "BitAnd(&HF, &HF7)", I(7)),
    ('a', "BitAnd(12, 10)", I(8)),
    ('a', "BitAnd(-1, 255)", I(255)),
    ('a', "BitAnd([userPrincipalName], 2)", N),
    ('a', "BitOr(&HF, &HF7)", I(255)),
    ('a', "BitOr(1, 2)", I(3)),
    ('a', "BitOr(0, 0)", I(0)),
    ('a', "IsBitSet(&HF,4)", B(true)),
    ('a', "IsBitSet(&H10,4)", B(false)),
    ('a', "IsBitSet([userAccountControl],2)", B(false)),
    ('b', "IsBitSet([userAccountControl],2)", B(true)),
    ('c', "IsBitSet([userAccountControl],2)", B(false)),
    ('a', "RandomNum(5,5)", I(5)),
    (
        'a',
        "RandomNum(1,10) >= 1 && RandomNum(1,10) <= 10",
        B(true),
    ),
    ('a', "RandomNum(10,1)", Fail("RandomNum")),
    // ---------- CBool ----------
    ('a', "CBool(1)", B(true)),
    ('a', "CBool(0)", B(false)),
    ('a', "CBool(-5)", B(true)),
    ('a', r#"CBool("True")"#, B(true)),
    ('a', r#"CBool("false")"#, B(false)),
    ('a', "CBool([givenName] = [sn])", B(false)),
    ('a', "CBool([sAMAccountName] = [sAMAccountName])", B(true)),
    ('a', r#"CBool("maybe")"#, Fail("not a boolean")),
    ('a', "CBool([userPrincipalName])", N),
    // ---------- CDate / DateFromNum / NumFromDate / DateAdd / FormatDateTime / Now ----------
    (
        'a',
        r#"CDate("2013-01-10 4:00 PM -8")"#,
        Dt("2013-01-11T00:00:00Z"),
    ),
    (
        'a',
        "CDate([employeeStartTime])",
        Dt("2013-01-11T00:00:00Z"),
    ),
    ('a', r#"CDate("2001-01-01")"#, Dt("2001-01-01T00:00:00Z")),
    (
        'a',
        r#"CDate("2012-01-01 23:00:00")"#,
        Dt("2012-01-01T23:00:00Z"),
    ),
    (
        'a',
        r#"CDate("2012-01-01T23:00:00Z")"#,
        Dt("2012-01-01T23:00:00Z"),
    ),
    (
        'a',
        r#"CDate("2012-01-01T23:00:00+02:00")"#,
        Dt("2012-01-01T21:00:00Z"),
    ),
    ('a', r#"CDate("12/25/2007")"#, Dt("2007-12-25T00:00:00Z")),
    ('a', r#"CDate("25.12.2007")"#, Dt("2007-12-25T00:00:00Z")),
    (
        'a',
        r#"CDate("20120101230000.0Z")"#,
        Dt("2012-01-01T23:00:00Z"),
    ),
    (
        'a',
        r#"CDate("20120101230000.0-0500")"#,
        Dt("2012-01-02T04:00:00Z"),
    ),
    (
        'a',
        r#"CDate("20120101230000")"#,
        Dt("2012-01-01T23:00:00Z"),
    ),
    (
        'a',
        r#"CDate("20120101230000.5Z")"#,
        Dt("2012-01-01T23:00:00.5Z"),
    ),
    ('a', r#"CDate("20121301230000Z")"#, Fail("not a date")),
    ('a', r#"CDate("10 Jan 2013")"#, Dt("2013-01-10T00:00:00Z")),
    (
        'a',
        r#"CDate("January 10, 2013 4:00 PM")"#,
        Dt("2013-01-10T16:00:00Z"),
    ),
    (
        'a',
        r#"CDate("Thursday, January 10, 2013 4:00 PM -8")"#,
        Dt("2013-01-11T00:00:00Z"),
    ),
    (
        'a',
        r#"CDate("Thu, 10 Jan 2013 16:00:00 GMT")"#,
        Dt("2013-01-10T16:00:00Z"),
    ),
    ('a', r#"CDate("Jan 2013")"#, Fail("not a date")),
    (
        'a',
        r#"CDate("2012-01-01 12:30 AM")"#,
        Dt("2012-01-01T00:30:00Z"),
    ),
    (
        'a',
        r#"CDate("2012-01-01 12:30 PM")"#,
        Dt("2012-01-01T12:30:00Z"),
    ),
    ('a', r#"CDate("2012-02-30")"#, Fail("not a date")),
    ('a', r#"CDate("next tuesday")"#, Fail("not a date")),
    ('a', "CDate([whenCreated])", Dt("2012-01-01T23:00:00Z")),
    (
        'a',
        "DateFromNum(129699324000000000)",
        Dt("2012-01-01T23:00:00Z"),
    ),
    ('a', "DateFromNum(0)", Dt("1601-01-01T00:00:00Z")),
    (
        'a',
        "DateFromNum(116444736000000000)",
        Dt("1970-01-01T00:00:00Z"),
    ),
    ('a', "DateFromNum([pwdLastSet])", Dt("2014-09-05T08:14:53Z")),
    ('c', "DateFromNum([pwdLastSet])", N),
    (
        'a',
        r#"NumFromDate(CDate("2012-01-01 23:00:00"))"#,
        I(129_699_324_000_000_000),
    ),
    (
        'a',
        "NumFromDate(DateFromNum(129699324000000000))",
        I(129_699_324_000_000_000),
    ),
    (
        'a',
        "NumFromDate([whenCreated])",
        I(129_699_324_000_000_000),
    ),
    (
        'a',
        r#"DateAdd("m", 3, CDate("2001-01-01"))"#,
        Dt("2001-04-01T00:00:00Z"),
    ),
    (
        'a',
        r#"DateAdd("yyyy", 1, CDate("2012-02-29"))"#,
        Dt("2013-02-28T00:00:00Z"),
    ),
    (
        'a',
        r#"DateAdd("q", 1, CDate("2001-01-31"))"#,
        Dt("2001-04-30T00:00:00Z"),
    ),
    (
        'a',
        r#"DateAdd("d", 1, CDate("2001-12-31"))"#,
        Dt("2002-01-01T00:00:00Z"),
    ),
    (
        'a',
        r#"DateAdd("y", 2, CDate("2001-01-01"))"#,
        Dt("2001-01-03T00:00:00Z"),
    ),
    (
        'a',
        r#"DateAdd("w", -1, CDate("2001-01-01"))"#,
        Dt("2000-12-31T00:00:00Z"),
    ),
    (
        'a',
        r#"DateAdd("ww", 2, CDate("2001-01-01"))"#,
        Dt("2001-01-15T00:00:00Z"),
    ),
    (
        'a',
        r#"DateAdd("h", 25, CDate("2001-01-01"))"#,
        Dt("2001-01-02T01:00:00Z"),
    ),
    (
        'a',
        r#"DateAdd("n", 90, CDate("2001-01-01"))"#,
        Dt("2001-01-01T01:30:00Z"),
    ),
    (
        'a',
        r#"DateAdd("s", -1, CDate("2001-01-01"))"#,
        Dt("2000-12-31T23:59:59Z"),
    ),
    (
        'a',
        r#"DateAdd("m", -1, CDate("2001-03-31"))"#,
        Dt("2001-02-28T00:00:00Z"),
    ),
    (
        'a',
        r#"DateAdd("x", 1, CDate("2001-01-01"))"#,
        Fail("unknown interval"),
    ),
    ('a', r#"DateAdd("d", 1, [userPrincipalName])"#, N),
    (
        'a',
        r#"FormatDateTime(DateFromNum([pwdLastSet]),"yyyyMMddHHmmss.0Z")"#,
        S("20140905081453.0Z"),
    ),
    (
        'a',
        r#"FormatDateTime(CDate("12/25/2007"),"yyyy-MM-dd")"#,
        S("2007-12-25"),
    ),
    (
        'a',
        r#"FormatDateTime(CDate("12/25/2007"),"yyyy-mm-dd")"#,
        S("2007-00-25"),
    ),
    (
        'a',
        r#"FormatDateTime([whenCreated],"dd/MM/yy HH:mm")"#,
        S("01/01/12 23:00"),
    ),
    (
        'a',
        r#"FormatDateTime([whenCreated],"dddd d MMMM yyyy")"#,
        S("Sunday 1 January 2012"),
    ),
    (
        'a',
        r#"FormatDateTime([whenCreated],"ddd MMM d")"#,
        S("Sun Jan 1"),
    ),
    (
        'a',
        r#"FormatDateTime([whenCreated],"h:mm tt")"#,
        S("11:00 PM"),
    ),
    (
        'a',
        r#"FormatDateTime([whenCreated],"'Day' d")"#,
        S("Day 1"),
    ),
    (
        'a',
        r#"FormatDateTime([whenCreated],"s")"#,
        S("2012-01-01T23:00:00"),
    ),
    (
        'a',
        r#"FormatDateTime([whenCreated],"yyyy-MM-ddTHH:mm:ss.fffK")"#,
        S("2012-01-01T23:00:00.000Z"),
    ),
    ('c', r#"FormatDateTime([whenCreated],"yyyy")"#, N),
    ('a', r#"FormatDateTime(Now(),"yyyy") >= "2024""#, B(true)),
    ('a', "IsDate(Now())", B(true)),
    ('a', "Now() > [whenCreated]", B(true)),
    // ---------- CGuid / IsGuid / StringFromGuid / GUID / StringFromSid ----------
    (
        'a',
        r#"ConvertToBase64(CGuid("0f3c2d5e-6a7b-4c8d-9e0f-a1b2c3d4e5f6"))"#,
        S("Xi08D3tqjUyeD6Gyw9Tl9g=="),
    ),
    (
        'a',
        r#"ConvertToBase64(CGuid("{0f3c2d5e-6a7b-4c8d-9e0f-a1b2c3d4e5f6}"))"#,
        S("Xi08D3tqjUyeD6Gyw9Tl9g=="),
    ),
    ('a', r#"CGuid("not-a-guid")"#, Fail("not a GUID")),
    ('a', "CGuid([guidText])", Bin64("Xi08D3tqjUyeD6Gyw9Tl9g==")),
    ('a', "IsGuid([guidText])", B(true)),
    (
        'a',
        r#"IsGuid("{0f3c2d5e-6a7b-4c8d-9e0f-a1b2c3d4e5f6}")"#,
        B(true),
    ),
    (
        'a',
        r#"IsGuid("0f3c2d5e6a7b4c8d9e0fa1b2c3d4e5f6")"#,
        B(true),
    ),
    ('a', r#"IsGuid("0f3c2d5e-6a7b-4c8d-9e0f")"#, B(false)),
    ('a', "IsGuid([sAMAccountName])", B(false)),
    ('a', "IsGuid([userPrincipalName])", B(false)),
    (
        'a',
        r#"IIF(IsGuid([guidText]),CGuid([guidText]),NULL)"#,
        Bin64("Xi08D3tqjUyeD6Gyw9Tl9g=="),
    ),
    (
        'a',
        r#"IIF(IsGuid([sAMAccountName]),CGuid([sAMAccountName]),NULL)"#,
        N,
    ),
    (
        'a',
        "StringFromGuid([objectGUID])",
        S("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
    ),
    (
        'b',
        "StringFromGuid([mS-DS-ConsistencyGuid])",
        S("0f3c2d5e-6a7b-4c8d-9e0f-a1b2c3d4e5f6"),
    ),
    (
        'a',
        r#"StringFromGuid(CGuid("1b4e28ba-2fa1-11d2-883f-0016d3cca427"))"#,
        S("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
    ),
    ('a', r#"StringFromGuid(CBin("abc"))"#, Fail("16 bytes")),
    ('a', "GUID()", Guid),
    ('a', "Guid()", Guid),
    ('a', "IsGuid(GUID())", B(true)),
    ('a', "GUID() <> GUID()", B(true)),
    (
        'a',
        "StringFromSid([objectSid])",
        S("S-1-5-21-1004336348-1177238915-682003330-512"),
    ),
    ('a', r#"StringFromSid(CBin("x"))"#, Fail("SID")),
    ('c', "StringFromSid([objectSid])", N),
    // ---------- base64 / UTF-8 hex ----------
    (
        'a',
        r#"ConvertToBase64("Hello world!")"#,
        S("SABlAGwAbABvACAAdwBvAHIAbABkACEA"),
    ),
    (
        'a',
        r#"ConvertToBase64([sAMAccountName])"#,
        S("agBkAG8AZQA="),
    ),
    ('a', r#"ConvertToBase64("")"#, S("")),
    ('c', "ConvertToBase64([objectGUID])", N),
    (
        'a',
        r#"ConvertFromBase64("SABlAGwAbABvACAAdwBvAHIAbABkACEA")"#,
        S("Hello world!"),
    ),
    (
        'a',
        r#"ConvertFromBase64("SABlAGwAbABvACAAdwBvAHIAbABkACEA", Unicode)"#,
        S("Hello world!"),
    ),
    (
        'a',
        r#"ConvertFromBase64("SGVsbG8gd29ybGQh", UTF8)"#,
        S("Hello world!"),
    ),
    (
        'a',
        r#"ConvertFromBase64("SGVsbG8gd29ybGQh", "UTF8")"#,
        S("Hello world!"),
    ),
    (
        'a',
        r#"ConvertFromBase64("SGVsbG8gd29ybGQh", ASCII)"#,
        S("Hello world!"),
    ),
    ('a', r#"ConvertFromBase64("w6k=", ASCII)"#, S("??")),
    ('a', r#"ConvertFromBase64("w6k=", UTF8)"#, S("é")),
    ('a', r#"ConvertFromBase64("!!!")"#, Fail("invalid base64")),
    (
        'a',
        r#"ConvertFromBase64("SGVsbG8gd29ybGQh", EBCDIC)"#,
        Parse("unknown identifier"),
    ),
    (
        'a',
        r#"ConvertFromBase64("SGVsbG8gd29ybGQh", "EBCDIC")"#,
        Fail("encoding"),
    ),
    (
        'a',
        r#"ConvertFromBase64(ConvertToBase64("Räksmörgås"))"#,
        S("Räksmörgås"),
    ),
    (
        'a',
        r#"ConvertToUTF8Hex("Hello world!")"#,
        S("48656C6C6F20776F726C6421"),
    ),
    ('a', r#"ConvertToUTF8Hex("é")"#, S("C3A9")),
    (
        'a',
        r#"ConvertFromUTF8Hex("48656C6C6F20776F726C6421")"#,
        S("Hello world!"),
    ),
    ('a', r#"ConvertFromUTF8Hex("48656c6c6f")"#, S("Hello")),
    ('a', r#"ConvertFromUTF8Hex("C3A9")"#, S("é")),
    ('a', r#"ConvertFromUTF8Hex("ABC")"#, Fail("hexadecimal")),
    ('a', r#"ConvertFromUTF8Hex("FF")"#, Fail("UTF-8")),
    (
        'a',
        r#"ConvertFromUTF8Hex(ConvertToUTF8Hex([displayName]))"#,
        S("Doe, John"),
    ),
    // ---------- CNum / CRef / CStr / CBin ----------
    ('a', r#"CNum("42")"#, I(42)),
    ('a', r#"CNum(" -7 ")"#, I(-7)),
    ('a', "CNum([number]) * 2", I(84)),
    ('a', "CNum(True)", I(1)),
    ('a', r#"CNum("&H10")"#, I(16)),
    ('a', r#"CNum("abc")"#, Fail("not a number")),
    ('c', "CNum([number])", N),
    (
        'a',
        r#"CRef("CN=LC Services,CN=Microsoft,DC=contoso,DC=com")"#,
        R("CN=LC Services,CN=Microsoft,DC=contoso,DC=com"),
    ),
    ('a', r#"CRef([sAMAccountName])"#, R("jdoe")),
    (
        'a',
        "CStr([dn])",
        S("cn=Joe,ou=Atlanta,ou=GA,ou=US, dc=contoso,dc=com"),
    ),
    ('a', "CStr(42)", S("42")),
    ('a', "CStr(-1)", S("-1")),
    ('a', "CStr(True)", S("True")),
    ('a', "CStr(False)", S("False")),
    ('a', "CStr([whenCreated])", S("2012-01-01T23:00:00Z")),
    ('a', "CStr([userAccountControl])", S("512")),
    ('a', "CStr([objectGUID])", Fail("binary")),
    ('c', "CStr([userAccountControl])", N),
    ('a', r#"CBin("AB")"#, Bin64("QUI=")),
    ('a', "CBin([objectGUID])", Bin64("uihOG6Ev0hGIPwAW08ykJw==")),
    (
        'a',
        "ConvertToBase64(CBin([objectGUID]))",
        S("uihOG6Ev0hGIPwAW08ykJw=="),
    ),
    ('a', "CBin(1)", Bin64("AQAAAAAAAAA=")),
    ('a', "CBin(True)", Fail("CBin")),
    // ---------- DNComponent / DNComponentRev / EscapeDNComponent ----------
    ('a', "DNComponent(CRef([dn]),1)", S("Joe")),
    ('a', "DNComponent([dn],2)", S("Atlanta")),
    ('a', "DNComponent([dn],6)", S("com")),
    ('a', "DNComponent([dn],7)", N),
    ('a', "DNComponent([dn],0)", N),
    ('a', "DNComponentRev(CRef([dn]),3)", S("US")),
    ('a', r#"DNComponentRev(CRef([dn]),1,"DC")"#, S("US")),
    ('a', "DNComponentRev([dn],1,DC)", S("US")),
    ('a', r#"DNComponentRev([dn],2,"DC")"#, S("GA")),
    ('a', "DNComponentRev([dn],1)", S("com")),
    ('a', r#"DNComponentRev([dn],9,"DC")"#, N),
    (
        'a',
        r#"DNComponentRev([dn],1,"OU")"#,
        Fail("unknown option"),
    ),
    (
        'a',
        r#"DNComponent(CRef("cn=Smith\, John,ou=Sales,dc=x"),1)"#,
        S("Smith, John"),
    ),
    (
        'a',
        r#"DNComponent(CRef("not a dn"),1)"#,
        Fail("DNComponent"),
    ),
    ('c', "DNComponent([dn],1)", N),
    (
        'a',
        r#"EscapeDNComponent("cn=" & [displayName])"#,
        S("cn=Doe\\, John"),
    ),
    (
        'a',
        r#"EscapeDNComponent("cn=" & [displayName]) & "," & %ForestLDAP%"#,
        S("cn=Doe\\, John,DC=contoso,DC=com"),
    ),
    ('a', r#"EscapeDNComponent("a+b")"#, S("a\\+b")),
    ('a', r#"EscapeDNComponent("CN=#hash ")"#, S("CN=\\#hash\\ ")),
    (
        'a',
        r#"EscapeDNComponent("OU=R&D <Lab>; \"x\"")"#,
        Parse(""),
    ),
    (
        'a',
        r#"EscapeDNComponent("OU=R&D <Lab>;")"#,
        S("OU=R&D \\<Lab\\>\\;"),
    ),
    ('a', r#"EscapeDNComponent("cn=a=b")"#, S("cn=a\\=b")),
    // ---------- Is* ----------
    ('a', "IsDate([whenCreated])", B(true)),
    ('a', "IsDate([employeeStartTime])", B(true)),
    ('a', "IsDate([sAMAccountName])", B(false)),
    ('a', "IsDate(42)", B(false)),
    ('a', "IsDate([userPrincipalName])", B(false)),
    ('a', "IsEmpty([empty])", B(true)),
    ('a', "IsEmpty([sAMAccountName])", B(false)),
    ('a', "IsEmpty([userPrincipalName])", B(false)),
    ('a', "IsNull([userPrincipalName])", B(true)),
    ('a', "IsNull([displayName])", B(false)),
    ('a', "IsNull([empty])", B(false)),
    ('a', "IsNull(NULL)", B(true)),
    ('a', "IsNull([proxyAddresses])", B(false)),
    ('a', "IsNullOrEmpty([userPrincipalName])", B(true)),
    ('a', "IsNullOrEmpty([empty])", B(true)),
    ('a', "IsNullOrEmpty([sAMAccountName])", B(false)),
    ('a', "IsNullOrEmpty([proxyAddresses])", B(false)),
    ('a', "IsNumeric([number])", B(true)),
    ('a', "IsNumeric(12)", B(true)),
    ('a', r#"IsNumeric("1.5")"#, B(false)),
    ('a', r#"CNum("1.5")"#, Fail("not a number")),
    ('a', r#"IsNumeric(" -12 ")"#, B(true)),
    ('a', r#"IsNumeric("&HFF")"#, B(true)),
    ('a', "IsNumeric(True)", B(true)),
    ('a', "IsNumeric([objectGUID])", B(false)),
    ('a', r#"IsNumeric("12a")"#, B(false)),
    ('a', r#"IsNumeric("NaN")"#, B(false)),
    ('a', "IsNumeric([userPrincipalName])", B(false)),
    ('a', "IsPresent([sAMAccountName])", B(true)),
    ('a', "IsPresent([userPrincipalName])", B(false)),
    ('a', "IsPresent([empty])", B(false)),
    ('a', "IsPresent([proxyAddresses])", B(true)),
    ('a', "IsPresent([objectGUID])", B(true)),
    ('a', "IsPresent([userAccountControl])", B(true)),
    ('a', "IsString([sAMAccountName])", B(true)),
    ('a', "IsString([userAccountControl])", B(true)),
    ('a', "IsString([dn])", B(true)),
    ('a', "IsString([objectGUID])", B(false)),
    ('a', "IsString([userPrincipalName])", B(false)),
    ('a', "IsString(CStr(5))", B(true)),
    // ---------- Contains / Count / Item / ItemOrNull / Join / RemoveDuplicates / Split ----------
    ('a', r#"Contains([proxyAddresses],"SMTP:")"#, I(1)),
    ('a', r#"Contains([proxyAddresses],"smtp:")"#, I(2)),
    (
        'a',
        r#"Contains([proxyAddresses],"smtp:",CaseInsensitive)"#,
        I(1),
    ),
    (
        'a',
        r#"Contains([proxyAddresses],"SIP:",CaseSensitive)"#,
        I(3),
    ),
    (
        'a',
        r#"Contains([proxyAddresses],"x500:", "CaseInsensitive")"#,
        I(4),
    ),
    ('a', r#"Contains([proxyAddresses],"fax:")"#, I(0)),
    ('a', r#"Contains([userPrincipalName],"x")"#, I(0)),
    ('a', r#"Contains([sAMAccountName],"do")"#, I(1)),
    (
        'a',
        r#"Contains([member],"CN=B,OU=Users,DC=contoso,DC=com")"#,
        I(2),
    ),
    ('a', r#"Contains([member],"CN=B")"#, I(0)),
    (
        'a',
        r#"Contains([member],"cn=b,ou=users,dc=contoso,dc=com",CaseInsensitive)"#,
        I(2),
    ),
    (
        'a',
        r#"Contains([proxyAddresses],"x",Sometimes)"#,
        Parse("unknown identifier"),
    ),
    ('a', "Count([proxyAddresses])", I(4)),
    ('a', "Count([sAMAccountName])", I(1)),
    ('a', "Count([userPrincipalName])", I(0)),
    ('a', "Count([member])", I(3)),
    ('a', r#"Count(Split("a,b,c",","))"#, I(3)),
    (
        'a',
        r#"Item([proxyAddresses],Contains([proxyAddresses], "SMTP:"))"#,
        S("SMTP:john.doe@contoso.com"),
    ),
    ('a', "Item([proxyAddresses],4)", S("x500:/o=Contoso")),
    ('a', "Item([proxyAddresses],5)", Fail("out of range")),
    ('a', "Item([proxyAddresses],0)", Fail("out of range")),
    ('a', "Item([proxyAddresses],-1)", Fail("out of range")),
    ('a', "Item([sAMAccountName],1)", S("jdoe")),
    ('a', "Item([userPrincipalName],1)", Fail("out of range")),
    (
        'a',
        r#"Item([proxyAddresses],Contains([proxyAddresses], "fax:"))"#,
        Fail("out of range"),
    ),
    (
        'a',
        "ItemOrNull([proxyAddresses],2)",
        S(" smtp:jd@contoso.com "),
    ),
    ('a', "ItemOrNull([proxyAddresses],5)", N),
    ('a', "ItemOrNull([proxyAddresses],0)", N),
    ('a', "ItemOrNull([userPrincipalName],1)", N),
    (
        'a',
        r#"Join([otherPhone],",")"#,
        S("555-123-4567,555-987-6543"),
    ),
    ('a', "Join([otherPhone])", S("555-123-4567 555-987-6543")),
    ('a', r#"Join([sAMAccountName],",")"#, S("jdoe")),
    ('a', r#"Join([userPrincipalName],",")"#, N),
    (
        'a',
        r#"Join(Trim([proxyAddresses]),";")"#,
        S("SMTP:john.doe@contoso.com;smtp:jd@contoso.com;SIP:john.doe@contoso.com;x500:/o=Contoso"),
    ),
    ('a', "RemoveDuplicates([dupes])", M(&["a", "b", "c"])),
    ('a', "Count(RemoveDuplicates([dupes]))", I(3)),
    ('a', "RemoveDuplicates([sAMAccountName])", S("jdoe")),
    ('a', "RemoveDuplicates([userPrincipalName])", N),
    (
        'a',
        r#"RemoveDuplicates(Split("x;y;x",";"))"#,
        M(&["x", "y"]),
    ),
    (
        'a',
        r#"Split("SMTP:john.doe@contoso.com,smtp:jd@contoso.com",",")"#,
        M(&["SMTP:john.doe@contoso.com", "smtp:jd@contoso.com"]),
    ),
    ('a', r#"Split("a,b,c,d",",",2)"#, M(&["a", "b,c,d"])),
    ('a', r#"Split("a,b,c",",",1)"#, M(&["a,b,c"])),
    ('a', r#"Split("a,b,c",",",0)"#, N),
    ('a', r#"Split("a,b,c",",",-1)"#, Fail("limit")),
    ('a', r#"Split("a,,b",",")"#, M(&["a", "", "b"])),
    ('a', r#"Split("abc",",")"#, M(&["abc"])),
    ('a', r#"Split("abc","")"#, Fail("delimiter")),
    ('a', r#"Split([userPrincipalName],",")"#, N),
    ('a', r#"Item(Split("a b c"," "),2)"#, S("b")),
    // ---------- Error / IIF / Select / Switch / Where / With ----------
    (
        'a',
        r#"Error("No primary SMTP address found.")"#,
        Fail("No primary SMTP address found."),
    ),
    ('a', r#"IIF(True, "yes", Error("never"))"#, S("yes")),
    ('a', r#"IIF(False, Error("never"), "no")"#, S("no")),
    ('a', r#"IIF([userPrincipalName], "yes", "no")"#, S("no")),
    ('a', r#"IIF(1, "yes", "no")"#, S("yes")),
    ('a', r#"IIF(0, "yes", "no")"#, S("no")),
    ('a', r#"IIF("x", "yes", "no")"#, Fail("not a boolean")),
    (
        'a',
        r#"IIF([userAccountControl]=512,"Normal","Other")"#,
        S("Normal"),
    ),
    (
        'a',
        r#"Select($item,[otherPhone],Replace($item,"-",""))"#,
        M(&["5551234567", "5559876543"]),
    ),
    (
        'a',
        r#"Select($item,[proxyAddresses],IIF(Left($item,4)="SIP:",NULL,Trim($item)))"#,
        M(&[
            "SMTP:john.doe@contoso.com",
            "smtp:jd@contoso.com",
            "x500:/o=Contoso",
        ]),
    ),
    ('a', r#"Select($item,[userPrincipalName],$item)"#, N),
    (
        'a',
        r#"Select($x,Split("1,2,3",","),CNum($x)*10)"#,
        M(&["10", "20", "30"]),
    ),
    ('a', r#"Select($i,[sAMAccountName],UCase($i))"#, S("JDOE")),
    (
        'a',
        r#"Select(item,[otherPhone],1)"#,
        Parse("unknown identifier"),
    ),
    (
        'a',
        r#"Select("item",[otherPhone],1)"#,
        Parse("must be a variable"),
    ),
    (
        'a',
        r#"Switch([city] = "London", "English", [city] = "Rome", "Italian", [city] = "Paris", "French", True, Error("Unknown city"))"#,
        S("Italian"),
    ),
    (
        'b',
        r#"Switch([city] = "London", "English", [city] = "Rome", "Italian", [city] = "Paris", "French", True, Error("Unknown city"))"#,
        Fail("Unknown city"),
    ),
    ('a', r#"Switch(False, 1, False, 2)"#, N),
    ('a', r#"Switch(True, NULL, True, 2)"#, N),
    ('a', r#"Switch(True, 1, True, 2)"#, I(1)),
    (
        'a',
        r#"Switch(True, 1, Error("conditions are all evaluated"), 2)"#,
        Fail("conditions are all evaluated"),
    ),
    ('a', r#"Switch(True, 1, False)"#, Parse("pairs")),
    (
        'a',
        r#"Where($item,[proxyAddresses],Left(Trim($item),5)="smtp:")"#,
        S(" smtp:jd@contoso.com "),
    ),
    (
        'a',
        r#"Where($item,[proxyAddresses],InStr($item,"contoso.com")>0)"#,
        M(&[
            "SMTP:john.doe@contoso.com",
            " smtp:jd@contoso.com ",
            "SIP:john.doe@contoso.com",
        ]),
    ),
    ('a', r#"Where($item,[proxyAddresses],False)"#, N),
    (
        'a',
        r#"Count(Where($m,[member],DNComponent($m,1)<>"B"))"#,
        I(2),
    ),
    (
        'a',
        r#"With($n,Count([proxyAddresses]),IIF($n>0,$n,NULL))"#,
        I(4),
    ),
    (
        'a',
        r#"With($smtp,Where($item,[proxyAddresses],InStr($item,"SMTP:",1,vbTextCompare)>0),IIF(Count($smtp)>0,$smtp,NULL))"#,
        M(&["SMTP:john.doe@contoso.com", " smtp:jd@contoso.com "]),
    ),
    ('a', r#"With($a,"x",With($b,$a & "y",$a & $b))"#, S("xxy")),
    ('a', r#"$undefined"#, Parse("not defined")),
    (
        'a',
        r#"Select($item,[otherPhone],$other)"#,
        Parse("$other is not defined"),
    ),
    ('a', r#"Select($item,$item,1)"#, Parse("not defined")),
    ('a', r#"With($a,1,$b)"#, Parse("not defined")),
    // ---------- text: InStr / InStrRev ----------
    ('a', r#"InStr("The quick brown fox","quick")"#, I(5)),
    ('a', r#"InStr("repEated","e",3,vbBinaryCompare)"#, I(7)),
    ('a', r#"InStr("repEated","e",3,vbTextCompare)"#, I(4)),
    ('a', r#"InStr("repEated","E")"#, I(4)),
    ('a', r#"InStr("abc","z")"#, I(0)),
    ('a', r#"InStr("abc","")"#, I(1)),
    ('a', r#"InStr("abc","c",4)"#, I(0)),
    ('a', r#"InStr("abc","a",0)"#, Fail("start")),
    ('a', r#"InStr("Räksmörgås","ö")"#, I(6)),
    (
        'a',
        r#"InStr([proxyAddresses],"SIP:")"#,
        M(&["0", "0", "1", "0"]),
    ),
    ('a', r#"InStr([userPrincipalName],"x")"#, N),
    ('a', r#"InStrRev("abbcdbbbef","bb")"#, I(7)),
    ('a', r#"InStrRev("abbcdbbbef","bb",6)"#, I(2)),
    ('a', r#"InStrRev("abbcdbbbef","bb",7)"#, I(6)),
    ('a', r#"InStrRev("abbcdbbbef","BB",-1,vbTextCompare)"#, I(7)),
    ('a', r#"InStrRev("abbcdbbbef","BB")"#, I(0)),
    ('a', r#"InStrRev("abc","z")"#, I(0)),
    ('a', r#"InStrRev("abc","c",9)"#, I(0)),
    ('a', r#"InStrRev("abc","c",0)"#, Fail("start")),
    // ---------- LCase / UCase / PCase / Len ----------
    ('a', r#"LCase("Hello World")"#, S("hello world")),
    ('a', "LCase([mail])", S("john.doe@contoso.com")),
    ('a', r#"UCase("Hello World")"#, S("HELLO WORLD")),
    ('a', r#"UCase("straße")"#, S("STRASSE")),
    ('c', "UCase([mail])", N),
    ('a', r#"PCase("TEsT")"#, S("Test")),
    ('a', r#"PCase(LCase("TEST"))"#, S("Test")),
    ('a', r#"PCase("TEST")"#, S("TEST")),
    (
        'a',
        r#"PCase("hello wORLD  again")"#,
        S("Hello World  Again"),
    ),
    ('a', r#"PCase("éCOLE élève")"#, S("École Élève")),
    ('a', r#"Len("John Doe")"#, I(8)),
    ('a', r#"Len("")"#, I(0)),
    ('a', r#"Len("Räksmörgås")"#, I(10)),
    ('a', "Len([userPrincipalName])", I(0)),
    ('a', "Len([userAccountControl])", I(3)),
    // ---------- Left / Right / Mid ----------
    ('a', r#"Left("John Doe", 3)"#, S("Joh")),
    ('a', r#"Left("John Doe", 0)"#, S("")),
    ('a', r#"Left("John Doe", -1)"#, S("John Doe")),
    ('a', r#"Left("John Doe", 20)"#, S("John Doe")),
    ('a', r#"Left("John Doe", 8)"#, S("John Doe")),
    ('a', r#"Left([userPrincipalName], 3)"#, S("")),
    ('a', r#"Left("Räksmörgås", 5)"#, S("Räksm")),
    ('a', r#"Left([sAMAccountName], 4) = "AAD_""#, B(false)),
    ('b', r#"Left([sAMAccountName], 4) = "AAD_""#, B(true)),
    ('a', r#"Right("John Doe", 3)"#, S("Doe")),
    ('a', r#"Right("John Doe", 0)"#, S("")),
    ('a', r#"Right("John Doe", -1)"#, S("John Doe")),
    ('a', r#"Right("John Doe", 20)"#, S("John Doe")),
    ('a', r#"Right([userPrincipalName], 3)"#, S("")),
    ('a', r#"Right("Räksmörgås", 3)"#, S("gås")),
    ('a', r#"Mid("John Doe", 3, 5)"#, S("hn Do")),
    ('a', r#"Mid("John Doe", 6, 999)"#, S("Doe")),
    ('a', r#"Mid("John Doe", 1, 4)"#, S("John")),
    ('a', r#"Mid("John Doe", 0, 4)"#, S("John Doe")),
    ('a', r#"Mid("John Doe", -3, 4)"#, S("John Doe")),
    ('a', r#"Mid("John Doe", 9, 2)"#, S("John Doe")),
    ('a', r#"Mid("John Doe", 8, 2)"#, S("e")),
    ('a', r#"Mid("John Doe", 2, 0)"#, S("")),
    ('a', r#"Mid("John Doe", 2, -1)"#, S("John Doe")),
    ('a', r#"Mid([userPrincipalName], 2, 2)"#, S("")),
    ('a', r#"Mid("Räksmörgås", 4, 3)"#, S("smö")),
    (
        'a',
        r#"Mid(Item([proxyAddresses],Contains([proxyAddresses], "SMTP:")),6)"#,
        S("john.doe@contoso.com"),
    ),
    ('a', r#"Mid("John Doe", 6)"#, S("Doe")),
    ('a', r#"Mid("John Doe", 0)"#, S("John Doe")),
    ('a', r#"LCase("TeSt")"#, S("test")),
    ('a', r#"UCase("TeSt")"#, S("TEST")),
    (
        'a',
        r#"IIF([employeeType]="Intern","t-" & [alias],[alias])"#,
        N,
    ),
    (
        'a',
        r#"IIF([sAMAccountName]="jdoe","t-" & [sAMAccountName],[sAMAccountName])"#,
        S("t-jdoe"),
    ),
    (
        'a',
        r#"CRef("CN=LC Services,CN=Microsoft,CN=lcspool01,CN=Pools,CN=RTC Service," & %Forest.LDAP%)"#,
        R("CN=LC Services,CN=Microsoft,CN=lcspool01,CN=Pools,CN=RTC Service,DC=contoso,DC=com"),
    ),
    (
        'a',
        r#"IIF(IsPresent([accountName]),[accountName],Error("AccountName is required"))"#,
        Fail("AccountName is required"),
    ),
    (
        'a',
        r#"Switch(IsPresent([directManager]),[directManager], IsPresent([cn]),[cn], IsPresent([director]),[director])"#,
        S("John Doe"),
    ),
    (
        'c',
        r#"Switch(IsPresent([directManager]),[directManager], IsPresent([cn]),[cn], IsPresent([director]),[director])"#,
        N,
    ),
    (
        'a',
        r#"Join([otherPhone],"")"#,
        S("555-123-4567555-987-6543"),
    ),
    (
        'a',
        r#"Join([otherPhone],NULL)"#,
        S("555-123-4567555-987-6543"),
    ),
    // ---------- Trim / LTrim / RTrim ----------
    ('a', r#"Trim(" Test ")"#, S("Test")),
    ('a', r#"LTrim(" Test ")"#, S("Test ")),
    ('a', r#"RTrim(" Test ")"#, S(" Test")),
    (
        'a',
        r#"Trim("	tab and newline
")"#,
        S("tab and newline"),
    ),
    ('a', r#"Trim("   ")"#, S("")),
    ('a', "Trim([sn])", S("Doe")),
    ('a', "LTrim([givenName])", S("John ")),
    ('a', "RTrim([givenName])", S(" John")),
    ('a', "Trim(42)", S("42")),
    ('a', "Trim([objectGUID])", Fail("binary")),
    // ---------- PadLeft / PadRight ----------
    ('a', r#"PadLeft("User", 10, "0")"#, S("000000User")),
    ('a', r#"PadLeft("User", 6)"#, S("  User")),
    ('a', r#"PadLeft("User", 4, "0")"#, S("User")),
    ('a', r#"PadLeft("User", 2, "0")"#, S("User")),
    ('a', r#"PadLeft("User", 0, "0")"#, S("User")),
    ('a', r#"PadLeft("User", -5, "0")"#, S("User")),
    ('a', r#"PadLeft([userPrincipalName], 3, "0")"#, S("")),
    (
        'a',
        r#"PadLeft("User", 6, "ab")"#,
        Fail("exactly one character"),
    ),
    (
        'a',
        r#"PadLeft("User", 6, "")"#,
        Fail("exactly one character"),
    ),
    ('a', r#"PadLeft(CStr(42), 5, "0")"#, S("00042")),
    ('a', r#"PadRight("User", 10, "0")"#, S("User000000")),
    ('a', r#"PadRight("User", 6)"#, S("User  ")),
    ('a', r#"PadRight("User", 3, "x")"#, S("User")),
    ('a', r#"PadRight("é", 3, "ü")"#, S("éüü")),
    (
        'a',
        r#"PadRight("x", 100000000000, "0")"#,
        Fail("too large"),
    ),
    // ---------- Replace / ReplaceChars ----------
    ('a', r#"Replace("a-b-c","-","")"#, S("abc")),
    ('a', r#"Replace("aaa","a","bb")"#, S("bbbbbb")),
    ('a', r#"Replace("abc","x","y")"#, S("abc")),
    ('a', r#"Replace("abc","","y")"#, S("abc")),
    ('a', r#"Replace("ABC","b","x")"#, S("ABC")),
    (
        'a',
        r#"Replace([address],"\r\n",", ")"#,
        S("1 Main St, Seattle"),
    ),
    ('a', r#"Replace("a b","\t","-")"#, S("a b")),
    ('a', r#"Replace("a,b",",","\n")"#, S("a\nb")),
    ('a', r#"Replace("a,b",",","\t")"#, S("a\tb")),
    ('a', r#"Replace([userPrincipalName],"a","b")"#, N),
    (
        'a',
        r#"ReplaceChars("Räksmörgås",%ReplaceString%)"#,
        S("Raksmorgas"),
    ),
    ('a', r#"ReplaceChars("O’Neil",%ReplaceString%)"#, S("ONeil")),
    ('a', r#"ReplaceChars("Müller","ü:ue")"#, S("Mueller")),
    ('a', r#"ReplaceChars("a-b_c","-:, _ : ")"#, S("abc")),
    ('a', r#"ReplaceChars("abc","")"#, S("abc")),
    (
        'a',
        r#"ReplaceChars("abc","ab:x")"#,
        Fail("exactly one character"),
    ),
    ('a', r#"ReplaceChars("abc","a")"#, Fail("source:target")),
    ('a', r#"ReplaceChars("ABC","a:x")"#, S("ABC")),
    ('a', r#"ReplaceChars([userPrincipalName],"a:b")"#, N),
    // ---------- Word ----------
    (
        'a',
        r#"Word("The quick brown fox"," ",3)"#,
        Fail("not a number"),
    ),
    ('a', r#"Word("The quick brown fox",3," ")"#, S("brown")),
    (
        'a',
        r#"Word("This,string!has&many separators",3,",!&#")"#,
        S("has"),
    ),
    (
        'a',
        r#"Word("This,string!has&many separators",4,",!&")"#,
        S("many separators"),
    ),
    (
        'a',
        r#"Word("This,string!has&many separators",5,",!& ")"#,
        S("separators"),
    ),
    ('a', r#"Word("a b c",0," ")"#, S("")),
    ('a', r#"Word("a b c",-1," ")"#, S("")),
    ('a', r#"Word("a b c",4," ")"#, S("")),
    ('a', r#"Word("a  b",2," ")"#, S("b")),
    ('a', r#"Word("abc",1," ")"#, S("abc")),
    ('a', r#"Word("abc",1,"")"#, S("abc")),
    ('a', r#"Word([userPrincipalName],1," ")"#, S("")),
    ('a', r#"Word([mail],2,"@.")"#, S("Doe")),
    // ---------- parse errors: syntax, unknown functions, arity, case ----------
    ('a', "", Parse("empty expression")),
    ('a', "   ", Parse("empty expression")),
    ('a', "trim([sn])", Parse("unknown function 'trim'")),
    ('a', "TRIM([sn])", Parse("did you mean 'Trim'")),
    ('a', "Foo(1)", Parse("unknown function 'Foo'")),
    (
        'a',
        "CertThumbprint([userCertificate])",
        Parse("certificate functions"),
    ),
    ('a', "Trim()", Parse("takes 1 argument")),
    ('a', "Trim([a],[b])", Parse("takes 1 argument")),
    ('a', "Left([sn])", Parse("takes 2 argument")),
    ('a', "IIF(True,1)", Parse("takes 3 argument")),
    ('a', "InStr(\"a\")", Parse("takes 2 to 4")),
    ('a', "Now(1)", Parse("takes 0 argument")),
    ('a', "Switch()", Parse("at least 2")),
    ('a', "Trim", Parse("must be followed by '('")),
    ('a', "true", Parse("did you mean 'True'")),
    ('a', "null", Parse("did you mean 'NULL'")),
    ('a', "Null", N),
    ('a', "\"abc", Parse("unterminated string")),
    ('a', "[abc", Parse("unterminated attribute")),
    ('a', "[]", Parse("empty attribute")),
    ('a', "%abc", Parse("unterminated parameter")),
    ('a', "(1+2", Parse("expected ')'")),
    ('a', "1+2)", Parse("unbalanced")),
    ('a', "1 2", Parse("unexpected token")),
    ('a', "1 +", Parse("expected a value")),
    ('a', "Trim([sn],)", Parse("expected a value")),
    ('a', "1 | 2", Parse("'||'")),
    ('a', "1.5", Parse("decimal")),
    ('a', "99999999999999999999", Parse("too large")),
    ('a', "9223372036854775808", Parse("too large")),
    ('a', "“x”", Parse("smart quote")),
    ('a', "1 # 2", Parse("unexpected character")),
    ('a', "ImportedValue([mail])", Parse("string constant")),
    ('a', "With(1, 2, 3)", Parse("variable")),
    ('a', "$", Parse("variable name")),
];

fn run_case(ctx: &Ctx, src: &str, want: &X) -> Result<(), String> {
    let expr = match Expression::parse(src) {
        Ok(e) => e,
        Err(e) => {
            return match want {
                Parse(p) if e.message.contains(p) => Ok(()),
                _ => Err(format!("parse error: {}", e.render("case"))),
            };
        }
    };
    if let Parse(p) = want {
        return Err(format!(
            "expected a parse error containing '{p}', parsed fine"
        ));
    }
    let got = expr.evaluate(ctx);
    let ok = match (want, &got) {
        (Fail(m), Err(e)) => e.message.contains(m),
        (Fail(_), _) | (_, Err(_)) => false,
        (AuthNull, Ok(FlowValue::AuthoritativeNull)) => true,
        (Ignore, Ok(FlowValue::IgnoreThisFlow)) => true,
        (_, Ok(FlowValue::Values(v))) => match (want, v.as_slice()) {
            (S(x), [Value::Str(y)]) => x == y,
            (I(x), [Value::Int(y)]) => x == y,
            (B(x), [Value::Bool(y)]) => x == y,
            (N, []) => true,
            (R(x), [Value::Ref(y)]) => x == y,
            (Dt(x), [Value::Dt(y)]) => x.parse::<DateTime<Utc>>().ok() == Some(*y),
            (Bin64(x), [v @ Value::Bin(_)]) => v.to_text() == *x,
            (Guid, [Value::Str(y)]) => y.len() == 36 && y.matches('-').count() == 4,
            (M(xs), vals) => {
                xs.len() == vals.len() && xs.iter().zip(vals).all(|(x, v)| v.to_text() == *x)
            }
            _ => false,
        },
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {want:?}, got {got:?}"))
    }
}

#[test]
fn conformance_table() {
    let (a, b, c) = (ctx_a(), ctx_b(), ctx_c());
    let mut failures = Vec::new();
    for (which, src, want) in CASES {
        let ctx = match which {
            'b' => &b,
            'c' => &c,
            _ => &a,
        };
        if let Err(msg) = run_case(ctx, src, want) {
            failures.push(format!("[{which}] {src}\n    {msg}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    eprintln!("{} conformance cases passed", CASES.len());
}

#[test]
fn at_least_300_cases() {
    assert!(CASES.len() >= 300, "only {} cases", CASES.len());
}

#[test]
fn every_function_is_covered() {
    let missing: Vec<&str> = dirsync::expr::Func::all_names()
        .filter(|n| {
            !CASES
                .iter()
                .any(|(_, src, _)| src.contains(&format!("{n}(")))
        })
        .collect();
    assert!(missing.is_empty(), "functions without a case: {missing:?}");
}

#[test]
fn errors_carry_column_and_render_a_caret() {
    let e = Expression::parse("IIF(IsPresent([mail]), Trimm([mail]), NULL)")
        .err()
        .map(|e| (e.column, e.render("Out to AAD - User")));
    let (col, text) = e.unwrap_or_default();
    assert_eq!(col, 24);
    assert!(text.contains("rule 'Out to AAD - User'"), "{text}");
    assert!(text.contains("unknown function 'Trimm'"), "{text}");
    assert!(
        text.ends_with(&format!("\n  {}^", " ".repeat(23))),
        "{text}"
    );
    let arity = Expression::parse("Left([sn])").err().map(|e| e.column);
    assert_eq!(arity, Some(1));
}

#[test]
fn check_flags_unknown_attributes_with_column() {
    let e = Expression::parse(r#"Trim([givenName]) & " " & Trim([Sn]) & ImportedValue("mail")"#);
    let e = match e {
        Ok(e) => e,
        Err(err) => panic!("{}", err.render("x")),
    };
    let known = |n: &str| ["givenName", "sn", "mail"].contains(&n);
    let err = e.check(&known).err();
    assert_eq!(err.as_ref().map(|e| e.column), Some(33));
    assert!(
        err.map(|e| e.message).unwrap_or_default().contains("'Sn'"),
        "unknown attribute reported"
    );
    let all = |n: &str| ["givenName", "Sn", "mail"].contains(&n);
    assert!(e.check(&all).is_ok());
}

#[test]
fn attributes_lists_reads_once_each_in_order() {
    let e = Expression::parse(
        r#"IIF(IsPresent([userPrincipalName]),[userPrincipalName],[sAMAccountName]&"@"&%Domain.FQDN%) & ImportedValue("mail") & ValueCount("member")"#,
    );
    let attrs = e.map(|e| e.attributes()).unwrap_or_default();
    assert_eq!(
        attrs,
        vec!["userPrincipalName", "sAMAccountName", "mail", "member"]
    );
}

#[test]
fn source_is_kept() {
    let src = "Trim([givenName])";
    assert_eq!(
        Expression::parse(src).map(|e| e.source().to_string()),
        Ok(src.to_string())
    );
}

#[test]
fn deep_nesting_is_a_parse_error_not_a_crash() {
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(Expression::parse(&deep).is_err());
    let chain = vec!["1"; 5000].join("+");
    assert!(Expression::parse(&chain).is_err());
    let calls = format!("{}[a]{}", "Trim(".repeat(3000), ")".repeat(3000));
    assert!(Expression::parse(&calls).is_err());
    let ok = format!("{}[a]{}", "Trim(".repeat(40), ")".repeat(40));
    assert!(Expression::parse(&ok).is_ok());
}

#[test]
fn runaway_growth_is_an_error_not_a_crash() {
    let ctx = ctx_a();
    let mut src = String::from(r#""abcdefghij""#);
    for i in 0..30 {
        src = format!("With($v{i},{src},$v{i} & $v{i})");
    }
    let e = Expression::parse(&src);
    let r = e.map(|e| e.evaluate(&ctx));
    assert!(matches!(r, Ok(Err(_))), "{r:?}");
}

/// A tiny deterministic generator (xorshift) for the robustness test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Parse + evaluate a few hundred thousand mutated inputs: never a panic.
#[test]
fn random_and_mutated_inputs_never_panic() {
    let ctx = ctx_a();
    let seeds: Vec<&str> = CASES.iter().map(|(_, s, _)| *s).collect();
    let pieces = [
        "(",
        ")",
        ",",
        "&",
        "&&",
        "||",
        "+",
        "-",
        "*",
        "=",
        "<>",
        "<",
        ">=",
        "\"",
        "\"x\"",
        "[proxyAddresses]",
        "[sn]",
        "[objectGUID]",
        "[dn]",
        "%Domain.FQDN%",
        "$item",
        "&HFF",
        "-9223372036854775808",
        "9223372036854775807",
        "0",
        "-1",
        "NULL",
        "True",
        "CRLF",
        "Trim(",
        "IIF(",
        "Item(",
        "Mid(",
        "Split(",
        "Select($item,",
        "Where($item,",
        "With($v,",
        "Switch(",
        "DateAdd(\"yyyy\",",
        "PadLeft(",
        "Replace(",
        "Word(",
        "Left(",
        "Right(",
        "DateFromNum(",
        "CDate(",
        "FormatDateTime(",
        "ConvertFromBase64(",
        "StringFromSid(",
        "DNComponentRev(",
        "InStrRev(",
        "ReplaceChars(",
        "Join(",
        "Contains(",
        "é",
        "\u{0}",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut runs = 0u64;
    for _ in 0..300_000 {
        let base = seeds[rng.below(seeds.len())];
        let mut s: Vec<char> = base.chars().collect();
        for _ in 0..=rng.below(4) {
            match rng.below(4) {
                0 if !s.is_empty() => {
                    let i = rng.below(s.len());
                    s.remove(i);
                }
                1 => {
                    let i = rng.below(s.len() + 1);
                    let p = pieces[rng.below(pieces.len())];
                    for (k, ch) in p.chars().enumerate() {
                        s.insert(i + k, ch);
                    }
                }
                2 if !s.is_empty() => {
                    let i = rng.below(s.len());
                    let j = rng.below(s.len());
                    s.swap(i, j);
                }
                _ => {
                    let i = rng.below(s.len() + 1);
                    let ch = char::from_u32((rng.next() % 0x80) as u32).unwrap_or('?');
                    s.insert(i, ch);
                }
            }
        }
        let text: String = s.into_iter().collect();
        if let Ok(e) = Expression::parse(&text) {
            let _ = e.evaluate(&ctx);
            let _ = e.attributes();
        }
        runs += 1;
    }
    assert_eq!(runs, 300_000);
}

/// The deepest accepted expressions parse and evaluate within a 1 MiB stack (tokio workers
/// have 2 MiB), even in debug builds.
#[test]
fn deepest_accepted_expressions_fit_a_small_stack() {
    let worker = std::thread::Builder::new().stack_size(1 << 20).spawn(|| {
        let ctx = ctx_a();
        let mut accepted = 0;
        for depth in [50usize, 90, 99, 100] {
            let calls = format!("{}[givenName]{}", "Trim(".repeat(depth), ")".repeat(depth));
            let parens = format!("{}1{}", "(".repeat(depth), ")".repeat(depth));
            let iifs = format!("{}1{}", "IIF(True,".repeat(depth), ",2)".repeat(depth));
            let chain = vec!["[sn]"; depth].join(" & ");
            for src in [calls, parens, iifs, chain] {
                if let Ok(e) = Expression::parse(&src) {
                    accepted += 1;
                    assert!(e.evaluate(&ctx).is_ok(), "{src}");
                }
            }
        }
        accepted
    });
    let accepted = worker.map(|w| w.join());
    assert!(matches!(accepted, Ok(Ok(n)) if n >= 8), "{accepted:?}");
}

//! Fuzz target: parse arbitrary UTF-8 as an expression and evaluate it against a fixed
//! object. Parse errors and evaluation errors are fine; panics, aborts and hangs are not.
//!
//! Run from `fuzz/` with a nightly toolchain (`CI=true` keeps build.rs from refreshing the
//! committed C header):
//! `CI=true cargo +nightly fuzz run expr -- -max_total_time=300 -max_len=1024`
#![no_main]

use dirsync::expr::{EvalContext, Expression};
use dirsync::model::Value;
use libfuzzer_sys::fuzz_target;

struct Fixed {
    attrs: Vec<(&'static str, Vec<Value>)>,
}

impl EvalContext for Fixed {
    fn attribute(&self, name: &str) -> &[Value] {
        self.attrs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }
    fn parameter(&self, name: &str) -> Option<String> {
        match name {
            "Domain.FQDN" | "Forest.FQDN" => Some("contoso.com".into()),
            "Domain.Netbios" => Some("CONTOSO".into()),
            "Domain.LDAP" | "Forest.LDAP" => Some("DC=contoso,DC=com".into()),
            _ => None,
        }
    }
}

fn fixed() -> Fixed {
    let s = |x: &str| Value::Str(x.to_string());
    Fixed {
        attrs: vec![
            ("givenName", vec![s(" John ")]),
            ("sn", vec![s("Doe")]),
            ("sAMAccountName", vec![s("jdoe")]),
            ("userAccountControl", vec![Value::Int(512)]),
            ("groupType", vec![Value::Int(-2_147_483_646)]),
            ("objectGUID", vec![Value::Bin((0u8..16).collect())]),
            (
                "objectSid",
                vec![Value::Bin(vec![1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0])],
            ),
            (
                "dn",
                vec![Value::Ref("CN=John,OU=Users,DC=contoso,DC=com".into())],
            ),
            ("enabled", vec![Value::Bool(true)]),
            (
                "when",
                vec![Value::Dt(
                    dirsync::model::parse_datetime("20120101230000Z").unwrap_or_default(),
                )],
            ),
            ("empty", vec![s("")]),
            (
                "proxyAddresses",
                vec![
                    s("SMTP:a@contoso.com"),
                    s(" smtp:b@contoso.com "),
                    s("SIP:a@contoso.com"),
                ],
            ),
            ("otherPhone", vec![s("555-1"), s("555-2")]),
        ],
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(expr) = Expression::parse(text) {
            let ctx = fixed();
            let _ = expr.evaluate(&ctx);
            let _ = expr.attributes();
            let _ = expr.check(&|n: &str| n.len() < 8);
        }
    }
});

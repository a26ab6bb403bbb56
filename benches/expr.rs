//! Expression evaluation benchmark: compiled once, evaluated many times on one core.
//!
//! Prints one JSON line per case:
//! `{"name":..., "evaluations":..., "seconds":..., "evals_per_sec":..., "cpu_seconds":...,
//! "evals_per_cpu_sec":...}`: `seconds` is wall-clock time, `cpu_seconds` the CPU time of the
//! benchmark thread (one core), which stays meaningful on a busy machine.
//! Run with `cargo bench --bench expr`.

use dirsync::expr::{EvalContext, Expression};
use dirsync::model::Value;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

struct Obj {
    attrs: HashMap<String, Vec<Value>>,
    params: HashMap<String, String>,
}

impl EvalContext for Obj {
    fn attribute(&self, name: &str) -> &[Value] {
        self.attrs.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
    fn parameter(&self, name: &str) -> Option<String> {
        self.params.get(name).cloned()
    }
}

fn object() -> Obj {
    let mut attrs: HashMap<String, Vec<Value>> = HashMap::new();
    let s = |x: &str| Value::Str(x.to_string());
    attrs.insert("givenName".into(), vec![s(" John ")]);
    attrs.insert("sn".into(), vec![s("Doe ")]);
    attrs.insert("sAMAccountName".into(), vec![s("jdoe")]);
    attrs.insert("userAccountControl".into(), vec![Value::Int(512)]);
    attrs.insert("groupType".into(), vec![Value::Int(-2_147_483_646)]);
    attrs.insert("objectGUID".into(), vec![Value::Bin((0u8..16).collect())]);
    attrs.insert(
        "proxyAddresses".into(),
        vec![
            s("SMTP:john.doe@contoso.com"),
            s(" smtp:jd@contoso.com "),
            s("SIP:john.doe@contoso.com"),
            s("x500:/o=Contoso"),
        ],
    );
    let mut params = HashMap::new();
    params.insert("Domain.FQDN".to_string(), "contoso.com".to_string());
    Obj { attrs, params }
}

const CASES: &[(&str, &str)] = &[
    ("trim_concat", r#"Trim([givenName]) & " " & Trim([sn])"#),
    (
        "account_enabled",
        "IIF(BitAnd([userAccountControl],2)=0,True,False)",
    ),
    (
        "upn_fallback",
        r#"IIF(IsPresent([userPrincipalName]),[userPrincipalName],[sAMAccountName]&"@"&%Domain.FQDN%)"#,
    ),
    ("security_enabled", "CBool(BitAnd([groupType],-2147483648))"),
    (
        "source_anchor",
        "ConvertToBase64(IIF(IsPresent([mS-DS-ConsistencyGuid]),[mS-DS-ConsistencyGuid],[objectGUID]))",
    ),
    (
        "cloud_filtered",
        r#"IIF(IsPresent([isCriticalSystemObject]) || IsPresent([sAMAccountName]) = False || [sAMAccountName] = "SUPPORT_388945a0" || Left([sAMAccountName], 4) = "AAD_", True, NULL)"#,
    ),
    ("proxy_trim_4_values", "Trim([proxyAddresses])"),
];

/// CPU time consumed by the calling thread, in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn report(name: &str, n: u64, secs: f64, cpu: f64) {
    let per_cpu = if cpu > 0.0 { n as f64 / cpu } else { 0.0 };
    println!(
        "{{\"name\":\"{name}\",\"evaluations\":{n},\"seconds\":{secs:.3},\"evals_per_sec\":{:.0},\"cpu_seconds\":{cpu:.3},\"evals_per_cpu_sec\":{per_cpu:.0}}}",
        n as f64 / secs
    );
}

fn main() {
    let obj = object();
    let budget = Duration::from_millis(1500);
    for (name, src) in CASES {
        let expr = match Expression::parse(src) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{}", e.render(name));
                std::process::exit(1);
            }
        };
        // Warm up.
        for _ in 0..10_000 {
            let _ = black_box(expr.evaluate(black_box(&obj)));
        }
        let start = Instant::now();
        let cpu0 = thread_cpu_seconds();
        let mut n: u64 = 0;
        while start.elapsed() < budget {
            for _ in 0..10_000 {
                let _ = black_box(expr.evaluate(black_box(&obj)));
            }
            n += 10_000;
        }
        let cpu = thread_cpu_seconds() - cpu0;
        report(name, n, start.elapsed().as_secs_f64(), cpu);
    }
    // Compilation speed (configuration load).
    let (_, src) = CASES[5];
    let start = Instant::now();
    let cpu0 = thread_cpu_seconds();
    let mut n: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..1_000 {
            let _ = black_box(Expression::parse(black_box(src)));
        }
        n += 1_000;
    }
    let cpu = thread_cpu_seconds() - cpu0;
    report(
        "parse_cloud_filtered",
        n,
        start.elapsed().as_secs_f64(),
        cpu,
    );
}

//! Real servers for the integration tests, all on loopback: OpenLDAP `slapd` (a fresh instance
//! per test, mdb + syncprov) and a Samba AD DC (provisioned once per test binary).
//!
//! Every server runs under a watchdog: it stops when its owner is dropped (also during a
//! panic) and when the test process dies (its stdin pipe closes).
#![allow(dead_code)]

pub mod samba;
pub mod slapd;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// True when the program exists. When it does not: under `CI=true` the test fails, otherwise
/// it prints a SKIP line and the caller returns early.
pub fn require(program: &str, test: &str) -> bool {
    let found = Path::new(program).exists()
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(program).exists())
        || std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
            .unwrap_or(false);
    if found {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{program} is missing: run scripts/install-test-deps.sh (needed by {test})");
    }
    println!("SKIP {test}: {program} is not installed (run scripts/install-test-deps.sh)");
    false
}

/// Like [`require`], and the test must run as root (Samba binds ports 389 and 636).
pub fn require_root(program: &str, test: &str) -> bool {
    if !require(program, test) {
        return false;
    }
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs root: Samba listens on ports 389 and 636");
    }
    println!("SKIP {test}: needs root (Samba listens on ports 389 and 636)");
    false
}

/// The full path of a server program (`/usr/sbin` is often missing from a user's PATH).
pub fn sbin(program: &str) -> String {
    ["/usr/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| program.to_string())
}

/// A TCP port that is free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Waits until something accepts connections on 127.0.0.1:port.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().expect("socket address"),
            Duration::from_millis(200),
        )
        .is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Runs an ldap-utils command with LDIF on stdin; panics with its output on failure.
pub fn ldap_tool(tool: &str, args: &[&str], ldif: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    if let Some(mut s) = child.stdin.take() {
        s.write_all(ldif.as_bytes()).expect("write LDIF");
    }
    let out = child.wait_with_output().expect("wait for ldap tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed: {text}");
    text
}

/// An in-memory connector space for delta tests.
#[derive(Default, Debug)]
pub struct MemCs {
    /// Objects by anchor.
    pub objects: std::collections::BTreeMap<String, dirsync::model::Object>,
}

impl MemCs {
    /// Applies import changes.
    pub fn apply(&mut self, changes: &[dirsync::connectors::ImportChange]) {
        use dirsync::connectors::ImportChange;
        for c in changes {
            match c {
                ImportChange::Upsert(o) => {
                    self.objects
                        .insert(o.anchor.clone().expect("anchor"), o.clone());
                }
                ImportChange::Delete { anchor } => {
                    self.objects.remove(anchor);
                }
            }
        }
    }

    /// The object with this RDN value (first match).
    pub fn by_rdn(&self, value: &str) -> Option<&dirsync::model::Object> {
        self.objects
            .values()
            .find(|o| o.dn.rdn().map(|r| r.value() == value).unwrap_or(false))
    }
}

impl dirsync::connectors::ConnectorSpaceView for MemCs {
    fn by_anchor(&self, anchor: &str) -> Option<dirsync::model::Object> {
        self.objects.get(anchor).cloned()
    }
    fn by_dn(&self, dn: &dirsync::model::Dn) -> Option<dirsync::model::Object> {
        self.objects.values().find(|o| &o.dn == dn).cloned()
    }
    fn descendants(&self, dn: &dirsync::model::Dn) -> Vec<dirsync::model::Object> {
        self.objects
            .values()
            .filter(|o| o.dn.is_within(dn) && &o.dn != dn)
            .cloned()
            .collect()
    }
}

//! A throwaway OpenLDAP server: `slapd.conf` with mdb and syncprov on a free loopback port.

use super::{ldap_tool, wait_for_port};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Suffix of the test directory.
pub const SUFFIX: &str = "dc=example,dc=org";
/// Root DN.
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
/// Root password (a throwaway for the test server).
pub const ROOT_PW: &str = "test-secret";

/// A running slapd; stopped on drop.
pub struct Slapd {
    dir: tempfile::TempDir,
    /// Port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

impl Slapd {
    /// Starts a fresh server with the base entry and `ou=people`, `ou=groups`, `ou=other`.
    pub fn start() -> Slapd {
        Self::start_with_bulk(0)
    }

    /// Like [`Slapd::start`], with `n` people loaded offline by `slapadd` before the start
    /// (`uid=p<i>,ou=people`).
    pub fn start_with_bulk(n: usize) -> Slapd {
        Self::start_with(n, Some(false))
    }

    /// A server without the syncprov overlay (no content synchronization).
    pub fn start_without_syncprov() -> Slapd {
        Self::start_with(0, None)
    }

    /// A server whose syncprov keeps a session log: content synchronization then reports
    /// deletes explicitly (syncIdSet with refreshDeletes) instead of a present phase.
    pub fn start_with_sessionlog() -> Slapd {
        Self::start_with(0, Some(true))
    }

    /// `syncprov`: None for no overlay, Some(session log on/off).
    fn start_with(n: usize, syncprov: Option<bool>) -> Slapd {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("db")).expect("db dir");
        let d = dir.path().display();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             moduleload syncprov\n\
             pidfile {d}/slapd.pid\n\
             sizelimit unlimited\n\
             database mdb\n\
             maxsize 4294967296\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ROOT_DN}\"\n\
             rootpw {ROOT_PW}\n\
             directory {d}/db\n\
             index objectClass,entryCSN,entryUUID eq\n\
             {overlay}",
            overlay = match syncprov {
                None => "",
                Some(false) => "overlay syncprov\n",
                Some(true) => "overlay syncprov\nsyncprov-sessionlog 1000\n",
            }
        );
        std::fs::write(dir.path().join("slapd.conf"), conf).expect("write slapd.conf");
        let mut ldif = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: ou=other,{SUFFIX}\nobjectClass: organizationalUnit\nou: other\n\n"
        );
        for i in 0..n {
            ldif.push_str(&format!(
                "dn: uid=p{i},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: p{i}\ncn: Person {i}\n\
                 sn: Surname{i}\ngivenName: Given{i}\nmail: p{i}@example.org\n\
                 telephoneNumber: +1 555 {i:07}\ndescription: bulk entry number {i}\n\n"
            ));
        }
        std::fs::write(dir.path().join("base.ldif"), ldif).expect("write LDIF");
        let out = Command::new(super::sbin("slapadd"))
            .arg("-q")
            .arg("-f")
            .arg(dir.path().join("slapd.conf"))
            .arg("-l")
            .arg(dir.path().join("base.ldif"))
            .output()
            .expect("run slapadd");
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut s = Slapd {
            dir,
            port: 0,
            child: None,
        };
        s.launch(super::free_port());
        s
    }

    fn launch(&mut self, port: u16) {
        let d = self.dir.path();
        // The shell watchdog stops slapd when our end of its stdin closes (drop or process exit).
        let script = format!(
            "'{slapd}' -f '{conf}' -h 'ldap://127.0.0.1:{port}/' -d 0 >'{log}' 2>&1 & pid=$!; \
             cat >/dev/null; kill $pid 2>/dev/null; sleep 0.2; kill -9 $pid 2>/dev/null; true",
            slapd = super::sbin("slapd"),
            conf = d.join("slapd.conf").display(),
            log = d.join("slapd.log").display(),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        self.port = port;
        if !wait_for_port(port, Duration::from_secs(15)) {
            let log = std::fs::read_to_string(d.join("slapd.log")).unwrap_or_default();
            panic!("slapd did not start on port {port}: {log}");
        }
    }

    /// The server URL.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    fn args(&self) -> Vec<String> {
        vec![
            "-x".into(),
            "-H".into(),
            self.url(),
            "-D".into(),
            ROOT_DN.into(),
            "-w".into(),
            ROOT_PW.into(),
        ]
    }

    /// `ldapadd` with this LDIF.
    pub fn add(&self, ldif: &str) {
        let a = self.args();
        let args: Vec<&str> = a.iter().map(String::as_str).collect();
        ldap_tool("ldapadd", &args, ldif);
    }

    /// `ldapmodify` with this LDIF (changetype records).
    pub fn modify(&self, ldif: &str) {
        let a = self.args();
        let args: Vec<&str> = a.iter().map(String::as_str).collect();
        ldap_tool("ldapmodify", &args, ldif);
    }

    /// `ldapsearch` output (LDIF) for a subtree search.
    pub fn search(&self, base: &str, filter: &str, extra: &[&str]) -> String {
        let a = self.args();
        let mut args: Vec<&str> = a.iter().map(String::as_str).collect();
        args.extend(["-LLL", "-o", "ldif-wrap=no", "-b", base, filter]);
        args.extend(extra);
        ldap_tool("ldapsearch", &args, "")
    }

    /// Kills the server hard (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let pid_file = self.dir.path().join("slapd.pid");
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && let Ok(pid) = text.trim().parse::<i32>()
        {
            // SAFETY: sending a signal to a process id we started; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        self.stop_watchdog();
    }

    /// Starts the server again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop_watchdog();
        let port = self.port;
        // The database may need a moment after a crash; retry the launch a few times.
        self.launch(port);
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut c) = self.child.take() {
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }

    /// Path of the server's data directory.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop_watchdog();
    }
}

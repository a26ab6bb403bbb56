//! A Samba AD domain controller on 127.0.0.1 (ports 389 and 636), provisioned into a temporary
//! directory once per test binary and shared by its tests. Each test works in its own OU.
//!
//! Samba runs in interactive mode (`-i`) with a piped stdin: it terminates by itself when the
//! test process ends and the pipe closes.

use super::{ldap_tool, wait_for_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Realm of the test domain.
pub const REALM: &str = "CORP.EXAMPLE.COM";
/// Base DN of the test domain.
pub const BASE: &str = "DC=corp,DC=example,DC=com";
/// Host name of the DC (its certificate names `DC1.corp.example.com`).
pub const DC_NAME: &str = "DC1.corp.example.com";
/// Administrator password of the throwaway domain.
pub const ADMIN_PW: &str = "Adm1n-Test-Pw!";
/// Administrator bind name.
pub const ADMIN: &str = "Administrator@corp.example.com";

/// Users preloaded in `OU=Bulk` (and members of `CN=bulk-group`): `DIRSYNC_SAMBA_BULK_USERS`
/// or 5,000.
pub fn bulk_users() -> usize {
    std::env::var("DIRSYNC_SAMBA_BULK_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000)
}

/// The shared DC.
pub struct Samba {
    _lock: std::fs::File,
    dir: PathBuf,
    child: Mutex<Child>,
    /// Seconds spent provisioning and starting.
    pub startup_secs: f64,
}

static DC: OnceLock<Result<Samba, String>> = OnceLock::new();

impl Samba {
    /// The DC of this test binary, provisioned and started on first use. A failed start is
    /// reported to every test without trying again.
    pub fn shared() -> &'static Samba {
        let dc = DC.get_or_init(|| {
            std::panic::catch_unwind(Samba::start).map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown failure".into())
            })
        });
        match dc {
            Ok(dc) => dc,
            Err(e) => panic!("the Samba AD DC could not be started: {e}"),
        }
    }

    fn start() -> Samba {
        // One DC at a time on this machine (ports 389 and 636): test runners that start one
        // process per test wait here for the previous process to end. The lock is released
        // when the process exits.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("dirsync-samba.lock"))
            .expect("lock file");
        // SAFETY: flock on a file descriptor we own; blocks until the lock is free.
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        assert_eq!(rc, 0, "cannot lock the Samba test lock file");
        let started = Instant::now();
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!("dirsync-samba-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("samba dir");
        let out = Command::new("samba-tool")
            .args([
                "domain",
                "provision",
                &format!("--targetdir={}", dir.display()),
                &format!("--realm={REALM}"),
                "--domain=CORP",
                "--host-name=DC1",
                "--server-role=dc",
                "--dns-backend=NONE",
                &format!("--adminpass={ADMIN_PW}"),
                "--option=interfaces=lo",
                "--option=bind interfaces only=yes",
            ])
            .output()
            .expect("run samba-tool");
        assert!(
            out.status.success(),
            "samba-tool domain provision failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = dir.join("etc/smb.conf");
        let text = std::fs::read_to_string(&conf).expect("smb.conf");
        let mut fixed = String::new();
        for line in text.lines() {
            if line.trim_start().starts_with("server services") {
                continue;
            }
            fixed.push_str(line);
            fixed.push('\n');
            if line.trim() == "[global]" {
                fixed.push_str("\tldap server require strong auth = no\n");
                fixed.push_str("\tserver services = ldap\n");
                fixed.push_str(&format!("\tpid directory = {}/run\n", dir.display()));
                fixed.push_str(&format!("\tlog file = {}/samba.log\n", dir.display()));
            }
        }
        std::fs::write(&conf, fixed).expect("write smb.conf");
        std::fs::create_dir_all(dir.join("run")).expect("pid dir");
        // The DC of a previous test process stops when that process ends; give it a moment.
        let free_by = Instant::now() + Duration::from_secs(30);
        while wait_for_port(389, Duration::from_millis(100)) {
            assert!(
                Instant::now() < free_by,
                "port 389 is already in use: stop the other LDAP server first"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::File::create(dir.join("samba.out")).expect("log file");
        let child = Command::new(super::sbin("samba"))
            .arg(format!("--configfile={}", conf.display()))
            .args(["-i", "-M", "single"])
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start samba");
        let ok = wait_for_port(389, Duration::from_secs(60))
            && wait_for_port(636, Duration::from_secs(30));
        if !ok {
            let out = std::fs::read_to_string(dir.join("samba.out")).unwrap_or_default();
            panic!("samba did not start: {out}");
        }
        // The rootDSE answers a little after the port opens.
        let deadline = Instant::now() + Duration::from_secs(30);
        let s = Samba {
            _lock: lock,
            dir,
            child: Mutex::new(child),
            startup_secs: 0.0,
        };
        while Instant::now() < deadline {
            let r = Command::new("ldapsearch")
                .args([
                    "-x",
                    "-H",
                    "ldap://127.0.0.1",
                    "-D",
                    ADMIN,
                    "-w",
                    ADMIN_PW,
                    "-b",
                    BASE,
                    "-s",
                    "base",
                    "dn",
                ])
                .output();
            if r.map(|o| o.status.success()).unwrap_or(false) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!(
            "samba AD DC ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Samba {
            startup_secs: started.elapsed().as_secs_f64(),
            ..s
        }
    }

    /// Loads `OU=Bulk` (see [`bulk_users`]) once per process, through the local database while
    /// samba runs (LDAP adds of users run at about 35 per second).
    pub fn ensure_bulk(&self) {
        static BULK: OnceLock<Result<(), String>> = OnceLock::new();
        let r = BULK.get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/samba_bulk.py");
            let out = Command::new("/usr/bin/python3")
                .arg(&script)
                .arg(self.dir.join("etc/smb.conf"))
                .arg(self.dir.join("private/sam.ldb"))
                .arg(BASE)
                .arg(bulk_users().to_string())
                .output()
                .map_err(|e| format!("run samba_bulk.py: {e}"))?;
            print!("{}", String::from_utf8_lossy(&out.stdout));
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "bulk load failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        });
        if let Err(e) = r {
            panic!("{e}");
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs a Python script (samba's bindings) on the DC's local `sam.ldb` as the system
    /// session: arguments are the smb.conf, the sam.ldb path, then `args`. Returns whether it
    /// succeeded and its output (stdout then stderr).
    pub fn run_local_python(&self, name: &str, script: &str, args: &[&str]) -> (bool, String) {
        let path = self.dir.join(name);
        std::fs::write(&path, script).expect("write the python script");
        let out = Command::new("/usr/bin/python3")
            .arg(&path)
            .arg(self.dir.join("etc/smb.conf"))
            .arg(self.dir.join("private/sam.ldb"))
            .args(args)
            .output()
            .expect("run python3");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// The CA certificate of the DC's LDAPS certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("private/tls/ca.pem")
    }

    /// Whether the DC process is still alive.
    pub fn alive(&self) -> bool {
        self.child
            .lock()
            .map(|mut c| matches!(c.try_wait(), Ok(None)))
            .unwrap_or(false)
    }

    fn args() -> Vec<&'static str> {
        vec!["-x", "-H", "ldap://127.0.0.1", "-D", ADMIN, "-w", ADMIN_PW]
    }

    /// `ldapadd` as Administrator.
    pub fn add(&self, ldif: &str) {
        ldap_tool("ldapadd", &Self::args(), ldif);
    }

    /// `ldapmodify` as Administrator (changetype records).
    pub fn modify(&self, ldif: &str) {
        ldap_tool("ldapmodify", &Self::args(), ldif);
    }

    /// Creates `OU=<name>` under the domain root and returns its DN.
    pub fn fresh_ou(&self, name: &str) -> String {
        let dn = format!("OU={name},{BASE}");
        self.add(&format!("dn: {dn}\nobjectClass: organizationalUnit\n"));
        dn
    }
}

/// Removes the data directories of earlier test processes that are gone.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("dirsync-samba-")
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

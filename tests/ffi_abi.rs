//! The C ABI as its callers use it: a C program compiled against `include/dirsync.h` (under
//! valgrind when installed), Python ctypes, and the PowerShell module's P/Invoke class compiled
//! with Mono; plus the header-staleness check.
//!
//! A missing tool skips its test with a message, except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The crate root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>/libdirsync.so` (or .dylib/.dll) next to this test binary's `deps` folder.
fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let name = if cfg!(target_os = "macos") {
        "libdirsync.dylib"
    } else if cfg!(windows) {
        "dirsync.dll"
    } else {
        "libdirsync.so"
    };
    let p = profile_dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: the cdylib is built with the crate",
        p.display()
    );
    p
}

/// True when the tool runs; otherwise skips (outside CI) or fails (CI=true).
fn have(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tool} is required under CI=true (scripts/install-test-deps.sh installs it)");
        }
        eprintln!("SKIPPED: {tool} is not installed (run scripts/install-test-deps.sh)");
    }
    ok
}

const SOURCE: &str = include_str!("ffi/fixture/src.ldif");

/// The configuration as JSON (the ABI form): an LDIF source into an LDIF target.
const CONFIG: &str = include_str!("ffi/fixture/config.json");

/// A folder with config.json and the source directory; the state goes there too.
fn fixture() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(d.path().join("config.json"), CONFIG).expect("config");
    std::fs::write(d.path().join("src.ldif"), SOURCE).expect("source");
    d
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    eprintln!("{text}");
}

#[test]
fn header_is_current() {
    let generated = std::fs::read_to_string(env!("DIRSYNC_GENERATED_HEADER"))
        .expect("generated header in OUT_DIR");
    let committed =
        std::fs::read_to_string(root().join("include/dirsync.h")).expect("include/dirsync.h");
    assert!(
        !generated.contains("cbindgen failed"),
        "cbindgen failed: {generated}"
    );
    assert!(
        generated == committed,
        "include/dirsync.h is stale: build outside CI to regenerate it, then commit it"
    );
}

#[test]
fn c_program_calls_every_function() {
    if !have("cc", &["--version"]) {
        return;
    }
    let lib = cdylib();
    let d = fixture();
    let exe = d.path().join("abi_test");
    run(
        Command::new("cc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-o"])
            .arg(&exe)
            .arg(root().join("tests/ffi/abi_test.c"))
            .arg("-I")
            .arg(root().join("include"))
            .arg("-L")
            .arg(lib.parent().unwrap())
            .arg(format!("-Wl,-rpath,{}", lib.parent().unwrap().display()))
            .arg("-ldirsync"),
        "cc abi_test.c",
    );
    let header = std::fs::read_to_string(root().join("include/dirsync.h")).unwrap();
    // Every exported function is called by the program.
    let program = std::fs::read_to_string(root().join("tests/ffi/abi_test.c")).unwrap();
    for name in header_functions(&header) {
        assert!(
            program.contains(&name),
            "tests/ffi/abi_test.c does not call {name}"
        );
    }
    let valgrind = Command::new("valgrind").arg("--version").output().is_ok();
    if valgrind {
        run(
            Command::new("valgrind")
                .args([
                    "--error-exitcode=1",
                    "--leak-check=full",
                    "--errors-for-leak-kinds=definite,indirect",
                    "--quiet",
                ])
                .arg(&exe)
                .current_dir(d.path()),
            "valgrind abi_test",
        );
    } else {
        have("valgrind", &["--version"]);
        run(Command::new(&exe).current_dir(d.path()), "abi_test");
    }
}

#[test]
fn python_ctypes() {
    if !have("python3", &["--version"]) {
        return;
    }
    let d = fixture();
    run(
        Command::new("python3")
            .arg(root().join("tests/ffi/test_ctypes.py"))
            .arg(cdylib())
            .current_dir(d.path()),
        "python3 test_ctypes.py",
    );
}

#[test]
fn mono_driver_uses_the_module_pinvoke_class() {
    if !have("mcs", &["--version"]) || !have("mono", &["--version"]) {
        return;
    }
    let d = fixture();
    let exe = d.path().join("driver.exe");
    run(
        Command::new("mcs")
            .arg("-nologo")
            .arg("-warnaserror")
            .arg(format!("-out:{}", exe.display()))
            .arg(root().join("powershell/DirSync.Native.cs"))
            .arg(root().join("tests/ffi/Driver.cs")),
        "mcs",
    );
    // The module loads the library from its own folder; the driver does the same.
    std::fs::copy(cdylib(), d.path().join(cdylib().file_name().unwrap())).unwrap();
    run(
        Command::new("mono").arg(&exe).current_dir(d.path()),
        "mono driver.exe",
    );
}

/// Names of the functions declared in a cbindgen header.
pub fn header_functions(header: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in header.lines() {
        if line.starts_with("//") || line.starts_with('#') {
            continue;
        }
        if let Some(i) = line.find("dirsync_")
            && let Some(j) = line[i..].find('(')
            && !line.contains("typedef")
        {
            out.push(line[i..i + j].to_string());
        }
    }
    out
}

/// Calls a handle function's UTF-8 form; returns the status and the result or last-error JSON.
fn call8(
    f: unsafe extern "C" fn(
        *const dirsync::ffi::DirSyncEngine,
        *const std::ffi::c_char,
        *mut *mut std::ffi::c_char,
    ) -> dirsync::ffi::DirSyncStatus,
    h: *const dirsync::ffi::DirSyncEngine,
    request: &str,
) -> (dirsync::ffi::DirSyncStatus, serde_json::Value) {
    use dirsync::ffi::*;
    let req = std::ffi::CString::new(request).expect("request");
    let mut out = std::ptr::null_mut();
    // SAFETY: a live handle, a NUL-terminated request and an output pointer.
    let status = unsafe { f(h, req.as_ptr(), &mut out) };
    if status != DirSyncStatus::DIRSYNC_OK {
        // SAFETY: as above.
        unsafe { dirsync_last_error(&mut out) };
    }
    // SAFETY: `out` is a string this library returned.
    let text = unsafe { std::ffi::CStr::from_ptr(out) }
        .to_str()
        .expect("UTF-8")
        .to_string();
    unsafe { dirsync_string_free(out) };
    (status, serde_json::from_str(&text).expect("JSON"))
}

#[test]
fn writeback_through_the_abi_with_the_tenant_emulator() {
    use dirsync::emulator::{
        DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, Emulator, EmulatorConfig,
        ObjectKind,
    };
    use dirsync::ffi::*;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let cloud = rt
        .block_on(Emulator::start(EmulatorConfig::default()))
        .expect("emulator");
    cloud
        .seed(
            ObjectKind::User,
            serde_json::json!({"displayName": "Zoë", "userPrincipalName": "zoe@contoso.example",
                               "accountEnabled": true}),
        )
        .expect("seed user");
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(d.path().join("secret.txt"), DEFAULT_CLIENT_SECRET).expect("secret");
    // A cloud connector on the emulator and an AD connector whose DC does not answer: the
    // cloud side runs, the AD export has nothing to write (no writeback rules here).
    let config = serde_json::json!({
        "state": {"path": d.path().join("state.db")},
        "connectors": [
            {"name": "aad", "type": "graph", "settings": {
                "tenant_id": DEFAULT_TENANT_ID, "client_id": DEFAULT_CLIENT_ID,
                "client_secret_file": d.path().join("secret.txt"),
                "authority": cloud.base_url(), "graph_url": cloud.graph_url(),
                "object_types": ["user", "group"]}},
            {"name": "corp", "type": "ad", "settings": {
                "connection": {"url": "ldaps://127.0.0.1:1", "connect_attempts": 1}}}
        ]
    });
    let c = std::ffi::CString::new(config.to_string()).expect("config");
    let mut h = std::ptr::null_mut();
    // SAFETY: a NUL-terminated configuration and an output pointer.
    let s = unsafe { dirsync_engine_open(c.as_ptr(), &mut h) };
    assert_eq!(s, DirSyncStatus::DIRSYNC_OK);

    let (s, res) = call8(dirsync_writeback, h, r#"{"dry_run":true}"#);
    assert_eq!(s, DirSyncStatus::DIRSYNC_OK, "{res}");
    assert_eq!(res["dry_run"], true);
    let steps: Vec<(String, String, String)> = res["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            (
                r["connector"].as_str().unwrap_or_default().to_string(),
                r["profile"].as_str().unwrap_or_default().to_string(),
                r["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("aad".into(), "FullImport".into(), "success".into()),
            ("aad".into(), "FullSync".into(), "success".into()),
            ("corp".into(), "Export".into(), "success".into()),
        ]
    );
    assert_eq!(res["runs"][0]["counters"]["adds"], 1, "{res}");
    // The run history has the writeback run with its steps.
    let (s, hist) = call8(dirsync_history, h, r#"{"limit":10}"#);
    assert_eq!(s, DirSyncStatus::DIRSYNC_OK);
    assert!(
        hist.as_array()
            .expect("history")
            .iter()
            .any(|r| r["profile"] == "Writeback"),
        "{hist}"
    );
    // Bad requests and a password for an identity that is not an AD user.
    let (s, _) = call8(dirsync_writeback, h, r#"{"dry_run":"yes"}"#);
    assert_eq!(s, DirSyncStatus::DIRSYNC_E_INVALID_JSON);
    let (s, err) = call8(
        dirsync_set_password,
        h,
        r#"{"identity":"zoe@contoso.example","password":"Secret-1"}"#,
    );
    assert_eq!(s, DirSyncStatus::DIRSYNC_E_NOT_FOUND, "{err}");
    // Not projected to the metaverse (no rules here): no identity answers to the name.
    assert_eq!(err["details"]["kind"], "IdentityNotFound", "{err}");
    assert!(!err.to_string().contains("Secret-1"), "{err}");
    // SAFETY: the handle is not used afterwards.
    assert_eq!(
        unsafe { dirsync_engine_close(h) },
        DirSyncStatus::DIRSYNC_OK
    );
    rt.block_on(cloud.shutdown()).expect("shutdown");
}

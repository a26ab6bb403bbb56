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

//! Generates the C header `include/dirsync.h` from the `ffi` module with cbindgen.
//!
//! The header is always generated into OUT_DIR (the test `header_is_current` compares it with
//! the committed copy). Outside CI (`CI` unset or not `true`) the committed copy is refreshed
//! when it differs, so developers never edit it by hand and CI catches a stale commit.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=CI");
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let generated = out_dir.join("dirsync.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(&generated);
        }
        Err(e) => {
            println!("cargo:warning=cbindgen failed: {e}");
            fs::write(&generated, format!("/* cbindgen failed: {e} */\n")).expect("write OUT_DIR");
        }
    }
    println!(
        "cargo:rustc-env=DIRSYNC_GENERATED_HEADER={}",
        generated.display()
    );
    let in_ci = env::var("CI").map(|v| v == "true").unwrap_or(false);
    if !in_ci {
        let committed = crate_dir.join("include").join("dirsync.h");
        let new = fs::read(&generated).unwrap_or_default();
        if fs::read(&committed).ok().as_deref() != Some(new.as_slice()) {
            let _ = fs::create_dir_all(crate_dir.join("include"));
            fs::write(&committed, new).expect("write include/dirsync.h");
        }
    }
}

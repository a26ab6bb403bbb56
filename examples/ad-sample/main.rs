//! Writes the contoso.example sample (examples/ad-sample/contoso.ldif and changes/*.ldif) from the
//! deterministic model in model.rs: `cargo run --example ad-sample`.

#![allow(dead_code)]

include!("model.rs");

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ad-sample");
    for (name, text) in files() {
        let p = root.join(&name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

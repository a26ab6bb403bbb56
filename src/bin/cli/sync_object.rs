//! `dirsync cs sync`: the single-object sync report (Sync-ADSyncCSObject), as text.

use dirsync::engine::ObjectSyncReport;
use dirsync::model::Value;

fn values(v: &[Value]) -> String {
    if v.is_empty() {
        "(none)".to_string()
    } else {
        v.iter().map(Value::to_text).collect::<Vec<_>>().join("; ")
    }
}

/// Prints the report for an admin.
pub fn print(r: &ObjectSyncReport) {
    println!(
        "{} of {} in connector '{}' (type {}, anchor {})",
        if r.committed { "Sync" } else { "Preview" },
        r.object.dn,
        r.connector,
        r.object.object_type,
        r.object.anchor.as_deref().unwrap_or("(none)")
    );
    println!("inbound rules:");
    for ev in r.inbound_rules.iter().filter(|e| e.applies) {
        println!(
            "  {:<4} {:<40} {:<9} {}",
            ev.precedence,
            ev.rule,
            if ev.in_scope { "in scope" } else { "out" },
            ev.reason
        );
    }
    println!(
        "link: {}{} ({})",
        r.link.action,
        r.link
            .rule
            .as_deref()
            .map(|x| format!(" by '{x}'"))
            .unwrap_or_default(),
        r.link.reason
    );
    if let Some(mv) = &r.metaverse {
        println!(
            "metaverse object {} ({}): {}",
            mv.id, mv.object_type, mv.outcome
        );
        for c in &mv.changes {
            println!(
                "  {:<24} {} -> {}{}",
                c.attribute,
                values(&c.old),
                values(&c.new),
                c.rule
                    .as_deref()
                    .map(|x| format!("   [{x}]"))
                    .unwrap_or_default()
            );
        }
    }
    for x in &r.exports {
        match (&x.after, x.changed) {
            (Some(p), _) => print!("export: {}", p.to_text()),
            (None, true) => println!(
                "export to '{}' {}: pending export removed",
                x.connector, x.dn
            ),
            (None, false) => println!("export to '{}' {}: no export", x.connector, x.dn),
        }
    }
    for e in &r.errors {
        println!("error ({}): {}: {}", e.stage, e.object, e.message);
    }
    if !r.committed {
        println!("(preview: nothing was kept; rerun with --commit to keep it)");
    }
}

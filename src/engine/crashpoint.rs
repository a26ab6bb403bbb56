//! Crash-consistency test hook: `DIRSYNC_CRASH_AT=<name>:<n>` aborts the process the n-th time
//! the named point is reached (`*` matches every point). Read once; costs one atomic load when unset.

use once_cell::sync::Lazy;
use std::sync::Mutex;

struct Target {
    name: String,
    remaining: u64,
}

static TARGET: Lazy<Option<Mutex<Target>>> = Lazy::new(|| {
    let spec = std::env::var("DIRSYNC_CRASH_AT").ok()?;
    let (name, n) = spec.rsplit_once(':')?;
    let n: u64 = n.parse().ok()?;
    Some(Mutex::new(Target {
        name: name.to_string(),
        remaining: n.max(1),
    }))
});

/// Marks a point where a crash is survivable; aborts here when the test hook says so.
pub fn crash_point(name: &str) {
    let Some(t) = TARGET.as_ref() else { return };
    let Ok(mut t) = t.lock() else { return };
    if t.name == "*" || t.name == name {
        t.remaining -= 1;
        if t.remaining == 0 {
            eprintln!("DIRSYNC_CRASH_AT: aborting at {name}");
            std::process::abort();
        }
    }
}

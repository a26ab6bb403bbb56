//! The C ABI (`dirsync_*` functions). Placeholder until implemented (issue 6).

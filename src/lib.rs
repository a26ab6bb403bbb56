//! dirsync: an open, cross-platform directory synchronization engine.
//!
//! Rooms, from the bottom up: [`model`] (values, objects, DNs), [`expr`] (the expression
//! language), [`connectors`] (LDIF, CSV, LDAP, AD, Graph), [`config`] and [`rules`]
//! (declarative sync rules), [`store`] (SQLite state), [`engine`] (connector spaces,
//! metaverse, run profiles, plan and guards), and on top the C ABI and the CLI.

pub mod config;
pub mod connectors;
pub mod emulator;
pub mod engine;
pub mod expr;
pub mod ffi;
pub mod model;
pub mod rules;
pub mod scheduler;
pub mod store;
pub mod templates;

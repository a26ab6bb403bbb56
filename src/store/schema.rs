//! Versioned schema migrations. Each step runs in its own transaction and bumps `user_version`.

use super::{Result, StoreError};
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: initial schema
    r#"
CREATE TABLE connector(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  watermark TEXT,
  import_generation INTEGER NOT NULL DEFAULT 0,
  full_import_required INTEGER NOT NULL DEFAULT 1,
  full_sync_required INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE cs_object(
  id INTEGER PRIMARY KEY,
  connector_id INTEGER NOT NULL REFERENCES connector(id),
  anchor TEXT,
  dn TEXT NOT NULL,
  dn_norm TEXT NOT NULL,
  object_type TEXT NOT NULL,
  attrs TEXT NOT NULL,
  unconfirmed TEXT,
  placeholder INTEGER NOT NULL DEFAULT 0,
  mv_id INTEGER,
  link TEXT,
  link_rule TEXT,
  deleted INTEGER NOT NULL DEFAULT 0,
  sync_pending INTEGER NOT NULL DEFAULT 0,
  seen_generation INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX cs_anchor ON cs_object(connector_id, anchor) WHERE anchor IS NOT NULL;
CREATE INDEX cs_dn ON cs_object(connector_id, dn_norm);
CREATE INDEX cs_mv ON cs_object(mv_id) WHERE mv_id IS NOT NULL;
CREATE INDEX cs_pending ON cs_object(connector_id) WHERE sync_pending=1;
CREATE TABLE cs_ref(
  cs_id INTEGER NOT NULL,
  connector_id INTEGER NOT NULL,
  target_dn_norm TEXT NOT NULL,
  PRIMARY KEY(cs_id, target_dn_norm)
) WITHOUT ROWID;
CREATE INDEX cs_ref_target ON cs_ref(connector_id, target_dn_norm);
CREATE TABLE mv_object(
  id INTEGER PRIMARY KEY,
  object_type TEXT NOT NULL,
  attrs TEXT NOT NULL,
  provenance TEXT NOT NULL,
  created TEXT NOT NULL,
  updated TEXT
);
CREATE TABLE mv_index(
  attr TEXT NOT NULL,
  value_norm TEXT NOT NULL,
  mv_id INTEGER NOT NULL,
  PRIMARY KEY(attr, value_norm, mv_id)
) WITHOUT ROWID;
CREATE INDEX mv_index_obj ON mv_index(mv_id);
CREATE TABLE mv_ref(
  mv_id INTEGER NOT NULL,
  target_mv_id INTEGER NOT NULL,
  PRIMARY KEY(mv_id, target_mv_id)
) WITHOUT ROWID;
CREATE INDEX mv_ref_target ON mv_ref(target_mv_id);
CREATE TABLE pending_export(
  cs_id INTEGER PRIMARY KEY,
  connector_id INTEGER NOT NULL,
  op TEXT NOT NULL,
  dn TEXT NOT NULL,
  new_dn TEXT,
  changes TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  updated TEXT NOT NULL
);
CREATE INDEX pending_connector ON pending_export(connector_id);
CREATE TABLE run(
  id INTEGER PRIMARY KEY,
  parent_id INTEGER,
  connector TEXT,
  profile TEXT NOT NULL,
  started TEXT NOT NULL,
  ended TEXT,
  result TEXT NOT NULL,
  counters TEXT NOT NULL DEFAULT '{}',
  message TEXT
);
CREATE INDEX run_started ON run(started);
CREATE TABLE run_error(
  run_id INTEGER NOT NULL,
  object TEXT NOT NULL,
  stage TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX run_error_run ON run_error(run_id);
CREATE TABLE setting(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"#,
    // 2: value-level changes of a connector-space object since its last synchronization
    r#"
CREATE TABLE cs_delta(
  cs_id INTEGER PRIMARY KEY,
  changes TEXT NOT NULL
);
"#,
];

/// Applies the migrations this state has not seen yet.
pub fn migrate(c: &Connection) -> Result<()> {
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StoreError::TooNew {
            found: version,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        c.execute_batch(&format!(
            "BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {};\nCOMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}

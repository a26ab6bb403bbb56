//! The persistent state: one SQLite file (WAL) holding connector spaces, the metaverse,
//! pending exports, watermarks and run history, behind a lock that keeps a second engine out.
//!
//! Functions take a `&Connection` so the engine decides the transaction boundaries
//! (a `rusqlite::Transaction` derefs to a `Connection`).

mod schema;

use crate::model::{Attributes, Dn, Value};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another engine holds the state.
    #[error(
        "the state {path} is in use by another dirsync engine (lock {lock}); wait for it to finish or stop it"
    )]
    Locked {
        /// State file.
        path: String,
        /// Lock file.
        lock: String,
    },
    /// SQLite failure.
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Stored data could not be decoded.
    #[error("state data is corrupt: {0}")]
    Corrupt(String),
    /// File system failure.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The state was written by a newer dirsync.
    #[error("the state schema version {found} is newer than this dirsync supports ({supported})")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, StoreError>;

/// How a connector-space object is linked to its metaverse object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Inbound projection created the metaverse object.
    Projected,
    /// Joined an existing metaverse object.
    Joined,
    /// Joined and keeps the metaverse object alive.
    Sticky,
    /// Outbound provisioning created this target object.
    Provisioned,
}

impl LinkKind {
    fn as_str(self) -> &'static str {
        match self {
            LinkKind::Projected => "projected",
            LinkKind::Joined => "joined",
            LinkKind::Sticky => "sticky",
            LinkKind::Provisioned => "provisioned",
        }
    }
    fn parse(s: &str) -> Option<LinkKind> {
        Some(match s {
            "projected" => LinkKind::Projected,
            "joined" => LinkKind::Joined,
            "sticky" => LinkKind::Sticky,
            "provisioned" => LinkKind::Provisioned,
            _ => return None,
        })
    }
    /// True when this link keeps the metaverse object alive.
    pub fn keeps_alive(self) -> bool {
        matches!(self, LinkKind::Projected | LinkKind::Sticky)
    }
}

/// One connector-space object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsObject {
    /// Row id.
    pub id: i64,
    /// Connector id.
    pub connector_id: i64,
    /// Anchor (None for a provisioned object not yet created in its directory).
    pub anchor: Option<String>,
    /// DN as last imported (for a placeholder: the DN it will be created with).
    pub dn: Dn,
    /// Object type.
    pub object_type: String,
    /// Attributes as last imported (confirmed).
    pub attributes: Attributes,
    /// Attributes dirsync has exported but an import has not confirmed yet.
    pub unconfirmed: Option<Attributes>,
    /// Provisioned by dirsync and never seen by an import.
    pub placeholder: bool,
    /// Joined metaverse object.
    pub mv_id: Option<i64>,
    /// Link kind.
    pub link: Option<LinkKind>,
    /// Rule that made the link.
    pub link_rule: Option<String>,
    /// The last import found it gone; sync will process the deletion.
    pub deleted: bool,
    /// An imported change waits for synchronization.
    pub sync_pending: bool,
}

impl CsObject {
    /// The target-side view: what the directory holds once unconfirmed exports land.
    pub fn effective_attributes(&self) -> &Attributes {
        self.unconfirmed.as_ref().unwrap_or(&self.attributes)
    }
}

/// Who set a metaverse attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Connector of the contributing object.
    pub connector: String,
    /// Rule whose flow set it.
    pub rule: String,
    /// When it last changed (RFC 3339).
    pub modified: String,
}

/// One metaverse object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MvObject {
    /// Row id (also the metaverse identifier).
    pub id: i64,
    /// Object type.
    pub object_type: String,
    /// Attributes.
    pub attributes: Attributes,
    /// Per-attribute provenance.
    pub provenance: BTreeMap<String, Provenance>,
}

/// A stored pending export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingExport {
    /// The target connector-space object.
    pub cs_id: i64,
    /// Connector id.
    pub connector_id: i64,
    /// `add`, `update` or `delete`.
    pub op: String,
    /// Current DN (for an add: the DN to create).
    pub dn: String,
    /// New DN for a rename or move.
    pub new_dn: Option<String>,
    /// Attribute changes (for an add: the attributes of the new object as replaces).
    pub changes: Vec<crate::model::AttributeChange>,
    /// How many export attempts failed so far.
    pub attempts: i64,
    /// Last error.
    pub last_error: Option<String>,
}

/// The open state.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) the state file, takes the engine lock and migrates the schema.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                path: dir.display().to_string(),
                source: e,
            })?;
        }
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Io {
                path: lock_path.display().to_string(),
                source: e,
            })?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked {
                path: path.display().to_string(),
                lock: lock_path.display().to_string(),
            });
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", -65536)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&conn)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The state file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection (for reads).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Starts a transaction.
    pub fn transaction(&mut self) -> Result<rusqlite::Transaction<'_>> {
        Ok(self.conn.transaction()?)
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Current time as RFC 3339.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------------------
// Connectors and watermarks

/// The id of a connector, registering it on first use.
pub fn connector_id(c: &Connection, name: &str) -> Result<i64> {
    if let Some(id) = c
        .query_row("SELECT id FROM connector WHERE name=?1", [name], |r| {
            r.get(0)
        })
        .optional()?
    {
        return Ok(id);
    }
    c.execute("INSERT INTO connector(name) VALUES (?1)", [name])?;
    Ok(c.last_insert_rowid())
}

/// The stored delta watermark.
pub fn watermark(c: &Connection, connector_id: i64) -> Result<Option<String>> {
    Ok(c.query_row(
        "SELECT watermark FROM connector WHERE id=?1",
        [connector_id],
        |r| r.get::<_, Option<String>>(0),
    )?)
}

/// Stores the delta watermark.
pub fn set_watermark(c: &Connection, connector_id: i64, wm: Option<&str>) -> Result<()> {
    c.execute(
        "UPDATE connector SET watermark=?2 WHERE id=?1",
        params![connector_id, wm],
    )?;
    Ok(())
}

/// Reads a connector flag (`full_import_required`, `full_sync_required`, `import_generation`).
pub fn connector_counter(
    c: &Connection,
    connector_id: i64,
    column: ConnectorCounter,
) -> Result<i64> {
    let sql = format!("SELECT {} FROM connector WHERE id=?1", column.column());
    Ok(c.query_row(&sql, [connector_id], |r| r.get(0))?)
}

/// Writes a connector flag.
pub fn set_connector_counter(
    c: &Connection,
    connector_id: i64,
    column: ConnectorCounter,
    value: i64,
) -> Result<()> {
    let sql = format!("UPDATE connector SET {}=?2 WHERE id=?1", column.column());
    c.execute(&sql, params![connector_id, value])?;
    Ok(())
}

/// Per-connector counters and flags kept in the state.
#[derive(Debug, Clone, Copy)]
pub enum ConnectorCounter {
    /// Generation number of the last full import (marks objects seen).
    ImportGeneration,
    /// The next import must be a full import.
    FullImportRequired,
    /// The next sync must be a full sync.
    FullSyncRequired,
}

impl ConnectorCounter {
    fn column(self) -> &'static str {
        match self {
            ConnectorCounter::ImportGeneration => "import_generation",
            ConnectorCounter::FullImportRequired => "full_import_required",
            ConnectorCounter::FullSyncRequired => "full_sync_required",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connector space

const CS_COLUMNS: &str = "id, connector_id, anchor, dn, object_type, attrs, unconfirmed, placeholder, mv_id, link, link_rule, deleted, sync_pending";

fn cs_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(CsObject, String, Option<String>)> {
    let dn: String = r.get(3)?;
    let attrs: String = r.get(5)?;
    let unconfirmed: Option<String> = r.get(6)?;
    let link: Option<String> = r.get(9)?;
    Ok((
        CsObject {
            id: r.get(0)?,
            connector_id: r.get(1)?,
            anchor: r.get(2)?,
            dn: Dn::parse(&dn).unwrap_or_default(),
            object_type: r.get(4)?,
            attributes: Attributes::new(),
            unconfirmed: None,
            placeholder: r.get::<_, i64>(7)? != 0,
            mv_id: r.get(8)?,
            link: link.as_deref().and_then(LinkKind::parse),
            link_rule: r.get(10)?,
            deleted: r.get::<_, i64>(11)? != 0,
            sync_pending: r.get::<_, i64>(12)? != 0,
        },
        attrs,
        unconfirmed,
    ))
}

fn cs_finish(t: (CsObject, String, Option<String>)) -> Result<CsObject> {
    let (mut o, attrs, unconfirmed) = t;
    o.attributes = from_json(&attrs)?;
    o.unconfirmed = match unconfirmed {
        Some(u) => Some(from_json(&u)?),
        None => None,
    };
    Ok(o)
}

fn cs_query(c: &Connection, where_clause: &str, p: impl rusqlite::Params) -> Result<Vec<CsObject>> {
    let sql = format!("SELECT {CS_COLUMNS} FROM cs_object WHERE {where_clause}");
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(p, cs_from_row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(cs_finish(r?)?);
    }
    Ok(out)
}

/// A connector-space object by id.
pub fn cs_get(c: &Connection, id: i64) -> Result<Option<CsObject>> {
    Ok(cs_query(c, "id=?1", [id])?.into_iter().next())
}

/// A connector-space object by anchor.
pub fn cs_by_anchor(c: &Connection, connector_id: i64, anchor: &str) -> Result<Option<CsObject>> {
    Ok(cs_query(
        c,
        "connector_id=?1 AND anchor=?2",
        params![connector_id, anchor],
    )?
    .into_iter()
    .next())
}

/// A connector-space object by DN (case-insensitive).
pub fn cs_by_dn(c: &Connection, connector_id: i64, dn: &Dn) -> Result<Option<CsObject>> {
    Ok(cs_query(
        c,
        "connector_id=?1 AND dn_norm=?2",
        params![connector_id, dn.normalized()],
    )?
    .into_iter()
    .next())
}

/// The id and MV link of the object with this DN (fast path for reference resolution).
pub fn cs_link_by_dn(
    c: &Connection,
    connector_id: i64,
    dn_norm: &str,
) -> Result<Option<(i64, Option<i64>)>> {
    let mut st = c.prepare_cached(
        "SELECT id, mv_id FROM cs_object WHERE connector_id=?1 AND dn_norm=?2 AND deleted=0",
    )?;
    Ok(st
        .query_row(params![connector_id, dn_norm], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

/// The DN of the object a metaverse object is linked to in a connector (for reference resolution).
pub fn cs_dn_by_mv(c: &Connection, mv_id: i64, connector_id: i64) -> Result<Option<String>> {
    let mut st =
        c.prepare_cached("SELECT dn FROM cs_object WHERE mv_id=?1 AND connector_id=?2 LIMIT 1")?;
    Ok(st
        .query_row(params![mv_id, connector_id], |r| r.get(0))
        .optional()?)
}

/// For objects referencing a DN: (id, linked metaverse object, sync pending), without loading them.
pub fn cs_referrer_links(
    c: &Connection,
    connector_id: i64,
    dn_norm: &str,
) -> Result<Vec<(i64, Option<i64>, bool)>> {
    let mut st = c.prepare_cached(
        "SELECT o.id, o.mv_id, o.sync_pending FROM cs_ref r JOIN cs_object o ON o.id = r.cs_id
         WHERE r.connector_id=?1 AND r.target_dn_norm=?2",
    )?;
    let rows = st
        .query_map(params![connector_id, dn_norm], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// True when any connector-space object linked to the metaverse object waits for sync.
pub fn mv_has_pending(c: &Connection, mv_id: i64) -> Result<bool> {
    let mut st =
        c.prepare_cached("SELECT 1 FROM cs_object WHERE mv_id=?1 AND sync_pending=1 LIMIT 1")?;
    Ok(st.exists([mv_id])?)
}

/// Changes only the metaverse link of a connector-space object.
pub fn cs_set_link(
    c: &Connection,
    id: i64,
    mv_id: Option<i64>,
    link: Option<LinkKind>,
    rule: Option<&str>,
) -> Result<()> {
    c.prepare_cached("UPDATE cs_object SET mv_id=?2, link=?3, link_rule=?4 WHERE id=?1")?
        .execute(params![id, mv_id, link.map(LinkKind::as_str), rule])?;
    Ok(())
}

/// Objects strictly below a DN.
pub fn cs_descendants(c: &Connection, connector_id: i64, dn: &Dn) -> Result<Vec<CsObject>> {
    let suffix = format!("%,{}", dn.normalized());
    cs_query(
        c,
        "connector_id=?1 AND dn_norm LIKE ?2 ESCAPE '\\'",
        params![connector_id, like_escape(&suffix)],
    )
}

fn like_escape(pattern: &str) -> String {
    // Keep the leading % wildcard, escape the literal part.
    let (head, rest) = pattern.split_at(1);
    let mut out = head.to_string();
    for ch in rest.chars() {
        if ch == '%' || ch == '_' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// All objects of a connector.
pub fn cs_all(c: &Connection, connector_id: i64) -> Result<Vec<CsObject>> {
    cs_query(c, "connector_id=?1 ORDER BY id", [connector_id])
}

/// A connector's objects an outbound join may take: not linked, not deleted, not placeholders.
pub fn cs_joinable(c: &Connection, connector_id: i64) -> Result<Vec<CsObject>> {
    cs_query(
        c,
        "connector_id=?1 AND mv_id IS NULL AND deleted=0 AND placeholder=0 ORDER BY id",
        [connector_id],
    )
}

/// Ids of a connector's objects waiting for sync.
pub fn cs_pending_ids(c: &Connection, connector_id: i64) -> Result<Vec<i64>> {
    let mut st = c.prepare_cached(
        "SELECT id FROM cs_object WHERE connector_id=?1 AND sync_pending=1 ORDER BY id",
    )?;
    let ids = st
        .query_map([connector_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// Objects joined to a metaverse object.
pub fn cs_by_mv(c: &Connection, mv_id: i64) -> Result<Vec<CsObject>> {
    cs_query(c, "mv_id=?1 ORDER BY id", [mv_id])
}

/// Number of live (non-placeholder, not deleted) objects of a connector.
pub fn cs_count(c: &Connection, connector_id: i64) -> Result<i64> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM cs_object WHERE connector_id=?1 AND placeholder=0 AND deleted=0",
        [connector_id],
        |r| r.get(0),
    )?)
}

/// Inserts a connector-space object (`id` 0) and returns its id.
pub fn cs_insert(c: &Connection, o: &CsObject, generation: i64) -> Result<i64> {
    cs_save(c, o, generation)
}

/// Rewrites every column of a connector-space object.
pub fn cs_update(c: &Connection, o: &CsObject) -> Result<()> {
    cs_save(c, o, 0).map(|_| ())
}

/// One statement for both: a new row when `id` is 0, else every column but the import
/// generation is rewritten. Keeps the reference index in step.
fn cs_save(c: &Connection, o: &CsObject, generation: i64) -> Result<i64> {
    let id = cs_save_row(c, o, generation)?;
    cs_write_refs(c, id, o)?;
    Ok(id)
}

/// Rewrites an object whose imported attributes changed by exactly `delta` (value adds and
/// removes). The reference index gains the added references without being rebuilt; those of
/// removed values stay indexed until the next full write of the object. The index is read as
/// "may reference": renames retarget only values that still match and re-evaluation of
/// referrers is idempotent, so a stale entry costs a lookup, not a wrong value.
pub fn cs_update_values(c: &Connection, o: &CsObject, delta: &ObjectDelta) -> Result<()> {
    let id = cs_save_row(c, o, 0)?;
    let mut st = c.prepare_cached(
        "INSERT OR IGNORE INTO cs_ref(cs_id, connector_id, target_dn_norm) VALUES (?1, ?2, ?3)",
    )?;
    for d in delta.attributes.values() {
        for v in &d.added {
            if let Value::Ref(dn) = v
                && let Ok(d) = Dn::parse(dn)
            {
                st.execute(params![id, o.connector_id, d.normalized()])?;
            }
        }
    }
    Ok(())
}

fn cs_save_row(c: &Connection, o: &CsObject, generation: i64) -> Result<i64> {
    let mut st = c.prepare_cached(
        "INSERT INTO cs_object(id, connector_id, anchor, dn, dn_norm, object_type, attrs, unconfirmed, placeholder, mv_id, link, link_rule, deleted, sync_pending, seen_generation)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT(id) DO UPDATE SET anchor=excluded.anchor, dn=excluded.dn, dn_norm=excluded.dn_norm,
           object_type=excluded.object_type, attrs=excluded.attrs, unconfirmed=excluded.unconfirmed,
           placeholder=excluded.placeholder, mv_id=excluded.mv_id, link=excluded.link,
           link_rule=excluded.link_rule, deleted=excluded.deleted, sync_pending=excluded.sync_pending",
    )?;
    st.execute(params![
        (o.id != 0).then_some(o.id),
        o.connector_id,
        o.anchor,
        o.dn.to_string(),
        o.dn.normalized(),
        o.object_type,
        to_json(&o.attributes)?,
        o.unconfirmed.as_ref().map(to_json).transpose()?,
        o.placeholder as i64,
        o.mv_id,
        o.link.map(LinkKind::as_str),
        o.link_rule,
        o.deleted as i64,
        o.sync_pending as i64,
        generation,
    ])?;
    let id = if o.id != 0 {
        // Any rewrite of the object invalidates recorded value-level changes; an import that
        // records them writes them after this.
        cs_delta_clear(c, o.id)?;
        o.id
    } else {
        c.last_insert_rowid()
    };
    Ok(id)
}

/// Marks a connector-space object as seen by the full import of `generation`.
pub fn cs_mark_seen(c: &Connection, id: i64, generation: i64) -> Result<()> {
    c.prepare_cached("UPDATE cs_object SET seen_generation=?2 WHERE id=?1")?
        .execute(params![id, generation])?;
    Ok(())
}

/// Ids of a connector's imported objects a full import of `generation` did not see.
pub fn cs_unseen(c: &Connection, connector_id: i64, generation: i64) -> Result<Vec<i64>> {
    let mut st = c.prepare_cached(
        "SELECT id FROM cs_object WHERE connector_id=?1 AND placeholder=0 AND deleted=0 AND seen_generation<>?2",
    )?;
    let ids = st
        .query_map(params![connector_id, generation], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// Sets or clears the sync-pending flag. Either way recorded value-level changes are dropped:
/// a synchronization consumed them, or the object must be evaluated whole.
pub fn cs_set_sync_pending(c: &Connection, id: i64, pending: bool) -> Result<()> {
    c.prepare_cached("UPDATE cs_object SET sync_pending=?2 WHERE id=?1")?
        .execute(params![id, pending as i64])?;
    cs_delta_clear(c, id)?;
    Ok(())
}

/// Marks every object of a connector for synchronization (full sync): every object is
/// evaluated whole, so recorded value-level changes are dropped.
pub fn cs_mark_all_pending(c: &Connection, connector_id: i64) -> Result<usize> {
    c.execute(
        "DELETE FROM cs_delta WHERE cs_id IN (SELECT id FROM cs_object WHERE connector_id=?1)",
        [connector_id],
    )?;
    Ok(c.execute(
        "UPDATE cs_object SET sync_pending=1 WHERE connector_id=?1 AND placeholder=0",
        [connector_id],
    )?)
}

/// Fewest values (after the change, plus those removed) an attribute needs before its changes
/// are recorded and synchronized value by value; smaller attributes are cheap to evaluate whole.
pub const DELTA_MIN_VALUES: usize = 64;

/// Value-level changes of one attribute (values compared exactly).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueDelta {
    /// Values added.
    pub added: Vec<Value>,
    /// Values removed.
    pub removed: Vec<Value>,
    /// Number of values after the changes.
    #[serde(default)]
    pub len: usize,
}

/// Value-level changes of a connector-space object since its last synchronization. Recorded
/// by imports for objects that were synchronized before; present only while the object waits
/// for sync and only when these are all its changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectDelta {
    /// Value changes of the imported attributes, by attribute.
    pub attributes: BTreeMap<String, ValueDelta>,
    /// The import read back exactly what dirsync had exported and not yet confirmed: the
    /// target-side (effective) attributes did not change.
    #[serde(default)]
    pub confirmed: bool,
}

impl ObjectDelta {
    /// True when some changed attribute has at least [`DELTA_MIN_VALUES`] values (after the
    /// change, plus those removed): only such changes are recorded.
    pub fn is_large(&self) -> bool {
        self.attributes
            .values()
            .any(|d| d.len + d.removed.len() >= DELTA_MIN_VALUES)
    }
}

/// The recorded value-level changes of an object, if any.
pub fn cs_delta_get(c: &Connection, cs_id: i64) -> Result<Option<ObjectDelta>> {
    let mut st = c.prepare_cached("SELECT changes FROM cs_delta WHERE cs_id=?1")?;
    let row: Option<String> = st.query_row([cs_id], |r| r.get(0)).optional()?;
    row.map(|s| from_json(&s)).transpose()
}

/// Records the value-level changes of an object (replacing earlier ones).
pub fn cs_delta_put(c: &Connection, cs_id: i64, delta: &ObjectDelta) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO cs_delta(cs_id, changes) VALUES (?1, ?2)
         ON CONFLICT(cs_id) DO UPDATE SET changes=excluded.changes",
    )?
    .execute(params![cs_id, to_json(delta)?])?;
    Ok(())
}

/// Drops the recorded value-level changes of an object.
pub fn cs_delta_clear(c: &Connection, cs_id: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM cs_delta WHERE cs_id=?1")?
        .execute([cs_id])?;
    Ok(())
}

/// The link columns of a connector-space object (no attributes loaded).
#[derive(Debug, Clone, PartialEq)]
pub struct CsLink {
    /// Row id.
    pub id: i64,
    /// Connector id.
    pub connector_id: i64,
    /// Link kind.
    pub link: Option<LinkKind>,
    /// Provisioned and never seen by an import.
    pub placeholder: bool,
}

/// The flags of a connector-space object (no attributes loaded).
#[derive(Debug, Clone, PartialEq)]
pub struct CsHead {
    /// Connector id.
    pub connector_id: i64,
    /// Object type.
    pub object_type: String,
    /// Joined metaverse object.
    pub mv_id: Option<i64>,
    /// Deleted by the last import, sync pending.
    pub deleted: bool,
    /// Provisioned and never seen by an import.
    pub placeholder: bool,
}

/// Connector, type, metaverse link, deleted and placeholder flags of an object.
pub fn cs_head(c: &Connection, id: i64) -> Result<Option<CsHead>> {
    let mut st = c.prepare_cached(
        "SELECT connector_id, object_type, mv_id, deleted, placeholder FROM cs_object WHERE id=?1",
    )?;
    Ok(st
        .query_row([id], |r| {
            Ok(CsHead {
                connector_id: r.get(0)?,
                object_type: r.get(1)?,
                mv_id: r.get(2)?,
                deleted: r.get::<_, i64>(3)? != 0,
                placeholder: r.get::<_, i64>(4)? != 0,
            })
        })
        .optional()?)
}

/// The DN of an object as stored.
pub fn cs_dn(c: &Connection, id: i64) -> Result<Option<String>> {
    let mut st = c.prepare_cached("SELECT dn FROM cs_object WHERE id=?1")?;
    Ok(st.query_row([id], |r| r.get(0)).optional()?)
}

/// Link columns of the objects joined to a metaverse object.
pub fn cs_links_by_mv(c: &Connection, mv_id: i64) -> Result<Vec<CsLink>> {
    let mut st = c.prepare_cached(
        "SELECT id, connector_id, link, placeholder FROM cs_object WHERE mv_id=?1 ORDER BY id",
    )?;
    let rows = st
        .query_map([mv_id], |r| {
            Ok(CsLink {
                id: r.get(0)?,
                connector_id: r.get(1)?,
                link: r
                    .get::<_, Option<String>>(2)?
                    .as_deref()
                    .and_then(LinkKind::parse),
                placeholder: r.get::<_, i64>(3)? != 0,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The metaverse links of every object (deleted ones included) with this DN.
pub fn cs_mv_links_by_dn(
    c: &Connection,
    connector_id: i64,
    dn_norm: &str,
) -> Result<Vec<Option<i64>>> {
    let mut st =
        c.prepare_cached("SELECT mv_id FROM cs_object WHERE connector_id=?1 AND dn_norm=?2")?;
    let rows = st
        .query_map(params![connector_id, dn_norm], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<Option<i64>>>>()?;
    Ok(rows)
}

/// The effective (target-side) values of some attributes of a connector-space object, as
/// their stored JSON arrays: the unconfirmed ones when an export is not confirmed yet, else
/// the imported ones. Other attributes are skipped, not decoded.
pub fn cs_effective_raw(
    c: &Connection,
    id: i64,
    names: &[&str],
) -> Result<Option<BTreeMap<String, String>>> {
    let mut st =
        c.prepare_cached("SELECT COALESCE(unconfirmed, attrs) FROM cs_object WHERE id=?1")?;
    let Some(text): Option<String> = st.query_row([id], |r| r.get(0)).optional()? else {
        return Ok(None);
    };
    let raw: BTreeMap<String, &serde_json::value::RawValue> = from_json_borrowed(&text)?;
    Ok(Some(
        names
            .iter()
            .filter_map(|n| raw.get(*n).map(|r| ((*n).to_string(), r.get().to_string())))
            .collect(),
    ))
}

/// A connector-space object without the named attributes (in both the imported and the
/// unconfirmed set): they are skipped, not decoded. For read-only evaluation that provably
/// does not look at them; never write such an object back.
pub fn cs_get_except(
    c: &Connection,
    id: i64,
    skip: &std::collections::BTreeSet<String>,
) -> Result<Option<CsObject>> {
    let sql = format!("SELECT {CS_COLUMNS} FROM cs_object WHERE id=?1");
    let mut st = c.prepare_cached(&sql)?;
    let row = st.query_row([id], cs_from_row).optional()?;
    let Some((mut o, attrs, unconfirmed)) = row else {
        return Ok(None);
    };
    let partial = |text: &str| -> Result<Attributes> {
        let raw: BTreeMap<String, &serde_json::value::RawValue> = from_json_borrowed(text)?;
        let mut out = Attributes::new();
        for (k, v) in raw {
            if !skip.contains(&k) {
                let vals: Vec<Value> = from_json(v.get())?;
                out.insert(k, vals);
            }
        }
        Ok(out)
    };
    o.attributes = partial(&attrs)?;
    o.unconfirmed = unconfirmed.as_deref().map(partial).transpose()?;
    Ok(Some(o))
}

fn from_json_borrowed<'a, T: Deserialize<'a>>(s: &'a str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Removes a connector-space object (and its pending export and reference rows).
pub fn cs_delete(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM cs_delta WHERE cs_id=?1", [id])?;
    c.execute("DELETE FROM pending_export WHERE cs_id=?1", [id])?;
    c.execute("DELETE FROM cs_ref WHERE cs_id=?1", [id])?;
    c.execute("DELETE FROM cs_object WHERE id=?1", [id])?;
    Ok(())
}

/// Ids of connector-space objects whose reference values point at this DN.
pub fn cs_referrers(c: &Connection, connector_id: i64, dn_norm: &str) -> Result<Vec<i64>> {
    let mut st = c.prepare_cached(
        "SELECT DISTINCT cs_id FROM cs_ref WHERE connector_id=?1 AND target_dn_norm=?2",
    )?;
    let ids = st
        .query_map(params![connector_id, dn_norm], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

fn cs_write_refs(c: &Connection, id: i64, o: &CsObject) -> Result<()> {
    c.prepare_cached("DELETE FROM cs_ref WHERE cs_id=?1")?
        .execute([id])?;
    let mut st = c.prepare_cached(
        "INSERT OR IGNORE INTO cs_ref(cs_id, connector_id, target_dn_norm) VALUES (?1, ?2, ?3)",
    )?;
    for vals in o.attributes.values() {
        for v in vals {
            if let crate::model::Value::Ref(dn) = v
                && let Ok(d) = Dn::parse(dn)
            {
                st.execute(params![id, o.connector_id, d.normalized()])?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Metaverse

/// A metaverse object by id.
pub fn mv_get(c: &Connection, id: i64) -> Result<Option<MvObject>> {
    let mut st =
        c.prepare_cached("SELECT id, object_type, attrs, provenance FROM mv_object WHERE id=?1")?;
    let row = st
        .query_row([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?;
    match row {
        None => Ok(None),
        Some((id, object_type, attrs, prov)) => Ok(Some(MvObject {
            id,
            object_type,
            attributes: from_json(&attrs)?,
            provenance: from_json(&prov)?,
        })),
    }
}

/// Creates a metaverse object and returns its id.
pub fn mv_insert(c: &Connection, object_type: &str) -> Result<i64> {
    c.prepare_cached(
        "INSERT INTO mv_object(object_type, attrs, provenance, created) VALUES (?1, '{}', '{}', ?2)",
    )?
    .execute(params![object_type, now()])?;
    Ok(c.last_insert_rowid())
}

/// Writes a metaverse object's attributes and provenance, maintaining the join and reference indexes.
pub fn mv_update(c: &Connection, o: &MvObject, indexed: &[String]) -> Result<()> {
    c.prepare_cached("UPDATE mv_object SET attrs=?2, provenance=?3, updated=?4 WHERE id=?1")?
        .execute(params![
            o.id,
            to_json(&o.attributes)?,
            to_json(&o.provenance)?,
            now()
        ])?;
    c.prepare_cached("DELETE FROM mv_index WHERE mv_id=?1")?
        .execute([o.id])?;
    let mut ins = c.prepare_cached(
        "INSERT OR IGNORE INTO mv_index(attr, value_norm, mv_id) VALUES (?1, ?2, ?3)",
    )?;
    for a in indexed {
        for v in o.attributes.get(a).map(Vec::as_slice).unwrap_or(&[]) {
            ins.execute(params![a, v.to_text().to_lowercase(), o.id])?;
        }
    }
    c.prepare_cached("DELETE FROM mv_ref WHERE mv_id=?1")?
        .execute([o.id])?;
    let mut r =
        c.prepare_cached("INSERT OR IGNORE INTO mv_ref(mv_id, target_mv_id) VALUES (?1, ?2)")?;
    for vals in o.attributes.values() {
        for v in vals {
            if let crate::model::Value::Ref(t) = v
                && let Ok(t) = t.parse::<i64>()
            {
                r.execute(params![o.id, t])?;
            }
        }
    }
    Ok(())
}

/// Writes a metaverse object whose only changes are the given value adds/removes (per
/// attribute, already applied to `o`), updating the join and reference indexes for those
/// values only.
pub fn mv_update_values(
    c: &Connection,
    o: &MvObject,
    indexed: &[String],
    changed: &BTreeMap<String, ValueDelta>,
) -> Result<()> {
    c.prepare_cached("UPDATE mv_object SET attrs=?2, provenance=?3, updated=?4 WHERE id=?1")?
        .execute(params![
            o.id,
            to_json(&o.attributes)?,
            to_json(&o.provenance)?,
            now()
        ])?;
    // References the object still holds, collected once when some value went.
    let remaining_refs: HashSet<&Value> = if changed.values().any(|d| !d.removed.is_empty()) {
        o.attributes
            .values()
            .flatten()
            .filter(|x| matches!(x, Value::Ref(_)))
            .collect()
    } else {
        HashSet::new()
    };
    for (attr, d) in changed {
        if indexed.iter().any(|a| a == attr) {
            let left: HashSet<String> = if d.removed.is_empty() {
                HashSet::new()
            } else {
                o.attributes
                    .get(attr)
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .map(|x| x.to_text().to_lowercase())
                    .collect()
            };
            let mut del = c.prepare_cached(
                "DELETE FROM mv_index WHERE attr=?1 AND value_norm=?2 AND mv_id=?3",
            )?;
            for v in &d.removed {
                let key = v.to_text().to_lowercase();
                if !left.contains(&key) {
                    del.execute(params![attr, key, o.id])?;
                }
            }
            let mut ins = c.prepare_cached(
                "INSERT OR IGNORE INTO mv_index(attr, value_norm, mv_id) VALUES (?1, ?2, ?3)",
            )?;
            for v in &d.added {
                ins.execute(params![attr, v.to_text().to_lowercase(), o.id])?;
            }
        }
        let mut del = c.prepare_cached("DELETE FROM mv_ref WHERE mv_id=?1 AND target_mv_id=?2")?;
        for v in &d.removed {
            if let Value::Ref(t) = v
                && let Ok(t) = t.parse::<i64>()
                && !remaining_refs.contains(v)
            {
                del.execute(params![o.id, t])?;
            }
        }
        let mut ins =
            c.prepare_cached("INSERT OR IGNORE INTO mv_ref(mv_id, target_mv_id) VALUES (?1, ?2)")?;
        for v in &d.added {
            if let Value::Ref(t) = v
                && let Ok(t) = t.parse::<i64>()
            {
                ins.execute(params![o.id, t])?;
            }
        }
    }
    Ok(())
}

/// Metaverse objects whose indexed attribute equals the value (case-insensitive).
pub fn mv_find(c: &Connection, attr: &str, value: &str) -> Result<Vec<i64>> {
    let mut st = c.prepare_cached("SELECT mv_id FROM mv_index WHERE attr=?1 AND value_norm=?2")?;
    let ids = st
        .query_map(params![attr, value.to_lowercase()], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// Metaverse objects that reference this one.
pub fn mv_referrers(c: &Connection, mv_id: i64) -> Result<Vec<i64>> {
    let mut st = c.prepare_cached("SELECT mv_id FROM mv_ref WHERE target_mv_id=?1")?;
    let ids = st
        .query_map([mv_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// Deletes a metaverse object.
pub fn mv_delete(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM mv_index WHERE mv_id=?1", [id])?;
    c.execute("DELETE FROM mv_ref WHERE mv_id=?1", [id])?;
    c.execute("DELETE FROM mv_object WHERE id=?1", [id])?;
    Ok(())
}

/// All metaverse object ids.
pub fn mv_ids(c: &Connection) -> Result<Vec<i64>> {
    let mut st = c.prepare_cached("SELECT id FROM mv_object ORDER BY id")?;
    let ids = st
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

// ---------------------------------------------------------------------------------------------
// Pending exports

/// Writes (or replaces) the pending export of a connector-space object.
pub fn pending_put(c: &Connection, p: &PendingExport) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO pending_export(cs_id, connector_id, op, dn, new_dn, changes, attempts, last_error, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(cs_id) DO UPDATE SET op=excluded.op, dn=excluded.dn, new_dn=excluded.new_dn,
           changes=excluded.changes, updated=excluded.updated",
    )?
    .execute(params![
        p.cs_id,
        p.connector_id,
        p.op,
        p.dn,
        p.new_dn,
        to_json(&p.changes)?,
        p.attempts,
        p.last_error,
        now()
    ])?;
    Ok(())
}

/// Removes the pending export of a connector-space object.
pub fn pending_clear(c: &Connection, cs_id: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM pending_export WHERE cs_id=?1")?
        .execute([cs_id])?;
    Ok(())
}

/// Records a failed export attempt.
pub fn pending_fail(c: &Connection, cs_id: i64, error: &str) -> Result<()> {
    c.prepare_cached(
        "UPDATE pending_export SET attempts=attempts+1, last_error=?2, updated=?3 WHERE cs_id=?1",
    )?
    .execute(params![cs_id, error, now()])?;
    Ok(())
}

/// Number of pending deletes of a connector.
pub fn pending_delete_count(c: &Connection, connector_id: i64) -> Result<u64> {
    let n: i64 = c.query_row(
        "SELECT COUNT(*) FROM pending_export WHERE connector_id=?1 AND op='delete'",
        [connector_id],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// Pending exports of a connector (all connectors when `None`), in creation order.
pub fn pending_list(c: &Connection, connector_id: Option<i64>) -> Result<Vec<PendingExport>> {
    pending_query(
        c,
        "WHERE (?1 IS NULL OR connector_id=?1) ORDER BY rowid",
        [connector_id],
    )
}

/// The pending export of one connector-space object, if any.
pub fn pending_get(c: &Connection, cs_id: i64) -> Result<Option<PendingExport>> {
    Ok(pending_query(c, "WHERE cs_id=?1", [cs_id])?
        .into_iter()
        .next())
}

/// The pending exports that `tail` (a WHERE clause, optionally ordered) selects.
fn pending_query(
    c: &Connection,
    tail: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<PendingExport>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT cs_id, connector_id, op, dn, new_dn, changes, attempts, last_error FROM pending_export
         {tail}"
    ))?;
    let rows = st.query_map(params, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, Option<String>>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (cs_id, connector_id, op, dn, new_dn, changes, attempts, last_error) = r?;
        out.push(PendingExport {
            cs_id,
            connector_id,
            op,
            dn,
            new_dn,
            changes: from_json(&changes)?,
            attempts,
            last_error,
        });
    }
    Ok(out)
}

/// Names of all connectors by id.
pub fn connector_names(c: &Connection) -> Result<BTreeMap<i64, String>> {
    let mut st = c.prepare_cached("SELECT id, name FROM connector")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut m = BTreeMap::new();
    for r in rows {
        let (k, v) = r?;
        m.insert(k, v);
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Settings kept in the state (admin confirmations, overrides)

/// Reads a state setting.
pub fn setting(c: &Connection, key: &str) -> Result<Option<String>> {
    Ok(
        c.query_row("SELECT value FROM setting WHERE key=?1", [key], |r| {
            r.get(0)
        })
        .optional()?,
    )
}

/// Writes (or with `None` removes) a state setting.
pub fn set_setting(c: &Connection, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => c.execute(
            "INSERT INTO setting(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            params![key, v],
        )?,
        None => c.execute("DELETE FROM setting WHERE key=?1", [key])?,
    };
    Ok(())
}

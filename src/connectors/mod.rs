//! The connector trait and its implementations.
//!
//! A connector is the adapter to one connected directory. The engine drives it through four
//! calls: schema discovery, full import, delta import from a stored watermark, and export of a
//! batch of pending changes with one result per object. Connectors are synchronous from the
//! engine's point of view; network connectors run their own async runtime inside.

use crate::model::{AttributeChange, Attributes, Dn, Object, Schema};
use serde::{Deserialize, Serialize};

pub mod csv;
pub mod graph;
pub mod ldap;
pub mod ldif;

/// Errors a connector reports for a whole call (per-object export failures are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Bad connector settings.
    #[error("connector configuration: {0}")]
    Config(String),
    /// Malformed input data, with its location.
    #[error("{file}:{line}: {message}")]
    Input {
        /// The file (or source) that holds the bad data.
        file: String,
        /// One-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The directory could not be reached or the connection broke.
    #[error("connection to {target} failed: {message}")]
    Connection {
        /// Host, URL or file.
        target: String,
        /// Detail.
        message: String,
    },
    /// Credentials were rejected.
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// The directory asked us to slow down and the retry budget ran out.
    #[error("throttled by the directory (retry after {retry_after_secs} s)")]
    Throttled {
        /// Seconds the server asked to wait.
        retry_after_secs: u64,
    },
    /// The stored watermark/cookie is no longer accepted: a full import is needed.
    #[error("the delta watermark is no longer valid: {0}")]
    WatermarkExpired(String),
    /// The call was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The operation is not supported by this connector.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// Local I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Any other protocol-level failure.
    #[error("{0}")]
    Protocol(String),
}

/// One change seen by an import.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportChange {
    /// The complete current state of an object (its anchor must be set).
    Upsert(Object),
    /// The object with this anchor no longer exists.
    Delete {
        /// Anchor of the deleted object.
        anchor: String,
    },
}

/// Where an import streams what it reads.
pub trait ImportSink {
    /// Accepts one change. An error (for example cancellation) stops the import.
    fn push(&mut self, change: ImportChange) -> Result<(), ConnectorError>;
}

impl ImportSink for Vec<ImportChange> {
    fn push(&mut self, change: ImportChange) -> Result<(), ConnectorError> {
        Vec::push(self, change);
        Ok(())
    }
}

/// Read access to what the connector space already holds, for connectors whose change feeds
/// name objects by DN or carry only changed attributes.
pub trait ConnectorSpaceView {
    /// The object with this anchor.
    fn by_anchor(&self, anchor: &str) -> Option<Object>;
    /// The object with this DN.
    fn by_dn(&self, dn: &Dn) -> Option<Object>;
    /// All objects strictly below this DN (children of a renamed or moved container).
    fn descendants(&self, dn: &Dn) -> Vec<Object>;
}

/// An opaque delta watermark (cookie, deltaLink, USN, file position) kept in the state.
pub type Watermark = Option<String>;

/// What a connector can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Supports delta import from a watermark.
    pub delta_import: bool,
    /// Supports export.
    pub export: bool,
}

/// The operation of one export request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "lowercase", deny_unknown_fields)]
pub enum ExportOperation {
    /// Create the object with these attributes.
    Add {
        /// Attributes of the new object.
        attributes: Attributes,
    },
    /// Change attributes and optionally rename or move the object.
    Update {
        /// Value-level changes.
        changes: Vec<AttributeChange>,
        /// New DN for a rename or move.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_dn: Option<Dn>,
    },
    /// Delete the object.
    Delete,
}

/// One pending export handed to a connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRequest {
    /// Identifier the result refers to.
    pub id: i64,
    /// Object type.
    pub object_type: String,
    /// Anchor, when the object exists in the target already.
    pub anchor: Option<String>,
    /// Current DN (for an add: the DN to create).
    pub dn: Dn,
    /// What to do.
    #[serde(flatten)]
    pub operation: ExportOperation,
}

/// Classes of per-object export failures (after Entra Connect's taxonomy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportErrorKind {
    /// Another object already holds a value that must be unique.
    AttributeValueMustBeUnique,
    /// The target refused the data (missing or invalid attribute).
    IdentityDataValidationFailed,
    /// The object to change or delete does not exist.
    ObjectNotFound,
    /// The object to create exists already.
    ObjectAlreadyExists,
    /// The object type cannot be written to this target.
    NotSupported,
    /// Permission denied.
    AccessDenied,
    /// A transient failure (throttling, timeout, unavailable): retry later.
    Transient,
    /// Anything else.
    Other,
}

/// The outcome of one export request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ExportOutcome {
    /// Written. For an add, the anchor the target assigned.
    Success {
        /// Anchor of the object in the target.
        anchor: Option<String>,
    },
    /// Not written.
    Failed {
        /// Failure class.
        kind: ExportErrorKind,
        /// Detail for the admin.
        message: String,
    },
}

/// The result for one export request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportResult {
    /// The request this answers.
    pub id: i64,
    /// What happened.
    #[serde(flatten)]
    pub outcome: ExportOutcome,
}

/// An adapter to one connected directory.
pub trait Connector: Send {
    /// What this connector supports.
    fn capabilities(&self) -> Capabilities;

    /// Discovers (or reports the configured) schema.
    fn schema(&mut self) -> Result<Schema, ConnectorError>;

    /// Reads every object in scope and returns the watermark for a later delta import.
    fn full_import(&mut self, sink: &mut dyn ImportSink) -> Result<Watermark, ConnectorError>;

    /// Reads the changes since `watermark` and returns the new watermark.
    /// Returns [`ConnectorError::WatermarkExpired`] when a full import is needed.
    fn delta_import(
        &mut self,
        watermark: &str,
        cs: &dyn ConnectorSpaceView,
        sink: &mut dyn ImportSink,
    ) -> Result<Watermark, ConnectorError>;

    /// How many requests one `export` call should carry. File connectors rewrite their whole
    /// target per call and want everything at once; network connectors keep batches small.
    fn export_batch_size(&self) -> usize {
        500
    }

    /// Writes a batch of changes; one result per request, in any order.
    fn export(&mut self, batch: &[ExportRequest]) -> Result<Vec<ExportResult>, ConnectorError>;
}

/// Builds a connector of the given type from its JSON settings; relative paths resolve against `base_dir`.
pub fn build(
    kind: &str,
    settings: serde_json::Value,
    base_dir: &std::path::Path,
) -> Result<Box<dyn Connector>, ConnectorError> {
    match kind {
        "ldif" => Ok(Box::new(ldif::LdifConnector::new(
            parse(settings)?,
            base_dir,
        )?)),
        "csv" => Ok(Box::new(csv::CsvConnector::new(
            parse(settings)?,
            base_dir,
        )?)),
        "ldap" => {
            let mut s: ldap::LdapSettings = parse(settings)?;
            resolve_connection_paths(&mut s.connection, base_dir);
            Ok(Box::new(ldap::LdapConnector::new(s)?))
        }
        "ad" => Ok(Box::new(build_ad(settings, base_dir)?)),
        "graph" => Ok(Box::new(graph::GraphConnector::new(
            parse(settings)?,
            base_dir,
        )?)),
        other => Err(ConnectorError::Config(format!(
            "unknown connector type '{other}' (known: ldif, csv, ldap, ad, graph)"
        ))),
    }
}

/// Builds an Active Directory connector from its JSON settings; relative CA and password
/// file paths resolve against `base_dir`.
pub fn build_ad(
    settings: serde_json::Value,
    base_dir: &std::path::Path,
) -> Result<ldap::AdConnector, ConnectorError> {
    let mut s: ldap::AdSettings = parse(settings)?;
    resolve_connection_paths(&mut s.connection, base_dir);
    ldap::AdConnector::new(s)
}

/// Deserializes connector settings; a mismatch is a configuration error.
fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ConnectorError> {
    serde_json::from_value(v).map_err(|e| ConnectorError::Config(e.to_string()))
}

/// Relative CA and password file paths in LDAP settings resolve against the configuration folder.
fn resolve_connection_paths(c: &mut ldap::ConnectionSettings, base_dir: &std::path::Path) {
    for p in [&mut c.ca_file, &mut c.bind_password_file]
        .into_iter()
        .flatten()
    {
        if p.is_relative() {
            *p = base_dir.join(&*p);
        }
    }
}

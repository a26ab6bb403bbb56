//! Settings of the generic LDAP and Active Directory connectors (TOML / JSON, unknown keys rejected).
//!
//! Secrets are never written inline: the bind password comes from an environment variable
//! (`bind_password_env`) or a file (`bind_password_file`), or is handed over by the caller.

use crate::connectors::ConnectorError;
use crate::model::AttrType;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How to reach and authenticate to the directory server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    /// Server URL: `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    pub starttls: bool,
    /// DN (or AD user principal name) for the simple bind; anonymous when absent.
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// Name of the environment variable that holds the bind password.
    #[serde(default)]
    pub bind_password_env: Option<String>,
    /// Path of a file whose content (trailing newline removed) is the bind password.
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// PEM file with the certificate authorities to trust for TLS (instead of the system store).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Name to verify the server certificate against, when it differs from the host in `url`
    /// (connecting to an address while the certificate names the DC's host name).
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// Verify the server certificate (on by default; turning it off is for lab use only).
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    /// Seconds allowed to establish the connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds allowed for one LDAP operation (one search page, one modify).
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout_secs: u64,
    /// Connection attempts before giving up (at least one).
    #[serde(default = "default_attempts")]
    pub connect_attempts: u32,
    /// First wait between attempts in milliseconds; doubled after every failure.
    #[serde(default = "default_backoff")]
    pub retry_backoff_ms: u64,
}

impl ConnectionSettings {
    /// Settings for `url` with every other option at its default.
    pub fn new(url: &str) -> ConnectionSettings {
        ConnectionSettings {
            url: url.to_string(),
            starttls: false,
            bind_dn: None,
            bind_password_env: None,
            bind_password_file: None,
            ca_file: None,
            tls_server_name: None,
            tls_verify: true,
            connect_timeout_secs: default_connect_timeout(),
            operation_timeout_secs: default_operation_timeout(),
            connect_attempts: default_attempts(),
            retry_backoff_ms: default_backoff(),
        }
    }

    /// Reads the bind password from its configured source. Errors never contain the secret.
    pub fn resolve_password(&self) -> Result<Option<String>, ConnectorError> {
        if let Some(var) = &self.bind_password_env {
            return std::env::var(var).map(Some).map_err(|_| {
                ConnectorError::Config(format!(
                    "bind_password_env: environment variable '{var}' is not set"
                ))
            });
        }
        if let Some(path) = &self.bind_password_file {
            let text = std::fs::read_to_string(path).map_err(|e| ConnectorError::Io {
                path: path.display().to_string(),
                source: e,
            })?;
            return Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()));
        }
        Ok(None)
    }
}

/// One naming context (partition) to read, with optional container filters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSettings {
    /// Base DN of the partition.
    pub base: String,
    /// Only objects inside these containers (DNs) are in scope; empty means the whole partition.
    #[serde(default)]
    pub include: Vec<String>,
    /// Objects inside these containers are out of scope (wins over `include`).
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// How the generic LDAP connector reads changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeltaMethod {
    /// RFC 4533 content synchronization (refreshOnly), the cookie is the watermark.
    #[default]
    Syncrepl,
    /// `modifyTimestamp >= last` polling; deletes are found by the scheduled full import.
    ModifyTimestamp,
}

/// Settings of the generic LDAP connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// Server and credentials.
    pub connection: ConnectionSettings,
    /// Partitions to import.
    pub partitions: Vec<PartitionSettings>,
    /// Object type name -> LDAP object class (for example `user = "inetOrgPerson"`).
    pub object_types: BTreeMap<String, String>,
    /// Attributes to read (the inclusion list); empty means all user attributes.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Attributes whose values are kept as raw bytes.
    #[serde(default = "default_binary_attributes")]
    pub binary_attributes: Vec<String>,
    /// Attribute types other than string (`member = "reference"`, `uidNumber = "integer"`).
    #[serde(default = "default_attribute_types")]
    pub attribute_types: BTreeMap<String, AttrType>,
    /// Attribute holding the immutable anchor.
    #[serde(default = "default_anchor")]
    pub anchor_attribute: String,
    /// Entries per search page.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Delta import method.
    #[serde(default)]
    pub delta: DeltaMethod,
}

/// How the Active Directory connector reads changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdDeltaMethod {
    /// The DirSync control (needs "Replicating Directory Changes" on the partition root).
    #[default]
    Dirsync,
    /// `uSNChanged` polling on one DC, for accounts without replication rights; deletes are
    /// read from the tombstones when the account may list them.
    UsnChanged,
}

/// Settings of the Active Directory connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdSettings {
    /// Domain controller and credentials.
    pub connection: ConnectionSettings,
    /// Partitions to import; empty means the default naming context from the rootDSE.
    #[serde(default)]
    pub partitions: Vec<PartitionSettings>,
    /// Object types to import (`user`, `group`, `contact`, `computer`, `organizationalUnit`).
    #[serde(default = "default_ad_types")]
    pub object_types: Vec<String>,
    /// Attributes to read; empty means all attributes.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Entries per search page.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Delta import method.
    #[serde(default)]
    pub delta: AdDeltaMethod,
    /// Use `mS-DS-ConsistencyGuid` (when set) instead of `objectGUID` for the `sourceAnchor` attribute.
    #[serde(default = "default_true")]
    pub use_consistency_guid: bool,
    /// Value written to `adminDescription` on the objects dirsync creates in AD (writeback),
    /// so that they are recognised as written back.
    #[serde(default = "default_writeback_tag")]
    pub writeback_tag: String,
    /// Import objects whose `adminDescription` starts with `writeback_tag`. Off by default:
    /// what dirsync wrote back is never taken as AD-sourced.
    #[serde(default)]
    pub import_writeback_objects: bool,
}

fn default_writeback_tag() -> String {
    "DirSyncWriteback".to_string()
}
fn default_true() -> bool {
    true
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_operation_timeout() -> u64 {
    120
}
fn default_attempts() -> u32 {
    3
}
fn default_backoff() -> u64 {
    500
}
fn default_page_size() -> u32 {
    500
}
fn default_anchor() -> String {
    "entryUUID".to_string()
}
fn default_binary_attributes() -> Vec<String> {
    [
        "jpegPhoto",
        "userCertificate",
        "userCertificate;binary",
        "audio",
        "photo",
        "userPKCS12",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn default_attribute_types() -> BTreeMap<String, AttrType> {
    let mut m = BTreeMap::new();
    for r in [
        "member",
        "uniqueMember",
        "manager",
        "owner",
        "seeAlso",
        "secretary",
    ] {
        m.insert(r.to_string(), AttrType::Reference);
    }
    for i in ["uidNumber", "gidNumber"] {
        m.insert(i.to_string(), AttrType::Integer);
    }
    m
}
fn default_ad_types() -> Vec<String> {
    ["user", "group", "contact", "computer"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_and_defaults_apply() {
        let ok: LdapSettings = toml::from_str(
            r#"
            partitions = [{ base = "dc=example,dc=org" }]
            object_types = { user = "inetOrgPerson" }
            [connection]
            url = "ldap://127.0.0.1:389"
            bind_password_env = "X"
            "#,
        )
        .unwrap();
        assert_eq!(ok.anchor_attribute, "entryUUID");
        assert!(ok.connection.tls_verify);
        assert_eq!(ok.page_size, 500);
        let bad = toml::from_str::<LdapSettings>(
            r#"
            partitions = []
            object_types = {}
            [connection]
            url = "ldap://x"
            bind_password = "inline"
            "#,
        );
        assert!(bad.is_err());
    }
}

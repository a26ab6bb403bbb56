//! Settings of the Microsoft Graph connector (the `[connectors.settings]` table of a connector
//! with `type = "graph"`).
//!
//! Secrets are never written inline: the client secret comes from an environment variable or a
//! file, a certificate private key from a PEM file.

use serde::Deserialize;
use std::path::PathBuf;

/// The public Entra ID authority (worldwide cloud).
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The public Microsoft Graph v1.0 endpoint.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

/// Settings of the Graph connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSettings {
    /// Directory (tenant) id or verified domain.
    pub tenant_id: String,
    /// Application (client) id of the app registration.
    pub client_id: String,
    /// Name of an environment variable that holds the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// File that holds the client secret (first line; relative to the configuration folder).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Certificate credentials (signed JWT client assertion) instead of a secret.
    #[serde(default)]
    pub certificate: Option<CertificateSettings>,
    /// Authority root, e.g. `https://login.microsoftonline.us` for a national cloud or the
    /// emulator's base URL. The token endpoint is `{authority}/{tenant_id}/oauth2/v2.0/token`.
    #[serde(default = "default_authority")]
    pub authority: String,
    /// Graph root including the version, e.g. `https://graph.microsoft.com/v1.0`.
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// Token scope (default `<graph host>/.default`).
    #[serde(default)]
    pub scope: Option<String>,
    /// Directory extension that holds the sync anchor on every managed object: either a short
    /// name (expanded to `extension_<appIdNoDashes>_<name>` and registered on the app when
    /// missing) or a full `extension_...` name. Imported and exported under this setting's
    /// value as the attribute name.
    #[serde(default = "default_anchor_attribute")]
    pub anchor_attribute: String,
    /// Directory extension (short or full name) that keeps a hash of the DN the engine uses for
    /// each managed object, so references by that DN resolve in later sessions (Graph objects
    /// have no DN). Registered on the application with the anchor extension.
    #[serde(default = "default_dn_attribute")]
    pub dn_attribute: String,
    /// Also write the anchor to `onPremisesImmutableId` when creating users (when the value is
    /// acceptable to Graph: no `$` or `_`).
    #[serde(default = "yes")]
    pub set_immutable_id: bool,
    /// Soft match when no object holds the anchor: `off` (default), `upn` or `mail`.
    #[serde(default)]
    pub soft_match: SoftMatch,
    /// Page size for list and delta requests (`$top`, at most 999).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Object types to import.
    #[serde(default = "default_object_types")]
    pub object_types: Vec<String>,
    /// Extra user properties to `$select` on import.
    #[serde(default)]
    pub extra_user_properties: Vec<String>,
    /// Extra group properties to `$select` on import.
    #[serde(default)]
    pub extra_group_properties: Vec<String>,
    /// Client-side write pacer: writes allowed per window (documented quota: 3,000).
    #[serde(default = "default_quota_writes")]
    pub write_quota: u32,
    /// Client-side write pacer: window length in milliseconds (documented: 150,000).
    #[serde(default = "default_quota_window_ms")]
    pub write_quota_window_ms: u64,
    /// Requests per `$batch` (1..=20).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// How many `$batch` calls run at the same time.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Export requests handed to one `export` call.
    #[serde(default = "default_export_batch")]
    pub export_batch_size: usize,
    /// Per-request timeout in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries for 5xx answers, timeouts and dropped connections.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// First backoff delay in milliseconds (doubles per retry, with jitter).
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Longest single wait (backoff or Retry-After) in milliseconds.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// An export step whose first call creates at least this many objects reads every anchor
    /// of the tenant once (paged) instead of looking anchors up 15 at a time.
    #[serde(default = "default_snapshot_threshold")]
    pub lookup_snapshot_threshold: usize,
    /// How many 429 answers one request may receive before the export reports it as transient.
    #[serde(default = "default_throttle_retries")]
    pub max_throttle_retries: u32,
}

/// Certificate credentials for a signed JWT client assertion (RS256).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSettings {
    /// PEM file with the RSA private key (PKCS#8 or PKCS#1).
    pub key_file: PathBuf,
    /// PEM file with the certificate (its SHA-1 and SHA-256 thumbprints go in the header).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// SHA-1 thumbprint in hex, as the portal shows it (when `cert_file` is not given).
    #[serde(default)]
    pub thumbprint: Option<String>,
}

/// Soft-match policy for objects without the anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SoftMatch {
    /// Never match on anything but the anchor.
    #[default]
    Off,
    /// Match users on `userPrincipalName`.
    Upn,
    /// Match on the primary SMTP address (`mail`).
    Mail,
}

fn default_authority() -> String {
    DEFAULT_AUTHORITY.to_string()
}
fn default_graph_url() -> String {
    DEFAULT_GRAPH_URL.to_string()
}
fn default_anchor_attribute() -> String {
    "dirsyncAnchor".to_string()
}
fn default_dn_attribute() -> String {
    "dirsyncDn".to_string()
}
fn yes() -> bool {
    true
}
fn default_page_size() -> u32 {
    999
}
fn default_object_types() -> Vec<String> {
    ["user", "group", "contact", "device"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn default_quota_writes() -> u32 {
    3000
}
fn default_quota_window_ms() -> u64 {
    150_000
}
fn default_batch() -> usize {
    20
}
fn default_concurrency() -> usize {
    4
}
fn default_export_batch() -> usize {
    1000
}
fn default_timeout_ms() -> u64 {
    60_000
}
fn default_retries() -> u32 {
    6
}
fn default_backoff_ms() -> u64 {
    500
}
fn default_max_wait_ms() -> u64 {
    120_000
}
fn default_snapshot_threshold() -> usize {
    200
}
fn default_throttle_retries() -> u32 {
    50
}

impl GraphSettings {
    /// Checks value ranges; returns a readable message for the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.tenant_id.trim().is_empty() {
            return Err("tenant_id is empty".into());
        }
        if self.client_id.trim().is_empty() {
            return Err("client_id is empty".into());
        }
        let creds = [
            self.client_secret_env.is_some(),
            self.client_secret_file.is_some(),
            self.certificate.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if creds != 1 {
            return Err(
                "give exactly one credential: client_secret_env, client_secret_file or certificate"
                    .into(),
            );
        }
        if let Some(c) = &self.certificate
            && c.cert_file.is_none()
            && c.thumbprint.is_none()
        {
            return Err("certificate needs cert_file or thumbprint".into());
        }
        if !(1..=999).contains(&self.page_size) {
            return Err("page_size must be 1..=999".into());
        }
        if !(1..=20).contains(&self.batch_size) {
            return Err("batch_size must be 1..=20 (the $batch limit)".into());
        }
        if self.concurrency == 0 || self.concurrency > 16 {
            return Err("concurrency must be 1..=16".into());
        }
        if self.write_quota == 0 || self.write_quota_window_ms == 0 {
            return Err("write_quota and write_quota_window_ms must be positive".into());
        }
        if self.anchor_attribute.trim().is_empty() {
            return Err("anchor_attribute is empty".into());
        }
        for t in &self.object_types {
            if !matches!(t.as_str(), "user" | "group" | "contact" | "device") {
                return Err(format!(
                    "unknown object type '{t}' (known: user, group, contact, device)"
                ));
            }
        }
        Ok(())
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.trim_end_matches('/'),
            self.tenant_id
        )
    }

    /// The token scope.
    pub fn scope(&self) -> String {
        if let Some(s) = &self.scope {
            return s.clone();
        }
        // `https://graph.microsoft.com/v1.0` -> `https://graph.microsoft.com/.default`.
        let g = self.graph_url.trim_end_matches('/');
        let root = match g.rfind('/') {
            Some(i) if g[..i].contains("://") && g[i + 1..].starts_with(['v', 'b']) => &g[..i],
            _ => g,
        };
        let host_is_graph = root.contains("graph.microsoft") || root.contains("microsoftgraph");
        if host_is_graph {
            format!("{root}/.default")
        } else {
            "https://graph.microsoft.com/.default".to_string()
        }
    }

    /// The full name of the anchor extension for this app.
    pub fn anchor_extension(&self) -> String {
        if self.anchor_attribute.starts_with("extension_") {
            self.anchor_attribute.clone()
        } else {
            format!(
                "extension_{}_{}",
                self.client_id.replace('-', ""),
                self.anchor_attribute
            )
        }
    }

    /// The full name of the DN extension.
    pub fn dn_extension(&self) -> String {
        if self.dn_attribute.starts_with("extension_") {
            self.dn_attribute.clone()
        } else {
            format!(
                "extension_{}_{}",
                self.client_id.replace('-', ""),
                self.dn_attribute
            )
        }
    }

    /// The short name of the DN extension.
    pub fn dn_short_name(&self) -> String {
        let full = self.dn_extension();
        let prefix = format!("extension_{}_", self.client_id.replace('-', ""));
        full.strip_prefix(&prefix).unwrap_or(&full).to_string()
    }

    /// The short extension name (the part registered on the application).
    pub fn anchor_short_name(&self) -> String {
        let full = self.anchor_extension();
        let prefix = format!("extension_{}_", self.client_id.replace('-', ""));
        full.strip_prefix(&prefix).unwrap_or(&full).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({"tenant_id": "t", "client_id": "11111111-2222-4333-8444-555555555555",
            "client_secret_env": "X"})
    }

    #[test]
    fn defaults_and_names() {
        let s: GraphSettings = serde_json::from_value(base()).unwrap();
        s.validate().unwrap();
        assert_eq!(
            s.anchor_extension(),
            "extension_11111111222243338444555555555555_dirsyncAnchor"
        );
        assert_eq!(s.anchor_short_name(), "dirsyncAnchor");
        assert_eq!(s.scope(), "https://graph.microsoft.com/.default");
        assert_eq!(
            s.token_url(),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
    }

    #[test]
    fn rejects_unknown_fields_and_two_credentials() {
        let mut v = base();
        v["client_secret"] = "inline".into();
        assert!(serde_json::from_value::<GraphSettings>(v).is_err());
        let mut v = base();
        v["client_secret_file"] = "s.txt".into();
        let s: GraphSettings = serde_json::from_value(v).unwrap();
        assert!(s.validate().is_err());
    }
}

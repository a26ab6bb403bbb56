//! Microsoft Graph tenant emulator: an offline Entra ID tenant (as Azurite is for Azure
//! Storage), built from the documented Microsoft Graph v1.0 behaviour.
//!
//! It serves the OAuth2 v2 token endpoint at `{base}/{tenant}/oauth2/v2.0/token` and Graph at
//! `{base}/v1.0`. Covered surface:
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: `grant_type=client_credentials`, `client_id`,
//!   `client_secret` or `client_assertion` (JWT, `client_assertion_type`
//!   `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`), scope
//!   `https://graph.microsoft.com/.default`; AADSTS error bodies (`invalid_client`
//!   AADSTS7000215 for a wrong secret, AADSTS700016 unknown app, AADSTS90002 unknown tenant,
//!   AADSTS1002012 bad scope, AADSTS700027 bad assertion signature). Client assertions are
//!   checked for structure, `aud`, `iss`/`sub` and lifetime, and when the app has a registered
//!   certificate (PEM) also for the RS256/PS256 signature and the `x5t`/`x5t#S256` thumbprint.
//!   Apps without a certificate accept any well-formed assertion (rehearsal convenience).
//! - Users: `GET/POST /users`, `GET/PATCH/DELETE /users/{id | userPrincipalName}`,
//!   `GET /users/{id}/memberOf`, `GET /users/$count`, `GET /users/delta`,
//!   `GET /users/{id}/manager`, `PUT/DELETE /users/{id}/manager/$ref`,
//!   `GET /users/{id}/directReports`, `$expand=manager`; `manager@delta` in users delta when
//!   `$select` names `manager`.
//! - Groups: `GET/POST /groups`, `GET/PATCH/DELETE /groups/{id}`, `GET /groups/{id}/members`,
//!   `POST /groups/{id}/members/$ref`, `DELETE /groups/{id}/members/{memberId}/$ref`,
//!   `members@odata.bind` (at most 20) on POST and PATCH, `GET /groups/delta` with
//!   `members@delta`.
//! - `GET /contacts`, `/contacts/{id}`, `/devices`, `/devices/{id}` (read-only; seeded through
//!   the handle), `GET /directoryObjects/{id}`.
//! - `GET /directory/deletedItems/microsoft.graph.user` (and `.group`),
//!   `GET/DELETE /directory/deletedItems/{id}`, `POST /directory/deletedItems/{id}/restore`.
//! - `GET /applications`, `/applications/{id}`, `/applications(appId='...')`,
//!   `GET/POST /applications/{id}/extensionProperties`,
//!   `DELETE /applications/{id}/extensionProperties/{extId}`; `extension_<appId>_<name>`
//!   properties on users and groups.
//! - `POST /$batch`: at most 20 requests, `dependsOn` (424 on failed dependency), per-item
//!   status, headers and body, per-item throttling (429 + Retry-After).
//! - Query options: `$select` (`id` always), `$filter` (`eq`, `ne`, `in`, `startswith`,
//!   `any(x:x eq ...)`, `and`, `or`), `$top` (1..999, default 100), `@odata.nextLink` with
//!   `$skiptoken`, `$count=true` (`@odata.count`), delta `$deltatoken` and
//!   `$deltatoken=latest`; `Prefer: odata.maxpagesize=N` (answered with
//!   `Preference-Applied`).
//! - Deleted items are purged (reported as hard deletes) after `deleted_retention`
//!   (30 days by default).
//! - Errors: `{"error":{"code","message","innerError":{"date","request-id",
//!   "client-request-id"}}}`; `Request_ResourceNotFound`, `Request_BadRequest` (also the
//!   uniqueness conflicts "Another object with the same value for property ... already
//!   exists."), `Request_UnsupportedQuery`, `InvalidAuthenticationToken` (401),
//!   `Authorization_RequestDenied` (403), `syncStateNotFound` (400), `TooManyRequests` (429
//!   with `Retry-After`), `serviceNotAvailable` (503, fault injection).
//! - Throttling: a write token bucket per application (default: the documented 3,000 writes
//!   per 150 s), `x-ms-throttle-limit-percentage` from 0.8 of the quota, `Retry-After` in
//!   (possibly fractional) seconds plus `retry-after-ms`.
//!
//! Everything is in memory and optionally persisted to a JSON state file.

mod odata;
mod server;
mod tenant;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use odata::{Filter, GraphError, Literal, QueryOptions};
pub use server::{EmulatorStats, MAX_BATCH};
pub use tenant::{
    Application, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, DirObject,
    ExtensionProperty, MAX_BIND_MEMBERS, MemberChange, ObjectKind, Tenant, Tombstone,
};

/// Errors of the emulator itself (not Graph answers).
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Binding or serving the socket failed.
    #[error("emulator I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The state file could not be read or written.
    #[error("emulator state file {path}: {message}")]
    State {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The configuration is invalid.
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    /// A seeding call was refused by the tenant rules.
    #[error("emulator rejected the object: {0}")]
    Rejected(String),
}

/// An application registration that may request tokens.
#[derive(Debug, Clone)]
pub struct AppRegistration {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret (None: only client assertions are accepted).
    pub client_secret: Option<String>,
    /// Certificate (PEM) for client assertions: when set, assertion signatures (RS256 or
    /// PS256) and thumbprints are verified against it; when unset, any well-formed assertion
    /// is accepted.
    pub certificate_pem: Option<String>,
    /// Display name.
    pub display_name: String,
    /// When true the app only has read permissions: writes answer 403
    /// `Authorization_RequestDenied`.
    pub read_only: bool,
}

impl AppRegistration {
    /// An app with a client secret and read-write permissions.
    pub fn with_secret(client_id: &str, secret: &str) -> Self {
        Self {
            client_id: client_id.to_string(),
            client_secret: Some(secret.to_string()),
            certificate_pem: None,
            display_name: "dirsync".to_string(),
            read_only: false,
        }
    }
}

/// Write throttling: a token bucket per application (and tenant).
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleConfig {
    /// Whether throttling is applied.
    pub enabled: bool,
    /// Writes allowed per window (documented: 3,000).
    pub writes_per_window: u32,
    /// Window length (documented: 150 s; scale it down for tests).
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            writes_per_window: 3000,
            window: Duration::from_secs(150),
        }
    }
}

/// Fault injection applied to Graph requests (not to the token endpoint).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// Added latency per request.
    pub latency: Duration,
    /// Every Nth Graph request answers 503.
    pub fail_every_nth: Option<u64>,
    /// Probability (0..1) that a request answers 503.
    pub fail_probability: f64,
    /// Every Nth Graph request has its connection dropped without an answer.
    pub drop_every_nth: Option<u64>,
    /// Probability (0..1) that a connection is dropped.
    pub drop_probability: f64,
}

/// Emulator configuration.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Listen address (default `127.0.0.1:0`, a free port).
    pub bind: SocketAddr,
    /// Tenant id (GUID).
    pub tenant_id: String,
    /// Verified domains; empty accepts any UPN domain.
    pub domains: Vec<String>,
    /// Federated domains (also accepted as UPN domains): creating a user with a UPN in one of
    /// them requires `onPremisesImmutableId`, as documented for Graph.
    pub federated_domains: Vec<String>,
    /// Registered applications.
    pub apps: Vec<AppRegistration>,
    /// Access token lifetime (Entra: about an hour).
    pub token_lifetime: Duration,
    /// Delta token lifetime (documented: 7 days for identity resources).
    pub delta_token_lifetime: Duration,
    /// How long soft-deleted objects stay restorable (documented: 30 days).
    pub deleted_retention: Duration,
    /// Write throttling.
    pub throttle: ThrottleConfig,
    /// Fault injection.
    pub faults: FaultConfig,
    /// State file (JSON), loaded at start and saved on change and at shutdown.
    pub state_file: Option<PathBuf>,
    /// How often pending changes are flushed to the state file.
    pub persist_interval: Duration,
    /// When false, Graph requests need no bearer token (rehearsal convenience).
    pub require_auth: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tenant_id: DEFAULT_TENANT_ID.to_string(),
            domains: Vec::new(),
            federated_domains: Vec::new(),
            apps: vec![AppRegistration::with_secret(
                DEFAULT_CLIENT_ID,
                DEFAULT_CLIENT_SECRET,
            )],
            token_lifetime: Duration::from_secs(3599),
            delta_token_lifetime: Duration::from_secs(7 * 24 * 3600),
            deleted_retention: Duration::from_secs(30 * 24 * 3600),
            throttle: ThrottleConfig::default(),
            faults: FaultConfig::default(),
            state_file: None,
            persist_interval: Duration::from_millis(500),
            require_auth: true,
        }
    }
}

impl EmulatorConfig {
    /// The default configuration listening on `127.0.0.1:port` (0 = a free port).
    pub fn on_port(port: u16) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], port)),
            ..Self::default()
        }
    }

    /// Sets the state file (loaded at start, saved on change and at shutdown).
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }
}

/// Entry point of the emulator.
pub struct Emulator;

impl Emulator {
    /// Starts the emulator on the current tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        server::start(config).await
    }
}

/// Starts the emulator on a fresh runtime and serves until Ctrl+C (for the CLI).
pub fn run_blocking(config: EmulatorConfig) -> Result<(), EmulatorError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let handle = Emulator::start(config).await?;
        tracing::info!(base_url = %handle.base_url(), tenant = %handle.tenant_id(), "graph emulator listening");
        println!("Graph emulator listening on {}", handle.base_url());
        println!("  Graph:  {}", handle.graph_url());
        println!("  Token:  {}", handle.token_url());
        for app in &handle.shared.config_apps() {
            println!("  App:    client_id={app}");
        }
        let _ = tokio::signal::ctrl_c().await;
        handle.shutdown().await
    })
}

/// A running emulator. Dropping it stops the server (without a final save; call
/// [`EmulatorHandle::shutdown`] for that).
pub struct EmulatorHandle {
    base_url: String,
    tenant_id: String,
    shared: Arc<server::Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl EmulatorHandle {
    /// Base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    /// The socket address the emulator listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.base_url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
    }
    /// Graph root, `{base}/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }
    /// Token endpoint, `{base}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.base_url, self.tenant_id)
    }
    /// Authority, `{base}/{tenant}`.
    pub fn authority(&self) -> String {
        format!("{}/{}", self.base_url, self.tenant_id)
    }
    /// Tenant id.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
    /// A snapshot of the tenant state.
    pub fn tenant(&self) -> Tenant {
        self.shared.with_tenant(|t| t.clone())
    }
    /// Seeds an object directly (read-only properties allowed, uniqueness enforced).
    pub fn seed(&self, kind: ObjectKind, body: serde_json::Value) -> Result<String, EmulatorError> {
        self.shared
            .with_tenant_mut(|t| t.seed(kind, &body))
            .map_err(|e| EmulatorError::Rejected(e.message))
    }
    /// Updates an object directly (read-only properties allowed, as Exchange Online sets them).
    pub fn seed_update(
        &self,
        kind: ObjectKind,
        id: &str,
        body: serde_json::Value,
    ) -> Result<(), EmulatorError> {
        self.shared
            .with_tenant_mut(|t| t.seed_update(kind, id, &body))
            .map_err(|e| EmulatorError::Rejected(e.message))
    }
    /// Adds a member to a group directly.
    pub fn seed_member(&self, group_id: &str, member_id: &str) -> Result<(), EmulatorError> {
        self.shared
            .with_tenant_mut(|t| t.add_member(group_id, member_id))
            .map_err(|e| EmulatorError::Rejected(e.message))
    }
    /// Object id of the application registration of a client id.
    pub fn application_object_id(&self, client_id: &str) -> Option<String> {
        self.shared.with_tenant(|t| {
            t.applications
                .values()
                .find(|a| a.app_id == client_id)
                .map(|a| a.id.clone())
        })
    }
    /// Registers a directory extension directly; returns its full name
    /// (`extension_<appIdNoDashes>_<name>`).
    pub fn seed_extension(
        &self,
        client_id: &str,
        name: &str,
        targets: &[&str],
    ) -> Result<String, EmulatorError> {
        let app = self
            .application_object_id(client_id)
            .ok_or_else(|| EmulatorError::Rejected(format!("unknown app {client_id}")))?;
        let body =
            serde_json::json!({"name": name, "dataType": "String", "targetObjects": targets});
        let v = self
            .shared
            .with_tenant_mut(|t| t.add_extension(&app, &body))
            .map_err(|e| EmulatorError::Rejected(e.message))?;
        Ok(v["name"].as_str().unwrap_or_default().to_string())
    }
    /// Replaces the fault injection settings.
    pub fn set_faults(&self, faults: FaultConfig) {
        self.shared.set_faults(faults);
    }
    /// Replaces the throttling settings (resets the buckets).
    pub fn set_throttle(&self, throttle: ThrottleConfig) {
        self.shared.set_throttle(throttle);
    }
    /// Invalidates every outstanding delta token (next use answers 400 syncStateNotFound).
    pub fn expire_delta_tokens(&self) {
        self.shared.with_tenant_mut(|t| {
            t.delta_epoch += 1;
        });
    }
    /// Expires every access token issued so far (next use answers 401).
    pub fn expire_access_tokens(&self) {
        self.shared.expire_tokens();
    }
    /// Request counters.
    pub fn stats(&self) -> EmulatorStats {
        self.shared.stats()
    }
    /// Writes the state file now (no-op without a state file).
    pub fn save(&self) -> Result<(), EmulatorError> {
        self.shared.save()
    }
    /// Stops the server and saves the state file.
    pub async fn shutdown(mut self) -> Result<(), EmulatorError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.shared.save()
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

//! HTTP side of the emulator: axum server, token endpoint, authentication, throttling,
//! fault injection, Graph request dispatch and `$batch`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::odata::{GraphError, QueryOptions, parse_query_pairs, percent_decode};
use super::tenant::{Application, ObjectKind, Tenant, id_from_reference};
use super::{EmulatorConfig, EmulatorError, EmulatorHandle, FaultConfig, ThrottleConfig};

/// Counters of a running emulator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmulatorStats {
    /// Graph requests received (a `$batch` counts once, plus once per item).
    pub requests: u64,
    /// Write requests accepted by the throttle.
    pub writes: u64,
    /// 429 answers (top-level and batch items).
    pub throttled: u64,
    /// 503 answers from fault injection.
    pub faults: u64,
    /// Connections dropped by fault injection.
    pub dropped: u64,
    /// Access tokens issued.
    pub tokens_issued: u64,
}

#[derive(Debug, Clone)]
struct TokenInfo {
    client_id: String,
    expires: Instant,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

struct ThrottleState {
    cfg: ThrottleConfig,
    buckets: HashMap<String, Bucket>,
}

/// State shared by the handlers and the handle.
pub(crate) struct Shared {
    tenant: Mutex<Tenant>,
    config: EmulatorConfig,
    base_url: String,
    faults: Mutex<FaultConfig>,
    throttle: Mutex<ThrottleState>,
    tokens: Mutex<HashMap<String, TokenInfo>>,
    dirty: AtomicBool,
    save_lock: Mutex<()>,
    counter: AtomicU64,
    requests: AtomicU64,
    writes: AtomicU64,
    throttled: AtomicU64,
    faults_count: AtomicU64,
    dropped: AtomicU64,
    tokens_issued: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Shared {
    pub(crate) fn with_tenant<R>(&self, f: impl FnOnce(&Tenant) -> R) -> R {
        f(&lock(&self.tenant))
    }
    pub(crate) fn with_tenant_mut<R>(&self, f: impl FnOnce(&mut Tenant) -> R) -> R {
        let r = f(&mut lock(&self.tenant));
        self.dirty.store(true, Ordering::SeqCst);
        r
    }
    pub(crate) fn set_faults(&self, f: FaultConfig) {
        *lock(&self.faults) = f;
    }
    pub(crate) fn set_throttle(&self, t: ThrottleConfig) {
        let mut st = lock(&self.throttle);
        st.cfg = t;
        st.buckets.clear();
    }
    pub(crate) fn expire_tokens(&self) {
        let now = Instant::now();
        for t in lock(&self.tokens).values_mut() {
            t.expires = now;
        }
    }
    pub(crate) fn config_apps(&self) -> Vec<String> {
        self.config
            .apps
            .iter()
            .map(|a| a.client_id.clone())
            .collect()
    }
    pub(crate) fn stats(&self) -> EmulatorStats {
        EmulatorStats {
            requests: self.requests.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            faults: self.faults_count.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            tokens_issued: self.tokens_issued.load(Ordering::Relaxed),
        }
    }

    /// Saves the tenant to the state file (always, when one is configured).
    pub(crate) fn save(&self) -> Result<(), EmulatorError> {
        let Some(path) = &self.config.state_file else {
            return Ok(());
        };
        let _guard = lock(&self.save_lock);
        self.dirty.store(false, Ordering::SeqCst);
        let data = {
            let t = lock(&self.tenant);
            serde_json::to_vec(&*t)
        }
        .map_err(|e| EmulatorError::State {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &data)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| EmulatorError::State {
                path: path.clone(),
                message: e.to_string(),
            })?;
        tracing::debug!(path = %path.display(), bytes = data.len(), "emulator state saved");
        Ok(())
    }

    fn save_if_dirty(&self) {
        if self.dirty.load(Ordering::SeqCst)
            && let Err(e) = self.save()
        {
            tracing::warn!(error = %e, "emulator state not saved");
        }
    }

    /// Takes one write from the app's bucket: Ok(usage fraction) or Err(seconds to wait).
    fn take_write(&self, app: &str) -> Result<Option<f64>, f64> {
        let mut st = lock(&self.throttle);
        if !st.cfg.enabled || st.cfg.writes_per_window == 0 {
            return Ok(None);
        }
        let cap = f64::from(st.cfg.writes_per_window);
        let rate = cap / st.cfg.window.as_secs_f64().max(0.001);
        let now = Instant::now();
        let b = st.buckets.entry(app.to_string()).or_insert(Bucket {
            tokens: cap,
            last: now,
        });
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(cap);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(Some(1.0 - b.tokens / cap))
        } else {
            Err((1.0 - b.tokens) / rate)
        }
    }
}

/// One Graph answer before it becomes an HTTP response or a batch item.
#[derive(Debug, Clone)]
struct GraphResponse {
    status: u16,
    body: Option<Value>,
    text: Option<String>,
    headers: Vec<(String, String)>,
}

impl GraphResponse {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            text: None,
            headers: Vec::new(),
        }
    }
    fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
            text: None,
            headers: Vec::new(),
        }
    }
    fn from_error(e: &GraphError, rid: &str, crid: &str) -> Self {
        Self {
            status: e.status,
            body: Some(e.body(rid, crid)),
            text: None,
            headers: e.headers.clone(),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
struct Caller {
    client_id: String,
    read_only: bool,
}

pub(crate) async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
    if config.tenant_id.is_empty() {
        return Err(EmulatorError::Config("tenant id is empty".into()));
    }
    let mut tenant = match &config.state_file {
        Some(p) if p.exists() => {
            let data = std::fs::read(p).map_err(|e| EmulatorError::State {
                path: p.clone(),
                message: e.to_string(),
            })?;
            let mut t: Tenant =
                serde_json::from_slice(&data).map_err(|e| EmulatorError::State {
                    path: p.clone(),
                    message: e.to_string(),
                })?;
            t.rebuild_indexes();
            tracing::info!(path = %p.display(), objects = t.objects.len(), "emulator state loaded");
            t
        }
        _ => Tenant::new(&config.tenant_id, config.domains.clone()),
    };
    for f in &config.federated_domains {
        if !tenant
            .federated_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(f))
        {
            tenant.federated_domains.push(f.clone());
        }
        if !tenant.domains.is_empty() && !tenant.domains.iter().any(|d| d.eq_ignore_ascii_case(f)) {
            tenant.domains.push(f.clone());
        }
    }
    for app in &config.apps {
        if !tenant
            .applications
            .values()
            .any(|a| a.app_id == app.client_id)
        {
            let id = uuid::Uuid::new_v4().to_string();
            tenant.applications.insert(
                id.clone(),
                Application {
                    id,
                    app_id: app.client_id.clone(),
                    display_name: app.display_name.clone(),
                    extension_properties: Vec::new(),
                },
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let tenant_id = tenant.tenant_id.clone();
    let shared = Arc::new(Shared {
        tenant: Mutex::new(tenant),
        base_url: base_url.clone(),
        faults: Mutex::new(config.faults.clone()),
        throttle: Mutex::new(ThrottleState {
            cfg: config.throttle.clone(),
            buckets: HashMap::new(),
        }),
        tokens: Mutex::new(HashMap::new()),
        dirty: AtomicBool::new(config.state_file.is_some()),
        save_lock: Mutex::new(()),
        counter: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        writes: AtomicU64::new(0),
        throttled: AtomicU64::new(0),
        faults_count: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        tokens_issued: AtomicU64::new(0),
        config,
    });
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_handler))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            axum::routing::get(openid_configuration),
        )
        .fallback(graph_handler)
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(shared.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let saver_shared = shared.clone();
    let interval = shared
        .config
        .persist_interval
        .max(Duration::from_millis(10));
    let task = tokio::spawn(async move {
        let saver = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                saver_shared.save_if_dirty();
            }
        });
        let res = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        saver.abort();
        if let Err(e) = res {
            tracing::error!(error = %e, "graph emulator server failed");
        }
    });
    tracing::info!(%base_url, tenant = %tenant_id, "graph emulator started");
    Ok(EmulatorHandle {
        base_url,
        tenant_id,
        shared,
        shutdown: Some(tx),
        task: Some(task),
    })
}

// ---------------------------------------------------------------------------------------
// Token endpoint
// ---------------------------------------------------------------------------------------

fn aad_error(status: u16, error: &str, code: u32, message: &str) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let corr = uuid::Uuid::new_v4().to_string();
    let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    json_response(status, &body, &[])
}

fn json_response(status: u16, body: &Value, headers: &[(String, String)]) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    for (k, v) in headers {
        if let (Ok(name), Ok(val)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(name, val);
        }
    }
    resp
}

fn b64url_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn decode_b64url_json(s: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// OpenID Connect discovery document of the emulated authority (subset).
async fn openid_configuration(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Response {
    let tid = s.with_tenant(|t| t.tenant_id.clone());
    let base = &s.base_url;
    json_response(
        200,
        &json!({
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "issuer": format!("{base}/{tid}/v2.0"),
            "tenant_region_scope": "WW",
            "grant_types_supported": ["client_credentials"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }),
        &[],
    )
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn token_handler(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut form: HashMap<String, String> = parse_query_pairs(&String::from_utf8_lossy(&body))
        .into_iter()
        .collect();
    // client_secret_basic: Authorization: Basic base64(urlencode(id):urlencode(secret)).
    if let Some(basic) =
        header_str(&headers, "authorization").and_then(|a| a.strip_prefix("Basic "))
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(basic.trim())
        && let Some((id, secret)) = String::from_utf8_lossy(&raw).split_once(':')
    {
        form.entry("client_id".into())
            .or_insert_with(|| percent_decode(id));
        form.entry("client_secret".into())
            .or_insert_with(|| percent_decode(secret));
    }
    let tenant_ok = s.with_tenant(|t| {
        tenant.eq_ignore_ascii_case(&t.tenant_id)
            || t.domains.iter().any(|d| d.eq_ignore_ascii_case(&tenant))
            || tenant.eq_ignore_ascii_case(&t.default_domain)
    });
    if !tenant_ok {
        return aad_error(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    if grant.is_empty() {
        return aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    if grant != "client_credentials" {
        return aad_error(
            400,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let Some(client_id) = form.get("client_id").filter(|c| !c.is_empty()) else {
        return aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(app) = s
        .config
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    else {
        return aad_error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    };
    let scope = form.get("scope").map(String::as_str).unwrap_or("");
    if scope.is_empty() {
        return aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    }
    let scope_ok = scope.split(' ').all(|sc| {
        sc.eq_ignore_ascii_case("https://graph.microsoft.com/.default")
            || sc.eq_ignore_ascii_case("00000003-0000-0000-c000-000000000000/.default")
    });
    if !scope_ok {
        return aad_error(
            400,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    }
    if let Some(secret) = form.get("client_secret") {
        if app.client_secret.as_deref() != Some(secret.as_str()) {
            tracing::info!(client_id = %client_id, "token request with a wrong client secret");
            return aad_error(
                401,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            );
        }
    } else if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
            return aad_error(
                400,
                "invalid_request",
                7000219,
                "'client_assertion' or 'client_secret' is required with a valid 'client_assertion_type'.",
            );
        }
        if let Err((code, msg)) = check_assertion(
            assertion,
            client_id,
            &s.base_url,
            &tenant,
            app.certificate_pem.as_deref(),
        ) {
            return aad_error(401, "invalid_client", code, &msg);
        }
    } else {
        return aad_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let lifetime = s.config.token_lifetime;
    let now = unix_ms() / 1000;
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "dirsync-emulator"});
    let claims = json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("https://sts.windows.net/{}/", s.with_tenant(|t| t.tenant_id.clone())),
        "iat": now, "nbf": now, "exp": now + lifetime.as_secs(),
        "appid": app.client_id, "tid": s.with_tenant(|t| t.tenant_id.clone()),
        "roles": if app.read_only { json!(["Directory.Read.All"]) } else { json!(["Directory.ReadWrite.All", "User.ReadWrite.All", "Group.ReadWrite.All"]) },
        "uti": uuid::Uuid::new_v4().to_string(), "ver": "1.0",
    });
    let sig: [u8; 32] = rand::random();
    let token = format!(
        "{}.{}.{}",
        b64url_json(&header),
        b64url_json(&claims),
        URL_SAFE_NO_PAD.encode(sig)
    );
    lock(&s.tokens).insert(
        token.clone(),
        TokenInfo {
            client_id: app.client_id.clone(),
            expires: Instant::now() + lifetime,
        },
    );
    s.tokens_issued.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(client_id = %app.client_id, "access token issued");
    json_response(
        200,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": token,
        }),
        &[],
    )
}

/// DER bytes of the first certificate of a PEM text.
fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = pem[start..].find("-----END CERTIFICATE-----")? + start;
    let b64: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// Verifies the signature of a client assertion against the registered certificate and
/// checks the `x5t` / `x5t#S256` thumbprint when present.
fn verify_assertion_signature(
    pem: &str,
    header: &Value,
    signing_input: &str,
    signature_b64: &str,
) -> Result<(), (u32, String)> {
    let bad_sig = || {
        (
            700027,
            "Client assertion failed signature validation.".to_string(),
        )
    };
    let der = pem_to_der(pem).ok_or_else(|| {
        (
            700027,
            "The certificate registered for the application could not be read.".to_string(),
        )
    })?;
    let thumb_mismatch = || {
        (
            700027,
            "The certificate with the identifier used to sign the client assertion is not registered on the application.".to_string(),
        )
    };
    if let Some(x5t) = header.get("x5t").and_then(Value::as_str) {
        let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        if URL_SAFE_NO_PAD.encode(d.as_ref()) != x5t.trim_end_matches('=') {
            return Err(thumb_mismatch());
        }
    }
    if let Some(x5t) = header.get("x5t#S256").and_then(Value::as_str) {
        let d = ring::digest::digest(&ring::digest::SHA256, &der);
        if URL_SAFE_NO_PAD.encode(d.as_ref()) != x5t.trim_end_matches('=') {
            return Err(thumb_mismatch());
        }
    }
    let cert_der = rustls::pki_types::CertificateDer::from(der);
    let cert = webpki::EndEntityCert::try_from(&cert_der).map_err(|_| bad_sig())?;
    let sig = URL_SAFE_NO_PAD
        .decode(signature_b64.trim_end_matches('='))
        .map_err(|_| bad_sig())?;
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("PS256") => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        _ => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    };
    cert.verify_signature(alg, signing_input.as_bytes(), &sig)
        .map_err(|_| bad_sig())
}

/// Checks a client assertion JWT: structure, algorithm, `iss`/`sub`, `aud`, lifetime and,
/// when the app has a registered certificate, the signature and thumbprint. Without a
/// registered certificate the signature is not checked (rehearsal convenience).
fn check_assertion(
    assertion: &str,
    client_id: &str,
    base_url: &str,
    tenant: &str,
    certificate_pem: Option<&str>,
) -> Result<(), (u32, String)> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let malformed = || (50027, "JWT token is invalid or malformed.".to_string());
    if parts.len() != 3 || parts[2].is_empty() {
        return Err(malformed());
    }
    let header = decode_b64url_json(parts[0]).ok_or_else(malformed)?;
    let claims = decode_b64url_json(parts[1]).ok_or_else(malformed)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if !matches!(alg, "RS256" | "PS256") {
        return Err((
            5002738,
            format!("Invalid JWT token. '{alg}' is not a supported signature algorithm."),
        ));
    }
    if header.get("x5t").is_none()
        && header.get("x5t#S256").is_none()
        && header.get("kid").is_none()
    {
        return Err((
            700027,
            "Client assertion failed signature validation: no certificate thumbprint (x5t) in the header.".into(),
        ));
    }
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    if !iss.eq_ignore_ascii_case(client_id) || !sub.eq_ignore_ascii_case(client_id) {
        return Err((
            700023,
            "Client assertion audience or subject claim does not match the client id.".into(),
        ));
    }
    let aud = claims.get("aud").and_then(Value::as_str).unwrap_or("");
    let expected = format!("{base_url}/{tenant}/oauth2/v2.0/token");
    if !aud.eq_ignore_ascii_case(&expected) && !aud.ends_with("/oauth2/v2.0/token") {
        return Err((
            700016,
            format!("The audience claim value '{aud}' is invalid; expected '{expected}'."),
        ));
    }
    let now = unix_ms() / 1000;
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    let nbf = claims.get("nbf").and_then(Value::as_u64).unwrap_or(0);
    if exp + 300 < now || nbf > now + 300 {
        return Err((
            700024,
            "Client assertion is not within its valid time range.".into(),
        ));
    }
    if let Some(pem) = certificate_pem {
        let signing_input = format!("{}.{}", parts[0], parts[1]);
        verify_assertion_signature(pem, &header, &signing_input, parts[2])?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Graph entry
// ---------------------------------------------------------------------------------------

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn dropped_response() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Vec<u8>, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "connection dropped by fault injection",
        ))
    });
    Response::new(Body::from_stream(stream))
}

enum Fault {
    None,
    Fail,
    Drop,
}

impl Shared {
    async fn apply_faults(&self) -> Fault {
        let f = lock(&self.faults).clone();
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        if !f.latency.is_zero() {
            tokio::time::sleep(f.latency).await;
        }
        let drop = f
            .drop_every_nth
            .is_some_and(|k| k > 0 && n.is_multiple_of(k))
            || (f.drop_probability > 0.0 && rand::random::<f64>() < f.drop_probability);
        if drop {
            return Fault::Drop;
        }
        let fail = f
            .fail_every_nth
            .is_some_and(|k| k > 0 && n.is_multiple_of(k))
            || (f.fail_probability > 0.0 && rand::random::<f64>() < f.fail_probability);
        if fail { Fault::Fail } else { Fault::None }
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, GraphError> {
        if !self.config.require_auth {
            let first = self.config.apps.first();
            return Ok(Caller {
                client_id: first.map(|a| a.client_id.clone()).unwrap_or_default(),
                read_only: false,
            });
        }
        let auth = header_str(headers, "authorization").unwrap_or("");
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .unwrap_or("")
            .trim();
        if token.is_empty() {
            return Err(GraphError::new(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            ));
        }
        let info = lock(&self.tokens).get(token).cloned();
        let Some(info) = info else {
            return Err(GraphError::new(
                401,
                "InvalidAuthenticationToken",
                "CompactToken parsing failed with error code: 80049217",
            ));
        };
        if info.expires <= Instant::now() {
            return Err(GraphError::new(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            ));
        }
        let read_only = self
            .config
            .apps
            .iter()
            .find(|a| a.client_id == info.client_id)
            .is_some_and(|a| a.read_only);
        Ok(Caller {
            client_id: info.client_id,
            read_only,
        })
    }

    /// Write admission: authorization and throttling. Returns headers to add.
    fn admit_write(&self, caller: &Caller) -> Result<Vec<(String, String)>, GraphError> {
        if caller.read_only {
            return Err(GraphError::new(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ));
        }
        match self.take_write(&caller.client_id) {
            Ok(usage) => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                let mut h = Vec::new();
                if let Some(u) = usage.filter(|u| *u >= 0.8) {
                    h.push((
                        "x-ms-throttle-limit-percentage".to_string(),
                        format!("{u:.1}"),
                    ));
                }
                Ok(h)
            }
            Err(wait) => {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                let ms = (wait * 1000.0).ceil().max(1.0) as u64;
                let secs = if ms.is_multiple_of(1000) {
                    format!("{}", ms / 1000)
                } else {
                    format!("{:.3}", ms as f64 / 1000.0)
                };
                Err(GraphError::new(
                    429,
                    "TooManyRequests",
                    "Too many requests. Please retry again later.",
                )
                .with_header("Retry-After", secs)
                .with_header("retry-after-ms", ms.to_string())
                .with_header("x-ms-throttle-limit-percentage", "1.0")
                .with_header(
                    "x-ms-throttle-scope",
                    format!("Tenant_Application/WriteRequests/{}", caller.client_id),
                ))
            }
        }
    }
}

fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PATCH" | "PUT" | "DELETE")
}

fn to_http(resp: GraphResponse, rid: &str, crid: &str) -> Response {
    let mut out = match (&resp.body, &resp.text) {
        (Some(b), _) => Response::new(Body::from(b.to_string())),
        (None, Some(t)) => Response::new(Body::from(t.clone())),
        (None, None) => Response::new(Body::empty()),
    };
    *out.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = out.headers_mut();
    if resp.body.is_some() {
        h.insert(
            "content-type",
            HeaderValue::from_static("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"),
        );
    } else if resp.text.is_some() {
        h.insert("content-type", HeaderValue::from_static("text/plain"));
    }
    if let Ok(v) = HeaderValue::from_str(rid) {
        h.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(crid) {
        h.insert("client-request-id", v);
    }
    h.insert("odata-version", HeaderValue::from_static("4.0"));
    for (k, v) in &resp.headers {
        if let (Ok(name), Ok(val)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(name, val);
        }
    }
    out
}

async fn graph_handler(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rid = uuid::Uuid::new_v4().to_string();
    let crid = header_str(&headers, "client-request-id")
        .map(str::to_string)
        .unwrap_or_else(|| rid.clone());
    s.requests.fetch_add(1, Ordering::Relaxed);
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let resp = match s.apply_faults().await {
        Fault::Drop => {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%method, %path, "fault injection: connection dropped");
            return dropped_response();
        }
        Fault::Fail => {
            s.faults_count.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%method, %path, "fault injection: 503");
            GraphResponse::from_error(
                &GraphError::new(
                    503,
                    "serviceNotAvailable",
                    "The service is temporarily unavailable. Try the request again after a delay.",
                )
                .with_header("Retry-After", "1"),
                &rid,
                &crid,
            )
        }
        Fault::None => handle_graph(
            &s,
            method.as_str(),
            &path,
            &query,
            &headers,
            &body,
            &rid,
            &crid,
        ),
    };
    tracing::debug!(%method, %path, status = resp.status, request_id = %rid, "graph request");
    to_http(resp, &rid, &crid)
}

#[allow(clippy::too_many_arguments)]
fn handle_graph(
    s: &Shared,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    rid: &str,
    crid: &str,
) -> GraphResponse {
    let rel = match path
        .strip_prefix("/v1.0/")
        .or_else(|| path.strip_prefix("/beta/"))
    {
        Some(r) => r.to_string(),
        None => {
            return GraphResponse::from_error(
                &GraphError::new(
                    400,
                    "BadRequest",
                    format!("Invalid version: the path '{path}' does not start with /v1.0."),
                ),
                rid,
                crid,
            );
        }
    };
    let caller = match s.authenticate(headers) {
        Ok(c) => c,
        Err(e) => {
            let e = e.with_header(
                "WWW-Authenticate",
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            );
            return GraphResponse::from_error(&e, rid, crid);
        }
    };
    if rel == "$batch" || rel == "%24batch" {
        if method != "POST" {
            return GraphResponse::from_error(
                &GraphError::new(405, "BadRequest", "The $batch endpoint only accepts POST."),
                rid,
                crid,
            );
        }
        return handle_batch(s, &caller, body, rid, crid);
    }
    let retention = s.config.deleted_retention.as_millis() as u64;
    let now = unix_ms();
    if s.with_tenant(|t| t.has_expired(now, retention)) {
        let n = s.with_tenant_mut(|t| t.purge_expired(now, retention));
        tracing::info!(purged = n, "deleted items past retention purged");
    }
    let page_hint = header_str(headers, "prefer").and_then(|p| {
        p.split(',')
            .filter_map(|x| x.trim().strip_prefix("odata.maxpagesize="))
            .find_map(|n| n.trim().parse::<usize>().ok())
            .map(|n| n.clamp(1, 999))
    });
    let body_val = match parse_body(method, body) {
        Ok(v) => v,
        Err(e) => return GraphResponse::from_error(&e, rid, crid),
    };
    let mut extra = Vec::new();
    if is_write(method) {
        match s.admit_write(&caller) {
            Ok(h) => extra = h,
            Err(e) => return GraphResponse::from_error(&e, rid, crid),
        }
    }
    let mut resp = match dispatch(s, method, &rel, query, &body_val, page_hint) {
        Ok(r) => r,
        Err(e) => GraphResponse::from_error(&e, rid, crid),
    };
    resp.headers.extend(extra);
    if let Some(n) = page_hint {
        resp.headers.push((
            "Preference-Applied".into(),
            format!("odata.maxpagesize={n}"),
        ));
    }
    resp
}

fn parse_body(method: &str, body: &[u8]) -> Result<Value, GraphError> {
    if !matches!(method, "POST" | "PATCH" | "PUT") || body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|_| {
        GraphError::new(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )
    })
}

// ---------------------------------------------------------------------------------------
// Paging and delta tokens
// ---------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct PageToken {
    c: String,
}

#[derive(Serialize, Deserialize, Clone)]
struct DeltaState {
    /// Kind.
    k: ObjectKind,
    /// Changes after this change number.
    s: u64,
    /// Change number at the start of the round (next deltaLink).
    u: u64,
    /// Cursor (last id returned).
    c: Option<String>,
    /// Delta epoch.
    e: u64,
    /// Issued at (unix ms).
    t: u64,
    /// `$select`.
    sel: Option<Vec<String>>,
    /// Page size asked for on the first request (`$top` or `Prefer: odata.maxpagesize`).
    #[serde(default)]
    n: Option<usize>,
}

fn encode_token<T: Serialize>(t: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(t).unwrap_or_default())
}

fn decode_token<T: for<'de> Deserialize<'de>>(s: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(s.trim()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn context_url(base: &str, entity_set: &str, select: Option<&[String]>) -> String {
    match select {
        Some(sel) => format!("{base}/v1.0/$metadata#{entity_set}({})", sel.join(",")),
        None => format!("{base}/v1.0/$metadata#{entity_set}"),
    }
}

fn next_link(base: &str, rel_path: &str, q: &QueryOptions, cursor: &str) -> String {
    let token = encode_token(&PageToken {
        c: cursor.to_string(),
    });
    let carry = q.carry_over();
    if carry.is_empty() {
        format!("{base}/v1.0/{rel_path}?$skiptoken={token}")
    } else {
        format!("{base}/v1.0/{rel_path}?{carry}&$skiptoken={token}")
    }
}

fn page_cursor(q: &QueryOptions) -> Result<Option<String>, GraphError> {
    match &q.skiptoken {
        None => Ok(None),
        Some(t) => decode_token::<PageToken>(t)
            .map(|p| Some(p.c))
            .ok_or_else(|| {
                GraphError::bad_request("The specified page token value has expired or is invalid.")
            }),
    }
}

fn kind_of_collection(seg: &str) -> Option<ObjectKind> {
    match seg {
        "users" => Some(ObjectKind::User),
        "groups" => Some(ObjectKind::Group),
        "contacts" => Some(ObjectKind::Contact),
        "devices" => Some(ObjectKind::Device),
        _ => None,
    }
}

fn is_delta_segment(seg: &str) -> bool {
    matches!(
        seg,
        "delta" | "delta()" | "microsoft.graph.delta" | "microsoft.graph.delta()"
    )
}

// ---------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------

fn dispatch(
    s: &Shared,
    method: &str,
    rel: &str,
    query: &str,
    body: &Value,
    page_hint: Option<usize>,
) -> Result<GraphResponse, GraphError> {
    let mut q = QueryOptions::parse(query)?;
    if q.top.is_none() {
        q.top = page_hint;
    }
    let segs: Vec<String> = rel
        .trim_end_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let base = s.base_url.as_str();
    let not_allowed = || {
        GraphError::new(
            405,
            "Request_BadRequest",
            format!("The HTTP method '{method}' is not supported on '/{rel}'."),
        )
    };
    match segs.as_slice() {
        [coll] if kind_of_collection(coll).is_some() => {
            let kind = kind_of_collection(coll).ok_or_else(not_allowed)?;
            match method {
                "GET" => s.with_tenant(|t| list_collection(t, kind, &q, base, coll)),
                "POST" => {
                    let id = s.with_tenant_mut(|t| match kind {
                        ObjectKind::User => t.create_user(body),
                        ObjectKind::Group => t.create_group(body),
                        _ => Err(GraphError::new(
                            405,
                            "Request_BadRequest",
                            format!("Creating '{}' objects is not supported: the resource is read-only in Microsoft Graph v1.0.", kind.resource()),
                        )),
                    })?;
                    tracing::debug!(kind = kind.collection(), %id, "object created");
                    let mut r = s.with_tenant(|t| entity_response(t, &id, None, base, coll, 201))?;
                    r.headers.push(("Location".into(), format!("{base}/v1.0/{coll}/{id}")));
                    Ok(r)
                }
                _ => Err(not_allowed()),
            }
        }
        [coll, "$count"] if kind_of_collection(coll).is_some() && method == "GET" => {
            let kind = kind_of_collection(coll).ok_or_else(not_allowed)?;
            let n = s.with_tenant(|t| t.list(kind, &q, None).count());
            Ok(GraphResponse {
                status: 200,
                body: None,
                text: Some(n.to_string()),
                headers: Vec::new(),
            })
        }
        [coll, seg] if matches!(*coll, "users" | "groups") && is_delta_segment(seg) => {
            if method != "GET" {
                return Err(not_allowed());
            }
            let kind = kind_of_collection(coll).ok_or_else(not_allowed)?;
            delta(s, kind, &q, coll)
        }
        [coll, key] if kind_of_collection(coll).is_some() => {
            let kind = kind_of_collection(coll).ok_or_else(not_allowed)?;
            match method {
                "GET" => s.with_tenant(|t| {
                    let id = t.resolve(kind, key)?;
                    let mut r = entity_response(t, &id, q.select.as_deref(), base, coll, 200)?;
                    if q.expand.is_some()
                        && let (Some(Value::Object(m)), Some(o)) = (r.body.as_mut(), t.objects.get(&id)) {
                            expand_manager(t, o, m);
                        }
                    Ok(r)
                }),
                "PATCH" => {
                    s.with_tenant_mut(|t| t.update(kind, key, body))?;
                    Ok(GraphResponse::no_content())
                }
                "DELETE" => {
                    if matches!(kind, ObjectKind::Contact | ObjectKind::Device) {
                        return Err(not_allowed());
                    }
                    s.with_tenant_mut(|t| t.delete(kind, key))?;
                    Ok(GraphResponse::no_content())
                }
                _ => Err(not_allowed()),
            }
        }
        ["users", key, "memberOf"] if method == "GET" => s.with_tenant(|t| {
            let id = t.resolve(ObjectKind::User, key)?;
            let groups: Vec<Value> = t
                .objects
                .values()
                .filter(|g| g.kind == ObjectKind::Group && g.members.contains(&id))
                .map(|g| Value::Object(Tenant::render(g, q.select.as_deref(), true)))
                .collect();
            Ok(GraphResponse::json(
                200,
                json!({"@odata.context": context_url(base, "directoryObjects", q.select.as_deref()), "value": groups}),
            ))
        }),
        ["users", key, "manager"] if method == "GET" => s.with_tenant(|t| {
            let id = t.resolve(ObjectKind::User, key)?;
            let mgr = t
                .objects
                .get(&id)
                .and_then(|o| o.manager.as_ref())
                .and_then(|m| t.objects.get(m))
                .ok_or_else(|| GraphError::not_found("manager"))?;
            let mut m = Tenant::render(mgr, q.select.as_deref(), true);
            m.insert("@odata.context".into(), json!(format!("{base}/v1.0/$metadata#directoryObjects/$entity")));
            Ok(GraphResponse::json(200, Value::Object(m)))
        }),
        ["users", key, "manager", "$ref"] => match method {
            "PUT" => {
                let r = body
                    .get("@odata.id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| GraphError::bad_request("The request body must contain '@odata.id' with the URL of the manager."))?;
                let mid = id_from_reference(r)
                    .ok_or_else(|| GraphError::bad_request("Invalid object identifier in '@odata.id'."))?;
                s.with_tenant_mut(|t| t.set_manager(key, Some(&mid)))?;
                Ok(GraphResponse::no_content())
            }
            "DELETE" => {
                s.with_tenant_mut(|t| t.set_manager(key, None))?;
                Ok(GraphResponse::no_content())
            }
            _ => Err(not_allowed()),
        },
        ["users", key, "directReports"] if method == "GET" => s.with_tenant(|t| {
            let id = t.resolve(ObjectKind::User, key)?;
            let value: Vec<Value> = t
                .objects
                .values()
                .filter(|o| o.manager.as_deref() == Some(id.as_str()))
                .map(|o| Value::Object(Tenant::render(o, q.select.as_deref(), true)))
                .collect();
            Ok(GraphResponse::json(
                200,
                json!({"@odata.context": context_url(base, "directoryObjects", q.select.as_deref()), "value": value}),
            ))
        }),
        ["groups", gid, "members"] if method == "GET" => s.with_tenant(|t| {
            let gid = t.resolve(ObjectKind::Group, gid)?;
            let cursor = page_cursor(&q)?;
            let top = q.top.unwrap_or(100);
            let g = t.objects.get(&gid).ok_or_else(|| GraphError::not_found(&gid))?;
            let mut ids: Vec<&String> = g
                .members
                .iter()
                .filter(|m| cursor.as_deref().is_none_or(|c| m.as_str() > c))
                .filter(|m| {
                    t.objects.get(*m).is_some_and(|o| {
                        q.filter.as_ref().is_none_or(|f| f.matches(&o.id, &o.props))
                    })
                })
                .take(top + 1)
                .collect();
            let more = ids.len() > top;
            ids.truncate(top);
            let value: Vec<Value> = ids
                .iter()
                .filter_map(|m| t.objects.get(*m))
                .map(|o| Value::Object(Tenant::render(o, q.select.as_deref(), true)))
                .collect();
            let mut out = json!({"@odata.context": context_url(base, "directoryObjects", q.select.as_deref()), "value": value});
            if more
                && let Some(last) = ids.last() {
                    out["@odata.nextLink"] = json!(next_link(base, &format!("groups/{gid}/members"), &q, last));
                }
            Ok(GraphResponse::json(200, out))
        }),
        ["groups", gid, "members", "$ref"] if method == "POST" => {
            let r = body
                .get("@odata.id")
                .and_then(Value::as_str)
                .ok_or_else(|| GraphError::bad_request("The request body must contain '@odata.id' with the URL of the directory object to add."))?;
            let mid = id_from_reference(r)
                .ok_or_else(|| GraphError::bad_request("Invalid object identifier in '@odata.id'."))?;
            s.with_tenant_mut(|t| t.add_member(gid, &mid))?;
            Ok(GraphResponse::no_content())
        }
        ["groups", gid, "members", mid, "$ref"] if method == "DELETE" => {
            s.with_tenant_mut(|t| t.remove_member(gid, mid))?;
            Ok(GraphResponse::no_content())
        }
        ["directoryObjects", id] if method == "GET" => s.with_tenant(|t| {
            let o = t.objects.get(*id).ok_or_else(|| GraphError::not_found(id))?;
            let mut m = Tenant::render(o, q.select.as_deref(), true);
            m.insert("@odata.context".into(), json!(format!("{base}/v1.0/$metadata#directoryObjects/$entity")));
            Ok(GraphResponse::json(200, Value::Object(m)))
        }),
        ["directory", "deletedItems", typ] if typ.starts_with("microsoft.graph.") && method == "GET" => {
            let kind = match *typ {
                "microsoft.graph.user" => ObjectKind::User,
                "microsoft.graph.group" => ObjectKind::Group,
                _ => return Err(GraphError::bad_request(format!("Unsupported type '{typ}' for deleted items."))),
            };
            s.with_tenant(|t| {
                let cursor = page_cursor(&q)?;
                let top = q.top.unwrap_or(100);
                let lower = match cursor.as_deref() {
                    Some(c) => std::ops::Bound::Excluded(c),
                    None => std::ops::Bound::Unbounded,
                };
                let mut items: Vec<_> = t
                    .deleted
                    .range::<str, _>((lower, std::ops::Bound::Unbounded))
                    .map(|(_, o)| o)
                    .filter(|o| o.kind == kind)
                    .filter(|o| q.filter.as_ref().is_none_or(|f| f.matches(&o.id, &o.props)))
                    .take(top + 1)
                    .collect();
                let more = items.len() > top;
                items.truncate(top);
                let value: Vec<Value> = items
                    .iter()
                    .map(|o| {
                        let mut m = Tenant::render(o, q.select.as_deref(), false);
                        m.insert("deletedDateTime".into(), o.props.get("deletedDateTime").cloned().unwrap_or(Value::Null));
                        Value::Object(m)
                    })
                    .collect();
                let mut out = json!({"@odata.context": format!("{base}/v1.0/$metadata#directoryObjects/{typ}"), "value": value});
                if more && let Some(last) = items.last() {
                    out["@odata.nextLink"] = json!(next_link(base, &format!("directory/deletedItems/{typ}"), &q, &last.id));
                }
                Ok(GraphResponse::json(200, out))
            })
        }
        ["directory", "deletedItems", id] => match method {
            "GET" => s.with_tenant(|t| {
                let o = t.deleted.get(*id).ok_or_else(|| GraphError::not_found(id))?;
                let mut m = Tenant::render(o, q.select.as_deref(), true);
                m.insert("deletedDateTime".into(), o.props.get("deletedDateTime").cloned().unwrap_or(Value::Null));
                m.insert("@odata.context".into(), json!(format!("{base}/v1.0/$metadata#directoryObjects/$entity")));
                Ok(GraphResponse::json(200, Value::Object(m)))
            }),
            "DELETE" => {
                s.with_tenant_mut(|t| t.purge(id))?;
                Ok(GraphResponse::no_content())
            }
            _ => Err(not_allowed()),
        },
        ["directory", "deletedItems", id, action]
            if method == "POST" && matches!(*action, "restore" | "microsoft.graph.restore") =>
        {
            let id = s.with_tenant_mut(|t| t.restore(id))?;
            s.with_tenant(|t| {
                let o = t.objects.get(&id).ok_or_else(|| GraphError::not_found(&id))?;
                let mut m = Tenant::render(o, None, true);
                m.insert("@odata.context".into(), json!(format!("{base}/v1.0/$metadata#directoryObjects/$entity")));
                Ok(GraphResponse::json(200, Value::Object(m)))
            })
        }
        ["organization"] if method == "GET" => s.with_tenant(|t| {
            Ok(GraphResponse::json(
                200,
                json!({
                    "@odata.context": context_url(base, "organization", None),
                    "value": [{
                        "id": t.tenant_id,
                        "displayName": "dirsync emulated tenant",
                        "onPremisesSyncEnabled": null,
                        "verifiedDomains": domains_json(t),
                    }]
                }),
            ))
        }),
        ["domains"] if method == "GET" => s.with_tenant(|t| {
            let value: Vec<Value> = domains_json(t)
                .into_iter()
                .map(|d| json!({"id": d["name"], "isDefault": d["isDefault"], "isInitial": d["isInitial"], "isVerified": true}))
                .collect();
            Ok(GraphResponse::json(200, json!({"@odata.context": context_url(base, "domains", None), "value": value})))
        }),
        ["applications"] if method == "GET" => s.with_tenant(|t| {
            let value: Vec<Value> = t
                .applications
                .values()
                .filter(|a| {
                    q.filter.as_ref().is_none_or(|f| {
                        let Value::Object(m) = a.to_json() else { return false };
                        f.matches(&a.id, &m)
                    })
                })
                .map(Application::to_json)
                .collect();
            Ok(GraphResponse::json(200, json!({"@odata.context": context_url(base, "applications", None), "value": value})))
        }),
        [app] if app.starts_with("applications(") && method == "GET" => s.with_tenant(|t| {
            let app_id = app
                .trim_start_matches("applications(")
                .trim_start_matches("appId=")
                .trim_end_matches(')')
                .trim_matches('\'');
            let a = t
                .applications
                .values()
                .find(|a| a.app_id.eq_ignore_ascii_case(app_id))
                .ok_or_else(|| GraphError::not_found(app_id))?;
            Ok(GraphResponse::json(200, a.to_json()))
        }),
        ["applications", id] if method == "GET" => s.with_tenant(|t| {
            let a = t.applications.get(*id).ok_or_else(|| GraphError::not_found(id))?;
            Ok(GraphResponse::json(200, a.to_json()))
        }),
        ["applications", id, "extensionProperties"] => match method {
            "GET" => s.with_tenant(|t| {
                let v = t.list_extensions(id)?;
                Ok(GraphResponse::json(
                    200,
                    json!({"@odata.context": format!("{base}/v1.0/$metadata#applications('{id}')/extensionProperties"), "value": v}),
                ))
            }),
            "POST" => {
                let v = s.with_tenant_mut(|t| t.add_extension(id, body))?;
                Ok(GraphResponse::json(201, v))
            }
            _ => Err(not_allowed()),
        },
        ["applications", id, "extensionProperties", ext] if method == "DELETE" => {
            s.with_tenant_mut(|t| t.delete_extension(id, ext))?;
            Ok(GraphResponse::no_content())
        }
        _ => Err(GraphError::new(
            400,
            "BadRequest",
            format!("Resource not found for the segment '{}'.", segs.first().copied().unwrap_or("")),
        )),
    }
}

fn domains_json(t: &Tenant) -> Vec<Value> {
    let mut names: Vec<String> = t.domains.clone();
    if !names
        .iter()
        .any(|d| d.eq_ignore_ascii_case(&t.default_domain))
    {
        names.insert(0, t.default_domain.clone());
    }
    names
        .iter()
        .map(|n| {
            let default = n.eq_ignore_ascii_case(&t.default_domain);
            json!({"name": n, "isDefault": default, "isInitial": n.ends_with(".onmicrosoft.com") && default, "type": "Managed", "capabilities": "Email, OfficeCommunicationsOnline"})
        })
        .collect()
}

fn expand_manager(t: &Tenant, o: &super::tenant::DirObject, m: &mut Map<String, Value>) {
    if let Some(mgr) = o.manager.as_ref().and_then(|id| t.objects.get(id)) {
        let mut r = Map::new();
        r.insert("@odata.type".into(), json!(mgr.kind.odata_type()));
        r.insert("id".into(), json!(mgr.id));
        m.insert("manager".into(), Value::Object(r));
    }
}

fn entity_response(
    t: &Tenant,
    id: &str,
    select: Option<&[String]>,
    base: &str,
    coll: &str,
    status: u16,
) -> Result<GraphResponse, GraphError> {
    let o = t.objects.get(id).ok_or_else(|| GraphError::not_found(id))?;
    let mut m = Map::new();
    let ctx = match select {
        Some(sel) => format!("{base}/v1.0/$metadata#{coll}({})/$entity", sel.join(",")),
        None => format!("{base}/v1.0/$metadata#{coll}/$entity"),
    };
    m.insert("@odata.context".into(), json!(ctx));
    m.extend(Tenant::render(o, select, false));
    Ok(GraphResponse::json(status, Value::Object(m)))
}

fn list_collection(
    t: &Tenant,
    kind: ObjectKind,
    q: &QueryOptions,
    base: &str,
    coll: &str,
) -> Result<GraphResponse, GraphError> {
    let cursor = page_cursor(q)?;
    let top = q.top.unwrap_or(100);
    let mut items: Vec<_> = t.list(kind, q, cursor.as_deref()).take(top + 1).collect();
    let more = items.len() > top;
    items.truncate(top);
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(context_url(base, coll, q.select.as_deref())),
    );
    if q.count {
        out.insert("@odata.count".into(), json!(t.list(kind, q, None).count()));
    }
    if more && let Some(last) = items.last() {
        out.insert(
            "@odata.nextLink".into(),
            json!(next_link(base, coll, q, &last.id)),
        );
    }
    let value: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut m = Tenant::render(o, q.select.as_deref(), false);
            if q.expand.is_some() {
                expand_manager(t, o, &mut m);
            }
            Value::Object(m)
        })
        .collect();
    out.insert("value".into(), Value::Array(value));
    Ok(GraphResponse::json(200, Value::Object(out)))
}

fn delta(
    s: &Shared,
    kind: ObjectKind,
    q: &QueryOptions,
    coll: &str,
) -> Result<GraphResponse, GraphError> {
    let base = s.base_url.as_str();
    let lifetime_ms = s.config.delta_token_lifetime.as_millis() as u64;
    let now = unix_ms();
    let (epoch, seq) = s.with_tenant(|t| (t.delta_epoch, t.seq));
    let check = |st: &DeltaState| -> Result<(), GraphError> {
        if st.e != epoch || st.k != kind || now.saturating_sub(st.t) > lifetime_ms {
            return Err(GraphError::sync_state_not_found());
        }
        Ok(())
    };
    let state = if let Some(tok) = &q.deltatoken {
        if tok == "latest" {
            let st = DeltaState {
                k: kind,
                s: seq,
                u: seq,
                c: None,
                e: epoch,
                t: now,
                sel: q.select.clone(),
                n: q.top,
            };
            return Ok(GraphResponse::json(
                200,
                json!({
                    "@odata.context": context_url(base, coll, q.select.as_deref()),
                    "@odata.deltaLink": format!("{base}/v1.0/{coll}/delta?$deltatoken={}", encode_token(&st)),
                    "value": [],
                }),
            ));
        }
        let st: DeltaState = decode_token(tok).ok_or_else(GraphError::sync_state_not_found)?;
        check(&st)?;
        DeltaState {
            s: st.u,
            u: seq,
            c: None,
            t: now,
            sel: q.select.clone().or(st.sel),
            n: q.top.or(st.n),
            ..st
        }
    } else if let Some(tok) = &q.skiptoken {
        let st: DeltaState = decode_token(tok).ok_or_else(GraphError::sync_state_not_found)?;
        check(&st)?;
        st
    } else {
        DeltaState {
            k: kind,
            s: 0,
            u: seq,
            c: None,
            e: epoch,
            t: now,
            sel: q.select.clone(),
            n: q.top,
        }
    };
    let top = q.top.or(state.n).unwrap_or(100);
    let (value, more) = s.with_tenant(|t| {
        t.delta_page(kind, state.s, state.c.as_deref(), top, state.sel.as_deref())
    });
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(context_url(base, coll, state.sel.as_deref())),
    );
    match more {
        Some(cursor) => {
            let next = DeltaState {
                c: Some(cursor),
                t: now,
                ..state.clone()
            };
            out.insert(
                "@odata.nextLink".into(),
                json!(format!(
                    "{base}/v1.0/{coll}/delta?$skiptoken={}",
                    encode_token(&next)
                )),
            );
        }
        None => {
            let next = DeltaState {
                s: state.u,
                u: state.u,
                c: None,
                t: now,
                ..state.clone()
            };
            out.insert(
                "@odata.deltaLink".into(),
                json!(format!(
                    "{base}/v1.0/{coll}/delta?$deltatoken={}",
                    encode_token(&next)
                )),
            );
        }
    }
    out.insert("value".into(), Value::Array(value));
    Ok(GraphResponse::json(200, Value::Object(out)))
}

// ---------------------------------------------------------------------------------------
// $batch
// ---------------------------------------------------------------------------------------

/// Maximum number of requests in one `$batch`.
pub const MAX_BATCH: usize = 20;

fn handle_batch(s: &Shared, caller: &Caller, body: &[u8], rid: &str, crid: &str) -> GraphResponse {
    let bad = |msg: String| {
        GraphResponse::from_error(&GraphError::new(400, "BadRequest", msg), rid, crid)
    };
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return bad("Invalid batch payload format: the body is not valid JSON.".into());
    };
    let Some(reqs) = v.get("requests").and_then(Value::as_array) else {
        return bad("Invalid batch payload format: the 'requests' property is required.".into());
    };
    if reqs.len() > MAX_BATCH {
        return bad(format!(
            "Invalid batch payload format: the number of requests ({}) exceeds the limit of {MAX_BATCH}.",
            reqs.len()
        ));
    }
    struct Item {
        id: String,
        method: String,
        url: String,
        body: Value,
        depends: Vec<String>,
        missing_content_type: bool,
    }
    let mut items = Vec::new();
    let mut ids = HashSet::new();
    for r in reqs {
        let Some(id) = r.get("id").and_then(|i| {
            i.as_str()
                .map(str::to_string)
                .or_else(|| i.as_u64().map(|n| n.to_string()))
        }) else {
            return bad("Invalid batch payload format: every request needs an 'id'.".into());
        };
        if !ids.insert(id.clone()) {
            return bad(format!(
                "Invalid batch payload format: duplicate request id '{id}'."
            ));
        }
        let Some(method) = r.get("method").and_then(Value::as_str) else {
            return bad(format!(
                "Invalid batch payload format: request '{id}' has no 'method'."
            ));
        };
        let Some(url) = r.get("url").and_then(Value::as_str) else {
            return bad(format!(
                "Invalid batch payload format: request '{id}' has no 'url'."
            ));
        };
        let depends = match r.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect(),
            Some(_) => {
                return bad(format!(
                    "Invalid batch payload format: 'dependsOn' of request '{id}' must be an array."
                ));
            }
        };
        items.push(Item {
            id,
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            body: r.get("body").cloned().unwrap_or(Value::Null),
            depends,
            missing_content_type: r.get("body").is_some_and(|b| !b.is_null())
                && !r
                    .get("headers")
                    .and_then(Value::as_object)
                    .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("content-type"))),
        });
    }
    for it in &items {
        if let Some(d) = it.depends.iter().find(|d| !ids.contains(*d)) {
            return bad(format!(
                "Invalid batch payload format: request '{}' depends on unknown request '{d}'.",
                it.id
            ));
        }
    }
    let mut status: HashMap<String, u16> = HashMap::new();
    let mut responses: Vec<Option<Value>> = vec![None; items.len()];
    while status.len() < items.len() {
        let mut progressed = false;
        for (i, it) in items.iter().enumerate() {
            if status.contains_key(&it.id) || !it.depends.iter().all(|d| status.contains_key(d)) {
                continue;
            }
            progressed = true;
            let item_rid = uuid::Uuid::new_v4().to_string();
            let failed_dep = it
                .depends
                .iter()
                .any(|d| status.get(d).is_some_and(|st| *st >= 400));
            let resp = if failed_dep {
                GraphResponse::from_error(
                    &GraphError::new(
                        424,
                        "FailedDependency",
                        "The request was not executed because a request it depends on failed.",
                    ),
                    &item_rid,
                    crid,
                )
            } else if it.missing_content_type {
                GraphResponse::from_error(
                    &GraphError::new(
                        400,
                        "BadRequest",
                        "A request with a body must specify the Content-Type header.",
                    ),
                    &item_rid,
                    crid,
                )
            } else {
                s.requests.fetch_add(1, Ordering::Relaxed);
                run_batch_item(s, caller, &it.method, &it.url, &it.body, &item_rid, crid)
            };
            status.insert(it.id.clone(), resp.status);
            let mut headers = Map::new();
            if resp.body.is_some() {
                headers.insert("Content-Type".into(), json!("application/json"));
            }
            for (k, v) in &resp.headers {
                headers.insert(k.clone(), json!(v));
            }
            let mut out = json!({"id": it.id, "status": resp.status, "headers": headers});
            if let Some(b) = resp.body {
                out["body"] = b;
            } else if let Some(t) = resp.text {
                out["body"] = json!(t);
            }
            responses[i] = Some(out);
        }
        if !progressed {
            return bad("Invalid batch payload format: circular dependsOn.".into());
        }
    }
    tracing::debug!(items = items.len(), request_id = %rid, "batch executed");
    GraphResponse::json(
        200,
        json!({"responses": responses.into_iter().flatten().collect::<Vec<_>>()}),
    )
}

fn run_batch_item(
    s: &Shared,
    caller: &Caller,
    method: &str,
    url: &str,
    body: &Value,
    rid: &str,
    crid: &str,
) -> GraphResponse {
    if url.starts_with("http://") || url.starts_with("https://") {
        return GraphResponse::from_error(
            &GraphError::new(
                400,
                "BadRequest",
                "Batch request URLs must be relative to the version root.",
            ),
            rid,
            crid,
        );
    }
    let rel = url.trim_start_matches('/');
    let rel = rel.strip_prefix("v1.0/").unwrap_or(rel);
    let (path, query) = rel.split_once('?').unwrap_or((rel, ""));
    if path == "$batch" {
        return GraphResponse::from_error(
            &GraphError::new(
                400,
                "BadRequest",
                "Nested batch requests are not supported.",
            ),
            rid,
            crid,
        );
    }
    let mut extra = Vec::new();
    if is_write(method) {
        match s.admit_write(caller) {
            Ok(h) => extra = h,
            Err(e) => return GraphResponse::from_error(&e, rid, crid),
        }
    }
    let mut resp = match dispatch(s, method, path, query, body, None) {
        Ok(r) => r,
        Err(e) => GraphResponse::from_error(&e, rid, crid),
    };
    resp.headers.extend(extra);
    resp
}

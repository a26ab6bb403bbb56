//! HTTP layer: one reqwest client (rustls with the ring provider, verification on), bearer
//! tokens with refresh, retries with backoff and jitter for 5xx answers, timeouts and dropped
//! connections, `Retry-After` (fractional seconds and `retry-after-ms` too) on 429, and a
//! client-side write pacer (token bucket) set to the documented write quota.

use super::auth::{Credential, Token, fetch_token};
use super::settings::GraphSettings;
use crate::connectors::ConnectorError;
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Describes a transport error without any URL query or secret.
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() || e.is_body() {
        "connection dropped"
    } else if e.is_decode() {
        "malformed answer"
    } else {
        "transport error"
    };
    let mut msg = kind.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    if let Some(s) = src.take() {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
    }
    msg
}

/// Token bucket that keeps writes under the quota (capacity = quota, refill = quota/window).
#[derive(Debug)]
pub struct WritePacer {
    capacity: f64,
    per_sec: f64,
    state: Mutex<PacerState>,
}

#[derive(Debug)]
struct PacerState {
    tokens: f64,
    last: Instant,
    not_before: Instant,
}

impl WritePacer {
    /// A full bucket of `writes` per `window`.
    pub fn new(writes: u32, window: Duration) -> Self {
        let now = Instant::now();
        let capacity = f64::from(writes.max(1));
        Self {
            capacity,
            per_sec: capacity / window.as_secs_f64().max(0.001),
            state: Mutex::new(PacerState {
                tokens: capacity,
                last: now,
                not_before: now,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PacerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `n` write tokens, waiting as long as needed.
    pub async fn acquire(&self, n: u32) {
        let need = f64::from(n).min(self.capacity);
        loop {
            let wait = {
                let mut st = self.lock();
                let now = Instant::now();
                let dt = now.saturating_duration_since(st.last).as_secs_f64();
                st.tokens = (st.tokens + dt * self.per_sec).min(self.capacity);
                st.last = now;
                if now < st.not_before {
                    st.not_before - now
                } else if st.tokens >= need {
                    st.tokens -= need;
                    return;
                } else {
                    Duration::from_secs_f64((need - st.tokens) / self.per_sec)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The server asked for a pause (429 Retry-After): no write before `wait` has passed, and
    /// the bucket restarts empty.
    pub fn pause(&self, wait: Duration) {
        let mut st = self.lock();
        let until = Instant::now() + wait;
        if until > st.not_before {
            st.not_before = until;
        }
        st.tokens = 0.0;
    }

    /// The server reported its quota usage (`x-ms-throttle-limit-percentage`, 0..1): keep no
    /// more burst than the server has left, so the client follows the server's bucket.
    pub fn observe_usage(&self, used: f64) {
        if !(0.0..=1.5).contains(&used) {
            return;
        }
        let left = ((1.0 - used).max(0.0)) * self.capacity;
        let mut st = self.lock();
        if st.tokens > left {
            st.tokens = left;
        }
    }
}

/// One answer from Graph.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body (JSON; `Null` when empty).
    pub body: Value,
    /// `Retry-After` in seconds when present.
    pub retry_after: Option<Duration>,
}

impl Answer {
    /// The OData error code and message, when the body is an error.
    pub fn error(&self) -> (String, String) {
        let e = &self.body["error"];
        (
            e["code"].as_str().unwrap_or("").to_string(),
            e["message"].as_str().unwrap_or("").to_string(),
        )
    }
}

/// Parses `Retry-After` (delta seconds, fractional allowed) or `retry-after-ms`.
pub fn parse_retry_after(get: impl Fn(&str) -> Option<String>) -> Option<Duration> {
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = get("retry-after")?;
    let s = v.trim().parse::<f64>().ok()?;
    (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s))
}

/// Why a request failed at the transport level.
#[derive(Debug)]
pub enum SendError {
    /// The answer never came (timeout, dropped connection): the request may or may not have
    /// been applied.
    Uncertain(String),
    /// A failure of the whole call (auth, throttling budget, ...).
    Fatal(ConnectorError),
}

/// The Graph client: HTTP, tokens, pacing and retry policy.
pub struct GraphHttp {
    /// Settings.
    pub settings: GraphSettings,
    client: reqwest::Client,
    cred: Credential,
    token: tokio::sync::Mutex<Option<Token>>,
    /// The write pacer.
    pub pacer: WritePacer,
    /// 429 answers seen (whole requests and batch items).
    pub throttled: std::sync::atomic::AtomicU64,
}

impl GraphHttp {
    /// Builds the client (installs the rustls ring provider once).
    pub fn new(settings: GraphSettings, cred: Credential) -> Result<Self, ConnectorError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms.max(100)))
            .connect_timeout(Duration::from_millis(
                settings.timeout_ms.clamp(100, 30_000),
            ))
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| ConnectorError::Config(format!("HTTP client: {}", describe(&e))))?;
        let pacer = WritePacer::new(
            settings.write_quota,
            Duration::from_millis(settings.write_quota_window_ms),
        );
        Ok(Self {
            settings,
            client,
            cred,
            token: tokio::sync::Mutex::new(None),
            pacer,
            throttled: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// A valid access token (cached; refreshed shortly before expiry).
    pub async fn token(&self, force: bool) -> Result<String, ConnectorError> {
        let mut g = self.token.lock().await;
        if !force
            && let Some(t) = g.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        let mut attempt = 0;
        let t = loop {
            match fetch_token(&self.client, &self.settings, &self.cred).await {
                Ok(t) => break t,
                Err(ConnectorError::Connection { target, message })
                    if attempt < self.settings.max_retries =>
                {
                    tracing::warn!(%target, %message, attempt, "graph: token request failed, retrying");
                    attempt += 1;
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let v = t.value.clone();
        *g = Some(t);
        Ok(v)
    }

    /// Exponential backoff with full jitter, bounded by `max_wait_ms`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self.settings.backoff_ms.max(1) as f64;
        let cap = self.settings.max_wait_ms.max(1) as f64;
        let exp = (base * 2f64.powi(attempt.min(20) as i32)).min(cap);
        let jitter: f64 = rand::random::<f64>();
        Duration::from_secs_f64((exp * (0.5 + 0.5 * jitter)) / 1000.0)
    }

    /// Caps a server-requested wait.
    pub fn cap_wait(&self, d: Duration) -> Duration {
        d.min(Duration::from_millis(self.settings.max_wait_ms))
    }

    /// The absolute URL of a Graph path (`/users?...`) or an absolute nextLink.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.settings.graph_url.trim_end_matches('/'), path)
        }
    }

    /// One HTTP exchange with a fresh-or-cached token; refreshes once on 401.
    async fn exchange(
        &self,
        method: &reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Answer, SendError> {
        let mut refreshed = false;
        loop {
            let token = self.token(refreshed).await.map_err(SendError::Fatal)?;
            let mut rb = self
                .client
                .request(method.clone(), url)
                .bearer_auth(&token)
                .header("ConsistencyLevel", "eventual");
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => return Err(SendError::Uncertain(describe(&e))),
            };
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let get = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            if let Some(p) = get("x-ms-throttle-limit-percentage").and_then(|v| v.parse().ok()) {
                self.pacer.observe_usage(p);
            }
            let retry_after = parse_retry_after(get);
            let text = match resp.text().await {
                Ok(t) => t,
                Err(e) => return Err(SendError::Uncertain(describe(&e))),
            };
            let body = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            if status == 401 && !refreshed {
                tracing::info!("graph: 401, refreshing the access token");
                refreshed = true;
                continue;
            }
            if status == 401 {
                let msg = body["error"]["code"].as_str().unwrap_or("401").to_string();
                return Err(SendError::Fatal(ConnectorError::Authentication(format!(
                    "Graph rejected the access token: {msg}"
                ))));
            }
            return Ok(Answer {
                status,
                body,
                retry_after,
            });
        }
    }

    /// A request with the full retry policy: 429 (Retry-After), 5xx, timeouts and dropped
    /// connections are retried. Only for requests that are safe to repeat (reads, `$batch`
    /// calls whose items are checked afterwards are handled by the caller).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ConnectorError> {
        let url = self.url(path);
        let mut failures = 0u32;
        let mut throttles = 0u32;
        loop {
            match self.exchange(&method, &url, body).await {
                Ok(a) if a.status == 429 => {
                    self.throttled
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    throttles += 1;
                    let wait =
                        self.cap_wait(a.retry_after.unwrap_or_else(|| self.backoff(throttles)));
                    if throttles > self.settings.max_throttle_retries {
                        return Err(ConnectorError::Throttled {
                            retry_after_secs: wait.as_secs().max(1),
                        });
                    }
                    tracing::debug!(wait_ms = wait.as_millis() as u64, "graph: 429, waiting");
                    if method != reqwest::Method::GET {
                        self.pacer.pause(wait);
                    }
                    tokio::time::sleep(wait).await;
                }
                Ok(a) if a.status >= 500 && failures < self.settings.max_retries => {
                    failures += 1;
                    let wait = a
                        .retry_after
                        .map(|w| self.cap_wait(w))
                        .unwrap_or_else(|| self.backoff(failures));
                    tracing::warn!(
                        status = a.status,
                        attempt = failures,
                        "graph: server error, retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Ok(a) => return Ok(a),
                Err(SendError::Uncertain(m)) if failures < self.settings.max_retries => {
                    failures += 1;
                    tracing::warn!(message = %m, attempt = failures, "graph: request failed, retrying");
                    tokio::time::sleep(self.backoff(failures)).await;
                }
                Err(SendError::Uncertain(m)) => {
                    return Err(ConnectorError::Connection {
                        target: self.settings.graph_url.clone(),
                        message: m,
                    });
                }
                Err(SendError::Fatal(e)) => return Err(e),
            }
        }
    }

    /// A GET that must succeed (2xx), as JSON.
    pub async fn get_json(&self, path: &str) -> Result<Value, ConnectorError> {
        let a = self.send(reqwest::Method::GET, path, None).await?;
        if (200..300).contains(&a.status) {
            return Ok(a.body);
        }
        Err(answer_error(&a))
    }

    /// One `$batch` call (no retry of the call itself: the caller decides per item).
    pub async fn batch_once(&self, requests: &[Value]) -> Result<Answer, SendError> {
        let body = serde_json::json!({ "requests": requests });
        let url = self.url("/$batch");
        self.exchange(&reqwest::Method::POST, &url, Some(&body))
            .await
    }
}

/// Maps a failed answer to a connector error for whole-call failures.
pub fn answer_error(a: &Answer) -> ConnectorError {
    let (code, msg) = a.error();
    match a.status {
        401 | 403 => ConnectorError::Authentication(format!("{} {code}: {msg}", a.status)),
        400 if code.eq_ignore_ascii_case("syncStateNotFound") => {
            ConnectorError::WatermarkExpired(format!("{code}: {msg}"))
        }
        429 => ConnectorError::Throttled {
            retry_after_secs: a.retry_after.map(|d| d.as_secs().max(1)).unwrap_or(1),
        },
        _ => ConnectorError::Protocol(format!("Graph answered {} {code}: {msg}", a.status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            parse_retry_after(h(&[("Retry-After", "0.250")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_retry_after(h(&[("retry-after", "2"), ("retry-after-ms", "1500")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after(h(&[("retry-after", "soon")])), None);
    }

    #[tokio::test]
    async fn pacer_follows_the_server_usage_and_pauses() {
        let p = WritePacer::new(100, Duration::from_millis(100));
        // The server says 90 % of its quota is used: only 10 writes of burst are left.
        p.observe_usage(0.9);
        let t = Instant::now();
        p.acquire(10).await;
        p.acquire(20).await;
        assert!(
            t.elapsed() >= Duration::from_millis(15),
            "{:?}",
            t.elapsed()
        );
        // A 429 pause holds every write back.
        p.pause(Duration::from_millis(50));
        let t = Instant::now();
        p.acquire(1).await;
        assert!(
            t.elapsed() >= Duration::from_millis(45),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn pacer_keeps_the_rate() {
        let p = WritePacer::new(100, Duration::from_millis(100));
        let t = Instant::now();
        for _ in 0..30 {
            p.acquire(10).await;
        }
        // 100 burst + 200 more at 1000/s = about 200 ms.
        let el = t.elapsed();
        assert!(el >= Duration::from_millis(180), "{el:?}");
        assert!(el < Duration::from_millis(600), "{el:?}");
    }
}

//! Export through `$batch`.
//!
//! One `export` call runs in two phases:
//!
//! 1. **Objects.** Creates (after an anchor lookup: a live object with the anchor is updated
//!    instead, a soft-deleted one is restored and then updated, optionally a soft match),
//!    property updates and deletes. New groups bind up to 20 already-known members in their
//!    `POST`.
//! 2. **References.** Group members (`members@odata.bind`, at most 20 per `PATCH`, the chunks
//!    of one group chained with `dependsOn`; removals through `DELETE .../members/{id}/$ref`)
//!    and managers, now that the ids of the objects created in phase 1 are known (the engine
//!    names them by the placeholder DNs it chose).
//!
//! Requests are packed into `$batch` calls of at most 20; the requests of one object are
//! chained with `dependsOn`. Each item has its own result: 429 items wait for their
//! `Retry-After` and go again, 5xx items are retried with backoff, other failures become that
//! object's result while the rest of the batch goes on. A batch whose answer is lost (timeout,
//! dropped connection) is repeated; creates in it first look their anchor up, so nothing is
//! created twice.

use super::http::{Answer, GraphHttp, SendError};
use super::settings::{GraphSettings, SoftMatch};
use super::{BOOLEANS, Kind, MULTI_VALUED, parse_synthetic};
use crate::connectors::{
    ConnectorError, ExportErrorKind, ExportOperation, ExportOutcome, ExportRequest, ExportResult,
};
use crate::model::{AttributeChange, Attributes, Dn, Value};
use base64::Engine as _;
use serde_json::{Map, Value as Json, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Most member references Graph accepts in one `members@odata.bind`.
const BIND_MAX: usize = 20;
/// Values per `$filter ... in (...)` lookup.
const LOOKUP_CHUNK: usize = 15;

/// Properties Graph does not let a client write (left out of bodies).
const READ_ONLY: &[&str] = &[
    "id",
    "proxyAddresses",
    "imAddresses",
    "createdDateTime",
    "deletedDateTime",
    "onPremisesSyncEnabled",
    "onPremisesSecurityIdentifier",
    "securityIdentifier",
];

// ---------------------------------------------------------------------------------------------
// Operations and the $batch executor
// ---------------------------------------------------------------------------------------------

/// One Graph request of a chain.
#[derive(Debug, Clone)]
struct Op {
    method: &'static str,
    url: String,
    body: Option<Json>,
    /// Status codes that count as success although they are errors (idempotent repeats).
    tolerate: Tolerate,
    /// For a create: a lookup that finds the object if an earlier attempt created it.
    create_check: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tolerate {
    None,
    /// 404: already deleted / already removed / nothing to restore.
    NotFound,
    /// 400 "added object references already exist".
    RefExists,
}

impl Op {
    fn new(method: &'static str, url: String, body: Option<Json>) -> Op {
        Op {
            method,
            url,
            body,
            tolerate: Tolerate::None,
            create_check: None,
        }
    }
    fn tolerate(mut self, t: Tolerate) -> Op {
        self.tolerate = t;
        self
    }
    fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// Result of a chain: the answer of each op, or the failure.
type ChainResult = Result<Vec<Json>, (ExportErrorKind, String)>;

struct ChainState {
    ops: Vec<Op>,
    next: usize,
    answers: Vec<Json>,
    failures: u32,
    throttles: u32,
    /// The next op is a create whose earlier attempt may have been applied.
    verify: bool,
    done: Option<ChainResult>,
}

fn classify(a: &Answer) -> (ExportErrorKind, String) {
    let (code, msg) = a.error();
    let text = format!("Graph answered {} {code}: {msg}", a.status);
    let kind = match a.status {
        400 if msg.contains("Another object with the same value for property") => {
            ExportErrorKind::AttributeValueMustBeUnique
        }
        400 | 422 => ExportErrorKind::IdentityDataValidationFailed,
        401 | 403 => ExportErrorKind::AccessDenied,
        404 => ExportErrorKind::ObjectNotFound,
        409 => ExportErrorKind::ObjectAlreadyExists,
        429 | 500..=599 => ExportErrorKind::Transient,
        _ => ExportErrorKind::Other,
    };
    (kind, text)
}

fn tolerated(op: &Op, a: &Answer) -> bool {
    match op.tolerate {
        Tolerate::None => false,
        Tolerate::NotFound => a.status == 404,
        Tolerate::RefExists => {
            a.status == 400
                && a.error()
                    .1
                    .contains("added object references already exist")
        }
    }
}

/// Header lookup in a batch item's `headers` object (case-insensitive).
fn item_header(h: &Json, name: &str) -> Option<String> {
    h.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_f64().map(|f| f.to_string()))
        })
}

/// Runs chains of requests through `$batch` until each one succeeded or failed.
async fn execute(
    http: &GraphHttp,
    s: &GraphSettings,
    chains: Vec<Vec<Op>>,
) -> Result<Vec<ChainResult>, ConnectorError> {
    let mut st: Vec<ChainState> = chains
        .into_iter()
        .map(|ops| ChainState {
            done: if ops.is_empty() {
                Some(Ok(Vec::new()))
            } else {
                None
            },
            ops,
            next: 0,
            answers: Vec::new(),
            failures: 0,
            throttles: 0,
            verify: false,
        })
        .collect();
    let per_batch = s.batch_size.clamp(1, 20);
    loop {
        // Creates whose earlier attempt may have gone through: look them up first.
        for c in st.iter_mut().filter(|c| c.done.is_none() && c.verify) {
            c.verify = false;
            let Some(check) = c.ops[c.next].create_check.clone() else {
                continue;
            };
            match http.get_json(&check).await {
                Ok(v) => {
                    if let Some(found) = v["value"].as_array().and_then(|a| a.first()) {
                        tracing::info!(url = %c.ops[c.next].url, "graph: create had been applied; not repeating it");
                        c.answers.push(found.clone());
                        c.next += 1;
                        if c.next == c.ops.len() {
                            c.done = Some(Ok(std::mem::take(&mut c.answers)));
                        }
                    }
                }
                Err(e) => {
                    c.done = Some(Err((ExportErrorKind::Transient, e.to_string())));
                }
            }
        }
        // Pack the remaining ops into batches: each chain's rest, in order, dependsOn-linked.
        let mut batches: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut cur: Vec<(usize, usize)> = Vec::new();
        for (ci, c) in st.iter().enumerate() {
            if c.done.is_some() {
                continue;
            }
            let rest = c.ops.len() - c.next;
            let take = rest.min(per_batch);
            if cur.len() + take > per_batch {
                batches.push(std::mem::take(&mut cur));
            }
            for k in 0..take {
                cur.push((ci, c.next + k));
            }
        }
        if !cur.is_empty() {
            batches.push(cur);
        }
        if batches.is_empty() {
            break;
        }
        let mut longest_wait = Duration::ZERO;
        for group in batches.chunks(s.concurrency.max(1)) {
            let futs = group.iter().map(|b| {
                let reqs: Vec<Json> = b
                    .iter()
                    .map(|&(ci, oi)| {
                        let op = &st[ci].ops[oi];
                        let mut r = json!({
                            "id": format!("{ci}.{oi}"),
                            "method": op.method,
                            "url": op.url,
                        });
                        if let Some(body) = &op.body {
                            r["body"] = body.clone();
                            r["headers"] = json!({"Content-Type": "application/json"});
                        }
                        if oi > st[ci].next {
                            r["dependsOn"] = json!([format!("{ci}.{}", oi - 1)]);
                        }
                        r
                    })
                    .collect();
                let writes = b
                    .iter()
                    .filter(|&&(ci, oi)| st[ci].ops[oi].is_write())
                    .count() as u32;
                async move {
                    if writes > 0 {
                        http.pacer.acquire(writes).await;
                    }
                    http.batch_once(&reqs).await
                }
            });
            let answers = futures_util::future::join_all(futs).await;
            for (b, ans) in group.iter().zip(answers) {
                let w = apply_batch(http, s, &mut st, b, ans)?;
                longest_wait = longest_wait.max(w);
            }
        }
        if !longest_wait.is_zero() {
            tokio::time::sleep(longest_wait).await;
        }
    }
    Ok(st
        .into_iter()
        .map(|c| {
            c.done
                .unwrap_or_else(|| Err((ExportErrorKind::Other, "not executed".into())))
        })
        .collect())
}

/// Applies the answer of one `$batch` call; returns how long to wait before the next round.
fn apply_batch(
    http: &GraphHttp,
    s: &GraphSettings,
    st: &mut [ChainState],
    b: &[(usize, usize)],
    ans: Result<Answer, SendError>,
) -> Result<Duration, ConnectorError> {
    let chains: Vec<usize> = {
        let mut v: Vec<usize> = b.iter().map(|&(ci, _)| ci).collect();
        v.dedup();
        v
    };
    let whole_failure =
        |st: &mut [ChainState], kind: ExportErrorKind, msg: String, uncertain: bool| {
            for &ci in &chains {
                let c = &mut st[ci];
                c.failures += 1;
                if c.failures > s.max_retries {
                    c.done = Some(Err((kind, msg.clone())));
                } else if uncertain && c.ops[c.next].create_check.is_some() {
                    c.verify = true;
                }
            }
        };
    let a = match ans {
        Ok(a) => a,
        Err(SendError::Uncertain(m)) => {
            tracing::warn!(message = %m, "graph: $batch answer lost; repeating it");
            whole_failure(st, ExportErrorKind::Transient, m, true);
            let f = chains.iter().map(|&ci| st[ci].failures).max().unwrap_or(1);
            return Ok(http.backoff(f));
        }
        Err(SendError::Fatal(e)) => return Err(e),
    };
    if a.status == 429 {
        http.throttled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let wait = http.cap_wait(a.retry_after.unwrap_or_else(|| http.backoff(1)));
        http.pacer.pause(wait);
        return Ok(wait);
    }
    if a.status >= 500 || !a.body["responses"].is_array() {
        let (_, msg) = classify(&a);
        whole_failure(st, ExportErrorKind::Transient, msg, true);
        let f = chains.iter().map(|&ci| st[ci].failures).max().unwrap_or(1);
        return Ok(http.backoff(f));
    }
    let mut by_id: HashMap<String, &Json> = HashMap::new();
    if let Some(rs) = a.body["responses"].as_array() {
        for r in rs {
            let id = r["id"]
                .as_str()
                .map(str::to_string)
                .or_else(|| r["id"].as_u64().map(|n| n.to_string()));
            if let Some(id) = id {
                by_id.insert(id, r);
            }
        }
    }
    let mut wait = Duration::ZERO;
    let mut usage: Option<f64> = None;
    for &(ci, oi) in b {
        let c = &mut st[ci];
        if c.done.is_some() || oi != c.next {
            continue; // an earlier op of this chain did not succeed in this batch
        }
        let Some(r) = by_id.get(&format!("{ci}.{oi}")) else {
            c.failures += 1;
            if c.failures > s.max_retries {
                c.done = Some(Err((
                    ExportErrorKind::Transient,
                    "no answer for the request in the $batch response".into(),
                )));
            }
            continue;
        };
        let status = r["status"].as_u64().unwrap_or(0) as u16;
        let headers = &r["headers"];
        if let Some(p) = item_header(headers, "x-ms-throttle-limit-percentage")
            .and_then(|v| v.parse::<f64>().ok())
        {
            usage = Some(usage.map_or(p, |u: f64| u.max(p)));
        }
        let item = Answer {
            status,
            body: r["body"].clone(),
            retry_after: super::http::parse_retry_after(|k| item_header(headers, k)),
        };
        let op = &c.ops[oi];
        if (200..300).contains(&status) || tolerated(op, &item) {
            c.answers.push(item.body);
            c.next += 1;
            if c.next == c.ops.len() {
                c.done = Some(Ok(std::mem::take(&mut c.answers)));
            }
            continue;
        }
        match status {
            424 => {} // its dependency failed in this batch and is handled on its own
            429 => {
                http.throttled
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                c.throttles += 1;
                let w = http.cap_wait(
                    item.retry_after
                        .unwrap_or_else(|| http.backoff(c.throttles)),
                );
                wait = wait.max(w);
                if c.throttles > s.max_throttle_retries {
                    c.done = Some(Err((
                        ExportErrorKind::Transient,
                        format!("throttled {} times (429); retry later", c.throttles),
                    )));
                }
            }
            500..=599 | 0 => {
                c.failures += 1;
                wait = wait.max(http.backoff(c.failures));
                if c.failures > s.max_retries {
                    c.done = Some(Err(classify(&item)));
                } else if op.create_check.is_some() && status != 503 {
                    // A 5xx on a create may still have been applied.
                    c.verify = true;
                }
            }
            _ => c.done = Some(Err(classify(&item))),
        }
    }
    if let Some(u) = usage {
        http.pacer.observe_usage(u);
    }
    if !wait.is_zero() {
        http.pacer.pause(wait);
    }
    Ok(wait)
}

// ---------------------------------------------------------------------------------------------
// Building request bodies
// ---------------------------------------------------------------------------------------------

fn text_of(v: &Value) -> String {
    match v {
        Value::Bin(b) => base64::engine::general_purpose::STANDARD.encode(b),
        other => other.to_text(),
    }
}

fn json_of(name: &str, vals: &[Value]) -> Json {
    if MULTI_VALUED.contains(&name) {
        return Json::Array(vals.iter().map(|v| Json::String(text_of(v))).collect());
    }
    let Some(v) = vals.first() else {
        return Json::Null;
    };
    if BOOLEANS.contains(&name) {
        return match v {
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::Bool(*i != 0),
            other => Json::Bool(matches!(
                other.to_text().to_ascii_lowercase().as_str(),
                "true" | "1" | "yes" | "enabled"
            )),
        };
    }
    match v {
        Value::Int(i) => json!(i),
        Value::Bool(b) => json!(b),
        other => Json::String(text_of(other)),
    }
}

/// True for attributes handled outside the property body.
fn is_special(name: &str) -> bool {
    matches!(name, "member" | "manager" | "password") || READ_ONLY.contains(&name)
}

/// The Graph property name of an attribute.
fn prop_name(s: &GraphSettings, attr: &str) -> String {
    if attr == s.anchor_attribute {
        s.anchor_extension()
    } else {
        attr.to_string()
    }
}

/// A mailNickname Graph accepts, derived from a UPN local part or a display name.
fn nickname(from: &str) -> String {
    let n: String = from
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    let n = n.trim_matches('.').to_string();
    if n.is_empty() {
        format!("dirsync{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    } else {
        n
    }
}

/// A random strong password (upper, lower, digit and symbol; 20 characters).
fn random_password() -> String {
    const SETS: [&[u8]; 4] = [
        b"ABCDEFGHJKLMNPQRSTUVWXYZ",
        b"abcdefghijkmnopqrstuvwxyz",
        b"23456789",
        b"!#%+-=?@^_",
    ];
    let mut out: Vec<u8> = Vec::with_capacity(20);
    for i in 0..20 {
        let set = SETS[i % 4];
        let k = rand::random::<u32>() as usize % set.len();
        out.push(set[k]);
    }
    // Shuffle so the character classes are not in a fixed order.
    for i in (1..out.len()).rev() {
        let j = rand::random::<u32>() as usize % (i + 1);
        out.swap(i, j);
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A stable anchor for an add that carries none: derived from the DN the engine chose.
fn derived_anchor(dn: &Dn) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, dn.normalized().as_bytes());
    let hex: String = d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("dn{hex}")
}

/// The value kept in the DN extension: a hash of the DN the engine uses for the object, so a
/// reference by that DN resolves in any later session.
pub fn dn_key(dn: &Dn) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, dn.normalized().as_bytes());
    d.as_ref()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn valid_immutable_id(v: &str) -> bool {
    !v.is_empty() && v.len() < 60 && !v.contains('$') && !v.contains('_')
}

/// The property body of a create.
fn create_body(
    s: &GraphSettings,
    kind: Kind,
    attrs: &Attributes,
    anchor: &str,
    dn: &Dn,
) -> Map<String, Json> {
    let mut b = Map::new();
    for (name, vals) in attrs {
        if is_special(name) || vals.is_empty() {
            continue;
        }
        if kind == Kind::Group && name == "mail" {
            continue; // read-only on groups
        }
        let p = prop_name(s, name);
        b.insert(p.clone(), json_of(&p, vals));
    }
    b.insert(s.anchor_extension(), Json::String(anchor.to_string()));
    b.insert(s.dn_extension(), Json::String(dn_key(dn)));
    match kind {
        Kind::User => {
            let upn = b
                .get("userPrincipalName")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string();
            let local = upn.split('@').next().unwrap_or("").to_string();
            b.entry("accountEnabled").or_insert(Json::Bool(true));
            if !b.contains_key("displayName") {
                b.insert("displayName".into(), Json::String(local.clone()));
            }
            if !b.contains_key("mailNickname") {
                b.insert("mailNickname".into(), Json::String(nickname(&local)));
            }
            let pw = attrs
                .get("password")
                .and_then(|v| v.first())
                .map(Value::to_text)
                .unwrap_or_else(random_password);
            b.insert(
                "passwordProfile".into(),
                json!({"password": pw, "forceChangePasswordNextSignIn": true}),
            );
            if s.set_immutable_id
                && !b.contains_key("onPremisesImmutableId")
                && valid_immutable_id(anchor)
            {
                b.insert("onPremisesImmutableId".into(), Json::String(anchor.into()));
            }
        }
        Kind::Group => {
            b.entry("mailEnabled").or_insert(Json::Bool(false));
            b.entry("securityEnabled").or_insert(Json::Bool(true));
            if !b.contains_key("mailNickname") {
                let dn = b
                    .get("displayName")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string();
                b.insert("mailNickname".into(), Json::String(nickname(&dn)));
            }
        }
        _ => {}
    }
    b
}

/// The PATCH body that brings a matched or restored object to the wanted attributes.
fn match_body(
    s: &GraphSettings,
    kind: Kind,
    attrs: &Attributes,
    anchor: &str,
    dn: &Dn,
) -> Map<String, Json> {
    let mut b = Map::new();
    for (name, vals) in attrs {
        if is_special(name) || vals.is_empty() || (kind == Kind::Group && name == "mail") {
            continue;
        }
        let p = prop_name(s, name);
        b.insert(p.clone(), json_of(&p, vals));
    }
    b.insert(s.anchor_extension(), Json::String(anchor.to_string()));
    b.insert(s.dn_extension(), Json::String(dn_key(dn)));
    b
}

// ---------------------------------------------------------------------------------------------
// The export call
// ---------------------------------------------------------------------------------------------

/// What phase 2 must do for one request.
#[derive(Default)]
struct RefWork {
    /// Member DNs to add.
    add_members: Vec<String>,
    /// Member DNs to remove.
    remove_members: Vec<String>,
    /// Replace the whole member list with these DNs (needs the current members).
    replace_members: Option<Vec<String>>,
    /// Manager: Some(Some(dn)) set, Some(None) clear.
    manager: Option<Option<String>>,
}

impl RefWork {
    fn is_empty(&self) -> bool {
        self.add_members.is_empty()
            && self.remove_members.is_empty()
            && self.replace_members.is_none()
            && self.manager.is_none()
    }
}

fn ref_texts(vals: &[Value]) -> Vec<String> {
    vals.iter().map(Value::to_text).collect()
}

struct Job<'a> {
    req: &'a ExportRequest,
    kind: Kind,
    id: Option<String>,
    refs: RefWork,
    outcome: Option<ExportOutcome>,
}

fn failed(kind: ExportErrorKind, message: impl Into<String>) -> ExportOutcome {
    ExportOutcome::Failed {
        kind,
        message: message.into(),
    }
}

fn quote(v: &str) -> String {
    v.replace('\'', "''")
}

/// Looks objects up by the value of one property (`in` filters, chunked); returns value -> id.
async fn lookup(
    http: &GraphHttp,
    path: &str,
    prop: &str,
    values: &[String],
) -> Result<HashMap<String, String>, ConnectorError> {
    let mut out = HashMap::new();
    for chunk in values.chunks(LOOKUP_CHUNK) {
        let list = chunk
            .iter()
            .map(|v| format!("'{}'", super::auth::urlencode(&quote(v))))
            .collect::<Vec<_>>()
            .join(",");
        let url = format!("{path}?$filter={prop}%20in%20({list})&$select=id,{prop}&$top=999");
        let v = http.get_json(&url).await?;
        for it in v["value"].as_array().into_iter().flatten() {
            if let (Some(id), Some(val)) = (it["id"].as_str(), it[prop].as_str()) {
                out.insert(val.to_string(), id.to_string());
                out.insert(val.to_ascii_lowercase(), id.to_string());
            }
        }
    }
    Ok(out)
}

/// Makes sure the anchor extension is registered on the application.
async fn ensure_extension(http: &GraphHttp, s: &GraphSettings) -> Result<(), ConnectorError> {
    let app = http
        .send(
            reqwest::Method::GET,
            &format!("/applications(appId='{}')?$select=id", s.client_id),
            None,
        )
        .await?;
    let Some(app_id) = app.body["id"].as_str().filter(|_| app.status == 200) else {
        tracing::warn!(
            status = app.status,
            "graph: cannot read the application; assuming the anchor extension exists"
        );
        return Ok(());
    };
    let list = http
        .get_json(&format!("/applications/{app_id}/extensionProperties"))
        .await?;
    for (full, short) in [
        (s.anchor_extension(), s.anchor_short_name()),
        (s.dn_extension(), s.dn_short_name()),
    ] {
        let exists = list["value"].as_array().into_iter().flatten().any(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(&full))
        });
        if !exists {
            register_extension(http, app_id, &full, &short).await?;
        }
    }
    Ok(())
}

async fn register_extension(
    http: &GraphHttp,
    app_id: &str,
    full: &str,
    short: &str,
) -> Result<(), ConnectorError> {
    let body = json!({"name": short, "dataType": "String",
        "targetObjects": ["User", "Group"]});
    let a = http
        .send(
            reqwest::Method::POST,
            &format!("/applications/{app_id}/extensionProperties"),
            Some(&body),
        )
        .await?;
    // A repeated POST (answer lost) finds the extension there already.
    let exists_now = a.status == 409
        || (a.status == 400 && a.error().1.to_ascii_lowercase().contains("already"));
    if !(200..300).contains(&a.status) && !exists_now {
        return Err(super::http::answer_error(&a));
    }
    tracing::info!(extension = %full, "graph: registered a directory extension");
    Ok(())
}

/// What an export step remembers between `export` calls of one connector instance.
#[derive(Debug, Default)]
pub struct ExportState {
    /// DNs the engine used for objects created here (placeholders) -> kind and object id.
    pub created: HashMap<String, (Kind, String)>,
    /// Whether the anchor extension is known to exist.
    pub extension_ready: bool,
    /// Snapshot of every anchor in the tenant, taken once for large exports.
    pub index: Option<AnchorIndex>,
}

/// Anchor -> object id for live and soft-deleted users and groups: one paged read of the
/// tenant replaces one `$filter` lookup per 15 creates when an export step creates many
/// objects (an initial export). Kept current with what this connector writes.
#[derive(Debug, Default)]
pub struct AnchorIndex {
    live: HashMap<(Kind, String), String>,
    deleted: HashMap<(Kind, String), String>,
    by_id: HashMap<String, (Kind, String)>,
}

impl AnchorIndex {
    async fn load(http: &GraphHttp, s: &GraphSettings) -> Result<AnchorIndex, ConnectorError> {
        let ext = s.anchor_extension();
        let mut ix = AnchorIndex::default();
        for kind in [Kind::User, Kind::Group] {
            for (deleted, base) in [
                (false, format!("/{}", kind.collection())),
                (true, format!("/directory/deletedItems/{}", kind.cast())),
            ] {
                let mut next = Some(format!("{base}?$select=id,{ext}&$top=999"));
                while let Some(p) = next.take() {
                    let v = http.get_json(&p).await?;
                    for it in v["value"].as_array().into_iter().flatten() {
                        if let (Some(id), Some(a)) = (it["id"].as_str(), it[&ext].as_str()) {
                            let key = (kind, a.to_string());
                            ix.by_id.insert(id.to_string(), key.clone());
                            if deleted {
                                ix.deleted.insert(key, id.to_string());
                            } else {
                                ix.live.insert(key, id.to_string());
                            }
                        }
                    }
                    next = v["@odata.nextLink"].as_str().map(str::to_string);
                }
            }
        }
        tracing::info!(
            live = ix.live.len(),
            deleted = ix.deleted.len(),
            "graph: anchor snapshot taken"
        );
        Ok(ix)
    }

    fn record_live(&mut self, kind: Kind, anchor: &str, id: &str) {
        let key = (kind, anchor.to_string());
        self.deleted.remove(&key);
        self.live.insert(key.clone(), id.to_string());
        self.by_id.insert(id.to_string(), key);
    }

    fn record_deleted(&mut self, id: &str) {
        if let Some(key) = self.by_id.get(id).cloned() {
            self.live.remove(&key);
            self.deleted.insert(key, id.to_string());
        }
    }
}

/// Runs one export call.
pub async fn run(
    http: &GraphHttp,
    s: &GraphSettings,
    state: &mut ExportState,
    batch: &[ExportRequest],
) -> Result<Vec<ExportResult>, ConnectorError> {
    let created = &mut state.created;
    let extension_ready = &mut state.extension_ready;
    let mut jobs: Vec<Job> = Vec::with_capacity(batch.len());
    for req in batch {
        let kind = Kind::from_object_type(&req.object_type);
        let mut job = Job {
            req,
            kind: kind.unwrap_or(Kind::Contact),
            id: req
                .anchor
                .clone()
                .or_else(|| parse_synthetic(&req.dn).map(|(_, id)| id)),
            refs: RefWork::default(),
            outcome: None,
        };
        match kind {
            Some(Kind::Contact) => {
                job.outcome = Some(failed(
                    ExportErrorKind::NotSupported,
                    "contacts are read-only in Microsoft Graph",
                ))
            }
            Some(Kind::Device) => {
                job.outcome = Some(failed(
                    ExportErrorKind::NotSupported,
                    "devices are read-only for dirsync in Microsoft Graph",
                ))
            }
            None => {
                job.outcome = Some(failed(
                    ExportErrorKind::NotSupported,
                    format!(
                        "object type '{}' cannot be written to Microsoft Graph",
                        req.object_type
                    ),
                ))
            }
            _ => {}
        }
        jobs.push(job);
    }
    let writes_props = jobs
        .iter()
        .any(|j| j.outcome.is_none() && !matches!(j.req.operation, ExportOperation::Delete));
    if writes_props && !*extension_ready {
        ensure_extension(http, s).await?;
        *extension_ready = true;
    }

    // References by DNs this session has not seen: find them by the DN extension.
    let mut unknown: Vec<Dn> = Vec::new();
    let adding: HashSet<String> = jobs
        .iter()
        .filter(|j| matches!(j.req.operation, ExportOperation::Add { .. }))
        .map(|j| j.req.dn.normalized())
        .collect();
    for j in jobs.iter().filter(|j| j.outcome.is_none()) {
        let vals: Vec<&Value> = match &j.req.operation {
            ExportOperation::Add { attributes } => ["member", "manager"]
                .iter()
                .flat_map(|n| attributes.get(*n).into_iter().flatten())
                .collect(),
            ExportOperation::Update { changes, .. } => changes
                .iter()
                .filter(|c| matches!(c.name(), "member" | "manager"))
                .flat_map(|c| match c {
                    AttributeChange::Add { values, .. }
                    | AttributeChange::Remove { values, .. }
                    | AttributeChange::Replace { values, .. } => values.iter(),
                })
                .collect(),
            ExportOperation::Delete => Vec::new(),
        };
        for v in vals {
            if let Ok(dn) = Dn::parse(&v.to_text()) {
                let n = dn.normalized();
                if !adding.contains(&n)
                    && !created.contains_key(&n)
                    && parse_synthetic(&dn).is_none()
                    && !unknown.contains(&dn)
                {
                    unknown.push(dn);
                }
            }
        }
    }
    if !unknown.is_empty() {
        let keys: Vec<String> = unknown.iter().map(dn_key).collect();
        let dn_ext = s.dn_extension();
        for kind in [Kind::User, Kind::Group] {
            let found = lookup(http, &format!("/{}", kind.collection()), &dn_ext, &keys).await?;
            for dn in &unknown {
                if let Some(id) = found.get(&dn_key(dn)) {
                    created.insert(dn.normalized(), (kind, id.clone()));
                }
            }
        }
    }

    // ---- Phase 1: objects ----
    // Adds: find existing objects by anchor (live, then deleted), then soft match.
    let mut anchors: HashMap<usize, String> = HashMap::new();
    for (i, j) in jobs.iter().enumerate() {
        if j.outcome.is_some() {
            continue;
        }
        if let ExportOperation::Add { attributes } = &j.req.operation {
            let a = attributes
                .get(&s.anchor_attribute)
                .and_then(|v| v.first())
                .map(Value::to_text)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| derived_anchor(&j.req.dn));
            anchors.insert(i, a);
        }
    }
    let ext = s.anchor_extension();
    let mut live: HashMap<(Kind, String), String> = HashMap::new();
    let mut deleted: HashMap<(Kind, String), String> = HashMap::new();
    let mut soft: HashMap<usize, String> = HashMap::new();
    if state.index.is_none() && anchors.len() >= s.lookup_snapshot_threshold.max(1) {
        state.index = Some(AnchorIndex::load(http, s).await?);
    }
    for kind in [Kind::User, Kind::Group] {
        if let Some(ix) = &state.index {
            for (i, a) in &anchors {
                let k = (jobs[*i].kind, a.clone());
                if k.0 != kind {
                    continue;
                }
                if let Some(id) = ix.live.get(&k) {
                    live.insert(k, id.clone());
                } else if let Some(id) = ix.deleted.get(&k) {
                    deleted.insert(k, id.clone());
                }
            }
            continue;
        }
        let vals: Vec<String> = anchors
            .iter()
            .filter(|(i, _)| jobs[**i].kind == kind)
            .map(|(_, a)| a.clone())
            .collect();
        if vals.is_empty() {
            continue;
        }
        let found = lookup(http, &format!("/{}", kind.collection()), &ext, &vals).await?;
        let missing: Vec<String> = vals
            .iter()
            .filter(|v| !found.contains_key(*v))
            .cloned()
            .collect();
        for (v, id) in found {
            live.insert((kind, v), id);
        }
        if !missing.is_empty() {
            let gone = lookup(
                http,
                &format!("/directory/deletedItems/{}", kind.cast()),
                &ext,
                &missing,
            )
            .await?;
            for (v, id) in gone {
                deleted.insert((kind, v), id);
            }
        }
    }
    if s.soft_match != SoftMatch::Off {
        let prop = match s.soft_match {
            SoftMatch::Upn => "userPrincipalName",
            _ => "mail",
        };
        for kind in [Kind::User, Kind::Group] {
            if kind == Kind::Group && s.soft_match == SoftMatch::Upn {
                continue;
            }
            let mut want: Vec<(usize, String)> = Vec::new();
            for (i, a) in &anchors {
                let j = &jobs[*i];
                if j.kind != kind
                    || live.contains_key(&(kind, a.clone()))
                    || deleted.contains_key(&(kind, a.clone()))
                {
                    continue;
                }
                if let ExportOperation::Add { attributes } = &j.req.operation
                    && let Some(v) = attributes.get(prop).and_then(|v| v.first())
                {
                    want.push((*i, v.to_text()));
                }
            }
            if want.is_empty() {
                continue;
            }
            let vals: Vec<String> = want.iter().map(|(_, v)| v.clone()).collect();
            let found = lookup(http, &format!("/{}", kind.collection()), prop, &vals).await?;
            for (i, v) in want {
                if let Some(id) = found.get(&v).or_else(|| found.get(&v.to_ascii_lowercase())) {
                    tracing::info!(object = %jobs[i].req.dn, "graph: soft match on {prop}");
                    soft.insert(i, id.clone());
                }
            }
        }
    }

    // Build phase-1 chains.
    let mut chain_of: Vec<(usize, usize)> = Vec::new(); // (job index, chain index)
    let mut chains: Vec<Vec<Op>> = Vec::new();
    let mut pending_bind: HashMap<usize, Vec<String>> = HashMap::new();
    for (i, j) in jobs.iter_mut().enumerate() {
        if j.outcome.is_some() {
            continue;
        }
        let coll = j.kind.collection();
        let ops: Vec<Op> = match &j.req.operation {
            ExportOperation::Delete => {
                let Some(id) = &j.id else {
                    j.outcome = Some(failed(
                        ExportErrorKind::ObjectNotFound,
                        "no Graph object id to delete",
                    ));
                    continue;
                };
                vec![Op::new("DELETE", format!("/{coll}/{id}"), None).tolerate(Tolerate::NotFound)]
            }
            ExportOperation::Update { changes, new_dn } => {
                let Some(id) = j.id.clone() else {
                    j.outcome = Some(failed(
                        ExportErrorKind::ObjectNotFound,
                        "the object has no Graph object id yet",
                    ));
                    continue;
                };
                let mut body = Map::new();
                let mut needs_current: Vec<String> = Vec::new();
                for ch in changes {
                    let name = ch.name();
                    match (name, ch) {
                        ("member", AttributeChange::Add { values, .. }) => {
                            j.refs.add_members.extend(ref_texts(values))
                        }
                        ("member", AttributeChange::Remove { values, .. })
                            if !values.is_empty() =>
                        {
                            j.refs.remove_members.extend(ref_texts(values))
                        }
                        ("member", AttributeChange::Remove { .. }) => {
                            j.refs.replace_members = Some(Vec::new())
                        }
                        ("member", AttributeChange::Replace { values, .. }) => {
                            j.refs.replace_members = Some(ref_texts(values))
                        }
                        (
                            "manager",
                            AttributeChange::Replace { values, .. }
                            | AttributeChange::Add { values, .. },
                        ) => j.refs.manager = Some(values.first().map(Value::to_text)),
                        ("manager", AttributeChange::Remove { .. }) => j.refs.manager = Some(None),
                        (n, _) if is_special(n) => {}
                        (n, AttributeChange::Replace { values, .. }) => {
                            let p = prop_name(s, n);
                            body.insert(
                                p.clone(),
                                if values.is_empty() {
                                    Json::Null
                                } else {
                                    json_of(&p, values)
                                },
                            );
                        }
                        (n, AttributeChange::Add { .. } | AttributeChange::Remove { .. }) => {
                            if MULTI_VALUED.contains(&n) {
                                needs_current.push(n.to_string());
                            } else {
                                let p = prop_name(s, n);
                                let mut a = Attributes::new();
                                ch.apply(&mut a);
                                body.insert(
                                    p.clone(),
                                    a.get(n).map(|v| json_of(&p, v)).unwrap_or(Json::Null),
                                );
                            }
                        }
                    }
                }
                if !needs_current.is_empty() {
                    // Value-level change of a string collection: read, apply, write whole.
                    let sel: Vec<String> = needs_current.iter().map(|n| prop_name(s, n)).collect();
                    let cur = http
                        .get_json(&format!("/{coll}/{id}?$select={}", sel.join(",")))
                        .await;
                    match cur {
                        Ok(v) => {
                            let mut a = Attributes::new();
                            for n in &needs_current {
                                a.insert(n.clone(), super::json_to_values(&v[prop_name(s, n)]));
                            }
                            for ch in changes
                                .iter()
                                .filter(|c| needs_current.iter().any(|n| n == c.name()))
                            {
                                ch.apply(&mut a);
                            }
                            for n in &needs_current {
                                let p = prop_name(s, n);
                                body.insert(
                                    p.clone(),
                                    json_of(&p, a.get(n).map(Vec::as_slice).unwrap_or(&[])),
                                );
                            }
                        }
                        Err(e) => {
                            j.outcome = Some(failed(ExportErrorKind::Transient, e.to_string()));
                            continue;
                        }
                    }
                }
                if let Some(n) = new_dn {
                    // Graph objects have no DN: keep the engine's name for references.
                    body.insert(s.dn_extension(), Json::String(dn_key(n)));
                    created.insert(n.normalized(), (j.kind, id.clone()));
                }
                if body.is_empty() {
                    Vec::new()
                } else {
                    vec![Op::new(
                        "PATCH",
                        format!("/{coll}/{id}"),
                        Some(Json::Object(body)),
                    )]
                }
            }
            ExportOperation::Add { attributes } => {
                let anchor = anchors.get(&i).cloned().unwrap_or_default();
                let members = attributes
                    .get("member")
                    .map(|v| ref_texts(v))
                    .unwrap_or_default();
                if let Some(m) = attributes.get("manager").and_then(|v| v.first()) {
                    j.refs.manager = Some(Some(m.to_text()));
                }
                let existing = live
                    .get(&(j.kind, anchor.clone()))
                    .or_else(|| soft.get(&i))
                    .cloned();
                if let Some(id) = existing {
                    j.id = Some(id.clone());
                    if j.kind == Kind::Group {
                        j.refs.replace_members = Some(members);
                    }
                    vec![Op::new(
                        "PATCH",
                        format!("/{coll}/{id}"),
                        Some(Json::Object(match_body(
                            s, j.kind, attributes, &anchor, &j.req.dn,
                        ))),
                    )]
                } else if let Some(id) = deleted.get(&(j.kind, anchor.clone())).cloned() {
                    tracing::info!(object = %j.req.dn, id = %id, "graph: restoring a soft-deleted object instead of creating it");
                    j.id = Some(id.clone());
                    if j.kind == Kind::Group {
                        j.refs.replace_members = Some(members);
                    }
                    vec![
                        Op::new(
                            "POST",
                            format!("/directory/deletedItems/{id}/restore"),
                            None,
                        )
                        .tolerate(Tolerate::NotFound),
                        Op::new(
                            "PATCH",
                            format!("/{coll}/{id}"),
                            Some(Json::Object(match_body(
                                s, j.kind, attributes, &anchor, &j.req.dn,
                            ))),
                        ),
                    ]
                } else {
                    if j.kind == Kind::User && !attributes.contains_key("userPrincipalName") {
                        j.outcome = Some(failed(
                            ExportErrorKind::IdentityDataValidationFailed,
                            "a user needs userPrincipalName",
                        ));
                        continue;
                    }
                    if j.kind == Kind::Group && !attributes.contains_key("displayName") {
                        j.outcome = Some(failed(
                            ExportErrorKind::IdentityDataValidationFailed,
                            "a group needs displayName",
                        ));
                        continue;
                    }
                    let mut body = create_body(s, j.kind, attributes, &anchor, &j.req.dn);
                    if j.kind == Kind::Group && !members.is_empty() {
                        // Bind members that already exist in Graph; the rest go in phase 2.
                        let mut bind = Vec::new();
                        let mut later = Vec::new();
                        for m in &members {
                            match resolve_ref(created, m) {
                                Some((_, mid)) if bind.len() < BIND_MAX => bind.push(mid),
                                _ => later.push(m.clone()),
                            }
                        }
                        if !bind.is_empty() {
                            let base = http.settings.graph_url.trim_end_matches('/');
                            body.insert(
                                "members@odata.bind".into(),
                                Json::Array(
                                    bind.iter()
                                        .map(|id| {
                                            Json::String(format!("{base}/directoryObjects/{id}"))
                                        })
                                        .collect(),
                                ),
                            );
                        }
                        j.refs.add_members = later;
                        pending_bind.insert(i, bind);
                    }
                    let mut op = Op::new("POST", format!("/{coll}"), Some(Json::Object(body)));
                    op.create_check = Some(format!(
                        "/{coll}?$filter={ext}%20eq%20'{}'&$select=id",
                        super::auth::urlencode(&quote(&anchor))
                    ));
                    vec![op]
                }
            }
        };
        if matches!(j.req.operation, ExportOperation::Update { .. }) && ops.is_empty() {
            continue; // references only
        }
        chain_of.push((i, chains.len()));
        chains.push(ops);
    }
    let results = execute(http, s, chains).await?;
    for (i, ci) in chain_of {
        let j = &mut jobs[i];
        match &results[ci] {
            Ok(answers) => {
                if j.id.is_none()
                    && let Some(id) = answers.last().and_then(|a| a["id"].as_str())
                {
                    j.id = Some(id.to_string());
                }
                if let ExportOperation::Add { .. } = j.req.operation
                    && let Some(id) = &j.id
                {
                    created.insert(j.req.dn.normalized(), (j.kind, id.clone()));
                    if let (Some(ix), Some(a)) = (state.index.as_mut(), anchors.get(&i)) {
                        ix.record_live(j.kind, a, id);
                    }
                }
                if let ExportOperation::Delete = j.req.operation
                    && let (Some(ix), Some(id)) = (state.index.as_mut(), &j.id)
                {
                    ix.record_deleted(id);
                }
            }
            Err((kind, msg)) => j.outcome = Some(failed(*kind, msg.clone())),
        }
    }

    // ---- Phase 2: references ----
    let mut chain_of: Vec<(usize, usize)> = Vec::new();
    let mut chains: Vec<Vec<Op>> = Vec::new();
    let base = http.settings.graph_url.trim_end_matches('/').to_string();
    for (i, job) in jobs.iter_mut().enumerate() {
        if job.outcome.is_some() || job.refs.is_empty() {
            continue;
        }
        let Some(id) = job.id.clone() else {
            continue;
        };
        if matches!(job.req.operation, ExportOperation::Delete) {
            continue;
        }
        let mut ops = Vec::new();
        let refs = std::mem::take(&mut job.refs);
        let mut unresolved = Vec::new();
        let mut resolve_all = |dns: &[String]| -> Vec<String> {
            dns.iter()
                .filter_map(|d| match resolve_ref(created, d) {
                    Some((_, id)) => Some(id),
                    None => {
                        unresolved.push(d.clone());
                        None
                    }
                })
                .collect()
        };
        let mut add = resolve_all(&refs.add_members);
        let mut remove = resolve_all(&refs.remove_members);
        let replace = refs.replace_members.as_ref().map(|r| resolve_all(r));
        let manager = refs
            .manager
            .as_ref()
            .map(|m| m.as_ref().map(|d| resolve_all(std::slice::from_ref(d))));
        if !unresolved.is_empty() {
            job.outcome = Some(failed(
                ExportErrorKind::Other,
                format!(
                    "reference(s) not resolvable to Graph objects (not created yet?): {}",
                    unresolved.join("; ")
                ),
            ));
            continue;
        }
        if let Some(want) = replace {
            // Current members, then the difference.
            let mut current: HashSet<String> = HashSet::new();
            let mut next = Some(format!("/groups/{id}/members?$select=id&$top=999"));
            while let Some(p) = next.take() {
                let v = http.get_json(&p).await?;
                for m in v["value"].as_array().into_iter().flatten() {
                    if let Some(mid) = m["id"].as_str() {
                        current.insert(mid.to_string());
                    }
                }
                next = v["@odata.nextLink"].as_str().map(str::to_string);
            }
            let want_set: HashSet<String> = want.iter().cloned().collect();
            add.extend(want.into_iter().filter(|m| !current.contains(m)));
            remove.extend(current.into_iter().filter(|m| !want_set.contains(m)));
        }
        if let Some(bound) = pending_bind.get(&i) {
            add.retain(|m| !bound.contains(m));
        }
        let mut seen = HashSet::new();
        add.retain(|m| seen.insert(m.clone()));
        for chunk in add.chunks(BIND_MAX) {
            let refs: Vec<Json> = chunk
                .iter()
                .map(|m| Json::String(format!("{base}/directoryObjects/{m}")))
                .collect();
            let op = if chunk.len() == 1 {
                Op::new(
                    "POST",
                    format!("/groups/{id}/members/$ref"),
                    Some(json!({"@odata.id": refs[0]})),
                )
            } else {
                Op::new(
                    "PATCH",
                    format!("/groups/{id}"),
                    Some(json!({"members@odata.bind": refs})),
                )
            };
            ops.push(op.tolerate(Tolerate::RefExists));
        }
        for m in remove {
            ops.push(
                Op::new("DELETE", format!("/groups/{id}/members/{m}/$ref"), None)
                    .tolerate(Tolerate::NotFound),
            );
        }
        match manager {
            Some(Some(mut m)) if !m.is_empty() => ops.push(Op::new(
                "PUT",
                format!("/users/{id}/manager/$ref"),
                Some(json!({"@odata.id": format!("{base}/users/{}", m.remove(0))})),
            )),
            Some(_) => ops.push(
                Op::new("DELETE", format!("/users/{id}/manager/$ref"), None)
                    .tolerate(Tolerate::NotFound),
            ),
            None => {}
        }
        if !ops.is_empty() {
            chain_of.push((i, chains.len()));
            chains.push(ops);
        }
    }
    let results = execute(http, s, chains).await?;
    for (i, ci) in chain_of {
        if let Err((kind, msg)) = &results[ci] {
            jobs[i].outcome = Some(failed(*kind, format!("references: {msg}")));
        }
    }

    let out: Vec<ExportResult> = jobs
        .into_iter()
        .map(|j| ExportResult {
            id: j.req.id,
            outcome: j.outcome.unwrap_or(ExportOutcome::Success {
                anchor: j.id.clone(),
            }),
        })
        .collect();
    let failures = out
        .iter()
        .filter(|r| matches!(r.outcome, ExportOutcome::Failed { .. }))
        .count();
    tracing::info!(requests = out.len(), failures, "graph: export batch done");
    Ok(out)
}

/// Resolves a reference DN to a Graph object: a placeholder of an object this connector
/// created, or a synthetic DN.
fn resolve_ref(created: &HashMap<String, (Kind, String)>, dn_text: &str) -> Option<(Kind, String)> {
    let dn = Dn::parse(dn_text).ok()?;
    if let Some(x) = created.get(&dn.normalized()) {
        return Some(x.clone());
    }
    parse_synthetic(&dn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_strong() {
        let p = random_password();
        assert_eq!(p.len(), 20);
        assert!(p.chars().any(|c| c.is_ascii_uppercase()));
        assert!(p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()));
        assert_ne!(p, random_password());
    }

    #[test]
    fn nicknames_and_anchors() {
        assert_eq!(nickname("ann.smith"), "ann.smith");
        assert_eq!(nickname("Ünï (x)"), "nx");
        let a = derived_anchor(&Dn::parse("CN=a,OU=Users").unwrap());
        assert_eq!(a, derived_anchor(&Dn::parse("cn=A,ou=users").unwrap()));
        assert!(valid_immutable_id(&a));
        assert!(!valid_immutable_id("a_b"));
    }

    #[test]
    fn values_to_json() {
        assert_eq!(
            json_of("accountEnabled", &[Value::Str("True".into())]),
            json!(true)
        );
        assert_eq!(
            json_of("businessPhones", &[Value::Str("1".into())]),
            json!(["1"])
        );
        assert_eq!(json_of("jobTitle", &[]), Json::Null);
    }
}

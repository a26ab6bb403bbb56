//! The operations behind the C functions, in safe Rust: JSON request text in, JSON result text
//! out. The `extern "C"` wrappers in [`super`] only convert strings, check pointers and map
//! errors. Request schemas are versioned with [`super::DIRSYNC_ABI_VERSION`]; every request
//! rejects unknown keys.

use super::{DirSyncEngine, FfiError, Status};
use crate::config::{Config, ConnectorConfig, RuleConfig, ScopeGroup};
use crate::connectors::{ExportOperation, ExportRequest, ImportChange};
use crate::engine::{CyclePolicy, Engine, ObjectRef, RunOptions, RunProfile};
use crate::expr::FlowValue;
use crate::model::{Dn, Object, Value, diff_values};
use crate::rules::{ObjectContext, RuleSet, ScopeContext, evaluate_scope};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// Result of one operation: the JSON text handed back to the caller.
pub(crate) type OpResult = Result<String, FfiError>;

/// Parses a request; malformed JSON and unknown keys are `DIRSYNC_E_INVALID_JSON`.
pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, FfiError> {
    serde_json::from_str(text).map_err(|e| {
        FfiError::new(
            Status::DIRSYNC_E_INVALID_JSON,
            format!("invalid request: {e}"),
        )
        .with_details(json!({"line": e.line(), "column": e.column()}))
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> OpResult {
    serde_json::to_string(v).map_err(|e| FfiError::internal(format!("cannot encode result: {e}")))
}

/// Opens an engine from a configuration: JSON text (starting with `{`) or a TOML file path.
pub(crate) fn open(config: &str) -> Result<Engine, FfiError> {
    let trimmed = config.trim_start();
    let cfg = if trimmed.starts_with('{') {
        let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Config::from_json_str(config, &base)?
    } else if config.is_empty() {
        return Err(FfiError::invalid_argument(
            "config is empty: pass a TOML file path or JSON text",
        ));
    } else {
        Config::load(Path::new(config))?
    };
    Ok(Engine::open(cfg)?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RunRequest {
    policy: Option<String>,
    connector: Option<String>,
    profile: Option<String>,
    dry_run: bool,
    confirm_deletes: bool,
    allow_empty_import: bool,
}

impl RunRequest {
    fn options(&self) -> RunOptions {
        RunOptions {
            dry_run: self.dry_run,
            confirm_deletes: self.confirm_deletes,
            allow_empty_import: self.allow_empty_import,
        }
    }
}

fn locked(h: &DirSyncEngine) -> std::sync::MutexGuard<'_, Engine> {
    // A panic inside a previous call poisoned the lock; the engine state lives in SQLite
    // transactions, so the in-memory engine is still usable.
    h.engine.lock().unwrap_or_else(|p| p.into_inner())
}

/// `{"policy":"Delta"|"Initial","dry_run":false,"confirm_deletes":false,"allow_empty_import":false}`
pub(crate) fn cycle(h: &DirSyncEngine, req: &str) -> OpResult {
    let r: RunRequest = parse(req)?;
    if r.connector.is_some() || r.profile.is_some() {
        return Err(FfiError::invalid_argument(
            "a cycle takes no connector or profile (use dirsync_run_profile)",
        ));
    }
    let policy = match r
        .policy
        .as_deref()
        .unwrap_or("Delta")
        .to_ascii_lowercase()
        .as_str()
    {
        "delta" => CyclePolicy::Delta,
        "initial" => CyclePolicy::Initial,
        other => {
            return Err(FfiError::invalid_argument(format!(
                "unknown policy '{other}' (Delta or Initial)"
            )));
        }
    };
    let mut e = locked(h);
    h.cancel.store(false, Ordering::SeqCst);
    h.emit(json!({"event": "start", "operation": "cycle", "policy": format!("{policy:?}")}));
    let res = e.cycle(policy, &r.options());
    h.emit(json!({"event": "end", "operation": "cycle", "ok": res.is_ok()}));
    to_json(&json!({"policy": policy, "dry_run": r.dry_run, "runs": res?}))
}

/// `{"connector":"name","profile":"FullImport", ...options}`
pub(crate) fn run_profile(h: &DirSyncEngine, req: &str) -> OpResult {
    let r: RunRequest = parse(req)?;
    if r.policy.is_some() {
        return Err(FfiError::invalid_argument(
            "a run profile takes no policy (use dirsync_cycle)",
        ));
    }
    let connector = r
        .connector
        .as_deref()
        .ok_or_else(|| FfiError::invalid_argument("request.connector is required"))?;
    let pname = r
        .profile
        .as_deref()
        .ok_or_else(|| FfiError::invalid_argument("request.profile is required"))?;
    let profile = RunProfile::parse(pname).ok_or_else(|| {
        FfiError::invalid_argument(format!(
            "unknown run profile '{pname}' (FullImport, DeltaImport, FullSync, DeltaSync, Export)"
        ))
    })?;
    let mut e = locked(h);
    h.cancel.store(false, Ordering::SeqCst);
    h.emit(json!({"event": "start", "operation": "run_profile", "connector": connector, "profile": profile.name()}));
    let res = e.run_profile(connector, profile, &r.options(), None);
    h.emit(json!({"event": "end", "operation": "run_profile", "ok": res.is_ok()}));
    to_json(&res?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// `{}` -> the plan (pending exports with per-attribute old/new values).
pub(crate) fn plan(h: &DirSyncEngine, req: &str) -> OpResult {
    let _: Empty = parse(req)?;
    to_json(&locked(h).plan()?)
}

/// `{}` -> counts per connector and the last run.
pub(crate) fn status(h: &DirSyncEngine, req: &str) -> OpResult {
    let _: Empty = parse(req)?;
    to_json(&locked(h).status()?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryRequest {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    20
}

/// `{"limit":20}` -> runs, newest first.
pub(crate) fn history(h: &DirSyncEngine, req: &str) -> OpResult {
    let r: HistoryRequest = parse(req)?;
    to_json(&locked(h).history(r.limit)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsRequest {
    connector: String,
    #[serde(default)]
    dn: Option<String>,
    #[serde(default)]
    anchor: Option<String>,
}

/// `{"connector":"ad","dn":"..."|"anchor":"..."}` -> connector-space objects.
pub(crate) fn cs_objects(h: &DirSyncEngine, req: &str) -> OpResult {
    let r: CsRequest = parse(req)?;
    let e = locked(h);
    to_json(&e.cs_objects(&r.connector, r.dn.as_deref(), r.anchor.as_deref())?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MvRequest {
    #[serde(default)]
    id: Option<i64>,
}

/// `{"id":5}` or `{}` -> metaverse objects.
pub(crate) fn mv_objects(h: &DirSyncEngine, req: &str) -> OpResult {
    let r: MvRequest = parse(req)?;
    to_json(&locked(h).mv_objects(r.id)?)
}

/// `{}` -> connectors in cycle order with their type and counts.
pub(crate) fn connectors(h: &DirSyncEngine, req: &str) -> OpResult {
    let _: Empty = parse(req)?;
    let e = locked(h);
    let status = e.status()?;
    let out: Vec<Json> = e
        .config
        .connectors
        .iter()
        .map(|c| {
            let s = status.connectors.iter().find(|s| s.name == c.name);
            json!({"name": c.name, "type": c.kind, "status": s})
        })
        .collect();
    to_json(&out)
}

/// `{}` -> the configured rules (disabled ones included, flagged).
pub(crate) fn rules(h: &DirSyncEngine, req: &str) -> OpResult {
    let _: Empty = parse(req)?;
    to_json(&locked(h).config.rules)
}

/// Scope context over a plain object; membership is read from its `memberOf` values.
struct ObjScope<'a>(&'a Object);

impl ScopeContext for ObjScope<'_> {
    fn values(&self, attribute: &str) -> Vec<Value> {
        if attribute.eq_ignore_ascii_case("dn") {
            return vec![Value::Str(self.0.dn.to_string())];
        }
        match self.0.attribute_name_ci(attribute) {
            Some(n) => self.0.values(n).to_vec(),
            None => Vec::new(),
        }
    }
    fn is_member_of(&self, group_dn: &str) -> bool {
        let Ok(g) = Dn::parse(group_dn) else {
            return false;
        };
        let Some(n) = self.0.attribute_name_ci("memberOf") else {
            return false;
        };
        self.0.values(n).iter().any(|v| {
            v.as_str()
                .and_then(|s| Dn::parse(s).ok())
                .is_some_and(|d| d == g)
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterRequest {
    connector: String,
    #[serde(default)]
    dn: Option<String>,
    #[serde(default)]
    anchor: Option<String>,
    #[serde(default)]
    object: Option<Object>,
    #[serde(default)]
    rule: Option<String>,
}

/// Evaluates the scoping filters of the connector's inbound and outbound rules for one object
/// (given inline, or a connector-space object by DN or anchor) and says which group decided.
pub(crate) fn filter(h: &DirSyncEngine, req: &str) -> OpResult {
    let r: FilterRequest = parse(req)?;
    let e = locked(h);
    if e.config.connector(&r.connector).is_none() {
        return Err(FfiError::new(
            Status::DIRSYNC_E_NOT_FOUND,
            format!("unknown connector '{}'", r.connector),
        ));
    }
    let obj = match (&r.object, &r.dn, &r.anchor) {
        (Some(o), None, None) => o.clone(),
        (None, Some(_), None) | (None, None, Some(_)) => {
            let found = e.cs_objects(&r.connector, r.dn.as_deref(), r.anchor.as_deref())?;
            let cs = found.into_iter().next().ok_or_else(|| {
                FfiError::new(
                    Status::DIRSYNC_E_NOT_FOUND,
                    "no such connector-space object".to_string(),
                )
            })?;
            Object {
                anchor: cs.anchor.clone(),
                dn: cs.dn.clone(),
                object_type: cs.object_type.clone(),
                attributes: cs.attributes.clone(),
            }
        }
        _ => {
            return Err(FfiError::invalid_argument(
                "give exactly one of object, dn, anchor",
            ));
        }
    };
    let mut results = Vec::new();
    for rule in e.rules.rules.iter().filter(|x| x.connector == r.connector) {
        if r.rule.as_deref().is_some_and(|n| n != rule.name) {
            continue;
        }
        // Inbound rules scope connector-space objects of their source type; outbound rules
        // are listed for the object type they write.
        let applies = match rule.direction {
            crate::config::Direction::Inbound => rule.source_type == obj.object_type,
            crate::config::Direction::Outbound => rule.target_type == obj.object_type,
        };
        if !applies {
            continue;
        }
        let d = evaluate_scope(&rule.scope, &ObjScope(&obj));
        results.push(json!({
            "rule": rule.name,
            "direction": rule.direction,
            "in_scope": d.in_scope,
            "group": d.group.map(|g| g + 1),
            "reason": d.reason,
        }));
    }
    let partition = partition_decision(
        e.config.connector(&r.connector).map(|c| &c.settings),
        &obj.dn,
    );
    let in_partition = partition["in_scope"] != json!(false);
    let in_scope = in_partition && results.iter().any(|x| x["in_scope"] == json!(true));
    to_json(&json!({
        "connector": r.connector,
        "partition": partition,
        "dn": obj.dn,
        "object_type": obj.object_type,
        "in_scope": in_scope,
        "rules": results,
    }))
}

/// Which partition and container filter of the connector's settings (`partitions` with `base`,
/// `include`, `exclude`, as the LDAP and AD connectors have) decides about a DN.
fn partition_decision(settings: Option<&Json>, dn: &Dn) -> Json {
    let Some(parts) = settings
        .and_then(|s| s.get("partitions"))
        .and_then(Json::as_array)
    else {
        return json!({"in_scope": null, "reason": "the connector has no partition settings"});
    };
    if parts.is_empty() {
        return json!({"in_scope": null, "reason": "no partitions configured (the default naming context)"});
    }
    let dns = |v: Option<&Json>| -> Vec<(String, Dn)> {
        v.and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .filter_map(|t| Dn::parse(t).ok().map(|d| (t.to_string(), d)))
                    .collect()
            })
            .unwrap_or_default()
    };
    for p in parts {
        let Some(base_text) = p.get("base").and_then(Json::as_str) else {
            continue;
        };
        let Ok(base) = Dn::parse(base_text) else {
            continue;
        };
        if !dn.is_within(&base) && *dn != base {
            continue;
        }
        let inside = |c: &Dn| dn.is_within(c) || dn == c;
        if let Some((t, _)) = dns(p.get("exclude")).into_iter().find(|(_, c)| inside(c)) {
            return json!({"in_scope": false, "partition": base_text, "container": t,
                          "reason": format!("inside the excluded container {t}")});
        }
        let include = dns(p.get("include"));
        if include.is_empty() {
            return json!({"in_scope": true, "partition": base_text, "container": null,
                          "reason": format!("inside partition {base_text} (no container filter)")});
        }
        return match include.into_iter().find(|(_, c)| inside(c)) {
            Some((t, _)) => json!({"in_scope": true, "partition": base_text, "container": t,
                                   "reason": format!("inside the included container {t}")}),
            None => json!({"in_scope": false, "partition": base_text, "container": null,
                           "reason": "not inside any included container".to_string()}),
        };
    }
    json!({"in_scope": false, "partition": null, "reason": "outside every configured partition"})
}

/// `{}` -> the deletion threshold in force on this handle.
pub(crate) fn threshold_get(h: &DirSyncEngine, req: &str) -> OpResult {
    let _: Empty = parse(req)?;
    let e = locked(h);
    let s = &e.config.safety;
    to_json(&json!({
        "count": s.deletion_threshold_count,
        "percent": s.deletion_threshold_percent,
        "staging_mode": s.staging_mode,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdRequest {
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    percent: Option<f64>,
}

/// `{"count":500,"percent":0}` -> sets the threshold for this handle (runtime override; the
/// configuration file is not rewritten) and returns the new values.
pub(crate) fn threshold_set(h: &DirSyncEngine, req: &str) -> OpResult {
    let r: ThresholdRequest = parse(req)?;
    if let Some(p) = r.percent
        && !(0.0..=100.0).contains(&p)
    {
        return Err(FfiError::invalid_argument(format!(
            "percent must be between 0 and 100, not {p}"
        )));
    }
    {
        let mut e = locked(h);
        if let Some(c) = r.count {
            e.config.safety.deletion_threshold_count = c;
        }
        if let Some(p) = r.percent {
            e.config.safety.deletion_threshold_percent = p;
        }
    }
    threshold_get(h, "{}")
}

/// Confirms deletes above the threshold for the next export.
pub(crate) fn confirm_deletes(h: &DirSyncEngine) -> Result<(), FfiError> {
    Ok(locked(h).confirm_deletes()?)
}

/// GUID text -> immutableId (base64 of the little-endian GUID bytes).
pub(crate) fn immutable_id_from_guid(guid: &str) -> OpResult {
    let g = uuid::Uuid::parse_str(guid.trim().trim_matches(|c| c == '{' || c == '}'))
        .map_err(|e| FfiError::invalid_argument(format!("not a GUID '{guid}': {e}")))?;
    Ok(B64.encode(g.to_bytes_le()))
}

/// immutableId -> GUID text (lowercase, hyphenated).
pub(crate) fn guid_from_immutable_id(id: &str) -> OpResult {
    let bytes = B64
        .decode(id.trim())
        .map_err(|e| FfiError::invalid_argument(format!("not base64 '{id}': {e}")))?;
    let arr: [u8; 16] = bytes.as_slice().try_into().map_err(|_| {
        FfiError::invalid_argument(format!(
            "an immutableId decodes to 16 bytes, '{id}' to {}",
            bytes.len()
        ))
    })?;
    Ok(uuid::Uuid::from_bytes_le(arr).hyphenated().to_string())
}

// ---- stage calls (no engine, no state) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StageImport {
    connector: ConnectorConfig,
    #[serde(default)]
    base_dir: Option<PathBuf>,
}

fn base_dir(b: Option<PathBuf>) -> PathBuf {
    b.unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")))
}

fn build(
    c: &ConnectorConfig,
    base: &Path,
) -> Result<Box<dyn crate::connectors::Connector>, FfiError> {
    let settings = if c.settings.is_null() {
        Json::Object(Default::default())
    } else {
        c.settings.clone()
    };
    crate::connectors::build(&c.kind, settings, base).map_err(|e| FfiError::connector(&c.name, e))
}

/// `{"connector":{"name","type","settings"},"base_dir":"."}` -> `{"objects":[...],"watermark":..}`
pub(crate) fn stage_import(req: &str) -> OpResult {
    let r: StageImport = parse(req)?;
    let base = base_dir(r.base_dir);
    let mut conn = build(&r.connector, &base)?;
    let mut sink: Vec<ImportChange> = Vec::new();
    let wm = conn
        .full_import(&mut sink)
        .map_err(|e| FfiError::connector(&r.connector.name, e))?;
    let objects: Vec<&Object> = sink
        .iter()
        .filter_map(|c| match c {
            ImportChange::Upsert(o) => Some(o),
            ImportChange::Delete { .. } => None,
        })
        .collect();
    to_json(&json!({"objects": objects, "watermark": wm}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StageFilter {
    objects: Vec<Object>,
    #[serde(default)]
    scope: Vec<ScopeGroup>,
    #[serde(default)]
    object_type: Option<String>,
}

/// `{"objects":[...],"scope":[{"clauses":[...]}],"object_type":"user"}` ->
/// `{"in":[...],"out":[...],"decisions":[{dn,in_scope,group,reason}]}`
pub(crate) fn stage_filter(req: &str) -> OpResult {
    let r: StageFilter = parse(req)?;
    let (mut inside, mut outside, mut decisions) = (Vec::new(), Vec::new(), Vec::new());
    for o in r.objects {
        let (ok, group, reason) = match &r.object_type {
            Some(t) if *t != o.object_type => (
                false,
                None,
                format!("object type '{}' is not '{t}'", o.object_type),
            ),
            _ => {
                let d = evaluate_scope(&r.scope, &ObjScope(&o));
                (d.in_scope, d.group.map(|g| g + 1), d.reason)
            }
        };
        decisions.push(json!({"dn": o.dn, "in_scope": ok, "group": group, "reason": reason}));
        if ok { inside.push(o) } else { outside.push(o) }
    }
    to_json(&json!({"in": inside, "out": outside, "decisions": decisions}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StageTransform {
    rule: RuleConfig,
    objects: Vec<Object>,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

/// `{"rule":{...rule as in the configuration...},"objects":[...],"parameters":{}}` ->
/// `{"objects":[...],"skipped":[{dn,reason}]}`: the rule's scope and flows applied to each
/// object; a `dn` flow sets the new DN, otherwise the DN is kept.
pub(crate) fn stage_transform(req: &str) -> OpResult {
    let r: StageTransform = parse(req)?;
    let cfg = Config {
        parameters: r.parameters.clone(),
        connectors: vec![ConnectorConfig {
            name: r.rule.connector.clone(),
            kind: "stage".into(),
            settings: Json::Null,
        }],
        rules: vec![r.rule.clone()],
        origin: "<request>".into(),
        source_text: req.to_string(),
        ..Config::default()
    };
    let set = RuleSet::compile(&cfg)?;
    let Some(rule) = set.rules.first() else {
        return to_json(&json!({"objects": [], "skipped": [], "note": "rule is disabled"}));
    };
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    for o in &r.objects {
        if o.object_type != rule.source_type {
            skipped.push(json!({"dn": o.dn, "reason": format!("object type '{}' is not '{}'", o.object_type, rule.source_type)}));
            continue;
        }
        let d = evaluate_scope(&rule.scope, &ObjScope(o));
        if !d.in_scope {
            skipped.push(json!({"dn": o.dn, "reason": d.reason}));
            continue;
        }
        let ctx = ObjectContext::new(o, &r.parameters);
        let mut t = Object::new(o.anchor.clone(), o.dn.clone(), &rule.target_type);
        let mut failed = None;
        for f in &rule.flows {
            match f.evaluate(&ctx) {
                Ok(FlowValue::Values(vs)) => {
                    if f.target == "dn" {
                        if let Some(v) = vs.first() {
                            match Dn::parse(&v.to_text()) {
                                Ok(dn) => t.dn = dn,
                                Err(e) => failed = Some(format!("flow 'dn': {e}")),
                            }
                        }
                    } else {
                        t.set(&f.target, vs);
                    }
                }
                Ok(FlowValue::AuthoritativeNull) => t.set(&f.target, Vec::new()),
                Ok(FlowValue::IgnoreThisFlow) => {}
                Err(e) => failed = Some(format!("flow '{}': {e}", f.target)),
            }
        }
        match failed {
            Some(reason) => skipped.push(json!({"dn": o.dn, "reason": reason})),
            None => out.push(t),
        }
    }
    to_json(&json!({"objects": out, "skipped": skipped}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StagePlan {
    desired: Vec<Object>,
    current: Vec<Object>,
    #[serde(default = "yes")]
    delete_missing: bool,
}

fn yes() -> bool {
    true
}

/// `{"desired":[...],"current":[...],"delete_missing":true}` -> `{"changes":[export requests]}`.
/// Objects match by anchor when both sides have one, otherwise by DN. Only attributes the
/// desired objects carry are managed.
pub(crate) fn stage_plan(req: &str) -> OpResult {
    let r: StagePlan = parse(req)?;
    let mut by_anchor: HashMap<&str, usize> = HashMap::new();
    let mut by_dn: HashMap<String, usize> = HashMap::new();
    for (i, c) in r.current.iter().enumerate() {
        if let Some(a) = &c.anchor {
            by_anchor.insert(a.as_str(), i);
        }
        by_dn.insert(c.dn.normalized(), i);
    }
    let mut matched = vec![false; r.current.len()];
    let mut changes = Vec::new();
    let mut id = 0i64;
    for d in &r.desired {
        id += 1;
        let hit = d
            .anchor
            .as_deref()
            .and_then(|a| by_anchor.get(a))
            .or_else(|| by_dn.get(&d.dn.normalized()))
            .copied();
        match hit {
            None => changes.push(ExportRequest {
                id,
                object_type: d.object_type.clone(),
                anchor: None,
                dn: d.dn.clone(),
                operation: ExportOperation::Add {
                    attributes: d.attributes.clone(),
                },
            }),
            Some(i) => {
                matched[i] = true;
                let c = &r.current[i];
                let mut ch = Vec::new();
                for (name, vals) in &d.attributes {
                    ch.extend(diff_values(name, c.values(name), vals));
                }
                let new_dn = (c.dn != d.dn).then(|| d.dn.clone());
                if !ch.is_empty() || new_dn.is_some() {
                    changes.push(ExportRequest {
                        id,
                        object_type: c.object_type.clone(),
                        anchor: c.anchor.clone(),
                        dn: c.dn.clone(),
                        operation: ExportOperation::Update {
                            changes: ch,
                            new_dn,
                        },
                    });
                }
            }
        }
    }
    if r.delete_missing {
        for (i, c) in r.current.iter().enumerate() {
            if !matched[i] {
                id += 1;
                changes.push(ExportRequest {
                    id,
                    object_type: c.object_type.clone(),
                    anchor: c.anchor.clone(),
                    dn: c.dn.clone(),
                    operation: ExportOperation::Delete,
                });
            }
        }
    }
    to_json(&json!({"changes": changes}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StageExport {
    connector: ConnectorConfig,
    changes: Vec<ExportRequest>,
    #[serde(default)]
    base_dir: Option<PathBuf>,
    #[serde(default)]
    dry_run: bool,
}

/// `{"connector":{...},"changes":[...],"dry_run":false}` -> `{"results":[...]}`.
pub(crate) fn stage_export(req: &str) -> OpResult {
    let r: StageExport = parse(req)?;
    let base = base_dir(r.base_dir);
    let mut conn = build(&r.connector, &base)?;
    if r.dry_run {
        return to_json(&json!({"dry_run": true, "results": [], "changes": r.changes.len()}));
    }
    let mut results = Vec::new();
    let n = conn.export_batch_size().max(1);
    for chunk in r.changes.chunks(n) {
        results.extend(
            conn.export(chunk)
                .map_err(|e| FfiError::connector(&r.connector.name, e))?,
        );
    }
    to_json(&json!({"results": results}))
}

/// Scheduler failures: bad values are invalid arguments, an unreadable side file is a state error.
fn scheduler_error(e: crate::scheduler::SchedulerError) -> FfiError {
    use crate::scheduler::SchedulerError as S;
    let message = e.to_string();
    match e {
        S::Invalid { key, .. } => FfiError::new(Status::DIRSYNC_E_INVALID_ARGUMENT, message)
            .with_details(json!({"kind": "Invalid", "key": key})),
        S::Corrupt { path, .. } => FfiError::new(Status::DIRSYNC_E_STATE, message)
            .with_details(json!({"kind": "Corrupt", "path": path})),
        S::Io { path, .. } => FfiError::new(Status::DIRSYNC_E_STATE, message)
            .with_details(json!({"kind": "Io", "path": path})),
        S::NonLoopback(_) => FfiError::invalid_argument(message),
        S::Engine(e) => e.into(),
        S::Config(e) => e.into(),
    }
}

/// `{}` -> the effective scheduler settings (configuration defaults with the admin's changes).
pub(crate) fn scheduler_get(h: &DirSyncEngine, req: &str) -> OpResult {
    let _: Empty = parse(req)?;
    let e = locked(h);
    to_json(&e.scheduler_settings().map_err(scheduler_error)?)
}

/// A scheduler patch (`{"sync_cycle_enabled":false,"interval_seconds":900,...}`, absent keys
/// unchanged, unknown keys rejected) -> the new effective settings.
pub(crate) fn scheduler_set(h: &DirSyncEngine, req: &str) -> OpResult {
    let patch: crate::scheduler::SchedulerPatch = parse(req)?;
    let mut e = locked(h);
    let settings = e.set_scheduler_settings(&patch).map_err(scheduler_error)?;
    to_json(&settings)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct WritebackRequest {
    dry_run: bool,
    confirm_deletes: bool,
    allow_empty_import: bool,
}

/// `{"dry_run":false,"confirm_deletes":false,"allow_empty_import":false}` -> `{"dry_run","runs"}`:
/// the cloud connectors imported and synchronized, the Active Directory connectors exported.
pub(crate) fn writeback(h: &DirSyncEngine, req: &str) -> OpResult {
    let r: WritebackRequest = parse(req)?;
    let opts = RunOptions {
        dry_run: r.dry_run,
        confirm_deletes: r.confirm_deletes,
        allow_empty_import: r.allow_empty_import,
    };
    let mut e = locked(h);
    h.cancel.store(false, Ordering::SeqCst);
    h.emit(json!({"event": "start", "operation": "writeback", "dry_run": r.dry_run}));
    let res = e.writeback(&opts);
    h.emit(json!({"event": "end", "operation": "writeback", "ok": res.is_ok()}));
    to_json(&json!({"dry_run": r.dry_run, "runs": res?}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncObjectRequest {
    connector: String,
    #[serde(default)]
    dn: Option<String>,
    #[serde(default)]
    anchor: Option<String>,
    #[serde(default)]
    commit: bool,
}

/// `{"connector":"src","dn":"..."|"anchor":"...","commit":false}` -> the single-object sync
/// report (preview unless `commit`).
pub(crate) fn sync_object(h: &DirSyncEngine, req: &str) -> OpResult {
    let r: SyncObjectRequest = parse(req)?;
    let object = match (r.dn, r.anchor) {
        (Some(d), None) => ObjectRef::Dn(d),
        (None, Some(a)) => ObjectRef::Anchor(a),
        _ => return Err(FfiError::invalid_argument("give exactly one of dn, anchor")),
    };
    object.validate().map_err(FfiError::invalid_argument)?;
    let mut e = locked(h);
    h.cancel.store(false, Ordering::SeqCst);
    to_json(&e.sync_object(&r.connector, &object, r.commit)?)
}

/// `DIRSYNC_E_NOT_SUPPORTED` unless the connector is an Active Directory connector.
fn require_ad(e: &Engine, name: &str, what: &str) -> Result<(), FfiError> {
    let c = e.config.connector(name).ok_or_else(|| {
        FfiError::new(
            Status::DIRSYNC_E_NOT_FOUND,
            format!("unknown connector '{name}'"),
        )
    })?;
    if c.kind != crate::engine::writeback::AD_KIND {
        return Err(FfiError::new(
            Status::DIRSYNC_E_NOT_SUPPORTED,
            format!(
                "connector '{name}' is of type '{}': {what} works through Active Directory connectors (type 'ad') only",
                c.kind
            ),
        )
        .with_details(json!({"feature": what, "connector": name, "type": c.kind})));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordRequest {
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    connector: Option<String>,
    #[serde(default)]
    dn: Option<String>,
    password: String,
    #[serde(default)]
    must_change: bool,
}

/// Sets the Active Directory password of a user (`unicodePwd` over LDAPS) named by
/// `identity` (user principal name, DN in any connector space or metaverse id), or by
/// `connector` + `dn` of an Active Directory connector. The password never reaches a log,
/// an error or the result.
pub(crate) fn set_password(h: &DirSyncEngine, req: &str) -> OpResult {
    let r: PasswordRequest = parse(req)?;
    let identity = match (&r.identity, &r.connector, &r.dn) {
        (Some(i), None, None) => {
            if i.trim().is_empty() {
                return Err(FfiError::invalid_argument("identity is empty"));
            }
            i.clone()
        }
        (None, Some(_), Some(d)) => {
            Dn::parse(d).map_err(|e| FfiError::invalid_argument(format!("dn '{d}': {e}")))?;
            d.clone()
        }
        _ => {
            return Err(FfiError::invalid_argument(
                "give identity, or connector and dn",
            ));
        }
    };
    if r.password.is_empty() {
        return Err(FfiError::invalid_argument("password is empty"));
    }
    let mut e = locked(h);
    if let Some(c) = &r.connector {
        require_ad(&e, c, "setting a password")?;
    }
    let user = e.resolve_ad_user(&identity)?;
    if let Some(c) = &r.connector
        && user.connector != *c
    {
        return Err(FfiError::new(
            Status::DIRSYNC_E_NOT_FOUND,
            format!(
                "'{identity}' is a user of connector '{}', not '{c}'",
                user.connector
            ),
        ));
    }
    let result = e.set_password_for(user, &r.password, r.must_change)?;
    to_json(&result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionRequest {
    connector: String,
    #[serde(default)]
    writeback_ou: Option<String>,
}

/// Checks the rights of an Active Directory connector's account (read, DirSync, create, write,
/// password reset); nothing is written. Other connector types: `DIRSYNC_E_NOT_SUPPORTED`.
pub(crate) fn test_permission(h: &DirSyncEngine, req: &str) -> OpResult {
    let r: PermissionRequest = parse(req)?;
    let e = locked(h);
    require_ad(&e, &r.connector, "permission checks")?;
    let report = e
        .test_permissions(Some(&r.connector), r.writeback_ou.as_deref())?
        .into_iter()
        .next()
        .ok_or_else(|| FfiError::internal("the permission check returned no report"))?;
    to_json(&report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_and_container_decide() {
        let s = json!({"partitions": [{"base": "DC=corp,DC=example",
            "include": ["OU=People,DC=corp,DC=example"], "exclude": ["OU=Gone,OU=People,DC=corp,DC=example"]}]});
        let d = |t: &str| partition_decision(Some(&s), &Dn::parse(t).unwrap());
        let r = d("CN=A,OU=People,DC=corp,DC=example");
        assert_eq!(r["in_scope"], json!(true));
        assert_eq!(r["container"], json!("OU=People,DC=corp,DC=example"));
        let r = d("CN=B,OU=Gone,OU=People,DC=corp,DC=example");
        assert_eq!(r["in_scope"], json!(false));
        assert_eq!(
            r["container"],
            json!("OU=Gone,OU=People,DC=corp,DC=example")
        );
        assert_eq!(
            d("CN=C,OU=Other,DC=corp,DC=example")["in_scope"],
            json!(false)
        );
        assert_eq!(
            d("CN=D,DC=elsewhere")["reason"],
            json!("outside every configured partition")
        );
        assert_eq!(
            partition_decision(None, &Dn::parse("CN=X").unwrap())["in_scope"],
            Json::Null
        );
    }
}

//! Graph tenant emulator: $batch, throttling, delta queries, fault injection and persistence.

use std::time::Duration;

use dirsync::emulator::{
    Emulator, EmulatorConfig, EmulatorHandle, FaultConfig, ObjectKind, ThrottleConfig,
};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const CLIENT: &str = "11111111-2222-4333-8444-555555555555";
const SECRET: &str = "emulator-secret";

struct Env {
    h: EmulatorHandle,
    c: Client,
    token: String,
}

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().build().expect("client")
}

async fn env_with(config: EmulatorConfig) -> Env {
    let h = Emulator::start(config).await.expect("start");
    let c = client();
    let body = format!(
        "grant_type=client_credentials&client_id={CLIENT}&client_secret={SECRET}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
    );
    let v: Value = c
        .post(h.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = v["access_token"].as_str().expect("token").to_string();
    Env { h, c, token }
}

async fn env() -> Env {
    env_with(EmulatorConfig::default()).await
}

impl Env {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Value), reqwest::Error> {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.h.graph_url(), path)
        };
        let mut rb = self.c.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await?;
        let st = r.status();
        let hd = r.headers().clone();
        let text = r.text().await?;
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((st, hd, v))
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::GET, path, None).await.expect("get");
        (s, v)
    }
    async fn post(
        &self,
        path: &str,
        body: Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.call(Method::POST, path, Some(body))
            .await
            .expect("post")
    }
}

fn user(upn: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": upn,
        "mailNickname": upn.split('@').next().unwrap_or(upn),
        "userPrincipalName": upn,
        "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}
    })
}

fn by_id<'a>(responses: &'a Value, id: &str) -> &'a Value {
    responses["responses"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == json!(id)))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn batch_with_depends_on_and_partial_failures() {
    let e = env().await;
    e.h.seed(ObjectKind::User, user("taken@contoso.com"))
        .unwrap();
    let gid = e
        .h
        .seed(ObjectKind::Group, json!({"displayName": "G", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true}))
        .unwrap();
    let batch = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/users", "body": user("new@contoso.com"), "headers": {"Content-Type": "application/json"}},
        {"id": "2", "method": "POST", "url": "/users", "body": user("taken@contoso.com"), "headers": {"Content-Type": "application/json"}},
        {"id": "3", "method": "PATCH", "url": format!("/groups/{gid}"), "dependsOn": ["2"], "body": {"description": "x"}, "headers": {"Content-Type": "application/json"}},
        {"id": "4", "method": "GET", "url": "/users?$select=id,userPrincipalName&$filter=userPrincipalName eq 'new@contoso.com'", "dependsOn": ["1"]},
        {"id": "5", "method": "GET", "url": "/users/00000000-0000-0000-0000-000000000000"}
    ]});
    let (s, _, v) = e.post("/$batch", batch).await;
    assert_eq!(s, 200);
    assert_eq!(v["responses"].as_array().unwrap().len(), 5);
    assert_eq!(by_id(&v, "1")["status"], json!(201));
    assert!(by_id(&v, "1")["body"]["id"].is_string());
    assert_eq!(by_id(&v, "2")["status"], json!(400));
    assert_eq!(
        by_id(&v, "2")["body"]["error"]["code"],
        json!("Request_BadRequest")
    );
    assert_eq!(by_id(&v, "3")["status"], json!(424));
    assert_eq!(by_id(&v, "4")["status"], json!(200));
    assert_eq!(by_id(&v, "4")["body"]["value"].as_array().unwrap().len(), 1);
    assert_eq!(by_id(&v, "5")["status"], json!(404));
    assert_eq!(
        by_id(&v, "5")["body"]["error"]["code"],
        json!("Request_ResourceNotFound")
    );
    // The description was not applied (424).
    let (_, g) = e.get(&format!("/groups/{gid}")).await;
    assert_ne!(g["description"], json!("x"));

    // Members through a batch, 204 per item.
    let uid = by_id(&v, "1")["body"]["id"].as_str().unwrap().to_string();
    let (_, _, v) = e
        .post("/$batch", json!({"requests": [
            {"id": "a", "method": "POST", "url": format!("/groups/{gid}/members/$ref"),
             "body": {"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}")},
             "headers": {"Content-Type": "application/json"}}
        ]}))
        .await;
    assert_eq!(by_id(&v, "a")["status"], json!(204));
    // A body without a Content-Type header is rejected per item.
    let (_, _, v) = e
        .post("/$batch", json!({"requests": [
            {"id": "x", "method": "PATCH", "url": format!("/groups/{gid}"), "body": {"description": "y"}}
        ]}))
        .await;
    assert_eq!(by_id(&v, "x")["status"], json!(400));

    // More than 20 requests is rejected as a whole.
    let reqs: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    let (s, _, v) = e.post("/$batch", json!({ "requests": reqs })).await;
    assert_eq!(s, 400);
    assert!(v["error"]["code"].is_string());
    // Malformed batch payload.
    let r =
        e.c.post(format!("{}/$batch", e.h.graph_url()))
            .bearer_auth(&e.token)
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 400);
    let (s, _, _) = e
        .post("/$batch", json!({"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}]}))
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let e = env().await;
    e.h.set_throttle(ThrottleConfig {
        enabled: true,
        writes_per_window: 10,
        window: Duration::from_millis(1000),
    });
    let mut saw_pct = false;
    for i in 0..10 {
        let (s, h, v) = e.post("/users", user(&format!("t{i}@contoso.com"))).await;
        assert_eq!(s, 201, "{v}");
        if let Some(p) = h.get("x-ms-throttle-limit-percentage") {
            let p: f64 = p.to_str().unwrap().parse().unwrap();
            assert!(p >= 0.8);
            saw_pct = true;
        }
    }
    assert!(
        saw_pct,
        "x-ms-throttle-limit-percentage from 0.8 of the quota"
    );
    let (s, h, v) = e.post("/users", user("over@contoso.com")).await;
    assert_eq!(s, 429);
    assert_eq!(v["error"]["code"], json!("TooManyRequests"));
    assert!(v["error"]["innerError"]["request-id"].is_string());
    let retry: f64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0.0 && retry <= 1.0, "{retry}");
    // Reads are not write-throttled.
    assert_eq!(e.get("/users").await.0, 200);
    // Batch items are throttled one by one.
    let (s, _, v) = e
        .post("/$batch", json!({"requests": [
            {"id": "1", "method": "POST", "url": "/users", "body": user("b1@contoso.com"), "headers": {"Content-Type": "application/json"}},
            {"id": "2", "method": "GET", "url": "/users?$top=1"}
        ]}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(by_id(&v, "1")["status"], json!(429));
    assert!(by_id(&v, "1")["headers"]["Retry-After"].is_string());
    assert_eq!(by_id(&v, "2")["status"], json!(200));
    tokio::time::sleep(Duration::from_secs_f64(retry + 0.05)).await;
    let (s, _, _) = e.post("/users", user("over@contoso.com")).await;
    assert_eq!(s, 201);
    assert!(e.h.stats().throttled >= 2);
}

async fn follow_delta(e: &Env, first: &str) -> (Vec<Value>, String, usize) {
    let mut url = first.to_string();
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let (s, v) = e.get(&url).await;
        assert_eq!(s, 200, "{v}");
        pages += 1;
        all.extend(v["value"].as_array().unwrap().iter().cloned());
        if let Some(n) = v["@odata.nextLink"].as_str() {
            assert!(v.get("@odata.deltaLink").is_none());
            url = n.to_string();
        } else {
            return (
                all,
                v["@odata.deltaLink"]
                    .as_str()
                    .expect("deltaLink")
                    .to_string(),
                pages,
            );
        }
    }
}

#[tokio::test]
async fn users_delta_initial_changes_removed_and_expired() {
    let e = env().await;
    let mut ids = Vec::new();
    for i in 0..150 {
        ids.push(
            e.h.seed(ObjectKind::User, user(&format!("d{i:03}@contoso.com")))
                .unwrap(),
        );
    }
    let (all, delta_link, pages) = follow_delta(
        &e,
        "/users/delta?$select=displayName,jobTitle,userPrincipalName",
    )
    .await;
    assert_eq!(all.len(), 150);
    assert_eq!(pages, 2);
    assert!(all[0]["userPrincipalName"].is_string());
    // The page size asked for on the first request is kept by the nextLinks.
    let (small, _, small_pages) =
        follow_delta(&e, "/users/delta?$select=displayName&$top=40").await;
    assert_eq!((small.len(), small_pages), (150, 4));
    // No change: empty page with a new deltaLink.
    let (s, v) = e.get(&delta_link).await;
    assert_eq!(s, 200);
    assert_eq!(v["value"].as_array().unwrap().len(), 0);
    assert!(v["@odata.deltaLink"].is_string());

    let (s, _, _) = e
        .call(
            Method::PATCH,
            &format!("/users/{}", ids[0]),
            Some(json!({"jobTitle": "CEO"})),
        )
        .await
        .unwrap();
    assert_eq!(s, 204);
    let (s, _, _) = e
        .call(Method::DELETE, &format!("/users/{}", ids[1]), None)
        .await
        .unwrap();
    assert_eq!(s, 204);
    let (_, _, created) = e.post("/users", user("new@contoso.com")).await;
    let (changes, link2, _) = follow_delta(&e, &delta_link).await;
    assert_eq!(changes.len(), 3, "{changes:?}");
    let find = |id: &str| {
        changes
            .iter()
            .find(|c| c["id"] == json!(id))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let changed = find(&ids[0]);
    assert_eq!(changed["jobTitle"], json!("CEO"));
    assert!(
        changed.get("userPrincipalName").is_none(),
        "only changed properties: {changed}"
    );
    assert_eq!(find(&ids[1])["@removed"], json!({"reason": "changed"}));
    let new = find(created["id"].as_str().unwrap());
    assert_eq!(new["userPrincipalName"], json!("new@contoso.com"));

    // Hard delete -> reason "deleted".
    let (s, _, _) = e
        .call(
            Method::DELETE,
            &format!("/directory/deletedItems/{}", ids[1]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 204);
    let (changes, link3, _) = follow_delta(&e, &link2).await;
    assert_eq!(
        changes,
        vec![json!({"id": ids[1], "@removed": {"reason": "deleted"}})]
    );

    // $deltatoken=latest gives a deltaLink without data.
    let (_, v) = e.get("/users/delta?$deltatoken=latest").await;
    assert_eq!(v["value"], json!([]));
    assert!(v["@odata.deltaLink"].is_string());

    // Invalidated tokens answer 400 syncStateNotFound.
    e.h.expire_delta_tokens();
    let (s, v) = e.get(&link3).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], json!("syncStateNotFound"));
    assert!(v["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test]
async fn delta_tokens_expire_with_age() {
    let e = env_with(EmulatorConfig {
        delta_token_lifetime: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    e.h.seed(ObjectKind::User, user("a@contoso.com")).unwrap();
    let (_, link, _) = follow_delta(&e, "/users/delta").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, v) = e.get(&link).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], json!("syncStateNotFound"));
}

#[tokio::test]
async fn groups_delta_reports_members_delta() {
    let e = env().await;
    let a = e.h.seed(ObjectKind::User, user("a@contoso.com")).unwrap();
    let b = e.h.seed(ObjectKind::User, user("b@contoso.com")).unwrap();
    let (_, _, g) = e
        .post("/groups", json!({"displayName": "G", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true,
            "members@odata.bind": [format!("https://graph.microsoft.com/v1.0/directoryObjects/{a}")]}))
        .await;
    let gid = g["id"].as_str().unwrap().to_string();
    let (all, link, _) = follow_delta(&e, "/groups/delta?$select=displayName,members").await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["displayName"], json!("G"));
    assert_eq!(
        all[0]["members@delta"],
        json!([{"@odata.type": "#microsoft.graph.user", "id": a}])
    );

    let r = |id: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")});
    assert_eq!(
        e.post(&format!("/groups/{gid}/members/$ref"), r(&b))
            .await
            .0,
        204
    );
    let (s, _, _) = e
        .call(
            Method::DELETE,
            &format!("/groups/{gid}/members/{a}/$ref"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 204);
    let (changes, _, _) = follow_delta(&e, &link).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["id"], json!(gid));
    assert!(changes[0].get("displayName").is_none());
    let md = changes[0]["members@delta"].as_array().unwrap();
    assert_eq!(md.len(), 2);
    assert!(md.contains(&json!({"@odata.type": "#microsoft.graph.user", "id": b})));
    assert!(md.contains(
        &json!({"@odata.type": "#microsoft.graph.user", "id": a, "@removed": {"reason": "deleted"}})
    ));
}

#[tokio::test]
async fn fault_injection_503_latency_and_dropped_connections() {
    let e = env().await;
    e.h.set_faults(FaultConfig {
        fail_every_nth: Some(2),
        ..Default::default()
    });
    let mut statuses = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let (s, v) = e.get("/users").await;
        statuses.push(s.as_u16());
        bodies.push(v);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        2,
        "{statuses:?}"
    );
    let failed = bodies.iter().find(|b| b.get("error").is_some()).unwrap();
    assert_eq!(failed["error"]["code"], json!("serviceNotAvailable"));
    e.h.set_faults(FaultConfig {
        latency: Duration::from_millis(150),
        ..Default::default()
    });
    let t0 = std::time::Instant::now();
    assert_eq!(e.get("/users").await.0, 200);
    assert!(t0.elapsed() >= Duration::from_millis(150));
    e.h.set_faults(FaultConfig {
        drop_probability: 1.0,
        ..Default::default()
    });
    assert!(e.call(Method::GET, "/users", None).await.is_err());
    e.h.set_faults(FaultConfig::default());
    assert_eq!(e.get("/users").await.0, 200);
    let st = e.h.stats();
    assert_eq!(st.faults, 2);
    assert_eq!(st.dropped, 1);
}

#[tokio::test]
async fn state_persists_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenant.json");
    let cfg = EmulatorConfig::on_port(0).with_state_file(&file);
    let e = env_with(cfg.clone()).await;
    assert!(e.h.local_addr().is_some_and(|a| a.port() != 0));
    let (s, _, v) = e.post("/users", user("persist@contoso.com")).await;
    assert_eq!(s, 201);
    let id = v["id"].as_str().unwrap().to_string();
    let ext = e.h.seed_extension(CLIENT, "anchor", &["User"]).unwrap();
    let (s, _, _) = e
        .call(
            Method::PATCH,
            &format!("/users/{id}"),
            Some(json!({ ext.clone(): "A1" })),
        )
        .await
        .unwrap();
    assert_eq!(s, 204);
    let Env { h, .. } = e;
    h.shutdown().await.unwrap();
    assert!(file.exists());

    let e = env_with(cfg).await;
    let (s, v) = e
        .get(&format!("/users/persist@contoso.com?$select=id,{ext}"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["id"], json!(id));
    assert_eq!(v[&ext], json!("A1"));
    // Indexes are rebuilt: the UPN is still taken.
    let (s, _, _) = e.post("/users", user("persist@contoso.com")).await;
    assert_eq!(s, 400);
}

/// Throughput smoke test of the emulator itself (not the connector benchmark): 20,000 user
/// creates through `$batch` with throttling off. Run with `--ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn emulator_throughput_smoke() {
    let e = env().await;
    e.h.set_throttle(ThrottleConfig {
        enabled: false,
        ..Default::default()
    });
    let t0 = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let c = e.c.clone();
        let url = format!("{}/$batch", e.h.graph_url());
        let token = e.token.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..125 {
                let reqs: Vec<Value> = (0..20)
                    .map(|i| {
                        json!({"id": i.to_string(), "method": "POST", "url": "/users",
                               "headers": {"Content-Type": "application/json"},
                               "body": user(&format!("w{w}b{b}i{i}@contoso.com"))})
                    })
                    .collect();
                let r = c
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "requests": reqs }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let n = e.h.tenant().objects.len();
    println!("{n} users in {secs:.2}s = {:.0} creates/s", n as f64 / secs);
    let t1 = std::time::Instant::now();
    let (all, _, pages) = follow_delta(&e, "/users/delta?$select=displayName").await;
    println!(
        "delta of {} users in {pages} pages: {:.2}s",
        all.len(),
        t1.elapsed().as_secs_f64()
    );
    assert_eq!(n, 20_000);
}

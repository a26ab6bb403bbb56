//! Graph tenant emulator: token endpoint, users, groups, members, paging, $select/$filter,
//! deleted items and directory extensions, pinned to the documented Graph shapes.

use dirsync::emulator::{AppRegistration, Emulator, EmulatorConfig, EmulatorHandle, ObjectKind};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const CLIENT: &str = "11111111-2222-4333-8444-555555555555";
const SECRET: &str = "emulator-secret";

trait FormBody {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
    }
}

struct Env {
    h: EmulatorHandle,
    c: Client,
    token: String,
}

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().build().expect("client")
}

async fn token_for(c: &Client, h: &EmulatorHandle, id: &str, secret: &str) -> reqwest::Response {
    c.post(h.token_url())
        .form_body(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("token request")
}

async fn env_with(config: EmulatorConfig) -> Env {
    let h = Emulator::start(config).await.expect("start");
    let c = client();
    let v: Value = token_for(&c, &h, CLIENT, SECRET)
        .await
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
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.h.graph_url(), path)
        };
        let mut rb = self.c.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("send");
        let st = r.status();
        let hd = r.headers().clone();
        let text = r.text().await.expect("text");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (st, hd, v)
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::GET, path, None).await;
        (s, v)
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::POST, path, Some(body)).await;
        (s, v)
    }
    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::PATCH, path, Some(body)).await;
        (s, v)
    }
    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::DELETE, path, None).await;
        (s, v)
    }
}

fn user(upn: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": upn.split('@').next().unwrap_or(upn),
        "mailNickname": upn.split('@').next().unwrap_or(upn),
        "userPrincipalName": upn,
        "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "xWwvJ]6NMw+bWH-d"}
    })
}

fn assert_graph_error(v: &Value, code: &str) {
    assert_eq!(v["error"]["code"], json!(code), "body: {v}");
    assert!(v["error"]["message"].is_string(), "body: {v}");
    let inner = &v["error"]["innerError"];
    assert!(inner["date"].is_string(), "body: {v}");
    assert!(inner["request-id"].is_string(), "body: {v}");
    assert!(inner["client-request-id"].is_string(), "body: {v}");
}

#[tokio::test]
async fn token_endpoint_success_and_failures() {
    let e = env().await;
    let r = token_for(&e.c, &e.h, CLIENT, SECRET).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], json!("Bearer"));
    assert!(v["expires_in"].as_u64().unwrap() > 3000);
    assert_eq!(v["access_token"].as_str().unwrap().split('.').count(), 3);

    let r = token_for(&e.c, &e.h, CLIENT, "wrong").await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], json!("invalid_client"));
    assert_eq!(v["error_codes"], json!([7000215]));
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: Invalid client secret provided.")
    );
    assert!(
        v["trace_id"].is_string() && v["correlation_id"].is_string() && v["timestamp"].is_string()
    );

    let r = token_for(&e.c, &e.h, "99999999-2222-4333-8444-555555555555", SECRET).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], json!("unauthorized_client"));
    assert_eq!(v["error_codes"], json!([700016]));

    let r =
        e.c.post(e.h.token_url())
            .form_body(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", "User.Read"),
            ])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], json!("invalid_scope"));

    let r =
        e.c.post(format!("{}/not-a-tenant/oauth2/v2.0/token", e.h.base_url()))
            .form_body(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_codes"], json!([90002]));

    // Client assertion (structure, audience, issuer, lifetime).
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let assertion = format!(
        "{}.{}.{}",
        b64(json!({"alg": "RS256", "typ": "JWT", "x5t": "abc"})),
        b64(
            json!({"aud": e.h.token_url(), "iss": CLIENT, "sub": CLIENT, "jti": "1", "nbf": now, "exp": now + 600})
        ),
        "c2ln"
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let r =
        e.c.post(e.h.token_url())
            .form_body(&form)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let expired = format!(
        "{}.{}.{}",
        b64(json!({"alg": "RS256", "typ": "JWT", "x5t": "abc"})),
        b64(
            json!({"aud": e.h.token_url(), "iss": CLIENT, "sub": CLIENT, "nbf": now - 7200, "exp": now - 3600})
        ),
        "c2ln"
    );
    let form2 = [
        form[0],
        form[1],
        form[2],
        ("client_assertion", expired.as_str()),
        form[4],
    ];
    let r =
        e.c.post(e.h.token_url())
            .form_body(&form2)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], json!("invalid_client"));
}

#[tokio::test]
async fn graph_requires_a_valid_token() {
    let e = env().await;
    let r =
        e.c.get(format!("{}/users", e.h.graph_url()))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_graph_error(&v, "InvalidAuthenticationToken");
    let r =
        e.c.get(format!("{}/users", e.h.graph_url()))
            .bearer_auth("garbage")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    let (s, _) = e.get("/users").await;
    assert_eq!(s, 200);
    e.h.expire_access_tokens();
    let (s, v) = e.get("/users").await;
    assert_eq!(s, 401);
    assert_graph_error(&v, "InvalidAuthenticationToken");
    assert_eq!(
        v["error"]["message"],
        json!("Lifetime validation failed, the token is expired.")
    );
}

#[tokio::test]
async fn read_only_app_is_denied_writes() {
    let mut cfg = EmulatorConfig::default();
    let mut ro = AppRegistration::with_secret("22222222-2222-4333-8444-555555555555", "ro");
    ro.read_only = true;
    cfg.apps.push(ro);
    let h = Emulator::start(cfg).await.unwrap();
    let c = client();
    let v: Value = token_for(&c, &h, "22222222-2222-4333-8444-555555555555", "ro")
        .await
        .json()
        .await
        .unwrap();
    let e = Env {
        token: v["access_token"].as_str().unwrap().to_string(),
        h,
        c,
    };
    let (s, v) = e.post("/users", user("a@contoso.com")).await;
    assert_eq!(s, 403);
    assert_graph_error(&v, "Authorization_RequestDenied");
}

#[tokio::test]
async fn create_user_shapes_required_properties_and_bad_json() {
    let e = env().await;
    let (st, hd, v) = e
        .call(
            Method::POST,
            "/users",
            Some(user("Adele.Vance@contoso.com")),
        )
        .await;
    assert_eq!(st, 201);
    assert!(hd.get("location").is_some());
    assert!(hd.get("request-id").is_some());
    assert!(
        v["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/$metadata#users/$entity")
    );
    let id = v["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(v["userPrincipalName"], json!("Adele.Vance@contoso.com"));
    assert_eq!(v["businessPhones"], json!([]));
    assert!(v.get("passwordProfile").is_none());

    for missing in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "userPrincipalName",
        "passwordProfile",
    ] {
        let mut body = user("x@contoso.com");
        body.as_object_mut().unwrap().remove(missing);
        let (s, v) = e.post("/users", body).await;
        assert_eq!(s, 400, "{missing}");
        assert_graph_error(&v, "Request_BadRequest");
        assert_eq!(
            v["error"]["message"],
            json!(format!(
                "A value is required for property '{missing}' of resource 'User'."
            ))
        );
    }
    // client-request-id is echoed.
    let r =
        e.c.post(format!("{}/users", e.h.graph_url()))
            .bearer_auth(&e.token)
            .header("client-request-id", "abc-123")
            .header("content-type", "application/json")
            .body("{\"displayName\": ")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["client-request-id"], "abc-123");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["innerError"]["client-request-id"],
        json!("abc-123")
    );
    assert!(v["error"]["code"].is_string());

    // onPremisesSyncEnabled is read-only; onPremisesImmutableId is settable but not with '_' or '$'.
    let mut body = user("y@contoso.com");
    body["onPremisesSyncEnabled"] = json!(true);
    let (s, v) = e.post("/users", body).await;
    assert_eq!(s, 400);
    assert_graph_error(&v, "Request_BadRequest");
    let mut body = user("y@contoso.com");
    body["onPremisesImmutableId"] = json!("bad_value");
    assert_eq!(e.post("/users", body).await.0, 400);
    let mut body = user("y@contoso.com");
    body["onPremisesImmutableId"] = json!("iGhmiAEBERG7uxI0VniQqw==");
    assert_eq!(e.post("/users", body).await.0, 201);
    let mut body = user("unknown@contoso.com");
    body["notAProperty"] = json!("x");
    assert_eq!(e.post("/users", body).await.0, 400);
    // GET by UPN, 404 shape.
    let (s, v) = e.get("/users/adele.vance@contoso.com").await;
    assert_eq!(s, 200);
    assert_eq!(v["id"], json!(id));
    let (s, v) = e.get("/users/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(s, 404);
    assert_graph_error(&v, "Request_ResourceNotFound");
}

#[tokio::test]
async fn uniqueness_conflicts() {
    let e = env().await;
    let mut a = user("a@contoso.com");
    a["mail"] = json!("shared@contoso.com");
    a["onPremisesImmutableId"] = json!("AAAAAAAAAAAAAAAAAAAAAA==");
    assert_eq!(e.post("/users", a).await.0, 201);
    let (s, v) = e.post("/users", user("A@CONTOSO.COM")).await;
    assert_eq!(s, 400);
    assert_graph_error(&v, "Request_BadRequest");
    assert_eq!(
        v["error"]["message"],
        json!("Another object with the same value for property userPrincipalName already exists.")
    );
    let mut b = user("b@contoso.com");
    b["mail"] = json!("SHARED@contoso.com");
    let (s, v) = e.post("/users", b).await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        json!("Another object with the same value for property proxyAddresses already exists.")
    );
    let mut b = user("b@contoso.com");
    b["onPremisesImmutableId"] = json!("AAAAAAAAAAAAAAAAAAAAAA==");
    assert_eq!(e.post("/users", b).await.0, 400);
    // A group's SMTP address conflicts with a user's too.
    e.h.seed(ObjectKind::Group, json!({"displayName": "G", "mailEnabled": true, "mailNickname": "g", "securityEnabled": false,
        "groupTypes": ["Unified"], "mail": "g@contoso.com", "proxyAddresses": ["SMTP:g@contoso.com"]}))
        .unwrap();
    let mut c = user("c@contoso.com");
    c["mail"] = json!("g@contoso.com");
    assert_eq!(e.post("/users", c).await.0, 400);
    // PATCH into a conflict.
    let (s, v) = e.post("/users", user("d@contoso.com")).await;
    assert_eq!(s, 201);
    let id = v["id"].as_str().unwrap();
    let (s, v) = e
        .patch(
            &format!("/users/{id}"),
            json!({"userPrincipalName": "a@contoso.com"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        json!("Another object with the same value for property userPrincipalName already exists.")
    );
}

#[tokio::test]
async fn paging_over_250_users_with_next_link() {
    let e = env().await;
    for i in 0..250 {
        e.h.seed(ObjectKind::User, user(&format!("user{i:03}@contoso.com")))
            .unwrap();
    }
    let mut url = "/users?$top=100&$select=id,userPrincipalName".to_string();
    let mut pages = Vec::new();
    let mut ids = std::collections::HashSet::new();
    loop {
        let (s, v) = e.get(&url).await;
        assert_eq!(s, 200);
        let value = v["value"].as_array().unwrap();
        pages.push(value.len());
        for u in value {
            assert!(ids.insert(u["id"].as_str().unwrap().to_string()));
            assert_eq!(u.as_object().unwrap().len(), 2, "{u}");
        }
        match v.get("@odata.nextLink").and_then(Value::as_str) {
            Some(n) => {
                assert!(n.contains("$skiptoken="));
                url = n.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, vec![100, 100, 50]);
    assert_eq!(ids.len(), 250);
    // Default page size is 100.
    let (_, v) = e.get("/users").await;
    assert_eq!(v["value"].as_array().unwrap().len(), 100);
    assert!(v["@odata.nextLink"].is_string());
    // $top is limited to 999.
    let (s, v) = e.get("/users?$top=1000").await;
    assert_eq!(s, 400);
    assert_graph_error(&v, "Request_BadRequest");
    let (_, v) = e.get("/users?$top=999&$count=true").await;
    assert_eq!(v["@odata.count"], json!(250));
    assert_eq!(v["value"].as_array().unwrap().len(), 250);
    assert!(v.get("@odata.nextLink").is_none());
}

#[tokio::test]
async fn select_and_filter() {
    let e = env().await;
    let ext =
        e.h.seed_extension(CLIENT, "dirsyncAnchor", &["User", "Group"])
            .unwrap();
    assert_eq!(
        ext,
        format!("extension_{}_dirsyncAnchor", CLIENT.replace('-', ""))
    );
    let mut a = user("john.smith@contoso.com");
    a["displayName"] = json!("John Smith");
    a["mail"] = json!("john@contoso.com");
    a["onPremisesImmutableId"] = json!("iGhmiAEBERG7uxI0VniQqw==");
    a[&ext] = json!("anchor-1");
    assert_eq!(e.post("/users", a).await.0, 201);
    let mut b = user("jane.doe@contoso.com");
    b["displayName"] = json!("Jane Doe");
    assert_eq!(e.post("/users", b).await.0, 201);

    let (s, v) = e.get("/users?$select=displayName").await;
    assert_eq!(s, 200);
    assert!(
        v["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#users(displayName)")
    );
    for u in v["value"].as_array().unwrap() {
        let keys: Vec<&String> = u.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "{u}");
        assert!(u["id"].is_string() && u["displayName"].is_string());
    }
    let q = |f: &str| format!("/users?$filter={}", urlencode(f));
    let count = |v: &Value| v["value"].as_array().map(Vec::len).unwrap_or(99);
    let (_, v) = e
        .get(&q("userPrincipalName eq 'JOHN.SMITH@contoso.com'"))
        .await;
    assert_eq!(count(&v), 1);
    let (_, v) = e.get(&q("startswith(displayName,'ja')")).await;
    assert_eq!(count(&v), 1);
    assert_eq!(v["value"][0]["displayName"], json!("Jane Doe"));
    let (_, v) = e.get(&q("mail eq 'john@contoso.com'")).await;
    assert_eq!(count(&v), 1);
    let (_, v) = e.get(&q(&format!("{ext} eq 'anchor-1'"))).await;
    assert_eq!(count(&v), 1);
    let (_, v) = e
        .get(&format!(
            "{}&$select=id,{ext}",
            q(&format!("{ext} eq 'anchor-1'"))
        ))
        .await;
    assert_eq!(v["value"][0][&ext], json!("anchor-1"));
    let (_, v) = e
        .get(&q("onPremisesImmutableId eq 'iGhmiAEBERG7uxI0VniQqw=='"))
        .await;
    assert_eq!(count(&v), 1);
    let (_, v) = e
        .get(&q("proxyAddresses/any(x:x eq 'smtp:john@contoso.com')"))
        .await;
    assert_eq!(count(&v), 1);
    let (_, v) = e.get(&q("displayName eq 'Nobody'")).await;
    assert_eq!(count(&v), 0);
    let (s, v) = e.get(&q("displayName eq")).await;
    assert_eq!(s, 400);
    assert_graph_error(&v, "Request_BadRequest");
    let (s, v) = e.get(&q("endswith(mail,'x')")).await;
    assert_eq!(s, 400);
    assert_graph_error(&v, "Request_UnsupportedQuery");
    // Unregistered extensions are rejected.
    let (s, _) = e
        .post("/users", {
            let mut c = user("c@contoso.com");
            c["extension_0000_nope"] = json!("x");
            c
        })
        .await;
    assert_eq!(s, 400);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn groups_and_members() {
    let e = env().await;
    let (s, v) = e
        .post("/groups", json!({"displayName": "Sales", "mailEnabled": false, "mailNickname": "sales", "securityEnabled": true}))
        .await;
    assert_eq!(s, 201);
    let gid = v["id"].as_str().unwrap().to_string();
    let (s, v) = e
        .post(
            "/groups",
            json!({"displayName": "X", "mailEnabled": false, "securityEnabled": true}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        json!("A value is required for property 'mailNickname' of resource 'Group'.")
    );
    let (s, _) = e
        .post("/groups", json!({"displayName": "DL", "mailEnabled": true, "mailNickname": "dl", "securityEnabled": false}))
        .await;
    assert_eq!(s, 400);
    let (s, v) = e
        .post("/groups", json!({"displayName": "M365", "mailEnabled": true, "mailNickname": "m365", "securityEnabled": false, "groupTypes": ["Unified"]}))
        .await;
    assert_eq!(s, 201);
    assert!(v["mail"].as_str().unwrap().starts_with("m365@"));

    let mut users = Vec::new();
    for i in 0..25 {
        let (_, v) = e.post("/users", user(&format!("m{i}@contoso.com"))).await;
        users.push(v["id"].as_str().unwrap().to_string());
    }
    let odata_id = |id: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")});
    let (s, v) = e
        .post(&format!("/groups/{gid}/members/$ref"), odata_id(&users[0]))
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = e
        .post(&format!("/groups/{gid}/members/$ref"), odata_id(&users[0]))
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        json!(
            "One or more added object references already exist for the following modified properties: 'members'."
        )
    );
    let (s, _) = e
        .post(
            &format!("/groups/{gid}/members/$ref"),
            odata_id("00000000-0000-0000-0000-000000000000"),
        )
        .await;
    assert_eq!(s, 404);
    // members@odata.bind: more than 20 rejected, 20 accepted.
    let bind = |ids: &[String]| json!({"members@odata.bind": ids.iter().map(|i| format!("https://graph.microsoft.com/v1.0/directoryObjects/{i}")).collect::<Vec<_>>()});
    let (s, v) = e
        .patch(&format!("/groups/{gid}"), bind(&users[1..22]))
        .await;
    assert_eq!(s, 400);
    assert_graph_error(&v, "Request_BadRequest");
    let (s, v) = e
        .patch(&format!("/groups/{gid}"), bind(&users[1..21]))
        .await;
    assert_eq!(s, 204, "{v}");
    let (_, v) = e
        .get(&format!(
            "/groups/{gid}/members?$top=15&$select=id,userPrincipalName"
        ))
        .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 15);
    assert_eq!(v["value"][0]["@odata.type"], json!("#microsoft.graph.user"));
    let next = v["@odata.nextLink"].as_str().unwrap().to_string();
    let (_, v) = e.get(&next).await;
    assert_eq!(v["value"].as_array().unwrap().len(), 6);
    // Remove.
    let (s, _) = e
        .delete(&format!("/groups/{gid}/members/{}/$ref", users[0]))
        .await;
    assert_eq!(s, 204);
    let (s, v) = e
        .delete(&format!("/groups/{gid}/members/{}/$ref", users[0]))
        .await;
    assert_eq!(s, 404);
    assert_graph_error(&v, "Request_ResourceNotFound");
    let (_, v) = e.get(&format!("/users/{}/memberOf", users[1])).await;
    assert_eq!(v["value"][0]["id"], json!(gid));
    // Create with members@odata.bind.
    let mut body = json!({"displayName": "G2", "mailEnabled": false, "mailNickname": "g2", "securityEnabled": true});
    body["members@odata.bind"] = bind(&users[0..3])["members@odata.bind"].clone();
    let (s, v) = e.post("/groups", body).await;
    assert_eq!(s, 201);
    let g2 = v["id"].as_str().unwrap();
    let (_, v) = e.get(&format!("/groups/{g2}/members")).await;
    assert_eq!(v["value"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn soft_delete_and_restore() {
    let e = env().await;
    let (_, v) = e.post("/users", user("leaver@contoso.com")).await;
    let id = v["id"].as_str().unwrap().to_string();
    let (_, g) = e
        .post("/groups", json!({"displayName": "G", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true}))
        .await;
    let gid = g["id"].as_str().unwrap().to_string();
    e.h.seed_member(&gid, &id).unwrap();
    let (s, _) = e.delete(&format!("/users/{id}")).await;
    assert_eq!(s, 204);
    assert_eq!(e.get(&format!("/users/{id}")).await.0, 404);
    let (_, v) = e.get(&format!("/groups/{gid}/members")).await;
    assert_eq!(v["value"].as_array().unwrap().len(), 0);
    let (s, v) = e.get("/directory/deletedItems/microsoft.graph.user").await;
    assert_eq!(s, 200);
    assert_eq!(v["value"][0]["id"], json!(id));
    assert!(v["value"][0]["deletedDateTime"].is_string());
    let (s, v) = e.get(&format!("/directory/deletedItems/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(v["@odata.type"], json!("#microsoft.graph.user"));
    let (s, v) = e
        .post(&format!("/directory/deletedItems/{id}/restore"), json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], json!(id));
    assert_eq!(e.get(&format!("/users/{id}")).await.0, 200);
    let (_, v) = e.get(&format!("/groups/{gid}/members")).await;
    assert_eq!(
        v["value"].as_array().unwrap().len(),
        1,
        "membership restored"
    );
    // Restore fails when the UPN was taken meanwhile.
    assert_eq!(e.delete(&format!("/users/{id}")).await.0, 204);
    assert_eq!(e.post("/users", user("leaver@contoso.com")).await.0, 201);
    let (s, v) = e
        .post(&format!("/directory/deletedItems/{id}/restore"), json!({}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        json!("Another object with the same value for property userPrincipalName already exists.")
    );
    // Permanent delete.
    assert_eq!(
        e.delete(&format!("/directory/deletedItems/{id}")).await.0,
        204
    );
    assert_eq!(e.get(&format!("/directory/deletedItems/{id}")).await.0, 404);
    // Security groups are soft-deleted too (v1.0).
    assert_eq!(e.delete(&format!("/groups/{gid}")).await.0, 204);
    let (_, v) = e.get("/directory/deletedItems/microsoft.graph.group").await;
    assert_eq!(v["value"][0]["id"], json!(gid));
}

#[tokio::test]
async fn extension_properties_endpoint() {
    let e = env().await;
    let (_, v) = e
        .get(&format!(
            "/applications?$filter={}",
            urlencode(&format!("appId eq '{CLIENT}'"))
        ))
        .await;
    let app_id = v["value"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = e
        .post(
            &format!("/applications/{app_id}/extensionProperties"),
            json!({"name": "anchor", "dataType": "String", "targetObjects": ["User", "Group"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let name = v["name"].as_str().unwrap().to_string();
    assert_eq!(
        name,
        format!("extension_{}_anchor", CLIENT.replace('-', ""))
    );
    let (_, v) = e
        .get(&format!("/applications/{app_id}/extensionProperties"))
        .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    let (_, u) = e.post("/users", user("ext@contoso.com")).await;
    let uid = u["id"].as_str().unwrap();
    let (s, _) = e
        .patch(&format!("/users/{uid}"), json!({ name.clone(): "a1" }))
        .await;
    assert_eq!(s, 204);
    let (_, v) = e.get(&format!("/users/{uid}?$select={name}")).await;
    assert_eq!(v[&name], json!("a1"));
    let (s, _) = e
        .patch(&format!("/users/{uid}"), json!({ name.clone(): 42 }))
        .await;
    assert_eq!(s, 400);
    let (s, _) = e
        .post(
            &format!("/applications/{app_id}/extensionProperties"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn manager_reference() {
    let e = env().await;
    let (_, boss) = e.post("/users", user("boss@contoso.com")).await;
    let (_, emp) = e.post("/users", user("emp@contoso.com")).await;
    let (boss, emp) = (
        boss["id"].as_str().unwrap().to_string(),
        emp["id"].as_str().unwrap().to_string(),
    );
    let (s, _) = e.get(&format!("/users/{emp}/manager")).await;
    assert_eq!(s, 404);
    let (s, _, _) = e
        .call(
            Method::PUT,
            &format!("/users/{emp}/manager/$ref"),
            Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{boss}")})),
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = e.get(&format!("/users/{emp}/manager")).await;
    assert_eq!(s, 200);
    assert_eq!(v["id"], json!(boss));
    assert_eq!(v["@odata.type"], json!("#microsoft.graph.user"));
    let (_, v) = e
        .get(&format!("/users/{emp}?$expand=manager($select=id)"))
        .await;
    assert_eq!(v["manager"]["id"], json!(boss));
    let (_, v) = e.get(&format!("/users/{boss}/directReports")).await;
    assert_eq!(v["value"][0]["id"], json!(emp));
    assert_eq!(e.delete(&format!("/users/{emp}/manager/$ref")).await.0, 204);
    assert_eq!(e.get(&format!("/users/{emp}/manager")).await.0, 404);
    // Prefer: odata.maxpagesize.
    let r =
        e.c.get(format!("{}/users", e.h.graph_url()))
            .bearer_auth(&e.token)
            .header("Prefer", "odata.maxpagesize=1")
            .send()
            .await
            .unwrap();
    assert_eq!(r.headers()["preference-applied"], "odata.maxpagesize=1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    assert!(v["@odata.nextLink"].is_string());
}

#[tokio::test]
async fn deleted_items_expire_after_retention() {
    let e = env_with(EmulatorConfig {
        deleted_retention: std::time::Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let (_, u) = e.post("/users", user("gone@contoso.com")).await;
    let id = u["id"].as_str().unwrap().to_string();
    assert_eq!(e.delete(&format!("/users/{id}")).await.0, 204);
    assert_eq!(e.get(&format!("/directory/deletedItems/{id}")).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(e.get(&format!("/directory/deletedItems/{id}")).await.0, 404);
    let (s, _) = e
        .post(&format!("/directory/deletedItems/{id}/restore"), json!({}))
        .await;
    assert_eq!(s, 404);
}

/// Test-only self-signed certificate and its PKCS#8 RSA key (generated with openssl for
/// these tests; not used anywhere else).
const TEST_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIDIzCCAgugAwIBAgIURUX5as3m519FirMoeviP8fmNCZwwDQYJKoZIhvcNAQEL
BQAwIDEeMBwGA1UEAwwVZGlyc3luYy1lbXVsYXRvci10ZXN0MCAXDTI2MTEyMzA5
NDM0M1oYDzIxMjYxMDMwMDk0MzQzWjAgMR4wHAYDVQQDDBVkaXJzeW5jLWVtdWxh
dG9yLXRlc3QwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQCM8CDRmcck
d7qWF4vpi90sKqKPVUULJWN9ahO6DaFbcMBzRUnhdsdvMqrY3TcZGc+VMZHU+dL1
5w9uYlBEu9iV/U39fVWyELsihizG6m+gOAoMNc5ZyvzhgqWWYxqk8cOD36t7qjzb
yJ4bO+df7h3KDojeT93WxwBlBfpWvlfSkcvo4X1eGjmMnWLVsl6MS89DFkmVZOci
fu2elHePybddZuTpD4G+l6LHVhjNGKnYmu77ryjY6yIFydviWDoiZKr0aBL5wdYz
0XOpbQQZ5EUS8loFB1n4zf+n5YZ+xLSXX1J2wEX/WeVNQK3E5hxnAHa9vPQ7M80U
Kao0Nfa4TuJXAgMBAAGjUzBRMB0GA1UdDgQWBBSMnc47Xlc/At/htIcN0xRCfHqx
3DAfBgNVHSMEGDAWgBSMnc47Xlc/At/htIcN0xRCfHqx3DAPBgNVHRMBAf8EBTAD
AQH/MA0GCSqGSIb3DQEBCwUAA4IBAQBwS9V9gS1JoKi2K/nmcdkO9Ewbr7NUnJYX
M/GXz0T30ODT6hfLSHAVNt4mQX+8PedNEOKfWBlRuaNYGiEJdc+k6y1Tldp3dNjO
C3GJxBLfNSnmptkfmB5Tv5ldysicpeSCixHMzQZy8n/qs8NMRmYr44dzzt6sRM2f
sTFFjFh6Bqack4OlCe6GLYEb1+uX8mAVTAjmu+Cj2hQGZdjN9QGQdiut3JBoaDC3
tn9SKfRLdfmeEjXM8CA5rz1cRNawNpSSpfN53EC3b+3852Mss+q+5iCegzI2hKrv
lSJaOjmqrtzSeprBf0CkcQPV9ibyQWtxk+z4OO49GywTIe+pOgTv
-----END CERTIFICATE-----
";
const TEST_KEY_PKCS8_B64: &str = "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCM8CDRmcckd7qWF4vpi90sKqKPVUULJWN9ahO6DaFbcMBzRUnhdsdvMqrY3TcZGc+VMZHU+dL15w9uYlBEu9iV/U39fVWyELsihizG6m+gOAoMNc5ZyvzhgqWWYxqk8cOD36t7qjzbyJ4bO+df7h3KDojeT93WxwBlBfpWvlfSkcvo4X1eGjmMnWLVsl6MS89DFkmVZOcifu2elHePybddZuTpD4G+l6LHVhjNGKnYmu77ryjY6yIFydviWDoiZKr0aBL5wdYz0XOpbQQZ5EUS8loFB1n4zf+n5YZ+xLSXX1J2wEX/WeVNQK3E5hxnAHa9vPQ7M80UKao0Nfa4TuJXAgMBAAECggEAAlz6Z+YfGtAiu4AmLLw9vdvyWtq2rClF1RhrJg9mP70qjoqmyPy8lMA+pIep2oyX8iv6tbc0rHV7fEHYwul71O2cGhG41whrYt8cfBj6CZYDxFDYpqFkaR5o/i/bBmrPxcCbEWYS3CqUGbSaiUpZ8VJNRQQ40SOhsMMo/4n0hgejPas1ntcbEjs5GgswcqATGf4QSyt50POsbuME1RjeZY/Qmq9lsLXbxIg70k/Gr47hcC23mNeVNryiy7DRuSr0y0oR8GMoXsolsG0BQc3Di4/3Quo/oLwpsFrlebBm+zCiui+LfmEuHqQsqZ9HvqM2NUIF1psXI5rfGuN/5Z4e3QKBgQDC/yGtvEkCITDF++b+qAqCtubX/RvAHQ40VYmk0FSLXj3nie1Xca8u5N4vroSW4shnXNKvH/iuhTJXrqgKbjrj9ni40DtDVrePV47w1R9teLfRfATx7RiO6/CsyyAiUr60AOCv/6UkLlWTlRgDg3DEGvbC/NqgNNwMJHzb+lvkIwKBgQC5B45zBNG58EhnKUJfZiYDW/KHIsmoEyQJaNo/HgQYKilwtdFPeqZp3pnXJcz8onofSYPW/GTMXz5g1RRhGCeMvcNE/vzncMVDKghcjk9Beg3kgyjnnlwAWZqkH8++7ajQroMy3lot+mQ9nurIR9BzOytqGjuaJ6506BhvZU3CPQKBgFhVKvSA7rHAR0/opOOHS/uaz0fYqNGGWADtHsVCeooHzxMsMBAEt88Obng7HmUbppzsN6SNXyHvxLZjsEvJU3QhGt7dtXrztYOBrob6hJoarWqAO908Anv79bLQ8WWbBjiUjTQtIqoZMzr/tzkgOd0cOdxqnr8kMuptPQKJj0bxAoGAXtTNoIumxeqt4RmXZ/edofkdKz+cJSVyQdRYjyLeLFhnltnI5jhRVE9/f3JjRlQrzR9LkAMZ0lk6SjzLThwoIQ0dKJ6bli8JGyxOzsktO7zHpAfJDjTuqEtEY7veKNf7vsDCg27Mv2XmvGJXqMCNyJFZ5e59/7s4wbg21dkQ6m0CgYASnKRp9jx5Khf8OeeTb7CmeRN5Gn8PZyvTlulrX5TVS5NfR9lFuCtoFPzT4lYDf1qTDrUmbb1/wu4Nq5t3kM856nvDiO8bfD6n/UIRkKDr0uu8P//iCMN3m3PxAuZxLr22aOLocZMV7RK2YcQojJsYS08/zPpT9sEJG51N6CZmKw==";

fn signed_assertion(aud: &str, x5t_from: &[u8], tamper: bool) -> String {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let thumb = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, x5t_from);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": b64(thumb.as_ref())});
    let claims =
        json!({"aud": aud, "iss": CLIENT, "sub": CLIENT, "jti": "j", "nbf": now, "exp": now + 600});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let der = base64::engine::general_purpose::STANDARD
        .decode(TEST_KEY_PKCS8_B64)
        .unwrap();
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    if tamper {
        sig[0] ^= 0xff;
    }
    format!("{input}.{}", b64(&sig))
}

#[tokio::test]
async fn client_assertion_signature_is_verified_with_a_registered_certificate() {
    use base64::Engine;
    let mut cfg = EmulatorConfig::default();
    cfg.apps[0].certificate_pem = Some(TEST_CERT_PEM.to_string());
    let h = Emulator::start(cfg).await.unwrap();
    let c = client();
    let b64: String = TEST_CERT_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let cert_der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let send = |assertion: String| {
        let c = c.clone();
        let url = h.token_url();
        async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
            ];
            let r = c.post(url).form_body(&form).send().await.unwrap();
            let st = r.status();
            (st, r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = send(signed_assertion(&h.token_url(), &cert_der, false)).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["access_token"].is_string());
    let (s, v) = send(signed_assertion(&h.token_url(), &cert_der, true)).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"], json!("invalid_client"));
    assert_eq!(v["error_codes"], json!([700027]));
    let (s, v) = send(signed_assertion(
        &h.token_url(),
        b"another certificate",
        false,
    ))
    .await;
    assert_eq!(s, 401);
    assert_eq!(v["error_codes"], json!([700027]));
}

#[tokio::test]
async fn contacts_devices_and_count() {
    let e = env().await;
    let cid = e
        .h
        .seed(ObjectKind::Contact, json!({"displayName": "Ext Partner", "mail": "p@partner.com", "proxyAddresses": ["SMTP:p@partner.com"]}))
        .unwrap();
    e.h.seed(
        ObjectKind::Device,
        json!({"displayName": "LAPTOP-1", "deviceId": "d1", "operatingSystem": "Windows"}),
    )
    .unwrap();
    let (s, v) = e.get("/contacts").await;
    assert_eq!(s, 200);
    assert_eq!(v["value"][0]["id"], json!(cid));
    assert_eq!(v["value"][0]["mail"], json!("p@partner.com"));
    let (s, v) = e.get("/devices?$select=displayName,operatingSystem").await;
    assert_eq!(s, 200);
    assert_eq!(v["value"][0]["operatingSystem"], json!("Windows"));
    // orgContact is read-only through Graph v1.0.
    let (s, v) = e.post("/contacts", json!({"displayName": "x"})).await;
    assert_eq!(s, 405);
    assert!(v["error"]["code"].is_string());
    let (s, _) = e
        .patch(&format!("/contacts/{cid}"), json!({"displayName": "y"}))
        .await;
    assert_eq!(s, 405);
    // A contact's SMTP address is unique across objects too.
    let mut u = user("u@contoso.com");
    u["mail"] = json!("p@partner.com");
    assert_eq!(e.post("/users", u).await.0, 400);
    for i in 0..3 {
        e.post("/users", user(&format!("c{i}@contoso.com"))).await;
    }
    let r =
        e.c.get(format!("{}/users/$count", e.h.graph_url()))
            .bearer_auth(&e.token)
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "3");
    let (s, v) = e.get(&format!("/directoryObjects/{cid}")).await;
    assert_eq!(s, 200);
    assert_eq!(v["@odata.type"], json!("#microsoft.graph.orgContact"));
}

/// Malformed input from a client never panics the emulator: every answer is a Graph error.
#[tokio::test]
async fn malformed_requests_get_odata_errors() {
    let e = env().await;
    let (_, g) = e
        .post("/groups", json!({"displayName": "G", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true}))
        .await;
    let gid = g["id"].as_str().unwrap().to_string();
    let (_, u) = e.post("/users", user("u@contoso.com")).await;
    let uid = u["id"].as_str().unwrap().to_string();
    let bodies = [
        "[]",
        "\"str\"",
        "1",
        "null",
        "{",
        "{\"displayName\": 5}",
        "{\"accountEnabled\": \"yes\"}",
        "{\"members@odata.bind\": \"x\"}",
        "{\"members@odata.bind\": [1, 2]}",
        "{\"@odata.id\": 5}",
        "{\"proxyAddresses\": [\"smtp\u{e9}:x\"]}",
        "{\"userPrincipalName\": \"no-at-sign\"}",
        "{\"requests\": [{\"id\": 1}]}",
        "{\"requests\": \"x\"}",
        "{\"name\": \"\", \"dataType\": \"Nope\"}",
    ];
    let paths = [
        (Method::POST, "/users".to_string()),
        (Method::PATCH, format!("/users/{uid}")),
        (Method::POST, "/groups".to_string()),
        (Method::PATCH, format!("/groups/{gid}")),
        (Method::POST, format!("/groups/{gid}/members/$ref")),
        (Method::PUT, format!("/users/{uid}/manager/$ref")),
        (Method::POST, "/$batch".to_string()),
        (
            Method::POST,
            "/directory/deletedItems/nope/restore".to_string(),
        ),
        (Method::GET, "/users?$filter=startswith(".to_string()),
        (Method::GET, "/users?$top=abc".to_string()),
        (Method::GET, "/users?$skiptoken=%%%".to_string()),
        (Method::GET, "/users/delta?$deltatoken=garbage".to_string()),
        (Method::GET, "/users/delta?$skiptoken=garbage".to_string()),
        (Method::GET, "/nothing/here".to_string()),
        (Method::GET, "/users?$expand=memberOf".to_string()),
    ];
    for (m, p) in &paths {
        for b in bodies {
            let r =
                e.c.request(m.clone(), format!("{}{}", e.h.graph_url(), p))
                    .bearer_auth(&e.token)
                    .header("content-type", "application/json")
                    .body(b)
                    .send()
                    .await
                    .unwrap_or_else(|err| panic!("{m} {p} {b}: {err}"));
            let st = r.status().as_u16();
            let text = r.text().await.unwrap();
            if st >= 400 {
                assert!(st < 500, "{m} {p} {b}: {st} {text}");
                let v: Value =
                    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{m} {p} {b}: {text}"));
                assert!(v["error"]["code"].is_string(), "{m} {p} {b}: {text}");
            }
        }
    }
}

#[tokio::test]
async fn organization_domains_discovery_and_basic_auth() {
    let e = env_with(EmulatorConfig {
        domains: vec!["contoso.onmicrosoft.com".into(), "contoso.com".into()],
        federated_domains: vec!["corp.contoso.com".into()],
        ..Default::default()
    })
    .await;
    let (s, v) = e.get("/organization").await;
    assert_eq!(s, 200);
    assert_eq!(v["value"][0]["id"], json!(e.h.tenant_id()));
    assert_eq!(
        v["value"][0]["verifiedDomains"].as_array().unwrap().len(),
        3
    );
    let (_, v) = e.get("/domains").await;
    assert_eq!(v["value"][0]["id"], json!("contoso.onmicrosoft.com"));
    assert_eq!(v["value"][0]["isDefault"], json!(true));
    // Unverified UPN domain.
    let (s, v) = e.post("/users", user("x@fabrikam.com")).await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("verified domain")
    );
    assert_eq!(e.post("/users", user("x@contoso.com")).await.0, 201);
    // A federated domain needs onPremisesImmutableId on create.
    let (s, v) = e.post("/users", user("fed@corp.contoso.com")).await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        json!("A value is required for property 'onPremisesImmutableId' of resource 'User'.")
    );
    let mut fed = user("fed@corp.contoso.com");
    fed["onPremisesImmutableId"] = json!("iGhmiAEBERG7uxI0VniQqw==");
    assert_eq!(e.post("/users", fed).await.0, 201);
    // Discovery document.
    let r =
        e.c.get(format!(
            "{}/v2.0/.well-known/openid-configuration",
            e.h.authority()
        ))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_endpoint"], json!(e.h.token_url()));
    // client_secret_basic.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT}:{SECRET}"));
    let r =
        e.c.post(e.h.token_url())
            .header("authorization", format!("Basic {basic}"))
            .form_body(&[
                ("grant_type", "client_credentials"),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    // 401 carries WWW-Authenticate.
    let r =
        e.c.get(format!("{}/users", e.h.graph_url()))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
}

#[tokio::test]
async fn deleted_items_are_paged() {
    let e = env().await;
    for i in 0..5 {
        let id =
            e.h.seed(ObjectKind::User, user(&format!("del{i}@contoso.com")))
                .unwrap();
        assert_eq!(e.delete(&format!("/users/{id}")).await.0, 204);
    }
    let (_, v) = e
        .get("/directory/deletedItems/microsoft.graph.user?$top=2")
        .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 2);
    let mut next = v["@odata.nextLink"].as_str().unwrap().to_string();
    let mut total = 2;
    loop {
        let (_, v) = e.get(&next).await;
        total += v["value"].as_array().unwrap().len();
        match v["@odata.nextLink"].as_str() {
            Some(n) => next = n.to_string(),
            None => break,
        }
    }
    assert_eq!(total, 5);
}

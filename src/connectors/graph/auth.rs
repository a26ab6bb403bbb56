//! OAuth2 client credentials for Microsoft Graph: client secret or a certificate (signed JWT
//! client assertion, RS256), a token cache and refresh before expiry.
//!
//! Secrets and tokens never appear in logs or error messages.

use super::settings::GraphSettings;
use crate::connectors::ConnectorError;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The credential used to ask for tokens.
pub enum Credential {
    /// A client secret (read from an environment variable or a file).
    Secret(String),
    /// An RSA key and the certificate thumbprints for a client assertion.
    Certificate {
        /// The signing key.
        key: Box<ring::rsa::KeyPair>,
        /// SHA-1 thumbprint of the certificate (DER), for `x5t`.
        sha1: Vec<u8>,
        /// SHA-256 thumbprint, for `x5t#S256` (when the certificate file is known).
        sha256: Option<Vec<u8>>,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Credential::Secret(<redacted>)"),
            Credential::Certificate { .. } => f.write_str("Credential::Certificate(<redacted>)"),
        }
    }
}

fn io_err(path: &Path, e: std::io::Error) -> ConnectorError {
    ConnectorError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

fn resolve(base: &Path, p: &Path) -> std::path::PathBuf {
    if p.is_relative() {
        base.join(p)
    } else {
        p.to_path_buf()
    }
}

/// Decodes every PEM block with the given label(s); returns (label, DER) pairs.
pub fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut label: Option<String> = None;
    let mut body = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(l) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|r| r.strip_suffix("-----"))
        {
            label = Some(l.to_string());
            body.clear();
        } else if line.starts_with("-----END ") {
            if let Some(l) = label.take()
                && let Ok(der) = STANDARD.decode(body.as_bytes())
            {
                out.push((l, der));
            }
            body.clear();
        } else if label.is_some() {
            body.push_str(line);
        }
    }
    out
}

impl Credential {
    /// Loads the credential named by the settings; relative files resolve against `base_dir`.
    pub fn load(s: &GraphSettings, base_dir: &Path) -> Result<Credential, ConnectorError> {
        if let Some(var) = &s.client_secret_env {
            let v = std::env::var(var).map_err(|_| {
                ConnectorError::Config(format!(
                    "environment variable '{var}' (client secret) is not set"
                ))
            })?;
            if v.trim().is_empty() {
                return Err(ConnectorError::Config(format!(
                    "environment variable '{var}' (client secret) is empty"
                )));
            }
            return Ok(Credential::Secret(v.trim().to_string()));
        }
        if let Some(f) = &s.client_secret_file {
            let p = resolve(base_dir, f);
            let text = std::fs::read_to_string(&p).map_err(|e| io_err(&p, e))?;
            let v = text.lines().next().unwrap_or("").trim().to_string();
            if v.is_empty() {
                return Err(ConnectorError::Config(format!(
                    "client secret file {} is empty",
                    p.display()
                )));
            }
            return Ok(Credential::Secret(v));
        }
        let Some(c) = &s.certificate else {
            return Err(ConnectorError::Config(
                "no credential: set client_secret_env, client_secret_file or certificate".into(),
            ));
        };
        let kp = resolve(base_dir, &c.key_file);
        let text = std::fs::read_to_string(&kp).map_err(|e| io_err(&kp, e))?;
        let mut key = None;
        for (label, der) in pem_blocks(&text) {
            let k = match label.as_str() {
                "PRIVATE KEY" => ring::rsa::KeyPair::from_pkcs8(&der).ok(),
                "RSA PRIVATE KEY" => ring::rsa::KeyPair::from_der(&der).ok(),
                _ => None,
            };
            if k.is_some() {
                key = k;
                break;
            }
        }
        let key = key.ok_or_else(|| {
            ConnectorError::Config(format!(
                "{}: no usable RSA private key (PEM 'PRIVATE KEY' or 'RSA PRIVATE KEY')",
                kp.display()
            ))
        })?;
        let (sha1, sha256) = if let Some(cf) = &c.cert_file {
            let cp = resolve(base_dir, cf);
            let text = std::fs::read_to_string(&cp).map_err(|e| io_err(&cp, e))?;
            let der = pem_blocks(&text)
                .into_iter()
                .find(|(l, _)| l == "CERTIFICATE")
                .map(|(_, d)| d)
                .ok_or_else(|| {
                    ConnectorError::Config(format!("{}: no PEM certificate", cp.display()))
                })?;
            let s1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
            let s2 = ring::digest::digest(&ring::digest::SHA256, &der);
            (s1.as_ref().to_vec(), Some(s2.as_ref().to_vec()))
        } else {
            let hex: String = c
                .thumbprint
                .as_deref()
                .unwrap_or("")
                .chars()
                .filter(|ch| !matches!(ch, ':' | ' '))
                .collect();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| {
                    hex.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .filter(|b| b.len() == 20)
                .ok_or_else(|| {
                    ConnectorError::Config(
                        "certificate thumbprint must be 40 hex digits (SHA-1)".into(),
                    )
                })?;
            (bytes, None)
        };
        Ok(Credential::Certificate {
            key: Box::new(key),
            sha1,
            sha256,
        })
    }

    /// A signed client assertion for the token endpoint `aud`.
    pub fn assertion(&self, client_id: &str, aud: &str) -> Result<Option<String>, ConnectorError> {
        let Credential::Certificate { key, sha1, sha256 } = self else {
            return Ok(None);
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT",
            "x5t": URL_SAFE_NO_PAD.encode(sha1)});
        if let Some(s2) = sha256 {
            header["x5t#S256"] = URL_SAFE_NO_PAD.encode(s2).into();
        }
        let claims = serde_json::json!({
            "aud": aud, "iss": client_id, "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now, "nbf": now.saturating_sub(60), "exp": now + 600,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = ring::rand::SystemRandom::new();
        let mut sig = vec![0u8; key.public().modulus_len()];
        key.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &rng,
            input.as_bytes(),
            &mut sig,
        )
        .map_err(|_| {
            ConnectorError::Authentication("signing the client assertion failed".into())
        })?;
        Ok(Some(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))))
    }
}

/// A cached access token.
#[derive(Clone)]
pub struct Token {
    /// The bearer token.
    pub value: String,
    /// When to refresh it (some time before its expiry).
    pub refresh_at: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Asks the token endpoint for a new token.
pub async fn fetch_token(
    client: &reqwest::Client,
    s: &GraphSettings,
    cred: &Credential,
) -> Result<Token, ConnectorError> {
    let url = s.token_url();
    let scope = s.scope();
    let mut form: Vec<(&str, String)> = vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", s.client_id.clone()),
        ("scope", scope),
    ];
    match cred {
        Credential::Secret(sec) => form.push(("client_secret", sec.clone())),
        Credential::Certificate { .. } => {
            let a = cred.assertion(&s.client_id, &url)?.unwrap_or_default();
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ));
            form.push(("client_assertion", a));
        }
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let resp = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| ConnectorError::Connection {
            target: url.clone(),
            message: super::http::describe(&e),
        })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if !status.is_success() {
        let code = v["error"].as_str().unwrap_or("error");
        // The AADSTS description names the problem without echoing the secret.
        let desc = v["error_description"]
            .as_str()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        return Err(ConnectorError::Authentication(format!(
            "token endpoint answered {}: {code}: {desc}",
            status.as_u16()
        )));
    }
    let value = v["access_token"]
        .as_str()
        .ok_or_else(|| ConnectorError::Authentication("token answer without access_token".into()))?
        .to_string();
    let lifetime = v["expires_in"]
        .as_u64()
        .or_else(|| v["expires_in"].as_str().and_then(|x| x.parse().ok()))
        .unwrap_or(3599);
    // Refresh five minutes before expiry (or at 80 % of a short lifetime).
    let margin = (lifetime / 5).min(300);
    tracing::debug!(lifetime_secs = lifetime, "graph: access token acquired");
    Ok(Token {
        value,
        refresh_at: Instant::now() + Duration::from_secs(lifetime.saturating_sub(margin)),
    })
}

/// Percent-encodes a form or URL value (RFC 3986 unreserved characters kept).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

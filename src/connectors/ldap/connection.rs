//! Connections to an LDAP server: TLS (LDAPS and StartTLS through rustls), simple bind,
//! timeouts, reconnect with backoff, raw (binary-safe) search results and paged searches.

use super::settings::ConnectionSettings;
use crate::connectors::{ConnectorError, ExportErrorKind};
use ldap3::asn1::{PL, StructureTag, TagClass, parse_tag};
use ldap3::controls::RawControl;
use ldap3::{LdapConn, LdapConnSettings, LdapError, LdapResult, Scope};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::sync::Arc;
use std::time::Duration;

/// OID of the paged results control (RFC 2696).
pub const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";

/// An entry as read from the wire: every value kept as bytes, so binary attributes stay binary.
#[derive(Debug, Clone, Default)]
pub struct RawEntry {
    /// Entry DN as sent by the server.
    pub dn: String,
    /// Attribute name (as sent, possibly with options such as `;range=0-1499`) and values.
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
    /// Controls attached to the entry (for example the RFC 4533 sync state).
    pub controls: Vec<RawControl>,
}

impl RawEntry {
    /// Values of an attribute (case-insensitive name, no options).
    pub fn values(&self, name: &str) -> Option<&Vec<Vec<u8>>> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of an attribute as text.
    pub fn first_text(&self, name: &str) -> Option<String> {
        self.values(name)
            .and_then(|v| v.first())
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// One message of a search response.
#[derive(Debug)]
pub enum SearchMsg {
    /// A search result entry.
    Entry(RawEntry),
    /// An intermediate response (RFC 4533 syncInfo).
    Intermediate {
        /// Response name (OID).
        oid: Option<String>,
        /// Response value.
        value: Option<Vec<u8>>,
        /// Attached controls.
        controls: Vec<RawControl>,
    },
}

/// The final result of a search.
#[derive(Debug, Clone)]
pub struct SearchDone {
    /// LDAP result code.
    pub rc: u32,
    /// Diagnostic message.
    pub text: String,
    /// Response controls.
    pub controls: Vec<RawControl>,
}

impl SearchDone {
    /// The value of the response control with this OID.
    pub fn control(&self, oid: &str) -> Option<&RawControl> {
        self.controls.iter().find(|c| c.ctype == oid)
    }
}

/// A connection to one LDAP server that reconnects on demand.
pub struct LdapClient {
    settings: ConnectionSettings,
    password: Option<String>,
    tls: Option<Arc<ClientConfig>>,
    conn: Option<LdapConn>,
}

impl std::fmt::Debug for LdapClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapClient")
            .field("url", &self.settings.url)
            .field("bind_dn", &self.settings.bind_dn)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl LdapClient {
    /// Prepares a client: resolves the password and builds the TLS configuration. Does not connect.
    pub fn new(settings: ConnectionSettings) -> Result<LdapClient, ConnectorError> {
        let password = settings.resolve_password()?;
        if password.is_some() && settings.bind_dn.is_none() {
            return Err(ConnectorError::Config(
                "a bind password is configured but no bind_dn".into(),
            ));
        }
        let tls = tls_config(&settings)?;
        Ok(LdapClient {
            settings,
            password,
            tls,
            conn: None,
        })
    }

    /// Same as [`LdapClient::new`] with the password handed over by the caller.
    pub fn with_password(
        settings: ConnectionSettings,
        password: Option<String>,
    ) -> Result<LdapClient, ConnectorError> {
        let tls = tls_config(&settings)?;
        Ok(LdapClient {
            settings,
            password,
            tls,
            conn: None,
        })
    }

    /// The server URL (for messages).
    pub fn target(&self) -> &str {
        &self.settings.url
    }

    /// The connection settings.
    pub fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    /// Drops the current connection; the next call reconnects.
    pub fn invalidate(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = c.unbind();
        }
    }

    /// The live connection, connecting (with retries and backoff) when needed.
    pub fn conn(&mut self) -> Result<&mut LdapConn, ConnectorError> {
        let closed = match self.conn.as_mut() {
            Some(c) => c.is_closed(),
            None => true,
        };
        if closed {
            self.conn = None;
            let attempts = self.settings.connect_attempts.max(1);
            let mut wait = Duration::from_millis(self.settings.retry_backoff_ms);
            let mut last = None;
            for attempt in 1..=attempts {
                match self.connect_once() {
                    Ok(c) => {
                        self.conn = Some(c);
                        break;
                    }
                    Err(e @ (ConnectorError::Authentication(_) | ConnectorError::Config(_))) => {
                        return Err(e);
                    }
                    Err(e) => {
                        tracing::warn!(url = %self.settings.url, attempt, error = %e, "LDAP connection attempt failed");
                        let tls_failure = e.to_string().contains("TLS");
                        last = Some(e);
                        if tls_failure {
                            break;
                        }
                        if attempt < attempts {
                            std::thread::sleep(wait);
                            wait = wait.saturating_mul(2);
                        }
                    }
                }
            }
            if let Some(e) = last
                && self.conn.is_none()
            {
                return Err(e);
            }
        }
        self.conn
            .as_mut()
            .ok_or_else(|| ConnectorError::Connection {
                target: self.settings.url.clone(),
                message: "not connected".into(),
            })
    }

    fn connect_once(&self) -> Result<LdapConn, ConnectorError> {
        let s = &self.settings;
        let mut cs = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(s.connect_timeout_secs))
            .set_starttls(s.starttls);
        if !s.tls_verify {
            tracing::warn!(url = %s.url, "TLS certificate verification is turned off");
            cs = cs.set_no_tls_verify(true);
        } else if let Some(cfg) = &self.tls {
            cs = cs.set_config(cfg.clone());
        }
        let mut conn = LdapConn::with_settings(cs, &s.url).map_err(|e| self.conn_error(&e))?;
        if let Some(dn) = &s.bind_dn {
            let pw = self.password.as_deref().unwrap_or("");
            let res = conn
                .with_timeout(Duration::from_secs(s.connect_timeout_secs))
                .simple_bind(dn, pw)
                .map_err(|e| self.conn_error(&e))?;
            match res.rc {
                0 => {}
                49 => {
                    return Err(ConnectorError::Authentication(format!(
                        "invalid credentials for '{dn}' at {}",
                        s.url
                    )));
                }
                rc => {
                    return Err(ConnectorError::Authentication(format!(
                        "bind as '{dn}' at {} failed: {} ({})",
                        s.url,
                        rc_name(rc),
                        res.text
                    )));
                }
            }
        }
        tracing::debug!(url = %s.url, "LDAP connection established");
        Ok(conn)
    }

    /// Maps a transport-level error to a connector error (TLS failures explained).
    pub fn conn_error(&self, e: &LdapError) -> ConnectorError {
        let text = e.to_string();
        let message = if text.contains("certificate")
            || text.contains("Certificate")
            || text.contains("tls")
            || text.contains("TLS")
        {
            format!(
                "TLS handshake failed (certificate verification is on: trust the server's CA \
                 with ca_file and, when the certificate names another host than the URL, set \
                 tls_server_name): {text}"
            )
        } else {
            text
        };
        ConnectorError::Connection {
            target: self.settings.url.clone(),
            message,
        }
    }

    /// Runs one search and hands every message to `on`. Returns the final result (any code).
    pub fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[String],
        controls: Vec<RawControl>,
        on: &mut dyn FnMut(SearchMsg) -> Result<(), ConnectorError>,
    ) -> Result<SearchDone, ConnectorError> {
        let timeout = Duration::from_secs(self.settings.operation_timeout_secs);
        let attrs: Vec<String> = if attrs.is_empty() {
            vec!["*".to_string()]
        } else {
            attrs.to_vec()
        };
        let res = self.search_inner(base, scope, filter, &attrs, controls, timeout, on);
        if let Err(ConnectorError::Connection { .. }) = &res {
            self.invalidate();
        }
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn search_inner(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[String],
        controls: Vec<RawControl>,
        timeout: Duration,
        on: &mut dyn FnMut(SearchMsg) -> Result<(), ConnectorError>,
    ) -> Result<SearchDone, ConnectorError> {
        let target = self.settings.url.clone();
        let map = |e: LdapError| match e {
            LdapError::FilterParsing => {
                ConnectorError::Protocol(format!("invalid search filter '{filter}'"))
            }
            other => ConnectorError::Connection {
                target: target.clone(),
                message: other.to_string(),
            },
        };
        let conn = self.conn()?;
        let mut stream = conn
            .with_controls(controls)
            .with_timeout(timeout)
            .streaming_search(base, scope, filter, attrs)
            .map_err(map)?;
        loop {
            match stream.next() {
                Ok(Some(re)) => {
                    let ctrls: Vec<RawControl> = re.1.into_iter().map(|c| c.1).collect();
                    match parse_message(re.0, ctrls) {
                        Some(msg) => {
                            if let Err(e) = on(msg) {
                                let _ = stream.result();
                                return Err(e);
                            }
                        }
                        None => continue,
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(map(e));
                }
            }
        }
        let res = stream.result();
        if res.rc == 88 && res.text == "user cancelled" {
            return Err(ConnectorError::Connection {
                target: self.settings.url.clone(),
                message: "the search ended without a result".into(),
            });
        }
        Ok(SearchDone {
            rc: res.rc,
            text: res.text,
            controls: res.ctrls.into_iter().map(|c| c.1).collect(),
        })
    }

    /// A paged search (RFC 2696) over the whole result set; `extra` controls go with every page.
    /// Fails on any result code but success.
    #[allow(clippy::too_many_arguments)]
    pub fn search_paged(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[String],
        page_size: u32,
        extra: &[RawControl],
        on: &mut dyn FnMut(RawEntry) -> Result<(), ConnectorError>,
    ) -> Result<u32, ConnectorError> {
        let mut cookie: Vec<u8> = Vec::new();
        let mut pages = 0u32;
        loop {
            let mut controls = vec![paged_control(page_size, &cookie)];
            controls.extend(extra.iter().cloned());
            let done = self.search(base, scope, filter, attrs, controls, &mut |m| match m {
                SearchMsg::Entry(e) => on(e),
                SearchMsg::Intermediate { .. } => Ok(()),
            })?;
            pages += 1;
            if done.rc != 0 {
                return Err(result_error(&self.settings.url, done.rc, &done.text, base));
            }
            cookie = match done
                .control(PAGED_RESULTS_OID)
                .and_then(|c| c.val.as_deref())
            {
                Some(v) => parse_paged_cookie(v).ok_or_else(|| {
                    ConnectorError::Protocol("malformed paged results response control".into())
                })?,
                None => Vec::new(),
            };
            tracing::trace!(base, page = pages, "search page done");
            if cookie.is_empty() {
                return Ok(pages);
            }
        }
    }

    /// Reads one entry with a base-scope search (None when it does not exist).
    pub fn read_entry(
        &mut self,
        dn: &str,
        attrs: &[String],
        controls: Vec<RawControl>,
    ) -> Result<Option<RawEntry>, ConnectorError> {
        let mut found = None;
        let done = self.search(
            dn,
            Scope::Base,
            "(objectClass=*)",
            attrs,
            controls,
            &mut |m| {
                if let SearchMsg::Entry(e) = m {
                    found = Some(e);
                }
                Ok(())
            },
        )?;
        match done.rc {
            0 => Ok(found),
            32 => Ok(None),
            rc => Err(result_error(&self.settings.url, rc, &done.text, dn)),
        }
    }

    /// Maps an ldap3 call result for a write operation.
    pub fn write_result(
        &mut self,
        r: Result<LdapResult, LdapError>,
    ) -> Result<LdapResult, ConnectorError> {
        match r {
            Ok(res) => Ok(res),
            Err(e) => {
                let err = self.conn_error(&e);
                self.invalidate();
                Err(err)
            }
        }
    }

    /// The operation timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.operation_timeout_secs)
    }
}

/// A connector error for a failed (non-zero) search result.
pub fn result_error(target: &str, rc: u32, text: &str, base: &str) -> ConnectorError {
    match rc {
        49 | 8 | 13 => ConnectorError::Authentication(format!("{} ({text})", rc_name(rc))),
        51 | 52 => ConnectorError::Connection {
            target: target.to_string(),
            message: format!("{} ({text})", rc_name(rc)),
        },
        _ => ConnectorError::Protocol(format!(
            "search under '{base}' failed: {} ({rc}) {text}",
            rc_name(rc)
        )),
    }
}

/// The per-object failure class for an LDAP result code.
pub fn export_error_kind(rc: u32) -> ExportErrorKind {
    match rc {
        68 => ExportErrorKind::ObjectAlreadyExists,
        32 => ExportErrorKind::ObjectNotFound,
        50 => ExportErrorKind::AccessDenied,
        19 => ExportErrorKind::AttributeValueMustBeUnique,
        16 | 17 | 20 | 21 | 34 | 64 | 65 | 67 | 69 => ExportErrorKind::IdentityDataValidationFailed,
        3 | 51 | 52 | 80 | 81 => ExportErrorKind::Transient,
        _ => ExportErrorKind::Other,
    }
}

/// The name of an LDAP result code.
pub fn rc_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        10 => "referral",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        80 => "other",
        4096 => "e-syncRefreshRequired",
        _ => "ldapError",
    }
}

/// Builds the paged results request control.
pub fn paged_control(size: u32, cookie: &[u8]) -> RawControl {
    let mut body = Vec::new();
    super::ber::write_int(&mut body, i64::from(size));
    super::ber::write_octets(&mut body, cookie);
    RawControl {
        ctype: PAGED_RESULTS_OID.to_string(),
        crit: false,
        val: Some(super::ber::sequence(&body)),
    }
}

fn parse_paged_cookie(v: &[u8]) -> Option<Vec<u8>> {
    let (seq, _) = super::ber::read(v).ok()?;
    let items = super::ber::children(seq.value).ok()?;
    items.get(1).map(|t| t.value.to_vec())
}

fn primitive(t: StructureTag) -> Option<Vec<u8>> {
    match t.payload {
        PL::P(v) => Some(v),
        PL::C(_) => None,
    }
}

/// Turns a protocol op into a search message without panicking on odd input.
fn parse_message(tag: StructureTag, controls: Vec<RawControl>) -> Option<SearchMsg> {
    if tag.class != TagClass::Application {
        return None;
    }
    match tag.id {
        4 => {
            let PL::C(parts) = tag.payload else {
                return None;
            };
            let mut it = parts.into_iter();
            let dn = String::from_utf8(primitive(it.next()?)?)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            let mut attrs = Vec::new();
            if let Some(PL::C(list)) = it.next().map(|t| t.payload) {
                for pa in list {
                    let PL::C(pair) = pa.payload else { continue };
                    let mut p = pair.into_iter();
                    let Some(name) = p.next().and_then(primitive) else {
                        continue;
                    };
                    let name = String::from_utf8(name)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    let vals = match p.next().map(|t| t.payload) {
                        Some(PL::C(vs)) => vs.into_iter().filter_map(primitive).collect(),
                        _ => Vec::new(),
                    };
                    attrs.push((name, vals));
                }
            }
            Some(SearchMsg::Entry(RawEntry {
                dn,
                attrs,
                controls,
            }))
        }
        25 => {
            let PL::C(parts) = tag.payload else {
                return None;
            };
            let mut oid = None;
            let mut value = None;
            for p in parts {
                match p.id {
                    0 => oid = primitive(p).map(|b| String::from_utf8_lossy(&b).into_owned()),
                    1 => value = primitive(p),
                    _ => {}
                }
            }
            Some(SearchMsg::Intermediate {
                oid,
                value,
                controls,
            })
        }
        _ => None,
    }
}

/// Builds the rustls client configuration: CA file (or system store) and the optional TLS
/// server name. `None` lets ldap3 use its default (system roots, URL host name).
fn tls_config(s: &ConnectionSettings) -> Result<Option<Arc<ClientConfig>>, ConnectorError> {
    if !s.tls_verify || (s.ca_file.is_none() && s.tls_server_name.is_none()) {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    let (path, label) = match &s.ca_file {
        Some(p) => (p.clone(), "ca_file"),
        None => (
            std::path::PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            "system CA bundle",
        ),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
        .map_err(|e| ConnectorError::Config(format!("{label} '{}': {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ConnectorError::Config(format!("{label} '{}': {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConnectorError::Config(format!(
            "{label} '{}' holds no PEM certificate",
            path.display()
        )));
    }
    for c in certs {
        roots
            .add(c)
            .map_err(|e| ConnectorError::Config(format!("{label} '{}': {e}", path.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ConnectorError::Config(format!("TLS verifier: {e}")))?;
    let name = match &s.tls_server_name {
        Some(n) => Some(ServerName::try_from(n.clone()).map_err(|_| {
            ConnectorError::Config(format!("tls_server_name '{n}' is not a valid name"))
        })?),
        None => None,
    };
    let verifier = NamedVerifier { inner, name };
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectorError::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Some(Arc::new(cfg)))
}

/// Verifies the chain with webpki against the configured name (or the URL's host). Certificates
/// without a subjectAltName (Samba's self-generated ones) are matched on their subject CN, after
/// the chain itself has been verified.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: Option<ServerName<'static>>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = self.name.as_ref().unwrap_or(server_name);
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if cn_fallback_matches(end_entity, name) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// True when the certificate has no subjectAltName and its subject CN equals the DNS name.
fn cn_fallback_matches(cert: &CertificateDer<'_>, name: &ServerName<'_>) -> bool {
    let ServerName::DnsName(dns) = name else {
        return false;
    };
    match cert_subject_cn(cert.as_ref()) {
        Some((cn, has_san)) => !has_san && cn.eq_ignore_ascii_case(dns.as_ref()),
        None => false,
    }
}

/// Subject CN of a DER certificate and whether it carries a subjectAltName extension.
fn cert_subject_cn(der: &[u8]) -> Option<(String, bool)> {
    let (_, cert) = parse_tag(der).ok()?;
    let PL::C(parts) = cert.payload else {
        return None;
    };
    let tbs = parts.into_iter().next()?;
    let PL::C(fields) = tbs.payload else {
        return None;
    };
    let has_version = fields
        .first()
        .map(|f| f.class == TagClass::Context && f.id == 0)
        .unwrap_or(false);
    let subject_idx = if has_version { 5 } else { 4 };
    let mut cn = None;
    let mut has_san = false;
    for (i, f) in fields.into_iter().enumerate() {
        if i == subject_idx {
            if let PL::C(rdns) = f.payload {
                for rdn in rdns {
                    let PL::C(avas) = rdn.payload else { continue };
                    for ava in avas {
                        let PL::C(pair) = ava.payload else { continue };
                        let mut p = pair.into_iter();
                        let oid = p.next().and_then(primitive);
                        let val = p.next().and_then(primitive);
                        if oid.as_deref() == Some(&[0x55, 0x04, 0x03][..]) {
                            cn = val.map(|v| String::from_utf8_lossy(&v).into_owned());
                        }
                    }
                }
            }
        } else if f.class == TagClass::Context && f.id == 3 {
            // [3] EXPLICIT Extensions: SEQUENCE OF Extension { extnID, critical?, extnValue }
            if let PL::C(wrapped) = f.payload {
                for seq in wrapped {
                    let PL::C(exts) = seq.payload else { continue };
                    for ext in exts {
                        let PL::C(e) = ext.payload else { continue };
                        if e.into_iter().next().and_then(primitive).as_deref()
                            == Some(&[0x55, 0x1d, 0x11][..])
                        {
                            has_san = true;
                        }
                    }
                }
            }
        }
    }
    cn.map(|c| (c, has_san))
}

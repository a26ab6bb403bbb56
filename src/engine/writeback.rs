//! Writeback: cloud -> Active Directory.
//!
//! - [`Engine::writeback`] runs the writeback flows on their own: it imports and synchronizes
//!   the cloud (`graph`) connectors and exports to the Active Directory (`ad`) connectors only.
//!   What flows is declared by sync rules (the `ad-to-entra` template's writeback rules):
//!   cloud security groups become universal groups in a writeback OU, tagged
//!   `adminDescription = Group_<objectId>`; `mS-DS-ConsistencyGuid` is written for users whose
//!   value is empty; `msDS-ExternalDirectoryObjectId = User_<objectId>` for Exchange hybrid.
//! - [`Engine::set_password`] sets the AD password of a user named by its user principal name,
//!   a DN in any connector space or its metaverse id, through `unicodePwd` over LDAPS. The
//!   password is handed to the connector only: it is never stored, logged, put in an error or
//!   in the run history.

use super::{Engine, EngineError, Result, RunOptions, RunRecord, StepCounters, history};
use crate::connectors::{ExportErrorKind, ExportOperation, ExportOutcome, ExportRequest};
use crate::model::{AttributeChange, Dn, Value};
use crate::store::{self, CsObject};
use serde::Serialize;
use std::collections::BTreeSet;

/// Connector type of the cloud directory (Microsoft Graph).
pub const CLOUD_KIND: &str = "graph";
/// Connector type of Active Directory.
pub const AD_KIND: &str = "ad";

/// Errors of writeback and password operations.
#[derive(Debug, thiserror::Error)]
pub enum WritebackError {
    /// The configuration has no connector to write back from or to.
    #[error(
        "writeback needs at least one cloud connector (type 'graph') and one Active Directory connector (type 'ad'); found cloud: [{}], ad: [{}]",
        .cloud.join(", "),
        .ad.join(", ")
    )]
    NotConfigured {
        /// Cloud connectors found.
        cloud: Vec<String>,
        /// AD connectors found.
        ad: Vec<String>,
    },
    /// No object answers to the identity.
    #[error(
        "no object matches '{0}': give a user principal name, a DN of a connector-space object or a metaverse id"
    )]
    IdentityNotFound(String),
    /// The identity names several identities.
    #[error(
        "'{identity}' is ambiguous: it matches metaverse objects {matches:?}; use a DN or a metaverse id"
    )]
    AmbiguousIdentity {
        /// What the caller gave.
        identity: String,
        /// Metaverse ids that match.
        matches: Vec<i64>,
    },
    /// The identity is not linked to a user of an Active Directory connector.
    #[error("'{identity}' is not linked to a user of an Active Directory connector{}", .detail)]
    NotAdLinked {
        /// What the caller gave.
        identity: String,
        /// Why, for the admin (starts with a separator when not empty).
        detail: String,
    },
    /// The user is linked to users of several Active Directory connectors.
    #[error("'{identity}' is linked to users of several Active Directory connectors ({}): use the DN of the one to change", .connectors.join(", "))]
    SeveralAdLinks {
        /// What the caller gave.
        identity: String,
        /// Connector names.
        connectors: Vec<String>,
    },
    /// The AD connector does not encrypt its connection.
    #[error(
        "connector '{connector}': setting a password needs an encrypted connection (an ldaps:// url, or starttls = true); Active Directory refuses unicodePwd over plain LDAP"
    )]
    LdapsRequired {
        /// AD connector.
        connector: String,
    },
    /// The caller gave an empty password.
    #[error("the new password is empty")]
    EmptyPassword,
    /// The directory refused the password (policy, rights, missing object...).
    #[error("connector '{connector}': setting the password of '{dn}' failed: {message}")]
    PasswordRejected {
        /// AD connector.
        connector: String,
        /// The user's DN.
        dn: String,
        /// Failure class.
        kind: ExportErrorKind,
        /// The directory's message (never contains the password).
        message: String,
    },
}

/// The result of [`Engine::set_password`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PasswordResult {
    /// The AD connector that wrote the password.
    pub connector: String,
    /// DN of the AD user.
    pub dn: String,
    /// The metaverse object the identity resolved to (None for an unjoined AD object).
    pub mv_id: Option<i64>,
    /// `pwdLastSet` was set to 0: the user must change the password at the next logon.
    pub must_change: bool,
    /// The run history entry of the operation.
    pub run_id: i64,
}

/// An Active Directory user that an identity resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdUser {
    /// AD connector name.
    pub connector: String,
    /// DN of the user in that connector space.
    pub dn: String,
    /// The metaverse object it is joined to.
    pub mv_id: Option<i64>,
}

impl Engine {
    /// Names of the connectors of one type, in configuration order.
    fn connectors_of_kind(&self, kind: &str) -> Vec<String> {
        self.config
            .connectors
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.name.clone())
            .collect()
    }

    /// Runs the writeback flows: import and synchronize the cloud connectors, then export to
    /// the Active Directory connectors only (after the deletion threshold check; nothing is
    /// written in staging mode or a dry run). Recorded in the run history as a `Writeback`
    /// run with one step per connector and profile.
    pub fn writeback(&mut self, opts: &RunOptions) -> Result<Vec<RunRecord>> {
        let cloud = self.connectors_of_kind(CLOUD_KIND);
        let ad = self.connectors_of_kind(AD_KIND);
        if cloud.is_empty() || ad.is_empty() {
            return Err(WritebackError::NotConfigured { cloud, ad }.into());
        }
        let (run_id, total, result) = self.recorded_run("Writeback", &cloud, &ad, false, opts)?;
        tracing::info!(
            run = run_id,
            exported = total.export_adds + total.export_updates + total.export_deletes,
            failures = total.export_failures,
            "writeback finished"
        );
        result
    }

    /// Finds the Active Directory user behind an identity: a user principal name, a DN of
    /// any connector space, or a metaverse id.
    pub fn resolve_ad_user(&self, identity: &str) -> Result<AdUser> {
        let ident = identity.trim();
        if ident.is_empty() {
            return Err(WritebackError::IdentityNotFound(identity.into()).into());
        }
        let ad = self.connectors_of_kind(AD_KIND);
        let c = self.store.conn();
        let mut direct: Vec<(String, CsObject)> = Vec::new();
        let mut mvs: BTreeSet<i64> = BTreeSet::new();
        if let Ok(id) = ident.parse::<i64>() {
            if store::mv_get(c, id)?.is_some() {
                mvs.insert(id);
            }
        } else if ident.contains('=') {
            let dn = Dn::parse(ident)
                .map_err(|e| EngineError::NotFound(format!("'{ident}' is not a valid DN: {e}")))?;
            for name in self.connector_names() {
                let cid = self.connector_id(&name)?;
                if let Some(o) = store::cs_by_dn(c, cid, &dn)?
                    && !o.deleted
                {
                    if let Some(m) = o.mv_id {
                        mvs.insert(m);
                    } else if ad.contains(&name) {
                        direct.push((name.clone(), o));
                    }
                }
            }
        } else {
            // A user principal name, as any connector space holds it.
            for name in self.connector_names() {
                let cid = self.connector_id(&name)?;
                for o in upn_candidates(c, cid, ident)? {
                    if o.deleted || o.placeholder {
                        continue;
                    }
                    let hit = o.attributes.iter().any(|(k, vs)| {
                        k.eq_ignore_ascii_case("userPrincipalName")
                            && vs.iter().any(|v| v.to_text().eq_ignore_ascii_case(ident))
                    });
                    if !hit {
                        continue;
                    }
                    match o.mv_id {
                        Some(m) => {
                            mvs.insert(m);
                        }
                        None if ad.contains(&name) => direct.push((name.clone(), o)),
                        None => {}
                    }
                }
            }
        }
        if mvs.len() > 1 {
            return Err(WritebackError::AmbiguousIdentity {
                identity: ident.into(),
                matches: mvs.into_iter().collect(),
            }
            .into());
        }
        if let Some(m) = mvs.into_iter().next() {
            let mut links: Vec<(String, CsObject)> = Vec::new();
            let names = store::connector_names(c)?;
            for o in store::cs_by_mv(c, m)? {
                let name = names.get(&o.connector_id).cloned().unwrap_or_default();
                if ad.contains(&name) && !o.deleted && !o.placeholder {
                    links.push((name, o));
                }
            }
            let mut users: Vec<(String, CsObject)> = links
                .iter()
                .filter(|(_, o)| o.object_type == "user")
                .cloned()
                .collect();
            return match users.len() {
                1 => {
                    let (connector, o) = users.swap_remove(0);
                    Ok(AdUser {
                        connector,
                        dn: o.dn.to_string(),
                        mv_id: Some(m),
                    })
                }
                0 => Err(WritebackError::NotAdLinked {
                    identity: ident.into(),
                    detail: match links.first() {
                        Some((n, o)) => format!(
                            ": metaverse object {m} is linked to a '{}' object in '{n}', not a user",
                            o.object_type
                        ),
                        None => format!(
                            ": metaverse object {m} has no object in an Active Directory connector"
                        ),
                    },
                }
                .into()),
                _ => Err(WritebackError::SeveralAdLinks {
                    identity: ident.into(),
                    connectors: users.into_iter().map(|(n, _)| n).collect(),
                }
                .into()),
            };
        }
        match direct.len() {
            0 => Err(WritebackError::IdentityNotFound(ident.into()).into()),
            1 => {
                let (connector, o) = direct.remove(0);
                if o.object_type != "user" {
                    return Err(WritebackError::NotAdLinked {
                        identity: ident.into(),
                        detail: format!(": '{}' is a '{}' object", o.dn, o.object_type),
                    }
                    .into());
                }
                Ok(AdUser {
                    connector,
                    dn: o.dn.to_string(),
                    mv_id: None,
                })
            }
            _ => Err(WritebackError::SeveralAdLinks {
                identity: ident.into(),
                connectors: direct.into_iter().map(|(n, _)| n).collect(),
            }
            .into()),
        }
    }

    /// Sets the Active Directory password of the user behind `identity` (a user principal
    /// name, a DN of any connector space, or a metaverse id) through `unicodePwd` over LDAPS;
    /// with `must_change`, `pwdLastSet` is set to 0 (change at next logon). Recorded in the run
    /// history as a `SetPassword` step of the AD connector; the password itself is never
    /// stored, logged or put into an error.
    pub fn set_password(
        &mut self,
        identity: &str,
        password: &str,
        must_change: bool,
    ) -> Result<PasswordResult> {
        if password.is_empty() {
            return Err(WritebackError::EmptyPassword.into());
        }
        let user = self.resolve_ad_user(identity)?;
        self.set_password_for(user, password, must_change)
    }

    /// Sets the password of an already resolved Active Directory user (see
    /// [`Engine::set_password`]); recorded in the run history as a `SetPassword` run.
    pub fn set_password_for(
        &mut self,
        user: AdUser,
        password: &str,
        must_change: bool,
    ) -> Result<PasswordResult> {
        if password.is_empty() {
            return Err(WritebackError::EmptyPassword.into());
        }
        self.require_encrypted(&user.connector)?;
        let dn = Dn::parse(&user.dn).map_err(|e| EngineError::NotFound(e.to_string()))?;
        let run_id = history::start(
            self.store.conn(),
            None,
            Some(&user.connector),
            "SetPassword",
        )?;
        let outcome = self.write_password(&user, &dn, password, must_change);
        let mut counters = StepCounters::default();
        // A rejected password is a failure of this object; any other error fails the run.
        let failed_whole = match &outcome {
            Ok(()) => {
                counters.export_updates = 1;
                None
            }
            Err(EngineError::Writeback(WritebackError::PasswordRejected { message, .. })) => {
                counters.export_failures = 1;
                counters.errors.push(history::ObjectError {
                    object: user.dn.clone(),
                    stage: "export".into(),
                    message: message.clone(),
                });
                None
            }
            Err(e) => Some(e),
        };
        history::finish(self.store.conn(), run_id, &counters, failed_whole)?;
        outcome?;
        tracing::info!(connector = %user.connector, dn = %user.dn, must_change, "password set");
        Ok(PasswordResult {
            connector: user.connector,
            dn: user.dn,
            mv_id: user.mv_id,
            must_change,
            run_id,
        })
    }

    /// Errors unless the AD connector's connection is LDAPS or StartTLS.
    fn require_encrypted(&self, connector: &str) -> Result<()> {
        let conn = self
            .config
            .connector(connector)
            .and_then(|c| c.settings.get("connection"));
        let url = conn
            .and_then(|c| c.get("url"))
            .and_then(|u| u.as_str())
            .unwrap_or_default();
        let starttls = conn
            .and_then(|c| c.get("starttls"))
            .and_then(|s| s.as_bool())
            .unwrap_or(false);
        if url.to_ascii_lowercase().starts_with("ldaps://") || starttls {
            Ok(())
        } else {
            Err(WritebackError::LdapsRequired {
                connector: connector.into(),
            }
            .into())
        }
    }

    fn write_password(
        &mut self,
        user: &AdUser,
        dn: &Dn,
        password: &str,
        must_change: bool,
    ) -> Result<()> {
        let mut conn = super::build_connector(&self.config, &user.connector)?;
        let mut changes = vec![AttributeChange::Replace {
            name: "unicodePwd".into(),
            values: vec![Value::Str(password.to_string())],
        }];
        if must_change {
            changes.push(AttributeChange::Replace {
                name: "pwdLastSet".into(),
                values: vec![Value::Int(0)],
            });
        }
        let request = ExportRequest {
            id: 1,
            object_type: "user".into(),
            anchor: None,
            dn: dn.clone(),
            operation: ExportOperation::Update {
                changes,
                new_dn: None,
            },
        };
        let results =
            conn.export(std::slice::from_ref(&request))
                .map_err(|e| EngineError::Connector {
                    connector: user.connector.clone(),
                    source: e,
                })?;
        match results.into_iter().next().map(|r| r.outcome) {
            Some(ExportOutcome::Success { .. }) => Ok(()),
            Some(ExportOutcome::Failed { kind, message }) => {
                Err(WritebackError::PasswordRejected {
                    connector: user.connector.clone(),
                    dn: user.dn.clone(),
                    kind,
                    message,
                }
                .into())
            }
            None => Err(WritebackError::PasswordRejected {
                connector: user.connector.clone(),
                dn: user.dn.clone(),
                kind: ExportErrorKind::Other,
                message: "the connector returned no result".into(),
            }
            .into()),
        }
    }
}

/// Connector-space objects whose stored attributes contain `upn` (a cheap prefilter through
/// SQLite's ASCII case-insensitive LIKE over the stored JSON; the caller checks the attribute).
/// A UPN with non-ASCII characters, whose case LIKE cannot fold, scans the connector space.
fn upn_candidates(c: &rusqlite::Connection, connector_id: i64, upn: &str) -> Result<Vec<CsObject>> {
    if !upn.is_ascii() {
        return Ok(store::cs_all(c, connector_id)?);
    }
    let json = serde_json::to_string(upn).unwrap_or_default();
    let inner = json.trim_matches('"');
    let mut pattern = String::with_capacity(inner.len() + 2);
    pattern.push('%');
    for ch in inner.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    let mut st = c.prepare(
        "SELECT id FROM cs_object WHERE connector_id=?1 AND deleted=0 AND placeholder=0 \
         AND attrs LIKE ?2 ESCAPE '\\'",
    )?;
    let ids = st
        .query_map(rusqlite::params![connector_id, pattern], |r| {
            r.get::<_, i64>(0)
        })?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(o) = store::cs_get(c, id)? {
            out.push(o);
        }
    }
    Ok(out)
}

/// The permission report of one Active Directory connector's account.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorPermissions {
    /// Connector name.
    pub connector: String,
    /// The writeback OU that was checked (None: writeback rights were not checked).
    pub writeback_ou: Option<String>,
    /// True when every right is present.
    pub all_present: bool,
    /// Each right, present or missing.
    pub report: crate::connectors::ldap::permissions::PermissionReport,
}

impl Engine {
    /// Builds the Active Directory connector `name` (relative CA and password file paths
    /// resolve against the configuration folder).
    pub fn ad_connector(&self, name: &str) -> Result<crate::connectors::ldap::AdConnector> {
        let c = self
            .config
            .connector(name)
            .ok_or_else(|| EngineError::NotFound(format!("unknown connector '{name}'")))?;
        if c.kind != AD_KIND {
            return Err(EngineError::NotFound(format!(
                "connector '{name}' is of type '{}', not an Active Directory connector ('ad')",
                c.kind
            )));
        }
        crate::connectors::build_ad(c.settings.clone(), &self.config.base_dir).map_err(|source| {
            EngineError::Connector {
                connector: name.to_string(),
                source,
            }
        })
    }

    /// Checks the rights of the Active Directory connectors' accounts (all of them, or the one
    /// named): read and DirSync on every partition and, with a writeback OU (given, or the
    /// `Writeback.OU` parameter), creating groups there, writing `mS-DS-ConsistencyGuid`,
    /// group membership and passwords. Nothing is written.
    pub fn test_permissions(
        &self,
        connector: Option<&str>,
        writeback_ou: Option<&str>,
    ) -> Result<Vec<ConnectorPermissions>> {
        let names = match connector {
            Some(n) => vec![n.to_string()],
            None => self.connectors_of_kind(AD_KIND),
        };
        if names.is_empty() {
            return Err(EngineError::NotFound(
                "the configuration has no Active Directory connector (type 'ad')".into(),
            ));
        }
        let ou = writeback_ou
            .map(str::to_string)
            .or_else(|| self.config.parameters.get("Writeback.OU").cloned());
        let mut out = Vec::new();
        for name in names {
            let mut ad = self.ad_connector(&name)?;
            let report =
                crate::connectors::ldap::permissions::test_permissions(&mut ad, ou.as_deref())
                    .map_err(|source| EngineError::Connector {
                        connector: name.clone(),
                        source,
                    })?;
            out.push(ConnectorPermissions {
                connector: name,
                writeback_ou: ou.clone(),
                all_present: report.all_present(),
                report,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn engine(dir: &std::path::Path, connectors: &str) -> Engine {
        let text = format!("[state]\npath = \"state.db\"\n{connectors}");
        let cfg = Config::from_toml_str(&text, "test.toml", dir).expect("config");
        Engine::open(cfg).expect("engine")
    }

    const AD_PLAIN: &str = "[[connectors]]\nname = \"corp\"\ntype = \"ad\"\n[connectors.settings.connection]\nurl = \"ldap://dc.example\"\n";

    #[test]
    fn writeback_needs_a_cloud_and_an_ad_connector() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut e = engine(dir.path(), AD_PLAIN);
        match e.writeback(&RunOptions::default()) {
            Err(EngineError::Writeback(WritebackError::NotConfigured { cloud, ad })) => {
                assert!(cloud.is_empty());
                assert_eq!(ad, vec!["corp".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        // Nothing was recorded as a run.
        assert!(e.history(10).expect("history").is_empty());
    }

    #[test]
    fn password_errors_are_clear_and_never_contain_the_password() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut e = engine(dir.path(), AD_PLAIN);
        let secret = "Very-Secret-Pw-9";
        let cases: Vec<(&str, &str)> = vec![
            ("ann@corp.example", "no object matches 'ann@corp.example'"),
            ("42", "no object matches '42'"),
            ("CN=nobody,DC=corp", "no object matches 'CN=nobody,DC=corp'"),
            ("CN=bad,,=", "is not a valid DN"),
            ("  ", "no object matches"),
        ];
        for (ident, want) in cases {
            let err = e.set_password(ident, secret, false).expect_err(ident);
            let msg = err.to_string();
            assert!(msg.contains(want), "{ident}: {msg}");
            assert!(!msg.contains(secret));
        }
        assert!(matches!(
            e.set_password("ann@corp.example", "", false),
            Err(EngineError::Writeback(WritebackError::EmptyPassword))
        ));
        // Plain LDAP is refused before anything is sent.
        match e.require_encrypted("corp") {
            Err(EngineError::Writeback(WritebackError::LdapsRequired { connector })) => {
                assert_eq!(connector, "corp")
            }
            other => panic!("{other:?}"),
        }
        let tls = "[[connectors]]\nname = \"a\"\ntype = \"ad\"\n[connectors.settings.connection]\nurl = \"LDAPS://dc.example\"\n\
                   [[connectors]]\nname = \"b\"\ntype = \"ad\"\n[connectors.settings.connection]\nurl = \"ldap://dc.example\"\nstarttls = true\n";
        let dir2 = tempfile::tempdir().expect("tmp");
        let e2 = engine(dir2.path(), tls);
        assert!(e2.require_encrypted("a").is_ok());
        assert!(e2.require_encrypted("b").is_ok());
    }

    #[test]
    fn permissions_need_an_ad_connector() {
        let dir = tempfile::tempdir().expect("tmp");
        let e = engine(
            dir.path(),
            "[[connectors]]\nname = \"hr\"\ntype = \"csv\"\n[connectors.settings]\npath = \"hr.csv\"\nanchor = \"id\"\n",
        );
        let err = e.test_permissions(None, None).expect_err("no AD");
        assert!(
            err.to_string().contains("no Active Directory connector"),
            "{err}"
        );
        let err = e.test_permissions(Some("hr"), None).expect_err("csv");
        assert!(
            err.to_string()
                .contains("not an Active Directory connector"),
            "{err}"
        );
    }
}

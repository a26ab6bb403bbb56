//! `Engine::check_rules`: the rule checks of [`crate::rules::check`] against the schemas the
//! connectors discover.

use super::{Engine, Result, build_connector};
use crate::model::Schema;
use crate::rules::check::{RuleFinding, Severity, check_rules};
use serde::Serialize;
use std::collections::BTreeMap;

/// The outcome of a rule check.
#[derive(Debug, Clone, Serialize)]
pub struct RuleCheckReport {
    /// Connectors whose schema was discovered and used.
    pub schemas_checked: Vec<String>,
    /// Connectors whose schema could not be read, with the reason (their rules were checked
    /// for metaverse consistency only).
    pub schemas_unavailable: BTreeMap<String, String>,
    /// Problems found, errors first.
    pub findings: Vec<RuleFinding>,
}

impl RuleCheckReport {
    /// Number of findings with error severity.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
}

impl Engine {
    /// Checks the rules: attribute names against each connector's discovered schema (when
    /// `discover` is true; this connects to the directories and reads their schema) and
    /// metaverse attributes read by outbound rules against what inbound rules set.
    /// Nothing is written.
    pub fn check_rules(&self, discover: bool) -> Result<RuleCheckReport> {
        let mut schemas: BTreeMap<String, Schema> = BTreeMap::new();
        let mut unavailable = BTreeMap::new();
        if discover {
            for name in self.connector_names() {
                let schema = build_connector(&self.config, &name).and_then(|mut c| {
                    c.schema().map_err(|source| super::EngineError::Connector {
                        connector: name.clone(),
                        source,
                    })
                });
                match schema {
                    Ok(s) => {
                        schemas.insert(name, s);
                    }
                    Err(e) => {
                        tracing::warn!(connector = %name, error = %e, "schema discovery failed; rule check without it");
                        unavailable.insert(name, e.to_string());
                    }
                }
            }
        }
        Ok(RuleCheckReport {
            schemas_checked: schemas.keys().cloned().collect(),
            schemas_unavailable: unavailable,
            findings: check_rules(&self.rules, &schemas),
        })
    }
}

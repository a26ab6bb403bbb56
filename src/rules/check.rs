//! Static checks of a rule set against connector schemas and against itself.
//!
//! Expression attribute names are case-sensitive, so an attribute written with the wrong case
//! never matches at run time and its flow silently contributes nothing. These checks find such
//! mistakes before a sync runs:
//!
//! - inbound rules read connector-space attributes: every attribute a scope clause, join clause
//!   or flow reads should exist in the connector's schema for the rule's source type;
//! - outbound rules read metaverse attributes: every one should be set by some inbound flow
//!   into the same metaverse type (otherwise it is always empty);
//! - outbound flow targets should exist in the target connector's schema.
//!
//! A name that exists only with another case is an error; a name missing from a discovered
//! schema, or a metaverse attribute no inbound rule sets, is a warning (schemas read from data
//! files can be partial, and rules may test attributes defensively).

use super::{Rule, RuleSet};
use crate::config::Direction;
use crate::model::Schema;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Probably harmless or a partial schema; worth a look.
    Warning,
    /// The rule cannot work as written.
    Error,
}

/// One problem found in a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFinding {
    /// Error or warning.
    pub severity: Severity,
    /// The rule's name.
    pub rule: String,
    /// Where in the rule: `scope`, `join`, `flow <target>`.
    pub place: String,
    /// The attribute concerned.
    pub attribute: String,
    /// What is wrong, and the likely fix.
    pub message: String,
}

/// Attributes every object exposes without a schema entry.
const IMPLICIT: &[&str] = &["dn"];

/// Checks every rule. `schemas` holds the discovered schema per connector name; connectors
/// without an entry are not checked against a schema (only the metaverse consistency is).
pub fn check_rules(rules: &RuleSet, schemas: &BTreeMap<String, Schema>) -> Vec<RuleFinding> {
    let mv = metaverse_attributes(rules);
    let mut out = Vec::new();
    for rule in &rules.rules {
        match rule.direction {
            Direction::Inbound => check_inbound(rule, schemas.get(&rule.connector), &mv, &mut out),
            Direction::Outbound => {
                check_outbound(rule, schemas.get(&rule.connector), &mv, &mut out)
            }
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.place.cmp(&b.place))
    });
    out.dedup();
    out
}

/// Metaverse attributes per metaverse type: the targets of inbound flows and joins.
fn metaverse_attributes(rules: &RuleSet) -> BTreeMap<String, BTreeSet<String>> {
    let mut mv: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rules
        .rules
        .iter()
        .filter(|r| r.direction == Direction::Inbound)
    {
        let set = mv.entry(r.target_type.clone()).or_default();
        set.extend(r.flows.iter().map(|f| f.target.clone()));
    }
    mv
}

/// The attribute names a rule reads from its source: (place, attribute).
fn source_reads(rule: &Rule) -> Vec<(String, String)> {
    let mut reads = Vec::new();
    for g in &rule.scope {
        for c in &g.clauses {
            reads.push(("scope".to_string(), c.attribute.clone()));
        }
    }
    for g in &rule.join {
        for c in &g.clauses {
            reads.push(("join".to_string(), c.source.clone()));
        }
    }
    for f in &rule.flows {
        for a in f.reads() {
            reads.push((format!("flow {}", f.target), a));
        }
    }
    reads
}

/// Finds `name` in a set case-insensitively when it is not there exactly.
fn case_variant<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    known.into_iter().find(|k| k.eq_ignore_ascii_case(name))
}

fn schema_attributes<'a>(schema: &'a Schema, object_type: &str) -> Option<Vec<&'a String>> {
    schema
        .object_types
        .get(object_type)
        .map(|t| t.attributes.keys().collect())
}

/// Collects the findings of one rule.
struct Findings<'a> {
    rule: &'a Rule,
    out: &'a mut Vec<RuleFinding>,
}

impl Findings<'_> {
    fn push(&mut self, severity: Severity, place: &str, attribute: &str, message: String) {
        self.out.push(RuleFinding {
            severity,
            rule: self.rule.name.clone(),
            place: place.to_string(),
            attribute: attribute.to_string(),
            message,
        })
    }

    /// Checks connector-side attribute names against the schema of `object_type`.
    fn against_schema(
        &mut self,
        schema: &Schema,
        object_type: &str,
        names: impl IntoIterator<Item = (String, String)>,
    ) {
        let connector = self.rule.connector.clone();
        let Some(known) = schema_attributes(schema, object_type) else {
            let types: Vec<&str> = schema.object_types.keys().map(String::as_str).collect();
            self.push(
                Severity::Warning,
                "type",
                "",
                format!(
                    "connector '{connector}' has no object type '{object_type}' in its schema (types: {})",
                    types.join(", ")
                ),
            );
            return;
        };
        for (place, attr) in names {
            if IMPLICIT.contains(&attr.as_str()) || known.iter().any(|k| **k == attr) {
                continue;
            }
            match case_variant(&attr, known.iter().copied()) {
                Some(k) => self.push(
                    Severity::Error,
                    &place,
                    &attr,
                    format!(
                        "'{attr}' is not in the schema of connector '{connector}' type '{object_type}'; attribute names are case-sensitive: did you mean '{k}'?"
                    ),
                ),
                None => self.push(
                    Severity::Warning,
                    &place,
                    &attr,
                    format!(
                        "'{attr}' is not in the schema of connector '{connector}' type '{object_type}'"
                    ),
                ),
            }
        }
    }

    /// Checks a metaverse attribute the rule reads (or joins on) against what inbound flows set.
    fn against_metaverse(
        &mut self,
        place: &str,
        attr: &str,
        mv_type: &str,
        set: Option<&BTreeSet<String>>,
    ) {
        if IMPLICIT.contains(&attr) || set.is_some_and(|s| s.contains(attr)) {
            return;
        }
        match set.and_then(|s| case_variant(attr, s.iter())) {
            Some(k) => self.push(
                Severity::Error,
                place,
                attr,
                format!(
                    "no inbound rule sets metaverse attribute '{attr}' on type '{mv_type}'; attribute names are case-sensitive: did you mean '{k}'?"
                ),
            ),
            // Defensive reads (`ISNULL`, `IsPresent`) of attributes nobody sets are legitimate.
            None => self.push(
                Severity::Warning,
                place,
                attr,
                format!(
                    "no inbound rule sets metaverse attribute '{attr}' on type '{mv_type}', so it is always empty here"
                ),
            ),
        }
    }
}

fn check_inbound(
    rule: &Rule,
    schema: Option<&Schema>,
    mv: &BTreeMap<String, BTreeSet<String>>,
    out: &mut Vec<RuleFinding>,
) {
    let mut f = Findings { rule, out };
    if let Some(schema) = schema {
        f.against_schema(schema, &rule.source_type, source_reads(rule));
    }
    // Join targets are metaverse attributes: some inbound flow must set them.
    let set = mv.get(&rule.target_type);
    for g in &rule.join {
        for c in &g.clauses {
            f.against_metaverse("join", &c.target, &rule.target_type, set);
        }
    }
}

fn check_outbound(
    rule: &Rule,
    schema: Option<&Schema>,
    mv: &BTreeMap<String, BTreeSet<String>>,
    out: &mut Vec<RuleFinding>,
) {
    let mut f = Findings { rule, out };
    match mv.get(&rule.source_type) {
        None => f.push(
            Severity::Warning,
            "source",
            "",
            format!(
                "no inbound rule creates or fills metaverse type '{}': this rule never applies",
                rule.source_type
            ),
        ),
        Some(set) => {
            for (place, attr) in source_reads(rule) {
                f.against_metaverse(&place, &attr, &rule.source_type, Some(set));
            }
        }
    }
    if let Some(schema) = schema {
        let targets = rule
            .flows
            .iter()
            .map(|fl| (format!("flow {}", fl.target), fl.target.clone()))
            .chain(rule.join.iter().flat_map(|g| {
                g.clauses
                    .iter()
                    .map(|c| ("join".to_string(), c.target.clone()))
            }));
        f.against_schema(schema, &rule.target_type, targets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::{AttrType, AttributeDef, ObjectTypeDef};

    fn rules(toml: &str) -> RuleSet {
        let cfg = Config::from_toml_str(toml, "t.toml", std::path::Path::new(".")).expect("config");
        RuleSet::compile(&cfg).expect("rules")
    }

    fn schema(ty: &str, attrs: &[&str]) -> Schema {
        let mut t = ObjectTypeDef::default();
        for a in attrs {
            t.attributes.insert(
                a.to_string(),
                AttributeDef {
                    ty: AttrType::String,
                    multi_valued: false,
                },
            );
        }
        let mut s = Schema::default();
        s.object_types.insert(ty.to_string(), t);
        s
    }

    const CONFIG: &str = r#"
[state]
path = "s.db"
[[connectors]]
name = "src"
type = "ldif"
[connectors.settings]
path = "a.ldif"
[[connectors]]
name = "dst"
type = "ldif"
[connectors.settings]
path = "b.ldif"

[[rules]]
name = "in"
direction = "inbound"
connector = "src"
source_type = "user"
target_type = "person"
precedence = 100
link_type = "provision"
[[rules.scope]]
clauses = [{ attribute = "Department", operator = "ISNOTNULL" }]
[[rules.join]]
clauses = [{ source = "uid", target = "uid" }]
[[rules.flows]]
target = "uid"
source = "uid"
[[rules.flows]]
target = "displayName"
expression = 'Trim([givenName]) & " " & [surname]'

[[rules]]
name = "out"
direction = "outbound"
connector = "dst"
source_type = "person"
target_type = "user"
precedence = 100
link_type = "provision"
[[rules.flows]]
target = "dn"
expression = '"uid=" & [uid] & ",dc=x"'
[[rules.flows]]
target = "cn"
source = "displayname"
[[rules.flows]]
target = "Mail"
source = "mail"
"#;

    #[test]
    fn case_mistakes_are_errors_and_missing_names_warnings() {
        let rs = rules(CONFIG);
        let mut schemas = BTreeMap::new();
        schemas.insert(
            "src".to_string(),
            schema("user", &["uid", "department", "givenName", "sn"]),
        );
        schemas.insert("dst".to_string(), schema("user", &["cn", "mail", "uid"]));
        let f = check_rules(&rs, &schemas);
        let find = |rule: &str, attr: &str| {
            f.iter()
                .find(|x| x.rule == rule && x.attribute == attr)
                .unwrap_or_else(|| panic!("no finding for {rule}/{attr}: {f:#?}"))
        };
        // Scope reads `Department`, the schema has `department`.
        let d = find("in", "Department");
        assert_eq!(d.severity, Severity::Error);
        assert!(d.message.contains("did you mean 'department'"), "{d:?}");
        // `surname` is simply not in the schema.
        assert_eq!(find("in", "surname").severity, Severity::Warning);
        // The outbound rule reads `displayname`; the metaverse has `displayName`.
        let d = find("out", "displayname");
        assert_eq!(d.severity, Severity::Error);
        assert!(d.message.contains("did you mean 'displayName'"), "{d:?}");
        // ... and `mail`, which no inbound rule sets (a warning: defensive reads are legitimate).
        assert_eq!(find("out", "mail").severity, Severity::Warning);
        // The target connector has `mail`, the flow writes `Mail`.
        assert_eq!(find("out", "Mail").severity, Severity::Error);
        // Correct names produce nothing.
        assert!(
            !f.iter()
                .any(|x| x.attribute == "uid" || x.attribute == "cn")
        );
        assert!(!f.iter().any(|x| x.attribute == "dn"));
        // Errors sort first.
        assert_eq!(f[0].severity, Severity::Error);
    }

    #[test]
    fn without_schemas_only_metaverse_consistency_is_checked() {
        let f = check_rules(&rules(CONFIG), &BTreeMap::new());
        assert!(f.iter().all(|x| x.rule == "out"), "{f:#?}");
        assert_eq!(f.len(), 2, "{f:#?}");
    }
}

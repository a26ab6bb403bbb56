//! Scoping filters: groups of clauses, AND inside a group, OR across groups.

use crate::config::{ScopeClause, ScopeGroup, ScopeOperator};
use crate::model::Value;
use serde::Serialize;

/// What scoping needs beyond the object's own attributes.
pub trait ScopeContext {
    /// Values of an attribute of the object being scoped (`dn` gives the DN).
    fn values(&self, attribute: &str) -> Vec<Value>;
    /// True when the object is a (direct) member of the group with this DN.
    fn is_member_of(&self, group_dn: &str) -> bool;
}

/// Why an object is in or out of scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeDecision {
    /// In scope?
    pub in_scope: bool,
    /// The group that matched (in scope), if any.
    pub group: Option<usize>,
    /// Human explanation: which clause decided.
    pub reason: String,
}

/// Evaluates scoping groups; no groups means everything is in scope.
pub fn evaluate_scope(groups: &[ScopeGroup], ctx: &dyn ScopeContext) -> ScopeDecision {
    if groups.is_empty() {
        return ScopeDecision {
            in_scope: true,
            group: None,
            reason: "rule has no scoping filter".into(),
        };
    }
    let mut last_failure = String::new();
    for (gi, g) in groups.iter().enumerate() {
        match g.clauses.iter().find(|c| !clause_matches(c, ctx)) {
            None => {
                return ScopeDecision {
                    in_scope: true,
                    group: Some(gi),
                    reason: format!("scoping group {} matched", gi + 1),
                };
            }
            Some(c) => {
                last_failure = format!(
                    "group {}: clause '{} {:?} {}' not satisfied",
                    gi + 1,
                    c.attribute,
                    c.operator,
                    c.value
                )
            }
        }
    }
    ScopeDecision {
        in_scope: false,
        group: None,
        reason: last_failure,
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        other => parse_number(&other.to_text()),
    }
}

fn parse_number(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("&H").or_else(|| t.strip_prefix("0x")) {
        return u64::from_str_radix(h, 16).ok().map(|u| u as i64);
    }
    t.parse::<i64>().ok()
}

fn compare(v: &Value, target: &str) -> std::cmp::Ordering {
    match (as_i64(v), parse_number(target)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => v.to_text().to_lowercase().cmp(&target.to_lowercase()),
    }
}

fn clause_matches(c: &ScopeClause, ctx: &dyn ScopeContext) -> bool {
    use ScopeOperator::*;
    use std::cmp::Ordering;
    if matches!(c.operator, Ismemberof) {
        return ctx.is_member_of(&c.value);
    }
    if matches!(c.operator, Isnotmemberof) {
        return !ctx.is_member_of(&c.value);
    }
    let vals = ctx.values(&c.attribute);
    let target = c.value.to_lowercase();
    let texts = || vals.iter().map(|v| v.to_text().to_lowercase());
    match c.operator {
        Equal => vals.iter().any(|v| compare(v, &c.value) == Ordering::Equal),
        Notequal => !vals.iter().any(|v| compare(v, &c.value) == Ordering::Equal),
        Lessthan => vals.iter().any(|v| compare(v, &c.value) == Ordering::Less),
        LessthanOrEqual => vals
            .iter()
            .any(|v| compare(v, &c.value) != Ordering::Greater),
        Greaterthan => vals
            .iter()
            .any(|v| compare(v, &c.value) == Ordering::Greater),
        GreaterthanOrEqual => vals.iter().any(|v| compare(v, &c.value) != Ordering::Less),
        Contains => texts().any(|t| t.contains(&target)),
        Notcontains => !texts().any(|t| t.contains(&target)),
        Startswith => texts().any(|t| t.starts_with(&target)),
        Notstartswith => !texts().any(|t| t.starts_with(&target)),
        Endswith => texts().any(|t| t.ends_with(&target)),
        Notendswith => !texts().any(|t| t.ends_with(&target)),
        Isnull => vals.is_empty(),
        Isnotnull => !vals.is_empty(),
        Isin | Isnotin => {
            let set: Vec<String> = c
                .value
                .split(';')
                .map(|s| s.trim().to_lowercase())
                .collect();
            let found = texts().any(|t| set.contains(&t));
            if matches!(c.operator, Isin) {
                found
            } else {
                !found
            }
        }
        Isbitset | Isnotbitset => {
            let mask = parse_number(&c.value).unwrap_or(0);
            let set = vals
                .iter()
                .filter_map(as_i64)
                .any(|i| i & mask == mask && mask != 0);
            if matches!(c.operator, Isbitset) {
                set
            } else {
                !set
            }
        }
        Ismemberof | Isnotmemberof => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Ctx(BTreeMap<String, Vec<Value>>, Vec<String>);
    impl ScopeContext for Ctx {
        fn values(&self, a: &str) -> Vec<Value> {
            self.0.get(a).cloned().unwrap_or_default()
        }
        fn is_member_of(&self, g: &str) -> bool {
            self.1.iter().any(|x| x.eq_ignore_ascii_case(g))
        }
    }

    fn clause(a: &str, op: ScopeOperator, v: &str) -> ScopeClause {
        ScopeClause {
            attribute: a.into(),
            operator: op,
            value: v.into(),
        }
    }

    fn ctx() -> Ctx {
        let mut m = BTreeMap::new();
        m.insert("department".into(), vec![Value::from("Sales")]);
        m.insert("userAccountControl".into(), vec![Value::Int(514)]);
        m.insert("employeeNumber".into(), vec![Value::from("0042")]);
        m.insert(
            "proxyAddresses".into(),
            vec![Value::from("SMTP:a@x.com"), Value::from("sip:a@x.com")],
        );
        Ctx(m, vec!["CN=Pilot,OU=Groups,DC=x".into()])
    }

    #[test]
    fn every_operator() {
        use ScopeOperator::*;
        let c = ctx();
        let cases = [
            (clause("department", Equal, "sales"), true),
            (clause("department", Notequal, "Sales"), false),
            (clause("missing", Notequal, "x"), true),
            (clause("employeeNumber", Lessthan, "43"), true),
            (clause("employeeNumber", LessthanOrEqual, "42"), true),
            (clause("employeeNumber", Greaterthan, "42"), false),
            (clause("employeeNumber", GreaterthanOrEqual, "42"), true),
            (clause("proxyAddresses", Contains, "SIP:"), true),
            (clause("proxyAddresses", Notcontains, "x500"), true),
            (clause("department", Startswith, "Sa"), true),
            (clause("department", Notstartswith, "Sa"), false),
            (clause("department", Endswith, "les"), true),
            (clause("department", Notendswith, "les"), false),
            (clause("missing", Isnull, ""), true),
            (clause("department", Isnotnull, ""), true),
            (clause("department", Isin, "HR; Sales"), true),
            (clause("department", Isnotin, "HR;IT"), true),
            (clause("userAccountControl", Isbitset, "2"), true),
            (clause("userAccountControl", Isnotbitset, "&H2"), false),
            (clause("", Ismemberof, "cn=pilot,ou=groups,dc=x"), true),
            (clause("", Isnotmemberof, "CN=Pilot,OU=Groups,DC=x"), false),
        ];
        for (cl, want) in cases {
            let d = evaluate_scope(
                &[ScopeGroup {
                    clauses: vec![cl.clone()],
                }],
                &c,
            );
            assert_eq!(d.in_scope, want, "{cl:?}");
        }
    }

    #[test]
    fn and_inside_or_across() {
        use ScopeOperator::*;
        let c = ctx();
        let g1 = ScopeGroup {
            clauses: vec![
                clause("department", Equal, "Sales"),
                clause("department", Equal, "HR"),
            ],
        };
        let g2 = ScopeGroup {
            clauses: vec![clause("department", Startswith, "S")],
        };
        assert!(!evaluate_scope(std::slice::from_ref(&g1), &c).in_scope);
        let d = evaluate_scope(&[g1, g2], &c);
        assert!(d.in_scope);
        assert_eq!(d.group, Some(1));
    }
}

//! Compiled declarative sync rules: scoping, join clauses, attribute flows.
//!
//! Rules are compiled once at configuration load (expressions parsed and checked) and then
//! evaluated many times by the engine.

pub mod check;
mod scope;

pub use scope::{ScopeContext, ScopeDecision, evaluate_scope};

use crate::config::{
    Config, ConfigError, Deprovision, Direction, FlowConfig, JoinGroup, LinkType, MergeType,
    ScopeGroup,
};
use crate::expr::{EvalContext, EvalError, Expression, FlowValue};
use crate::model::{Attributes, Object, Value};
use std::collections::BTreeMap;

/// Where a flow's value comes from.
#[derive(Debug, Clone)]
pub enum FlowSource {
    /// Copy this attribute.
    Direct(String),
    /// A constant string.
    Constant(Value),
    /// An expression.
    Expression(Box<Expression>),
}

/// One compiled attribute flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Target attribute (`dn` sets the DN on outbound rules).
    pub target: String,
    /// Value source.
    pub source: FlowSource,
    /// Only set when the target is empty.
    pub apply_once: bool,
    /// Merge type.
    pub merge: MergeType,
}

impl Flow {
    /// Evaluates the flow against an object.
    pub fn evaluate(&self, ctx: &dyn EvalContext) -> Result<FlowValue, EvalError> {
        match &self.source {
            FlowSource::Direct(a) => Ok(FlowValue::Values(ctx.attribute(a).to_vec())),
            FlowSource::Constant(v) => Ok(FlowValue::Values(vec![v.clone()])),
            FlowSource::Expression(e) => e.evaluate(ctx),
        }
    }

    /// Attributes the flow reads.
    pub fn reads(&self) -> Vec<String> {
        match &self.source {
            FlowSource::Direct(a) => vec![a.clone()],
            FlowSource::Constant(_) => Vec::new(),
            FlowSource::Expression(e) => e.attributes(),
        }
    }
}

/// One compiled sync rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// Direction.
    pub direction: Direction,
    /// Connector read (inbound) or written (outbound).
    pub connector: String,
    /// Source object type.
    pub source_type: String,
    /// Target object type.
    pub target_type: String,
    /// Precedence (lower wins).
    pub precedence: i64,
    /// Link type.
    pub link_type: LinkType,
    /// Deprovisioning action (outbound).
    pub deprovision: Deprovision,
    /// Scoping groups.
    pub scope: Vec<ScopeGroup>,
    /// Join groups.
    pub join: Vec<JoinGroup>,
    /// Flows.
    pub flows: Vec<Flow>,
}

impl Rule {
    /// True when the rule creates or keeps alive objects on its target side.
    pub fn provisions(&self) -> bool {
        matches!(self.link_type, LinkType::Provision)
    }
}

/// All rules of a configuration, ordered by precedence.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Enabled rules, lowest precedence number first.
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// Compiles the rules of a configuration; expression errors name file, line, rule and column.
    pub fn compile(cfg: &Config) -> Result<RuleSet, ConfigError> {
        let mut rules = Vec::new();
        for (i, rc) in cfg.rules.iter().enumerate() {
            if rc.disabled {
                continue;
            }
            let mut flows = Vec::new();
            for (j, fc) in rc.flows.iter().enumerate() {
                flows.push(compile_flow(cfg, &rc.name, i, j, fc)?);
            }
            rules.push(Rule {
                name: rc.name.clone(),
                direction: rc.direction,
                connector: rc.connector.clone(),
                source_type: rc.source_type.clone(),
                target_type: rc.target_type.clone(),
                precedence: rc.precedence,
                link_type: rc.link_type,
                deprovision: rc.deprovision,
                scope: rc.scope.clone(),
                join: rc.join.clone(),
                flows,
            });
        }
        rules.sort_by(|a, b| a.precedence.cmp(&b.precedence).then(a.name.cmp(&b.name)));
        Ok(RuleSet { rules })
    }

    /// Inbound rules for a connector and CS object type, by precedence.
    pub fn inbound<'a>(
        &'a self,
        connector: &str,
        cs_type: &str,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        let connector = connector.to_string();
        let cs_type = cs_type.to_string();
        self.rules.iter().filter(move |r| {
            r.direction == Direction::Inbound
                && r.connector == connector
                && r.source_type == cs_type
        })
    }

    /// Outbound rules for an MV object type, by precedence.
    pub fn outbound<'a>(&'a self, mv_type: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.direction == Direction::Outbound && r.source_type == mv_type)
    }

    /// The rule with this name.
    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// Attribute names used in join clauses on the metaverse side (indexed for joins).
    pub fn mv_join_attributes(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .rules
            .iter()
            .flat_map(|r| {
                r.join.iter().flat_map(move |g| {
                    g.clauses.iter().map(move |c| match r.direction {
                        Direction::Inbound => c.target.clone(),
                        Direction::Outbound => c.source.clone(),
                    })
                })
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn compile_flow(
    cfg: &Config,
    rule: &str,
    i: usize,
    j: usize,
    fc: &FlowConfig,
) -> Result<Flow, ConfigError> {
    let source = if let Some(a) = &fc.source {
        FlowSource::Direct(a.clone())
    } else if let Some(c) = &fc.constant {
        FlowSource::Constant(Value::Str(c.clone()))
    } else if let Some(e) = &fc.expression {
        let parsed = Expression::parse(e).map_err(|err| ConfigError::Invalid {
            file: cfg.origin.clone(),
            line: cfg.line_of(e),
            key: format!("rules[{i}].flows[{j}].expression"),
            message: err.render(rule),
        })?;
        FlowSource::Expression(Box::new(parsed))
    } else {
        return Err(cfg.invalid(
            &fc.target,
            &format!("rules[{i}].flows[{j}]"),
            "a flow needs a source, a constant or an expression",
        ));
    };
    Ok(Flow {
        target: fc.target.clone(),
        source,
        apply_once: fc.apply_once,
        merge: fc.merge,
    })
}

/// Evaluation context over one object's attributes and the configuration parameters.
pub struct ObjectContext<'a> {
    attrs: &'a Attributes,
    imported: Option<&'a Attributes>,
    dn: Vec<Value>,
    params: &'a BTreeMap<String, String>,
}

impl<'a> ObjectContext<'a> {
    /// A context over an object; `dn` is exposed as the attribute `dn`.
    pub fn new(obj: &'a Object, params: &'a BTreeMap<String, String>) -> Self {
        Self::with_dn(&obj.attributes, &obj.dn, params)
    }

    /// A context over attributes and a DN (exposed as the attribute `dn`).
    pub fn with_dn(
        attrs: &'a Attributes,
        dn: &crate::model::Dn,
        params: &'a BTreeMap<String, String>,
    ) -> Self {
        ObjectContext {
            attrs,
            imported: None,
            dn: vec![Value::Str(dn.to_string())],
            params,
        }
    }

    /// A context over bare attributes (metaverse objects have no DN).
    pub fn attributes(attrs: &'a Attributes, params: &'a BTreeMap<String, String>) -> Self {
        ObjectContext {
            attrs,
            imported: None,
            dn: Vec::new(),
            params,
        }
    }

    /// Sets the confirmed (imported) attributes for `ImportedValue`.
    pub fn with_imported(mut self, imported: &'a Attributes) -> Self {
        self.imported = Some(imported);
        self
    }
}

impl EvalContext for ObjectContext<'_> {
    fn attribute(&self, name: &str) -> &[Value] {
        if name == "dn" && !self.dn.is_empty() {
            return &self.dn;
        }
        self.attrs.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
    fn imported_attribute(&self, name: &str) -> &[Value] {
        match self.imported {
            Some(i) => i.get(name).map(Vec::as_slice).unwrap_or(&[]),
            None => self.attribute(name),
        }
    }
    fn parameter(&self, name: &str) -> Option<String> {
        self.params.get(name).cloned()
    }
}

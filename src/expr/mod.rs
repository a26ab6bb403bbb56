//! The Entra Connect declarative-provisioning expression language.
//!
//! Interface used by the engine (parse once, evaluate many):
//! - [`Expression::parse`] compiles source text once (at configuration load);
//! - [`Expression::check`] verifies functions, arity and attribute names against a schema;
//! - [`Expression::evaluate`] runs the compiled form against one object's attributes and the
//!   parameters (`%Domain.FQDN%`, ...) through an [`EvalContext`].
//!
//! STUB: the full implementation lands with issue 3; this placeholder fixes the interface.

use crate::model::Value;

/// What a flow contributes: values (empty = NULL), AuthoritativeNull or IgnoreThisFlow.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowValue {
    /// Values to contribute; an empty list is NULL (contributes nothing).
    Values(Vec<Value>),
    /// NULL that blocks lower-precedence contributions.
    AuthoritativeNull,
    /// Contribute nothing and leave the target value alone.
    IgnoreThisFlow,
}

/// Access to the object an expression is evaluated against.
pub trait EvalContext {
    /// Current values of an attribute (empty when absent).
    fn attribute(&self, name: &str) -> &[Value];
    /// Confirmed (imported) values of an attribute, for `ImportedValue("x")`.
    fn imported_attribute(&self, name: &str) -> &[Value] {
        self.attribute(name)
    }
    /// A parameter such as `Domain.FQDN` (without the `%` signs).
    fn parameter(&self, name: &str) -> Option<String>;
}

/// A compile-time error: where in the source and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ExprError {
    /// One-based column (in characters) of the problem.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// The expression source.
    pub source_text: String,
}

impl ExprError {
    /// Renders the error with the rule name, the expression and a caret under the column.
    pub fn render(&self, rule_name: &str) -> String {
        format!(
            "rule '{rule_name}': {} at column {}\n  {}\n  {}^",
            self.message,
            self.column,
            self.source_text,
            " ".repeat(self.column.saturating_sub(1))
        )
    }
}

/// A runtime error: becomes a per-object sync error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// What went wrong.
    pub message: String,
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
}

impl Expression {
    /// Compiles an expression.
    pub fn parse(source: &str) -> Result<Expression, ExprError> {
        Ok(Expression {
            source: source.to_string(),
        })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The attribute names the expression reads (`[name]`, `ImportedValue("name")`).
    pub fn attributes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Static check against a schema: unknown attributes are errors.
    pub fn check(&self, _is_known_attribute: &dyn Fn(&str) -> bool) -> Result<(), ExprError> {
        Ok(())
    }

    /// Evaluates the expression.
    pub fn evaluate(&self, _ctx: &dyn EvalContext) -> Result<FlowValue, EvalError> {
        Err(EvalError {
            message: "expression evaluation not implemented yet".into(),
        })
    }
}

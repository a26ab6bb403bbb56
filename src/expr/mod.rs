//! The Entra Connect declarative-provisioning expression language.
//!
//! Interface used by the engine (parse once, evaluate many):
//! - [`Expression::parse`] compiles source text once (at configuration load);
//! - [`Expression::check`] verifies functions, arity and attribute names against a schema;
//! - [`Expression::evaluate`] runs the compiled form against one object's attributes and the
//!   parameters (`%Domain.FQDN%`, ...) through an [`EvalContext`].
//!
//! Language summary (Microsoft's "Understanding Declarative Provisioning Expressions" and
//! "Functions Reference"):
//! - literals: `"text"` (`""` escapes a quote), integers, `&HFF` hex, `True`, `False`, `NULL`,
//!   `CRLF`, `IgnoreThisFlow`, `AuthoritativeNull`; enumeration constants such as
//!   `vbTextCompare` or `CaseInsensitive` as bare names;
//! - `[attribute]`, `%Parameter%`, `$variable` (bound by `Select`, `Where`, `With`);
//! - operators in three levels, each evaluated left to right at equal priority:
//!   `+ - * &` (tightest), then `< <= <> = > >=`, then `&& ||` (loosest); so `2+3*4` is 20;
//! - function and attribute names are case-sensitive; unknown functions and wrong arity fail
//!   at parse time;
//! - a multi-valued argument applies a function to each value (`Trim([proxyAddresses])`);
//!   functions that work on whole lists (Count, Item, Join, Contains, ...) receive the list.
//!
//! The certificate functions (`Cert*`, `IsCert`) are not implemented.
//!
//! Choices where the reference is silent (each pinned by a conformance case):
//! - NULL: most functions given NULL return NULL (so `Trim([absent])` contributes nothing);
//!   Left, Right, Mid, Word, PadLeft and PadRight return `""` as documented; Len gives 0;
//!   `NULL & "x"` is `"x"`; arithmetic with NULL is NULL; `=` is true only for NULL = NULL,
//!   `<>` is true against NULL, and the ordering operators are false.
//! - Conversions are lenient where unambiguous: numeric strings are numbers, `"True"`/`"False"`
//!   are booleans, numbers and booleans are strings (`True`/`False`); a binary value is never
//!   silently a string (use ConvertToBase64 or StringFromGuid).
//! - Per-value application zips multi-valued arguments of equal length and repeats
//!   single values; lists of different lengths are an error. `IIF` with a multi-valued
//!   condition picks per value (`IIF(InStr([proxyAddresses],"SIP:")=1,NULL,[proxyAddresses])`).
//! - `Switch` evaluates every condition but only the chosen value (so `True, Error("...")`
//!   works as the documented example intends).
//! - `IsBitSet(value, flag)` is true when all bits of `flag` are set in `value`.
//! - `Word` skips empty words between consecutive delimiters.
//! - `StringFromGuid` and `GUID()` give the lowercase hyphenated form without braces.
//! - `FormatDateTime` uses .NET custom format strings (invariant culture), where `mm` is
//!   minutes and `MM` months.
//! - `CBin` turns strings into their UTF-8 bytes and numbers into 8 little-endian bytes.
//! - Guards: at most 100 levels of nesting (parse error), 4 MiB per string, 1 Mi values per
//!   list, 256 MiB built and 10 M steps per evaluation (runtime errors).

mod datetime;
mod eval;
mod functions;
mod lexer;
mod parser;
mod value;

pub use lexer::Op;
pub use parser::{Func, Node};

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
        // Show the source line holding the column (expressions may span lines in a config
        // file); the caret keeps tabs so that it lines up under the character.
        let target = self.column.saturating_sub(1);
        let mut line = String::new();
        let mut pad = String::new();
        for (i, c) in self.source_text.chars().enumerate() {
            if c == '\n' || c == '\r' {
                if i >= target {
                    break;
                }
                line.clear();
                pad.clear();
                continue;
            }
            if i < target {
                pad.push(if c == '\t' { '\t' } else { ' ' });
            }
            line.push(c);
        }
        format!(
            "rule '{rule_name}': {} at column {}\n  {line}\n  {pad}^",
            self.message, self.column,
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
    root: Node,
}

fn walk_attrs<'n>(n: &'n Node, out: &mut Vec<(&'n str, usize)>) {
    match n {
        Node::Attr { name, col }
        | Node::Imported { name, col }
        | Node::ValueCount { name, col } => out.push((name.as_str(), *col)),
        Node::Call { args, .. } => args.iter().for_each(|a| walk_attrs(a, out)),
        Node::Binary { l, r, .. } => {
            walk_attrs(l, out);
            walk_attrs(r, out);
        }
        Node::Neg(x) => walk_attrs(x, out),
        _ => {}
    }
}

impl Expression {
    /// Compiles an expression: syntax, function names (case-sensitive) and arity are checked.
    pub fn parse(source: &str) -> Result<Expression, ExprError> {
        let root = parser::parse(source)?;
        Ok(Expression {
            source: source.to_string(),
            root,
        })
    }

    /// The compiled tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The attribute names the expression reads (`[name]`, `ImportedValue("name")`).
    pub fn attributes(&self) -> Vec<String> {
        let mut found = Vec::new();
        walk_attrs(&self.root, &mut found);
        let mut out: Vec<String> = Vec::with_capacity(found.len());
        for (name, _) in found {
            if !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
        }
        out
    }

    /// Static check against a schema: unknown attributes are errors (with their column).
    pub fn check(&self, is_known_attribute: &dyn Fn(&str) -> bool) -> Result<(), ExprError> {
        let mut found = Vec::new();
        walk_attrs(&self.root, &mut found);
        match found
            .into_iter()
            .find(|(name, _)| !is_known_attribute(name))
        {
            Some((name, col)) => Err(ExprError {
                column: col,
                message: format!("unknown attribute '{name}' (attribute names are case-sensitive)"),
                source_text: self.source.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Evaluates the expression against one object. Runtime problems (Item out of range,
    /// `Error("...")`, bad conversions) are [`EvalError`]s, never panics.
    pub fn evaluate(&self, ctx: &dyn EvalContext) -> Result<FlowValue, EvalError> {
        let mut ev = eval::Evaluator::new(ctx);
        let v = ev.eval(&self.root)?;
        Ok(match v {
            value::Val::AuthNull => FlowValue::AuthoritativeNull,
            value::Val::Ignore => FlowValue::IgnoreThisFlow,
            other => {
                let mut out = Vec::with_capacity(1);
                other.into_model(&mut out)?;
                FlowValue::Values(out)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::datetime::{format_dotnet, from_filetime, parse_cdate, to_filetime};
    use super::*;

    struct Empty;
    impl EvalContext for Empty {
        fn attribute(&self, _name: &str) -> &[Value] {
            &[]
        }
        fn parameter(&self, _name: &str) -> Option<String> {
            None
        }
    }

    fn eval(src: &str) -> Result<FlowValue, String> {
        Expression::parse(src)
            .map_err(|e| e.render("t"))?
            .evaluate(&Empty)
            .map_err(|e| e.message)
    }

    #[test]
    fn compiled_expressions_are_shareable_across_threads() {
        fn shareable<T: Send + Sync + Clone>() {}
        shareable::<Expression>();
        shareable::<ExprError>();
        shareable::<EvalError>();
    }

    #[test]
    fn three_levels_left_to_right() {
        assert_eq!(eval("2+3*4"), Ok(FlowValue::Values(vec![Value::Int(20)])));
        assert_eq!(eval("5-2*3"), Ok(FlowValue::Values(vec![Value::Int(9)])));
        // Comparisons bind looser than arithmetic, && / || looser than comparisons.
        match Expression::parse("1+1=2 || 3=4").map(|e| e.root().clone()) {
            Ok(Node::Binary { op: Op::Or, l, r }) => {
                assert!(matches!(*l, Node::Binary { op: Op::Eq, .. }));
                assert!(matches!(*r, Node::Binary { op: Op::Eq, .. }));
            }
            other => panic!("unexpected tree {other:?}"),
        }
    }

    #[test]
    fn hex_only_in_operand_position() {
        assert_eq!(
            eval("&H10 + 1"),
            Ok(FlowValue::Values(vec![Value::Int(17)]))
        );
        assert_eq!(
            eval("\"x\" & &H10"),
            Ok(FlowValue::Values(vec![Value::Str("x16".into())]))
        );
        // After an operand, `&` is concatenation: `H10` is then an unknown name.
        assert!(eval("\"x\" &H10").is_err_and(|e| e.contains("unknown identifier 'H10'")));
    }

    #[test]
    fn functions_resolve_at_parse_time() {
        match Expression::parse("Trim([x])").map(|e| e.root().clone()) {
            Ok(Node::Call { f: Func::Trim, .. }) => {}
            other => panic!("unexpected tree {other:?}"),
        }
        assert_eq!(Func::from_name("trim"), None);
        assert_eq!(Func::Trim.name(), "Trim");
        assert_eq!(Func::InStr.arity(), (2, 4));
    }

    #[test]
    fn filetime_round_trip() {
        let d = from_filetime(129_699_324_000_000_000).map_err(|e| e.message);
        assert_eq!(
            d.map(|d| d.to_rfc3339()),
            Ok("2012-01-01T23:00:00+00:00".to_string())
        );
        let back = from_filetime(129_699_324_000_000_001).and_then(|d| to_filetime(&d));
        assert_eq!(back.ok(), Some(129_699_324_000_000_001));
        assert!(from_filetime(i64::MAX).is_ok());
        // Far outside chrono's range: an error, not a panic.
        let _ = from_filetime(i64::MIN);
    }

    #[test]
    fn cdate_forms() {
        let f = |s: &str| parse_cdate(s).map(|d| d.to_rfc3339());
        assert_eq!(
            f("2013-01-10 4:00 PM -8"),
            Some("2013-01-11T00:00:00+00:00".into())
        );
        assert_eq!(
            f("2013-01-10 16:00:30.5 +05:30"),
            Some("2013-01-10T10:30:30.500+00:00".into())
        );
        assert_eq!(f("1/2/2003"), Some("2003-01-02T00:00:00+00:00".into()));
        assert_eq!(f("2003-01-02 25:00"), None);
        assert_eq!(f("2003-01-02 13:00 PM"), None);
        assert_eq!(f(""), None);
    }

    #[test]
    fn dotnet_formats() {
        let d = parse_cdate("2014-09-05 08:14:53.1234567").unwrap_or_default();
        assert_eq!(format_dotnet(&d, "yyyyMMddHHmmss.0Z"), "20140905081453.0Z");
        assert_eq!(format_dotnet(&d, "fff"), "123");
        assert_eq!(format_dotnet(&d, "ss.FFFFFFF"), "53.1234567");
        assert_eq!(format_dotnet(&d, "hh tt"), "08 AM");
        assert_eq!(format_dotnet(&d, "\\y yy"), "y 14");
        assert_eq!(format_dotnet(&d, "d"), "09/05/2014");
    }

    #[test]
    fn render_shows_the_line_of_a_multi_line_expression() {
        let e = Expression::parse("IIF(True,\n\tFoo(1),\n NULL)").err();
        let text = e.map(|e| e.render("r")).unwrap_or_default();
        assert!(text.ends_with("\n  \tFoo(1),\n  \t^"), "{text}");
    }

    #[test]
    fn render_points_at_the_column() {
        let e = Expression::parse("Left([sn], 2) & Foo()").err();
        let text = e.map(|e| e.render("r")).unwrap_or_default();
        assert!(text.contains("unknown function 'Foo'"), "{text}");
        assert!(
            text.ends_with(&format!("{}^", " ".repeat(2 + 16))),
            "{text}"
        );
    }
}

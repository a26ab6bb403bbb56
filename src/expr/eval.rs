//! Tree-walking evaluator: operators, lazy flow functions (IIF, Switch, Select, Where, With)
//! and the per-value application of functions to multi-valued arguments.

use super::functions;
use super::lexer::Op;
use super::parser::{Func, Node};
use super::value::{MAX_STR, Val, make_multi, rt, str_ref, to_bool, to_int, to_str};
use super::{EvalContext, EvalError};
use std::borrow::Cow;
use std::cmp::Ordering;

/// Most node evaluations one expression evaluation may take.
const STEP_BUDGET: u64 = 10_000_000;
/// Most bytes of new strings one expression evaluation may build.
const BYTE_BUDGET: usize = 256 << 20;

/// Evaluation state for one run of an expression against one object.
pub struct Evaluator<'a> {
    ctx: &'a dyn EvalContext,
    vars: Vec<(&'a str, Val<'a>)>,
    steps: u64,
    bytes: usize,
}

fn arg(args: &[Node], i: usize) -> Result<&Node, EvalError> {
    args.get(i)
        .ok_or_else(|| rt(format!("internal: missing argument {}", i + 1)))
}

fn var_name(args: &[Node]) -> Result<&str, EvalError> {
    match args.first() {
        Some(Node::Var { name, .. }) => Ok(name.as_str()),
        _ => Err(rt("internal: the first argument must be a variable")),
    }
}

/// Owned bytes a value carries (what it cost to build).
fn owned_bytes(v: &Val<'_>) -> usize {
    match v {
        Val::Str(Cow::Owned(s)) | Val::Ref(Cow::Owned(s)) => s.len(),
        Val::Bin(Cow::Owned(b)) => b.len(),
        Val::Multi(items) => items.iter().map(owned_bytes).sum::<usize>() + items.len() * 8,
        _ => 0,
    }
}

impl<'a> Evaluator<'a> {
    /// A fresh evaluator.
    pub fn new(ctx: &'a dyn EvalContext) -> Self {
        Evaluator {
            ctx,
            vars: Vec::new(),
            steps: STEP_BUDGET,
            bytes: BYTE_BUDGET,
        }
    }

    fn charge(&mut self, v: &Val<'_>) -> Result<(), EvalError> {
        let n = owned_bytes(v);
        if n == 0 {
            return Ok(());
        }
        self.bytes = self
            .bytes
            .checked_sub(n)
            .ok_or_else(|| rt("expression builds too much data (over 256 MiB)"))?;
        Ok(())
    }

    /// Evaluates a node.
    pub fn eval(&mut self, n: &'a Node) -> Result<Val<'a>, EvalError> {
        self.steps = self
            .steps
            .checked_sub(1)
            .ok_or_else(|| rt("expression takes too many evaluation steps"))?;
        let ctx: &'a dyn EvalContext = self.ctx;
        match n {
            Node::Null => Ok(Val::Null),
            Node::AuthNull => Ok(Val::AuthNull),
            Node::Ignore => Ok(Val::Ignore),
            Node::Str(s) => Ok(Val::Str(Cow::Borrowed(s.as_str()))),
            Node::Int(i) => Ok(Val::Int(*i)),
            Node::Bool(b) => Ok(Val::Bool(*b)),
            Node::Attr { name, .. } => Ok(Val::from_values(ctx.attribute(name))),
            Node::Imported { name, .. } => Ok(Val::from_values(ctx.imported_attribute(name))),
            Node::ValueCount { name, .. } => Ok(Val::Int(
                i64::try_from(ctx.attribute(name).len()).unwrap_or(i64::MAX),
            )),
            Node::Param(p) => match ctx.parameter(p) {
                Some(v) => {
                    let v = Val::Str(Cow::Owned(v));
                    self.charge(&v)?;
                    Ok(v)
                }
                None => Err(rt(format!("unknown parameter %{p}%"))),
            },
            Node::Var { name, .. } => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == name.as_str())
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| rt(format!("variable ${name} is not defined here")))?;
                self.charge(&v)?;
                Ok(v)
            }
            Node::Neg(inner) => {
                let v = self.eval(inner)?;
                functions::map1(v, |v| {
                    if v.is_nullish() {
                        return Ok(Val::Null);
                    }
                    to_int(&v)?
                        .checked_neg()
                        .map(Val::Int)
                        .ok_or_else(|| rt("arithmetic overflow"))
                })
            }
            Node::Binary { op, l, r } => {
                let v = self.binary(*op, l, r)?;
                self.charge(&v)?;
                Ok(v)
            }
            Node::Call { f, args } => {
                let v = self.call(*f, args)?;
                self.charge(&v)?;
                Ok(v)
            }
        }
    }

    fn binary(&mut self, op: Op, l: &'a Node, r: &'a Node) -> Result<Val<'a>, EvalError> {
        let lv = self.eval(l)?;
        if matches!(op, Op::And | Op::Or) && !matches!(lv, Val::Multi(_)) {
            let lb = to_bool(&lv)?;
            if op == Op::And && !lb {
                return Ok(Val::Bool(false));
            }
            if op == Op::Or && lb {
                return Ok(Val::Bool(true));
            }
        }
        let rv = self.eval(r)?;
        zip2(lv, rv, |a, b| scalar_op(op, a, b))
    }

    fn call(&mut self, f: Func, args: &'a [Node]) -> Result<Val<'a>, EvalError> {
        match f {
            Func::IIF => self.iif(args),
            Func::Switch => self.switch(args),
            Func::Select | Func::Where => {
                let name = var_name(args)?;
                let src = self.eval(arg(args, 1)?)?;
                let body = arg(args, 2)?;
                let mut out = Vec::new();
                let depth = self.vars.len();
                for item in src.into_list() {
                    self.vars.push((name, item));
                    let r = self.eval(body);
                    let item = self.vars.pop().map(|(_, v)| v);
                    self.vars.truncate(depth);
                    let r = r?;
                    if f == Func::Select {
                        out.push(r);
                    } else if let (true, Some(item)) = (to_bool(&r)?, item) {
                        out.push(item);
                    }
                }
                make_multi(out)
            }
            Func::With => {
                let name = var_name(args)?;
                let sub = self.eval(arg(args, 1)?)?;
                let depth = self.vars.len();
                self.vars.push((name, sub));
                let r = self.eval(arg(args, 2)?);
                self.vars.truncate(depth);
                r
            }
            Func::Error => {
                let m = self.eval(arg(args, 0)?)?;
                let text = match m {
                    Val::Multi(items) => items
                        .into_iter()
                        .map(|v| to_str(v).map(Cow::into_owned))
                        .collect::<Result<Vec<_>, _>>()?
                        .join(" "),
                    other => to_str(other)?.into_owned(),
                };
                Err(rt(text))
            }
            _ => {
                let mut buf: [Val<'a>; 4] = [Val::Null, Val::Null, Val::Null, Val::Null];
                let n = args.len().min(buf.len());
                for (slot, a) in buf.iter_mut().zip(args) {
                    *slot = self.eval(a)?;
                }
                let slice = buf.get_mut(..n).unwrap_or(&mut []);
                functions::apply(f, slice)
            }
        }
    }

    fn iif(&mut self, args: &'a [Node]) -> Result<Val<'a>, EvalError> {
        let cond = self.eval(arg(args, 0)?)?;
        let flags = match cond {
            Val::Multi(items) => items
                .iter()
                .map(to_bool)
                .collect::<Result<Vec<bool>, _>>()?,
            scalar => {
                let pick = if to_bool(&scalar)? { 1 } else { 2 };
                return self.eval(arg(args, pick)?);
            }
        };
        // Per-value IIF: the condition is multi-valued; zip it with multi-valued branches.
        let tv = if flags.iter().any(|b| *b) {
            self.eval(arg(args, 1)?)?
        } else {
            Val::Null
        };
        let fv = if flags.iter().any(|b| !*b) {
            self.eval(arg(args, 2)?)?
        } else {
            Val::Null
        };
        let n = flags.len();
        let mut tl = Lane::new(tv, n)?;
        let mut fl = Lane::new(fv, n)?;
        let mut out = Vec::with_capacity(n);
        for b in flags {
            let t = tl.next();
            let e = fl.next();
            out.push(if b { t } else { e });
        }
        make_multi(out)
    }

    fn switch(&mut self, args: &'a [Node]) -> Result<Val<'a>, EvalError> {
        // Every condition is evaluated (as documented); only the chosen value is.
        let mut chosen: Option<&'a Node> = None;
        for pair in args.chunks(2) {
            let (c, v) = match pair {
                [c, v] => (c, v),
                _ => return Err(rt("Switch: arguments must come in condition/value pairs")),
            };
            let cv = self.eval(c)?;
            if to_bool(&cv)? && chosen.is_none() {
                chosen = Some(v);
            }
        }
        match chosen {
            Some(v) => self.eval(v),
            None => Ok(Val::Null),
        }
    }
}

/// One side of a per-value operation: a list walked in step, or a scalar repeated.
pub struct Lane<'a> {
    scalar: Option<Val<'a>>,
    items: std::vec::IntoIter<Val<'a>>,
}

impl<'a> Lane<'a> {
    /// A lane of `n` values; a list must have exactly `n` values.
    pub fn new(v: Val<'a>, n: usize) -> Result<Lane<'a>, EvalError> {
        match v {
            Val::Multi(items) => {
                if items.len() != n {
                    return Err(rt(format!(
                        "multi-valued arguments of different lengths ({} and {n}) cannot be combined",
                        items.len()
                    )));
                }
                Ok(Lane {
                    scalar: None,
                    items: items.into_iter(),
                })
            }
            s => Ok(Lane {
                scalar: Some(s),
                items: Vec::new().into_iter(),
            }),
        }
    }

    /// The next value.
    pub fn next(&mut self) -> Val<'a> {
        match &self.scalar {
            Some(s) => s.clone(),
            None => self.items.next().unwrap_or(Val::Null),
        }
    }
}

/// Applies a binary scalar function per value when either side is multi-valued.
pub fn zip2<'a>(
    a: Val<'a>,
    b: Val<'a>,
    mut f: impl FnMut(Val<'a>, Val<'a>) -> Result<Val<'a>, EvalError>,
) -> Result<Val<'a>, EvalError> {
    let n = match (&a, &b) {
        (Val::Multi(x), _) => x.len(),
        (_, Val::Multi(y)) => y.len(),
        _ => return f(a, b),
    };
    let mut la = Lane::new(a, n)?;
    let mut lb = Lane::new(b, n)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(f(la.next(), lb.next())?);
    }
    make_multi(out)
}

fn is_textual(v: &Val<'_>) -> bool {
    matches!(v, Val::Str(_) | Val::Ref(_))
}

/// One operator on two scalars.
pub fn scalar_op<'a>(op: Op, a: Val<'a>, b: Val<'a>) -> Result<Val<'a>, EvalError> {
    match op {
        Op::Concat => concat(a, b),
        Op::Add if is_textual(&a) && is_textual(&b) => concat(a, b),
        Op::Add | Op::Sub | Op::Mul => {
            if a.is_nullish() || b.is_nullish() {
                return Ok(Val::Null);
            }
            let (x, y) = (to_int(&a)?, to_int(&b)?);
            let r = match op {
                Op::Add => x.checked_add(y),
                Op::Sub => x.checked_sub(y),
                _ => x.checked_mul(y),
            };
            r.map(Val::Int).ok_or_else(|| rt("arithmetic overflow"))
        }
        Op::And => Ok(Val::Bool(to_bool(&a)? && to_bool(&b)?)),
        Op::Or => Ok(Val::Bool(to_bool(&a)? || to_bool(&b)?)),
        Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ord = compare(&a, &b)?;
            Ok(Val::Bool(match (op, ord) {
                (Op::Eq, o) => o == Some(Ordering::Equal),
                (Op::Ne, o) => o != Some(Ordering::Equal),
                (Op::Lt, Some(o)) => o == Ordering::Less,
                (Op::Le, Some(o)) => o != Ordering::Greater,
                (Op::Gt, Some(o)) => o == Ordering::Greater,
                (Op::Ge, Some(o)) => o != Ordering::Less,
                _ => false,
            }))
        }
    }
}

/// `a & b`: NULL counts as an empty string; NULL & NULL is NULL.
fn concat<'a>(a: Val<'a>, b: Val<'a>) -> Result<Val<'a>, EvalError> {
    if a.is_nullish() && b.is_nullish() {
        return Ok(Val::Null);
    }
    let rhs = str_ref(&b)?;
    let mut s = match a {
        Val::Str(Cow::Owned(s)) => s,
        other => {
            let l = to_str(other)?;
            let mut s = String::with_capacity(l.len() + rhs.len() + 16);
            s.push_str(&l);
            s
        }
    };
    if s.len().saturating_add(rhs.len()) > MAX_STR {
        return Err(rt("string too long"));
    }
    s.push_str(&rhs);
    Ok(Val::Str(Cow::Owned(s)))
}

/// Orders two scalars; `None` when they cannot be ordered (NULL against a value, binary
/// against text). Strings compare ordinally (case-sensitive); numeric strings compare as
/// numbers against numbers; date strings as dates against dates.
pub fn compare(a: &Val<'_>, b: &Val<'_>) -> Result<Option<Ordering>, EvalError> {
    use super::value::parse_int;
    Ok(match (a, b) {
        (x, y) if x.is_nullish() && y.is_nullish() => Some(Ordering::Equal),
        (x, y) if x.is_nullish() || y.is_nullish() => None,
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Int(x), Val::Str(s) | Val::Ref(s)) => match parse_int(s) {
            Some(y) => Some(x.cmp(&y)),
            None => Some(x.to_string().as_str().cmp(s.as_ref())),
        },
        (Val::Str(s) | Val::Ref(s), Val::Int(y)) => match parse_int(s) {
            Some(x) => Some(x.cmp(y)),
            None => Some(s.as_ref().cmp(y.to_string().as_str())),
        },
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Bool(x), other) | (other, Val::Bool(x)) => {
            let y = to_bool(other).ok();
            let o = y.map(|y| x.cmp(&y));
            // Keep the operand order for ordering comparisons.
            if matches!(a, Val::Bool(_)) {
                o
            } else {
                o.map(Ordering::reverse)
            }
        }
        (Val::Dt(x), Val::Dt(y)) => Some(x.cmp(y)),
        (Val::Dt(x), Val::Str(s)) => super::datetime::parse_cdate(s).map(|y| x.cmp(&y)),
        (Val::Str(s), Val::Dt(y)) => super::datetime::parse_cdate(s).map(|x| x.cmp(y)),
        (Val::Bin(x), Val::Bin(y)) => Some(x.cmp(y)),
        (Val::Bin(_), _) | (_, Val::Bin(_)) => None,
        (Val::Multi(_), _) | (_, Val::Multi(_)) => {
            return Err(rt("internal: multi-valued comparison"));
        }
        (x, y) => Some(str_ref(x)?.as_ref().cmp(str_ref(y)?.as_ref())),
    })
}

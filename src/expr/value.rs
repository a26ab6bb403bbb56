//! The evaluator's internal value: borrowed where possible, with NULL, multi-valued lists and
//! the two special flow values.

use super::EvalError;
use crate::model::Value;
use chrono::{DateTime, SecondsFormat, Utc};
use std::borrow::Cow;

/// Longest string (in bytes) an expression may build; guards against runaway memory use.
pub const MAX_STR: usize = 4 << 20;
/// Most values a multi-valued intermediate result may hold.
pub const MAX_VALUES: usize = 1 << 20;

/// An intermediate value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Val<'a> {
    /// No value (an absent attribute, `NULL`).
    Null,
    /// String.
    Str(Cow<'a, str>),
    /// Reference (DN or object id).
    Ref(Cow<'a, str>),
    /// Bytes.
    Bin(Cow<'a, [u8]>),
    /// 64-bit integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// UTC date-time.
    Dt(DateTime<Utc>),
    /// Several values (never nested, never containing NULL).
    Multi(Vec<Val<'a>>),
    /// `AuthoritativeNull`.
    AuthNull,
    /// `IgnoreThisFlow`.
    Ignore,
}

/// Shorthand for a runtime error.
pub fn rt(message: impl Into<String>) -> EvalError {
    EvalError {
        message: message.into(),
    }
}

impl<'a> Val<'a> {
    /// Borrows a model value.
    pub fn from_value(v: &'a Value) -> Val<'a> {
        match v {
            Value::Str(s) => Val::Str(Cow::Borrowed(s)),
            Value::Ref(s) => Val::Ref(Cow::Borrowed(s)),
            Value::Bin(b) => Val::Bin(Cow::Borrowed(b)),
            Value::Int(i) => Val::Int(*i),
            Value::Bool(b) => Val::Bool(*b),
            Value::Dt(d) => Val::Dt(*d),
        }
    }

    /// The values of an attribute: NULL, one value or a list.
    pub fn from_values(vals: &'a [Value]) -> Val<'a> {
        match vals {
            [] => Val::Null,
            [v] => Val::from_value(v),
            many => Val::Multi(many.iter().map(Val::from_value).collect()),
        }
    }

    /// NULL, or a special flow value used where a plain value is expected.
    pub fn is_nullish(&self) -> bool {
        matches!(self, Val::Null | Val::AuthNull | Val::Ignore)
    }

    /// Name of the type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "NULL",
            Val::Str(_) => "string",
            Val::Ref(_) => "reference",
            Val::Bin(_) => "binary",
            Val::Int(_) => "number",
            Val::Bool(_) => "boolean",
            Val::Dt(_) => "date-time",
            Val::Multi(_) => "multi-valued",
            Val::AuthNull => "AuthoritativeNull",
            Val::Ignore => "IgnoreThisFlow",
        }
    }

    /// Number of values: 0 for NULL, the list length for multi-valued.
    pub fn count(&self) -> usize {
        match self {
            Val::Multi(v) => v.len(),
            v if v.is_nullish() => 0,
            _ => 1,
        }
    }

    /// The values as a list (NULL is empty).
    pub fn into_list(self) -> Vec<Val<'a>> {
        match self {
            Val::Multi(v) => v,
            v if v.is_nullish() => Vec::new(),
            v => vec![v],
        }
    }

    /// Converts to a model value list (owned).
    pub fn into_model(self, out: &mut Vec<Value>) -> Result<(), EvalError> {
        match self {
            Val::Null | Val::AuthNull | Val::Ignore => {}
            Val::Str(s) => out.push(Value::Str(s.into_owned())),
            Val::Ref(s) => out.push(Value::Ref(s.into_owned())),
            Val::Bin(b) => out.push(Value::Bin(b.into_owned())),
            Val::Int(i) => out.push(Value::Int(i)),
            Val::Bool(b) => out.push(Value::Bool(b)),
            Val::Dt(d) => out.push(Value::Dt(d)),
            Val::Multi(v) => {
                for x in v {
                    x.into_model(out)?;
                }
            }
        }
        Ok(())
    }
}

/// Builds a list result: nested lists are flattened, NULLs dropped; an empty list is NULL.
pub fn make_multi<'a>(items: Vec<Val<'a>>) -> Result<Val<'a>, EvalError> {
    let mut out: Vec<Val<'a>> = Vec::with_capacity(items.len());
    let mut special: Option<Val<'a>> = None;
    for it in items {
        match it {
            Val::Multi(inner) => out.extend(inner),
            Val::Null => {}
            Val::AuthNull | Val::Ignore => {
                if special.is_none() {
                    special = Some(it);
                }
            }
            v => out.push(v),
        }
        if out.len() > MAX_VALUES {
            return Err(rt(format!("more than {MAX_VALUES} values in one result")));
        }
    }
    if out.is_empty() {
        return Ok(special.unwrap_or(Val::Null));
    }
    Ok(Val::Multi(out))
}

/// Text form of a date-time (RFC 3339, UTC, like the rest of dirsync).
pub fn dt_text(d: &DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// String view of a scalar. NULL is `""`; binary is a type error.
pub fn to_str<'a>(v: Val<'a>) -> Result<Cow<'a, str>, EvalError> {
    Ok(match v {
        Val::Str(s) | Val::Ref(s) => s,
        Val::Null | Val::AuthNull | Val::Ignore => Cow::Borrowed(""),
        Val::Int(i) => Cow::Owned(i.to_string()),
        Val::Bool(b) => Cow::Borrowed(if b { "True" } else { "False" }),
        Val::Dt(d) => Cow::Owned(dt_text(&d)),
        Val::Bin(_) => {
            return Err(rt(
                "a binary value cannot be used as a string (use ConvertToBase64 or StringFromGuid)",
            ));
        }
        Val::Multi(_) => return Err(rt("a multi-valued argument cannot be used here")),
    })
}

/// Borrowed string view of a scalar, without allocating for strings.
pub fn str_ref<'b>(v: &'b Val<'_>) -> Result<Cow<'b, str>, EvalError> {
    Ok(match v {
        Val::Str(s) | Val::Ref(s) => Cow::Borrowed(s.as_ref()),
        other => to_str(other.clone())?,
    })
}

/// Parses an integer in the forms the language accepts: decimal (with sign) or `&H` hex.
pub fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("&H").or_else(|| t.strip_prefix("&h")) {
        if h.is_empty() || h.len() > 16 {
            return None;
        }
        return u64::from_str_radix(h, 16).ok().map(|v| v as i64);
    }
    t.parse::<i64>().ok()
}

/// Integer view of a scalar.
pub fn to_int(v: &Val<'_>) -> Result<i64, EvalError> {
    match v {
        Val::Int(i) => Ok(*i),
        Val::Bool(b) => Ok(i64::from(*b)),
        Val::Str(s) | Val::Ref(s) => {
            parse_int(s).ok_or_else(|| rt(format!("'{s}' is not a number")))
        }
        other => Err(rt(format!("expected a number, got {}", other.type_name()))),
    }
}

/// Boolean view of a scalar: non-zero numbers are true; strings "True"/"False" or numbers.
pub fn to_bool(v: &Val<'_>) -> Result<bool, EvalError> {
    match v {
        Val::Bool(b) => Ok(*b),
        Val::Int(i) => Ok(*i != 0),
        Val::Null | Val::AuthNull | Val::Ignore => Ok(false),
        Val::Str(s) | Val::Ref(s) => {
            let t = s.trim();
            if t.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if t.eq_ignore_ascii_case("false") {
                Ok(false)
            } else if let Some(i) = parse_int(t) {
                Ok(i != 0)
            } else {
                Err(rt(format!("'{s}' is not a boolean")))
            }
        }
        other => Err(rt(format!("expected a boolean, got {}", other.type_name()))),
    }
}

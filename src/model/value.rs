//! Typed attribute values.
//!
//! Every attribute of a directory object is multi-valued; a single-valued attribute is simply a
//! list with one element. The six value types mirror what directories and the expression
//! language know: string, binary, integer, boolean, reference and date-time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The type of an attribute in a connector schema or a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttrType {
    /// Unicode string.
    String,
    /// Raw bytes (objectGUID, objectSid, certificates, photos).
    Binary,
    /// 64-bit signed integer.
    Integer,
    /// Boolean.
    Boolean,
    /// Reference to another object (a DN in a connector space, an object id in the metaverse).
    Reference,
    /// Instant in UTC.
    DateTime,
}

/// One value of an attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// Unicode string.
    Str(String),
    /// Raw bytes.
    Bin(Vec<u8>),
    /// 64-bit signed integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// Reference: a DN inside a connector space, a metaverse object id inside the metaverse.
    Ref(String),
    /// UTC date-time.
    Dt(DateTime<Utc>),
}

impl Value {
    /// The type of this value.
    pub fn attr_type(&self) -> AttrType {
        match self {
            Value::Str(_) => AttrType::String,
            Value::Bin(_) => AttrType::Binary,
            Value::Int(_) => AttrType::Integer,
            Value::Bool(_) => AttrType::Boolean,
            Value::Ref(_) => AttrType::Reference,
            Value::Dt(_) => AttrType::DateTime,
        }
    }

    /// The string content for string and reference values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Ref(s) => Some(s),
            _ => None,
        }
    }

    /// Text form used for comparisons in scoping filters and joins, and for reports.
    /// Binary values render as base64, date-times as RFC 3339.
    pub fn to_text(&self) -> String {
        match self {
            Value::Str(s) | Value::Ref(s) => s.clone(),
            Value::Bin(b) => B64.encode(b),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Value::Dt(d) => d.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }

    /// True when two values mean the same although their types differ: a string that parses
    /// as the other value's boolean, integer or date-time, or a string and a reference with the
    /// same text. Used to compare what rules compute with what a connector imported, so a
    /// `"True"` computed by an expression does not re-export a `true` read back from the target.
    pub fn equivalent(&self, other: &Value) -> bool {
        if self == other {
            return true;
        }
        match (self, other) {
            (Value::Str(a), Value::Ref(b)) | (Value::Ref(a), Value::Str(b)) => a == b,
            (Value::Str(s), typed) | (typed, Value::Str(s))
                if matches!(typed, Value::Bool(_) | Value::Int(_) | Value::Dt(_)) =>
            {
                Value::parse_as(s, typed.attr_type()).is_ok_and(|v| v == *typed)
            }
            _ => false,
        }
    }

    /// Converts a textual value (as read from LDIF, CSV or LDAP) into the given type.
    pub fn parse_as(text: &str, ty: AttrType) -> Result<Value, String> {
        Ok(match ty {
            AttrType::String => Value::Str(text.to_string()),
            AttrType::Reference => Value::Ref(text.to_string()),
            AttrType::Binary => Value::Bin(text.as_bytes().to_vec()),
            AttrType::Integer => Value::Int(
                text.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("'{text}' is not an integer"))?,
            ),
            AttrType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Value::Bool(true),
                "false" | "0" | "no" => Value::Bool(false),
                _ => return Err(format!("'{text}' is not a boolean")),
            },
            AttrType::DateTime => Value::Dt(parse_datetime(text)?),
        })
    }
}

/// Parses RFC 3339 and LDAP GeneralizedTime (`20240101120000Z`, `20240101120000.0Z`).
pub fn parse_datetime(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.len() >= 14
        && let Ok(n) = chrono::NaiveDateTime::parse_from_str(&digits[..14], "%Y%m%d%H%M%S")
    {
        return Ok(n.and_utc());
    }
    Err(format!(
        "'{text}' is not a date-time (RFC 3339 or GeneralizedTime)"
    ))
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

// JSON form: strings, numbers and booleans are plain JSON; the other types are one-key objects
// ({"base64": ...}, {"ref": ...}, {"datetime": ...}) so that the form is lossless.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Str(v) => s.serialize_str(v),
            Value::Int(v) => s.serialize_i64(*v),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::Bin(v) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("base64", &B64.encode(v))?;
                m.end()
            }
            Value::Ref(v) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("ref", v)?;
                m.end()
            }
            Value::Dt(v) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("datetime", &v.to_rfc3339_opts(SecondsFormat::AutoSi, true))?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, integer, boolean or {base64|ref|datetime: string}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                i64::try_from(v)
                    .map(Value::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Value, A::Error> {
                let key: String = m
                    .next_key()?
                    .ok_or_else(|| de::Error::custom("empty value object"))?;
                let text: String = m.next_value()?;
                let v = match key.as_str() {
                    "base64" => Value::Bin(
                        B64.decode(text.as_bytes())
                            .map_err(|e| de::Error::custom(format!("bad base64: {e}")))?,
                    ),
                    "ref" => Value::Ref(text),
                    "datetime" => Value::Dt(parse_datetime(&text).map_err(de::Error::custom)?),
                    other => {
                        return Err(de::Error::unknown_field(
                            other,
                            &["base64", "ref", "datetime"],
                        ));
                    }
                };
                if m.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom("a value object has exactly one key"));
                }
                Ok(v)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_is_lossless() {
        let vals = vec![
            Value::Str("a".into()),
            Value::Bin(vec![0, 255, 3]),
            Value::Int(-5),
            Value::Bool(true),
            Value::Ref("CN=x,DC=y".into()),
            Value::Dt(parse_datetime("20120101230000Z").unwrap()),
        ];
        let j = serde_json::to_string(&vals).unwrap();
        let back: Vec<Value> = serde_json::from_str(&j).unwrap();
        assert_eq!(vals, back);
    }

    #[test]
    fn parse_as_reports_bad_input() {
        assert!(Value::parse_as("x1", AttrType::Integer).is_err());
        assert_eq!(
            Value::parse_as(" 42 ", AttrType::Integer),
            Ok(Value::Int(42))
        );
        assert_eq!(
            Value::parse_as("TRUE", AttrType::Boolean),
            Ok(Value::Bool(true))
        );
        assert!(Value::parse_as("maybe", AttrType::Boolean).is_err());
    }
}

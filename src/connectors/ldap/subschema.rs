//! Schema discovery from the server's subschema entry (RFC 4512 `attributeTypes` and
//! `objectClasses`), shared by the generic LDAP and AD connectors.

use super::connection::LdapClient;
use super::generic::ValueCodec;
use crate::connectors::ConnectorError;
use crate::model::{AttrType, AttributeDef, ObjectTypeDef, Schema};
use std::collections::{BTreeMap, HashMap, HashSet};

/// One attribute type definition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributeTypeDef {
    /// Names (the first is the preferred one).
    pub names: Vec<String>,
    /// Syntax OID (without a length bound).
    pub syntax: Option<String>,
    /// `SINGLE-VALUE`.
    pub single_value: bool,
    /// Supertype (its syntax is inherited).
    pub sup: Option<String>,
}

/// One object class definition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectClassDef {
    /// Names.
    pub names: Vec<String>,
    /// Superclasses.
    pub sup: Vec<String>,
    /// Required attributes.
    pub must: Vec<String>,
    /// Allowed attributes.
    pub may: Vec<String>,
    /// Auxiliary classes (from a DIT content rule).
    pub aux: Vec<String>,
}

fn tokens(def: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = def.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '(' | ')' | '$' => {
                out.push(c.to_string());
                chars.next();
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                for ch in chars.by_ref() {
                    if ch == '\'' {
                        break;
                    }
                    s.push(ch);
                }
                out.push(s);
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            _ => {
                let mut s = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || ch == '(' || ch == ')' || ch == '$' {
                        break;
                    }
                    s.push(ch);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    out
}

/// Reads a single word or a parenthesised `$`-separated list after a keyword.
fn list(t: &[String], i: &mut usize) -> Vec<String> {
    let mut out = Vec::new();
    match t.get(*i).map(String::as_str) {
        Some("(") => {
            *i += 1;
            while let Some(x) = t.get(*i) {
                *i += 1;
                match x.as_str() {
                    ")" => break,
                    "$" => {}
                    _ => out.push(x.clone()),
                }
            }
        }
        Some(x) => {
            out.push(x.to_string());
            *i += 1;
        }
        None => {}
    }
    out
}

/// Parses an `attributeTypes` value.
pub fn parse_attribute_type(def: &str) -> Option<AttributeTypeDef> {
    let t = tokens(def);
    if t.first().map(String::as_str) != Some("(") {
        return None;
    }
    let mut a = AttributeTypeDef::default();
    let mut i = 2;
    while i < t.len() {
        let kw = t[i].to_ascii_uppercase();
        i += 1;
        match kw.as_str() {
            "NAME" => a.names = list(&t, &mut i),
            "SYNTAX" => {
                a.syntax = t
                    .get(i)
                    .map(|s| s.split('{').next().unwrap_or(s).to_string());
                i += 1;
            }
            "SUP" => a.sup = list(&t, &mut i).into_iter().next(),
            "SINGLE-VALUE" => a.single_value = true,
            _ => {}
        }
    }
    (!a.names.is_empty()).then_some(a)
}

/// Parses an `objectClasses` value.
pub fn parse_object_class(def: &str) -> Option<ObjectClassDef> {
    let t = tokens(def);
    if t.first().map(String::as_str) != Some("(") {
        return None;
    }
    let mut c = ObjectClassDef::default();
    let mut i = 2;
    while i < t.len() {
        let kw = t[i].to_ascii_uppercase();
        i += 1;
        match kw.as_str() {
            "NAME" => c.names = list(&t, &mut i),
            "SUP" => c.sup = list(&t, &mut i),
            "MUST" => c.must = list(&t, &mut i),
            "MAY" => c.may = list(&t, &mut i),
            "AUX" => c.aux = list(&t, &mut i),
            _ => {}
        }
    }
    (!c.names.is_empty()).then_some(c)
}

/// The value type for an LDAP syntax OID.
pub fn syntax_type(oid: &str) -> AttrType {
    match oid {
        "1.3.6.1.4.1.1466.115.121.1.12" => AttrType::Reference,
        "1.3.6.1.4.1.1466.115.121.1.27" | "1.2.840.113556.1.4.906" => AttrType::Integer,
        "1.3.6.1.4.1.1466.115.121.1.7" => AttrType::Boolean,
        "1.3.6.1.4.1.1466.115.121.1.24" | "1.3.6.1.4.1.1466.115.121.1.53" => AttrType::DateTime,
        "1.3.6.1.4.1.1466.115.121.1.40"
        | "1.3.6.1.4.1.1466.115.121.1.5"
        | "1.3.6.1.4.1.1466.115.121.1.8"
        | "1.3.6.1.4.1.1466.115.121.1.9"
        | "1.3.6.1.4.1.1466.115.121.1.10"
        | "1.3.6.1.4.1.1466.115.121.1.28"
        | "1.2.840.113556.1.4.907" => AttrType::Binary,
        _ => AttrType::String,
    }
}

/// Reads the subschema and builds the connector schema: for each object type (name, object
/// class) the attributes of its class chain, restricted to `inclusion` when that is not empty.
/// Types configured in `codec` win over the discovered syntax.
pub fn discover(
    client: &mut LdapClient,
    object_types: &[(String, String)],
    inclusion: &[String],
    codec: &ValueCodec,
) -> Result<Schema, ConnectorError> {
    let root = client
        .read_entry("", &["subschemaSubentry".to_string()], Vec::new())?
        .ok_or_else(|| ConnectorError::Protocol("the server returned no rootDSE".into()))?;
    let sub = root.first_text("subschemaSubentry").ok_or_else(|| {
        ConnectorError::Unsupported("the server publishes no subschemaSubentry".into())
    })?;
    let entry = client
        .read_entry(
            &sub,
            &[
                "attributeTypes".to_string(),
                "objectClasses".to_string(),
                "dITContentRules".to_string(),
            ],
            Vec::new(),
        )?
        .ok_or_else(|| ConnectorError::Protocol(format!("subschema entry '{sub}' not readable")))?;
    let text = |n: &str| -> Vec<String> {
        entry
            .values(n)
            .map(|v| {
                v.iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut attrs: HashMap<String, AttributeTypeDef> = HashMap::new();
    for d in text("attributeTypes")
        .iter()
        .filter_map(|d| parse_attribute_type(d))
    {
        for n in &d.names {
            attrs.insert(n.to_ascii_lowercase(), d.clone());
        }
    }
    let mut classes: HashMap<String, ObjectClassDef> = HashMap::new();
    for d in text("objectClasses")
        .iter()
        .filter_map(|d| parse_object_class(d))
    {
        for n in &d.names {
            classes.insert(n.to_ascii_lowercase(), d.clone());
        }
    }
    // DIT content rules name the auxiliary classes of a structural class (AD publishes them).
    let mut aux: HashMap<String, Vec<String>> = HashMap::new();
    for d in text("dITContentRules")
        .iter()
        .filter_map(|d| parse_object_class(d))
    {
        for n in &d.names {
            aux.insert(n.to_ascii_lowercase(), d.aux.clone());
        }
    }
    let syntax_of = |name: &str| -> Option<String> {
        let mut cur = attrs.get(&name.to_ascii_lowercase());
        for _ in 0..16 {
            let a = cur?;
            if a.syntax.is_some() {
                return a.syntax.clone();
            }
            cur = a
                .sup
                .as_ref()
                .and_then(|s| attrs.get(&s.to_ascii_lowercase()));
        }
        None
    };
    let wanted: HashSet<String> = inclusion.iter().map(|s| s.to_ascii_lowercase()).collect();
    let mut schema = Schema::default();
    for (ty, class) in object_types {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut todo = vec![class.to_ascii_lowercase()];
        let mut seen = HashSet::new();
        while let Some(c) = todo.pop() {
            if !seen.insert(c.clone()) {
                continue;
            }
            if let Some(def) = classes.get(&c) {
                for a in def.must.iter().chain(&def.may) {
                    names
                        .entry(a.to_ascii_lowercase())
                        .or_insert_with(|| a.clone());
                }
                todo.extend(def.sup.iter().map(|s| s.to_ascii_lowercase()));
            }
            if let Some(a) = aux.get(&c) {
                todo.extend(a.iter().map(|s| s.to_ascii_lowercase()));
            }
        }
        if !wanted.is_empty() {
            for w in inclusion {
                names
                    .entry(w.to_ascii_lowercase())
                    .or_insert_with(|| w.clone());
            }
            names.retain(|k, _| wanted.contains(k));
        }
        let mut def = ObjectTypeDef::default();
        for name in names.values() {
            let ty = codec.type_of(name).unwrap_or_else(|| {
                syntax_of(name)
                    .map(|s| syntax_type(&s))
                    .unwrap_or(AttrType::String)
            });
            let single = attrs
                .get(&name.to_ascii_lowercase())
                .is_some_and(|a| a.single_value);
            def.attributes.insert(
                name.clone(),
                AttributeDef {
                    ty,
                    multi_valued: !single,
                },
            );
        }
        schema.object_types.insert(ty.clone(), def);
    }
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc4512_definitions() {
        let a = parse_attribute_type(
            "( 2.5.4.3 NAME ( 'cn' 'commonName' ) DESC 'RFC4519: common name(s)' SUP name )",
        )
        .unwrap();
        assert_eq!(a.names, vec!["cn", "commonName"]);
        assert_eq!(a.sup.as_deref(), Some("name"));
        let m = parse_attribute_type(
            "( 1.2.840.113556.1.4.656 NAME 'userPrincipalName' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )",
        )
        .unwrap();
        assert!(m.single_value);
        assert_eq!(m.syntax.as_deref(), Some("1.3.6.1.4.1.1466.115.121.1.15"));
        let u = parse_attribute_type(
            "( 0.9.2342.19200300.100.1.1 NAME ( 'uid' 'userid' ) EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{256} )",
        )
        .unwrap();
        assert_eq!(u.syntax.as_deref(), Some("1.3.6.1.4.1.1466.115.121.1.15"));
        let c = parse_object_class(
            "( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) MAY ( userPassword $ telephoneNumber ) )",
        )
        .unwrap();
        assert_eq!(c.sup, vec!["top"]);
        assert_eq!(c.must, vec!["sn", "cn"]);
        assert_eq!(c.may.len(), 2);
        assert_eq!(
            syntax_type("1.3.6.1.4.1.1466.115.121.1.12"),
            AttrType::Reference
        );
        assert_eq!(parse_attribute_type("garbage"), None);
    }
}

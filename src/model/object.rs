//! Directory objects: an anchor, a DN, an object type and multi-valued typed attributes.

use super::{Dn, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The attributes of an object: name -> values (never an empty list; absent means no value).
pub type Attributes = BTreeMap<String, Vec<Value>>;

/// An object as a connector reads or writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Object {
    /// The immutable identity in its directory (objectGUID, entryUUID, Graph id, HR employee
    /// number). `None` only for an object that has not been created in its directory yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// Distinguished name (for non-LDAP sources, a synthetic one such as `CN=<anchor>`).
    pub dn: Dn,
    /// Object type (`user`, `group`, `contact`, `computer`, `device`, ...).
    pub object_type: String,
    /// Attribute values.
    #[serde(default)]
    pub attributes: Attributes,
}

impl Object {
    /// A new object without attributes.
    pub fn new(anchor: Option<String>, dn: Dn, object_type: &str) -> Object {
        Object {
            anchor,
            dn,
            object_type: object_type.to_string(),
            attributes: Attributes::new(),
        }
    }

    /// All values of an attribute (empty when absent).
    pub fn values(&self, name: &str) -> &[Value] {
        self.attributes.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The first value of an attribute.
    pub fn first(&self, name: &str) -> Option<&Value> {
        self.values(name).first()
    }

    /// The first value as text.
    pub fn first_text(&self, name: &str) -> Option<String> {
        self.first(name).map(Value::to_text)
    }

    /// Sets an attribute (an empty list removes it).
    pub fn set(&mut self, name: &str, values: Vec<Value>) {
        if values.is_empty() {
            self.attributes.remove(name);
        } else {
            self.attributes.insert(name.to_string(), values);
        }
    }

    /// Adds one value to an attribute.
    pub fn add_value(&mut self, name: &str, value: Value) {
        self.attributes
            .entry(name.to_string())
            .or_default()
            .push(value);
    }

    /// Finds the attribute name case-insensitively (directories treat names that way).
    pub fn attribute_name_ci(&self, name: &str) -> Option<&str> {
        self.attributes
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .map(String::as_str)
    }
}

/// Points reference values that name `old_norm` (a normalized DN) at `new` instead, as a
/// directory with referential integrity does after a rename. Returns whether anything changed.
pub fn retarget_references(attrs: &mut Attributes, old_norm: &str, new: &str) -> bool {
    let mut touched = false;
    for v in attrs.values_mut().flatten() {
        if let Value::Ref(d) = v
            && Dn::parse(d)
                .map(|d| d.normalized() == old_norm)
                .unwrap_or(false)
        {
            *d = new.to_string();
            touched = true;
        }
    }
    touched
}

/// A change to one attribute, value by value where the target supports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum AttributeChange {
    /// Add these values.
    Add {
        /// Attribute name.
        name: String,
        /// Values to add.
        values: Vec<Value>,
    },
    /// Remove these values (an empty list removes the attribute).
    Remove {
        /// Attribute name.
        name: String,
        /// Values to remove.
        values: Vec<Value>,
    },
    /// Replace all values (an empty list clears the attribute).
    Replace {
        /// Attribute name.
        name: String,
        /// New values.
        values: Vec<Value>,
    },
}

impl AttributeChange {
    /// The attribute this change touches.
    pub fn name(&self) -> &str {
        match self {
            AttributeChange::Add { name, .. }
            | AttributeChange::Remove { name, .. }
            | AttributeChange::Replace { name, .. } => name,
        }
    }

    /// Applies the change to an object's attributes.
    pub fn apply(&self, attrs: &mut Attributes) {
        match self {
            AttributeChange::Add { name, values } => {
                let e = attrs.entry(name.clone()).or_default();
                for v in values {
                    if !e.contains(v) {
                        e.push(v.clone());
                    }
                }
            }
            AttributeChange::Remove { name, values } => {
                if values.is_empty() {
                    attrs.remove(name);
                } else if let Some(e) = attrs.get_mut(name) {
                    e.retain(|v| !values.contains(v));
                    if e.is_empty() {
                        attrs.remove(name);
                    }
                }
            }
            AttributeChange::Replace { name, values } => {
                if values.is_empty() {
                    attrs.remove(name);
                } else {
                    attrs.insert(name.clone(), values.clone());
                }
            }
        }
    }
}

/// Computes the value-level changes that turn `old` into `new` for one attribute.
/// Multi-valued attributes get Add/Remove pairs (so a one-member change in a large group is one
/// value), single values a Replace.
pub fn diff_values(name: &str, old: &[Value], new: &[Value]) -> Vec<AttributeChange> {
    if old == new {
        return Vec::new();
    }
    if new.is_empty() {
        return vec![AttributeChange::Replace {
            name: name.to_string(),
            values: Vec::new(),
        }];
    }
    if old.len() <= 1 && new.len() <= 1 {
        if let (Some(o), Some(n)) = (old.first(), new.first())
            && o.equivalent(n)
        {
            return Vec::new();
        }
        return vec![AttributeChange::Replace {
            name: name.to_string(),
            values: new.to_vec(),
        }];
    }
    let old_set: std::collections::HashSet<&Value> = old.iter().collect();
    let new_set: std::collections::HashSet<&Value> = new.iter().collect();
    if old_set == new_set {
        return Vec::new();
    }
    let added: Vec<Value> = new
        .iter()
        .filter(|v| !old_set.contains(v))
        .cloned()
        .collect();
    let removed: Vec<Value> = old
        .iter()
        .filter(|v| !new_set.contains(v))
        .cloned()
        .collect();
    let mut out = Vec::new();
    if !removed.is_empty() {
        out.push(AttributeChange::Remove {
            name: name.to_string(),
            values: removed,
        });
    }
    if !added.is_empty() {
        out.push(AttributeChange::Add {
            name: name.to_string(),
            values: added,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_values_of_equal_meaning_are_no_change() {
        let s = |t: &str| vec![Value::Str(t.to_string())];
        assert!(diff_values("accountEnabled", &[Value::Bool(true)], &s("True")).is_empty());
        assert!(diff_values("accountEnabled", &s("false"), &[Value::Bool(false)]).is_empty());
        assert_eq!(
            diff_values("accountEnabled", &[Value::Bool(true)], &s("False")).len(),
            1
        );
        assert!(diff_values("employeeType", &[Value::Int(7)], &s("7")).is_empty());
        assert_eq!(diff_values("n", &[Value::Int(7)], &s("7x")).len(), 1);
        assert!(diff_values("manager", &[Value::Ref("cn=a".into())], &s("cn=a")).is_empty());
        // Binary and text never compare equal by accident.
        assert_eq!(
            diff_values("b", &[Value::Bin(b"x".to_vec())], &s("x")).len(),
            1
        );
    }

    #[test]
    fn diff_of_large_multivalue_is_value_level() {
        let old: Vec<Value> = (0..1000).map(|i| Value::Ref(format!("cn=u{i}"))).collect();
        let mut new = old.clone();
        new.push(Value::Ref("cn=new".into()));
        let d = diff_values("member", &old, &new);
        assert_eq!(
            d,
            vec![AttributeChange::Add {
                name: "member".into(),
                values: vec![Value::Ref("cn=new".into())]
            }]
        );
    }

    #[test]
    fn apply_changes() {
        let mut a = Attributes::new();
        AttributeChange::Add {
            name: "m".into(),
            values: vec!["a".into(), "b".into()],
        }
        .apply(&mut a);
        AttributeChange::Remove {
            name: "m".into(),
            values: vec!["a".into()],
        }
        .apply(&mut a);
        assert_eq!(a["m"], vec![Value::from("b")]);
        AttributeChange::Replace {
            name: "m".into(),
            values: vec![],
        }
        .apply(&mut a);
        assert!(a.is_empty());
    }
}

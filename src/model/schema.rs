//! Connector schemas: which object types and attributes a connected directory has.

use super::AttrType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One attribute in a connector schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeDef {
    /// Attribute type.
    #[serde(rename = "type")]
    pub ty: AttrType,
    /// True when the attribute holds more than one value.
    pub multi_valued: bool,
}

/// One object type in a connector schema.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ObjectTypeDef {
    /// Attributes by name.
    pub attributes: BTreeMap<String, AttributeDef>,
}

/// What a connector discovered (or was told) about its directory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Schema {
    /// Object types by name.
    pub object_types: BTreeMap<String, ObjectTypeDef>,
}

impl Schema {
    /// The type of an attribute in any object type, if known.
    pub fn attribute_type(&self, name: &str) -> Option<AttrType> {
        self.object_types
            .values()
            .find_map(|t| t.attributes.get(name).map(|a| a.ty))
    }

    /// True when any object type has the attribute (case-sensitive, as rule expressions are).
    pub fn has_attribute(&self, name: &str) -> bool {
        self.object_types
            .values()
            .any(|t| t.attributes.contains_key(name))
    }
}

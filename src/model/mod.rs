//! The data model shared by every room: typed values, objects, DNs, schema.

mod dn;
mod object;
mod schema;
mod value;

pub use dn::{Ava, Dn, DnError, Rdn, escape_value as escape_dn_value};
pub use object::{AttributeChange, Attributes, Object, diff_values, retarget_references};
pub use schema::{AttributeDef, ObjectTypeDef, Schema};
pub use value::{AttrType, Value, parse_datetime};

//! Generic LDAP and Active Directory connectors on ldap3.
//!
//! - [`generic::LdapConnector`]: any RFC 4511 server; RFC 4533 content sync or modifyTimestamp delta.
//! - [`ad::AdConnector`]: Active Directory (and Samba AD); DirSync delta, objectGUID anchors.

pub mod ad;
pub mod ber;
pub mod connection;
pub mod filter;
pub mod generic;
pub mod permissions;
pub mod settings;
pub mod subschema;

pub use ad::AdConnector;
pub use generic::LdapConnector;
pub use settings::{
    AdDeltaMethod, AdSettings, ConnectionSettings, DeltaMethod, LdapSettings, PartitionSettings,
};

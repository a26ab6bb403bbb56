//! Active Directory connector (in progress).
/// Placeholder.
#[derive(Debug)]
pub struct AdConnector;

//! LDIF connector (RFC 2849). Placeholder until implemented.

//! Generic LDAP and Active Directory connectors on ldap3. Placeholder until implemented (issue 4).

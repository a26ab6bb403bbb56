//! Permission check for the AD connector account (`dirsync test-permissions`): can it read the
//! partitions, use DirSync, create objects and write what writeback needs, reset passwords?
//! Each right is reported as present or missing; nothing is written.

use super::ad::AdConnector;
use crate::connectors::ConnectorError;
use serde::Serialize;

/// One right and whether the account has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermissionCheck {
    /// The right, for example `DirSync on DC=corp,DC=example,DC=com`.
    pub right: String,
    /// True when the account has it.
    pub present: bool,
    /// How it was determined, or why it is missing.
    pub detail: String,
}

/// The result of a permission check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermissionReport {
    /// The DC that answered.
    pub dc: String,
    /// One entry per right.
    pub checks: Vec<PermissionCheck>,
}

impl PermissionReport {
    /// True when every right is present.
    pub fn all_present(&self) -> bool {
        self.checks.iter().all(|c| c.present)
    }
}

fn values(e: &super::connection::RawEntry, name: &str) -> Vec<String> {
    e.values(name)
        .map(|v| {
            v.iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the rights of the connector's account. `writeback_ou` is the container where
/// writeback creates objects (the object creation checks are skipped when `None`). Attribute
/// rights (mS-DS-ConsistencyGuid, membership, password reset) are read on a user below the
/// writeback container, else on a synchronized user of the partitions.
pub fn test_permissions(
    ad: &mut AdConnector,
    writeback_ou: Option<&str>,
) -> Result<PermissionReport, ConnectorError> {
    let root = ad.root_dse()?;
    let mut checks = Vec::new();
    for base in ad.partition_bases() {
        let read = ad
            .client_mut()
            .read_entry(&base, &["objectGUID".to_string()], Vec::new());
        checks.push(match read {
            Ok(Some(_)) => PermissionCheck {
                right: format!("read {base}"),
                present: true,
                detail: "the partition root is readable".into(),
            },
            Ok(None) => PermissionCheck {
                right: format!("read {base}"),
                present: false,
                detail: "the partition root is not visible to the account".into(),
            },
            Err(e) => PermissionCheck {
                right: format!("read {base}"),
                present: false,
                detail: e.to_string(),
            },
        });
        let dirsync = ad.dirsync_cookie(&base);
        checks.push(match dirsync {
            Ok(_) => PermissionCheck {
                right: format!("DirSync on {base}"),
                present: true,
                detail: "a DirSync search succeeded (Replicating Directory Changes)".into(),
            },
            Err(e @ (ConnectorError::Authentication(_) | ConnectorError::Protocol(_))) => {
                PermissionCheck {
                    right: format!("DirSync on {base}"),
                    present: false,
                    detail: e.to_string(),
                }
            }
            Err(e) => return Err(e),
        });
    }
    let mut ou_exists = false;
    if let Some(ou) = writeback_ou {
        let attrs = ["allowedChildClassesEffective".to_string()];
        let entry = ad.client_mut().read_entry(ou, &attrs, Vec::new())?;
        ou_exists = entry.is_some();
        let classes = entry
            .as_ref()
            .map(|e| values(e, "allowedChildClassesEffective"))
            .unwrap_or_default();
        for class in ["group", "user", "contact"] {
            let present = classes.iter().any(|c| c.eq_ignore_ascii_case(class));
            checks.push(PermissionCheck {
                right: format!("create {class} objects in {ou}"),
                present,
                detail: if entry.is_none() {
                    "the container does not exist or is not visible".into()
                } else {
                    "from allowedChildClassesEffective".into()
                },
            });
        }
    }
    // Attribute rights are read on an existing user: below the writeback container, else in
    // the partitions (the synchronized users, whose ConsistencyGuid and passwords are written).
    // Accounts protected by AdminSDHolder (adminCount=1) do not inherit delegated rights, so
    // they are not taken as the sample.
    let mut places: Vec<String> = writeback_ou
        .filter(|_| ou_exists)
        .map(str::to_string)
        .into_iter()
        .collect();
    places.extend(ad.partition_bases());
    let mut user: Option<(String, String)> = None;
    for place in &places {
        let mut found: Option<String> = None;
        ad.client_mut().search(
            place,
            ldap3::Scope::Subtree,
            "(&(objectClass=user)(!(objectClass=computer))(!(adminCount=1)))",
            &["1.1".to_string()],
            vec![ldap3::controls::RawControl {
                ctype: super::connection::PAGED_RESULTS_OID.to_string(),
                crit: false,
                val: Some(paged_one()),
            }],
            &mut |m| {
                if let super::connection::SearchMsg::Entry(e) = m {
                    found.get_or_insert(e.dn);
                }
                Ok(())
            },
        )?;
        if let Some(dn) = found {
            user = Some((place.clone(), dn));
            break;
        }
    }
    let writable = match &user {
        Some((_, dn)) => ad
            .client_mut()
            .read_entry(dn, &["allowedAttributesEffective".to_string()], Vec::new())?
            .map(|e| values(&e, "allowedAttributesEffective"))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let group_create = checks
        .iter()
        .any(|c| c.present && c.right.starts_with("create group objects"));
    for (right, attr) in [
        ("write mS-DS-ConsistencyGuid", "mS-DS-ConsistencyGuid"),
        ("write group membership", "member"),
        ("reset passwords (unicodePwd)", "unicodePwd"),
    ] {
        let present = writable.iter().any(|a| a.eq_ignore_ascii_case(attr));
        let place = user
            .as_ref()
            .map(|(p, _)| p.clone())
            .or_else(|| places.first().cloned())
            .unwrap_or_default();
        checks.push(PermissionCheck {
            right: format!("{right} in {place}"),
            // Membership of the groups dirsync creates: creating them is enough.
            present: present || (attr == "member" && group_create),
            detail: match &user {
                Some((_, dn)) => format!("from allowedAttributesEffective of '{dn}'"),
                None => "no user found to check".into(),
            },
        });
    }
    Ok(PermissionReport {
        dc: root.dns_host_name,
        checks,
    })
}

fn paged_one() -> Vec<u8> {
    let mut body = Vec::new();
    super::ber::write_int(&mut body, 1);
    super::ber::write_octets(&mut body, &[]);
    super::ber::sequence(&body)
}

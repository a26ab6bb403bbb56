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
/// writeback container, else on a user of the synchronized containers (not the account itself).
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
    let mut group_create = false;
    if let Some(ou) = writeback_ou {
        let attrs = ["allowedChildClassesEffective".to_string()];
        let entry = ad.client_mut().read_entry(ou, &attrs, Vec::new())?;
        ou_exists = entry.is_some();
        let classes = entry
            .as_ref()
            .map(|e| values(e, "allowedChildClassesEffective"))
            .unwrap_or_default();
        // Writeback creates groups there (cloud groups); users and contacts are not written
        // back, so an account delegated only group creation passes.
        group_create = classes.iter().any(|c| c.eq_ignore_ascii_case("group"));
        checks.push(PermissionCheck {
            right: format!("create group objects in {ou}"),
            present: group_create,
            detail: if entry.is_none() {
                "the container does not exist or is not visible".into()
            } else {
                "from allowedChildClassesEffective".into()
            },
        });
    }
    // Attribute rights are read on an existing user: below the writeback container, else in
    // the synchronized containers (the users whose ConsistencyGuid and passwords are written).
    // Accounts protected by AdminSDHolder (adminCount=1) do not inherit delegated rights, so
    // they are not taken as the sample.
    let mut places: Vec<String> = writeback_ou
        .filter(|_| ou_exists)
        .map(str::to_string)
        .into_iter()
        .collect();
    places.extend(ad.scope_roots());
    let mut user: Option<(String, String)> = None;
    // The account itself is no sample (it may hold rights on itself only).
    let me = account_dn(ad)?;
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
                if let super::connection::SearchMsg::Entry(e) = m
                    && !me.as_deref().is_some_and(|d| d.eq_ignore_ascii_case(&e.dn))
                {
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
    // The "Reset Password" extended right does not show in allowedAttributesEffective: it is
    // read from the user's DACL against the account's token.
    let reset_right = match &user {
        Some((_, dn)) => reset_password_granted(ad, me.as_deref(), dn)?,
        None => None,
    };
    let place = user
        .as_ref()
        .map(|(p, _)| p.clone())
        .or_else(|| places.first().cloned())
        .unwrap_or_default();
    for (right, attr) in [
        ("write mS-DS-ConsistencyGuid", "mS-DS-ConsistencyGuid"),
        ("write group membership", "member"),
        ("reset passwords (unicodePwd)", "unicodePwd"),
    ] {
        let present = writable.iter().any(|a| a.eq_ignore_ascii_case(attr))
            || (attr == "unicodePwd" && reset_right == Some(true));
        checks.push(PermissionCheck {
            right: format!("{right} in {place}"),
            // Membership of the groups dirsync creates: creating them is enough.
            present: present || (attr == "member" && group_create),
            detail: match &user {
                Some((_, dn)) if attr == "unicodePwd" => format!(
                    "from allowedAttributesEffective and the 'Reset Password' right in the DACL of '{dn}'"
                ),
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
    // Two entries: the account itself may be the first.
    super::ber::write_int(&mut body, 2);
    super::ber::write_octets(&mut body, &[]);
    super::ber::sequence(&body)
}

/// The "Reset Password" extended right (controlAccessRight `User-Force-Change-Password`).
const RESET_PASSWORD_RIGHT: &str = "00299570-246d-11d0-a768-00aa006e0529";
/// `LDAP_SERVER_SD_FLAGS_OID`: ask for the DACL only (readable without SACL rights).
const SD_FLAGS_OID: &str = "1.2.840.113556.1.4.801";
/// Everyone (S-1-1-0) and Authenticated Users (S-1-5-11): in every token, not in tokenGroups.
const WELL_KNOWN_SIDS: [&[u8]; 2] = [
    &[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
    &[1, 1, 0, 0, 0, 0, 0, 5, 11, 0, 0, 0],
];

/// The DN of the bound account (the bind DN, or the user whose UPN or `DOMAIN\name` it is).
fn account_dn(ad: &mut AdConnector) -> Result<Option<String>, ConnectorError> {
    let Some(bind) = ad.client_mut().settings().bind_dn.clone() else {
        return Ok(None);
    };
    if bind.contains('=') {
        return Ok(Some(bind));
    }
    let filter = match bind.split_once('\\') {
        Some((_, sam)) => super::filter::eq("sAMAccountName", sam),
        None => super::filter::eq("userPrincipalName", &bind),
    };
    let mut found = None;
    for base in ad.partition_bases() {
        ad.client_mut().search(
            &base,
            ldap3::Scope::Subtree,
            &filter,
            &["1.1".to_string()],
            Vec::new(),
            &mut |m| {
                if let super::connection::SearchMsg::Entry(e) = m {
                    found.get_or_insert(e.dn);
                }
                Ok(())
            },
        )?;
        if found.is_some() {
            break;
        }
    }
    Ok(found)
}

/// Whether the bound account holds the "Reset Password" right on `user_dn`, from the user's
/// DACL and the account's SIDs (its own, `tokenGroups`, Everyone, Authenticated Users). ACEs
/// are evaluated in order; the first one that allows or denies the right decides. `me` is the
/// account's DN ([`account_dn`]). `None` when the account or the security descriptor cannot be
/// read.
fn reset_password_granted(
    ad: &mut AdConnector,
    me: Option<&str>,
    user_dn: &str,
) -> Result<Option<bool>, ConnectorError> {
    let Some(me) = me else {
        return Ok(None);
    };
    let Some(acct) = ad.client_mut().read_entry(
        me,
        &["objectSid".to_string(), "tokenGroups".to_string()],
        Vec::new(),
    )?
    else {
        return Ok(None);
    };
    let mut sids: Vec<Vec<u8>> = WELL_KNOWN_SIDS.iter().map(|s| s.to_vec()).collect();
    for a in ["objectSid", "tokenGroups"] {
        sids.extend(acct.values(a).cloned().unwrap_or_default());
    }
    let mut flags = Vec::new();
    super::ber::write_int(&mut flags, 4);
    let control = ldap3::controls::RawControl {
        ctype: SD_FLAGS_OID.to_string(),
        crit: true,
        val: Some(super::ber::sequence(&flags)),
    };
    let Some(entry) = ad.client_mut().read_entry(
        user_dn,
        &["nTSecurityDescriptor".to_string()],
        vec![control],
    )?
    else {
        return Ok(None);
    };
    let Some(sd) = entry.values("nTSecurityDescriptor").and_then(|v| v.first()) else {
        return Ok(None);
    };
    let Some(right) = super::ad::guid_bytes(RESET_PASSWORD_RIGHT) else {
        return Ok(None);
    };
    Ok(dacl_allows_control_right(sd, &sids, &right))
}

/// Evaluates a self-relative security descriptor's DACL for one control access right.
fn dacl_allows_control_right(sd: &[u8], sids: &[Vec<u8>], right: &[u8]) -> Option<bool> {
    const CONTROL_ACCESS: u32 = 0x100;
    const GENERIC_ALL: u32 = 0x1000_0000;
    const INHERIT_ONLY: u8 = 0x08;
    let u16_at = |b: &[u8], o: usize| b.get(o..o + 2).map(|x| u16::from_le_bytes([x[0], x[1]]));
    let u32_at = |b: &[u8], o: usize| {
        b.get(o..o + 4)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
    };
    let dacl = u32_at(sd, 16)? as usize;
    if dacl == 0 {
        // No DACL: everything is allowed.
        return Some(true);
    }
    let count = u16_at(sd, dacl + 4)? as usize;
    let mut at = dacl + 8;
    for _ in 0..count {
        let ace_type = *sd.get(at)?;
        let ace_flags = *sd.get(at + 1)?;
        let size = u16_at(sd, at + 2)? as usize;
        if size < 8 {
            return None;
        }
        let body = sd.get(at + 4..at + size)?;
        at += size;
        if ace_flags & INHERIT_ONLY != 0 {
            continue;
        }
        let (allow, mask, object, sid) = match ace_type {
            // ACCESS_ALLOWED / ACCESS_DENIED: mask, SID.
            0 | 1 => (ace_type == 0, u32_at(body, 0)?, None, body.get(4..)?),
            // ACCESS_ALLOWED_OBJECT / ACCESS_DENIED_OBJECT: mask, flags, [object], [inherited], SID.
            5 | 6 => {
                let flags = u32_at(body, 4)?;
                let mut o = 8;
                let object = if flags & 1 != 0 {
                    o += 16;
                    Some(body.get(8..24)?)
                } else {
                    None
                };
                if flags & 2 != 0 {
                    o += 16;
                }
                (ace_type == 5, u32_at(body, 0)?, object, body.get(o..)?)
            }
            _ => continue,
        };
        let sid_len = 8 + 4 * (*sid.get(1)? as usize);
        let sid = sid.get(..sid_len)?;
        if !sids.iter().any(|s| s.as_slice() == sid) {
            continue;
        }
        let covers = mask & GENERIC_ALL != 0
            || (mask & CONTROL_ACCESS != 0 && object.is_none_or(|g| g == right));
        if covers {
            return Some(allow);
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(rid: u8) -> Vec<u8> {
        vec![1, 2, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, rid, 0, 0, 0]
    }

    fn ace(ty: u8, flags: u8, mask: u32, object: Option<&[u8]>, who: &[u8]) -> Vec<u8> {
        let mut body = mask.to_le_bytes().to_vec();
        if ty == 5 || ty == 6 {
            body.extend_from_slice(&u32::from(object.is_some()).to_le_bytes());
            if let Some(o) = object {
                body.extend_from_slice(o);
            }
        }
        body.extend_from_slice(who);
        let size = (4 + body.len()) as u16;
        let mut a = vec![ty, flags];
        a.extend_from_slice(&size.to_le_bytes());
        a.extend(body);
        a
    }

    fn sd(aces: &[Vec<u8>]) -> Vec<u8> {
        let mut acl_body: Vec<u8> = aces.concat();
        let mut acl = vec![2, 0];
        acl.extend_from_slice(&((8 + acl_body.len()) as u16).to_le_bytes());
        acl.extend_from_slice(&(aces.len() as u16).to_le_bytes());
        acl.extend_from_slice(&[0, 0]);
        acl.append(&mut acl_body);
        let mut out = vec![1, 0, 4, 0x80];
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&20u32.to_le_bytes());
        out.extend(acl);
        out
    }

    #[test]
    fn reset_password_right_is_read_from_the_dacl_in_order() {
        let right = super::super::ad::guid_bytes(RESET_PASSWORD_RIGHT).expect("guid");
        let other =
            super::super::ad::guid_bytes("bf967a9c-0de6-11d0-a285-00aa003049e2").expect("guid");
        let (a, b, c, d) = (sid(1), sid(2), sid(3), sid(4));
        let desc = sd(&[
            // Inherit-only entries do not apply to the object itself.
            ace(5, 0x08, 0x100, Some(&right), &d),
            ace(6, 0, 0x100, Some(&right), &a),
            ace(0, 0, 0x1000_0000, None, &a),
            ace(5, 0, 0x100, Some(&other), &b),
            ace(5, 0x10, 0x100, Some(&right), &c),
        ]);
        let has = |s: &Vec<u8>| dacl_allows_control_right(&desc, std::slice::from_ref(s), &right);
        assert_eq!(has(&a), Some(false), "an explicit deny comes first");
        assert_eq!(has(&b), Some(false), "another extended right");
        assert_eq!(has(&c), Some(true), "inherited allow");
        assert_eq!(has(&d), Some(false), "inherit-only");
        // All extended rights (no object type) and a truncated descriptor.
        let all = sd(&[ace(0, 0, 0x100, None, &b)]);
        assert_eq!(
            dacl_allows_control_right(&all, std::slice::from_ref(&b), &right),
            Some(true)
        );
        assert_eq!(dacl_allows_control_right(&all[..30], &[b], &right), None);
    }
}

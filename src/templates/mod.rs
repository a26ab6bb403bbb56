//! Configuration templates: the out-of-box Active Directory -> Microsoft Entra ID setup.
//!
//! - [`ad_to_entra_rules`] gives the sync rules (TOML `[[rules]]` entries only) for the
//!   connectors `"ad"` (the AD source: the AD connector, or an LDIF export of AD read by the
//!   LDIF connector) and `"aad"` (Entra ID through the Graph connector). The rule text lives in
//!   `templates/ad-to-entra/sync-rules.toml` (and `writeback-rules.toml`), embedded in the
//!   library.
//! - [`ad_to_entra_config`] gives a complete `dirsync.toml` (connectors, parameters, safety,
//!   rules) from [`AdToEntraOptions`]. Secrets are never inline: the AD bind password and the
//!   Graph client secret are named by environment variable or file.
//!
//! Metaverse object types: `person`, `group`, `contact`. Metaverse attributes the rules set
//! (other rules, such as writeback, may rely on them): `sourceAnchor` (immutableId form),
//! `cloudId` (the Entra object id, from the `aad` import), `cloudFiltered`, `accountEnabled`
//! (a boolean), `userPrincipalName`, `displayName`, `mailNickname`, `sAMAccountName`,
//! `objectSid`, `cn`, `member`, `manager`, `securityEnabled`, `mailEnabled`, `groupType` and
//! the address-book attributes under their AD names (`sn`, `title`, `l`, ...).

use std::fmt::Write as _;
use std::path::PathBuf;

/// The out-of-box sync rules (AD -> Entra ID).
const SYNC_RULES: &str = include_str!("../../templates/ad-to-entra/sync-rules.toml");
/// The writeback rules (Entra ID -> AD), composed after [`SYNC_RULES`].
const WRITEBACK_RULES: &str = include_str!("../../templates/ad-to-entra/writeback-rules.toml");

/// Environment variable the template names for the AD bind password when no file is given.
pub const AD_PASSWORD_ENV: &str = "DIRSYNC_AD_PASSWORD";
/// Environment variable the template names for the Graph client secret when no file is given.
pub const GRAPH_SECRET_ENV: &str = "DIRSYNC_GRAPH_SECRET";

/// The line in every AD rule's scoping filter that group-based filtering replaces.
const PILOT_MARKER: &str = "  # @pilot-group\n";

/// Connector name of the AD source in the template.
pub const AD_CONNECTOR: &str = "ad";
/// Connector name of Entra ID (Graph) in the template.
pub const AAD_CONNECTOR: &str = "aad";

/// The out-of-box rules as TOML `[[rules]]` entries for the connectors `"ad"` and `"aad"`,
/// with the writeback rules appended when `with_writeback` is true. Group-based filtering is
/// off (see [`ad_to_entra_rules_filtered`]).
pub fn ad_to_entra_rules(with_writeback: bool) -> String {
    ad_to_entra_rules_filtered(with_writeback, None)
}

/// As [`ad_to_entra_rules`], with group-based filtering: when `pilot_group_dn` is given, only
/// AD objects that are direct members of that group are in scope of the AD rules.
pub fn ad_to_entra_rules_filtered(with_writeback: bool, pilot_group_dn: Option<&str>) -> String {
    let mut text = match pilot_group_dn {
        Some(dn) => SYNC_RULES.replace(
            PILOT_MARKER,
            &format!(
                "  {{ attribute = \"dn\", operator = \"ISMEMBEROF\", value = {} }},\n",
                quote(dn)
            ),
        ),
        None => SYNC_RULES.to_string(),
    };
    if with_writeback {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push('\n');
        text.push_str(WRITEBACK_RULES);
    }
    text
}

/// Where the `"ad"` connector reads: a domain controller (the AD connector) or an LDIF export
/// of AD (the LDIF connector, for rehearsals and the quickstart).
#[derive(Debug, Clone, PartialEq)]
pub enum AdSource {
    /// A domain controller over LDAP(S).
    Ldap {
        /// `ldap://dc.example.com:389` or `ldaps://...:636`.
        url: String,
        /// Bind DN or UPN of the sync account.
        bind_dn: String,
        /// Environment variable holding the bind password.
        bind_password_env: Option<String>,
        /// File holding the bind password (used when no variable is named).
        bind_password_file: Option<PathBuf>,
        /// CA bundle (PEM) for LDAPS / StartTLS.
        ca_file: Option<PathBuf>,
        /// Name the DC certificate is verified against (when connecting by address).
        tls_server_name: Option<String>,
    },
    /// An LDIF export of the domain (content records), with a folder of change records for
    /// delta imports.
    LdifExport {
        /// The export file.
        path: PathBuf,
        /// Change-record folder (`*.ldif`, applied in file-name order).
        changes_dir: Option<PathBuf>,
    },
}

/// Options of the AD -> Entra ID template.
#[derive(Debug, Clone, PartialEq)]
pub struct AdToEntraOptions {
    /// DNS name of the domain (`%Domain.FQDN%`, the UPN suffix fallback).
    pub domain_fqdn: String,
    /// NetBIOS name of the domain (`%Domain.Netbios%`).
    pub domain_netbios: String,
    /// Where the AD connector reads.
    pub source: AdSource,
    /// Partition (naming context) root, e.g. `DC=contoso,DC=com`.
    pub base_dn: String,
    /// OU filtering: only these containers are in scope (empty: the whole domain).
    pub include_ous: Vec<String>,
    /// OU filtering: these containers are out of scope (wins over `include_ous`).
    pub exclude_ous: Vec<String>,
    /// Group-based filtering (pilot): only direct members of this group are synchronized.
    pub pilot_group_dn: Option<String>,
    /// Entra tenant id (GUID or verified domain).
    pub tenant_id: String,
    /// Application (client) id of the app registration.
    pub client_id: String,
    /// Environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// File holding the client secret (used when no variable is named).
    pub client_secret_file: Option<PathBuf>,
    /// Authority root override (national clouds, the tenant emulator).
    pub authority: Option<String>,
    /// Graph root override, including the version (the tenant emulator).
    pub graph_url: Option<String>,
    /// Compose the writeback rules (cloud -> AD).
    pub with_writeback: bool,
    /// OU that receives written-back cloud groups (`%Writeback.OU%`).
    pub writeback_ou: Option<String>,
    /// State file (relative to the configuration's folder).
    pub state_path: PathBuf,
    /// Stop an export that would delete more than this many objects.
    pub deletion_threshold_count: u64,
}

impl Default for AdToEntraOptions {
    fn default() -> Self {
        AdToEntraOptions {
            domain_fqdn: "contoso.com".into(),
            domain_netbios: "CONTOSO".into(),
            source: AdSource::Ldap {
                url: "ldaps://dc01.contoso.com:636".into(),
                bind_dn: "CN=dirsync,OU=Service Accounts,DC=contoso,DC=com".into(),
                bind_password_env: Some(AD_PASSWORD_ENV.into()),
                bind_password_file: None,
                ca_file: None,
                tls_server_name: None,
            },
            base_dn: "DC=contoso,DC=com".into(),
            include_ous: Vec::new(),
            exclude_ous: Vec::new(),
            pilot_group_dn: None,
            tenant_id: "00000000-0000-0000-0000-000000000000".into(),
            client_id: "00000000-0000-0000-0000-000000000000".into(),
            client_secret_env: Some(GRAPH_SECRET_ENV.into()),
            client_secret_file: None,
            authority: None,
            graph_url: None,
            with_writeback: false,
            writeback_ou: None,
            state_path: PathBuf::from("state/dirsync.db"),
            deletion_threshold_count: 500,
        }
    }
}

/// A TOML basic string for `s` (quotes and escapes).
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn quote_path(p: &std::path::Path) -> String {
    quote(&p.to_string_lossy())
}

fn quote_list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", q.join(", "))
}

/// Writes where a secret comes from: `{key}_env` naming `env`, else `{key}_file` naming
/// `file`, else `{key}_env` naming `default_env`.
fn secret_line(
    t: &mut String,
    key: &str,
    env: Option<&str>,
    file: Option<&std::path::Path>,
    default_env: &str,
) {
    let _ = match (env, file) {
        (None, Some(f)) => writeln!(t, "{key}_file = {}", quote_path(f)),
        (env, _) => writeln!(t, "{key}_env = {}", quote(env.unwrap_or(default_env))),
    };
}

/// A complete configuration file (TOML) for AD -> Entra ID: state, safety, parameters, the
/// `"ad"` and `"aad"` connectors and the out-of-box rules. It loads with
/// [`crate::config::Config::load`].
pub fn ad_to_entra_config(opts: &AdToEntraOptions) -> String {
    let mut t = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        t,
        "# dirsync: Active Directory ({}) -> Microsoft Entra ID, out-of-box rules.\n\
         # Generated by `dirsync init --template ad-to-entra`. Secrets are never written here:\n\
         # the AD bind password and the Graph client secret come from an environment variable\n\
         # (bind_password_env, client_secret_env) or a file (bind_password_file,\n\
         # client_secret_file; keep it readable by the service account only).\n\
         # First run: `dirsync cycle --initial --dry-run`, then `dirsync plan`, then\n\
         # `dirsync cycle --initial`.\n",
        opts.domain_fqdn
    );
    let _ = writeln!(t, "[state]\npath = {}\n", quote_path(&opts.state_path));
    let _ = writeln!(
        t,
        "[safety]\nstaging_mode = false\ndeletion_threshold_count = {}\ndeletion_threshold_percent = 0\n",
        opts.deletion_threshold_count
    );
    let _ = writeln!(
        t,
        "[parameters]\n\"Domain.FQDN\" = {}\n\"Domain.Netbios\" = {}\n\"Domain.LDAP\" = {}",
        quote(&opts.domain_fqdn),
        quote(&opts.domain_netbios),
        quote(&opts.base_dn)
    );
    if opts.with_writeback || opts.writeback_ou.is_some() {
        let ou = opts
            .writeback_ou
            .clone()
            .unwrap_or_else(|| format!("OU=Cloud Groups,{}", opts.base_dn));
        let _ = writeln!(t, "\"Writeback.OU\" = {}", quote(&ou));
    }
    t.push('\n');

    t.push_str("# --- connectors (cycle order: AD first, then Entra ID) ---\n\n");
    match &opts.source {
        AdSource::Ldap {
            url,
            bind_dn,
            bind_password_env,
            bind_password_file,
            ca_file,
            tls_server_name,
        } => {
            let _ = writeln!(
                t,
                "[[connectors]]\nname = \"{AD_CONNECTOR}\"\ntype = \"ad\"\n[connectors.settings]\nobject_types = [\"user\", \"group\", \"contact\"]\n[connectors.settings.connection]\nurl = {}\nbind_dn = {}",
                quote(url),
                quote(bind_dn)
            );
            secret_line(
                &mut t,
                "bind_password",
                bind_password_env.as_deref(),
                bind_password_file.as_deref(),
                AD_PASSWORD_ENV,
            );
            if let Some(ca) = ca_file {
                let _ = writeln!(t, "ca_file = {}", quote_path(ca));
            }
            if let Some(n) = tls_server_name {
                let _ = writeln!(t, "tls_server_name = {}", quote(n));
            }
            let _ = writeln!(
                t,
                "[[connectors.settings.partitions]]\nbase = {}\ninclude = {}\nexclude = {}\n",
                quote(&opts.base_dn),
                quote_list(&opts.include_ous),
                quote_list(&opts.exclude_ous)
            );
        }
        AdSource::LdifExport { path, changes_dir } => {
            let _ = writeln!(
                t,
                "# An LDIF export of the domain read as the AD source (same rules as a live DC).\n\
                 [[connectors]]\nname = \"{AD_CONNECTOR}\"\ntype = \"ldif\"\n[connectors.settings]\npath = {}",
                quote_path(path)
            );
            if let Some(c) = changes_dir {
                let _ = writeln!(t, "changes_dir = {}", quote_path(c));
            }
            let _ = writeln!(t, "anchor_attribute = \"objectGUID\"");
            if !opts.include_ous.is_empty() {
                let _ = writeln!(t, "include = {}", quote_list(&opts.include_ous));
            }
            if !opts.exclude_ous.is_empty() {
                let _ = writeln!(t, "exclude = {}", quote_list(&opts.exclude_ous));
            }
            let _ = writeln!(
                t,
                "[connectors.settings.attribute_types]\nobjectGUID = \"binary\"\n\"mS-DS-ConsistencyGuid\" = \"binary\"\nuserAccountControl = \"integer\"\ngroupType = \"integer\"\n"
            );
        }
    }
    let _ = writeln!(
        t,
        "[[connectors]]\nname = \"{AAD_CONNECTOR}\"\ntype = \"graph\"\n[connectors.settings]\ntenant_id = {}\nclient_id = {}",
        quote(&opts.tenant_id),
        quote(&opts.client_id)
    );
    secret_line(
        &mut t,
        "client_secret",
        opts.client_secret_env.as_deref(),
        opts.client_secret_file.as_deref(),
        GRAPH_SECRET_ENV,
    );
    if let Some(a) = &opts.authority {
        let _ = writeln!(t, "authority = {}", quote(a));
    }
    if let Some(g) = &opts.graph_url {
        let _ = writeln!(t, "graph_url = {}", quote(g));
    }
    t.push_str("object_types = [\"user\", \"group\"]\n\n");
    t.push_str("# --- sync rules ---\n\n");
    t.push_str(&ad_to_entra_rules_filtered(
        opts.with_writeback,
        opts.pilot_group_dn.as_deref(),
    ));
    t
}

#[cfg(test)]
mod tests;

//! CLI: `dirsync init` (templates) and `dirsync quickstart` (the bundled contoso.example domain
//! through the out-of-box AD -> Entra rules into an in-process Graph tenant emulator).

use super::{Cli, CliError, Command, Template, open, print_runs};
use clap::Args;
use dirsync::config::Config;
use dirsync::emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, ObjectKind, Tenant,
};
use dirsync::engine::{CyclePolicy, Engine, RunOptions, RunRecord};
use dirsync::model::Value;
use dirsync::templates::{
    AD_PASSWORD_ENV, AdSource, AdToEntraOptions, GRAPH_SECRET_ENV, ad_to_entra_config,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `dirsync init --template ad-to-entra`.
#[derive(Args, Debug, Clone, Default)]
pub struct AdTemplateArgs {
    /// DNS name of the AD domain (`%Domain.FQDN%`, the UPN fallback suffix).
    #[arg(long, default_value_t = AdToEntraOptions::default().domain_fqdn)]
    pub domain: String,
    /// NetBIOS name of the domain (default: the first label of --domain, upper-case).
    #[arg(long)]
    pub netbios: Option<String>,
    /// Domain controller URL.
    #[arg(long, default_value = "ldaps://dc01.contoso.com:636")]
    pub ad_url: String,
    /// Bind DN (or UPN) of the sync account.
    #[arg(long)]
    pub bind_dn: Option<String>,
    /// Partition root (default: DC=... from --domain).
    #[arg(long)]
    pub base_dn: Option<String>,
    /// OU filtering: container in scope (repeatable; none = the whole domain).
    #[arg(long = "include-ou")]
    pub include_ous: Vec<String>,
    /// OU filtering: container out of scope (repeatable).
    #[arg(long = "exclude-ou")]
    pub exclude_ous: Vec<String>,
    /// Group-based filtering: only direct members of this group (DN) are synchronized.
    #[arg(long)]
    pub pilot_group: Option<String>,
    /// Entra tenant id.
    #[arg(long, default_value_t = AdToEntraOptions::default().tenant_id)]
    pub tenant_id: String,
    /// Application (client) id of the app registration.
    #[arg(long, default_value_t = AdToEntraOptions::default().client_id)]
    pub client_id: String,
    /// Compose the writeback rules (cloud groups and attributes back to AD).
    #[arg(long)]
    pub writeback: bool,
    /// OU for written-back cloud groups (default: OU=Cloud Groups,<base DN>).
    #[arg(long)]
    pub writeback_ou: Option<String>,
}

impl AdTemplateArgs {
    fn options(&self) -> AdToEntraOptions {
        let base = self.base_dn.clone().unwrap_or_else(|| {
            self.domain
                .split('.')
                .filter(|l| !l.is_empty())
                .map(|l| format!("DC={l}"))
                .collect::<Vec<_>>()
                .join(",")
        });
        let netbios = self.netbios.clone().unwrap_or_else(|| {
            self.domain
                .split('.')
                .next()
                .unwrap_or("")
                .to_uppercase()
                .chars()
                .take(15)
                .collect()
        });
        AdToEntraOptions {
            domain_fqdn: self.domain.clone(),
            domain_netbios: netbios,
            source: AdSource::Ldap {
                url: self.ad_url.clone(),
                bind_dn: self
                    .bind_dn
                    .clone()
                    .unwrap_or_else(|| format!("CN=dirsync,CN=Users,{base}")),
                bind_password_env: Some(AD_PASSWORD_ENV.into()),
                bind_password_file: None,
                ca_file: None,
                tls_server_name: None,
            },
            base_dn: base,
            include_ous: self.include_ous.clone(),
            exclude_ous: self.exclude_ous.clone(),
            pilot_group_dn: self.pilot_group.clone(),
            tenant_id: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            with_writeback: self.writeback,
            writeback_ou: self.writeback_ou.clone(),
            ..AdToEntraOptions::default()
        }
    }
}

fn io_err(p: &Path, e: std::io::Error) -> CliError {
    CliError::Other(format!("{}: {e}", p.display()))
}

/// `dirsync init`: writes the template to `--dir D` (as `D/dirsync.toml`) or to `--config`,
/// then loads it to validate it.
pub fn init(
    cli: &Cli,
    template: Template,
    dir: Option<&Path>,
    force: bool,
    args: &AdTemplateArgs,
) -> Result<(), CliError> {
    let path = match dir {
        Some(d) => d.join("dirsync.toml"),
        None => cli.config.clone(),
    };
    if path.exists() && !force {
        return Err(CliError::Other(format!(
            "{} exists; use --force to overwrite",
            path.display()
        )));
    }
    let text = match template {
        Template::Sample => include_str!("../../../examples/sample/dirsync.toml").to_string(),
        Template::AdToEntra => ad_to_entra_config(&args.options()),
    };
    write(&path, &text)?;
    // Validate what was written (rules compile when the engine opens; check them here too).
    let cfg = Config::load(&path)?;
    dirsync::rules::RuleSet::compile(&cfg)?;
    println!("wrote {}", path.display());
    if matches!(template, Template::AdToEntra) {
        println!(
            "secrets are not in the file: set {AD_PASSWORD_ENV} (AD bind password) and \
             {GRAPH_SECRET_ENV} (Graph client secret) in the service's environment, or switch \
             to bind_password_file / client_secret_file (a file readable by the service account only)."
        );
        println!(
            "next: dirsync --config {} check-rules, then cycle --initial --dry-run and plan",
            path.display()
        );
    }
    Ok(())
}

/// The contoso.example domain, an LDIF export of AD.
const SAMPLE_LDIF: &str = include_str!("../../../examples/ad-sample/contoso.ldif");

/// The bundled change set (file name, content).
const SAMPLE_CHANGES: &[(&str, &str)] = &[
    (
        "0001-new-hire.ldif",
        include_str!("../../../examples/ad-sample/changes/0001-new-hire.ldif"),
    ),
    (
        "0002-updates.ldif",
        include_str!("../../../examples/ad-sample/changes/0002-updates.ldif"),
    ),
    (
        "0003-disable-move-delete.ldif",
        include_str!("../../../examples/ad-sample/changes/0003-disable-move-delete.ldif"),
    ),
    (
        "0004-group-membership.ldif",
        include_str!("../../../examples/ad-sample/changes/0004-group-membership.ldif"),
    ),
];

/// Applied after the change set: the deleted user restored from the AD Recycle Bin.
const SAMPLE_RESTORE: (&str, &str) = (
    "0005-restore.ldif",
    include_str!("../../../examples/ad-sample/restore/0005-restore.ldif"),
);

/// DNS name, NetBIOS name, naming context and excluded OU of the sample domain.
const SAMPLE_FQDN: &str = "contoso.example";
const SAMPLE_NETBIOS: &str = "CONTOSO";
const SAMPLE_BASE: &str = "DC=contoso,DC=example";
const SAMPLE_EXCLUDED_OU: &str = "OU=Lab,DC=contoso,DC=example";

/// Writes `text` to `p`, creating its folder first.
fn write(p: &Path, text: &str) -> Result<(), CliError> {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    }
    std::fs::write(p, text).map_err(|e| io_err(p, e))
}

fn sub(cli: &Cli, config: &Path) -> Cli {
    Cli {
        config: config.to_path_buf(),
        json: cli.json,
        command: Command::Status,
    }
}

fn cycle(
    e: &mut Engine,
    policy: CyclePolicy,
    dry_run: bool,
) -> Result<(Vec<RunRecord>, std::time::Duration), CliError> {
    let t = Instant::now();
    let runs = e.cycle(
        policy,
        &RunOptions {
            dry_run,
            ..RunOptions::default()
        },
    )?;
    Ok((runs, t.elapsed()))
}

/// A non-dry cycle, its runs printed, then its duration.
fn cycle_and_print(cli: &Cli, e: &mut Engine, policy: CyclePolicy) -> Result<(), CliError> {
    let (runs, took) = cycle(e, policy, false)?;
    print_runs(cli, &runs)?;
    println!("   ({took:.1?})");
    Ok(())
}

/// A delta cycle that should find nothing left to export; prints what it exported.
fn confirming_cycle(e: &mut Engine) -> Result<(), CliError> {
    let (runs, _) = cycle(e, CyclePolicy::Delta, false)?;
    let (a, u, d) = exported(&runs);
    println!("   confirming cycle exported {a} adds, {u} updates, {d} deletes");
    Ok(())
}

/// What a change file does: its first line, without the comment mark.
fn change_summary(text: &str) -> &str {
    text.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches('#')
        .trim()
}

fn exported(runs: &[RunRecord]) -> (u64, u64, u64) {
    runs.iter().fold((0, 0, 0), |(a, u, d), r| {
        (
            a + r.counters.export_adds,
            u + r.counters.export_updates,
            d + r.counters.export_deletes,
        )
    })
}

fn is_true(vs: Option<&Vec<Value>>) -> bool {
    vs.and_then(|v| v.first()).is_some_and(|v| match v {
        Value::Bool(b) => *b,
        other => other.to_text().eq_ignore_ascii_case("true"),
    })
}

/// What stays on-premises and why (contacts, distribution groups, NoSync objects).
fn metaverse_summary(e: &Engine) -> Result<(), CliError> {
    let objs = e.mv_objects(None)?;
    let count = |t: &str| objs.iter().filter(|o| o.object_type == t).count();
    let filtered = objs
        .iter()
        .filter(|o| is_true(o.attributes.get("cloudFiltered")))
        .count();
    let distribution = objs
        .iter()
        .filter(|o| o.object_type == "group" && !is_true(o.attributes.get("securityEnabled")))
        .count();
    println!(
        "metaverse: {} person, {} group, {} contact",
        count("person"),
        count("group"),
        count("contact")
    );
    println!(
        "  not provisioned to Entra ID: {} contact(s) (orgContact is read-only in Microsoft Graph v1.0), \
         {distribution} distribution group(s) (Graph creates only security and Microsoft 365 groups), \
         {filtered} object(s) with cloudFiltered = True (extensionAttribute15 = NoSync)",
        count("contact")
    );
    Ok(())
}

fn tenant_summary(t: &Tenant) {
    let users: Vec<_> = t
        .objects
        .values()
        .filter(|o| o.kind == ObjectKind::User)
        .collect();
    let disabled = users
        .iter()
        .filter(|o| o.props.get("accountEnabled") == Some(&serde_json::Value::Bool(false)))
        .count();
    let groups: Vec<_> = t
        .objects
        .values()
        .filter(|o| o.kind == ObjectKind::Group)
        .collect();
    let memberships: usize = groups.iter().map(|g| g.members.len()).sum();
    let managers = users.iter().filter(|u| u.manager.is_some()).count();
    println!(
        "tenant: {} users ({disabled} disabled, {managers} with a manager), {} groups, {memberships} memberships, {} soft-deleted (restorable for 30 days)",
        users.len(),
        groups.len(),
        t.deleted.len()
    );
}

/// `dirsync quickstart`.
pub fn run(cli: &Cli, dir: &Path) -> Result<(), CliError> {
    let started = Instant::now();
    let marker = dir.join(".dirsync-quickstart");
    if dir.exists() {
        if !marker.exists() {
            return Err(CliError::Other(format!(
                "{} exists and is not a quickstart folder; choose another --dir",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir).map_err(|e| io_err(dir, e))?;
    }
    std::fs::create_dir_all(dir.join("changes")).map_err(|e| io_err(dir, e))?;
    write(&marker, "")?;
    write(&dir.join("contoso.ldif"), SAMPLE_LDIF)?;
    let secret = dir.join("graph-secret.txt");
    write(&secret, DEFAULT_CLIENT_SECRET)?;

    // The tenant: the Graph emulator in this process, on a free loopback port, its state saved
    // in the quickstart folder.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(format!("runtime: {e}")))?;
    let tenant_file = dir.join("tenant.json");
    let h = rt.block_on(Emulator::start(
        EmulatorConfig::default().with_state_file(&tenant_file),
    ))?;

    let opts = AdToEntraOptions {
        domain_fqdn: SAMPLE_FQDN.into(),
        domain_netbios: SAMPLE_NETBIOS.into(),
        source: AdSource::LdifExport {
            path: "contoso.ldif".into(),
            changes_dir: Some("changes".into()),
        },
        base_dn: SAMPLE_BASE.into(),
        exclude_ous: vec![SAMPLE_EXCLUDED_OU.into()],
        tenant_id: h.tenant_id().to_string(),
        client_id: DEFAULT_CLIENT_ID.into(),
        client_secret_env: None,
        client_secret_file: Some(PathBuf::from("graph-secret.txt")),
        authority: Some(h.base_url().to_string()),
        graph_url: Some(h.graph_url()),
        ..AdToEntraOptions::default()
    };
    let config = dir.join("dirsync.toml");
    write(&config, &ad_to_entra_config(&opts))?;
    let sub = sub(cli, &config);

    let result = (|| -> Result<(), CliError> {
        println!("== dirsync quickstart in {}", dir.display());
        println!(
            "   source: contoso.ldif, an LDIF export of the AD domain {SAMPLE_FQDN} (read as connector \"ad\"; {SAMPLE_EXCLUDED_OU} excluded)"
        );
        println!(
            "   target: Entra ID tenant emulator at {} (connector \"aad\"), out-of-box rules from `dirsync init --template ad-to-entra`",
            h.graph_url()
        );
        let mut e = open(&sub)?;
        println!("== 1. initial cycle, dry run (import and sync, no export): the plan");
        let (runs, took) = cycle(&mut e, CyclePolicy::Initial, true)?;
        print_runs(cli, &runs)?;
        let plan = e.plan()?;
        println!(
            "{} adds, {} updates, {} deletes pending ({took:.1?}); first objects:",
            plan.summary.adds, plan.summary.updates, plan.summary.deletes
        );
        let mut short = plan.clone();
        short.objects.truncate(2);
        print!("{}", short.to_table());
        metaverse_summary(&e)?;

        println!("== 2. initial cycle: the exports");
        cycle_and_print(cli, &mut e, CyclePolicy::Initial)?;
        println!("== 3. delta cycle: confirms the exports, finishes references to new objects");
        cycle_and_print(cli, &mut e, CyclePolicy::Delta)?;
        tenant_summary(&h.tenant());

        println!("== 4. the change set (changes/*.ldif, as AD's change feed would report it):");
        for (name, text) in SAMPLE_CHANGES {
            write(&dir.join("changes").join(name), text)?;
            println!("   {name}: {}", change_summary(text));
        }
        println!("   delta cycle, dry run: the imports and the plan");
        let (runs, _) = cycle(&mut e, CyclePolicy::Delta, true)?;
        print_runs(cli, &runs)?;
        print!("{}", e.plan()?.to_table());

        println!("== 5. delta cycle: the exports (and the confirming cycle)");
        cycle_and_print(cli, &mut e, CyclePolicy::Delta)?;
        confirming_cycle(&mut e)?;
        tenant_summary(&h.tenant());

        let (name, text) = SAMPLE_RESTORE;
        println!("== 6. {name}: {}", change_summary(text));
        let deleted_before: Vec<String> = h.tenant().deleted.keys().cloned().collect();
        write(&dir.join("changes").join(name), text)?;
        cycle_and_print(cli, &mut e, CyclePolicy::Delta)?;
        confirming_cycle(&mut e)?;
        let t = h.tenant();
        let restored = deleted_before
            .iter()
            .filter(|id| t.objects.contains_key(*id))
            .count();
        println!(
            "   {restored} soft-deleted cloud user(s) restored with the same object id (not created again)"
        );
        tenant_summary(&t);
        drop(e);

        println!(
            "== 7. status (dirsync --config {} status)",
            config.display()
        );
        super::run(&sub)?;
        Ok(())
    })();
    h.save()?;
    let port = h.local_addr().map(|a| a.port()).unwrap_or(0);
    rt.block_on(h.shutdown())?;
    result?;
    println!(
        "done in {:.1?}. The tenant is saved in {}.",
        started.elapsed(),
        tenant_file.display()
    );
    println!(
        "To serve it again (and run more cycles with this configuration): dirsync emulator --state {} --port {port}",
        tenant_file.display()
    );
    Ok(())
}

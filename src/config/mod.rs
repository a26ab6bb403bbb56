//! Configuration: one TOML file for humans, the same schema as JSON over the C ABI.
//!
//! Every error names the file, the line and the key where it can (serde/toml report the
//! position for syntax and unknown keys; semantic errors such as a bad expression or an
//! unknown connector name are located by searching the source text).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A configuration error with its location.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// Path.
        file: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Syntax error or unknown / mistyped key.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// Path (or `<json>`).
        file: String,
        /// One-based line (0 when unknown).
        line: usize,
        /// What is wrong, including the key.
        message: String,
    },
    /// A value is not acceptable.
    #[error("{file}:{line}: {key}: {message}")]
    Invalid {
        /// Path (or `<json>`).
        file: String,
        /// One-based line (0 when unknown).
        line: usize,
        /// The key (dotted path).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Where the state lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// SQLite file (relative to the config file's folder).
    pub path: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            path: PathBuf::from("dirsync.db"),
        }
    }
}

/// Safety guards.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetyConfig {
    /// Import and sync run, export does not.
    pub staging_mode: bool,
    /// Stop an export that would delete more than this many objects (0 = no count limit).
    pub deletion_threshold_count: u64,
    /// Stop an export that would delete more than this percentage of the connector's objects
    /// (0 = no percentage limit).
    pub deletion_threshold_percent: f64,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig {
            staging_mode: false,
            deletion_threshold_count: 500,
            deletion_threshold_percent: 0.0,
        }
    }
}

/// Run history settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Days to keep run history.
    pub retention_days: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig { retention_days: 7 }
    }
}

/// Scheduler defaults (`dirsync serve`); admin changes made at runtime (`dirsync scheduler
/// set`, Set-DirSyncScheduler) are kept next to the state and override these.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Run cycles at all (Set-ADSyncScheduler -SyncCycleEnabled).
    pub sync_cycle_enabled: bool,
    /// Time between cycle starts: `30m`, `1h`, `90s`, `1d` or plain seconds.
    pub interval: String,
    /// Scheduled full reconciliation: a connector whose last full import is older than this
    /// gets a full import instead of a delta (`0` turns it off).
    pub full_import_interval: String,
    /// Address of the status endpoint (`/healthz`, `/metrics`); loopback only unless
    /// `dirsync serve --allow-remote`.
    pub listen: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            sync_cycle_enabled: true,
            interval: "30m".into(),
            full_import_interval: "7d".into(),
            listen: "127.0.0.1:9464".into(),
        }
    }
}

/// One connector.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Unique name used by rules and commands.
    pub name: String,
    /// Connector type: `ldif`, `csv` (and, as they land, `ldap`, `ad`, `graph`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Type-specific settings (checked by the connector).
    #[serde(default)]
    pub settings: serde_json::Value,
}

/// Rule direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Connector space -> metaverse.
    Inbound,
    /// Metaverse -> connector space.
    Outbound,
}

/// What happens when no join matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LinkType {
    /// Stay a disconnector.
    #[default]
    Join,
    /// Project (inbound) or provision (outbound) a new object.
    Provision,
    /// Join, and keep the metaverse object alive like a projection.
    StickyJoin,
}

/// What deprovisioning does to a target object that leaves scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Deprovision {
    /// Delete it in the target.
    #[default]
    Delete,
    /// Leave it in the target, only unlink it.
    Disconnect,
}

/// Scoping operators (REFERENCE section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ScopeOperator {
    Equal,
    Notequal,
    Lessthan,
    LessthanOrEqual,
    Greaterthan,
    GreaterthanOrEqual,
    Contains,
    Notcontains,
    Startswith,
    Notstartswith,
    Endswith,
    Notendswith,
    Isnull,
    Isnotnull,
    Isin,
    Isnotin,
    Isbitset,
    #[serde(alias = "ISBITNOTSET")]
    Isnotbitset,
    Ismemberof,
    Isnotmemberof,
}

/// One scoping clause.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeClause {
    /// Attribute tested (`dn` tests the distinguished name).
    pub attribute: String,
    /// Operator.
    pub operator: ScopeOperator,
    /// Comparison value (ISIN/ISNOTIN: values separated by `;`; ISMEMBEROF: the group's DN).
    #[serde(default)]
    pub value: String,
}

/// Clauses ANDed together; groups are ORed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeGroup {
    /// The clauses.
    pub clauses: Vec<ScopeClause>,
}

/// One join clause: source attribute equals target attribute.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinClause {
    /// Attribute of the rule's source (CS for inbound, MV for outbound).
    pub source: String,
    /// Attribute of the rule's target (MV for inbound, CS for outbound).
    pub target: String,
    /// Compare case-sensitively.
    #[serde(default)]
    pub case_sensitive: bool,
}

/// Join clauses ANDed; groups are tried in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinGroup {
    /// The clauses.
    pub clauses: Vec<JoinClause>,
}

/// How contributions to a multi-valued attribute combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MergeType {
    /// Highest precedence wins.
    #[default]
    Update,
    /// Union of all contributions.
    Merge,
    /// Union, case-insensitive duplicates removed.
    MergeCaseInsensitive,
}

/// One attribute flow: exactly one of `source`, `constant`, `expression`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    /// Target attribute (`dn` on outbound rules sets the target DN).
    pub target: String,
    /// Direct flow from this source attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Constant value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<String>,
    /// Expression in the Entra Connect expression language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Set only when the target has no value yet.
    #[serde(default)]
    pub apply_once: bool,
    /// Merge type.
    #[serde(default)]
    pub merge: MergeType,
}

/// One declarative sync rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name.
    pub name: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The connector this rule reads (inbound) or writes (outbound).
    pub connector: String,
    /// Source object type (CS type for inbound, MV type for outbound).
    pub source_type: String,
    /// Target object type (MV type for inbound, CS type for outbound).
    pub target_type: String,
    /// Lower wins.
    pub precedence: i64,
    /// Link type.
    #[serde(default)]
    pub link_type: LinkType,
    /// Outbound only: what happens to a provisioned object that leaves scope.
    #[serde(default)]
    pub deprovision: Deprovision,
    /// Disabled rules are ignored.
    #[serde(default)]
    pub disabled: bool,
    /// Scoping groups (none = everything of the source type).
    #[serde(default)]
    pub scope: Vec<ScopeGroup>,
    /// Ordered join groups.
    #[serde(default)]
    pub join: Vec<JoinGroup>,
    /// Attribute flows.
    #[serde(default)]
    pub flows: Vec<FlowConfig>,
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// State file.
    #[serde(default)]
    pub state: StateConfig,
    /// Safety guards.
    #[serde(default)]
    pub safety: SafetyConfig,
    /// Run history.
    #[serde(default)]
    pub history: HistoryConfig,
    /// Scheduler defaults.
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    /// Expression parameters (`Domain.FQDN = "corp.example.com"` gives `%Domain.FQDN%`).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Connectors, in cycle order (sources first).
    #[serde(default)]
    pub connectors: Vec<ConnectorConfig>,
    /// Sync rules.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Folder that relative paths resolve against (the config file's folder).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Where the configuration came from (for error messages).
    #[serde(skip)]
    pub origin: String,
    /// The source text (for locating semantic errors).
    #[serde(skip)]
    pub source_text: String,
}

impl Config {
    /// Loads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: path.display().to_string(),
            source: e,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Config::from_toml_str(&text, &path.display().to_string(), &base)
    }

    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str, origin: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: origin.to_string(),
            line: e.span().map(|s| line_of_offset(text, s.start)).unwrap_or(0),
            message: e.message().to_string(),
        })?;
        cfg.base_dir = base_dir.to_path_buf();
        cfg.origin = origin.to_string();
        cfg.source_text = text.to_string();
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses and validates JSON text (the ABI form).
    pub fn from_json_str(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
            file: "<json>".into(),
            line: e.line(),
            message: e.to_string(),
        })?;
        cfg.base_dir = base_dir.to_path_buf();
        cfg.origin = "<json>".into();
        cfg.source_text = text.to_string();
        cfg.validate()?;
        Ok(cfg)
    }

    /// Resolves a path relative to the configuration's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The line where `needle` first appears in the source (0 when not found).
    pub fn line_of(&self, needle: &str) -> usize {
        self.source_text
            .find(needle)
            .map(|o| line_of_offset(&self.source_text, o))
            .unwrap_or(0)
    }

    /// An `Invalid` error located at the first occurrence of `needle`.
    pub fn invalid(&self, needle: &str, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.origin.clone(),
            line: self.line_of(needle),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The connector with this name.
    pub fn connector(&self, name: &str) -> Option<&ConnectorConfig> {
        self.connectors.iter().find(|c| c.name == name)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for (i, c) in self.connectors.iter().enumerate() {
            if c.name.trim().is_empty() {
                return Err(self.invalid(
                    "[[connectors]]",
                    &format!("connectors[{i}].name"),
                    "must not be empty",
                ));
            }
            if !names.insert(c.name.as_str()) {
                return Err(self.invalid(
                    &format!("\"{}\"", c.name),
                    &format!("connectors[{i}].name"),
                    format!("duplicate connector name '{}'", c.name),
                ));
            }
        }
        let mut rule_names = std::collections::HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let key = format!("rules[{i}]");
            let here = format!("\"{}\"", r.name);
            if !rule_names.insert(r.name.as_str()) {
                return Err(self.invalid(
                    &here,
                    &format!("{key}.name"),
                    format!("duplicate rule name '{}'", r.name),
                ));
            }
            if self.connector(&r.connector).is_none() {
                return Err(self.invalid(
                    &format!("\"{}\"", r.connector),
                    &format!("{key}.connector"),
                    format!(
                        "rule '{}' names unknown connector '{}'",
                        r.name, r.connector
                    ),
                ));
            }
            for (j, f) in r.flows.iter().enumerate() {
                let n = [&f.source, &f.constant, &f.expression]
                    .iter()
                    .filter(|o| o.is_some())
                    .count();
                if n != 1 {
                    return Err(self.invalid(
                        &format!("\"{}\"", f.target),
                        &format!("{key}.flows[{j}]"),
                        format!(
                            "rule '{}': flow to '{}' needs exactly one of source, constant, expression",
                            r.name, f.target
                        ),
                    ));
                }
            }
            for (g, grp) in r.scope.iter().enumerate() {
                if grp.clauses.is_empty() {
                    return Err(self.invalid(
                        &here,
                        &format!("{key}.scope[{g}]"),
                        "a scoping group needs at least one clause",
                    ));
                }
            }
            for (g, grp) in r.join.iter().enumerate() {
                if grp.clauses.is_empty() {
                    return Err(self.invalid(
                        &here,
                        &format!("{key}.join[{g}]"),
                        "a join group needs at least one clause",
                    ));
                }
            }
        }
        if self.safety.deletion_threshold_percent < 0.0
            || self.safety.deletion_threshold_percent > 100.0
        {
            return Err(self.invalid(
                "deletion_threshold_percent",
                "safety.deletion_threshold_percent",
                "must be between 0 and 100",
            ));
        }
        for (key, value, min) in [
            ("interval", &self.scheduler.interval, 1),
            (
                "full_import_interval",
                &self.scheduler.full_import_interval,
                0,
            ),
        ] {
            match parse_duration_secs(value) {
                Some(s) if s >= min => {}
                _ => {
                    // The key at the start of a line (`interval` is also the end of
                    // `full_import_interval`).
                    let line = self
                        .source_text
                        .find(&format!("\n{key}"))
                        .map(|o| line_of_offset(&self.source_text, o + 1))
                        .unwrap_or(0);
                    return Err(ConfigError::Invalid {
                        file: self.origin.clone(),
                        line,
                        key: format!("scheduler.{key}"),
                        message: format!(
                            "'{value}' is not a duration (like 30m, 1h, 90s, 7d or seconds){}",
                            if min > 0 { " above zero" } else { "" }
                        ),
                    });
                }
            }
        }
        if self
            .scheduler
            .listen
            .parse::<std::net::SocketAddr>()
            .is_err()
        {
            return Err(self.invalid(
                "listen",
                "scheduler.listen",
                format!(
                    "'{}' is not an address like 127.0.0.1:9464",
                    self.scheduler.listen
                ),
            ));
        }
        Ok(())
    }
}

/// Parses a duration: a number with an optional unit `s`, `m`, `h` or `d` (`30m`, `1h30m`
/// is not accepted; plain numbers are seconds). Returns seconds.
pub fn parse_duration_secs(s: &str) -> Option<u64> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 'h')) => (&t[..i], 3600),
        Some((i, 'd')) => (&t[..i], 86_400),
        _ => (t, 1),
    };
    let n: u64 = num.trim().parse().ok()?;
    n.checked_mul(mult)
}

/// One-based line of a byte offset.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset.min(text.len()))
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = "[safety]\nstaging_mode = true\ndeletion_treshold_count = 3\n";
        let err = Config::from_toml_str(text, "x.toml", Path::new(".")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("x.toml:3:"), "{msg}");
        assert!(msg.contains("deletion_treshold_count"), "{msg}");
    }

    #[test]
    fn scheduler_durations_parse_and_bad_ones_are_located() {
        assert_eq!(parse_duration_secs("30m"), Some(1800));
        assert_eq!(parse_duration_secs("7d"), Some(604_800));
        assert_eq!(parse_duration_secs("90"), Some(90));
        assert_eq!(parse_duration_secs("2h"), Some(7200));
        assert_eq!(parse_duration_secs("x"), None);
        assert_eq!(parse_duration_secs("-1s"), None);
        let text = "[scheduler]\nsync_cycle_enabled = true\ninterval = \"soon\"\n";
        let err = Config::from_toml_str(text, "s.toml", Path::new(".")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "s.toml:3: scheduler.interval: 'soon' is not a duration (like 30m, 1h, 90s, 7d or seconds) above zero"
        );
        let ok = Config::from_toml_str(
            "[scheduler]\ninterval = \"1s\"\nfull_import_interval = \"0\"\n",
            "s.toml",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(ok.scheduler.interval, "1s");
    }

    #[test]
    fn unknown_connector_in_rule_is_located() {
        let text = r#"
[[connectors]]
name = "hr"
type = "csv"

[[rules]]
name = "r1"
direction = "inbound"
connector = "hrr"
source_type = "person"
target_type = "person"
precedence = 10
"#;
        let err = Config::from_toml_str(text, "c.toml", Path::new(".")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.toml:9: rules[0].connector: rule 'r1' names unknown connector 'hrr'"
        );
    }
}

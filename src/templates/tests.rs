//! The template's expressions and scoping filters evaluated on objects shaped like AD entries.

use super::*;
use crate::config::Config;
use crate::expr::FlowValue;
use crate::model::{Dn, Object, Value};
use crate::rules::{ObjectContext, Rule, RuleSet, ScopeContext, evaluate_scope};
use std::collections::BTreeMap;
use std::path::Path;

fn compiled(opts: &AdToEntraOptions) -> (Config, RuleSet) {
    let text = ad_to_entra_config(opts);
    let cfg = Config::from_toml_str(&text, "template.toml", Path::new("."))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let rules = RuleSet::compile(&cfg).unwrap_or_else(|e| panic!("{e}"));
    (cfg, rules)
}

fn default_rules() -> (BTreeMap<String, String>, RuleSet) {
    let (cfg, rules) = compiled(&AdToEntraOptions::default());
    (cfg.parameters, rules)
}

fn rule<'a>(rules: &'a RuleSet, name: &str) -> &'a Rule {
    rules
        .get(name)
        .unwrap_or_else(|| panic!("no rule '{name}'"))
}

/// The value a rule's flow to `target` computes for `obj`.
fn flow(
    rules: &RuleSet,
    params: &BTreeMap<String, String>,
    rule_name: &str,
    target: &str,
    obj: &Object,
) -> Vec<Value> {
    let r = rule(rules, rule_name);
    let f = r
        .flows
        .iter()
        .find(|f| f.target == target)
        .unwrap_or_else(|| panic!("rule '{rule_name}' has no flow to '{target}'"));
    match f.evaluate(&ObjectContext::new(obj, params)) {
        Ok(FlowValue::Values(v)) => v,
        other => panic!("{rule_name}/{target}: {other:?}"),
    }
}

struct ObjScope<'a>(&'a Object, Vec<String>);

impl ScopeContext for ObjScope<'_> {
    fn values(&self, attribute: &str) -> Vec<Value> {
        if attribute == "dn" {
            return vec![Value::Str(self.0.dn.to_string())];
        }
        self.0
            .attributes
            .get(attribute)
            .cloned()
            .unwrap_or_default()
    }
    fn is_member_of(&self, group_dn: &str) -> bool {
        self.1.iter().any(|g| g.eq_ignore_ascii_case(group_dn))
    }
}

fn in_scope(rules: &RuleSet, rule_name: &str, obj: &Object) -> bool {
    evaluate_scope(&rule(rules, rule_name).scope, &ObjScope(obj, Vec::new())).in_scope
}

/// GUID 88666888-0101-1111-bbbb-1234567890ab in AD's byte order (REFERENCE section 4).
fn guid_bytes() -> Vec<u8> {
    uuid::Uuid::parse_str("88666888-0101-1111-bbbb-1234567890ab")
        .expect("guid")
        .to_bytes_le()
        .to_vec()
}
const IMMUTABLE_ID: &str = "iGhmiAEBERG7uxI0VniQqw==";

fn user(dn: &str, sam: &str) -> Object {
    let mut o = Object::new(
        Some(IMMUTABLE_ID.into()),
        Dn::parse(dn).expect("dn"),
        "user",
    );
    o.attributes
        .insert("objectGUID".into(), vec![Value::Bin(guid_bytes())]);
    o.attributes
        .insert("sAMAccountName".into(), vec![Value::Str(sam.into())]);
    o.attributes.insert(
        "cn".into(),
        vec![Value::Str(
            Dn::parse(dn)
                .expect("dn")
                .rdn()
                .map(|r| r.value().to_string())
                .unwrap_or_default(),
        )],
    );
    o.attributes
        .insert("userAccountControl".into(), vec![Value::Int(512)]);
    o
}

fn set(o: &mut Object, name: &str, v: Value) {
    o.attributes.insert(name.into(), vec![v]);
}

const USER_JOIN: &str = "In from AD - User Join";

#[test]
fn generated_configs_load_and_compile() {
    let mut opts = AdToEntraOptions::default();
    compiled(&opts);
    opts.with_writeback = true;
    opts.include_ous = vec!["OU=Corp,DC=contoso,DC=com".into()];
    opts.exclude_ous = vec!["OU=Lab \"x\",OU=Corp,DC=contoso,DC=com".into()];
    opts.pilot_group_dn = Some("CN=Pilot,OU=Groups,DC=contoso,DC=com".into());
    let (cfg, _) = compiled(&opts);
    assert_eq!(cfg.parameters["Domain.FQDN"], "contoso.com");
    assert!(cfg.parameters.contains_key("Writeback.OU"));
    let ad = cfg.connector("ad").expect("ad connector");
    assert_eq!(ad.kind, "ad");
    assert_eq!(
        ad.settings["partitions"][0]["exclude"][0],
        "OU=Lab \"x\",OU=Corp,DC=contoso,DC=com"
    );
    assert!(ad.settings["connection"].get("bind_password").is_none());
    let aad = cfg.connector("aad").expect("aad connector");
    assert_eq!(aad.settings["client_secret_env"], "DIRSYNC_GRAPH_SECRET");
    // The LDIF form of the source.
    opts.source = AdSource::LdifExport {
        path: "contoso.ldif".into(),
        changes_dir: Some("changes".into()),
    };
    opts.client_secret_env = None;
    opts.client_secret_file = Some("secret.txt".into());
    let (cfg, _) = compiled(&opts);
    let ad = cfg.connector("ad").expect("ad connector");
    assert_eq!(ad.kind, "ldif");
    assert_eq!(ad.settings["anchor_attribute"], "objectGUID");
    assert_eq!(
        cfg.connector("aad").expect("aad").settings["client_secret_file"],
        "secret.txt"
    );
}

#[test]
fn rules_alone_name_only_ad_and_aad() {
    for wb in [false, true] {
        let text = ad_to_entra_rules(wb);
        let cfg: toml::Value = toml::from_str(&text).expect("rules are TOML");
        let rules = cfg.get("rules").and_then(|r| r.as_array()).expect("rules");
        assert!(rules.len() >= 9);
        for r in rules {
            let c = r.get("connector").and_then(|c| c.as_str()).expect("name");
            assert!(c == "ad" || c == "aad", "{c}");
        }
    }
}

#[test]
fn source_anchor_from_objectguid_consistency_guid_or_connector() {
    let (params, rules) = default_rules();
    let mut u = user("CN=Ann,OU=Sales,DC=contoso,DC=com", "ann");
    assert_eq!(
        flow(&rules, &params, USER_JOIN, "sourceAnchor", &u),
        vec![Value::Str(IMMUTABLE_ID.into())]
    );
    // mS-DS-ConsistencyGuid wins over objectGUID.
    let other = uuid::Uuid::parse_str("00112233-4455-6677-8899-aabbccddeeff")
        .expect("guid")
        .to_bytes_le()
        .to_vec();
    set(&mut u, "mS-DS-ConsistencyGuid", Value::Bin(other.clone()));
    let want = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &other);
    assert_eq!(
        flow(&rules, &params, USER_JOIN, "sourceAnchor", &u),
        vec![Value::Str(want)]
    );
    // The AD connector's computed sourceAnchor is taken as is.
    set(&mut u, "sourceAnchor", Value::Str("fromConnector==".into()));
    assert_eq!(
        flow(&rules, &params, USER_JOIN, "sourceAnchor", &u),
        vec![Value::Str("fromConnector==".into())]
    );
    // Groups and contacts use the same expression.
    let g = user("CN=Staff,OU=Groups,DC=contoso,DC=com", "staff");
    for r in ["In from AD - Group Join", "In from AD - Contact Join"] {
        assert_eq!(
            flow(&rules, &params, r, "sourceAnchor", &g),
            vec![Value::Str(IMMUTABLE_ID.into())],
            "{r}"
        );
    }
}

#[test]
fn account_enabled_is_a_boolean_from_uac_bit_2() {
    let (params, rules) = default_rules();
    let mut u = user("CN=Ann,OU=Sales,DC=contoso,DC=com", "ann");
    for (uac, want) in [(512, true), (514, false), (66048, true), (66050, false)] {
        set(&mut u, "userAccountControl", Value::Int(uac));
        assert_eq!(
            flow(&rules, &params, USER_JOIN, "accountEnabled", &u),
            vec![Value::Bool(want)],
            "{uac}"
        );
    }
}

#[test]
fn upn_falls_back_to_sam_at_domain_and_display_name_to_cn() {
    let (params, rules) = default_rules();
    let mut u = user("CN=Zoë Müller,OU=Sales,DC=contoso,DC=com", "zmuller");
    assert_eq!(
        flow(&rules, &params, USER_JOIN, "userPrincipalName", &u),
        vec![Value::Str("zmuller@contoso.com".into())]
    );
    assert_eq!(
        flow(&rules, &params, USER_JOIN, "displayName", &u),
        vec![Value::Str("Zoë Müller".into())]
    );
    set(
        &mut u,
        "userPrincipalName",
        Value::Str(" zoe@contoso.com ".into()),
    );
    set(&mut u, "displayName", Value::Str("  Zoë M.".into()));
    assert_eq!(
        flow(&rules, &params, USER_JOIN, "userPrincipalName", &u),
        vec![Value::Str("zoe@contoso.com".into())]
    );
    assert_eq!(
        flow(&rules, &params, USER_JOIN, "displayName", &u),
        vec![Value::Str("Zoë M.".into())]
    );
    // Address-book attributes are trimmed, multi-valued ones per value.
    set(&mut u, "title", Value::Str(" Engineer ".into()));
    u.attributes.insert(
        "proxyAddresses".into(),
        vec![
            Value::Str("SMTP:zoe@contoso.com ".into()),
            Value::Str(" smtp:zm@contoso.com".into()),
        ],
    );
    assert_eq!(
        flow(&rules, &params, USER_JOIN, "title", &u),
        vec![Value::Str("Engineer".into())]
    );
    assert_eq!(
        flow(&rules, &params, USER_JOIN, "proxyAddresses", &u),
        vec![
            Value::Str("SMTP:zoe@contoso.com".into()),
            Value::Str("smtp:zm@contoso.com".into())
        ]
    );
}

#[test]
fn mail_nickname_falls_back_to_sam_and_loses_spaces_on_the_way_out() {
    let (params, rules) = default_rules();
    let u = user("CN=Jo Ann,OU=Sales,DC=contoso,DC=com", "jo ann");
    let nick = flow(&rules, &params, USER_JOIN, "mailNickname", &u);
    assert_eq!(nick, vec![Value::Str("jo ann".into())]);
    let mut mv = Object::new(None, Dn::root(), "person");
    mv.attributes.insert("mailNickname".into(), nick);
    assert_eq!(
        flow(
            &rules,
            &params,
            "Out to AAD - User Join",
            "mailNickname",
            &mv
        ),
        vec![Value::Str("joann".into())]
    );
}

#[test]
fn built_in_exclusions_are_out_of_scope() {
    let (_, rules) = default_rules();
    let ok = user("CN=Ann,OU=Sales,DC=contoso,DC=com", "ann");
    assert!(in_scope(&rules, USER_JOIN, &ok));
    let mut cases: Vec<(&str, Object)> = Vec::new();
    let mut o = ok.clone();
    set(&mut o, "isCriticalSystemObject", Value::Str("TRUE".into()));
    cases.push(("critical", o));
    let mut o = ok.clone();
    o.attributes.remove("sAMAccountName");
    cases.push(("no sAMAccountName", o));
    cases.push((
        "AAD_",
        user("CN=AAD_0a1b,CN=Users,DC=contoso,DC=com", "AAD_0a1b2c3d"),
    ));
    cases.push((
        "MSOL_",
        user("CN=MSOL_0a1b,CN=Users,DC=contoso,DC=com", "MSOL_0a1b2c3d"),
    ));
    cases.push((
        "SUPPORT_388945a0",
        user("CN=SUPPORT,CN=Users,DC=contoso,DC=com", "SUPPORT_388945a0"),
    ));
    cases.push((
        "SystemMailbox{",
        user(
            "CN=SystemMailbox{1f05a927-3be2-4fb9-aa03-b59fe3b56f4c},CN=Users,DC=contoso,DC=com",
            "SM_3b1c2f1d8e6b4a9c9",
        ),
    ));
    cases.push((
        "CAS_{",
        user(
            "CN=CAS,CN=Users,DC=contoso,DC=com",
            "CAS_{8a9b0c1d2e3f4a5b}",
        ),
    ));
    let mut o = ok.clone();
    set(&mut o, "adminDescription", Value::Str("User_1234".into()));
    cases.push(("written back", o));
    cases.push((
        "replication conflict",
        user(
            "CN=Ann\\0ACNF:0f0e0d0c-0b0a-0908-0706-050403020100,OU=Sales,DC=contoso,DC=com",
            "ann2",
        ),
    ));
    for (why, o) in &cases {
        assert!(!in_scope(&rules, USER_JOIN, o), "{why}: {}", o.dn);
        let mut marked = o.clone();
        set(
            &mut marked,
            "extensionAttribute15",
            Value::Str("NoSync".into()),
        );
        assert!(
            !in_scope(&rules, "In from AD - User NoSync", &marked),
            "{why}"
        );
    }
    // Groups: critical system groups and written-back groups are excluded.
    let g = user("CN=Staff,OU=Groups,DC=contoso,DC=com", "staff");
    assert!(in_scope(&rules, "In from AD - Group Join", &g));
    let mut crit = g.clone();
    set(
        &mut crit,
        "isCriticalSystemObject",
        Value::Str("TRUE".into()),
    );
    assert!(!in_scope(&rules, "In from AD - Group Join", &crit));
    let mut wb = g.clone();
    set(&mut wb, "adminDescription", Value::Str("Group_5f3c".into()));
    assert!(!in_scope(&rules, "In from AD - Group Join", &wb));
}

#[test]
fn nosync_sets_cloud_filtered_and_outbound_skips_it() {
    let (params, rules) = default_rules();
    let mut u = user("CN=Ann,OU=Sales,DC=contoso,DC=com", "ann");
    assert!(!in_scope(&rules, "In from AD - User NoSync", &u));
    set(&mut u, "extensionAttribute15", Value::Str("NoSync".into()));
    assert!(in_scope(&rules, "In from AD - User NoSync", &u));
    assert!(in_scope(&rules, USER_JOIN, &u));
    assert_eq!(
        flow(
            &rules,
            &params,
            "In from AD - User NoSync",
            "cloudFiltered",
            &u
        ),
        vec![Value::Bool(true)]
    );
    // Outbound scope over metaverse-shaped objects.
    let mut mv = Object::new(None, Dn::root(), "person");
    set(&mut mv, "sourceAnchor", Value::Str(IMMUTABLE_ID.into()));
    assert!(in_scope(&rules, "Out to AAD - User Join", &mv));
    set(&mut mv, "cloudFiltered", Value::Bool(true));
    assert!(!in_scope(&rules, "Out to AAD - User Join", &mv));
    let cloud_only = Object::new(None, Dn::root(), "person");
    assert!(!in_scope(&rules, "Out to AAD - User Join", &cloud_only));
    // Groups too.
    let mut g = user("CN=Staff,OU=Groups,DC=contoso,DC=com", "staff");
    assert!(!in_scope(&rules, "In from AD - Group NoSync", &g));
    set(&mut g, "extensionAttribute15", Value::Str("NoSync".into()));
    assert!(in_scope(&rules, "In from AD - Group NoSync", &g));
    assert_eq!(
        flow(
            &rules,
            &params,
            "In from AD - Group NoSync",
            "cloudFiltered",
            &g
        ),
        vec![Value::Bool(true)]
    );
    let mut mvg = Object::new(None, Dn::root(), "group");
    set(&mut mvg, "sourceAnchor", Value::Str(IMMUTABLE_ID.into()));
    set(&mut mvg, "securityEnabled", Value::Bool(true));
    assert!(in_scope(&rules, "Out to AAD - Group Join", &mvg));
    set(&mut mvg, "cloudFiltered", Value::Bool(true));
    assert!(!in_scope(&rules, "Out to AAD - Group Join", &mvg));
}

#[test]
fn group_security_and_mail_flags() {
    let (params, rules) = default_rules();
    let r = "In from AD - Group Join";
    let mut g = user("CN=Staff,OU=Groups,DC=contoso,DC=com", "staff");
    // Global security group, universal distribution group.
    set(&mut g, "groupType", Value::Int(-2147483646));
    assert_eq!(
        flow(&rules, &params, r, "securityEnabled", &g),
        vec![Value::Bool(true)]
    );
    assert_eq!(
        flow(&rules, &params, r, "mailEnabled", &g),
        vec![Value::Bool(false)]
    );
    set(&mut g, "groupType", Value::Int(8));
    assert_eq!(
        flow(&rules, &params, r, "securityEnabled", &g),
        vec![Value::Bool(false)]
    );
    g.attributes.insert(
        "proxyAddresses".into(),
        vec![
            Value::Str("x500:/o=contoso".into()),
            Value::Str("SMTP:staff@contoso.com".into()),
        ],
    );
    assert_eq!(
        flow(&rules, &params, r, "mailEnabled", &g),
        vec![Value::Bool(true)]
    );
    // Outbound: only security groups.
    let mut mv = Object::new(None, Dn::root(), "group");
    set(&mut mv, "sourceAnchor", Value::Str(IMMUTABLE_ID.into()));
    set(&mut mv, "securityEnabled", Value::Bool(false));
    assert!(!in_scope(&rules, "Out to AAD - Group Join", &mv));
    set(&mut mv, "securityEnabled", Value::Bool(true));
    assert!(in_scope(&rules, "Out to AAD - Group Join", &mv));
}

#[test]
fn outbound_dn_is_a_valid_dn_before_and_after_the_cloud_id() {
    let (params, rules) = default_rules();
    let mut mv = Object::new(None, Dn::root(), "person");
    set(&mut mv, "sourceAnchor", Value::Str("ab+/cd==".into()));
    let dn = flow(&rules, &params, "Out to AAD - User Join", "dn", &mv);
    let text = dn[0].to_text();
    let parsed = Dn::parse(&text).expect("placeholder DN parses");
    assert_eq!(
        parsed.rdn().map(|r| r.value().to_string()),
        Some("ab+/cd==".into())
    );
    set(
        &mut mv,
        "cloudId",
        Value::Str("6f1c2a4e-0000-4000-8000-000000000001".into()),
    );
    let dn = flow(&rules, &params, "Out to AAD - User Join", "dn", &mv);
    assert_eq!(
        dn,
        vec![Value::Str(
            "CN=6f1c2a4e-0000-4000-8000-000000000001,OU=Users".into()
        )]
    );
}

#[test]
fn pilot_group_scopes_every_ad_rule() {
    let opts = AdToEntraOptions {
        pilot_group_dn: Some("CN=Pilot,OU=Groups,DC=contoso,DC=com".into()),
        ..AdToEntraOptions::default()
    };
    let (_, rules) = compiled(&opts);
    let u = user("CN=Ann,OU=Sales,DC=contoso,DC=com", "ann");
    let member = ObjScope(&u, vec!["CN=Pilot,OU=Groups,DC=contoso,DC=com".into()]);
    let other = ObjScope(&u, Vec::new());
    for r in rules.rules.iter().filter(|r| r.connector == "ad") {
        if r.name.ends_with("NoSync") {
            continue;
        }
        assert!(evaluate_scope(&r.scope, &member).in_scope, "{}", r.name);
        assert!(!evaluate_scope(&r.scope, &other).in_scope, "{}", r.name);
    }
    // Off by default.
    let (_, rules) = default_rules();
    assert!(evaluate_scope(&rule(&rules, USER_JOIN).scope, &other).in_scope);
}

#[test]
fn generated_connector_settings_are_accepted_by_the_connectors() {
    use crate::connectors::graph::GraphSettings;
    use crate::connectors::ldap::settings::AdSettings;
    use crate::connectors::ldif::LdifSettings;
    let mut opts = AdToEntraOptions {
        exclude_ous: vec!["OU=Lab,DC=contoso,DC=com".into()],
        authority: Some("http://127.0.0.1:1".into()),
        graph_url: Some("http://127.0.0.1:1/v1.0".into()),
        ..AdToEntraOptions::default()
    };
    let (cfg, _) = compiled(&opts);
    let ad: AdSettings = serde_json::from_value(cfg.connector("ad").expect("ad").settings.clone())
        .unwrap_or_else(|e| panic!("ad settings: {e}"));
    assert_eq!(ad.partitions[0].exclude, vec!["OU=Lab,DC=contoso,DC=com"]);
    assert_eq!(
        ad.connection.bind_password_env.as_deref(),
        Some("DIRSYNC_AD_PASSWORD")
    );
    let g: GraphSettings =
        serde_json::from_value(cfg.connector("aad").expect("aad").settings.clone())
            .unwrap_or_else(|e| panic!("graph settings: {e}"));
    assert_eq!(g.graph_url, "http://127.0.0.1:1/v1.0");
    assert_eq!(g.anchor_attribute, "dirsyncAnchor");
    opts.source = AdSource::LdifExport {
        path: "contoso.ldif".into(),
        changes_dir: Some("changes".into()),
    };
    let (cfg, _) = compiled(&opts);
    let l: LdifSettings = serde_json::from_value(cfg.connector("ad").expect("ad").settings.clone())
        .unwrap_or_else(|e| panic!("ldif settings: {e}"));
    assert_eq!(l.anchor_attribute, "objectGUID");
    assert_eq!(l.exclude, vec!["OU=Lab,DC=contoso,DC=com"]);
}

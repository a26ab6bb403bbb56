// The contoso.example sample domain: a deterministic model of an Active Directory domain and of a
// change set, rendered as LDIF the way an export of AD looks (binary objectGUID/objectSid,
// base64 for non-ASCII values). `cargo run --example ad-sample` writes the files;
// tests/quickstart_e2e.rs includes this file to check the committed files and to compute the
// tenant the out-of-box rules must produce.
//
// The model keeps AD semantics: renames and moves update the references other objects hold
// (member, manager), deletes remove them.

use base64::Engine as _;
use std::collections::{BTreeMap, BTreeSet};

/// DNS name of the sample domain.
pub const FQDN: &str = "contoso.example";
/// NetBIOS name of the sample domain.
pub const NETBIOS: &str = "CONTOSO";
/// The domain's naming context.
pub const BASE: &str = "DC=contoso,DC=example";
/// The OU kept out of scope by the partition's exclude list.
pub const EXCLUDED_OU: &str = "OU=Lab,DC=contoso,DC=example";
/// The mail and UPN domain.
pub const MAIL_DOMAIN: &str = "contoso.example";

/// What kind of AD object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
    Contact,
    Computer,
    Ou,
    Container,
    Domain,
}

/// One AD object: DN, kind and attributes (string values; `objectGUID` and `objectSid` are
/// kept as bytes in `guid` / `sid`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub dn: String,
    pub kind: Kind,
    pub guid: [u8; 16],
    pub sid: Option<Vec<u8>>,
    pub attrs: BTreeMap<String, Vec<String>>,
}

impl Entry {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
    pub fn values(&self, name: &str) -> &[String] {
        self.attrs.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
    pub fn set(&mut self, name: &str, values: Vec<String>) {
        if values.is_empty() {
            self.attrs.remove(name);
        } else {
            self.attrs.insert(name.to_string(), values);
        }
    }
    /// The immutableId form of the anchor (base64 of the GUID bytes).
    pub fn immutable_id(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.guid)
    }
}

/// The whole domain, in LDIF order (parents first).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Domain {
    pub entries: Vec<Entry>,
}

impl Domain {
    pub fn find(&self, dn: &str) -> Option<&Entry> {
        let k = dn_key(dn);
        self.entries.iter().find(|e| dn_key(&e.dn) == k)
    }
    fn find_mut(&mut self, dn: &str) -> Option<&mut Entry> {
        let k = dn_key(dn);
        self.entries.iter_mut().find(|e| dn_key(&e.dn) == k)
    }
    /// Rewrites every reference to `old` (and below it) as AD does after a rename or move.
    fn retarget(&mut self, old: &str, new: &str) {
        let old_k = dn_key(old);
        for e in &mut self.entries {
            for name in ["member", "manager"] {
                if let Some(vs) = e.attrs.get_mut(name) {
                    for v in vs.iter_mut() {
                        if dn_key(v) == old_k {
                            *v = new.to_string();
                        }
                    }
                }
            }
        }
    }
    /// Removes every reference to `dn`.
    fn unreference(&mut self, dn: &str) {
        let k = dn_key(dn);
        for e in &mut self.entries {
            for name in ["member", "manager"] {
                if let Some(vs) = e.attrs.get_mut(name) {
                    vs.retain(|v| dn_key(v) != k);
                    if vs.is_empty() {
                        e.attrs.remove(name);
                    }
                }
            }
        }
    }
}

/// A comparison key for DNs (case-insensitive, no spaces after commas).
pub fn dn_key(dn: &str) -> String {
    dn.to_lowercase().replace(", ", ",")
}

/// The parent DN (everything after the first unescaped comma).
pub fn dn_parent(dn: &str) -> String {
    let b = dn.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == b',' {
            return dn[i + 1..].to_string();
        }
        i += 1;
    }
    String::new()
}

/// True when `dn` is `container` or below it.
pub fn dn_within(dn: &str, container: &str) -> bool {
    let d = dn_key(dn);
    let c = dn_key(container);
    d == c || d.ends_with(&format!(",{c}"))
}

/// RFC 4514 escaping of an attribute value in a DN.
pub fn escape_rdn(v: &str) -> String {
    let mut out = String::new();
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

/// Deterministic pseudo-random numbers (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn guid(&mut self) -> [u8; 16] {
        let a = self.next_u64().to_le_bytes();
        let b = self.next_u64().to_le_bytes();
        let mut g = [0u8; 16];
        g[..8].copy_from_slice(&a);
        g[8..].copy_from_slice(&b);
        // Version 4, RFC 4122 variant (in AD's little-endian layout: byte 7 holds the version).
        g[7] = (g[7] & 0x0f) | 0x40;
        g[8] = (g[8] & 0x3f) | 0x80;
        g
    }
}

/// A binary SID S-1-5-21-<a>-<b>-<c>-<rid>.
pub fn sid(rid: u32) -> Vec<u8> {
    let mut s = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for sub in [21u32, 1_004_336_348, 1_177_238_915, 682_003_330, rid] {
        s.extend_from_slice(&sub.to_le_bytes());
    }
    s
}

/// ASCII folding for account names.
pub fn fold(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let r = match c {
            'á' | 'à' | 'â' | 'ä' | 'å' | 'ã' | 'Á' | 'Å' | 'Ä' => "a",
            'ç' | 'Ç' | 'č' => "c",
            'é' | 'è' | 'ê' | 'ë' | 'É' => "e",
            'í' | 'ì' | 'î' | 'ï' => "i",
            'ñ' => "n",
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'Ø' | 'Ö' => "o",
            'ú' | 'ù' | 'û' | 'ü' | 'Ü' => "u",
            'ß' => "ss",
            'ł' | 'Ł' => "l",
            'š' | 'Š' => "s",
            'ž' | 'Ž' => "z",
            'ř' => "r",
            'æ' => "ae",
            c if c.is_ascii_alphanumeric() => {
                out.push(c.to_ascii_lowercase());
                continue;
            }
            _ => "",
        };
        out.push_str(r);
    }
    out
}

const FIRST: &[&str] = &[
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Paul",
    "Quinn",
    "Rosa",
    "Simon",
    "Tara",
    "Umar",
    "Vera",
    "Will",
    "Xenia",
    "Yusuf",
    "Zoë",
    "Jürgen",
    "Émilie",
    "Søren",
    "Bjørn",
    "François",
    "José",
    "Łukasz",
    "Åsa",
    "Chloé",
    "Mårten",
    "Renée",
    "Aoife",
    "Siobhán",
    "Nuño",
    "Priya",
    "Kenji",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Müller",
    "García",
    "Østergaard",
    "Dubois",
    "Nováková",
    "Kowalski",
    "Rossi",
    "Andersson",
    "O'Brien",
    "Nguyen",
    "Schäfer",
    "Fernández",
    "Lefèvre",
    "Jensen",
    "Brown",
    "Taylor",
    "Wilson",
    "Martin",
    "Bernard",
    "Weiß",
    "Žukauskas",
    "Çelik",
    "Popescu",
    "Horváth",
    "Kim",
    "Tanaka",
    "Silva",
    "Costa",
    "Smith, Jr.",
];
/// (given name, surname, account name) of users with Chinese names.
const CJK: &[(&str, &str, &str)] = &[
    ("伟", "王", "wei.wang"),
    ("娜", "李", "na.li"),
    ("静", "张", "jing.zhang"),
    ("强", "刘", "qiang.liu"),
    ("敏", "陈", "min.chen"),
    ("洋", "杨", "yang.yang"),
];

/// One department OU: (OU path below the domain, department, user count, head's title,
/// offices as (office, street, city, state, postal code, c, co, phone prefix)).
type Office = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);
const LONDON: Office = (
    "London HQ",
    "1 Canada Square",
    "London",
    "England",
    "E14 5AB",
    "GB",
    "United Kingdom",
    "+44 20 7946",
);
const MUNICH: Office = (
    "München",
    "Leopoldstraße 12",
    "München",
    "Bayern",
    "80802",
    "DE",
    "Germany",
    "+49 89 2190",
);
const PARIS: Office = (
    "Paris",
    "12 rue de l'Église",
    "Paris",
    "Île-de-France",
    "75004",
    "FR",
    "France",
    "+33 1 4020",
);
const NEWYORK: Office = (
    "New York",
    "350 Fifth Avenue",
    "New York",
    "NY",
    "10118",
    "US",
    "United States",
    "+1 212 555",
);
const TORONTO: Office = (
    "Toronto",
    "100 King St W",
    "Toronto",
    "ON",
    "M5X 1A9",
    "CA",
    "Canada",
    "+1 416 555",
);
const SAOPAULO: Office = (
    "São Paulo",
    "Avenida Paulista 1000",
    "São Paulo",
    "SP",
    "01310-100",
    "BR",
    "Brazil",
    "+55 11 3090",
);
const OSLO: Office = (
    "Oslo",
    "Karl Johans gate 22",
    "Oslo",
    "Oslo",
    "0159",
    "NO",
    "Norway",
    "+47 2200",
);
const SEATTLE: Office = (
    "Seattle",
    "400 Broad St",
    "Seattle",
    "WA",
    "98109",
    "US",
    "United States",
    "+1 206 555",
);

struct Dept {
    ou: &'static str,
    department: &'static str,
    users: usize,
    head_title: &'static str,
    title: &'static str,
    group: &'static str,
    offices: &'static [Office],
}

const DEPTS: &[Dept] = &[
    Dept {
        ou: "OU=EMEA,OU=Sales,OU=Corp",
        department: "Sales",
        users: 90,
        head_title: "Head of Sales EMEA",
        title: "Account Executive",
        group: "SG-Sales-EMEA",
        offices: &[LONDON, MUNICH, PARIS],
    },
    Dept {
        ou: "OU=Americas,OU=Sales,OU=Corp",
        department: "Sales",
        users: 80,
        head_title: "Head of Sales Americas",
        title: "Account Executive",
        group: "SG-Sales-Americas",
        offices: &[NEWYORK, TORONTO, SAOPAULO],
    },
    Dept {
        ou: "OU=Platform,OU=Engineering,OU=Corp",
        department: "Engineering",
        users: 90,
        head_title: "Platform Engineering Manager",
        title: "Software Engineer",
        group: "SG-Platform",
        offices: &[OSLO, SEATTLE],
    },
    Dept {
        ou: "OU=Apps,OU=Engineering,OU=Corp",
        department: "Engineering",
        users: 80,
        head_title: "Apps Engineering Manager",
        title: "Software Engineer",
        group: "SG-Apps",
        offices: &[SEATTLE, MUNICH],
    },
    Dept {
        ou: "OU=Engineering,OU=Corp",
        department: "Engineering",
        users: 20,
        head_title: "VP Engineering",
        title: "Principal Engineer",
        group: "SG-Engineering",
        offices: &[SEATTLE],
    },
    Dept {
        ou: "OU=Finance,OU=Corp",
        department: "Finance",
        users: 45,
        head_title: "Finance Director",
        title: "Financial Analyst",
        group: "SG-Finance",
        offices: &[LONDON, NEWYORK],
    },
    Dept {
        ou: "OU=HR,OU=Corp",
        department: "Human Resources",
        users: 30,
        head_title: "HR Director",
        title: "HR Business Partner",
        group: "SG-HR",
        offices: &[LONDON],
    },
    Dept {
        ou: "OU=Support,OU=Corp",
        department: "Customer Support",
        users: 70,
        head_title: "Support Manager",
        title: "Support Engineer",
        group: "SG-Support",
        offices: &[TORONTO, PARIS],
    },
    Dept {
        ou: "OU=Marketing,OU=Corp",
        department: "Marketing",
        users: 40,
        head_title: "Marketing Director",
        title: "Marketing Specialist",
        group: "SG-Marketing",
        offices: &[NEWYORK, PARIS],
    },
];

fn dn_at(rdn_attr: &str, value: &str, parent: &str) -> String {
    format!("{rdn_attr}={},{parent}", escape_rdn(value))
}

fn s(v: &str) -> Vec<String> {
    vec![v.to_string()]
}

struct Builder {
    rng: Rng,
    rid: u32,
    domain: Domain,
    sams: BTreeSet<String>,
    cns: BTreeSet<String>,
    employee: u32,
}

impl Builder {
    fn entry(&mut self, dn: String, kind: Kind, attrs: Vec<(&str, Vec<String>)>) -> &mut Entry {
        let guid = self.rng.guid();
        let sid = match kind {
            Kind::User | Kind::Group | Kind::Computer => {
                self.rid += 1;
                Some(sid(self.rid))
            }
            _ => None,
        };
        let mut map = BTreeMap::new();
        for (k, v) in attrs {
            if !v.is_empty() {
                map.insert(k.to_string(), v);
            }
        }
        self.domain.entries.push(Entry {
            dn,
            kind,
            guid,
            sid,
            attrs: map,
        });
        self.domain.entries.last_mut().expect("just pushed")
    }

    fn container(&mut self, dn: &str, kind: Kind) {
        let (attr, value) = dn
            .split(',')
            .next()
            .and_then(|r| r.split_once('='))
            .unwrap_or(("OU", dn));
        let key = if kind == Kind::Ou { "ou" } else { "cn" };
        self.entry(dn.to_string(), kind, vec![(key, s(value))]);
        let _ = attr;
    }

    fn unique_sam(&mut self, base: &str) -> String {
        let mut b: String = base.chars().take(20).collect();
        b = b.trim_end_matches('.').to_string();
        let mut cand = b.clone();
        let mut n = 2;
        while !self.sams.insert(cand.to_lowercase()) {
            let suffix = n.to_string();
            let keep = 20 - suffix.len();
            cand = format!("{}{suffix}", b.chars().take(keep).collect::<String>());
            n += 1;
        }
        cand
    }

    /// Adds a user; returns its DN.
    #[allow(clippy::too_many_arguments)]
    fn user(
        &mut self,
        parent: &str,
        given: &str,
        sn: &str,
        sam_base: &str,
        title: &str,
        department: &str,
        office: &Office,
        manager: Option<&str>,
        with_upn: bool,
    ) -> String {
        let sam = self.unique_sam(sam_base);
        let display = if given
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
        {
            format!("{sn}{given}")
        } else {
            format!("{given} {sn}")
        };
        let mut cn = display.clone();
        if !self.cns.insert(dn_key(&format!("{cn},{parent}"))) {
            cn = format!("{display} ({sam})");
            self.cns.insert(dn_key(&format!("{cn},{parent}")));
        }
        let dn = dn_at("CN", &cn, parent);
        self.employee += 1;
        let emp = format!("E{:05}", self.employee);
        let mail = format!("{sam}@{MAIL_DOMAIN}");
        let ext = 1000 + self.rng.below(9000);
        let mobile = if self.rng.below(3) == 0 {
            vec![format!("+1 555 01{:02}", self.rng.below(100))]
        } else {
            Vec::new()
        };
        let (off, street, city, st, postal, c, co, phone) = *office;
        let e = self.entry(
            dn.clone(),
            Kind::User,
            vec![
                ("cn", s(&cn)),
                ("givenName", s(given)),
                ("sn", s(sn)),
                ("displayName", s(&display)),
                ("sAMAccountName", s(&sam)),
                (
                    "userPrincipalName",
                    if with_upn { s(&mail) } else { Vec::new() },
                ),
                ("mail", s(&mail)),
                (
                    "proxyAddresses",
                    vec![
                        format!("SMTP:{mail}"),
                        format!("smtp:{sam}@{NETBIOS}.mail.onmicrosoft.com").to_lowercase(),
                    ],
                ),
                ("userAccountControl", s("512")),
                ("title", s(title)),
                ("department", s(department)),
                ("company", s("Contoso Ltd.")),
                ("physicalDeliveryOfficeName", s(off)),
                ("telephoneNumber", s(&format!("{phone} {ext}"))),
                ("mobile", mobile),
                ("streetAddress", s(street)),
                ("l", s(city)),
                ("st", s(st)),
                ("postalCode", s(postal)),
                ("c", s(c)),
                ("co", s(co)),
                ("employeeID", s(&emp)),
                ("manager", manager.map(s).unwrap_or_default()),
            ],
        );
        e.dn.clone()
    }

    #[allow(clippy::too_many_arguments)]
    fn group(
        &mut self,
        parent: &str,
        cn: &str,
        sam: &str,
        group_type: i64,
        description: &str,
        mail: Option<&str>,
        members: Vec<String>,
    ) -> String {
        let dn = dn_at("CN", cn, parent);
        let e = self.entry(
            dn.clone(),
            Kind::Group,
            vec![
                ("cn", s(cn)),
                ("sAMAccountName", s(sam)),
                ("groupType", s(&group_type.to_string())),
                ("description", s(description)),
                ("mail", mail.map(s).unwrap_or_default()),
                (
                    "proxyAddresses",
                    mail.map(|m| vec![format!("SMTP:{m}")]).unwrap_or_default(),
                ),
                (
                    "mailNickname",
                    mail.map(|m| s(m.split('@').next().unwrap_or(m)))
                        .unwrap_or_default(),
                ),
                ("member", members),
            ],
        );
        e.dn.clone()
    }
}

/// Global security group.
pub const GLOBAL_SECURITY: i64 = -2147483646;
/// Universal security group.
pub const UNIVERSAL_SECURITY: i64 = -2147483640;
/// Universal distribution group.
pub const UNIVERSAL_DISTRIBUTION: i64 = 8;

/// The sample domain.
pub fn domain() -> Domain {
    let mut b = Builder {
        rng: Rng::new(0x00C0_FFEE_2026),
        rid: 1100,
        domain: Domain::default(),
        sams: BTreeSet::new(),
        cns: BTreeSet::new(),
        employee: 0,
    };
    b.entry(BASE.to_string(), Kind::Domain, vec![("dc", s("contoso"))]);
    let users_cn = format!("CN=Users,{BASE}");
    b.container(&users_cn, Kind::Container);
    for ou in [
        "OU=Corp",
        "OU=Executives,OU=Corp",
        "OU=Sales,OU=Corp",
        "OU=EMEA,OU=Sales,OU=Corp",
        "OU=Americas,OU=Sales,OU=Corp",
        "OU=Engineering,OU=Corp",
        "OU=Platform,OU=Engineering,OU=Corp",
        "OU=Apps,OU=Engineering,OU=Corp",
        "OU=Finance,OU=Corp",
        "OU=HR,OU=Corp",
        "OU=Support,OU=Corp",
        "OU=Marketing,OU=Corp",
        "OU=Groups,OU=Corp",
        "OU=Contacts,OU=Corp",
        "OU=Workstations,OU=Corp",
        "OU=Lab",
    ] {
        b.container(&format!("{ou},{BASE}"), Kind::Ou);
    }

    // Built-in objects and the objects the built-in exclusions keep out.
    let admin = {
        let e = b.entry(
            format!("CN=Administrator,{users_cn}"),
            Kind::User,
            vec![
                ("cn", s("Administrator")),
                ("sAMAccountName", s("Administrator")),
                ("userAccountControl", s("66048")),
                ("isCriticalSystemObject", s("TRUE")),
                (
                    "description",
                    s("Built-in account for administering the computer/domain"),
                ),
            ],
        );
        e.dn.clone()
    };
    for (cn, uac) in [("Guest", "66082"), ("krbtgt", "514")] {
        b.entry(
            format!("CN={cn},{users_cn}"),
            Kind::User,
            vec![
                ("cn", s(cn)),
                ("sAMAccountName", s(cn)),
                ("userAccountControl", s(uac)),
                ("isCriticalSystemObject", s("TRUE")),
            ],
        );
    }
    for (cn, sam, extra) in [
        (
            "On-Premises Directory Synchronization Service Account",
            "AAD_7c3e91a0b5d2",
            None,
        ),
        ("MSOL_4f2d8e6a1b0c", "MSOL_4f2d8e6a1b0c", None),
        ("SUPPORT_388945a0", "SUPPORT_388945a0", None),
        (
            "SystemMailbox{1f05a927-3be2-4fb9-aa03-b59fe3b56f4c}",
            "SM_9f3b2c1d4e5a6b7c8",
            Some((
                "mailNickname",
                "SystemMailbox{1f05a927-3be2-4fb9-aa03-b59fe3b56f4c}",
            )),
        ),
        (
            "Cloud Writeback User",
            "cwbuser",
            Some((
                "adminDescription",
                "User_2b7d5c1e-0000-4000-8000-00000000c10d",
            )),
        ),
    ] {
        let mut attrs = vec![
            ("cn", s(cn)),
            ("sAMAccountName", s(sam)),
            ("userAccountControl", s("66048")),
            (
                "userPrincipalName",
                s(&format!("{}@{MAIL_DOMAIN}", fold(sam))),
            ),
        ];
        if let Some((k, v)) = extra {
            attrs.push((k, s(v)));
        }
        b.entry(dn_at("CN", cn, &users_cn), Kind::User, attrs);
    }
    b.entry(
        format!("CN=Domain Admins,{users_cn}"),
        Kind::Group,
        vec![
            ("cn", s("Domain Admins")),
            ("sAMAccountName", s("Domain Admins")),
            ("groupType", s(&GLOBAL_SECURITY.to_string())),
            ("isCriticalSystemObject", s("TRUE")),
            ("member", vec![admin.clone()]),
        ],
    );
    b.entry(
        format!("CN=Domain Users,{users_cn}"),
        Kind::Group,
        vec![
            ("cn", s("Domain Users")),
            ("sAMAccountName", s("Domain Users")),
            ("groupType", s(&GLOBAL_SECURITY.to_string())),
            ("isCriticalSystemObject", s("TRUE")),
        ],
    );

    // Executives.
    let exec_ou = format!("OU=Executives,OU=Corp,{BASE}");
    let ceo = b.user(
        &exec_ou,
        "Margaret",
        "Okafor",
        "margaret.okafor",
        "Chief Executive Officer",
        "Executive",
        &LONDON,
        None,
        true,
    );
    let mut execs = vec![ceo.clone()];
    for (g, sn, sam, title) in [
        (
            "Henrik",
            "Lindqvist",
            "henrik.lindqvist",
            "Chief Technology Officer",
        ),
        (
            "Amélie",
            "Fournier",
            "amelie.fournier",
            "Chief Financial Officer",
        ),
        ("Rafael", "Souza", "rafael.souza", "Chief Revenue Officer"),
        ("Ingrid", "Hansen", "ingrid.hansen", "Chief People Officer"),
    ] {
        execs.push(b.user(
            &exec_ou,
            g,
            sn,
            sam,
            title,
            "Executive",
            &LONDON,
            Some(&ceo),
            true,
        ));
    }

    // Departments: the first user of each OU is its head.
    let mut heads = Vec::new();
    let mut dept_users: Vec<Vec<String>> = Vec::new();
    let mut n = 0usize;
    for (di, d) in DEPTS.iter().enumerate() {
        let parent = format!("{},{BASE}", d.ou);
        let exec = match d.department {
            "Engineering" => &execs[1],
            "Finance" => &execs[2],
            "Sales" | "Marketing" | "Customer Support" => &execs[3],
            _ => &execs[4],
        }
        .clone();
        let mut users = Vec::new();
        let mut head = String::new();
        for i in 0..d.users {
            n += 1;
            let (given, sn, sam_base) = if n % 37 == 5 {
                let (g, s2, sam) = CJK[(n / 37) % CJK.len()];
                (g.to_string(), s2.to_string(), sam.to_string())
            } else {
                let g = FIRST[b.rng.below(FIRST.len())];
                let l = LAST[b.rng.below(LAST.len())];
                (
                    g.to_string(),
                    l.to_string(),
                    format!("{}.{}", fold(g), fold(l)),
                )
            };
            let office = &d.offices[i % d.offices.len()];
            let (title, manager) = if i == 0 {
                (d.head_title.to_string(), exec.clone())
            } else {
                (d.title.to_string(), head.clone())
            };
            // Every 10th user has no userPrincipalName (the UPN falls back to sAMAccountName@domain).
            let dn = b.user(
                &parent,
                &given,
                &sn,
                &sam_base,
                &title,
                d.department,
                office,
                Some(&manager),
                n % 10 != 3,
            );
            let e = b.domain.find_mut(&dn).expect("user");
            if n % 17 == 4 {
                e.set("userAccountControl", s("514"));
            } else if n % 29 == 7 {
                e.set("userAccountControl", s("66050"));
            } else if n % 23 == 11 {
                e.set("userAccountControl", s("66048"));
            }
            // Values with stray spaces, as admins type them (the rules trim them).
            if n % 19 == 2 {
                e.set("title", s(&format!("  {title} ")));
            }
            if n % 97 == 13 {
                e.set("extensionAttribute15", s("NoSync"));
            }
            if i == 0 {
                head = dn.clone();
                heads.push(dn.clone());
            }
            users.push(dn);
        }
        let _ = di;
        dept_users.push(users);
    }

    // A replication conflict object next to its twin (excluded by the built-in rules).
    {
        let parent = format!("OU=EMEA,OU=Sales,OU=Corp,{BASE}");
        let twin = b.domain.find(&dept_users[0][5]).expect("user").clone();
        let cn = format!(
            "{}\nCNF:6c1d0e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
            twin.get("cn").unwrap_or("x")
        );
        let dn = format!("CN={},{parent}", escape_rdn(&cn).replace('\n', "\\0A"));
        let mut attrs: Vec<(&str, Vec<String>)> = Vec::new();
        for (k, v) in &twin.attrs {
            if k != "cn" && k != "proxyAddresses" && k != "mail" && k != "userPrincipalName" {
                attrs.push((k.as_str(), v.clone()));
            }
        }
        let sam = format!("$DUPLICATE-{}", 0x4f1);
        let mut e = Entry {
            dn,
            kind: Kind::User,
            guid: b.rng.guid(),
            sid: Some(sid(9001)),
            attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        };
        e.set("cn", s(&cn));
        e.set("sAMAccountName", s(&sam));
        b.domain.entries.push(e);
    }

    // The excluded OU: lab accounts and a lab group (out of scope through the partition's
    // exclude list).
    let lab = EXCLUDED_OU.to_string();
    let mut lab_users = Vec::new();
    for i in 0..10 {
        let g = FIRST[(i * 7) % FIRST.len()];
        let l = "Lab";
        lab_users.push(b.user(
            &lab,
            g,
            &format!("{l}{i}"),
            &format!("lab.{}{i}", fold(g)),
            "Test Account",
            "Lab",
            &SEATTLE,
            None,
            true,
        ));
    }
    b.group(
        &lab,
        "SG-Lab",
        "SG-Lab",
        GLOBAL_SECURITY,
        "Lab test accounts",
        None,
        lab_users.clone(),
    );

    // Groups: per department, nested, mail-enabled, distribution, special characters.
    let gou = format!("OU=Groups,OU=Corp,{BASE}");
    let mut dept_groups = BTreeMap::new();
    for (d, users) in DEPTS.iter().zip(&dept_users) {
        if d.group == "SG-Engineering" {
            continue;
        }
        let dn = b.group(
            &gou,
            d.group,
            d.group,
            GLOBAL_SECURITY,
            &format!(
                "All of {}",
                d.ou.split(',')
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("OU=")
            ),
            None,
            users.clone(),
        );
        dept_groups.insert(d.group, dn);
    }
    let eng_direct = &dept_users[4];
    let mut eng_members: Vec<String> = vec![
        dept_groups["SG-Platform"].clone(),
        dept_groups["SG-Apps"].clone(),
    ];
    eng_members.extend(eng_direct.iter().cloned());
    // A member in the excluded OU: the reference does not reach the cloud.
    eng_members.push(lab_users[0].clone());
    let eng = b.group(
        &gou,
        "SG-Engineering",
        "SG-Engineering",
        GLOBAL_SECURITY,
        "Engineering (nested: Platform, Apps)",
        None,
        eng_members,
    );
    let sales = b.group(
        &gou,
        "SG-Sales",
        "SG-Sales",
        GLOBAL_SECURITY,
        "Sales (nested: EMEA, Americas)",
        None,
        vec![
            dept_groups["SG-Sales-EMEA"].clone(),
            dept_groups["SG-Sales-Americas"].clone(),
            execs[3].clone(),
        ],
    );
    let mut all = vec![eng.clone(), sales.clone()];
    for g in ["SG-Finance", "SG-HR", "SG-Support", "SG-Marketing"] {
        all.push(dept_groups[g].clone());
    }
    all.extend(execs.iter().cloned());
    let all_staff = b.group(
        &gou,
        "SG-All-Staff",
        "SG-All-Staff",
        UNIVERSAL_SECURITY,
        "Everyone (three levels of nesting)",
        None,
        all,
    );
    b.group(
        &gou,
        "Sales Leadership",
        "SalesLeadership",
        UNIVERSAL_SECURITY,
        "Mail-enabled security group",
        Some(&format!("sales-leadership@{MAIL_DOMAIN}")),
        vec![heads[0].clone(), heads[1].clone(), execs[3].clone()],
    );
    b.group(
        &gou,
        "R&D, Special Projects",
        "RnD-Special-Projects",
        GLOBAL_SECURITY,
        "DN with special characters",
        None,
        dept_users[2][1..6].to_vec(),
    );
    b.group(
        &gou,
        "SG-Zürich Office",
        "SG-Zurich-Office",
        GLOBAL_SECURITY,
        "Ünïcödé group name",
        None,
        dept_users[3][10..14].to_vec(),
    );
    b.group(
        &gou,
        "SG-Leadership",
        "SG-Leadership",
        GLOBAL_SECURITY,
        "Department heads and executives",
        None,
        heads.iter().chain(execs.iter()).cloned().collect(),
    );

    // Contacts (imported, not provisioned: Graph orgContact is read-only).
    let cou = format!("OU=Contacts,OU=Corp,{BASE}");
    let mut contacts = Vec::new();
    for (i, (g, sn, company)) in [
        ("Lars", "Berg", "Fabrikam"),
        ("Mei", "Lin", "Tailspin Toys"),
        ("Oğuz", "Yılmaz", "Northwind Traders"),
        ("Pia", "Kühn", "Adventure Works"),
        ("Quentin", "Roux", "Wingtip Toys"),
        ("Ruth", "Adeyemi", "Fabrikam"),
        ("Sanjay", "Rao", "Litware"),
        ("Théa", "Dupont", "Proseware"),
        ("Ulla", "Virtanen", "Fabrikam"),
        ("Victor", "Ortiz", "Contoso Partners"),
        ("Wen", "Zhou", "Tailspin Toys"),
        ("Yara", "Haddad", "Northwind Traders"),
    ]
    .iter()
    .enumerate()
    {
        let cn = format!("{g} {sn}");
        let mail = format!("{}.{}@{}.example", fold(g), fold(sn), fold(company));
        let e = b.entry(
            dn_at("CN", &cn, &cou),
            Kind::Contact,
            vec![
                ("cn", s(&cn)),
                ("givenName", s(g)),
                ("sn", s(sn)),
                ("displayName", s(&format!("{cn} ({company})"))),
                ("mail", s(&mail)),
                ("proxyAddresses", vec![format!("SMTP:{mail}")]),
                ("mailNickname", s(&format!("ext{i:02}"))),
                ("company", s(company)),
            ],
        );
        contacts.push(e.dn.clone());
    }
    let mut partners = contacts.clone();
    partners.push(heads[0].clone());
    b.group(
        &gou,
        "DL-Partners",
        "DL-Partners",
        UNIVERSAL_DISTRIBUTION,
        "Partner contacts (distribution list)",
        Some(&format!("partners@{MAIL_DOMAIN}")),
        partners,
    );
    b.group(
        &gou,
        "DL-Company-News",
        "DL-Company-News",
        UNIVERSAL_DISTRIBUTION,
        "Company news (distribution list)",
        Some(&format!("news@{MAIL_DOMAIN}")),
        vec![all_staff],
    );

    // Workstations (computers are not synchronized by the template).
    let wou = format!("OU=Workstations,OU=Corp,{BASE}");
    for i in 1..=5 {
        let cn = format!("WS-{i:04}");
        b.entry(
            dn_at("CN", &cn, &wou),
            Kind::Computer,
            vec![
                ("cn", s(&cn)),
                ("sAMAccountName", s(&format!("{cn}$"))),
                ("userAccountControl", s("4096")),
                ("dNSHostName", s(&format!("{}.{FQDN}", cn.to_lowercase()))),
            ],
        );
    }
    b.domain
}

// ------------------------------------------------------------------------------------------------
// LDIF rendering
// ------------------------------------------------------------------------------------------------

fn object_classes(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::User => &["top", "person", "organizationalPerson", "user"],
        Kind::Group => &["top", "group"],
        Kind::Contact => &["top", "person", "organizationalPerson", "contact"],
        Kind::Computer => &["top", "person", "organizationalPerson", "user", "computer"],
        Kind::Ou => &["top", "organizationalUnit"],
        Kind::Container => &["top", "container"],
        Kind::Domain => &["top", "domain", "domainDNS"],
    }
}

/// One `name: value` line (base64 when the value is not an RFC 2849 SAFE-STRING).
fn line(out: &mut String, name: &str, value: &str) {
    let safe = value.is_ascii()
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ')
        && !value.contains(['\n', '\r', '\0']);
    if safe {
        out.push_str(&format!("{name}: {value}\n"));
    } else {
        let b = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
        out.push_str(&format!("{name}:: {b}\n"));
    }
}

fn bin_line(out: &mut String, name: &str, value: &[u8]) {
    let b = base64::engine::general_purpose::STANDARD.encode(value);
    out.push_str(&format!("{name}:: {b}\n"));
}

/// The attribute lines of an entry (objectClass, attributes, objectGUID, objectSid).
fn entry_body(out: &mut String, e: &Entry) {
    for c in object_classes(e.kind) {
        line(out, "objectClass", c);
    }
    for (k, vs) in &e.attrs {
        for v in vs {
            line(out, k, v);
        }
    }
    bin_line(out, "objectGUID", &e.guid);
    if let Some(sid) = &e.sid {
        bin_line(out, "objectSid", sid);
    }
}

/// The domain as LDIF content records.
pub fn to_ldif(d: &Domain) -> String {
    let mut out = String::from(
        "# contoso.example: a sample Active Directory domain, as an LDIF export of AD.\n\
         # Generated by examples/ad-sample/model.rs (`cargo run --example ad-sample`); do not edit.\n\
         version: 1\n",
    );
    for e in &d.entries {
        out.push('\n');
        line(&mut out, "dn", &e.dn);
        entry_body(&mut out, e);
    }
    out
}

// ------------------------------------------------------------------------------------------------
// The change set
// ------------------------------------------------------------------------------------------------

/// One change an admin makes in AD.
#[derive(Debug, Clone)]
pub enum Change {
    /// A new object (its parent exists).
    Add(Entry),
    /// Replace the values of attributes.
    Replace(String, Vec<(String, Vec<String>)>),
    /// Rename (new CN) and/or move (new parent).
    Move {
        dn: String,
        new_cn: String,
        new_parent: String,
    },
    /// Delete.
    Delete(String),
    /// Add a member to a group.
    AddMember(String, String),
    /// Remove a member from a group.
    RemoveMember(String, String),
}

/// A named file of changes.
pub struct ChangeFile {
    pub name: &'static str,
    pub what: &'static str,
    pub changes: Vec<Change>,
}

fn pick(d: &Domain, ou: &str, nth: usize) -> Entry {
    d.entries
        .iter()
        .filter(|e| {
            e.kind == Kind::User && dn_key(&dn_parent(&e.dn)) == dn_key(&format!("{ou},{BASE}"))
        })
        .filter(|e| e.get("extensionAttribute15").is_none())
        // Enabled accounts (so that disabling one is a change).
        .filter(|e| {
            e.get("userAccountControl")
                .and_then(|u| u.parse::<i64>().ok())
                .is_some_and(|u| u & 2 == 0)
        })
        .nth(nth)
        .cloned()
        .expect("sample user")
}

/// The bundled change set, against [`domain`].
pub fn change_set(d: &Domain) -> Vec<ChangeFile> {
    let mut rng = Rng::new(0x5EED_0001);
    let emea = format!("OU=EMEA,OU=Sales,OU=Corp,{BASE}");
    let gou = format!("OU=Groups,OU=Corp,{BASE}");
    let head_emea = pick(d, "OU=EMEA,OU=Sales,OU=Corp", 0);
    // 1. A new hire.
    let mut hire = Entry {
        dn: dn_at("CN", "Nina Ødegård", &emea),
        kind: Kind::User,
        guid: rng.guid(),
        sid: Some(sid(20001)),
        attrs: BTreeMap::new(),
    };
    for (k, v) in [
        ("cn", "Nina Ødegård"),
        ("givenName", "Nina"),
        ("sn", "Ødegård"),
        ("displayName", "Nina Ødegård"),
        ("sAMAccountName", "nina.odegard"),
        ("userPrincipalName", "nina.odegard@contoso.example"),
        ("mail", "nina.odegard@contoso.example"),
        ("userAccountControl", "512"),
        ("title", "Account Executive"),
        ("department", "Sales"),
        ("company", "Contoso Ltd."),
        ("physicalDeliveryOfficeName", "London HQ"),
        ("l", "London"),
        ("c", "GB"),
        ("co", "United Kingdom"),
        ("employeeID", "E09001"),
    ] {
        hire.set(k, s(v));
    }
    hire.set("manager", s(&head_emea.dn));
    let hire_dn = hire.dn.clone();
    let promoted = pick(d, "OU=Platform,OU=Engineering,OU=Corp", 3);
    let renamed = pick(d, "OU=Finance,OU=Corp", 4);
    let disabled = pick(d, "OU=Support,OU=Corp", 6);
    let moved = pick(d, "OU=Marketing,OU=Corp", 5);
    let deleted = pick(d, "OU=HR,OU=Corp", 7);
    let joiner = pick(d, "OU=Apps,OU=Engineering,OU=Corp", 8);
    let leaver = pick(d, "OU=Platform,OU=Engineering,OU=Corp", 9);
    let new_sn = "Whitaker-Nakamura";
    let given = renamed.get("givenName").unwrap_or("X").to_string();
    let new_cn = format!("{given} {new_sn}");
    let sam = renamed.get("sAMAccountName").unwrap_or("x").to_string();
    let platform = dn_at("CN", "SG-Platform", &gou);
    let deleted_groups: Vec<String> = d
        .entries
        .iter()
        .filter(|g| {
            g.kind == Kind::Group
                && g.values("member")
                    .iter()
                    .any(|m| dn_key(m) == dn_key(&deleted.dn))
        })
        .map(|g| g.dn.clone())
        .collect();
    let mut delete_changes: Vec<Change> = deleted_groups
        .iter()
        .map(|g| Change::RemoveMember(g.clone(), deleted.dn.clone()))
        .collect();
    delete_changes.push(Change::Delete(deleted.dn.clone()));
    vec![
        ChangeFile {
            name: "0001-new-hire.ldif",
            what: "create: a new hire in Sales EMEA, added to SG-Sales-EMEA",
            changes: vec![
                Change::Add(hire),
                Change::AddMember(dn_at("CN", "SG-Sales-EMEA", &gou), hire_dn),
            ],
        },
        ChangeFile {
            name: "0002-updates.ldif",
            what: "update: a promotion (title, phone) and a surname change (rename)",
            changes: vec![
                Change::Replace(
                    promoted.dn.clone(),
                    vec![
                        ("title".into(), s("Senior Software Engineer")),
                        ("telephoneNumber".into(), s("+47 2200 4242")),
                    ],
                ),
                Change::Move {
                    dn: renamed.dn.clone(),
                    new_cn: new_cn.clone(),
                    new_parent: dn_parent(&renamed.dn),
                },
                Change::Replace(
                    dn_at("CN", &new_cn, &dn_parent(&renamed.dn)),
                    vec![
                        ("sn".into(), s(new_sn)),
                        ("displayName".into(), s(&new_cn)),
                        ("mail".into(), s(&format!("{sam}@{MAIL_DOMAIN}"))),
                    ],
                ),
            ],
        },
        ChangeFile {
            name: "0003-disable-move-delete.ldif",
            what: "disable an account, move one into the excluded OU (out of scope), delete one",
            changes: {
                let mut v = vec![
                    Change::Replace(
                        disabled.dn.clone(),
                        vec![("userAccountControl".into(), s("514"))],
                    ),
                    Change::Move {
                        dn: moved.dn.clone(),
                        new_cn: moved.get("cn").unwrap_or("x").to_string(),
                        new_parent: EXCLUDED_OU.to_string(),
                    },
                ];
                v.extend(delete_changes);
                v
            },
        },
        ChangeFile {
            name: "0004-group-membership.ldif",
            what: "group membership: one joins SG-Platform, one leaves it",
            changes: vec![
                Change::AddMember(platform.clone(), joiner.dn.clone()),
                Change::RemoveMember(platform, leaver.dn.clone()),
            ],
        },
    ]
}

/// Applies changes to the model with AD semantics.
pub fn apply(d: &mut Domain, changes: &[Change]) {
    for c in changes {
        match c {
            Change::Add(e) => d.entries.push(e.clone()),
            Change::Replace(dn, attrs) => {
                let e = d.find_mut(dn).expect("replace target");
                for (k, v) in attrs {
                    e.set(k, v.clone());
                }
            }
            Change::Move {
                dn,
                new_cn,
                new_parent,
            } => {
                let new_dn = dn_at("CN", new_cn, new_parent);
                let e = d.find_mut(dn).expect("move target");
                e.dn = new_dn.clone();
                e.set("cn", s(new_cn));
                d.retarget(dn, &new_dn);
            }
            Change::Delete(dn) => {
                let k = dn_key(dn);
                d.entries.retain(|e| dn_key(&e.dn) != k);
                d.unreference(dn);
            }
            Change::AddMember(g, m) => {
                let e = d.find_mut(g).expect("group");
                let mut v = e.values("member").to_vec();
                v.push(m.clone());
                e.set("member", v);
            }
            Change::RemoveMember(g, m) => {
                let e = d.find_mut(g).expect("group");
                let k = dn_key(m);
                let v: Vec<String> = e
                    .values("member")
                    .iter()
                    .filter(|x| dn_key(x) != k)
                    .cloned()
                    .collect();
                e.set("member", v);
            }
        }
    }
}

/// The LDIF change records of one file.
pub fn changes_to_ldif(f: &ChangeFile) -> String {
    let mut out = format!(
        "# {}\n# Generated by examples/ad-sample/model.rs; do not edit.\nversion: 1\n",
        f.what
    );
    for c in &f.changes {
        out.push('\n');
        match c {
            Change::Add(e) => {
                line(&mut out, "dn", &e.dn);
                out.push_str("changetype: add\n");
                entry_body(&mut out, e);
            }
            Change::Replace(dn, attrs) => {
                line(&mut out, "dn", dn);
                out.push_str("changetype: modify\n");
                for (k, vs) in attrs {
                    out.push_str(&format!("replace: {k}\n"));
                    for v in vs {
                        line(&mut out, k, v);
                    }
                    out.push_str("-\n");
                }
            }
            Change::Move {
                dn,
                new_cn,
                new_parent,
            } => {
                line(&mut out, "dn", dn);
                out.push_str("changetype: modrdn\n");
                line(&mut out, "newrdn", &format!("CN={}", escape_rdn(new_cn)));
                out.push_str("deleteoldrdn: 1\n");
                if dn_key(new_parent) != dn_key(&dn_parent(dn)) {
                    line(&mut out, "newsuperior", new_parent);
                }
            }
            Change::Delete(dn) => {
                line(&mut out, "dn", dn);
                out.push_str("changetype: delete\n");
            }
            Change::AddMember(g, m) | Change::RemoveMember(g, m) => {
                line(&mut out, "dn", g);
                out.push_str("changetype: modify\n");
                let op = if matches!(c, Change::AddMember(..)) {
                    "add"
                } else {
                    "delete"
                };
                out.push_str(&format!("{op}: member\n"));
                line(&mut out, "member", m);
                out.push_str("-\n");
            }
        }
    }
    out
}

/// The restore applied after [`change_set`]: the deleted user comes back from the AD Recycle
/// Bin with its objectGUID and its group memberships (linked values are restored too), so the
/// soft-deleted cloud user is restored rather than created again.
pub fn restore_set(d: &Domain) -> ChangeFile {
    let deleted = pick(d, "OU=HR,OU=Corp", 7);
    let mut changes = vec![Change::Add(deleted.clone())];
    for g in d.entries.iter().filter(|g| {
        g.kind == Kind::Group
            && g.values("member")
                .iter()
                .any(|m| dn_key(m) == dn_key(&deleted.dn))
    }) {
        changes.push(Change::AddMember(g.dn.clone(), deleted.dn.clone()));
    }
    ChangeFile {
        name: "0005-restore.ldif",
        what: "restore: the deleted user comes back from the AD Recycle Bin (same objectGUID, memberships restored)",
        changes,
    }
}

/// Every file of the sample: (path relative to examples/ad-sample, content).
pub fn files() -> Vec<(String, String)> {
    let d = domain();
    let mut out = vec![("contoso.ldif".to_string(), to_ldif(&d))];
    for f in change_set(&d) {
        out.push((format!("changes/{}", f.name), changes_to_ldif(&f)));
    }
    let r = restore_set(&d);
    out.push((format!("restore/{}", r.name), changes_to_ldif(&r)));
    out
}

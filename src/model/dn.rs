//! Distinguished names per RFC 4514: parsing, escaping, building and case-insensitive comparison.

use std::fmt;
use std::hash::{Hash, Hasher};

/// An error while parsing a DN string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DN '{input}' at character {position}: {reason}")]
pub struct DnError {
    /// The text that failed to parse.
    pub input: String,
    /// Zero-based character offset of the problem.
    pub position: usize,
    /// What was wrong.
    pub reason: String,
}

/// One attribute type and value pair inside an RDN (`cn=Smith\, John`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    /// Attribute type as written (`CN`, `ou`, or a dotted OID).
    pub attr: String,
    /// The unescaped value.
    pub value: String,
}

/// A relative distinguished name: one or more AVAs joined by `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    /// The AVAs of this RDN, in written order.
    pub avas: Vec<Ava>,
}

impl Rdn {
    /// A single-valued RDN.
    pub fn new(attr: &str, value: &str) -> Rdn {
        Rdn {
            avas: vec![Ava {
                attr: attr.to_string(),
                value: value.to_string(),
            }],
        }
    }

    /// The value of the first AVA (the usual single-valued case).
    pub fn value(&self) -> &str {
        self.avas.first().map(|a| a.value.as_str()).unwrap_or("")
    }

    /// The attribute type of the first AVA.
    pub fn attr(&self) -> &str {
        self.avas.first().map(|a| a.attr.as_str()).unwrap_or("")
    }
}

impl fmt::Display for Rdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.avas.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{}={}", a.attr, escape_value(&a.value))?;
        }
        Ok(())
    }
}

/// A distinguished name: RDNs from the leaf (first) to the root (last).
///
/// Equality and hashing are case-insensitive on attribute types and values, as directories
/// compare names (`CN=John,DC=Corp` equals `cn=john,dc=corp`).
#[derive(Debug, Clone, Default)]
pub struct Dn {
    /// RDNs, leaf first.
    pub rdns: Vec<Rdn>,
}

impl Dn {
    /// The empty DN (root DSE).
    pub fn root() -> Dn {
        Dn { rdns: Vec::new() }
    }

    /// Parses an RFC 4514 string (also accepting spaces around separators, as LDAPv2 did).
    pub fn parse(input: &str) -> Result<Dn, DnError> {
        Parser::new(input).parse()
    }

    /// True for the empty DN.
    pub fn is_root(&self) -> bool {
        self.rdns.is_empty()
    }

    /// The leaf RDN.
    pub fn rdn(&self) -> Option<&Rdn> {
        self.rdns.first()
    }

    /// The parent DN (empty for a one-RDN DN or the root).
    pub fn parent(&self) -> Dn {
        Dn {
            rdns: self.rdns.iter().skip(1).cloned().collect(),
        }
    }

    /// A child of this DN with the given RDN.
    pub fn child(&self, rdn: Rdn) -> Dn {
        let mut rdns = Vec::with_capacity(self.rdns.len() + 1);
        rdns.push(rdn);
        rdns.extend(self.rdns.iter().cloned());
        Dn { rdns }
    }

    /// True when `self` equals `ancestor` or lies below it.
    pub fn is_within(&self, ancestor: &Dn) -> bool {
        if ancestor.rdns.len() > self.rdns.len() {
            return false;
        }
        let skip = self.rdns.len() - ancestor.rdns.len();
        self.rdns[skip..]
            .iter()
            .zip(&ancestor.rdns)
            .all(|(a, b)| rdn_norm(a) == rdn_norm(b))
    }

    /// Replaces the `old_base` suffix with `new_base` (for subtree renames and moves).
    pub fn rebase(&self, old_base: &Dn, new_base: &Dn) -> Option<Dn> {
        if !self.is_within(old_base) {
            return None;
        }
        let keep = self.rdns.len() - old_base.rdns.len();
        let mut rdns: Vec<Rdn> = self.rdns[..keep].to_vec();
        rdns.extend(new_base.rdns.iter().cloned());
        Some(Dn { rdns })
    }

    /// The normalized form used for comparison and indexing: lower-case types and values,
    /// escaped consistently.
    pub fn normalized(&self) -> String {
        self.rdns.iter().map(rdn_norm).collect::<Vec<_>>().join(",")
    }

    /// Number of RDNs.
    pub fn depth(&self) -> usize {
        self.rdns.len()
    }
}

fn rdn_norm(r: &Rdn) -> String {
    let mut parts: Vec<String> = r
        .avas
        .iter()
        .map(|a| {
            format!(
                "{}={}",
                a.attr.to_ascii_lowercase(),
                escape_value(&a.value.to_lowercase())
            )
        })
        .collect();
    parts.sort();
    parts.join("+")
}

impl PartialEq for Dn {
    fn eq(&self, other: &Self) -> bool {
        self.rdns.len() == other.rdns.len()
            && self
                .rdns
                .iter()
                .zip(&other.rdns)
                .all(|(a, b)| rdn_norm(a) == rdn_norm(b))
    }
}
impl Eq for Dn {}
impl Hash for Dn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.normalized().hash(state)
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Dn {
    type Err = DnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dn::parse(s)
    }
}

impl serde::Serialize for Dn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
impl<'de> serde::Deserialize<'de> for Dn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dn::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Escapes an attribute value for use in a DN string (RFC 4514 section 2.4):
/// `, + " \ < > ;` and `=` anywhere, a leading `#` or space, a trailing space, and NUL.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    let n = value.chars().count();
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

struct Parser<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            input,
            bytes: input.as_bytes(),
            pos: 0,
        }
    }

    fn err(&self, reason: &str) -> DnError {
        DnError {
            input: self.input.to_string(),
            position: self.input[..self.pos.min(self.input.len())].chars().count(),
            reason: reason.to_string(),
        }
    }

    fn skip_spaces(&mut self) {
        while self.pos < self.bytes.len() && self.bytes[self.pos] == b' ' {
            self.pos += 1;
        }
    }

    fn parse(mut self) -> Result<Dn, DnError> {
        let mut rdns = Vec::new();
        self.skip_spaces();
        if self.pos >= self.bytes.len() {
            return Ok(Dn::root());
        }
        loop {
            let mut avas = Vec::new();
            loop {
                avas.push(self.parse_ava()?);
                if self.pos < self.bytes.len() && self.bytes[self.pos] == b'+' {
                    self.pos += 1;
                    continue;
                }
                break;
            }
            rdns.push(Rdn { avas });
            if self.pos >= self.bytes.len() {
                break;
            }
            match self.bytes[self.pos] {
                b',' | b';' => self.pos += 1,
                _ => return Err(self.err("expected ',' between RDNs")),
            }
        }
        Ok(Dn { rdns })
    }

    fn parse_ava(&mut self) -> Result<Ava, DnError> {
        self.skip_spaces();
        let start = self.pos;
        while self.pos < self.bytes.len() {
            let c = self.bytes[self.pos];
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.pos == start {
            return Err(self.err("expected an attribute type"));
        }
        let attr = self.input[start..self.pos].to_string();
        self.skip_spaces();
        if self.pos >= self.bytes.len() || self.bytes[self.pos] != b'=' {
            return Err(self.err("expected '=' after the attribute type"));
        }
        self.pos += 1;
        self.skip_spaces();
        let value = if self.pos < self.bytes.len() && self.bytes[self.pos] == b'#' {
            self.parse_hexstring()?
        } else {
            self.parse_string()?
        };
        Ok(Ava { attr, value })
    }

    fn parse_hexstring(&mut self) -> Result<String, DnError> {
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_hexdigit() {
            self.pos += 1;
        }
        let hex = &self.input[start..self.pos];
        if hex.is_empty() || !hex.len().is_multiple_of(2) {
            return Err(self.err("a '#' value needs an even number of hex digits"));
        }
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
            .collect();
        self.skip_spaces();
        // BER-encoded value: keep the raw bytes as text when it is an OCTET/UTF8 STRING.
        if bytes.len() >= 2
            && (bytes[0] == 0x04 || bytes[0] == 0x0c)
            && let Ok(s) = String::from_utf8(bytes[2..].to_vec())
        {
            return Ok(s);
        }
        Ok(format!("#{hex}"))
    }

    fn parse_string(&mut self) -> Result<String, DnError> {
        let mut raw: Vec<u8> = Vec::new();
        // Length of `raw` up to the last byte that was escaped or non-space: trailing
        // unescaped spaces are insignificant.
        let mut significant = 0;
        while self.pos < self.bytes.len() {
            let c = self.bytes[self.pos];
            match c {
                b',' | b';' | b'+' => break,
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= self.bytes.len() {
                        return Err(self.err("a DN cannot end with '\\'"));
                    }
                    let n = self.bytes[self.pos];
                    if n.is_ascii_hexdigit()
                        && self.pos + 1 < self.bytes.len()
                        && self.bytes[self.pos + 1].is_ascii_hexdigit()
                    {
                        let h = &self.input[self.pos..self.pos + 2];
                        raw.push(
                            u8::from_str_radix(h, 16).map_err(|_| self.err("bad hex escape"))?,
                        );
                        self.pos += 2;
                    } else if b" \"#+,;<=>\\".contains(&n) {
                        raw.push(n);
                        self.pos += 1;
                    } else {
                        return Err(self.err("invalid escape sequence"));
                    }
                    significant = raw.len();
                }
                b'"' => return Err(self.err("unescaped '\"' in a value")),
                _ => {
                    raw.push(c);
                    self.pos += 1;
                    if c != b' ' {
                        significant = raw.len();
                    }
                }
            }
        }
        raw.truncate(significant);
        String::from_utf8(raw).map_err(|_| self.err("escaped bytes are not valid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares_case_insensitively() {
        let a = Dn::parse("CN=John Smith,OU=Sales,DC=corp,DC=example").unwrap();
        let b = Dn::parse("cn=john smith, ou=SALES,dc=CORP,dc=example").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rdn().unwrap().value(), "John Smith");
        assert_eq!(a.parent().to_string(), "OU=Sales,DC=corp,DC=example");
        assert!(a.is_within(&Dn::parse("dc=corp,dc=example").unwrap()));
        assert!(!a.is_within(&Dn::parse("ou=hr,dc=corp,dc=example").unwrap()));
    }

    #[test]
    fn special_characters_round_trip() {
        for v in [
            "Smith, John",
            "a+b",
            "quote\"d",
            "back\\slash",
            "<angle>",
            "semi;colon",
            "eq=ual",
            "#hash",
            " leading",
            "trailing ",
            "Zoë Ünïcødé",
        ] {
            let dn = Dn::root().child(Rdn::new("CN", v));
            let text = dn.to_string();
            let back = Dn::parse(&text).unwrap();
            assert_eq!(back.rdn().unwrap().value(), v, "{text}");
        }
    }

    #[test]
    fn hex_escapes_and_multivalued_rdns() {
        let dn = Dn::parse("cn=Lu\\C4\\8Di\\C4\\87+uid=lu,dc=x").unwrap();
        assert_eq!(dn.rdns[0].avas.len(), 2);
        assert_eq!(dn.rdns[0].avas[0].value, "Lučić");
        assert_eq!(
            Dn::parse("uid=a+cn=b,dc=x").unwrap(),
            Dn::parse("cn=b+uid=a,dc=x").unwrap()
        );
    }

    #[test]
    fn rejects_malformed() {
        assert!(Dn::parse("cn").is_err());
        assert!(Dn::parse("cn=a\\").is_err());
        assert!(Dn::parse("=a").is_err());
        assert!(Dn::parse("cn=a\\zz").is_err());
    }

    #[test]
    fn rebase_moves_subtrees() {
        let dn = Dn::parse("cn=u,ou=old,dc=x").unwrap();
        let moved = dn
            .rebase(
                &Dn::parse("ou=old,dc=x").unwrap(),
                &Dn::parse("ou=new,dc=x").unwrap(),
            )
            .unwrap();
        assert_eq!(moved.to_string(), "cn=u,ou=new,dc=x");
    }
}

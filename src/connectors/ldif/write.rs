//! RFC 2849 writing: content records with base64 where the RFC requires it (and for every
//! non-ASCII value, so that the output is strictly conformant), folded at 76 columns.

use crate::model::{Dn, Object, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// Column at which lines are folded.
const FOLD_AT: usize = 76;

/// The LDIF text form of a value: strings and references as is, integers in decimal,
/// booleans as LDAP `TRUE`/`FALSE`, date-times as GeneralizedTime, binary as raw bytes.
pub(crate) fn value_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::Str(s) | Value::Ref(s) => s.as_bytes().to_vec(),
        Value::Bin(b) => b.clone(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.as_bytes().to_vec(),
        Value::Dt(d) => d.format("%Y%m%d%H%M%SZ").to_string().into_bytes(),
    }
}

/// True when a value cannot be written as an RFC 2849 SAFE-STRING: it starts with a space,
/// colon or `<`, ends with a space, or holds a control character, DEL or any non-ASCII byte.
pub(crate) fn needs_base64(bytes: &[u8]) -> bool {
    match bytes.first() {
        None => return false,
        Some(b' ' | b':' | b'<') => return true,
        _ => {}
    }
    if bytes.last() == Some(&b' ') {
        return true;
    }
    bytes.iter().any(|b| *b < 0x20 || *b >= 0x7f)
}

/// Appends one `name: value` line (or `name:: base64`), folded at 76 columns.
pub(crate) fn push_line(out: &mut String, name: &str, bytes: &[u8], force_base64: bool) {
    let line = if force_base64 || needs_base64(bytes) {
        format!("{name}:: {}", B64.encode(bytes))
    } else if bytes.is_empty() {
        format!("{name}:")
    } else {
        // needs_base64 was false, so the bytes are printable ASCII.
        format!("{name}: {}", String::from_utf8_lossy(bytes))
    };
    fold_into(out, &line);
}

/// Appends `line` folded at [`FOLD_AT`] columns (continuations start with one space).
/// The line is ASCII, so splitting at byte positions is safe.
fn fold_into(out: &mut String, line: &str) {
    let bytes = line.as_bytes();
    if bytes.len() <= FOLD_AT {
        out.push_str(line);
        out.push('\n');
        return;
    }
    let mut pos = 0;
    let mut first = true;
    while pos < bytes.len() {
        let width = if first { FOLD_AT } else { FOLD_AT - 1 };
        let mut end = (pos + width).min(bytes.len());
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        if !first {
            out.push(' ');
        }
        out.push_str(&line[pos..end]);
        out.push('\n');
        pos = end;
        first = false;
    }
}

/// Appends one content record (`dn:` line, then `objectClass`, then the other attributes in
/// case-insensitive alphabetical order), followed by a blank line.
pub(crate) fn push_entry(out: &mut String, dn: &Dn, obj: &Object) {
    push_line(out, "dn", dn.to_string().as_bytes(), false);
    let mut names: Vec<&String> = obj.attributes.keys().collect();
    names.sort_by_key(|n| {
        (
            !n.eq_ignore_ascii_case("objectClass"),
            n.to_ascii_lowercase(),
        )
    });
    for name in names {
        for v in obj.values(name) {
            push_line(out, name, &value_bytes(v), matches!(v, Value::Bin(_)));
        }
    }
    out.push('\n');
}

/// The sort key that orders entries by normalized DN, parents before children: the
/// normalized RDNs from the root down.
pub(crate) fn dn_sort_key(dn: &Dn) -> Vec<String> {
    dn.rdns
        .iter()
        .rev()
        .map(|r| {
            Dn {
                rdns: vec![r.clone()],
            }
            .normalized()
        })
        .collect()
}

/// Renders a whole content file: `version: 1`, then the entries sorted by [`dn_sort_key`].
pub(crate) fn render<'a>(entries: impl Iterator<Item = &'a Object>) -> String {
    let mut sorted: Vec<(Vec<String>, &Object)> =
        entries.map(|o| (dn_sort_key(&o.dn), o)).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("version: 1\n\n");
    for (_, o) in sorted {
        push_entry(&mut out, &o.dn, o);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_only_where_needed() {
        assert!(!needs_base64(b"plain text: ok"));
        assert!(!needs_base64(b""));
        assert!(needs_base64(b" lead"));
        assert!(needs_base64(b":colon"));
        assert!(needs_base64(b"<angle"));
        assert!(needs_base64(b"trail "));
        assert!(needs_base64("Zoë".as_bytes()));
        assert!(needs_base64(b"line\nbreak"));
        assert!(needs_base64(b"nul\0"));
        let mut s = String::new();
        push_line(&mut s, "cn", "Zoë".as_bytes(), false);
        assert_eq!(s, "cn:: Wm/Dqw==\n");
        let mut s = String::new();
        push_line(&mut s, "description", b"", false);
        assert_eq!(s, "description:\n");
    }

    #[test]
    fn folds_at_76_columns() {
        let long = "x".repeat(200);
        let mut s = String::new();
        push_line(&mut s, "description", long.as_bytes(), false);
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines.len() > 2);
        assert!(lines.iter().all(|l| l.len() <= 76));
        assert!(lines[1..].iter().all(|l| l.starts_with(' ')));
        let unfolded: String = lines
            .iter()
            .enumerate()
            .map(|(i, l)| if i == 0 { *l } else { &l[1..] })
            .collect();
        assert_eq!(unfolded, format!("description: {long}"));
    }

    #[test]
    fn parents_sort_before_children() {
        let mut keys: Vec<Vec<String>> = ["cn=z,ou=a,dc=x", "dc=x", "ou=a,dc=x", "cn=b,dc=x"]
            .iter()
            .map(|d| dn_sort_key(&Dn::parse(d).unwrap()))
            .collect();
        keys.sort();
        assert_eq!(keys[0], vec!["dc=x"]);
        assert_eq!(keys[3].len(), 3);
    }
}

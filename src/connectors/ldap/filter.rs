//! Search filter building with RFC 4515 value escaping.

/// Escapes a string for use as an assertion value in a search filter (RFC 4515 section 3):
/// `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes raw bytes (a GUID, a SID) as `\xx` for every byte.
pub fn escape_filter_bytes(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value {
        out.push_str(&format!("\\{b:02x}"));
    }
    out
}

/// `(attr=value)` with the value escaped.
pub fn eq(attr: &str, value: &str) -> String {
    format!("({attr}={})", escape_filter_value(value))
}

/// `(|(objectClass=a)(objectClass=b))` for the configured object classes (`(objectClass=*)` when none).
pub fn any_object_class<'a>(classes: impl IntoIterator<Item = &'a str>) -> String {
    let parts: Vec<String> = classes.into_iter().map(|c| eq("objectClass", c)).collect();
    match parts.len() {
        0 => "(objectClass=*)".to_string(),
        1 => parts.concat(),
        _ => format!("(|{})", parts.concat()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_rfc4515_specials() {
        assert_eq!(
            escape_filter_value("a*b(c)d\\e\0"),
            "a\\2ab\\28c\\29d\\5ce\\00"
        );
        assert_eq!(
            eq("cn", "Smith, John (HR)*"),
            "(cn=Smith, John \\28HR\\29\\2a)"
        );
        assert_eq!(escape_filter_bytes(&[0, 0xab]), "\\00\\ab");
        assert_eq!(any_object_class(["user"]), "(objectClass=user)");
        assert_eq!(
            any_object_class(["a", "b"]),
            "(|(objectClass=a)(objectClass=b))"
        );
    }
}

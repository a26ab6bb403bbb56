//! RFC 2849 parsing: physical lines, line folding, comments, the version line, content records
//! and change records (add, delete, modify, modrdn/moddn), with base64 (`::`) and URL (`:<`)
//! values. Every error names the file and the 1-based line where the record or line starts.

use crate::connectors::ConnectorError;
use crate::model::{Dn, Rdn};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Builds the located input error every LDIF problem becomes.
pub(crate) fn input_error(file: &str, line: usize, message: impl Into<String>) -> ConnectorError {
    ConnectorError::Input {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

/// A raw attribute value as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawValue {
    /// A plain `attr: value` (always valid UTF-8).
    Text(String),
    /// A base64 (`attr:: ...`) or URL (`attr:< ...`) value: raw bytes.
    Bytes(Vec<u8>),
}

impl RawValue {
    /// The raw bytes of the value.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            RawValue::Text(s) => s.as_bytes(),
            RawValue::Bytes(b) => b,
        }
    }
}

/// One `attribute-description: value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttrValue {
    /// 1-based line where the value starts.
    pub line: usize,
    /// Attribute description as written, options included (`userCertificate;binary`).
    pub desc: String,
    /// The value.
    pub value: RawValue,
}

/// A modify operation inside a `changetype: modify` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModOp {
    /// `add: attr`
    Add,
    /// `delete: attr`
    Delete,
    /// `replace: attr`
    Replace,
    /// `increment: attr` (RFC 4525)
    Increment,
}

/// One `add:/delete:/replace:/increment:` block, terminated by `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Modification {
    /// 1-based line of the `op: attr` line.
    pub line: usize,
    /// The operation.
    pub op: ModOp,
    /// The attribute description the block changes.
    pub desc: String,
    /// The values (may be empty: delete all / replace with nothing).
    pub values: Vec<AttrValue>,
}

/// The body of an LDIF record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordBody {
    /// A content record: the full entry.
    Content(Vec<AttrValue>),
    /// `changetype: add`.
    Add(Vec<AttrValue>),
    /// `changetype: delete`.
    Delete,
    /// `changetype: modify`.
    Modify(Vec<Modification>),
    /// `changetype: modrdn` or `moddn`.
    ModDn {
        /// The new leaf RDN.
        new_rdn: Rdn,
        /// Whether the old RDN values are removed from the entry.
        delete_old_rdn: bool,
        /// The new parent, when the entry moves.
        new_superior: Option<Dn>,
    },
}

/// One LDIF record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// 1-based line of the `dn:` line.
    pub line: usize,
    /// The entry's DN.
    pub dn: Dn,
    /// Content or change.
    pub body: RecordBody,
}

/// One logical (unfolded) line with the physical line where it starts.
struct Logical {
    line: usize,
    bytes: Vec<u8>,
}

/// Streams the records of an LDIF file.
pub(crate) struct LdifReader<R: BufRead> {
    input: R,
    file: String,
    /// Directory that relative `file:` URLs resolve against.
    url_base: PathBuf,
    line_no: usize,
    seen_record: bool,
    done: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> LdifReader<R> {
    /// A reader over `input`; `file` names the source in errors; relative `file:` URLs resolve
    /// against `url_base`.
    pub(crate) fn new(input: R, file: &str, url_base: &Path) -> Self {
        LdifReader {
            input,
            file: file.to_string(),
            url_base: url_base.to_path_buf(),
            line_no: 0,
            seen_record: false,
            done: false,
            buf: Vec::new(),
        }
    }

    fn err(&self, line: usize, message: impl Into<String>) -> ConnectorError {
        input_error(&self.file, line, message)
    }

    /// Reads the logical lines of the next record (empty when the input is exhausted).
    fn next_raw(&mut self) -> Result<Vec<Logical>, ConnectorError> {
        let mut lines: Vec<Logical> = Vec::new();
        let mut in_comment = false;
        loop {
            self.buf.clear();
            let n =
                self.input
                    .read_until(b'\n', &mut self.buf)
                    .map_err(|e| ConnectorError::Io {
                        path: self.file.clone(),
                        source: e,
                    })?;
            if n == 0 {
                return Ok(lines);
            }
            self.line_no += 1;
            let mut line: &[u8] = &self.buf;
            if self.line_no == 1 {
                line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            }
            if let Some(l) = line.strip_suffix(b"\n") {
                line = l;
            }
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            if line.is_empty() {
                in_comment = false;
                if lines.is_empty() {
                    continue;
                }
                return Ok(lines);
            }
            if line[0] == b' ' {
                if in_comment {
                    continue;
                }
                match lines.last_mut() {
                    Some(last) => last.bytes.extend_from_slice(&line[1..]),
                    None => {
                        return Err(self.err(
                            self.line_no,
                            "continuation line (starting with a space) without a line to continue",
                        ));
                    }
                }
                continue;
            }
            if line[0] == b'#' {
                in_comment = true;
                continue;
            }
            in_comment = false;
            lines.push(Logical {
                line: self.line_no,
                bytes: line.to_vec(),
            });
        }
    }

    /// Parses the next record, skipping a leading `version:` line.
    fn next_record(&mut self) -> Result<Option<Record>, ConnectorError> {
        loop {
            let mut lines = self.next_raw()?;
            if lines.is_empty() {
                return Ok(None);
            }
            if !self.seen_record {
                self.seen_record = true;
                let first = &lines[0];
                let (name, value) = self.split(first)?;
                if name.eq_ignore_ascii_case("version") {
                    let text = self.text_of(first.line, &name, value)?;
                    if text.trim() != "1" {
                        return Err(self.err(
                            first.line,
                            format!(
                                "unsupported LDIF version '{}' (only 1 is known)",
                                text.trim()
                            ),
                        ));
                    }
                    lines.remove(0);
                    if lines.is_empty() {
                        continue;
                    }
                }
            }
            return self.record(lines).map(Some);
        }
    }

    /// Splits a logical line into its attribute description and value.
    fn split(&self, l: &Logical) -> Result<(String, RawValue), ConnectorError> {
        let Some(colon) = l.bytes.iter().position(|b| *b == b':') else {
            return Err(self.err(
                l.line,
                format!(
                    "expected 'attribute: value', found '{}'",
                    String::from_utf8_lossy(&l.bytes)
                ),
            ));
        };
        let name = std::str::from_utf8(&l.bytes[..colon])
            .ok()
            .filter(|n| valid_description(n))
            .ok_or_else(|| {
                self.err(
                    l.line,
                    format!(
                        "invalid attribute description '{}'",
                        String::from_utf8_lossy(&l.bytes[..colon])
                    ),
                )
            })?
            .to_string();
        let rest = &l.bytes[colon + 1..];
        let value = match rest.first() {
            Some(b':') => {
                let b64: Vec<u8> = rest[1..]
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                RawValue::Bytes(B64.decode(&b64).map_err(|e| {
                    self.err(
                        l.line,
                        format!("attribute '{name}': invalid base64 value: {e}"),
                    )
                })?)
            }
            Some(b'<') => {
                let url = std::str::from_utf8(&rest[1..])
                    .map_err(|_| self.err(l.line, format!("attribute '{name}': URL is not UTF-8")))?
                    .trim();
                RawValue::Bytes(self.read_url(l.line, &name, url)?)
            }
            _ => {
                let start = rest.iter().position(|b| *b != b' ').unwrap_or(rest.len());
                let text = std::str::from_utf8(&rest[start..]).map_err(|_| {
                    self.err(
                        l.line,
                        format!("attribute '{name}': value is not valid UTF-8 (use base64 '::')"),
                    )
                })?;
                RawValue::Text(text.to_string())
            }
        };
        Ok((name, value))
    }

    fn read_url(&self, line: usize, name: &str, url: &str) -> Result<Vec<u8>, ConnectorError> {
        let Some(path) = url.strip_prefix("file://") else {
            return Err(self.err(
                line,
                format!("attribute '{name}': only file:// URLs are supported, found '{url}'"),
            ));
        };
        let path = Path::new(path);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.url_base.join(path)
        };
        let cannot = |e: std::io::Error| {
            self.err(
                line,
                format!("attribute '{name}': cannot read {}: {e}", path.display()),
            )
        };
        // Only files inside the LDIF file's folder: a change file dropped by someone else must
        // not pull arbitrary local files (keys, passwords) into the directory.
        let real = path.canonicalize().map_err(cannot)?;
        let base = self.url_base.canonicalize().map_err(cannot)?;
        if !real.starts_with(&base) {
            return Err(self.err(
                line,
                format!(
                    "attribute '{name}': {} is outside the folder of the LDIF file",
                    path.display()
                ),
            ));
        }
        std::fs::read(&real).map_err(cannot)
    }

    fn text_of(&self, line: usize, name: &str, value: RawValue) -> Result<String, ConnectorError> {
        match value {
            RawValue::Text(s) => Ok(s),
            RawValue::Bytes(b) => String::from_utf8(b)
                .map_err(|_| self.err(line, format!("'{name}' value is not valid UTF-8"))),
        }
    }

    fn dn_of(&self, line: usize, name: &str, value: RawValue) -> Result<Dn, ConnectorError> {
        let text = self.text_of(line, name, value)?;
        Dn::parse(&text).map_err(|e| self.err(line, format!("'{name}': {e}")))
    }

    fn record(&self, lines: Vec<Logical>) -> Result<Record, ConnectorError> {
        let mut it = lines.into_iter().peekable();
        let Some(first) = it.next() else {
            return Err(self.err(self.line_no, "empty record"));
        };
        let (name, value) = self.split(&first)?;
        if !name.eq_ignore_ascii_case("dn") {
            return Err(self.err(
                first.line,
                format!("a record must start with 'dn:', found '{name}:'"),
            ));
        }
        let line = first.line;
        let dn = self.dn_of(line, "dn", value)?;
        let mut parsed: Vec<(usize, String, RawValue, Vec<u8>)> = Vec::new();
        for l in it {
            if l.bytes.iter().all(|b| *b == b' ') {
                continue;
            }
            if trim_spaces(&l.bytes) == b"-" {
                parsed.push((
                    l.line,
                    "-".to_string(),
                    RawValue::Text(String::new()),
                    l.bytes,
                ));
                continue;
            }
            let (n, v) = self.split(&l)?;
            parsed.push((l.line, n, v, l.bytes));
        }
        let mut idx = 0;
        // Controls come before the changetype (change records only).
        while idx < parsed.len() && parsed[idx].1.eq_ignore_ascii_case("control") {
            tracing::debug!(file = %self.file, line = parsed[idx].0, "ignoring LDIF control");
            idx += 1;
        }
        let is_change = idx < parsed.len() && parsed[idx].1.eq_ignore_ascii_case("changetype");
        if !is_change {
            if idx > 0 {
                return Err(self.err(parsed[0].0, "'control:' is only allowed in change records"));
            }
            let attrs = self.attr_values(parsed)?;
            return Ok(Record {
                line,
                dn,
                body: RecordBody::Content(attrs),
            });
        }
        let (ct_line, _, ct_value, _) = parsed[idx].clone();
        let changetype = self.text_of(ct_line, "changetype", ct_value)?;
        let rest: Vec<_> = parsed.split_off(idx + 1);
        let body = match changetype.trim().to_ascii_lowercase().as_str() {
            "add" => {
                if rest.is_empty() {
                    return Err(self.err(ct_line, "'changetype: add' without attributes"));
                }
                RecordBody::Add(self.attr_values(rest)?)
            }
            "delete" => {
                if let Some((l, n, ..)) = rest.first() {
                    return Err(
                        self.err(*l, format!("unexpected '{n}:' after 'changetype: delete'"))
                    );
                }
                RecordBody::Delete
            }
            "modify" => RecordBody::Modify(self.modifications(rest)?),
            "modrdn" | "moddn" => self.moddn(ct_line, rest)?,
            other => {
                return Err(self.err(
                    ct_line,
                    format!("unknown changetype '{other}' (add, delete, modify, modrdn, moddn)"),
                ));
            }
        };
        Ok(Record { line, dn, body })
    }

    fn attr_values(
        &self,
        parsed: Vec<(usize, String, RawValue, Vec<u8>)>,
    ) -> Result<Vec<AttrValue>, ConnectorError> {
        parsed
            .into_iter()
            .map(|(line, desc, value, _)| {
                if desc == "-" {
                    return Err(self.err(line, "unexpected '-' outside a modify record"));
                }
                if desc.eq_ignore_ascii_case("changetype") || desc.eq_ignore_ascii_case("dn") {
                    return Err(self.err(line, format!("unexpected '{desc}:' inside a record")));
                }
                Ok(AttrValue { line, desc, value })
            })
            .collect()
    }

    fn modifications(
        &self,
        parsed: Vec<(usize, String, RawValue, Vec<u8>)>,
    ) -> Result<Vec<Modification>, ConnectorError> {
        let mut out: Vec<Modification> = Vec::new();
        let mut current: Option<Modification> = None;
        for (line, name, value, _) in parsed {
            if name == "-" {
                match current.take() {
                    Some(m) => out.push(m),
                    None => return Err(self.err(line, "'-' without a modify operation")),
                }
                continue;
            }
            match current.as_mut() {
                None => {
                    let op = match name.to_ascii_lowercase().as_str() {
                        "add" => ModOp::Add,
                        "delete" => ModOp::Delete,
                        "replace" => ModOp::Replace,
                        "increment" => ModOp::Increment,
                        _ => {
                            return Err(self.err(
                                line,
                                format!(
                                    "expected 'add:', 'delete:' or 'replace:' in a modify record, found '{name}:'"
                                ),
                            ));
                        }
                    };
                    let desc = self.text_of(line, &name, value)?.trim().to_string();
                    if !valid_description(&desc) {
                        return Err(self.err(
                            line,
                            format!("invalid attribute description '{desc}' after '{name}:'"),
                        ));
                    }
                    current = Some(Modification {
                        line,
                        op,
                        desc,
                        values: Vec::new(),
                    });
                }
                Some(m) => {
                    if !name.eq_ignore_ascii_case(&m.desc) {
                        return Err(self.err(
                            line,
                            format!(
                                "attribute '{name}' inside the '{}' block of line {} (missing '-'?)",
                                m.desc, m.line
                            ),
                        ));
                    }
                    m.values.push(AttrValue {
                        line,
                        desc: name,
                        value,
                    });
                }
            }
        }
        // RFC 2849 requires the final '-', but many tools omit it: accept.
        if let Some(m) = current {
            out.push(m);
        }
        Ok(out)
    }

    fn moddn(
        &self,
        ct_line: usize,
        parsed: Vec<(usize, String, RawValue, Vec<u8>)>,
    ) -> Result<RecordBody, ConnectorError> {
        let mut new_rdn: Option<Rdn> = None;
        let mut delete_old: Option<bool> = None;
        let mut new_superior: Option<Dn> = None;
        for (line, name, value, _) in parsed {
            match name.to_ascii_lowercase().as_str() {
                "newrdn" => {
                    let dn = self.dn_of(line, "newrdn", value)?;
                    if dn.rdns.len() != 1 {
                        return Err(self.err(line, "'newrdn' must be exactly one RDN"));
                    }
                    new_rdn = dn.rdns.into_iter().next();
                }
                "deleteoldrdn" => {
                    let t = self.text_of(line, "deleteoldrdn", value)?;
                    delete_old = Some(match t.trim() {
                        "0" => false,
                        "1" => true,
                        other => {
                            return Err(self.err(
                                line,
                                format!("'deleteoldrdn' must be 0 or 1, found '{other}'"),
                            ));
                        }
                    });
                }
                "newsuperior" => new_superior = Some(self.dn_of(line, "newsuperior", value)?),
                _ => {
                    return Err(self.err(line, format!("unexpected '{name}:' in a modrdn record")));
                }
            }
        }
        let new_rdn =
            new_rdn.ok_or_else(|| self.err(ct_line, "modrdn record without 'newrdn:'"))?;
        let delete_old_rdn =
            delete_old.ok_or_else(|| self.err(ct_line, "modrdn record without 'deleteoldrdn:'"))?;
        Ok(RecordBody::ModDn {
            new_rdn,
            delete_old_rdn,
            new_superior,
        })
    }
}

impl<R: BufRead> Iterator for LdifReader<R> {
    type Item = Result<Record, ConnectorError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn trim_spaces(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| *c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|c| *c != b' ').map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// RFC 2849 attribute description: a name (`[A-Za-z][A-Za-z0-9-]*`) or numeric OID, then
/// `;option` parts.
pub(crate) fn valid_description(desc: &str) -> bool {
    let mut parts = desc.split(';');
    let Some(name) = parts.next() else {
        return false;
    };
    let name_ok = match name.as_bytes().first() {
        Some(c) if c.is_ascii_alphabetic() => {
            name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        }
        Some(c) if c.is_ascii_digit() => name
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())),
        _ => false,
    };
    name_ok
        && parts.all(|o| !o.is_empty() && o.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

/// Parses a whole LDIF text (for tests and small inputs).
#[cfg(test)]
pub(crate) fn parse_str(text: &str) -> Result<Vec<Record>, ConnectorError> {
    LdifReader::new(text.as_bytes(), "test.ldif", Path::new(".")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_line(text: &str) -> (usize, String) {
        match parse_str(text) {
            Err(ConnectorError::Input { line, message, .. }) => (line, message),
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn content_records_with_folding_comments_and_base64() {
        let text = "version: 1\n\n# a comment\n  folded comment\ndn: cn=John Sm\n ith,dc=x\nobjectClass: person\ncn:: Sm9obiBTbWl0aA==\ndescription:\n\ndn: cn=b,dc=x\r\nsn: B\r\n";
        let recs = parse_str(text).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].line, 5);
        assert_eq!(recs[0].dn, Dn::parse("cn=john smith,dc=x").unwrap());
        let RecordBody::Content(attrs) = &recs[0].body else {
            panic!("content expected")
        };
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[1].value, RawValue::Bytes(b"John Smith".to_vec()));
        assert_eq!(attrs[1].line, 8);
        assert_eq!(attrs[2].value, RawValue::Text(String::new()));
        assert_eq!(recs[1].line, 11);
    }

    #[test]
    fn version_line_directly_before_first_record() {
        let recs = parse_str("version: 1\ndn: cn=a\ncn: a\n").unwrap();
        assert_eq!(recs.len(), 1);
        let (line, msg) = err_line("version: 2\n\ndn: cn=a\ncn: a\n");
        assert_eq!(line, 1);
        assert!(msg.contains("version"), "{msg}");
    }

    #[test]
    fn change_records() {
        let text = "dn: cn=a,dc=x\nchangetype: modify\nadd: mail\nmail: a@x\n-\ndelete: phone\n-\nreplace: sn\nsn: A\nsn: B\n-\n\n\
                    dn: cn=a,dc=x\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 1\nnewsuperior: ou=y,dc=x\n\n\
                    dn: cn=c,dc=x\ncontrol: 1.2.3 true\nchangetype: delete\n\n\
                    dn: cn=d,dc=x\nchangetype: add\ncn: d\n";
        let recs = parse_str(text).unwrap();
        assert_eq!(recs.len(), 4);
        let RecordBody::Modify(mods) = &recs[0].body else {
            panic!("modify")
        };
        assert_eq!(mods.len(), 3);
        assert_eq!(mods[0].op, ModOp::Add);
        assert_eq!(mods[1].op, ModOp::Delete);
        assert!(mods[1].values.is_empty());
        assert_eq!(mods[2].values.len(), 2);
        assert_eq!(mods[2].line, 8);
        let RecordBody::ModDn {
            new_rdn,
            delete_old_rdn,
            new_superior,
        } = &recs[1].body
        else {
            panic!("moddn")
        };
        assert_eq!(new_rdn.value(), "b");
        assert!(*delete_old_rdn);
        assert_eq!(new_superior.as_ref().unwrap().to_string(), "ou=y,dc=x");
        assert_eq!(recs[2].body, RecordBody::Delete);
        assert!(matches!(recs[3].body, RecordBody::Add(_)));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(err_line("dn: cn=a\ncn: a\nbogus line\n").0, 3);
        assert_eq!(err_line("cn: a\n").0, 1);
        assert_eq!(err_line("dn: cn=a\ncn:: !!!notbase64\n").0, 2);
        assert_eq!(err_line(" x\n").0, 1);
        assert_eq!(err_line("dn: cn=a\n\ndn: cn\n").0, 3);
        assert_eq!(err_line("dn: cn=a\nchangetype: frob\n").0, 2);
        assert_eq!(
            err_line("dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\n").0,
            2
        );
        assert_eq!(
            err_line("dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 2\n").0,
            4
        );
        assert_eq!(
            err_line("dn: cn=a\nchangetype: modify\nadd: mail\nsn: x\n").0,
            4
        );
        assert_eq!(err_line("dn: cn=a\nchangetype: modify\nfrob: mail\n").0, 3);
        assert_eq!(err_line("dn: cn=a\nchangetype: delete\ncn: a\n").0, 3);
        assert_eq!(err_line("dn: cn=a\nbad_name: a\n").0, 2);
        assert_eq!(err_line("dn: cn=a\ncn:< http://x/y\n").0, 2);
        let mut bytes = b"dn: cn=a\ncn: ".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let r: Result<Vec<Record>, _> =
            LdifReader::new(bytes.as_slice(), "b.ldif", Path::new(".")).collect();
        assert!(r.unwrap_err().to_string().starts_with("b.ldif:2:"));
    }

    #[test]
    fn file_urls_and_options() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("photo.bin"), [1u8, 2, 3]).unwrap();
        let text = "dn: cn=a\njpegPhoto:< file://photo.bin\nuserCertificate;binary:: AAE=\n";
        let recs: Vec<Record> = LdifReader::new(text.as_bytes(), "t", dir.path())
            .collect::<Result<_, _>>()
            .unwrap();
        let RecordBody::Content(a) = &recs[0].body else {
            panic!()
        };
        assert_eq!(a[0].value, RawValue::Bytes(vec![1, 2, 3]));
        assert_eq!(a[1].desc, "userCertificate;binary");
        assert_eq!(
            err_line("dn: cn=a\njpegPhoto:< file:///nonexistent/x\n").0,
            2
        );
    }

    #[test]
    fn descriptions() {
        assert!(valid_description("cn"));
        assert!(valid_description("userCertificate;binary"));
        assert!(valid_description("2.5.4.3"));
        assert!(valid_description("mS-DS-ConsistencyGuid"));
        assert!(!valid_description("1cn"));
        assert!(!valid_description("cn;"));
        assert!(!valid_description("c n"));
        assert!(!valid_description(""));
    }
}

//! CSV connector for HR exports.
//!
//! One row per object, one column per attribute; the header is required. The anchor is a
//! configurable column; the DN is synthetic, built from [`CsvSettings::dn_template`]. Files
//! may start with a UTF-8 BOM. Empty cells mean "no value"; multi-valued columns split on a
//! separator. There is no change feed: the engine runs a full import and computes the
//! changes itself. Export rewrites the file atomically with the same columns.
//!
//! ```toml
//! [[connectors]]
//! name = "hr"
//! type = "csv"
//! [connectors.settings]
//! path = "hr.csv"
//! anchor_column = "employeeId"
//! dn_template = "CN={displayName},OU={department},DC=hr"
//! multi_valued_columns = ["roles"]
//! ignore_columns = ["salary"]
//! [connectors.settings.column_types]
//! hireDate = "datetime"
//! active = "boolean"
//! ```

use crate::connectors::ldif::write_atomic;
use crate::connectors::{
    Capabilities, Connector, ConnectorError, ConnectorSpaceView, ExportErrorKind, ExportOperation,
    ExportOutcome, ExportRequest, ExportResult, ImportChange, ImportSink, Watermark,
};
use crate::model::{
    AttrType, AttributeChange, AttributeDef, Attributes, Dn, Object, ObjectTypeDef, Schema, Value,
    escape_dn_value,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A CSV reader over the file (after the BOM).
type FileReader = csv::Reader<BufReader<std::fs::File>>;

/// Settings of a CSV connector (the `settings` table of a connector of type `csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSettings {
    /// The CSV file, relative to the base directory given to [`CsvConnector::new`].
    pub path: PathBuf,
    /// The column holding the anchor (employee number, HR id). Required, unique, non-empty.
    pub anchor_column: String,
    /// Object type of every row (default `person`).
    #[serde(default = "default_object_type")]
    pub object_type: String,
    /// Template of the synthetic DN (default `CN={anchor}`): `{column}` is replaced by the
    /// RFC 4514-escaped cell value, `{anchor}` by the anchor, `{{` and `}}` are literal braces.
    #[serde(default = "default_dn_template")]
    pub dn_template: String,
    /// Field delimiter, one ASCII character (default `,`).
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Separator between the values of a multi-valued cell (default `;`).
    #[serde(default = "default_separator")]
    pub multi_value_separator: String,
    /// Columns whose cells hold several values.
    #[serde(default)]
    pub multi_valued_columns: Vec<String>,
    /// Column types (default string). Binary cells are base64.
    #[serde(default)]
    pub column_types: BTreeMap<String, AttrType>,
    /// Columns that are not imported (and kept unchanged by export).
    #[serde(default)]
    pub ignore_columns: Vec<String>,
}

fn default_object_type() -> String {
    "person".into()
}
fn default_dn_template() -> String {
    "CN={anchor}".into()
}
fn default_delimiter() -> String {
    ",".into()
}
fn default_separator() -> String {
    ";".into()
}

impl CsvSettings {
    /// Settings for `path` with `anchor_column` and every other setting at its default.
    pub fn new(path: impl Into<PathBuf>, anchor_column: &str) -> CsvSettings {
        CsvSettings {
            path: path.into(),
            anchor_column: anchor_column.to_string(),
            object_type: default_object_type(),
            dn_template: default_dn_template(),
            delimiter: default_delimiter(),
            multi_value_separator: default_separator(),
            multi_valued_columns: Vec::new(),
            column_types: BTreeMap::new(),
            ignore_columns: Vec::new(),
        }
    }
}

/// One piece of a DN template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Column(String),
}

fn parse_template(t: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => return Err(format!("unclosed '{{' in '{t}'")),
                        Some(ch) => name.push(ch),
                    }
                }
                if name.trim().is_empty() {
                    return Err(format!("empty placeholder '{{}}' in '{t}'"));
                }
                if !lit.is_empty() {
                    out.push(Segment::Literal(std::mem::take(&mut lit)));
                }
                out.push(Segment::Column(name.trim().to_string()));
            }
            '}' => return Err(format!("unmatched '}}' in '{t}'")),
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Segment::Literal(lit));
    }
    Ok(out)
}

/// The header of a file, resolved against the settings.
#[derive(Debug, Clone)]
struct Header {
    names: Vec<String>,
    anchor: usize,
    /// Per column: imported (not ignored), multi-valued, type.
    cols: Vec<(bool, bool, AttrType)>,
    /// Template segments resolved to column indexes (`None`: the anchor).
    template: Vec<Result<String, Option<usize>>>,
}

impl Header {
    fn index(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|n| n == name)
            .or_else(|| self.names.iter().position(|n| n.eq_ignore_ascii_case(name)))
    }
}

/// A file read into memory.
struct Table {
    bom: bool,
    header: Header,
    /// (line, cells); `None` for rows deleted by an export.
    rows: Vec<Option<(usize, Vec<String>)>>,
}

/// The CSV connector. See the module documentation.
#[derive(Debug)]
pub struct CsvConnector {
    path: PathBuf,
    settings: CsvSettings,
    delimiter: u8,
    template: Vec<Segment>,
}

impl CsvConnector {
    /// Creates the connector; the path resolves against `base_dir`.
    pub fn new(settings: CsvSettings, base_dir: &Path) -> Result<Self, ConnectorError> {
        let cfg = |m: String| ConnectorError::Config(format!("csv: {m}"));
        if settings.path.as_os_str().is_empty() {
            return Err(cfg("'path' is empty".into()));
        }
        if settings.anchor_column.trim().is_empty() {
            return Err(cfg("'anchor_column' is empty".into()));
        }
        let delimiter = match settings.delimiter.as_bytes() {
            [b] if b.is_ascii() && *b != b'"' && *b != b'\n' && *b != b'\r' => *b,
            _ => {
                return Err(cfg(format!(
                    "'delimiter' must be one ASCII character other than a quote or line break, found '{}'",
                    settings.delimiter
                )));
            }
        };
        if settings.multi_value_separator.is_empty() {
            return Err(cfg("'multi_value_separator' is empty".into()));
        }
        if settings
            .ignore_columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&settings.anchor_column))
        {
            return Err(cfg(format!(
                "the anchor column '{}' cannot be ignored",
                settings.anchor_column
            )));
        }
        if settings
            .multi_valued_columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&settings.anchor_column))
        {
            return Err(cfg(format!(
                "the anchor column '{}' cannot be multi-valued",
                settings.anchor_column
            )));
        }
        let template =
            parse_template(&settings.dn_template).map_err(|m| cfg(format!("dn_template: {m}")))?;
        Ok(CsvConnector {
            path: base_dir.join(&settings.path),
            settings,
            delimiter,
            template,
        })
    }

    fn file_label(&self) -> String {
        self.path.display().to_string()
    }

    fn err(&self, line: usize, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Input {
            file: self.file_label(),
            line,
            message: message.into(),
        }
    }

    fn listed(list: &[String], name: &str) -> bool {
        list.iter().any(|c| c.eq_ignore_ascii_case(name))
    }

    fn column_type(&self, name: &str) -> AttrType {
        self.settings
            .column_types
            .get(name)
            .or_else(|| {
                self.settings
                    .column_types
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, t)| t)
            })
            .copied()
            .unwrap_or(AttrType::String)
    }

    /// Resolves a header row against the settings.
    fn header(&self, names: Vec<String>) -> Result<Header, ConnectorError> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() {
                return Err(self.err(1, format!("header column {} has no name", i + 1)));
            }
            if let Some(first) = seen.insert(n.to_lowercase(), i) {
                return Err(self.err(
                    1,
                    format!(
                        "duplicate column '{n}' in the header (columns {} and {})",
                        first + 1,
                        i + 1
                    ),
                ));
            }
        }
        let find = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
        let anchor = find(&self.settings.anchor_column).ok_or_else(|| {
            self.err(
                1,
                format!(
                    "the anchor column '{}' is missing from the header",
                    self.settings.anchor_column
                ),
            )
        })?;
        let mut template = Vec::new();
        for seg in &self.template {
            template.push(match seg {
                Segment::Literal(l) => Ok(l.clone()),
                Segment::Column(c) => match find(c) {
                    Some(i) => Err(Some(i)),
                    None if c.eq_ignore_ascii_case("anchor") => Err(None),
                    None => {
                        return Err(self.err(
                            1,
                            format!("dn_template refers to column '{c}', which the header lacks"),
                        ));
                    }
                },
            });
        }
        for c in self
            .settings
            .column_types
            .keys()
            .chain(&self.settings.multi_valued_columns)
            .chain(&self.settings.ignore_columns)
        {
            if find(c).is_none() {
                tracing::warn!(file = %self.file_label(), column = %c, "configured column not in the header");
            }
        }
        let cols = names
            .iter()
            .map(|n| {
                (
                    !Self::listed(&self.settings.ignore_columns, n),
                    Self::listed(&self.settings.multi_valued_columns, n),
                    self.column_type(n),
                )
            })
            .collect();
        Ok(Header {
            names,
            anchor,
            cols,
            template,
        })
    }

    /// Opens the file, skipping a UTF-8 BOM. `None` when the file does not exist.
    fn open(&self) -> Result<Option<(bool, FileReader)>, ConnectorError> {
        let io = |e| ConnectorError::Io {
            path: self.file_label(),
            source: e,
        };
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let mut r = BufReader::new(f);
        let bom = r.fill_buf().map_err(io)?.starts_with(b"\xEF\xBB\xBF");
        if bom {
            r.consume(3);
        }
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .from_reader(r);
        Ok(Some((bom, rdr)))
    }

    /// Reads the next record as UTF-8 cells with its line; `None` at the end.
    fn next_row<R: Read>(
        &self,
        rdr: &mut csv::Reader<R>,
        rec: &mut csv::ByteRecord,
    ) -> Result<Option<(usize, Vec<String>)>, ConnectorError> {
        let more = rdr.read_byte_record(rec).map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            match e.into_kind() {
                csv::ErrorKind::Io(source) => ConnectorError::Io {
                    path: self.file_label(),
                    source,
                },
                other => self.err(line, format!("malformed CSV: {other:?}")),
            }
        })?;
        if !more {
            return Ok(None);
        }
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let mut cells = Vec::with_capacity(rec.len());
        for (i, field) in rec.iter().enumerate() {
            match std::str::from_utf8(field) {
                Ok(s) => cells.push(s.to_string()),
                Err(e) => {
                    return Err(self.err(
                        line,
                        format!(
                            "field {} is not valid UTF-8 (byte {})",
                            i + 1,
                            e.valid_up_to()
                        ),
                    ));
                }
            }
        }
        Ok(Some((line, cells)))
    }

    /// Reads the header; an empty file is an error.
    fn read_header<R: Read>(
        &self,
        rdr: &mut csv::Reader<R>,
        rec: &mut csv::ByteRecord,
    ) -> Result<Header, ConnectorError> {
        let Some((_, names)) = self.next_row(rdr, rec)? else {
            return Err(self.err(1, "the file is empty: a header row is required"));
        };
        self.header(names.into_iter().map(|n| n.trim().to_string()).collect())
    }

    /// Parses one cell into values.
    fn cell_values(
        &self,
        h: &Header,
        line: usize,
        col: usize,
        cell: &str,
    ) -> Result<Vec<Value>, ConnectorError> {
        let (_, multi, ty) = h.cols[col];
        if cell.trim().is_empty() {
            return Ok(Vec::new());
        }
        let parts: Vec<&str> = if multi {
            cell.split(self.settings.multi_value_separator.as_str())
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect()
        } else {
            vec![cell]
        };
        parts
            .into_iter()
            .map(|p| {
                let v = match ty {
                    AttrType::Binary => B64
                        .decode(p.trim())
                        .map(Value::Bin)
                        .map_err(|e| format!("'{p}' is not base64: {e}")),
                    _ => Value::parse_as(p, ty),
                };
                v.map_err(|m| self.err(line, format!("column '{}': {m}", h.names[col])))
            })
            .collect()
    }

    /// Builds the DN of a row from the template.
    fn row_dn(&self, h: &Header, line: usize, cells: &[String]) -> Result<Dn, ConnectorError> {
        let mut text = String::new();
        for seg in &h.template {
            match seg {
                Ok(lit) => text.push_str(lit),
                Err(col) => {
                    let idx = col.unwrap_or(h.anchor);
                    // Raw cell: leading and trailing spaces are kept (and escaped).
                    let cell = cells.get(idx).map(String::as_str).unwrap_or("");
                    let value = if h.cols[idx].1 {
                        cell.split(self.settings.multi_value_separator.as_str())
                            .map(str::trim)
                            .find(|p| !p.is_empty())
                            .unwrap_or("")
                    } else {
                        cell
                    };
                    if value.trim().is_empty() {
                        return Err(self.err(
                            line,
                            format!(
                                "column '{}' is empty but dn_template needs it",
                                h.names[idx]
                            ),
                        ));
                    }
                    text.push_str(&escape_dn_value(value));
                }
            }
        }
        Dn::parse(&text).map_err(|e| self.err(line, format!("dn_template gives a bad DN: {e}")))
    }

    /// Converts one row into an object.
    fn row_object(
        &self,
        h: &Header,
        line: usize,
        cells: &[String],
    ) -> Result<Object, ConnectorError> {
        if cells.len() != h.names.len() {
            return Err(self.err(
                line,
                format!(
                    "expected {} fields as in the header, found {}",
                    h.names.len(),
                    cells.len()
                ),
            ));
        }
        let anchor = cells[h.anchor].trim();
        if anchor.is_empty() {
            return Err(self.err(
                line,
                format!("empty anchor in column '{}'", h.names[h.anchor]),
            ));
        }
        let dn = self.row_dn(h, line, cells)?;
        let mut obj = Object::new(Some(anchor.to_string()), dn, &self.settings.object_type);
        for (i, cell) in cells.iter().enumerate() {
            if !h.cols[i].0 {
                continue;
            }
            let values = if i == h.anchor {
                vec![
                    Value::parse_as(anchor, h.cols[i].2)
                        .map_err(|m| self.err(line, format!("column '{}': {m}", h.names[i])))?,
                ]
            } else {
                self.cell_values(h, line, i, cell)?
            };
            obj.set(&h.names[i], values);
        }
        Ok(obj)
    }

    /// Streams the objects of the file with their lines, checking anchor and DN uniqueness.
    fn read_objects(
        &self,
        mut f: impl FnMut(Object, usize) -> Result<(), ConnectorError>,
    ) -> Result<(), ConnectorError> {
        let Some((_, mut rdr)) = self.open()? else {
            return Err(ConnectorError::Io {
                path: self.file_label(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
            });
        };
        let mut rec = csv::ByteRecord::new();
        let h = self.read_header(&mut rdr, &mut rec)?;
        let mut anchors: HashMap<String, usize> = HashMap::new();
        let mut dns: HashMap<String, usize> = HashMap::new();
        while let Some((line, cells)) = self.next_row(&mut rdr, &mut rec)? {
            let obj = self.row_object(&h, line, &cells)?;
            let anchor = obj.anchor.clone().unwrap_or_default();
            if let Some(first) = anchors.insert(anchor.clone(), line) {
                return Err(self.err(
                    line,
                    format!(
                        "duplicate anchor '{anchor}' in column '{}' (first at line {first})",
                        h.names[h.anchor]
                    ),
                ));
            }
            if let Some(first) = dns.insert(obj.dn.normalized(), line) {
                return Err(self.err(
                    line,
                    format!(
                        "duplicate DN '{}' (first at line {first}); make dn_template unique, e.g. include {{anchor}}",
                        obj.dn
                    ),
                ));
            }
            f(obj, line)?;
        }
        Ok(())
    }

    /// Reads the whole file for an export; `None` when it does not exist.
    fn read_table(&self) -> Result<Option<Table>, ConnectorError> {
        let Some((bom, mut rdr)) = self.open()? else {
            return Ok(None);
        };
        let mut rec = csv::ByteRecord::new();
        let header = self.read_header(&mut rdr, &mut rec)?;
        let mut rows = Vec::new();
        while let Some((line, cells)) = self.next_row(&mut rdr, &mut rec)? {
            if cells.len() != header.names.len() {
                return Err(self.err(
                    line,
                    format!(
                        "expected {} fields as in the header, found {}",
                        header.names.len(),
                        cells.len()
                    ),
                ));
            }
            rows.push(Some((line, cells)));
        }
        Ok(Some(Table { bom, header, rows }))
    }

    /// The columns of a new file: the anchor, configured columns, then every attribute the
    /// batch adds, in name order.
    fn new_header(&self, batch: &[ExportRequest]) -> Result<Header, ConnectorError> {
        let mut names: Vec<String> = vec![self.settings.anchor_column.clone()];
        let mut extra: Vec<String> = self
            .settings
            .column_types
            .keys()
            .chain(&self.settings.multi_valued_columns)
            .cloned()
            .collect();
        for r in batch {
            if let ExportOperation::Add { attributes } = &r.operation {
                extra.extend(attributes.keys().cloned());
            }
        }
        for t in &self.template {
            match t {
                Segment::Column(c) if !c.eq_ignore_ascii_case("anchor") => extra.push(c.clone()),
                _ => {}
            }
        }
        extra.sort();
        for e in extra {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&e)) {
                names.push(e);
            }
        }
        self.header(names)
    }

    /// The text of a value in a cell.
    fn value_text(v: &Value) -> String {
        match v {
            Value::Bool(b) => if *b { "true" } else { "false" }.to_string(),
            Value::Dt(d) => d.to_rfc3339_opts(SecondsFormat::Secs, true),
            other => other.to_text(),
        }
    }

    /// Renders attribute values into the cells of a row (ignored columns untouched).
    fn render_row(
        &self,
        h: &Header,
        attrs: &Attributes,
        cells: &mut [String],
    ) -> Result<(), (ExportErrorKind, String)> {
        for name in attrs.keys() {
            if h.index(name).is_none() {
                return Err((
                    ExportErrorKind::IdentityDataValidationFailed,
                    format!("the file has no column '{name}'"),
                ));
            }
        }
        for (i, name) in h.names.iter().enumerate() {
            let (imported, multi, _) = h.cols[i];
            if !imported {
                continue;
            }
            let values: &[Value] = attrs
                .get(name)
                .or_else(|| {
                    attrs
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                })
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let texts: Vec<String> = values.iter().map(Self::value_text).collect();
            if texts.len() > 1 && !multi {
                return Err((
                    ExportErrorKind::IdentityDataValidationFailed,
                    format!(
                        "column '{name}' is single-valued but got {} values",
                        texts.len()
                    ),
                ));
            }
            let sep = &self.settings.multi_value_separator;
            if multi && texts.iter().any(|t| t.contains(sep.as_str())) {
                return Err((
                    ExportErrorKind::IdentityDataValidationFailed,
                    format!("a value of column '{name}' contains the separator '{sep}'"),
                ));
            }
            cells[i] = texts.join(sep);
        }
        Ok(())
    }

    fn write_table(&self, t: &Table) -> Result<(), ConnectorError> {
        let csv_err = |e: csv::Error| ConnectorError::Protocol(format!("csv: {e}"));
        let mut buf: Vec<u8> = Vec::new();
        if t.bom {
            buf.extend_from_slice(b"\xEF\xBB\xBF");
        }
        {
            let mut w = csv::WriterBuilder::new()
                .delimiter(self.delimiter)
                .from_writer(&mut buf);
            w.write_record(&t.header.names).map_err(csv_err)?;
            for (_, cells) in t.rows.iter().flatten() {
                w.write_record(cells).map_err(csv_err)?;
            }
            w.flush().map_err(|e| ConnectorError::Io {
                path: self.file_label(),
                source: e,
            })?;
        }
        write_atomic(&self.path, &buf)
    }

    /// Applies one request to the table.
    fn apply(
        &self,
        t: &mut Table,
        by_anchor: &mut HashMap<String, usize>,
        req: &ExportRequest,
    ) -> Result<Option<String>, (ExportErrorKind, String)> {
        let h = t.header.clone();
        let find = |t: &Table, by_anchor: &HashMap<String, usize>| {
            req.anchor
                .as_ref()
                .and_then(|a| by_anchor.get(a).copied())
                .or_else(|| {
                    t.rows.iter().position(|r| {
                        r.as_ref().is_some_and(|(line, cells)| {
                            self.row_dn(&h, *line, cells).is_ok_and(|d| d == req.dn)
                        })
                    })
                })
                .ok_or_else(|| {
                    (
                        ExportErrorKind::ObjectNotFound,
                        format!("no row for '{}'", req.dn),
                    )
                })
        };
        match &req.operation {
            ExportOperation::Add { attributes } => {
                let anchor = attributes
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&h.names[h.anchor]))
                    .and_then(|(_, v)| v.first())
                    .map(Value::to_text)
                    .or_else(|| req.anchor.clone())
                    .filter(|a| !a.trim().is_empty())
                    .ok_or_else(|| {
                        (
                            ExportErrorKind::IdentityDataValidationFailed,
                            format!("no value for the anchor column '{}'", h.names[h.anchor]),
                        )
                    })?;
                if by_anchor.contains_key(&anchor) {
                    return Err((
                        ExportErrorKind::ObjectAlreadyExists,
                        format!("a row with anchor '{anchor}' exists already"),
                    ));
                }
                let mut attrs = attributes.clone();
                attrs.retain(|_, v| !v.is_empty());
                if !attrs
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case(&h.names[h.anchor]))
                {
                    attrs.insert(h.names[h.anchor].clone(), vec![Value::Str(anchor.clone())]);
                }
                let mut cells = vec![String::new(); h.names.len()];
                self.render_row(&h, &attrs, &mut cells)?;
                t.rows.push(Some((0, cells)));
                by_anchor.insert(anchor.clone(), t.rows.len() - 1);
                Ok(Some(anchor))
            }
            ExportOperation::Update { changes, new_dn } => {
                let idx = find(t, by_anchor)?;
                let Some(Some((line, cells))) = t.rows.get(idx) else {
                    return Err((ExportErrorKind::ObjectNotFound, "row vanished".into()));
                };
                let mut obj = self
                    .row_object(&h, *line, cells)
                    .map_err(|e| (ExportErrorKind::Other, e.to_string()))?;
                for c in changes {
                    if c.name().eq_ignore_ascii_case(&h.names[h.anchor]) {
                        return Err((
                            ExportErrorKind::IdentityDataValidationFailed,
                            format!(
                                "the anchor column '{}' cannot be changed",
                                h.names[h.anchor]
                            ),
                        ));
                    }
                    let name = h
                        .index(c.name())
                        .map(|i| h.names[i].clone())
                        .ok_or_else(|| {
                            (
                                ExportErrorKind::IdentityDataValidationFailed,
                                format!("the file has no column '{}'", c.name()),
                            )
                        })?;
                    let c = match c {
                        AttributeChange::Add { values, .. } => AttributeChange::Add {
                            name,
                            values: values.clone(),
                        },
                        AttributeChange::Remove { values, .. } => AttributeChange::Remove {
                            name,
                            values: values.clone(),
                        },
                        AttributeChange::Replace { values, .. } => AttributeChange::Replace {
                            name,
                            values: values.clone(),
                        },
                    };
                    c.apply(&mut obj.attributes);
                }
                let mut new_cells = cells.clone();
                self.render_row(&h, &obj.attributes, &mut new_cells)?;
                if let Some(n) = new_dn {
                    tracing::debug!(new_dn = %n, "csv: DNs are derived from dn_template; new_dn ignored");
                }
                let anchor = obj.anchor.clone();
                if let Some(Some((_, cells))) = t.rows.get_mut(idx) {
                    *cells = new_cells;
                }
                Ok(anchor)
            }
            ExportOperation::Delete => {
                let idx = find(t, by_anchor)?;
                let anchor = t
                    .rows
                    .get_mut(idx)
                    .and_then(Option::take)
                    .map(|(_, cells)| cells[h.anchor].trim().to_string());
                if let Some(a) = &anchor {
                    by_anchor.remove(a);
                }
                Ok(anchor)
            }
        }
    }
}

impl Connector for CsvConnector {
    /// The whole target file is rewritten per call: take every pending export at once.
    fn export_batch_size(&self) -> usize {
        usize::MAX
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            delta_import: false,
            export: true,
        }
    }

    fn schema(&mut self) -> Result<Schema, ConnectorError> {
        let header = match self.open()? {
            Some((_, mut rdr)) => {
                let mut rec = csv::ByteRecord::new();
                self.read_header(&mut rdr, &mut rec)?
            }
            None => self.new_header(&[])?,
        };
        let mut def = ObjectTypeDef::default();
        for (i, name) in header.names.iter().enumerate() {
            let (imported, multi, ty) = header.cols[i];
            if imported {
                def.attributes.insert(
                    name.clone(),
                    AttributeDef {
                        ty,
                        multi_valued: multi,
                    },
                );
            }
        }
        let mut schema = Schema::default();
        schema
            .object_types
            .insert(self.settings.object_type.clone(), def);
        Ok(schema)
    }

    fn full_import(&mut self, sink: &mut dyn ImportSink) -> Result<Watermark, ConnectorError> {
        let mut n = 0usize;
        self.read_objects(|obj, _| {
            n += 1;
            sink.push(ImportChange::Upsert(obj))
        })?;
        tracing::info!(file = %self.file_label(), objects = n, "CSV full import");
        Ok(None)
    }

    fn delta_import(
        &mut self,
        _watermark: &str,
        _cs: &dyn ConnectorSpaceView,
        _sink: &mut dyn ImportSink,
    ) -> Result<Watermark, ConnectorError> {
        Err(ConnectorError::Unsupported(
            "csv: no delta import; run a full import".into(),
        ))
    }

    fn export(&mut self, batch: &[ExportRequest]) -> Result<Vec<ExportResult>, ConnectorError> {
        let mut table = match self.read_table()? {
            Some(t) => t,
            None => Table {
                bom: false,
                header: self.new_header(batch)?,
                rows: Vec::new(),
            },
        };
        let mut by_anchor: HashMap<String, usize> = HashMap::new();
        for (i, row) in table.rows.iter().enumerate() {
            if let Some((line, cells)) = row {
                let a = cells[table.header.anchor].trim().to_string();
                if let Some(first) = by_anchor.insert(a.clone(), i) {
                    let first_line = table.rows[first].as_ref().map_or(0, |r| r.0);
                    return Err(self.err(
                        *line,
                        format!("duplicate anchor '{a}' (first at line {first_line})"),
                    ));
                }
            }
        }
        let mut dirty = false;
        let mut results = Vec::with_capacity(batch.len());
        for req in batch {
            let outcome = match self.apply(&mut table, &mut by_anchor, req) {
                Ok(anchor) => {
                    dirty = true;
                    ExportOutcome::Success { anchor }
                }
                Err((kind, message)) => {
                    tracing::warn!(id = req.id, dn = %req.dn, ?kind, %message, "CSV export failed");
                    ExportOutcome::Failed { kind, message }
                }
            };
            results.push(ExportResult {
                id: req.id,
                outcome,
            });
        }
        if dirty {
            self.write_table(&table)?;
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(dir: &Path, text: &[u8], f: impl FnOnce(&mut CsvSettings)) -> CsvConnector {
        std::fs::write(dir.join("hr.csv"), text).unwrap();
        let mut s = CsvSettings::new("hr.csv", "id");
        f(&mut s);
        CsvConnector::new(s, dir).unwrap()
    }

    fn import(c: &mut CsvConnector) -> Result<Vec<Object>, ConnectorError> {
        let mut v: Vec<ImportChange> = Vec::new();
        c.full_import(&mut v)?;
        Ok(v.into_iter()
            .filter_map(|c| match c {
                ImportChange::Upsert(o) => Some(o),
                ImportChange::Delete { .. } => None,
            })
            .collect())
    }

    #[test]
    fn templates() {
        assert_eq!(
            parse_template("CN={name},OU={{x}}").unwrap(),
            vec![
                Segment::Literal("CN=".into()),
                Segment::Column("name".into()),
                Segment::Literal(",OU={x}".into())
            ]
        );
        assert!(parse_template("CN={name").is_err());
        assert!(parse_template("CN=}").is_err());
        assert!(parse_template("CN={}").is_err());
    }

    #[test]
    fn bom_types_multi_values_and_dn() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = conn(
            dir.path(),
            "\u{feff}id,name,groups,level,active\n1,\"Smith, John\",a; b ;,3,true\n2,Zoë,,,\n"
                .as_bytes(),
            |s| {
                s.dn_template = "CN={name}+UID={anchor},OU=HR".into();
                s.multi_valued_columns = vec!["groups".into()];
                s.column_types.insert("level".into(), AttrType::Integer);
                s.column_types.insert("active".into(), AttrType::Boolean);
            },
        );
        let objs = import(&mut c).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].anchor.as_deref(), Some("1"));
        assert_eq!(objs[0].dn.rdn().unwrap().avas[0].value, "Smith, John");
        assert_eq!(
            objs[0].values("groups"),
            &[Value::from("a"), Value::from("b")]
        );
        assert_eq!(objs[0].values("level"), &[Value::Int(3)]);
        assert_eq!(objs[0].values("active"), &[Value::Bool(true)]);
        assert_eq!(objs[0].object_type, "person");
        assert!(objs[1].values("level").is_empty());
        assert_eq!(objs[1].dn.rdn().unwrap().value(), "Zoë");
    }

    #[test]
    fn config_errors() {
        let mut s = CsvSettings::new("x.csv", "id");
        s.delimiter = "ab".into();
        assert!(matches!(
            CsvConnector::new(s, Path::new(".")),
            Err(ConnectorError::Config(_))
        ));
        let mut s = CsvSettings::new("x.csv", "id");
        s.ignore_columns = vec!["ID".into()];
        assert!(CsvConnector::new(s, Path::new(".")).is_err());
        let mut s = CsvSettings::new("x.csv", "id");
        s.dn_template = "CN={x".into();
        assert!(CsvConnector::new(s, Path::new(".")).is_err());
        assert!(toml::from_str::<CsvSettings>("path='a'\nanchor_column='id'\nfoo=1").is_err());
        assert!(toml::from_str::<CsvSettings>("path='a'").is_err());
    }
}

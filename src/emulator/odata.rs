//! OData pieces of the emulator: Graph error values, query options (`$select`, `$filter`,
//! `$top`, `$skiptoken`, `$count`) and the `$filter` expression subset the emulator evaluates.

use serde_json::{Map, Value, json};

/// A Graph error answer: HTTP status plus the `error.code` and `error.message` of the
/// documented body `{"error":{"code","message","innerError":{...}}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// HTTP status code.
    pub status: u16,
    /// `error.code`, for example `Request_ResourceNotFound`.
    pub code: String,
    /// `error.message`.
    pub message: String,
    /// Extra response headers (for example `Retry-After` on 429).
    pub headers: Vec<(String, String)>,
}

impl GraphError {
    /// Builds an error with a status, code and message.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// 400 `Request_BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "Request_BadRequest", message)
    }

    /// 404 `Request_ResourceNotFound` for an object id.
    pub fn not_found(id: &str) -> Self {
        Self::new(
            404,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    /// 400 `Request_BadRequest` for a missing required property on create.
    pub fn required(property: &str, resource: &str) -> Self {
        Self::bad_request(format!(
            "A value is required for property '{property}' of resource '{resource}'."
        ))
    }

    /// 400 `Request_BadRequest` for a value of the wrong type or shape.
    pub fn invalid_value(property: &str, resource: &str) -> Self {
        Self::bad_request(format!(
            "Invalid value specified for property '{property}' of resource '{resource}'."
        ))
    }

    /// 400 `Request_BadRequest` uniqueness conflict (userPrincipalName, proxyAddresses...).
    pub fn conflict(property: &str) -> Self {
        Self::bad_request(format!(
            "Another object with the same value for property {property} already exists."
        ))
    }

    /// 400 `Request_BadRequest` for a property that cannot be written through Graph.
    pub fn read_only(property: &str) -> Self {
        Self::bad_request(format!(
            "Property '{property}' is read-only and cannot be set."
        ))
    }

    /// 400 `Request_UnsupportedQuery`.
    pub fn unsupported_query(message: impl Into<String>) -> Self {
        Self::new(400, "Request_UnsupportedQuery", message)
    }

    /// 400 `syncStateNotFound` for an expired or invalidated delta token.
    pub fn sync_state_not_found() -> Self {
        Self::new(
            400,
            "syncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
        )
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The JSON body of the error with its `innerError`.
    pub fn body(&self, request_id: &str, client_request_id: &str) -> Value {
        json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                }
            }
        })
    }
}

/// Parsed OData query options of one request.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// `$select` property names (as given).
    pub select: Option<Vec<String>>,
    /// `$filter` expression.
    pub filter: Option<Filter>,
    /// Raw `$filter` text (kept for nextLinks).
    pub filter_raw: Option<String>,
    /// `$top`.
    pub top: Option<usize>,
    /// `$skiptoken`.
    pub skiptoken: Option<String>,
    /// `$deltatoken`.
    pub deltatoken: Option<String>,
    /// `$count=true`.
    pub count: bool,
    /// `$expand` (only `manager` is supported).
    pub expand: Option<String>,
}

/// Decodes `%XX` escapes and `+` of a query string component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a query string component.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Splits a raw query string into decoded `(name, value)` pairs.
pub fn parse_query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

impl QueryOptions {
    /// Parses the query options from a raw query string.
    pub fn parse(raw: &str) -> Result<Self, GraphError> {
        let mut q = QueryOptions::default();
        for (k, v) in parse_query_pairs(raw) {
            match k.trim_start_matches('$').to_ascii_lowercase().as_str() {
                "select" => {
                    let props: Vec<String> = v
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    if !props.is_empty() {
                        q.select = Some(props);
                    }
                }
                "filter" => {
                    q.filter = Some(Filter::parse(&v)?);
                    q.filter_raw = Some(v);
                }
                "top" => {
                    let n: usize = v.trim().parse().map_err(|_| {
                        GraphError::bad_request(format!("Invalid value '{v}' for $top."))
                    })?;
                    if n == 0 || n > 999 {
                        return Err(GraphError::bad_request(format!(
                            "Invalid page size specified: '{n}'. Must be between 1 and 999 inclusive."
                        )));
                    }
                    q.top = Some(n);
                }
                "skiptoken" => q.skiptoken = Some(v),
                "expand" => {
                    let name = v.split('(').next().unwrap_or("").trim().to_string();
                    if !name.eq_ignore_ascii_case("manager") {
                        return Err(GraphError::unsupported_query(format!(
                            "Unsupported Query. $expand of '{name}' is not supported by the emulator."
                        )));
                    }
                    q.expand = Some(name);
                }
                "deltatoken" => q.deltatoken = Some(v),
                "count" => q.count = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        Ok(q)
    }

    /// The query string to repeat in a nextLink (without `$skiptoken`).
    pub fn carry_over(&self) -> String {
        let mut parts = Vec::new();
        if let Some(top) = self.top {
            parts.push(format!("$top={top}"));
        }
        if let Some(sel) = &self.select {
            parts.push(format!("$select={}", percent_encode(&sel.join(","))));
        }
        if let Some(f) = &self.filter_raw {
            parts.push(format!("$filter={}", percent_encode(f)));
        }
        if self.count {
            parts.push("$count=true".to_string());
        }
        if let Some(e) = &self.expand {
            parts.push(format!("$expand={e}"));
        }
        parts.join("&")
    }
}

/// A literal in a `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A quoted string.
    Str(String),
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Num(f64),
    /// `null`.
    Null,
}

/// The `$filter` subset: `eq`, `ne`, `startswith`, `endswith` (rejected as unsupported on
/// directory objects), `in`, `any` over collections, joined with `and` / `or`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `prop eq literal`.
    Eq(String, Literal),
    /// `prop ne literal`.
    Ne(String, Literal),
    /// `startswith(prop, 'x')`.
    StartsWith(String, String),
    /// `prop in ('a','b')`.
    In(String, Vec<Literal>),
    /// `prop/any(x:x eq 'v')`.
    AnyEq(String, Literal),
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Lit(Literal),
    LParen,
    RParen,
    Comma,
    Colon,
    Slash,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, GraphError> {
    let bad = || GraphError::bad_request(format!("Invalid filter clause: {s}"));
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1
            }
            '/' => {
                out.push(Tok::Slash);
                i += 1
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(bad()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Lit(Literal::Str(v)));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '-')
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n: f64 = text.parse().map_err(|_| bad())?;
                out.push(Tok::Lit(Literal::Num(n)));
            }
            c if c.is_alphanumeric() || c == '_' || c == '@' || c == '.' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric()
                        || chars[i] == '_'
                        || chars[i] == '.'
                        || chars[i] == '@')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.as_str() {
                    "true" => out.push(Tok::Lit(Literal::Bool(true))),
                    "false" => out.push(Tok::Lit(Literal::Bool(false))),
                    "null" => out.push(Tok::Lit(Literal::Null)),
                    _ => out.push(Tok::Ident(word)),
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    text: String,
    depth: usize,
}

/// Maximum parenthesis nesting in `$filter` (guards the recursive parser).
const MAX_FILTER_DEPTH: usize = 32;

impl Parser {
    fn bad(&self) -> GraphError {
        GraphError::bad_request(format!("Invalid filter clause: {}", self.text))
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: Tok) -> Result<(), GraphError> {
        if self.next() == Some(t) {
            Ok(())
        } else {
            Err(self.bad())
        }
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn or_expr(&mut self) -> Result<Filter, GraphError> {
        let mut left = self.and_expr()?;
        while self.is_kw("or") {
            self.pos += 1;
            let right = self.and_expr()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn and_expr(&mut self) -> Result<Filter, GraphError> {
        let mut left = self.primary()?;
        while self.is_kw("and") {
            self.pos += 1;
            let right = self.primary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn literal(&mut self) -> Result<Literal, GraphError> {
        match self.next() {
            Some(Tok::Lit(l)) => Ok(l),
            _ => Err(self.bad()),
        }
    }
    fn primary(&mut self) -> Result<Filter, GraphError> {
        match self.next() {
            Some(Tok::LParen) => {
                self.depth += 1;
                if self.depth > MAX_FILTER_DEPTH {
                    return Err(GraphError::unsupported_query(
                        "Unsupported Query. The $filter expression is nested too deeply.",
                    ));
                }
                let f = self.or_expr()?;
                self.expect(Tok::RParen)?;
                self.depth -= 1;
                Ok(f)
            }
            Some(Tok::Ident(w)) if self.peek() == Some(&Tok::LParen) => {
                let func = w.to_ascii_lowercase();
                self.pos += 1;
                let prop = match self.next() {
                    Some(Tok::Ident(p)) => p,
                    _ => return Err(self.bad()),
                };
                self.expect(Tok::Comma)?;
                let lit = self.literal()?;
                self.expect(Tok::RParen)?;
                match (func.as_str(), lit) {
                    ("startswith", Literal::Str(s)) => Ok(Filter::StartsWith(prop, s)),
                    ("startswith", _) => Err(self.bad()),
                    (f, _) => Err(GraphError::unsupported_query(format!(
                        "Unsupported Query. Function '{f}' is not supported by the emulator."
                    ))),
                }
            }
            Some(Tok::Ident(prop)) => {
                if self.peek() == Some(&Tok::Slash) {
                    // prop/any(x:x eq 'v')
                    self.pos += 1;
                    match self.next() {
                        Some(Tok::Ident(a)) if a.eq_ignore_ascii_case("any") => {}
                        _ => return Err(self.bad()),
                    }
                    self.expect(Tok::LParen)?;
                    let var = match self.next() {
                        Some(Tok::Ident(v)) => v,
                        _ => return Err(self.bad()),
                    };
                    self.expect(Tok::Colon)?;
                    match self.next() {
                        Some(Tok::Ident(v)) if v == var => {}
                        _ => return Err(self.bad()),
                    }
                    if !self.is_kw("eq") {
                        return Err(GraphError::unsupported_query("Unsupported Query."));
                    }
                    self.pos += 1;
                    let lit = self.literal()?;
                    self.expect(Tok::RParen)?;
                    return Ok(Filter::AnyEq(prop, lit));
                }
                let op = match self.next() {
                    Some(Tok::Ident(op)) => op.to_ascii_lowercase(),
                    _ => return Err(self.bad()),
                };
                match op.as_str() {
                    "eq" => Ok(Filter::Eq(prop, self.literal()?)),
                    "ne" => Ok(Filter::Ne(prop, self.literal()?)),
                    "in" => {
                        self.expect(Tok::LParen)?;
                        let mut vals = vec![self.literal()?];
                        while self.peek() == Some(&Tok::Comma) {
                            self.pos += 1;
                            vals.push(self.literal()?);
                        }
                        self.expect(Tok::RParen)?;
                        Ok(Filter::In(prop, vals))
                    }
                    "gt" | "ge" | "lt" | "le" => Err(GraphError::unsupported_query(
                        "Unsupported Query. Operator not supported by the emulator.",
                    )),
                    _ => Err(self.bad()),
                }
            }
            _ => Err(self.bad()),
        }
    }
}

impl Filter {
    /// Parses a `$filter` value.
    pub fn parse(text: &str) -> Result<Self, GraphError> {
        let toks = tokenize(text)?;
        let mut p = Parser {
            toks,
            pos: 0,
            text: text.to_string(),
            depth: 0,
        };
        let f = p.or_expr()?;
        if p.pos != p.toks.len() {
            return Err(p.bad());
        }
        Ok(f)
    }

    /// Property names the filter reads.
    pub fn properties(&self, out: &mut Vec<String>) {
        match self {
            Filter::Eq(p, _)
            | Filter::Ne(p, _)
            | Filter::StartsWith(p, _)
            | Filter::In(p, _)
            | Filter::AnyEq(p, _) => out.push(p.clone()),
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.properties(out);
                b.properties(out);
            }
        }
    }

    /// Evaluates the filter against an object's properties (with `id`).
    pub fn matches(&self, id: &str, props: &Map<String, Value>) -> bool {
        let get = |p: &str| -> Value {
            if p == "id" {
                Value::String(id.to_string())
            } else {
                lookup_ci(props, p).cloned().unwrap_or(Value::Null)
            }
        };
        match self {
            Filter::Eq(p, l) => lit_eq(&get(p), l),
            Filter::Ne(p, l) => !lit_eq(&get(p), l),
            Filter::In(p, ls) => {
                let v = get(p);
                ls.iter().any(|l| lit_eq(&v, l))
            }
            Filter::StartsWith(p, s) => match get(p) {
                Value::String(v) => v.to_lowercase().starts_with(&s.to_lowercase()),
                _ => false,
            },
            Filter::AnyEq(p, l) => match get(p) {
                Value::Array(items) => items.iter().any(|v| lit_eq(v, l)),
                _ => false,
            },
            Filter::And(a, b) => a.matches(id, props) && b.matches(id, props),
            Filter::Or(a, b) => a.matches(id, props) || b.matches(id, props),
        }
    }
}

/// Case-insensitive property lookup (Graph property names are case-insensitive).
pub fn lookup_ci<'a>(props: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    props.get(name).or_else(|| {
        props
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn lit_eq(v: &Value, l: &Literal) -> bool {
    match (v, l) {
        (Value::Null, Literal::Null) => true,
        (Value::String(a), Literal::Str(b)) => a.to_lowercase() == b.to_lowercase(),
        (Value::Bool(a), Literal::Bool(b)) => a == b,
        (Value::Number(a), Literal::Num(b)) => {
            a.as_f64().is_some_and(|a| (a - b).abs() < f64::EPSILON)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_filters() {
        let f = Filter::parse("userPrincipalName eq 'a@b.com'").unwrap();
        assert_eq!(
            f,
            Filter::Eq("userPrincipalName".into(), Literal::Str("a@b.com".into()))
        );
        let f = Filter::parse("startswith(displayName,'Jo') and accountEnabled eq true").unwrap();
        assert!(matches!(f, Filter::And(_, _)));
        let f = Filter::parse("proxyAddresses/any(x:x eq 'smtp:a@b.com')").unwrap();
        assert!(matches!(f, Filter::AnyEq(_, _)));
        let f = Filter::parse("mail eq 'o''brien@x.com'").unwrap();
        assert_eq!(
            f,
            Filter::Eq("mail".into(), Literal::Str("o'brien@x.com".into()))
        );
        assert!(Filter::parse("displayName eq").is_err());
        assert!(Filter::parse("displayName gt 'a'").is_err());
        let deep = format!("{}id eq '1'{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(Filter::parse(&deep).is_err());
    }

    #[test]
    fn evaluates_case_insensitively() {
        let mut m = Map::new();
        m.insert("displayName".into(), json!("John Smith"));
        m.insert("proxyAddresses".into(), json!(["SMTP:j@x.com"]));
        assert!(
            Filter::parse("startswith(displayname,'jo')")
                .unwrap()
                .matches("1", &m)
        );
        assert!(
            Filter::parse("proxyAddresses/any(p:p eq 'smtp:J@x.com')")
                .unwrap()
                .matches("1", &m)
        );
        assert!(Filter::parse("id eq '1'").unwrap().matches("1", &m));
    }

    #[test]
    fn decodes_query() {
        let q =
            QueryOptions::parse("$top=5&$select=id,displayName&$filter=mail%20eq%20%27a%40b%27")
                .unwrap();
        assert_eq!(q.top, Some(5));
        assert_eq!(q.select.as_deref().map(|s| s.len()), Some(2));
        assert!(q.filter.is_some());
        assert!(QueryOptions::parse("$top=1000").is_err());
    }
}

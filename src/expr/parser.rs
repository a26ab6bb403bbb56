//! Parser: tokens to a compiled tree, with function names resolved to [`Func`] and arity
//! checked at parse time.
//!
//! Grammar (three levels, each left to right at equal priority):
//! ```text
//! expr    := cmp (("&&" | "||") cmp)*
//! cmp     := arith (("<" | "<=" | "<>" | "=" | ">" | ">=") arith)*
//! arith   := unary (("+" | "-" | "*" | "&") unary)*
//! unary   := "-" unary | primary
//! primary := literal | [attr] | %param% | $var | "(" expr ")" | Name "(" args ")" | keyword
//! ```

use super::ExprError;
use super::lexer::{Op, Tok, Token, tokenize};

/// Deepest allowed tree (guards the evaluator's recursion).
pub const MAX_DEPTH: usize = 100;

/// Every function of the catalogue, resolved at parse time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// The `CBool` function.
    CBool,
    /// The `CDate` function.
    CDate,
    /// The `CGuid` function.
    CGuid,
    /// The `ConvertFromBase64` function.
    ConvertFromBase64,
    /// The `ConvertToBase64` function.
    ConvertToBase64,
    /// The `ConvertFromUTF8Hex` function.
    ConvertFromUTF8Hex,
    /// The `ConvertToUTF8Hex` function.
    ConvertToUTF8Hex,
    /// The `CNum` function.
    CNum,
    /// The `CRef` function.
    CRef,
    /// The `CStr` function.
    CStr,
    /// The `CBin` function.
    CBin,
    /// The `StringFromGuid` function.
    StringFromGuid,
    /// The `StringFromSid` function.
    StringFromSid,
    /// The `DateAdd` function.
    DateAdd,
    /// The `DateFromNum` function.
    DateFromNum,
    /// The `FormatDateTime` function.
    FormatDateTime,
    /// The `Now` function.
    Now,
    /// The `NumFromDate` function.
    NumFromDate,
    /// The `DNComponent` function.
    DNComponent,
    /// The `DNComponentRev` function.
    DNComponentRev,
    /// The `EscapeDNComponent` function.
    EscapeDNComponent,
    /// The `IsBitSet` function.
    IsBitSet,
    /// The `IsDate` function.
    IsDate,
    /// The `IsEmpty` function.
    IsEmpty,
    /// The `IsGuid` function.
    IsGuid,
    /// The `IsNull` function.
    IsNull,
    /// The `IsNullOrEmpty` function.
    IsNullOrEmpty,
    /// The `IsNumeric` function.
    IsNumeric,
    /// The `IsPresent` function.
    IsPresent,
    /// The `IsString` function.
    IsString,
    /// The `BitAnd` function.
    BitAnd,
    /// The `BitOr` function.
    BitOr,
    /// The `RandomNum` function.
    RandomNum,
    /// The `Contains` function.
    Contains,
    /// The `Count` function.
    Count,
    /// The `Item` function.
    Item,
    /// The `ItemOrNull` function.
    ItemOrNull,
    /// The `Join` function.
    Join,
    /// The `RemoveDuplicates` function.
    RemoveDuplicates,
    /// The `Split` function.
    Split,
    /// The `Error` function.
    Error,
    /// The `IIF` function.
    IIF,
    /// The `Select` function.
    Select,
    /// The `Switch` function.
    Switch,
    /// The `Where` function.
    Where,
    /// The `With` function.
    With,
    /// The `GUID` function.
    GUID,
    /// The `InStr` function.
    InStr,
    /// The `InStrRev` function.
    InStrRev,
    /// The `LCase` function.
    LCase,
    /// The `Left` function.
    Left,
    /// The `Len` function.
    Len,
    /// The `LTrim` function.
    LTrim,
    /// The `Mid` function.
    Mid,
    /// The `PadLeft` function.
    PadLeft,
    /// The `PadRight` function.
    PadRight,
    /// The `PCase` function.
    PCase,
    /// The `Replace` function.
    Replace,
    /// The `ReplaceChars` function.
    ReplaceChars,
    /// The `Right` function.
    Right,
    /// The `RTrim` function.
    RTrim,
    /// The `Trim` function.
    Trim,
    /// The `UCase` function.
    UCase,
    /// The `Word` function.
    Word,
    /// The `ImportedValue` function.
    ImportedValue,
    /// The `ValueCount` function.
    ValueCount,
}

/// Name, function, minimum and maximum arity (`usize::MAX` = variadic).
const FUNCS: &[(&str, Func, usize, usize)] = &[
    ("CBool", Func::CBool, 1, 1),
    ("CDate", Func::CDate, 1, 1),
    ("CGuid", Func::CGuid, 1, 1),
    ("ConvertFromBase64", Func::ConvertFromBase64, 1, 2),
    ("ConvertToBase64", Func::ConvertToBase64, 1, 1),
    ("ConvertFromUTF8Hex", Func::ConvertFromUTF8Hex, 1, 1),
    ("ConvertToUTF8Hex", Func::ConvertToUTF8Hex, 1, 1),
    ("CNum", Func::CNum, 1, 1),
    ("CRef", Func::CRef, 1, 1),
    ("CStr", Func::CStr, 1, 1),
    ("CBin", Func::CBin, 1, 1),
    ("StringFromGuid", Func::StringFromGuid, 1, 1),
    ("StringFromSid", Func::StringFromSid, 1, 1),
    ("DateAdd", Func::DateAdd, 3, 3),
    ("DateFromNum", Func::DateFromNum, 1, 1),
    ("FormatDateTime", Func::FormatDateTime, 2, 2),
    ("Now", Func::Now, 0, 0),
    ("NumFromDate", Func::NumFromDate, 1, 1),
    ("DNComponent", Func::DNComponent, 2, 2),
    ("DNComponentRev", Func::DNComponentRev, 2, 3),
    ("EscapeDNComponent", Func::EscapeDNComponent, 1, 1),
    ("IsBitSet", Func::IsBitSet, 2, 2),
    ("IsDate", Func::IsDate, 1, 1),
    ("IsEmpty", Func::IsEmpty, 1, 1),
    ("IsGuid", Func::IsGuid, 1, 1),
    ("IsNull", Func::IsNull, 1, 1),
    ("IsNullOrEmpty", Func::IsNullOrEmpty, 1, 1),
    ("IsNumeric", Func::IsNumeric, 1, 1),
    ("IsPresent", Func::IsPresent, 1, 1),
    ("IsString", Func::IsString, 1, 1),
    ("BitAnd", Func::BitAnd, 2, 2),
    ("BitOr", Func::BitOr, 2, 2),
    ("RandomNum", Func::RandomNum, 2, 2),
    ("Contains", Func::Contains, 2, 3),
    ("Count", Func::Count, 1, 1),
    ("Item", Func::Item, 2, 2),
    ("ItemOrNull", Func::ItemOrNull, 2, 2),
    ("Join", Func::Join, 1, 2),
    ("RemoveDuplicates", Func::RemoveDuplicates, 1, 1),
    ("Split", Func::Split, 2, 3),
    ("Error", Func::Error, 1, 1),
    ("IIF", Func::IIF, 3, 3),
    ("Select", Func::Select, 3, 3),
    ("Switch", Func::Switch, 2, usize::MAX),
    ("Where", Func::Where, 3, 3),
    ("With", Func::With, 3, 3),
    ("GUID", Func::GUID, 0, 0),
    // The reference spells it both ways ("GUID" in the index, `str Guid()` in the syntax).
    ("Guid", Func::GUID, 0, 0),
    ("InStr", Func::InStr, 2, 4),
    ("InStrRev", Func::InStrRev, 2, 4),
    ("LCase", Func::LCase, 1, 1),
    ("Left", Func::Left, 2, 2),
    ("Len", Func::Len, 1, 1),
    ("LTrim", Func::LTrim, 1, 1),
    ("Mid", Func::Mid, 2, 3),
    ("PadLeft", Func::PadLeft, 2, 3),
    ("PadRight", Func::PadRight, 2, 3),
    ("PCase", Func::PCase, 1, 1),
    ("Replace", Func::Replace, 3, 3),
    ("ReplaceChars", Func::ReplaceChars, 2, 2),
    ("Right", Func::Right, 2, 2),
    ("RTrim", Func::RTrim, 1, 1),
    ("Trim", Func::Trim, 1, 1),
    ("UCase", Func::UCase, 1, 1),
    ("Word", Func::Word, 3, 3),
    ("ImportedValue", Func::ImportedValue, 1, 1),
    ("ValueCount", Func::ValueCount, 1, 1),
];

/// Bare identifiers accepted as enumeration constants (they evaluate to their own name).
const ENUM_CONSTANTS: &[&str] = &[
    "vbTextCompare",
    "vbBinaryCompare",
    "CaseSensitive",
    "CaseInsensitive",
    "Unicode",
    "UTF8",
    "ASCII",
    "DC",
];

impl Func {
    /// Resolves a (case-sensitive) function name.
    pub fn from_name(name: &str) -> Option<Func> {
        FUNCS.iter().find(|(n, ..)| *n == name).map(|(_, f, ..)| *f)
    }

    /// The documented name.
    pub fn name(self) -> &'static str {
        FUNCS
            .iter()
            .find(|(_, f, ..)| *f == self)
            .map(|(n, ..)| *n)
            .unwrap_or("?")
    }

    /// Minimum and maximum number of arguments.
    pub fn arity(self) -> (usize, usize) {
        FUNCS
            .iter()
            .find(|(_, f, ..)| *f == self)
            .map(|(_, _, lo, hi)| (*lo, *hi))
            .unwrap_or((0, 0))
    }

    /// All supported function names.
    pub fn all_names() -> impl Iterator<Item = &'static str> {
        FUNCS.iter().map(|(n, ..)| *n)
    }
}

/// A compiled expression tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `NULL`.
    Null,
    /// `AuthoritativeNull`.
    AuthNull,
    /// `IgnoreThisFlow`.
    Ignore,
    /// String literal (also `CRLF` and enumeration constants).
    Str(String),
    /// Integer literal.
    Int(i64),
    /// `True` / `False`.
    Bool(bool),
    /// `[name]`.
    Attr {
        /// Attribute name (case-sensitive).
        name: String,
        /// One-based column in the source.
        col: usize,
    },
    /// `ImportedValue("name")`.
    Imported {
        /// Attribute name.
        name: String,
        /// One-based column in the source.
        col: usize,
    },
    /// `ValueCount("name")`.
    ValueCount {
        /// Attribute name.
        name: String,
        /// One-based column in the source.
        col: usize,
    },
    /// `%name%`.
    Param(String),
    /// `$name`.
    Var {
        /// Variable name (without `$`).
        name: String,
        /// One-based column in the source.
        col: usize,
    },
    /// A function call.
    Call {
        /// The function.
        f: Func,
        /// Its arguments.
        args: Vec<Node>,
    },
    /// `l op r`.
    Binary {
        /// Operator.
        op: Op,
        /// Left operand.
        l: Box<Node>,
        /// Right operand.
        r: Box<Node>,
    },
    /// Unary minus.
    Neg(Box<Node>),
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
}

/// Parses a whole expression.
pub fn parse(src: &str) -> Result<Node, ExprError> {
    let toks = tokenize(src)?;
    let mut p = Parser { src, toks, pos: 0 };
    if matches!(p.peek(), Tok::Eof) {
        return Err(p.err(1, "empty expression"));
    }
    let (node, _) = p.binary(1, 0)?;
    match p.peek() {
        Tok::Eof => {
            let mut scope = Vec::new();
            check_scope(&node, &mut scope).map_err(|(col, name)| {
                p.err(
                    col,
                    format!(
                        "variable ${name} is not defined here (Select, Where and With define variables)"
                    ),
                )
            })?;
            Ok(node)
        }
        Tok::RParen => Err(p.err(p.col(), "unbalanced ')'")),
        _ => Err(p.err(p.col(), "unexpected token: expected an operator or the end")),
    }
}

/// Every `$variable` must be bound by an enclosing Select, Where or With.
fn check_scope<'n>(node: &'n Node, scope: &mut Vec<&'n str>) -> Result<(), (usize, String)> {
    match node {
        Node::Var { name, col } => {
            if scope.contains(&name.as_str()) {
                Ok(())
            } else {
                Err((*col, name.clone()))
            }
        }
        Node::Call {
            f: Func::Select | Func::Where | Func::With,
            args,
        } => match args.as_slice() {
            [Node::Var { name, .. }, source, body] => {
                check_scope(source, scope)?;
                scope.push(name.as_str());
                let r = check_scope(body, scope);
                scope.pop();
                r
            }
            _ => Ok(()),
        },
        Node::Call { args, .. } => args.iter().try_for_each(|a| check_scope(a, scope)),
        Node::Binary { l, r, .. } => {
            check_scope(l, scope)?;
            check_scope(r, scope)
        }
        Node::Neg(x) => check_scope(x, scope),
        _ => Ok(()),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map(|t| &t.tok).unwrap_or(&Tok::Eof)
    }
    fn col(&self) -> usize {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map(|t| t.col)
            .unwrap_or(1)
    }
    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn err(&self, column: usize, message: impl Into<String>) -> ExprError {
        ExprError {
            column,
            message: message.into(),
            source_text: self.src.to_string(),
        }
    }
    fn check_depth(&self, depth: usize, col: usize) -> Result<(), ExprError> {
        if depth > MAX_DEPTH {
            Err(self.err(
                col,
                format!("expression nested too deeply (over {MAX_DEPTH} levels)"),
            ))
        } else {
            Ok(())
        }
    }

    /// Precedence climbing: parses operators of `min_level` and tighter, left to right at
    /// equal priority inside a level. Returns the node and its tree depth. One frame per
    /// nesting level keeps deep expressions within small thread stacks.
    fn binary(&mut self, min_level: u8, nest: usize) -> Result<(Node, usize), ExprError> {
        self.check_depth(nest, self.col())?;
        let (mut node, mut depth) = self.unary(nest)?;
        loop {
            let op = match self.peek() {
                Tok::Op(op) if op.level() >= min_level => *op,
                _ => break,
            };
            let col = self.col();
            self.next();
            let (rhs, rd) = self.binary(op.level() + 1, nest)?;
            depth = depth.max(rd) + 1;
            self.check_depth(depth + nest, col)?;
            node = Node::Binary {
                op,
                l: Box::new(node),
                r: Box::new(rhs),
            };
        }
        Ok((node, depth))
    }

    fn unary(&mut self, nest: usize) -> Result<(Node, usize), ExprError> {
        // Unary plus is accepted and ignored (`+5`).
        while matches!(self.peek(), Tok::Op(Op::Add)) {
            self.next();
        }
        if matches!(self.peek(), Tok::Op(Op::Sub)) {
            let col = self.col();
            self.next();
            self.check_depth(nest + 1, col)?;
            // A negative literal keeps i64::MIN representable.
            if let Tok::Num(n) = *self.peek() {
                self.next();
                let v = 0i64
                    .checked_sub_unsigned(n)
                    .ok_or_else(|| self.err(col, "number too large for a 64-bit integer"))?;
                return Ok((Node::Int(v), 1));
            }
            let (inner, d) = self.unary(nest + 1)?;
            return Ok((Node::Neg(Box::new(inner)), d + 1));
        }
        self.primary(nest)
    }

    fn primary(&mut self, nest: usize) -> Result<(Node, usize), ExprError> {
        let col = self.col();
        match self.next() {
            Tok::Str(s) => Ok((Node::Str(s), 1)),
            Tok::Num(n) => i64::try_from(n)
                .map(|v| (Node::Int(v), 1))
                .map_err(|_| self.err(col, "number too large for a 64-bit integer")),
            Tok::Hex(n) => Ok((Node::Int(n as i64), 1)),
            Tok::Attr(name) => Ok((Node::Attr { name, col: col + 1 }, 1)),
            Tok::Param(name) => Ok((Node::Param(name), 1)),
            Tok::Var(name) => Ok((Node::Var { name, col }, 1)),
            Tok::LParen => {
                let (inner, d) = self.binary(1, nest + 1)?;
                if !matches!(self.peek(), Tok::RParen) {
                    return Err(self.err(self.col(), "expected ')'"));
                }
                self.next();
                Ok((inner, d))
            }
            Tok::Ident(name) => {
                if matches!(self.peek(), Tok::LParen) {
                    self.call(&name, col, nest)
                } else {
                    self.keyword(&name, col).map(|n| (n, 1))
                }
            }
            Tok::RParen => Err(self.err(col, "unexpected ')': expected a value")),
            Tok::Comma => Err(self.err(col, "unexpected ',': expected a value")),
            Tok::Op(_) => Err(self.err(col, "unexpected operator: expected a value")),
            Tok::Eof => Err(self.err(col, "unexpected end of expression: expected a value")),
        }
    }

    fn keyword(&self, name: &str, col: usize) -> Result<Node, ExprError> {
        Ok(match name {
            "True" => Node::Bool(true),
            "False" => Node::Bool(false),
            "NULL" | "Null" => Node::Null,
            "CRLF" => Node::Str("\r\n".into()),
            "IgnoreThisFlow" => Node::Ignore,
            "AuthoritativeNull" => Node::AuthNull,
            n if ENUM_CONSTANTS.contains(&n) => Node::Str(n.to_string()),
            n if Func::from_name(n).is_some() => {
                return Err(self.err(col, format!("function '{n}' must be followed by '('")));
            }
            n => {
                let hint = [
                    "True",
                    "False",
                    "NULL",
                    "CRLF",
                    "IgnoreThisFlow",
                    "AuthoritativeNull",
                ]
                .iter()
                .chain(ENUM_CONSTANTS.iter())
                .find(|k| k.eq_ignore_ascii_case(n))
                .map(|k| format!(" (did you mean '{k}'? names are case-sensitive)"))
                .unwrap_or_default();
                return Err(self.err(col, format!("unknown identifier '{n}'{hint}")));
            }
        })
    }

    fn call(&mut self, name: &str, col: usize, nest: usize) -> Result<(Node, usize), ExprError> {
        let f = match Func::from_name(name) {
            Some(f) => f,
            None => return Err(self.unknown_function(name, col)),
        };
        self.next(); // '('
        let mut args = Vec::new();
        let mut cols = Vec::new();
        let mut depth = 0usize;
        if matches!(self.peek(), Tok::RParen) {
            self.next();
        } else {
            loop {
                cols.push(self.col());
                let (a, d) = self.binary(1, nest + 1)?;
                depth = depth.max(d);
                args.push(a);
                match self.next() {
                    Tok::Comma => continue,
                    Tok::RParen => break,
                    _ => {
                        let c = self
                            .toks
                            .get(self.pos.saturating_sub(1))
                            .map(|t| t.col)
                            .unwrap_or(col);
                        return Err(
                            self.err(c, format!("expected ',' or ')' in the arguments of {name}"))
                        );
                    }
                }
            }
        }
        self.finish_call(f, name, col, args, &cols, depth)
    }

    #[inline(never)]
    fn unknown_function(&self, name: &str, col: usize) -> ExprError {
        let hint = Func::all_names()
            .find(|k| k.eq_ignore_ascii_case(name))
            .map(|k| format!(" (did you mean '{k}'? function names are case-sensitive)"))
            .unwrap_or_default();
        let cert = if name.starts_with("Cert") || name == "IsCert" {
            " (certificate functions are not supported yet)"
        } else {
            ""
        };
        self.err(col, format!("unknown function '{name}'{hint}{cert}"))
    }

    /// Arity and argument-shape checks; builds the node (kept out of the recursive path).
    #[inline(never)]
    fn finish_call(
        &self,
        f: Func,
        name: &str,
        col: usize,
        args: Vec<Node>,
        cols: &[usize],
        depth: usize,
    ) -> Result<(Node, usize), ExprError> {
        let (lo, hi) = f.arity();
        let n = args.len();
        if n < lo || n > hi {
            let expected = if lo == hi {
                format!("{lo}")
            } else if hi == usize::MAX {
                format!("at least {lo}")
            } else {
                format!("{lo} to {hi}")
            };
            return Err(self.err(
                col,
                format!("{name} takes {expected} argument(s), {n} given"),
            ));
        }
        if f == Func::Switch && n % 2 == 1 {
            return Err(self.err(
                col,
                "Switch takes pairs of condition and value: an even number of arguments",
            ));
        }
        if matches!(f, Func::Select | Func::Where | Func::With)
            && !matches!(args.first(), Some(Node::Var { .. }))
        {
            return Err(self.err(
                cols.first().copied().unwrap_or(col),
                format!("the first argument of {name} must be a variable such as $item"),
            ));
        }
        if matches!(f, Func::ImportedValue | Func::ValueCount) {
            let acol = cols.first().copied().unwrap_or(col);
            return match args.into_iter().next() {
                Some(Node::Str(attr)) if !attr.is_empty() => {
                    let node = if f == Func::ImportedValue {
                        Node::Imported { name: attr, col: acol }
                    } else {
                        Node::ValueCount { name: attr, col: acol }
                    };
                    Ok((node, 1))
                }
                _ => Err(self.err(
                    acol,
                    format!("{name} takes an attribute name as a string constant, e.g. {name}(\"member\")"),
                )),
            };
        }
        Ok((Node::Call { f, args }, depth + 1))
    }
}

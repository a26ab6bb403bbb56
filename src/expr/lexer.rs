//! Tokenizer for the expression language.
//!
//! Columns are one-based and counted in characters, so that a caret can be drawn under the
//! offending character of the source text.

use super::ExprError;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`: addition (concatenation when both sides are strings).
    Add,
    /// `-`: subtraction.
    Sub,
    /// `*`: multiplication.
    Mul,
    /// `&`: string concatenation.
    Concat,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `<>`
    Ne,
    /// `=`
    Eq,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`: logical and.
    And,
    /// `||`: logical or.
    Or,
}

impl Op {
    /// Binding level: 3 for `+ - * &`, 2 for comparisons, 1 for `&& ||`.
    /// Operators of the same level have equal priority and associate left to right.
    pub fn level(self) -> u8 {
        match self {
            Op::Add | Op::Sub | Op::Mul | Op::Concat => 3,
            Op::Lt | Op::Le | Op::Ne | Op::Eq | Op::Gt | Op::Ge => 2,
            Op::And | Op::Or => 1,
        }
    }
}

/// Token kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `"text"` (with `""` as an escaped quote).
    Str(String),
    /// Decimal or `&H` hexadecimal integer (sign handled by the parser).
    Num(u64),
    /// True when the number was written in hexadecimal (`&HFFFFFFFF` wraps to i64 bits).
    Hex(u64),
    /// `[attribute]`
    Attr(String),
    /// `%Parameter%`
    Param(String),
    /// `$variable`
    Var(String),
    /// A function name or keyword.
    Ident(String),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// A binary operator (`-` is also unary minus).
    Op(Op),
    /// End of input.
    Eof,
}

/// A token with its one-based column.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// One-based column (characters) of its first character.
    pub col: usize,
}

fn err(col: usize, message: impl Into<String>, src: &str) -> ExprError {
    ExprError {
        column: col,
        message: message.into(),
        source_text: src.to_string(),
    }
}

/// Splits `src` into tokens.
pub fn tokenize(src: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0usize;
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        let col = i + 1;
        let prev_is_operand = matches!(
            out.last().map(|t| &t.tok),
            Some(
                Tok::Str(_)
                    | Tok::Num(_)
                    | Tok::Hex(_)
                    | Tok::Attr(_)
                    | Tok::Param(_)
                    | Tok::Var(_)
                    | Tok::Ident(_)
                    | Tok::RParen
            )
        );
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '+' => {
                i += 1;
                Tok::Op(Op::Add)
            }
            '-' => {
                i += 1;
                Tok::Op(Op::Sub)
            }
            '*' => {
                i += 1;
                Tok::Op(Op::Mul)
            }
            '=' => {
                i += 1;
                Tok::Op(Op::Eq)
            }
            '<' => match at(i + 1) {
                Some('=') => {
                    i += 2;
                    Tok::Op(Op::Le)
                }
                Some('>') => {
                    i += 2;
                    Tok::Op(Op::Ne)
                }
                _ => {
                    i += 1;
                    Tok::Op(Op::Lt)
                }
            },
            '>' => match at(i + 1) {
                Some('=') => {
                    i += 2;
                    Tok::Op(Op::Ge)
                }
                _ => {
                    i += 1;
                    Tok::Op(Op::Gt)
                }
            },
            '|' => {
                if at(i + 1) == Some('|') {
                    i += 2;
                    Tok::Op(Op::Or)
                } else {
                    return Err(err(col, "'|' must be doubled: '||'", src));
                }
            }
            '&' => {
                if at(i + 1) == Some('&') {
                    i += 2;
                    Tok::Op(Op::And)
                } else if !prev_is_operand
                    && matches!(at(i + 1), Some('H') | Some('h'))
                    && at(i + 2).is_some_and(|d| d.is_ascii_hexdigit())
                {
                    let mut j = i + 2;
                    let mut v: u64 = 0;
                    let mut digits = 0;
                    while let Some(d) = at(j).and_then(|d| d.to_digit(16)) {
                        digits += 1;
                        if digits > 16 {
                            return Err(err(col, "hexadecimal literal longer than 16 digits", src));
                        }
                        v = (v << 4) | u64::from(d);
                        j += 1;
                    }
                    i = j;
                    Tok::Hex(v)
                } else {
                    i += 1;
                    Tok::Op(Op::Concat)
                }
            }
            '"' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match at(j) {
                        None => return Err(err(col, "unterminated string literal", src)),
                        Some('"') => {
                            if at(j + 1) == Some('"') {
                                s.push('"');
                                j += 2;
                            } else {
                                j += 1;
                                break;
                            }
                        }
                        Some(ch) => {
                            s.push(ch);
                            j += 1;
                        }
                    }
                }
                i = j;
                Tok::Str(s)
            }
            '[' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match at(j) {
                        None => {
                            return Err(err(col, "unterminated attribute name: missing ']'", src));
                        }
                        Some(']') => {
                            j += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(ch);
                            j += 1;
                        }
                    }
                }
                if s.trim().is_empty() {
                    return Err(err(col, "empty attribute name", src));
                }
                i = j;
                Tok::Attr(s)
            }
            '%' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match at(j) {
                        None => return Err(err(col, "unterminated parameter: missing '%'", src)),
                        Some('%') => {
                            j += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(ch);
                            j += 1;
                        }
                    }
                }
                if s.trim().is_empty() {
                    return Err(err(col, "empty parameter name", src));
                }
                i = j;
                Tok::Param(s)
            }
            '$' => {
                let mut s = String::new();
                let mut j = i + 1;
                while let Some(ch) = at(j).filter(|ch| ch.is_alphanumeric() || *ch == '_') {
                    s.push(ch);
                    j += 1;
                }
                if s.is_empty() {
                    return Err(err(col, "'$' must be followed by a variable name", src));
                }
                i = j;
                Tok::Var(s)
            }
            d if d.is_ascii_digit() => {
                let mut j = i;
                let mut v: u64 = 0;
                while let Some(dv) = at(j).and_then(|d| d.to_digit(10)) {
                    v = v
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(dv)))
                        .ok_or_else(|| err(col, "number too large for a 64-bit integer", src))?;
                    j += 1;
                }
                if at(j) == Some('.') && at(j + 1).is_some_and(|d| d.is_ascii_digit()) {
                    return Err(err(
                        col,
                        "decimal numbers are not supported (numbers are 64-bit integers)",
                        src,
                    ));
                }
                if at(j).is_some_and(|ch| ch.is_alphabetic() || ch == '_') {
                    return Err(err(j + 1, "unexpected character after number", src));
                }
                i = j;
                Tok::Num(v)
            }
            a if a.is_alphabetic() || a == '_' => {
                let mut s = String::new();
                let mut j = i;
                while let Some(ch) = at(j).filter(|ch| ch.is_alphanumeric() || *ch == '_') {
                    s.push(ch);
                    j += 1;
                }
                i = j;
                Tok::Ident(s)
            }
            '\u{201c}' | '\u{201d}' => {
                return Err(err(
                    col,
                    "smart quote: string constants use straight quotes \"...\"",
                    src,
                ));
            }
            other => return Err(err(col, format!("unexpected character '{other}'"), src)),
        };
        out.push(Token { tok, col });
    }
    out.push(Token {
        tok: Tok::Eof,
        col: chars.len() + 1,
    });
    Ok(out)
}

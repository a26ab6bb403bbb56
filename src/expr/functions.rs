//! The function library (everything except the lazy flow functions, which live in the
//! evaluator).

use super::EvalError;
use super::datetime::{date_add, format_dotnet, from_filetime, parse_cdate, to_filetime};
use super::eval::Lane;
use super::parser::Func;
use super::value::{
    MAX_STR, MAX_VALUES, Val, make_multi, parse_int, rt, str_ref, to_bool, to_int, to_str,
};
use crate::model::{Dn, escape_dn_value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use std::borrow::Cow;
use std::collections::HashSet;

/// Functions that take a multi-valued argument as a whole instead of per value.
fn takes_lists(f: Func) -> bool {
    matches!(
        f,
        Func::Count
            | Func::Item
            | Func::ItemOrNull
            | Func::Join
            | Func::RemoveDuplicates
            | Func::Contains
            | Func::IsNull
            | Func::IsNullOrEmpty
            | Func::IsPresent
            | Func::IsEmpty
    )
}

/// Applies a one-argument scalar function per value.
pub fn map1<'a>(
    v: Val<'a>,
    mut f: impl FnMut(Val<'a>) -> Result<Val<'a>, EvalError>,
) -> Result<Val<'a>, EvalError> {
    match v {
        Val::Multi(items) => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                out.push(f(it)?);
            }
            make_multi(out)
        }
        other => f(other),
    }
}

fn take<'a>(args: &mut [Val<'a>], i: usize) -> Val<'a> {
    args.get_mut(i)
        .map(|v| std::mem::replace(v, Val::Null))
        .unwrap_or(Val::Null)
}

fn has(args: &[Val<'_>], i: usize) -> bool {
    i < args.len()
}

/// Applies `f` to evaluated arguments, per value when an argument is multi-valued.
pub fn apply<'a>(f: Func, args: &mut [Val<'a>]) -> Result<Val<'a>, EvalError> {
    if takes_lists(f) {
        return scalar(f, args);
    }
    let n = match args.iter().find_map(|a| match a {
        Val::Multi(items) => Some(items.len()),
        _ => None,
    }) {
        Some(n) => n,
        None => return scalar(f, args),
    };
    let mut lanes = Vec::with_capacity(args.len());
    for a in args.iter_mut() {
        lanes.push(Lane::new(std::mem::replace(a, Val::Null), n)?);
    }
    let mut out = Vec::with_capacity(n);
    let mut one: Vec<Val<'a>> = Vec::with_capacity(lanes.len());
    for _ in 0..n {
        one.clear();
        one.extend(lanes.iter_mut().map(Lane::next));
        out.push(scalar(f, &mut one)?);
    }
    make_multi(out)
}

/// Keeps a string borrowed when a trim-like function returns a sub-slice of it.
fn slice_cow<'a>(c: Cow<'a, str>, f: impl for<'x> Fn(&'x str) -> &'x str) -> Cow<'a, str> {
    match c {
        Cow::Borrowed(b) => Cow::Borrowed(f(b)),
        Cow::Owned(o) => {
            let r = f(&o);
            if r.len() == o.len() {
                Cow::Owned(o)
            } else {
                Cow::Owned(r.to_string())
            }
        }
    }
}

fn owned(s: String) -> Val<'static> {
    Val::Str(Cow::Owned(s))
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `count` characters from character index `start` (0-based).
fn char_slice(s: &str, start: usize, count: usize) -> &str {
    let b0 = s
        .char_indices()
        .nth(start)
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let rest = s.get(b0..).unwrap_or("");
    let b1 = rest
        .char_indices()
        .nth(count)
        .map(|(i, _)| b0 + i)
        .unwrap_or(s.len());
    s.get(b0..b1).unwrap_or("")
}

fn simple_lower(s: &str) -> String {
    s.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// Text (case-insensitive) comparison when `compare` says so.
fn text_compare(v: &Val<'_>, func: &str) -> Result<bool, EvalError> {
    match v {
        Val::Null => Ok(false),
        Val::Int(0) => Ok(false),
        Val::Int(1) => Ok(true),
        other => match str_ref(other)?.as_ref() {
            "vbBinaryCompare" => Ok(false),
            "vbTextCompare" => Ok(true),
            x => Err(rt(format!(
                "{func}: compare must be vbBinaryCompare or vbTextCompare, not '{x}'"
            ))),
        },
    }
}

fn case_insensitive(v: &Val<'_>) -> Result<bool, EvalError> {
    match v {
        Val::Null => Ok(false),
        other => match str_ref(other)?.as_ref() {
            "CaseSensitive" => Ok(false),
            "CaseInsensitive" => Ok(true),
            x => Err(rt(format!(
                "Contains: case type must be CaseSensitive or CaseInsensitive, not '{x}'"
            ))),
        },
    }
}

/// Replaces the `\n`, `\r` and `\t` monikers with the characters.
fn monikers(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.replace("\\n", "\n")
            .replace("\\r", "\r")
            .replace("\\t", "\t"),
    )
}

fn guid_from_str(s: &str) -> Option<uuid::Uuid> {
    let t = s.trim();
    if t.starts_with("urn:") {
        return None;
    }
    let inner = t
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .unwrap_or(t);
    uuid::Uuid::parse_str(inner).ok()
}

fn sid_to_string(b: &[u8]) -> Result<String, EvalError> {
    let bad = || rt("StringFromSid: not a valid binary SID");
    let (rev, count) = match b {
        [rev, count, ..] => (*rev, usize::from(*count)),
        _ => return Err(bad()),
    };
    if b.len() != 8 + 4 * count {
        return Err(bad());
    }
    let auth = b
        .get(2..8)
        .ok_or_else(bad)?
        .iter()
        .fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
    let mut s = format!("S-{rev}-{auth}");
    for chunk in b.get(8..).ok_or_else(bad)?.chunks_exact(4) {
        let mut w = [0u8; 4];
        w.copy_from_slice(chunk);
        s.push('-');
        s.push_str(&u32::from_le_bytes(w).to_string());
    }
    Ok(s)
}

fn to_dt(v: &Val<'_>, func: &str) -> Result<chrono::DateTime<chrono::Utc>, EvalError> {
    match v {
        Val::Dt(d) => Ok(*d),
        Val::Str(s) => parse_cdate(s).ok_or_else(|| rt(format!("{func}: '{s}' is not a date"))),
        other => Err(rt(format!(
            "{func}: expected a date-time, got {}",
            other.type_name()
        ))),
    }
}

fn parse_dn(v: &Val<'_>, func: &str) -> Result<Dn, EvalError> {
    let s = str_ref(v)?;
    Dn::parse(&s).map_err(|e| rt(format!("{func}: {e}")))
}

fn pad(args: &mut [Val<'_>], left: bool) -> Result<Val<'static>, EvalError> {
    let name = if left { "PadLeft" } else { "PadRight" };
    let s = take(args, 0);
    let len = to_int(&take(args, 1))?;
    let padc = if has(args, 2) {
        let p = take(args, 2);
        let p = str_ref(&p)?;
        let mut it = p.chars();
        match (it.next(), it.next()) {
            (Some(c), None) => c,
            _ => {
                return Err(rt(format!(
                    "{name}: the padding must be exactly one character"
                )));
            }
        }
    } else {
        ' '
    };
    if s.is_nullish() {
        return Ok(owned(String::new()));
    }
    let s = to_str(s)?;
    let cur = char_len(&s);
    let want = usize::try_from(len).unwrap_or(0);
    if want <= cur {
        return Ok(owned(s.into_owned()));
    }
    if want.saturating_mul(padc.len_utf8()) > MAX_STR {
        return Err(rt(format!("{name}: length too large")));
    }
    let fill: String = std::iter::repeat_n(padc, want - cur).collect();
    Ok(owned(if left {
        fill + &s
    } else {
        s.into_owned() + &fill
    }))
}

fn pcase(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let letters = word.chars().filter(|c| c.is_alphabetic());
        let all_upper =
            word.chars().any(char::is_alphabetic) && letters.clone().all(|c| !c.is_lowercase());
        if all_upper {
            out.push_str(word);
        } else {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                for c in chars {
                    out.extend(c.to_lowercase());
                }
            }
        }
        word.clear();
    };
    for c in s.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn replace_chars(s: &str, pattern: &str) -> Result<String, EvalError> {
    let compact: String = pattern.chars().filter(|c| !c.is_whitespace()).collect();
    let mut map: Vec<(char, &str)> = Vec::new();
    for entry in compact.split(',') {
        if entry.is_empty() {
            continue;
        }
        let (src, tgt) = entry.split_once(':').ok_or_else(|| {
            rt(format!(
                "ReplaceChars: entry '{entry}' must be source:target"
            ))
        })?;
        let mut it = src.chars();
        let c = match (it.next(), it.next()) {
            (Some(c), None) => c,
            _ => {
                return Err(rt(format!(
                    "ReplaceChars: the source '{src}' must be exactly one character"
                )));
            }
        };
        map.push((c, tgt));
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match map.iter().find(|(k, _)| *k == c) {
            Some((_, t)) => out.push_str(t),
            None => out.push(c),
        }
        if out.len() > MAX_STR {
            return Err(rt("ReplaceChars: result too long"));
        }
    }
    Ok(out)
}

/// 1-based position of `m` in `s` at or after char position `start`, 0 when absent.
fn instr(s: &str, m: &str, start: usize, text: bool) -> i64 {
    let (s, m): (Cow<'_, str>, Cow<'_, str>) = if text {
        (Cow::Owned(simple_lower(s)), Cow::Owned(simple_lower(m)))
    } else {
        (Cow::Borrowed(s), Cow::Borrowed(m))
    };
    let len = char_len(&s);
    if start > len + 1 {
        return 0;
    }
    if m.is_empty() {
        return start as i64;
    }
    let b0 = s
        .char_indices()
        .nth(start - 1)
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    match s.get(b0..).and_then(|rest| rest.find(m.as_ref())) {
        Some(bi) => (char_len(s.get(..b0 + bi).unwrap_or("")) + 1) as i64,
        None => 0,
    }
}

/// 1-based position of the last `m` in `s` ending at or before char position `start`.
fn instr_rev(s: &str, m: &str, start: Option<usize>, text: bool) -> i64 {
    let (s, m): (Cow<'_, str>, Cow<'_, str>) = if text {
        (Cow::Owned(simple_lower(s)), Cow::Owned(simple_lower(m)))
    } else {
        (Cow::Borrowed(s), Cow::Borrowed(m))
    };
    let len = char_len(&s);
    let start = start.unwrap_or(len);
    if start > len {
        return 0;
    }
    if m.is_empty() {
        return start as i64;
    }
    let prefix = char_slice(&s, 0, start);
    match prefix.rfind(m.as_ref()) {
        Some(bi) => (char_len(prefix.get(..bi).unwrap_or("")) + 1) as i64,
        None => 0,
    }
}

fn random_between(lo: i64, hi: i64) -> Result<i64, EvalError> {
    if lo > hi {
        return Err(rt("RandomNum: start must not be greater than end"));
    }
    let span = (i128::from(hi) - i128::from(lo) + 1) as u128;
    let r = uuid::Uuid::new_v4().as_u128() % span;
    i64::try_from(i128::from(lo) + r as i128).map_err(|_| rt("RandomNum: out of range"))
}

/// One call on scalar arguments (or whole lists for [`takes_lists`] functions).
fn scalar<'a>(f: Func, args: &mut [Val<'a>]) -> Result<Val<'a>, EvalError> {
    let a0 = take(args, 0);
    // NULL in the first argument gives NULL for most functions.
    let null_in = a0.is_nullish();
    macro_rules! null_gives_null {
        () => {
            if null_in {
                return Ok(Val::Null);
            }
        };
    }
    Ok(match f {
        // ---- conversion ----
        Func::CBool => {
            null_gives_null!();
            Val::Bool(to_bool(&a0)?)
        }
        Func::CDate => {
            null_gives_null!();
            Val::Dt(to_dt(&a0, "CDate")?)
        }
        Func::CGuid => {
            null_gives_null!();
            let s = str_ref(&a0)?;
            let g = guid_from_str(&s).ok_or_else(|| rt(format!("CGuid: '{s}' is not a GUID")))?;
            Val::Bin(Cow::Owned(g.to_bytes_le().to_vec()))
        }
        Func::ConvertFromBase64 => {
            null_gives_null!();
            let enc = if has(args, 1) {
                to_str(take(args, 1))?.into_owned()
            } else {
                "Unicode".to_string()
            };
            let s = str_ref(&a0)?;
            let bytes = B64
                .decode(s.trim().as_bytes())
                .map_err(|e| rt(format!("ConvertFromBase64: invalid base64: {e}")))?;
            let text = match enc.as_str() {
                "Unicode" => {
                    if bytes.len() % 2 != 0 {
                        return Err(rt("ConvertFromBase64: odd number of bytes for Unicode"));
                    }
                    let units: Vec<u16> = bytes
                        .chunks_exact(2)
                        .map(|c| match c {
                            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
                            _ => 0,
                        })
                        .collect();
                    String::from_utf16(&units)
                        .map_err(|_| rt("ConvertFromBase64: invalid UTF-16 text"))?
                }
                "UTF8" => String::from_utf8(bytes)
                    .map_err(|_| rt("ConvertFromBase64: invalid UTF-8 text"))?,
                "ASCII" => bytes
                    .iter()
                    .map(|b| if b.is_ascii() { char::from(*b) } else { '?' })
                    .collect(),
                other => {
                    return Err(rt(format!(
                        "ConvertFromBase64: encoding must be Unicode, UTF8 or ASCII, not '{other}'"
                    )));
                }
            };
            owned(text)
        }
        Func::ConvertToBase64 => {
            null_gives_null!();
            let encoded = match &a0 {
                Val::Bin(b) => B64.encode(b),
                other => {
                    let s = str_ref(other)?;
                    let mut bytes = Vec::with_capacity(s.len() * 2);
                    for u in s.encode_utf16() {
                        bytes.extend_from_slice(&u.to_le_bytes());
                    }
                    B64.encode(bytes)
                }
            };
            owned(encoded)
        }
        Func::ConvertToUTF8Hex => {
            null_gives_null!();
            let s = str_ref(&a0)?;
            let mut out = String::with_capacity(s.len() * 2);
            for b in s.bytes() {
                out.push_str(&format!("{b:02X}"));
            }
            owned(out)
        }
        Func::ConvertFromUTF8Hex => {
            null_gives_null!();
            let s = str_ref(&a0)?;
            let t = s.trim();
            if t.len() % 2 != 0 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(rt(
                    "ConvertFromUTF8Hex: expected pairs of hexadecimal digits",
                ));
            }
            let bytes: Vec<u8> = t
                .as_bytes()
                .chunks_exact(2)
                .map(|p| match p {
                    [h, l] => {
                        let hi = char::from(*h).to_digit(16).unwrap_or(0);
                        let lo = char::from(*l).to_digit(16).unwrap_or(0);
                        (hi * 16 + lo) as u8
                    }
                    _ => 0,
                })
                .collect();
            owned(String::from_utf8(bytes).map_err(|_| rt("ConvertFromUTF8Hex: not valid UTF-8"))?)
        }
        Func::CNum => {
            null_gives_null!();
            Val::Int(to_int(&a0)?)
        }
        Func::CRef => {
            null_gives_null!();
            Val::Ref(to_str(a0)?)
        }
        Func::CStr => {
            null_gives_null!();
            Val::Str(to_str(a0)?)
        }
        Func::CBin => {
            null_gives_null!();
            match a0 {
                Val::Bin(b) => Val::Bin(b),
                Val::Str(s) | Val::Ref(s) => Val::Bin(match s {
                    Cow::Borrowed(b) => Cow::Borrowed(b.as_bytes()),
                    Cow::Owned(o) => Cow::Owned(o.into_bytes()),
                }),
                Val::Int(i) => Val::Bin(Cow::Owned(i.to_le_bytes().to_vec())),
                other => {
                    return Err(rt(format!(
                        "CBin: cannot convert {} to binary",
                        other.type_name()
                    )));
                }
            }
        }
        Func::StringFromGuid => {
            null_gives_null!();
            match &a0 {
                Val::Bin(b) => {
                    let arr: [u8; 16] = b
                        .as_ref()
                        .try_into()
                        .map_err(|_| rt("StringFromGuid: a GUID has 16 bytes"))?;
                    owned(uuid::Uuid::from_bytes_le(arr).hyphenated().to_string())
                }
                other => {
                    return Err(rt(format!(
                        "StringFromGuid: expected binary, got {}",
                        other.type_name()
                    )));
                }
            }
        }
        Func::StringFromSid => {
            null_gives_null!();
            match &a0 {
                Val::Bin(b) => owned(sid_to_string(b)?),
                other => {
                    return Err(rt(format!(
                        "StringFromSid: expected binary, got {}",
                        other.type_name()
                    )));
                }
            }
        }
        // ---- date / time ----
        Func::DateAdd => {
            let interval = to_str(a0)?;
            let n = to_int(&take(args, 1))?;
            let d = take(args, 2);
            if d.is_nullish() {
                return Ok(Val::Null);
            }
            Val::Dt(date_add(&interval, n, to_dt(&d, "DateAdd")?)?)
        }
        Func::DateFromNum => {
            null_gives_null!();
            Val::Dt(from_filetime(to_int(&a0)?)?)
        }
        Func::FormatDateTime => {
            null_gives_null!();
            let d = to_dt(&a0, "FormatDateTime")?;
            let fmt = to_str(take(args, 1))?;
            owned(format_dotnet(&d, &fmt))
        }
        Func::Now => Val::Dt(chrono::Utc::now()),
        Func::NumFromDate => {
            null_gives_null!();
            Val::Int(to_filetime(&to_dt(&a0, "NumFromDate")?)?)
        }
        // ---- directory ----
        Func::DNComponent | Func::DNComponentRev => {
            null_gives_null!();
            let name = if f == Func::DNComponent {
                "DNComponent"
            } else {
                "DNComponentRev"
            };
            let dn = parse_dn(&a0, name)?;
            let n = to_int(&take(args, 1))?;
            let dc_only = if has(args, 2) {
                match str_ref(&take(args, 2))?.as_ref() {
                    "DC" => true,
                    other => {
                        return Err(rt(format!(
                            "DNComponentRev: unknown option '{other}' (only \"DC\")"
                        )));
                    }
                }
            } else {
                false
            };
            let idx = match usize::try_from(n) {
                Ok(i) if i >= 1 => i - 1,
                _ => return Ok(Val::Null),
            };
            let rdn = if f == Func::DNComponent {
                dn.rdns.get(idx)
            } else {
                dn.rdns
                    .iter()
                    .rev()
                    .filter(|r| !(dc_only && r.attr().eq_ignore_ascii_case("dc")))
                    .nth(idx)
            };
            match rdn {
                Some(r) => owned(r.value().to_string()),
                None => Val::Null,
            }
        }
        Func::EscapeDNComponent => {
            null_gives_null!();
            let s = str_ref(&a0)?;
            let escaped = match s.split_once('=') {
                Some((attr, value))
                    if !attr.trim().is_empty()
                        && attr
                            .trim()
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') =>
                {
                    format!("{}={}", attr.trim(), escape_dn_value(value))
                }
                _ => escape_dn_value(&s),
            };
            owned(escaped)
        }
        // ---- evaluation ----
        Func::IsBitSet => {
            let flag = to_int(&take(args, 1))?;
            if null_in {
                return Ok(Val::Bool(false));
            }
            let v = to_int(&a0)?;
            Val::Bool(flag != 0 && v & flag == flag)
        }
        Func::IsDate => Val::Bool(match &a0 {
            Val::Dt(_) => true,
            Val::Str(s) => parse_cdate(s).is_some(),
            _ => false,
        }),
        Func::IsEmpty => Val::Bool(match &a0 {
            Val::Str(s) | Val::Ref(s) => s.is_empty(),
            Val::Bin(b) => b.is_empty(),
            _ => false,
        }),
        Func::IsGuid => Val::Bool(match &a0 {
            Val::Str(s) => guid_from_str(s).is_some(),
            _ => false,
        }),
        Func::IsNull => Val::Bool(null_in),
        Func::IsNullOrEmpty | Func::IsPresent => {
            let empty = match &a0 {
                Val::Str(s) | Val::Ref(s) => s.is_empty(),
                Val::Bin(b) => b.is_empty(),
                v => v.is_nullish(),
            };
            Val::Bool(if f == Func::IsPresent { !empty } else { empty })
        }
        // IsNumeric and IsString tell whether CNum and CStr would succeed (as documented).
        Func::IsNumeric => Val::Bool(match &a0 {
            Val::Int(_) | Val::Bool(_) => true,
            Val::Str(s) => parse_int(s).is_some(),
            _ => false,
        }),
        Func::IsString => Val::Bool(matches!(
            a0,
            Val::Str(_) | Val::Ref(_) | Val::Int(_) | Val::Bool(_) | Val::Dt(_)
        )),
        // ---- math ----
        Func::BitAnd | Func::BitOr => {
            let b = take(args, 1);
            if null_in || b.is_nullish() {
                return Ok(Val::Null);
            }
            let (x, y) = (to_int(&a0)?, to_int(&b)?);
            Val::Int(if f == Func::BitAnd { x & y } else { x | y })
        }
        Func::RandomNum => {
            let hi = to_int(&take(args, 1))?;
            Val::Int(random_between(to_int(&a0)?, hi)?)
        }
        // ---- multi-valued ----
        Func::Contains => {
            let search = take(args, 1);
            let ci = if has(args, 2) {
                case_insensitive(&take(args, 2))?
            } else {
                false
            };
            let needle = str_ref(&search)?;
            let needle_l = if ci {
                simple_lower(&needle)
            } else {
                String::new()
            };
            let mut found = 0i64;
            for (i, v) in a0.into_list().iter().enumerate() {
                let hit = match v {
                    Val::Ref(r) => {
                        if ci {
                            r.to_lowercase() == needle_l
                        } else {
                            r.as_ref() == needle.as_ref()
                        }
                    }
                    Val::Bin(_) => false,
                    other => {
                        let s = str_ref(other)?;
                        if ci {
                            simple_lower(&s).contains(&needle_l)
                        } else {
                            s.contains(needle.as_ref())
                        }
                    }
                };
                if hit {
                    found = i64::try_from(i + 1).unwrap_or(i64::MAX);
                    break;
                }
            }
            Val::Int(found)
        }
        Func::Count => Val::Int(i64::try_from(a0.count()).unwrap_or(i64::MAX)),
        Func::Item | Func::ItemOrNull => {
            let idx = to_int(&take(args, 1))?;
            let list = a0.into_list();
            let n = list.len();
            let pos = usize::try_from(idx).ok().filter(|i| *i >= 1);
            match pos.and_then(|p| list.into_iter().nth(p - 1)) {
                Some(v) => v,
                None if f == Func::ItemOrNull => Val::Null,
                None => {
                    return Err(rt(format!(
                        "Item: index {idx} is out of range (the attribute has {n} value(s))"
                    )));
                }
            }
        }
        Func::Join => {
            let delim = if has(args, 1) {
                to_str(take(args, 1))?
            } else {
                Cow::Borrowed(" ")
            };
            if null_in {
                return Ok(Val::Null);
            }
            let mut out = String::new();
            for (i, v) in a0.into_list().into_iter().enumerate() {
                if i > 0 {
                    out.push_str(&delim);
                }
                out.push_str(&to_str(v)?);
                if out.len() > MAX_STR {
                    return Err(rt("Join: result too long"));
                }
            }
            owned(out)
        }
        Func::RemoveDuplicates => {
            null_gives_null!();
            let mut seen: HashSet<Val<'a>> = HashSet::new();
            let mut out = Vec::new();
            for v in a0.into_list() {
                if seen.insert(v.clone()) {
                    out.push(v);
                }
            }
            make_multi(out)?
        }
        Func::Split => {
            let delim = to_str(take(args, 1))?;
            let limit = if has(args, 2) {
                Some(to_int(&take(args, 2))?)
            } else {
                None
            };
            null_gives_null!();
            if delim.is_empty() {
                return Err(rt("Split: the delimiter must not be empty"));
            }
            let s = to_str(a0)?;
            let parts: Vec<Val<'a>> = match limit {
                Some(l) if l < 0 => return Err(rt("Split: the limit must not be negative")),
                Some(0) => Vec::new(),
                Some(l) => {
                    let l = usize::try_from(l).unwrap_or(usize::MAX);
                    s.splitn(l, delim.as_ref())
                        .take(MAX_VALUES + 1)
                        .map(|p| owned(p.to_string()))
                        .collect()
                }
                None => s
                    .split(delim.as_ref())
                    .take(MAX_VALUES + 1)
                    .map(|p| owned(p.to_string()))
                    .collect(),
            };
            make_multi(parts)?
        }
        // ---- text ----
        Func::GUID => owned(uuid::Uuid::new_v4().hyphenated().to_string()),
        Func::InStr | Func::InStrRev => {
            let m = take(args, 1);
            let start = if has(args, 2) {
                Some(to_int(&take(args, 2))?)
            } else {
                None
            };
            let text = if has(args, 3) {
                text_compare(&take(args, 3), f.name())?
            } else {
                false
            };
            null_gives_null!();
            let s = str_ref(&a0)?;
            let m = str_ref(&m)?;
            if f == Func::InStr {
                let start = start.unwrap_or(1);
                let start = usize::try_from(start)
                    .ok()
                    .filter(|s| *s >= 1)
                    .ok_or_else(|| rt("InStr: start must be 1 or more"))?;
                Val::Int(instr(&s, &m, start, text))
            } else {
                let start = match start {
                    None | Some(-1) => None,
                    Some(x) => Some(
                        usize::try_from(x)
                            .ok()
                            .filter(|s| *s >= 1)
                            .ok_or_else(|| rt("InStrRev: start must be -1 or 1 or more"))?,
                    ),
                };
                Val::Int(instr_rev(&s, &m, start, text))
            }
        }
        Func::LCase => {
            null_gives_null!();
            owned(str_ref(&a0)?.to_lowercase())
        }
        Func::UCase => {
            null_gives_null!();
            owned(str_ref(&a0)?.to_uppercase())
        }
        Func::Left | Func::Right => {
            let n = to_int(&take(args, 1))?;
            if null_in {
                return Ok(owned(String::new()));
            }
            let s = to_str(a0)?;
            if n == 0 {
                return Ok(owned(String::new()));
            }
            if n < 0 {
                return Ok(Val::Str(s));
            }
            let len = char_len(&s);
            let n = usize::try_from(n).unwrap_or(usize::MAX).min(len);
            let start = if f == Func::Left { 0 } else { len - n };
            Val::Str(slice_cow(s, |x| char_slice(x, start, n)))
        }
        Func::Mid => {
            let start = to_int(&take(args, 1))?;
            // Without NumChars (as in the reference's own example), up to the end.
            let n = if has(args, 2) {
                to_int(&take(args, 2))?
            } else {
                i64::MAX
            };
            if null_in {
                return Ok(owned(String::new()));
            }
            let s = to_str(a0)?;
            if n == 0 {
                return Ok(owned(String::new()));
            }
            let len = i64::try_from(char_len(&s)).unwrap_or(i64::MAX);
            if n < 0 || start <= 0 || start > len {
                return Ok(Val::Str(s));
            }
            let st = usize::try_from(start - 1).unwrap_or(0);
            let cnt = usize::try_from(n).unwrap_or(usize::MAX);
            Val::Str(slice_cow(s, |x| char_slice(x, st, cnt)))
        }
        Func::Len => {
            if null_in {
                return Ok(Val::Int(0));
            }
            Val::Int(i64::try_from(char_len(&str_ref(&a0)?)).unwrap_or(i64::MAX))
        }
        Func::Trim | Func::LTrim | Func::RTrim => {
            null_gives_null!();
            let s = to_str(a0)?;
            Val::Str(match f {
                Func::Trim => slice_cow(s, str::trim),
                Func::LTrim => slice_cow(s, str::trim_start),
                _ => slice_cow(s, str::trim_end),
            })
        }
        Func::PadLeft | Func::PadRight => {
            let mut all = [a0, take(args, 1), take(args, 2)];
            let n = args.len().min(3);
            pad(all.get_mut(..n).unwrap_or(&mut []), f == Func::PadLeft)?
        }
        Func::PCase => {
            null_gives_null!();
            owned(pcase(&str_ref(&a0)?))
        }
        Func::Replace => {
            let old = take(args, 1);
            let new = take(args, 2);
            null_gives_null!();
            let s = to_str(a0)?;
            let old = str_ref(&old)?;
            let old = monikers(&old);
            if old.is_empty() {
                return Ok(Val::Str(s));
            }
            let new = str_ref(&new)?;
            let new = monikers(&new);
            let hits = s.matches(old.as_ref()).count();
            if hits == 0 {
                return Ok(Val::Str(s));
            }
            let size = s.len().saturating_add(hits.saturating_mul(new.len()));
            if size > MAX_STR {
                return Err(rt("Replace: result too long"));
            }
            owned(s.replace(old.as_ref(), &new))
        }
        Func::ReplaceChars => {
            let pattern = take(args, 1);
            null_gives_null!();
            let s = str_ref(&a0)?;
            owned(replace_chars(&s, &str_ref(&pattern)?)?)
        }
        Func::Word => {
            let n = to_int(&take(args, 1))?;
            let delims = take(args, 2);
            let delims = str_ref(&delims)?;
            if null_in || n < 1 {
                return Ok(owned(String::new()));
            }
            let s = to_str(a0)?;
            let idx = usize::try_from(n - 1).unwrap_or(usize::MAX);
            let word = s
                .split(|c: char| delims.contains(c))
                .filter(|w| !w.is_empty())
                .nth(idx)
                .map(str::to_string)
                .unwrap_or_default();
            owned(word)
        }
        Func::IIF
        | Func::Switch
        | Func::Select
        | Func::Where
        | Func::With
        | Func::Error
        | Func::ImportedValue
        | Func::ValueCount => {
            return Err(rt(format!("internal: {} is evaluated lazily", f.name())));
        }
    })
}

//! Date-time helpers: CDate parsing, AD FILETIME conversion, DateAdd, .NET-style formats.

use super::EvalError;
use super::value::rt;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Timelike, Utc};

/// Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
const FILETIME_EPOCH_OFFSET: i64 = 11_644_473_600;
const TICKS_PER_SEC: i64 = 10_000_000;

/// AD FILETIME (100 ns ticks since 1601-01-01 UTC) to a date-time.
pub fn from_filetime(ticks: i64) -> Result<DateTime<Utc>, EvalError> {
    let secs = ticks.div_euclid(TICKS_PER_SEC) - FILETIME_EPOCH_OFFSET;
    let nanos = u32::try_from(ticks.rem_euclid(TICKS_PER_SEC) * 100)
        .map_err(|_| rt("DateFromNum: value out of range"))?;
    DateTime::from_timestamp(secs, nanos).ok_or_else(|| rt("DateFromNum: value out of range"))
}

/// A date-time to AD FILETIME.
pub fn to_filetime(d: &DateTime<Utc>) -> Result<i64, EvalError> {
    d.timestamp()
        .checked_add(FILETIME_EPOCH_OFFSET)
        .and_then(|s| s.checked_mul(TICKS_PER_SEC))
        .and_then(|t| t.checked_add(i64::from(d.timestamp_subsec_nanos() / 100)))
        .ok_or_else(|| rt("NumFromDate: date out of the FILETIME range"))
}

/// `DateAdd(interval, number, date)` with VBA intervals.
pub fn date_add(interval: &str, n: i64, d: DateTime<Utc>) -> Result<DateTime<Utc>, EvalError> {
    let overflow = || rt(format!("DateAdd: result out of range ({interval}, {n})"));
    let months = |m: i64| -> Result<DateTime<Utc>, EvalError> {
        let abs = u32::try_from(m.unsigned_abs()).map_err(|_| overflow())?;
        if m >= 0 {
            d.checked_add_months(Months::new(abs))
        } else {
            d.checked_sub_months(Months::new(abs))
        }
        .ok_or_else(overflow)
    };
    let dur = |x: Option<Duration>| -> Result<DateTime<Utc>, EvalError> {
        x.and_then(|x| d.checked_add_signed(x)).ok_or_else(overflow)
    };
    match interval {
        "yyyy" => months(n.checked_mul(12).ok_or_else(overflow)?),
        "q" => months(n.checked_mul(3).ok_or_else(overflow)?),
        "m" => months(n),
        "y" | "d" | "w" => dur(Duration::try_days(n)),
        "ww" => dur(Duration::try_weeks(n)),
        "h" => dur(Duration::try_hours(n)),
        "n" => dur(Duration::try_minutes(n)),
        "s" => dur(Duration::try_seconds(n)),
        other => Err(rt(format!(
            "DateAdd: unknown interval '{other}' (yyyy, q, m, y, d, w, ww, h, n, s)"
        ))),
    }
}

struct Cursor<'s> {
    s: &'s [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c == b' ' || c == b'\t') {
            self.i += 1;
        }
    }
    fn num(&mut self) -> Option<(i64, usize)> {
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
            self.i += 1;
            if self.i - start > 9 {
                return None;
            }
        }
        (self.i > start).then_some((v, self.i - start))
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_ci(&mut self, word: &str) -> bool {
        let w = word.as_bytes();
        match self.s.get(self.i..self.i + w.len()) {
            Some(part) if part.eq_ignore_ascii_case(w) => {
                self.i += w.len();
                true
            }
            _ => false,
        }
    }
}

/// Parses the date-time forms CDate accepts: RFC 3339, LDAP GeneralizedTime,
/// `yyyy-MM-dd[ HH:mm[:ss[.f]]][ AM|PM][ Z|±h[h][:mm]]`, `yyyy/MM/dd ...`, `MM/dd/yyyy ...`
/// and `dd.MM.yyyy ...`. Without a zone the time is UTC.
pub fn parse_cdate(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(t) {
        return Some(d.with_timezone(&Utc));
    }
    if t.len() >= 14 && t.bytes().take(14).all(|b| b.is_ascii_digit()) {
        return parse_generalized(t);
    }
    let has_letters = t.bytes().any(|b| b.is_ascii_alphabetic());
    if let Some(iso) = has_letters.then(|| month_names_to_iso(t)).flatten() {
        return parse_cdate(&iso);
    }
    let mut c = Cursor {
        s: t.as_bytes(),
        i: 0,
    };
    let (a, alen) = c.num()?;
    let sep = c.peek()?;
    if !matches!(sep, b'-' | b'/' | b'.') {
        return None;
    }
    c.i += 1;
    let (b, _) = c.num()?;
    if !c.eat(sep) {
        return None;
    }
    let (e, elen) = c.num()?;
    let (y, m, d) = if alen == 4 {
        (a, b, e)
    } else if elen == 4 && sep == b'.' {
        (e, b, a)
    } else if elen == 4 {
        (e, a, b)
    } else {
        return None;
    };
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(y).ok()?,
        u32::try_from(m).ok()?,
        u32::try_from(d).ok()?,
    )?;
    let (mut h, mut mi, mut s, mut nanos) = (0i64, 0i64, 0i64, 0u32);
    let mut offset_min: i64 = 0;
    if !c.eat(b'T') {
        c.skip_ws();
    }
    if c.peek().is_some_and(|x| x.is_ascii_digit()) {
        h = c.num()?.0;
        if !c.eat(b':') {
            return None;
        }
        mi = c.num()?.0;
        if c.eat(b':') {
            s = c.num()?.0;
            if c.eat(b'.') {
                let start = c.i;
                let (f, flen) = c.num()?;
                let _ = start;
                let scale = 10u32.checked_pow(9u32.checked_sub(u32::try_from(flen).ok()?)?)?;
                nanos = u32::try_from(f).ok()?.checked_mul(scale)?;
            }
        }
        c.skip_ws();
        if c.eat_ci("AM") {
            if !(1..=12).contains(&h) {
                return None;
            }
            if h == 12 {
                h = 0;
            }
        } else if c.eat_ci("PM") {
            if !(1..=12).contains(&h) {
                return None;
            }
            if h != 12 {
                h += 12;
            }
        }
        c.skip_ws();
    }
    if c.eat(b'Z') || c.eat_ci("UTC") || c.eat_ci("GMT") {
    } else if let Some(sign) = c.peek().filter(|x| *x == b'+' || *x == b'-') {
        c.i += 1;
        let (oh, olen) = c.num()?;
        let (oh, om) = if olen > 2 {
            (oh / 100, oh % 100)
        } else if c.eat(b':') {
            (oh, c.num()?.0)
        } else {
            (oh, 0)
        };
        if oh > 14 || om > 59 {
            return None;
        }
        offset_min = (oh * 60 + om) * if sign == b'-' { -1 } else { 1 };
    }
    c.skip_ws();
    if c.i != c.s.len() || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let naive = date.and_hms_nano_opt(
        u32::try_from(h).ok()?,
        u32::try_from(mi).ok()?,
        u32::try_from(s).ok()?,
        nanos,
    )?;
    Utc.from_utc_datetime(&naive)
        .checked_sub_signed(Duration::try_minutes(offset_min)?)
}

/// LDAP GeneralizedTime: `yyyyMMddHHmmss[.f][Z|±hhmm]` (no zone = UTC).
fn parse_generalized(t: &str) -> Option<DateTime<Utc>> {
    let digits = t.get(..14)?;
    let naive = chrono::NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M%S").ok()?;
    let mut rest = t.get(14..)?;
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        let f = frac.get(..n)?;
        for (i, b) in f.bytes().take(9).enumerate() {
            nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = frac.get(n..)?;
    }
    let offset_min: i64 = match rest {
        "" | "Z" => 0,
        z => {
            let (sign, hhmm) = match z.split_at_checked(1)? {
                ("+", r) => (1, r),
                ("-", r) => (-1, r),
                _ => return None,
            };
            if hhmm.len() != 4 || !hhmm.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let v: i64 = hhmm.parse().ok()?;
            sign * ((v / 100) * 60 + v % 100)
        }
    };
    Utc.from_utc_datetime(&naive)
        .checked_add_signed(Duration::nanoseconds(i64::from(nanos)))?
        .checked_sub_signed(Duration::try_minutes(offset_min)?)
}

/// Rewrites `10 Jan 2013 ...`, `January 10, 2013 ...` or `Thu Jan 10 2013 ...` as
/// `2013-01-10 ...` (day names are ignored).
fn month_names_to_iso(t: &str) -> Option<String> {
    let words: Vec<&str> = t
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut month = None;
    let mut day = None;
    let mut year = None;
    let mut rest: Vec<&str> = Vec::new();
    for w in words {
        let lower = w.to_ascii_lowercase();
        let is_num = w.bytes().all(|b| b.is_ascii_digit());
        let month_hit = if month.is_none() && lower.len() >= 3 {
            MONTHS
                .iter()
                .position(|m| m.to_ascii_lowercase().starts_with(&lower) && lower.len() <= m.len())
        } else {
            None
        };
        if let Some(i) = month_hit {
            month = Some(i + 1);
            continue;
        }
        if DAYS.iter().any(|d| {
            let dl = d.to_ascii_lowercase();
            lower.len() >= 3 && dl.starts_with(&lower)
        }) {
            continue;
        }
        if is_num && w.len() == 4 && year.is_none() {
            year = Some(w);
        } else if is_num && w.len() <= 2 && day.is_none() {
            day = Some(w);
        } else {
            rest.push(w);
        }
    }
    let (m, d, y) = (month?, day?, year?);
    let mut out = format!("{y}-{m:02}-{d:0>2}");
    for r in rest {
        out.push(' ');
        out.push_str(r);
    }
    Some(out)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Formats a date-time with a .NET custom format string (invariant culture), e.g.
/// `yyyyMMddHHmmss.0Z`; the single-letter standard formats d D f F g G o s t T u are mapped
/// to their invariant patterns.
pub fn format_dotnet(d: &DateTime<Utc>, fmt: &str) -> String {
    let fmt = match fmt {
        "d" => "MM/dd/yyyy",
        "D" => "dddd, dd MMMM yyyy",
        "f" => "dddd, dd MMMM yyyy HH:mm",
        "F" => "dddd, dd MMMM yyyy HH:mm:ss",
        "g" => "MM/dd/yyyy HH:mm",
        "G" => "MM/dd/yyyy HH:mm:ss",
        "o" | "O" => "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
        "s" => "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
        "t" => "HH:mm",
        "T" => "HH:mm:ss",
        "u" => "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
        other => other,
    };
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::with_capacity(fmt.len() + 8);
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        match c {
            'y' => {
                let y = d.year();
                match n {
                    1 => out.push_str(&(y % 100).to_string()),
                    2 => out.push_str(&format!("{:02}", y % 100)),
                    _ => out.push_str(&format!("{:0width$}", y, width = n)),
                }
            }
            'M' => match n {
                1 => out.push_str(&d.month().to_string()),
                2 => out.push_str(&format!("{:02}", d.month())),
                _ => {
                    let name = MONTHS.get(d.month0() as usize).copied().unwrap_or("");
                    out.push_str(if n == 3 {
                        name.get(..3).unwrap_or(name)
                    } else {
                        name
                    });
                }
            },
            'd' => match n {
                1 => out.push_str(&d.day().to_string()),
                2 => out.push_str(&format!("{:02}", d.day())),
                _ => {
                    let idx = d.weekday().num_days_from_monday() as usize;
                    let name = DAYS.get(idx).copied().unwrap_or("");
                    out.push_str(if n == 3 {
                        name.get(..3).unwrap_or(name)
                    } else {
                        name
                    });
                }
            },
            'H' | 'h' | 'm' | 's' => {
                let v = match c {
                    'H' => d.hour(),
                    'h' => match d.hour() % 12 {
                        0 => 12,
                        x => x,
                    },
                    'm' => d.minute(),
                    _ => d.second(),
                };
                if n == 1 {
                    out.push_str(&v.to_string());
                } else {
                    out.push_str(&format!("{v:02}"));
                }
            }
            'f' | 'F' => {
                let digits = format!("{:09}", d.timestamp_subsec_nanos());
                let take = n.min(7);
                let mut part = digits.get(..take).unwrap_or("").to_string();
                if c == 'F' {
                    while part.ends_with('0') {
                        part.pop();
                    }
                    if part.is_empty() && out.ends_with('.') {
                        out.pop();
                    }
                }
                out.push_str(&part);
            }
            't' => {
                let am = d.hour() < 12;
                out.push_str(match (n, am) {
                    (1, true) => "A",
                    (1, false) => "P",
                    (_, true) => "AM",
                    (_, false) => "PM",
                });
            }
            'K' => out.push('Z'),
            'z' => out.push_str(match n {
                1 => "+0",
                2 => "+00",
                _ => "+00:00",
            }),
            '\'' | '"' => {
                // Quoted literal: copy up to the matching quote.
                let mut j = i + 1;
                while let Some(&q) = chars.get(j) {
                    if q == c {
                        break;
                    }
                    out.push(q);
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            '\\' => {
                if let Some(&lit) = chars.get(i + 1) {
                    out.push(lit);
                }
                i += 2;
                continue;
            }
            '%' => {
                i += 1;
                continue;
            }
            other => {
                for _ in 0..n {
                    out.push(other);
                }
            }
        }
        i += n;
    }
    out
}

//! A small, panic-free BER reader and writer for control values (paged results, content sync,
//! DirSync). Only definite lengths and low tag numbers are supported, as LDAP uses.

/// A malformed BER encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed BER: {0}")]
pub struct BerError(pub &'static str);

/// One decoded TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet (class, constructed bit and tag number).
    pub tag: u8,
    /// The contents octets.
    pub value: &'a [u8],
}

impl Tlv<'_> {
    /// Tag number without class and constructed bits.
    pub fn number(&self) -> u8 {
        self.tag & 0x1f
    }
    /// Class bits (0x00 universal, 0x40 application, 0x80 context, 0xc0 private).
    pub fn class(&self) -> u8 {
        self.tag & 0xc0
    }
}

/// Universal SEQUENCE.
pub const SEQUENCE: u8 = 0x30;
/// Universal INTEGER.
pub const INTEGER: u8 = 0x02;
/// Universal OCTET STRING.
pub const OCTET_STRING: u8 = 0x04;
/// Universal BOOLEAN.
pub const BOOLEAN: u8 = 0x01;
/// Universal ENUMERATED.
pub const ENUMERATED: u8 = 0x0a;
/// Universal SET.
pub const SET: u8 = 0x31;

/// Reads one TLV and returns it with the rest of the input.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), BerError> {
    let (&tag, rest) = input.split_first().ok_or(BerError("empty input"))?;
    if tag & 0x1f == 0x1f {
        return Err(BerError("high tag numbers are not supported"));
    }
    let (&first, mut rest) = rest.split_first().ok_or(BerError("missing length"))?;
    let len = if first & 0x80 == 0 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 {
            return Err(BerError("indefinite length is not supported"));
        }
        if n > 4 || rest.len() < n {
            return Err(BerError("bad length"));
        }
        let mut l = 0usize;
        for &b in &rest[..n] {
            l = (l << 8) | usize::from(b);
        }
        rest = &rest[n..];
        l
    };
    if rest.len() < len {
        return Err(BerError("value longer than the input"));
    }
    Ok((
        Tlv {
            tag,
            value: &rest[..len],
        },
        &rest[len..],
    ))
}

/// All TLVs inside a constructed value.
pub fn children(mut value: &[u8]) -> Result<Vec<Tlv<'_>>, BerError> {
    let mut out = Vec::new();
    while !value.is_empty() {
        let (t, rest) = read(value)?;
        out.push(t);
        value = rest;
    }
    Ok(out)
}

/// Decodes an INTEGER or ENUMERATED value (two's complement, at most 8 bytes).
pub fn int(value: &[u8]) -> Result<i64, BerError> {
    if value.is_empty() || value.len() > 8 {
        return Err(BerError("bad integer length"));
    }
    let mut v: i64 = if value[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in value {
        v = (v << 8) | i64::from(b);
    }
    Ok(v)
}

/// Decodes a BOOLEAN value.
pub fn boolean(value: &[u8]) -> Result<bool, BerError> {
    match value {
        [b] => Ok(*b != 0),
        _ => Err(BerError("bad boolean length")),
    }
}

fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Appends a TLV.
pub fn write_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    write_len(out, value.len());
    out.extend_from_slice(value);
}

/// Appends an INTEGER (minimal two's complement).
pub fn write_int(out: &mut Vec<u8>, v: i64) {
    write_tlv(out, INTEGER, &int_bytes(v));
}

/// Appends an ENUMERATED.
pub fn write_enum(out: &mut Vec<u8>, v: i64) {
    write_tlv(out, ENUMERATED, &int_bytes(v));
}

fn int_bytes(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let b = bytes[start];
        let next_high = bytes[start + 1] & 0x80;
        if (b == 0 && next_high == 0) || (b == 0xff && next_high != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// Appends an OCTET STRING.
pub fn write_octets(out: &mut Vec<u8>, v: &[u8]) {
    write_tlv(out, OCTET_STRING, v);
}

/// Appends a BOOLEAN.
pub fn write_bool(out: &mut Vec<u8>, v: bool) {
    write_tlv(out, BOOLEAN, &[if v { 0xff } else { 0 }]);
}

/// Wraps `body` in a SEQUENCE.
pub fn sequence(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    write_tlv(&mut out, SEQUENCE, body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            -1,
            -128,
            -129,
            0x7fff_ffff,
            i64::MIN,
        ] {
            let mut b = Vec::new();
            write_int(&mut b, v);
            let (t, rest) = read(&b).unwrap();
            assert!(rest.is_empty());
            assert_eq!(int(t.value).unwrap(), v, "{v}");
        }
    }

    #[test]
    fn long_lengths_and_truncation() {
        let mut b = Vec::new();
        write_octets(&mut b, &vec![7u8; 300]);
        assert_eq!(&b[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (t, _) = read(&b).unwrap();
        assert_eq!(t.value.len(), 300);
        assert!(read(&b[..10]).is_err());
        assert!(read(&[]).is_err());
    }
}

//! Just enough DER to read two things from a certificate: when it expires
//! (`notAfter`) and its URI SANs (the SPIFFE ID). Anything unexpected reads as
//! `None`; nothing here panics on input.

/// One TLV: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        (
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            rest,
        )
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match tlv(input)? {
        (t, c, r) if t == tag => Some((c, r)),
        _ => None,
    }
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix milliseconds.
fn time_ms(tag: u8, content: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(content).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| rest.get(r).and_then(|s| s.parse::<i64>().ok());
    let days = days_from_civil(year, num(0..2)?, num(2..4)?);
    let secs = days * 86_400 + num(4..6)? * 3600 + num(6..8)? * 60 + num(8..10)?;
    u64::try_from(secs).ok()?.checked_mul(1000)
}

/// What the extension reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertInfo {
    /// `notAfter`, Unix milliseconds.
    pub not_after_ms: Option<u64>,
    /// URI subject alternative names.
    pub uris: Vec<String>,
}

/// Reads a DER certificate.
pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let (cert, _) = expect(der, 0x30)?;
    let (tbs, _) = expect(cert, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    rest = expect(rest, 0x02)?.1; // serial
    rest = expect(rest, 0x30)?.1; // signature algorithm
    rest = expect(rest, 0x30)?.1; // issuer
    let (validity, after) = expect(rest, 0x30)?;
    let (_, _, v_rest) = tlv(validity)?; // notBefore
    let (tag, not_after, _) = tlv(v_rest)?;
    let mut info = CertInfo {
        not_after_ms: time_ms(tag, not_after),
        uris: Vec::new(),
    };
    rest = expect(after, 0x30)?.1; // subject
    rest = expect(rest, 0x30)?.1; // subject public key info
    while let Some((tag, content, next)) = tlv(rest) {
        rest = next;
        if tag != 0xa3 {
            continue;
        }
        let (mut exts, _) = expect(content, 0x30)?;
        while let Some((ext, next)) = expect(exts, 0x30) {
            exts = next;
            let (oid, mut r) = expect(ext, 0x06)?;
            if r.first() == Some(&0x01) {
                r = tlv(r)?.2; // critical
            }
            let (value, _) = expect(r, 0x04)?;
            if oid == [0x55, 0x1d, 0x11] {
                let (mut names, _) = expect(value, 0x30)?;
                while let Some((t, c, n)) = tlv(names) {
                    names = n;
                    if t == 0x86 {
                        info.uris.push(String::from_utf8_lossy(c).into_owned());
                    }
                }
            }
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(time_ms(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time_ms(0x17, b"150830123600Z"), Some(1_440_938_160_000));
        assert_eq!(time_ms(0x18, b"20500101000000Z"), Some(2_524_608_000_000));
        assert_eq!(time_ms(0x17, b"1508301236Z"), None);
        assert_eq!(time_ms(0x05, b""), None);
    }

    #[test]
    fn garbage_is_none() {
        for input in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x03\x30\x01",
        ] {
            assert_eq!(cert_info(input), None);
        }
    }
}

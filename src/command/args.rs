//! Argument parsing with Valkey's rules: integers are strict (no spaces, no leading '+'),
//! floats reject NaN, keywords are case-insensitive.

use bytes::Bytes;

use super::CmdError;

pub fn parse_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    if s.starts_with('+') || (s.len() > 1 && s.starts_with('0')) || s.starts_with("-0") {
        return None;
    }
    s.parse().ok()
}

pub fn int(b: &[u8]) -> Result<i64, CmdError> {
    parse_i64(b).ok_or(CmdError::NotInteger)
}

pub fn parse_f64(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

pub fn float(b: &[u8]) -> Result<f64, CmdError> {
    parse_f64(b).ok_or(CmdError::NotFloat)
}

pub fn is(arg: &Bytes, kw: &str) -> bool {
    arg.eq_ignore_ascii_case(kw.as_bytes())
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `key cursor [MATCH pattern] [COUNT n] [NOVALUES]` of HSCAN, SSCAN and ZSCAN.
pub struct MemberScan {
    pub cursor: u64,
    pub count: usize,
    /// None also for a lone "*": Valkey skips matching then, so an empty member matches too.
    pub pattern: Option<Bytes>,
    pub novalues: bool,
}

pub fn member_scan(args: &[Bytes], novalues_ok: bool) -> Result<MemberScan, CmdError> {
    let cursor = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CmdError::err("invalid cursor"))?;
    let mut s = MemberScan {
        cursor,
        count: 10,
        pattern: None,
        novalues: false,
    };
    let mut i = 3;
    while i < args.len() {
        if novalues_ok && is(&args[i], "novalues") {
            s.novalues = true;
            i += 1;
            continue;
        }
        let v = args.get(i + 1).ok_or(CmdError::Syntax)?;
        if is(&args[i], "match") {
            s.pattern = (&v[..] != b"*").then(|| v.clone());
        } else if is(&args[i], "count") {
            let c = int(v)?;
            if c < 1 {
                return Err(CmdError::Syntax);
            }
            s.count = c.min(1 << 20) as usize;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"10"), Some(10));
        assert_eq!(parse_i64(b"-5"), Some(-5));
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
    }
}

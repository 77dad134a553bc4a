//! Exact decimal addition for INCRBYFLOAT. Valkey adds in long double (64-bit mantissa) and
//! prints with 17 decimals; exact decimal arithmetic gives the same text for the values people
//! use (integers up to 2^63 plus a fraction, 0.1 + 0.2 = 0.3) where f64 would not.

/// Decimals Valkey prints (`%.17Lf`).
const MAX_SCALE: u32 = 17;
/// Significant decimal digits a long double holds (64-bit mantissa: 19.3).
const LONG_DOUBLE_DIGITS: usize = 19;

/// Drops the last digit of `m`, rounding half away from zero.
fn drop_digit(m: i128) -> i128 {
    let rem = m % 10;
    let q = m / 10;
    if rem >= 5 {
        q + 1
    } else if rem <= -5 {
        q - 1
    } else {
        q
    }
}

/// `(mantissa, scale)` meaning mantissa / 10^scale.
fn parse(s: &[u8]) -> Option<(i128, u32)> {
    let s = std::str::from_utf8(s).ok()?;
    let (num, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (neg, digits) = match num.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, num.strip_prefix('+').unwrap_or(num)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mut m: i128 = 0;
    for c in int.bytes().chain(frac.bytes()) {
        m = m.checked_mul(10)?.checked_add((c - b'0') as i128)?;
    }
    let mut scale = frac.len() as i32 - exp;
    while scale < 0 {
        m = m.checked_mul(10)?;
        scale += 1;
    }
    if scale as u32 > MAX_SCALE + 6 {
        return None;
    }
    Some((if neg { -m } else { m }, scale as u32))
}

fn rescale(m: i128, from: u32, to: u32) -> Option<i128> {
    m.checked_mul(10i128.checked_pow(to - from)?)
}

/// `a + b` as Valkey prints it, or `None` when the exact path does not apply.
pub fn add(a: &[u8], b: &[u8]) -> Option<String> {
    let (ma, sa) = parse(a)?;
    let (mb, sb) = parse(b)?;
    let scale = sa.max(sb);
    let mut sum = rescale(ma, sa, scale)?.checked_add(rescale(mb, sb, scale)?)?;
    let mut scale = scale;
    // Keep what a long double keeps (about 19 significant digits), then the 17 decimals
    // Valkey prints.
    while scale > 0
        && (scale > MAX_SCALE || sum.unsigned_abs().to_string().len() > LONG_DOUBLE_DIGITS)
    {
        sum = drop_digit(sum);
        scale -= 1;
    }
    if scale == 0 {
        // An integer beyond 64 bits: the nearest long double is a multiple of a power of two.
        let bits = 128 - sum.unsigned_abs().leading_zeros();
        if bits > 64 {
            let shift = bits - 64;
            let unit = 1u128 << shift;
            let a = sum.unsigned_abs();
            let (q, r) = (a >> shift, a & (unit - 1));
            let half = unit >> 1;
            let q = if r > half || (r == half && q & 1 == 1) {
                q + 1
            } else {
                q
            };
            let rounded = i128::try_from(q.checked_mul(unit)?).ok()?;
            sum = if sum < 0 { -rounded } else { rounded };
        }
    }
    let neg = sum < 0;
    let digits = sum.unsigned_abs().to_string();
    let (int, frac) = if digits.len() as u32 > scale {
        let cut = digits.len() - scale as usize;
        (digits[..cut].to_string(), digits[cut..].to_string())
    } else {
        (
            "0".to_string(),
            format!("{}{}", "0".repeat(scale as usize - digits.len()), digits),
        )
    };
    let frac = frac.trim_end_matches('0');
    let mut out = if neg && (int != "0" || !frac.is_empty()) {
        "-".to_string()
    } else {
        String::new()
    };
    out.push_str(&int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::add;

    #[test]
    fn matches_valkey_long_double_output() {
        assert_eq!(add(b"0.1", b"0.2").as_deref(), Some("0.3"));
        assert_eq!(
            add(b"9223372036854775807", b"1e3").as_deref(),
            Some("9223372036854776807")
        );
        assert_eq!(add(b"10.50", b"0.1").as_deref(), Some("10.6"));
        assert_eq!(add(b"5.0e3", b"200").as_deref(), Some("5200"));
        assert_eq!(add(b"-1.5", b"1.5").as_deref(), Some("0"));
        assert_eq!(add(b"3", b"-3.25").as_deref(), Some("-0.25"));
        assert_eq!(
            add(b"9223372036854775807", b"0.1").as_deref(),
            Some("9223372036854775807")
        );
        assert_eq!(
            add(b"109223372036854775807", b"1000").as_deref(),
            Some("109223372036854776808")
        );
        assert_eq!(add(b"abc", b"1"), None);
        assert_eq!(add(b"inf", b"1"), None);
    }
}

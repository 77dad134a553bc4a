//! INCRBYFLOAT/HINCRBYFLOAT arithmetic as valkey-server does it on x86-64: `long double`
//! (64-bit mantissa) parsed by `strtold`, added with round-half-even, printed with `%.17Lf`
//! minus trailing zeros. Emulated exactly with big integers, so every digit Valkey prints
//! (`0` + `1e-17` gives `0.00000000000000001`, `5000` + `0.1` gives
//! `5000.10000000000000009`) comes out the same.

use num_bigint::{BigInt, BigUint, Sign};

/// Bits of the x87 extended mantissa.
const MANT_BITS: u64 = 64;
/// A finite long double is below 2^16384.
const MAX_EXP: i64 = 16384;

/// A long double: `±mant × 2^exp` (mant normalised to 64 bits, 0 for zero), or an infinity.
#[derive(Debug, Clone, PartialEq)]
pub enum LongDouble {
    Finite { neg: bool, mant: u64, exp: i64 },
    Inf { neg: bool },
}

impl LongDouble {
    /// +0, what INCRBYFLOAT starts a missing key or field from.
    pub const ZERO: LongDouble = LongDouble::Finite {
        neg: false,
        mant: 0,
        exp: 0,
    };

    fn zero(neg: bool) -> LongDouble {
        LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        }
    }

    pub fn is_finite(&self) -> bool {
        matches!(self, LongDouble::Finite { .. })
    }

    /// `neg × n × 2^exp` rounded to 64 bits, half to even (an infinity past the range).
    fn round(neg: bool, n: &BigUint, exp: i64, sticky: bool) -> LongDouble {
        let bits = n.bits();
        if bits == 0 {
            return LongDouble::zero(neg);
        }
        let (mant, exp) = if bits <= MANT_BITS {
            let m: u64 = (n << (MANT_BITS - bits)).try_into().unwrap_or(0);
            (m, exp - (MANT_BITS - bits) as i64)
        } else {
            let shift = bits - MANT_BITS;
            let top: u64 = (n >> shift).try_into().unwrap_or(0);
            let rest = n - (BigUint::from(top) << shift);
            let half = BigUint::from(1u8) << (shift - 1);
            let up = match rest.cmp(&half) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => sticky || top & 1 == 1,
            };
            let exp = exp + shift as i64;
            match (up, top.checked_add(1)) {
                (false, _) => (top, exp),
                (true, Some(m)) => (m, exp),
                (true, None) => (1 << 63, exp + 1),
            }
        };
        if exp + MANT_BITS as i64 > MAX_EXP {
            return LongDouble::Inf { neg };
        }
        LongDouble::Finite { neg, mant, exp }
    }
}

/// `strtold` as Valkey's `string2ld` accepts it: no surrounding space, the whole text a
/// decimal number (or `inf`/`infinity`), not NaN, not out of range.
pub fn parse(s: &[u8]) -> Option<LongDouble> {
    let s = std::str::from_utf8(s).ok()?;
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(LongDouble::Inf { neg });
    }
    let (num, exp10) = match body.find(['e', 'E']) {
        Some(i) => {
            let e = &body[i + 1..];
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Far past the range either way; strtold reports ERANGE and Valkey refuses.
            let v: i64 = e.parse().unwrap_or(if e.starts_with('-') {
                -100_000
            } else {
                100_000
            });
            (&body[..i], v.clamp(-100_000, 100_000))
        }
        None => (body, 0),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let d = BigUint::parse_bytes(digits.as_bytes(), 10)?;
    let p = exp10 - frac.len() as i64;
    if d.bits() == 0 {
        return Some(LongDouble::zero(neg));
    }
    // Beyond these the value is certainly infinite or zero (out of range for strtold).
    let digits_len = digits.trim_start_matches('0').len() as i64;
    if p + digits_len > 4940 {
        return None;
    }
    if p + digits_len < -4960 {
        return None;
    }
    let v = if p >= 0 {
        LongDouble::round(neg, &(d * BigUint::from(10u8).pow(p as u32)), 0, false)
    } else {
        let t = BigUint::from(10u8).pow((-p) as u32);
        // Enough quotient bits for the mantissa, a rounding bit and more.
        let k = (MANT_BITS + 3 + t.bits()).saturating_sub(d.bits());
        let scaled = d << k;
        let q = &scaled / &t;
        let sticky = &q * &t != scaled;
        LongDouble::round(neg, &q, -(k as i64), sticky)
    };
    match v {
        LongDouble::Inf { .. } => None,
        LongDouble::Finite { mant: 0, .. } => None,
        v => Some(v),
    }
}

fn signed(neg: bool, mant: u64, shift: u64) -> BigInt {
    let m = BigInt::from(mant) << shift;
    if neg {
        -m
    } else {
        m
    }
}

/// `a + b` rounded to a long double.
pub fn add(a: &LongDouble, b: &LongDouble) -> LongDouble {
    use LongDouble::{Finite, Inf};
    match (a, b) {
        (Inf { neg: x }, Inf { neg: y }) if x != y => Inf { neg: false }, // NaN: refused anyway
        (Inf { neg }, _) | (_, Inf { neg }) => Inf { neg: *neg },
        (
            Finite {
                neg: na,
                mant: ma,
                exp: ea,
            },
            Finite {
                neg: nb,
                mant: mb,
                exp: eb,
            },
        ) => {
            if *ma == 0 && *mb == 0 {
                return LongDouble::zero(*na && *nb);
            }
            if *ma == 0 {
                return b.clone();
            }
            if *mb == 0 {
                return a.clone();
            }
            let e = (*ea).min(*eb);
            let sum = signed(*na, *ma, (*ea - e) as u64) + signed(*nb, *mb, (*eb - e) as u64);
            let (sign, mag) = sum.into_parts();
            LongDouble::round(sign == Sign::Minus, &mag, e, false)
        }
    }
}

/// `%.17Lf` without trailing zeros (and without a lone "-0"), as Valkey's `ld2string` in
/// human mode.
pub fn format(v: &LongDouble) -> String {
    let (neg, mant, exp) = match v {
        LongDouble::Inf { neg } => return if *neg { "-inf" } else { "inf" }.into(),
        LongDouble::Finite { neg, mant, exp } => (*neg, *mant, *exp),
    };
    let scaled = BigUint::from(mant) * BigUint::from(10u8).pow(17);
    let units = if exp >= 0 {
        scaled << exp as u64
    } else {
        let shift = (-exp) as u64;
        let q = &scaled >> shift;
        let rest = &scaled - (&q << shift);
        let half = BigUint::from(1u8) << (shift - 1);
        match rest.cmp(&half) {
            std::cmp::Ordering::Greater => q + 1u8,
            std::cmp::Ordering::Equal if q.bit(0) => q + 1u8,
            _ => q,
        }
    };
    let digits = format!("{:0>18}", units.to_str_radix(10));
    let (int, frac) = digits.split_at(digits.len() - 17);
    let frac = frac.trim_end_matches('0');
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if out == "-0" {
        out = "0".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> Option<String> {
        let r = add(&parse(a.as_bytes())?, &parse(b.as_bytes())?);
        r.is_finite().then(|| format(&r))
    }

    /// Expected texts are valkey-server 8.1.8's INCRBYFLOAT replies.
    #[test]
    fn matches_valkey_long_double_output() {
        for (a, b, want) in [
            ("0", "1e-17", "0.00000000000000001"),
            ("5000", "0.1", "5000.10000000000000009"),
            ("0.1", "0.2", "0.3"),
            ("9223372036854775807", "1e3", "9223372036854776807"),
            ("10.50", "0.1", "10.6"),
            ("5.0e3", "200", "5200"),
            ("-1.5", "1.5", "0"),
            ("3", "-3.25", "-0.25"),
            ("9223372036854775807", "0.1", "9223372036854775807"),
            ("109223372036854775807", "1000", "109223372036854776808"),
            ("0", "0.333", "0.333"),
            ("1e20", "1", "100000000000000000000"),
            ("12345678.123", "0.000001", "12345678.12300099999993108"),
            ("0", "-1e-18", "0"),
            ("-0", "-0", "0"),
            ("1", "1e-30", "1"),
            ("1.5", "1e300", "1000000000000000000008997324079559193870523944273290747938260082321265646596180935755849152083750497190350372508614274835903592556184672983913096260520748646287327135641843653294084255107606016789726652932370030551382947620994540294772781889620606179267611627097410650567187386105690089424915104006144"),
        ] {
            assert_eq!(sum(a, b).as_deref(), Some(want), "{a} + {b}");
        }
        assert_eq!(sum("abc", "1"), None);
        assert_eq!(sum("1", "inf"), None);
        assert_eq!(sum(" 1", "1"), None);
        assert_eq!(sum("1e99999", "1"), None);
        assert!(parse(b"nan").is_none());
        assert!(parse(b"inf").is_some_and(|v| !v.is_finite()));
    }
}

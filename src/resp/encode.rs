//! Reply encoding for RESP2 and RESP3.

use bytes::{BufMut, BytesMut};

use super::{Protocol, Reply};

fn put_len(out: &mut BytesMut, prefix: u8, n: usize) {
    let mut buf = itoa::Buffer::new();
    out.put_u8(prefix);
    out.extend_from_slice(buf.format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, b: &[u8]) {
    put_len(out, b'$', b.len());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// Formats a double the way Valkey 8.1's `d2string` does for RESP2 bulk and RESP3 double
/// replies: integers within ±2^62 as integers, otherwise the shortest round-trip digits laid
/// out by fpconv's rules (plain when the exponent is small, else `d.ddde±x`).
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    if d == 0.0 {
        // Valkey prints the sign of a negative zero (inf * -1 weights, -0.5 * 0).
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    const HALF_LLONG_MAX: f64 = (i64::MAX / 2) as f64;
    if (-HALF_LLONG_MAX..=HALF_LLONG_MAX).contains(&d) && d == d.trunc() {
        return (d as i64).to_string();
    }
    // `{:e}` gives the shortest round-trip digits: "d.ddd" mantissa, decimal exponent.
    let sci = format!("{:e}", d.abs());
    let (mantissa, e10) = sci.split_once('e').unwrap_or((&sci, "0"));
    let e10: i32 = e10.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let n = digits.len() as i32;
    // fpconv's K: the exponent of the last digit.
    let k = e10 - (n - 1);
    let exp = e10.abs();
    let mut out = String::with_capacity(24);
    if d < 0.0 {
        out.push('-');
    }
    if k >= 0 && exp < n + 7 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', k as usize));
    } else if k < 0 && (k > -7 || exp < 4) {
        let offset = n + k;
        if offset <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-offset) as usize));
            out.push_str(&digits);
        } else {
            out.push_str(&digits[..offset as usize]);
            out.push('.');
            out.push_str(&digits[offset as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if e10 < 0 { '-' } else { '+' });
        out.push_str(&exp.to_string());
    }
    out
}

/// Appends the encoding of `reply` to `out`.
pub fn encode(reply: &Reply, proto: Protocol, out: &mut BytesMut) {
    let resp3 = proto == Protocol::Resp3;
    match reply {
        Reply::Status(s) => {
            out.put_u8(b'+');
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Reply::StatusOwned(s) => {
            out.put_u8(b'+');
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Reply::Error(e) => {
            out.put_u8(b'-');
            // An error line may not contain CR/LF; Valkey replaces them with spaces.
            for &c in e.as_bytes() {
                out.put_u8(if c == b'\r' || c == b'\n' { b' ' } else { c });
            }
            out.extend_from_slice(b"\r\n");
        }
        Reply::Int(i) => {
            let mut buf = itoa::Buffer::new();
            out.put_u8(b':');
            out.extend_from_slice(buf.format(*i).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Reply::Bulk(b) => put_bulk(out, b),
        Reply::Nil => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        Reply::NilArray => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Reply::Array(items) => {
            put_len(out, b'*', items.len());
            for r in items {
                encode(r, proto, out);
            }
        }
        Reply::Set(items) => {
            put_len(out, if resp3 { b'~' } else { b'*' }, items.len());
            for r in items {
                encode(r, proto, out);
            }
        }
        Reply::Map(pairs) => {
            if resp3 {
                put_len(out, b'%', pairs.len());
            } else {
                put_len(out, b'*', pairs.len() * 2);
            }
            for (k, v) in pairs {
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Reply::Double(d) => put_double(out, &format_double(*d), resp3),
        Reply::DoubleText(s) => put_double(out, s, resp3),
        Reply::Bool(b) => {
            if resp3 {
                out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
            } else {
                out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" });
            }
        }
        Reply::BigNumber(s) => {
            if resp3 {
                out.extend_from_slice(b"(");
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                put_bulk(out, s.as_bytes());
            }
        }
        Reply::Verbatim(s) => {
            if resp3 {
                put_len(out, b'=', s.len() + 4);
                out.extend_from_slice(b"txt:");
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                put_bulk(out, s.as_bytes());
            }
        }
        Reply::Pairs(pairs) => {
            if resp3 {
                put_len(out, b'*', pairs.len());
                for (k, v) in pairs {
                    put_len(out, b'*', 2);
                    encode(k, proto, out);
                    encode(v, proto, out);
                }
            } else {
                put_len(out, b'*', pairs.len() * 2);
                for (k, v) in pairs {
                    encode(k, proto, out);
                    encode(v, proto, out);
                }
            }
        }
        Reply::Push(items) => {
            put_len(out, if resp3 { b'>' } else { b'*' }, items.len());
            for r in items {
                encode(r, proto, out);
            }
        }
        Reply::Multi(replies) => {
            for r in replies {
                encode(r, proto, out);
            }
        }
        Reply::Raw(b) => out.extend_from_slice(b),
    }
}

/// A double's text: `,text` in RESP3, a bulk string in RESP2.
fn put_double(out: &mut BytesMut, text: &str, resp3: bool) {
    if resp3 {
        out.put_u8(b',');
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    } else {
        put_bulk(out, text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn enc(r: Reply, p: Protocol) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(&r, p, &mut out);
        out.to_vec()
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        assert_eq!(enc(Reply::OK, Protocol::Resp2), b"+OK\r\n");
        assert_eq!(enc(Reply::Nil, Protocol::Resp2), b"$-1\r\n");
        assert_eq!(enc(Reply::Nil, Protocol::Resp3), b"_\r\n");
        let m = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Int(1))]);
        assert_eq!(enc(m.clone(), Protocol::Resp2), b"*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(m, Protocol::Resp3), b"%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(
            enc(Reply::Verbatim("x".into()), Protocol::Resp3),
            b"=5\r\ntxt:x\r\n"
        );
        assert_eq!(
            enc(Reply::Bulk(Bytes::from_static(b"")), Protocol::Resp2),
            b"$0\r\n\r\n"
        );
        assert_eq!(
            enc(Reply::err("ERR a\r\nb"), Protocol::Resp2),
            b"-ERR a  b\r\n"
        );
    }

    #[test]
    fn doubles() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(10.5), "10.5");
        // valkey-server 8.1.8's ZSCORE for these scores.
        for (d, want) in [
            (-42.230000000000004, "-42.230000000000004"),
            (1e16, "10000000000000000"),
            (1.5e17, "150000000000000000"),
            (123456789012345678.0, "123456789012345680"),
            (1e21, "1e+21"),
            (1e20, "1e+20"),
            (0.0001, "0.0001"),
            (0.00001, "0.00001"),
            (0.000012345, "1.2345e-5"),
            (1.2345678901234567e-5, "1.2345678901234568e-5"),
            (2.5e-7, "2.5e-7"),
            (1234567.125, "1234567.125"),
            (12345678912345.5, "12345678912345.5"),
            (-0.30000000000000004, "-0.30000000000000004"),
            (1e-300, "1e-300"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.123_456_789_012_345_68, "0.12345678901234568"),
            (123456.78901234567, "1.2345678901234567e+5"),
        ] {
            assert_eq!(format_double(d), want, "{d:e}");
        }
    }
}

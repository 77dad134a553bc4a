//! Incremental request decoder: RESP multibulk and inline commands, with the limits and
//! protocol-error wording of Valkey's `processMultibulkBuffer`/`processInlineBuffer`.

use bytes::{Buf, Bytes, BytesMut};

/// Longest inline command or count line accepted before a complete line arrives.
const INLINE_MAX: usize = 64 * 1024;
/// Unauthenticated clients may not send more than this many arguments or bulk bytes, so an
/// attacker cannot make the server allocate before AUTH (as Valkey does).
const UNAUTH_MAX_ARGS: i64 = 10;
const UNAUTH_MAX_BULK: i64 = 16 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bulk_len: u64,
    /// Bytes a client may have buffered for one not-yet-complete request.
    pub max_query_buffer: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_query_buffer: 1024 * 1024 * 1024,
        }
    }
}

/// A protocol violation. The connection replies `-ERR Protocol error: …` (if `reply()` is some)
/// and is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    #[error("Protocol error: too big mbulk count string")]
    TooBigMbulkCount,
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// The query buffer limit was reached: closed without a reply, as Valkey does.
    #[error("query buffer limit reached")]
    QueryBufferLimit,
}

impl DecodeError {
    /// The error line to send before closing, if any.
    pub fn reply(&self) -> Option<String> {
        match self {
            DecodeError::QueryBufferLimit => None,
            e => Some(format!("ERR {e}")),
        }
    }
}

/// Decodes requests from a connection's read buffer. Keeps partial multibulk state so a large
/// request arriving in many reads is parsed once.
#[derive(Debug, Default)]
pub struct Decoder {
    limits: Limits,
    /// Arguments still expected for the multibulk in progress.
    remaining: usize,
    args: Vec<Bytes>,
    /// Length of the bulk whose header was read but whose body has not fully arrived.
    bulk_len: Option<usize>,
    in_multibulk: bool,
    /// Bytes of the request in progress already moved into `args`.
    consumed_in_request: u64,
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    memchr_cr(buf)
}

fn memchr_cr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&c| c == b'\r')
}

fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

impl Decoder {
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            ..Default::default()
        }
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Bytes the pending bulk still needs (a hint to reserve buffer space for large values).
    pub fn pending_bulk(&self) -> Option<usize> {
        self.bulk_len
    }

    /// Decodes the next complete request. `Ok(None)` means more bytes are needed; an empty
    /// argument vector never comes back (empty lines and `*0` are skipped).
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, DecodeError> {
        loop {
            if !self.in_multibulk {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    match self.decode_inline(buf)? {
                        Some(args) if args.is_empty() => continue,
                        other => return Ok(other),
                    }
                }
                let Some(cr) = find_crlf(buf) else {
                    if buf.len() > INLINE_MAX {
                        return Err(DecodeError::TooBigMbulkCount);
                    }
                    return Ok(None);
                };
                if buf.len() < cr + 2 {
                    return Ok(None);
                }
                let n = parse_i64(&buf[1..cr]);
                let n = match n {
                    Some(n) if n <= i32::MAX as i64 => n,
                    _ => return Err(DecodeError::InvalidMultibulkLength),
                };
                if n > UNAUTH_MAX_ARGS && !authenticated {
                    return Err(DecodeError::UnauthenticatedMultibulkLength);
                }
                buf.advance(cr + 2);
                if n <= 0 {
                    continue;
                }
                self.in_multibulk = true;
                self.remaining = n as usize;
                self.consumed_in_request = (cr + 2) as u64;
                // Cap the up-front allocation: the count is client-controlled.
                self.args = Vec::with_capacity(self.remaining.min(1024));
            }
            while self.remaining > 0 {
                let len = match self.bulk_len {
                    Some(len) => len,
                    None => {
                        if buf.is_empty() {
                            return self.need_more(buf);
                        }
                        if buf[0] != b'$' {
                            return Err(DecodeError::ExpectedBulk(buf[0] as char));
                        }
                        let Some(cr) = find_crlf(buf) else {
                            if buf.len() > INLINE_MAX {
                                return Err(DecodeError::TooBigBulkCount);
                            }
                            return self.need_more(buf);
                        };
                        if buf.len() < cr + 2 {
                            return self.need_more(buf);
                        }
                        let len = match parse_i64(&buf[1..cr]) {
                            Some(l) if l >= 0 && (l as u64) <= self.limits.max_bulk_len => {
                                l as usize
                            }
                            _ => return Err(DecodeError::InvalidBulkLength),
                        };
                        if !authenticated && len as i64 > UNAUTH_MAX_BULK {
                            return Err(DecodeError::UnauthenticatedBulkLength);
                        }
                        buf.advance(cr + 2);
                        self.consumed_in_request += (cr + 2) as u64;
                        self.bulk_len = Some(len);
                        len
                    }
                };
                if buf.len() < len + 2 {
                    return self.need_more(buf);
                }
                let arg = buf.split_to(len).freeze();
                buf.advance(2);
                self.consumed_in_request += len as u64 + 2;
                self.args.push(arg);
                self.bulk_len = None;
                self.remaining -= 1;
            }
            self.in_multibulk = false;
            self.consumed_in_request = 0;
            return Ok(Some(std::mem::take(&mut self.args)));
        }
    }

    fn need_more(&self, buf: &BytesMut) -> Result<Option<Vec<Bytes>>, DecodeError> {
        if self.consumed_in_request + buf.len() as u64 > self.limits.max_query_buffer {
            return Err(DecodeError::QueryBufferLimit);
        }
        Ok(None)
    }

    fn decode_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, DecodeError> {
        let Some(nl) = buf.iter().position(|&c| c == b'\n') else {
            if buf.len() > INLINE_MAX {
                return Err(DecodeError::TooBigInline);
            }
            return Ok(None);
        };
        let line = buf.split_to(nl + 1);
        let mut line = &line[..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let args = split_args(line).ok_or(DecodeError::UnbalancedQuotes)?;
        Ok(Some(args.into_iter().map(Bytes::from).collect()))
    }
}

/// `isspace` in the C locale, as `sdssplitargs` uses it.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits a line into arguments like Redis' `sdssplitargs`: whitespace separation, double
/// quotes with C escapes (`\xHH` too), single quotes with only `\'`. A closing quote must be
/// followed by whitespace or the end. `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // Valkey parses the line as a C string: a NUL ends it.
    let line = match line.iter().position(|&c| c == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex_val(line[i + 2]).is_some()
                    && hex_val(line[i + 3]).is_some()
                {
                    cur.push(hex_val(line[i + 2])? * 16 + hex_val(line[i + 3])?);
                    i += 3;
                } else if line[i] == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if line[i] == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if line[i] == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    c if is_space(c) => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

/// [`split_args`] over text (CLI prompt lines).
pub fn split_args_str(line: &str) -> Option<Vec<Vec<u8>>> {
    split_args(line.as_bytes())
}

/// Valkey's `sdscatrepr`: always double-quoted, C escapes, `\xHH` for the rest (CONFIG
/// REWRITE's values, MONITOR's arguments).
pub fn repr(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(input: &[u8]) -> Result<Vec<Vec<Bytes>>, DecodeError> {
        let mut d = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(args) = d.decode(&mut buf, true)? {
            out.push(args);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_pipelining() {
        let r = dec(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], vec![Bytes::from("GET"), Bytes::from("k")]);
    }

    #[test]
    fn byte_at_a_time() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nPING\r\n";
        let mut d = Decoder::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(args) = d.decode(&mut buf, true).unwrap() {
                got.push(args);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0][2], Bytes::from("hello"));
        assert_eq!(got[1], vec![Bytes::from("PING")]);
    }

    #[test]
    fn inline_and_quotes() {
        let r = dec(b"set k \"a b\\x41\"\r\n\r\nPING\n").unwrap();
        assert_eq!(r[0][2], Bytes::from("a bA"));
        assert_eq!(r[1], vec![Bytes::from("PING")]);
        assert_eq!(dec(b"\"foo\r\n"), Err(DecodeError::UnbalancedQuotes));
        assert_eq!(dec(b"'a'b\r\n"), Err(DecodeError::UnbalancedQuotes));
        // A NUL ends the line (no endless loop on it).
        assert_eq!(
            dec(b"PING\x00junk\n").unwrap(),
            vec![vec![Bytes::from("PING")]]
        );
        assert!(dec(b"\x00\n").unwrap().is_empty());
    }

    #[test]
    fn protocol_errors() {
        assert_eq!(dec(b"*abc\r\n"), Err(DecodeError::InvalidMultibulkLength));
        assert_eq!(dec(b"*1\r\n!foo\r\n"), Err(DecodeError::ExpectedBulk('!')));
        assert_eq!(dec(b"*1\r\n$-5\r\n"), Err(DecodeError::InvalidBulkLength));
        assert_eq!(
            dec(b"*1\r\n$600000000\r\n"),
            Err(DecodeError::InvalidBulkLength)
        );
        let long = vec![b'a'; INLINE_MAX + 10];
        assert_eq!(dec(&long), Err(DecodeError::TooBigInline));
    }

    #[test]
    fn unauthenticated_limits() {
        let mut d = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        let r = d.decode(&mut buf, false);
        assert_eq!(r, Err(DecodeError::UnauthenticatedMultibulkLength));
        let mut d = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$20000\r\n"[..]);
        let r = d.decode(&mut buf, false);
        assert_eq!(r, Err(DecodeError::UnauthenticatedBulkLength));
    }

    #[test]
    fn query_buffer_limit() {
        let mut d = Decoder::new(Limits {
            max_bulk_len: 1 << 30,
            max_query_buffer: 1000,
        });
        let mut buf = BytesMut::from(&b"*1\r\n$5000\r\n"[..]);
        buf.extend_from_slice(&[b'x'; 1200]);
        assert_eq!(d.decode(&mut buf, true), Err(DecodeError::QueryBufferLimit));
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        let r = dec(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(r.len(), 1);
    }
}

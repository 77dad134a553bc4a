//! Raw RESP over TCP: encoding commands, framing replies (RESP2 and RESP3), reading until the
//! server closes.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

// ---------------------------------------------------------------------------------------------
// Raw RESP over TCP

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_cmd<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Printable form of raw protocol bytes (for assertion messages); long data is elided.
pub fn show(bytes: &[u8]) -> String {
    let s: String = bytes.escape_ascii().to_string();
    if s.len() > 400 {
        format!("{}…({} bytes)", &s[..400], bytes.len())
    } else {
        s
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

/// The payload of a bulk string reply frame (`$<len>\r\n<payload>\r\n`).
pub fn bulk_body(frame: &[u8]) -> Result<Vec<u8>> {
    let at = find_crlf(frame, 0).unwrap_or(0);
    if !frame.starts_with(b"$") || at == 0 || frame.len() < at + 4 {
        bail!("not a bulk: {}", show(frame));
    }
    Ok(frame[at + 2..frame.len() - 2].to_vec())
}

/// Length of the first complete RESP2/RESP3 frame in `buf`, `None` if incomplete. Fails on a
/// byte that cannot start a frame.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>> {
    frame_end(buf, 0)
}

fn frame_end(buf: &[u8], pos: usize) -> Result<Option<usize>> {
    let Some(&t) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(le) = find_crlf(buf, pos + 1) else {
        return Ok(None);
    };
    let after = le + 2;
    let num = || -> Result<i64> {
        let s = std::str::from_utf8(&buf[pos + 1..le])?;
        s.parse::<i64>()
            .with_context(|| format!("bad length {s:?} in reply"))
    };
    let elems = |n: i64| -> Result<Option<usize>> {
        let mut p = after;
        for _ in 0..n.max(0) {
            match frame_end(buf, p)? {
                Some(e) => p = e,
                None => return Ok(None),
            }
        }
        Ok(Some(p))
    };
    match t {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(after)),
        b'$' | b'=' | b'!' => {
            let n = num()?;
            if n < 0 {
                return Ok(Some(after));
            }
            let end = after + n as usize + 2;
            Ok((buf.len() >= end).then_some(end))
        }
        b'*' | b'~' | b'>' => elems(num()?),
        b'%' => elems(num()? * 2),
        b'|' => {
            // attribute map, then the actual reply
            match elems(num()? * 2)? {
                Some(p) => frame_end(buf, p),
                None => Ok(None),
            }
        }
        other => bail!(
            "byte {:?} cannot start a RESP frame: {}",
            other as char,
            show(&buf[pos..])
        ),
    }
}

/// How a read-to-end finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server closed the connection (EOF).
    Closed,
    /// The connection was reset (the server closed with unread input: also a close).
    Reset,
    /// Still open when the time was up.
    Open,
}

impl End {
    pub fn is_closed(self) -> bool {
        matches!(self, End::Closed | End::Reset)
    }
}

/// A raw client socket with a reply buffer.
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub fn connect(addr: SocketAddr) -> Result<Self> {
        Self::connect_with_timeout(addr, Duration::from_secs(5))
    }

    pub fn connect_with_timeout(addr: SocketAddr, timeout: Duration) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let c = Self {
            stream,
            buf: Vec::new(),
        };
        c.set_timeout(Duration::from_secs(30))?;
        Ok(c)
    }

    pub fn set_timeout(&self, t: Duration) -> Result<()> {
        self.stream.set_read_timeout(Some(t))?;
        self.stream.set_write_timeout(Some(t))?;
        Ok(())
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).with_context(|| {
            format!(
                "sending {} bytes: {}",
                bytes.len(),
                show(&bytes[..bytes.len().min(60)])
            )
        })
    }

    /// Sends one command as a RESP array and returns its raw reply frame.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Vec<u8>> {
        self.send(&encode_cmd(args))?;
        self.read_frame()
    }

    /// Reads one complete reply frame (raw bytes including the trailing CRLF).
    pub fn read_frame(&mut self) -> Result<Vec<u8>> {
        loop {
            if let Some(n) = frame_len(&self.buf)? {
                return Ok(self.buf.drain(..n).collect());
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).context("reading a reply")?;
            if n == 0 {
                bail!(
                    "connection closed by server; partial data: {}",
                    show(&self.buf)
                );
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn read_frames(&mut self, n: usize) -> Result<Vec<Vec<u8>>> {
        (0..n).map(|_| self.read_frame()).collect()
    }

    /// Reads everything until the server closes the connection or `timeout` passes.
    pub fn read_to_end(&mut self, timeout: Duration) -> Result<(Vec<u8>, End)> {
        let deadline = Instant::now() + timeout;
        let mut out = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok((out, End::Open));
            }
            self.stream
                .set_read_timeout(Some(left.min(Duration::from_millis(200))))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok((out, End::Closed)),
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Ok((out, End::Reset))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Asserts that the server replies exactly `expected` and then closes the connection.
    pub fn expect_reply_then_close(&mut self, expected: &[u8]) -> Result<()> {
        let (data, end) = self.read_to_end(Duration::from_secs(10))?;
        if data != expected {
            bail!(
                "expected reply {} but got {} ({end:?})",
                show(expected),
                show(&data)
            );
        }
        if !end.is_closed() {
            bail!(
                "server replied {} but did not close the connection",
                show(&data)
            );
        }
        Ok(())
    }
}

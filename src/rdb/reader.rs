//! The primitive reads of the RDB format over any `Read`, counting the offset (for error
//! messages) and, for files, the running CRC64.

use std::io::Read;

use super::{lzf, RdbError, Result};

/// A decoded RDB length: a count, or one of the special string encodings.
enum Len {
    Plain(u64),
    Int8,
    Int16,
    Int32,
    Lzf,
}

pub struct Reader<R> {
    inner: R,
    offset: u64,
    crc: Option<u64>,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            offset: 0,
            crc: None,
        }
    }

    /// A reader that also checksums every byte it reads (an RDB file).
    pub fn with_crc(inner: R) -> Reader<R> {
        Reader {
            inner,
            offset: 0,
            crc: Some(0),
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The CRC64 of everything read so far, when checksumming.
    pub fn crc(&self) -> Option<u64> {
        self.crc
    }

    pub fn corrupt<T>(&self, at: u64, what: impl Into<String>) -> Result<T> {
        Err(RdbError::Corrupt {
            at,
            what: what.into(),
        })
    }

    pub fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match self.inner.read(&mut buf[done..]) {
                Ok(0) => return Err(RdbError::Truncated(self.offset + done as u64)),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(RdbError::Io {
                        at: self.offset + done as u64,
                        source,
                    })
                }
            }
        }
        if let Some(c) = self.crc.as_mut() {
            *c = super::crc64(*c, buf);
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    pub fn u8(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    /// `n` bytes, read in bounded chunks so a corrupt length cannot allocate more than the
    /// input holds.
    pub fn bytes(&mut self, n: u64) -> Result<Vec<u8>> {
        const CHUNK: u64 = 1 << 20;
        let mut out = Vec::with_capacity(n.min(CHUNK) as usize);
        let mut left = n;
        while left > 0 {
            let step = left.min(CHUNK) as usize;
            let at = out.len();
            out.resize(at + step, 0);
            self.fill(&mut out[at..])?;
            left -= step as u64;
        }
        Ok(out)
    }

    fn len_or_encoding(&mut self) -> Result<Len> {
        let at = self.offset;
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3f) as u64),
            1 => Len::Plain((((b & 0x3f) as u64) << 8) | self.u8()? as u64),
            2 => match b {
                0x80 => Len::Plain(u32::from_be_bytes(self.array()?) as u64),
                0x81 => Len::Plain(u64::from_be_bytes(self.array()?)),
                _ => return self.corrupt(at, format!("unknown length encoding {b:#04x}")),
            },
            _ => match b & 0x3f {
                0 => Len::Int8,
                1 => Len::Int16,
                2 => Len::Int32,
                3 => Len::Lzf,
                _ => return self.corrupt(at, format!("unknown string encoding {b:#04x}")),
            },
        })
    }

    /// A length (element counts, db numbers); a string encoding here is corruption.
    pub fn length(&mut self) -> Result<u64> {
        let at = self.offset;
        match self.len_or_encoding()? {
            Len::Plain(n) => Ok(n),
            _ => self.corrupt(at, "string encoding where a length belongs"),
        }
    }

    /// A string in any of its encodings (raw, integer, LZF).
    pub fn string(&mut self) -> Result<Vec<u8>> {
        let at = self.offset;
        Ok(match self.len_or_encoding()? {
            Len::Plain(n) => self.bytes(n)?,
            Len::Int8 => (self.u8()? as i8).to_string().into_bytes(),
            Len::Int16 => i16::from_le_bytes(self.array()?).to_string().into_bytes(),
            Len::Int32 => i32::from_le_bytes(self.array()?).to_string().into_bytes(),
            Len::Lzf => {
                let clen = self.length()?;
                let len = self.length()?;
                let packed = self.bytes(clen)?;
                // liblzf never expands beyond this; a larger claim is corruption, not memory.
                if len > clen.saturating_mul(256).saturating_add(64) {
                    return self.corrupt(at, "LZF length out of proportion");
                }
                match lzf::decompress(&packed, len as usize) {
                    Some(v) => v,
                    None => return self.corrupt(at, "LZF data does not decompress"),
                }
            }
        })
    }

    /// A double in the pre-RDB-8 text form: a length byte (253 NaN, 254 +inf, 255 -inf).
    pub fn text_double(&mut self) -> Result<f64> {
        let at = self.offset;
        let n = self.u8()?;
        Ok(match n {
            253 => f64::NAN,
            254 => f64::INFINITY,
            255 => f64::NEG_INFINITY,
            n => {
                let b = self.bytes(n as u64)?;
                match std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()) {
                    Some(v) => v,
                    None => return self.corrupt(at, "unreadable score"),
                }
            }
        })
    }
}

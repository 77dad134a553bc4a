//! A dump.rdb file as a stream of keys: header, opcodes (SELECTDB, expiries, AUX, RESIZEDB,
//! SLOT_INFO, IDLE, FREQ, function libraries), objects, EOF and the CRC64 trailer.

use std::io::Read;

use super::object::{read_object, Object};
use super::{RdbError, Reader, Result, MAX_READ_VERSION};

const OP_SLOT_INFO: u8 = 244;
use super::functions::{OP_FUNCTION2, OP_FUNCTION_PRE_GA};
const OP_MODULE_AUX: u8 = 247;
const OP_IDLE: u8 = 248;
const OP_FREQ: u8 = 249;
const OP_AUX: u8 = 250;
const OP_RESIZEDB: u8 = 251;
const OP_EXPIRETIME_MS: u8 = 252;
const OP_EXPIRETIME: u8 = 253;
const OP_SELECTDB: u8 = 254;
const OP_EOF: u8 = 255;

/// One key of the file.
#[derive(Debug)]
pub struct Record {
    pub db: u64,
    pub key: Vec<u8>,
    pub object: Object,
    /// Absolute expiry in Unix milliseconds.
    pub expire_at_ms: Option<i64>,
    /// Byte offset of the record's first opcode (for messages).
    pub offset: u64,
}

/// What the file says about itself besides keys.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub version: u16,
    /// AUX fields (`redis-ver`, `valkey-ver`, `ctime`, …).
    pub aux: Vec<(String, String)>,
    /// Function libraries skipped (rockslot has no functions yet).
    pub functions_skipped: u64,
    /// Whether the trailer held a checksum (0 means the writer had `rdbchecksum no`).
    pub checksummed: bool,
}

pub struct RdbFile<R> {
    r: Reader<R>,
    db: u64,
    done: bool,
    pub summary: Summary,
}

impl<R: Read> RdbFile<R> {
    /// Reads the header: `REDIS` and four digits (or `VALKEY` and three).
    pub fn open(inner: R) -> Result<RdbFile<R>> {
        let mut r = Reader::with_crc(inner);
        let head: [u8; 9] = r.array()?;
        let version = if &head[..5] == b"REDIS" {
            std::str::from_utf8(&head[5..])
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
        } else if &head[..6] == b"VALKEY" {
            std::str::from_utf8(&head[6..])
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
        } else {
            None
        };
        let version = match version {
            Some(v) if (1..=MAX_READ_VERSION).contains(&v) => v,
            Some(v) => {
                return Err(RdbError::Unsupported {
                    at: 0,
                    what: format!("RDB version {v}"),
                })
            }
            None => return r.corrupt(0, "not an RDB file (no REDIS header)"),
        };
        Ok(RdbFile {
            r,
            db: 0,
            done: false,
            summary: Summary {
                version,
                ..Summary::default()
            },
        })
    }

    pub fn offset(&self) -> u64 {
        self.r.offset()
    }

    /// The next key, or `None` after EOF and a matching checksum.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        if self.done {
            return Ok(None);
        }
        let mut expire_at_ms = None;
        let mut start = self.r.offset();
        loop {
            let at = self.r.offset();
            let op = self.r.u8()?;
            match op {
                OP_EOF => {
                    self.finish()?;
                    return Ok(None);
                }
                OP_SELECTDB => self.db = self.r.length()?,
                OP_RESIZEDB => {
                    self.r.length()?;
                    self.r.length()?;
                }
                OP_SLOT_INFO => {
                    for _ in 0..3 {
                        self.r.length()?;
                    }
                }
                OP_AUX => {
                    let k = self.r.string()?;
                    let v = self.r.string()?;
                    self.summary.aux.push((
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    ));
                }
                OP_EXPIRETIME_MS => expire_at_ms = Some(i64::from_le_bytes(self.r.array()?)),
                OP_EXPIRETIME => {
                    expire_at_ms = Some(i32::from_le_bytes(self.r.array()?) as i64 * 1000)
                }
                OP_IDLE => {
                    self.r.length()?;
                }
                OP_FREQ => {
                    self.r.u8()?;
                }
                OP_FUNCTION2 => {
                    self.r.string()?;
                    self.summary.functions_skipped += 1;
                }
                OP_FUNCTION_PRE_GA | OP_MODULE_AUX => {
                    return Err(RdbError::Unsupported {
                        at,
                        what: if op == OP_MODULE_AUX {
                            "module data".into()
                        } else {
                            "a pre-release function library".into()
                        },
                    })
                }
                ty => {
                    let key = self.r.string()?;
                    let object = match read_object(&mut self.r, ty) {
                        Ok(o) => o,
                        Err(RdbError::Unsupported { at, what }) => {
                            return Err(RdbError::Unsupported {
                                at,
                                what: format!("key '{}' ({what})", String::from_utf8_lossy(&key)),
                            })
                        }
                        Err(e) => return Err(e),
                    };
                    return Ok(Some(Record {
                        db: self.db,
                        key,
                        object,
                        expire_at_ms,
                        offset: start,
                    }));
                }
            }
            if !matches!(op, OP_EXPIRETIME_MS | OP_EXPIRETIME | OP_IDLE | OP_FREQ) {
                start = self.r.offset();
            }
        }
    }

    /// After EOF: RDB 5+ ends with the CRC64 of everything before it (0 when disabled).
    fn finish(&mut self) -> Result<()> {
        self.done = true;
        if self.summary.version < 5 {
            return Ok(());
        }
        let computed = self.r.crc().unwrap_or(0);
        let at = self.r.offset();
        let stored = u64::from_le_bytes(self.r.array()?);
        self.summary.checksummed = stored != 0;
        if stored != 0 && stored != computed {
            return self.r.corrupt(
                at,
                format!("checksum mismatch (file says {stored:016x}, data gives {computed:016x})"),
            );
        }
        Ok(())
    }
}

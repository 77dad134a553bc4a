//! Valkey's RDB encoding: the DUMP/RESTORE payload of one value and whole dump.rdb files.
//!
//! Owns: the byte format (length and string encodings, LZF, CRC64, the object types and their
//! compact encodings: listpack, ziplist, intset, zipmap, quicklist) and its validation into
//! [`Object`]. Reading is generic over `std::io::Read` so a file streams with bounded memory.
//!
//! Must not: touch storage, the network or the keyspace; callers decide what a value becomes.

mod compact;
mod crc64;
pub mod file;
mod functions;
pub mod hll;
mod lzf;
mod object;
mod reader;
pub mod stream;

pub use compact::backlen_size;
pub use crc64::crc64;
pub use functions::{functions_payload, read_functions_payload, FunctionPayloadError};
pub use object::{canonical_int, write_object, Object};
use reader::Reader;

/// The RDB version valkey-server 8.1 writes; DUMP payloads carry it.
pub const RDB_VERSION: u16 = 11;
/// The newest version read (Redis 7.4 writes 12; its new hash types are refused per key).
pub const MAX_READ_VERSION: u16 = 12;
/// Valkey 9's version: a DUMP of a hash with field TTLs carries it (type 22 there is
/// Valkey's hash with field TTLs, not Redis 7.4's).
pub const VALKEY9_VERSION: u16 = 80;

/// Why an encoding could not be read. Offsets count from the start of the input.
#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    #[error("unexpected end of data at byte {0}")]
    Truncated(u64),
    #[error("{what} at byte {at}")]
    Corrupt { at: u64, what: String },
    #[error("{what} at byte {at} is not supported")]
    Unsupported { at: u64, what: String },
    #[error("read error at byte {at}: {source}")]
    Io { at: u64, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, RdbError>;

/// Why a RESTORE payload was refused, with Valkey's two distinct replies.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PayloadError {
    #[error("DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    #[error("Bad data format")]
    BadData,
}

/// A DUMP payload of `obj`: type, object, RDB version (LE), CRC64 of all before (LE).
pub fn dump_payload(obj: &Object) -> Vec<u8> {
    let mut out = Vec::new();
    write_object(&mut out, obj);
    let version = match obj {
        Object::VolatileHash(_) => VALKEY9_VERSION,
        _ => RDB_VERSION,
    };
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a DUMP payload as valkey-server's RESTORE does: footer first (version not newer than
/// [`MAX_READ_VERSION`], CRC64 matching), then exactly one object filling the rest.
pub fn read_payload(p: &[u8]) -> std::result::Result<Object, PayloadError> {
    if p.len() < 10 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (body, footer) = p.split_at(p.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > MAX_READ_VERSION && version != VALKEY9_VERSION {
        return Err(PayloadError::VersionOrChecksum);
    }
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if crc64(0, &p[..p.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(PayloadError::VersionOrChecksum);
    }
    let mut r = Reader::new(body);
    let ty = r.u8().map_err(|_| PayloadError::BadData)?;
    let obj = if version == VALKEY9_VERSION && ty == object::TYPE_HASH_2 {
        object::read_volatile_hash(&mut r)
    } else {
        object::read_object(&mut r, ty)
    }
    .map_err(|_| PayloadError::BadData)?;
    if r.offset() != body.len() as u64 {
        return Err(PayloadError::BadData);
    }
    Ok(obj)
}

#[cfg(test)]
mod tests;

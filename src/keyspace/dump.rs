//! DUMP/RESTORE payloads: rockslot's own versioned, checksummed serialization of one value.
//!
//! Layout: `"RS" | format u8 | type u8 | payload | crc32(all previous bytes) u32 LE`.
//! Only rockslot reads it; a payload from another server or a damaged one is refused.

use bytes::Bytes;

use super::encoding::TYPE_STRING;
use super::Value;

const MAGIC: &[u8; 2] = b"RS";
const DUMP_FORMAT: u8 = 1;

pub fn serialize(v: &Value) -> Vec<u8> {
    let (tag, payload): (u8, &[u8]) = match v {
        Value::Str(b) => (TYPE_STRING, b),
    };
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(MAGIC);
    out.push(DUMP_FORMAT);
    out.push(tag);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DumpError {
    #[error("payload too short")]
    Short,
    #[error("not a rockslot payload or unknown format version")]
    Version,
    #[error("checksum mismatch")]
    Checksum,
    #[error("unknown type")]
    Type,
}

pub fn deserialize(b: &[u8]) -> Result<Value, DumpError> {
    if b.len() < 8 {
        return Err(DumpError::Short);
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if &body[..2] != MAGIC || body[2] != DUMP_FORMAT {
        return Err(DumpError::Version);
    }
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| DumpError::Short)?);
    if crc32fast::hash(body) != crc {
        return Err(DumpError::Checksum);
    }
    match body[3] {
        TYPE_STRING => Ok(Value::Str(Bytes::copy_from_slice(&body[4..]))),
        _ => Err(DumpError::Type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corruption() {
        let p = serialize(&Value::Str(Bytes::from("hello")));
        assert_eq!(deserialize(&p), Ok(Value::Str(Bytes::from("hello"))));
        let mut bad = p.clone();
        bad[5] ^= 1;
        assert_eq!(deserialize(&bad), Err(DumpError::Checksum));
        assert_eq!(deserialize(b"\x00\x05hello"), Err(DumpError::Short));
        let mut other = p;
        other[2] = 9;
        assert_eq!(deserialize(&other), Err(DumpError::Version));
    }
}

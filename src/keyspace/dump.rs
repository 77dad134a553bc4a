//! DUMP/RESTORE payloads: rockslot's own versioned, checksummed serialization of one value.
//!
//! Layout: `"RS" | format u8 | type u8 | payload | crc32(all previous bytes) u32 LE`.
//! Only rockslot reads it; a payload from another server or a damaged one is refused.

use bytes::Bytes;

use super::encoding::{TYPE_HASH, TYPE_LIST, TYPE_SET, TYPE_STRING, TYPE_ZSET};
use super::{Entry, Keyspace, Kind, Value};

const MAGIC: &[u8; 2] = b"RS";
const DUMP_FORMAT: u8 = 1;

/// A value read back from a payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Restored {
    Str(Bytes),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// Members with empty values.
    Set(Vec<(Vec<u8>, Vec<u8>)>),
    /// Elements, head first.
    List(Vec<Vec<u8>>),
    /// Members with their scores.
    ZSet(Vec<(Vec<u8>, f64)>),
}

/// Hash and set payload: `count u32 LE` then `len u32 LE | field | len u32 LE | value` per field.
fn hash_payload(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    for (f, v) in fields {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

fn parse_hash(b: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = b.get(pos..pos.checked_add(n)?)?;
        pos += n;
        Some(s)
    };
    let u32le = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize;
    let n = u32le(take(4)?);
    let mut out = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let fl = u32le(take(4)?);
        let f = take(fl)?.to_vec();
        let vl = u32le(take(4)?);
        let v = take(vl)?.to_vec();
        out.push((f, v));
    }
    (pos == b.len()).then_some(out)
}

impl Keyspace {
    /// The DUMP payload of `key` holding `e`, from committed state.
    pub fn dump_payload(&self, key: &[u8], e: &Entry) -> super::Result<Vec<u8>> {
        self.pending().dump_payload(key, e)
    }
}

impl super::Pending<'_> {
    /// The DUMP payload of `key` holding `e` (a collection's members are read as this scope
    /// sees them).
    pub fn dump_payload(&self, key: &[u8], e: &Entry) -> super::Result<Vec<u8>> {
        Ok(match &e.value {
            Value::Str(b) => frame(TYPE_STRING, b),
            Value::Hash(_) => frame(TYPE_HASH, &hash_payload(&self.members(key, Kind::Hash)?)),
            Value::Set(_) => frame(TYPE_SET, &hash_payload(&self.members(key, Kind::Set)?)),
            Value::List { .. } => {
                let elems: Vec<(Vec<u8>, Vec<u8>)> = self
                    .list_elements(key)?
                    .into_iter()
                    .map(|e| (e, Vec::new()))
                    .collect();
                frame(TYPE_LIST, &hash_payload(&elems))
            }
            Value::ZSet(_) => {
                let m: Vec<(Vec<u8>, Vec<u8>)> = self
                    .zset_members(key)?
                    .into_iter()
                    .map(|(m, s)| (m, s.to_bits().to_be_bytes().to_vec()))
                    .collect();
                frame(TYPE_ZSET, &hash_payload(&m))
            }
        })
    }
}

fn frame(tag: u8, payload: &[u8]) -> Vec<u8> {
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

pub fn deserialize(b: &[u8]) -> Result<Restored, DumpError> {
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
        TYPE_STRING => Ok(Restored::Str(Bytes::copy_from_slice(&body[4..]))),
        TYPE_HASH => parse_hash(&body[4..])
            .map(Restored::Hash)
            .ok_or(DumpError::Type),
        TYPE_ZSET => parse_hash(&body[4..])
            .and_then(|m| {
                m.into_iter()
                    .map(|(k, v)| {
                        let b: [u8; 8] = v.try_into().ok()?;
                        let s = f64::from_bits(u64::from_be_bytes(b));
                        (!s.is_nan()).then_some((k, s))
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .map(Restored::ZSet)
            .ok_or(DumpError::Type),
        TYPE_LIST => parse_hash(&body[4..])
            .filter(|m| m.iter().all(|(_, v)| v.is_empty()))
            .map(|m| Restored::List(m.into_iter().map(|(e, _)| e).collect()))
            .ok_or(DumpError::Type),
        TYPE_SET => parse_hash(&body[4..])
            .filter(|m| m.iter().all(|(_, v)| v.is_empty()))
            .map(Restored::Set)
            .ok_or(DumpError::Type),
        _ => Err(DumpError::Type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corruption() {
        let p = frame(TYPE_STRING, b"hello");
        assert_eq!(deserialize(&p), Ok(Restored::Str(Bytes::from("hello"))));
        let fields = vec![
            (b"f".to_vec(), b"v".to_vec()),
            (b"".to_vec(), b"x".to_vec()),
        ];
        let h = frame(TYPE_HASH, &hash_payload(&fields));
        assert_eq!(deserialize(&h), Ok(Restored::Hash(fields)));
        let mut long = hash_payload(&[]);
        long.push(0);
        assert_eq!(deserialize(&frame(TYPE_HASH, &long)), Err(DumpError::Type));
        let mut bad = p.clone();
        bad[5] ^= 1;
        assert_eq!(deserialize(&bad), Err(DumpError::Checksum));
        assert_eq!(deserialize(b"\x00\x05hello"), Err(DumpError::Short));
        let mut other = p;
        other[2] = 9;
        assert_eq!(deserialize(&other), Err(DumpError::Version));
    }
}

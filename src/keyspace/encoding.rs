//! On-disk key and value layout (documented in docs/storage.md). Every key starts with its
//! slot so a slot is a contiguous range inside its family.

use bytes::Bytes;

use super::{Entry, Value};
use crate::slot::split_kind;
pub use crate::slot::DbSlot;

/// Record kinds, the byte after the slot. 0 is the storage layer's per-slot counter.
pub const KIND_META: u8 = 1;
pub const KIND_EXPIRY: u8 = 2;
/// One record per member of a collection: `[slot][3][key len u32 BE][key][member]`.
pub const KIND_MEMBER: u8 = 3;
/// Sorted-set score index: `[slot][4][key len u32 BE][key][sortable score u64 BE][member]`.
pub const KIND_SCORE: u8 = 4;
/// Sorted-set rank blocks: `[slot][5][key len u32 BE][key][first index position]` holding the
/// block's entry count (u64 BE); see `zrank`.
pub const KIND_RANK: u8 = 5;
/// A hash field's TTL: `[slot][6][key len u32 BE][key][field]` holding the expiry (unix ms,
/// i64 BE). Only fields with a TTL have one.
pub const KIND_FIELD_TTL: u8 = 6;
/// Field expiry index: `[slot][7][expire_at u64 BE][key len u32 BE][key][field]`, empty, so the
/// active cycle finds due fields in time order. Entries may be stale (a field deleted or given
/// another TTL since): the cycle checks the TTL record and drops those.
pub const KIND_FIELD_EXPIRY: u8 = 7;
/// Format version of meta values; bumped when a value layout changes.
pub const META_FORMAT: u8 = 1;

/// Type tags inside meta values. Collections (hash, list, set, zset) get their own tags and
/// keep members in separate records, so they fit without a migration.
pub const TYPE_STRING: u8 = 0;
/// A hash: the meta payload is the field count (u64 BE), then, when some fields have a TTL,
/// their count (u64 BE); fields are member records.
pub const TYPE_HASH: u8 = 1;
/// A set: the meta payload is the member count (u64 BE); members are member records with
/// empty values.
pub const TYPE_SET: u8 = 2;
/// A list: the meta payload is its length (u64 BE) and the position of its first element
/// (i64 BE); element `i` is the member record at position `head + i` (see `list_pos`).
pub const TYPE_LIST: u8 = 3;
/// A sorted set: the meta payload is the member count (u64 BE); members are member records
/// holding the score (f64 bits BE), plus one score index record each.
pub const TYPE_ZSET: u8 = 4;
/// A stream: the meta payload is its [`super::StreamMeta`]; entries, consumer groups, their
/// pending entries and consumers are member records (see `stream`).
pub const TYPE_STREAM: u8 = 5;
/// A string stored in chunk records (see `chunked`): the meta payload is its length (u64 BE).
pub const TYPE_STRING_CHUNKED: u8 = 6;

/// An f64 as bytes that sort like the numbers.
pub fn sortable_score(s: f64) -> [u8; 8] {
    let b = s.to_bits();
    let v = if b >> 63 == 1 { !b } else { b ^ (1 << 63) };
    v.to_be_bytes()
}

pub fn score_from_sortable(b: &[u8]) -> f64 {
    let v = u64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8]));
    f64::from_bits(if v >> 63 == 1 { v ^ (1 << 63) } else { !v })
}

pub fn score_prefix(at: DbSlot, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(7 + key.len());
    k.extend_from_slice(&at.prefix(KIND_SCORE));
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k
}

pub fn score_key(at: DbSlot, key: &[u8], score: f64, member: &[u8]) -> Vec<u8> {
    let mut k = score_prefix(at, key);
    k.extend_from_slice(&sortable_score(score));
    k.extend_from_slice(member);
    k
}

pub(crate) fn successor(mut to: Vec<u8>) -> Vec<u8> {
    while let Some(last) = to.last_mut() {
        if *last == 0xff {
            to.pop();
        } else {
            *last += 1;
            break;
        }
    }
    to
}

pub fn score_range(at: DbSlot, key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let from = score_prefix(at, key);
    let to = successor(from.clone());
    (from, to)
}

pub fn rank_prefix(at: DbSlot, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(7 + key.len());
    k.extend_from_slice(&at.prefix(KIND_RANK));
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k
}

pub fn rank_key(at: DbSlot, key: &[u8], position: &[u8]) -> Vec<u8> {
    let mut k = rank_prefix(at, key);
    k.extend_from_slice(position);
    k
}

pub fn rank_range(at: DbSlot, key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let from = rank_prefix(at, key);
    let to = successor(from.clone());
    (from, to)
}

/// Every record range a collection owns besides its meta record.
pub fn collection_ranges(at: DbSlot, key: &[u8], v: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    match v {
        Value::Str(_) | Value::Chunked(_) if super::chunked::is_chunked(v) => {
            vec![member_range(at, key)]
        }
        Value::Str(_) => Vec::new(),
        Value::Hash(_, 0) => vec![member_range(at, key)],
        Value::Hash(..) => vec![member_range(at, key), field_ttl_range(at, key)],
        Value::ZSet(_) => vec![
            member_range(at, key),
            score_range(at, key),
            rank_range(at, key),
        ],
        _ => vec![member_range(at, key)],
    }
}

/// Member suffix of a list position: order-preserving for negative positions too.
pub fn list_pos(pos: i64) -> [u8; 8] {
    ((pos as u64) ^ (1 << 63)).to_be_bytes()
}

/// The prefix every member record of `key` starts with.
pub fn member_prefix(at: DbSlot, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(7 + key.len());
    k.extend_from_slice(&at.prefix(KIND_MEMBER));
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k
}

pub fn member_key(at: DbSlot, key: &[u8], member: &[u8]) -> Vec<u8> {
    let mut k = member_prefix(at, key);
    k.extend_from_slice(member);
    k
}

/// `[from, to)` covering every member record of `key` (the prefix's lexicographic successor
/// bounds it: the key length is part of the prefix, so no other key's members fall inside).
pub fn member_range(at: DbSlot, key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let from = member_prefix(at, key);
    let mut to = from.clone();
    while let Some(last) = to.last_mut() {
        if *last == 0xff {
            to.pop();
        } else {
            *last += 1;
            break;
        }
    }
    (from, to)
}

/// The prefix every field TTL record of the hash at `key` starts with.
pub fn field_ttl_prefix(at: DbSlot, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(7 + key.len());
    k.extend_from_slice(&at.prefix(KIND_FIELD_TTL));
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k
}

pub fn field_ttl_key(at: DbSlot, key: &[u8], field: &[u8]) -> Vec<u8> {
    let mut k = field_ttl_prefix(at, key);
    k.extend_from_slice(field);
    k
}

pub fn field_ttl_range(at: DbSlot, key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let from = field_ttl_prefix(at, key);
    let to = successor(from.clone());
    (from, to)
}

pub fn field_expiry_key(at: DbSlot, at_ms: i64, key: &[u8], field: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(15 + key.len() + field.len());
    k.extend_from_slice(&at.prefix(KIND_FIELD_EXPIRY));
    k.extend_from_slice(&(at_ms.max(0) as u64).to_be_bytes());
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k.extend_from_slice(field);
    k
}

/// `(expire_at_ms, user key, field)` of a field expiry index key.
pub fn parse_field_expiry_key(k: &[u8]) -> Option<(i64, &[u8], &[u8])> {
    if k.len() < 15 || split_kind(k[2]).1 != KIND_FIELD_EXPIRY {
        return None;
    }
    let at = u64::from_be_bytes(k[3..11].try_into().ok()?) as i64;
    let len = u32::from_be_bytes(k[11..15].try_into().ok()?) as usize;
    let key = k.get(15..15 + len)?;
    Some((at, key, &k[15 + len..]))
}

pub fn meta_key(at: DbSlot, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + key.len());
    k.extend_from_slice(&at.prefix(KIND_META));
    k.extend_from_slice(key);
    k
}

pub fn expiry_key(at: DbSlot, at_ms: i64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(11 + key.len());
    k.extend_from_slice(&at.prefix(KIND_EXPIRY));
    k.extend_from_slice(&(at_ms.max(0) as u64).to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// The physical database and user key a data record belongs to, if it is a meta or member
/// record (a collection's member range starts with its member prefix, so it counts too).
pub fn user_key(k: &[u8]) -> Option<(u8, &[u8])> {
    let (db, kind) = split_kind(*k.get(2)?);
    let key = match kind {
        KIND_META => k.get(3..),
        KIND_MEMBER | KIND_FIELD_TTL => {
            let len = u32::from_be_bytes(k.get(3..7)?.try_into().ok()?) as usize;
            k.get(7..7 + len)
        }
        _ => None,
    }?;
    Some((db, key))
}

/// The place of an expiry index key, if `k` is one.
pub fn expiry_slot(k: &[u8]) -> Option<DbSlot> {
    let (db, kind) = split_kind(*k.get(2)?);
    (k.len() >= 11 && (kind == KIND_EXPIRY || kind == KIND_FIELD_EXPIRY))
        .then(|| DbSlot::new(db, u16::from_be_bytes([k[0], k[1]])))
}

/// `(expire_at_ms, user_key)` of an expiry index key.
pub fn parse_expiry_key(k: &[u8]) -> Option<(i64, &[u8])> {
    if k.len() < 11 || split_kind(k[2]).1 != KIND_EXPIRY {
        return None;
    }
    let at = u64::from_be_bytes(k[3..11].try_into().ok()?) as i64;
    Some((at, &k[11..]))
}

pub fn encode_entry(e: &Entry) -> Vec<u8> {
    let len_bytes;
    let list_bytes;
    let stream_bytes;
    let (tag, payload): (u8, &[u8]) = match &e.value {
        Value::Str(b) => (TYPE_STRING, b),
        Value::Hash(n, 0) => {
            len_bytes = n.to_be_bytes();
            (TYPE_HASH, &len_bytes)
        }
        Value::Hash(n, volatile) => {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&n.to_be_bytes());
            b[8..].copy_from_slice(&volatile.to_be_bytes());
            list_bytes = b;
            (TYPE_HASH, &list_bytes)
        }
        Value::Set(n) => {
            len_bytes = n.to_be_bytes();
            (TYPE_SET, &len_bytes)
        }
        Value::ZSet(n) => {
            len_bytes = n.to_be_bytes();
            (TYPE_ZSET, &len_bytes)
        }
        Value::List { len, head } => {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&len.to_be_bytes());
            b[8..].copy_from_slice(&head.to_be_bytes());
            list_bytes = b;
            (TYPE_LIST, &list_bytes)
        }
        Value::Stream(m) => {
            stream_bytes = m.encode();
            (TYPE_STREAM, &stream_bytes)
        }
        Value::Chunked(n) => {
            len_bytes = n.to_be_bytes();
            (TYPE_STRING_CHUNKED, &len_bytes)
        }
    };
    let mut v = Vec::with_capacity(10 + payload.len());
    v.push(META_FORMAT);
    v.push(tag);
    v.extend_from_slice(&e.expire_at.unwrap_or(0).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt record: {0}")]
pub struct CorruptRecord(pub &'static str);

/// Type tag and expiry of an encoded entry, without copying the payload.
/// The TYPE name of a record's type tag.
pub fn type_name_of(tag: u8) -> &'static str {
    match tag {
        TYPE_HASH => "hash",
        TYPE_SET => "set",
        TYPE_LIST => "list",
        TYPE_ZSET => "zset",
        TYPE_STREAM => "stream",
        _ => "string",
    }
}

pub fn peek_entry(v: &[u8]) -> Result<(u8, Option<i64>), CorruptRecord> {
    if v.len() < 10 {
        return Err(CorruptRecord("meta value too short"));
    }
    if v[0] != META_FORMAT {
        return Err(CorruptRecord("unknown meta format version"));
    }
    let at = i64::from_be_bytes(v[2..10].try_into().map_err(|_| CorruptRecord("expiry"))?);
    Ok((v[1], (at != 0).then_some(at)))
}

pub fn decode_entry(v: &[u8]) -> Result<Entry, CorruptRecord> {
    let (tag, expire_at) = peek_entry(v)?;
    let value = match tag {
        TYPE_STRING => Value::Str(Bytes::copy_from_slice(&v[10..])),
        TYPE_HASH => {
            let p = &v[10..];
            let n = |b: &[u8]| -> Result<u64, CorruptRecord> {
                Ok(u64::from_be_bytes(
                    b.try_into().map_err(|_| CorruptRecord("hash length"))?,
                ))
            };
            match p.len() {
                8 => Value::Hash(n(p)?, 0),
                16 => Value::Hash(n(&p[..8])?, n(&p[8..])?),
                _ => return Err(CorruptRecord("hash length")),
            }
        }
        TYPE_LIST => {
            let b: [u8; 16] = v[10..]
                .try_into()
                .map_err(|_| CorruptRecord("list header"))?;
            Value::List {
                len: u64::from_be_bytes(b[..8].try_into().map_err(|_| CorruptRecord("list"))?),
                head: i64::from_be_bytes(b[8..].try_into().map_err(|_| CorruptRecord("list"))?),
            }
        }
        TYPE_ZSET => Value::ZSet(u64::from_be_bytes(
            v[10..]
                .try_into()
                .map_err(|_| CorruptRecord("zset length"))?,
        )),
        TYPE_SET => Value::Set(u64::from_be_bytes(
            v[10..]
                .try_into()
                .map_err(|_| CorruptRecord("set length"))?,
        )),
        TYPE_STREAM => Value::Stream(Box::new(super::StreamMeta::decode(&v[10..])?)),
        TYPE_STRING_CHUNKED => Value::Chunked(u64::from_be_bytes(
            v[10..]
                .try_into()
                .map_err(|_| CorruptRecord("chunked string length"))?,
        )),
        _ => return Err(CorruptRecord("unknown type tag")),
    };
    Ok(Entry { value, expire_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let e = Entry {
            value: Value::Str(Bytes::from("v")),
            expire_at: Some(1234),
        };
        let d = decode_entry(&encode_entry(&e)).unwrap();
        assert_eq!(d.expire_at, Some(1234));
        assert!(matches!(d.value, Value::Str(b) if b == "v"));
        let k = expiry_key(DbSlot::new(3, 5), 99, b"key");
        assert_eq!(parse_expiry_key(&k), Some((99, &b"key"[..])));
        assert!(decode_entry(&[9, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}

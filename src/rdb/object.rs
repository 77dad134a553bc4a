//! RDB object types: reading every encoding Valkey and Redis 2.x–7.x write into an [`Object`],
//! and writing an [`Object`] in encodings every one of them reads back.

use std::collections::HashSet;
use std::io::Read;

use bytes::Bytes;

use super::{compact, stream, Reader, Result};

pub const TYPE_STRING: u8 = 0;
pub const TYPE_LIST: u8 = 1;
pub const TYPE_SET: u8 = 2;
pub const TYPE_ZSET: u8 = 3;
pub const TYPE_HASH: u8 = 4;
pub const TYPE_ZSET_2: u8 = 5;
pub const TYPE_HASH_ZIPMAP: u8 = 9;
pub const TYPE_LIST_ZIPLIST: u8 = 10;
pub const TYPE_SET_INTSET: u8 = 11;
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
pub const TYPE_HASH_ZIPLIST: u8 = 13;
pub const TYPE_LIST_QUICKLIST: u8 = 14;
pub const TYPE_HASH_LISTPACK: u8 = 16;
pub const TYPE_ZSET_LISTPACK: u8 = 17;
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
pub const TYPE_SET_LISTPACK: u8 = 20;

/// One value, as every rockslot type sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Str(Bytes),
    /// Elements, head first.
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// A hash some of whose fields have a TTL (unix ms): Valkey 9's type 22, RDB version 80.
    VolatileHash(Vec<(Vec<u8>, Vec<u8>, Option<i64>)>),
    ZSet(Vec<(Vec<u8>, f64)>),
    Stream(Box<super::stream::StreamObject>),
}

/// A name for object types rockslot cannot hold yet (for the error message).
fn unsupported_name(ty: u8) -> Option<&'static str> {
    Some(match ty {
        6 | 7 => "a module value",
        22..=25 => "a hash with field expiry",
        _ => return None,
    })
}

/// Valkey 9's hash with field TTLs (RDB version 80).
pub const TYPE_HASH_2: u8 = 22;

/// Reads Valkey 9's type 22 (the type byte already read): the field count, then field, value
/// and expiry (i64 LE ms, -1 for none) per field.
pub fn read_volatile_hash<R: Read>(r: &mut Reader<R>) -> Result<Object> {
    let at = r.offset();
    let n = r.length()?;
    let mut v = Vec::with_capacity(n.min(1 << 16) as usize);
    for _ in 0..n {
        let f = r.string()?;
        let val = r.string()?;
        let t = i64::from_le_bytes(r.array::<8>()?);
        if t < -1 {
            return r.corrupt(at, "hash field expiry below -1");
        }
        v.push((f, val, (t != -1).then_some(t)));
    }
    let obj = Object::VolatileHash(v);
    check(r, at, &obj)?;
    Ok(obj)
}

/// Reads the object of type `ty` (the type byte already read).
pub fn read_object<R: Read>(r: &mut Reader<R>, ty: u8) -> Result<Object> {
    let at = r.offset();
    let obj = match ty {
        TYPE_STRING => Object::Str(Bytes::from(r.string()?)),
        stream::TYPE_STREAM_LISTPACKS
        | stream::TYPE_STREAM_LISTPACKS_2
        | stream::TYPE_STREAM_LISTPACKS_3 => Object::Stream(Box::new(stream::read_stream(r, ty)?)),
        TYPE_LIST | TYPE_SET => {
            let n = r.length()?;
            let mut v = Vec::with_capacity(n.min(1 << 16) as usize);
            for _ in 0..n {
                v.push(r.string()?);
            }
            if ty == TYPE_LIST {
                Object::List(v)
            } else {
                Object::Set(v)
            }
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.length()?;
            let mut v = Vec::with_capacity(n.min(1 << 16) as usize);
            for _ in 0..n {
                let m = r.string()?;
                let s = if ty == TYPE_ZSET_2 {
                    f64::from_le_bytes(r.array()?)
                } else {
                    r.text_double()?
                };
                if s.is_nan() {
                    return r.corrupt(at, "sorted set score is NaN");
                }
                v.push((m, s));
            }
            Object::ZSet(v)
        }
        TYPE_HASH => {
            let n = r.length()?;
            let mut v = Vec::with_capacity(n.min(1 << 16) as usize);
            for _ in 0..n {
                let f = r.string()?;
                v.push((f, r.string()?));
            }
            Object::Hash(v)
        }
        TYPE_HASH_ZIPMAP | TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let blob = r.string()?;
            let items = match ty {
                TYPE_HASH_ZIPMAP => compact::zipmap(&blob),
                TYPE_HASH_ZIPLIST => compact::ziplist(&blob),
                _ => compact::listpack(&blob),
            };
            Object::Hash(pairs(r, at, items)?)
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let blob = r.string()?;
            let items = if ty == TYPE_ZSET_ZIPLIST {
                compact::ziplist(&blob)
            } else {
                compact::listpack(&blob)
            };
            let mut v = Vec::new();
            for (m, s) in pairs(r, at, items)? {
                match std::str::from_utf8(&s)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                {
                    Some(s) if !s.is_nan() => v.push((m, s)),
                    _ => return r.corrupt(at, "unreadable sorted set score"),
                }
            }
            Object::ZSet(v)
        }
        TYPE_SET_INTSET | TYPE_SET_LISTPACK => {
            let blob = r.string()?;
            let items = if ty == TYPE_SET_INTSET {
                compact::intset(&blob)
            } else {
                compact::listpack(&blob)
            };
            match items {
                Some(v) => Object::Set(v),
                None => return r.corrupt(at, "damaged set encoding"),
            }
        }
        TYPE_LIST_ZIPLIST => match compact::ziplist(&r.string()?) {
            Some(v) => Object::List(v),
            None => return r.corrupt(at, "damaged ziplist"),
        },
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.length()?;
            let mut v = Vec::new();
            for _ in 0..nodes {
                let node_at = r.offset();
                let container = if ty == TYPE_LIST_QUICKLIST_2 {
                    r.length()?
                } else {
                    2
                };
                let blob = r.string()?;
                match container {
                    // A plain node holds one large element as it is.
                    1 => v.push(blob),
                    2 => {
                        let items = if ty == TYPE_LIST_QUICKLIST {
                            compact::ziplist(&blob)
                        } else {
                            compact::listpack(&blob)
                        };
                        match items {
                            Some(items) if !items.is_empty() => v.extend(items),
                            _ => return r.corrupt(node_at, "damaged quicklist node"),
                        }
                    }
                    c => return r.corrupt(node_at, format!("unknown quicklist container {c}")),
                }
            }
            Object::List(v)
        }
        other => {
            let what = match unsupported_name(other) {
                Some(name) => name.to_string(),
                None => return r.corrupt(at, format!("unknown object type {other}")),
            };
            return Err(super::RdbError::Unsupported { at, what });
        }
    };
    check(r, at, &obj)?;
    Ok(obj)
}

fn pairs<R: Read>(
    r: &Reader<R>,
    at: u64,
    items: Option<Vec<Vec<u8>>>,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let Some(items) = items.filter(|v| v.len() % 2 == 0) else {
        return r.corrupt(at, "damaged field/value encoding");
    };
    let mut it = items.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

/// Valkey refuses empty collections and duplicate members, whatever the encoding.
fn check<R: Read>(r: &Reader<R>, at: u64, obj: &Object) -> Result<()> {
    fn unique<'a>(it: impl Iterator<Item = &'a [u8]>) -> bool {
        let mut seen = HashSet::new();
        it.into_iter().all(|m| seen.insert(m))
    }
    let (empty, dup) = match obj {
        Object::Str(_) | Object::Stream(_) => (false, false),
        Object::List(v) => (v.is_empty(), false),
        Object::Set(v) => (v.is_empty(), !unique(v.iter().map(|m| m.as_slice()))),
        Object::Hash(v) => (v.is_empty(), !unique(v.iter().map(|(f, _)| f.as_slice()))),
        Object::VolatileHash(v) => (v.is_empty(), !unique(v.iter().map(|(f, ..)| f.as_slice()))),
        Object::ZSet(v) => (v.is_empty(), !unique(v.iter().map(|(m, _)| m.as_slice()))),
    };
    if empty {
        return r.corrupt(at, "empty collection");
    }
    if dup {
        return r.corrupt(at, "duplicate member");
    }
    Ok(())
}

/// Writes a length in the shortest of the 6-, 14-, 32- and 64-bit forms.
pub(super) fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Writes a string; short canonical integers in Valkey's integer encodings, as it does.
pub(super) fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(v) = canonical_int(s) {
            if let Ok(v) = i8::try_from(v) {
                out.extend_from_slice(&[0xc0, v as u8]);
                return;
            }
            if let Ok(v) = i16::try_from(v) {
                out.push(0xc1);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            }
            if let Ok(v) = i32::try_from(v) {
                out.push(0xc2);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            }
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// The integer `s` spells, only when printing it gives `s` back (no "+1", "01", "-0").
pub fn canonical_int(s: &[u8]) -> Option<i64> {
    let v: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (v.to_string().as_bytes() == s).then_some(v)
}

/// Writes `obj` as type byte and object, in the plain encodings (list, set, hash, zset-2):
/// valkey-server and redis-server of every version since 2.8 read them and convert to their
/// compact forms by their own thresholds.
pub fn write_object(out: &mut Vec<u8>, obj: &Object) {
    match obj {
        Object::Str(s) => {
            out.push(TYPE_STRING);
            write_string(out, s);
        }
        Object::List(v) | Object::Set(v) => {
            out.push(if matches!(obj, Object::List(_)) {
                TYPE_LIST
            } else {
                TYPE_SET
            });
            write_len(out, v.len() as u64);
            for e in v {
                write_string(out, e);
            }
        }
        Object::Hash(v) => {
            out.push(TYPE_HASH);
            write_len(out, v.len() as u64);
            for (f, val) in v {
                write_string(out, f);
                write_string(out, val);
            }
        }
        Object::VolatileHash(v) => {
            out.push(TYPE_HASH_2);
            write_len(out, v.len() as u64);
            for (f, val, t) in v {
                write_string(out, f);
                write_string(out, val);
                out.extend_from_slice(&t.unwrap_or(-1).to_le_bytes());
            }
        }
        Object::Stream(s) => {
            out.push(stream::TYPE_STREAM_LISTPACKS_3);
            stream::write_stream(out, s);
        }
        Object::ZSet(v) => {
            out.push(TYPE_ZSET_2);
            write_len(out, v.len() as u64);
            // Highest score first, as Valkey writes it, so a loader appends at the head.
            for (m, s) in v.iter().rev() {
                write_string(out, m);
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
    }
}

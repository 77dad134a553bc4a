//! Big strings in chunks: a string longer than [`CHUNKED_ABOVE`] keeps its bytes in member
//! records of [`CHUNK`] bytes (`[member prefix][chunk index u64 BE]`) and only its length in
//! the meta record, so SETBIT, GETBIT, BITCOUNT, BITPOS, SETRANGE, GETRANGE, APPEND and STRLEN
//! on a bitmap of 2^32 bits touch the chunks they need, not 512 MB. A chunk never written
//! reads as zeros (a sparse bitmap stores only its non-zero chunks).
//!
//! Other commands see the whole value: reading a chunked string assembles it (GET returns
//! it whole, as Valkey does), and writing a long string splits it.
//!
//! Must not: parse commands; callers check types and arguments.

use bytes::Bytes;

use super::encoding::{encode_entry, member_key, member_range, meta_key, DbSlot};
use super::overlay::Reader;
use super::{now_ms, Entry, Pending, Result, Value};
use crate::storage::Batch;

/// Strings longer than this are stored in chunks.
pub const CHUNKED_ABOVE: usize = 1 << 20;
/// Bytes per chunk record.
pub const CHUNK: u64 = 16 << 10;

fn chunk_key(at: DbSlot, key: &[u8], index: u64) -> Vec<u8> {
    member_key(at, key, &index.to_be_bytes())
}

/// Whether `v` is a string stored in chunks.
pub fn is_chunked(v: &Value) -> bool {
    match v {
        Value::Str(b) => b.len() > CHUNKED_ABOVE,
        Value::Chunked(_) => true,
        _ => false,
    }
}

/// The meta record of `e`: a chunked string's holds its length only.
pub fn encode_meta(e: &Entry) -> Vec<u8> {
    match &e.value {
        Value::Str(b) if b.len() > CHUNKED_ABOVE => encode_entry(&Entry {
            value: Value::Chunked(b.len() as u64),
            expire_at: e.expire_at,
        }),
        _ => encode_entry(e),
    }
}

/// Stages the chunks of a long string `b` at `key` (after clearing old ones); chunks of
/// zeros are left out.
pub fn stage_chunks(batch: &mut Batch, at: DbSlot, key: &[u8], b: &[u8]) {
    let (from, to) = member_range(at, key);
    batch.delete_range(from, to);
    for (i, c) in b.chunks(CHUNK as usize).enumerate() {
        if c.iter().any(|&x| x != 0) {
            batch.put(chunk_key(at, key, i as u64), c.to_vec());
        }
    }
}

/// Visits the stored chunks of the string at `key` from chunk `first` to `last` (inclusive)
/// in order: (chunk index, bytes).
fn chunks(
    src: &Reader<'_>,
    at: DbSlot,
    key: &[u8],
    first: u64,
    last: u64,
    mut f: impl FnMut(u64, &[u8]) -> bool,
) -> Result<()> {
    let lo = chunk_key(at, key, first);
    let hi = match last.checked_add(1) {
        Some(n) => chunk_key(at, key, n),
        None => member_range(at, key).1,
    };
    let n = lo.len() - 8;
    src.scan(&lo, &hi, false, |k, v| {
        let i = u64::from_be_bytes(k[n..].try_into().unwrap_or([0; 8]));
        f(i, v)
    })
}

/// The whole string of `len` bytes stored in chunks at `key`.
pub(super) fn assemble(src: &Reader<'_>, at: DbSlot, key: &[u8], len: u64) -> Result<Bytes> {
    let mut out = vec![0u8; len as usize];
    chunks(src, at, key, 0, u64::MAX, |i, c| {
        let start = (i * CHUNK) as usize;
        if start < out.len() {
            let n = c.len().min(out.len() - start);
            out[start..start + n].copy_from_slice(&c[..n]);
        }
        true
    })?;
    Ok(Bytes::from(out))
}

impl Pending<'_> {
    /// [`Pending::chunked_len`] under the key's lock, held until the scope commits: what a
    /// write computes from the length (APPEND's offset, SETBIT's old byte) stays true.
    pub fn chunked_len_locked(&mut self, key: &[u8]) -> Result<Option<u64>> {
        self.acquire(&[key])?;
        self.chunked_len(key)
    }

    /// The length of the live chunked string at `key`; None when the key is missing, expired
    /// or anything else (callers then take the ordinary path).
    pub fn chunked_len(&self, key: &[u8]) -> Result<Option<u64>> {
        let mk = meta_key(self.at(key), key);
        let e = self
            .reader()
            .get_with(&mk, |v| v.map(super::encoding::decode_entry).transpose())??;
        Ok(match e {
            Some(Entry {
                value: Value::Chunked(len),
                expire_at,
            }) if expire_at.is_none_or(|x| x > now_ms()) => Some(len),
            _ => None,
        })
    }

    /// `n` bytes of the chunked string at `key` from `offset` (zeros past its chunks).
    pub fn chunked_bytes(&self, key: &[u8], offset: u64, n: u64) -> Result<Vec<u8>> {
        let mut out = vec![0u8; n as usize];
        if n == 0 {
            return Ok(out);
        }
        let end = offset + n;
        chunks(
            &self.reader(),
            self.at(key),
            key,
            offset / CHUNK,
            (end - 1) / CHUNK,
            |i, c| {
                let cs = i * CHUNK;
                let (a, b) = (offset.max(cs), end.min(cs + c.len() as u64));
                if a < b {
                    out[(a - offset) as usize..(b - offset) as usize]
                        .copy_from_slice(&c[(a - cs) as usize..(b - cs) as usize]);
                }
                true
            },
        )?;
        Ok(out)
    }

    /// Visits the stored chunks overlapping bytes `[from, to]` as (first byte offset, bytes
    /// clipped to the range), in order, until `f` returns false.
    pub fn chunked_scan(
        &self,
        key: &[u8],
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, &[u8]) -> bool,
    ) -> Result<()> {
        chunks(
            &self.reader(),
            self.at(key),
            key,
            from / CHUNK,
            to / CHUNK,
            |i, c| {
                let cs = i * CHUNK;
                let (a, b) = (from.max(cs), (to + 1).min(cs + c.len() as u64));
                if a >= b {
                    return true;
                }
                f(a, &c[(a - cs) as usize..(b - cs) as usize])
            },
        )
    }

    /// Writes `data` at byte `offset` of the chunked string at `key` (growing it with zeros),
    /// rewriting only the chunks it covers; the TTL stays. Returns the new length. The caller
    /// found the string with [`Pending::chunked_len_locked`], so it is still there (its TTL
    /// may have run out since, within the command, as Valkey's command time allows).
    pub fn chunked_write(&mut self, key: &[u8], offset: u64, data: &[u8]) -> Result<u64> {
        self.acquire(&[key])?;
        let at = self.at(key);
        let mk = meta_key(at, key);
        let e = self
            .reader()
            .get_with(&mk, |v| v.map(super::encoding::decode_entry).transpose())??;
        let Some(Entry {
            value: Value::Chunked(len),
            expire_at,
        }) = e
        else {
            return Err(super::CorruptRecord("chunked string gone under its lock").into());
        };
        let mut batch = Batch::new();
        let end = offset + data.len() as u64;
        let new_len = len.max(end);
        if !data.is_empty() {
            let (first, last) = (offset / CHUNK, (end - 1) / CHUNK);
            for i in first..=last {
                let cs = i * CHUNK;
                let mut c = self
                    .reader()
                    .get(&chunk_key(at, key, i))?
                    .unwrap_or_default();
                let (a, b) = (offset.max(cs), end.min(cs + CHUNK));
                if (c.len() as u64) < b - cs {
                    c.resize((b - cs) as usize, 0);
                }
                c[(a - cs) as usize..(b - cs) as usize]
                    .copy_from_slice(&data[(a - offset) as usize..(b - offset) as usize]);
                batch.put(chunk_key(at, key, i), c);
            }
        }
        if new_len != len {
            let e = Entry {
                value: Value::Chunked(new_len),
                expire_at,
            };
            batch.put(mk, encode_entry(&e));
        }
        self.push(batch)?;
        Ok(new_len)
    }
}

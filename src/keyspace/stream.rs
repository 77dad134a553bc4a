//! Streams on disk: a meta record ([`StreamMeta`]: length, last and first ids, entries added,
//! max deleted id, group count) and member records under the key's member prefix, so a stream
//! moves, replicates, backs up and is deleted with its slot and key like any collection:
//!
//! - entry `[0][id]` → its fields and values;
//! - group `[1][name]`, pending entry `[2][group len u32][group][id]`, consumer
//!   `[3][group len u32][group][name]` (see `stream_groups`);
//! - node `[4][first id]` → (last id, entries appended, entries live).
//!
//! Nodes stand for Valkey's listpack nodes: entries are grouped into runs of at most
//! `stream-node-max-entries` appended ids, and approximate trimming (`~`) removes whole runs
//! only, as Valkey removes whole listpacks, so `XADD … MAXLEN ~ n` leaves the same entries.
//! (Valkey also closes a node at `stream-node-max-bytes`; runs here count entries only.)
//!
//! Must not: parse commands or build replies.

use std::collections::BTreeMap;

use super::encoding::{encode_entry, member_prefix, meta_key};
use super::hash::stage_delete_any;
use super::overlay::Reader;
pub use super::stream_nodes::{NodeInfo, NodeLimits};
use super::{is_live, now_ms, CorruptRecord, DbSlot, Entry, Pending, Result, Value, WrongType};
use crate::storage::Batch;

/// A stream entry id: milliseconds and sequence number, ordered as Valkey orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<StreamId> {
        Some(StreamId {
            ms: u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
            seq: u64::from_be_bytes(b.get(8..16)?.try_into().ok()?),
        })
    }

    /// The id right after this one (None after the last possible id).
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => Some(StreamId {
                ms: self.ms.checked_add(1)?,
                seq: 0,
            }),
        }
    }

    /// The id right before this one (None before 0-0).
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => Some(StreamId {
                ms: self.ms.checked_sub(1)?,
                seq: u64::MAX,
            }),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// What a stream's meta record holds besides type and expiry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamMeta {
    /// Live entries.
    pub len: u64,
    /// The greatest id ever added (XSETID may raise it).
    pub last_id: StreamId,
    /// The first live entry's id (0-0 when empty).
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    pub groups: u64,
    /// The first id of the last node (where XADD appends), 0-0 when there is none: a point
    /// read instead of a reverse walk over the node records' many versions.
    pub tail: StreamId,
}

const META_LEN: usize = 8 + 16 * 3 + 8 + 8 + 16;

impl StreamMeta {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(META_LEN);
        v.extend_from_slice(&self.len.to_be_bytes());
        v.extend_from_slice(&self.last_id.bytes());
        v.extend_from_slice(&self.first_id.bytes());
        v.extend_from_slice(&self.max_deleted.bytes());
        v.extend_from_slice(&self.entries_added.to_be_bytes());
        v.extend_from_slice(&self.groups.to_be_bytes());
        v.extend_from_slice(&self.tail.bytes());
        v
    }

    pub fn decode(b: &[u8]) -> std::result::Result<StreamMeta, CorruptRecord> {
        let bad = || CorruptRecord("stream meta");
        if b.len() != META_LEN {
            return Err(bad());
        }
        let u = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
        let id = |at: usize| StreamId::from_bytes(&b[at..at + 16]).ok_or_else(bad);
        Ok(StreamMeta {
            len: u(0),
            last_id: id(8)?,
            first_id: id(24)?,
            max_deleted: id(40)?,
            entries_added: u(56),
            groups: u(64),
            tail: id(72)?,
        })
    }
}

/// An entry's fields and values, in the order given to XADD.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

pub(super) fn encode_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let size: usize = fields.iter().map(|(f, v)| 8 + f.len() + v.len()).sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&(fields.len() as u32).to_be_bytes());
    for (f, v) in fields {
        for x in [f, v] {
            out.extend_from_slice(&(x.len() as u32).to_be_bytes());
            out.extend_from_slice(x);
        }
    }
    out
}

pub(super) fn take_bytes<'b>(b: &mut &'b [u8]) -> std::result::Result<&'b [u8], CorruptRecord> {
    let bad = || CorruptRecord("stream record");
    let n = u32::from_be_bytes(b.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    let x = b.get(4..4 + n as usize).ok_or_else(bad)?;
    *b = &b[4 + n as usize..];
    Ok(x)
}

fn decode_fields(mut b: &[u8]) -> std::result::Result<Fields, CorruptRecord> {
    let bad = || CorruptRecord("stream entry");
    let n = u32::from_be_bytes(b.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    b = &b[4..];
    let mut out = Vec::with_capacity(n.min(1024) as usize);
    for _ in 0..n {
        let f = take_bytes(&mut b)?.to_vec();
        let v = take_bytes(&mut b)?.to_vec();
        out.push((f, v));
    }
    Ok(out)
}

pub(super) const ENTRY: u8 = 0;
pub(super) const GROUP: u8 = 1;
pub(super) const PEL: u8 = 2;
pub(super) const CONSUMER: u8 = 3;
pub(super) const NODE: u8 = 4;

pub(super) fn tagged(tag: u8, id: StreamId) -> Vec<u8> {
    let mut v = Vec::with_capacity(17);
    v.push(tag);
    v.extend_from_slice(&id.bytes());
    v
}

/// Reads of a stream's records by suffix (after the key's member prefix); the typed reads
/// (entries, groups, pending entries, consumers) build on these two.
pub trait StreamRead {
    fn meta(&self) -> &StreamMeta;
    fn get(&self, suffix: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Visits records with suffixes in `[from, to)`, descending with `rev`, until `f` is false.
    fn scan(
        &self,
        from: &[u8],
        to: &[u8],
        rev: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()>;

    fn entry(&self, id: StreamId) -> Result<Option<Fields>> {
        Ok(self
            .get(&tagged(ENTRY, id))?
            .map(|v| decode_fields(&v))
            .transpose()?)
    }

    /// Entries with ids in `[from, to]` in order (descending with `rev`), at most `count`.
    fn range(
        &self,
        from: StreamId,
        to: StreamId,
        rev: bool,
        count: Option<usize>,
    ) -> Result<Vec<(StreamId, Fields)>> {
        let mut out = Vec::new();
        if from > to || count == Some(0) {
            return Ok(out);
        }
        let lo = tagged(ENTRY, from);
        let hi = match to.next() {
            Some(n) => tagged(ENTRY, n),
            None => vec![ENTRY + 1],
        };
        let mut err = None;
        self.scan(&lo, &hi, rev, &mut |k, v| {
            match (StreamId::from_bytes(&k[1..]), decode_fields(v)) {
                (Some(id), Ok(f)) => out.push((id, f)),
                (_, Err(e)) => err = Some(e),
                (None, _) => err = Some(CorruptRecord("stream entry id")),
            }
            err.is_none() && count.is_none_or(|c| out.len() < c)
        })?;
        match err {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    /// The node holding `id` (the last one starting at or before it).
    fn node_of(&self, id: StreamId) -> Result<Option<NodeInfo>> {
        let mut found = None;
        let hi = match id.next() {
            Some(n) => tagged(NODE, n),
            None => vec![NODE + 1],
        };
        self.scan(&[NODE], &hi, true, &mut |k, v| {
            found = Some((k.to_vec(), v.to_vec()));
            false
        })?;
        found.map(|(k, v)| NodeInfo::decode(&k, &v)).transpose()
    }
}

/// A stream as stored, read-only.
pub struct StreamView<'a> {
    src: Reader<'a>,
    at: DbSlot,
    key: &'a [u8],
    meta: StreamMeta,
}

impl StreamRead for StreamView<'_> {
    fn meta(&self) -> &StreamMeta {
        &self.meta
    }

    fn get(&self, suffix: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut k = member_prefix(self.at, self.key);
        k.extend_from_slice(suffix);
        self.src.get(&k)
    }

    fn scan(
        &self,
        from: &[u8],
        to: &[u8],
        rev: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let prefix = member_prefix(self.at, self.key);
        let n = prefix.len();
        let (mut lo, mut hi) = (prefix.clone(), prefix);
        lo.extend_from_slice(from);
        hi.extend_from_slice(to);
        self.src.scan(&lo, &hi, rev, |k, v| f(&k[n..], v))
    }
}

/// A stream being changed; [`Pending::stream_write`] commits it. Reads see its own changes.
pub struct StreamTxn<'a> {
    view: StreamView<'a>,
    existed: bool,
    /// Whether the stream exists after the command (XADD and XGROUP … MKSTREAM create it).
    create: bool,
    pub meta: StreamMeta,
    changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl StreamRead for StreamTxn<'_> {
    fn meta(&self) -> &StreamMeta {
        &self.meta
    }

    fn get(&self, suffix: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.changes.get(suffix) {
            Some(v) => Ok(v.clone()),
            None if self.existed => self.view.get(suffix),
            None => Ok(None),
        }
    }

    fn scan(
        &self,
        from: &[u8],
        to: &[u8],
        rev: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let mut staged: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = if from < to {
            self.changes.range(from.to_vec()..to.to_vec()).collect()
        } else {
            Vec::new()
        };
        if rev {
            staged.reverse();
        }
        let ahead = |a: &[u8], b: &[u8]| if rev { a > b } else { a < b };
        let mut i = 0;
        let mut stopped = false;
        if self.existed {
            self.view.scan(from, to, rev, &mut |k, v| {
                // Staged records before `k` in walk order go first; one equal to `k` replaces it.
                while i < staged.len() && ahead(staged[i].0, k) {
                    if let Some(sv) = staged[i].1 {
                        if !f(staged[i].0, sv) {
                            stopped = true;
                            return false;
                        }
                    }
                    i += 1;
                }
                if i < staged.len() && staged[i].0.as_slice() == k {
                    let sv = staged[i].1;
                    i += 1;
                    return match sv {
                        Some(sv) if !f(k, sv) => {
                            stopped = true;
                            false
                        }
                        _ => true,
                    };
                }
                if !f(k, v) {
                    stopped = true;
                    return false;
                }
                true
            })?;
        }
        if stopped {
            return Ok(());
        }
        for (k, v) in &staged[i..] {
            if let Some(v) = v {
                if !f(k, v) {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// How XADD and XTRIM trim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrimSpec {
    MaxLen(u64),
    MinId(StreamId),
}

/// Trimming's reach: exact, or whole nodes only with at most `limit` entries removed
/// (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrimLimit {
    Exact,
    Approx(u64),
}

impl StreamTxn<'_> {
    pub fn exists(&self) -> bool {
        self.existed || self.create
    }

    /// Makes the stream exist after the command, even with no entries.
    pub fn create(&mut self) {
        self.create = true;
    }

    pub fn put(&mut self, suffix: Vec<u8>, v: Vec<u8>) {
        self.changes.insert(suffix, Some(v));
    }

    pub fn del(&mut self, suffix: Vec<u8>) {
        self.changes.insert(suffix, None);
    }

    /// Appends an entry with `id` (greater than the last id: the caller checked) to the last
    /// node, or to a new one when that is full.
    pub fn append(
        &mut self,
        id: StreamId,
        fields: &[(Vec<u8>, Vec<u8>)],
        limits: NodeLimits,
    ) -> Result<()> {
        self.put(tagged(ENTRY, id), encode_fields(fields));
        let hint = self.meta.tail;
        let tail = match self.get(&tagged(NODE, hint))? {
            Some(v) if hint != StreamId::MIN => Some(NodeInfo::decode(&tagged(NODE, hint), &v)?),
            _ => self.last_node()?,
        };
        let mut node = match tail {
            Some(n) if !limits.full(&n, fields) => n,
            _ => NodeInfo {
                first: id,
                last: id,
                total: 0,
                live: 0,
                bytes: 0,
                master: fields.iter().map(|(f, _)| f.clone()).collect(),
            },
        };
        node.bytes += node.entry_bytes(id, fields);
        node.last = id;
        node.total += 1;
        node.live += 1;
        self.put(tagged(NODE, node.first), node.encode());
        let m = &mut self.meta;
        m.tail = node.first;
        if m.len == 0 {
            m.first_id = id;
        }
        m.len += 1;
        m.last_id = id;
        m.entries_added += 1;
        self.create = true;
        Ok(())
    }

    /// The last node, found by walking the node records backwards.
    fn last_node(&self) -> Result<Option<NodeInfo>> {
        let mut last = None;
        self.scan(&[NODE], &[NODE + 1], true, &mut |k, v| {
            last = Some((k.to_vec(), v.to_vec()));
            false
        })?;
        last.map(|(k, v)| NodeInfo::decode(&k, &v)).transpose()
    }

    /// XDEL of one id; true if it was there.
    pub fn delete(&mut self, id: StreamId) -> Result<bool> {
        if self.get(&tagged(ENTRY, id))?.is_none() {
            return Ok(false);
        }
        self.del(tagged(ENTRY, id));
        if let Some(mut n) = self.node_of(id)? {
            n.live = n.live.saturating_sub(1);
            if n.live == 0 {
                self.del(tagged(NODE, n.first));
                if n.first == self.meta.tail {
                    self.meta.tail = self.last_node()?.map_or(StreamId::MIN, |l| l.first);
                }
            } else {
                self.put(tagged(NODE, n.first), n.encode());
            }
        }
        self.meta.len = self.meta.len.saturating_sub(1);
        if id > self.meta.max_deleted {
            self.meta.max_deleted = id;
        }
        if id == self.meta.first_id {
            self.refresh_first()?;
        }
        Ok(true)
    }

    fn refresh_first(&mut self) -> Result<()> {
        self.meta.first_id = if self.meta.len == 0 {
            StreamId::MIN
        } else {
            self.range(StreamId::MIN, StreamId::MAX, false, Some(1))?
                .first()
                .map_or(StreamId::MIN, |(id, _)| *id)
        };
        Ok(())
    }

    /// Trims from the oldest entry as Valkey's `streamTrim` does; returns entries removed.
    pub fn trim(&mut self, spec: TrimSpec, limit: TrimLimit) -> Result<u64> {
        let mut deleted = 0u64;
        let mut partial = None;
        // Node by node from the head, read one at a time: trimming usually stops at the first.
        let mut cursor = vec![NODE];
        loop {
            let mut next = None;
            self.scan(&cursor, &[NODE + 1], false, &mut |k, v| {
                next = Some((k.to_vec(), v.to_vec()));
                false
            })?;
            let Some((k, v)) = next else { break };
            let n = NodeInfo::decode(&k, &v)?;
            cursor = k;
            cursor.push(0);
            if let TrimSpec::MaxLen(max) = spec {
                if self.meta.len <= max {
                    break;
                }
            }
            if let TrimLimit::Approx(l) = limit {
                if l != 0 && deleted + n.live > l {
                    break;
                }
            }
            let whole = match spec {
                TrimSpec::MaxLen(max) => self.meta.len - n.live >= max,
                TrimSpec::MinId(min) => n.last < min,
            };
            if whole {
                let hi = match n.last.next() {
                    Some(x) => tagged(ENTRY, x),
                    None => vec![ENTRY + 1],
                };
                let mut doomed = Vec::new();
                self.scan(&tagged(ENTRY, n.first), &hi, false, &mut |k, _| {
                    doomed.push(k.to_vec());
                    true
                })?;
                for k in doomed {
                    self.del(k);
                }
                self.del(tagged(NODE, n.first));
                self.meta.len = self.meta.len.saturating_sub(n.live);
                deleted += n.live;
                continue;
            }
            if limit == TrimLimit::Exact {
                partial = Some(n);
            }
            break;
        }
        if let Some(mut n) = partial {
            // Within the first node left, entry by entry up to the bound.
            let mut ids = Vec::new();
            let (len, hi) = (self.meta.len, n.last.next());
            let hi = hi.map_or(vec![ENTRY + 1], |x| tagged(ENTRY, x));
            self.scan(&tagged(ENTRY, n.first), &hi, false, &mut |k, _| {
                let Some(id) = StreamId::from_bytes(&k[1..]) else {
                    return false;
                };
                let stop = match spec {
                    TrimSpec::MaxLen(max) => len - ids.len() as u64 <= max,
                    TrimSpec::MinId(min) => id >= min,
                };
                if !stop {
                    ids.push(id);
                }
                !stop
            })?;
            for id in &ids {
                self.del(tagged(ENTRY, *id));
            }
            let k = ids.len() as u64;
            // A crafted RESTORE payload may overlap nodes: never wrap the counts.
            n.live = n.live.saturating_sub(k);
            self.put(tagged(NODE, n.first), n.encode());
            self.meta.len = self.meta.len.saturating_sub(k);
            deleted += k;
        }
        if deleted > 0 {
            self.refresh_first()?;
            if self.get(&tagged(NODE, self.meta.tail))?.is_none() {
                self.meta.tail = self.last_node()?.map_or(StreamId::MIN, |l| l.first);
            }
        }
        Ok(deleted)
    }
}

impl Pending<'_> {
    /// Runs `f` on the live stream at `key` (None when there is none).
    pub fn stream_read<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<&StreamView>) -> Result<R>,
    ) -> Result<std::result::Result<R, WrongType>> {
        let at = self.at(key);
        let e = self.read_at(at, key)?.filter(|e| is_live(e, now_ms()));
        match e.map(|e| e.value) {
            None => Ok(Ok(f(None)?)),
            Some(Value::Stream(meta)) => {
                let v = StreamView {
                    src: self.reader(),
                    at,
                    key,
                    meta: *meta,
                };
                Ok(Ok(f(Some(&v))?))
            }
            Some(_) => Ok(Err(WrongType)),
        }
    }

    /// Runs `f` on the stream at `key` (empty when there is none) under the key's lock and
    /// commits what it changed; a stream that did not exist is created only if `f` appended
    /// or called [`StreamTxn::create`].
    pub fn stream_write<R>(
        &mut self,
        key: &[u8],
        f: impl FnOnce(&mut StreamTxn) -> Result<R>,
    ) -> Result<std::result::Result<R, WrongType>> {
        self.acquire(&[key])?;
        let at = self.at(key);
        let stored = self.read_physical(key)?;
        let mut batch = Batch::new();
        let (existed, meta, expire_at) = match stored {
            Some(e) if !is_live(&e, now_ms()) => {
                stage_delete_any(&mut batch, at, key, &e);
                (false, StreamMeta::default(), None)
            }
            Some(Entry {
                value: Value::Stream(m),
                expire_at,
            }) => (true, *m, expire_at),
            Some(_) => return Ok(Err(WrongType)),
            None => (false, StreamMeta::default(), None),
        };
        let mut t = StreamTxn {
            view: StreamView {
                src: self.reader(),
                at,
                key,
                meta: meta.clone(),
            },
            existed,
            create: false,
            meta: meta.clone(),
            changes: BTreeMap::new(),
        };
        let r = f(&mut t)?;
        if !t.exists() || (t.changes.is_empty() && t.meta == meta && existed) {
            if !batch.is_empty() {
                self.push(batch)?;
            }
            return Ok(Ok(r));
        }
        let prefix = member_prefix(at, key);
        for (suffix, v) in t.changes {
            let mut k = prefix.clone();
            k.extend_from_slice(&suffix);
            match v {
                Some(v) => batch.put(k, v),
                None => batch.delete(k),
            }
        }
        let e = Entry {
            value: Value::Stream(Box::new(t.meta)),
            expire_at,
        };
        batch.put(meta_key(at, key), encode_entry(&e));
        if !existed {
            batch.count(at, 1);
        }
        self.push(batch)?;
        Ok(Ok(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_and_step() {
        let a = StreamId::new(1, u64::MAX);
        assert_eq!(a.next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::new(2, 0).prev(), Some(a));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::MIN.prev(), None);
        assert!(tagged(ENTRY, a) < tagged(ENTRY, StreamId::new(2, 0)));
        assert_eq!(StreamId::from_bytes(&a.bytes()), Some(a));
    }

    #[test]
    fn meta_and_fields_roundtrip() {
        let m = StreamMeta {
            len: 3,
            last_id: StreamId::new(5, 1),
            first_id: StreamId::new(1, 0),
            max_deleted: StreamId::new(2, 0),
            entries_added: 7,
            groups: 2,
            tail: StreamId::new(4, 0),
        };
        assert_eq!(StreamMeta::decode(&m.encode()).unwrap(), m);
        let f = vec![
            (b"a".to_vec(), b"".to_vec()),
            (b"".to_vec(), b"xyz".to_vec()),
        ];
        assert_eq!(decode_fields(&encode_fields(&f)).unwrap(), f);
        assert!(decode_fields(&[0, 0, 0, 2, 0, 0, 0, 9]).is_err());
        assert!(StreamMeta::decode(&[1, 2, 3]).is_err());
    }
}

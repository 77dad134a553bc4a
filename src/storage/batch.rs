//! Write batches: what one commit changes, applied atomically, and encoded byte-for-byte for
//! the replication stream (effects, not commands).
//!
//! Encoding (format 1): `1 | op*`, each op `tag:u8` then its fields; byte strings are
//! `len:u32le bytes`. Tags: 1 put(key, value), 2 delete(key), 3 count(slot:u16le, delta:i64le),
//! 4 delete-slots(first:u16le, last:u16le), 5 put-meta(key, value), 6 slots-imported(first:u16le,
//! last:u16le): no storage effect; it tells a replica that its primary ingested the slots' data
//! at this point of the stream (slot migration), so the replica fetches them; 7 set-count(slot:u16le,
//! count:i64le): the slot's counter set to an absolute value (after a restore recounted it); 8
//! delete-range(from, to): every key in `[from, to)` (one slot), e.g. a collection's members;
//! 9 count-db(slot:u16le, db:u8, delta:i64le) and 10 set-count-db(slot:u16le, db:u8,
//! count:i64le): tags 3 and 7 for a numbered database other than 0.

use super::{Result, StorageError, SLOTS};
use crate::slot::{DbSlot, MAX_DATABASES};

const BATCH_FORMAT: u8 = 1;

/// A set of writes applied atomically.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Batch {
    pub(super) ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Count(DbSlot, i64),
    DeleteSlots(u16, u16),
    PutMeta(Vec<u8>, Vec<u8>),
    SlotsImported(u16, u16),
    SetCount(DbSlot, i64),
    DeleteRange(Vec<u8>, Vec<u8>),
}

/// A write to slot records, as a write scope mirrors it for its own reads.
pub enum RecordWrite<'a> {
    Put(&'a [u8], &'a [u8]),
    Delete(&'a [u8]),
    DeleteRange(&'a [u8], &'a [u8]),
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }
    /// The record writes, in order (counters and node-local records left out).
    pub fn record_writes(&self) -> impl Iterator<Item = RecordWrite<'_>> {
        self.ops.iter().filter_map(|op| match op {
            Op::Put(k, v) => Some(RecordWrite::Put(k, v)),
            Op::Delete(k) => Some(RecordWrite::Delete(k)),
            Op::DeleteRange(a, z) => Some(RecordWrite::DeleteRange(a, z)),
            _ => None,
        })
    }
    /// `key` must start with its slot (u16 big-endian).
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put(key, value));
    }
    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.push(Op::Delete(key));
    }
    /// Adds `delta` to the key counter of a slot in one database.
    pub fn count(&mut self, at: DbSlot, delta: i64) {
        if delta != 0 {
            self.ops.push(Op::Count(at, delta));
        }
    }
    /// Deletes every key of slots `first..=last`, counters included.
    pub fn delete_slots(&mut self, first: u16, last: u16) {
        self.ops.push(Op::DeleteSlots(first, last));
    }
    /// A node-local record in the `meta` family (not replicated by callers).
    pub fn put_meta(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::PutMeta(key, value));
    }
    /// Appends another batch's operations.
    pub fn ops_extend(&mut self, other: Batch) {
        self.ops.extend(other.ops);
    }
    /// Deletes every key in `[from, to)`; both must be in one slot.
    pub fn delete_range(&mut self, from: Vec<u8>, to: Vec<u8>) {
        self.ops.push(Op::DeleteRange(from, to));
    }
    /// Sets the key counter of a slot in one database to `n`.
    pub fn set_count(&mut self, at: DbSlot, n: i64) {
        self.ops.push(Op::SetCount(at, n));
    }
    /// The absolute counter values this batch sets.
    pub fn counts_set(&self) -> Vec<(DbSlot, i64)> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::SetCount(s, n) => Some((*s, *n)),
                _ => None,
            })
            .collect()
    }
    /// Marks slots `first..=last` as ingested by this node at this point of the write log.
    pub fn slots_imported(&mut self, first: u16, last: u16) {
        self.ops.push(Op::SlotsImported(first, last));
    }
    /// The slot ranges this batch marks as imported.
    pub fn imported_slots(&self) -> Vec<(u16, u16)> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::SlotsImported(a, b) => Some((*a, *b)),
                _ => None,
            })
            .collect()
    }
    /// The part of this batch that touches slots for which `keep` holds (slot-range deletes
    /// are clipped to those slots; node-local meta records and markers are dropped).
    pub fn retain_slots(&self, keep: impl Fn(u16) -> bool) -> Batch {
        let slot = |k: &[u8]| u16::from_be_bytes([k[0], k[1]]) & (super::SLOTS as u16 - 1);
        let mut out = Batch::new();
        for op in &self.ops {
            match op {
                Op::Put(k, _) | Op::Delete(k) | Op::DeleteRange(k, _)
                    if k.len() >= 2 && keep(slot(k)) =>
                {
                    out.ops.push(op.clone())
                }
                Op::Count(s, _) | Op::SetCount(s, _) if keep(s.slot) => out.ops.push(op.clone()),
                Op::DeleteSlots(a, b) => {
                    let mut run: Option<(u16, u16)> = None;
                    for s in *a..=*b {
                        match (keep(s), run) {
                            (true, Some((x, _))) => run = Some((x, s)),
                            (true, None) => run = Some((s, s)),
                            (false, Some((x, y))) => {
                                out.ops.push(Op::DeleteSlots(x, y));
                                run = None;
                            }
                            (false, None) => {}
                        }
                    }
                    if let Some((x, y)) = run {
                        out.ops.push(Op::DeleteSlots(x, y));
                    }
                }
                _ => {}
            }
        }
        out
    }
    /// Whether every key, counter and slot-range delete of this batch is in a slot for which
    /// `ok` holds, and it carries no meta record (what a migration target accepts).
    pub fn only_slots(&self, ok: impl Fn(u16) -> bool) -> bool {
        self.ops.iter().all(|op| match op {
            Op::Put(k, _) | Op::Delete(k) | Op::DeleteRange(k, _) => {
                k.len() >= 3 && ok(u16::from_be_bytes([k[0], k[1]]) & (super::SLOTS as u16 - 1))
            }
            Op::Count(s, _) | Op::SetCount(s, _) => ok(s.slot),
            Op::DeleteSlots(a, b) => (*a..=*b).all(&ok),
            Op::PutMeta(..) | Op::SlotsImported(..) => false,
        })
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// Bytes of keys and values in this batch (what its encoding is made of).
    pub fn payload_bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Put(k, v) | Op::PutMeta(k, v) | Op::DeleteRange(k, v) => k.len() + v.len(),
                Op::Delete(k) => k.len(),
                _ => 0,
            })
            .sum()
    }
    /// The counter changes this batch carries, for callers mirroring counters in memory.
    pub fn count_deltas(&self) -> Vec<(DbSlot, i64)> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::Count(s, d) => Some((*s, *d)),
                _ => None,
            })
            .collect()
    }
    /// Slot ranges this batch clears.
    pub fn cleared_slots(&self) -> Vec<(u16, u16)> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::DeleteSlots(a, b) => Some((*a, *b)),
                _ => None,
            })
            .collect()
    }
    /// Keys this batch puts or deletes (data families), and the starts of deleted ranges.
    pub fn written_keys(&self) -> impl Iterator<Item = &[u8]> {
        self.ops.iter().filter_map(|op| match op {
            Op::Put(k, _) | Op::Delete(k) | Op::DeleteRange(k, _) => Some(&k[..]),
            _ => None,
        })
    }
    /// The value this batch puts at node record `key` (the last such put), if any.
    pub fn meta_put(&self, key: &[u8]) -> Option<&[u8]> {
        self.ops.iter().rev().find_map(|op| match op {
            Op::PutMeta(k, v) if k == key => Some(&v[..]),
            _ => None,
        })
    }
    /// Keys this batch puts (data families only).
    pub fn put_keys(&self) -> impl Iterator<Item = &[u8]> {
        self.ops.iter().filter_map(|op| match op {
            Op::Put(k, _) => Some(&k[..]),
            _ => None,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![BATCH_FORMAT];
        let bytes = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        };
        for op in &self.ops {
            match op {
                Op::Put(k, v) => {
                    out.push(1);
                    bytes(&mut out, k);
                    bytes(&mut out, v);
                }
                Op::Delete(k) => {
                    out.push(2);
                    bytes(&mut out, k);
                }
                // Database 0 keeps format 1's tags; other databases name theirs.
                Op::Count(s, d) if s.db == 0 => {
                    out.push(3);
                    out.extend_from_slice(&s.slot.to_le_bytes());
                    out.extend_from_slice(&d.to_le_bytes());
                }
                Op::Count(s, d) => {
                    out.push(9);
                    out.extend_from_slice(&s.slot.to_le_bytes());
                    out.push(s.db);
                    out.extend_from_slice(&d.to_le_bytes());
                }
                Op::DeleteSlots(a, b) => {
                    out.push(4);
                    out.extend_from_slice(&a.to_le_bytes());
                    out.extend_from_slice(&b.to_le_bytes());
                }
                Op::PutMeta(k, v) => {
                    out.push(5);
                    bytes(&mut out, k);
                    bytes(&mut out, v);
                }
                Op::DeleteRange(a, b) => {
                    out.push(8);
                    bytes(&mut out, a);
                    bytes(&mut out, b);
                }
                Op::SetCount(s, n) if s.db == 0 => {
                    out.push(7);
                    out.extend_from_slice(&s.slot.to_le_bytes());
                    out.extend_from_slice(&n.to_le_bytes());
                }
                Op::SetCount(s, n) => {
                    out.push(10);
                    out.extend_from_slice(&s.slot.to_le_bytes());
                    out.push(s.db);
                    out.extend_from_slice(&n.to_le_bytes());
                }
                Op::SlotsImported(a, b) => {
                    out.push(6);
                    out.extend_from_slice(&a.to_le_bytes());
                    out.extend_from_slice(&b.to_le_bytes());
                }
            }
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Batch> {
        let bad = |what: &str| StorageError::Format(format!("replicated batch: {what}"));
        let mut r = Reader { b, pos: 0 };
        if r.u8().ok_or_else(|| bad("empty"))? != BATCH_FORMAT {
            return Err(bad("unknown format"));
        }
        let mut ops = Vec::new();
        while r.pos < b.len() {
            let op = match r.u8().ok_or_else(|| bad("truncated"))? {
                1 => Op::Put(
                    r.bytes().ok_or_else(|| bad("put key"))?,
                    r.bytes().ok_or_else(|| bad("put value"))?,
                ),
                2 => Op::Delete(r.bytes().ok_or_else(|| bad("delete key"))?),
                3 => Op::Count(
                    DbSlot::new(0, r.u16().ok_or_else(|| bad("count slot"))?),
                    r.i64().ok_or_else(|| bad("count delta"))?,
                ),
                9 => {
                    let slot = r.u16().ok_or_else(|| bad("count slot"))?;
                    let db = r.u8().ok_or_else(|| bad("count db"))?;
                    Op::Count(
                        DbSlot::new(db, slot),
                        r.i64().ok_or_else(|| bad("count delta"))?,
                    )
                }
                10 => {
                    let slot = r.u16().ok_or_else(|| bad("count slot"))?;
                    let db = r.u8().ok_or_else(|| bad("count db"))?;
                    Op::SetCount(
                        DbSlot::new(db, slot),
                        r.i64().ok_or_else(|| bad("count value"))?,
                    )
                }
                4 => Op::DeleteSlots(
                    r.u16().ok_or_else(|| bad("slot range"))?,
                    r.u16().ok_or_else(|| bad("slot range"))?,
                ),
                5 => Op::PutMeta(
                    r.bytes().ok_or_else(|| bad("meta key"))?,
                    r.bytes().ok_or_else(|| bad("meta value"))?,
                ),
                6 => Op::SlotsImported(
                    r.u16().ok_or_else(|| bad("slot range"))?,
                    r.u16().ok_or_else(|| bad("slot range"))?,
                ),
                8 => Op::DeleteRange(
                    r.bytes().ok_or_else(|| bad("range start"))?,
                    r.bytes().ok_or_else(|| bad("range end"))?,
                ),
                7 => Op::SetCount(
                    DbSlot::new(0, r.u16().ok_or_else(|| bad("count slot"))?),
                    r.i64().ok_or_else(|| bad("count value"))?,
                ),
                _ => return Err(bad("unknown op")),
            };
            if let Some(what) = invalid(&op) {
                return Err(bad(what));
            }
            ops.push(op);
        }
        Ok(Batch { ops })
    }
}

/// What is wrong with a decoded op, if anything: slots must exist, ranges run upwards, and a
/// delete range stays inside its slot (a peer's bad frame must not reach per-slot tables).
fn invalid(op: &Op) -> Option<&'static str> {
    let slot_ok = |s: u16| (s as usize) < SLOTS;
    let prefix = |k: &[u8]| u16::from_be_bytes([k[0], k[1]]);
    match op {
        Op::Put(k, _) | Op::Delete(k) | Op::DeleteRange(k, _) if k.len() < 3 => {
            Some("key shorter than its slot prefix")
        }
        Op::Put(k, _) | Op::Delete(k) if !slot_ok(prefix(k)) => Some("key slot out of range"),
        Op::DeleteRange(from, to) => {
            let slot = prefix(from);
            // The end may be the next slot's bare prefix (a prefix's successor can carry).
            let limit = (slot as u32 + 1).to_be_bytes();
            if !slot_ok(slot) {
                Some("range slot out of range")
            } else if to < from || to.as_slice() > &limit[2..] {
                Some("delete range outside its slot")
            } else {
                None
            }
        }
        Op::Count(s, _) | Op::SetCount(s, _)
            if !slot_ok(s.slot) || s.db as usize >= MAX_DATABASES =>
        {
            Some("count slot or database out of range")
        }
        Op::DeleteSlots(a, b) | Op::SlotsImported(a, b) if a > b || !slot_ok(*b) => {
            Some("slot range out of range")
        }
        _ => None,
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8)
            .and_then(|s| s.try_into().ok())
            .map(i64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self
            .take(4)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_le_bytes)? as usize;
        self.take(n).map(|s| s.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_roundtrip_and_garbage() {
        let mut b = Batch::new();
        b.put(vec![0, 1, 1, b'k'], b"v".to_vec());
        b.delete(vec![0, 2, 1, b'x']);
        b.count(DbSlot::new(0, 5), -3);
        b.count(DbSlot::new(7, 6), 2);
        b.set_count(DbSlot::new(31, 16383), 9);
        b.delete_slots(0, 16383);
        b.put_meta(b"m".to_vec(), b"1".to_vec());
        let e = b.encode();
        assert_eq!(Batch::decode(&e).unwrap(), b);
        assert!(Batch::decode(&e[..e.len() - 1]).is_err());
        assert!(Batch::decode(&[9, 1]).is_err());
        assert!(Batch::decode(&[1, 7]).is_err());
        assert!(Batch::decode(&[1, 2, 1, 0, 0, 0, 5]).is_err());
    }

    #[test]
    fn slot_filtering_for_taps_and_migrated_batches() {
        let key = |slot: u16| {
            let mut k = slot.to_be_bytes().to_vec();
            k.extend_from_slice(&[1, b'k']);
            k
        };
        let mut b = Batch::new();
        b.put(key(5), b"a".to_vec());
        b.delete(key(50));
        b.count(DbSlot::new(0, 5), 1);
        b.count(DbSlot::new(4, 50), -1);
        b.delete_slots(3, 8);
        b.put_meta(b"m".to_vec(), b"x".to_vec());
        b.slots_imported(0, 9);
        let inside = |s: u16| (4..=6).contains(&s);
        let part = b.retain_slots(inside);
        let mut want = Batch::new();
        want.put(key(5), b"a".to_vec());
        want.count(DbSlot::new(0, 5), 1);
        want.delete_slots(4, 6);
        assert_eq!(part, want);
        assert!(part.only_slots(inside));
        // Meta records, markers and foreign slots are refused on the import side.
        assert!(!b.only_slots(|_| true));
        assert!(!b.retain_slots(|_| true).only_slots(inside));
        assert_eq!(b.imported_slots(), vec![(0, 9)]);
        let e = b.encode();
        assert_eq!(Batch::decode(&e).unwrap(), b);
    }
}

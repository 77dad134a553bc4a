//! Sorted sets on disk: a meta record (member count), one member record per member holding its
//! score, and a score index (`KIND_SCORE`) ordered by (score, member), so score ranges, ranks
//! and pops read only the entries they return (a rank costs a walk up to it).

use std::collections::BTreeMap;

use super::encoding::{
    encode_entry, member_key, meta_key, score_from_sortable, score_key, score_prefix, score_range,
    sortable_score,
};
use super::hash::stage_delete_any;
use super::overlay::Reader;
use super::{is_live, now_ms, DbSlot, Entry, Pending, Result, Value, WrongType};
use crate::storage::Batch;

/// Where (score, member) sits in the score index; positions order as the sorted set does.
pub fn index_position(score: f64, member: &[u8]) -> Vec<u8> {
    let mut v = sortable_score(score).to_vec();
    v.extend_from_slice(member);
    v
}

/// The (member, score) an index position names.
pub fn position_parts(p: &[u8]) -> (Vec<u8>, f64) {
    (
        p.get(8..).unwrap_or_default().to_vec(),
        score_from_sortable(p),
    )
}

/// The first position after every member scored `score`.
pub fn successor_position(score: f64) -> Vec<u8> {
    super::encoding::successor(sortable_score(score).to_vec())
}

/// The first position after (`score`, `member`).
pub fn successor_member(score: f64, member: &[u8]) -> Vec<u8> {
    let mut v = index_position(score, member);
    v.push(0);
    v
}

fn decode_score(v: &[u8]) -> f64 {
    f64::from_bits(u64::from_be_bytes(v.try_into().unwrap_or([0; 8])))
}

/// A sorted set as stored, read-only.
pub struct ZView<'a> {
    pub(super) src: Reader<'a>,
    pub(super) slot: DbSlot,
    pub(super) key: &'a [u8],
    pub len: u64,
}

impl ZView<'_> {
    pub fn score(&self, member: &[u8]) -> Result<Option<f64>> {
        Ok(self
            .src
            .get(&member_key(self.slot, self.key, member))?
            .map(|v| decode_score(&v)))
    }

    /// Visits (member, score) in (score, member) order from the lowest, until `f` is false.
    pub fn ascending(&self, from_score: f64, f: impl FnMut(&[u8], f64) -> bool) -> Result<()> {
        self.walk(Some(&sortable_score(from_score)), None, false, f)
    }

    /// Visits (member, score) whose index position ([`index_position`]) lies in `[from, to)`
    /// (unbounded where `None`), lowest first or, with `rev`, highest first, until `f` is false.
    pub fn walk(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        rev: bool,
        mut f: impl FnMut(&[u8], f64) -> bool,
    ) -> Result<()> {
        let p = score_prefix(self.slot, self.key);
        let (_, end) = score_range(self.slot, self.key);
        let n = p.len();
        let bound = |s: &[u8]| {
            let mut k = p.clone();
            k.extend_from_slice(s);
            k
        };
        let start = from.map_or_else(|| p.clone(), bound);
        let stop = to.map_or_else(|| end.clone(), bound);
        let visit = |k: &[u8], _: &[u8]| f(&k[n + 8..], score_from_sortable(&k[n..n + 8]));
        self.src.scan(&start, &stop, rev, visit)
    }

    /// Every (member, score), lowest first.
    pub fn all(&self) -> Result<Vec<(Vec<u8>, f64)>> {
        let mut out = Vec::new();
        self.ascending(f64::NEG_INFINITY, |m, s| {
            out.push((m.to_vec(), s));
            true
        })?;
        Ok(out)
    }

    /// 0-based rank of `member` from the lowest score, if present.
    pub fn rank(&self, member: &[u8]) -> Result<Option<u64>> {
        let Some(score) = self.score(member)? else {
            return Ok(None);
        };
        Ok(Some(self.entries_before(&index_position(score, member))?))
    }
}

/// A sorted set being changed; [`Keyspace::zset_write`] commits it.
pub struct ZTxn<'a> {
    view: ZView<'a>,
    existed: bool,
    /// member -> (old stored score, new score or None = removed)
    changes: BTreeMap<Vec<u8>, (Option<f64>, Option<f64>)>,
    len: u64,
    pre: Batch,
}

impl ZTxn<'_> {
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn view(&self) -> Option<&ZView<'_>> {
        (self.existed && self.changes.is_empty()).then_some(&self.view)
    }
    pub fn score(&self, member: &[u8]) -> Result<Option<f64>> {
        match self.changes.get(member) {
            Some((_, new)) => Ok(*new),
            None if self.existed => self.view.score(member),
            None => Ok(None),
        }
    }
    fn stored(&self, member: &[u8]) -> Result<Option<f64>> {
        match self.changes.get(member) {
            Some((old, _)) => Ok(*old),
            None if self.existed => self.view.score(member),
            None => Ok(None),
        }
    }
    /// Sets `member`'s score; true if it is new.
    pub fn set(&mut self, member: &[u8], score: f64) -> Result<bool> {
        let cur = self.score(member)?;
        let old = self.stored(member)?;
        if cur.is_none() {
            self.len += 1;
        }
        self.changes
            .insert(member.to_vec(), (old, Some(stored_score(score))));
        Ok(cur.is_none())
    }
    pub fn remove(&mut self, member: &[u8]) -> Result<bool> {
        let cur = self.score(member)?;
        if cur.is_none() {
            return Ok(false);
        }
        let old = self.stored(member)?;
        self.len -= 1;
        self.changes.insert(member.to_vec(), (old, None));
        Ok(true)
    }
    /// Up to `n` lowest (or highest) members, with scores, from the stored state.
    pub fn ends(&self, n: u64, highest: bool) -> Result<Vec<(Vec<u8>, f64)>> {
        if !self.existed || n == 0 {
            return Ok(Vec::new());
        }
        if !highest {
            let mut out = Vec::new();
            self.view.ascending(f64::NEG_INFINITY, |m, s| {
                out.push((m.to_vec(), s));
                (out.len() as u64) < n
            })?;
            return Ok(out);
        }
        let mut out = Vec::new();
        self.view.walk(None, None, true, |m, s| {
            out.push((m.to_vec(), s));
            (out.len() as u64) < n
        })?;
        Ok(out)
    }
}

impl Pending<'_> {
    fn zset_view<'k>(
        &'k self,
        key: &'k [u8],
    ) -> Result<std::result::Result<Option<ZView<'k>>, WrongType>> {
        match self
            .read_at(self.at(key), key)?
            .filter(|e| is_live(e, now_ms()))
        {
            None => Ok(Ok(None)),
            Some(Entry {
                value: Value::ZSet(len),
                ..
            }) => Ok(Ok(Some(ZView {
                src: self.reader(),
                slot: self.at(key),
                key,
                len,
            }))),
            Some(_) => Ok(Err(WrongType)),
        }
    }

    pub fn zset_read<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<&ZView>) -> Result<R>,
    ) -> Result<std::result::Result<R, WrongType>> {
        match self.zset_view(key)? {
            Ok(v) => Ok(Ok(f(v.as_ref())?)),
            Err(w) => Ok(Err(w)),
        }
    }

    pub fn zset_write<R>(
        &mut self,
        key: &[u8],
        f: impl FnOnce(&mut ZTxn) -> Result<R>,
    ) -> Result<std::result::Result<R, WrongType>> {
        self.acquire(&[key])?;
        let slot = self.at(key);
        let stored = self.read_physical(key)?;
        let mut pre = Batch::new();
        let (existed, len, expire_at) = match &stored {
            Some(e) if !is_live(e, now_ms()) => {
                stage_delete_any(&mut pre, slot, key, e);
                (false, 0, None)
            }
            Some(Entry {
                value: Value::ZSet(n),
                expire_at,
            }) => (true, *n, *expire_at),
            Some(_) => return Ok(Err(WrongType)),
            None => (false, 0, None),
        };
        let mut t = ZTxn {
            view: ZView {
                src: self.reader(),
                slot,
                key,
                len,
            },
            existed,
            changes: BTreeMap::new(),
            len,
            pre,
        };
        let r = f(&mut t)?;
        let mut batch = std::mem::take(&mut t.pre);
        if t.changes.is_empty() {
            if !batch.is_empty() {
                self.push(batch)?;
            }
            return Ok(Ok(r));
        }
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        for (m, (old, new)) in &t.changes {
            if let Some(o) = old {
                batch.delete(score_key(slot, key, *o, m));
                removed.push(index_position(*o, m));
            }
            match new {
                Some(s) => {
                    batch.put(member_key(slot, key, m), s.to_bits().to_be_bytes().to_vec());
                    batch.put(score_key(slot, key, *s, m), Vec::new());
                    added.push(index_position(*s, m));
                }
                None => batch.delete(member_key(slot, key, m)),
            }
        }
        let new_len = t.len;
        if new_len > 0 {
            // Rank blocks count the entries as they are after this write: stage those first.
            self.push_deferred(std::mem::take(&mut batch));
            let stored_len = if existed { len } else { 0 };
            super::zrank::stage_blocks(
                &self.reader(),
                slot,
                key,
                stored_len,
                &removed,
                &added,
                &mut batch,
            )?;
        }
        if new_len == 0 {
            if existed {
                if let Some(e) = &stored {
                    stage_delete_any(&mut batch, slot, key, e);
                }
            }
        } else {
            let e = Entry {
                value: Value::ZSet(new_len),
                expire_at,
            };
            batch.put(meta_key(slot, key), encode_entry(&e));
            if !existed {
                batch.count(slot, 1);
            }
        }
        self.push(batch)?;
        Ok(Ok(r))
    }

    /// Every (member, score) of the sorted set at `key` (DUMP).
    pub fn zset_members(&self, key: &[u8]) -> Result<Vec<(Vec<u8>, f64)>> {
        match self.zset_view(key)? {
            Ok(Some(v)) => v.all(),
            _ => Ok(Vec::new()),
        }
    }

    /// Writes a whole sorted set at `key` (RESTORE); see [`Keyspace::coll_put_all`].
    pub fn zset_put_all(
        &mut self,
        key: &[u8],
        members: Vec<(Vec<u8>, f64)>,
        expire_at: Option<i64>,
        only_if_absent: bool,
    ) -> Result<bool> {
        self.acquire(&[key])?;
        let slot = self.at(key);
        let stored = self.read_physical(key)?;
        if only_if_absent && stored.as_ref().is_some_and(|e| is_live(e, now_ms())) {
            return Ok(false);
        }
        let mut batch = Batch::new();
        if let Some(e) = &stored {
            stage_delete_any(&mut batch, slot, key, e);
        }
        let members: BTreeMap<Vec<u8>, f64> = members
            .into_iter()
            .map(|(m, s)| (m, stored_score(s)))
            .collect();
        if !members.is_empty() && expire_at.is_none_or(|at| at > now_ms()) {
            let mut positions = Vec::with_capacity(members.len());
            for (m, s) in &members {
                batch.put(member_key(slot, key, m), s.to_bits().to_be_bytes().to_vec());
                batch.put(score_key(slot, key, *s, m), Vec::new());
                positions.push(index_position(*s, m));
            }
            positions.sort_unstable();
            super::zrank::stage_fresh_blocks(slot, key, &positions, &mut batch);
            let e = Entry {
                value: Value::ZSet(members.len() as u64),
                expire_at,
            };
            batch.put(meta_key(slot, key), encode_entry(&e));
            if let Some(at) = expire_at {
                batch.put(super::encoding::expiry_key(slot, at, key), Vec::new());
            }
            batch.count(slot, 1);
        }
        if !batch.is_empty() {
            self.push(batch)?;
        }
        Ok(true)
    }
}

/// A score as a sorted set keeps it: a negative zero becomes 0, as Valkey's compact encoding
/// (listpack, the one small sets use) stores it, so ZSCORE and ZRANGE … WITHSCORES print "0"
/// and -0 and 0 sort as one score. Replies computed without storing (ZUNION … WITHSCORES)
/// still print "-0", as in Valkey.
fn stored_score(s: f64) -> f64 {
    if s == 0.0 {
        0.0
    } else {
        s
    }
}

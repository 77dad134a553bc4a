//! Key iteration: SCAN cursors, KEYS, RANDOMKEY and per-slot listings.
//!
//! A SCAN cursor is `slot << 40 | token`: token 0 starts the slot from its first key, other
//! tokens name a resume key kept in a bounded table. An unknown token (evicted, or from before
//! a restart) restarts its slot, which may repeat keys but never skips one, as SCAN promises.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;
use rand::Rng;

use super::encoding::{decode_entry, peek_entry, KIND_META};
use super::{now_ms, DbSlot, Keyspace, Result};
use crate::storage::SLOTS;

const TOKEN_BITS: u32 = 40;
const MAX_CURSORS: usize = 100_000;

pub struct CursorTable {
    inner: Mutex<Cursors>,
}

#[derive(Default)]
struct Cursors {
    next: u64,
    map: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
}

impl CursorTable {
    pub fn new() -> CursorTable {
        CursorTable {
            inner: Mutex::new(Cursors {
                next: 1,
                ..Default::default()
            }),
        }
    }

    fn save(&self, resume: Vec<u8>) -> u64 {
        let mut c = self.inner.lock();
        let t = c.next;
        c.next = if c.next + 1 >= (1 << TOKEN_BITS) {
            1
        } else {
            c.next + 1
        };
        c.map.insert(t, resume);
        c.order.push_back(t);
        while c.order.len() > MAX_CURSORS {
            if let Some(old) = c.order.pop_front() {
                c.map.remove(&old);
            }
        }
        t
    }

    fn take(&self, token: u64) -> Option<Vec<u8>> {
        self.inner.lock().map.remove(&token)
    }

    pub fn clear(&self) {
        let mut c = self.inner.lock();
        c.map.clear();
        c.order.clear();
    }
}

/// Which keys a listing returns.
pub struct ScanFilter<'a> {
    pub pattern: Option<&'a [u8]>,
    pub type_name: Option<&'a [u8]>,
    /// Only these slots (cluster mode: the slots this node serves).
    pub slots: Option<&'a dyn Fn(u16) -> bool>,
    /// The logical database listed.
    pub db: u8,
}

impl ScanFilter<'_> {
    fn matches(&self, key: &[u8], value: &[u8], now: i64) -> bool {
        let Ok((tag, at)) = peek_entry(value) else {
            return false;
        };
        if at.is_some_and(|at| at <= now) {
            return false;
        }
        // A lone "*" is no filter (Valkey skips matching; an empty key name matches too).
        if let Some(p) = self.pattern.filter(|p| *p != b"*") {
            if !crate::glob::glob_match(p, key, false) {
                return false;
            }
        }
        if let Some(t) = self.type_name {
            let Ok(e) = decode_entry(value) else {
                return false;
            };
            let _ = tag;
            if !e.value.type_name().as_bytes().eq_ignore_ascii_case(t) {
                return false;
            }
        }
        true
    }

    fn slot_ok(&self, slot: u16) -> bool {
        self.slots.is_none_or(|f| f(slot))
    }
}

/// `[from, to)` of the meta records (one per key) of a slot in one database.
pub(super) fn meta_range(at: DbSlot) -> ([u8; 3], [u8; 3]) {
    (at.prefix(KIND_META), at.prefix(KIND_META + 1))
}

impl Keyspace {
    /// Remembers where a member scan (HSCAN) resumes; the token goes into its cursor.
    pub fn save_cursor(&self, resume: Vec<u8>) -> u64 {
        self.cursors.save(resume)
    }

    pub fn take_cursor(&self, token: u64) -> Option<Vec<u8>> {
        self.cursors.take(token)
    }

    /// One SCAN step: examines about `count` keys from `cursor`; returns the next cursor
    /// (0 when done) and the matching keys.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        filter: &ScanFilter,
    ) -> Result<(u64, Vec<Vec<u8>>)> {
        let now = now_ms();
        let mut slot = (cursor >> TOKEN_BITS) as usize;
        let token = cursor & ((1 << TOKEN_BITS) - 1);
        let mut resume = if token != 0 {
            self.cursors.take(token)
        } else {
            None
        };
        let mut out = Vec::new();
        let mut examined = 0usize;
        let count = count.max(1);
        let db = self.physical(filter.db);
        while slot < SLOTS {
            let s = slot as u16;
            let at = DbSlot::new(db, s);
            if self.count_at(at) > 0 && filter.slot_ok(s) {
                let (start, end) = meta_range(at);
                let from = resume.take().unwrap_or_else(|| start.to_vec());
                let mut next_key = None;
                self.engine.scan(&from, &end, |k, v| {
                    if examined >= count {
                        next_key = Some(k.to_vec());
                        return false;
                    }
                    examined += 1;
                    let key = &k[3..];
                    if filter.matches(key, v, now) {
                        out.push(key.to_vec());
                    }
                    true
                })?;
                if let Some(nk) = next_key {
                    let t = self.cursors.save(nk);
                    return Ok(((slot as u64) << TOKEN_BITS | t, out));
                }
            }
            resume = None;
            slot += 1;
            if examined >= count && slot < SLOTS {
                return Ok(((slot as u64) << TOKEN_BITS, out));
            }
        }
        Ok((0, out))
    }

    /// Every live key matching `filter` (KEYS).
    pub fn keys(&self, filter: &ScanFilter) -> Result<Vec<Vec<u8>>> {
        let now = now_ms();
        let mut out = Vec::new();
        let db = self.physical(filter.db);
        for slot in 0..SLOTS as u16 {
            let at = DbSlot::new(db, slot);
            if self.count_at(at) == 0 || !filter.slot_ok(slot) {
                continue;
            }
            let (start, end) = meta_range(at);
            self.engine.scan_bulk(&start, &end, |k, v| {
                if filter.matches(&k[3..], v, now) {
                    out.push(k[3..].to_vec());
                }
                true
            })?;
        }
        Ok(out)
    }

    /// Up to `n` keys of `slot` in logical database `db` (CLUSTER GETKEYSINSLOT), expired
    /// ones included as Valkey does.
    pub fn keys_in_slot(&self, db: u8, slot: u16, n: usize) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        if n == 0 || self.is_hidden(slot) {
            return Ok(out);
        }
        let (start, end) = meta_range(DbSlot::new(self.physical(db), slot));
        self.engine.scan(&start, &end, |k, _| {
            out.push(k[3..].to_vec());
            out.len() < n
        })?;
        Ok(out)
    }

    /// A random live key of logical database `db`, if any (RANDOMKEY).
    pub fn random_key(
        &self,
        db: u8,
        slots: Option<&dyn Fn(u16) -> bool>,
    ) -> Result<Option<Vec<u8>>> {
        let now = now_ms();
        let db = self.physical(db);
        let populated: Vec<(u16, i64)> = (0..SLOTS as u16)
            .map(|s| (s, self.count_at(DbSlot::new(db, s))))
            .filter(|(s, c)| *c > 0 && slots.is_none_or(|f| f(*s)))
            .collect();
        if populated.is_empty() {
            return Ok(None);
        }
        let mut rng = rand::rng();
        // A few tries: the picked key may have expired.
        for _ in 0..16 {
            let (slot, n) = populated[rng.random_range(0..populated.len())];
            let skip = rng.random_range(0..n.max(1)) as usize;
            let (start, end) = meta_range(DbSlot::new(db, slot));
            let mut found = None;
            let mut i = 0;
            self.engine.scan(&start, &end, |k, v| {
                let live = peek_entry(v).is_ok_and(|(_, at)| at.is_none_or(|at| at > now));
                if live {
                    found = Some(k[3..].to_vec());
                }
                i += 1;
                i <= skip || found.is_none()
            })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}

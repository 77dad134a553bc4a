//! The Redis data model over storage: typed entries, TTLs, WRONGTYPE, lazy and active expiry,
//! per-slot key counts, SCAN cursors.
//!
//! Owns: [`Keyspace`], [`Entry`], [`Value`], the key layout (see `encoding`).
//! Must not: parse commands or build replies; it returns typed results and [`KeyspaceError`].
//! Read-modify-write runs under a striped per-key lock so concurrent connections never lose an
//! update; locks are never held across an await.

pub mod dump;
mod encoding;
mod expiry;
mod locks;
mod scan;
mod slot;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::storage::{Batch, Engine, StorageError, SLOTS};
pub use encoding::CorruptRecord;
use encoding::{decode_entry, encode_entry, expiry_key, meta_key, peek_entry};
use locks::LockTable;
pub use scan::ScanFilter;
pub use slot::key_slot;

#[derive(Debug, thiserror::Error)]
pub enum KeyspaceError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
}

pub type Result<T> = std::result::Result<T, KeyspaceError>;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Bytes),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in unix milliseconds.
    pub expire_at: Option<i64>,
}

impl Entry {
    pub fn string(b: Bytes) -> Entry {
        Entry {
            value: Value::Str(b),
            expire_at: None,
        }
    }
}

/// What a read-modify-write closure decides for one key.
#[derive(Debug)]
pub enum Update {
    Keep,
    Put(Entry),
    Delete,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn is_live(e: &Entry, now: i64) -> bool {
    e.expire_at.is_none_or(|at| at > now)
}

#[derive(Default)]
pub struct KeyspaceStats {
    pub expired_keys: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
}

/// The node's keyspace over one storage engine.
pub struct Keyspace {
    engine: Arc<Engine>,
    locks: LockTable,
    counts: Vec<AtomicI64>,
    expiring: expiry::ExpiringSlots,
    cursors: scan::CursorTable,
    pub stats: KeyspaceStats,
}

impl Keyspace {
    /// Opens the keyspace, loading per-slot key counts and which slots hold TTLs.
    pub fn open(engine: Arc<Engine>) -> Result<Keyspace> {
        let counts = engine
            .slot_counters()?
            .into_iter()
            .map(AtomicI64::new)
            .collect();
        let ks = Keyspace {
            engine,
            locks: LockTable::new(),
            counts,
            expiring: expiry::ExpiringSlots::new(),
            cursors: scan::CursorTable::new(),
            stats: KeyspaceStats::default(),
        };
        ks.expiring.load(&ks)?;
        Ok(ks)
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The live entry at `key`, or `None` if absent or expired. An expired entry found here is
    /// deleted, as Valkey's lazy expiry does.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Entry>> {
        let slot = key_slot(key);
        let mk = meta_key(slot, key);
        let now = now_ms();
        let e = match self
            .engine
            .get_with(&mk, |v| v.map(decode_entry).transpose())??
        {
            Some(e) if is_live(&e, now) => Some(e),
            Some(_) => {
                self.expire_now(key)?;
                None
            }
            None => None,
        };
        let counter = if e.is_some() {
            &self.stats.keyspace_hits
        } else {
            &self.stats.keyspace_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(e)
    }

    /// Type name and expiry of a live key without copying its value.
    pub fn peek(&self, key: &[u8]) -> Result<Option<(u8, Option<i64>)>> {
        let mk = meta_key(key_slot(key), key);
        let now = now_ms();
        let p = self
            .engine
            .get_with(&mk, |v| v.map(peek_entry).transpose())??;
        Ok(p.filter(|(_, at)| at.is_none_or(|at| at > now)))
    }

    /// Runs `f` on the live entry at `key` under the key's lock and applies its decision.
    pub fn update<R>(&self, key: &[u8], f: impl FnOnce(Option<Entry>) -> (Update, R)) -> Result<R> {
        let _g = self.locks.lock_one(key);
        let mut batch = Batch::new();
        let r = self.update_locked(key, &mut batch, f)?;
        self.commit(batch)?;
        Ok(r)
    }

    /// Like [`update`](Self::update) over several keys atomically (one batch, all locks held).
    /// `f` gets the live entries in the order of `keys` and returns one decision per key.
    pub fn update_many<R>(
        &self,
        keys: &[&[u8]],
        f: impl FnOnce(Vec<Option<Entry>>) -> (Vec<Update>, R),
    ) -> Result<R> {
        let _g = self.locks.lock_many(keys);
        let now = now_ms();
        let mut physical = Vec::with_capacity(keys.len());
        for k in keys {
            physical.push(self.read_physical(k)?);
        }
        let live = physical
            .iter()
            .map(|p| p.clone().filter(|e| is_live(e, now)))
            .collect();
        let (updates, r) = f(live);
        let mut batch = Batch::new();
        // A key listed twice sees the state its earlier decision left.
        let mut state: Vec<(&[u8], Option<Entry>)> = Vec::with_capacity(keys.len());
        for (k, p) in keys.iter().zip(physical) {
            if !state.iter().any(|(s, _)| s == k) {
                state.push((k, p));
            }
        }
        for (k, u) in keys.iter().zip(updates) {
            if let Some(st) = state.iter_mut().find(|(s, _)| s == k) {
                st.1 = self.stage(k, st.1.as_ref(), u, &mut batch);
            }
        }
        self.commit(batch)?;
        Ok(r)
    }

    fn read_physical(&self, key: &[u8]) -> Result<Option<Entry>> {
        let mk = meta_key(key_slot(key), key);
        Ok(self
            .engine
            .get_with(&mk, |v| v.map(decode_entry).transpose())??)
    }

    fn update_locked<R>(
        &self,
        key: &[u8],
        batch: &mut Batch,
        f: impl FnOnce(Option<Entry>) -> (Update, R),
    ) -> Result<R> {
        let physical = self.read_physical(key)?;
        let live = physical.clone().filter(|e| is_live(e, now_ms()));
        let (u, r) = f(live);
        self.stage(key, physical.as_ref(), u, batch);
        Ok(r)
    }

    /// Adds the writes for decision `u` on `key` (whose stored entry is `old`) to `batch`, and
    /// returns the stored entry afterwards.
    fn stage(
        &self,
        key: &[u8],
        old: Option<&Entry>,
        u: Update,
        batch: &mut Batch,
    ) -> Option<Entry> {
        let slot = key_slot(key);
        let old_at = old.and_then(|e| e.expire_at);
        match u {
            Update::Keep => old.cloned(),
            Update::Delete => {
                if let Some(old) = old {
                    batch.delete(meta_key(slot, key));
                    if let Some(at) = old.expire_at {
                        batch.delete(expiry_key(slot, at, key));
                    }
                    batch.count(slot, -1);
                }
                None
            }
            Update::Put(e) => {
                batch.put(meta_key(slot, key), encode_entry(&e));
                if old_at != e.expire_at {
                    if let Some(at) = old_at {
                        batch.delete(expiry_key(slot, at, key));
                    }
                    if let Some(at) = e.expire_at {
                        batch.put(expiry_key(slot, at, key), Vec::new());
                        self.expiring.mark(slot);
                    }
                }
                if old.is_none() {
                    batch.count(slot, 1);
                }
                Some(e)
            }
        }
    }

    fn commit(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let deltas = batch.count_deltas();
        self.engine.write(batch)?;
        for (slot, d) in deltas {
            self.counts[slot as usize].fetch_add(d, Ordering::Relaxed);
        }
        Ok(())
    }

    fn expire_now(&self, key: &[u8]) -> Result<()> {
        let expired = self.update(key, |live| match live {
            // Still expired under the lock: `live` is None but the record may exist.
            None => (Update::Delete, true),
            Some(_) => (Update::Keep, false),
        })?;
        if expired {
            self.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Number of keys (including expired ones not yet reclaimed, as Valkey's DBSIZE).
    pub fn dbsize(&self) -> i64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub fn count_in_slot(&self, slot: u16) -> i64 {
        self.counts[slot as usize].load(Ordering::Relaxed)
    }

    /// Number of keys with a TTL (for INFO's `expires=`).
    pub fn expires_count(&self) -> Result<i64> {
        self.expiring.count(self)
    }

    /// Deletes every key.
    pub fn flush_all(&self) -> Result<()> {
        let _g = self.locks.lock_all();
        self.engine.delete_slots(0, (SLOTS - 1) as u16)?;
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
        self.cursors.clear();
        Ok(())
    }

    /// Deletes every key of the slots in `[first, last]`.
    pub fn flush_slots(&self, first: u16, last: u16) -> Result<()> {
        let _g = self.locks.lock_all();
        self.engine.delete_slots(first, last)?;
        for s in first..=last {
            self.counts[s as usize].store(0, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

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
mod pending;
mod scan;
mod slot;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::storage::{Batch, Engine, StorageError, SLOTS};
pub use encoding::CorruptRecord;
use locks::LockTable;
pub use pending::Pending;
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

    /// A write scope for one connection's pipeline (see [`Pending`]).
    pub fn pending(&self) -> Pending<'_> {
        Pending::new(self)
    }

    /// The live entry at `key` (a one-operation scope).
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Entry>> {
        let mut p = self.pending();
        let r = p.lookup(key)?;
        p.commit()?;
        Ok(r)
    }

    /// Type tag and expiry of a live key without copying its value.
    pub fn peek(&self, key: &[u8]) -> Result<Option<(u8, Option<i64>)>> {
        self.pending().peek(key)
    }

    /// Read-modify-write of one key, committed at once.
    pub fn update<R>(&self, key: &[u8], f: impl FnOnce(Option<Entry>) -> (Update, R)) -> Result<R> {
        let mut p = self.pending();
        let r = p.update(key, f)?;
        p.commit()?;
        Ok(r)
    }

    /// Read-modify-write of several keys in one batch, committed at once.
    pub fn update_many<R>(
        &self,
        keys: &[&[u8]],
        f: impl FnOnce(Vec<Option<Entry>>) -> (Vec<Update>, R),
    ) -> Result<R> {
        let mut p = self.pending();
        let r = p.update_many(keys, f)?;
        p.commit()?;
        Ok(r)
    }

    fn commit(&self, batch: Batch) -> Result<()> {
        let deltas = batch.count_deltas();
        self.engine.write(batch)?;
        for (slot, d) in deltas {
            self.counts[slot as usize].fetch_add(d, Ordering::Relaxed);
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

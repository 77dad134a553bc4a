//! Key counts per slot and database, mirrored in memory from the storage counters so DBSIZE,
//! CLUSTER COUNTKEYSINSLOT and INFO keyspace never walk data.
//!
//! Must not: decide when counts change; the keyspace stores what its batches carry.

use std::sync::atomic::{AtomicI64, Ordering};

use super::DbSlot;
use crate::storage::SLOTS;

/// One counter per (physical database, slot): index `db * SLOTS + slot`.
pub struct Counts {
    per_place: Vec<AtomicI64>,
}

impl Counts {
    /// Counts loaded from `stored[db][slot]`.
    pub fn new(stored: Vec<Vec<i64>>) -> Counts {
        Counts {
            per_place: stored.into_iter().flatten().map(AtomicI64::new).collect(),
        }
    }

    pub fn databases(&self) -> usize {
        self.per_place.len() / SLOTS
    }

    fn cell(&self, at: DbSlot) -> Option<&AtomicI64> {
        self.per_place
            .get(at.db as usize * SLOTS + at.slot as usize)
    }

    pub fn get(&self, at: DbSlot) -> i64 {
        self.cell(at).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn store(&self, at: DbSlot, n: i64) {
        if let Some(c) = self.cell(at) {
            c.store(n, Ordering::Relaxed);
        }
    }

    pub fn add(&self, at: DbSlot, d: i64) {
        if let Some(c) = self.cell(at) {
            c.fetch_add(d, Ordering::Relaxed);
        }
    }

    /// Keys of one slot over every database: what a slot owner moves or must empty.
    pub fn slot_total(&self, slot: u16) -> i64 {
        (0..self.databases() as u8)
            .map(|db| self.get(DbSlot::new(db, slot)))
            .sum()
    }

    /// Keys of one database.
    pub fn db_total(&self, db: u8) -> i64 {
        let from = db as usize * SLOTS;
        self.per_place
            .get(from..from + SLOTS)
            .map_or(0, |s| s.iter().map(|c| c.load(Ordering::Relaxed)).sum())
    }

    /// Keys of every database.
    pub fn total(&self) -> i64 {
        self.per_place
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Sets every database's count of `slot` to what `stored[db][slot]` holds.
    pub fn load_slot(&self, slot: u16, stored: &[Vec<i64>]) {
        for (db, counts) in stored.iter().enumerate() {
            self.store(DbSlot::new(db as u8, slot), counts[slot as usize]);
        }
    }

    /// Zeroes every database's count of `slot`.
    pub fn clear_slot(&self, slot: u16) {
        for db in 0..self.databases() as u8 {
            self.store(DbSlot::new(db, slot), 0);
        }
    }
}

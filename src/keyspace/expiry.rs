//! Active expiry: a per-slot index of `(expire_at, key)` records lets a background cycle find
//! due keys without scanning data; an in-memory bitmap remembers which slots have any.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::encoding::{parse_expiry_key, slot_prefix, KIND_EXPIRY};
use super::{now_ms, Keyspace, Result, Update};
use crate::storage::SLOTS;

pub struct ExpiringSlots {
    bits: Vec<AtomicU64>,
    cursor: AtomicUsize,
}

impl ExpiringSlots {
    pub fn new() -> ExpiringSlots {
        ExpiringSlots {
            bits: (0..SLOTS / 64).map(|_| AtomicU64::new(0)).collect(),
            cursor: AtomicUsize::new(0),
        }
    }

    pub fn mark(&self, slot: u16) {
        self.bits[slot as usize / 64].fetch_or(1 << (slot % 64), Ordering::Relaxed);
    }

    fn clear(&self, slot: u16) {
        self.bits[slot as usize / 64].fetch_and(!(1 << (slot % 64)), Ordering::Relaxed);
    }

    fn is_marked(&self, slot: u16) -> bool {
        self.bits[slot as usize / 64].load(Ordering::Relaxed) & (1 << (slot % 64)) != 0
    }

    /// Marks the slots whose index is non-empty (start-up).
    pub fn load(&self, ks: &Keyspace) -> Result<()> {
        for slot in 0..SLOTS as u16 {
            if ks.count_in_slot(slot) == 0 {
                continue;
            }
            let mut any = false;
            ks.engine.scan(
                &slot_prefix(slot, KIND_EXPIRY),
                &slot_prefix(slot, KIND_EXPIRY + 1),
                |_, _| {
                    any = true;
                    false
                },
            )?;
            if any {
                self.mark(slot);
            }
        }
        Ok(())
    }

    pub fn count(&self, ks: &Keyspace) -> Result<i64> {
        let mut n = 0;
        for slot in 0..SLOTS as u16 {
            if self.is_marked(slot) {
                ks.engine.scan(
                    &slot_prefix(slot, KIND_EXPIRY),
                    &slot_prefix(slot, KIND_EXPIRY + 1),
                    |_, _| {
                        n += 1;
                        true
                    },
                )?;
            }
        }
        Ok(n)
    }
}

impl Keyspace {
    /// One bounded pass of active expiry: visits marked slots from where the last pass stopped
    /// and deletes at most `budget` due keys. Returns the number deleted.
    pub fn active_expire_cycle(&self, budget: usize) -> Result<usize> {
        if self.is_read_only() {
            return Ok(0);
        }
        let now = now_ms();
        let mut deleted = 0;
        let start = self.expiring.cursor.load(Ordering::Relaxed);
        for i in 0..SLOTS {
            let slot = ((start + i) % SLOTS) as u16;
            if !self.expiring.is_marked(slot) {
                continue;
            }
            let mut due: Vec<(i64, Vec<u8>)> = Vec::new();
            let mut remaining = false;
            let from = slot_prefix(slot, KIND_EXPIRY);
            self.engine
                .scan(
                    &from,
                    &slot_prefix(slot, KIND_EXPIRY + 1),
                    |k, _| match parse_expiry_key(k) {
                        Some((at, key)) if at <= now && due.len() < budget - deleted => {
                            due.push((at, key.to_vec()));
                            true
                        }
                        Some(_) => {
                            remaining = true;
                            false
                        }
                        None => true,
                    },
                )?;
            for (at, key) in &due {
                let gone = self.update(key, |live| match live {
                    None => (Update::Delete, true),
                    Some(e) if e.expire_at == Some(*at) => (Update::Delete, true),
                    Some(_) => (Update::Keep, false),
                })?;
                if gone {
                    deleted += 1;
                    self.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !remaining && due.is_empty() {
                self.expiring.clear(slot);
            }
            if deleted >= budget {
                self.expiring.cursor.store(slot as usize, Ordering::Relaxed);
                return Ok(deleted);
            }
        }
        self.expiring.cursor.store(start, Ordering::Relaxed);
        Ok(deleted)
    }
}

//! Active expiry: a per-slot index of `(expire_at, key)` records lets a background cycle find
//! due keys without scanning data; an in-memory bitmap remembers which slots have any.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::encoding::{parse_expiry_key, KIND_EXPIRY, KIND_FIELD_EXPIRY};
use super::{now_ms, DbSlot, Keyspace, Result, Update};
use crate::storage::SLOTS;

/// Which (database, slot) pairs may hold keys or hash fields with a TTL: bit
/// `db * SLOTS + slot`.
pub struct ExpiringSlots {
    bits: Vec<AtomicU64>,
    cursor: AtomicUsize,
}

fn bit(at: DbSlot) -> (usize, u64) {
    let i = at.db as usize * SLOTS + at.slot as usize;
    (i / 64, 1 << (i % 64))
}

/// `[from, to)` of the expiry index of one slot in one database.
fn index_range(at: DbSlot) -> ([u8; 3], [u8; 3]) {
    (at.prefix(KIND_EXPIRY), at.prefix(KIND_EXPIRY + 1))
}

impl ExpiringSlots {
    pub fn new(dbs: usize) -> ExpiringSlots {
        ExpiringSlots {
            bits: (0..dbs * SLOTS / 64).map(|_| AtomicU64::new(0)).collect(),
            cursor: AtomicUsize::new(0),
        }
    }

    fn dbs(&self) -> usize {
        self.bits.len() * 64 / SLOTS
    }

    pub fn mark(&self, at: DbSlot) {
        let (w, b) = bit(at);
        if let Some(w) = self.bits.get(w) {
            w.fetch_or(b, Ordering::Relaxed);
        }
    }

    fn clear(&self, at: DbSlot) {
        let (w, b) = bit(at);
        if let Some(w) = self.bits.get(w) {
            w.fetch_and(!b, Ordering::Relaxed);
        }
    }

    fn is_marked(&self, at: DbSlot) -> bool {
        let (w, b) = bit(at);
        self.bits
            .get(w)
            .is_some_and(|w| w.load(Ordering::Relaxed) & b != 0)
    }

    /// Marks the places whose index is non-empty (start-up).
    pub fn load(&self, ks: &Keyspace) -> Result<()> {
        for db in 0..self.dbs() as u8 {
            for slot in 0..SLOTS as u16 {
                let at = DbSlot::new(db, slot);
                if ks.count_at(at) == 0 {
                    continue;
                }
                let mut any = false;
                let fields = at.prefix(KIND_FIELD_EXPIRY).to_vec();
                let fields_end = super::encoding::successor(fields.clone());
                let (kf, kt) = index_range(at);
                for (from, to) in [(kf.to_vec(), kt.to_vec()), (fields, fields_end)] {
                    if !any {
                        ks.engine.scan(&from, &to, |_, _| {
                            any = true;
                            false
                        })?;
                    }
                }
                if any {
                    self.mark(at);
                }
            }
        }
        Ok(())
    }

    /// Keys with a TTL in physical database `db`.
    pub fn count(&self, ks: &Keyspace, db: u8) -> Result<i64> {
        let mut n = 0;
        for slot in 0..SLOTS as u16 {
            let at = DbSlot::new(db, slot);
            if self.is_marked(at) {
                let (from, to) = index_range(at);
                ks.engine.scan(&from, &to, |_, _| {
                    n += 1;
                    true
                })?;
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
        let places = self.expiring.dbs() * SLOTS;
        for i in 0..places {
            let place = (start + i) % places;
            let at = DbSlot::new((place / SLOTS) as u8, (place % SLOTS) as u16);
            // A slot being imported expires on its source, whose deletes arrive here.
            if !self.expiring.is_marked(at) || self.moving.is_hidden(at.slot) {
                continue;
            }
            // Cleared before the scans and set again if anything is left, so an entry
            // written meanwhile (marked after its write) is never left unmarked.
            self.expiring.clear(at);
            match self.expire_place(at, now, budget - deleted) {
                Ok((n, left)) => {
                    deleted += n;
                    if left {
                        self.expiring.mark(at);
                    }
                }
                Err(e) => {
                    self.expiring.mark(at);
                    return Err(e);
                }
            }
            if deleted >= budget {
                self.expiring.cursor.store(place, Ordering::Relaxed);
                return Ok(deleted);
            }
        }
        self.expiring.cursor.store(start, Ordering::Relaxed);
        Ok(deleted)
    }

    /// Expires due keys, then due hash fields, of one place, at most `budget` in all (at least
    /// one field). Returns how many went and whether the place may have more.
    fn expire_place(&self, at: DbSlot, now: i64, budget: usize) -> Result<(usize, bool)> {
        let mut deleted = 0;
        let mut due: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut remaining = false;
        let (from, to) = index_range(at);
        self.engine
            .scan(&from, &to, |k, _| match parse_expiry_key(k) {
                Some((t, key)) if t <= now && due.len() < budget => {
                    due.push((t, key.to_vec()));
                    true
                }
                Some(_) => {
                    remaining = true;
                    false
                }
                None => true,
            })?;
        for (due_at, key) in &due {
            let mut p = self.pending();
            p.select_physical(at.db);
            let gone = p.update(key, |live| match live {
                None => (Update::Delete, true),
                Some(e) if e.expire_at == Some(*due_at) => (Update::Delete, true),
                Some(_) => (Update::Keep, false),
            })?;
            p.commit()?;
            if gone {
                deleted += 1;
                self.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
                self.expired(at.db, key);
            }
        }
        let fields = self.expire_fields_at(at, budget.saturating_sub(deleted).max(1))?;
        deleted += fields.reclaimed;
        let left = remaining || !due.is_empty() || fields.remaining || fields.reclaimed > 0;
        Ok((deleted, left))
    }
}

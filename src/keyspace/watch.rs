//! WATCH: which keys connections watch, and marking them dirty when a committed batch touches
//! them (any write, delete, expiry, FLUSHALL, a slot cleared by a migration). Costs nothing
//! while nobody watches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::encoding::user_key;
use super::{key_slot, Keyspace};
use crate::storage::Batch;

/// Set once a watched key changed.
pub type WatchFlag = Arc<AtomicBool>;

/// The flags of the connections watching one key.
type Watchers = Vec<Weak<AtomicBool>>;

#[derive(Default)]
pub(super) struct Watches {
    live: AtomicUsize,
    /// Watched (physical database, key) pairs.
    keys: Mutex<HashMap<(u8, Vec<u8>), Watchers>>,
}

fn mark(v: &[Weak<AtomicBool>]) {
    for w in v {
        if let Some(f) = w.upgrade() {
            f.store(true, Ordering::Release);
        }
    }
}

impl Watches {
    /// Marks every watched key `batch` touches (called under the commit lock).
    pub(super) fn touched(&self, batch: &Batch) {
        if self.live.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut keys = self.keys.lock();
        keys.retain(|_, v| {
            v.retain(|w| w.strong_count() > 0);
            !v.is_empty()
        });
        if keys.is_empty() {
            self.live.store(0, Ordering::Release);
            return;
        }
        for k in batch.written_keys() {
            if let Some((db, u)) = user_key(k) {
                // A lookup by borrowed pair would need a second map shape; keys are short.
                if let Some(v) = keys.get(&(db, u.to_vec())) {
                    mark(v);
                }
            }
        }
        for (a, b) in batch.cleared_slots() {
            for ((_, k), v) in keys.iter() {
                if (a..=b).contains(&key_slot(k)) {
                    mark(v);
                }
            }
        }
    }

    /// Marks every watched key of physical databases `dbs` (FLUSHDB, SWAPDB).
    pub(super) fn touched_dbs(&self, dbs: &[u8]) {
        if self.live.load(Ordering::Acquire) == 0 {
            return;
        }
        for ((db, _), v) in self.keys.lock().iter() {
            if dbs.contains(db) {
                mark(v);
            }
        }
    }
}

impl Keyspace {
    /// Starts watching `key` of logical database `db`; the flag turns true when a committed
    /// write touches it.
    pub fn watch(&self, db: u8, key: &[u8]) -> WatchFlag {
        let f = Arc::new(AtomicBool::new(false));
        self.watches
            .keys
            .lock()
            .entry((self.physical(db), key.to_vec()))
            .or_default()
            .push(Arc::downgrade(&f));
        self.watches.live.fetch_add(1, Ordering::AcqRel);
        f
    }
}

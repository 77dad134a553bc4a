//! WATCH: which keys connections watch, and marking them dirty when a committed batch touches
//! them (any write, delete, expiry, FLUSHALL, a slot cleared by a migration). Costs nothing
//! while nobody watches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::encoding::{KIND_MEMBER, KIND_META};
use super::{key_slot, Keyspace};
use crate::storage::Batch;

/// Set once a watched key changed.
pub type WatchFlag = Arc<AtomicBool>;

#[derive(Default)]
pub(super) struct Watches {
    live: AtomicUsize,
    keys: Mutex<HashMap<Vec<u8>, Vec<Weak<AtomicBool>>>>,
}

/// The user key a data record belongs to, if it is a meta or member record.
fn user_key(k: &[u8]) -> Option<&[u8]> {
    match *k.get(2)? {
        KIND_META => k.get(3..),
        KIND_MEMBER => {
            let len = u32::from_be_bytes(k.get(3..7)?.try_into().ok()?) as usize;
            k.get(7..7 + len)
        }
        _ => None,
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
        let mark = |v: &Vec<Weak<AtomicBool>>| {
            for w in v {
                if let Some(f) = w.upgrade() {
                    f.store(true, Ordering::Release);
                }
            }
        };
        for k in batch.written_keys() {
            if let Some(u) = user_key(k) {
                if let Some(v) = keys.get(u) {
                    mark(v);
                }
            }
        }
        for (a, b) in batch.cleared_slots() {
            for (k, v) in keys.iter() {
                if (a..=b).contains(&key_slot(k)) {
                    mark(v);
                }
            }
        }
    }
}

impl Keyspace {
    /// Starts watching `key`; the flag turns true when a committed write touches it.
    pub fn watch(&self, key: &[u8]) -> WatchFlag {
        let f = Arc::new(AtomicBool::new(false));
        self.watches
            .keys
            .lock()
            .entry(key.to_vec())
            .or_default()
            .push(Arc::downgrade(&f));
        self.watches.live.fetch_add(1, Ordering::AcqRel);
        f
    }
}

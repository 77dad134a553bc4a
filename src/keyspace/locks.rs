//! Striped key locks for read-modify-write. Keys hash to one of a fixed set of mutexes;
//! multi-key operations lock their stripes in ascending order so they cannot deadlock.

use std::hash::{BuildHasher, Hasher};

use parking_lot::{Mutex, MutexGuard};

const STRIPES: usize = 1024;

pub struct LockTable {
    stripes: Vec<Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
}

pub struct Guards<'a> {
    _held: Vec<MutexGuard<'a, ()>>,
}

impl LockTable {
    pub fn new() -> LockTable {
        LockTable {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
        }
    }

    pub fn stripe(&self, key: &[u8]) -> usize {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        h.finish() as usize % STRIPES
    }

    pub fn try_lock(&self, stripe: usize) -> Option<MutexGuard<'_, ()>> {
        self.stripes[stripe].try_lock()
    }

    pub fn lock(&self, stripe: usize) -> MutexGuard<'_, ()> {
        self.stripes[stripe].lock()
    }

    /// Every stripe: for operations that replace the whole keyspace.
    pub fn lock_all(&self) -> Guards<'_> {
        Guards {
            _held: self.stripes.iter().map(|m| m.lock()).collect(),
        }
    }
}

//! The records a write scope has staged but not committed, and reads that see them: a
//! pipeline or a transaction reads its own writes (meta records, members, score index) before
//! they reach RocksDB in one batch.
//!
//! Must not: write to storage; [`super::Pending`] commits.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included};

use super::Result;
use crate::storage::{Batch, Engine, RecordWrite};

#[derive(Default)]
pub struct Overlay {
    /// Staged record values; `None` = deleted.
    records: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Ranges deleted in this scope (records staged after the deletion are in `records`).
    cleared: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Overlay {
    pub fn clear(&mut self) {
        self.records.clear();
        self.cleared.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.cleared.is_empty()
    }

    /// Mirrors the record writes of `b`.
    pub fn apply(&mut self, b: &Batch) {
        for w in b.record_writes() {
            match w {
                RecordWrite::Put(k, v) => {
                    self.records.insert(k.to_vec(), Some(v.to_vec()));
                }
                RecordWrite::Delete(k) => {
                    self.records.insert(k.to_vec(), None);
                }
                RecordWrite::DeleteRange(a, z) => {
                    let doomed: Vec<Vec<u8>> = self
                        .records
                        .range::<[u8], _>((Included(a), Excluded(z)))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        self.records.remove(&k);
                    }
                    self.cleared.push((a.to_vec(), z.to_vec()));
                }
            }
        }
    }

    fn is_cleared(&self, k: &[u8]) -> bool {
        self.cleared
            .iter()
            .any(|(a, z)| k >= a.as_slice() && k < z.as_slice())
    }
}

type Staged<'o> = (&'o Vec<u8>, &'o Option<Vec<u8>>);

/// Reads of committed records through a scope's staged ones.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    pub engine: &'a Engine,
    pub overlay: Option<&'a Overlay>,
}

impl<'a> Reader<'a> {
    fn staged(&self) -> Option<&'a Overlay> {
        self.overlay.filter(|o| !o.is_empty())
    }

    pub fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(o) = self.staged() {
            if let Some(v) = o.records.get(k) {
                return Ok(v.clone());
            }
            if o.is_cleared(k) {
                return Ok(None);
            }
        }
        Ok(self.engine.get(k)?)
    }

    /// Runs `f` on the record at `k` without copying it out of storage.
    pub fn get_with<R>(&self, k: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        if let Some(o) = self.staged() {
            if let Some(v) = o.records.get(k) {
                return Ok(f(v.as_deref()));
            }
            if o.is_cleared(k) {
                return Ok(f(None));
            }
        }
        Ok(self.engine.get_with(k, f)?)
    }

    /// Visits records in `[from, to)` in key order (descending with `rev`) until `f` returns
    /// false, staged records taking the place of stored ones.
    pub fn scan(
        &self,
        from: &[u8],
        to: &[u8],
        rev: bool,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let Some(o) = self.staged() else {
            if rev {
                self.engine.scan_rev(from, to, f)?;
            } else {
                self.engine.scan(from, to, f)?;
            }
            return Ok(());
        };
        let range = o.records.range::<[u8], _>((Included(from), Excluded(to)));
        let mut staged: Box<dyn Iterator<Item = Staged<'_>>> = if rev {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut next = staged.next();
        let mut stopped = false;
        // Staged records before `k` in walk order go first; one equal to `k` replaces it.
        let ahead = |a: &[u8], b: &[u8]| if rev { a > b } else { a < b };
        let mut visit = |k: &[u8], v: &[u8]| {
            while let Some((sk, sv)) = next {
                if !ahead(sk, k) {
                    break;
                }
                if let Some(sv) = sv {
                    if !f(sk, sv) {
                        stopped = true;
                        return false;
                    }
                }
                next = staged.next();
            }
            if let Some((sk, sv)) = next {
                if sk.as_slice() == k {
                    next = staged.next();
                    if let Some(sv) = sv {
                        if !f(sk, sv) {
                            stopped = true;
                            return false;
                        }
                    }
                    return true;
                }
            }
            if o.is_cleared(k) {
                return true;
            }
            if !f(k, v) {
                stopped = true;
                return false;
            }
            true
        };
        if rev {
            self.engine.scan_rev(from, to, &mut visit)?;
        } else {
            self.engine.scan(from, to, &mut visit)?;
        }
        if stopped {
            return Ok(());
        }
        while let Some((sk, sv)) = next {
            if let Some(sv) = sv {
                if !f(sk, sv) {
                    return Ok(());
                }
            }
            next = staged.next();
        }
        Ok(())
    }
}

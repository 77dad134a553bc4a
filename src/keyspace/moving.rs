//! What slot migration needs from the keyspace: taps that capture every committed write to a
//! set of slots (the source ships them after its snapshot), slots hidden while they are being
//! imported (no counts, no SCAN/KEYS/DBSIZE), and a write pause on slots being handed over.
//!
//! Must not: talk to other nodes or decide when a move happens (that is `migration`).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use super::{Keyspace, Result};
use crate::storage::{Batch, SLOTS};

pub use crate::slot::{in_ranges, Ranges};

/// Writes committed to some slots since a snapshot, as encoded batches in commit order.
pub struct Tap {
    ranges: Ranges,
    frames: Mutex<Vec<Vec<u8>>>,
    bytes: AtomicU64,
}

impl Tap {
    /// Takes what was captured so far.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        let v = std::mem::take(&mut *self.frames.lock());
        self.bytes.store(0, Ordering::Relaxed);
        v
    }
    /// Bytes waiting to be drained.
    pub fn pending_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// One owner's write pause (see [`Keyspace::pause_writes`]); dropping it ends the pause.
#[must_use = "the pause ends when this is dropped"]
pub struct WritePause {
    moving: Arc<Moving>,
    ranges: Ranges,
}

impl Drop for WritePause {
    fn drop(&mut self) {
        for &(a, b) in &self.ranges {
            for s in a..=b {
                self.moving.paused[s as usize].fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.moving.pause_changed.notify_waiters();
    }
}

pub(super) struct Moving {
    taps: Mutex<Vec<Arc<Tap>>>,
    any_tap: AtomicBool,
    hidden: Vec<AtomicBool>,
    /// Owners of a write pause per slot: writable again only when the last one lets go.
    paused: Vec<AtomicU32>,
    pause_changed: tokio::sync::Notify,
    /// Held (shared) by every request batch from routing to commit; taken exclusively once
    /// after a pause starts, so no write routed before the pause commits after it.
    gate: RwLock<()>,
    /// Woken when a pause has drained the gate: requests that found it closed try again.
    gate_open: tokio::sync::Notify,
}

impl Moving {
    pub(super) fn new() -> Moving {
        Moving {
            taps: Mutex::new(Vec::new()),
            any_tap: AtomicBool::new(false),
            hidden: (0..SLOTS).map(|_| AtomicBool::new(false)).collect(),
            paused: (0..SLOTS).map(|_| AtomicU32::new(0)).collect(),
            pause_changed: tokio::sync::Notify::new(),
            gate: RwLock::new(()),
            gate_open: tokio::sync::Notify::new(),
        }
    }

    /// The parts of `batch` each tap wants (called with the commit lock held, before the
    /// batch is stored; [`Moving::deliver`] hands them over once it is).
    pub(super) fn split_for_taps(&self, batch: &Batch) -> Vec<(Arc<Tap>, Vec<u8>)> {
        if !self.any_tap.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for tap in self.taps.lock().iter() {
            let part = batch.retain_slots(|s| in_ranges(&tap.ranges, s));
            if !part.is_empty() {
                out.push((Arc::clone(tap), part.encode()));
            }
        }
        out
    }

    pub(super) fn deliver(&self, parts: Vec<(Arc<Tap>, Vec<u8>)>) {
        for (tap, frame) in parts {
            tap.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
            tap.frames.lock().push(frame);
        }
    }

    pub(super) fn is_hidden(&self, slot: u16) -> bool {
        self.hidden[slot as usize].load(Ordering::Relaxed)
    }
}

/// Whether a storage entry of a slot export is a key (not a counter or an index entry).
pub fn is_key_entry(k: &[u8]) -> bool {
    k.get(2)
        .is_some_and(|&b| crate::slot::split_kind(b).1 == super::encoding::KIND_META)
}

impl Keyspace {
    /// Reads slots `ranges` from a snapshot, handing each entry to `f` (until it returns
    /// false). With `tap`, every write committed to those slots after the snapshot is captured
    /// from the same instant, so snapshot + tap miss nothing and repeat nothing. Returns the
    /// tap and the write-log offset of the snapshot.
    pub fn export_slots(
        &self,
        ranges: &[(u16, u16)],
        tap: bool,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(Option<Arc<Tap>>, u64)> {
        let (snap, offset, tap) = {
            let _order = self.commit_lock.lock();
            let tap = tap.then(|| {
                let t = Arc::new(Tap {
                    ranges: ranges.to_vec(),
                    frames: Mutex::new(Vec::new()),
                    bytes: AtomicU64::new(0),
                });
                self.moving.taps.lock().push(Arc::clone(&t));
                self.moving.any_tap.store(true, Ordering::Release);
                t
            });
            (
                self.engine.snapshot(),
                self.log.get().map(|l| l.offset()).unwrap_or(0),
                tap,
            )
        };
        let mut go = true;
        for &(a, b) in ranges {
            if !go {
                break;
            }
            let r = snap.scan_slots(a, b, |k, v| {
                go = f(k, v);
                go
            });
            if let Err(e) = r {
                if let Some(t) = &tap {
                    self.remove_tap(t);
                }
                return Err(e.into());
            }
        }
        Ok((tap, offset))
    }

    pub fn remove_tap(&self, tap: &Arc<Tap>) {
        let mut taps = self.moving.taps.lock();
        taps.retain(|t| !Arc::ptr_eq(t, tap));
        self.moving
            .any_tap
            .store(!taps.is_empty(), Ordering::Release);
    }

    /// Import side: hides the slots and clears whatever they held (replicated, so the
    /// node's replicas clear them too).
    pub fn import_begin(&self, ranges: &[(u16, u16)]) -> Result<()> {
        self.set_hidden(ranges, true);
        self.drop_slots(ranges)
    }

    /// Import side: applies one batch of writes the source made to the slots (validated to
    /// touch only `ranges`).
    pub fn import_apply(&self, ranges: &[(u16, u16)], frame: &[u8]) -> Result<()> {
        let batch = Batch::decode(frame)?;
        if !batch.only_slots(|s| in_ranges(ranges, s)) {
            return Err(crate::storage::StorageError::Format(
                "migrated batch touches slots outside the job".into(),
            )
            .into());
        }
        self.commit(batch)
    }

    /// Import side: records in the write log that the slots were ingested here (replicas
    /// fetch them when they reach this point).
    pub fn import_mark_loaded(&self, ranges: &[(u16, u16)]) -> Result<()> {
        let mut b = Batch::new();
        for &(a, z) in ranges {
            b.slots_imported(a, z);
        }
        self.commit(b)
    }

    /// Makes imported slots visible: their key counts are read from storage.
    pub fn reveal_slots(&self, ranges: &[(u16, u16)]) -> Result<()> {
        // Under the commit lock: a write committed between reading the stored counters and
        // unhiding the slots would otherwise be missing from the in-memory count.
        let _order = self.commit_lock.lock();
        let counts = self.engine.slot_counters(self.databases())?;
        for &(a, b) in ranges {
            for s in a..=b {
                self.counts.load_slot(s, &counts);
                self.moving.hidden[s as usize].store(false, Ordering::Relaxed);
            }
        }
        self.cursors.clear();
        self.expiring.load(self)
    }

    pub fn set_hidden(&self, ranges: &[(u16, u16)], on: bool) {
        let _order = self.commit_lock.lock();
        for &(a, b) in ranges {
            for s in a..=b {
                self.moving.hidden[s as usize].store(on, Ordering::Relaxed);
                if on {
                    self.counts.clear_slot(s);
                }
            }
        }
    }

    pub fn is_hidden(&self, slot: u16) -> bool {
        self.moving.is_hidden(slot)
    }

    /// Deletes every key of the slot ranges (replicated).
    pub fn drop_slots(&self, ranges: &[(u16, u16)]) -> Result<()> {
        let _g = self.locks.lock_all();
        let mut batch = Batch::new();
        for &(a, b) in ranges {
            batch.delete_slots(a, b);
        }
        self.commit(batch)
    }

    /// Replica side: deletes every key of the slot ranges before their fetched state is
    /// ingested. Not recorded in the write log: the stream's own marker (SlotsImported) is
    /// what this node's backlog must hold at that offset, not a delete of its own making.
    pub fn replica_drop_slots(&self, ranges: &[(u16, u16)]) -> Result<()> {
        let mut batch = Batch::new();
        for &(a, b) in ranges {
            batch.delete_slots(a, b);
        }
        let _order = self.commit_lock.lock();
        self.write_and_mirror(batch)
    }

    /// A digest of everything stored under slots `first..=last` (keys, values, TTLs, indexes),
    /// read from one snapshot in storage order, so a replica and its primary holding the same
    /// data give the same digest. `None` when the slots hold nothing; hidden (importing) slots
    /// count as empty.
    pub fn digest_slots(&self, first: u16, last: u16) -> Result<Option<[u8; 20]>> {
        let mut h = sha1_smol::Sha1::new();
        let mut any = false;
        let ranges: Vec<(u16, u16)> = (first..=last)
            .filter(|s| !self.is_hidden(*s))
            .map(|s| (s, s))
            .collect();
        self.export_slots(&ranges, false, |k, v| {
            any = true;
            h.update(&(k.len() as u32).to_le_bytes());
            h.update(k);
            h.update(&(v.len() as u32).to_le_bytes());
            h.update(v);
            true
        })?;
        Ok(any.then(|| h.digest().bytes()))
    }

    /// Pauses writes to the slot ranges until the returned pause is dropped; returns once
    /// every request batch routed before the pause has committed. Pauses of different owners
    /// (a slot migration's handover, a legacy MIGRATE's last round) may overlap: each holds
    /// its slots until it ends.
    pub fn pause_writes(&self, ranges: &[(u16, u16)]) -> WritePause {
        for &(a, b) in ranges {
            for s in a..=b {
                self.moving.paused[s as usize].fetch_add(1, Ordering::SeqCst);
            }
        }
        drop(self.moving.gate.write());
        self.moving.gate_open.notify_waiters();
        WritePause {
            moving: Arc::clone(&self.moving),
            ranges: ranges.to_vec(),
        }
    }

    pub fn write_paused(&self, slot: u16) -> bool {
        self.moving.paused[slot as usize].load(Ordering::SeqCst) > 0
    }

    /// Resolves when a write pause ends (callers re-check and bound their wait).
    pub async fn pause_ended(&self) {
        self.moving.pause_changed.notified().await
    }

    /// Held by a connection from routing its requests to committing their writes. While a
    /// pause waits for the requests already routed, new ones wait here without holding a
    /// runtime worker: a blocking wait would stall every task on it, the cluster bus included.
    pub async fn request_gate(&self) -> RwLockReadGuard<'_, ()> {
        if let Some(gate) = self.moving.gate.try_read() {
            return gate;
        }
        loop {
            let opened = self.moving.gate_open.notified();
            tokio::pin!(opened);
            // Registered before trying, so a pause that drains in between still wakes us.
            opened.as_mut().enable();
            if let Some(gate) = self.moving.gate.try_read() {
                return gate;
            }
            opened.await;
        }
    }

    /// Counts the keys of `slots` in storage and stores the counts (replicated): after a
    /// restore ingested files over whatever the slots held.
    pub fn recount_slots(&self, slots: &[u16]) -> Result<()> {
        // Every key lock: no write may land between counting and storing the count.
        let _all = self.locks.lock_all();
        let mut batch = Batch::new();
        for &s in slots {
            for db in 0..self.databases() as u8 {
                let at = super::DbSlot::new(db, s);
                let (start, end) = super::scan::meta_range(at);
                let mut n = 0i64;
                self.engine.scan_bulk(&start, &end, |_, _| {
                    n += 1;
                    true
                })?;
                batch.set_count(at, n);
            }
        }
        self.commit(batch)?;
        self.cursors.clear();
        self.expiring.load(self)
    }

    /// Replica side: reloads the counts of slots whose data was replaced underneath.
    pub fn reload_slots(&self, ranges: &[(u16, u16)]) -> Result<()> {
        let counts = self.engine.slot_counters(self.databases())?;
        for &(a, b) in ranges {
            for s in a..=b {
                self.counts.load_slot(s, &counts);
            }
        }
        self.cursors.clear();
        self.expiring.load(self)
    }

    /// Replica side: applies a batch from the primary minus the writes to `skip` slots (their
    /// data was already fetched in a newer state), recording the offset with it.
    pub fn apply_replicated_except(
        &self,
        frame: &[u8],
        skip: &[(u16, u16)],
        meta_key: &[u8],
        meta_value: Vec<u8>,
    ) -> Result<()> {
        let batch = Batch::decode(frame)?;
        let records = Keyspace::records_in(&batch);
        let mut batch = batch.retain_slots(|s| !in_ranges(skip, s));
        Keyspace::keep_records(&mut batch, records);
        batch.put_meta(meta_key.to_vec(), meta_value);
        let _order = self.commit_lock.lock();
        self.write_and_mirror(batch)
    }
}

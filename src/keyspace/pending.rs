//! A connection's write scope: the writes of one pipeline are staged into one storage batch and
//! committed together before any reply leaves, which turns N RocksDB writes (each a WAL append
//! and a write-group handoff between threads) into one.
//!
//! Key stripes written in the scope stay locked until the commit, so other connections never see
//! or overwrite a staged change. The scope never waits for a lock while holding one: if a stripe
//! is busy it commits first, then waits, so two scopes cannot deadlock.

use bytes::Bytes;
use parking_lot::MutexGuard;

use super::encoding::{
    collection_ranges, decode_entry, expiry_key, meta_key, peek_entry, type_name_of,
};
use super::overlay::{Overlay, Reader};
use super::{is_live, now_ms, DbSlot, Entry, Keyspace, Result, Update};
use crate::storage::Batch;

/// Staged operations after which a scope commits on its own, bounding memory and lock time.
const MAX_STAGED: usize = 1024;
/// Staged bytes (keys and values) after which a scope commits on its own: a pipeline of
/// large values becomes several batches, each replicated as one message.
const MAX_STAGED_BYTES: usize = 16 << 20;

pub struct Pending<'a> {
    ks: &'a Keyspace,
    batch: Batch,
    staged: usize,
    staged_bytes: usize,
    /// The records staged in `batch`, for this scope's own reads.
    overlay: Overlay,
    held: Vec<(usize, MutexGuard<'a, ()>)>,
    /// A transaction runs: nothing commits until [`Pending::end_atomic`].
    atomic: bool,
    /// The physical database the scope's key operations address.
    db: u8,
    /// While set, the (physical database, key) of every record staged, for keyspace
    /// notifications (lazy expiry's deletes left out: they are expiries, not the command's).
    written: Option<Written>,
    expiring: bool,
}

/// What a command staged, for keyspace notifications (see [`Pending::record_writes`]).
#[derive(Default)]
pub struct Written {
    /// (physical database, key) of every key written, in first-write order.
    pub keys: Vec<(u8, Vec<u8>)>,
    /// Keys found expired and deleted meanwhile; announced with the command's own events so
    /// they come in Valkey's order.
    pub expired: Vec<(u8, Vec<u8>)>,
}

impl<'a> Pending<'a> {
    pub(super) fn new(ks: &'a Keyspace) -> Pending<'a> {
        Pending {
            ks,
            batch: Batch::new(),
            staged: 0,
            staged_bytes: 0,
            overlay: Overlay::default(),
            held: Vec::new(),
            atomic: false,
            db: 0,
            written: None,
            expiring: false,
        }
    }

    /// Starts noting which keys the next operations write (see [`Pending::take_written`]).
    pub fn record_writes(&mut self) {
        self.written = Some(Written::default());
    }

    /// What was written since [`Pending::record_writes`]; stops noting.
    pub fn take_written(&mut self) -> Written {
        self.written.take().unwrap_or_default()
    }

    /// Addresses the next key operations to logical database `db` (SELECT's number, mapped
    /// to its physical database now); staged writes to the previous one stay staged.
    pub fn select(&mut self, db: u8) {
        self.db = self.ks.physical(db);
    }

    /// Addresses the next key operations to physical database `db` (the keyspace's own
    /// cycles, which find keys by their stored place).
    pub(super) fn select_physical(&mut self, db: u8) {
        self.db = db;
    }

    /// The physical database key operations address.
    pub fn db(&self) -> u8 {
        self.db
    }

    /// Where `key`'s records live in the selected database.
    pub fn at(&self, key: &[u8]) -> DbSlot {
        DbSlot::of(self.db, key)
    }

    /// Reads that see this scope's staged records.
    pub(super) fn reader(&self) -> Reader<'_> {
        Reader {
            engine: &self.ks.engine,
            overlay: Some(&self.overlay),
        }
    }

    /// Stages `batch` (already built under the locks of the keys it writes).
    pub(super) fn push(&mut self, batch: Batch) -> Result<()> {
        self.push_deferred(batch);
        self.maybe_commit()
    }

    /// Deletes records outside any key's own state (stale index entries) in this scope.
    pub(super) fn drop_records(&mut self, keys: impl Iterator<Item = Vec<u8>>) -> Result<()> {
        let mut batch = Batch::new();
        for k in keys {
            batch.delete(k);
        }
        self.push(batch)
    }

    /// Stages `batch` without committing, so a follow-up batch that reads it lands in the
    /// same commit (call [`Pending::push`] for the last one).
    pub(super) fn push_deferred(&mut self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        if let (Some(w), false) = (self.written.as_mut(), self.expiring) {
            for k in batch.written_keys() {
                if let Some((db, key)) = super::encoding::user_key(k) {
                    if !w.keys.iter().any(|(d, x)| *d == db && x == key) {
                        w.keys.push((db, key.to_vec()));
                    }
                }
            }
        }
        self.overlay.apply(&batch);
        self.staged_bytes += batch.payload_bytes();
        self.batch.ops_extend(batch);
        self.staged += 1;
    }

    /// Starts a transaction (EXEC, a script): locks every key it declares, in stripe order,
    /// and holds all staged writes until [`Pending::end_atomic`], so they reach storage in one
    /// batch. What the scope staged before joins that batch (a pipeline of scripts commits
    /// once); if a key is busy, [`Pending::acquire`] commits it first.
    pub fn begin_atomic(&mut self, keys: &[&[u8]]) -> Result<()> {
        self.acquire(keys)?;
        self.atomic = true;
        Ok(())
    }

    pub fn end_atomic(&mut self) {
        self.atomic = false;
    }

    /// Whether a transaction (EXEC, a script) holds this scope's commits.
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }

    pub fn keyspace(&self) -> &'a Keyspace {
        self.ks
    }

    /// Locks the stripes of `keys` not yet held.
    pub(super) fn acquire(&mut self, keys: &[&[u8]]) -> Result<()> {
        let mut want: Vec<usize> = keys.iter().map(|k| self.ks.locks.stripe(k)).collect();
        want.sort_unstable();
        want.dedup();
        want.retain(|i| !self.held.iter().any(|(h, _)| h == i));
        if want.is_empty() {
            return Ok(());
        }
        let mut got = Vec::with_capacity(want.len());
        for &i in &want {
            match self.ks.locks.try_lock(i) {
                Some(g) => got.push((i, g)),
                None => break,
            }
        }
        if got.len() == want.len() {
            self.held.extend(got);
            return Ok(());
        }
        drop(got);
        // Busy: publish what we staged (releasing every stripe), then wait in stripe order.
        // (A transaction locked its declared keys up front; an undeclared one ends up here.)
        self.commit_now()?;
        let mut all: Vec<usize> = keys.iter().map(|k| self.ks.locks.stripe(k)).collect();
        all.sort_unstable();
        all.dedup();
        for i in all {
            let g = self.ks.locks.lock(i);
            self.held.push((i, g));
        }
        Ok(())
    }

    /// The stored entry of `key`, or `None` when it expired: an expired key found here is
    /// deleted first, as Valkey's lazy expiry does on every access (a replica only hides it).
    pub(super) fn read_physical(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        let e = self.read_at(self.at(key), key)?;
        match e {
            Some(e) if !self.expiring && !is_live(&e, now_ms()) => {
                if !self.ks.is_read_only() {
                    self.expire_now(key)?;
                }
                Ok(None)
            }
            e => Ok(e),
        }
    }

    /// The stored entry of `key` at `at` (another database than the selected one too).
    pub(super) fn read_at(&self, at: DbSlot, key: &[u8]) -> Result<Option<Entry>> {
        let mk = meta_key(at, key);
        Ok(self
            .reader()
            .get_with(&mk, |v| v.map(decode_entry).transpose())??)
    }

    /// `e` with a chunked string's bytes read whole (what a command reading the value sees;
    /// the bitmap and range commands read chunks instead).
    fn assembled(&self, key: &[u8], e: Option<Entry>) -> Result<Option<Entry>> {
        match e {
            Some(Entry {
                value: super::Value::Chunked(len),
                expire_at,
            }) => {
                let b = super::chunked::assemble(&self.reader(), self.at(key), key, len)?;
                Ok(Some(Entry {
                    value: super::Value::Str(b),
                    expire_at,
                }))
            }
            e => Ok(e),
        }
    }

    /// Deletes `key` if it expired (lazy expiry of a key a command looked at).
    pub fn expire_if_needed(&mut self, key: &[u8]) -> Result<()> {
        self.read_physical(key).map(|_| ())
    }

    /// [`Pending::read_physical`] in another (physical) database.
    pub(super) fn read_physical_in(&mut self, db: u8, key: &[u8]) -> Result<Option<Entry>> {
        let selected = std::mem::replace(&mut self.db, db);
        let r = self.read_physical(key);
        self.db = selected;
        r
    }

    /// Whether `key` has a stored record, expired or not (what a write left behind).
    pub fn is_stored(&self, key: &[u8]) -> Result<bool> {
        Ok(self.stored_live(key)?.is_some())
    }

    /// Whether `key` is stored, and then whether it is live (nothing is deleted): `None`,
    /// `Some(false)` for an expired key, `Some(true)` for a live one.
    pub fn stored_live(&self, key: &[u8]) -> Result<Option<bool>> {
        Ok(self
            .read_at(self.at(key), key)?
            .map(|e| is_live(&e, now_ms())))
    }

    /// The TYPE name of `key`'s stored record and whether it is live (nothing is deleted or
    /// counted): what a command about to look the key up will find.
    pub fn stored_type(&self, key: &[u8]) -> Result<Option<(&'static str, bool)>> {
        let mk = meta_key(self.at(key), key);
        let p = self
            .reader()
            .get_with(&mk, |v| v.map(peek_entry).transpose())??;
        let now = now_ms();
        Ok(p.map(|(tag, at)| (type_name_of(tag), at.is_none_or(|at| at > now))))
    }

    /// A live string's bytes without counting a hit or deleting anything (`None` for a key
    /// that is missing, expired or not a string).
    pub fn stored_string(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let e = self
            .read_at(self.at(key), key)?
            .filter(|e| is_live(e, now_ms()));
        Ok(match self.assembled(key, e)? {
            Some(Entry {
                value: super::Value::Str(b),
                ..
            }) => Some(b),
            _ => None,
        })
    }

    /// The live entry at `key`, seeing this scope's staged writes. An expired entry found here
    /// is deleted, as Valkey's lazy expiry does.
    pub fn lookup(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        let e = self.lookup_raw(key)?;
        self.assembled(key, e)
    }

    /// [`lookup`](Self::lookup) for commands that do not read a string's bytes (TYPE,
    /// OBJECT): a chunked string comes as [`super::Value::Chunked`].
    pub fn lookup_raw(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        let e = self.read_physical(key)?;
        let stats = &self.ks.stats;
        let c = if e.is_some() {
            &stats.keyspace_hits
        } else {
            &stats.keyspace_misses
        };
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(e)
    }

    /// Type tag and expiry of a live key without copying its value.
    pub fn peek(&self, key: &[u8]) -> Result<Option<(u8, Option<i64>)>> {
        let now = now_ms();
        let mk = meta_key(self.at(key), key);
        let p = self
            .reader()
            .get_with(&mk, |v| v.map(peek_entry).transpose())??;
        Ok(p.filter(|(_, at)| at.is_none_or(|at| at > now)))
    }

    fn expire_now(&mut self, key: &[u8]) -> Result<()> {
        self.expiring = true;
        let expired = self.update(key, |live| match live {
            None => (Update::Delete, true),
            Some(_) => (Update::Keep, false),
        });
        self.expiring = false;
        if expired? {
            self.note_expired(key);
        }
        Ok(())
    }

    /// `key` was found expired and is being deleted: counted and announced as lazy expiry
    /// (with the command's events when they are being noted).
    fn note_expired(&mut self, key: &[u8]) {
        self.ks
            .stats
            .expired_keys
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.written.as_mut() {
            Some(w) => w.expired.push((self.db, key.to_vec())),
            None => self.ks.expired(self.db, key),
        }
    }

    /// Runs `f` on the live entry at `key` under the key's lock and stages its decision.
    pub fn update<R>(
        &mut self,
        key: &[u8],
        f: impl FnOnce(Option<Entry>) -> (Update, R),
    ) -> Result<R> {
        self.update_with(key, true, f)
    }

    /// [`update`](Self::update) for decisions that do not read a string's bytes (DEL, EXPIRE,
    /// PERSIST): a chunked string comes as [`super::Value::Chunked`] and `Update::Put` of it
    /// keeps its chunks.
    pub fn update_raw<R>(
        &mut self,
        key: &[u8],
        f: impl FnOnce(Option<Entry>) -> (Update, R),
    ) -> Result<R> {
        self.update_with(key, false, f)
    }

    fn update_with<R>(
        &mut self,
        key: &[u8],
        assemble: bool,
        f: impl FnOnce(Option<Entry>) -> (Update, R),
    ) -> Result<R> {
        self.acquire(&[key])?;
        let physical = self.read_physical(key)?;
        let live = physical.clone().filter(|e| is_live(e, now_ms()));
        let live = if assemble {
            self.assembled(key, live)?
        } else {
            live
        };
        let (u, r) = f(live);
        self.stage(key, physical, u)?;
        Ok(r)
    }

    /// Like [`update`](Self::update) over several keys atomically. `f` gets the live entries in
    /// the order of `keys` and returns one decision per key; a key listed twice sees the state
    /// its earlier decision left.
    pub fn update_many<R>(
        &mut self,
        keys: &[&[u8]],
        f: impl FnOnce(Vec<Option<Entry>>) -> (Vec<Update>, R),
    ) -> Result<R> {
        self.update_many_with(keys, true, f)
    }

    /// [`update_many`](Self::update_many) without reading chunked strings whole (see
    /// [`update_raw`](Self::update_raw)).
    pub fn update_many_raw<R>(
        &mut self,
        keys: &[&[u8]],
        f: impl FnOnce(Vec<Option<Entry>>) -> (Vec<Update>, R),
    ) -> Result<R> {
        self.update_many_with(keys, false, f)
    }

    fn update_many_with<R>(
        &mut self,
        keys: &[&[u8]],
        assemble: bool,
        f: impl FnOnce(Vec<Option<Entry>>) -> (Vec<Update>, R),
    ) -> Result<R> {
        self.acquire(keys)?;
        let now = now_ms();
        let mut physical = Vec::with_capacity(keys.len());
        for k in keys {
            physical.push(self.read_physical(k)?);
        }
        let mut live = Vec::with_capacity(keys.len());
        for (k, p) in keys.iter().zip(&physical) {
            let l = p.clone().filter(|e| is_live(e, now));
            live.push(if assemble { self.assembled(k, l)? } else { l });
        }
        let (updates, r) = f(live);
        // No commit between the stages: it would release the stripes, and the reads below
        // rely on them being held since the first read.
        let was_atomic = std::mem::replace(&mut self.atomic, true);
        let staged = keys
            .iter()
            .zip(updates)
            .enumerate()
            .try_for_each(|(i, (k, u))| {
                // A key listed earlier was staged since it was read: read it again through the
                // overlay. Otherwise the first read is still current.
                let cur = if keys[..i].contains(k) {
                    self.read_physical(k)?
                } else {
                    physical[i].take()
                };
                self.stage(k, cur, u)
            });
        self.atomic = was_atomic;
        staged?;
        self.maybe_commit()?;
        Ok(r)
    }

    /// Adds the writes for decision `u` on `key` (stored entry `old`) to the batch.
    fn stage(&mut self, key: &[u8], old: Option<Entry>, u: Update) -> Result<()> {
        let slot = self.at(key);
        let old_at = old.as_ref().and_then(|e| e.expire_at);
        let mut b = Batch::new();
        match u {
            Update::Keep => return Ok(()),
            Update::Delete => {
                let Some(old) = old else { return Ok(()) };
                b.delete(meta_key(slot, key));
                for (from, to) in collection_ranges(slot, key, &old.value) {
                    b.delete_range(from, to);
                }
                if let Some(at) = old.expire_at {
                    b.delete(expiry_key(slot, at, key));
                }
                b.count(slot, -1);
            }
            Update::Put(e) => {
                // A value of another kind replaces a collection: its members go (and a long
                // string's chunks).
                let keeps_chunks = matches!(e.value, super::Value::Chunked(_));
                if let Some(o) = old.as_ref().filter(|o| {
                    (o.value.is_collection()
                        && std::mem::discriminant(&o.value) != std::mem::discriminant(&e.value))
                        || (super::chunked::is_chunked(&o.value) && !keeps_chunks)
                }) {
                    for (from, to) in collection_ranges(slot, key, &o.value) {
                        b.delete_range(from, to);
                    }
                }
                if let super::Value::Str(s) = &e.value {
                    if super::chunked::is_chunked(&e.value) {
                        super::chunked::stage_chunks(&mut b, slot, key, s);
                    }
                }
                b.put(meta_key(slot, key), super::chunked::encode_meta(&e));
                if old_at != e.expire_at {
                    if let Some(at) = old_at {
                        b.delete(expiry_key(slot, at, key));
                    }
                    if let Some(at) = e.expire_at {
                        b.put(expiry_key(slot, at, key), Vec::new());
                    }
                }
                if old.is_none() {
                    b.count(slot, 1);
                }
            }
        }
        self.push(b)
    }

    fn maybe_commit(&mut self) -> Result<()> {
        if (self.staged >= MAX_STAGED || self.staged_bytes >= MAX_STAGED_BYTES) && !self.atomic {
            self.commit()?;
        }
        Ok(())
    }

    /// Whether anything is staged.
    pub fn is_dirty(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Writes everything staged as one batch and releases the key locks (inside a
    /// transaction, nothing happens until it ends).
    pub fn commit(&mut self) -> Result<()> {
        if self.atomic {
            return Ok(());
        }
        self.commit_now()
    }

    /// Writes everything staged and releases the key locks even inside a transaction: what
    /// takes every key lock (FLUSHALL, FLUSHDB, SWAPDB) runs next, and this scope's own
    /// stripes would otherwise keep it waiting forever.
    pub fn commit_now(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        let result = if batch.is_empty() {
            Ok(())
        } else {
            self.ks.commit(batch)
        };
        self.staged = 0;
        self.staged_bytes = 0;
        self.overlay.clear();
        self.held.clear();
        result
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.batch.is_empty() {
            // Every caller commits explicitly; this only guards against a missed path.
            if let Err(e) = self.commit_now() {
                tracing::error!("committing staged writes on drop failed: {e}");
            }
        }
    }
}

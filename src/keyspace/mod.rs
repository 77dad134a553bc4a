//! The Redis data model over storage: typed entries, TTLs, WRONGTYPE, lazy and active expiry,
//! per-slot key counts, SCAN cursors.
//!
//! Owns: [`Keyspace`], [`Entry`], [`Value`], the key layout (see `encoding`).
//! Must not: parse commands or build replies; it returns typed results and [`KeyspaceError`].
//! Read-modify-write runs under a striped per-key lock so concurrent connections never lose an
//! update; locks are never held across an await.

mod chunked;
mod counts;
pub mod dump;
mod encoding;
mod expiry;
mod records;
pub use records::NodeRecord;
mod hash;
mod hash_ttl;
mod list;
mod locks;
mod moving;
mod overlay;
mod pending;
mod scan;
mod stream;
mod stream_dump;
mod stream_groups;
mod stream_nodes;
mod watch;
mod zrank;
mod zset;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use bytes::Bytes;

pub use crate::slot::{key_slot, DbSlot, MAX_DATABASES};
use crate::storage::{Batch, Engine, StorageError, SLOTS};
pub use encoding::{CorruptRecord, TYPE_SET as TYPE_SET_TAG, TYPE_STRING as TYPE_STRING_TAG};

/// Whether a type tag from [`Keyspace::peek`] is a string's (kept whole or in chunks).
pub fn is_string_tag(tag: u8) -> bool {
    tag == encoding::TYPE_STRING || tag == encoding::TYPE_STRING_CHUNKED
}
pub use chunked::{CHUNK, CHUNKED_ABOVE};
pub use hash::{HashTxn, HashView, Kind, Renamed, WrongType};
pub use hash_ttl::{ExpireIf, FieldExpire};
pub use list::ListTxn;
use locks::LockTable;
pub use moving::{in_ranges, is_key_entry, Ranges, Tap, WritePause};
pub use pending::{Pending, Written};
pub use scan::ScanFilter;
pub use stream::{
    Fields, NodeInfo, NodeLimits, StreamId, StreamMeta, StreamRead, StreamTxn, StreamView,
    TrimLimit, TrimSpec,
};
pub use stream_groups::{Consumer, Group, GroupRead, PendingEntry};
pub use watch::WatchFlag;
pub use zset::{index_position, position_parts, successor_member, successor_position, ZTxn, ZView};

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
    /// A hash with this many fields (the fields are member records), of which the second
    /// number have a TTL (field TTL records; see `hash_ttl`). Expired fields count until the
    /// active cycle reclaims them, as in Valkey.
    Hash(u64, u64),
    /// A set with this many members (member records with empty values).
    Set(u64),
    /// A list of `len` elements at positions `head..head + len`.
    List {
        len: u64,
        head: i64,
    },
    /// A sorted set with this many members.
    ZSet(u64),
    /// A stream (its entries and groups are member records).
    Stream(Box<StreamMeta>),
    /// A string of this many bytes kept in chunk records, as stored (reads of the entry
    /// assemble it into [`Value::Str`]; see `chunked`).
    Chunked(u64),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) | Value::Chunked(_) => "string",
            Value::Hash(..) => "hash",
            Value::Set(_) => "set",
            Value::List { .. } => "list",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }
    /// Whether members live in separate records (they move with the key's meta record).
    pub fn is_collection(&self) -> bool {
        !matches!(self, Value::Str(_) | Value::Chunked(_))
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
    /// Hash fields the active cycle reclaimed or commands removed for a passed time.
    pub expired_fields: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
}

/// The node's keyspace over one storage engine.
pub struct Keyspace {
    engine: Arc<Engine>,
    locks: LockTable,
    counts: counts::Counts,
    /// Logical database (what SELECT names) → physical database (the kind byte's high bits);
    /// SWAPDB swaps two entries. Replicated as a node record.
    db_map: [AtomicU8; MAX_DATABASES],
    expiring: expiry::ExpiringSlots,
    cursors: scan::CursorTable,
    pub stats: KeyspaceStats,
    commit_lock: parking_lot::Mutex<()>,
    log: std::sync::OnceLock<Arc<dyn WriteLog>>,
    read_only: std::sync::atomic::AtomicBool,
    moving: Arc<moving::Moving>,
    watches: watch::Watches,
    /// Told of every committed change to a replicated node record (see `records`).
    record_hooks: [std::sync::OnceLock<records::Hook>; NodeRecord::ALL.len()],
    /// Told (logical database, key) of every key deleted because it expired.
    expired_hook: std::sync::OnceLock<ExpiredHook>,
    /// Told (logical database, key, whether the key went) when the active cycle reclaimed
    /// fields of a hash.
    field_expired_hook: std::sync::OnceLock<FieldExpiredHook>,
}

/// See [`Keyspace::on_expired`].
pub type ExpiredHook = Box<dyn Fn(u8, &[u8]) + Send + Sync>;
/// See [`Keyspace::on_fields_expired`].
pub type FieldExpiredHook = Box<dyn Fn(u8, &[u8], bool) + Send + Sync>;

/// Where committed batches go, in commit order (the replication backlog).
pub trait WriteLog: Send + Sync {
    /// Records an encoded batch; returns the offset after it.
    fn append(&self, frame: Vec<u8>) -> u64;
    /// The offset after the last recorded batch.
    fn offset(&self) -> u64;
    /// Whether batches are recorded at all (a primary records once a replica has connected).
    fn active(&self) -> bool;
    /// The node-local record stored in the same write as a batch ending at `end` (the stream
    /// position), so after a restart the node resumes exactly where its data is.
    fn position_record(&self, end: u64) -> (Vec<u8>, Vec<u8>);
    /// A batch was committed without being recorded (the log is not active yet).
    fn skipped(&self);
}

impl Keyspace {
    /// Opens the keyspace of `databases` numbered databases, loading per-slot key counts and
    /// which slots hold TTLs.
    pub fn open(engine: Arc<Engine>, databases: usize) -> Result<Keyspace> {
        let databases = databases.clamp(1, MAX_DATABASES);
        let counts = counts::Counts::new(engine.slot_counters(databases)?);
        let ks = Keyspace {
            engine,
            locks: LockTable::new(),
            counts,
            db_map: std::array::from_fn(|i| AtomicU8::new(i as u8)),
            expiring: expiry::ExpiringSlots::new(databases),
            cursors: scan::CursorTable::new(),
            stats: KeyspaceStats::default(),
            commit_lock: parking_lot::Mutex::new(()),
            log: std::sync::OnceLock::new(),
            read_only: std::sync::atomic::AtomicBool::new(false),
            moving: Arc::new(moving::Moving::new()),
            watches: watch::Watches::default(),
            record_hooks: Default::default(),
            expired_hook: std::sync::OnceLock::new(),
            field_expired_hook: std::sync::OnceLock::new(),
        };
        ks.load_db_map(&ks.record(NodeRecord::Databases)?);
        ks.expiring.load(&ks)?;
        Ok(ks)
    }

    /// Number of numbered databases.
    pub fn databases(&self) -> usize {
        self.counts.databases()
    }

    /// Sets who is told of keys deleted because they expired (lazily or actively), with their
    /// logical database; called as the delete is staged, so it must not block.
    pub fn on_expired(&self, hook: impl Fn(u8, &[u8]) + Send + Sync + 'static) {
        let _ = self.expired_hook.set(Box::new(hook));
    }

    /// Sets what hears of hash fields the active cycle reclaimed: (logical database, key,
    /// whether the key went with its last field).
    pub fn on_fields_expired(&self, hook: impl Fn(u8, &[u8], bool) + Send + Sync + 'static) {
        let _ = self.field_expired_hook.set(Box::new(hook));
    }

    fn expired(&self, physical: u8, key: &[u8]) {
        if let Some(h) = self.expired_hook.get() {
            h(self.logical(physical), key);
        }
    }

    /// The logical database stored in physical database `db` (inverse of [`Self::physical`]).
    pub fn logical(&self, db: u8) -> u8 {
        (0..self.databases() as u8)
            .find(|&l| self.physical(l) == db)
            .unwrap_or(db)
    }

    /// The physical database holding logical database `db` (SELECT's number).
    pub fn physical(&self, db: u8) -> u8 {
        self.db_map
            .get(db as usize)
            .map_or(0, |p| p.load(Ordering::Relaxed))
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

    /// Applies a batch and mirrors its counter changes; commits are ordered by one lock so the
    /// write log (replication) sees them in storage order.
    fn commit(&self, mut batch: Batch) -> Result<()> {
        let _order = self.commit_lock.lock();
        let recorded = match self.log.get() {
            Some(log) if log.active() => {
                // Encoded first: the position is this node's own record, not in the stream.
                let frame = batch.encode();
                let (k, v) = log.position_record(log.offset() + frame.len() as u64);
                batch.put_meta(k, v);
                Some((log, frame))
            }
            Some(log) => {
                log.skipped();
                None
            }
            None => None,
        };
        let tapped = self.moving.split_for_taps(&batch);
        self.write_and_mirror(batch)?;
        self.moving.deliver(tapped);
        if let Some((log, frame)) = recorded {
            log.append(frame);
        }
        Ok(())
    }

    fn write_and_mirror(&self, batch: Batch) -> Result<()> {
        self.watches.touched(&batch);
        let deltas = batch.count_deltas();
        let set = batch.counts_set();
        let cleared = batch.cleared_slots();
        // Marked once written: the expiry cycle clears a place's mark before it scans, so a
        // mark set earlier could be cleared before the entry is there to be found.
        let expiring: Vec<DbSlot> = batch.put_keys().filter_map(encoding::expiry_slot).collect();
        let records = Self::records_in(&batch);
        self.engine.write(batch)?;
        for at in expiring {
            self.expiring.mark(at);
        }
        self.records_written(&records);
        // Slots being imported stay at 0 until revealed (their counts are read back then).
        for (a, b) in cleared {
            for s in a..=b {
                self.counts.clear_slot(s);
            }
        }
        for (at, n) in set {
            if !self.moving.is_hidden(at.slot) {
                self.counts.store(at, n);
            }
        }
        for (at, d) in deltas {
            if !self.moving.is_hidden(at.slot) {
                self.counts.add(at, d);
            }
        }
        Ok(())
    }

    /// Sets where committed batches are recorded (the replication backlog).
    pub fn set_write_log(&self, log: Arc<dyn WriteLog>) {
        let _ = self.log.set(log);
    }

    /// Replica mode: expired keys are hidden but not deleted here (the primary's deletes
    /// arrive through replication), and active expiry pauses.
    pub fn set_read_only(&self, on: bool) {
        self.read_only.store(on, Ordering::Relaxed);
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }

    /// Applies a batch received from the primary, recording `(meta_key, meta_value)` (the
    /// replication id and offset) in the same atomic write.
    pub fn apply_replicated(
        &self,
        frame: &[u8],
        meta_key: &[u8],
        meta_value: Vec<u8>,
    ) -> Result<()> {
        let mut batch = Batch::decode(frame)?;
        batch.put_meta(meta_key.to_vec(), meta_value);
        // No key locks: on a read-only replica the replication task is the only writer.
        let _order = self.commit_lock.lock();
        self.write_and_mirror(batch)
    }

    /// Runs `f` on a snapshot taken between two commits, with the write log's offset at that
    /// point (so a full sync starts exactly where the stream continues).
    pub fn snapshot_at_offset<R>(
        &self,
        f: impl FnOnce(crate::storage::Snapshot<'_>, u64) -> R,
    ) -> R {
        let (snap, offset) = {
            let _order = self.commit_lock.lock();
            (
                self.engine.snapshot(),
                self.log.get().map(|l| l.offset()).unwrap_or(0),
            )
        };
        f(snap, offset)
    }

    /// Reloads per-slot counts and TTL marks after the data was replaced underneath (full sync).
    pub fn reload(&self) -> Result<()> {
        let counts = self.engine.slot_counters(self.databases())?;
        for slot in 0..SLOTS as u16 {
            self.counts.load_slot(slot, &counts);
        }
        self.load_db_map(&self.record(NodeRecord::Databases)?);
        self.cursors.clear();
        self.expiring.load(self)
    }

    /// Number of keys of logical database `db` (including expired ones not yet reclaimed,
    /// as Valkey's DBSIZE).
    pub fn dbsize(&self, db: u8) -> i64 {
        self.counts.db_total(self.physical(db))
    }

    /// Number of keys in every database.
    pub fn total_keys(&self) -> i64 {
        self.counts.total()
    }

    /// Keys of `slot` in every database (what a slot owner holds of it).
    pub fn count_in_slot(&self, slot: u16) -> i64 {
        self.counts.slot_total(slot)
    }

    /// Keys of one slot in one physical database.
    pub fn count_at(&self, at: DbSlot) -> i64 {
        self.counts.get(at)
    }

    /// Number of keys with a TTL in logical database `db` (for INFO's `expires=`).
    pub fn expires_count(&self, db: u8) -> Result<i64> {
        self.expiring.count(self, self.physical(db))
    }

    /// Deletes every key of every database.
    pub fn flush_all(&self) -> Result<()> {
        self.flush_slots(0, (SLOTS - 1) as u16)?;
        self.cursors.clear();
        Ok(())
    }

    /// Deletes every key of logical database `db`: one range delete per slot holding any.
    pub fn flush_db(&self, db: u8) -> Result<()> {
        let _g = self.locks.lock_all();
        let physical = self.physical(db);
        let mut batch = Batch::new();
        for slot in 0..SLOTS as u16 {
            let at = DbSlot::new(physical, slot);
            if self.counts.get(at) != 0 {
                batch.delete_range(at.prefix(0).to_vec(), at.end());
                batch.set_count(at, 0);
            }
        }
        self.commit(batch)?;
        self.watches.touched_dbs(&[physical]);
        self.cursors.clear();
        Ok(())
    }

    /// SWAPDB: logical databases `a` and `b` trade their data (their physical databases),
    /// replicated as the database map record.
    pub fn swap_db(&self, a: u8, b: u8) -> Result<()> {
        let _g = self.locks.lock_all();
        let mut map: Vec<u8> = (0..self.databases() as u8)
            .map(|d| self.physical(d))
            .collect();
        map.swap(a as usize, b as usize);
        let mut batch = Batch::new();
        batch.put_meta(NodeRecord::Databases.key().to_vec(), map.clone());
        self.commit(batch)?;
        self.load_db_map(&map);
        self.watches
            .touched_dbs(&[map[a as usize], map[b as usize]]);
        self.cursors.clear();
        Ok(())
    }

    /// Installs a stored database map (empty or malformed: the identity map).
    fn load_db_map(&self, map: &[u8]) {
        let n = self.databases();
        let mut seen = [false; MAX_DATABASES];
        let valid = map.len() == n
            && map
                .iter()
                .all(|&p| (p as usize) < n && !std::mem::replace(&mut seen[p as usize], true));
        for (i, cell) in self.db_map.iter().enumerate() {
            let p = if valid && i < n { map[i] } else { i as u8 };
            cell.store(p, Ordering::Relaxed);
        }
    }

    /// Deletes every key of the slots in `[first, last]`.
    pub fn flush_slots(&self, first: u16, last: u16) -> Result<()> {
        let _g = self.locks.lock_all();
        let mut batch = Batch::new();
        batch.delete_slots(first, last);
        self.commit(batch)
    }
}

#[cfg(test)]
mod tests;

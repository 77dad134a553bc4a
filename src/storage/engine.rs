//! RocksDB setup, slot-range families and the read/write primitives.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, DBWithThreadMode,
    MergeOperands, MultiThreaded, Options, ReadOptions, WriteBufferManager, WriteOptions,
};

use super::batch::Op;
use super::{family_name, Batch, Result, StorageError, SLOTS};
use crate::slot::DbSlot;

pub(super) type Db = DBWithThreadMode<MultiThreaded>;

const META_FAMILY: &str = "meta";
/// Every family key starting with `[slot][COUNTER_KIND]` is the slot's counter; user-level
/// kinds start at 1.
const COUNTER_KIND: u8 = 0;
const FORMAT_KEY: &[u8] = b"format-version";
/// 2: numbered databases share the kind byte (`db << 3 | kind`). Format 1 had database 0
/// only, whose records are format 2's unchanged, so a format-1 directory upgrades in place
/// by recording the new version.
const FORMAT_VERSION: u8 = 2;
const UPGRADES_FROM: u8 = 1;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub dir: PathBuf,
    pub block_cache_bytes: usize,
    pub write_buffer_bytes: usize,
    pub slots_per_family: usize,
    /// Slots this node serves at start: their families are created at open, in one go, so
    /// no client write waits for a family to be created.
    pub serving: Vec<u16>,
}

pub(super) fn slot_of(key: &[u8]) -> Result<u16> {
    crate::slot::record_slot(key)
        .ok_or_else(|| StorageError::Format("data key shorter than its slot prefix".into()))
}

fn write_error_reason(message: &str) -> String {
    const KNOWN: [&str; 4] = [
        "No space left on device",
        "Disk quota exceeded",
        "Read-only file system",
        "Input/output error",
    ];
    KNOWN
        .iter()
        .find(|k| message.contains(*k))
        .map_or_else(|| message.to_string(), |k| k.to_string())
}

/// SST files RocksDB keeps open: half the process's file limit (the rest is for clients and
/// the cluster port), at least 512. A fixed 512 made larger-than-RAM reads reopen tables
/// (footer, index and filter read again) once the data passed about 3 GB in ~6 MB files.
fn max_open_files() -> i32 {
    // The soft limit, from /proc (no unsafe getrlimit); "unlimited" or no /proc: 512.
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    (soft / 2).clamp(512, i32::MAX as u64) as i32
}

pub(super) fn counter_key(at: DbSlot) -> [u8; 3] {
    at.prefix(COUNTER_KIND)
}

fn add_merge(_key: &[u8], existing: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    let decode = |b: &[u8]| b.try_into().map(i64::from_le_bytes).unwrap_or(0);
    let mut v = existing.map(decode).unwrap_or(0);
    for op in ops.iter() {
        v += decode(op);
    }
    Some(v.to_le_bytes().to_vec())
}

/// The node's RocksDB with its slot-range families.
pub struct Engine {
    pub(super) db: Db,
    pub(super) family_opts: Options,
    pub(super) slots_per_family: usize,
    pub(super) names: Vec<String>,
    pub(super) exists: Vec<AtomicBool>,
    create_lock: Mutex<()>,
    write_opts: WriteOptions,
    cache: Cache,
    wbm: WriteBufferManager,
    /// The database options, for their statistics (block cache hits and misses).
    db_opts: Options,
    /// Batches written (client, replicated, migrated alike): what `everysec` syncs.
    writes: std::sync::atomic::AtomicU64,
    /// Why the last write or WAL sync failed. RocksDB keeps its WAL writer failed after such
    /// an error, so this stays set until the node restarts.
    write_error: std::sync::OnceLock<String>,
}

/// Sums over the slot families (see [`Engine::figures`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct StorageFigures {
    pub sst_bytes: u64,
    pub live_data_bytes: u64,
    /// Bytes compaction estimates it has yet to rewrite.
    pub pending_compaction_bytes: u64,
    pub running_compactions: u64,
    pub running_flushes: u64,
    /// Memtables waiting to flush.
    pub immutable_memtables: u64,
    /// Families whose writes are stopped.
    pub write_stopped: u64,
    /// The rate writers are slowed to (bytes/s; 0: not slowed).
    pub delayed_write_rate: u64,
    /// Block cache lookups that found their block, and those that read it from a file.
    pub block_cache_hits: u64,
    pub block_cache_misses: u64,
}

/// A consistent read view.
pub struct Snapshot<'a> {
    pub(super) engine: &'a Engine,
    pub(super) snap: rocksdb::SnapshotWithThreadMode<'a, Db>,
}

impl Engine {
    pub fn open(opts: &EngineOptions) -> Result<Engine> {
        let spf = opts.slots_per_family;
        if spf == 0 || SLOTS % spf != 0 {
            return Err(StorageError::Format(format!(
                "invalid slots per family {spf}"
            )));
        }
        std::fs::create_dir_all(&opts.dir)
            .map_err(|e| StorageError::Engine(format!("creating {}: {e}", opts.dir.display())))?;
        let path = opts.dir.join("db");
        let cache = Cache::new_lru_cache(opts.block_cache_bytes);
        // Memtables are charged to the block cache so one figure bounds both.
        let wbm = WriteBufferManager::new_write_buffer_manager_with_cache(
            opts.write_buffer_bytes,
            // No stalls: with many families a stalled writer can wait on flushes that never
            // bring the total under the budget. The budget still triggers flushes.
            false,
            cache.clone(),
        );
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        // Partitioned index and filters: a point lookup loads one small partition, not a
        // whole file's filter (megabytes once a collection of millions of members sits in
        // one family: without this, each lookup re-read and re-checksummed it).
        table.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
        table.set_partition_filters(true);
        table.set_metadata_block_size(4096);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_top_level_index_and_filter(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        table.set_block_size(16 * 1024);
        table.set_format_version(5);

        let mut family_opts = Options::default();
        family_opts.set_block_based_table_factory(&table);
        family_opts.set_merge_operator_associative("rockslot-add-i64", add_merge);
        family_opts.set_compression_type(DBCompressionType::Lz4);
        family_opts.set_write_buffer_size((opts.write_buffer_bytes / 4).clamp(4 << 20, 64 << 20));
        // Every family's memtable allocates an arena block on its first write; RocksDB's
        // default (write_buffer_size / 8) times 128 families would exceed the whole budget.
        family_opts.set_arena_block_size(256 << 10);
        // A whole-key bloom in each memtable (~32 KiB a family at the default 32 MiB write
        // buffer): a point lookup of a key the memtable does not hold (a GET miss, the read
        // before a SET of a new key, a key whose records were flushed) skips the skiplist
        // search, a chain of cache misses once the memtables outgrow the CPU cache. Larger
        // ratios cost the shared write-buffer budget: at 0.02 the 128 families' filters took
        // most of it and writes fell to a third.
        family_opts.set_memtable_whole_key_filtering(true);
        family_opts.set_memtable_prefix_bloom_ratio(0.001);
        family_opts.set_level_compaction_dynamic_level_bytes(true);

        let mut db_opts = family_opts.clone();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_write_buffer_manager(&wbm);
        db_opts.set_max_background_jobs(2);
        db_opts.set_max_total_wal_size((opts.write_buffer_bytes as u64 * 2).max(64 << 20));
        db_opts.set_keep_log_file_num(4);
        db_opts.set_max_open_files(max_open_files());
        // Tickers only (no histograms or timers): counting costs an atomic add per event.
        db_opts.enable_statistics();
        db_opts.set_statistics_level(rocksdb::statistics::StatsLevel::ExceptHistogramOrTimers);

        let mut existing = if path.join("CURRENT").exists() {
            Db::list_cf(&db_opts, &path)?
        } else {
            vec!["default".to_string()]
        };
        if !existing.iter().any(|n| n == META_FAMILY) {
            existing.push(META_FAMILY.into());
        }
        let names: Vec<String> = (0..SLOTS / spf).map(|f| family_name(f, spf)).collect();
        for &slot in &opts.serving {
            let n = &names[slot as usize / spf];
            if !existing.contains(n) {
                existing.push(n.clone());
            }
        }
        for n in &existing {
            if n.starts_with("slots-") && !names.contains(n) {
                return Err(StorageError::Format(format!(
                    "family {n} does not match storage-slots-per-family {spf}; \
                     the data directory was created with a different setting"
                )));
            }
        }
        let descs = existing
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(n, family_opts.clone()));
        let db = Db::open_cf_descriptors(&db_opts, &path, descs)?;
        let exists = names
            .iter()
            .map(|n| AtomicBool::new(existing.contains(n)))
            .collect();
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(false);
        let engine = Engine {
            db,
            family_opts,
            slots_per_family: spf,
            names,
            exists,
            create_lock: Mutex::new(()),
            write_opts,
            cache,
            wbm,
            db_opts,
            writes: Default::default(),
            write_error: std::sync::OnceLock::new(),
        };
        engine.check_format()?;
        Ok(engine)
    }

    fn check_format(&self) -> Result<()> {
        let meta = self.meta_cf()?;
        match self.db.get_pinned_cf(&meta, FORMAT_KEY)? {
            None => {
                self.db.put_cf(&meta, FORMAT_KEY, [FORMAT_VERSION])?;
                Ok(())
            }
            Some(v) if v.as_ref() == [FORMAT_VERSION] => Ok(()),
            Some(v) if v.as_ref() == [UPGRADES_FROM] => {
                self.db.put_cf(&meta, FORMAT_KEY, [FORMAT_VERSION])?;
                self.db.flush_wal(true)?;
                tracing::info!(
                    "storage format {UPGRADES_FROM} upgraded to {FORMAT_VERSION}: its keys are database 0's"
                );
                Ok(())
            }
            Some(v) => Err(StorageError::Format(format!(
                "data directory has storage format {:?}, this build reads {FORMAT_VERSION}",
                v.as_ref()
            ))),
        }
    }

    pub(super) fn meta_cf(&self) -> Result<Arc<rocksdb::BoundColumnFamily<'_>>> {
        self.db
            .cf_handle(META_FAMILY)
            .ok_or_else(|| StorageError::Format("meta family missing".into()))
    }

    fn family_index(&self, slot: u16) -> usize {
        slot as usize / self.slots_per_family
    }

    fn family_exists(&self, slot: u16) -> bool {
        self.exists[self.family_index(slot)].load(Ordering::Acquire)
    }

    /// The family of `slot`, created on first use.
    pub(super) fn family_for_write(
        &self,
        slot: u16,
    ) -> Result<Arc<rocksdb::BoundColumnFamily<'_>>> {
        let idx = self.family_index(slot);
        if !self.exists[idx].load(Ordering::Acquire) {
            let _g = self.create_lock.lock();
            if !self.exists[idx].load(Ordering::Acquire) {
                self.db.create_cf(&self.names[idx], &self.family_opts)?;
                self.exists[idx].store(true, Ordering::Release);
            }
        }
        self.family(slot)?
            .ok_or_else(|| StorageError::Engine(format!("family {} vanished", self.names[idx])))
    }

    /// Creates the families of `slots` that do not exist yet (a node gained slots).
    pub fn ensure_slots(&self, slots: &[u16]) -> Result<()> {
        for &s in slots {
            self.family_for_write(s)?;
        }
        Ok(())
    }

    pub(super) fn family(&self, slot: u16) -> Result<Option<Arc<rocksdb::BoundColumnFamily<'_>>>> {
        if !self.family_exists(slot) {
            return Ok(None);
        }
        Ok(self.db.cf_handle(&self.names[self.family_index(slot)]))
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(cf) = self.family(slot_of(key)?)? else {
            return Ok(None);
        };
        Ok(self.db.get_pinned_cf(&cf, key)?.map(|v| v.to_vec()))
    }

    /// Reads `key` and hands the value to `f` without copying it out of RocksDB.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        let Some(cf) = self.family(slot_of(key)?)? else {
            return Ok(f(None));
        };
        let v = self.db.get_pinned_cf(&cf, key)?;
        Ok(f(v.as_deref()))
    }

    /// Applies `batch` atomically. Durability is the caller's: see [`super::WalSync`].
    /// An engine in `dir` serving every slot, with small caches: for unit tests.
    #[cfg(test)]
    pub(crate) fn open_for_test(dir: &std::path::Path) -> Engine {
        Engine::open(&EngineOptions {
            dir: dir.to_path_buf(),
            block_cache_bytes: 8 << 20,
            write_buffer_bytes: 8 << 20,
            slots_per_family: 128,
            serving: (0..SLOTS as u16).collect(),
        })
        .expect("opening a test engine")
    }

    /// How many batches were written since open.
    pub fn write_count(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn write(&self, batch: Batch) -> Result<()> {
        let mut wb = rocksdb::WriteBatch::default();
        // A pipeline usually writes into few families: resolve each handle once.
        let mut handles: Vec<(usize, Arc<rocksdb::BoundColumnFamily<'_>>)> = Vec::new();
        let mut cf =
            |slot: u16, create: bool| -> Result<Option<Arc<rocksdb::BoundColumnFamily<'_>>>> {
                let idx = self.family_index(slot);
                if let Some((_, h)) = handles.iter().find(|(i, _)| *i == idx) {
                    return Ok(Some(Arc::clone(h)));
                }
                let h = if create {
                    Some(self.family_for_write(slot)?)
                } else {
                    self.family(slot)?
                };
                if let Some(h) = &h {
                    handles.push((idx, Arc::clone(h)));
                }
                Ok(h)
            };
        for op in batch.ops {
            match op {
                Op::Put(k, v) => {
                    if let Some(h) = cf(slot_of(&k)?, true)? {
                        wb.put_cf(&h, k, v)
                    }
                }
                Op::Delete(k) => {
                    if let Some(h) = cf(slot_of(&k)?, false)? {
                        wb.delete_cf(&h, k)
                    }
                }
                Op::Count(at, d) => {
                    if let Some(h) = cf(at.slot, true)? {
                        wb.merge_cf(&h, counter_key(at), d.to_le_bytes())
                    }
                }
                Op::DeleteSlots(first, last) => self.stage_delete_slots(&mut wb, first, last)?,
                Op::PutMeta(k, v) => wb.put_cf(&self.meta_cf()?, k, v),
                Op::SlotsImported(..) => {}
                Op::DeleteRange(from, to) => {
                    if let Some(h) = cf(slot_of(&from)?, false)? {
                        wb.delete_range_cf(&h, from, to)
                    }
                }
                Op::SetCount(at, n) => {
                    if let Some(h) = cf(at.slot, true)? {
                        wb.put_cf(&h, counter_key(at), n.to_le_bytes())
                    }
                }
            }
        }
        self.db
            .write_opt(wb, &self.write_opts)
            .map_err(|e| self.failed_write(e))?;
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Syncs the write-ahead log to disk.
    pub fn sync_wal(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(|e| self.failed_write(e))?;
        Ok(())
    }

    fn failed_write(&self, e: rocksdb::Error) -> StorageError {
        let e = StorageError::from(e);
        // The first failure names the cause; the ones after it are its consequence.
        let _ = self.write_error.set(write_error_reason(&e.to_string()));
        e
    }

    /// Why writes fail since a write or WAL sync failed (`None` while they work): the
    /// operating system's words when RocksDB passes them on, as Valkey reports `strerror`.
    /// Lock-free: every write command checks it.
    pub fn write_error(&self) -> Option<String> {
        self.write_error.get().cloned()
    }

    /// The persistent key counters of every slot of databases `0..dbs`, indexed
    /// `[db][slot]` (zero for slots without a family).
    pub fn slot_counters(&self, dbs: usize) -> Result<Vec<Vec<i64>>> {
        let mut out = vec![vec![0i64; SLOTS]; dbs];
        for (f, name) in self.names.iter().enumerate() {
            if !self.exists[f].load(Ordering::Acquire) {
                continue;
            }
            let Some(cf) = self.db.cf_handle(name) else {
                continue;
            };
            let first = f * self.slots_per_family;
            for (db, counts) in out.iter_mut().enumerate() {
                let keys: Vec<[u8; 3]> = (first..first + self.slots_per_family)
                    .map(|s| counter_key(DbSlot::new(db as u8, s as u16)))
                    .collect();
                let vals = self.db.multi_get_cf(keys.iter().map(|k| (&cf, k)));
                for (i, v) in vals.into_iter().enumerate() {
                    if let Some(v) = v? {
                        counts[first + i] =
                            v.as_slice().try_into().map(i64::from_le_bytes).unwrap_or(0);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Visits keys in `[from, to)` (both within one slot's family) in order until `f` returns
    /// false.
    ///
    /// Client reads fill the block cache like point reads do: without it every LRANGE,
    /// HGETALL or ZRANGE of a hot collection read its blocks from the OS and decompressed
    /// them again (a fifth of LRANGE_100's CPU). Bulk walks (snapshots) do not fill it.
    pub fn scan(&self, from: &[u8], to: &[u8], f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        self.scan_filling(from, to, true, f)
    }

    /// [`Engine::scan`] for walks over whole slots (KEYS, recounts): blocks read stay out of
    /// the block cache, so one walk does not evict what clients read often.
    pub fn scan_bulk(
        &self,
        from: &[u8],
        to: &[u8],
        f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        self.scan_filling(from, to, false, f)
    }

    fn scan_filling(
        &self,
        from: &[u8],
        to: &[u8],
        fill_cache: bool,
        f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let Some(cf) = self.family(slot_of(from)?)? else {
            return Ok(());
        };
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(to.to_vec());
        ro.fill_cache(fill_cache);
        let it = self.db.raw_iterator_cf_opt(&cf, ro);
        visit(it, from, f)
    }

    /// Visits keys in `[from, to)` (both within one slot's family) from the highest down until
    /// `f` returns false.
    pub fn scan_rev(
        &self,
        from: &[u8],
        to: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let Some(cf) = self.family(slot_of(from)?)? else {
            return Ok(());
        };
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(from.to_vec());
        ro.set_iterate_upper_bound(to.to_vec());
        let mut it = self.db.raw_iterator_cf_opt(&cf, ro);
        it.seek_to_last();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if !f(k, v) {
                return Ok(());
            }
            it.prev();
        }
        it.status()?;
        Ok(())
    }

    fn stage_delete_slots(
        &self,
        wb: &mut rocksdb::WriteBatch,
        first: u16,
        last: u16,
    ) -> Result<()> {
        let mut slot = first as usize;
        while slot <= last as usize {
            let fam_end = (self.family_index(slot as u16) + 1) * self.slots_per_family;
            let end = fam_end.min(last as usize + 1);
            if let Some(cf) = self.family(slot as u16)? {
                let from = (slot as u16).to_be_bytes().to_vec();
                let to = if end == SLOTS {
                    vec![0xff, 0xff, 0xff]
                } else {
                    (end as u16).to_be_bytes().to_vec()
                };
                wb.delete_range_cf(&cf, from, to);
            }
            slot = end;
        }
        Ok(())
    }

    /// A node-local record from the `meta` family.
    pub fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .db
            .get_pinned_cf(&self.meta_cf()?, key)?
            .map(|v| v.to_vec()))
    }

    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            engine: self,
            snap: self.db.snapshot(),
        }
    }

    /// Bytes used by the block cache and the memtables (which are charged to it).
    pub fn memory_usage(&self) -> (usize, usize) {
        (self.cache.get_usage(), self.wbm.get_usage())
    }

    /// Approximate live data size on disk.
    pub fn disk_usage(&self) -> u64 {
        self.family_property_sum("rocksdb.total-sst-files-size")
    }

    /// What the engine reports about itself (the metrics endpoint's storage figures).
    pub fn figures(&self) -> StorageFigures {
        let p = |name: &str| self.family_property_sum(name);
        StorageFigures {
            sst_bytes: p("rocksdb.total-sst-files-size"),
            live_data_bytes: p("rocksdb.estimate-live-data-size"),
            pending_compaction_bytes: p("rocksdb.estimate-pending-compaction-bytes"),
            running_compactions: p("rocksdb.num-running-compactions"),
            running_flushes: p("rocksdb.num-running-flushes"),
            immutable_memtables: p("rocksdb.num-immutable-mem-table"),
            write_stopped: p("rocksdb.is-write-stopped"),
            delayed_write_rate: p("rocksdb.actual-delayed-write-rate"),
            block_cache_hits: self
                .db_opts
                .get_ticker_count(rocksdb::statistics::Ticker::BlockCacheHit),
            block_cache_misses: self
                .db_opts
                .get_ticker_count(rocksdb::statistics::Ticker::BlockCacheMiss),
        }
    }

    /// The sum over existing families of an integer engine property.
    fn family_property_sum(&self, property: &str) -> u64 {
        let mut total = 0;
        for (f, name) in self.names.iter().enumerate() {
            if !self.exists[f].load(Ordering::Acquire) {
                continue;
            }
            if let Some(cf) = self.db.cf_handle(name) {
                total += self
                    .db
                    .property_int_value_cf(&cf, property)
                    .ok()
                    .flatten()
                    .unwrap_or(0);
            }
        }
        total
    }

    /// Names of the families that exist now.
    pub fn families(&self) -> Vec<String> {
        self.names
            .iter()
            .enumerate()
            .filter(|(f, _)| self.exists[*f].load(Ordering::Acquire))
            .map(|(_, n)| n.clone())
            .collect()
    }
}

fn visit(
    mut it: rocksdb::DBRawIteratorWithThreadMode<'_, Db>,
    from: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> bool,
) -> Result<()> {
    it.seek(from);
    while it.valid() {
        let (Some(k), Some(v)) = (it.key(), it.value()) else {
            break;
        };
        if !f(k, v) {
            return Ok(());
        }
        it.next();
    }
    it.status()?;
    Ok(())
}

impl Snapshot<'_> {
    /// A node-local record from the `meta` family, as of the snapshot.
    pub fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let cf = self.engine.meta_cf()?;
        Ok(self.snap.get_pinned_cf(&cf, key)?.map(|v| v.to_vec()))
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(cf) = self.engine.family(slot_of(key)?)? else {
            return Ok(None);
        };
        Ok(self.snap.get_pinned_cf(&cf, key)?.map(|v| v.to_vec()))
    }

    pub fn scan(&self, from: &[u8], to: &[u8], f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let Some(cf) = self.engine.family(slot_of(from)?)? else {
            return Ok(());
        };
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(to.to_vec());
        ro.fill_cache(false);
        let it = self.snap.raw_iterator_cf_opt(&cf, ro);
        // SnapshotWithThreadMode yields the same iterator type as the DB.
        visit(it, from, f)
    }
}

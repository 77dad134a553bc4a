//! Collections on disk (hashes and sets): a meta record (type, expiry, member count) and one
//! member record per field or member, so a collection of millions of members is never read
//! whole. Every command reads or writes under the key's lock and commits its own batch (meta
//! and members together, atomically).

use std::collections::{BTreeMap, HashSet};

use super::encoding::{
    collection_ranges, encode_entry, expiry_key, field_expiry_key, field_ttl_key, field_ttl_range,
    member_key, member_prefix, member_range, meta_key,
};
use super::overlay::Reader;
use super::{is_live, now_ms, DbSlot, Entry, Pending, Result, Value};
use crate::storage::Batch;

/// The key holds another type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrongType;

/// Which collection a member-record key holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Hash,
    Set,
}

impl Kind {
    fn value(self, n: u64, volatile: u64) -> Value {
        match self {
            Kind::Hash => Value::Hash(n, volatile),
            Kind::Set => Value::Set(n),
        }
    }
    pub fn of(v: &Value) -> Option<(Kind, u64)> {
        match v {
            Value::Hash(n, _) => Some((Kind::Hash, *n)),
            Value::Set(n) => Some((Kind::Set, *n)),
            Value::Str(_)
            | Value::Chunked(_)
            | Value::List { .. }
            | Value::ZSet(_)
            | Value::Stream(_) => None,
        }
    }
}

/// How many fields of a stored hash have a TTL.
fn volatile_of(v: &Value) -> u64 {
    match v {
        Value::Hash(_, n) => *n,
        _ => 0,
    }
}

/// Up to this many fields with a TTL, a scan reads all their TTL records first.
const HIDDEN_READ_AHEAD: u64 = 1024;

/// A hash as stored (committed state), read-only. Fields whose TTL has passed are hidden
/// (Valkey never shows them) but still counted in `len` until the active cycle reclaims them.
pub struct HashView<'a> {
    src: Reader<'a>,
    slot: DbSlot,
    key: &'a [u8],
    pub len: u64,
    /// Fields with a TTL record.
    pub volatile: u64,
    pub expire_at: Option<i64>,
    now: i64,
}

impl HashView<'_> {
    /// The field's TTL record (unix ms), passed or not.
    pub fn ttl(&self, field: &[u8]) -> Result<Option<i64>> {
        if self.volatile == 0 {
            return Ok(None);
        }
        Ok(self
            .src
            .get(&field_ttl_key(self.slot, self.key, field))?
            .map(|v| decode_ttl(&v)))
    }

    fn expired(&self, ttl: Option<i64>) -> bool {
        ttl.is_some_and(|t| t <= self.now)
    }

    /// The field's value unless it is missing or its TTL has passed.
    pub fn get(&self, field: &[u8]) -> Result<Option<Vec<u8>>> {
        let v = self.src.get(&member_key(self.slot, self.key, field))?;
        if v.is_some() && self.expired(self.ttl(field)?) {
            return Ok(None);
        }
        Ok(v)
    }

    /// Every field with a TTL and its expiry, in field order.
    pub fn ttls(&self) -> Result<Vec<(Vec<u8>, i64)>> {
        let mut out = Vec::new();
        if self.volatile == 0 {
            return Ok(out);
        }
        let (from, to) = field_ttl_range(self.slot, self.key);
        let n = from.len();
        self.src.scan(&from, &to, false, |k, v| {
            out.push((k[n..].to_vec(), decode_ttl(v)));
            true
        })?;
        Ok(out)
    }

    /// Fields whose TTL has passed but that are not reclaimed yet.
    pub fn hidden(&self) -> Result<HashSet<Vec<u8>>> {
        Ok(self
            .ttls()?
            .into_iter()
            .filter(|(_, t)| self.expired(Some(*t)))
            .map(|(f, _)| f)
            .collect())
    }

    /// Fields a read can see.
    pub fn live_len(&self) -> Result<u64> {
        Ok(self.len.saturating_sub(self.hidden()?.len() as u64))
    }

    /// Visits live fields in byte order starting at `from` (inclusive) until `f` returns false.
    pub fn scan_from(&self, from: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        // Few TTLs: read them all first. Many: look each visited field's up, so a short page
        // (HSCAN COUNT 10) does not read a million TTL records.
        let few = self.volatile <= HIDDEN_READ_AHEAD;
        let hidden = if few { self.hidden()? } else { HashSet::new() };
        let prefix = member_prefix(self.slot, self.key);
        let (_, end) = member_range(self.slot, self.key);
        let mut start = prefix.clone();
        start.extend_from_slice(from);
        let n = prefix.len();
        let mut failed = None;
        self.src.scan(&start, &end, false, |k, v| {
            let field = &k[n..];
            let passed = if few {
                hidden.contains(field)
            } else {
                match self.ttl(field) {
                    Ok(t) => self.expired(t),
                    Err(e) => {
                        failed = Some(e);
                        return false;
                    }
                }
            };
            passed || f(field, v)
        })?;
        failed.map_or(Ok(()), Err)
    }

    pub fn scan(&self, f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        self.scan_from(&[], f)
    }
}

pub(super) fn decode_ttl(v: &[u8]) -> i64 {
    i64::from_be_bytes(v.get(..8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]))
}

/// A hash being changed; [`Keyspace::hash_write`] commits it. `len` and `volatile` count
/// stored fields (a passed one included) as the meta record will.
pub struct HashTxn<'a> {
    pub(super) view: HashView<'a>,
    pub(super) existed: bool,
    pub(super) changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// A field's new TTL, or None: its TTL record goes.
    pub(super) ttl_changes: BTreeMap<Vec<u8>, Option<i64>>,
    pub(super) len: u64,
    pub(super) volatile: u64,
    /// Passed fields this transaction removed or replaced (Valkey's `hexpired`).
    pub expired_fields: u64,
    /// Field expiry index entries to drop (reclaimed or stale).
    pub(super) index_drops: Vec<Vec<u8>>,
}

impl HashTxn<'_> {
    /// The stored collection, while this transaction has changed nothing.
    pub fn view(&self) -> Option<&HashView<'_>> {
        (self.existed && self.changes.is_empty() && self.ttl_changes.is_empty())
            .then_some(&self.view)
    }
    pub fn exists(&self) -> bool {
        self.len > 0
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn now(&self) -> i64 {
        self.view.now
    }
    /// The field as stored or as changed here, passed TTL or not.
    pub(super) fn stored(&self, field: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.changes.get(field) {
            Some(v) => Ok(v.clone()),
            None if self.existed => {
                self.view
                    .src
                    .get(&member_key(self.view.slot, self.key(), field))
            }
            None => Ok(None),
        }
    }
    fn key(&self) -> &[u8] {
        self.view.key
    }
    /// The field's TTL as stored or as changed here.
    pub(super) fn stored_ttl(&self, field: &[u8]) -> Result<Option<i64>> {
        match self.ttl_changes.get(field) {
            Some(t) => Ok(*t),
            None if self.existed && self.volatile > 0 => self.view.ttl(field),
            None => Ok(None),
        }
    }
    /// The field's value unless it is missing or its TTL has passed.
    pub fn get(&self, field: &[u8]) -> Result<Option<Vec<u8>>> {
        let v = self.stored(field)?;
        if v.is_some() && self.view.expired(self.stored_ttl(field)?) {
            return Ok(None);
        }
        Ok(v)
    }
    /// Removes the field's record and TTL whatever its state; true if it was stored.
    pub(super) fn remove(&mut self, field: &[u8]) -> Result<bool> {
        if self.stored(field)?.is_none() {
            return Ok(false);
        }
        if self.stored_ttl(field)?.is_some() {
            self.volatile -= 1;
            self.ttl_changes.insert(field.to_vec(), None);
        }
        self.len -= 1;
        self.changes.insert(field.to_vec(), None);
        Ok(true)
    }
    /// Sets `field` with no TTL (HSET drops one); true if it is new. A passed field it
    /// replaces counts as new, as in Valkey. One read of the field (two with TTLs about).
    pub fn set(&mut self, field: &[u8], value: Vec<u8>) -> Result<bool> {
        let stored = self.stored(field)?.is_some();
        let ttl = if stored {
            self.stored_ttl(field)?
        } else {
            None
        };
        if !stored {
            self.len += 1;
        }
        if ttl.is_some() {
            self.volatile -= 1;
            self.ttl_changes.insert(field.to_vec(), None);
        }
        self.changes.insert(field.to_vec(), Some(value));
        Ok(!stored || self.view.expired(ttl))
    }
    /// Sets `field` keeping a live field's TTL (HINCRBY); true if it is new.
    pub fn set_keep_ttl(&mut self, field: &[u8], value: Vec<u8>) -> Result<bool> {
        if self.get(field)?.is_none() {
            return self.set(field, value);
        }
        self.changes.insert(field.to_vec(), Some(value));
        Ok(false)
    }
    /// Deletes a live `field`; true if there was one (a passed field stays, as in Valkey).
    pub fn del(&mut self, field: &[u8]) -> Result<bool> {
        if self.stored(field)?.is_none() {
            return Ok(false);
        }
        let ttl = self.stored_ttl(field)?;
        if self.view.expired(ttl) {
            return Ok(false);
        }
        if ttl.is_some() {
            self.volatile -= 1;
            self.ttl_changes.insert(field.to_vec(), None);
        }
        self.len -= 1;
        self.changes.insert(field.to_vec(), None);
        Ok(true)
    }
}

impl Pending<'_> {
    pub fn hash_read<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<&HashView>) -> Result<R>,
    ) -> Result<std::result::Result<R, WrongType>> {
        self.coll_read(key, Kind::Hash, f)
    }

    pub fn hash_write<R>(
        &mut self,
        key: &[u8],
        f: impl FnOnce(&mut HashTxn) -> Result<R>,
    ) -> Result<std::result::Result<R, WrongType>> {
        self.coll_write(key, Kind::Hash, f)
    }

    /// Runs `f` on the live collection of `kind` at `key` (None when there is none).
    pub fn coll_read<R>(
        &self,
        key: &[u8],
        kind: Kind,
        f: impl FnOnce(Option<&HashView>) -> Result<R>,
    ) -> Result<std::result::Result<R, WrongType>> {
        // Read as stored: the view borrows the scope, so an expired key is skipped here and
        // deleted by the next write or plain read of it.
        let now = now_ms();
        let e = self.read_at(self.at(key), key)?.filter(|e| is_live(e, now));
        match e.as_ref().map(|e| (Kind::of(&e.value), e.expire_at)) {
            None => Ok(Ok(f(None)?)),
            Some((Some((k, len)), expire_at)) if k == kind => {
                let v = HashView {
                    src: self.reader(),
                    slot: self.at(key),
                    key,
                    len,
                    volatile: e.as_ref().map_or(0, |e| volatile_of(&e.value)),
                    expire_at,
                    now,
                };
                Ok(Ok(f(Some(&v))?))
            }
            Some(_) => Ok(Err(WrongType)),
        }
    }

    /// Runs `f` on the collection of `kind` at `key` (empty when there is none) under the
    /// key's lock and commits what it changed. The caller holds no key lock (its write scope
    /// is committed).
    pub fn coll_write<R>(
        &mut self,
        key: &[u8],
        kind: Kind,
        f: impl FnOnce(&mut HashTxn) -> Result<R>,
    ) -> Result<std::result::Result<R, WrongType>> {
        self.acquire(&[key])?;
        let slot = self.at(key);
        let stored = self.read_physical(key)?;
        let now = now_ms();
        let mut batch = Batch::new();
        let (existed, len, volatile, expire_at) = match &stored {
            Some(e) if !is_live(e, now) => {
                // An expired key of any type is gone: clear it first.
                batch.delete(meta_key(slot, key));
                if let Some(at) = e.expire_at {
                    batch.delete(expiry_key(slot, at, key));
                }
                for (a, b) in collection_ranges(slot, key, &e.value) {
                    batch.delete_range(a, b);
                }
                batch.count(slot, -1);
                (false, 0, 0, None)
            }
            Some(e) => match Kind::of(&e.value) {
                Some((k, n)) if k == kind => (true, n, volatile_of(&e.value), e.expire_at),
                _ => return Ok(Err(WrongType)),
            },
            None => (false, 0, 0, None),
        };
        let mut txn = HashTxn {
            view: HashView {
                src: self.reader(),
                slot,
                key,
                len,
                volatile,
                expire_at,
                now,
            },
            existed,
            changes: BTreeMap::new(),
            ttl_changes: BTreeMap::new(),
            len,
            volatile,
            expired_fields: 0,
            index_drops: Vec::new(),
        };
        let r = f(&mut txn)?;
        for k in txn.index_drops.drain(..) {
            batch.delete(k);
        }
        if txn.changes.is_empty() && txn.ttl_changes.is_empty() {
            if !batch.is_empty() {
                self.push(batch)?;
            }
            return Ok(Ok(r));
        }
        for (field, v) in &txn.changes {
            match v {
                Some(v) => batch.put(member_key(slot, key, field), v.clone()),
                None => batch.delete(member_key(slot, key, field)),
            }
        }
        // A dropped TTL leaves its index entry: the cycle finds it stale when it is due.
        for (field, t) in &txn.ttl_changes {
            match t {
                Some(t) => {
                    batch.put(field_ttl_key(slot, key, field), t.to_be_bytes().to_vec());
                    batch.put(field_expiry_key(slot, *t, key, field), Vec::new());
                }
                None => batch.delete(field_ttl_key(slot, key, field)),
            }
        }
        if txn.len == 0 {
            if existed {
                batch.delete(meta_key(slot, key));
                if let Some(at) = expire_at {
                    batch.delete(expiry_key(slot, at, key));
                }
                batch.count(slot, -1);
            }
        } else {
            let e = Entry {
                value: kind.value(txn.len, txn.volatile),
                expire_at,
            };
            batch.put(meta_key(slot, key), encode_entry(&e));
            if !existed {
                batch.count(slot, 1);
            }
        }
        self.push(batch)?;
        Ok(Ok(r))
    }

    /// Every (member, value) of the collection of `kind` at `key`, for DUMP/MIGRATE (whole-value
    /// operations, as in Valkey).
    pub fn members(&self, key: &[u8], kind: Kind) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let _ = self.coll_read(key, kind, |h| {
            if let Some(h) = h {
                h.scan(|f, v| {
                    out.push((f.to_vec(), v.to_vec()));
                    true
                })?;
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// What [`Keyspace::rename_collection`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Renamed {
    NoSuchKey,
    /// RENAMENX found the destination.
    Exists,
    Done,
}

pub(super) fn stage_delete_any(batch: &mut Batch, slot: DbSlot, key: &[u8], e: &Entry) {
    batch.delete(meta_key(slot, key));
    if let Some(at) = e.expire_at {
        batch.delete(expiry_key(slot, at, key));
    }
    for (a, b) in collection_ranges(slot, key, &e.value) {
        batch.delete_range(a, b);
    }
    batch.count(slot, -1);
}

#[allow(clippy::too_many_arguments)]
fn stage_coll(
    batch: &mut Batch,
    slot: DbSlot,
    key: &[u8],
    kind: Kind,
    fields: &BTreeMap<Vec<u8>, Vec<u8>>,
    ttls: &[(Vec<u8>, i64)],
    expire_at: Option<i64>,
) {
    for (f, v) in fields {
        batch.put(member_key(slot, key, f), v.clone());
    }
    for (f, t) in ttls {
        batch.put(field_ttl_key(slot, key, f), t.to_be_bytes().to_vec());
        batch.put(field_expiry_key(slot, *t, key, f), Vec::new());
    }
    let e = Entry {
        value: kind.value(fields.len() as u64, ttls.len() as u64),
        expire_at,
    };
    batch.put(meta_key(slot, key), encode_entry(&e));
    if let Some(at) = expire_at {
        batch.put(expiry_key(slot, at, key), Vec::new());
    }
    batch.count(slot, 1);
}

impl Pending<'_> {
    /// Writes a whole hash or set at `key` (RESTORE): with `only_if_absent`, a live key is left
    /// alone and false returned. An already expired `expire_at` only removes what was there.
    /// `ttls` are field TTLs (of fields in `fields`; passed ones are kept, as Valkey loads
    /// them, for the active cycle).
    #[allow(clippy::too_many_arguments)]
    pub fn coll_put_all(
        &mut self,
        key: &[u8],
        kind: Kind,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        ttls: &[(Vec<u8>, i64)],
        expire_at: Option<i64>,
        only_if_absent: bool,
    ) -> Result<bool> {
        self.acquire(&[key])?;
        let slot = self.at(key);
        let stored = self.read_physical(key)?;
        if only_if_absent && stored.as_ref().is_some_and(|e| is_live(e, now_ms())) {
            return Ok(false);
        }
        let mut batch = Batch::new();
        if let Some(e) = &stored {
            stage_delete_any(&mut batch, slot, key, e);
        }
        let fields: BTreeMap<Vec<u8>, Vec<u8>> = fields.into_iter().collect();
        if !fields.is_empty() && expire_at.is_none_or(|at| at > now_ms()) {
            stage_coll(&mut batch, slot, key, kind, &fields, ttls, expire_at);
        }
        if !batch.is_empty() {
            self.push(batch)?;
        }
        Ok(true)
    }

    /// RENAME / RENAMENX of a key holding a collection, atomically (both keys locked, one
    /// batch); with `keep_source` it is COPY (the source stays).
    pub fn rename_collection(
        &mut self,
        src: &[u8],
        dst: &[u8],
        nx: bool,
        keep_source: bool,
    ) -> Result<Renamed> {
        self.transfer(src, None, dst, nx, keep_source)
    }

    /// Moves or copies the key at `src` (any type) to `dst` in logical database `db` (the
    /// selected one when `None`): MOVE, COPY … DB, RENAME of a collection. With `nx`, an
    /// existing destination stops it.
    pub fn transfer(
        &mut self,
        src: &[u8],
        db: Option<u8>,
        dst: &[u8],
        nx: bool,
        keep_source: bool,
    ) -> Result<Renamed> {
        self.acquire(&[src, dst])?;
        let now = now_ms();
        let Some(e) = self.read_physical(src)?.filter(|e| is_live(e, now)) else {
            return Ok(Renamed::NoSuchKey);
        };
        let ss = self.at(src);
        let ds = match db {
            Some(db) => DbSlot::of(self.keyspace().physical(db), dst),
            None => self.at(dst),
        };
        // An expired destination expires now (Valkey's lookup order).
        let old_dst = if ds.db == self.db() {
            self.read_physical(dst)?
        } else {
            self.read_physical_in(ds.db, dst)?
        };
        if nx && old_dst.as_ref().is_some_and(|d| is_live(d, now)) {
            return Ok(Renamed::Exists);
        }
        // Every record range of the collection (members, and a sorted set's score index)
        // moves verbatim under the destination's prefix; then the meta record as it was.
        let mut moved: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut moved_ttls: Vec<(Vec<u8>, i64)> = Vec::new();
        let dst_ranges = collection_ranges(ds, dst, &e.value);
        let (ttl_from, _) = field_ttl_range(ss, src);
        for ((from, to), (dfrom, _)) in collection_ranges(ss, src, &e.value)
            .into_iter()
            .zip(dst_ranges)
        {
            let n = from.len();
            let ttls = from == ttl_from;
            self.reader().scan(&from, &to, false, |k, v| {
                let mut nk = dfrom.clone();
                nk.extend_from_slice(&k[n..]);
                moved.push((nk, v.to_vec()));
                if ttls {
                    moved_ttls.push(super::hash_ttl::ttl_record(k, n, v));
                }
                true
            })?;
        }
        for k in super::hash_ttl::index_entries(&moved_ttls, ds, dst) {
            moved.push((k, Vec::new()));
        }
        let mut batch = Batch::new();
        if let Some(d) = &old_dst {
            stage_delete_any(&mut batch, ds, dst, d);
        }
        if !keep_source {
            stage_delete_any(&mut batch, ss, src, &e);
        }
        for (k, v) in moved {
            batch.put(k, v);
        }
        // A long string an older build kept inline has no chunks to move: write them.
        if let Value::Str(b) = &e.value {
            if super::chunked::is_chunked(&e.value) {
                super::chunked::stage_chunks(&mut batch, ds, dst, b);
            }
        }
        batch.put(meta_key(ds, dst), super::chunked::encode_meta(&e));
        if let Some(at) = e.expire_at {
            batch.put(expiry_key(ds, at, dst), Vec::new());
        }
        batch.count(ds, 1);
        self.push(batch)?;
        Ok(Renamed::Done)
    }
}

impl Pending<'_> {
    /// SMOVE: moves `member` from the set at `src` to the set at `dst` in one batch under both
    /// keys' locks. Ok(false) when `src` has no such member.
    pub fn set_move(
        &mut self,
        src: &[u8],
        dst: &[u8],
        member: &[u8],
    ) -> Result<std::result::Result<bool, WrongType>> {
        self.acquire(&[src, dst])?;
        let now = now_ms();
        let (s_stored, d_stored) = (self.read_physical(src)?, self.read_physical(dst)?);
        let live = |e: &Option<Entry>| e.clone().filter(|e| is_live(e, now));
        let (s, d) = (live(&s_stored), live(&d_stored));
        // Valkey's order: a missing source answers 0 before any type check.
        let Some(se) = s else { return Ok(Ok(false)) };
        let is_set =
            |e: &Option<Entry>| e.as_ref().is_none_or(|e| matches!(e.value, Value::Set(_)));
        if !is_set(&Some(se.clone())) || !is_set(&d) {
            return Ok(Err(WrongType));
        }
        let (ss, ds) = (self.at(src), self.at(dst));
        if self.reader().get(&member_key(ss, src, member))?.is_none() {
            return Ok(Ok(false));
        }
        if src == dst {
            return Ok(Ok(true));
        }
        let mut batch = Batch::new();
        let Value::Set(slen) = se.value else {
            return Ok(Err(WrongType));
        };
        batch.delete(member_key(ss, src, member));
        if slen <= 1 {
            stage_delete_any(&mut batch, ss, src, &se);
        } else {
            batch.put(
                meta_key(ss, src),
                encode_entry(&Entry {
                    value: Value::Set(slen - 1),
                    expire_at: se.expire_at,
                }),
            );
        }
        match d {
            Some(de) => {
                let Value::Set(dlen) = de.value else {
                    return Ok(Err(WrongType));
                };
                if self.reader().get(&member_key(ds, dst, member))?.is_none() {
                    batch.put(member_key(ds, dst, member), Vec::new());
                    batch.put(
                        meta_key(ds, dst),
                        encode_entry(&Entry {
                            value: Value::Set(dlen + 1),
                            expire_at: de.expire_at,
                        }),
                    );
                }
            }
            None => {
                if let Some(old) = &d_stored {
                    stage_delete_any(&mut batch, ds, dst, old);
                }
                let mut m = BTreeMap::new();
                m.insert(member.to_vec(), Vec::new());
                stage_coll(&mut batch, ds, dst, Kind::Set, &m, &[], None);
            }
        }
        self.push(batch)?;
        Ok(Ok(true))
    }
}

impl Pending<'_> {
    /// Deletes `key` if its DUMP payload is still `payload` (MIGRATE of a collection: a member
    /// changed after the payload was sent keeps the key here). True if gone.
    pub fn delete_if_dump_equals(&mut self, key: &[u8], payload: &[u8]) -> Result<bool> {
        self.acquire(&[key])?;
        let Some(e) = self.read_physical(key)?.filter(|e| is_live(e, now_ms())) else {
            return Ok(true);
        };
        if self.dump_payload(key, &e)? != payload {
            return Ok(false);
        }
        let mut batch = Batch::new();
        stage_delete_any(&mut batch, self.at(key), key, &e);
        self.push(batch)?;
        Ok(true)
    }
}

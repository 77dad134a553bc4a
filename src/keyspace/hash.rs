//! Hashes on disk: a meta record (type, expiry, field count) and one member record per field,
//! so a hash of millions of fields is never read whole. Every hash command reads or writes
//! under the key's lock and commits its own batch (meta and members together, atomically).

use std::collections::BTreeMap;

use super::encoding::{
    decode_entry, encode_entry, expiry_key, member_key, member_prefix, member_range, meta_key,
};
use super::{is_live, key_slot, now_ms, Entry, Keyspace, Result, Value};
use crate::storage::Batch;

/// The key holds another type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrongType;

/// A hash as stored (committed state), read-only.
pub struct HashView<'a> {
    ks: &'a Keyspace,
    slot: u16,
    key: &'a [u8],
    pub len: u64,
    pub expire_at: Option<i64>,
}

impl HashView<'_> {
    pub fn get(&self, field: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.ks.engine.get(&member_key(self.slot, self.key, field))?)
    }

    /// Visits fields in byte order starting at `from` (inclusive) until `f` returns false.
    pub fn scan_from(&self, from: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let prefix = member_prefix(self.slot, self.key);
        let (_, end) = member_range(self.slot, self.key);
        let mut start = prefix.clone();
        start.extend_from_slice(from);
        let n = prefix.len();
        self.ks.engine.scan(&start, &end, |k, v| f(&k[n..], v))?;
        Ok(())
    }

    pub fn scan(&self, f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        self.scan_from(&[], f)
    }
}

/// A hash being changed; [`Keyspace::hash_write`] commits it.
pub struct HashTxn<'a> {
    view: HashView<'a>,
    existed: bool,
    changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    len: u64,
}

impl HashTxn<'_> {
    pub fn exists(&self) -> bool {
        self.len > 0
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn get(&self, field: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.changes.get(field) {
            Some(v) => Ok(v.clone()),
            None if self.existed => self.view.get(field),
            None => Ok(None),
        }
    }
    /// Sets `field`; true if it is new.
    pub fn set(&mut self, field: &[u8], value: Vec<u8>) -> Result<bool> {
        let new = self.get(field)?.is_none();
        if new {
            self.len += 1;
        }
        self.changes.insert(field.to_vec(), Some(value));
        Ok(new)
    }
    /// Deletes `field`; true if it existed.
    pub fn del(&mut self, field: &[u8]) -> Result<bool> {
        let had = self.get(field)?.is_some();
        if had {
            self.len -= 1;
            self.changes.insert(field.to_vec(), None);
        }
        Ok(had)
    }
}

impl Keyspace {
    fn hash_meta(&self, key: &[u8]) -> Result<Option<Entry>> {
        let mk = meta_key(key_slot(key), key);
        Ok(self
            .engine
            .get_with(&mk, |v| v.map(decode_entry).transpose())??)
    }

    /// Runs `f` on the live hash at `key` (None when there is none).
    pub fn hash_read<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<&HashView>) -> Result<R>,
    ) -> Result<std::result::Result<R, WrongType>> {
        let e = self.hash_meta(key)?.filter(|e| is_live(e, now_ms()));
        match e {
            None => Ok(Ok(f(None)?)),
            Some(Entry {
                value: Value::Hash(len),
                expire_at,
            }) => {
                let v = HashView {
                    ks: self,
                    slot: key_slot(key),
                    key,
                    len,
                    expire_at,
                };
                Ok(Ok(f(Some(&v))?))
            }
            Some(_) => Ok(Err(WrongType)),
        }
    }

    /// Runs `f` on the hash at `key` (empty when there is none) under the key's lock and
    /// commits what it changed. The caller holds no key lock (its write scope is committed).
    pub fn hash_write<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(&mut HashTxn) -> Result<R>,
    ) -> Result<std::result::Result<R, WrongType>> {
        let _g = self.locks.lock(self.locks.stripe(key));
        let slot = key_slot(key);
        let stored = self.hash_meta(key)?;
        let now = now_ms();
        let mut batch = Batch::new();
        let (existed, len, expire_at) = match &stored {
            Some(e) if !is_live(e, now) => {
                // An expired key of any type is gone: clear it first.
                batch.delete(meta_key(slot, key));
                if let Some(at) = e.expire_at {
                    batch.delete(expiry_key(slot, at, key));
                }
                if e.value.is_collection() {
                    let (a, b) = member_range(slot, key);
                    batch.delete_range(a, b);
                }
                batch.count(slot, -1);
                (false, 0, None)
            }
            Some(Entry {
                value: Value::Hash(n),
                expire_at,
            }) => (true, *n, *expire_at),
            Some(_) => return Ok(Err(WrongType)),
            None => (false, 0, None),
        };
        let mut txn = HashTxn {
            view: HashView {
                ks: self,
                slot,
                key,
                len,
                expire_at,
            },
            existed,
            changes: BTreeMap::new(),
            len,
        };
        let r = f(&mut txn)?;
        if txn.changes.is_empty() {
            if !batch.is_empty() {
                self.commit(batch)?;
            }
            return Ok(Ok(r));
        }
        for (field, v) in &txn.changes {
            match v {
                Some(v) => batch.put(member_key(slot, key, field), v.clone()),
                None => batch.delete(member_key(slot, key, field)),
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
                value: Value::Hash(txn.len),
                expire_at,
            };
            batch.put(meta_key(slot, key), encode_entry(&e));
            if !existed {
                batch.count(slot, 1);
            }
        }
        self.commit(batch)?;
        Ok(Ok(r))
    }

    /// Every (field, value) of the hash at `key`, for DUMP/MIGRATE/RENAME (whole-value
    /// operations, as in Valkey).
    pub fn hash_fields(&self, key: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let _ = self.hash_read(key, |h| {
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

/// What [`Keyspace::hash_rename`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Renamed {
    NoSuchKey,
    /// RENAMENX found the destination.
    Exists,
    Done,
}

impl Keyspace {
    fn stage_delete_any(&self, batch: &mut Batch, slot: u16, key: &[u8], e: &Entry) {
        batch.delete(meta_key(slot, key));
        if let Some(at) = e.expire_at {
            batch.delete(expiry_key(slot, at, key));
        }
        if e.value.is_collection() {
            let (a, b) = member_range(slot, key);
            batch.delete_range(a, b);
        }
        batch.count(slot, -1);
    }

    fn stage_hash(
        &self,
        batch: &mut Batch,
        slot: u16,
        key: &[u8],
        fields: &BTreeMap<Vec<u8>, Vec<u8>>,
        expire_at: Option<i64>,
    ) {
        for (f, v) in fields {
            batch.put(member_key(slot, key, f), v.clone());
        }
        let e = Entry {
            value: Value::Hash(fields.len() as u64),
            expire_at,
        };
        batch.put(meta_key(slot, key), encode_entry(&e));
        if let Some(at) = expire_at {
            batch.put(expiry_key(slot, at, key), Vec::new());
        }
        batch.count(slot, 1);
    }

    /// Writes a whole hash at `key` (RESTORE): with `only_if_absent`, a live key is left alone
    /// and false returned. An already expired `expire_at` only removes what was there.
    pub fn hash_put_all(
        &self,
        key: &[u8],
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        expire_at: Option<i64>,
        only_if_absent: bool,
    ) -> Result<bool> {
        let _g = self.locks.lock(self.locks.stripe(key));
        let slot = key_slot(key);
        let stored = self.hash_meta(key)?;
        if only_if_absent && stored.as_ref().is_some_and(|e| is_live(e, now_ms())) {
            return Ok(false);
        }
        let mut batch = Batch::new();
        if let Some(e) = &stored {
            self.stage_delete_any(&mut batch, slot, key, e);
        }
        let fields: BTreeMap<Vec<u8>, Vec<u8>> = fields.into_iter().collect();
        if !fields.is_empty() && expire_at.is_none_or(|at| at > now_ms()) {
            self.stage_hash(&mut batch, slot, key, &fields, expire_at);
        }
        if !batch.is_empty() {
            self.commit(batch)?;
        }
        Ok(true)
    }

    /// RENAME / RENAMENX of a key holding a hash, atomically (both keys locked, one batch).
    pub fn hash_rename(&self, src: &[u8], dst: &[u8], nx: bool) -> Result<Renamed> {
        let (a, b) = (self.locks.stripe(src), self.locks.stripe(dst));
        let _g1 = self.locks.lock(a.min(b));
        let _g2 = (a != b).then(|| self.locks.lock(a.max(b)));
        let now = now_ms();
        let Some(e) = self.hash_meta(src)?.filter(|e| is_live(e, now)) else {
            return Ok(Renamed::NoSuchKey);
        };
        let old_dst = self.hash_meta(dst)?;
        if nx && old_dst.as_ref().is_some_and(|d| is_live(d, now)) {
            return Ok(Renamed::Exists);
        }
        let (ss, ds) = (key_slot(src), key_slot(dst));
        let mut fields = BTreeMap::new();
        let view = HashView {
            ks: self,
            slot: ss,
            key: src,
            len: 0,
            expire_at: e.expire_at,
        };
        view.scan(|f, v| {
            fields.insert(f.to_vec(), v.to_vec());
            true
        })?;
        let mut batch = Batch::new();
        if let Some(d) = &old_dst {
            self.stage_delete_any(&mut batch, ds, dst, d);
        }
        self.stage_delete_any(&mut batch, ss, src, &e);
        self.stage_hash(&mut batch, ds, dst, &fields, e.expire_at);
        self.commit(batch)?;
        Ok(Renamed::Done)
    }
}

//! Hash field TTLs (Valkey 9's hash field expiration): a field with a TTL has a TTL record
//! beside its member record and an entry in the per-slot field expiry index; the hash's meta
//! record counts such fields, so a hash without any pays nothing on reads. A passed field is
//! hidden from reads at once and reclaimed by the active cycle (Valkey does no lazy deletion:
//! HLEN counts it until then).
//!
//! Must not: decide replies or notifications (the hash commands do); index entries are never
//! trusted without the TTL record they point at.

use std::sync::atomic::Ordering;

use super::encoding::{parse_field_expiry_key, KIND_FIELD_EXPIRY};
use super::hash::{decode_ttl, HashTxn, Kind};
use super::{now_ms, DbSlot, Keyspace, Pending, Result};

/// A hash field as DUMP writes it: name, value and TTL (unix ms).
pub type VolatileField = (Vec<u8>, Vec<u8>, Option<i64>);

/// A due field expiry index entry: its time, key, field and the index key itself.
struct Due {
    at: i64,
    key: Vec<u8>,
    field: Vec<u8>,
    index: Vec<u8>,
}

/// What [`HashTxn::expire`] did to one field (Valkey's HEXPIRE codes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldExpire {
    /// -2: no such field (or it has passed).
    NoField,
    /// 0: the NX/XX/GT/LT condition was not met.
    NotMet,
    /// 1: the TTL was set.
    Set,
    /// 2: the time had passed, so the field was deleted.
    Deleted,
}

impl FieldExpire {
    pub fn code(self) -> i64 {
        match self {
            FieldExpire::NoField => -2,
            FieldExpire::NotMet => 0,
            FieldExpire::Set => 1,
            FieldExpire::Deleted => 2,
        }
    }
}

/// HEXPIRE's conditions.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ExpireIf {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

impl HashTxn<'_> {
    /// The live field's TTL: None if the field is missing or passed, Some(None) if it has no
    /// TTL.
    pub fn ttl(&self, field: &[u8]) -> Result<Option<Option<i64>>> {
        if self.get(field)?.is_none() {
            return Ok(None);
        }
        Ok(Some(self.stored_ttl(field)?))
    }

    /// Sets `field` to `value` with the expiry `at` (or none); with `keep`, a live field keeps
    /// the TTL it has (HSETEX KEEPTTL). True if the field is new.
    pub fn set_with_ttl(
        &mut self,
        field: &[u8],
        value: Vec<u8>,
        at: Option<i64>,
        keep: bool,
    ) -> Result<bool> {
        if keep {
            return self.set_keep_ttl(field, value);
        }
        let new = self.set(field, value)?;
        if let Some(at) = at {
            self.set_ttl(field, at)?;
        }
        Ok(new)
    }

    /// Gives a live field the expiry `at` (unix ms), unconditionally.
    pub fn set_ttl(&mut self, field: &[u8], at: i64) -> Result<()> {
        if self.stored_ttl(field)?.is_none() {
            self.volatile += 1;
        }
        self.ttl_changes.insert(field.to_vec(), Some(at));
        Ok(())
    }

    /// HEXPIRE of one field with a time still ahead (a passed time deletes instead, whatever
    /// the condition: see [`Self::expire_now`]). Valkey's checks, in its order.
    pub fn expire(&mut self, field: &[u8], at: i64, cond: ExpireIf) -> Result<FieldExpire> {
        let Some(cur) = self.ttl(field)? else {
            return Ok(FieldExpire::NoField);
        };
        let failed = (cond.nx && cur.is_some())
            || (cond.xx && cur.is_none())
            || (cond.gt && cur.is_none_or(|c| at <= c))
            || (cond.lt && cur.is_some_and(|c| at >= c));
        if failed {
            return Ok(FieldExpire::NotMet);
        }
        self.set_ttl(field, at)?;
        Ok(FieldExpire::Set)
    }

    /// Deletes a live field because the time given for it has passed (HEXPIRE, HGETEX,
    /// HSETEX); true if there was one.
    pub fn expire_now(&mut self, field: &[u8]) -> Result<bool> {
        if self.get(field)?.is_none() {
            return Ok(false);
        }
        self.expired_fields += 1;
        self.remove(field)
    }

    /// HPERSIST of one field: 1 removed, -1 no TTL, -2 no such field.
    pub fn persist(&mut self, field: &[u8]) -> Result<i64> {
        match self.ttl(field)? {
            None => Ok(-2),
            Some(None) => Ok(-1),
            Some(Some(_)) => {
                self.volatile -= 1;
                self.ttl_changes.insert(field.to_vec(), None);
                Ok(1)
            }
        }
    }

    /// The active cycle's step: removes `field` if its TTL is still `due` (and has passed);
    /// drops the index entry `index` either way. True if the field went.
    fn reclaim(&mut self, field: &[u8], due: i64, index: &[u8]) -> Result<bool> {
        if self.stored_ttl(field)? != Some(due) {
            self.index_drops.push(index.to_vec());
            return Ok(false);
        }
        // Not due by this clock (it stepped back since the scan): the entry stays.
        if due > self.now() {
            return Ok(false);
        }
        self.index_drops.push(index.to_vec());
        self.remove(field)
    }
}

impl Pending<'_> {
    /// Every (field, value, TTL) of the hash at `key`, passed fields included (DUMP keeps
    /// them, as Valkey does).
    pub fn hash_members_with_ttls(&self, key: &[u8]) -> Result<Vec<VolatileField>> {
        let at = self.at(key);
        let mut out = Vec::new();
        let _ = self.coll_read(key, Kind::Hash, |h| {
            let Some(h) = h else { return Ok(()) };
            let ttls: std::collections::HashMap<Vec<u8>, i64> = h.ttls()?.into_iter().collect();
            let (from, to) = super::encoding::member_range(at, key);
            let n = from.len();
            self.reader().scan(&from, &to, false, |k, v| {
                let f = &k[n..];
                out.push((f.to_vec(), v.to_vec(), ttls.get(f).copied()));
                true
            })?;
            Ok(())
        })?;
        Ok(out)
    }
}

/// Field expiry index entries of `key`'s TTL records, for a copy of them under `dst` at `ds`
/// (RENAME, MOVE, COPY move TTL records verbatim; the index is keyed by time).
pub(super) fn index_entries(moved_ttls: &[(Vec<u8>, i64)], ds: DbSlot, dst: &[u8]) -> Vec<Vec<u8>> {
    moved_ttls
        .iter()
        .map(|(f, t)| super::encoding::field_expiry_key(ds, *t, dst, f))
        .collect()
}

/// A TTL record's field and expiry, given the record key and the TTL prefix length.
pub(super) fn ttl_record(k: &[u8], prefix_len: usize, v: &[u8]) -> (Vec<u8>, i64) {
    (k[prefix_len..].to_vec(), decode_ttl(v))
}

/// What one pass over a place's field index found.
pub(super) struct FieldPass {
    pub reclaimed: usize,
    /// Entries are left (not due yet, or the budget ran out).
    pub remaining: bool,
}

impl Keyspace {
    /// Reclaims at most `budget` due hash fields of one place: each under its key's lock, the
    /// key deleted with its last field. Announces `hexpired` (and `del`) per key.
    pub(super) fn expire_fields_at(&self, at: DbSlot, budget: usize) -> Result<FieldPass> {
        let now = now_ms();
        let mut due: Vec<Due> = Vec::new();
        let mut remaining = false;
        let from = at.prefix(KIND_FIELD_EXPIRY);
        let to = super::encoding::successor(from.to_vec());
        self.engine
            .scan(&from, &to, |k, _| match parse_field_expiry_key(k) {
                Some((t, key, field)) if t <= now && due.len() < budget => {
                    due.push(Due {
                        at: t,
                        key: key.to_vec(),
                        field: field.to_vec(),
                        index: k.to_vec(),
                    });
                    true
                }
                Some(_) => {
                    remaining = true;
                    false
                }
                None => true,
            })?;
        let mut by_key: std::collections::BTreeMap<Vec<u8>, Vec<Due>> = Default::default();
        for d in due {
            by_key.entry(d.key.clone()).or_default().push(d);
        }
        let mut reclaimed = 0;
        for (key, fields) in by_key {
            let mut p = self.pending();
            p.select_physical(at.db);
            let done = p.hash_write(&key, |h| {
                let mut n = 0;
                for d in &fields {
                    n += h.reclaim(&d.field, d.at, &d.index)? as usize;
                }
                Ok((n, n > 0 && h.is_empty()))
            })?;
            let (gone, emptied) = match done {
                Ok(r) => r,
                // The key holds another type now: its entries are stale.
                Err(_) => {
                    p.drop_records(fields.iter().map(|d| d.index.clone()))?;
                    (0, false)
                }
            };
            p.commit()?;
            if gone > 0 {
                reclaimed += gone;
                self.stats
                    .expired_fields
                    .fetch_add(gone as u64, Ordering::Relaxed);
                if let Some(h) = self.field_expired_hook.get() {
                    h(self.logical(at.db), &key, emptied);
                }
            }
        }
        Ok(FieldPass {
            reclaimed,
            remaining,
        })
    }

    /// Whether `field` of the hash at `key` in `at` still has the TTL `t` (tests).
    #[cfg(test)]
    pub fn field_ttl_is(&self, at: DbSlot, key: &[u8], field: &[u8], t: i64) -> Result<bool> {
        Ok(self
            .engine
            .get(&super::encoding::field_ttl_key(at, key, field))?
            .is_some_and(|v| decode_ttl(&v) == t))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{Keyspace, Value};
    use super::*;
    use crate::storage::Engine;

    fn hash_meta(ks: &Keyspace, key: &[u8]) -> Option<Value> {
        ks.lookup(key).unwrap().map(|e| e.value)
    }

    fn write<R>(ks: &Keyspace, key: &[u8], f: impl FnOnce(&mut HashTxn) -> Result<R>) -> R {
        let mut p = ks.pending();
        let r = p.hash_write(key, f).unwrap().unwrap();
        p.commit().unwrap();
        r
    }

    /// The meta record counts fields with a TTL exactly through set, overwrite, persist,
    /// delete and a passed time, and the active cycle reclaims a passed field, drops stale
    /// index entries and deletes the key with its last field.
    #[test]
    fn volatile_count_and_reclaim() {
        let dir = tempfile::tempdir().unwrap();
        let ks = Keyspace::open(Arc::new(Engine::open_for_test(dir.path())), 16).unwrap();
        let far = now_ms() + 3_600_000;
        write(&ks, b"h", |h| {
            for f in ["a", "b", "c", "d"] {
                h.set(f.as_bytes(), b"v".to_vec())?;
            }
            h.set_ttl(b"a", far)?;
            h.set_ttl(b"b", far)?;
            h.set_ttl(b"b", far + 1)?;
            Ok(())
        });
        assert_eq!(hash_meta(&ks, b"h"), Some(Value::Hash(4, 2)));
        // HSET drops a TTL; HPERSIST and HDEL of a volatile field count down.
        write(&ks, b"h", |h| h.set(b"a", b"w".to_vec()));
        assert_eq!(hash_meta(&ks, b"h"), Some(Value::Hash(4, 1)));
        write(&ks, b"h", |h| h.persist(b"b"));
        assert_eq!(hash_meta(&ks, b"h"), Some(Value::Hash(4, 0)));
        let cond = ExpireIf::default();
        write(&ks, b"h", |h| h.expire(b"c", far, cond));
        write(&ks, b"h", |h| h.del(b"c"));
        assert_eq!(hash_meta(&ks, b"h"), Some(Value::Hash(3, 0)));
        // A passed field: hidden, counted, then reclaimed by the cycle; the index entries of
        // `a`, `b` and `c` (TTLs since dropped) are stale and go when due.
        write(&ks, b"h", |h| h.set_ttl(b"d", now_ms() - 1));
        assert_eq!(hash_meta(&ks, b"h"), Some(Value::Hash(3, 1)));
        assert_eq!(ks.active_expire_cycle(100).unwrap(), 1);
        assert_eq!(hash_meta(&ks, b"h"), Some(Value::Hash(2, 0)));
        let at = DbSlot::of(0, b"h");
        assert!(!ks.field_ttl_is(at, b"h", b"d", 0).unwrap());
        // The last fields passing delete the key.
        write(&ks, b"h", |h| {
            h.set_ttl(b"a", now_ms() - 1)?;
            h.set_ttl(b"b", now_ms() - 1)
        });
        assert_eq!(ks.active_expire_cycle(100).unwrap(), 2);
        assert_eq!(hash_meta(&ks, b"h"), None);
        assert_eq!(ks.dbsize(0), 0);
        // A renamed hash's field passes under its new name (RENAME writes its index entry);
        // the old name's entry is stale.
        write(&ks, b"x", |h| {
            h.set(b"f", b"v".to_vec())?;
            h.set_ttl(b"f", now_ms() + 30)
        });
        let mut p = ks.pending();
        p.transfer(b"x", None, b"y", false, false).unwrap();
        p.commit().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(60));
        // The moved field's own index entry reclaims it under its new name.
        assert_eq!(ks.active_expire_cycle(100).unwrap(), 1);
        assert_eq!(hash_meta(&ks, b"y"), None);
    }
}

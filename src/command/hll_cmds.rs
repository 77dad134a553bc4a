//! HyperLogLog commands (PFADD, PFCOUNT, PFMERGE) over string values in Valkey's own byte
//! format (`rdb::hll`), so an HLL copied between rockslot and Valkey with GET/SET reads the same.
//! Must not: keep HLLs in any other form than the string value.

use bytes::Bytes;

use super::strings::as_str;
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::{Entry, Update, Value};
use crate::rdb::hll::{self, HllError, Merger};
use crate::resp::Reply;

fn hll_error(e: HllError) -> CmdError {
    CmdError::Line(e.to_string())
}

fn sparse_max(ctx: &Ctx) -> usize {
    ctx.node.config.snapshot().hll_sparse_max_bytes as usize
}

fn entry(bytes: Vec<u8>, expire_at: Option<i64>) -> Entry {
    Entry {
        value: Value::Str(Bytes::from(bytes)),
        expire_at,
    }
}

pub fn pfadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let max = sparse_max(ctx);
    let elements = args[2..].iter().map(|e| &e[..]);
    ctx.ks.update(&args[1], |old| {
        let (cur, expire_at) = match &old {
            None => (None, None),
            Some(e) => match as_str(e) {
                Ok(b) => (Some(&b[..]), e.expire_at),
                Err(err) => return (Update::Keep, Err(err)),
            },
        };
        match hll::pfadd(cur, elements, max) {
            Ok(Some(bytes)) => (Update::Put(entry(bytes, expire_at)), Ok(Reply::Int(1))),
            Ok(None) => (Update::Keep, Ok(Reply::Int(0))),
            Err(e) => match e.partial {
                Some(bytes) => (
                    Update::Put(entry(bytes, expire_at)),
                    Err(hll_error(e.error)),
                ),
                None => (Update::Keep, Err(hll_error(e.error))),
            },
        }
    })?
}

pub fn pfcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        let mut merged = Merger::new();
        for key in &args[1..] {
            if let Some(e) = ctx.ks.lookup(key)? {
                merged.add(as_str(&e)?).map_err(hll_error)?;
            }
        }
        return Ok(Reply::Int(merged.count() as i64));
    }
    // One key: Valkey stores the computed count in the header's cache, a change it
    // propagates; a replica only reads.
    let writable = !ctx.ks.keyspace().is_read_only() && !ctx.node.is_replica();
    ctx.ks.update(&args[1], |old| {
        let Some(e) = old else {
            return (Update::Keep, Ok(Reply::Int(0)));
        };
        let mut bytes = match as_str(&e) {
            Ok(b) => b.to_vec(),
            Err(err) => return (Update::Keep, Err(err)),
        };
        if let Err(err) = hll::validate(&bytes) {
            return (Update::Keep, Err(hll_error(err)));
        }
        match hll::count(&mut bytes) {
            Ok((n, true)) if writable => (
                Update::Put(entry(bytes, e.expire_at)),
                Ok(Reply::Int(n as i64)),
            ),
            Ok((n, _)) => (Update::Keep, Ok(Reply::Int(n as i64))),
            Err(err) => (Update::Keep, Err(hll_error(err))),
        }
    })?
}

/// Valkey looks the keys up and merges them one by one, and stops at the first that is
/// no HyperLogLog or is corrupt: the keys after it are not looked at, so an expired one
/// among them stays (and is not announced), while the ones before it are expired.
fn refuse_in_order(ctx: &mut Ctx, keys: &[Bytes]) -> Result<(), CmdError> {
    let mut trial = Merger::new();
    for (i, key) in keys.iter().enumerate() {
        let refused = match ctx.ks.stored_type(key)? {
            Some(("string", true)) => match ctx.ks.stored_string(key)? {
                Some(b) => trial.add(&b).err().map(hll_error),
                None => None,
            },
            Some((_, true)) => Some(CmdError::WrongType),
            _ => None,
        };
        if let Some(err) = refused {
            for earlier in &keys[..=i] {
                ctx.ks.expire_if_needed(earlier)?;
            }
            return Err(err);
        }
    }
    Ok(())
}

pub fn pfmerge(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let max = sparse_max(ctx);
    // Only where it shows (the events of expiries); otherwise the merge below refuses the
    // same keys.
    if ctx.node.notify.flags(&ctx.node.config).any() {
        refuse_in_order(ctx, &args[1..])?;
    }
    let keys: Vec<&[u8]> = args[1..].iter().map(|k| &k[..]).collect();
    ctx.ks.update_many(&keys, |entries| {
        let mut updates: Vec<Update> = entries.iter().map(|_| Update::Keep).collect();
        let mut merged = Merger::new();
        // The destination is the first key: it is merged too, and its type checked first.
        let mut values: Vec<Option<Bytes>> = Vec::with_capacity(entries.len());
        for e in &entries {
            let Some(e) = e else {
                values.push(None);
                continue;
            };
            let b = match as_str(e) {
                Ok(b) => b.clone(),
                Err(err) => return (updates, Err(err)),
            };
            if let Err(err) = merged.add(&b) {
                return (updates, Err(hll_error(err)));
            }
            values.push(Some(b));
        }
        let dest = values.first().cloned().flatten();
        match merged.finish(dest.as_deref(), max) {
            Ok(bytes) => {
                let ttl = entries
                    .first()
                    .and_then(|e| e.as_ref())
                    .and_then(|e| e.expire_at);
                updates[0] = Update::Put(entry(bytes, ttl));
                (updates, Ok(Reply::OK))
            }
            Err(err) => (updates, Err(hll_error(err))),
        }
    })?
}

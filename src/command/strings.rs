//! String commands.

use bytes::{Bytes, BytesMut};

use super::args::{int, is, parse_i64};
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::{now_ms, Entry, Update, Value};
use crate::resp::Reply;

pub(super) fn as_str(e: &Entry) -> Result<&Bytes, CmdError> {
    match &e.value {
        Value::Str(b) => Ok(b),
        #[allow(unreachable_patterns)]
        _ => Err(CmdError::WrongType),
    }
}

fn max_len(ctx: &Ctx) -> usize {
    ctx.node.limits().max_bulk_len as usize
}

fn too_big() -> CmdError {
    CmdError::err("string exceeds maximum allowed size (proto-max-bulk-len)")
}

/// Expiry options shared by SET and GETEX.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Expiry {
    None,
    At(i64),
    Keep,
    Persist,
}

/// Converts a relative or absolute expiry argument to unix ms, with Valkey's range checks.
pub(super) fn expire_at(
    arg: &[u8],
    unit_ms: i64,
    absolute: bool,
    cmd: &str,
) -> Result<i64, CmdError> {
    let v = int(arg)?;
    let invalid = || CmdError::err(format!("invalid expire time in '{cmd}' command"));
    if v <= 0 {
        return Err(invalid());
    }
    let ms = v.checked_mul(unit_ms).ok_or_else(invalid)?;
    if absolute {
        Ok(ms)
    } else {
        ms.checked_add(now_ms()).ok_or_else(invalid)
    }
}

/// Parses `EX|PX|EXAT|PXAT n` at `args[i]`; returns the expiry and how many args it used.
fn parse_expiry_opt(args: &[Bytes], i: usize, cmd: &str) -> Result<Option<(i64, usize)>, CmdError> {
    let a = &args[i];
    let (unit, abs) = if is(a, "ex") {
        (1000, false)
    } else if is(a, "px") {
        (1, false)
    } else if is(a, "exat") {
        (1000, true)
    } else if is(a, "pxat") {
        (1, true)
    } else {
        return Ok(None);
    };
    let v = args.get(i + 1).ok_or(CmdError::Syntax)?;
    Ok(Some((expire_at(v, unit, abs, cmd)?, 2)))
}

pub fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match ctx.ks.lookup(&args[1])? {
        Some(e) => Ok(Reply::Bulk(as_str(&e)?.clone())),
        None => Ok(Reply::Nil),
    }
}

pub fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut nx, mut xx, mut want_get) = (false, false, false);
    // Valkey 8.1's IFEQ: set only over a string equal to this.
    let mut if_eq: Option<&Bytes> = None;
    let mut expiry = Expiry::None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if is(a, "nx") && !xx && if_eq.is_none() {
            nx = true;
        } else if is(a, "xx") && !nx && if_eq.is_none() {
            xx = true;
        } else if is(a, "ifeq") && !nx && !xx && if_eq.is_none() && i + 1 < args.len() {
            if_eq = Some(&args[i + 1]);
            i += 2;
            continue;
        } else if is(a, "get") {
            want_get = true;
        } else if is(a, "keepttl") && expiry == Expiry::None {
            expiry = Expiry::Keep;
        } else if expiry == Expiry::None && i + 1 < args.len() {
            match parse_expiry_opt(args, i, "set")? {
                Some((at, used)) => {
                    expiry = Expiry::At(at);
                    i += used;
                    continue;
                }
                None => return Err(CmdError::Syntax),
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let value = args[2].clone();
    // Without GET or IFEQ the old value's bytes are not needed (a big string is not read).
    let reads_old = want_get || if_eq.is_some();
    let update = |ks: &mut crate::keyspace::Pending,
                  f: &mut dyn FnMut(Option<Entry>) -> (Update, CmdResult)|
     -> Result<CmdResult, CmdError> {
        Ok(if reads_old {
            ks.update(&args[1], f)?
        } else {
            ks.update_raw(&args[1], f)?
        })
    };
    update(ctx.ks, &mut |old| {
        let old_val = match &old {
            Some(e) => match as_str(e) {
                Ok(b) => Some(b.clone()),
                Err(e) if want_get || if_eq.is_some() => return (Update::Keep, Err(e)),
                Err(_) => None,
            },
            None => None,
        };
        let exists = old.is_some();
        let unequal = if_eq.is_some_and(|want| old_val.as_ref() != Some(want));
        if (nx && exists) || (xx && !exists) || unequal {
            let r = if want_get {
                Reply::opt_bulk(old_val)
            } else {
                Reply::Nil
            };
            return (Update::Keep, Ok(r));
        }
        let expire_at = match expiry {
            Expiry::At(at) => Some(at),
            Expiry::Keep => old.as_ref().and_then(|e| e.expire_at),
            _ => None,
        };
        let r = if want_get {
            Reply::opt_bulk(old_val)
        } else {
            Reply::OK
        };
        (
            Update::Put(Entry {
                value: Value::Str(value.clone()),
                expire_at,
            }),
            Ok(r),
        )
    })?
}

pub fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let v = args[2].clone();
    ctx.ks.update_raw(&args[1], |old| match old {
        Some(_) => (Update::Keep, Ok(Reply::Int(0))),
        None => (Update::Put(Entry::string(v)), Ok(Reply::Int(1))),
    })?
}

fn setex_common(ctx: &mut Ctx, args: &[Bytes], unit: i64, cmd: &str) -> CmdResult {
    let at = expire_at(&args[2], unit, false, cmd)?;
    let v = args[3].clone();
    ctx.ks.update_raw(&args[1], |_| {
        (
            Update::Put(Entry {
                value: Value::Str(v),
                expire_at: Some(at),
            }),
            (),
        )
    })?;
    Ok(Reply::OK)
}

pub fn setex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setex_common(ctx, args, 1000, "setex")
}

pub fn psetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setex_common(ctx, args, 1, "psetex")
}

pub fn mget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity(args.len() - 1);
    for k in &args[1..] {
        out.push(match ctx.ks.lookup(k)? {
            Some(Entry {
                value: Value::Str(b),
                ..
            }) => Reply::Bulk(b),
            #[allow(unreachable_patterns)]
            _ => Reply::Nil,
        });
    }
    Ok(Reply::Array(out))
}

fn mset_pairs<'a>(args: &'a [Bytes], cmd: &str) -> Result<Vec<&'a [u8]>, CmdError> {
    if args.len() % 2 != 1 {
        return Err(CmdError::WrongArity(cmd.into()));
    }
    Ok(args[1..].iter().step_by(2).map(|k| &k[..]).collect())
}

pub fn mset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = mset_pairs(args, "mset")?;
    let vals: Vec<Bytes> = args[2..].iter().step_by(2).cloned().collect();
    ctx.ks.update_many_raw(&keys, |_| {
        (
            vals.into_iter()
                .map(|v| Update::Put(Entry::string(v)))
                .collect(),
            (),
        )
    })?;
    Ok(Reply::OK)
}

pub fn msetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = mset_pairs(args, "msetnx")?;
    let vals: Vec<Bytes> = args[2..].iter().step_by(2).cloned().collect();
    Ok(ctx.ks.update_many_raw(&keys, |old| {
        if old.iter().any(|e| e.is_some()) {
            return (old.iter().map(|_| Update::Keep).collect(), Reply::Int(0));
        }
        (
            vals.into_iter()
                .map(|v| Update::Put(Entry::string(v)))
                .collect(),
            Reply::Int(1),
        )
    })?)
}

fn incr_by(ctx: &mut Ctx, key: &Bytes, delta: i64) -> CmdResult {
    ctx.ks.update(key, |old| {
        let (cur, expire_at) = match &old {
            Some(e) => match as_str(e) {
                Ok(b) => match parse_i64(b) {
                    Some(v) => (v, e.expire_at),
                    None => return (Update::Keep, Err(CmdError::NotInteger)),
                },
                Err(err) => return (Update::Keep, Err(err)),
            },
            None => (0, None),
        };
        let Some(n) = cur.checked_add(delta) else {
            return (Update::Keep, Err(CmdError::Overflow));
        };
        let v = Bytes::copy_from_slice(itoa::Buffer::new().format(n).as_bytes());
        (
            Update::Put(Entry {
                value: Value::Str(v),
                expire_at,
            }),
            Ok(Reply::Int(n)),
        )
    })?
}

pub fn incr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], 1)
}

pub fn decr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], -1)
}

pub fn incrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], int(&args[2])?)
}

pub fn decrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let d = int(&args[2])?;
    let neg = d
        .checked_neg()
        .ok_or_else(|| CmdError::err("decrement would overflow"))?;
    incr_by(ctx, &args[1], neg)
}

pub fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    use super::long_double::{add, format, parse, LongDouble};
    // Valkey's order: the key's type, then its value, then the increment.
    ctx.ks.update(&args[1], |old| {
        let (cur, expire_at) = match &old {
            Some(e) => match as_str(e) {
                Ok(b) => match parse(b) {
                    Some(v) => (v, e.expire_at),
                    None => return (Update::Keep, Err(CmdError::NotFloat)),
                },
                Err(err) => return (Update::Keep, Err(err)),
            },
            None => (LongDouble::ZERO, None),
        };
        let Some(incr) = parse(&args[2]) else {
            return (Update::Keep, Err(CmdError::NotFloat));
        };
        let n = add(&cur, &incr);
        if !n.is_finite() {
            return (
                Update::Keep,
                Err(CmdError::err("increment would produce NaN or Infinity")),
            );
        }
        let s = Bytes::from(format(&n));
        (
            Update::Put(Entry {
                value: Value::Str(s.clone()),
                expire_at,
            }),
            Ok(Reply::Bulk(s)),
        )
    })?
}

pub fn append(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let max = max_len(ctx);
    let add = args[2].clone();
    if let Some(len) = ctx.ks.chunked_len_locked(&args[1])? {
        if len as usize + add.len() > max {
            return Err(too_big());
        }
        return Ok(Reply::Int(ctx.ks.chunked_write(&args[1], len, &add)? as i64));
    }
    ctx.ks.update(&args[1], |old| {
        let (mut buf, expire_at) = match &old {
            Some(e) => match as_str(e) {
                Ok(b) => (BytesMut::from(&b[..]), e.expire_at),
                Err(err) => return (Update::Keep, Err(err)),
            },
            None => (BytesMut::new(), None),
        };
        if buf.len() + add.len() > max {
            return (Update::Keep, Err(too_big()));
        }
        buf.extend_from_slice(&add);
        let n = buf.len() as i64;
        (
            Update::Put(Entry {
                value: Value::Str(buf.freeze()),
                expire_at,
            }),
            Ok(Reply::Int(n)),
        )
    })?
}

pub fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if let Some(len) = ctx.ks.chunked_len(&args[1])? {
        return Ok(Reply::Int(len as i64));
    }
    match ctx.ks.lookup(&args[1])? {
        Some(e) => Ok(Reply::Int(as_str(&e)?.len() as i64)),
        None => Ok(Reply::Int(0)),
    }
}

/// Clamps Redis-style inclusive `[start, end]` with negative indices to a byte range.
pub(super) fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return None;
    }
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    s = s.max(0);
    e = e.max(0);
    if e >= len {
        e = len - 1;
    }
    if s > e || s >= len {
        return None;
    }
    Some((s as usize, e as usize + 1))
}

pub fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (start, end) = (int(&args[2])?, int(&args[3])?);
    if let Some(len) = ctx.ks.chunked_len(&args[1])? {
        return Ok(match clamp_range(start, end, len as usize) {
            Some((s, e)) => {
                let b = ctx.ks.chunked_bytes(&args[1], s as u64, (e - s) as u64)?;
                Reply::Bulk(Bytes::from(b))
            }
            None => Reply::bulk_str(""),
        });
    }
    let Some(e) = ctx.ks.lookup(&args[1])? else {
        return Ok(Reply::bulk_str(""));
    };
    let b = as_str(&e)?;
    Ok(match clamp_range(start, end, b.len()) {
        Some((s, e)) => Reply::Bulk(b.slice(s..e)),
        None => Reply::bulk_str(""),
    })
}

pub fn setrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = int(&args[2])?;
    if offset < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let offset = offset as usize;
    let patch = args[3].clone();
    let max = max_len(ctx);
    if let Some(len) = ctx.ks.chunked_len_locked(&args[1])? {
        if patch.is_empty() {
            return Ok(Reply::Int(len as i64));
        }
        if offset.saturating_add(patch.len()) > max {
            return Err(too_big());
        }
        let n = ctx.ks.chunked_write(&args[1], offset as u64, &patch)?;
        return Ok(Reply::Int(n as i64));
    }
    ctx.ks.update(&args[1], |old| {
        let (cur, expire_at) = match &old {
            Some(e) => match as_str(e) {
                Ok(b) => (b.clone(), e.expire_at),
                Err(err) => return (Update::Keep, Err(err)),
            },
            None => (Bytes::new(), None),
        };
        if patch.is_empty() {
            return (Update::Keep, Ok(Reply::Int(cur.len() as i64)));
        }
        if offset.saturating_add(patch.len()) > max {
            return (Update::Keep, Err(too_big()));
        }
        let mut buf = BytesMut::from(&cur[..]);
        if buf.len() < offset + patch.len() {
            buf.resize(offset + patch.len(), 0);
        }
        buf[offset..offset + patch.len()].copy_from_slice(&patch);
        let n = buf.len() as i64;
        (
            Update::Put(Entry {
                value: Value::Str(buf.freeze()),
                expire_at,
            }),
            Ok(Reply::Int(n)),
        )
    })?
}

pub fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.ks.update(&args[1], |old| match old {
        None => (Update::Keep, Ok(Reply::Nil)),
        Some(e) => match as_str(&e) {
            Ok(b) => (Update::Delete, Ok(Reply::Bulk(b.clone()))),
            Err(err) => (Update::Keep, Err(err)),
        },
    })?
}

pub fn getset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let v = args[2].clone();
    ctx.ks.update(&args[1], |old| match old {
        None => (Update::Put(Entry::string(v)), Ok(Reply::Nil)),
        Some(e) => match as_str(&e) {
            Ok(b) => (Update::Put(Entry::string(v)), Ok(Reply::Bulk(b.clone()))),
            Err(err) => (Update::Keep, Err(err)),
        },
    })?
}

pub fn getex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut expiry = Expiry::Keep;
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "persist") && expiry == Expiry::Keep {
            expiry = Expiry::Persist;
            i += 1;
        } else if expiry == Expiry::Keep && i + 1 < args.len() {
            match parse_expiry_opt(args, i, "getex")? {
                Some((at, used)) => {
                    expiry = Expiry::At(at);
                    i += used;
                }
                None => return Err(CmdError::Syntax),
            }
        } else {
            return Err(CmdError::Syntax);
        }
    }
    ctx.ks.update(&args[1], |old| {
        let Some(e) = old else {
            return (Update::Keep, Ok(Reply::Nil));
        };
        let b = match as_str(&e) {
            Ok(b) => b.clone(),
            Err(err) => return (Update::Keep, Err(err)),
        };
        let u = match expiry {
            Expiry::Keep | Expiry::None => Update::Keep,
            Expiry::Persist if e.expire_at.is_none() => Update::Keep,
            Expiry::Persist => Update::Put(Entry {
                expire_at: None,
                ..e
            }),
            Expiry::At(at) => Update::Put(Entry {
                expire_at: Some(at),
                ..e
            }),
        };
        (u, Ok(Reply::Bulk(b)))
    })?
}

/// DELIFEQ (Valkey 9.0): deletes the key only while it holds exactly this string.
pub fn delifeq(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let want = &args[2];
    ctx.ks.update(&args[1], |old| match &old {
        None => (Update::Keep, Ok(Reply::Int(0))),
        Some(e) => match as_str(e) {
            Ok(b) if b == want => (Update::Delete, Ok(Reply::Int(1))),
            Ok(_) => (Update::Keep, Ok(Reply::Int(0))),
            Err(err) => (Update::Keep, Err(err)),
        },
    })?
}

#[cfg(test)]
mod tests {
    use super::clamp_range;

    #[test]
    fn ranges() {
        assert_eq!(clamp_range(0, -1, 5), Some((0, 5)));
        assert_eq!(clamp_range(-3, -1, 5), Some((2, 5)));
        assert_eq!(clamp_range(10, 20, 5), None);
        assert_eq!(clamp_range(-1, -3, 5), None);
        assert_eq!(clamp_range(0, 100, 5), Some((0, 5)));
    }
}

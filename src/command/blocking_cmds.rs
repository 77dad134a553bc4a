//! Blocking pops: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP. Each tries its
//! non-blocking form; when every key is empty it asks the connection to wait
//! ([`After::Block`]) and is run again after a write to one of its keys, until its timeout.
//! Inside EXEC they never block (Valkey answers the timeout reply at once).
//!
//! Must not: wait itself; handlers return and the connection waits.

use std::time::Duration;

use bytes::Bytes;

use super::After;
use super::{lists, zsets, CmdError, CmdResult, Ctx};
use crate::resp::Reply;

/// A timeout in seconds (fractions allowed); 0 waits forever.
fn timeout(a: &[u8]) -> Result<Option<Duration>, CmdError> {
    let t = super::args::parse_f64(a)
        .filter(|t| t.is_finite())
        .ok_or_else(|| CmdError::err("timeout is not a float or out of range"))?;
    if t < 0.0 {
        return Err(CmdError::err("timeout is negative"));
    }
    if t * 1000.0 > i64::MAX as f64 / 2.0 {
        return Err(CmdError::err("timeout is out of range"));
    }
    Ok((t > 0.0).then(|| Duration::from_secs_f64(t)))
}

/// Nothing to pop: wait for `keys`, or answer `nil` now when blocking is not possible.
fn block(ctx: &mut Ctx, keys: Vec<Bytes>, timeout: Option<Duration>, nil: Reply) -> CmdResult {
    if ctx.client.in_exec {
        return Ok(nil);
    }
    ctx.client.after = Some(After::Block {
        keys,
        timeout,
        timeout_reply: nil,
        rerun: None,
    });
    Ok(Reply::Raw(Bytes::new()))
}

/// One key's attempt. Once blocked, a key that now holds another type is passed over, not an
/// error: Valkey only wakes a blocked client for its own type, so it keeps waiting.
fn attempt<R>(
    ctx: &mut Ctx,
    f: impl FnOnce(&mut Ctx) -> Result<Option<R>, CmdError>,
) -> Result<Option<R>, CmdError> {
    match f(ctx) {
        Err(CmdError::WrongType) if ctx.client.blocked.is_some() => Ok(None),
        r => r,
    }
}

/// LMPOP/ZMPOP over `keys`, one key at a time (see [`attempt`]).
fn mpop_each(
    ctx: &mut Ctx,
    keys: &[Bytes],
    pop: impl Fn(&mut Ctx, &[Bytes]) -> Result<Option<Reply>, CmdError>,
) -> Result<Option<Reply>, CmdError> {
    for k in keys {
        if let Some(r) = attempt(ctx, |ctx| pop(ctx, std::slice::from_ref(k)))? {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

fn bpop(ctx: &mut Ctx, args: &[Bytes], left: bool) -> CmdResult {
    let t = timeout(&args[args.len() - 1])?;
    let keys = &args[1..args.len() - 1];
    for k in keys {
        let popped = attempt(ctx, |ctx| {
            lists::mpop(ctx, std::slice::from_ref(k), left, 1)
        })?;
        if let Some(Reply::Array(mut r)) = popped {
            // [key, [element]] -> [key, element]
            if let Some(Reply::Array(mut els)) = r.pop() {
                if let Some(e) = els.pop() {
                    return Ok(Reply::Array(vec![Reply::Bulk(k.clone()), e]));
                }
            }
        }
    }
    block(ctx, keys.to_vec(), t, Reply::NilArray)
}

pub fn blpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bpop(ctx, args, true)
}
pub fn brpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bpop(ctx, args, false)
}

fn bmove(ctx: &mut Ctx, args: &[Bytes], from: bool, to: bool, t: &[u8]) -> CmdResult {
    let t = timeout(t)?;
    let moved = attempt(ctx, |ctx| {
        Ok(
            match lists::lmove_generic(ctx, &args[1], &args[2], from, to)? {
                Reply::Nil => None,
                r => Some(r),
            },
        )
    })?;
    match moved {
        Some(r) => Ok(r),
        None => block(ctx, vec![args[1].clone()], t, Reply::Nil),
    }
}

pub fn blmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (from, to) = (lists::side(&args[3])?, lists::side(&args[4])?);
    bmove(ctx, args, from, to, &args[5])
}
pub fn brpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bmove(ctx, args, false, true, &args[3])
}

pub fn blmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (keys, left, count) = lists::parse_mpop(args, 2, lists::side)?;
    let t = timeout(&args[1])?;
    match mpop_each(ctx, &keys, |ctx, k| lists::mpop(ctx, k, left, count))? {
        Some(r) => Ok(r),
        None => block(ctx, keys, t, Reply::NilArray),
    }
}

fn bzpop(ctx: &mut Ctx, args: &[Bytes], highest: bool) -> CmdResult {
    let t = timeout(&args[args.len() - 1])?;
    let keys = &args[1..args.len() - 1];
    for k in keys {
        let popped = attempt(ctx, |ctx| Ok(zsets::pop_ends(ctx, k, 1, highest)?.pop()))?;
        if let Some((m, s)) = popped {
            return Ok(Reply::Array(vec![
                Reply::Bulk(k.clone()),
                Reply::Bulk(Bytes::from(m)),
                zsets::score_reply(s),
            ]));
        }
    }
    block(ctx, keys.to_vec(), t, Reply::NilArray)
}

pub fn bzpopmin(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bzpop(ctx, args, false)
}
pub fn bzpopmax(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bzpop(ctx, args, true)
}

pub fn bzmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (keys, highest, count) = lists::parse_mpop(args, 2, zsets::min_max)?;
    let t = timeout(&args[1])?;
    match mpop_each(ctx, &keys, |ctx, k| zsets::mpop(ctx, k, highest, count))? {
        Some(r) => Ok(r),
        None => block(ctx, keys, t, Reply::NilArray),
    }
}

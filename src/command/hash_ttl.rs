//! Hash field expiration commands (Valkey 9): HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT, HTTL,
//! HPTTL, HEXPIRETIME, HPEXPIRETIME, HPERSIST, HGETEX, HSETEX and HGETDEL, with Valkey's
//! parse order, replies and events. Each runs on one hash under its key's lock.
//!
//! Must not: touch TTL records itself (the keyspace's hash transaction does).

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::{int, is, text};
use super::hashes::write;
use super::{CmdError, CmdResult, Ctx};
use crate::config::KeyspaceEvents as Ev;
use crate::keyspace::{now_ms, ExpireIf, FieldExpire};
use crate::resp::Reply;

const NUMFIELDS: &str =
    "numfields should be greater than 0 and match the provided number of fields";

fn numfields() -> CmdError {
    CmdError::err(NUMFIELDS)
}

/// Valkey's convertExpireArgumentToUnixTime: a non-negative integer in `unit_ms`, plus `base`.
fn expire_time(arg: &[u8], unit_ms: i64, base: i64, cmd: &str) -> Result<i64, CmdError> {
    let v = int(arg)?;
    let invalid = || CmdError::err(format!("invalid expire time in '{cmd}' command"));
    if v < 0 {
        return Err(invalid());
    }
    let ms = v.checked_mul(unit_ms).ok_or_else(invalid)?;
    ms.checked_add(base).ok_or_else(invalid)
}

/// The first `FIELDS` word in `args[from..len - 1]` (one must follow it).
fn fields_word(args: &[Bytes], from: usize) -> Option<usize> {
    (from..args.len().saturating_sub(1)).find(|&i| is(&args[i], "fields"))
}

/// Counts what a command did to the node's expired-fields figure and raises its events.
fn announce(ctx: &mut Ctx, key: &Bytes, expired: u64, event: Option<&'static str>) {
    if expired > 0 {
        ctx.node
            .keyspace
            .stats
            .expired_fields
            .fetch_add(expired, Ordering::Relaxed);
    }
    if let Some(e) = event {
        ctx.client.events.push((Ev::HASH, e, key.clone()));
    }
}

/// HEXPIRE / HPEXPIRE / HEXPIREAT / HPEXPIREAT key time [NX|XX|GT|LT] FIELDS n field...
pub fn hexpire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cmd = text(&args[0]).to_lowercase();
    let (unit, absolute) = match cmd.as_str() {
        "hexpire" => (1000, false),
        "hpexpire" => (1, false),
        "hexpireat" => (1000, true),
        _ => (1, true),
    };
    let mut n = 0i64;
    let mut first = args.len();
    let mut cond = ExpireIf::default();
    if let Some(fi) = fields_word(args, 3) {
        for a in &args[3..fi] {
            if is(a, "nx") {
                cond.nx = true;
            } else if is(a, "xx") {
                cond.xx = true;
            } else if is(a, "gt") {
                cond.gt = true;
            } else if is(a, "lt") {
                cond.lt = true;
            } else {
                return Err(CmdError::err(format!("Unsupported option {}", text(a))));
            }
        }
        if cond.nx && (cond.xx || cond.gt || cond.lt) {
            return Err(CmdError::err(
                "NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if cond.gt && cond.lt {
            return Err(CmdError::err(
                "GT and LT options at the same time are not compatible",
            ));
        }
        n = int(&args[fi + 1])?;
        first = fi + 2;
    }
    if n == 0 || n != (args.len() - first) as i64 {
        return Err(numfields());
    }
    let now = now_ms();
    let at = expire_time(&args[2], unit, if absolute { 0 } else { now }, &cmd)?;
    let past = at <= now;
    let fields = &args[first..];
    let (codes, expired, set) = write(ctx, &args[1], |h| {
        let (mut codes, mut set) = (Vec::with_capacity(fields.len()), false);
        for f in fields {
            let r = if past {
                match h.expire_now(f)? {
                    true => FieldExpire::Deleted,
                    false => FieldExpire::NoField,
                }
            } else {
                h.expire(f, at, cond)?
            };
            set |= r == FieldExpire::Set;
            codes.push(Reply::Int(r.code()));
        }
        Ok((codes, h.expired_fields, set))
    })?;
    let event = if expired > 0 {
        Some("hexpired")
    } else {
        set.then_some("hexpire")
    };
    announce(ctx, &args[1], expired, event);
    Ok(Reply::Array(codes))
}

/// HTTL / HPTTL / HEXPIRETIME / HPEXPIRETIME key FIELDS n field...
pub fn httl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cmd = text(&args[0]).to_lowercase();
    let now = now_ms();
    let (seconds, base) = match cmd.as_str() {
        "httl" => (true, now),
        "hpttl" => (false, now),
        "hexpiretime" => (true, 0),
        _ => (false, 0),
    };
    // Valkey reads the count at its place and does not look at the word before it.
    let n = int(&args[3])?;
    if n == 0 || n != (args.len() - 4) as i64 {
        return Err(CmdError::Syntax);
    }
    let fields = &args[4..];
    Ok(ctx.ks.hash_read(&args[1], |h| {
        let mut out = Vec::with_capacity(fields.len());
        for f in fields {
            let code = match h {
                Some(h) if h.get(f)?.is_some() => match h.ttl(f)? {
                    None => -1,
                    Some(t) => {
                        let r = t.saturating_sub(base).max(0);
                        if seconds {
                            (r + 500) / 1000
                        } else {
                            r
                        }
                    }
                },
                _ => -2,
            };
            out.push(Reply::Int(code));
        }
        Ok(Reply::Array(out))
    })??)
}

/// HPERSIST key FIELDS n field...
pub fn hpersist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = int(&args[3])?;
    if n == 0 || n != (args.len() - 4) as i64 {
        return Err(numfields());
    }
    let fields = &args[4..];
    let (codes, changed) = write(ctx, &args[1], |h| {
        let mut codes = Vec::with_capacity(fields.len());
        let mut changed = false;
        for f in fields {
            let c = if h.exists() { h.persist(f)? } else { -2 };
            changed |= c == 1;
            codes.push(Reply::Int(c));
        }
        Ok((codes, changed))
    })?;
    announce(ctx, &args[1], 0, changed.then_some("hpersist"));
    Ok(Reply::Array(codes))
}

/// HGETDEL key FIELDS n field...: the values, then the fields deleted.
pub fn hgetdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = int(&args[3])?;
    if n == 0 || n != (args.len() - 4) as i64 {
        return Err(numfields());
    }
    let fields = &args[4..];
    write(ctx, &args[1], |h| {
        let mut out = Vec::with_capacity(fields.len());
        for f in fields {
            match h.get(f)? {
                Some(v) => {
                    out.push(Reply::Bulk(Bytes::from(v)));
                    h.del(f)?;
                }
                None => out.push(Reply::Nil),
            }
        }
        Ok(Reply::Array(out))
    })
}

/// The options of HGETEX and HSETEX before FIELDS, by the rules of SET's option parser.
#[derive(Default)]
struct ExOpts {
    nx: bool,
    xx: bool,
    fnx: bool,
    fxx: bool,
    keepttl: bool,
    persist: bool,
    /// The time argument, its unit (ms) and whether it is absolute.
    expire: Option<(Bytes, i64, bool)>,
}

fn ex_opts(opts: &[Bytes], hset: bool) -> Result<ExOpts, CmdError> {
    let mut o = ExOpts::default();
    let mut j = 0;
    while j < opts.len() {
        let a = &opts[j];
        let next = opts.get(j + 1);
        let timed = |o: &ExOpts, unit: i64, abs: bool| {
            !o.keepttl && !o.persist && o.expire.as_ref().is_none_or(|e| (e.1, e.2) == (unit, abs))
        };
        if hset && is(a, "nx") && !o.xx {
            o.nx = true;
        } else if hset && is(a, "xx") && !o.nx {
            o.xx = true;
        } else if hset && is(a, "fnx") && !o.fxx {
            o.fnx = true;
        } else if hset && is(a, "fxx") && !o.fnx {
            o.fxx = true;
        } else if hset && is(a, "keepttl") && !o.persist && o.expire.is_none() {
            o.keepttl = true;
        } else if !hset && is(a, "persist") && !o.keepttl && o.expire.is_none() {
            o.persist = true;
        } else if let (Some((unit, abs)), Some(t)) = (
            [
                ("ex", 1000, false),
                ("px", 1, false),
                ("exat", 1000, true),
                ("pxat", 1, true),
            ]
            .iter()
            .find(|(w, ..)| is(a, w))
            .map(|(_, u, b)| (*u, *b)),
            next,
        ) {
            if !timed(&o, unit, abs) {
                return Err(CmdError::Syntax);
            }
            o.expire = Some((t.clone(), unit, abs));
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// HGETEX key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST] FIELDS n field...
pub fn hgetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cmd = text(&args[0]).to_lowercase();
    let mut n = -1i64;
    let mut first = args.len();
    let mut opts = ExOpts::default();
    if let Some(fi) = fields_word(args, 0) {
        opts = ex_opts(args.get(2..fi).unwrap_or(&[]), false)?;
        n = int(&args[fi + 1])?;
        first = fi + 2;
    }
    if n == 0 || n != (args.len() - first) as i64 {
        return Err(numfields());
    }
    let fields = &args[first..];
    let now = now_ms();
    let (reply, expired, event) = write(ctx, &args[1], |h| {
        // The type is checked before the time, as in Valkey.
        let at = match &opts.expire {
            Some((t, unit, abs)) => match expire_time(t, *unit, if *abs { 0 } else { now }, &cmd) {
                Ok(at) => Some(at),
                Err(e) => return Ok(Err(e)),
            },
            None => None,
        };
        let mut out = Vec::with_capacity(fields.len());
        let mut changes = 0;
        for f in fields {
            let v = h.get(f)?;
            let live = v.is_some();
            out.push(v.map_or(Reply::Nil, |v| Reply::Bulk(Bytes::from(v))));
            if !live {
                continue;
            }
            changes += match at {
                Some(at) if at <= now => h.expire_now(f)? as u32,
                Some(at) => {
                    h.set_ttl(f, at)?;
                    1
                }
                None if opts.persist => (h.persist(f)? == 1) as u32,
                None => 0,
            };
        }
        let event = (changes > 0).then_some(match at {
            Some(at) if at <= now => "hexpired",
            Some(_) => "hexpire",
            None => "hpersist",
        });
        Ok(Ok((Reply::Array(out), h.expired_fields, event)))
    })??;
    announce(ctx, &args[1], expired, event);
    Ok(reply)
}

/// HSETEX key [NX|XX] [FNX|FXX] [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL] FIELDS n
/// field value...: 1 when every field was set (or deleted, for a passed time), else 0.
pub fn hsetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cmd = text(&args[0]).to_lowercase();
    let mut n = 0i64;
    let mut first = args.len();
    let mut opts = ExOpts::default();
    if let Some(fi) = fields_word(args, 0) {
        opts = ex_opts(args.get(2..fi).unwrap_or(&[]), true)?;
        n = int(&args[fi + 1])?;
        first = fi + 2;
    }
    if n == 0 || n > i64::MAX / 2 || n * 2 != (args.len() - first) as i64 {
        return Err(numfields());
    }
    let pairs: Vec<&[Bytes]> = args[first..].chunks(2).collect();
    let now = now_ms();
    let (reply, expired, events) = write(ctx, &args[1], |h| {
        let exists = h.exists();
        if (opts.nx && exists) || (opts.xx && !exists) {
            return Ok(Ok((Reply::Int(0), 0, Vec::new())));
        }
        let at = match (&opts.expire, opts.keepttl) {
            (Some((t, unit, abs)), false) => {
                match expire_time(t, *unit, if *abs { 0 } else { now }, &cmd) {
                    Ok(at) => Some(at),
                    Err(e) => return Ok(Err(e)),
                }
            }
            _ => None,
        };
        if opts.fnx || opts.fxx {
            for p in &pairs {
                let live = h.get(&p[0])?.is_some();
                if (opts.fnx && live) || (opts.fxx && !live) {
                    return Ok(Ok((Reply::Int(0), 0, Vec::new())));
                }
            }
        }
        let mut changes = 0i64;
        let past = at.is_some_and(|at| at <= now);
        for p in &pairs {
            if past {
                changes += h.expire_now(&p[0])? as i64;
            } else {
                h.set_with_ttl(&p[0], p[1].to_vec(), at, opts.keepttl)?;
                changes += 1;
            }
        }
        let events = match (changes > 0, past) {
            (false, _) => Vec::new(),
            (true, true) => vec!["hexpired"],
            (true, false) if opts.expire.is_some() => vec!["hset", "hexpire"],
            (true, false) => vec!["hset"],
        };
        Ok(Ok((
            Reply::Int((changes == n) as i64),
            h.expired_fields,
            events,
        )))
    })??;
    announce(ctx, &args[1], expired, None);
    for e in events {
        ctx.client.events.push((Ev::HASH, e, args[1].clone()));
    }
    Ok(reply)
}

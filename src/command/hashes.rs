//! Hash commands. Each runs on the committed state under the key's lock (the connection's
//! write scope is committed first, so a pipeline still sees its earlier writes) and commits
//! its own batch: fields are member records, never read whole unless the command returns them.

use bytes::Bytes;

use super::args::{int, is, parse_i64};
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::HashView;
use crate::resp::Reply;

/// Valkey's hash-max-listpack-entries / -value defaults: below them a hash is reported as a
/// listpack and scanned in one step, as Valkey does.
use super::encodings::Limits;

fn read<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(Option<&HashView>) -> crate::keyspace::Result<R>,
) -> Result<R, CmdError> {
    Ok(ctx.ks.hash_read(key, f)??)
}

pub(super) fn write<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(&mut crate::keyspace::HashTxn) -> crate::keyspace::Result<R>,
) -> Result<R, CmdError> {
    Ok(ctx.ks.hash_write(key, f)??)
}

fn b(v: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(v))
}

pub fn hset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() % 2 == 1 {
        return Err(CmdError::WrongArity(
            super::args::text(&args[0]).to_lowercase(),
        ));
    }
    let hmset = is(&args[0], "hmset");
    let added = write(ctx, &args[1], |h| {
        let mut n = 0;
        for p in args[2..].chunks(2) {
            n += h.set(&p[0], p[1].to_vec())? as i64;
        }
        Ok(n)
    })?;
    Ok(if hmset { Reply::OK } else { Reply::Int(added) })
}

pub fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    write(ctx, &args[1], |h| {
        if h.get(&args[2])?.is_some() {
            return Ok(Reply::Int(0));
        }
        h.set(&args[2], args[3].to_vec())?;
        Ok(Reply::Int(1))
    })
}

pub fn hget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |h| {
        Ok(match h {
            Some(h) => h.get(&args[2])?.map_or(Reply::Nil, |v| b(&v)),
            None => Reply::Nil,
        })
    })
}

pub fn hmget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |h| {
        let mut out = Vec::with_capacity(args.len() - 2);
        for f in &args[2..] {
            out.push(match h {
                Some(h) => h.get(f)?.map_or(Reply::Nil, |v| b(&v)),
                None => Reply::Nil,
            });
        }
        Ok(Reply::Array(out))
    })
}

pub fn hdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    write(ctx, &args[1], |h| {
        let mut n = 0;
        for f in &args[2..] {
            n += h.del(f)? as i64;
        }
        Ok(Reply::Int(n))
    })
}

pub fn hexists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |h| {
        Ok(Reply::Int(match h {
            Some(h) => h.get(&args[2])?.is_some() as i64,
            None => 0,
        }))
    })
}

pub fn hlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |h| {
        Ok(Reply::Int(h.map_or(0, |h| h.len as i64)))
    })
}

pub fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |h| {
        Ok(Reply::Int(match h {
            Some(h) => h.get(&args[2])?.map_or(0, |v| v.len() as i64),
            None => 0,
        }))
    })
}

/// HKEYS / HVALS / HGETALL.
fn all(ctx: &mut Ctx, key: &[u8], fields: bool, values: bool, map: bool) -> CmdResult {
    read(ctx, key, |h| {
        let mut out = Vec::new();
        let mut pairs = Vec::new();
        if let Some(h) = h {
            h.scan(|f, v| {
                if map {
                    pairs.push((b(f), b(v)));
                } else {
                    if fields {
                        out.push(b(f));
                    }
                    if values {
                        out.push(b(v));
                    }
                }
                true
            })?;
        }
        Ok(if map {
            Reply::Map(pairs)
        } else {
            Reply::Array(out)
        })
    })
}

pub fn hkeys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    all(ctx, &args[1], true, false, false)
}
pub fn hvals(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    all(ctx, &args[1], false, true, false)
}
pub fn hgetall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    all(ctx, &args[1], true, true, true)
}

pub fn hincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let incr = int(&args[3])?;
    write(ctx, &args[1], |h| {
        let cur = match h.get(&args[2])? {
            Some(v) => match parse_i64(&v) {
                Some(n) => n,
                None => return Ok(Err(CmdError::err("hash value is not an integer"))),
            },
            None => 0,
        };
        let Some(n) = cur.checked_add(incr) else {
            return Ok(Err(CmdError::err("increment or decrement would overflow")));
        };
        h.set_keep_ttl(&args[2], n.to_string().into_bytes())?;
        Ok(Ok(Reply::Int(n)))
    })?
}

pub fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    use super::long_double::{add, format, parse, LongDouble};
    // Valkey's order: the increment (parsed, finite), then the key's type, then the field.
    let incr = parse(&args[3]).ok_or(CmdError::NotFloat)?;
    if !incr.is_finite() {
        return Err(CmdError::err("value is NaN or Infinity"));
    }
    write(ctx, &args[1], |h| {
        let cur = match h.get(&args[2])? {
            Some(v) => match parse(&v) {
                Some(x) => x,
                None => return Ok(Err(CmdError::err("hash value is not a float"))),
            },
            None => LongDouble::ZERO,
        };
        let n = add(&cur, &incr);
        if !n.is_finite() {
            return Ok(Err(CmdError::err(
                "increment would produce NaN or Infinity",
            )));
        }
        let s = format(&n);
        h.set_keep_ttl(&args[2], s.clone().into_bytes())?;
        Ok(Ok(Reply::Bulk(Bytes::from(s))))
    })?
}

/// Whether the hash would be a listpack by the thresholds in `l`.
fn small(h: &HashView, l: &Limits) -> crate::keyspace::Result<bool> {
    // A field TTL makes Valkey convert the hash for good.
    if h.len > l.hash_entries || h.volatile > 0 {
        return Ok(false);
    }
    let mut ok = true;
    h.scan(|f, v| {
        ok = f.len() <= l.hash_value && v.len() <= l.hash_value;
        ok
    })?;
    Ok(ok)
}

pub fn encoding(ctx: &mut Ctx, key: &[u8]) -> Result<&'static str, CmdError> {
    let l = Limits::of(ctx.node);
    read(ctx, key, |h| {
        Ok(match h {
            Some(h) if small(h, &l)? => "listpack",
            _ => "hashtable",
        })
    })
}

pub fn hscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let super::args::MemberScan {
        cursor,
        count,
        pattern,
        novalues,
    } = super::args::member_scan(args, true)?;
    let ks = &ctx.node.keyspace;
    let resume = if cursor == 0 {
        Some(Vec::new())
    } else {
        ks.take_cursor(cursor)
    };
    let limits = Limits::of(ctx.node);
    read(ctx, &args[1], |h| {
        let mut out = Vec::new();
        let mut next = 0u64;
        if let (Some(h), Some(from)) = (h, resume) {
            let all = small(h, &limits)?;
            let mut seen = 0usize;
            let mut stop_at = None;
            h.scan_from(&from, |f, v| {
                if !all && seen >= count {
                    stop_at = Some(f.to_vec());
                    return false;
                }
                seen += 1;
                if pattern
                    .as_ref()
                    .is_none_or(|p| crate::glob::glob_match(p, f, false))
                {
                    out.push(b(f));
                    if !novalues {
                        out.push(b(v));
                    }
                }
                true
            })?;
            if let Some(f) = stop_at {
                next = ks.save_cursor(f);
            }
        }
        Ok(Reply::Array(vec![
            Reply::Bulk(Bytes::from(next.to_string())),
            Reply::Array(out),
        ]))
    })
}

pub fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    use rand::Rng;
    let count = match args.get(2) {
        Some(c) => Some(int(c)?),
        None => None,
    };
    let withvalues = match args.get(3) {
        Some(a) if is(a, "withvalues") && args.len() == 4 => true,
        Some(_) => return Err(CmdError::Syntax),
        None => false,
    };
    if let Some(c) = count {
        if c < -(i64::MAX / 2) {
            return Err(CmdError::err("value is out of range"));
        }
    }
    read(ctx, &args[1], |h| {
        let Some(h) = h else {
            return Ok(match count {
                None => Reply::Nil,
                Some(_) => Reply::Array(vec![]),
            });
        };
        // Reservoir-free: pick positions, then one ordered walk collects them (the walk
        // skips passed fields, so positions count live ones).
        let len = h.live_len()? as usize;
        if len == 0 {
            return Ok(match count {
                None => Reply::Nil,
                Some(_) => Reply::Array(vec![]),
            });
        }
        let mut rng = rand::rng();
        let (n, distinct) = match count {
            None => (1, true),
            Some(c) if c >= 0 => ((c as usize).min(len), true),
            Some(c) => (c.unsigned_abs() as usize, false),
        };
        let mut picks: Vec<usize> = if distinct {
            rand::seq::index::sample(&mut rng, len, n).into_vec()
        } else {
            (0..n).map(|_| rng.random_range(0..len)).collect()
        };
        let order = picks.clone();
        picks.sort_unstable();
        picks.dedup();
        let mut found: std::collections::HashMap<usize, (Vec<u8>, Vec<u8>)> = Default::default();
        let mut idx = 0usize;
        let mut p = 0usize;
        h.scan(|f, v| {
            if p < picks.len() && picks[p] == idx {
                found.insert(idx, (f.to_vec(), v.to_vec()));
                p += 1;
            }
            idx += 1;
            p < picks.len()
        })?;
        if count.is_none() {
            return Ok(order
                .first()
                .and_then(|i| found.get(i))
                .map_or(Reply::Nil, |(f, _)| b(f)));
        }
        let picked = order.iter().filter_map(|i| found.get(i));
        if withvalues {
            return Ok(Reply::Pairs(picked.map(|(f, v)| (b(f), b(v))).collect()));
        }
        Ok(Reply::Array(picked.map(|(f, _)| b(f)).collect()))
    })
}

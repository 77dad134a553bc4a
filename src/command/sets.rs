//! Set commands: members are member records with empty values (see `hashes` for how a command
//! runs: the write scope is committed first, then the key is read or written under its lock).
//! Multi-key forms read each set from committed state; STORE forms replace the destination.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::args::{int, is};
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::{HashView, Kind};
use crate::resp::Reply;

use super::encodings::Limits;

fn read<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(Option<&HashView>) -> crate::keyspace::Result<R>,
) -> Result<R, CmdError> {
    Ok(ctx.ks.coll_read(key, Kind::Set, f)??)
}

fn write<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(&mut crate::keyspace::HashTxn) -> crate::keyspace::Result<R>,
) -> Result<R, CmdError> {
    Ok(ctx.ks.coll_write(key, Kind::Set, f)??)
}

fn b(v: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(v))
}

/// All members of the set at `key` (empty when missing).
fn members(ctx: &mut Ctx, key: &[u8]) -> Result<BTreeSet<Vec<u8>>, CmdError> {
    read(ctx, key, |h| {
        let mut out = BTreeSet::new();
        if let Some(h) = h {
            h.scan(|m, _| {
                out.insert(m.to_vec());
                true
            })?;
        }
        Ok(out)
    })
}

pub fn sadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    write(ctx, &args[1], |s| {
        let mut n = 0;
        for m in &args[2..] {
            if s.get(m)?.is_none() {
                s.set(m, Vec::new())?;
                n += 1;
            }
        }
        Ok(Reply::Int(n))
    })
}

pub fn srem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    write(ctx, &args[1], |s| {
        let mut n = 0;
        for m in &args[2..] {
            n += s.del(m)? as i64;
        }
        Ok(Reply::Int(n))
    })
}

pub fn sismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |s| {
        Ok(Reply::Int(match s {
            Some(s) => s.get(&args[2])?.is_some() as i64,
            None => 0,
        }))
    })
}

pub fn smismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |s| {
        let mut out = Vec::new();
        for m in &args[2..] {
            out.push(Reply::Int(match s {
                Some(s) => s.get(m)?.is_some() as i64,
                None => 0,
            }));
        }
        Ok(Reply::Array(out))
    })
}

pub fn smembers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let m = members(ctx, &args[1])?;
    Ok(Reply::Set(m.iter().map(|x| b(x)).collect()))
}

pub fn scard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |s| {
        Ok(Reply::Int(s.map_or(0, |s| s.len as i64)))
    })
}

/// Picks `n` positions among `len` (distinct or with repeats) in random order.
fn picks(len: usize, n: usize, distinct: bool) -> Vec<usize> {
    use rand::Rng;
    let mut rng = rand::rng();
    if distinct {
        rand::seq::index::sample(&mut rng, len, n.min(len)).into_vec()
    } else {
        (0..n).map(|_| rng.random_range(0..len)).collect()
    }
}

/// The members at `positions` (in byte order of the set), in the order asked.
fn at_positions(s: &HashView, positions: &[usize]) -> crate::keyspace::Result<Vec<Vec<u8>>> {
    let mut want: Vec<usize> = positions.to_vec();
    want.sort_unstable();
    want.dedup();
    let mut found = std::collections::HashMap::new();
    let (mut idx, mut p) = (0usize, 0usize);
    s.scan(|m, _| {
        if p < want.len() && want[p] == idx {
            found.insert(idx, m.to_vec());
            p += 1;
        }
        idx += 1;
        p < want.len()
    })?;
    Ok(positions
        .iter()
        .filter_map(|i| found.get(i).cloned())
        .collect())
}

pub fn srandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = match args.get(2) {
        Some(c) => Some(int(c)?),
        None => None,
    };
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    if count.is_some_and(|c| c < -(i64::MAX / 2)) {
        return Err(CmdError::err("value is out of range"));
    }
    read(ctx, &args[1], |s| {
        let Some(s) = s else {
            return Ok(if count.is_some() {
                Reply::Array(vec![])
            } else {
                Reply::Nil
            });
        };
        let len = s.len as usize;
        let (n, distinct) = match count {
            None => (1, true),
            Some(c) if c >= 0 => (c as usize, true),
            Some(c) => (c.unsigned_abs() as usize, false),
        };
        let got = at_positions(s, &picks(len, n, distinct))?;
        Ok(match count {
            None => got.first().map_or(Reply::Nil, |m| b(m)),
            Some(_) => Reply::Array(got.iter().map(|m| b(m)).collect()),
        })
    })
}

pub fn spop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = match args.get(2) {
        Some(c) => {
            let c = int(c).map_err(|_| CmdError::err("value is out of range, must be positive"))?;
            if c < 0 {
                return Err(CmdError::err("value is out of range, must be positive"));
            }
            Some(c as usize)
        }
        None => None,
    };
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    write(ctx, &args[1], |s| {
        if !s.exists() {
            return Ok(if count.is_some() {
                Reply::Array(vec![])
            } else {
                Reply::Nil
            });
        }
        let len = s.len() as usize;
        let n = count.unwrap_or(1).min(len);
        let chosen = match s.view() {
            Some(v) => at_positions(v, &picks(len, n, true))?,
            None => Vec::new(),
        };
        for m in &chosen {
            s.del(m)?;
        }
        Ok(match count {
            None => chosen.first().map_or(Reply::Nil, |m| b(m)),
            Some(_) => Reply::Array(chosen.iter().map(|m| b(m)).collect()),
        })
    })
}

pub fn smove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let moved = ctx.ks.set_move(&args[1], &args[2], &args[3])??;
    Ok(Reply::Int(moved as i64))
}

#[derive(Clone, Copy)]
enum Op {
    Inter,
    Union,
    Diff,
}

fn combine(ctx: &mut Ctx, keys: &[Bytes], op: Op) -> Result<BTreeSet<Vec<u8>>, CmdError> {
    // Every key is checked for its type first, as Valkey does.
    let mut sets = Vec::with_capacity(keys.len());
    for k in keys {
        sets.push(members(ctx, k)?);
    }
    let mut it = sets.into_iter();
    let mut acc = it.next().unwrap_or_default();
    for s in it {
        match op {
            Op::Inter => acc.retain(|m| s.contains(m)),
            Op::Union => acc.extend(s),
            Op::Diff => acc.retain(|m| !s.contains(m)),
        }
    }
    Ok(acc)
}

fn combine_reply(ctx: &mut Ctx, args: &[Bytes], op: Op) -> CmdResult {
    let r = combine(ctx, &args[1..], op)?;
    Ok(Reply::Set(r.iter().map(|m| b(m)).collect()))
}

fn combine_store(ctx: &mut Ctx, args: &[Bytes], op: Op) -> CmdResult {
    let r = combine(ctx, &args[2..], op)?;
    let n = r.len() as i64;
    let members = r.into_iter().map(|m| (m, Vec::new())).collect();
    ctx.ks
        .coll_put_all(&args[1], Kind::Set, members, &[], None, false)?;
    Ok(Reply::Int(n))
}

pub fn sinter(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_reply(ctx, args, Op::Inter)
}
pub fn sunion(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_reply(ctx, args, Op::Union)
}
pub fn sdiff(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_reply(ctx, args, Op::Diff)
}
pub fn sinterstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_store(ctx, args, Op::Inter)
}
pub fn sunionstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_store(ctx, args, Op::Union)
}
pub fn sdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_store(ctx, args, Op::Diff)
}

/// `numkeys` of SINTERCARD-like commands, validated against the argument count.
pub fn numkeys(args: &[Bytes], at: usize) -> Result<usize, CmdError> {
    let n = int(&args[at]).unwrap_or(0);
    if n <= 0 {
        return Err(CmdError::err("numkeys should be greater than 0"));
    }
    if n as usize > args.len() - at - 1 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    Ok(n as usize)
}

pub fn sintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = numkeys(args, 1)?;
    let mut limit = 0usize;
    let mut i = 2 + n;
    while i < args.len() {
        if is(&args[i], "limit") && i + 1 < args.len() {
            let l = int(&args[i + 1])?;
            if l < 0 {
                return Err(CmdError::err("LIMIT can't be negative"));
            }
            limit = l as usize;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let r = combine(ctx, &args[2..2 + n], Op::Inter)?;
    let c = if limit > 0 {
        r.len().min(limit)
    } else {
        r.len()
    };
    Ok(Reply::Int(c as i64))
}

/// Whether the set would be an intset, and whether a listpack, by the thresholds in `l`.
fn small(s: &HashView, l: &Limits) -> crate::keyspace::Result<(bool, bool)> {
    let (mut ints, mut short) = (s.len <= l.set_intset, s.len <= l.set_entries);
    if !ints && !short {
        return Ok((false, false));
    }
    s.scan(|m, _| {
        ints &= super::encodings::canonical_int(m).is_some();
        short &= m.len() <= l.set_value;
        ints || short
    })?;
    Ok((ints, short))
}

pub fn encoding(ctx: &mut Ctx, key: &[u8], _len: u64) -> Result<&'static str, CmdError> {
    let l = Limits::of(ctx.node);
    read(ctx, key, |s| {
        Ok(match s {
            Some(s) => match small(s, &l)? {
                (true, _) => "intset",
                (false, true) => "listpack",
                _ => "hashtable",
            },
            None => "hashtable",
        })
    })
}

pub fn sscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let super::args::MemberScan {
        cursor,
        count,
        pattern,
        ..
    } = super::args::member_scan(args, false)?;
    let shared = ctx.node;
    let ks = &shared.keyspace;
    let resume = if cursor == 0 {
        Some(Vec::new())
    } else {
        ks.take_cursor(cursor)
    };
    let limits = Limits::of(ctx.node);
    read(ctx, &args[1], |s| {
        let mut out = Vec::new();
        let mut next = 0u64;
        if let (Some(s), Some(from)) = (s, resume) {
            let (ints, short) = small(s, &limits)?;
            let all = ints || short;
            let mut seen = 0usize;
            let mut stop_at = None;
            s.scan_from(&from, |m, _| {
                if !all && seen >= count {
                    stop_at = Some(m.to_vec());
                    return false;
                }
                seen += 1;
                if pattern
                    .as_ref()
                    .is_none_or(|p| crate::glob::glob_match(p, m, false))
                {
                    out.push(b(m));
                }
                true
            })?;
            if let Some(m) = stop_at {
                next = ks.save_cursor(m);
            }
        }
        Ok(Reply::Array(vec![
            Reply::Bulk(Bytes::from(next.to_string())),
            Reply::Array(out),
        ]))
    })
}

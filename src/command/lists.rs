//! List commands (see `hashes` for how a command runs: the write scope is committed first,
//! then the key is read or written under its lock, in one batch).

use bytes::Bytes;

use super::args::{int, is};
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::ListTxn;
use crate::resp::Reply;

fn write<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(&mut ListTxn) -> crate::keyspace::Result<R>,
) -> Result<R, CmdError> {
    Ok(ctx.ks.list_write(key, f)??)
}

fn b(v: Vec<u8>) -> Reply {
    Reply::Bulk(Bytes::from(v))
}

fn push(ctx: &mut Ctx, args: &[Bytes], left: bool, only_existing: bool) -> CmdResult {
    write(ctx, &args[1], |l| {
        if only_existing && l.is_empty() {
            return Ok(Reply::Int(0));
        }
        for e in &args[2..] {
            if left {
                l.push_front(e.to_vec());
            } else {
                l.push_back(e.to_vec());
            }
        }
        Ok(Reply::Int(l.len() as i64))
    })
}

pub fn lpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, true, false)
}
pub fn rpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, false, false)
}
pub fn lpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, true, true)
}
pub fn rpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, false, true)
}

fn positive_count(a: &[u8]) -> Result<u64, CmdError> {
    match super::args::parse_i64(a) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(CmdError::err("value is out of range, must be positive")),
    }
}

fn pop(ctx: &mut Ctx, args: &[Bytes], left: bool) -> CmdResult {
    let count = match args.get(2) {
        Some(c) => Some(positive_count(c)?),
        None => None,
    };
    if args.len() > 3 {
        return Err(CmdError::WrongArity(
            super::args::text(&args[0]).to_lowercase(),
        ));
    }
    write(ctx, &args[1], |l| {
        if l.is_empty() {
            return Ok(if count.is_some() {
                Reply::NilArray
            } else {
                Reply::Nil
            });
        }
        let Some(n) = count else {
            let v = if left { l.pop_front()? } else { l.pop_back()? };
            return Ok(v.map_or(Reply::Nil, b));
        };
        let mut out = Vec::new();
        for _ in 0..n.min(l.len()) {
            let v = if left { l.pop_front()? } else { l.pop_back()? };
            if let Some(v) = v {
                out.push(b(v));
            }
        }
        Ok(Reply::Array(out))
    })
}

pub fn lpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, true)
}
pub fn rpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, false)
}

pub fn llen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    write(ctx, &args[1], |l| Ok(Reply::Int(l.len() as i64)))
}

/// A Valkey index (negative from the tail) as a position, if inside the list.
fn index(len: u64, i: i64) -> Option<u64> {
    let i = if i < 0 { len as i64 + i } else { i };
    (i >= 0 && (i as u64) < len).then_some(i as u64)
}

// LINDEX and LSET look the key up and check its type before they parse the index, as Valkey.
pub fn lindex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    write(ctx, &args[1], |l| {
        if l.is_empty() {
            return Ok(Ok(Reply::Nil));
        }
        let i = match int(&args[2]) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(match index(l.len(), i) {
            Some(i) => l.get(i)?.map_or(Reply::Nil, b),
            None => Reply::Nil,
        }))
    })?
}

pub fn lset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    write(ctx, &args[1], |l| {
        if l.is_empty() {
            return Ok(Err(CmdError::err("no such key")));
        }
        let i = match int(&args[2]) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        match index(l.len(), i) {
            Some(i) => {
                l.set(i, args[3].to_vec());
                Ok(Ok(Reply::OK))
            }
            None => Ok(Err(CmdError::err("index out of range"))),
        }
    })?
}

/// Valkey's LRANGE/LTRIM normalisation: Some((start, stop)) inside the list, or None.
fn span(len: u64, start: i64, stop: i64) -> Option<(u64, u64)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as u64, stop as u64))
}

pub fn lrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (start, stop) = (int(&args[2])?, int(&args[3])?);
    write(ctx, &args[1], |l| {
        Ok(Reply::Array(match span(l.len(), start, stop) {
            Some((a, z)) => l.range_shared(a, z)?.into_iter().map(Reply::Bulk).collect(),
            None => Vec::new(),
        }))
    })
}

pub fn ltrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (start, stop) = (int(&args[2])?, int(&args[3])?);
    write(ctx, &args[1], |l| {
        if l.is_empty() {
            return Ok(Reply::OK);
        }
        let keep = match span(l.len(), start, stop) {
            Some((a, z)) => l.range(a, z)?,
            None => Vec::new(),
        };
        if keep.len() as u64 != l.len() {
            l.rewrite(keep);
        }
        Ok(Reply::OK)
    })
}

pub fn lrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = int(&args[2])?;
    let el = &args[3][..];
    // The whole list is read and rewritten: a long command on a huge list.
    super::long_running(|| {
        write(ctx, &args[1], |l| {
            let all = l.all()?;
            let mut removed = 0i64;
            let limit = count.unsigned_abs() as i64;
            let keep: Vec<Vec<u8>> = if count >= 0 {
                all.into_iter()
                    .filter(|e| {
                        let hit = e[..] == *el && (count == 0 || removed < limit);
                        removed += hit as i64;
                        !hit
                    })
                    .collect()
            } else {
                let mut v: Vec<Vec<u8>> = all
                    .into_iter()
                    .rev()
                    .filter(|e| {
                        let hit = e[..] == *el && removed < limit;
                        removed += hit as i64;
                        !hit
                    })
                    .collect();
                v.reverse();
                v
            };
            if removed > 0 {
                l.rewrite(keep);
            }
            Ok(Reply::Int(removed))
        })
    })
}

pub fn linsert(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let before = if is(&args[2], "before") {
        true
    } else if is(&args[2], "after") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    super::long_running(|| {
        write(ctx, &args[1], |l| {
            if l.is_empty() {
                return Ok(Reply::Int(0));
            }
            let mut all = l.all()?;
            let Some(i) = all.iter().position(|e| e[..] == args[3][..]) else {
                return Ok(Reply::Int(-1));
            };
            all.insert(if before { i } else { i + 1 }, args[4].to_vec());
            l.rewrite(all);
            Ok(Reply::Int(l.len() as i64))
        })
    })
}

pub fn lpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0i64);
    let mut i = 3;
    while i < args.len() {
        let v = args.get(i + 1).ok_or(CmdError::Syntax)?;
        if is(&args[i], "rank") {
            rank = int(v)?;
            if rank == 0 {
                return Err(CmdError::err("RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
            }
            if rank == i64::MIN {
                return Err(CmdError::err("value is out of range"));
            }
        } else if is(&args[i], "count") {
            let c = int(v)?;
            if c < 0 {
                return Err(CmdError::err("COUNT can't be negative"));
            }
            count = Some(c);
        } else if is(&args[i], "maxlen") {
            maxlen = int(v)?;
            if maxlen < 0 {
                return Err(CmdError::err("MAXLEN can't be negative"));
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    super::long_running(|| {
        write(ctx, &args[1], |l| {
            let all = l.all()?;
            let n = all.len();
            let mut hits = Vec::new();
            let want = match count {
                Some(0) => usize::MAX,
                Some(c) => c as usize,
                None => 1,
            };
            let mut skip = rank.unsigned_abs() - 1;
            let order: Box<dyn Iterator<Item = usize>> = if rank > 0 {
                Box::new(0..n)
            } else {
                Box::new((0..n).rev())
            };
            for (checked, idx) in order.enumerate() {
                if maxlen > 0 && checked as i64 >= maxlen {
                    break;
                }
                if all[idx][..] == args[2][..] {
                    if skip > 0 {
                        skip -= 1;
                        continue;
                    }
                    hits.push(idx as i64);
                    if hits.len() >= want {
                        break;
                    }
                }
            }
            Ok(match count {
                Some(_) => Reply::Array(hits.into_iter().map(Reply::Int).collect()),
                None => hits.first().map_or(Reply::Nil, |i| Reply::Int(*i)),
            })
        })
    })
}

pub(super) fn side(a: &Bytes) -> Result<bool, CmdError> {
    if is(a, "left") {
        Ok(true)
    } else if is(a, "right") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

pub(super) fn lmove_generic(
    ctx: &mut Ctx,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
) -> CmdResult {
    Ok(ctx.ks.list_write2(src, dst, |s, d| {
        let v = if from_left {
            s.pop_front()?
        } else {
            s.pop_back()?
        };
        let Some(v) = v else { return Ok(Reply::Nil) };
        match (d, to_left) {
            (Some(d), true) => d.push_front(v.clone()),
            (Some(d), false) => d.push_back(v.clone()),
            (None, true) => s.push_front(v.clone()),
            (None, false) => s.push_back(v.clone()),
        }
        Ok(b(v))
    })??)
}

pub fn lmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (from, to) = (side(&args[3])?, side(&args[4])?);
    lmove_generic(ctx, &args[1], &args[2], from, to)
}

pub fn rpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    lmove_generic(ctx, &args[1], &args[2], false, true)
}

/// `numkeys key... <side> [COUNT n]` with numkeys at `args[at]` (LMPOP, ZMPOP and their
/// blocking forms): the keys, the side, the count.
pub(super) fn parse_mpop(
    args: &[Bytes],
    at: usize,
    side: impl Fn(&Bytes) -> Result<bool, CmdError>,
) -> Result<(Vec<Bytes>, bool, u64), CmdError> {
    let n = super::args::parse_i64(&args[at]).unwrap_or(0);
    if n <= 0 {
        return Err(CmdError::err("numkeys should be greater than 0"));
    }
    // The keys and the side must fit (Valkey answers a syntax error here).
    let n = n as usize;
    if n > args.len().saturating_sub(at + 2) {
        return Err(CmdError::Syntax);
    }
    let mut i = at + 1 + n;
    let first = side(&args[i])?;
    i += 1;
    let mut count = 1u64;
    let mut seen_count = false;
    while i < args.len() {
        if is(&args[i], "count") && i + 1 < args.len() && !seen_count {
            let c = super::args::parse_i64(&args[i + 1]).unwrap_or(0);
            if c <= 0 {
                return Err(CmdError::err("count should be greater than 0"));
            }
            count = c as u64;
            seen_count = true;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((args[at + 1..at + 1 + n].to_vec(), first, count))
}

/// Pops up to `count` elements from the first non-empty list of `keys`: `[key, [elements]]`.
pub(super) fn mpop(
    ctx: &mut Ctx,
    keys: &[Bytes],
    left: bool,
    count: u64,
) -> Result<Option<Reply>, CmdError> {
    for k in keys {
        let r = write(ctx, k, |l| {
            if l.is_empty() {
                return Ok(None);
            }
            let mut out = Vec::new();
            for _ in 0..count.min(l.len()) {
                let v = if left { l.pop_front()? } else { l.pop_back()? };
                if let Some(v) = v {
                    out.push(b(v));
                }
            }
            Ok(Some(out))
        })?;
        if let Some(out) = r {
            return Ok(Some(Reply::Array(vec![
                Reply::Bulk(k.clone()),
                Reply::Array(out),
            ])));
        }
    }
    Ok(None)
}

pub fn lmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (keys, left, count) = parse_mpop(args, 1, side)?;
    Ok(mpop(ctx, &keys, left, count)?.unwrap_or(Reply::NilArray))
}

//! Sorted-set range commands: ZRANGE in all its forms (by index, BYSCORE, BYLEX, REV, LIMIT),
//! the older ZRANGEBYSCORE/ZRANGEBYLEX/ZREVRANGE* spellings, ZRANGESTORE, ZCOUNT, ZLEXCOUNT and
//! ZREMRANGEBY*. Every range walks the score index from its bound in the asked direction and
//! stops at its end or LIMIT, so a range of ten in a set of millions reads about ten records.
//!
//! Must not: read a set whole to answer a bounded range.

use bytes::Bytes;

use super::args::{int, is, parse_f64};
use super::zsets::{b, read, score_reply, write};
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::{index_position, ZView};
use crate::resp::Reply;

/// A score bound: value and whether it is exclusive.
#[derive(Clone, Copy)]
pub(super) struct Bound(f64, bool);

fn bound(a: &[u8]) -> Result<Bound, CmdError> {
    let (ex, num) = match a.strip_prefix(b"(") {
        Some(r) => (true, r),
        None => (false, a),
    };
    match parse_f64(num) {
        Some(v) if !v.is_nan() => Ok(Bound(v, ex)),
        _ => Err(CmdError::err("min or max is not a float")),
    }
}

impl Bound {
    fn above_min(self, s: f64) -> bool {
        if self.1 {
            s > self.0
        } else {
            s >= self.0
        }
    }
    fn below_max(self, s: f64) -> bool {
        if self.1 {
            s < self.0
        } else {
            s <= self.0
        }
    }
}

/// A ZRANGEBYLEX bound: `-`, `+`, `[member` (inclusive) or `(member` (exclusive).
#[derive(Clone)]
enum Lex {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

fn lex(a: &[u8]) -> Result<Lex, CmdError> {
    match a.first() {
        Some(b'-') if a.len() == 1 => Ok(Lex::Min),
        Some(b'+') if a.len() == 1 => Ok(Lex::Max),
        Some(b'[') => Ok(Lex::Incl(a[1..].to_vec())),
        Some(b'(') => Ok(Lex::Excl(a[1..].to_vec())),
        _ => Err(CmdError::err("min or max not valid string range item")),
    }
}

impl Lex {
    fn gte_min(&self, m: &[u8]) -> bool {
        match self {
            Lex::Min => true,
            Lex::Max => false,
            Lex::Incl(v) => m >= v.as_slice(),
            Lex::Excl(v) => m > v.as_slice(),
        }
    }
    fn lte_max(&self, m: &[u8]) -> bool {
        match self {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(v) => m <= v.as_slice(),
            Lex::Excl(v) => m < v.as_slice(),
        }
    }
}

/// Valkey's `zslIsInLexRange` emptiness test: `-` and `+` sort below and above every member and
/// count as exclusive.
fn lex_empty(min: &Lex, max: &Lex) -> bool {
    use std::cmp::Ordering::*;
    let rank = |l: &Lex| match l {
        Lex::Min => 0,
        Lex::Incl(_) | Lex::Excl(_) => 1,
        Lex::Max => 2,
    };
    let value = |l: &Lex| match l {
        Lex::Incl(v) | Lex::Excl(v) => v.clone(),
        _ => Vec::new(),
    };
    let cmp = rank(min)
        .cmp(&rank(max))
        .then_with(|| value(min).cmp(&value(max)));
    let excl = |l: &Lex| !matches!(l, Lex::Incl(_));
    cmp == Greater || (cmp == Equal && (excl(min) || excl(max)))
}

/// What a range selects.
enum Sel {
    Index(i64, i64),
    Score(Bound, Bound),
    /// As in Valkey, meaningful when every member has the same score.
    Lex(Lex, Lex),
}

/// The members `sel` picks, in the asked order, after LIMIT `(offset, count)`.
fn select(
    z: &ZView,
    sel: &Sel,
    rev: bool,
    limit: Option<(i64, i64)>,
) -> crate::keyspace::Result<Vec<(Vec<u8>, f64)>> {
    let mut out = Vec::new();
    let (mut skip, take) = match limit {
        Some((off, _)) if off < 0 => return Ok(out),
        Some((off, n)) => (off as u64, if n < 0 { u64::MAX } else { n as u64 }),
        None => (0, u64::MAX),
    };
    if take == 0 {
        return Ok(out);
    }
    // Accepts one walked member; false once the range or LIMIT is exhausted.
    let mut emit = |m: &[u8], s: f64| {
        if skip > 0 {
            skip -= 1;
            return true;
        }
        out.push((m.to_vec(), s));
        (out.len() as u64) < take
    };
    match sel {
        Sel::Index(a, z_) => {
            let len = z.len as i64;
            let a = if *a < 0 { (len + a).max(0) } else { *a };
            let e = if *z_ < 0 {
                len + z_
            } else {
                (*z_).min(len - 1)
            };
            if a > e || a >= len {
                return Ok(out);
            }
            // Find the first wanted entry through the rank blocks, then walk from it.
            let (first, want) = if rev {
                (len - 1 - a, e - a + 1)
            } else {
                (a, e - a + 1)
            };
            let Some(at) = z.nth(first as u64)? else {
                return Ok(out);
            };
            let mut taken = 0i64;
            let mut take = |m: &[u8], s: f64| {
                taken += 1;
                emit(m, s) && taken < want
            };
            if rev {
                let mut to = at;
                to.push(0);
                z.walk(None, Some(&to), true, &mut take)?;
            } else {
                z.walk(Some(&at), None, false, &mut take)?;
            }
        }
        Sel::Score(min, max) => {
            if min.0 > max.0 || (min.0 == max.0 && (min.1 || max.1)) {
                return Ok(out);
            }
            if rev {
                // -0 and 0 are one score but sort apart in the index: cover both.
                let to =
                    crate::keyspace::successor_position(if max.0 == 0.0 { 0.0 } else { max.0 });
                z.walk(None, Some(&to), true, |m, s| {
                    if !max.below_max(s) {
                        return true;
                    }
                    min.above_min(s) && emit(m, s)
                })?;
            } else {
                let from = if min.0 == 0.0 { -0.0 } else { min.0 };
                z.walk(Some(&index_position(from, b"")), None, false, |m, s| {
                    if !min.above_min(s) {
                        return true;
                    }
                    max.below_max(s) && emit(m, s)
                })?;
            }
        }
        Sel::Lex(min, max) => {
            if lex_empty(min, max) {
                return Ok(out);
            }
            // Valkey's zzlIsInLexRange: the last member must reach `min` and the first must
            // not pass `max` (this decides sets whose members differ in score too).
            let end = |rev: bool| -> crate::keyspace::Result<Option<(Vec<u8>, f64)>> {
                let mut e = None;
                z.walk(None, None, rev, |m, s| {
                    e = Some((m.to_vec(), s));
                    false
                })?;
                Ok(e)
            };
            let (Some((first, low)), Some((last, top))) = (end(false)?, end(true)?) else {
                return Ok(out);
            };
            if !min.gte_min(&last) || !max.lte_max(&first) {
                return Ok(out);
            }
            if rev {
                // Start at the highest score's members, at or below `max`.
                let to = match max {
                    Lex::Max | Lex::Min => None,
                    Lex::Incl(v) => Some(crate::keyspace::successor_member(top, v)),
                    Lex::Excl(v) => Some(index_position(top, v)),
                };
                // As Valkey: find the first member in range, then take while above `min`.
                let mut started = false;
                z.walk(None, to.as_deref(), true, |m, s| {
                    if !started && !max.lte_max(m) {
                        return true;
                    }
                    started = true;
                    min.gte_min(m) && emit(m, s)
                })?;
            } else {
                let from = match min {
                    Lex::Min | Lex::Max => index_position(low, b""),
                    Lex::Incl(v) | Lex::Excl(v) => index_position(low, v),
                };
                let mut started = false;
                z.walk(Some(&from), None, false, |m, s| {
                    if !started && !min.gte_min(m) {
                        return true;
                    }
                    started = true;
                    max.lte_max(m) && emit(m, s)
                })?;
            }
        }
    }
    Ok(out)
}

/// Members, or with scores (member, score) pairs: flat in RESP2, nested in RESP3.
pub(super) fn flat(items: Vec<(Vec<u8>, f64)>, withscores: bool) -> Reply {
    if withscores {
        return Reply::Pairs(
            items
                .into_iter()
                .map(|(m, s)| (b(&m), score_reply(s)))
                .collect(),
        );
    }
    Reply::Array(items.into_iter().map(|(m, _)| b(&m)).collect())
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// One parsed range request (Valkey's `zrangeGenericCommand`).
struct Request {
    sel: Sel,
    rev: bool,
    limit: Option<(i64, i64)>,
    withscores: bool,
}

/// Parses `min max [BYSCORE|BYLEX] [REV] [LIMIT o c] [WITHSCORES]` starting at `args[at]`;
/// `kind`/`rev` preset by the older command forms make those words syntax errors.
fn parse(
    args: &[Bytes],
    at: usize,
    mut kind: Kind,
    rev: Option<bool>,
    store: bool,
) -> Result<Request, CmdError> {
    let (mut withscores, mut limit, mut rev_set) = (false, None, rev);
    let mut j = at + 2;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            limit = Some((int(&args[j + 1])?, int(&args[j + 2])?));
            j += 2;
        } else if rev_set.is_none() && is(a, "rev") {
            rev_set = Some(true);
        } else if kind == Kind::Auto && is(a, "bylex") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && is(a, "byscore") {
            kind = Kind::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = rev_set.unwrap_or(false);
    if kind == Kind::Auto {
        kind = Kind::Rank;
    }
    if limit.is_some_and(|(_, n)| n != -1) && kind == Kind::Rank {
        return Err(CmdError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == Kind::Lex {
        return Err(CmdError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (&args[at], &args[at + 1]);
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let sel = match kind {
        Kind::Score => Sel::Score(bound(lo)?, bound(hi)?),
        Kind::Lex => Sel::Lex(lex(lo)?, lex(hi)?),
        _ => Sel::Index(int(lo)?, int(hi)?),
    };
    let limit = if kind == Kind::Rank { None } else { limit };
    Ok(Request {
        sel,
        rev,
        limit,
        withscores,
    })
}

fn reply(ctx: &mut Ctx, key: &[u8], r: Request) -> CmdResult {
    read(ctx, key, |z| {
        Ok(match z {
            Some(z) => flat(select(z, &r.sel, r.rev, r.limit)?, r.withscores),
            None => Reply::Array(vec![]),
        })
    })
}

pub fn zrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = parse(args, 2, Kind::Auto, None, false)?;
    reply(ctx, &args[1], r)
}
pub fn zrevrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = parse(args, 2, Kind::Rank, Some(true), false)?;
    reply(ctx, &args[1], r)
}
pub fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = parse(args, 2, Kind::Score, Some(false), false)?;
    reply(ctx, &args[1], r)
}
pub fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = parse(args, 2, Kind::Score, Some(true), false)?;
    reply(ctx, &args[1], r)
}
pub fn zrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = parse(args, 2, Kind::Lex, Some(false), false)?;
    reply(ctx, &args[1], r)
}
pub fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = parse(args, 2, Kind::Lex, Some(true), false)?;
    reply(ctx, &args[1], r)
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT o c]: an empty result deletes dst.
pub fn zrangestore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = parse(args, 3, Kind::Auto, None, true)?;
    let items = read(ctx, &args[2], |z| {
        Ok(match z {
            Some(z) => select(z, &r.sel, r.rev, r.limit)?,
            None => Vec::new(),
        })
    })?;
    let n = items.len() as i64;
    ctx.ks.zset_put_all(&args[1], items, None, false)?;
    Ok(Reply::Int(n))
}

fn count(ctx: &mut Ctx, args: &[Bytes], sel: Sel) -> CmdResult {
    read(ctx, &args[1], |z| {
        Ok(Reply::Int(match z {
            Some(z) => select(z, &sel, false, None)?.len() as i64,
            None => 0,
        }))
    })
}

pub fn zcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sel = Sel::Score(bound(&args[2])?, bound(&args[3])?);
    count(ctx, args, sel)
}
pub fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sel = Sel::Lex(lex(&args[2])?, lex(&args[3])?);
    count(ctx, args, sel)
}

fn remove(ctx: &mut Ctx, args: &[Bytes], sel: Sel) -> CmdResult {
    write(ctx, &args[1], |t| {
        let picked = match t.view() {
            Some(z) => select(z, &sel, false, None)?,
            None => Vec::new(),
        };
        for (m, _) in &picked {
            t.remove(m)?;
        }
        Ok(Reply::Int(picked.len() as i64))
    })
}

pub fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sel = Sel::Score(bound(&args[2])?, bound(&args[3])?);
    remove(ctx, args, sel)
}
pub fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sel = Sel::Lex(lex(&args[2])?, lex(&args[3])?);
    remove(ctx, args, sel)
}
pub fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sel = Sel::Index(int(&args[2])?, int(&args[3])?);
    remove(ctx, args, sel)
}

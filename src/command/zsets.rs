//! Sorted-set commands (see `hashes` for how a command runs). Score ranges walk the score
//! index from their lower bound; index ranges from the top and ranks walk up to the answer.

use std::collections::HashMap;

use bytes::Bytes;

use super::args::{int, is, parse_f64};
use super::zranges::flat;
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::ZView;
use crate::resp::encode::format_double;
use crate::resp::Reply;

/// Members with their scores, in the order a reply lists them.
type Scored = Vec<(Vec<u8>, f64)>;

pub(super) fn read<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(Option<&ZView>) -> crate::keyspace::Result<R>,
) -> Result<R, CmdError> {
    Ok(ctx.ks.zset_read(key, f)??)
}

pub(super) fn write<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(&mut crate::keyspace::ZTxn) -> crate::keyspace::Result<R>,
) -> Result<R, CmdError> {
    Ok(ctx.ks.zset_write(key, f)??)
}

pub(super) fn b(v: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(v))
}

/// A score: a bulk string in RESP2, a double in RESP3.
pub(super) fn score_reply(s: f64) -> Reply {
    Reply::Double(s)
}

fn not_float() -> CmdError {
    CmdError::err("value is not a valid float")
}

pub fn zadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if is(a, "gt") {
            gt = true;
        } else if is(a, "lt") {
            lt = true;
        } else if is(a, "ch") {
            ch = true;
        } else if is(a, "incr") {
            incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(CmdError::Syntax);
    }
    if nx && xx {
        return Err(CmdError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(CmdError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && rest.len() > 2 {
        return Err(CmdError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    let mut pairs = Vec::new();
    for p in rest.chunks(2) {
        pairs.push((parse_f64(&p[0]).ok_or_else(not_float)?, p[1].clone()));
    }
    write(ctx, &args[1], |z| {
        let (mut added, mut changed) = (0i64, 0i64);
        let mut incr_result = None;
        for (score, m) in &pairs {
            let cur = z.score(m)?;
            if (nx && cur.is_some()) || (xx && cur.is_none()) {
                continue;
            }
            let new = match (incr, cur) {
                (true, Some(c)) => c + score,
                _ => *score,
            };
            if new.is_nan() {
                return Ok(Err(CmdError::err("resulting score is not a number (NaN)")));
            }
            if let Some(c) = cur {
                if (gt && new <= c) || (lt && new >= c) {
                    continue;
                }
                if new != c {
                    z.set(m, new)?;
                    changed += 1;
                }
            } else {
                z.set(m, new)?;
                added += 1;
            }
            incr_result = Some(new);
        }
        Ok(Ok(if incr {
            incr_result.map_or(Reply::Nil, score_reply)
        } else {
            Reply::Int(if ch { added + changed } else { added })
        }))
    })?
}

pub fn zincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let by = parse_f64(&args[2]).ok_or_else(not_float)?;
    write(ctx, &args[1], |z| {
        // A new member takes the increment itself, so -0 stays -0 in the reply (as Valkey).
        let new = z.score(&args[3])?.map_or(by, |c| c + by);
        if new.is_nan() {
            return Ok(Err(CmdError::err("resulting score is not a number (NaN)")));
        }
        z.set(&args[3], new)?;
        Ok(Ok(score_reply(new)))
    })?
}

pub fn zrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    write(ctx, &args[1], |z| {
        let mut n = 0;
        for m in &args[2..] {
            n += z.remove(m)? as i64;
        }
        Ok(Reply::Int(n))
    })
}

pub fn zscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |z| {
        Ok(match z {
            Some(z) => z.score(&args[2])?.map_or(Reply::Nil, score_reply),
            None => Reply::Nil,
        })
    })
}

pub fn zmscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |z| {
        let mut out = Vec::new();
        for m in &args[2..] {
            out.push(match z {
                Some(z) => z.score(m)?.map_or(Reply::Nil, score_reply),
                None => Reply::Nil,
            });
        }
        Ok(Reply::Array(out))
    })
}

pub fn zcard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |z| {
        Ok(Reply::Int(z.map_or(0, |z| z.len as i64)))
    })
}

fn rank(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> CmdResult {
    let withscore = match args.get(3) {
        Some(a) if is(a, "withscore") && args.len() == 4 => true,
        Some(_) => return Err(CmdError::Syntax),
        None => false,
    };
    // WITHSCORE answers a missing member with a null array (RESP2 `*-1`), as Valkey.
    let none = if withscore {
        Reply::NilArray
    } else {
        Reply::Nil
    };
    read(ctx, &args[1], |z| {
        let Some(z) = z else {
            return Ok(none);
        };
        let Some(r) = z.rank(&args[2])? else {
            return Ok(none);
        };
        let r = if rev { z.len - 1 - r } else { r };
        if withscore {
            let s = z.score(&args[2])?.unwrap_or(0.0);
            return Ok(Reply::Array(vec![Reply::Int(r as i64), score_reply(s)]));
        }
        Ok(Reply::Int(r as i64))
    })
}

pub fn zrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rank(ctx, args, false)
}
pub fn zrevrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rank(ctx, args, true)
}

fn zpop(ctx: &mut Ctx, args: &[Bytes], highest: bool) -> CmdResult {
    let count = match args.get(2) {
        Some(c) => {
            let n = int(c)?;
            if n < 0 {
                return Err(CmdError::err("value is out of range, must be positive"));
            }
            Some(n as u64)
        }
        None => None,
    };
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let picked = pop_ends(ctx, &args[1], count.unwrap_or(1), highest)?;
    if count.is_none() {
        // Without COUNT the reply stays flat in RESP3 too (Valkey).
        let mut out = Vec::new();
        for (m, s) in picked {
            out.push(b(&m));
            out.push(score_reply(s));
        }
        return Ok(Reply::Array(out));
    }
    Ok(flat(picked, true))
}

/// Removes and returns up to `n` of the lowest (or highest) members of `key`.
pub(super) fn pop_ends(
    ctx: &mut Ctx,
    key: &[u8],
    n: u64,
    highest: bool,
) -> Result<Scored, CmdError> {
    write(ctx, key, |z| {
        let picked = z.ends(n, highest)?;
        for (m, _) in &picked {
            z.remove(m)?;
        }
        Ok(picked)
    })
}

pub(super) fn min_max(a: &Bytes) -> Result<bool, CmdError> {
    if is(a, "min") {
        Ok(false)
    } else if is(a, "max") {
        Ok(true)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Pops from the first non-empty sorted set of `keys`: `[key, [[member, score], ...]]`.
pub(super) fn mpop(
    ctx: &mut Ctx,
    keys: &[Bytes],
    highest: bool,
    count: u64,
) -> Result<Option<Reply>, CmdError> {
    for k in keys {
        let picked = pop_ends(ctx, k, count, highest)?;
        if !picked.is_empty() {
            let items = picked
                .into_iter()
                .map(|(m, s)| Reply::Array(vec![b(&m), score_reply(s)]))
                .collect();
            return Ok(Some(Reply::Array(vec![
                Reply::Bulk(k.clone()),
                Reply::Array(items),
            ])));
        }
    }
    Ok(None)
}

pub fn zmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (keys, highest, count) = super::lists::parse_mpop(args, 1, min_max)?;
    Ok(mpop(ctx, &keys, highest, count)?.unwrap_or(Reply::NilArray))
}

pub fn zpopmin(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zpop(ctx, args, false)
}
pub fn zpopmax(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zpop(ctx, args, true)
}

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

/// `numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]` from `args[at]`.
/// Which command form runs the algebra: a `*STORE`, a reply (WITHSCORES allowed) or
/// ZINTERCARD (LIMIT allowed, no WEIGHTS or AGGREGATE).
#[derive(Clone, Copy, PartialEq)]
enum Form {
    Store,
    Reply,
    Card,
}

/// What [`combine`] computed: the members with scores, WITHSCORES, and ZINTERCARD's LIMIT (0 =
/// none).
struct Combined {
    items: Scored,
    withscores: bool,
    limit: u64,
}

fn combine(
    ctx: &mut Ctx,
    args: &[Bytes],
    at: usize,
    op: SetOp,
    cmd: &str,
    form: Form,
) -> Result<Combined, CmdError> {
    let n = int(&args[at])?;
    if n < 1 {
        return Err(CmdError::err(format!(
            "at least 1 input key is needed for '{cmd}' command"
        )));
    }
    let n = n as usize;
    if n > args.len() - at - 1 {
        return Err(CmdError::Syntax);
    }
    let keys = &args[at + 1..at + 1 + n];
    // Valkey looks the keys up (and checks their types) before the options.
    let mut sets = Vec::with_capacity(n);
    for k in keys {
        // A plain set takes part as a sorted set whose scores are all 1, as in Valkey.
        if matches!(ctx.ks.peek(k)?, Some((t, _)) if t == crate::keyspace::TYPE_SET_TAG) {
            let members = ctx.ks.members(k, crate::keyspace::Kind::Set)?;
            sets.push(members.into_iter().map(|(m, _)| (m, 1.0)).collect());
            continue;
        }
        let all = read(ctx, k, |z| match z {
            Some(z) => z.all(),
            None => Ok(Vec::new()),
        })?;
        sets.push(all);
    }
    let mut weights = vec![1.0f64; n];
    let mut agg = 0u8; // 0 sum, 1 min, 2 max
    let mut withscores = false;
    let mut limit = 0u64;
    let algebra = op != SetOp::Diff && form != Form::Card;
    let mut i = at + 1 + n;
    while i < args.len() {
        let a = &args[i];
        if form == Form::Card && is(a, "limit") && i + 1 < args.len() {
            let negative = || CmdError::err("LIMIT can't be negative");
            limit = int(&args[i + 1])
                .ok()
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(negative)?;
            i += 2;
        } else if algebra && is(a, "weights") && i + n < args.len() {
            for (j, w) in weights.iter_mut().enumerate() {
                *w = parse_f64(&args[i + 1 + j])
                    .ok_or_else(|| CmdError::err("weight value is not a float"))?;
            }
            i += n + 1;
        } else if algebra && is(a, "aggregate") && i + 1 < args.len() {
            let v = &args[i + 1];
            agg = if is(v, "sum") {
                0
            } else if is(v, "min") {
                1
            } else if is(v, "max") {
                2
            } else {
                return Err(CmdError::Syntax);
            };
            i += 2;
        } else if form == Form::Reply && is(a, "withscores") {
            withscores = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    // Valkey's arithmetic, NaN rules included: a weighted score that is NaN (inf * 0) counts
    // as 0 where Valkey zeroes it (every union input, the first intersection input), and an
    // aggregate is `v < t ? v : t` (MIN) / `v > t ? v : t` (MAX) / a sum whose NaN is 0.
    let zeroed = |v: f64| if v.is_nan() { 0.0 } else { v };
    let aggregate = |t: f64, v: f64| match agg {
        1 => {
            if v < t {
                v
            } else {
                t
            }
        }
        2 => {
            if v > t {
                v
            } else {
                t
            }
        }
        _ => zeroed(t + v),
    };
    let mut acc: std::collections::BTreeMap<Vec<u8>, f64> = std::collections::BTreeMap::new();
    match op {
        SetOp::Union => {
            for (set, w) in sets.iter().zip(&weights) {
                for (m, s) in set {
                    let v = zeroed(*s * *w);
                    acc.entry(m.clone())
                        .and_modify(|x| *x = aggregate(*x, v))
                        .or_insert(v);
                }
            }
        }
        SetOp::Inter => {
            // Valkey walks the inputs from the smallest (a stable sort by size), which decides
            // whose NaN is zeroed first.
            let mut order: Vec<usize> = (0..sets.len()).collect();
            order.sort_by_key(|&i| sets[i].len());
            // Member lookups by hash: a linear search per member made large inputs quadratic.
            let index: Vec<HashMap<&[u8], f64>> = sets
                .iter()
                .map(|set| set.iter().map(|(m, s)| (m.as_slice(), *s)).collect())
                .collect();
            let first = order[0];
            for (m, s) in &sets[first] {
                let mut v = zeroed(*s * weights[first]);
                let mut everywhere = true;
                for &j in &order[1..] {
                    match index[j].get(m.as_slice()) {
                        Some(s2) => v = aggregate(v, *s2 * weights[j]),
                        None => {
                            everywhere = false;
                            break;
                        }
                    }
                }
                if everywhere {
                    acc.insert(m.clone(), v);
                }
            }
        }
        SetOp::Diff => {
            let others: std::collections::HashSet<&[u8]> = sets
                .iter()
                .skip(1)
                .flat_map(|set| set.iter().map(|(m, _)| m.as_slice()))
                .collect();
            if let Some(first) = sets.first() {
                for (m, s) in first {
                    if !others.contains(m.as_slice()) {
                        acc.insert(m.clone(), *s);
                    }
                }
            }
        }
    }
    let mut out: Scored = acc.into_iter().collect();
    // Scores compare as numbers (-0 equals 0, as in Valkey), then members.
    out.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    Ok(Combined {
        items: out,
        withscores,
        limit,
    })
}

fn combine_store(ctx: &mut Ctx, args: &[Bytes], op: SetOp, cmd: &str) -> CmdResult {
    let items = combine(ctx, args, 2, op, cmd, Form::Store)?.items;
    let n = items.len() as i64;
    ctx.ks.zset_put_all(&args[1], items, None, false)?;
    Ok(Reply::Int(n))
}

fn combine_reply(ctx: &mut Ctx, args: &[Bytes], op: SetOp, cmd: &str) -> CmdResult {
    let c = combine(ctx, args, 1, op, cmd, Form::Reply)?;
    Ok(flat(c.items, c.withscores))
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = combine(ctx, args, 1, SetOp::Inter, "zintercard", Form::Card)?;
    let n = c.items.len() as u64;
    Ok(Reply::Int(
        if c.limit > 0 { n.min(c.limit) } else { n } as i64
    ))
}

pub fn zunionstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_store(ctx, args, SetOp::Union, "zunionstore")
}
pub fn zinterstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_store(ctx, args, SetOp::Inter, "zinterstore")
}
pub fn zdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_store(ctx, args, SetOp::Diff, "zdiffstore")
}
pub fn zunion(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_reply(ctx, args, SetOp::Union, "zunion")
}
pub fn zinter(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_reply(ctx, args, SetOp::Inter, "zinter")
}
pub fn zdiff(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    combine_reply(ctx, args, SetOp::Diff, "zdiff")
}

pub fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    use rand::Rng;
    let count = match args.get(2) {
        Some(c) => Some(int(c)?),
        None => None,
    };
    let withscores = match args.get(3) {
        Some(a) if is(a, "withscores") && args.len() == 4 => true,
        Some(_) => return Err(CmdError::Syntax),
        None => false,
    };
    if count.is_some_and(|c| c < -(i64::MAX / 2)) {
        return Err(CmdError::err("value is out of range"));
    }
    read(ctx, &args[1], |z| {
        let Some(z) = z else {
            return Ok(if count.is_some() {
                Reply::Array(vec![])
            } else {
                Reply::Nil
            });
        };
        let len = z.len as usize;
        let mut rng = rand::rng();
        let picks: Vec<usize> = match count {
            None => vec![rng.random_range(0..len)],
            Some(c) if c >= 0 => {
                rand::seq::index::sample(&mut rng, len, (c as usize).min(len)).into_vec()
            }
            Some(c) => (0..c.unsigned_abs())
                .map(|_| rng.random_range(0..len))
                .collect(),
        };
        // Few picks from a big set go through the rank blocks; otherwise one walk.
        let picked: Scored = if picks.len() * 64 < len {
            let mut out = Vec::with_capacity(picks.len());
            for i in picks {
                if let Some(p) = z.nth(i as u64)? {
                    out.push(crate::keyspace::position_parts(&p));
                }
            }
            out
        } else {
            let all = z.all()?;
            picks.into_iter().map(|i| all[i].clone()).collect()
        };
        if count.is_none() {
            return Ok(picked.first().map_or(Reply::Nil, |(m, _)| b(m)));
        }
        Ok(flat(picked, withscores))
    })
}

pub fn zscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let super::args::MemberScan {
        cursor,
        count,
        pattern,
        ..
    } = super::args::member_scan(args, false)?;
    let shared = ctx.node;
    let ks = &shared.keyspace;
    read(ctx, &args[1], |z| {
        let mut out = Vec::new();
        let mut next = 0u64;
        if let Some(z) = z {
            // A small sorted set (a listpack in Valkey) is returned whole, in score order;
            // a big one a page at a time from the cursor's index (found via the rank blocks).
            let len = z.len as usize;
            let mut small = len <= 128;
            let start = if cursor == 0 {
                0
            } else {
                ks.take_cursor(cursor)
                    .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
                    .unwrap_or(len as u64) as usize
            };
            let mut page = Vec::new();
            if small {
                page = z.all()?;
                small = page.iter().all(|(m, _)| m.len() <= 64);
                if !small {
                    page = page.into_iter().skip(start).take(count).collect();
                }
            } else if let Some(from) = z.nth(start as u64)? {
                z.walk(Some(&from), None, false, |m, s| {
                    page.push((m.to_vec(), s));
                    page.len() < count
                })?;
            }
            let end = if small { len } else { (start + count).min(len) };
            for (m, s) in &page {
                if pattern
                    .as_ref()
                    .is_none_or(|p| crate::glob::glob_match(p, m, false))
                {
                    out.push(b(m));
                    // SCAN replies carry scores as strings in both protocols.
                    out.push(Reply::Bulk(Bytes::from(format_double(*s))));
                }
            }
            if end < len {
                next = ks.save_cursor((end as u64).to_be_bytes().to_vec());
            }
        }
        Ok(Reply::Array(vec![
            Reply::Bulk(Bytes::from(next.to_string())),
            Reply::Array(out),
        ]))
    })
}

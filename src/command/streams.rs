//! Stream commands without consumer groups: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM,
//! XSETID and XREAD (blocking too), with Valkey's id grammar, option order and wording.
//! Consumer groups are in `stream_groups`; the records are the keyspace's (`stream`).

use bytes::Bytes;

/// The keyspace event class of stream commands.
pub(super) const STREAM: u16 = crate::config::KeyspaceEvents::STREAM;

use super::args::{int, is, parse_i64};
use super::{After, CmdError, CmdResult, Ctx};
use crate::keyspace::{
    Fields, NodeLimits, StreamId, StreamRead, StreamTxn, StreamView, TrimLimit, TrimSpec,
};
use crate::resp::{Protocol, Reply};

pub const BAD_ID: &str = "Invalid stream ID specified as stream command argument";

/// Valkey's `string2ull`: a strict integer, or what `strtoull` takes whole.
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let t = std::str::from_utf8(s).ok()?;
    let t = t.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = digits.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// An id as XADD reads it: `ms-seq`, `ms` (seq `missing`), or `ms-*` when `auto_seq` (the
/// second value tells whether the sequence was given).
fn parse_id_full(
    a: &[u8],
    missing: u64,
    strict: bool,
    auto_seq: bool,
) -> Result<(StreamId, bool), CmdError> {
    let bad = || CmdError::err(BAD_ID);
    if a.len() > 127 {
        return Err(bad());
    }
    match a {
        b"-" | b"+" if strict => return Err(bad()),
        b"-" => return Ok((StreamId::MIN, true)),
        b"+" => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let (ms, seq) = match a.iter().position(|&b| b == b'-') {
        Some(i) => (&a[..i], Some(&a[i + 1..])),
        None => (a, None),
    };
    let ms = string2ull(ms).ok_or_else(bad)?;
    match seq {
        Some(b"*") if auto_seq => Ok((StreamId::new(ms, 0), false)),
        Some(s) => Ok((StreamId::new(ms, string2ull(s).ok_or_else(bad)?), true)),
        None => Ok((StreamId::new(ms, missing), true)),
    }
}

/// An id where `-` and `+` mean the first and last possible ids.
pub fn parse_id(a: &[u8], missing: u64) -> Result<StreamId, CmdError> {
    Ok(parse_id_full(a, missing, false, false)?.0)
}

/// An id where `-` and `+` are refused.
pub fn parse_strict_id(a: &[u8]) -> Result<StreamId, CmdError> {
    Ok(parse_id_full(a, 0, true, false)?.0)
}

/// A range bound: `(id` excludes it (then `-`/`+` are refused).
fn parse_interval(a: &[u8], missing: u64) -> Result<(StreamId, bool), CmdError> {
    if a.len() > 1 && a[0] == b'(' {
        return Ok((parse_id_full(&a[1..], missing, true, false)?.0, true));
    }
    Ok((parse_id(a, missing)?, false))
}

/// The inclusive start of a range whose bound `a` may be exclusive.
pub fn range_start(a: &[u8]) -> Result<StreamId, CmdError> {
    let (id, ex) = parse_interval(a, 0)?;
    if ex {
        return id
            .next()
            .ok_or_else(|| CmdError::err("invalid start ID for the interval"));
    }
    Ok(id)
}

/// The inclusive end of a range whose bound `a` may be exclusive.
pub fn range_end(a: &[u8]) -> Result<StreamId, CmdError> {
    let (id, ex) = parse_interval(a, u64::MAX)?;
    if ex {
        return id
            .prev()
            .ok_or_else(|| CmdError::err("invalid end ID for the interval"));
    }
    Ok(id)
}

pub fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(Bytes::from(id.to_string()))
}

pub fn entry_reply(id: StreamId, fields: Fields) -> Reply {
    let mut flat = Vec::with_capacity(fields.len() * 2);
    for (f, v) in fields {
        flat.push(Reply::Bulk(Bytes::from(f)));
        flat.push(Reply::Bulk(Bytes::from(v)));
    }
    Reply::Array(vec![id_reply(id), Reply::Array(flat)])
}

pub fn entries_reply(entries: Vec<(StreamId, Fields)>) -> Reply {
    Reply::Array(
        entries
            .into_iter()
            .map(|(id, f)| entry_reply(id, f))
            .collect(),
    )
}

/// `stream-node-max-entries` and `stream-node-max-bytes`, as CONFIG SET left them.
pub fn node_limits(ctx: &Ctx) -> NodeLimits {
    let c = &ctx.node.config;
    NodeLimits {
        entries: c
            .extra("stream-node-max-entries")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(100),
        bytes: c
            .extra("stream-node-max-bytes")
            .and_then(|v| crate::config::parse_memory(v.trim()))
            .unwrap_or(4096),
    }
}

/// XADD's and XTRIM's options.
struct AddArgs {
    trim: Option<TrimSpec>,
    approx: bool,
    limit: Option<u64>,
    nomkstream: bool,
    /// The id given (None: `*`) and whether its sequence was given.
    id: Option<(StreamId, bool)>,
    /// Where the fields start (XADD) or the argument count (XTRIM).
    next: usize,
}

fn parse_add_or_trim(args: &[Bytes], xadd: bool) -> Result<AddArgs, CmdError> {
    let mut a = AddArgs {
        trim: None,
        approx: false,
        limit: None,
        nomkstream: false,
        id: None,
        next: args.len(),
    };
    let both = "syntax error, MAXLEN and MINID options at the same time are not compatible";
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && &opt[..] == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if a.trim.is_some() {
                return Err(CmdError::err(both));
            }
            a.approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && (next == b"~" || next == b"=") {
                a.approx = next == b"~";
                i += 1;
            }
            a.trim = Some(if is(opt, "maxlen") {
                let n = int(&args[i + 1])?;
                if n < 0 {
                    return Err(CmdError::err("The MAXLEN argument must be >= 0."));
                }
                TrimSpec::MaxLen(n as u64)
            } else {
                TrimSpec::MinId(parse_strict_id(&args[i + 1])?)
            });
            i += 1;
        } else if is(opt, "limit") && more > 0 {
            let n = int(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::err("The LIMIT argument must be >= 0."));
            }
            a.limit = Some(n as u64);
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            a.id = Some(parse_id_full(opt, 0, true, true)?);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    a.next = i + 1;
    if a.limit.is_some_and(|l| l > 0) && a.trim.is_none() {
        return Err(CmdError::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && a.trim.is_none() {
        return Err(CmdError::err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if a.limit.is_some() && !a.approx {
        return Err(CmdError::err(
            "syntax error, LIMIT cannot be used without the special ~ option",
        ));
    }
    Ok(a)
}

impl AddArgs {
    fn trim_limit(&self, limits: NodeLimits) -> TrimLimit {
        match (self.approx, self.limit) {
            (false, _) => TrimLimit::Exact,
            (true, Some(l)) => TrimLimit::Approx(l),
            (true, None) => {
                let l = limits.entries.saturating_mul(100);
                TrimLimit::Approx(if l == 0 { 10_000 } else { l.min(1_000_000) })
            }
        }
    }
}

/// Runs `f` on the stream at `key` under its lock (see the keyspace's `stream_write`).
pub fn write<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(&mut StreamTxn) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let mut out = None;
    ctx.ks.stream_write(key, |t| {
        out = Some(f(t));
        Ok(())
    })??;
    out.unwrap_or(Err(CmdError::Syntax))
}

pub fn read<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(Option<&StreamView>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let mut out = None;
    ctx.ks.stream_read(key, |s| {
        out = Some(f(s));
        Ok(())
    })??;
    out.unwrap_or(Err(CmdError::Syntax))
}

/// The id XADD gives a new entry after `last` (None: no id is left).
fn next_id(last: StreamId, given: Option<(StreamId, bool)>) -> Result<StreamId, CmdError> {
    let smaller = || {
        CmdError::err(
            "The ID specified in XADD is equal or smaller than the target stream top item",
        )
    };
    let id = match given {
        Some((id, true)) => id,
        Some((id, false)) if id.ms == last.ms => {
            last.next().filter(|n| n.ms == id.ms).ok_or_else(smaller)?
        }
        Some((id, false)) => id,
        None => {
            let now = crate::keyspace::now_ms().max(0) as u64;
            if now > last.ms {
                StreamId::new(now, 0)
            } else {
                last.next().ok_or_else(smaller)?
            }
        }
    };
    if id <= last {
        return Err(smaller());
    }
    Ok(id)
}

pub fn xadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let a = parse_add_or_trim(args, true)?;
    let fields = args.get(a.next..).unwrap_or_default();
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return Err(CmdError::WrongArity("xadd".into()));
    }
    if let Some((id, true)) = a.id {
        if id == StreamId::MIN {
            return Err(CmdError::err(
                "The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let limits = node_limits(ctx);
    let pairs: Fields = fields
        .chunks(2)
        .map(|p| (p[0].to_vec(), p[1].to_vec()))
        .collect();
    let key = args[1].clone();
    let r = write(ctx, &key, |t| {
        if !t.exists() && a.nomkstream {
            return Ok(None);
        }
        if t.meta.last_id == StreamId::MAX {
            return Err(CmdError::err(
                "The stream has exhausted the last possible ID, unable to add more items",
            ));
        }
        let id = next_id(t.meta.last_id, a.id)?;
        t.append(id, &pairs, limits)?;
        let trimmed = match a.trim {
            Some(spec) => t.trim(spec, a.trim_limit(limits))?,
            None => 0,
        };
        Ok(Some((id, trimmed)))
    })?;
    match r {
        None => Ok(Reply::Nil),
        Some((id, trimmed)) => {
            ctx.client.events.push((STREAM, "xadd", key.clone()));
            if trimmed > 0 {
                ctx.client.events.push((STREAM, "xtrim", key));
            }
            Ok(id_reply(id))
        }
    }
}

pub fn xtrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let a = parse_add_or_trim(args, false)?;
    let limits = node_limits(ctx);
    let Some(spec) = a.trim else {
        return Err(CmdError::Syntax);
    };
    let n = write(ctx, &args[1].clone(), |t| {
        if !t.exists() {
            return Ok(0);
        }
        Ok(t.trim(spec, a.trim_limit(limits))?)
    })?;
    if n > 0 {
        ctx.client.events.push((STREAM, "xtrim", args[1].clone()));
    }
    Ok(Reply::Int(n as i64))
}

pub fn xdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = write(ctx, &args[1].clone(), |t| {
        if !t.exists() {
            return Ok(0);
        }
        let ids = args[2..]
            .iter()
            .map(|a| parse_strict_id(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut n = 0;
        for id in ids {
            n += t.delete(id)? as i64;
        }
        Ok(n)
    })?;
    if n > 0 {
        ctx.client.events.push((STREAM, "xdel", args[1].clone()));
    }
    Ok(Reply::Int(n))
}

pub fn xlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    read(ctx, &args[1], |s| {
        Ok(Reply::Int(s.map_or(0, |s| s.meta().len as i64)))
    })
}

fn range_cmd(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> CmdResult {
    let (s, e) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = range_start(s)?;
    let end = range_end(e)?;
    let mut count: Option<i64> = None;
    let mut j = 4;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            count = Some(int(&args[j + 1])?.max(0));
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    read(ctx, &args[1], |st| {
        let Some(st) = st else {
            return Ok(Reply::Array(Vec::new()));
        };
        if count == Some(0) {
            return Ok(Reply::NilArray);
        }
        let entries = st.range(start, end, rev, count.map(|c| c as usize))?;
        Ok(entries_reply(entries))
    })
}

pub fn xrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_cmd(ctx, args, false)
}

pub fn xrevrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_cmd(ctx, args, true)
}

/// The last live entry's id.
pub fn last_valid_id(s: &dyn StreamRead) -> Result<Option<StreamId>, CmdError> {
    Ok(s.range(StreamId::MIN, StreamId::MAX, true, Some(1))?
        .first()
        .map(|(id, _)| *id))
}

pub fn xsetid(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let id = parse_strict_id(&args[2])?;
    let mut added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if is(&args[i], "entriesadded") && more {
            let n = int(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::err("entries_added must be positive"));
            }
            added = Some(n as u64);
        } else if is(&args[i], "maxdeletedid") && more {
            max_deleted = parse_strict_id(&args[i + 1])?;
            if id < max_deleted {
                return Err(CmdError::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    write(ctx, &args[1].clone(), |t| {
        if !t.exists() {
            return Err(CmdError::NoSuchKey);
        }
        if id < t.meta.max_deleted {
            return Err(CmdError::err(
                "The ID specified in XSETID is smaller than current max_deleted_entry_id",
            ));
        }
        if t.meta.len > 0 {
            if last_valid_id(t)?.is_some_and(|top| id < top) {
                return Err(CmdError::err(
                    "The ID specified in XSETID is smaller than the target stream top item",
                ));
            }
            if added.is_some_and(|n| t.meta.len > n) {
                return Err(CmdError::err(
                    "The entries_added specified in XSETID is smaller than the target stream length",
                ));
            }
        }
        t.meta.last_id = id;
        if let Some(n) = added {
            t.meta.entries_added = n;
        }
        if max_deleted != StreamId::MIN {
            t.meta.max_deleted = max_deleted;
        }
        Ok(())
    })?;
    ctx.client.events.push((STREAM, "xsetid", args[1].clone()));
    Ok(Reply::OK)
}

/// XREAD's and XREADGROUP's options.
pub struct ReadArgs {
    pub block: Option<i64>,
    pub count: usize,
    pub noack: bool,
    pub group: Option<(Bytes, Bytes)>,
    /// Index of the first key.
    pub streams: usize,
    pub n: usize,
}

pub fn parse_read(args: &[Bytes], group_cmd: bool) -> Result<ReadArgs, CmdError> {
    let name = if group_cmd { "xreadgroup" } else { "xread" };
    let mut r = ReadArgs {
        block: None,
        count: 0,
        noack: false,
        group: None,
        streams: 0,
        n: 0,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = &args[i];
        if is(o, "block") && more > 0 {
            i += 1;
            let t = parse_i64(&args[i])
                .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
            if t < 0 {
                return Err(CmdError::err("timeout is negative"));
            }
            r.block = Some(t);
        } else if is(o, "count") && more > 0 {
            i += 1;
            r.count = int(&args[i])?.max(0) as usize;
        } else if is(o, "streams") && more > 0 {
            r.streams = i + 1;
            let n = args.len() - r.streams;
            if n % 2 != 0 {
                let sym = if group_cmd { '>' } else { '$' };
                return Err(CmdError::err(format!(
                    "Unbalanced '{name}' list of streams: for each stream key an ID or '{sym}' must be specified."
                )));
            }
            r.n = n / 2;
            break;
        } else if is(o, "group") && more >= 2 {
            if !group_cmd {
                return Err(CmdError::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if is(o, "noack") {
            if !group_cmd {
                return Err(CmdError::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if r.streams == 0 {
        return Err(CmdError::Syntax);
    }
    if group_cmd && r.group.is_none() {
        return Err(CmdError::err("Missing GROUP option for XREADGROUP"));
    }
    Ok(r)
}

/// Per-stream results as XREAD answers them: a map in RESP3, pairs of arrays in RESP2.
pub fn streams_reply(ctx: &Ctx, served: Vec<(Bytes, Reply)>) -> Reply {
    if ctx.client.protocol == Protocol::Resp3 {
        Reply::Map(
            served
                .into_iter()
                .map(|(k, v)| (Reply::Bulk(k), v))
                .collect(),
        )
    } else {
        Reply::Array(
            served
                .into_iter()
                .map(|(k, v)| Reply::Array(vec![Reply::Bulk(k), v]))
                .collect(),
        )
    }
}

/// Nothing to serve: with BLOCK, wait for the keys (running `rerun` when woken); else nil.
pub fn block_or_nil(ctx: &mut Ctx, r: &ReadArgs, args: &[Bytes], rerun: Vec<Bytes>) -> CmdResult {
    let Some(ms) = r.block else {
        return Ok(Reply::NilArray);
    };
    if ctx.client.in_exec || ctx.client.in_script {
        return Ok(Reply::NilArray);
    }
    ctx.client.after = Some(After::Block {
        keys: args[r.streams..r.streams + r.n].to_vec(),
        timeout: (ms > 0).then(|| std::time::Duration::from_millis(ms as u64)),
        timeout_reply: Reply::NilArray,
        rerun: Some(rerun),
    });
    Ok(Reply::Raw(Bytes::new()))
}

pub fn xread(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = parse_read(args, false)?;
    let mut ids = Vec::with_capacity(r.n);
    let mut rerun = args.to_vec();
    for i in 0..r.n {
        let key = &args[r.streams + i];
        let arg = &args[r.streams + r.n + i];
        // Once blocked, a key that now holds another type is passed over (Valkey wakes an
        // XREAD only for streams), not an error.
        let last = match read(ctx, key, |s| Ok(s.map(|s| s.meta().last_id))) {
            Err(CmdError::WrongType) if ctx.client.blocked.is_some() => None,
            r => r?,
        };
        let id = match &arg[..] {
            b"$" => {
                let id = last.unwrap_or(StreamId::MIN);
                rerun[r.streams + r.n + i] = Bytes::from(id.to_string());
                id
            }
            b">" => {
                return Err(CmdError::err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ))
            }
            b"+" => match last {
                Some(l) => l
                    .prev()
                    .ok_or_else(|| CmdError::err("the stream last element ID is 0-0"))?,
                None => StreamId::MIN,
            },
            _ => parse_strict_id(arg)?,
        };
        ids.push(id);
    }
    let mut served = Vec::new();
    for (i, gt) in ids.into_iter().enumerate() {
        let key = &args[r.streams + i];
        let count = (r.count > 0).then_some(r.count);
        let got = match read(ctx, key, |s| {
            // Served when a live entry follows `gt`: the read itself tells.
            let Some(s) = s else { return Ok(None) };
            let Some(start) = gt.next().filter(|_| s.meta().len > 0) else {
                return Ok(None);
            };
            let entries = s.range(start, StreamId::MAX, false, count)?;
            Ok((!entries.is_empty()).then_some(entries))
        }) {
            Err(CmdError::WrongType) if ctx.client.blocked.is_some() => None,
            r => r?,
        };
        if let Some(entries) = got {
            served.push((key.clone(), entries_reply(entries)));
        }
    }
    if !served.is_empty() {
        return Ok(streams_reply(ctx, served));
    }
    block_or_nil(ctx, &r, args, rerun)
}

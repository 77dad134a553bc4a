//! Consumer groups: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM and XINFO, with
//! Valkey's delivery, claiming and read-counter (lag) rules. Groups, pending entries and
//! consumers are durable member records of the stream (see the keyspace's `stream_groups`).

use bytes::Bytes;

use super::args::{int, is, parse_i64};
use super::streams::{
    block_or_nil, entries_reply, entry_reply, id_reply, parse_id, parse_read, parse_strict_id,
    range_start, read, streams_reply, write, STREAM,
};
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::{
    now_ms, Consumer, Group, GroupRead, PendingEntry, StreamId, StreamMeta, StreamRead, StreamTxn,
};
use crate::resp::Reply;

pub(super) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(super) fn nogroup_in(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Line(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        text(key),
        text(group)
    ))
}

pub(super) fn nogroup_for(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Line(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        text(group),
        text(key)
    ))
}

/// Valkey's `streamRangeHasTombstones`: whether a deleted id may lie in `[start, MAX]`.
fn has_tombstones_from(m: &StreamMeta, start: StreamId) -> bool {
    if m.len == 0 || m.max_deleted == StreamId::MIN {
        return false;
    }
    start <= m.max_deleted
}

/// Valkey's `streamEstimateDistanceFromFirstEverEntry`: the read counter of `id`, if known.
fn entries_before(m: &StreamMeta, id: StreamId) -> Option<u64> {
    if m.entries_added == 0 {
        return Some(0);
    }
    if m.len == 0 && id <= m.last_id {
        return Some(m.entries_added);
    }
    if id != StreamId::MIN && id < m.max_deleted {
        return None;
    }
    match id.cmp(&m.last_id) {
        std::cmp::Ordering::Equal => return Some(m.entries_added),
        std::cmp::Ordering::Greater => return None,
        std::cmp::Ordering::Less => {}
    }
    if m.max_deleted == StreamId::MIN || m.max_deleted < m.first_id {
        match id.cmp(&m.first_id) {
            std::cmp::Ordering::Less => return Some(m.entries_added - m.len),
            std::cmp::Ordering::Equal => return Some(m.entries_added - m.len + 1),
            std::cmp::Ordering::Greater => {}
        }
    }
    None
}

/// The group's lag, when it can be known.
pub(super) fn lag(m: &StreamMeta, g: &Group) -> Option<i64> {
    if m.entries_added == 0 {
        return Some(0);
    }
    if let Some(read) = g.entries_read {
        if !has_tombstones_from(m, g.last_id) {
            return Some(m.entries_added as i64 - read as i64);
        }
    }
    entries_before(m, g.last_id).map(|read| m.entries_added as i64 - read as i64)
}

/// Delivering `id` moves the group's last delivered id and read counter.
fn advance(m: &StreamMeta, g: &mut Group, id: StreamId) {
    if id <= g.last_id {
        return;
    }
    match g.entries_read {
        Some(n) if g.last_id >= m.first_id && !has_tombstones_from(m, g.last_id) => {
            g.entries_read = Some(n + 1)
        }
        _ if m.entries_added > 0 => g.entries_read = entries_before(m, id),
        _ => {}
    }
    g.last_id = id;
}

pub(super) fn opt_int(n: Option<u64>) -> Reply {
    n.map_or(Reply::Nil, |n| Reply::Int(n as i64))
}

/// Changes consumer `name`'s record, if it exists.
fn edit_consumer(
    t: &mut StreamTxn,
    group: &[u8],
    name: &[u8],
    f: impl FnOnce(&mut Consumer),
) -> Result<(), CmdError> {
    if let Some(mut c) = t.consumer(group, name)? {
        f(&mut c);
        t.put_consumer(group, name, &c);
    }
    Ok(())
}

/// Creates consumer `name` if missing; true if it did (Valkey announces the creation).
fn ensure_consumer(
    t: &mut StreamTxn,
    group: &[u8],
    g: &mut Group,
    name: &[u8],
    now: i64,
) -> Result<bool, CmdError> {
    if t.consumer(group, name)?.is_some() {
        return Ok(false);
    }
    let c = Consumer {
        seen_time: now,
        active_time: None,
        pending: 0,
    };
    t.put_consumer(group, name, &c);
    g.consumers += 1;
    Ok(true)
}

/// A read or claim by consumer `name`: created if missing, its seen time now (one read of
/// its record). True if it was created.
fn seen_consumer(
    t: &mut StreamTxn,
    group: &[u8],
    g: &mut Group,
    name: &[u8],
    now: i64,
) -> Result<bool, CmdError> {
    let (mut c, created) = match t.consumer(group, name)? {
        Some(c) => (c, false),
        None => {
            g.consumers += 1;
            let c = Consumer {
                seen_time: now,
                active_time: None,
                pending: 0,
            };
            (c, true)
        }
    };
    c.seen_time = now;
    t.put_consumer(group, name, &c);
    Ok(created)
}

/// Stores pending entry `id` as `new`, moving it from its previous owner (`old`) if any.
fn assign(
    t: &mut StreamTxn,
    group: &[u8],
    g: &mut Group,
    id: StreamId,
    old: Option<PendingEntry>,
    new: PendingEntry,
) -> Result<(), CmdError> {
    match &old {
        None => g.pending += 1,
        Some(o) if o.consumer != new.consumer => edit_consumer(t, group, &o.consumer, |c| {
            c.pending = c.pending.saturating_sub(1)
        })?,
        Some(_) => {}
    }
    if old.as_ref().is_none_or(|o| o.consumer != new.consumer) {
        edit_consumer(t, group, &new.consumer, |c| c.pending += 1)?;
    }
    t.put_pending(group, id, &new);
    Ok(())
}

/// Drops pending entry `id` (acknowledged, or its entry is gone).
fn release(
    t: &mut StreamTxn,
    group: &[u8],
    g: &mut Group,
    id: StreamId,
    pe: &PendingEntry,
) -> Result<(), CmdError> {
    g.pending = g.pending.saturating_sub(1);
    edit_consumer(t, group, &pe.consumer, |c| {
        c.pending = c.pending.saturating_sub(1)
    })?;
    t.del_pending(group, id);
    Ok(())
}

pub(super) fn sub_syntax(args: &[Bytes], cmd: &str) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
        text(&args[1])
    ))
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Print this help.",
];

pub fn xgroup(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let known = [
        "create",
        "setid",
        "destroy",
        "createconsumer",
        "delconsumer",
        "help",
    ];
    if !known.iter().any(|k| is(sub, k)) {
        return Err(CmdError::UnknownSubcommand(text(sub), "XGROUP".into()));
    }
    if is(sub, "help") && args.len() == 2 {
        return Ok(Reply::Array(
            XGROUP_HELP
                .iter()
                .map(|l| Reply::StatusOwned(l.to_string()))
                .collect(),
        ));
    }
    if args.len() < 4 {
        return Err(sub_syntax(args, "XGROUP"));
    }
    let (create, setid) = (is(sub, "create"), is(sub, "setid"));
    let mut mkstream = false;
    let mut entries_read: Option<u64> = None;
    if create || setid {
        let mut i = 5;
        while i < args.len() {
            if create && is(&args[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if is(&args[i], "entriesread") && i + 1 < args.len() {
                let n = int(&args[i + 1])?;
                if n < -1 {
                    return Err(CmdError::err(
                        "value for ENTRIESREAD must be positive or -1",
                    ));
                }
                entries_read = (n >= 0).then_some(n as u64);
                i += 2;
            } else {
                return Err(sub_syntax(args, "XGROUP"));
            }
        }
    }
    let (key, name) = (args[2].clone(), args[3].clone());
    let n = args.len();
    let (reply, event) = write(ctx, &key, |t| {
        if !t.exists() && !mkstream {
            return Err(CmdError::err("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
        }
        let group = t.group(&name)?;
        let needs_group = setid || is(sub, "createconsumer") || is(sub, "delconsumer");
        if group.is_none() && needs_group {
            return Err(nogroup_for(&key, &name));
        }
        let now = now_ms();
        if create && (5..=8).contains(&n) {
            let id = match &args[4][..] {
                b"$" => t.meta.last_id,
                a => parse_strict_id(a)?,
            };
            if group.is_some() {
                return Err(CmdError::Line(
                    "BUSYGROUP Consumer Group name already exists".into(),
                ));
            }
            t.create();
            t.meta.groups += 1;
            let g = Group {
                last_id: id,
                entries_read,
                consumers: 0,
                pending: 0,
            };
            t.put_group(&name, &g);
            return Ok((Reply::OK, Some("xgroup-create")));
        }
        let Some(mut g) = group else {
            if is(sub, "destroy") && n == 4 {
                return Ok((Reply::Int(0), None));
            }
            return Err(sub_syntax(args, "XGROUP"));
        };
        if setid && (n == 5 || n == 7) {
            g.last_id = match &args[4][..] {
                b"$" => t.meta.last_id,
                a => parse_id(a, 0)?,
            };
            g.entries_read = entries_read;
            t.put_group(&name, &g);
            Ok((Reply::OK, Some("xgroup-setid")))
        } else if is(sub, "destroy") && n == 4 {
            t.destroy_group(&name)?;
            t.meta.groups -= 1;
            Ok((Reply::Int(1), Some("xgroup-destroy")))
        } else if is(sub, "createconsumer") && n == 5 {
            let created = ensure_consumer(t, &name, &mut g, &args[4], now)?;
            if created {
                t.put_group(&name, &g);
            }
            Ok((
                Reply::Int(created as i64),
                created.then_some("xgroup-createconsumer"),
            ))
        } else if is(sub, "delconsumer") && n == 5 {
            let Some(c) = t.consumer(&name, &args[4])? else {
                return Ok((Reply::Int(0), None));
            };
            let mut mine = Vec::new();
            t.pending_range(&name, StreamId::MIN, StreamId::MAX, false, &mut |id, pe| {
                if pe.consumer == args[4] {
                    mine.push(id);
                }
                true
            })?;
            for id in mine {
                t.del_pending(&name, id);
            }
            g.pending -= c.pending.min(g.pending);
            g.consumers -= 1;
            t.del_consumer(&name, &args[4]);
            t.put_group(&name, &g);
            Ok((Reply::Int(c.pending as i64), Some("xgroup-delconsumer")))
        } else {
            Err(sub_syntax(args, "XGROUP"))
        }
    })?;
    if let Some(e) = event {
        ctx.client.events.push((STREAM, e, key));
    }
    Ok(reply)
}

pub fn xreadgroup(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = parse_read(args, true)?;
    let Some((group, consumer)) = r.group.clone() else {
        return Err(CmdError::Syntax);
    };
    // None stands for `>`.
    let mut ids: Vec<Option<StreamId>> = Vec::with_capacity(r.n);
    for i in 0..r.n {
        let key = &args[r.streams + i];
        let arg = &args[r.streams + r.n + i];
        let exists = read(ctx, key, |s| {
            Ok(s.map(|s| s.group(&group)).transpose()?.flatten())
        })?;
        if exists.is_none() {
            return Err(CmdError::Line(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                text(key),
                text(&group)
            )));
        }
        ids.push(match &arg[..] {
            b">" => None,
            b"$" | b"+" => return Err(CmdError::err(format!("The {0} ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The {0} ID would just return an empty result set.", text(arg)))),
            _ => Some(parse_strict_id(arg)?),
        });
    }
    let count = (r.count > 0).then_some(r.count);
    let mut served = Vec::new();
    for (i, gt) in ids.into_iter().enumerate() {
        let key = args[r.streams + i].clone();
        let (got, created) = write(ctx, &key, |t| {
            let Some(mut g) = t.group(&group)? else {
                return Ok((None, false));
            };
            let now = now_ms();
            let created = seen_consumer(t, &group, &mut g, &consumer, now)?;
            let out = match gt {
                Some(gt) => Some(history(t, &group, &consumer, gt, count, now)?),
                // Served when an entry follows the group's last delivered id (what Valkey
                // asks of the last live id): the read itself tells.
                None => deliver_new(t, &group, &mut g, &consumer, count, r.noack, now)?,
            };
            t.put_group(&group, &g);
            Ok((out, created))
        })?;
        if created {
            ctx.client
                .events
                .push((STREAM, "xgroup-createconsumer", key.clone()));
        }
        if let Some(reply) = got {
            served.push((key, reply));
        }
    }
    if !served.is_empty() {
        return Ok(streams_reply(ctx, served));
    }
    block_or_nil(ctx, &r, args, args.to_vec())
}

/// The consumer's own pending entries after `gt` (deleted entries answer a nil body).
fn history(
    t: &mut StreamTxn,
    group: &[u8],
    consumer: &[u8],
    gt: StreamId,
    count: Option<usize>,
    now: i64,
) -> Result<Reply, CmdError> {
    let Some(start) = gt.next() else {
        return Ok(Reply::Array(Vec::new()));
    };
    let mut mine = Vec::new();
    t.pending_range(group, start, StreamId::MAX, false, &mut |id, pe| {
        if pe.consumer == consumer {
            mine.push((id, pe));
        }
        count.is_none_or(|c| mine.len() < c)
    })?;
    let mut out = Vec::with_capacity(mine.len());
    for (id, mut pe) in mine {
        match t.entry(id)? {
            Some(fields) => {
                pe.delivered_at = now;
                pe.deliveries += 1;
                t.put_pending(group, id, &pe);
                out.push(entry_reply(id, fields));
            }
            None => out.push(Reply::Array(vec![id_reply(id), Reply::NilArray])),
        }
    }
    Ok(Reply::Array(out))
}

/// Entries after the group's last delivered id go to `consumer` (into the pending list
/// unless NOACK); None when there are none.
fn deliver_new(
    t: &mut StreamTxn,
    group: &[u8],
    g: &mut Group,
    consumer: &[u8],
    count: Option<usize>,
    noack: bool,
    now: i64,
) -> Result<Option<Reply>, CmdError> {
    let Some(start) = g.last_id.next() else {
        return Ok(None);
    };
    let entries = t.range(start, StreamId::MAX, false, count)?;
    if entries.is_empty() {
        return Ok(None);
    }
    let meta = t.meta.clone();
    for (id, _) in &entries {
        advance(&meta, g, *id);
        if !noack {
            let old = t.pending_entry(group, *id)?;
            let pe = PendingEntry {
                delivered_at: now,
                deliveries: 1,
                consumer: consumer.to_vec(),
            };
            assign(t, group, g, *id, old, pe)?;
        }
    }
    if !noack {
        edit_consumer(t, group, consumer, |c| c.active_time = Some(now))?;
    }
    Ok(Some(entries_reply(entries)))
}

pub fn xack(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let group = args[2].clone();
    write(ctx, &args[1].clone(), |t| {
        let Some(mut g) = (if t.exists() { t.group(&group)? } else { None }) else {
            return Ok(Reply::Int(0));
        };
        let ids = args[3..]
            .iter()
            .map(|a| parse_strict_id(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut n = 0;
        for id in ids {
            if let Some(pe) = t.pending_entry(&group, id)? {
                release(t, &group, &mut g, id, &pe)?;
                n += 1;
            }
        }
        if n > 0 {
            t.put_group(&group, &g);
        }
        Ok(Reply::Int(n))
    })
}

fn int_msg(a: &[u8], msg: &str) -> Result<i64, CmdError> {
    parse_i64(a).ok_or_else(|| CmdError::err(msg))
}

pub fn xclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, group, name) = (args[1].clone(), args[2].clone(), args[3].clone());
    let (reply, created) = write(ctx, &key, |t| {
        let Some(mut g) = (if t.exists() { t.group(&group)? } else { None }) else {
            return Err(nogroup_in(&key, &group));
        };
        let min_idle = int_msg(&args[4], "Invalid min-idle-time argument for XCLAIM")?.max(0);
        let mut ids = Vec::new();
        let mut j = 5;
        while j < args.len() {
            match parse_strict_id(&args[j]) {
                Ok(id) => ids.push(id),
                Err(_) => break,
            }
            j += 1;
        }
        let now = now_ms();
        let (mut force, mut justid) = (false, false);
        let (mut delivery, mut retry, mut last_id) = (None, None, StreamId::MIN);
        while j < args.len() {
            let more = j + 1 < args.len();
            let o = &args[j];
            if is(o, "force") {
                force = true;
            } else if is(o, "justid") {
                justid = true;
            } else if is(o, "idle") && more {
                j += 1;
                let idle = int_msg(&args[j], "Invalid IDLE option argument for XCLAIM")?;
                delivery = Some(now.saturating_sub(idle));
            } else if is(o, "time") && more {
                j += 1;
                delivery = Some(int_msg(
                    &args[j],
                    "Invalid TIME option argument for XCLAIM",
                )?);
            } else if is(o, "retrycount") && more {
                j += 1;
                retry = Some(int_msg(
                    &args[j],
                    "Invalid RETRYCOUNT option argument for XCLAIM",
                )?);
            } else if is(o, "lastid") && more {
                j += 1;
                last_id = parse_strict_id(&args[j])?;
            } else {
                return Err(CmdError::err(format!(
                    "Unrecognized XCLAIM option '{}'",
                    text(o)
                )));
            }
            j += 1;
        }
        if last_id > g.last_id {
            g.last_id = last_id;
        }
        let delivery = match delivery {
            Some(d) if d >= 0 && d <= now => d,
            _ => now,
        };
        let created = seen_consumer(t, &group, &mut g, &name, now)?;
        let mut out = Vec::new();
        for id in ids {
            let old = t.pending_entry(&group, id)?;
            let Some(fields) = t.entry(id)? else {
                if let Some(pe) = old {
                    release(t, &group, &mut g, id, &pe)?;
                }
                continue;
            };
            let forced = old.is_none() && force;
            if old.is_none() && !forced {
                continue;
            }
            if let (Some(pe), false) = (&old, forced) {
                if min_idle > 0 && now.saturating_sub(pe.delivered_at) < min_idle {
                    continue;
                }
            }
            let deliveries = old.as_ref().map_or(1, |p| p.deliveries);
            let deliveries = match retry {
                Some(r) if r >= 0 => r as u64,
                _ if !justid => deliveries + 1,
                _ => deliveries,
            };
            let pe = PendingEntry {
                delivered_at: delivery,
                deliveries,
                consumer: name.to_vec(),
            };
            assign(t, &group, &mut g, id, old, pe)?;
            out.push(if justid {
                id_reply(id)
            } else {
                entry_reply(id, fields)
            });
            edit_consumer(t, &group, &name, |c| c.active_time = Some(now))?;
        }
        t.put_group(&group, &g);
        Ok((Reply::Array(out), created))
    })?;
    if created {
        ctx.client
            .events
            .push((STREAM, "xgroup-createconsumer", key));
    }
    Ok(reply)
}

pub fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let min_idle = int_msg(&args[4], "Invalid min-idle-time argument for XAUTOCLAIM")?.max(0);
    let start = range_start(&args[5])?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            let max = i64::MAX / 16;
            count = parse_i64(&args[j + 1])
                .filter(|c| (1..=max).contains(c))
                .ok_or_else(|| CmdError::err("COUNT must be > 0"))?;
            j += 1;
        } else if is(&args[j], "justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let (key, group, name) = (args[1].clone(), args[2].clone(), args[3].clone());
    let (reply, created) = write(ctx, &key, |t| {
        let Some(mut g) = (if t.exists() { t.group(&group)? } else { None }) else {
            return Err(nogroup_in(&key, &group));
        };
        let now = now_ms();
        let created = seen_consumer(t, &group, &mut g, &name, now)?;
        let mut attempts = count.saturating_mul(10);
        let mut left = count;
        // Walk the pending list from `start`: one more than can be used, for the cursor.
        let mut seen: Vec<(StreamId, PendingEntry)> = Vec::new();
        let budget = attempts.min(left.saturating_mul(10)) as usize + 1;
        t.pending_range(&group, start, StreamId::MAX, false, &mut |id, pe| {
            seen.push((id, pe));
            seen.len() < budget
        })?;
        let mut claimed = Vec::new();
        let mut deleted = Vec::new();
        let mut next = StreamId::MIN;
        let mut it = seen.into_iter();
        loop {
            if attempts == 0 || left == 0 {
                next = it.next().map_or(StreamId::MIN, |(id, _)| id);
                break;
            }
            attempts -= 1;
            let Some((id, pe)) = it.next() else { break };
            let Some(fields) = t.entry(id)? else {
                release(t, &group, &mut g, id, &pe)?;
                deleted.push(id_reply(id));
                left -= 1;
                continue;
            };
            if min_idle > 0 && now.saturating_sub(pe.delivered_at) < min_idle {
                continue;
            }
            let new = PendingEntry {
                delivered_at: now,
                deliveries: pe.deliveries + (!justid) as u64,
                consumer: name.to_vec(),
            };
            assign(t, &group, &mut g, id, Some(pe), new)?;
            claimed.push(if justid {
                id_reply(id)
            } else {
                entry_reply(id, fields)
            });
            left -= 1;
            edit_consumer(t, &group, &name, |c| c.active_time = Some(now))?;
        }
        t.put_group(&group, &g);
        let reply = Reply::Array(vec![
            id_reply(next),
            Reply::Array(claimed),
            Reply::Array(deleted),
        ]);
        Ok((reply, created))
    })?;
    if created {
        ctx.client
            .events
            .push((STREAM, "xgroup-createconsumer", key));
    }
    Ok(reply)
}

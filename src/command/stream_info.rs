//! Stream introspection: XPENDING (summary and extended) and XINFO (STREAM [FULL], GROUPS,
//! CONSUMERS), with Valkey's field names, order and nil kinds.
//!
//! Must not: change anything (the group commands in `stream_groups` do).

use bytes::Bytes;

use super::args::{int, is};
use super::stream_groups::{lag, nogroup_for, nogroup_in, opt_int, sub_syntax, text};
use super::streams::{entries_reply, entry_reply, id_reply, range_end, range_start, read};
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::{now_ms, Group, GroupRead, StreamId, StreamRead};
use crate::resp::Reply;

pub fn xpending(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let summary = args.len() == 3;
    if !summary && !(6..=9).contains(&args.len()) {
        return Err(CmdError::Syntax);
    }
    let mut range = None;
    if !summary {
        let mut at = 3;
        let mut min_idle = 0;
        if is(&args[3], "idle") {
            min_idle = int(&args[4])?;
            if args.len() < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = int(&args[at + 2])?.max(0) as usize;
        let start = range_start(&args[at])?;
        let end = range_end(&args[at + 1])?;
        let consumer = args.get(at + 3).cloned();
        range = Some((min_idle, start, end, count, consumer));
    }
    let (key, group) = (&args[1], &args[2]);
    read(ctx, key, |s| {
        let g = match s {
            Some(s) => s.group(group)?.map(|g| (s, g)),
            None => None,
        };
        let Some((s, g)) = g else {
            return Err(nogroup_in(key, group));
        };
        let now = now_ms();
        let Some((min_idle, start, end, count, consumer)) = range else {
            return pending_summary(s, group, &g);
        };
        if let Some(c) = &consumer {
            if s.consumer(group, c)?.is_none() {
                return Ok(Reply::Array(Vec::new()));
            }
        }
        let mut out = Vec::new();
        if count == 0 {
            return Ok(Reply::Array(out));
        }
        s.pending_range(group, start, end, false, &mut |id, pe| {
            if consumer.as_ref().is_some_and(|c| pe.consumer != *c) {
                return true;
            }
            let idle = now.saturating_sub(pe.delivered_at).max(0);
            if min_idle != 0 && now.saturating_sub(pe.delivered_at) < min_idle {
                return true;
            }
            out.push(Reply::Array(vec![
                id_reply(id),
                Reply::Bulk(Bytes::from(pe.consumer)),
                Reply::Int(idle),
                Reply::Int(pe.deliveries as i64),
            ]));
            out.len() < count
        })?;
        Ok(Reply::Array(out))
    })
}

fn pending_summary(s: &dyn StreamRead, group: &[u8], g: &Group) -> Result<Reply, CmdError> {
    if g.pending == 0 {
        return Ok(Reply::Array(vec![
            Reply::Int(0),
            Reply::Nil,
            Reply::Nil,
            Reply::NilArray,
        ]));
    }
    let (mut first, mut last) = (None, None);
    s.pending_range(group, StreamId::MIN, StreamId::MAX, false, &mut |id, _| {
        first = Some(id);
        false
    })?;
    s.pending_range(group, StreamId::MIN, StreamId::MAX, true, &mut |id, _| {
        last = Some(id);
        false
    })?;
    let consumers = s
        .consumers(group)?
        .into_iter()
        .filter(|(_, c)| c.pending > 0)
        .map(|(name, c)| {
            Reply::Array(vec![
                Reply::Bulk(Bytes::from(name)),
                Reply::Bulk(Bytes::from(c.pending.to_string())),
            ])
        })
        .collect();
    Ok(Reply::Array(vec![
        Reply::Int(g.pending as i64),
        first.map_or(Reply::Nil, id_reply),
        last.map_or(Reply::Nil, id_reply),
        Reply::Array(consumers),
    ]))
}

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Print this help.",
];

fn kv(k: &str, v: Reply) -> (Reply, Reply) {
    (Reply::bulk_str(k), v)
}

pub fn xinfo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if !["consumers", "groups", "stream", "help"]
        .iter()
        .any(|k| is(sub, k))
    {
        return Err(CmdError::UnknownSubcommand(text(sub), "XINFO".into()));
    }
    if is(sub, "help") {
        return Ok(Reply::Array(
            XINFO_HELP
                .iter()
                .map(|l| Reply::StatusOwned(l.to_string()))
                .collect(),
        ));
    }
    let key = &args[2];
    read(ctx, key, |s| {
        let Some(s) = s else {
            return Err(CmdError::NoSuchKey);
        };
        let now = now_ms();
        if is(sub, "consumers") && args.len() == 4 {
            let group = &args[3];
            if s.group(group)?.is_none() {
                return Err(nogroup_for(key, group));
            }
            let list = s
                .consumers(group)?
                .into_iter()
                .map(|(name, c)| {
                    Reply::Map(vec![
                        kv("name", Reply::Bulk(Bytes::from(name))),
                        kv("pending", Reply::Int(c.pending as i64)),
                        kv("idle", Reply::Int(now.saturating_sub(c.seen_time).max(0))),
                        kv(
                            "inactive",
                            Reply::Int(c.active_time.map_or(-1, |a| now.saturating_sub(a))),
                        ),
                    ])
                })
                .collect();
            return Ok(Reply::Array(list));
        }
        if is(sub, "groups") && args.len() == 3 {
            let m = s.meta();
            let list = s
                .groups()?
                .into_iter()
                .map(|(name, g)| {
                    Reply::Map(vec![
                        kv("name", Reply::Bulk(Bytes::from(name))),
                        kv("consumers", Reply::Int(g.consumers as i64)),
                        kv("pending", Reply::Int(g.pending as i64)),
                        kv("last-delivered-id", id_reply(g.last_id)),
                        kv("entries-read", opt_int(g.entries_read)),
                        kv("lag", lag(m, &g).map_or(Reply::Nil, Reply::Int)),
                    ])
                })
                .collect();
            return Ok(Reply::Array(list));
        }
        if is(sub, "stream") {
            return stream_info(s, &args[3..]).map_err(|e| match e {
                CmdError::Syntax => sub_syntax(args, "XINFO"),
                e => e,
            });
        }
        Err(sub_syntax(args, "XINFO"))
    })
}

fn stream_info(s: &dyn StreamRead, opts: &[Bytes]) -> Result<Reply, CmdError> {
    let mut count: i64 = 10;
    let full = !opts.is_empty();
    if full {
        if !is(&opts[0], "full") {
            return Err(CmdError::Syntax);
        }
        if opts.len() > 1 {
            if opts.len() != 3 || !is(&opts[1], "count") {
                return Err(CmdError::Syntax);
            }
            count = int(&opts[2])?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let m = s.meta();
    let mut nodes = 0i64;
    s.scan(&[4], &[5], false, &mut |_, _| {
        nodes += 1;
        true
    })?;
    let mut out = vec![
        kv("length", Reply::Int(m.len as i64)),
        kv("radix-tree-keys", Reply::Int(nodes)),
        kv("radix-tree-nodes", Reply::Int(nodes + 1)),
        kv("last-generated-id", id_reply(m.last_id)),
        kv("max-deleted-entry-id", id_reply(m.max_deleted)),
        kv("entries-added", Reply::Int(m.entries_added as i64)),
        kv("recorded-first-entry-id", id_reply(m.first_id)),
    ];
    if !full {
        out.push(kv("groups", Reply::Int(m.groups as i64)));
        let edge = |rev| -> Result<Reply, CmdError> {
            Ok(s.range(StreamId::MIN, StreamId::MAX, rev, Some(1))?
                .pop()
                .map_or(Reply::Nil, |(id, f)| entry_reply(id, f)))
        };
        out.push(kv("first-entry", edge(false)?));
        out.push(kv("last-entry", edge(true)?));
        return Ok(Reply::Map(out));
    }
    let limit = (count > 0).then_some(count as usize);
    let entries = s.range(StreamId::MIN, StreamId::MAX, false, limit)?;
    out.push(kv("entries", entries_reply(entries)));
    let mut groups = Vec::new();
    for (name, g) in s.groups()? {
        let mut pel = Vec::new();
        s.pending_range(&name, StreamId::MIN, StreamId::MAX, false, &mut |id, pe| {
            pel.push((id, pe));
            true
        })?;
        let cap = |n: usize| limit.map_or(n, |l| n.min(l));
        let group_pel = pel[..cap(pel.len())]
            .iter()
            .map(|(id, pe)| {
                Reply::Array(vec![
                    id_reply(*id),
                    Reply::Bulk(Bytes::from(pe.consumer.clone())),
                    Reply::Int(pe.delivered_at),
                    Reply::Int(pe.deliveries as i64),
                ])
            })
            .collect();
        let consumers = s
            .consumers(&name)?
            .into_iter()
            .map(|(cname, c)| {
                let own: Vec<Reply> = pel
                    .iter()
                    .filter(|(_, pe)| pe.consumer == cname)
                    .take(limit.unwrap_or(usize::MAX))
                    .map(|(id, pe)| {
                        Reply::Array(vec![
                            id_reply(*id),
                            Reply::Int(pe.delivered_at),
                            Reply::Int(pe.deliveries as i64),
                        ])
                    })
                    .collect();
                Reply::Map(vec![
                    kv("name", Reply::Bulk(Bytes::from(cname))),
                    kv("seen-time", Reply::Int(c.seen_time)),
                    kv("active-time", Reply::Int(c.active_time.unwrap_or(-1))),
                    kv("pel-count", Reply::Int(c.pending as i64)),
                    kv("pending", Reply::Array(own)),
                ])
            })
            .collect();
        groups.push(Reply::Map(vec![
            kv("name", Reply::Bulk(Bytes::from(name.clone()))),
            kv("last-delivered-id", id_reply(g.last_id)),
            kv("entries-read", opt_int(g.entries_read)),
            kv("lag", lag(m, &g).map_or(Reply::Nil, Reply::Int)),
            kv("pel-count", Reply::Int(g.pending as i64)),
            kv("pending", Reply::Array(group_pel)),
            kv("consumers", Reply::Array(consumers)),
        ]));
    }
    out.push(kv("groups", Reply::Array(groups)));
    Ok(Reply::Map(out))
}

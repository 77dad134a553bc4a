//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB and MONITOR
//! (whose lines travel through the same queue), with
//! Valkey's replies (one push per channel; `unsubscribe` with a nil channel when there was
//! nothing to leave). In cluster mode PUBLISH is forwarded to every node and SPUBLISH to the
//! nodes of this shard over the cluster bus.
//!
//! Must not: deliver to sockets; the registry queues messages and connections write them.

use bytes::Bytes;

use super::args::is;
use super::{CmdError, CmdResult, Ctx};
use crate::node::pubsub::{Space, Subscriptions};
use crate::resp::Reply;

fn confirm(kind: &str, name: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk_str(kind),
        name.map_or(Reply::Nil, Reply::Bulk),
        Reply::Int(count as i64),
    ])
}

/// Mirrors the counts into the client's handle for CLIENT LIST.
fn publish_counts(ctx: &Ctx) {
    if let Some(s) = &ctx.client.pubsub {
        *ctx.client.handle.subscriptions.lock() = s.counts();
    }
}

fn count(subs: &Subscriptions, space: Space) -> usize {
    match space {
        Space::Shard => subs.shard.len(),
        _ => subs.count(),
    }
}

fn subscribe_generic(ctx: &mut Ctx, args: &[Bytes], space: Space, kind: &str) -> CmdResult {
    let handle = std::sync::Arc::clone(&ctx.client.handle);
    let subs = ctx
        .node
        .pubsub
        .open(&mut ctx.client.pubsub, &ctx.client.handle);
    let mut out = Vec::with_capacity(args.len() - 1);
    for name in &args[1..] {
        ctx.node.pubsub.subscribe(subs, &handle, space, name);
        out.push(confirm(kind, Some(name.clone()), count(subs, space)));
    }
    publish_counts(ctx);
    Ok(Reply::Multi(out))
}

fn unsubscribe_generic(ctx: &mut Ctx, args: &[Bytes], space: Space, kind: &str) -> CmdResult {
    let id = ctx.client.id();
    let subs = ctx
        .node
        .pubsub
        .open(&mut ctx.client.pubsub, &ctx.client.handle);
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        subs.names(space).iter().cloned().collect()
    };
    if names.is_empty() {
        return Ok(confirm(kind, None, count(subs, space)));
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        ctx.node.pubsub.unsubscribe(subs, id, space, &name);
        out.push(confirm(kind, Some(name), count(subs, space)));
    }
    publish_counts(ctx);
    Ok(Reply::Multi(out))
}

pub fn subscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, args, Space::Channel, "subscribe")
}
pub fn psubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, args, Space::Pattern, "psubscribe")
}
pub fn ssubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, args, Space::Shard, "ssubscribe")
}
pub fn unsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, args, Space::Channel, "unsubscribe")
}
pub fn punsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, args, Space::Pattern, "punsubscribe")
}
pub fn sunsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, args, Space::Shard, "sunsubscribe")
}

/// PUBLISH channel message: the number of clients on this node that received it (Valkey
/// counts local receivers in cluster mode too).
pub fn publish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = ctx.node.pubsub.publish(&args[1], &args[2]);
    if let Some(cl) = &ctx.node.cluster {
        cl.forward_publish(args[1].clone(), args[2].clone(), false);
    }
    Ok(Reply::Int(n as i64))
}

pub fn spublish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = ctx.node.pubsub.publish_shard(&args[1], &args[2]);
    if let Some(cl) = &ctx.node.cluster {
        cl.forward_publish(args[1].clone(), args[2].clone(), true);
    }
    Ok(Reply::Int(n as i64))
}

/// PUBSUB CHANNELS|NUMSUB|NUMPAT|SHARDCHANNELS|SHARDNUMSUB (this node's subscribers).
pub fn pubsub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let ps = &ctx.node.pubsub;
    let sub = &args[1];
    let listing = |space| {
        if args.len() > 3 {
            return Err(wrong_arity(sub));
        }
        let names = ps.names(space, args.get(2).map(|p| &p[..]));
        Ok(Reply::Array(names.into_iter().map(Reply::Bulk).collect()))
    };
    let numsub = |space| {
        let mut out = Vec::new();
        for ch in &args[2..] {
            out.push(Reply::Bulk(ch.clone()));
            out.push(Reply::Int(ps.count(space, ch) as i64));
        }
        Ok(Reply::Array(out))
    };
    if is(sub, "channels") {
        listing(Space::Channel)
    } else if is(sub, "shardchannels") {
        listing(Space::Shard)
    } else if is(sub, "numsub") {
        numsub(Space::Channel)
    } else if is(sub, "shardnumsub") {
        numsub(Space::Shard)
    } else if is(sub, "numpat") {
        if args.len() != 2 {
            return Err(wrong_arity(sub));
        }
        Ok(Reply::Int(ps.pattern_count() as i64))
    } else {
        Err(CmdError::UnknownSubcommand(
            super::args::text(sub),
            "PUBSUB".into(),
        ))
    }
}

fn wrong_arity(sub: &[u8]) -> CmdError {
    CmdError::WrongArity(format!("pubsub|{}", super::args::text(sub).to_lowercase()))
}

/// MONITOR: from now on the connection receives a line for every command the node runs.
pub fn monitor(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.client.in_exec {
        return Err(CmdError::err(
            "MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    let subs = ctx
        .node
        .pubsub
        .open(&mut ctx.client.pubsub, &ctx.client.handle);
    subs.monitor = true;
    ctx.node.pubsub.add_monitor(subs, &ctx.client.handle);
    Ok(Reply::OK)
}

/// Feeds a command to MONITOR clients as Valkey formats it:
/// `<unix>.<micros> [0 <peer>|lua] "arg" ...`, secrets redacted.
pub(super) fn feed_monitors(ctx: &Ctx, args: &[Bytes]) {
    let node = ctx.node;
    if !node.pubsub.monitored() {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let origin = if ctx.client.in_script {
        "lua".to_string()
    } else {
        ctx.client.handle.addr.to_string()
    };
    let mut line = format!("{}.{:06} [0 {origin}]", now.as_secs(), now.subsec_micros());
    for a in crate::node::commandlog::redacted(args) {
        line.push(' ');
        line.push_str(&crate::resp::repr(&a));
    }
    node.pubsub.feed_monitors(Bytes::from(line));
}

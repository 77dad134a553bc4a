//! Replication commands: ROLE, WAIT, WAITAOF, REPLICAOF/SLAVEOF.

use std::time::Duration;

use bytes::Bytes;

use super::args::{int, is, text};
use super::After;
use super::{CmdError, CmdResult, Ctx};
use crate::resp::Reply;

/// `(host, port)` of this node's primary, if it is a replica.
pub fn primary_of(ctx: &Ctx) -> Option<(String, u16)> {
    ctx.node.replica_of()
}

pub fn role(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let r = &ctx.node.replication;
    let offset = r.backlog.position().offset as i64;
    Ok(match primary_of(ctx) {
        Some((host, port)) => {
            let up = r.upstream.lock().clone().unwrap_or_default();
            let state = if up.syncing {
                "sync"
            } else if up.link_up {
                "connected"
            } else {
                "connect"
            };
            Reply::Array(vec![
                Reply::bulk_str("slave"),
                Reply::bulk(host),
                Reply::Int(port as i64),
                Reply::bulk_str(state),
                Reply::Int(offset),
            ])
        }
        None => Reply::Array(vec![
            Reply::bulk_str("master"),
            Reply::Int(offset),
            Reply::Array(
                r.links()
                    .into_iter()
                    .filter(|l| l.online)
                    .map(|l| {
                        Reply::bulks([
                            Bytes::from(l.ip),
                            Bytes::from(l.port.to_string()),
                            Bytes::from(l.ack.to_string()),
                        ])
                    })
                    .collect(),
            ),
        ]),
    })
}

fn timeout_arg(b: &[u8]) -> Result<Option<Duration>, CmdError> {
    let t = int(b).map_err(|_| CmdError::err("timeout is not an integer or out of range"))?;
    if t < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    Ok((t > 0).then(|| Duration::from_millis(t as u64)))
}

pub fn wait(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if primary_of(ctx).is_some() {
        return Err(CmdError::err("WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."));
    }
    let n = int(&args[1])?.max(0) as usize;
    let timeout = timeout_arg(&args[2])?;
    let offset = ctx.node.replication.backlog.position().offset;
    ctx.client.after = Some(After::Wait {
        replicas: n,
        offset,
        timeout,
        aof: None,
    });
    Ok(Reply::Raw(Bytes::new()))
}

pub fn waitaof(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let local = int(&args[1])?;
    let n = int(&args[2])?.max(0) as usize;
    let timeout = timeout_arg(&args[3])?;
    if local < 0 {
        return Err(CmdError::NotInteger);
    }
    if primary_of(ctx).is_some() && n > 0 {
        return Err(CmdError::err("WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated."));
    }
    // The WAL is the AOF: make everything written so far durable before counting.
    ctx.node.engine.sync_wal()?;
    let offset = ctx.node.replication.backlog.position().offset;
    ctx.client.after = Some(After::Wait {
        replicas: n,
        offset,
        timeout,
        aof: Some(1),
    });
    Ok(Reply::Raw(Bytes::new()))
}

pub fn replicaof(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.node.cluster.is_some() {
        return Err(CmdError::err("REPLICAOF not allowed in cluster mode."));
    }
    if is(&args[1], "no") && is(&args[2], "one") {
        ctx.node.config.update(|c| c.replicaof = None);
        ctx.node.repl.ensure_primary();
        return Ok(Reply::OK);
    }
    let port = super::args::parse_i64(&args[2])
        .filter(|p| (1..=55535).contains(p))
        .ok_or_else(|| CmdError::err("Invalid master port"))? as u16;
    let host = text(&args[1]);
    if host.parse::<std::net::IpAddr>().is_err() && host != "localhost" {
        return Err(CmdError::err("Invalid master host"));
    }
    let host = if host == "localhost" {
        "127.0.0.1".to_string()
    } else {
        host
    };
    if host == ctx.client.handle.laddr.ip().to_string() && port == ctx.node.tcp_port {
        return Err(CmdError::err("Can't replicate myself"));
    }
    ctx.node.config.update(|c| c.replicaof = Some((host, port)));
    Ok(Reply::OK)
}

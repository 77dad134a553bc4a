//! Dispatch of one request: the order of checks follows Valkey's `processCommand`
//! (existence, arity, authentication, transaction queueing, subscribed-mode rules, cluster
//! redirection, replica and min-replicas rules), then the handler runs.
//!
//! Must not: touch the socket; the connection writes the reply and acts on `After`.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{After, ClientState, CmdError, CmdFlags, CommandSpec, Ctx};
use crate::cluster::{route, Access};
use crate::keyspace::{key_slot, Pending};
use crate::node::commandlog::{Caller, LogKind};
use crate::node::Node;
use crate::resp::Reply;

/// Resolves, checks and runs one command (see the module doc for the order of checks). An
/// error from a check counts as a rejected call of the command (INFO commandstats) and, like
/// every error reply, in INFO errorstats.
pub fn dispatch(
    shared: &Node,
    client: &mut ClientState,
    ks: &mut Pending,
    args: &[Bytes],
) -> Result<Reply, crate::keyspace::KeyspaceError> {
    let before = client.executed;
    let reply = checked(shared, client, ks, args)?;
    if let Reply::Error(e) = &reply {
        if client.executed == before {
            super::stats::record_error(e);
            let spec = super::resolve(args)
                .ok()
                .or_else(|| args.first().and_then(|a| super::lookup(a)));
            if let Some(s) = spec.and_then(super::stats::of) {
                s.rejected();
            }
        }
    }
    Ok(reply)
}

fn checked(
    shared: &Node,
    client: &mut ClientState,
    ks: &mut Pending,
    args: &[Bytes],
) -> Result<Reply, crate::keyspace::KeyspaceError> {
    shared
        .stats
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    let spec = match super::resolve(args) {
        Ok(s) => s,
        Err(e) => {
            if client.multi.is_some() {
                client.multi_failed = true;
            }
            return Ok(error_reply(shared, e));
        }
    };
    client.handle.touch(spec.name);
    // EXEC refused before it runs discards the transaction, naming why (Valkey's
    // execCommandAbort).
    let refuse = |client: &mut ClientState, line: String| {
        if spec.name == "exec" {
            client.multi = None;
            client.multi_failed = false;
            client.watched.clear();
            return CmdError::Line(format!(
                "EXECABORT Transaction discarded because of: {line}"
            ));
        }
        if client.multi.is_some() {
            client.multi_failed = true;
        }
        CmdError::Line(line)
    };
    if !client.authenticated && !spec.has_flag(CmdFlags::NO_AUTH) {
        let e = refuse(client, CmdError::NoAuth.to_string());
        return Ok(error_reply(shared, e));
    }
    let write = writes(shared, spec, args);
    // A container resolved for an unknown subcommand answers that error itself, first.
    let unknown_sub = !spec.subcommands.is_empty() && args.len() > 1;
    if !spec.has_flag(CmdFlags::NO_AUTH) && !unknown_sub {
        let context = if client.multi.is_some() {
            "multi"
        } else {
            "toplevel"
        };
        if let Err(d) = super::acl_cmds::check(shared, client, spec, args, write, context) {
            let e = refuse(client, d.line(&client.session.name));
            return Ok(error_reply(shared, e));
        }
    }
    if !spec.has_flag(CmdFlags::ALLOW_BUSY) {
        if let Some(ms) = shared.scripts.busy_ms() {
            if ms >= shared.config.snapshot().busy_reply_threshold_ms {
                return Ok(error_reply(
                    shared,
                    CmdError::Line(shared.scripts.busy_line().into()),
                ));
            }
        }
    }
    match spec.name {
        "multi" | "exec" | "discard" => {
            let started = std::time::Instant::now();
            let reply = super::transaction::run(shared, client, ks, spec.name);
            let ctx = Ctx {
                node: shared,
                client,
                ks,
            };
            super::pubsub_cmds::feed_monitors(&ctx, args);
            if spec.name != "exec" {
                let usec = started.elapsed().as_micros() as u64;
                log_command(shared, client, args, LogKind::Slow, usec);
                log_command(
                    shared,
                    client,
                    args,
                    LogKind::LargeRequest,
                    request_bytes(args),
                );
            }
            return reply;
        }
        _ => {}
    }
    if client.protocol == crate::resp::Protocol::Resp2
        && client.pubsub.as_ref().is_some_and(|s| !s.is_empty())
        && !matches!(
            spec.name,
            "subscribe"
                | "ssubscribe"
                | "sunsubscribe"
                | "psubscribe"
                | "unsubscribe"
                | "punsubscribe"
                | "ping"
                | "quit"
                | "reset"
        )
    {
        return Ok(error_reply(
            shared,
            CmdError::err(format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                spec.name
            )),
        ));
    }
    let asking = std::mem::take(&mut client.asking);
    match redirect(shared, client, ks, spec, args, asking, write) {
        Ok(()) => {}
        Err(Redirect::Refuse(e)) => {
            if client.multi.is_some() {
                client.multi_failed = true;
            }
            return Ok(error_reply(shared, CmdError::Line(e)));
        }
        Err(Redirect::Park) => {
            let since = client
                .parked_since
                .get_or_insert_with(std::time::Instant::now);
            if since.elapsed() < PARK_LIMIT {
                client.asking = asking;
                client.parked = Some((args.to_vec(), *since));
                client.after = Some(After::Park);
                return Ok(Reply::Raw(bytes::Bytes::new()));
            }
            client.parked_since = None;
            return Ok(error_reply(
                shared,
                CmdError::Line("TRYAGAIN slot migration in progress".into()),
            ));
        }
    }
    client.parked_since = None;
    if write || spec.name == "ping" {
        // As Valkey after a failed AOF write or fsync: writes (and PING) are refused. RocksDB
        // keeps its WAL writer failed, so this lasts until a restart.
        if let Some(reason) = shared.engine.write_error() {
            if client.multi.is_some() {
                client.multi_failed = true;
            }
            return Ok(error_reply(
                shared,
                CmdError::Line(super::disk_error_line(&reason)),
            ));
        }
    }
    if write {
        if shared.is_replica() {
            return Ok(error_reply(
                shared,
                CmdError::Line("READONLY You can't write against a read only replica.".into()),
            ));
        }
        if shared.keyspace.is_read_only() {
            // The view made this node a primary before the replica task took over the stream.
            shared.repl.ensure_primary();
        }
        let c = shared.config.snapshot();
        if c.min_replicas_to_write > 0 {
            let lag = std::time::Duration::from_secs(c.min_replicas_max_lag as u64);
            if shared.replication.good_replicas(lag) < c.min_replicas_to_write as usize {
                return Ok(error_reply(
                    shared,
                    CmdError::Line("NOREPLICAS Not enough good replicas to write.".into()),
                ));
            }
        }
    }
    if let Some(q) = client.multi.as_mut() {
        if matches!(spec.name, "watch" | "quit" | "reset") {
            // Not queued, as in Valkey.
        } else {
            q.push(args.to_vec());
            return Ok(Reply::Status("QUEUED"));
        }
    }
    // Commands without keys (DBSIZE, SCAN, FLUSHALL, CLUSTER ...) see the keyspace as a
    // whole, so the scope's staged writes are published first.
    if !spec.takes_keys() {
        ks.commit()?;
    }
    Ok(execute(shared, client, ks, spec, args))
}

pub(super) fn execute(
    shared: &Node,
    client: &mut ClientState,
    ks: &mut Pending,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Reply {
    let mut ctx = Ctx {
        node: shared,
        client,
        ks,
    };
    // Scripts show before the commands they run; other commands once they ran (admin
    // commands never), as Valkey feeds MONITOR.
    let script = matches!(
        spec.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    );
    if script {
        super::pubsub_cmds::feed_monitors(&ctx, args);
    }
    // Keyspace notifications: which keys existed, then which ones the command wrote.
    // Keyspace notifications and CLIENT TRACKING watch which keys a command wrote.
    let notify = shared.notify.flags(&shared.config);
    let tracking = shared.tracking.any();
    let watching = (notify.any() || tracking) && spec.takes_keys() && !script;
    // Read once: notifications, tracking, access times, slot stats and blocked clients all
    // go by the command's keys.
    let keys = spec.key_positions(args);
    let mut misses = None;
    let (before, ahead) = if watching {
        ctx.ks.select(ctx.client.db);
        let (before, ahead) = if notify.any() {
            let before = if spec.is_write() {
                super::notify::existence(&mut ctx, args, &keys)
            } else {
                vec![true; keys.len()]
            };
            if notify.wants(crate::config::KeyspaceEvents::KEY_MISS) {
                let read_only = spec.has_flag(CmdFlags::READONLY);
                misses = Some(super::keymiss::ahead(
                    &ctx, spec.name, args, &keys, read_only,
                ));
            }
            (
                before,
                super::notify::expired_ahead(&mut ctx, spec.name, args, &keys),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        ctx.ks.record_writes();
        (before, ahead)
    } else {
        (Vec::new(), Vec::new())
    };
    let touch = if script {
        None
    } else {
        super::key_access::before(&mut ctx, spec, args, &keys)
    };
    let started = std::time::Instant::now();
    ctx.client.events.clear();
    let reply = super::execute(spec, &mut ctx, args);
    if let Some(touch) = touch {
        super::key_access::after(&mut ctx, touch, args, &keys, &reply);
    }
    if watching {
        // Keys Valkey's lookups would have expired are expired now, noted with the command's
        // own expiries so all are announced in key order.
        if notify.any() && super::keymiss::looked_up(&reply) {
            super::notify::expire_left(&mut ctx, args, &ahead, &reply);
        }
        let mut written = ctx.ks.take_written();
        if tracking {
            let changed: Vec<Bytes> = written
                .keys
                .iter()
                .chain(&written.expired)
                .map(|(_, k)| Bytes::copy_from_slice(k))
                .collect();
            if !changed.is_empty() {
                shared
                    .tracking
                    .invalidate(&shared.pubsub, &changed, ctx.client.id());
            }
        }
        if notify.any() {
            if let Some(misses) = &misses {
                super::keymiss::announce(
                    &mut ctx,
                    notify,
                    spec.name,
                    args,
                    misses,
                    &reply,
                    &mut written.expired,
                );
            }
            if !written.keys.is_empty() || !written.expired.is_empty() {
                super::notify::command_ran(
                    &mut ctx, notify, spec.name, args, &keys, &before, written,
                );
            }
        }
    }
    if ctx.client.tracking.is_some() {
        let read_only = spec.has_flag(CmdFlags::READONLY);
        // A script's keys are tracked by the commands it runs.
        let keys = if watching { &keys[..] } else { &[] };
        super::tracking_cmds::command_ran(&mut ctx, read_only, keys, args);
    }
    ctx.client.executed += 1;
    if !script && !spec.has_flag(CmdFlags::ADMIN) {
        super::pubsub_cmds::feed_monitors(&ctx, args);
    }
    let usec = started.elapsed().as_micros() as u64;
    if !ctx.client.in_script {
        let fast = spec.has_flag(CmdFlags::FAST);
        shared.latency.command_ran(&shared.config, usec, fast);
    }
    if let Some(s) = super::stats::of(spec) {
        s.ran(usec, reply.is_error());
    }
    let request = request_bytes(args);
    // EXEC's commands are logged one by one (a script's too, as in Valkey).
    if spec.name != "exec" {
        log_command(shared, ctx.client, args, LogKind::Slow, usec);
        log_command(shared, ctx.client, args, LogKind::LargeRequest, request);
    }
    if shared.slot_stats.enabled(&shared.config) && !ctx.client.in_script {
        if let Some(slot) = keys.first().map(|&p| key_slot(&args[p])) {
            shared.slot_stats.ran(slot, usec, request);
        }
    }
    if let Reply::Error(e) = &reply {
        shared.stats.error_replies.fetch_add(1, Ordering::Relaxed);
        super::stats::record_error(e);
    } else if spec.is_write() && !matches!(ctx.client.after, Some(After::Block { .. })) {
        // A command that blocks wrote nothing: noting its keys would wake it at once.
        ctx.client.wrote = true;
        // Always noted (not only while someone is blocked): a client that blocks while this
        // scope is still uncommitted must be woken by its commit.
        for &p in &keys {
            ctx.client.touched.push(args[p].clone());
        }
    }
    reply
}

/// Whether this call writes: FCALL of a function without `no-writes` does (Valkey derives
/// FCALL's flags from the function's), other commands as their table row says.
pub(super) fn writes(shared: &Node, spec: &CommandSpec, args: &[Bytes]) -> bool {
    match spec.name {
        "fcall" => args
            .get(1)
            .and_then(|f| shared.scripts.function_flags(f))
            .is_some_and(|f| !f.no_writes),
        _ => spec.is_write(),
    }
}

/// Why a command does not run now.
enum Redirect {
    /// An error reply (MOVED, ASK, CROSSSLOT, TRYAGAIN, CLUSTERDOWN, ...).
    Refuse(String),
    /// A write to a slot whose handover is in progress: run it again once the pause ends.
    Park,
}

/// How long a write waits for a slot handover before it gets TRYAGAIN.
const PARK_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The cluster redirection for a command with keys, if it must not run here.
fn redirect(
    shared: &Node,
    client: &ClientState,
    ks: &Pending,
    spec: &'static CommandSpec,
    args: &[Bytes],
    asking: bool,
    write: bool,
) -> Result<(), Redirect> {
    let Some(cluster) = shared.cluster.as_ref() else {
        return Ok(());
    };
    let pos = spec.key_positions(args);
    if pos.is_empty() {
        if !write {
            return Ok(());
        }
        return write_paused(&cluster.view(), write).map_or(Ok(()), |e| Err(Redirect::Refuse(e)));
    }
    let slots: Vec<u16> = pos.iter().map(|&p| key_slot(&args[p])).collect();
    let view = cluster.view();
    let missing = || {
        let absent = pos
            .iter()
            .filter(|&&p| !matches!(ks.peek(&args[p]), Ok(Some(_))))
            .count();
        (absent, pos.len())
    };
    let asking = asking || spec.has_flag(CmdFlags::ASKING);
    // MIGRATE runs where the keys are while a slot is open, whoever the owner is (Valkey).
    if spec.name == "migrate"
        && slots
            .iter()
            .all(|s| view.migrating.contains_key(s) || view.importing.contains_key(s))
    {
        return Ok(());
    }
    // Shard channels are served by every node of the shard, as Valkey does.
    let readonly = client.readonly || spec.has_flag(CmdFlags::PUBSUB);
    if let Some(e) = route(
        &view,
        &slots,
        Access {
            write,
            asking,
            readonly_client: readonly,
            tls: client.tls,
        },
        missing,
    )
    .error()
    .or_else(|| write_paused(&view, write))
    {
        return Err(Redirect::Refuse(e));
    }
    if write && slots.iter().any(|s| shared.keyspace.write_paused(*s)) {
        if client.multi.is_some() {
            return Err(Redirect::Refuse(
                "TRYAGAIN slot migration in progress".into(),
            ));
        }
        return Err(Redirect::Park);
    }
    Ok(())
}

/// During a manual failover the primary refuses writes (clients retry TRYAGAIN) until its
/// replica has taken over, after which the slots answer MOVED: no write lands on the old
/// primary after the offset the replica catches up with.
pub(super) fn write_paused(view: &crate::cluster::View, write: bool) -> Option<String> {
    (write && view.writes_paused_until > crate::cluster::now_ms())
        .then(|| "TRYAGAIN manual failover in progress".to_string())
}

pub(super) fn error_reply(shared: &Node, e: CmdError) -> Reply {
    shared.stats.error_replies.fetch_add(1, Ordering::Relaxed);
    Reply::Error(e.to_string())
}

/// Bytes of `args` as a RESP request, what Valkey counts as a command's input.
fn request_bytes(args: &[Bytes]) -> u64 {
    let digits = |n: usize| n.checked_ilog10().unwrap_or(0) as u64 + 1;
    let head = 3 + digits(args.len());
    args.iter()
        .map(|a| 5 + digits(a.len()) + a.len() as u64)
        .sum::<u64>()
        + head
}

/// Adds the command to the `kind` log when `value` reaches its threshold.
pub fn log_command(shared: &Node, client: &ClientState, args: &[Bytes], kind: LogKind, value: u64) {
    let log = &shared.commandlog;
    if !log.wants(&shared.config, kind, value) {
        return;
    }
    let name = client.handle.meta.lock().name.clone();
    let caller = Caller {
        peer: client.handle.addr,
        name: &name,
    };
    log.record(&shared.config, kind, value, args, caller);
}

/// The slot of the first key `args` names (CLUSTER SLOT-STATS accounts the reply there).
pub fn first_key_slot(args: &[Bytes]) -> Option<u16> {
    let spec = super::resolve(args).ok()?;
    spec.key_positions(args)
        .first()
        .map(|&p| key_slot(&args[p]))
}

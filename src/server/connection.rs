//! One client connection: read what is ready, decode every complete request, execute them in
//! order, write all replies with one flush (pipelining), then wait for more.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{After, ClientState, Shared};
use crate::cluster::route;
use crate::command::{self, CmdError, Ctx};
use crate::keyspace::{key_slot, Pending};
use crate::resp::{encode, Decoder, Protocol, Reply};

const READ_CHUNK: usize = 16 * 1024;
/// Replies are flushed early when this much is pending, so one huge pipeline does not buffer
/// unbounded output.
const FLUSH_AT: usize = 64 * 1024;

pub async fn reject(mut stream: TcpStream, msg: &str) {
    let _ = stream.write_all(format!("-{msg}\r\n").as_bytes()).await;
}

pub async fn serve(shared: Arc<Shared>, stream: TcpStream, addr: SocketAddr) {
    let laddr = stream.local_addr().unwrap_or(addr);
    let _ = stream.set_nodelay(true);
    let handle = shared.clients.register(addr, laddr);
    let id = handle.id;
    let mut client = ClientState {
        handle,
        protocol: Protocol::Resp2,
        authenticated: shared.requirepass().is_none(),
        after: None,
        wrote: false,
        asking: false,
        readonly: false,
        multi: None,
        multi_failed: false,
        parked: None,
        parked_since: None,
        watched: Vec::new(),
        blocked: None,
        touched: Vec::new(),
        in_exec: false,
        pubsub: None,
    };
    if let Err(e) = serve_inner(&shared, stream, &mut client).await {
        tracing::debug!("client {id} closed: {e}");
    }
    if let Some(mut subs) = client.pubsub.take() {
        shared.pubsub.forget(&mut subs, id);
    }
    shared.clients.unregister(id);
}

/// What the connection does once a run of ready requests has been processed.
enum Step {
    /// Flush replies, then read more.
    Read,
    /// Flush replies, then process what is still buffered (output reached [`FLUSH_AT`]).
    More,
    Close,
    Sleep(std::time::Duration),
    Shutdown,
    Wait {
        replicas: usize,
        offset: u64,
        timeout: Option<std::time::Duration>,
        aof: Option<i64>,
    },
    Migrate(Box<crate::command::MigrateRequest>),
    /// A write to a slot being handed over waits for the handover, then runs again.
    Park,
    /// A blocking command waits for a write to its keys or its timeout.
    Block,
}

/// What woke a connection waiting for input.
enum Input {
    Read(usize),
    Push(crate::server::pubsub::Delivery),
    /// Time to check that this node still serves the client's shard channels.
    ShardCheck,
}

/// How often a connection with shard-channel subscriptions checks their slots are still here.
const SHARD_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Drops the shard channels whose slot moved to another shard, telling the client with an
/// `sunsubscribe` push for each, as Valkey does when a node loses a slot.
fn drop_moved_shard_channels(shared: &Shared, client: &mut ClientState, wbuf: &mut BytesMut) {
    let (Some(cl), Some(subs)) = (shared.cluster.as_ref(), client.pubsub.as_mut()) else {
        return;
    };
    let view = cl.view();
    let lost: Vec<Bytes> = subs
        .shard
        .iter()
        .filter(|ch| {
            matches!(
                route(&view, &[key_slot(ch)], false, false, true, || (0, 0)),
                crate::cluster::Route::Moved(..)
            )
        })
        .cloned()
        .collect();
    let id = client.handle.id;
    for ch in lost {
        shared
            .pubsub
            .unsubscribe(subs, id, crate::server::pubsub::Space::Shard, &ch);
        let push = Reply::Push(vec![
            Reply::bulk_str("sunsubscribe"),
            Reply::Bulk(ch),
            Reply::Int(subs.shard.len() as i64),
        ]);
        encode(&push, client.protocol, wbuf);
    }
    *client.handle.subscriptions.lock() = subs.counts();
}

/// The next pub/sub message for this connection; never ready when it has no subscriptions.
async fn next_delivery(
    subs: &mut Option<crate::server::pubsub::Subscriptions>,
) -> crate::server::pubsub::Delivery {
    match subs {
        Some(s) => match s.rx.recv().await {
            Some(d) => d,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// How often a blocked command runs again in cluster mode (to notice its slot moved).
const BLOCKED_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Most pub/sub messages written per flush, so a flood cannot starve the client's commands.
const PUSH_BATCH: usize = 256;

async fn serve_inner(
    shared: &Arc<Shared>,
    mut stream: TcpStream,
    client: &mut ClientState,
) -> std::io::Result<()> {
    let mut decoder = Decoder::new(shared.limits());
    let mut config_version = shared.config.version();
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK);
    let handle = Arc::clone(&client.handle);
    let mut read_more = true;
    loop {
        if read_more {
            if let Some(need) = decoder.pending_bulk() {
                // A large value is arriving: grow once instead of doubling repeatedly.
                rbuf.reserve((need + 2).saturating_sub(rbuf.len()).min(64 << 20));
            } else if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
                rbuf.reserve(READ_CHUNK);
            }
            let check_shards = shared.cluster.is_some()
                && client.pubsub.as_ref().is_some_and(|s| !s.shard.is_empty());
            let input = tokio::select! {
                r = stream.read_buf(&mut rbuf) => Input::Read(r?),
                d = next_delivery(&mut client.pubsub) => Input::Push(d),
                _ = tokio::time::sleep(SHARD_CHECK), if check_shards => Input::ShardCheck,
                _ = handle.killed() => return Ok(()),
            };
            let n = match input {
                Input::Read(n) => n,
                Input::ShardCheck => {
                    drop_moved_shard_channels(shared, client, &mut wbuf);
                    flush(shared, &mut stream, client, &mut wbuf, &mut rbuf).await?;
                    read_more = rbuf.is_empty();
                    continue;
                }
                Input::Push(d) => {
                    encode(&d.reply(), client.protocol, &mut wbuf);
                    if let Some(subs) = client.pubsub.as_mut() {
                        for _ in 1..PUSH_BATCH {
                            let Ok(d) = subs.rx.try_recv() else { break };
                            encode(&d.reply(), client.protocol, &mut wbuf);
                        }
                    }
                    flush(shared, &mut stream, client, &mut wbuf, &mut rbuf).await?;
                    read_more = rbuf.is_empty();
                    continue;
                }
            };
            if n == 0 {
                return Ok(());
            }
            shared
                .stats
                .net_input_bytes
                .fetch_add(n as u64, Ordering::Relaxed);
            let v = shared.config.version();
            if v != config_version {
                config_version = v;
                decoder.set_limits(shared.limits());
            }
        }
        let step = match process_ready(shared, client, &mut decoder, &mut rbuf, &mut wbuf) {
            Ok(step) => step,
            Err(e) => {
                // The staged writes did not reach storage: their replies must not go out.
                tracing::error!(
                    "client {}: storage write failed, closing the connection: {e}",
                    client.id()
                );
                return Ok(());
            }
        };
        client
            .handle
            .qbuf
            .store(rbuf.len() as i64, Ordering::Relaxed);
        read_more = true;
        match step {
            Step::Read => {}
            Step::More => read_more = false,
            Step::Close => {
                flush(shared, &mut stream, client, &mut wbuf, &mut rbuf).await?;
                return Ok(());
            }
            Step::Sleep(d) => {
                flush(shared, &mut stream, client, &mut wbuf, &mut rbuf).await?;
                tokio::time::sleep(d).await;
                read_more = rbuf.is_empty();
            }
            Step::Shutdown => {
                shared.request_shutdown();
                return Ok(());
            }
            Step::Wait {
                replicas,
                offset,
                timeout,
                aof,
            } => {
                flush(shared, &mut stream, client, &mut wbuf, &mut rbuf).await?;
                let acked = tokio::select! {
                    n = shared.replication.wait_acked(replicas, offset, timeout) => n as i64,
                    _ = handle.killed() => return Ok(()),
                };
                let reply = match aof {
                    Some(local) => Reply::Array(vec![Reply::Int(local), Reply::Int(acked)]),
                    None => Reply::Int(acked),
                };
                encode(&reply, client.protocol, &mut wbuf);
                read_more = rbuf.is_empty();
            }
            Step::Block => {
                flush(shared, &mut stream, client, &mut wbuf, &mut rbuf).await?;
                if !wait_unblocked(shared, &mut stream, client, &mut rbuf, &mut wbuf).await? {
                    return Ok(());
                }
                read_more = false;
            }
            Step::Park => {
                flush(shared, &mut stream, client, &mut wbuf, &mut rbuf).await?;
                tokio::select! {
                    _ = shared.keyspace.pause_ended() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
                    _ = handle.killed() => return Ok(()),
                }
                read_more = false;
            }
            Step::Migrate(req) => {
                flush(shared, &mut stream, client, &mut wbuf, &mut rbuf).await?;
                let reply = tokio::select! {
                    r = super::migrate::run(shared, &req) => r,
                    _ = handle.killed() => return Ok(()),
                };
                encode(&reply, client.protocol, &mut wbuf);
                read_more = rbuf.is_empty();
            }
        }
        let buffered = rbuf.len();
        flush(shared, &mut stream, client, &mut wbuf, &mut rbuf).await?;
        if rbuf.len() > buffered {
            // Requests arrived while replies were written: run them before waiting for more.
            read_more = false;
        }
        if handle.is_killed() {
            return Ok(());
        }
    }
}

/// Decodes and runs every complete request in `rbuf` inside one write scope, committing the
/// scope before returning so the replies in `wbuf` only acknowledge stored writes.
fn process_ready(
    shared: &Shared,
    client: &mut ClientState,
    decoder: &mut Decoder,
    rbuf: &mut BytesMut,
    wbuf: &mut BytesMut,
) -> Result<Step, crate::keyspace::KeyspaceError> {
    // Held until this batch's writes are committed: a slot-migration pause waits for it.
    let _gate = shared.keyspace.request_gate();
    let mut ks = shared.keyspace.pending();
    let step = loop {
        let parked = client.parked.take().map(|(args, _)| args);
        let decoded = match parked {
            Some(args) => Ok(Some(args)),
            None => decoder.decode(rbuf, client.authenticated),
        };
        let args = match decoded {
            Ok(Some(args)) => args,
            Ok(None) => break Step::Read,
            Err(e) => {
                if let Some(line) = e.reply() {
                    encode(&Reply::Error(line), client.protocol, wbuf);
                } else {
                    tracing::warn!(
                        "closing client {} that reached max query buffer length",
                        client.id()
                    );
                }
                break Step::Close;
            }
        };
        let reply = run_command(shared, client, &mut ks, &args)?;
        encode(&reply, client.protocol, wbuf);
        if client.blocked.is_some() && !matches!(client.after, Some(After::Block { .. })) {
            // The blocked command ran again and answered (or was redirected): stop waiting.
            client.blocked = None;
        }
        match client.after.take() {
            None => {}
            Some(After::Block {
                keys,
                timeout,
                timeout_reply,
            }) => {
                if client.blocked.is_some() {
                    break Step::Block;
                }
                // Register first, then look once more: a push that landed in between is seen.
                let deadline = timeout.map(|t| std::time::Instant::now() + t);
                client.blocked = Some(shared.blocked.block(
                    args.clone(),
                    keys,
                    deadline,
                    timeout_reply,
                ));
                client.parked = Some((args, std::time::Instant::now()));
                continue;
            }
            Some(After::Close) => break Step::Close,
            Some(After::Sleep(d)) => break Step::Sleep(d),
            Some(After::Shutdown) => break Step::Shutdown,
            Some(After::Migrate(req)) => break Step::Migrate(req),
            Some(After::Park) => break Step::Park,
            Some(After::Wait {
                replicas,
                offset,
                timeout,
                aof,
            }) => {
                break Step::Wait {
                    replicas,
                    offset,
                    timeout,
                    aof,
                };
            }
        }
        if wbuf.len() >= FLUSH_AT {
            break Step::More;
        }
    };
    ks.commit()?;
    if !client.touched.is_empty() {
        shared.blocked.signal(&client.touched);
        client.touched.clear();
    }
    Ok(step)
}

/// Waits until the blocked command should run again (a write to one of its keys), or times
/// out (its timeout reply goes into `wbuf`). False when the client went away meanwhile.
/// Requests arriving meanwhile are read into `rbuf` and run after the command.
async fn wait_unblocked(
    shared: &Shared,
    stream: &mut TcpStream,
    client: &mut ClientState,
    rbuf: &mut BytesMut,
    wbuf: &mut BytesMut,
) -> std::io::Result<bool> {
    let limit = shared.limits().max_query_buffer as usize;
    let handle = Arc::clone(&client.handle);
    handle.blocked.store(true, Ordering::Relaxed);
    // In a cluster the command also runs again now and then, so a client whose slot moved
    // away (or whose node became a replica) gets its redirect, as Valkey sends it.
    let recheck = shared.cluster.as_ref().map(|_| BLOCKED_RECHECK);
    let r = wait_unblocked_inner(stream, client, rbuf, wbuf, limit, recheck).await;
    handle.blocked.store(false, Ordering::Relaxed);
    r
}

async fn wait_unblocked_inner(
    stream: &mut TcpStream,
    client: &mut ClientState,
    rbuf: &mut BytesMut,
    wbuf: &mut BytesMut,
    limit: usize,
    recheck: Option<std::time::Duration>,
) -> std::io::Result<bool> {
    let handle = Arc::clone(&client.handle);
    loop {
        let Some(b) = client.blocked.as_mut() else {
            return Ok(true);
        };
        let deadline = b.deadline;
        let until = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
            rbuf.reserve(READ_CHUNK);
        }
        let tick = async {
            match recheck {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = b.wake.changed() => {
                if r.is_err() {
                    return Ok(false);
                }
                let args = b.args.clone();
                client.parked = Some((args, std::time::Instant::now()));
                return Ok(true);
            }
            _ = tick => {
                let args = b.args.clone();
                client.parked = Some((args, std::time::Instant::now()));
                return Ok(true);
            }
            _ = until => {
                let reply = b.timeout_reply.clone();
                client.blocked = None;
                encode(&reply, client.protocol, wbuf);
                return Ok(true);
            }
            _ = handle.killed() => return Ok(false),
            r = stream.read_buf(rbuf), if rbuf.len() < limit => {
                if r? == 0 {
                    return Ok(false);
                }
            }
        }
    }
}

/// Writes `wbuf` while still reading requests into `rbuf`: a client that sends a long pipeline
/// before reading any reply would otherwise deadlock with us once both socket buffers fill
/// (Valkey reads on while its output buffer grows). Reading stops at the query buffer limit.
async fn write_while_reading(
    shared: &Shared,
    stream: &mut TcpStream,
    wbuf: &[u8],
    rbuf: &mut BytesMut,
) -> std::io::Result<()> {
    let limit = shared.limits().max_query_buffer as usize;
    let (mut rd, mut wr) = stream.split();
    let mut off = 0;
    let mut eof = false;
    while off < wbuf.len() {
        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
            rbuf.reserve(READ_CHUNK);
        }
        tokio::select! {
            n = wr.write(&wbuf[off..]) => {
                let n = n?;
                if n == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                off += n;
            }
            n = rd.read_buf(rbuf), if !eof && rbuf.len() < limit => {
                let n = n?;
                eof = n == 0;
                shared.stats.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// Writes pending replies, first making the writes they acknowledge durable when required.
async fn flush(
    shared: &Shared,
    stream: &mut TcpStream,
    client: &mut ClientState,
    wbuf: &mut BytesMut,
    rbuf: &mut BytesMut,
) -> std::io::Result<()> {
    if client.wrote {
        client.wrote = false;
        shared.wal.wait_durable().await;
        let c = shared.config.snapshot();
        if c.replica_ack_before_reply && !shared.is_replica() {
            // Synchronous mode: these replies acknowledge writes only once a replica has them,
            // so a failover cannot lose them. No ack in time: close without replying, leaving
            // the outcome unknown to the client rather than wrongly confirmed.
            let need = (c.min_replicas_to_write as usize).max(1);
            let offset = shared.replication.backlog.position().offset;
            let timeout = std::time::Duration::from_millis(c.cluster_node_timeout_ms.max(1000));
            if shared
                .replication
                .wait_acked(need, offset, Some(timeout))
                .await
                < need
            {
                tracing::warn!(
                    "client {}: no replica acknowledged offset {offset} in time; closing",
                    client.id()
                );
                return Err(std::io::Error::other("replica acknowledgement timed out"));
            }
        }
    }
    if wbuf.is_empty() {
        return Ok(());
    }
    write_while_reading(shared, stream, wbuf, rbuf).await?;
    shared
        .stats
        .net_output_bytes
        .fetch_add(wbuf.len() as u64, Ordering::Relaxed);
    wbuf.clear();
    Ok(())
}

/// Resolves, checks and runs one command: the order of checks follows Valkey's
/// `processCommand` (existence, arity, authentication, transaction queueing, cluster
/// redirection, then execution).
fn run_command(
    shared: &Shared,
    client: &mut ClientState,
    ks: &mut Pending,
    args: &[Bytes],
) -> Result<Reply, crate::keyspace::KeyspaceError> {
    shared
        .stats
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    let spec = match command::resolve(args) {
        Ok(s) => s,
        Err(e) => {
            if client.multi.is_some() {
                client.multi_failed = true;
            }
            return Ok(error_reply(shared, e));
        }
    };
    client.handle.touch(spec.name);
    if !client.authenticated && !spec.has_flag("no_auth") {
        return Ok(error_reply(shared, CmdError::NoAuth));
    }
    match spec.name {
        "multi" | "exec" | "discard" => {
            return super::transaction::run(shared, client, ks, spec.name)
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
    match redirect(shared, client, ks, spec, args, asking) {
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
    if spec.is_write() && !shared.is_replica() {
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
    if spec.is_write() && shared.is_replica() {
        return Ok(error_reply(
            shared,
            CmdError::Line("READONLY You can't write against a read only replica.".into()),
        ));
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
    if spec.first_key <= 0 {
        ks.commit()?;
    }
    Ok(execute(shared, client, ks, spec, args))
}

pub(super) fn execute(
    shared: &Shared,
    client: &mut ClientState,
    ks: &mut Pending,
    spec: &'static command::CommandSpec,
    args: &[Bytes],
) -> Reply {
    let mut ctx = Ctx { shared, client, ks };
    let reply = command::execute(spec, &mut ctx, args);
    if reply.is_error() {
        shared.stats.error_replies.fetch_add(1, Ordering::Relaxed);
    } else if spec.is_write() {
        ctx.client.wrote = true;
        shared.wal.note_write();
        // Always noted (not only while someone is blocked): a client that blocks while this
        // scope is still uncommitted must be woken by its commit.
        for p in spec.key_positions(args) {
            ctx.client.touched.push(args[p].clone());
        }
    }
    reply
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
    shared: &Shared,
    client: &ClientState,
    ks: &Pending,
    spec: &'static command::CommandSpec,
    args: &[Bytes],
    asking: bool,
) -> Result<(), Redirect> {
    let Some(cluster) = shared.cluster.as_ref() else {
        return Ok(());
    };
    let pos = spec.key_positions(args);
    if pos.is_empty() {
        if !spec.is_write() {
            return Ok(());
        }
        return write_paused(&cluster.view(), spec).map_or(Ok(()), |e| Err(Redirect::Refuse(e)));
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
    let asking = asking || spec.has_flag("asking");
    // MIGRATE runs where the keys are while a slot is open, whoever the owner is (Valkey).
    if spec.name == "migrate"
        && slots
            .iter()
            .all(|s| view.migrating.contains_key(s) || view.importing.contains_key(s))
    {
        return Ok(());
    }
    // Shard channels are served by every node of the shard, as Valkey does.
    let readonly = client.readonly || spec.has_flag("pubsub");
    if let Some(e) = route(&view, &slots, spec.is_write(), asking, readonly, missing)
        .error()
        .or_else(|| write_paused(&view, spec))
    {
        return Err(Redirect::Refuse(e));
    }
    if spec.is_write() && slots.iter().any(|s| shared.keyspace.write_paused(*s)) {
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
pub(super) fn write_paused(
    view: &crate::cluster::View,
    spec: &command::CommandSpec,
) -> Option<String> {
    (spec.is_write() && view.writes_paused_until > crate::cluster::now_ms())
        .then(|| "TRYAGAIN manual failover in progress".to_string())
}

pub(super) fn error_reply(shared: &Shared, e: CmdError) -> Reply {
    shared.stats.error_replies.fetch_add(1, Ordering::Relaxed);
    Reply::Error(e.to_string())
}

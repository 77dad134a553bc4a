//! One client connection: read what is ready, decode every complete request, execute them in
//! order, write all replies with one flush (pipelining), then wait for more.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::cluster::{route, Access};
use crate::command;
use crate::command::{After, ClientState};
use crate::keyspace::key_slot;
use crate::node::commandlog::LogKind;
use crate::node::Node;
use crate::resp::{encode, Decoder, Protocol, Reply};

const READ_CHUNK: usize = 16 * 1024;
/// Replies are flushed early when this much is pending, so one huge pipeline does not buffer
/// unbounded output.
const FLUSH_AT: usize = 64 * 1024;

pub async fn reject(mut stream: impl ClientStream, msg: &str) {
    let _ = stream.write_all(format!("-{msg}\r\n").as_bytes()).await;
    // A TLS stream holds the record until flushed; the close_notify follows it.
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

/// A client's byte stream: plain TCP or TLS over it.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> ClientStream for S {}

/// Serves one client on `stream` (TCP_NODELAY already set), reached at local address `laddr`.
pub async fn serve(
    shared: Arc<Node>,
    stream: impl ClientStream,
    addr: SocketAddr,
    laddr: SocketAddr,
    tls: bool,
) {
    let handle = shared.clients.register(addr, laddr);
    let id = handle.id;
    let mut client = ClientState {
        handle,
        protocol: Protocol::Resp2,
        authenticated: shared.acl.default_open(),
        after: None,
        wrote: false,
        synced: false,
        asking: false,
        readonly: false,
        multi: None,
        multi_failed: false,
        executed: 0,
        parked: None,
        parked_since: None,
        watched: Vec::new(),
        blocked: None,
        touched: Vec::new(),
        events: Vec::new(),
        in_exec: false,
        in_script: false,
        pubsub: None,
        tls,
        session: crate::acl::Session::default_user(),
        db: 0,
        tracking: None,
        caching: false,
    };
    if let Err(e) = serve_inner(&shared, stream, &mut client).await {
        tracing::debug!("client {id} closed: {e}");
    }
    if let Some(mut subs) = client.pubsub.take() {
        shared.pubsub.forget(&mut subs, id);
    }
    // Unregistered first: a REDIRECT to this client set up from now on is refused, one set
    // up before is marked broken.
    shared.clients.unregister(id);
    shared.tracking.closed(id);
}

/// What the connection does once a run of ready requests has been processed.
enum Step {
    /// Flush replies, then read more.
    Read,
    /// Flush replies, then process what is still buffered (output reached [`FLUSH_AT`]).
    More,
    Close,
    Shutdown,
    Wait {
        replicas: usize,
        offset: u64,
        timeout: Option<std::time::Duration>,
        aof: Option<i64>,
    },
    Migrate(Box<crate::migration::MigrateRequest>),
    /// A write to a slot being handed over waits for the handover, then runs again.
    Park,
    /// A blocking command waits for a write to its keys or its timeout.
    Block,
    /// The replies so far go out once the other nodes heard this node's configuration.
    Announce,
}

/// What woke a connection waiting for input.
enum Input {
    Read(usize),
    Push(crate::node::pubsub::Delivery),
    /// Time to check that this node still serves the client's shard channels.
    ShardCheck,
}

/// How often a connection with shard-channel subscriptions checks their slots are still here.
const SHARD_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Drops the shard channels whose slot moved to another shard, telling the client with an
/// `sunsubscribe` push for each, as Valkey does when a node loses a slot.
fn drop_moved_shard_channels(shared: &Node, client: &mut ClientState, wbuf: &mut BytesMut) {
    let (Some(cl), Some(subs)) = (shared.cluster.as_ref(), client.pubsub.as_mut()) else {
        return;
    };
    let view = cl.view();
    let lost: Vec<Bytes> = subs
        .shard
        .iter()
        .filter(|ch| {
            matches!(
                route(
                    &view,
                    &[key_slot(ch)],
                    Access {
                        readonly_client: true,
                        ..Access::default()
                    },
                    || (0, 0),
                ),
                crate::cluster::Route::Moved(..)
            )
        })
        .cloned()
        .collect();
    let id = client.handle.id;
    for ch in lost {
        shared
            .pubsub
            .unsubscribe(subs, id, crate::node::pubsub::Space::Shard, &ch);
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
    subs: &mut Option<crate::node::pubsub::Subscriptions>,
) -> crate::node::pubsub::Delivery {
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
/// The longest CLUSTER SETSLOT NODE waits for the other nodes to hear the new owner (a node
/// that is down is not waited for; its next PING brings it the change).
const ANNOUNCE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Most pub/sub messages written per flush, so a flood cannot starve the client's commands.
const PUSH_BATCH: usize = 256;
/// Encoded pub/sub bytes after which a flush goes out before more messages are taken.
const PUSH_BYTES: usize = 1 << 20;

async fn serve_inner(
    shared: &Arc<Node>,
    mut stream: impl ClientStream,
    client: &mut ClientState,
) -> std::io::Result<()> {
    let mut decoder = Decoder::new(shared.limits());
    let mut config_version = shared.config.version();
    // `timeout`: an idle client is closed, except a subscriber (as Valkey).
    let mut idle = shared.config.snapshot().timeout_secs;
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
            // A CONFIG SET (from any client) applies from this connection's next wait on.
            let v = shared.config.version();
            if v != config_version {
                config_version = v;
                decoder.set_limits(shared.limits());
                idle = shared.config.snapshot().timeout_secs;
            }
            let check_shards = shared.cluster.is_some()
                && client.pubsub.as_ref().is_some_and(|s| !s.shard.is_empty());
            let idle_close = idle > 0
                && client
                    .pubsub
                    .as_ref()
                    .is_none_or(|s| s.is_empty() && !s.monitor);
            let input = tokio::select! {
                r = stream.read_buf(&mut rbuf) => Input::Read(r?),
                d = next_delivery(&mut client.pubsub) => Input::Push(d),
                _ = tokio::time::sleep(SHARD_CHECK), if check_shards => Input::ShardCheck,
                _ = tokio::time::sleep(std::time::Duration::from_secs(idle)), if idle_close => {
                    tracing::debug!("client {}: closing after {idle} s idle (timeout)", client.id());
                    return Ok(());
                }
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
                    let taken = |d: &crate::node::pubsub::Delivery| {
                        handle.pubsub_queued.fetch_sub(d.size(), Ordering::Relaxed);
                    };
                    taken(&d);
                    encode(&d.reply(), client.protocol, &mut wbuf);
                    if let Some(subs) = client.pubsub.as_mut() {
                        for _ in 1..PUSH_BATCH {
                            // Messages stay counted in the queue (and its output limit) until
                            // the socket takes what is already encoded.
                            if wbuf.len() >= PUSH_BYTES {
                                break;
                            }
                            let Ok(d) = subs.rx.try_recv() else { break };
                            taken(&d);
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
            // Many clients each under client-query-buffer-limit can still hold more than the
            // machine has: past maxmemory-clients, the client whose input crossed it goes.
            let total = shared.clients.note_query_buffer(&client.handle, rbuf.len());
            let budget = shared.config.snapshot().maxmemory_clients;
            if budget > 0 && total > budget as i64 {
                shared.stats.evicted_clients.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "client {} closed: the clients' query buffers hold {total} bytes, over \
                     maxmemory-clients {budget}",
                    client.id()
                );
                return Ok(());
            }
        }
        let gate = tokio::select! {
            g = shared.keyspace.request_gate() => g,
            _ = handle.killed() => return Ok(()),
        };
        let start = wbuf.len();
        let (step, replies) =
            match process_ready(gate, shared, client, &mut decoder, &mut rbuf, &mut wbuf) {
                Ok(done) => done,
                Err((e, replies)) => {
                    // The staged writes did not reach storage: no reply of theirs may go out.
                    tracing::error!("client {}: storage write failed: {e}", client.id());
                    refuse_unstored(shared, client, &mut wbuf, start, replies);
                    (Step::More, 0)
                }
            };
        if client.wrote && !matches!(step, Step::Migrate(_)) {
            // Synced here rather than in flush, while the replies are still countable.
            client.synced = true;
            if !shared.wal.wait_durable().await {
                tracing::error!("client {}: WAL sync failed", client.id());
                refuse_unstored(shared, client, &mut wbuf, start, replies);
            }
        }
        shared.clients.note_query_buffer(&client.handle, rbuf.len());
        read_more = true;
        match step {
            Step::Read => {}
            Step::More => read_more = false,
            Step::Close => {
                flush(shared, &mut stream, client, &mut wbuf, &mut rbuf).await?;
                return Ok(());
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
            Step::Announce => {
                if let Some(c) = &shared.cluster {
                    crate::cluster::announce(c, ANNOUNCE_WAIT).await;
                }
                read_more = rbuf.is_empty();
            }
            Step::Migrate(req) => {
                flush(shared, &mut stream, client, &mut wbuf, &mut rbuf).await?;
                let reply = tokio::select! {
                    r = crate::migration::legacy::run(&shared.migration, &req) => r,
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
/// scope before returning so the replies in `wbuf` only acknowledge stored writes. The request
/// gate is held until then: a slot-migration pause waits for this batch's writes.
fn process_ready(
    _gate: parking_lot::RwLockReadGuard<'_, ()>,
    shared: &Node,
    client: &mut ClientState,
    decoder: &mut Decoder,
    rbuf: &mut BytesMut,
    wbuf: &mut BytesMut,
) -> Result<(Step, usize), (crate::keyspace::KeyspaceError, usize)> {
    let mut ks = shared.keyspace.pending();
    // Replies encoded so far; a failed command counts too (its reply is the error).
    let mut replies = 0usize;
    // `client-output-buffer-limit normal`: the replies of one batch may not pass its hard
    // limit (a subscriber's messages are limited by the pubsub class where they queue).
    let hard = match &client.pubsub {
        Some(s) if !s.is_empty() || s.monitor => 0,
        _ => shared.config.snapshot().output_buffer_limits[crate::config::OUTPUT_CLASS_NORMAL].hard,
    };
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
        let ran_before = client.executed;
        let reply =
            command::dispatch(shared, client, &mut ks, &args).map_err(|e| (e, replies + 1))?;
        let before = wbuf.len();
        encode(&reply, client.protocol, wbuf);
        replies += (wbuf.len() > before) as usize;
        if client.executed > ran_before && !args[0].eq_ignore_ascii_case(b"exec") {
            let size = (wbuf.len() - before) as u64;
            command::log_command(shared, client, &args, LogKind::LargeReply, size);
            if shared.slot_stats.enabled(&shared.config) {
                if let Some(slot) = command::first_key_slot(&args) {
                    shared.slot_stats.replied(slot, size);
                }
            }
        }
        if hard > 0 && wbuf.len() as u64 > hard {
            tracing::warn!(
                "client {} closed for overcoming of output buffer limits (normal, {} bytes)",
                client.id(),
                wbuf.len()
            );
            shared
                .stats
                .output_limit_disconnections
                .fetch_add(1, Ordering::Relaxed);
            // Nothing more goes out to it, as Valkey drops a closed client's output.
            wbuf.clear();
            break Step::Close;
        }
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
                rerun,
            }) => {
                if client.blocked.is_some() {
                    break Step::Block;
                }
                // Register first, then look once more: a push that landed in between is seen.
                let deadline = timeout.map(|t| std::time::Instant::now() + t);
                let args = rerun.unwrap_or(args);
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
            Some(After::Shutdown) => break Step::Shutdown,
            Some(After::Migrate(req)) => break Step::Migrate(req),
            Some(After::Park) => break Step::Park,
            Some(After::Announce) => break Step::Announce,
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
    ks.commit().map_err(|e| (e, replies))?;
    if !client.touched.is_empty() {
        shared.blocked.signal(&client.touched);
        client.touched.clear();
    }
    Ok((step, replies))
}

/// Replaces the last `replies` replies (from `start` in `wbuf`) with the error Valkey gives
/// when it cannot persist: none of them may acknowledge a write that is not stored. Later
/// writes are refused with the same error (see dispatch).
fn refuse_unstored(
    shared: &Node,
    client: &mut ClientState,
    wbuf: &mut BytesMut,
    start: usize,
    replies: usize,
) {
    wbuf.truncate(start);
    let line = command::disk_error_line(&shared.engine.write_error().unwrap_or_default());
    for _ in 0..replies {
        encode(&Reply::Error(line.clone()), client.protocol, wbuf);
    }
    client.wrote = false;
    client.synced = false;
}

/// Waits until the blocked command should run again (a write to one of its keys), or times
/// out (its timeout reply goes into `wbuf`). False when the client went away meanwhile.
/// Requests arriving meanwhile are read into `rbuf` and run after the command.
async fn wait_unblocked(
    shared: &Node,
    stream: &mut impl ClientStream,
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
    stream: &mut impl ClientStream,
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
    shared: &Node,
    stream: &mut impl ClientStream,
    wbuf: &[u8],
    rbuf: &mut BytesMut,
) -> std::io::Result<()> {
    let limit = shared.limits().max_query_buffer as usize;
    let mut off = 0;
    let mut eof = false;
    // One future polls both directions of the one stream (a TLS stream cannot be split into
    // halves that are polled apart).
    std::future::poll_fn(|cx| {
        use std::task::Poll;
        loop {
            let mut progressed = false;
            if off < wbuf.len() {
                match std::pin::Pin::new(&mut *stream).poll_write(cx, &wbuf[off..]) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                    }
                    Poll::Ready(Ok(n)) => {
                        off += n;
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if off == wbuf.len() {
                // TLS buffers records: they leave only on flush. While the socket is full the
                // flush waits, and requests keep being read meanwhile.
                match std::pin::Pin::new(&mut *stream).poll_flush(cx) {
                    Poll::Ready(r) => return Poll::Ready(r),
                    Poll::Pending => {}
                }
            }
            if !eof && rbuf.len() < limit {
                if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
                    rbuf.reserve(READ_CHUNK);
                }
                match tokio_util::io::poll_read_buf(std::pin::Pin::new(&mut *stream), cx, rbuf) {
                    Poll::Ready(Ok(n)) => {
                        eof = n == 0;
                        shared
                            .stats
                            .net_input_bytes
                            .fetch_add(n as u64, Ordering::Relaxed);
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    })
    .await
}

/// Writes pending replies, first making the writes they acknowledge durable when required.
async fn flush(
    shared: &Node,
    stream: &mut impl ClientStream,
    client: &mut ClientState,
    wbuf: &mut BytesMut,
    rbuf: &mut BytesMut,
) -> std::io::Result<()> {
    if client.wrote {
        client.wrote = false;
        if !std::mem::take(&mut client.synced) && !shared.wal.wait_durable().await {
            // Replies not countable here (after MIGRATE): leave the outcome unknown.
            return Err(std::io::Error::other("WAL sync failed"));
        }
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

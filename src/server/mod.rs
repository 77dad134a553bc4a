//! The node process's I/O: listeners, connections (pipelining, dispatch, MULTI/EXEC), the
//! cluster-port server and the background tasks, and graceful shutdown.
//!
//! Owns: [`start`] (builds the node with its gRPC transports) and [`run`].
//! Must not: implement commands (see `command`), hold node state (see `node`) or encode
//! storage records (see `keyspace`).

mod connection;
pub mod metrics;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::config::LiveConfig;
use crate::node::{Node, NodeError, Transports};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Recover(#[from] crate::migration::RecoverError),
    #[error("binding {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("installing the signal handler: {0}")]
    Signal(std::io::Error),
    #[error("syncing the WAL at shutdown: {0}")]
    Sync(crate::storage::StorageError),
    #[error("Failed to configure TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// Builds the node, with the gRPC edge as its way to reach other nodes.
pub fn open(config: LiveConfig) -> Result<Arc<Node>, ServerError> {
    // ACL rules name commands: the catalog must exist before users are read.
    crate::command::install_acl_catalog();
    let c = config.snapshot();
    // Before the data is opened: a bad certificate stops the start with nothing touched.
    if let Some(ctx) = crate::tls::load(&c.tls)? {
        crate::tls::install(ctx);
    }
    let bus_auth = Arc::new(crate::cluster::PeerAuth::new(
        crate::cluster::bus_digest,
        &c,
    ));
    let repl_auth = Arc::new(crate::cluster::PeerAuth::new(
        crate::cluster::repl_digest,
        &c,
    ));
    let bus = Arc::new(crate::rpc::BusClient::for_config(&c, Arc::clone(&bus_auth)));
    let node = crate::node::open(
        config,
        Transports {
            bus_auth,
            repl_auth,
            bus,
            repl: Arc::new(crate::rpc::ReplClients),
            migration: Arc::new(crate::rpc::MigrationClients),
        },
    )?;
    // Scripts start on the connection's runtime worker; a long one hands the worker on.
    node.scripts.on_long_run(crate::command::leave_worker);
    Ok(node)
}

/// Serves clients until SIGTERM/SIGINT or SHUTDOWN, then syncs storage.
pub async fn run(shared: Arc<Node>) -> Result<(), ServerError> {
    let c = shared.config.snapshot();
    crate::migration::recover(&shared.migration)?;
    let mut listeners = Vec::new();
    for addr in &c.bind {
        let l = TcpListener::bind((addr.as_str(), c.port))
            .await
            .map_err(|e| ServerError::Bind(format!("{addr}:{}", c.port), e))?;
        listeners.push(l);
    }
    // The cluster port serves the bus (cluster mode) and replication (always).
    let cport = c.cluster_bus_port();
    let addr = c
        .bind
        .first()
        .map(|b| b.trim_start_matches('-').to_string())
        .unwrap_or_else(|| "0.0.0.0".into());
    let rpc_listener = TcpListener::bind((addr.as_str(), cport))
        .await
        .map_err(|e| ServerError::Bind(format!("the cluster port on {addr}:{cport}"), e))?;
    let bus = shared.cluster.as_ref().map(|cl| {
        crate::rpc::bus_service(
            Arc::clone(cl) as Arc<dyn crate::cluster::BusService>,
            Arc::clone(&shared.bus_auth),
        )
    });
    let repl = crate::rpc::repl_service(
        Arc::new(crate::replication::PrimarySide::new(Arc::clone(
            &shared.repl,
        ))),
        Arc::clone(&shared.repl_auth),
    );
    let migration = shared.cluster.as_ref().map(|_| {
        crate::migration::spawn_idle_sweeper(Arc::clone(&shared.migration));
        crate::rpc::migration_service(
            Arc::new(crate::migration::TargetSide(Arc::clone(&shared.migration))),
            Arc::clone(&shared.bus_auth),
        )
    });
    let backup = shared.cluster.as_ref().map(|_| {
        crate::rpc::backup_service(
            Arc::new(crate::migration::BackupNode(Arc::clone(&shared.migration))),
            Arc::clone(&shared.repl_auth),
        )
    });
    let sd = shared.shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::rpc::serve(rpc_listener, bus, repl, migration, backup, async move {
            sd.cancelled().await
        })
        .await
        {
            tracing::error!("cluster port server failed: {e}");
        }
    });
    if let Some(cl) = &shared.cluster {
        crate::cluster::spawn_bus(Arc::clone(cl), shared.shutdown.clone());
    }
    crate::replication::spawn_replica_task(Arc::clone(&shared.repl));
    if let Some(cl) = &shared.cluster {
        // The cluster state ranks replicas and runs manual failover on replication offsets.
        let cl = Arc::clone(cl);
        let mut offsets = shared.replication.backlog.subscribe();
        tokio::spawn(async move {
            loop {
                let o = *offsets.borrow_and_update();
                cl.set_repl_offset(o);
                if offsets.changed().await.is_err() {
                    return;
                }
            }
        });
    }
    tracing::info!("Cluster port (bus, replication) listening on {addr}:{cport}");
    tracing::info!("Ready to accept connections tcp on port {}", c.port);
    for l in listeners {
        tokio::spawn(accept_loop(Arc::clone(&shared), l, false));
    }
    if crate::tls::installed().is_some() && c.tls.port != 0 {
        for addr in &c.bind {
            let l = TcpListener::bind((addr.trim_start_matches('-'), c.tls.port))
                .await
                .map_err(|e| ServerError::Bind(format!("{addr}:{}", c.tls.port), e))?;
            tokio::spawn(accept_loop(Arc::clone(&shared), l, true));
        }
        tracing::info!("Ready to accept connections tls on port {}", c.tls.port);
    }
    if c.metrics_port != 0 {
        for addr in &c.bind {
            let addr = addr.trim_start_matches('-');
            let l = TcpListener::bind((addr, c.metrics_port))
                .await
                .map_err(|e| ServerError::Bind(format!("{addr}:{}", c.metrics_port), e))?;
            tokio::spawn(metrics::serve(Arc::clone(&shared), l));
        }
        tracing::info!("Metrics on port {} (GET /metrics)", c.metrics_port);
    }
    tokio::spawn(active_expire_loop(Arc::clone(&shared)));
    tokio::spawn(ops_sampler(Arc::clone(&shared)));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServerError::Signal)?;
    let shutdown = shared.shutdown.cancelled();
    tokio::select! {
        _ = term.recv() => tracing::info!("Received SIGTERM scheduling shutdown..."),
        _ = tokio::signal::ctrl_c() => tracing::info!("Received SIGINT scheduling shutdown..."),
        _ = shutdown => tracing::info!("User requested shutdown..."),
    }
    shared.request_shutdown();
    // Let connections finish the command they are running.
    let deadline = Instant::now() + Duration::from_secs(5);
    while shared.clients.count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shared.engine.sync_wal().map_err(ServerError::Sync)?;
    if let Some(c) = &shared.cluster {
        c.flush_config();
    }
    tracing::info!("rockslot is now ready to exit, bye bye...");
    Ok(())
}

/// How long a TLS client has to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_loop(shared: Arc<Node>, listener: TcpListener, tls: bool) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if shared.is_shutting_down() {
            return;
        }
        shared
            .stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        // Each handshake uses the contexts in force now (CONFIG SET may have replaced them).
        let tls = tls
            .then(crate::tls::installed)
            .flatten()
            .map(|t| tokio_rustls::TlsAcceptor::from(Arc::clone(&t.server)));
        let maxclients = shared.config.snapshot().maxclients as usize;
        let sh = Arc::clone(&shared);
        if sh.clients.count() >= maxclients {
            sh.stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            const FULL: &str = "ERR max number of clients reached";
            match &tls {
                None => {
                    tokio::spawn(connection::reject(stream, FULL));
                }
                // As Valkey, the refusal is written after the handshake, so the client reads it.
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let accepted =
                            tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                        if let Ok(Ok(s)) = accepted.await {
                            connection::reject(s, FULL).await;
                        }
                    });
                }
            }
            continue;
        }
        let laddr = stream.local_addr().unwrap_or(addr);
        let _ = stream.set_nodelay(true);
        match &tls {
            None => {
                tokio::spawn(
                    async move { connection::serve(sh, stream, addr, laddr, false).await },
                );
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(s)) => connection::serve(sh, s, addr, laddr, true).await,
                        // Valkey logs these at verbose level: scanners and health checks are
                        // common on a TLS port.
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {addr} failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {addr} timed out"),
                    }
                });
            }
        }
    }
}

async fn active_expire_loop(shared: Arc<Node>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if shared.is_shutting_down() {
            return;
        }
        shared.access.tick();
        if !shared.active_expire.load(Ordering::Relaxed) {
            continue;
        }
        let sh = Arc::clone(&shared);
        // Storage I/O: keep it off the async workers.
        let r = tokio::task::spawn_blocking(move || sh.keyspace.active_expire_cycle(1000)).await;
        if let Ok(Err(e)) = r {
            tracing::warn!("active expiry failed: {e}");
        }
    }
}

async fn ops_sampler(shared: Arc<Node>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = 0;
    loop {
        tick.tick().await;
        let now = shared.stats.commands_processed.load(Ordering::Relaxed);
        shared
            .stats
            .ops_per_sec
            .store(now - last, Ordering::Relaxed);
        last = now;
    }
}

//! The node process: listeners, connections (pipelining), client state, auth, dispatch,
//! background tasks and graceful shutdown.
//!
//! Owns: [`Shared`] (everything a handler may reach), [`ClientState`], [`run`].
//! Must not: implement commands (see `command`) or encode storage records (see `keyspace`).

mod blocking;
mod clients;
mod connection;
mod migrate;
pub mod pubsub;
mod transaction;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use blocking::{Blocked, BlockedKeys};
pub use clients::{After, ClientHandle, ClientRegistry, ClientState};

use crate::cluster::Cluster;
use crate::config::{AppendFsync, Config, LiveConfig};
use crate::keyspace::Keyspace;
use crate::resp::Limits;
use crate::storage::{Engine, EngineOptions, SyncMode, WalSync};

/// Counters shown by INFO.
#[derive(Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub commands_processed: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub error_replies: AtomicU64,
    /// Operations per second over the last sampling period.
    pub ops_per_sec: AtomicU64,
}

/// Everything a command handler may reach. One per node, shared by all connections.
pub struct Shared {
    pub keyspace: Keyspace,
    pub engine: Arc<Engine>,
    pub wal: Arc<WalSync>,
    pub config: LiveConfig,
    pub clients: ClientRegistry,
    pub stats: Stats,
    pub started: Instant,
    pub run_id: String,
    pub tcp_port: u16,
    pub executable: PathBuf,
    pub active_expire: AtomicBool,
    /// Cluster membership, when `cluster-enabled yes`.
    pub cluster: Option<Arc<Cluster>>,
    pub replication: crate::replication::Replication,
    pub migrate_links: migrate::MigrateLinks,
    /// Atomic slot migration jobs (CLUSTER MIGRATESLOTS).
    pub migrations: crate::migration::Migrations,
    /// Clients blocked on keys (BLPOP and friends).
    pub blocked: Arc<BlockedKeys>,
    /// Local pub/sub subscriptions.
    pub pubsub: Arc<pubsub::PubSub>,
    shutdown: Notify,
    bus_shutdown: Arc<Notify>,
    shutting_down: AtomicBool,
}

pub fn sync_mode(a: AppendFsync) -> SyncMode {
    match a {
        AppendFsync::Always => SyncMode::Always,
        AppendFsync::Everysec => SyncMode::Everysec,
        AppendFsync::No => SyncMode::No,
    }
}

impl Shared {
    /// Protocol limits from the current configuration.
    pub fn limits(&self) -> Limits {
        let c = self.config.snapshot();
        Limits {
            max_bulk_len: c.proto_max_bulk_len,
            max_query_buffer: c.client_query_buffer_limit,
        }
    }

    pub fn requirepass(&self) -> Option<String> {
        self.config
            .snapshot()
            .requirepass
            .clone()
            .filter(|p| !p.is_empty())
    }

    /// Starts a graceful shutdown: listeners stop, connections close, the WAL is synced.
    pub fn request_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
        self.bus_shutdown.notify_waiters();
        self.clients.kill_all();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// `(host, port)` of this node's primary when it is a replica (cluster state or REPLICAOF).
    pub fn replica_of(&self) -> Option<(String, u16)> {
        if let Some(cl) = &self.cluster {
            let p = cl.view().role_replica_of?;
            return cl.read(|st| st.nodes.get(&p).map(|n| (n.ip.clone(), n.port)));
        }
        self.config.snapshot().replicaof.clone()
    }

    /// Whether this node is a replica now, from the published cluster view (or REPLICAOF), so a
    /// promotion takes effect for clients the moment the cluster state changes.
    pub fn is_replica(&self) -> bool {
        match &self.cluster {
            Some(cl) => cl.view().role_replica_of.is_some(),
            None => self.config.snapshot().replicaof.is_some(),
        }
    }

    /// Fault injection: whether DEBUG CLUSTER-ISOLATE cut this node off.
    pub fn isolated(&self) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| c.isolated.load(Ordering::Relaxed))
    }

    /// Applies configuration changes that live outside the config store.
    pub fn config_changed(&self) {
        self.wal
            .set_mode(sync_mode(self.config.snapshot().appendfsync));
        if let Some(cl) = &self.cluster {
            cl.apply_config(&self.config.snapshot());
        }
    }
}

fn new_run_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..40)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

/// Opens storage and builds the shared state.
pub fn open(config: LiveConfig) -> anyhow::Result<Arc<Shared>> {
    let c: Arc<Config> = config.snapshot();
    let started = Instant::now();
    let cluster = if c.cluster_enabled {
        Some(Cluster::open(&c)?)
    } else {
        None
    };
    // A standalone node serves every slot; a cluster node what nodes.conf gives it.
    let serving: Vec<u16> = match &cluster {
        Some(cl) => cl.read(|st| {
            let me = st.myself;
            let shard = st.me().primary.unwrap_or(me);
            (0..crate::storage::SLOTS as u16)
                .filter(|s| st.slots[*s as usize] == Some(shard) || st.importing.contains_key(s))
                .collect()
        }),
        None => (0..crate::storage::SLOTS as u16).collect(),
    };
    let engine = Arc::new(
        Engine::open(&EngineOptions {
            dir: c.dir.clone(),
            block_cache_bytes: c.storage_block_cache_size as usize,
            write_buffer_bytes: c.storage_write_buffer_size as usize,
            slots_per_family: c.storage_slots_per_family as usize,
            serving,
        })
        .with_context(|| format!("opening storage in {}", c.dir.display()))?,
    );
    let keyspace = Keyspace::open(Arc::clone(&engine)).context("loading the keyspace")?;
    tracing::info!(
        "storage open in {:?}: {} keys in {} families",
        started.elapsed(),
        keyspace.dbsize(),
        engine.families().len()
    );
    let wal = WalSync::start(Arc::clone(&engine), sync_mode(c.appendfsync));
    let persisted = engine
        .get_meta(crate::replication::STATE_KEY)
        .context("reading the replication state")?
        .and_then(|v| crate::replication::decode_state(&v));
    let replication = crate::replication::Replication::new(persisted, c.repl_backlog_size);
    keyspace.set_write_log(Arc::clone(&replication.backlog) as Arc<dyn crate::keyspace::WriteLog>);
    let pubsub: Arc<pubsub::PubSub> = Default::default();
    if let Some(cl) = &cluster {
        let ps = Arc::clone(&pubsub);
        cl.on_published(Box::new(move |messages| {
            for m in messages {
                if m.shard {
                    ps.publish_shard(&m.channel, &m.message);
                } else {
                    ps.publish(&m.channel, &m.message);
                }
            }
        }));
    }
    Ok(Arc::new(Shared {
        keyspace,
        engine,
        wal,
        clients: ClientRegistry::default(),
        stats: Stats::default(),
        started,
        run_id: new_run_id(),
        tcp_port: c.port,
        executable: std::env::current_exe().unwrap_or_default(),
        active_expire: AtomicBool::new(true),
        cluster,
        replication,
        migrate_links: Default::default(),
        migrations: Default::default(),
        blocked: Default::default(),
        pubsub,
        shutdown: Notify::new(),
        bus_shutdown: Arc::new(Notify::new()),
        shutting_down: AtomicBool::new(false),
        config,
    }))
}

/// Serves clients until SIGTERM/SIGINT or SHUTDOWN, then syncs storage.
pub async fn run(shared: Arc<Shared>) -> anyhow::Result<()> {
    let c = shared.config.snapshot();
    crate::migration::recover(&shared).context("recovering interrupted slot migrations")?;
    let mut listeners = Vec::new();
    for addr in &c.bind {
        let l = TcpListener::bind((addr.as_str(), c.port))
            .await
            .with_context(|| format!("binding {addr}:{}", c.port))?;
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
        .with_context(|| format!("binding the cluster port on {addr}:{cport}"))?;
    let bus = shared.cluster.as_ref().map(|cl| {
        crate::rpc::bus_service(
            Arc::clone(cl) as Arc<dyn crate::rpc::BusService>,
            crate::cluster::bus_digest(&c),
        )
    });
    let repl_digest = c
        .requirepass
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(crate::rpc::secret_digest);
    let repl = crate::rpc::repl_service(
        Arc::new(crate::replication::PrimarySide::new(Arc::clone(&shared))),
        repl_digest.clone(),
    );
    let migration = shared.cluster.as_ref().map(|_| {
        crate::migration::spawn_idle_sweeper(Arc::clone(&shared));
        crate::rpc::migration_service(
            Arc::new(crate::migration::TargetSide(Arc::clone(&shared))),
            crate::cluster::bus_digest(&c),
        )
    });
    let backup = shared.cluster.as_ref().map(|_| {
        crate::rpc::backup_service(
            Arc::new(crate::migration::BackupNode(Arc::clone(&shared))),
            repl_digest.clone(),
        )
    });
    let sd = Arc::clone(&shared.bus_shutdown);
    tokio::spawn(async move {
        if let Err(e) = crate::rpc::serve(rpc_listener, bus, repl, migration, backup, async move {
            sd.notified().await
        })
        .await
        {
            tracing::error!("cluster port server failed: {e}");
        }
    });
    if let Some(cl) = &shared.cluster {
        crate::cluster::spawn_bus(Arc::clone(cl), Arc::clone(&shared.bus_shutdown));
    }
    crate::replication::spawn_replica_task(Arc::clone(&shared));
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
        tokio::spawn(accept_loop(Arc::clone(&shared), l));
    }
    tokio::spawn(active_expire_loop(Arc::clone(&shared)));
    tokio::spawn(ops_sampler(Arc::clone(&shared)));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = shared.shutdown.notified();
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
    shared
        .engine
        .sync_wal()
        .context("syncing the WAL at shutdown")?;
    tracing::info!("rockslot is now ready to exit, bye bye...");
    Ok(())
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
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
        let maxclients = shared.config.snapshot().maxclients as usize;
        let sh = Arc::clone(&shared);
        if sh.clients.count() >= maxclients {
            sh.stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            tokio::spawn(connection::reject(
                stream,
                "ERR max number of clients reached",
            ));
            continue;
        }
        tokio::spawn(async move { connection::serve(sh, stream, addr).await });
    }
}

async fn active_expire_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if shared.is_shutting_down() {
            return;
        }
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

async fn ops_sampler(shared: Arc<Shared>) {
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

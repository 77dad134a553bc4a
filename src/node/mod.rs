//! The node handle: what every connection and command handler of one node shares — the
//! keyspace and storage, live configuration, cluster membership, the replication and migration
//! subsystems (through their own small handles), connected clients, pub/sub and clients
//! blocked on keys.
//!
//! Owns: [`Node`] (built once by [`open`]), [`Stats`], the client registry, pub/sub, the
//! blocking registry. Must not: do socket I/O (the `server` does) or implement commands
//! (`command`); replication and migration never see a `Node`, only their handles.

pub mod access;
mod blocking;
mod clients;
pub mod commandlog;
pub mod latency;
pub mod notify;
pub mod pubsub;
pub mod slot_stats;
pub mod tracking;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

pub use blocking::{Blocked, BlockedKeys};
pub use clients::{ClientHandle, ClientMeta, ClientRegistry};

use crate::cluster::{Cluster, ClusterOpenError};
use crate::config::{AppendFsync, Config, LiveConfig};
use crate::keyspace::{Keyspace, KeyspaceError};
use crate::migration::{MigrateLinks, MigrationHandle, Migrations};
use crate::replication::{ReplHandle, Replication};
use crate::resp::Limits;
use crate::storage::{Engine, EngineOptions, StorageError, SyncMode, WalSync};

/// Counters shown by INFO.
#[derive(Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub commands_processed: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Clients closed because all query buffers together passed `maxmemory-clients`.
    pub evicted_clients: AtomicU64,
    /// Clients closed for passing their `client-output-buffer-limit`.
    pub output_limit_disconnections: AtomicU64,
    pub error_replies: AtomicU64,
    /// Operations per second over the last sampling period.
    pub ops_per_sec: AtomicU64,
}

/// Why a node could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("loading the cluster configuration: {0}")]
    Cluster(#[from] ClusterOpenError),
    #[error("opening storage in {0}: {1}")]
    Storage(String, StorageError),
    #[error("loading the keyspace: {0}")]
    Keyspace(#[from] KeyspaceError),
    #[error("{0}")]
    Scripting(String),
    #[error("{0}")]
    Acl(String),
}

/// Everything a command handler may reach. One per node, shared by all connections.
pub struct Node {
    pub keyspace: Arc<Keyspace>,
    pub engine: Arc<Engine>,
    pub wal: Arc<WalSync>,
    pub config: Arc<LiveConfig>,
    pub clients: ClientRegistry,
    pub stats: Stats,
    pub started: Instant,
    pub run_id: String,
    pub tcp_port: u16,
    pub executable: PathBuf,
    pub active_expire: AtomicBool,
    /// Cluster membership, when `cluster-enabled yes`.
    pub cluster: Option<Arc<Cluster>>,
    pub replication: Arc<Replication>,
    /// What the replication tasks see of this node.
    pub repl: Arc<ReplHandle>,
    /// Atomic slot migration jobs (CLUSTER MIGRATESLOTS).
    pub migrations: Arc<Migrations>,
    /// What slot migration and backup jobs see of this node.
    pub migration: Arc<MigrationHandle>,
    /// Clients blocked on keys (BLPOP and friends).
    pub blocked: Arc<BlockedKeys>,
    /// Local pub/sub subscriptions.
    pub pubsub: Arc<pubsub::PubSub>,
    /// Cancelled once at shutdown: listeners, the cluster port and background tasks stop.
    pub shutdown: CancellationToken,
    /// What peers must present on the cluster port (kept current by CONFIG SET).
    pub bus_auth: Arc<crate::cluster::PeerAuth>,
    pub repl_auth: Arc<crate::cluster::PeerAuth>,
    /// The Lua VM and the script cache (EVAL, EVALSHA, SCRIPT).
    pub scripts: crate::script::Scripts,
    /// COMMANDLOG / SLOWLOG.
    pub commandlog: commandlog::CommandLog,
    /// LATENCY's event samples.
    pub latency: latency::LatencyMonitor,
    /// CLUSTER SLOT-STATS' CPU and network figures.
    pub slot_stats: slot_stats::SlotStats,
    /// Keyspace notifications (`notify-keyspace-events`).
    pub notify: Arc<notify::Notifier>,
    /// CLIENT TRACKING's table.
    pub tracking: Arc<tracking::Tracking>,
    /// Key access times and frequencies (OBJECT IDLETIME and FREQ).
    pub access: access::AccessClock,
    /// ACL users (from `user` lines or the aclfile; `requirepass` is the default user's);
    /// a replica takes its primary's.
    pub acl: Arc<crate::acl::Acl>,
}

pub fn sync_mode(a: AppendFsync) -> SyncMode {
    match a {
        AppendFsync::Always => SyncMode::Always,
        AppendFsync::Everysec => SyncMode::Everysec,
        AppendFsync::No => SyncMode::No,
    }
}

impl Node {
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
        self.shutdown.cancel();
        self.clients.kill_all();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// `(host, port)` of this node's primary when it is a replica (cluster state or REPLICAOF).
    pub fn replica_of(&self) -> Option<(String, u16)> {
        if let Some(cl) = &self.cluster {
            let p = cl.view().role_replica_of?;
            return cl.read(|st| st.nodes.get(&p).map(|n| (n.ip.clone(), n.port)));
        }
        self.config.snapshot().replicaof.clone()
    }

    /// Whether this node is a replica now (see [`ReplHandle::is_replica`]).
    pub fn is_replica(&self) -> bool {
        self.repl.is_replica()
    }

    /// Fault injection: whether DEBUG CLUSTER-ISOLATE cut this node off.
    pub fn isolated(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.is_isolated())
    }

    /// Applies configuration changes that live outside the config store.
    pub fn config_changed(&self) {
        let c = self.config.snapshot();
        self.wal.set_mode(sync_mode(c.appendfsync));
        if let Some(cl) = &self.cluster {
            cl.apply_config(&c);
        }
        self.pubsub
            .set_output_limit(c.output_buffer_limits[crate::config::OUTPUT_CLASS_PUBSUB]);
        // A new requirepass, masterauth or cluster-bus-secret applies to the next call.
        self.bus_auth.refresh(&c);
        self.repl_auth.refresh(&c);
    }
}

fn new_run_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..40)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

/// How the node reaches its peers: the bus, the replication stream and the migration service
/// of other nodes (the gRPC edge implements these).
pub struct Transports {
    /// The credentials of the cluster port (bus, migration) and of replication (backup too).
    pub bus_auth: Arc<crate::cluster::PeerAuth>,
    pub repl_auth: Arc<crate::cluster::PeerAuth>,
    pub bus: Arc<dyn crate::cluster::BusTransport>,
    pub repl: Arc<dyn crate::replication::ReplConnector>,
    pub migration: Arc<dyn crate::migration::MigrationConnector>,
}

/// Opens storage and builds the node.
pub fn open(config: LiveConfig, transports: Transports) -> Result<Arc<Node>, NodeError> {
    let config = Arc::new(config);
    let c: Arc<Config> = config.snapshot();
    let started = Instant::now();
    let cluster = if c.cluster_enabled {
        Some(Cluster::open(&c, transports.bus)?)
    } else {
        None
    };
    // A standalone node serves every slot; a cluster node what nodes.conf gives it.
    let serving: Vec<u16> = match &cluster {
        Some(cl) => cl.read(|st| {
            let me = st.myself;
            let shard = st.me().primary.unwrap_or(me);
            (0..crate::slot::SLOTS as u16)
                .filter(|s| st.slots[*s as usize] == Some(shard) || st.importing.contains_key(s))
                .collect()
        }),
        None => (0..crate::slot::SLOTS as u16).collect(),
    };
    let engine = Arc::new(
        Engine::open(&EngineOptions {
            dir: c.dir.clone(),
            block_cache_bytes: c.storage_block_cache_size as usize,
            write_buffer_bytes: c.storage_write_buffer_size as usize,
            slots_per_family: c.storage_slots_per_family as usize,
            serving,
        })
        .map_err(|e| NodeError::Storage(c.dir.display().to_string(), e))?,
    );
    let keyspace = Arc::new(Keyspace::open(Arc::clone(&engine), c.database_count())?);
    tracing::info!(
        "storage open in {:?}: {} keys in {} families",
        started.elapsed(),
        keyspace.total_keys(),
        engine.families().len()
    );
    let wal = WalSync::start(Arc::clone(&engine), sync_mode(c.appendfsync));
    let persisted = engine
        .get_meta(crate::replication::STATE_KEY)
        .map_err(|e| NodeError::Storage(c.dir.display().to_string(), e))?
        .and_then(|v| crate::replication::decode_state(&v));
    let replication = Arc::new(Replication::new(persisted, c.repl_backlog_size));
    keyspace.set_write_log(Arc::clone(&replication.backlog) as Arc<dyn crate::keyspace::WriteLog>);
    let pubsub: Arc<pubsub::PubSub> = Default::default();
    pubsub.set_output_limit(c.output_buffer_limits[crate::config::OUTPUT_CLASS_PUBSUB]);
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
    let notifier: Arc<notify::Notifier> = Default::default();
    let tracker: Arc<tracking::Tracking> = Default::default();
    {
        let (n, ps, cfg) = (
            Arc::clone(&notifier),
            Arc::clone(&pubsub),
            Arc::clone(&config),
        );
        let tr = Arc::clone(&tracker);
        keyspace.on_expired(move |db, key| {
            let flags = n.flags(&cfg);
            if flags.wants(crate::config::KeyspaceEvents::EXPIRED) {
                n.publish(&ps, flags, "expired", db, key);
            }
            if tr.any() {
                tr.invalidate(&ps, &[bytes::Bytes::copy_from_slice(key)], 0);
            }
        });
        let (n, ps, cfg, tr) = (
            Arc::clone(&notifier),
            Arc::clone(&pubsub),
            Arc::clone(&config),
            Arc::clone(&tracker),
        );
        keyspace.on_fields_expired(move |db, key, emptied| {
            use crate::config::KeyspaceEvents as Ev;
            let flags = n.flags(&cfg);
            if flags.wants(Ev::HASH) {
                n.publish(&ps, flags, "hexpired", db, key);
            }
            if emptied && flags.wants(Ev::GENERIC) {
                n.publish(&ps, flags, "del", db, key);
            }
            if tr.any() {
                tr.invalidate(&ps, &[bytes::Bytes::copy_from_slice(key)], 0);
            }
        });
    }
    let shutdown = CancellationToken::new();
    let migrations: Arc<Migrations> = Default::default();
    let scripts = functions(&keyspace)?;
    let acl = Arc::new(users(&config)?);
    replicate_users(&keyspace, &acl);
    let repl = Arc::new(ReplHandle {
        keyspace: Arc::clone(&keyspace),
        engine: Arc::clone(&engine),
        config: config.clone(),
        cluster: cluster.clone(),
        replication: Arc::clone(&replication),
        shutdown: shutdown.clone(),
        upstream: transports.repl,
        peers: Arc::clone(&transports.migration),
    });
    let migration = Arc::new(MigrationHandle {
        keyspace: Arc::clone(&keyspace),
        engine: Arc::clone(&engine),
        config: config.clone(),
        cluster: cluster.clone(),
        migrations: Arc::clone(&migrations),
        shutdown: shutdown.clone(),
        peers: transports.migration,
        migrate_links: MigrateLinks::default(),
        replicas: Arc::clone(&repl) as Arc<dyn crate::migration::ReplicaWait>,
    });
    let node = Arc::new(Node {
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
        repl,
        migrations,
        migration,
        blocked: Default::default(),
        pubsub,
        shutdown,
        config,
        bus_auth: transports.bus_auth,
        repl_auth: transports.repl_auth,
        scripts,
        commandlog: Default::default(),
        latency: Default::default(),
        slot_stats: Default::default(),
        notify: notifier,
        tracking: tracker,
        access: Default::default(),
        acl,
    });
    node.users_at_start();
    Ok(node)
}

/// The scripting engine with the libraries stored on this node loaded, and told of every
/// committed change (replicated ones included).
fn functions(keyspace: &Keyspace) -> Result<crate::script::Scripts, NodeError> {
    let scripts = crate::script::Scripts::new().map_err(NodeError::Scripting)?;
    match keyspace.record(crate::keyspace::NodeRecord::Functions) {
        Ok(payload) => {
            if let Err(e) = scripts.load_stored(&payload) {
                tracing::error!("the stored function libraries do not load, none are loaded: {e}");
            }
        }
        Err(e) => tracing::error!("the stored function libraries cannot be read: {e}"),
    }
    keyspace.on_record_changed(
        crate::keyspace::NodeRecord::Functions,
        scripts.functions_inbox(),
    );
    Ok(scripts)
}

/// The ACL users at start: the aclfile's or the config's `user` lines (not both), with
/// `requirepass` as the default user's password.
fn users(config: &LiveConfig) -> Result<crate::acl::Acl, NodeError> {
    let acl = crate::acl::Acl::default();
    let all_channels = config.extra("acl-pubsub-default").as_deref() == Some("allchannels");
    acl.set_all_channels_default(all_channels);
    let lines = config.extra_lines("user");
    let aclfile = config.extra("aclfile").filter(|f| !f.is_empty());
    if !lines.is_empty() && aclfile.is_some() {
        return Err(NodeError::Acl(
            "Configuring Valkey with users defined in valkey.conf and at the same setting an ACL \
             file path is invalid. This setup is very likely to lead to configuration errors and \
             security holes, please define either an ACL file or declare users directly in your \
             valkey.conf, but not both."
                .into(),
        ));
    }
    let loaded = match aclfile {
        Some(path) => Some(crate::acl::load_file(
            std::path::Path::new(&path),
            all_channels,
        )),
        None if !lines.is_empty() => {
            let numbered: Vec<(usize, Vec<Vec<u8>>)> = lines
                .into_iter()
                .enumerate()
                .map(|(i, l)| (i + 1, l.into_iter().map(String::into_bytes).collect()))
                .collect();
            Some(crate::acl::users_from_lines(
                &numbered,
                "config",
                all_channels,
            ))
        }
        None => None,
    };
    // requirepass first: a `user default` line or the aclfile's default wins, as in Valkey.
    let pass = config.snapshot().requirepass.clone();
    if pass.as_deref().is_some_and(|p| !p.is_empty()) {
        acl.set_requirepass(pass.as_deref());
    }
    if let Some(users) = loaded {
        acl.replace(users.map_err(|e| NodeError::Acl(e.0))?);
    }
    Ok(acl)
}

/// ACL users replicate as configuration: a primary stores its users (ACL LIST's lines) as a
/// node record after each change (`Node::store_users`); a replica takes the record it gets
/// from its primary, so clients keep their credentials after a failover.
fn replicate_users(keyspace: &Keyspace, acl: &Arc<crate::acl::Acl>) {
    let acl = Arc::clone(acl);
    keyspace.on_record_changed(crate::keyspace::NodeRecord::Users, move |lines| {
        // Empty: the primary never stored users (it keeps its own, and so does this node).
        if lines.is_empty() || lines == acl.lines().as_slice() {
            return;
        }
        match crate::acl::users_from_text(lines) {
            Ok(users) => acl.replace(users),
            Err(e) => tracing::error!("the users from the primary do not load: {}", e.0),
        }
    });
}

impl Node {
    /// A replica starts with the users its primary last sent (they arrive again only when
    /// they change); a primary stores its own for its replicas.
    fn users_at_start(&self) {
        if !self.is_replica() {
            // Only when they changed: a write here would start a new replication history,
            // and a restarted replica could not continue from its offset.
            let stored = self.keyspace.record(crate::keyspace::NodeRecord::Users);
            if stored.is_ok_and(|s| s != self.acl.lines()) {
                self.store_users();
            }
            return;
        }
        match self.keyspace.record(crate::keyspace::NodeRecord::Users) {
            Ok(lines) if !lines.is_empty() => match crate::acl::users_from_text(&lines) {
                Ok(users) => self.acl.replace(users),
                Err(e) => tracing::error!("the stored users from the primary do not load: {}", e.0),
            },
            Ok(_) => {}
            Err(e) => tracing::error!("the stored users from the primary cannot be read: {e}"),
        }
    }

    /// Stores this primary's users for its replicas (a replica keeps its primary's).
    pub fn store_users(&self) {
        if self.is_replica() {
            return;
        }
        let lines = self.acl.lines();
        if let Err(e) = self
            .keyspace
            .set_record(crate::keyspace::NodeRecord::Users, lines)
        {
            tracing::error!("storing the ACL users for replicas: {e}");
        }
    }
}

//! Cluster mode: slot map, node table, gossip over the gRPC bus, failure detection, failover
//! (elections, manual failover, replica migration), epochs, nodes.conf, and the routing
//! decision (local / MOVED / ASK / CROSSSLOT / TRYAGAIN / CLUSTERDOWN).
//!
//! Owns: [`Cluster`] (the running node's cluster state behind one lock, mutated only through
//! the pure [`ClusterState`] methods), immutable [`View`]s published for routing, the bus task.
//! Must not: touch the keyspace (callers pass key counts in) or see protobuf types (`rpc` does).

mod bus_task;
pub mod failover;
pub mod nodes_conf;
pub mod peer_auth;
pub mod publish;
mod routing;
pub mod slot_table;
pub mod state;
pub mod transport;
pub mod types;
pub mod view;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

pub use failover::FailoverMode;
pub use peer_auth::{token as auth_token, PeerAuth};
pub use routing::{route, Access, Route};
pub use state::{ClusterError, ClusterState, Outgoing, SetSlot};
pub use transport::{secret_digest, BusCallError, BusService, BusTransport, Published};
pub use types::{NodeId, Role};

use crate::config::Config;
use view::BusStats;

pub fn now_ms() -> u64 {
    crate::keyspace::now_ms().max(0) as u64
}

/// What routing needs, rebuilt after every change: cheap to read from every connection.
#[derive(Debug, Default)]
pub struct View {
    pub myself: Option<NodeId>,
    pub role_replica_of: Option<NodeId>,
    pub ok: bool,
    /// Slot → index into `nodes`; shared with the next view while neither the slot table
    /// (its generation) nor the node list changes.
    pub slots: Arc<Vec<Option<u16>>>,
    slots_generation: u64,
    pub nodes: Vec<(NodeId, NodeAddr)>,
    pub migrating: HashMap<u16, u16>,
    pub importing: HashMap<u16, u16>,
    pub allow_reads_when_down: bool,
    /// Unix ms until which a manual failover pauses client writes on this primary; 0 = none.
    pub writes_paused_until: u64,
}

/// Where clients reach a node: over plain TCP, and over TLS (the same when it has no TLS port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    pub plain: String,
    pub tls: String,
}

impl View {
    pub(crate) fn build(st: &ClusterState, allow_reads_when_down: bool) -> View {
        Self::build_after(st, allow_reads_when_down, None)
    }

    /// [`View::build`] reusing `prev`'s slot map when the slot table and the node list are
    /// the same: most state changes (a PONG, a flag) leave them alone, and rebuilding the map
    /// walks the 650 KB slot table.
    pub(crate) fn build_after(
        st: &ClusterState,
        allow_reads_when_down: bool,
        prev: Option<&View>,
    ) -> View {
        let mut idx: HashMap<NodeId, u16> = HashMap::new();
        let mut nodes = Vec::new();
        for n in st.nodes.values() {
            idx.insert(n.id, nodes.len() as u16);
            nodes.push((
                n.id,
                NodeAddr {
                    plain: format!("{}:{}", n.ip, n.port),
                    tls: format!("{}:{}", n.ip, n.client_port(true)),
                },
            ));
        }
        let generation = st.slots.generation();
        let reusable = prev.filter(|p| {
            p.slots_generation == generation
                && !p.slots.is_empty()
                && p.nodes.len() == nodes.len()
                && p.nodes.iter().zip(&nodes).all(|(a, b)| a.0 == b.0)
        });
        let me = st.me();
        View {
            myself: Some(st.myself),
            role_replica_of: if me.role == Role::Replica {
                me.primary
            } else {
                None
            },
            ok: st.ok,
            slots: match reusable {
                Some(p) => Arc::clone(&p.slots),
                None => {
                    // Owners come in long runs: look an id up once per run, not once per slot.
                    let mut last: Option<(NodeId, Option<u16>)> = None;
                    Arc::new(
                        st.slots
                            .iter()
                            .map(|o| {
                                let id = (*o)?;
                                match last {
                                    Some((l, i)) if l == id => i,
                                    _ => {
                                        let i = idx.get(&id).copied();
                                        last = Some((id, i));
                                        i
                                    }
                                }
                            })
                            .collect(),
                    )
                }
            },
            slots_generation: generation,
            nodes,
            migrating: st
                .migrating
                .iter()
                .filter_map(|(s, id)| Some((*s, *idx.get(id)?)))
                .collect(),
            importing: st
                .importing
                .iter()
                .filter_map(|(s, id)| Some((*s, *idx.get(id)?)))
                .collect(),
            allow_reads_when_down,
            writes_paused_until: if me.is_primary() {
                st.failover.paused_until
            } else {
                0
            },
        }
    }
}

/// What nodes.conf must hold durably before a change takes effect: the last vote (never two
/// votes in one epoch), this node's config epoch and its role. Other changes (open slots,
/// slots lost to a newer owner, what gossip said of other nodes, a greater current epoch
/// learned from a peer) are written without fsync within one bus tick (100 ms): a crash that
/// loses them is healed by gossip (a stale claim loses to the newer epoch) or by `--cluster
/// fix`, and an election started from a forgotten, lower current epoch is refused by the
/// voters. That keeps each peer hearing of a new owner off the disk.
#[derive(PartialEq)]
struct SyncPoint {
    last_vote_epoch: u64,
    config_epoch: u64,
    role: Role,
    primary: Option<NodeId>,
}

impl SyncPoint {
    fn of(st: &ClusterState) -> SyncPoint {
        let me = st.me();
        SyncPoint {
            last_vote_epoch: st.last_vote_epoch,
            config_epoch: me.config_epoch,
            role: me.role,
            primary: me.primary,
        }
    }
}

/// The running node's cluster membership.
pub struct Cluster {
    state: Mutex<ClusterState>,
    view: RwLock<Arc<View>>,
    conf_path: PathBuf,
    pub(crate) stats: Mutex<BusStats>,
    pub(crate) client: Arc<dyn BusTransport>,
    pub(crate) wake: Notify,
    /// Fault injection (DEBUG CLUSTER-ISOLATE): drop all bus traffic both ways.
    pub isolated: std::sync::atomic::AtomicBool,
    allow_reads_when_down: bool,
    /// PUBLISH/SPUBLISH forwarding to other nodes.
    publish: publish::Forwarder,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterOpenError {
    #[error(transparent)]
    NodesConf(#[from] nodes_conf::NodesConfError),
}

fn announced_ip(c: &Config) -> String {
    if let Some(ip) = &c.cluster_announce_ip {
        return ip.clone();
    }
    c.bind
        .iter()
        .map(|b| b.trim_start_matches('-'))
        .find(|b| !matches!(*b, "*" | "0.0.0.0" | "::" | "::*"))
        .unwrap_or("")
        .to_string()
}

/// The digest of the bus secret peers must present: `cluster-bus-secret`, else `masterauth`,
/// else `requirepass`; none means an open bus (as Valkey's).
pub fn bus_digest(c: &Config) -> Option<String> {
    [&c.cluster_bus_secret, &c.masterauth, &c.requirepass]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .map(|s| secret_digest(s))
}

/// The digest of the replication password: `requirepass`; none means open replication.
pub fn repl_digest(c: &Config) -> Option<String> {
    c.requirepass
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(secret_digest)
}

impl Cluster {
    /// Loads nodes.conf (or starts a new node with a fresh id) and saves it back; the bus
    /// task talks to peers through `client`.
    pub fn open(
        c: &Config,
        client: Arc<dyn BusTransport>,
    ) -> Result<Arc<Cluster>, ClusterOpenError> {
        let now = now_ms();
        let path = c.cluster_config_path();
        let ip = announced_ip(c);
        let mut st = match nodes_conf::load(&path, now, c.cluster_node_timeout_ms)? {
            Some(mut st) => {
                let me = st.myself;
                if let Some(n) = st.nodes.get_mut(&me) {
                    if !ip.is_empty() {
                        n.ip = ip.clone();
                    }
                    n.port = c.port;
                    n.cport = c.cluster_bus_port();
                }
                st
            }
            None => ClusterState::new(NodeId::random(), ip, c.port, c.cluster_bus_port(), now),
        };
        let me = st.myself;
        if let Some(n) = st.nodes.get_mut(&me) {
            n.tls_port = c.tls.port;
        }
        apply_config(&mut st, c);
        st.writable_after = now + state::WRITABLE_DELAY_MS;
        st.update_health();
        nodes_conf::save(&st, &path)?;
        st.dirty = false;
        let view = View::build(&st, c.cluster_allow_reads_when_down);
        tracing::info!(
            "cluster node id {} ({} known nodes)",
            st.myself,
            st.nodes.len()
        );
        Ok(Arc::new(Cluster {
            state: Mutex::new(st),
            view: RwLock::new(Arc::new(view)),
            conf_path: path,
            stats: Mutex::new(BusStats::default()),
            client,
            wake: Notify::new(),
            isolated: std::sync::atomic::AtomicBool::new(false),
            allow_reads_when_down: c.cluster_allow_reads_when_down,
            publish: Default::default(),
        }))
    }

    /// Fault injection: whether DEBUG CLUSTER-ISOLATE cut this node off.
    pub fn is_isolated(&self) -> bool {
        self.isolated.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.view.read())
    }

    /// Runs `f` on the state, then publishes a new view and saves nodes.conf if needed.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut ClusterState) -> R) -> R {
        let mut st = self.state.lock();
        let before = SyncPoint::of(&st);
        let r = f(&mut st);
        self.publish_view(&st);
        // A change that must be durable is saved (fsynced) before it takes effect; the rest
        // is written by the bus task within a tick (`flush_config`), once for many changes.
        if st.dirty && SyncPoint::of(&st) != before {
            match nodes_conf::save(&st, &self.conf_path) {
                Ok(()) => st.dirty = false,
                Err(e) => tracing::error!("saving cluster config: {e}"),
            }
        }
        r
    }

    /// Like [`Cluster::with_state`], for changes made by a command (CLUSTER ADDSLOTS, MEET,
    /// SETSLOT, FORGET, a slot handover…): nodes.conf is written before this returns, so a
    /// killed process keeps the change, and fsynced when `sync` and the change touches what
    /// [`SyncPoint`] guards. CLUSTER SETSLOT passes `sync = false`, as Valkey 8.1 never syncs
    /// nodes.conf for it (it renames the file twice per moved slot): an fsync per SETSLOT
    /// doubled the time of a legacy reshard, and a machine crash that loses one is repaired
    /// by `--cluster fix`, as in Valkey.
    pub fn with_state_written<R>(&self, sync: bool, f: impl FnOnce(&mut ClusterState) -> R) -> R {
        let mut st = self.state.lock();
        let before = SyncPoint::of(&st);
        let r = f(&mut st);
        self.publish_view(&st);
        if st.dirty {
            let fsync = sync && SyncPoint::of(&st) != before;
            match nodes_conf::write(&st, &self.conf_path, fsync) {
                Ok(()) => st.dirty = false,
                Err(e) => tracing::error!("saving cluster config: {e}"),
            }
        }
        r
    }

    fn publish_view(&self, st: &ClusterState) {
        let prev = Arc::clone(&self.view.read());
        let next = View::build_after(st, self.allow_reads_when_down, Some(&prev));
        *self.view.write() = Arc::new(next);
    }

    /// Writes nodes.conf if it lags behind the state (no fsync: see [`SyncPoint`]). Called
    /// by the bus task every tick and by the server at shutdown.
    pub fn flush_config(&self) {
        let mut st = self.state.lock();
        if st.dirty {
            match nodes_conf::write(&st, &self.conf_path, false) {
                Ok(()) => st.dirty = false,
                Err(e) => tracing::error!("saving cluster config: {e}"),
            }
        }
    }

    /// Like [`Cluster::with_state`], but for changes that are a commit point (a slot
    /// migration taking its slots): the change is made on a copy and takes effect only once
    /// nodes.conf holds it. If the save fails nothing changed, not even in memory: a claim
    /// published but not saved would be forgotten by a restart while peers act on it.
    pub fn with_state_saved<R>(&self, f: impl FnOnce(&mut ClusterState) -> R) -> Result<R, String> {
        let mut st = self.state.lock();
        let mut next = st.clone();
        let r = f(&mut next);
        if next.dirty {
            if let Err(e) = nodes_conf::save(&next, &self.conf_path) {
                tracing::error!("saving cluster config at a commit point: {e}");
                return Err(format!("could not save the cluster configuration: {e}"));
            }
            next.dirty = false;
        }
        *st = next;
        self.publish_view(&st);
        Ok(r)
    }

    /// Read-only access for renderings.
    pub fn read<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        f(&self.state.lock())
    }

    pub fn stats(&self) -> BusStats {
        *self.stats.lock()
    }

    pub fn set_node_timeout(&self, ms: u64) {
        self.with_state(|st| st.node_timeout = ms);
    }

    /// Applies the cluster directives CONFIG SET may change (node timeout, failover and
    /// replica migration settings).
    pub fn apply_config(&self, c: &Config) {
        self.with_state(|st| apply_config(st, c));
    }

    /// Reports this node's replication offset (the replication module calls this: on a
    /// replica after applying a batch, on a primary as its stream advances). Cheap: no view
    /// rebuild, no nodes.conf write.
    pub fn set_repl_offset(&self, offset: u64) {
        self.state.lock().set_repl_offset(offset, now_ms());
    }

    /// CLUSTER FAILOVER [FORCE|TAKEOVER]: starts it and sends what it needs at once.
    pub fn failover(self: &Arc<Self>, mode: FailoverMode) -> Result<(), ClusterError> {
        let out = self.with_state(|st| st.manual_failover(mode, now_ms()))?;
        for o in out {
            bus_task::send(self, o);
        }
        self.poke();
        Ok(())
    }

    /// Wakes the bus task (after MEET, so the handshake starts at once).
    pub fn poke(&self) {
        self.wake.notify_one();
    }
}

fn apply_config(st: &mut ClusterState, c: &Config) {
    st.node_timeout = c.cluster_node_timeout_ms;
    st.require_full_coverage = c.cluster_require_full_coverage;
    st.replica_validity_factor = c.cluster_replica_validity_factor as u64;
    st.set_no_failover(c.cluster_replica_no_failover);
    st.migration_barrier = c.cluster_migration_barrier;
    st.allow_replica_migration = c.cluster_allow_replica_migration;
    st.sync_replication = c.replica_ack_before_reply;
}

pub use bus_task::{announce, spawn_bus};

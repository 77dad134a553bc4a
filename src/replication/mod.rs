//! Replication: the primary streams effects (committed write batches) tagged with a monotonic
//! offset; a new or far-behind replica first gets a full sync (SST files of a consistent
//! snapshot), a reconnecting one continues from its persisted offset.
//!
//! Owns: [`Replication`] (backlog, connected replicas and their acknowledged offsets, the
//! upstream link status), the primary side of the stream (`primary`), the replica task
//! (`replica`), INFO replication / ROLE / WAIT support.
//! Must not: decide roles (cluster mode: the cluster state does; standalone: REPLICAOF).

pub mod backlog;
mod primary;
mod replica;
pub mod wire;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

pub use backlog::Backlog;
pub use primary::PrimarySide;
pub use replica::spawn_replica_task;
pub use wire::{Hello, ReplConnector, ReplSource};

use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::config::LiveConfig;
use crate::keyspace::Keyspace;
use crate::migration::MigrationConnector;
use crate::storage::Engine;

/// What the replication tasks reach of the node: storage, configuration, cluster membership
/// and how to reach other nodes. Built once by the node.
pub struct ReplHandle {
    pub keyspace: Arc<Keyspace>,
    pub engine: Arc<Engine>,
    pub config: Arc<LiveConfig>,
    pub cluster: Option<Arc<Cluster>>,
    pub replication: Arc<Replication>,
    pub shutdown: CancellationToken,
    /// Opens the stream from a primary.
    pub upstream: Arc<dyn ReplConnector>,
    /// Fetches migrated slots from the primary after a slot migration.
    pub peers: Arc<dyn MigrationConnector>,
}

impl ReplHandle {
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Fault injection: whether DEBUG CLUSTER-ISOLATE cut this node off.
    pub fn isolated(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.is_isolated())
    }

    /// Takes over the stream as a primary, once: the backlog gets a new replication id (the
    /// old one stays valid up to this offset for former siblings) and writes are accepted.
    /// The replica task calls it when it sees the role change, and dispatch before a write
    /// that arrives first, so no write is ever logged under the old id: a former peer with
    /// its own writes beyond our offset under that id would otherwise continue from it.
    pub fn ensure_primary(&self) {
        let _role = self.replication.role.lock();
        if self.keyspace.is_read_only() && !self.is_replica() {
            self.replication.backlog.promote();
            self.keyspace.set_read_only(false);
            *self.replication.upstream.lock() = None;
            tracing::info!("this node is now a primary");
        }
    }

    /// Whether this node is a replica now, from the published cluster view (or REPLICAOF), so a
    /// promotion takes effect for clients the moment the cluster state changes.
    pub fn is_replica(&self) -> bool {
        match &self.cluster {
            Some(cl) => cl.view().role_replica_of.is_some(),
            None => self.config.snapshot().replicaof.is_some(),
        }
    }
}

/// Meta record holding the replica's `replid(40) | offset:u64le`, written with every applied
/// batch so a restarted replica resumes where it stopped.
pub const STATE_KEY: &[u8] = b"repl-state";

pub fn encode_state(replid: &str, offset: u64) -> Vec<u8> {
    let mut v = replid.as_bytes().to_vec();
    v.extend_from_slice(&offset.to_le_bytes());
    v
}

pub fn decode_state(v: &[u8]) -> Option<(String, u64)> {
    if v.len() != 48 {
        return None;
    }
    let id = std::str::from_utf8(&v[..40]).ok()?.to_string();
    Some((id, u64::from_le_bytes(v[40..].try_into().ok()?)))
}

/// A replica connected to this node.
#[derive(Debug, Clone)]
pub struct Link {
    pub ip: String,
    pub port: u16,
    pub node_id: String,
    pub ack: u64,
    pub last_ack: Instant,
    pub online: bool,
    /// The offset this primary has sent the replica up to: acks count no further.
    pub sent: u64,
}

/// This node's view of its own primary (when it is a replica).
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub link_up: bool,
    pub syncing: bool,
    pub last_io: Option<Instant>,
    pub full_syncs: u64,
    pub partial_syncs: u64,
}

pub struct Replication {
    pub backlog: Arc<Backlog>,
    /// Held while a replicated batch is applied and while the node takes over as a primary,
    /// so neither happens in the middle of the other.
    role: Mutex<()>,
    /// Fault injection (DEBUG REPL-PROMOTE-DELAY): how long the replica task waits before it
    /// takes over as a primary once the role changed.
    pub promote_delay_ms: AtomicU64,
    links: Mutex<BTreeMap<u64, Link>>,
    next_link: AtomicU64,
    acks: watch::Sender<u64>,
    pub upstream: Mutex<Option<Upstream>>,
    pub full_syncs_served: AtomicU64,
    pub partial_syncs_served: AtomicU64,
}

impl Replication {
    /// `persisted` is the replica state found on disk, if any: the node continues that stream.
    pub fn new(persisted: Option<(String, u64)>, backlog_size: u64) -> Replication {
        let (replid, offset) = persisted.unwrap_or_else(|| (backlog::new_replid(), 0));
        let (acks, _) = watch::channel(0);
        Replication {
            backlog: Arc::new(Backlog::new(replid, offset, backlog_size)),
            role: Mutex::new(()),
            promote_delay_ms: AtomicU64::new(0),
            links: Mutex::new(BTreeMap::new()),
            next_link: AtomicU64::new(1),
            acks,
            upstream: Mutex::new(None),
            full_syncs_served: AtomicU64::new(0),
            partial_syncs_served: AtomicU64::new(0),
        }
    }

    fn add_link(&self, mut l: Link) -> u64 {
        // What a replica says it holds when it connects proves nothing until it is sent.
        l.ack = l.ack.min(l.sent);
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        self.links.lock().insert(id, l);
        id
    }

    fn set_online(&self, id: u64) {
        if let Some(l) = self.links.lock().get_mut(&id) {
            l.online = true;
        }
    }

    /// Records what the stream is about to hand the replica (before it is sent, so an ack
    /// that comes back at once counts).
    pub fn note_sent(&self, id: u64, offset: u64) {
        if let Some(l) = self.links.lock().get_mut(&id) {
            l.sent = l.sent.max(offset);
        }
    }

    pub fn ack(&self, id: u64, offset: u64) {
        if let Some(l) = self.links.lock().get_mut(&id) {
            if offset > l.sent {
                tracing::debug!("replica acked offset {offset} beyond {} sent", l.sent);
            }
            l.ack = l.ack.max(offset.min(l.sent));
            l.last_ack = Instant::now();
        }
        self.acks.send_modify(|n| *n += 1);
    }

    pub fn remove_link(&self, id: u64) {
        self.links.lock().remove(&id);
        self.acks.send_modify(|n| *n += 1);
    }

    pub fn links(&self) -> Vec<Link> {
        self.links.lock().values().cloned().collect()
    }

    /// Replicas that acknowledged at least `offset`.
    pub fn acked(&self, offset: u64) -> usize {
        self.links
            .lock()
            .values()
            .filter(|l| l.online && l.ack >= offset)
            .count()
    }

    /// Replicas that acknowledged within `max_lag` (min-replicas-to-write).
    pub fn good_replicas(&self, max_lag: Duration) -> usize {
        self.links
            .lock()
            .values()
            .filter(|l| l.online && l.last_ack.elapsed() <= max_lag)
            .count()
    }

    /// WAIT: until `n` replicas acknowledged `offset` or `timeout` (None = forever, bounded by
    /// the caller's connection) passes. Returns how many did.
    pub async fn wait_acked(&self, n: usize, offset: u64, timeout: Option<Duration>) -> usize {
        self.wait_for_acks(offset, timeout, |got, _| got >= n)
            .await
            .0
    }

    /// Waits until every replica online at the time has acknowledged `offset` (a replica that
    /// disconnects meanwhile stops counting), or `timeout` passes. Returns (acknowledged,
    /// online).
    pub async fn wait_all_acked(&self, offset: u64, timeout: Duration) -> (usize, usize) {
        self.wait_for_acks(offset, Some(timeout), |got, online| got == online)
            .await
    }

    /// Waits until `enough(acknowledged offset, online)` or the timeout; returns the counts
    /// as they are then.
    async fn wait_for_acks(
        &self,
        offset: u64,
        timeout: Option<Duration>,
        enough: impl Fn(usize, usize) -> bool,
    ) -> (usize, usize) {
        let mut rx = self.acks.subscribe();
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut last = false;
        loop {
            let counts = {
                let links = self.links.lock();
                let online = links.values().filter(|l| l.online);
                (
                    online.clone().filter(|l| l.ack >= offset).count(),
                    online.count(),
                )
            };
            if last || enough(counts.0, counts.1) {
                return counts;
            }
            let changed = rx.changed();
            // Timed out or no more acks can come: count once more and return.
            last = match deadline {
                Some(d) => !matches!(tokio::time::timeout_at(d, changed).await, Ok(Ok(()))),
                None => changed.await.is_err(),
            };
        }
    }

    /// The `# Replication` section of INFO.
    pub fn info(&self, replica_of: Option<(String, u16)>) -> String {
        let p = self.backlog.position();
        let mut out = String::new();
        let mut l = |s: String| {
            out.push_str(&s);
            out.push_str("\r\n");
        };
        l("# Replication".into());
        match replica_of {
            Some((host, port)) => {
                let up = self.upstream.lock().clone().unwrap_or_default();
                l("role:slave".into());
                l(format!("master_host:{host}"));
                l(format!("master_port:{port}"));
                l(format!(
                    "master_link_status:{}",
                    if up.link_up { "up" } else { "down" }
                ));
                l(format!(
                    "master_last_io_seconds_ago:{}",
                    up.last_io
                        .map(|t| t.elapsed().as_secs() as i64)
                        .unwrap_or(-1)
                ));
                l(format!("master_sync_in_progress:{}", u8::from(up.syncing)));
                l(format!("slave_read_repl_offset:{}", p.offset));
                l(format!("slave_repl_offset:{}", p.offset));
                l("slave_priority:100".into());
                l("slave_read_only:1".into());
                l("replica_announced:1".into());
            }
            None => l("role:master".into()),
        }
        let links = self.links();
        l(format!(
            "connected_slaves:{}",
            links.iter().filter(|x| x.online).count()
        ));
        for (i, x) in links.iter().filter(|x| x.online).enumerate() {
            l(format!(
                "slave{i}:ip={},port={},state=online,offset={},lag={}",
                x.ip,
                x.port,
                x.ack,
                x.last_ack.elapsed().as_secs()
            ));
        }
        l("master_failover_state:no-failover".into());
        l(format!("master_replid:{}", p.replid));
        l(format!("master_replid2:{}", p.replid2));
        l(format!("master_repl_offset:{}", p.offset));
        l(format!("second_repl_offset:{}", p.second_offset));
        l("repl_backlog_active:1".into());
        l(format!("repl_backlog_size:{}", p.limit));
        l(format!("repl_backlog_first_byte_offset:{}", p.start + 1));
        l(format!("repl_backlog_histlen:{}", p.histlen));
        let _ = write!(out, "");
        out
    }
}

#[async_trait::async_trait]
impl crate::migration::ReplicaWait for ReplHandle {
    async fn replicas_caught_up(&self, timeout: Duration) -> (usize, usize) {
        let offset = self.replication.backlog.position().offset;
        self.replication.wait_all_acked(offset, timeout).await
    }

    fn ensure_primary(&self) {
        ReplHandle::ensure_primary(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{Entry, Keyspace, Update, Value, WriteLog};
    use crate::storage::{Batch, Engine};

    /// A primary's (replid, offset) is stored with every batch it records, so after a restart
    /// it comes back where its data is. It used to come back at its replica-era position, from
    /// which a sibling replica could continue and miss every write made since the promotion.
    #[test]
    fn primary_position_is_persisted_with_its_writes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open_for_test(dir.path()));
        let ks = Keyspace::open(Arc::clone(&engine), 16).unwrap();
        let old = "a".repeat(40);
        // Replica era: the stream's position is stored with the applied batches.
        ks.apply_replicated(&Batch::new().encode(), STATE_KEY, encode_state(&old, 100))
            .unwrap();
        let repl = Replication::new(Some((old.clone(), 100)), 1 << 20);
        ks.set_write_log(Arc::clone(&repl.backlog) as Arc<dyn WriteLog>);
        repl.backlog.activate();
        repl.backlog.promote();
        for i in 0..3 {
            ks.update(format!("k{i}").as_bytes(), |_| {
                let value = Value::Str(bytes::Bytes::from_static(b"v"));
                (
                    Update::Put(Entry {
                        value,
                        expire_at: None,
                    }),
                    (),
                )
            })
            .unwrap();
        }
        let now = repl.backlog.position();
        assert_ne!(now.replid, old);
        assert!(now.offset > 100);
        let stored = engine
            .get_meta(STATE_KEY)
            .unwrap()
            .and_then(|v| decode_state(&v));
        assert_eq!(stored, Some((now.replid, now.offset)));
    }

    /// A replica clears imported slots before ingesting their fetched state. That delete is
    /// its own and must not enter its backlog: it used to be recorded at the offset the
    /// stream's SlotsImported marker then arrived with, so the marker was dropped and a
    /// replica continuing from this node after a failover got a delete of the slots instead.
    #[test]
    fn replica_fetch_keeps_the_streams_marker_in_its_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open_for_test(dir.path()));
        let ks = Keyspace::open(Arc::clone(&engine), 16).unwrap();
        let id = "b".repeat(40);
        let repl = Replication::new(Some((id.clone(), 0)), 1 << 20);
        ks.set_write_log(Arc::clone(&repl.backlog) as Arc<dyn WriteLog>);
        repl.backlog.activate();
        let mut marker = Batch::new();
        marker.slots_imported(0, 9);
        let frame = marker.encode();
        let end = frame.len() as u64;
        ks.replica_drop_slots(&[(0, 9)]).unwrap();
        ks.apply_replicated(&frame, STATE_KEY, encode_state(&id, end))
            .unwrap();
        repl.backlog.append_at(end, frame.clone());
        let held = repl.backlog.frames_after(0).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].0, end);
        assert_eq!(
            *held[0].1, frame,
            "the backlog holds the marker, not a delete"
        );
    }

    /// WAIT counts a replica only for what this primary sent it: an acknowledgement (or the
    /// offset a replica announces when it connects) beyond that is not proof of anything.
    #[test]
    fn acks_count_only_up_to_what_was_sent() {
        let repl = Replication::new(None, 1 << 20);
        let link = repl.add_link(Link {
            ip: "127.0.0.1".into(),
            port: 1,
            node_id: String::new(),
            ack: 5_000,
            last_ack: Instant::now(),
            online: false,
            sent: 0,
        });
        repl.set_online(link);
        repl.ack(link, 9_000);
        assert_eq!(repl.acked(1), 0, "nothing was sent to this replica");
        let end = repl.backlog.append(vec![0; 100]);
        repl.note_sent(link, end);
        repl.ack(link, 9_000);
        assert_eq!(repl.acked(end), 1);
        assert_eq!(repl.acked(end + 1), 0);
    }

    /// Writes committed before any replica connected are not in the stream: the position
    /// stored earlier cannot be continued from once recording starts.
    #[test]
    fn unrecorded_writes_start_a_new_history() {
        let old = "a".repeat(40);
        let b = Backlog::new(old.clone(), 500, 1 << 20);
        assert!(b.can_continue(&old, 500));
        b.skipped();
        b.activate();
        assert!(!b.can_continue(&old, 500));
        assert_eq!(b.position().offset, 500);
        // Without unrecorded writes the stored position stays valid.
        let b = Backlog::new(old.clone(), 500, 1 << 20);
        b.activate();
        assert!(b.can_continue(&old, 500));
    }
}

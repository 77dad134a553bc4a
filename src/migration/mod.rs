//! Atomic slot migration (`CLUSTER MIGRATESLOTS`): the source streams a snapshot of the slots
//! to the target, then the writes made meanwhile, pauses writes on those slots briefly and
//! hands them over; the target ingests the data as SST files into hidden slots and takes
//! ownership with a config-epoch bump. Clients only ever see MOVED.
//!
//! Also the legacy path (`legacy`: MIGRATE's network side, for redis-cli's reshard) and slot
//! backups (`backup`).
//!
//! Owns: [`MigrationHandle`] (what jobs reach of the node), the job table (GETSLOTMIGRATIONS),
//! the persisted job records that let either side roll back or finish after a crash, the
//! source driver (`export`), the target side (`import`), the transport traits the gRPC edge
//! implements (`transport`). Must not: touch RocksDB (it goes through `keyspace`) or protobuf
//! (`rpc`).

mod backup;
mod export;
mod import;
pub mod legacy;
mod records;
mod transport;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, NodeId};
use crate::config::LiveConfig;
use crate::keyspace::{Keyspace, Ranges};
use crate::storage::Engine;

pub use backup::BackupNode;
pub use import::{spawn_idle_sweeper, TargetSide};
pub use legacy::{MigrateLinks, MigrateRequest};
pub use records::{InState, OutPhase};
pub use transport::{
    BackupSide, ChunkStream, CommitError, DataChunk, ImportSide, ImportStatus, MigrationConnector,
    MigrationPeer, OutChunks, StageReport,
};

/// What migration and backup jobs reach of the node: storage, configuration, cluster
/// membership, the job table and how to reach other nodes. Built once by the node.
pub struct MigrationHandle {
    pub keyspace: Arc<Keyspace>,
    pub engine: Arc<Engine>,
    pub config: Arc<LiveConfig>,
    pub cluster: Option<Arc<Cluster>>,
    pub migrations: Arc<Migrations>,
    pub shutdown: CancellationToken,
    pub peers: Arc<dyn MigrationConnector>,
    /// Cached connections of the legacy MIGRATE command.
    pub migrate_links: MigrateLinks,
    /// This node's replicas: a target takes imported slots only once they hold them.
    pub replicas: Arc<dyn ReplicaWait>,
}

/// What slot jobs need of replication: a migration target (or a restore) learns that its own
/// replicas hold what it loaded (they fetch the slots when their stream reaches the marker,
/// and acknowledge after), and a node promoted a moment ago takes over its replication stream
/// before a job writes, as a client write would through dispatch.
#[async_trait::async_trait]
pub trait ReplicaWait: Send + Sync {
    /// Waits until every replica online now acknowledged everything written so far, or
    /// `timeout`; returns (acknowledged, online).
    async fn replicas_caught_up(&self, timeout: std::time::Duration) -> (usize, usize);
    /// Starts this node's own replication history if the cluster made it a primary and the
    /// replica task has not taken over yet.
    fn ensure_primary(&self);
}

impl MigrationHandle {
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Fault injection: whether DEBUG CLUSTER-ISOLATE cut this node off.
    pub fn isolated(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.is_isolated())
    }
}

/// Why recovery of interrupted jobs at start-up failed.
#[derive(Debug, thiserror::Error)]
#[error("recovering interrupted slot migrations: {0}")]
pub struct RecoverError(pub String);

/// Finished jobs kept for GETSLOTMIGRATIONS (Valkey's cluster-slot-migration-log-max-len).
const LOG_MAX: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operation {
    Export,
    Import,
}

/// One job as GETSLOTMIGRATIONS shows it.
#[derive(Debug, Clone)]
pub struct JobInfo {
    pub name: String,
    pub operation: Operation,
    pub ranges: Ranges,
    pub source: NodeId,
    pub target: NodeId,
    pub create_time: u64,
    pub last_update_time: u64,
    pub last_ack_time: u64,
    pub state: JobState,
    pub message: String,
    pub keys: u64,
    pub bytes: u64,
}

/// A job's state as GETSLOTMIGRATIONS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Connecting,
    Snapshot,
    CatchingUp,
    Paused,
    Loading,
    Success,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Connecting => "connecting",
            JobState::Snapshot => "snapshot",
            JobState::CatchingUp => "catching-up",
            JobState::Paused => "paused",
            JobState::Loading => "loading",
            JobState::Success => "success",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl JobInfo {
    pub fn active(&self) -> bool {
        !matches!(
            self.state,
            JobState::Success | JobState::Failed | JobState::Cancelled
        )
    }
}

struct Job {
    info: JobInfo,
    cancel: Arc<AtomicBool>,
    /// CANCELSLOTMIGRATIONS <job> FORCE: keep the slots without the target's answer.
    keep: bool,
}

/// A validated `NODE` block of MIGRATESLOTS.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub ranges: Ranges,
    pub target: NodeId,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MigrateError {
    #[error("ERR This command is only valid in cluster mode")]
    NoCluster,
    #[error("ERR Please use MIGRATESLOTS only with primaries.")]
    NotPrimary,
    #[error("ERR I don't know about node {0}")]
    UnknownNode(String),
    #[error("ERR Can't migrate slots to myself")]
    ToMyself,
    #[error("ERR Target node {0} is not a primary")]
    TargetNotPrimary(String),
    #[error("ERR Slot {0} specified multiple times")]
    Repeated(u16),
    #[error("ERR I'm not the owner of hash slot {0}")]
    NotOwner(u16),
    #[error("ERR Slot {0} is already being migrated")]
    Busy(u16),
    #[error("ERR No slot migration job named {0}")]
    UnknownJob(String),
}

/// The node's migration jobs.
#[derive(Default)]
pub struct Migrations {
    jobs: Mutex<Vec<Job>>,
    /// Test hook (DEBUG SLOT-MIGRATION-DELAY): a pause after each data chunk sent.
    pub chunk_delay_ms: AtomicU64,
    /// Test hook (DEBUG SLOT-MIGRATION-COMMIT-DELAY): a target's pause right after it took
    /// the slots at Commit.
    pub commit_delay_ms: AtomicU64,
    /// Test hook (DEBUG RESTORE-DELAY): a pause before a restore's stage answers and before its
    /// commit starts.
    pub restore_delay_ms: AtomicU64,
    pub(crate) imports: import::Imports,
    pub(crate) staged: backup::StagedJobs,
}

pub fn unix_secs() -> u64 {
    crate::cluster::now_ms() / 1000
}

/// The job names a node accepts from a peer (migrations and backups): one safe charset, so a
/// name used as a directory never leaves the node's migration or restore folder.
pub fn valid_job_name(job: &str) -> bool {
    !job.is_empty()
        && job.len() <= 64
        && job
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn new_job_name() -> String {
    NodeId::random().to_string()
}

pub use crate::slot::ranges_text;

impl Migrations {
    pub fn list(&self) -> Vec<JobInfo> {
        self.jobs.lock().iter().map(|j| j.info.clone()).collect()
    }

    /// Slots of active jobs (either direction).
    pub fn busy(&self, slot: u16) -> bool {
        self.jobs
            .lock()
            .iter()
            .any(|j| j.info.active() && crate::keyspace::in_ranges(&j.info.ranges, slot))
    }

    fn add(&self, info: JobInfo) -> Arc<AtomicBool> {
        let cancel = Arc::new(AtomicBool::new(false));
        let mut jobs = self.jobs.lock();
        jobs.push(Job {
            info,
            cancel: Arc::clone(&cancel),
            keep: false,
        });
        while jobs.len() > LOG_MAX {
            match jobs.iter().position(|j| !j.info.active()) {
                Some(i) => {
                    jobs.remove(i);
                }
                None => break,
            }
        }
        cancel
    }

    /// Whether the operator told the job to keep its slots (see [`Migrations::cancel`]).
    fn keep_requested(&self, name: &str) -> bool {
        self.jobs
            .lock()
            .iter()
            .any(|j| j.keep && j.info.name == name)
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut JobInfo)) {
        if let Some(j) = self.jobs.lock().iter_mut().find(|j| j.info.name == name) {
            f(&mut j.info);
            j.info.last_update_time = unix_secs();
        }
    }

    /// Cancels active export jobs started here (all, or the named one). Returns how many.
    /// With `force` (one named job only), a job whose Commit outcome is unknown stops waiting
    /// for the target's answer and keeps the slots here: the operator's call when the target
    /// is gone for good.
    pub fn cancel(&self, name: Option<&str>, force: bool) -> Result<usize, MigrateError> {
        let mut jobs = self.jobs.lock();
        let mut n = 0;
        for j in jobs.iter_mut() {
            if j.info.operation == Operation::Export
                && j.info.active()
                && name.is_none_or(|x| x == j.info.name)
            {
                j.cancel.store(true, Ordering::Relaxed);
                j.keep |= force;
                n += 1;
            }
        }
        if let Some(x) = name {
            if n == 0 && !jobs.iter().any(|j| j.info.name == x) {
                return Err(MigrateError::UnknownJob(x.to_string()));
            }
        }
        Ok(n)
    }
}

impl MigrationHandle {
    /// Validates every block of a MIGRATESLOTS call, then starts one export job per block;
    /// nothing starts unless all are valid.
    pub fn start(self: &Arc<Self>, reqs: Vec<Request>) -> Result<(), MigrateError> {
        let jobs = &self.migrations;
        let cluster = self.cluster.clone().ok_or(MigrateError::NoCluster)?;
        let myself = cluster.read(|st| {
            if !st.me().is_primary() {
                return Err(MigrateError::NotPrimary);
            }
            let mut seen = std::collections::BTreeSet::new();
            for r in &reqs {
                let t = st
                    .nodes
                    .get(&r.target)
                    .ok_or_else(|| MigrateError::UnknownNode(r.target.to_string()))?;
                if r.target == st.myself {
                    return Err(MigrateError::ToMyself);
                }
                if !t.is_primary() {
                    return Err(MigrateError::TargetNotPrimary(r.target.to_string()));
                }
                for &(a, b) in &r.ranges {
                    for s in a..=b {
                        if !seen.insert(s) {
                            return Err(MigrateError::Repeated(s));
                        }
                        if st.slots[s as usize] != Some(st.myself) {
                            return Err(MigrateError::NotOwner(s));
                        }
                        if st.migrating.contains_key(&s)
                            || st.importing.contains_key(&s)
                            || jobs.busy(s)
                        {
                            return Err(MigrateError::Busy(s));
                        }
                    }
                }
            }
            Ok(st.myself)
        })?;
        for r in reqs {
            let now = unix_secs();
            let name = new_job_name();
            let cancel = jobs.add(JobInfo {
                name: name.clone(),
                operation: Operation::Export,
                ranges: r.ranges.clone(),
                source: myself,
                target: r.target,
                create_time: now,
                last_update_time: now,
                last_ack_time: now,
                state: JobState::Connecting,
                message: String::new(),
                keys: 0,
                bytes: 0,
            });
            tokio::spawn(export::run(Arc::clone(self), name, r, cancel));
        }
        Ok(())
    }
}

/// Finishes or rolls back what a crash interrupted; runs before the node serves clients.
pub fn recover(shared: &Arc<MigrationHandle>) -> Result<(), RecoverError> {
    backup::clear_staging(shared);
    if shared.cluster.is_none() {
        return Ok(());
    }
    import::recover(shared)?;
    export::recover(shared)
}

//! The source side of a slot migration: one task per job. Snapshot + tap, stream the sorted
//! data, ship the writes made meanwhile until little is left, pause writes on the slots, ship
//! the rest with Commit, then hand the slots over and drop them here. Any failure before
//! Commit rolls back (the target drops its copy); an unknown Commit outcome keeps the slots
//! paused until the target says what happened.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_stream::wrappers::ReceiverStream;

use super::records::{self, OutPhase, Record};
use super::transport::{CommitError, ImportStatus, MigrationPeer};
use super::DataChunk;
use super::MigrationHandle;
use super::{unix_secs, JobState, Request};
use crate::cluster::NodeId;
use crate::keyspace::{Ranges, Tap, WritePause};

const CHUNK_ENTRIES: usize = 4096;
const CHUNK_BYTES: usize = 1 << 20;
/// Catch-up rounds before pausing: stop when less than this is left.
const CATCH_UP_BYTES: u64 = 256 << 10;
const CATCH_UP_ROUNDS: usize = 64;
/// How long a job interrupted by a restart before Commit keeps asking the target to abort.
const RESOLVE_FOR: Duration = Duration::from_secs(600);
/// When a source still without the answer to its Commit says so in the job and the log.
const UNANSWERED_AFTER: Duration = Duration::from_secs(10);
/// One round of asking the target, connection included.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum Failure {
    Cancelled,
    Failed(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Failed(s)
    }
}

/// Undoes the source-side effects of a job that did not commit.
struct Undo<'a> {
    shared: &'a MigrationHandle,
    tap: Option<Arc<Tap>>,
    /// Dropped after the tap goes, so writers let through find no tap to miss.
    paused: Option<WritePause>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.tap.take() {
            self.shared.keyspace.remove_tap(&t);
        }
    }
}

fn peer_addr(shared: &MigrationHandle, id: &NodeId) -> Result<(String, u16), String> {
    let cluster = shared.cluster.as_ref().ok_or("not in cluster mode")?;
    cluster
        .read(|st| st.nodes.get(id).map(|n| (n.ip.clone(), n.cport)))
        .ok_or_else(|| format!("node {id} is not known any more"))
}

pub(super) async fn connect(
    shared: &MigrationHandle,
    id: &NodeId,
) -> Result<Box<dyn MigrationPeer>, String> {
    let (ip, cport) = peer_addr(shared, id)?;
    let digest = crate::cluster::bus_digest(&shared.config.snapshot());
    shared.peers.connect(&ip, cport, digest).await
}

pub(super) async fn run(
    shared: Arc<MigrationHandle>,
    name: String,
    req: Request,
    cancel: Arc<AtomicBool>,
) {
    let t0 = Instant::now();
    let r = export(&shared, &name, &req, &cancel).await;
    let (state, message) = match r {
        Ok(()) => (JobState::Success, String::new()),
        Err(Failure::Cancelled) => (JobState::Cancelled, "cancelled".to_string()),
        Err(Failure::Failed(m)) => (JobState::Failed, m),
    };
    match state {
        JobState::Success => tracing::info!(
            "slot migration {name}: slots {} moved to {} in {:?}",
            super::ranges_text(&req.ranges),
            req.target,
            t0.elapsed()
        ),
        _ => tracing::warn!("slot migration {name}: {}: {message}", state.as_str()),
    }
    shared.migrations.update(&name, |i| {
        i.state = state;
        i.message = message;
    });
}

async fn export(
    shared: &Arc<MigrationHandle>,
    name: &str,
    req: &Request,
    cancel: &AtomicBool,
) -> Result<(), Failure> {
    let cluster = shared
        .cluster
        .clone()
        .ok_or("not in cluster mode".to_string())?;
    let myself = cluster.read(|st| st.myself);
    let record = |state: OutPhase| Record {
        name: name.to_string(),
        peer: req.target,
        ranges: req.ranges.clone(),
        state,
    };
    records::put_out(&shared.engine, record(OutPhase::Stream)).map_err(|e| e.to_string())?;
    let mut peer = connect(shared, &req.target).await?;
    let mut undo = Undo {
        shared,
        tap: None,
        paused: None,
    };
    let outcome = async {
        peer.begin(name, &myself, &req.ranges).await?;
        set(shared, name, JobState::Snapshot, "");
        let tap = stream_snapshot(shared, name, &req.ranges, &mut peer, cancel).await?;
        undo.tap = Some(Arc::clone(&tap));
        set(shared, name, JobState::CatchingUp, "");
        for _ in 0..CATCH_UP_ROUNDS {
            if cancel.load(Ordering::Relaxed) {
                return Err(Failure::Cancelled);
            }
            let frames = tap.drain();
            if !frames.is_empty() {
                peer.apply(name, frames).await?;
            }
            if tap.pending_bytes() < CATCH_UP_BYTES {
                break;
            }
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(Failure::Cancelled);
        }
        Ok(tap)
    }
    .await;
    let tap = match outcome {
        Ok(t) => t,
        Err(f) => {
            drop(undo);
            let _ = peer.abort(name).await;
            let _ = records::remove_out(&shared.engine, name);
            return Err(f);
        }
    };
    // From here the target may own the slots once it gets Commit.
    records::put_out(&shared.engine, record(OutPhase::Commit)).map_err(|e| e.to_string())?;
    set(shared, name, JobState::Paused, "");
    let paused_at = Instant::now();
    undo.paused = Some(pause(shared, &req.ranges).await?);
    let last = tap.drain();
    let epoch = match peer.commit(name, last).await {
        Ok(e) => e,
        Err(CommitError::Refused(refused)) => {
            drop(undo);
            let _ = peer.abort(name).await;
            let _ = records::remove_out(&shared.engine, name);
            return Err(Failure::Failed(format!(
                "target refused the commit: {refused}"
            )));
        }
        Err(CommitError::Unknown(e)) => match settle(shared, name, &req.target, &e).await {
            Settled::Taken(e) => e,
            Settled::NotTaken => {
                drop(undo);
                let _ = records::remove_out(&shared.engine, name);
                return Err(Failure::Failed("the target did not commit".into()));
            }
            Settled::Kept => {
                keep_slots(shared, name, &req.ranges);
                drop(undo);
                let _ = records::remove_out(&shared.engine, name);
                return Err(Failure::Cancelled);
            }
        },
    };
    undo.tap = None;
    shared.keyspace.remove_tap(&tap);
    hand_over(shared, &req.ranges, req.target, epoch, undo.paused.take()).await?;
    let _ = records::remove_out(&shared.engine, name);
    tracing::info!(
        "slot migration {name}: writes paused for {:?} during the handover",
        paused_at.elapsed()
    );
    Ok(())
}

fn set(shared: &MigrationHandle, name: &str, state: JobState, message: &str) {
    shared.migrations.update(name, |i| {
        i.state = state;
        i.message = message.to_string();
        i.last_ack_time = unix_secs();
    });
}

async fn pause(shared: &Arc<MigrationHandle>, ranges: &Ranges) -> Result<WritePause, String> {
    let sh = Arc::clone(shared);
    let r = ranges.clone();
    // Taking the request gate waits for in-flight request batches: not on a runtime thread.
    tokio::task::spawn_blocking(move || sh.keyspace.pause_writes(&r))
        .await
        .map_err(|e| format!("pausing writes: {e}"))
}

/// Streams the snapshot; returns the tap holding the writes made since.
async fn stream_snapshot(
    shared: &Arc<MigrationHandle>,
    name: &str,
    ranges: &Ranges,
    peer: &mut Box<dyn MigrationPeer>,
    cancel: &AtomicBool,
) -> Result<Arc<Tap>, Failure> {
    let (tx, rx) = tokio::sync::mpsc::channel::<DataChunk>(4);
    let sh = Arc::clone(shared);
    let r = ranges.clone();
    let job = name.to_string();
    let delay = Duration::from_millis(shared.migrations.chunk_delay_ms.load(Ordering::Relaxed));
    let cancelled = Arc::new(AtomicBool::new(false));
    let cancelled2 = Arc::clone(&cancelled);
    let producer = tokio::task::spawn_blocking(move || {
        let mut chunk = DataChunk {
            job: job.clone(),
            ..Default::default()
        };
        let (mut size, mut keys, mut bytes) = (0usize, 0u64, 0u64);
        let mut last_report = Instant::now();
        let res = sh.keyspace.export_slots(&r, true, |k, v| {
            chunk.entries.push((k.to_vec(), v.to_vec()));
            size += k.len() + v.len();
            keys += crate::keyspace::is_key_entry(k) as u64;
            bytes += (k.len() + v.len()) as u64;
            if chunk.entries.len() < CHUNK_ENTRIES && size < CHUNK_BYTES {
                return true;
            }
            size = 0;
            let full = std::mem::replace(
                &mut chunk,
                DataChunk {
                    job: job.clone(),
                    ..Default::default()
                },
            );
            if tx.blocking_send(full).is_err() || cancelled2.load(Ordering::Relaxed) {
                return false;
            }
            if last_report.elapsed() > Duration::from_millis(200) {
                last_report = Instant::now();
                sh.migrations.update(&job, |i| {
                    i.keys = keys;
                    i.bytes = bytes;
                    i.last_ack_time = unix_secs();
                });
            }
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            true
        });
        let _ = tx.blocking_send(chunk);
        sh.migrations.update(&job, |i| {
            i.keys = keys;
            i.bytes = bytes;
        });
        res.map(|(tap, _)| tap)
    });
    let watch_cancel = async {
        loop {
            if cancel.load(Ordering::Relaxed) {
                cancelled.store(true, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let loaded = tokio::select! {
        r = peer.load(Box::pin(ReceiverStream::new(rx))) => r,
        _ = watch_cancel => Err("cancelled".into()),
    };
    let tap = producer
        .await
        .map_err(|e| format!("snapshot reader failed: {e}"))?
        .map_err(|e| e.to_string())?
        .ok_or("no tap".to_string())?;
    if cancelled.load(Ordering::Relaxed) {
        shared.keyspace.remove_tap(&tap);
        return Err(Failure::Cancelled);
    }
    if let Err(e) = loaded {
        shared.keyspace.remove_tap(&tap);
        return Err(Failure::Failed(format!("streaming the slots: {e}")));
    }
    Ok(tap)
}

/// How a Commit with an unknown outcome was settled.
enum Settled {
    /// The target took the slots with this config epoch.
    Taken(u64),
    /// The target does not have them (it rolled back or never heard of the job).
    NotTaken,
    /// The operator kept them here (CANCELSLOTMIGRATIONS <job> FORCE).
    Kept,
}

/// Asks the target whether it took the slots until it answers or the operator decides; the
/// caller keeps the slots paused meanwhile, since unpausing without an answer could let
/// writes land on both sides. Past [`UNANSWERED_AFTER`] the job says how to end the wait.
async fn settle(shared: &MigrationHandle, name: &str, target: &NodeId, why: &str) -> Settled {
    tracing::warn!("slot migration {name}: {why}; asking the target");
    let t0 = Instant::now();
    let mut told = false;
    loop {
        if shared.migrations.keep_requested(name) {
            return Settled::Kept;
        }
        let answer = tokio::time::timeout(ASK_TIMEOUT, async {
            let mut peer = connect(shared, target).await.ok()?;
            ask(&mut peer, name).await
        })
        .await;
        if let Ok(Some(a)) = answer {
            return a;
        }
        if !told && t0.elapsed() > UNANSWERED_AFTER {
            told = true;
            let hint = format!(
                "the target has not said whether it took the slots for {:?}; they stay paused \
                 until it does, or CLUSTER CANCELSLOTMIGRATIONS {name} FORCE keeps them here \
                 (writes the target took would be lost)",
                t0.elapsed()
            );
            tracing::error!("slot migration {name}: {hint}");
            shared.migrations.update(name, |i| i.message = hint);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One round of asking: `None` when the target could not tell.
async fn ask(peer: &mut Box<dyn MigrationPeer>, name: &str) -> Option<Settled> {
    match peer.status(name).await.ok()? {
        (ImportStatus::Committed, e) => Some(Settled::Taken(e)),
        (ImportStatus::Unknown, _) => Some(Settled::NotTaken),
        (ImportStatus::Importing, _) => {
            peer.abort(name).await.ok()?;
            match peer.status(name).await.ok()? {
                (ImportStatus::Committed, e) => Some(Settled::Taken(e)),
                (ImportStatus::Unknown, _) => Some(Settled::NotTaken),
                (ImportStatus::Importing, _) => None,
            }
        }
    }
}

/// The operator kept the slots without the target's answer: this node claims them again with
/// a new config epoch, which outranks a claim the target made (announced or not) before it
/// went away.
fn keep_slots(shared: &MigrationHandle, name: &str, ranges: &Ranges) {
    let Some(c) = &shared.cluster else { return };
    let slots: Vec<u16> = ranges.iter().flat_map(|&(a, b)| a..=b).collect();
    match c.with_state_written(true, |st| st.take_imported_slots(&slots)) {
        Ok(epoch) => tracing::warn!(
            "slot migration {name}: slots kept here by the operator without the target's answer (config epoch {epoch})"
        ),
        Err(e) => tracing::error!("slot migration {name}: keeping the slots: {e}"),
    }
}

/// The target owns the slots: record that, let paused writers go (they get MOVED), and drop
/// the data here (replicated, so this node's replicas drop it too).
async fn hand_over(
    shared: &Arc<MigrationHandle>,
    ranges: &Ranges,
    target: NodeId,
    epoch: u64,
    paused: Option<WritePause>,
) -> Result<(), String> {
    let cluster = shared.cluster.clone().ok_or("not in cluster mode")?;
    let slots: Vec<u16> = ranges.iter().flat_map(|&(a, b)| a..=b).collect();
    cluster.with_state_written(true, |st| st.hand_over(&slots, target, epoch));
    drop(paused);
    let sh = Arc::clone(shared);
    let r = ranges.clone();
    tokio::task::spawn_blocking(move || sh.keyspace.drop_slots(&r))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// After a restart: a job still streaming is aborted at the target; a job that sent Commit
/// keeps its slots paused until the target says whether it took them (or the operator keeps
/// them, as for a running job: it is listed by GETSLOTMIGRATIONS again).
pub fn recover(shared: &Arc<MigrationHandle>) -> Result<(), super::RecoverError> {
    let recs =
        records::out_records(&shared.engine).map_err(|e| super::RecoverError(e.to_string()))?;
    for r in recs {
        let sh = Arc::clone(shared);
        tracing::warn!(
            "slot migration {}: interrupted by a restart in phase {:?}; resolving with the target",
            r.name,
            r.state
        );
        if r.state == OutPhase::Commit {
            let paused = shared.keyspace.pause_writes(&r.ranges);
            list_recovered(shared, &r);
            tokio::spawn(async move {
                let why = "interrupted by a restart after Commit was sent";
                let (state, message) = match settle(&sh, &r.name, &r.peer, why).await {
                    Settled::Taken(epoch) => {
                        match hand_over(&sh, &r.ranges, r.peer, epoch, Some(paused)).await {
                            Ok(()) => (JobState::Success, String::new()),
                            Err(e) => (JobState::Failed, e),
                        }
                    }
                    Settled::NotTaken => (JobState::Failed, "the target did not commit".into()),
                    Settled::Kept => {
                        keep_slots(&sh, &r.name, &r.ranges);
                        (JobState::Cancelled, "cancelled".into())
                    }
                };
                let _ = records::remove_out(&sh.engine, &r.name);
                tracing::info!(
                    "slot migration {}: resolved after the restart: {}",
                    r.name,
                    state.as_str()
                );
                sh.migrations.update(&r.name, |i| {
                    i.state = state;
                    i.message = message;
                });
            });
            continue;
        }
        tokio::spawn(async move {
            let t0 = Instant::now();
            loop {
                let res = async { connect(&sh, &r.peer).await?.abort(&r.name).await }.await;
                match res {
                    Ok(()) => {
                        let _ = records::remove_out(&sh.engine, &r.name);
                        tracing::info!("slot migration {}: resolved after the restart", r.name);
                        return;
                    }
                    Err(e) if t0.elapsed() > RESOLVE_FOR => {
                        // Nothing is paused: the target's idle rollback drops its copy.
                        tracing::error!("slot migration {}: abort not confirmed: {e}", r.name);
                        return;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        });
    }
    Ok(())
}

/// Lists a job recovered in its Commit phase, so GETSLOTMIGRATIONS shows it and
/// CANCELSLOTMIGRATIONS can reach it.
fn list_recovered(shared: &MigrationHandle, r: &Record<OutPhase>) {
    let Some(myself) = shared.cluster.as_ref().map(|c| c.read(|st| st.myself)) else {
        return;
    };
    let now = unix_secs();
    shared.migrations.add(super::JobInfo {
        name: r.name.clone(),
        operation: super::Operation::Export,
        ranges: r.ranges.clone(),
        source: myself,
        target: r.peer,
        create_time: now,
        last_update_time: now,
        last_ack_time: now,
        state: JobState::Paused,
        message: "interrupted by a restart; asking the target whether it took the slots".into(),
        keys: 0,
        bytes: 0,
    });
}

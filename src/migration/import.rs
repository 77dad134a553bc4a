//! The target side of a slot migration, served over the Migration gRPC service: records the
//! job, loads the sorted data into SST files and ingests them into hidden slots, applies the
//! writes the source made meanwhile, and at Commit takes the slots with an epoch bump (the
//! commit point is nodes.conf) and reveals them. Also serves `Export` to its replicas.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_stream::StreamExt;

use super::records::{self, InState, Record};
use super::MigrationHandle;
use super::{unix_secs, JobInfo, JobState, Operation};
use super::{ChunkStream, DataChunk, ImportSide, ImportStatus};
use crate::cluster::NodeId;
use crate::keyspace::{in_ranges, Ranges};
use crate::storage::SlotLoader;

/// An import with no request for this long is rolled back (its source is gone).
const IDLE_ROLLBACK: Duration = Duration::from_secs(120);
/// The longest STATUS waits for an operation in flight on the job (a commit) to finish.
const STATUS_WAIT: Duration = Duration::from_secs(30);
/// Entries per chunk when serving Export.
const CHUNK_ENTRIES: usize = 2048;
const CHUNK_BYTES: usize = 1 << 20;

pub(crate) struct ImportJob {
    source: NodeId,
    ranges: Ranges,
    /// Serializes load/apply/commit/abort of one job.
    op: tokio::sync::Mutex<()>,
    touched: Mutex<Instant>,
}

#[derive(Default)]
pub(crate) struct Imports {
    active: Mutex<HashMap<String, Arc<ImportJob>>>,
}

pub struct TargetSide(pub Arc<MigrationHandle>);

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, String> + Send + 'static,
) -> Result<R, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("worker failed: {e}"))?
}

impl TargetSide {
    fn job(&self, name: &str) -> Result<Arc<ImportJob>, String> {
        let j = self
            .0
            .migrations
            .imports
            .active
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| format!("unknown slot migration job {name}"))?;
        *j.touched.lock() = Instant::now();
        Ok(j)
    }

    fn set_state(&self, name: &str, state: JobState, message: String) {
        self.0.migrations.update(name, |i| {
            i.state = state;
            i.message = message;
            i.last_ack_time = unix_secs();
        });
    }
}

/// Drops an import's data and records (replicated, so the replicas drop it too).
fn roll_back(shared: &MigrationHandle, name: &str, ranges: &[(u16, u16)]) -> Result<(), String> {
    shared
        .keyspace
        .drop_slots(ranges)
        .map_err(|e| e.to_string())?;
    shared.keyspace.set_hidden(ranges, false);
    records::remove_in(&shared.engine, name).map_err(|e| e.to_string())
}

/// A slot of `ranges` this node owns in its cluster view, if any.
fn owned_slot(shared: &MigrationHandle, ranges: &[(u16, u16)]) -> Option<u16> {
    let cluster = shared.cluster.as_ref()?;
    cluster.read(|st| {
        ranges
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .find(|&s| st.slots[s as usize] == Some(st.myself))
    })
}

/// How long a target waits for its replicas to fetch freshly loaded slots before it goes on.
const REPLICA_FETCH_WAIT: Duration = Duration::from_secs(60);

/// Before the commit point: the replicas online must hold everything imported, or a failover
/// right after the commit would promote one without the slots' keys (the source drops them
/// once the commit is known). In synchronous mode (`replica-ack-before-reply`) the commit
/// fails without enough of them, as a write would; otherwise a replica that does not answer
/// in time is left behind with a warning, as an asynchronous write would be.
async fn replicas_hold_the_slots(shared: &MigrationHandle, job: &str) -> Result<(), String> {
    let c = shared.config.snapshot();
    let timeout = Duration::from_millis(c.cluster_node_timeout_ms.max(1000));
    let (got, online) = shared.replicas.replicas_caught_up(timeout).await;
    let need = if c.replica_ack_before_reply {
        (c.min_replicas_to_write as usize).max(1)
    } else {
        online
    };
    if got >= need {
        return Ok(());
    }
    if c.replica_ack_before_reply {
        return Err(format!(
            "only {got} replicas hold the imported slots, {need} needed (replica-ack-before-reply)"
        ));
    }
    tracing::warn!("slot migration {job}: committing with {got} of {online} replicas caught up");
    Ok(())
}

/// Applies the last writes, takes the slots (the commit point: nodes.conf), reveals them and
/// records the commit.
async fn commit_job(
    shared: Arc<MigrationHandle>,
    job: String,
    j: Arc<ImportJob>,
    batches: Vec<Vec<u8>>,
) -> Result<u64, String> {
    let _op = j.op.lock().await;
    if !shared.migrations.imports.active.lock().contains_key(&job) {
        return Err(format!("slot migration job {job} is not active any more"));
    }
    let cluster = shared.cluster.clone().ok_or("not in cluster mode")?;
    let sh = Arc::clone(&shared);
    let r = j.ranges.clone();
    blocking(move || {
        for b in &batches {
            sh.keyspace.import_apply(&r, b).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await?;
    replicas_hold_the_slots(&shared, &job).await?;
    shared.replicas.ensure_primary();
    let slots: Vec<u16> = j.ranges.iter().flat_map(|&(a, b)| a..=b).collect();
    let epoch = cluster
        .with_state_saved(|st| st.take_imported_slots(&slots))?
        .map_err(|e| e.to_string())?;
    let delay = shared.migrations.commit_delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        // Test hook: widens the window between the commit point and its record.
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let sh = Arc::clone(&shared);
    let r = j.ranges.clone();
    blocking(move || sh.keyspace.reveal_slots(&r).map_err(|e| e.to_string())).await?;
    records::put_in(
        &shared.engine,
        Record {
            name: job.clone(),
            peer: j.source,
            ranges: j.ranges.clone(),
            state: InState::Committed(epoch),
        },
    )
    .map_err(|e| e.to_string())?;
    shared.migrations.imports.active.lock().remove(&job);
    shared.migrations.update(&job, |i| {
        i.state = JobState::Success;
        i.message = String::new();
        i.last_ack_time = unix_secs();
    });
    tracing::info!(
        "slot migration {job}: took slots {} with config epoch {epoch}",
        super::ranges_text(&j.ranges)
    );
    Ok(epoch)
}

#[async_trait::async_trait]
impl ImportSide for TargetSide {
    async fn begin(&self, job: String, source: NodeId, ranges: Ranges) -> Result<u64, String> {
        let shared = &self.0;
        let cluster = shared.cluster.as_ref().ok_or("not in cluster mode")?;
        let me = cluster.read(|st| {
            if !st.me().is_primary() {
                return Err("the target is not a primary".to_string());
            }
            for &(a, b) in &ranges {
                for s in a..=b {
                    if st.slots[s as usize] == Some(st.myself) {
                        return Err(format!("the target already owns slot {s}"));
                    }
                    // A job may only take slots from the node that owns them now.
                    if st.slots[s as usize] != Some(source) {
                        return Err(format!("slot {s} is not owned by the source {source}"));
                    }
                }
            }
            Ok(st.myself)
        })?;
        // The job writes (clears the slots, loads them): under this node's own history.
        shared.replicas.ensure_primary();
        {
            let active = shared.migrations.imports.active.lock();
            if active.contains_key(&job) {
                return Err(format!("slot migration job {job} already exists"));
            }
            if let Some(s) = ranges
                .iter()
                .flat_map(|&(a, b)| a..=b)
                .find(|s| active.values().any(|j| in_ranges(&j.ranges, *s)))
            {
                return Err(format!("slot {s} is already being imported"));
            }
        }
        records::put_in(
            &shared.engine,
            Record {
                name: job.clone(),
                peer: source,
                ranges: ranges.clone(),
                state: InState::Importing,
            },
        )
        .map_err(|e| e.to_string())?;
        let sh = Arc::clone(shared);
        let r = ranges.clone();
        blocking(move || {
            let slots: Vec<u16> = r.iter().flat_map(|&(a, b)| a..=b).collect();
            sh.engine.ensure_slots(&slots).map_err(|e| e.to_string())?;
            sh.keyspace.import_begin(&r).map_err(|e| e.to_string())
        })
        .await?;
        shared.migrations.imports.active.lock().insert(
            job.clone(),
            Arc::new(ImportJob {
                source,
                ranges: ranges.clone(),
                op: tokio::sync::Mutex::new(()),
                touched: Mutex::new(Instant::now()),
            }),
        );
        let now = unix_secs();
        shared.migrations.add(JobInfo {
            name: job.clone(),
            operation: Operation::Import,
            ranges,
            source,
            target: me,
            create_time: now,
            last_update_time: now,
            last_ack_time: now,
            state: JobState::Loading,
            message: String::new(),
            keys: 0,
            bytes: 0,
        });
        tracing::info!("slot migration {job}: importing from {source}");
        Ok(0)
    }

    async fn load(&self, job: String, mut chunks: ChunkStream) -> Result<u64, String> {
        let j = self.job(&job)?;
        let _op = j.op.lock().await;
        let shared = Arc::clone(&self.0);
        let dir = shared.config.snapshot().dir.join("migration").join(&job);
        let (tx, rx) = std::sync::mpsc::sync_channel::<DataChunk>(4);
        let ranges = j.ranges.clone();
        let sh = Arc::clone(&shared);
        let name = job.clone();
        let writer = tokio::task::spawn_blocking(move || -> Result<u64, String> {
            let mut loader = SlotLoader::new(&sh.engine, &dir).map_err(|e| e.to_string())?;
            let mut last_report = Instant::now();
            let mut keys = 0u64;
            while let Ok(chunk) = rx.recv() {
                for (k, v) in &chunk.entries {
                    keys += crate::keyspace::is_key_entry(k) as u64;
                    let slot = match k.as_slice() {
                        [a, b, _, ..] => u16::from_be_bytes([*a, *b]) & 0x3fff,
                        _ => return Err("migrated entry shorter than its slot prefix".into()),
                    };
                    if !in_ranges(&ranges, slot) {
                        return Err(format!("migrated entry for slot {slot} outside the job"));
                    }
                    loader.put(k, v).map_err(|e| e.to_string())?;
                }
                if last_report.elapsed() > Duration::from_millis(200) {
                    last_report = Instant::now();
                    let b = loader.bytes();
                    sh.migrations.update(&name, |i| {
                        i.keys = keys;
                        i.bytes = b;
                        i.last_ack_time = unix_secs();
                    });
                }
            }
            let bytes = loader.bytes();
            let n = loader.ingest().map_err(|e| e.to_string())?;
            sh.migrations.update(&name, |i| {
                i.keys = keys;
                i.bytes = bytes;
            });
            Ok(n)
        });
        let mut failure = None;
        while let Some(c) = chunks.next().await {
            match c {
                Ok(c) if c.job == job => {
                    *j.touched.lock() = Instant::now();
                    if tx.send(c).is_err() {
                        break;
                    }
                }
                Ok(_) => {
                    failure = Some("data chunk of another job".to_string());
                    break;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let loaded = writer.await.map_err(|e| format!("loader failed: {e}"))?;
        if let Some(f) = failure {
            return Err(f);
        }
        let n = loaded?;
        let sh = Arc::clone(&shared);
        let r = j.ranges.clone();
        blocking(move || {
            sh.keyspace
                .import_mark_loaded(&r)
                .map_err(|e| e.to_string())
        })
        .await?;
        // The replicas fetch the slots now. Waiting here, while the source still takes
        // writes, keeps the commit's own wait (under the source's write pause) short.
        let (got, online) = shared.replicas.replicas_caught_up(REPLICA_FETCH_WAIT).await;
        if got < online {
            tracing::warn!(
                "slot migration {job}: {got} of {online} replicas fetched the slots within {REPLICA_FETCH_WAIT:?}"
            );
        }
        self.set_state(&job, JobState::CatchingUp, format!("{n} entries loaded"));
        Ok(n)
    }

    async fn apply(&self, job: String, batches: Vec<Vec<u8>>) -> Result<u64, String> {
        let j = self.job(&job)?;
        let _op = j.op.lock().await;
        let sh = Arc::clone(&self.0);
        let r = j.ranges.clone();
        let n = batches.len() as u64;
        blocking(move || {
            for b in &batches {
                sh.keyspace.import_apply(&r, b).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .await?;
        Ok(n)
    }

    async fn commit(&self, job: String, batches: Vec<Vec<u8>>) -> Result<u64, String> {
        let j = self.job(&job)?;
        // Runs to the end even if the source's call is cut: a commit stopped between taking
        // the slots and recording it would leave a job that an abort rolls back under slots
        // this node already owns.
        tokio::spawn(commit_job(Arc::clone(&self.0), job, j, batches))
            .await
            .map_err(|e| format!("commit failed: {e}"))?
    }

    async fn abort(&self, job: String) -> Result<(), String> {
        let Ok(j) = self.job(&job) else {
            return Ok(());
        };
        let _op = j.op.lock().await;
        if !self.0.migrations.imports.active.lock().contains_key(&job) {
            // A commit (or another abort) finished while this one waited: nothing to undo.
            return Ok(());
        }
        if let Some(s) = owned_slot(&self.0, &j.ranges) {
            // Never drop data under slots this node owns (recover() applies the same rule).
            tracing::error!("slot migration {job}: abort refused, this node owns slot {s}");
            return Err(format!("the target owns slot {s}; not rolling back"));
        }
        let sh = Arc::clone(&self.0);
        let r = j.ranges.clone();
        let name = job.clone();
        blocking(move || roll_back(&sh, &name, &r)).await?;
        self.0.migrations.imports.active.lock().remove(&job);
        self.set_state(&job, JobState::Failed, "aborted by the source".into());
        tracing::warn!("slot migration {job}: aborted by the source, imported data dropped");
        Ok(())
    }

    async fn status(&self, job: String) -> (ImportStatus, u64) {
        let active = self.0.migrations.imports.active.lock().get(&job).cloned();
        if let Some(j) = active {
            // A commit in flight holds the job's lock: its outcome is the answer.
            let done = tokio::time::timeout(STATUS_WAIT, j.op.lock()).await.is_ok();
            if !done || self.0.migrations.imports.active.lock().contains_key(&job) {
                return (ImportStatus::Importing, 0);
            }
        }
        let recs = records::in_records(&self.0.engine).unwrap_or_default();
        match recs.iter().find(|r| r.name == job).map(|r| r.state) {
            Some(InState::Committed(e)) => (ImportStatus::Committed, e),
            Some(InState::Importing) => (ImportStatus::Importing, 0),
            None => (ImportStatus::Unknown, 0),
        }
    }

    async fn export(&self, ranges: Ranges) -> Result<ChunkStream, String> {
        Ok(export_stream(Arc::clone(&self.0), ranges))
    }
}

/// A snapshot of `ranges` as a stream of chunks; the last chunk carries the write-log offset
/// of the snapshot.
pub(super) fn export_stream(shared: Arc<MigrationHandle>, ranges: Ranges) -> ChunkStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<DataChunk, String>>(4);
    // Test hook (DEBUG SLOT-MIGRATION-DELAY): a test can act while a replica fetches.
    let delay = Duration::from_millis(shared.migrations.chunk_delay_ms.load(Ordering::Relaxed));
    tokio::task::spawn_blocking(move || {
        let mut chunk = DataChunk::default();
        let mut size = 0usize;
        let r = shared.keyspace.export_slots(&ranges, false, |k, v| {
            chunk.entries.push((k.to_vec(), v.to_vec()));
            size += k.len() + v.len();
            if chunk.entries.len() >= CHUNK_ENTRIES || size >= CHUNK_BYTES {
                size = 0;
                std::thread::sleep(delay);
                tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_ok()
            } else {
                true
            }
        });
        let last = match r {
            Ok((_, offset)) => {
                chunk.offset = offset;
                chunk.last = true;
                Ok(chunk)
            }
            Err(e) => Err(e.to_string()),
        };
        let _ = tx.blocking_send(last);
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// After a restart: an import whose slots nodes.conf gives us was committed; any other
/// import is rolled back.
pub fn recover(shared: &Arc<MigrationHandle>) -> Result<(), super::RecoverError> {
    let Some(cluster) = &shared.cluster else {
        return Ok(());
    };
    let err = |e: String| super::RecoverError(e);
    let recs = records::in_records(&shared.engine).map_err(|e| err(e.to_string()))?;
    for r in recs {
        if r.state != InState::Importing {
            continue;
        }
        let owned = cluster.read(|st| {
            r.ranges
                .iter()
                .flat_map(|&(a, b)| a..=b)
                .all(|s| st.slots[s as usize] == Some(st.myself))
        });
        if owned {
            let epoch = cluster.read(|st| st.me().config_epoch);
            records::put_in(
                &shared.engine,
                Record {
                    state: InState::Committed(epoch),
                    ..r.clone()
                },
            )
            .map_err(|e| err(e.to_string()))?;
            tracing::info!(
                "slot migration {}: committed before the restart; finished",
                r.name
            );
        } else {
            roll_back(shared, &r.name, &r.ranges).map_err(err)?;
            tracing::warn!(
                "slot migration {}: interrupted before its commit; imported data for slots {} dropped",
                r.name,
                super::ranges_text(&r.ranges)
            );
        }
    }
    Ok(())
}

/// Rolls back imports whose source went quiet (it died and did not come back to abort).
pub fn spawn_idle_sweeper(shared: Arc<MigrationHandle>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let idle: Vec<String> = shared
                .migrations
                .imports
                .active
                .lock()
                .iter()
                .filter(|(_, j)| j.touched.lock().elapsed() > IDLE_ROLLBACK)
                .map(|(n, _)| n.clone())
                .collect();
            for name in idle {
                tracing::warn!("slot migration {name}: no word from the source for {IDLE_ROLLBACK:?}; rolling back");
                let side = TargetSide(Arc::clone(&shared));
                if let Err(e) = side.abort(name.clone()).await {
                    tracing::error!("slot migration {name}: rollback failed: {e}");
                }
            }
        }
    });
}

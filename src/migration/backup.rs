//! The node side of slot backups and restores (`rockslot-cli --cluster backup|restore`): a
//! consistent snapshot of owned slot ranges streamed out; incoming entries for owned slots
//! staged as SST files, with the staged key names in a side file; a prepare step that pauses
//! writes to the job's slots and decides collisions against the data as it is then; a commit
//! that deletes the keys it replaces (whole collections and their TTL entries) and ingests.
//! Staged jobs live in memory and in `<dir>/restore/<job>`; a restart drops them.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_stream::StreamExt;

use super::import::export_stream;
use super::MigrationHandle;
use super::{BackupSide, ChunkStream, StageReport};
use crate::keyspace::{is_key_entry, Ranges, Update, WritePause};
use crate::storage::{SlotLoader, Staged};

pub struct BackupNode(pub Arc<MigrationHandle>);

/// How long a prepared restore holds its write pause without a Commit or Abort.
const PREPARED_LIMIT: Duration = Duration::from_secs(60);

/// One staged restore.
struct StagedJob {
    staged: Staged,
    slots: BTreeSet<u16>,
    report: StageReport,
    /// The staged key names (storage key entries), length-prefixed.
    keys_file: PathBuf,
    /// Set by Prepare: writes to the job's slots wait until Commit or Abort.
    prepared: Option<(WritePause, u64)>,
}

/// Staged restores by job name.
#[derive(Default)]
pub(crate) struct StagedJobs {
    jobs: Mutex<HashMap<String, StagedJob>>,
    /// Numbers prepares, so a prepare's timeout never ends a later one.
    next: std::sync::atomic::AtomicU64,
}

impl StagedJobs {
    fn take(&self, job: &str) -> Option<StagedJob> {
        self.jobs.lock().remove(job)
    }

    fn drop_job(&self, job: &str) {
        if let Some(j) = self.take(job) {
            let _ = std::fs::remove_dir_all(&j.staged.dir);
        }
    }
}

fn owned(shared: &MigrationHandle) -> Result<Vec<bool>, String> {
    let cluster = shared.cluster.as_ref().ok_or("not in cluster mode")?;
    Ok(cluster.read(|st| {
        if !st.me().is_primary() {
            return Vec::new();
        }
        st.slots.iter().map(|o| *o == Some(st.myself)).collect()
    }))
}

/// Refuses when this node is no longer a primary owning every one of `slots`.
fn still_owned(shared: &MigrationHandle, slots: &[u16]) -> Result<(), String> {
    let mine = owned(shared)?;
    match slots
        .iter()
        .find(|s| !mine.get(**s as usize).copied().unwrap_or(false))
    {
        Some(s) => Err(format!("slot {s} is no longer served by this primary")),
        None => Ok(()),
    }
}

fn slot_of(k: &[u8]) -> Option<u16> {
    match k {
        [a, b, _, ..] => Some(u16::from_be_bytes([*a, *b]) & 0x3fff),
        _ => None,
    }
}

/// Visits each user key named in a job's key file.
fn for_each_key(path: &Path, mut f: impl FnMut(&[u8]) -> Result<(), String>) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut r = BufReader::new(file);
    let mut len = [0u8; 4];
    let mut key = Vec::new();
    loop {
        if r.fill_buf().map_err(|e| e.to_string())?.is_empty() {
            return Ok(());
        }
        r.read_exact(&mut len).map_err(|e| e.to_string())?;
        key.resize(u32::from_le_bytes(len) as usize, 0);
        r.read_exact(&mut key).map_err(|e| e.to_string())?;
        // Storage key entries are slot(2) + kind(1) + the user key.
        f(key.get(3..).ok_or("short key in the key file")?)?;
    }
}

/// Counts the job's keys that exist now (live), with one example.
fn live_collisions(shared: &MigrationHandle, keys_file: &Path) -> Result<(u64, Vec<u8>), String> {
    let (mut n, mut example) = (0u64, Vec::new());
    for_each_key(keys_file, |k| {
        if shared
            .keyspace
            .peek(k)
            .map_err(|e| e.to_string())?
            .is_some()
        {
            n += 1;
            if example.is_empty() {
                example = k.to_vec();
            }
        }
        Ok(())
    })?;
    Ok((n, example))
}

/// Deletes every key the job holds that exists now, records and TTL entries included, so the
/// ingested data replaces it whole (a collection keeps no member the backup lacks).
fn delete_replaced(shared: &MigrationHandle, keys_file: &Path) -> Result<u64, String> {
    let mut deleted = 0u64;
    let mut scope = shared.keyspace.pending();
    let mut staged = 0usize;
    for_each_key(keys_file, |k| {
        // Deleted even when expired but still stored: its members and TTL entry go too.
        let gone = scope
            .update(k, |old| (Update::Delete, old.is_some()))
            .map_err(|e| e.to_string())?;
        deleted += gone as u64;
        staged += 1;
        if staged >= 1024 {
            std::mem::replace(&mut scope, shared.keyspace.pending())
                .commit()
                .map_err(|e| e.to_string())?;
            staged = 0;
        }
        Ok(())
    })?;
    scope.commit().map_err(|e| e.to_string())?;
    Ok(deleted)
}

#[async_trait::async_trait]
impl BackupSide for BackupNode {
    async fn export(&self, ranges: Ranges) -> Result<ChunkStream, String> {
        let mine = owned(&self.0)?;
        if let Some(s) = ranges
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .find(|s| !mine.get(*s as usize).copied().unwrap_or(false))
        {
            return Err(format!("slot {s} is not served by this primary"));
        }
        Ok(export_stream(Arc::clone(&self.0), ranges))
    }

    async fn stage(&self, job: String, mut chunks: ChunkStream) -> Result<StageReport, String> {
        if !super::valid_job_name(&job) {
            return Err("bad job name".into());
        }
        let shared = Arc::clone(&self.0);
        let mine = owned(&shared)?;
        let dir = shared.config.snapshot().dir.join("restore").join(&job);
        let keys_file = dir.join("keys.list");
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(Vec<u8>, Vec<u8>)>>(4);
        let sh = Arc::clone(&shared);
        let kf = keys_file.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let mut loader = SlotLoader::new(&sh.engine, &dir).map_err(|e| e.to_string())?;
            let file = std::fs::File::create(&kf).map_err(|e| format!("{}: {e}", kf.display()))?;
            let mut names = BufWriter::new(file);
            let mut report = StageReport::default();
            let mut slots = BTreeSet::new();
            while let Ok(entries) = rx.recv() {
                for (k, v) in &entries {
                    let slot = slot_of(k).ok_or("entry shorter than its slot prefix")?;
                    if !mine.get(slot as usize).copied().unwrap_or(false) {
                        return Err(format!("slot {slot} is not served by this primary"));
                    }
                    // Counters are recomputed after the ingest.
                    if k[2] == 0 {
                        continue;
                    }
                    if is_key_entry(k) {
                        // Collisions are decided at Prepare, against the data as it is then.
                        report.keys += 1;
                        names
                            .write_all(&(k.len() as u32).to_le_bytes())
                            .and_then(|_| names.write_all(k))
                            .map_err(|e| e.to_string())?;
                    }
                    loader.put(k, v).map_err(|e| e.to_string())?;
                    report.entries += 1;
                    slots.insert(slot);
                }
            }
            names.flush().map_err(|e| e.to_string())?;
            let staged = loader.stage().map_err(|e| e.to_string())?;
            Ok::<_, String>((staged, slots, report))
        });
        let mut failure = None;
        while let Some(c) = chunks.next().await {
            match c {
                Ok(c) => {
                    if tx.send(c.entries).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let (staged, slots, report) = writer.await.map_err(|e| e.to_string())??;
        if let Some(e) = failure {
            let _ = std::fs::remove_dir_all(&staged.dir);
            return Err(e);
        }
        tracing::info!("restore {job}: staged {} entries", report.entries);
        restore_delay(&shared).await;
        let r = report.clone();
        let entry = StagedJob {
            staged,
            slots,
            report,
            keys_file,
            prepared: None,
        };
        if let Some(old) = shared.migrations.staged.jobs.lock().insert(job, entry) {
            let _ = std::fs::remove_dir_all(&old.staged.dir);
        }
        Ok(r)
    }

    async fn prepare(&self, job: String, replace: bool) -> Result<StageReport, String> {
        let shared = Arc::clone(&self.0);
        let jobs = &shared.migrations.staged;
        let (slots, keys_file) = {
            let map = jobs.jobs.lock();
            let j = map
                .get(&job)
                .ok_or_else(|| format!("no staged restore named {job}"))?;
            if j.prepared.is_some() {
                return Err(format!("restore {job} is already prepared"));
            }
            (
                j.slots.iter().copied().collect::<Vec<u16>>(),
                j.keys_file.clone(),
            )
        };
        still_owned(&shared, &slots)?;
        let ranges = crate::slot::ranges_of(&slots);
        let sh = Arc::clone(&shared);
        // Waits for the writes already routed to these slots, then counts against the result.
        let (pause, collisions) = tokio::task::spawn_blocking(move || {
            let pause = sh.keyspace.pause_writes(&ranges);
            live_collisions(&sh, &keys_file).map(|c| (pause, c))
        })
        .await
        .map_err(|e| e.to_string())??;
        let (n, example) = collisions;
        if n > 0 && !replace {
            drop(pause);
            return Err(format!(
                "{n} keys of the backup already exist (e.g. {:?})",
                String::from_utf8_lossy(&example)
            ));
        }
        let token = jobs.next.fetch_add(1, Ordering::Relaxed);
        let report = {
            let mut map = jobs.jobs.lock();
            let j = map
                .get_mut(&job)
                .ok_or_else(|| format!("restore {job} was aborted meanwhile"))?;
            j.prepared = Some((pause, token));
            j.report.collisions = n;
            j.report.example = example;
            j.report.clone()
        };
        tracing::info!("restore {job}: prepared, {n} existing keys to replace");
        // A client that never commits must not hold the slots' writes for good.
        let sh = Arc::clone(&shared);
        tokio::spawn(async move {
            tokio::time::sleep(PREPARED_LIMIT).await;
            let expired = {
                let map = sh.migrations.staged.jobs.lock();
                map.get(&job)
                    .is_some_and(|j| j.prepared.as_ref().is_some_and(|(_, t)| *t == token))
            };
            if expired {
                tracing::warn!("restore {job}: no commit within {PREPARED_LIMIT:?}; dropped");
                sh.migrations.staged.drop_job(&job);
            }
        });
        Ok(report)
    }

    async fn commit(&self, job: String) -> Result<StageReport, String> {
        restore_delay(&self.0).await;
        let j = self
            .0
            .migrations
            .staged
            .take(&job)
            .ok_or_else(|| format!("no staged restore named {job}"))?;
        let slots: Vec<u16> = j.slots.iter().copied().collect();
        let refused = if j.prepared.is_none() {
            Err(format!("restore {job} was not prepared"))
        } else {
            // A failover since Prepare made this node a replica, or moved a slot away.
            still_owned(&self.0, &slots)
        };
        if let Err(e) = refused {
            let _ = std::fs::remove_dir_all(&j.staged.dir);
            return Err(e);
        }
        let sh = Arc::clone(&self.0);
        let keys = j.report.keys;
        let report = j.report.clone();
        let (replaced, j) = tokio::task::spawn_blocking(move || {
            let r = commit_staged(&sh, &j);
            if r.is_err() {
                let _ = std::fs::remove_dir_all(&j.staged.dir);
            }
            r.map(|n| (n, j))
        })
        .await
        .map_err(|e| e.to_string())??;
        // The replicas fetch the restored slots now; writes to them stay paused until they
        // hold them (bounded), so a failover right after finds them there.
        let c = self.0.config.snapshot();
        let wait = Duration::from_millis(c.cluster_node_timeout_ms.max(1000));
        let (got, online) = self.0.replicas.replicas_caught_up(wait).await;
        if got < online {
            tracing::warn!("restore {job}: {got} of {online} replicas hold the restored slots");
        }
        // The prepare's pause ends here, with the job.
        drop(j);
        tracing::info!("restore {job}: {keys} keys ingested, {replaced} existing keys replaced");
        Ok(report)
    }

    async fn abort(&self, job: String) -> Result<(), String> {
        self.0.migrations.staged.drop_job(&job);
        Ok(())
    }
}

/// Test hook (DEBUG RESTORE-DELAY).
async fn restore_delay(shared: &MigrationHandle) {
    let ms = shared.migrations.restore_delay_ms.load(Ordering::Relaxed);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Deletes what the job replaces, ingests it and recounts its slots; runs under the prepare's
/// pause, so nothing writes these slots in between.
fn commit_staged(sh: &MigrationHandle, j: &StagedJob) -> Result<u64, String> {
    sh.replicas.ensure_primary();
    let replaced = delete_replaced(sh, &j.keys_file)?;
    sh.engine
        .ingest_staged(&j.staged)
        .map_err(|e| e.to_string())?;
    let slots: Vec<u16> = j.slots.iter().copied().collect();
    sh.keyspace
        .recount_slots(&slots)
        .map_err(|e| e.to_string())?;
    // Replicas fetch the restored slots from here, as after a slot migration.
    sh.keyspace
        .import_mark_loaded(&crate::slot::ranges_of(&slots))
        .map_err(|e| e.to_string())?;
    Ok(replaced)
}

/// Staged restores do not survive a restart.
pub fn clear_staging(shared: &MigrationHandle) {
    let _ = std::fs::remove_dir_all(shared.config.snapshot().dir.join("restore"));
}

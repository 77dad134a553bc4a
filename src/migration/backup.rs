//! The node side of slot backups and restores (`rockslot-cli --cluster backup|restore`): a
//! consistent snapshot of owned slot ranges streamed out; incoming entries for owned slots
//! staged as SST files with a collision count, then ingested (or dropped) as a whole.
//! Staged jobs live in memory and in `<dir>/restore/<job>`; a restart drops them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio_stream::StreamExt;

use super::import::export_stream;
use super::MigrationHandle;
use super::{BackupSide, ChunkStream, StageReport};
use crate::keyspace::{is_key_entry, Ranges};
use crate::storage::{SlotLoader, Staged};

pub struct BackupNode(pub Arc<MigrationHandle>);

/// One staged restore: its files, the slots it covers and what staging found.
type StagedJob = (Staged, BTreeSet<u16>, StageReport);

/// Staged restores by job name.
#[derive(Default)]
pub(crate) struct StagedJobs {
    jobs: Mutex<HashMap<String, StagedJob>>,
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

fn slot_of(k: &[u8]) -> Option<u16> {
    match k {
        [a, b, _, ..] => Some(u16::from_be_bytes([*a, *b]) & 0x3fff),
        _ => None,
    }
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
        if job.is_empty() || job.contains(['/', '\\', '.']) {
            return Err("bad job name".into());
        }
        let shared = Arc::clone(&self.0);
        let mine = owned(&shared)?;
        let dir = shared.config.snapshot().dir.join("restore").join(&job);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(Vec<u8>, Vec<u8>)>>(4);
        let sh = Arc::clone(&shared);
        let writer = tokio::task::spawn_blocking(move || {
            let mut loader = SlotLoader::new(&sh.engine, &dir).map_err(|e| e.to_string())?;
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
                        report.keys += 1;
                        if sh.engine.get(k).map_err(|e| e.to_string())?.is_some() {
                            report.collisions += 1;
                            if report.example.is_empty() {
                                report.example = k[3..].to_vec();
                            }
                        }
                    }
                    loader.put(k, v).map_err(|e| e.to_string())?;
                    report.entries += 1;
                    slots.insert(slot);
                }
            }
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
        let r = report.clone();
        if let Some((old, _, _)) = shared
            .migrations
            .staged
            .jobs
            .lock()
            .insert(job, (staged, slots, report))
        {
            let _ = std::fs::remove_dir_all(&old.dir);
        }
        Ok(r)
    }

    async fn commit(&self, job: String) -> Result<StageReport, String> {
        let (staged, slots, report) = self
            .0
            .migrations
            .staged
            .jobs
            .lock()
            .remove(&job)
            .ok_or_else(|| format!("no staged restore named {job}"))?;
        let sh = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            sh.engine
                .ingest_staged(&staged)
                .map_err(|e| e.to_string())?;
            let slots: Vec<u16> = slots.into_iter().collect();
            sh.keyspace
                .recount_slots(&slots)
                .map_err(|e| e.to_string())?;
            // Replicas fetch the restored slots from here, as after a slot migration.
            let ranges = crate::slot::ranges_of(&slots);
            sh.keyspace
                .import_mark_loaded(&ranges)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        tracing::info!("restore {job}: {} keys ingested", report.keys);
        Ok(report)
    }

    async fn abort(&self, job: String) -> Result<(), String> {
        if let Some((staged, _, _)) = self.0.migrations.staged.jobs.lock().remove(&job) {
            let _ = std::fs::remove_dir_all(&staged.dir);
        }
        Ok(())
    }
}

/// Staged restores do not survive a restart.
pub fn clear_staging(shared: &MigrationHandle) {
    let _ = std::fs::remove_dir_all(shared.config.snapshot().dir.join("restore"));
}

//! Moving whole families as files: a consistent snapshot exported as SST files, and SST files
//! ingested in place of a node's data. Used by replication's full sync (and later by slot
//! migration and backup). Memory stays bounded: files are written and read in streams.

use std::path::{Path, PathBuf};

use rocksdb::{IngestExternalFileOptions, ReadOptions, SstFileWriter};

use super::{Engine, Result, Snapshot, StorageError, SLOTS};

/// One exported SST file.
#[derive(Debug, Clone)]
pub struct ExportedFile {
    pub family: String,
    pub path: PathBuf,
    pub entries: u64,
}

/// Files larger than this are split, so a transfer can resume and a receiver buffers little.
const MAX_FILE_BYTES: u64 = 256 << 20;

impl Snapshot<'_> {
    /// Writes every family's data as of this snapshot into SST files under `dir`.
    pub fn export(&self, dir: &Path) -> Result<Vec<ExportedFile>> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Engine(format!("creating {}: {e}", dir.display())))?;
        let eng = self.engine;
        let mut out = Vec::new();
        for (f, name) in eng.names.iter().enumerate() {
            if !eng.exists[f].load(std::sync::atomic::Ordering::Acquire) {
                continue;
            }
            let Some(cf) = eng.db.cf_handle(name) else {
                continue;
            };
            let mut ro = ReadOptions::default();
            ro.fill_cache(false);
            let mut it = self.snap.raw_iterator_cf_opt(&cf, ro);
            it.seek_to_first();
            let mut part = 0;
            while it.valid() {
                let path = dir.join(format!("{name}.{part:04}.sst"));
                let writer = SstFileWriter::create(&eng.family_opts);
                writer.open(&path)?;
                let mut writer = writer;
                let mut entries = 0u64;
                while it.valid() {
                    let (Some(k), Some(v)) = (it.key(), it.value()) else {
                        break;
                    };
                    writer.put(k, v)?;
                    entries += 1;
                    it.next();
                    if writer.file_size() >= MAX_FILE_BYTES {
                        break;
                    }
                }
                it.status()?;
                writer.finish()?;
                out.push(ExportedFile {
                    family: name.clone(),
                    path,
                    entries,
                });
                part += 1;
            }
            it.status()?;
        }
        Ok(out)
    }
}

impl Engine {
    /// Replaces all slot data with the given SST files (family name, path): everything is
    /// deleted, then each file is ingested into its family (created if missing).
    pub fn replace_all(&self, files: &[(String, PathBuf)]) -> Result<()> {
        let mut wipe = super::Batch::new();
        wipe.delete_slots(0, (SLOTS - 1) as u16);
        self.write(wipe)?;
        for (family, path) in files {
            let Some(idx) = self.names.iter().position(|n| n == family) else {
                return Err(StorageError::Format(format!(
                    "unknown family {family} in transfer"
                )));
            };
            let first_slot = (idx * self.slots_per_family) as u16;
            let cf = self.family_for_write(first_slot)?;
            let mut opts = IngestExternalFileOptions::default();
            opts.set_move_files(true);
            self.db
                .ingest_external_file_cf_opts(&cf, &opts, vec![path])?;
        }
        Ok(())
    }
}

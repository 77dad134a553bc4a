//! Moving slot ranges as sorted data: reading a range of slots from a snapshot, and loading
//! sorted entries of a range into SST files that are ingested into the slots' families (slot
//! migration and a replica fetching imported slots). Memory stays bounded: entries stream
//! through, files are written as they come and split at family boundaries and at a size cap.

use std::path::{Path, PathBuf};

use rocksdb::{IngestExternalFileOptions, SstFileWriter};

use super::engine::slot_of;
use super::{Engine, Result, Snapshot, StorageError, SLOTS};

/// Files larger than this are closed and a new one started.
const MAX_FILE_BYTES: u64 = 256 << 20;

impl Snapshot<'_> {
    /// Visits every entry of slots `first..=last` in key order (across families) until `f`
    /// returns false.
    pub fn scan_slots(
        &self,
        first: u16,
        last: u16,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let spf = self.engine.slots_per_family;
        let mut slot = first as usize;
        let mut go = true;
        while go && slot <= last as usize {
            let fam_end = (slot / spf + 1) * spf;
            let end = fam_end.min(last as usize + 1);
            let from = (slot as u16).to_be_bytes();
            let to: Vec<u8> = if end == SLOTS {
                vec![0xff, 0xff, 0xff]
            } else {
                (end as u16).to_be_bytes().to_vec()
            };
            self.scan(&from, &to, |k, v| {
                go = f(k, v);
                go
            })?;
            slot = end;
        }
        Ok(())
    }
}

/// Writes sorted entries of some slots into SST files under `dir`, then ingests them.
pub struct SlotLoader<'e> {
    engine: &'e Engine,
    dir: PathBuf,
    open: Option<(usize, SstFileWriter<'e>, PathBuf)>,
    written: Vec<(usize, PathBuf)>,
    last_key: Vec<u8>,
    entries: u64,
    bytes: u64,
    seq: usize,
}

impl<'e> SlotLoader<'e> {
    pub fn new(engine: &'e Engine, dir: &Path) -> Result<SlotLoader<'e>> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Engine(format!("creating {}: {e}", dir.display())))?;
        Ok(SlotLoader {
            engine,
            dir: dir.to_path_buf(),
            open: None,
            written: Vec::new(),
            last_key: Vec::new(),
            entries: 0,
            bytes: 0,
            seq: 0,
        })
    }

    /// Adds one entry; keys must arrive in strictly increasing order.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if !self.last_key.is_empty() && key <= &self.last_key[..] {
            return Err(StorageError::Format("slot data out of order".into()));
        }
        let fam = slot_of(key)? as usize / self.engine.slots_per_family;
        let switch = match &self.open {
            Some((f, w, _)) => *f != fam || w.file_size() >= MAX_FILE_BYTES,
            None => true,
        };
        if switch {
            self.close()?;
            let path = self.dir.join(format!("load-{:05}.sst", self.seq));
            self.seq += 1;
            let w = SstFileWriter::create(&self.engine.family_opts);
            w.open(&path)?;
            self.open = Some((fam, w, path));
        }
        if let Some((_, w, _)) = &mut self.open {
            w.put(key, value)?;
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entries += 1;
        self.bytes += (key.len() + value.len()) as u64;
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if let Some((fam, mut w, path)) = self.open.take() {
            w.finish()?;
            self.written.push((fam, path));
        }
        Ok(())
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Closes the files without ingesting them (see [`Engine::ingest_staged`]).
    pub fn stage(mut self) -> Result<super::backup_io::Staged> {
        self.close()?;
        let files = std::mem::take(&mut self.written);
        // Keep the directory: it now belongs to the staged set.
        let dir = std::mem::take(&mut self.dir);
        Ok(super::backup_io::Staged { files, dir })
    }

    /// Ingests every file written (moved into the database, so no copy); returns the number
    /// of entries.
    pub fn ingest(mut self) -> Result<u64> {
        self.close()?;
        for (fam, path) in std::mem::take(&mut self.written) {
            let cf = self
                .engine
                .family_for_write((fam * self.engine.slots_per_family) as u16)?;
            let mut opts = IngestExternalFileOptions::default();
            opts.set_move_files(true);
            self.engine
                .db
                .ingest_external_file_cf_opts(&cf, &opts, vec![path])?;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(self.entries)
    }
}

impl Drop for SlotLoader<'_> {
    fn drop(&mut self) {
        // An abandoned load leaves nothing behind.
        self.open = None;
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

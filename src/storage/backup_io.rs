//! Slot data as standalone SST files (slot backups): writing sorted entries into files split
//! at family boundaries and a size cap, reading such a file back (through a scratch database:
//! RocksDB's C API has no SST reader), and staging files for a later ingest.
//! Memory stays bounded: entries stream through, files are written as they come.

use std::path::{Path, PathBuf};

use rocksdb::{IngestExternalFileOptions, Options, SstFileWriter, DB};

use super::engine::slot_of;
use super::{Engine, Result, StorageError};

/// Files larger than this are closed and a new one started.
const MAX_FILE_BYTES: u64 = 256 << 20;

fn io(what: &str, p: &Path, e: std::io::Error) -> StorageError {
    StorageError::Engine(format!("{what} {}: {e}", p.display()))
}

/// One finished file.
#[derive(Debug, Clone)]
pub struct RunFile {
    pub path: PathBuf,
    pub first_slot: u16,
    pub last_slot: u16,
    pub entries: u64,
}

/// Writes sorted entries into SST files named `<prefix>-<seq>.sst` under `dir`, a new file at
/// each family boundary (`slots_per_family`) and at the size cap.
pub struct RunWriter {
    opts: Options,
    dir: PathBuf,
    prefix: String,
    slots_per_family: usize,
    open: Option<(SstFileWriter<'static>, RunFile)>,
    done: Vec<RunFile>,
    last_key: Vec<u8>,
    seq: usize,
}

fn leak_opts(o: Options) -> &'static Options {
    // SstFileWriter borrows its options; a writer lives for one backup run, so one small leak
    // per run is the simple way to own both.
    Box::leak(Box::new(o))
}

impl RunWriter {
    pub fn new(dir: &Path, prefix: &str, slots_per_family: usize) -> Result<RunWriter> {
        std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
        let mut opts = Options::default();
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        Ok(RunWriter {
            opts,
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            slots_per_family: slots_per_family.max(1),
            open: None,
            done: Vec::new(),
            last_key: Vec::new(),
            seq: 0,
        })
    }

    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if !self.last_key.is_empty() && key <= &self.last_key[..] {
            return Err(StorageError::Format("slot data out of order".into()));
        }
        let slot = slot_of(key)?;
        let switch = match &self.open {
            Some((w, f)) => {
                f.first_slot as usize / self.slots_per_family
                    != slot as usize / self.slots_per_family
                    || w.file_size() >= MAX_FILE_BYTES
            }
            None => true,
        };
        if switch {
            self.close()?;
            let path = self
                .dir
                .join(format!("{}-{:05}.sst", self.prefix, self.seq));
            self.seq += 1;
            let w = SstFileWriter::create(leak_opts(self.opts.clone()));
            w.open(&path)?;
            self.open = Some((
                w,
                RunFile {
                    path,
                    first_slot: slot,
                    last_slot: slot,
                    entries: 0,
                },
            ));
        }
        if let Some((w, f)) = &mut self.open {
            w.put(key, value)?;
            f.last_slot = slot;
            f.entries += 1;
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if let Some((mut w, f)) = self.open.take() {
            w.finish()?;
            self.done.push(f);
        }
        Ok(())
    }

    /// Closes the last file; returns every file written.
    pub fn finish(mut self) -> Result<Vec<RunFile>> {
        self.close()?;
        Ok(std::mem::take(&mut self.done))
    }
}

/// Reads one SST file in key order through a scratch database next to it (the file is hard
/// linked in, or copied when linking is impossible; the original is never modified).
pub struct RunReader {
    db: Option<DB>,
    scratch: PathBuf,
}

impl RunReader {
    pub fn open(file: &Path, scratch: &Path) -> Result<RunReader> {
        let _ = std::fs::remove_dir_all(scratch);
        std::fs::create_dir_all(scratch).map_err(|e| io("creating", scratch, e))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, scratch.join("db"))?;
        let link = scratch.join("in.sst");
        let mut ingest = IngestExternalFileOptions::default();
        if std::fs::hard_link(file, &link).is_ok() {
            ingest.set_move_files(true);
            db.ingest_external_file_opts(&ingest, vec![&link])?;
        } else {
            db.ingest_external_file_opts(&ingest, vec![file])?;
        }
        Ok(RunReader {
            db: Some(db),
            scratch: scratch.to_path_buf(),
        })
    }

    /// Visits every entry in key order until `f` returns false.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let Some(db) = &self.db else { return Ok(()) };
        let mut it = db.raw_iterator();
        it.seek_to_first();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if !f(k, v) {
                return Ok(());
            }
            it.next();
        }
        it.status()?;
        Ok(())
    }
}

impl Drop for RunReader {
    fn drop(&mut self) {
        self.db = None;
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// SST files written for this engine's families and not ingested yet (a staged restore).
#[derive(Debug, Default)]
pub struct Staged {
    pub files: Vec<(usize, PathBuf)>,
    pub dir: PathBuf,
}

impl Engine {
    /// Ingests staged files (moved into the database).
    pub fn ingest_staged(&self, staged: &Staged) -> Result<()> {
        for (fam, path) in &staged.files {
            let cf = self.family_for_write((fam * self.slots_per_family) as u16)?;
            let mut opts = IngestExternalFileOptions::default();
            opts.set_move_files(true);
            self.db
                .ingest_external_file_cf_opts(&cf, &opts, vec![path])?;
        }
        let _ = std::fs::remove_dir_all(&staged.dir);
        Ok(())
    }
}

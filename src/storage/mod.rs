//! The storage engine: the only module that names RocksDB.
//!
//! Owns: one RocksDB per node, slot-range column families (`slots-00000-00127`, created on
//! first write to a range), the `meta` family, the shared block cache and write-buffer budget,
//! per-slot counters kept atomically with the data, WAL syncing (`appendfsync`).
//! Key types: [`Engine`], [`Batch`], [`WalSync`].
//! Must not: know Redis types, commands or encodings beyond "every data key starts with its
//! slot as u16 big-endian"; callers above see only this interface.

mod backup_io;
mod batch;
mod engine;
mod slots_io;
mod transfer;
mod wal_sync;

pub use backup_io::{RunFile, RunReader, RunWriter, Staged};
pub use batch::{Batch, RecordWrite};
pub use engine::{Engine, EngineOptions, Snapshot, StorageFigures};
pub use slots_io::SlotLoader;
pub use transfer::ExportedFile;
pub use wal_sync::{SyncMode, WalSync};

pub use crate::slot::SLOTS;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage error: {0}")]
    Engine(String),
    #[error("storage format error: {0}")]
    Format(String),
}

impl From<rocksdb::Error> for StorageError {
    fn from(e: rocksdb::Error) -> Self {
        StorageError::Engine(e.into_string())
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// Name of the family holding `slot` for a given family width.
pub fn family_name(family: usize, slots_per_family: usize) -> String {
    let first = family * slots_per_family;
    format!("slots-{:05}-{:05}", first, first + slots_per_family - 1)
}

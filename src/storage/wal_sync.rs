//! `appendfsync` for the RocksDB WAL: `always` shares one fsync among all writers waiting at
//! the same moment (group commit), `everysec` syncs in the background once a second, `no`
//! leaves it to the OS. RocksDB writes each batch to the OS before returning, so a killed
//! process loses nothing in any mode; the modes differ on a machine crash.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    Always,
    Everysec,
    No,
}

/// The WAL sync thread and its waiters.
pub struct WalSync {
    mode: AtomicU64,
    requested: Mutex<u64>,
    wake: Condvar,
    completed: watch::Sender<u64>,
    syncs: AtomicU64,
    failures: AtomicU64,
    /// The highest ticket a successful sync covered.
    durable: AtomicU64,
}

fn mode_to_u64(m: SyncMode) -> u64 {
    match m {
        SyncMode::Always => 0,
        SyncMode::Everysec => 1,
        SyncMode::No => 2,
    }
}

impl WalSync {
    /// Starts the sync thread for `engine`.
    pub fn start(engine: Arc<Engine>, mode: SyncMode) -> Arc<WalSync> {
        let (tx, _) = watch::channel(0);
        let ws = Arc::new(WalSync {
            mode: AtomicU64::new(mode_to_u64(mode)),
            requested: Mutex::new(0),
            wake: Condvar::new(),
            completed: tx,
            syncs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            durable: AtomicU64::new(0),
        });
        let me = Arc::clone(&ws);
        let weak = Arc::downgrade(&engine);
        // What was written before this point is synced along with the next write.
        let written = engine.write_count();
        drop(engine);
        std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || me.run(weak, written))
            .expect("spawning the WAL sync thread");
        ws
    }

    pub fn mode(&self) -> SyncMode {
        match self.mode.load(Ordering::Relaxed) {
            0 => SyncMode::Always,
            1 => SyncMode::Everysec,
            _ => SyncMode::No,
        }
    }

    pub fn set_mode(&self, m: SyncMode) {
        self.mode.store(mode_to_u64(m), Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// WAL syncs done since start.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Waits until every write made before this call is synced (only in `always` mode);
    /// false when the sync failed, so those writes must not be acknowledged.
    pub async fn wait_durable(&self) -> bool {
        if self.mode() != SyncMode::Always {
            return true;
        }
        let ticket = {
            let mut r = self.requested.lock();
            *r += 1;
            *r
        };
        self.wake.notify_one();
        let mut rx = self.completed.subscribe();
        // The sender lives as long as `self`; an error means shutdown, when waiting is moot.
        if rx.wait_for(|done| *done >= ticket).await.is_err() {
            return false;
        }
        self.durable.load(Ordering::Acquire) >= ticket
    }

    fn run(&self, engine: std::sync::Weak<Engine>, mut synced_writes: u64) {
        loop {
            let target = {
                let mut r = self.requested.lock();
                if *r <= *self.completed.borrow() {
                    self.wake.wait_for(&mut r, Duration::from_millis(1000));
                }
                *r
            };
            let Some(engine) = engine.upgrade() else {
                return;
            };
            // Every batch counts, not only client commands: a replica's applied stream and
            // migrated slots are synced within the second as well.
            let writes = engine.write_count();
            let pending_request = target > *self.completed.borrow();
            let periodic = self.mode() == SyncMode::Everysec && writes != synced_writes;
            if pending_request || periodic {
                match engine.sync_wal() {
                    Ok(()) => {
                        self.syncs.fetch_add(1, Ordering::Relaxed);
                        self.durable.fetch_max(target, Ordering::AcqRel);
                    }
                    Err(e) => {
                        self.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::error!("WAL fsync failed: {e}");
                    }
                }
                synced_writes = writes;
                self.completed.send_replace(target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::storage::Batch;

    /// `everysec` syncs batches that did not come from a client command too (a replica's
    /// applied stream, migrated slots): any write to the engine is synced within a second or so.
    #[test]
    fn everysec_syncs_every_kind_of_batch() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open_for_test(dir.path()));
        let ws = WalSync::start(Arc::clone(&engine), SyncMode::Everysec);
        let before = ws.syncs();
        let mut b = Batch::new();
        b.put_meta(b"replicated".to_vec(), b"batch".to_vec());
        engine.write(b).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while ws.syncs() == before {
            assert!(Instant::now() < deadline, "the write was never synced");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

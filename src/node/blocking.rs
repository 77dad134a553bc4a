//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN, ...): the keys they wait on, and the
//! signal a write to one of those keys raises so they run their command again.
//!
//! A blocked connection registers its keys, then runs its command once more before waiting, so
//! a push that committed between its first look and the registration is not missed: any write
//! committed after the registration signals it.
//!
//! Keys are names without their database: a write to the same name in another database wakes
//! the waiter for one more look, which finds nothing and waits again.
//!
//! Must not: run commands or touch sockets; the connection does both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::resp::Reply;

pub struct BlockedKeys {
    waiting: Mutex<HashMap<Bytes, usize>>,
    /// Registered keys, read without the lock on every write.
    count: AtomicUsize,
    seq: watch::Sender<u64>,
}

impl Default for BlockedKeys {
    fn default() -> Self {
        BlockedKeys {
            waiting: Mutex::new(HashMap::new()),
            count: AtomicUsize::new(0),
            seq: watch::channel(0).0,
        }
    }
}

/// One blocked command: what it waits on, until when, and what it answers on timeout.
pub struct Blocked {
    pub args: Vec<Bytes>,
    pub deadline: Option<Instant>,
    pub timeout_reply: Reply,
    pub wake: watch::Receiver<u64>,
    registry: Arc<BlockedKeys>,
    keys: Vec<Bytes>,
}

impl Drop for Blocked {
    fn drop(&mut self) {
        let mut w = self.registry.waiting.lock();
        for k in &self.keys {
            if let Some(n) = w.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    w.remove(k);
                }
            }
        }
        self.registry.count.store(w.len(), Ordering::SeqCst);
    }
}

impl BlockedKeys {
    /// Registers a blocked command; dropping the result unregisters it.
    pub fn block(
        self: &Arc<Self>,
        args: Vec<Bytes>,
        keys: Vec<Bytes>,
        deadline: Option<Instant>,
        timeout_reply: Reply,
    ) -> Blocked {
        let wake = self.seq.subscribe();
        {
            let mut w = self.waiting.lock();
            for k in &keys {
                *w.entry(k.clone()).or_default() += 1;
            }
            self.count.store(w.len(), Ordering::SeqCst);
        }
        Blocked {
            args,
            deadline,
            timeout_reply,
            wake,
            registry: Arc::clone(self),
            keys,
        }
    }

    /// Whether any client is blocked (writers skip the key check when none is).
    pub fn any(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// Wakes every blocked client to run its command again (SWAPDB).
    pub fn wake_all(&self) {
        if self.any() {
            self.seq.send_modify(|s| *s += 1);
        }
    }

    /// Called after `keys` were written and committed: wakes blocked clients if one of them
    /// waits on any of these keys.
    pub fn signal(&self, keys: &[Bytes]) {
        if keys.is_empty() || !self.any() {
            return;
        }
        let hit = {
            let w = self.waiting.lock();
            keys.iter().any(|k| w.contains_key(k))
        };
        if hit {
            self.seq.send_modify(|s| *s += 1);
        }
    }
}

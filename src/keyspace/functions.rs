//! The node's function libraries as stored: one `meta` record holding FUNCTION DUMP's payload,
//! written in the write log like a key (so replicas get it in order with the data) and read
//! back at start and after a full sync.
//!
//! Owns: where the record lives and who is told of a change. Must not: parse or run libraries
//! (that is `script`); the hook is called under the commit order lock, so it must not block.

use super::{Batch, Keyspace, Result};

/// The `meta` record with the libraries' payload (empty: no libraries).
pub(super) const FUNCTIONS_KEY: &[u8] = b"functions";

/// Told the payload each time a commit (own or replicated) changes the libraries.
pub(super) type Hook = Box<dyn Fn(&[u8]) + Send + Sync>;

impl Keyspace {
    /// The stored libraries' payload (empty when none were ever stored).
    pub fn functions(&self) -> Result<Vec<u8>> {
        Ok(self.engine.get_meta(FUNCTIONS_KEY)?.unwrap_or_default())
    }

    /// Stores the libraries' payload, replicated as one batch.
    pub fn set_functions(&self, payload: Vec<u8>) -> Result<()> {
        let mut b = Batch::new();
        b.put_meta(FUNCTIONS_KEY.to_vec(), payload);
        self.commit(b)
    }

    /// Sets who is told of committed library changes (once; the scripting engine).
    pub fn on_functions_changed(&self, hook: impl Fn(&[u8]) + Send + Sync + 'static) {
        let _ = self.functions_hook.set(Box::new(hook));
    }

    /// A full sync's batch: the primary's libraries as of its snapshot.
    pub fn functions_batch(payload: &[u8]) -> Batch {
        let mut b = Batch::new();
        b.put_meta(FUNCTIONS_KEY.to_vec(), payload.to_vec());
        b
    }

    /// The libraries' payload as of `snap` (a full sync sends it with the snapshot's files).
    pub fn functions_at(snap: &crate::storage::Snapshot<'_>) -> Result<Vec<u8>> {
        Ok(snap.get_meta(FUNCTIONS_KEY)?.unwrap_or_default())
    }

    pub(super) fn functions_written(&self, payload: &[u8]) {
        if let Some(hook) = self.functions_hook.get() {
            hook(payload);
        }
    }
}

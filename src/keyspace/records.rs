//! Node records that replicate like data although they are not keys: the function libraries
//! (FUNCTION DUMP's payload) and the ACL users (ACL LIST's lines). Each is one `meta` record,
//! written in the write log like a key (so replicas get it in order with the data), sent with
//! a full sync, and read back at start.
//!
//! Owns: where the records live and who is told of a change. Must not: parse them (that is
//! `script` and `acl`); a hook is called under the commit order lock, so it must not block.

use super::{Batch, Keyspace, Result};

/// A replicated node record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRecord {
    /// FUNCTION DUMP's payload (empty: no libraries).
    Functions,
    /// ACL LIST's lines, one per user.
    Users,
    /// The physical database of each logical one (byte `i` for database `i`; SWAPDB).
    Databases,
}

impl NodeRecord {
    pub const ALL: [NodeRecord; 3] = [
        NodeRecord::Functions,
        NodeRecord::Users,
        NodeRecord::Databases,
    ];

    pub(super) fn key(self) -> &'static [u8] {
        match self {
            NodeRecord::Functions => b"functions",
            NodeRecord::Users => b"acl-users",
            NodeRecord::Databases => b"db-map",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Told the payload each time a commit (own or replicated) changes a record.
pub(super) type Hook = Box<dyn Fn(&[u8]) + Send + Sync>;

impl Keyspace {
    /// A stored record (empty when never stored).
    pub fn record(&self, r: NodeRecord) -> Result<Vec<u8>> {
        Ok(self.engine.get_meta(r.key())?.unwrap_or_default())
    }

    /// Stores a record, replicated as one batch.
    pub fn set_record(&self, r: NodeRecord, payload: Vec<u8>) -> Result<()> {
        let mut b = Batch::new();
        b.put_meta(r.key().to_vec(), payload);
        self.commit(b)
    }

    /// Sets who is told of committed changes to `r` (once per record).
    pub fn on_record_changed(&self, r: NodeRecord, hook: impl Fn(&[u8]) + Send + Sync + 'static) {
        let _ = self.record_hooks[r.index()].set(Box::new(hook));
    }

    /// A full sync's batch: the primary's records as of its snapshot.
    pub fn records_batch(records: &[(NodeRecord, Vec<u8>)]) -> Batch {
        let mut b = Batch::new();
        for (r, payload) in records {
            b.put_meta(r.key().to_vec(), payload.clone());
        }
        b
    }

    /// The records as of `snap` (a full sync sends them with the snapshot's files).
    pub fn records_at(snap: &crate::storage::Snapshot<'_>) -> Result<Vec<(NodeRecord, Vec<u8>)>> {
        NodeRecord::ALL
            .iter()
            .map(|&r| Ok((r, snap.get_meta(r.key())?.unwrap_or_default())))
            .collect()
    }

    /// The records `batch` writes.
    pub(super) fn records_in(batch: &Batch) -> Vec<(NodeRecord, Vec<u8>)> {
        NodeRecord::ALL
            .iter()
            .filter_map(|&r| batch.meta_put(r.key()).map(|p| (r, p.to_vec())))
            .collect()
    }

    /// Puts `records` into `batch` (a replicated batch trimmed to some slots keeps them).
    pub(super) fn keep_records(batch: &mut Batch, records: Vec<(NodeRecord, Vec<u8>)>) {
        for (r, payload) in records {
            batch.put_meta(r.key().to_vec(), payload);
        }
    }

    pub(super) fn records_written(&self, records: &[(NodeRecord, Vec<u8>)]) {
        for (r, payload) in records {
            if *r == NodeRecord::Databases {
                self.load_db_map(payload);
            }
            if let Some(hook) = self.record_hooks[r.index()].get() {
                hook(payload);
            }
        }
    }
}

//! What slot moves, replica fetches and slot backups need from the network, as traits the
//! gRPC edge (`rpc`) implements: the services this node serves ([`ImportSide`],
//! [`BackupSide`]) and the connection to another node's migration service
//! ([`MigrationPeer`], made by a [`MigrationConnector`]).
//!
//! Must not: name tonic or protobuf.

use std::pin::Pin;

use futures::Stream;

use crate::cluster::NodeId;
use crate::slot::Ranges;

/// Sorted storage entries of a slot move.
#[derive(Debug, Default)]
pub struct DataChunk {
    pub job: String,
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// Export only: the primary's write-log offset of the snapshot (on the last chunk).
    pub offset: u64,
    /// Export only: this chunk ends the snapshot.
    pub last: bool,
}

pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<DataChunk, String>> + Send>>;
/// Chunks sent to a peer.
pub type OutChunks = Pin<Box<dyn Stream<Item = DataChunk> + Send>>;

/// What a node does as a migration target (and as the primary of a replica fetching slots).
#[async_trait::async_trait]
pub trait ImportSide: Send + Sync + 'static {
    async fn begin(&self, job: String, source: NodeId, ranges: Ranges) -> Result<u64, String>;
    async fn load(&self, job: String, chunks: ChunkStream) -> Result<u64, String>;
    async fn apply(&self, job: String, batches: Vec<Vec<u8>>) -> Result<u64, String>;
    async fn commit(&self, job: String, batches: Vec<Vec<u8>>) -> Result<u64, String>;
    async fn abort(&self, job: String) -> Result<(), String>;
    /// The job's state here, with the config epoch when committed.
    async fn status(&self, job: String) -> (ImportStatus, u64);
    async fn export(&self, ranges: Ranges) -> Result<ChunkStream, String>;
}

/// A target's answer to "what happened to job X" (a source that lost the commit reply asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStatus {
    Importing,
    Committed,
    Unknown,
}

/// The outcome of a Commit call.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The target refused: nothing was committed.
    #[error("{0}")]
    Refused(String),
    /// The call failed in transit: the target may or may not have committed.
    #[error("commit outcome unknown: {0}")]
    Unknown(String),
}

/// A connection to another node's migration service.
#[async_trait::async_trait]
pub trait MigrationPeer: Send {
    async fn begin(
        &mut self,
        job: &str,
        source: &NodeId,
        ranges: &[(u16, u16)],
    ) -> Result<(), String>;
    /// Streams `chunks` to the target; returns the entries it loaded.
    async fn load(&mut self, chunks: OutChunks) -> Result<u64, String>;
    async fn apply(&mut self, job: &str, batches: Vec<Vec<u8>>) -> Result<(), String>;
    /// The target's config epoch after taking the slots.
    async fn commit(&mut self, job: &str, batches: Vec<Vec<u8>>) -> Result<u64, CommitError>;
    async fn abort(&mut self, job: &str) -> Result<(), String>;
    async fn status(&mut self, job: &str) -> Result<(ImportStatus, u64), String>;
    /// The peer's current data of `ranges`; the last chunk carries its write-log offset.
    async fn export(&mut self, ranges: &[(u16, u16)]) -> Result<ChunkStream, String>;
}

/// Opens [`MigrationPeer`] connections to other nodes' cluster ports.
#[async_trait::async_trait]
pub trait MigrationConnector: Send + Sync + 'static {
    async fn connect(
        &self,
        ip: &str,
        cport: u16,
        digest: Option<String>,
    ) -> Result<Box<dyn MigrationPeer>, String>;
}

/// What a staged restore found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StageReport {
    pub entries: u64,
    pub keys: u64,
    pub collisions: u64,
    pub example: Vec<u8>,
}

/// What a node does for slot backups and restores.
#[async_trait::async_trait]
pub trait BackupSide: Send + Sync + 'static {
    async fn export(&self, ranges: Ranges) -> Result<ChunkStream, String>;
    async fn stage(&self, job: String, chunks: ChunkStream) -> Result<StageReport, String>;
    /// Pauses writes to the job's slots and counts the keys it would replace now; refused
    /// (pause lifted, job kept for an abort) when there are some and `replace` is off.
    async fn prepare(&self, job: String, replace: bool) -> Result<StageReport, String>;
    /// Ingests a prepared job.
    async fn commit(&self, job: String) -> Result<StageReport, String>;
    async fn abort(&self, job: String) -> Result<(), String>;
}

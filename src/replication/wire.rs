//! Replication stream messages as domain types (the rpc layer converts them to protobuf).

use std::sync::Arc;

/// A replica's opening request.
#[derive(Debug, Clone)]
pub struct Hello {
    pub replid: String,
    pub offset: u64,
    pub ip: String,
    pub port: u16,
    pub node_id: String,
}

/// What a primary sends.
#[derive(Debug, Clone)]
pub enum PrimaryMsg {
    FullBegin {
        replid: String,
        offset: u64,
        files: u32,
    },
    Chunk {
        family: String,
        name: String,
        data: Vec<u8>,
        last: bool,
        crc32: u32,
    },
    FullEnd {
        offset: u64,
        keys: u64,
        /// The replicated node records (function libraries, users) as of the snapshot.
        records: Vec<(crate::keyspace::NodeRecord, Vec<u8>)>,
    },
    Continue {
        replid: String,
        offset: u64,
    },
    Batch {
        offset: u64,
        ops: Arc<Vec<u8>>,
    },
    Heartbeat {
        offset: u64,
    },
}

/// What the primary side of the replication service hands streams to.
#[async_trait::async_trait]
pub trait ReplSource: Send + Sync + 'static {
    /// Starts serving a replica: returns the stream of messages for it and a link id.
    async fn open(
        &self,
        hello: Hello,
        peer_ip: String,
    ) -> Result<(u64, tokio::sync::mpsc::Receiver<PrimaryMsg>), String>;
    fn on_ack(&self, link: u64, offset: u64);
    fn on_close(&self, link: u64);
}

pub type Inbound =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<PrimaryMsg, String>> + Send>>;

/// A replica's connection to its primary: the primary's messages in, offsets acknowledged out.
pub struct UpstreamLink {
    pub inbound: Inbound,
    pub acks: tokio::sync::mpsc::Sender<u64>,
}

impl UpstreamLink {
    /// Acknowledges `offset` (the future does not borrow the link, so it is `Send`).
    pub fn ack(
        &self,
        offset: u64,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
        let tx = self.acks.clone();
        async move {
            tx.send(offset)
                .await
                .map_err(|_| "replication stream closed".to_string())
        }
    }
}

/// Opens the replication stream to a primary's cluster port.
#[async_trait::async_trait]
pub trait ReplConnector: Send + Sync + 'static {
    async fn open(
        &self,
        ip: &str,
        port: u16,
        digest: Option<&str>,
        hello: Hello,
    ) -> Result<UpstreamLink, String>;
}

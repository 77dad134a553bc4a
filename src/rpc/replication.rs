//! The Replication gRPC service and client. Protobuf messages are converted to and from
//! [`crate::replication::wire`] domain types here; nothing else sees them.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::repl_pb as pb;
use super::repl_pb::replication_client::ReplicationClient;
use super::repl_pb::replication_server::{Replication, ReplicationServer};
use crate::replication::wire::{Hello, PrimaryMsg};

/// Metadata key carrying the digest of the replication password.
pub const REPL_AUTH_METADATA: &str = "rockslot-repl-auth";

/// What the primary side of the service hands streams to.
#[tonic::async_trait]
pub trait ReplSource: Send + Sync + 'static {
    /// Starts serving a replica: returns the stream of messages for it and a link id.
    async fn open(
        &self,
        hello: Hello,
        peer_ip: String,
    ) -> Result<(u64, mpsc::Receiver<PrimaryMsg>), String>;
    fn on_ack(&self, link: u64, offset: u64);
    fn on_close(&self, link: u64);
}

pub struct ReplService {
    src: Arc<dyn ReplSource>,
    digest: Option<String>,
}

pub fn repl_service(
    src: Arc<dyn ReplSource>,
    digest: Option<String>,
) -> ReplicationServer<ReplService> {
    ReplicationServer::new(ReplService { src, digest }).max_decoding_message_size(64 << 20)
}

fn to_pb(m: PrimaryMsg) -> pb::PrimaryMessage {
    use pb::primary_message::Msg;
    let msg = match m {
        PrimaryMsg::FullBegin {
            replid,
            offset,
            files,
        } => Msg::FullBegin(pb::FullSyncBegin {
            replid,
            offset,
            files,
        }),
        PrimaryMsg::Chunk {
            family,
            name,
            data,
            last,
            crc32,
        } => Msg::File(pb::FileChunk {
            family,
            name,
            data,
            last,
            crc32,
        }),
        PrimaryMsg::FullEnd { offset, keys } => Msg::FullEnd(pb::FullSyncEnd { offset, keys }),
        PrimaryMsg::Continue { replid, offset } => Msg::Resume(pb::Continue { replid, offset }),
        PrimaryMsg::Batch { offset, ops } => Msg::Batch(pb::Batch {
            offset,
            ops: ops.to_vec(),
        }),
        PrimaryMsg::Heartbeat { offset } => Msg::Heartbeat(pb::Heartbeat { offset }),
    };
    pb::PrimaryMessage { msg: Some(msg) }
}

fn from_pb(m: pb::PrimaryMessage) -> Result<PrimaryMsg, String> {
    use pb::primary_message::Msg;
    Ok(match m.msg.ok_or("empty message from primary")? {
        Msg::FullBegin(b) => PrimaryMsg::FullBegin {
            replid: b.replid,
            offset: b.offset,
            files: b.files,
        },
        Msg::File(f) => PrimaryMsg::Chunk {
            family: f.family,
            name: f.name,
            data: f.data,
            last: f.last,
            crc32: f.crc32,
        },
        Msg::FullEnd(e) => PrimaryMsg::FullEnd {
            offset: e.offset,
            keys: e.keys,
        },
        Msg::Resume(c) => PrimaryMsg::Continue {
            replid: c.replid,
            offset: c.offset,
        },
        Msg::Batch(b) => PrimaryMsg::Batch {
            offset: b.offset,
            ops: Arc::new(b.ops),
        },
        Msg::Heartbeat(h) => PrimaryMsg::Heartbeat { offset: h.offset },
    })
}

type OutStream = Pin<Box<dyn Stream<Item = Result<pb::PrimaryMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Replication for ReplService {
    type SyncStream = OutStream;

    async fn sync(
        &self,
        req: Request<Streaming<pb::ReplicaMessage>>,
    ) -> Result<Response<OutStream>, Status> {
        let peer = req
            .remote_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        if let Some(want) = &self.digest {
            let got = req
                .metadata()
                .get(REPL_AUTH_METADATA)
                .and_then(|v| v.to_str().ok());
            if got != Some(want.as_str()) {
                tracing::warn!("refused replication from {peer}: wrong or missing masterauth");
                return Err(Status::unauthenticated("wrong or missing masterauth"));
            }
        }
        let mut inbound = req.into_inner();
        let hello = match inbound.next().await {
            Some(Ok(pb::ReplicaMessage {
                msg: Some(pb::replica_message::Msg::Hello(h)),
            })) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first replica message must be a sync request",
                ))
            }
        };
        let hello = Hello {
            replid: hello.replid,
            offset: hello.offset,
            ip: if hello.ip.is_empty() {
                peer.clone()
            } else {
                hello.ip
            },
            port: u16::try_from(hello.port).map_err(|_| Status::invalid_argument("port"))?,
            node_id: hello.node_id,
        };
        let (link, rx) = self
            .src
            .open(hello, peer)
            .await
            .map_err(Status::failed_precondition)?;
        let src = Arc::clone(&self.src);
        tokio::spawn(async move {
            while let Some(Ok(m)) = inbound.next().await {
                if let Some(pb::replica_message::Msg::Ack(a)) = m.msg {
                    src.on_ack(link, a.offset);
                }
            }
            src.on_close(link);
        });
        let out = ReceiverStream::new(rx).map(|m| Ok(to_pb(m)));
        Ok(Response::new(Box::pin(out)))
    }
}

/// A replica's connection to its primary.
pub struct ReplLink {
    pub inbound: Pin<Box<dyn Stream<Item = Result<PrimaryMsg, String>> + Send>>,
    acks: mpsc::Sender<pb::ReplicaMessage>,
}

impl ReplLink {
    /// Opens the Sync stream to `ip:port` (the primary's cluster port).
    pub async fn open(
        ip: &str,
        port: u16,
        digest: Option<&str>,
        hello: Hello,
    ) -> Result<ReplLink, String> {
        let ch = super::peer_channel(ip, port).await?;
        let (tx, rx) = mpsc::channel(64);
        tx.send(pb::ReplicaMessage {
            msg: Some(pb::replica_message::Msg::Hello(pb::SyncRequest {
                replid: hello.replid,
                offset: hello.offset,
                ip: hello.ip,
                port: hello.port as u32,
                node_id: hello.node_id,
            })),
        })
        .await
        .map_err(|e| e.to_string())?;
        let mut req = Request::new(ReceiverStream::new(rx));
        if let Some(d) = digest {
            if let Ok(v) = d.parse() {
                req.metadata_mut().insert(REPL_AUTH_METADATA, v);
            }
        }
        let mut client = ReplicationClient::new(ch).max_decoding_message_size(64 << 20);
        let resp = client
            .sync(req)
            .await
            .map_err(|s| s.message().to_string())?;
        let inbound = resp
            .into_inner()
            .map(|r| r.map_err(|s| s.message().to_string()).and_then(from_pb));
        Ok(ReplLink {
            inbound: Box::pin(inbound),
            acks: tx,
        })
    }

    /// Acknowledges `offset` (the future does not borrow the link, so it is `Send`).
    pub fn ack(
        &self,
        offset: u64,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
        let tx = self.acks.clone();
        async move {
            tx.send(pb::ReplicaMessage {
                msg: Some(pb::replica_message::Msg::Ack(pb::Ack { offset })),
            })
            .await
            .map_err(|_| "replication stream closed".to_string())
        }
    }
}

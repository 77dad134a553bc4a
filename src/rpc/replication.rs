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
use crate::replication::wire::{Hello, PrimaryMsg, ReplConnector, ReplSource, UpstreamLink};

/// Metadata key carrying the digest of the replication password.
pub const REPL_AUTH_METADATA: &str = "rockslot-repl-auth";

pub struct ReplService {
    src: Arc<dyn ReplSource>,
    digest: Option<String>,
}

pub fn repl_service(
    src: Arc<dyn ReplSource>,
    digest: Option<String>,
) -> ReplicationServer<ReplService> {
    ReplicationServer::new(ReplService { src, digest })
        .max_decoding_message_size(super::MAX_MESSAGE)
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

/// Opens replication streams over gRPC.
pub struct ReplClients;

#[async_trait::async_trait]
impl ReplConnector for ReplClients {
    async fn open(
        &self,
        ip: &str,
        port: u16,
        digest: Option<&str>,
        hello: Hello,
    ) -> Result<UpstreamLink, String> {
        let ch = super::peer_channel(ip, port).await?;
        let first = pb::ReplicaMessage {
            msg: Some(pb::replica_message::Msg::Hello(pb::SyncRequest {
                replid: hello.replid,
                offset: hello.offset,
                ip: hello.ip,
                port: hello.port as u32,
                node_id: hello.node_id,
            })),
        };
        let (acks, rx) = mpsc::channel::<u64>(64);
        let outbound = tokio_stream::once(first).chain(ReceiverStream::new(rx).map(|offset| {
            pb::ReplicaMessage {
                msg: Some(pb::replica_message::Msg::Ack(pb::Ack { offset })),
            }
        }));
        let mut req = Request::new(outbound);
        if let Some(d) = digest {
            if let Ok(v) = d.parse() {
                req.metadata_mut().insert(REPL_AUTH_METADATA, v);
            }
        }
        let mut client = ReplicationClient::new(ch).max_decoding_message_size(super::MAX_MESSAGE);
        let resp = client
            .sync(req)
            .await
            .map_err(|s| s.message().to_string())?;
        let inbound = resp
            .into_inner()
            .map(|r| r.map_err(|s| s.message().to_string()).and_then(from_pb));
        Ok(UpstreamLink {
            inbound: Box::pin(inbound),
            acks,
        })
    }
}

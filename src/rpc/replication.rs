//! The Replication gRPC service and client. Protobuf messages are converted to and from
//! [`crate::replication::wire`] domain types here; nothing else sees them.

use crate::keyspace::NodeRecord;
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
    auth: Arc<crate::cluster::PeerAuth>,
}

pub fn repl_service(
    src: Arc<dyn ReplSource>,
    auth: Arc<crate::cluster::PeerAuth>,
) -> ReplicationServer<ReplService> {
    ReplicationServer::new(ReplService { src, auth }).max_decoding_message_size(super::MAX_MESSAGE)
}

/// Largest piece of a batch in one message: a batch of any size (one MSET may exceed 1 GiB)
/// streams as parts instead of overflowing the message limit.
const BATCH_PART: usize = 64 << 20;
/// Most bytes a replica reassembles into one batch.
const MAX_BATCH: usize = 4 << 30;

/// One domain message as the protobuf messages that carry it (several for a large batch).
fn to_pb(m: PrimaryMsg) -> Vec<pb::PrimaryMessage> {
    use pb::primary_message::Msg;
    let one = |msg| vec![pb::PrimaryMessage { msg: Some(msg) }];
    match m {
        PrimaryMsg::FullBegin {
            replid,
            offset,
            files,
        } => one(Msg::FullBegin(pb::FullSyncBegin {
            replid,
            offset,
            files,
        })),
        PrimaryMsg::Chunk {
            family,
            name,
            data,
            last,
            crc32,
        } => one(Msg::File(pb::FileChunk {
            family,
            name,
            data,
            last,
            crc32,
        })),
        PrimaryMsg::FullEnd {
            offset,
            keys,
            records,
        } => {
            let take = |want: NodeRecord| {
                records
                    .iter()
                    .find(|(r, _)| *r == want)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default()
            };
            one(Msg::FullEnd(pb::FullSyncEnd {
                offset,
                keys,
                functions: take(NodeRecord::Functions),
                users: take(NodeRecord::Users),
            }))
        }
        PrimaryMsg::Continue { replid, offset } => {
            one(Msg::Resume(pb::Continue { replid, offset }))
        }
        PrimaryMsg::Batch { offset, ops } => {
            let mut pieces: Vec<&[u8]> = ops.chunks(BATCH_PART).collect();
            let last = pieces.pop().unwrap_or_default();
            let mut out: Vec<pb::PrimaryMessage> = pieces
                .into_iter()
                .map(|p| pb::PrimaryMessage {
                    msg: Some(Msg::BatchPart(pb::BatchPart { data: p.to_vec() })),
                })
                .collect();
            out.extend(one(Msg::Batch(pb::Batch {
                offset,
                ops: last.to_vec(),
            })));
            out
        }
        PrimaryMsg::Heartbeat { offset } => one(Msg::Heartbeat(pb::Heartbeat { offset })),
    }
}

/// Reassembles batches sent in parts; every other message passes through.
#[derive(Default)]
struct Reassembly {
    parts: Vec<u8>,
}

impl Reassembly {
    /// `None` while a batch is incomplete.
    fn push(&mut self, m: pb::PrimaryMessage) -> Option<Result<PrimaryMsg, String>> {
        use pb::primary_message::Msg;
        match m.msg {
            Some(Msg::BatchPart(p)) => {
                if self.parts.len() + p.data.len() > MAX_BATCH {
                    self.parts = Vec::new();
                    return Some(Err(format!(
                        "a batch from the primary exceeds {MAX_BATCH} bytes"
                    )));
                }
                self.parts.extend_from_slice(&p.data);
                None
            }
            Some(Msg::Batch(mut b)) if !self.parts.is_empty() => {
                let mut ops = std::mem::take(&mut self.parts);
                ops.extend_from_slice(&b.ops);
                b.ops = ops;
                Some(from_pb(pb::PrimaryMessage {
                    msg: Some(Msg::Batch(b)),
                }))
            }
            _ if !self.parts.is_empty() => {
                self.parts = Vec::new();
                Some(Err("the primary interrupted a batch sent in parts".into()))
            }
            msg => Some(from_pb(pb::PrimaryMessage { msg })),
        }
    }
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
            records: vec![
                (NodeRecord::Functions, e.functions),
                (NodeRecord::Users, e.users),
            ],
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
        Msg::BatchPart(_) => return Err("a batch part outside a batch".into()),
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
        super::check_digest(
            &req,
            REPL_AUTH_METADATA,
            &self.auth,
            "replication: wrong or missing masterauth",
        )?;
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
        let out = futures::StreamExt::flat_map(ReceiverStream::new(rx), |m| {
            futures::stream::iter(to_pb(m).into_iter().map(Ok))
        });
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
        super::insert_token(req.metadata_mut(), REPL_AUTH_METADATA, digest);
        let mut client = ReplicationClient::new(ch).max_decoding_message_size(super::MAX_MESSAGE);
        let resp = client
            .sync(req)
            .await
            .map_err(|s| s.message().to_string())?;
        let mut batches = Reassembly::default();
        let inbound = resp.into_inner().filter_map(move |r| match r {
            Ok(m) => batches.push(m),
            Err(s) => Some(Err(s.message().to_string())),
        });
        Ok(UpstreamLink {
            inbound: Box::pin(inbound),
            acks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reassemble(msgs: Vec<pb::PrimaryMessage>) -> Vec<Result<PrimaryMsg, String>> {
        let mut r = Reassembly::default();
        msgs.into_iter().filter_map(|m| r.push(m)).collect()
    }

    /// A batch larger than one message travels as parts and arrives whole, with its offset.
    #[test]
    fn large_batches_travel_in_parts() {
        let ops: Vec<u8> = (0..BATCH_PART * 2 + 12345)
            .map(|i| (i % 251) as u8)
            .collect();
        let msgs = to_pb(PrimaryMsg::Batch {
            offset: 77,
            ops: Arc::new(ops.clone()),
        });
        assert_eq!(msgs.len(), 3);
        let got = reassemble(msgs);
        match got.as_slice() {
            [Ok(PrimaryMsg::Batch { offset: 77, ops: o })] => assert!(**o == ops),
            other => panic!("unexpected {:?}", other.len()),
        }
        let small = to_pb(PrimaryMsg::Batch {
            offset: 5,
            ops: Arc::new(vec![1, 2, 3]),
        });
        assert_eq!(small.len(), 1);
    }

    /// Parts not closed by their batch are a broken stream, not a batch.
    #[test]
    fn interrupted_parts_are_refused() {
        let mut msgs = to_pb(PrimaryMsg::Batch {
            offset: 9,
            ops: Arc::new(vec![0; BATCH_PART + 1]),
        });
        msgs.pop();
        msgs.extend(to_pb(PrimaryMsg::Heartbeat { offset: 9 }));
        let got = reassemble(msgs);
        assert!(matches!(got.as_slice(), [Err(_)]));
    }
}

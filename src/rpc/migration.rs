//! The Migration gRPC service (atomic slot migration) and its client. Protobuf messages are
//! validated into domain types here (slot ranges in bounds, node ids well formed); nothing
//! outside this module sees them.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use super::mig_pb as pb;
use super::mig_pb::migration_client::MigrationClient;
use super::mig_pb::migration_server::{Migration, MigrationServer};
use super::AUTH_METADATA;
use crate::cluster::NodeId;
use crate::migration::{
    ChunkStream, CommitError, DataChunk, ImportSide, ImportStatus, MigrationConnector,
    MigrationPeer, OutChunks,
};
use crate::slot::Ranges;

pub struct MigrationService {
    side: Arc<dyn ImportSide>,
    auth: Arc<crate::cluster::PeerAuth>,
}

pub fn migration_service(
    side: Arc<dyn ImportSide>,
    auth: Arc<crate::cluster::PeerAuth>,
) -> MigrationServer<MigrationService> {
    MigrationServer::new(MigrationService { side, auth })
        .max_decoding_message_size(super::MAX_MESSAGE)
        .max_encoding_message_size(super::MAX_MESSAGE)
}

pub(super) fn ranges_from_pb(r: &[pb::SlotRange]) -> Result<Ranges, Status> {
    if r.is_empty() {
        return Err(Status::invalid_argument("no slot ranges"));
    }
    r.iter()
        .map(|x| {
            if x.first <= x.last && x.last < crate::slot::SLOTS as u32 {
                Ok((x.first as u16, x.last as u16))
            } else {
                Err(Status::invalid_argument(format!(
                    "bad slot range {}-{}",
                    x.first, x.last
                )))
            }
        })
        .collect()
}

pub(super) fn ranges_to_pb(r: &[(u16, u16)]) -> Vec<pb::SlotRange> {
    r.iter()
        .map(|(a, b)| pb::SlotRange {
            first: *a as u32,
            last: *b as u32,
        })
        .collect()
}

pub(super) fn chunk_from_pb(c: pb::DataChunk) -> Result<DataChunk, String> {
    if c.keys.len() != c.values.len() {
        return Err("data chunk with unequal key and value counts".into());
    }
    Ok(DataChunk {
        job: c.job,
        entries: c.keys.into_iter().zip(c.values).collect(),
        offset: c.offset,
        last: c.last,
    })
}

pub(super) fn chunk_to_pb(c: DataChunk) -> pb::DataChunk {
    let (keys, values) = c.entries.into_iter().unzip();
    pb::DataChunk {
        job: c.job,
        keys,
        values,
        offset: c.offset,
        last: c.last,
    }
}

/// A job name from a peer, refused unless it is in the one safe charset (it names a directory).
fn job(name: String) -> Result<String, Status> {
    if crate::migration::valid_job_name(&name) {
        Ok(name)
    } else {
        tracing::warn!("refused a slot migration request with job name {name:?}");
        Err(Status::invalid_argument(format!(
            "invalid job name {name:?}"
        )))
    }
}

fn failed(e: String) -> Status {
    Status::failed_precondition(e)
}

impl MigrationService {
    fn authenticate<T>(&self, req: &Request<T>) -> Result<(), Status> {
        super::check_digest(
            req,
            AUTH_METADATA,
            &self.auth,
            "a slot migration request: wrong or missing cluster bus secret",
        )
    }
}

type OutStream = Pin<Box<dyn Stream<Item = Result<pb::DataChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Migration for MigrationService {
    async fn begin(&self, req: Request<pb::BeginImport>) -> Result<Response<pb::JobReply>, Status> {
        self.authenticate(&req)?;
        let b = req.into_inner();
        let source = NodeId::parse(b.source.as_bytes())
            .ok_or_else(|| Status::invalid_argument("bad source node id"))?;
        let ranges = ranges_from_pb(&b.ranges)?;
        let entries = self
            .side
            .begin(job(b.job)?, source, ranges)
            .await
            .map_err(failed)?;
        Ok(Response::new(pb::JobReply { entries }))
    }

    async fn load(
        &self,
        req: Request<Streaming<pb::DataChunk>>,
    ) -> Result<Response<pb::JobReply>, Status> {
        self.authenticate(&req)?;
        let mut inbound = req.into_inner();
        let first = match inbound.next().await {
            Some(Ok(c)) => chunk_from_pb(c).map_err(Status::invalid_argument)?,
            Some(Err(s)) => return Err(s),
            None => return Err(Status::invalid_argument("empty load")),
        };
        let job = job(first.job.clone())?;
        let rest = inbound.map(|r| {
            r.map_err(|s| s.message().to_string())
                .and_then(chunk_from_pb)
        });
        let chunks: ChunkStream = Box::pin(tokio_stream::once(Ok(first)).chain(rest));
        let entries = self.side.load(job, chunks).await.map_err(failed)?;
        Ok(Response::new(pb::JobReply { entries }))
    }

    async fn apply(&self, req: Request<pb::ApplyWrites>) -> Result<Response<pb::JobReply>, Status> {
        self.authenticate(&req)?;
        let a = req.into_inner();
        let entries = self
            .side
            .apply(job(a.job)?, a.batches)
            .await
            .map_err(failed)?;
        Ok(Response::new(pb::JobReply { entries }))
    }

    async fn commit(
        &self,
        req: Request<pb::ApplyWrites>,
    ) -> Result<Response<pb::CommitReply>, Status> {
        self.authenticate(&req)?;
        let a = req.into_inner();
        let config_epoch = self
            .side
            .commit(job(a.job)?, a.batches)
            .await
            .map_err(failed)?;
        Ok(Response::new(pb::CommitReply { config_epoch }))
    }

    async fn abort(&self, req: Request<pb::JobRef>) -> Result<Response<pb::JobReply>, Status> {
        self.authenticate(&req)?;
        self.side
            .abort(job(req.into_inner().job)?)
            .await
            .map_err(failed)?;
        Ok(Response::new(pb::JobReply { entries: 0 }))
    }

    async fn status(&self, req: Request<pb::JobRef>) -> Result<Response<pb::StatusReply>, Status> {
        self.authenticate(&req)?;
        let (state, config_epoch) = self.side.status(job(req.into_inner().job)?).await;
        let state = match state {
            ImportStatus::Unknown => pb::ImportState::Unknown,
            ImportStatus::Importing => pb::ImportState::Importing,
            ImportStatus::Committed => pb::ImportState::Committed,
        };
        Ok(Response::new(pb::StatusReply {
            state: state as i32,
            config_epoch,
        }))
    }

    type ExportStream = OutStream;

    async fn export(&self, req: Request<pb::ExportRequest>) -> Result<Response<OutStream>, Status> {
        self.authenticate(&req)?;
        let ranges = ranges_from_pb(&req.into_inner().ranges)?;
        let chunks = self.side.export(ranges).await.map_err(failed)?;
        let out = chunks.map(|r| r.map(chunk_to_pb).map_err(Status::internal));
        Ok(Response::new(Box::pin(out)))
    }
}

/// A connection to another node's Migration service.
#[derive(Clone)]
pub struct GrpcMigrationPeer {
    client: MigrationClient<Channel>,
    digest: Option<String>,
}

fn msg(s: Status) -> String {
    s.message().to_string()
}

/// Opens gRPC [`MigrationPeer`]s.
pub struct MigrationClients;

#[async_trait::async_trait]
impl MigrationConnector for MigrationClients {
    async fn connect(
        &self,
        ip: &str,
        cport: u16,
        digest: Option<String>,
    ) -> Result<Box<dyn MigrationPeer>, String> {
        let ch = super::peer_channel(ip, cport).await?;
        let client = MigrationClient::new(ch)
            .max_decoding_message_size(super::MAX_MESSAGE)
            .max_encoding_message_size(super::MAX_MESSAGE);
        Ok(Box::new(GrpcMigrationPeer { client, digest }))
    }
}

/// Client-streaming Load, outside the trait's boxed future (whose `Send` proof rustc cannot
/// make for tonic's streaming request).
fn load_chunks(
    mut client: MigrationClient<Channel>,
    req: Request<OutChunks>,
) -> Pin<Box<dyn std::future::Future<Output = Result<u64, String>> + Send>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::DataChunk>(4);
    let (meta, mut chunks) = (req.metadata().clone(), req.into_inner());
    tokio::spawn(async move {
        while let Some(c) = chunks.next().await {
            if tx.send(chunk_to_pb(c)).await.is_err() {
                return;
            }
        }
    });
    Box::pin(async move {
        let mut req = Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        *req.metadata_mut() = meta;
        let r = client.load(req).await.map_err(msg)?;
        Ok(r.into_inner().entries)
    })
}

impl GrpcMigrationPeer {
    fn req<T>(&self, m: T) -> Request<T> {
        super::with_digest(m, AUTH_METADATA, self.digest.as_deref())
    }
}

#[async_trait::async_trait]
impl MigrationPeer for GrpcMigrationPeer {
    async fn begin(
        &mut self,
        job: &str,
        source: &NodeId,
        ranges: &[(u16, u16)],
    ) -> Result<(), String> {
        let m = pb::BeginImport {
            job: job.into(),
            source: source.to_string(),
            ranges: ranges_to_pb(ranges),
        };
        self.client.begin(self.req(m)).await.map_err(msg)?;
        Ok(())
    }

    async fn load(&mut self, chunks: OutChunks) -> Result<u64, String> {
        load_chunks(self.client.clone(), self.req(chunks)).await
    }

    async fn apply(&mut self, job: &str, batches: Vec<Vec<u8>>) -> Result<(), String> {
        let m = pb::ApplyWrites {
            job: job.into(),
            batches,
        };
        self.client.apply(self.req(m)).await.map_err(msg)?;
        Ok(())
    }

    async fn commit(&mut self, job: &str, batches: Vec<Vec<u8>>) -> Result<u64, CommitError> {
        let m = pb::ApplyWrites {
            job: job.into(),
            batches,
        };
        match self.client.commit(self.req(m)).await {
            Ok(r) => Ok(r.into_inner().config_epoch),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                Err(CommitError::Refused(msg(s)))
            }
            Err(s) => Err(CommitError::Unknown(msg(s))),
        }
    }

    async fn abort(&mut self, job: &str) -> Result<(), String> {
        self.client
            .abort(self.req(pb::JobRef { job: job.into() }))
            .await
            .map_err(msg)?;
        Ok(())
    }

    async fn status(&mut self, job: &str) -> Result<(ImportStatus, u64), String> {
        let r = self
            .client
            .status(self.req(pb::JobRef { job: job.into() }))
            .await
            .map_err(msg)?
            .into_inner();
        let state = match pb::ImportState::try_from(r.state) {
            Ok(pb::ImportState::Importing) => ImportStatus::Importing,
            Ok(pb::ImportState::Committed) => ImportStatus::Committed,
            Ok(pb::ImportState::Unknown) => ImportStatus::Unknown,
            Err(_) => return Err(format!("unknown import state {}", r.state)),
        };
        Ok((state, r.config_epoch))
    }

    async fn export(&mut self, ranges: &[(u16, u16)]) -> Result<ChunkStream, String> {
        let m = pb::ExportRequest {
            ranges: ranges_to_pb(ranges),
        };
        let s = self
            .client
            .export(self.req(m))
            .await
            .map_err(msg)?
            .into_inner();
        Ok(Box::pin(s.map(|r| {
            r.map_err(|s| s.message().to_string())
                .and_then(chunk_from_pb)
        })))
    }
}

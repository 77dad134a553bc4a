//! The SlotBackup gRPC service (slot backups and restores) and its client; authenticated with
//! the client password's digest, since `rockslot-cli` holds that password, not the bus secret.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use super::mig_pb as pb;
use super::mig_pb::slot_backup_client::SlotBackupClient;
use super::mig_pb::slot_backup_server::{SlotBackup, SlotBackupServer};
use super::migration::{chunk_from_pb, chunk_to_pb, ranges_from_pb, ranges_to_pb};
use super::REPL_AUTH_METADATA;
use crate::migration::{BackupSide, ChunkStream, DataChunk, StageReport};

pub struct BackupService {
    side: Arc<dyn BackupSide>,
    auth: Arc<crate::cluster::PeerAuth>,
}

pub fn backup_service(
    side: Arc<dyn BackupSide>,
    auth: Arc<crate::cluster::PeerAuth>,
) -> SlotBackupServer<BackupService> {
    SlotBackupServer::new(BackupService { side, auth })
        .max_decoding_message_size(super::MAX_MESSAGE)
        .max_encoding_message_size(super::MAX_MESSAGE)
}

fn report_pb(r: StageReport) -> pb::StageReply {
    pb::StageReply {
        entries: r.entries,
        keys: r.keys,
        collisions: r.collisions,
        example: r.example,
    }
}

fn report_from_pb(r: pb::StageReply) -> StageReport {
    StageReport {
        entries: r.entries,
        keys: r.keys,
        collisions: r.collisions,
        example: r.example,
    }
}

impl BackupService {
    fn authenticate<T>(&self, req: &Request<T>) -> Result<(), Status> {
        super::check_digest(
            req,
            REPL_AUTH_METADATA,
            &self.auth,
            "a slot backup request: wrong or missing password",
        )
    }
}

type OutStream = Pin<Box<dyn Stream<Item = Result<pb::DataChunk, Status>> + Send>>;

#[tonic::async_trait]
impl SlotBackup for BackupService {
    type ExportStream = OutStream;

    async fn export(&self, req: Request<pb::ExportRequest>) -> Result<Response<OutStream>, Status> {
        self.authenticate(&req)?;
        let ranges = ranges_from_pb(&req.into_inner().ranges)?;
        let chunks = self
            .side
            .export(ranges)
            .await
            .map_err(Status::failed_precondition)?;
        let out = chunks.map(|r| r.map(chunk_to_pb).map_err(Status::internal));
        Ok(Response::new(Box::pin(out)))
    }

    async fn stage(
        &self,
        req: Request<Streaming<pb::DataChunk>>,
    ) -> Result<Response<pb::StageReply>, Status> {
        self.authenticate(&req)?;
        let mut inbound = req.into_inner();
        let first = match inbound.next().await {
            Some(Ok(c)) => chunk_from_pb(c).map_err(Status::invalid_argument)?,
            Some(Err(s)) => return Err(s),
            None => return Err(Status::invalid_argument("empty stage")),
        };
        let job = first.job.clone();
        let rest = inbound.map(|r| {
            r.map_err(|s| s.message().to_string())
                .and_then(chunk_from_pb)
        });
        let chunks: ChunkStream = Box::pin(tokio_stream::once(Ok(first)).chain(rest));
        let r = self
            .side
            .stage(job, chunks)
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(report_pb(r)))
    }

    async fn prepare(
        &self,
        req: Request<pb::PrepareRestore>,
    ) -> Result<Response<pb::StageReply>, Status> {
        self.authenticate(&req)?;
        let m = req.into_inner();
        let r = self
            .side
            .prepare(m.job, m.replace)
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(report_pb(r)))
    }

    async fn commit(&self, req: Request<pb::JobRef>) -> Result<Response<pb::StageReply>, Status> {
        self.authenticate(&req)?;
        let r = self
            .side
            .commit(req.into_inner().job)
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(report_pb(r)))
    }

    async fn abort(&self, req: Request<pb::JobRef>) -> Result<Response<pb::StageReply>, Status> {
        self.authenticate(&req)?;
        self.side
            .abort(req.into_inner().job)
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(pb::StageReply::default()))
    }
}

/// A connection to a node's SlotBackup service.
#[derive(Clone)]
pub struct BackupPeer {
    client: SlotBackupClient<Channel>,
    digest: Option<String>,
}

impl BackupPeer {
    /// Connects to `ip:cport`; `password` is the client password (requirepass).
    pub async fn connect(ip: &str, cport: u16, password: Option<&str>) -> Result<Self, String> {
        let ch = super::peer_channel(ip, cport).await?;
        let client = SlotBackupClient::new(ch)
            .max_decoding_message_size(super::MAX_MESSAGE)
            .max_encoding_message_size(super::MAX_MESSAGE);
        Ok(BackupPeer {
            client,
            digest: password
                .filter(|p| !p.is_empty())
                .map(crate::cluster::secret_digest),
        })
    }

    fn req<T>(&self, m: T) -> Request<T> {
        super::with_digest(m, REPL_AUTH_METADATA, self.digest.as_deref())
    }

    pub async fn export(&mut self, ranges: &[(u16, u16)]) -> Result<ChunkStream, String> {
        let m = pb::ExportRequest {
            ranges: ranges_to_pb(ranges),
        };
        let s = self
            .client
            .export(self.req(m))
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        Ok(Box::pin(s.map(|r| {
            r.map_err(|s| s.message().to_string())
                .and_then(chunk_from_pb)
        })))
    }

    pub async fn stage(
        &mut self,
        chunks: impl Stream<Item = DataChunk> + Send + 'static,
    ) -> Result<StageReport, String> {
        let r = self
            .client
            .stage(self.req(chunks.map(chunk_to_pb)))
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        Ok(report_from_pb(r))
    }

    pub async fn prepare(&mut self, job: &str, replace: bool) -> Result<StageReport, String> {
        let r = self
            .client
            .prepare(self.req(pb::PrepareRestore {
                job: job.into(),
                replace,
            }))
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        Ok(report_from_pb(r))
    }

    pub async fn commit(&mut self, job: &str) -> Result<StageReport, String> {
        let r = self
            .client
            .commit(self.req(pb::JobRef { job: job.into() }))
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        Ok(report_from_pb(r))
    }

    pub async fn abort(&mut self, job: &str) -> Result<(), String> {
        self.client
            .abort(self.req(pb::JobRef { job: job.into() }))
            .await
            .map_err(|s| s.message().to_string())?;
        Ok(())
    }
}

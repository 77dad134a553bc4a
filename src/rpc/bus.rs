//! The ClusterBus gRPC server and client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use super::convert::{
    auth_reply_from_pb, auth_reply_to_pb, auth_request_from_pb, auth_request_to_pb, fail_from_pb,
    manual_failover_from_pb, message_from_pb, message_to_pb,
};
use super::pb::cluster_bus_client::ClusterBusClient;
use super::pb::cluster_bus_server::{ClusterBus, ClusterBusServer};
use super::{pb, AUTH_METADATA};
use crate::cluster::types::{AuthReply, AuthRequest, Message, NodeId};

/// What the bus server hands validated messages to.
#[tonic::async_trait]
pub trait BusService: Send + Sync + 'static {
    /// Handles a PING/MEET and returns the PONG.
    fn on_exchange(&self, msg: Message, observed_ip: String) -> Message;
    fn on_fail(&self, sender: NodeId, failing: NodeId);
    /// Decides a failover vote.
    fn on_auth_request(&self, req: AuthRequest) -> AuthReply;
    /// Starts a manual failover's write pause for `replica`; returns the offset to catch up
    /// with, or `None` when refused.
    async fn on_manual_failover(&self, replica: NodeId) -> Option<u64>;
    /// Delivers forwarded PUBLISH/SPUBLISH messages to local subscribers.
    fn on_publish(&self, messages: Vec<Published>);
    /// Fault injection: an isolated node answers no bus message (as if partitioned away).
    fn isolated(&self) -> bool {
        false
    }
}

pub struct BusServer {
    svc: Arc<dyn BusService>,
    digest: Option<String>,
}

impl BusServer {
    fn authenticate<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let Some(want) = &self.digest else {
            return Ok(());
        };
        let got = req
            .metadata()
            .get(AUTH_METADATA)
            .and_then(|v| v.to_str().ok());
        if got == Some(want.as_str()) {
            return Ok(());
        }
        let peer = req.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::warn!("refused cluster bus message from {peer}: wrong or missing bus secret");
        Err(Status::unauthenticated(
            "wrong or missing cluster bus secret",
        ))
    }
}

#[tonic::async_trait]
impl ClusterBus for BusServer {
    async fn exchange(
        &self,
        req: Request<pb::BusMessage>,
    ) -> Result<Response<pb::BusMessage>, Status> {
        self.authenticate(&req)?;
        if self.svc.isolated() {
            return Err(Status::unavailable("isolated"));
        }
        let observed = req
            .remote_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let msg = message_from_pb(req.get_ref()).map_err(|e| {
            tracing::warn!("refused cluster bus message from {observed}: {e}");
            Status::invalid_argument(e.to_string())
        })?;
        let reply = self.svc.on_exchange(msg, observed);
        Ok(Response::new(message_to_pb(&reply)))
    }

    async fn fail(&self, req: Request<pb::FailNotice>) -> Result<Response<pb::Ack>, Status> {
        self.authenticate(&req)?;
        if self.svc.isolated() {
            return Err(Status::unavailable("isolated"));
        }
        let (sender, failing) =
            fail_from_pb(req.get_ref()).map_err(|e| Status::invalid_argument(e.to_string()))?;
        self.svc.on_fail(sender, failing);
        Ok(Response::new(pb::Ack {}))
    }

    async fn auth_request(
        &self,
        req: Request<pb::FailoverAuthRequest>,
    ) -> Result<Response<pb::FailoverAuthReply>, Status> {
        self.authenticate(&req)?;
        if self.svc.isolated() {
            return Err(Status::unavailable("isolated"));
        }
        let r = auth_request_from_pb(req.get_ref())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let reply = self.svc.on_auth_request(r);
        Ok(Response::new(auth_reply_to_pb(&reply)))
    }

    async fn manual_failover(
        &self,
        req: Request<pb::ManualFailoverRequest>,
    ) -> Result<Response<pb::ManualFailoverReply>, Status> {
        self.authenticate(&req)?;
        if self.svc.isolated() {
            return Err(Status::unavailable("isolated"));
        }
        let replica = manual_failover_from_pb(req.get_ref())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let reply = match self.svc.on_manual_failover(replica).await {
            Some(offset) => pb::ManualFailoverReply {
                accepted: true,
                offset,
            },
            None => pb::ManualFailoverReply {
                accepted: false,
                offset: 0,
            },
        };
        Ok(Response::new(reply))
    }

    async fn publish(&self, req: Request<pb::PublishBatch>) -> Result<Response<pb::Ack>, Status> {
        self.authenticate(&req)?;
        if self.svc.isolated() {
            return Err(Status::unavailable("isolated"));
        }
        let messages = req
            .into_inner()
            .messages
            .into_iter()
            .map(|m| Published {
                channel: m.channel.into(),
                message: m.message.into(),
                shard: m.shard,
            })
            .collect();
        self.svc.on_publish(messages);
        Ok(Response::new(pb::Ack {}))
    }
}

/// One forwarded pub/sub message.
#[derive(Debug, Clone)]
pub struct Published {
    pub channel: bytes::Bytes,
    pub message: bytes::Bytes,
    /// SPUBLISH rather than PUBLISH.
    pub shard: bool,
}

/// The ClusterBus service for the cluster-port server ([`super::serve`]).
pub fn bus_service(
    svc: Arc<dyn BusService>,
    digest: Option<String>,
) -> ClusterBusServer<BusServer> {
    ClusterBusServer::new(BusServer { svc, digest })
}

/// Outgoing bus calls, with one lazily connected channel per peer address.
pub struct BusClient {
    digest: Option<String>,
    timeout: Duration,
    channels: Mutex<HashMap<String, Channel>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BusCallError {
    #[error("invalid peer address {0}")]
    Address(String),
    #[error("{0}")]
    Status(#[from] Status),
    #[error("{0}")]
    Reply(#[from] super::InvalidMessage),
}

impl BusClient {
    pub fn new(digest: Option<String>, timeout: Duration) -> BusClient {
        BusClient {
            digest,
            timeout,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn channel(&self, ip: &str, cport: u16) -> Result<Channel, BusCallError> {
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        let uri = format!("http://{host}:{cport}");
        let mut map = self.channels.lock();
        if let Some(c) = map.get(&uri) {
            return Ok(c.clone());
        }
        let ch = Endpoint::from_shared(uri.clone())
            .map_err(|_| BusCallError::Address(uri.clone()))?
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        map.insert(uri, ch.clone());
        Ok(ch)
    }

    /// Drops the cached channel so the next call reconnects.
    pub fn forget(&self, ip: &str, cport: u16) {
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        self.channels
            .lock()
            .remove(&format!("http://{host}:{cport}"));
    }

    fn request<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        if let Some(d) = &self.digest {
            if let Ok(v) = d.parse() {
                req.metadata_mut().insert(AUTH_METADATA, v);
            }
        }
        req
    }

    pub async fn exchange(
        &self,
        ip: &str,
        cport: u16,
        msg: &Message,
    ) -> Result<Message, BusCallError> {
        let mut c = ClusterBusClient::new(self.channel(ip, cport)?);
        let reply = c.exchange(self.request(message_to_pb(msg))).await?;
        Ok(message_from_pb(reply.get_ref())?)
    }

    pub async fn fail(
        &self,
        ip: &str,
        cport: u16,
        sender: NodeId,
        failing: NodeId,
    ) -> Result<(), BusCallError> {
        let mut c = ClusterBusClient::new(self.channel(ip, cport)?);
        c.fail(self.request(pb::FailNotice {
            sender: sender.to_string(),
            failing: failing.to_string(),
        }))
        .await?;
        Ok(())
    }
}

impl BusClient {
    /// Asks a primary for its failover vote.
    pub async fn auth_request(
        &self,
        ip: &str,
        cport: u16,
        req: &AuthRequest,
    ) -> Result<AuthReply, BusCallError> {
        let mut c = ClusterBusClient::new(self.channel(ip, cport)?);
        let reply = c
            .auth_request(self.request(auth_request_to_pb(req)))
            .await?;
        Ok(auth_reply_from_pb(reply.get_ref())?)
    }

    /// Asks our primary to pause writes for a manual failover; `None` when it refused.
    pub async fn manual_failover(
        &self,
        ip: &str,
        cport: u16,
        replica: NodeId,
    ) -> Result<Option<u64>, BusCallError> {
        let mut c = ClusterBusClient::new(self.channel(ip, cport)?);
        let reply = c
            .manual_failover(self.request(pb::ManualFailoverRequest {
                replica: replica.to_string(),
            }))
            .await?;
        let r = reply.get_ref();
        Ok(r.accepted.then_some(r.offset))
    }

    /// Forwards pub/sub messages to a peer.
    pub async fn publish(
        &self,
        ip: &str,
        cport: u16,
        messages: &[Published],
    ) -> Result<(), BusCallError> {
        let mut c = ClusterBusClient::new(self.channel(ip, cport)?);
        let batch = pb::PublishBatch {
            messages: messages
                .iter()
                .map(|m| pb::Published {
                    channel: m.channel.to_vec(),
                    message: m.message.to_vec(),
                    shard: m.shard,
                })
                .collect(),
        };
        c.publish(self.request(batch)).await?;
        Ok(())
    }
}

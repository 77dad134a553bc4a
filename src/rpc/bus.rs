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
use crate::cluster::{BusCallError, BusService, BusTransport, PeerAuth, Published};

pub struct BusServer {
    svc: Arc<dyn BusService>,
    auth: Arc<PeerAuth>,
}

impl BusServer {
    fn authenticate<T>(&self, req: &Request<T>) -> Result<(), Status> {
        super::check_digest(
            req,
            AUTH_METADATA,
            &self.auth,
            "cluster bus message: wrong or missing cluster bus secret",
        )
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

/// The ClusterBus service for the cluster-port server ([`super::serve`]).
pub fn bus_service(svc: Arc<dyn BusService>, auth: Arc<PeerAuth>) -> ClusterBusServer<BusServer> {
    ClusterBusServer::new(BusServer { svc, auth })
}

/// Outgoing bus calls, with one lazily connected channel per peer address.
pub struct BusClient {
    auth: Arc<PeerAuth>,
    timeout: Duration,
    channels: Mutex<HashMap<String, Channel>>,
}

impl BusClient {
    /// The client a node's configuration asks for: its bus secret, and calls bounded by the
    /// node timeout (within 0.5–5 s).
    pub fn for_config(c: &crate::config::Config, auth: Arc<PeerAuth>) -> BusClient {
        BusClient::new(
            auth,
            Duration::from_millis(c.cluster_node_timeout_ms.clamp(500, 5000)),
        )
    }

    pub fn new(auth: Arc<PeerAuth>, timeout: Duration) -> BusClient {
        BusClient {
            auth,
            timeout,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn channel(&self, ip: &str, cport: u16) -> Result<Channel, BusCallError> {
        let uri = peer_uri(ip, cport);
        let mut map = self.channels.lock();
        if let Some(c) = map.get(&uri) {
            return Ok(c.clone());
        }
        let ch = Endpoint::from_shared(uri.clone())
            .map_err(|_| BusCallError::Address(uri.clone()))?
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .tcp_nodelay(true);
        let ch = super::peer_io::lazy_channel(&ch);
        map.insert(uri, ch.clone());
        Ok(ch)
    }

    fn request<T>(&self, msg: T) -> Request<T> {
        super::with_auth(msg, AUTH_METADATA, &self.auth)
    }

    fn client(&self, ip: &str, cport: u16) -> Result<ClusterBusClient<Channel>, BusCallError> {
        Ok(ClusterBusClient::new(self.channel(ip, cport)?))
    }
}

fn status(s: Status) -> BusCallError {
    BusCallError::Transport(s.to_string())
}

fn invalid(e: super::InvalidMessage) -> BusCallError {
    BusCallError::Reply(e.to_string())
}

#[async_trait::async_trait]
impl BusTransport for BusClient {
    async fn exchange(&self, ip: &str, cport: u16, msg: &Message) -> Result<Message, BusCallError> {
        let mut c = self.client(ip, cport)?;
        let reply = c
            .exchange(self.request(message_to_pb(msg)))
            .await
            .map_err(status)?;
        message_from_pb(reply.get_ref()).map_err(invalid)
    }

    async fn fail(
        &self,
        ip: &str,
        cport: u16,
        sender: NodeId,
        failing: NodeId,
    ) -> Result<(), BusCallError> {
        let mut c = self.client(ip, cport)?;
        c.fail(self.request(pb::FailNotice {
            sender: sender.to_string(),
            failing: failing.to_string(),
        }))
        .await
        .map_err(status)?;
        Ok(())
    }

    async fn auth_request(
        &self,
        ip: &str,
        cport: u16,
        req: &AuthRequest,
    ) -> Result<AuthReply, BusCallError> {
        let mut c = self.client(ip, cport)?;
        let reply = c
            .auth_request(self.request(auth_request_to_pb(req)))
            .await
            .map_err(status)?;
        auth_reply_from_pb(reply.get_ref()).map_err(invalid)
    }

    async fn manual_failover(
        &self,
        ip: &str,
        cport: u16,
        replica: NodeId,
    ) -> Result<Option<u64>, BusCallError> {
        let mut c = self.client(ip, cport)?;
        let reply = c
            .manual_failover(self.request(pb::ManualFailoverRequest {
                replica: replica.to_string(),
            }))
            .await
            .map_err(status)?;
        let r = reply.get_ref();
        Ok(r.accepted.then_some(r.offset))
    }

    async fn publish(
        &self,
        ip: &str,
        cport: u16,
        messages: &[Published],
    ) -> Result<(), BusCallError> {
        let mut c = self.client(ip, cport)?;
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
        c.publish(self.request(batch)).await.map_err(status)?;
        Ok(())
    }

    fn forget(&self, ip: &str, cport: u16) {
        self.channels.lock().remove(&peer_uri(ip, cport));
    }
}

pub(super) fn peer_uri(ip: &str, cport: u16) -> String {
    if ip.contains(':') {
        format!("http://[{ip}]:{cport}")
    } else {
        format!("http://{ip}:{cport}")
    }
}

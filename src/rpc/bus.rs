//! The ClusterBus gRPC server and client.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use super::convert::{fail_from_pb, message_from_pb, message_to_pb};
use super::pb::cluster_bus_client::ClusterBusClient;
use super::pb::cluster_bus_server::{ClusterBus, ClusterBusServer};
use super::{pb, AUTH_METADATA};
use crate::cluster::types::{Message, NodeId};

/// What the bus server hands validated messages to.
pub trait BusService: Send + Sync + 'static {
    /// Handles a PING/MEET and returns the PONG.
    fn on_exchange(&self, msg: Message, observed_ip: String) -> Message;
    fn on_fail(&self, sender: NodeId, failing: NodeId);
}

struct Server {
    svc: Arc<dyn BusService>,
    digest: Option<String>,
}

impl Server {
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
impl ClusterBus for Server {
    async fn exchange(
        &self,
        req: Request<pb::BusMessage>,
    ) -> Result<Response<pb::BusMessage>, Status> {
        self.authenticate(&req)?;
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
        let (sender, failing) =
            fail_from_pb(req.get_ref()).map_err(|e| Status::invalid_argument(e.to_string()))?;
        self.svc.on_fail(sender, failing);
        Ok(Response::new(pb::Ack {}))
    }
}

pub struct BusServer;

impl BusServer {
    /// Serves the bus on `listener` until `shutdown` resolves.
    pub async fn serve(
        listener: tokio::net::TcpListener,
        svc: Arc<dyn BusService>,
        digest: Option<String>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder()
            .add_service(ClusterBusServer::new(Server { svc, digest }))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }
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

//! What the cluster needs from the network, as traits the gRPC edge (`rpc`) implements: the
//! server side hands validated messages to a [`BusService`], the bus task sends through a
//! [`BusTransport`]. Both speak the domain types of [`super::types`].
//!
//! Must not: name tonic or protobuf; the transport is chosen when the node is built.

use super::types::{AuthReply, AuthRequest, Message, NodeId};

/// One forwarded pub/sub message.
#[derive(Debug, Clone)]
pub struct Published {
    pub channel: bytes::Bytes,
    pub message: bytes::Bytes,
    /// SPUBLISH rather than PUBLISH.
    pub shard: bool,
}

/// What the bus server hands validated messages to.
#[async_trait::async_trait]
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

#[derive(Debug, thiserror::Error)]
pub enum BusCallError {
    #[error("invalid peer address {0}")]
    Address(String),
    /// The call did not complete (connect, timeout, refused credentials, peer error).
    #[error("{0}")]
    Transport(String),
    /// The peer answered with a message that does not validate.
    #[error("{0}")]
    Reply(String),
}

/// Outgoing bus calls to a peer's cluster port.
#[async_trait::async_trait]
pub trait BusTransport: Send + Sync + 'static {
    async fn exchange(&self, ip: &str, cport: u16, msg: &Message) -> Result<Message, BusCallError>;
    async fn fail(
        &self,
        ip: &str,
        cport: u16,
        sender: NodeId,
        failing: NodeId,
    ) -> Result<(), BusCallError>;
    /// Asks a primary for its failover vote.
    async fn auth_request(
        &self,
        ip: &str,
        cport: u16,
        req: &AuthRequest,
    ) -> Result<AuthReply, BusCallError>;
    /// Asks our primary to pause writes for a manual failover; `None` when it refused.
    async fn manual_failover(
        &self,
        ip: &str,
        cport: u16,
        replica: NodeId,
    ) -> Result<Option<u64>, BusCallError>;
    /// Forwards pub/sub messages to a peer.
    async fn publish(
        &self,
        ip: &str,
        cport: u16,
        messages: &[Published],
    ) -> Result<(), BusCallError>;
    /// Drops any cached connection so the next call reconnects.
    fn forget(&self, ip: &str, cport: u16);
}

/// What peers present: a digest of the secret, never the secret itself.
pub fn secret_digest(secret: &str) -> String {
    sha1_smol::Sha1::from(format!("rockslot-bus:{secret}"))
        .digest()
        .to_string()
}

//! Pub/sub across the cluster: PUBLISH reaches every other node and SPUBLISH the other nodes of
//! this shard, as Valkey's bus does. Messages leave in order through one queue and one task,
//! batched per peer, so a subscriber on another node sees one publisher's messages in order.
//!
//! Must not: know about clients; messages arriving from peers go to the delivery hook the
//! server installs.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Cluster;
use super::Published;

/// Most messages sent to a peer in one call.
const BATCH: usize = 1024;
/// Messages waiting to leave before new ones are dropped: pub/sub delivers at most once, and
/// a slow or unreachable peer must not grow this node's memory without bound.
const QUEUE: usize = 256 * 1024;

pub type Deliver = Box<dyn Fn(Vec<Published>) + Send + Sync>;

#[derive(Default)]
pub struct Forwarder {
    queue: OnceLock<mpsc::Sender<Published>>,
    deliver: OnceLock<Deliver>,
}

impl Cluster {
    /// Installs where messages from peers are delivered (the local subscribers).
    pub fn on_published(&self, f: Deliver) {
        let _ = self.publish.deliver.set(f);
    }

    pub(crate) fn deliver_published(&self, messages: Vec<Published>) {
        if let Some(f) = self.publish.deliver.get() {
            f(messages);
        }
    }

    /// Queues a PUBLISH (or, with `shard`, an SPUBLISH) for the other nodes.
    pub fn forward_publish(self: &Arc<Self>, channel: Bytes, message: Bytes, shard: bool) {
        let tx = self.publish.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(forward(Arc::downgrade(self), rx));
            tx
        });
        let m = Published {
            channel,
            message,
            shard,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(m) {
            tracing::warn!("pub/sub forwarding queue full: a message was not sent to other nodes");
        }
    }

    /// Reachable peers: `(ip, cport, same shard as this node)`.
    fn publish_targets(&self) -> Vec<(String, u16, bool)> {
        self.read(|st| {
            let me = st.me();
            let shard = if me.is_primary() {
                Some(me.id)
            } else {
                me.primary
            };
            st.nodes
                .values()
                .filter(|n| n.id != me.id && !n.handshake && !n.noaddr && !n.fail && !n.pfail)
                .map(|n| {
                    let same = shard.is_some() && (Some(n.id) == shard || n.primary == shard);
                    (n.ip.clone(), n.cport, same)
                })
                .collect()
        })
    }
}

async fn forward(cluster: std::sync::Weak<Cluster>, mut rx: mpsc::Receiver<Published>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        if cluster.is_isolated() {
            continue;
        }
        let sends = cluster
            .publish_targets()
            .into_iter()
            .filter_map(|(ip, cport, same)| {
                let mine: Vec<Published> =
                    batch.iter().filter(|m| same || !m.shard).cloned().collect();
                if mine.is_empty() {
                    return None;
                }
                let cluster = Arc::clone(&cluster);
                Some(async move {
                    if let Err(e) = cluster.client.publish(&ip, cport, &mine).await {
                        tracing::debug!("forwarding pub/sub messages to {ip}:{cport}: {e}");
                    }
                })
            });
        futures::future::join_all(sends).await;
    }
}

//! The bus task: ticks the state machine, sends what it asks for, and feeds replies back.
//! Also the server side of the bus ([`super::BusService`]).

use std::sync::Arc;
use std::time::Duration;

use super::types::{AuthReply, AuthRequest, Message, MessageKind, NodeId};
use super::BusService;
use super::{now_ms, Cluster, Outgoing};

/// How long a primary starting a manual failover waits before reporting its offset: writes
/// that passed the pause check just before the pause began are still being committed, and
/// the replica must wait for them too.
const MF_SETTLE: Duration = Duration::from_millis(100);

#[async_trait::async_trait]
impl BusService for Cluster {
    fn isolated(&self) -> bool {
        self.is_isolated()
    }

    fn on_exchange(&self, msg: Message, observed_ip: String) -> Message {
        {
            let mut s = self.stats.lock();
            match msg.kind {
                MessageKind::Meet => s.meet_received += 1,
                _ => s.ping_received += 1,
            }
            s.pong_sent += 1;
        }
        self.with_state(|st| {
            st.on_request(&msg, &observed_ip, now_ms());
            st.message(MessageKind::Pong, &msg.header.sender)
        })
    }

    fn on_fail(&self, sender: NodeId, failing: NodeId) {
        self.stats.lock().fail_received += 1;
        self.with_state(|st| st.on_fail(sender, failing, now_ms()));
    }

    fn on_auth_request(&self, req: AuthRequest) -> AuthReply {
        self.stats.lock().auth_req_received += 1;
        // with_state saves nodes.conf (lastVoteEpoch) before the vote leaves this node.
        let reply = self.with_state(|st| AuthReply {
            voter: st.myself,
            granted: st.on_auth_request(&req, now_ms()),
            epoch: st.current_epoch,
        });
        if reply.granted {
            self.stats.lock().auth_ack_sent += 1;
        }
        reply
    }

    fn on_publish(&self, messages: Vec<super::Published>) {
        self.deliver_published(messages);
    }

    async fn on_manual_failover(&self, replica: NodeId) -> Option<u64> {
        self.stats.lock().mfstart_received += 1;
        if !self.with_state(|st| st.on_manual_failover_request(replica, now_ms())) {
            return None;
        }
        tokio::time::sleep(MF_SETTLE).await;
        Some(self.read(|st| st.me().repl_offset))
    }
}

/// Starts the periodic bus task (the server side is served by the gRPC edge); stops with
/// `shutdown`.
pub fn spawn_bus(cluster: Arc<Cluster>, shutdown: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cluster.wake.notified() => {}
                // The server writes what is left (flush_config) once connections drained.
                _ = shutdown.cancelled() => return,
            }
            let out = cluster.with_state(|st| st.tick(now_ms()));
            for o in out {
                send(&cluster, o);
            }
            cluster.flush_config();
        }
    });
}

/// Tells every reachable node this node's configuration now and waits, at most `limit`,
/// until each replica has taken it. CLUSTER SETSLOT NODE replies after this, so a `--cluster
/// check` right after a reshard finds replicas agreeing too (Valkey 8.1 replicates SETSLOT to
/// the replicas and broadcasts a PONG before it replies). Primaries are told without waiting:
/// the resharding tool sends each of them SETSLOT NODE itself, and waiting for them (a
/// round trip and the source's fsync of its lost slot) doubled the time of a legacy move.
pub async fn announce(cluster: &Arc<Cluster>, limit: Duration) {
    if cluster.is_isolated() {
        return;
    }
    let peers: Vec<(bool, NodeId, String, u16, Message)> = cluster.read(|st| {
        st.nodes
            .values()
            .filter(|n| n.id != st.myself && !n.handshake && !n.noaddr && !n.fail)
            .map(|n| {
                let msg = st.message(MessageKind::Ping, &n.id);
                (n.is_primary(), n.id, n.ip.clone(), n.cport, msg)
            })
            .collect()
    });
    cluster.stats.lock().ping_sent += peers.len() as u64;
    let mut calls = Vec::new();
    for (primary, id, ip, cport, msg) in peers {
        if primary {
            let c = Arc::clone(cluster);
            tokio::spawn(async move { exchange(&c, id, ip, cport, msg).await });
        } else {
            calls.push(exchange(cluster, id, ip, cport, msg));
        }
    }
    if tokio::time::timeout(limit, futures::future::join_all(calls))
        .await
        .is_err()
    {
        tracing::debug!("announcing the configuration: some nodes did not answer in {limit:?}");
    }
}

/// Sends a PING or MEET to `id` and feeds the PONG (or the failed link) back into the state.
async fn exchange(c: &Arc<Cluster>, id: NodeId, ip: String, cport: u16, msg: Message) {
    match c.client.exchange(&ip, cport, &msg).await {
        Ok(reply) => {
            c.stats.lock().pong_received += 1;
            c.with_state(|st| st.on_reply(id, &reply, now_ms()));
        }
        Err(e) => {
            tracing::debug!("bus message to {ip}:{cport} failed: {e}");
            c.client.forget(&ip, cport);
            c.with_state(|st| st.on_link_error(id));
        }
    }
}

/// The bus address of node `to` and our own id, if `to` is still known.
fn peer(c: &Cluster, to: &NodeId) -> Option<(String, u16, NodeId)> {
    c.read(|st| st.nodes.get(to).map(|n| (n.ip.clone(), n.cport, st.myself)))
}

/// Sends one message in the background, feeding any reply back into the state.
pub(super) fn send(cluster: &Arc<Cluster>, o: Outgoing) {
    let c = Arc::clone(cluster);
    if c.is_isolated() {
        if let Outgoing::Ping(id) | Outgoing::Meet(id) = o {
            c.with_state(|st| st.on_link_error(id));
        }
        return;
    }
    match o {
        Outgoing::Ping(id) | Outgoing::Meet(id) => {
            let kind = if matches!(o, Outgoing::Meet(_)) {
                MessageKind::Meet
            } else {
                MessageKind::Ping
            };
            let Some((ip, cport, msg)) = c.read(|st| {
                st.nodes
                    .get(&id)
                    .map(|n| (n.ip.clone(), n.cport, st.message(kind, &id)))
            }) else {
                return;
            };
            {
                let mut s = c.stats.lock();
                if kind == MessageKind::Meet {
                    s.meet_sent += 1;
                } else {
                    s.ping_sent += 1;
                }
            }
            tokio::spawn(async move { exchange(&c, id, ip, cport, msg).await });
        }
        Outgoing::Fail { to, failing } => {
            let Some((ip, cport, me)) = peer(&c, &to) else {
                return;
            };
            c.stats.lock().fail_sent += 1;
            tokio::spawn(async move {
                if let Err(e) = c.client.fail(&ip, cport, me, failing).await {
                    tracing::debug!("FAIL notice to {ip}:{cport} failed: {e}");
                }
            });
        }
        Outgoing::AuthRequest { to, req } => {
            let Some((ip, cport, _)) = peer(&c, &to) else {
                return;
            };
            c.stats.lock().auth_req_sent += 1;
            tokio::spawn(async move {
                match c.client.auth_request(&ip, cport, &req).await {
                    // A vote counts only from the node it was asked of.
                    Ok(r) if r.granted && r.voter == to => {
                        c.stats.lock().auth_ack_received += 1;
                        let out = c.with_state(|st| st.on_auth_ack(to, r.epoch, now_ms()));
                        for o in out {
                            send(&c, o);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!("failover auth request to {ip}:{cport} failed: {e}"),
                }
            });
        }
        Outgoing::ManualFailoverStart { to } => {
            let Some((ip, cport, me)) = peer(&c, &to) else {
                return;
            };
            c.stats.lock().mfstart_sent += 1;
            tokio::spawn(async move {
                match c.client.manual_failover(&ip, cport, me).await {
                    Ok(Some(offset)) => {
                        c.with_state(|st| st.on_manual_failover_offset(to, offset));
                        c.poke();
                    }
                    Ok(None) => tracing::warn!(
                        "manual failover: primary {ip}:{cport} refused to pause; it will time out"
                    ),
                    Err(e) => tracing::warn!("manual failover request to {ip}:{cport} failed: {e}"),
                }
            });
        }
    }
}

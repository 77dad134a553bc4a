//! The bus task: ticks the state machine, sends what it asks for, and feeds replies back.
//! Also the server side of the bus ([`crate::rpc::BusService`]).

use std::sync::Arc;
use std::time::Duration;

use super::types::{Message, MessageKind, NodeId};
use super::{now_ms, Cluster, Outgoing};
use crate::rpc::{BusServer, BusService};

impl BusService for Cluster {
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
}

/// Starts the bus server on `listener` and the periodic task; both stop with `shutdown`.
pub fn spawn_bus(
    cluster: Arc<Cluster>,
    listener: tokio::net::TcpListener,
    digest: Option<String>,
    shutdown: Arc<tokio::sync::Notify>,
) {
    let svc: Arc<dyn BusService> = Arc::clone(&cluster) as Arc<dyn BusService>;
    let sd = Arc::clone(&shutdown);
    tokio::spawn(async move {
        if let Err(e) =
            BusServer::serve(listener, svc, digest, async move { sd.notified().await }).await
        {
            tracing::error!("cluster bus server failed: {e}");
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cluster.wake.notified() => {}
                _ = shutdown.notified() => return,
            }
            let out = cluster.with_state(|st| st.tick(now_ms()));
            for o in out {
                send(&cluster, o);
            }
        }
    });
}

fn send(cluster: &Arc<Cluster>, o: Outgoing) {
    let c = Arc::clone(cluster);
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
            tokio::spawn(async move {
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
            });
        }
        Outgoing::Fail { to, failing } => {
            let Some((ip, cport, me)) = c.read(|st| {
                st.nodes
                    .get(&to)
                    .map(|n| (n.ip.clone(), n.cport, st.myself))
            }) else {
                return;
            };
            c.stats.lock().fail_sent += 1;
            tokio::spawn(async move {
                if let Err(e) = c.client.fail(&ip, cport, me, failing).await {
                    tracing::debug!("FAIL notice to {ip}:{cport} failed: {e}");
                }
            });
        }
    }
}

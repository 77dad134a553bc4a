//! Client-facing renderings of the cluster state: CLUSTER NODES, SLOTS, SHARDS, INFO, in the
//! exact formats redis-cli, redis-benchmark, redis-py and the redis crate parse.

use std::fmt::Write;

use super::nodes_conf::{node_line, LineFor};
use super::state::ClusterState;
use super::types::{NodeId, NodeRecord, Role};
use crate::resp::Reply;

/// CLUSTER NODES for a client on TLS (`tls`) or plain TCP.
pub fn nodes(st: &ClusterState, tls: bool) -> String {
    let mut out = String::new();
    for n in st.nodes.values() {
        out.push_str(&node_line(
            st,
            n,
            n.id == st.myself,
            true,
            LineFor::Client { tls },
        ));
        out.push('\n');
    }
    out
}

fn node_entry(n: &NodeRecord, tls: bool) -> Reply {
    Reply::Array(vec![
        Reply::bulk(n.ip.clone()),
        Reply::Int(n.client_port(tls) as i64),
        Reply::bulk(n.id.to_string()),
        Reply::Map(vec![]),
    ])
}

fn replicas_of<'a>(st: &'a ClusterState, id: &NodeId) -> Vec<&'a NodeRecord> {
    st.nodes
        .values()
        .filter(|n| n.role == Role::Replica && n.primary.as_ref() == Some(id))
        .collect()
}

/// CLUSTER SLOTS for a client on TLS (`tls`) or plain TCP.
pub fn slots(st: &ClusterState, tls: bool) -> Reply {
    let mut out = Vec::new();
    let mut start = 0usize;
    while start < st.slots.len() {
        let Some(owner) = st.slots[start] else {
            start += 1;
            continue;
        };
        let mut end = start;
        while end + 1 < st.slots.len() && st.slots[end + 1] == Some(owner) {
            end += 1;
        }
        if let Some(p) = st.nodes.get(&owner) {
            let mut entry = vec![
                Reply::Int(start as i64),
                Reply::Int(end as i64),
                node_entry(p, tls),
            ];
            // Replicas are listed once they serve data (Valkey's isReplicaAvailable).
            for r in replicas_of(st, &owner)
                .into_iter()
                .filter(|r| !r.fail && r.repl_offset != 0)
            {
                entry.push(node_entry(r, tls));
            }
            out.push(Reply::Array(entry));
        }
        start = end + 1;
    }
    Reply::Array(out)
}

pub fn shards(st: &ClusterState) -> Reply {
    let s = Reply::bulk_str;
    let mut out = Vec::new();
    for p in st.nodes.values().filter(|n| n.is_primary() && !n.handshake) {
        let mut slots = Vec::new();
        for (a, b) in st.slots_of(&p.id).ranges() {
            slots.push(Reply::Int(a as i64));
            slots.push(Reply::Int(b as i64));
        }
        let mut members = vec![p];
        members.extend(replicas_of(st, &p.id));
        let nodes = members
            .into_iter()
            .map(|n| {
                let mut fields = vec![
                    (s("id"), Reply::bulk(n.id.to_string())),
                    (s("port"), Reply::Int(n.port as i64)),
                ];
                if n.tls_port != 0 {
                    fields.push((s("tls-port"), Reply::Int(n.tls_port as i64)));
                }
                fields.extend([
                    (s("ip"), Reply::bulk(n.ip.clone())),
                    (s("endpoint"), Reply::bulk(n.ip.clone())),
                    (
                        s("role"),
                        s(if n.is_primary() { "master" } else { "replica" }),
                    ),
                    (s("replication-offset"), Reply::Int(n.repl_offset as i64)),
                    (
                        s("health"),
                        s(if n.fail || n.pfail { "fail" } else { "online" }),
                    ),
                ]);
                Reply::Map(fields)
            })
            .collect();
        out.push(Reply::Map(vec![
            (s("slots"), Reply::Array(slots)),
            (s("nodes"), Reply::Array(nodes)),
        ]));
    }
    Reply::Array(out)
}

/// Message counters kept by the bus, shown by CLUSTER INFO.
#[derive(Default, Debug, Clone, Copy)]
pub struct BusStats {
    pub ping_sent: u64,
    pub pong_sent: u64,
    pub meet_sent: u64,
    pub fail_sent: u64,
    pub auth_req_sent: u64,
    pub auth_ack_sent: u64,
    pub mfstart_sent: u64,
    pub ping_received: u64,
    pub pong_received: u64,
    pub meet_received: u64,
    pub fail_received: u64,
    pub auth_req_received: u64,
    pub auth_ack_received: u64,
    pub mfstart_received: u64,
}

pub fn info(st: &ClusterState, stats: &BusStats) -> String {
    // Per owner, from the slot table's cached per-owner sets: no walk over the slots.
    let size = st.serving_primaries();
    let (mut assigned, mut pfail, mut fail) = (0, 0, 0);
    for id in &size {
        let n = st.slots.count_of(id);
        assigned += n;
        match st.nodes.get(id) {
            Some(node) if node.fail => fail += n,
            Some(node) if node.pfail => pfail += n,
            _ => {}
        }
    }
    let me = st.me();
    let mut out = String::new();
    let mut l = |k: &str, v: String| {
        let _ = write!(out, "{k}:{v}\r\n");
    };
    l(
        "cluster_state",
        if st.ok { "ok".into() } else { "fail".into() },
    );
    l("cluster_slots_assigned", assigned.to_string());
    l("cluster_slots_ok", (assigned - pfail - fail).to_string());
    l("cluster_slots_pfail", pfail.to_string());
    l("cluster_slots_fail", fail.to_string());
    l("cluster_known_nodes", st.nodes.len().to_string());
    l("cluster_size", size.len().to_string());
    l("cluster_current_epoch", st.current_epoch.to_string());
    l("cluster_my_epoch", st.shown_epoch(me).to_string());
    let sent = [
        ("ping", stats.ping_sent),
        ("pong", stats.pong_sent),
        ("meet", stats.meet_sent),
        ("fail", stats.fail_sent),
        ("auth-req", stats.auth_req_sent),
        ("auth-ack", stats.auth_ack_sent),
        ("mfstart", stats.mfstart_sent),
    ];
    for (k, v) in sent.iter().filter(|(_, v)| *v > 0) {
        l(&format!("cluster_stats_messages_{k}_sent"), v.to_string());
    }
    l(
        "cluster_stats_messages_sent",
        sent.iter().map(|(_, v)| v).sum::<u64>().to_string(),
    );
    let recv = [
        ("ping", stats.ping_received),
        ("pong", stats.pong_received),
        ("meet", stats.meet_received),
        ("fail", stats.fail_received),
        ("auth-req", stats.auth_req_received),
        ("auth-ack", stats.auth_ack_received),
        ("mfstart", stats.mfstart_received),
    ];
    for (k, v) in recv.iter().filter(|(_, v)| *v > 0) {
        l(
            &format!("cluster_stats_messages_{k}_received"),
            v.to_string(),
        );
    }
    l(
        "cluster_stats_messages_received",
        recv.iter().map(|(_, v)| v).sum::<u64>().to_string(),
    );
    l("total_cluster_links_buffer_limit_exceeded", "0".into());
    out
}

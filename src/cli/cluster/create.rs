//! `--cluster create host1:port1 … [--cluster-replicas N] [--cluster-yes]`: valkey-cli's
//! client-side plan (interleave nodes by host, slot ranges per master, replicas on other
//! hosts, anti-affinity optimisation), then ADDSLOTS, SET-CONFIG-EPOCH, MEET, wait for the
//! join, REPLICATE and the final check.

use std::collections::VecDeque;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use rand::Rng;

use super::manager::{
    print_not_cluster_error, print_not_empty_error, print_reply_error, ClusterNode, Manager,
    ProbeError,
};
use super::nodes::{self, SLOTS};
use super::{confirm_with_yes, ClusterOpts};
use crate::cli::conn::Value;

/// How long the cluster may take to agree on the slots after MEET, and replicas to accept
/// CLUSTER REPLICATE (they must first learn their master through gossip).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

pub fn run(o: &ClusterOpts) -> anyhow::Result<bool> {
    let mut m = Manager::new(o.auth.clone());
    for addr in &o.args {
        let Some((ip, port, _)) = nodes::parse_address(addr) else {
            eprintln!("Invalid address format: {addr}");
            return Ok(false);
        };
        let mut node = ClusterNode::new(ip, port, 0);
        if !precheck_empty_node(&mut node, &m) {
            return Ok(false);
        }
        // Not a valkey-cli check, but listing a node twice would otherwise fail obscurely
        // half-way through (it would get two roles).
        if m.nodes.iter().any(|n| n.name == node.name) {
            log_err!("[ERR] Node {} is listed more than once.\n", node.addr());
            return Ok(false);
        }
        m.nodes.push(node);
    }
    let node_count = m.nodes.len();
    let replicas = o.replicas;
    let masters = node_count / (replicas + 1);
    if masters == 0 {
        log_err!(
            "*** ERROR: Invalid configuration for cluster creation.\n\
             *** This is not possible with {node_count} nodes and {replicas} replicas per node.\n\
             *** At least {} nodes are required.\n",
            replicas + 1
        );
        return Ok(false);
    }
    if masters < 3 {
        log_info!(
            "Requested to create a cluster with {masters} masters and {replicas} replicas per master.\n"
        );
        if !confirm_with_yes(
            "rockslot cluster requires at least 3 master nodes for automatic failover. Are you sure?",
            o.yes,
            false,
        ) {
            return Ok(false);
        }
    }
    log_info!(">>> Performing hash slots allocation on {node_count} nodes...\n");
    let groups = ip_groups(&m.nodes);
    for line in allocate(&mut m.nodes, &groups, masters, replicas) {
        println!("{line}");
    }
    optimize_anti_affinity(&mut m.nodes, &groups);
    m.show_nodes();
    if !confirm_with_yes("Can I set the above configuration?", o.yes, false) {
        return Ok(false);
    }
    // Nodes the plan left without a role (more leftovers than masters) just join empty.
    for n in m.nodes.iter_mut().filter(|n| n.dirty) {
        if let Err(e) = flush_node_config(n) {
            // Replicas may not know their master yet: they are retried after the join.
            if n.replicate.is_none() {
                print_reply_error(n, e.as_deref().unwrap_or("no reply"));
                return Ok(false);
            }
        }
    }
    log_info!(">>> Nodes configuration updated\n");
    log_info!(">>> Assign a different config epoch to each node\n");
    for (i, n) in m.nodes.iter_mut().enumerate() {
        // valkey-cli ignores the reply: a node that already has an epoch keeps it.
        let _ = n.cmd(&["cluster", "set-config-epoch", &(i + 1).to_string()]);
    }
    log_info!(">>> Sending CLUSTER MEET messages to join the cluster\n");
    let (first_host, first_port, first_bus) = {
        let f = &m.nodes[0];
        (f.ip.clone(), f.port, f.bus_port)
    };
    let Some(first_ip) = resolve_ip(&first_host, first_port) else {
        eprintln!("Invalid IP address or hostname specified: {first_host}");
        return Ok(false);
    };
    for n in m.nodes.iter_mut().skip(1) {
        if !meet(n, &first_ip, first_port, first_bus) {
            return Ok(false);
        }
    }
    // As valkey-cli: give the handshakes a moment so the first poll does not see nodes that
    // still agree only because none has learnt the others yet.
    std::thread::sleep(Duration::from_secs(1));
    if !m.wait_for_cluster_join(JOIN_TIMEOUT) {
        return Ok(false);
    }
    let deadline = Instant::now() + JOIN_TIMEOUT;
    for n in m.nodes.iter_mut().filter(|n| n.dirty) {
        loop {
            match flush_node_config(n) {
                Ok(()) => break,
                Err(_) if n.replicate.is_some() && Instant::now() < deadline => {
                    std::thread::sleep(POLL)
                }
                Err(e) => {
                    print_reply_error(n, e.as_deref().unwrap_or("no reply"));
                    return Ok(false);
                }
            }
        }
    }
    // Reload everything from the first node, as valkey-cli does, and check the result.
    let first = m.nodes.swap_remove(0);
    let mut loaded = Manager::new(o.auth.clone());
    if !loaded.load_info_from_node(first, false) {
        return Ok(false);
    }
    Ok(loaded.check_cluster(false, false))
}

/// Connects and checks that the node is a cluster node, knows nobody and has no keys
/// (valkey-cli's create/add-node prechecks, with their messages).
pub fn precheck_empty_node(node: &mut ClusterNode, m: &Manager) -> bool {
    if !node.connect(&m.auth) {
        return false;
    }
    match node.is_cluster() {
        Ok(true) => {}
        Ok(false) => {
            print_not_cluster_error(node, &None);
            return false;
        }
        Err(e) => {
            print_not_cluster_error(node, &e);
            return false;
        }
    }
    if let Err(e) = node.load_info(false) {
        if let Some(e) = e {
            print_reply_error(node, &e);
        }
        return false;
    }
    match node.is_empty() {
        Ok(true) => true,
        Ok(false) => {
            print_not_empty_error(node, &None);
            false
        }
        Err(e) => {
            print_not_empty_error(node, &e);
            false
        }
    }
}

/// Sends the planned configuration: CLUSTER REPLICATE for a replica, one CLUSTER ADDSLOTS
/// with all slots for a master. On a replica's error the node stays dirty (to be retried).
pub fn flush_node_config(n: &mut ClusterNode) -> Result<(), ProbeError> {
    if !n.dirty {
        return Err(None);
    }
    if let Some(master) = n.replicate.clone() {
        n.text(&["CLUSTER", "REPLICATE", &master])?;
    } else {
        let mut argv = vec![b"CLUSTER".to_vec(), b"ADDSLOTS".to_vec()];
        argv.extend(
            (0..SLOTS)
                .filter(|&s| n.slots[s])
                .map(|s| s.to_string().into_bytes()),
        );
        if argv.len() == 2 {
            return Err(None);
        }
        // A master is not retried: its ADDSLOTS failing is fatal for the caller.
        n.dirty = false;
        match n.call(&argv) {
            Ok(Value::Error(e)) => return Err(Some(e)),
            Err(_) => return Err(None),
            Ok(_) => {}
        }
    }
    n.dirty = false;
    Ok(())
}

/// CLUSTER MEET to `ip:port` (with the bus port only when it is not port + 10000).
pub fn meet(n: &mut ClusterNode, ip: &str, port: u16, bus_port: u16) -> bool {
    let port_s = port.to_string();
    let bus_s = bus_port.to_string();
    let mut argv = vec!["cluster", "meet", ip, &port_s];
    if bus_port != 0 && u32::from(bus_port) != u32::from(port) + 10000 {
        argv.push(&bus_s);
    }
    match n.cmd(&argv) {
        Ok(Value::Error(e)) => {
            print_reply_error(n, &e);
            false
        }
        Ok(_) => true,
        Err(_) => {
            eprintln!("Failed to send CLUSTER MEET command.");
            false
        }
    }
}

/// CLUSTER MEET needs an IP address, so a hostname is resolved first (IPv4 preferred).
pub fn resolve_ip(host: &str, port: u16) -> Option<String> {
    if host.parse::<IpAddr>().is_ok() {
        return Some(host.to_string());
    }
    let addrs: Vec<_> = (host, port).to_socket_addrs().ok()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .map(|a| a.ip().to_string())
}

/// Node indices grouped by IP, groups in order of first appearance.
fn ip_groups(nodes: &[ClusterNode]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        match groups.iter_mut().find(|g| nodes[g[0]].ip == n.ip) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// valkey-cli's plan: interleave the nodes host by host, the first `masters` become masters
/// with contiguous slot ranges, the rest are spread as replicas preferring another host than
/// their master. Marks planned nodes dirty; returns the lines valkey-cli prints.
fn allocate(
    nodes: &mut [ClusterNode],
    groups: &[Vec<usize>],
    masters: usize,
    replicas: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut queues: Vec<VecDeque<usize>> =
        groups.iter().map(|g| g.iter().copied().collect()).collect();
    let mut interleaved = Vec::with_capacity(nodes.len());
    while interleaved.len() < nodes.len() {
        for q in &mut queues {
            if let Some(i) = q.pop_front() {
                interleaved.push(i);
            }
        }
    }
    let master_idx: Vec<usize> = interleaved[..masters].to_vec();
    // Float arithmetic exactly as valkey-cli (f32 cursor, lround), so the ranges match it.
    let per_node = SLOTS as f32 / masters as f32;
    let (mut first, mut cursor) = (0i64, 0f32);
    for (i, &mi) in master_idx.iter().enumerate() {
        let mut last = f64::from(cursor + per_node - 1.0).round() as i64;
        if last > SLOTS as i64 || i == masters - 1 {
            last = SLOTS as i64 - 1;
        }
        last = last.max(first);
        out.push(format!("Master[{i}] -> Slots {first} - {last}"));
        let n = &mut nodes[mi];
        n.slots.iter_mut().for_each(|s| *s = false);
        for s in first..=last {
            n.slots[s as usize] = true;
        }
        n.slots_count = (last - first + 1) as usize;
        n.dirty = true;
        first = last + 1;
        cursor += per_node;
    }
    let mut rest: Vec<Option<usize>> = interleaved[masters..].iter().map(|&i| Some(i)).collect();
    // Rotating the list sometimes gives a better start for the anti-affinity optimiser.
    if !rest.is_empty() {
        rest.rotate_left(1);
    }
    let (mut lo, mut available, mut extra) = (0usize, rest.len(), false);
    loop {
        for &mi in &master_idx {
            let mut assigned = 0;
            while assigned < replicas && available > 0 {
                let mut found = None;
                let mut first_same = None;
                for (j, slot) in rest.iter_mut().enumerate().skip(lo) {
                    let Some(ni) = *slot else { continue };
                    if nodes[ni].ip != nodes[mi].ip {
                        found = Some(ni);
                        *slot = None;
                        break;
                    }
                    first_same.get_or_insert(j);
                }
                // No node on another host: take the first one left, same host or not.
                let replica = found.or_else(|| {
                    first_same.and_then(|j| {
                        lo = j + 1;
                        rest[j]
                    })
                });
                let Some(r) = replica else { break };
                assigned += 1;
                available -= 1;
                nodes[r].replicate = Some(nodes[mi].name.clone());
                nodes[r].dirty = true;
                out.push(format!(
                    "Adding replica {} to {}",
                    nodes[r].addr(),
                    nodes[mi].addr()
                ));
                if extra {
                    break;
                }
            }
        }
        if extra || available == 0 {
            break;
        }
        extra = true;
        out.push("Adding extra replicas...".to_string());
    }
    out
}

/// valkey-cli's anti-affinity score: 10000 per replica on its master's host, 1 per replica
/// sharing a host with another replica of the same master. With `offenders`, collects one
/// offending replica per violating (host, master) group.
fn anti_affinity_score(
    nodes: &[ClusterNode],
    groups: &[Vec<usize>],
    mut offenders: Option<&mut Vec<usize>>,
) -> u64 {
    let mut score = 0;
    for g in groups {
        let ip = &nodes[g[0]].ip;
        // master id → role letters of the group's nodes on this host, 'm' first.
        let mut related: Vec<(String, String)> = Vec::new();
        for &i in g {
            let n = &nodes[i];
            let key = n.replicate.clone().unwrap_or_else(|| n.name.clone());
            let pos = match related.iter().position(|(k, _)| *k == key) {
                Some(p) => p,
                None => {
                    related.push((key, String::new()));
                    related.len() - 1
                }
            };
            if n.replicate.is_some() {
                related[pos].1.push('s');
            } else {
                related[pos].1.insert(0, 'm');
            }
        }
        for (name, types) in &related {
            if types.len() < 2 {
                continue;
            }
            score += if types.starts_with('m') {
                10000 * (types.len() as u64 - 1)
            } else {
                types.len() as u64
            };
            if let Some(off) = offenders.as_deref_mut() {
                if let Some(i) = nodes
                    .iter()
                    .position(|n| n.replicate.as_deref() == Some(name) && n.ip == *ip)
                {
                    off.push(i);
                }
            }
        }
    }
    score
}

/// Randomly swaps the masters of offending replicas, keeping swaps that do not worsen the
/// score (valkey-cli's `clusterManagerOptimizeAntiAffinity`).
fn optimize_anti_affinity(nodes: &mut [ClusterNode], groups: &[Vec<usize>]) {
    if anti_affinity_score(nodes, groups, None) == 0 {
        return;
    }
    log_info!(">>> Trying to optimize slaves allocation for anti-affinity\n");
    let mut rng = rand::rng();
    for _ in 0..500 * nodes.len() {
        let mut offenders = Vec::new();
        let score = anti_affinity_score(nodes, groups, Some(&mut offenders));
        if score == 0 || offenders.is_empty() {
            break;
        }
        let first = offenders[rng.random_range(0..offenders.len())];
        let others: Vec<usize> = (0..nodes.len())
            .filter(|&i| i != first && nodes[i].replicate.is_some())
            .collect();
        if others.is_empty() {
            break;
        }
        let second = others[rng.random_range(0..others.len())];
        let (a, b) = (
            nodes[first].replicate.take(),
            nodes[second].replicate.take(),
        );
        nodes[first].replicate = b.clone();
        nodes[second].replicate = a.clone();
        nodes[first].dirty = true;
        nodes[second].dirty = true;
        if anti_affinity_score(nodes, groups, None) > score {
            nodes[first].replicate = a;
            nodes[second].replicate = b;
        }
    }
    match anti_affinity_score(nodes, groups, None) {
        0 => log_ok!("[OK] Perfect anti-affinity obtained!\n"),
        s if s >= 10000 => {
            log_warn!("[WARNING] Some slaves are in the same host as their master\n")
        }
        _ => log_warn!("[WARNING] Some slaves of the same master are in the same host\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(addrs: &[(&str, u16)]) -> Vec<ClusterNode> {
        addrs
            .iter()
            .enumerate()
            .map(|(i, (ip, port))| {
                let mut n = ClusterNode::new(*ip, *port, 0);
                n.name = format!("{i:040x}");
                n
            })
            .collect()
    }

    #[test]
    fn six_local_nodes_like_valkey_cli() {
        let addrs: Vec<(&str, u16)> = (7000..7006).map(|p| ("127.0.0.1", p)).collect();
        let mut ns = nodes(&addrs);
        let groups = ip_groups(&ns);
        let lines = allocate(&mut ns, &groups, 3, 1);
        assert_eq!(
            lines,
            vec![
                "Master[0] -> Slots 0 - 5460",
                "Master[1] -> Slots 5461 - 10922",
                "Master[2] -> Slots 10923 - 16383",
                "Adding replica 127.0.0.1:7004 to 127.0.0.1:7000",
                "Adding replica 127.0.0.1:7005 to 127.0.0.1:7001",
                "Adding replica 127.0.0.1:7003 to 127.0.0.1:7002",
            ]
        );
        assert_eq!(ns[0].slots_count, 5461);
        assert_eq!(ns[2].slots_count, 5461);
        assert_eq!(ns[1].slots_count, 5462);
        assert_eq!(ns[4].replicate.as_deref(), Some(ns[0].name.as_str()));
        // All on one host: every replica sits with its master.
        assert_eq!(anti_affinity_score(&ns, &groups, None), 30000);
    }

    #[test]
    fn replicas_go_to_other_hosts() {
        let mut ns = nodes(&[
            ("10.0.0.1", 7000),
            ("10.0.0.1", 7001),
            ("10.0.0.2", 7000),
            ("10.0.0.2", 7001),
            ("10.0.0.3", 7000),
            ("10.0.0.3", 7001),
        ]);
        let groups = ip_groups(&ns);
        allocate(&mut ns, &groups, 3, 1);
        optimize_anti_affinity(&mut ns, &groups);
        assert_eq!(anti_affinity_score(&ns, &groups, None), 0);
        let masters: Vec<&ClusterNode> = ns.iter().filter(|n| n.replicate.is_none()).collect();
        assert_eq!(masters.len(), 3);
        for r in ns.iter().filter(|n| n.replicate.is_some()) {
            let m = ns
                .iter()
                .find(|m| Some(&m.name) == r.replicate.as_ref())
                .unwrap();
            assert_ne!(m.ip, r.ip);
        }
    }

    #[test]
    fn leftover_nodes_get_no_role() {
        // 7 nodes, 3 replicas each: 1 master, 3 replicas, 1 extra, 2 left without a role
        // (valkey-cli lets them join as empty masters).
        let addrs: Vec<(&str, u16)> = (7000..7007).map(|p| ("127.0.0.1", p)).collect();
        let mut ns = nodes(&addrs);
        let groups = ip_groups(&ns);
        allocate(&mut ns, &groups, 1, 3);
        assert_eq!(ns.iter().filter(|n| n.replicate.is_some()).count(), 4);
        assert_eq!(ns.iter().filter(|n| !n.dirty).count(), 2);
    }

    #[test]
    fn extra_replicas_and_no_replicas() {
        // 7 nodes, 1 replica each: 3 masters, 3 replicas, one extra.
        let addrs: Vec<(&str, u16)> = (7000..7007).map(|p| ("127.0.0.1", p)).collect();
        let mut ns = nodes(&addrs);
        let groups = ip_groups(&ns);
        let lines = allocate(&mut ns, &groups, 3, 1);
        assert!(lines.contains(&"Adding extra replicas...".to_string()));
        assert_eq!(ns.iter().filter(|n| n.replicate.is_some()).count(), 4);
        let mut ns = nodes(&addrs[..3]);
        let groups = ip_groups(&ns);
        let lines = allocate(&mut ns, &groups, 3, 0);
        assert_eq!(lines.len(), 3);
        let covered: usize = ns.iter().map(|n| n.slots_count).sum();
        assert_eq!(covered, SLOTS);
    }

    #[test]
    fn slot_ranges_match_valkey_for_odd_counts() {
        let addrs: Vec<(&str, u16)> = (7000..7007).map(|p| ("127.0.0.1", p)).collect();
        let mut ns = nodes(&addrs);
        let groups = ip_groups(&ns);
        let lines = allocate(&mut ns, &groups, 7, 0);
        // 16384/7 = 2340.57…: lround(2339.57) = 2340, then lround(4680.14) = 4680, …
        assert_eq!(lines[0], "Master[0] -> Slots 0 - 2340");
        assert_eq!(lines[1], "Master[1] -> Slots 2341 - 4680");
        assert_eq!(lines[6], "Master[6] -> Slots 14043 - 16383");
    }
}

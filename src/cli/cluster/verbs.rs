//! The small verbs: `check`, `info`, `add-node`, `del-node`, `call` (valkey-cli's
//! `clusterManagerCommand*` for each, same command sequences and messages).

use std::time::{Duration, Instant};

use super::create::{meet, precheck_empty_node, resolve_ip, JOIN_TIMEOUT};
use super::manager::{print_reply_error, ClusterNode, Manager};
use super::{host_port, ClusterOpts, INVALID_HOST_ARG};
use crate::cli::conn::Value;

/// The seed node named by `args` (`host:port` or `host port`), or the usage error.
fn seed(args: &[String]) -> Option<ClusterNode> {
    match host_port(args) {
        Some((ip, port)) => Some(ClusterNode::new(ip, port, 0)),
        None => {
            eprintln!("{INVALID_HOST_ARG}");
            None
        }
    }
}

/// `check host:port`: per-master summary, then the full check.
pub fn check(o: &ClusterOpts) -> anyhow::Result<bool> {
    let Some(node) = seed(&o.args) else {
        return Ok(false);
    };
    let mut m = Manager::new(o.auth.clone());
    if !m.load_info_from_node(node, false) {
        return Ok(false);
    }
    m.show_cluster_info();
    Ok(m.check_cluster(false, o.search_multiple_owners))
}

/// `info host:port`: per-master keys, slots and replicas.
pub fn info(o: &ClusterOpts) -> anyhow::Result<bool> {
    let Some(node) = seed(&o.args) else {
        return Ok(false);
    };
    let mut m = Manager::new(o.auth.clone());
    if !m.load_info_from_node(node, false) {
        return Ok(false);
    }
    Ok(m.show_cluster_info())
}

/// `add-node new_host:new_port existing_host:existing_port [--cluster-slave
/// [--cluster-master-id id]]`.
pub fn add_node(o: &ClusterOpts) -> anyhow::Result<bool> {
    let (Some((ip, port)), Some((ref_ip, ref_port))) =
        (host_port(&o.args[..1]), host_port(&o.args[1..]))
    else {
        eprintln!("{INVALID_HOST_ARG}");
        return Ok(false);
    };
    log_info!(">>> Adding node {ip}:{port} to cluster {ref_ip}:{ref_port}\n");
    let mut m = Manager::new(o.auth.clone());
    if !m.load_info_from_node(ClusterNode::new(ref_ip, ref_port, 0), false) {
        return Ok(false);
    }
    if !m.check_cluster(false, false) {
        return Ok(false);
    }
    // Resolve the master first so a bad id aborts before the new node is touched. As in
    // valkey-cli, --cluster-master-id only matters together with --cluster-slave.
    let master = if o.replica {
        match &o.master_id {
            Some(id) => match m.node_by_name(id) {
                Some(i) => Some(i),
                None => {
                    log_err!("[ERR] No such master ID {id}\n");
                    return Ok(false);
                }
            },
            None => {
                let Some(i) = m.node_with_least_replicas(None) else {
                    log_err!("[ERR] No reachable master to replicate.\n");
                    return Ok(false);
                };
                println!(
                    "Automatically selected master {}:{}",
                    m.nodes[i].ip, m.nodes[i].port
                );
                Some(i)
            }
        }
    } else {
        None
    };
    let mut new = ClusterNode::new(ip.clone(), port, 0);
    if !precheck_empty_node(&mut new, &m) {
        if new.conn.is_none() {
            log_err!("[ERR] Sorry, can't connect to node {ip}:{port}\n");
        }
        return Ok(false);
    }
    if master.is_none() && !copy_functions(&mut m.nodes[0], &mut new) {
        return Ok(false);
    }
    log_info!(">>> Send CLUSTER MEET to node {ip}:{port} to make it join the cluster.\n");
    let (first_host, first_port, first_bus) = {
        let f = &m.nodes[0];
        (f.ip.clone(), f.port, f.bus_port)
    };
    let Some(first_ip) = resolve_ip(&first_host, first_port) else {
        eprintln!("Invalid IP address or hostname specified: {first_host}");
        return Ok(false);
    };
    if !meet(&mut new, &first_ip, first_port, first_bus) {
        return Ok(false);
    }
    m.nodes.push(new);
    if let Some(mi) = master {
        std::thread::sleep(Duration::from_secs(1));
        if !m.wait_for_cluster_join(JOIN_TIMEOUT) {
            return Ok(false);
        }
        let (mip, mport, mname) = {
            let mn = &m.nodes[mi];
            (mn.ip.clone(), mn.port, mn.name.clone())
        };
        log_info!(">>> Configure node as replica of {mip}:{mport}.\n");
        let new = m.nodes.last_mut().expect("pushed above");
        if !replicate_with_retry(new, &mname) {
            return Ok(false);
        }
    }
    log_ok!("[OK] New node added correctly.\n");
    Ok(true)
}

/// CLUSTER REPLICATE, retried for a while: the node may not have learnt the master through
/// gossip yet even though the slot configuration already agrees.
fn replicate_with_retry(n: &mut ClusterNode, master: &str) -> bool {
    let deadline = Instant::now() + JOIN_TIMEOUT;
    loop {
        match n.cmd(&["CLUSTER", "REPLICATE", master]) {
            Ok(Value::Error(e)) if Instant::now() >= deadline => {
                print_reply_error(n, &e);
                return false;
            }
            Ok(Value::Error(_)) => std::thread::sleep(Duration::from_millis(200)),
            Ok(_) => return true,
            Err(e) => {
                eprintln!("{}: {e:#}", n.addr());
                return false;
            }
        }
    }
}

/// valkey-cli copies the cluster's functions to a new master: FUNCTION DUMP on the seed,
/// FUNCTION LIST (must be empty) and FUNCTION RESTORE on the new node.
fn copy_functions(seed: &mut ClusterNode, new: &mut ClusterNode) -> bool {
    let (ip, port) = (new.ip.clone(), new.port);
    log_info!(">>> Getting functions from cluster\n");
    let payload = match seed.cmd(&["FUNCTION", "DUMP"]) {
        Ok(Value::Bulk(p)) => p,
        other => {
            let err = match other {
                Ok(Value::Error(e)) => e,
                Ok(_) => "unexpected reply".to_string(),
                Err(_) => "NULL reply".to_string(),
            };
            log_info!(
                ">>> Failed retrieving Functions from the cluster, skip this step as the \
                 server does not support function command (error = '{err}')\n"
            );
            return true;
        }
    };
    log_info!(">>> Send FUNCTION LIST to {ip}:{port} to verify there is no functions in it\n");
    match new.cmd(&["FUNCTION", "LIST"]) {
        Ok(Value::Array(a)) if a.is_empty() => {}
        Ok(Value::Array(_)) => {
            log_err!(
                ">>> New node already contains functions and can not be added to the cluster. \
                 Use FUNCTION FLUSH and try again.\r\n"
            );
            return false;
        }
        Ok(Value::Error(e)) => {
            log_err!(">>> Failed on CLUSTER LIST (error = '{e}')\r\n");
            return false;
        }
        _ => {
            log_err!(">>> Failed on CLUSTER LIST (error = 'NULL reply')\r\n");
            return false;
        }
    }
    log_info!(">>> Send FUNCTION RESTORE to {ip}:{port}\n");
    match new.call(&[b"FUNCTION".to_vec(), b"RESTORE".to_vec(), payload]) {
        Ok(Value::Error(e)) => {
            log_err!(">>> Failed loading functions to the new node (error = '{e}')\r\n");
            false
        }
        Ok(_) => true,
        Err(_) => {
            log_err!(">>> Failed loading functions to the new node (error = 'NULL reply')\r\n");
            false
        }
    }
}

/// `del-node host:port node_id`: the node must own no slots; its replicas move to the master
/// with the fewest replicas; every other node forgets it; it is soft-reset.
pub fn del_node(o: &ClusterOpts) -> anyhow::Result<bool> {
    let Some(seed_node) = seed(&o.args[..1]) else {
        return Ok(false);
    };
    let node_id = &o.args[1];
    log_info!(
        ">>> Removing node {node_id} from cluster {}:{}\n",
        seed_node.ip,
        seed_node.port
    );
    let mut m = Manager::new(o.auth.clone());
    // Unreachable nodes are loaded too, so a dead node can be removed.
    if !m.load_info_from_node(seed_node, true) {
        return Ok(false);
    }
    let Some(del) = m.node_by_name(node_id) else {
        log_err!("[ERR] No such node ID {node_id}\n");
        return Ok(false);
    };
    if m.nodes[del].slots_count != 0 {
        log_err!(
            "[ERR] Node {}:{} is not empty! Reshard data away and try again.\n",
            m.nodes[del].ip,
            m.nodes[del].port
        );
        return Ok(false);
    }
    let name = m.nodes[del].name.clone();
    log_info!(">>> Sending CLUSTER FORGET messages to the cluster...\n");
    for i in 0..m.nodes.len() {
        if i == del {
            continue;
        }
        if m.nodes[i].conn.is_none() {
            log_warn!(
                ">>> Skipping unreachable node {}. It may need manual reconfiguration when it \
                 comes back online.\n",
                m.nodes[i].addr()
            );
            continue;
        }
        if m.nodes[i].replicate.as_deref() == Some(name.as_str()) {
            let Some(mi) = m.node_with_least_replicas(Some(del)) else {
                log_err!("[ERR] No master left for replica {}\n", m.nodes[i].addr());
                return Ok(false);
            };
            let (maddr, mname) = (m.nodes[mi].addr(), m.nodes[mi].name.clone());
            log_info!(">>> {} as replica of {maddr}\n", m.nodes[i].addr());
            if !ok_reply(&mut m.nodes[i], &["CLUSTER", "REPLICATE", &mname]) {
                return Ok(false);
            }
            // Spread several orphaned replicas instead of piling them on one master.
            m.nodes[mi].replicas_count += 1;
        }
        if !ok_reply(&mut m.nodes[i], &["CLUSTER", "FORGET", &name]) {
            return Ok(false);
        }
    }
    let n = &mut m.nodes[del];
    if n.conn.is_some() {
        log_info!(">>> Sending CLUSTER RESET SOFT to the deleted node.\n");
        if !ok_reply(n, &["CLUSTER", "RESET", "SOFT"]) {
            return Ok(false);
        }
    } else {
        log_warn!(
            ">>> WARNING: Could not connect to node {}, unable to send CLUSTER RESET.\n",
            n.addr()
        );
    }
    Ok(true)
}

/// Sends a command; prints the node's error reply (or the I/O error) and returns false on one.
fn ok_reply(n: &mut ClusterNode, parts: &[&str]) -> bool {
    match n.cmd(parts) {
        Ok(Value::Error(e)) => {
            print_reply_error(n, &e);
            false
        }
        Ok(_) => true,
        Err(e) => {
            eprintln!("{}: {e:#}", n.addr());
            false
        }
    }
}

/// `call host:port cmd args… [--cluster-only-masters|--cluster-only-replicas]`.
pub fn call(o: &ClusterOpts) -> anyhow::Result<bool> {
    let Some(node) = seed(&o.args[..1]) else {
        return Ok(false);
    };
    let mut m = Manager::new(o.auth.clone());
    if !m.load_info_from_node(node, false) {
        return Ok(false);
    }
    let argv: Vec<Vec<u8>> = o.args[1..].iter().map(|a| a.as_bytes().to_vec()).collect();
    log_info!(">>> Calling");
    println!(" {}", o.args[1..].join(" "));
    let auth = m.auth.clone();
    for n in &mut m.nodes {
        if (o.only_masters && n.replicate.is_some()) || (o.only_replicas && n.replicate.is_none()) {
            continue;
        }
        if n.conn.is_none() && !n.connect(&auth) {
            continue;
        }
        match n.call(&argv) {
            Ok(v) => println!("{}: {}", n.addr(), format_raw(&v)),
            Err(_) => println!("{}: Failed!", n.addr()),
        }
    }
    Ok(true)
}

/// valkey-cli's `cliFormatReplyRaw`: errors get a newline of their own, array elements are
/// joined by newlines, nil is empty.
pub fn format_raw(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        Value::Error(e) => format!("{e}\n"),
        Value::Status(s) => s.clone(),
        Value::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::Array(items) => items.iter().map(format_raw).collect::<Vec<_>>().join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_format() {
        let v = Value::Array(vec![
            Value::Bulk(b"a".to_vec()),
            Value::Int(3),
            Value::Nil,
            Value::Status("OK".into()),
        ]);
        assert_eq!(format_raw(&v), "a\n3\n\nOK");
        assert_eq!(format_raw(&Value::Error("ERR x".into())), "ERR x\n");
    }
}

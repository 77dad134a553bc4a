//! The cluster manager's model: the nodes valkey-cli's `clusterManagerLoadInfoFromNode` loads
//! (each with its own connection), and the operations every verb shares — node probes, the
//! `M:`/`S:` listing, the per-master key summary, the configuration-consistency check, the
//! full cluster check and waiting for the cluster to join.
//!
//! Later verbs (reshard, rebalance, fix, backup) build on `Manager` and `ClusterNode`; keep
//! their fields public and their semantics those of valkey-cli's `clusterManagerNode`.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use super::nodes::{self, NodeLine, ParseError, SLOTS};
use crate::cli::conn::{Connection, Value};

/// Credentials used for every node connection (`-a`, `--user`).
#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub user: Option<String>,
    pub pass: Option<String>,
    pub no_warning: bool,
}

/// Why a probe failed: the node's error reply, or `None` when the connection failed (the
/// caller then prints a generic message, as valkey-cli does for a NULL reply).
pub type ProbeError = Option<String>;

/// One node as the cluster manager knows it.
pub struct ClusterNode {
    /// Address used to connect: typed by the user for the seed, from `CLUSTER NODES` otherwise.
    pub ip: String,
    pub port: u16,
    pub bus_port: u16,
    /// 40-hex node id; empty until the node's `CLUSTER NODES` was read.
    pub name: String,
    pub myself: bool,
    /// Loaded from another node's view rather than typed by the user.
    pub friend: bool,
    pub replica: bool,
    pub fail: bool,
    pub noaddr: bool,
    pub disconnected: bool,
    /// Flags as printed by the node (shown, minus `myself`, in the `M:`/`S:` lines).
    pub flags_str: Vec<String>,
    /// Master id when the node is (or, in a plan, will be) a replica.
    pub replicate: Option<String>,
    /// Owned slots, one entry per slot.
    pub slots: Vec<bool>,
    pub slots_count: usize,
    pub migrating: Vec<(u16, String)>,
    pub importing: Vec<(u16, String)>,
    /// The planned configuration (slots or replicate) is not yet sent to the node.
    pub dirty: bool,
    pub replicas_count: usize,
    pub current_epoch: u64,
    pub ping_sent: i64,
    pub ping_recv: i64,
    /// For rebalance.
    pub weight: f64,
    pub balance: i64,
    pub conn: Option<Connection>,
}

impl ClusterNode {
    /// A node not yet connected; a bus port of 0 means "client port + 10000" until the node's
    /// own `CLUSTER NODES` says otherwise.
    pub fn new(ip: impl Into<String>, port: u16, bus_port: u16) -> ClusterNode {
        ClusterNode {
            ip: ip.into(),
            port,
            bus_port: if bus_port == 0 {
                port.wrapping_add(10000)
            } else {
                bus_port
            },
            name: String::new(),
            myself: false,
            friend: false,
            replica: false,
            fail: false,
            noaddr: false,
            disconnected: false,
            flags_str: Vec::new(),
            replicate: None,
            slots: vec![false; SLOTS],
            slots_count: 0,
            migrating: Vec::new(),
            importing: Vec::new(),
            dirty: false,
            replicas_count: 0,
            current_epoch: 0,
            ping_sent: 0,
            ping_recv: 0,
            weight: 1.0,
            balance: 0,
            conn: None,
        }
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Connects and authenticates (valkey-cli's `clusterManagerNodeConnect`).
    pub fn connect(&mut self, auth: &Auth) -> bool {
        self.conn = None;
        let mut conn = match Connection::open(&self.ip, self.port, None, None) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e:#}");
                return false;
            }
        };
        if let Some(pass) = &auth.pass {
            let mut argv = vec![b"AUTH".to_vec()];
            if let Some(u) = &auth.user {
                argv.push(u.as_bytes().to_vec());
            }
            argv.push(pass.as_bytes().to_vec());
            match conn.call(&argv) {
                Ok(Value::Error(e)) => {
                    print_reply_error(self, &e);
                    return false;
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("{}: {e:#}", self.addr());
                    return false;
                }
            }
        }
        self.conn = Some(conn);
        true
    }

    /// Sends one command; an error when there is no connection or the I/O fails.
    pub fn call(&mut self, argv: &[Vec<u8>]) -> anyhow::Result<Value> {
        match &mut self.conn {
            Some(c) => c.call(argv),
            None => anyhow::bail!("not connected to {}:{}", self.ip, self.port),
        }
    }

    /// `call` with string arguments.
    pub fn cmd(&mut self, parts: &[&str]) -> anyhow::Result<Value> {
        let argv: Vec<Vec<u8>> = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
        self.call(&argv)
    }

    /// A text reply (bulk or status), or the error reply.
    pub fn text(&mut self, parts: &[&str]) -> Result<String, ProbeError> {
        match self.cmd(parts) {
            Ok(Value::Error(e)) => Err(Some(e)),
            Ok(v) => Ok(v.as_text().unwrap_or_default()),
            Err(_) => Err(None),
        }
    }

    /// `INFO` must say `cluster_enabled:1`.
    pub fn is_cluster(&mut self) -> Result<bool, ProbeError> {
        let info = self.text(&["INFO"])?;
        Ok(nodes::info_field(&info, "cluster_enabled").map(nodes::atoi) == Some(1))
    }

    /// Empty = no `db0:` line in `INFO` and `cluster_known_nodes:1`.
    pub fn is_empty(&mut self) -> Result<bool, ProbeError> {
        let info = self.text(&["INFO"])?;
        if info.contains("db0:") {
            return Ok(false);
        }
        let ci = self.text(&["CLUSTER", "INFO"])?;
        Ok(nodes::info_field(&ci, "cluster_known_nodes").map(nodes::atoi) == Some(1))
    }

    /// `CLUSTER NODES` → this node's own state from its `myself` line, and, with `friends`,
    /// a new (unconnected) node for every other line (valkey-cli's
    /// `clusterManagerNodeLoadInfo`).
    pub fn load_info(&mut self, friends: bool) -> Result<Vec<ClusterNode>, ProbeError> {
        let text = self.text(&["CLUSTER", "NODES"])?;
        let lines = nodes::parse_nodes(&text).map_err(|e| {
            if matches!(e, ParseError::BadAddress(_)) {
                eprintln!("Error: invalid CLUSTER NODES reply");
            }
            None
        })?;
        let mut out = Vec::new();
        for l in &lines {
            if l.is_myself() {
                // The node knows its bus port; the guess from `new` may be wrong.
                self.bus_port = l.bus_port;
                self.myself = true;
                self.set_slots(l);
                self.migrating = l.migrating.clone();
                self.importing = l.importing.clone();
                self.dirty = false;
                self.apply_line(l);
                if !friends {
                    break;
                }
            } else if friends {
                let mut f = ClusterNode::new(l.ip.clone(), l.port, l.bus_port);
                f.friend = true;
                // For an unreachable friend this gossip is all we will know about its slots;
                // a reachable one overwrites it with its own view.
                f.set_slots(l);
                f.apply_line(l);
                out.push(f);
            }
        }
        Ok(out)
    }

    fn set_slots(&mut self, l: &NodeLine) {
        self.slots.iter_mut().for_each(|s| *s = false);
        for &(a, b) in &l.slots {
            for s in a..=b {
                self.slots[usize::from(s)] = true;
            }
        }
        self.slots_count = self.slots.iter().filter(|&&s| s).count();
    }

    fn apply_line(&mut self, l: &NodeLine) {
        self.name = l.name.clone();
        self.flags_str = l.flags.clone();
        // Health flags accumulate over the views read (seed's view, then the node's own), so
        // a node the seed sees as failed stays excluded, as in valkey-cli.
        self.noaddr |= l.has_flag("noaddr");
        self.disconnected |= l.has_flag("disconnected");
        self.fail |= l.has_flag("fail");
        // The role, though, is taken from the latest view: after a failover the node's own
        // line is the truth, the seed's may lag behind.
        self.replica = l.is_replica();
        self.replicate = l.replicate().map(str::to_string);
        self.current_epoch = l.config_epoch;
        self.ping_sent = l.ping_sent;
        self.ping_recv = l.ping_recv;
    }

    /// The `M:`/`S:` description (valkey-cli's `clusterManagerNodeInfo`).
    pub fn info_string(&self, indent: usize) -> String {
        let sp = " ".repeat(indent);
        let mut s = sp.clone();
        if self.dirty && self.replicate.is_some() {
            s.push_str(&format!("S: {} {}:{}", self.name, self.ip, self.port));
        } else {
            let role = if self.replica { "S" } else { "M" };
            let flags: Vec<&str> = self
                .flags_str
                .iter()
                .map(String::as_str)
                .filter(|f| *f != "myself")
                .collect();
            s.push_str(&format!(
                "{role}: {} {}:{}\n{sp}   slots:{} ({} slots) {}",
                self.name,
                self.ip,
                self.port,
                nodes::slots_string(&self.slots),
                self.slots_count,
                flags.join(",")
            ));
        }
        if let Some(m) = &self.replicate {
            s.push_str(&format!("\n{sp}   replicates {m}"));
        } else if self.replicas_count > 0 {
            s.push_str(&format!(
                "\n{sp}   {} additional replica(s)",
                self.replicas_count
            ));
        }
        s
    }
}

/// "Node ip:port replied with error:\n<err>" (valkey-cli's `CLUSTER_MANAGER_PRINT_REPLY_ERROR`).
pub fn print_reply_error(n: &ClusterNode, err: &str) {
    log_err!("Node {}:{} replied with error:\n{}\n", n.ip, n.port, err);
}

pub fn print_not_cluster_error(n: &ClusterNode, err: &ProbeError) {
    let msg = err
        .as_deref()
        .unwrap_or("is not configured as a cluster node.");
    log_err!("[ERR] Node {}:{} {}\n", n.ip, n.port, msg);
}

pub fn print_not_empty_error(n: &ClusterNode, err: &ProbeError) {
    let msg = err.as_deref().unwrap_or(
        "is not empty. Either the node already knows other nodes (check with CLUSTER NODES) \
         or contains some key in database 0.",
    );
    log_err!("[ERR] Node {}:{} {}\n", n.ip, n.port, msg);
}

/// The nodes loaded from a seed, plus the errors found by the check.
pub struct Manager {
    pub nodes: Vec<ClusterNode>,
    pub errors: Vec<String>,
    pub unreachable_masters: usize,
    pub auth: Auth,
}

impl Manager {
    pub fn new(auth: Auth) -> Manager {
        Manager {
            nodes: Vec::new(),
            errors: Vec::new(),
            unreachable_masters: 0,
            auth,
        }
    }

    /// Loads the cluster as seen from `seed` (valkey-cli's `clusterManagerLoadInfoFromNode`):
    /// the seed's `CLUSTER NODES` names the other nodes, each is connected and reads its own
    /// state. Unreachable, failed, `noaddr` or disconnected nodes are dropped unless
    /// `include_unreachable` (then they stay, without a connection when it failed).
    pub fn load_info_from_node(
        &mut self,
        mut seed: ClusterNode,
        include_unreachable: bool,
    ) -> bool {
        if seed.conn.is_none() && !seed.connect(&self.auth) {
            return false;
        }
        match seed.is_cluster() {
            Ok(true) => {}
            Ok(false) => {
                print_not_cluster_error(&seed, &None);
                return false;
            }
            Err(e) => {
                print_not_cluster_error(&seed, &e);
                return false;
            }
        }
        let friends = match seed.load_info(true) {
            Ok(f) => f,
            Err(e) => {
                if let Some(e) = e {
                    print_reply_error(&seed, &e);
                }
                return false;
            }
        };
        self.nodes.clear();
        self.unreachable_masters = 0;
        self.nodes.push(seed);
        for mut f in friends {
            let usable = !f.ip.is_empty() && f.port != 0 && f.connect(&self.auth) && {
                match f.load_info(false) {
                    Ok(_) => !(f.noaddr || f.disconnected || f.fail),
                    Err(_) => {
                        log_err!("[ERR] Unable to load info for node {}:{}\n", f.ip, f.port);
                        false
                    }
                }
            };
            if usable {
                self.nodes.push(f);
                continue;
            }
            if !f.replica {
                self.unreachable_masters += 1;
            }
            if include_unreachable {
                self.nodes.push(f);
            }
        }
        self.count_replicas();
        true
    }

    /// Recomputes `replicas_count` from the `replicate` fields.
    pub fn count_replicas(&mut self) {
        for n in &mut self.nodes {
            n.replicas_count = 0;
        }
        for i in 0..self.nodes.len() {
            let Some(m) = self.nodes[i].replicate.clone() else {
                continue;
            };
            match self.node_by_name(&m) {
                Some(j) => self.nodes[j].replicas_count += 1,
                None => {
                    let n = &self.nodes[i];
                    log_warn!(
                        "*** WARNING: {}:{} claims to be slave of unknown node ID {}.\n",
                        n.ip,
                        n.port,
                        m
                    );
                }
            }
        }
    }

    /// Exact id match; the query is lowercased as valkey-cli does (ids are lowercase hex).
    pub fn node_by_name(&self, name: &str) -> Option<usize> {
        let lc = name.to_ascii_lowercase();
        self.nodes
            .iter()
            .position(|n| !n.name.is_empty() && n.name == lc)
    }

    /// Match by id prefix (lowercased); the first node whose id starts with it.
    pub fn node_by_abbreviated_name(&self, prefix: &str) -> Option<usize> {
        let lc = prefix.to_ascii_lowercase();
        self.nodes
            .iter()
            .position(|n| !n.name.is_empty() && n.name.starts_with(&lc))
    }

    /// The reachable master with the fewest replicas (first one on ties).
    pub fn node_with_least_replicas(&self, exclude: Option<usize>) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, n) in self.nodes.iter().enumerate() {
            if n.replica || n.conn.is_none() || Some(i) == exclude {
                continue;
            }
            if best.is_none_or(|b| n.replicas_count < self.nodes[b].replicas_count) {
                best = Some(i);
            }
        }
        best
    }

    pub fn show_nodes(&self) {
        for n in &self.nodes {
            println!("{}", n.info_string(0));
        }
    }

    /// `ip:port (abcdefgh...) -> K keys | S slots | R slaves.` per master, then the totals
    /// (valkey-cli's `clusterManagerShowClusterInfo`, redis-cli 7.0 wording).
    pub fn show_cluster_info(&mut self) -> bool {
        let mut masters = 0;
        let mut keys: i64 = 0;
        for i in 0..self.nodes.len() {
            if self.nodes[i].replica || self.nodes[i].name.is_empty() {
                continue;
            }
            let name = self.nodes[i].name.clone();
            let replicas = self
                .nodes
                .iter()
                .filter(|n| n.replica && n.replicate.as_deref() == Some(name.as_str()))
                .count();
            let n = &mut self.nodes[i];
            let dbsize = match n.cmd(&["DBSIZE"]) {
                Ok(Value::Int(k)) if k >= 0 => k,
                Ok(Value::Error(e)) => {
                    print_reply_error(n, &e);
                    return false;
                }
                _ => {
                    print_reply_error(n, "");
                    return false;
                }
            };
            println!(
                "{}:{} ({}...) -> {} keys | {} slots | {} slaves.",
                n.ip,
                n.port,
                name.chars().take(8).collect::<String>(),
                dbsize,
                n.slots_count,
                replicas
            );
            masters += 1;
            keys += dbsize;
        }
        log_ok!("[OK] {keys} keys in {masters} masters.\n");
        println!(
            "{:.2} keys per slot on average.",
            keys as f32 / SLOTS as f32
        );
        true
    }

    /// Every loaded node's `CLUSTER NODES` yields the same signature (§2.5).
    pub fn is_config_consistent(&mut self) -> bool {
        if self.nodes.len() <= 1 {
            return true;
        }
        let mut first: Option<String> = None;
        for n in &mut self.nodes {
            let Some(sig) = n
                .text(&["CLUSTER", "NODES"])
                .ok()
                .and_then(|t| nodes::config_signature(&t))
            else {
                return false;
            };
            match &first {
                None => first = Some(sig),
                Some(f) if *f != sig => return false,
                Some(_) => {}
            }
        }
        true
    }

    /// Records and prints a check error.
    pub fn on_error(&mut self, err: String) {
        log_err!("{err}\n");
        self.errors.push(err);
    }

    /// Union of the loaded nodes' slots.
    pub fn covered_slots(&self) -> Vec<bool> {
        let mut all = vec![false; SLOTS];
        for n in &self.nodes {
            for (a, &b) in all.iter_mut().zip(&n.slots) {
                *a |= b;
            }
        }
        all
    }

    /// valkey-cli's `clusterManagerCheckCluster` without the fix paths: node listing (unless
    /// `quiet`), slot-configuration agreement, open slots, coverage, and optionally slots with
    /// several owners. True when nothing is wrong.
    pub fn check_cluster(&mut self, quiet: bool, search_multiple_owners: bool) -> bool {
        let Some(first) = self.nodes.first() else {
            return false;
        };
        log_info!(
            ">>> Performing Cluster Check (using node {}:{})\n",
            first.ip,
            first.port
        );
        let mut result = true;
        if !quiet {
            self.show_nodes();
        }
        if self.is_config_consistent() {
            log_ok!("[OK] All nodes agree about slots configuration.\n");
        } else {
            self.on_error("[ERR] Nodes don't agree about configuration!".into());
            result = false;
        }
        log_info!(">>> Check for open slots...\n");
        let mut open: BTreeMap<u16, String> = BTreeMap::new();
        let mut errs = Vec::new();
        for n in &self.nodes {
            for (what, list) in [("migrating", &n.migrating), ("importing", &n.importing)] {
                if list.is_empty() {
                    continue;
                }
                let slots: Vec<String> = list.iter().map(|(s, _)| s.to_string()).collect();
                for (s, other) in list {
                    open.insert(*s, other.clone());
                }
                errs.push(format!(
                    "[WARNING] Node {}:{} has slots in {what} state {}.",
                    n.ip,
                    n.port,
                    slots.join(",")
                ));
            }
        }
        for e in errs {
            self.on_error(e);
        }
        if !open.is_empty() {
            result = false;
            let slots: Vec<String> = open.keys().map(u16::to_string).collect();
            log_err!(
                "[WARNING] The following slots are open: {}.\n",
                slots.join(",")
            );
        }
        log_info!(">>> Check slots coverage...\n");
        let covered = self.covered_slots().iter().filter(|&&c| c).count();
        if covered == SLOTS {
            log_ok!("[OK] All {SLOTS} slots covered.\n");
        } else {
            self.on_error(format!(
                "[ERR] Not all {SLOTS} slots are covered by nodes.\n"
            ));
            result = false;
        }
        if search_multiple_owners && !self.check_multiple_owners() {
            result = false;
        }
        result
    }

    /// `--cluster-search-multiple-owners`: a master that has keys in a slot it does not own
    /// counts as an owner too.
    fn check_multiple_owners(&mut self) -> bool {
        log_info!(">>> Check for multiple slot owners...\n");
        let mut bad = 0;
        for slot in 0..SLOTS {
            let mut owners = Vec::new();
            for n in &mut self.nodes {
                if n.replica {
                    continue;
                }
                let owns = n.slots[slot]
                    || matches!(
                        n.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
                        Ok(Value::Int(k)) if k > 0
                    );
                if owns {
                    owners.push(n.addr());
                }
            }
            if owners.len() > 1 {
                log_err!("[WARNING] Slot {slot} has {} owners:\n", owners.len());
                for o in &owners {
                    log_err!("    {o}\n");
                }
                bad += 1;
            }
        }
        if bad == 0 {
            log_ok!("[OK] No multiple owners found.\n");
        }
        bad == 0
    }

    /// Polls (every 200 ms) until every loaded node has the same slot configuration,
    /// printing a dot a second like valkey-cli. Unlike valkey-cli it gives up after
    /// `timeout` (false), so scripts cannot hang on a cluster bus that never converges.
    pub fn wait_for_cluster_join(&mut self, timeout: Duration) -> bool {
        println!("Waiting for the cluster to join");
        let start = Instant::now();
        let check_after = Duration::from_secs(20 + (self.nodes.len() as f64 * 0.15) as u64);
        let (mut last_dot, mut last_check) = (start, start);
        while !self.is_config_consistent() {
            if start.elapsed() >= timeout {
                println!();
                self.report_unreachable();
                log_err!(
                    "[ERR] The cluster did not agree on the slots configuration within {} seconds.\n",
                    timeout.as_secs()
                );
                return false;
            }
            if last_dot.elapsed() >= Duration::from_secs(1) {
                print!(".");
                let _ = std::io::stdout().flush();
                last_dot = Instant::now();
            }
            if last_check.elapsed() > check_after {
                self.report_unreachable();
                last_check = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        println!();
        true
    }

    /// Links some node reports as disconnected or still handshaking, grouped by the address
    /// that may be unreachable (valkey-cli's `clusterManagerGetLinkStatus` warning).
    fn report_unreachable(&mut self) {
        let mut status: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in &mut self.nodes {
            let Ok(text) = n.text(&["CLUSTER", "NODES"]) else {
                continue;
            };
            let Ok(lines) = nodes::parse_nodes(&text) else {
                continue;
            };
            for l in lines.iter().filter(|l| !l.is_myself()) {
                let disconnected = l.flags.iter().any(|f| f.contains("disconnected"))
                    || l.link_state.contains("disconnected");
                let handshake = l.flags.iter().any(|f| f.contains("handshake"));
                if disconnected || handshake {
                    let addr = format!("{}:{}@{}", l.ip, l.port, l.bus_port);
                    status.entry(addr).or_default().push(n.addr());
                }
            }
        }
        if status.is_empty() {
            return;
        }
        println!();
        log_err!("Warning: {} node(s) may be unreachable\n", status.len());
        for (addr, from) in status {
            match nodes::parse_address(&addr) {
                Some((ip, _, bus)) if bus != 0 => {
                    log_err!(" - The port {bus} of node {ip} may be unreachable from:\n")
                }
                _ => log_err!(" - Node {addr} may be unreachable from:\n"),
            }
            for f in from {
                log_err!("   {f}\n");
            }
            log_err!(
                "Cluster bus ports must be reachable by every node.\nRemember that cluster bus \
                 ports are different from standard instance ports.\n"
            );
        }
    }
}

//! `Cluster`: N `rockslot-server` nodes built from one [`NodeBuilder`] template with
//! `cluster-enabled yes`, a short `cluster-node-timeout`, and `requirepass`/`masterauth` set to
//! [`CLUSTER_PASSWORD`] (the seed's configuration). Forming the cluster is left to the real tools
//! ([`Cluster::create_with_redis_cli`], [`Cluster::create_with_rockslot_cli`]); the harness only
//! observes it: `CLUSTER NODES` parsed ([`NodeLine`]), the slot signature redis-cli compares
//! (client-surface §2.5), waits for convergence and `cluster_state:ok`, slot owners.
//!
//! Fault injection lives here too: stopping/starting all nodes at once (so no failover starts
//! in between), a corrupt nodes.conf, nodes from a modified template that stay outside the
//! cluster (a wrong bus secret), an interactive CLI on a pseudo-terminal.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use super::*;

/// `requirepass` and `masterauth` of every cluster node, as in the seed's configuration.
pub const CLUSTER_PASSWORD: &str = "valkey";
/// Default `cluster-node-timeout` of test clusters.
pub const DEFAULT_NODE_TIMEOUT_MS: u64 = 3000;
/// Time a tool (`--cluster create`, `check`, benchmark) gets before the harness kills it.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// Cluster

/// Settings for [`Cluster`]; `build` starts the (still unclustered) nodes.
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    n: usize,
    node_timeout_ms: u64,
    template: NodeBuilder,
    /// Each node's data dir on a tmpfs of this size (see [`Cluster::fill_disk`]).
    tmpfs: Option<String>,
}

impl ClusterBuilder {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            node_timeout_ms: DEFAULT_NODE_TIMEOUT_MS,
            template: NodeBuilder::new(),
            tmpfs: None,
        }
    }

    pub fn node_timeout_ms(mut self, ms: u64) -> Self {
        self.node_timeout_ms = ms;
        self
    }

    /// Puts each node's data dir on its own tmpfs of `size` (e.g. "512m"), so a test can fill
    /// it up ([`Cluster::fill_disk`]). Needs root.
    pub fn data_on_tmpfs(mut self, size: &str) -> Self {
        self.tmpfs = Some(size.to_string());
        self
    }

    /// An extra config line for every node.
    pub fn directive(mut self, name: &str, value: &str) -> Self {
        self.template = self.template.directive(name, value);
        self
    }

    /// The node template: seed configuration plus this builder's settings.
    pub fn template(&self) -> NodeBuilder {
        self.template
            .clone()
            .password(CLUSTER_PASSWORD)
            .directive("masterauth", CLUSTER_PASSWORD)
            .directive("cluster-enabled", "yes")
            .directive("cluster-config-file", "nodes.conf")
            .directive("cluster-node-timeout", &self.node_timeout_ms.to_string())
    }

    /// Starts the N nodes in parallel (each empty, knowing only itself).
    pub fn start(self) -> Result<Cluster> {
        let template = self.template();
        let t0 = Instant::now();
        let (mut roots, mut disks) = (Vec::new(), Vec::new());
        let mut builders = Vec::new();
        for _ in 0..self.n {
            let mut b = template.clone();
            if let Some(size) = &self.tmpfs {
                let root = tempfile::Builder::new().prefix("rockslot-it-").tempdir()?;
                disks.push(Some(Tmpfs::mount(&root.path().join("data"), size)?));
                b = b.root(root.path());
                roots.push(root);
            } else {
                disks.push(None);
            }
            builders.push(b);
        }
        let nodes = start_many(builders)?;
        println!(
            "cluster: started {} empty nodes in {:?} (ports {:?})",
            self.n,
            t0.elapsed(),
            nodes.iter().map(Node::port).collect::<Vec<_>>()
        );
        Ok(Cluster {
            nodes,
            template,
            node_timeout: Duration::from_millis(self.node_timeout_ms),
            disks,
            roots,
        })
    }
}

fn start_many(builders: Vec<NodeBuilder>) -> Result<Vec<Node>> {
    let results: Vec<Result<Node>> = thread::scope(|s| {
        let handles: Vec<_> = builders
            .into_iter()
            .map(|b| s.spawn(move || b.start()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("node start panicked")))
            })
            .collect()
    });
    results.into_iter().collect()
}

/// N nodes of one cluster (index = start order = order given to `--cluster create`).
pub struct Cluster {
    /// Dropped first (each SIGKILLs its process), then the tmpfs mounts, then their roots.
    pub nodes: Vec<Node>,
    template: NodeBuilder,
    node_timeout: Duration,
    /// Node i's data tmpfs, if the builder asked for them.
    pub(super) disks: Vec<Option<Tmpfs>>,
    roots: Vec<tempfile::TempDir>,
}

impl Cluster {
    pub fn builder(n: usize) -> ClusterBuilder {
        ClusterBuilder::new(n)
    }

    /// N empty nodes with the default settings.
    pub fn start(n: usize) -> Result<Cluster> {
        ClusterBuilder::new(n).start()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    pub fn node_timeout(&self) -> Duration {
        self.node_timeout
    }

    pub fn template(&self) -> &NodeBuilder {
        &self.template
    }

    /// `127.0.0.1:PORT` of every node.
    pub fn host_ports(&self) -> Vec<String> {
        self.nodes.iter().map(Node::host_port).collect()
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(Node::port).collect()
    }

    pub fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }

    pub fn node_by_port(&self, port: u16) -> Option<&Node> {
        self.nodes.iter().find(|n| n.port() == port)
    }

    /// Starts one more empty node from the template and adds it to the cluster's list (not to
    /// the cluster itself: that is `add-node`'s job); returns its index.
    pub fn add_empty_node(&mut self) -> Result<usize> {
        let node = self.template.clone().start()?;
        self.nodes.push(node);
        self.disks.push(None);
        Ok(self.nodes.len() - 1)
    }

    /// Starts a node from a modified template that is *not* part of the list (e.g. another
    /// bus secret); the caller owns it.
    pub fn start_outsider(&self, f: impl FnOnce(NodeBuilder) -> NodeBuilder) -> Result<Node> {
        f(self.template.clone()).start()
    }

    // ----- forming the cluster with the real tools -----

    /// `redis-cli -a valkey --cluster <args…>` (Debian's redis-cli 7.0.15).
    pub fn redis_cli_cluster(&self, args: &[&str]) -> Result<ToolRun> {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-a", CLUSTER_PASSWORD, "--no-auth-warning", "--cluster"])
            .args(args);
        ToolRun::run(&mut cmd, TOOL_TIMEOUT)
    }

    /// `rockslot-cli -a valkey --cluster <args…>`.
    pub fn rockslot_cli_cluster(&self, args: &[&str]) -> Result<ToolRun> {
        let mut cmd = Command::new(CLI_BIN);
        cmd.args(["-a", CLUSTER_PASSWORD, "--no-auth-warning", "--cluster"])
            .args(args);
        ToolRun::run(&mut cmd, TOOL_TIMEOUT)
    }

    fn create_args(&self, replicas: usize) -> Vec<String> {
        let mut args = vec!["create".to_string()];
        args.extend(self.host_ports());
        args.extend([
            "--cluster-replicas".to_string(),
            replicas.to_string(),
            "--cluster-yes".to_string(),
        ]);
        args
    }

    /// `redis-cli --cluster create <all nodes> --cluster-replicas R --cluster-yes`; fails on a
    /// non-zero exit. Prints how long it took.
    pub fn create_with_redis_cli(&self, replicas: usize) -> Result<ToolRun> {
        let args = self.create_args(replicas);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = self.redis_cli_cluster(&refs)?.ensure_success()?;
        println!(
            "cluster: redis-cli --cluster create ({} nodes, {replicas} replicas) took {:?}",
            self.len(),
            run.elapsed
        );
        Ok(run)
    }

    /// The same with `rockslot-cli --cluster create`.
    pub fn create_with_rockslot_cli(&self, replicas: usize) -> Result<ToolRun> {
        let args = self.create_args(replicas);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = self.rockslot_cli_cluster(&refs)?.ensure_success()?;
        println!(
            "cluster: rockslot-cli --cluster create ({} nodes, {replicas} replicas) took {:?}",
            self.len(),
            run.elapsed
        );
        Ok(run)
    }

    /// Creates with redis-cli and waits until every node agrees and reports `cluster_state:ok`.
    pub fn create_and_wait(&self, replicas: usize) -> Result<ToolRun> {
        let run = self.create_with_redis_cli(replicas)?;
        self.wait_healthy(Duration::from_secs(60))?;
        Ok(run)
    }

    // ----- observing -----

    /// One command on node `i` (fresh authenticated connection); the reply as text.
    pub fn query(&self, i: usize, args: &[&str]) -> Result<String> {
        node_query(&self.nodes[i], args)
    }

    pub fn cluster_nodes_text(&self, i: usize) -> Result<String> {
        self.query(i, &["CLUSTER", "NODES"])
    }

    /// Node `i`'s `CLUSTER NODES`, parsed.
    pub fn cluster_nodes(&self, i: usize) -> Result<Vec<NodeLine>> {
        parse_cluster_nodes(&self.cluster_nodes_text(i)?)
            .with_context(|| format!("CLUSTER NODES of node {i} (port {})", self.nodes[i].port()))
    }

    /// Node `i`'s own line.
    pub fn myself(&self, i: usize) -> Result<NodeLine> {
        self.cluster_nodes(i)?
            .into_iter()
            .find(NodeLine::is_myself)
            .ok_or_else(|| anyhow!("node {i}: no myself line in CLUSTER NODES"))
    }

    pub fn myid(&self, i: usize) -> Result<String> {
        self.query(i, &["CLUSTER", "MYID"])
    }

    pub fn cluster_info(&self, i: usize) -> Result<BTreeMap<String, String>> {
        parse_info(&self.query(i, &["CLUSTER", "INFO"])?)
    }

    pub fn info_field(&self, i: usize, field: &str) -> Result<String> {
        self.cluster_info(i)?
            .remove(field)
            .ok_or_else(|| anyhow!("CLUSTER INFO of node {i} lacks {field}"))
    }

    pub fn known_nodes(&self, i: usize) -> Result<usize> {
        Ok(self.info_field(i, "cluster_known_nodes")?.parse()?)
    }

    /// Index of the node that owns `slot` according to node `view`'s CLUSTER NODES.
    pub fn slot_owner(&self, view: usize, slot: u16) -> Result<usize> {
        let lines = self.cluster_nodes(view)?;
        let owner = lines
            .iter()
            .find(|l| l.owns(slot))
            .ok_or_else(|| anyhow!("node {view}: nobody owns slot {slot}"))?;
        self.index_of_port(owner.port)
            .ok_or_else(|| anyhow!("slot {slot} owner {} is not one of ours", owner.addr))
    }

    pub fn key_owner(&self, key: &str) -> Result<usize> {
        self.slot_owner(0, key_slot(key.as_bytes()))
    }

    /// Indices of the nodes that node `view` shows as masters / replicas.
    pub fn masters(&self, view: usize) -> Result<Vec<usize>> {
        self.role_indices(view, true)
    }

    pub fn replicas(&self, view: usize) -> Result<Vec<usize>> {
        self.role_indices(view, false)
    }

    fn role_indices(&self, view: usize, masters: bool) -> Result<Vec<usize>> {
        let mut out = Vec::new();
        for l in self.cluster_nodes(view)? {
            if l.is_master() == masters {
                if let Some(i) = self.index_of_port(l.port) {
                    out.push(i);
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Why the nodes do not agree yet (`None` = converged): every node shows every node of
    /// the list exactly once, none in handshake/fail/noaddr, every link `connected`, with the
    /// same id, address, role, master and slots, and the slot signatures redis-cli compares
    /// are identical and non-empty.
    pub fn divergence(&self) -> Option<String> {
        let mut first: Option<(usize, BTreeSet<String>, String)> = None;
        for i in 0..self.len() {
            let lines = match self.cluster_nodes(i) {
                Ok(l) => l,
                Err(e) => return Some(format!("node {i}: {e:#}")),
            };
            if lines.len() != self.len() {
                return Some(format!(
                    "node {i} knows {} nodes, expected {}",
                    lines.len(),
                    self.len()
                ));
            }
            if let Some(bad) = lines.iter().find(|l| {
                l.has_flag("handshake")
                    || l.has_flag("fail")
                    || l.has_flag("fail?")
                    || l.has_flag("noaddr")
            }) {
                return Some(format!(
                    "node {i} shows {} as {}",
                    bad.addr,
                    bad.flags.join(",")
                ));
            }
            if let Some(bad) = lines.iter().find(|l| l.link != "connected") {
                return Some(format!(
                    "node {i} shows {}'s link as {}",
                    bad.addr, bad.link
                ));
            }
            let Some(sig) = slots_signature(&lines) else {
                return Some(format!("node {i} shows no slot owner"));
            };
            let view: BTreeSet<String> = lines.iter().map(NodeLine::stable_view).collect();
            match &first {
                None => first = Some((i, view, sig)),
                Some((j, v0, s0)) => {
                    if *s0 != sig {
                        return Some(format!(
                            "slot signatures differ: node {j} {s0:?} vs node {i} {sig:?}"
                        ));
                    }
                    if *v0 != view {
                        return Some(format!(
                            "views differ: node {j} {:?} vs node {i} {:?}",
                            v0.difference(&view).collect::<Vec<_>>(),
                            view.difference(v0).collect::<Vec<_>>()
                        ));
                    }
                }
            }
        }
        None
    }

    /// Waits until [`Self::divergence`] is `None`; returns how long it took.
    pub fn wait_converged(&self, timeout: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        let mut last = String::new();
        let res = try_wait_until_every(
            timeout,
            Duration::from_millis(100),
            "cluster to converge",
            || match self.divergence() {
                None => Ok(true),
                Some(why) => {
                    last = why;
                    Ok(false)
                }
            },
        );
        res.map_err(|e| anyhow!("{e:#}; last difference: {last}"))?;
        Ok(t0.elapsed())
    }

    /// Waits until every node reports `cluster_state:ok`.
    pub fn wait_state_ok(&self, timeout: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        let mut last = String::new();
        let res = try_wait_until_every(
            timeout,
            Duration::from_millis(100),
            "cluster_state:ok on every node",
            || {
                for i in 0..self.len() {
                    let state = self
                        .info_field(i, "cluster_state")
                        .unwrap_or_else(|e| format!("{e:#}"));
                    if state != "ok" {
                        last = format!("node {i}: cluster_state {state}");
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        );
        res.map_err(|e| anyhow!("{e:#}; last: {last}"))?;
        Ok(t0.elapsed())
    }

    /// Converged and `cluster_state:ok` everywhere; returns the total wait.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        self.wait_converged(timeout)?;
        self.wait_state_ok(
            timeout
                .saturating_sub(t0.elapsed())
                .max(Duration::from_secs(1)),
        )?;
        Ok(t0.elapsed())
    }

    /// Waits until every node has heard a PONG from every other node at or after `since_ms`
    /// (unix ms): the bus really works again, not just the views loaded from nodes.conf.
    pub fn wait_pongs_since(&self, since_ms: u64, timeout: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        let mut last = String::new();
        let res = try_wait_until_every(
            timeout,
            Duration::from_millis(100),
            "fresh PONGs between all nodes",
            || {
                for i in 0..self.len() {
                    let lines = match self.cluster_nodes(i) {
                        Ok(l) => l,
                        Err(e) => {
                            last = format!("node {i}: {e:#}");
                            return Ok(false);
                        }
                    };
                    let stale = lines.iter().find(|l| {
                        !l.is_myself() && (l.pong_recv < since_ms || l.link != "connected")
                    });
                    if let Some(l) = stale {
                        last = format!(
                            "node {i}: {} pong_recv {} link {}",
                            l.addr, l.pong_recv, l.link
                        );
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        );
        res.map_err(|e| anyhow!("{e:#}; last: {last}"))?;
        Ok(t0.elapsed())
    }

    /// Every node's view, for comparisons across a restart: port → sorted stable views.
    pub fn views(&self) -> Result<BTreeMap<u16, Vec<String>>> {
        let mut out = BTreeMap::new();
        for i in 0..self.len() {
            let mut v: Vec<String> = self
                .cluster_nodes(i)?
                .iter()
                .map(|l| {
                    format!(
                        "{}{}",
                        if l.is_myself() { "myself " } else { "" },
                        l.stable_view()
                    )
                })
                .collect();
            v.sort();
            out.insert(self.nodes[i].port(), v);
        }
        Ok(out)
    }

    // ----- faults -----

    /// SIGTERM to every node at once, then waits for all to exit; fails if any exit is not
    /// clean.
    pub fn stop_all(&mut self) -> Result<Duration> {
        let t0 = Instant::now();
        let results: Vec<Result<ExitStatus>> = thread::scope(|s| {
            let handles: Vec<_> = self
                .nodes
                .iter_mut()
                .map(|n| s.spawn(move || n.stop()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("stop panicked"))))
                .collect()
        });
        for (i, r) in results.into_iter().enumerate() {
            let st = r.with_context(|| format!("stopping node {i}"))?;
            ensure!(st.success(), "node {i} exited with {st} after SIGTERM");
        }
        Ok(t0.elapsed())
    }

    /// Starts every node again (same ports, dirs, config) in parallel and waits until each
    /// answers PING.
    pub fn start_all(&mut self) -> Result<Duration> {
        let t0 = Instant::now();
        let results: Vec<Result<Duration>> = thread::scope(|s| {
            let handles: Vec<_> = self
                .nodes
                .iter_mut()
                .map(|n| s.spawn(move || n.restart()))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("restart panicked")))
                })
                .collect()
        });
        for (i, r) in results.into_iter().enumerate() {
            r.with_context(|| format!("restarting node {i}"))?;
        }
        Ok(t0.elapsed())
    }

    pub fn nodes_conf_path(&self, i: usize) -> PathBuf {
        self.nodes[i].dir().join("nodes.conf")
    }

    /// Replaces line `line` (1-based) of the stopped node `i`'s nodes.conf with `junk`;
    /// returns the original text so it can be put back.
    pub fn corrupt_nodes_conf(&mut self, i: usize, line: usize, junk: &str) -> Result<String> {
        ensure!(
            !self.nodes[i].is_running(),
            "node {i} must be stopped first"
        );
        let path = self.nodes_conf_path(i);
        let original =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines: Vec<&str> = original.lines().collect();
        ensure!(
            line >= 1 && line <= lines.len(),
            "{} has only {} lines",
            path.display(),
            lines.len()
        );
        lines[line - 1] = junk;
        fs::write(&path, format!("{}\n", lines.join("\n")))?;
        Ok(original)
    }

    pub fn restore_nodes_conf(&self, i: usize, text: &str) -> Result<()> {
        fs::write(self.nodes_conf_path(i), text)?;
        Ok(())
    }

    // ----- clients -----

    /// A `redis` crate cluster client seeded with every node (password from the URLs).
    pub fn client(&self) -> Result<redis::cluster::ClusterClient> {
        let urls: Vec<String> = self.nodes.iter().map(Node::url).collect();
        Ok(redis::cluster::ClusterClientBuilder::new(urls)
            .connection_timeout(Duration::from_secs(5))
            .response_timeout(Duration::from_secs(30))
            .build()?)
    }

    /// A sync cluster connection.
    pub fn conn(&self) -> Result<redis::cluster::ClusterConnection> {
        Ok(self.client()?.get_connection()?)
    }

    /// `redis-cli` (or any CLI) interactively on a pseudo-terminal, connected to node `i`.
    pub fn interactive_cli(&self, program: &str, i: usize, extra: &[&str]) -> Result<Interactive> {
        let mut argv = vec![
            program.to_string(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.nodes[i].port().to_string(),
            "-a".into(),
            CLUSTER_PASSWORD.into(),
            "--no-auth-warning".into(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        Interactive::spawn(&argv)
    }

    /// Log tails of every node (for failure messages).
    pub fn log_tails(&self, n: usize) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                format!(
                    "--- node {i} (port {}) ---\n{}",
                    node.port(),
                    node.log_tail(n)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One command on `node` over a fresh authenticated connection; the reply as text (bulk,
/// status, integer); an error reply is an `Err`.
pub fn node_query(node: &Node, args: &[&str]) -> Result<String> {
    let mut con = node.conn()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let v: redis::Value = cmd
        .query(&mut con)
        .with_context(|| format!("{args:?} on port {}", node.port()))?;
    value_text(&v)
}

/// Text of a scalar reply.
pub fn value_text(v: &redis::Value) -> Result<String> {
    Ok(match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Okay => "OK".into(),
        redis::Value::Int(i) => i.to_string(),
        redis::Value::VerbatimString { text, .. } => text.clone(),
        redis::Value::Nil => String::new(),
        other => bail!("unexpected reply {other:?}"),
    })
}

/// One raw command on a fresh authenticated raw connection; the exact reply bytes.
pub fn raw_query(node: &Node, args: &[&str]) -> Result<Vec<u8>> {
    node.raw_authed()?.cmd(args)
}

/// Unix time in milliseconds (the unit of CLUSTER NODES ping/pong fields).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

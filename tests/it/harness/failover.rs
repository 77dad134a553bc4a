//! Replication and failover observation and faults: `INFO replication` of a node, waits for a
//! slot to be served by a given primary in every live node's view and for a node to replicate
//! another with its link up, a bus-level partition (`DEBUG CLUSTER-ISOLATE`), reading many keys
//! back from their owners, and [`AckWriter`]: writer threads on cluster clients that record
//! every acknowledged SET, so a test can count acknowledged writes lost by a failover.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use super::*;

// ---------------------------------------------------------------------------------------------
// One node

impl Node {
    /// `INFO <section>` parsed into fields.
    pub fn info_section(&self, section: &str) -> Result<BTreeMap<String, String>> {
        parse_info(&node_query(self, &["INFO", section])?)
    }

    /// `INFO replication` parsed.
    pub fn info_replication(&self) -> Result<BTreeMap<String, String>> {
        self.info_section("replication")
    }

    /// One `INFO replication` field (`None` if absent or the node does not answer).
    pub fn repl_field(&self, field: &str) -> Option<String> {
        self.info_replication().ok()?.remove(field)
    }

    pub fn dbsize(&self) -> Result<u64> {
        Ok(node_query(self, &["DBSIZE"])?.parse()?)
    }

    /// The harness started this process and has not killed or stopped it.
    pub fn is_up(&self) -> bool {
        self.pid().is_some()
    }

    /// How many lines of the log (all runs) contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// The first log line containing `needle`.
    pub fn log_line(&self, needle: &str) -> Option<String> {
        self.log()
            .lines()
            .find(|l| l.contains(needle))
            .map(String::from)
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster: roles, slots, partitions

impl Cluster {
    /// Indices of the nodes the harness has running.
    pub fn live(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.nodes[i].is_up()).collect()
    }

    /// Live nodes other than `except`.
    pub fn live_except(&self, except: &[usize]) -> Vec<usize> {
        self.live()
            .into_iter()
            .filter(|i| !except.contains(i))
            .collect()
    }

    /// Indices of the replicas of node `primary` according to node `view`.
    pub fn replicas_of(&self, view: usize, primary: usize) -> Result<Vec<usize>> {
        let lines = self.cluster_nodes(view)?;
        let pid = lines
            .iter()
            .find(|l| l.port == self.nodes[primary].port())
            .map(|l| l.id.clone())
            .ok_or_else(|| anyhow!("node {view} does not know node {primary}"))?;
        let mut out: Vec<usize> = lines
            .iter()
            .filter(|l| l.is_replica() && l.master.as_deref() == Some(pid.as_str()))
            .filter_map(|l| self.index_of_port(l.port))
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// The one replica of `primary` (seed layout: 3 + 3).
    pub fn replica_of(&self, view: usize, primary: usize) -> Result<usize> {
        let r = self.replicas_of(view, primary)?;
        ensure!(
            r.len() == 1,
            "node {view} shows replicas {r:?} for node {primary}, expected exactly one"
        );
        Ok(r[0])
    }

    /// Why node `view` does not (yet) show node `owner` as the healthy master owning `slot`
    /// alone; `None` when it does.
    pub fn slot_not_served_by(&self, view: usize, slot: u16, owner: usize) -> Option<String> {
        let lines = match self.cluster_nodes(view) {
            Ok(l) => l,
            Err(e) => return Some(format!("node {view}: {e:#}")),
        };
        let port = self.nodes[owner].port();
        let Some(me) = lines.iter().find(|l| l.port == port) else {
            return Some(format!("node {view} does not know node {owner}"));
        };
        if !me.is_master() || !me.owns(slot) || me.has_flag("fail") || me.has_flag("fail?") {
            return Some(format!(
                "node {view} shows node {owner} as {} owning slot {slot}: {}",
                me.flags.join(","),
                me.owns(slot)
            ));
        }
        if let Some(other) = lines.iter().find(|l| l.port != port && l.owns(slot)) {
            return Some(format!(
                "node {view} also shows {} owning slot {slot}",
                other.addr
            ));
        }
        None
    }

    /// Waits until every node of `views` shows `owner` as the master serving `slot`; returns
    /// how long that took.
    pub fn wait_slot_served_by(
        &self,
        slot: u16,
        owner: usize,
        views: &[usize],
        timeout: Duration,
    ) -> Result<Duration> {
        let t0 = Instant::now();
        let mut last = String::new();
        let res = try_wait_until_every(
            timeout,
            Duration::from_millis(50),
            &format!("node {owner} to serve slot {slot} in the views of {views:?}"),
            || {
                for &v in views {
                    if let Some(why) = self.slot_not_served_by(v, slot, owner) {
                        last = why;
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        );
        res.map_err(|e| anyhow!("{e:#}; last: {last}"))?;
        Ok(t0.elapsed())
    }

    /// Why node `replica` is not (yet) a replica of `primary` with a live link: `INFO
    /// replication` (role, master_host/port, link status) and its own CLUSTER NODES line.
    pub fn not_replicating(&self, replica: usize, primary: usize) -> Option<String> {
        let info = match self.nodes[replica].info_replication() {
            Ok(i) => i,
            Err(e) => return Some(format!("node {replica}: {e:#}")),
        };
        let get = |f: &str| info.get(f).map(String::as_str).unwrap_or("<absent>");
        let port = self.nodes[primary].port().to_string();
        if get("role") != "slave"
            || get("master_host") != "127.0.0.1"
            || get("master_port") != port
            || get("master_link_status") != "up"
        {
            return Some(format!(
                "node {replica}: role {} master {}:{} link {} (want slave of 127.0.0.1:{port}, up)",
                get("role"),
                get("master_host"),
                get("master_port"),
                get("master_link_status")
            ));
        }
        let me = match self.myself(replica) {
            Ok(l) => l,
            Err(e) => return Some(format!("{e:#}")),
        };
        let pid = match self.cluster_nodes(replica).map(|ls| {
            ls.into_iter()
                .find(|l| l.port == self.nodes[primary].port())
                .map(|l| l.id)
        }) {
            Ok(Some(id)) => id,
            Ok(None) => return Some(format!("node {replica} does not know node {primary}")),
            Err(e) => return Some(format!("{e:#}")),
        };
        if !me.is_replica() || me.master.as_deref() != Some(pid.as_str()) {
            return Some(format!(
                "node {replica}'s CLUSTER NODES myself line: {} master {:?} (want slave of {pid})",
                me.flags.join(","),
                me.master
            ));
        }
        None
    }

    /// Waits until [`Self::not_replicating`] is `None`.
    pub fn wait_replicating(
        &self,
        replica: usize,
        primary: usize,
        timeout: Duration,
    ) -> Result<Duration> {
        let t0 = Instant::now();
        let mut last = String::new();
        let res = try_wait_until_every(
            timeout,
            Duration::from_millis(100),
            &format!("node {replica} to replicate node {primary}"),
            || match self.not_replicating(replica, primary) {
                None => Ok(true),
                Some(why) => {
                    last = why;
                    Ok(false)
                }
            },
        );
        res.map_err(|e| anyhow!("{e:#}; last: {last}"))?;
        Ok(t0.elapsed())
    }

    /// Waits until every replica in node `view`'s CLUSTER NODES replicates its master with
    /// the link up (e.g. before synchronous-mode writes, which need a replica's ack).
    pub fn wait_all_replicating(&self, view: usize, timeout: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        let lines = self.cluster_nodes(view)?;
        for l in lines.iter().filter(|l| l.is_replica()) {
            let r = self
                .index_of_port(l.port)
                .ok_or_else(|| anyhow!("replica {} is not ours", l.addr))?;
            let m = lines
                .iter()
                .find(|m| Some(m.id.as_str()) == l.master.as_deref())
                .and_then(|m| self.index_of_port(m.port))
                .ok_or_else(|| anyhow!("master of {} unknown", l.addr))?;
            self.wait_replicating(r, m, timeout.saturating_sub(t0.elapsed()))?;
        }
        Ok(t0.elapsed())
    }

    /// Waits until nodes `a` and `b` report the same, non-zero-if-`a`-has-keys DBSIZE.
    pub fn wait_same_dbsize(
        &self,
        a: usize,
        b: usize,
        timeout: Duration,
    ) -> Result<(u64, Duration)> {
        let t0 = Instant::now();
        let mut last = (0, 0);
        let res = try_wait_until_every(
            timeout,
            Duration::from_millis(100),
            &format!("DBSIZE of node {a} and node {b} to match"),
            || {
                let (x, y) = match (self.nodes[a].dbsize(), self.nodes[b].dbsize()) {
                    (Ok(x), Ok(y)) => (x, y),
                    _ => return Ok(false),
                };
                last = (x, y);
                Ok(x == y)
            },
        );
        res.map_err(|e| anyhow!("{e:#}; last DBSIZEs: {} vs {}", last.0, last.1))?;
        Ok((last.0, t0.elapsed()))
    }

    /// Waits until nodes `a` and `b` hold the same data under slots `first..=last` (their
    /// `DEBUG DIGEST-SLOT` digests match) and `a` holds some; returns the digest.
    pub fn wait_same_slots(
        &self,
        a: usize,
        b: usize,
        (first, last): (u16, u16),
        timeout: Duration,
    ) -> Result<String> {
        let (f, l) = (first.to_string(), last.to_string());
        let digest = |i: usize| self.query(i, &["DEBUG", "DIGEST-SLOT", &f, &l]);
        let mut seen = (String::new(), String::new());
        let res = try_wait_until_every(
            timeout,
            Duration::from_millis(100),
            &format!("slots {first}-{last} of node {a} and node {b} to match"),
            || {
                let (Ok(x), Ok(y)) = (digest(a), digest(b)) else {
                    return Ok(false);
                };
                seen = (x, y);
                Ok(seen.0 == seen.1 && seen.0 != "0".repeat(40))
            },
        );
        res.map_err(|e| anyhow!("{e:#}; last digests: {} vs {}", seen.0, seen.1))?;
        Ok(seen.0)
    }

    /// Bus-level partition: node `i` drops every cluster-bus message, both ways
    /// (`DEBUG CLUSTER-ISOLATE yes`); client connections keep working.
    pub fn isolate(&self, i: usize) -> Result<()> {
        let r = self.query(i, &["DEBUG", "CLUSTER-ISOLATE", "yes"])?;
        ensure!(r == "OK", "DEBUG CLUSTER-ISOLATE yes on node {i}: {r}");
        Ok(())
    }

    /// Ends [`Self::isolate`].
    pub fn heal(&self, i: usize) -> Result<()> {
        let r = self.query(i, &["DEBUG", "CLUSTER-ISOLATE", "no"])?;
        ensure!(r == "OK", "DEBUG CLUSTER-ISOLATE no on node {i}: {r}");
        Ok(())
    }

    /// `count` keys (`prefix` + counter) whose slots node `view` shows owned by node `owner`.
    pub fn keys_owned_by(
        &self,
        view: usize,
        owner: usize,
        prefix: &str,
        count: usize,
    ) -> Result<Vec<String>> {
        let lines = self.cluster_nodes(view)?;
        let port = self.nodes[owner].port();
        let line = lines
            .iter()
            .find(|l| l.port == port)
            .ok_or_else(|| anyhow!("node {view} does not know node {owner}"))?;
        ensure!(
            line.slot_count() > 0,
            "node {owner} owns no slot per node {view}"
        );
        Ok((0u64..)
            .map(|n| format!("{prefix}{n}"))
            .filter(|k| line.owns(key_slot(k.as_bytes())))
            .take(count)
            .collect())
    }

    /// One key whose slot node `view` shows owned by node `owner`.
    pub fn key_owned_by(&self, view: usize, owner: usize, prefix: &str) -> Result<String> {
        Ok(self.keys_owned_by(view, owner, prefix, 1)?.remove(0))
    }

    /// Writes one key (`prefix` + counter) into each of the `ranges` equal slot ranges that
    /// cover the 16384 slots, through the cluster client, then waits until every replica holds
    /// as many keys as its master. With `ranges` = the storage's slot-range families (128 by
    /// default) every node then has every family it will need, so later measurements see the
    /// steady state rather than family creation.
    pub fn touch_every_slot_range(
        &self,
        prefix: &str,
        ranges: u16,
        timeout: Duration,
    ) -> Result<Duration> {
        let t0 = Instant::now();
        let width = SLOTS / ranges;
        let mut keys: Vec<Option<String>> = vec![None; usize::from(ranges)];
        let mut n = 0u64;
        while keys.iter().any(Option::is_none) {
            let k = format!("{prefix}{n}");
            n += 1;
            let r = usize::from(key_slot(k.as_bytes()) / width);
            if r < keys.len() && keys[r].is_none() {
                keys[r] = Some(k);
            }
            ensure!(n < 10_000_000, "could not cover every slot range");
        }
        let mut con = self.failover_client()?;
        for k in keys.into_iter().flatten() {
            con.set(&k, "warm")?;
        }
        let lines = self.cluster_nodes(0)?;
        for l in lines.iter().filter(|l| l.is_replica()) {
            let (Some(r), Some(m)) = (
                self.index_of_port(l.port),
                lines
                    .iter()
                    .find(|m| Some(m.id.as_str()) == l.master.as_deref())
                    .and_then(|m| self.index_of_port(m.port)),
            ) else {
                bail!("replica {} or its master is not ours", l.addr);
            };
            self.wait_same_dbsize(m, r, timeout.saturating_sub(t0.elapsed()))?;
        }
        Ok(t0.elapsed())
    }

    /// Reads `keys` from the masters that own them per node `view` (pipelined GETs, straight
    /// to each owner: no redirects); `None` for a missing key.
    pub fn fetch_values(&self, view: usize, keys: &[String]) -> Result<Vec<Option<String>>> {
        let lines = self.cluster_nodes(view)?;
        let mut by_owner: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for (n, k) in keys.iter().enumerate() {
            let slot = key_slot(k.as_bytes());
            let owner = lines
                .iter()
                .find(|l| l.is_master() && l.owns(slot))
                .ok_or_else(|| anyhow!("node {view}: nobody owns slot {slot}"))?;
            by_owner.entry(owner.port).or_default().push(n);
        }
        let mut out = vec![None; keys.len()];
        for (port, idx) in by_owner {
            let node = self
                .node_by_port(port)
                .ok_or_else(|| anyhow!("owner port {port} is not ours"))?;
            let mut con = node.conn()?;
            for chunk in idx.chunks(2000) {
                let mut p = redis::pipe();
                for &n in chunk {
                    p.cmd("GET").arg(&keys[n]);
                }
                let vals: Vec<Option<String>> = p
                    .query(&mut con)
                    .with_context(|| format!("pipelined GETs on port {port}"))?;
                for (&n, v) in chunk.iter().zip(vals) {
                    out[n] = v;
                }
            }
        }
        Ok(out)
    }

    /// The acknowledged writes whose key is missing (or holds another value) in the cluster,
    /// read per node `view`'s slot map.
    pub fn missing_acked(&self, view: usize, acked: &[Ack]) -> Result<Vec<Ack>> {
        let keys: Vec<String> = acked.iter().map(|a| a.key.clone()).collect();
        let vals = self.fetch_values(view, &keys)?;
        Ok(acked
            .iter()
            .zip(vals)
            .filter(|(a, v)| v.as_deref() != Some(a.value.as_str()))
            .map(|(a, _)| a.clone())
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// A cluster client that survives a failover

/// The `redis` crate's *async* cluster connection driven from a synchronous test through its
/// own current-thread runtime.
///
/// Why not the sync `ClusterConnection`: when a primary dies, the sync client retries
/// "connection refused" against the cached (dead) address without ever refreshing its slot
/// map, so it fails until it happens to see a MOVED (redis 1.8 `sync_connection`:
/// `RetryMethod::RetryImmediately` for I/O errors). The async client falls back to another
/// node of the shard or a random one, gets MOVED and rebuilds its map, as applications see it.
pub struct FailoverClient {
    rt: tokio::runtime::Runtime,
    con: redis::cluster_async::ClusterConnection,
}

impl FailoverClient {
    /// Connects with the given client settings.
    pub fn connect(client: &redis::cluster::ClusterClient) -> Result<FailoverClient> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let con = rt
            .block_on(client.get_async_connection())
            .context("async cluster connection")?;
        Ok(FailoverClient { rt, con })
    }

    pub fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let con = &mut self.con;
        self.rt.block_on(cmd.query_async(con))
    }

    pub fn set(&mut self, key: &str, value: &str) -> redis::RedisResult<()> {
        self.query(redis::cmd("SET").arg(key).arg(value))
    }

    pub fn get(&mut self, key: &str) -> redis::RedisResult<Option<String>> {
        self.query(redis::cmd("GET").arg(key))
    }
}

impl Cluster {
    /// A [`FailoverClient`] seeded with every live node (default retry settings).
    pub fn failover_client(&self) -> Result<FailoverClient> {
        let urls: Vec<String> = self.live().iter().map(|&i| self.node(i).url()).collect();
        let client = redis::cluster::ClusterClientBuilder::new(urls)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(10))
            .build()?;
        FailoverClient::connect(&client)
    }
}

// ---------------------------------------------------------------------------------------------
// Acknowledged-write recorder

/// One acknowledged write: the reply to `SET key value` was `OK`.
#[derive(Clone, Debug)]
pub struct Ack {
    pub key: String,
    pub value: String,
    pub slot: u16,
    /// When the acknowledgement arrived.
    pub at: Instant,
}

/// What the writer threads did.
#[derive(Debug)]
pub struct WriterReport {
    pub acked: Vec<Ack>,
    /// SETs that got an error: they may or may not have landed.
    pub uncertain: Vec<Ack>,
    /// SETs that got an error (never acknowledged: their outcome is unknown).
    pub errors: u64,
    /// The first few distinct error texts.
    pub error_samples: Vec<String>,
    pub elapsed: Duration,
}

struct Shared {
    stop: AtomicBool,
    acked: Mutex<Vec<Ack>>,
    uncertain: Mutex<Vec<Ack>>,
    errors: AtomicU64,
    samples: Mutex<Vec<String>>,
}

/// `threads` threads, each with its own [`FailoverClient`] (the `redis` crate's async cluster
/// connection: follows MOVED, retries TRYAGAIN/CLUSTERDOWN/connection errors, rebuilds its slot
/// map), each SETting
/// unique keys `prefix:thread:seq` to unique values in a loop and recording every `OK`.
/// Retries are bounded so a stop takes seconds, not minutes.
pub struct AckWriter {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    t0: Instant,
}

impl AckWriter {
    pub fn start(cluster: &Cluster, prefix: &str, threads: usize) -> Result<AckWriter> {
        Self::start_cycling(cluster, prefix, threads, u64::MAX)
    }

    /// Like [`AckWriter::start`], but each thread overwrites its keys `prefix:thread:(seq % cycle)`
    /// again and again: the last acknowledged value of each key is what must survive
    /// (see [`last_acked`]).
    pub fn start_cycling(
        cluster: &Cluster,
        prefix: &str,
        threads: usize,
        cycle: u64,
    ) -> Result<AckWriter> {
        let urls: Vec<String> = cluster
            .live()
            .iter()
            .map(|&i| cluster.node(i).url())
            .collect();
        let client = redis::cluster::ClusterClientBuilder::new(urls)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(10))
            .retries(5)
            .min_retry_wait(100)
            .max_retry_wait(1000)
            .build()?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            acked: Mutex::new(Vec::new()),
            uncertain: Mutex::new(Vec::new()),
            errors: AtomicU64::new(0),
            samples: Mutex::new(Vec::new()),
        });
        let mut handles = Vec::new();
        for t in 0..threads {
            let mut con = FailoverClient::connect(&client).context("writer")?;
            let sh = Arc::clone(&shared);
            let prefix = prefix.to_string();
            handles.push(
                thread::Builder::new()
                    .name(format!("ack-writer-{t}"))
                    .spawn(move || {
                        let mut seq: u64 = 0;
                        while !sh.stop.load(Ordering::Relaxed) {
                            let key = format!("{prefix}:{t}:{}", seq % cycle);
                            let value = format!("v{t}.{seq}.{}", unix_ms());
                            seq += 1;
                            let r: redis::RedisResult<redis::Value> =
                                con.query(redis::cmd("SET").arg(&key).arg(&value));
                            match r {
                                Ok(redis::Value::Okay) => {
                                    let slot = key_slot(key.as_bytes());
                                    let at = Instant::now();
                                    if let Ok(mut a) = sh.acked.lock() {
                                        a.push(Ack {
                                            key,
                                            value,
                                            slot,
                                            at,
                                        });
                                    }
                                }
                                other => {
                                    sh.errors.fetch_add(1, Ordering::Relaxed);
                                    if let Ok(mut u) = sh.uncertain.lock() {
                                        let slot = key_slot(key.as_bytes());
                                        let at = Instant::now();
                                        u.push(Ack {
                                            key,
                                            value,
                                            slot,
                                            at,
                                        });
                                    }
                                    let text = match other {
                                        Ok(v) => format!("unexpected reply {v:?}"),
                                        Err(e) => e.to_string(),
                                    };
                                    if let Ok(mut s) = sh.samples.lock() {
                                        if s.len() < 8 && !s.contains(&text) {
                                            s.push(text);
                                        }
                                    }
                                    // Back off a little; the connection refreshes its map.
                                    thread::sleep(Duration::from_millis(20));
                                }
                            }
                        }
                    })?,
            );
        }
        Ok(AckWriter {
            shared,
            handles,
            t0: Instant::now(),
        })
    }

    pub fn acked_count(&self) -> usize {
        self.shared.acked.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Acknowledgements received after `since` that satisfy `pred`.
    pub fn acked_after(&self, since: Instant, pred: impl Fn(&Ack) -> bool) -> usize {
        self.shared
            .acked
            .lock()
            .map(|a| a.iter().filter(|x| x.at > since && pred(x)).count())
            .unwrap_or(0)
    }

    pub fn errors(&self) -> u64 {
        self.shared.errors.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` acknowledgements after `since` satisfy `pred`.
    pub fn wait_acked_after(
        &self,
        since: Instant,
        n: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Ack) -> bool,
    ) -> Result<Duration> {
        let t0 = Instant::now();
        try_wait_until_every(timeout, Duration::from_millis(20), what, || {
            Ok(self.acked_after(since, &pred) >= n)
        })
        .map_err(|e| anyhow!("{e:#}; writer errors so far: {:?}", self.error_samples()))?;
        Ok(t0.elapsed())
    }

    pub fn error_samples(&self) -> Vec<String> {
        self.shared
            .samples
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Stops the threads and waits (up to `timeout`) for their in-flight SETs to finish.
    pub fn stop(mut self, timeout: Duration) -> Result<WriterReport> {
        self.shared.stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        for h in self.handles.drain(..) {
            while !h.is_finished() {
                if Instant::now() >= deadline {
                    bail!("writer threads still busy {timeout:?} after being told to stop");
                }
                thread::sleep(Duration::from_millis(20));
            }
            h.join().map_err(|_| anyhow!("writer thread panicked"))?;
        }
        let acked =
            std::mem::take(&mut *self.shared.acked.lock().map_err(|_| anyhow!("poisoned"))?);
        let uncertain = std::mem::take(
            &mut *self
                .shared
                .uncertain
                .lock()
                .map_err(|_| anyhow!("poisoned"))?,
        );
        Ok(WriterReport {
            acked,
            uncertain,
            errors: self.shared.errors.load(Ordering::Relaxed),
            error_samples: self.error_samples(),
            elapsed: self.t0.elapsed(),
        })
    }
}

impl Drop for AckWriter {
    fn drop(&mut self) {
        // A failing test must not leave threads hammering dead ports.
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// The last acknowledgement of every key (one thread writes a key, so its acknowledgements
/// are in write order).
impl WriterReport {
    /// The keys whose last acknowledged value is gone: a key may instead hold the value of a
    /// later SET that got an error (its outcome was unknown, so it may have landed).
    pub fn lost(&self, c: &Cluster, view: usize) -> Result<Vec<Ack>> {
        let missing = c.missing_acked(view, &last_acked(&self.acked))?;
        let keys: Vec<String> = missing.iter().map(|a| a.key.clone()).collect();
        let got = c.fetch_values(view, &keys)?;
        Ok(missing
            .into_iter()
            .zip(got)
            .filter(|(a, g)| {
                !self.uncertain.iter().any(|u| {
                    u.key == a.key && u.at > a.at && g.as_deref() == Some(u.value.as_str())
                })
            })
            .map(|(a, _)| a)
            .collect())
    }
}

pub fn last_acked(acked: &[Ack]) -> Vec<Ack> {
    let mut last: BTreeMap<&str, &Ack> = BTreeMap::new();
    for a in acked {
        last.insert(&a.key, a);
    }
    last.into_values().cloned().collect()
}

/// A deterministic, incompressible value of `len` bytes for index `i` (xorshift64*), so a
/// loaded dataset really takes its size on disk and on the wire.
pub fn incompressible_value(i: u64, len: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(len);
    v
}

// ---------------------------------------------------------------------------------------------
// Reply trace

/// One run of identical replies in a [`ReplyTrace`].
#[derive(Clone, Debug)]
pub struct ReplyRun {
    /// Since the trace started, when the run began.
    pub from: Duration,
    /// The reply's first line (`+OK`, `-MOVED 12 127.0.0.1:7001`, …) or a connection error.
    pub reply: String,
    pub count: u64,
}

/// A thread that sends the same command to one node over and over (one authenticated raw
/// connection, reopened if it breaks), every `every`, and records the replies as runs: what
/// a client pinned to that node sees through a failover.
pub struct ReplyTrace {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<ReplyRun>>>,
}

impl ReplyTrace {
    pub fn start(node: &Node, args: &[&str], every: Duration) -> ReplyTrace {
        let addr = node.addr();
        let password = node.password().map(String::from);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let t0 = Instant::now();
            let mut runs: Vec<ReplyRun> = Vec::new();
            let mut con: Option<RawConn> = None;
            while !st.load(Ordering::Relaxed) {
                let reply = (|| -> Result<String> {
                    if con.is_none() {
                        let c = RawConn::connect_with_timeout(addr, Duration::from_millis(500))?;
                        c.set_timeout(Duration::from_secs(5))?;
                        let mut c = c;
                        if let Some(pw) = &password {
                            c.cmd(&["AUTH", pw.as_str()])?;
                        }
                        con = Some(c);
                    }
                    let c = con.as_mut().expect("just set");
                    let r = c.cmd(&args)?;
                    let text = String::from_utf8_lossy(&r).into_owned();
                    Ok(text.lines().next().unwrap_or("").to_string())
                })()
                .unwrap_or_else(|e| {
                    con = None;
                    format!("<{}>", e.root_cause())
                });
                match runs.last_mut() {
                    Some(last) if last.reply == reply => last.count += 1,
                    _ => runs.push(ReplyRun {
                        from: t0.elapsed(),
                        reply,
                        count: 1,
                    }),
                }
                thread::sleep(every);
            }
            runs
        });
        ReplyTrace {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the thread; the runs of replies in order.
    pub fn stop(mut self) -> Vec<ReplyRun> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for ReplyTrace {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `reply ×count @ms` lines for printing.
pub fn describe_runs(runs: &[ReplyRun]) -> String {
    runs.iter()
        .map(|r| format!("  {:>6} ms  {} x{}", r.from.as_millis(), r.reply, r.count))
        .collect::<Vec<_>>()
        .join("\n")
}

//! Resharding helpers: bulk loading keys straight into their owners and checking them back,
//! adding an empty primary with `add-node`, and reading a node's slot ranges.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};

use super::*;

/// Forms a cluster of primaries only from `b`; returns it with the owners of slot 0 (the
/// migration tests' source) and slot 16383 (their target).
pub fn primaries_only(b: ClusterBuilder) -> Result<(Cluster, usize, usize)> {
    let c = b.start()?;
    c.create_and_wait(0)?;
    let src = c.slot_owner(0, 0)?;
    let dst = c.slot_owner(0, 16383)?;
    Ok((c, src, dst))
}

impl Cluster {
    /// SETs `n` keys `prefix:i` (values of `value_len` bytes) with pipelines sent straight to
    /// each key's owner per node `view`; returns the (key, value) pairs.
    pub fn load_keys(
        &self,
        view: usize,
        prefix: &str,
        n: usize,
        value_len: usize,
    ) -> Result<Vec<(String, String)>> {
        let lines = self.cluster_nodes(view)?;
        let mut by_owner: BTreeMap<u16, Vec<(String, String)>> = BTreeMap::new();
        let mut all = Vec::with_capacity(n);
        for i in 0..n {
            let key = format!("{prefix}:{i}");
            let mut value = format!("{i}:");
            while value.len() < value_len {
                value.push((b'a' + (value.len() * 7 + i) as u8 % 26) as char);
            }
            let slot = key_slot(key.as_bytes());
            let owner = lines
                .iter()
                .find(|l| l.is_master() && l.owns(slot))
                .ok_or_else(|| anyhow!("nobody owns slot {slot}"))?;
            by_owner
                .entry(owner.port)
                .or_default()
                .push((key.clone(), value.clone()));
            all.push((key, value));
        }
        for (port, kvs) in by_owner {
            let node = self
                .node_by_port(port)
                .ok_or_else(|| anyhow!("owner port {port} is not ours"))?;
            let mut con = node.conn()?;
            for chunk in kvs.chunks(5000) {
                let mut p = redis::pipe();
                for (k, v) in chunk {
                    p.cmd("SET").arg(k).arg(v).ignore();
                }
                p.query::<()>(&mut con)
                    .with_context(|| format!("loading keys on port {port}"))?;
            }
        }
        Ok(all)
    }

    /// The pairs whose key is missing or holds another value, read per node `view`'s map.
    pub fn wrong_values(
        &self,
        view: usize,
        expected: &[(String, String)],
    ) -> Result<Vec<(String, String, Option<String>)>> {
        let keys: Vec<String> = expected.iter().map(|(k, _)| k.clone()).collect();
        let got = self.fetch_values(view, &keys)?;
        Ok(expected
            .iter()
            .zip(got)
            .filter(|((_, v), g)| g.as_deref() != Some(v.as_str()))
            .map(|((k, v), g)| (k.clone(), v.clone(), g))
            .collect())
    }

    /// Starts an empty node and joins it as a primary with `redis-cli --cluster add-node`;
    /// waits until every node knows it. Returns its index and id.
    pub fn add_primary(&mut self, timeout: Duration) -> Result<(usize, String)> {
        let i = self.add_empty_node()?;
        let new = format!("127.0.0.1:{}", self.node(i).port());
        let existing = format!("127.0.0.1:{}", self.node(0).port());
        self.redis_cli_cluster(&["add-node", &new, &existing])?
            .ensure_success()?;
        let id = self.myid(i)?;
        let n = self.len();
        try_wait_until_every(
            timeout,
            Duration::from_millis(100),
            "new node known",
            || Ok((0..n).all(|j| self.known_nodes(j).map(|k| k == n).unwrap_or(false))),
        )?;
        self.wait_state_ok(timeout)?;
        Ok((i, id))
    }

    /// Adds an empty node as a replica of `primary` (`redis-cli --cluster add-node
    /// --cluster-slave --cluster-master-id`) and waits until it replicates.
    pub fn add_replica_of(&mut self, primary: usize, timeout: Duration) -> Result<usize> {
        let id = self.myid(primary)?;
        let r = self.add_empty_node()?;
        let existing = format!("127.0.0.1:{}", self.node(0).port());
        let new = format!("127.0.0.1:{}", self.node(r).port());
        self.redis_cli_cluster(&[
            "add-node",
            &new,
            &existing,
            "--cluster-slave",
            "--cluster-master-id",
            &id,
        ])?
        .ensure_success()?;
        self.wait_replicating(r, primary, timeout)?;
        Ok(r)
    }

    /// Node `i`'s own slot ranges per its own CLUSTER NODES.
    pub fn own_ranges(&self, i: usize) -> Result<Vec<(u16, u16)>> {
        Ok(self.myself(i)?.ranges())
    }

    /// `redis-cli --cluster reshard` through node 0: `slots` slots from every primary to the
    /// node with id `to`, without prompts; it must succeed.
    pub fn reshard_to(&self, to: &str, slots: usize) -> Result<ToolRun> {
        self.reshard_via(0, false, "all", to, slots)
    }

    /// `--cluster reshard` through node `via` with rockslot-cli (`rockslot`) or redis-cli:
    /// `slots` slots from `from` (a node id or `all`) to the node with id `to`, without
    /// prompts; it must succeed.
    pub fn reshard_via(
        &self,
        via: usize,
        rockslot: bool,
        from: &str,
        to: &str,
        slots: usize,
    ) -> Result<ToolRun> {
        let seed = format!("127.0.0.1:{}", self.node(via).port());
        let slots = slots.to_string();
        let args = [
            "reshard",
            &seed,
            "--cluster-from",
            from,
            "--cluster-to",
            to,
            "--cluster-slots",
            &slots,
            "--cluster-yes",
        ];
        let run = if rockslot {
            self.rockslot_cli_cluster(&args)?
        } else {
            self.redis_cli_cluster(&args)?
        };
        run.ensure_success()
    }

    /// `--cluster check` through node 0 with `tool` (redis-cli or rockslot-cli) must pass with
    /// no error or warning.
    pub fn check_clean(&self, rockslot: bool) -> Result<()> {
        let seed = format!("127.0.0.1:{}", self.node(0).port());
        let run = if rockslot {
            self.rockslot_cli_cluster(&["check", &seed])?
        } else {
            self.redis_cli_cluster(&["check", &seed])?
        };
        let out = run.stdout.clone();
        let run = run.ensure_success()?;
        ensure!(
            !out.contains("[ERR]") && !out.contains("[WARNING]"),
            "check not clean: {}",
            run.describe()
        );
        Ok(())
    }
}

/// What direct (non-redirect-following) writers saw while slots moved.
#[derive(Debug, Default, Clone)]
pub struct RedirectTally {
    pub ok: u64,
    pub moved: u64,
    pub ask: u64,
    /// Any other error reply or I/O failure, with a sample.
    pub other: Vec<String>,
}

/// One thread per primary (as of `view`) writing keys straight to that primary, never following
/// redirects, and tallying the replies: during an atomic slot migration only OK and MOVED may
/// appear.
pub struct RedirectObserver {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handles: Vec<std::thread::JoinHandle<RedirectTally>>,
}

impl RedirectObserver {
    pub fn start(c: &Cluster, view: usize) -> Result<RedirectObserver> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for (t, m) in c.masters(view)?.into_iter().enumerate() {
            let ranges = c.own_ranges(m)?;
            let mut con = c.node(m).conn()?;
            let stop = std::sync::Arc::clone(&stop);
            // Keys of this primary's slots, found by trying names.
            let keys: Vec<String> = (0..200_000u64)
                .map(|i| format!("obs:{t}:{i}"))
                .filter(|k| {
                    let s = key_slot(k.as_bytes());
                    ranges.iter().any(|(a, b)| (*a..=*b).contains(&s))
                })
                .take(5000)
                .collect();
            handles.push(std::thread::spawn(move || {
                let mut tally = RedirectTally::default();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) && !keys.is_empty() {
                    let k = &keys[i % keys.len()];
                    i += 1;
                    match redis::cmd("SET")
                        .arg(k)
                        .arg(i)
                        .query::<redis::Value>(&mut con)
                    {
                        Ok(_) => tally.ok += 1,
                        Err(e) if e.code() == Some("MOVED") => tally.moved += 1,
                        Err(e) if e.code() == Some("ASK") => tally.ask += 1,
                        Err(e) => {
                            if tally.other.len() < 5 {
                                tally.other.push(e.to_string());
                            } else {
                                tally.other[4] = e.to_string();
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
                tally
            }));
        }
        Ok(RedirectObserver { stop, handles })
    }

    pub fn stop(self) -> Result<RedirectTally> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all = RedirectTally::default();
        for h in self.handles {
            let t = h.join().map_err(|_| anyhow!("observer panicked"))?;
            all.ok += t.ok;
            all.moved += t.moved;
            all.ask += t.ask;
            all.other.extend(t.other);
        }
        Ok(all)
    }
}

impl Cluster {
    /// `CLUSTER GETSLOTMIGRATIONS` of node `i` as one field map per job.
    pub fn slot_migrations(&self, i: usize) -> Result<Vec<BTreeMap<String, String>>> {
        let mut con = self.node(i).conn()?;
        let rows: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
            .arg("GETSLOTMIGRATIONS")
            .query(&mut con)?;
        rows.into_iter()
            .map(|kv| {
                kv.chunks(2)
                    .map(|p| Ok((value_text(&p[0])?, value_text(&p[1])?)))
                    .collect()
            })
            .collect()
    }

    /// `CLUSTER MIGRATESLOTS SLOTSRANGE first last NODE <dst's id>` on node `src`.
    pub fn migrate_slots(&self, src: usize, first: u16, last: u16, dst: usize) -> Result<()> {
        let dst_id = self.myid(dst)?;
        self.query(
            src,
            &[
                "CLUSTER",
                "MIGRATESLOTS",
                "SLOTSRANGE",
                &first.to_string(),
                &last.to_string(),
                "NODE",
                &dst_id,
            ],
        )?;
        Ok(())
    }

    /// Whether no running node has a slot migration job that is still running.
    pub fn no_active_slot_jobs(&self) -> Result<bool> {
        for i in self.live() {
            let busy = self.slot_migrations(i)?.iter().any(|j| {
                !matches!(
                    j.get("state").map(String::as_str),
                    Some("success" | "failed" | "cancelled")
                )
            });
            if busy {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Every slot is owned by exactly one primary and every node agrees (the check passes with
    /// both tools).
    pub fn one_owner_per_slot(&self) -> Result<()> {
        self.wait_converged(Duration::from_secs(60))?;
        let mut owners = vec![0u8; 16384];
        for l in self.cluster_nodes(0)? {
            if l.is_master() {
                for (a, b) in l.ranges() {
                    for s in a..=b {
                        owners[s as usize] += 1;
                    }
                }
            }
        }
        ensure!(
            owners.iter().all(|&n| n == 1),
            "slots without exactly one owner"
        );
        self.check_clean(false)?;
        self.check_clean(true)
    }
}

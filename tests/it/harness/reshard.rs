//! Resharding helpers: bulk loading keys straight into their owners and checking them back,
//! adding an empty primary with `add-node`, and reading a node's slot ranges.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};

use super::*;

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
        try_wait_until_every(timeout, Duration::from_millis(100), "new node known", || {
            Ok((0..n).all(|j| self.known_nodes(j).map(|k| k == n).unwrap_or(false)))
        })?;
        self.wait_state_ok(timeout)?;
        Ok((i, id))
    }

    /// Node `i`'s own slot ranges per its own CLUSTER NODES.
    pub fn own_ranges(&self, i: usize) -> Result<Vec<(u16, u16)>> {
        Ok(self.myself(i)?.ranges())
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

//! A deterministic dataset of every type, with expiries, for moving data in from Valkey: key
//! `i` has a type, a value and an expiry that are pure functions of `i`, so a test can fill
//! a reference server and then check another server key by key without keeping a copy.

use std::collections::BTreeMap;

use anyhow::{ensure, Result};

use super::Cluster;

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    List(Vec<String>),
    Set(Vec<String>),
    Hash(Vec<(String, String)>),
    ZSet(Vec<(String, f64)>),
}

impl Val {
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Str(_) => "string",
            Val::List(_) => "list",
            Val::Set(_) => "set",
            Val::Hash(_) => "hash",
            Val::ZSet(_) => "zset",
        }
    }
}

pub struct Dataset {
    pub n: usize,
    /// Expiries are this many seconds ahead of the moment the dataset was made.
    base_ms: i64,
}

impl Dataset {
    pub fn new(n: usize) -> Dataset {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Dataset {
            n,
            base_ms: now / 1000 * 1000,
        }
    }

    pub fn key(&self, i: usize) -> String {
        format!("imp:{i}")
    }

    /// Every 997th key is a large collection (Valkey's hashtable/skiplist/multi-node forms).
    pub fn value(&self, i: usize) -> Val {
        let big = i % 997 == 0;
        let n = if big { 300 } else { 3 };
        match i % 5 {
            0 if i % 7 == 0 => Val::Str(i.to_string()),
            0 => Val::Str(format!("value-{i}-{}", "x".repeat(i % 40))),
            1 => Val::List((0..n).map(|j| format!("e{}", i + j)).collect()),
            2 if i % 2 == 0 => Val::Set((0..n).map(|j| (i * 10 + j).to_string()).collect()),
            2 => Val::Set((0..n).map(|j| format!("s{j}:{i}")).collect()),
            3 => Val::Hash(
                (0..n)
                    .map(|j| {
                        (
                            format!("f{j}"),
                            if j % 2 == 0 {
                                i.to_string()
                            } else {
                                format!("h{i}")
                            },
                        )
                    })
                    .collect(),
            ),
            _ => Val::ZSet(
                (0..n)
                    .map(|j| (format!("m{j}"), (i as f64) * 0.5 - j as f64 * 1.25))
                    .collect(),
            ),
        }
    }

    /// A third of the keys expire, at a whole second plus 500 ms (so a moved TTL keeps its
    /// second), 28 hours or more ahead.
    pub fn expire_at_ms(&self, i: usize) -> Option<i64> {
        (i % 3 == 0).then(|| self.base_ms + (100_000 + (i % 1000) as i64) * 1000 + 500)
    }

    /// Writes the dataset through `c`, pipelined.
    pub fn load(&self, c: &mut redis::Connection) -> Result<()> {
        for chunk in (0..self.n).collect::<Vec<_>>().chunks(1000) {
            let mut p = redis::pipe();
            for &i in chunk {
                let k = self.key(i);
                match self.value(i) {
                    Val::Str(s) => p.cmd("SET").arg(&k).arg(s).ignore(),
                    Val::List(v) => p.cmd("RPUSH").arg(&k).arg(v).ignore(),
                    Val::Set(v) => p.cmd("SADD").arg(&k).arg(v).ignore(),
                    Val::Hash(v) => p.cmd("HSET").arg(&k).arg(v).ignore(),
                    Val::ZSet(v) => {
                        let mut cmd = redis::cmd("ZADD");
                        cmd.arg(&k);
                        for (m, s) in v {
                            cmd.arg(s).arg(m);
                        }
                        p.add_command(cmd).ignore()
                    }
                };
                if let Some(at) = self.expire_at_ms(i) {
                    p.cmd("PEXPIREAT").arg(&k).arg(at).ignore();
                }
            }
            p.exec(c)?;
        }
        Ok(())
    }

    /// Checks every key of the dataset on the primaries of `cluster` (each key read from its
    /// slot's owner): type, value and expiry to the second, and no other keys. Returns the
    /// count per type.
    pub fn verify_cluster(&self, cluster: &Cluster) -> Result<BTreeMap<&'static str, usize>> {
        self.verify_cluster_with(cluster, 0)
    }

    /// [`Dataset::verify_cluster`] when the primaries also hold `extra` keys of their own.
    pub fn verify_cluster_with(
        &self,
        cluster: &Cluster,
        extra: usize,
    ) -> Result<BTreeMap<&'static str, usize>> {
        let lines = cluster.cluster_nodes(0)?;
        let mut owner_of = vec![usize::MAX; 16384];
        for l in lines.iter().filter(|l| !l.slots.is_empty()) {
            let idx = cluster
                .index_of_port(l.port)
                .ok_or_else(|| anyhow::anyhow!("unknown owner {}", l.addr))?;
            for (slot, o) in owner_of.iter_mut().enumerate() {
                if l.owns(slot as u16) {
                    *o = idx;
                }
            }
        }
        let mut by_node: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..self.n {
            let slot = rockslot::slot::key_slot(self.key(i).as_bytes()) as usize;
            by_node.entry(owner_of[slot]).or_default().push(i);
        }
        let mut counts = BTreeMap::new();
        let mut total_keys = 0;
        for (&node, keys) in &by_node {
            ensure!(node != usize::MAX, "some slot has no owner");
            let mut c = cluster.node(node).conn()?;
            let dbsize: usize = redis::cmd("DBSIZE").query(&mut c)?;
            total_keys += dbsize;
            for chunk in keys.chunks(500) {
                let mut p = redis::pipe();
                for &i in chunk {
                    let k = self.key(i);
                    match self.value(i) {
                        Val::Str(_) => p.cmd("GET").arg(&k),
                        Val::List(_) => p.cmd("LRANGE").arg(&k).arg(0).arg(-1),
                        Val::Set(_) => p.cmd("SMEMBERS").arg(&k),
                        Val::Hash(_) => p.cmd("HGETALL").arg(&k),
                        Val::ZSet(_) => p.cmd("ZRANGE").arg(&k).arg(0).arg(-1).arg("WITHSCORES"),
                    };
                    p.cmd("PEXPIRETIME").arg(&k);
                }
                let replies: Vec<redis::Value> = p.query(&mut c)?;
                for (j, &i) in chunk.iter().enumerate() {
                    let want = self.value(i);
                    let got = read_back(&want, &replies[2 * j])?;
                    ensure!(got == want, "key {}: {:?} != {:?}", self.key(i), got, want);
                    let at: i64 = redis::from_redis_value_ref(&replies[2 * j + 1])?;
                    match self.expire_at_ms(i) {
                        None => ensure!(at == -1, "key {}: expiry {at}, want none", self.key(i)),
                        Some(w) => ensure!(
                            (at - w).abs() < 500,
                            "key {}: expiry {at}, want {w} (to the second)",
                            self.key(i)
                        ),
                    }
                    *counts.entry(want.type_name()).or_insert(0) += 1;
                }
            }
        }
        ensure!(
            total_keys == self.n + extra,
            "the primaries hold {total_keys} keys, not {}",
            self.n + extra
        );
        Ok(counts)
    }
}

/// The reply of the type's read command as a [`Val`] in the dataset's order.
fn read_back(want: &Val, v: &redis::Value) -> Result<Val> {
    Ok(match want {
        Val::Str(_) => Val::Str(redis::from_redis_value_ref(v)?),
        Val::List(_) => Val::List(redis::from_redis_value_ref(v)?),
        Val::Set(w) => {
            let mut got: Vec<String> = redis::from_redis_value_ref(v)?;
            let order: BTreeMap<&String, usize> =
                w.iter().enumerate().map(|(i, m)| (m, i)).collect();
            got.sort_by_key(|m| order.get(m).copied().unwrap_or(usize::MAX));
            Val::Set(got)
        }
        Val::Hash(w) => {
            let got: BTreeMap<String, String> = redis::from_redis_value_ref(v)?;
            let mut out: Vec<(String, String)> = got.into_iter().collect();
            let order: BTreeMap<&String, usize> =
                w.iter().enumerate().map(|(i, (f, _))| (f, i)).collect();
            out.sort_by_key(|(f, _)| order.get(f).copied().unwrap_or(usize::MAX));
            Val::Hash(out)
        }
        Val::ZSet(w) => {
            let got: Vec<(String, f64)> = redis::from_redis_value_ref(v)?;
            let order: BTreeMap<&String, usize> =
                w.iter().enumerate().map(|(i, (m, _))| (m, i)).collect();
            let mut got = got;
            got.sort_by_key(|(m, _)| order.get(m).copied().unwrap_or(usize::MAX));
            Val::ZSet(got)
        }
    })
}

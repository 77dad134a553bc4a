//! MULTI/EXEC is atomic on disk: a server killed (SIGKILL) while transactions over many keys
//! of every type are running comes back with each transaction wholly applied or not at all,
//! and with every acknowledged one applied.

use std::thread;
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::harness::{wait_until, NodeBuilder};

/// Keys each transaction writes besides the marker: hashes, plus one list, set and sorted set.
const HASHES: usize = 100;

#[test]
fn exec_is_all_or_nothing_across_sigkill() -> Result<()> {
    let mut node = NodeBuilder::new().appendfsync("everysec").start()?;
    for round in 0..3 {
        let mut con = node.conn()?;
        let writer = thread::spawn(move || -> u64 {
            let mut acked = 0;
            for i in 1..=1_000_000u64 {
                let mut p = redis::pipe();
                p.atomic();
                for j in 0..HASHES {
                    p.cmd("HSET")
                        .arg(format!("r{round}:h{j}"))
                        .arg("v")
                        .arg(i)
                        .ignore();
                }
                p.cmd("RPUSH").arg(format!("r{round}:log")).arg(i).ignore();
                p.cmd("SADD").arg(format!("r{round}:s")).arg(i).ignore();
                p.cmd("ZADD")
                    .arg(format!("r{round}:z"))
                    .arg(i)
                    .arg("m")
                    .ignore();
                p.cmd("SET").arg(format!("r{round}:last")).arg(i).ignore();
                if p.query::<()>(&mut con).is_err() {
                    break;
                }
                acked = i;
            }
            acked
        });
        let mut probe = node.conn()?;
        wait_until(Duration::from_secs(30), "50 transactions to commit", || {
            redis::cmd("GET")
                .arg(format!("r{round}:last"))
                .query::<Option<u64>>(&mut probe)
                .ok()
                .flatten()
                .is_some_and(|n| n >= 50)
        })?;
        node.kill9()?;
        let acked = writer.join().expect("writer thread");
        node.restart()?;
        let mut c = node.conn()?;
        let last: u64 = redis::cmd("GET")
            .arg(format!("r{round}:last"))
            .query(&mut c)
            .context("marker after restart")?;
        ensure!(
            last >= acked,
            "round {round}: acknowledged {acked}, recovered {last}"
        );
        for j in 0..HASHES {
            let v: u64 = redis::cmd("HGET")
                .arg(format!("r{round}:h{j}"))
                .arg("v")
                .query(&mut c)?;
            ensure!(
                v == last,
                "round {round}: hash {j} holds {v}, marker {last}: EXEC was split"
            );
        }
        let len: u64 = redis::cmd("LLEN")
            .arg(format!("r{round}:log"))
            .query(&mut c)?;
        let card: u64 = redis::cmd("SCARD")
            .arg(format!("r{round}:s"))
            .query(&mut c)?;
        let score: f64 = redis::cmd("ZSCORE")
            .arg(format!("r{round}:z"))
            .arg("m")
            .query(&mut c)?;
        ensure!(
            len == last && card == last && score == last as f64,
            "round {round}: list {len}, set {card}, score {score}, marker {last}"
        );
        println!("round {round}: {acked} acknowledged, {last} recovered, each whole");
    }
    Ok(())
}

/// In a cluster a transaction's keys must share one slot: EXEC over two slots answers
/// CROSSSLOT and runs nothing (Valkey checks the whole queue at EXEC); one slot runs.
#[test]
fn cluster_exec_needs_one_slot() -> Result<()> {
    use crate::harness::{key_slot, show, Cluster};
    let c = Cluster::start(3)?;
    c.create_and_wait(0)?;
    // Two keys in different slots owned by the same node.
    let owner = c.slot_owner(0, key_slot(b"{a}x"))?;
    let other = (0..2000)
        .map(|i| format!("k{i}"))
        .find(|k| {
            key_slot(k.as_bytes()) != key_slot(b"{a}x")
                && c.slot_owner(0, key_slot(k.as_bytes())).ok() == Some(owner)
        })
        .expect("a key in another slot of the same node");
    let mut raw = c.node(owner).raw_authed()?;
    ensure!(raw.cmd(&["MULTI"])? == b"+OK\r\n");
    ensure!(raw.cmd(&["SET", "{a}x", "1"])? == b"+QUEUED\r\n");
    ensure!(raw.cmd(&["SET", &other, "2"])? == b"+QUEUED\r\n");
    let r = raw.cmd(&["EXEC"])?;
    ensure!(
        r == b"-CROSSSLOT Keys in request don't hash to the same slot\r\n",
        "{}",
        show(&r)
    );
    ensure!(raw.cmd(&["EXISTS", "{a}x"])? == b":0\r\n", "nothing ran");
    ensure!(raw.cmd(&["MULTI"])? == b"+OK\r\n");
    raw.cmd(&["SET", "{a}x", "1"])?;
    raw.cmd(&["LPUSH", "{a}l", "v"])?;
    ensure!(raw.cmd(&["EXEC"])? == b"*2\r\n+OK\r\n:1\r\n");
    Ok(())
}

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

//! Stopping the whole seed cluster (SIGTERM to all six) and starting it again: every node
//! rejoins from its nodes.conf with the same id, address, role, master and slots, the cluster
//! is `ok` again within a deadline, and the data written before is there.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use redis::Commands;

use crate::cluster_create::assert_seed_layout;
use crate::harness::{unix_ms, Cluster};

#[test]
fn restart_all_rejoins_from_nodes_conf() -> Result<()> {
    let mut c = Cluster::start(6)?;
    c.create_and_wait(1)?;
    let ids: Vec<String> = (0..c.len()).map(|i| c.myid(i)).collect::<Result<_>>()?;
    let before = c.views()?;
    let epochs: Vec<u64> = (0..c.len())
        .map(|i| c.myself(i).map(|l| l.config_epoch))
        .collect::<Result<_>>()?;

    {
        let mut con = c.conn()?;
        for i in 0..500 {
            let _: () = con.set(format!("restart:{i}"), format!("v{i}"))?;
        }
        let _: () = redis::cmd("MSET")
            .arg("{r}x")
            .arg("1")
            .arg("{r}y")
            .arg("2")
            .query(&mut con)?;
    }

    let stop = c.stop_all()?;
    let t0 = Instant::now();
    let since = unix_ms();
    let start = c.start_all()?;
    let healthy = c.wait_healthy(Duration::from_secs(60))?;
    let pongs = c.wait_pongs_since(since, Duration::from_secs(30))?;
    println!(
        "restart: all 6 stopped in {stop:?}; started (PING) in {start:?}; converged with cluster_state:ok {healthy:?} later; fresh PONGs between all nodes {pongs:?} after that ({:?} from the first spawn)",
        t0.elapsed()
    );

    for i in 0..c.len() {
        ensure!(c.myid(i)? == ids[i], "node {i} has a new id after restart");
        let e = c.myself(i)?.config_epoch;
        println!("  node {i}: config epoch {} before, {e} after", epochs[i]);
    }
    let after = c.views()?;
    for (port, view) in &before {
        ensure!(
            after.get(port) == Some(view),
            "node on port {port}: CLUSTER NODES changed across the restart\nbefore: {view:#?}\nafter: {:#?}",
            after.get(port)
        );
    }
    assert_seed_layout(&c)?;

    let mut con = c.conn()?;
    for i in 0..500 {
        let v: Option<String> = con.get(format!("restart:{i}"))?;
        ensure!(
            v.as_deref() == Some(format!("v{i}").as_str()),
            "restart:{i} = {v:?} after restart"
        );
    }
    let v: Vec<String> = con.mget(&["{r}x", "{r}y"])?;
    ensure!(v == ["1", "2"], "{{r}} keys after restart: {v:?}");
    Ok(())
}

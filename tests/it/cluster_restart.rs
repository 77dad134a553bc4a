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

/// CLUSTER SETSLOT (and the other slot commands) are written to nodes.conf before they reply
/// (SETSLOT without fsync, as Valkey 8.1): nodes SIGKILLed right after a reshard step come back
/// with the open slots and the new owner, and a node right after DELSLOTS without the slot.
#[test]
fn setslot_survives_a_sigkill_right_after_its_reply() -> Result<()> {
    let mut c = Cluster::start(3)?;
    c.create_and_wait(0)?;
    let (src, dst, other) = (0, 1, 2);
    let r = c.query(other, &["CLUSTER", "DELSLOTS", "16000"])?;
    ensure!(r == "OK", "DELSLOTS 16000 on node {other}: {r}");
    let (src_id, dst_id) = (c.myid(src)?, c.myid(dst)?);
    // Slot 100 belongs to node 0 after create; slot 101 is moved all the way.
    for (i, args) in [
        (
            dst,
            ["CLUSTER", "SETSLOT", "100", "IMPORTING", src_id.as_str()],
        ),
        (
            src,
            ["CLUSTER", "SETSLOT", "100", "MIGRATING", dst_id.as_str()],
        ),
        (dst, ["CLUSTER", "SETSLOT", "101", "NODE", dst_id.as_str()]),
        (src, ["CLUSTER", "SETSLOT", "101", "NODE", dst_id.as_str()]),
    ] {
        let r = c.query(i, &args)?;
        ensure!(r == "OK", "{args:?} on node {i}: {r}");
    }
    for i in [src, dst, other] {
        c.node(i).sigkill()?;
    }
    for i in [src, dst, other] {
        c.node_mut(i).restart()?;
    }
    let src_line = c.cluster_nodes_text(src)?;
    let dst_line = c.cluster_nodes_text(dst)?;
    let mine = |text: &str| -> String {
        text.lines()
            .find(|l| l.contains("myself"))
            .unwrap_or_default()
            .to_string()
    };
    ensure!(
        mine(&src_line).contains(&format!("[100->-{dst_id}]")),
        "source lost its MIGRATING slot across a SIGKILL:\n{src_line}"
    );
    ensure!(
        mine(&dst_line).contains(&format!("[100-<-{src_id}]")),
        "target lost its IMPORTING slot across a SIGKILL:\n{dst_line}"
    );
    let owns = |line: &str, slot: u16| {
        line.split_whitespace()
            .skip(8)
            .filter(|r| !r.starts_with('['))
            .any(|r| {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
            })
    };
    let owns_101 = |line: &str| owns(line, 101);
    let other_line = c.cluster_nodes_text(other)?;
    ensure!(
        !owns(&mine(&other_line), 16000) && owns(&mine(&other_line), 16001),
        "node {other} owns slot 16000 again (or lost 16001) after a SIGKILL:\n{other_line}"
    );
    ensure!(
        owns_101(&mine(&dst_line)),
        "target does not own slot 101 after a SIGKILL:\n{dst_line}"
    );
    ensure!(
        !owns_101(&mine(&src_line)),
        "source owns slot 101 again after a SIGKILL:\n{src_line}"
    );
    Ok(())
}

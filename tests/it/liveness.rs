//! A node stays alive for its peers and its other clients while one client runs a long
//! command, also when a slot handover's write pause is waiting for that command (issue 13,
//! path 9: the pause's blocking lock and the long command used to stop every runtime worker,
//! the cluster bus included, and the peers flagged the node as failing).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::harness::{key_slot, try_wait_until_every, Cluster};

const SETTLE: Duration = Duration::from_secs(60);
const SLEEP_SECS: u64 = 4;

/// DEBUG SLEEP stands for any long command (KEYS over a large keyspace, LINSERT into a huge
/// list): it blocks its own client, as in Valkey, and answers after the sleep. Meanwhile a
/// slot migration's handover pauses writes and waits for that client's request to finish, and
/// a third client sends a read. The peer must never flag the node (node timeout 1 s, the sleep
/// lasts 4); the read and the migration complete once the sleep ends.
#[test]
fn long_command_under_a_write_pause_keeps_the_bus_alive() -> Result<()> {
    let c = Cluster::builder(3).node_timeout_ms(1000).start()?;
    c.create_and_wait(0)?;
    let src = c.slot_owner(0, 0)?;
    let dst = c.slot_owner(0, 16383)?;
    let src_id = c.myid(src)?;
    let read_key = (0..10_000)
        .map(|i| format!("live-{i}"))
        .find(|k| {
            let s = key_slot(k.as_bytes());
            s != 0 && c.slot_owner(0, s).ok() == Some(src)
        })
        .context("no key on the source")?;
    c.query(src, &["SET", &read_key, "v"])?;

    let mut sleeper = c.node(src).conn()?;
    let started = Instant::now();
    let sleep = std::thread::spawn(move || -> Result<(String, Duration)> {
        let r: String = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(SLEEP_SECS)
            .query(&mut sleeper)?;
        Ok((r, started.elapsed()))
    });
    try_wait_until_every(
        Duration::from_secs(2),
        Duration::from_millis(20),
        "DEBUG SLEEP running, seen from another client",
        || {
            let list = c.query(src, &["CLIENT", "LIST"])?;
            ensure!(
                started.elapsed() < Duration::from_secs(SLEEP_SECS - 1),
                "the node answered no other client while DEBUG SLEEP ran ({:?})",
                started.elapsed()
            );
            Ok(list.contains("cmd=debug"))
        },
    )?;
    c.migrate_slots(src, 0, 0, dst)?;
    // A client that keeps asking for the job until it sees the handover pause, so that one of
    // its requests arrives while the pause waits for the sleeping client; then it reads.
    let (src_node, key) = (c.node(src), read_key.clone());
    std::thread::scope(|scope| -> Result<()> {
        let reader = scope.spawn(move || -> Result<String> {
            let mut con = src_node.conn()?;
            let deadline = Instant::now() + SETTLE;
            loop {
                let jobs: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
                    .arg("GETSLOTMIGRATIONS")
                    .query(&mut con)?;
                let text = format!("{jobs:?}");
                let past_streaming = ["paused", "success", "failed", "cancelled"]
                    .iter()
                    .any(|s| text.contains(s));
                if past_streaming || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(redis::cmd("GET").arg(&key).query(&mut con)?)
        });
        watch_peers(&c, src, &src_id, started)?;
        let got = reader.join().expect("reader thread")?;
        ensure!(got == "v", "the read during the pause got {got:?}");
        Ok(())
    })?;
    let (reply, took) = sleep.join().expect("sleep thread")?;
    ensure!(reply == "OK", "DEBUG SLEEP answered {reply:?}");
    ensure!(
        took >= Duration::from_secs(SLEEP_SECS),
        "DEBUG SLEEP answered after {took:?}, before its sleep ended"
    );
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(50),
        "slot 0 handed over",
        || Ok(c.slot_owner(src, 0)? == dst && c.slot_owner(dst, 0)? == dst),
    )?;
    Ok(())
}

/// Polls every other node's view until a second after the sleep ends: none may flag `src`.
fn watch_peers(c: &Cluster, src: usize, src_id: &str, started: Instant) -> Result<()> {
    // The peers keep hearing from the node for as long as the sleep lasts, and a bit more.
    let peers: Vec<usize> = (0..c.len()).filter(|&i| i != src).collect();
    let mut polls = 0;
    while started.elapsed() < Duration::from_secs(SLEEP_SECS + 1) {
        for &p in &peers {
            let view = c.cluster_nodes(p)?;
            let line = view
                .iter()
                .find(|l| l.id == src_id)
                .context("the source is missing from a peer's view")?;
            ensure!(
                !line.has_flag("fail?") && !line.has_flag("fail"),
                "after {:?} node {p} flagged the node running the long command: {line:?}",
                started.elapsed()
            );
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    ensure!(polls > 10, "the peers answered only {polls} times");
    Ok(())
}

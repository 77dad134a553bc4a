//! Replication between real nodes (standalone REPLICAOF; the cluster scenarios live in the
//! failover tests): full sync, the write stream, partial resync after a replica restart,
//! read-only replicas, WAIT, authentication and INFO/ROLE.

use std::time::Duration;

use anyhow::Result;

use crate::harness::{wait_until, Node, NodeBuilder};

fn info_field(node: &Node, field: &str) -> Option<String> {
    let mut c = node.conn().ok()?;
    let info: String = redis::cmd("INFO").arg("replication").query(&mut c).ok()?;
    info.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_string())
    })
}

fn pair(password: Option<&str>) -> Result<(Node, Node)> {
    let mut b = NodeBuilder::new();
    if let Some(p) = password {
        b = b.password(p).directive("masterauth", p);
    }
    let primary = b.clone().start()?;
    let replica = b.start()?;
    Ok((primary, replica))
}

fn replicate(replica: &Node, primary: &Node) -> Result<()> {
    let mut c = replica.conn()?;
    redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .exec(&mut c)?;
    Ok(())
}

fn dbsize(n: &Node) -> i64 {
    n.conn()
        .ok()
        .and_then(|mut c| redis::cmd("DBSIZE").query(&mut c).ok())
        .unwrap_or(-1)
}

#[test]
fn full_sync_then_stream_then_partial_resync() -> Result<()> {
    let (primary, mut replica) = pair(Some("valkey"))?;
    let mut p = primary.conn()?;
    // Data before the replica exists arrives by full sync.
    let mut pipe = redis::pipe();
    for i in 0..20_000 {
        pipe.cmd("SET")
            .arg(format!("k{i}"))
            .arg(format!("v{i}"))
            .ignore();
    }
    pipe.cmd("SET")
        .arg("ttl")
        .arg("x")
        .arg("EX")
        .arg(1000)
        .ignore();
    pipe.exec(&mut p)?;
    replicate(&replica, &primary)?;
    wait_until(
        Duration::from_secs(60),
        "the replica to catch up by full sync",
        || dbsize(&replica) == 20_001,
    )?;
    assert_eq!(info_field(&replica, "role").as_deref(), Some("slave"));
    assert_eq!(
        info_field(&replica, "master_link_status").as_deref(),
        Some("up")
    );
    wait_until(
        Duration::from_secs(10),
        "the primary to list its replica",
        || info_field(&primary, "connected_slaves").as_deref() == Some("1"),
    )?;
    let mut r = replica.conn()?;
    let ttl: i64 = redis::cmd("TTL").arg("ttl").query(&mut r)?;
    assert!(ttl > 900, "expiry times replicate: {ttl}");

    // Writes stream; WAIT sees the replica acknowledge them.
    redis::cmd("SET").arg("k1").arg("changed").exec(&mut p)?;
    redis::cmd("DEL").arg("k2").exec(&mut p)?;
    redis::cmd("INCR").arg("counter").exec(&mut p)?;
    let acked: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut p)?;
    assert_eq!(acked, 1);
    let v: String = redis::cmd("GET").arg("k1").query(&mut r)?;
    assert_eq!(v, "changed");
    let gone: Option<String> = redis::cmd("GET").arg("k2").query(&mut r)?;
    assert_eq!(gone, None);

    // A replica is read-only.
    let e = redis::cmd("SET")
        .arg("x")
        .arg("1")
        .exec(&mut r)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("You can't write against a read only replica"),
        "{e}"
    );

    // ROLE on both sides.
    let role: redis::Value = redis::cmd("ROLE").query(&mut p)?;
    assert!(format!("{role:?}").contains("master"));
    let role: redis::Value = redis::cmd("ROLE").query(&mut r)?;
    assert!(format!("{role:?}").contains("slave"));

    // A short outage: the replica restarts, the primary keeps writing; it continues from its
    // persisted offset without a full sync.
    let full_before: u64 = info_field(&primary, "master_repl_offset")
        .unwrap_or_default()
        .parse()?;
    replica.stop()?;
    for i in 0..500 {
        redis::cmd("SET")
            .arg(format!("after{i}"))
            .arg(i)
            .exec(&mut p)?;
    }
    replica.restart()?;
    // As with Valkey, REPLICAOF lives in memory unless the config is rewritten.
    replicate(&replica, &primary)?;
    wait_until(
        Duration::from_secs(30),
        "the restarted replica to catch up",
        || dbsize(&replica) == dbsize(&primary),
    )?;
    let log = primary.log();
    let continued = log.matches("continues from offset").count();
    let full = log.matches("full sync to replica").count();
    println!("primary offset before outage {full_before}; partial resyncs {continued}, full syncs {full}");
    assert_eq!(full, 1, "only the first sync was a full sync");
    assert!(
        continued >= 1,
        "the restarted replica resumed from its offset"
    );
    let mut r = replica.conn()?;
    let v: String = redis::cmd("GET").arg("after499").query(&mut r)?;
    assert_eq!(v, "499");

    // REPLICAOF NO ONE makes it a writable primary again, with the data.
    redis::cmd("REPLICAOF").arg("NO").arg("ONE").exec(&mut r)?;
    wait_until(Duration::from_secs(10), "promotion", || {
        info_field(&replica, "role").as_deref() == Some("master")
    })?;
    redis::cmd("SET").arg("mine").arg("1").exec(&mut r)?;
    Ok(())
}

#[test]
fn flushall_and_expiry_replicate() -> Result<()> {
    let (primary, replica) = pair(None)?;
    replicate(&replica, &primary)?;
    let mut p = primary.conn()?;
    for i in 0..100 {
        redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg("v")
            .arg("PX")
            .arg(if i < 50 { 100 } else { 1_000_000 })
            .exec(&mut p)?;
    }
    wait_until(
        Duration::from_secs(30),
        "expired keys to be deleted on both",
        || dbsize(&primary) == 50 && dbsize(&replica) == 50,
    )?;
    redis::cmd("FLUSHALL").exec(&mut p)?;
    wait_until(
        Duration::from_secs(10),
        "FLUSHALL to reach the replica",
        || dbsize(&replica) == 0,
    )?;
    Ok(())
}

#[test]
fn wrong_masterauth_is_refused_and_nothing_changes() -> Result<()> {
    let primary = NodeBuilder::new().password("right").start()?;
    let replica = NodeBuilder::new()
        .directive("masterauth", "wrong")
        .start()?;
    let mut r = replica.conn()?;
    redis::cmd("SET").arg("local").arg("1").exec(&mut r)?;
    replicate(&replica, &primary)?;
    wait_until(Duration::from_secs(10), "the refusal to be logged", || {
        primary.log().contains("refused replication")
            && replica.log().contains("wrong or missing masterauth")
    })?;
    assert_eq!(
        info_field(&replica, "master_link_status").as_deref(),
        Some("down")
    );
    assert_eq!(
        dbsize(&replica),
        1,
        "a refused sync leaves the replica's data alone"
    );
    Ok(())
}

#[test]
fn replicaof_bad_arguments() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.conn()?;
    let e = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg("notaport")
        .exec(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("Invalid master port"), "{e}");
    let e = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(node.port())
        .exec(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("Can't replicate myself"), "{e}");
    let e = redis::cmd("WAIT").arg(1).arg(-5).exec(&mut c).unwrap_err();
    assert!(e.to_string().contains("timeout is negative"), "{e}");
    let n: i64 = redis::cmd("WAIT").arg(1).arg(100).query(&mut c)?;
    assert_eq!(n, 0, "no replica: WAIT times out with 0");
    Ok(())
}

/// Values and pipelines larger than one gRPC message (64 MiB) reach the replica: a 70 MB
/// value, then a pipeline of 100 one-megabyte values. Each must arrive once, with the stream
/// going on after it, and WAIT must see the replica acknowledge them.
#[test]
fn writes_larger_than_one_message_replicate() -> Result<()> {
    let (primary, replica) = pair(None)?;
    replicate(&replica, &primary)?;
    wait_until(Duration::from_secs(30), "the replica's link", || {
        info_field(&replica, "master_link_status").as_deref() == Some("up")
    })?;
    let mut p = primary.conn()?;
    let big = vec![b'x'; 70 << 20];
    redis::cmd("SET").arg("big").arg(&big[..]).exec(&mut p)?;
    let mut pipe = redis::pipe();
    for i in 0..100u8 {
        pipe.cmd("SET")
            .arg(format!("mb{i}"))
            .arg(vec![i; 1 << 20])
            .ignore();
    }
    pipe.exec(&mut p)?;
    redis::cmd("SET").arg("after").arg("1").exec(&mut p)?;
    let acked: i64 = redis::cmd("WAIT").arg(1).arg(30_000).query(&mut p)?;
    assert_eq!(acked, 1, "the replica acknowledged the large writes");
    let mut r = replica.conn()?;
    let n: i64 = redis::cmd("STRLEN").arg("big").query(&mut r)?;
    assert_eq!(n, 70 << 20);
    let v: Vec<u8> = redis::cmd("GET").arg("mb99").query(&mut r)?;
    assert_eq!(v, vec![99u8; 1 << 20]);
    assert_eq!(dbsize(&replica), 102);
    let log = replica.log();
    assert!(
        log.matches("full sync from").count() <= 1,
        "the large writes streamed, without a new full sync: {}\nprimary: {}",
        replica.log_tail(20),
        primary.log_tail(20)
    );
    assert!(
        !log.contains("message length too large"),
        "a batch was refused: {}",
        replica.log_tail(20)
    );
    Ok(())
}

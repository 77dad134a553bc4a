//! Streams leaving their node: DUMP/RESTORE and MIGRATE both ways with valkey-server 8.1.8
//! (entries, node layout, counters, groups, pending entries and consumers intact), and in a
//! cluster: native and legacy resharding, replicas, backup and restore, and a primary's
//! SIGKILL with its replica taking over the consumer groups.

use anyhow::{ensure, Result};

use crate::harness::{bulk_body, show, Cluster, Node, RawConn, RedisServer};
use crate::stream_cases::masked;

fn restore(c: &mut RawConn, key: &str, payload: &[u8]) -> Result<()> {
    let cmd: Vec<&[u8]> = vec![b"RESTORE", key.as_bytes(), b"0", payload];
    let reply = c.cmd(&cmd)?;
    ensure!(reply == b"+OK\r\n", "RESTORE {key}: {}", show(&reply));
    Ok(())
}

fn run(c: &mut RawConn, cmd: &[&str]) -> Result<Vec<u8>> {
    let r = c.cmd(cmd)?;
    ensure!(!r.starts_with(b"-"), "{cmd:?}: {}", show(&r));
    Ok(r)
}

/// A stream with several nodes, deleted entries, two groups, pending entries of two consumers
/// and an idle consumer.
fn build(c: &mut RawConn, key: &str, n: u64) -> Result<()> {
    for i in 1..=n {
        let v = "v".repeat((i % 7) as usize);
        let fields: Vec<String> = if i % 5 == 0 {
            vec!["other".into(), i.to_string(), "x".into(), v]
        } else {
            vec!["f".into(), i.to_string(), "g".into(), v]
        };
        let mut cmd = vec!["XADD".to_string(), key.into(), format!("{i}-{}", i % 3)];
        cmd.extend(fields);
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        run(c, &refs)?;
    }
    run(c, &["XDEL", key, "3-0", "4-1", "17-2"])?;
    run(c, &["XGROUP", "CREATE", key, "g1", "0"])?;
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "c1",
            "COUNT",
            "10",
            "STREAMS",
            key,
            ">",
        ],
    )?;
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "c2",
            "COUNT",
            "5",
            "STREAMS",
            key,
            ">",
        ],
    )?;
    run(c, &["XACK", key, "g1", "1-1", "5-2", "12-0"])?;
    run(c, &["XGROUP", "CREATE", key, "g2", "$", "ENTRIESREAD", "3"])?;
    run(c, &["XGROUP", "CREATECONSUMER", key, "g2", "idle"])?;
    Ok(())
}

/// What a stream holds, as XINFO and XPENDING show it, clock readings masked.
fn fingerprint(c: &mut RawConn, key: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for cmd in [
        vec!["XINFO", "STREAM", key, "FULL", "COUNT", "0"],
        vec!["XINFO", "STREAM", key],
        vec!["XINFO", "GROUPS", key],
        vec!["XPENDING", key, "g1"],
        vec!["XPENDING", key, "g1", "-", "+", "100"],
    ] {
        out.extend(masked(&c.cmd(&cmd)?)?);
    }
    Ok(out)
}

/// valkey-server's DUMP of a stream restores in rockslot as the same stream; rockslot's DUMP
/// of it restores in valkey-server the same again; both then trim (`~`) and read alike; and
/// MIGRATE moves streams each way.
#[test]
fn streams_dump_restore_and_migrate_both_ways_with_valkey() -> Result<()> {
    let valkey = RedisServer::start_valkey()?;
    let node = Node::start()?;
    let mut v = RawConn::connect(valkey.addr())?;
    let mut r = node.raw_authed()?;
    for c in [&mut v, &mut r] {
        run(c, &["CONFIG", "SET", "stream-node-max-entries", "7"])?;
    }
    build(&mut v, "st", 60)?;
    let payload = bulk_body(&v.cmd(&["DUMP", "st"])?)?;
    restore(&mut r, "st", &payload)?;
    let (a, b) = (fingerprint(&mut r, "st")?, fingerprint(&mut v, "st")?);
    ensure!(
        a == b,
        "restored from valkey:\n ours {}\n valkey {}",
        show(&a),
        show(&b)
    );
    let ours = bulk_body(&r.cmd(&["DUMP", "st"])?)?;
    restore(&mut v, "back", &ours)?;
    let (a, b) = (fingerprint(&mut v, "back")?, fingerprint(&mut v, "st")?);
    ensure!(
        a == b,
        "our DUMP in valkey:\n back {}\n st {}",
        show(&a),
        show(&b)
    );
    for cmd in [
        &["XADD", "st", "MAXLEN", "~", "30", "100-0", "f", "new"][..],
        &["XTRIM", "st", "MINID", "~", "40"],
        &["XRANGE", "st", "-", "+"],
        &["XINFO", "STREAM", "st"],
        &["XREADGROUP", "GROUP", "g1", "c3", "STREAMS", "st", ">"],
        &["XINFO", "GROUPS", "st"],
    ] {
        let (a, b) = (masked(&r.cmd(cmd)?)?, masked(&v.cmd(cmd)?)?);
        ensure!(
            a == b,
            "{cmd:?} after RESTORE: ours {} / valkey {}",
            show(&a),
            show(&b)
        );
    }

    // MIGRATE each way.
    build(&mut v, "mv", 25)?;
    build(&mut r, "mine", 25)?;
    let port = node.port().to_string();
    run(
        &mut v,
        &["MIGRATE", "127.0.0.1", &port, "mv", "0", "5000", "COPY"],
    )?;
    let (a, b) = (fingerprint(&mut r, "mv")?, fingerprint(&mut v, "mv")?);
    ensure!(
        a == b,
        "MIGRATE from valkey: ours {} / valkey {}",
        show(&a),
        show(&b)
    );
    let before = fingerprint(&mut r, "mine")?;
    let vport = valkey.addr().port().to_string();
    run(
        &mut r,
        &["MIGRATE", "127.0.0.1", &vport, "mine", "0", "5000"],
    )?;
    ensure!(
        r.cmd(&["EXISTS", "mine"])? == b":0\r\n",
        "MIGRATE left the source"
    );
    let after = fingerprint(&mut v, "mine")?;
    ensure!(
        before == after,
        "MIGRATE to valkey: ours {} / valkey {}",
        show(&before),
        show(&after)
    );
    Ok(())
}

fn names() -> Vec<String> {
    (0..30).map(|i| format!("stream:{i}")).collect()
}

/// Streams with their groups move with their slots (`rockslot-cli --cluster reshard`, native,
/// and `redis-cli --cluster reshard`, MIGRATE), reach the replicas, come back from a backup,
/// and survive their primary's SIGKILL on the replica that takes over.
#[test]
fn streams_move_replicate_back_up_and_fail_over_with_their_slots() -> Result<()> {
    let mut c = Cluster::builder(6).start()?;
    c.create_and_wait(1)?;
    let mut want = Vec::new();
    for k in names() {
        let owner = c.key_owner(&k)?;
        let mut conn = c.node(owner).raw_authed()?;
        build(&mut conn, &k, 30)?;
        want.push(fingerprint(&mut conn, &k)?);
    }
    crate::harness::slot_journey(&mut c, &names(), &fingerprint, &mut |_| Ok(want.clone()))
}

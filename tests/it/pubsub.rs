//! Pub/sub with real clients: exact RESP2 and RESP3 frames, redis-cli's subscribe mode, the
//! PUBSUB introspection commands, and in a cluster PUBLISH reaching subscribers on every node
//! while SPUBLISH stays within the channel's shard.

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::harness::{key_slot, show, wait_until, Cluster, Interactive, Node, RawConn};

fn push3(kind: &str, name: &str, n: i64) -> Vec<u8> {
    format!(
        "*3\r\n${}\r\n{kind}\r\n${}\r\n{name}\r\n:{n}\r\n",
        kind.len(),
        name.len()
    )
    .into_bytes()
}

fn message(kind: &str, parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n${}\r\n{kind}\r\n", parts.len() + 1, kind.len());
    for p in parts {
        out.push_str(&format!("${}\r\n{p}\r\n", p.len()));
    }
    out.into_bytes()
}

fn expect(conn: &mut RawConn, want: &[u8]) -> Result<()> {
    let got = conn.read_frame()?;
    ensure!(got == want, "expected {} got {}", show(want), show(&got));
    Ok(())
}

#[test]
fn subscribe_publish_resp2_resp3_and_introspection() -> Result<()> {
    let node = Node::start()?;
    let mut sub = node.raw()?;
    let mut publ = node.raw()?;

    sub.send(b"*3\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n$5\r\nsport\r\n")?;
    expect(&mut sub, &push3("subscribe", "news", 1))?;
    expect(&mut sub, &push3("subscribe", "sport", 2))?;
    sub.send(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$2\r\nn*\r\n")?;
    expect(&mut sub, &push3("psubscribe", "n*", 3))?;

    // The channel subscription and the pattern both receive it: PUBLISH counts 2.
    ensure!(publ.cmd(&["PUBLISH", "news", "hello"])? == b":2\r\n");
    expect(&mut sub, &message("message", &["news", "hello"]))?;
    expect(&mut sub, &message("pmessage", &["n*", "news", "hello"]))?;
    ensure!(
        publ.cmd(&["PUBLISH", "nobody", "x"])? == b":1\r\n",
        "pattern only"
    );
    expect(&mut sub, &message("pmessage", &["n*", "nobody", "x"]))?;

    // RESP2 subscribed mode: only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING, QUIT, RESET.
    let got = sub.cmd(&["GET", "k"])?;
    ensure!(
        got == b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
        "{}",
        show(&got)
    );
    ensure!(sub.cmd(&["PING"])? == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");

    // Introspection.
    ensure!(publ.cmd(&["PUBSUB", "CHANNELS", "s*"])? == b"*1\r\n$5\r\nsport\r\n");
    ensure!(
        publ.cmd(&["PUBSUB", "NUMSUB", "news", "none"])?
            == b"*4\r\n$4\r\nnews\r\n:1\r\n$4\r\nnone\r\n:0\r\n"
    );
    ensure!(publ.cmd(&["PUBSUB", "NUMPAT"])? == b":1\r\n");
    let list = publ.cmd(&["CLIENT", "LIST"])?;
    ensure!(
        String::from_utf8_lossy(&list).contains("flags=P db=0 sub=2 psub=1 ssub=0"),
        "{}",
        show(&list)
    );

    // UNSUBSCRIBE without arguments leaves every channel, one reply each; then nothing left.
    sub.send(b"*1\r\n$11\r\nUNSUBSCRIBE\r\n")?;
    expect(&mut sub, &push3("unsubscribe", "news", 2))?;
    expect(&mut sub, &push3("unsubscribe", "sport", 1))?;
    sub.send(b"*1\r\n$12\r\nPUNSUBSCRIBE\r\n")?;
    expect(&mut sub, &push3("punsubscribe", "n*", 0))?;
    ensure!(sub.cmd(&["UNSUBSCRIBE"])? == b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    ensure!(
        sub.cmd(&["GET", "k"])? == b"$-1\r\n",
        "out of subscribed mode"
    );
    ensure!(publ.cmd(&["PUBLISH", "news", "x"])? == b":0\r\n");

    // RESP3: confirmations and messages are pushes, and other commands still run.
    let mut r3 = node.raw()?;
    r3.cmd(&["HELLO", "3"])?;
    ensure!(r3.cmd(&["SUBSCRIBE", "c3"])? == b">3\r\n$9\r\nsubscribe\r\n$2\r\nc3\r\n:1\r\n");
    ensure!(r3.cmd(&["SET", "k", "v"])? == b"+OK\r\n");
    ensure!(publ.cmd(&["PUBLISH", "c3", "m"])? == b":1\r\n");
    expect(&mut r3, b">3\r\n$7\r\nmessage\r\n$2\r\nc3\r\n$1\r\nm\r\n")?;

    // A subscriber that disconnects is forgotten.
    drop(r3);
    wait_until(
        Duration::from_secs(10),
        "the closed subscriber to be dropped",
        || matches!(publ.cmd(&["PUBLISH", "c3", "m"]), Ok(r) if r == b":0\r\n"),
    )?;

    // redis-cli in subscribe mode prints what is published.
    let port = node.port().to_string();
    let cli = Interactive::spawn(&[
        "redis-cli".into(),
        "-p".into(),
        port,
        "subscribe".into(),
        "clich".into(),
    ])?;
    cli.wait_output("clich", 1, Duration::from_secs(10))?;
    wait_until(
        Duration::from_secs(10),
        "redis-cli to be subscribed",
        || matches!(publ.cmd(&["PUBSUB", "NUMSUB", "clich"]), Ok(r) if r.ends_with(b":1\r\n")),
    )?;
    ensure!(publ.cmd(&["PUBLISH", "clich", "from-test"])? == b":1\r\n");
    cli.wait_output("from-test", 1, Duration::from_secs(10))?;
    Ok(())
}

#[test]
fn cluster_publish_reaches_every_node_and_spublish_stays_in_shard() -> Result<()> {
    let c = Cluster::start(6)?;
    c.create_and_wait(1)?;
    let n = c.len();

    // A subscriber on every node; PUBLISH on node 0 reaches all of them.
    let mut subs = Vec::new();
    for i in 0..n {
        let mut s = c.node(i).raw_authed()?;
        ensure!(s.cmd(&["SUBSCRIBE", "all"])? == push3("subscribe", "all", 1));
        subs.push(s);
    }
    let mut p = c.node(0).raw_authed()?;
    ensure!(
        p.cmd(&["PUBLISH", "all", "everyone"])? == b":1\r\n",
        "local receivers only"
    );
    for (i, s) in subs.iter_mut().enumerate() {
        let got = s.read_frame()?;
        ensure!(
            got == message("message", &["all", "everyone"]),
            "node {i} got {}",
            show(&got)
        );
    }

    // Shard channels: subscribers on the owner and its replica get SPUBLISH; others do not.
    let ch = "shardch";
    let owner = c.slot_owner(0, key_slot(ch.as_bytes()))?;
    let replica = c.replica_of(0, owner)?;
    let other = (0..n)
        .find(|i| *i != owner && *i != replica)
        .expect("a third node");
    let mut on_owner = c.node(owner).raw_authed()?;
    let mut on_replica = c.node(replica).raw_authed()?;
    ensure!(on_owner.cmd(&["SSUBSCRIBE", ch])? == push3("ssubscribe", ch, 1));
    ensure!(on_replica.cmd(&["SSUBSCRIBE", ch])? == push3("ssubscribe", ch, 1));
    let moved = c.node(other).raw_authed()?.cmd(&["SSUBSCRIBE", ch])?;
    ensure!(moved.starts_with(b"-MOVED "), "{}", show(&moved));
    let moved = c.node(other).raw_authed()?.cmd(&["SPUBLISH", ch, "x"])?;
    ensure!(moved.starts_with(b"-MOVED "), "{}", show(&moved));

    let mut sp = c.node(owner).raw_authed()?;
    ensure!(sp.cmd(&["SPUBLISH", ch, "shard-msg"])? == b":1\r\n");
    for s in [&mut on_owner, &mut on_replica] {
        expect(s, &message("smessage", &[ch, "shard-msg"]))?;
    }
    // Nothing arrives on the other nodes' channel subscribers for a shard message, and the
    // next PUBLISH is the next thing they read.
    p.cmd(&["PUBLISH", "all", "second"])?;
    for s in subs.iter_mut() {
        expect(s, &message("message", &["all", "second"]))?;
    }

    // The channel's slot moves to another shard: its subscribers there are told with an
    // `sunsubscribe` push (Valkey's behaviour when a node loses a slot).
    let slot = key_slot(ch.as_bytes()).to_string();
    let dst = c.myid(other)?;
    c.query(
        owner,
        &[
            "CLUSTER",
            "MIGRATESLOTS",
            "SLOTSRANGE",
            &slot,
            &slot,
            "NODE",
            &dst,
        ],
    )?;
    for s in [&mut on_owner, &mut on_replica] {
        expect(s, &push3("sunsubscribe", ch, 0))?;
    }
    Ok(())
}

const REDIS_PY_SCRIPT: &str = r#"
import json, os, threading, time, redis
port = int(os.environ["PORT"])
out = {}
for proto in (2, 3):
    r = redis.Redis(port=port, protocol=proto, decode_responses=True, socket_timeout=30)
    p = r.pubsub()
    p.subscribe("news")
    p.psubscribe("n*")
    deadline = time.time() + 10
    subs = []
    while len(subs) < 2 and time.time() < deadline:
        m = p.get_message(timeout=1.0)
        if m:
            subs.append(m["type"])
    n = r.publish("news", "hello")
    got = []
    while len(got) < 2 and time.time() < deadline:
        m = p.get_message(timeout=1.0)
        if m:
            got.append([m["type"], m["channel"], m["data"]])
    p.close()
    def push():
        c = redis.Redis(port=port, decode_responses=True)
        end = time.time() + 10
        while time.time() < end and "flags=b" not in c.execute_command("CLIENT", "LIST"):
            time.sleep(0.01)
        c.rpush("q", "x")
    t = threading.Thread(target=push)
    t.start()
    bl = r.blpop(["q"], timeout=10)
    t.join()
    r.zadd("z", {"a": 1.5, "b": 2})
    zr = r.zrange("z", 0, -1, withscores=True)
    r.delete("z")
    out[str(proto)] = {"subs": subs, "published": n, "got": got, "blpop": list(bl),
                       "zrange": [[m, s] for m, s in zr]}
print(json.dumps(out, sort_keys=True))
"#;

/// redis-py, unmodified, over RESP2 and RESP3: pub/sub messages, BLPOP woken by a push from
/// another connection, and ZRANGE WITHSCORES parsed into (member, float) pairs.
#[test]
fn redis_py_pubsub_blpop_and_scores() -> Result<()> {
    let node = Node::start()?;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", REDIS_PY_SCRIPT])
        .env("PORT", node.port().to_string());
    let run = crate::harness::ToolRun::run(&mut cmd, Duration::from_secs(120))?.ensure_success()?;
    let last = run.stdout.lines().last().unwrap_or_default().to_string();
    println!("redis-py: {last}");
    let per = r#"{"blpop": ["q", "x"], "got": [["message", "news", "hello"], ["pmessage", "news", "hello"]], "published": 2, "subs": ["subscribe", "psubscribe"], "zrange": [["a", 1.5], ["b", 2.0]]}"#;
    let want = format!(r#"{{"2": {per}, "3": {per}}}"#);
    ensure!(last == want, "redis-py saw {last}\nexpected   {want}");
    Ok(())
}

/// The same pub/sub session, byte for byte, on rockslot and on redis-server: confirmations,
/// messages, pattern messages, subscribed-mode errors and PING, unsubscribing, PUBSUB
/// introspection, over RESP2 and RESP3.
#[test]
fn pubsub_session_matches_redis_server() -> Result<()> {
    fn session(addr: std::net::SocketAddr) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for proto in ["2", "3"] {
            let mut sub = RawConn::connect(addr)?;
            let mut publ = RawConn::connect(addr)?;
            // HELLO's reply names the server: not compared.
            sub.cmd(&["HELLO", proto])?;
            sub.send(&crate::harness::encode_cmd(&["SUBSCRIBE", "a", "b", "a"]))?;
            out.extend(sub.read_frames(3)?);
            // One pattern per message: both servers keep patterns in a hash table, so the
            // order in which several matching patterns deliver is not defined.
            sub.send(&crate::harness::encode_cmd(&["PSUBSCRIBE", "a*", "b?"]))?;
            out.extend(sub.read_frames(2)?);
            sub.send(&crate::harness::encode_cmd(&["SSUBSCRIBE", "s1"]))?;
            out.extend(sub.read_frames(1)?);
            out.push(publ.cmd(&["PUBLISH", "a", "one"])?);
            out.extend(sub.read_frames(2)?);
            out.push(publ.cmd(&["PUBLISH", "b", ""])?);
            out.extend(sub.read_frames(1)?);
            out.push(publ.cmd(&["PUBLISH", "bz", "p"])?);
            out.extend(sub.read_frames(1)?);
            out.push(publ.cmd(&["SPUBLISH", "s1", "sm"])?);
            out.extend(sub.read_frames(1)?);
            out.push(publ.cmd(&["PUBSUB", "NUMSUB", "a", "b", "zz"])?);
            out.push(publ.cmd(&["PUBSUB", "NUMPAT"])?);
            out.push(publ.cmd(&["PUBSUB", "SHARDNUMSUB", "s1"])?);
            out.push(publ.cmd(&["PUBSUB", "CHANNELS", "[bc]"])?);
            out.push(publ.cmd(&["PUBSUB", "SHARDCHANNELS"])?);
            out.push(sub.cmd(&["PING"])?);
            out.push(sub.cmd(&["PING", "x"])?);
            out.push(sub.cmd(&["GET", "k"])?);
            sub.send(&crate::harness::encode_cmd(&["UNSUBSCRIBE", "b", "nope"]))?;
            out.extend(sub.read_frames(2)?);
            sub.send(&crate::harness::encode_cmd(&["PUNSUBSCRIBE"]))?;
            out.extend(sub.read_frames(2)?);
            sub.send(&crate::harness::encode_cmd(&["SUNSUBSCRIBE"]))?;
            out.extend(sub.read_frames(1)?);
            sub.send(&crate::harness::encode_cmd(&["UNSUBSCRIBE"]))?;
            out.extend(sub.read_frames(1)?);
            out.push(sub.cmd(&["UNSUBSCRIBE"])?);
            out.push(sub.cmd(&["PUBSUB", "NUMSUB"])?);
            out.push(publ.cmd(&["PUBLISH", "a", "none"])?);
        }
        Ok(out)
    }
    let node = Node::start()?;
    let reference = crate::harness::RedisServer::start()?;
    let ours = session(node.addr())?;
    let theirs = session(reference.addr())?;
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        ensure!(a == b, "frame {i}: rockslot {} redis {}", show(a), show(b));
    }
    ensure!(ours.len() == theirs.len());
    Ok(())
}

/// A subscriber that never reads, on a channel carrying 1 MB messages, is closed once its
/// queued output passes `client-output-buffer-limit pubsub` (8 MB hard here); the server's
/// RSS stays bounded while 300 MB are published (printed), and a subscriber that reads along
/// gets every message. `CONFIG GET` shows the limits as Valkey does.
#[test]
fn slow_subscriber_is_closed_at_its_output_limit_and_memory_stays_bounded() -> Result<()> {
    let node = Node::builder()
        .directive_raw("client-output-buffer-limit", "pubsub 8mb 2mb 60")
        .start()?;
    let mut c = node.conn()?;
    let limits: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("client-output-buffer-limit")
        .query(&mut c)?;
    assert_eq!(
        limits,
        vec![
            "client-output-buffer-limit".to_string(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 8388608 2097152 60".to_string()
        ]
    );
    let mut slow = node.raw()?;
    slow.send(&crate::harness::encode_cmd(&["SUBSCRIBE", "busy"]))?;
    slow.read_frame()?;
    let mut fast = node.conn()?;
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || -> Result<usize> {
        let mut fast_sub = fast.as_pubsub();
        fast_sub.subscribe("busy")?;
        fast_sub.set_read_timeout(Some(Duration::from_secs(30)))?;
        let _ = ready_tx.send(());
        let mut got = 0;
        while got < 300 {
            let m = fast_sub.get_message()?;
            ensure!(m.get_payload_bytes().len() == 1 << 20);
            got += 1;
            let _ = tx.send(());
        }
        Ok(got)
    });
    ready.recv_timeout(Duration::from_secs(10))?;
    let before = node.rss_kb().unwrap_or(0);
    let payload = vec![b'x'; 1 << 20];
    let mut peak = before;
    // In step with the reading subscriber (a reader slower than the publisher would reach
    // the limit too), so only the one that never reads piles up output.
    for _ in 0..300 {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("busy")
            .arg(&payload)
            .query(&mut c)?;
        peak = peak.max(node.rss_kb().unwrap_or(0));
        rx.recv_timeout(Duration::from_secs(30))?;
    }
    assert_eq!(
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("reader panicked"))??,
        300
    );
    println!(
        "pubsub output limit: RSS {} MB before, peak {} MB while 300 MB were published",
        before / 1024,
        peak / 1024
    );
    assert!(
        peak < before + 150 * 1024,
        "RSS grew from {before} KiB to {peak} KiB"
    );
    // The slow subscriber was closed: PUBLISH reaches only the reading one.
    wait_until(Duration::from_secs(10), "one subscriber left", || {
        redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("busy")
            .query::<(String, i64)>(&mut c)
            .is_ok_and(|(_, n)| n == 1)
    })?;
    Ok(())
}

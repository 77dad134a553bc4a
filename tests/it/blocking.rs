//! Blocking pops against the real server: a blocked client wakes on a push from another
//! client, times out with nil, keeps its pipeline in order, loses nothing when it disconnects,
//! and does not block inside MULTI.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use redis::Value;

use crate::harness::{wait_until, Node};

/// Waits until `n` clients are blocked in `cmd` (CLIENT LIST flags them `b`).
fn wait_blocked(node: &Node, cmd: &str, n: usize) -> Result<()> {
    let mut c = node.conn()?;
    wait_until(
        Duration::from_secs(10),
        &format!("{n} clients blocked in {cmd}"),
        || {
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query(&mut c)
                .unwrap_or_default();
            list.lines()
                .filter(|l| l.contains(" flags=b") && l.contains(&format!("cmd={cmd} ")))
                .count()
                >= n
        },
    )
}

fn query(node: &Node, args: &[&str]) -> Result<Value> {
    let mut c = node.conn()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    Ok(cmd.query(&mut c)?)
}

/// Runs `args` on a new connection in a thread.
fn spawn_query(node: &Node, args: &[&str]) -> Result<thread::JoinHandle<Result<Value>>> {
    let mut c = node.conn()?;
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    Ok(thread::spawn(move || {
        let mut cmd = redis::cmd(&args[0]);
        for a in &args[1..] {
            cmd.arg(a);
        }
        Ok(cmd.query(&mut c)?)
    }))
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn blocked_pops_wake_on_push_and_time_out() -> Result<()> {
    let node = Node::start()?;

    // BLPOP on an empty list wakes when another client pushes.
    let t = spawn_query(&node, &["BLPOP", "q1", "q2", "0"])?;
    wait_blocked(&node, "blpop", 1)?;
    query(&node, &["RPUSH", "q2", "hello"])?;
    let got = t.join().expect("thread")?;
    ensure!(
        got == Value::Array(vec![bulk("q2"), bulk("hello")]),
        "BLPOP got {got:?}"
    );
    ensure!(
        query(&node, &["EXISTS", "q2"])? == Value::Int(0),
        "popped list must be gone"
    );

    // Two blocked clients and two elements: each gets one, none is lost or duplicated.
    let a = spawn_query(&node, &["BRPOP", "q3", "0"])?;
    let b = spawn_query(&node, &["BRPOP", "q3", "0"])?;
    wait_blocked(&node, "brpop", 2)?;
    query(&node, &["LPUSH", "q3", "x", "y"])?;
    let mut got = vec![a.join().expect("a")?, b.join().expect("b")?];
    got.sort_by_key(|v| format!("{v:?}"));
    ensure!(
        got == vec![
            Value::Array(vec![bulk("q3"), bulk("x")]),
            Value::Array(vec![bulk("q3"), bulk("y")])
        ],
        "two BRPOPs got {got:?}"
    );

    // A timeout answers nil after (not before) the timeout.
    let started = Instant::now();
    let v = query(&node, &["BLPOP", "q9", "0.3"])?;
    ensure!(v == Value::Nil, "timed-out BLPOP replied {v:?}");
    ensure!(
        started.elapsed() >= Duration::from_millis(300),
        "BLPOP returned before its timeout"
    );

    // BLMOVE moves the pushed element; BZPOPMIN, BLMPOP and BZMPOP wake on their writes.
    let t = spawn_query(&node, &["BLMOVE", "src", "dst", "RIGHT", "LEFT", "5"])?;
    wait_blocked(&node, "blmove", 1)?;
    query(&node, &["RPUSH", "src", "m"])?;
    ensure!(t.join().expect("blmove")? == bulk("m"), "BLMOVE");
    ensure!(
        query(&node, &["LRANGE", "dst", "0", "-1"])? == Value::Array(vec![bulk("m")]),
        "dst"
    );

    let t = spawn_query(&node, &["BZPOPMIN", "z", "5"])?;
    wait_blocked(&node, "bzpopmin", 1)?;
    query(&node, &["ZADD", "z", "2", "b", "1", "a"])?;
    let v = t.join().expect("bzpopmin")?;
    ensure!(
        v == Value::Array(vec![bulk("z"), bulk("a"), bulk("1")]),
        "BZPOPMIN got {v:?}"
    );

    let t = spawn_query(
        &node,
        &["BLMPOP", "5", "2", "e1", "e2", "LEFT", "COUNT", "5"],
    )?;
    wait_blocked(&node, "blmpop", 1)?;
    query(&node, &["RPUSH", "e2", "1", "2"])?;
    let v = t.join().expect("blmpop")?;
    ensure!(
        v == Value::Array(vec![bulk("e2"), Value::Array(vec![bulk("1"), bulk("2")])]),
        "BLMPOP got {v:?}"
    );

    let t = spawn_query(&node, &["BZMPOP", "5", "1", "z2", "MAX"])?;
    wait_blocked(&node, "bzmpop", 1)?;
    query(&node, &["ZADD", "z2", "7", "s"])?;
    let v = t.join().expect("bzmpop")?;
    ensure!(
        v == Value::Array(vec![
            bulk("z2"),
            Value::Array(vec![Value::Array(vec![bulk("s"), bulk("7")])])
        ]),
        "BZMPOP got {v:?}"
    );

    // A write of another type does not satisfy BLPOP; the client keeps waiting, then times out.
    let t = spawn_query(&node, &["BLPOP", "s1", "1"])?;
    wait_blocked(&node, "blpop", 1)?;
    query(&node, &["SET", "s1", "v"])?;
    let v = t.join().expect("blpop on string")?;
    ensure!(
        v == Value::Nil,
        "BLPOP woken by a string write replied {v:?}"
    );
    Ok(())
}

#[test]
fn blocked_client_edge_cases() -> Result<()> {
    let node = Node::start()?;

    // Inside MULTI a blocking pop does not block.
    let mut c = node.conn()?;
    let v: Value = redis::pipe()
        .atomic()
        .cmd("BLPOP")
        .arg("none")
        .arg("0")
        .cmd("BZPOPMAX")
        .arg("nonez")
        .arg("0")
        .query(&mut c)?;
    ensure!(
        v == Value::Array(vec![Value::Nil, Value::Nil]),
        "MULTI with blocking pops: {v:?}"
    );

    // Wrong type and bad timeouts are errors, not waits.
    query(&node, &["SET", "str", "v"])?;
    let e = query(&node, &["BLPOP", "str", "0"])
        .unwrap_err()
        .to_string();
    ensure!(e.contains("WRONGTYPE"), "{e}");
    let e = query(&node, &["BLPOP", "l", "-1"]).unwrap_err().to_string();
    ensure!(e.contains("timeout is negative"), "{e}");
    let e = query(&node, &["BRPOP", "l", "soon"])
        .unwrap_err()
        .to_string();
    ensure!(e.contains("timeout is not a float or out of range"), "{e}");

    // A pipelined command after BLPOP is answered after it, in order.
    let mut raw = node.raw()?;
    raw.send(b"*3\r\n$5\r\nBLPOP\r\n$2\r\npl\r\n$1\r\n5\r\n*2\r\n$4\r\nECHO\r\n$5\r\nafter\r\n")?;
    wait_blocked(&node, "blpop", 1)?;
    query(&node, &["RPUSH", "pl", "v"])?;
    let frames = raw.read_frames(2)?;
    ensure!(
        frames[0] == b"*2\r\n$2\r\npl\r\n$1\r\nv\r\n",
        "{:?}",
        frames
    );
    ensure!(frames[1] == b"$5\r\nafter\r\n", "{:?}", frames);

    // A blocked client that disconnects takes nothing: the pushed element stays.
    let mut gone = node.raw()?;
    gone.send(b"*3\r\n$5\r\nBLPOP\r\n$4\r\ngone\r\n$1\r\n0\r\n")?;
    wait_blocked(&node, "blpop", 1)?;
    drop(gone);
    wait_until(
        Duration::from_secs(10),
        "the blocked client to be gone",
        || {
            let mut c = match node.conn() {
                Ok(c) => c,
                Err(_) => return false,
            };
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query(&mut c)
                .unwrap_or_default();
            !list.contains(" flags=b")
        },
    )?;
    query(&node, &["RPUSH", "gone", "kept"])?;
    ensure!(
        query(&node, &["LRANGE", "gone", "0", "-1"])? == Value::Array(vec![bulk("kept")]),
        "an element pushed after the blocked client left must stay in the list"
    );
    Ok(())
}

/// In a cluster a client blocked on a key whose slot moves to another node is answered with
/// MOVED (as Valkey does), and a push to the key on its new owner does not wait for it.
#[test]
fn blocked_client_is_redirected_when_its_slot_moves() -> Result<()> {
    use crate::harness::{key_slot, show, try_wait_until_every, Cluster};
    let c = Cluster::start(3)?;
    c.create_and_wait(0)?;
    let key = "blocked-key";
    let slot = key_slot(key.as_bytes());
    let owner = c.slot_owner(0, slot)?;
    let dst = (0..3).find(|i| *i != owner).expect("another primary");
    let mut raw = c.node(owner).raw_authed()?;
    raw.send(b"*3\r\n$5\r\nBLPOP\r\n$11\r\nblocked-key\r\n$1\r\n0\r\n")?;
    try_wait_until_every(
        Duration::from_secs(10),
        Duration::from_millis(20),
        "client blocked",
        || Ok(c.query(owner, &["CLIENT", "LIST"])?.contains(" flags=b")),
    )?;
    let dst_id = c.myid(dst)?;
    let s = slot.to_string();
    c.query(
        owner,
        &[
            "CLUSTER",
            "MIGRATESLOTS",
            "SLOTSRANGE",
            &s,
            &s,
            "NODE",
            &dst_id,
        ],
    )?;
    let reply = raw.read_frame()?;
    let want = format!("-MOVED {slot} 127.0.0.1:{}\r\n", c.node(dst).port());
    ensure!(
        reply == want.as_bytes(),
        "blocked client got {}",
        show(&reply)
    );
    Ok(())
}

//! CLUSTER FLUSHSLOT (Valkey 9): every key this node holds in one slot goes, on its replica
//! too, while the slot stays owned and other slots keep their keys; bad arguments get
//! Valkey's errors. valkey-server 8.1.8 has no FLUSHSLOT, so the wording is Valkey 9's
//! (its `getSlotOrReply` and syntax errors).

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::harness::{key_slot, show, wait_until, Cluster};

const SETTLE: Duration = Duration::from_secs(60);

#[test]
fn flushslot_empties_one_slot_on_its_primary_and_replica() -> Result<()> {
    let c = Cluster::builder(6).start()?;
    c.create_and_wait(1)?;
    let owner = c.key_owner("{a}0")?;
    let replica = c.replica_of(0, owner)?;
    let slot = key_slot(b"a").to_string();
    let mut p = c.node(owner).raw_authed()?;
    for i in 0..50 {
        let k = format!("{{a}}{i}");
        p.cmd(&["SET", &k, "v"])?;
        p.cmd(&["HSET", &format!("{k}h"), "f", "v", "g", "w"])?;
        p.cmd(&["HPEXPIRE", &format!("{k}h"), "100000", "FIELDS", "1", "f"])?;
    }
    // Another slot on the same primary keeps its keys.
    let other = (0..10_000)
        .map(|i| format!("other{i}"))
        .find(|k| {
            c.key_owner(k).is_ok_and(|o| o == owner) && key_slot(k.as_bytes()) != key_slot(b"a")
        })
        .expect("a key of another slot on the owner");
    p.cmd(&["SET", &other, "kept"])?;
    let mut r = c.node(replica).raw_authed()?;
    r.cmd(&["READONLY"])?;
    let count = |conn: &mut crate::harness::RawConn| {
        conn.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot])
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .unwrap_or_default()
    };
    wait_until(SETTLE, "the replica to hold the keys", || {
        count(&mut r) == ":100\r\n"
    })?;

    for (cmd, want) in [
        (
            vec!["CLUSTER", "FLUSHSLOT", "16384"],
            "-ERR Invalid or out of range slot\r\n",
        ),
        (
            vec!["CLUSTER", "FLUSHSLOT", "x"],
            "-ERR Invalid or out of range slot\r\n",
        ),
        (
            vec!["CLUSTER", "FLUSHSLOT", &slot, "LATER"],
            "-ERR syntax error\r\n",
        ),
        (
            vec!["CLUSTER", "FLUSHSLOT"],
            "-ERR wrong number of arguments for 'cluster|flushslot' command\r\n",
        ),
        (vec!["CLUSTER", "COUNTKEYSINSLOT", &slot], ":100\r\n"),
        (vec!["CLUSTER", "FLUSHSLOT", &slot, "ASYNC"], "+OK\r\n"),
        (vec!["CLUSTER", "COUNTKEYSINSLOT", &slot], ":0\r\n"),
        (vec!["GET", "{a}7"], "$-1\r\n"),
        (vec!["HGETALL", "{a}7h"], "*0\r\n"),
        (vec!["GET", &other], "$4\r\nkept\r\n"),
        (vec!["CLUSTER", "FLUSHSLOT", &slot], "+OK\r\n"),
    ] {
        let got = p.cmd(&cmd)?;
        ensure!(got == want.as_bytes(), "{cmd:?}: {}", show(&got));
    }
    wait_until(SETTLE, "the replica to drop the slot's keys", || {
        count(&mut r) == ":0\r\n"
    })?;
    ensure!(
        r.cmd(&["GET", &other])? == b"$4\r\nkept\r\n",
        "the replica kept the other slot"
    );
    // The slot is still served: a new key lands there.
    ensure!(
        p.cmd(&["SET", "{a}new", "v"])? == b"+OK\r\n",
        "the slot still takes writes"
    );
    Ok(())
}

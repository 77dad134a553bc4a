//! CLUSTER SLOT-STATS against valkey-server 8.1.8, each a one-node cluster owning every slot
//! with the same keys: SLOTSRANGE and ORDERBY key-count (limits, order, ties), the argument
//! errors, RESP2 and RESP3 byte for byte; then with `cluster-slot-stats-enabled yes` the
//! request and reply bytes per slot equal Valkey's and CPU time is counted on the right slot.

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::harness::{assert_same_reply, wait_until, Node, RawConn, RedisServer};

fn all_slots(c: &mut RawConn) -> Result<()> {
    let r = c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"])?;
    ensure!(r == b"+OK\r\n", "{}", String::from_utf8_lossy(&r));
    wait_until(Duration::from_secs(20), "cluster_state:ok", || {
        c.cmd(&["CLUSTER", "INFO"])
            .map(|i| String::from_utf8_lossy(&i).contains("cluster_state:ok"))
            .unwrap_or(false)
    })
}

const CASES: &[&[&str]] = &[
    &["CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "300"],
    &["CLUSTER", "SLOT-STATS", "SLOTSRANGE", "16380", "16383"],
    &["CLUSTER", "SLOT-STATS", "ORDERBY", "key-count"],
    &[
        "CLUSTER",
        "SLOT-STATS",
        "ORDERBY",
        "KEY-COUNT",
        "LIMIT",
        "40",
        "DESC",
    ],
    &[
        "CLUSTER",
        "SLOT-STATS",
        "ORDERBY",
        "key-count",
        "ASC",
        "LIMIT",
        "5",
    ],
    &["CLUSTER", "SLOT-STATS", "SLOTSRANGE", "5", "1"],
    &["CLUSTER", "SLOT-STATS", "SLOTSRANGE", "x", "1"],
    &["CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "16384"],
    &["CLUSTER", "SLOT-STATS", "ORDERBY", "nope"],
    &["CLUSTER", "SLOT-STATS", "ORDERBY", "cpu-usec"],
    &[
        "CLUSTER",
        "SLOT-STATS",
        "ORDERBY",
        "key-count",
        "LIMIT",
        "0",
    ],
    &[
        "CLUSTER",
        "SLOT-STATS",
        "ORDERBY",
        "key-count",
        "LIMIT",
        "16385",
    ],
    &[
        "CLUSTER",
        "SLOT-STATS",
        "ORDERBY",
        "key-count",
        "LIMIT",
        "1",
        "LIMIT",
        "2",
    ],
    &[
        "CLUSTER",
        "SLOT-STATS",
        "ORDERBY",
        "key-count",
        "ASC",
        "DESC",
    ],
    &["CLUSTER", "SLOT-STATS", "ORDERBY", "key-count", "junk"],
    &["CLUSTER", "SLOT-STATS", "SLOTSRANGE", "1"],
];

#[test]
fn slot_stats_match_valkey_byte_for_byte() -> Result<()> {
    let node = Node::builder()
        .directive("cluster-enabled", "yes")
        .directive("cluster-bus-secret", "s3cret")
        .start()?;
    let valkey = RedisServer::start_valkey_with(&["--cluster-enabled", "yes"])?;
    let mut ours = node.raw()?;
    let mut theirs = RawConn::connect(valkey.addr())?;
    for c in [&mut ours, &mut theirs] {
        all_slots(c)?;
        for i in 0..300 {
            c.cmd(&["SET", &format!("key:{i}"), "v"])?;
        }
        // A few slots with many keys, two with the same count.
        for i in 0..7 {
            c.cmd(&["SET", &format!("{{a}}{i}"), "v"])?;
            c.cmd(&["SET", &format!("{{b}}{i}"), "v"])?;
        }
        for i in 0..9 {
            c.cmd(&["SET", &format!("{{c}}{i}"), "v"])?;
        }
    }
    for resp3 in [false, true] {
        if resp3 {
            ours.cmd(&["HELLO", "3"])?;
            theirs.cmd(&["HELLO", "3"])?;
        }
        for (i, cmd) in CASES.iter().enumerate() {
            assert_same_reply(
                &mut ours,
                &mut theirs,
                cmd,
                &format!("case {i} resp3={resp3}"),
            )?;
        }
    }
    // Per-slot traffic: the same commands on one slot cost the same bytes both ways.
    for c in [&mut ours, &mut theirs] {
        c.cmd(&["CONFIG", "SET", "cluster-slot-stats-enabled", "yes"])?;
        c.cmd(&["HELLO", "2"])?;
        for i in 0..50 {
            c.cmd(&["SET", "{t}k", &"x".repeat(i)])?;
            c.cmd(&["GET", "{t}k"])?;
        }
    }
    let slot = crate::harness::key_slot(b"{t}k").to_string();
    let range = ["CLUSTER", "SLOT-STATS", "SLOTSRANGE", &slot, &slot];
    let (a, b) = (ours.cmd(&range)?, theirs.cmd(&range)?);
    let field = |reply: &[u8], name: &str| -> Option<i64> {
        let text = String::from_utf8_lossy(reply).to_string();
        let mut lines = text.split("\r\n");
        lines.find(|l| *l == name)?;
        lines.next()?.trim_start_matches(':').parse().ok()
    };
    for name in ["key-count", "network-bytes-in", "network-bytes-out"] {
        ensure!(
            field(&a, name) == field(&b, name) && field(&a, name).is_some(),
            "{name}: ours {:?}, valkey {:?}",
            field(&a, name),
            field(&b, name)
        );
    }
    ensure!(
        field(&a, "cpu-usec").is_some_and(|u| u > 0),
        "no CPU time on slot {slot}"
    );
    let top = ours.cmd(&[
        "CLUSTER",
        "SLOT-STATS",
        "ORDERBY",
        "network-bytes-in",
        "LIMIT",
        "1",
    ])?;
    ensure!(
        String::from_utf8_lossy(&top).contains(&format!(":{slot}\r\n")),
        "slot {slot} is not the busiest: {}",
        String::from_utf8_lossy(&top)
    );
    Ok(())
}

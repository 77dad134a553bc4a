//! Valkey's newer string commands: LCS and SET … IFEQ against valkey-server 8.1.8 byte for
//! byte (a case table, then seeded random strings in RESP2 and RESP3), and DELIFEQ, which
//! Valkey 9.0 added and 8.1.8 lacks, against its documented replies.

use anyhow::{ensure, Result};

use crate::commands::Rng;
use crate::harness::{assert_same_reply, node_and_valkey_in, Node};

const CASES: &[&[&str]] = &[
    &["MSET", "a", "ohmytext", "b", "mynewtext"],
    &["LCS", "a", "b"],
    &["LCS", "a", "b", "LEN"],
    &["LCS", "a", "b", "IDX"],
    &["LCS", "a", "b", "IDX", "MINMATCHLEN", "4"],
    &["LCS", "a", "b", "IDX", "MINMATCHLEN", "-4", "WITHMATCHLEN"],
    &["LCS", "a", "b", "IDX", "LEN"],
    &["LCS", "a", "b", "MINMATCHLEN"],
    &["LCS", "a", "b", "MINMATCHLEN", "x"],
    &["LCS", "a", "b", "NOPE"],
    &["LCS", "a", "nokey"],
    &["LCS", "nokey", "nokey2", "IDX", "WITHMATCHLEN"],
    &["LCS", "a", "a", "IDX", "WITHMATCHLEN"],
    &["RPUSH", "l", "x"],
    &["LCS", "a", "l"],
    &["LCS", "l", "a", "NOPE"],
    &["SET", "n", "12345"],
    &["SET", "m", "2345"],
    &["LCS", "n", "m", "IDX", "WITHMATCHLEN"],
    &["SET", "k", "v"],
    &["SET", "k", "v2", "IFEQ", "v"],
    &["GET", "k"],
    &["SET", "k", "v3", "IFEQ", "nomatch"],
    &["SET", "k", "v3", "IFEQ", "nomatch", "GET"],
    &["SET", "k", "v3", "IFEQ", "v2", "GET"],
    &["SET", "k", "v4", "IFEQ", "v3", "EX", "100"],
    &["TTL", "k"],
    &["SET", "k", "v5", "IFEQ", "v4", "KEEPTTL", "GET"],
    &["TTL", "k"],
    &["SET", "k", "v6", "IFEQ", "v5"],
    &["TTL", "k"],
    &["SET", "k", "v", "NX", "IFEQ", "v6"],
    &["SET", "k", "v", "IFEQ", "v6", "XX"],
    &["SET", "k", "v", "IFEQ"],
    &["SET", "k", "v", "IFEQ", "a", "IFEQ", "b"],
    &["SET", "nokey3", "v", "IFEQ", "a"],
    &["SET", "nokey3", "v", "IFEQ", "a", "GET"],
    &["EXISTS", "nokey3"],
    &["SET", "l", "v", "IFEQ", "x"],
    &["SET", "l", "v", "IFEQ", "x", "GET"],
    &["SET", "n", "1", "IFEQ", "12345"],
    &["GET", "n"],
];

#[test]
fn lcs_and_set_ifeq_match_valkey_byte_for_byte_in_resp2_and_resp3() -> Result<()> {
    crate::harness::assert_cases_match_valkey(CASES)?;
    for resp3 in [false, true] {
        let (_node, _valkey, mut ours, mut theirs) = node_and_valkey_in(resp3)?;
        // Random strings over a small alphabet: many runs, ties and empty strings.
        let mut r = Rng(0x1c5_0001 + resp3 as u64);
        for step in 0..1500 {
            let word = |r: &mut Rng| -> String {
                (0..r.below(24))
                    .map(|_| (b'a' + r.below(4) as u8) as char)
                    .collect()
            };
            let (x, y) = (word(&mut r), word(&mut r));
            ours.cmd(&["MSET", "x", &x, "y", &y])?;
            theirs.cmd(&["MSET", "x", &x, "y", &y])?;
            let min = r.below(4).to_string();
            let cmd: Vec<&str> = match r.below(4) {
                0 => vec!["LCS", "x", "y"],
                1 => vec!["LCS", "x", "y", "LEN"],
                2 => vec!["LCS", "x", "y", "IDX"],
                _ => vec!["LCS", "y", "x", "IDX", "MINMATCHLEN", &min, "WITHMATCHLEN"],
            };
            assert_same_reply(
                &mut ours,
                &mut theirs,
                &cmd,
                &format!("step {step} {x:?} {y:?}"),
            )?;
        }
    }
    Ok(())
}

/// DELIFEQ deletes only a string equal to the argument; 0 for a missing key or another
/// value, WRONGTYPE for other types. What it deleted stays deleted after a restart.
#[test]
fn delifeq_deletes_only_an_equal_string() -> Result<()> {
    let mut node = Node::builder().appendfsync("always").start()?;
    let mut c = node.raw()?;
    c.cmd(&["SET", "lock", "token-1"])?;
    ensure!(c.cmd(&["DELIFEQ", "lock", "token-2"])? == b":0\r\n");
    ensure!(c.cmd(&["GET", "lock"])? == b"$7\r\ntoken-1\r\n");
    ensure!(c.cmd(&["DELIFEQ", "nokey", "x"])? == b":0\r\n");
    c.cmd(&["RPUSH", "list", "token-1"])?;
    let wrong = c.cmd(&["DELIFEQ", "list", "token-1"])?;
    ensure!(
        wrong.starts_with(b"-WRONGTYPE"),
        "{}",
        String::from_utf8_lossy(&wrong)
    );
    ensure!(c
        .cmd(&["DELIFEQ", "lock"])?
        .starts_with(b"-ERR wrong number of arguments"));
    ensure!(c.cmd(&["DELIFEQ", "lock", "token-1"])? == b":1\r\n");
    ensure!(c.cmd(&["EXISTS", "lock"])? == b":0\r\n");
    c.cmd(&["SET", "kept", "a"])?;
    node.kill9()?;
    node.restart()?;
    let mut c = node.raw()?;
    ensure!(c.cmd(&["EXISTS", "lock", "kept"])? == b":1\r\n");
    Ok(())
}

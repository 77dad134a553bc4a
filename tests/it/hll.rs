//! HyperLogLog against valkey-server 8.1.8, byte for byte: PFADD, PFCOUNT and PFMERGE replies
//! and the stored strings themselves (GET of an HLL), sparse and dense, with the sparse limit
//! changed mid-stream, corrupted and foreign strings, and other types on the same keys, in
//! RESP2 and RESP3. HLL strings copied from Valkey with GET/SET keep counting here.

use anyhow::Result;

use crate::commands::Rng;
use crate::harness::{assert_same_reply, node_and_valkey};

const CASES: &[&[&str]] = &[
    &["PFADD", "h"],
    &["GET", "h"],
    &["PFADD", "h"],
    &["PFADD", "h", "a", "b", "c"],
    &["PFADD", "h", "a"],
    &["PFCOUNT", "h"],
    &["GET", "h"],
    &["PFCOUNT", "h", "nokey"],
    &["PFCOUNT", "nokey"],
    &["PFCOUNT", "nokey", "nokey2"],
    &["PFMERGE", "m", "h", "nokey"],
    &["GET", "m"],
    &["PFCOUNT", "m"],
    &["PFMERGE", "m2"],
    &["GET", "m2"],
    &["SET", "s", "not an hll"],
    &["PFADD", "s", "x"],
    &["PFCOUNT", "s"],
    &["PFCOUNT", "h", "s"],
    &["PFMERGE", "m", "s"],
    &["PFMERGE", "s", "h"],
    &["RPUSH", "l", "x"],
    &["PFADD", "l", "x"],
    &["PFCOUNT", "l"],
    &["PFCOUNT", "h", "l"],
    &["PFMERGE", "l", "h"],
    &["PFMERGE", "h", "l"],
    &[
        "SET",
        "fake",
        "HYLL\u{1}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
    ],
    &["PFCOUNT", "fake"],
    &[
        "SET",
        "fake",
        "HYLL\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
    ],
    &["PFCOUNT", "fake"],
    &[
        "SET",
        "fake",
        "HYLL\u{2}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
    ],
    &["PFADD", "fake", "x"],
    &["PFADD", "e", "1", "2", "3", "4", "5", "6", "7"],
    &["SET", "ttl", "x", "EX", "100"],
    &["DEL", "ttl"],
    &["PFADD", "ttl", "a"],
    &["EXPIRE", "ttl", "100"],
    &["PFADD", "ttl", "b"],
    &["TTL", "ttl"],
    &["PFMERGE", "ttl", "e"],
    &["TTL", "ttl"],
    &["PFCOUNT", "ttl"],
    &["TTL", "ttl"],
    &["GET", "ttl"],
];

#[test]
fn hll_cases_match_valkey_byte_for_byte_in_resp2_and_resp3() -> Result<()> {
    crate::harness::assert_cases_match_valkey(CASES)
}

const KEYS: &[&str] = &["{h}1", "{h}2", "{h}3", "{h}4"];

fn random_hll_command(r: &mut Rng, next: &mut u64) -> Vec<String> {
    let k = r.pick(KEYS).to_string();
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match r.below(30) {
        0..=11 => {
            // Runs of new elements push keys through the sparse encoding into dense.
            let n = match r.below(6) {
                0 => 0,
                1 => 200,
                _ => 1 + r.below(12),
            };
            let mut c = s(&["PFADD", &k]);
            for _ in 0..n {
                *next += 1;
                c.push(format!(
                    "e{}",
                    if r.below(5) == 0 { r.below(50) } else { *next }
                ));
            }
            c
        }
        12..=15 => s(&["PFCOUNT", &k]),
        16 | 17 => {
            let mut c = s(&["PFCOUNT"]);
            for _ in 0..2 + r.below(2) {
                c.push(r.pick(KEYS).to_string());
            }
            c
        }
        18..=20 => {
            let mut c = s(&["PFMERGE", &k]);
            for _ in 0..r.below(3) {
                c.push(r.pick(KEYS).to_string());
            }
            c
        }
        21..=23 => s(&["GET", &k]),
        24 => s(&["DEL", &k]),
        25 => s(&["APPEND", &k, "x"]),
        26 => s(&["SET", &k, "plain"]),
        27 => s(&["SADD", &k, "m"]),
        28 => s(&[
            "CONFIG",
            "SET",
            "hll-sparse-max-bytes",
            r.pick(&["3000", "100", "800", "0"]),
        ]),
        _ => s(&["SETRANGE", &k, r.pick(&["16", "17", "40"]), "\u{7f}"]),
    }
}

/// Thousands of seeded HLL commands; every reply and every GET of an HLL identical.
#[test]
fn generated_hll_commands_match_valkey() -> Result<()> {
    for (i, seed) in [0x411_0001u64, 0x411_0002, 0x411_0003]
        .into_iter()
        .enumerate()
    {
        let resp3 = i % 2 == 1;
        let (_node, _valkey, mut ours, mut theirs) = crate::harness::node_and_valkey_in(resp3)?;
        let mut r = Rng(seed);
        let mut next = 0;
        for step in 0..2000 {
            let cmd = random_hll_command(&mut r, &mut next);
            let at = format!("seed {seed:#x} step {step} resp3={resp3}");
            assert_same_reply(&mut ours, &mut theirs, &cmd, &at)?;
        }
    }
    Ok(())
}

/// An HLL built by valkey-server moves over with GET/SET and keeps counting the same here.
#[test]
fn hll_strings_copied_from_valkey_keep_counting() -> Result<()> {
    let (_node, _valkey, mut ours, mut theirs) = node_and_valkey()?;
    let mut args = vec!["PFADD".to_string(), "v".to_string()];
    args.extend((0..5000).map(|i| format!("user:{i}")));
    theirs.cmd(&args)?;
    let bytes = theirs.cmd(&["GET", "v"])?;
    let start = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| anyhow::anyhow!("not a bulk reply"))?
        + 1;
    anyhow::ensure!(
        bytes.len() > 12_000,
        "valkey's HLL is dense: {} bytes",
        bytes.len()
    );
    let body = bytes[start..bytes.len() - 2].to_vec();
    ours.cmd(&[&b"SET"[..], b"v", &body])?;
    assert_same_reply(&mut ours, &mut theirs, &["PFCOUNT", "v"], "copied")?;
    assert_same_reply(&mut ours, &mut theirs, &["PFADD", "v", "x", "y"], "add")?;
    assert_same_reply(&mut ours, &mut theirs, &["GET", "v"], "bytes")?;
    Ok(())
}

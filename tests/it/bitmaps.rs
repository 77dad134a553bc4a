//! Bitmaps and bitfields against valkey-server 8.1.8, byte for byte: a table of edge cases
//! (argument errors in Valkey's order, ranges in BYTE and BIT units, overflow modes), then a
//! seeded generator mixing SETBIT, BITFIELD, BITOP and the readers with other types and plain
//! string writes on the same keys, in RESP2 and RESP3. The bitmaps must also replicate and
//! survive a restart as the strings they are.

use anyhow::Result;

use crate::commands::Rng;
use crate::harness::{assert_same_reply, node_and_valkey_in, RawConn};

const CASES: &[&[&str]] = &[
    &["SETBIT", "b", "7", "1"],
    &["SETBIT", "b", "7", "1"],
    &["SETBIT", "b", "100", "1"],
    &["GET", "b"],
    &["SETBIT", "b", "-1", "1"],
    &["SETBIT", "b", "x", "1"],
    &["SETBIT", "b", "1", "2"],
    &["SETBIT", "b", "1", "01"],
    &["SETBIT", "b", "1", "-1"],
    &["SETBIT", "b", "4294967296", "1"],
    &["SETBIT", "b", "4294967295", "x"],
    &["GETBIT", "b", "7"],
    &["GETBIT", "b", "1000000"],
    &["GETBIT", "nokey", "3"],
    &["GETBIT", "b", "-1"],
    &["BITCOUNT", "b"],
    &["BITCOUNT", "b", "0"],
    &["BITCOUNT", "b", "0", "-1"],
    &["BITCOUNT", "b", "1", "1"],
    &["BITCOUNT", "b", "-2", "-1", "BYTE"],
    &["BITCOUNT", "b", "5", "30", "BIT"],
    &["BITCOUNT", "b", "0", "-1", "bits"],
    &["BITCOUNT", "b", "x", "1"],
    &["BITCOUNT", "nokey", "0", "1", "nope"],
    &["BITCOUNT", "nokey"],
    &["BITCOUNT", "b", "0", "1", "BIT", "extra"],
    &["BITPOS", "b", "1"],
    &["BITPOS", "b", "0"],
    &["BITPOS", "b", "2"],
    &["BITPOS", "b", "1", "1"],
    &["BITPOS", "b", "0", "0", "0"],
    &["BITPOS", "b", "1", "2", "-1", "BYTE"],
    &["BITPOS", "b", "1", "8", "100", "BIT"],
    &["BITPOS", "b", "0", "7", "7", "BIT"],
    &["BITPOS", "b", "1", "0", "-1", "nope"],
    &["BITPOS", "nokey", "0"],
    &["BITPOS", "nokey", "1"],
    &["SET", "ff", "\u{7f}"],
    &["SETRANGE", "ff", "0", "\u{7f}\u{7f}"],
    &["BITPOS", "ff", "0"],
    &["BITPOS", "ff", "0", "1"],
    &["BITPOS", "ff", "0", "1", "-1"],
    &["SET", "empty", ""],
    &["BITPOS", "empty", "0"],
    &["BITCOUNT", "empty"],
    &["BITOP", "AND", "dest", "b", "ff"],
    &["GET", "dest"],
    &["BITOP", "or", "dest", "b", "ff", "nokey"],
    &["GET", "dest"],
    &["BITOP", "XOR", "dest", "b", "b"],
    &["GET", "dest"],
    &["BITOP", "NOT", "dest", "ff"],
    &["GET", "dest"],
    &["BITOP", "NOT", "dest", "ff", "b"],
    &["BITOP", "NAND", "dest", "ff"],
    &["BITOP", "AND", "dest", "nokey", "nokey2"],
    &["EXISTS", "dest"],
    &["LPUSH", "list", "a"],
    &["BITOP", "OR", "dest", "b", "list"],
    &["SETBIT", "list", "1", "1"],
    &["GETBIT", "list", "1"],
    &["BITCOUNT", "list"],
    &["BITPOS", "list", "1"],
    &["BITFIELD", "list", "GET", "u8", "0"],
    &[
        "BITFIELD", "bf", "SET", "u8", "0", "255", "GET", "u8", "0", "GET", "i8", "0",
    ],
    &[
        "BITFIELD", "bf", "INCRBY", "u2", "100", "1", "OVERFLOW", "SAT", "INCRBY", "u2", "102", "5",
    ],
    &[
        "BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "200", "GET", "i8", "0",
    ],
    &[
        "BITFIELD", "bf", "OVERFLOW", "WRAP", "INCRBY", "i8", "0", "200",
    ],
    &[
        "BITFIELD",
        "bf",
        "SET",
        "i64",
        "0",
        "-9223372036854775808",
        "INCRBY",
        "i64",
        "0",
        "-1",
    ],
    &[
        "BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "-1",
    ],
    &[
        "BITFIELD", "bf", "SET", "u63", "#1", "-1", "GET", "u63", "#1",
    ],
    &[
        "BITFIELD", "bf", "SET", "i5", "#3", "100", "GET", "i5", "#3", "GET", "u5", "15",
    ],
    &["GET", "bf"],
    &["BITFIELD", "bf", "GET", "u64", "0"],
    &["BITFIELD", "bf", "GET", "i65", "0"],
    &["BITFIELD", "bf", "GET", "x8", "0"],
    &["BITFIELD", "bf", "GET", "u0", "0"],
    &["BITFIELD", "bf", "GET", "u8", "-1"],
    &["BITFIELD", "bf", "GET", "u8", "#-1"],
    &["BITFIELD", "bf", "GET", "u8", "#"],
    &["BITFIELD", "bf", "SET", "u8", "0", "x"],
    &["BITFIELD", "bf", "OVERFLOW", "MAYBE", "GET", "u8", "0"],
    &["BITFIELD", "bf", "GET", "u8"],
    &["BITFIELD", "bf", "FOO", "u8", "0"],
    &["BITFIELD", "bf", "OVERFLOW"],
    &["BITFIELD", "bf"],
    &[
        "BITFIELD", "newbf", "OVERFLOW", "FAIL", "INCRBY", "u2", "10", "9",
    ],
    &["GET", "newbf"],
    &["BITFIELD", "newbf2", "GET", "u8", "0"],
    &["EXISTS", "newbf2"],
    &[
        "BITFIELD", "bf", "GET", "u8", "1000", "SET", "u8", "16", "1", "GET", "u16", "8",
    ],
    &["BITFIELD_RO", "bf", "GET", "u8", "0", "GET", "i4", "#2"],
    &["BITFIELD_RO", "bf", "SET", "u8", "0", "1"],
    &["BITFIELD_RO", "bf", "OVERFLOW", "SAT", "GET", "u8", "0"],
    &["BITFIELD_RO", "bf", "INCRBY", "u8", "x", "1"],
    &["BITFIELD_RO", "nokey", "GET", "u8", "0"],
    &["SET", "ttl", "abc", "EX", "100"],
    &["SETBIT", "ttl", "30", "1"],
    &["TTL", "ttl"],
    &["BITOP", "OR", "ttl", "b"],
    &["TTL", "ttl"],
    &["SET", "num", "12345"],
    &["BITCOUNT", "num"],
    &["SETBIT", "num", "0", "1"],
    &["GET", "num"],
];

#[test]
fn bitmap_cases_match_valkey_byte_for_byte_in_resp2_and_resp3() -> Result<()> {
    crate::harness::assert_cases_match_valkey(CASES)
}

const KEYS: &[&str] = &["{b}1", "{b}2", "{b}3", "{b}4"];
const OFFSETS: &[&str] = &[
    "0", "1", "7", "8", "13", "31", "63", "64", "100", "257", "1023", "4000",
];
const RANGES: &[&str] = &[
    "0", "1", "2", "-1", "-2", "-7", "3", "10", "100", "-100", "17",
];
const TYPES: &[&str] = &[
    "u1", "u3", "u8", "i8", "u16", "i16", "i5", "u31", "i32", "i63", "u63", "i64",
];
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "7",
    "100",
    "-128",
    "255",
    "256",
    "65535",
    "-40000",
    "9223372036854775807",
    "-9223372036854775808",
    "123456789",
];

fn random_bitmap_command(r: &mut Rng) -> Vec<String> {
    let k = r.pick(KEYS).to_string();
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match r.below(24) {
        0..=4 => s(&["SETBIT", &k, r.pick(OFFSETS), r.pick(&["0", "1", "1"])]),
        5 | 6 => s(&["GETBIT", &k, r.pick(OFFSETS)]),
        7 | 8 => match r.below(4) {
            0 => s(&["BITCOUNT", &k]),
            3 => s(&["BITCOUNT", &k, r.pick(RANGES)]),
            1 => s(&["BITCOUNT", &k, r.pick(RANGES), r.pick(RANGES)]),
            _ => s(&[
                "BITCOUNT",
                &k,
                r.pick(RANGES),
                r.pick(RANGES),
                r.pick(&["BIT", "BYTE"]),
            ]),
        },
        9 | 10 => {
            let bit = r.pick(&["0", "1"]);
            match r.below(4) {
                0 => s(&["BITPOS", &k, bit]),
                1 => s(&["BITPOS", &k, bit, r.pick(RANGES)]),
                2 => s(&["BITPOS", &k, bit, r.pick(RANGES), r.pick(RANGES)]),
                _ => s(&[
                    "BITPOS",
                    &k,
                    bit,
                    r.pick(RANGES),
                    r.pick(RANGES),
                    r.pick(&["BIT", "BYTE"]),
                ]),
            }
        }
        11 | 12 => {
            let op = r.pick(&["AND", "OR", "XOR", "NOT"]);
            let mut c = s(&["BITOP", op, r.pick(KEYS)]);
            let n = if op == "NOT" { 1 } else { 1 + r.below(3) };
            for _ in 0..n {
                c.push(r.pick(KEYS).to_string());
            }
            c
        }
        13..=16 => {
            let ro = r.below(4) == 0;
            let mut c = s(&[if ro { "BITFIELD_RO" } else { "BITFIELD" }, &k]);
            for _ in 0..1 + r.below(3) {
                let ty = r.pick(TYPES);
                let off = if r.below(4) == 0 {
                    format!("#{}", r.below(6))
                } else {
                    r.pick(OFFSETS).to_string()
                };
                match if ro { 0 } else { r.below(5) } {
                    0 | 1 => c.extend(s(&["GET", ty, &off])),
                    2 => c.extend(s(&["SET", ty, &off, r.pick(VALUES)])),
                    3 => c.extend(s(&["INCRBY", ty, &off, r.pick(VALUES)])),
                    _ => c.extend(s(&["OVERFLOW", r.pick(&["WRAP", "SAT", "FAIL"])])),
                }
            }
            c
        }
        17 => s(&["GET", &k]),
        18 => s(&[
            "SET",
            &k,
            r.pick(&["", "a", "\u{ff}\u{ff}", "hello world", "0"]),
        ]),
        19 => s(&["APPEND", &k, r.pick(&["x", "\u{0}\u{1}"])]),
        20 => s(&["SETRANGE", &k, r.pick(&["0", "3", "20"]), "zz"]),
        21 => s(&["DEL", &k]),
        22 => s(&["RPUSH", &k, "e"]),
        _ => s(&["STRLEN", &k]),
    }
}

fn run(seed: u64, steps: usize, resp3: bool) -> Result<()> {
    let (_node, _valkey, mut ours, mut theirs) = node_and_valkey_in(resp3)?;
    let mut r = Rng(seed);
    for step in 0..steps {
        let cmd = random_bitmap_command(&mut r);
        assert_same_reply(
            &mut ours,
            &mut theirs,
            &cmd,
            &format!("seed {seed:#x} step {step} resp3={resp3}"),
        )?;
    }
    Ok(())
}

/// Thousands of seeded bitmap commands over keys that also hold lists and plain strings.
#[test]
fn generated_bitmap_commands_match_valkey() -> Result<()> {
    for (i, seed) in [0xb17_0001u64, 0xb17_0002, 0xb17_0003, 0xb17_0004]
        .into_iter()
        .enumerate()
    {
        run(seed, 2500, i % 2 == 1)?;
    }
    Ok(())
}

/// A bitmap is a string: it replicates, and survives SIGKILL and a restart, bit for bit.
#[test]
fn bitmaps_replicate_and_survive_sigkill() -> Result<()> {
    use crate::harness::Node;
    let mut primary = Node::builder().appendfsync("always").start()?;
    let replica = Node::start()?;
    let mut c = primary.raw()?;
    for i in (0..5000u64).step_by(7) {
        c.cmd(&["SETBIT", "bm", &i.to_string(), "1"])?;
    }
    c.cmd(&["BITFIELD", "bm", "SET", "u32", "#500", "4000000000"])?;
    let want = c.cmd(&["GET", "bm"])?;
    let mut rc: RawConn = replica.raw()?;
    rc.cmd(&["REPLICAOF", "127.0.0.1", &primary.port().to_string()])?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if rc.cmd(&["GET", "bm"])? == want {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the replica never had the bitmap"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    anyhow::ensure!(rc.cmd(&["BITCOUNT", "bm"])? == c.cmd(&["BITCOUNT", "bm"])?);
    primary.kill9()?;
    primary.restart()?;
    let mut c = primary.raw()?;
    anyhow::ensure!(
        c.cmd(&["GET", "bm"])? == want,
        "the bitmap changed across SIGKILL"
    );
    anyhow::ensure!(c.cmd(&["GETBIT", "bm", "4998"])? == b":1\r\n");
    Ok(())
}

//! Strings past the chunking threshold (1 MiB): bitmaps and ranges of several megabytes
//! byte for byte against valkey-server 8.1.8 through a seeded mix of bit, range and whole-value
//! commands (strings crossing the threshold both ways, TTLs, RENAME, COPY, BITOP, DUMP); and a
//! bitmap of 2^32 bits that stays small on disk and in memory and survives SIGKILL.

use anyhow::{ensure, Result};

use crate::commands::Rng;
use crate::harness::{assert_same_reply, Node};

const KEYS: &[&str] = &["b1", "b2"];

fn random_command(r: &mut Rng) -> Vec<String> {
    let k = r.pick(KEYS).to_string();
    let k2 = r.pick(KEYS).to_string();
    // Offsets up to 3 MB: either side of the 1 MiB threshold, across 16 KiB chunks.
    let byte = match r.below(3) {
        0 => r.below(4096),
        1 => (1 << 20) - 64 + r.below(128),
        _ => r.below(3 << 20),
    };
    let bit = byte * 8 + r.below(8);
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let idx = |r: &mut Rng| -> String {
        let v = r.below(3_500_000) as i64;
        (if r.below(4) == 0 { -v } else { v }).to_string()
    };
    match r.below(30) {
        0..=6 => s(&["SETBIT", &k, &bit.to_string(), &r.below(2).to_string()]),
        7 | 8 => s(&["GETBIT", &k, &bit.to_string()]),
        9 => s(&["BITCOUNT", &k]),
        10 => s(&["BITCOUNT", &k, &idx(r), &idx(r)]),
        11 => s(&["BITCOUNT", &k, &idx(r), &idx(r), "BIT"]),
        12 => s(&["BITPOS", &k, &r.below(2).to_string()]),
        13 => s(&["BITPOS", &k, &r.below(2).to_string(), &idx(r)]),
        14 => s(&[
            "BITPOS",
            &k,
            &r.below(2).to_string(),
            &idx(r),
            &idx(r),
            "BIT",
        ]),
        15 => s(&[
            "SETRANGE",
            &k,
            &byte.to_string(),
            &"xyz".repeat(r.below(3) as usize),
        ]),
        16 => s(&["GETRANGE", &k, &idx(r), &idx(r)]),
        17 => s(&["APPEND", &k, "tail"]),
        18 | 19 => s(&["STRLEN", &k]),
        20 => {
            if r.below(3) == 0 {
                s(&["SET", &k, "small"])
            } else {
                s(&["TYPE", &k])
            }
        }
        21 => s(&["EXPIRE", &k, "1000"]),
        22 => s(&["TTL", &k]),
        23 => {
            if r.below(4) == 0 {
                s(&["DEL", &k])
            } else {
                s(&["EXISTS", &k])
            }
        }
        24 => s(&["RENAME", &k, &k2]),
        25 => s(&["COPY", &k, "copy", "REPLACE"]),
        26 => s(&["BITOP", "OR", "dest", &k, &k2]),
        27 => s(&["GETRANGE", "dest", "-5", "-1"]),
        28 => s(&["BITFIELD", &k, "INCRBY", "u8", &bit.to_string(), "7"]),
        _ => s(&["TYPE", &k]),
    }
}

/// Seeded bit, range and whole-value commands on strings of up to a few megabytes; every
/// reply identical to valkey-server 8.1.8's, and the values equal at the end.
#[test]
fn big_strings_match_valkey_across_the_chunking_threshold() -> Result<()> {
    for (i, seed) in [0xb16_0001u64, 0xb16_0002].into_iter().enumerate() {
        let resp3 = i % 2 == 1;
        let (_node, _valkey, mut ours, mut theirs) = crate::harness::node_and_valkey_in(resp3)?;
        let mut r = Rng(seed);
        let mut big = 0;
        for step in 0..1500 {
            let cmd = random_command(&mut r);
            let at = format!("seed {seed:#x} step {step} resp3={resp3}");
            assert_same_reply(&mut ours, &mut theirs, &cmd, &at)?;
            if cmd[0] == "STRLEN" && int(&mut ours, &["STRLEN", &cmd[1]])? > 1 << 20 {
                big += 1;
            }
        }
        // The run spent time past the threshold, where values are kept in chunks.
        ensure!(big > 20, "only {big} STRLEN replies above 1 MiB");
        for k in [KEYS[0], KEYS[1], "copy", "dest"] {
            assert_same_reply(&mut ours, &mut theirs, &["GET", k], "end")?;
            assert_same_reply(&mut ours, &mut theirs, &["BITCOUNT", k], "end")?;
            // Each server's DUMP restores on the other with the same bytes.
            let (a, b) = (ours.cmd(&["DUMP", k])?, theirs.cmd(&["DUMP", k])?);
            for (conn, frame) in [(&mut theirs, &a), (&mut ours, &b)] {
                if frame.starts_with(b"$-1") || frame.starts_with(b"_") {
                    continue;
                }
                let at = frame.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
                let payload = &frame[at + 2..frame.len() - 2];
                let cmd: Vec<&[u8]> = vec![b"RESTORE", b"restored", b"0", payload, b"REPLACE"];
                let reply = conn.cmd(&cmd)?;
                ensure!(
                    reply == b"+OK\r\n",
                    "RESTORE of {k}: {}",
                    crate::harness::show(&reply)
                );
            }
            assert_same_reply(&mut ours, &mut theirs, &["GET", "restored"], "restored")?;
        }
    }
    Ok(())
}

fn int(c: &mut crate::harness::RawConn, cmd: &[&str]) -> Result<i64> {
    let r = c.cmd(cmd)?;
    let t = String::from_utf8_lossy(&r);
    t.trim_start_matches(':')
        .trim_end()
        .parse()
        .map_err(|_| anyhow::anyhow!("{cmd:?}: {t}"))
}

/// SETBIT at bit 2^32-1 makes a 512 MiB string that stores one chunk: the data directory and
/// the server's memory stay small, bit commands answer, and it survives SIGKILL.
#[test]
fn a_bitmap_of_2_pow_32_bits_stays_small_and_durable() -> Result<()> {
    let mut node = Node::start()?;
    let mut c = node.raw()?;
    let top = (1u64 << 32) - 1;
    ensure!(int(&mut c, &["SETBIT", "huge", &top.to_string(), "1"])? == 0);
    for b in [0u64, 12_345_678, 1 << 31] {
        ensure!(int(&mut c, &["SETBIT", "huge", &b.to_string(), "1"])? == 0);
    }
    ensure!(
        int(&mut c, &["SETBIT", "huge", "0", "1"])? == 1,
        "the bit was set"
    );
    let check = |c: &mut crate::harness::RawConn, k: &str| -> Result<()> {
        ensure!(int(c, &["STRLEN", k])? == 1 << 29, "512 MiB long");
        ensure!(int(c, &["BITCOUNT", k])? == 4);
        ensure!(int(c, &["GETBIT", k, &top.to_string()])? == 1);
        ensure!(int(c, &["GETBIT", k, "77"])? == 0);
        ensure!(int(c, &["BITPOS", k, "1", "1"])? == 12_345_678);
        ensure!(int(c, &["BITPOS", k, "0"])? == 1);
        ensure!(
            int(c, &["BITCOUNT", k, "268435456", "-1"])? == 2,
            "the upper half"
        );
        let r = c.cmd(&["GETRANGE", k, "-1", "-1"])?;
        ensure!(r == b"$1\r\n\x01\r\n", "{}", crate::harness::show(&r));
        Ok(())
    };
    check(&mut c, "huge")?;
    // Key commands that do not need the bytes leave the chunks where they are.
    ensure!(int(&mut c, &["EXPIRE", "huge", "100000"])? == 1);
    ensure!(int(&mut c, &["TTL", "huge"])? > 99_000);
    check(&mut c, "huge")?;
    ensure!(int(&mut c, &["PERSIST", "huge"])? == 1);
    ensure!(c.cmd(&["RENAME", "huge", "big"])? == b"+OK\r\n");
    ensure!(int(&mut c, &["COPY", "big", "huge"])? == 1);
    check(&mut c, "big")?;
    check(&mut c, "huge")?;
    ensure!(int(&mut c, &["DEL", "big"])? == 1);
    ensure!(int(&mut c, &["EXISTS", "big"])? == 0);
    let rss_kb: u64 = std::fs::read_to_string(format!("/proc/{}/status", node.pid().unwrap_or(0)))?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(u64::MAX);
    ensure!(
        rss_kb < 400 << 10,
        "RSS {rss_kb} kB for a sparse 512 MiB bitmap"
    );
    drop(c);
    node.kill9()?;
    node.restart()?;
    let mut c = node.raw()?;
    check(&mut c, "huge")?;
    let on_disk: u64 = walk_size(node.dir())?;
    ensure!(
        on_disk < 64 << 20,
        "{on_disk} bytes on disk for four set bits"
    );
    Ok(())
}

fn walk_size(p: &std::path::Path) -> Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(p)? {
        let e = e?;
        let m = e.metadata()?;
        n += if m.is_dir() {
            walk_size(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(n)
}

/// Two clients appending to the same chunked string at once: every append lands (the length
/// is read and written under the key's lock), and so does every SETBIT to one byte.
#[test]
fn concurrent_appends_and_setbits_on_a_chunked_string_all_land() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.raw()?;
    let start = (1u64 << 20) + 100;
    ensure!(int(&mut c, &["SETRANGE", "big", &(start - 1).to_string(), "x"])? == start as i64);
    let rounds = 1500;
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let addr = node.addr();
            std::thread::spawn(move || -> Result<()> {
                let mut c = crate::harness::RawConn::connect(addr)?;
                // Pipelines of 50: a scope holds the key while the other client reads.
                for i in 0..rounds / 50 {
                    let mut batch = Vec::new();
                    for j in 0..50 {
                        batch.extend(crate::harness::encode_cmd(&["APPEND", "big", "abcd"]));
                        // Bits of one byte inside the string, shared by the two workers.
                        let bit = (start - 50) * 8 + ((i + j) % 4) * 2 + w;
                        let bit = bit.to_string();
                        batch.extend(crate::harness::encode_cmd(&["SETBIT", "big", &bit, "1"]));
                    }
                    c.send(&batch)?;
                    c.read_frames(100)?;
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    ensure!(
        int(&mut c, &["STRLEN", "big"])? == (start + 4 * rounds * 4) as i64,
        "appends were lost"
    );
    let r = c.cmd(&[
        "GETRANGE",
        "big",
        &(start - 50).to_string(),
        &(start - 50).to_string(),
    ])?;
    ensure!(
        r == b"$1\r\n\xff\r\n",
        "setbits were lost: {}",
        crate::harness::show(&r)
    );
    Ok(())
}

//! Keyspace notifications (`notify-keyspace-events`) against valkey-server 8.1.8: the same
//! command stream on both, with a pattern subscriber on each, must publish the same messages
//! in the same order (`__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>`), commands
//! of every type mixed on the same keys in two databases, the event classes changed
//! mid-stream, lazy expiry included. CONFIG SET/GET of the setting answer as Valkey does.

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::commands::Rng;
use crate::harness::{assert_same_reply, encode_cmd, show, RawConn, RedisServer};

const CONFIG_CASES: &[&[&str]] = &[
    &["CONFIG", "GET", "notify-keyspace-events"],
    &["CONFIG", "SET", "notify-keyspace-events", "AKEn"],
    &["CONFIG", "GET", "notify-keyspace-events"],
    &["CONFIG", "SET", "notify-keyspace-events", "Elg"],
    &["CONFIG", "GET", "notify-keyspace-events"],
    &["CONFIG", "SET", "notify-keyspace-events", "gEn"],
    &["CONFIG", "GET", "notify-keyspace-events"],
    &["CONFIG", "SET", "notify-keyspace-events", "q"],
    &["CONFIG", "GET", "notify-keyspace-events"],
    &["CONFIG", "SET", "notify-keyspace-events", "AKEm"],
    &["CONFIG", "GET", "notify-keyspace-events"],
    &["CONFIG", "SET", "notify-keyspace-events", ""],
    &["CONFIG", "GET", "notify-keyspace-events"],
];

#[test]
fn notify_keyspace_events_setting_matches_valkey() -> Result<()> {
    crate::harness::assert_cases_match_valkey(CONFIG_CASES)
}

/// Every message the subscriber got before the answer to a PING it sends now.
pub(crate) fn drain(sub: &mut RawConn) -> Result<Vec<String>> {
    sub.send(&encode_cmd(&["PING", "mark"]))?;
    let mut out = Vec::new();
    for _ in 0..1000 {
        let f = sub.read_frame()?;
        let text = show(&f);
        if text.contains("mark") && !text.contains("pmessage") {
            return Ok(out);
        }
        out.push(text);
    }
    anyhow::bail!("no answer to PING after 1000 messages")
}

/// A pattern subscriber to every keyspace and keyevent channel of each server.
fn subscribers(addrs: &[std::net::SocketAddr]) -> Result<Vec<RawConn>> {
    addrs
        .iter()
        .map(|&addr| {
            let mut s = RawConn::connect(addr)?;
            s.set_timeout(Duration::from_secs(10))?;
            s.cmd(&["PSUBSCRIBE", "__key*__:*"])?;
            Ok(s)
        })
        .collect()
}

const KEYS: &[&str] = &["{n}a", "{n}b", "{n}c"];

fn random_command(r: &mut Rng) -> Vec<String> {
    let k = r.pick(KEYS).to_string();
    let k2 = r.pick(KEYS).to_string();
    let v = format!("v{}", r.below(4));
    let n = r.below(5).to_string();
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let k3 = r.pick(KEYS).to_string();
    match r.below(104) {
        0 => s(&["SET", &k, &v]),
        1 => s(&["SET", &k, &v, "NX"]),
        2 => s(&["SET", &k, &v, "EX", "100"]),
        3 => s(&["SET", &k, &v, "XX", "GET"]),
        4 => s(&["SETEX", &k, "100", &v]),
        5 => s(&["MSET", &k, &v, &k2, "w"]),
        6 => s(&["INCR", &k]),
        7 => s(&["INCRBYFLOAT", &k, "1.5"]),
        8 => s(&["APPEND", &k, "x"]),
        9 => s(&["SETRANGE", &k, "1", r.pick(&["", "zz"])]),
        10 => s(&["SETBIT", &k, "3", r.pick(&["0", "1"])]),
        11 => s(&["GETDEL", &k]),
        12 => s(&["GETEX", &k, r.pick(&["EX", "PERSIST"]), "100"]),
        13 => s(&["DEL", &k, &k2]),
        14 => s(&["EXPIRE", &k, r.pick(&["100", "-1"])]),
        15 => s(&["PERSIST", &k]),
        16 => s(&["RENAME", &k, &k2]),
        17 => s(&["COPY", &k, &k2, "REPLACE"]),
        18 => s(&["LPUSH", &k, &v]),
        19 => s(&["RPUSH", &k, &v, "w"]),
        20 => s(&["LPOP", &k]),
        21 => s(&["RPOP", &k, "2"]),
        22 => s(&[
            "LMOVE",
            &k,
            &k2,
            r.pick(&["LEFT", "RIGHT"]),
            r.pick(&["LEFT", "RIGHT"]),
        ]),
        23 => s(&["RPOPLPUSH", &k, &k2]),
        24 => s(&["LTRIM", &k, "1", "-1"]),
        25 => s(&["LREM", &k, "0", &v]),
        26 => s(&["LSET", &k, "0", &v]),
        27 => s(&["LINSERT", &k, "BEFORE", &v, "ins"]),
        28 => s(&["LMPOP", "2", &k, &k2, r.pick(&["LEFT", "RIGHT"])]),
        29 => s(&["HSET", &k, "f", &v]),
        30 => s(&["HSETNX", &k, "g", &v]),
        31 => s(&["HDEL", &k, "f", "g"]),
        32 => s(&["HINCRBY", &k, "n", "2"]),
        33 => s(&["HINCRBYFLOAT", &k, "x", "0.5"]),
        34 => s(&["SADD", &k, &v]),
        35 => s(&["SREM", &k, &v]),
        36 => s(&["SMOVE", &k, &k2, &v]),
        37 => s(&["SINTERSTORE", &k, &k2, &k]),
        38 => s(&["SUNIONSTORE", &k, &k2]),
        39 => s(&["ZADD", &k, &n, &v]),
        40 => s(&["ZADD", &k, "INCR", "1", &v]),
        41 => s(&["ZINCRBY", &k, "2", &v]),
        42 => s(&["ZREM", &k, &v]),
        43 => s(&["ZPOPMIN", &k]),
        44 => s(&["ZPOPMAX", &k]),
        45 => s(&["ZREMRANGEBYSCORE", &k, "0", "2"]),
        46 => s(&["ZREMRANGEBYRANK", &k, "0", "0"]),
        47 => s(&["ZUNIONSTORE", &k, "2", &k, &k2]),
        48 => s(&["ZRANGESTORE", &k, &k2, "0", "1"]),
        49 => s(&["ZMPOP", "1", &k, r.pick(&["MIN", "MAX"])]),
        50 => s(&["PFADD", &k, &v]),
        51 => s(&["SELECT", r.pick(&["0", "1"])]),
        52 => s(&["MOVE", &k, r.pick(&["0", "1"])]),
        53 => s(&["COPY", &k, &k2, "DB", r.pick(&["0", "1"])]),
        54 => s(&["GEOADD", &k, "13.3", "38.1", &v]),
        55 => s(&["BITOP", "OR", &k, &k2]),
        56 => s(&[
            "CONFIG",
            "SET",
            "notify-keyspace-events",
            r.pick(&[
                "KEA", "AKEn", "Kg$", "El", "Eshz", "KEx", "AK", "KEAm", "Em", "Kmx",
            ]),
        ]),
        57 => s(&["SORT", &k, "ALPHA", "STORE", &k2]),
        58 => s(&["UNLINK", &k]),
        59 => s(&["EXISTS", &k]),
        60 => s(&["TYPE", &k]),
        61 => s(&["TTL", &k]),
        62 => s(&["HGET", &k, "f"]),
        63 => s(&["LRANGE", &k, "0", "-1"]),
        64 => s(&["SCARD", &k]),
        65 => s(&["ZSCORE", &k, &v]),
        66 => s(&["STRLEN", &k]),
        // Streams on the same keys (ids climb with `n`, so some adds are refused).
        67 | 68 => s(&["XADD", &k, &format!("{}-*", r.below(40)), "f", &v]),
        69 => s(&[
            "XADD",
            &k,
            "MAXLEN",
            &n,
            &format!("{}-*", r.below(40)),
            "f",
            &v,
        ]),
        70 => s(&[
            "XADD",
            &k,
            "NOMKSTREAM",
            &format!("{}-1", r.below(40)),
            "f",
            &v,
        ]),
        71 => s(&["XTRIM", &k, "MAXLEN", &n]),
        72 => s(&["XDEL", &k, &format!("{}-0", r.below(40))]),
        73 => s(&["XGROUP", "CREATE", &k, "g", "0", "MKSTREAM"]),
        74 => match r.below(3) {
            0 => s(&["XGROUP", "DESTROY", &k, "g"]),
            1 => s(&["XGROUP", "CREATECONSUMER", &k, "g", &v]),
            _ => s(&["XGROUP", "DELCONSUMER", &k, "g", &v]),
        },
        75 => s(&["XGROUP", "SETID", &k, "g", "0"]),
        76 => s(&[
            "XREADGROUP",
            "GROUP",
            "g",
            &v,
            "COUNT",
            "2",
            "STREAMS",
            &k,
            ">",
        ]),
        77 => s(&["XSETID", &k, &format!("{}-5", r.below(60))]),
        78 => s(&[
            "XCLAIM",
            &k,
            "g",
            &v,
            "0",
            &format!("{}-0", r.below(40)),
            "JUSTID",
        ]),
        79 => s(&["XAUTOCLAIM", &k, "g", &v, "0", "0", "JUSTID"]),
        // Reads, for `keymiss` (the lookups stop at a key of the wrong type).
        80 => s(&["MGET", &k, &k2, &k]),
        81 => s(&["EXISTS", &k, &k2, &k3]),
        82 => s(&["TOUCH", &k, &k2]),
        83 => s(&[r.pick(&["SINTER", "SUNION", "SDIFF"]), &k, &k2, &k3]),
        84 => s(&["SINTERCARD", "2", &k, &k2]),
        85 => s(&[r.pick(&["ZUNION", "ZINTER", "ZDIFF"]), "2", &k, &k2]),
        86 => s(&["ZINTERSTORE", &k, "2", &k2, &k3]),
        87 => s(&["PFCOUNT", &k, &k2]),
        88 => s(&["PFMERGE", &k, &k2, &k3]),
        89 => s(&["LCS", &k, &k2]),
        90 => s(&["XREAD", "COUNT", "1", "STREAMS", &k, &k2, "0", "0"]),
        91 => s(&["GETSET", &k, &v]),
        92 => s(&["SET", &k, &v, "GET"]),
        93 => s(&["GETEX", &k]),
        94 => s(&["BITFIELD", &k, "GET", "u8", "0"]),
        95 => s(&["BITFIELD", &k, "INCRBY", "u8", "0", "1"]),
        96 => s(&[
            r.pick(&["SMEMBERS", "HGETALL", "SRANDMEMBER", "XLEN", "ZCARD"]),
            &k,
        ]),
        97 => s(&["LPOS", &k, &v]),
        98 => s(&["ZRANGE", &k, "0", "-1"]),
        99 => s(&["HMGET", &k, "f", "n"]),
        100 => s(&["OBJECT", "FREQ", &k]),
        101 => s(&["SINTERSTORE", &k, &k2, &k3]),
        102 => s(&["SORT_RO", &k, "ALPHA"]),
        103 => s(&["GETRANGE", &k, "0", "3"]),
        _ => s(&["GET", &k]),
    }
}

/// Thousands of seeded commands; after each, the subscribers of both servers got the same
/// messages.
#[test]
fn generated_commands_publish_what_valkey_publishes() -> Result<()> {
    for (i, seed) in [
        0x4e0_0001u64,
        0x4e0_0002,
        0x4e0_0003,
        0x4e0_0004,
        0x4e0_0005,
        0x4e0_0006,
    ]
    .into_iter()
    .enumerate()
    {
        let resp3 = i % 2 == 1;
        let node = crate::harness::Node::start()?;
        let valkey = RedisServer::start_valkey_with(&["--enable-debug-command", "yes"])?;
        let (mut ours, mut theirs) = (node.raw()?, RawConn::connect(valkey.addr())?);
        if resp3 {
            ours.cmd(&["HELLO", "3"])?;
            theirs.cmd(&["HELLO", "3"])?;
        }
        let mut subs = subscribers(&[node.addr(), valkey.addr()])?;
        let flags = if i >= 2 { "KEAm" } else { "KEA" };
        let setup: &[&[&str]] = &[
            &["CONFIG", "SET", "notify-keyspace-events", flags],
            // Expiry only when a command looks, so both expire at the same point.
            &["DEBUG", "SET-ACTIVE-EXPIRE", "0"],
        ];
        for cmd in setup {
            assert_same_reply(&mut ours, &mut theirs, cmd, "setup")?;
        }
        let mut r = Rng(seed);
        for step in 0..2500 {
            let at = format!("seed {seed:#x} step {step} resp3={resp3}");
            if r.below(20) == 0 {
                // Keys that expired: the next command that reads one raises `expired` (then
                // `keymiss`, lookup by lookup).
                let first = r.below(KEYS.len() as u64) as usize;
                for n in 0..1 + r.below(2) as usize {
                    let k = KEYS[(first + n) % KEYS.len()];
                    for c in [&["SET", k, "x"][..], &["PEXPIRE", k, "1"]] {
                        assert_same_reply(&mut ours, &mut theirs, c, &at)?;
                    }
                }
                std::thread::sleep(Duration::from_millis(3));
            }
            let cmd = random_command(&mut r);
            assert_same_reply(&mut ours, &mut theirs, &cmd, &at)?;
            let got = drain(&mut subs[0])?;
            let want = drain(&mut subs[1])?;
            ensure!(
                got == want,
                "{at}: {cmd:?}\n ours:   {got:?}\n valkey: {want:?}"
            );
        }
    }
    Ok(())
}

/// Active expiry (no command touches the key) publishes `expired` and invalidates the key for
/// a tracking client, as lazy expiry does.
#[test]
fn active_expiry_publishes_expired_and_invalidates() -> Result<()> {
    let node = crate::harness::Node::start()?;
    let mut c = node.raw()?;
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Ex"])?;
    let mut sub = RawConn::connect(node.addr())?;
    sub.cmd(&["SUBSCRIBE", "__keyevent@0__:expired"])?;
    let mut tracker = RawConn::connect(node.addr())?;
    tracker.cmd(&["HELLO", "3"])?;
    tracker.cmd(&["CLIENT", "TRACKING", "on"])?;
    c.cmd(&["SET", "soon", "x", "PX", "100"])?;
    tracker.cmd(&["GET", "soon"])?;
    // Nobody reads the key again: only the background cycle can delete it.
    sub.set_timeout(Duration::from_secs(10))?;
    let msg = show(&sub.read_frame()?);
    ensure!(
        msg.contains("__keyevent@0__:expired") && msg.contains("soon"),
        "expired event: {msg}"
    );
    tracker.set_timeout(Duration::from_secs(10))?;
    let push = show(&tracker.read_frame()?);
    ensure!(
        push.contains("invalidate") && push.contains("soon"),
        "invalidation: {push}"
    );
    Ok(())
}

/// `keymiss` (class `m`, not part of `A`): one per read lookup that finds nothing, after the
/// `expired` of a key that lookup deleted, stopping where a wrong type stops the command;
/// none for write lookups. The same stream on valkey-server 8.1.8 publishes the same.
#[test]
fn key_misses_follow_valkeys_lookups() -> Result<()> {
    let node = crate::harness::Node::start()?;
    let valkey = RedisServer::start_valkey_with(&["--enable-debug-command", "yes"])?;
    let (mut ours, mut theirs) = (node.raw()?, RawConn::connect(valkey.addr())?);
    let mut subs = subscribers(&[node.addr(), valkey.addr()])?;
    let expire_two: &[&[&str]] = &[
        &["SET", "{m}e1", "x", "PX", "1"],
        &["SET", "{m}e2", "x", "PX", "1"],
    ];
    let cases: &[&[&str]] = &[
        &["CONFIG", "SET", "notify-keyspace-events", "KEAm"],
        &["DEBUG", "SET-ACTIVE-EXPIRE", "0"],
        &["SADD", "{m}s", "a"],
        &["RPUSH", "{m}l", "a"],
        &["SET", "{m}str", "v"],
        &["GET", "{m}none"],
        &["MGET", "{m}none", "{m}str", "{m}none"],
        &["EXISTS", "{m}none", "{m}s", "{m}other"],
        &["SINTER", "{m}s", "{m}none", "{m}other"],
        &["SINTER", "{m}none", "{m}l", "{m}other"],
        &["SUNIONSTORE", "{m}dst", "{m}none", "{m}s"],
        &["PFMERGE", "{m}hll", "{m}none"],
        &["PFCOUNT", "{m}none", "{m}str", "{m}other"],
        &["LCS", "{m}none", "{m}l"],
        &["XREAD", "STREAMS", "{m}none", "{m}other", "0", "0"],
        &["COPY", "{m}none", "{m}dst2"],
        // XREADGROUP stops at the first key that is missing or lacks the group.
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "STREAMS",
            "{m}none",
            "{m}other",
            ">",
            ">",
        ],
        &["XADD", "{m}x", "1-1", "f", "v"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "STREAMS",
            "{m}x",
            "{m}none",
            ">",
            ">",
        ],
        &["SET", "{m}new", "v", "GET"],
        &["GETDEL", "{m}none"],
        &["BITFIELD", "{m}none", "GET", "u8", "0"],
        &["BITFIELD", "{m}none2", "SET", "u8", "0", "1"],
        &["INCR", "{m}counter"],
        &["LPOP", "{m}none"],
        &["DEL", "{m}none"],
        &["OBJECT", "ENCODING", "{m}none"],
        &["EVAL", "return redis.call('GET', KEYS[1])", "1", "{m}none"],
        &["CONFIG", "SET", "notify-keyspace-events", "Km"],
        &["TYPE", "{m}none"],
        &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
        &["GET", "{m}none"],
    ];
    let mut misses = 0;
    for (i, cmd) in cases.iter().enumerate() {
        if matches!(cmd[0], "MGET" | "SINTER" | "XREAD") {
            // Two keys that expired: each lookup announces `expired`, then `keymiss`.
            for c in expire_two {
                assert_same_reply(&mut ours, &mut theirs, c, "setup")?;
            }
            std::thread::sleep(Duration::from_millis(5));
            let mut with_expired: Vec<&str> = cmd.to_vec();
            with_expired.extend(["{m}e1", "{m}e2"]);
            if cmd[0] == "XREAD" {
                with_expired = vec![
                    "XREAD", "STREAMS", "{m}e1", "{m}none", "{m}e2", "0", "0", "0",
                ];
            }
            let at = format!("case {i} with expired keys");
            assert_same_reply(&mut ours, &mut theirs, &with_expired, &at)?;
            let (got, want) = (drain(&mut subs[0])?, drain(&mut subs[1])?);
            ensure!(
                got == want,
                "{at}: {with_expired:?}\n ours:   {got:?}\n valkey: {want:?}"
            );
            misses += want.iter().filter(|m| m.contains("keymiss")).count();
        }
        let at = format!("case {i}");
        assert_same_reply(&mut ours, &mut theirs, cmd, &at)?;
        let (got, want) = (drain(&mut subs[0])?, drain(&mut subs[1])?);
        ensure!(
            got == want,
            "{at}: {cmd:?}\n ours:   {got:?}\n valkey: {want:?}"
        );
        misses += want.iter().filter(|m| m.contains("keymiss")).count();
    }
    // Both servers announced misses (the comparison above is not of two empty streams).
    ensure!(misses >= 40, "only {misses} keymiss messages");
    Ok(())
}

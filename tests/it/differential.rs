//! The mixed-type differential test against valkey-server 8.1.8: one seeded stream of
//! commands over a handful of keys that change type all the time (WRONGTYPE, cross-type
//! algebra, RENAME/COPY over other types, expiry in the middle, encoding thresholds changed
//! mid-stream), sent to a rockslot node and to valkey-server, replies compared byte for byte
//! in RESP2 and RESP3. Only the order inside replies Valkey leaves unordered (SMEMBERS,
//! HGETALL, …) is normalised.

use anyhow::Result;

use crate::commands::Rng;
use crate::harness::{frame_len, show, Node, RawConn, RedisServer};

const KEYS: &[&str] = &["k1", "k2", "k3", "k4", "k5"];
const MEMBERS: &[&str] = &["a", "b", "c", "1", "2", "10", "-3", "", "x y", "m"];
const SCORES: &[&str] = &[
    "1", "2.5", "-1", "0", "inf", "-inf", "1e3", "0.1", "nan", "x", "3",
];
const INTS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "5",
    "-3",
    "100",
    "x",
    "9223372036854775807",
];

/// Commands whose reply is a set in Valkey (order unspecified): compare sorted.
const UNORDERED: &[&str] = &[
    "SMEMBERS", "SUNION", "SINTER", "SDIFF", "HKEYS", "HVALS", "KEYS",
];
/// Replies that are field/value pairs in unspecified order.
const UNORDERED_PAIRS: &[&str] = &["HGETALL"];

fn long_member() -> String {
    "v".repeat(70)
}

fn gen(r: &mut Rng) -> Vec<String> {
    let k = |r: &mut Rng| r.pick(KEYS).to_string();
    let m = |r: &mut Rng| {
        if r.below(20) == 0 {
            long_member()
        } else {
            r.pick(MEMBERS).to_string()
        }
    };
    let s = |r: &mut Rng| r.pick(SCORES).to_string();
    let i = |r: &mut Rng| r.pick(INTS).to_string();
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let f = |r: &mut Rng| {
        r.pick(&[
            "0.1", "-2.5", "1e3", "3", "1.0e-17", "5.0e3", "x", "inf", "0.333",
        ])
        .to_string()
    };
    let mut c: Vec<String> = match r.below(90) {
        // strings
        0 => v(&["SET", &k(r), &m(r)]),
        1 => v(&["SET", &k(r), &i(r), r.pick(&["NX", "XX", "GET", "KEEPTTL"])]),
        2 => v(&["GET", &k(r)]),
        3 => v(&["APPEND", &k(r), &m(r)]),
        4 => v(&["INCR", &k(r)]),
        5 => v(&["INCRBY", &k(r), &i(r)]),
        6 => v(&["DECRBY", &k(r), &i(r)]),
        7 => v(&["GETRANGE", &k(r), &i(r), &i(r)]),
        8 => v(&["SETRANGE", &k(r), r.pick(&["0", "3", "-1"]), &m(r)]),
        9 => v(&["STRLEN", &k(r)]),
        10 => v(&["GETDEL", &k(r)]),
        11 => v(&["MGET", &k(r), &k(r), &k(r)]),
        12 => v(&["MSETNX", &k(r), &m(r), &k(r), &m(r)]),
        13 => v(&["SETNX", &k(r), &m(r)]),
        14 => v(&["GETSET", &k(r), &m(r)]),
        // lists
        15 => v(&["LPUSH", &k(r), &m(r), &m(r)]),
        16 => v(&["RPUSH", &k(r), &m(r)]),
        17 => v(&["LPOP", &k(r)]),
        18 => v(&["RPOP", &k(r), r.pick(&["0", "1", "2", "5", "-1"])]),
        19 => v(&["LRANGE", &k(r), &i(r), &i(r)]),
        20 => v(&["LINDEX", &k(r), &i(r)]),
        // Not 2^63-1: valkey-server 8.1.8 truncates LSET's index of a listpack list to 32
        // bits (LSET l 9223372036854775807 x sets the last element); rockslot says out of range.
        21 => v(&[
            "LSET",
            &k(r),
            r.pick(&["0", "1", "-1", "5", "-3", "x"]),
            &m(r),
        ]),
        22 => v(&[
            "LINSERT",
            &k(r),
            r.pick(&["BEFORE", "AFTER", "UP"]),
            &m(r),
            &m(r),
        ]),
        23 => v(&["LREM", &k(r), &i(r), &m(r)]),
        24 => v(&["LTRIM", &k(r), &i(r), &i(r)]),
        25 => v(&["LLEN", &k(r)]),
        26 => v(&["LPOS", &k(r), &m(r)]),
        27 => v(&[
            "LMOVE",
            &k(r),
            &k(r),
            r.pick(&["LEFT", "RIGHT"]),
            r.pick(&["LEFT", "RIGHT"]),
        ]),
        28 => v(&["RPUSHX", &k(r), &m(r)]),
        // sets
        29 => v(&["SADD", &k(r), &m(r), &m(r), &m(r)]),
        30 => v(&["SREM", &k(r), &m(r), &m(r)]),
        31 => v(&["SMEMBERS", &k(r)]),
        32 => v(&["SCARD", &k(r)]),
        33 => v(&["SISMEMBER", &k(r), &m(r)]),
        34 => v(&["SMISMEMBER", &k(r), &m(r), &m(r)]),
        35 => v(&["SINTERCARD", "2", &k(r), &k(r)]),
        36 => v(&["SMOVE", &k(r), &k(r), &m(r)]),
        37 => v(&[
            r.pick(&["SUNIONSTORE", "SINTERSTORE", "SDIFFSTORE"]),
            &k(r),
            &k(r),
            &k(r),
        ]),
        38 => v(&[r.pick(&["SUNION", "SINTER", "SDIFF"]), &k(r), &k(r)]),
        // hashes
        39 => v(&["HSET", &k(r), &m(r), &m(r), &m(r), &i(r)]),
        40 => v(&["HGET", &k(r), &m(r)]),
        41 => v(&["HDEL", &k(r), &m(r), &m(r)]),
        42 => v(&["HLEN", &k(r)]),
        43 => v(&["HEXISTS", &k(r), &m(r)]),
        44 => v(&["HINCRBY", &k(r), &m(r), &i(r)]),
        45 => v(&["HMGET", &k(r), &m(r), &m(r)]),
        46 => v(&["HSETNX", &k(r), &m(r), &m(r)]),
        47 => v(&["HSTRLEN", &k(r), &m(r)]),
        48 => v(&[r.pick(&["HGETALL", "HKEYS", "HVALS"]), &k(r)]),
        // sorted sets
        49 => v(&["ZADD", &k(r), &s(r), &m(r), &s(r), &m(r)]),
        50 => v(&[
            "ZADD",
            &k(r),
            r.pick(&["NX", "XX", "GT", "LT", "CH", "INCR"]),
            &s(r),
            &m(r),
        ]),
        51 => v(&["ZINCRBY", &k(r), &s(r), &m(r)]),
        52 => v(&["ZREM", &k(r), &m(r), &m(r)]),
        53 => v(&["ZSCORE", &k(r), &m(r)]),
        54 => v(&[r.pick(&["ZRANK", "ZREVRANK"]), &k(r), &m(r), "WITHSCORE"]),
        55 => v(&["ZRANGE", &k(r), &i(r), &i(r), "WITHSCORES"]),
        56 => v(&[
            "ZRANGE",
            &k(r),
            r.pick(&["-inf", "(1", "0"]),
            r.pick(&["+inf", "2.5", "(3"]),
            "BYSCORE",
            "LIMIT",
            "0",
            &i(r),
        ]),
        57 => v(&[
            "ZRANGE",
            &k(r),
            r.pick(&["-", "[a", "(1"]),
            r.pick(&["+", "[m", "(c"]),
            "BYLEX",
        ]),
        58 => v(&[
            "ZCOUNT",
            &k(r),
            r.pick(&["-inf", "(0", "1"]),
            r.pick(&["+inf", "2.5"]),
        ]),
        59 => v(&[
            r.pick(&["ZPOPMIN", "ZPOPMAX"]),
            &k(r),
            r.pick(&["1", "2", "0"]),
        ]),
        60 => v(&["ZRANGESTORE", &k(r), &k(r), "0", "-1"]),
        61 => v(&[
            r.pick(&["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]),
            &k(r),
            "2",
            &k(r),
            &k(r),
        ]),
        62 => v(&["ZMSCORE", &k(r), &m(r), &m(r)]),
        63 => v(&["ZCARD", &k(r)]),
        64 => v(&["ZREMRANGEBYRANK", &k(r), &i(r), &i(r)]),
        65 => v(&["ZUNION", "2", &k(r), &k(r), "WITHSCORES"]),
        // keys
        66 => v(&["DEL", &k(r), &k(r)]),
        67 => v(&["EXISTS", &k(r), &k(r)]),
        68 => v(&["TYPE", &k(r)]),
        69 => v(&[r.pick(&["RENAME", "RENAMENX"]), &k(r), &k(r)]),
        70 => v(&["COPY", &k(r), &k(r), r.pick(&["REPLACE", "DB"])]),
        71 => v(&[
            "EXPIRE",
            &k(r),
            r.pick(&["100", "0", "-1", "200"]),
            r.pick(&["NX", "XX", "GT", "LT"]),
        ]),
        72 => v(&["TTL", &k(r)]),
        73 => v(&["PERSIST", &k(r)]),
        75 => v(&["INCRBYFLOAT", &k(r), &f(r)]),
        76 => v(&["HINCRBYFLOAT", &k(r), &m(r), &f(r)]),
        77 => v(&["PEXPIREAT", &k(r), "1"]),
        78 => v(&["SET", &k(r), &m(r), "PXAT", "1"]),
        79 => v(&["GETEX", &k(r), r.pick(&["PERSIST", "EX", "EX 100"])]),
        80 => v(&[
            "LPOS",
            &k(r),
            &m(r),
            "RANK",
            r.pick(&["1", "-1", "0", "2"]),
            "COUNT",
            r.pick(&["0", "2"]),
        ]),
        81 => v(&[
            r.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]),
            &k(r),
            r.pick(&["-inf", "(1", "+inf"]),
            r.pick(&["+inf", "2.5", "-inf"]),
            "WITHSCORES",
        ]),
        82 => v(&["ZREVRANGE", &k(r), &i(r), &i(r)]),
        83 => v(&[
            "ZLEXCOUNT",
            &k(r),
            r.pick(&["-", "[a", "(b"]),
            r.pick(&["+", "[m", "x"]),
        ]),
        84 => v(&[
            r.pick(&["ZREMRANGEBYSCORE", "ZREMRANGEBYLEX"]),
            &k(r),
            r.pick(&["-inf", "[a", "(1"]),
            r.pick(&["+inf", "[m", "2"]),
        ]),
        85 => v(&[
            "ZINTERCARD",
            "2",
            &k(r),
            &k(r),
            "LIMIT",
            r.pick(&["0", "1"]),
        ]),
        86 => v(&[
            "LMPOP",
            "2",
            &k(r),
            &k(r),
            r.pick(&["LEFT", "RIGHT"]),
            "COUNT",
            r.pick(&["1", "3"]),
        ]),
        87 => v(&[
            "ZMPOP",
            "2",
            &k(r),
            &k(r),
            r.pick(&["MIN", "MAX"]),
            "COUNT",
            r.pick(&["1", "3"]),
        ]),
        88 => v(&["SETRANGE", &k(r), "2", ""]),
        // encoding thresholds change under the same keys
        _ => v(&[
            "CONFIG",
            "SET",
            r.pick(&[
                "zset-max-listpack-entries",
                "hash-max-listpack-entries",
                "set-max-intset-entries",
                "set-max-listpack-entries",
                "list-max-listpack-size",
            ]),
            r.pick(&["0", "1", "2", "128", "-2"]),
        ]),
    };
    // Now and then a wrong number of arguments.
    if r.below(60) == 0 {
        c.truncate(1);
    }
    c
}

/// The top-level aggregate's children as separate frames, or `None` for a non-aggregate.
fn children(frame: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let t = *frame.first()?;
    if !matches!(t, b'*' | b'~' | b'%') {
        return None;
    }
    let le = frame.windows(2).position(|w| w == b"\r\n")?;
    let n: i64 = std::str::from_utf8(&frame[1..le]).ok()?.parse().ok()?;
    let n = if t == b'%' { n * 2 } else { n };
    let mut pos = le + 2;
    let mut out = Vec::new();
    for _ in 0..n.max(0) {
        let len = frame_len(&frame[pos..]).ok()??;
        out.push(frame[pos..pos + len].to_vec());
        pos += len;
    }
    Some((frame[..le + 2].to_vec(), out))
}

fn normalise(cmd: &[String], frame: Vec<u8>) -> Vec<u8> {
    let name = cmd[0].to_ascii_uppercase();
    let pairs = UNORDERED_PAIRS.contains(&name.as_str());
    if !pairs && !UNORDERED.contains(&name.as_str()) {
        return frame;
    }
    let Some((head, mut items)) = children(&frame) else {
        return frame;
    };
    if pairs {
        let mut p: Vec<Vec<u8>> = items.chunks(2).map(|c| c.concat()).collect();
        p.sort();
        items = p;
    } else {
        items.sort();
    }
    [head, items.concat()].concat()
}

fn run(seed: u64, steps: usize, resp3: bool) -> Result<usize> {
    let node = Node::start()?;
    let valkey = RedisServer::start_valkey()?;
    let mut ours = node.raw()?;
    let mut theirs = RawConn::connect(valkey.addr())?;
    if resp3 {
        let hello = ["HELLO", "3"];
        ours.cmd(&hello)?;
        theirs.cmd(&hello)?;
    }
    let mut r = Rng(seed);
    // ROCKSLOT_DIFF_COLLECT=1 lists differences instead of stopping at the first (later ones
    // may follow from earlier ones).
    let collect = std::env::var("ROCKSLOT_DIFF_COLLECT").is_ok();
    let mut seen = std::collections::BTreeSet::new();
    for step in 0..steps {
        let cmd = gen(&mut r);
        let a = normalise(&cmd, ours.cmd(&cmd)?);
        let b = normalise(&cmd, theirs.cmd(&cmd)?);
        if collect && a != b {
            if seen.insert(cmd[0].clone()) {
                println!(
                    "DIFF {cmd:?}\n rockslot: {}\n valkey:   {}",
                    show(&a),
                    show(&b)
                );
            }
            continue;
        }
        assert!(
            a == b,
            "seed {seed} step {step} resp{}: {cmd:?}\n rockslot: {}\n valkey:   {}",
            if resp3 { 3 } else { 2 },
            show(&a),
            show(&b)
        );
    }
    Ok(steps)
}

/// Tens of thousands of mixed-type commands, RESP2 and RESP3, identical to valkey-server
/// 8.1.8 byte for byte. `ROCKSLOT_DIFF_SEED` replays one seed.
#[test]
fn mixed_types_match_valkey_byte_for_byte() -> Result<()> {
    let seeds: Vec<u64> = match std::env::var("ROCKSLOT_DIFF_SEED") {
        Ok(s) => vec![s.parse()?],
        Err(_) => vec![0x5eed_0001, 0x5eed_0002, 0x5eed_0003, 0x5eed_0004],
    };
    let mut total = 0;
    for (n, seed) in seeds.iter().enumerate() {
        total += run(*seed, 6000, n % 2 == 1)?;
    }
    println!("mixed-type differential: {total} commands identical to valkey-server 8.1.8");
    Ok(())
}

/// INFO's section selection (none, `default`, `all`, `everything`, several names, unknown
/// names, any case) gives valkey-server 8.1.8's section list, and commandstats/errorstats count
/// calls, rejected calls (arity, before running) and failed calls (ran, replied an error) as it
/// does. Latencies and timings are not compared.
#[test]
fn info_sections_and_command_stats_follow_valkey() -> Result<()> {
    let node = Node::start()?;
    let valkey = RedisServer::start_valkey()?;
    let mut ours = node.raw()?;
    let mut theirs = RawConn::connect(valkey.addr())?;
    let headers = |frame: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(frame)
            .lines()
            .filter(|l| l.starts_with("# "))
            .map(str::to_string)
            .collect()
    };
    for args in [
        vec!["INFO"],
        vec!["INFO", "default"],
        vec!["INFO", "all"],
        vec!["INFO", "everything"],
        vec!["INFO", "commandstats"],
        vec!["INFO", "server", "CPU"],
        vec!["INFO", "bogus"],
        vec![
            "INFO",
            "cpu",
            "bogus",
            "keyspace",
            "errorstats",
            "latencystats",
        ],
    ] {
        assert_eq!(
            headers(&ours.cmd(&args)?),
            headers(&theirs.cmd(&args)?),
            "{args:?}"
        );
    }
    let script: &[&[&str]] = &[
        &["CONFIG", "RESETSTAT"],
        &["SET", "a", "b"],
        &["GET", "a"],
        &["GET", "a"],
        &["LPUSH", "a", "x"],
        &["GET"],
        &["GET", "a", "b"],
        &["NOSUCHCOMMAND", "x"],
        &["CONFIG", "GET", "maxmemory"],
        &["INCR", "a"],
        &["HSET", "h", "f"],
    ];
    for cmd in script {
        crate::harness::assert_same_reply(&mut ours, &mut theirs, cmd, "stats script")?;
    }
    // name -> "calls,rejected,failed", without usec.
    let stats = |frame: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(frame)
            .lines()
            .filter(|l| l.starts_with("cmdstat_") || l.starts_with("errorstat_"))
            .filter(|l| !l.starts_with("cmdstat_info:"))
            .map(|l| {
                l.split([',', ':'])
                    .filter(|f| !f.starts_with("usec") && !f.is_empty())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let args = ["INFO", "commandstats", "errorstats"];
    let mine = stats(&ours.cmd(&args)?);
    assert_eq!(mine, stats(&theirs.cmd(&args)?));
    for want in [
        "cmdstat_get,calls=2,rejected_calls=2,failed_calls=0",
        "cmdstat_lpush,calls=1,rejected_calls=0,failed_calls=1",
        "errorstat_WRONGTYPE,count=1",
        "errorstat_ERR,count=5",
    ] {
        assert!(mine.iter().any(|l| l == want), "{want} not in {mine:?}");
    }
    let lat = String::from_utf8_lossy(&ours.cmd(&["INFO", "latencystats"])?).into_owned();
    assert!(lat.contains("latency_percentiles_usec_get:p50="), "{lat}");
    Ok(())
}

/// OBJECT ENCODING follows the thresholds as configured when a value is written, byte for byte
/// with valkey-server 8.1.8, for values that only grow (rockslot's answer has no history: a
/// collection that shrinks back under a threshold reads as the smaller encoding here).
#[test]
fn object_encoding_follows_the_configured_thresholds_as_valkey() -> Result<()> {
    let long = "v".repeat(70);
    let fifty = "s".repeat(50);
    let mut script: Vec<Vec<String>> = Vec::new();
    let mut add = |words: &[&str]| script.push(words.iter().map(|w| w.to_string()).collect());
    fn enc(k: &str) -> Vec<&str> {
        vec!["OBJECT", "ENCODING", k]
    }
    for cmd in [
        vec!["SET", "s1", "123"],
        enc("s1"),
        vec!["SET", "s2", "0123"],
        enc("s2"),
        vec!["SET", "s3", &fifty],
        enc("s3"),
        vec!["SET", "s4", "9223372036854775808"],
        enc("s4"),
        vec!["INCR", "n"],
        enc("n"),
        vec!["SADD", "si", "1", "2", "3"],
        enc("si"),
        vec!["SADD", "si", "a"],
        enc("si"),
        vec!["SADD", "sh", &long],
        enc("sh"),
        vec!["CONFIG", "SET", "set-max-intset-entries", "2"],
        vec!["SADD", "s5", "1", "2", "3"],
        enc("s5"),
        vec!["HSET", "h1", "f", "v"],
        enc("h1"),
        vec!["HSET", "h2", "f", &long],
        enc("h2"),
        vec!["CONFIG", "SET", "hash-max-listpack-entries", "1"],
        vec!["HSET", "h3", "a", "1", "b", "2"],
        enc("h3"),
        vec!["ZADD", "z1", "1", "a"],
        enc("z1"),
        vec!["ZADD", "z1", "2", &long],
        enc("z1"),
        vec!["CONFIG", "SET", "zset-max-listpack-entries", "0"],
        vec!["ZADD", "z2", "1", "a"],
        enc("z2"),
        vec!["RPUSH", "l1", "a", "b", "c"],
        enc("l1"),
        vec!["CONFIG", "SET", "list-max-listpack-size", "2"],
        vec!["RPUSH", "l2", "a", "b", "c"],
        enc("l2"),
        vec!["CONFIG", "SET", "list-max-listpack-size", "-1"],
    ] {
        add(&cmd);
    }
    let mut push = vec!["RPUSH".to_string(), "l3".to_string()];
    push.extend((0..100).map(|i| format!("{fifty}{i}")));
    script.push(push);
    script.push(enc("l3").iter().map(|s| s.to_string()).collect());
    let refs: Vec<Vec<&str>> = script
        .iter()
        .map(|c| c.iter().map(String::as_str).collect())
        .collect();
    let refs: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
    crate::harness::assert_script_matches_valkey(&refs)
}

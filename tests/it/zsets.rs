//! Differential test for sorted sets: seeded random sequences over every sorted-set command
//! (score, index and lex ranges, stores, pops, blocking pops that find data or time out at
//! once) run against rockslot and Debian's redis-server; replies must be identical.

use anyhow::Result;
use redis::Value;

use crate::commands::{normalise, run, Rng};
use crate::harness::{Node, RedisServer};

const ZKEYS: &[&str] = &["{z}1", "{z}2"];
const ZMEMBERS: &[&str] = &["a", "b", "c", "d", "", "x y"];
/// Scores that print the same in every Valkey/Redis version (exact binary fractions).
const SCORES: &[&str] = &["0", "1", "-2", "2.5", "10", "-0.5", "inf", "-inf", "3"];

pub(crate) fn random_zset_command(r: &mut Rng) -> Vec<String> {
    let k = r.pick(ZKEYS).to_string();
    let k2 = r.pick(ZKEYS).to_string();
    let m = r.pick(ZMEMBERS).to_string();
    let m2 = r.pick(ZMEMBERS).to_string();
    let sc = r.pick(SCORES).to_string();
    let sc2 = r.pick(SCORES).to_string();
    let bound = |r: &mut Rng| {
        let s = r.pick(SCORES).to_string();
        if r.below(3) == 0 {
            format!("({s}")
        } else {
            s
        }
    };
    let i = |r: &mut Rng| (r.below(10) as i64 - 5).to_string();
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let lex = |r: &mut Rng| {
        r.pick(&["-", "+", "[a", "(b", "[c", "(", "[", "[x y", "bad"])
            .to_string()
    };
    match r.below(56) {
        0..=3 => s(&["ZADD", &k, &sc, &m, &sc2, &m2]),
        4 => s(&["ZADD", &k, r.pick(&["NX", "XX", "GT", "LT", "CH"]), &sc, &m]),
        5 => s(&["ZADD", &k, "INCR", &sc, &m]),
        6 => s(&[
            "ZADD",
            &k,
            r.pick(&["NX", "GT"]),
            r.pick(&["XX", "LT", "INCR"]),
            &sc,
            &m,
        ]),
        7 => s(&["ZINCRBY", &k, &sc, &m]),
        8 => s(&["ZREM", &k, &m, &m2]),
        9 => s(&["ZSCORE", &k, &m]),
        10 => s(&["ZMSCORE", &k, &m, &m2]),
        11 => s(&["ZCARD", &k]),
        12 => s(&["ZCOUNT", &k, &bound(r), &bound(r)]),
        13 => s(&["ZRANK", &k, &m]),
        14 => s(&["ZREVRANK", &k, &m]),
        15 | 16 => s(&["ZRANGE", &k, &i(r), &i(r), "WITHSCORES"]),
        17 => s(&["ZRANGE", &k, &i(r), &i(r), "REV"]),
        18 => s(&[
            "ZRANGE",
            &k,
            &bound(r),
            &bound(r),
            "BYSCORE",
            "LIMIT",
            r.pick(&["0", "1"]),
            r.pick(&["1", "2", "-1"]),
        ]),
        19 => s(&[
            "ZRANGE",
            &k,
            &bound(r),
            &bound(r),
            "BYSCORE",
            "REV",
            "WITHSCORES",
        ]),
        20 => s(&["ZREVRANGE", &k, "0", "-1", "WITHSCORES"]),
        21 => s(&["ZRANGEBYSCORE", &k, &bound(r), &bound(r), "WITHSCORES"]),
        22 => s(&[
            "ZREVRANGEBYSCORE",
            &k,
            &bound(r),
            &bound(r),
            "LIMIT",
            "0",
            "2",
        ]),
        23 => s(&["ZPOPMIN", &k]),
        24 => s(&["ZPOPMAX", &k, r.pick(&["2", "0", "-1"])]),
        25 => s(&["ZRANGE", &k, "0", "1", "LIMIT", "0", "1"]),
        26 => s(&["ZADD", &k, r.pick(&["x", "nan"]), &m]),
        27 => s(&["ZCOUNT", &k, r.pick(&["x", "(x"]), "1"]),
        28 => match r.below(4) {
            0 => s(&["TYPE", &k]),
            1 => s(&["EXPIRE", &k, "1000"]),
            2 => s(&["PEXPIRE", &k, r.pick(&["0", "-5"])]),
            _ => s(&["TTL", &k]),
        },
        29 => s(&["DEL", &k]),
        30 => s(&["RENAME", &k, &k2]),
        31 => s(&["SET", &k, "s"]),
        32 => s(&["ZADD", &k, "1"]),
        33 => s(&[
            "ZUNIONSTORE",
            &k2,
            "2",
            &k,
            &k2,
            "WEIGHTS",
            r.pick(&["1", "2", "-1"]),
            "1",
            "AGGREGATE",
            r.pick(&["SUM", "MIN", "MAX"]),
        ]),
        34 => s(&["ZINTERSTORE", &k2, "2", &k, &k2]),
        35 => s(&["ZDIFFSTORE", &k2, "2", &k, &k2]),
        36 => s(&["ZUNION", "2", &k, &k2, "WITHSCORES"]),
        37 => s(&[
            "ZINTER",
            "2",
            &k,
            &k2,
            "AGGREGATE",
            r.pick(&["MAX", "bad"]),
            "WITHSCORES",
        ]),
        38 => s(&["ZDIFF", "2", &k, &k2]),
        39 => s(&["ZUNIONSTORE", &k2, r.pick(&["0", "3"]), &k]),
        40 => s(&[
            "ZRANDMEMBER",
            &k,
            r.pick(&["2", "-3", "0", "9"]),
            "WITHSCORES",
        ]),
        41 => s(&["ZSCAN", &k, "0", "MATCH", r.pick(&["*", "a*"])]),
        // Lex ranges are defined for members of one score, so these add score 0 only.
        42 | 43 => s(&["ZADD", &k2, "0", &m, "0", &m2]),
        44 => s(&["ZRANGEBYLEX", &k2, &lex(r), &lex(r)]),
        45 => s(&[
            "ZREVRANGEBYLEX",
            &k2,
            &lex(r),
            &lex(r),
            "LIMIT",
            r.pick(&["0", "1", "-1"]),
            r.pick(&["1", "2", "-1"]),
        ]),
        46 => s(&["ZLEXCOUNT", &k2, &lex(r), &lex(r)]),
        47 => s(&[
            "ZRANGE",
            &k2,
            &lex(r),
            &lex(r),
            "BYLEX",
            r.pick(&["REV", "LIMIT"]),
            "0",
            "2",
        ]),
        48 => s(&[
            "ZRANGESTORE",
            &k2,
            &k,
            &i(r),
            &i(r),
            r.pick(&["REV", "BYSCORE", "WITHSCORES"]),
        ]),
        49 => s(&[
            "ZRANGESTORE",
            &k,
            &k2,
            &bound(r),
            &bound(r),
            "BYSCORE",
            "LIMIT",
            "1",
            "2",
        ]),
        50 => s(&["ZREMRANGEBYSCORE", &k, &bound(r), &bound(r)]),
        51 => s(&["ZREMRANGEBYRANK", &k, &i(r), &i(r)]),
        52 => s(&["ZREMRANGEBYLEX", &k2, &lex(r), &lex(r)]),
        53 => s(&[
            "ZMPOP",
            r.pick(&["1", "2", "0"]),
            &k,
            &k2,
            r.pick(&["MIN", "MAX", "LEFT"]),
            "COUNT",
            r.pick(&["1", "3", "0"]),
        ]),
        54 => s(&[
            r.pick(&["BZPOPMIN", "BZPOPMAX"]),
            &k,
            &k2,
            r.pick(&["0.01", "-1", "x"]),
        ]),
        55 => s(&[
            "BZMPOP",
            "0.01",
            "2",
            &k,
            &k2,
            r.pick(&["MIN", "MAX"]),
            "COUNT",
            "2",
        ]),
        _ => s(&["EXISTS", &k, &k2]),
    }
}

pub(crate) fn normalise_zset(cmd: &[String], v: Value) -> Value {
    match (cmd[0].as_str(), v) {
        // Random picks: only how many (with scores, twice as many items).
        ("ZRANDMEMBER", Value::Array(a)) => Value::Int(a.len() as i64),
        (_, v) => normalise(cmd, v),
    }
}

#[test]
fn zset_commands_match_redis_server() -> Result<()> {
    let node = Node::start()?;
    let reference = RedisServer::start()?;
    let mut ours = node.conn()?;
    let mut theirs = reference.conn()?;
    let mut total = 0;
    for seed in [4u64, 19, 256, 4096, 70001] {
        redis::cmd("FLUSHALL").exec(&mut ours)?;
        redis::cmd("FLUSHALL").exec(&mut theirs)?;
        let mut r = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1);
        for step in 0..1000 {
            let cmd = random_zset_command(&mut r);
            let a = normalise_zset(&cmd, run(&mut ours, &cmd));
            let b = normalise_zset(&cmd, run(&mut theirs, &cmd));
            assert_eq!(a, b, "seed {seed} step {step}: {cmd:?}");
            total += 1;
        }
    }
    println!("differential sorted-set commands compared: {total}");
    Ok(())
}

/// Sorted sets far larger than a rank block (2048 entries): ranks, index ranges and rank
/// removals stay exact while members are added, rescored and removed across blocks that
/// split and empty.
#[test]
fn large_sorted_set_ranks_match_redis_server() -> Result<()> {
    let node = Node::start()?;
    let reference = RedisServer::start()?;
    let mut ours = node.conn()?;
    let mut theirs = reference.conn()?;
    let mut r = Rng(0x5eed_1234_9876_0001);
    let member = |i: u64| format!("m{i}");
    let score = |r: &mut Rng| (r.below(5000)).to_string();
    for chunk in 0..20 {
        let mut cmd = vec!["ZADD".to_string(), "big".to_string()];
        for i in 0..1000 {
            cmd.push(score(&mut r));
            cmd.push(member(chunk * 1000 + i));
        }
        assert_eq!(
            run(&mut ours, &cmd),
            run(&mut theirs, &cmd),
            "load chunk {chunk}"
        );
    }
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for step in 0..4000 {
        let m = member(r.below(25_000));
        let i = r.below(22_000).to_string();
        let j = (r.below(22_000) as i64 - 11_000).to_string();
        let sc = score(&mut r);
        let cmd = match r.below(12) {
            0 | 1 => s(&["ZADD", "big", &sc, &m]),
            2 => s(&["ZREM", "big", &m]),
            3 => s(&["ZINCRBY", "big", "-2500", &m]),
            4 | 5 => s(&["ZRANK", "big", &m]),
            6 => s(&["ZREVRANK", "big", &m]),
            7 => s(&["ZRANGE", "big", &i, &i, "WITHSCORES"]),
            8 => s(&["ZRANGE", "big", &j, &i, "REV"]),
            9 => {
                let a = r.below(22_000);
                s(&[
                    "ZREMRANGEBYRANK",
                    "big",
                    &a.to_string(),
                    &(a + r.below(4)).to_string(),
                ])
            }
            10 => s(&[
                if r.below(2) == 0 {
                    "ZPOPMIN"
                } else {
                    "ZPOPMAX"
                },
                "big",
                "3",
            ]),
            _ => s(&["ZCARD", "big"]),
        };
        let (a, b) = (run(&mut ours, &cmd), run(&mut theirs, &cmd));
        assert_eq!(a, b, "step {step}: {cmd:?}");
    }
    Ok(())
}

/// RESP3 shapes: scores are doubles, WITHSCORES/WITHVALUES replies are [member, score] pairs,
/// ZPOPMIN without COUNT stays flat; byte-for-byte what redis-server sends.
#[test]
fn resp3_score_replies_match_redis_server() -> Result<()> {
    let node = Node::start()?;
    let reference = RedisServer::start()?;
    let script: &[&[&str]] = &[
        &["HELLO", "3"],
        &["ZADD", "z", "1.5", "a", "2", "b", "-3", "c"],
        &["ZSCORE", "z", "a"],
        &["ZINCRBY", "z", "1", "b"],
        &["ZMSCORE", "z", "a", "nope"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &[
            "ZRANGEBYSCORE",
            "z",
            "-inf",
            "+inf",
            "WITHSCORES",
            "LIMIT",
            "0",
            "2",
        ],
        &["ZRANGE", "z", "0", "-1"],
        &["ZUNION", "1", "z", "WITHSCORES"],
        &["ZPOPMIN", "z"],
        &["ZPOPMAX", "z", "1"],
        &["ZADD", "z2", "4", "only"],
        &["ZRANDMEMBER", "z2", "1", "WITHSCORES"],
        &["ZMPOP", "1", "z2", "MIN"],
        &["HSET", "h", "f", "v"],
        &["HRANDFIELD", "h", "1", "WITHVALUES"],
        &["HGETALL", "h"],
        &["ZADD", "z3", "7", "x"],
        &["BZPOPMIN", "z3", "1"],
        &["ZSCAN", "z", "0"],
    ];
    let mut ours = node.raw()?;
    let mut theirs = crate::harness::RawConn::connect(reference.addr())?;
    for cmd in script {
        let (a, b) = (ours.cmd(cmd)?, theirs.cmd(cmd)?);
        if cmd[0] == "HELLO" {
            continue;
        }
        assert_eq!(
            crate::harness::show(&a),
            crate::harness::show(&b),
            "{cmd:?}"
        );
    }
    Ok(())
}

/// Sorted-set algebra (ZUNION/ZINTER/ZDIFF, their STORE forms, ZINTERCARD) over keys that
/// hold sorted sets, plain sets, strings or nothing, against valkey-server 8.1.8 byte for byte
/// in RESP2 and RESP3: a plain set takes part with scores of 1, any other type is WRONGTYPE.
#[test]
fn set_algebra_over_mixed_types_matches_valkey_byte_for_byte() -> Result<()> {
    use crate::harness::{assert_same_reply, RawConn};

    const MKEYS: &[&str] = &["{m}a", "{m}b", "{m}c", "{m}d"];
    const WEIGHTS: &[&str] = &["1", "2", "0.5", "-1", "0", "3"];
    fn random_mixed(r: &mut Rng) -> Vec<String> {
        let k = r.pick(MKEYS).to_string();
        let k2 = r.pick(MKEYS).to_string();
        let dst = r.pick(MKEYS).to_string();
        let m = r.pick(ZMEMBERS).to_string();
        let m2 = r.pick(ZMEMBERS).to_string();
        let sc = r.pick(SCORES).to_string();
        let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match r.below(20) {
            0..=3 => s(&["SADD", &k, &m, &m2]),
            4..=6 => s(&["ZADD", &k, &sc, &m]),
            7 => s(&["SREM", &k, &m]),
            8 => s(&["SET", &k, "str"]),
            9 => s(&["DEL", &k]),
            10..=15 => {
                let op = r.pick(&[
                    "ZUNIONSTORE",
                    "ZINTERSTORE",
                    "ZDIFFSTORE",
                    "ZUNION",
                    "ZINTER",
                    "ZDIFF",
                ]);
                let mut c = vec![op.to_string()];
                if op.ends_with("STORE") {
                    c.push(dst);
                }
                let n = 1 + r.below(3) as usize;
                c.push(n.to_string());
                for _ in 0..n {
                    c.push(r.pick(MKEYS).to_string());
                }
                if !op.starts_with("ZDIFF") {
                    if r.below(2) == 0 {
                        c.push("WEIGHTS".into());
                        for _ in 0..n {
                            c.push(r.pick(WEIGHTS).to_string());
                        }
                    }
                    if r.below(2) == 0 {
                        c.push("AGGREGATE".into());
                        c.push(r.pick(&["SUM", "MIN", "MAX"]).to_string());
                    }
                }
                if !op.ends_with("STORE") && r.below(2) == 0 {
                    c.push("WITHSCORES".into());
                }
                c
            }
            16 => s(&["ZRANGE", &k2, "0", "-1", "WITHSCORES"]),
            17 => {
                let n = r.below(4);
                let mut c = vec!["ZINTERCARD".to_string(), n.to_string()];
                for _ in 0..n.max(1) {
                    c.push(r.pick(MKEYS).to_string());
                }
                match r.below(4) {
                    0 => {}
                    1 => c.push("WEIGHTS".into()),
                    _ => {
                        c.push("LIMIT".into());
                        c.push(r.pick(&["0", "1", "2", "-1", "x"]).to_string());
                    }
                }
                c
            }
            18 => s(&["TYPE", &k]),
            _ => s(&["SCARD", &k]),
        }
    }

    let node = Node::start()?;
    let reference = RedisServer::start_valkey()?;
    let mut total = 0;
    for protocol in ["2", "3"] {
        let mut ours = node.raw()?;
        let mut theirs = RawConn::connect(reference.addr())?;
        // HELLO's own reply names the server: only what follows is compared.
        ours.cmd(&["HELLO", protocol])?;
        theirs.cmd(&["HELLO", protocol])?;
        for seed in [7u64, 21, 1234, 98765] {
            ours.cmd(&["FLUSHALL"])?;
            theirs.cmd(&["FLUSHALL"])?;
            let mut r = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1);
            for step in 0..600 {
                let cmd = random_mixed(&mut r);
                let context = format!("RESP{protocol} seed {seed} step {step}");
                assert_same_reply(&mut ours, &mut theirs, &cmd, &context)?;
                total += 1;
            }
        }
    }
    println!("mixed-type sorted-set algebra replies compared with valkey-server: {total}");
    Ok(())
}

//! SORT and SORT_RO against valkey-server 8.1.8, byte for byte: a case table (numeric and
//! ALPHA sorts, BY weights in keys and hash fields, GET patterns, LIMIT clamping, STORE, the
//! errors), then seeded random sorts over lists, sets and sorted sets, in RESP2 and RESP3.
//! In cluster mode BY and GET patterns are refused with Valkey's words.

use anyhow::{ensure, Result};

use crate::commands::Rng;
use crate::harness::{assert_same_reply, node_and_valkey_in};

const CASES: &[&[&str]] = &[
    &["RPUSH", "l", "3", "1", "2", "10", "-1.5", "1"],
    &["SORT", "l"],
    &["SORT", "l", "DESC"],
    &["SORT", "l", "ALPHA"],
    &["SORT", "l", "LIMIT", "1", "2"],
    &["SORT", "l", "LIMIT", "-5", "2"],
    &["SORT", "l", "LIMIT", "10", "2"],
    &["SORT", "l", "LIMIT", "0", "-1"],
    &["SORT", "l", "LIMIT", "2", "0"],
    &["SORT", "l", "LIMIT", "x", "1"],
    &["SORT", "l", "LIMIT", "1"],
    &["SORT", "l", "BY", "nosort"],
    &["SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "3"],
    &["MSET", "w_3", "30", "w_1", "10", "w_2", "-5", "w_10", "x"],
    &["SORT", "l", "BY", "w_*"],
    &["SET", "w_10", "7"],
    &["SORT", "l", "BY", "w_*"],
    &[
        "SORT", "l", "BY", "w_*", "GET", "#", "GET", "w_*", "GET", "nokey_*",
    ],
    &["SORT", "l", "BY", "w_*", "ALPHA", "DESC"],
    &["HSET", "h_1", "f", "b"],
    &["HSET", "h_2", "f", "a"],
    &[
        "SORT",
        "l",
        "GET",
        "h_*->f",
        "GET",
        "h_*->nofield",
        "GET",
        "h_*->",
    ],
    &["SORT", "l", "BY", "h_*->f", "ALPHA", "GET", "#"],
    &["SORT", "l", "STORE", "dst"],
    &["LRANGE", "dst", "0", "-1"],
    &["SORT", "l", "GET", "nokey_*", "STORE", "dst"],
    &["LRANGE", "dst", "0", "-1"],
    &["SORT", "nokey", "STORE", "dst"],
    &["EXISTS", "dst"],
    &["SORT", "nokey"],
    &["SORT_RO", "l", "DESC"],
    &["SORT_RO", "l", "STORE", "dst"],
    &["SADD", "s", "b", "a", "c", "10", "2"],
    &["SORT", "s", "ALPHA"],
    &["SORT", "s"],
    &["SORT", "s", "BY", "nosort", "STORE", "dst"],
    &["LRANGE", "dst", "0", "-1"],
    &["ZADD", "z", "1", "c", "2", "a", "3", "b"],
    &["SORT", "z", "ALPHA"],
    &["SORT", "z", "BY", "nosort"],
    &["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "0", "2"],
    &["SORT", "z", "BY", "nosort", "LIMIT", "1", "5"],
    &["SET", "str", "x"],
    &["SORT", "str"],
    &["HSET", "hash", "a", "1"],
    &["SORT", "hash"],
    &["SORT", "l", "NOPE"],
    &["SORT", "str", "NOPE"],
    &["RPUSH", "f", "1.5", "abc", "2"],
    &["SORT", "f"],
    &["SORT", "f", "ALPHA"],
    &["RPUSH", "e", "", " 3", "2"],
    &["SORT", "e"],
    &["SORT", "l", "ASC", "DESC", "ALPHA", "ASC"],
];

#[test]
fn sort_cases_match_valkey_byte_for_byte_in_resp2_and_resp3() -> Result<()> {
    crate::harness::assert_cases_match_valkey(CASES)
}

const ELEMS: &[&str] = &[
    "1", "2", "3", "10", "-4", "7.5", "a", "b", "zz", "0", "100", "bb",
];

fn random_sort(r: &mut Rng) -> Vec<String> {
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let key = r
        .pick(&["list", "set", "zset", "nums", "nokey"])
        .to_string();
    let ro = r.below(4) == 0;
    let mut c = s(&[if ro { "SORT_RO" } else { "SORT" }, &key]);
    // Every element has a distinct weight, so no two compare equal in an ALPHA BY sort.
    match r.below(4) {
        0 => c.extend(s(&["BY", "w_*"])),
        1 => c.extend(s(&["BY", "h_*->f"])),
        2 if key == "list" || key == "zset" => c.extend(s(&["BY", "nosort"])),
        _ => {}
    }
    if r.below(2) == 0 || key != "nums" {
        c.push("ALPHA".into());
    }
    if r.below(2) == 0 {
        c.push(r.pick(&["ASC", "DESC"]).into());
    }
    if r.below(3) == 0 {
        c.extend(s(&[
            "LIMIT",
            r.pick(&["0", "1", "3", "-1", "20"]),
            r.pick(&["0", "1", "2", "-1", "5"]),
        ]));
    }
    for _ in 0..r.below(3) {
        c.extend(s(&[
            "GET",
            r.pick(&["#", "w_*", "h_*->f", "h_*->g", "none_*"]),
        ]));
    }
    if !ro && r.below(4) == 0 {
        c.extend(s(&["STORE", "dst"]));
    }
    c
}

/// Seeded sorts over a list (with repeats), a set, a sorted set and a list of numbers, while
/// the collections and weights change between them.
#[test]
fn generated_sorts_match_valkey() -> Result<()> {
    for (i, seed) in [0x5047_0001u64, 0x5047_0002].into_iter().enumerate() {
        let resp3 = i == 1;
        let (_node, _valkey, mut ours, mut theirs) = node_and_valkey_in(resp3)?;
        let mut both =
            |cmd: &[String], at: &str| assert_same_reply(&mut ours, &mut theirs, cmd, at);
        for (n, e) in ELEMS.iter().chain(["-3", "4.5"].iter()).enumerate() {
            let w = format!("{}", (n * 37) % 101);
            both(&["SET".into(), format!("w_{e}"), w], "setup")?;
            let f = format!("f{:02}", (n * 5) % 14);
            both(&["HSET".into(), format!("h_{e}"), "f".into(), f], "setup")?;
        }
        let mut r = Rng(seed);
        for step in 0..1500 {
            let e = r.pick(ELEMS).to_string();
            let change: Vec<String> = match r.below(8) {
                0 => vec!["RPUSH".into(), "list".into(), e.clone()],
                1 => vec!["LREM".into(), "list".into(), "1".into(), e.clone()],
                2 => vec!["SADD".into(), "set".into(), e.clone()],
                3 => vec![
                    "ZADD".into(),
                    "zset".into(),
                    r.below(5).to_string(),
                    e.clone(),
                ],
                4 => vec![
                    "RPUSH".into(),
                    "nums".into(),
                    r.pick(&["1", "2", "-3", "4.5", "0"]).into(),
                ],
                _ => random_sort(&mut r),
            };
            both(
                &change,
                &format!("seed {seed:#x} step {step} resp3={resp3}"),
            )?;
        }
    }
    Ok(())
}

/// In cluster mode SORT works on one key, and BY/GET patterns are refused as in Valkey.
#[test]
fn sort_patterns_are_refused_in_cluster_mode() -> Result<()> {
    let c = crate::harness::Cluster::start(3)?;
    c.create_and_wait(0)?;
    let mut conn = c.conn()?;
    redis::cmd("RPUSH")
        .arg("l")
        .arg(3)
        .arg(1)
        .arg(2)
        .exec(&mut conn)?;
    let sorted: Vec<i64> = redis::cmd("SORT").arg("l").query(&mut conn)?;
    ensure!(sorted == vec![1, 2, 3], "{sorted:?}");
    let by = redis::cmd("SORT")
        .arg("l")
        .arg("BY")
        .arg("w_*")
        .query::<Vec<String>>(&mut conn);
    let msg = format!("{:?}", by.err());
    ensure!(
        msg.contains("BY option of SORT denied in Cluster mode."),
        "{msg}"
    );
    let get = redis::cmd("SORT")
        .arg("l")
        .arg("GET")
        .arg("#")
        .query::<Vec<String>>(&mut conn);
    let msg = format!("{:?}", get.err());
    ensure!(
        msg.contains("GET option of SORT denied in Cluster mode."),
        "{msg}"
    );
    let nosort: Vec<i64> = redis::cmd("SORT")
        .arg("l")
        .arg("BY")
        .arg("nosort")
        .query(&mut conn)?;
    ensure!(nosort == vec![3, 1, 2], "{nosort:?}");
    Ok(())
}

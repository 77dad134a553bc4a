//! Hash field expiration (Valkey 9's HEXPIRE family, HTTL family, HPERSIST, HGETEX, HSETEX,
//! HGETDEL). valkey-server 8.1.8 has none of it, so the replies here are Valkey 9's as its
//! source and test suite give them: per-field codes, parse order and error wording, passed
//! fields hidden from reads but counted by HLEN until the active cycle reclaims them (with
//! `hexpired` and `del` events), TTLs kept through SIGKILL, DUMP/RESTORE (type 22, RDB 80),
//! slot moves, replicas, backup and failover (`hash_ttl_model` checks a seeded run against a
//! model).

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::harness::{bulk_body, show, wait_until, Cluster, Node, RawConn, RedisServer};

const SETTLE: Duration = Duration::from_secs(60);
/// 2100-01-01 in unix ms: a TTL no test outlives.
const FAR: &str = "4102444800000";
const NUMFIELDS: &str =
    "-ERR numfields should be greater than 0 and match the provided number of fields";
const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value";

/// A reply in short form: `i:1,-2` an integer array, `b:x,~` a bulk array (`~` nil), `nil`,
/// or a RESP2 simple line (`:3`, `+OK`, `-ERR ...`).
pub(crate) fn resp(short: &str) -> Vec<u8> {
    let array = |items: &str, f: &dyn Fn(&str) -> String| {
        let parts: Vec<&str> = if items.is_empty() {
            vec![]
        } else {
            items.split(',').collect()
        };
        let mut s = format!("*{}\r\n", parts.len());
        for p in parts {
            s.push_str(&f(p));
        }
        s
    };
    let out = if let Some(items) = short.strip_prefix("i:") {
        array(items, &|p| format!(":{p}\r\n"))
    } else if let Some(items) = short.strip_prefix("b:") {
        array(items, &|p| match p {
            "~" => "$-1\r\n".to_string(),
            _ => format!("${}\r\n{p}\r\n", p.len()),
        })
    } else if short == "nil" {
        "$-1\r\n".to_string()
    } else {
        format!("{short}\r\n")
    };
    out.into_bytes()
}

fn expect(c: &mut RawConn, cmd: &[&str], want: &str) -> Result<()> {
    let got = c.cmd(cmd)?;
    ensure!(
        got == resp(want),
        "{cmd:?}: got {}, want {}",
        show(&got),
        show(&resp(want))
    );
    Ok(())
}

fn far_plus(ms: i64) -> String {
    (FAR.parse::<i64>().unwrap_or(0) + ms).to_string()
}

/// Valkey 9's replies, case by case: parse order and errors, conditions, passed times,
/// HSETEX and HGETEX options, HGETDEL, TTLs kept by HINCRBY and dropped by HSET.
#[test]
fn hash_field_ttl_commands_answer_as_valkey_9() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.raw()?;
    let (far1, near) = (far_plus(1), far_plus(-100_000));
    let far_s = &FAR[..FAR.len() - 3];
    let w_far = format!("i:{FAR}");
    let w_far2 = format!("i:{FAR},{FAR}");
    let w_far_none_gone = format!("i:{FAR},-1,-2");
    let w_far_s = format!("i:{far_s}");
    let w_abc = format!("i:{FAR},{FAR},{near}");
    let w_none_far = format!("i:-1,{FAR}");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["HSET", "h", "a", "1", "b", "2", "c", "3"], ":3"),
        (vec!["SET", "s", "x"], "+OK"),
        // Parse order: arity, FIELDS and count, options, time, then the type.
        (
            vec!["HEXPIRE", "h", "10", "FIELDS", "1"],
            "-ERR wrong number of arguments for 'hexpire' command",
        ),
        (vec!["HEXPIRE", "h", "10", "FIELDS", "0", "a"], NUMFIELDS),
        (vec!["HEXPIRE", "h", "10", "FIELDS", "2", "a"], NUMFIELDS),
        (vec!["HEXPIRE", "h", "10", "FIELDS", "-1", "a"], NUMFIELDS),
        (vec!["HEXPIRE", "h", "10", "NOFIELDS", "1", "a"], NUMFIELDS),
        (
            vec!["HEXPIRE", "h", "10", "FIELDS", "x", "a"],
            "-ERR value is not an integer or out of range",
        ),
        (
            vec!["HEXPIRE", "h", "10", "NX", "XX", "FIELDS", "1", "a"],
            "-ERR NX and XX, GT or LT options at the same time are not compatible",
        ),
        (
            vec!["HEXPIRE", "h", "10", "GT", "LT", "FIELDS", "1", "a"],
            "-ERR GT and LT options at the same time are not compatible",
        ),
        (
            vec!["HEXPIRE", "h", "10", "Bad", "FIELDS", "1", "a"],
            "-ERR Unsupported option Bad",
        ),
        (
            vec!["HEXPIRE", "h", "-1", "FIELDS", "1", "a"],
            "-ERR invalid expire time in 'hexpire' command",
        ),
        (
            vec!["HPEXPIREAT", "h", "9223372036854775807", "FIELDS", "1", "a"],
            "i:1",
        ),
        (
            vec!["HEXPIRE", "h", "9223372036854775807", "FIELDS", "1", "a"],
            "-ERR invalid expire time in 'hexpire' command",
        ),
        (
            vec!["HEXPIRE", "h", "abc", "FIELDS", "1", "a"],
            "-ERR value is not an integer or out of range",
        ),
        (vec!["HEXPIRE", "s", "10", "FIELDS", "1", "a"], WRONGTYPE),
        (
            vec!["HEXPIRE", "nokey", "10", "FIELDS", "2", "a", "b"],
            "i:-2,-2",
        ),
        (vec!["HPERSIST", "h", "FIELDS", "1", "a"], "i:1"),
        // Set, read back, conditions.
        (
            vec!["HPEXPIREAT", "h", FAR, "FIELDS", "2", "a", "zz"],
            "i:1,-2",
        ),
        (
            vec!["HPEXPIRETIME", "h", "FIELDS", "3", "a", "b", "zz"],
            &w_far_none_gone,
        ),
        (vec!["HEXPIRETIME", "h", "FIELDS", "1", "a"], &w_far_s),
        (
            vec!["HPEXPIREAT", "h", FAR, "NX", "FIELDS", "2", "a", "b"],
            "i:0,1",
        ),
        (
            vec!["HPEXPIREAT", "h", &far1, "GT", "FIELDS", "2", "a", "c"],
            "i:1,0",
        ),
        (
            vec!["HPEXPIREAT", "h", &near, "lt", "FIELDS", "2", "a", "c"],
            "i:1,1",
        ),
        (
            vec!["HPEXPIREAT", "h", FAR, "XX", "GT", "FIELDS", "1", "a"],
            "i:1",
        ),
        (
            vec!["HPEXPIRETIME", "h", "FIELDS", "3", "a", "b", "c"],
            &w_abc,
        ),
        (
            vec!["HPERSIST", "h", "FIELDS", "3", "a", "nosuch", "c"],
            "i:1,-2,1",
        ),
        (vec!["HPERSIST", "h", "FIELDS", "1", "a"], "i:-1"),
        (vec!["HPERSIST", "h", "FIELDS", "2", "a"], NUMFIELDS),
        (vec!["HPERSIST", "nokey", "FIELDS", "1", "a"], "i:-2"),
        (vec!["HPERSIST", "s", "FIELDS", "1", "a"], WRONGTYPE),
        (vec!["HTTL", "h", "FIELDS", "2", "a"], "-ERR syntax error"),
        (vec!["HTTL", "h", "FIELDS", "0", "a"], "-ERR syntax error"),
        (vec!["HTTL", "h", "ANYWORD", "2", "a", "c"], "i:-1,-1"),
        (vec!["HTTL", "nokey", "FIELDS", "1", "a"], "i:-2"),
        (vec!["HTTL", "s", "FIELDS", "1", "a"], WRONGTYPE),
        (vec!["OBJECT", "ENCODING", "h"], "$9\r\nhashtable"),
        // A passed time deletes whatever the condition; the key goes with its last field.
        (
            vec!["HEXPIRE", "h", "0", "FIELDS", "2", "a", "zz"],
            "i:2,-2",
        ),
        (vec!["HGET", "h", "a"], "nil"),
        (vec!["HLEN", "h"], ":2"),
        (vec!["HPEXPIREAT", "h", FAR, "FIELDS", "1", "b"], "i:1"),
        (vec!["HEXPIRE", "h", "0", "GT", "FIELDS", "1", "b"], "i:2"),
        (vec!["HEXPIREAT", "h", "1", "FIELDS", "1", "c"], "i:2"),
        (vec!["EXISTS", "h"], ":0"),
        // HSETEX.
        (
            vec![
                "HSETEX", "k", "PXAT", FAR, "FIELDS", "2", "f", "1", "g", "2",
            ],
            ":1",
        ),
        (vec!["HPEXPIRETIME", "k", "FIELDS", "2", "f", "g"], &w_far2),
        (vec!["HSETEX", "k", "FNX", "FIELDS", "1", "f", "x"], ":0"),
        (
            vec!["HSETEX", "k", "FXX", "KEEPTTL", "FIELDS", "1", "f", "x"],
            ":1",
        ),
        (vec!["HPEXPIRETIME", "k", "FIELDS", "1", "f"], &w_far),
        (vec!["HGET", "k", "f"], "$1\r\nx"),
        (
            vec!["HSETEX", "k", "FXX", "FIELDS", "2", "f", "y", "nope", "z"],
            ":0",
        ),
        (vec!["HGET", "k", "f"], "$1\r\nx"),
        (vec!["HSETEX", "k", "FIELDS", "1", "f", "plain"], ":1"),
        (vec!["HPEXPIRETIME", "k", "FIELDS", "1", "f"], "i:-1"),
        (vec!["HSETEX", "k", "NX", "FIELDS", "1", "f", "v"], ":0"),
        (vec!["HSETEX", "newk", "XX", "FIELDS", "1", "f", "v"], ":0"),
        (vec!["EXISTS", "newk"], ":0"),
        (vec!["HSETEX", "newk", "FXX", "FIELDS", "1", "f", "v"], ":0"),
        (vec!["EXISTS", "newk"], ":0"),
        (
            vec![
                "HSETEX", "k", "EX", "10", "PX", "10", "FIELDS", "1", "f", "v",
            ],
            "-ERR syntax error",
        ),
        (
            vec![
                "HSETEX", "k", "KEEPTTL", "EX", "10", "FIELDS", "1", "f", "v",
            ],
            "-ERR syntax error",
        ),
        (
            vec!["HSETEX", "k", "PERSIST", "FIELDS", "1", "f", "v"],
            "-ERR syntax error",
        ),
        (
            vec!["HSETEX", "k", "PX", "FIELDS", "1", "f", "v"],
            "-ERR syntax error",
        ),
        (
            vec!["HSETEX", "k", "EX", "-5", "FIELDS", "1", "f", "v"],
            "-ERR invalid expire time in 'hsetex' command",
        ),
        (
            vec!["HSETEX", "k", "FIELDS", "1", "f"],
            "-ERR wrong number of arguments for 'hsetex' command",
        ),
        (vec!["HSETEX", "k", "FIELDS", "2", "f", "v"], NUMFIELDS),
        (vec!["HSETEX", "s", "FIELDS", "1", "f", "v"], WRONGTYPE),
        (
            vec![
                "HSETEX", "k", "EX", "0", "FIELDS", "2", "g", "1", "nope", "2",
            ],
            ":0",
        ),
        (vec!["HGET", "k", "g"], "nil"),
        (vec!["HKEYS", "k"], "b:f"),
        // HGETEX: values read before the change.
        (vec!["HSET", "m", "a", "1", "b", "2"], ":2"),
        (
            vec!["HGETEX", "m", "PXAT", FAR, "FIELDS", "3", "a", "b", "zz"],
            "b:1,2,~",
        ),
        (vec!["HPEXPIRETIME", "m", "FIELDS", "2", "a", "b"], &w_far2),
        (vec!["HGETEX", "m", "PERSIST", "FIELDS", "1", "a"], "b:1"),
        (
            vec!["HPEXPIRETIME", "m", "FIELDS", "2", "a", "b"],
            &w_none_far,
        ),
        (vec!["HGETEX", "m", "EX", "0", "FIELDS", "1", "a"], "b:1"),
        (vec!["HGET", "m", "a"], "nil"),
        (
            vec!["HGETEX", "m", "KEEPTTL", "FIELDS", "1", "b"],
            "-ERR syntax error",
        ),
        (vec!["HGETEX", "m", "FIELDS", "0", "b"], NUMFIELDS),
        (
            vec!["HGETEX", "nokey", "EX", "10", "FIELDS", "1", "b"],
            "b:~",
        ),
        (vec!["EXISTS", "nokey"], ":0"),
        (
            vec!["HGETEX", "m", "EXAT", "-1", "FIELDS", "1", "b"],
            "-ERR invalid expire time in 'hgetex' command",
        ),
        (
            vec!["HGETEX", "s", "EX", "abc", "FIELDS", "1", "b"],
            WRONGTYPE,
        ),
        (vec!["HGETEX", "m", "FIELDS", "1", "b"], "b:2"),
        // HGETDEL.
        (
            vec!["HGETDEL", "m", "FIELDS", "x", "b"],
            "-ERR value is not an integer or out of range",
        ),
        (vec!["HGETDEL", "m", "FIELDS", "2", "b"], NUMFIELDS),
        (vec!["HGETDEL", "m", "FIELDS", "2", "b", "zz"], "b:2,~"),
        (vec!["EXISTS", "m"], ":0"),
        (vec!["HGETDEL", "nokey", "FIELDS", "1", "b"], "b:~"),
        // HINCRBY keeps a live field's TTL; HSET and HSETNX over a field drop it.
        (
            vec!["HSETEX", "n", "PXAT", FAR, "FIELDS", "1", "c", "5"],
            ":1",
        ),
        (vec!["HINCRBY", "n", "c", "2"], ":7"),
        (vec!["HINCRBYFLOAT", "n", "c", "0.5"], "$3\r\n7.5"),
        (vec!["HPEXPIRETIME", "n", "FIELDS", "1", "c"], &w_far),
        (vec!["HSET", "n", "c", "1"], ":0"),
        (vec!["HPEXPIRETIME", "n", "FIELDS", "1", "c"], "i:-1"),
        (vec!["HDEL", "n", "c"], ":1"),
        (vec!["EXISTS", "n"], ":0"),
    ];
    for (cmd, want) in &cases {
        expect(&mut c, cmd, want)?;
    }
    // HTTL rounds the remaining time to seconds.
    expect(
        &mut c,
        &["HSETEX", "t", "PX", "100000", "FIELDS", "1", "f", "v"],
        ":1",
    )?;
    let ttl = c.cmd(&["HTTL", "t", "FIELDS", "1", "f"])?;
    ensure!(
        ttl == resp("i:100") || ttl == resp("i:99"),
        "HTTL: {}",
        show(&ttl)
    );
    // RESP3: nils of HGETEX and HGETDEL.
    c.cmd(&["HELLO", "3"])?;
    expect(
        &mut c,
        &["HGETEX", "t", "FIELDS", "2", "f", "zz"],
        "*2\r\n$1\r\nv\r\n_",
    )?;
    expect(
        &mut c,
        &["HGETDEL", "t", "FIELDS", "2", "zz", "f"],
        "*2\r\n_\r\n$1\r\nv",
    )?;
    Ok(())
}

fn field_gone(c: &mut RawConn, key: &str, field: &str) -> bool {
    c.cmd(&["HEXISTS", key, field])
        .is_ok_and(|r| r == b":0\r\n")
}

/// A passed field disappears from every read at once, stays in HLEN until the active cycle
/// reclaims it (announcing `hexpired`, and `del` with the last field), and field TTLs (and
/// the index the cycle walks) survive SIGKILL.
#[test]
fn passed_fields_hide_then_the_cycle_reclaims_them_and_ttls_survive_sigkill() -> Result<()> {
    let mut node = Node::builder().appendfsync("always").start()?;
    let mut c = node.raw()?;
    expect(
        &mut c,
        &["CONFIG", "SET", "notify-keyspace-events", "Khg"],
        "+OK",
    )?;
    let mut sub = node.raw()?;
    sub.cmd(&["PSUBSCRIBE", "__keyspace@0__:*"])?;
    expect(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"], "+OK")?;
    expect(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"], ":3")?;
    expect(
        &mut c,
        &["HPEXPIRE", "h", "50", "FIELDS", "2", "a", "b"],
        "i:1,1",
    )?;
    wait_until(Duration::from_secs(10), "the fields to pass", || {
        field_gone(&mut c, "h", "a") && field_gone(&mut c, "h", "b")
    })?;
    for (cmd, want) in [
        (vec!["HLEN", "h"], ":3"),
        (vec!["HGETALL", "h"], "b:c,3"),
        (vec!["HKEYS", "h"], "b:c"),
        (vec!["HVALS", "h"], "b:3"),
        (vec!["HMGET", "h", "a", "b", "c"], "b:~,~,3"),
        (vec!["HSTRLEN", "h", "a"], ":0"),
        (
            vec!["HSCAN", "h", "0"],
            "*2\r\n$1\r\n0\r\n*2\r\n$1\r\nc\r\n$1\r\n3",
        ),
        (vec!["HRANDFIELD", "h", "-4"], "b:c,c,c,c"),
        (vec!["HTTL", "h", "FIELDS", "2", "a", "c"], "i:-2,-1"),
        (vec!["HPERSIST", "h", "FIELDS", "1", "a"], "i:-2"),
        (vec!["HEXPIRE", "h", "100", "FIELDS", "1", "a"], "i:-2"),
        (vec!["HDEL", "h", "a"], ":0"),
        (vec!["EXISTS", "h"], ":1"),
    ] {
        expect(&mut c, &cmd, want)?;
    }
    expect(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"], "+OK")?;
    wait_until(Duration::from_secs(10), "the cycle to reclaim them", || {
        c.cmd(&["HLEN", "h"]).is_ok_and(|r| r == b":1\r\n")
    })?;
    expect(&mut c, &["HPEXPIRE", "h", "50", "FIELDS", "1", "c"], "i:1")?;
    wait_until(Duration::from_secs(10), "the key to go", || {
        c.cmd(&["EXISTS", "h"]).is_ok_and(|r| r == b":0\r\n")
    })?;
    let events: Vec<String> = crate::notifications::drain(&mut sub)?
        .iter()
        .filter_map(|m| m.rsplit("\\r\\n").nth(1).map(str::to_string))
        .collect();
    ensure!(
        events == ["hset", "hexpire", "hexpired", "hexpire", "hexpired", "del"],
        "events: {events:?}"
    );

    // TTLs and the expiry index are on disk: after SIGKILL the far TTL is there and the near
    // one still passes and is reclaimed.
    expect(&mut c, &["HSET", "d", "x", "1", "y", "2", "z", "3"], ":3")?;
    expect(&mut c, &["HPEXPIREAT", "d", FAR, "FIELDS", "1", "x"], "i:1")?;
    expect(
        &mut c,
        &["HPEXPIRE", "d", "1500", "FIELDS", "1", "y"],
        "i:1",
    )?;
    node.kill9()?;
    node.restart()?;
    let mut c = node.raw()?;
    expect(
        &mut c,
        &["HPEXPIRETIME", "d", "FIELDS", "3", "x", "z", "nope"],
        &format!("i:{FAR},-1,-2"),
    )?;
    wait_until(
        Duration::from_secs(15),
        "y to be reclaimed after restart",
        || c.cmd(&["HLEN", "d"]).is_ok_and(|r| r == b":2\r\n"),
    )?;
    expect(&mut c, &["HGETALL", "d"], "b:x,1,z,3")?;
    Ok(())
}

/// DUMP of a hash with field TTLs is Valkey 9's type 22 at RDB version 80; RESTORE reads it
/// (a payload built byte by byte here, not by rockslot's writer, included) and valkey-server
/// 8.1.8 refuses it as too new, as it refuses Valkey 9's; a hash without TTLs stays type 4 or
/// listpack at version 11.
#[test]
fn dump_and_restore_carry_field_ttls_as_valkey_9_writes_them() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.raw()?;
    expect(&mut c, &["HSET", "v", "a", "1", "b", "2"], ":2")?;
    let plain = bulk_body(&c.cmd(&["DUMP", "v"])?)?;
    ensure!(
        plain[plain.len() - 10..plain.len() - 8] == [11, 0],
        "plain: version 11"
    );
    expect(&mut c, &["HPEXPIREAT", "v", FAR, "FIELDS", "1", "a"], "i:1")?;
    let payload = bulk_body(&c.cmd(&["DUMP", "v"])?)?;
    ensure!(payload[0] == 22, "type byte {}", payload[0]);
    ensure!(
        payload[payload.len() - 10..payload.len() - 8] == [80, 0],
        "version: {}",
        show(&payload)
    );
    let r: Vec<&[u8]> = vec![b"RESTORE", b"v2", b"0", &payload];
    ensure!(c.cmd(&r)? == b"+OK\r\n", "RESTORE v2");
    expect(
        &mut c,
        &["HPEXPIRETIME", "v2", "FIELDS", "2", "a", "b"],
        &format!("i:{FAR},-1"),
    )?;
    expect(&mut c, &["HGETALL", "v2"], "b:a,1,b,2")?;

    // Built by hand: field, value, i64 LE expiry (-1 none) per field.
    let mut body = vec![22u8, 2];
    for (f, v, t) in [("f", "x", FAR.parse::<i64>()?), ("g", "y", -1)] {
        body.extend_from_slice(&[1, f.as_bytes()[0], 1, v.as_bytes()[0]]);
        body.extend_from_slice(&t.to_le_bytes());
    }
    body.extend_from_slice(&80u16.to_le_bytes());
    let crc = rockslot::rdb::crc64(0, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    let r: Vec<&[u8]> = vec![b"RESTORE", b"made", b"0", &body];
    let got = c.cmd(&r)?;
    ensure!(
        got == b"+OK\r\n",
        "RESTORE of a hand-built payload: {}",
        show(&got)
    );
    expect(
        &mut c,
        &["HPEXPIRETIME", "made", "FIELDS", "2", "f", "g"],
        &format!("i:{FAR},-1"),
    )?;
    // A TTL below -1 is corrupt.
    let mut bad = body[..body.len() - 10].to_vec();
    let at = bad.len() - 8;
    bad[at..].copy_from_slice(&(-5i64).to_le_bytes());
    bad.extend_from_slice(&80u16.to_le_bytes());
    let crc = rockslot::rdb::crc64(0, &bad);
    bad.extend_from_slice(&crc.to_le_bytes());
    let r: Vec<&[u8]> = vec![b"RESTORE", b"bad", b"0", &bad];
    expect_raw(&mut c, &r, "-ERR Bad data format")?;

    let valkey = RedisServer::start_valkey()?;
    let mut vc = RawConn::connect(valkey.addr())?;
    let r: Vec<&[u8]> = vec![b"RESTORE", b"v", b"0", &payload];
    expect_raw(
        &mut vc,
        &r,
        "-ERR DUMP payload version or checksum are wrong",
    )?;
    let r: Vec<&[u8]> = vec![b"RESTORE", b"v", b"0", &plain];
    expect_raw(&mut vc, &r, "+OK")?;
    Ok(())
}

fn expect_raw(c: &mut RawConn, cmd: &[&[u8]], want: &str) -> Result<()> {
    let got = c.cmd(cmd)?;
    ensure!(got == resp(want), "{}: {}", show(cmd[0]), show(&got));
    Ok(())
}

fn names() -> Vec<String> {
    (0..30).map(|i| format!("vh:{i}")).collect()
}

/// Fields with and without TTLs, some long, and the far TTL of every other field.
fn build(c: &mut RawConn, key: &str, i: usize) -> Result<()> {
    for f in 0..12 {
        let v = format!("{i}-{f}-{}", "x".repeat(f * 9));
        let r = c.cmd(&["HSET", key, &format!("f{f}"), &v])?;
        ensure!(r.starts_with(b":"), "HSET: {}", show(&r));
    }
    for f in (0..12).step_by(2) {
        let at = far_plus((i * 100 + f) as i64);
        expect(
            c,
            &["HPEXPIREAT", key, &at, "FIELDS", "1", &format!("f{f}")],
            "i:1",
        )?;
    }
    Ok(())
}

/// HGETALL and every field's expiry time.
fn fingerprint(c: &mut RawConn, key: &str) -> Result<Vec<u8>> {
    let mut out = c.cmd(&["HGETALL", key])?;
    let mut cmd: Vec<String> = vec![
        "HPEXPIRETIME".into(),
        key.into(),
        "FIELDS".into(),
        "13".into(),
    ];
    cmd.extend((0..13).map(|f| format!("f{f}")));
    out.extend(c.cmd(&cmd)?);
    Ok(out)
}

/// Field TTLs move with their slots (native and MIGRATE resharding), reach replicas, come
/// back from a backup and stay on the replica that takes over from a killed primary; a short
/// TTL set before the moves still passes afterwards on the new owner.
#[test]
fn field_ttls_move_replicate_back_up_and_fail_over_with_their_slots() -> Result<()> {
    let mut c = Cluster::builder(6).start()?;
    c.create_and_wait(1)?;
    for (i, k) in names().iter().enumerate() {
        let owner = c.key_owner(k)?;
        let mut conn = c.node(owner).raw_authed()?;
        build(&mut conn, k, i)?;
        // Passes a few seconds from now, wherever the key is by then.
        expect(
            &mut conn,
            &["HPEXPIRE", k, "4000", "FIELDS", "1", "f11"],
            "i:1",
        )?;
    }
    crate::harness::slot_journey(&mut c, &names(), &fingerprint, &mut |c| {
        for k in names() {
            let owner = c.key_owner(&k)?;
            let mut conn = c.node(owner).raw_authed()?;
            wait_until(SETTLE, "the short TTL to pass and be reclaimed", || {
                conn.cmd(&["HLEN", &k]).is_ok_and(|r| r == b":11\r\n")
            })?;
        }
        // What build() wrote less f11, from a standalone node given the same commands.
        let n = Node::start()?;
        let mut s = n.raw()?;
        let mut want = Vec::new();
        for (i, k) in names().iter().enumerate() {
            build(&mut s, k, i)?;
            expect(&mut s, &["HDEL", k, "f11"], ":1")?;
            want.push(fingerprint(&mut s, k)?);
        }
        Ok(want)
    })
}

/// The active cycle finds keys and fields where they are stored: after SWAPDB, a passed
/// field and a passed key are reclaimed in the database that now holds them.
#[test]
fn the_cycle_reclaims_fields_and_keys_after_swapdb() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.raw()?;
    expect(&mut c, &["HSET", "h", "f", "v", "g", "w"], ":2")?;
    expect(&mut c, &["HPEXPIRE", "h", "300", "FIELDS", "1", "f"], "i:1")?;
    expect(&mut c, &["SET", "k", "v", "PX", "300"], "+OK")?;
    expect(&mut c, &["SWAPDB", "0", "1"], "+OK")?;
    expect(&mut c, &["SELECT", "1"], "+OK")?;
    wait_until(
        Duration::from_secs(10),
        "the field and the key to go",
        || {
            c.cmd(&["HLEN", "h"]).is_ok_and(|r| r == b":1\r\n")
                && c.cmd(&["DBSIZE"]).is_ok_and(|r| r == b":1\r\n")
        },
    )?;
    expect(&mut c, &["HGETALL", "h"], "b:g,w")?;
    Ok(())
}

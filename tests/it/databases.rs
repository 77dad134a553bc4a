//! Numbered databases: SELECT, MOVE, COPY … DB, SWAPDB, FLUSHDB, DBSIZE and INFO keyspace
//! byte for byte against valkey-server 8.1.8 (cases and seeded generators that mix types on
//! the same names across databases, RESP2 and RESP3); listings, WATCH and blocking commands
//! that stay inside their database; databases that survive SIGKILL and replicate with SWAPDB;
//! the `databases` settings; and a data directory written by the single-database format 1
//! that opens as database 0.

use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::commands::Rng;
use crate::harness::{assert_same_reply, wait_until, Node, NodeBuilder};

const CASES: &[&[&str]] = &[
    &["SELECT", "9"],
    &["SET", "a", "1"],
    &["DBSIZE"],
    &["SELECT", "0"],
    &["GET", "a"],
    &["DBSIZE"],
    &["SELECT", "16"],
    &["SELECT", "-1"],
    &["SELECT", "x"],
    &["SELECT", "99999999999"],
    &["SELECT", "15"],
    &["SELECT", "0"],
    &["SET", "b", "2"],
    &["MOVE", "b", "9"],
    &["MOVE", "b", "9"],
    &["MOVE", "nokey", "9"],
    &["MOVE", "b", "0"],
    &["MOVE", "b", "99"],
    &["MOVE", "b", "x"],
    &["MOVE", "b", "-3"],
    &["SET", "a", "in zero"],
    &["MOVE", "a", "9"],
    &["GET", "a"],
    &["SELECT", "9"],
    &["GET", "b"],
    &["RPUSH", "l", "x", "y", "z"],
    &["COPY", "l", "l2", "DB", "3"],
    &["COPY", "l", "l", "DB", "3"],
    &["COPY", "l", "l", "DB", "3"],
    &["COPY", "l", "l", "DB", "3", "REPLACE"],
    &["COPY", "l", "l"],
    &["COPY", "l", "l", "DB", "99"],
    &["COPY", "l", "l", "DB"],
    &["COPY", "nokey", "x", "DB", "3"],
    &["ZADD", "z", "1", "a", "2", "b"],
    &["EXPIRE", "z", "1000"],
    &["MOVE", "z", "3"],
    &["EXISTS", "z"],
    &["SELECT", "3"],
    &["LRANGE", "l", "0", "-1"],
    &["LRANGE", "l2", "0", "-1"],
    &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
    &["TTL", "z"],
    &["DBSIZE"],
    &["SWAPDB", "3", "4"],
    &["LRANGE", "l", "0", "-1"],
    &["DBSIZE"],
    &["SWAPDB", "3", "x"],
    &["SWAPDB", "x", "3"],
    &["SWAPDB", "3", "40"],
    &["SWAPDB", "-1", "3"],
    &["SWAPDB", "5", "5"],
    &["SELECT", "4"],
    &["LRANGE", "l", "0", "-1"],
    &["TYPE", "z"],
    &["DBSIZE"],
    &["SWAPDB", "4", "3"],
    &["DBSIZE"],
    &["SELECT", "3"],
    &["HSET", "h", "f", "v"],
    &["RENAME", "h", "h2"],
    &["HGETALL", "h2"],
    &["INFO", "keyspace"],
    &["FLUSHDB", "bogus"],
    &["FLUSHDB"],
    &["DBSIZE"],
    &["SELECT", "9"],
    &["DBSIZE"],
    &["FLUSHDB", "SYNC"],
    &["INFO", "keyspace"],
    &["SET", "k", "v"],
    &["SELECT", "0"],
    &["SET", "k", "zero"],
    &["FLUSHALL"],
    &["INFO", "keyspace"],
    &["SELECT", "9"],
    &["EXISTS", "k"],
    &["MULTI"],
    &["SELECT", "2"],
    &["SET", "m", "in two"],
    &["EXEC"],
    &["GET", "m"],
    &["SELECT", "0"],
    &["GET", "m"],
    &[
        "EVAL",
        "redis.call('SELECT', 5) return redis.call('SET', 'fromlua', '1')",
        "0",
    ],
    &["EXISTS", "fromlua"],
    &["SELECT", "5"],
    &["EXISTS", "fromlua"],
    &["RESET"],
    &["EXISTS", "fromlua"],
];

#[test]
fn database_cases_match_valkey_byte_for_byte_in_resp2_and_resp3() -> Result<()> {
    crate::harness::assert_cases_match_valkey(CASES)
}

const NAMES: &[&str] = &["a", "b", "c", "d"];
const DBS: &[&str] = &["0", "1", "2", "9", "15"];

fn random_db_command(r: &mut Rng) -> Vec<String> {
    let k = r.pick(NAMES).to_string();
    let k2 = r.pick(NAMES).to_string();
    let db = r.pick(DBS).to_string();
    let v = format!("v{}", r.below(100));
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match r.below(34) {
        0..=3 => s(&["SELECT", &db]),
        4 => s(&["SET", &k, &v]),
        5 => s(&["GET", &k]),
        6 => s(&["APPEND", &k, "x"]),
        7 => s(&["RPUSH", &k, &v, "tail"]),
        8 => s(&["LRANGE", &k, "0", "-1"]),
        9 => s(&["HSET", &k, "f", &v]),
        10 => s(&["HGET", &k, "f"]),
        11 => s(&["SADD", &k, &v]),
        12 => s(&["SCARD", &k]),
        13 => s(&["ZADD", &k, &r.below(10).to_string(), &v]),
        14 => s(&["ZRANGE", &k, "0", "-1", "WITHSCORES"]),
        15 => s(&["TYPE", &k]),
        16 => s(&["EXISTS", &k, &k2]),
        17 => s(&["DEL", &k]),
        18 | 19 => s(&["MOVE", &k, &db]),
        20 => s(&["COPY", &k, &k2, "DB", &db]),
        21 => s(&["COPY", &k, &k2, "DB", &db, "REPLACE"]),
        22 => s(&["COPY", &k, &k2]),
        23 => s(&["SWAPDB", &db, r.pick(DBS)]),
        24 | 25 => s(&["DBSIZE"]),
        26 => s(&["EXPIRE", &k, "1000"]),
        27 => s(&["TTL", &k]),
        28 => s(&["PERSIST", &k]),
        29 => s(&["RENAME", &k, &k2]),
        30 => s(&["LPOP", &k]),
        31 => {
            if r.below(4) == 0 {
                s(&["FLUSHDB"])
            } else {
                s(&["DBSIZE"])
            }
        }
        32 => s(&["INCR", &k]),
        _ => s(&["STRLEN", &k]),
    }
}

/// Thousands of seeded commands over the same names in five databases; every reply identical.
#[test]
fn generated_database_commands_match_valkey() -> Result<()> {
    for (i, seed) in [0xdb_0001u64, 0xdb_0002, 0xdb_0003].into_iter().enumerate() {
        let resp3 = i % 2 == 1;
        let (_node, _valkey, mut ours, mut theirs) = crate::harness::node_and_valkey_in(resp3)?;
        let mut r = Rng(seed);
        for step in 0..2500 {
            let cmd = random_db_command(&mut r);
            let at = format!("seed {seed:#x} step {step} resp3={resp3}");
            assert_same_reply(&mut ours, &mut theirs, &cmd, &at)?;
        }
        // Every database holds as many keys, and as many with a TTL, at the end (Valkey's
        // avg_ttl is a sampled estimate, left out).
        for db in DBS {
            for cmd in [&["SELECT", db][..], &["DBSIZE"]] {
                assert_same_reply(&mut ours, &mut theirs, cmd, &format!("end db {db}"))?;
            }
        }
        let keyspace = |c: &mut crate::harness::RawConn| -> Result<String> {
            let text = String::from_utf8(c.cmd(&["INFO", "keyspace"])?)?;
            Ok(text
                .split("\r\n")
                .filter(|l| l.starts_with("db"))
                .map(|l| l.split(",avg_ttl").next().unwrap_or(l).to_string())
                .collect::<Vec<_>>()
                .join(" "))
        };
        let (a, b) = (keyspace(&mut ours)?, keyspace(&mut theirs)?);
        ensure!(a == b, "INFO keyspace: ours {a} / valkey {b}");
        ensure!(!a.is_empty(), "the run left keys");
    }
    Ok(())
}

fn query<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> Result<T> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    Ok(cmd.query(c)?)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// KEYS, SCAN, RANDOMKEY, CLIENT LIST and valkey-cli's `-n` each see one database.
#[test]
fn listings_and_tools_see_only_the_selected_database() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.conn()?;
    for i in 0..300 {
        query::<()>(&mut c, &["SET", &format!("zero:{i}"), "x"])?;
    }
    query::<()>(&mut c, &["SELECT", "9"])?;
    for i in 0..50 {
        query::<()>(&mut c, &["SET", &format!("nine:{i}"), "x"])?;
    }
    query::<()>(&mut c, &["SET", "nine:ttl", "x", "EX", "1000"])?;
    let keys: Vec<String> = query(&mut c, &["KEYS", "*"])?;
    let want: Vec<String> = sorted(
        (0..50)
            .map(|i| format!("nine:{i}"))
            .chain(["nine:ttl".to_string()])
            .collect(),
    );
    assert_eq!(sorted(keys), want);
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    for _ in 0..1000 {
        let (next, batch): (String, Vec<String>) = query(&mut c, &["SCAN", &cursor, "COUNT", "7"])?;
        seen.extend(batch);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, want, "SCAN in db 9");
    for _ in 0..20 {
        let k: String = query(&mut c, &["RANDOMKEY"])?;
        ensure!(k.starts_with("nine:"), "RANDOMKEY in db 9 gave {k}");
    }
    let id: i64 = query(&mut c, &["CLIENT", "ID"])?;
    let list: String = query(&mut c, &["CLIENT", "LIST", "ID", &id.to_string()])?;
    ensure!(
        list.contains(" db=9 "),
        "CLIENT LIST shows the database: {list}"
    );
    let info: String = query(&mut c, &["INFO", "keyspace"])?;
    ensure!(
        info.contains("db0:keys=300,expires=0,avg_ttl=0")
            && info.contains("db9:keys=51,expires=1,avg_ttl=0"),
        "INFO keyspace: {info}"
    );
    // valkey-cli -n selects before every command.
    let out = node.redis_cli(&["-n", "9", "DBSIZE"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "51");
    let out = node.redis_cli(&["-n", "0", "DBSIZE"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "300");
    Ok(())
}

/// A write to the same name in another database neither dirties a WATCH nor serves a blocked
/// pop; FLUSHDB and SWAPDB of the watched database do.
#[test]
fn watch_and_blocking_pops_stay_in_their_database() -> Result<()> {
    let node = Node::start()?;
    let mut w = node.conn()?;
    let mut other = node.conn()?;
    query::<()>(&mut w, &["SELECT", "1"])?;
    let exec = |w: &mut redis::Connection| -> Result<redis::Value> {
        query::<()>(w, &["MULTI"])?;
        query::<()>(w, &["SET", "done", "1"])?;
        query(w, &["EXEC"])
    };
    query::<()>(&mut w, &["WATCH", "k"])?;
    query::<()>(&mut other, &["SET", "k", "db0"])?;
    ensure!(
        exec(&mut w)? != redis::Value::Nil,
        "a db 0 write dirtied db 1's WATCH"
    );
    query::<()>(&mut w, &["WATCH", "k"])?;
    query::<()>(&mut other, &["SELECT", "1"])?;
    query::<()>(&mut other, &["SET", "k", "db1"])?;
    assert_eq!(
        exec(&mut w)?,
        redis::Value::Nil,
        "a db 1 write must abort EXEC"
    );
    for dirty in [&["FLUSHDB"][..], &["SWAPDB", "1", "7"]] {
        query::<()>(&mut w, &["WATCH", "k"])?;
        query::<()>(&mut other, dirty)?;
        assert_eq!(
            exec(&mut w)?,
            redis::Value::Nil,
            "{dirty:?} must abort EXEC"
        );
    }

    // BLPOP in db 2: a push to db 0 leaves it blocked, a push to db 2 serves it.
    let mut blocked = node.raw()?;
    blocked.cmd(&["SELECT", "2"])?;
    blocked.send(&crate::harness::encode_cmd(&["BLPOP", "q", "10"]))?;
    let mut pusher = node.conn()?;
    wait_until(Duration::from_secs(5), "the client to block", || {
        query::<String>(&mut pusher, &["CLIENT", "LIST"]).is_ok_and(|l| l.contains("cmd=blpop"))
    })?;
    query::<()>(&mut pusher, &["RPUSH", "q", "wrong-db"])?;
    blocked.set_timeout(Duration::from_millis(300))?;
    ensure!(blocked.read_frame().is_err(), "served from db 0");
    query::<()>(&mut pusher, &["SELECT", "2"])?;
    query::<()>(&mut pusher, &["RPUSH", "q", "right-db"])?;
    blocked.set_timeout(Duration::from_secs(10))?;
    let got = blocked.read_frame()?;
    assert_eq!(
        crate::harness::show(&got),
        crate::harness::show(b"*2\r\n$1\r\nq\r\n$8\r\nright-db\r\n")
    );
    query::<()>(&mut pusher, &["SELECT", "0"])?;
    let left: Vec<String> = query(&mut pusher, &["LRANGE", "q", "0", "-1"])?;
    assert_eq!(left, vec!["wrong-db".to_string()]);
    Ok(())
}

fn db_contents(c: &mut redis::Connection, db: &str) -> Result<(i64, Option<String>, Vec<String>)> {
    query::<()>(c, &["SELECT", db])?;
    let n: i64 = query(c, &["DBSIZE"])?;
    let s: Option<String> = query(c, &["GET", "s"])?;
    let l: Vec<String> = query(c, &["LRANGE", "l", "0", "-1"])?;
    Ok((n, s, l))
}

fn fill(c: &mut redis::Connection, db: &str) -> Result<()> {
    query::<()>(c, &["SELECT", db])?;
    query::<()>(c, &["SET", "s", &format!("string in {db}")])?;
    query::<()>(c, &["RPUSH", "l", db, "end"])?;
    query::<()>(c, &["HSET", "h", "db", db])?;
    query::<()>(c, &["SET", "ttl", db, "EX", "1000"])?;
    Ok(())
}

/// Databases replicate (full sync and stream, SWAPDB and FLUSHDB included) and survive a
/// SIGKILL of the primary and of the replica.
#[test]
fn databases_replicate_and_survive_sigkill() -> Result<()> {
    let mut primary = Node::start()?;
    let mut replica = Node::start()?;
    let mut p = primary.conn()?;
    fill(&mut p, "0")?;
    fill(&mut p, "3")?;
    let mut r = replica.conn()?;
    query::<()>(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &primary.port().to_string()],
    )?;
    // After the full sync: a streamed write, SWAPDB and FLUSHDB.
    wait_until(Duration::from_secs(30), "the full sync", || {
        db_contents(&mut r, "3").is_ok_and(|(n, _, _)| n == 4)
    })?;
    fill(&mut p, "9")?;
    query::<()>(&mut p, &["SWAPDB", "3", "5"])?;
    query::<()>(&mut p, &["SELECT", "0"])?;
    query::<()>(&mut p, &["FLUSHDB"])?;
    let expected = |c: &mut redis::Connection| -> Result<bool> {
        Ok(db_contents(c, "0")? == (0, None, vec![])
            && db_contents(c, "3")? == (0, None, vec![])
            && db_contents(c, "5")?
                == (
                    4,
                    Some("string in 3".into()),
                    vec!["3".into(), "end".into()],
                )
            && db_contents(c, "9")?
                == (
                    4,
                    Some("string in 9".into()),
                    vec!["9".into(), "end".into()],
                ))
    };
    ensure!(
        expected(&mut p)?,
        "primary after SWAPDB 3 5 and FLUSHDB of 0"
    );
    wait_until(Duration::from_secs(30), "the replica to follow", || {
        expected(&mut r).unwrap_or(false)
    })?;
    primary.kill9()?;
    primary.restart()?;
    let mut p = primary.conn()?;
    ensure!(expected(&mut p)?, "primary after SIGKILL");
    replica.kill9()?;
    replica.restart()?;
    let mut r = replica.conn()?;
    wait_until(Duration::from_secs(30), "the replica after SIGKILL", || {
        expected(&mut r).unwrap_or(false)
    })?;
    query::<()>(&mut r, &["SELECT", "5"])?;
    let ttl: i64 = query(&mut r, &["TTL", "ttl"])?;
    ensure!((900..=1000).contains(&ttl), "TTL kept in db 5: {ttl}");
    Ok(())
}

/// `databases` bounds SELECT; more than rockslot keeps is refused at start with the reason;
/// cluster mode refuses SELECT with Valkey 8's words unless `cluster-databases` allows it.
#[test]
fn database_settings() -> Result<()> {
    let node = NodeBuilder::new().directive("databases", "4").start()?;
    let mut c = node.conn()?;
    query::<()>(&mut c, &["SELECT", "3"])?;
    let e = query::<()>(&mut c, &["SELECT", "4"]).unwrap_err();
    ensure!(e.to_string().contains("DB index is out of range"), "{e}");
    let got: Vec<String> = query(&mut c, &["CONFIG", "GET", "databases"])?;
    assert_eq!(got, vec!["databases".to_string(), "4".to_string()]);
    let e = query::<()>(&mut c, &["CONFIG", "SET", "databases", "8"]).unwrap_err();
    ensure!(e.to_string().contains("immutable"), "{e}");

    let (status, out) = NodeBuilder::new()
        .directive("databases", "33")
        .run_to_exit(Duration::from_secs(20))?;
    ensure!(!status.success(), "databases 33 must not start");
    ensure!(
        out.contains("databases"),
        "the refusal names the directive: {out}"
    );

    let node = NodeBuilder::new()
        .directive("cluster-enabled", "yes")
        .directive("cluster-bus-secret", "s3cret")
        .start()?;
    let mut c = node.conn()?;
    query::<()>(&mut c, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"])?;
    wait_until(Duration::from_secs(10), "cluster_state:ok", || {
        query::<String>(&mut c, &["CLUSTER", "INFO"]).is_ok_and(|i| i.contains("cluster_state:ok"))
    })?;
    query::<()>(&mut c, &["SELECT", "0"])?;
    for (cmd, msg) in [
        (
            &["SELECT", "1"][..],
            "SELECT is not allowed in cluster mode",
        ),
        (&["MOVE", "k", "1"], "MOVE is not allowed in cluster mode"),
        (
            &["SWAPDB", "0", "1"],
            "SWAPDB is not allowed in cluster mode",
        ),
        (
            &["COPY", "{a}x", "{a}y", "DB", "1"],
            "Copying to another database is not allowed in cluster mode",
        ),
    ] {
        let e = query::<()>(&mut c, cmd).unwrap_err();
        ensure!(e.to_string().contains(msg), "{cmd:?}: {e}");
    }
    let node = NodeBuilder::new()
        .directive("cluster-enabled", "yes")
        .directive("cluster-bus-secret", "s3cret")
        .directive("cluster-databases", "4")
        .start()?;
    let mut c = node.conn()?;
    query::<()>(&mut c, &["SELECT", "3"])?;
    let e = query::<()>(&mut c, &["SELECT", "4"]).unwrap_err();
    ensure!(e.to_string().contains("DB index is out of range"), "{e}");
    Ok(())
}

/// A data directory written by format 1 (one database, before numbered databases) opens as
/// database 0 with every type and TTL, and is format 2 from then on. The fixture was written
/// by the format-1 server (see `tests/fixtures/README.md`).
#[test]
fn format_1_data_directory_opens_as_database_0() -> Result<()> {
    let root = tempfile::Builder::new().prefix("rockslot-it-").tempdir()?;
    let data = root.path().join("data");
    std::fs::create_dir_all(&data)?;
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/format1-data.tar.gz"
    );
    let status = std::process::Command::new("tar")
        .args(["-xzf", fixture, "-C"])
        .arg(&data)
        .status()
        .context("tar")?;
    ensure!(status.success(), "unpacking {fixture}");
    let mut node = NodeBuilder::new().root(root.path()).start()?;
    let check = |node: &Node| -> Result<()> {
        let mut c = node.conn()?;
        let n: i64 = query(&mut c, &["DBSIZE"])?;
        assert_eq!(n, 1006, "every key of the format-1 directory is in db 0");
        let s: String = query(&mut c, &["GET", "{fx}str"])?;
        assert_eq!(s, "format one");
        let l: Vec<String> = query(&mut c, &["LRANGE", "{fx}list", "0", "-1"])?;
        assert_eq!(l, vec!["a", "b", "c"]);
        let h: Vec<String> = query(&mut c, &["HMGET", "{fx}hash", "f1", "f2"])?;
        assert_eq!(h, vec!["v1", "v2"]);
        let z: Vec<String> = query(&mut c, &["ZRANGE", "{fx}zset", "0", "-1", "WITHSCORES"])?;
        assert_eq!(z, vec!["m1", "1", "m2", "2"]);
        let m: bool = query(&mut c, &["SISMEMBER", "{fx}set", "x"])?;
        ensure!(m, "set member");
        let ttl: i64 = query(&mut c, &["TTL", "{fx}ttl"])?;
        ensure!(ttl > 0, "the TTL survived: {ttl}");
        let k: String = query(&mut c, &["GET", "{fx}k999"])?;
        assert_eq!(k, "v999");
        query::<()>(&mut c, &["SELECT", "1"])?;
        let n: i64 = query(&mut c, &["DBSIZE"])?;
        assert_eq!(n, 0, "db 1 starts empty");
        Ok(())
    };
    check(&node)?;
    ensure!(
        node.log().contains("storage format 1 upgraded to 2"),
        "the upgrade is logged: {}",
        node.log_tail(20)
    );
    // Written in db 1 after the upgrade, and the directory reopens as format 2.
    let mut c = node.conn()?;
    query::<()>(&mut c, &["SELECT", "1"])?;
    query::<()>(&mut c, &["SET", "new", "x"])?;
    node.restart()?;
    let mut c = node.conn()?;
    query::<()>(&mut c, &["SELECT", "1"])?;
    let v: String = query(&mut c, &["GET", "new"])?;
    assert_eq!(v, "x");
    Ok(())
}

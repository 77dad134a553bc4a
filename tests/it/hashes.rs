//! Collections (hashes, lists, sets and sorted sets) stored as a meta record plus one record
//! per member survive SIGKILL with `appendfsync always`, replicate, move with their slot (native
//! MIGRATESLOTS and legacy MIGRATE) and come back from a slot backup intact.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Result};

use crate::harness::{key_slot, try_wait_until_every, Cluster, NodeBuilder};

const SETTLE: Duration = Duration::from_secs(60);

fn fields(n: usize, tag: &str) -> BTreeMap<String, String> {
    (0..n)
        .map(|i| (format!("f{i}"), format!("{tag}-{i}-{}", "v".repeat(i % 50))))
        .collect()
}

fn hset(con: &mut redis::Connection, key: &str, f: &BTreeMap<String, String>) -> Result<()> {
    for chunk in f.iter().collect::<Vec<_>>().chunks(500) {
        let mut c = redis::cmd("HSET");
        c.arg(key);
        for (k, v) in chunk {
            c.arg(k).arg(v);
        }
        c.query::<i64>(con)?;
    }
    Ok(())
}

fn hgetall(con: &mut redis::Connection, key: &str) -> Result<BTreeMap<String, String>> {
    Ok(redis::cmd("HGETALL").arg(key).query(con)?)
}

/// `n` members scored 1.5 apart, added in pipelined chunks.
fn zadd(con: &mut redis::Connection, key: &str, n: usize) -> Result<()> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let mut c = redis::cmd("ZADD");
        c.arg(key);
        for i in chunk {
            c.arg(*i as f64 * 1.5).arg(format!("m{i}"));
        }
        c.query::<i64>(con)?;
    }
    Ok(())
}

fn zrange(con: &mut redis::Connection, key: &str) -> Result<Vec<(String, f64)>> {
    Ok(redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(con)?)
}

fn zwant(n: usize, skip: Option<usize>) -> Vec<(String, f64)> {
    (0..n)
        .filter(|i| Some(*i) != skip)
        .map(|i| (format!("m{i}"), i as f64 * 1.5))
        .collect()
}

#[test]
fn hash_survives_sigkill_with_appendfsync_always() -> Result<()> {
    let mut node = NodeBuilder::new().appendfsync("always").start()?;
    let want = fields(3000, "k");
    {
        let mut con = node.conn()?;
        hset(&mut con, "h", &want)?;
        redis::cmd("HDEL")
            .arg("h")
            .arg("f7")
            .query::<i64>(&mut con)?;
        redis::cmd("HSET")
            .arg("gone")
            .arg("a")
            .arg("b")
            .query::<i64>(&mut con)?;
        for i in 0..1000 {
            redis::cmd("RPUSH").arg("l").arg(i).query::<i64>(&mut con)?;
        }
        redis::cmd("LPOP").arg("l").query::<String>(&mut con)?;
        redis::cmd("SADD")
            .arg("s")
            .arg("x")
            .arg("y")
            .query::<i64>(&mut con)?;
        redis::cmd("DEL").arg("gone").query::<i64>(&mut con)?;
        zadd(&mut con, "z", 1000)?;
        redis::cmd("ZREM")
            .arg("z")
            .arg("m500")
            .query::<i64>(&mut con)?;
    }
    node.kill9()?;
    node.restart()?;
    let mut con = node.conn()?;
    let mut want = want;
    want.remove("f7");
    ensure!(
        hgetall(&mut con, "h")? == want,
        "hash changed across SIGKILL"
    );
    let len: i64 = redis::cmd("HLEN").arg("h").query(&mut con)?;
    ensure!(len == want.len() as i64);
    let n: i64 = redis::cmd("EXISTS").arg("gone").query(&mut con)?;
    ensure!(n == 0, "a deleted hash came back");
    let l: Vec<i64> = redis::cmd("LRANGE")
        .arg("l")
        .arg(0)
        .arg(-1)
        .query(&mut con)?;
    ensure!(
        l == (1..1000).collect::<Vec<i64>>(),
        "list changed across SIGKILL"
    );
    let mut m: Vec<String> = redis::cmd("SMEMBERS").arg("s").query(&mut con)?;
    m.sort();
    ensure!(m == ["x", "y"], "set changed across SIGKILL: {m:?}");
    ensure!(
        zrange(&mut con, "z")? == zwant(1000, Some(500)),
        "sorted set changed across SIGKILL"
    );
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut con)?;
    ensure!(dbsize == 4, "DBSIZE {dbsize}");
    Ok(())
}

#[test]
fn hashes_replicate_migrate_and_restore() -> Result<()> {
    let c = Cluster::builder(6).start()?;
    c.create_and_wait(1)?;
    c.wait_all_replicating(0, SETTLE)?;
    // Two hashes in different slots of node A's range.
    let (k1, k2) = ("{user1}h", "{user2}h");
    let owner1 = c.key_owner(k1)?;
    let (f1, f2) = (fields(2000, "one"), fields(500, "two"));
    hset(&mut c.node(owner1).conn()?, k1, &f1)?;
    hset(&mut c.node(c.key_owner(k2)?).conn()?, k2, &f2)?;
    // A list, a set and a sorted set in k1's slot move with it.
    let (kl, ks, kz) = ("{user1}l", "{user1}s", "{user1}z");
    {
        let mut con = c.node(owner1).conn()?;
        for i in 0..300 {
            redis::cmd("RPUSH").arg(kl).arg(i).query::<i64>(&mut con)?;
            redis::cmd("SADD").arg(ks).arg(i).query::<i64>(&mut con)?;
        }
        zadd(&mut con, kz, 700)?;
    }
    let list_ok = |i: usize| -> Result<bool> {
        let mut con = c.node(i).conn()?;
        redis::cmd("READONLY").exec(&mut con)?;
        let l: Vec<i64> = redis::cmd("LRANGE")
            .arg(kl)
            .arg(0)
            .arg(-1)
            .query(&mut con)?;
        let n: i64 = redis::cmd("SCARD").arg(ks).query(&mut con)?;
        let z = zrange(&mut con, kz)?;
        Ok(l == (0..300).collect::<Vec<i64>>() && n == 300 && z == zwant(700, None))
    };

    // Replication: the replica holds the same fields.
    let r = c.replica_of(0, owner1)?;
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(100),
        "replica has the hash",
        || {
            let mut con = c.node(r).conn()?;
            redis::cmd("READONLY").exec(&mut con)?;
            Ok(hgetall(&mut con, k1)? == f1)
        },
    )?;

    // Native migration of k1's slot to another primary, and its replica follows.
    let s1 = key_slot(k1.as_bytes());
    let dst = c
        .masters(0)?
        .into_iter()
        .find(|&m| m != owner1)
        .unwrap_or(0);
    let dst_id = c.myid(dst)?;
    c.query(
        owner1,
        &[
            "CLUSTER",
            "MIGRATESLOTS",
            "SLOTSRANGE",
            &s1.to_string(),
            &s1.to_string(),
            "NODE",
            &dst_id,
        ],
    )?;
    try_wait_until_every(SETTLE, Duration::from_millis(50), "slot moved", || {
        Ok(c.slot_owner(0, s1)? == dst)
    })?;
    c.wait_converged(SETTLE)?;
    ensure!(
        hgetall(&mut c.node(dst).conn()?, k1)? == f1,
        "hash changed by MIGRATESLOTS"
    );
    ensure!(
        list_ok(dst)?,
        "list, set or sorted set changed by MIGRATESLOTS"
    );
    let dr = c.replica_of(0, dst)?;
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(100),
        "target replica has the hash",
        || {
            let mut con = c.node(dr).conn()?;
            redis::cmd("READONLY").exec(&mut con)?;
            Ok(hgetall(&mut con, k1)? == f1 && list_ok(dr)?)
        },
    )?;

    // Legacy MIGRATE of k2 and a sorted set beside it (each a whole value in one
    // RESTORE-ASKING payload).
    let kz2 = "{user2}z";
    zadd(&mut c.node(c.key_owner(kz2)?).conn()?, kz2, 400)?;
    let s2 = key_slot(k2.as_bytes());
    let src2 = c.slot_owner(0, s2)?;
    let dst2 = c.masters(0)?.into_iter().find(|&m| m != src2).unwrap_or(0);
    let (src2_id, dst2_id) = (c.myid(src2)?, c.myid(dst2)?);
    c.query(
        dst2,
        &["CLUSTER", "SETSLOT", &s2.to_string(), "IMPORTING", &src2_id],
    )?;
    c.query(
        src2,
        &["CLUSTER", "SETSLOT", &s2.to_string(), "MIGRATING", &dst2_id],
    )?;
    let port = c.node(dst2).port().to_string();
    let reply = c.query(
        src2,
        &[
            "MIGRATE",
            "127.0.0.1",
            &port,
            "",
            "0",
            "5000",
            "AUTH",
            "valkey",
            "KEYS",
            k2,
            kz2,
        ],
    )?;
    ensure!(reply == "OK", "MIGRATE: {reply}");
    for i in c.masters(0)? {
        c.query(
            i,
            &["CLUSTER", "SETSLOT", &s2.to_string(), "NODE", &dst2_id],
        )?;
    }
    c.wait_converged(SETTLE)?;
    ensure!(
        hgetall(&mut c.node(dst2).conn()?, k2)? == f2,
        "hash changed by MIGRATE"
    );
    ensure!(
        zrange(&mut c.node(dst2).conn()?, kz2)? == zwant(400, None),
        "sorted set changed by MIGRATE"
    );

    // Backup of both slots, delete, restore.
    let dir = std::env::temp_dir().join(format!(
        "rockslot-it-hash-bk-{}-{}",
        std::process::id(),
        crate::harness::unix_ms()
    ));
    let seed = format!("127.0.0.1:{}", c.node(0).port());
    let slots = format!("{s1},{s2}");
    c.rockslot_cli_cluster(&[
        "backup",
        &seed,
        "--out",
        &dir.display().to_string(),
        "--slots",
        &slots,
    ])?
    .ensure_success()?;
    c.query(dst, &["DEL", k1, kl, ks, kz])?;
    c.query(dst2, &["DEL", k2, kz2])?;
    c.rockslot_cli_cluster(&["restore", &seed, "--from", &dir.display().to_string()])?
        .ensure_success()?;
    ensure!(
        hgetall(&mut c.node(dst).conn()?, k1)? == f1,
        "hash changed by backup/restore"
    );
    ensure!(list_ok(dst)?, "list or set changed by backup/restore");
    ensure!(
        hgetall(&mut c.node(dst2).conn()?, k2)? == f2,
        "hash changed by backup/restore"
    );
    ensure!(
        zrange(&mut c.node(dst2).conn()?, kz2)? == zwant(400, None),
        "sorted set changed by backup/restore"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

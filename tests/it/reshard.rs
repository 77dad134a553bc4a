//! Resharding a loaded cluster while writers run: Debian's `redis-cli --cluster reshard`
//! (legacy path: SETSLOT IMPORTING/MIGRATING, GETKEYSINSLOT, MIGRATE … KEYS, RESTORE-ASKING,
//! SETSLOT NODE). Every loaded key and every acknowledged write must be readable afterwards
//! with its last value, and the replicas must follow.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};

use crate::failover::seed_cluster;
use crate::harness::AckWriter;

const LOADED: usize = 200_000;
const SETTLE: Duration = Duration::from_secs(60);

#[test]
fn seed_reshard_with_redis_cli_under_writes() -> Result<()> {
    let mut c = seed_cluster(&[])?;
    let t = Instant::now();
    let loaded = c.load_keys(0, "seed", LOADED, 32)?;
    println!("reshard: loaded {LOADED} keys in {:?}", t.elapsed());
    let (new, new_id) = c.add_primary(SETTLE)?;

    // Overwriting writers: the last acknowledged value of each key must survive the move.
    let w = AckWriter::start_cycling(&c, "hot", 4, 2000)?;
    w.wait_acked_after(t, 500, SETTLE, "writer warm-up", |_| true)?;
    let seed = format!("127.0.0.1:{}", c.node(0).port());
    let run = c.reshard_to(&new_id, 1000)?;
    let moved = run.stdout.matches('.').count();
    println!(
        "reshard: redis-cli moved 1000 slots in {:?} (about {moved} keys and dots)",
        run.elapsed
    );
    c.wait_converged(SETTLE)?;
    let ranges = c.own_ranges(new)?;
    let owned: usize = ranges.iter().map(|(a, b)| (b - a + 1) as usize).sum();
    ensure!(
        owned == 1000 && ranges.len() == 3,
        "new node owns {ranges:?}"
    );
    c.check_clean(false)?;
    c.check_clean(true)?;

    // An interrupted move (slot left open on both sides) is finished by `--cluster fix`.
    let slot = ranges[0].1 + 1;
    let src = c.slot_owner(0, slot)?;
    let (src_id, new_id2) = (c.myid(src)?, c.myid(new)?);
    c.query(
        new,
        &[
            "CLUSTER",
            "SETSLOT",
            &slot.to_string(),
            "IMPORTING",
            &src_id,
        ],
    )?;
    c.query(
        src,
        &[
            "CLUSTER",
            "SETSLOT",
            &slot.to_string(),
            "MIGRATING",
            &new_id2,
        ],
    )?;
    let run = c.redis_cli_cluster(&["fix", &seed])?.ensure_success()?;
    println!(
        "reshard: redis-cli --cluster fix closed slot {slot} in {:?}",
        run.elapsed
    );
    c.wait_converged(SETTLE)?;
    c.check_clean(false)?;

    let run = c
        .redis_cli_cluster(&["rebalance", &seed])?
        .ensure_success()?;
    println!(
        "reshard: redis-cli --cluster rebalance took {:?}",
        run.elapsed
    );
    c.wait_converged(SETTLE)?;
    c.check_clean(false)?;
    let report = w.stop(Duration::from_secs(30))?;
    println!(
        "reshard: writers: {} acknowledged, {} errors {:?}",
        report.acked.len(),
        report.errors,
        report.error_samples
    );

    let wrong = c.wrong_values(0, &loaded)?;
    ensure!(
        wrong.is_empty(),
        "{} loaded keys wrong after reshard, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let missing = report.lost(&c, 0)?;
    ensure!(
        missing.is_empty(),
        "{} of {} acknowledged keys lost their last value, e.g. {:?}",
        missing.len(),
        crate::harness::last_acked(&report.acked).len(),
        &missing[..missing.len().min(5)]
    );
    // The replicas of the sources dropped the moved keys with their primaries.
    for m in c.masters(0)? {
        if m == new {
            continue;
        }
        let r = c.replica_of(0, m)?;
        c.wait_same_dbsize(m, r, SETTLE)?;
    }
    Ok(())
}

/// `--cluster check` right after `--cluster reshard` (no waiting in between) is clean on a
/// cluster with replicas: SETSLOT NODE must reach every node, replicas included, before it
/// replies, as in Valkey 8.1 where the same sequence reports OK.
#[test]
fn check_right_after_reshard_agrees() -> Result<()> {
    let c = seed_cluster(&[])?;
    let masters = c.masters(0)?;
    for round in 0..3 {
        let to = c.myid(masters[round % masters.len()])?;
        let run = c.reshard_to(&to, 60)?;
        println!("reshard round {round}: 60 slots in {:?}", run.elapsed);
        c.check_clean(false)
            .map_err(|e| e.context(format!("check right after reshard round {round}")))?;
    }
    Ok(())
}

/// MIGRATE between two standalone nodes (the target protected by a password): single key and
/// KEYS forms, COPY, REPLACE, TTL carried over, NOKEY, BUSYKEY and wrong-password errors
/// wrapped as Valkey does, and a dead target as IOERR; the source keeps serving.
#[test]
fn migrate_options_and_errors() -> Result<()> {
    use crate::harness::{Node, NodeBuilder};
    let src = Node::start()?;
    let dst = NodeBuilder::new().password("sekret").start()?;
    let s = |args: &[&str]| src.cli(args);
    let d = |args: &[&str]| dst.cli(&[&["-a", "sekret", "--no-auth-warning"][..], args].concat());
    let port = dst.port().to_string();
    let mig = |rest: &[&str]| {
        let mut a = vec!["MIGRATE", "127.0.0.1", port.as_str()];
        a.extend_from_slice(rest);
        s(&a)
    };
    s(&["SET", "a", "1"]);
    s(&["SET", "b", "2"]);
    s(&["SET", "t", "3", "PX", "100000"]);
    s(&["SET", "c", "4"]);
    ensure!(mig(&["a", "0", "5000", "AUTH", "wrong"])
        .contains("Target instance replied with error: WRONGPASS"));
    ensure!(s(&["GET", "a"]) == "1", "a failed MIGRATE deleted the key");
    ensure!(mig(&["a", "0", "5000", "AUTH", "sekret"]) == "OK");
    ensure!(s(&["EXISTS", "a"]) == "0" && d(&["GET", "a"]) == "1");
    ensure!(
        mig(&["", "0", "5000", "COPY", "AUTH2", "default", "sekret", "KEYS", "b", "t", "nokey"])
            == "OK"
    );
    ensure!(s(&["GET", "b"]) == "2", "COPY deleted the source key");
    ensure!(d(&["GET", "b"]) == "2" && d(&["GET", "t"]) == "3");
    let ttl: i64 = d(&["PTTL", "t"]).parse()?;
    ensure!((1..=100_000).contains(&ttl), "TTL not carried over: {ttl}");
    s(&["SET", "b", "22"]);
    ensure!(mig(&["b", "0", "5000", "AUTH", "sekret"])
        .contains("Target instance replied with error: BUSYKEY"));
    ensure!(s(&["GET", "b"]) == "22");
    ensure!(mig(&["b", "0", "5000", "REPLACE", "AUTH", "sekret"]) == "OK");
    ensure!(d(&["GET", "b"]) == "22" && s(&["EXISTS", "b"]) == "0");
    ensure!(mig(&["nokey", "0", "5000", "AUTH", "sekret"]) == "NOKEY");
    ensure!(mig(&["c", "0", "5000", "KEYS", "c"])
        .contains("key argument must be set to the empty string"));
    ensure!(mig(&["c", "0", "5000", "BOGUS"]).contains("syntax error"));
    ensure!(mig(&["c", "x", "5000"]).contains("not an integer"));
    drop(dst);
    ensure!(mig(&["c", "0", "500", "AUTH", "sekret"]).starts_with("IOERR"));
    ensure!(
        s(&["GET", "c"]) == "4",
        "the source lost a key to a dead target"
    );
    Ok(())
}

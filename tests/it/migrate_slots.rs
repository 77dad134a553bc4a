//! Atomic slot migration (CLUSTER MIGRATESLOTS) driven by `rockslot-cli --cluster reshard` and
//! `rebalance` on a loaded cluster under writes; crashes of the source and of the target in
//! the middle of a migration; and the bad inputs MIGRATESLOTS must refuse without changing
//! anything.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::failover::seed_cluster;
use crate::harness::{AckWriter, Cluster, RedirectObserver};

const SETTLE: Duration = Duration::from_secs(60);

fn refused(c: &Cluster, i: usize, args: &[&str], want: &str) -> Result<()> {
    let r = c.query(i, args);
    let text = match &r {
        Ok(t) => t.clone(),
        Err(e) => format!("{e:#}"),
    };
    ensure!(
        r.is_err() && text.contains(want),
        "{args:?}: expected an error containing {want:?}, got {text:?}"
    );
    Ok(())
}

/// MIGRATESLOTS to itself, to a replica, with overlapping ranges, for slots it does not own,
/// to an unknown node, and CANCELSLOTMIGRATIONS of an unknown job: clear errors, and neither
/// the slot map nor the job list changes.
fn bad_inputs_change_nothing(c: &Cluster) -> Result<()> {
    let src = c.slot_owner(0, 0)?;
    let other = c.slot_owner(0, 16383)?;
    let replica = c.replica_of(0, src)?;
    let (me, other_id, replica_id) = (c.myid(src)?, c.myid(other)?, c.myid(replica)?);
    let before: Vec<String> = c
        .cluster_nodes(src)?
        .iter()
        .map(|l| l.stable_view())
        .collect();
    let mig = |rest: &[&str]| {
        let mut a = vec!["CLUSTER", "MIGRATESLOTS"];
        a.extend_from_slice(rest);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (mig(&["SLOTSRANGE", "0", "10", "NODE", &me]), "myself"),
        (
            mig(&["SLOTSRANGE", "0", "10", "NODE", &replica_id]),
            "not a primary",
        ),
        (
            mig(&["SLOTSRANGE", "0", "10", "5", "20", "NODE", &other_id]),
            "specified multiple times",
        ),
        (
            mig(&["SLOTSRANGE", "16000", "16010", "NODE", &other_id]),
            "not the owner",
        ),
        (
            mig(&["SLOTSRANGE", "0", "10", "NODE", &"f".repeat(40)]),
            "don't know about node",
        ),
        (
            mig(&["SLOTSRANGE", "10", "0", "NODE", &other_id]),
            "greater than",
        ),
        (
            mig(&["SLOTSRANGE", "0", "16384", "NODE", &other_id]),
            "out of range",
        ),
        (mig(&["SLOTSRANGE", "0", "10"]), "wrong number of arguments"),
        (mig(&["SLOTSRANGE", "0", "10", "20"]), "syntax error"),
        (
            vec![
                "CLUSTER".into(),
                "CANCELSLOTMIGRATIONS".into(),
                "nosuchjob".into(),
            ],
            "No slot migration job named nosuchjob",
        ),
    ];
    for (args, want) in &cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(c, src, &refs, want)?;
    }
    let after: Vec<String> = c
        .cluster_nodes(src)?
        .iter()
        .map(|l| l.stable_view())
        .collect();
    ensure!(
        before == after,
        "the slot map changed after refused MIGRATESLOTS calls"
    );
    ensure!(
        c.slot_migrations(src)?.is_empty(),
        "a refused MIGRATESLOTS left a job"
    );
    ensure!(
        c.query(src, &["CLUSTER", "CANCELSLOTMIGRATIONS"])? == "0",
        "cancel all with no job"
    );
    Ok(())
}

#[test]
fn native_reshard_and_rebalance_under_writes() -> Result<()> {
    let mut c = seed_cluster(&[])?;
    bad_inputs_change_nothing(&c)?;
    let t = Instant::now();
    let loaded = c.load_keys(0, "seed", 200_000, 32)?;
    println!("migrate: loaded {} keys in {:?}", loaded.len(), t.elapsed());
    let (new, new_id) = c.add_primary(SETTLE)?;
    // The new primary gets a replica: imported slots must reach it too.
    c.add_replica_of(new, SETTLE)?;
    c.wait_state_ok(SETTLE)?;

    let w = AckWriter::start_cycling(&c, "hot", 4, 2000)?;
    let obs = RedirectObserver::start(&c, 0)?;
    w.wait_acked_after(t, 500, SETTLE, "writer warm-up", |_| true)?;
    let seed = format!("127.0.0.1:{}", c.node(0).port());
    let run = c.reshard_via(0, true, "all", &new_id, 1000)?;
    let summary = run
        .stdout
        .lines()
        .filter(|l| l.contains("Moved "))
        .collect::<Vec<_>>()
        .join("\n");
    println!(
        "migrate: rockslot-cli reshard took {:?}: {summary}",
        run.elapsed
    );
    let ranges = c.own_ranges(new)?;
    let owned: usize = ranges.iter().map(|(a, b)| (b - a + 1) as usize).sum();
    ensure!(
        owned == 1000 && ranges.len() == 3,
        "new node owns {ranges:?}"
    );

    let run = c
        .rockslot_cli_cluster(&["rebalance", &seed])?
        .ensure_success()?;
    println!("migrate: rockslot-cli rebalance took {:?}", run.elapsed);
    c.wait_converged(SETTLE)?;
    for m in c.masters(0)? {
        let n = c.myself(m)?.slot_count();
        ensure!(
            (4000..=4200).contains(&n),
            "after rebalance node {m} owns {n} slots"
        );
    }

    let report = w.stop(Duration::from_secs(30))?;
    let tally = obs.stop()?;
    println!(
        "migrate: writers: {} acknowledged, {} errors {:?}; direct writers: {} OK, {} MOVED, {} ASK, other {:?}",
        report.acked.len(), report.errors, report.error_samples, tally.ok, tally.moved, tally.ask, tally.other
    );
    ensure!(
        report.errors == 0,
        "writers saw errors: {:?}",
        report.error_samples
    );
    ensure!(
        tally.ask == 0 && tally.other.is_empty(),
        "direct writers saw {tally:?}"
    );
    ensure!(
        tally.moved > 0,
        "direct writers never saw a MOVED: {tally:?}"
    );

    c.one_owner_per_slot()?;
    let wrong = c.wrong_values(0, &loaded)?;
    ensure!(
        wrong.is_empty(),
        "{} loaded keys wrong, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let missing = report.lost(&c, 0)?;
    ensure!(
        missing.is_empty(),
        "{} acknowledged keys lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    for m in c.masters(0)? {
        let rep = c.replica_of(0, m)?;
        let (n, _) = c.wait_same_dbsize(m, rep, SETTLE)?;
        println!("migrate: primary node {m} and its replica node {rep} hold {n} keys");
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Victim {
    Source,
    Target,
}

/// SIGKILL one side while the snapshot streams (slowed with DEBUG SLOT-MIGRATION-DELAY), restart
/// it, and check: every slot has one owner, every loaded and acknowledged key is there, and no
/// key exists twice (the primaries' DBSIZEs add up to the distinct keys written). Then the
/// same migration runs to completion.
fn crash_mid_migration(victim: Victim) -> Result<()> {
    let mut c = Cluster::builder(3)
        .directive("appendfsync", "always")
        .start()?;
    c.create_and_wait(0)?;
    let loaded = c.load_keys(0, "crash", 100_000, 64)?;
    let src = c.slot_owner(0, 0)?;
    let dst = c.slot_owner(0, 16383)?;
    let dst_id = c.myid(dst)?;
    let w = AckWriter::start_cycling(&c, "hot", 2, 1000)?;
    w.wait_acked_after(
        Instant::now() - Duration::from_secs(60),
        200,
        SETTLE,
        "writer warm-up",
        |_| true,
    )?;
    c.query(src, &["DEBUG", "SLOT-MIGRATION-DELAY", "300"])?;
    c.query(
        src,
        &[
            "CLUSTER",
            "MIGRATESLOTS",
            "SLOTSRANGE",
            "0",
            "5460",
            "NODE",
            &dst_id,
        ],
    )?;
    crate::harness::try_wait_until_every(
        SETTLE,
        Duration::from_millis(20),
        "migration streaming",
        || {
            Ok(c.slot_migrations(src)?.iter().any(|j| {
                j.get("state").map(String::as_str) == Some("snapshot")
                    && j.get("keys")
                        .and_then(|k| k.parse::<u64>().ok())
                        .unwrap_or(0)
                        > 0
            }))
        },
    )?;
    let v = if victim == Victim::Source { src } else { dst };
    c.node_mut(v).kill9()?;
    println!("crash[{victim:?}]: SIGKILL node {v} while the snapshot streams");
    c.node_mut(v).restart()?;
    c.wait_healthy(SETTLE)?;
    // The job resolves: the source has no active export left and the target no import.
    crate::harness::try_wait_until_every(
        SETTLE,
        Duration::from_millis(100),
        "job resolved",
        || c.no_active_slot_jobs(),
    )?;
    let report = w.stop(Duration::from_secs(30))?;
    println!(
        "crash[{victim:?}]: writers {} acknowledged, {} errors",
        report.acked.len(),
        report.errors
    );

    c.one_owner_per_slot()?;
    ensure!(
        c.slot_owner(0, 0)? == src,
        "slot 0 changed owner although the migration failed"
    );
    let wrong = c.wrong_values(0, &loaded)?;
    ensure!(
        wrong.is_empty(),
        "{} loaded keys wrong, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let missing = report.lost(&c, 0)?;
    ensure!(
        missing.is_empty(),
        "{} acknowledged keys lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // Unacknowledged SETs may or may not have landed; each key at most once in the cluster.
    let distinct: BTreeSet<&str> = report.acked.iter().map(|a| a.key.as_str()).collect();
    let total: u64 = (0..3).map(|i| c.node(i).dbsize()).sum::<Result<u64>>()?;
    let max_hot = 2 * 1000;
    ensure!(
        total >= (loaded.len() + distinct.len()) as u64 && total <= (loaded.len() + max_hot) as u64,
        "cluster holds {total} keys; {} loaded + {} hot keys written (at most {max_hot})",
        loaded.len(),
        distinct.len()
    );

    // The interrupted move can be done now.
    c.query(src, &["DEBUG", "SLOT-MIGRATION-DELAY", "0"])?;
    c.query(
        src,
        &[
            "CLUSTER",
            "MIGRATESLOTS",
            "SLOTSRANGE",
            "0",
            "5460",
            "NODE",
            &dst_id,
        ],
    )
    .context("migrating again after the crash")?;
    crate::harness::try_wait_until_every(
        SETTLE,
        Duration::from_millis(50),
        "second migration",
        || Ok(c.slot_owner(0, 0)? == dst && c.slot_owner(0, 5460)? == dst),
    )?;
    c.one_owner_per_slot()?;
    let wrong = c.wrong_values(0, &loaded)?;
    ensure!(
        wrong.is_empty(),
        "{} loaded keys wrong after the second migration",
        wrong.len()
    );
    let total2: u64 = (0..3).map(|i| c.node(i).dbsize()).sum::<Result<u64>>()?;
    ensure!(
        total2 == total,
        "key count changed by the move: {total} -> {total2}"
    );
    ensure!(
        c.node(src).dbsize()? < c.node(dst).dbsize()?,
        "the source kept the moved keys"
    );
    Ok(())
}

#[test]
fn native_migration_source_crash_rolls_back() -> Result<()> {
    crash_mid_migration(Victim::Source)
}

#[test]
fn native_migration_target_crash_rolls_back() -> Result<()> {
    crash_mid_migration(Victim::Target)
}

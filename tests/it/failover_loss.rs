//! Loss accounting under load: writer threads on cluster clients record every acknowledged
//! SET (unique keys and values) while a primary is SIGKILLed and its replica takes over; then
//! every acknowledged key is read back from its current owner. The count of acknowledged but
//! missing keys is printed for the default (asynchronous) mode, where a small loss is allowed
//! as in Valkey, and must be 0 in the synchronous mode (`replica-ack-before-reply yes` on every
//! node), run more than once. Errors seen by the writers are unacknowledged writes and do not
//! count.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::failover::{seed_cluster, FAILOVER_MARGIN};
use crate::harness::{Ack, AckWriter};

const WRITERS: usize = 4;
const CONVERGE: Duration = Duration::from_secs(60);

struct LossRun {
    acked: usize,
    acked_to_victim_before_kill: usize,
    errors: u64,
    missing: Vec<Ack>,
}

/// `warm`: first write one key into every slot-range family (so no node creates a column family
/// during the measurement: the steady state). Cold: the writers start right after the cluster
/// is created, when each replica still creates its families as the first writes arrive.
fn kill_primary_under_load(sync: bool, warm: bool, run: &str) -> Result<LossRun> {
    let mode = match (sync, warm) {
        (true, true) => "sync",
        (true, false) => "sync-cold",
        (false, true) => "default",
        (false, false) => "default-cold",
    };
    let extra: &[(&str, &str)] = if sync {
        &[("replica-ack-before-reply", "yes")]
    } else {
        &[]
    };
    let mut c = seed_cluster(extra)?;
    let node_timeout = c.node_timeout();
    if warm {
        let t = c.touch_every_slot_range("warm:", 128, Duration::from_secs(60))?;
        println!("loss[{mode} {run}]: one key written to each of the 128 slot ranges, replicated, in {t:?}");
    }
    let victim = c.slot_owner(0, 0)?;
    let heir = c.replica_of(0, victim)?;
    let slots = c
        .cluster_nodes(0)?
        .into_iter()
        .find(|l| l.port == c.node(victim).port())
        .map(|l| l.ranges())
        .context("victim line")?;
    let in_victim = move |a: &Ack| slots.iter().any(|(x, y)| (*x..=*y).contains(&a.slot));

    let w = AckWriter::start(&c, &format!("loss-{mode}-{run}"), WRITERS)?;
    let t_start = Instant::now();
    w.wait_acked_after(
        t_start,
        2000,
        Duration::from_secs(60),
        "writer warm-up",
        |_| true,
    )?;
    // Kill while the victim's slots are being written right now.
    let t_hot = Instant::now();
    w.wait_acked_after(
        t_hot,
        20,
        Duration::from_secs(10),
        "fresh writes to the victim's slots",
        &in_victim,
    )?;
    // How far the heir is behind at the moment of the kill (bytes of replication stream).
    let r_off = c.node(heir).repl_field("slave_repl_offset");
    let p_off = c.node(victim).repl_field("master_repl_offset");
    c.node_mut(victim).kill9()?;
    let t_kill = Instant::now();
    let lag = match (
        p_off.as_deref().map(str::parse::<i64>),
        r_off.as_deref().map(str::parse::<i64>),
    ) {
        (Some(Ok(p)), Some(Ok(r))) => format!("{} bytes", p - r),
        _ => format!("unknown ({p_off:?} / {r_off:?})"),
    };
    println!(
        "loss[{mode} {run}]: SIGKILL node {victim}; its replica node {heir} was behind by {lag} just before"
    );
    let before_kill = w.acked_after(t_start - Duration::from_secs(1), |a| {
        a.at <= t_kill && in_victim(a)
    });

    let survivors = c.live_except(&[victim]);
    let took = c.wait_slot_served_by(
        0,
        heir,
        &survivors,
        node_timeout + FAILOVER_MARGIN + Duration::from_secs(20),
    )?;
    println!(
        "loss[{mode} {run}]: node {heir} serves the slots of SIGKILLed node {victim} after {} ms",
        took.as_millis()
    );
    if !sync {
        // Asynchronous mode: the new primary takes writes at once.
        w.wait_acked_after(
            t_kill + took,
            100,
            Duration::from_secs(30),
            "acknowledged writes to the failed-over slots",
            &in_victim,
        )?;
    }
    // The old primary comes back as a replica of the new one (in the synchronous mode the
    // new primary cannot acknowledge writes until it has a replica again).
    let t_back = Instant::now();
    c.node_mut(victim).restart()?;
    let following = c.wait_replicating(victim, heir, CONVERGE)?;
    let t_following = Instant::now();
    w.wait_acked_after(
        t_following,
        100,
        Duration::from_secs(30),
        "acknowledged writes to the failed-over slots with the old primary back",
        &in_victim,
    )?;
    let report = w.stop(Duration::from_secs(90))?;
    println!(
        "loss[{mode} {run}]: old primary replicates node {heir} {following:?} after its restart ({:?} after the kill)",
        t_back.duration_since(t_kill) + following
    );

    let missing = c.missing_acked(heir, &report.acked)?;
    // The rejoined old primary must hold exactly the new primary's data (its unreplicated
    // tail, if any, discarded).
    let (keys, conv) = c.wait_same_dbsize(heir, victim, CONVERGE)?;
    println!(
        "loss[{mode} {run}]: {} writes acknowledged in {:?} ({} to the victim's slots before the kill), {} errors {:?}",
        report.acked.len(),
        report.elapsed,
        before_kill,
        report.errors,
        report.error_samples
    );
    println!(
        "loss[{mode} {run}]: ACKNOWLEDGED BUT MISSING: {} (e.g. {:?}); old primary converged to DBSIZE {keys} {conv:?} after the check",
        missing.len(),
        missing.iter().take(5).map(|a| &a.key).collect::<Vec<_>>()
    );
    ensure!(
        before_kill > 0,
        "no write reached the victim before the kill"
    );
    c.wait_healthy(CONVERGE)?;
    Ok(LossRun {
        acked: report.acked.len(),
        acked_to_victim_before_kill: before_kill,
        errors: report.errors,
        missing,
    })
}

#[test]
fn loss_default_mode_is_counted() -> Result<()> {
    let r = kill_primary_under_load(false, true, "1")?;
    println!(
        "LOSS default mode: {} of {} acknowledged writes missing after SIGKILL + failover ({} acknowledged by the killed primary, {} writer errors)",
        r.missing.len(),
        r.acked,
        r.acked_to_victim_before_kill,
        r.errors
    );
    Ok(())
}

/// The same right after the cluster is created (replicas still creating their slot-range
/// families as the first writes arrive): printed, not asserted.
#[test]
fn loss_default_mode_cold_replicas_is_counted() -> Result<()> {
    let r = kill_primary_under_load(false, false, "1")?;
    println!(
        "LOSS default mode, cold replicas: {} of {} acknowledged writes missing after SIGKILL + failover ({} acknowledged by the killed primary, {} writer errors)",
        r.missing.len(),
        r.acked,
        r.acked_to_victim_before_kill,
        r.errors
    );
    Ok(())
}

fn sync_run(warm: bool, run: &str) -> Result<()> {
    let r = kill_primary_under_load(true, warm, run)?;
    println!(
        "LOSS synchronous mode (replica-ack-before-reply yes), run {run}: {} of {} acknowledged writes missing ({} acknowledged by the killed primary, {} writer errors)",
        r.missing.len(),
        r.acked,
        r.acked_to_victim_before_kill,
        r.errors
    );
    ensure!(
        r.missing.is_empty(),
        "synchronous mode lost {} acknowledged writes: {:?}",
        r.missing.len(),
        r.missing
            .iter()
            .take(10)
            .map(|a| &a.key)
            .collect::<Vec<_>>()
    );
    Ok(())
}

#[test]
fn loss_sync_mode_is_zero_run_1() -> Result<()> {
    sync_run(true, "1")
}

/// The second run starts cold (replicas creating their families during the load).
#[test]
fn loss_sync_mode_is_zero_run_2() -> Result<()> {
    sync_run(false, "2")
}

/// Synchronous mode with two replicas (issue 13, path 5). One replica falls behind (its bus and
/// stream cut), the other acknowledges every write alone, then the primary is SIGKILLed and the
/// lagging replica is the first to ask for votes (the other's election is held back 8 s).
/// Before the fix it won and every write since it fell behind was gone, though acknowledged;
/// now it waits for the sibling holding more, which takes over with every key.
#[test]
fn sync_mode_lagging_replica_never_wins() -> Result<()> {
    use crate::harness::{try_wait_until_every, Cluster};
    let mut c = Cluster::builder(3)
        .node_timeout_ms(2000)
        .directive("replica-ack-before-reply", "yes")
        .start()?;
    c.create_and_wait(0)?;
    let p = c.slot_owner(0, 0)?;
    let r1 = c.add_replica_of(p, CONVERGE)?;
    let r2 = c.add_replica_of(p, CONVERGE)?;
    c.wait_state_ok(CONVERGE)?;
    // Keys of p's slots only: the other primaries have no replica to acknowledge them.
    let load = |prefix: &str, n: usize| -> Result<Vec<(String, String)>> {
        let kvs: Vec<(String, String)> = c
            .keys_owned_by(p, p, prefix, n)?
            .into_iter()
            .map(|k| {
                let v = format!("{k}.value");
                (k, v)
            })
            .collect();
        let mut con = c.node(p).conn()?;
        let mut pipe = redis::pipe();
        for (k, v) in &kvs {
            pipe.cmd("SET").arg(k).arg(v).ignore();
        }
        pipe.query::<()>(&mut con)?;
        Ok(kvs)
    };
    let before = load("before:", 200)?;
    c.wait_same_slots(p, r2, (0, 16383), CONVERGE)?;
    c.isolate(r2)?;
    let acked = load("acked:", 2000)?;
    c.query(r1, &["DEBUG", "FAILOVER-DELAY", "8000"])?;
    c.node_mut(p).kill9()?;
    c.heal(r2)?;
    let other = c.live_except(&[p, r1, r2])[0];
    try_wait_until_every(
        CONVERGE,
        Duration::from_millis(100),
        "a replica took over slot 0",
        || Ok(matches!(c.slot_owner(other, 0), Ok(o) if o == r1 || o == r2)),
    )?;
    let winner = c.slot_owner(other, 0)?;
    ensure!(
        winner == r1,
        "the lagging replica (node {r2}) won the election over node {r1}; logs:\n{}",
        c.log_tails(20)
    );
    try_wait_until_every(
        CONVERGE,
        Duration::from_millis(100),
        "cluster_state:ok",
        || Ok(c.info_field(other, "cluster_state")? == "ok"),
    )?;
    let wrong = c.wrong_values(other, &[before, acked].concat())?;
    ensure!(
        wrong.is_empty(),
        "{} acknowledged keys lost, e.g. {:?}",
        wrong.len(),
        wrong.first()
    );
    c.wait_replicating(r2, r1, CONVERGE)?;
    c.wait_same_slots(r1, r2, (0, 16383), CONVERGE)?;
    Ok(())
}

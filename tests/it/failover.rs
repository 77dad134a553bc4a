//! Failover of the seed's 6-node cluster (3 primaries + 3 replicas) with real faults: SIGKILL of
//! a primary (the seed scenario, timed), a bus-level partition of a primary
//! (`DEBUG CLUSTER-ISOLATE`), a manual `CLUSTER FAILOVER` under write load, and bad
//! `CLUSTER REPLICATE`/`FAILOVER` input plus a replica with the wrong `masterauth`.
//! Loss accounting lives in `failover_loss`, the large full sync in `failover_fullsync`.

use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use redis::Commands;

use crate::harness::{
    describe_runs, hold_for, key_slot, raw_query, show, try_wait_until_every, wait_until,
    AckWriter, Cluster, ClusterBuilder, ReplyTrace, CLUSTER_PASSWORD,
};

/// `cluster-node-timeout` of these tests (ms).
pub const NODE_TIMEOUT_MS: u64 = 3000;
/// Allowed on top of the node timeout for a failover to complete. The target is about
/// a second; the assertion is generous (two busy cores, two clusters at once) and the exact
/// figure is printed.
pub const FAILOVER_MARGIN: Duration = Duration::from_secs(10);
const HEALTHY: Duration = Duration::from_secs(60);

/// The seed cluster: 6 nodes, `redis-cli --cluster create --cluster-replicas 1`, healthy, and
/// every replica's replication link up.
pub fn seed_cluster(extra: &[(&str, &str)]) -> Result<Cluster> {
    let mut b = Cluster::builder(6);
    for (k, v) in extra {
        b = b.directive(k, v);
    }
    form_seed_cluster(b)
}

/// [`seed_cluster`] from a builder with more settings (the node timeout is set here).
pub fn form_seed_cluster(b: ClusterBuilder) -> Result<Cluster> {
    let c = b.node_timeout_ms(NODE_TIMEOUT_MS).start()?;
    c.create_and_wait(1)?;
    let t = c.wait_all_replicating(0, HEALTHY)?;
    println!("cluster: every replica's link up {t:?} after healthy");
    Ok(c)
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Is `reply` (raw RESP) an error starting with one of `prefixes`?
fn is_error_with(reply: &[u8], prefixes: &[&str]) -> bool {
    prefixes
        .iter()
        .any(|p| reply.starts_with(format!("-{p}").as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// The seed scenario

#[test]
fn seed_sigkill_primary_replica_takes_over_and_old_primary_rejoins() -> Result<()> {
    let mut c = seed_cluster(&[])?;
    let node_timeout = c.node_timeout();

    // Writes through a cluster client (the `redis` crate's async cluster connection, kept
    // across the failover), to every shard.
    let mut con = c.failover_client()?;
    for i in 0..3000 {
        con.set(&format!("seed:{i}"), &format!("v{i}"))?;
    }
    let victim = c.slot_owner(0, 0)?;
    let heir = c.replica_of(0, victim)?;
    let victim_slots = c
        .cluster_nodes(0)?
        .into_iter()
        .find(|l| l.port == c.node(victim).port())
        .map(|l| l.ranges())
        .context("victim line")?;
    let in_victim_slots = |k: &str| {
        victim_slots
            .iter()
            .any(|(a, b)| (*a..=*b).contains(&key_slot(k.as_bytes())))
    };
    let (keys, t) = c.wait_same_dbsize(victim, heir, Duration::from_secs(30))?;
    println!("seed: node {victim} (primary of slot 0, {keys} keys) replicated to node {heir} {t:?} after the writes");
    let probe = c.key_owned_by(0, victim, "seed:probe:")?;
    let survivors = c.live_except(&[victim]);

    // What a client pinned to the replica sees for a write to one of the victim's slots.
    let trace = ReplyTrace::start(
        c.node(heir),
        &["SET", &format!("{{{probe}}}:trace"), "t"],
        Duration::from_millis(5),
    );
    c.node_mut(victim).kill9()?;
    let t0 = Instant::now();
    let slot = key_slot(probe.as_bytes());
    let (mut promoted, mut agreed, mut writable) = (None, None, None);
    let mut last = String::new();
    let mut last_refusal = String::new();
    try_wait_until_every(
        node_timeout + FAILOVER_MARGIN + Duration::from_secs(20),
        Duration::from_millis(25),
        "the replica to take over",
        || {
            if promoted.is_none() && c.slot_not_served_by(heir, slot, heir).is_none() {
                promoted = Some(t0.elapsed());
            }
            if agreed.is_none() {
                match survivors
                    .iter()
                    .find_map(|&v| c.slot_not_served_by(v, slot, heir))
                {
                    None => agreed = Some(t0.elapsed()),
                    Some(why) => last = why,
                }
            }
            if writable.is_none() {
                match raw_query(c.node(heir), &["SET", &probe, "after-failover"]) {
                    Ok(r) if r == b"+OK\r\n" => writable = Some(t0.elapsed()),
                    Ok(r) => last_refusal = show(&r),
                    Err(e) => last_refusal = format!("{e:#}"),
                }
            }
            Ok(promoted.is_some() && agreed.is_some() && writable.is_some())
        },
    )
    .map_err(|e| anyhow!("{e:#}; last: {last}"))?;
    let (promoted, agreed, writable) = (
        promoted.expect("set"),
        agreed.expect("set"),
        writable.expect("set"),
    );

    println!(
        "seed FAILOVER TIME: SIGKILL of node {victim} -> node {heir} claims its slots {} ms, all 5 survivors agree {} ms, first direct write OK {} ms (last refusal before: {last_refusal}) (cluster-node-timeout {} ms; agreement = node-timeout + {} ms)",
        ms(promoted),
        ms(agreed),
        ms(writable),
        ms(node_timeout),
        agreed.as_millis() as i128 - node_timeout.as_millis() as i128
    );
    ensure!(
        agreed <= node_timeout + FAILOVER_MARGIN,
        "failover took {agreed:?} > node-timeout {node_timeout:?} + {FAILOVER_MARGIN:?}"
    );
    ensure!(
        writable <= node_timeout + FAILOVER_MARGIN,
        "the new primary took {writable:?} to accept a write"
    );

    // Writes to the victim's slots succeed again through the same cluster client (which had a
    // connection to the dead node and must follow the new slot map).
    let t1 = Instant::now();
    let mut in_slots = 0;
    for i in 0..600 {
        let k = format!("seed:after:{i}");
        con.set(&k, &format!("a{i}"))
            .with_context(|| format!("SET {k} after the failover"))?;
        in_slots += usize::from(in_victim_slots(&k));
    }
    println!(
        "seed: 600 SETs through the cluster client after the failover ({in_slots} to the failed-over slots) in {:?}",
        t1.elapsed()
    );
    ensure!(in_slots > 0);
    println!(
        "seed: a client writing to the replica saw (from just before the SIGKILL):\n{}",
        describe_runs(&trace.stop())
    );

    // The old primary comes back as a replica of the new primary and converges.
    let t2 = Instant::now();
    let up = c.node_mut(victim).restart()?;
    let following = c.wait_replicating(victim, heir, HEALTHY)?;
    let (keys, conv) = c.wait_same_dbsize(heir, victim, HEALTHY)?;
    println!(
        "seed: old primary restarted (PING after {up:?}), role:slave of node {heir} {following:?} later, DBSIZE converged at {keys} {conv:?} after that ({:?} in all)",
        t2.elapsed()
    );
    let info = c.node(victim).info_replication()?;
    println!(
        "seed: old primary's INFO replication: role:{} master_host:{} master_port:{} master_link_status:{} slave_repl_offset:{}",
        info["role"],
        info["master_host"],
        info["master_port"],
        info["master_link_status"],
        info.get("slave_repl_offset").map(String::as_str).unwrap_or("?")
    );
    ensure!(info["role"] == "slave");
    ensure!(info["master_host"] == "127.0.0.1");
    ensure!(info["master_port"] == c.node(heir).port().to_string());

    // Its data is the new primary's: READONLY reads on it see the writes made after the
    // failover; without READONLY it redirects.
    let mut r = c.node(victim).conn()?;
    let _: () = redis::cmd("READONLY").query(&mut r)?;
    let v: Option<String> = r.get(&probe)?;
    ensure!(
        v.as_deref() == Some("after-failover"),
        "{probe} on the old primary: {v:?}"
    );
    for i in (0..600).filter(|i| in_victim_slots(&format!("seed:after:{i}"))) {
        let v: Option<String> = r.get(format!("seed:after:{i}"))?;
        ensure!(
            v == Some(format!("a{i}")),
            "seed:after:{i} on the old primary: {v:?}"
        );
    }
    let moved = raw_query(c.node(victim), &["GET", &probe])?;
    ensure!(
        moved.starts_with(format!("-MOVED {slot} 127.0.0.1:{}", c.node(heir).port()).as_bytes()),
        "GET on the old primary without READONLY: {}",
        show(&moved)
    );
    let healthy = c.wait_healthy(HEALTHY)?;
    println!("seed: all 6 nodes converged with cluster_state:ok {healthy:?} later");

    // Nothing written before the kill is gone.
    let mut con = c.conn()?;
    for i in 0..3000 {
        let v: Option<String> = con.get(format!("seed:{i}"))?;
        ensure!(
            v == Some(format!("v{i}")),
            "seed:{i} = {v:?} after the failover"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Partition

#[test]
fn isolated_primary_refuses_writes_majority_fails_over_heal_rejoins_as_replica() -> Result<()> {
    let c = seed_cluster(&[])?;
    let node_timeout = c.node_timeout();
    let p = c.slot_owner(0, 16383)?;
    let r = c.replica_of(0, p)?;
    let majority = c.live_except(&[p]);
    let keys = c.keys_owned_by(0, p, "part:", 200)?;
    {
        let mut con = c.conn()?;
        for k in &keys {
            let _: () = con.set(k, "before")?;
        }
    }
    c.wait_same_dbsize(p, r, Duration::from_secs(30))?;
    let probe = &keys[0];
    let slot = key_slot(probe.as_bytes());
    // The replica takes over the replication stream late (issue 13, path 3): writes reaching
    // it first must still start its new history, or the healed old primary, which wrote under
    // the same replication id, would continue from an offset both histories share (before the
    // fix it kept its minority writes and missed the majority's first ones).
    c.query(r, &["DEBUG", "REPL-PROMOTE-DELAY", "4000"])?;

    c.isolate(p)?;
    let t0 = Instant::now();
    let (mut refused, mut failed_over) = (None, None);
    let mut accepted: Vec<String> = Vec::new();
    let mut n = 0u64;
    let mut last = String::new();
    try_wait_until_every(
        node_timeout * 2 + FAILOVER_MARGIN + Duration::from_secs(20),
        Duration::from_millis(25),
        "the minority primary to refuse writes and the majority to fail it over",
        || {
            if refused.is_none() {
                // Same slot as the probe (hashtag), so it is one of p's slots.
                let k = format!("{{{probe}}}:m:{n:06}");
                n += 1;
                let reply = raw_query(c.node(p), &["SET", &k, "minority"])?;
                if reply == b"+OK\r\n" {
                    accepted.push(k);
                } else if is_error_with(&reply, &["CLUSTERDOWN", "MOVED"]) {
                    refused = Some((t0.elapsed(), show(&reply)));
                } else {
                    anyhow::bail!("SET on the isolated primary: unexpected {}", show(&reply));
                }
            }
            if failed_over.is_none() {
                match majority
                    .iter()
                    .find_map(|&v| c.slot_not_served_by(v, slot, r))
                {
                    None => failed_over = Some(t0.elapsed()),
                    Some(why) => last = why,
                }
            }
            Ok(refused.is_some() && failed_over.is_some())
        },
    )
    .map_err(|e| anyhow!("{e:#}; last: {last}"))?;
    let (refused_after, refusal) = refused.expect("set");
    let failed_over = failed_over.expect("set");
    println!(
        "partition: node {p} isolated; it refuses writes after {} ms ({refusal}), having accepted {} writes before; the majority made node {r} primary of its slots after {} ms (cluster-node-timeout {} ms)",
        ms(refused_after),
        accepted.len(),
        ms(failed_over),
        ms(node_timeout)
    );
    ensure!(
        refused_after <= node_timeout + FAILOVER_MARGIN,
        "the isolated primary kept accepting writes for {refused_after:?}"
    );
    ensure!(
        failed_over <= node_timeout + FAILOVER_MARGIN,
        "the majority took {failed_over:?} to fail over"
    );
    // It keeps refusing while cut off (and never answers OK again).
    hold_for(
        Duration::from_secs(2),
        Duration::from_millis(100),
        "the isolated primary refusing writes",
        || {
            let reply = raw_query(c.node(p), &["SET", probe, "minority-late"])?;
            Ok(is_error_with(&reply, &["CLUSTERDOWN", "MOVED"]))
        },
    )?;
    let state = c.info_field(p, "cluster_state")?;
    println!("partition: isolated node's cluster_state: {state}");
    ensure!(state == "fail", "isolated node's cluster_state is {state}");

    // The majority side takes writes on the new primary: first as many as the minority took
    // and more, of the same size (the same replication frames), so the old primary's offset
    // is a frame boundary of the new primary's history too.
    let mut rc = c.node(r).conn()?;
    for n in 0..accepted.len() + 100 {
        let _: () = rc.set(format!("{{{probe}}}:r:{n:06}"), "majority")?;
    }
    for k in keys.iter().skip(1) {
        let _: () = rc.set(k, "majority")?;
    }

    // Heal: the old primary learns the newer configuration and follows the new primary.
    c.heal(p)?;
    let t1 = Instant::now();
    let following = c.wait_replicating(p, r, HEALTHY)?;
    let (dbsize, conv) = c.wait_same_dbsize(r, p, HEALTHY)?;
    let healthy = c.wait_healthy(HEALTHY)?;
    println!(
        "partition: healed; node {p} is a replica of node {r} with its link up after {following:?}, DBSIZE converged at {dbsize} {conv:?} later, cluster ok {healthy:?} after that ({:?} in all)",
        t1.elapsed()
    );
    let digest = c.wait_same_slots(r, p, (0, 16383), HEALTHY)?;
    println!("partition: the healed node holds exactly the new primary's data ({digest})");
    let mut pc = c.node(p).conn()?;
    let _: () = redis::cmd("READONLY").query(&mut pc)?;
    for k in keys.iter().skip(1) {
        let v: Option<String> = pc.get(k)?;
        ensure!(
            v.as_deref() == Some("majority"),
            "{k} on the healed node: {v:?}"
        );
    }
    // Writes the minority accepted before node-timeout are lost by design (as in Valkey).
    let vals = c.fetch_values(r, &accepted)?;
    let survived = vals.iter().filter(|v| v.is_some()).count();
    println!(
        "partition: {} writes accepted by the minority primary before it stopped; {survived} of them exist after the heal",
        accepted.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Manual failover under load

#[test]
fn manual_cluster_failover_under_load_loses_no_acknowledged_write() -> Result<()> {
    let c = seed_cluster(&[])?;
    let p = c.slot_owner(0, 0)?;
    let r = c.replica_of(0, p)?;
    let p_slots = c
        .cluster_nodes(0)?
        .into_iter()
        .find(|l| l.port == c.node(p).port())
        .map(|l| l.ranges())
        .context("primary line")?;
    let in_p_slots = move |s: u16| p_slots.iter().any(|(a, b)| (*a..=*b).contains(&s));
    let probe = c.key_owned_by(0, p, "mf:probe:")?;

    let w = AckWriter::start(&c, "mf", 3)?;
    let started = Instant::now();
    w.wait_acked_after(
        started,
        1500,
        Duration::from_secs(60),
        "writer warm-up",
        |_| true,
    )?;

    // What a client pinned to the old primary sees for a write to one of its slots.
    let trace_key = format!("{{{probe}}}:trace");
    let trace = ReplyTrace::start(
        c.node(p),
        &["SET", &trace_key, "t"],
        Duration::from_millis(5),
    );
    let reply = raw_query(c.node(r), &["CLUSTER", "FAILOVER"])?;
    ensure!(reply == b"+OK\r\n", "CLUSTER FAILOVER: {}", show(&reply));
    let t0 = Instant::now();
    let all: Vec<usize> = (0..c.len()).collect();
    let slot = key_slot(probe.as_bytes());
    let swapped = c.wait_slot_served_by(slot, r, &all, Duration::from_secs(30))?;
    let following = c.wait_replicating(p, r, Duration::from_secs(30))?;
    let t_swap = Instant::now();
    println!(
        "manual failover: node {r} serves the slots of node {p} in every view {} ms after CLUSTER FAILOVER; node {p} replicates it {} ms after that",
        ms(swapped),
        ms(following)
    );

    // A client that still talks to the old primary gets MOVED to the new one, and the write
    // succeeds there; the cluster clients keep acknowledging writes to those slots.
    let runs = trace.stop();
    println!(
        "manual failover: a client writing to the old primary saw (from just before CLUSTER FAILOVER):\n{}",
        describe_runs(&runs)
    );
    let want_moved = format!(
        "-MOVED {} 127.0.0.1:{}",
        key_slot(trace_key.as_bytes()),
        c.node(r).port()
    );
    ensure!(
        runs.last().map(|r| r.reply.as_str()) == Some(want_moved.as_str()),
        "the old primary's last reply is not {want_moved}"
    );
    ensure!(
        runs.iter().all(|r| r.reply == "+OK"
            || r.reply.starts_with("-TRYAGAIN")
            || r.reply.starts_with("-MOVED")),
        "the old primary answered something other than OK / TRYAGAIN / MOVED during the failover"
    );
    let moved = raw_query(c.node(p), &["SET", &probe, "x"])?;
    let want = format!("-MOVED {slot} 127.0.0.1:{}\r\n", c.node(r).port());
    ensure!(
        moved == want.as_bytes(),
        "SET on the old primary: {} (want {})",
        show(&moved),
        show(want.as_bytes())
    );
    let ok = raw_query(c.node(r), &["SET", &probe, "x"])?;
    ensure!(ok == b"+OK\r\n", "SET on the new primary: {}", show(&ok));
    w.wait_acked_after(
        t_swap,
        200,
        Duration::from_secs(30),
        "acknowledged writes to the failed-over slots after the swap",
        |a| in_p_slots(a.slot),
    )?;
    let during = w.acked_after(t0, |a| in_p_slots(a.slot));

    let report = w.stop(Duration::from_secs(60))?;
    let missing = c.missing_acked(r, &report.acked)?;
    println!(
        "manual failover: {} writes acknowledged ({} to the moved slots since CLUSTER FAILOVER), {} errors {:?}; acknowledged but missing: {}",
        report.acked.len(),
        during,
        report.errors,
        report.error_samples,
        missing.len()
    );
    ensure!(
        missing.is_empty(),
        "{} acknowledged writes lost by a manual failover, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    c.wait_healthy(HEALTHY)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn bad_replicate_and_failover_input_is_refused_wrong_masterauth_gets_nothing() -> Result<()> {
    let mut c = seed_cluster(&[])?;
    {
        let mut con = c.conn()?;
        for i in 0..300 {
            let _: () = con.set(format!("bad:{i}"), format!("v{i}"))?;
        }
    }
    let m = c.slot_owner(0, 0)?;
    let r = c.replica_of(0, m)?;
    let m2 = c
        .masters(0)?
        .into_iter()
        .find(|&x| x != m)
        .context("another master")?;
    let (id_m, id_r, id_m2) = (c.myid(m)?, c.myid(r)?, c.myid(m2)?);
    let before = c.views()?;
    let unknown = "0123456789abcdef0123456789abcdef01234567";

    let cases: Vec<(usize, Vec<&str>, String)> = vec![
        (
            m,
            vec!["CLUSTER", "REPLICATE", &id_m],
            "-ERR Can't replicate myself\r\n".into(),
        ),
        (
            r,
            vec!["CLUSTER", "REPLICATE", &id_r],
            "-ERR Can't replicate myself\r\n".into(),
        ),
        (
            m,
            vec!["CLUSTER", "REPLICATE", &id_r],
            "-ERR I can only replicate a master, not a replica.\r\n".into(),
        ),
        (
            m,
            vec!["CLUSTER", "REPLICATE", unknown],
            format!("-ERR Unknown node {unknown}\r\n"),
        ),
        (
            m,
            vec!["CLUSTER", "REPLICATE", "nonsense"],
            "-ERR Unknown node nonsense\r\n".into(),
        ),
        (
            m,
            vec!["CLUSTER", "REPLICATE", &id_m2],
            "-ERR To set a master the node must be empty and without assigned slots.\r\n".into(),
        ),
        (
            m,
            vec!["CLUSTER", "FAILOVER"],
            "-ERR You should send CLUSTER FAILOVER to a replica\r\n".into(),
        ),
        (
            m,
            vec!["CLUSTER", "FAILOVER", "FORCE"],
            "-ERR You should send CLUSTER FAILOVER to a replica\r\n".into(),
        ),
        (
            m,
            vec!["CLUSTER", "FAILOVER", "TAKEOVER"],
            "-ERR You should send CLUSTER FAILOVER to a replica\r\n".into(),
        ),
        (
            r,
            vec!["CLUSTER", "FAILOVER", "SOON"],
            "-ERR syntax error\r\n".into(),
        ),
    ];
    for (node, args, want) in &cases {
        let got = raw_query(c.node(*node), args)?;
        println!("bad input: node {node} {args:?} -> {}", show(&got));
        ensure!(
            got == want.as_bytes(),
            "{args:?} on node {node}: {} (want {})",
            show(&got),
            show(want.as_bytes())
        );
    }
    // Nothing changed: same roles, masters and slots everywhere, same data.
    hold_for(
        c.node_timeout(),
        Duration::from_millis(250),
        "the cluster to stay as it was",
        || Ok(c.views()? == before),
    )?;
    ensure!(c.info_field(m, "cluster_state")? == "ok");

    // A node that joins the cluster (right bus secret) as a replica of `m` but carries the
    // wrong masterauth: the primary refuses its replication stream, it gets no data, the
    // primary's data is untouched.
    let m_keys = c.node(m).dbsize()?;
    let bad = c.start_outsider(|b| {
        b.directive("masterauth", "wrong")
            .directive("cluster-bus-secret", CLUSTER_PASSWORD)
    })?;
    c.nodes.push(bad);
    let b = c.len() - 1;
    let run = c
        .redis_cli_cluster(&[
            "add-node",
            &c.node(b).host_port(),
            &c.node(m).host_port(),
            "--cluster-slave",
            "--cluster-master-id",
            &id_m,
        ])?
        .ensure_success()?;
    ensure!(
        run.stdout.contains("[OK] New node added correctly."),
        "{}",
        run.describe()
    );
    c.wait_converged(HEALTHY)?;
    ensure!(
        c.replicas_of(0, m)?.contains(&b),
        "the new node is not listed as a replica of node {m}"
    );
    wait_until(
        Duration::from_secs(20),
        "both sides to log the refusal",
        || {
            c.node(m).log().contains("refused replication")
                && c.node(b).log().contains("wrong or missing masterauth")
        },
    )
    .with_context(|| format!("{}\n{}", c.node(m).log_tail(20), c.node(b).log_tail(20)))?;
    println!(
        "bad masterauth: primary logged: {}",
        c.node(m)
            .log_line("refused replication")
            .unwrap_or_default()
    );
    println!(
        "bad masterauth: replica logged: {}",
        c.node(b)
            .log_line("wrong or missing masterauth")
            .unwrap_or_default()
    );
    hold_for(
        c.node_timeout(),
        Duration::from_millis(250),
        "the wrong-password replica to stay empty and down",
        || {
            let info = c.node(b).info_replication()?;
            Ok(c.node(b).dbsize()? == 0
                && info.get("role").map(String::as_str) == Some("slave")
                && info.get("master_link_status").map(String::as_str) == Some("down"))
        },
    )?;
    ensure!(
        c.node(m)
            .info_replication()?
            .get("connected_slaves")
            .map(String::as_str)
            == Some("1"),
        "the primary's connected_slaves is not 1 (its healthy replica only): {:?}",
        c.node(m).info_replication()?.get("connected_slaves")
    );
    ensure!(
        c.node(m).dbsize()? == m_keys,
        "the primary's DBSIZE changed"
    );
    let mut con = c.conn()?;
    for i in 0..300 {
        let v: Option<String> = con.get(format!("bad:{i}"))?;
        ensure!(v == Some(format!("v{i}")), "bad:{i} = {v:?}");
    }
    Ok(())
}

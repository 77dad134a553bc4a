//! Forming clusters with the real tools, as a user does: the seed's workflow with Debian's
//! unmodified redis-cli 7.0.15 (`--cluster create`, `-c` redirects, `--cluster add-node`,
//! `--cluster check`) and the same with `rockslot-cli`. Expected outputs are redis-cli's and
//! valkey-cli's (client-surface §3.1, §3.7, §4).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::harness::{key_slot, Cluster, NodeLine, ToolRun, CLI_BIN, CLUSTER_PASSWORD};

const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);
const OK_AGREE: &str = "[OK] All nodes agree about slots configuration.";
const OK_COVERED: &str = "[OK] All 16384 slots covered.";
/// The three ranges `--cluster create` assigns to three masters.
const SEED_RANGES: [&str; 3] = ["0-5460", "5461-10922", "10923-16383"];

/// What every user of the seed's 6-node cluster relies on, checked on every node's view:
/// the same 6 node ids, 3 masters owning exactly the three seed ranges, 3 replicas each
/// replicating a different master, cluster_state:ok.
pub fn assert_seed_layout(c: &Cluster) -> Result<()> {
    ensure!(c.len() == 6, "seed layout needs 6 nodes");
    let mut ids_per_node = Vec::new();
    for i in 0..c.len() {
        let lines = c.cluster_nodes(i)?;
        let ids: BTreeSet<String> = lines.iter().map(|l| l.id.clone()).collect();
        ensure!(
            lines.len() == 6 && ids.len() == 6,
            "node {i} shows {} lines / {} ids:\n{}",
            lines.len(),
            ids.len(),
            c.cluster_nodes_text(i)?
        );
        let mine: Vec<&NodeLine> = lines.iter().filter(|l| l.is_myself()).collect();
        ensure!(mine.len() == 1, "node {i}: {} myself lines", mine.len());
        ensure!(
            mine[0].port == c.node(i).port() && mine[0].ip == "127.0.0.1",
            "node {i}'s myself line has address {}",
            mine[0].addr
        );
        ensure!(
            mine[0].id == c.myid(i)?,
            "node {i}: CLUSTER MYID differs from its myself line"
        );
        let masters: Vec<&NodeLine> = lines.iter().filter(|l| l.is_master()).collect();
        let replicas: Vec<&NodeLine> = lines.iter().filter(|l| l.is_replica()).collect();
        ensure!(
            masters.len() == 3 && replicas.len() == 3,
            "node {i}: {} masters, {} replicas:\n{}",
            masters.len(),
            replicas.len(),
            c.cluster_nodes_text(i)?
        );
        let mut ranges: Vec<String> = masters.iter().map(|m| m.slots.join(" ")).collect();
        ranges.sort();
        let mut want: Vec<String> = SEED_RANGES.iter().map(|s| s.to_string()).collect();
        want.sort();
        ensure!(
            ranges == want,
            "node {i}: master slots {ranges:?}, want {want:?}"
        );
        let master_ids: BTreeSet<&str> = masters.iter().map(|m| m.id.as_str()).collect();
        let replicated: BTreeSet<&str> = replicas
            .iter()
            .filter_map(|r| r.master.as_deref())
            .collect();
        ensure!(
            replicated == master_ids,
            "node {i}: replicas replicate {replicated:?}, masters are {master_ids:?}"
        );
        for r in &replicas {
            ensure!(
                r.slots.is_empty(),
                "node {i}: replica {} owns slots",
                r.addr
            );
        }
        for l in &lines {
            ensure!(
                l.link == "connected",
                "node {i} shows {} as {}",
                l.addr,
                l.link
            );
        }
        ids_per_node.push(ids);
    }
    for (i, ids) in ids_per_node.iter().enumerate() {
        ensure!(
            *ids == ids_per_node[0],
            "node {i} knows other ids than node 0"
        );
    }
    for i in 0..c.len() {
        let info = c.cluster_info(i)?;
        for (k, v) in [
            ("cluster_state", "ok"),
            ("cluster_slots_assigned", "16384"),
            ("cluster_slots_ok", "16384"),
            ("cluster_known_nodes", "6"),
            ("cluster_size", "3"),
        ] {
            ensure!(
                info.get(k).map(String::as_str) == Some(v),
                "node {i}: CLUSTER INFO {k} = {:?}, want {v}",
                info.get(k)
            );
        }
    }
    Ok(())
}

fn assert_create_output(run: &ToolRun) -> Result<()> {
    for needle in [OK_AGREE, OK_COVERED] {
        ensure!(
            run.stdout.contains(needle),
            "no {needle:?} in\n{}",
            run.describe()
        );
    }
    // The M:/S: listing: 3 masters with their slot ranges, 3 replicas.
    let m = run.stdout.lines().filter(|l| l.starts_with("M: ")).count();
    let s = run.stdout.lines().filter(|l| l.starts_with("S: ")).count();
    ensure!(
        m >= 3 && s >= 3,
        "expected M:/S: lines for 3+3 nodes:\n{}",
        run.stdout
    );
    for r in SEED_RANGES {
        ensure!(
            run.stdout.contains(&format!("slots:[{r}]")),
            "no slots:[{r}] in\n{}",
            run.stdout
        );
    }
    Ok(())
}

/// `-c` in an interactive session (a pseudo-terminal): SET key1 on the owner of key2's slot
/// is redirected to slot 9189, SET key2 back to slot 4998, exactly as the seed's README shows.
fn assert_interactive_redirects(c: &Cluster, program: &str) -> Result<()> {
    assert_eq!(key_slot(b"key1"), 9189);
    assert_eq!(key_slot(b"key2"), 4998);
    let start = c.slot_owner(0, 4998)?;
    let other = c.slot_owner(0, 9189)?;
    ensure!(start != other, "key1 and key2 on the same node?");
    let mut cli = c.interactive_cli(program, start, &["-c"])?;
    let t = Duration::from_secs(20);
    let moved1 = format!(
        "-> Redirected to slot [9189] located at 127.0.0.1:{}",
        c.node(other).port()
    );
    let moved2 = format!(
        "-> Redirected to slot [4998] located at 127.0.0.1:{}",
        c.node(start).port()
    );
    cli.send_line("SET key1 val1")?;
    cli.wait_output(&moved1, 1, t)?;
    cli.wait_output("OK", 1, t)?;
    cli.send_line("SET key2 val2")?;
    cli.wait_output(&moved2, 1, t)?;
    cli.wait_output("OK", 2, t)?;
    cli.send_line("GET key1")?;
    cli.wait_output(&moved1, 2, t)?;
    cli.wait_output("\"val1\"", 1, t)?;
    let out = cli.quit(Duration::from_secs(10))?;
    println!("{program} -c (interactive) session:\n{out}");
    Ok(())
}

/// Non-interactive `-c` GETs from every node (replicas redirect too) return the values.
fn assert_gets_everywhere(c: &Cluster, program: &str) -> Result<()> {
    for i in 0..c.len() {
        for (k, v) in [("key1", "val1"), ("key2", "val2")] {
            let mut cmd = Command::new(program);
            cmd.args(["-h", "127.0.0.1", "-p", &c.node(i).port().to_string()])
                .args(["-a", CLUSTER_PASSWORD, "--no-auth-warning", "-c", "GET", k]);
            let run = ToolRun::run(&mut cmd, Duration::from_secs(30))?.ensure_success()?;
            ensure!(
                run.stdout.trim_end() == v,
                "{program} -c GET {k} via node {i}: {:?}",
                run.stdout
            );
        }
    }
    Ok(())
}

#[test]
fn redis_cli_create_seed_workflow() -> Result<()> {
    let c = Cluster::start(6)?;
    let run = c.create_with_redis_cli(1)?;
    assert_create_output(&run)?;
    let converge = c.wait_healthy(CONVERGE_TIMEOUT)?;
    println!("redis-cli create: {:?} for the tool, then {converge:?} until every node agreed with cluster_state:ok", run.elapsed);
    assert_seed_layout(&c)?;
    assert_interactive_redirects(&c, "redis-cli")?;
    assert_gets_everywhere(&c, "redis-cli")?;
    Ok(())
}

#[test]
fn redis_cli_add_node_master_and_replicas() -> Result<()> {
    let mut c = Cluster::start(6)?;
    c.create_and_wait(1)?;
    let existing = c.node(0).host_port();
    let id0 = c.myid(0)?;

    // 7th: an empty master.
    let m = c.add_empty_node()?;
    let run = c
        .redis_cli_cluster(&["add-node", &c.node(m).host_port(), &existing])?
        .ensure_success()?;
    ensure!(
        run.stdout.contains("[OK] New node added correctly."),
        "{}",
        run.describe()
    );
    let t = c.wait_converged(CONVERGE_TIMEOUT)?;
    println!(
        "add-node master: tool {:?}, converged {t:?} later",
        run.elapsed
    );
    let idm = c.myid(m)?;

    // 8th: --cluster-slave without a master id: redis-cli picks the master with the fewest
    // replicas, i.e. the new empty master.
    let r1 = c.add_empty_node()?;
    let run = c
        .redis_cli_cluster(&[
            "add-node",
            &c.node(r1).host_port(),
            &existing,
            "--cluster-slave",
        ])?
        .ensure_success()?;
    ensure!(
        run.stdout.contains("[OK] New node added correctly."),
        "{}",
        run.describe()
    );
    let t = c.wait_converged(CONVERGE_TIMEOUT)?;
    println!(
        "add-node --cluster-slave: tool {:?}, converged {t:?} later",
        run.elapsed
    );

    // 9th: --cluster-slave --cluster-master-id <node 0>.
    let r2 = c.add_empty_node()?;
    let run = c
        .redis_cli_cluster(&[
            "add-node",
            &c.node(r2).host_port(),
            &existing,
            "--cluster-slave",
            "--cluster-master-id",
            &id0,
        ])?
        .ensure_success()?;
    ensure!(
        run.stdout.contains("[OK] New node added correctly."),
        "{}",
        run.describe()
    );
    let t = c.wait_healthy(CONVERGE_TIMEOUT)?;
    println!(
        "add-node --cluster-slave --cluster-master-id: tool {:?}, healthy {t:?} later",
        run.elapsed
    );

    // Every node knows all 9, with the new roles.
    for i in 0..c.len() {
        ensure!(
            c.known_nodes(i)? == 9,
            "node {i} knows {} nodes",
            c.known_nodes(i)?
        );
        let lines = c.cluster_nodes(i)?;
        let by_port = |p: u16| lines.iter().find(|l| l.port == p).cloned();
        let lm = by_port(c.node(m).port()).context("7th node missing")?;
        ensure!(
            lm.is_master() && lm.slots.is_empty(),
            "node {i} shows the 7th as {lm:?}"
        );
        let l1 = by_port(c.node(r1).port()).context("8th node missing")?;
        ensure!(
            l1.is_replica() && l1.master.as_deref() == Some(idm.as_str()),
            "node {i} shows the 8th as {l1:?} (expected a replica of the empty master {idm})"
        );
        let l2 = by_port(c.node(r2).port()).context("9th node missing")?;
        ensure!(
            l2.is_replica() && l2.master.as_deref() == Some(id0.as_str()),
            "node {i} shows the 9th as {l2:?} (expected a replica of {id0})"
        );
    }

    let check = c
        .redis_cli_cluster(&["check", &existing])?
        .ensure_success()?;
    for needle in [OK_AGREE, OK_COVERED] {
        ensure!(
            check.stdout.contains(needle),
            "no {needle:?} in\n{}",
            check.describe()
        );
    }
    ensure!(
        check.stdout.contains("0 slots | 1 slaves."),
        "check should list the empty master with one replica:\n{}",
        check.stdout
    );
    Ok(())
}

/// `rockslot-cli --cluster create` forms the same cluster; redis-cli and rockslot-cli
/// `--cluster check` agree; `rockslot-cli -c` redirects like valkey-cli.
#[test]
fn rockslot_cli_create_and_check() -> Result<()> {
    let mut c = Cluster::start(6)?;
    let run = c.create_with_rockslot_cli(1)?;
    assert_create_output(&run)?;
    let converge = c.wait_healthy(CONVERGE_TIMEOUT)?;
    println!(
        "rockslot-cli create: {:?} for the tool, then {converge:?} until healthy",
        run.elapsed
    );
    assert_seed_layout(&c)?;

    let seed = c.node(3).host_port();
    let check = c.redis_cli_cluster(&["check", &seed])?.ensure_success()?;
    for needle in [OK_AGREE, OK_COVERED] {
        ensure!(
            check.stdout.contains(needle),
            "redis-cli check: no {needle:?} in\n{}",
            check.describe()
        );
    }
    let check = c
        .rockslot_cli_cluster(&["check", &seed])?
        .ensure_success()?;
    for needle in [OK_AGREE, OK_COVERED] {
        ensure!(
            check.stdout.contains(needle),
            "rockslot-cli check: no {needle:?} in\n{}",
            check.describe()
        );
    }
    ensure!(
        check
            .stdout
            .lines()
            .filter(|l| l.starts_with("M: "))
            .count()
            == 3
            && check
                .stdout
                .lines()
                .filter(|l| l.starts_with("S: "))
                .count()
                == 3,
        "rockslot-cli check should list 3 M: and 3 S: lines:\n{}",
        check.stdout
    );
    assert_interactive_redirects(&c, CLI_BIN)?;
    assert_gets_everywhere(&c, CLI_BIN)?;
    assert_gets_everywhere(&c, "redis-cli")?;

    // add-node with rockslot-cli: an empty master, then a replica of it using valkey-cli's
    // option names (--cluster-replica, --cluster-primary-id).
    let m = c.add_empty_node()?;
    let run = c
        .rockslot_cli_cluster(&["add-node", &c.node(m).host_port(), &seed])?
        .ensure_success()?;
    ensure!(
        run.stdout.contains("[OK] New node added correctly."),
        "{}",
        run.describe()
    );
    c.wait_converged(CONVERGE_TIMEOUT)?;
    let idm = c.myid(m)?;
    let r = c.add_empty_node()?;
    let run = c
        .rockslot_cli_cluster(&[
            "add-node",
            &c.node(r).host_port(),
            &seed,
            "--cluster-replica",
            "--cluster-primary-id",
            &idm,
        ])?
        .ensure_success()?;
    ensure!(
        run.stdout.contains("[OK] New node added correctly."),
        "{}",
        run.describe()
    );
    let t = c.wait_healthy(CONVERGE_TIMEOUT)?;
    println!("rockslot-cli add-node master + replica: healthy {t:?} after the second");
    for i in 0..c.len() {
        let lr = c
            .cluster_nodes(i)?
            .into_iter()
            .find(|l| l.port == c.node(r).port())
            .context("8th node missing")?;
        ensure!(
            lr.is_replica() && lr.master.as_deref() == Some(idm.as_str()),
            "node {i} shows the 8th as {lr:?}, expected a replica of {idm}"
        );
    }
    for run in [
        c.redis_cli_cluster(&["check", &seed])?,
        c.rockslot_cli_cluster(&["check", &seed])?,
    ] {
        let run = run.ensure_success()?;
        for needle in [OK_AGREE, OK_COVERED] {
            ensure!(
                run.stdout.contains(needle),
                "no {needle:?} in\n{}",
                run.describe()
            );
        }
    }
    Ok(())
}

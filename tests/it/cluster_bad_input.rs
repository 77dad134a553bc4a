//! Bad input to a running cluster gives Valkey's error or a clear log line, and the cluster
//! stays `ok` and consistent afterwards: CLUSTER subcommands with invalid slots and unknown
//! node ids (error bytes from client-surface §6.6/§13), MEET to a closed port, a garbage
//! nodes.conf, bus peers with the wrong secret.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::harness::{
    free_port, hold_for, node_query, parse_cluster_nodes, parse_info, raw_query, show, wait_until,
    Cluster, Node,
};

const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);

fn seed_cluster() -> Result<Cluster> {
    let c = Cluster::start(6)?;
    c.create_and_wait(1)?;
    Ok(c)
}

/// The cluster is healthy and every node's view is what it was before.
fn assert_unchanged(
    c: &Cluster,
    before: &std::collections::BTreeMap<u16, Vec<String>>,
    after: &str,
) -> Result<()> {
    c.wait_healthy(HEALTHY_TIMEOUT)
        .with_context(|| format!("cluster not healthy after {after}"))?;
    let now = c.views()?;
    ensure!(
        now == *before,
        "after {after}: views changed\nbefore {before:#?}\nnow {now:#?}"
    );
    Ok(())
}

#[test]
fn cluster_commands_reject_bad_arguments() -> Result<()> {
    let c = seed_cluster()?;
    let before = c.views()?;
    let m = c.slot_owner(0, 1)?;
    let r = *c.replicas(0)?.first().context("a replica")?;
    let my_id = c.myid(m)?;
    let r_id = c.myid(r)?;
    let r_master = c.myself(r)?.master.context("replica's master")?;
    let zero = "0".repeat(40);
    let unknown = "f".repeat(40);

    let cases: Vec<(usize, Vec<&str>, String)> = vec![
        (
            m,
            vec!["CLUSTER", "ADDSLOTS", "16384"],
            "-ERR Invalid or out of range slot".into(),
        ),
        (
            m,
            vec!["CLUSTER", "ADDSLOTS", "abc"],
            "-ERR Invalid or out of range slot".into(),
        ),
        (
            m,
            vec!["CLUSTER", "DELSLOTS", "-1"],
            "-ERR Invalid or out of range slot".into(),
        ),
        (
            m,
            vec!["CLUSTER", "ADDSLOTS", "0"],
            "-ERR Slot 0 is already busy".into(),
        ),
        (
            m,
            vec!["CLUSTER", "SETSLOT", "1", "NODE", &zero],
            format!("-ERR Unknown node {zero}"),
        ),
        (
            m,
            vec!["CLUSTER", "SETSLOT", "16384", "NODE", &my_id],
            "-ERR Invalid or out of range slot".into(),
        ),
        (
            r,
            vec!["CLUSTER", "SETSLOT", "1", "NODE", &my_id],
            "-ERR Please use SETSLOT only with masters.".into(),
        ),
        (
            m,
            vec!["CLUSTER", "REPLICATE", &unknown],
            format!("-ERR Unknown node {unknown}"),
        ),
        (
            r,
            vec!["CLUSTER", "REPLICATE", &r_id],
            "-ERR Can't replicate myself".into(),
        ),
        (
            m,
            vec!["CLUSTER", "FORGET", &my_id],
            "-ERR I tried hard but I can't forget myself...".into(),
        ),
        (
            m,
            vec!["CLUSTER", "FORGET", &unknown],
            format!("-ERR Unknown node {unknown}"),
        ),
        (
            r,
            vec!["CLUSTER", "FORGET", &r_master],
            "-ERR Can't forget my master!".into(),
        ),
        (
            m,
            vec!["CLUSTER", "COUNTKEYSINSLOT", "16384"],
            "-ERR Invalid slot".into(),
        ),
        (
            m,
            vec!["CLUSTER", "GETKEYSINSLOT", "16384", "10"],
            "-ERR Invalid slot or number of keys".into(),
        ),
    ];
    let mut failures = Vec::new();
    for (i, args, want) in &cases {
        let got = raw_query(c.node(*i), args)?;
        let want = format!("{want}\r\n");
        if got != want.as_bytes() {
            failures.push(format!(
                "{args:?} on node {i}: got {} want {}",
                show(&got),
                show(want.as_bytes())
            ));
        }
    }
    ensure!(
        failures.is_empty(),
        "wrong replies:\n{}",
        failures.join("\n")
    );
    assert_unchanged(&c, &before, "the bad CLUSTER commands")?;

    // MEET to a port where nobody listens: +OK (the handshake is asynchronous), a handshake
    // entry shows up, and it is dropped again after the handshake timeout.
    let known = c.known_nodes(0)?;
    let closed = free_port();
    let r = raw_query(
        c.node(0),
        &["CLUSTER", "MEET", "127.0.0.1", &closed.to_string()],
    )?;
    ensure!(r == b"+OK\r\n", "MEET to a closed port: {}", show(&r));
    let t0 = Instant::now();
    wait_until(
        Duration::from_secs(5),
        "a handshake entry for the closed port",
        || {
            c.cluster_nodes(0)
                .map(|ls| {
                    ls.iter()
                        .any(|l| l.port == closed && l.has_flag("handshake"))
                })
                .unwrap_or(false)
        },
    )?;
    wait_until(
        c.node_timeout() * 3 + Duration::from_secs(5),
        "the handshake entry to be dropped",
        || {
            c.known_nodes(0).map(|n| n == known).unwrap_or(false)
                && c.cluster_nodes(0)
                    .map(|ls| ls.iter().all(|l| l.port != closed))
                    .unwrap_or(false)
        },
    )?;
    println!(
        "MEET to a closed port: handshake entry gone after {:?} (node timeout {:?})",
        t0.elapsed(),
        c.node_timeout()
    );
    assert_unchanged(&c, &before, "MEET to a closed port")?;
    Ok(())
}

#[test]
fn garbage_nodes_conf_stops_startup() -> Result<()> {
    let mut c = seed_cluster()?;
    let before = c.views()?;
    let r = *c.replicas(0)?.first().context("a replica")?;
    let id = c.myid(r)?;
    c.node_mut(r).stop()?;
    let original = c.corrupt_nodes_conf(r, 2, "this is not a nodes.conf line")?;
    let path = c.nodes_conf_path(r);
    let (status, log) = c
        .node_mut(r)
        .start_expecting_exit(Duration::from_secs(30))?;
    println!(
        "garbage nodes.conf: exit {status}; log:\n{}",
        log.trim_end()
    );
    ensure!(
        !status.success(),
        "rockslot-server started with a garbage nodes.conf ({status})"
    );
    let file = path.to_string_lossy();
    ensure!(
        log.contains(&format!("{file}:2")) || (log.contains(&*file) && log.contains("line 2")),
        "the log should name {file} and line 2:\n{log}"
    );
    // The file was not replaced by a fresh one (no silent reset).
    let now = std::fs::read_to_string(&path)?;
    ensure!(
        now.contains("this is not a nodes.conf line"),
        "nodes.conf was rewritten:\n{now}"
    );
    // The rest of the cluster keeps serving.
    for i in (0..c.len()).filter(|&i| i != r) {
        ensure!(
            c.info_field(i, "cluster_state")? == "ok",
            "node {i} not ok while a replica is down"
        );
    }

    // The good file back: the node rejoins with its old id.
    c.restore_nodes_conf(r, &original)?;
    c.node_mut(r).restart()?;
    ensure!(c.myid(r)? == id, "node {r} got a new id");
    assert_unchanged(&c, &before, "restoring nodes.conf")?;
    Ok(())
}

/// Nodes whose bus secret differs (an explicit `cluster-bus-secret`, or another
/// requirepass/masterauth from which the secret defaults) are refused in both directions.
#[test]
fn wrong_bus_secret_never_joins() -> Result<()> {
    let c = seed_cluster()?;
    let before = c.views()?;
    let wrong_secret = c.start_outsider(|b| b.directive("cluster-bus-secret", "wrong"))?;
    let other_pass = c.start_outsider(|b| b.password("other").directive("masterauth", "other"))?;
    let outsiders: [(&str, &Node); 2] = [
        ("cluster-bus-secret wrong", &wrong_secret),
        ("requirepass/masterauth other", &other_pass),
    ];
    let mut ids = Vec::new();
    for (what, o) in outsiders {
        ids.push(node_query(o, &["CLUSTER", "MYID"])?);
        // The cluster meets the outsider, and the outsider meets the cluster.
        let r = raw_query(
            c.node(0),
            &["CLUSTER", "MEET", "127.0.0.1", &o.port().to_string()],
        )?;
        ensure!(r == b"+OK\r\n", "MEET {what} from node 0: {}", show(&r));
        let r = raw_query(
            o,
            &[
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                &c.node(1).port().to_string(),
            ],
        )?;
        ensure!(r == b"+OK\r\n", "MEET node 1 from {what}: {}", show(&r));
    }

    // For two node timeouts: an outsider knows nobody but itself (a pending `handshake` entry
    // for its own MEET is all it may show), and no cluster node ever learns an outsider's id.
    let period = c.node_timeout() * 2;
    hold_for(
        period,
        Duration::from_millis(250),
        "the outsiders staying out",
        || {
            for (what, o) in outsiders {
                let lines = parse_cluster_nodes(&node_query(o, &["CLUSTER", "NODES"])?)?;
                if lines
                    .iter()
                    .any(|l| !l.is_myself() && !l.has_flag("handshake"))
                {
                    println!("{what} learned a peer:\n{lines:#?}");
                    return Ok(false);
                }
            }
            for i in 0..c.len() {
                let text = c.cluster_nodes_text(i)?;
                if ids.iter().any(|id| text.contains(id.as_str())) {
                    println!("node {i} learned an outsider's id:\n{text}");
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )?;

    // Both sides logged the refusal.
    let refused = "refused cluster bus message";
    for (what, o) in outsiders {
        wait_until(
            Duration::from_secs(10),
            &format!("{what} to log a refusal"),
            || o.log().contains(refused),
        )
        .with_context(|| o.log_tail(20))?;
        let line = o
            .log()
            .lines()
            .find(|l| l.contains(refused))
            .unwrap_or_default()
            .to_string();
        println!("{what}: {line}");
    }
    // Node 1 was met by the outsiders: it refused them.
    wait_until(Duration::from_secs(10), "node 1 to log a refusal", || {
        c.node(1).log().contains(refused)
    })
    .with_context(|| c.node(1).log_tail(20))?;
    let line = c
        .node(1)
        .log()
        .lines()
        .find(|l| l.contains(refused))
        .unwrap_or_default()
        .to_string();
    println!("node 1: {line}");

    // Handshake entries expire: cluster_known_nodes returns to 6 on the cluster and to 1 on
    // the outsiders; the cluster is as before.
    let outsider_known = |o: &Node| -> Option<String> {
        let info = parse_info(&node_query(o, &["CLUSTER", "INFO"]).ok()?).ok()?;
        info.get("cluster_known_nodes").cloned()
    };
    wait_until(
        c.node_timeout() * 3 + Duration::from_secs(5),
        "known nodes back to 6 / 1",
        || {
            (0..c.len()).all(|i| c.known_nodes(i).map(|n| n == 6).unwrap_or(false))
                && outsiders
                    .iter()
                    .all(|(_, o)| outsider_known(o).as_deref() == Some("1"))
        },
    )?;
    assert_unchanged(&c, &before, "MEETs with a wrong bus secret")?;
    Ok(())
}

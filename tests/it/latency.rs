//! LATENCY against valkey-server 8.1.8: HELP, the errors and the empty replies byte for byte;
//! with `latency-monitor-threshold` set, a slow command (DEBUG SLEEP) is a `command` sample
//! in LATEST and HISTORY on both servers and RESET forgets it; LATENCY HISTOGRAM counts every
//! call at Valkey's bucket labels.

use anyhow::{ensure, Result};
use redis::Value;

use crate::harness::{assert_same_reply, Node, RawConn, RedisServer};

const CASES: &[&[&str]] = &[
    &["LATENCY", "HELP"],
    &["LATENCY", "LATEST"],
    &["LATENCY", "HISTORY", "command"],
    &["LATENCY", "RESET"],
    &["LATENCY", "RESET", "a", "b"],
    &["LATENCY", "FOO"],
    &["LATENCY", "HISTORY"],
    &["LATENCY", "LATEST", "x"],
    &["LATENCY", "HISTOGRAM", "nosuch"],
    &["CONFIG", "SET", "latency-monitor-threshold", "-1"],
    &["CONFIG", "GET", "latency-monitor-threshold"],
];

fn ints(v: &Value) -> Vec<i64> {
    match v {
        Value::Array(a) => a.iter().flat_map(ints).collect(),
        Value::Int(n) => vec![*n],
        _ => Vec::new(),
    }
}

#[test]
fn latency_matches_valkey() -> Result<()> {
    let node = Node::start()?;
    let valkey = RedisServer::start_valkey_with(&["--enable-debug-command", "yes"])?;
    let mut ours = node.raw()?;
    let mut theirs = RawConn::connect(valkey.addr())?;
    for (i, cmd) in CASES.iter().enumerate() {
        assert_same_reply(&mut ours, &mut theirs, cmd, &format!("case {i}"))?;
    }
    let mut seen = Vec::new();
    for mut c in [node.conn()?, valkey.conn()?] {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("latency-monitor-threshold")
            .arg(5)
            .exec(&mut c)?;
        redis::cmd("DEBUG").arg("SLEEP").arg("0.03").exec(&mut c)?;
        let latest: Value = redis::cmd("LATENCY").arg("LATEST").query(&mut c)?;
        let history: Value = redis::cmd("LATENCY")
            .arg("HISTORY")
            .arg("command")
            .query(&mut c)?;
        let reset: i64 = redis::cmd("LATENCY").arg("RESET").query(&mut c)?;
        let after: Value = redis::cmd("LATENCY").arg("LATEST").query(&mut c)?;
        for i in 0..25 {
            redis::cmd("SET").arg(format!("h{i}")).arg(i).exec(&mut c)?;
        }
        let hist: Value = redis::cmd("LATENCY")
            .arg("HISTOGRAM")
            .arg("set")
            .query(&mut c)?;
        seen.push((latest, history, reset, after, hist));
    }
    for (who, (latest, history, reset, after, hist)) in ["rockslot", "valkey"].iter().zip(&seen) {
        let text = format!("{latest:?}");
        ensure!(text.contains("command"), "{who} LATEST: {text}");
        let n = ints(latest);
        // [time, latest, max, sum, count] after the event name.
        ensure!(
            n.len() == 5 && n[1] >= 30 && n[2] >= n[1] && n[3] == n[1] && n[4] == 1,
            "{who} LATEST: {n:?}"
        );
        let h = ints(history);
        ensure!(
            h.len() == 2 && h[0] == n[0] && h[1] == n[1],
            "{who} HISTORY {h:?}"
        );
        ensure!(*reset == 1, "{who} RESET {reset}");
        ensure!(ints(after).is_empty(), "{who} after RESET: {after:?}");
        // set → {calls: 25, histogram_usec: {label: cumulative, ...}}
        let Value::Array(top) = hist else {
            anyhow::bail!("{who} HISTOGRAM: {hist:?}")
        };
        let Some(Value::Array(body)) = top.get(1) else {
            anyhow::bail!("{who}: {hist:?}")
        };
        ensure!(
            matches!(body.get(1), Some(Value::Int(25))),
            "{who} calls: {body:?}"
        );
        let Some(Value::Array(cdf)) = body.get(3) else {
            anyhow::bail!("{who}: {body:?}")
        };
        let cdf = ints(&Value::Array(cdf.clone()));
        let labels = [
            1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113, 4227, 8454, 16908,
        ];
        let mut last = 0;
        for pair in cdf.chunks(2) {
            ensure!(
                labels.contains(&pair[0]),
                "{who}: label {} not Valkey's",
                pair[0]
            );
            ensure!(pair[1] > last, "{who}: {cdf:?} not increasing");
            last = pair[1];
        }
        ensure!(last == 25, "{who}: the distribution ends at {last}, not 25");
    }
    Ok(())
}

/// `s` with every digit as `#`: spike sizes and ages differ by a millisecond or a second
/// between two servers running the same sleep.
fn undigit(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| if c.is_ascii_digit() { b'#' } else { c })
        .collect()
}

/// LATENCY DOCTOR and GRAPH: Valkey's texts when monitoring is off, when nothing happened,
/// and after a DEBUG SLEEP spike (report, advice and graph identical but for the measured
/// digits), in RESP2 and RESP3.
#[test]
fn latency_doctor_and_graph_match_valkey() -> Result<()> {
    for resp3 in [false, true] {
        let node = Node::start()?;
        let valkey = RedisServer::start_valkey_with(&["--enable-debug-command", "yes"])?;
        let (mut ours, mut theirs) = (node.raw()?, RawConn::connect(valkey.addr())?);
        if resp3 {
            ours.cmd(&["HELLO", "3"])?;
            theirs.cmd(&["HELLO", "3"])?;
        }
        let at = |s: &str| format!("{s} resp3={resp3}");
        for cmd in [
            &["LATENCY", "DOCTOR"][..],
            &["LATENCY", "DOCTOR", "extra"],
            &["LATENCY", "GRAPH"],
            &["LATENCY", "GRAPH", "command"],
            &["CONFIG", "SET", "latency-monitor-threshold", "20"],
            &["LATENCY", "DOCTOR"],
            &["LATENCY", "GRAPH", "command"],
        ] {
            assert_same_reply(&mut ours, &mut theirs, cmd, &at("before"))?;
        }
        for c in [&mut ours, &mut theirs] {
            ensure!(c.cmd(&["DEBUG", "SLEEP", "0.06"])? == b"+OK\r\n");
        }
        for cmd in [
            &["LATENCY", "DOCTOR"][..],
            &["LATENCY", "GRAPH", "command"],
            &["LATENCY", "GRAPH", "fast-command"],
        ] {
            let (a, b) = (ours.cmd(cmd)?, theirs.cmd(cmd)?);
            ensure!(
                undigit(&a) == undigit(&b),
                "{cmd:?} {}:\n ours:   {}\n theirs: {}",
                at("after a spike"),
                crate::harness::show(&a),
                crate::harness::show(&b)
            );
        }
        let doctor = String::from_utf8_lossy(&ours.cmd(&["LATENCY", "DOCTOR"])?).into_owned();
        ensure!(
            doctor.contains("1. command: 1 latency spikes (average 6"),
            "the 60 ms sleep is the spike: {doctor}"
        );
    }
    Ok(())
}

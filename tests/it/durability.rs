//! Acknowledged writes survive crashes and restarts: `appendfsync always` + SIGKILL mid-stream
//! loses nothing acknowledged; a graceful SIGTERM loses nothing even with `appendfsync no`;
//! expiry times survive restarts; restart time of a loaded node is reported.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::harness::{wait_until, Node, NodeBuilder};

fn value_for(thread: usize, n: u64) -> String {
    // Distinct per key, varying length (1..=64 bytes of padding).
    format!("v{thread}:{n}:{}", "x".repeat((n % 64) as usize + 1))
}

/// Runs `writers` threads, each with its own connection, writing `t{i}:{n}` for n = 0, 1, …
/// until the server goes away; `fault` is called (with the node) once at least `min_acks`
/// writes were acknowledged and `min_time` passed. Returns, per writer, how many writes were
/// acknowledged (writes 0..acked all got +OK; the first failure stops the writer).
fn write_until_fault(
    node: &mut Node,
    writers: usize,
    min_acks: u64,
    min_time: Duration,
    fault: impl FnOnce(&mut Node) -> Result<()>,
) -> Result<Vec<u64>> {
    let conns = (0..writers)
        .map(|_| node.conn())
        .collect::<Result<Vec<_>>>()?;
    let acked_total = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    thread::scope(|s| -> Result<Vec<u64>> {
        let handles: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(i, mut con)| {
                let acked_total = &acked_total;
                let stop = &stop;
                s.spawn(move || -> u64 {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let r = redis::cmd("SET")
                            .arg(format!("t{i}:{n}"))
                            .arg(value_for(i, n))
                            .query::<redis::Value>(&mut con);
                        match r {
                            Ok(redis::Value::Okay) => {
                                n += 1;
                                acked_total.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(other) => panic!("SET t{i}:{n} replied {other:?}"),
                            Err(_) => break,
                        }
                    }
                    n
                })
            })
            .collect();
        let t0 = Instant::now();
        let waited = wait_until(
            Duration::from_secs(120),
            "enough acknowledged writes",
            || acked_total.load(Ordering::Relaxed) >= min_acks && t0.elapsed() >= min_time,
        );
        let still_running = handles.iter().filter(|h| !h.is_finished()).count();
        // The fault happens while the writers are still writing.
        let fault_result = fault(node);
        // Writers end on the first error after the fault; the flag is a safety net.
        stop.store(true, Ordering::Relaxed);
        let acked: Vec<u64> = handles
            .into_iter()
            .map(|h| h.join().expect("writer panicked"))
            .collect();
        waited?;
        fault_result?;
        ensure!(
            still_running == writers,
            "only {still_running} of {writers} writers were still running at the fault"
        );
        Ok(acked)
    })
}

/// Checks that every acknowledged key `t{i}:{n}` (n < acked[i]) has its exact value.
fn verify_acked(node: &Node, acked: &[u64]) -> Result<u64> {
    let mut con = node.conn()?;
    let mut checked = 0u64;
    for (i, &count) in acked.iter().enumerate() {
        let mut n = 0u64;
        while n < count {
            let end = (n + 1000).min(count);
            let keys: Vec<String> = (n..end).map(|k| format!("t{i}:{k}")).collect();
            let vals: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(&mut con)?;
            ensure!(
                vals.len() == keys.len(),
                "MGET returned {} values for {} keys",
                vals.len(),
                keys.len()
            );
            for (k, v) in (n..end).zip(vals) {
                let want = value_for(i, k);
                ensure!(
                    v.as_deref() == Some(want.as_str()),
                    "acknowledged write t{i}:{k} lost or wrong after restart: got {v:?}, want {want:?}"
                );
                checked += 1;
            }
            n = end;
        }
    }
    Ok(checked)
}

#[test]
fn sigkill_loses_no_acknowledged_write_with_appendfsync_always() -> Result<()> {
    let mut node = NodeBuilder::new().appendfsync("always").start()?;
    let acked = write_until_fault(&mut node, 8, 500, Duration::from_millis(1500), |n| {
        n.kill9()
    })?;
    let total: u64 = acked.iter().sum();
    let restart = node.restart()?;
    let checked = verify_acked(&node, &acked)?;
    println!("acknowledged writes checked: {checked} (per writer {acked:?})");
    println!(
        "restart after SIGKILL ready in {:.2}s",
        restart.as_secs_f64()
    );
    assert_eq!(checked, total);
    assert!(total >= 500, "too few writes to mean anything: {total}");
    Ok(())
}

#[test]
fn sigterm_loses_nothing_with_appendfsync_no() -> Result<()> {
    let mut node = NodeBuilder::new().appendfsync("no").start()?;
    // Keys with a TTL, written before the stream: one long, one that expires while down.
    let mut con = node.conn()?;
    redis::cmd("SET")
        .arg("ttl:long")
        .arg("1")
        .arg("EX")
        .arg(1000)
        .query::<()>(&mut con)?;
    redis::cmd("SET")
        .arg("ttl:short")
        .arg("1")
        .arg("PX")
        .arg(300)
        .query::<()>(&mut con)?;
    redis::cmd("SET")
        .arg("persist")
        .arg("1")
        .query::<()>(&mut con)?;
    drop(con);

    let mut status = None;
    let acked = write_until_fault(&mut node, 4, 2000, Duration::from_millis(1000), |n| {
        status = Some(n.stop()?);
        Ok(())
    })?;
    let status = status.expect("fault ran");
    assert!(
        status.success(),
        "SIGTERM must exit 0, got {status}\n{}",
        node.log_tail(30)
    );
    let down = Instant::now();

    node.restart()?;
    let checked = verify_acked(&node, &acked)?;
    println!("acknowledged writes checked after SIGTERM (appendfsync no): {checked}");
    assert_eq!(checked, acked.iter().sum::<u64>());

    let mut con = node.conn()?;
    let ttl: i64 = redis::cmd("TTL").arg("ttl:long").query(&mut con)?;
    assert!(
        (900..=1000).contains(&ttl),
        "TTL of ttl:long after restart: {ttl}"
    );
    assert_eq!(redis::cmd("TTL").arg("persist").query::<i64>(&mut con)?, -1);
    // ttl:short expired (300 ms) — by now, or at the latest 1 s after we went down.
    wait_until(Duration::from_secs(5), "ttl:short to be gone", || {
        down.elapsed() > Duration::from_millis(300)
            && matches!(
                redis::cmd("EXISTS").arg("ttl:short").query::<i64>(&mut con),
                Ok(0)
            )
    })?;
    assert_eq!(
        redis::cmd("GET")
            .arg("ttl:short")
            .query::<Option<String>>(&mut con)?,
        None
    );
    Ok(())
}

#[test]
fn restart_time_with_200k_keys() -> Result<()> {
    const KEYS: u64 = 200_000;
    let mut node = NodeBuilder::new().appendfsync("everysec").start()?;
    let t0 = Instant::now();
    thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..4u64)
            .map(|w| {
                let mut con = node.conn()?;
                Ok(s.spawn(move || -> Result<()> {
                    let mut i = w * KEYS / 4;
                    let end = (w + 1) * KEYS / 4;
                    while i < end {
                        let mut p = redis::pipe();
                        for k in i..(i + 1000).min(end) {
                            p.cmd("SET")
                                .arg(format!("rk:{k}"))
                                .arg(format!("{k:0>100}"))
                                .ignore();
                        }
                        p.query::<()>(&mut con)
                            .with_context(|| format!("pipeline at {i}"))?;
                        i = (i + 1000).min(end);
                    }
                    Ok(())
                }))
            })
            .collect::<Result<_>>()?;
        for h in handles {
            h.join().expect("loader panicked")?;
        }
        Ok(())
    })?;
    let load = t0.elapsed();
    println!(
        "loaded {KEYS} keys (100-byte values) in {:.2}s ({:.0} keys/s, 4 connections, pipeline 1000)",
        load.as_secs_f64(),
        KEYS as f64 / load.as_secs_f64()
    );

    let check = |node: &Node| -> Result<()> {
        let mut con = node.conn()?;
        assert_eq!(redis::cmd("DBSIZE").query::<u64>(&mut con)?, KEYS);
        for k in (0..KEYS).step_by(997) {
            let v: Option<String> = redis::cmd("GET").arg(format!("rk:{k}")).query(&mut con)?;
            assert_eq!(v, Some(format!("{k:0>100}")), "rk:{k}");
        }
        Ok(())
    };

    let st = node.stop()?;
    assert!(st.success(), "SIGTERM exit status {st}");
    let graceful = node.restart()?;
    check(&node)?;
    println!(
        "restart with {KEYS} keys after SIGTERM: ready in {:.2}s",
        graceful.as_secs_f64()
    );

    node.kill9()?;
    let crash = node.restart()?;
    check(&node)?;
    println!(
        "restart with {KEYS} keys after SIGKILL: ready in {:.2}s",
        crash.as_secs_f64()
    );
    assert!(graceful < Duration::from_secs(60) && crash < Duration::from_secs(60));
    Ok(())
}

//! A hash and a sorted set of `ROCKSLOT_BIG_MEMBERS` (default 5 million) members each: member
//! access (HGET, HEXISTS, ZSCORE, ZRANK, ZRANGEBYSCORE with LIMIT, ZRANGE by index) reads only
//! what it returns, RSS stays bounded while they load, and DEL of either key does not stall
//! other clients. Latencies and RSS are printed; only correctness and the RSS bound are
//! asserted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::harness::{rss_kb_of, NodeBuilder};

/// Generous: members live on disk, so RSS is the block cache and memtables, not the data.
const RSS_LIMIT_KB: u64 = 1536 * 1024;
const PER_COMMAND: usize = 1000;
const PER_PIPELINE: usize = 20;

fn members() -> Result<u64> {
    match std::env::var("ROCKSLOT_BIG_MEMBERS") {
        Ok(s) => s
            .parse()
            .with_context(|| format!("ROCKSLOT_BIG_MEMBERS={s:?}")),
        Err(_) => Ok(5_000_000),
    }
}

/// Latency summary of `n` runs of `op`: (p50, p99, max) in microseconds.
fn timed(n: usize, mut op: impl FnMut(usize) -> Result<()>) -> Result<(u128, u128, u128)> {
    let mut t = Vec::with_capacity(n);
    for i in 0..n {
        let s = Instant::now();
        op(i)?;
        t.push(s.elapsed().as_micros());
    }
    t.sort_unstable();
    Ok((t[n / 2], t[n * 99 / 100], t[n - 1]))
}

/// A spread-out member index for sample `i` of `n` members (deterministic).
fn sample(i: usize, n: u64) -> u64 {
    (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % n
}

#[test]
fn five_million_member_hash_and_sorted_set() -> Result<()> {
    let n = members()?;
    let node = NodeBuilder::new()
        .directive("storage-block-cache-size", "256mb")
        .directive("appendfsync", "everysec")
        .start()?;
    let pid = node.pid().expect("running");
    let peak = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let mut con = node.conn()?;

    let t0 = Instant::now();
    thread::scope(|s| -> Result<()> {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if let Some(kb) = rss_kb_of(pid) {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        let r = (|| -> Result<()> {
            let mut i = 0u64;
            while i < n {
                let mut p = redis::pipe();
                for _ in 0..PER_PIPELINE {
                    if i >= n {
                        break;
                    }
                    let end = (i + PER_COMMAND as u64).min(n);
                    let (mut h, mut z) = (redis::cmd("HSET"), redis::cmd("ZADD"));
                    h.arg("bighash");
                    z.arg("bigzset");
                    for j in i..end {
                        h.arg(format!("f{j}")).arg(format!("v{j}"));
                        z.arg(j * 2).arg(format!("m{j}"));
                    }
                    p.add_command(h).ignore().add_command(z).ignore();
                    i = end;
                }
                p.query::<()>(&mut con)?;
            }
            Ok(())
        })();
        done.store(true, Ordering::Relaxed);
        r
    })?;
    let load = t0.elapsed();
    let peak_kb = peak.load(Ordering::Relaxed);
    println!(
        "loaded {n} hash fields and {n} sorted-set members in {load:.1?}; peak RSS {} MiB",
        peak_kb / 1024
    );
    ensure!(
        peak_kb < RSS_LIMIT_KB,
        "peak RSS {} MiB over {} MiB",
        peak_kb / 1024,
        RSS_LIMIT_KB / 1024
    );
    let hlen: u64 = redis::cmd("HLEN").arg("bighash").query(&mut con)?;
    let zcard: u64 = redis::cmd("ZCARD").arg("bigzset").query(&mut con)?;
    ensure!(hlen == n && zcard == n, "HLEN {hlen} ZCARD {zcard}");

    let report = |what: &str, (p50, p99, max): (u128, u128, u128)| {
        println!("{what:<34} p50 {p50:>7} us  p99 {p99:>7} us  max {max:>7} us");
    };
    report(
        "HGET",
        timed(1000, |i| {
            let j = sample(i, n);
            let v: String = redis::cmd("HGET")
                .arg("bighash")
                .arg(format!("f{j}"))
                .query(&mut con)?;
            ensure!(v == format!("v{j}"));
            Ok(())
        })?,
    );
    report(
        "ZSCORE",
        timed(1000, |i| {
            let j = sample(i, n);
            let s: f64 = redis::cmd("ZSCORE")
                .arg("bigzset")
                .arg(format!("m{j}"))
                .query(&mut con)?;
            ensure!(s == (j * 2) as f64);
            Ok(())
        })?,
    );
    report(
        "ZRANGEBYSCORE min +inf LIMIT 0 10",
        timed(1000, |i| {
            let j = sample(i, n - 10);
            let m: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg("bigzset")
                .arg(j * 2)
                .arg("+inf")
                .arg("LIMIT")
                .arg(0)
                .arg(10)
                .query(&mut con)?;
            ensure!(m.len() == 10 && m[0] == format!("m{j}"), "{m:?}");
            Ok(())
        })?,
    );
    report(
        "ZREVRANGEBYSCORE max -inf LIMIT 0 10",
        timed(1000, |i| {
            let j = 10 + sample(i, n - 10);
            let m: Vec<String> = redis::cmd("ZREVRANGEBYSCORE")
                .arg("bigzset")
                .arg(j * 2)
                .arg("-inf")
                .arg("LIMIT")
                .arg(0)
                .arg(10)
                .query(&mut con)?;
            ensure!(m.len() == 10 && m[0] == format!("m{j}"), "{m:?}");
            Ok(())
        })?,
    );
    report(
        "ZRANK",
        timed(200, |i| {
            let j = sample(i, n);
            let r: u64 = redis::cmd("ZRANK")
                .arg("bigzset")
                .arg(format!("m{j}"))
                .query(&mut con)?;
            ensure!(r == j, "ZRANK m{j} = {r}");
            Ok(())
        })?,
    );
    report(
        "ZRANGE i i (by index)",
        timed(200, |i| {
            let j = sample(i, n);
            let m: Vec<String> = redis::cmd("ZRANGE")
                .arg("bigzset")
                .arg(j)
                .arg(j)
                .query(&mut con)?;
            ensure!(m == [format!("m{j}")], "{m:?}");
            Ok(())
        })?,
    );
    println!(
        "RSS after reads: {} MiB",
        rss_kb_of(pid).unwrap_or(0) / 1024
    );

    // DEL of each big key while another client keeps pinging: the worst PING is printed.
    for key in ["bighash", "bigzset"] {
        let stop = AtomicBool::new(false);
        let worst = AtomicU64::new(0);
        let took = thread::scope(|s| -> Result<Duration> {
            let mut pinger = node.conn()?;
            let (stop, worst) = (&stop, &worst);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if redis::cmd("PING").query::<String>(&mut pinger).is_err() {
                        break;
                    }
                    worst.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
            });
            let t = Instant::now();
            let r: Result<i64> = redis::cmd("DEL")
                .arg(key)
                .query(&mut con)
                .map_err(Into::into);
            let took = t.elapsed();
            stop.store(true, Ordering::Relaxed);
            ensure!(r? == 1, "DEL {key}");
            Ok(took)
        })?;
        println!(
            "DEL {key}: {took:.1?}; worst concurrent PING {} us",
            worst.load(Ordering::Relaxed)
        );
        let exists: i64 = redis::cmd("EXISTS").arg(key).query(&mut con)?;
        ensure!(exists == 0);
    }
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut con)?;
    ensure!(dbsize == 0, "DBSIZE {dbsize} after deleting both");
    Ok(())
}

//! Memory stays bounded while the dataset grows far past the block cache: load
//! `ROCKSLOT_MEMTEST_GB` (default 3) GiB of incompressible 100 KiB values, read a random
//! sample back, and check peak RSS (target ~600 MB, limit 900 MB).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::harness::{rss_kb_of, NodeBuilder};

const VALUE_LEN: usize = 100 * 1024;
const RSS_LIMIT_KB: u64 = 900 * 1024;

/// Deterministic, incompressible value for key index `i` (xorshift64*).
fn value(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(VALUE_LEN);
    while v.len() < VALUE_LEN {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(VALUE_LEN);
    v
}

fn key(i: u64) -> String {
    format!("mem:{i:08}")
}

#[test]
fn rss_stays_bounded_while_loading_gigabytes() -> Result<()> {
    let gib: f64 = match std::env::var("ROCKSLOT_MEMTEST_GB") {
        Ok(s) => s
            .parse()
            .with_context(|| format!("ROCKSLOT_MEMTEST_GB={s:?}"))?,
        Err(_) => 3.0,
    };
    let count = ((gib * 1024.0 * 1024.0 * 1024.0) / VALUE_LEN as f64).ceil() as u64;
    let node = NodeBuilder::new()
        .directive("storage-block-cache-size", "256mb")
        .directive("appendfsync", "everysec")
        .start()?;
    let pid = node.pid().expect("running");

    let peak = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let written = AtomicU64::new(0);
    let t0 = Instant::now();
    thread::scope(|s| -> Result<()> {
        // RSS sampler.
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if let Some(kb) = rss_kb_of(pid) {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        // Progress line every 10 s so a slow CI run shows where it is.
        s.spawn(|| {
            let mut last = Instant::now();
            while !done.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(100));
                if last.elapsed() >= Duration::from_secs(10) {
                    last = Instant::now();
                    println!(
                        "memtest: {} / {count} values written, RSS peak {} MiB",
                        written.load(Ordering::Relaxed),
                        peak.load(Ordering::Relaxed) / 1024
                    );
                }
            }
        });
        // Whatever happens below, stop the helper threads or the scope never ends.
        let r = load_and_check(s, &node, count, &written, t0);
        done.store(true, Ordering::Relaxed);
        r
    })?;

    let sampled = peak.load(Ordering::Relaxed);
    let hwm = node.peak_rss_kb().unwrap_or(0);
    let now = node.rss_kb().unwrap_or(0);
    println!(
        "memtest: peak RSS {} MiB (VmHWM {} MiB), final RSS {} MiB, block cache 256mb, {gib} GiB loaded",
        sampled / 1024,
        hwm / 1024,
        now / 1024
    );
    let peak_kb = sampled.max(hwm);
    assert!(
        peak_kb < RSS_LIMIT_KB,
        "peak RSS {} MiB exceeds the {} MiB limit",
        peak_kb / 1024,
        RSS_LIMIT_KB / 1024
    );
    Ok(())
}

fn load_and_check<'scope, 'env>(
    s: &'scope thread::Scope<'scope, 'env>,
    node: &'env crate::harness::Node,
    count: u64,
    written: &'env AtomicU64,
    t0: Instant,
) -> Result<()> {
    const WRITERS: u64 = 4;
    let loaders: Vec<_> = (0..WRITERS)
        .map(|w| -> Result<_> {
            let mut con = node.conn()?;
            Ok(s.spawn(move || -> Result<()> {
                let mut i = w;
                while i < count {
                    let mut p = redis::pipe();
                    for _ in 0..8 {
                        if i >= count {
                            break;
                        }
                        p.cmd("SET").arg(key(i)).arg(value(i)).ignore();
                        i += WRITERS;
                    }
                    p.query::<()>(&mut con)
                        .with_context(|| format!("SET pipeline near {}", key(i)))?;
                    written.fetch_add(8, Ordering::Relaxed);
                }
                Ok(())
            }))
        })
        .collect::<Result<_>>()?;
    let mut result: Result<()> = Ok(());
    for h in loaders {
        let r = h.join().expect("loader panicked");
        if result.is_ok() {
            result = r;
        }
    }
    result?;
    let load = t0.elapsed();
    println!(
        "memtest: loaded {count} x {} KiB = {:.2} GiB in {:.1}s ({:.0} MiB/s)",
        VALUE_LEN / 1024,
        count as f64 * VALUE_LEN as f64 / (1u64 << 30) as f64,
        load.as_secs_f64(),
        count as f64 * VALUE_LEN as f64 / (1u64 << 20) as f64 / load.as_secs_f64()
    );

    // Random sample read back (and verified byte for byte), through a cold-ish cache.
    let mut con = node.conn()?;
    let mut x: u64 = 0x1234_5678_9ABC_DEF1;
    let t1 = Instant::now();
    const SAMPLE: usize = 300;
    let mut res: Result<()> = Ok(());
    for _ in 0..SAMPLE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = x % count;
        let got: Option<Vec<u8>> = redis::cmd("GET").arg(key(i)).query(&mut con)?;
        if got.as_deref() != Some(&value(i)[..]) {
            res = Err(anyhow::anyhow!(
                "{} read back wrong ({:?} bytes)",
                key(i),
                got.map(|g| g.len())
            ));
            break;
        }
    }
    println!(
        "memtest: {SAMPLE} random GETs in {:.2}s ({:.1} ms each)",
        t1.elapsed().as_secs_f64(),
        t1.elapsed().as_secs_f64() * 1000.0 / SAMPLE as f64
    );
    res?;
    let dbsize: u64 = redis::cmd("DBSIZE").query(&mut con)?;
    ensure!(dbsize == count, "DBSIZE {dbsize}, expected {count}");
    Ok(())
}

//! Full sync of a large dataset to a new replica with bounded memory, then a short outage of
//! that replica that resumes from its offset without another full sync.
//!
//! `ROCKSLOT_FULLSYNC_GB` (default 2) GiB of incompressible 100 KiB values are loaded into one
//! primary of a 3-primary cluster; a fresh node is added as its replica with
//! `redis-cli --cluster add-node --cluster-slave --cluster-master-id`; the test waits until the
//! replica's DBSIZE matches, prints the duration and the replica's peak RSS, and requires the
//! peak to stay under 1 GiB (the dataset never passes through memory as a whole).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::failover::NODE_TIMEOUT_MS;
use crate::harness::{incompressible_value, rss_kb_of, Cluster};

const VALUE_LEN: usize = 100 * 1024;
const RSS_LIMIT_KB: u64 = 1024 * 1024;

fn mib(bytes: f64) -> f64 {
    bytes / (1u64 << 20) as f64
}

#[test]
fn full_sync_of_gigabytes_to_new_replica_bounded_rss_then_partial_resync() -> Result<()> {
    let gib: f64 = match std::env::var("ROCKSLOT_FULLSYNC_GB") {
        Ok(s) => s
            .parse()
            .with_context(|| format!("ROCKSLOT_FULLSYNC_GB={s:?}"))?,
        Err(_) => 2.0,
    };
    let count = ((gib * (1u64 << 30) as f64) / VALUE_LEN as f64).ceil() as usize;
    let mut c = Cluster::builder(3)
        .node_timeout_ms(NODE_TIMEOUT_MS)
        .start()?;
    c.create_with_redis_cli(0)?;
    c.wait_healthy(Duration::from_secs(60))?;
    let p = c.slot_owner(0, 0)?;
    let id_p = c.myid(p)?;
    let keys = c.keys_owned_by(0, p, "fs:", count)?;

    // Load straight into the primary: 4 connections, pipelines of 8 values.
    let t0 = Instant::now();
    thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let node = c.node(p);
                let keys = &keys;
                s.spawn(move || -> Result<()> {
                    let mut con = node.conn()?;
                    let mine: Vec<usize> = (w..keys.len()).step_by(4).collect();
                    for chunk in mine.chunks(8) {
                        let mut pipe = redis::pipe();
                        for &i in chunk {
                            pipe.cmd("SET")
                                .arg(&keys[i])
                                .arg(incompressible_value(i as u64, VALUE_LEN))
                                .ignore();
                        }
                        pipe.query::<()>(&mut con)
                            .with_context(|| format!("loading near {}", keys[chunk[0]]))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("loader panicked"))??;
        }
        Ok(())
    })?;
    let load = t0.elapsed();
    let bytes = count as f64 * VALUE_LEN as f64;
    println!(
        "fullsync: loaded {count} x 100 KiB = {:.2} GiB into node {p} in {:.1}s ({:.0} MiB/s)",
        bytes / (1u64 << 30) as f64,
        load.as_secs_f64(),
        mib(bytes) / load.as_secs_f64()
    );
    let primary_keys = c.node(p).dbsize()?;
    ensure!(
        primary_keys == count as u64,
        "primary DBSIZE {primary_keys}, expected {count}"
    );

    // A fresh node joins as its replica; sample its RSS throughout.
    let r = c.add_empty_node()?;
    let rpid = c.node(r).pid().context("replica pid")?;
    let ppid = c.node(p).pid().context("primary pid")?;
    let peak = AtomicU64::new(0);
    let ppeak = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let t1 = Instant::now();
    let (run, synced) = thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if let Some(kb) = rss_kb_of(rpid) {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                if let Some(kb) = rss_kb_of(ppid) {
                    ppeak.fetch_max(kb, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        let res = (|| -> Result<_> {
            let run = c
                .redis_cli_cluster(&[
                    "add-node",
                    &c.node(r).host_port(),
                    &c.node(p).host_port(),
                    "--cluster-slave",
                    "--cluster-master-id",
                    &id_p,
                ])?
                .ensure_success()?;
            let (n, _) = c.wait_same_dbsize(p, r, Duration::from_secs(600))?;
            Ok((run, n))
        })();
        done.store(true, Ordering::Relaxed);
        res
    })?;
    let took = t1.elapsed();
    let hwm = c.node(r).peak_rss_kb().unwrap_or(0);
    let replica_peak = peak.load(Ordering::Relaxed).max(hwm);
    let primary_peak = ppeak.load(Ordering::Relaxed);
    println!(
        "FULLSYNC: {synced} keys ({:.2} GiB) to a new replica in {:.1}s ({:.0} MiB/s; add-node itself {:?}); replica peak RSS {} MiB (VmHWM {} MiB), primary peak RSS during the sync {} MiB",
        bytes / (1u64 << 30) as f64,
        took.as_secs_f64(),
        mib(bytes) / took.as_secs_f64(),
        run.elapsed,
        replica_peak / 1024,
        hwm / 1024,
        primary_peak / 1024
    );
    ensure!(
        replica_peak < RSS_LIMIT_KB,
        "replica peak RSS {} MiB >= {} MiB",
        replica_peak / 1024,
        RSS_LIMIT_KB / 1024
    );
    c.wait_replicating(r, p, Duration::from_secs(60))?;
    let full_syncs = c.node(p).log_count("full sync to replica");
    ensure!(full_syncs == 1, "primary logged {full_syncs} full syncs");

    // The replica's bytes are the primary's (sampled).
    let mut con = c.node(r).conn()?;
    let _: () = redis::cmd("READONLY").query(&mut con)?;
    for i in (0..count).step_by((count / 40).max(1)) {
        let v: Option<Vec<u8>> = redis::cmd("GET").arg(&keys[i]).query(&mut con)?;
        ensure!(
            v.as_deref() == Some(&incompressible_value(i as u64, VALUE_LEN)[..]),
            "{} on the replica: {:?} bytes",
            keys[i],
            v.map(|v| v.len())
        );
    }
    drop(con);

    // The stream continues after the full sync...
    let set_all = |c: &Cluster, keys: &[String], v: &str| -> Result<()> {
        let mut pc = c.node(p).conn()?;
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("SET").arg(k).arg(v).ignore();
        }
        Ok(pipe.query::<()>(&mut pc)?)
    };
    set_all(&c, &c.keys_owned_by(0, p, "fs:streamed:", 300)?, "streamed")?;
    c.wait_same_dbsize(p, r, Duration::from_secs(60))?;
    let offset_before = c
        .node(r)
        .repl_field("slave_repl_offset")
        .unwrap_or_default();

    // ...then a short outage: the replica stops, the primary takes more writes, the replica
    // comes back and continues from its persisted offset (no second full sync).
    c.node_mut(r).stop()?;
    set_all(
        &c,
        &c.keys_owned_by(0, p, "fs:after:", 500)?,
        "after-outage",
    )?;
    let t2 = Instant::now();
    c.node_mut(r).restart()?;
    let (n, _) = c.wait_same_dbsize(p, r, Duration::from_secs(60))?;
    let caught_up = t2.elapsed();
    c.wait_replicating(r, p, Duration::from_secs(60))?;
    let full_after = c.node(p).log_count("full sync to replica");
    let partial = c.node(p).log_count("continues from offset");
    println!(
        "fullsync: replica (at offset {offset_before} when stopped) restarted after a short outage, caught up to {n} keys in {:.1}s; primary logged full syncs {full_after}, partial resyncs {partial}: {}",
        caught_up.as_secs_f64(),
        c.node(p).log_line("continues from offset").unwrap_or_default()
    );
    ensure!(
        full_after == 1,
        "the restarted replica got another full sync"
    );
    ensure!(partial >= 1, "no partial resync logged by the primary");
    Ok(())
}

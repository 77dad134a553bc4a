//! The Prometheus endpoint (`metrics-port`), scraped over real HTTP while clients write: the
//! per-command counts equal the commands sent, per-slot key counts add up to DBSIZE, storage
//! and replication figures are present, the text parses as exposition lines, and anything but
//! `GET /metrics` is a 404.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::harness::{free_port, Node};

fn http_get(port: u16, path: &str) -> Result<(String, String)> {
    let mut s =
        TcpStream::connect(("127.0.0.1", port)).context("connecting to the metrics port")?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n"
    )?;
    let mut all = String::new();
    s.read_to_string(&mut all)?;
    let (head, body) = all.split_once("\r\n\r\n").context("no HTTP head")?;
    Ok((head.to_string(), body.to_string()))
}

/// The value of the sample `name{labels}` (or `name` without labels).
fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_endpoint_reports_commands_slots_storage_and_replication() -> Result<()> {
    let port = free_port();
    let node = Node::builder()
        .directive("metrics-port", &port.to_string())
        .start()?;
    let mut c = node.conn()?;
    for i in 0..250 {
        redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg(i)
            .exec(&mut c)?;
    }
    for i in 0..40 {
        let _: Option<String> = redis::cmd("GET").arg(format!("key:{i}")).query(&mut c)?;
    }
    let _ = redis::cmd("INCR")
        .arg("key:1x")
        .arg("extra")
        .query::<i64>(&mut c);
    let (head, body) = http_get(port, "/metrics")?;
    ensure!(head.starts_with("HTTP/1.1 200"), "{head}");
    ensure!(head.contains("text/plain; version=0.0.4"), "{head}");
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let value = line.rsplit(' ').next().unwrap_or("");
        ensure!(
            value.parse::<f64>().is_ok() && line.starts_with("rockslot_"),
            "not an exposition line: {line}"
        );
    }
    ensure!(body.trim_end().ends_with("# EOF"), "no # EOF terminator");
    let set = sample(&body, "rockslot_command_calls_total{command=\"set\"}");
    ensure!(set == Some(250.0), "SET calls {set:?}");
    let get = sample(&body, "rockslot_command_calls_total{command=\"get\"}");
    ensure!(get == Some(40.0), "GET calls {get:?}");
    let rejected = sample(
        &body,
        "rockslot_command_rejected_calls_total{command=\"incr\"}",
    );
    ensure!(rejected == Some(1.0), "INCR rejected {rejected:?}");
    let keys = sample(&body, "rockslot_keys").context("no rockslot_keys")?;
    ensure!(keys == 250.0, "keys {keys}");
    let per_slot: f64 = body
        .lines()
        .filter(|l| l.starts_with("rockslot_slot_keys{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    ensure!(per_slot == 250.0, "per-slot keys add up to {per_slot}");
    ensure!(sample(&body, "rockslot_keyspace_hits_total") == Some(40.0));
    for name in [
        "rockslot_storage_block_cache_bytes",
        "rockslot_storage_memtable_bytes",
        "rockslot_storage_sst_bytes",
        "rockslot_storage_pending_compaction_bytes",
        "rockslot_storage_write_stopped",
        "rockslot_storage_block_cache_hits_total",
        "rockslot_storage_block_cache_misses_total",
        "rockslot_connected_clients",
        "rockslot_replica",
        "rockslot_replication{field=\"master_repl_offset\"}",
        "rockslot_used_memory_rss_bytes",
    ] {
        ensure!(sample(&body, name).is_some(), "{name} missing");
    }
    ensure!(sample(&body, "rockslot_connected_clients") >= Some(1.0));
    let ratio = sample(&body, "rockslot_storage_block_cache_hit_ratio");
    ensure!(
        ratio.is_some_and(|r| (0.0..=1.0).contains(&r)),
        "block cache hit ratio {ratio:?}"
    );
    ensure!(
        body.contains("# TYPE rockslot_migration_jobs gauge"),
        "no migration figures"
    );
    let (head, _) = http_get(port, "/other")?;
    ensure!(head.starts_with("HTTP/1.1 404"), "{head}");
    // A bad request does not disturb the node.
    let mut junk = TcpStream::connect(("127.0.0.1", port))?;
    junk.write_all(b"\x00\x01garbage\r\n\r\n")?;
    drop(junk);
    let pong: String = redis::cmd("PING").query(&mut c)?;
    ensure!(pong == "PONG");
    Ok(())
}

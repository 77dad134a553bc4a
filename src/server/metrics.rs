//! The Prometheus endpoint (`metrics-port`): `GET /metrics` answers the text exposition format
//! (encoded by `prometheus-client`) with per-command calls, time and errors, key counts per
//! slot, clients, keyspace hits and expiries, the storage engine's figures (block cache,
//! memtables, SST bytes, compaction backlog, write stalls), the replication figures INFO
//! shows and the slot migration jobs (by direction and state, keys and bytes moved).
//! Must not: change anything, or answer anything but a GET of `/metrics` (404 otherwise).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::node::Node;

type Labels = Vec<(String, String)>;

fn gauge(reg: &mut Registry, name: &str, help: &str, v: i64) {
    let g: Gauge = Gauge::default();
    g.set(v);
    reg.register(name, help, g);
}

fn gauge_f(reg: &mut Registry, name: &str, help: &str, v: f64) {
    let g: Gauge<f64, AtomicU64> = Gauge::default();
    g.set(v);
    reg.register(name, help, g);
}

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

/// The exposition text of everything the endpoint shows.
pub fn render(node: &Node) -> String {
    let mut reg = Registry::with_prefix("rockslot");
    let calls = Family::<Labels, Counter>::default();
    let seconds = Family::<Labels, Counter<f64, AtomicU64>>::default();
    let failed = Family::<Labels, Counter>::default();
    let rejected = Family::<Labels, Counter>::default();
    crate::command::stats::each_command(|name, n, usec, rej, fail| {
        let l = vec![("command".to_string(), name.to_string())];
        calls.get_or_create(&l).inc_by(n);
        seconds.get_or_create(&l).inc_by(usec as f64 / 1e6);
        failed.get_or_create(&l).inc_by(fail);
        rejected.get_or_create(&l).inc_by(rej);
    });
    reg.register("command_calls", "Commands that ran", calls);
    reg.register("command_seconds", "Time spent running commands", seconds);
    reg.register(
        "command_failed_calls",
        "Commands that ran and replied an error",
        failed,
    );
    reg.register(
        "command_rejected_calls",
        "Commands refused before running",
        rejected,
    );

    let ks = &node.keyspace;
    gauge(&mut reg, "keys", "Keys stored (DBSIZE)", ks.total_keys());
    let per_slot = Family::<Labels, Gauge>::default();
    for slot in 0..crate::storage::SLOTS as u16 {
        let n = ks.count_in_slot(slot);
        if n != 0 {
            per_slot
                .get_or_create(&vec![("slot".to_string(), slot.to_string())])
                .set(n);
        }
    }
    reg.register(
        "slot_keys",
        "Keys stored per slot (slots holding keys)",
        per_slot,
    );
    let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
    counter(
        &mut reg,
        "keyspace_hits",
        "Lookups that found the key",
        r(&ks.stats.keyspace_hits),
    );
    counter(
        &mut reg,
        "keyspace_misses",
        "Lookups that missed",
        r(&ks.stats.keyspace_misses),
    );
    counter(
        &mut reg,
        "expired_keys",
        "Keys removed by expiry",
        r(&ks.stats.expired_keys),
    );
    let s = &node.stats;
    counter(
        &mut reg,
        "commands_processed",
        "Commands processed",
        r(&s.commands_processed),
    );
    counter(
        &mut reg,
        "connections_received",
        "Connections accepted",
        r(&s.connections_received),
    );
    counter(
        &mut reg,
        "net_input_bytes",
        "Bytes read from clients",
        r(&s.net_input_bytes),
    );
    counter(
        &mut reg,
        "net_output_bytes",
        "Bytes written to clients",
        r(&s.net_output_bytes),
    );
    counter(
        &mut reg,
        "error_replies",
        "Error replies sent",
        r(&s.error_replies),
    );
    gauge(
        &mut reg,
        "connected_clients",
        "Client connections",
        node.clients.count() as i64,
    );
    gauge(
        &mut reg,
        "uptime_seconds",
        "Seconds since start",
        node.started.elapsed().as_secs() as i64,
    );

    let e = &node.engine;
    let (cache, memtables) = e.memory_usage();
    gauge(
        &mut reg,
        "storage_block_cache_bytes",
        "Block cache in use (memtables included)",
        cache as i64,
    );
    gauge(
        &mut reg,
        "storage_memtable_bytes",
        "Memtables in use",
        memtables as i64,
    );
    let c = node.config.snapshot();
    gauge(
        &mut reg,
        "storage_block_cache_capacity_bytes",
        "Block cache budget",
        c.storage_block_cache_size as i64,
    );
    let f = e.figures();
    let storage = [
        ("storage_sst_bytes", "Bytes of SST files", f.sst_bytes),
        (
            "storage_live_data_bytes",
            "Estimated live data",
            f.live_data_bytes,
        ),
        (
            "storage_pending_compaction_bytes",
            "Estimated bytes compaction has yet to rewrite",
            f.pending_compaction_bytes,
        ),
        (
            "storage_running_compactions",
            "Compactions running",
            f.running_compactions,
        ),
        (
            "storage_running_flushes",
            "Memtable flushes running",
            f.running_flushes,
        ),
        (
            "storage_immutable_memtables",
            "Memtables waiting to flush",
            f.immutable_memtables,
        ),
        (
            "storage_write_stopped",
            "Families whose writes are stopped",
            f.write_stopped,
        ),
        (
            "storage_delayed_write_rate",
            "Write rate writers are slowed to (bytes/s, 0 = none)",
            f.delayed_write_rate,
        ),
    ];
    for (name, help, v) in storage {
        gauge(&mut reg, name, help, v as i64);
    }
    counter(
        &mut reg,
        "storage_block_cache_hits",
        "Block cache lookups that found their block",
        f.block_cache_hits,
    );
    counter(
        &mut reg,
        "storage_block_cache_misses",
        "Block cache lookups that read the block from an SST file",
        f.block_cache_misses,
    );
    let lookups = f.block_cache_hits + f.block_cache_misses;
    gauge_f(
        &mut reg,
        "storage_block_cache_hit_ratio",
        "Block cache hits over lookups since start (1 before any lookup)",
        if lookups == 0 {
            1.0
        } else {
            f.block_cache_hits as f64 / lookups as f64
        },
    );
    gauge(
        &mut reg,
        "storage_write_batches",
        "Storage writes since start",
        e.write_count() as i64,
    );

    // What INFO replication shows, as numbers (offsets, replicas, lag).
    let info = node.replication.info(node.replica_of());
    let repl = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for line in info.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        // Replication ids are hex strings, not figures.
        if let (false, Ok(v)) = (k.contains("replid"), v.trim().parse::<f64>()) {
            repl.get_or_create(&vec![("field".to_string(), k.to_string())])
                .set(v);
        }
        if k == "role" {
            gauge(
                &mut reg,
                "replica",
                "1 on a replica, 0 on a primary",
                i64::from(v == "slave"),
            );
        }
    }
    reg.register("replication", "INFO replication's numeric fields", repl);

    // Slot migration jobs this node takes part in (as CLUSTER GETSLOTMIGRATIONS lists them).
    let jobs = Family::<Labels, Gauge>::default();
    let moved_keys = Family::<Labels, Counter>::default();
    let moved_bytes = Family::<Labels, Counter>::default();
    for j in node.migrations.list() {
        let op = match j.operation {
            crate::migration::Operation::Export => "export",
            crate::migration::Operation::Import => "import",
        };
        let state = vec![
            ("operation".to_string(), op.to_string()),
            ("state".to_string(), j.state.as_str().to_string()),
        ];
        jobs.get_or_create(&state).inc();
        let dir = vec![("operation".to_string(), op.to_string())];
        moved_keys.get_or_create(&dir).inc_by(j.keys);
        moved_bytes.get_or_create(&dir).inc_by(j.bytes);
    }
    reg.register(
        "migration_jobs",
        "Slot migration jobs by direction and state",
        jobs,
    );
    reg.register(
        "migration_keys",
        "Keys moved by the listed migration jobs",
        moved_keys,
    );
    reg.register(
        "migration_bytes",
        "Bytes moved by the listed migration jobs",
        moved_bytes,
    );
    gauge_f(
        &mut reg,
        "used_memory_rss_bytes",
        "Resident memory",
        crate::command::info::rss_bytes() as f64,
    );

    let mut out = String::new();
    if let Err(e) = encode(&mut out, &reg) {
        tracing::warn!("encoding metrics: {e}");
    }
    out
}

/// Serves scrapes until shutdown.
pub async fn serve(node: Arc<Node>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = node.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(scrape(Arc::clone(&node), stream));
            }
            Err(e) => {
                tracing::warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One HTTP/1.x request: reads its head (bounded in size and time), answers, closes.
async fn scrape(node: Arc<Node>, mut stream: TcpStream) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    if !matches!(read, Ok(true)) {
        return;
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
    let path = path.split(|&b| b == b'?').next().unwrap_or(&[]);
    let (status, ctype, body) = if method == b"GET" && path == b"/metrics" {
        let body = render(&node);
        ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
    } else {
        ("404 Not Found", "text/plain", "not found\n".to_string())
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

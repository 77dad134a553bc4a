//! INFO: the sections Valkey has that apply here, CRLF-terminated, `db0:` only when non-empty.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::text;
use super::{CmdResult, Ctx};
use crate::node::Node;
use crate::resp::Reply;

/// The Redis version rockslot reports for compatibility; its own version is `rockslot_version`.
pub const REDIS_VERSION: &str = "7.2.4";

/// Every section in Valkey's order, and whether it is in the default set.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

/// INFO [section ...]: no argument or `default` gives the default sections, `all` and
/// `everything` every one; names combine, unknown names add nothing (as Valkey).
pub fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| text(a).to_ascii_lowercase())
        .collect();
    let every = wanted.iter().any(|w| w == "all" || w == "everything");
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let mut out = String::new();
    for (section, in_default) in SECTIONS {
        let chosen = every || (default && *in_default) || wanted.iter().any(|w| w == section);
        if !chosen {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        render(ctx.node, ctx, section, &mut out);
    }
    Ok(Reply::Verbatim(out))
}

/// Resident memory of the process, bytes.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2}G", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// (system, user) CPU seconds of this process, from `/proc/self/stat` (fields 15 and 14, in
/// USER_HZ ticks, which Linux fixes at 100 for userspace).
fn cpu_times() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return (0.0, 0.0);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    (ticks(12), ticks(11))
}

macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
        $out.push_str("\r\n");
    }};
}

fn render(sh: &Node, ctx: &Ctx, section: &str, out: &mut String) {
    let c = sh.config.snapshot();
    match section {
        "server" => {
            let up = sh.started.elapsed().as_secs();
            line!(out, "# Server");
            line!(out, "redis_version:{REDIS_VERSION}");
            line!(out, "server_name:rockslot");
            line!(out, "rockslot_version:{}", env!("CARGO_PKG_VERSION"));
            line!(out, "redis_git_sha1:00000000");
            line!(
                out,
                "redis_mode:{}",
                if c.cluster_enabled {
                    "cluster"
                } else {
                    "standalone"
                }
            );
            line!(
                out,
                "os:{} {}",
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            line!(out, "arch_bits:64");
            line!(out, "multiplexing_api:epoll");
            line!(out, "process_id:{}", std::process::id());
            line!(out, "run_id:{}", sh.run_id);
            line!(out, "tcp_port:{}", sh.tcp_port);
            line!(out, "uptime_in_seconds:{up}");
            line!(out, "uptime_in_days:{}", up / 86400);
            line!(out, "hz:{}", c.hz);
            line!(out, "executable:{}", sh.executable.display());
            line!(
                out,
                "config_file:{}",
                sh.config
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        "clients" => {
            line!(out, "# Clients");
            line!(out, "connected_clients:{}", sh.clients.count());
            line!(out, "maxclients:{}", c.maxclients);
            let all = sh.clients.all();
            let blocked = all
                .iter()
                .filter(|h| h.blocked.load(std::sync::atomic::Ordering::Relaxed))
                .count();
            let pubsub = all
                .iter()
                .filter(|h| h.subscriptions.lock().iter().any(|n| *n > 0))
                .count();
            line!(out, "blocked_clients:{blocked}");
            line!(out, "pubsub_clients:{pubsub}");
        }
        "memory" => {
            let rss = rss_bytes();
            let (cache, memtables) = sh.engine.memory_usage();
            line!(out, "# Memory");
            line!(out, "used_memory:{rss}");
            line!(out, "used_memory_human:{}", human(rss));
            line!(out, "used_memory_rss:{rss}");
            line!(out, "used_memory_rss_human:{}", human(rss));
            line!(out, "maxmemory:0");
            line!(out, "maxmemory_human:0B");
            line!(out, "maxmemory_policy:noeviction");
            line!(out, "storage_block_cache_used:{cache}");
            line!(
                out,
                "storage_block_cache_size:{}",
                c.storage_block_cache_size
            );
            line!(out, "storage_memtables_used:{memtables}");
            line!(
                out,
                "storage_write_buffer_size:{}",
                c.storage_write_buffer_size
            );
            line!(out, "storage_disk_bytes:{}", sh.engine.disk_usage());
            line!(out, "storage_write_batches:{}", sh.engine.write_count());
        }
        "persistence" => {
            line!(out, "# Persistence");
            line!(out, "loading:0");
            line!(out, "aof_enabled:1");
            line!(
                out,
                "appendfsync:{}",
                sh.config
                    .get(&[b"appendfsync"])
                    .first()
                    .map(|p| p.1.clone())
                    .unwrap_or_default()
            );
            line!(
                out,
                "aof_last_write_status:{}",
                if sh.wal.failures() == 0 && sh.engine.write_error().is_none() {
                    "ok"
                } else {
                    "err"
                }
            );
            line!(out, "rdb_changes_since_last_save:0");
            line!(out, "rdb_bgsave_in_progress:0");
            line!(out, "aof_rewrite_in_progress:0");
        }
        "stats" => {
            let s = &sh.stats;
            let k = &sh.keyspace.stats;
            let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            line!(out, "# Stats");
            line!(
                out,
                "total_connections_received:{}",
                r(&s.connections_received)
            );
            line!(out, "total_commands_processed:{}", r(&s.commands_processed));
            line!(out, "instantaneous_ops_per_sec:{}", r(&s.ops_per_sec));
            line!(out, "total_net_input_bytes:{}", r(&s.net_input_bytes));
            line!(out, "total_net_output_bytes:{}", r(&s.net_output_bytes));
            line!(out, "rejected_connections:{}", r(&s.rejected_connections));
            line!(out, "expired_keys:{}", r(&k.expired_keys));
            line!(out, "evicted_keys:0");
            line!(out, "evicted_clients:{}", r(&s.evicted_clients));
            line!(
                out,
                "client_output_buffer_limit_disconnections:{}",
                r(&s.output_limit_disconnections)
            );
            line!(out, "keyspace_hits:{}", r(&k.keyspace_hits));
            line!(
                out,
                "pubsub_channels:{}",
                sh.pubsub
                    .names(crate::node::pubsub::Space::Channel, None)
                    .len()
            );
            line!(out, "pubsub_patterns:{}", sh.pubsub.pattern_count());
            line!(
                out,
                "pubsubshard_channels:{}",
                sh.pubsub
                    .names(crate::node::pubsub::Space::Shard, None)
                    .len()
            );
            line!(out, "tracking_total_keys:{}", sh.tracking.tracked_keys());
            line!(out, "keyspace_misses:{}", r(&k.keyspace_misses));
            line!(out, "total_error_replies:{}", r(&s.error_replies));
        }
        "replication" => {
            let r = sh.replication.info(sh.replica_of());
            out.push_str(&r);
        }
        "cpu" => {
            let (sys, user) = cpu_times();
            line!(out, "# CPU");
            line!(out, "used_cpu_sys:{sys:.6}");
            line!(out, "used_cpu_user:{user:.6}");
        }
        "modules" => line!(out, "# Modules"),
        "commandstats" => {
            line!(out, "# Commandstats");
            super::stats::render_commandstats(out);
        }
        "errorstats" => {
            line!(out, "# Errorstats");
            super::stats::render_errorstats(out);
        }
        "latencystats" => {
            line!(out, "# Latencystats");
            super::stats::render_latencystats(out);
        }
        "cluster" => {
            line!(out, "# Cluster");
            line!(out, "cluster_enabled:{}", u8::from(c.cluster_enabled));
        }
        "keyspace" => {
            line!(out, "# Keyspace");
            for db in 0..sh.keyspace.databases() as u8 {
                let n = sh.keyspace.dbsize(db);
                if n > 0 {
                    let expires = sh.keyspace.expires_count(db).unwrap_or(0);
                    line!(out, "db{db}:keys={n},expires={expires},avg_ttl=0");
                }
            }
        }
        _ => {}
    }
    let _ = ctx;
}

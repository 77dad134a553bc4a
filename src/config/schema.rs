//! The directive table: every name rockslot acts on, how its arguments map
//! onto [`Config`], how CONFIG GET shows it, how CONFIG REWRITE writes it, and
//! whether CONFIG SET may touch it; plus [`lookup`], which also resolves the
//! ignored Valkey directives of the `compat` module.
//!
//! Adding a directive means adding one table row; loader, CONFIG GET/SET and
//! REWRITE all go through [`lookup`]. This file must not do I/O.

use std::path::PathBuf;

use super::compat::{NoEffect, NO_EFFECT, NO_EFFECT_FAMILIES};
use super::lex::{
    format_memory, non_empty, one, parse_bool, parse_bounded, parse_int, quote_if_needed, repr,
    yes_no, WRONG_ARGS,
};
use super::{AppendFsync, Config, LogLevel};

const I32_MAX: u64 = i32::MAX as u64;
const I64_MAX: u64 = i64::MAX as u64;
const MB: u64 = 1024 * 1024;

/// One typed directive. `rewrite` returns one entry per config line, each the
/// text after the name, already quoted; an empty list means "no line".
pub(crate) struct Spec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub mutable: bool,
    pub apply: fn(&mut Config, &[String]) -> Result<(), String>,
    pub get: fn(&Config) -> String,
    pub rewrite: fn(&Config) -> Vec<String>,
}

/// Class names of `client-output-buffer-limit` as CONFIG GET prints them.
const OUTPUT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// `client-output-buffer-limit <class> <hard> <soft> <soft seconds> [...]`, with Valkey's
/// messages; classes not named keep their limits.
fn apply_output_limits(c: &mut Config, args: &[String]) -> Result<(), String> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    if words.is_empty() || words.len() % 4 != 0 {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut next = c.output_buffer_limits;
    for w in words.chunks(4) {
        let class = match w[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = super::lex::parse_memory(w[1]).ok_or_else(bad)?;
        let soft = super::lex::parse_memory(w[2]).ok_or_else(bad)?;
        let soft_secs = w[3].parse::<u64>().map_err(|_| bad())?;
        next[class] = super::OutputLimit {
            hard,
            soft,
            soft_secs,
        };
    }
    c.output_buffer_limits = next;
    Ok(())
}

pub(super) fn enum_err(names: &[&str]) -> String {
    format!(
        "argument(s) must be one of the following: {}",
        names.join(", ")
    )
}

macro_rules! bool_spec {
    ($name:literal, $($field:ident).+, $mutable:expr, [$($alias:literal),*]) => {
        Spec {
            name: $name,
            aliases: &[$($alias),*],
            mutable: $mutable,
            apply: |c, a| {
                c.$($field).+ = parse_bool(one(a)?)?;
                Ok(())
            },
            get: |c| yes_no(c.$($field).+),
            rewrite: |c| vec![yes_no(c.$($field).+)],
        }
    };
}
pub(super) use bool_spec;

/// Unsigned integer field; `$mem` accepts memory units and rewrites compactly.
macro_rules! num_spec {
    ($name:literal, $($field:ident).+, $ty:ty, $min:expr, $max:expr, $mem:expr, $mutable:expr,
     [$($alias:literal),*]) => {
        Spec {
            name: $name,
            aliases: &[$($alias),*],
            mutable: $mutable,
            apply: |c, a| {
                let v = parse_bounded(one(a)?, $mem, $min, $max)?;
                c.$($field).+ = <$ty>::try_from(v).map_err(|_| {
                    format!("argument must be between {} and {} inclusive", $min, $max)
                })?;
                Ok(())
            },
            get: |c| c.$($field).+.to_string(),
            rewrite: |c| {
                if $mem {
                    vec![format_memory(u64::from(c.$($field).+))]
                } else {
                    vec![c.$($field).+.to_string()]
                }
            },
        }
    };
}
pub(super) use num_spec;

/// A mutable `i64` field from -1 (off) up, as Valkey's long long thresholds.
macro_rules! signed_spec {
    ($name:literal, $field:ident, [$($alias:literal),*]) => {
        Spec {
            name: $name,
            aliases: &[$($alias),*],
            mutable: true,
            apply: |c, a| {
                let v = parse_int(one(a)?)?;
                if v < -1 {
                    return Err(format!("argument must be between -1 and {} inclusive", i64::MAX));
                }
                c.$field = v;
                Ok(())
            },
            get: |c| c.$field.to_string(),
            rewrite: |c| vec![c.$field.to_string()],
        }
    };
}

/// `Option<String>` field where an empty value means "unset", as Valkey's
/// EMPTY_STRING_IS_NULL configs behave.
macro_rules! opt_str_spec {
    ($name:literal, $($field:ident).+, $mutable:expr) => {
        Spec {
            name: $name,
            aliases: &[],
            mutable: $mutable,
            apply: |c, a| {
                c.$($field).+ = non_empty(one(a)?);
                Ok(())
            },
            get: |c| c.$($field).+.clone().unwrap_or_default(),
            rewrite: |c| vec![repr(c.$($field).+.as_deref().unwrap_or(""))],
        }
    };
}
pub(super) use opt_str_spec;

/// Every typed directive.
pub(crate) fn specs() -> impl Iterator<Item = &'static Spec> {
    SPECS.iter().chain(super::schema_tls::TLS_SPECS)
}

static SPECS: &[Spec] = &[
    Spec {
        name: "bind",
        aliases: &[],
        mutable: false,
        apply: |c, a| {
            if a.is_empty() {
                return Err(WRONG_ARGS.to_string());
            }
            if a.len() > 16 {
                return Err("Too many bind addresses specified.".to_string());
            }
            if a.iter().any(|s| s.is_empty()) {
                return Err("bind address must not be empty".to_string());
            }
            c.bind = a.to_vec();
            Ok(())
        },
        get: |c| c.bind.join(" "),
        rewrite: |c| {
            let parts: Vec<String> = c.bind.iter().map(|s| quote_if_needed(s)).collect();
            vec![parts.join(" ")]
        },
    },
    num_spec!("port", port, u16, 1, 65535, false, false, []),
    opt_str_spec!("requirepass", requirepass, true),
    opt_str_spec!("masterauth", masterauth, true),
    opt_str_spec!("masteruser", masteruser, false),
    bool_spec!("cluster-enabled", cluster_enabled, false, []),
    Spec {
        name: "cluster-config-file",
        aliases: &[],
        mutable: false,
        apply: |c, a| {
            let v = one(a)?;
            if v.is_empty() {
                return Err("cluster-config-file must not be empty".to_string());
            }
            c.cluster_config_file = v.to_string();
            Ok(())
        },
        get: |c| c.cluster_config_file.clone(),
        rewrite: |c| vec![repr(&c.cluster_config_file)],
    },
    num_spec!(
        "latency-monitor-threshold",
        latency_monitor_threshold_ms,
        u64,
        0,
        I64_MAX,
        false,
        true,
        []
    ),
    num_spec!(
        "metrics-port",
        metrics_port,
        u16,
        0,
        65535,
        false,
        false,
        []
    ),
    num_spec!(
        "cluster-port",
        cluster_port,
        u16,
        0,
        65535,
        false,
        false,
        []
    ),
    num_spec!(
        "cluster-node-timeout",
        cluster_node_timeout_ms,
        u64,
        0,
        I64_MAX,
        false,
        true,
        []
    ),
    num_spec!(
        "cluster-migration-barrier",
        cluster_migration_barrier,
        u32,
        0,
        I32_MAX,
        false,
        true,
        []
    ),
    num_spec!(
        "cluster-replica-validity-factor",
        cluster_replica_validity_factor,
        u32,
        0,
        I32_MAX,
        false,
        true,
        ["cluster-slave-validity-factor"]
    ),
    bool_spec!(
        "cluster-slot-stats-enabled",
        cluster_slot_stats_enabled,
        true,
        []
    ),
    bool_spec!(
        "cluster-require-full-coverage",
        cluster_require_full_coverage,
        true,
        []
    ),
    bool_spec!(
        "cluster-allow-reads-when-down",
        cluster_allow_reads_when_down,
        true,
        []
    ),
    bool_spec!(
        "cluster-replica-no-failover",
        cluster_replica_no_failover,
        true,
        ["cluster-slave-no-failover"]
    ),
    bool_spec!(
        "cluster-allow-replica-migration",
        cluster_allow_replica_migration,
        true,
        []
    ),
    opt_str_spec!("cluster-announce-ip", cluster_announce_ip, false),
    num_spec!(
        "hash-max-listpack-entries",
        hash_max_listpack_entries,
        u64,
        0,
        I64_MAX,
        false,
        true,
        ["hash-max-ziplist-entries"]
    ),
    num_spec!(
        "hash-max-listpack-value",
        hash_max_listpack_value,
        u64,
        0,
        I64_MAX,
        false,
        true,
        ["hash-max-ziplist-value"]
    ),
    num_spec!(
        "set-max-intset-entries",
        set_max_intset_entries,
        u64,
        0,
        I64_MAX,
        false,
        true,
        []
    ),
    num_spec!(
        "set-max-listpack-entries",
        set_max_listpack_entries,
        u64,
        0,
        I64_MAX,
        false,
        true,
        []
    ),
    num_spec!(
        "set-max-listpack-value",
        set_max_listpack_value,
        u64,
        0,
        I64_MAX,
        false,
        true,
        []
    ),
    num_spec!(
        "zset-max-listpack-entries",
        zset_max_listpack_entries,
        u64,
        0,
        I64_MAX,
        false,
        true,
        ["zset-max-ziplist-entries"]
    ),
    num_spec!(
        "zset-max-listpack-value",
        zset_max_listpack_value,
        u64,
        0,
        I64_MAX,
        false,
        true,
        ["zset-max-ziplist-value"]
    ),
    // A signed int in Valkey: positive counts entries, negative picks a size class.
    Spec {
        name: "list-max-listpack-size",
        aliases: &["list-max-ziplist-size"],
        mutable: true,
        apply: |c, a| {
            let v = parse_int(one(a)?)?;
            if i32::try_from(v).is_err() {
                return Err(format!(
                    "argument must be between {} and {} inclusive",
                    i32::MIN,
                    i32::MAX
                ));
            }
            c.list_max_listpack_size = v;
            Ok(())
        },
        get: |c| c.list_max_listpack_size.to_string(),
        rewrite: |c| vec![c.list_max_listpack_size.to_string()],
    },
    Spec {
        name: "client-output-buffer-limit",
        aliases: &[],
        mutable: true,
        apply: apply_output_limits,
        get: |c| {
            c.output_buffer_limits
                .iter()
                .zip(OUTPUT_CLASSES)
                .map(|(l, n)| format!("{n} {} {} {}", l.hard, l.soft, l.soft_secs))
                .collect::<Vec<_>>()
                .join(" ")
        },
        // One line per class that differs from Valkey's default, as Valkey rewrites it.
        rewrite: |c| {
            c.output_buffer_limits
                .iter()
                .zip(super::DEFAULT_OUTPUT_LIMITS)
                .zip(OUTPUT_CLASSES)
                .filter(|((l, d), _)| l != &d)
                .map(|((l, _), n)| format!("{n} {} {} {}", l.hard, l.soft, l.soft_secs))
                .collect()
        },
    },
    // The cluster port's secret (falls back to masterauth, then requirepass); CONFIG SET
    // applies it to the next call, the replaced one staying valid for a grace period.
    Spec {
        name: "cluster-bus-secret",
        aliases: &["cluster-secret"],
        mutable: true,
        apply: |c, a| {
            c.cluster_bus_secret = non_empty(one(a)?);
            Ok(())
        },
        get: |c| c.cluster_bus_secret.clone().unwrap_or_default(),
        rewrite: |c| vec![repr(c.cluster_bus_secret.as_deref().unwrap_or(""))],
    },
    Spec {
        name: "dir",
        aliases: &[],
        mutable: false,
        apply: |c, a| {
            let v = one(a)?;
            if v.is_empty() {
                return Err("dir must not be empty".to_string());
            }
            c.dir = PathBuf::from(v);
            Ok(())
        },
        get: |c| c.dir.to_string_lossy().into_owned(),
        rewrite: |c| vec![repr(&c.dir.to_string_lossy())],
    },
    Spec {
        name: "notify-keyspace-events",
        aliases: &[],
        mutable: true,
        apply: |c, a| {
            c.notify_keyspace_events = super::KeyspaceEvents::parse(one(a)?)?;
            Ok(())
        },
        get: |c| c.notify_keyspace_events.letters(),
        rewrite: |c| vec![repr(&c.notify_keyspace_events.letters())],
    },
    Spec {
        name: "appendfsync",
        aliases: &[],
        mutable: true,
        apply: |c, a| {
            c.appendfsync =
                AppendFsync::from_name(one(a)?).ok_or_else(|| enum_err(AppendFsync::NAMES))?;
            Ok(())
        },
        get: |c| c.appendfsync.as_str().to_string(),
        rewrite: |c| vec![c.appendfsync.as_str().to_string()],
    },
    num_spec!(
        "busy-reply-threshold",
        busy_reply_threshold_ms,
        u64,
        0,
        i64::MAX as u64,
        false,
        true,
        ["lua-time-limit"]
    ),
    num_spec!("databases", databases, u8, 1, 32, false, false, []),
    num_spec!(
        "tracking-table-max-keys",
        tracking_table_max_keys,
        u64,
        0,
        I64_MAX,
        false,
        true,
        []
    ),
    num_spec!(
        "cluster-databases",
        cluster_databases,
        u8,
        1,
        32,
        false,
        false,
        []
    ),
    num_spec!(
        "maxclients",
        maxclients,
        u32,
        1,
        u64::from(u32::MAX),
        false,
        true,
        []
    ),
    num_spec!("timeout", timeout_secs, u64, 0, I32_MAX, false, true, []),
    num_spec!(
        "tcp-keepalive",
        tcp_keepalive_secs,
        u64,
        0,
        I32_MAX,
        false,
        true,
        []
    ),
    num_spec!(
        "proto-max-bulk-len",
        proto_max_bulk_len,
        u64,
        MB,
        I64_MAX,
        true,
        true,
        []
    ),
    signed_spec!(
        "commandlog-execution-slower-than",
        commandlog_slow_usec,
        ["slowlog-log-slower-than"]
    ),
    num_spec!(
        "commandlog-slow-execution-max-len",
        commandlog_slow_max_len,
        u64,
        0,
        I64_MAX,
        false,
        true,
        ["slowlog-max-len"]
    ),
    signed_spec!(
        "commandlog-request-larger-than",
        commandlog_request_bytes,
        []
    ),
    num_spec!(
        "commandlog-large-request-max-len",
        commandlog_request_max_len,
        u64,
        0,
        I64_MAX,
        false,
        true,
        []
    ),
    signed_spec!("commandlog-reply-larger-than", commandlog_reply_bytes, []),
    num_spec!(
        "commandlog-large-reply-max-len",
        commandlog_reply_max_len,
        u64,
        0,
        I64_MAX,
        false,
        true,
        []
    ),
    num_spec!(
        "hll-sparse-max-bytes",
        hll_sparse_max_bytes,
        u64,
        0,
        I64_MAX,
        true,
        true,
        []
    ),
    num_spec!(
        "maxmemory-clients",
        maxmemory_clients,
        u64,
        0,
        I64_MAX,
        true,
        true,
        []
    ),
    num_spec!(
        "client-query-buffer-limit",
        client_query_buffer_limit,
        u64,
        MB,
        I64_MAX,
        true,
        true,
        []
    ),
    Spec {
        name: "loglevel",
        aliases: &[],
        mutable: true,
        apply: |c, a| {
            c.loglevel = LogLevel::from_name(one(a)?).ok_or_else(|| enum_err(LogLevel::NAMES))?;
            Ok(())
        },
        get: |c| c.loglevel.as_str().to_string(),
        rewrite: |c| vec![c.loglevel.as_str().to_string()],
    },
    Spec {
        name: "logfile",
        aliases: &[],
        mutable: false,
        apply: |c, a| {
            c.logfile = one(a)?.to_string();
            Ok(())
        },
        get: |c| c.logfile.clone(),
        rewrite: |c| vec![repr(&c.logfile)],
    },
    Spec {
        name: "pidfile",
        aliases: &[],
        mutable: false,
        apply: |c, a| {
            c.pidfile = non_empty(one(a)?).map(PathBuf::from);
            Ok(())
        },
        get: |c| {
            c.pidfile
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        },
        rewrite: |c| {
            let p = c.pidfile.as_ref().map(|p| p.to_string_lossy().into_owned());
            vec![repr(p.as_deref().unwrap_or(""))]
        },
    },
    Spec {
        name: "io-threads",
        aliases: &[],
        mutable: false,
        apply: |c, a| {
            c.io_threads = parse_bounded(one(a)?, false, 0, 128)? as u32;
            Ok(())
        },
        get: |c| c.io_threads.to_string(),
        rewrite: |c| vec![c.io_threads.to_string()],
    },
    Spec {
        name: "hz",
        aliases: &[],
        mutable: true,
        apply: |c, a| {
            // Valkey accepts any int and clamps, so old configs with hz 1000 load.
            let v = parse_bounded(one(a)?, false, 0, I32_MAX)?;
            c.hz = v.clamp(1, 500) as u32;
            Ok(())
        },
        get: |c| c.hz.to_string(),
        rewrite: |c| vec![c.hz.to_string()],
    },
    num_spec!(
        "min-replicas-to-write",
        min_replicas_to_write,
        u32,
        0,
        I32_MAX,
        false,
        true,
        ["min-slaves-to-write"]
    ),
    num_spec!(
        "min-replicas-max-lag",
        min_replicas_max_lag,
        u32,
        0,
        I32_MAX,
        false,
        true,
        ["min-slaves-max-lag"]
    ),
    bool_spec!(
        "replica-ack-before-reply",
        replica_ack_before_reply,
        true,
        []
    ),
    num_spec!(
        "repl-backlog-size",
        repl_backlog_size,
        u64,
        1,
        I64_MAX,
        true,
        false,
        []
    ),
    Spec {
        name: "replicaof",
        aliases: &["slaveof"],
        mutable: false,
        apply: |c, a| {
            let [host, port] = a else {
                return Err(WRONG_ARGS.to_string());
            };
            if host.eq_ignore_ascii_case("no") && port.eq_ignore_ascii_case("one") {
                c.replicaof = None;
                return Ok(());
            }
            if host.is_empty() {
                return Err("Invalid master host".to_string());
            }
            let port = parse_int(port)
                .ok()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| "Invalid master port".to_string())?;
            c.replicaof = Some((host.clone(), port));
            Ok(())
        },
        get: |c| match &c.replicaof {
            Some((h, p)) => format!("{h} {p}"),
            None => String::new(),
        },
        rewrite: |c| match &c.replicaof {
            Some((h, p)) => vec![format!("{} {p}", quote_if_needed(h))],
            None => Vec::new(),
        },
    },
    num_spec!(
        "storage-block-cache-size",
        storage_block_cache_size,
        u64,
        MB,
        I64_MAX,
        true,
        false,
        []
    ),
    num_spec!(
        "storage-write-buffer-size",
        storage_write_buffer_size,
        u64,
        MB,
        I64_MAX,
        true,
        false,
        []
    ),
    Spec {
        name: "storage-slots-per-family",
        aliases: &[],
        mutable: false,
        apply: |c, a| {
            const MSG: &str = "argument must be a power of two between 16 and 16384";
            let v = parse_int(one(a)?).map_err(|_| MSG.to_string())?;
            match u16::try_from(v) {
                Ok(v) if (16..=16384).contains(&v) && v.is_power_of_two() => {
                    c.storage_slots_per_family = v;
                    Ok(())
                }
                _ => Err(MSG.to_string()),
            }
        },
        get: |c| c.storage_slots_per_family.to_string(),
        rewrite: |c| vec![c.storage_slots_per_family.to_string()],
    },
];

/// What a directive name resolves to.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    Typed(&'static Spec),
    NoEffect(&'static NoEffect),
    /// Accepted through [`NO_EFFECT_FAMILIES`]; keyed by its own name.
    Family,
}

/// Resolves a lower-cased directive name (or alias). Typed directives win over
/// families, so `repl-backlog-size` is never swallowed by `repl-*`.
pub(crate) fn lookup(name: &str) -> Option<Target> {
    if let Some(s) = specs().find(|s| s.name == name || s.aliases.contains(&name)) {
        return Some(Target::Typed(s));
    }
    if let Some(n) = NO_EFFECT
        .iter()
        .find(|n| n.name == name || n.aliases.contains(&name))
    {
        return Some(Target::NoEffect(n));
    }
    NO_EFFECT_FAMILIES
        .iter()
        .any(|f| crate::glob::glob_match(f.as_bytes(), name.as_bytes(), false))
        .then_some(Target::Family)
}

#[cfg(test)]
mod tests;

//! Valkey directives that rockslot accepts for compatibility but ignores:
//! their table (with Valkey's defaults and value syntax), the name families
//! accepted wholesale, and the string store CONFIG GET/SET/REWRITE read.
//!
//! Nothing here may influence behaviour; values are only validated enough to
//! answer CONFIG GET the way Valkey would. Loading one produces a warning.

use std::collections::BTreeMap;

use super::lex::{one, parse_bool, parse_int, parse_memory, quote_if_needed, yes_no, WRONG_ARGS};

/// Value syntax of a no-effect directive: validated and normalised so CONFIG
/// GET answers the way Valkey would, even though nothing reads the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NeKind {
    Bool,
    Int,
    Mem,
    /// Exactly one opaque argument.
    Str,
    /// One or more opaque arguments; CONFIG SET splits its value on spaces.
    Args,
    /// `save`: pairs of integers, or `""` for none.
    Save,
}

pub(crate) struct NoEffect {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub kind: NeKind,
    /// What CONFIG GET shows when the directive was never given.
    pub default: Option<&'static str>,
    /// Lines accumulate (`save`, `user`, `rename-command`) instead of replacing.
    pub repeatable: bool,
}

const fn ne(name: &'static str, kind: NeKind, default: &'static str) -> NoEffect {
    NoEffect {
        name,
        aliases: &[],
        kind,
        default: Some(default),
        repeatable: false,
    }
}

const fn ne_alias(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: NeKind,
    default: &'static str,
) -> NoEffect {
    NoEffect {
        name,
        aliases,
        kind,
        default: Some(default),
        repeatable: false,
    }
}

const fn ne_repeat(name: &'static str, kind: NeKind, default: Option<&'static str>) -> NoEffect {
    NoEffect {
        name,
        aliases: &[],
        kind,
        default,
        repeatable: true,
    }
}

use NeKind::{Args, Bool, Int, Mem, Save, Str};

/// Valkey directives accepted with a warning. Defaults are Valkey 8's, so
/// tools probing e.g. `CONFIG GET save` get a familiar answer.
pub(crate) static NO_EFFECT: &[NoEffect] = &[
    ne_repeat("save", Save, Some("3600 1 300 100 60 10000")),
    ne("appendonly", Bool, "no"),
    ne("appendfilename", Str, "appendonly.aof"),
    ne("appenddirname", Str, "appendonlydir"),
    ne("daemonize", Bool, "no"),
    ne("supervised", Str, "no"),
    ne("protected-mode", Bool, "yes"),
    ne("tcp-backlog", Int, "511"),
    ne("always-show-logo", Bool, "no"),
    ne("rdbcompression", Bool, "yes"),
    ne("rdbchecksum", Bool, "yes"),
    ne("dbfilename", Str, "dump.rdb"),
    ne("rdb-save-incremental-fsync", Bool, "yes"),
    ne("stop-writes-on-bgsave-error", Bool, "yes"),
    ne("lazyfree-lazy-eviction", Bool, "yes"),
    ne("lazyfree-lazy-expire", Bool, "yes"),
    ne("lazyfree-lazy-server-del", Bool, "yes"),
    ne("lazyfree-lazy-user-del", Bool, "yes"),
    ne("lazyfree-lazy-user-flush", Bool, "yes"),
    ne("maxmemory", Mem, "0"),
    ne("maxmemory-policy", Str, "noeviction"),
    ne("maxmemory-samples", Int, "5"),
    ne("list-compress-depth", Int, "0"),
    ne("stream-node-max-bytes", Mem, "4096"),
    ne("stream-node-max-entries", Int, "100"),
    ne("activerehashing", Bool, "yes"),
    ne("activedefrag", Bool, "no"),
    ne("active-expire-effort", Int, "1"),
    ne("dynamic-hz", Bool, "yes"),
    ne("aof-use-rdb-preamble", Bool, "yes"),
    ne("aof-load-truncated", Bool, "yes"),
    ne("aof-timestamp-enabled", Bool, "no"),
    ne("aof-rewrite-incremental-fsync", Bool, "yes"),
    ne("no-appendfsync-on-rewrite", Bool, "no"),
    ne("auto-aof-rewrite-percentage", Int, "100"),
    ne("auto-aof-rewrite-min-size", Mem, "67108864"),
    ne_alias(
        "replica-serve-stale-data",
        &["slave-serve-stale-data"],
        Bool,
        "yes",
    ),
    ne_alias("replica-read-only", &["slave-read-only"], Bool, "yes"),
    ne_alias("replica-priority", &["slave-priority"], Int, "100"),
    ne_alias("replica-lazy-flush", &["slave-lazy-flush"], Bool, "yes"),
    ne("replica-ignore-maxmemory", Bool, "yes"),
    ne("repl-diskless-sync", Bool, "yes"),
    ne("repl-diskless-sync-delay", Int, "5"),
    ne("repl-diskless-sync-max-replicas", Int, "0"),
    ne("repl-diskless-load", Str, "disabled"),
    ne("repl-timeout", Int, "60"),
    ne_alias(
        "repl-ping-replica-period",
        &["repl-ping-slave-period"],
        Int,
        "10",
    ),
    ne("repl-disable-tcp-nodelay", Bool, "no"),
    ne("repl-backlog-ttl", Int, "3600"),
    ne("cluster-announce-port", Int, "0"),
    ne("cluster-announce-bus-port", Int, "0"),
    ne("cluster-announce-tls-port", Int, "0"),
    ne("cluster-announce-hostname", Str, ""),
    ne("cluster-announce-human-nodename", Str, ""),
    ne("cluster-preferred-endpoint-type", Str, "ip"),
    ne("cluster-allow-pubsubshard-when-down", Bool, "yes"),
    ne("cluster-link-sendbuf-limit", Mem, "0"),
    ne("enable-debug-command", Str, "no"),
    ne("enable-protected-configs", Str, "no"),
    ne("enable-module-command", Str, "no"),
    ne("jemalloc-bg-thread", Bool, "yes"),
    ne("oom-score-adj", Str, "no"),
    ne("oom-score-adj-values", Args, "0 200 800"),
    ne("set-proc-title", Bool, "yes"),
    ne(
        "proc-title-template",
        Str,
        "{title} {listen-addr} {server-mode}",
    ),
    ne("locale-collate", Str, ""),
    ne("unixsocket", Str, ""),
    ne("unixsocketperm", Str, "0"),
    ne("aclfile", Str, ""),
    ne("acllog-max-len", Int, "128"),
    ne("acl-pubsub-default", Str, "resetchannels"),
    ne("syslog-enabled", Bool, "no"),
    ne("syslog-ident", Str, "redis"),
    ne("syslog-facility", Str, "local0"),
    ne("crash-log-enabled", Bool, "yes"),
    ne("crash-memcheck-enabled", Bool, "yes"),
    ne("lfu-log-factor", Int, "10"),
    ne("lfu-decay-time", Int, "1"),
    ne("shutdown-timeout", Int, "10"),
    ne("shutdown-on-sigint", Args, "default"),
    ne("shutdown-on-sigterm", Args, "default"),
    ne_repeat("user", Args, None),
    ne_repeat("rename-command", Args, None),
];

/// Families of Valkey directives that are accepted (with a warning) without
/// being listed one by one; their values are kept verbatim.
pub(crate) const NO_EFFECT_FAMILIES: &[&str] = &[
    "lazyfree-*",
    "aof-*",
    "auto-aof-rewrite-*",
    "tls-*",
    "repl-*",
    "slowlog-*",
    "cluster-announce-*",
    "oom-score-adj*",
    "unixsocket*",
    "*-max-*-entries",
    "*-max-*-value",
    "active-defrag-*",
    "replica-announce*",
    "slave-announce*",
    "io-threads-*",
    "latency-*",
];

/// Stored values of no-effect directives: canonical name -> config lines, each
/// line its arguments. Only directives actually given are present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Extras {
    pub values: BTreeMap<String, Vec<Vec<String>>>,
}

/// Normalises the arguments of one no-effect line, Valkey-style.
pub(crate) fn normalize_no_effect(kind: NeKind, args: &[String]) -> Result<Vec<String>, String> {
    match kind {
        NeKind::Bool => Ok(vec![yes_no(parse_bool(one(args)?)?)]),
        NeKind::Int => Ok(vec![parse_int(one(args)?)?.to_string()]),
        NeKind::Mem => match parse_memory(one(args)?) {
            Some(v) => Ok(vec![v.to_string()]),
            None => Err("argument must be a memory value".to_string()),
        },
        NeKind::Str => Ok(vec![one(args)?.to_string()]),
        NeKind::Args if args.is_empty() => Err(WRONG_ARGS.to_string()),
        NeKind::Args => Ok(args.to_vec()),
        NeKind::Save => {
            if args.len() == 1 && args[0].is_empty() {
                return Ok(args.to_vec());
            }
            if args.is_empty() || args.len() % 2 != 0 {
                return Err("Invalid save parameters".to_string());
            }
            args.iter()
                .map(|a| match parse_int(a) {
                    Ok(v) if v >= 0 => Ok(v.to_string()),
                    _ => Err("Invalid save parameters".to_string()),
                })
                .collect()
        }
    }
}

fn is_clear_marker(line: &[String]) -> bool {
    line.len() == 1 && line[0].is_empty()
}

impl Extras {
    /// Stores one line. `first_in_this_load` is true for the first line of a
    /// repeatable directive, which replaces the defaults instead of adding.
    pub fn store(
        &mut self,
        key: &str,
        repeatable: bool,
        first_in_this_load: bool,
        line: Vec<String>,
    ) {
        let lines = self.values.entry(key.to_string()).or_default();
        if !repeatable || first_in_this_load || is_clear_marker(&line) {
            lines.clear();
        } else if lines.len() == 1 && is_clear_marker(&lines[0]) {
            // `save ""` followed by `save 900 1`: the marker only meant "none".
            lines.clear();
        }
        lines.push(line);
    }

    /// CONFIG GET rendering: all arguments of all lines joined by spaces.
    pub fn get(&self, key: &str, default: Option<&str>) -> Option<String> {
        match self.values.get(key) {
            Some(lines) => Some(
                lines
                    .iter()
                    .flat_map(|l| l.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            None => default.map(str::to_string),
        }
    }

    /// CONFIG REWRITE rendering: one line tail per stored line.
    pub fn rewrite(&self, key: &str) -> Vec<String> {
        self.values
            .get(key)
            .map(|lines| {
                lines
                    .iter()
                    .map(|l| {
                        l.iter()
                            .map(|a| quote_if_needed(a))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Splits a CONFIG SET value into arguments the way Valkey does for its
/// multi-argument configs (on spaces, dropping empty pieces).
pub(crate) fn set_value_args(kind: NeKind, value: &str) -> Vec<String> {
    match kind {
        NeKind::Args | NeKind::Save => {
            let parts: Vec<String> = value
                .split(' ')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            if parts.is_empty() {
                vec![String::new()]
            } else {
                parts
            }
        }
        _ => vec![value.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeatable_store() {
        let mut e = Extras::default();
        let l = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        e.store("save", true, true, l(&["900", "1"]));
        e.store("save", true, false, l(&["300", "10"]));
        assert_eq!(e.get("save", None).unwrap(), "900 1 300 10");
        e.store("save", true, false, l(&[""]));
        assert_eq!(e.get("save", None).unwrap(), "");
        assert_eq!(e.rewrite("save"), ["\"\""]);
        e.store("save", true, false, l(&["60", "5"]));
        assert_eq!(e.get("save", None).unwrap(), "60 5");
        assert_eq!(
            normalize_no_effect(Save, &l(&["1"])).unwrap_err(),
            "Invalid save parameters"
        );
        assert_eq!(normalize_no_effect(Mem, &l(&["1kb"])).unwrap(), ["1024"]);
        assert_eq!(set_value_args(Save, ""), [""]);
        assert_eq!(
            set_value_args(Save, "900 1  300 10"),
            ["900", "1", "300", "10"]
        );
    }
}

//! `rockslot-cli --cluster <verb> …`: the cluster manager, following valkey-cli's
//! `--cluster` behaviour, command sequences and output.
//!
//! Owns: `--cluster-*` option parsing, verb dispatch, the coloured `>>>`/`[OK]`/`[ERR]` log
//! lines. `nodes` parses `CLUSTER NODES` (pure); `manager` holds the loaded cluster model
//! (nodes, connections, check, wait-for-join) that every verb builds on; `create` and `verbs`
//! implement the verbs.
//!
//! Must not: link server modules (it talks to nodes over TCP only, like valkey-cli), or send
//! anything to a node that valkey-cli would not send for the same verb, since the server side
//! is verified against the real tool's sequences.

macro_rules! log_info { ($($t:tt)*) => { $crate::cli::cluster::log($crate::cli::cluster::Level::Info, format_args!($($t)*)) } }
macro_rules! log_ok { ($($t:tt)*) => { $crate::cli::cluster::log($crate::cli::cluster::Level::Ok, format_args!($($t)*)) } }
macro_rules! log_warn { ($($t:tt)*) => { $crate::cli::cluster::log($crate::cli::cluster::Level::Warn, format_args!($($t)*)) } }
macro_rules! log_err { ($($t:tt)*) => { $crate::cli::cluster::log($crate::cli::cluster::Level::Err, format_args!($($t)*)) } }

mod backup;
mod create;
mod import_rdb;
pub mod manager;
pub mod nodes;
mod reshard;
mod verbs;

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;

use super::Args;
pub use manager::{Auth, ClusterNode, Manager};

/// Options of the cluster manager, with valkey-cli's defaults. Verbs that are not implemented
/// yet still get their options parsed here, so the option table stays in one place.
#[derive(Debug, Clone)]
pub struct ClusterOpts {
    pub verb: String,
    /// Positional arguments after the verb.
    pub args: Vec<String>,
    pub auth: Auth,
    pub yes: bool,
    pub replicas: usize,
    /// `--cluster-slave` / `--cluster-replica`.
    pub replica: bool,
    /// `--cluster-master-id` / `--cluster-primary-id`.
    pub master_id: Option<String>,
    pub only_masters: bool,
    pub only_replicas: bool,
    pub from: Option<String>,
    pub to: Option<String>,
    pub slots: Option<usize>,
    /// MIGRATE timeout in ms (`--cluster-timeout`).
    pub timeout: u64,
    pub pipeline: usize,
    pub weights: Vec<String>,
    pub use_empty_masters: bool,
    pub threshold: f64,
    pub simulate: bool,
    pub replace: bool,
    pub copy: bool,
    pub search_multiple_owners: bool,
    pub fix_with_unreachable_masters: bool,
    pub from_user: Option<String>,
    pub from_pass: Option<String>,
    pub from_askpass: bool,
    /// backup: `--out DIR`; restore: `--from DIR`.
    pub out: Option<String>,
    pub from_dir: Option<String>,
    /// backup/restore: `--slots a-b,c-d` (repeatable).
    pub slot_spec: Vec<String>,
}

impl ClusterOpts {
    fn new(verb: &str, auth: Auth) -> ClusterOpts {
        ClusterOpts {
            verb: verb.to_string(),
            args: Vec::new(),
            auth,
            yes: false,
            replicas: 0,
            replica: false,
            master_id: None,
            only_masters: false,
            only_replicas: false,
            from: None,
            to: None,
            slots: None,
            timeout: 60_000,
            pipeline: 10,
            weights: Vec::new(),
            use_empty_masters: false,
            threshold: 2.0,
            simulate: false,
            replace: false,
            copy: false,
            search_multiple_owners: false,
            fix_with_unreachable_masters: false,
            from_user: None,
            from_pass: None,
            from_askpass: false,
            out: None,
            from_dir: None,
            slot_spec: Vec::new(),
        }
    }

    /// Splits the words after `--cluster <verb>` into positional arguments and options.
    /// Options may sit anywhere after the verb (as with valkey-cli); `-a/--pass/--user` are
    /// accepted there too, because clap hands everything after the first positional to us.
    pub fn parse(verb: &str, words: &[String], auth: Auth) -> anyhow::Result<ClusterOpts> {
        let mut o = ClusterOpts::new(verb, auth);
        let mut i = 0;
        while i < words.len() {
            let w = words[i].as_str();
            let next = words.get(i + 1);
            let mut value = || -> anyhow::Result<String> {
                i += 1;
                match next {
                    Some(v) => Ok(v.clone()),
                    None => bail!("Unrecognized option or bad number of args for: '{w}'"),
                }
            };
            match w {
                "-a" | "--pass" => o.auth.pass = Some(value()?),
                "--user" => o.auth.user = Some(value()?),
                "--no-auth-warning" => o.auth.no_warning = true,
                "--cluster-yes" => o.yes = true,
                "--cluster-replicas" => o.replicas = number(w, &value()?)?,
                "--cluster-slave" | "--cluster-replica" => o.replica = true,
                "--cluster-master-id" | "--cluster-primary-id" => o.master_id = Some(value()?),
                "--cluster-only-masters" | "--cluster-only-primaries" => o.only_masters = true,
                "--cluster-only-replicas" => o.only_replicas = true,
                "--cluster-from" => o.from = Some(value()?),
                "--cluster-to" => o.to = Some(value()?),
                "--cluster-slots" => o.slots = Some(number(w, &value()?)?),
                "--cluster-timeout" => o.timeout = number(w, &value()?)?,
                "--cluster-pipeline" => o.pipeline = number(w, &value()?)?,
                "--cluster-threshold" => o.threshold = number(w, &value()?)?,
                "--cluster-weight" => {
                    // Takes every following word up to the next option, as valkey-cli does.
                    while let Some(v) = words.get(i + 1).filter(|v| !v.starts_with("--")) {
                        o.weights.push(v.clone());
                        i += 1;
                    }
                }
                "--cluster-use-empty-masters" | "--cluster-use-empty-primaries" => {
                    o.use_empty_masters = true
                }
                "--cluster-simulate" => o.simulate = true,
                "--cluster-replace" | "--replace" => o.replace = true,
                "--out" => o.out = Some(value()?),
                "--from" => o.from_dir = Some(value()?),
                "--slots" => o.slot_spec.push(value()?),
                "--cluster-copy" => o.copy = true,
                "--cluster-search-multiple-owners" => o.search_multiple_owners = true,
                "--cluster-fix-with-unreachable-masters"
                | "--cluster-fix-with-unreachable-primaries" => {
                    o.fix_with_unreachable_masters = true
                }
                "--cluster-from-user" => o.from_user = Some(value()?),
                "--cluster-from-pass" => o.from_pass = Some(value()?),
                "--cluster-from-askpass" => o.from_askpass = true,
                _ if w.starts_with("--cluster-") => {
                    bail!("Unrecognized option or bad number of args for: '{w}'")
                }
                _ => o.args.push(w.to_string()),
            }
            i += 1;
        }
        Ok(o)
    }
}

fn number<T: std::str::FromStr>(opt: &str, v: &str) -> anyhow::Result<T> {
    v.parse()
        .map_err(|_| anyhow::anyhow!("Invalid value for {opt}: '{v}'"))
}

type VerbFn = fn(&ClusterOpts) -> anyhow::Result<bool>;

/// (name, arity as valkey-cli counts it: n = exactly n, -n = at least n, handler).
const VERBS: &[(&str, i32, VerbFn)] = &[
    ("create", -2, create::run),
    ("check", -1, verbs::check),
    ("info", -1, verbs::info),
    ("add-node", -2, verbs::add_node),
    ("del-node", 2, verbs::del_node),
    ("call", -2, verbs::call),
    ("reshard", -1, reshard::reshard),
    ("backup", -1, backup::backup),
    ("restore", -1, backup::restore),
    ("rebalance", -1, reshard::rebalance),
    ("import-rdb", 2, import_rdb::import_rdb),
    ("help", 0, help),
];

/// Runs `--cluster <verb>`; returns the exit code (0 ok, 1 on any error, as valkey-cli).
pub fn run(args: &Args, verb: &str) -> anyhow::Result<i32> {
    let auth = Auth {
        user: args.user.clone(),
        pass: args.pass.clone(),
        no_warning: args.no_auth_warning,
    };
    let opts = match ClusterOpts::parse(verb, &args.command, auth) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    // The caller already warned when -a came before --cluster.
    if args.pass.is_none() && opts.auth.pass.is_some() && !opts.auth.no_warning {
        eprintln!("Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.");
    }
    let term = std::env::var("TERM").unwrap_or_default();
    COLOR.store(
        term.contains("xterm") && std::io::stdout().is_terminal(),
        Ordering::Relaxed,
    );
    let Some(&(_, arity, proc)) = VERBS.iter().find(|(n, _, _)| *n == verb) else {
        eprintln!("Unknown --cluster subcommand");
        return Ok(1);
    };
    let argc = opts.args.len() as i32;
    if (arity > 0 && argc != arity) || (arity < 0 && argc < -arity) {
        eprintln!("[ERR] Wrong number of arguments for specified --cluster sub command");
        return Ok(1);
    }
    let ok = proc(&opts)?;
    std::io::stdout().flush()?;
    Ok(if ok { 0 } else { 1 })
}

fn help(_: &ClusterOpts) -> anyhow::Result<bool> {
    println!(
        "Cluster Manager Commands:
  create         host1:port1 ... hostN:portN
                 --cluster-replicas <arg>
  check          <host:port> or <host> <port> - separated by either colon or space
  info           <host:port> or <host> <port> - separated by either colon or space
  add-node       new_host:new_port existing_host:existing_port
                 --cluster-slave
                 --cluster-master-id <arg>
  del-node       host:port node_id
  call           host:port command arg arg .. arg
                 --cluster-only-masters
                 --cluster-only-replicas
  import-rdb     host:port file.rdb
                 --cluster-replace
  help

For check, del-node, info, call you can specify the host and port of any working node in the cluster.

Cluster Manager Options:
  --cluster-yes  Automatic yes to cluster commands prompts
"
    );
    Ok(true)
}

/// Log levels of valkey-cli's cluster manager (bold, green, yellow, red on a colour terminal).
#[derive(Clone, Copy)]
pub enum Level {
    Info,
    Ok,
    Warn,
    Err,
}

static COLOR: AtomicBool = AtomicBool::new(false);

/// Prints a cluster-manager message to stdout (valkey-cli logs even errors to stdout).
pub fn log(level: Level, msg: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if COLOR.load(Ordering::Relaxed) {
        let code = match level {
            Level::Info => "29;1",
            Level::Ok => "32;1",
            Level::Warn => "33;1",
            Level::Err => "31;1",
        };
        let _ = write!(out, "\x1b[{code}m{msg}\x1b[0m");
    } else {
        let _ = out.write_fmt(msg);
    }
    let _ = out.flush();
}

/// valkey-cli's `confirmWithYes`: `--cluster-yes` answers for the user unless `ignore_force`.
pub fn confirm_with_yes(msg: &str, yes: bool, ignore_force: bool) -> bool {
    if yes && !ignore_force {
        return true;
    }
    print!("{msg} (type 'yes' to accept): ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(n) if n > 0 => line.trim_end_matches(['\r', '\n']) == "yes",
        _ => false,
    }
}

/// `host:port` (or `host port`) of a verb's first arguments, as valkey-cli's
/// `getClusterHostFromCmdArgs`.
pub fn host_port(args: &[String]) -> Option<(String, u16)> {
    let (host, port) = match args {
        [addr] => {
            let (h, p, _) = nodes::parse_address(addr)?;
            (h, p)
        }
        [h, p, ..] => (h.clone(), u16::try_from(nodes::atoi(p)).ok()?),
        [] => return None,
    };
    (!host.is_empty() && port != 0).then_some((host, port))
}

pub const INVALID_HOST_ARG: &str = "[ERR] Invalid arguments: you need to pass either a valid \
     address (ie. 120.0.0.1:7000) or space separated IP and port (ie. 120.0.0.1 7000)";

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn options_anywhere_after_the_verb() {
        let o = ClusterOpts::parse(
            "create",
            &words("127.0.0.1:7000 --cluster-replicas 1 127.0.0.1:7001 --cluster-yes -a pw"),
            Auth::default(),
        )
        .unwrap();
        assert_eq!(o.args, vec!["127.0.0.1:7000", "127.0.0.1:7001"]);
        assert_eq!(o.replicas, 1);
        assert!(o.yes);
        assert_eq!(o.auth.pass.as_deref(), Some("pw"));
    }

    #[test]
    fn aliases_and_errors() {
        let o = ClusterOpts::parse(
            "add-node",
            &words("a:1 b:2 --cluster-replica --cluster-primary-id ABC"),
            Auth::default(),
        )
        .unwrap();
        assert!(o.replica);
        assert_eq!(o.master_id.as_deref(), Some("ABC"));
        assert!(ClusterOpts::parse("x", &words("--cluster-bogus"), Auth::default()).is_err());
        assert!(ClusterOpts::parse("x", &words("--cluster-replicas"), Auth::default()).is_err());
        let o = ClusterOpts::parse(
            "rebalance",
            &words("a:1 --cluster-weight aa=1 bb=2 --cluster-simulate"),
            Auth::default(),
        )
        .unwrap();
        assert_eq!(o.weights, vec!["aa=1", "bb=2"]);
        assert!(o.simulate);
    }

    #[test]
    fn host_args() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            host_port(&s(&["127.0.0.1:7000"])),
            Some(("127.0.0.1".into(), 7000))
        );
        assert_eq!(host_port(&s(&["h", "7001"])), Some(("h".into(), 7001)));
        assert_eq!(host_port(&s(&["h"])), None);
    }
}

//! The command table and the handler contract: names, arity, flags, key positions and
//! handlers, with Valkey's exact error wording. `COMMAND`, `COMMAND INFO`, `COMMAND GETKEYS`
//! are generated from the same table.
//!
//! Owns: [`CommandSpec`], [`lookup`], [`resolve`], [`execute`], the handler contract ([`Ctx`],
//! [`ClientState`], [`After`]), argument parsing, handlers.
//! Must not: touch sockets or storage directly; handlers return a [`Reply`] and talk to the
//! keyspace, and side effects on the connection (close, block, MIGRATE, shutdown) go through
//! [`ClientState::after`]. Bodies that may run long go through [`long_running`].

mod acl_cmds;
mod args;
mod bitmaps;
mod blocking_cmds;
mod client;
mod cluster_cmds;
mod commandlog_cmds;
mod dispatch;
mod encodings;
mod error;
mod flags;
mod functions;
mod geo;
mod geohash;
mod hash_ttl;
mod hashes;
mod hll_cmds;
pub mod info;
mod introspect;
mod key_access;
mod keymiss;
mod keys;
mod latency_cmds;
mod latency_report;
mod lcs;
mod lists;
mod long_double;
mod migrate;
mod migration_cmds;
mod notify;
mod pubsub_cmds;
mod replication_cmds;
mod scripting;
mod server_cmds;
mod sets;
mod sort;
pub mod stats;
mod stream_groups;
mod stream_info;
mod streams;
mod strings;
mod table;
#[cfg(test)]
mod table_check;
mod tracking_cmds;
mod transaction;
mod zranges;
mod zsets;

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

pub use client::{After, ClientState};
pub use dispatch::{dispatch, first_key_slot, log_command};
pub use error::{CmdError, CmdResult};
pub use flags::CmdFlags;
pub use scripting::leave_worker;
pub use table::TABLE;

use crate::keyspace::Pending;
use crate::node::Node;
use crate::resp::Reply;

/// Runs a command body that may take long (a walk over the keyspace or a huge collection, DEBUG
/// SLEEP) without stalling the other tasks of this runtime worker: on the multi-threaded
/// runtime the worker hands its queue to another thread first. The caller's client still
/// waits for the reply, as in Valkey.
pub(crate) fn long_running<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The refusal Valkey gives while it cannot persist (its AOF wording; rockslot's log is the
/// RocksDB WAL).
pub fn disk_error_line(reason: &str) -> String {
    format!("MISCONF Errors writing to the AOF file: {reason}")
}

/// Handler context: the node, the calling client, and its write scope (key reads and writes
/// go through `ks` so a pipeline sees its own staged writes).
pub struct Ctx<'a, 'k> {
    pub node: &'a Node,
    pub client: &'a mut ClientState,
    pub ks: &'a mut Pending<'k>,
}

pub type Handler = fn(&mut Ctx, &[Bytes]) -> CmdResult;

/// One command or subcommand.
pub struct CommandSpec {
    /// Lowercase name; subcommands are named by their own word (`setname`).
    pub name: &'static str,
    /// Valkey arity: positive = exact argument count, negative = at least -arity.
    pub arity: i32,
    pub flags: CmdFlags,
    /// How keys are found when not by first/last/step (Valkey's "movablekeys").
    pub movable: Option<MovableKeys>,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub acl: &'static str,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub handler: Option<Handler>,
    pub subcommands: &'static [CommandSpec],
}

/// Key positions Valkey finds from the arguments themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovableKeys {
    /// A key count at `numkeys`, then that many keys; `dest`: a fixed key before the count
    /// (ZUNIONSTORE's destination).
    Numkeys { dest: Option<usize>, numkeys: usize },
    /// MIGRATE: the key argument, or every argument after `KEYS` when it is empty.
    Migrate,
    /// SORT: the sorted key and the `STORE` destination.
    Sort,
    /// GEORADIUS(BYMEMBER): the key and the `STORE`/`STOREDIST` destination.
    GeoRadius,
    /// XREAD/XREADGROUP: after the first `STREAMS` at or past `from`, the first half of the
    /// remaining arguments.
    Streams { from: usize },
}

impl MovableKeys {
    fn positions(self, args: &[Bytes]) -> Vec<usize> {
        match self {
            MovableKeys::Migrate => migrate::key_positions(args),
            MovableKeys::Sort => sort::key_positions(args),
            MovableKeys::GeoRadius => geo::radius_key_positions(args),
            MovableKeys::Streams { from } => {
                // Walk the options as XREAD/XREADGROUP parse them: a group or consumer may
                // be named "streams".
                let mut i = from;
                while i < args.len() {
                    let a = &args[i];
                    if args::is(a, "streams") {
                        let at = i + 1;
                        let n = (args.len() - at) / 2;
                        return (at..at + n).collect();
                    }
                    i += if args::is(a, "group") {
                        3
                    } else if args::is(a, "count") || args::is(a, "block") {
                        2
                    } else if args::is(a, "noack") {
                        1
                    } else {
                        return Vec::new();
                    };
                }
                Vec::new()
            }
            MovableKeys::Numkeys { dest, numkeys } => {
                let n = args
                    .get(numkeys)
                    .and_then(|a| args::parse_i64(a))
                    .unwrap_or(0)
                    .max(0) as usize;
                let first = numkeys + 1;
                dest.into_iter()
                    .chain(first..(first + n).min(args.len()))
                    .collect()
            }
        }
    }
}

impl CommandSpec {
    pub fn has_flag(&self, f: CmdFlags) -> bool {
        self.flags.contains(f)
    }
    pub fn is_write(&self) -> bool {
        self.has_flag(CmdFlags::WRITE)
    }
    /// Whether the command names keys at all (fixed positions or movable).
    pub fn takes_keys(&self) -> bool {
        self.first_key > 0 || self.movable.is_some()
    }
    fn arity_ok(&self, n: usize) -> bool {
        let n = n as i32;
        if self.arity >= 0 {
            n == self.arity
        } else {
            n >= -self.arity
        }
    }
    /// Key argument positions for `args` (argv including the name).
    pub fn key_positions(&self, args: &[Bytes]) -> Vec<usize> {
        if let Some(m) = self.movable {
            return m.positions(args);
        }
        if self.first_key <= 0 {
            return Vec::new();
        }
        let n = args.len() as i32;
        let last = if self.last_key < 0 {
            n + self.last_key
        } else {
            self.last_key.min(n - 1)
        };
        let mut out = Vec::new();
        let mut i = self.first_key;
        while i <= last && i < n {
            out.push(i as usize);
            i += self.step.max(1);
        }
        out
    }
}

fn index() -> &'static HashMap<String, &'static CommandSpec> {
    static INDEX: OnceLock<HashMap<String, &'static CommandSpec>> = OnceLock::new();
    INDEX.get_or_init(|| TABLE.iter().map(|c| (c.name.to_string(), c)).collect())
}

pub use acl_cmds::install_acl_catalog;

/// Every top-level command row (subcommands hang under their container).
pub fn all_commands() -> &'static [CommandSpec] {
    table::TABLE
}

/// Finds a top-level command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    index().get(lower).copied()
}

/// Resolves `args` to the command (or subcommand) that will run, checking existence and arity.
pub fn resolve(args: &[Bytes]) -> Result<&'static CommandSpec, CmdError> {
    let Some(cmd) = lookup(&args[0]) else {
        return Err(CmdError::UnknownCommand(args.to_vec()));
    };
    if !cmd.arity_ok(args.len()) {
        return Err(CmdError::WrongArity(cmd.name.to_string()));
    }
    if cmd.subcommands.is_empty() || cmd.handler.is_some() && args.len() < 2 {
        return Ok(cmd);
    }
    let sub = &args[1];
    match cmd
        .subcommands
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(sub))
    {
        Some(s) if s.arity_ok(args.len()) => Ok(s),
        Some(s) => Err(CmdError::WrongArity(format!("{}|{}", cmd.name, s.name))),
        None if cmd.handler.is_some() => Ok(cmd),
        None => Err(CmdError::UnknownSubcommand(
            String::from_utf8_lossy(sub).into_owned(),
            cmd.name.to_ascii_uppercase(),
        )),
    }
}

/// Runs a resolved command.
pub fn execute(spec: &'static CommandSpec, ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(h) = spec.handler else {
        return Reply::err(format!(
            "ERR unknown subcommand '{}'.",
            String::from_utf8_lossy(&args[1])
        ));
    };
    ctx.ks.select(ctx.client.db);
    match h(ctx, args) {
        Ok(r) => r,
        Err(e) => {
            if let CmdError::Keyspace(ref ke) = e {
                tracing::error!("command {} failed: {ke}", spec.name);
            }
            Reply::Error(e.to_string())
        }
    }
}

#[cfg(test)]
mod stream_key_tests {
    use bytes::Bytes;

    use super::MovableKeys;

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    /// The keys of XREAD/XREADGROUP follow the STREAMS option, not the first argument that
    /// spells it (a consumer or group may be named "streams").
    #[test]
    fn stream_read_keys_follow_the_streams_option() {
        let read_group = MovableKeys::Streams { from: 1 };
        let a = args(&[
            "XREADGROUP",
            "COUNT",
            "1",
            "GROUP",
            "g",
            "streams",
            "STREAMS",
            "secret",
            ">",
        ]);
        assert_eq!(read_group.positions(&a), vec![7]);
        let a = args(&[
            "XREADGROUP",
            "GROUP",
            "streams",
            "c",
            "NOACK",
            "BLOCK",
            "0",
            "STREAMS",
            "a",
            "b",
            ">",
            ">",
        ]);
        assert_eq!(read_group.positions(&a), vec![8, 9]);
        let a = args(&["XREAD", "COUNT", "2", "STREAMS", "k", "0"]);
        assert_eq!(read_group.positions(&a), vec![4]);
        let a = args(&["XREAD", "BOGUS", "STREAMS", "k", "0"]);
        assert!(read_group.positions(&a).is_empty());
    }
}

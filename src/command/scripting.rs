//! EVAL, EVALSHA, their `_RO` forms and SCRIPT: the checks Valkey makes on a script's
//! arguments and on every command it calls, and the bridge from the Lua VM (`script`) to
//! command execution.
//!
//! A script runs in the connection's write scope with its declared keys locked and every
//! commit held until it ends, so its writes reach storage (and replicas) as one batch, as
//! Valkey's effects replication does; a script that fails half-way keeps what it wrote.
//! Must not: touch the socket or the VM's internals.

use bytes::Bytes;

use super::dispatch::execute;
use super::{CmdError, CmdFlags, CmdResult, Ctx};
use crate::keyspace::{key_slot, Pending};
use crate::node::Node;
use crate::resp::{Protocol, Reply};
use crate::script::{Contended, Host, Patience, Source};

/// Runs commands for a script on the calling client's connection.
struct ScriptHost<'c, 'a, 'k> {
    node: &'a Node,
    client: &'c mut super::ClientState,
    ks: &'c mut Pending<'k>,
    read_only: bool,
    /// The slot every key of the script must hash to (cluster mode): its declared keys', or
    /// the first key it touches.
    slot: Option<u16>,
    /// `#!lua flags=allow-cross-slot-keys`: undeclared keys may be in other local slots.
    cross_slot: bool,
    /// The declared keys, locked once the script holds the VM (never before: a script that
    /// waits for the VM must not hold key locks another script may wait for).
    declared: &'c [Bytes],
}

impl ScriptHost<'_, '_, '_> {
    fn lock_declared(&mut self) -> Result<(), String> {
        let keys: Vec<&[u8]> = self.declared.iter().map(|k| &k[..]).collect();
        self.ks
            .begin_atomic(&keys)
            .map_err(|e| format!("ERR storage: {e}"))
    }

    /// Valkey's checks before a script's command runs; the error line when refused.
    fn refuse(&mut self, spec: &'static super::CommandSpec, args: &[Bytes]) -> Option<String> {
        if spec.has_flag(CmdFlags::NOSCRIPT) {
            return Some("ERR This Redis command is not allowed from script".into());
        }
        if spec.is_write() {
            if self.read_only {
                return Some("ERR Write commands are not allowed from read-only scripts.".into());
            }
            if self.node.is_replica() {
                return Some("READONLY You can't write against a read only replica.".into());
            }
            if let Some(reason) = self.node.engine.write_error() {
                return Some(super::disk_error_line(&reason));
            }
        }
        let cluster = self.node.cluster.as_ref()?;
        let view = cluster.view();
        for p in spec.key_positions(args) {
            let slot = key_slot(&args[p]);
            let owner = view
                .slots
                .get(slot as usize)
                .copied()
                .flatten()
                .and_then(|o| view.nodes.get(o as usize))
                .map(|n| n.0);
            // A READONLY client's reads on a replica are served from its primary's slots.
            let mine = owner.is_some() && owner == view.myself
                || self.client.readonly
                    && !spec.is_write()
                    && view.role_replica_of.is_some()
                    && owner == view.role_replica_of;
            if !mine && !view.importing.contains_key(&slot) {
                return Some(
                    "ERR Script attempted to access a non local key in a cluster node".into(),
                );
            }
            match self.slot {
                _ if self.cross_slot => {}
                None => self.slot = Some(slot),
                Some(s) if s != slot => {
                    return Some(
                        "ERR Script attempted to access keys that do not hash to the same slot"
                            .into(),
                    )
                }
                Some(_) => {}
            }
        }
        None
    }
}

impl Host for ScriptHost<'_, '_, '_> {
    fn call(&mut self, args: Vec<Bytes>, resp3: bool) -> Reply {
        let spec = match super::resolve(&args) {
            Ok(s) => s,
            Err(CmdError::WrongArity(_)) => {
                return Reply::Error("ERR Wrong number of args calling command from script".into())
            }
            Err(_) => return Reply::Error("ERR Unknown command called from script".into()),
        };
        if let Some(e) = self.refuse(spec, &args) {
            return Reply::Error(e);
        }
        let write = spec.is_write();
        if let Err(d) = super::acl_cmds::check(self.node, self.client, spec, &args, write, "lua") {
            let msg = d.message(&self.client.session.name);
            return Reply::Error(format!("ERR ACL failure in script: {msg}"));
        }
        let proto = std::mem::replace(
            &mut self.client.protocol,
            if resp3 {
                Protocol::Resp3
            } else {
                Protocol::Resp2
            },
        );
        if spec.is_write() {
            self.node.scripts.note_write();
        }
        // A keyless command (FLUSHALL, DBSIZE, KEYS) sees the keyspace as a whole, as in EXEC:
        // what the script staged is committed first, and no key lock is held across it
        // (FLUSHALL takes every stripe).
        let keyless = !spec.takes_keys();
        if keyless {
            self.ks.end_atomic();
            if let Err(e) = self.ks.commit() {
                self.client.protocol = proto;
                return Reply::Error(format!("ERR storage: {e}"));
            }
        }
        let reply = execute(self.node, self.client, self.ks, spec, &args);
        self.client.protocol = proto;
        if keyless {
            if let Err(e) = self.lock_declared() {
                return Reply::Error(e);
            }
        }
        // Blocking commands answered at once (`in_exec`); one that needs the connection
        // afterwards (MIGRATE) cannot run here.
        match self.client.after.take() {
            None | Some(super::After::Block { .. }) => reply,
            Some(_) => Reply::Error(format!(
                "ERR '{}' cannot be called from a script in rockslot",
                spec.name
            )),
        }
    }

    fn begin(&mut self, flags: crate::script::ScriptFlags) -> Result<(), String> {
        if flags.no_cluster && self.node.cluster.is_some() {
            return Err("ERR Can not run script on cluster, 'no-cluster' flag is set.".into());
        }
        self.read_only |= flags.no_writes;
        self.cross_slot = flags.allow_cross_slot_keys;
        self.lock_declared()
    }

    fn may_run(&mut self, args: &[Bytes]) -> Option<bool> {
        let spec = super::resolve(args).ok()?;
        Some(super::acl_cmds::allowed(self.node, self.client, spec, args))
    }

    fn log(&mut self, level: i64, msg: &str) {
        match level {
            0 | 1 => tracing::debug!("{msg}"),
            2 => tracing::info!("{msg}"),
            _ => tracing::warn!("{msg}"),
        }
    }
}

/// How long a script inside MULTI/EXEC waits for another script before answering BUSY.
const TRANSACTION_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `f`, which may wait for or run a script: a long script must not hold up the other
/// tasks of its runtime worker (the cluster bus among them), so the runtime moves them to
/// another thread meanwhile.
pub(super) fn off_reactor<R>(f: impl FnOnce() -> R) -> R {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

pub(super) fn numkeys(args: &[Bytes]) -> Result<usize, CmdError> {
    let n = super::args::int(&args[2])?;
    if n < 0 {
        return Err(CmdError::err("Number of keys can't be negative"));
    }
    let n = n as usize;
    if n > args.len() - 3 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    Ok(n)
}

fn run(ctx: &mut Ctx, args: &[Bytes], by_sha: bool, read_only: bool) -> CmdResult {
    let n = numkeys(args)?;
    let (keys, argv) = (&args[3..3 + n], &args[3 + n..]);
    let sha;
    let src = if by_sha {
        sha = String::from_utf8_lossy(&args[1]).into_owned();
        Source::Sha(&sha)
    } else {
        Source::Body(&args[1])
    };
    let scripts = &ctx.node.scripts;
    run_script(ctx, keys, read_only, |host, patience| {
        scripts.run(src, keys, argv, host, patience)
    })
}

/// Runs a script or function (`go` hands the VM the host and how long it may wait for it) in
/// the connection's write scope, with `keys` declared.
///
/// Outside a transaction the script first tries the VM in place, keeping what the pipeline
/// staged so far, and its own writes stay staged too: a pipeline of scripts commits once, as
/// a pipeline of plain commands does. Only when another script holds the VM does it commit
/// (letting go of its key locks) and wait, its runtime worker handing its other tasks on.
pub(super) fn run_script(
    ctx: &mut Ctx,
    keys: &[Bytes],
    read_only: bool,
    mut go: impl FnMut(&mut dyn Host, Patience) -> Result<Reply, Contended>,
) -> CmdResult {
    let in_transaction = ctx.ks.is_atomic();
    let in_exec = std::mem::replace(&mut ctx.client.in_exec, true);
    let in_script = std::mem::replace(&mut ctx.client.in_script, true);
    // A SELECT inside the script selects for the script only, as in Valkey 7 and later.
    let db = ctx.client.db;
    let mut host = ScriptHost {
        node: ctx.node,
        client: ctx.client,
        ks: ctx.ks,
        read_only,
        slot: keys.first().map(|k| key_slot(k)),
        cross_slot: false,
        declared: keys,
    };
    let ran = if in_transaction {
        // The transaction's scope stays open (its locks held): the wait is bounded.
        off_reactor(|| go(&mut host, Patience::Busy(TRANSACTION_PATIENCE)))
    } else {
        match go(&mut host, Patience::Try) {
            Err(Contended) => match host.ks.commit() {
                Ok(()) => off_reactor(|| go(&mut host, Patience::Forever)),
                Err(e) => {
                    ctx.client.in_exec = in_exec;
                    ctx.client.in_script = in_script;
                    ctx.client.db = db;
                    return Err(e.into());
                }
            },
            done => done,
        }
    };
    ctx.client.db = db;
    ctx.client.in_exec = in_exec;
    ctx.client.in_script = in_script;
    if !in_transaction {
        ctx.ks.end_atomic();
    }
    // Forever and Busy never answer Contended.
    Ok(ran.unwrap_or_else(|Contended| Reply::Error(crate::script::BUSY.into())))
}

/// How long a long script waits for another thread to take over its runtime worker's tasks.
const HANDOFF_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// What a script that runs long calls from its VM's thread: a runtime worker hands its other
/// tasks (clients, the cluster bus) to a fresh worker thread, as the slow path did up front.
/// True once another thread runs them.
pub fn leave_worker() -> bool {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return true;
    };
    if rt.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return true;
    }
    // The handoff happens only when the fresh thread takes the worker's core before
    // block_in_place returns; on a loaded machine that thread can start late, and a returned
    // core silently stays with the script. A probe task runs only on a thread holding a core,
    // so its arrival confirms the handoff. The wait is bounded: the new worker may be busy
    // with a client blocked on a key the script holds.
    tokio::task::block_in_place(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        rt.spawn(async move {
            let _ = tx.send(());
        });
        rx.recv_timeout(HANDOFF_WAIT).is_ok()
    })
}

pub fn eval(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    run(ctx, args, false, false)
}

pub fn evalsha(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    run(ctx, args, true, false)
}

pub fn eval_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    run(ctx, args, false, true)
}

pub fn evalsha_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    run(ctx, args, true, true)
}

const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "SHOW <sha1>",
    "    Show a script from the scripts cache.",
    "HELP",
    "    Print this help.",
];

pub fn script(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // LOAD, EXISTS, SHOW and FLUSH wait for a running script's VM.
    off_reactor(|| script_sub(ctx, args))
}

fn script_sub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let scripts = &ctx.node.scripts;
    match sub.as_str() {
        "load" => Ok(match scripts.load(&args[2]) {
            Ok(sha) => Reply::bulk(sha),
            Err(e) => Reply::Error(e),
        }),
        "exists" => Ok(Reply::Array(
            args[2..]
                .iter()
                .map(|s| Reply::Int(scripts.exists(&String::from_utf8_lossy(s)) as i64))
                .collect(),
        )),
        "flush" => {
            if args.len() > 3
                || args.get(2).is_some_and(|m| {
                    !m.eq_ignore_ascii_case(b"sync") && !m.eq_ignore_ascii_case(b"async")
                })
            {
                return Err(CmdError::err("SCRIPT FLUSH only support SYNC|ASYNC option"));
            }
            scripts.flush().map_err(CmdError::err)?;
            Ok(Reply::OK)
        }
        "show" => match scripts.body(&String::from_utf8_lossy(&args[2])) {
            Some(b) => Ok(Reply::Bulk(b)),
            None => Err(CmdError::Line("NOSCRIPT No matching script.".into())),
        },
        "kill" => match scripts.kill(false) {
            Ok(()) => Ok(Reply::OK),
            Err(refused) => Err(CmdError::Line(refused.line().into())),
        },
        "debug" => Err(CmdError::err("SCRIPT DEBUG is not supported by rockslot")),
        "help" => Ok(Reply::Array(
            SCRIPT_HELP
                .iter()
                .map(|l| Reply::StatusOwned((*l).into()))
                .collect(),
        )),
        _ => Err(CmdError::UnknownSubcommand(
            String::from_utf8_lossy(&args[1]).into_owned(),
            "SCRIPT".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    /// A long script on the runtime's only worker hands that worker's tasks on even when the
    /// fresh thread starts late (a loaded machine): another task still runs within moments.
    #[test]
    fn a_long_script_hands_its_worker_on_when_the_new_thread_starts_late() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_start(|| std::thread::sleep(Duration::from_millis(10)))
            .build()
            .expect("runtime");
        let busy = Duration::from_millis(1500);
        rt.spawn(async move {
            let start = Instant::now();
            let mut moved = false;
            let mut tries = 0;
            while start.elapsed() < busy {
                if !moved && tries < 5 && start.elapsed() >= Duration::from_millis(20) {
                    tries += 1;
                    moved = super::leave_worker();
                }
                std::hint::spin_loop();
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        let (tx, rx) = std::sync::mpsc::channel();
        let asked = Instant::now();
        rt.spawn(async move {
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(700)).is_ok(),
            "another task waited {:?} behind the busy one",
            asked.elapsed()
        );
        rt.shutdown_timeout(Duration::from_secs(3));
    }
}

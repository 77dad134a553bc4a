//! FUNCTION (LOAD, DELETE, FLUSH, LIST, DUMP, RESTORE, STATS, KILL, HELP) and FCALL/FCALL_RO,
//! with Valkey 8.1's argument checks and replies. Each change of the libraries is stored by
//! the keyspace (one replicated `meta` record) before it is used.
//! Must not: touch the socket or the VM's internals.

use bytes::Bytes;

use super::args::{is, text};
use super::scripting::{off_reactor, run_script};
use super::{CmdError, CmdResult, Ctx};
use crate::resp::Reply;
use crate::script::{Change, FunctionCall, RestorePolicy, ScriptFlags, RO_WITH_WRITES};

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Print this help.",
];

pub fn function(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Every subcommand but STATS and KILL may wait for a running script's VM.
    off_reactor(|| function_sub(ctx, args))
}

fn function_sub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let node = ctx.node;
    let sub = &args[1];
    let wrong_args = || {
        CmdError::Line(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
            text(sub)
        ))
    };
    let change = |c: Change<'_>| {
        let mut store = |payload: Vec<u8>| {
            node.keyspace
                .set_record(crate::keyspace::NodeRecord::Functions, payload)
                .map_err(|e| format!("ERR storage: {e}"))
        };
        node.scripts
            .change_functions(c, &mut store)
            .map_err(CmdError::Line)
    };
    if is(sub, "load") {
        let code = &args[args.len() - 1];
        let mut replace = false;
        for a in &args[2..args.len() - 1] {
            if !is(a, "replace") {
                return Err(CmdError::err(format!("Unknown option given: {}", text(a))));
            }
            replace = true;
        }
        let name = change(Change::Load { code, replace })?;
        Ok(Reply::bulk(name.unwrap_or_default()))
    } else if is(sub, "delete") {
        change(Change::Delete(&args[2]))?;
        Ok(Reply::OK)
    } else if is(sub, "flush") {
        if args.len() > 3 {
            return Err(wrong_args());
        }
        if args
            .get(2)
            .is_some_and(|m| !is(m, "sync") && !is(m, "async"))
        {
            return Err(CmdError::err(
                "FUNCTION FLUSH only supports SYNC|ASYNC option",
            ));
        }
        change(Change::Flush)?;
        Ok(Reply::OK)
    } else if is(sub, "restore") {
        if args.len() > 4 {
            return Err(wrong_args());
        }
        let policy =
            match args.get(3) {
                None => RestorePolicy::Append,
                Some(p) if is(p, "append") => RestorePolicy::Append,
                Some(p) if is(p, "replace") => RestorePolicy::Replace,
                Some(p) if is(p, "flush") => RestorePolicy::Flush,
                Some(_) => return Err(CmdError::err(
                    "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
                )),
            };
        change(Change::Restore {
            payload: &args[2],
            policy,
        })?;
        Ok(Reply::OK)
    } else if is(sub, "dump") {
        Ok(Reply::Bulk(node.scripts.functions_payload().into()))
    } else if is(sub, "list") {
        list(ctx, args)
    } else if is(sub, "stats") {
        stats(ctx)
    } else if is(sub, "kill") {
        node.scripts
            .kill(true)
            .map(|()| Reply::OK)
            .map_err(|refused| CmdError::Line(refused.line().into()))
    } else if is(sub, "help") {
        Ok(Reply::Array(
            FUNCTION_HELP
                .iter()
                .map(|l| Reply::StatusOwned((*l).into()))
                .collect(),
        ))
    } else {
        Err(CmdError::UnknownSubcommand(text(sub), "FUNCTION".into()))
    }
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]: each keyword at most once.
fn list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut pattern, mut with_code) = (None, false);
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "withcode") && !with_code {
            with_code = true;
            i += 1;
        } else if is(&args[i], "libraryname") && pattern.is_none() {
            let p = args
                .get(i + 1)
                .ok_or_else(|| CmdError::err("library name argument was not given"))?;
            pattern = Some(p.clone());
            i += 2;
        } else {
            return Err(CmdError::err(format!(
                "Unknown argument {}",
                text(&args[i])
            )));
        }
    }
    let s = Reply::bulk_str;
    let libs = ctx.node.scripts.libraries(pattern.as_deref());
    Ok(Reply::Array(
        libs.into_iter()
            .map(|l| {
                let functions = l
                    .functions
                    .into_iter()
                    .map(|f| {
                        Reply::Map(vec![
                            (s("name"), Reply::bulk(f.name)),
                            (
                                s("description"),
                                f.description.map_or(Reply::Nil, Reply::Bulk),
                            ),
                            (s("flags"), flag_set(f.flags)),
                        ])
                    })
                    .collect();
                let mut fields = vec![
                    (s("library_name"), Reply::bulk(l.name)),
                    (s("engine"), s("LUA")),
                    (s("functions"), Reply::Array(functions)),
                ];
                if with_code {
                    fields.push((s("library_code"), Reply::Bulk(l.code)));
                }
                Reply::Map(fields)
            })
            .collect(),
    ))
}

/// A function's flags as FUNCTION LIST shows them: status strings in Valkey's fixed order.
fn flag_set(f: ScriptFlags) -> Reply {
    let all = [
        (f.no_writes, "no-writes"),
        (f.allow_oom, "allow-oom"),
        (f.allow_stale, "allow-stale"),
        (f.no_cluster, "no-cluster"),
        (f.allow_cross_slot_keys, "allow-cross-slot-keys"),
    ];
    Reply::Set(
        all.iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| Reply::Status(name))
            .collect(),
    )
}

fn stats(ctx: &mut Ctx) -> CmdResult {
    let scripts = &ctx.node.scripts;
    let running = scripts.running_function();
    // While an EVAL script runs past the threshold, FUNCTION STATS is refused as in Valkey.
    if running.is_none()
        && scripts
            .busy_ms()
            .is_some_and(|ms| ms >= ctx.node.config.snapshot().busy_reply_threshold_ms)
    {
        return Err(CmdError::Line(scripts.busy_line().into()));
    }
    let s = Reply::bulk_str;
    let running = match running {
        None => Reply::Nil,
        Some((name, command, ms)) => Reply::Map(vec![
            (s("name"), Reply::bulk(name)),
            (
                s("command"),
                Reply::Array(command.into_iter().map(Reply::Bulk).collect()),
            ),
            (s("duration_ms"), Reply::Int(ms as i64)),
        ]),
    };
    let (libraries, functions) = scripts.function_counts();
    Ok(Reply::Map(vec![
        (s("running_script"), running),
        (
            s("engines"),
            Reply::Map(vec![(
                s("LUA"),
                Reply::Map(vec![
                    (s("libraries_count"), Reply::Int(libraries as i64)),
                    (s("functions_count"), Reply::Int(functions as i64)),
                ]),
            )]),
        ),
    ]))
}

fn fcall_generic(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> CmdResult {
    let scripts = &ctx.node.scripts;
    // The index may be behind a replicated change: the VM then decides, once taken.
    let flags = scripts.function_flags(&args[1]);
    if flags.is_none() && !scripts.functions_pending() {
        return Err(CmdError::err("Function not found"));
    }
    let n = super::scripting::numkeys(args).map_err(|e| match e {
        CmdError::NotInteger => CmdError::err("Bad number of keys provided"),
        e => e,
    })?;
    if read_only && flags.is_some_and(|f| !f.no_writes) {
        return Err(CmdError::Line(RO_WITH_WRITES.into()));
    }
    let call = FunctionCall {
        name: &args[1],
        read_only,
        keys: &args[3..3 + n],
        args: &args[3 + n..],
        command: args,
    };
    let keys = call.keys;
    run_script(ctx, keys, read_only, |host, patience| {
        scripts.call_function(call, host, patience)
    })
}

pub fn fcall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, args, false)
}

pub fn fcall_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, args, true)
}

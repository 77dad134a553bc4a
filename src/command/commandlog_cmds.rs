//! COMMANDLOG and SLOWLOG: reading and resetting the node's command log (`node::commandlog`)
//! with Valkey's replies, help texts and errors.
//! Must not: decide what is logged (dispatch and the connection do).

use bytes::Bytes;

use super::args::{is, parse_i64, text};
use super::server_cmds::help;
use super::{CmdError, CmdResult, Ctx};
use crate::node::commandlog::{LogEntry, LogKind};
use crate::resp::Reply;

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Print this help.",
];

const COMMANDLOG_HELP: &[&str] = &[
    "COMMANDLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <count> <type>",
    "    Return top <count> entries of the specified <type> from the commandlog (-1 mean all).",
    "    Entries are made of:",
    "    id, timestamp,",
    "        time in microseconds for type of slow,",
    "        or size in bytes for type of large-request,",
    "        or size in bytes for type of large-reply",
    "    arguments array, client IP and port,",
    "    client name",
    "LEN <type>",
    "    Return the length of the specified type of commandlog.",
    "RESET <type>",
    "    Reset the specified type of commandlog.",
    "HELP",
    "    Print this help.",
];

fn entry(e: LogEntry) -> Reply {
    Reply::Array(vec![
        Reply::Int(e.id as i64),
        Reply::Int(e.time),
        Reply::Int(e.value as i64),
        Reply::Array(e.args.into_iter().map(Reply::Bulk).collect()),
        Reply::Bulk(Bytes::from(e.peer)),
        Reply::Bulk(Bytes::from(e.name)),
    ])
}

/// `<count>`: -1 for all.
fn count(arg: &[u8]) -> Result<Option<usize>, CmdError> {
    match parse_i64(arg) {
        Some(-1) => Ok(None),
        Some(n) if n >= 0 => Ok(Some(n as usize)),
        _ => Err(CmdError::err("count should be greater than or equal to -1")),
    }
}

fn kind(arg: &[u8]) -> Result<LogKind, CmdError> {
    LogKind::parse(arg).ok_or_else(|| {
        CmdError::err("type should be one of the following: slow, large-request, large-reply")
    })
}

fn wrong(args: &[Bytes], cmd: &str) -> CmdError {
    let sub = &args[1];
    let known = ["get", "len", "reset", "help"].iter().any(|s| is(sub, s));
    CmdError::err(if known {
        format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
            text(sub)
        )
    } else {
        format!("unknown subcommand '{}'. Try {cmd} HELP.", text(sub))
    })
}

pub fn slowlog(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let log = &ctx.node.commandlog;
    let sub = &args[1];
    match args.len() {
        2 if is(sub, "help") => Ok(help(SLOWLOG_HELP)),
        2 if is(sub, "len") => Ok(Reply::Int(log.len(LogKind::Slow) as i64)),
        2 if is(sub, "reset") => {
            log.reset(LogKind::Slow);
            Ok(Reply::OK)
        }
        2 | 3 if is(sub, "get") => {
            let n = match args.get(2) {
                Some(a) => count(a)?,
                None => Some(10),
            };
            let got = log.get(LogKind::Slow, n);
            Ok(Reply::Array(got.into_iter().map(entry).collect()))
        }
        _ => Err(wrong(args, "SLOWLOG")),
    }
}

pub fn commandlog(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let log = &ctx.node.commandlog;
    let sub = &args[1];
    match args.len() {
        2 if is(sub, "help") => Ok(help(COMMANDLOG_HELP)),
        3 if is(sub, "len") => Ok(Reply::Int(log.len(kind(&args[2])?) as i64)),
        3 if is(sub, "reset") => {
            log.reset(kind(&args[2])?);
            Ok(Reply::OK)
        }
        4 if is(sub, "get") => {
            let n = count(&args[2])?;
            let got = log.get(kind(&args[3])?, n);
            Ok(Reply::Array(got.into_iter().map(entry).collect()))
        }
        _ => Err(wrong(args, "COMMANDLOG")),
    }
}

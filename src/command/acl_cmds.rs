//! ACL as the command layer sees it: the command catalog ACL rules name (built from the
//! table, with Valkey's categories), the permission check before a command runs (dispatch,
//! scripts), the ACL log's entries, and the ACL command itself.
//! Must not: keep users itself (`acl` does) or touch the socket.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use super::args::{is, text};
use super::{CmdError, CmdFlags, CmdResult, CommandSpec, Ctx};
use crate::acl::{Access, Catalog, Denied, KeyUse, LogReason, CATEGORIES};
use crate::resp::Reply;

/// A command's categories as Valkey derives them: the table's own plus those its flags imply
/// (a container has only what its flags imply: `@slow`).
pub fn categories(spec: &CommandSpec) -> u32 {
    let bit = |n: &str| crate::acl::category_bit(n).unwrap_or(0);
    let mut bits = 0;
    for w in spec.acl.split_whitespace() {
        bits |= w.strip_prefix('@').map_or(0, bit);
    }
    if spec.has_flag(CmdFlags::WRITE) {
        bits |= bit("write");
    }
    if spec.has_flag(CmdFlags::READONLY) && bits & bit("scripting") == 0 {
        bits |= bit("read");
    }
    if spec.has_flag(CmdFlags::ADMIN) {
        bits |= bit("admin") | bit("dangerous");
    }
    if spec.has_flag(CmdFlags::PUBSUB) {
        bits |= bit("pubsub");
    }
    if spec.has_flag(CmdFlags::FAST) {
        bits |= bit("fast");
    }
    if spec.has_flag(CmdFlags::BLOCKING) {
        bits |= bit("blocking");
    }
    if bits & bit("fast") == 0 {
        bits |= bit("slow");
    }
    bits
}

/// Table row (by address) -> catalog entry.
fn entries() -> &'static HashMap<usize, usize> {
    static MAP: OnceLock<HashMap<usize, usize>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = HashMap::new();
        let mut next = 0;
        for c in super::all_commands() {
            map.insert(c as *const CommandSpec as usize, next);
            next += 1;
            for s in c.subcommands {
                map.insert(s as *const CommandSpec as usize, next);
                next += 1;
            }
        }
        map
    })
}

/// Builds the catalog from the command table and makes it the one ACL rules use.
pub fn install_acl_catalog() {
    let mut c = Catalog::default();
    for cmd in super::all_commands() {
        let subs: Vec<(&str, u32)> = cmd
            .subcommands
            .iter()
            .map(|s| (s.name, categories(s)))
            .collect();
        c.add(cmd.name, categories(cmd), &subs);
    }
    c.install();
}

/// What a writing command does with its `i`-th key: (reads its value, changes it), after
/// Valkey's key specs (ACCESS needs `%R`, INSERT/DELETE/UPDATE need `%W`). A command not
/// named here is taken to do both, which never grants more than Valkey does.
fn write_key_use(spec: &CommandSpec, args: &[Bytes], i: usize) -> (bool, bool) {
    match spec.name {
        "set" => {
            let get = args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
            (get, true)
        }
        "setnx" | "setex" | "psetex" | "mset" | "msetnx" | "del" | "unlink" | "expire"
        | "pexpire" | "expireat" | "pexpireat" | "persist" | "hset" | "hmset" | "hsetnx"
        | "hdel" | "lpush" | "rpush" | "lpushx" | "rpushx" | "linsert" | "lrem" | "ltrim"
        | "lset" | "sadd" | "srem" | "zadd" | "zrem" | "zremrangebyscore" | "zremrangebyrank"
        | "zremrangebylex" | "append" | "setrange" | "restore" | "restore-asking" | "hexpire"
        | "hpexpire" | "hexpireat" | "hpexpireat" | "hpersist" | "hsetex" => (false, true),
        // The destination is only written; the sources only read.
        "sunionstore" | "sinterstore" | "sdiffstore" | "zunionstore" | "zinterstore"
        | "zdiffstore" | "zrangestore" | "bitop" | "geosearchstore" => (i != 0, i == 0),
        // PFMERGE merges into what the destination holds.
        "pfmerge" => (true, i == 0),
        "copy" | "sort" | "georadius" | "georadiusbymember" => (i == 0, i != 0),
        "rename" | "renamenx" | "lmove" | "blmove" | "rpoplpush" | "brpoplpush" | "smove" => {
            (i == 0, true)
        }
        _ => (true, true),
    }
}

/// What a call asks for (its command, first argument, keys and channels).
fn access<'a>(spec: &'static CommandSpec, args: &'a [Bytes], write: bool) -> Access<'a> {
    let command = entries()
        .get(&(spec as *const CommandSpec as usize))
        .copied()
        .unwrap_or(usize::MAX);
    // Shard channels sit where keys do, but are checked as channels only.
    let keys = if spec.has_flag(CmdFlags::PUBSUB) {
        Vec::new()
    } else {
        spec.key_positions(args)
            .into_iter()
            .enumerate()
            .map(|(i, at)| {
                let (read, write) = if write {
                    write_key_use(spec, args, i)
                } else {
                    (true, false)
                };
                KeyUse {
                    key: &args[at],
                    at,
                    read,
                    write,
                }
            })
            .collect()
    };
    let (channels, literal) = match spec.name {
        "publish" | "spublish" => (
            args.get(1).map(|c| (&c[..], 1)).into_iter().collect(),
            false,
        ),
        "subscribe" | "ssubscribe" | "psubscribe" => (
            args.iter()
                .enumerate()
                .skip(1)
                .map(|(i, c)| (&c[..], i))
                .collect(),
            spec.name == "psubscribe",
        ),
        _ => (Vec::new(), false),
    };
    Access {
        command,
        first_arg: args
            .get(1)
            .map(|a| &a[..])
            .filter(|_| spec.subcommands.is_empty()),
        keys,
        channels,
        literal,
    }
}

/// Whether the connection's user may run `args`; a refusal is logged (`context`: `toplevel`,
/// `multi` or `lua`) and returned.
pub fn check(
    node: &crate::node::Node,
    client: &mut super::ClientState,
    spec: &'static CommandSpec,
    args: &[Bytes],
    write: bool,
    context: &'static str,
) -> Result<(), Denied> {
    let acl = &node.acl;
    if acl.unrestricted(&mut client.session) {
        return Ok(());
    }
    let r = acl.check(&mut client.session, &access(spec, args, write));
    if let Err(d) = &r {
        let user = String::from_utf8_lossy(&client.session.name).into_owned();
        record(node, client, d.reason(), context, d.object(), user);
    }
    r
}

fn record(
    node: &crate::node::Node,
    client: &super::ClientState,
    reason: LogReason,
    context: &'static str,
    object: String,
    username: String,
) {
    let max = node
        .config
        .extra("acllog-max-len")
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    node.acl.log.lock().record(
        reason,
        context,
        object,
        username,
        client.handle.describe(),
        crate::cluster::now_ms(),
        max,
    );
}

/// Logs a refusal the caller decided (a failed AUTH).
pub fn log_refusal(
    ctx: &mut Ctx,
    reason: LogReason,
    context: &'static str,
    object: String,
    username: String,
) {
    record(ctx.node, ctx.client, reason, context, object, username);
}

/// Whether the user may run `args`, without logging (`server.acl_check_cmd`).
pub fn allowed(
    node: &crate::node::Node,
    client: &mut super::ClientState,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> bool {
    let acl = &node.acl;
    acl.unrestricted(&mut client.session)
        || acl
            .check(&mut client.session, &access(spec, args, spec.is_write()))
            .is_ok()
}

const ACL_HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Print this help.",
];

const NO_ACLFILE: &str = "This instance is not configured to use an ACL file. You may want to \
    specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you \
    have a configuration file set) in order to store users in the configuration.";

/// Closes the connections of users that no longer exist.
fn disconnect_missing(ctx: &Ctx) {
    let users = ctx.node.acl.users();
    let names: std::collections::HashSet<String> = users
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    for c in ctx.node.clients.all() {
        let name = c.meta.lock().user.clone();
        if !names.contains(&name) {
            c.kill();
        }
    }
}

/// Closes the subscribed connections of users that lost channels they had in `before`.
fn drop_lost_subscribers(
    ctx: &Ctx,
    before: &std::collections::BTreeMap<Bytes, std::sync::Arc<crate::acl::User>>,
) {
    let now = ctx.node.acl.users();
    let lost: std::collections::HashSet<String> = before
        .iter()
        .filter(|(name, old)| now.get(*name).is_some_and(|new| !new.channels_cover(old)))
        .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
        .collect();
    if lost.is_empty() {
        return;
    }
    for c in ctx.node.clients.all() {
        let subscribed = c.subscriptions.lock().iter().sum::<usize>() > 0;
        if subscribed && lost.contains(&c.meta.lock().user) {
            c.kill();
        }
    }
}

pub fn acl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let acl = &ctx.node.acl;
    let s = Reply::bulk_str;
    if is(sub, "setuser") {
        let name = &args[2];
        if name.iter().any(|b| b.is_ascii_whitespace() || *b == 0) {
            return Err(CmdError::err(
                "Usernames can't contain spaces or null characters",
            ));
        }
        let rules: Vec<&[u8]> = args[3..].iter().map(|a| &a[..]).collect();
        let before = acl.users();
        acl.set_user(name, &rules)
            .map_err(|f| CmdError::Line(f.line()))?;
        drop_lost_subscribers(ctx, &before);
        ctx.node.store_users();
        Ok(Reply::OK)
    } else if is(sub, "getuser") {
        let Some(u) = acl.user(&args[2]) else {
            return Ok(Reply::Nil);
        };
        let (commands, keys, channels) = u.selectors[0].fields();
        let selectors = u.selectors[1..]
            .iter()
            .map(|sel| {
                let (c, k, ch) = sel.fields();
                Reply::Map(vec![
                    (s("commands"), Reply::bulk(c)),
                    (s("keys"), Reply::bulk(k)),
                    (s("channels"), Reply::bulk(ch)),
                ])
            })
            .collect();
        Ok(Reply::Map(vec![
            (
                s("flags"),
                Reply::Set(u.flags().into_iter().map(s).collect()),
            ),
            (
                s("passwords"),
                Reply::Array(u.passwords.iter().map(|p| Reply::bulk(p.clone())).collect()),
            ),
            (s("commands"), Reply::bulk(commands)),
            (s("keys"), Reply::bulk(keys)),
            (s("channels"), Reply::bulk(channels)),
            (s("selectors"), Reply::Array(selectors)),
        ]))
    } else if is(sub, "deluser") {
        if args[2..].iter().any(|n| &n[..] == b"default") {
            return Err(CmdError::err("The 'default' user cannot be removed"));
        }
        let names: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
        let n = acl.delete_users(&names);
        disconnect_missing(ctx);
        ctx.node.store_users();
        Ok(Reply::Int(n as i64))
    } else if is(sub, "list") {
        Ok(Reply::Array(
            acl.users()
                .values()
                .map(|u| Reply::bulk(u.describe()))
                .collect(),
        ))
    } else if is(sub, "users") {
        Ok(Reply::Array(
            acl.users().keys().map(|n| Reply::Bulk(n.clone())).collect(),
        ))
    } else if is(sub, "whoami") {
        Ok(Reply::Bulk(ctx.client.session.name.clone()))
    } else if is(sub, "cat") {
        cat(args)
    } else if is(sub, "genpass") {
        genpass(args)
    } else if is(sub, "dryrun") {
        dryrun(ctx, args)
    } else if is(sub, "log") {
        log(ctx, args)
    } else if is(sub, "save") || is(sub, "load") {
        let Some(path) = ctx.node.config.extra("aclfile").filter(|f| !f.is_empty()) else {
            return Err(CmdError::err(NO_ACLFILE));
        };
        let path = std::path::PathBuf::from(path);
        if is(sub, "save") {
            crate::acl::save_file(&path, &acl.users()).map_err(|e| {
                tracing::warn!("saving the ACL file {}: {e}", path.display());
                CmdError::err(
                    "There was an error trying to save the ACLs. Please check the server logs \
                     for more information",
                )
            })?;
        } else {
            let all_channels =
                ctx.node.config.extra("acl-pubsub-default").as_deref() == Some("allchannels");
            let users =
                crate::acl::load_file(&path, all_channels).map_err(|e| CmdError::err(e.0))?;
            let before = acl.users();
            acl.replace(users);
            disconnect_missing(ctx);
            drop_lost_subscribers(ctx, &before);
            ctx.node.store_users();
        }
        Ok(Reply::OK)
    } else if is(sub, "help") {
        Ok(Reply::Array(
            ACL_HELP
                .iter()
                .map(|l| Reply::StatusOwned((*l).into()))
                .collect(),
        ))
    } else {
        Err(CmdError::UnknownSubcommand(text(sub), "ACL".into()))
    }
}

fn cat(args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Line(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            text(&args[1])
        )));
    }
    let Some(name) = args.get(2) else {
        return Ok(Reply::Array(
            CATEGORIES.iter().map(|c| Reply::bulk_str(c)).collect(),
        ));
    };
    let lower = text(name).to_ascii_lowercase();
    let Some(i) = CATEGORIES.iter().position(|c| *c == lower) else {
        return Err(CmdError::err(format!("Unknown category '{}'", text(name))));
    };
    let bit = 1u32 << i;
    let mut out = Vec::new();
    for c in super::all_commands() {
        if c.subcommands.is_empty() {
            if categories(c) & bit != 0 {
                out.push(Reply::bulk_str(c.name));
            }
            continue;
        }
        for s in c.subcommands {
            if categories(s) & bit != 0 {
                out.push(Reply::bulk(format!("{}|{}", c.name, s.name)));
            }
        }
    }
    Ok(Reply::Array(out))
}

fn genpass(args: &[Bytes]) -> CmdResult {
    let bits = match args.get(2) {
        None => 256,
        Some(b) => super::args::int(b)?,
    };
    if bits <= 0 || bits > 4096 {
        return Err(CmdError::err(
            "ACL GENPASS argument must be the number of bits for the output password, a \
             positive number up to 4096",
        ));
    }
    let chars = ((bits + 3) / 4) as usize;
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Reply::bulk(hex[..chars].to_string()))
}

fn dryrun(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = &args[2];
    if ctx.node.acl.user(name).is_none() {
        return Err(CmdError::err(format!("User '{}' not found", text(name))));
    }
    let call = &args[3..];
    let spec = match super::resolve(call) {
        // A container answers unknown subcommands itself; ACL DRYRUN does not know them.
        Ok(s) if !s.subcommands.is_empty() && call.len() > 1 => {
            return Err(CmdError::err(format!(
                "Command '{}' not found",
                text(&call[0])
            )))
        }
        Ok(s) => s,
        Err(CmdError::WrongArity(n)) => return Err(CmdError::WrongArity(n)),
        Err(_) => {
            return Err(CmdError::err(format!(
                "Command '{}' not found",
                text(&call[0])
            )))
        }
    };
    let mut session = crate::acl::Session::named(name.clone());
    let write = super::dispatch::writes(ctx.node, spec, call);
    match ctx.node.acl.check(&mut session, &access(spec, call, write)) {
        Ok(()) => Ok(Reply::OK),
        Err(d) => Ok(Reply::bulk(d.verbose(name))),
    }
}

fn log(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = match args.get(2) {
        Some(a) if is(a, "reset") => {
            ctx.node.acl.log.lock().reset();
            return Ok(Reply::OK);
        }
        Some(a) => super::args::int(a)?.max(0) as usize,
        None => 10,
    };
    let now = crate::cluster::now_ms();
    let s = Reply::bulk_str;
    let entries = ctx.node.acl.log.lock().newest(count);
    Ok(Reply::Array(
        entries
            .into_iter()
            .map(|e| {
                let age = now.saturating_sub(e.created_ms) as f64 / 1000.0;
                Reply::Map(vec![
                    (s("count"), Reply::Int(e.count as i64)),
                    (s("reason"), s(e.reason.name())),
                    (s("context"), s(e.context)),
                    (s("object"), Reply::bulk(e.object)),
                    (s("username"), Reply::bulk(e.username)),
                    (s("age-seconds"), Reply::Double(age)),
                    (s("client-info"), Reply::bulk(e.client_info)),
                    (s("entry-id"), Reply::Int(e.entry_id as i64)),
                    (s("timestamp-created"), Reply::Int(e.created_ms as i64)),
                    (s("timestamp-last-updated"), Reply::Int(e.updated_ms as i64)),
                ])
            })
            .collect(),
    ))
}

//! Connection and server commands: PING ECHO HELLO AUTH SELECT QUIT RESET CLIENT DBSIZE
//! FLUSHDB FLUSHALL CONFIG TIME SHUTDOWN DEBUG.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::args::{float, int, is, text};
use super::After;
use super::{CmdError, CmdResult, Ctx};
use crate::resp::{Protocol, Reply};

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

pub fn ping(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.client.protocol == Protocol::Resp2
        && ctx.client.pubsub.as_ref().is_some_and(|s| !s.is_empty())
        && args.len() <= 2
    {
        // A subscribed RESP2 connection gets PONG as a push-shaped array.
        let arg = args.get(1).cloned().unwrap_or_default();
        return Ok(Reply::Array(vec![
            Reply::bulk_str("pong"),
            Reply::Bulk(arg),
        ]));
    }
    match args.len() {
        1 => Ok(Reply::Status("PONG")),
        2 => Ok(Reply::Bulk(args[1].clone())),
        _ => Err(CmdError::WrongArity("ping".into())),
    }
}

pub fn echo(_ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Bulk(args[1].clone()))
}

/// Checks a username/password pair (no username: `default`); on success the connection is
/// that user's, on failure the ACL log has an `auth` entry.
fn check_password(
    ctx: &mut Ctx,
    user: Option<&[u8]>,
    pass: &[u8],
    verb: &[u8],
) -> Result<(), CmdError> {
    let acl = &ctx.node.acl;
    let name = user.unwrap_or(b"default");
    if user.is_none() && acl.user(b"default").is_some_and(|u| u.nopass) {
        return Err(CmdError::err(
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ));
    }
    if !acl.authenticate(name, pass) {
        super::acl_cmds::log_refusal(
            ctx,
            crate::acl::LogReason::Auth,
            "toplevel",
            String::from_utf8_lossy(verb).into_owned(),
            String::from_utf8_lossy(name).into_owned(),
        );
        return Err(CmdError::Line(WRONGPASS.into()));
    }
    let name = Bytes::copy_from_slice(name);
    ctx.client.handle.meta.lock().user = String::from_utf8_lossy(&name).into_owned();
    ctx.client.session = crate::acl::Session::named(name);
    ctx.client.authenticated = true;
    Ok(())
}

pub fn auth(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // A failed AUTH leaves the connection as it was, as in Valkey.
    match args.len() {
        2 => check_password(ctx, None, &args[1], &args[0])?,
        3 => check_password(ctx, Some(&args[1]), &args[2], &args[0])?,
        _ => return Err(CmdError::Syntax),
    }
    Ok(Reply::OK)
}

pub fn hello(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut proto = None;
    let mut i = 1;
    if args.len() > 1 {
        let v = int(&args[1])
            .map_err(|_| CmdError::err("Protocol version is not an integer or out of range"))?;
        proto = match v {
            2 => Some(Protocol::Resp2),
            3 => Some(Protocol::Resp3),
            _ => {
                return Err(CmdError::Line(
                    "NOPROTO unsupported protocol version".into(),
                ))
            }
        };
        i = 2;
    }
    let mut name = None;
    let mut auth = None;
    // Every option is checked before the credentials are: a HELLO that fails leaves the
    // connection's user as it was.
    while i < args.len() {
        if is(&args[i], "auth") && i + 2 < args.len() {
            auth = Some((i + 1, i + 2));
            i += 3;
        } else if is(&args[i], "setname") && i + 1 < args.len() {
            validate_name(&args[i + 1])?;
            name = Some(text(&args[i + 1]));
            i += 2;
        } else {
            return Err(CmdError::err(format!(
                "Syntax error in HELLO option '{}'",
                text(&args[i])
            )));
        }
    }
    if let Some((u, p)) = auth {
        check_password(ctx, Some(&args[u]), &args[p], &args[0])?;
    }
    if !ctx.client.authenticated {
        return Err(CmdError::Line(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time"
                .into(),
        ));
    }
    ctx.client.authenticated = true;
    if let Some(n) = name {
        ctx.client.handle.meta.lock().name = n;
    }
    if let Some(p) = proto {
        ctx.client.protocol = p;
        if p == Protocol::Resp3 {
            // A RESP3 client takes pushes: it may be another client's tracking REDIRECT.
            ctx.node
                .pubsub
                .open(&mut ctx.client.pubsub, &ctx.client.handle);
        }
        ctx.client
            .handle
            .resp
            .store(if p == Protocol::Resp3 { 3 } else { 2 }, Ordering::Relaxed);
    }
    let cluster = ctx.node.cluster.is_some();
    let role = if ctx.node.replica_of().is_some() {
        "replica"
    } else {
        "master"
    };
    let s = |v: &str| Reply::bulk_str(v);
    Ok(Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(super::info::REDIS_VERSION)),
        (
            s("proto"),
            Reply::Int(if ctx.client.protocol == Protocol::Resp3 {
                3
            } else {
                2
            }),
        ),
        (s("id"), Reply::Int(ctx.client.id() as i64)),
        (s("mode"), s(if cluster { "cluster" } else { "standalone" })),
        (s("role"), s(role)),
        (s("modules"), Reply::Array(vec![])),
    ]))
}

/// An `int` argument as Valkey's getIntFromObjectOrReply reads it: `msg` (or Valkey's
/// integer error) for what is no integer, and its range error outside C's int.
pub fn int32(b: &[u8], msg: Option<&'static str>) -> Result<i64, CmdError> {
    let not_int = || msg.map_or(CmdError::NotInteger, CmdError::err);
    let v = super::args::parse_i64(b).ok_or_else(not_int)?;
    if i32::try_from(v).is_err() {
        return Err(msg.map_or_else(
            || {
                CmdError::err(format!(
                    "value is out of range, value must between {} and {}",
                    i32::MIN,
                    i32::MAX
                ))
            },
            CmdError::err,
        ));
    }
    Ok(v)
}

/// A database number this node has, or Valkey's "DB index is out of range".
pub fn db_in_range(ctx: &Ctx, db: i64) -> Result<u8, CmdError> {
    u8::try_from(db)
        .ok()
        .filter(|d| (*d as usize) < ctx.node.keyspace.databases())
        .ok_or_else(|| CmdError::err("DB index is out of range"))
}

/// Whether numbered databases other than 0 are refused here (Valkey 8's cluster mode, which
/// `cluster-databases 1` keeps).
pub fn single_db_cluster(ctx: &Ctx) -> bool {
    let c = ctx.node.config.snapshot();
    c.cluster_enabled && c.cluster_databases <= 1
}

pub fn select(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = int32(&args[1], None)?;
    if single_db_cluster(ctx) && db != 0 {
        return Err(CmdError::err("SELECT is not allowed in cluster mode"));
    }
    ctx.client.db = db_in_range(ctx, db)?;
    // A script's SELECT is its own (the caller's database comes back when it ends).
    if !ctx.client.in_script {
        ctx.client.handle.db.store(ctx.client.db, Ordering::Relaxed);
    }
    Ok(Reply::OK)
}

pub fn swapdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.node.config.snapshot().cluster_enabled {
        return Err(CmdError::err("SWAPDB is not allowed in cluster mode"));
    }
    let a = int32(&args[1], Some("invalid first DB index"))?;
    let b = int32(&args[2], Some("invalid second DB index"))?;
    let (a, b) = (db_in_range(ctx, a)?, db_in_range(ctx, b)?);
    if a != b {
        ctx.ks.commit_now()?;
        ctx.node.keyspace.swap_db(a, b)?;
        // Clients blocked on keys of either database look again (the keys changed underneath).
        ctx.node.blocked.wake_all();
    }
    Ok(Reply::OK)
}

pub fn quit(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.client.after = Some(After::Close);
    Ok(Reply::OK)
}

pub fn reset(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.node.tracking.disable(ctx.client.id());
    ctx.client.tracking = None;
    ctx.client.caching = false;
    if let Some(mut subs) = ctx.client.pubsub.take() {
        ctx.node.pubsub.forget(&mut subs, ctx.client.id());
        *ctx.client.handle.subscriptions.lock() = [0; 3];
    }
    ctx.client.multi = None;
    ctx.client.watched.clear();
    ctx.client.protocol = Protocol::Resp2;
    ctx.client.db = 0;
    ctx.client.handle.db.store(0, Ordering::Relaxed);
    ctx.client.handle.resp.store(2, Ordering::Relaxed);
    ctx.client.handle.no_touch.store(false, Ordering::Relaxed);
    ctx.client.authenticated = ctx.node.acl.default_open();
    ctx.client.session = crate::acl::Session::default_user();
    {
        let mut m = ctx.client.handle.meta.lock();
        m.name.clear();
        m.user = "default".into();
    }
    Ok(Reply::Status("RESET"))
}

fn validate_name(n: &[u8]) -> Result<(), CmdError> {
    if n.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

pub fn client(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let h = &ctx.client.handle;
    if is(sub, "id") {
        Ok(Reply::Int(h.id as i64))
    } else if is(sub, "setname") {
        validate_name(&args[2])?;
        h.meta.lock().name = text(&args[2]);
        Ok(Reply::OK)
    } else if is(sub, "getname") {
        let n = h.meta.lock().name.clone();
        Ok(if n.is_empty() {
            Reply::Nil
        } else {
            Reply::bulk(n)
        })
    } else if is(sub, "setinfo") {
        let v = text(&args[3]);
        if v.contains(|c: char| !c.is_ascii_graphic()) {
            return Err(CmdError::err(format!(
                "{} cannot contain spaces, newlines or special characters.",
                text(&args[2]).to_ascii_lowercase()
            )));
        }
        let mut m = h.meta.lock();
        if is(&args[2], "lib-name") {
            m.lib_name = v;
        } else if is(&args[2], "lib-ver") {
            m.lib_ver = v;
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized option '{}'",
                text(&args[2])
            )));
        }
        Ok(Reply::OK)
    } else if is(sub, "list") {
        let mut s = String::new();
        for c in ctx.node.clients.all() {
            s.push_str(&c.describe());
            s.push('\n');
        }
        Ok(Reply::Verbatim(s))
    } else if is(sub, "info") {
        Ok(Reply::Verbatim(format!("{}\n", h.describe())))
    } else if is(sub, "kill") {
        client_kill(ctx, args)
    } else if is(sub, "no-evict") || is(sub, "no-touch") {
        if is(&args[2], "on") || is(&args[2], "off") {
            if is(sub, "no-touch") {
                let on = is(&args[2], "on");
                ctx.client.handle.no_touch.store(on, Ordering::Relaxed);
            }
            Ok(Reply::OK)
        } else {
            Err(CmdError::Syntax)
        }
    } else if is(sub, "help") {
        Ok(help(&[
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME",
            "ID",
            "INFO",
            "KILL <ip:port>|<option> <value> [...]",
            "LIST",
            "SETINFO <option> <value>",
            "SETNAME <name>",
            "HELP",
        ]))
    } else {
        Err(CmdError::UnknownSubcommand(text(sub), "CLIENT".into()))
    }
}

fn client_kill(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let all = ctx.node.clients.all();
    if args.len() == 3 {
        // Old form: CLIENT KILL ip:port.
        let addr = text(&args[2]);
        let Some(c) = all.iter().find(|c| c.addr.to_string() == addr) else {
            return Err(CmdError::err("No such client"));
        };
        c.kill();
        if c.id == ctx.client.id() {
            ctx.client.after = Some(After::Close);
        }
        return Ok(Reply::OK);
    }
    if args.len() % 2 != 0 {
        return Err(CmdError::Syntax);
    }
    let (mut id, mut addr, mut laddr, mut skipme) = (None, None, None, true);
    for pair in args[2..].chunks(2) {
        let v = &pair[1];
        if is(&pair[0], "id") {
            id = Some(
                int(v)
                    .ok()
                    .filter(|i| *i > 0)
                    .ok_or_else(|| CmdError::err("client-id should be greater than 0"))?
                    as u64,
            );
        } else if is(&pair[0], "addr") {
            addr = Some(text(v));
        } else if is(&pair[0], "laddr") {
            laddr = Some(text(v));
        } else if is(&pair[0], "skipme") {
            skipme = if is(v, "yes") {
                true
            } else if is(v, "no") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
        } else if is(&pair[0], "type") || is(&pair[0], "user") || is(&pair[0], "maxage") {
            // Every client here is a normal client of the default user.
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut n = 0;
    for c in all {
        let me = c.id == ctx.client.id();
        if (skipme && me)
            || id.is_some_and(|i| i != c.id)
            || addr.as_ref().is_some_and(|a| *a != c.addr.to_string())
            || laddr.as_ref().is_some_and(|a| *a != c.laddr.to_string())
        {
            continue;
        }
        c.kill();
        if me {
            ctx.client.after = Some(After::Close);
        }
        n += 1;
    }
    Ok(Reply::Int(n))
}

pub fn help(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::Status(l)).collect())
}

pub fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.node.keyspace.dbsize(ctx.client.db)))
}

fn flush_mode(args: &[Bytes]) -> Result<(), CmdError> {
    if args.len() > 2 || (args.len() == 2 && !is(&args[1], "async") && !is(&args[1], "sync")) {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

pub fn flushall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    flush_mode(args)?;
    ctx.ks.commit_now()?;
    ctx.node.keyspace.flush_all()?;
    ctx.node.tracking.flushed(&ctx.node.pubsub);
    Ok(Reply::OK)
}

pub fn flushdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    flush_mode(args)?;
    ctx.ks.commit_now()?;
    ctx.node.keyspace.flush_db(ctx.client.db)?;
    ctx.node.tracking.flushed(&ctx.node.pubsub);
    Ok(Reply::OK)
}

pub fn time(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Reply::Array(vec![
        Reply::bulk(d.as_secs().to_string()),
        Reply::bulk(d.subsec_micros().to_string()),
    ]))
}

pub fn shutdown(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    for a in &args[1..] {
        if is(a, "abort") {
            return Err(CmdError::err("No shutdown in progress."));
        }
        if !(is(a, "nosave") || is(a, "save") || is(a, "now") || is(a, "force")) {
            return Err(CmdError::Syntax);
        }
    }
    tracing::info!("User requested shutdown...");
    ctx.client.after = Some(After::Shutdown);
    // No reply reaches the client: the connection closes, as with Valkey.
    Ok(Reply::Raw(Bytes::new()))
}

pub fn config(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let cfg = &ctx.node.config;
    if is(sub, "get") {
        let pats: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
        let pairs = cfg.get(&pats);
        Ok(Reply::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Reply::bulk(k), Reply::bulk(v)))
                .collect(),
        ))
    } else if is(sub, "set") {
        if args.len() < 4 || args.len() % 2 != 0 {
            return Err(CmdError::WrongArity("config|set".into()));
        }
        let pairs: Vec<(&[u8], &[u8])> = args[2..]
            .chunks(2)
            .map(|p| (&p[0][..], &p[1][..]))
            .collect();
        let tls_keys: Vec<&[u8]> = pairs
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| k.len() > 4 && k[..4].eq_ignore_ascii_case(b"tls-"))
            .collect();
        let before = cfg.get(&tls_keys);
        cfg.set(&pairs).map_err(|e| CmdError::Line(e.to_string()))?;
        // New certificates, CAs, protocols or ciphers apply to the next handshake; when they
        // do not load, the old ones stay and so does the old configuration (as Valkey).
        if !tls_keys.is_empty() {
            if let Err(e) = crate::tls::reload(&cfg.snapshot().tls) {
                tracing::warn!("CONFIG SET of TLS settings: {e}");
                let old: Vec<(&[u8], &[u8])> = before
                    .iter()
                    .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
                    .collect();
                if let Err(e) = cfg.set(&old) {
                    tracing::error!("restoring the TLS settings: {e}");
                }
                return Err(CmdError::Line(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{}') - Unable to update \
                     TLS configuration. Check server logs.",
                    String::from_utf8_lossy(tls_keys[0])
                )));
            }
        }
        ctx.node.config_changed();
        // requirepass is the default user's password: `resetpass` then `>pw` (or `nopass`).
        if pairs
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(b"requirepass"))
        {
            ctx.node
                .acl
                .set_requirepass(cfg.snapshot().requirepass.as_deref());
            ctx.node.store_users();
        }
        if pairs
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(b"acl-pubsub-default"))
        {
            let all = cfg.extra("acl-pubsub-default").as_deref() == Some("allchannels");
            ctx.node.acl.set_all_channels_default(all);
        }
        Ok(Reply::OK)
    } else if is(sub, "rewrite") {
        // Without an aclfile the users live in the config file, as Valkey writes them.
        if cfg.extra("aclfile").is_none_or(|f| f.is_empty()) {
            let users = ctx.node.acl.users();
            let lines = users
                .values()
                .map(|u| {
                    let line = u.describe();
                    line.split(' ').skip(1).map(str::to_string).collect()
                })
                .collect();
            cfg.set_extra_lines("user", lines);
        }
        cfg.rewrite().map_err(|e| CmdError::Line(e.to_string()))?;
        Ok(Reply::OK)
    } else if is(sub, "resetstat") {
        ctx.node.slot_stats.reset();
        let s = &ctx.node.stats;
        for c in [
            &s.commands_processed,
            &s.connections_received,
            &s.net_input_bytes,
            &s.net_output_bytes,
            &s.rejected_connections,
            &s.error_replies,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        let k = &ctx.node.keyspace.stats;
        for c in [&k.expired_keys, &k.keyspace_hits, &k.keyspace_misses] {
            c.store(0, Ordering::Relaxed);
        }
        super::stats::reset_all();
        Ok(Reply::OK)
    } else if is(sub, "help") {
        Ok(help(&[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "SET <directive> <value>",
            "RESETSTAT",
            "REWRITE",
            "HELP",
        ]))
    } else {
        Err(CmdError::UnknownSubcommand(text(sub), "CONFIG".into()))
    }
}

pub fn debug(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "sleep") && args.len() == 3 {
        let secs = float(&args[2])?;
        let d = Duration::try_from_secs_f64(secs.max(0.0)).map_err(|_| CmdError::NotFloat)?;
        // As in Valkey, the client waits for the sleep and then gets +OK.
        super::long_running(|| std::thread::sleep(d));
        Ok(Reply::OK)
    } else if is(sub, "digest-value") {
        let mut out = Vec::new();
        for k in &args[2..] {
            let digest = match ctx.ks.lookup(k)? {
                Some(e) => sha1_smol::Sha1::from(ctx.ks.dump_payload(k, &e)?)
                    .digest()
                    .to_string(),
                None => "0".repeat(40),
            };
            out.push(Reply::StatusOwned(digest));
        }
        Ok(Reply::Array(out))
    } else if (is(sub, "digest") && args.len() == 2)
        || (is(sub, "digest-slot") && (3..=4).contains(&args.len()))
    {
        // DIGEST-SLOT <first> [<last>] is rockslot's: replicas and primaries compare slots.
        let (first, last) = if args.len() == 2 {
            (0, (crate::slot::SLOTS - 1) as u16)
        } else {
            let slot = super::cluster_cmds::slot_arg;
            let first = slot(&args[2])?;
            let last = args.get(3).map(|a| slot(a)).transpose()?.unwrap_or(first);
            if last < first {
                return Err(CmdError::err("Invalid or out of range slot"));
            }
            (first, last)
        };
        let digest = super::long_running(|| ctx.node.keyspace.digest_slots(first, last))?;
        Ok(Reply::StatusOwned(match digest {
            Some(d) => d.iter().map(|b| format!("{b:02x}")).collect(),
            None => "0".repeat(40),
        }))
    } else if is(sub, "reload") {
        // Data lives on disk already; syncing the WAL is what a reload would guarantee.
        ctx.node.engine.sync_wal()?;
        Ok(Reply::OK)
    } else if is(sub, "cluster-isolate") && args.len() == 3 {
        // Fault injection for partition tests: the node stops exchanging bus messages.
        let Some(cl) = &ctx.node.cluster else {
            return Err(CmdError::err("This instance has cluster support disabled"));
        };
        let on = is(&args[2], "yes");
        cl.isolated.store(on, Ordering::Relaxed);
        Ok(Reply::OK)
    } else if is(sub, "failover-delay") && args.len() == 3 {
        // Fault injection: this replica's automatic elections start later, so a test can let
        // a sibling run first.
        let Some(cl) = &ctx.node.cluster else {
            return Err(CmdError::err("This instance has cluster support disabled"));
        };
        let ms = int(&args[2])?.max(0) as u64;
        cl.with_state(|st| st.failover.extra_delay_ms = ms);
        Ok(Reply::OK)
    } else if let (Some(hook), 3) = (delay_hook(ctx.node, sub), args.len()) {
        hook.store(int(&args[2])?.max(0) as u64, Ordering::Relaxed);
        Ok(Reply::OK)
    } else if is(sub, "set-active-expire") && args.len() == 3 {
        ctx.node
            .active_expire
            .store(int(&args[2])? != 0, Ordering::Relaxed);
        Ok(Reply::OK)
    } else if is(sub, "object") && args.len() == 3 {
        let Some(e) = ctx.ks.lookup(&args[2])? else {
            return Err(CmdError::NoSuchKey);
        };
        let len = ctx.ks.dump_payload(&args[2], &e)?.len();
        let idle = ctx.node.access.idle_secs(ctx.ks.db(), &args[2]);
        Ok(Reply::StatusOwned(format!(
            "Value at:0x0 refcount:1 encoding:raw serializedlength:{len} lru:0 lru_seconds_idle:{idle}"
        )))
    } else if is(sub, "help") {
        Ok(help(&[
            "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DIGEST",
            "DIGEST-SLOT <first-slot> [<last-slot>]",
            "DIGEST-VALUE <key> [<key> ...]",
            "OBJECT <key>",
            "RELOAD",
            "SET-ACTIVE-EXPIRE <0|1>",
            "SLEEP <seconds>",
            "HELP",
        ]))
    } else {
        Err(CmdError::UnknownSubcommand(text(sub), "DEBUG".into()))
    }
}

/// Fault-injection hooks that hold a step for some milliseconds: `DEBUG <name> <ms>`.
fn delay_hook<'a>(
    node: &'a crate::node::Node,
    sub: &Bytes,
) -> Option<&'a std::sync::atomic::AtomicU64> {
    let m = &node.migrations;
    let hooks = [
        // A replica whose role turned primary takes over the replication stream this much
        // later (writes arriving meanwhile must still start the new history).
        ("repl-promote-delay", &node.replication.promote_delay_ms),
        // A restore's stage answers, and its commit starts, this much later.
        ("restore-delay", &m.restore_delay_ms),
        // A target's Commit waits between taking the slots and recording it.
        ("slot-migration-commit-delay", &m.commit_delay_ms),
        // This node's slot snapshot streams (to a migration target, or to a replica fetching
        // imported slots) pause after each chunk.
        ("slot-migration-delay", &m.chunk_delay_ms),
    ];
    hooks.into_iter().find(|(n, _)| is(sub, n)).map(|(_, h)| h)
}

impl From<crate::storage::StorageError> for CmdError {
    fn from(e: crate::storage::StorageError) -> Self {
        CmdError::Keyspace(e.into())
    }
}

pub fn watch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    // Writes staged earlier in this pipeline happened before the WATCH.
    ctx.ks.commit()?;
    for k in &args[1..] {
        let at = ctx.ks.peek(k)?.and_then(|(_, at)| at);
        let flag = ctx.node.keyspace.watch(ctx.client.db, k);
        ctx.client.watched.push((flag, at));
    }
    Ok(Reply::OK)
}

pub fn unwatch(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.client.watched.clear();
    Ok(Reply::OK)
}

/// MULTI/EXEC/DISCARD reach a handler only when the connection's transaction logic did not
/// take them: EXEC or DISCARD without MULTI.
pub fn multi_outside(_ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = text(&args[0]).to_ascii_uppercase();
    Err(CmdError::err(format!("{name} without MULTI")))
}

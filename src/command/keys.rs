//! Generic key commands: existence, deletion, TTLs, renames, iteration, DUMP/RESTORE, OBJECT.

use bytes::Bytes;

use super::args::{int, is, text};

use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::{now_ms, Entry, Kind, Renamed, ScanFilter, Update, Value};
use crate::rdb::Object;
use crate::resp::Reply;

fn key_refs(args: &[Bytes]) -> Vec<&[u8]> {
    args.iter().map(|a| &a[..]).collect()
}

pub fn del(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = key_refs(&args[1..]);
    let mut seen: Vec<&[u8]> = Vec::new();
    let n = ctx.ks.update_many_raw(&keys, |old| {
        let mut n = 0;
        let ups = old
            .iter()
            .zip(&keys)
            .map(|(e, k)| {
                if e.is_some() && !seen.contains(k) {
                    n += 1;
                }
                seen.push(k);
                Update::Delete
            })
            .collect();
        (ups, n)
    })?;
    Ok(Reply::Int(n))
}

pub fn exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for k in &args[1..] {
        if ctx.ks.peek(k)?.is_some() {
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

pub fn type_(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(match ctx.ks.lookup_raw(&args[1])? {
        Some(e) => Reply::Status(e.value.type_name()),
        None => Reply::Status("none"),
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Cond {
    Always,
    Nx,
    Xx,
    Gt,
    Lt,
}

fn expire_generic(
    ctx: &mut Ctx,
    args: &[Bytes],
    unit: i64,
    absolute: bool,
    cmd: &str,
) -> CmdResult {
    let mut cond = Cond::Always;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        if is(a, "nx") {
            nx = true;
            cond = Cond::Nx;
        } else if is(a, "xx") {
            xx = true;
            cond = Cond::Xx;
        } else if is(a, "gt") {
            gt = true;
            cond = Cond::Gt;
        } else if is(a, "lt") {
            lt = true;
            cond = Cond::Lt;
        } else {
            return Err(CmdError::err(format!("Unsupported option {}", text(a))));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CmdError::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    let v = int(&args[2])?;
    let invalid = || CmdError::err(format!("invalid expire time in '{cmd}' command"));
    let ms = v.checked_mul(unit).ok_or_else(invalid)?;
    // One clock reading for the deadline and the "already past" test, as Valkey's command
    // time: PEXPIRE k 1 never deletes k on the spot.
    let now = now_ms();
    let at = if absolute {
        ms
    } else {
        ms.checked_add(now).ok_or_else(invalid)?
    };

    ctx.ks.update_raw(&args[1], |old| {
        let Some(e) = old else {
            return (Update::Keep, Ok(Reply::Int(0)));
        };
        let ok = match (cond, e.expire_at) {
            (Cond::Always, _) => true,
            (Cond::Nx, cur) => cur.is_none(),
            (Cond::Xx, cur) => cur.is_some(),
            // A key without a TTL counts as an infinite TTL.
            (Cond::Gt, cur) => cur.is_some_and(|c| at > c),
            (Cond::Lt, cur) => cur.is_none_or(|c| at < c),
        };
        if !ok {
            return (Update::Keep, Ok(Reply::Int(0)));
        }
        if at <= now {
            return (Update::Delete, Ok(Reply::Int(1)));
        }
        (
            Update::Put(Entry {
                expire_at: Some(at),
                ..e
            }),
            Ok(Reply::Int(1)),
        )
    })?
}

pub fn expire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1000, false, "expire")
}
pub fn pexpire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1, false, "pexpire")
}
pub fn expireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1000, true, "expireat")
}
pub fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

fn ttl_generic(ctx: &mut Ctx, key: &[u8], f: impl Fn(i64) -> i64) -> CmdResult {
    Ok(Reply::Int(match ctx.ks.peek(key)? {
        None => -2,
        Some((_, None)) => -1,
        Some((_, Some(at))) => f(at),
    }))
}

pub fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at| ((at - now_ms()).max(0) + 500) / 1000)
}
pub fn pttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at| (at - now_ms()).max(0))
}
pub fn expiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at| at / 1000)
}
pub fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at| at)
}

pub fn persist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.ks.update_raw(&args[1], |old| match old {
        Some(e) if e.expire_at.is_some() => (
            Update::Put(Entry {
                expire_at: None,
                ..e
            }),
            Ok(Reply::Int(1)),
        ),
        _ => (Update::Keep, Ok(Reply::Int(0))),
    })?
}

fn rename_generic(ctx: &mut Ctx, args: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (&args[1][..], &args[2][..]);
    // A missing source answers before the destination is looked at (and lazily expired).
    ctx.ks.expire_if_needed(src)?;
    if ctx.ks.peek(src)?.is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if src != dst
        && ctx
            .ks
            .peek(src)?
            .is_some_and(|(t, _)| t != crate::keyspace::TYPE_STRING_TAG)
    {
        // A collection moves with its members: one batch under both keys' locks.
        return match ctx.ks.rename_collection(src, dst, nx, false)? {
            Renamed::NoSuchKey => Err(CmdError::NoSuchKey),
            Renamed::Exists => Ok(Reply::Int(0)),
            Renamed::Done => Ok(if nx { Reply::Int(1) } else { Reply::OK }),
        };
    }
    ctx.ks.update_many(&[src, dst], |old| {
        let keep = vec![Update::Keep, Update::Keep];
        let Some(e) = old[0].clone() else {
            return (keep, Err(CmdError::NoSuchKey));
        };
        if src == dst {
            return (keep, Ok(if nx { Reply::Int(0) } else { Reply::OK }));
        }
        if nx && old[1].is_some() {
            return (keep, Ok(Reply::Int(0)));
        }
        (
            vec![Update::Delete, Update::Put(e)],
            Ok(if nx { Reply::Int(1) } else { Reply::OK }),
        )
    })?
}

/// COPY source destination [DB n] [REPLACE], with Valkey's checks in its order.
pub fn copy(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (src, dst) = (&args[1][..], &args[2][..]);
    let mut replace = false;
    let mut db = ctx.client.db;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "replace") {
            replace = true;
        } else if is(&args[i], "db") && i + 1 < args.len() {
            let n = int(&args[i + 1])?;
            // Valkey 8's cluster mode has the databases but refuses to copy across them.
            db = if super::server_cmds::single_db_cluster(ctx) && (0..16).contains(&n) {
                n as u8
            } else {
                super::server_cmds::db_in_range(ctx, n)?
            };
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if super::server_cmds::single_db_cluster(ctx) && (db != 0 || ctx.client.db != 0) {
        return Err(CmdError::err(
            "Copying to another database is not allowed in cluster mode",
        ));
    }
    if src == dst && db == ctx.client.db {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    match ctx.ks.transfer(src, Some(db), dst, !replace, true)? {
        Renamed::NoSuchKey | Renamed::Exists => Ok(Reply::Int(0)),
        Renamed::Done => Ok(Reply::Int(1)),
    }
}

/// MOVE key db: the key goes to another database unless one of that name is there.
pub fn move_key(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if super::server_cmds::single_db_cluster(ctx) {
        return Err(CmdError::err("MOVE is not allowed in cluster mode"));
    }
    let db = super::server_cmds::int32(&args[2], None)?;
    let db = super::server_cmds::db_in_range(ctx, db)?;
    if db == ctx.client.db {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    match ctx.ks.transfer(&args[1], Some(db), &args[1], true, false)? {
        Renamed::NoSuchKey | Renamed::Exists => Ok(Reply::Int(0)),
        Renamed::Done => Ok(Reply::Int(1)),
    }
}

pub fn rename(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, false)
}
pub fn renamenx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, true)
}

/// SCAN COUNT above which the walk runs as a long command.
const LONG_SCAN: usize = 1000;

pub fn scan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor: u64 = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CmdError::err("invalid cursor"))?;
    let mut count = 10usize;
    let (mut pattern, mut type_name) = (None, None);
    let mut i = 2;
    while i < args.len() {
        let v = args.get(i + 1).ok_or(CmdError::Syntax)?;
        if is(&args[i], "match") {
            pattern = Some(&v[..]);
        } else if is(&args[i], "count") {
            let c = int(v)?;
            if c < 1 {
                return Err(CmdError::Syntax);
            }
            count = c.min(1 << 20) as usize;
        } else if is(&args[i], "type") {
            type_name = Some(&v[..]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    // A pattern without wildcards names one key: no need to walk the keyspace.
    let filter = ScanFilter {
        pattern,
        type_name,
        slots: None,
        db: ctx.client.db,
    };
    let (next, keys) = if count > LONG_SCAN {
        super::long_running(|| ctx.node.keyspace.scan(cursor, count, &filter))?
    } else {
        ctx.node.keyspace.scan(cursor, count, &filter)?
    };
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::bulks(keys.into_iter().map(Bytes::from)),
    ]))
}

pub fn keys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let filter = ScanFilter {
        pattern: Some(&args[1]),
        type_name: None,
        slots: None,
        db: ctx.client.db,
    };
    let keys = super::long_running(|| ctx.node.keyspace.keys(&filter))?;
    Ok(Reply::bulks(keys.into_iter().map(Bytes::from)))
}

pub fn randomkey(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::opt_bulk(
        ctx.node
            .keyspace
            .random_key(ctx.client.db, None)?
            .map(Bytes::from),
    ))
}

pub fn touch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    exists(ctx, args)
}

pub fn dump(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(match ctx.ks.lookup(&args[1])? {
        Some(e) => Reply::Bulk(Bytes::from(ctx.ks.dump_payload(&args[1], &e)?)),
        None => Reply::Nil,
    })
}

pub fn restore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Valkey's order: options, then BUSYKEY, then the TTL, then the payload.
    let (mut replace, mut absttl) = (false, false);
    let (mut idletime, mut freq) = (false, false);
    let mut i = 4;
    while i < args.len() {
        let a = &args[i];
        let more = i + 1 < args.len();
        if is(a, "replace") {
            replace = true;
        } else if is(a, "absttl") {
            absttl = true;
        } else if is(a, "idletime") && more && !freq {
            if int(&args[i + 1])? < 0 {
                return Err(CmdError::err("Invalid IDLETIME value, must be >= 0"));
            }
            idletime = true;
            i += 1;
        } else if is(a, "freq") && more && !idletime {
            if !(0..=255).contains(&int(&args[i + 1])?) {
                return Err(CmdError::err("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if !replace && ctx.ks.peek(&args[1])?.is_some() {
        return Err(CmdError::Line(
            "BUSYKEY Target key name already exists.".into(),
        ));
    }
    let ttl = int(&args[2])?;
    if ttl < 0 {
        return Err(CmdError::err("Invalid TTL value, must be >= 0"));
    }
    let restored = crate::rdb::read_payload(&args[3]).map_err(|e| CmdError::err(e.to_string()))?;
    let expire_at = match (ttl, absttl) {
        (0, _) => None,
        (t, true) => Some(t),
        (t, false) => Some(now_ms().saturating_add(t)),
    };
    let busy = || CmdError::Line("BUSYKEY Target key name already exists.".into());
    let key = &args[1];
    let stored = match restored {
        Object::Str(b) => b,
        Object::ZSet(m) => {
            return match ctx.ks.zset_put_all(key, m, expire_at, !replace)? {
                true => Ok(Reply::OK),
                false => Err(busy()),
            };
        }
        Object::Stream(st) => {
            return match ctx.ks.stream_put_all(key, *st, expire_at, !replace)? {
                true => Ok(Reply::OK),
                false => Err(busy()),
            };
        }
        Object::List(elems) => {
            return match ctx.ks.list_put_all(key, elems, expire_at, !replace)? {
                true => Ok(Reply::OK),
                false => Err(busy()),
            };
        }
        Object::Hash(fields) => {
            return match ctx
                .ks
                .coll_put_all(key, Kind::Hash, fields, &[], expire_at, !replace)?
            {
                true => Ok(Reply::OK),
                false => Err(busy()),
            };
        }
        Object::VolatileHash(entries) => {
            let ttls: Vec<(Vec<u8>, i64)> = entries
                .iter()
                .filter_map(|(f, _, t)| t.map(|t| (f.clone(), t)))
                .collect();
            let fields = entries.into_iter().map(|(f, v, _)| (f, v)).collect();
            return match ctx
                .ks
                .coll_put_all(key, Kind::Hash, fields, &ttls, expire_at, !replace)?
            {
                true => Ok(Reply::OK),
                false => Err(busy()),
            };
        }
        Object::Set(members) => {
            let m = members.into_iter().map(|m| (m, Vec::new())).collect();
            return match ctx
                .ks
                .coll_put_all(key, Kind::Set, m, &[], expire_at, !replace)?
            {
                true => Ok(Reply::OK),
                false => Err(busy()),
            };
        }
    };
    let value = Value::Str(stored);
    ctx.ks.update(&args[1], |old| {
        if old.is_some() && !replace {
            return (
                Update::Keep,
                Err(CmdError::Line(
                    "BUSYKEY Target key name already exists.".into(),
                )),
            );
        }
        // An already-expired absolute TTL restores nothing (and removes a replaced key).
        if expire_at.is_some_and(|at| at <= now_ms()) {
            return (Update::Delete, Ok(Reply::OK));
        }
        (Update::Put(Entry { value, expire_at }), Ok(Reply::OK))
    })?
}

pub fn object(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "help") {
        return Ok(Reply::Array(
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|s| Reply::Status(s))
            .collect(),
        ));
    }
    if args.len() != 3 {
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try OBJECT HELP.",
            text(sub)
        )));
    }
    let Some(e) = ctx.ks.lookup_raw(&args[2])? else {
        return Ok(Reply::Nil);
    };
    if is(sub, "encoding") {
        if let Value::Hash(..) = &e.value {
            return Ok(Reply::bulk_str(super::hashes::encoding(ctx, &args[2])?));
        }
        if let Value::Set(n) = &e.value {
            return Ok(Reply::bulk_str(super::sets::encoding(ctx, &args[2], *n)?));
        }
        let l = super::encodings::Limits::of(ctx.node);
        let key = &args[2];
        let enc = match &e.value {
            Value::Str(b) => super::encodings::string(b),
            Value::Chunked(_) => "raw",
            Value::Stream(_) => "stream",
            Value::Hash(..) | Value::Set(_) => "hashtable",
            Value::ZSet(n) => {
                let short = *n <= l.zset_entries
                    && super::zsets::read(ctx, key, |z| {
                        Ok(match z {
                            Some(z) => z.all()?.iter().all(|(m, _)| m.len() <= l.zset_value),
                            None => true,
                        })
                    })?;
                if short {
                    "listpack"
                } else {
                    "skiplist"
                }
            }
            Value::List { len, .. } => {
                let elems = if l.list_needs_elements(*len) {
                    ctx.ks.list_elements(key)?
                } else {
                    Vec::new()
                };
                if l.list_is_listpack(*len, &elems) {
                    "listpack"
                } else {
                    "quicklist"
                }
            }
        };
        Ok(Reply::bulk_str(enc))
    } else if is(sub, "refcount") {
        Ok(Reply::Int(1))
    } else if is(sub, "idletime") || is(sub, "freq") {
        // Like Valkey, a key answers with the figure its eviction policy keeps or says why
        // not.
        let lfu = ctx.node.access.lfu(&ctx.node.config);
        let db = ctx.ks.db();
        const ADJUST: &str = "Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
        match (is(sub, "freq"), lfu) {
            (true, false) => Err(CmdError::err(format!(
                "An LFU maxmemory policy is not selected, access frequency not tracked. {ADJUST}"
            ))),
            (false, true) => Err(CmdError::err(format!(
                "An LFU maxmemory policy is selected, idle time not tracked. {ADJUST}"
            ))),
            (true, true) => Ok(Reply::Int(ctx.node.access.freq(db, &args[2]).into())),
            (false, false) => Ok(Reply::Int(ctx.node.access.idle_secs(db, &args[2]) as i64)),
        }
    } else {
        Err(CmdError::UnknownSubcommand(text(sub), "OBJECT".into()))
    }
}

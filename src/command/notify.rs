//! Keyspace notifications of commands: which event a write command raises on which of its
//! keys, with Valkey's names and classes. A key gets events only if the command wrote it
//! (the write scope notes every key it stages), so a command that changed nothing (SADD of
//! a member already there, SET NX over a key) raises nothing, as in Valkey; `new` comes
//! before a created key's event and `del` after the event that emptied a collection.
//!
//! Must not: publish itself (the node's `Notifier` does) or touch storage beyond reading
//! whether a key exists.

use bytes::Bytes;

use super::args::is;
use super::Ctx;
use crate::config::KeyspaceEvents as Ev;
use crate::resp::Reply;

/// What follows when the command's write left the key absent.
#[derive(Clone, Copy, PartialEq)]
enum Emptied {
    /// The event, then `del` (a pop that took the last element).
    AlsoDel,
    /// Only `del` (a STORE with an empty result, an EXPIRE in the past).
    OnlyDel,
    /// The event is the deletion itself (`del`, `move_from`, `rename_from`).
    Itself,
    /// Only `expired` (an EXPIRE, GETEX or SET with a time in the past, as Valkey 8).
    Expired,
}

type Events = (Vec<(u16, &'static str)>, Emptied);

/// The direction word of LMPOP/ZMPOP (`numkeys` at `at`, the word after the keys).
fn direction(args: &[Bytes], at: usize) -> Option<&Bytes> {
    let n: usize = std::str::from_utf8(args.get(at)?).ok()?.parse().ok()?;
    args.get(at + 1 + n)
}

/// Whether an option word from `words` is among `args[from..]`.
fn has_any(args: &[Bytes], from: usize, words: &[&str]) -> bool {
    args.iter()
        .skip(from)
        .any(|a| words.iter().any(|w| is(a, w)))
}

/// Hash field TTL commands: their events depend on what they did to each field.
fn raises_own(name: &str) -> bool {
    matches!(
        name,
        "hexpire" | "hpexpire" | "hexpireat" | "hpexpireat" | "hpersist" | "hgetex" | "hsetex"
    )
}

/// The events of the key at key index `i` (0 = the command's first key).
fn events(name: &str, args: &[Bytes], i: usize) -> Events {
    use Emptied::*;
    let g = |e| (vec![(Ev::GENERIC, e)], OnlyDel);
    let s = |e| (vec![(Ev::STRING, e)], OnlyDel);
    let l = |e| (vec![(Ev::LIST, e)], AlsoDel);
    let st = |e| (vec![(Ev::SET, e)], AlsoDel);
    let h = |e| (vec![(Ev::HASH, e)], AlsoDel);
    let z = |e| (vec![(Ev::ZSET, e)], AlsoDel);
    let store = |class, e| (vec![(class, e)], OnlyDel);
    let set_expire = || (vec![(Ev::STRING, "set"), (Ev::GENERIC, "expire")], Expired);
    let expire = |e| (vec![(Ev::GENERIC, e)], Expired);
    match name {
        "set" if has_any(args, 3, &["ex", "px", "exat", "pxat"]) => set_expire(),
        "set" | "setnx" | "getset" | "mset" | "msetnx" => s("set"),
        "setex" | "psetex" => set_expire(),
        "incr" | "decr" | "incrby" | "decrby" => s("incrby"),
        "incrbyfloat" => s("incrbyfloat"),
        "append" => s("append"),
        "setrange" => s("setrange"),
        "setbit" | "bitfield" => s("setbit"),
        "bitop" => s("set"),
        "pfadd" | "pfmerge" => s("pfadd"),
        "getex" if has_any(args, 2, &["persist"]) => g("persist"),
        "getex" => expire("expire"),
        "del" | "unlink" | "getdel" | "delifeq" => (vec![(Ev::GENERIC, "del")], Itself),
        "expire" | "pexpire" | "expireat" | "pexpireat" => expire("expire"),
        "persist" => g("persist"),
        "move" => (vec![(Ev::GENERIC, "move_from")], Itself),
        "copy" => g("copy_to"),
        "rename" | "renamenx" if i == 0 => (vec![(Ev::GENERIC, "rename_from")], Itself),
        "rename" | "renamenx" => g("rename_to"),
        "restore" | "restore-asking" => g("restore"),
        "sort" | "sort_ro" => store(Ev::LIST, "sortstore"),
        "hset" | "hmset" | "hsetnx" => h("hset"),
        "hdel" | "hgetdel" => h("hdel"),
        // Raised by the commands themselves (see `raises_own`); a key emptied adds `del`.
        "hexpire" | "hpexpire" | "hexpireat" | "hpexpireat" | "hpersist" | "hgetex" | "hsetex" => {
            (Vec::new(), AlsoDel)
        }
        "hincrby" => h("hincrby"),
        "hincrbyfloat" => h("hincrbyfloat"),
        "sadd" => st("sadd"),
        "srem" => st("srem"),
        "spop" => st("spop"),
        "smove" if i == 0 => st("srem"),
        "smove" => st("sadd"),
        "sinterstore" => store(Ev::SET, "sinterstore"),
        "sunionstore" => store(Ev::SET, "sunionstore"),
        "sdiffstore" => store(Ev::SET, "sdiffstore"),
        "lpush" | "lpushx" => l("lpush"),
        "rpush" | "rpushx" => l("rpush"),
        "lpop" | "blpop" => l("lpop"),
        "rpop" | "brpop" => l("rpop"),
        "lset" => l("lset"),
        "ltrim" => l("ltrim"),
        "lrem" => l("lrem"),
        "linsert" => l("linsert"),
        "rpoplpush" | "brpoplpush" if i == 0 => l("rpop"),
        "rpoplpush" | "brpoplpush" => l("lpush"),
        "lmove" | "blmove" => {
            // LMOVE|BLMOVE source destination wherefrom whereto
            let word = if i == 0 { &args[3] } else { &args[4] };
            match (i == 0, is(word, "left")) {
                (true, true) => l("lpop"),
                (true, false) => l("rpop"),
                (false, true) => l("lpush"),
                (false, false) => l("rpush"),
            }
        }
        "lmpop" | "blmpop" => {
            let at = if name == "lmpop" { 1 } else { 2 };
            match direction(args, at) {
                Some(w) if is(w, "left") => l("lpop"),
                _ => l("rpop"),
            }
        }
        "zadd" if has_any(args, 2, &["incr"]) => z("zincr"),
        "zadd" | "geoadd" => z("zadd"),
        "zincrby" => z("zincr"),
        "zrem" => z("zrem"),
        "zpopmin" | "bzpopmin" => z("zpopmin"),
        "zpopmax" | "bzpopmax" => z("zpopmax"),
        "zmpop" | "bzmpop" => {
            let at = if name == "zmpop" { 1 } else { 2 };
            match direction(args, at) {
                Some(w) if is(w, "min") => z("zpopmin"),
                _ => z("zpopmax"),
            }
        }
        "zremrangebyscore" => z("zremrangebyscore"),
        "zremrangebylex" => z("zremrangebylex"),
        "zremrangebyrank" => z("zremrangebyrank"),
        "zunionstore" => store(Ev::ZSET, "zunionstore"),
        "zinterstore" => store(Ev::ZSET, "zinterstore"),
        "zdiffstore" => store(Ev::ZSET, "zdiffstore"),
        "zrangestore" => store(Ev::ZSET, "zrangestore"),
        "georadius" | "georadiusbymember" => store(Ev::ZSET, "georadiusstore"),
        "geosearchstore" => store(Ev::ZSET, "geosearchstore"),
        _ => (Vec::new(), OnlyDel),
    }
}

/// The keys a command is about to look at that are expired: Valkey's lookups delete them
/// (and raise `expired`) even where rockslot reads a collection without deleting. Commands
/// that stop at a missing first key look at the others only later, themselves.
pub fn expired_ahead(ctx: &mut Ctx, name: &str, args: &[Bytes], keys: &[usize]) -> Ahead {
    let first_only = matches!(
        name,
        "lmove" | "blmove" | "rpoplpush" | "brpoplpush" | "rename" | "renamenx" | "copy"
    );
    // A STORE's destination is looked at when the result is stored, by its own write.
    let skip_first = stores_into_first(name);
    let first_only = first_only || matches!(name, "sort" | "georadius" | "georadiusbymember");
    keys.iter()
        .take(if first_only { 1 } else { keys.len() })
        .skip(usize::from(skip_first))
        .map(|&p| {
            let state = ctx.ks.stored_live(&args[p]).unwrap_or(None);
            (p, state == Some(false), state == Some(true))
        })
        .collect()
}

/// The keys a command looks at in order: (argument position, expired, live).
pub type Ahead = Vec<(usize, bool, bool)>;

/// Commands whose first key is where they store a result.
fn stores_into_first(name: &str) -> bool {
    matches!(
        name,
        "zrangestore"
            | "zunionstore"
            | "zinterstore"
            | "zdiffstore"
            | "sinterstore"
            | "sunionstore"
            | "sdiffstore"
            | "bitop"
            | "geosearchstore"
    )
}

/// The key index where a STORE command puts its result, if it is one.
fn store_index(name: &str, keys: usize) -> Option<usize> {
    if stores_into_first(name) {
        Some(0)
    } else if matches!(name, "sort" | "georadius" | "georadiusbymember") && keys > 1 {
        Some(keys - 1)
    } else {
        None
    }
}

/// Deletes the keys [`expired_ahead`] found that the command left in place. Called while the
/// write scope still notes expiries, so they are announced with the command's own, in key
/// order and before its events (Valkey's lookups come first).
///
/// After WRONGTYPE only the keys before the first live one count: the first live key may be
/// the one of the wrong type, and Valkey looks no further than that (an expired key after a
/// live one of the right type is left for later here).
///
/// After NOGROUP (XREADGROUP) the keys after the one the error names were not looked at.
pub fn expire_left(ctx: &mut Ctx, args: &[Bytes], ahead: &Ahead, reply: &Reply) {
    let wrong_type = matches!(reply, Reply::Error(e) if e.starts_with("WRONGTYPE"));
    let stop = if wrong_type {
        ahead
            .iter()
            .position(|(_, _, live)| *live)
            .unwrap_or(ahead.len())
    } else {
        ahead
            .iter()
            .position(|&(p, _, _)| super::keymiss::stopped_at(reply, &args[p]))
            .map_or(ahead.len(), |i| i + 1)
    };
    for &(p, _, _) in ahead[..stop].iter().filter(|(_, expired, _)| *expired) {
        if let Err(e) = ctx.ks.expire_if_needed(&args[p]) {
            tracing::error!("lazy expiry: {e}");
        }
    }
}

/// Whether each of `keys` exists now in the selected database, read before a write command
/// runs (for `new` and `del`).
pub fn existence(ctx: &mut Ctx, args: &[Bytes], keys: &[usize]) -> Vec<bool> {
    keys.iter()
        .map(|&p| ctx.ks.peek(&args[p]).ok().flatten().is_some())
        .collect()
}

/// Publishes the events of a write command that staged writes to `written` (physical
/// database, key); `keys` are its key positions and `before` whether each existed.
pub fn command_ran(
    ctx: &mut Ctx,
    flags: Ev,
    name: &str,
    args: &[Bytes],
    keys: &[usize],
    before: &[bool],
    written: crate::keyspace::Written,
) {
    let crate::keyspace::Written {
        keys: written,
        expired,
    } = written;
    let db = ctx.ks.db();
    let logical = ctx.client.db;
    let mut done: Vec<&[u8]> = Vec::new();
    let own_events = std::mem::take(&mut ctx.client.events);
    let notifier = &ctx.node.notify;
    let pubsub = &ctx.node.pubsub;
    let send = |class: u16, event: &str, db: u8, key: &[u8]| {
        if flags.wants(class) {
            notifier.publish(pubsub, flags, event, db, key);
        }
    };
    // Most commands look all their keys up before they change any, so the expiries come
    // first; MSET and DEL take key after key.
    let key_by_key = matches!(name, "mset" | "msetnx" | "del" | "unlink");
    let mut expired = expired;
    if !key_by_key {
        // A STORE looks its sources up before its destination.
        let store = store_index(name, keys.len());
        let sources = (0..keys.len()).filter(|&i| Some(i) != store);
        for i in sources.chain(store) {
            let key = &args[keys[i]][..];
            let wrote = written.iter().any(|(d, k)| *d == db && k == key);
            // An empty result deletes an expired destination no lookup expired: Valkey's
            // dbDelete announces `del`, not `expired`.
            let dropped = Some(i) == store_index(name, keys.len())
                && !wrote
                && keys.iter().filter(|&&q| args[q][..] == *key).count() == 1;
            if let Some(at) = expired.iter().position(|(d, k)| *d == db && k == key) {
                expired.remove(at);
                if dropped {
                    send(Ev::GENERIC, "del", logical, key);
                } else {
                    send(Ev::EXPIRED, "expired", logical, key);
                }
            }
        }
    }
    // MOVE's and COPY … DB's destination in the other database is looked up (and expired)
    // before the command announces anything of its own.
    expired.retain(|(d, key)| {
        if *d != db {
            send(Ev::EXPIRED, "expired", ctx.node.keyspace.logical(*d), key);
        }
        *d == db
    });
    // MOVE adds the key to the other database before it announces the move.
    if name == "move" {
        for (d, key) in written.iter().filter(|(d, _)| *d != db) {
            send(Ev::NEW, "new", ctx.node.keyspace.logical(*d), key);
        }
    }
    // LMOVE pushes (and announces the push) before it announces the pop.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    if matches!(name, "lmove" | "blmove" | "rpoplpush" | "brpoplpush") {
        order.reverse();
    }
    for i in order {
        let key = &args[keys[i]][..];
        // MSET raises `set` per pair, a name given twice included; other commands once a key.
        let seen = done.contains(&key);
        let again = seen && !matches!(name, "mset" | "msetnx");
        let wrote = written.iter().any(|(d, k)| *d == db && k == key);
        if !seen && expired.iter().any(|(d, k)| *d == db && k == key) {
            send(Ev::EXPIRED, "expired", logical, key);
        }
        if again || !wrote {
            done.push(key);
            continue;
        }
        done.push(key);
        // Stored, not live: a key given a TTL of 1 ms may already be past it here.
        let now = ctx.ks.is_stored(key).unwrap_or(false);
        // These add the key anew even over an old one (Valkey's dbAdd after a delete).
        let replaced = matches!(
            (name, i),
            ("copy" | "rename" | "renamenx", 1) | ("restore" | "restore-asking", 0)
        );
        let created = (!before[i] || replaced) && now && !seen;
        let deleted = before[i] && !now;
        // RENAME adds the destination before it announces the source.
        let hoisted = matches!(name, "rename" | "renamenx") && i == 1;
        if created && !hoisted {
            send(Ev::NEW, "new", logical, key);
        }
        if matches!(name, "rename" | "renamenx") && i == 0 && keys.len() == 2 {
            let dst = &args[keys[1]][..];
            if dst != key && ctx.ks.is_stored(dst).unwrap_or(false) {
                send(Ev::NEW, "new", logical, dst);
            }
        }
        let (mut evs, emptied) = events(name, args, i);
        // Stream commands raise what they did (an XADD that trimmed adds `xtrim`), as do
        // hash commands that met a passed field.
        if name.starts_with('x') || raises_own(name) || !own_events.is_empty() {
            evs = own_events
                .iter()
                .filter(|(_, _, k)| k[..] == *key)
                .map(|(c, e, _)| (*c, *e))
                .collect();
        }
        // LMOVE l l: the push, then the pop, on the same list.
        if matches!(name, "lmove" | "blmove" | "rpoplpush" | "brpoplpush") && args[1] == args[2] {
            evs = events(name, args, 1)
                .0
                .into_iter()
                .chain(events(name, args, 0).0)
                .collect();
        }
        match (deleted, emptied) {
            (true, Emptied::OnlyDel) => send(Ev::GENERIC, "del", logical, key),
            (true, Emptied::Expired) => send(Ev::EXPIRED, "expired", logical, key),
            _ => {
                for (class, e) in evs {
                    send(class, e, logical, key);
                }
                if deleted && emptied == Emptied::AlsoDel {
                    send(Ev::GENERIC, "del", logical, key);
                }
            }
        }
    }
    for (d, key) in &expired {
        if !(*d == db && done.contains(&key.as_slice())) {
            send(Ev::EXPIRED, "expired", ctx.node.keyspace.logical(*d), key);
        }
    }
    // Keys written that are not the command's own: MOVE's and COPY … DB's destination in
    // another database, MIGRATE's moved keys.
    for (d, key) in &written {
        if *d == db && done.contains(&key.as_slice()) {
            continue;
        }
        if *d != db {
            let other = ctx.node.keyspace.logical(*d);
            match name {
                "move" => send(Ev::GENERIC, "move_to", other, key),
                "copy" => {
                    send(Ev::NEW, "new", other, key);
                    send(Ev::GENERIC, "copy_to", other, key);
                }
                _ => {}
            }
        } else if !ctx.ks.is_stored(key).unwrap_or(true) {
            send(Ev::GENERIC, "del", logical, key);
        }
    }
}

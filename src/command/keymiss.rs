//! `keymiss` notifications: which keys a command looks up for reading, in Valkey's order
//! (its `lookupKeyRead`), so each lookup that finds nothing is announced, after the
//! `expired` of a key the same lookup deleted and before the command's own events.
//! Commands that look a key up for writing (INCR, LPOP, DEL, RENAME…) announce no miss.
//!
//! Must not: change what a command does or replies; it reads key types before the command
//! runs and publishes afterwards.

use bytes::Bytes;

use super::args::is;
use super::Ctx;
use crate::config::KeyspaceEvents as Ev;
use crate::resp::Reply;

/// The keys a command will look up for reading, in lookup order (a key looked up twice is
/// listed twice), each with its TYPE and whether it is live, as stored before the command.
pub struct Lookups(Vec<(usize, Option<(&'static str, bool)>)>);

/// The argument positions of the keys `name` looks up for reading; `keys` are its key
/// positions and `read_only` whether the command is flagged so.
fn read_positions(name: &str, args: &[Bytes], keys: &[usize], read_only: bool) -> Vec<usize> {
    let has = |from: usize, word: &str| args.iter().skip(from).any(|a| is(a, word));
    match name {
        // OBJECT's and MEMORY USAGE's subcommands look without a lookup that notifies.
        "encoding" | "refcount" | "idletime" | "freq" | "usage" => Vec::new(),
        // XREAD looks every key up while it parses the ids, then again to serve them.
        "xread" => keys.iter().chain(keys).copied().collect(),
        "getset" | "getdel" | "getex" | "pfmerge" | "migrate" | "xreadgroup" | "xclaim"
        | "xautoclaim" | "xack" => keys.to_vec(),
        "set" if has(3, "get") => keys.to_vec(),
        "bitfield" if !(has(2, "set") || has(2, "incrby")) => keys.to_vec(),
        // The source only; the destination is written.
        "copy" | "sort" | "georadius" | "georadiusbymember" => {
            keys.iter().take(1).copied().collect()
        }
        "zrangestore" | "zunionstore" | "zinterstore" | "zdiffstore" | "sinterstore"
        | "sunionstore" | "sdiffstore" | "bitop" | "geosearchstore" => {
            keys.iter().skip(1).copied().collect()
        }
        _ if read_only => keys.to_vec(),
        _ => Vec::new(),
    }
}

/// Reads, before `name` runs, what its read lookups will find.
pub fn ahead(ctx: &Ctx, name: &str, args: &[Bytes], keys: &[usize], read_only: bool) -> Lookups {
    Lookups(
        read_positions(name, args, keys, read_only)
            .into_iter()
            .map(|p| (p, ctx.ks.stored_type(&args[p]).unwrap_or(None)))
            .collect(),
    )
}

/// Whether a live key of type `ty` at `key` makes `name` stop with WRONGTYPE there (the
/// lookups after it never happen).
fn refused(ctx: &Ctx, name: &str, ty: &str, key: &[u8]) -> bool {
    match name {
        "sinter" | "sunion" | "sdiff" | "sintercard" | "sinterstore" | "sunionstore"
        | "sdiffstore" => ty != "set",
        "zunion" | "zinter" | "zdiff" | "zintercard" | "zunionstore" | "zinterstore"
        | "zdiffstore" => ty != "set" && ty != "zset",
        "pfcount" | "pfmerge" => match ctx.ks.stored_string(key) {
            Ok(Some(b)) => crate::rdb::hll::validate(&b).is_err(),
            _ => true,
        },
        "bitop" => ty != "string",
        "xread" | "xreadgroup" => ty != "stream",
        // LCS looks both keys up before it checks either; the others take any type.
        "lcs" | "mget" | "exists" | "touch" | "migrate" => false,
        // A single key: the live key refused is the only one.
        _ => true,
    }
}

/// Whether a command that replied `reply` looked its keys up. One refused for its arguments
/// looked at none in Valkey; WRONGTYPE, a missing group or key and LCS's type error come
/// from a lookup (the keys before a wrong-typed one were looked at).
pub fn looked_up(reply: &Reply) -> bool {
    match reply {
        Reply::Error(e) => {
            e.starts_with("WRONGTYPE")
                || e.starts_with("NOGROUP")
                || e == "ERR no such key"
                || e == "ERR The specified keys must contain string values"
        }
        _ => true,
    }
}

/// Whether the lookups stopped at `key`: XREADGROUP's NOGROUP names the first key that is
/// missing or lacks the group, and Valkey looks no further.
pub fn stopped_at(reply: &Reply, key: &[u8]) -> bool {
    match reply {
        Reply::Error(e) if e.starts_with("NOGROUP") => {
            e.contains(&format!("key '{}' or", String::from_utf8_lossy(key)))
        }
        _ => false,
    }
}

/// After `name` replied `reply`: announces, lookup by lookup, the `expired` of a key the
/// lookup deleted (taken out of `expired`, the command's noted expiries) and a `keymiss`
/// for every lookup that found nothing.
pub fn announce(
    ctx: &mut Ctx,
    flags: Ev,
    name: &str,
    args: &[Bytes],
    lookups: &Lookups,
    reply: &Reply,
    expired: &mut Vec<(u8, Vec<u8>)>,
) {
    if !looked_up(reply) {
        return;
    }
    let wrong_type = matches!(reply, Reply::Error(e) if e.starts_with("WRONGTYPE"));
    let (db, logical) = (ctx.ks.db(), ctx.client.db);
    for &(p, state) in &lookups.0 {
        let key = &args[p][..];
        match state {
            Some((ty, true)) if wrong_type && refused(ctx, name, ty, key) => return,
            Some((_, true)) if stopped_at(reply, key) => return,
            Some((_, true)) => continue,
            Some((_, false)) => {
                if let Some(at) = expired.iter().position(|(d, k)| *d == db && k == key) {
                    expired.remove(at);
                    if flags.wants(Ev::EXPIRED) {
                        ctx.node
                            .notify
                            .publish(&ctx.node.pubsub, flags, "expired", logical, key);
                    }
                } else if let Err(e) = ctx.ks.expire_if_needed(key) {
                    // Deleted here, the expiry announces itself.
                    tracing::error!("lazy expiry: {e}");
                }
            }
            None => {}
        }
        if flags.wants(Ev::KEY_MISS) {
            ctx.node
                .notify
                .publish(&ctx.node.pubsub, flags, "keymiss", logical, key);
        }
        if stopped_at(reply, key) {
            return;
        }
    }
}

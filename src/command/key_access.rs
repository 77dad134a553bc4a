//! Which keys a command touches for OBJECT IDLETIME and OBJECT FREQ (the node's
//! `AccessClock` keeps the figures): every key a command looks up, except the lookups Valkey
//! makes without touching (TYPE, EXISTS, the TTL family, OBJECT, MEMORY USAGE) and except
//! for a client in CLIENT NO-TOUCH mode, which only TOUCH still counts.
//!
//! Must not: change what a command does or replies.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::is;
use super::{CommandSpec, Ctx};
use crate::resp::Reply;

/// What a command will touch, read before it runs.
pub struct Touch {
    name: &'static str,
    lfu: bool,
    /// CLIENT NO-TOUCH: only keys the command creates get a figure (a new object's).
    quiet: bool,
    /// Whether each key existed before, read only where it decides something: under LFU
    /// for a write (a key it creates starts anew), and for a quiet client's write. `None`
    /// means every key is taken as existing.
    existed: Option<Vec<bool>>,
}

/// Commands with keys that do not touch them: Valkey's lookups without touching, and
/// commands that name keys without looking them up.
fn touches(name: &str) -> bool {
    !matches!(
        name,
        "type"
            | "exists"
            | "ttl"
            | "pttl"
            | "expiretime"
            | "pexpiretime"
            | "encoding"
            | "refcount"
            | "idletime"
            | "freq"
            | "usage"
            | "watch"
            | "spublish"
            | "ssubscribe"
            | "sunsubscribe"
    )
}

/// What `spec` will touch of its `keys`, or `None`.
pub fn before(ctx: &mut Ctx, spec: &CommandSpec, args: &[Bytes], keys: &[usize]) -> Option<Touch> {
    if !spec.takes_keys() || !touches(spec.name) {
        return None;
    }
    let quiet = spec.name != "touch" && ctx.client.handle.no_touch.load(Ordering::Relaxed);
    let write = spec.is_write();
    if quiet && !write {
        return None;
    }
    let lfu = ctx.node.access.lfu(&ctx.node.config);
    let existed = if write && (lfu || quiet) {
        ctx.ks.select(ctx.client.db);
        Some(
            keys.iter()
                .map(|&p| ctx.ks.peek(&args[p]).ok().flatten().is_some())
                .collect(),
        )
    } else {
        None
    };
    Some(Touch {
        name: spec.name,
        lfu,
        quiet,
        existed,
    })
}

/// After the command replied `reply`: its keys are touched, unless it was refused before
/// looking (a key it only looked for and did not find is touched harmlessly under LRU).
pub fn after(ctx: &mut Ctx, touch: Touch, args: &[Bytes], keys: &[usize], reply: &Reply) {
    if !super::keymiss::looked_up(reply) {
        return;
    }
    ctx.ks.select(ctx.client.db);
    let db = ctx.ks.db();
    if matches!(touch.name, "restore" | "restore-asking") && matches!(reply, Reply::Status(_)) {
        // RESTORE … IDLETIME n or FREQ n sets the figure its policy keeps (the other is
        // ignored, as in Valkey).
        let option = |word: &str| {
            let at = args.iter().skip(4).position(|a| is(a, word))?;
            std::str::from_utf8(args.get(4 + at + 1)?)
                .ok()?
                .parse::<u32>()
                .ok()
        };
        let clock = &ctx.node.access;
        match (option("idletime"), option("freq"), touch.lfu) {
            (Some(idle), _, false) => return clock.set_idle(db, &args[1], idle),
            (_, Some(freq), true) => return clock.set_freq(db, &args[1], freq),
            _ => {}
        }
    }
    for (i, &p) in keys.iter().enumerate() {
        let key = &args[p][..];
        let existed = touch.existed.as_ref().is_none_or(|e| e[i]);
        // A key that did not exist is new if it does now; one that did is touched.
        let created = !existed && ctx.ks.peek(key).ok().flatten().is_some();
        if created || (existed && !touch.quiet) {
            ctx.node.access.touch(db, key, touch.lfu, created);
        }
    }
}

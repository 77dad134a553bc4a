//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO with Valkey's checks and wording, and
//! what the dispatcher tells the tracking table around each command (keys a tracking client
//! read; keys any command changed).
//!
//! Must not: hold the table's state (`node::tracking` does) or send messages itself.

use bytes::Bytes;

use super::args::is;
use super::{CmdError, CmdResult, Ctx};
use crate::node::tracking::TrackingMode;
use crate::resp::Reply;

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
pub fn tracking(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut mode = TrackingMode::default();
    let mut redirect = None;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if is(a, "redirect") && more {
            j += 1;
            if redirect.is_some() {
                return Err(CmdError::err(
                    "A client can only redirect to a single other client",
                ));
            }
            let id = super::args::int(&args[j])?;
            if u64::try_from(id)
                .ok()
                .and_then(|id| ctx.node.clients.get(id))
                .is_none()
            {
                return Err(CmdError::err(
                    "The client ID you want redirect to does not exist",
                ));
            }
            redirect = Some(id as u64);
        } else if is(a, "bcast") {
            mode.bcast = true;
        } else if is(a, "optin") {
            mode.optin = true;
        } else if is(a, "optout") {
            mode.optout = true;
        } else if is(a, "noloop") {
            mode.noloop = true;
        } else if is(a, "prefix") && more {
            j += 1;
            mode.prefixes.push(args[j].clone());
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    mode.redirect = redirect.unwrap_or(0);
    let id = ctx.client.id();
    if is(&args[2], "off") {
        ctx.node.tracking.disable(id);
        ctx.client.tracking = None;
        return Ok(Reply::OK);
    }
    if !is(&args[2], "on") {
        return Err(CmdError::Syntax);
    }
    if !mode.bcast && !mode.prefixes.is_empty() {
        return Err(CmdError::err(
            "PREFIX option requires BCAST mode to be enabled",
        ));
    }
    let old = ctx.client.tracking.clone();
    if old.as_ref().is_some_and(|o| o.bcast != mode.bcast) {
        return Err(CmdError::err(
            "You can't switch BCAST mode on/off before disabling tracking for this client, \
             and then re-enabling it with a different mode.",
        ));
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return Err(CmdError::err(
            "OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if mode.optin && mode.optout {
        return Err(CmdError::err(
            "You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if old
        .as_ref()
        .is_some_and(|o| (mode.optin && o.optout) || (mode.optout && o.optin))
    {
        return Err(CmdError::err(
            "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, \
             and then re-enabling it with a different mode.",
        ));
    }
    // BCAST prefixes accumulate; none of them may be a prefix of another.
    let mut prefixes = old.map(|o| o.prefixes).unwrap_or_default();
    let overlap = |a: &Bytes, b: &Bytes| a.starts_with(b) || b.starts_with(a);
    for (i, p) in mode.prefixes.iter().enumerate() {
        let clash = |q: &Bytes, whose: &str| {
            CmdError::err(format!(
                "Prefix '{}' overlaps with {whose} '{}'. Prefixes for a single client must \
                 not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(q)
            ))
        };
        if let Some(q) = prefixes.iter().find(|q| overlap(p, q)) {
            return Err(clash(q, "an existing prefix"));
        }
        if let Some(q) = mode.prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
            return Err(clash(q, "another provided prefix"));
        }
    }
    prefixes.append(&mut mode.prefixes);
    mode.prefixes = prefixes;
    let subs = ctx
        .node
        .pubsub
        .open(&mut ctx.client.pubsub, &ctx.client.handle);
    let mailbox = subs.mailbox(&ctx.client.handle);
    ctx.node.tracking.enable(id, mode.clone(), mailbox);
    ctx.client.tracking = Some(mode);
    Ok(Reply::OK)
}

/// CLIENT CACHING YES|NO: whether the next command's keys are tracked (OPTIN/OPTOUT).
pub fn caching(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(mode) = ctx.client.tracking.as_ref() else {
        return Err(CmdError::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN \
             or OPTOUT mode enabled",
        ));
    };
    if is(&args[2], "yes") {
        if !mode.optin {
            return Err(CmdError::err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(&args[2], "no") {
        if !mode.optout {
            return Err(CmdError::err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.client.caching = true;
    Ok(Reply::OK)
}

pub fn getredir(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        ctx.client
            .tracking
            .as_ref()
            .map_or(-1, |m| m.redirect as i64),
    ))
}

pub fn trackinginfo(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let s = Reply::bulk_str;
    let mut flags = Vec::new();
    let m = ctx.client.tracking.as_ref();
    flags.push(s(if m.is_some() { "on" } else { "off" }));
    if let Some(m) = m {
        if m.bcast {
            flags.push(s("bcast"));
        }
        if m.optin {
            flags.push(s("optin"));
            if ctx.client.caching {
                flags.push(s("caching-yes"));
            }
        }
        if m.optout {
            flags.push(s("optout"));
            if ctx.client.caching {
                flags.push(s("caching-no"));
            }
        }
        if m.noloop {
            flags.push(s("noloop"));
        }
    }
    let mut prefixes: Vec<Bytes> = m.map(|m| m.prefixes.clone()).unwrap_or_default();
    prefixes.sort();
    Ok(Reply::Map(vec![
        (s("flags"), Reply::Set(flags)),
        (
            s("redirect"),
            Reply::Int(m.map_or(-1, |m| m.redirect as i64)),
        ),
        (s("prefixes"), Reply::bulks(prefixes)),
    ]))
}

/// After a command ran: a tracking client's read keys are remembered (as its OPTIN/OPTOUT
/// and CLIENT CACHING say), and the one-shot CLIENT CACHING flag ends.
pub fn command_ran(ctx: &mut Ctx, read_only: bool, keys: &[usize], args: &[Bytes]) {
    let Some(m) = ctx.client.tracking.as_ref() else {
        return;
    };
    if read_only && !m.bcast && !keys.is_empty() {
        let remember = if m.optin {
            ctx.client.caching
        } else if m.optout {
            !ctx.client.caching
        } else {
            true
        };
        if remember {
            let id = ctx.client.id();
            let max = ctx.node.config.snapshot().tracking_table_max_keys;
            let keys = keys.iter().map(|&p| args[p].clone());
            ctx.node.tracking.remember(&ctx.node.pubsub, id, keys, max);
        }
    }
    // Any CLIENT subcommand, and MULTI's queueing, keep it for the command it is meant for.
    if !is(&args[0], "client") && ctx.client.multi.is_none() {
        ctx.client.caching = false;
    }
}

//! MIGRATE argument handling. The handler validates and hands a [`MigrateRequest`] to the
//! connection (through `After::Migrate`), which runs it with `migration::legacy` (the
//! network side); handlers never touch sockets.

use std::time::Duration;

use bytes::Bytes;

use super::args::{int, is, text};
use super::After;
use super::{CmdError, CmdResult, Ctx};
use crate::migration::MigrateRequest;
use crate::resp::Reply;

/// Key positions of a MIGRATE call: the key argument, or every key after `KEYS`.
pub fn key_positions(args: &[Bytes]) -> Vec<usize> {
    if args.len() < 6 {
        return Vec::new();
    }
    if !args[3].is_empty() {
        return vec![3];
    }
    let mut i = 6;
    while i < args.len() {
        if is(&args[i], "auth") {
            i += 2;
        } else if is(&args[i], "auth2") {
            i += 3;
        } else if is(&args[i], "keys") {
            return (i + 1..args.len()).collect();
        } else {
            i += 1;
        }
    }
    Vec::new()
}

pub fn migrate(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut copy, mut replace, mut auth, mut keys) = (false, false, None, None);
    let mut i = 6;
    while i < args.len() {
        let a = &args[i];
        let rest = args.len() - i - 1;
        if is(a, "copy") {
            copy = true;
        } else if is(a, "replace") {
            replace = true;
        } else if is(a, "auth") {
            if rest < 1 {
                return Err(CmdError::Syntax);
            }
            auth = Some(vec![args[i + 1].clone()]);
            i += 1;
        } else if is(a, "auth2") {
            if rest < 2 {
                return Err(CmdError::Syntax);
            }
            auth = Some(vec![args[i + 1].clone(), args[i + 2].clone()]);
            i += 2;
        } else if is(a, "keys") {
            if !args[3].is_empty() {
                return Err(CmdError::err(
                    "When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys = Some(args[i + 1..].to_vec());
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let timeout = int(&args[5])?;
    let db = int(&args[4])?;
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    let keys = keys.unwrap_or_else(|| vec![args[3].clone()]);
    let port = int(&args[2])?;
    let port = u16::try_from(port).map_err(|_| CmdError::err("Invalid port"))?;
    let present: Vec<Bytes> = keys
        .into_iter()
        .filter(|k| !k.is_empty())
        .map(|k| Ok::<_, CmdError>((ctx.ks.peek(&k)?.is_some(), k)))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter_map(|(live, k)| live.then_some(k))
        .collect();
    if present.is_empty() {
        return Ok(Reply::Status("NOKEY"));
    }
    ctx.client.after = Some(After::Migrate(Box::new(MigrateRequest {
        host: text(&args[1]),
        port,
        db,
        source_db: ctx.client.db,
        timeout,
        copy,
        replace,
        auth,
        keys: present,
    })));
    Ok(Reply::Raw(Bytes::new()))
}

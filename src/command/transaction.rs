//! MULTI/EXEC/DISCARD: queueing lives in `dispatch`; this runs EXEC.
//! A transaction is checked as a whole (queueing errors, CROSSSLOT in a cluster, WATCH, write
//! pauses), then its declared keys are locked and every write reaches storage in one batch.
//!
//! Must not: touch the socket; replies go back to the connection like any command's.

use super::dispatch::{error_reply, execute, write_paused};
use super::{ClientState, CmdError, CommandSpec};
use crate::keyspace::{key_slot, KeyspaceError, Pending};
use crate::node::Node;
use crate::resp::Reply;

/// Runs MULTI, DISCARD or EXEC (`name`).
pub(super) fn run(
    shared: &Node,
    client: &mut ClientState,
    ks: &mut Pending,
    name: &str,
) -> Result<Reply, KeyspaceError> {
    match name {
        "multi" => {
            if client.multi.is_some() {
                return Ok(error_reply(
                    shared,
                    CmdError::err("MULTI calls can not be nested"),
                ));
            }
            client.multi = Some(Vec::new());
            client.multi_failed = false;
            Ok(Reply::OK)
        }
        "discard" => Ok(match client.multi.take() {
            Some(_) => {
                client.watched.clear();
                Reply::OK
            }
            None => error_reply(shared, CmdError::err("DISCARD without MULTI")),
        }),
        _ => exec(shared, client, ks),
    }
}

fn exec(shared: &Node, client: &mut ClientState, ks: &mut Pending) -> Result<Reply, KeyspaceError> {
    let Some(queued) = client.multi.take() else {
        return Ok(error_reply(shared, CmdError::err("EXEC without MULTI")));
    };
    if std::mem::take(&mut client.multi_failed) {
        client.watched.clear();
        let abort = "EXECABORT Transaction discarded because of previous errors.";
        return Ok(error_reply(shared, CmdError::Line(abort.into())));
    }
    // Each queued command with its key positions, found once for every check below.
    let resolved: Vec<(Result<&'static CommandSpec, CmdError>, Vec<usize>)> = queued
        .iter()
        .map(|a| match super::resolve(a) {
            Ok(spec) => (Ok(spec), spec.key_positions(a)),
            Err(e) => (Err(e), Vec::new()),
        })
        .collect();
    let keys: Vec<&[u8]> = queued
        .iter()
        .zip(&resolved)
        .flat_map(|(a, (_, pos))| pos.iter().map(|&p| &a[p][..]))
        .collect();
    // In a cluster every key of the transaction must be in one slot (Valkey checks the whole
    // queue at EXEC and discards the transaction otherwise).
    if shared.cluster.is_some() {
        if let Some(first) = keys.first().map(|k| key_slot(k)) {
            if keys.iter().any(|k| key_slot(k) != first) {
                client.watched.clear();
                return Ok(error_reply(
                    shared,
                    CmdError::Line("CROSSSLOT Keys in request don't hash to the same slot".into()),
                ));
            }
        }
    }
    // The staged writes of this connection count too: publish them, then look.
    ks.commit()?;
    let dirty = client.watch_dirty();
    client.watched.clear();
    if dirty {
        return Ok(Reply::NilArray);
    }
    // Writes queued before a manual failover's or a slot handover's pause must not run in it.
    if let Some(cl) = &shared.cluster {
        let view = cl.view();
        let paused = queued.iter().zip(&resolved).find_map(|(a, (spec, pos))| {
            let spec = *spec.as_ref().ok()?;
            let write = super::dispatch::writes(shared, spec, a);
            write_paused(&view, write).or_else(|| {
                (write
                    && pos
                        .iter()
                        .any(|&p| shared.keyspace.write_paused(key_slot(&a[p]))))
                .then(|| "TRYAGAIN slot migration in progress".to_string())
            })
        });
        if let Some(e) = paused {
            return Ok(error_reply(shared, CmdError::Line(e)));
        }
    }
    ks.begin_atomic(&keys)?;
    let mut out = Vec::with_capacity(queued.len());
    client.in_exec = true;
    for (args, (spec, _)) in queued.iter().zip(resolved) {
        let reply = match spec {
            Ok(spec) => {
                // Checked when queued and again now: rights taken away meanwhile hold.
                let write = super::dispatch::writes(shared, spec, args);
                if let Err(d) = super::acl_cmds::check(shared, client, spec, args, write, "multi") {
                    out.push(error_reply(shared, CmdError::Line(d.changed_line())));
                    continue;
                }
                if !spec.takes_keys() {
                    // A keyless command (FLUSHALL, DBSIZE, SCAN) sees the keyspace as a
                    // whole: what came before it is committed first.
                    ks.end_atomic();
                    ks.commit()?;
                }
                execute(shared, client, ks, spec, args)
            }
            Err(e) => error_reply(shared, e),
        };
        out.push(reply);
    }
    client.in_exec = false;
    ks.end_atomic();
    ks.commit()?;
    Ok(Reply::Array(out))
}

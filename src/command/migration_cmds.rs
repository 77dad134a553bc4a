//! CLUSTER MIGRATESLOTS / GETSLOTMIGRATIONS / CANCELSLOTMIGRATIONS (Valkey 9's atomic slot
//! migration surface). Parsing and replies only; jobs run in `migration`.

use bytes::Bytes;

use super::args::{is, text};
use super::cluster_cmds::slot_arg as slot;
use super::{CmdError, CmdResult, Ctx};
use crate::cluster::NodeId;
use crate::migration::{ranges_text, Operation, Request};
use crate::resp::Reply;

/// `SLOTSRANGE a b [a b ...] NODE id [SLOTSRANGE ... NODE id ...]`
pub fn parse(args: &[Bytes]) -> Result<Vec<Request>, CmdError> {
    let syntax = || CmdError::Syntax;
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if !is(&args[i], "slotsrange") {
            return Err(syntax());
        }
        i += 1;
        let mut ranges = Vec::new();
        while i + 1 < args.len() && !is(&args[i], "node") {
            let (a, b) = (slot(&args[i])?, slot(&args[i + 1])?);
            if a > b {
                return Err(CmdError::err(format!(
                    "start slot number {a} is greater than end slot number {b}"
                )));
            }
            ranges.push((a, b));
            i += 2;
        }
        if ranges.is_empty() || i + 1 >= args.len() || !is(&args[i], "node") {
            return Err(syntax());
        }
        let id = &args[i + 1];
        let target = NodeId::parse(id)
            .ok_or_else(|| CmdError::err(format!("I don't know about node {}", text(id))))?;
        out.push(Request { ranges, target });
        i += 2;
    }
    if out.is_empty() {
        return Err(syntax());
    }
    Ok(out)
}

pub fn migrateslots(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.node.cluster.is_none() {
        return Err(CmdError::err("This instance has cluster support disabled"));
    }
    let reqs = parse(&args[2..])?;
    ctx.node
        .migration
        .start(reqs)
        .map_err(|e| CmdError::Line(e.to_string()))?;
    Ok(Reply::OK)
}

pub fn list(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let s = Reply::bulk_str;
    let rows = ctx
        .node
        .migrations
        .list()
        .into_iter()
        .map(|j| {
            Reply::Map(vec![
                (s("name"), Reply::bulk(j.name)),
                (
                    s("operation"),
                    s(match j.operation {
                        Operation::Export => "EXPORT",
                        Operation::Import => "IMPORT",
                    }),
                ),
                (s("slot_ranges"), Reply::bulk(ranges_text(&j.ranges))),
                (s("target_node"), Reply::bulk(j.target.to_string())),
                (s("source_node"), Reply::bulk(j.source.to_string())),
                (s("create_time"), Reply::Int(j.create_time as i64)),
                (s("last_update_time"), Reply::Int(j.last_update_time as i64)),
                (s("last_ack_time"), Reply::Int(j.last_ack_time as i64)),
                (s("state"), s(j.state.as_str())),
                (s("message"), Reply::bulk(j.message)),
                (s("cow_size"), Reply::Int(0)),
                (s("keys"), Reply::Int(j.keys as i64)),
                (s("bytes"), Reply::Int(j.bytes as i64)),
            ])
        })
        .collect();
    Ok(Reply::Array(rows))
}

pub fn cancel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (name, force) = match args.len() {
        2 => (None, false),
        3 => (Some(text(&args[2])), false),
        4 if is(&args[3], "force") => (Some(text(&args[2])), true),
        _ => return Err(CmdError::Syntax),
    };
    let n = ctx
        .node
        .migrations
        .cancel(name.as_deref(), force)
        .map_err(|e| CmdError::Line(e.to_string()))?;
    Ok(Reply::Int(n as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn parses_blocks_and_refuses_bad_ones() {
        let id = "a".repeat(40);
        let r = parse(&a(&format!(
            "SLOTSRANGE 0 9 20 29 NODE {id} slotsrange 10 19 node {id}"
        )))
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].ranges, vec![(0, 9), (20, 29)]);
        assert_eq!(r[1].ranges, vec![(10, 19)]);
        for bad in [
            "SLOTSRANGE 0 9".to_string(),
            format!("SLOTSRANGE NODE {id}"),
            format!("SLOTSRANGE 0 NODE {id}"),
            format!("NODE {id}"),
            format!("SLOTSRANGE 0 9 NODE {id} extra"),
        ] {
            assert!(parse(&a(&bad)).is_err(), "{bad}");
        }
        assert!(parse(&a(&format!("SLOTSRANGE 9 0 NODE {id}")))
            .unwrap_err()
            .to_string()
            .contains("greater than"));
        assert!(parse(&a(&format!("SLOTSRANGE 0 16384 NODE {id}")))
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(parse(&a("SLOTSRANGE 0 1 NODE nope"))
            .unwrap_err()
            .to_string()
            .contains("don't know"));
    }
}

//! LATENCY: LATEST, HISTORY, RESET and HELP over the node's latency monitor, and HISTOGRAM
//! over the per-command latency histograms, with Valkey's replies.
//! Must not: record samples (dispatch does).

use bytes::Bytes;

use super::args::{is, text};
use super::server_cmds::help;
use super::{CmdError, CmdResult, Ctx};
use crate::resp::Reply;

const LATENCY_HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Print this help.",
];

pub fn latency(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let mon = &ctx.node.latency;
    if is(sub, "help") && args.len() == 2 {
        return Ok(help(LATENCY_HELP));
    }
    if is(sub, "latest") && args.len() == 2 {
        let events = mon.events();
        return Ok(Reply::Array(
            events
                .into_iter()
                .filter_map(|(name, s)| {
                    let &(t, ms) = s.samples.back()?;
                    Some(Reply::Array(vec![
                        Reply::Bulk(Bytes::from(name)),
                        Reply::Int(t),
                        Reply::Int(ms as i64),
                        Reply::Int(s.max as i64),
                        Reply::Int(s.sum as i64),
                        Reply::Int(s.count as i64),
                    ]))
                })
                .collect(),
        ));
    }
    if is(sub, "history") && args.len() == 3 {
        let events = mon.events();
        let samples = events
            .get(&text(&args[2]))
            .map(|s| s.samples.iter().copied().collect::<Vec<_>>())
            .unwrap_or_default();
        return Ok(Reply::Array(
            samples
                .into_iter()
                .map(|(t, ms)| Reply::Array(vec![Reply::Int(t), Reply::Int(ms as i64)]))
                .collect(),
        ));
    }
    if is(sub, "doctor") && args.len() == 2 {
        let c = ctx.node.config.snapshot();
        let set = super::latency_report::Settings {
            threshold_ms: c.latency_monitor_threshold_ms,
            slowlog_usec: c.commandlog_slow_usec,
            slowlog_max_len: c.commandlog_slow_max_len,
        };
        let now = crate::keyspace::now_ms() / 1000;
        return Ok(Reply::Verbatim(super::latency_report::doctor(
            &mon.events(),
            &set,
            now,
        )));
    }
    if is(sub, "graph") && args.len() == 3 {
        let events = mon.events();
        let name = text(&args[2]);
        let Some(s) = events.get(&name) else {
            return Err(CmdError::err(format!(
                "No samples available for event '{name}'"
            )));
        };
        let now = crate::keyspace::now_ms() / 1000;
        return Ok(Reply::Verbatim(super::latency_report::graph(&name, s, now)));
    }
    if is(sub, "reset") {
        let names: Vec<String> = args[2..].iter().map(|a| text(a)).collect();
        return Ok(Reply::Int(mon.reset(&names) as i64));
    }
    if is(sub, "histogram") {
        let names: Vec<String> = if args.len() == 2 {
            super::stats::commands_that_ran()
        } else {
            args[2..]
                .iter()
                .map(|a| text(a).to_ascii_lowercase())
                .collect()
        };
        let mut out = Vec::new();
        for name in names {
            let Some((calls, cdf)) = super::stats::latency_cdf(&name) else {
                continue;
            };
            let hist = cdf
                .into_iter()
                .map(|(label, n)| (Reply::Int(label as i64), Reply::Int(n as i64)))
                .collect();
            out.push((
                Reply::Bulk(Bytes::from(name)),
                Reply::Map(vec![
                    (Reply::bulk("calls"), Reply::Int(calls as i64)),
                    (Reply::bulk("histogram_usec"), Reply::Map(hist)),
                ]),
            ));
        }
        return Ok(Reply::Map(out));
    }
    let known = [
        "latest",
        "history",
        "reset",
        "histogram",
        "help",
        "doctor",
        "graph",
    ];
    Err(CmdError::err(if known.iter().any(|k| is(sub, k)) {
        format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try LATENCY HELP.",
            text(sub)
        )
    } else {
        format!("unknown subcommand '{}'. Try LATENCY HELP.", text(sub))
    }))
}

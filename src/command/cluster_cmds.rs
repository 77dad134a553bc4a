//! CLUSTER subcommands, READONLY/READWRITE/ASKING.

use bytes::Bytes;

use super::args::{int, is, text};
use super::server_cmds::help;
use super::{After, CmdError, CmdResult, Ctx};
use crate::cluster::{view, Cluster, ClusterError, FailoverMode, NodeId, SetSlot};
use crate::keyspace::key_slot;
use crate::resp::Reply;
use crate::storage::SLOTS;

fn cluster_of<'a>(ctx: &'a Ctx) -> Result<&'a std::sync::Arc<Cluster>, CmdError> {
    ctx.node
        .cluster
        .as_ref()
        .ok_or_else(|| CmdError::err("This instance has cluster support disabled"))
}

impl From<ClusterError> for CmdError {
    fn from(e: ClusterError) -> Self {
        CmdError::Line(e.to_string())
    }
}

/// A slot number argument, with Valkey's error for anything else.
pub(super) fn slot_arg(b: &[u8]) -> Result<u16, CmdError> {
    match super::args::parse_i64(b) {
        Some(s) if (0..SLOTS as i64).contains(&s) => Ok(s as u16),
        _ => Err(CmdError::err("Invalid or out of range slot")),
    }
}

fn slot_list(args: &[Bytes]) -> Result<Vec<u16>, CmdError> {
    args.iter().map(|a| slot_arg(a)).collect()
}

fn slot_ranges(args: &[Bytes], sub: &str) -> Result<Vec<u16>, CmdError> {
    if args.is_empty() || args.len() % 2 != 0 {
        return Err(CmdError::WrongArity(format!("cluster|{sub}")));
    }
    let mut out = Vec::new();
    for p in args.chunks(2) {
        let (a, b) = (slot_arg(&p[0])?, slot_arg(&p[1])?);
        if a > b {
            return Err(CmdError::err(format!(
                "start slot number {a} is greater than end slot number {b}"
            )));
        }
        out.extend(a..=b);
    }
    Ok(out)
}

fn node_id_arg(b: &[u8]) -> Result<NodeId, CmdError> {
    NodeId::parse(b).ok_or_else(|| CmdError::err(format!("Unknown node {}", text(b))))
}

pub fn cluster(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "help") {
        return Ok(help(&[
            "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ADDSLOTS <slot> [<slot> ...]",
            "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "BUMPEPOCH",
            "COUNT-FAILURE-REPORTS <node-id>",
            "COUNTKEYSINSLOT <slot>",
            "DELSLOTS <slot> [<slot> ...]",
            "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "FAILOVER [FORCE|TAKEOVER]",
            "FLUSHSLOTS",
            "FORGET <node-id>",
            "GETKEYSINSLOT <slot> <count>",
            "INFO",
            "KEYSLOT <key>",
            "LINKS",
            "MEET <ip> <port> [<bus-port>]",
            "MYID",
            "MYSHARDID",
            "NODES",
            "REPLICATE <node-id>",
            "RESET [HARD|SOFT]",
            "SET-CONFIG-EPOCH <epoch>",
            "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
            "REPLICAS <node-id>",
            "SLAVES <node-id>",
            "SHARDS",
            "SLOTS",
            "HELP",
        ]));
    }
    if is(sub, "keyslot") {
        return Ok(Reply::Int(key_slot(&args[2]) as i64));
    }
    let c = std::sync::Arc::clone(cluster_of(ctx)?);
    let ks = &ctx.node.keyspace;
    if is(sub, "info") {
        let stats = c.stats();
        return Ok(Reply::Verbatim(c.read(|st| view::info(st, &stats))));
    }
    if is(sub, "nodes") {
        let tls = ctx.client.tls;
        return Ok(Reply::Verbatim(c.read(|st| view::nodes(st, tls))));
    }
    if is(sub, "slots") {
        let tls = ctx.client.tls;
        return Ok(c.read(|st| view::slots(st, tls)));
    }
    if is(sub, "shards") {
        return Ok(c.read(view::shards));
    }
    if is(sub, "myid") || is(sub, "myshardid") {
        let id = c.read(|st| match st.me().primary {
            Some(p) if is(sub, "myshardid") => p,
            _ => st.myself,
        });
        return Ok(Reply::bulk(id.to_string()));
    }
    if is(sub, "slot-stats") {
        let mine: Vec<u16> = c.read(|st| {
            (0..SLOTS as u16)
                .filter(|&s| st.slots[s as usize] == Some(st.myself))
                .collect()
        });
        return slot_stats(ctx, args, &mine);
    }
    if is(sub, "countkeysinslot") {
        let s = match super::args::parse_i64(&args[2]) {
            Some(s) if (0..SLOTS as i64).contains(&s) => s as u16,
            _ => return Err(CmdError::err("Invalid slot")),
        };
        return Ok(Reply::Int(ks.count_in_slot(s)));
    }
    if is(sub, "getkeysinslot") {
        let (s, n) = match (
            super::args::parse_i64(&args[2]),
            super::args::parse_i64(&args[3]),
        ) {
            (Some(s), Some(n)) if (0..SLOTS as i64).contains(&s) && n >= 0 => {
                (s as u16, n as usize)
            }
            _ => return Err(CmdError::err("Invalid slot or number of keys")),
        };
        let keys = ks.keys_in_slot(ctx.client.db, s, n)?;
        return Ok(Reply::bulks(keys.into_iter().map(Bytes::from)));
    }
    if is(sub, "meet") {
        let ip = text(&args[2]);
        let port = super::args::parse_i64(&args[3])
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| {
                CmdError::err(format!("Invalid base port specified: {}", text(&args[3])))
            })?;
        let cport = match args.get(4) {
            Some(a) => super::args::parse_i64(a)
                .filter(|p| (1..=65535).contains(p))
                .ok_or_else(|| CmdError::err(format!("Invalid bus port specified: {}", text(a))))?,
            None => port + 10000,
        };
        if cport > 65535 {
            return Err(CmdError::err(format!(
                "Invalid bus port specified: {cport}"
            )));
        }
        c.with_state_written(true, |st| {
            st.meet(&ip, port as u16, cport as u16, crate::cluster::now_ms())
        })?;
        c.poke();
        return Ok(Reply::OK);
    }
    if is(sub, "addslots") || is(sub, "delslots") {
        let slots = slot_list(&args[2..])?;
        if is(sub, "addslots") {
            c.with_state_written(true, |st| st.add_slots(&slots))?;
            ctx.node.engine.ensure_slots(&slots)?;
        } else {
            c.with_state_written(true, |st| st.del_slots(&slots))?;
        }
        return Ok(Reply::OK);
    }
    if is(sub, "addslotsrange") || is(sub, "delslotsrange") {
        let slots = slot_ranges(&args[2..], &text(sub).to_ascii_lowercase())?;
        if is(sub, "addslotsrange") {
            c.with_state_written(true, |st| st.add_slots(&slots))?;
            ctx.node.engine.ensure_slots(&slots)?;
        } else {
            c.with_state_written(true, |st| st.del_slots(&slots))?;
        }
        return Ok(Reply::OK);
    }
    // Valkey 9: deletes every key this node holds in one slot (all databases), replicated
    // like any write; the slot's ownership does not change.
    if is(sub, "flushslot") {
        let slot = slot_arg(&args[2])?;
        match args.get(3) {
            Some(m) if !(is(m, "async") || is(m, "sync")) => return Err(CmdError::Syntax),
            _ if args.len() > 4 => return Err(CmdError::Syntax),
            _ => {}
        }
        ctx.ks.commit_now()?;
        ks.flush_slots(slot, slot)?;
        ctx.node.tracking.flushed(&ctx.node.pubsub);
        return Ok(Reply::OK);
    }
    if is(sub, "flushslots") {
        if ks.total_keys() != 0 {
            return Err(CmdError::err(
                "DB must be empty to perform CLUSTER FLUSHSLOTS.",
            ));
        }
        c.with_state_written(true, |st| st.flush_slots());
        return Ok(Reply::OK);
    }
    if is(sub, "set-config-epoch") {
        let e = int(&args[2])?;
        if e < 0 {
            return Err(CmdError::err(format!(
                "Invalid config epoch specified: {e}"
            )));
        }
        c.with_state_written(true, |st| st.set_config_epoch(e as u64))?;
        return Ok(Reply::OK);
    }
    if is(sub, "bumpepoch") {
        let (bumped, e) = c.with_state_written(true, |st| st.bump_epoch());
        return Ok(Reply::StatusOwned(format!(
            "{} {e}",
            if bumped { "BUMPED" } else { "STILL" }
        )));
    }
    if is(sub, "replicate") {
        let has_keys = ks.total_keys() != 0;
        c.with_state_written(true, |st| st.replicate(&args[2], has_keys))?;
        return Ok(Reply::OK);
    }
    if is(sub, "replicas") || is(sub, "slaves") {
        let id = node_id_arg(&args[2])?;
        return c.read(|st| {
            let Some(n) = st.nodes.get(&id) else {
                return Err(CmdError::err(format!("Unknown node {}", text(&args[2]))));
            };
            if !n.is_primary() {
                return Err(CmdError::err("The specified node is not a master"));
            }
            let lines = st
                .nodes
                .values()
                .filter(|r| r.primary == Some(id))
                .map(|r| {
                    Reply::bulk(crate::cluster::nodes_conf::node_line(
                        st,
                        r,
                        r.id == st.myself,
                        false,
                        crate::cluster::nodes_conf::LineFor::Client {
                            tls: ctx.client.tls,
                        },
                    ))
                })
                .collect();
            Ok(Reply::Array(lines))
        });
    }
    if is(sub, "failover") {
        let mode = match args.get(2) {
            _ if args.len() > 3 => {
                return Err(CmdError::err(format!(
                    "unknown subcommand or wrong number of arguments for '{}'. Try CLUSTER HELP.",
                    text(sub)
                )))
            }
            None => FailoverMode::Default,
            Some(a) if is(a, "force") => FailoverMode::Force,
            Some(a) if is(a, "takeover") => FailoverMode::Takeover,
            Some(_) => return Err(CmdError::Syntax),
        };
        c.failover(mode)?;
        return Ok(Reply::OK);
    }
    if is(sub, "forget") {
        c.with_state_written(true, |st| st.forget(&args[2], crate::cluster::now_ms()))?;
        return Ok(Reply::OK);
    }
    if is(sub, "reset") {
        let hard = match args.get(2) {
            None => false,
            Some(a) if is(a, "soft") => false,
            Some(a) if is(a, "hard") => true,
            Some(_) => return Err(CmdError::Syntax),
        };
        let primary = c.read(|st| st.me().is_primary());
        if primary && ks.total_keys() != 0 {
            return Err(CmdError::err(
                "CLUSTER RESET can't be called with master nodes containing keys",
            ));
        }
        if !primary {
            ks.flush_all()?;
        }
        c.with_state_written(true, |st| st.reset(hard, crate::cluster::now_ms()));
        return Ok(Reply::OK);
    }
    if is(sub, "setslot") {
        return setslot(ctx, &c, args);
    }
    if is(sub, "count-failure-reports") {
        let id = node_id_arg(&args[2])?;
        return c.read(|st| {
            if !st.nodes.contains_key(&id) {
                return Err(CmdError::err(format!("Unknown node {}", text(&args[2]))));
            }
            Ok(Reply::Int(
                st.fail_reports.get(&id).map(|r| r.len()).unwrap_or(0) as i64,
            ))
        });
    }
    if is(sub, "links") {
        return Ok(c.read(|st| {
            let s = Reply::bulk_str;
            let mut out = Vec::new();
            for n in st.nodes.values().filter(|n| n.id != st.myself) {
                for dir in ["to", "from"] {
                    out.push(Reply::Map(vec![
                        (s("direction"), s(dir)),
                        (s("node"), Reply::bulk(n.id.to_string())),
                        (s("create-time"), Reply::Int(n.created as i64)),
                        (s("events"), s(if dir == "to" { "rw" } else { "r" })),
                        (s("send-buffer-allocated"), Reply::Int(0)),
                        (s("send-buffer-used"), Reply::Int(0)),
                    ]));
                }
            }
            Reply::Array(out)
        }));
    }
    Err(CmdError::UnknownSubcommand(text(sub), "CLUSTER".into()))
}

fn setslot(ctx: &mut Ctx, c: &Cluster, args: &[Bytes]) -> CmdResult {
    let bad =
        || CmdError::err("Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP");
    let slot = slot_arg(&args[2])?;
    let action = args.get(3).ok_or_else(bad)?;
    let node = |i: usize| -> Result<NodeId, CmdError> {
        let a = args.get(i).ok_or_else(bad)?;
        NodeId::parse(a)
            .ok_or_else(|| CmdError::err(format!("I don't know about node {}", text(a))))
    };
    let act = if is(action, "migrating") && args.len() == 5 {
        SetSlot::Migrating(node(4)?)
    } else if is(action, "importing") && args.len() == 5 {
        SetSlot::Importing(node(4)?)
    } else if is(action, "stable") && args.len() == 4 {
        SetSlot::Stable
    } else if is(action, "node") && args.len() == 5 {
        let a = &args[4];
        SetSlot::Node(
            NodeId::parse(a).ok_or_else(|| CmdError::err(format!("Unknown node {}", text(a))))?,
        )
    } else {
        return Err(bad());
    };
    let keys = ctx.node.keyspace.count_in_slot(slot);
    c.with_state_written(false, |st| st.set_slot(slot, act, keys))?;
    if matches!(act, SetSlot::Importing(_))
        || c.read(|st| st.slots[slot as usize] == Some(st.myself))
    {
        ctx.node.engine.ensure_slots(&[slot])?;
    }
    // The new owner's claim is what the others need (its epoch wins): only it announces.
    if matches!(act, SetSlot::Node(id) if c.read(|st| st.myself == id)) {
        ctx.client.after = Some(After::Announce);
    }
    Ok(Reply::OK)
}

pub fn readonly(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    cluster_of(ctx)?;
    ctx.client.readonly = true;
    Ok(Reply::OK)
}

pub fn readwrite(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    cluster_of(ctx)?;
    ctx.client.readonly = false;
    Ok(Reply::OK)
}

pub fn asking(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    cluster_of(ctx)?;
    ctx.client.asking = true;
    Ok(Reply::OK)
}

/// CLUSTER SLOT-STATS SLOTSRANGE start end | ORDERBY metric [LIMIT n] [ASC|DESC], over the
/// slots this node owns (`mine`, ascending): key counts, and with `cluster-slot-stats-enabled`
/// the CPU time and request and reply bytes of the commands on each slot.
fn slot_stats(ctx: &mut Ctx, args: &[Bytes], mine: &[u16]) -> CmdResult {
    let node = ctx.node;
    let full = node.slot_stats.enabled(&node.config);
    let stat = |slot: u16| -> Reply {
        let mut m = vec![(
            Reply::bulk("key-count"),
            Reply::Int(node.keyspace.count_in_slot(slot)),
        )];
        if full {
            let u = node.slot_stats.usage(slot);
            m.push((Reply::bulk("cpu-usec"), Reply::Int(u.cpu_usec as i64)));
            m.push((
                Reply::bulk("network-bytes-in"),
                Reply::Int(u.bytes_in as i64),
            ));
            m.push((
                Reply::bulk("network-bytes-out"),
                Reply::Int(u.bytes_out as i64),
            ));
        }
        Reply::Array(vec![Reply::Int(slot as i64), Reply::Map(m)])
    };
    if args.len() == 5 && is(&args[2], "slotsrange") {
        let (first, last) = (slot_arg(&args[3])?, slot_arg(&args[4])?);
        if first > last {
            return Err(CmdError::err(format!(
                "Start slot number {first} is greater than end slot number {last}"
            )));
        }
        let picked = mine.iter().filter(|&&s| (first..=last).contains(&s));
        return Ok(Reply::Array(picked.map(|&s| stat(s)).collect()));
    }
    if args.len() < 4 || !is(&args[2], "orderby") {
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CLUSTER HELP.",
            super::args::text(&args[1])
        )));
    }
    let metric = &args[3];
    let value: fn(&crate::node::slot_stats::SlotUsage) -> u64 = if is(metric, "cpu-usec") && full {
        |u| u.cpu_usec
    } else if is(metric, "network-bytes-in") && full {
        |u| u.bytes_in
    } else if is(metric, "network-bytes-out") && full {
        |u| u.bytes_out
    } else if is(metric, "key-count") {
        |_| 0
    } else {
        return Err(CmdError::err("Unrecognized sort metric for ORDERBY."));
    };
    let by_keys = is(metric, "key-count");
    let (mut limit, mut desc) = (SLOTS, true);
    let (mut limits, mut orders) = (0, 0);
    let mut i = 4;
    while i < args.len() {
        let a = &args[i];
        if is(a, "limit") && i + 1 < args.len() {
            limit = match super::args::parse_i64(&args[i + 1]) {
                Some(n) if (1..=SLOTS as i64).contains(&n) => n as usize,
                _ => {
                    return Err(CmdError::err(
                        "Limit has to lie in between 1 and 16384 (maximum number of slots).",
                    ))
                }
            };
            i += 1;
            limits += 1;
        } else if is(a, "asc") || is(a, "desc") {
            desc = is(a, "desc");
            orders += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        if limits > 1 || orders > 1 {
            return Err(CmdError::err(
                "Multiple filters of the same type are disallowed.",
            ));
        }
        i += 1;
    }
    let mut ranked: Vec<(u16, i64)> = mine
        .iter()
        .map(|&s| {
            let v = if by_keys {
                node.keyspace.count_in_slot(s)
            } else {
                value(&node.slot_stats.usage(s)) as i64
            };
            (s, v)
        })
        .collect();
    // Ties go to the lower slot in both orders, as Valkey sorts.
    ranked.sort_by(|a, b| {
        let by = if desc { b.1.cmp(&a.1) } else { a.1.cmp(&b.1) };
        by.then(a.0.cmp(&b.0))
    });
    Ok(Reply::Array(
        ranked.iter().take(limit).map(|&(s, _)| stat(s)).collect(),
    ))
}

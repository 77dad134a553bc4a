//! COMMAND and its subcommands, generated from the command table.

use bytes::Bytes;

use super::args::{is, text};
use super::{lookup, resolve, CmdError, CmdResult, CommandSpec, Ctx, TABLE};
use crate::resp::Reply;

/// The key specification Valkey derives for simple first/last/step commands.
fn key_specs(c: &CommandSpec) -> Reply {
    if c.first_key <= 0 {
        return Reply::Array(vec![]);
    }
    let s = Reply::bulk_str;
    let flags = if c.is_write() {
        vec!["RW", "UPDATE"]
    } else {
        vec!["RO", "ACCESS"]
    };
    let lastkey = if c.last_key < 0 {
        c.last_key as i64
    } else {
        (c.last_key - c.first_key) as i64
    };
    Reply::Array(vec![Reply::Map(vec![
        (
            s("flags"),
            Reply::Set(flags.into_iter().map(Reply::Status).collect()),
        ),
        (
            s("begin_search"),
            Reply::Map(vec![
                (s("type"), s("index")),
                (
                    s("spec"),
                    Reply::Map(vec![(s("index"), Reply::Int(c.first_key as i64))]),
                ),
            ]),
        ),
        (
            s("find_keys"),
            Reply::Map(vec![
                (s("type"), s("range")),
                (
                    s("spec"),
                    Reply::Map(vec![
                        (s("lastkey"), Reply::Int(lastkey)),
                        (s("keystep"), Reply::Int(c.step as i64)),
                        (s("limit"), Reply::Int(0)),
                    ]),
                ),
            ]),
        ),
    ])])
}

fn entry(c: &'static CommandSpec, parent: Option<&str>) -> Reply {
    let name = match parent {
        Some(p) => format!("{p}|{}", c.name),
        None => c.name.to_string(),
    };
    Reply::Array(vec![
        Reply::bulk(name.clone()),
        Reply::Int(c.arity as i64),
        Reply::Set(
            c.flags
                .names()
                .chain(c.movable.map(|_| "movablekeys"))
                .map(Reply::Status)
                .collect(),
        ),
        Reply::Int(c.first_key as i64),
        Reply::Int(c.last_key as i64),
        Reply::Int(c.step as i64),
        Reply::Set(
            crate::acl::category_names(super::acl_cmds::categories(c))
                .map(|n| Reply::StatusOwned(format!("@{n}")))
                .collect(),
        ),
        Reply::Set(vec![]),
        key_specs(c),
        Reply::Array(
            c.subcommands
                .iter()
                .map(|s| entry(s, Some(&name)))
                .collect(),
        ),
    ])
}

fn docs(c: &'static CommandSpec, parent: Option<&str>) -> (Reply, Reply) {
    let name = match parent {
        Some(p) => format!("{p}|{}", c.name),
        None => c.name.to_string(),
    };
    let s = Reply::bulk_str;
    let mut m = vec![
        (s("summary"), s(c.summary)),
        (s("since"), s(c.since)),
        (s("group"), s(c.group)),
    ];
    if !c.subcommands.is_empty() {
        m.push((
            s("subcommands"),
            Reply::Map(
                c.subcommands
                    .iter()
                    .map(|sc| docs(sc, Some(&name)))
                    .collect(),
            ),
        ));
    }
    (Reply::bulk(name), Reply::Map(m))
}

pub fn command(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let _ = &ctx;
    if args.len() == 1 {
        return Ok(Reply::Array(TABLE.iter().map(|c| entry(c, None)).collect()));
    }
    let sub = &args[1];
    if is(sub, "count") {
        Ok(Reply::Int(TABLE.len() as i64))
    } else if is(sub, "info") {
        if args.len() == 2 {
            return Ok(Reply::Array(TABLE.iter().map(|c| entry(c, None)).collect()));
        }
        Ok(Reply::Array(
            args[2..]
                .iter()
                .map(|n| lookup(n).map(|c| entry(c, None)).unwrap_or(Reply::NilArray))
                .collect(),
        ))
    } else if is(sub, "docs") {
        let list: Vec<&'static CommandSpec> = if args.len() == 2 {
            TABLE.iter().collect()
        } else {
            args[2..].iter().filter_map(|n| lookup(n)).collect()
        };
        Ok(Reply::Map(
            list.into_iter().map(|c| docs(c, None)).collect(),
        ))
    } else if is(sub, "list") {
        Ok(Reply::bulks(
            TABLE.iter().map(|c| Bytes::from_static(c.name.as_bytes())),
        ))
    } else if is(sub, "getkeys") || is(sub, "getkeysandflags") {
        let target = &args[2..];
        let spec = resolve(target).map_err(|e| match e {
            CmdError::UnknownCommand(_) => CmdError::err("Invalid command specified"),
            _ => CmdError::err("Invalid arguments specified for command"),
        })?;
        let pos = spec.key_positions(target);
        if pos.is_empty() {
            return Err(CmdError::err("The command has no key arguments"));
        }
        if is(sub, "getkeys") {
            Ok(Reply::bulks(pos.into_iter().map(|p| target[p].clone())))
        } else {
            let flags = if spec.is_write() {
                vec!["RW", "UPDATE"]
            } else {
                vec!["RO", "ACCESS"]
            };
            Ok(Reply::Array(
                pos.into_iter()
                    .map(|p| {
                        Reply::Array(vec![
                            Reply::Bulk(target[p].clone()),
                            Reply::Set(flags.iter().map(|f| Reply::Status(f)).collect()),
                        ])
                    })
                    .collect(),
            ))
        }
    } else if is(sub, "help") {
        Ok(super::server_cmds::help(&[
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "COUNT",
            "DOCS [<command-name> ...]",
            "GETKEYS <full-command>",
            "GETKEYSANDFLAGS <full-command>",
            "INFO [<command-name> ...]",
            "LIST",
            "HELP",
        ]))
    } else {
        Err(CmdError::UnknownSubcommand(text(sub), "COMMAND".into()))
    }
}

//! The command table against Valkey 8.1.8's own metadata (`valkey-8.1-commands.txt`, from
//! its COMMAND reply): arity, flags and first/last/step keys of every command and subcommand
//! rockslot implements that Valkey 8.1 has.

use std::collections::BTreeMap;

use super::{CommandSpec, TABLE};

const VALKEY: &str = include_str!("valkey-8.1-commands.txt");

fn ours(c: &CommandSpec, parent: Option<&str>, out: &mut BTreeMap<String, String>) {
    let name = match parent {
        Some(p) => format!("{p}|{}", c.name),
        None => c.name.to_string(),
    };
    let mut flags: Vec<&str> = c
        .flags
        .names()
        .chain(c.movable.map(|_| "movablekeys"))
        .collect();
    flags.sort_unstable();
    let line = format!(
        "{} {} {} {} {}",
        c.arity,
        c.first_key,
        c.last_key,
        c.step,
        flags.join(" ")
    );
    out.insert(name.clone(), line.trim_end().to_string());
    for s in c.subcommands {
        ours(s, Some(&name), out);
    }
}

#[test]
fn table_matches_valkey_metadata() {
    let valkey: BTreeMap<&str, &str> = VALKEY
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split_once(' '))
        .collect();
    assert!(valkey.len() > 300, "the Valkey command list did not load");
    let mut mine = BTreeMap::new();
    for c in TABLE {
        ours(c, None, &mut mine);
    }
    let mut checked = 0;
    let mut bad = Vec::new();
    for (name, line) in &mine {
        let Some(want) = valkey.get(name.as_str()) else {
            continue; // Valkey 9 commands (MIGRATESLOTS and friends) and rockslot's own
        };
        checked += 1;
        if want != line {
            bad.push(format!("{name}: valkey `{want}`, rockslot `{line}`"));
        }
    }
    assert!(checked > 200, "only {checked} commands compared");
    assert!(
        bad.is_empty(),
        "{} differences:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

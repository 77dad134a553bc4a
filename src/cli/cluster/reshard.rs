//! `reshard` and `rebalance` over the native atomic slot migration: the plan is valkey-cli's
//! (`clusterManagerComputeReshardTable`, the rebalance balance walk, same prompts and
//! messages), the moves are `CLUSTER MIGRATESLOTS` jobs (one per source, one NODE block per
//! destination) polled with `CLUSTER GETSLOTMIGRATIONS` for a progress bar and a summary.
//! Clients of the cluster see only MOVED while the slots move.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use super::manager::{ClusterNode, Manager};
use super::nodes::{slot_ranges, SLOTS};
use super::{host_port, ClusterOpts, INVALID_HOST_ARG};
use crate::cli::conn::Value;
use crate::slot::Ranges;

/// Longest a move may take before the CLI gives up waiting (the jobs keep running).
const MOVE_TIMEOUT: Duration = Duration::from_secs(3600);
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// (source index, destination index, slots) in plan order.
type Plan = Vec<(usize, usize, Vec<u16>)>;

fn load(o: &ClusterOpts, quiet: bool) -> Option<Manager> {
    let Some((ip, port)) = host_port(&o.args) else {
        eprintln!("{INVALID_HOST_ARG}");
        return None;
    };
    let mut m = Manager::new(o.auth.clone());
    if !m.load_info_from_node(ClusterNode::new(ip, port, 0), false) {
        return None;
    }
    m.check_cluster(quiet, false);
    if !m.errors.is_empty() {
        println!(
            "*** Please fix your cluster problems before {}",
            if quiet { "rebalancing" } else { "resharding" }
        );
        return None;
    }
    Some(m)
}

fn prompt(msg: &str) -> Option<String> {
    print!("{msg}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(n) if n > 0 => Some(line.trim().to_string()),
        _ => None,
    }
}

fn is_master(n: &ClusterNode) -> bool {
    n.replicate.is_none()
}

/// valkey-cli's `clusterManagerComputeReshardTable`: sources by slot count (descending), each
/// gives its share of `numslots` (the first rounded up, the others down), lowest slots first.
pub fn reshard_table(sources: &[(usize, &[bool])], numslots: usize) -> Vec<(usize, u16)> {
    let mut sorted: Vec<(usize, &[bool], usize)> = sources
        .iter()
        .map(|(i, s)| (*i, *s, s.iter().filter(|x| **x).count()))
        .collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.2));
    let total: usize = sorted.iter().map(|s| s.2).sum();
    let mut moved = Vec::new();
    for (k, (idx, slots, count)) in sorted.iter().enumerate() {
        let n = numslots as f32 / total.max(1) as f32 * *count as f32;
        let max = if k == 0 { n.ceil() } else { n.floor() } as usize;
        let mut taken = 0;
        for (s, owned) in slots.iter().enumerate() {
            if !owned {
                continue;
            }
            if taken >= max || moved.len() >= numslots {
                break;
            }
            moved.push((*idx, s as u16));
            taken += 1;
        }
    }
    moved
}

pub fn reshard(o: &ClusterOpts) -> anyhow::Result<bool> {
    let Some(mut m) = load(o, false) else {
        return Ok(false);
    };
    let numslots = match o.slots {
        Some(n) => n,
        None => loop {
            let Some(a) = prompt("How many slots do you want to move (from 1 to 16384)? ") else {
                return Ok(false);
            };
            match a.parse::<usize>() {
                Ok(n) if (1..=SLOTS).contains(&n) => break n,
                _ => continue,
            }
        },
    };
    if !(1..=SLOTS).contains(&numslots) {
        log_err!("*** Please enter a number between 1 and 16384\n");
        return Ok(false);
    }
    let to = match &o.to {
        Some(t) => t.clone(),
        None => match prompt("What is the receiving node ID? ") {
            Some(t) => t,
            None => return Ok(false),
        },
    };
    let Some(dst) = m.node_by_name(&to).filter(|&i| is_master(&m.nodes[i])) else {
        log_err!("*** The specified node ({to}) is not known or not a master, please retry.\n");
        return Ok(false);
    };
    let mut sources: Vec<usize> = Vec::new();
    let from: Vec<String> = match &o.from {
        Some(f) => f.split(',').map(|s| s.trim().to_string()).collect(),
        None => {
            println!("Please enter all the source node IDs.");
            println!("  Type 'all' to use all the nodes as source nodes for the hash slots.");
            println!("  Type 'done' once you entered all the source nodes IDs.");
            let mut v = Vec::new();
            loop {
                let Some(a) = prompt(&format!("Source node #{}: ", v.len() + 1)) else {
                    return Ok(false);
                };
                if a == "done" {
                    break;
                }
                let all = a == "all";
                v.push(a);
                if all {
                    break;
                }
            }
            v
        }
    };
    if from.iter().any(|f| f == "all") {
        sources = (0..m.nodes.len())
            .filter(|&i| i != dst && is_master(&m.nodes[i]) && m.nodes[i].slots_count > 0)
            .collect();
    } else {
        for f in &from {
            match m.node_by_name(f).filter(|&i| is_master(&m.nodes[i])) {
                Some(i) if i == dst => {
                    log_err!("*** It is not possible to use the target node as source node.\n");
                    return Ok(false);
                }
                Some(i) => sources.push(i),
                None => {
                    log_err!("*** The specified node ({f}) is not known or is not a master, please retry.\n");
                    return Ok(false);
                }
            }
        }
    }
    if sources.is_empty() {
        log_err!("*** No source nodes given, operation aborted.\n");
        return Ok(false);
    }
    println!("\nReady to move {numslots} slots.");
    println!("  Source nodes:");
    for &s in &sources {
        println!("{}", m.nodes[s].info_string(4));
    }
    println!("  Destination node:");
    println!("{}", m.nodes[dst].info_string(4));
    let table = reshard_table(
        &sources
            .iter()
            .map(|&i| (i, &m.nodes[i].slots[..]))
            .collect::<Vec<_>>(),
        numslots,
    );
    println!("  Resharding plan:");
    for (src, slot) in &table {
        println!("    Moving slot {slot} from {}", m.nodes[*src].name);
    }
    if !o.yes {
        let a = prompt("Do you want to proceed with the proposed reshard plan (yes/no)? ");
        if a.as_deref() != Some("yes") {
            return Ok(false);
        }
    }
    let mut by_src: BTreeMap<usize, Vec<u16>> = BTreeMap::new();
    for (src, slot) in table {
        by_src.entry(src).or_default().push(slot);
    }
    let plan: Plan = by_src.into_iter().map(|(s, v)| (s, dst, v)).collect();
    Ok(run_plan(&mut m, plan, false))
}

pub fn rebalance(o: &ClusterOpts) -> anyhow::Result<bool> {
    let Some(mut m) = load(o, true) else {
        return Ok(false);
    };
    for w in &o.weights {
        let Some((name, val)) = w.split_once('=') else {
            log_err!("*** Invalid weight: {w}\n");
            return Ok(false);
        };
        let Some(i) = m.node_by_abbreviated_name(name) else {
            log_err!("*** No such master node {name}\n");
            return Ok(false);
        };
        m.nodes[i].weight = val.parse().unwrap_or(1.0);
    }
    let mut involved = Vec::new();
    let mut total_weight = 0.0;
    for (i, n) in m.nodes.iter().enumerate() {
        if !is_master(n) {
            continue;
        }
        if !o.use_empty_masters && n.slots_count == 0 {
            continue;
        }
        total_weight += n.weight;
        involved.push(i);
    }
    if involved.len() < 2 {
        log_err!(
            "*** No rebalancing needed! All nodes are within the {:.2}% threshold.\n",
            o.threshold
        );
        return Ok(true);
    }
    let mut over = false;
    let mut total_balance: i64 = 0;
    for &i in &involved {
        let n = &mut m.nodes[i];
        let expected = (SLOTS as f64 / total_weight * n.weight) as i64;
        n.balance = n.slots_count as i64 - expected;
        total_balance += n.balance;
        if o.threshold > 0.0 {
            if n.slots_count == 0 {
                if expected > 1 {
                    over = true;
                }
            } else {
                let err = 100.0 - (100.0 / expected as f64 * n.slots_count as f64);
                if err.abs() > o.threshold {
                    over = true;
                }
            }
        }
    }
    if !over {
        log_ok!(
            "*** No rebalancing needed! All nodes are within the {:.2}% threshold.\n",
            o.threshold
        );
        return Ok(true);
    }
    // Rounding leaves a surplus: give it to the nodes that receive.
    while total_balance > 0 {
        for &i in &involved {
            if m.nodes[i].balance < 0 && total_balance > 0 {
                m.nodes[i].balance -= 1;
                total_balance -= 1;
            }
        }
    }
    involved.sort_by_key(|&i| m.nodes[i].balance);
    log_info!(
        ">>> Rebalancing across {} nodes. Total weight = {:.2}\n",
        involved.len(),
        total_weight
    );
    let mut plan: Plan = Vec::new();
    let mut taken = vec![vec![false; SLOTS]; m.nodes.len()];
    let (mut d, mut s) = (0usize, involved.len() - 1);
    while d < s {
        let (di, si) = (involved[d], involved[s]);
        let n = m.nodes[di]
            .balance
            .unsigned_abs()
            .min(m.nodes[si].balance.unsigned_abs()) as usize;
        if n > 0 {
            println!(
                "Moving {n} slots from {} to {}",
                m.nodes[si].addr(),
                m.nodes[di].addr()
            );
            let avail: Vec<bool> = m.nodes[si]
                .slots
                .iter()
                .zip(&taken[si])
                .map(|(o, t)| *o && !*t)
                .collect();
            let table = reshard_table(&[(si, &avail[..])], n);
            let slots: Vec<u16> = table.into_iter().map(|(_, s)| s).collect();
            for &x in &slots {
                taken[si][x as usize] = true;
            }
            plan.push((si, di, slots));
            m.nodes[di].balance += n as i64;
            m.nodes[si].balance -= n as i64;
        }
        if m.nodes[di].balance == 0 {
            d += 1;
        }
        if m.nodes[si].balance == 0 {
            s -= 1;
        }
    }
    if o.simulate {
        return Ok(true);
    }
    Ok(run_plan(&mut m, plan, true))
}

/// One MIGRATESLOTS per source (a NODE block per destination), then progress until every job
/// is done. True when all succeeded.
fn run_plan(m: &mut Manager, plan: Plan, quiet: bool) -> bool {
    let t0 = Instant::now();
    let mut blocks: BTreeMap<usize, Vec<(usize, Ranges)>> = BTreeMap::new();
    let mut total_slots = 0;
    for (src, dst, slots) in plan {
        if slots.is_empty() {
            continue;
        }
        total_slots += slots.len();
        let mut mask = vec![false; SLOTS];
        for s in slots {
            mask[s as usize] = true;
        }
        let ranges = slot_ranges(&mask)
            .into_iter()
            .map(|(a, b)| (a as u16, b as u16))
            .collect();
        blocks.entry(src).or_default().push((dst, ranges));
    }
    if total_slots == 0 {
        return true;
    }
    // (source index, expected ranges text, target id) of each job we wait for.
    let mut jobs: Vec<(usize, String, String, usize)> = Vec::new();
    for (src, dsts) in &blocks {
        let mut argv: Vec<String> = vec!["CLUSTER".into(), "MIGRATESLOTS".into()];
        for (dst, ranges) in dsts {
            argv.push("SLOTSRANGE".into());
            for (a, b) in ranges {
                argv.push(a.to_string());
                argv.push(b.to_string());
            }
            argv.push("NODE".into());
            argv.push(m.nodes[*dst].name.clone());
            let text = ranges
                .iter()
                .map(|(a, b)| format!("{a}-{b}"))
                .collect::<Vec<_>>()
                .join(" ");
            let n: usize = ranges.iter().map(|(a, b)| (b - a + 1) as usize).sum();
            jobs.push((*src, text, m.nodes[*dst].name.clone(), n));
        }
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        match m.nodes[*src].cmd(&refs) {
            Ok(Value::Error(e)) => {
                log_err!("*** {}: MIGRATESLOTS failed: {e}\n", m.nodes[*src].addr());
                return false;
            }
            Err(e) => {
                log_err!("*** {}: {e:#}\n", m.nodes[*src].addr());
                return false;
            }
            Ok(_) => {}
        }
    }
    if !quiet {
        log_info!(
            ">>> Moving {total_slots} slots with {} atomic slot migration job(s)\n",
            jobs.len()
        );
    }
    let tty = std::io::stdout().is_terminal();
    let mut last_line = Instant::now();
    let (mut keys, mut bytes);
    loop {
        let mut done_slots = 0;
        let mut pending = 0;
        keys = 0u64;
        bytes = 0u64;
        for (src, ranges, target, n) in &jobs {
            let st = match job_status(&mut m.nodes[*src], ranges, target) {
                Some(s) => s,
                None => {
                    pending += 1;
                    continue;
                }
            };
            keys += st.keys;
            bytes += st.bytes;
            match st.state.as_str() {
                "success" => done_slots += n,
                "failed" | "cancelled" => {
                    if tty {
                        println!();
                    }
                    log_err!(
                        "*** Moving slots {ranges} from {} failed: {} {}\n",
                        m.nodes[*src].addr(),
                        st.state,
                        st.message
                    );
                    return false;
                }
                _ => pending += 1,
            }
        }
        let secs = t0.elapsed().as_secs_f64().max(1e-3);
        let line = format!(
            "{} {done_slots}/{total_slots} slots, {keys} keys, {:.1} MB, {:.1} MB/s",
            bar(done_slots, total_slots),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs
        );
        if tty {
            print!("\r{line}");
            let _ = std::io::stdout().flush();
        } else if last_line.elapsed() >= Duration::from_secs(1) || pending == 0 {
            println!("{line}");
            last_line = Instant::now();
        }
        if pending == 0 {
            break;
        }
        if t0.elapsed() > MOVE_TIMEOUT {
            log_err!("*** Gave up waiting for the slot migrations\n");
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if tty {
        println!();
    }
    let secs = t0.elapsed().as_secs_f64().max(1e-3);
    log_ok!(
        "[OK] Moved {total_slots} slots ({keys} keys, {:.1} MB) in {secs:.2} s: {:.0} keys/s, {:.1} MB/s\n",
        bytes as f64 / 1e6,
        keys as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    // Every node learns the new owners through gossip; wait so a following check is clean.
    let start = Instant::now();
    while !m.is_config_consistent() {
        if start.elapsed() > JOIN_TIMEOUT {
            log_err!("*** The nodes do not agree on the slot configuration yet\n");
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

fn bar(done: usize, total: usize) -> String {
    let w = 30;
    let filled = done * w / total.max(1);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(w - filled))
}

struct JobStatus {
    state: String,
    message: String,
    keys: u64,
    bytes: u64,
}

/// The newest EXPORT job on `node` for exactly `ranges` to `target`.
fn job_status(node: &mut ClusterNode, ranges: &str, target: &str) -> Option<JobStatus> {
    let Ok(Value::Array(rows)) = node.cmd(&["CLUSTER", "GETSLOTMIGRATIONS"]) else {
        return None;
    };
    let mut found = None;
    for row in rows {
        let Value::Array(kv) = row else { continue };
        let mut f: BTreeMap<String, Value> = BTreeMap::new();
        for p in kv.chunks(2) {
            if let [k, v] = p {
                f.insert(k.as_text().unwrap_or_default(), v.clone());
            }
        }
        let text = |k: &str| f.get(k).and_then(Value::as_text).unwrap_or_default();
        if text("operation") != "EXPORT"
            || text("slot_ranges") != ranges
            || text("target_node") != target
        {
            continue;
        }
        let num = |k: &str| text(k).parse::<u64>().unwrap_or(0);
        found = Some(JobStatus {
            state: text("state"),
            message: text("message"),
            keys: num("keys"),
            bytes: num("bytes"),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshard_table_matches_valkey_cli() {
        // Three masters 0-5460, 5461-10922, 10923-16383; 1000 slots from all.
        let mut a = vec![false; SLOTS];
        let mut b = vec![false; SLOTS];
        let mut c = vec![false; SLOTS];
        a[..5461].iter_mut().for_each(|x| *x = true);
        b[5461..10923].iter_mut().for_each(|x| *x = true);
        c[10923..].iter_mut().for_each(|x| *x = true);
        let t = reshard_table(&[(0, &a[..]), (1, &b[..]), (2, &c[..])], 1000);
        assert_eq!(t.len(), 1000);
        // The largest (b) goes first and rounds up: 334; the others round down: 333.
        let count = |i| t.iter().filter(|(s, _)| *s == i).count();
        assert_eq!((count(1), count(0), count(2)), (334, 333, 333));
        assert_eq!(t.iter().find(|(s, _)| *s == 0).map(|x| x.1), Some(0));
        assert_eq!(
            t.iter().filter(|(s, _)| *s == 1).map(|x| x.1).max(),
            Some(5461 + 333)
        );
    }
}

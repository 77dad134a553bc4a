//! LATENCY DOCTOR's report and LATENCY GRAPH's ASCII sparkline, worded and drawn as
//! Valkey's latency.c and sparkline.c do for the events rockslot records (`command`,
//! `fast-command`).
//!
//! Must not: record samples (the node's latency monitor does).

use std::collections::BTreeMap;

use crate::node::latency::Series;

/// What the report's advice depends on besides the events.
pub struct Settings {
    pub threshold_ms: u64,
    pub slowlog_usec: i64,
    pub slowlog_max_len: u64,
}

struct Stats {
    samples: u64,
    avg: u64,
    mad: u64,
    period: i64,
}

fn analyze(s: &Series, now: i64) -> Stats {
    let n = s.samples.len() as u64;
    if n == 0 {
        return Stats {
            samples: 0,
            avg: 0,
            mad: 0,
            period: 0,
        };
    }
    let sum: u64 = s.samples.iter().map(|&(_, ms)| ms).sum();
    let avg = sum / n;
    let oldest = s.samples.iter().map(|&(t, _)| t).min().unwrap_or(now);
    let period = (now - oldest).max(1);
    let dev: u64 = s
        .samples
        .iter()
        .map(|&(_, ms)| (avg as i64 - ms as i64).unsigned_abs())
        .sum();
    Stats {
        samples: n,
        avg,
        mad: dev / n,
        period,
    }
}

/// Bytes of transparent huge pages this process uses (Valkey advises against them).
fn anon_huge_pages() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .map(|t| {
            t.lines()
                .filter_map(|l| l.strip_prefix("AnonHugePages:"))
                .filter_map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

/// LATENCY DOCTOR's text.
pub fn doctor(events: &BTreeMap<String, Series>, set: &Settings, now: i64) -> String {
    if events.is_empty() && set.threshold_ms == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Valkey \
                instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" \
                in order to enable it.\n"
            .to_string();
    }
    let mut out = String::new();
    let (mut slowlog_enabled, mut slowlog_tuning, mut inspect) = (false, false, false);
    let (mut scheduler, mut large_objects, mut disable_thp) = (false, false, false);
    let mut advices = 0;
    for (i, (name, s)) in events.iter().enumerate() {
        if i == 0 {
            out.push_str("Latency spikes are observed in this Valkey instance.\n\n");
        }
        let st = analyze(s, now);
        let per = if st.samples == 0 {
            0.0
        } else {
            st.period as f64 / st.samples as f64
        };
        out.push_str(&format!(
            "{}. {name}: {} latency spikes (average {}ms, mean deviation {}ms, period {per:.2} sec). Worst all time event {}ms.",
            i + 1,
            st.samples,
            st.avg,
            st.mad,
            s.max
        ));
        if name == "command" {
            if set.slowlog_usec < 0 || set.slowlog_max_len == 0 {
                slowlog_enabled = true;
                advices += 1;
            } else if (set.slowlog_usec / 1000) as u64 > set.threshold_ms {
                slowlog_tuning = true;
                advices += 1;
            }
            inspect = true;
            large_objects = true;
            advices += 2;
        }
        if name == "fast-command" {
            scheduler = true;
            advices += 1;
        }
        out.push('\n');
    }
    if anon_huge_pages() > 0 {
        disable_thp = true;
        advices += 1;
    }
    if events.is_empty() && advices == 0 {
        out.push_str(
            "No latency spike was observed during the lifetime of this Valkey instance, not in \
             the slightest bit.\n",
        );
        return out;
    }
    if !events.is_empty() && advices == 0 {
        out.push_str(
            "\nThere are latency events logged that are not easy to fix. Please get some help \
             from Valkey community, providing this report in your help request.\n",
        );
        return out;
    }
    out.push_str("\nHere is some advice for you:\n\n");
    let us = set.threshold_ms * 1000;
    if slowlog_enabled {
        out.push_str(&format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Valkey feature using the command 'CONFIG SET slowlog-log-slower-than {us}'. If the Slow log is disabled Valkey is not able to log slow commands execution for you.\n"));
    }
    if slowlog_tuning {
        out.push_str(&format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {us}'.\n"));
    }
    if inspect {
        out.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://valkey.io/commands/slowlog for more information.\n");
    }
    if scheduler {
        out.push_str("- The system is slow to execute Valkey code paths not containing system calls. This usually means the system does not provide Valkey CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Valkey if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'valkey-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Valkey with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
    }
    if large_objects {
        out.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    if disable_thp {
        out.push_str("- I detected a non zero amount of anonymous huge pages used by your process. This creates very serious latency events in different conditions, especially when Valkey is persisting on disk. To disable THP support use the command 'echo never > /sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it into /etc/rc.local so that the command will be executed again after a reboot. Note that even if you have already disabled THP, you still need to restart the Valkey process to get rid of the huge pages already created.\n");
    }
    out
}

const COLS: usize = 80;
const ROWS: usize = 4;
const CHARSET_FILL: &[u8] = b"_o#";

/// How long ago `t` was, as the graph labels it.
fn ago(now: i64, t: i64) -> String {
    let e = now - t;
    if e < 60 {
        format!("{e}s")
    } else if e < 3600 {
        format!("{}m", e / 60)
    } else if e < 86400 {
        format!("{}h", e / 3600)
    } else {
        format!("{}d", e / 86400)
    }
}

/// LATENCY GRAPH's text for event `name`.
pub fn graph(name: &str, s: &Series, now: i64) -> String {
    let values: Vec<f64> = s.samples.iter().map(|&(_, ms)| ms as f64).collect();
    let labels: Vec<String> = s.samples.iter().map(|&(t, _)| ago(now, t)).collect();
    let hi = s.samples.iter().map(|&(_, ms)| ms).max().unwrap_or(0);
    let lo = s.samples.iter().map(|&(_, ms)| ms).min().unwrap_or(0);
    let mut out = format!(
        "{name} - high {hi} ms, low {lo} ms (all time high {} ms)\n",
        s.max
    );
    out.push_str(&"-".repeat(COLS));
    out.push('\n');
    let (min, max) = (lo as f64, hi as f64);
    let mut j = 0;
    while j < values.len() {
        let len = (values.len() - j).min(COLS);
        if j != 0 {
            out.push('\n');
        }
        render_range(&mut out, &values[j..j + len], &labels[j..j + len], min, max);
        j += COLS;
    }
    out
}

/// sparkline.c's filled rendering of one run of samples: ROWS rows of bars, a blank row,
/// then the labels written downwards.
fn render_range(out: &mut String, values: &[f64], labels: &[String], min: f64, max: f64) {
    let steps = (CHARSET_FILL.len() * ROWS) as i64;
    let relmax = if max - min == 0.0 { 1.0 } else { max - min };
    let mut row = 0usize;
    loop {
        let mut chars = vec![b' '; values.len()];
        let mut again = false;
        for (j, v) in values.iter().enumerate() {
            let relval = v - min;
            let mut step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
            step = step.clamp(0, steps - 1);
            if row < ROWS {
                let idx = step - ((ROWS - row - 1) * CHARSET_FILL.len()) as i64;
                again = true;
                if (0..CHARSET_FILL.len() as i64).contains(&idx) {
                    chars[j] = CHARSET_FILL[idx as usize];
                } else if idx >= CHARSET_FILL.len() as i64 {
                    chars[j] = b'|';
                }
            } else {
                // One blank row between the bars and the labels.
                if row - ROWS < 1 {
                    again = true;
                    break;
                }
                let label = labels[j].as_bytes();
                let at = row - ROWS - 1;
                if label.len() > at {
                    again = true;
                    chars[j] = label[at];
                }
            }
        }
        if !again {
            break;
        }
        row += 1;
        out.push_str(&String::from_utf8_lossy(&chars));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_of_two_spikes_as_valkey_draws_it() {
        // valkey-server 8.1.8 drew this for spikes of 15 and 31 ms, 1 s and 0 s ago.
        let s = Series {
            samples: [(99, 15), (100, 31)].into_iter().collect(),
            max: 31,
            sum: 46,
            count: 2,
        };
        let want = "command - high 31 ms, low 15 ms (all time high 31 ms)\n".to_string()
            + &"-".repeat(80)
            + "\n #\n |\n |\n_|\n  \n10\nss\n";
        assert_eq!(graph("command", &s, 100), want);
    }

    #[test]
    fn doctor_reports_spikes_and_advice() {
        let mut events = BTreeMap::new();
        events.insert(
            "command".to_string(),
            Series {
                samples: [(99, 31), (100, 15)].into_iter().collect(),
                max: 31,
                sum: 46,
                count: 2,
            },
        );
        let set = Settings {
            threshold_ms: 1,
            slowlog_usec: 10_000,
            slowlog_max_len: 128,
        };
        let r = doctor(&events, &set, 100);
        assert!(r.starts_with("Latency spikes are observed in this Valkey instance.\n\n1. command: 2 latency spikes (average 23ms, mean deviation 8ms, period 0.50 sec). Worst all time event 31ms.\n\nHere is some advice for you:\n\n- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than 1000'.\n- Check your Slow Log"), "{r}");
        let off = Settings {
            threshold_ms: 0,
            ..set
        };
        assert!(doctor(&BTreeMap::new(), &off, 100).starts_with("I'm sorry, Dave"));
    }
}

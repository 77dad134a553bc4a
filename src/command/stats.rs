//! Per-command statistics for INFO commandstats/latencystats and per-error-code counts for
//! INFO errorstats, kept as Valkey defines them: `calls` and `usec` for commands that ran,
//! `failed_calls` for those that ran and replied an error, `rejected_calls` for those refused
//! before running (arity, authentication, redirection, MISCONF, READONLY …).
//!
//! Must not: take a lock on the path of a command that succeeds (counters are atomics in the
//! static command table; only an error reply touches the error-code map).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::CommandSpec;

/// Latency buckets: four per power of two of microseconds, up to 2^40 µs.
const SUB: u32 = 4;
const BUCKETS: usize = 40 * SUB as usize;
/// Valkey stops adding new error codes to errorstats past this many.
const MAX_ERROR_CODES: usize = 128;

pub struct CmdStat {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    hist: [AtomicU64; BUCKETS],
}

impl CmdStat {
    pub const fn new() -> CmdStat {
        CmdStat {
            calls: AtomicU64::new(0),
            usec: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            hist: [const { AtomicU64::new(0) }; BUCKETS],
        }
    }

    pub fn ran(&self, usec: u64, failed: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.usec.fetch_add(usec, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.hist[bucket(usec)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self) {
        for a in [&self.calls, &self.usec, &self.rejected, &self.failed] {
            a.store(0, Ordering::Relaxed);
        }
        for b in &self.hist {
            b.store(0, Ordering::Relaxed);
        }
    }

    /// The latency below which `pct` percent of calls finished (a bucket's upper bound).
    fn percentile(&self, pct: f64) -> f64 {
        let counts: Vec<u64> = self
            .hist
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let want = ((pct / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return upper(i);
            }
        }
        upper(BUCKETS - 1)
    }
}

impl Default for CmdStat {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket(usec: u64) -> usize {
    if usec < 1 {
        return 0;
    }
    let log = 63 - usec.leading_zeros();
    // Position within the power of two, in quarters.
    let frac = if log >= 2 {
        ((usec >> (log - 2)) & 3) as u32
    } else {
        ((usec << (2 - log)) & 3) as u32
    };
    ((log * SUB + frac) as usize + 1).min(BUCKETS - 1)
}

fn upper(i: usize) -> f64 {
    if i == 0 {
        return 1.0;
    }
    let i = (i - 1) as u32;
    let (log, frac) = (i / SUB, i % SUB);
    2f64.powi(log as i32) * (1.0 + (frac + 1) as f64 / SUB as f64)
}

/// Counts of error replies by their first word (`ERR`, `WRONGTYPE`, …), for the process (one
/// node per process, like the command table itself).
static ERRORS: parking_lot::Mutex<BTreeMap<String, u64>> = parking_lot::Mutex::new(BTreeMap::new());

pub fn record_error(line: &str) {
    let code = line.split(' ').next().unwrap_or("ERR");
    let mut m = ERRORS.lock();
    if let Some(n) = m.get_mut(code) {
        *n += 1;
    } else if m.len() < MAX_ERROR_CODES {
        m.insert(code.to_string(), 1);
    }
}

/// `errorstat_<CODE>:count=N` lines.
pub fn render_errorstats(out: &mut String) {
    for (code, n) in ERRORS.lock().iter() {
        let _ = write!(out, "errorstat_{code}:count={n}\r\n");
    }
}

/// The counters of every command and subcommand, with their INFO names (`config|get`) in name
/// order, found by the spec's address (the table is static, so addresses are stable).
struct Registry {
    /// (spec address, position in `stats`), sorted by address: a binary search per command.
    index: Vec<(usize, usize)>,
    stats: Vec<(String, CmdStat)>,
}

fn registry() -> &'static Registry {
    static R: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        let mut specs: Vec<(String, usize)> = Vec::new();
        for c in super::table::TABLE {
            specs.push((c.name.to_string(), c as *const CommandSpec as usize));
            for s in c.subcommands {
                specs.push((
                    format!("{}|{}", c.name, s.name),
                    s as *const CommandSpec as usize,
                ));
            }
        }
        specs.sort();
        let mut index: Vec<(usize, usize)> = specs
            .iter()
            .enumerate()
            .map(|(i, (_, a))| (*a, i))
            .collect();
        index.sort_unstable();
        Registry {
            index,
            stats: specs
                .into_iter()
                .map(|(n, _)| (n, CmdStat::new()))
                .collect(),
        }
    })
}

/// The counters of `spec`.
pub fn of(spec: &'static CommandSpec) -> Option<&'static CmdStat> {
    let r = registry();
    let addr = spec as *const CommandSpec as usize;
    let at = r.index.binary_search_by_key(&addr, |(a, _)| *a).ok()?;
    Some(&r.stats[r.index[at].1].1)
}

fn all_specs() -> impl Iterator<Item = (&'static String, &'static CmdStat)> {
    registry().stats.iter().map(|(n, s)| (n, s))
}

/// CONFIG RESETSTAT.
pub fn reset_all() {
    for (_, s) in all_specs() {
        s.reset();
    }
    ERRORS.lock().clear();
}

/// Per-command figures for the metrics endpoint: (name, calls, usec, rejected, failed) of
/// every command that ran or was refused.
pub fn each_command(mut f: impl FnMut(&str, u64, u64, u64, u64)) {
    for (name, st) in all_specs() {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (calls, usec, rejected, failed) =
            (r(&st.calls), r(&st.usec), r(&st.rejected), r(&st.failed));
        if calls != 0 || rejected != 0 || failed != 0 {
            f(name, calls, usec, rejected, failed);
        }
    }
}

/// LATENCY HISTOGRAM's cumulative distribution for the command called `name` (`config|get`
/// for a subcommand): its calls and `(label µs, calls at or below it)` at Valkey's bucket
/// labels (1, 2, 4, 8, 16, 33, 66, … : the top of each power of two from 1024 ns, at two
/// significant digits), each label whose count grew, up to all calls. `None` when it never ran.
pub fn latency_cdf(name: &str) -> Option<(u64, Vec<(u64, u64)>)> {
    let (_, st) = all_specs().find(|(n, _)| n.as_str() == name)?;
    let calls = st.calls.load(Ordering::Relaxed);
    if calls == 0 {
        return None;
    }
    let counts: Vec<u64> = st.hist.iter().map(|b| b.load(Ordering::Relaxed)).collect();
    let total: u64 = counts.iter().sum();
    let mut out = Vec::new();
    let mut previous = 0;
    for k in 0..48u32 {
        // The highest nanosecond value hdr_histogram counts in the bucket ending at 1024·2^k.
        let top_ns = (1024u64 << k) + (1u64 << (k + 3)) - 1;
        let cumulative: u64 = counts
            .iter()
            .enumerate()
            .filter(|(b, _)| lower(*b) * 1000.0 + 500.0 <= top_ns as f64)
            .map(|(_, c)| c)
            .sum();
        if cumulative > previous {
            out.push((top_ns / 1000, cumulative));
            previous = cumulative;
        }
        if cumulative >= total {
            break;
        }
    }
    Some((calls, out))
}

/// Names of the commands that ran, for LATENCY HISTOGRAM without arguments.
pub fn commands_that_ran() -> Vec<String> {
    all_specs()
        .filter(|(_, s)| s.calls.load(Ordering::Relaxed) > 0)
        .map(|(n, _)| n.clone())
        .collect()
}

fn lower(i: usize) -> f64 {
    if i == 0 {
        return 0.0;
    }
    let i = (i - 1) as u32;
    let (log, frac) = (i / SUB, i % SUB);
    2f64.powi(log as i32) * (1.0 + frac as f64 / SUB as f64)
}

/// `cmdstat_<name>:calls=…,usec=…,usec_per_call=…,rejected_calls=…,failed_calls=…`.
pub fn render_commandstats(out: &mut String) {
    for (name, st) in all_specs() {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (calls, usec, rejected, failed) =
            (r(&st.calls), r(&st.usec), r(&st.rejected), r(&st.failed));
        if calls == 0 && rejected == 0 && failed == 0 {
            continue;
        }
        let per = if calls == 0 {
            0.0
        } else {
            usec as f64 / calls as f64
        };
        let _ = write!(
            out,
            "cmdstat_{name}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}\r\n"
        );
    }
}

/// `latency_percentiles_usec_<name>:p50=…,p99=…,p99.9=…` for commands that ran.
pub fn render_latencystats(out: &mut String) {
    for (name, s) in all_specs() {
        if s.calls.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let p = |x| s.percentile(x);
        let _ = write!(
            out,
            "latency_percentiles_usec_{name}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
            p(50.0),
            p(99.0),
            p(99.9)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_values() {
        for usec in [1u64, 2, 3, 5, 7, 8, 100, 1000, 12345, 1 << 30] {
            let b = bucket(usec);
            assert!(upper(b) >= usec as f64, "{usec} in {b} up to {}", upper(b));
            assert!(upper(b) <= usec as f64 * 1.5 + 1.0, "{usec}: {}", upper(b));
        }
        let s = CmdStat::new();
        for usec in 1..=100 {
            s.ran(usec, false);
        }
        assert!((48.0..=64.0).contains(&s.percentile(50.0)));
        assert!(s.percentile(99.9) >= 100.0);
    }
}

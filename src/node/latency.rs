//! The latency monitor (LATENCY LATEST/HISTORY/RESET): with `latency-monitor-threshold` above
//! zero, every command that took at least that many milliseconds is a sample of the
//! `command` or `fast-command` event; each event keeps its newest 160 samples (one per second,
//! the worst of that second) and its all-time maximum, sum and count, as Valkey's latency.c
//! does.
//! Must not: cost a command more than an atomic load while the threshold is 0.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::config::LiveConfig;

const HISTORY: usize = 160;

/// One event's samples: `(unix seconds, milliseconds)`, oldest first, and over every
/// sample ever: the maximum, the sum and the count (Valkey 8's LATEST shows all three).
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub samples: VecDeque<(i64, u64)>,
    pub max: u64,
    pub sum: u64,
    pub count: u64,
}

pub struct LatencyMonitor {
    events: Mutex<BTreeMap<String, Series>>,
    threshold_ms: AtomicU64,
    version: AtomicU64,
}

impl Default for LatencyMonitor {
    fn default() -> Self {
        LatencyMonitor {
            events: Mutex::default(),
            threshold_ms: AtomicU64::new(0),
            version: AtomicU64::new(u64::MAX),
        }
    }
}

impl LatencyMonitor {
    fn threshold(&self, config: &LiveConfig) -> u64 {
        if let Some(c) = config.changed_since(&self.version) {
            self.threshold_ms
                .store(c.latency_monitor_threshold_ms, Ordering::Relaxed);
        }
        self.threshold_ms.load(Ordering::Relaxed)
    }

    /// A command ran for `usec`: a sample of `command` (or `fast-command`) when it reached the
    /// threshold.
    pub fn command_ran(&self, config: &LiveConfig, usec: u64, fast: bool) {
        let t = self.threshold(config);
        let ms = usec / 1000;
        if t == 0 || ms < t {
            return;
        }
        let event = if fast { "fast-command" } else { "command" };
        self.add(event, ms);
    }

    fn add(&self, event: &str, ms: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut events = self.events.lock();
        let s = events.entry(event.to_string()).or_default();
        s.max = s.max.max(ms);
        s.sum += ms;
        s.count += 1;
        match s.samples.back_mut() {
            // One sample a second: the worst of it.
            Some((t, v)) if *t == now => *v = (*v).max(ms),
            _ => {
                s.samples.push_back((now, ms));
                if s.samples.len() > HISTORY {
                    s.samples.pop_front();
                }
            }
        }
    }

    /// Every event with its samples.
    pub fn events(&self) -> BTreeMap<String, Series> {
        self.events.lock().clone()
    }

    /// Forgets `names` (every event when empty); how many there were.
    pub fn reset(&self, names: &[String]) -> usize {
        let mut events = self.events.lock();
        if names.is_empty() {
            let n = events.len();
            events.clear();
            return n;
        }
        names.iter().filter(|n| events.remove(*n).is_some()).count()
    }
}

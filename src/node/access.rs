//! Key access times and frequencies, for OBJECT IDLETIME, OBJECT FREQ and DEBUG OBJECT:
//! what Valkey keeps in each object's 24-bit LRU field, kept here in a fixed table of cells
//! addressed by a hash of (physical database, key), so memory stays fixed however many keys
//! live on disk. Keys that share a cell share its figure (the latest access wins), so with
//! far more keys than cells an idle time is a lower bound. A cell never written since the
//! start reads as touched at the start (Valkey's keys loaded from disk read the same).
//!
//! A cell holds, as in Valkey, the access time in seconds under an LRU (or no) eviction
//! policy, and under an LFU policy the access minute and a logarithmic counter; switching
//! policy reinterprets the cells, as Valkey's objects are.
//!
//! Must not: read storage or decide which commands touch keys (dispatch does).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::LiveConfig;

/// Cells in the table (4 MiB).
const CELLS: usize = 1 << 20;
/// Valkey's `LFU_INIT_VAL`: a new key's counter, so it is not the first one evicted.
pub const LFU_INIT: u32 = 5;

pub struct AccessClock {
    cells: Box<[AtomicU32]>,
    /// Unix seconds at the start.
    started: u32,
    /// Unix seconds as of the last [`tick`](Self::tick): like Valkey's LRU clock, kept by the
    /// server's cron so a touch costs no clock read.
    now: AtomicU32,
    /// The policy and LFU settings, copied from the config when it changes.
    seen: AtomicU64,
    lfu: AtomicBool,
    log_factor: AtomicU32,
    decay_minutes: AtomicU32,
}

fn unix_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

/// Valkey's `LFUGetTimeInMinutes`: minutes, 16 bits, wrapping.
fn minutes(secs: u32) -> u32 {
    (secs / 60) & 0xffff
}

impl Default for AccessClock {
    fn default() -> Self {
        AccessClock {
            cells: (0..CELLS).map(|_| AtomicU32::new(0)).collect(),
            started: unix_secs(),
            now: AtomicU32::new(unix_secs()),
            seen: AtomicU64::new(u64::MAX),
            lfu: AtomicBool::new(false),
            log_factor: AtomicU32::new(10),
            decay_minutes: AtomicU32::new(1),
        }
    }
}

impl AccessClock {
    fn cell(&self, db: u8, key: &[u8]) -> &AtomicU32 {
        // FNV-1a: short keys, no allocation, no keyed hash needed for a fixed table.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(db);
        for &b in key {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        &self.cells[(h as usize) & (CELLS - 1)]
    }

    /// Reads the clock (the server calls it ten times a second).
    pub fn tick(&self) {
        self.now.store(unix_secs(), Ordering::Relaxed);
    }

    fn now(&self) -> u32 {
        self.now.load(Ordering::Relaxed)
    }

    /// Whether an LFU policy is selected (re-read from the config when it changed).
    pub fn lfu(&self, config: &LiveConfig) -> bool {
        if config.changed_since(&self.seen).is_some() {
            let policy = config.extra("maxmemory-policy").unwrap_or_default();
            let lfu = policy.to_ascii_lowercase().ends_with("-lfu");
            self.lfu.store(lfu, Ordering::Relaxed);
            let int = |k: &str, d: u32| {
                config
                    .extra(k)
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(d)
            };
            self.log_factor
                .store(int("lfu-log-factor", 10), Ordering::Relaxed);
            self.decay_minutes
                .store(int("lfu-decay-time", 1), Ordering::Relaxed);
        }
        self.lfu.load(Ordering::Relaxed)
    }

    /// A command looked `key` up (or wrote it): under LRU its time is now. Under LFU a key
    /// the command `created` starts at [`LFU_INIT`], another one's counter decays and then
    /// grows with a chance that falls as it grows (Valkey's `updateLFU`).
    pub fn touch(&self, db: u8, key: &[u8], lfu: bool, created: bool) {
        let now = self.now();
        let cell = self.cell(db, key);
        if !lfu {
            // The clock moves ten times a second: most touches find the cell current and
            // leave its cache line clean.
            if cell.load(Ordering::Relaxed) != now {
                cell.store(now, Ordering::Relaxed);
            }
            return;
        }
        let counter = if created {
            LFU_INIT
        } else {
            let c = self.decayed(cell.load(Ordering::Relaxed), now);
            self.log_incr(c)
        };
        cell.store((minutes(now) << 8) | counter, Ordering::Relaxed);
    }

    /// RESTORE … IDLETIME: `key` was last touched `idle` seconds ago.
    pub fn set_idle(&self, db: u8, key: &[u8], idle: u32) {
        let at = self.now().saturating_sub(idle).max(1);
        self.cell(db, key).store(at, Ordering::Relaxed);
    }

    /// RESTORE … FREQ: `key`'s counter is `freq` (at most 255) as of now.
    pub fn set_freq(&self, db: u8, key: &[u8], freq: u32) {
        let cell = (minutes(self.now()) << 8) | freq.min(255);
        self.cell(db, key).store(cell, Ordering::Relaxed);
    }

    /// Seconds since `key` was last touched (OBJECT IDLETIME), as Valkey's LRU clock counts
    /// them: whole seconds between the two second marks.
    pub fn idle_secs(&self, db: u8, key: &[u8]) -> u64 {
        let at = match self.cell(db, key).load(Ordering::Relaxed) {
            0 => self.started,
            at => at,
        };
        u64::from(self.now().saturating_sub(at))
    }

    /// The decayed access counter of `key` (OBJECT FREQ).
    pub fn freq(&self, db: u8, key: &[u8]) -> u32 {
        self.decayed(self.cell(db, key).load(Ordering::Relaxed), self.now())
    }

    /// Valkey's `LFUDecrAndReturn`: the counter less one per `lfu-decay-time` minutes since
    /// the cell's minute. A cell never written counts as a new key's at the start.
    fn decayed(&self, cell: u32, now: u32) -> u32 {
        let cell = if cell == 0 {
            (minutes(self.started) << 8) | LFU_INIT
        } else {
            cell
        };
        let (then, counter) = (cell >> 8, cell & 0xff);
        let now = minutes(now);
        let elapsed = if now >= then {
            now - then
        } else {
            0xffff - then + now
        };
        let periods = match self.decay_minutes.load(Ordering::Relaxed) {
            0 => 0,
            d => elapsed / d,
        };
        counter.saturating_sub(periods)
    }

    /// Valkey's `LFULogIncr`: +1 with probability 1 / ((counter - LFU_INIT) * factor + 1).
    fn log_incr(&self, counter: u32) -> u32 {
        if counter >= 255 {
            return 255;
        }
        let base = counter.saturating_sub(LFU_INIT);
        let factor = self.log_factor.load(Ordering::Relaxed);
        let p = 1.0 / (f64::from(base) * f64::from(factor) + 1.0);
        if rand::random::<f64>() < p {
            counter + 1
        } else {
            counter
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfu_counter_starts_at_init_grows_slower_and_decays() {
        let c = AccessClock::default();
        c.touch(0, b"k", true, true);
        assert_eq!(c.freq(0, b"k"), LFU_INIT);
        // From the initial value the first access always counts.
        c.touch(0, b"k", true, false);
        assert_eq!(c.freq(0, b"k"), LFU_INIT + 1);
        // 10,000 more accesses with factor 10 end far below 255 but well above the start.
        for _ in 0..10_000 {
            c.touch(0, b"k", true, false);
        }
        let f = c.freq(0, b"k");
        assert!((30..70).contains(&f), "counter {f}");
        // Two decay periods later the counter has lost two.
        let cell = c.cell(0, b"k").load(Ordering::Relaxed);
        let two_minutes_ago = ((cell >> 8).wrapping_sub(2) & 0xffff) << 8 | (cell & 0xff);
        c.cell(0, b"k").store(two_minutes_ago, Ordering::Relaxed);
        assert_eq!(c.freq(0, b"k"), f - 2);
    }

    #[test]
    fn idle_time_counts_from_the_touch_or_the_start() {
        let c = AccessClock::default();
        c.tick();
        assert_eq!(c.idle_secs(0, b"never"), u64::from(c.now() - c.started));
        c.set_idle(3, b"k", 100);
        assert_eq!(c.idle_secs(3, b"k"), 100);
        c.touch(3, b"k", false, false);
        assert_eq!(c.idle_secs(3, b"k"), 0);
        // Another database is another cell.
        assert_ne!(
            c.cell(3, b"k") as *const AtomicU32,
            c.cell(4, b"k") as *const AtomicU32
        );
    }
}

//! Per-slot usage for CLUSTER SLOT-STATS when `cluster-slot-stats-enabled` is on: CPU time of
//! the commands on each slot's keys, their request bytes and their reply bytes.
//! Must not: cost a command anything but one atomic load while it is off (the setting is
//! copied when the config version changes).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::config::LiveConfig;
use crate::storage::SLOTS;

pub struct SlotStats {
    cpu_usec: Box<[AtomicU64]>,
    bytes_in: Box<[AtomicU64]>,
    bytes_out: Box<[AtomicU64]>,
    enabled: AtomicBool,
    version: AtomicU64,
}

fn counters() -> Box<[AtomicU64]> {
    (0..SLOTS).map(|_| AtomicU64::new(0)).collect()
}

impl Default for SlotStats {
    fn default() -> Self {
        SlotStats {
            cpu_usec: counters(),
            bytes_in: counters(),
            bytes_out: counters(),
            enabled: AtomicBool::new(false),
            version: AtomicU64::new(u64::MAX),
        }
    }
}

/// One slot's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotUsage {
    pub cpu_usec: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl SlotStats {
    /// Whether `cluster-slot-stats-enabled` is on.
    pub fn enabled(&self, config: &LiveConfig) -> bool {
        if let Some(c) = config.changed_since(&self.version) {
            self.enabled
                .store(c.cluster_slot_stats_enabled, Ordering::Relaxed);
        }
        self.enabled.load(Ordering::Relaxed)
    }

    /// A command on `slot` ran for `usec` with a request of `bytes_in` bytes.
    pub fn ran(&self, slot: u16, usec: u64, bytes_in: u64) {
        let i = slot as usize;
        self.cpu_usec[i].fetch_add(usec, Ordering::Relaxed);
        self.bytes_in[i].fetch_add(bytes_in, Ordering::Relaxed);
    }

    /// A reply of `bytes` went out for a command on `slot`.
    pub fn replied(&self, slot: u16, bytes: u64) {
        self.bytes_out[slot as usize].fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn usage(&self, slot: u16) -> SlotUsage {
        let i = slot as usize;
        SlotUsage {
            cpu_usec: self.cpu_usec[i].load(Ordering::Relaxed),
            bytes_in: self.bytes_in[i].load(Ordering::Relaxed),
            bytes_out: self.bytes_out[i].load(Ordering::Relaxed),
        }
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for a in self
            .cpu_usec
            .iter()
            .chain(self.bytes_in.iter())
            .chain(self.bytes_out.iter())
        {
            a.store(0, Ordering::Relaxed);
        }
    }
}

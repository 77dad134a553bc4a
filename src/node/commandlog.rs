//! The command log (COMMANDLOG, and SLOWLOG as its `slow` view): the newest commands that ran
//! slower than `commandlog-execution-slower-than`, whose request or reply passed
//! `commandlog-request-larger-than` / `commandlog-reply-larger-than`, each log bounded by its
//! `*-max-len`, entries shaped as Valkey keeps them (32 arguments, 128 bytes each, secrets
//! redacted).
//!
//! Must not: cost a command more than a few atomic loads when nothing is logged; read the
//! configuration on that path (the limits are copied when the config version changes).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::config::{Config, LiveConfig};

/// Which log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Slow = 0,
    LargeRequest = 1,
    LargeReply = 2,
}

impl LogKind {
    pub fn parse(name: &[u8]) -> Option<LogKind> {
        [
            ("slow", LogKind::Slow),
            ("large-request", LogKind::LargeRequest),
            ("large-reply", LogKind::LargeReply),
        ]
        .into_iter()
        .find(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()))
        .map(|(_, k)| k)
    }
}

const MAX_ARGS: usize = 32;
const MAX_ARG_BYTES: usize = 128;

/// One logged command.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub id: u64,
    /// Unix seconds.
    pub time: i64,
    /// Microseconds (slow) or bytes (large request/reply).
    pub value: u64,
    pub args: Vec<Bytes>,
    pub peer: String,
    pub name: String,
}

#[derive(Default)]
struct Log {
    next_id: u64,
    entries: VecDeque<LogEntry>,
}

pub struct CommandLog {
    logs: [Mutex<Log>; 3],
    thresholds: [AtomicI64; 3],
    max_lens: [AtomicU64; 3],
    /// The config version the limits were copied from (`u64::MAX`: never).
    version: AtomicU64,
}

impl Default for CommandLog {
    fn default() -> Self {
        CommandLog {
            logs: Default::default(),
            thresholds: [const { AtomicI64::new(-1) }; 3],
            max_lens: [const { AtomicU64::new(0) }; 3],
            version: AtomicU64::new(u64::MAX),
        }
    }
}

/// What a client is called in an entry.
pub struct Caller<'a> {
    pub peer: std::net::SocketAddr,
    pub name: &'a str,
}

impl CommandLog {
    fn limits_of(c: &Config) -> [(i64, u64); 3] {
        [
            (c.commandlog_slow_usec, c.commandlog_slow_max_len),
            (c.commandlog_request_bytes, c.commandlog_request_max_len),
            (c.commandlog_reply_bytes, c.commandlog_reply_max_len),
        ]
    }

    fn refresh(&self, config: &LiveConfig) {
        let Some(c) = config.changed_since(&self.version) else {
            return;
        };
        for (i, (t, m)) in Self::limits_of(&c).into_iter().enumerate() {
            self.thresholds[i].store(t, Ordering::Relaxed);
            self.max_lens[i].store(m, Ordering::Relaxed);
        }
        // A smaller max-len takes effect at once.
        for (i, log) in self.logs.iter().enumerate() {
            let max = self.max_lens[i].load(Ordering::Relaxed) as usize;
            log.lock().entries.truncate(max);
        }
    }

    /// Whether `value` would be logged as `kind` (checked before building an entry).
    pub fn wants(&self, config: &LiveConfig, kind: LogKind, value: u64) -> bool {
        self.refresh(config);
        let t = self.thresholds[kind as usize].load(Ordering::Relaxed);
        let max = self.max_lens[kind as usize].load(Ordering::Relaxed);
        t >= 0 && max > 0 && value >= t as u64
    }

    /// Logs `args` as `kind` when `value` reaches its threshold.
    pub fn record(
        &self,
        config: &LiveConfig,
        kind: LogKind,
        value: u64,
        args: &[Bytes],
        caller: Caller<'_>,
    ) {
        if !self.wants(config, kind, value) {
            return;
        }
        let max = self.max_lens[kind as usize].load(Ordering::Relaxed) as usize;
        let args = entry_args(&redacted(args));
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut log = self.logs[kind as usize].lock();
        let id = log.next_id;
        log.next_id += 1;
        log.entries.push_front(LogEntry {
            id,
            time,
            value,
            args,
            peer: caller.peer.to_string(),
            name: caller.name.to_string(),
        });
        log.entries.truncate(max);
    }

    /// The newest `count` entries (all with `None`), newest first.
    pub fn get(&self, kind: LogKind, count: Option<usize>) -> Vec<LogEntry> {
        let log = self.logs[kind as usize].lock();
        let n = count.unwrap_or(usize::MAX);
        log.entries.iter().take(n).cloned().collect()
    }

    pub fn len(&self, kind: LogKind) -> usize {
        self.logs[kind as usize].lock().entries.len()
    }

    pub fn reset(&self, kind: LogKind) {
        self.logs[kind as usize].lock().entries.clear();
    }
}

/// The arguments with secrets replaced by `(redacted)`, as Valkey logs (and MONITOR shows)
/// them.
pub fn redacted(args: &[Bytes]) -> Vec<Bytes> {
    let hide = Bytes::from_static(b"(redacted)");
    let is = |a: &Bytes, s: &str| a.eq_ignore_ascii_case(s.as_bytes());
    let mut out = args.to_vec();
    let Some(cmd) = args.first() else {
        return out;
    };
    if is(cmd, "auth") {
        out[1..].iter_mut().for_each(|a| *a = hide.clone());
    } else if is(cmd, "hello") || is(cmd, "migrate") {
        let mut i = 1;
        while i < out.len() {
            if is(&out[i], "auth") && i + 1 < out.len() {
                let n = if is(cmd, "hello") { 2 } else { 1 };
                for a in out.iter_mut().skip(i + 1).take(n) {
                    *a = hide.clone();
                }
                i += n;
            } else if is(&out[i], "auth2") && i + 2 < out.len() {
                out[i + 1] = hide.clone();
                out[i + 2] = hide.clone();
                i += 2;
            }
            i += 1;
        }
    } else if is(cmd, "acl") && args.get(1).is_some_and(|a| is(a, "setuser")) {
        out[2..].iter_mut().for_each(|a| *a = hide.clone());
    } else if is(cmd, "config") && args.get(1).is_some_and(|a| is(a, "set")) {
        let mut i = 2;
        while i + 1 < out.len() {
            if [
                "requirepass",
                "masterauth",
                "cluster-bus-secret",
                "tls-key-file-pass",
            ]
            .iter()
            .any(|s| is(&out[i], s))
            {
                out[i + 1] = hide.clone();
            }
            i += 2;
        }
    }
    out
}

/// At most 32 arguments (the last one says how many more there were), each at most 128
/// bytes (with how many more there were).
fn entry_args(args: &[Bytes]) -> Vec<Bytes> {
    let keep = args.len().min(MAX_ARGS);
    (0..keep)
        .map(|j| {
            if keep != args.len() && j == keep - 1 {
                let more = args.len() - keep + 1;
                return Bytes::from(format!("... ({more} more arguments)"));
            }
            let a = &args[j];
            if a.len() > MAX_ARG_BYTES {
                let mut s = a[..MAX_ARG_BYTES].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_ARG_BYTES).as_bytes(),
                );
                Bytes::from(s)
            } else {
                a.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    #[test]
    fn entries_are_trimmed_and_redacted_as_valkey_does() {
        let many: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        let e = entry_args(&many);
        assert_eq!(e.len(), 32);
        assert_eq!(&e[31][..], b"... (9 more arguments)");
        let long = vec![Bytes::from(vec![b'x'; 130])];
        let e = entry_args(&long);
        assert!(e[0].ends_with(b"x... (2 more bytes)"));
        assert_eq!(
            redacted(&b(&["AUTH", "u", "p"])),
            b(&["AUTH", "(redacted)", "(redacted)"])
        );
        assert_eq!(
            redacted(&b(&["HELLO", "3", "AUTH", "u", "p", "SETNAME", "n"])),
            b(&[
                "HELLO",
                "3",
                "AUTH",
                "(redacted)",
                "(redacted)",
                "SETNAME",
                "n"
            ])
        );
        assert_eq!(
            redacted(&b(&["ACL", "SETUSER", "u", "on", ">pw", "~*"])),
            b(&[
                "ACL",
                "SETUSER",
                "(redacted)",
                "(redacted)",
                "(redacted)",
                "(redacted)"
            ])
        );
    }
}

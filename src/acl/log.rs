//! The ACL log (ACL LOG): refused commands, keys, channels and failed authentications, newest
//! first, grouped as Valkey groups them (same reason, context, object and user within 60 s).

use std::collections::VecDeque;

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogReason {
    Command,
    Key,
    Channel,
    Auth,
}

impl LogReason {
    pub fn name(self) -> &'static str {
        match self {
            LogReason::Command => "command",
            LogReason::Key => "key",
            LogReason::Channel => "channel",
            LogReason::Auth => "auth",
        }
    }
}

/// One entry.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub count: u64,
    pub reason: LogReason,
    /// `toplevel`, `multi` or `lua`.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub client_info: String,
    pub entry_id: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// How long a repeated refusal joins its entry instead of starting a new one.
const GROUP_MS: u64 = 60_000;
/// How many newest entries a refusal may join.
const GROUP_AMONG: usize = 10;

#[derive(Default)]
pub struct AclLog {
    entries: VecDeque<LogEntry>,
    next_id: u64,
}

impl AclLog {
    /// Records a refusal at `now_ms`, keeping at most `max` entries.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        reason: LogReason,
        context: &'static str,
        object: String,
        username: String,
        client_info: String,
        now_ms: u64,
        max: usize,
    ) {
        let same = self.entries.iter().take(GROUP_AMONG).position(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now_ms.saturating_sub(e.created_ms) <= GROUP_MS
        });
        if let Some(i) = same {
            if let Some(mut e) = self.entries.remove(i) {
                e.count += 1;
                e.client_info = client_info;
                e.updated_ms = now_ms;
                self.entries.push_front(e);
            }
            return;
        }
        self.entries.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object,
            username,
            client_info,
            entry_id: self.next_id,
            created_ms: now_ms,
            updated_ms: now_ms,
        });
        self.next_id += 1;
        self.entries.truncate(max);
    }

    /// The newest `n` entries.
    pub fn newest(&self, n: usize) -> Vec<LogEntry> {
        self.entries.iter().take(n).cloned().collect()
    }

    /// ACL LOG RESET (entry ids keep counting).
    pub fn reset(&mut self) {
        self.entries.clear();
    }
}

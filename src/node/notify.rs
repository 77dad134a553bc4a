//! Keyspace notifications on the wire: an event goes to `__keyspace@<db>__:<key>` (message:
//! the event) and to `__keyevent@<db>__:<event>` (message: the key) when
//! `notify-keyspace-events` has `K` or `E`. Delivered to this node's subscribers only, as
//! Valkey's are in cluster mode.
//!
//! Must not: decide which events a command raises (`command::notify` does) or whether a class
//! is enabled (callers check [`KeyspaceEvents::wants`] first).

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use bytes::Bytes;

use super::pubsub::PubSub;
use crate::config::{KeyspaceEvents, LiveConfig};

#[derive(Default)]
pub struct Notifier {
    seen: AtomicU64,
    flags: AtomicU16,
}

impl Notifier {
    /// The current `notify-keyspace-events` (read from the config only when it changed).
    pub fn flags(&self, config: &LiveConfig) -> KeyspaceEvents {
        if let Some(c) = config.changed_since(&self.seen) {
            self.flags
                .store(c.notify_keyspace_events.0, Ordering::Relaxed);
        }
        KeyspaceEvents(self.flags.load(Ordering::Relaxed))
    }

    pub fn publish(&self, pubsub: &PubSub, flags: KeyspaceEvents, event: &str, db: u8, key: &[u8]) {
        if flags.0 & KeyspaceEvents::KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{db}__:").into_bytes();
            ch.extend_from_slice(key);
            pubsub.publish(&Bytes::from(ch), &Bytes::copy_from_slice(event.as_bytes()));
        }
        if flags.0 & KeyspaceEvents::KEYEVENT != 0 {
            let ch = Bytes::from(format!("__keyevent@{db}__:{event}"));
            pubsub.publish(&ch, &Bytes::copy_from_slice(key));
        }
    }
}

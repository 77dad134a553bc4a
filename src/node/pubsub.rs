//! Pub/sub on this node: who is subscribed to which channel, pattern or shard channel, and
//! delivery of published messages into each subscriber's queue. A connection drains its queue
//! and writes the messages (RESP3 pushes, RESP2 arrays).
//!
//! Owns: the subscription registry. Must not: write to sockets or reach other nodes (the
//! cluster bus forwards PUBLISH and SPUBLISH; see `cluster::publish`).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::mpsc;

use super::ClientHandle;
use crate::config::OutputLimit;
use crate::resp::Reply;

/// Messages a subscriber may have queued before it is disconnected, whatever their size; the
/// byte limits of `client-output-buffer-limit pubsub` usually act first.
const QUEUE_LIMIT: usize = 64 * 1024;

/// What a queued message costs against the output limit: its strings and the reply framing.
const MESSAGE_OVERHEAD: u64 = 32;

/// One message for one subscriber.
#[derive(Debug, Clone)]
pub enum Delivery {
    Message {
        channel: Bytes,
        payload: Bytes,
    },
    PMessage {
        pattern: Bytes,
        channel: Bytes,
        payload: Bytes,
    },
    SMessage {
        channel: Bytes,
        payload: Bytes,
    },
    /// A MONITOR line (without `+` and CRLF).
    Monitor(Bytes),
    /// A message shaped for its receiver already (CLIENT TRACKING's invalidations), with
    /// the bytes it counts for.
    Shaped(Reply, u64),
}

impl Delivery {
    /// The bytes this message counts for in its subscriber's output limit.
    pub fn size(&self) -> u64 {
        MESSAGE_OVERHEAD
            + match self {
                Delivery::Message { channel, payload }
                | Delivery::SMessage { channel, payload } => channel.len() + payload.len(),
                Delivery::PMessage {
                    pattern,
                    channel,
                    payload,
                } => pattern.len() + channel.len() + payload.len(),
                Delivery::Monitor(line) => line.len(),
                Delivery::Shaped(_, size) => *size as usize,
            } as u64
    }

    pub fn reply(self) -> Reply {
        let line = match self {
            Delivery::Monitor(line) => line,
            Delivery::Shaped(r, _) => return r,
            other => return other.message(),
        };
        Reply::StatusOwned(String::from_utf8_lossy(&line).into_owned())
    }

    fn message(self) -> Reply {
        let b = Reply::Bulk;
        Reply::Push(match self {
            Delivery::Message { channel, payload } => {
                vec![Reply::bulk_str("message"), b(channel), b(payload)]
            }
            Delivery::PMessage {
                pattern,
                channel,
                payload,
            } => vec![
                Reply::bulk_str("pmessage"),
                b(pattern),
                b(channel),
                b(payload),
            ],
            Delivery::SMessage { channel, payload } => {
                vec![Reply::bulk_str("smessage"), b(channel), b(payload)]
            }
            Delivery::Monitor(_) | Delivery::Shaped(..) => Vec::new(),
        })
    }
}

#[derive(Clone)]
struct Subscriber {
    tx: mpsc::Sender<Delivery>,
    handle: Arc<ClientHandle>,
}

impl Subscriber {
    /// Queues `d`, or closes a client whose queue is past `limit` (hard at once, soft once it
    /// stayed above for the soft seconds), as Valkey does for a reader that cannot keep up.
    fn send(&self, d: Delivery, limit: OutputLimit) -> bool {
        let h = &self.handle;
        let size = d.size();
        let queued = h.pubsub_queued.load(Ordering::Relaxed) + size;
        let over_hard = limit.hard > 0 && queued > limit.hard;
        let over_soft = if limit.soft > 0 && queued > limit.soft {
            // Above the soft limit since the first message that took it there.
            let now = h.created.elapsed().as_millis() as u64 + 1;
            let since = h
                .pubsub_soft_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
                .unwrap_or_else(|s| s);
            now - since >= limit.soft_secs * 1000
        } else {
            h.pubsub_soft_since.store(0, Ordering::Relaxed);
            false
        };
        if over_hard || over_soft {
            return self.close(queued);
        }
        match self.tx.try_send(d) {
            Ok(()) => {
                h.pubsub_queued.fetch_add(size, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => self.close(queued),
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn close(&self, queued: u64) -> bool {
        if !self.handle.is_killed() {
            tracing::warn!(
                "client {} closed for overcoming of output buffer limits (pubsub, {queued} bytes queued)",
                self.handle.id
            );
            self.handle.kill();
        }
        false
    }
}

type Table = HashMap<Bytes, HashMap<u64, Subscriber>>;

/// Which table a subscription lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Channel,
    Pattern,
    Shard,
}

#[derive(Default)]
pub struct PubSub {
    channels: RwLock<Table>,
    patterns: RwLock<Table>,
    shard: RwLock<Table>,
    /// MONITOR clients by id.
    monitors: RwLock<HashMap<u64, Subscriber>>,
    monitor_count: std::sync::atomic::AtomicUsize,
    /// `client-output-buffer-limit pubsub`: hard bytes, soft bytes, soft seconds.
    limit: [AtomicU64; 3],
    /// The mailbox of every client that has one (subscribed, tracking, monitoring or
    /// speaking RESP3), by id: where a tracking REDIRECT sends its invalidations.
    mailboxes: RwLock<HashMap<u64, Mailbox>>,
}

/// One connection's subscriptions and the queue its messages arrive on.
pub struct Subscriptions {
    pub rx: mpsc::Receiver<Delivery>,
    tx: mpsc::Sender<Delivery>,
    pub channels: BTreeSet<Bytes>,
    pub patterns: BTreeSet<Bytes>,
    pub shard: BTreeSet<Bytes>,
    /// MONITOR runs on this connection (it is then exempt from `timeout`, as in Valkey).
    pub monitor: bool,
}

impl Subscriptions {
    pub fn new() -> Subscriptions {
        let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
        Subscriptions {
            rx,
            tx,
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            shard: BTreeSet::new(),
            monitor: false,
        }
    }

    fn set(&mut self, space: Space) -> &mut BTreeSet<Bytes> {
        match space {
            Space::Channel => &mut self.channels,
            Space::Pattern => &mut self.patterns,
            Space::Shard => &mut self.shard,
        }
    }

    /// The names subscribed to in `space`.
    pub fn names(&self, space: Space) -> &BTreeSet<Bytes> {
        match space {
            Space::Channel => &self.channels,
            Space::Pattern => &self.patterns,
            Space::Shard => &self.shard,
        }
    }

    /// Channel, pattern and shard-channel counts (CLIENT LIST's `sub= psub= ssub=`).
    pub fn counts(&self) -> [usize; 3] {
        [self.channels.len(), self.patterns.len(), self.shard.len()]
    }

    /// Channels plus patterns: the count SUBSCRIBE and PSUBSCRIBE report.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0 && self.shard.is_empty()
    }
}

/// Where one client's out-of-band messages go (its pub/sub queue), under the pub/sub
/// output limits.
#[derive(Clone)]
pub struct Mailbox(Subscriber);

impl Mailbox {
    /// Queues `d`; false if the client is gone or was closed for its output limit.
    pub fn post(&self, d: Delivery, pubsub: &PubSub) -> bool {
        self.0.send(d, pubsub.output_limit())
    }

    pub fn handle(&self) -> &Arc<ClientHandle> {
        &self.0.handle
    }
}

impl Subscriptions {
    /// This connection's mailbox.
    pub fn mailbox(&self, handle: &Arc<ClientHandle>) -> Mailbox {
        Mailbox(Subscriber {
            tx: self.tx.clone(),
            handle: Arc::clone(handle),
        })
    }
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions::new()
    }
}

impl PubSub {
    /// The client's subscriptions, opened (and its mailbox listed by id) if it had none.
    pub fn open<'s>(
        &self,
        subs: &'s mut Option<Subscriptions>,
        handle: &Arc<ClientHandle>,
    ) -> &'s mut Subscriptions {
        subs.get_or_insert_with(|| {
            let s = Subscriptions::new();
            self.mailboxes.write().insert(handle.id, s.mailbox(handle));
            s
        })
    }

    /// The mailbox of client `id`, if it has one.
    pub fn mailbox_of(&self, id: u64) -> Option<Mailbox> {
        self.mailboxes.read().get(&id).cloned()
    }

    /// Takes `client-output-buffer-limit pubsub` (at start and after CONFIG SET).
    pub fn set_output_limit(&self, l: OutputLimit) {
        for (a, v) in self.limit.iter().zip([l.hard, l.soft, l.soft_secs]) {
            a.store(v, Ordering::Relaxed);
        }
    }

    fn output_limit(&self) -> OutputLimit {
        let v = |i: usize| self.limit[i].load(Ordering::Relaxed);
        OutputLimit {
            hard: v(0),
            soft: v(1),
            soft_secs: v(2),
        }
    }

    fn table(&self, space: Space) -> &RwLock<Table> {
        match space {
            Space::Channel => &self.channels,
            Space::Pattern => &self.patterns,
            Space::Shard => &self.shard,
        }
    }

    /// The mailbox of client `id` if it subscribed to `channel`.
    pub fn subscriber(&self, channel: &[u8], id: u64) -> Option<Mailbox> {
        self.channels
            .read()
            .get(channel)
            .and_then(|m| m.get(&id))
            .cloned()
            .map(Mailbox)
    }

    /// Adds `name` to `subs`; false if it was already there.
    pub fn subscribe(
        &self,
        subs: &mut Subscriptions,
        handle: &Arc<ClientHandle>,
        space: Space,
        name: &Bytes,
    ) -> bool {
        if !subs.set(space).insert(name.clone()) {
            return false;
        }
        let sub = Subscriber {
            tx: subs.tx.clone(),
            handle: Arc::clone(handle),
        };
        self.table(space)
            .write()
            .entry(name.clone())
            .or_default()
            .insert(handle.id, sub);
        true
    }

    /// Removes `name` from `subs`; false if it was not there.
    pub fn unsubscribe(
        &self,
        subs: &mut Subscriptions,
        id: u64,
        space: Space,
        name: &[u8],
    ) -> bool {
        if !subs.set(space).remove(name) {
            return false;
        }
        let mut t = self.table(space).write();
        if let Some(m) = t.get_mut(name) {
            m.remove(&id);
            if m.is_empty() {
                t.remove(name);
            }
        }
        true
    }

    /// Drops every subscription of a closing (or RESET) connection.
    /// MONITOR: every command the node runs from now on reaches `subs` as a line.
    pub fn add_monitor(&self, subs: &Subscriptions, handle: &Arc<ClientHandle>) {
        let sub = Subscriber {
            tx: subs.tx.clone(),
            handle: Arc::clone(handle),
        };
        let mut m = self.monitors.write();
        m.insert(handle.id, sub);
        self.monitor_count.store(m.len(), Ordering::Release);
    }

    /// Whether any client runs MONITOR (checked before a line is built).
    pub fn monitored(&self) -> bool {
        self.monitor_count.load(Ordering::Acquire) > 0
    }

    /// Sends `line` to every monitoring client.
    pub fn feed_monitors(&self, line: Bytes) {
        let limit = self.output_limit();
        for s in self.monitors.read().values() {
            s.send(Delivery::Monitor(line.clone()), limit);
        }
    }

    pub fn forget(&self, subs: &mut Subscriptions, id: u64) {
        self.mailboxes.write().remove(&id);
        {
            let mut m = self.monitors.write();
            if m.remove(&id).is_some() {
                self.monitor_count.store(m.len(), Ordering::Release);
            }
        }
        for space in [Space::Channel, Space::Pattern, Space::Shard] {
            let names: Vec<Bytes> = subs.set(space).iter().cloned().collect();
            for n in names {
                self.unsubscribe(subs, id, space, &n);
            }
        }
    }

    /// Delivers a PUBLISH to local channel and pattern subscribers; the number reached.
    pub fn publish(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let limit = self.output_limit();
        let mut n = 0;
        if let Some(m) = self.channels.read().get(channel) {
            for s in m.values() {
                n += s.send(
                    Delivery::Message {
                        channel: channel.clone(),
                        payload: payload.clone(),
                    },
                    limit,
                ) as usize;
            }
        }
        for (pattern, m) in self.patterns.read().iter() {
            if !crate::glob::glob_match(pattern, channel, false) {
                continue;
            }
            for s in m.values() {
                n += s.send(
                    Delivery::PMessage {
                        pattern: pattern.clone(),
                        channel: channel.clone(),
                        payload: payload.clone(),
                    },
                    limit,
                ) as usize;
            }
        }
        n
    }

    /// Delivers an SPUBLISH to local shard-channel subscribers; the number reached.
    pub fn publish_shard(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let limit = self.output_limit();
        let mut n = 0;
        if let Some(m) = self.shard.read().get(channel) {
            for s in m.values() {
                n += s.send(
                    Delivery::SMessage {
                        channel: channel.clone(),
                        payload: payload.clone(),
                    },
                    limit,
                ) as usize;
            }
        }
        n
    }

    /// Active names in `space` matching `pattern` (all when `None`), for PUBSUB CHANNELS.
    pub fn names(&self, space: Space, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.table(space)
            .read()
            .keys()
            .filter(|k| pattern.is_none_or(|p| crate::glob::glob_match(p, k, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `name` in `space` (PUBSUB NUMSUB / SHARDNUMSUB).
    pub fn count(&self, space: Space, name: &[u8]) -> usize {
        self.table(space).read().get(name).map_or(0, |m| m.len())
    }

    /// Distinct patterns subscribed to (PUBSUB NUMPAT).
    pub fn pattern_count(&self) -> usize {
        self.patterns.read().len()
    }
}

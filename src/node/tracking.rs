//! CLIENT TRACKING (server-assisted client-side caching): the keys each tracking client read
//! (default mode) or the prefixes it follows (BCAST), and the invalidation messages a change
//! sends: a RESP3 `invalidate` push on the client's own connection or, with REDIRECT, to the
//! target client (a push if it speaks RESP3, a `__redis__:invalidate` `message` if it is a
//! RESP2 subscriber, nothing otherwise). Once the target is gone a RESP3 tracking client gets
//! `tracking-redir-broken` instead. Keys are tracked by name whatever their database, as in
//! Valkey.
//!
//! Must not: decide which keys a command read or changed (the dispatcher says), or touch
//! sockets (messages go through the clients' pub/sub queues).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use super::pubsub::{Delivery, Mailbox, PubSub};
use crate::resp::Reply;

/// The channel REDIRECT targets subscribe to.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// How a client tracks (CLIENT TRACKING's options).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrackingMode {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// The client that gets the messages (0: this one, in RESP3).
    pub redirect: u64,
    /// BCAST prefixes (none: every key).
    pub prefixes: Vec<Bytes>,
}

struct Tracker {
    mode: TrackingMode,
    own: Mailbox,
    /// The REDIRECT target's connection closed.
    broken: bool,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<u64, Tracker>,
    /// Default mode: who may cache each key.
    keys: HashMap<Bytes, HashSet<u64>>,
}

#[derive(Default)]
pub struct Tracking {
    clients: AtomicUsize,
    inner: Mutex<Inner>,
}

impl Tracking {
    /// Whether any client tracks (writers skip all of this when none does).
    pub fn any(&self) -> bool {
        self.clients.load(Ordering::Relaxed) > 0
    }

    pub fn enable(&self, id: u64, mode: TrackingMode, own: Mailbox) {
        let mut g = self.inner.lock();
        let tracker = Tracker {
            mode,
            own,
            broken: false,
        };
        g.clients.insert(id, tracker);
        self.clients.store(g.clients.len(), Ordering::Relaxed);
    }

    /// Stops tracking for `id` (CLIENT TRACKING OFF, RESET, a closed connection).
    pub fn disable(&self, id: u64) {
        if !self.any() {
            return;
        }
        let mut g = self.inner.lock();
        if g.clients.remove(&id).is_some() {
            g.keys.retain(|_, ids| {
                ids.remove(&id);
                !ids.is_empty()
            });
        }
        self.clients.store(g.clients.len(), Ordering::Relaxed);
    }

    /// Client `id`'s connection closed: trackers redirecting to it are broken from now on.
    pub fn closed(&self, id: u64) {
        self.disable(id);
        if !self.any() {
            return;
        }
        let mut g = self.inner.lock();
        for t in g.clients.values_mut() {
            if t.mode.redirect == id {
                t.broken = true;
            }
        }
    }

    pub fn mode(&self, id: u64) -> Option<TrackingMode> {
        self.inner.lock().clients.get(&id).map(|t| t.mode.clone())
    }

    /// Client `id` (default mode) read `keys` and may cache them. Past `max` tracked keys
    /// (0: no bound) others are invalidated to make room, as Valkey's
    /// `tracking-table-max-keys`.
    pub fn remember(&self, pubsub: &PubSub, id: u64, keys: impl Iterator<Item = Bytes>, max: u64) {
        let mut g = self.inner.lock();
        for k in keys {
            g.keys.entry(k).or_default().insert(id);
        }
        let over = (g.keys.len() as u64).saturating_sub(max) as usize;
        if max == 0 || over == 0 {
            return;
        }
        let evicted: Vec<Bytes> = g.keys.keys().take(over).cloned().collect();
        for k in evicted {
            let Some(ids) = g.keys.remove(&k) else {
                continue;
            };
            let mut ids: Vec<u64> = ids.into_iter().collect();
            ids.sort_unstable();
            for to in ids {
                Self::send(&g, pubsub, to, Some(vec![k.clone()]));
            }
        }
    }

    /// Keys remembered for default-mode clients.
    pub fn tracked_keys(&self) -> usize {
        self.inner.lock().keys.len()
    }

    /// `keys` changed, by client `writer` (0: the server, e.g. an expiry).
    pub fn invalidate(&self, pubsub: &PubSub, keys: &[Bytes], writer: u64) {
        let mut g = self.inner.lock();
        let mut out: Vec<(u64, Option<Vec<Bytes>>)> = Vec::new();
        for k in keys {
            if let Some(ids) = g.keys.remove(k) {
                let mut ids: Vec<u64> = ids.into_iter().collect();
                ids.sort_unstable();
                for id in ids {
                    let skip = id == writer && g.clients.get(&id).is_some_and(|t| t.mode.noloop);
                    if !skip {
                        out.push((id, Some(vec![k.clone()])));
                    }
                }
            }
        }
        // BCAST: one message per client and prefix with the matching keys.
        let mut ids: Vec<&u64> = g.clients.keys().collect();
        ids.sort_unstable();
        for &id in ids {
            let t = &g.clients[&id];
            if !t.mode.bcast || (id == writer && t.mode.noloop) {
                continue;
            }
            let prefixes: Vec<&[u8]> = if t.mode.prefixes.is_empty() {
                vec![b""]
            } else {
                t.mode.prefixes.iter().map(|p| &p[..]).collect()
            };
            for p in prefixes {
                // Sorted and once each, as Valkey's radix tree of pending keys gives them.
                let mut hit: Vec<Bytes> =
                    keys.iter().filter(|k| k.starts_with(p)).cloned().collect();
                hit.sort();
                hit.dedup();
                if !hit.is_empty() {
                    out.push((id, Some(hit)));
                }
            }
        }
        for (id, keys) in out {
            Self::send(&g, pubsub, id, keys);
        }
    }

    /// Every key changed (FLUSHALL, FLUSHDB): a null invalidation to every tracking client.
    pub fn flushed(&self, pubsub: &PubSub) {
        if !self.any() {
            return;
        }
        let mut g = self.inner.lock();
        g.keys.clear();
        let mut ids: Vec<u64> = g.clients.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            Self::send(&g, pubsub, id, None);
        }
    }

    fn send(g: &Inner, pubsub: &PubSub, id: u64, keys: Option<Vec<Bytes>>) {
        let Some(t) = g.clients.get(&id) else { return };
        let resp3 = |m: &Mailbox| m.handle().resp.load(Ordering::Relaxed) >= 3;
        if t.broken {
            if resp3(&t.own) {
                let redirect = i64::try_from(t.mode.redirect).unwrap_or(i64::MAX);
                let reply = Reply::Push(vec![
                    Reply::bulk_str("tracking-redir-broken"),
                    Reply::Int(redirect),
                ]);
                t.own.post(Delivery::Shaped(reply, 64), pubsub);
            }
            return;
        }
        let (to, redirected) = if t.mode.redirect == 0 {
            (t.own.clone(), false)
        } else {
            match pubsub.mailbox_of(t.mode.redirect) {
                Some(m) => (m, true),
                None => return,
            }
        };
        let size = keys
            .as_ref()
            .map_or(0, |k| k.iter().map(|k| k.len() as u64 + 8).sum());
        let payload = match keys {
            Some(k) => Reply::bulks(k),
            None => Reply::Nil,
        };
        // A RESP2 target takes the message only while it is a subscriber.
        let subscriber = || to.handle().subscriptions.lock().iter().sum::<usize>() > 0;
        let reply = if resp3(&to) {
            Reply::Push(vec![Reply::bulk_str("invalidate"), payload])
        } else if redirected && subscriber() {
            Reply::Push(vec![
                Reply::bulk_str("message"),
                Reply::Bulk(Bytes::from_static(CHANNEL)),
                payload,
            ])
        } else {
            // RESP2 without REDIRECT: nowhere to send it (as Valkey).
            return;
        };
        to.post(Delivery::Shaped(reply, size + 32), pubsub);
    }
}

//! Cluster domain types: node ids, slot sets, node records, bus messages.

use std::fmt;

use crate::storage::SLOTS;

/// A 40-character lowercase hex node id.
#[derive(Clone, Copy, Eq, PartialOrd, Ord)]
pub struct NodeId([u8; 40]);

impl PartialEq for NodeId {
    /// Ids are compared once per slot (16384 times) in every rendering and view: five word
    /// compares inline, where the derived comparison calls memcmp each time.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        let word = |b: &[u8; 40], i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        (0..5).all(|i| word(&self.0, i) == word(&other.0, i))
    }
}

impl std::hash::Hash for NodeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl NodeId {
    pub fn random() -> NodeId {
        use rand::Rng;
        let mut rng = rand::rng();
        let mut b = [0u8; 40];
        for c in b.iter_mut() {
            *c = b"0123456789abcdef"[rng.random_range(0..16)];
        }
        NodeId(b)
    }

    /// Parses a node id; case-insensitive like Valkey's lookups, stored lowercase.
    pub fn parse(s: &[u8]) -> Option<NodeId> {
        if s.len() != 40 || !s.iter().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let mut b = [0u8; 40];
        for (d, c) in b.iter_mut().zip(s) {
            *d = c.to_ascii_lowercase();
        }
        Some(NodeId(b))
    }

    pub fn as_str(&self) -> &str {
        // Only hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.as_str()[..8])
    }
}

/// A set of hash slots as a 16384-bit bitmap.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotSet(Box<[u64; SLOTS / 64]>);

impl Default for SlotSet {
    fn default() -> Self {
        SlotSet(Box::new([0; SLOTS / 64]))
    }
}

impl fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotSet({})", render_ranges(&self.ranges()))
    }
}

impl SlotSet {
    pub fn contains(&self, s: u16) -> bool {
        self.0[s as usize / 64] & (1 << (s % 64)) != 0
    }
    pub fn insert(&mut self, s: u16) {
        self.0[s as usize / 64] |= 1 << (s % 64);
    }
    pub fn remove(&mut self, s: u16) {
        self.0[s as usize / 64] &= !(1 << (s % 64));
    }
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &word)| {
            let mut w = word;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as u16;
                w &= w - 1;
                Some(i as u16 * 64 + b)
            })
        })
    }
    /// Contiguous `[start, end]` runs, ascending. Word by word: rendered for every node in
    /// each nodes.conf write and CLUSTER NODES reply, so a bit-by-bit walk showed up in the
    /// profile of a legacy reshard.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        fn push(out: &mut Vec<(u16, u16)>, a: u16, b: u16) {
            match out.last_mut() {
                Some((_, e)) if *e + 1 == a => *e = b,
                _ => out.push((a, b)),
            }
        }
        let mut out: Vec<(u16, u16)> = Vec::new();
        for (i, &word) in self.0.iter().enumerate() {
            let base = i as u16 * 64;
            let mut w = word;
            while w != 0 {
                let start = w.trailing_zeros();
                let run = (w >> start).trailing_ones();
                push(
                    &mut out,
                    base + start as u16,
                    base + (start + run - 1) as u16,
                );
                if start + run >= 64 {
                    break;
                }
                w &= !((1u64 << (start + run)) - 1);
            }
        }
        out
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
    pub fn from_bytes(b: &[u8]) -> Option<SlotSet> {
        if b.len() != SLOTS / 8 {
            return None;
        }
        let mut s = SlotSet::default();
        for (i, chunk) in b.chunks_exact(8).enumerate() {
            s.0[i] = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(s)
    }
}

/// `0-5460 5462` style rendering used by CLUSTER NODES and nodes.conf.
pub fn render_ranges(r: &[(u16, u16)]) -> String {
    let parts: Vec<String> = r
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    parts.join(" ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica,
}

/// What this node knows about one node of the cluster (itself included).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    pub id: NodeId,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    /// The TLS client port, 0 when none (TLS clients are shown and sent to this one).
    pub tls_port: u16,
    pub role: Role,
    pub primary: Option<NodeId>,
    pub config_epoch: u64,
    pub pfail: bool,
    pub fail: bool,
    pub handshake: bool,
    pub noaddr: bool,
    pub nofailover: bool,
    /// Unix ms of the ping in flight, 0 when none.
    pub ping_sent: u64,
    /// Unix ms of the last reply.
    pub pong_recv: u64,
    pub link_up: bool,
    pub repl_offset: u64,
    /// Unix ms when the node was created (handshake timeout).
    pub created: u64,
    /// Unix ms when FAIL was set.
    pub fail_time: u64,
}

impl NodeRecord {
    pub fn new(id: NodeId, ip: String, port: u16, cport: u16, now: u64) -> NodeRecord {
        NodeRecord {
            id,
            ip,
            port,
            cport,
            tls_port: 0,
            role: Role::Primary,
            primary: None,
            config_epoch: 0,
            pfail: false,
            fail: false,
            handshake: false,
            noaddr: false,
            nofailover: false,
            ping_sent: 0,
            pong_recv: 0,
            link_up: false,
            repl_offset: 0,
            created: now,
            fail_time: 0,
        }
    }

    pub fn is_primary(&self) -> bool {
        self.role == Role::Primary
    }

    /// The client port a client on TLS (`tls`) or plain TCP is told about: a TLS client gets
    /// the TLS port when the node has one, as Valkey answers per connection.
    pub fn client_port(&self, tls: bool) -> u16 {
        if tls && self.tls_port != 0 {
            self.tls_port
        } else {
            self.port
        }
    }
}

/// Bit flags carried in bus headers and gossip entries.
pub mod flag {
    pub const PRIMARY: u32 = 1;
    pub const REPLICA: u32 = 2;
    pub const PFAIL: u32 = 4;
    pub const FAIL: u32 = 8;
    pub const HANDSHAKE: u32 = 16;
    pub const NOADDR: u32 = 32;
    pub const NOFAILOVER: u32 = 64;
}

/// The sender's description of itself in every bus message.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub sender: NodeId,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub role: Role,
    pub primary: Option<NodeId>,
    pub slots: SlotSet,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub tls_port: u16,
    pub repl_offset: u64,
    pub flags: u32,
}

/// What the sender knows about another node.
#[derive(Debug, Clone, PartialEq)]
pub struct Gossip {
    pub id: NodeId,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u32,
    pub pong_recv: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Ping,
    Meet,
    Pong,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: MessageKind,
    pub header: Header,
    pub gossip: Vec<Gossip>,
    /// The address the sender used to reach the receiver (how a node learns its own IP).
    pub target_ip: String,
    /// Newer owners of slots the receiver still claims (Valkey's UPDATE message, carried in
    /// the next message to a node seen with stale claims).
    pub updates: Vec<SlotUpdate>,
}

/// A primary's current slot ownership, sent to a node that claims some of them with an older
/// config epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotUpdate {
    pub id: NodeId,
    pub config_epoch: u64,
    pub slots: SlotSet,
}

/// A replica's request for a failover vote (Valkey's FAILOVER_AUTH_REQUEST).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthRequest {
    pub sender: NodeId,
    /// The election epoch: the sender's current epoch when it asked.
    pub epoch: u64,
    /// The primary being replaced.
    pub primary: NodeId,
    /// That primary's config epoch as the sender knows it.
    pub config_epoch: u64,
    /// The slots the sender will claim (its primary's).
    pub slots: SlotSet,
    /// A manual failover (CLUSTER FAILOVER): voters grant although the primary is not FAIL.
    pub manual: bool,
}

/// A primary's answer to an [`AuthRequest`] (a granted one is Valkey's FAILOVER_AUTH_ACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthReply {
    pub voter: NodeId,
    pub granted: bool,
    /// The voter's current epoch after handling the request.
    pub epoch: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The bit-by-bit definition the word-wise `iter` and `ranges` must match.
    fn naive(s: &SlotSet) -> (Vec<u16>, Vec<(u16, u16)>) {
        let slots: Vec<u16> = (0..SLOTS as u16).filter(|x| s.contains(*x)).collect();
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        for &x in &slots {
            match ranges.last_mut() {
                Some((_, e)) if *e + 1 == x => *e = x,
                _ => ranges.push((x, x)),
            }
        }
        (slots, ranges)
    }

    #[test]
    fn word_wise_iter_and_ranges_match_the_bitwise_definition() {
        let mut sets = vec![SlotSet::default()];
        let mut full = SlotSet::default();
        (0..SLOTS as u16).for_each(|x| full.insert(x));
        sets.push(full);
        // Runs ending and starting on word boundaries, and single slots at both ends.
        for (a, b) in [
            (0, 63),
            (63, 64),
            (64, 127),
            (5461, 10922),
            (16383, 16383),
            (0, 0),
        ] {
            let mut s = SlotSet::default();
            (a..=b).for_each(|x| s.insert(x));
            sets.push(s);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for density in [1u32, 10, 50, 90, 99] {
            for _ in 0..20 {
                let mut s = SlotSet::default();
                for x in 0..SLOTS as u16 {
                    if rng.random_range(0..100) < density {
                        s.insert(x);
                    }
                }
                sets.push(s);
            }
        }
        for s in &sets {
            let (slots, ranges) = naive(s);
            assert_eq!(s.iter().collect::<Vec<_>>(), slots);
            assert_eq!(s.ranges(), ranges);
        }
    }
}

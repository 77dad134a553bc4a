//! Cluster domain types: node ids, slot sets, node records, bus messages.

use std::fmt;

use crate::storage::SLOTS;

/// A 40-character lowercase hex node id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; 40]);

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
        (0..SLOTS as u16).filter(move |s| self.contains(*s))
    }
    /// Contiguous `[start, end]` runs, ascending.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for s in self.iter() {
            match out.last_mut() {
                Some((_, e)) if *e + 1 == s => *e = s,
                _ => out.push((s, s)),
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

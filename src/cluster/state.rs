//! The cluster state machine: slot ownership, node table, epochs, handshakes, failure
//! detection. Pure: every method takes the current time and returns what to send; nothing here
//! does I/O, so the rules of the Valkey cluster specification get plain unit tests.

use std::collections::{BTreeMap, BTreeSet};

use super::failover::Failover;
use super::types::{
    flag, AuthRequest, Gossip, Header, Message, MessageKind, NodeId, NodeRecord, Role, SlotSet,
    SlotUpdate,
};

mod admin;

/// How long a FORGET keeps a node from being re-added by gossip (Valkey: 60 s).
pub const FORGET_BAN_MS: u64 = 60_000;
/// How long a restarted primary stays not ok, so the cluster can tell it that it was failed
/// over before it accepts writes again (Valkey's CLUSTER_WRITABLE_DELAY).
pub const WRITABLE_DELAY_MS: u64 = 2_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    #[error("ERR Invalid or out of range slot")]
    InvalidSlot,
    #[error("ERR Slot {0} is already busy")]
    SlotBusy(u16),
    #[error("ERR Slot {0} is already unassigned")]
    SlotUnassigned(u16),
    #[error("ERR Slot {0} specified multiple times")]
    SlotRepeated(u16),
    #[error("ERR Unknown node {0}")]
    UnknownNode(String),
    #[error("ERR I don't know about node {0}")]
    DontKnowNode(String),
    #[error("ERR Can't replicate myself")]
    ReplicateSelf,
    #[error("ERR I can only replicate a master, not a replica.")]
    ReplicateReplica,
    #[error("ERR To set a master the node must be empty and without assigned slots.")]
    NotEmpty,
    #[error("ERR I tried hard but I can't forget myself...")]
    ForgetSelf,
    #[error("ERR Can't forget my master!")]
    ForgetPrimary,
    #[error(
        "ERR The user can assign a config epoch only when the node does not know any other node."
    )]
    EpochKnowsOthers,
    #[error("ERR Node config epoch is already non-zero")]
    EpochNonZero,
    #[error("ERR Please use SETSLOT only with masters.")]
    SetSlotOnReplica,
    #[error("ERR I'm not the owner of hash slot {0}")]
    NotOwner(u16),
    #[error("ERR I'm already the owner of hash slot {0}")]
    AlreadyOwner(u16),
    #[error("ERR Target node is not a master")]
    TargetNotPrimary,
    #[error("ERR Can't assign hashslot {0} to a different node while I still hold keys for this hash slot.")]
    SlotHasKeys(u16),
    #[error("ERR Invalid node address specified: {0}")]
    InvalidAddress(String),
    #[error("ERR You should send CLUSTER FAILOVER to a replica")]
    FailoverOnPrimary,
    #[error("ERR I'm a replica but my master is unknown to me")]
    PrimaryUnknown,
    #[error("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE")]
    PrimaryDown,
}

/// A message the bus must send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Ping(NodeId),
    Meet(NodeId),
    Fail {
        to: NodeId,
        failing: NodeId,
    },
    /// Ask a primary for its vote; a granted reply goes to [`ClusterState::on_auth_ack`].
    AuthRequest {
        to: NodeId,
        req: AuthRequest,
    },
    /// Ask our primary to pause writes for a manual failover; its reply (its replication
    /// offset) goes to [`ClusterState::on_manual_failover_offset`].
    ManualFailoverStart {
        to: NodeId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SetSlot {
    Migrating(NodeId),
    Importing(NodeId),
    Stable,
    Node(NodeId),
}

#[derive(Debug, Clone)]
pub struct ClusterState {
    pub myself: NodeId,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    pub nodes: BTreeMap<NodeId, NodeRecord>,
    pub slots: super::slot_table::SlotTable,
    pub migrating: BTreeMap<u16, NodeId>,
    pub importing: BTreeMap<u16, NodeId>,
    pub forgotten: BTreeMap<NodeId, u64>,
    /// failing node → reporting primary → unix ms of the report.
    pub fail_reports: BTreeMap<NodeId, BTreeMap<NodeId, u64>>,
    /// Node seen claiming slots it lost → the newer owners to tell it about.
    pub stale_claims: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// Unix ms before which this primary does not turn ok ([`WRITABLE_DELAY_MS`]); 0 = none.
    pub writable_after: u64,
    pub node_timeout: u64,
    pub require_full_coverage: bool,
    /// `cluster-replica-validity-factor`: 0 = a replica's data is never too old to fail over.
    pub replica_validity_factor: u64,
    /// `cluster-replica-no-failover`: this replica never starts an automatic failover.
    pub replica_no_failover: bool,
    /// `cluster-migration-barrier`: working replicas a primary keeps before one migrates.
    pub migration_barrier: u32,
    /// `cluster-allow-replica-migration`.
    pub allow_replica_migration: bool,
    /// `replica-ack-before-reply`: writes are acknowledged once a replica holds them, so an
    /// election must not pick a replica missing some (see `sibling_may_hold_more`).
    pub sync_replication: bool,
    /// Elections, votes, manual failover and replica migration bookkeeping.
    pub failover: Failover,
    pub ok: bool,
    /// Set when something that nodes.conf records changed.
    pub dirty: bool,
}

impl ClusterState {
    pub fn new(myself: NodeId, ip: String, port: u16, cport: u16, now: u64) -> ClusterState {
        let mut nodes = BTreeMap::new();
        let mut me = NodeRecord::new(myself, ip, port, cport, now);
        me.link_up = true;
        nodes.insert(myself, me);
        ClusterState {
            myself,
            current_epoch: 0,
            last_vote_epoch: 0,
            nodes,
            slots: Default::default(),
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            forgotten: BTreeMap::new(),
            fail_reports: BTreeMap::new(),
            stale_claims: BTreeMap::new(),
            writable_after: 0,
            node_timeout: 15_000,
            require_full_coverage: true,
            replica_validity_factor: 10,
            replica_no_failover: false,
            migration_barrier: 1,
            allow_replica_migration: true,
            sync_replication: false,
            failover: Failover::new(),
            ok: false,
            dirty: true,
        }
    }

    pub fn me(&self) -> &NodeRecord {
        &self.nodes[&self.myself]
    }

    pub(super) fn me_mut(&mut self) -> &mut NodeRecord {
        self.nodes
            .get_mut(&self.myself)
            .expect("myself is always in the node table")
    }

    /// Slots owned by `id`.
    pub fn slots_of(&self, id: &NodeId) -> SlotSet {
        self.slots.slots_of(id)
    }

    /// A node's config epoch as shown to clients: a replica shows its primary's.
    pub fn shown_epoch(&self, n: &NodeRecord) -> u64 {
        match (n.role, n.primary.and_then(|p| self.nodes.get(&p))) {
            (Role::Replica, Some(p)) => p.config_epoch,
            _ => n.config_epoch,
        }
    }

    /// Finds a node by id (exact, case-insensitive).
    pub fn lookup(&self, id: &[u8]) -> Option<NodeId> {
        NodeId::parse(id).filter(|n| self.nodes.contains_key(n))
    }

    pub(super) fn changed(&mut self) {
        self.dirty = true;
        self.update_health();
    }

    // ---- bus ----------------------------------------------------------------------------

    /// The header describing this node.
    pub fn header(&self) -> Header {
        let me = self.me();
        let mut flags = if me.is_primary() {
            flag::PRIMARY
        } else {
            flag::REPLICA
        };
        if me.nofailover {
            flags |= flag::NOFAILOVER;
        }
        let slots = match (me.role, me.primary) {
            (Role::Replica, Some(p)) => self.slots_of(&p),
            _ => self.slots_of(&self.myself),
        };
        Header {
            sender: self.myself,
            current_epoch: self.current_epoch,
            config_epoch: me.config_epoch,
            role: me.role,
            primary: me.primary,
            slots,
            ip: me.ip.clone(),
            port: me.port,
            cport: me.cport,
            tls_port: me.tls_port,
            repl_offset: me.repl_offset,
            flags,
        }
    }

    /// A message of `kind` for `to`, with gossip about the other nodes.
    pub fn message(&self, kind: MessageKind, to: &NodeId) -> Message {
        let target_ip = self.nodes.get(to).map(|n| n.ip.clone()).unwrap_or_default();
        let gossip = self
            .nodes
            .values()
            .filter(|n| n.id != self.myself && n.id != *to && !n.handshake && !n.noaddr)
            .map(|n| Gossip {
                id: n.id,
                ip: n.ip.clone(),
                port: n.port,
                cport: n.cport,
                flags: node_flags(n),
                pong_recv: n.pong_recv,
            })
            .collect();
        let updates = self
            .stale_claims
            .get(to)
            .into_iter()
            .flatten()
            .filter_map(|o| self.nodes.get(o))
            .filter(|o| o.is_primary())
            .map(|o| SlotUpdate {
                id: o.id,
                config_epoch: o.config_epoch,
                slots: self.slots_of(&o.id),
            })
            .collect();
        Message {
            kind,
            header: self.header(),
            gossip,
            target_ip,
            updates,
        }
    }

    /// Handles a PING or MEET; the caller replies with `message(Pong, sender)`.
    /// `observed_ip` is the peer address the request came from.
    pub fn on_request(&mut self, msg: &Message, observed_ip: &str, now: u64) {
        if self.me().ip.is_empty() && !msg.target_ip.is_empty() {
            self.me_mut().ip = msg.target_ip.clone();
            self.dirty = true;
        }
        let sender = msg.header.sender;
        if !self.nodes.contains_key(&sender) {
            if msg.kind != MessageKind::Meet || sender == self.myself {
                return;
            }
            let ip = if msg.header.ip.is_empty() {
                observed_ip.to_string()
            } else {
                msg.header.ip.clone()
            };
            let mut n = NodeRecord::new(sender, ip, msg.header.port, msg.header.cport, now);
            n.tls_port = msg.header.tls_port;
            self.nodes.insert(sender, n);
            self.forgotten.remove(&sender);
            self.dirty = true;
        }
        self.process(msg, observed_ip, now);
    }

    /// Handles the PONG answering our PING/MEET to `target` (possibly a handshake id).
    pub fn on_reply(&mut self, target: NodeId, msg: &Message, now: u64) {
        let sender = msg.header.sender;
        if sender == self.myself {
            // We met ourselves through another address.
            self.nodes.remove(&target);
            return;
        }
        let Some(t) = self.nodes.get(&target).cloned() else {
            return;
        };
        if t.handshake {
            self.nodes.remove(&target);
            if self.forgotten.contains_key(&sender) {
                return;
            }
            self.nodes.entry(sender).or_insert_with(|| {
                let mut n =
                    NodeRecord::new(sender, t.ip.clone(), msg.header.port, msg.header.cport, now);
                n.tls_port = msg.header.tls_port;
                n.created = t.created;
                n
            });
            self.dirty = true;
        } else if target != sender {
            // The address now answers with another id: the node was replaced.
            if let Some(n) = self.nodes.get_mut(&target) {
                n.noaddr = true;
                n.link_up = false;
            }
            return;
        }
        let ip = self
            .nodes
            .get(&sender)
            .map(|n| n.ip.clone())
            .unwrap_or_default();
        self.process(msg, &ip, now);
    }

    /// Records that a message to `target` could not be delivered.
    pub fn on_link_error(&mut self, target: NodeId) {
        if let Some(n) = self.nodes.get_mut(&target) {
            n.link_up = false;
        }
    }

    /// Handles a FAIL broadcast from a known node.
    pub fn on_fail(&mut self, sender: NodeId, failing: NodeId, now: u64) {
        if !self.nodes.contains_key(&sender) || failing == self.myself {
            return;
        }
        if let Some(n) = self.nodes.get_mut(&failing) {
            if !n.fail {
                n.fail = true;
                n.pfail = false;
                n.fail_time = now;
                self.changed();
            }
        }
    }

    fn process(&mut self, msg: &Message, observed_ip: &str, now: u64) {
        let h = &msg.header;
        let sender = h.sender;
        if h.current_epoch > self.current_epoch {
            self.current_epoch = h.current_epoch;
            self.dirty = true;
        }
        let node_timeout = self.node_timeout;
        {
            let Some(n) = self.nodes.get_mut(&sender) else {
                return;
            };
            n.pong_recv = now;
            n.ping_sent = 0;
            n.link_up = true;
            n.noaddr = false;
            if n.pfail {
                n.pfail = false;
            }
            let ip = if h.ip.is_empty() { observed_ip } else { &h.ip };
            if !ip.is_empty()
                && (n.ip != ip
                    || n.port != h.port
                    || n.cport != h.cport
                    || n.tls_port != h.tls_port)
            {
                n.ip = ip.to_string();
                n.port = h.port;
                n.cport = h.cport;
                n.tls_port = h.tls_port;
                self.dirty = true;
            }
            if n.role != h.role || n.primary != h.primary {
                if n.role == Role::Replica && h.role == Role::Primary {
                    // A promoted replica: like Valkey, it may receive a migrating replica.
                    self.failover.migrate_to.insert(sender);
                }
                n.role = h.role;
                n.primary = h.primary;
                self.dirty = true;
            }
            n.nofailover = h.flags & flag::NOFAILOVER != 0;
            n.repl_offset = h.repl_offset;
            if n.config_epoch != h.config_epoch {
                n.config_epoch = h.config_epoch;
                self.dirty = true;
            }
            // A failed node that answers again is cleared when it serves no slots, or when
            // enough time passed without its slots being taken over.
            if n.fail
                && (h.role == Role::Replica
                    || h.slots.is_empty()
                    || now.saturating_sub(n.fail_time) > 2 * node_timeout)
            {
                n.fail = false;
                self.dirty = true;
            }
        }
        self.note_primary_offset(sender, h.repl_offset);
        if h.role == Role::Primary {
            self.claim_slots(sender, h.config_epoch, &h.slots);
            self.note_stale_claims(sender, h);
        } else {
            self.stale_claims.remove(&sender);
        }
        for u in &msg.updates {
            self.apply_update(u);
        }
        self.resolve_epoch_collision(sender, h);
        if self.nodes.get(&sender).is_some_and(|n| !n.handshake) {
            self.process_gossip(sender, &msg.gossip, now);
        }
        self.update_health();
    }

    /// Applies a primary's slot claims: a claim wins over no owner or an owner with a smaller
    /// config epoch. When the shard this node belongs to (itself as a primary, or its primary)
    /// loses its last slot this way, the node follows the claimant, as Valkey's
    /// `clusterUpdateSlotsConfigWith` does: that is how a returning old primary and the other
    /// replicas of a failed-over primary find the winner.
    fn claim_slots(&mut self, sender: NodeId, config_epoch: u64, claimed: &SlotSet) {
        let me = self.myself;
        let shard = if self.me().is_primary() {
            Some(me)
        } else {
            self.me().primary
        };
        let mut changed = false;
        let mut migrated = 0usize;
        for s in claimed.iter() {
            let cur = self.slots[s as usize];
            if cur == Some(sender) || self.importing.contains_key(&s) {
                continue;
            }
            let wins = match cur {
                None => true,
                Some(o) => self
                    .nodes
                    .get(&o)
                    .is_none_or(|o| o.config_epoch < config_epoch),
            };
            if wins {
                if cur == Some(me) {
                    self.migrating.remove(&s);
                }
                if cur.is_some() && cur == shard {
                    migrated += 1;
                }
                self.slots.set(s as usize, Some(sender));
                changed = true;
            }
        }
        if let Some(shard) = shard.filter(|_| migrated > 0) {
            // Without replica migration allowed, only a claimant that took exactly our slots
            // (a failover, not a resharding) is followed.
            if !self.slots.contains(&Some(shard))
                && (self.allow_replica_migration || claimed.count() == migrated)
            {
                self.follow(sender);
            }
        }
        if changed {
            self.dirty = true;
        }
    }

    /// Remembers the owners, newer than `sender`'s config epoch, of slots `sender` still
    /// claims: the next message to it carries them (Valkey sends an UPDATE), so a primary back
    /// from a partition or a restart learns at once that it was failed over.
    fn note_stale_claims(&mut self, sender: NodeId, h: &Header) {
        let mut owners = BTreeSet::new();
        let mut last = None;
        for s in h.slots.iter() {
            let Some(o) = self.slots[s as usize] else {
                continue;
            };
            if o == sender || o == self.myself || last == Some(o) {
                continue;
            }
            last = Some(o);
            if self
                .nodes
                .get(&o)
                .is_some_and(|n| n.config_epoch > h.config_epoch)
            {
                owners.insert(o);
            }
        }
        if owners.is_empty() {
            self.stale_claims.remove(&sender);
        } else {
            self.stale_claims.insert(sender, owners);
        }
    }

    /// Applies an UPDATE: `u.id` owns `u.slots` under `u.config_epoch`.
    fn apply_update(&mut self, u: &SlotUpdate) {
        if u.id == self.myself {
            return;
        }
        let Some(n) = self.nodes.get_mut(&u.id) else {
            return;
        };
        if n.config_epoch >= u.config_epoch {
            return;
        }
        n.role = Role::Primary;
        n.primary = None;
        n.config_epoch = u.config_epoch;
        self.dirty = true;
        self.claim_slots(u.id, u.config_epoch, &u.slots);
    }

    /// Two primaries with one config epoch: the one with the smaller id takes a new epoch.
    fn resolve_epoch_collision(&mut self, sender: NodeId, h: &Header) {
        let me = self.me();
        if h.role != Role::Primary || !me.is_primary() || h.config_epoch != me.config_epoch {
            return;
        }
        if sender <= self.myself {
            return;
        }
        self.current_epoch += 1;
        let e = self.current_epoch;
        self.me_mut().config_epoch = e;
        self.dirty = true;
    }

    fn process_gossip(&mut self, sender: NodeId, gossip: &[Gossip], now: u64) {
        let sender_is_primary = self.nodes.get(&sender).is_some_and(|n| n.is_primary());
        for g in gossip {
            if g.id == self.myself {
                continue;
            }
            if self.nodes.contains_key(&g.id) {
                if sender_is_primary {
                    let reports = self.fail_reports.entry(g.id).or_default();
                    if g.flags & (flag::PFAIL | flag::FAIL) != 0 {
                        reports.insert(sender, now);
                    } else {
                        reports.remove(&sender);
                    }
                }
                self.check_fail(g.id, now);
            } else if !self.forgotten.contains_key(&g.id)
                && g.flags & (flag::NOADDR | flag::HANDSHAKE) == 0
                && !g.ip.is_empty()
            {
                let _ = self.meet(&g.ip, g.port, g.cport, now);
            }
        }
    }

    /// Primaries that serve at least one slot.
    pub(super) fn serving_primaries(&self) -> Vec<NodeId> {
        self.owners().0
    }

    /// The distinct slot owners (sorted) and whether every slot has one.
    fn owners(&self) -> (Vec<NodeId>, bool) {
        self.slots.owners()
    }

    pub(super) fn quorum(&self) -> usize {
        self.serving_primaries().len() / 2 + 1
    }

    /// PFAIL → FAIL when a majority of serving primaries (this one included) report it.
    fn check_fail(&mut self, id: NodeId, now: u64) {
        let Some(n) = self.nodes.get(&id) else { return };
        if !n.pfail || n.fail {
            return;
        }
        let validity = self.node_timeout * 2;
        let mut reports = self
            .fail_reports
            .get(&id)
            .map(|r| {
                r.values()
                    .filter(|t| now.saturating_sub(**t) <= validity)
                    .count()
            })
            .unwrap_or(0);
        if self.me().is_primary() {
            reports += 1;
        }
        if reports >= self.quorum() {
            if let Some(n) = self.nodes.get_mut(&id) {
                n.fail = true;
                n.pfail = false;
                n.fail_time = now;
            }
            self.changed();
        }
    }

    /// Periodic work: who to ping, PFAIL timeouts, handshake expiry, FAIL broadcasts.
    pub fn tick(&mut self, now: u64) -> Vec<Outgoing> {
        let interval = (self.node_timeout / 4).clamp(100, 1000);
        let handshake_timeout = self.node_timeout.max(1000);
        if self.writable_after != 0 && now >= self.writable_after {
            self.writable_after = 0;
        }
        self.forgotten.retain(|_, until| *until > now);
        let expired: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.handshake && now.saturating_sub(n.created) > handshake_timeout)
            .map(|n| n.id)
            .collect();
        for id in expired {
            self.nodes.remove(&id);
        }
        let mut out = Vec::new();
        let mut newly_pfail = Vec::new();
        for n in self.nodes.values_mut() {
            if n.id == self.myself {
                continue;
            }
            let waiting = if n.ping_sent != 0 {
                now.saturating_sub(n.ping_sent)
            } else {
                0
            };
            let silent = now.saturating_sub(n.pong_recv.max(n.created));
            if !n.handshake
                && !n.pfail
                && (waiting > self.node_timeout || silent > self.node_timeout)
            {
                n.pfail = true;
                newly_pfail.push(n.id);
            }
            // A node with stale slot claims is told about the new owners right away.
            let due = if self.stale_claims.contains_key(&n.id) {
                interval.min(200)
            } else {
                interval
            };
            if n.ping_sent == 0 && now.saturating_sub(n.pong_recv) >= due {
                n.ping_sent = now;
                out.push(if n.handshake {
                    Outgoing::Meet(n.id)
                } else {
                    Outgoing::Ping(n.id)
                });
            } else if n.ping_sent != 0
                && waiting
                    > if n.link_up {
                        self.node_timeout.max(interval * 2)
                    } else {
                        interval
                    }
            {
                // The reply never came: try again rather than wait forever. A link known to
                // be broken is retried sooner (Valkey reconnects every cron run), so a healed
                // partition is noticed within a second instead of a node timeout.
                n.ping_sent = now;
                out.push(if n.handshake {
                    Outgoing::Meet(n.id)
                } else {
                    Outgoing::Ping(n.id)
                });
            }
        }
        let was_failed: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.fail)
            .map(|n| n.id)
            .collect();
        for id in newly_pfail {
            self.check_fail(id, now);
        }
        for failing in self
            .nodes
            .values()
            .filter(|n| n.fail && !was_failed.contains(&n.id))
            .map(|n| n.id)
            .collect::<Vec<_>>()
        {
            for to in self
                .nodes
                .keys()
                .filter(|k| **k != self.myself && **k != failing)
            {
                out.push(Outgoing::Fail { to: *to, failing });
            }
        }
        self.failover_tick(now, &mut out);
        self.update_health();
        out
    }

    /// Recomputes `ok`: every slot served (when full coverage is required) by a primary not
    /// FAILed, and this node not cut off from the majority of serving primaries.
    pub fn update_health(&mut self) {
        let mut ok = true;
        // One pass over the slots (a 650 KB table walked on every message): the owners, and
        // whether every slot has one.
        let (serving, covered) = self.owners();
        if self.require_full_coverage {
            ok = covered
                && serving
                    .iter()
                    .all(|id| self.nodes.get(id).is_some_and(|n| !n.fail));
        }
        if ok && !serving.is_empty() {
            let reachable = serving
                .iter()
                .filter(|id| {
                    **id == self.myself || self.nodes.get(id).is_some_and(|n| !n.pfail && !n.fail)
                })
                .count();
            if reachable < serving.len() / 2 + 1 {
                ok = false;
            }
        }
        if self.writable_after != 0 && self.me().is_primary() {
            ok = false;
        }
        self.ok = ok;
    }
}

pub fn node_flags(n: &NodeRecord) -> u32 {
    let mut f = if n.is_primary() {
        flag::PRIMARY
    } else {
        flag::REPLICA
    };
    if n.pfail {
        f |= flag::PFAIL;
    }
    if n.fail {
        f |= flag::FAIL;
    }
    if n.handshake {
        f |= flag::HANDSHAKE;
    }
    if n.noaddr {
        f |= flag::NOADDR;
    }
    if n.nofailover {
        f |= flag::NOFAILOVER;
    }
    f
}

#[cfg(test)]
mod tests;

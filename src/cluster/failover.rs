//! Failover, as in the Valkey cluster specification: replica elections (rank delay by
//! replication offset, one vote per primary per epoch, a majority of serving primaries wins),
//! manual failover (`CLUSTER FAILOVER [FORCE|TAKEOVER]`) and replica migration to orphaned
//! primaries.
//!
//! Owns: [`Failover`] (the bookkeeping kept in [`ClusterState`]) and the `impl ClusterState`
//! methods that drive it. Pure like the rest of the state machine: time comes in as `now`,
//! messages go out as [`Outgoing`]; the bus task does the sending.
//! Must not: touch replication or the keyspace. The replication module reports offsets through
//! [`ClusterState::set_repl_offset`] and learns the outcome from the role in the view.

use std::collections::{BTreeMap, BTreeSet};

use super::state::{ClusterError, ClusterState, Outgoing};
use super::types::{AuthRequest, NodeId, Role};

/// Valkey's `repl-ping-replica-period` default, part of the data-age limit.
pub const REPL_PING_PERIOD_MS: u64 = 10_000;
/// How long a primary stays orphaned before a replica migrates to it (Valkey's
/// CLUSTER_REPLICA_MIGRATION_DELAY), so a replica that only restarts is not replaced.
pub const MIGRATION_DELAY_MS: u64 = 5_000;
/// Node timeouts a synchronous-mode replica waits for a sibling holding more to win before it
/// runs anyway.
const SYNC_HOLD_LIMIT: u64 = 10;
/// Votes are awaited at least this long, however small the node timeout.
const MIN_AUTH_TIMEOUT_MS: u64 = 2_000;

/// How CLUSTER FAILOVER was asked to proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverMode {
    /// Pause the primary, catch up with its offset, then an election it also votes in.
    Default,
    /// An election right away, without the primary's agreement or the catch-up.
    Force,
    /// No election: a new config epoch taken unilaterally.
    Takeover,
}

/// A replica's election.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Election {
    /// Unix ms when the vote request goes (or went) out; 0 when none is scheduled.
    pub auth_time: u64,
    pub sent: bool,
    /// The rank the delay was computed with.
    pub rank: usize,
    /// The epoch the votes are asked for.
    pub epoch: u64,
    /// Primaries that granted their vote for `epoch`.
    pub votes: BTreeSet<NodeId>,
    /// Unix ms when this election was scheduled: sibling offsets heard after it are current
    /// (the failed primary's stream has stopped).
    pub scheduled: u64,
    /// The synchronous-mode hold was logged.
    pub held_back: bool,
}

/// A replica's manual failover in progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManualFailover {
    /// Unix ms after which it is abandoned.
    pub end: u64,
    /// The paused primary's replication offset, once it answered.
    pub primary_offset: Option<u64>,
    /// Caught up (or FORCE): the election may start.
    pub can_start: bool,
}

/// Failover bookkeeping. Nothing here is persisted except through `last_vote_epoch` and the
/// config epochs, which live in [`ClusterState`] and nodes.conf.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Failover {
    pub election: Election,
    pub manual: Option<ManualFailover>,
    /// Primary side of a manual failover: client writes are refused until then (unix ms).
    pub paused_until: u64,
    /// Primary → unix ms when this node last voted for one of its replicas.
    pub voted_time: BTreeMap<NodeId, u64>,
    /// Unix ms of the replication module's last offset report.
    pub repl_seen: u64,
    /// Primaries seen with replicas, or promoted from replica: the only migration targets,
    /// so a primary deliberately run without replicas never attracts one.
    pub migrate_to: BTreeSet<NodeId>,
    /// Orphaned primary → unix ms since when.
    pub orphaned_since: BTreeMap<NodeId, u64>,
    /// xorshift state for the random part of the election delay (tests may set it).
    pub rng: u64,
    /// Fault injection (DEBUG FAILOVER-DELAY): added to every automatic election's delay, so
    /// a test can let another replica run first.
    pub extra_delay_ms: u64,
    /// Unix ms since when a synchronous-mode election has been held back for a sibling.
    pub held_since: Option<u64>,
}

impl Failover {
    pub fn new() -> Failover {
        Failover {
            rng: rand::random::<u64>() | 1,
            ..Failover::default()
        }
    }

    /// Drops what is known about a forgotten node.
    pub fn forget(&mut self, id: &NodeId) {
        self.voted_time.remove(id);
        self.migrate_to.remove(id);
        self.orphaned_since.remove(id);
        self.election.votes.remove(id);
    }

    fn random(&mut self, below: u64) -> u64 {
        let mut x = if self.rng == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            self.rng
        };
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x % below.max(1)
    }
}

impl ClusterState {
    // ---- hooks for the replication module ---------------------------------------------

    /// `cluster-replica-no-failover`: this replica never starts an automatic failover, and says
    /// so with the `nofailover` flag (gossip, CLUSTER NODES), as Valkey does, so siblings do not
    /// wait for it.
    pub fn set_no_failover(&mut self, on: bool) {
        self.replica_no_failover = on;
        if self.me().nofailover != on {
            self.me_mut().nofailover = on;
            self.dirty = true;
        }
    }

    /// Records this node's replication offset: on a replica the applied offset, on a primary
    /// the offset of its stream. Carried in every header (replica ranking) and used by manual
    /// failover; each report also counts as contact with the primary for the data-age check.
    pub fn set_repl_offset(&mut self, offset: u64, now: u64) {
        self.me_mut().repl_offset = offset;
        self.failover.repl_seen = now;
    }

    /// The end of a manual failover's write pause, while this primary is in one.
    pub fn writes_paused_until(&self, now: u64) -> Option<u64> {
        let until = self.failover.paused_until;
        (until > now && self.me().is_primary()).then_some(until)
    }

    // ---- helpers ----------------------------------------------------------------------

    fn slot_count(&self, id: &NodeId) -> usize {
        self.slots.count_of(id)
    }

    /// How long a replica waits for votes (Valkey: twice the node timeout, at least 2 s).
    pub fn auth_timeout(&self) -> u64 {
        (2 * self.node_timeout).max(MIN_AUTH_TIMEOUT_MS)
    }

    /// This replica's rank: how many replicas of the same primary that may fail over have a
    /// greater replication offset. Rank 0 asks for votes first.
    pub fn replica_rank(&self) -> usize {
        let me = self.me();
        let Some(p) = me.primary else { return 0 };
        self.nodes
            .values()
            .filter(|n| {
                n.id != self.myself
                    && n.role == Role::Replica
                    && n.primary == Some(p)
                    && !n.nofailover
                    && n.repl_offset > me.repl_offset
            })
            .count()
    }

    /// Whether this replica's data is recent enough to replace its primary: the last contact
    /// (bus reply or replication progress), less the node timeout it took to detect the
    /// failure, within `validity factor × node timeout + replication ping period`.
    fn data_is_fresh(&self, now: u64) -> bool {
        if self.replica_validity_factor == 0 {
            return true;
        }
        let Some(p) = self.me().primary.and_then(|p| self.nodes.get(&p)) else {
            return false;
        };
        let last = p.pong_recv.max(self.failover.repl_seen);
        let mut age = now.saturating_sub(last);
        if age > self.node_timeout {
            age -= self.node_timeout;
        }
        age <= REPL_PING_PERIOD_MS + self.node_timeout * self.replica_validity_factor
    }

    /// Synchronous mode (`replica-ack-before-reply`): a write was acknowledged once one replica
    /// held it, so only a replica at least as far as every sibling may win, or acknowledged
    /// writes would be lost. A sibling counts once it answered a ping sent after the election
    /// was scheduled (its offset no longer moves: the primary failed); one flagged failing
    /// cannot be asked and does not count, nor one that never fails over
    /// (`cluster-replica-no-failover`). Returns why this replica must wait, if it must.
    fn sibling_may_hold_more(&self) -> Option<String> {
        let me = self.me();
        let primary = me.primary?;
        let since = self.failover.election.scheduled;
        for n in self.nodes.values() {
            if n.id == self.myself
                || n.role != Role::Replica
                || n.primary != Some(primary)
                || n.nofailover
                || n.pfail
                || n.fail
                || n.handshake
            {
                continue;
            }
            if n.pong_recv < since {
                return Some(format!("waiting for replica {}'s current offset", n.id));
            }
            if n.repl_offset > me.repl_offset {
                return Some(format!(
                    "replica {} holds offset {} beyond ours ({})",
                    n.id, n.repl_offset, me.repl_offset
                ));
            }
        }
        None
    }

    /// Makes this node a replica of `primary`, abandoning any election or manual failover.
    pub(super) fn follow(&mut self, primary: NodeId) {
        let me = self.me_mut();
        me.role = Role::Replica;
        me.primary = Some(primary);
        self.failover.election = Election::default();
        self.failover.held_since = None;
        self.failover.manual = None;
        self.failover.paused_until = 0;
        self.migrating.clear();
        self.importing.clear();
        self.dirty = true;
    }

    /// While a manual failover waits for the paused primary, any later header from it may
    /// carry a greater offset (writes that were committing when the pause began).
    pub(super) fn note_primary_offset(&mut self, sender: NodeId, offset: u64) {
        if self.me().primary != Some(sender) {
            return;
        }
        if let Some(m) = self.failover.manual.as_mut() {
            if let Some(o) = m.primary_offset.as_mut() {
                *o = (*o).max(offset);
            }
        }
    }

    /// The winner's last step: take every slot of the old primary under `epoch`, become a
    /// primary, and tell everyone at once.
    fn replace_primary(&mut self, epoch: u64, now: u64, out: &mut Vec<Outgoing>) {
        let Some(old) = self.me().primary else { return };
        let me = self.myself;
        self.slots.reassign(old, Some(me));
        {
            let m = self.me_mut();
            m.role = Role::Primary;
            m.primary = None;
            if m.config_epoch < epoch {
                m.config_epoch = epoch;
            }
        }
        self.current_epoch = self.current_epoch.max(epoch);
        self.failover.election = Election::default();
        self.failover.held_since = None;
        self.failover.manual = None;
        self.failover.paused_until = 0;
        self.migrating.clear();
        self.importing.clear();
        self.changed();
        tracing::warn!("failover: this node replaced primary {old} (config epoch {epoch})");
        for n in self.nodes.values_mut() {
            if n.id == me || n.handshake {
                continue;
            }
            if n.ping_sent == 0 {
                n.ping_sent = now;
            }
            out.push(Outgoing::Ping(n.id));
        }
    }

    // ---- periodic work ----------------------------------------------------------------

    /// Called by `tick`: pause expiry on a primary; manual failover, election and replica
    /// migration on a replica.
    pub(super) fn failover_tick(&mut self, now: u64, out: &mut Vec<Outgoing>) {
        let primary = self.me().is_primary();
        if self.failover.paused_until != 0 && (now >= self.failover.paused_until || !primary) {
            if primary {
                tracing::warn!("manual failover timed out: client writes resume");
            }
            self.failover.paused_until = 0;
        }
        if primary {
            return;
        }
        self.manual_tick(now);
        self.election_tick(now, out);
        self.migration_tick(now);
    }

    fn manual_tick(&mut self, now: u64) {
        let my_offset = self.me().repl_offset;
        let Some(m) = self.failover.manual.as_mut() else {
            return;
        };
        if now > m.end {
            tracing::warn!("manual failover timed out");
            self.failover.manual = None;
            return;
        }
        if !m.can_start && m.primary_offset.is_some_and(|o| my_offset >= o) {
            tracing::info!("primary replication stream processed: manual failover can start");
            m.can_start = true;
        }
    }

    /// Valkey's `clusterHandleReplicaFailover`: schedule, ask, count, win.
    fn election_tick(&mut self, now: u64, out: &mut Vec<Outgoing>) {
        let Some(primary) = self.me().primary else {
            return;
        };
        let Some(p) = self.nodes.get(&primary) else {
            return;
        };
        let (primary_failed, primary_epoch) = (p.fail, p.config_epoch);
        let manual = self.failover.manual.as_ref().is_some_and(|m| m.can_start);
        if !primary_failed && !manual {
            self.failover.held_since = None;
            return;
        }
        if (self.replica_no_failover && !manual) || self.slot_count(&primary) == 0 {
            return;
        }
        if !manual && !self.data_is_fresh(now) {
            return;
        }
        let auth_timeout = self.auth_timeout();
        let e = &self.failover.election;
        if e.auth_time == 0 || now.saturating_sub(e.auth_time) > 2 * auth_timeout {
            // A new election: wait for the FAIL to spread, plus a random part so replicas do
            // not ask together, plus a second per better-placed replica. A manual failover
            // goes at once: the primary agreed and everyone can vote.
            let (auth_time, rank) = if manual {
                (now, 0)
            } else {
                let rank = self.replica_rank();
                let jitter = self.failover.random(500);
                let extra = self.failover.extra_delay_ms;
                (now + 500 + jitter + rank as u64 * 1000 + extra, rank)
            };
            self.failover.election = Election {
                auth_time,
                rank,
                scheduled: now,
                ..Election::default()
            };
            tracing::info!(
                "failover election scheduled in {} ms (rank {rank}, offset {})",
                auth_time - now,
                self.me().repl_offset
            );
            // Siblings learn our offset now, so their ranks account for it.
            let me = self.myself;
            for n in self.nodes.values() {
                if n.id != me && n.role == Role::Replica && n.primary == Some(primary) {
                    out.push(Outgoing::Ping(n.id));
                }
            }
        }
        if !self.failover.election.sent && !manual {
            // Offsets learned meanwhile may push us back.
            let rank = self.replica_rank();
            let e = &mut self.failover.election;
            if rank > e.rank {
                e.auth_time += (rank - e.rank) as u64 * 1000;
                e.rank = rank;
            }
        }
        let e = &self.failover.election;
        if now < e.auth_time || now - e.auth_time > auth_timeout {
            // Not yet, or this attempt expired and waits for the retry.
            return;
        }
        if !e.sent && !manual && self.sync_replication {
            if let Some(why) = self.sibling_may_hold_more() {
                // Bounded: a sibling that holds more but cannot win (cut off from most
                // primaries) must not keep the slots down for good.
                let since = *self.failover.held_since.get_or_insert(now);
                if now.saturating_sub(since) < SYNC_HOLD_LIMIT * self.node_timeout {
                    if !self.failover.election.held_back {
                        tracing::info!("failover election held back: {why}");
                        self.failover.election.held_back = true;
                    }
                    return;
                }
                if !self.failover.election.held_back {
                    tracing::warn!(
                        "failover election goes ahead after {} ms held back ({why}): writes acknowledged by that replica alone may be lost",
                        now - since
                    );
                    self.failover.election.held_back = true;
                }
            }
        }
        let e = &self.failover.election;
        if !e.sent {
            self.current_epoch += 1;
            let epoch = self.current_epoch;
            let e = &mut self.failover.election;
            e.epoch = epoch;
            e.sent = true;
            e.votes.clear();
            self.dirty = true;
            tracing::info!("starting a failover election for epoch {epoch}");
            let req = AuthRequest {
                sender: self.myself,
                epoch,
                primary,
                config_epoch: primary_epoch,
                slots: self.slots_of(&primary),
                manual,
            };
            for n in self.nodes.values() {
                if n.id != self.myself && n.is_primary() && !n.handshake {
                    out.push(Outgoing::AuthRequest {
                        to: n.id,
                        req: req.clone(),
                    });
                }
            }
            return;
        }
        if e.votes.len() >= self.quorum() {
            let epoch = e.epoch;
            tracing::info!(
                "failover election won for epoch {epoch} ({} votes)",
                e.votes.len()
            );
            self.replace_primary(epoch, now, out);
        }
    }

    /// Valkey's `clusterHandleReplicaMigration`: a replica of the primary with the most working
    /// replicas moves to an orphaned primary, when its own keeps more than the barrier.
    fn migration_tick(&mut self, now: u64) {
        let me = self.myself;
        let Some(mine) = self.me().primary else {
            return;
        };
        let mut ok_replicas: BTreeMap<NodeId, Vec<NodeId>> = self
            .nodes
            .values()
            .filter(|n| n.is_primary() && !n.handshake)
            .map(|n| (n.id, Vec::new()))
            .collect();
        for n in self.nodes.values().filter(|n| n.role == Role::Replica) {
            let Some(p) = n.primary else { continue };
            self.failover.migrate_to.insert(p);
            if let Some(v) = ok_replicas.get_mut(&p) {
                if !n.fail && !n.pfail {
                    v.push(n.id);
                }
            }
        }
        let orphans: Vec<NodeId> = ok_replicas
            .iter()
            .filter(|(p, r)| {
                r.is_empty()
                    && self.nodes.get(p).is_some_and(|n| !n.fail)
                    && self.failover.migrate_to.contains(p)
                    && self.slot_count(p) > 0
            })
            .map(|(p, _)| *p)
            .collect();
        self.failover
            .orphaned_since
            .retain(|p, _| orphans.contains(p));
        for p in &orphans {
            self.failover.orphaned_since.entry(*p).or_insert(now);
        }
        if !self.allow_replica_migration || !self.ok || self.failover.manual.is_some() {
            return;
        }
        let max = ok_replicas.values().map(Vec::len).max().unwrap_or(0);
        let Some(siblings) = ok_replicas.get(&mine) else {
            return;
        };
        let this = siblings.len();
        if orphans.is_empty() || max < 2 || this != max || this <= self.migration_barrier as usize {
            return;
        }
        // Only one replica moves: the one with the smallest id.
        if siblings.iter().min() != Some(&me) {
            return;
        }
        let target = self
            .failover
            .orphaned_since
            .iter()
            .find(|(_, since)| now.saturating_sub(**since) >= MIGRATION_DELAY_MS)
            .map(|(p, _)| *p);
        if let Some(target) = target {
            tracing::warn!("migrating to orphaned primary {target}");
            self.follow(target);
            self.changed();
        }
    }

    // ---- messages -----------------------------------------------------------------------

    /// A replica asks for our vote (Valkey's `clusterSendFailoverAuthIfNeeded`). Returns
    /// whether it is granted; a grant is recorded (and must be persisted before replying).
    pub fn on_auth_request(&mut self, req: &AuthRequest, now: u64) -> bool {
        let Some(sender) = self.nodes.get(&req.sender).filter(|n| !n.handshake) else {
            return false;
        };
        let (sender_role, sender_primary) = (sender.role, sender.primary);
        if req.epoch > self.current_epoch {
            self.current_epoch = req.epoch;
            self.dirty = true;
        }
        let me = self.myself;
        let refuse = |why: &str| {
            tracing::info!(
                "failover auth denied to {} for epoch {}: {why}",
                req.sender,
                req.epoch
            );
            false
        };
        if !self.me().is_primary() || self.slot_count(&me) == 0 {
            return false;
        }
        if req.epoch < self.current_epoch {
            return refuse("its epoch is older than ours");
        }
        if self.last_vote_epoch == self.current_epoch {
            return refuse("already voted for this epoch");
        }
        if sender_role != Role::Replica || sender_primary != Some(req.primary) {
            return refuse("it is not a replica of the primary it names");
        }
        let Some(primary) = self.nodes.get(&req.primary) else {
            return refuse("its primary is unknown");
        };
        if !primary.fail && !req.manual {
            return refuse("its primary is not failing");
        }
        if self
            .failover
            .voted_time
            .get(&req.primary)
            .is_some_and(|t| now.saturating_sub(*t) < 2 * self.node_timeout)
        {
            return refuse("voted for a replica of the same primary recently");
        }
        for s in req.slots.iter() {
            let newer = self.slots[s as usize]
                .and_then(|o| self.nodes.get(&o))
                .is_some_and(|o| o.config_epoch > req.config_epoch);
            if newer {
                return refuse("a claimed slot has a newer owner");
            }
        }
        self.last_vote_epoch = self.current_epoch;
        self.failover.voted_time.insert(req.primary, now);
        self.dirty = true;
        tracing::info!(
            "failover auth granted to {} for epoch {}",
            req.sender,
            req.epoch
        );
        true
    }

    /// A primary granted its vote for `epoch`; a majority wins the election at once.
    pub fn on_auth_ack(&mut self, voter: NodeId, epoch: u64, now: u64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        if self.me().is_primary() || !self.failover.election.sent {
            return out;
        }
        let counts =
            self.nodes.get(&voter).is_some_and(|n| n.is_primary()) && self.slot_count(&voter) > 0;
        if !counts || epoch < self.failover.election.epoch {
            return out;
        }
        self.failover.election.votes.insert(voter);
        self.election_tick(now, &mut out);
        out
    }

    /// CLUSTER FAILOVER on this node.
    pub fn manual_failover(
        &mut self,
        mode: FailoverMode,
        now: u64,
    ) -> Result<Vec<Outgoing>, ClusterError> {
        let me = self.me();
        if me.is_primary() {
            return Err(ClusterError::FailoverOnPrimary);
        }
        let Some(primary) = me.primary.filter(|p| self.nodes.contains_key(p)) else {
            return Err(ClusterError::PrimaryUnknown);
        };
        let p = &self.nodes[&primary];
        if mode == FailoverMode::Default && (p.fail || !p.link_up) {
            return Err(ClusterError::PrimaryDown);
        }
        self.failover.election = Election::default();
        let mut manual = ManualFailover {
            end: now + self.node_timeout,
            ..ManualFailover::default()
        };
        let mut out = Vec::new();
        match mode {
            FailoverMode::Takeover => {
                tracing::warn!("taking over the primary (user request)");
                self.failover.manual = None;
                let (_, epoch) = self.bump_epoch();
                self.replace_primary(epoch, now, &mut out);
            }
            FailoverMode::Force => {
                tracing::warn!("forced failover user request accepted");
                manual.can_start = true;
                self.failover.manual = Some(manual);
            }
            FailoverMode::Default => {
                tracing::warn!("manual failover user request accepted");
                self.failover.manual = Some(manual);
                out.push(Outgoing::ManualFailoverStart { to: primary });
            }
        }
        Ok(out)
    }

    /// Primary side: `replica` starts a manual failover. Client writes pause for twice the
    /// node timeout (the replica gives up after one), and the caller answers with our offset.
    pub fn on_manual_failover_request(&mut self, replica: NodeId, now: u64) -> bool {
        if !self.me().is_primary() {
            return false;
        }
        let ours = self
            .nodes
            .get(&replica)
            .is_some_and(|r| r.role == Role::Replica && r.primary == Some(self.myself));
        if !ours {
            return false;
        }
        tracing::warn!("manual failover requested by replica {replica}: pausing client writes");
        self.failover.paused_until = now + 2 * self.node_timeout;
        true
    }

    /// Replica side: the paused primary's offset to catch up with.
    pub fn on_manual_failover_offset(&mut self, primary: NodeId, offset: u64) {
        if self.me().primary != Some(primary) {
            return;
        }
        if let Some(m) = self.failover.manual.as_mut() {
            m.primary_offset = Some(m.primary_offset.unwrap_or(0).max(offset));
        }
    }
}

#[cfg(test)]
mod tests;

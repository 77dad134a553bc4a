//! Client commands on the cluster state: slot assignment, MEET, epochs, REPLICATE, FORGET,
//! RESET, SETSLOT. Same rules as the rest of the state machine: pure, no I/O.

use super::*;

impl ClusterState {
    pub fn add_slots(&mut self, slots: &[u16]) -> Result<(), ClusterError> {
        check_unique(slots)?;
        if let Some(&s) = slots.iter().find(|&&s| self.slots[s as usize].is_some()) {
            return Err(ClusterError::SlotBusy(s));
        }
        for &s in slots {
            self.slots.set(s as usize, Some(self.myself));
            self.importing.remove(&s);
        }
        self.changed();
        Ok(())
    }

    pub fn del_slots(&mut self, slots: &[u16]) -> Result<(), ClusterError> {
        check_unique(slots)?;
        if let Some(&s) = slots.iter().find(|&&s| self.slots[s as usize].is_none()) {
            return Err(ClusterError::SlotUnassigned(s));
        }
        for &s in slots {
            self.slots.set(s as usize, None);
            self.migrating.remove(&s);
            self.importing.remove(&s);
        }
        self.changed();
        Ok(())
    }

    /// Unassigns every slot this node owns (FLUSHSLOTS).
    pub fn flush_slots(&mut self) {
        let me = self.myself;
        self.slots.reassign(me, None);
        self.changed();
    }

    /// Starts a handshake with `ip:port` (bus port `cport`).
    pub fn meet(&mut self, ip: &str, port: u16, cport: u16, now: u64) -> Result<(), ClusterError> {
        if ip.parse::<std::net::IpAddr>().is_err() || port == 0 || cport == 0 {
            return Err(ClusterError::InvalidAddress(format!("{ip}:{port}")));
        }
        let already = self
            .nodes
            .values()
            .any(|n| n.handshake && n.ip == ip && n.cport == cport);
        if !already {
            let id = NodeId::random();
            let mut n = NodeRecord::new(id, ip.to_string(), port, cport, now);
            n.handshake = true;
            self.nodes.insert(id, n);
        }
        Ok(())
    }

    pub fn set_config_epoch(&mut self, epoch: u64) -> Result<(), ClusterError> {
        if self.nodes.len() > 1 {
            return Err(ClusterError::EpochKnowsOthers);
        }
        if self.me().config_epoch != 0 {
            return Err(ClusterError::EpochNonZero);
        }
        self.me_mut().config_epoch = epoch;
        self.current_epoch = self.current_epoch.max(epoch);
        self.changed();
        Ok(())
    }

    fn max_epoch(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
            .max(self.current_epoch)
    }

    /// CLUSTER BUMPEPOCH: a new config epoch without agreement, unless ours is already the
    /// unique greatest. Returns (bumped, epoch).
    pub fn bump_epoch(&mut self) -> (bool, u64) {
        let max = self.max_epoch();
        let mine = self.me().config_epoch;
        let unique_max = mine == max
            && self
                .nodes
                .values()
                .filter(|n| n.config_epoch == max)
                .count()
                == 1;
        if mine == 0 || !unique_max {
            self.current_epoch = max + 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            self.changed();
            (true, e)
        } else {
            (false, mine)
        }
    }

    pub fn replicate(&mut self, id: &[u8], has_keys: bool) -> Result<(), ClusterError> {
        let Some(target) = self.lookup(id) else {
            return Err(ClusterError::UnknownNode(
                String::from_utf8_lossy(id).into_owned(),
            ));
        };
        if target == self.myself {
            return Err(ClusterError::ReplicateSelf);
        }
        if !self.nodes[&target].is_primary() {
            return Err(ClusterError::ReplicateReplica);
        }
        let me = self.myself;
        if self.me().is_primary() && (self.slots.contains(&Some(me)) || has_keys) {
            return Err(ClusterError::NotEmpty);
        }
        self.follow(target);
        self.changed();
        Ok(())
    }

    pub fn forget(&mut self, id: &[u8], now: u64) -> Result<(), ClusterError> {
        let Some(target) = self.lookup(id) else {
            return Err(ClusterError::UnknownNode(
                String::from_utf8_lossy(id).into_owned(),
            ));
        };
        if target == self.myself {
            return Err(ClusterError::ForgetSelf);
        }
        if self.me().primary == Some(target) {
            return Err(ClusterError::ForgetPrimary);
        }
        self.forgotten.insert(target, now + FORGET_BAN_MS);
        self.remove_node(target);
        Ok(())
    }

    fn remove_node(&mut self, id: NodeId) {
        self.nodes.remove(&id);
        self.slots.reassign(id, None);
        self.migrating.retain(|_, n| *n != id);
        self.importing.retain(|_, n| *n != id);
        self.fail_reports.remove(&id);
        self.failover.forget(&id);
        self.stale_claims.remove(&id);
        for o in self.stale_claims.values_mut() {
            o.remove(&id);
        }
        for r in self.fail_reports.values_mut() {
            r.remove(&id);
        }
        self.changed();
    }

    /// CLUSTER RESET: forget every other node and all slots; HARD also resets epochs and the
    /// node id. The caller checks that a primary holds no keys.
    pub fn reset(&mut self, hard: bool, now: u64) {
        let me = self.me().clone();
        let id = if hard { NodeId::random() } else { me.id };
        let mut fresh = ClusterState::new(id, me.ip.clone(), me.port, me.cport, now);
        fresh.node_timeout = self.node_timeout;
        fresh.require_full_coverage = self.require_full_coverage;
        fresh.replica_validity_factor = self.replica_validity_factor;
        fresh.set_no_failover(self.replica_no_failover);
        fresh.migration_barrier = self.migration_barrier;
        fresh.allow_replica_migration = self.allow_replica_migration;
        fresh.sync_replication = self.sync_replication;
        fresh.failover.extra_delay_ms = self.failover.extra_delay_ms;
        if !hard {
            fresh.current_epoch = self.current_epoch;
            fresh.last_vote_epoch = self.last_vote_epoch;
            fresh.me_mut().config_epoch = me.config_epoch;
        }
        *self = fresh;
    }

    /// CLUSTER SETSLOT. `keys_in_slot` is the number of keys this node holds in `slot`.
    pub fn set_slot(
        &mut self,
        slot: u16,
        action: SetSlot,
        keys_in_slot: i64,
    ) -> Result<(), ClusterError> {
        if !self.me().is_primary() {
            return Err(ClusterError::SetSlotOnReplica);
        }
        let owner = self.slots[slot as usize];
        fn known(s: &ClusterState, id: NodeId) -> Result<&NodeRecord, ClusterError> {
            s.nodes
                .get(&id)
                .ok_or_else(|| ClusterError::DontKnowNode(id.to_string()))
        }
        match action {
            SetSlot::Migrating(id) => {
                if owner != Some(self.myself) {
                    return Err(ClusterError::NotOwner(slot));
                }
                if !known(self, id)?.is_primary() {
                    return Err(ClusterError::TargetNotPrimary);
                }
                self.migrating.insert(slot, id);
            }
            SetSlot::Importing(id) => {
                if owner == Some(self.myself) {
                    return Err(ClusterError::AlreadyOwner(slot));
                }
                if !known(self, id)?.is_primary() {
                    return Err(ClusterError::TargetNotPrimary);
                }
                self.importing.insert(slot, id);
            }
            SetSlot::Stable => {
                self.migrating.remove(&slot);
                self.importing.remove(&slot);
            }
            SetSlot::Node(id) => {
                let target = self
                    .nodes
                    .get(&id)
                    .ok_or_else(|| ClusterError::UnknownNode(id.to_string()))?;
                if !target.is_primary() {
                    return Err(ClusterError::TargetNotPrimary);
                }
                if owner == Some(self.myself) && id != self.myself && keys_in_slot > 0 {
                    return Err(ClusterError::SlotHasKeys(slot));
                }
                if keys_in_slot == 0 {
                    self.migrating.remove(&slot);
                }
                let was_importing = self.importing.remove(&slot).is_some();
                self.slots.set(slot as usize, Some(id));
                // Taking a slot we imported needs an epoch that wins over the old owner's.
                if id == self.myself && was_importing {
                    self.bump_epoch();
                }
            }
        }
        self.changed();
        Ok(())
    }
}

fn check_unique(slots: &[u16]) -> Result<(), ClusterError> {
    let mut seen = SlotSet::default();
    for &s in slots {
        if seen.contains(s) {
            return Err(ClusterError::SlotRepeated(s));
        }
        seen.insert(s);
    }
    Ok(())
}

impl ClusterState {
    /// Atomic slot migration, target side: takes `slots` with a config epoch that wins over
    /// the source's (Valkey bumps without consensus for imported slots too). Returns it.
    pub fn take_imported_slots(&mut self, slots: &[u16]) -> Result<u64, ClusterError> {
        if !self.me().is_primary() {
            return Err(ClusterError::SetSlotOnReplica);
        }
        let me = self.myself;
        for &s in slots {
            self.slots.set(s as usize, Some(me));
            self.migrating.remove(&s);
            self.importing.remove(&s);
        }
        self.bump_epoch();
        self.changed();
        Ok(self.me().config_epoch)
    }

    /// Atomic slot migration, source side: the target took `slots` with `epoch`.
    pub fn hand_over(&mut self, slots: &[u16], target: NodeId, epoch: u64) {
        let me = self.myself;
        for &s in slots {
            if self.slots[s as usize] == Some(me) {
                self.slots.set(s as usize, Some(target));
            }
            self.migrating.remove(&s);
        }
        if let Some(n) = self.nodes.get_mut(&target) {
            n.config_epoch = n.config_epoch.max(epoch);
        }
        self.current_epoch = self.current_epoch.max(epoch);
        self.changed();
    }
}

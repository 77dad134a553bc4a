//! The slot → owner table of the cluster state, with what is derived from it (each owner's
//! slot set, the list of owners, full coverage) computed in one pass and kept until the next
//! change, and a generation number that tells views whether the table changed.
//!
//! The table is 16384 × `Option<NodeId>` (650 KB): walking it for every bus message, view
//! rebuild and nodes.conf line was most of a node's CPU during a legacy reshard.
//!
//! Must not: be changed except through [`SlotTable::set`] (there is no `IndexMut`), so the
//! derived data and the generation can never be stale.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::types::{NodeId, SlotSet};
use crate::storage::SLOTS;

/// Generations are unique in the process: two tables share one only when one is an unchanged
/// clone of the other (a table rebuilt from scratch never repeats an old number).
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

#[derive(Debug, Clone)]
struct Derived {
    by_owner: BTreeMap<NodeId, SlotSet>,
    covered: bool,
}

#[derive(Debug, Clone)]
pub struct SlotTable {
    owner: Vec<Option<NodeId>>,
    generation: u64,
    derived: OnceLock<Derived>,
}

impl Default for SlotTable {
    fn default() -> Self {
        SlotTable {
            owner: vec![None; SLOTS],
            generation: next_generation(),
            derived: OnceLock::new(),
        }
    }
}

/// Two tables are equal when every slot has the same owner (generations aside).
impl PartialEq for SlotTable {
    fn eq(&self, other: &Self) -> bool {
        self.owner == other.owner
    }
}

impl std::ops::Index<usize> for SlotTable {
    type Output = Option<NodeId>;
    fn index(&self, i: usize) -> &Option<NodeId> {
        &self.owner[i]
    }
}

impl SlotTable {
    /// Sets the owner of `slot`; a no-op (no new generation) when it already is.
    pub fn set(&mut self, slot: usize, owner: Option<NodeId>) {
        if self.owner[slot] != owner {
            self.owner[slot] = owner;
            self.generation = next_generation();
            self.derived = OnceLock::new();
        }
    }

    /// Changes with every effective [`SlotTable::set`]; unique in the process.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Option<NodeId>> {
        self.owner.iter()
    }

    /// Whether `owner` owns at least one slot (`None`: whether a slot is unassigned).
    pub fn contains(&self, owner: &Option<NodeId>) -> bool {
        match owner {
            Some(id) => self.count_of(id) > 0,
            None => !self.derived().covered,
        }
    }

    /// Gives every slot of `from` to `to` (`None`: unassigns them).
    pub fn reassign(&mut self, from: NodeId, to: Option<NodeId>) {
        for s in 0..self.owner.len() {
            if self.owner[s] == Some(from) {
                self.set(s, to);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.owner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    fn derived(&self) -> &Derived {
        self.derived.get_or_init(|| {
            let mut by_owner: BTreeMap<NodeId, SlotSet> = BTreeMap::new();
            let mut covered = true;
            let mut s = 0;
            while s < self.owner.len() {
                let Some(id) = self.owner[s] else {
                    covered = false;
                    s += 1;
                    continue;
                };
                // One map lookup per run of slots with the same owner.
                let set = by_owner.entry(id).or_default();
                while s < self.owner.len() && self.owner[s] == Some(id) {
                    set.insert(s as u16);
                    s += 1;
                }
            }
            Derived { by_owner, covered }
        })
    }

    /// The slots `id` owns.
    pub fn slots_of(&self, id: &NodeId) -> SlotSet {
        self.derived().by_owner.get(id).cloned().unwrap_or_default()
    }

    /// How many slots `id` owns.
    pub fn count_of(&self, id: &NodeId) -> usize {
        self.derived().by_owner.get(id).map_or(0, |s| s.count())
    }

    /// The distinct owners (sorted) and whether every slot has one.
    pub fn owners(&self) -> (Vec<NodeId>, bool) {
        let d = self.derived();
        (d.by_owner.keys().copied().collect(), d.covered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_data_follows_every_change() {
        let (a, b) = (NodeId::random(), NodeId::random());
        let mut t = SlotTable::default();
        assert_eq!(t.owners(), (vec![], false));
        for s in 0..SLOTS {
            t.set(s, Some(if s % 3 == 0 { a } else { b }));
        }
        let g = t.generation();
        let (owners, covered) = t.owners();
        assert!(covered);
        assert_eq!(owners.len(), 2);
        assert_eq!(t.count_of(&a), SLOTS.div_ceil(3));
        assert_eq!(t.count_of(&a) + t.count_of(&b), SLOTS);
        assert!(t.slots_of(&a).contains(3) && !t.slots_of(&a).contains(4));
        // Setting the same owner again is no change.
        t.set(3, Some(a));
        assert_eq!(t.generation(), g);
        // A real change is seen by every derived figure and bumps the generation.
        t.set(3, Some(b));
        assert_ne!(t.generation(), g);
        assert_ne!(SlotTable::default().generation(), t.generation());
        assert!(!t.slots_of(&a).contains(3) && t.slots_of(&b).contains(3));
        t.set(0, None);
        assert!(!t.owners().1);
        assert_eq!(t.count_of(&a) + t.count_of(&b), SLOTS - 1);
        for s in 0..SLOTS {
            if t[s] == Some(a) {
                t.set(s, None);
            }
        }
        assert_eq!(t.owners().0, vec![b]);
        assert_eq!(t.count_of(&a), 0);
    }
}

//! A stream's consumer groups as member records: the group (last delivered id, entries read,
//! consumer and pending counts), its pending entries list ordered by id, and its consumers
//! ordered by name. They live under the stream's member prefix, so they are durable, move,
//! replicate and are deleted with the stream.
//!
//! Must not: decide delivery or claiming rules (the stream commands do); this is the layout.

use super::stream::{take_bytes, StreamId, StreamRead, StreamTxn, CONSUMER, GROUP, PEL};
use super::{CorruptRecord, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group has read, when known (Valkey's `entries_read`; None is its -1).
    pub entries_read: Option<u64>,
    pub consumers: u64,
    pub pending: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    /// Unix ms of the last delivery.
    pub delivered_at: i64,
    pub deliveries: u64,
    pub consumer: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    /// Unix ms of the last attempt to read or claim.
    pub seen_time: i64,
    /// Unix ms of the last successful read or claim (None: never).
    pub active_time: Option<i64>,
    pub pending: u64,
}

fn bad() -> CorruptRecord {
    CorruptRecord("stream group record")
}

fn u64_at(v: &[u8], at: usize) -> std::result::Result<u64, CorruptRecord> {
    Ok(u64::from_be_bytes(
        v.get(at..at + 8)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    ))
}

impl Group {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut v = self.last_id.bytes().to_vec();
        v.extend_from_slice(&self.entries_read.map_or(-1, |n| n as i64).to_be_bytes());
        v.extend_from_slice(&self.consumers.to_be_bytes());
        v.extend_from_slice(&self.pending.to_be_bytes());
        v
    }
    fn decode(v: &[u8]) -> std::result::Result<Group, CorruptRecord> {
        let read = u64_at(v, 16)? as i64;
        Ok(Group {
            last_id: StreamId::from_bytes(v).ok_or_else(bad)?,
            entries_read: (read >= 0).then_some(read as u64),
            consumers: u64_at(v, 24)?,
            pending: u64_at(v, 32)?,
        })
    }
}

impl PendingEntry {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut v = self.delivered_at.to_be_bytes().to_vec();
        v.extend_from_slice(&self.deliveries.to_be_bytes());
        v.extend_from_slice(&(self.consumer.len() as u32).to_be_bytes());
        v.extend_from_slice(&self.consumer);
        v
    }
    fn decode(v: &[u8]) -> std::result::Result<PendingEntry, CorruptRecord> {
        let mut rest = v.get(16..).ok_or_else(bad)?;
        Ok(PendingEntry {
            delivered_at: u64_at(v, 0)? as i64,
            deliveries: u64_at(v, 8)?,
            consumer: take_bytes(&mut rest)?.to_vec(),
        })
    }
}

impl Consumer {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut v = self.seen_time.to_be_bytes().to_vec();
        v.extend_from_slice(&self.active_time.unwrap_or(-1).to_be_bytes());
        v.extend_from_slice(&self.pending.to_be_bytes());
        v
    }
    fn decode(v: &[u8]) -> std::result::Result<Consumer, CorruptRecord> {
        let active = u64_at(v, 8)? as i64;
        Ok(Consumer {
            seen_time: u64_at(v, 0)? as i64,
            active_time: (active >= 0).then_some(active),
            pending: u64_at(v, 16)?,
        })
    }
}

pub(super) fn group_key(name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(GROUP);
    k.extend_from_slice(name);
    k
}

/// `[tag][group len u32][group]`: where a group's pending entries or consumers start.
fn under(tag: u8, group: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + group.len());
    k.push(tag);
    k.extend_from_slice(&(group.len() as u32).to_be_bytes());
    k.extend_from_slice(group);
    k
}

pub(super) fn pel_key(group: &[u8], id: StreamId) -> Vec<u8> {
    let mut k = under(PEL, group);
    k.extend_from_slice(&id.bytes());
    k
}

pub(super) fn consumer_key(group: &[u8], name: &[u8]) -> Vec<u8> {
    let mut k = under(CONSUMER, group);
    k.extend_from_slice(name);
    k
}

/// The first key after every key starting with `p`.
fn after_prefix(p: &[u8]) -> Vec<u8> {
    super::encoding::successor(p.to_vec())
}

/// Typed reads of groups, pending entries and consumers, for views and transactions alike.
pub trait GroupRead: StreamRead {
    fn group(&self, name: &[u8]) -> Result<Option<Group>> {
        Ok(self
            .get(&group_key(name))?
            .map(|v| Group::decode(&v))
            .transpose()?)
    }

    /// Every group in name order.
    fn groups(&self) -> Result<Vec<(Vec<u8>, Group)>> {
        let mut out = Vec::new();
        let mut err = None;
        self.scan(&[GROUP], &[GROUP + 1], false, &mut |k, v| {
            match Group::decode(v) {
                Ok(g) => out.push((k[1..].to_vec(), g)),
                Err(e) => err = Some(e),
            }
            err.is_none()
        })?;
        err.map_or(Ok(out), |e| Err(e.into()))
    }

    fn pending_entry(&self, group: &[u8], id: StreamId) -> Result<Option<PendingEntry>> {
        Ok(self
            .get(&pel_key(group, id))?
            .map(|v| PendingEntry::decode(&v))
            .transpose()?)
    }

    /// Visits the group's pending entries with ids in `[from, to]` in id order (descending
    /// with `rev`) until `f` returns false.
    fn pending_range(
        &self,
        group: &[u8],
        from: StreamId,
        to: StreamId,
        rev: bool,
        f: &mut dyn FnMut(StreamId, PendingEntry) -> bool,
    ) -> Result<()> {
        if from > to {
            return Ok(());
        }
        let lo = pel_key(group, from);
        let hi = match to.next() {
            Some(n) => pel_key(group, n),
            None => after_prefix(&under(PEL, group)),
        };
        let n = under(PEL, group).len();
        let mut err = None;
        self.scan(&lo, &hi, rev, &mut |k, v| match (
            StreamId::from_bytes(&k[n..]),
            PendingEntry::decode(v),
        ) {
            (Some(id), Ok(p)) => f(id, p),
            (_, Err(e)) => {
                err = Some(e);
                false
            }
            (None, _) => {
                err = Some(bad());
                false
            }
        })?;
        err.map_or(Ok(()), |e| Err(e.into()))
    }

    fn consumer(&self, group: &[u8], name: &[u8]) -> Result<Option<Consumer>> {
        Ok(self
            .get(&consumer_key(group, name))?
            .map(|v| Consumer::decode(&v))
            .transpose()?)
    }

    /// The group's consumers in name order.
    fn consumers(&self, group: &[u8]) -> Result<Vec<(Vec<u8>, Consumer)>> {
        let p = under(CONSUMER, group);
        let n = p.len();
        let mut out = Vec::new();
        let mut err = None;
        self.scan(&p, &after_prefix(&p), false, &mut |k, v| {
            match Consumer::decode(v) {
                Ok(c) => out.push((k[n..].to_vec(), c)),
                Err(e) => err = Some(e),
            }
            err.is_none()
        })?;
        err.map_or(Ok(out), |e| Err(e.into()))
    }
}

impl<T: StreamRead + ?Sized> GroupRead for T {}

impl StreamTxn<'_> {
    pub fn put_group(&mut self, name: &[u8], g: &Group) {
        self.put(group_key(name), g.encode());
    }

    /// Removes the group with its pending entries and consumers.
    pub fn destroy_group(&mut self, name: &[u8]) -> Result<()> {
        self.del(group_key(name));
        for tag in [PEL, CONSUMER] {
            let p = under(tag, name);
            let mut doomed = Vec::new();
            self.scan(&p, &after_prefix(&p), false, &mut |k, _| {
                doomed.push(k.to_vec());
                true
            })?;
            for k in doomed {
                self.del(k);
            }
        }
        Ok(())
    }

    pub fn put_pending(&mut self, group: &[u8], id: StreamId, p: &PendingEntry) {
        self.put(pel_key(group, id), p.encode());
    }

    pub fn del_pending(&mut self, group: &[u8], id: StreamId) {
        self.del(pel_key(group, id));
    }

    pub fn put_consumer(&mut self, group: &[u8], name: &[u8], c: &Consumer) {
        self.put(consumer_key(group, name), c.encode());
    }

    pub fn del_consumer(&mut self, group: &[u8], name: &[u8]) {
        self.del(consumer_key(group, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip() {
        let g = Group {
            last_id: StreamId::new(9, 2),
            entries_read: None,
            consumers: 3,
            pending: 4,
        };
        assert_eq!(Group::decode(&g.encode()).unwrap(), g);
        let p = PendingEntry {
            delivered_at: 1_700_000_000_000,
            deliveries: 2,
            consumer: b"alice".to_vec(),
        };
        assert_eq!(PendingEntry::decode(&p.encode()).unwrap(), p);
        let c = Consumer {
            seen_time: 5,
            active_time: None,
            pending: 1,
        };
        assert_eq!(Consumer::decode(&c.encode()).unwrap(), c);
        assert!(Group::decode(&[0; 3]).is_err());
        // A group's pending entries and consumers sort apart from a longer group name's.
        let (lo, hi) = (under(PEL, b"g"), after_prefix(&under(PEL, b"g")));
        assert!(pel_key(b"g", StreamId::MAX) < hi);
        let other = pel_key(b"g2", StreamId::MIN);
        assert!(other < lo || other >= hi);
    }
}

//! A stream as a whole value for DUMP, MIGRATE and RESTORE: its records gathered into the
//! RDB stream object (nodes as listpacks, counters, groups), and an object written back as
//! records, so streams move between rockslot and valkey-server in both directions.
//!
//! Must not: encode bytes (the `rdb` module does).

use std::collections::HashMap;

use crate::rdb::stream::{StreamConsumer, StreamEntry, StreamGroup, StreamNode, StreamObject};
use crate::storage::Batch;

use super::encoding::{encode_entry, expiry_key, member_key, meta_key};
use super::hash::stage_delete_any;
use super::stream::{encode_fields, tagged, StreamRead, ENTRY, NODE};
use super::stream_groups::{consumer_key, group_key, pel_key, GroupRead};
use super::{
    is_live, now_ms, Consumer, Group, NodeInfo, Pending, PendingEntry, Result, StreamId,
    StreamMeta, Value,
};

fn pair(id: StreamId) -> (u64, u64) {
    (id.ms, id.seq)
}

fn id(p: (u64, u64)) -> StreamId {
    StreamId::new(p.0, p.1)
}

/// The whole stream `s` as an RDB object.
pub(super) fn stream_object(s: &dyn StreamRead) -> Result<StreamObject> {
    let m = s.meta();
    let mut nodes = Vec::new();
    let mut infos = Vec::new();
    s.scan(&[NODE], &[NODE + 1], false, &mut |k, v| {
        infos.push((k.to_vec(), v.to_vec()));
        true
    })?;
    for (k, v) in infos {
        let n = NodeInfo::decode(&k, &v)?;
        let entries = s
            .range(n.first, n.last, false, None)?
            .into_iter()
            .map(|(i, fields)| StreamEntry {
                id: pair(i),
                deleted: false,
                fields,
            })
            .collect::<Vec<_>>();
        if !entries.is_empty() {
            nodes.push(StreamNode {
                master: pair(n.first),
                master_fields: n.master,
                entries,
            });
        }
    }
    let mut groups = Vec::new();
    for (name, g) in s.groups()? {
        let mut pending = Vec::new();
        let mut owners: HashMap<Vec<u8>, Vec<(u64, u64)>> = HashMap::new();
        s.pending_range(&name, StreamId::MIN, StreamId::MAX, false, &mut |i, pe| {
            pending.push((pair(i), pe.delivered_at, pe.deliveries));
            owners.entry(pe.consumer).or_default().push(pair(i));
            true
        })?;
        let consumers = s
            .consumers(&name)?
            .into_iter()
            .map(|(cname, c)| StreamConsumer {
                pending: owners.remove(&cname).unwrap_or_default(),
                name: cname,
                seen_time: c.seen_time,
                active_time: c.active_time.unwrap_or(-1),
            })
            .collect();
        groups.push(StreamGroup {
            name,
            last_id: pair(g.last_id),
            entries_read: g.entries_read.map_or(-1, |n| n as i64),
            pending,
            consumers,
        });
    }
    Ok(StreamObject {
        nodes,
        length: m.len,
        last_id: pair(m.last_id),
        first_id: pair(m.first_id),
        max_deleted: pair(m.max_deleted),
        entries_added: m.entries_added,
        groups,
    })
}

/// Stages the records of stream `o` at `key` into `batch`.
fn stage_stream(
    batch: &mut Batch,
    at: super::DbSlot,
    key: &[u8],
    o: StreamObject,
    expire_at: Option<i64>,
) {
    let rec = |suffix: &[u8]| member_key(at, key, suffix);
    let mut tail = StreamId::MIN;
    for n in o.nodes {
        let mut info = NodeInfo {
            first: id(n.master),
            last: id(n.master),
            total: 0,
            live: 0,
            bytes: 0,
            master: n.master_fields,
        };
        for e in &n.entries {
            info.bytes += info.entry_bytes(id(e.id), &e.fields);
            info.total += 1;
            info.last = id(e.id);
            if !e.deleted {
                info.live += 1;
                batch.put(rec(&tagged(ENTRY, id(e.id))), encode_fields(&e.fields));
            }
        }
        if info.live > 0 {
            batch.put(rec(&tagged(NODE, info.first)), info.encode());
            tail = info.first;
        }
    }
    let groups = o.groups.len() as u64;
    for g in o.groups {
        let mut owner: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
        for c in &g.consumers {
            for p in &c.pending {
                owner.insert(*p, c.name.clone());
            }
            let rc = Consumer {
                seen_time: c.seen_time,
                active_time: (c.active_time >= 0).then_some(c.active_time),
                pending: c.pending.len() as u64,
            };
            batch.put(rec(&consumer_key(&g.name, &c.name)), rc.encode());
        }
        for (p, time, count) in &g.pending {
            let pe = PendingEntry {
                delivered_at: *time,
                deliveries: *count,
                consumer: owner.get(p).cloned().unwrap_or_default(),
            };
            batch.put(rec(&pel_key(&g.name, id(*p))), pe.encode());
        }
        let rg = Group {
            last_id: id(g.last_id),
            entries_read: (g.entries_read >= 0).then_some(g.entries_read as u64),
            consumers: g.consumers.len() as u64,
            pending: g.pending.len() as u64,
        };
        batch.put(rec(&group_key(&g.name)), rg.encode());
    }
    let meta = StreamMeta {
        len: o.length,
        last_id: id(o.last_id),
        first_id: id(o.first_id),
        max_deleted: id(o.max_deleted),
        entries_added: o.entries_added,
        groups,
        tail,
    };
    let e = super::Entry {
        value: Value::Stream(Box::new(meta)),
        expire_at,
    };
    batch.put(meta_key(at, key), encode_entry(&e));
    if let Some(x) = expire_at {
        batch.put(expiry_key(at, x, key), Vec::new());
    }
    batch.count(at, 1);
}

impl Pending<'_> {
    /// Writes the whole stream `o` at `key` (RESTORE): with `only_if_absent`, a live key is
    /// left alone and false returned. An already expired `expire_at` only removes what was
    /// there.
    pub fn stream_put_all(
        &mut self,
        key: &[u8],
        o: StreamObject,
        expire_at: Option<i64>,
        only_if_absent: bool,
    ) -> Result<bool> {
        self.acquire(&[key])?;
        let at = self.at(key);
        let stored = self.read_physical(key)?;
        if only_if_absent && stored.as_ref().is_some_and(|e| is_live(e, now_ms())) {
            return Ok(false);
        }
        let mut batch = Batch::new();
        if let Some(e) = &stored {
            stage_delete_any(&mut batch, at, key, e);
        }
        if expire_at.is_none_or(|x| x > now_ms()) {
            stage_stream(&mut batch, at, key, o, expire_at);
        }
        if !batch.is_empty() {
            self.push(batch)?;
        }
        Ok(true)
    }

    /// The stream at `key` as an RDB object (empty when there is none).
    pub(super) fn stream_dump(&self, key: &[u8]) -> Result<StreamObject> {
        let mut out = StreamObject::default();
        let _ = self.stream_read(key, |s| {
            if let Some(s) = s {
                out = stream_object(s)?;
            }
            Ok(())
        })?;
        Ok(out)
    }
}

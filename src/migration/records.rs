//! Job records persisted in the node's meta family (synced to disk before the step they
//! guard), so a restarted source or target can finish or roll back a job.
//!
//! `migration-out` (source): one line per job, `name target ranges phase` with phase `stream`
//! (the target may hold hidden data: abort it) or `commit` (the target may own the slots:
//! ask it). `migration-in` (target): `name source ranges state` with state `importing` (roll
//! back unless nodes.conf says we own the slots) or `committed:<epoch>` (kept so a source that
//! lost the commit reply learns the outcome).

use parking_lot::Mutex;

use crate::cluster::NodeId;
use crate::keyspace::Ranges;
use crate::storage::{Batch, Engine};

const OUT_KEY: &[u8] = b"migration-out";
const IN_KEY: &[u8] = b"migration-in";
/// Committed imports remembered for late status queries.
const KEEP_COMMITTED: usize = 64;

static LOCK: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub peer: NodeId,
    pub ranges: Ranges,
    /// Out: "stream" | "commit". In: "importing" | "committed:<epoch>".
    pub state: String,
}

fn parse_ranges(s: &str) -> Option<Ranges> {
    s.split(',')
        .map(|r| {
            let (a, b) = r.split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

fn encode(recs: &[Record]) -> Vec<u8> {
    let mut out = String::new();
    for r in recs {
        let ranges: Vec<String> = r.ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
        out.push_str(&format!(
            "{} {} {} {}\n",
            r.name,
            r.peer,
            ranges.join(","),
            r.state
        ));
    }
    out.into_bytes()
}

fn decode(b: &[u8]) -> Vec<Record> {
    let text = String::from_utf8_lossy(b);
    text.lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            let name = w.next()?.to_string();
            let peer = NodeId::parse(w.next()?.as_bytes())?;
            let ranges = parse_ranges(w.next()?)?;
            let state = w.next()?.to_string();
            Some(Record {
                name,
                peer,
                ranges,
                state,
            })
        })
        .collect()
}

fn load(engine: &Engine, key: &[u8]) -> Result<Vec<Record>, crate::storage::StorageError> {
    Ok(engine
        .get_meta(key)?
        .map(|v| decode(&v))
        .unwrap_or_default())
}

fn store(engine: &Engine, key: &[u8], recs: &[Record]) -> Result<(), crate::storage::StorageError> {
    let mut b = Batch::new();
    b.put_meta(key.to_vec(), encode(recs));
    engine.write(b)?;
    engine.sync_wal()
}

fn modify(
    engine: &Engine,
    key: &[u8],
    f: impl FnOnce(&mut Vec<Record>),
) -> Result<(), crate::storage::StorageError> {
    let _g = LOCK.lock();
    let mut recs = load(engine, key)?;
    f(&mut recs);
    store(engine, key, &recs)
}

pub fn out_records(engine: &Engine) -> Result<Vec<Record>, crate::storage::StorageError> {
    load(engine, OUT_KEY)
}

pub fn in_records(engine: &Engine) -> Result<Vec<Record>, crate::storage::StorageError> {
    load(engine, IN_KEY)
}

/// Inserts or replaces the record named `rec.name`.
pub fn put_out(engine: &Engine, rec: Record) -> Result<(), crate::storage::StorageError> {
    modify(engine, OUT_KEY, |v| {
        v.retain(|r| r.name != rec.name);
        v.push(rec);
    })
}

pub fn remove_out(engine: &Engine, name: &str) -> Result<(), crate::storage::StorageError> {
    modify(engine, OUT_KEY, |v| v.retain(|r| r.name != name))
}

pub fn put_in(engine: &Engine, rec: Record) -> Result<(), crate::storage::StorageError> {
    modify(engine, IN_KEY, |v| {
        v.retain(|r| r.name != rec.name);
        v.push(rec);
        let committed = v
            .iter()
            .filter(|r| r.state.starts_with("committed"))
            .count();
        if committed > KEEP_COMMITTED {
            if let Some(i) = v.iter().position(|r| r.state.starts_with("committed")) {
                v.remove(i);
            }
        }
    })
}

pub fn remove_in(engine: &Engine, name: &str) -> Result<(), crate::storage::StorageError> {
    modify(engine, IN_KEY, |v| v.retain(|r| r.name != name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip_and_skip_garbage() {
        let r = Record {
            name: "a".repeat(40),
            peer: NodeId::random(),
            ranges: vec![(0, 10), (20, 20)],
            state: "committed:7".into(),
        };
        let mut bytes = encode(std::slice::from_ref(&r));
        bytes.extend_from_slice(b"garbage line\nx y 1-2 z\n");
        assert_eq!(decode(&bytes), vec![r]);
    }
}

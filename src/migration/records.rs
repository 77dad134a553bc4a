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
use crate::storage::{Batch, Engine, StorageError};

const OUT_KEY: &[u8] = b"migration-out";
const IN_KEY: &[u8] = b"migration-in";
/// Committed imports remembered for late status queries.
const KEEP_COMMITTED: usize = 64;

static LOCK: Mutex<()> = Mutex::new(());

/// The source's phase of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutPhase {
    /// The target may hold hidden data: abort it.
    Stream,
    /// The target may own the slots: ask it.
    Commit,
}

/// The target's state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InState {
    /// Roll back unless nodes.conf says we own the slots.
    Importing,
    /// Committed with this config epoch (kept so a source that lost the reply learns it).
    Committed(u64),
}

/// How a state is written in its record line.
pub trait RecordState: Sized + Copy {
    fn encode(self) -> String;
    fn decode(s: &str) -> Option<Self>;
}

impl RecordState for OutPhase {
    fn encode(self) -> String {
        match self {
            OutPhase::Stream => "stream".into(),
            OutPhase::Commit => "commit".into(),
        }
    }
    fn decode(s: &str) -> Option<Self> {
        match s {
            "stream" => Some(OutPhase::Stream),
            "commit" => Some(OutPhase::Commit),
            _ => None,
        }
    }
}

impl RecordState for InState {
    fn encode(self) -> String {
        match self {
            InState::Importing => "importing".into(),
            InState::Committed(e) => format!("committed:{e}"),
        }
    }
    fn decode(s: &str) -> Option<Self> {
        match s {
            "importing" => Some(InState::Importing),
            _ => s
                .strip_prefix("committed:")?
                .parse()
                .ok()
                .map(InState::Committed),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record<S> {
    pub name: String,
    pub peer: NodeId,
    pub ranges: Ranges,
    pub state: S,
}

pub type OutRecord = Record<OutPhase>;
pub type InRecord = Record<InState>;

fn parse_ranges(s: &str) -> Option<Ranges> {
    crate::slot::parse_ranges_compact(s).ok()
}

fn encode<S: RecordState>(recs: &[Record<S>]) -> Vec<u8> {
    let mut out = String::new();
    for r in recs {
        let ranges: Vec<String> = r.ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
        out.push_str(&format!(
            "{} {} {} {}\n",
            r.name,
            r.peer,
            ranges.join(","),
            r.state.encode()
        ));
    }
    out.into_bytes()
}

fn decode<S: RecordState>(b: &[u8]) -> Vec<Record<S>> {
    let text = String::from_utf8_lossy(b);
    text.lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            let name = w.next()?.to_string();
            let peer = NodeId::parse(w.next()?.as_bytes())?;
            let ranges = parse_ranges(w.next()?)?;
            let state = S::decode(w.next()?)?;
            Some(Record {
                name,
                peer,
                ranges,
                state,
            })
        })
        .collect()
}

fn load<S: RecordState>(engine: &Engine, key: &[u8]) -> Result<Vec<Record<S>>, StorageError> {
    Ok(engine
        .get_meta(key)?
        .map(|v| decode(&v))
        .unwrap_or_default())
}

fn store<S: RecordState>(
    engine: &Engine,
    key: &[u8],
    recs: &[Record<S>],
) -> Result<(), StorageError> {
    let mut b = Batch::new();
    b.put_meta(key.to_vec(), encode(recs));
    engine.write(b)?;
    engine.sync_wal()
}

fn modify<S: RecordState>(
    engine: &Engine,
    key: &[u8],
    f: impl FnOnce(&mut Vec<Record<S>>),
) -> Result<(), StorageError> {
    let _g = LOCK.lock();
    let mut recs = load(engine, key)?;
    f(&mut recs);
    store(engine, key, &recs)
}

pub fn out_records(engine: &Engine) -> Result<Vec<OutRecord>, StorageError> {
    load(engine, OUT_KEY)
}

pub fn in_records(engine: &Engine) -> Result<Vec<InRecord>, StorageError> {
    load(engine, IN_KEY)
}

/// Inserts or replaces the record named `rec.name`.
pub fn put_out(engine: &Engine, rec: OutRecord) -> Result<(), StorageError> {
    modify(engine, OUT_KEY, |v| {
        v.retain(|r: &OutRecord| r.name != rec.name);
        v.push(rec);
    })
}

pub fn remove_out(engine: &Engine, name: &str) -> Result<(), StorageError> {
    modify(engine, OUT_KEY, |v: &mut Vec<OutRecord>| {
        v.retain(|r| r.name != name)
    })
}

pub fn put_in(engine: &Engine, rec: InRecord) -> Result<(), StorageError> {
    let committed = |r: &InRecord| matches!(r.state, InState::Committed(_));
    modify(engine, IN_KEY, |v| {
        v.retain(|r: &InRecord| r.name != rec.name);
        v.push(rec);
        if v.iter().filter(|r| committed(r)).count() > KEEP_COMMITTED {
            if let Some(i) = v.iter().position(committed) {
                v.remove(i);
            }
        }
    })
}

pub fn remove_in(engine: &Engine, name: &str) -> Result<(), StorageError> {
    modify(engine, IN_KEY, |v: &mut Vec<InRecord>| {
        v.retain(|r| r.name != name)
    })
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
            state: InState::Committed(7),
        };
        let mut bytes = encode(std::slice::from_ref(&r));
        bytes.extend_from_slice(b"garbage line\nx y 1-2 z\n");
        assert_eq!(decode(&bytes), vec![r.clone()]);
        // An out record's phase does not read as an in state, and the text stays as before.
        assert!(decode::<OutPhase>(&bytes).is_empty());
        assert!(String::from_utf8_lossy(&bytes).contains(" 0-10,20-20 committed:7\n"));
    }
}

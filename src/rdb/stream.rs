//! Streams in RDB: Valkey's `STREAM_LISTPACKS` types 15, 19 and 21 read, type 21 written.
//! Each node is a listpack (`live, deleted, master fields…, 0`, then per entry `flags, ms-diff,
//! seq-diff, [n, field, value…] or values…, lp-count`), followed by the stream's counters and
//! its consumer groups with their pending entries and consumers.
//!
//! Must not: know how the keyspace stores a stream; ids are plain `(ms, seq)` pairs.

use std::io::Read;

use super::compact;
use super::object::{write_len, write_string};
use super::{Reader, Result};

pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

pub type Id = (u64, u64);

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    pub id: Id,
    /// Deleted inside its node (still counted toward the node's size).
    pub deleted: bool,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamNode {
    pub master: Id,
    pub master_fields: Vec<Vec<u8>>,
    pub entries: Vec<StreamEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamConsumer {
    pub name: Vec<u8>,
    pub seen_time: i64,
    /// -1: never active.
    pub active_time: i64,
    pub pending: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamGroup {
    pub name: Vec<u8>,
    pub last_id: Id,
    /// -1: unknown.
    pub entries_read: i64,
    /// (id, delivery time, delivery count).
    pub pending: Vec<(Id, i64, u64)>,
    pub consumers: Vec<StreamConsumer>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamObject {
    pub nodes: Vec<StreamNode>,
    pub length: u64,
    pub last_id: Id,
    pub first_id: Id,
    pub max_deleted: Id,
    pub entries_added: u64,
    pub groups: Vec<StreamGroup>,
}

fn id_bytes(id: Id) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&id.0.to_be_bytes());
    b[8..].copy_from_slice(&id.1.to_be_bytes());
    b
}

fn id_of(b: &[u8]) -> Option<Id> {
    Some((
        u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
        u64::from_be_bytes(b.get(8..16)?.try_into().ok()?),
    ))
}

fn read_id<R: Read>(r: &mut Reader<R>) -> Result<Id> {
    Ok((r.length()?, r.length()?))
}

/// Reads a stream of type `ty` (15, 19 or 21), checking every node against its header.
pub fn read_stream<R: Read>(r: &mut Reader<R>, ty: u8) -> Result<StreamObject> {
    let at = r.offset();
    let mut s = StreamObject::default();
    let nodes = r.length()?;
    for _ in 0..nodes {
        let node_at = r.offset();
        let key = r.string()?;
        let lp = r.string()?;
        let Some(master) = (key.len() == 16).then(|| id_of(&key)).flatten() else {
            return r.corrupt(node_at, "stream node key is not an id");
        };
        match parse_node(master, &lp) {
            Some(n) if !n.entries.is_empty() => s.nodes.push(n),
            _ => return r.corrupt(node_at, "damaged stream listpack"),
        }
    }
    // Ids ascend across nodes (Valkey's own dumps always do); overlapping nodes would break
    // the node counts trimming relies on.
    let mut prev: Option<Id> = None;
    for e in s.nodes.iter().flat_map(|n| &n.entries) {
        if prev.is_some_and(|p| p >= e.id) {
            return r.corrupt(at, "stream entry ids out of order");
        }
        prev = Some(e.id);
    }
    s.length = r.length()?;
    s.last_id = read_id(r)?;
    let live = s
        .nodes
        .iter()
        .flat_map(|n| &n.entries)
        .filter(|e| !e.deleted);
    let first_live = live.clone().next().map(|e| e.id);
    if live.count() as u64 != s.length {
        return r.corrupt(at, "stream length does not match its entries");
    }
    if ty >= TYPE_STREAM_LISTPACKS_2 {
        s.first_id = read_id(r)?;
        s.max_deleted = read_id(r)?;
        s.entries_added = r.length()?;
    } else {
        s.first_id = first_live.unwrap_or((0, 0));
        s.entries_added = s.length;
    }
    let groups = r.length()?;
    for _ in 0..groups {
        let name = r.string()?;
        let last_id = read_id(r)?;
        let entries_read = if ty >= TYPE_STREAM_LISTPACKS_2 {
            r.length()? as i64
        } else {
            -1
        };
        let n = r.length()?;
        let mut pending = Vec::with_capacity(n.min(1 << 16) as usize);
        for _ in 0..n {
            let Some(id) = id_of(&r.array::<16>()?) else {
                return r.corrupt(at, "pending entry id");
            };
            let time = i64::from_le_bytes(r.array()?);
            pending.push((id, time, r.length()?));
        }
        let nc = r.length()?;
        let mut consumers = Vec::with_capacity(nc.min(1 << 16) as usize);
        for _ in 0..nc {
            let cname = r.string()?;
            let seen_time = i64::from_le_bytes(r.array()?);
            let active_time = if ty >= TYPE_STREAM_LISTPACKS_3 {
                i64::from_le_bytes(r.array()?)
            } else {
                seen_time
            };
            let np = r.length()?;
            let mut own = Vec::with_capacity(np.min(1 << 16) as usize);
            for _ in 0..np {
                match id_of(&r.array::<16>()?) {
                    Some(id) if pending.iter().any(|p| p.0 == id) => own.push(id),
                    _ => return r.corrupt(at, "consumer's pending entry is not the group's"),
                }
            }
            consumers.push(StreamConsumer {
                name: cname,
                seen_time,
                active_time,
                pending: own,
            });
        }
        let mut owned: Vec<Id> = consumers
            .iter()
            .flat_map(|c| c.pending.iter().copied())
            .collect();
        owned.sort_unstable();
        owned.dedup();
        if owned.len() != pending.len() {
            return r.corrupt(at, "pending entries without an owner");
        }
        s.groups.push(StreamGroup {
            name,
            last_id,
            entries_read,
            pending,
            consumers,
        });
    }
    Ok(s)
}

fn int(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn parse_node(master: Id, lp: &[u8]) -> Option<StreamNode> {
    let items = compact::listpack(lp)?;
    let mut it = items.into_iter();
    let next_int = |it: &mut std::vec::IntoIter<Vec<u8>>| int(&it.next()?);
    let live = next_int(&mut it)?;
    let deleted = next_int(&mut it)?;
    let nfields = usize::try_from(next_int(&mut it)?).ok()?;
    let mut master_fields = Vec::with_capacity(nfields.min(1024));
    for _ in 0..nfields {
        master_fields.push(it.next()?);
    }
    if next_int(&mut it)? != 0 {
        return None;
    }
    let mut entries = Vec::new();
    while let Some(flags) = it.next() {
        let flags = int(&flags)?;
        let ms = master.0.wrapping_add(next_int(&mut it)? as u64);
        let seq = master.1.wrapping_add(next_int(&mut it)? as u64);
        let fields = if flags & FLAG_SAMEFIELDS != 0 {
            let mut f = Vec::with_capacity(nfields);
            for m in &master_fields {
                f.push((m.clone(), it.next()?));
            }
            f
        } else {
            let n = usize::try_from(next_int(&mut it)?).ok()?;
            let mut f = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let k = it.next()?;
                f.push((k, it.next()?));
            }
            f
        };
        next_int(&mut it)?; // lp-count
        entries.push(StreamEntry {
            id: (ms, seq),
            deleted: flags & FLAG_DELETED != 0,
            fields,
        });
    }
    let dead = entries.iter().filter(|e| e.deleted).count() as i64;
    (dead == deleted && entries.len() as i64 - dead == live).then_some(StreamNode {
        master,
        master_fields,
        entries,
    })
}

/// Builds a listpack of integer and string elements (strings that spell an integer are stored
/// as integers, as Valkey's listpacks store them).
struct Listpack {
    body: Vec<u8>,
    count: usize,
}

#[derive(Clone, Copy)]
enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Listpack {
    fn new() -> Listpack {
        Listpack {
            body: Vec::new(),
            count: 0,
        }
    }

    fn push(&mut self, e: Elem) {
        let start = self.body.len();
        let b = &mut self.body;
        let v = match e {
            Elem::Int(v) => Some(v),
            Elem::Str(s) => super::object::canonical_int(s),
        };
        match (v, e) {
            (Some(v), _) => match v {
                0..=127 => b.push(v as u8),
                -4096..=4095 => {
                    let u = (v as u16) & 0x1fff;
                    b.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
                }
                -32768..=32767 => {
                    b.push(0xf1);
                    b.extend_from_slice(&(v as i16).to_le_bytes());
                }
                -8388608..=8388607 => {
                    b.push(0xf2);
                    b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
                }
                -2147483648..=2147483647 => {
                    b.push(0xf3);
                    b.extend_from_slice(&(v as i32).to_le_bytes());
                }
                _ => {
                    b.push(0xf4);
                    b.extend_from_slice(&v.to_le_bytes());
                }
            },
            (None, Elem::Str(s)) => {
                let l = s.len();
                if l <= 63 {
                    b.push(0x80 | l as u8);
                } else if l <= 4095 {
                    b.extend_from_slice(&[0xe0 | (l >> 8) as u8, l as u8]);
                } else {
                    b.push(0xf0);
                    b.extend_from_slice(&(l as u32).to_le_bytes());
                }
                b.extend_from_slice(s);
            }
            (None, Elem::Int(_)) => {}
        }
        let l = self.body.len() - start;
        let back: Vec<u8> = match l {
            0..=127 => vec![l as u8],
            128..=16382 => vec![(l >> 7) as u8, (l & 127) as u8 | 128],
            16383..=2097150 => vec![
                (l >> 14) as u8,
                ((l >> 7) & 127) as u8 | 128,
                (l & 127) as u8 | 128,
            ],
            2097151..=268435454 => vec![
                (l >> 21) as u8,
                ((l >> 14) & 127) as u8 | 128,
                ((l >> 7) & 127) as u8 | 128,
                (l & 127) as u8 | 128,
            ],
            _ => vec![
                (l >> 28) as u8,
                ((l >> 21) & 127) as u8 | 128,
                ((l >> 14) & 127) as u8 | 128,
                ((l >> 7) & 127) as u8 | 128,
                (l & 127) as u8 | 128,
            ],
        };
        self.body.extend_from_slice(&back);
        self.count += 1;
    }

    fn finish(self) -> Vec<u8> {
        let total = 6 + self.body.len() + 1;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(self.count.min(u16::MAX as usize) as u16).to_le_bytes());
        out.extend_from_slice(&self.body);
        out.push(0xff);
        out
    }
}

fn node_listpack(n: &StreamNode) -> Vec<u8> {
    let mut lp = Listpack::new();
    let dead = n.entries.iter().filter(|e| e.deleted).count();
    lp.push(Elem::Int((n.entries.len() - dead) as i64));
    lp.push(Elem::Int(dead as i64));
    lp.push(Elem::Int(n.master_fields.len() as i64));
    for f in &n.master_fields {
        lp.push(Elem::Str(f));
    }
    lp.push(Elem::Int(0));
    for e in &n.entries {
        let same = e.fields.len() == n.master_fields.len()
            && e.fields
                .iter()
                .zip(&n.master_fields)
                .all(|((f, _), m)| f == m);
        let mut flags = if same { FLAG_SAMEFIELDS } else { 0 };
        if e.deleted {
            flags |= FLAG_DELETED;
        }
        lp.push(Elem::Int(flags));
        lp.push(Elem::Int(e.id.0.wrapping_sub(n.master.0) as i64));
        lp.push(Elem::Int(e.id.1.wrapping_sub(n.master.1) as i64));
        let k = e.fields.len() as i64;
        if same {
            for (_, v) in &e.fields {
                lp.push(Elem::Str(v));
            }
            lp.push(Elem::Int(3 + k));
        } else {
            lp.push(Elem::Int(k));
            for (f, v) in &e.fields {
                lp.push(Elem::Str(f));
                lp.push(Elem::Str(v));
            }
            lp.push(Elem::Int(4 + 2 * k));
        }
    }
    lp.finish()
}

/// Writes `s` as type 21 (without the type byte).
pub fn write_stream(out: &mut Vec<u8>, s: &StreamObject) {
    write_len(out, s.nodes.len() as u64);
    for n in &s.nodes {
        write_string(out, &id_bytes(n.master));
        write_string(out, &node_listpack(n));
    }
    write_len(out, s.length);
    for id in [s.last_id, s.first_id, s.max_deleted] {
        write_len(out, id.0);
        write_len(out, id.1);
    }
    write_len(out, s.entries_added);
    write_len(out, s.groups.len() as u64);
    for g in &s.groups {
        write_string(out, &g.name);
        write_len(out, g.last_id.0);
        write_len(out, g.last_id.1);
        write_len(out, g.entries_read as u64);
        write_len(out, g.pending.len() as u64);
        for (id, time, count) in &g.pending {
            out.extend_from_slice(&id_bytes(*id));
            out.extend_from_slice(&time.to_le_bytes());
            write_len(out, *count);
        }
        write_len(out, g.consumers.len() as u64);
        for c in &g.consumers {
            write_string(out, &c.name);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            out.extend_from_slice(&c.active_time.to_le_bytes());
            write_len(out, c.pending.len() as u64);
            for id in &c.pending {
                out.extend_from_slice(&id_bytes(*id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_elements_read_back() {
        let mut lp = Listpack::new();
        let big = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let ints = [
            0,
            127,
            128,
            -1,
            4095,
            -4096,
            30000,
            -8388608,
            2147483647,
            i64::MIN,
        ];
        for v in ints {
            lp.push(Elem::Int(v));
        }
        for s in [&b""[..], b"abc", &mid, &big, b"12", b"012"] {
            lp.push(Elem::Str(s));
        }
        let got = compact::listpack(&lp.finish()).expect("a valid listpack");
        let mut want: Vec<Vec<u8>> = ints.iter().map(|v| v.to_string().into_bytes()).collect();
        for s in [&b""[..], b"abc", &mid, &big, b"12", b"012"] {
            want.push(s.to_vec());
        }
        assert_eq!(got, want);
    }

    #[test]
    fn stream_round_trips() {
        let node = StreamNode {
            master: (5, 0),
            master_fields: vec![b"f".to_vec()],
            entries: vec![
                StreamEntry {
                    id: (5, 0),
                    deleted: true,
                    fields: vec![(b"f".to_vec(), b"1".to_vec())],
                },
                StreamEntry {
                    id: (9, 3),
                    deleted: false,
                    fields: vec![
                        (b"g".to_vec(), b"v".to_vec()),
                        (b"h".to_vec(), b"".to_vec()),
                    ],
                },
            ],
        };
        let s = StreamObject {
            nodes: vec![node],
            length: 1,
            last_id: (9, 3),
            first_id: (9, 3),
            max_deleted: (5, 0),
            entries_added: 2,
            groups: vec![StreamGroup {
                name: b"g".to_vec(),
                last_id: (9, 3),
                entries_read: -1,
                pending: vec![((9, 3), 1_700_000_000_000, 2)],
                consumers: vec![StreamConsumer {
                    name: b"c".to_vec(),
                    seen_time: 7,
                    active_time: -1,
                    pending: vec![(9, 3)],
                }],
            }],
        };
        let mut out = Vec::new();
        write_stream(&mut out, &s);
        let back = read_stream(&mut Reader::new(&out[..]), TYPE_STREAM_LISTPACKS_3).unwrap();
        assert_eq!(back, s);
        // Entries out of order are refused.
        let mut bad = s.clone();
        bad.nodes[0].entries.swap(0, 1);
        let mut out = Vec::new();
        write_stream(&mut out, &bad);
        assert!(read_stream(&mut Reader::new(&out[..]), TYPE_STREAM_LISTPACKS_3).is_err());
        // A consumer naming an id the group does not have pending is refused.
        let mut bad = s.clone();
        bad.groups[0].consumers[0].pending = vec![(1, 1)];
        let mut out = Vec::new();
        write_stream(&mut out, &bad);
        assert!(read_stream(&mut Reader::new(&out[..]), TYPE_STREAM_LISTPACKS_3).is_err());
    }
}

//! A stream's nodes: runs of appended entries standing for Valkey's listpack nodes, with the
//! listpack byte count Valkey closes a node at, so approximate trimming (`~`) removes the same
//! whole nodes and XINFO's `radix-tree-keys` counts the same nodes as valkey-server.
//!
//! Must not: hold entries (they are records of their own, see `stream`).

use super::stream::{take_bytes, StreamId};
use super::{CorruptRecord, Result};

/// One run of appended entries (Valkey's listpack node).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub first: StreamId,
    /// The last id appended to it (deleted or not).
    pub last: StreamId,
    /// Entries appended to it, deleted ones included (what closes it).
    pub total: u64,
    pub live: u64,
    /// Listpack bytes of its entries (see [`NodeLimits`]).
    pub bytes: u64,
    /// The field names of its first entry (entries with the same names store values only).
    pub master: Vec<Vec<u8>>,
}

impl NodeInfo {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut v = self.last.bytes().to_vec();
        v.extend_from_slice(&self.total.to_be_bytes());
        v.extend_from_slice(&self.live.to_be_bytes());
        v.extend_from_slice(&self.bytes.to_be_bytes());
        v.extend_from_slice(&(self.master.len() as u32).to_be_bytes());
        for f in &self.master {
            v.extend_from_slice(&(f.len() as u32).to_be_bytes());
            v.extend_from_slice(f);
        }
        v
    }

    pub(super) fn decode(suffix: &[u8], v: &[u8]) -> Result<NodeInfo> {
        let bad = || CorruptRecord("stream node");
        let u = |at: usize| -> std::result::Result<u64, CorruptRecord> {
            Ok(u64::from_be_bytes(
                v.get(at..at + 8)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?,
            ))
        };
        let mut rest = v.get(40..).ok_or_else(bad)?;
        let n = u32::from_be_bytes(
            rest.get(..4)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        rest = &rest[4..];
        let mut master = Vec::with_capacity(n.min(256) as usize);
        for _ in 0..n {
            master.push(take_bytes(&mut rest)?.to_vec());
        }
        Ok(NodeInfo {
            first: StreamId::from_bytes(suffix.get(1..).ok_or_else(bad)?).ok_or_else(bad)?,
            last: StreamId::from_bytes(v).ok_or_else(bad)?,
            total: u(16)?,
            live: u(24)?,
            bytes: u(32)?,
            master,
        })
    }

    /// The node's listpack size as Valkey counts it: header (counts, master fields) + entries.
    pub(super) fn lp_bytes(&self) -> u64 {
        let mut h = 7 + lp_int(self.live as i64) + lp_int((self.total - self.live) as i64);
        h += lp_int(self.master.len() as i64) + lp_int(0);
        h += self.master.iter().map(|f| lp_str(f)).sum::<u64>();
        h + self.bytes
    }

    /// Listpack bytes of entry `id` with `fields` in this node.
    pub(super) fn entry_bytes(&self, id: StreamId, fields: &[(Vec<u8>, Vec<u8>)]) -> u64 {
        let same = fields.len() == self.master.len()
            && fields.iter().zip(&self.master).all(|((f, _), m)| f == m);
        let n = fields.len() as i64;
        let mut b = lp_int(if same { 2 } else { 0 });
        b += lp_int(id.ms.wrapping_sub(self.first.ms) as i64);
        b += lp_int(id.seq.wrapping_sub(self.first.seq) as i64);
        if same {
            b += fields.iter().map(|(_, v)| lp_str(v)).sum::<u64>();
            b + lp_int(3 + n)
        } else {
            b += lp_int(n)
                + fields
                    .iter()
                    .map(|(f, v)| lp_str(f) + lp_str(v))
                    .sum::<u64>();
            b + lp_int(4 + 2 * n)
        }
    }
}

fn lp_int(v: i64) -> u64 {
    let e = match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    };
    e + crate::rdb::backlen_size(e as usize) as u64
}

fn lp_str(s: &[u8]) -> u64 {
    if let Some(v) = crate::rdb::canonical_int(s) {
        return lp_int(v);
    }
    let l = s.len() as u64;
    let e = match l {
        0..=63 => 1 + l,
        64..=4095 => 2 + l,
        _ => 5 + l,
    };
    e + crate::rdb::backlen_size(e as usize) as u64
}

/// When Valkey closes the last node and starts a new one (`stream-node-max-entries`,
/// `stream-node-max-bytes`; 0 entries means no count limit).
#[derive(Debug, Clone, Copy)]
pub struct NodeLimits {
    pub entries: u64,
    pub bytes: u64,
}

impl NodeLimits {
    pub(super) fn full(&self, n: &NodeInfo, fields: &[(Vec<u8>, Vec<u8>)]) -> bool {
        let add: u64 = fields.iter().map(|(f, v)| (f.len() + v.len()) as u64).sum();
        let max_bytes = if self.bytes == 0 || self.bytes > 1 << 30 {
            1 << 30
        } else {
            self.bytes
        };
        n.lp_bytes() + add >= max_bytes || (self.entries != 0 && n.total >= self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_bytes_match_valkey_listpacks() {
        // Valkey 8.1 keeps 36 entries of `f` → 100 bytes per node: an 18-byte header and
        // 111 bytes an entry, until adding the next one would reach 4096 bytes.
        let fields = vec![(b"f".to_vec(), vec![b'x'; 100])];
        let limits = NodeLimits {
            entries: 100,
            bytes: 4096,
        };
        let mut n = NodeInfo {
            first: StreamId::new(1, 0),
            last: StreamId::new(1, 0),
            total: 0,
            live: 0,
            bytes: 0,
            master: vec![b"f".to_vec()],
        };
        assert_eq!(n.lp_bytes(), 18);
        let mut kept = 0;
        for ms in 1..=100 {
            if kept > 0 && limits.full(&n, &fields) {
                break;
            }
            n.bytes += n.entry_bytes(StreamId::new(ms, 0), &fields);
            n.total += 1;
            n.live += 1;
            kept += 1;
        }
        assert_eq!(kept, 36);
        assert_eq!(n.entry_bytes(StreamId::new(2, 0), &fields), 111);
        assert_eq!(crate::rdb::canonical_int(b"-5"), Some(-5));
        for s in [&b"01"[..], b"+1", b" 1", b"-0", b""] {
            assert_eq!(crate::rdb::canonical_int(s), None);
        }
    }
}

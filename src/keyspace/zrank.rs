//! Rank blocks for sorted sets: the score index is cut into blocks of at most [`SPLIT`]
//! entries, each a record `[slot][5][key len][key][first position]` holding its entry count.
//! A rank (ZRANK, ZRANGE by index) sums the counts of the blocks before the one it falls in,
//! then walks at most one block: about n/1000 + 2000 records instead of up to n.
//!
//! Writes keep the counts exact in the same batch as the entries they count; a block that
//! grows past [`SPLIT`] is cut in two, an emptied block other than the first is dropped.
//! A set without block records (none written yet) counts as one block from its first entry.
//!
//! Must not: be read or written outside a sorted set's own write (the key's lock is held).

use std::collections::BTreeMap;

use super::encoding::{rank_key, rank_prefix};
use super::overlay::Reader;
use super::zset::ZView;
use super::{DbSlot, Result};
use crate::storage::Batch;

/// A block is cut in two when it holds more entries than this.
pub const SPLIT: u64 = 2048;
/// Blocks built at once (RESTORE) hold this many entries.
const FILL: usize = 1024;

fn decode_count(v: &[u8]) -> u64 {
    v.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// The block holding index position `pos`: (its first position, its count).
fn block_of(src: &Reader, slot: DbSlot, key: &[u8], pos: &[u8]) -> Result<Option<(Vec<u8>, u64)>> {
    let p = rank_prefix(slot, key);
    let n = p.len();
    let mut to = rank_key(slot, key, pos);
    to.push(0);
    let mut found = None;
    src.scan(&p, &to, true, |k, v| {
        found = Some((k[n..].to_vec(), decode_count(v)));
        false
    })?;
    Ok(found)
}

/// Positions touched by one write above which every block is loaded in one scan rather than
/// looked up one by one.
const FEW: usize = 16;

/// Every block of the set at `key`: (first position, count), in order.
fn all_blocks(src: &Reader, slot: DbSlot, key: &[u8]) -> Result<Vec<(Vec<u8>, u64)>> {
    let (p, end) = super::encoding::rank_range(slot, key);
    let n = p.len();
    let mut out = Vec::new();
    src.scan(&p, &end, false, |k, v| {
        out.push((k[n..].to_vec(), decode_count(v)));
        true
    })?;
    Ok(out)
}

impl ZView<'_> {
    /// Entries before index position `pos`.
    pub(super) fn entries_before(&self, pos: &[u8]) -> Result<u64> {
        let p = rank_prefix(self.slot, self.key);
        let n = p.len();
        let mut to = rank_key(self.slot, self.key, pos);
        to.push(0);
        let (mut before, mut last): (u64, Option<(Vec<u8>, u64)>) = (0, None);
        self.src.scan(&p, &to, false, |k, v| {
            if let Some((_, c)) = last.take() {
                before += c;
            }
            last = Some((k[n..].to_vec(), decode_count(v)));
            true
        })?;
        let from = last.map(|(b, _)| b).unwrap_or_default();
        let mut within = 0u64;
        self.walk(Some(&from), Some(pos), false, |_, _| {
            within += 1;
            true
        })?;
        Ok(before + within)
    }

    /// The index position of the entry at 0-based `index` (lowest score first).
    pub fn nth(&self, index: u64) -> Result<Option<Vec<u8>>> {
        if index >= self.len {
            return Ok(None);
        }
        let p = rank_prefix(self.slot, self.key);
        let n = p.len();
        let (_, end) = super::encoding::rank_range(self.slot, self.key);
        let (mut before, mut from) = (0u64, Vec::new());
        self.src.scan(&p, &end, false, |k, v| {
            let c = decode_count(v);
            if before + c > index {
                from = k[n..].to_vec();
                return false;
            }
            before += c;
            true
        })?;
        let mut skip = index - before;
        let mut out = None;
        self.walk(Some(&from), None, false, |m, s| {
            if skip == 0 {
                out = Some(super::zset::index_position(s, m));
                return false;
            }
            skip -= 1;
            true
        })?;
        Ok(out)
    }
}

/// Stages the block-count changes for index positions `removed` and `added` of the set at
/// `key` (stored length `old_len`), reading entries through `src`, which must already see the
/// entry changes themselves.
pub(super) fn stage_blocks(
    src: &Reader,
    slot: DbSlot,
    key: &[u8],
    old_len: u64,
    removed: &[Vec<u8>],
    added: &[Vec<u8>],
    batch: &mut Batch,
) -> Result<()> {
    // Block first position -> (stored count, new count). A set without block records is
    // one block from its start holding `old_len` entries.
    let loaded = if removed.len() + added.len() <= FEW {
        let mut v = Vec::new();
        for p in removed.iter().chain(added) {
            v.extend(block_of(src, slot, key, p)?);
        }
        v
    } else {
        all_blocks(src, slot, key)?
    };
    let mut blocks: BTreeMap<Vec<u8>, (u64, u64)> = loaded
        .into_iter()
        .map(|(first, c)| (first, (c, c)))
        .collect();
    if blocks.is_empty() {
        blocks.insert(Vec::new(), (old_len, old_len));
    }
    let mut adjust = |pos: &[u8], up: bool| {
        if let Some((_, (_, c))) = blocks
            .range_mut::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(pos)))
            .next_back()
        {
            *c = if up { *c + 1 } else { c.saturating_sub(1) };
        }
    };
    for p in removed {
        adjust(p, false);
    }
    for p in added {
        adjust(p, true);
    }
    for (first, (stored, count)) in blocks {
        if count == stored && !first.is_empty() {
            continue;
        }
        if count == 0 && !first.is_empty() {
            batch.delete(rank_key(slot, key, &first));
            continue;
        }
        if count <= SPLIT {
            batch.put(rank_key(slot, key, &first), count.to_be_bytes().to_vec());
            continue;
        }
        // Cut into blocks of FILL entries (entries as they are after this write).
        let z = ZView {
            src: *src,
            slot,
            key,
            len: 0,
        };
        let (mut seen, mut start, mut starts) = (0u64, first.clone(), Vec::new());
        z.walk(Some(&first), None, false, |m, s| {
            if seen == count {
                return false;
            }
            if seen > 0 && seen % FILL as u64 == 0 {
                starts.push((
                    std::mem::replace(&mut start, super::zset::index_position(s, m)),
                    FILL as u64,
                ));
            }
            seen += 1;
            true
        })?;
        let rest = seen - FILL as u64 * starts.len() as u64;
        starts.push((start, rest));
        for (b, c) in starts {
            batch.put(rank_key(slot, key, &b), c.to_be_bytes().to_vec());
        }
    }
    Ok(())
}

/// Block records for a whole set written at once, `positions` sorted.
pub(super) fn stage_fresh_blocks(
    slot: DbSlot,
    key: &[u8],
    positions: &[Vec<u8>],
    batch: &mut Batch,
) {
    for (i, chunk) in positions.chunks(FILL).enumerate() {
        let first = if i == 0 { Vec::new() } else { chunk[0].clone() };
        batch.put(
            rank_key(slot, key, &first),
            (chunk.len() as u64).to_be_bytes().to_vec(),
        );
    }
}

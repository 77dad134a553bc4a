//! OBJECT ENCODING's answers from the encoding thresholds as configured now
//! (`hash-max-listpack-*`, `set-max-intset-entries`, `set-max-listpack-*`,
//! `zset-max-listpack-*`, `list-max-listpack-size`), and the same rule for the SCAN family
//! (a listpack or intset answers in one reply).
//!
//! rockslot stores every type the same way, so the answer describes the value's current size
//! and contents; Valkey's also depends on history (a set that grew past a threshold and
//! shrank stays `hashtable` there, a string changed by APPEND stays `raw`).

use crate::node::Node;

/// The thresholds, from the live configuration's typed fields.
pub struct Limits {
    pub hash_entries: u64,
    pub hash_value: usize,
    pub set_intset: u64,
    pub set_entries: u64,
    pub set_value: usize,
    pub zset_entries: u64,
    pub zset_value: usize,
    /// Positive: entries per listpack; -1 to -5: 4 KB to 64 KB.
    pub list_size: i64,
}

impl Limits {
    pub fn of(node: &Node) -> Limits {
        let c = node.config.snapshot();
        Limits {
            hash_entries: c.hash_max_listpack_entries,
            hash_value: c.hash_max_listpack_value as usize,
            set_intset: c.set_max_intset_entries,
            set_entries: c.set_max_listpack_entries,
            set_value: c.set_max_listpack_value as usize,
            zset_entries: c.zset_max_listpack_entries,
            zset_value: c.zset_max_listpack_value as usize,
            list_size: c.list_max_listpack_size,
        }
    }

    /// Bytes a list's single listpack may take (negative `list-max-listpack-size`).
    fn list_bytes(&self) -> Option<usize> {
        (self.list_size < 0).then(|| 4096usize << (self.list_size.clamp(-5, -1).unsigned_abs() - 1))
    }

    /// Whether [`Limits::list_is_listpack`] needs the elements of a list this long.
    pub fn list_needs_elements(&self, len: u64) -> bool {
        self.list_bytes()
            .is_some_and(|limit| len as usize <= limit / 2)
    }

    /// Whether a list of `len` elements (`elems`, when [`Limits::list_needs_elements`]) is one
    /// listpack.
    pub fn list_is_listpack(&self, len: u64, elems: &[Vec<u8>]) -> bool {
        match self.list_bytes() {
            None => len <= self.list_size as u64,
            // Every entry takes at least two bytes, so longer lists cannot fit.
            Some(limit) if len as usize > limit / 2 => false,
            Some(limit) => 7 + elems.iter().map(|e| listpack_entry_len(e)).sum::<usize>() <= limit,
        }
    }
}

/// The integer `s` spells when it is in canonical form (what Valkey encodes as an integer).
pub fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.len() > 20 {
        return None;
    }
    let v: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (v.to_string().as_bytes() == s).then_some(v)
}

/// A string's encoding: `int`, `embstr` up to 44 bytes, else `raw`.
pub fn string(b: &[u8]) -> &'static str {
    if canonical_int(b).is_some() {
        "int"
    } else if b.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// Bytes one element takes in a listpack, back-length included.
fn listpack_entry_len(e: &[u8]) -> usize {
    let body = match canonical_int(e) {
        Some(v) if (0..=127).contains(&v) => 1,
        Some(v) if (-4096..4096).contains(&v) => 2,
        Some(v) if i16::try_from(v).is_ok() => 3,
        Some(v) if (-(1 << 23)..(1 << 23)).contains(&v) => 4,
        Some(v) if i32::try_from(v).is_ok() => 5,
        Some(_) => 9,
        None if e.len() < 64 => 1 + e.len(),
        None if e.len() < 4096 => 2 + e.len(),
        None => 5 + e.len(),
    };
    body + match body {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_listpack_sizes() {
        assert_eq!(string(b"123"), "int");
        assert_eq!(string(b"-9223372036854775808"), "int");
        assert_eq!(string(b"0123"), "embstr");
        assert_eq!(string(b"+1"), "embstr");
        assert_eq!(string(&[b'a'; 44]), "embstr");
        assert_eq!(string(&[b'a'; 45]), "raw");
        assert_eq!(listpack_entry_len(b"5"), 2);
        assert_eq!(listpack_entry_len(b"hello"), 7);
        assert_eq!(listpack_entry_len(&[b'x'; 100]), 103);
    }
}

//! Hash slots: the slot of a key, the slot prefix of a stored record, and inclusive slot
//! ranges with their text forms. A leaf: it imports nothing from the crate.
//!
//! Must not: know storage families, cluster state or commands; it is arithmetic on slots.

/// Number of hash slots, as in Valkey.
pub const SLOTS: usize = 16384;

/// Inclusive slot ranges, sorted and disjoint where a caller built them from a set of slots.
pub type Ranges = Vec<(u16, u16)>;

/// Valkey's key hash slot: CRC16 (XMODEM) of the key, or of its first non-empty `{hash tag}`.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&c| c == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&c| c == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16::State::<crc16::XMODEM>::calculate(hashed) & 0x3fff
}

/// Numbered databases a node can hold: the database shares the kind byte after the slot
/// (`db << 3 | kind`), so a record prefix stays three bytes and database 0's records are the
/// format-1 layout unchanged.
pub const MAX_DATABASES: usize = 32;
/// Record kinds per database (the low three bits of the kind byte).
pub const KINDS_PER_DB: u8 = 8;

/// Where a key's records live: its slot and its (physical) database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DbSlot {
    pub db: u8,
    pub slot: u16,
}

impl DbSlot {
    pub fn new(db: u8, slot: u16) -> DbSlot {
        DbSlot { db, slot }
    }
    /// The place of `key` in database `db`.
    pub fn of(db: u8, key: &[u8]) -> DbSlot {
        DbSlot {
            db,
            slot: key_slot(key),
        }
    }
    /// `[slot u16 BE][db << 3 | kind]`: the first bytes of every record of this kind here.
    pub fn prefix(self, kind: u8) -> [u8; 3] {
        let s = self.slot.to_be_bytes();
        [s[0], s[1], kind_byte(self.db, kind)]
    }
}

impl DbSlot {
    /// The first key after every record of this place, so `[prefix(0), end())` is the whole
    /// database's part of the slot (for the last database it is the next slot's prefix).
    pub fn end(self) -> Vec<u8> {
        let last = self.prefix(KINDS_PER_DB - 1);
        if last[2] < u8::MAX {
            vec![last[0], last[1], last[2] + 1]
        } else {
            ((self.slot as u32 + 1) as u16).to_be_bytes().to_vec()
        }
    }
}

pub fn kind_byte(db: u8, kind: u8) -> u8 {
    (db << 3) | (kind & (KINDS_PER_DB - 1))
}

/// `(db, kind)` of a record's third byte.
pub fn split_kind(b: u8) -> (u8, u8) {
    (b >> 3, b & (KINDS_PER_DB - 1))
}

/// The slot a stored data record belongs to: its first two bytes (u16 big-endian).
pub fn record_slot(record_key: &[u8]) -> Option<u16> {
    match record_key {
        [a, b, ..] => Some(u16::from_be_bytes([*a, *b]) & (SLOTS as u16 - 1)),
        _ => None,
    }
}

pub fn in_ranges(ranges: &[(u16, u16)], slot: u16) -> bool {
    ranges.iter().any(|(a, b)| (*a..=*b).contains(&slot))
}

/// Ranges covering `slots`, which must be sorted ascending.
pub fn ranges_of(slots: &[u16]) -> Ranges {
    let mut out: Ranges = Vec::new();
    for &s in slots {
        match out.last_mut() {
            Some((_, b)) if *b + 1 == s => *b = s,
            Some((_, b)) if *b >= s => {}
            _ => out.push((s, s)),
        }
    }
    out
}

/// Ranges of the set entries of a slot mask (`mask[slot]`).
pub fn ranges_of_mask(mask: &[bool]) -> Ranges {
    let slots: Vec<u16> = (0..mask.len().min(SLOTS))
        .filter(|&s| mask[s])
        .map(|s| s as u16)
        .collect();
    ranges_of(&slots)
}

/// `0-99 200-200`: how logs and GETSLOTMIGRATIONS print ranges.
pub fn ranges_text(r: &[(u16, u16)]) -> String {
    r.iter()
        .map(|(a, b)| format!("{a}-{b}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `0-99,200`: the compact form used on command lines and in backup manifests.
pub fn ranges_compact(r: &[(u16, u16)]) -> String {
    r.iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("bad slot range {0}")]
pub struct BadRange(pub String);

/// Parses the compact form (`0-99,200`); single slots and `a-b` with `a <= b < 16384`.
pub fn parse_ranges_compact(s: &str) -> Result<Ranges, BadRange> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                (Ok(a), Ok(b)) if a <= b && (b as usize) < SLOTS => Ok((a, b)),
                _ => Err(BadRange(r.to_string())),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_slots() {
        assert_eq!(
            crc16::State::<crc16::XMODEM>::calculate(b"123456789"),
            0x31c3
        );
        assert_eq!(key_slot(b"key1"), 9189);
        assert_eq!(DbSlot::new(0, 5).end(), vec![0, 5, 8]);
        assert_eq!(DbSlot::new(3, 5).prefix(1), [0, 5, 25]);
        assert_eq!(DbSlot::new(31, 5).end(), vec![0, 6]);
        assert!(DbSlot::new(31, 5).prefix(7).as_slice() < DbSlot::new(31, 5).end().as_slice());
        assert_eq!(split_kind(kind_byte(31, 7)), (31, 7));
        assert_eq!(key_slot(b"key2"), 4998);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }

    #[test]
    fn ranges_round_trip() {
        let r = ranges_of(&[0, 1, 2, 5, 7, 8]);
        assert_eq!(r, vec![(0, 2), (5, 5), (7, 8)]);
        assert_eq!(ranges_text(&r), "0-2 5-5 7-8");
        assert_eq!(ranges_compact(&r), "0-2,5,7-8");
        assert_eq!(parse_ranges_compact("0-2,5,7-8").unwrap(), r);
        assert!(parse_ranges_compact("5-2").is_err());
        assert!(parse_ranges_compact("16384").is_err());
        let mut mask = vec![false; SLOTS];
        mask[16383] = true;
        mask[0] = true;
        assert_eq!(ranges_of_mask(&mask), vec![(0, 0), (16383, 16383)]);
        assert_eq!(record_slot(&[0x3f, 0xff, 1]), Some(16383));
        assert_eq!(record_slot(&[1]), None);
        assert!(in_ranges(&r, 8) && !in_ranges(&r, 6));
    }
}

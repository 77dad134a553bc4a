//! `notify-keyspace-events`: Valkey's event classes as a bit set, read from and shown as its
//! flag letters (`CONFIG GET` answers what valkey-server answers for the same input).

/// A set of keyspace event classes (Valkey's `NOTIFY_*` bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyspaceEvents(pub u16);

impl KeyspaceEvents {
    pub const KEYSPACE: u16 = 1 << 0;
    pub const KEYEVENT: u16 = 1 << 1;
    pub const GENERIC: u16 = 1 << 2;
    pub const STRING: u16 = 1 << 3;
    pub const LIST: u16 = 1 << 4;
    pub const SET: u16 = 1 << 5;
    pub const HASH: u16 = 1 << 6;
    pub const ZSET: u16 = 1 << 7;
    pub const EXPIRED: u16 = 1 << 8;
    pub const EVICTED: u16 = 1 << 9;
    pub const STREAM: u16 = 1 << 10;
    pub const KEY_MISS: u16 = 1 << 11;
    pub const MODULE: u16 = 1 << 12;
    pub const NEW: u16 = 1 << 13;
    /// `A`: every class but key misses and new keys, as in Valkey.
    pub const ALL: u16 = Self::GENERIC
        | Self::STRING
        | Self::LIST
        | Self::SET
        | Self::HASH
        | Self::ZSET
        | Self::EXPIRED
        | Self::EVICTED
        | Self::STREAM
        | Self::MODULE;

    const LETTERS: [(char, u16); 13] = [
        ('g', Self::GENERIC),
        ('$', Self::STRING),
        ('l', Self::LIST),
        ('s', Self::SET),
        ('h', Self::HASH),
        ('z', Self::ZSET),
        ('x', Self::EXPIRED),
        ('e', Self::EVICTED),
        ('t', Self::STREAM),
        ('d', Self::MODULE),
        ('n', Self::NEW),
        ('K', Self::KEYSPACE),
        ('E', Self::KEYEVENT),
    ];

    pub fn parse(s: &str) -> Result<KeyspaceEvents, String> {
        let mut bits = 0;
        for c in s.chars() {
            bits |= match c {
                'A' => Self::ALL,
                'm' => Self::KEY_MISS,
                _ => Self::LETTERS
                    .iter()
                    .find(|(l, _)| *l == c)
                    .map(|(_, b)| *b)
                    .ok_or_else(|| {
                        "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string()
                    })?,
            };
        }
        Ok(KeyspaceEvents(bits))
    }

    /// Valkey's letters for this set: `A` stands for all classes (and then, as in Valkey,
    /// `n` is not shown), then `K`, `E` and `m`.
    pub fn letters(self) -> String {
        let mut out = String::new();
        if self.0 & Self::ALL == Self::ALL {
            out.push('A');
        } else {
            for (l, b) in &Self::LETTERS[..11] {
                if self.0 & b != 0 {
                    out.push(*l);
                }
            }
        }
        for (l, b) in &Self::LETTERS[11..] {
            if self.0 & b != 0 {
                out.push(*l);
            }
        }
        if self.0 & Self::KEY_MISS != 0 {
            out.push('m');
        }
        out
    }

    /// Whether events of `class` are published anywhere (the class and `K` or `E`).
    pub fn wants(self, class: u16) -> bool {
        self.0 & class != 0 && self.0 & (Self::KEYSPACE | Self::KEYEVENT) != 0
    }

    /// Whether any event is published at all.
    pub fn any(self) -> bool {
        self.0 & !(Self::KEYSPACE | Self::KEYEVENT) != 0
            && self.0 & (Self::KEYSPACE | Self::KEYEVENT) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::KeyspaceEvents;

    /// What valkey-server 8.1.8's CONFIG GET answers after CONFIG SET of the same letters.
    #[test]
    fn letters_as_valkey_shows_them() {
        for (set, shown) in [
            ("AKEn", "AKE"),
            ("KEA", "AKE"),
            ("Elg", "glE"),
            ("xK", "xK"),
            ("AKEm", "AKEm"),
            ("gEn", "gnE"),
            ("z", "z"),
            ("", ""),
            ("Kn", "nK"),
        ] {
            assert_eq!(
                KeyspaceEvents::parse(set).unwrap().letters(),
                shown,
                "{set}"
            );
        }
        assert!(KeyspaceEvents::parse("q").is_err());
        assert!(KeyspaceEvents::parse("AKEn")
            .unwrap()
            .wants(KeyspaceEvents::NEW));
        assert!(
            !KeyspaceEvents::parse("A").unwrap().any(),
            "no K or E: nothing published"
        );
    }
}

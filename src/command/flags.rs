//! Command flags as a bit set, parsed at compile time from the table's Valkey-style flag words
//! (an unknown word fails the build), and rendered back in Valkey's order for COMMAND.

/// The flags of one command or subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CmdFlags(u32);

/// Valkey's flag names in the order COMMAND lists them (`movablekeys` is not a table flag:
/// it comes from the key specification).
const NAMES: [(&str, u32); 20] = [
    ("write", 1 << 0),
    ("readonly", 1 << 1),
    ("denyoom", 1 << 2),
    ("module", 1 << 3),
    ("admin", 1 << 4),
    ("pubsub", 1 << 5),
    ("noscript", 1 << 6),
    ("blocking", 1 << 7),
    ("loading", 1 << 8),
    ("stale", 1 << 9),
    ("skip_monitor", 1 << 10),
    ("skip_commandlog", 1 << 11),
    ("asking", 1 << 12),
    ("fast", 1 << 13),
    ("no_auth", 1 << 14),
    ("may_replicate", 1 << 15),
    ("no_mandatory_keys", 1 << 16),
    ("no_async_loading", 1 << 17),
    ("no_multi", 1 << 18),
    ("allow_busy", 1 << 19),
];

const fn bytes_eq(a: &[u8], start: usize, end: usize, b: &[u8]) -> bool {
    if end - start != b.len() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if a[start + i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn bit(word: &[u8], start: usize, end: usize) -> u32 {
    let mut i = 0;
    while i < NAMES.len() {
        if bytes_eq(word, start, end, NAMES[i].0.as_bytes()) {
            return NAMES[i].1;
        }
        i += 1;
    }
    panic!("unknown command flag in the command table");
}

impl CmdFlags {
    pub const WRITE: CmdFlags = CmdFlags(1 << 0);
    pub const READONLY: CmdFlags = CmdFlags(1 << 1);
    pub const ADMIN: CmdFlags = CmdFlags(1 << 4);
    pub const PUBSUB: CmdFlags = CmdFlags(1 << 5);
    pub const NOSCRIPT: CmdFlags = CmdFlags(1 << 6);
    pub const BLOCKING: CmdFlags = CmdFlags(1 << 7);
    pub const LOADING: CmdFlags = CmdFlags(1 << 8);
    pub const STALE: CmdFlags = CmdFlags(1 << 9);
    pub const ASKING: CmdFlags = CmdFlags(1 << 12);
    pub const FAST: CmdFlags = CmdFlags(1 << 13);
    pub const NO_AUTH: CmdFlags = CmdFlags(1 << 14);
    pub const NO_MULTI: CmdFlags = CmdFlags(1 << 18);
    pub const ALLOW_BUSY: CmdFlags = CmdFlags(1 << 19);

    /// Parses space-separated flag words; used in `const` table rows.
    pub const fn parse(s: &str) -> CmdFlags {
        let b = s.as_bytes();
        let mut bits = 0;
        let mut i = 0;
        while i < b.len() {
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            if i > start {
                bits |= bit(b, start, i);
            }
        }
        CmdFlags(bits)
    }

    pub const fn contains(self, other: CmdFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flag words in Valkey's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .iter()
            .filter(move |(_, b)| self.0 & b != 0)
            .map(|(n, _)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_in_valkey_order() {
        const F: CmdFlags = CmdFlags::parse("allow_busy fast  no_auth loading stale noscript");
        assert!(F.contains(CmdFlags::NO_AUTH) && !F.contains(CmdFlags::WRITE));
        let names: Vec<_> = F.names().collect();
        assert_eq!(
            names,
            [
                "noscript",
                "loading",
                "stale",
                "fast",
                "no_auth",
                "allow_busy"
            ]
        );
        assert_eq!(CmdFlags::parse(""), CmdFlags::default());
    }
}

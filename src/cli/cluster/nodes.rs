//! `CLUSTER NODES` text, parsed the way valkey-cli's cluster manager reads it, plus the pure
//! helpers built on it: the consistency signature and valkey-cli's slot-list rendering.
//!
//! Everything here is pure (no I/O) so the later verbs (reshard, rebalance, backup) and tests
//! can use it directly.

use std::fmt;

/// Number of hash slots.
pub use crate::slot::SLOTS;

/// One line of a `CLUSTER NODES` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeLine {
    pub name: String,
    pub ip: String,
    pub port: u16,
    /// Cluster bus port (after `@`); 0 when the address has none.
    pub bus_port: u16,
    /// Comma-split flags exactly as printed (`myself`, `master`, `slave`, `fail?`, …).
    pub flags: Vec<String>,
    /// Token 3 verbatim (`-` for masters).
    pub master_id: String,
    pub ping_sent: i64,
    pub ping_recv: i64,
    pub config_epoch: u64,
    /// Token 7 (`connected` / `disconnected`); empty when the line is shorter.
    pub link_state: String,
    /// Slot tokens that are not `[...]` markers, verbatim (`0-5460`, `7`).
    pub slot_tokens: Vec<String>,
    /// Owned slots as inclusive ranges, ascending as printed.
    pub slots: Vec<(u16, u16)>,
    /// `[slot->-dst]`: slot being migrated to `dst`.
    pub migrating: Vec<(u16, String)>,
    /// `[slot-<-src]`: slot being imported from `src`.
    pub importing: Vec<(u16, String)>,
}

impl NodeLine {
    pub fn has_flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }

    pub fn is_myself(&self) -> bool {
        // valkey-cli uses strstr(flags, "myself") on the whole flags token.
        self.flags.iter().any(|x| x.contains("myself"))
    }

    /// valkey-cli accepts both spellings of the replica flag.
    pub fn is_replica(&self) -> bool {
        self.has_flag("slave") || self.has_flag("replica")
    }

    /// The master this node replicates, when it is a replica.
    pub fn replicate(&self) -> Option<&str> {
        if self.is_replica() && self.master_id != "-" && !self.master_id.is_empty() {
            Some(&self.master_id)
        } else {
            None
        }
    }

    pub fn slot_count(&self) -> usize {
        self.slots
            .iter()
            .map(|&(a, b)| usize::from(b) - usize::from(a) + 1)
            .sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A line without the flags token (valkey-cli fails the load silently).
    Truncated(String),
    /// The address token has no `:` — valkey-cli prints "Error: invalid CLUSTER NODES reply".
    BadAddress(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated(l) => write!(f, "truncated CLUSTER NODES line: {l:?}"),
            ParseError::BadAddress(_) => write!(f, "invalid CLUSTER NODES reply"),
        }
    }
}

impl std::error::Error for ParseError {}

/// `ip:port[@cport][,hostname]` → (ip, port, cport). The `@` and `:` are searched from the
/// right, as valkey-cli does, so IPv6 addresses and a trailing hostname both work.
pub fn parse_address(addr: &str) -> Option<(String, u16, u16)> {
    let (rest, bus) = match addr.rfind('@') {
        Some(at) => (
            &addr[..at],
            atoi(addr[at + 1..].split(',').next().unwrap_or("")),
        ),
        None => (addr, 0),
    };
    let colon = rest.rfind(':')?;
    let port = atoi(&rest[colon + 1..]);
    Some((rest[..colon].to_string(), clamp_port(port), clamp_port(bus)))
}

fn clamp_port(p: i64) -> u16 {
    u16::try_from(p).unwrap_or(0)
}

/// C `atoi`: leading digits (with an optional sign), 0 when there are none. The tools parse
/// numbers this way, so a `1700@...`-style token yields its prefix rather than an error.
pub fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

fn slot_num(s: &str) -> Option<u16> {
    let n = atoi(s);
    (0..SLOTS as i64).contains(&n).then_some(n as u16)
}

/// Parses a whole `CLUSTER NODES` reply. Lines are split on `\n` and only terminated lines
/// count (valkey-cli drops an unterminated tail); empty lines are skipped.
pub fn parse_nodes(text: &str) -> Result<Vec<NodeLine>, ParseError> {
    let mut out = Vec::new();
    let Some(end) = text.rfind('\n') else {
        return Ok(out);
    };
    for line in text[..end].split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        out.push(parse_line(line)?);
    }
    Ok(out)
}

/// Parses one line (without its `\n`).
pub fn parse_line(line: &str) -> Result<NodeLine, ParseError> {
    let tokens: Vec<&str> = line.split(' ').collect();
    if tokens.len() < 3 {
        return Err(ParseError::Truncated(line.to_string()));
    }
    let (ip, port, bus_port) =
        parse_address(tokens[1]).ok_or_else(|| ParseError::BadAddress(line.to_string()))?;
    let tok = |i: usize| tokens.get(i).copied().unwrap_or("");
    let mut n = NodeLine {
        name: tokens[0].to_string(),
        ip,
        port,
        bus_port,
        flags: tokens[2]
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        master_id: tok(3).to_string(),
        ping_sent: atoi(tok(4)),
        ping_recv: atoi(tok(5)),
        config_epoch: u64::try_from(atoi(tok(6))).unwrap_or(0),
        link_state: tok(7).to_string(),
        ..NodeLine::default()
    };
    for t in tokens.iter().skip(8).filter(|t| !t.is_empty()) {
        if let Some(inner) = t.strip_prefix('[') {
            let inner = inner.strip_suffix(']').unwrap_or(inner);
            if let Some((slot, dst)) = inner.split_once("->-") {
                if let Some(s) = slot_num(slot) {
                    n.migrating.push((s, dst.to_string()));
                }
            } else if let Some((slot, src)) = inner.split_once("-<-") {
                if let Some(s) = slot_num(slot) {
                    n.importing.push((s, src.to_string()));
                }
            }
            continue;
        }
        n.slot_tokens.push(t.to_string());
        let range = match t.split_once('-') {
            Some((a, b)) => slot_num(a).zip(slot_num(b)),
            None => slot_num(t).map(|s| (s, s)),
        };
        if let Some((a, b)) = range.filter(|(a, b)| a <= b) {
            n.slots.push((a, b));
        }
    }
    Ok(n)
}

/// valkey-cli's configuration signature of one node's view (§2.5): for every line with slot
/// tokens, `name:tok,tok` with the tokens sorted bytewise, the entries sorted and joined by
/// `|`. `None` when no line owns a slot (valkey-cli then treats the cluster as inconsistent).
pub fn config_signature(text: &str) -> Option<String> {
    let mut configs = Vec::new();
    let end = text.rfind('\n')?;
    for line in text[..end].split('\n') {
        let tokens: Vec<&str> = line.split(' ').collect();
        // valkey-cli needs 8 separators before it looks at slots.
        if tokens.len() < 9 {
            continue;
        }
        let mut slots: Vec<&str> = tokens[8..]
            .iter()
            .copied()
            .filter(|t| !t.is_empty() && !t.starts_with('['))
            .collect();
        if slots.is_empty() {
            continue;
        }
        slots.sort_unstable();
        configs.push(format!("{}:{}", tokens[0], slots.join(",")));
    }
    if configs.is_empty() {
        return None;
    }
    configs.sort_unstable();
    Some(configs.join("|"))
}

/// valkey-cli's rendering of a slot bitmap: `[0-5460],[5462]`.
pub fn slots_string(slots: &[bool]) -> String {
    let mut out = String::new();
    for (a, b) in slot_ranges(slots) {
        if !out.is_empty() {
            out.push(',');
        }
        if a == b {
            out.push_str(&format!("[{a}]"));
        } else {
            out.push_str(&format!("[{a}-{b}]"));
        }
    }
    out
}

/// Contiguous runs of set bits as inclusive ranges.
pub fn slot_ranges(slots: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &has) in slots.iter().enumerate() {
        match (has, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, slots.len() - 1));
    }
    out
}

/// A field of an `INFO`-style text (`field:value\r\n`), as valkey-cli's `getInfoField` reads
/// it: the value ends at `\r` or `,`.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.split('\n').find_map(|line| {
        let v = line.strip_prefix(field)?.strip_prefix(':')?;
        let end = v.find(['\r', ',']).unwrap_or(v.len());
        Some(&v[..end])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3f1c0000000000000000000000000000000000aa";
    const B: &str = "9b0e0000000000000000000000000000000000bb";

    fn sample() -> String {
        format!(
            "{A} 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 7000 [5461-<-{B}] [3->-{B}]\n\
             {B} 127.0.0.1:7002@17002 master - 0 1700000000123 2 connected 5461-6999 7001-16383\n\
             c04d000000000000000000000000000000000000 127.0.0.1:7004@17004 slave {A} 0 1700000000789 1 connected\n"
        )
    }

    #[test]
    fn parses_lines() {
        let nodes = parse_nodes(&sample()).unwrap();
        assert_eq!(nodes.len(), 3);
        let me = &nodes[0];
        assert!(me.is_myself());
        assert!(!me.is_replica());
        assert_eq!(
            (me.ip.as_str(), me.port, me.bus_port),
            ("127.0.0.1", 7001, 17001)
        );
        assert_eq!(me.slots, vec![(0, 5460), (7000, 7000)]);
        assert_eq!(me.slot_count(), 5462);
        assert_eq!(me.importing, vec![(5461, B.to_string())]);
        assert_eq!(me.migrating, vec![(3, B.to_string())]);
        assert_eq!(me.config_epoch, 1);
        assert_eq!(me.link_state, "connected");
        let r = &nodes[2];
        assert!(r.is_replica());
        assert_eq!(r.replicate(), Some(A));
        assert!(r.slots.is_empty());
        assert_eq!(r.ping_recv, 1700000000789);
    }

    #[test]
    fn unterminated_tail_and_bad_address() {
        assert_eq!(parse_nodes("abc 1.2.3.4:1@2 master").unwrap().len(), 0);
        assert!(matches!(
            parse_nodes("abc noport master - 0 0 0 connected\n"),
            Err(ParseError::BadAddress(_))
        ));
        assert!(matches!(
            parse_nodes("abc\n"),
            Err(ParseError::Truncated(_))
        ));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("127.0.0.1:7000@17000"),
            Some(("127.0.0.1".into(), 7000, 17000))
        );
        assert_eq!(
            parse_address("::1:7000@17000,host.example"),
            Some(("::1".into(), 7000, 17000))
        );
        assert_eq!(parse_address(":7000@17000"), Some(("".into(), 7000, 17000)));
        assert_eq!(
            parse_address("10.0.0.1:7000"),
            Some(("10.0.0.1".into(), 7000, 0))
        );
        assert_eq!(parse_address("nocolon"), None);
    }

    #[test]
    fn signature_ignores_markers_and_order() {
        let s = config_signature(&sample()).unwrap();
        assert_eq!(s, format!("{A}:0-5460,7000|{B}:5461-6999,7001-16383"));
        // The same view, lines in another order, gives the same signature.
        let mut lines: Vec<&str> = sample().leak().lines().collect();
        lines.reverse();
        let other = lines.join("\n") + "\n";
        assert_eq!(config_signature(&other).unwrap(), s);
        // No slot owners at all → no signature.
        assert_eq!(
            config_signature(&format!(
                "{A} 127.0.0.1:7001@17001 myself,master - 0 0 0 connected\n"
            )),
            None
        );
    }

    #[test]
    fn slot_rendering() {
        let mut b = vec![false; SLOTS];
        b[..=5460].fill(true);
        b[5462] = true;
        b[16383] = true;
        assert_eq!(slots_string(&b), "[0-5460],[5462],[16383]");
        assert_eq!(slots_string(&vec![false; SLOTS]), "");
    }

    #[test]
    fn info_fields() {
        let info = "# Cluster\r\ncluster_enabled:1\r\n# Keyspace\r\ndb0:keys=3,expires=0\r\n";
        assert_eq!(info_field(info, "cluster_enabled"), Some("1"));
        assert_eq!(info_field(info, "db0"), Some("keys=3"));
        assert_eq!(info_field(info, "cluster_known_nodes"), None);
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi("17000,host"), 17000);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi("-3"), -3);
    }
}

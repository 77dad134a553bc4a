//! What a cluster node says about the cluster, parsed: the hash slot of a key
//! (CRC16/XMODEM with hashtags, computed client-side), `CLUSTER NODES` lines ([`NodeLine`]),
//! redis-cli's slot signature (client-surface §2.5), `INFO`/`CLUSTER INFO` fields.

#![allow(dead_code)]

use std::collections::BTreeMap;

use anyhow::{anyhow, ensure, Context, Result};

/// Number of hash slots.
pub const SLOTS: u16 = 16384;

// ---------------------------------------------------------------------------------------------
// Hash slots

/// `CRC16_XMODEM(hashtag(key)) & 16383`, computed client-side like every cluster client does.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16::State::<crc16::XMODEM>::calculate(hashed) & (SLOTS - 1)
}

// ---------------------------------------------------------------------------------------------
// CLUSTER NODES / CLUSTER INFO parsing

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLine {
    pub id: String,
    /// The address field as printed: `ip:port@cport[,hostname]`.
    pub addr: String,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: Vec<String>,
    /// `None` for `-`.
    pub master: Option<String>,
    pub ping_sent: u64,
    pub pong_recv: u64,
    pub config_epoch: u64,
    pub link: String,
    /// Slot tokens as printed (`a-b`, `n`, and on the myself line `[s->-id]`/`[s-<-id]`).
    pub slots: Vec<String>,
}

impl NodeLine {
    pub fn has_flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }
    pub fn is_myself(&self) -> bool {
        self.has_flag("myself")
    }
    pub fn is_master(&self) -> bool {
        self.has_flag("master")
    }
    pub fn is_replica(&self) -> bool {
        self.has_flag("slave") || self.has_flag("replica")
    }
    /// `master` / `slave` (or `?` when neither flag is set).
    pub fn role(&self) -> &'static str {
        if self.is_master() {
            "master"
        } else if self.is_replica() {
            "slave"
        } else {
            "?"
        }
    }
    /// Slot ranges (open-slot markers skipped).
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        self.slots
            .iter()
            .filter(|t| !t.starts_with('['))
            .filter_map(|t| match t.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => t.parse().ok().map(|s| (s, s)),
            })
            .collect()
    }
    pub fn slot_count(&self) -> usize {
        self.ranges()
            .iter()
            .map(|(a, b)| usize::from(*b) - usize::from(*a) + 1)
            .sum()
    }
    pub fn owns(&self, slot: u16) -> bool {
        self.ranges().iter().any(|(a, b)| (*a..=*b).contains(&slot))
    }
    /// What must be the same in every node's view once converged, and across a restart:
    /// id, address, role, master, slots (not myself, timestamps, epochs or link state).
    pub fn stable_view(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.id,
            self.addr,
            self.role(),
            self.master.as_deref().unwrap_or("-"),
            self.slots
                .iter()
                .filter(|t| !t.starts_with('['))
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
}

/// Parses a `CLUSTER NODES` reply; every line must end with `\n` (client-surface §1.7).
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<NodeLine>> {
    ensure!(
        text.is_empty() || text.ends_with('\n'),
        "CLUSTER NODES reply does not end with \\n: {text:?}"
    );
    let mut out = Vec::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split(' ').collect();
        ensure!(t.len() >= 8, "CLUSTER NODES line with < 8 fields: {line:?}");
        ensure!(
            t[0].len() == 40
                && t[0]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "node id is not 40 lowercase hex: {line:?}"
        );
        let hostport_cport = t[1].split(',').next().unwrap_or("");
        let (hostport, cport) = hostport_cport
            .rsplit_once('@')
            .ok_or_else(|| anyhow!("address lacks @cport: {line:?}"))?;
        let (ip, port) = hostport
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("address lacks :port: {line:?}"))?;
        let num = |s: &str| -> Result<u64> {
            s.parse()
                .with_context(|| format!("bad number {s:?} in {line:?}"))
        };
        out.push(NodeLine {
            id: t[0].to_string(),
            addr: t[1].to_string(),
            ip: ip.to_string(),
            port: port
                .parse()
                .with_context(|| format!("bad port in {line:?}"))?,
            cport: cport
                .parse()
                .with_context(|| format!("bad cport in {line:?}"))?,
            flags: t[2].split(',').map(String::from).collect(),
            master: (t[3] != "-").then(|| t[3].to_string()),
            ping_sent: num(t[4])?,
            pong_recv: num(t[5])?,
            config_epoch: num(t[6])?,
            link: t[7].to_string(),
            slots: t[8..].iter().map(|s| s.to_string()).collect(),
        });
    }
    Ok(out)
}

/// redis-cli's `clusterManagerGetConfigSignature` (client-surface §2.5): over lines with at
/// least one slot token, `id:tok,tok…` (tokens sorted), lines sorted, joined with `|`. `None`
/// when no line owns a slot (redis-cli then calls the configuration inconsistent).
pub fn slots_signature(lines: &[NodeLine]) -> Option<String> {
    let mut entries: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let mut toks: Vec<&str> = l
                .slots
                .iter()
                .map(String::as_str)
                .filter(|t| !t.starts_with('['))
                .collect();
            if toks.is_empty() {
                return None;
            }
            toks.sort_unstable();
            Some(format!("{}:{}", l.id, toks.join(",")))
        })
        .collect();
    if entries.is_empty() {
        return None;
    }
    entries.sort();
    Some(entries.join("|"))
}

/// `field:value` lines of `INFO` / `CLUSTER INFO` (CRLF checked).
pub fn parse_info(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for line in text.split("\r\n") {
        ensure!(
            !line.contains('\n'),
            "INFO text is not CRLF-terminated: {text:?}"
        );
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.insert(k.to_string(), v.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slot_matches_the_cluster_spec() {
        assert_eq!(
            crc16::State::<crc16::XMODEM>::calculate(b"123456789"),
            0x31C3
        );
        assert_eq!(key_slot(b"key1"), 9189);
        assert_eq!(key_slot(b"key2"), 4998);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}")); // empty tag: whole key
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn cluster_nodes_parse_and_signature() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        let text = format!(
            "{a} 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 [5461-<-{b}]\n\
             {b} 127.0.0.1:7002@17002 master - 0 1700000000123 2 connected 5461-10922 16383\n\
             {c} 127.0.0.1:7003@17003 slave {a} 0 1700000000456 1 connected\n"
        );
        let lines = parse_cluster_nodes(&text).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].is_myself() && lines[0].is_master());
        assert_eq!(lines[0].ranges(), vec![(0, 5460)]);
        assert_eq!(lines[1].slot_count(), 5462 + 1);
        assert!(lines[1].owns(16383) && !lines[1].owns(0));
        assert!(lines[2].is_replica());
        assert_eq!(lines[2].master.as_deref(), Some(a.as_str()));
        assert_eq!((lines[2].port, lines[2].cport), (7003, 17003));
        assert_eq!(
            slots_signature(&lines).unwrap(),
            format!("{a}:0-5460|{b}:16383,5461-10922")
        );
        assert!(parse_cluster_nodes(&text[..text.len() - 1]).is_err());
        assert!(slots_signature(&lines[2..]).is_none());
    }

    #[test]
    fn info_fields_need_crlf() {
        let m = parse_info("# Cluster\r\ncluster_state:ok\r\ncluster_known_nodes:6\r\n").unwrap();
        assert_eq!(m["cluster_state"], "ok");
        assert_eq!(m["cluster_known_nodes"], "6");
        assert!(parse_info("cluster_state:ok\ncluster_known_nodes:6\n").is_err());
    }
}

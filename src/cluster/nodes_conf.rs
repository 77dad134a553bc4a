//! nodes.conf in Valkey's text format: one line per node, then
//! `vars currentEpoch N lastVoteEpoch M`. Written atomically (temp file, fsync, rename); a
//! corrupt file stops start-up with the file and line named, never a silent reset.

use std::io::Write;
use std::path::Path;

use super::state::ClusterState;
use super::types::{render_ranges, NodeId, NodeRecord, Role};
use crate::slot::Ranges;
use crate::storage::SLOTS;

#[derive(Debug, thiserror::Error)]
pub enum NodesConfError {
    #[error("{path}:{line}: {reason}")]
    Corrupt {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Who reads a node line: nodes.conf, or a client on TLS or plain TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFor {
    /// The plain port, and the TLS port as Valkey's `tls-port=` aux field.
    File,
    /// The port a client on this kind of connection uses; no aux fields (as Valkey).
    Client { tls: bool },
}

/// The node line shared by CLUSTER NODES and nodes.conf.
pub fn node_line(
    st: &ClusterState,
    n: &NodeRecord,
    now_is_myself: bool,
    with_open_slots: bool,
    reader: LineFor,
) -> String {
    let mut flags = Vec::new();
    if now_is_myself {
        flags.push("myself");
    }
    flags.push(if n.is_primary() { "master" } else { "slave" });
    if n.pfail {
        flags.push("fail?");
    }
    if n.fail {
        flags.push("fail");
    }
    if n.handshake {
        flags.push("handshake");
    }
    if n.noaddr {
        flags.push("noaddr");
    }
    if n.nofailover {
        flags.push("nofailover");
    }
    let primary = n
        .primary
        .map(|p| p.to_string())
        .unwrap_or_else(|| "-".into());
    let link = if n.link_up || now_is_myself {
        "connected"
    } else {
        "disconnected"
    };
    let (port, aux) = match reader {
        LineFor::File if n.tls_port != 0 => (n.port, format!(",tls-port={}", n.tls_port)),
        LineFor::File => (n.port, String::new()),
        LineFor::Client { tls } => (n.client_port(tls), String::new()),
    };
    let mut line = format!(
        "{} {}:{}@{}{} {} {} {} {} {} {}",
        n.id,
        n.ip,
        port,
        n.cport,
        aux,
        flags.join(","),
        primary,
        n.ping_sent,
        if now_is_myself { 0 } else { n.pong_recv },
        st.shown_epoch(n),
        link
    );
    let ranges = st.slots_of(&n.id).ranges();
    if !ranges.is_empty() {
        line.push(' ');
        line.push_str(&render_ranges(&ranges));
    }
    if with_open_slots && now_is_myself {
        for (s, id) in &st.migrating {
            line.push_str(&format!(" [{s}->-{id}]"));
        }
        for (s, id) in &st.importing {
            line.push_str(&format!(" [{s}-<-{id}]"));
        }
    }
    line
}

pub fn render(st: &ClusterState) -> String {
    let mut out = String::new();
    for n in st.nodes.values().filter(|n| !n.handshake) {
        out.push_str(&node_line(st, n, n.id == st.myself, true, LineFor::File));
        out.push('\n');
    }
    out.push_str(&format!(
        "vars currentEpoch {} lastVoteEpoch {}\n",
        st.current_epoch, st.last_vote_epoch
    ));
    out
}

pub fn save(st: &ClusterState, path: &Path) -> Result<(), NodesConfError> {
    write(st, path, true)
}

/// Writes nodes.conf atomically (temp file, rename); with `sync` the file and the rename are
/// fsynced before this returns.
pub fn write(st: &ClusterState, path: &Path, sync: bool) -> Result<(), NodesConfError> {
    let io = |source| NodesConfError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("conf.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(render(st).as_bytes()).map_err(io)?;
    if sync {
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if !sync {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        // The rename is durable only once the directory is synced.
        if let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Loads nodes.conf; `Ok(None)` when the file does not exist or is empty (first start).
pub fn load(
    path: &Path,
    now: u64,
    node_timeout: u64,
) -> Result<Option<ClusterState>, NodesConfError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(NodesConfError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let corrupt = |line: usize, reason: &str| NodesConfError::Corrupt {
        path: path.display().to_string(),
        line,
        reason: reason.to_string(),
    };
    let mut st: Option<ClusterState> = None;
    let mut records: Vec<(NodeRecord, Ranges, bool)> = Vec::new();
    let mut open: Vec<(u16, bool, NodeId)> = Vec::new();
    let (mut current_epoch, mut last_vote) = (0, 0);
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let t: Vec<&str> = line.split(' ').filter(|s| !s.is_empty()).collect();
        if t.is_empty() {
            continue;
        }
        if t[0] == "vars" {
            let mut it = t[1..].chunks(2);
            for kv in it.by_ref() {
                let [k, v] = kv else {
                    return Err(corrupt(ln, "vars line has a name without a value"));
                };
                let v: u64 = v
                    .parse()
                    .map_err(|_| corrupt(ln, "vars value is not a number"))?;
                match *k {
                    "currentEpoch" => current_epoch = v,
                    "lastVoteEpoch" => last_vote = v,
                    _ => {}
                }
            }
            continue;
        }
        if t.len() < 8 {
            return Err(corrupt(ln, "node line has fewer than 8 fields"));
        }
        let id = NodeId::parse(t[0].as_bytes()).ok_or_else(|| corrupt(ln, "invalid node id"))?;
        let mut aux = t[1].split(',');
        let addr = aux.next().unwrap_or("");
        // Aux fields this version does not know (hostname, shard-id, ...) are skipped.
        let tls_port = aux
            .filter_map(|f| f.strip_prefix("tls-port="))
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| corrupt(ln, "invalid tls-port"))
            })
            .next_back()
            .transpose()?;
        let (hostport, cport) = addr
            .rsplit_once('@')
            .ok_or_else(|| corrupt(ln, "address lacks @cport"))?;
        let (ip, port) = hostport
            .rsplit_once(':')
            .ok_or_else(|| corrupt(ln, "address lacks :port"))?;
        let port: u16 = port.parse().map_err(|_| corrupt(ln, "invalid port"))?;
        let cport: u16 = cport
            .parse()
            .map_err(|_| corrupt(ln, "invalid cluster bus port"))?;
        let mut n = NodeRecord::new(id, ip.to_string(), port, cport, now);
        n.tls_port = tls_port.unwrap_or(0);
        let mut myself = false;
        for f in t[2].split(',') {
            match f {
                "myself" => myself = true,
                "master" => n.role = Role::Primary,
                "slave" | "replica" => n.role = Role::Replica,
                "fail?" => n.pfail = true,
                "fail" => n.fail = true,
                "nofailover" => n.nofailover = true,
                "noaddr" => n.noaddr = true,
                "handshake" | "noflags" => {}
                _ => return Err(corrupt(ln, &format!("unknown flag '{f}'"))),
            }
        }
        if t[3] != "-" {
            n.primary = Some(
                NodeId::parse(t[3].as_bytes()).ok_or_else(|| corrupt(ln, "invalid primary id"))?,
            );
        }
        n.config_epoch = t[6]
            .parse()
            .map_err(|_| corrupt(ln, "invalid config epoch"))?;
        let mut ranges = Vec::new();
        for s in &t[8..] {
            if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                let (slot, rest, migrating) = if let Some((a, b)) = inner.split_once("->-") {
                    (a, b, true)
                } else if let Some((a, b)) = inner.split_once("-<-") {
                    (a, b, false)
                } else {
                    return Err(corrupt(ln, "invalid open slot"));
                };
                let slot: u16 = slot.parse().map_err(|_| corrupt(ln, "invalid slot"))?;
                let other = NodeId::parse(rest.as_bytes())
                    .ok_or_else(|| corrupt(ln, "invalid node id in open slot"))?;
                open.push((slot, migrating, other));
                continue;
            }
            let (a, b) = match s.split_once('-') {
                Some((a, b)) => (a, b),
                None => (*s, *s),
            };
            let a: u16 = a.parse().map_err(|_| corrupt(ln, "invalid slot"))?;
            let b: u16 = b.parse().map_err(|_| corrupt(ln, "invalid slot"))?;
            if a > b || b as usize >= SLOTS {
                return Err(corrupt(ln, "slot out of range"));
            }
            ranges.push((a, b));
        }
        if myself {
            if st.is_some() {
                return Err(corrupt(ln, "more than one node is flagged myself"));
            }
            st = Some(ClusterState::new(id, n.ip.clone(), port, cport, now));
        }
        records.push((n, ranges, myself));
    }
    let Some(mut st) = st else {
        return Err(corrupt(1, "no node is flagged myself"));
    };
    st.node_timeout = node_timeout;
    st.current_epoch = current_epoch;
    st.last_vote_epoch = last_vote;
    for (mut n, ranges, myself) in records {
        for (a, b) in ranges {
            for s in a..=b {
                st.slots.set(s as usize, Some(n.id));
            }
        }
        if myself {
            n.link_up = true;
        }
        st.nodes.insert(n.id, n);
    }
    for (slot, migrating, other) in open {
        if migrating {
            st.migrating.insert(slot, other);
        } else {
            st.importing.insert(slot, other);
        }
    }
    st.dirty = false;
    st.update_health();
    Ok(Some(st))
}

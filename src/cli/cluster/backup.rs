//! `backup` and `restore` of slot ranges. Backup: each owning primary streams a consistent
//! snapshot of its slots over gRPC; the CLI writes SST files (one family per file) and, last,
//! a manifest with per-file sizes and checksums. Restore: verifies the manifest and every file
//! before touching a node, stages the data on whichever primaries own the slots now (any
//! topology), refuses key collisions unless `--replace`, then commits everywhere.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use tokio_stream::StreamExt;

use super::manager::{ClusterNode, Manager};
use super::nodes::SLOTS;
use super::{host_port, ClusterOpts, INVALID_HOST_ARG};
use crate::cli::conn::Value;
use crate::keyspace::is_key_entry;
use crate::migration::DataChunk;
use crate::rpc::BackupPeer;
use crate::slot::{ranges_compact as ranges_text, ranges_of_mask as to_ranges, Ranges};
use crate::storage::{RunReader, RunWriter};

const MANIFEST: &str = "manifest";
/// The primaries' function libraries, as FUNCTION DUMP gives them.
const FUNCTIONS_FILE: &str = "functions.rdb";
const FORMAT: &str = "rockslot-backup 1";
/// Matches the server's default `storage-slots-per-family`; only decides file boundaries.
const SLOTS_PER_FILE_GROUP: usize = 128;
const CHUNK_ENTRIES: usize = 2048;

/// One data file of a backup.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    pub name: String,
    pub first: u16,
    pub last: u16,
    pub size: u64,
    pub sha1: String,
    pub entries: u64,
    pub keys: u64,
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    pub version: String,
    pub created: u64,
    pub cluster: String,
    pub slots: Ranges,
    /// (node id, address, ranges) of each primary when the backup was taken.
    pub nodes: Vec<(String, String, Ranges)>,
    /// Size and SHA-1 of the function libraries' file, when any primary had libraries.
    pub functions: Option<(u64, String)>,
    pub files: Vec<FileEntry>,
}

fn parse_ranges(s: &str) -> anyhow::Result<Vec<(u16, u16)>> {
    Ok(crate::slot::parse_ranges_compact(s)?)
}

fn mask(r: &[(u16, u16)]) -> Vec<bool> {
    let mut m = vec![false; SLOTS];
    for &(a, b) in r {
        for s in a..=b {
            m[s as usize] = true;
        }
    }
    m
}

impl Manifest {
    pub fn render(&self) -> String {
        let mut out = format!(
            "{FORMAT}\nrockslot-version {}\ncreated {}\ncluster {}\nslots {}\n",
            self.version,
            self.created,
            self.cluster,
            ranges_text(&self.slots)
        );
        for (id, addr, r) in &self.nodes {
            out.push_str(&format!("node {id} {addr} {}\n", ranges_text(r)));
        }
        if let Some((size, sha1)) = &self.functions {
            out.push_str(&format!("functions {size} {sha1}\n"));
        }
        for f in &self.files {
            out.push_str(&format!(
                "file {} {}-{} {} {} {} {} {}\n",
                f.name, f.first, f.last, f.size, f.sha1, f.entries, f.keys, f.node
            ));
        }
        let sum = sha1_smol::Sha1::from(&out).digest().to_string();
        out.push_str(&format!("end {sum}\n"));
        out
    }

    pub fn parse(text: &str) -> anyhow::Result<Manifest> {
        let body_end = text
            .rfind("end ")
            .filter(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')
            .ok_or_else(|| anyhow!("no end line: truncated"))?;
        let (body, end) = text.split_at(body_end);
        let want = end.trim_end().strip_prefix("end ").unwrap_or_default();
        if sha1_smol::Sha1::from(body).digest().to_string() != want || !end.ends_with('\n') {
            bail!("checksum mismatch: truncated or modified");
        }
        let mut m = Manifest::default();
        let mut lines = body.lines();
        if lines.next() != Some(FORMAT) {
            bail!("not a rockslot backup manifest (or an unknown format version)");
        }
        for (n, l) in lines.enumerate() {
            let w: Vec<&str> = l.split(' ').collect();
            let bad = || anyhow!("line {}: {l:?}", n + 2);
            match w.as_slice() {
                ["rockslot-version", v] => m.version = v.to_string(),
                ["created", t] => m.created = t.parse().map_err(|_| bad())?,
                ["cluster", c] => m.cluster = c.to_string(),
                ["slots", r] => m.slots = parse_ranges(r)?,
                ["node", id, addr, r] => {
                    m.nodes
                        .push((id.to_string(), addr.to_string(), parse_ranges(r)?))
                }
                ["functions", size, sha1] => {
                    m.functions = Some((size.parse().map_err(|_| bad())?, sha1.to_string()))
                }
                ["file", name, r, size, sha1, entries, keys, node] => {
                    let (a, b) = parse_ranges(r)?.first().copied().ok_or_else(bad)?;
                    if name.contains(['/', '\\']) || name.starts_with('.') {
                        return Err(bad());
                    }
                    m.files.push(FileEntry {
                        name: name.to_string(),
                        first: a,
                        last: b,
                        size: size.parse().map_err(|_| bad())?,
                        sha1: sha1.to_string(),
                        entries: entries.parse().map_err(|_| bad())?,
                        keys: keys.parse().map_err(|_| bad())?,
                        node: node.to_string(),
                    });
                }
                _ => return Err(bad()),
            }
        }
        Ok(m)
    }
}

fn file_sha1(p: &Path) -> anyhow::Result<(u64, String)> {
    let mut f = std::fs::File::open(p)?;
    let mut h = sha1_smol::Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((size, h.digest().to_string()))
}

/// Verifies the manifest of `dir` and every file it lists (size and SHA-1).
pub fn verify(dir: &Path) -> anyhow::Result<Manifest> {
    let mpath = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&mpath).with_context(|| {
        format!(
            "{}: cannot read the manifest (partial backup?)",
            mpath.display()
        )
    })?;
    let m = Manifest::parse(&text).with_context(|| format!("{}", mpath.display()))?;
    let functions = m
        .functions
        .iter()
        .map(|(size, sha1)| (FUNCTIONS_FILE, *size, sha1));
    let data = m.files.iter().map(|f| (f.name.as_str(), f.size, &f.sha1));
    for (name, want_size, want_sum) in functions.chain(data) {
        let p = dir.join(name);
        let (size, sum) =
            file_sha1(&p).with_context(|| format!("{}: missing or unreadable", p.display()))?;
        if size != want_size {
            bail!(
                "{}: size {size}, the manifest says {want_size}",
                p.display()
            );
        }
        if sum != *want_sum {
            bail!(
                "{}: checksum mismatch (SHA-1 {sum}, the manifest says {want_sum})",
                p.display()
            );
        }
    }
    Ok(m)
}

/// Saves the primaries' function libraries next to the data; `None` when they have none.
/// Libraries are per primary in a cluster (add-node copies them, users load them on each):
/// the first primary's are kept, with a warning when another's differ.
fn backup_functions(m: &mut Manager, dir: &Path) -> anyhow::Result<Option<(u64, String)>> {
    let mut first: Option<(String, Vec<u8>)> = None;
    for n in m.nodes.iter_mut().filter(|n| n.replicate.is_none()) {
        let payload = match n.cmd(&["FUNCTION", "DUMP"])? {
            Value::Bulk(p) => p,
            other => bail!("{}: FUNCTION DUMP answered {other:?}", n.addr()),
        };
        match &first {
            None => first = Some((n.addr(), payload)),
            Some((addr, p)) if *p != payload => log_warn!(
                "[WARNING] {} holds other function libraries than {addr}; the backup keeps \
                 those of {addr}\n",
                n.addr()
            ),
            Some(_) => {}
        }
    }
    let Some((_, payload)) = first else {
        return Ok(None);
    };
    // A payload of only the 10-byte footer holds no library.
    if payload.len() <= 10 {
        return Ok(None);
    }
    let path = dir.join(FUNCTIONS_FILE);
    std::fs::write(&path, &payload)?;
    std::fs::File::open(&path)?.sync_all()?;
    Ok(Some(file_sha1(&path)?))
}

/// Loads the backup's function libraries on every primary (replacing same-named ones).
fn restore_functions(m: &mut Manager, dir: &Path) -> anyhow::Result<()> {
    let payload = std::fs::read(dir.join(FUNCTIONS_FILE))?;
    for n in m.nodes.iter_mut().filter(|n| n.replicate.is_none()) {
        let argv = [
            b"FUNCTION".to_vec(),
            b"RESTORE".to_vec(),
            payload.clone(),
            b"REPLACE".to_vec(),
        ];
        match n.call(&argv)? {
            Value::Error(e) => bail!("{}: FUNCTION RESTORE: {e}", n.addr()),
            _ => log_info!(">>> Function libraries restored on {}\n", n.addr()),
        }
    }
    Ok(())
}

pub(super) fn load(o: &ClusterOpts, addr: &[String]) -> Option<Manager> {
    let Some((ip, port)) = host_port(addr) else {
        eprintln!("{INVALID_HOST_ARG}");
        return None;
    };
    let mut m = Manager::new(o.auth.clone());
    if !m.load_info_from_node(ClusterNode::new(ip, port, 0), false) {
        return None;
    }
    m.check_cluster(true, false);
    if !m.errors.is_empty() {
        log_err!("*** Please fix your cluster problems first\n");
        return None;
    }
    Some(m)
}

fn wanted(o: &ClusterOpts) -> anyhow::Result<Vec<bool>> {
    if o.slot_spec.is_empty() {
        return Ok(vec![true; SLOTS]);
    }
    let mut r = Vec::new();
    for s in &o.slot_spec {
        r.extend(parse_ranges(s)?);
    }
    Ok(mask(&r))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// One progress line (redrawn on a terminal, printed once at the end otherwise); with `total`
/// bytes known it starts with the percentage done.
pub(super) fn progress(
    what: &str,
    keys: u64,
    bytes: u64,
    total: Option<u64>,
    t0: Instant,
    done: bool,
) {
    let pct = match total {
        Some(t) if t > 0 => format!("{:3.0}% ", bytes as f64 * 100.0 / t as f64),
        _ => String::new(),
    };
    let line = format!(
        "{what}: {pct}{keys} keys, {:.1} MB, {:.1} MB/s",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / t0.elapsed().as_secs_f64().max(1e-3)
    );
    if std::io::stdout().is_terminal() {
        print!("\r{line}{}", if done { "\n" } else { "" });
        let _ = std::io::stdout().flush();
    } else if done {
        println!("{line}");
    }
}

pub fn backup(o: &ClusterOpts) -> anyhow::Result<bool> {
    let Some(out) = o.out.as_deref() else {
        log_err!("[ERR] backup needs --out DIR\n");
        return Ok(false);
    };
    let want = match wanted(o) {
        Ok(w) => w,
        Err(e) => {
            log_err!("[ERR] --slots: {e}\n");
            return Ok(false);
        }
    };
    let dir = PathBuf::from(out);
    if dir.join(MANIFEST).exists() {
        log_err!("[ERR] {} already holds a backup\n", dir.display());
        return Ok(false);
    }
    std::fs::create_dir_all(&dir)?;
    let Some(mut m) = load(o, &o.args) else {
        return Ok(false);
    };
    let mut plan = Vec::new();
    let mut covered = vec![false; SLOTS];
    for n in m.nodes.iter().filter(|n| n.replicate.is_none()) {
        let mine: Vec<bool> = n.slots.iter().zip(&want).map(|(a, b)| *a && *b).collect();
        for (c, x) in covered.iter_mut().zip(&mine) {
            *c |= *x;
        }
        let r = to_ranges(&mine);
        if !r.is_empty() {
            plan.push((n.name.clone(), n.ip.clone(), n.port, n.bus_port, r));
        }
    }
    if covered != want {
        log_err!("[ERR] some requested slots are not served by any primary\n");
        return Ok(false);
    }
    log_info!(
        ">>> Backing up slots {} from {} primaries to {}\n",
        ranges_text(&to_ranges(&want)),
        plan.len(),
        dir.display()
    );
    let rt = runtime()?;
    let t0 = Instant::now();
    let mut manifest = Manifest {
        version: env!("CARGO_PKG_VERSION").into(),
        created: crate::cluster::now_ms() / 1000,
        slots: to_ranges(&want),
        ..Default::default()
    };
    let mut ids: Vec<&str> = plan.iter().map(|p| p.0.as_str()).collect();
    ids.sort();
    manifest.cluster = sha1_smol::Sha1::from(ids.join(",")).digest().to_string();
    let (mut keys, mut bytes) = (0u64, 0u64);
    for (idx, (id, ip, port, cport, ranges)) in plan.iter().enumerate() {
        let pass = o.auth.pass.clone();
        let mut stream = rt
            .block_on(async {
                let mut peer = BackupPeer::connect(ip, *cport, pass.as_deref()).await?;
                peer.export(ranges).await
            })
            .map_err(|e| anyhow!("{ip}:{port}: {e}"))?;
        let mut w = RunWriter::new(&dir, &format!("n{idx}"), SLOTS_PER_FILE_GROUP)?;
        let mut file_keys: BTreeMap<u16, u64> = BTreeMap::new();
        loop {
            let next = rt.block_on(stream.next());
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| anyhow!("{ip}:{port}: {e}"))?;
            for (k, v) in &chunk.entries {
                if is_key_entry(k) {
                    keys += 1;
                    *file_keys
                        .entry(u16::from_be_bytes([k[0], k[1]]) & 0x3fff)
                        .or_default() += 1;
                }
                bytes += (k.len() + v.len()) as u64;
                w.put(k, v)?;
            }
            progress("backup", keys, bytes, None, t0, false);
        }
        for f in w.finish()? {
            let (size, sha1) = file_sha1(&f.path)?;
            let fk: u64 = file_keys
                .range(f.first_slot..=f.last_slot)
                .map(|(_, n)| n)
                .sum();
            manifest.files.push(FileEntry {
                name: f
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                first: f.first_slot,
                last: f.last_slot,
                size,
                sha1,
                entries: f.entries,
                keys: fk,
                node: id.clone(),
            });
        }
        manifest
            .nodes
            .push((id.clone(), format!("{ip}:{port}"), ranges.clone()));
    }
    progress("backup", keys, bytes, None, t0, true);
    manifest.functions = backup_functions(&mut m, &dir)?;
    // The manifest goes last: a directory without one is a partial backup.
    let tmp = dir.join(".manifest.tmp");
    std::fs::write(&tmp, manifest.render())?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(MANIFEST))?;
    let secs = t0.elapsed().as_secs_f64().max(1e-3);
    log_ok!(
        "[OK] Backed up {keys} keys ({:.1} MB) in {} files in {secs:.2} s ({:.1} MB/s)\n",
        bytes as f64 / 1e6,
        manifest.files.len(),
        bytes as f64 / 1e6 / secs
    );
    Ok(true)
}

pub fn restore(o: &ClusterOpts) -> anyhow::Result<bool> {
    let Some(from) = o.from_dir.as_deref() else {
        log_err!("[ERR] restore needs --from DIR\n");
        return Ok(false);
    };
    let dir = PathBuf::from(from);
    // Everything is verified before any node is touched.
    let manifest = match verify(&dir) {
        Ok(m) => m,
        Err(e) => {
            log_err!("[ERR] {e:#}\n");
            return Ok(false);
        }
    };
    let in_backup = mask(&manifest.slots);
    let want: Vec<bool> = match wanted(o) {
        Ok(w) if o.slot_spec.is_empty() => {
            w.iter().zip(&in_backup).map(|(a, b)| *a && *b).collect()
        }
        Ok(w) => {
            if w.iter().zip(&in_backup).any(|(a, b)| *a && !*b) {
                log_err!("[ERR] --slots asks for slots the backup does not hold\n");
                return Ok(false);
            }
            w
        }
        Err(e) => {
            log_err!("[ERR] --slots: {e}\n");
            return Ok(false);
        }
    };
    let Some(mut m) = load(o, &o.args) else {
        return Ok(false);
    };
    let mut owner: Vec<Option<usize>> = vec![None; SLOTS];
    let primaries: Vec<&ClusterNode> = m.nodes.iter().filter(|n| n.replicate.is_none()).collect();
    for (i, n) in primaries.iter().enumerate() {
        for (s, o) in owner.iter_mut().enumerate() {
            if n.slots[s] {
                *o = Some(i);
            }
        }
    }
    if want.iter().zip(&owner).any(|(w, o)| *w && o.is_none()) {
        log_err!("[ERR] some slots to restore are not served by any primary\n");
        return Ok(false);
    }
    let rt = runtime()?;
    let job = crate::migration::new_job_name();
    let t0 = Instant::now();
    log_info!(
        ">>> Restoring slots {} from {} into {} primaries\n",
        ranges_text(&to_ranges(&want)),
        dir.display(),
        primaries.len()
    );
    // One Stage stream per primary that owns restored slots.
    let mut senders: BTreeMap<usize, tokio::sync::mpsc::Sender<DataChunk>> = BTreeMap::new();
    let mut stages = Vec::new();
    let mut peers = BTreeMap::new();
    for (i, n) in primaries.iter().enumerate() {
        if !want.iter().zip(&owner).any(|(w, o)| *w && *o == Some(i)) {
            continue;
        }
        let pass = o.auth.pass.clone();
        let (ip, cport) = (n.ip.clone(), n.bus_port);
        let peer = rt
            .block_on(BackupPeer::connect(&ip, cport, pass.as_deref()))
            .map_err(|e| anyhow!("{}: {e}", n.addr()))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<DataChunk>(4);
        // The first chunk names the job: a primary whose restored slots hold no key in the
        // backup still stages (nothing) and takes part in prepare and commit.
        let opening = DataChunk {
            job: job.clone(),
            ..Default::default()
        };
        if rt.block_on(tx.send(opening)).is_err() {
            bail!("{}: staging stream closed", n.addr());
        }
        let mut p2 = peer.clone();
        stages.push((
            i,
            rt.spawn(async move {
                p2.stage(tokio_stream::wrappers::ReceiverStream::new(rx))
                    .await
            }),
        ));
        senders.insert(i, tx);
        peers.insert(i, peer);
    }
    let mut files = manifest.files.clone();
    files.sort_by(|a, b| (a.first, &a.name).cmp(&(b.first, &b.name)));
    let scratch = dir.join(format!(".read-{job}"));
    let (mut keys, mut bytes) = (0u64, 0u64);
    let mut pending: BTreeMap<usize, DataChunk> = BTreeMap::new();
    let mut send_err = None;
    'files: for f in &files {
        if !(f.first..=f.last).any(|s| want[s as usize]) {
            continue;
        }
        let reader = RunReader::open(&dir.join(&f.name), &scratch)?;
        reader.for_each(|k, v| {
            let slot = (u16::from_be_bytes([k[0], k[1]]) & 0x3fff) as usize;
            if !want[slot] {
                return true;
            }
            let Some(i) = owner[slot] else { return true };
            keys += is_key_entry(k) as u64;
            bytes += (k.len() + v.len()) as u64;
            let c = pending.entry(i).or_insert_with(|| DataChunk {
                job: job.clone(),
                ..Default::default()
            });
            c.entries.push((k.to_vec(), v.to_vec()));
            if c.entries.len() < CHUNK_ENTRIES {
                return true;
            }
            let Some(c) = pending.remove(&i) else {
                return true;
            };
            if rt.block_on(senders[&i].send(c)).is_err() {
                send_err = Some(i);
                return false;
            }
            true
        })?;
        if send_err.is_some() {
            break 'files;
        }
        progress("restore", keys, bytes, None, t0, false);
    }
    for (i, c) in std::mem::take(&mut pending) {
        if rt.block_on(senders[&i].send(c)).is_err() {
            send_err = Some(i);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    drop(senders);
    let mut failed = None;
    for (i, h) in stages {
        match rt.block_on(h) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => failed = Some(format!("{}: {e}", primaries[i].addr())),
            Err(e) => failed = Some(e.to_string()),
        }
    }
    if let Some(i) = send_err {
        failed.get_or_insert(format!("{}: staging stopped", primaries[i].addr()));
    }
    let abort_all = |rt: &tokio::runtime::Runtime, peers: &mut BTreeMap<usize, BackupPeer>| {
        for p in peers.values_mut() {
            let _ = rt.block_on(p.abort(&job));
        }
    };
    if let Some(e) = failed {
        abort_all(&rt, &mut peers);
        log_err!("[ERR] restore failed, nothing changed: {e}\n");
        return Ok(false);
    }
    // Every primary pauses writes to its restored slots and decides collisions against its
    // data as it is then; one refusal aborts everywhere. All at once: each primary's pause
    // (and its 60 s limit) starts at the same time.
    let replace = o.replace;
    let prepared = rt.block_on(futures::future::join_all(peers.iter().map(|(&i, p)| {
        let (mut p, job) = (p.clone(), job.clone());
        async move { (i, p.prepare(&job, replace).await) }
    })));
    let mut replaced = 0u64;
    let mut refused = None;
    for (i, r) in prepared {
        match r {
            Ok(r) => replaced += r.collisions,
            Err(e) => {
                refused.get_or_insert((i, e));
            }
        }
    }
    if let Some((i, e)) = refused {
        abort_all(&rt, &mut peers);
        let hint = if e.contains("already exist") {
            " Use --replace to overwrite them."
        } else {
            ""
        };
        log_err!(
            "[ERR] {}: {e}; nothing changed.{hint}\n",
            primaries[i].addr()
        );
        return Ok(false);
    }
    // Commit everywhere. Only a primary that fails now (it died, its disk failed) misses its
    // part; the others still commit, and the report names what to restore again.
    let committed = rt.block_on(futures::future::join_all(peers.iter().map(|(&i, p)| {
        let (mut p, job) = (p.clone(), job.clone());
        async move { (i, p.commit(&job).await) }
    })));
    let missed: Vec<(usize, String)> = committed
        .into_iter()
        .filter_map(|(i, r)| r.err().map(|e| (i, e)))
        .collect();
    if !missed.is_empty() {
        let mut again = vec![false; SLOTS];
        for (i, e) in &missed {
            let mine: Vec<bool> = (0..SLOTS)
                .map(|s| want[s] && owner[s] == Some(*i))
                .collect();
            log_err!(
                "[ERR] {}: commit failed: {e}; slots {} were NOT restored\n",
                primaries[*i].addr(),
                ranges_text(&to_ranges(&mine))
            );
            for (a, m) in again.iter_mut().zip(&mine) {
                *a |= *m;
            }
        }
        log_err!(
            "[ERR] Restore incomplete: every other slot was restored. Restore the rest with --slots {}{}\n",
            ranges_text(&to_ranges(&again)),
            if o.replace { " --replace" } else { "" }
        );
        return Ok(false);
    }
    if manifest.functions.is_some() {
        if let Err(e) = restore_functions(&mut m, &dir) {
            log_err!("[ERR] the data was restored but the function libraries were not: {e:#}\n");
            return Ok(false);
        }
    }
    progress("restore", keys, bytes, None, t0, true);
    let secs = t0.elapsed().as_secs_f64().max(1e-3);
    log_ok!(
        "[OK] Restored {keys} keys ({:.1} MB, {replaced} replaced) in {secs:.2} s ({:.1} MB/s)\n",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_roundtrip_and_truncation() {
        let m = Manifest {
            version: "0.1.0".into(),
            created: 7,
            cluster: "c".into(),
            slots: vec![(0, 8191)],
            nodes: vec![("a".repeat(40), "127.0.0.1:7000".into(), vec![(0, 5460)])],
            functions: Some((95, "cd".into())),
            files: vec![FileEntry {
                name: "n0-00000.sst".into(),
                first: 0,
                last: 127,
                size: 10,
                sha1: "ab".into(),
                entries: 3,
                keys: 2,
                node: "a".repeat(40),
            }],
        };
        let text = m.render();
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        for cut in [text.len() - 1, text.len() / 2, 5] {
            assert!(Manifest::parse(&text[..cut]).is_err(), "cut at {cut}");
        }
        let flipped = text.replace("0-8191", "0-8190");
        assert!(Manifest::parse(&flipped).is_err());
        assert!(Manifest::parse(&text.replace("n0-00000.sst", "../x.sst")).is_err());
    }
}

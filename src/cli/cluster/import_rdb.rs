//! `import-rdb HOST:PORT FILE.rdb [--cluster-replace]`: loads a dump.rdb written by
//! valkey-server or redis-server (RDB 1–12) into whichever primaries own each key's slot.
//!
//! Two passes over the file, each streaming one key at a time: the first reads and checks all
//! of it (every encoding, the CRC64 trailer) so a truncated or corrupt file is refused with
//! its byte offset before any node is touched; the second sends each key as
//! `RESTORE key at payload ABSTTL [REPLACE]`, pipelined per primary. Keys already expired
//! are skipped (as a loading primary does); every database goes into db 0.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use super::backup::{load, progress};
use super::ClusterOpts;
use crate::cli::Value;
use crate::rdb::file::{RdbFile, Record};
use crate::rdb::{dump_payload, Object};

/// Commands per primary per round trip, and the payload bytes that also end a batch.
const BATCH_KEYS: usize = 256;
const BATCH_BYTES: usize = 4 << 20;

#[derive(Default)]
struct Tally {
    by_type: BTreeMap<&'static str, u64>,
    by_db: BTreeMap<u64, u64>,
    expired: u64,
}

fn type_name(o: &Object) -> &'static str {
    match o {
        Object::Str(_) => "string",
        Object::List(_) => "list",
        Object::Set(_) => "set",
        Object::Hash(_) | Object::VolatileHash(_) => "hash",
        Object::ZSet(_) => "zset",
        Object::Stream(_) => "stream",
    }
}

fn open(path: &str) -> anyhow::Result<RdbFile<BufReader<File>>> {
    let f = File::open(path).map_err(|e| anyhow::anyhow!("cannot open {path}: {e}"))?;
    Ok(RdbFile::open(BufReader::with_capacity(1 << 20, f))?)
}

/// The first pass: every record read and checked, nothing sent.
fn check_file(path: &str, size: u64) -> anyhow::Result<Tally> {
    let mut rdb = open(path)?;
    let mut t = Tally::default();
    let t0 = Instant::now();
    let now = crate::cluster::now_ms() as i64;
    let mut n = 0u64;
    while let Some(r) = rdb.next_record()? {
        n += 1;
        if r.expire_at_ms.is_some_and(|at| at <= now) {
            t.expired += 1;
            continue;
        }
        *t.by_type.entry(type_name(&r.object)).or_default() += 1;
        *t.by_db.entry(r.db).or_default() += 1;
        if n % 10_000 == 0 {
            progress("checking", n, rdb.offset(), Some(size), t0, false);
        }
    }
    progress("checking", n, rdb.offset(), Some(size), t0, true);
    if rdb.summary.functions_skipped > 0 {
        log_warn!(
            "*** {} function libraries in the file are skipped (rockslot has no functions)\n",
            rdb.summary.functions_skipped
        );
    }
    Ok(t)
}

struct Outcome {
    imported: u64,
    existed: u64,
    failed: u64,
}

/// One primary's queue of RESTOREs.
struct Queue {
    node: usize,
    cmds: Vec<Vec<Vec<u8>>>,
    keys: Vec<Vec<u8>>,
    bytes: usize,
}

pub fn import_rdb(o: &ClusterOpts) -> anyhow::Result<bool> {
    let [addr, path] = &o.args[..] else {
        log_err!("[ERR] usage: --cluster import-rdb HOST:PORT FILE.rdb [--cluster-replace]\n");
        return Ok(false);
    };
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    log_info!(">>> Checking {path} ({:.1} MB)\n", size as f64 / 1e6);
    let tally = match check_file(path, size) {
        Ok(t) => t,
        Err(e) => {
            log_err!("[ERR] {path}: {e}; nothing was imported\n");
            return Ok(false);
        }
    };
    let Some(mut m) = load(o, std::slice::from_ref(addr)) else {
        return Ok(false);
    };
    let mut owner = vec![usize::MAX; crate::slot::SLOTS];
    for (i, n) in m.nodes.iter().enumerate() {
        if n.replicate.is_none() {
            for (s, own) in n.slots.iter().enumerate() {
                if *own {
                    owner[s] = i;
                }
            }
        }
    }
    if owner.contains(&usize::MAX) {
        log_err!("[ERR] Not all 16384 slots are covered by nodes; nothing was imported\n");
        return Ok(false);
    }
    let total: u64 = tally.by_type.values().sum();
    log_info!(
        ">>> Importing {total} keys ({}) into {} primaries{}\n",
        summary(&tally.by_type),
        m.nodes.iter().filter(|n| n.replicate.is_none()).count(),
        if tally.by_db.len() > 1 {
            format!("; databases {} all into db 0", summary(&tally.by_db))
        } else {
            String::new()
        }
    );
    let t0 = Instant::now();
    let out = send_all(o, &mut m, path, size, &owner)?;
    let secs = t0.elapsed().as_secs_f64();
    let line = format!(
        "{} keys imported in {secs:.1} s ({:.0} keys/s); {} already existed{}; {} expired skipped; {} failed\n",
        out.imported,
        out.imported as f64 / secs.max(1e-3),
        out.existed,
        if o.replace { "" } else { " (kept; --cluster-replace overwrites)" },
        tally.expired,
        out.failed
    );
    if out.failed == 0 {
        log_ok!("[OK] {line}");
    } else {
        log_err!("[ERR] {line}");
    }
    Ok(out.failed == 0)
}

fn summary<K: std::fmt::Display>(m: &BTreeMap<K, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The second pass: RESTORE every live key on its slot's primary.
fn send_all(
    o: &ClusterOpts,
    m: &mut super::Manager,
    path: &str,
    size: u64,
    owner: &[usize],
) -> anyhow::Result<Outcome> {
    let mut rdb = open(path)?;
    let mut queues: BTreeMap<usize, Queue> = BTreeMap::new();
    let mut out = Outcome {
        imported: 0,
        existed: 0,
        failed: 0,
    };
    let t0 = Instant::now();
    let report = |keys, at, done| progress("importing", keys, at, Some(size), t0, done);
    let now = crate::cluster::now_ms() as i64;
    let mut seen = 0u64;
    while let Some(Record {
        key,
        object,
        expire_at_ms,
        ..
    }) = rdb.next_record()?
    {
        if expire_at_ms.is_some_and(|at| at <= now) {
            continue;
        }
        let node = owner[crate::slot::key_slot(&key) as usize];
        let payload = dump_payload(&object);
        let mut cmd = vec![
            b"RESTORE".to_vec(),
            key.clone(),
            expire_at_ms.unwrap_or(0).to_string().into_bytes(),
            payload,
            b"ABSTTL".to_vec(),
        ];
        if o.replace {
            cmd.push(b"REPLACE".to_vec());
        }
        let q = queues.entry(node).or_insert_with(|| Queue {
            node,
            cmds: Vec::new(),
            keys: Vec::new(),
            bytes: 0,
        });
        q.bytes += cmd[3].len() + key.len();
        q.cmds.push(cmd);
        q.keys.push(key);
        if q.cmds.len() >= BATCH_KEYS || q.bytes >= BATCH_BYTES {
            flush(m, q, &mut out)?;
        }
        seen += 1;
        if seen % 10_000 == 0 {
            report(out.imported, rdb.offset(), false);
        }
    }
    for q in queues.values_mut() {
        flush(m, q, &mut out)?;
    }
    report(out.imported, rdb.offset(), true);
    Ok(out)
}

fn flush(m: &mut super::Manager, q: &mut Queue, out: &mut Outcome) -> anyhow::Result<()> {
    if q.cmds.is_empty() {
        return Ok(());
    }
    let n = &mut m.nodes[q.node];
    let addr = n.addr();
    let conn = n
        .conn
        .as_mut()
        .ok_or_else(|| anyhow::anyhow!("no connection to {addr}"))?;
    let replies = conn.pipeline(&q.cmds)?;
    for (reply, key) in replies.iter().zip(&q.keys) {
        match reply {
            Value::Error(e) if e.starts_with("BUSYKEY") => out.existed += 1,
            Value::Error(e) => {
                out.failed += 1;
                if out.failed <= 5 {
                    log_err!(
                        "[ERR] {addr} refused key '{}': {e}\n",
                        String::from_utf8_lossy(key)
                    );
                }
            }
            _ => out.imported += 1,
        }
    }
    q.cmds.clear();
    q.keys.clear();
    q.bytes = 0;
    Ok(())
}

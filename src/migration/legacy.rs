//! MIGRATE's network side: sends `RESTORE-ASKING` (or `RESTORE` outside cluster mode) for each
//! key to the target over a cached connection, then deletes the keys here unless COPY.
//!
//! A key is deleted only if it still holds the value that was sent; a key written meanwhile is
//! sent again with REPLACE, so a write acknowledged during the move is never lost. A key that
//! keeps changing gets a last round with writes to its slot paused, so it never ends up on
//! both nodes (redis-cli would then find the target key "busy" with another value).
//! Must not: run on a handler (it awaits the network); it is called by the connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::MigrationHandle;
use crate::keyspace::{now_ms, Entry, Update, WritePause};
use crate::resp::Reply;

/// One MIGRATE call, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrateRequest {
    pub host: String,
    pub port: u16,
    pub db: i64,
    /// The logical database the keys are read from and deleted in (the client's).
    pub source_db: u8,
    pub timeout: Duration,
    pub copy: bool,
    pub replace: bool,
    /// `AUTH pw` or `AUTH user pw` as sent to the target.
    pub auth: Option<Vec<Bytes>>,
    pub keys: Vec<Bytes>,
}

/// Idle cached connections are closed after this long (Valkey's MIGRATE_SOCKET_CACHE_TTL).
const LINK_TTL: Duration = Duration::from_secs(10);
/// Attempts to move a key that keeps changing under the move.
const MAX_ROUNDS: usize = 8;

/// A MIGRATE target connection: plain TCP, or TLS under `tls-cluster`.
trait LinkStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> LinkStream for S {}

struct Link {
    stream: BufReader<Box<dyn LinkStream>>,
    db: Option<i64>,
    used: Instant,
}

/// Connections to MIGRATE targets, reused across calls (one per `host:port`).
#[derive(Default)]
pub struct MigrateLinks {
    links: Mutex<HashMap<String, Link>>,
}

enum Failure {
    Connect,
    Write,
    Read,
    Target(String),
}

impl Failure {
    fn reply(self) -> Reply {
        Reply::Error(match self {
            Failure::Connect => "IOERR error or timeout connecting to the client".into(),
            Failure::Write => "IOERR error or timeout writing to target instance".into(),
            Failure::Read => "IOERR error or timeout reading to target instance".into(),
            Failure::Target(e) => format!("ERR Target instance replied with error: {e}"),
        })
    }
}

impl MigrateLinks {
    fn take(&self, name: &str) -> Option<Link> {
        let mut links = self.links.lock();
        links.retain(|_, l| l.used.elapsed() < LINK_TTL);
        links.remove(name)
    }

    fn put(&self, name: String, mut link: Link) {
        link.used = Instant::now();
        self.links.lock().insert(name, link);
    }
}

/// Runs a MIGRATE and returns its reply.
pub async fn run(shared: &Arc<MigrationHandle>, req: &MigrateRequest) -> Reply {
    let mut pending: Vec<Bytes> = req.keys.clone();
    let mut replace = req.replace;
    let mut first_error = None;
    for _ in 0..MAX_ROUNDS {
        let sent = match dump_keys(shared, req.source_db, std::mem::take(&mut pending)) {
            Ok(s) => s,
            Err(r) => return r,
        };
        if sent.is_empty() {
            break;
        }
        let results = match send(shared, req, &sent, replace).await {
            Ok(r) => r,
            Err(f) => return f.reply(),
        };
        let mut restored = Vec::with_capacity(sent.len());
        for (item, result) in sent.into_iter().zip(results) {
            match result {
                Err(e) => {
                    first_error.get_or_insert(e);
                }
                Ok(()) if req.copy => {}
                Ok(()) => restored.push(item),
            }
        }
        match delete_if_unchanged(shared, req.source_db, &restored) {
            Ok(kept) => pending.extend(kept),
            Err(e) => return Reply::Error(format!("ERR {e}")),
        }
        if pending.is_empty() {
            break;
        }
        // The target holds the older value now: the next round replaces it (even after
        // another key failed: a key restored there must not stay on both nodes).
        replace = true;
    }
    if !pending.is_empty() {
        let r = last_round_paused(shared, req, pending).await;
        if first_error.is_none() {
            return r;
        }
    }
    if let Some(e) = first_error {
        return Failure::Target(e).reply();
    }
    Reply::OK
}

/// Each existing key with its entry and DUMP payload, as sent to the target.
type Sent = Vec<(Bytes, Entry, Vec<u8>)>;

fn dump_keys(shared: &MigrationHandle, db: u8, keys: Vec<Bytes>) -> Result<Sent, Reply> {
    let err = |e: crate::keyspace::KeyspaceError| Reply::Error(format!("ERR {e}"));
    let mut sent = Vec::with_capacity(keys.len());
    let mut scope = shared.keyspace.pending();
    scope.select(db);
    for k in keys {
        if let Some(e) = scope.lookup(&k).map_err(err)? {
            let p = scope.dump_payload(&k, &e).map_err(err)?;
            sent.push((k, e, p));
        }
    }
    // Lazy expiry may have staged deletes.
    scope.commit().map_err(err)?;
    Ok(sent)
}

/// Moves keys that kept changing with writes to their slots paused (writers wait, as during
/// a native handover), so the value sent is the value deleted.
async fn last_round_paused(
    shared: &Arc<MigrationHandle>,
    req: &MigrateRequest,
    keys: Vec<Bytes>,
) -> Reply {
    let mut slots: Vec<u16> = keys.iter().map(|k| crate::keyspace::key_slot(k)).collect();
    slots.sort_unstable();
    slots.dedup();
    if slots.iter().any(|s| shared.keyspace.write_paused(*s)) {
        return Reply::Error("TRYAGAIN keys kept changing during MIGRATE".into());
    }
    let ranges: Vec<(u16, u16)> = slots.iter().map(|s| (*s, *s)).collect();
    let paused = match pause(shared, &ranges).await {
        Ok(p) => p,
        Err(e) => return Reply::Error(format!("ERR {e}")),
    };
    let reply = async {
        let sent = match dump_keys(shared, req.source_db, keys) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let results = match send(shared, req, &sent, true).await {
            Ok(r) => r,
            Err(f) => return f.reply(),
        };
        for result in results {
            if let Err(e) = result {
                return Failure::Target(e).reply();
            }
        }
        match delete_if_unchanged(shared, req.source_db, &sent) {
            Ok(kept) if kept.is_empty() => Reply::OK,
            Ok(_) => Reply::Error("TRYAGAIN keys kept changing during MIGRATE".into()),
            Err(e) => Reply::Error(format!("ERR {e}")),
        }
    }
    .await;
    drop(paused);
    reply
}

/// Taking the pause waits for in-flight request batches: not on a runtime thread.
async fn pause(shared: &Arc<MigrationHandle>, ranges: &[(u16, u16)]) -> Result<WritePause, String> {
    let sh = Arc::clone(shared);
    let r = ranges.to_vec();
    tokio::task::spawn_blocking(move || sh.keyspace.pause_writes(&r))
        .await
        .map_err(|e| format!("MIGRATE write pause: {e}"))
}

/// Deletes the keys the target restored, each only if it still holds the value sent, in one
/// write (one WAL append and one replicated batch per MIGRATE); returns the keys that changed
/// meanwhile and must be sent again.
fn delete_if_unchanged(
    shared: &MigrationHandle,
    db: u8,
    sent: &[(Bytes, Entry, Vec<u8>)],
) -> crate::keyspace::Result<Vec<Bytes>> {
    let mut scope = shared.keyspace.pending();
    scope.select(db);
    let mut changed = Vec::new();
    for (key, entry, payload) in sent {
        let deleted = if entry.value.is_collection() {
            // A collection's meta record does not show a changed member: compare payloads.
            scope.delete_if_dump_equals(key, payload)?
        } else {
            scope.update(key, |cur| match cur {
                Some(c) if &c == entry => (Update::Delete, true),
                None => (Update::Keep, true),
                Some(_) => (Update::Keep, false),
            })?
        };
        if !deleted {
            changed.push(key.clone());
        }
    }
    scope.commit()?;
    Ok(changed)
}

/// Sends one round of keys; a cached connection that fails is retried once on a fresh one.
async fn send(
    shared: &MigrationHandle,
    req: &MigrateRequest,
    keys: &[(Bytes, Entry, Vec<u8>)],
    replace: bool,
) -> Result<Vec<Result<(), String>>, Failure> {
    let name = format!("{}:{}", req.host, req.port);
    let cluster = shared.cluster.is_some();
    for attempt in 0..2 {
        let (mut link, cached) = match shared.migrate_links.take(&name) {
            Some(l) => (l, true),
            None => (connect(req).await?, false),
        };
        match exchange(&mut link, req, keys, replace, cluster).await {
            Ok(r) => {
                shared.migrate_links.put(name, link);
                return Ok(r);
            }
            Err(Failure::Target(e)) => return Err(Failure::Target(e)),
            Err(f) if !cached || attempt == 1 => return Err(f),
            Err(_) => continue,
        }
    }
    Err(Failure::Connect)
}

async fn connect(req: &MigrateRequest) -> Result<Link, Failure> {
    let addr = (req.host.as_str(), req.port);
    let open = async {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn LinkStream> = match crate::tls::cluster_connector() {
            Some(tls) => Box::new(
                tls.connect(crate::tls::peer_server_name(&req.host), tcp)
                    .await?,
            ),
            None => Box::new(tcp),
        };
        std::io::Result::Ok(stream)
    };
    match tokio::time::timeout(req.timeout, open).await {
        Ok(Ok(s)) => Ok(Link {
            stream: BufReader::new(s),
            db: None,
            used: Instant::now(),
        }),
        Ok(Err(e)) => {
            tracing::debug!("MIGRATE to {}:{}: {e}", req.host, req.port);
            Err(Failure::Connect)
        }
        Err(_) => Err(Failure::Connect),
    }
}

fn push_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

async fn exchange(
    link: &mut Link,
    req: &MigrateRequest,
    keys: &[(Bytes, Entry, Vec<u8>)],
    replace: bool,
    cluster: bool,
) -> Result<Vec<Result<(), String>>, Failure> {
    let mut out = Vec::new();
    let mut preamble = 0;
    if let Some(auth) = &req.auth {
        let mut a: Vec<&[u8]> = vec![b"AUTH"];
        a.extend(auth.iter().map(|x| &x[..]));
        push_command(&mut out, &a);
        preamble += 1;
    }
    let select = link.db != Some(req.db);
    if select {
        push_command(&mut out, &[b"SELECT", req.db.to_string().as_bytes()]);
        preamble += 1;
    }
    let restore: &[u8] = if cluster {
        b"RESTORE-ASKING"
    } else {
        b"RESTORE"
    };
    let now = now_ms();
    for (key, e, payload) in keys {
        // Valkey sends the remaining time, at least 1 ms for a key about to expire.
        let ttl = e.expire_at.map_or(0, |at| (at - now).max(1));

        let ttl = ttl.to_string();
        let mut a: Vec<&[u8]> = vec![restore, key, ttl.as_bytes(), payload];
        if replace {
            a.push(b"REPLACE");
        }
        push_command(&mut out, &a);
    }
    let io = async {
        link.stream
            .get_mut()
            .write_all(&out)
            .await
            .map_err(|_| Failure::Write)?;
        let mut replies = Vec::with_capacity(preamble + keys.len());
        let mut line = String::new();
        for _ in 0..preamble + keys.len() {
            line.clear();
            match link.stream.read_line(&mut line).await {
                Ok(n) if n > 0 => {}
                _ => return Err(Failure::Read),
            }
            let l = line.trim_end_matches(['\r', '\n']);
            replies.push(match l.strip_prefix('-') {
                Some(e) => Err(e.to_string()),
                None if l.starts_with('+') => Ok(()),
                None => return Err(Failure::Read),
            });
        }
        Ok(replies)
    };
    let replies = tokio::time::timeout(req.timeout, io)
        .await
        .map_err(|_| Failure::Read)??;
    let (pre, per_key) = replies.split_at(preamble);
    if let Some(Err(e)) = pre.iter().find(|r| r.is_err()) {
        return Err(Failure::Target(e.clone()));
    }
    if select {
        link.db = Some(req.db);
    }
    Ok(per_key.to_vec())
}

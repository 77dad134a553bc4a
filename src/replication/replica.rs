//! The replica side: follows whichever primary the cluster state (or REPLICAOF) names, applies
//! its batches in order with the offset persisted in the same write, and acknowledges offsets.
//! When the node stops being a replica it takes over the stream as a primary.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio_stream::StreamExt;

use super::wire::{Hello, PrimaryMsg};
use super::ReplHandle;
use super::{encode_state, Upstream, STATE_KEY};
use crate::config::{AppendFsync, Config};
use crate::keyspace::Keyspace;
use crate::storage::{Batch, Staged};

/// How this node reaches its primary: `(ip, client port, rpc port)`.
fn upstream_target(shared: &ReplHandle) -> Option<(String, u16, u16)> {
    if let Some(cl) = &shared.cluster {
        let primary = cl.view().role_replica_of?;
        return cl.read(|st| {
            st.nodes
                .get(&primary)
                .map(|n| (n.ip.clone(), n.port, n.cport))
        });
    }
    let c = shared.config.snapshot();
    let (host, port) = c.replicaof.clone()?;
    Some((host, port, port.checked_add(10000)?))
}

pub fn spawn_replica_task(shared: Arc<ReplHandle>) {
    tokio::spawn(async move {
        loop {
            if shared.is_shutting_down() {
                return;
            }
            match upstream_target(&shared) {
                None => {
                    // Promoted (failover or REPLICAOF NO ONE), unless a write got there first.
                    if shared.keyspace.is_read_only() {
                        let delay = shared.replication.promote_delay_ms.load(Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    shared.ensure_primary();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Some((ip, port, rpc_port)) => {
                    shared.keyspace.set_read_only(true);
                    // A replica mirrors the stream so it can serve partial syncs once promoted.
                    shared.replication.backlog.activate();
                    {
                        let mut up = shared.replication.upstream.lock();
                        let u = up.get_or_insert_with(Upstream::default);
                        if u.host != ip || u.port != port {
                            *u = Upstream {
                                host: ip.clone(),
                                port,
                                ..Default::default()
                            };
                        }
                    }
                    if shared.isolated() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    let sh = Arc::clone(&shared);
                    let _ = tokio::task::spawn_blocking(move || prepare_families(&sh)).await;
                    if let Err(e) = follow(&shared, &ip, rpc_port).await {
                        tracing::warn!("replication from {ip}:{port}: {e}");
                    }
                    if let Some(u) = shared.replication.upstream.lock().as_mut() {
                        u.link_up = false;
                        u.syncing = false;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
}

fn still_following(shared: &ReplHandle, ip: &str, rpc_port: u16) -> bool {
    !shared.isolated()
        && matches!(upstream_target(shared), Some((i, _, r)) if i == ip && r == rpc_port)
}

/// Creates the storage families of the primary's slots before any data arrives, so applying
/// the stream never waits for a family to be created (each creation rewrites RocksDB's
/// options file).
fn prepare_families(shared: &ReplHandle) {
    let Some(cl) = &shared.cluster else { return };
    let Some(primary) = cl.view().role_replica_of else {
        return;
    };
    let slots: Vec<u16> = cl.read(|st| {
        (0..crate::slot::SLOTS as u16)
            .filter(|s| st.slots[*s as usize] == Some(primary))
            .collect()
    });
    if let Err(e) = shared.engine.ensure_slots(&slots) {
        tracing::warn!("preparing storage for the primary's slots: {e}");
    }
}

/// One connection to the primary, until it breaks or the primary changes.
async fn follow(shared: &Arc<ReplHandle>, ip: &str, rpc_port: u16) -> Result<(), String> {
    let c = shared.config.snapshot();
    let digest = c
        .masterauth
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(crate::cluster::secret_digest);
    let pos = shared.replication.backlog.position();
    let node_id = shared
        .cluster
        .as_ref()
        .map(|cl| cl.read(|st| st.myself.to_string()))
        .unwrap_or_default();
    let my_ip = c.bind.first().cloned().unwrap_or_default();
    let hello = Hello {
        replid: pos.replid.clone(),
        offset: pos.offset,
        ip: my_ip,
        port: c.port,
        node_id,
    };
    let mut link = shared
        .upstream
        .open(ip, rpc_port, digest.as_deref(), hello)
        .await?;
    let mut replid = pos.replid;
    let mut applied = pos.offset;
    let mut incoming: Vec<(String, PathBuf)> = Vec::new();
    let mut file: Option<(tokio::fs::File, String, PathBuf)> = None;
    let sync_dir = c.dir.join("replsync-in");
    let silence = Duration::from_millis(c.cluster_node_timeout_ms.max(5000) * 2);
    // Slots fetched from the primary after a slot migration, with the primary's offset of
    // that fetch: batches up to it are already contained for those slots.
    let mut fetched: Vec<(Vec<(u16, u16)>, u64)> = Vec::new();
    let acks = Acks::new(shared, &link, &c);
    set_link(shared, true, None);
    loop {
        if !still_following(shared, ip, rpc_port) || shared.is_shutting_down() {
            return Ok(());
        }
        let msg = match tokio::time::timeout(silence, link.inbound.next()).await {
            Err(_) => return Err("primary silent for too long".into()),
            Ok(None) => return Err("primary closed the stream".into()),
            Ok(Some(m)) => m?,
        };
        if let Some(u) = shared.replication.upstream.lock().as_mut() {
            u.last_io = Some(Instant::now());
        }
        match msg {
            PrimaryMsg::FullBegin {
                replid: id,
                offset,
                files,
            } => {
                tracing::info!("full sync from {ip}: {files} files at offset {offset}");
                set_link(shared, true, Some(true));
                let _ = tokio::fs::remove_dir_all(&sync_dir).await;
                tokio::fs::create_dir_all(&sync_dir)
                    .await
                    .map_err(|e| e.to_string())?;
                incoming.clear();
                replid = id;
                applied = offset;
            }
            PrimaryMsg::Chunk {
                family,
                name,
                data,
                last,
                crc32,
            } => {
                if crc32fast::hash(&data) != crc32 {
                    return Err(format!("checksum mismatch in {name}"));
                }
                if name.contains(['/', '\\']) || !name.ends_with(".sst") || name.starts_with('.') {
                    return Err(format!("refusing file name {name:?} from primary"));
                }
                if file.as_ref().is_none_or(|(_, n, _)| *n != name) {
                    let path = sync_dir.join(&name);
                    let f = tokio::fs::File::create(&path)
                        .await
                        .map_err(|e| e.to_string())?;
                    file = Some((f, name.clone(), path));
                }
                if let Some((f, _, _)) = file.as_mut() {
                    f.write_all(&data).await.map_err(|e| e.to_string())?;
                }
                if last {
                    if let Some((f, _, path)) = file.take() {
                        f.sync_all().await.map_err(|e| e.to_string())?;
                        incoming.push((family, path));
                    }
                }
            }
            PrimaryMsg::FullEnd {
                offset,
                keys,
                records,
            } => {
                let sh = Arc::clone(shared);
                let files = std::mem::take(&mut incoming);
                let id = replid.clone();
                let (from_ip, port) = (ip.to_string(), rpc_port);
                tokio::task::spawn_blocking(move || -> Result<(), String> {
                    // Not over the writes of a node promoted meanwhile.
                    let _role = sh.replication.role.lock();
                    if !still_following(&sh, &from_ip, port) {
                        return Err("no longer following this primary".into());
                    }
                    sh.engine.replace_all(&files).map_err(|e| e.to_string())?;
                    sh.keyspace.reload().map_err(|e| e.to_string())?;
                    // The primary's libraries replace this node's, with the data.
                    sh.keyspace
                        .apply_replicated(
                            &Keyspace::records_batch(&records).encode(),
                            STATE_KEY,
                            encode_state(&id, offset),
                        )
                        .map_err(|e| e.to_string())?;
                    sh.replication.backlog.reset(id, offset);
                    Ok(())
                })
                .await
                .map_err(|e| e.to_string())??;
                let _ = tokio::fs::remove_dir_all(&sync_dir).await;
                applied = offset;
                if let Some(u) = shared.replication.upstream.lock().as_mut() {
                    u.full_syncs += 1;
                }
                set_link(shared, true, Some(false));
                tracing::info!("full sync done: {keys} records, offset {offset}");
                acks.ack(&link, applied).await?;
            }
            PrimaryMsg::Continue { replid: id, offset } => {
                if id != replid {
                    let _role = shared.replication.role.lock();
                    if !still_following(shared, ip, rpc_port) {
                        return Ok(());
                    }
                    replid = id;
                    shared.replication.backlog.reset(replid.clone(), offset);
                }
                applied = offset;
                if let Some(u) = shared.replication.upstream.lock().as_mut() {
                    u.partial_syncs += 1;
                }
                acks.ack(&link, applied).await?;
            }
            PrimaryMsg::Batch { offset, ops } => {
                fetched.retain(|(_, until)| offset <= *until);
                let imported = Batch::decode(&ops)
                    .map(|b| b.imported_slots())
                    .unwrap_or_default();
                if !imported.is_empty() {
                    // Fetched before the marker's offset is stored and acknowledged: a replica
                    // stopped mid-fetch comes back before the marker and fetches again, and
                    // the primary's commit (which waits for this ack) knows the data is here.
                    let until = fetch_imported(shared, ip, rpc_port, &imported).await?;
                    fetched.push((imported, until));
                }
                let skip: Vec<(u16, u16)> = fetched
                    .iter()
                    .flat_map(|(r, _)| r.iter().copied())
                    .collect();
                let state = encode_state(&replid, offset);
                // Not applied once this node has become a primary: its own writes follow.
                let role = shared.replication.role.lock();
                if !still_following(shared, ip, rpc_port) {
                    return Ok(());
                }
                if skip.is_empty() {
                    shared.keyspace.apply_replicated(&ops, STATE_KEY, state)
                } else {
                    shared
                        .keyspace
                        .apply_replicated_except(&ops, &skip, STATE_KEY, state)
                }
                .map_err(|e| format!("applying batch at {offset}: {e}"))?;
                shared.replication.backlog.append_at(offset, ops.to_vec());
                drop(role);
                applied = offset;
                // WAIT and the synchronous mode wait on this ack.
                acks.ack(&link, applied).await?;
            }
            PrimaryMsg::Heartbeat { .. } => acks.ack(&link, applied).await?,
        }
    }
}

/// How applied offsets are acknowledged. With `replica-ack-before-reply` or `appendfsync
/// always` an ack must mean the write is durable here (the primary tells its client on it), so
/// a task syncs the WAL before each ack; offsets applied during one sync share the next.
/// Otherwise an ack goes out as soon as the batch is applied (in the WAL, not yet synced).
enum Acks {
    Applied,
    Durable(tokio::sync::watch::Sender<u64>),
}

impl Acks {
    fn new(shared: &Arc<ReplHandle>, link: &super::wire::UpstreamLink, c: &Config) -> Acks {
        if !c.replica_ack_before_reply && c.appendfsync != AppendFsync::Always {
            return Acks::Applied;
        }
        let (tx, mut rx) = tokio::sync::watch::channel(0u64);
        rx.mark_unchanged();
        let out = link.acks.clone();
        let engine = Arc::clone(&shared.engine);
        tokio::spawn(async move {
            // Ends with the stream: its sender is dropped, or the primary hung up.
            while rx.changed().await.is_ok() {
                let offset = *rx.borrow_and_update();
                let e = Arc::clone(&engine);
                match tokio::task::spawn_blocking(move || e.sync_wal()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        // Nothing more is acknowledged: the primary's waiters time out
                        // instead of counting a write this replica may not keep.
                        tracing::error!("replica WAL sync failed, acknowledging no more: {err}");
                        return;
                    }
                    Err(_) => return,
                }
                if out.send(offset).await.is_err() {
                    return;
                }
            }
        });
        Acks::Durable(tx)
    }

    /// The future does not borrow the link, so the replica task stays `Send`.
    fn ack(
        &self,
        link: &super::wire::UpstreamLink,
        offset: u64,
    ) -> futures::future::BoxFuture<'static, Result<(), String>> {
        match self {
            Acks::Applied => Box::pin(link.ack(offset)),
            Acks::Durable(tx) => {
                tx.send_replace(offset);
                Box::pin(std::future::ready(Ok(())))
            }
        }
    }
}

/// The primary ingested migrated slots: fetch them from it (its current state, whose write-log
/// offset is returned so later batches for those slots up to it are skipped).
async fn fetch_imported(
    shared: &Arc<ReplHandle>,
    ip: &str,
    rpc_port: u16,
    ranges: &[(u16, u16)],
) -> Result<u64, String> {
    let t0 = Instant::now();
    tracing::info!(
        "fetching imported slots {} from the primary",
        crate::slot::ranges_text(ranges)
    );
    let digest = crate::cluster::bus_digest(&shared.config.snapshot());
    let mut peer = shared.peers.connect(ip, rpc_port, digest).await?;
    let mut chunks = peer.export(ranges).await?;
    let dir = shared
        .config
        .snapshot()
        .dir
        .join("migration")
        .join("replica-fetch");
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(Vec<u8>, Vec<u8>)>>(4);
    let sh = Arc::clone(shared);
    // Written to files first: the slots keep their contents until the whole state is here.
    let writer = tokio::task::spawn_blocking(move || -> Result<(Staged, u64), String> {
        let mut loader =
            crate::storage::SlotLoader::new(&sh.engine, &dir).map_err(|e| e.to_string())?;
        while let Ok(entries) = rx.recv() {
            for (k, v) in &entries {
                loader.put(k, v).map_err(|e| e.to_string())?;
            }
        }
        let n = loader.entries();
        Ok((loader.stage().map_err(|e| e.to_string())?, n))
    });
    let mut end = None;
    let mut failure = None;
    while let Some(c) = chunks.next().await {
        match c {
            Ok(c) => {
                if c.last {
                    end = Some(c.offset);
                }
                if tx.send(c.entries).is_err() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let (staged, n) = writer.await.map_err(|e| e.to_string())??;
    let offset = match (failure, end) {
        (None, Some(offset)) => offset,
        (failure, _) => {
            let _ = std::fs::remove_dir_all(&staged.dir);
            return Err(format!(
                "fetching imported slots: {}",
                failure.unwrap_or_else(|| "the stream ended before the snapshot did".into())
            ));
        }
    };
    // The slots' old contents go and the fetched state takes their place while no promotion
    // can happen, and only while this node still follows that primary.
    let sh = Arc::clone(shared);
    let (r, ip) = (ranges.to_vec(), ip.to_string());
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        let _role = sh.replication.role.lock();
        let done = if still_following(&sh, &ip, rpc_port) {
            sh.keyspace
                .replica_drop_slots(&r)
                .and_then(|_| sh.engine.ingest_staged(&staged).map_err(Into::into))
                .and_then(|_| sh.keyspace.reload_slots(&r))
                .map_err(|e| e.to_string())
        } else {
            Err("no longer following this primary".into())
        };
        if done.is_err() {
            let _ = std::fs::remove_dir_all(&staged.dir);
        }
        done
    })
    .await
    .map_err(|e| e.to_string())??;
    tracing::info!(
        "fetched {n} entries of imported slots {} from the primary in {:?}",
        crate::slot::ranges_text(ranges),
        t0.elapsed()
    );
    Ok(offset)
}

fn set_link(shared: &ReplHandle, up: bool, syncing: Option<bool>) {
    if let Some(u) = shared.replication.upstream.lock().as_mut() {
        u.link_up = up;
        if let Some(s) = syncing {
            u.syncing = s;
        }
    }
}

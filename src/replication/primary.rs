//! The primary side: one feeder task per connected replica. It never blocks client writes: a
//! slow replica only falls behind in the backlog, and one that falls out of it reconnects for a
//! full sync.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::wire::ReplSource;
use super::wire::{Hello, PrimaryMsg};
use super::Link;
use super::ReplHandle;
use crate::keyspace::Keyspace;

const CHUNK: usize = 1 << 20;

pub struct PrimarySide {
    shared: Arc<ReplHandle>,
}

impl PrimarySide {
    pub fn new(shared: Arc<ReplHandle>) -> PrimarySide {
        PrimarySide { shared }
    }
}

#[async_trait::async_trait]
impl ReplSource for PrimarySide {
    async fn open(
        &self,
        hello: Hello,
        peer_ip: String,
    ) -> Result<(u64, mpsc::Receiver<PrimaryMsg>), String> {
        if self.shared.isolated() {
            return Err("isolated".into());
        }
        if self.shared.is_replica() {
            return Err("this node is a replica; replicate from its primary".into());
        }
        let repl = &self.shared.replication;
        // Start recording before the snapshot is taken, so the stream continues from it.
        repl.backlog.activate();
        let link = repl.add_link(Link {
            ip: if hello.ip.is_empty() {
                peer_ip
            } else {
                hello.ip.clone()
            },
            port: hello.port,
            node_id: hello.node_id.clone(),
            ack: hello.offset,
            last_ack: Instant::now(),
            online: false,
            sent: 0,
        });
        let (tx, rx) = mpsc::channel(32);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            if let Err(e) = feed(&shared, link, hello, tx).await {
                tracing::info!("replication stream {link} ended: {e}");
            }
            shared.replication.remove_link(link);
        });
        Ok((link, rx))
    }

    fn on_ack(&self, link: u64, offset: u64) {
        self.shared.replication.ack(link, offset);
    }

    fn on_close(&self, link: u64) {
        self.shared.replication.remove_link(link);
    }
}

async fn send(tx: &mpsc::Sender<PrimaryMsg>, m: PrimaryMsg) -> Result<(), String> {
    tx.send(m)
        .await
        .map_err(|_| "replica disconnected".to_string())
}

async fn feed(
    shared: &Arc<ReplHandle>,
    link: u64,
    hello: Hello,
    tx: mpsc::Sender<PrimaryMsg>,
) -> Result<(), String> {
    let repl = &shared.replication;
    let now = repl.backlog.position();
    if hello.replid == now.replid && hello.offset > now.offset {
        tracing::warn!(
            "replica {}:{} claims offset {} beyond ours ({}); refusing to continue, sending a full sync",
            hello.ip,
            hello.port,
            hello.offset,
            now.offset
        );
    }
    let continues = repl.backlog.can_continue(&hello.replid, hello.offset);
    // Held from here: what is written during a full sync streams after it.
    let pin = repl
        .backlog
        .pin(link, if continues { hello.offset } else { now.offset });
    let mut pos = if continues {
        repl.partial_syncs_served.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "replica {}:{} continues from offset {}",
            hello.ip,
            hello.port,
            hello.offset
        );
        repl.note_sent(link, hello.offset);
        send(
            &tx,
            PrimaryMsg::Continue {
                replid: now.replid,
                offset: hello.offset,
            },
        )
        .await?;
        hello.offset
    } else {
        full_sync(shared, link, &hello, &tx).await?
    };
    repl.set_online(link);
    let mut changed = repl.backlog.subscribe();
    loop {
        let Some(frames) = repl.backlog.frames_for(&pin, pos) else {
            return Err(format!(
                "replica fell behind the backlog at offset {pos}; it will full sync"
            ));
        };
        for (end, ops) in frames {
            repl.note_sent(link, end);
            send(&tx, PrimaryMsg::Batch { offset: end, ops }).await?;
            pos = end;
        }
        if shared.isolated() {
            return Err("node isolated (fault injection)".into());
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return Ok(()) },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                send(&tx, PrimaryMsg::Heartbeat { offset: pos }).await?;
            }
        }
    }
}

/// Exports a consistent snapshot as SST files and streams them; returns the offset the stream
/// continues from.
async fn full_sync(
    shared: &Arc<ReplHandle>,
    link: u64,
    hello: &Hello,
    tx: &mpsc::Sender<PrimaryMsg>,
) -> Result<u64, String> {
    let started = Instant::now();
    let dir = shared
        .config
        .snapshot()
        .dir
        .join("replsync-out")
        .join(link.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    let sh = Arc::clone(shared);
    let d = dir.clone();
    let exported = tokio::task::spawn_blocking(move || {
        sh.keyspace.snapshot_at_offset(|snap, offset| {
            let records = Keyspace::records_at(&snap).map_err(|e| e.to_string())?;
            let files = snap.export(&d).map_err(|e| e.to_string())?;
            Ok::<_, String>((files, records, offset))
        })
    })
    .await
    .map_err(|e| e.to_string())??;
    let (files, records, offset) = exported;
    let replid = shared.replication.backlog.position().replid;
    tracing::info!(
        "full sync to replica {}:{}: {} files at offset {offset}",
        hello.ip,
        hello.port,
        files.len()
    );
    let result = async {
        send(
            tx,
            PrimaryMsg::FullBegin {
                replid,
                offset,
                files: files.len() as u32,
            },
        )
        .await?;
        let mut entries = 0;
        for f in &files {
            entries += f.entries;
            let name = f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut file = tokio::fs::File::open(&f.path)
                .await
                .map_err(|e| e.to_string())?;
            let size = file.metadata().await.map_err(|e| e.to_string())?.len();
            let mut sent = 0u64;
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = file.read(&mut buf).await.map_err(|e| e.to_string())?;
                buf.truncate(n);
                sent += n as u64;
                let last = n == 0 || sent >= size;
                let crc32 = crc32fast::hash(&buf);
                send(
                    tx,
                    PrimaryMsg::Chunk {
                        family: f.family.clone(),
                        name: name.clone(),
                        data: buf,
                        last,
                        crc32,
                    },
                )
                .await?;
                if last {
                    break;
                }
            }
        }
        shared.replication.note_sent(link, offset);
        send(
            tx,
            PrimaryMsg::FullEnd {
                offset,
                keys: entries,
                records,
            },
        )
        .await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    shared
        .replication
        .full_syncs_served
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        "full sync to {}:{} sent in {:?}",
        hello.ip,
        hello.port,
        started.elapsed()
    );
    Ok(offset)
}

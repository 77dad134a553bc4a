//! Connected clients as other connections see them: a registry of shared handles for CLIENT
//! LIST/KILL/INFO and shutdown. Per-connection state lives with the handler contract
//! (`command::ClientState`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

#[derive(Default)]
pub struct ClientMeta {
    pub name: String,
    /// The ACL user (CLIENT LIST's `user=`).
    pub user: String,
    pub lib_name: String,
    pub lib_ver: String,
}

/// The part of a client other connections can see and act on.
pub struct ClientHandle {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created: Instant,
    pub meta: Mutex<ClientMeta>,
    /// Milliseconds since `created` of the last command.
    pub last_active_ms: AtomicU64,
    pub last_cmd: Mutex<&'static str>,
    pub resp: AtomicU8,
    /// The selected database (`db=`).
    pub db: AtomicU8,
    pub qbuf: AtomicI64,
    /// Waiting in a blocking command (`flags=b`).
    pub blocked: AtomicBool,
    /// CLIENT NO-TOUCH: its commands leave key access times alone (TOUCH still counts).
    pub no_touch: AtomicBool,
    /// Channel, pattern and shard-channel subscriptions (`sub= psub= ssub=`).
    pub subscriptions: Mutex<[usize; 3]>,
    /// Bytes of pub/sub messages queued for this client and not yet taken by its connection
    /// (what `client-output-buffer-limit pubsub` limits).
    pub pubsub_queued: AtomicU64,
    /// When the queue went over the soft limit (ms since `created`, plus one); 0 = not over.
    pub pubsub_soft_since: AtomicU64,
    killed: AtomicBool,
    kill: Notify,
}

impl ClientHandle {
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    pub async fn killed(&self) {
        if self.is_killed() {
            return;
        }
        self.kill.notified().await
    }

    pub fn touch(&self, cmd: &'static str) {
        self.last_active_ms
            .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
        *self.last_cmd.lock() = cmd;
    }

    /// One `CLIENT LIST` line (without the trailing newline).
    pub fn describe(&self) -> String {
        let m = self.meta.lock();
        let [sub, psub, ssub] = *self.subscriptions.lock();
        let mut flags = String::new();
        if self.blocked.load(Ordering::Relaxed) {
            flags.push('b');
        }
        if sub + psub + ssub > 0 {
            flags.push('P');
        }
        if self.no_touch.load(Ordering::Relaxed) {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let age = self.created.elapsed().as_secs();
        let idle = age.saturating_sub(self.last_active_ms.load(Ordering::Relaxed) / 1000);
        format!(
            "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} \
             multi=-1 watch=0 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 \
             omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            m.name,
            age,
            idle,
            flags,
            self.db.load(Ordering::Relaxed),
            sub,
            psub,
            ssub,
            self.qbuf.load(Ordering::Relaxed).max(0),
            self.last_cmd.lock(),
            m.user,
            self.resp.load(Ordering::Relaxed),
            m.lib_name,
            m.lib_ver,
        )
    }
}

#[derive(Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
    /// Bytes in every client's query buffer together (`maxmemory-clients` limits it).
    query_bytes: AtomicI64,
}

impl ClientRegistry {
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientHandle> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let h = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            created: Instant::now(),
            meta: Mutex::new(ClientMeta {
                user: "default".into(),
                ..ClientMeta::default()
            }),
            last_active_ms: AtomicU64::new(0),
            last_cmd: Mutex::new("NULL"),
            resp: AtomicU8::new(2),
            db: AtomicU8::new(0),
            qbuf: AtomicI64::new(0),
            blocked: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            subscriptions: Mutex::new([0; 3]),
            pubsub_queued: AtomicU64::new(0),
            pubsub_soft_since: AtomicU64::new(0),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
        });
        self.clients.lock().insert(id, Arc::clone(&h));
        h
    }

    pub fn unregister(&self, id: u64) {
        if let Some(h) = self.clients.lock().remove(&id) {
            self.note_query_buffer(&h, 0);
        }
    }

    /// Records that `h`'s query buffer holds `len` bytes; what all clients' hold together.
    pub fn note_query_buffer(&self, h: &ClientHandle, len: usize) -> i64 {
        let old = h.qbuf.swap(len as i64, Ordering::Relaxed);
        let delta = len as i64 - old;
        self.query_bytes.fetch_add(delta, Ordering::Relaxed) + delta
    }

    pub fn count(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.clients.lock().values().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.clients.lock().get(&id).cloned()
    }

    /// Asks every connection to close (shutdown).
    pub fn kill_all(&self) {
        for c in self.all() {
            c.kill();
        }
    }
}

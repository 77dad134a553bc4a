//! The handler contract's client side: the state of one connection, owned by its task and
//! lent to handlers, and what a handler asks the connection to do after its reply ([`After`]).
//!
//! Must not: do I/O; the connection (`server`) acts on these.

use std::sync::Arc;
use std::time::Duration;

use crate::node::ClientHandle;
use crate::resp::Protocol;

/// What the connection does after writing the current reply.
#[derive(Debug, Clone, PartialEq)]
pub enum After {
    Close,
    Shutdown,
    /// WAIT/WAITAOF: reply once `replicas` acknowledged `offset` or the timeout passed.
    Wait {
        replicas: usize,
        offset: u64,
        timeout: Option<Duration>,
        aof: Option<i64>,
    },
    /// A write waits for a slot handover (`parked` holds it).
    Park,
    /// A blocking command found nothing: wait for a write to `keys` (then run it again) or
    /// for the timeout (then answer `timeout_reply`). `None` waits forever.
    Block {
        keys: Vec<bytes::Bytes>,
        timeout: Option<Duration>,
        timeout_reply: crate::resp::Reply,
        /// What runs when woken, if not the command as sent (XREAD's `$` becomes the id it
        /// stood for, so the wait ends at the first entry added after it).
        rerun: Option<Vec<bytes::Bytes>>,
    },
    /// CLUSTER SETSLOT NODE: the reply waits until the other nodes heard the new owner.
    Announce,
    /// MIGRATE: the connection moves the keys, then replies.
    Migrate(Box<crate::migration::MigrateRequest>),
}

/// State of one connection, owned by its task and lent to handlers.
pub struct ClientState {
    pub handle: Arc<ClientHandle>,
    pub protocol: Protocol,
    pub authenticated: bool,
    pub after: Option<After>,
    /// Set by a successful write command; the connection waits for WAL durability before
    /// replying when `appendfsync always`.
    pub wrote: bool,
    /// The connection already waited for those writes' WAL sync.
    pub synced: bool,
    /// ASKING was sent: the next command may touch an importing slot.
    pub asking: bool,
    /// READONLY was sent: reads may be served by a replica.
    pub readonly: bool,
    /// Commands queued since MULTI.
    pub multi: Option<Vec<Vec<bytes::Bytes>>>,
    /// A queued command was refused: EXEC aborts.
    pub multi_failed: bool,
    /// Commands this client ran (dispatch tells a rejected command from one that ran).
    pub executed: u64,
    /// A write waiting for a slot handover, run again before anything else is read.
    pub parked: Option<(Vec<bytes::Bytes>, std::time::Instant)>,
    /// When the current parked write first waited.
    pub parked_since: Option<std::time::Instant>,
    /// WATCHed keys: the flag set when the key changes, and the expiry it had when watched.
    pub watched: Vec<(crate::keyspace::WatchFlag, Option<i64>)>,
    /// The blocking command this connection waits on, registered with its keys.
    pub blocked: Option<crate::node::Blocked>,
    /// Keys written by this connection since its last commit, for waking blocked clients.
    pub touched: Vec<bytes::Bytes>,
    /// Events (class, name, key) the running command raised itself, for keyspace
    /// notifications: stream and hash field TTL commands raise what they did (`xtrim`,
    /// `hexpired`, ...), not only what their name says.
    pub events: Vec<(u16, &'static str, bytes::Bytes)>,
    /// EXEC is running the queued commands: blocking commands do not block.
    pub in_exec: bool,
    /// A script runs the commands (SORT then sorts a set it would leave in native order).
    pub in_script: bool,
    /// Pub/sub subscriptions, once the connection subscribed to anything.
    pub pubsub: Option<crate::node::pubsub::Subscriptions>,
    /// The client came in on the TLS port: cluster replies and redirects name TLS ports.
    pub tls: bool,
    /// The ACL user the connection runs as.
    pub session: crate::acl::Session,
    /// The selected (logical) database.
    pub db: u8,
    /// CLIENT TRACKING's mode while it is on (the node's table has the same).
    pub tracking: Option<crate::node::tracking::TrackingMode>,
    /// CLIENT CACHING YES|NO was just sent: it applies to the next command only.
    pub caching: bool,
}

impl ClientState {
    /// Whether EXEC must fail: a watched key changed or expired since WATCH.
    pub fn watch_dirty(&self) -> bool {
        let now = crate::keyspace::now_ms();
        self.watched.iter().any(|(f, at)| {
            f.load(std::sync::atomic::Ordering::Acquire) || at.is_some_and(|at| at <= now)
        })
    }
}

impl ClientState {
    pub fn id(&self) -> u64 {
        self.handle.id
    }
}

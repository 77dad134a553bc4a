//! ACL users as Valkey 8.1 has them: users with passwords, command rules (commands,
//! subcommands, first arguments, categories), key patterns with read/write permissions,
//! channel patterns and extra selectors; authentication, the permission check every command
//! passes, and the ACL log.
//!
//! Owns: the users (one immutable set swapped as a whole, with a generation connections
//! compare to refresh their user cheaply), rule parsing and rendering (`rules`), the aclfile
//! format (`file`). Must not: run commands or touch sockets; the command layer asks it.

mod file;
mod log;
mod rules;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

pub use file::{load_file, save_file, users_from_lines, users_from_text, FileError};
pub use log::{LogEntry, LogReason};
pub use rules::{RuleError, RuleFailure, Selector, User};

/// Valkey's categories in its table order (ACL CAT, COMMAND INFO).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

pub(crate) fn category_bit(name: &str) -> Option<u32> {
    CATEGORIES.iter().position(|c| *c == name).map(|i| 1 << i)
}

/// The category names in `bits`, in table order.
pub fn category_names(bits: u32) -> impl Iterator<Item = &'static str> {
    CATEGORIES
        .iter()
        .enumerate()
        .filter(move |(i, _)| bits & (1 << i) != 0)
        .map(|(_, c)| *c)
}

/// Every command and subcommand, numbered (the command layer builds it from its table): a
/// selector's command rules are a bitmap over it.
#[derive(Default)]
pub struct Catalog {
    pub entries: Vec<CatalogEntry>,
    /// Lower-case top-level name -> entry.
    by_name: HashMap<String, usize>,
}

pub struct CatalogEntry {
    /// `get`, `config|set`.
    pub fullname: String,
    /// Category bits (see [`CATEGORIES`]).
    pub categories: u32,
    /// The container's entry, for a subcommand.
    pub parent: Option<usize>,
    /// The subcommands' entries, for a container.
    pub subs: Vec<usize>,
}

static CATALOG: OnceLock<Catalog> = OnceLock::new();

impl Catalog {
    /// Adds a top-level command with its subcommands `(name, categories)`; returns its entry.
    pub fn add(&mut self, name: &str, categories: u32, subs: &[(&str, u32)]) -> usize {
        let at = self.entries.len();
        self.entries.push(CatalogEntry {
            fullname: name.to_string(),
            categories,
            parent: None,
            subs: Vec::new(),
        });
        self.by_name.insert(name.to_ascii_lowercase(), at);
        for (s, c) in subs {
            let i = self.entries.len();
            self.entries.push(CatalogEntry {
                fullname: format!("{name}|{s}"),
                categories: *c,
                parent: Some(at),
                subs: Vec::new(),
            });
            self.entries[at].subs.push(i);
        }
        at
    }

    /// Makes this the catalog every rule refers to (once, at start).
    pub fn install(self) {
        let _ = CATALOG.set(self);
    }

    pub(crate) fn get() -> &'static Catalog {
        static EMPTY: OnceLock<Catalog> = OnceLock::new();
        CATALOG
            .get()
            .unwrap_or_else(|| EMPTY.get_or_init(Catalog::default))
    }

    /// A top-level command (any case).
    pub fn command(&self, name: &[u8]) -> Option<usize> {
        let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        self.by_name.get(&name).copied()
    }

    /// A subcommand of entry `parent` (any case).
    pub fn sub(&self, parent: usize, name: &[u8]) -> Option<usize> {
        let prefix = self.entries[parent].fullname.len() + 1;
        self.entries[parent]
            .subs
            .iter()
            .copied()
            .find(|&s| self.entries[s].fullname.as_bytes()[prefix..].eq_ignore_ascii_case(name))
    }
}

/// One key of a call: it reads the value (`%R` needed) and/or changes it (`%W` needed).
#[derive(Debug, Clone, Copy)]
pub struct KeyUse<'a> {
    pub key: &'a [u8],
    pub at: usize,
    pub read: bool,
    pub write: bool,
}

/// What one call asks for, as the permission check sees it.
pub struct Access<'a> {
    /// The catalog entry of the command (or subcommand) that runs.
    pub command: usize,
    /// Its first argument (first-arg rules such as `+select|0`).
    pub first_arg: Option<&'a [u8]>,
    /// Keys with their argument index and what the call does with each.
    pub keys: Vec<KeyUse<'a>>,
    /// Channels with their argument index; `literal`: patterns (PSUBSCRIBE) must equal an
    /// ACL pattern.
    pub channels: Vec<(&'a [u8], usize)>,
    pub literal: bool,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    /// The command (its full name).
    Command(String),
    /// The key (at argument index `at`).
    Key {
        key: Bytes,
        at: usize,
    },
    Channel {
        channel: Bytes,
        at: usize,
    },
}

impl Denied {
    fn rank(&self) -> (u8, usize) {
        match self {
            Denied::Command(_) => (1, 0),
            Denied::Key { at, .. } => (2, *at),
            Denied::Channel { at, .. } => (4, *at),
        }
    }

    /// The NOPERM line a client gets (Valkey's non-verbose key and channel texts).
    pub fn line(&self, user: &[u8]) -> String {
        format!("NOPERM {}", self.message(user))
    }

    pub fn message(&self, user: &[u8]) -> String {
        match self {
            Denied::Command(c) => format!(
                "User {} has no permissions to run the '{c}' command",
                String::from_utf8_lossy(user)
            ),
            Denied::Key { .. } => "No permissions to access a key".into(),
            Denied::Channel { .. } => "No permissions to access a channel".into(),
        }
    }

    /// The error for a queued command EXEC no longer may run (Valkey's wording).
    pub fn changed_line(&self) -> String {
        let why = match self {
            Denied::Command(_) => "no permission to execute the command or subcommand",
            Denied::Key { .. } => "no permission to touch the specified keys",
            Denied::Channel { .. } => {
                "no permission to access one of the channels used as arguments"
            }
        };
        format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and \
             the EXEC call. This command is no longer allowed for the following reason: {why}"
        )
    }

    /// ACL DRYRUN's verbose text.
    pub fn verbose(&self, user: &[u8]) -> String {
        let user = String::from_utf8_lossy(user);
        match self {
            Denied::Command(c) => {
                format!("User {user} has no permissions to run the '{c}' command")
            }
            Denied::Key { key, .. } => format!(
                "User {user} has no permissions to access the '{}' key",
                String::from_utf8_lossy(key)
            ),
            Denied::Channel { channel, .. } => format!(
                "User {user} has no permissions to access the '{}' channel",
                String::from_utf8_lossy(channel)
            ),
        }
    }

    pub fn reason(&self) -> LogReason {
        match self {
            Denied::Command(_) => LogReason::Command,
            Denied::Key { .. } => LogReason::Key,
            Denied::Channel { .. } => LogReason::Channel,
        }
    }

    /// What the ACL log names: the command, the key or the channel.
    pub fn object(&self) -> String {
        match self {
            Denied::Command(c) => c.clone(),
            Denied::Key { key, .. } => String::from_utf8_lossy(key).into_owned(),
            Denied::Channel { channel, .. } => String::from_utf8_lossy(channel).into_owned(),
        }
    }
}

/// The node's users.
pub struct Acl {
    users: RwLock<Arc<BTreeMap<Bytes, Arc<User>>>>,
    /// Bumped by every change: connections holding a user compare it.
    generation: AtomicU64,
    pub log: Mutex<log::AclLog>,
    /// `acl-pubsub-default allchannels`: new users start with `&*`.
    all_channels_default: std::sync::atomic::AtomicBool,
}

impl Default for Acl {
    fn default() -> Acl {
        let mut users = BTreeMap::new();
        users.insert(
            Bytes::from_static(b"default"),
            Arc::new(User::default_user()),
        );
        Acl {
            users: RwLock::new(Arc::new(users)),
            generation: AtomicU64::new(1),
            log: Mutex::new(log::AclLog::default()),
            all_channels_default: Default::default(),
        }
    }
}

/// A connection's user as it last looked it up.
#[derive(Clone)]
pub struct Session {
    pub name: Bytes,
    generation: u64,
    user: Option<Arc<User>>,
}

impl Session {
    pub fn default_user() -> Session {
        Session {
            name: Bytes::from_static(b"default"),
            generation: 0,
            user: None,
        }
    }

    pub fn named(name: Bytes) -> Session {
        Session {
            name,
            generation: 0,
            user: None,
        }
    }
}

impl Acl {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current set of users.
    pub fn users(&self) -> Arc<BTreeMap<Bytes, Arc<User>>> {
        Arc::clone(&self.users.read())
    }

    pub fn user(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// Every user as ACL LIST shows it, one per line (what replicas are sent).
    pub fn lines(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for u in self.users().values() {
            out.extend_from_slice(u.describe().as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Replaces the whole set (ACL LOAD, startup).
    pub fn replace(&self, users: BTreeMap<Bytes, Arc<User>>) {
        *self.users.write() = Arc::new(users);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Applies `rules` to user `name` (created when absent), all or nothing.
    pub fn set_user(&self, name: &[u8], rules: &[&[u8]]) -> Result<(), RuleFailure> {
        let mut w = self.users.write();
        let mut user = match w.get(name) {
            Some(u) => (**u).clone(),
            None => User::new(name, self.all_channels_default.load(Ordering::Relaxed)),
        };
        user.apply_all(rules, self.all_channels_default.load(Ordering::Relaxed))?;
        let mut next = (**w).clone();
        next.insert(Bytes::copy_from_slice(name), Arc::new(user));
        *w = Arc::new(next);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Removes users; how many existed.
    pub fn delete_users(&self, names: &[&[u8]]) -> usize {
        let mut w = self.users.write();
        let mut next = (**w).clone();
        let n = names.iter().filter(|n| next.remove(**n).is_some()).count();
        *w = Arc::new(next);
        self.generation.fetch_add(1, Ordering::AcqRel);
        n
    }

    /// `requirepass` is the default user's password: setting it is `resetpass >pw`
    /// (empty: `nopass`).
    pub fn set_requirepass(&self, pass: Option<&str>) {
        let rule = match pass {
            Some(p) if !p.is_empty() => format!(">{p}"),
            _ => "nopass".to_string(),
        };
        let rules: [&[u8]; 2] = [b"resetpass", rule.as_bytes()];
        if let Err(e) = self.set_user(b"default", &rules) {
            tracing::error!("applying requirepass to the default user: {}", e.line());
        }
    }

    pub fn set_all_channels_default(&self, on: bool) {
        self.all_channels_default.store(on, Ordering::Relaxed);
    }

    /// Whether a new connection starts authenticated (as `default`).
    pub fn default_open(&self) -> bool {
        self.user(b"default").is_some_and(|u| u.on && u.nopass)
    }

    /// Checks a password for `user`: the user exists, is on, and has `nopass` or the password.
    pub fn authenticate(&self, user: &[u8], pass: &[u8]) -> bool {
        self.user(user).is_some_and(|u| u.accepts(pass))
    }

    /// The session's user, looked up again when the users changed; `None` once deleted.
    pub fn refresh<'s>(&self, s: &'s mut Session) -> Option<&'s Arc<User>> {
        let generation = self.generation();
        if s.generation != generation || s.user.is_none() {
            s.user = self.user(&s.name);
            s.generation = generation;
        }
        s.user.as_ref()
    }

    /// Whether the session's user may do nothing it cannot (the default user's case): then
    /// callers skip building an [`Access`].
    pub fn unrestricted(&self, s: &mut Session) -> bool {
        self.refresh(s).is_some_and(|u| u.unrestricted())
    }

    /// Whether the session's user may make this call.
    pub fn check(&self, s: &mut Session, access: &Access<'_>) -> Result<(), Denied> {
        let Some(user) = self.refresh(s) else {
            return Err(Denied::Command(fullname(access.command)));
        };
        user.check(access)
    }
}

/// A catalog entry's full name (`get`, `config|set`).
pub fn fullname(entry: usize) -> String {
    Catalog::get()
        .entries
        .get(entry)
        .map(|e| e.fullname.clone())
        .unwrap_or_default()
}

/// Compares two byte strings in time that depends on their lengths only.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 of a password in lower-case hex, as ACL rules show passwords.
pub fn password_hash(pass: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, pass);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

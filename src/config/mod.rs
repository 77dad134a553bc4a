//! Server configuration: valkey.conf syntax, the typed and validated [`Config`],
//! and the live, shared view behind CONFIG GET / SET / REWRITE ([`LiveConfig`]).
//!
//! This module owns parsing (`rockslot-server [file] [--name value ...]`, the
//! `sdssplitargs` line syntax, `include`), validation with Valkey's wording,
//! the list of Valkey directives that are accepted but have no effect here,
//! and rewriting the config file in place.
//!
//! It must not act on the configuration: no `chdir` for `dir`, no creating
//! directories, no opening log or pid files, no binding sockets. Callers read a
//! [`Config`] snapshot and do those things themselves. Relative paths are kept
//! relative exactly as written (Valkey resolves them against the working
//! directory after `chdir(dir)`; see [`Config::cluster_config_path`]).

mod compat;
mod error;
mod keyspace_events;
mod lex;
pub(crate) use lex::parse_memory;
mod live;
mod load;
mod rewrite;
mod schema;
mod schema_tls;

use std::path::PathBuf;

pub use error::{ConfigError, ConfigSetError, Origin};
pub use keyspace_events::KeyspaceEvents;
pub use live::LiveConfig;
pub use load::{load, parse_args, ConfigSource, Loaded};

/// `appendfsync`: how eagerly writes are made durable before replying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppendFsync {
    Always,
    Everysec,
    No,
}

impl AppendFsync {
    pub(crate) const NAMES: &'static [&'static str] = &["always", "everysec", "no"];

    pub fn as_str(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::Everysec => "everysec",
            AppendFsync::No => "no",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Some(AppendFsync::Always),
            "everysec" => Some(AppendFsync::Everysec),
            "no" => Some(AppendFsync::No),
            _ => None,
        }
    }
}

/// `loglevel`, in Valkey's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
    Nothing,
}

impl LogLevel {
    pub(crate) const NAMES: &'static [&'static str] =
        &["debug", "verbose", "notice", "warning", "nothing"];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "verbose",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Nothing => "nothing",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Some(LogLevel::Debug),
            "verbose" => Some(LogLevel::Verbose),
            "notice" => Some(LogLevel::Notice),
            "warning" => Some(LogLevel::Warning),
            "nothing" => Some(LogLevel::Nothing),
            _ => None,
        }
    }

    /// The most verbose `tracing` level to emit; `None` for `nothing`.
    /// Valkey's `debug` is its firehose, so it maps to TRACE.
    pub fn tracing_level(self) -> Option<tracing::Level> {
        match self {
            LogLevel::Debug => Some(tracing::Level::TRACE),
            LogLevel::Verbose => Some(tracing::Level::DEBUG),
            LogLevel::Notice => Some(tracing::Level::INFO),
            LogLevel::Warning => Some(tracing::Level::WARN),
            LogLevel::Nothing => None,
        }
    }
}

/// The typed, validated configuration. Field docs give the directive name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `bind`: addresses exactly as written (Valkey's `-` prefix kept).
    pub bind: Vec<String>,
    /// `port` (1..=65535; 0, "no TCP", is not supported).
    pub port: u16,
    /// `requirepass`; an empty value means none.
    pub requirepass: Option<String>,
    pub masterauth: Option<String>,
    pub masteruser: Option<String>,
    pub cluster_enabled: bool,
    pub cluster_config_file: String,
    /// `cluster-port`; 0 means `port + 10000` ([`Config::cluster_bus_port`]).
    pub cluster_port: u16,
    /// `metrics-port`: where the Prometheus endpoint listens on the bind addresses (0: off).
    pub metrics_port: u16,
    /// `latency-monitor-threshold` (ms): commands at least this slow are LATENCY samples.
    pub latency_monitor_threshold_ms: u64,
    /// `cluster-slot-stats-enabled`: CLUSTER SLOT-STATS also counts CPU and network per slot.
    pub cluster_slot_stats_enabled: bool,
    /// `tracking-table-max-keys`: keys CLIENT TRACKING remembers before it invalidates some
    /// to make room (0: no bound).
    pub tracking_table_max_keys: u64,
    /// `notify-keyspace-events`: which keyspace notifications are published.
    pub notify_keyspace_events: KeyspaceEvents,
    /// `databases`: numbered databases in standalone mode (at most 32 here).
    pub databases: u8,
    /// `cluster-databases`: numbered databases in cluster mode (Valkey 9; 1 is Valkey 8's
    /// single database).
    pub cluster_databases: u8,
    /// `cluster-node-timeout`, milliseconds.
    pub cluster_node_timeout_ms: u64,
    pub cluster_migration_barrier: u32,
    pub cluster_replica_validity_factor: u32,
    pub cluster_require_full_coverage: bool,
    pub cluster_allow_reads_when_down: bool,
    pub cluster_replica_no_failover: bool,
    pub cluster_allow_replica_migration: bool,
    pub cluster_announce_ip: Option<String>,
    /// `cluster-bus-secret` (rockslot's own): shared secret for the bus.
    pub cluster_bus_secret: Option<String>,
    pub dir: PathBuf,
    pub appendfsync: AppendFsync,
    pub maxclients: u32,
    /// `timeout`: idle client timeout in seconds, 0 = never.
    pub timeout_secs: u64,
    /// `tcp-keepalive`, seconds.
    pub tcp_keepalive_secs: u64,
    pub proto_max_bulk_len: u64,
    /// `hll-sparse-max-bytes`: past this size a sparse HyperLogLog becomes dense.
    pub hll_sparse_max_bytes: u64,
    /// COMMANDLOG thresholds (-1: off) and lengths: slow (µs), large requests and large
    /// replies (bytes); `slowlog-log-slower-than` / `slowlog-max-len` are the first pair.
    pub commandlog_slow_usec: i64,
    pub commandlog_slow_max_len: u64,
    pub commandlog_request_bytes: i64,
    pub commandlog_request_max_len: u64,
    pub commandlog_reply_bytes: i64,
    pub commandlog_reply_max_len: u64,
    pub client_query_buffer_limit: u64,
    /// `maxmemory-clients`: what all clients' query buffers may hold together, bytes (0: no
    /// limit); past it the client whose input crossed it is closed.
    pub maxmemory_clients: u64,
    pub loglevel: LogLevel,
    /// `logfile`; empty means standard output.
    pub logfile: String,
    pub pidfile: Option<PathBuf>,
    /// `io-threads`: threads serving clients; 0 (default) means one less than the number of
    /// cores (at least one), leaving a core to storage background work.
    pub io_threads: u32,
    /// `hz`, clamped to 1..=500 like Valkey.
    pub hz: u32,
    pub min_replicas_to_write: u32,
    pub min_replicas_max_lag: u32,
    /// `replica-ack-before-reply` (rockslot's own).
    pub replica_ack_before_reply: bool,
    pub repl_backlog_size: u64,
    /// `replicaof <host> <port>`; `replicaof no one` clears it.
    pub replicaof: Option<(String, u16)>,
    /// `storage-block-cache-size`, bytes.
    pub storage_block_cache_size: u64,
    /// `storage-write-buffer-size`: total memtable budget, bytes.
    pub storage_write_buffer_size: u64,
    /// `storage-slots-per-family`: power of two in 16..=16384.
    pub storage_slots_per_family: u16,
    /// `client-output-buffer-limit` for the normal, replica and pubsub classes.
    pub output_buffer_limits: [OutputLimit; 3],
    /// The encoding thresholds OBJECT ENCODING and the SCAN family answer by.
    pub hash_max_listpack_entries: u64,
    pub hash_max_listpack_value: u64,
    pub set_max_intset_entries: u64,
    pub set_max_listpack_entries: u64,
    pub set_max_listpack_value: u64,
    pub zset_max_listpack_entries: u64,
    pub zset_max_listpack_value: u64,
    /// Positive: entries per listpack; -1 to -5: 4 KB to 64 KB.
    pub list_max_listpack_size: i64,
    /// The `tls-*` directives.
    pub tls: TlsConfig,
    /// `busy-reply-threshold` (`lua-time-limit`): ms a script runs before other clients get
    /// BUSY.
    pub busy_reply_threshold_ms: u64,
}

/// `tls-auth-clients`: whether a TLS client must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsAuthClients {
    #[default]
    Yes,
    No,
    Optional,
}

impl TlsAuthClients {
    pub const NAMES: &'static [&'static str] = &["no", "yes", "optional"];
    pub fn as_str(self) -> &'static str {
        match self {
            TlsAuthClients::Yes => "yes",
            TlsAuthClients::No => "no",
            TlsAuthClients::Optional => "optional",
        }
    }
    pub fn from_name(s: &str) -> Option<TlsAuthClients> {
        match s.to_ascii_lowercase().as_str() {
            "yes" => Some(TlsAuthClients::Yes),
            "no" => Some(TlsAuthClients::No),
            "optional" => Some(TlsAuthClients::Optional),
            _ => None,
        }
    }
}

/// TLS as Valkey configures it. Files are PEM; they are read when the node starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// `tls-port`: a second client listener speaking TLS; 0 = none.
    pub port: u16,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// `tls-client-cert-file`/`tls-client-key-file`: what this node presents when it calls a
    /// peer (the server pair when unset).
    pub client_cert_file: Option<String>,
    pub client_key_file: Option<String>,
    /// `tls-key-file-pass`/`tls-client-key-file-pass`: passphrases of encrypted keys.
    pub key_file_pass: Option<String>,
    pub client_key_file_pass: Option<String>,
    pub ca_cert_file: Option<String>,
    /// `tls-ca-cert-dir`: every PEM certificate in the directory is a trusted CA too.
    pub ca_cert_dir: Option<String>,
    /// `tls-protocols`: e.g. "TLSv1.2 TLSv1.3" (unset: both).
    pub protocols: Option<String>,
    /// `tls-ciphers` (TLS 1.2, OpenSSL names) and `tls-ciphersuites` (TLS 1.3).
    pub ciphers: Option<String>,
    pub ciphersuites: Option<String>,
    /// `tls-prefer-server-ciphers`: the server's order of cipher suites wins.
    pub prefer_server_ciphers: bool,
    pub auth_clients: TlsAuthClients,
    /// `tls-replication`: the cluster port (which carries replication) speaks TLS.
    pub replication: bool,
    /// `tls-cluster`: the cluster port speaks TLS.
    pub cluster: bool,
}

impl TlsConfig {
    /// Whether the cluster port (bus, replication, migration, backup) speaks TLS.
    pub fn on_cluster_port(&self) -> bool {
        self.cluster || self.replication
    }
}

/// One class of `client-output-buffer-limit`: a client is closed when its pending output
/// passes `hard` bytes, or stays above `soft` bytes for `soft_secs` seconds (0 = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

/// Valkey's defaults: normal unlimited, replica 256mb/64mb/60, pubsub 32mb/8mb/60.
pub const DEFAULT_OUTPUT_LIMITS: [OutputLimit; 3] = [
    OutputLimit {
        hard: 0,
        soft: 0,
        soft_secs: 0,
    },
    OutputLimit {
        hard: 256 * MB,
        soft: 64 * MB,
        soft_secs: 60,
    },
    OutputLimit {
        hard: 32 * MB,
        soft: 8 * MB,
        soft_secs: 60,
    },
];

/// Index of the normal class in [`Config::output_buffer_limits`].
pub const OUTPUT_CLASS_NORMAL: usize = 0;
/// Index of the pubsub class in [`Config::output_buffer_limits`].
pub const OUTPUT_CLASS_PUBSUB: usize = 2;

const MB: u64 = 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec!["127.0.0.1".to_string()],
            port: 6379,
            requirepass: None,
            masterauth: None,
            masteruser: None,
            cluster_enabled: false,
            cluster_config_file: "nodes.conf".to_string(),
            cluster_port: 0,
            metrics_port: 0,
            latency_monitor_threshold_ms: 0,
            cluster_slot_stats_enabled: false,
            notify_keyspace_events: KeyspaceEvents::default(),
            tracking_table_max_keys: 1_000_000,
            databases: 16,
            cluster_databases: 1,
            cluster_node_timeout_ms: 15_000,
            cluster_migration_barrier: 1,
            cluster_replica_validity_factor: 10,
            cluster_require_full_coverage: true,
            cluster_allow_reads_when_down: false,
            cluster_replica_no_failover: false,
            cluster_allow_replica_migration: true,
            cluster_announce_ip: None,
            cluster_bus_secret: None,
            dir: PathBuf::from("."),
            appendfsync: AppendFsync::Everysec,
            maxclients: 10_000,
            timeout_secs: 0,
            tcp_keepalive_secs: 300,
            proto_max_bulk_len: 512 * MB,
            hll_sparse_max_bytes: 3000,
            commandlog_slow_usec: 10_000,
            commandlog_slow_max_len: 128,
            commandlog_request_bytes: 1 << 20,
            commandlog_request_max_len: 128,
            commandlog_reply_bytes: 1 << 20,
            commandlog_reply_max_len: 128,
            client_query_buffer_limit: 1024 * MB,
            maxmemory_clients: 0,
            loglevel: LogLevel::Notice,
            logfile: String::new(),
            pidfile: None,
            io_threads: 0,
            hz: 10,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
            replica_ack_before_reply: false,
            repl_backlog_size: 64 * MB,
            replicaof: None,
            storage_block_cache_size: 256 * MB,
            storage_write_buffer_size: 128 * MB,
            storage_slots_per_family: 128,
            output_buffer_limits: DEFAULT_OUTPUT_LIMITS,
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            tls: TlsConfig::default(),
            busy_reply_threshold_ms: 5000,
        }
    }
}

/// Why a cluster node without any secret does not start (and CONFIG SET may not remove it).
pub const CLUSTER_NEEDS_SECRET: &str = "cluster-enabled yes needs a secret for the cluster \
    port (bus, replication, slot migration, backups): set cluster-bus-secret, or masterauth \
    or requirepass, which it falls back to; rockslot does not serve an unauthenticated \
    cluster port";

impl Config {
    /// The cluster bus port: `cluster-port`, or `port + 10000` when it is 0.
    /// [`load()`] guarantees the sum fits when the cluster is enabled.
    pub fn cluster_bus_port(&self) -> u16 {
        if self.cluster_port != 0 {
            self.cluster_port
        } else {
            self.port.saturating_add(10_000)
        }
    }

    /// Threads serving clients (`io-threads`, or cores - 1 when 0).
    pub fn worker_threads(&self) -> usize {
        match self.io_threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .saturating_sub(1)
                .max(1),
            n => n as usize,
        }
    }

    /// `cluster-config-file` resolved against `dir`, as Valkey does after its
    /// `chdir(dir)` (an absolute file name stays as is).
    pub fn cluster_config_path(&self) -> PathBuf {
        self.dir.join(&self.cluster_config_file)
    }

    /// Checks rules that span several directives; run after every load and CONFIG SET.
    /// Numbered databases this node serves in its mode.
    pub fn database_count(&self) -> usize {
        if self.cluster_enabled {
            self.cluster_databases as usize
        } else {
            self.databases as usize
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.cluster_enabled && self.cluster_port == 0 && self.port > 55_535 {
            return Err(format!(
                "port {} is too high: the cluster bus listens on port+10000; \
                 set cluster-port explicitly",
                self.port
            ));
        }
        if self.cluster_enabled && self.cluster_bus_port() == self.port {
            return Err("cluster-port must differ from port".to_string());
        }
        // The cluster port serves the bus, replication, slot migration and backups: without
        // a secret anyone reaching it could read or take every slot. rockslot refuses to run
        // (or to drop the last secret) rather than serve it open.
        let secret = [
            &self.cluster_bus_secret,
            &self.masterauth,
            &self.requirepass,
        ]
        .into_iter()
        .flatten()
        .any(|s| !s.is_empty());
        if self.cluster_enabled && !secret {
            return Err(CLUSTER_NEEDS_SECRET.to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.port, 6379);
        assert_eq!(c.cluster_bus_port(), 16379);
        assert_eq!(c.proto_max_bulk_len, 512 * MB);
        assert_eq!(c.client_query_buffer_limit, 1024 * MB);
        assert_eq!(c.appendfsync, AppendFsync::Everysec);
        assert_eq!(c.loglevel, LogLevel::Notice);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn cross_checks() {
        let c = Config {
            cluster_enabled: true,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(CLUSTER_NEEDS_SECRET.to_string()));
        let c = Config {
            cluster_enabled: true,
            port: 60000,
            masterauth: Some("s".into()),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            cluster_port: 7001,
            ..c
        };
        assert!(c.validate().is_ok());
        assert_eq!(c.cluster_bus_port(), 7001);
    }
}

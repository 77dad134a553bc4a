//! rockslot: a RocksDB-backed, sharded and replicated key-value store that behaves like a
//! Valkey cluster. `docs/storage.md` has the storage layout, `docs/migration.md` slot moves.
//!
//! ## Layout
//!
//! Each module sits on a floor; it may import modules on lower floors only, never one on its
//! own floor or above (the `layout` test reads this list and the sources and fails otherwise,
//! so the import graph has no cycles). Top to bottom:
//!
//! - `cli` (12): `rockslot-cli`, a client and the `--cluster` admin verbs; may use anything.
//! - `server` (11): listeners, connection I/O and dispatch (pipelining, MULTI/EXEC, blocked
//!   clients), the cluster-port server, background tasks; builds the node with its transports.
//! - `command` (10): the command table, argument parsing, handlers and the handler contract
//!   (`Ctx`, `ClientState`, `After`); handlers return replies and never touch a socket.
//! - `node` (9): the node handle (`Node`): clients, pub/sub, clients blocked on keys, the
//!   subsystems' handles; imports everything below, never `rpc`.
//! - `script` (8): the Lua VM (Valkey's scripting library, sandbox and reply conversions);
//!   commands reach it through its `Host` trait.
//! - `rpc` (8): the gRPC edge; implements the service and transport traits owned by
//!   replication, migration and cluster, and keeps generated protobuf types to itself.
//! - `replication` (7): primary and replica sides of the stream, offsets, WAIT; reaches the
//!   node through `ReplHandle`.
//! - `migration` (6): native slot migration jobs, the legacy MIGRATE path and slot backups;
//!   reaches the node through `MigrationHandle`.
//! - `cluster` (5): the pure cluster state machine, the bus task, nodes.conf, routing.
//! - `tls` (5): TLS contexts from the `tls-*` directives (PEM files, peer verification).
//! - `keyspace` (4): the data model over storage: types, TTLs, write scopes, WATCH.
//! - `config` (4): valkey.conf parsing and validation, CONFIG GET/SET/REWRITE.
//! - `storage` (3): the only module that names RocksDB: families, batches, snapshots, SSTs.
//! - `resp` (3): RESP2/RESP3 frames, decoder limits, encoder; knows no commands.
//! - `acl` (2): ACL users: rules, rendering, the permission check over a command catalog
//!   the command layer builds, the aclfile, the ACL log; knows no command table.
//! - `rdb` (2): Valkey's RDB encoding (DUMP payloads, dump.rdb files); bytes in, values out.
//! - `slot` (1): key slots, slot ranges, record slot prefixes.
//! - `glob` (1): Valkey's glob matching.
//!
//! `rpc` sits above the subsystems it serves: they own the traits (`BusService`,
//! `BusTransport`, `ReplSource`, `ReplConnector`, `ImportSide`, `MigrationConnector`,
//! `BackupSide`) and the domain types, so no subsystem names the transport. `replication` sits
//! above `migration` because a replica fetches migrated slots through the migration service.
// One audited exception: `script::bound` lets the Lua VM's host functions reach the running
// script's state (a third of a short script's time went to safe per-run callbacks).
#![deny(unsafe_code)]

pub mod acl;
pub mod cli;
pub mod cluster;
pub mod command;
pub mod config;
pub mod glob;
pub mod keyspace;
pub mod migration;
pub mod node;
pub mod rdb;
pub mod replication;
pub mod resp;
pub mod rpc;
pub mod script;
pub mod server;
pub mod slot;
pub mod storage;
pub mod tls;

#[cfg(test)]
mod layout;

//! rockslot: a RocksDB-backed, sharded and replicated key-value store that behaves like a
//! Valkey cluster. See DESIGN.md-derived docs in `docs/` for the storage layout.

pub mod cluster;
pub mod command;
pub mod config;
pub mod glob;
pub mod keyspace;
pub mod migration;
pub mod replication;
pub mod resp;
pub mod rpc;
pub mod server;
pub mod storage;

pub mod cli;

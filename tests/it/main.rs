//! Integration tests: every test spawns the real `rockslot-server` through `harness`.
//! Run with `cargo test --release --test it` (or `scripts/test.sh` for everything).

mod harness;

mod acl;
mod backup;
mod bad_input;
mod big_collections;
mod bitmaps;
mod blocking;
mod chaos;
mod clients;
mod cluster_bad_input;
mod cluster_clients;
mod cluster_create;
mod cluster_restart;
mod commandlog;
mod commands;
mod differential;
mod disk_full;
mod durability;
mod failover;
mod failover_fullsync;
mod failover_loss;
mod functions;
mod geo;
mod hashes;
mod hll;
mod liveness;
mod memory;
mod metrics;
mod migrate_slots;
mod migration_faults;
mod migration_replicas;
mod node_auth;
mod pipelines;
mod pubsub;
mod replication;
mod reshard;
mod rpc_edge;
mod scripting;
mod sort;
mod string_commands;
mod tls;
mod transactions;
mod valkey_data;
mod zsets;

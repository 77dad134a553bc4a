//! Integration tests: every test spawns the real `rockslot-server` through `harness`.
//! Run with `cargo test --release --test it` (or `scripts/test.sh` for everything).

mod harness;

mod bad_input;
mod clients;
mod durability;
mod memory;
mod node_auth;

//! The one test harness: spawns the real `rockslot-server` binary on free loopback ports, each
//! node with its own temp dir, and gives tests clients (the `redis` crate, Debian's `redis-cli`,
//! raw TCP) plus fault injection (SIGKILL, SIGTERM, restart, SIGSTOP/SIGCONT).
//!
//! Layout of a node's root dir: `node.conf` (generated config), `server.log` (stdout+stderr of
//! every run, appended), `data/` (the `dir` directive).
//!
//! Rules: never sleep to wait for something, poll with [`wait_until`]; never leak a process
//! ([`Node`]'s `Drop` SIGKILLs it, and every server gets `PR_SET_PDEATHSIG` so it dies with the
//! test binary); print the server log tail when a test panics. A [`Cluster`] is a vector of
//! [`Node`]s built from one cloned [`NodeBuilder`] template; faults belong here, not in tests.
//!
//! Environment: `ROCKSLOT_KEEP_TMP=1` keeps the temp dirs of nodes dropped during a panic.
//!
//! Files: `process` (polling, ports, spawning, RSS watchdog), `node` (`NodeBuilder`, `Node`),
//! `raw` (raw RESP over TCP), `cluster` (`Cluster`: forming with the real tools, convergence
//! waits, cluster faults), `cluster_view` (key slots, CLUSTER NODES/INFO parsing), `failover`
//! (INFO replication, slot-owner and replica waits, bus partitions, the acknowledged-write
//! recorder [`AckWriter`]), `journey` (a type's keys through resharding, replicas, backup and
//! failover), `disk` (data dirs on a tmpfs that fills up), `tools` (external tool
//! runs, an interactive CLI on a pty).

#![allow(dead_code)]

mod cluster;
mod cluster_view;
mod dataset;
mod disk;
mod failover;
mod journey;
mod node;
mod process;
mod raw;
mod reference;
mod reshard;
mod tools;

pub use cluster::*;
pub use cluster_view::*;
pub use dataset::*;
pub use disk::*;
pub use failover::*;
pub use journey::*;
pub use node::*;
pub use process::*;
pub use raw::*;
pub use reference::*;
pub use reshard::*;
pub use tools::*;

use std::time::Duration;

/// The server binary cargo built for this test run.
pub const SERVER_BIN: &str = env!("CARGO_BIN_EXE_rockslot-server");
/// The CLI binary cargo built for this test run.
pub const CLI_BIN: &str = env!("CARGO_BIN_EXE_rockslot-cli");

/// Default time a node gets to become ready (start or restart).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time a node gets to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Self-tests of the helpers that need no server.

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_handles_resp2_and_resp3() {
        assert_eq!(frame_len(b"+OK\r\n").unwrap(), Some(5));
        assert_eq!(frame_len(b"+OK\r").unwrap(), None);
        assert_eq!(frame_len(b"$3\r\nabc\r\n+X").unwrap(), Some(9));
        assert_eq!(frame_len(b"$3\r\nab").unwrap(), None);
        assert_eq!(frame_len(b"$-1\r\n").unwrap(), Some(5));
        assert_eq!(frame_len(b"*2\r\n:1\r\n$1\r\na\r\n").unwrap(), Some(15));
        assert_eq!(frame_len(b"*2\r\n:1\r\n").unwrap(), None);
        assert_eq!(frame_len(b"%1\r\n+a\r\n:1\r\n").unwrap(), Some(12));
        assert_eq!(frame_len(b"_\r\n").unwrap(), Some(3));
        assert!(frame_len(b"xyz\r\n").is_err());
    }

    #[test]
    fn conf_quote_quotes_only_when_needed() {
        assert_eq!(conf_quote("/tmp/a"), "/tmp/a");
        assert_eq!(conf_quote(""), "\"\"");
        assert_eq!(conf_quote("a b"), "\"a b\"");
        assert_eq!(conf_quote("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn free_ports_are_distinct() {
        let a = free_port();
        let b = free_port();
        assert_ne!(a, b);
        assert!(port_is_free(a + 10000));
    }
}

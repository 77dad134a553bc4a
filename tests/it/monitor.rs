//! MONITOR against valkey-server 8.1.8: the same commands from another client produce the
//! same lines (timestamps and client ports aside): arguments quoted and escaped as Valkey's
//! sdscatrepr does, secrets redacted, admin and refused commands left out, a script shown
//! before the commands it runs (`[0 lua]`), transactions as MULTI, the commands, EXEC.

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::harness::{node_and_valkey, RawConn};

const COMMANDS: &[&[&str]] = &[
    &["SET", "k", "a b\u{1}\"\\\n"],
    &["MULTI"],
    &["INCR", "n"],
    &["EXEC"],
    &["EVAL", "return redis.call('incr',KEYS[1])", "1", "n"],
    &["AUTH", "x", "y"],
    &["CONFIG", "GET", "port"],
    &["GET", "k"],
    &["NOSUCH"],
    &["GET"],
    &["FCALL", "nope", "0"],
    &["HELLO", "2", "AUTH", "a", "b"],
    &["CLIENT", "SETNAME", "zz"],
    &["PING"],
    &["MULTI"],
    &["SET", "a", "1"],
    &["DISCARD"],
    &["ECHO", "\t\r\u{7}\u{8}"],
];

/// The monitor lines `c` received, with the time and the client's port blanked.
fn lines(c: &mut RawConn) -> Result<Vec<String>> {
    let (data, _) = c.read_to_end(Duration::from_millis(800))?;
    let text = String::from_utf8_lossy(&data).to_string();
    Ok(text
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| match (l.find(" ["), l.find(']')) {
            (Some(a), Some(b)) if a < b => {
                let origin = &l[a + 2..b];
                let who = if origin.ends_with("lua") {
                    "lua"
                } else {
                    "peer"
                };
                format!("+T [{who}]{}", &l[b + 1..])
            }
            _ => l.to_string(),
        })
        .collect())
}

#[test]
fn monitor_shows_what_valkey_shows() -> Result<()> {
    let (node, valkey, _, _) = node_and_valkey()?;
    let mut seen = Vec::new();
    for addr in [node.addr(), valkey.addr()] {
        let mut m = RawConn::connect(addr)?;
        ensure!(m.cmd(&["MONITOR"])? == b"+OK\r\n");
        let mut c = RawConn::connect(addr)?;
        for cmd in COMMANDS {
            c.cmd(cmd)?;
        }
        seen.push(lines(&mut m)?);
    }
    ensure!(
        seen[0] == seen[1],
        "monitor lines differ:\n ours   {:#?}\n valkey {:#?}",
        seen[0],
        seen[1]
    );
    ensure!(seen[0].len() >= 14, "only {} lines", seen[0].len());
    // RESET leaves monitor mode: nothing more arrives.
    let mut m = node.raw()?;
    m.cmd(&["MONITOR"])?;
    ensure!(m.cmd(&["RESET"])? == b"+RESET\r\n");
    node.raw()?.cmd(&["PING"])?;
    let (after, _) = m.read_to_end(Duration::from_millis(300))?;
    ensure!(after.is_empty(), "{}", String::from_utf8_lossy(&after));
    Ok(())
}

/// A monitoring client is not an idle client: `timeout` does not close it (as in Valkey),
/// while a plain idle client next to it is closed.
#[test]
fn monitor_clients_outlive_the_idle_timeout() -> Result<()> {
    let node = crate::harness::Node::builder()
        .directive("timeout", "1")
        .start()?;
    let mut m = node.raw()?;
    ensure!(m.cmd(&["MONITOR"])? == b"+OK\r\n");
    let mut idle = node.raw()?;
    ensure!(idle.cmd(&["PING"])? == b"+PONG\r\n");
    let (_, end) = idle.read_to_end(Duration::from_millis(3500))?;
    ensure!(end.is_closed(), "the idle client was not closed ({end:?})");
    node.raw()?.cmd(&["SET", "after", "1"])?;
    let got = lines(&mut m)?;
    ensure!(
        got.iter().any(|l| l.ends_with("\"SET\" \"after\" \"1\"")),
        "the monitor missed the write after the timeout: {got:?}"
    );
    Ok(())
}

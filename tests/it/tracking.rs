//! CLIENT TRACKING against valkey-server 8.1.8: the subcommands' replies and errors byte for
//! byte, and the invalidation messages a tracking client gets, in RESP3 on its own
//! connection (default mode, OPTIN, NOLOOP, BCAST with prefixes) and through REDIRECT to a
//! RESP2 client subscribed to `__redis__:invalidate`, for seeded reads and writes from
//! itself and another client, FLUSHALL included.

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::commands::Rng;
use crate::harness::{assert_same_reply, encode_cmd, show, Node, RawConn, RedisServer};

const CASES: &[&[&str]] = &[
    &["CLIENT", "GETREDIR"],
    &["CLIENT", "TRACKINGINFO"],
    &["CLIENT", "CACHING", "yes"],
    &["CLIENT", "TRACKING", "maybe"],
    &["CLIENT", "TRACKING", "on", "bogus"],
    &["CLIENT", "TRACKING", "on", "PREFIX", "a"],
    &["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"],
    &["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"],
    &["CLIENT", "TRACKING", "on", "REDIRECT", "999999"],
    &["CLIENT", "TRACKING", "on", "REDIRECT", "x"],
    &[
        "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a", "PREFIX", "ab",
    ],
    &["CLIENT", "TRACKING", "on"],
    &["CLIENT", "GETREDIR"],
    &["CLIENT", "TRACKINGINFO"],
    &["CLIENT", "TRACKING", "on", "BCAST"],
    &["CLIENT", "TRACKING", "on", "OPTIN"],
    &["CLIENT", "CACHING", "yes"],
    &["CLIENT", "TRACKING", "off"],
    &["CLIENT", "TRACKING", "on", "OPTIN", "NOLOOP"],
    &["CLIENT", "CACHING", "no"],
    &["CLIENT", "CACHING", "maybe"],
    &["CLIENT", "CACHING", "yes"],
    &["CLIENT", "TRACKINGINFO"],
    &["CLIENT", "TRACKINGINFO"],
    &["CLIENT", "TRACKING", "on", "OPTOUT"],
    &["CLIENT", "TRACKING", "off"],
    &["CLIENT", "TRACKING", "on", "OPTOUT"],
    &["CLIENT", "CACHING", "no"],
    &["CLIENT", "TRACKINGINFO"],
    &["CLIENT", "TRACKING", "off"],
    &[
        "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "b", "PREFIX", "a",
    ],
    &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "c"],
    &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ax"],
    &["CLIENT", "TRACKINGINFO"],
    &["CLIENT", "TRACKING", "off"],
    &["CLIENT", "TRACKINGINFO"],
    &["CLIENT", "GETREDIR"],
];

#[test]
fn tracking_subcommands_match_valkey_byte_for_byte() -> Result<()> {
    crate::harness::assert_cases_match_valkey(CASES)
}

/// Every frame `c` got before the answer to a PING it sends now (RESP3: `$4 mark`; RESP2
/// subscriber: `*2 pong mark`).
fn drain(c: &mut RawConn) -> Result<Vec<String>> {
    c.send(&encode_cmd(&["PING", "mark"]))?;
    let mut out = Vec::new();
    for _ in 0..1000 {
        let text = show(&c.read_frame()?);
        if text.contains("mark") {
            return Ok(out);
        }
        out.push(text);
    }
    anyhow::bail!("no answer to PING after 1000 frames")
}

struct Side {
    tracker: RawConn,
    writer: RawConn,
}

fn side(addr: std::net::SocketAddr, tracking: &[&str]) -> Result<Side> {
    let mut tracker = RawConn::connect(addr)?;
    tracker.set_timeout(Duration::from_secs(10))?;
    tracker.cmd(&["HELLO", "3"])?;
    let mut on = vec!["CLIENT", "TRACKING", "on"];
    on.extend_from_slice(tracking);
    let r = tracker.cmd(&on)?;
    ensure!(show(&r).contains("OK"), "CLIENT TRACKING: {}", show(&r));
    Ok(Side {
        tracker,
        writer: RawConn::connect(addr)?,
    })
}

const KEYS: &[&str] = &["a:1", "a:2", "b:1", "c"];

fn step(r: &mut Rng) -> (bool, Vec<String>) {
    let k = r.pick(KEYS).to_string();
    let k2 = r.pick(KEYS).to_string();
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let by_tracker = r.below(3) == 0;
    let cmd = match r.below(14) {
        0..=2 => s(&["GET", &k]),
        3 => s(&["MGET", &k, &k2]),
        4 => s(&["CLIENT", "CACHING", "yes"]),
        5..=7 => s(&["SET", &k, "v"]),
        8 => s(&["DEL", &k, &k2]),
        9 => s(&["MSET", &k, "1", &k2, "2"]),
        10 => s(&["INCR", &k]),
        11 => s(&["EXPIRE", &k, "-1"]),
        12 => s(&["APPEND", &k, "x"]),
        _ => {
            if r.below(4) == 0 {
                s(&["FLUSHALL"])
            } else {
                s(&["EXISTS", &k])
            }
        }
    };
    // Reads come from the tracker; writes from either side.
    let reads = matches!(cmd[0].as_str(), "GET" | "MGET" | "EXISTS" | "CLIENT");
    (reads || by_tracker, cmd)
}

/// Seeded reads and writes; after each, both trackers got the same invalidations.
#[test]
fn invalidations_match_valkey_in_each_mode() -> Result<()> {
    let modes: &[&[&str]] = &[
        &[],
        &["NOLOOP"],
        &["OPTIN"],
        &["BCAST", "PREFIX", "a:", "PREFIX", "c"],
        &["BCAST", "NOLOOP"],
    ];
    for (i, mode) in modes.iter().enumerate() {
        let node = Node::start()?;
        let valkey = RedisServer::start_valkey()?;
        let mut ours = side(node.addr(), mode)?;
        let mut theirs = side(valkey.addr(), mode)?;
        let mut r = Rng(0x7ac_0001 + i as u64);
        for n in 0..600 {
            let (on_tracker, cmd) = step(&mut r);
            let at = format!("mode {mode:?} step {n}");
            if on_tracker {
                assert_same_reply(&mut ours.tracker, &mut theirs.tracker, &cmd, &at)?;
            } else {
                assert_same_reply(&mut ours.writer, &mut theirs.writer, &cmd, &at)?;
            }
            let (a, b) = (drain(&mut ours.tracker)?, drain(&mut theirs.tracker)?);
            ensure!(a == b, "{at}: {cmd:?}\n ours:   {a:?}\n valkey: {b:?}");
        }
    }
    Ok(())
}

/// REDIRECT to a RESP2 client subscribed to `__redis__:invalidate`: the same messages.
#[test]
fn redirected_invalidations_match_valkey() -> Result<()> {
    let node = Node::start()?;
    let valkey = RedisServer::start_valkey()?;
    let mut sides = Vec::new();
    for addr in [node.addr(), valkey.addr()] {
        let mut sub = RawConn::connect(addr)?;
        sub.set_timeout(Duration::from_secs(10))?;
        let id = show(&sub.cmd(&["CLIENT", "ID"])?);
        let id: String = id.chars().filter(|c| c.is_ascii_digit()).collect();
        sub.cmd(&["SUBSCRIBE", "__redis__:invalidate"])?;
        let mut tracker = RawConn::connect(addr)?;
        let r = tracker.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &id])?;
        ensure!(show(&r).contains("OK"), "{}", show(&r));
        let r = tracker.cmd(&["CLIENT", "GETREDIR"])?;
        ensure!(show(&r).contains(&id), "GETREDIR {} vs {id}", show(&r));
        sides.push((sub, tracker, RawConn::connect(addr)?));
    }
    let script: &[(&str, &[&str])] = &[
        ("t", &["GET", "k"]),
        ("w", &["SET", "k", "1"]),
        ("w", &["SET", "k", "2"]),
        ("t", &["MGET", "k", "j"]),
        ("t", &["SET", "j", "x"]),
        ("w", &["DEL", "k", "j"]),
        ("t", &["GET", "k"]),
        ("w", &["FLUSHALL"]),
        ("t", &["GET", "k"]),
        ("w", &["EXPIRE", "k", "-1"]),
    ];
    for (n, (who, cmd)) in script.iter().enumerate() {
        let mut got = Vec::new();
        for (sub, tracker, writer) in sides.iter_mut() {
            let c = if *who == "t" {
                &mut *tracker
            } else {
                &mut *writer
            };
            c.cmd(cmd)?;
            got.push(drain(sub)?);
        }
        ensure!(
            got[0] == got[1],
            "step {n} {cmd:?}\n ours:   {:?}\n valkey: {:?}",
            got[0],
            got[1]
        );
    }
    Ok(())
}

/// `tracking-table-max-keys` bounds what is remembered: past it, keys are invalidated to make
/// room (so the client drops them from its cache) and INFO counts what is kept.
#[test]
fn tracked_keys_are_bounded_by_tracking_table_max_keys() -> Result<()> {
    let node = crate::harness::NodeBuilder::new()
        .directive("tracking-table-max-keys", "10")
        .start()?;
    let mut t = RawConn::connect(node.addr())?;
    t.cmd(&["HELLO", "3"])?;
    t.cmd(&["CLIENT", "TRACKING", "on"])?;
    let mut pushes = 0;
    for i in 0..25 {
        t.send(&encode_cmd(&["GET", &format!("k{i}")]))?;
        // Invalidations (pushes) may come before the reply of the next GET.
        for _ in 0..100 {
            let f = t.read_frame()?;
            if f.first() == Some(&b'>') {
                pushes += 1;
            } else {
                break;
            }
        }
    }
    pushes += drain(&mut t)?.len();
    ensure!(
        pushes == 15,
        "15 keys made room for others: {pushes} invalidations"
    );
    let mut c = node.conn()?;
    let info: String = redis::cmd("INFO").arg("stats").query(&mut c)?;
    ensure!(
        info.contains("tracking_total_keys:10\r\n"),
        "INFO stats: {}",
        info.lines()
            .find(|l| l.starts_with("tracking"))
            .unwrap_or("none")
    );
    Ok(())
}

fn client_id(c: &mut RawConn) -> Result<String> {
    Ok(show(&c.cmd(&["CLIENT", "ID"])?)
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect())
}

/// REDIRECT targets as Valkey serves them: a RESP3 target gets `invalidate` pushes without
/// subscribing, a RESP2 one only while it subscribes to anything; once the target's
/// connection closed a RESP3 tracker gets `tracking-redir-broken <id>` for each
/// invalidation and a RESP2 one nothing.
#[test]
fn redirect_targets_and_broken_redirects_match_valkey() -> Result<()> {
    let node = Node::start()?;
    let valkey = RedisServer::start_valkey()?;
    let mut seen: Vec<Vec<Vec<String>>> = Vec::new();
    for addr in [node.addr(), valkey.addr()] {
        let mut writer = RawConn::connect(addr)?;
        let target = |hello: &str, subscribe: Option<&str>| -> Result<(RawConn, String)> {
            let mut t = RawConn::connect(addr)?;
            t.set_timeout(Duration::from_secs(10))?;
            t.cmd(&["HELLO", hello])?;
            let id = client_id(&mut t)?;
            if let Some(ch) = subscribe {
                t.cmd(&["SUBSCRIBE", ch])?;
            }
            Ok((t, id))
        };
        let tracker = |hello: &str, redirect: &str| -> Result<RawConn> {
            let mut t = RawConn::connect(addr)?;
            t.set_timeout(Duration::from_secs(10))?;
            t.cmd(&["HELLO", hello])?;
            let r = t.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", redirect])?;
            ensure!(show(&r).contains("OK"), "{}", show(&r));
            Ok(t)
        };
        let mut got = Vec::new();
        // Targets that stay: RESP3 unsubscribed, RESP2 subscribed elsewhere, RESP2 idle.
        for (hello, subscribe) in [("3", None), ("2", Some("elsewhere")), ("2", None)] {
            let (mut t, id) = target(hello, subscribe)?;
            let mut tr = tracker("2", &id)?;
            tr.cmd(&["GET", "k"])?;
            writer.cmd(&["SET", "k", "v"])?;
            got.push(drain(&mut t)?);
        }
        // Targets that close under a RESP3 and a RESP2 tracker.
        for hello in ["3", "2"] {
            let (t, id) = target("2", Some("__redis__:invalidate"))?;
            let mut tr = tracker(hello, &id)?;
            tr.cmd(&["GET", "k"])?;
            drop(t);
            crate::harness::wait_until(Duration::from_secs(10), "target gone", || {
                writer
                    .cmd(&["CLIENT", "LIST", "ID", &id])
                    .is_ok_and(|r| !show(&r).contains(&format!("id={id} ")))
            })?;
            let mut frames = Vec::new();
            for v in ["1", "2"] {
                writer.cmd(&["SET", "k", v])?;
                frames.extend(drain(&mut tr)?);
                tr.cmd(&["GET", "k"])?;
            }
            got.push(frames.iter().map(|f| f.replace(&id, "<id>")).collect());
        }
        seen.push(got);
    }
    ensure!(
        seen[0] == seen[1],
        "\n ours:   {:?}\n valkey: {:?}",
        seen[0],
        seen[1]
    );
    // Not two empty lists: pushes reached the targets and the broken notices the tracker.
    let text = format!("{:?}", seen[0]);
    ensure!(
        text.contains("invalidate") && text.contains("tracking-redir-broken"),
        "{text}"
    );
    Ok(())
}

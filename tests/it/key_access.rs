//! OBJECT IDLETIME and OBJECT FREQ count real accesses, side by side with valkey-server 8.1.8:
//! the same keys idle the same whole seconds after the same commands (which touch, which do
//! not, CLIENT NO-TOUCH, RESTORE … IDLETIME), an LFU counter starts at 5 and grows as
//! Valkey's, and after a SIGKILL keys count as touched at the restart.

use std::time::Duration;

use anyhow::{bail, ensure, Result};

use crate::harness::{show, wait_until, Node, RawConn, RedisServer};

fn int(c: &mut RawConn, args: &[&str]) -> Result<i64> {
    let f = c.cmd(args)?;
    match std::str::from_utf8(&f)?.strip_prefix(':') {
        Some(n) => Ok(n.trim_end().parse()?),
        None => bail!("{args:?}: {}", show(&f)),
    }
}

/// The keys, and what each one gets after they all went idle.
const TOUCHED: &[(&str, &[&str])] = &[
    ("get", &["GET", "get"]),
    ("type", &["TYPE", "type"]),
    ("exists", &["EXISTS", "exists"]),
    ("ttl", &["TTL", "ttl"]),
    ("touch", &["TOUCH", "touch"]),
    ("append", &["APPEND", "append", "x"]),
    ("strlen", &["STRLEN", "strlen"]),
    ("encoding", &["OBJECT", "ENCODING", "encoding"]),
    ("mget", &["MGET", "nothing", "mget"]),
    ("wrongtype", &["LPUSH", "wrongtype", "x"]),
    ("watch", &["WATCH", "watch"]),
    ("untouched", &["PING"]),
];

#[test]
fn idle_time_and_frequency_follow_accesses_as_valkey() -> Result<()> {
    let mut node = Node::start()?;
    let valkey = RedisServer::start_valkey()?;
    let mut conns = [node.raw()?, RawConn::connect(valkey.addr())?];
    for c in conns.iter_mut() {
        for (key, _) in TOUCHED {
            c.cmd(&["SET", key, "v"])?;
        }
        for key in ["quiet-get", "quiet-touch"] {
            c.cmd(&["SET", key, "v"])?;
        }
    }
    // Both servers' keys idle two seconds (the clock, not a guess, is what is waited for).
    for c in conns.iter_mut() {
        wait_until(Duration::from_secs(10), "keys idle 2 s", || {
            int(c, &["OBJECT", "IDLETIME", "untouched"]).unwrap_or(0) >= 2
        })?;
    }
    let mut idle = Vec::new();
    for (i, c) in conns.iter_mut().enumerate() {
        let addr = if i == 0 { node.addr() } else { valkey.addr() };
        for (_, cmd) in TOUCHED {
            c.cmd(cmd)?;
        }
        let mut quiet = RawConn::connect(addr)?;
        quiet.cmd(&["CLIENT", "NO-TOUCH", "on"])?;
        quiet.cmd(&["GET", "quiet-get"])?;
        quiet.cmd(&["TOUCH", "quiet-touch"])?;
        // A key a quiet client creates still starts as just touched.
        quiet.cmd(&["SET", "quiet-new", "v"])?;
        let info = show(&quiet.cmd(&["CLIENT", "INFO"])?);
        ensure!(info.contains("flags=T"), "server {i}: {info}");
        quiet.cmd(&["RESET"])?;
        let info = show(&quiet.cmd(&["CLIENT", "INFO"])?);
        ensure!(info.contains("flags=N"), "server {i} after RESET: {info}");
        let payload = c.cmd(&["DUMP", "get"])?;
        let body = crate::harness::bulk_body(&payload)?;
        let restore = ["RESTORE", "restored", "0"];
        let mut args: Vec<&[u8]> = restore.iter().map(|s| s.as_bytes()).collect();
        args.extend([&body[..], b"IDLETIME", b"1000"]);
        ensure!(c.cmd(&args)? == b"+OK\r\n", "server {i}: RESTORE IDLETIME");
        let mut got = Vec::new();
        for key in TOUCHED.iter().map(|(k, _)| *k).chain([
            "quiet-get",
            "quiet-touch",
            "quiet-new",
            "restored",
        ]) {
            got.push((key, int(c, &["OBJECT", "IDLETIME", key])?));
        }
        idle.push(got);
    }
    for ((key, ours), (_, theirs)) in idle[0].iter().zip(&idle[1]) {
        // The two servers ran the same commands a few milliseconds apart: a second mark
        // may fall between them.
        ensure!(
            (ours - theirs).abs() <= 1,
            "{key}: idle {ours} s here, {theirs} s on valkey ({idle:?})"
        );
    }
    let of = |key: &str| idle[0].iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    ensure!(
        of("get") == Some(0) && of("untouched") >= Some(2),
        "{idle:?}"
    );
    ensure!(
        of("watch") >= Some(2) && of("quiet-new") == Some(0),
        "{idle:?}"
    );
    ensure!(of("restored") >= Some(1000), "{idle:?}");

    // LFU: a new key's counter is 5, the first access makes it 6, and 1000 accesses leave it
    // where Valkey's logarithm puts it (about 19 with factor 10).
    let mut freq = Vec::new();
    for c in conns.iter_mut() {
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"])?;
        c.cmd(&["SET", "hot", "v"])?;
        let start = int(c, &["OBJECT", "FREQ", "hot"])?;
        c.cmd(&["GET", "hot"])?;
        let first = int(c, &["OBJECT", "FREQ", "hot"])?;
        let pipeline: Vec<u8> = (0..1000)
            .flat_map(|_| crate::harness::encode_cmd(&["GET", "hot"]))
            .collect();
        c.send(&pipeline)?;
        c.read_frames(1000)?;
        let after = int(c, &["OBJECT", "FREQ", "hot"])?;
        freq.push((start, first, after));
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"])?;
    }
    for (i, &(start, first, after)) in freq.iter().enumerate() {
        ensure!(
            start == 5 && first == 6 && (12..=28).contains(&after),
            "server {i}: counters {freq:?} (rockslot, valkey)"
        );
    }

    // After a SIGKILL nothing is remembered: keys count as touched at the restart.
    node.kill9()?;
    let up = std::time::Instant::now();
    node.restart()?;
    let mut c = node.raw()?;
    let idle = int(&mut c, &["OBJECT", "IDLETIME", "untouched"])?;
    ensure!(
        idle <= up.elapsed().as_secs() as i64 + 1,
        "idle {idle} s after a restart {:?} ago",
        up.elapsed()
    );
    Ok(())
}

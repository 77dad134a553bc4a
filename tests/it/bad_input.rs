//! Malformed and hostile input gets Valkey's exact error (bytes checked against redis-server
//! 7.0.15), protocol errors close only the offending connection, and after every case another
//! client still works and earlier data is intact.

use std::thread;
use std::time::Duration;

use anyhow::{ensure, Result};

use crate::harness::{show, Node, NodeBuilder};

/// A second client plus a sentinel key, checked after every bad input.
struct Witness {
    con: redis::Connection,
}

impl Witness {
    fn new(node: &Node) -> Result<Self> {
        let mut con = node.conn()?;
        redis::cmd("SET")
            .arg("sentinel")
            .arg("intact")
            .query::<()>(&mut con)?;
        Ok(Self { con })
    }

    fn check(&mut self, node: &Node, after: &str) -> Result<()> {
        let pong: String = redis::cmd("PING").query(&mut self.con)?;
        ensure!(
            pong == "PONG",
            "after {after}: PING on the other client replied {pong:?}"
        );
        let v: Option<String> = redis::cmd("GET").arg("sentinel").query(&mut self.con)?;
        ensure!(
            v.as_deref() == Some("intact"),
            "after {after}: sentinel is {v:?}"
        );
        // And a brand-new connection works too.
        let mut fresh = node.raw()?;
        let r = fresh.cmd(&["GET", "sentinel"])?;
        ensure!(
            r == b"$6\r\nintact\r\n",
            "after {after}: fresh GET replied {}",
            show(&r)
        );
        Ok(())
    }
}

/// Protocol errors: the exact error, then the server closes the connection.
#[test]
fn protocol_errors_reply_and_close() -> Result<()> {
    let node = Node::start()?;
    let mut w = Witness::new(&node)?;
    let cases: &[(&str, &[u8], &[u8])] = &[
        (
            "bad multibulk length",
            b"*abc\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            "'!' instead of '$'",
            b"*1\r\n!foo\r\n",
            b"-ERR Protocol error: expected '$', got '!'\r\n",
        ),
        (
            "unbalanced quotes",
            b"\"foo\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            "bulk length > proto-max-bulk-len",
            b"*1\r\n$600000000\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            "negative bulk length",
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            "non-numeric bulk length",
            b"*1\r\n$x\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
    ];
    for (name, input, expected) in cases {
        let mut c = node.raw()?;
        // A good command first on the same connection: its reply arrives before the error.
        c.send(b"*1\r\n$4\r\nPING\r\n")?;
        c.send(input)?;
        let mut want = b"+PONG\r\n".to_vec();
        want.extend_from_slice(expected);
        c.expect_reply_then_close(&want)
            .map_err(|e| anyhow::anyhow!("{name}: {e:#}"))?;
        w.check(&node, name)?;
    }

    // Oversized headers without a line end (Valkey's 64 KiB inline / count-string limits).
    let long_cases: Vec<(&str, Vec<u8>, &[u8])> = vec![
        (
            "64 KiB inline line",
            vec![b'A'; 70_000],
            b"-ERR Protocol error: too big inline request\r\n",
        ),
        (
            "64 KiB multibulk count",
            [&b"*"[..], &vec![b'1'; 70_000]].concat(),
            b"-ERR Protocol error: too big mbulk count string\r\n",
        ),
        (
            "64 KiB bulk count",
            [&b"*1\r\n$"[..], &vec![b'1'; 70_000]].concat(),
            b"-ERR Protocol error: too big bulk count string\r\n",
        ),
    ];
    for (name, input, expected) in long_cases {
        let mut c = node.raw()?;
        c.send(&input)?;
        c.expect_reply_then_close(expected)
            .map_err(|e| anyhow::anyhow!("{name}: {e:#}"))?;
        w.check(&node, name)?;
    }
    Ok(())
}

/// Command errors: the exact error, the connection stays usable.
#[test]
fn command_errors_keep_the_connection() -> Result<()> {
    let node = Node::start()?;
    let mut w = Witness::new(&node)?;
    let mut c = node.raw()?;
    let cases: &[(&[&str], &[u8])] = &[
        (
            &["GET"],
            b"-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            &["SET", "k"],
            b"-ERR wrong number of arguments for 'set' command\r\n",
        ),
        (
            &["INCR"],
            b"-ERR wrong number of arguments for 'incr' command\r\n",
        ),
        (
            &["FOO", "a"],
            b"-ERR unknown command 'FOO', with args beginning with: 'a' \r\n",
        ),
        (
            &["FOO", "a", "b"],
            b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n",
        ),
        (
            &["foo"],
            b"-ERR unknown command 'foo', with args beginning with: \r\n",
        ),
        (&["SET", "k", "abc"], b"+OK\r\n"),
        (
            &["INCR", "k"],
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["INCRBY", "n", "abc"],
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["EXPIRE", "k", "abc"],
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "0"],
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "-1"],
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            &["SET", "k", "v", "PX", "0"],
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "abc"],
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (&["SET", "k", "v", "NX", "XX"], b"-ERR syntax error\r\n"),
        (&["SET", "k", "v", "BOGUS"], b"-ERR syntax error\r\n"),
        (&["SET", "n", "9223372036854775807"], b"+OK\r\n"),
        (
            &["INCR", "n"],
            b"-ERR increment or decrement would overflow\r\n",
        ),
        (&["GET", "k"], b"$3\r\nabc\r\n"),
        (&["GET", "n"], b"$19\r\n9223372036854775807\r\n"),
        (&["PING"], b"+PONG\r\n"),
    ];
    for (args, expected) in cases {
        let reply = c.cmd(args)?;
        assert_eq!(reply, *expected, "{args:?}: got {}", show(&reply));
        w.check(&node, &format!("{args:?}"))?;
    }
    Ok(())
}

#[test]
fn clients_vanishing_mid_command_do_no_harm() -> Result<()> {
    let node = Node::start()?;
    let mut w = Witness::new(&node)?;
    let partials: &[&[u8]] = &[
        b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$100\r\nonly-part-of-the-value",
        b"*3\r\n$3\r\nSET\r\n",
        b"*2\r\n$3\r",
        b"SET half",
    ];
    for p in partials {
        let mut c = node.raw()?;
        c.send(p)?;
        drop(c);
        w.check(&node, &format!("client vanished after {}", show(p)))?;
    }
    let mut con = node.conn()?;
    assert_eq!(redis::cmd("EXISTS").arg("half").query::<i64>(&mut con)?, 0);

    // Garbage bytes: whatever the reply, the server survives.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20 {
        let mut junk = vec![0u8; 4096];
        for b in junk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let mut c = node.raw()?;
        let _ = c.send(&junk);
        let _ = c.read_to_end(Duration::from_millis(200));
    }
    w.check(&node, "random garbage")?;
    Ok(())
}

/// Valkey's inline parser stops at a NUL (C strings) and waits for more input; any sane reply
/// or a close is fine, but the server must stay responsive and its memory must not move.
#[test]
fn nul_byte_in_inline_command_is_harmless() -> Result<()> {
    let node = Node::start()?;
    let mut w = Witness::new(&node)?;
    let before = node.rss_kb().unwrap_or(0);
    for input in [&b"PING\x00\n"[..], b"\x00\n", b"GET a\x00b\r\n"] {
        let mut c = node.raw()?;
        c.send(input)?;
        let (reply, end) = c.read_to_end(Duration::from_millis(300))?;
        println!("{} -> {} ({end:?})", show(input), show(&reply));
        w.check(&node, &format!("inline {}", show(input)))?;
        let now = node.rss_kb().unwrap_or(0);
        assert!(
            now < before + 100 * 1024,
            "RSS grew from {} to {} MiB after inline {}",
            before / 1024,
            now / 1024,
            show(input)
        );
    }
    Ok(())
}

#[test]
fn big_keys_and_values_work() -> Result<()> {
    let node = Node::start()?;
    let mut w = Witness::new(&node)?;
    let mut con = node.conn()?;
    let big_key: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    redis::cmd("SET")
        .arg(&big_key[..])
        .arg("v-of-big-key")
        .query::<()>(&mut con)?;
    assert_eq!(
        redis::cmd("GET")
            .arg(&big_key[..])
            .query::<String>(&mut con)?,
        "v-of-big-key"
    );
    assert_eq!(
        redis::cmd("EXISTS")
            .arg(&big_key[..])
            .query::<i64>(&mut con)?,
        1
    );

    let big_val: Vec<u8> = (0..32 * 1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    redis::cmd("SET")
        .arg("bigval")
        .arg(&big_val[..])
        .query::<()>(&mut con)?;
    let got: Vec<u8> = redis::cmd("GET").arg("bigval").query(&mut con)?;
    assert!(
        got == big_val,
        "32 MiB value came back different ({} bytes)",
        got.len()
    );
    assert_eq!(
        redis::cmd("STRLEN").arg("bigval").query::<i64>(&mut con)?,
        32 * 1024 * 1024
    );
    assert_eq!(
        redis::cmd("DEL")
            .arg(&big_key[..])
            .arg("bigval")
            .query::<i64>(&mut con)?,
        2
    );
    w.check(&node, "big key and value")?;
    Ok(())
}

#[test]
fn value_over_proto_max_bulk_len_is_refused() -> Result<()> {
    let node = NodeBuilder::new()
        .directive("proto-max-bulk-len", "64mb")
        .start()?;
    let mut w = Witness::new(&node)?;
    let rss_before = node.rss_kb().unwrap_or(0);

    // A real 100 MiB SET: the server answers as soon as it sees the header and closes; the
    // writer thread may then see EPIPE/ECONNRESET, which is fine.
    const LEN: usize = 100 * 1024 * 1024;
    let mut c = node.raw()?;
    let mut writer = c.stream.try_clone()?;
    let t = thread::spawn(move || {
        use std::io::Write;
        let header = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${LEN}\r\n");
        let chunk = vec![b'x'; 1024 * 1024];
        let mut ok = writer.write_all(header.as_bytes()).is_ok();
        for _ in 0..LEN / chunk.len() {
            if !ok {
                break;
            }
            ok = writer.write_all(&chunk).is_ok();
        }
        ok && writer.write_all(b"\r\n").is_ok()
    });
    let (data, end) = c.read_to_end(Duration::from_secs(30))?;
    let all_written = t.join().expect("writer thread");
    assert!(
        end.is_closed(),
        "server must close the connection ({end:?}); got {}",
        show(&data)
    );
    // The error normally arrives before the close; a reset may swallow it.
    assert!(
        data == b"-ERR Protocol error: invalid bulk length\r\n"
            || (data.is_empty() && end == crate::harness::End::Reset),
        "got {} ({end:?}, writer finished: {all_written})",
        show(&data)
    );
    let mut con = node.conn()?;
    assert_eq!(redis::cmd("EXISTS").arg("big").query::<i64>(&mut con)?, 0);
    w.check(&node, "100 MiB value over a 64mb proto-max-bulk-len")?;
    let rss_after = node.rss_kb().unwrap_or(0);
    println!("RSS before/after refused 100 MiB value: {rss_before} / {rss_after} KiB");

    // Just under the limit is accepted.
    let ok_val = vec![b'y'; 60 * 1024 * 1024];
    redis::cmd("SET")
        .arg("under")
        .arg(&ok_val[..])
        .query::<()>(&mut con)?;
    assert_eq!(
        redis::cmd("STRLEN").arg("under").query::<i64>(&mut con)?,
        ok_val.len() as i64
    );
    Ok(())
}

//! Real clients work unmodified: Debian's redis-cli and redis-benchmark, the Rust `redis`
//! crate (sync, async, RESP3), and raw RESP2/RESP3/inline/pipelined traffic. Expected outputs
//! were checked against redis-server 7.0.15.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::harness::{encode_cmd, run_with_timeout, show, wait_until, Node};

#[test]
fn redis_cli_basic_commands() -> Result<()> {
    let node = Node::start()?;
    let cli = |args: &[&str]| node.cli(args);

    // Empty database: INFO has the Keyspace section but no db0 line.
    let info = cli(&["INFO"]);
    assert!(
        info.contains("redis_version:"),
        "INFO lacks redis_version:\n{info}"
    );
    assert!(
        info.contains("# Keyspace"),
        "INFO lacks # Keyspace:\n{info}"
    );
    assert!(
        !info.contains("db0:"),
        "INFO of an empty db must not list db0:\n{info}"
    );
    assert_eq!(cli(&["DBSIZE"]), "0");

    assert_eq!(cli(&["SET", "foo", "bar"]), "OK");
    assert_eq!(cli(&["GET", "foo"]), "bar");
    assert_eq!(cli(&["GET", "nokey"]), "");
    assert_eq!(cli(&["INCR", "n"]), "1");
    assert_eq!(cli(&["INCR", "n"]), "2");
    assert_eq!(cli(&["EXPIRE", "foo", "100"]), "1");
    assert_eq!(cli(&["EXPIRE", "nokey", "100"]), "0");
    let ttl: i64 = cli(&["TTL", "foo"]).parse()?;
    assert!((99..=100).contains(&ttl), "TTL foo = {ttl}");
    assert_eq!(cli(&["TTL", "n"]), "-1");
    assert_eq!(cli(&["TTL", "nokey"]), "-2");
    assert_eq!(cli(&["EXISTS", "foo", "n", "nokey"]), "2");
    assert_eq!(cli(&["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(cli(&["MGET", "a", "b", "nokey"]), "1\n2\n");
    assert_eq!(cli(&["TYPE", "foo"]), "string");
    assert_eq!(cli(&["TYPE", "nokey"]), "none");
    assert_eq!(cli(&["DBSIZE"]), "4");

    let keys: BTreeSet<String> = cli(&["KEYS", "*"]).lines().map(String::from).collect();
    assert_eq!(
        keys,
        ["a", "b", "foo", "n"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let keys: BTreeSet<String> = cli(&["KEYS", "?"]).lines().map(String::from).collect();
    assert_eq!(
        keys,
        ["a", "b", "n"].iter().map(|s| s.to_string()).collect()
    );

    // SCAN until cursor 0; redis-cli prints the cursor, then one key per line.
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    for round in 0.. {
        assert!(round < 100, "SCAN did not terminate");
        let out = cli(&["SCAN", &cursor, "COUNT", "2"]);
        let mut lines = out.lines();
        cursor = lines.next().unwrap_or_default().to_string();
        seen.extend(lines.filter(|l| !l.is_empty()).map(String::from));
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(
        seen,
        ["a", "b", "foo", "n"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );

    let info = cli(&["INFO", "keyspace"]);
    assert!(info.contains("# Keyspace"), "{info}");
    assert!(
        info.contains("db0:keys=4,expires=1,"),
        "INFO keyspace: {info}"
    );

    assert_eq!(cli(&["DEL", "a", "b", "nokey"]), "2");
    assert_eq!(cli(&["DBSIZE"]), "2");
    assert_eq!(cli(&["FLUSHDB"]), "OK");
    assert_eq!(cli(&["DBSIZE"]), "0");
    assert_eq!(cli(&["SCAN", "0"]), "0\n");
    assert_eq!(cli(&["PING"]), "PONG");
    assert_eq!(cli(&["ECHO", "hello world"]), "hello world");
    Ok(())
}

/// Parses `NAME: 12345.67 requests per second` lines of `redis-benchmark -q` output.
fn parse_benchmark(text: &str) -> Vec<(String, f64)> {
    text.split(['\r', '\n'])
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(": ")?;
            let rps = rest
                .strip_suffix(" requests per second")
                .or_else(|| rest.split_once(" requests per second").map(|(a, _)| a))?;
            Some((name.to_string(), rps.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn redis_benchmark_runs_clean() -> Result<()> {
    let node = Node::start()?;
    for pipeline in ["1", "16"] {
        let out = run_with_timeout(
            Command::new("redis-benchmark").args([
                "-h",
                "127.0.0.1",
                "-p",
                &node.port().to_string(),
                "-q",
                "-t",
                "set,get,incr,mset,ping_inline,ping_mbulk",
                "-n",
                "20000",
                "-P",
                pipeline,
            ]),
            Duration::from_secs(300),
        )?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "redis-benchmark -P {pipeline} exited {}:\n{text}",
            out.status
        );
        for bad in ["Error", "ERR", "error"] {
            assert!(
                !text.contains(bad),
                "redis-benchmark -P {pipeline} printed {bad:?}:\n{text}"
            );
        }
        if text.contains("WARNING") {
            println!(
                "redis-benchmark -P {pipeline} warned: {}",
                text.lines().find(|l| l.contains("WARNING")).unwrap_or("")
            );
        }
        let results = parse_benchmark(&text);
        let names: BTreeSet<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
        for want in [
            "PING_INLINE",
            "PING_MBULK",
            "SET",
            "GET",
            "INCR",
            "MSET (10 keys)",
        ] {
            assert!(names.contains(want), "no result for {want} in:\n{text}");
        }
        for (name, rps) in &results {
            println!("redis-benchmark -P {pipeline:>2} {name:<16} {rps:>12.0} requests/s");
        }
    }
    // The benchmark's keys are there.
    assert_eq!(node.cli(&["EXISTS", "key:__rand_int__"]), "1");
    Ok(())
}

#[test]
fn rust_redis_sync_client() -> Result<()> {
    let node = Node::start()?;
    let mut con = node.conn()?;

    redis::cmd("SET").arg("s").arg("v").query::<()>(&mut con)?;
    assert_eq!(
        redis::cmd("GET")
            .arg("s")
            .query::<Option<String>>(&mut con)?,
        Some("v".into())
    );
    assert_eq!(
        redis::cmd("GET")
            .arg("missing")
            .query::<Option<String>>(&mut con)?,
        None
    );

    // Binary-safe keys and values, including CR LF and NUL, and empty ones.
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    redis::cmd("SET")
        .arg(&all_bytes[..])
        .arg(&all_bytes[..])
        .query::<()>(&mut con)?;
    assert_eq!(
        redis::cmd("GET")
            .arg(&all_bytes[..])
            .query::<Vec<u8>>(&mut con)?,
        all_bytes
    );
    redis::cmd("SET")
        .arg("empty")
        .arg("")
        .query::<()>(&mut con)?;
    assert_eq!(
        redis::cmd("GET")
            .arg("empty")
            .query::<Option<Vec<u8>>>(&mut con)?,
        Some(vec![])
    );
    redis::cmd("SET")
        .arg("")
        .arg("empty key")
        .query::<()>(&mut con)?;
    assert_eq!(
        redis::cmd("GET").arg("").query::<String>(&mut con)?,
        "empty key"
    );

    // SET options.
    assert_eq!(
        redis::cmd("SET")
            .arg("s")
            .arg("x")
            .arg("NX")
            .query::<Option<String>>(&mut con)?,
        None
    );
    assert_eq!(
        redis::cmd("SET")
            .arg("s")
            .arg("w")
            .arg("XX")
            .arg("GET")
            .query::<Option<String>>(&mut con)?,
        Some("v".into())
    );
    assert_eq!(redis::cmd("GET").arg("s").query::<String>(&mut con)?, "w");

    // Counters.
    assert_eq!(redis::cmd("INCR").arg("c").query::<i64>(&mut con)?, 1);
    assert_eq!(
        redis::cmd("INCRBY")
            .arg("c")
            .arg(41)
            .query::<i64>(&mut con)?,
        42
    );
    assert_eq!(redis::cmd("DECR").arg("c").query::<i64>(&mut con)?, 41);

    // Expiry: EX gives a TTL, PX makes the key vanish, PERSIST removes the TTL.
    redis::cmd("SET")
        .arg("e")
        .arg("1")
        .arg("EX")
        .arg(50)
        .query::<()>(&mut con)?;
    let ttl: i64 = redis::cmd("TTL").arg("e").query(&mut con)?;
    assert!((49..=50).contains(&ttl), "TTL {ttl}");
    let pttl: i64 = redis::cmd("PTTL").arg("e").query(&mut con)?;
    assert!((49_000..=50_000).contains(&pttl), "PTTL {pttl}");
    assert_eq!(redis::cmd("PERSIST").arg("e").query::<i64>(&mut con)?, 1);
    assert_eq!(redis::cmd("TTL").arg("e").query::<i64>(&mut con)?, -1);
    redis::cmd("SET")
        .arg("gone")
        .arg("1")
        .arg("PX")
        .arg(100)
        .query::<()>(&mut con)?;
    assert_eq!(
        redis::cmd("PEXPIRE")
            .arg("s")
            .arg(150)
            .query::<i64>(&mut con)?,
        1
    );
    wait_until(Duration::from_secs(5), "PX/PEXPIRE keys to expire", || {
        matches!(
            redis::cmd("EXISTS")
                .arg("gone")
                .arg("s")
                .query::<i64>(&mut con),
            Ok(0)
        )
    })?;
    assert_eq!(
        redis::cmd("GET")
            .arg("gone")
            .query::<Option<String>>(&mut con)?,
        None
    );
    assert_eq!(redis::cmd("TTL").arg("gone").query::<i64>(&mut con)?, -2);

    // A pipeline of 2000 commands; replies come back in order.
    let mut p = redis::pipe();
    for i in 0..1000 {
        p.cmd("SET").arg(format!("p:{i}")).arg(i).ignore();
    }
    for i in 0..1000 {
        p.cmd("GET").arg(format!("p:{i}"));
    }
    let got: Vec<i64> = p.query(&mut con)?;
    assert_eq!(got, (0..1000).collect::<Vec<i64>>());

    // MSET/MGET/DEL/EXISTS.
    redis::cmd("MSET")
        .arg("m1")
        .arg("a")
        .arg("m2")
        .arg("b")
        .query::<()>(&mut con)?;
    let v: Vec<Option<String>> = redis::cmd("MGET")
        .arg("m1")
        .arg("m2")
        .arg("m3")
        .query(&mut con)?;
    assert_eq!(v, vec![Some("a".into()), Some("b".into()), None]);
    assert_eq!(
        redis::cmd("DEL")
            .arg("m1")
            .arg("m2")
            .arg("m3")
            .query::<i64>(&mut con)?,
        2
    );
    assert_eq!(redis::cmd("EXISTS").arg("m1").query::<i64>(&mut con)?, 0);

    // Errors are typed by their code.
    let err = redis::cmd("INCR")
        .arg("empty")
        .query::<i64>(&mut con)
        .unwrap_err();
    assert_eq!(err.code(), Some("ERR"), "{err:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_redis_async_client() -> Result<()> {
    let node = Node::start()?;
    let con = node.async_conn().await.context("connecting")?;

    // 200 concurrent tasks over one multiplexed connection.
    let mut tasks = Vec::new();
    for t in 0..200 {
        let mut con = con.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("a:{t}");
            redis::cmd("SET")
                .arg(&key)
                .arg(t)
                .query_async::<()>(&mut con)
                .await?;
            let v: i64 = redis::cmd("GET").arg(&key).query_async(&mut con).await?;
            let n: i64 = redis::cmd("INCR")
                .arg("a:counter")
                .query_async(&mut con)
                .await?;
            redis::RedisResult::Ok((v, n))
        }));
    }
    for (t, task) in tasks.into_iter().enumerate() {
        let (v, _) = task.await?.with_context(|| {
            format!("concurrent task {t} (redis-rs default response timeout: 500 ms)")
        })?;
        assert_eq!(v, t as i64);
    }
    let mut con = con;
    assert_eq!(
        redis::cmd("GET")
            .arg("a:counter")
            .query_async::<i64>(&mut con)
            .await?,
        200
    );

    // Pipeline and expiry.
    let mut p = redis::pipe();
    p.cmd("SET").arg("ax").arg("1").arg("PX").arg(100).ignore();
    p.cmd("SET").arg("ay").arg("2").arg("EX").arg(100).ignore();
    p.cmd("PTTL").arg("ax").cmd("TTL").arg("ay");
    let (pttl, ttl): (i64, i64) = p.query_async(&mut con).await.context("pipeline")?;
    assert!((1..=100).contains(&pttl), "PTTL {pttl}");
    assert!((99..=100).contains(&ttl), "TTL {ttl}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let exists: i64 = redis::cmd("EXISTS")
            .arg("ax")
            .query_async(&mut con)
            .await
            .context("EXISTS ax")?;
        if exists == 0 {
            break;
        }
        ensure!(tokio::time::Instant::now() < deadline, "ax did not expire");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The same over RESP3 (HELLO 3 during connection setup).
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/?protocol=resp3", node.port()))?;
    let mut con3 = client.get_multiplexed_async_connection().await?;
    redis::cmd("SET")
        .arg("r3")
        .arg("v3")
        .query_async::<()>(&mut con3)
        .await?;
    assert_eq!(
        redis::cmd("GET")
            .arg("r3")
            .query_async::<Option<String>>(&mut con3)
            .await?,
        Some("v3".into())
    );
    assert_eq!(
        redis::cmd("GET")
            .arg("nope")
            .query_async::<Option<String>>(&mut con3)
            .await?,
        None
    );
    let v: redis::Value = redis::cmd("GET").arg("nope").query_async(&mut con3).await?;
    assert_eq!(v, redis::Value::Nil);
    Ok(())
}

#[test]
fn resp3_hello_returns_a_map() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.raw()?;
    let hello = c.cmd(&["HELLO", "3"])?;
    assert!(hello.starts_with(b"%7\r\n"), "HELLO 3: {}", show(&hello));
    for field in [
        &b"$6\r\nserver\r\n"[..],
        b"$7\r\nversion\r\n",
        b"$5\r\nproto\r\n:3\r\n",
        b"$2\r\nid\r\n:",
        b"$4\r\nmode\r\n",
        b"$4\r\nrole\r\n$6\r\nmaster\r\n",
        b"$7\r\nmodules\r\n*0\r\n",
    ] {
        assert!(
            hello.windows(field.len()).any(|w| w == field),
            "HELLO 3 reply lacks {}: {}",
            show(field),
            show(&hello)
        );
    }
    // RESP3 null, then back to RESP2.
    assert_eq!(c.cmd(&["GET", "nokey"])?, b"_\r\n");
    let hello2 = c.cmd(&["HELLO", "2"])?;
    assert!(hello2.starts_with(b"*14\r\n"), "HELLO 2: {}", show(&hello2));
    assert_eq!(c.cmd(&["GET", "nokey"])?, b"$-1\r\n");
    assert_eq!(
        c.cmd(&["HELLO", "4"])?,
        b"-NOPROTO unsupported protocol version\r\n"
    );
    // INFO uses CRLF line endings (redis-cli's parser depends on it).
    let info = c.cmd(&["INFO"])?;
    let body = &info[info.iter().position(|&b| b == b'\n').unwrap_or(0) + 1..];
    for (i, w) in body.windows(2).enumerate() {
        assert!(
            !(w[1] == b'\n' && w[0] != b'\r'),
            "INFO has a bare LF at byte {i}"
        );
    }
    Ok(())
}

#[test]
fn inline_commands() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.raw()?;
    c.send(b"PING\r\n")?;
    assert_eq!(c.read_frame()?, b"+PONG\r\n");
    c.send(b"SET inl value\r\nGET inl\r\n")?;
    assert_eq!(
        c.read_frames(2)?,
        vec![b"+OK\r\n".to_vec(), b"$5\r\nvalue\r\n".to_vec()]
    );
    // Bare LF terminates too; empty lines are skipped; quotes and \x escapes work.
    c.send(b"PING\n\r\n\r\nSET \"sp ace\" \"x\\x41y\"\r\nGET 'sp ace'\r\n")?;
    assert_eq!(
        c.read_frames(3)?,
        vec![
            b"+PONG\r\n".to_vec(),
            b"+OK\r\n".to_vec(),
            b"$3\r\nxAy\r\n".to_vec()
        ]
    );
    c.send(b"PING hello\r\nEXISTS inl nope\r\n")?;
    assert_eq!(
        c.read_frames(2)?,
        vec![b"$5\r\nhello\r\n".to_vec(), b":1\r\n".to_vec()]
    );
    Ok(())
}

#[test]
fn pipelining_1000_commands_in_one_write() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.raw()?;
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1000 {
        if i % 2 == 0 {
            batch.extend(encode_cmd(&["SET", &format!("pl:{i}"), &format!("val{i}")]));
            expected.push(b"+OK\r\n".to_vec());
        } else {
            let v = format!("val{}", i - 1);
            batch.extend(encode_cmd(&["GET", &format!("pl:{}", i - 1)]));
            expected.push(format!("${}\r\n{v}\r\n", v.len()).into_bytes());
        }
    }
    c.send(&batch)?;
    let replies = c.read_frames(1000)?;
    for (i, (got, want)) in replies.iter().zip(&expected).enumerate() {
        assert_eq!(
            got,
            want,
            "reply {i}: got {} want {}",
            show(got),
            show(want)
        );
    }

    // The same bytes trickled one at a time: the decoder handles every split point.
    let cmd = encode_cmd(&["SET", "trickle", "hello"]);
    for b in &cmd {
        c.send(std::slice::from_ref(b))?;
    }
    assert_eq!(c.read_frame()?, b"+OK\r\n");
    let mut inline_and_resp = b"GET trickle\r\n".to_vec();
    inline_and_resp.extend(encode_cmd(&["GET", "trickle"]));
    for b in &inline_and_resp {
        c.send(std::slice::from_ref(b))?;
    }
    assert_eq!(c.read_frames(2)?, vec![b"$5\r\nhello\r\n".to_vec(); 2]);
    Ok(())
}

#[test]
fn many_clients_connect_and_disconnect() -> Result<()> {
    let node = Node::start()?;
    // 200 connections open at once, each doing a command, then all dropped abruptly.
    let mut conns = Vec::new();
    for i in 0..200 {
        let mut c = node.raw()?;
        assert_eq!(c.cmd(&["SET", &format!("mc:{i}"), "1"])?, b"+OK\r\n");
        conns.push(c);
    }
    drop(conns);
    let mut con = node.conn()?;
    let keys: Vec<String> = redis::cmd("KEYS").arg("mc:*").query(&mut con)?;
    assert_eq!(keys.len(), 200);
    Ok(())
}

/// `timeout`: a client idle longer than the setting is closed; a subscriber is not (as Valkey);
/// CONFIG SET timeout 0 turns it off for the next wait.
#[test]
fn idle_clients_are_closed_after_timeout_but_subscribers_stay() -> Result<()> {
    let node = Node::builder().directive("timeout", "1").start()?;
    let mut idle = node.raw()?;
    assert_eq!(idle.cmd(&["PING"])?, b"+PONG\r\n");
    let mut sub = node.raw()?;
    sub.send(&encode_cmd(&["SUBSCRIBE", "ch"]))?;
    sub.read_frame()?;
    let (_, end) = idle.read_to_end(Duration::from_secs(5))?;
    assert!(
        end.is_closed(),
        "an idle client outlived timeout 1: {end:?}"
    );
    let (_, end) = sub.read_to_end(Duration::from_millis(2500))?;
    assert!(!end.is_closed(), "a subscriber was closed by timeout");
    let mut c = node.conn()?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("timeout")
        .arg("0")
        .exec(&mut c)?;
    let mut again = node.raw()?;
    assert_eq!(again.cmd(&["PING"])?, b"+PONG\r\n");
    let (_, end) = again.read_to_end(Duration::from_millis(2500))?;
    assert!(!end.is_closed(), "closed although timeout is 0");
    Ok(())
}

/// `maxclients`: a connection past the limit gets Valkey's error and is closed, counted in
/// `rejected_connections`; once a client leaves, a new one gets in. CONFIG SET applies to the
/// next connection.
#[test]
fn maxclients_refuses_connections_past_the_limit() -> Result<()> {
    let node = Node::builder().directive("maxclients", "2").start()?;
    let mut a = node.raw()?;
    assert_eq!(a.cmd(&["PING"])?, b"+PONG\r\n");
    let mut b = node.raw()?;
    assert_eq!(b.cmd(&["PING"])?, b"+PONG\r\n");
    let mut c = node.raw()?;
    let (out, end) = c.read_to_end(Duration::from_secs(5))?;
    assert_eq!(out, b"-ERR max number of clients reached\r\n");
    assert!(end.is_closed(), "{end:?}");
    let info = String::from_utf8_lossy(&a.cmd(&["INFO", "stats"])?).into_owned();
    ensure!(info.contains("rejected_connections:1"), "{info}");
    drop(b);
    wait_until(Duration::from_secs(5), "a slot for a new client", || {
        node.raw()
            .and_then(|mut d| d.cmd(&["PING"]))
            .is_ok_and(|r| r == b"+PONG\r\n")
    })?;
    assert_eq!(a.cmd(&["CONFIG", "SET", "maxclients", "1"])?, b"+OK\r\n");
    let mut e = node.raw()?;
    let (out, _) = e.read_to_end(Duration::from_secs(5))?;
    assert_eq!(out, b"-ERR max number of clients reached\r\n");
    Ok(())
}

/// `maxmemory-clients` bounds what all query buffers hold together: clients that each stay
/// under `client-query-buffer-limit` but together pass it lose the connection whose input
/// crossed it (counted as `evicted_clients`); the others and new clients are served.
#[test]
fn query_buffers_together_stay_within_maxmemory_clients() -> Result<()> {
    let node = Node::builder()
        .directive("maxmemory-clients", "4mb")
        .start()?;
    // Each sends most of a 3 MB value and stops: its buffer holds it until the rest comes.
    let head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n".to_vec();
    let body = vec![b'x'; 2_500_000];
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = node.raw()?;
        c.send(&head)?;
        c.send(&body)?;
        held.push(c);
    }
    let mut probe = node.raw()?;
    wait_until(Duration::from_secs(10), "a client evicted", || {
        probe
            .cmd(&["INFO", "stats"])
            .is_ok_and(|r| !String::from_utf8_lossy(&r).contains("evicted_clients:0"))
    })?;
    let closed = held
        .into_iter()
        .filter_map(|mut c| {
            c.set_timeout(Duration::from_millis(500)).ok()?;
            Some(c.cmd(&["PING"]).is_err())
        })
        .filter(|closed| *closed)
        .count();
    ensure!(closed >= 1, "no client was closed");
    ensure!(
        probe.cmd(&["PING"])? == b"+PONG\r\n",
        "the node keeps serving"
    );
    let rss = node.rss_kb().unwrap_or(0);
    println!("maxmemory-clients 4mb: {closed} of 3 clients closed, RSS {rss} kB");
    ensure!(
        probe.cmd(&["CONFIG", "SET", "maxmemory-clients", "0"])? == b"+OK\r\n",
        "the budget can be lifted"
    );
    Ok(())
}

/// `client-output-buffer-limit normal`: a client whose pending replies pass the hard limit
/// is closed (counted in INFO stats) instead of the node holding them. Replies go out in
/// bounded chunks while a client reads, so what passes it is one reply larger than the limit.
#[test]
fn replies_past_the_normal_output_limit_close_the_client() -> Result<()> {
    let node = Node::builder()
        .directive_raw("client-output-buffer-limit", "normal 1mb 0 0")
        .start()?;
    let mut c = node.raw()?;
    ensure!(c.cmd(&["SET", "big", &"v".repeat(2_000_000)])? == b"+OK\r\n");
    ensure!(c.cmd(&["SET", "small", &"v".repeat(100_000)])? == b"+OK\r\n");
    let mut greedy = node.raw()?;
    greedy.send(&encode_cmd(&["GET", "big"]))?;
    let (got, _) = greedy.read_to_end(Duration::from_secs(10))?;
    ensure!(
        got.is_empty(),
        "{} reply bytes reached the client",
        got.len()
    );
    // Replies under the limit, even many in a row, are served.
    let mut few = Vec::new();
    for _ in 0..30 {
        few.extend(encode_cmd(&["GET", "small"]));
    }
    c.send(&few)?;
    ensure!(c.read_frames(30)?.len() == 30);
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "stats"])?).into_owned();
    ensure!(
        info.contains("client_output_buffer_limit_disconnections:1"),
        "{info}"
    );
    Ok(())
}

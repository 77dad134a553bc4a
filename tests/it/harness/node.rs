//! `NodeBuilder` (config, password, args) and `Node` (one server process: start, stop,
//! SIGKILL, restart, pause, clients, RSS).

#![allow(dead_code)]

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::*;

// ---------------------------------------------------------------------------------------------
// NodeBuilder

/// Formats a config argument the way valkey.conf wants it: bare when safe, else double-quoted.
pub fn conf_quote(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\' && b != b'#');
    if bare {
        value.to_string()
    } else {
        let mut s = String::from("\"");
        for c in value.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                c => s.push(c),
            }
        }
        s.push('"');
        s
    }
}

/// Everything needed to (re)start one node. Clone it to start several similar nodes.
#[derive(Clone, Debug)]
pub struct NodeBuilder {
    /// `(name, raw argument text)` written as `name args` lines after bind/port/dir.
    directives: Vec<(String, String)>,
    /// When set, the whole config file: this text with `{port}` and `{dir}` substituted.
    exact_config: Option<String>,
    password: Option<String>,
    extra_args: Vec<OsString>,
    port: Option<u16>,
    root: Option<PathBuf>,
    ready_timeout: Duration,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeBuilder {
    pub fn new() -> Self {
        Self {
            directives: Vec::new(),
            exact_config: None,
            password: None,
            extra_args: Vec::new(),
            port: None,
            root: None,
            ready_timeout: READY_TIMEOUT,
        }
    }

    /// Adds (or replaces) a config line `name value`; `value` is quoted if needed.
    pub fn directive(self, name: &str, value: &str) -> Self {
        self.directive_raw(name, &conf_quote(value))
    }

    /// Adds (or replaces) a config line `name args` with `args` written verbatim.
    pub fn directive_raw(mut self, name: &str, args: &str) -> Self {
        self.directives
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.directives.push((name.to_string(), args.to_string()));
        self
    }

    /// `requirepass pw`, and every client the harness makes authenticates with it.
    pub fn password(self, pw: &str) -> Self {
        let mut b = self.directive("requirepass", pw);
        b.password = Some(pw.to_string());
        b
    }

    /// Only tells the harness's clients to authenticate (for `exact_config` nodes).
    pub fn client_password(mut self, pw: &str) -> Self {
        self.password = Some(pw.to_string());
        self
    }

    pub fn appendfsync(self, mode: &str) -> Self {
        self.directive("appendfsync", mode)
    }

    /// Uses `text` as the entire config file; `{port}` and `{dir}` are substituted. Directives
    /// added with [`Self::directive`] are then ignored (pass overrides with [`Self::arg`]).
    pub fn exact_config(mut self, text: &str) -> Self {
        self.exact_config = Some(text.to_string());
        self
    }

    /// An extra command-line argument after the config file (e.g. `--loglevel`, `debug`);
    /// `{port}` and `{dir}` in it are substituted.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Several extra command-line arguments; see [`Self::arg`].
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Uses `root` (created if missing) instead of a fresh temp dir; the caller owns it.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Writes the config and directories, without spawning anything.
    fn prepare(&self) -> Result<Node> {
        let (tmp, root) = match &self.root {
            Some(r) => (None, r.clone()),
            None => {
                let t = tempfile::Builder::new().prefix("rockslot-it-").tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let data_dir = root.join("data");
        fs::create_dir_all(&data_dir)?;
        let port = self.port.unwrap_or_else(free_port);
        let conf_path = root.join("node.conf");
        let node = Node {
            port,
            root,
            data_dir,
            conf_path,
            builder: self.clone(),
            child: None,
            tmp,
        };
        node.write_config()?;
        Ok(node)
    }

    /// Starts the node and waits until it answers PING. If the port was taken in the meantime
    /// (another process won the race), retries on a new port.
    pub fn start(self) -> Result<Node> {
        let mut last_err = None;
        for _ in 0..3 {
            let mut node = self.prepare()?;
            match node.spawn_and_wait() {
                Ok(_) => return Ok(node),
                Err(e) => {
                    let log = node.log().to_ascii_lowercase();
                    let port_clash = self.port.is_none()
                        && (log.contains("address already in use") || log.contains("addrinuse"));
                    if !port_clash {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.expect("loop ran"))
    }

    /// Spawns the server expecting it to exit by itself (bad config etc.) within `timeout`;
    /// returns its exit status and everything it printed.
    pub fn run_to_exit(self, timeout: Duration) -> Result<(ExitStatus, String)> {
        let mut node = self.prepare()?;
        node.spawn()?;
        let child = node.child.as_mut().expect("just spawned");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait()? {
                node.child = None;
                return Ok((st, node.log()));
            }
            if Instant::now() >= deadline {
                bail!(
                    "rockslot-server still running after {timeout:?} (expected it to exit); log:\n{}",
                    node.log_tail(30)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Node

/// One running (or stopped) `rockslot-server` process with its port, dir and config.
pub struct Node {
    port: u16,
    root: PathBuf,
    data_dir: PathBuf,
    conf_path: PathBuf,
    builder: NodeBuilder,
    child: Option<Child>,
    tmp: Option<tempfile::TempDir>,
}

impl Node {
    pub fn builder() -> NodeBuilder {
        NodeBuilder::new()
    }

    /// A node with default settings, started and ready.
    pub fn start() -> Result<Node> {
        NodeBuilder::new().start()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port a `tls-port {tls_port}` directive gives the node (client port + 20000).
    pub fn tls_port(&self) -> u16 {
        self.port + 20000
    }

    /// Cluster bus port (client port + 10000).
    pub fn bus_port(&self) -> u16 {
        self.port + 10000
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `127.0.0.1:PORT`, as redis-cli `--cluster` wants it.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The data dir (the `dir` directive).
    pub fn dir(&self) -> &Path {
        &self.data_dir
    }

    /// The node's root dir (config, log, data).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn conf_path(&self) -> &Path {
        &self.conf_path
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    pub fn password(&self) -> Option<&str> {
        self.builder.password.as_deref()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Everything the server printed so far (all runs).
    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        tail_lines(&self.log(), n)
    }

    fn config_text(&self) -> String {
        let dir = self.data_dir.to_string_lossy();
        match &self.builder.exact_config {
            Some(t) => t
                .replace("{port}", &self.port.to_string())
                .replace("{dir}", &dir),
            None => {
                let mut s = String::from("# generated by tests/it/harness.rs\n");
                s.push_str("bind 127.0.0.1\n");
                s.push_str(&format!("port {}\n", self.port));
                s.push_str(&format!("dir {}\n", conf_quote(&dir)));
                for (name, args) in &self.builder.directives {
                    let args = args.replace("{tls_port}", &self.tls_port().to_string());
                    s.push_str(&format!("{name} {args}\n"));
                }
                s
            }
        }
    }

    fn write_config(&self) -> Result<()> {
        fs::write(&self.conf_path, self.config_text())
            .with_context(|| format!("writing {}", self.conf_path.display()))
    }

    fn spawn(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("node on port {} is already running", self.port);
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        writeln!(
            &log,
            "===== harness: starting rockslot-server on port {} =====",
            self.port
        )?;
        let mut cmd = Command::new(SERVER_BIN);
        let port = self.port.to_string();
        let dir = self.data_dir.to_string_lossy().into_owned();
        let args = self.builder.extra_args.iter().map(|a| match a.to_str() {
            Some(s) => OsString::from(s.replace("{port}", &port).replace("{dir}", &dir)),
            None => a.clone(),
        });
        cmd.arg(&self.conf_path)
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env("RUST_BACKTRACE", "1");
        let child = spawn_server(cmd).with_context(|| format!("spawning {SERVER_BIN}"))?;
        if let Ok(mut list) = watchdog().lock() {
            list.push(Watched {
                pid: child.id(),
                conf: self.conf_path.to_string_lossy().into_owned(),
                log: self.log_path(),
            });
        }
        self.child = Some(child);
        Ok(())
    }

    fn spawn_and_wait(&mut self) -> Result<Duration> {
        let t0 = Instant::now();
        self.spawn()?;
        self.wait_ready(self.builder.ready_timeout)?;
        Ok(t0.elapsed())
    }

    /// Polls until the server answers PING (authenticated if needed) with `+PONG`; fails at
    /// once, with the log tail, if the process exits.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let port = self.port;
        let password = self.builder.password.clone();
        let res = {
            let child = self
                .child
                .as_mut()
                .ok_or_else(|| anyhow!("node not started"))?;
            try_wait_until(
                timeout,
                &format!("rockslot-server on port {port} to answer PING"),
                || {
                    if let Some(st) = child.try_wait()? {
                        bail!("rockslot-server exited during startup ({st})");
                    }
                    Ok(probe_ping(port, password.as_deref()))
                },
            )
        };
        res.map_err(|e| anyhow!("{e:#}\n--- server log tail ---\n{}", self.log_tail(40)))
    }

    /// SIGKILL and reap. No-op if not running.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM and wait (up to 30 s) for a graceful exit; returns the exit status. On timeout
    /// the process is SIGKILLed and an error returned.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.stop_within(STOP_TIMEOUT)
    }

    pub fn stop_within(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("node on port {} is not running", self.port);
        };
        self.signal_pid(child.id(), libc::SIGTERM)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "rockslot-server on port {} did not exit within {timeout:?} of SIGTERM; log:\n{}",
                    self.port,
                    self.log_tail(30)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the node again with the same port, dir and config (stopping it gracefully first
    /// if it still runs) and waits until ready; returns the time from spawn to ready.
    pub fn restart(&mut self) -> Result<Duration> {
        if self.is_running() {
            self.stop()?;
        }
        self.child = None;
        self.write_config()?;
        self.spawn_and_wait()
    }

    /// Starts the stopped node again (same port, dir, config) expecting it to exit by itself
    /// within `timeout` (e.g. refusing a corrupt file); returns its exit status and what this
    /// run printed.
    pub fn start_expecting_exit(&mut self, timeout: Duration) -> Result<(ExitStatus, String)> {
        if self.is_running() {
            bail!("node on port {} is still running", self.port);
        }
        self.child = None;
        let before = self.log().len();
        self.write_config()?;
        self.spawn()?;
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("just spawned");
            if let Some(st) = child.try_wait()? {
                self.child = None;
                let log = self.log();
                return Ok((st, log.get(before..).unwrap_or(&log).to_string()));
            }
            if Instant::now() >= deadline {
                let _ = self.kill9();
                bail!(
                    "rockslot-server on port {} still running after {timeout:?} (expected it to exit); log:\n{}",
                    self.port,
                    self.log_tail(30)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGSTOP: the process freezes (no replies, no gossip) but keeps its sockets.
    pub fn pause(&mut self) -> Result<()> {
        let pid = self.pid().ok_or_else(|| anyhow!("node not running"))?;
        self.signal_pid(pid, libc::SIGSTOP)
    }

    /// SIGKILL through a shared borrow (from inside a scope where other threads use the
    /// cluster); [`Self::kill9`] or a restart reaps it later.
    pub fn sigkill(&self) -> Result<()> {
        let pid = self.pid().ok_or_else(|| anyhow!("node not running"))?;
        self.signal_pid(pid, libc::SIGKILL)
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&mut self) -> Result<()> {
        let pid = self.pid().ok_or_else(|| anyhow!("node not running"))?;
        self.signal_pid(pid, libc::SIGCONT)
    }

    fn signal_pid(&self, pid: u32, sig: libc::c_int) -> Result<()> {
        // SAFETY: plain syscall on a child we own and have not reaped.
        let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
        if rc != 0 {
            bail!("kill({pid}, {sig}): {}", io::Error::last_os_error());
        }
        Ok(())
    }

    /// Current RSS of the server in KiB.
    pub fn rss_kb(&self) -> Option<u64> {
        self.pid().and_then(rss_kb_of)
    }

    /// Peak RSS (VmHWM) of the current server process in KiB.
    pub fn peak_rss_kb(&self) -> Option<u64> {
        self.pid().and_then(peak_rss_kb_of)
    }

    // ----- clients -----

    /// `redis://[:pw@]127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        match self.password() {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    pub fn client(&self) -> Result<redis::Client> {
        Ok(redis::Client::open(self.url())?)
    }

    /// A sync `redis` crate connection (authenticated if the node has a password), with 30 s
    /// read/write timeouts so a hung server fails the test instead of hanging it.
    pub fn conn(&self) -> Result<redis::Connection> {
        let con = self
            .client()?
            .get_connection_with_timeout(Duration::from_secs(10))?;
        con.set_read_timeout(Some(Duration::from_secs(30)))?;
        con.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(con)
    }

    /// A multiplexed async (tokio) connection.
    pub async fn async_conn(&self) -> Result<redis::aio::MultiplexedConnection> {
        Ok(self.client()?.get_multiplexed_async_connection().await?)
    }

    /// A raw TCP connection (no handshake).
    pub fn raw(&self) -> Result<RawConn> {
        RawConn::connect(self.addr())
    }

    /// A raw TCP connection that has sent `AUTH` if the node has a password.
    pub fn raw_authed(&self) -> Result<RawConn> {
        let mut c = self.raw()?;
        if let Some(pw) = self.password() {
            let reply = c.cmd(&["AUTH", pw])?;
            if reply != b"+OK\r\n" {
                bail!("AUTH failed: {}", show(&reply));
            }
        }
        Ok(c)
    }

    /// Debian's `redis-cli -h 127.0.0.1 -p PORT [-a pw --no-auth-warning] args…` (60 s limit).
    pub fn redis_cli(&self, args: &[&str]) -> Output {
        self.redis_cli_with_password(self.password(), args)
    }

    /// `redis-cli` with an explicit password (or none), whatever the node's is.
    pub fn redis_cli_with_password(&self, password: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(pw) = password {
            cmd.args(["-a", pw, "--no-auth-warning"]);
        }
        cmd.args(args);
        run_with_timeout(&mut cmd, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("redis-cli {args:?}: {e:#}"))
    }

    /// stdout of [`Self::redis_cli`], asserting exit code 0, trailing newline trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.redis_cli(args);
        assert!(
            out.status.success(),
            "redis-cli {args:?} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.strip_suffix('\n').unwrap_or(&s).to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let panicking = thread::panicking();
        // A server that died by itself (crash, watchdog) is always worth its log tail.
        let died = match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status),
            _ => None,
        };
        if let Some(status) = died {
            eprintln!(
                "===== rockslot-server port {} died unexpectedly: {status} =====",
                self.port
            );
        }
        if panicking || died.is_some() {
            eprintln!(
                "===== rockslot-server port {} ({}) log tail =====\n{}\n===== end of log tail =====",
                self.port,
                self.root.display(),
                self.log_tail(60)
            );
        }
        let _ = self.kill9();
        if panicking && std::env::var_os("ROCKSLOT_KEEP_TMP").is_some() {
            if let Some(t) = self.tmp.take() {
                eprintln!("keeping {}", t.keep().display());
            }
        }
    }
}

/// One PING (after AUTH if `password`) over a fresh connection: true iff the reply is +PONG.
fn probe_ping(port: u16, password: Option<&str>) -> bool {
    let Ok(mut c) = RawConn::connect_with_timeout(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = c.set_timeout(Duration::from_secs(2));
    if let Some(pw) = password {
        match c.cmd(&["AUTH", pw]) {
            Ok(r) if r == b"+OK\r\n" => {}
            _ => return false,
        }
    }
    matches!(c.cmd(&["PING"]), Ok(r) if r == b"+PONG\r\n")
}

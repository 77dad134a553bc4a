//! Polling helpers, loopback ports, server spawning (with PR_SET_PDEATHSIG), the RSS
//! watchdog, running tools with a timeout.

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

// ---------------------------------------------------------------------------------------------
// Polling helpers

/// Polls `cond` every 20 ms until it returns true; fails after `timeout` naming `what`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    try_wait_until(timeout, what, || Ok(cond()))
}

/// Like [`wait_until`], but an `Err` from `cond` aborts the wait at once.
pub fn try_wait_until(
    timeout: Duration,
    what: &str,
    cond: impl FnMut() -> Result<bool>,
) -> Result<()> {
    try_wait_until_every(timeout, Duration::from_millis(20), what, cond)
}

/// Like [`try_wait_until`], polling every `every` (for conditions that are costly to check,
/// such as asking every node of a cluster).
pub fn try_wait_until_every(
    timeout: Duration,
    every: Duration,
    what: &str,
    mut cond: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(every);
    }
}

/// The opposite of a wait: polls `cond` every `every` for the whole of `period` and fails as
/// soon as it is false (something that must *not* happen, e.g. a refused peer joining).
pub fn hold_for(
    period: Duration,
    every: Duration,
    what: &str,
    mut cond: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + period;
    loop {
        if !cond()? {
            bail!(
                "{what} stopped holding after {:?}",
                period.saturating_sub(deadline.saturating_duration_since(Instant::now()))
            );
        }
        if Instant::now() >= deadline {
            return Ok(());
        }
        thread::sleep(every);
    }
}

/// Polls `f` until it yields `Some(value)`; fails after `timeout` naming `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let mut out = None;
    wait_until(timeout, what, || {
        out = f();
        out.is_some()
    })?;
    Ok(out.expect("set when the wait succeeded"))
}

// ---------------------------------------------------------------------------------------------
// Ports

const PORT_BASE: u16 = 20000;
/// Client ports 20000..22700, cluster bus ports (+10000) 30000..32700: both below Linux's
/// ephemeral range (32768..), so outgoing connections never take them.
const PORT_SPAN: u16 = 2700;
static NEXT_PORT: AtomicU16 = AtomicU16::new(u16::MAX);

pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A loopback port `p` such that both `p` and `p + 10000` (cluster bus) are free right now.
/// Ports are handed out once per test binary (global counter from a random start), so tests
/// running in parallel never get the same port.
pub fn free_port() -> u16 {
    if NEXT_PORT.load(Ordering::SeqCst) == u16::MAX {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let start = ((std::process::id().wrapping_mul(7919) ^ nanos) % u32::from(PORT_SPAN)) as u16;
        let _ = NEXT_PORT.compare_exchange(u16::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    }
    for _ in 0..PORT_SPAN {
        let n = NEXT_PORT.fetch_add(1, Ordering::SeqCst) % PORT_SPAN;
        let port = PORT_BASE + n;
        if port_is_free(port) && port_is_free(port + 10000) && port_is_free(port + 20000) {
            return port;
        }
    }
    panic!(
        "no free loopback port pair in {PORT_BASE}..{}",
        PORT_BASE + PORT_SPAN
    );
}

// ---------------------------------------------------------------------------------------------
// Process spawning

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Servers are spawned from one long-lived thread with `PR_SET_PDEATHSIG = SIGKILL`: the
/// signal fires when the *spawning thread* exits, so spawning from short-lived test threads
/// would kill servers early; this thread lives as long as the test binary.
pub(crate) fn spawn_server(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("rockslot-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the process-spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    let mut cmd = cmd;
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: prctl/getppid/_exit are async-signal-safe; nothing is allocated.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    tx.lock()
        .map_err(|_| io::Error::other("spawner lock poisoned"))?
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("spawner thread gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread gone"))?
}

/// Servers whose RSS goes above this many MiB are SIGKILLed by the harness watchdog, so a
/// runaway server fails its test instead of taking the machine down with the OOM killer.
/// Override with `ROCKSLOT_TEST_RSS_LIMIT_MB`.
pub const DEFAULT_RSS_LIMIT_MB: u64 = 4096;

pub(crate) struct Watched {
    pub(crate) pid: u32,
    /// The node's config path: must appear in `/proc/PID/cmdline`, so a recycled pid is never hit.
    pub(crate) conf: String,
    pub(crate) log: PathBuf,
}

pub(crate) fn watchdog() -> &'static Mutex<Vec<Watched>> {
    static WATCHED: OnceLock<Mutex<Vec<Watched>>> = OnceLock::new();
    WATCHED.get_or_init(|| {
        let limit_kb = std::env::var("ROCKSLOT_TEST_RSS_LIMIT_MB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(DEFAULT_RSS_LIMIT_MB)
            * 1024;
        thread::Builder::new()
            .name("rockslot-rss-watchdog".into())
            .spawn(move || loop {
                thread::sleep(Duration::from_millis(50));
                let Ok(mut list) = watchdog().lock() else { return };
                list.retain(|w| {
                    let Ok(cmdline) = fs::read(format!("/proc/{}/cmdline", w.pid)) else {
                        return false; // gone
                    };
                    if !String::from_utf8_lossy(&cmdline).contains(&w.conf) {
                        return false; // pid recycled
                    }
                    match rss_kb_of(w.pid) {
                        Some(kb) if kb > limit_kb => {
                            // SAFETY: plain syscall; the pid was just verified to be our server.
                            unsafe { libc::kill(w.pid as libc::pid_t, libc::SIGKILL) };
                            let msg = format!(
                                "===== harness watchdog: RSS {} MiB > limit {} MiB, SIGKILLed pid {} =====",
                                kb / 1024,
                                limit_kb / 1024,
                                w.pid
                            );
                            eprintln!("{msg}");
                            if let Ok(mut f) = File::options().append(true).open(&w.log) {
                                let _ = writeln!(f, "{msg}");
                            }
                            false
                        }
                        _ => true,
                    }
                });
            })
            .expect("spawn the RSS watchdog thread");
        Mutex::new(Vec::new())
    })
}

/// Runs a command to completion with captured output; kills it and fails after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {desc}"))?;
    let mut out_pipe = child.stdout.take().expect("piped");
    let mut err_pipe = child.stderr.take().expect("piped");
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => bail!(
            "{desc} did not finish within {timeout:?}\nstdout tail:\n{}\nstderr tail:\n{}",
            tail_lines(&String::from_utf8_lossy(&stdout), 20),
            tail_lines(&String::from_utf8_lossy(&stderr), 20)
        ),
    }
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Resident set size of a process in KiB (`VmRSS`), if it is alive.
pub fn rss_kb_of(pid: u32) -> Option<u64> {
    proc_status_kb(pid, "VmRSS:")
}

/// Peak resident set size of a process in KiB (`VmHWM`), if it is alive.
pub fn peak_rss_kb_of(pid: u32) -> Option<u64> {
    proc_status_kb(pid, "VmHWM:")
}

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

//! External tools: a finished run with its output ([`ToolRun`]), and a CLI driven
//! interactively on a pseudo-terminal ([`Interactive`]).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use super::*;

// ---------------------------------------------------------------------------------------------
// Tool runs

/// A finished external tool (redis-cli, rockslot-cli, redis-benchmark, python3).
#[derive(Debug)]
pub struct ToolRun {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl ToolRun {
    pub fn run(cmd: &mut Command, timeout: Duration) -> Result<ToolRun> {
        let what = format!("{cmd:?}");
        let t0 = Instant::now();
        let out = run_with_timeout(cmd, timeout)?;
        Ok(ToolRun {
            what,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: t0.elapsed(),
        })
    }

    /// Everything, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{} exited {} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.status,
            self.elapsed,
            tail_lines(&self.stdout, 80),
            tail_lines(&self.stderr, 40)
        )
    }

    /// Fails (with the whole output) unless the exit code was 0.
    pub fn ensure_success(self) -> Result<ToolRun> {
        ensure!(self.status.success(), "{}", self.describe());
        Ok(self)
    }

    /// stdout with carriage-return progress lines (redis-benchmark -q) split into lines.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .split(['\n', '\r'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Interactive CLI on a pseudo-terminal

/// A CLI running interactively on a pseudo-terminal (through util-linux `script`, with
/// `TERM=dumb` so linenoise reads plain lines and sends no cursor queries). Lines are fed one at
/// a time; output (which includes the terminal's echo of the input) is collected.
pub struct Interactive {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Interactive {
    /// Runs `argv` (program and arguments, no shell metacharacters) under `script`.
    pub fn spawn(argv: &[String]) -> Result<Interactive> {
        for a in argv {
            ensure!(
                a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-:".contains(&b)),
                "argument {a:?} would need shell quoting"
            );
        }
        let mut child = Command::new("script")
            .args(["-q", "-f", "-e", "-c", &argv.join(" "), "/dev/null"])
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning script(1) (util-linux)")?;
        let stdin = child.stdin.take();
        let mut pipe = child.stdout.take().expect("piped");
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut o) = sink.lock() {
                    o.extend_from_slice(&buf[..n]);
                }
            }
        });
        Ok(Interactive {
            child,
            stdin,
            out,
            reader: Some(reader),
        })
    }

    /// Everything printed so far, with `\r` removed.
    pub fn output(&self) -> String {
        let bytes = self.out.lock().map(|o| o.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).replace('\r', "")
    }

    pub fn send_line(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("stdin closed"))?;
        stdin.write_all(format!("{line}\n").as_bytes())?;
        stdin.flush()?;
        Ok(())
    }

    /// Waits until the output contains `needle` `count` times (echoed input counts too).
    pub fn wait_output(&self, needle: &str, count: usize, timeout: Duration) -> Result<()> {
        wait_until(
            timeout,
            &format!("{count}× {needle:?} in the CLI output"),
            || self.output().matches(needle).count() >= count,
        )
        .map_err(|e| anyhow!("{e:#}\n--- output so far ---\n{}", self.output()))
    }

    /// Sends `quit` and waits for the process to end; returns all output.
    pub fn quit(mut self, timeout: Duration) -> Result<String> {
        let _ = self.send_line("quit");
        let deadline = Instant::now() + timeout;
        loop {
            if self.child.try_wait()?.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "interactive CLI did not exit after quit; output:\n{}",
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.stdin = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Ok(self.output())
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

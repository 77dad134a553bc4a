//! `rockslot-cli`: a RESP client in the manner of valkey-cli: one-shot commands, an interactive
//! prompt, and (with `-c`) following MOVED/ASK redirects.
//!
//! Owns: argument parsing for the CLI, a blocking RESP connection, reply printing, and the
//! `--cluster` manager verbs (`cluster`).
//! Must not: run server code. It talks to nodes over their client port (RESP) and, for slot
//! backups, their cluster port (`rpc::BackupPeer`); backup files are read and written through
//! `storage`'s SST file format (`RunWriter`/`RunReader`), the only storage it uses.

pub mod cluster;
mod conn;
mod print;

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use clap::Parser;

pub use conn::{Connection, Value};

#[derive(Parser, Debug)]
#[command(name = "rockslot-cli", disable_help_flag = true, version)]
pub struct Args {
    /// Server hostname.
    #[arg(short = 'h', default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(short = 'p', default_value_t = 6379)]
    pub port: u16,
    /// Password (AUTH).
    #[arg(short = 'a', long = "pass")]
    pub pass: Option<String>,
    /// Username for AUTH <user> <pass>.
    #[arg(long = "user")]
    pub user: Option<String>,
    /// Follow -MOVED and -ASK redirects (cluster mode).
    #[arg(short = 'c')]
    pub cluster_mode: bool,
    /// Do not warn about passwords on the command line.
    #[arg(long = "no-auth-warning")]
    pub no_auth_warning: bool,
    /// Cluster manager: `--cluster <verb> [args...] [--cluster-<option> ...]`
    /// (create, check, info, add-node, del-node, call, reshard, rebalance, backup, restore,
    /// import-rdb, help).
    #[arg(long = "cluster", value_name = "VERB")]
    pub cluster: Option<String>,
    /// Print help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Command and arguments; without them an interactive prompt starts.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs the CLI; returns the process exit code.
pub fn main_with(args: Args) -> anyhow::Result<i32> {
    if args.pass.is_some() && !args.no_auth_warning {
        eprintln!("Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.");
    }
    if let Some(verb) = &args.cluster {
        return cluster::run(&args, verb);
    }
    let tty = std::io::stdout().is_terminal();
    let mut session = Session::connect(&args)?;
    if !args.command.is_empty() {
        let argv: Vec<Vec<u8>> = args.command.iter().map(|a| a.as_bytes().to_vec()).collect();
        let v = session.call(&argv, tty)?;
        print::print(&v, tty, &mut std::io::stdout())?;
        return Ok(0);
    }
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    loop {
        if tty {
            write!(out, "{}:{}> ", session.host, session.port)?;
            out.flush()?;
        }
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            return Ok(0);
        }
        let Some(argv) = crate::resp::split_args_str(line.trim_end()) else {
            eprintln!("Invalid argument(s)");
            continue;
        };
        if argv.is_empty() {
            continue;
        }
        if argv[0].eq_ignore_ascii_case(b"quit") || argv[0].eq_ignore_ascii_case(b"exit") {
            return Ok(0);
        }
        match session.call(&argv, tty) {
            Ok(v) => print::print(&v, tty, &mut out)?,
            Err(e) => eprintln!("{e:#}"),
        }
    }
}

/// A connection plus what redirects need to reconnect.
pub struct Session {
    pub host: String,
    pub port: u16,
    user: Option<String>,
    pass: Option<String>,
    follow: bool,
    conn: Connection,
}

impl Session {
    pub fn connect(args: &Args) -> anyhow::Result<Session> {
        let conn = Connection::open(
            &args.host,
            args.port,
            args.user.as_deref(),
            args.pass.as_deref(),
        )?;
        Ok(Session {
            host: args.host.clone(),
            port: args.port,
            user: args.user.clone(),
            pass: args.pass.clone(),
            follow: args.cluster_mode,
            conn,
        })
    }

    /// Sends `argv`, following up to 16 redirects in `-c` mode.
    pub fn call(&mut self, argv: &[Vec<u8>], announce: bool) -> anyhow::Result<Value> {
        for _ in 0..16 {
            let v = self.conn.call(argv)?;
            let redirect = match &v {
                Value::Error(e) if self.follow => parse_redirect(e),
                _ => None,
            };
            let Some((asking, slot, host, port)) = redirect else {
                return Ok(v);
            };
            if announce {
                println!("-> Redirected to slot [{slot}] located at {host}:{port}");
            }
            let host = if host.is_empty() {
                self.host.clone()
            } else {
                host
            };
            self.conn = Connection::open(&host, port, self.user.as_deref(), self.pass.as_deref())
                .with_context(|| format!("following redirect to {host}:{port}"))?;
            self.host = host;
            self.port = port;
            if asking {
                self.conn.call(&[b"ASKING".to_vec()])?;
            }
        }
        anyhow::bail!("too many redirects")
    }
}

/// `MOVED 3999 127.0.0.1:7002` → (asking, slot, host, port).
pub fn parse_redirect(e: &str) -> Option<(bool, u16, String, u16)> {
    let mut it = e.split(' ');
    let kind = it.next()?;
    let asking = match kind {
        "MOVED" => false,
        "ASK" => true,
        _ => return None,
    };
    let slot = it.next()?.parse().ok()?;
    let addr = it.next()?;
    let (host, port) = addr.rsplit_once(':')?;
    Some((asking, slot, host.to_string(), port.parse().ok()?))
}

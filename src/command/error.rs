//! Command errors and their RESP error lines, mapped in one place.

use bytes::Bytes;

use crate::keyspace::KeyspaceError;

#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("ERR unknown command '{}', with args beginning with: {}", name(&.0[0]), args_preview(&.0[1..]))]
    UnknownCommand(Vec<Bytes>),
    #[error("ERR unknown subcommand '{0}'. Try {1} HELP.")]
    UnknownSubcommand(String, String),
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR {0}")]
    Err(String),
    /// A complete error line with its own prefix (`BUSYKEY ...`, `WRONGPASS ...`).
    #[error("{0}")]
    Line(String),
    #[error("ERR {0}")]
    Keyspace(#[from] KeyspaceError),
}

fn name(b: &Bytes) -> String {
    clean(&String::from_utf8_lossy(b))
}

fn clean(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Valkey quotes each argument with a trailing space and stops after about 128 characters.
fn args_preview(args: &[Bytes]) -> String {
    let mut out = String::new();
    for a in args {
        if out.len() >= 128 {
            break;
        }
        let s = clean(&String::from_utf8_lossy(a));
        let room = 128 - out.len();
        let s: String = s.chars().take(room).collect();
        out.push('\'');
        out.push_str(&s);
        out.push_str("' ");
    }
    out
}

pub type CmdResult = Result<crate::resp::Reply, CmdError>;

impl CmdError {
    pub fn err(msg: impl Into<String>) -> CmdError {
        CmdError::Err(msg.into())
    }
}

impl From<crate::keyspace::WrongType> for CmdError {
    fn from(_: crate::keyspace::WrongType) -> Self {
        CmdError::WrongType
    }
}

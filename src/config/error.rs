//! Error types of the config module: load-time errors that point at a file and
//! line (or the command line), and CONFIG SET errors worded exactly like Valkey.
//!
//! This file owns only wording. It must not decide policy (what is valid); the
//! schema and loader pick the reason strings.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a configuration line came from, for error messages and warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, line: usize },
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{}", path.display(), line),
            Origin::CommandLine => f.write_str("command line"),
        }
    }
}

/// Anything that stops the configuration from loading, or CONFIG REWRITE from
/// finishing. The binary prints `*** FATAL CONFIG FILE ERROR ***` before it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A directive line was rejected; `line` is the offending text as written.
    #[error("{origin}: {reason}: '{line}'")]
    Line {
        origin: Origin,
        reason: String,
        line: String,
    },
    /// The top-level config file could not be read (includes report as `Line`).
    #[error("Fatal error, can't open config file '{}': {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The command line itself is malformed (before any directive is applied).
    #[error("{0}")]
    Args(String),
    /// Each directive was fine on its own but the combination is not.
    #[error("{0}")]
    Invalid(String),
    /// CONFIG REWRITE without a config file; worded as the RESP error.
    #[error("ERR The server is running without a config file")]
    NoConfigFile,
    /// CONFIG REWRITE failed while reading or writing the file.
    #[error("ERR Rewriting config file: {0}")]
    Rewrite(#[source] io::Error),
}

/// A rejected CONFIG SET. `Display` gives the full RESP error line including
/// the leading `ERR `; [`ConfigSetError::message`] gives it without.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigSetError {
    #[error("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")]
    Unknown { name: String },
    #[error("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")]
    Failed { name: String, reason: String },
}

impl ConfigSetError {
    /// The error text without the `ERR ` prefix, for RESP error builders that
    /// add the prefix themselves.
    pub fn message(&self) -> String {
        let full = self.to_string();
        match full.strip_prefix("ERR ") {
            Some(rest) => rest.to_string(),
            None => full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_error_names_file_and_line() {
        let e = ConfigError::Line {
            origin: Origin::File {
                path: PathBuf::from("/x/rockslot.conf"),
                line: 12,
            },
            reason: "Bad directive or wrong number of arguments".into(),
            line: "foo bar".into(),
        };
        assert_eq!(
            e.to_string(),
            "/x/rockslot.conf:12: Bad directive or wrong number of arguments: 'foo bar'"
        );
        let e = ConfigError::Line {
            origin: Origin::CommandLine,
            reason: "wrong number of arguments".into(),
            line: "port".into(),
        };
        assert_eq!(
            e.to_string(),
            "command line: wrong number of arguments: 'port'"
        );
    }

    #[test]
    fn set_error_message_strips_prefix() {
        let e = ConfigSetError::Unknown { name: "foo".into() };
        assert_eq!(
            e.to_string(),
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
        );
        assert_eq!(
            e.message(),
            "Unknown option or number of arguments for CONFIG SET - 'foo'"
        );
    }
}

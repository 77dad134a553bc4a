//! The aclfile (ACL LOAD, ACL SAVE, `aclfile` at start) and `user` lines of the config file:
//! one `user <name> <rules...>` per line, read all or nothing with Valkey's error texts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::rules::{RuleError, User};

/// Why an aclfile was not loaded or saved: the whole error text (without `ERR `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileError(pub String);

/// Users from `user` lines (each: name then rules), `what` naming where they came from in
/// errors; the default user is the built-in one unless a line defines it.
pub fn users_from_lines(
    lines: &[(usize, Vec<Vec<u8>>)],
    what: &str,
    all_channels: bool,
) -> Result<BTreeMap<Bytes, Arc<User>>, FileError> {
    let mut users: BTreeMap<Bytes, Arc<User>> = BTreeMap::new();
    let mut errors = String::new();
    for (n, words) in lines {
        let Some(name) = words.first() else { continue };
        if name.iter().any(|b| b.is_ascii_whitespace() || *b == 0) {
            errors.push_str(&format!(
                "'{what}:{n}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        if users.contains_key(&name[..]) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {n}. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        let mut u = User::new(name, all_channels);
        let rules: Vec<&[u8]> = words[1..].iter().map(|w| &w[..]).collect();
        if let Err(f) = u.apply_all(&rules, all_channels) {
            let text = match f.error {
                RuleError::Unknown => format!(
                    "{what}:{n}: Error in applying operation '{}': {}. ",
                    String::from_utf8_lossy(&f.rule),
                    f.error
                ),
                RuleError::Unmatched(_) => {
                    format!("{what}:{n}: Unmatched parenthesis in selector definition.")
                }
                e => format!("{what}:{n}: {e}. "),
            };
            errors.push_str(&text);
            continue;
        }
        users.insert(Bytes::copy_from_slice(name), Arc::new(u));
    }
    if !errors.is_empty() {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        return Err(FileError(errors));
    }
    users
        .entry(Bytes::from_static(b"default"))
        .or_insert_with(|| Arc::new(User::default_user()));
    Ok(users)
}

/// Users from ACL LIST's lines (a primary's, sent to its replicas).
pub fn users_from_text(text: &[u8]) -> Result<BTreeMap<Bytes, Arc<User>>, FileError> {
    let lines: Vec<(usize, Vec<Vec<u8>>)> = text
        .split(|b| *b == b'\n')
        .enumerate()
        .filter_map(|(i, l)| {
            let words: Vec<Vec<u8>> = l
                .split(|b| *b == b' ')
                .filter(|w| !w.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            (words.len() >= 2 && words[0] == b"user").then(|| (i + 1, words[1..].to_vec()))
        })
        .collect();
    users_from_lines(&lines, "replicated users", false)
}

/// Reads an aclfile.
pub fn load_file(path: &Path, all_channels: bool) -> Result<BTreeMap<Bytes, Arc<User>>, FileError> {
    let what = path.display().to_string();
    let text = std::fs::read(path).map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
            _ => e.to_string(),
        };
        FileError(format!(
            "Error loading ACLs, opening file '{what}': {reason}"
        ))
    })?;
    let mut lines = Vec::new();
    let mut errors = String::new();
    for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
        let line = raw.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let words: Vec<Vec<u8>> = line
            .split(|b| *b == b' ')
            .map(|w| {
                let w = w.strip_prefix(b"\t").unwrap_or(w);
                w.strip_suffix(b"\r").unwrap_or(w).to_vec()
            })
            .filter(|w| !w.is_empty())
            .collect();
        if words.len() < 2 || words[0] != b"user" {
            errors.push_str(&format!(
                "{what}:{} should start with user keyword followed by the username. ",
                i + 1
            ));
            continue;
        }
        lines.push((i + 1, words[1..].to_vec()));
    }
    if !errors.is_empty() {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        return Err(FileError(errors));
    }
    users_from_lines(&lines, &what, all_channels)
}

/// Writes every user as ACL LIST shows it, through a temporary file renamed over `path`.
pub fn save_file(path: &Path, users: &BTreeMap<Bytes, Arc<User>>) -> std::io::Result<()> {
    let mut text = String::new();
    for u in users.values() {
        text.push_str(&u.describe());
        text.push('\n');
    }
    static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

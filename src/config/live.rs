//! The running server's configuration: cheap snapshots for request paths and
//! CONFIG GET / SET / REWRITE semantics on top.
//!
//! Owns the one shared copy and the rules for changing it (atomic multi-pair
//! SET, mutability, Valkey's error texts). It must not push changes anywhere:
//! consumers poll [`LiveConfig::version`] and re-snapshot when it moves.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::compat::{normalize_no_effect, set_value_args, Extras, NeKind, NO_EFFECT};
use super::error::{ConfigError, ConfigSetError};
use super::load::Loaded;
use super::schema::{lookup, specs, Target};
use super::Config;
use crate::glob::glob_match;

struct State {
    config: Arc<Config>,
    extras: Extras,
}

/// Shared, thread-safe configuration. Clone an `Arc<LiveConfig>` around.
pub struct LiveConfig {
    state: RwLock<State>,
    version: AtomicU64,
    path: Option<PathBuf>,
    /// Serialises CONFIG REWRITE so two rewrites never race on the temp file.
    rewrite_lock: Mutex<()>,
}

impl LiveConfig {
    /// A directive kept as written (one without a typed field, e.g. `aclfile`), as CONFIG
    /// GET shows it.
    pub fn extra(&self, key: &str) -> Option<String> {
        self.state.read().extras.get(key, None)
    }

    /// Replaces every line of a repeatable directive kept as written (CONFIG REWRITE writes
    /// the current ACL users as `user` lines).
    pub fn set_extra_lines(&self, key: &str, lines: Vec<Vec<String>>) {
        let mut state = self.state.write();
        let values = &mut state.extras.values;
        if lines.is_empty() {
            values.remove(key);
        } else {
            values.insert(key.to_string(), lines);
        }
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Every line of a repeatable directive kept as written (e.g. `user`), each its arguments.
    pub fn extra_lines(&self, key: &str) -> Vec<Vec<String>> {
        self.state
            .read()
            .extras
            .values
            .get(key)
            .map(|lines| {
                lines
                    .iter()
                    .filter(|l| !(l.len() == 1 && l[0].is_empty()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn new(loaded: &Loaded) -> LiveConfig {
        LiveConfig {
            state: RwLock::new(State {
                config: Arc::new(loaded.config.clone()),
                extras: loaded.extras.clone(),
            }),
            version: AtomicU64::new(0),
            path: loaded.path.clone(),
            rewrite_lock: Mutex::new(()),
        }
    }

    /// A live config without a file (tests, embedded use).
    pub fn from_config(config: Config) -> LiveConfig {
        LiveConfig::new(&Loaded::from_config(config))
    }

    /// The current configuration; hold on to it for as long as convenient.
    pub fn snapshot(&self) -> Arc<Config> {
        Arc::clone(&self.state.read().config)
    }

    /// Bumped by every successful [`set`](Self::set) or [`update`](Self::update).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current configuration if it changed since `seen` (a version this caller last
    /// copied settings from; start it at `u64::MAX`), which then records the new version: a
    /// hot path keeps its few settings in atomics and pays one load while nothing changes.
    pub fn changed_since(&self, seen: &AtomicU64) -> Option<Arc<Config>> {
        let v = self.version();
        if seen.load(Ordering::Acquire) == v {
            return None;
        }
        let c = self.snapshot();
        seen.store(v, Ordering::Release);
        Some(c)
    }

    /// The config file CONFIG REWRITE writes to, if the server has one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// CONFIG GET: every directive (and alias) matching any of the glob
    /// patterns, case-insensitively, with Valkey's value rendering. A pattern
    /// without glob characters is an exact lookup. Names come back lower-case.
    pub fn get(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let state = self.state.read();
        let cfg = &*state.config;
        let extras = &state.extras;

        // (name to show, value) for everything CONFIG GET can see.
        let mut all: Vec<(&str, String)> = Vec::new();
        for spec in specs() {
            let value = (spec.get)(cfg);
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                all.push((name, value.clone()));
            }
        }
        for ne in NO_EFFECT {
            if let Some(value) = extras.get(ne.name, ne.default) {
                for name in std::iter::once(&ne.name).chain(ne.aliases) {
                    all.push((name, value.clone()));
                }
            }
        }
        for key in extras.values.keys() {
            if matches!(lookup(key), Some(Target::Family)) {
                if let Some(value) = extras.get(key, None) {
                    all.push((key.as_str(), value));
                }
            }
        }

        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for pattern in patterns {
            let is_glob = pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
            for (name, value) in &all {
                let hit = if is_glob {
                    glob_match(pattern, name.as_bytes(), true)
                } else {
                    pattern.eq_ignore_ascii_case(name.as_bytes())
                };
                if hit && seen.insert(name) {
                    out.push((name.to_string(), value.clone()));
                }
            }
        }
        out
    }

    /// CONFIG SET with one or more `name value` pairs, all or nothing: names
    /// are checked first (unknown, immutable, duplicate), then every value is
    /// validated on a copy, which replaces the live config only if all pass.
    pub fn set(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), ConfigSetError> {
        let mut targets = Vec::with_capacity(pairs.len());
        let mut seen: HashSet<String> = HashSet::new();
        for (raw_name, _) in pairs {
            let shown = String::from_utf8_lossy(raw_name).into_owned();
            let name = shown.to_ascii_lowercase();
            let failed = |reason: &str| ConfigSetError::Failed {
                name: shown.clone(),
                reason: reason.to_string(),
            };
            let (target, key) = match lookup(&name) {
                Some(t @ Target::Typed(spec)) => {
                    if !spec.mutable {
                        return Err(failed("can't set immutable config"));
                    }
                    (t, spec.name.to_string())
                }
                // Users come from ACL SETUSER; where ACL SAVE writes is fixed at start.
                Some(Target::NoEffect(ne)) if ne.name == "user" => {
                    return Err(ConfigSetError::Unknown { name: shown })
                }
                Some(Target::NoEffect(ne)) if ne.name == "aclfile" => {
                    return Err(failed("can't set immutable config"))
                }
                Some(t @ Target::NoEffect(ne)) => (t, ne.name.to_string()),
                // Families are only settable once the file gave them a value;
                // otherwise any `tls-typo` would be silently accepted.
                Some(t @ Target::Family) if self.state.read().extras.values.contains_key(&name) => {
                    (t, name.clone())
                }
                _ => return Err(ConfigSetError::Unknown { name: shown }),
            };
            if !seen.insert(key.clone()) {
                return Err(failed("duplicate parameter"));
            }
            targets.push((shown, target, key));
        }

        let mut state = self.state.write();
        let mut cfg = (*state.config).clone();
        let mut extras = state.extras.clone();
        for ((shown, target, key), (_, raw_value)) in targets.iter().zip(pairs) {
            let failed = |reason: String| ConfigSetError::Failed {
                name: shown.clone(),
                reason,
            };
            let value = std::str::from_utf8(raw_value)
                .map_err(|_| failed("argument must be valid UTF-8".to_string()))?;
            match target {
                Target::Typed(spec) => {
                    (spec.apply)(&mut cfg, &[value.to_string()]).map_err(failed)?
                }
                Target::NoEffect(ne) => {
                    let line = normalize_no_effect(ne.kind, &set_value_args(ne.kind, value))
                        .map_err(failed)?;
                    extras.store(key, ne.repeatable, true, line);
                }
                Target::Family => {
                    extras.store(key, false, true, set_value_args(NeKind::Args, value));
                }
            }
        }
        cfg.validate().map_err(|reason| ConfigSetError::Failed {
            name: targets.last().map(|t| t.0.clone()).unwrap_or_default(),
            reason,
        })?;
        state.config = Arc::new(cfg);
        state.extras = extras;
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Internal changes that are not CONFIG SET (REPLICAOF, CLUSTER commands):
    /// no mutability check, no validation; CONFIG REWRITE will persist them.
    pub fn update(&self, f: impl FnOnce(&mut Config)) {
        let mut state = self.state.write();
        let mut cfg = (*state.config).clone();
        f(&mut cfg);
        state.config = Arc::new(cfg);
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// CONFIG REWRITE: rewrites the main config file in place, keeping
    /// comments, unrelated lines and includes; atomic (temp file + rename).
    pub fn rewrite(&self) -> Result<(), ConfigError> {
        let path = self.path.as_deref().ok_or(ConfigError::NoConfigFile)?;
        let _guard = self.rewrite_lock.lock();
        let (cfg, extras) = {
            let state = self.state.read();
            (Arc::clone(&state.config), state.extras.clone())
        };
        super::rewrite::rewrite_file(path, &cfg, &extras).map_err(ConfigError::Rewrite)
    }
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConfig")
            .field("version", &self.version())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;

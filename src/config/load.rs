//! Startup loading: the command line (`[config-file] [--name value ...]`), the
//! config file with its `include`s, then the overrides, in Valkey's order, into
//! a validated [`Config`] plus the stored no-effect directives.
//!
//! Owns file reading and error positions. It must not touch anything a
//! directive describes (directories, sockets, log files) and must not log:
//! warnings are returned for the binary to print once logging is set up.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::compat::{normalize_no_effect, Extras};
use super::error::{ConfigError, Origin};
use super::lex::{split_args, UNBALANCED_QUOTES, WRONG_ARGS};
use super::schema::{lookup, Target};
use super::Config;

/// Deepest `include` nesting accepted; deeper is almost surely a loop through
/// differently spelled paths.
const MAX_INCLUDE_DEPTH: usize = 10;

/// What `rockslot-server` was asked to load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSource {
    pub file: Option<PathBuf>,
    /// `--name v1 v2` overrides as `[name, v1, v2]`, applied after the file.
    pub overrides: Vec<Vec<String>>,
}

/// The result of [`load`].
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// One line per accepted-but-ignored directive, ready to log.
    pub warnings: Vec<String>,
    /// Absolute path of the main config file (what CONFIG REWRITE rewrites).
    pub path: Option<PathBuf>,
    pub(crate) extras: Extras,
}

impl Loaded {
    /// A config with no file behind it (CONFIG REWRITE will refuse).
    pub fn from_config(config: Config) -> Loaded {
        Loaded {
            config,
            warnings: Vec::new(),
            path: None,
            extras: Extras::default(),
        }
    }
}

/// Splits the server's arguments (WITHOUT the program name) like valkey-server:
/// an optional first argument not starting with `-` is the config file; then
/// each `--name` takes the following arguments up to the next `--x`. The first
/// argument after a name is always its value, even if it starts with `--`, so
/// `--requirepass --secret` works; `--save` with no value means `save ""`.
/// A single argument with spaces, `"--port 7000"`, is split like a config line.
pub fn parse_args(args: &[String]) -> Result<ConfigSource, ConfigError> {
    let mut src = ConfigSource::default();
    let mut rest = args;
    if let Some(first) = args.first() {
        if first == "-" {
            return Err(ConfigError::Args(
                "reading the configuration from standard input is not supported".to_string(),
            ));
        }
        if !first.starts_with('-') {
            src.file = Some(PathBuf::from(first));
            rest = &args[1..];
        }
    }
    let mut current: Option<Vec<String>> = None;
    let mut needs_value = false;
    for (i, arg) in rest.iter().enumerate() {
        if !needs_value && arg.starts_with("--") {
            if let Some(done) = current.take() {
                src.overrides.push(done);
            }
            let body = &arg[2..];
            let parts = match split_args(body.as_bytes()) {
                Some(p) if !p.is_empty() => p,
                _ => return Err(ConfigError::Args(format!("invalid option '{arg}'"))),
            };
            let mut parts = parts
                .into_iter()
                .map(|p| {
                    String::from_utf8(p)
                        .map_err(|_| ConfigError::Args(format!("invalid option '{arg}'")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if parts.len() > 1 {
                needs_value = false;
            } else {
                needs_value = true;
                let next_is_option = rest.get(i + 1).is_none_or(|n| n.starts_with("--"));
                if parts[0].eq_ignore_ascii_case("save") && next_is_option {
                    // valkey-server compatibility: a bare `--save` disables saving.
                    parts.push(String::new());
                    needs_value = false;
                }
            }
            current = Some(parts);
        } else if let Some(cur) = current.as_mut() {
            cur.push(arg.clone());
            needs_value = false;
        } else {
            return Err(ConfigError::Args(format!(
                "unexpected argument '{arg}': options must look like --name value"
            )));
        }
    }
    if let Some(done) = current.take() {
        src.overrides.push(done);
    }
    Ok(src)
}

/// Loads the file (if any) and applies the overrides, then cross-checks.
pub fn load(src: &ConfigSource) -> Result<Loaded, ConfigError> {
    let mut loader = Loader::default();
    let path = match &src.file {
        Some(file) => {
            let abs = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            let text = fs::read(&abs).map_err(|source| ConfigError::Open {
                path: file.clone(),
                source,
            })?;
            let canonical = fs::canonicalize(&abs).unwrap_or_else(|_| abs.clone());
            loader.stack.push(canonical);
            loader.load_text(&abs, &text)?;
            loader.stack.pop();
            Some(abs)
        }
        None => None,
    };
    for args in &src.overrides {
        let text = render_override(args);
        loader.apply(&Origin::CommandLine, args.clone(), &text, None)?;
    }
    loader.config.validate().map_err(ConfigError::Invalid)?;
    Ok(Loaded {
        config: loader.config,
        warnings: loader.warnings,
        path,
        extras: loader.extras,
    })
}

/// Shows an override the way it would be written in a file, for messages.
fn render_override(args: &[String]) -> String {
    args.iter()
        .map(|a| super::lex::quote_if_needed(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Default)]
struct Loader {
    config: Config,
    extras: Extras,
    warnings: Vec<String>,
    /// Repeatable no-effect directives already seen in this load; the first
    /// line replaces the built-in default instead of adding to it.
    seen_repeatable: HashSet<String>,
    /// Canonical paths of the files being read, outermost first.
    stack: Vec<PathBuf>,
}

fn trim(line: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = line.iter().position(|b| !is_ws(b)).unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |e| e + 1);
    &line[start..end]
}

impl Loader {
    fn load_text(&mut self, path: &Path, text: &[u8]) -> Result<(), ConfigError> {
        for (idx, raw) in text.split(|b| *b == b'\n').enumerate() {
            let line = trim(raw);
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            let origin = Origin::File {
                path: path.to_path_buf(),
                line: idx + 1,
            };
            let shown = String::from_utf8_lossy(line).into_owned();
            let fail = |reason: &str| ConfigError::Line {
                origin: origin.clone(),
                reason: reason.to_string(),
                line: shown.clone(),
            };
            let args = split_args(line).ok_or_else(|| fail(UNBALANCED_QUOTES))?;
            let args = args
                .into_iter()
                .map(String::from_utf8)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| fail("arguments must be valid UTF-8"))?;
            let base = path.parent();
            self.apply(&origin, args, &shown, base)?;
        }
        Ok(())
    }

    /// Applies one directive line. `base` is the directory relative includes
    /// resolve against (`None` on the command line: the working directory).
    fn apply(
        &mut self,
        origin: &Origin,
        args: Vec<String>,
        shown: &str,
        base: Option<&Path>,
    ) -> Result<(), ConfigError> {
        let fail = |reason: String| ConfigError::Line {
            origin: origin.clone(),
            reason,
            line: shown.to_string(),
        };
        let Some((name, values)) = args.split_first() else {
            return Ok(());
        };
        let name = name.to_ascii_lowercase();
        if name == "include" {
            let [file] = values else {
                return Err(fail(WRONG_ARGS.to_string()));
            };
            return self.include(file, base, fail);
        }
        match lookup(&name) {
            Some(Target::Typed(spec)) => (spec.apply)(&mut self.config, values).map_err(fail),
            Some(Target::NoEffect(ne)) => {
                let line = normalize_no_effect(ne.kind, values).map_err(fail)?;
                let first = ne.repeatable && self.seen_repeatable.insert(ne.name.to_string());
                self.extras.store(ne.name, ne.repeatable, first, line);
                self.warn(origin, &name);
                Ok(())
            }
            Some(Target::Family) => {
                if values.is_empty() {
                    return Err(fail(WRONG_ARGS.to_string()));
                }
                self.extras.store(&name, false, false, values.to_vec());
                self.warn(origin, &name);
                Ok(())
            }
            None => Err(fail(
                "Bad directive or wrong number of arguments".to_string(),
            )),
        }
    }

    fn warn(&mut self, origin: &Origin, name: &str) {
        self.warnings
            .push(format!("{origin}: '{name}' has no effect in rockslot"));
    }

    /// Reads an included file. Problems with the `include` line itself are
    /// reported at that line (via `fail`); errors inside the included file
    /// already name their own file and line and pass through unchanged.
    fn include(
        &mut self,
        file: &str,
        base: Option<&Path>,
        fail: impl Fn(String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let given = PathBuf::from(file);
        let path = match base {
            Some(dir) if given.is_relative() => dir.join(&given),
            _ => std::path::absolute(&given).unwrap_or(given),
        };
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(fail(format!(
                "include nesting is deeper than {MAX_INCLUDE_DEPTH} files"
            )));
        }
        let text = fs::read(&path).map_err(|e| {
            fail(format!(
                "Fatal error, can't open config file '{}': {e}",
                path.display()
            ))
        })?;
        let canonical = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if self.stack.contains(&canonical) {
            return Err(fail(format!(
                "include loop: '{}' is already being read",
                path.display()
            )));
        }
        self.stack.push(canonical);
        let result = self.load_text(&path, &text);
        self.stack.pop();
        result
    }
}

#[cfg(test)]
mod tests;

//! A user and its selectors: ACL SETUSER's rules applied as Valkey 8.1 applies them, the
//! text ACL LIST renders (the command rules kept as Valkey keeps them: each rule replaces
//! earlier ones about the same command), and the permission check.

use std::collections::HashMap;

use bytes::Bytes;

use super::{password_hash, Access, Catalog, Denied};

/// Why a rule was refused; the text follows `Error in ACL SETUSER modifier '<rule>': `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Syntax error")]
    Syntax,
    #[error("Unknown command or category name in ACL")]
    Unknown,
    #[error("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")]
    AfterAllKeys,
    #[error("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")]
    AfterAllChannels,
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    #[error("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")]
    BadHash,
    #[error("Allowing first-arg of a subcommand is not supported")]
    SubcommandFirstArg,
    /// A selector's parenthesis is not closed (the text is the whole reply line).
    #[error("Unmatched parenthesis in acl selector starting at '{0}'.")]
    Unmatched(String),
}

/// A refused rule with the argument it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFailure {
    pub rule: Vec<u8>,
    pub error: RuleError,
}

impl RuleFailure {
    /// ACL SETUSER's error line.
    pub fn line(&self) -> String {
        match &self.error {
            RuleError::Unmatched(_) => format!("ERR {}", self.error),
            e => format!(
                "ERR Error in ACL SETUSER modifier '{}': {e}",
                String::from_utf8_lossy(&self.rule)
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPattern {
    pattern: Vec<u8>,
    read: bool,
    write: bool,
}

/// One set of permissions; a user passes when any of its selectors allows the command, its
/// keys and its channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// By [`Catalog`] entry.
    allowed: Vec<bool>,
    /// `+@all`: commands added later are allowed too (shown as `+@all`).
    future: bool,
    /// Allowed first arguments (lower-case) of commands without subcommands (`+select|0`).
    first_args: HashMap<usize, Vec<Vec<u8>>>,
    /// The command rules as ACL LIST shows them: (`+`?, rule body).
    rules: Vec<(bool, String)>,
    allkeys: bool,
    keys: Vec<KeyPattern>,
    allchannels: bool,
    channels: Vec<Vec<u8>>,
}

impl Selector {
    fn new(all_channels: bool) -> Selector {
        Selector {
            allowed: vec![false; Catalog::get().entries.len()],
            future: false,
            first_args: HashMap::new(),
            rules: Vec::new(),
            allkeys: false,
            keys: Vec::new(),
            allchannels: all_channels,
            channels: Vec::new(),
        }
    }

    fn set_all(&mut self, on: bool) {
        self.allowed.iter_mut().for_each(|b| *b = on);
        self.future = on;
        self.first_args.clear();
        self.rules.clear();
    }

    /// A command and, for a container, its subcommands.
    fn set_command(&mut self, i: usize, on: bool) {
        let index = Catalog::get();
        self.allowed[i] = on;
        self.first_args.remove(&i);
        for &s in &index.entries[i].subs {
            self.allowed[s] = on;
        }
    }

    fn note_rule(&mut self, plus: bool, body: String) {
        let prefix = format!("{body}|");
        self.rules
            .retain(|(_, r)| *r != body && !r.starts_with(&prefix));
        self.rules.push((plus, body));
    }

    fn apply(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        let lower = String::from_utf8_lossy(rule).to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" | "~*" => {
                self.allkeys = true;
                self.keys.clear();
                return Ok(());
            }
            "resetkeys" => {
                self.allkeys = false;
                self.keys.clear();
                return Ok(());
            }
            "allchannels" | "&*" => {
                self.allchannels = true;
                self.channels.clear();
                return Ok(());
            }
            "resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
                return Ok(());
            }
            "allcommands" | "+@all" => {
                self.set_all(true);
                return Ok(());
            }
            "nocommands" | "-@all" => {
                self.set_all(false);
                return Ok(());
            }
            _ => {}
        }
        match rule.first() {
            Some(b'~') => self.key_pattern(&rule[1..], true, true),
            Some(b'%') => {
                let (mut read, mut write) = (false, false);
                let mut i = 1;
                while i < rule.len() && rule[i] != b'~' {
                    match rule[i].to_ascii_uppercase() {
                        b'R' if !read => read = true,
                        b'W' if !write => write = true,
                        _ => return Err(RuleError::Syntax),
                    }
                    i += 1;
                }
                if !(read || write) {
                    return Err(RuleError::Syntax);
                }
                // `%R` with no `~` adds an empty pattern, as Valkey does.
                let pattern = rule.get(i + 1..).unwrap_or_default();
                self.key_pattern(pattern, read, write)
            }
            Some(b'&') => {
                if self.allchannels {
                    return Err(RuleError::AfterAllChannels);
                }
                if rule.iter().any(|b| b.is_ascii_whitespace()) {
                    return Err(RuleError::Syntax);
                }
                let p = rule[1..].to_vec();
                if !self.channels.contains(&p) {
                    self.channels.push(p);
                }
                Ok(())
            }
            Some(b'+') | Some(b'-') => self.command_rule(rule[0] == b'+', &lower[1..]),
            _ => Err(RuleError::Syntax),
        }
    }

    fn key_pattern(&mut self, pattern: &[u8], read: bool, write: bool) -> Result<(), RuleError> {
        if self.allkeys {
            return Err(RuleError::AfterAllKeys);
        }
        if pattern.iter().any(|b| b.is_ascii_whitespace()) {
            return Err(RuleError::Syntax);
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern {
                pattern: pattern.to_vec(),
                read,
                write,
            }),
        }
        Ok(())
    }

    /// `+cmd`, `-cmd`, `+cmd|sub`, `-cmd|sub`, `+@cat`, `-@cat` (`body` lower-cased).
    fn command_rule(&mut self, plus: bool, body: &str) -> Result<(), RuleError> {
        let index = Catalog::get();
        if let Some(cat) = body.strip_prefix('@') {
            let bit = super::category_bit(cat).ok_or(RuleError::Unknown)?;
            for (i, e) in index.entries.iter().enumerate() {
                if e.categories & bit != 0 {
                    self.allowed[i] = plus;
                    if e.subs.is_empty() {
                        self.first_args.remove(&i);
                    }
                }
            }
            self.note_rule(plus, body.to_string());
            return Ok(());
        }
        let Some(bar) = body.rfind('|') else {
            let i = index.command(body.as_bytes()).ok_or(RuleError::Unknown)?;
            self.set_command(i, plus);
            self.note_rule(plus, index.entries[i].fullname.clone());
            return Ok(());
        };
        let (left, sub) = (&body[..bar], &body[bar + 1..]);
        if left.contains('|') {
            let (c, s) = left.split_once('|').unwrap_or_default();
            let known = index
                .command(c.as_bytes())
                .and_then(|i| index.sub(i, s.as_bytes()));
            return Err(if known.is_some() {
                RuleError::SubcommandFirstArg
            } else {
                RuleError::Unknown
            });
        }
        let i = index.command(left.as_bytes()).ok_or(RuleError::Unknown)?;
        if !index.entries[i].subs.is_empty() {
            let s = index.sub(i, sub.as_bytes()).ok_or(RuleError::Unknown)?;
            self.allowed[s] = plus;
            let name = if plus {
                body.to_string()
            } else {
                index.entries[s].fullname.clone()
            };
            self.note_rule(plus, name);
            return Ok(());
        }
        if !plus {
            return Err(RuleError::Unknown);
        }
        // A first argument with a space could not be read back from ACL LIST or the file.
        if sub.is_empty() || sub.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(RuleError::Syntax);
        }
        if !self.allowed[i] {
            let args = self.first_args.entry(i).or_default();
            if !args.iter().any(|a| a == sub.as_bytes()) {
                args.push(sub.as_bytes().to_vec());
            }
        }
        self.note_rule(true, body.to_string());
        Ok(())
    }

    fn unrestricted(&self) -> bool {
        self.future && self.allkeys && self.allchannels && self.allowed.iter().all(|b| *b)
    }

    /// The command rules as ACL LIST and GETUSER show them.
    fn commands_text(&self) -> String {
        let mut out = String::from(if self.future { "+@all" } else { "-@all" });
        for (plus, r) in &self.rules {
            out.push(' ');
            out.push(if *plus { '+' } else { '-' });
            out.push_str(r);
        }
        out
    }

    fn key_texts(&self) -> Vec<String> {
        if self.allkeys {
            return vec!["~*".into()];
        }
        self.keys
            .iter()
            .map(|k| {
                let p = String::from_utf8_lossy(&k.pattern);
                match (k.read, k.write) {
                    (true, false) => format!("%R~{p}"),
                    (false, true) => format!("%W~{p}"),
                    _ => format!("~{p}"),
                }
            })
            .collect()
    }

    fn channel_texts(&self) -> Vec<String> {
        if self.allchannels {
            return vec!["&*".into()];
        }
        self.channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect()
    }

    /// The selector as ACL LIST writes it.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for k in self.key_texts() {
            out.push_str(&k);
            out.push(' ');
        }
        if !self.allchannels {
            out.push_str("resetchannels ");
        }
        for c in self.channel_texts() {
            out.push_str(&c);
            out.push(' ');
        }
        out.push_str(&self.commands_text());
        out
    }

    /// ACL GETUSER's (commands, keys, channels).
    pub fn fields(&self) -> (String, String, String) {
        (
            self.commands_text(),
            self.key_texts().join(" "),
            self.channel_texts().join(" "),
        )
    }

    fn command_allowed(&self, a: &Access<'_>) -> Result<(), Denied> {
        if self.allowed.get(a.command).copied().unwrap_or(false) {
            return Ok(());
        }
        let first_ok = a.first_arg.is_some_and(|arg| {
            self.first_args
                .get(&a.command)
                .is_some_and(|l| l.iter().any(|f| f.eq_ignore_ascii_case(arg)))
        });
        if first_ok {
            return Ok(());
        }
        Err(Denied::Command(super::fullname(a.command)))
    }

    fn keys_allowed(&self, a: &Access<'_>) -> Result<(), Denied> {
        if self.allkeys {
            return Ok(());
        }
        for u in &a.keys {
            let ok = self.keys.iter().any(|k| {
                (!u.read || k.read)
                    && (!u.write || k.write)
                    && crate::glob::glob_match(&k.pattern, u.key, false)
            });
            if !ok {
                return Err(Denied::Key {
                    key: Bytes::copy_from_slice(u.key),
                    at: u.at,
                });
            }
        }
        Ok(())
    }

    fn channels_allowed(&self, a: &Access<'_>) -> Result<(), Denied> {
        if self.allchannels {
            return Ok(());
        }
        for &(ch, at) in &a.channels {
            let ok = self.channels.iter().any(|p| {
                if a.literal {
                    p == ch
                } else {
                    crate::glob::glob_match(p, ch, false)
                }
            });
            if !ok {
                return Err(Denied::Channel {
                    channel: Bytes::copy_from_slice(ch),
                    at,
                });
            }
        }
        Ok(())
    }

    fn check(&self, a: &Access<'_>) -> Result<(), Denied> {
        self.command_allowed(a)?;
        self.keys_allowed(a)?;
        self.channels_allowed(a)
    }
}

/// A user: its flags, passwords (SHA-256, hex) and selectors (the first is the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: Bytes,
    pub on: bool,
    pub nopass: bool,
    pub skip_sanitize: bool,
    pub passwords: Vec<String>,
    pub selectors: Vec<Selector>,
    /// The root selector allows everything (the default user's case), computed once per
    /// change: every command asks.
    open: bool,
}

impl User {
    /// A user as `ACL SETUSER name` creates it: off, no password, no permissions.
    pub fn new(name: &[u8], all_channels: bool) -> User {
        User {
            name: Bytes::copy_from_slice(name),
            on: false,
            nopass: false,
            skip_sanitize: false,
            passwords: Vec::new(),
            selectors: vec![Selector::new(all_channels)],
            open: false,
        }
    }

    /// `user default on nopass sanitize-payload ~* &* +@all`.
    pub fn default_user() -> User {
        let mut u = User::new(b"default", false);
        let rules: [&[u8]; 5] = [b"on", b"nopass", b"~*", b"&*", b"+@all"];
        for r in rules {
            // Fixed, valid rules.
            let _ = u.apply(r, false);
        }
        u.open = u.selectors[0].unrestricted();
        u
    }

    pub fn accepts(&self, pass: &[u8]) -> bool {
        if !self.on {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = password_hash(pass);
        self.passwords
            .iter()
            .any(|p| super::ct_eq(p.as_bytes(), h.as_bytes()))
    }

    pub fn unrestricted(&self) -> bool {
        self.open
    }

    /// Whether any selector allows the call; otherwise the most telling refusal (Valkey's
    /// order: channel over key over command, then the later argument).
    pub fn check(&self, a: &Access<'_>) -> Result<(), Denied> {
        let mut worst: Option<Denied> = None;
        for s in &self.selectors {
            match s.check(a) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    if worst.as_ref().is_none_or(|w| d.rank() > w.rank()) {
                        worst = Some(d);
                    }
                }
            }
        }
        Err(worst.unwrap_or_else(|| Denied::Command(super::fullname(a.command))))
    }

    /// Applies ACL SETUSER's arguments in order (selectors in parentheses may span several
    /// arguments); stops at the first refused one, leaving `self` partly changed: callers
    /// apply to a copy.
    pub fn apply_all(&mut self, args: &[&[u8]], all_channels: bool) -> Result<(), RuleFailure> {
        let mut i = 0;
        while i < args.len() {
            let a = args[i];
            if a.first() == Some(&b'(') && a.last() != Some(&b')') {
                let mut merged = a.to_vec();
                let mut j = i + 1;
                while j < args.len() && merged.last() != Some(&b')') {
                    merged.push(b' ');
                    merged.extend_from_slice(args[j]);
                    j += 1;
                }
                if merged.last() != Some(&b')') {
                    return Err(RuleFailure {
                        rule: a.to_vec(),
                        error: RuleError::Unmatched(String::from_utf8_lossy(a).into_owned()),
                    });
                }
                self.apply(&merged, all_channels)
                    .map_err(|error| RuleFailure {
                        rule: merged,
                        error,
                    })?;
                i = j;
            } else {
                self.apply(a, all_channels).map_err(|error| RuleFailure {
                    rule: a.to_vec(),
                    error,
                })?;
                i += 1;
            }
        }
        self.open = self.selectors[0].unrestricted();
        Ok(())
    }

    fn apply(&mut self, rule: &[u8], all_channels: bool) -> Result<(), RuleError> {
        if rule.is_empty() {
            return Ok(());
        }
        if rule.len() >= 2 && rule[0] == b'(' && rule[rule.len() - 1] == b')' {
            let mut s = Selector::new(all_channels);
            let inner = &rule[1..rule.len() - 1];
            for part in inner.split(|b| *b == b' ').filter(|p| !p.is_empty()) {
                s.apply(part)?;
            }
            self.selectors.push(s);
            return Ok(());
        }
        let lower = String::from_utf8_lossy(rule).to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.on = true,
            "off" => self.on = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "sanitize-payload" => self.skip_sanitize = false,
            "skip-sanitize-payload" => self.skip_sanitize = true,
            "clearselectors" => self.selectors.truncate(1),
            "reset" => {
                let name = self.name.clone();
                *self = User::new(&name, all_channels);
            }
            _ => match rule[0] {
                b'>' => {
                    let h = password_hash(&rule[1..]);
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                }
                b'#' => {
                    let h = hash_arg(&rule[1..])?;
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                }
                b'<' | b'!' => {
                    let h = if rule[0] == b'<' {
                        password_hash(&rule[1..])
                    } else {
                        hash_arg(&rule[1..])?
                    };
                    let before = self.passwords.len();
                    self.passwords.retain(|p| *p != h);
                    if self.passwords.len() == before {
                        return Err(RuleError::NoSuchPassword);
                    }
                }
                _ => self.selectors[0].apply(rule)?,
            },
        }
        Ok(())
    }

    /// Whether this user may still use every channel `old` could (a subscriber keeps its
    /// connection only then, as in Valkey).
    pub fn channels_cover(&self, old: &User) -> bool {
        if self.selectors.iter().any(|s| s.allchannels) {
            return true;
        }
        old.selectors.iter().all(|o| {
            !o.allchannels
                && o.channels
                    .iter()
                    .all(|p| self.selectors.iter().any(|s| s.channels.contains(p)))
        })
    }

    /// The user as ACL LIST shows it (`user <name> <rules>`).
    pub fn describe(&self) -> String {
        let mut out = format!("user {} ", String::from_utf8_lossy(&self.name));
        for f in self.flags() {
            out.push_str(f);
            out.push(' ');
        }
        for p in &self.passwords {
            out.push('#');
            out.push_str(p);
            out.push(' ');
        }
        out.push_str(&self.selectors[0].describe());
        for s in &self.selectors[1..] {
            out.push_str(&format!(" ({})", s.describe()));
        }
        out
    }

    /// ACL GETUSER's flags.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.on { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        f.push(if self.skip_sanitize {
            "skip-sanitize-payload"
        } else {
            "sanitize-payload"
        });
        f
    }
}

fn hash_arg(h: &[u8]) -> Result<String, RuleError> {
    if h.len() != 64
        || !h
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err(RuleError::BadHash);
    }
    Ok(String::from_utf8_lossy(h).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() {
        let mut c = Catalog::default();
        let (read, write, string, fast, slow) = (2, 4, 128, 1 << 14, 1 << 15);
        c.add("get", read | string | fast, &[]);
        c.add("getex", write | string | fast, &[]);
        c.add("set", write | string | slow, &[]);
        c.add("select", fast, &[]);
        c.add("config", slow, &[("get", slow), ("set", slow)]);
        c.install();
    }

    fn render(rules: &str) -> String {
        catalog();
        let mut u = User::new(b"x", false);
        let args: Vec<&[u8]> = rules.split(' ').map(str::as_bytes).collect();
        u.apply_all(&args, false).unwrap();
        u.describe()
    }

    #[test]
    fn command_rules_render_as_valkey() {
        let p = "user x off sanitize-payload resetchannels ";
        for (rules, want) in [
            ("+@read -get +set", "-@all +@read -get +set"),
            ("+@all -@dangerous", "+@all -@dangerous"),
            ("+get +get +set -get", "-@all +set -get"),
            ("+@read +@write -@read", "-@all +@write -@read"),
            ("+@READ -@Read", "-@all -@read"),
            ("+@all -@all +GET", "-@all +get"),
            ("+get -@all", "-@all"),
            ("+@all -config|set +config|set", "+@all +config|set"),
            ("+config|get +config|set -config", "-@all -config"),
            ("-config +config|get", "-@all -config +config|get"),
            (
                "+select|ABC +Config|GET -select",
                "-@all +config|get -select",
            ),
            ("+set|foo", "-@all +set|foo"),
            ("+geTex +get -getex", "-@all +get -getex"),
        ] {
            assert_eq!(render(rules), format!("{p}{want}"), "{rules}");
        }
        assert_eq!(
            render("%RW~foo %R~bar %W~baz %WR~qux"),
            "user x off sanitize-payload ~foo %R~bar %W~baz ~qux resetchannels -@all"
        );
        catalog();
        assert_eq!(
            User::default_user().describe(),
            "user default on nopass sanitize-payload ~* &* +@all"
        );
    }
}

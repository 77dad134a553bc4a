//! The credentials peers present on the cluster port, kept current with the configuration:
//! `CONFIG SET requirepass|masterauth|cluster-bus-secret` takes effect for the next call, and
//! the secret it replaced stays accepted (and is still offered) for a grace period, so a
//! rolling change node by node never splits the cluster. After the grace period the old
//! secret is locked out.
//!
//! Must not: compare secrets in a way whose time depends on where they differ.

use std::time::{Duration, Instant};

use crate::config::Config;

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct State {
    current: Option<String>,
    previous: Option<(String, Instant)>,
}

/// One credential (the bus secret's digest, or the replication password's).
pub struct PeerAuth {
    derive: fn(&Config) -> Option<String>,
    grace: parking_lot::Mutex<Duration>,
    state: parking_lot::RwLock<State>,
}

/// How long a replaced secret stays valid: four node timeouts, at least 2 s.
fn grace_of(c: &Config) -> Duration {
    Duration::from_millis((c.cluster_node_timeout_ms.saturating_mul(4)).max(2000))
}

impl PeerAuth {
    pub fn new(derive: fn(&Config) -> Option<String>, c: &Config) -> PeerAuth {
        PeerAuth {
            derive,
            grace: parking_lot::Mutex::new(grace_of(c)),
            state: parking_lot::RwLock::new(State {
                current: derive(c),
                previous: None,
            }),
        }
    }

    /// Takes the secret from `c` (after CONFIG SET); a replaced one enters its grace period.
    pub fn refresh(&self, c: &Config) {
        let new = (self.derive)(c);
        *self.grace.lock() = grace_of(c);
        let mut s = self.state.write();
        if new == s.current {
            return;
        }
        let old = std::mem::replace(&mut s.current, new);
        s.previous = old.map(|o| (o, Instant::now()));
        tracing::info!(
            "cluster port credentials changed; the previous ones stay valid for the grace period"
        );
    }

    /// What to present: the current credential and, during a grace period, the replaced one.
    pub fn offered(&self) -> (Option<String>, Option<String>) {
        let grace = *self.grace.lock();
        let s = self.state.read();
        let prev = s
            .previous
            .as_ref()
            .filter(|(_, at)| at.elapsed() < grace)
            .map(|(p, _)| p.clone());
        (s.current.clone(), prev)
    }

    /// Whether a caller presenting `got` (and perhaps its own previous credential) may in:
    /// always when no secret is configured, else when one of them is the current secret or
    /// the replaced one within its grace period.
    pub fn accepts(&self, got: &[&str]) -> bool {
        let (current, previous) = self.offered();
        let Some(current) = current else {
            return true;
        };
        got.iter().any(|g| {
            ct_eq(g.as_bytes(), current.as_bytes())
                || previous
                    .as_deref()
                    .is_some_and(|p| ct_eq(g.as_bytes(), p.as_bytes()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_secret_is_accepted_only_during_the_grace_period() {
        let mut c = Config {
            requirepass: Some("old".into()),
            cluster_node_timeout_ms: 1,
            ..Config::default()
        };
        let derive: fn(&Config) -> Option<String> = |c| c.requirepass.clone();
        let a = PeerAuth::new(derive, &c);
        assert!(a.accepts(&["old"]) && !a.accepts(&["new"]) && !a.accepts(&[]));
        c.requirepass = Some("new".into());
        a.refresh(&c);
        assert!(a.accepts(&["new"]) && a.accepts(&["old"]));
        assert_eq!(a.offered(), (Some("new".into()), Some("old".into())));
        *a.grace.lock() = Duration::ZERO;
        assert!(a.accepts(&["new"]) && !a.accepts(&["old"]));
        c.requirepass = None;
        a.refresh(&c);
        assert!(a.accepts(&[]));
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }
}

//! The credentials peers present on the cluster port, kept current with the configuration:
//! `CONFIG SET requirepass|masterauth|cluster-bus-secret` takes effect for the next call, and
//! the secret it replaced stays accepted (and is still offered) for a grace period, so a
//! rolling change node by node never splits the cluster. After the grace period the old
//! secret is locked out.
//!
//! A call carries a fresh token, never the digest itself: `v1.<unix ms>.<nonce>.<mac>` with
//! mac = HMAC-SHA1(digest, "<unix ms>.<nonce>"). A token is accepted within a minute of its
//! time and only once (its nonce is remembered for the window), so a captured token cannot
//! be replayed.
//!
//! Must not: compare secrets in a way whose time depends on where they differ.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::acl::ct_eq;
use crate::config::Config;

/// How far a token's time may be from ours.
const TOKEN_WINDOW_MS: u64 = 60_000;
/// Nonces remembered at most (a flood of valid tokens cannot grow memory without bound).
const MAX_NONCES: usize = 1 << 20;

fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&sha1_smol::Sha1::from(key).digest().bytes());
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.map(|x| x ^ b);
    let mut inner = sha1_smol::Sha1::new();
    inner.update(&pad(0x36));
    inner.update(msg);
    let mut outer = sha1_smol::Sha1::new();
    outer.update(&pad(0x5c));
    outer.update(&inner.digest().bytes());
    outer.digest().bytes()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn mac(digest: &str, ts: u64, nonce: u64) -> String {
    hex(&hmac_sha1(
        digest.as_bytes(),
        format!("{ts}.{nonce:016x}").as_bytes(),
    ))
}

/// A token for one call, proving knowledge of `digest`.
pub fn token(digest: &str) -> String {
    let ts = super::now_ms();
    let nonce: u64 = rand::random();
    format!("v1.{ts}.{nonce:016x}.{}", mac(digest, ts, nonce))
}

/// `(time, nonce, mac)` of a well-formed token.
fn parse_token(t: &str) -> Option<(u64, u64, &str)> {
    let mut it = t.split('.');
    if it.next()? != "v1" {
        return None;
    }
    let ts = it.next()?.parse().ok()?;
    let nonce = u64::from_str_radix(it.next()?, 16).ok()?;
    let mac = it.next()?;
    it.next().is_none().then_some((ts, nonce, mac))
}

struct State {
    current: Option<String>,
    /// The replaced credential and the end of its grace period.
    previous: Option<(String, Instant)>,
}

/// Nonces of accepted tokens still inside the window, and (expiry, nonce) oldest first.
type Seen = (HashSet<u64>, VecDeque<(u64, u64)>);

/// One credential (the bus secret's digest, or the replication password's).
pub struct PeerAuth {
    derive: fn(&Config) -> Option<String>,
    state: parking_lot::RwLock<State>,
    seen: parking_lot::Mutex<Seen>,
}

/// How long a replaced secret stays valid: four node timeouts, at least 2 s.
fn grace_of(c: &Config) -> Duration {
    Duration::from_millis((c.cluster_node_timeout_ms.saturating_mul(4)).max(2000))
}

impl PeerAuth {
    pub fn new(derive: fn(&Config) -> Option<String>, c: &Config) -> PeerAuth {
        PeerAuth {
            derive,
            state: parking_lot::RwLock::new(State {
                current: derive(c),
                previous: None,
            }),
            seen: parking_lot::Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// Takes the secret from `c` (after CONFIG SET); a replaced one enters its grace period.
    pub fn refresh(&self, c: &Config) {
        let new = (self.derive)(c);
        let mut s = self.state.write();
        if new == s.current {
            return;
        }
        let old = std::mem::replace(&mut s.current, new);
        s.previous = old.map(|o| (o, Instant::now() + grace_of(c)));
        tracing::info!(
            "cluster port credentials changed; the previous ones stay valid for the grace period"
        );
    }

    /// What to present: the current credential and, during a grace period, the replaced one.
    pub fn offered(&self) -> (Option<String>, Option<String>) {
        let s = self.state.read();
        let prev = s
            .previous
            .as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(p, _)| p.clone());
        (s.current.clone(), prev)
    }

    /// Whether a caller presenting the tokens `got` (its current credential and perhaps its
    /// replaced one) may in: always when no secret is configured, else when one token is
    /// fresh, not seen before, and made with the current secret or the replaced one within
    /// its grace period.
    pub fn accepts(&self, got: &[&str]) -> bool {
        let (current, previous) = self.offered();
        let Some(current) = current else {
            return true;
        };
        let now = super::now_ms();
        got.iter().any(|g| {
            let Some((ts, nonce, m)) = parse_token(g) else {
                return false;
            };
            if now.abs_diff(ts) > TOKEN_WINDOW_MS {
                return false;
            }
            let valid = std::iter::once(current.as_str())
                .chain(previous.as_deref())
                .any(|d| ct_eq(m.as_bytes(), mac(d, ts, nonce).as_bytes()));
            valid && self.first_use(nonce, ts, now)
        })
    }

    /// Remembers `nonce` for the window; false if it was used already (a replay).
    fn first_use(&self, nonce: u64, ts: u64, now: u64) -> bool {
        let mut guard = self.seen.lock();
        let (set, order) = &mut *guard;
        while let Some(&(expires, n)) = order.front() {
            if expires > now && order.len() < MAX_NONCES {
                break;
            }
            order.pop_front();
            set.remove(&n);
        }
        if !set.insert(nonce) {
            return false;
        }
        order.push_back((ts + 2 * TOKEN_WINDOW_MS, nonce));
        true
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
        let ok = |a: &PeerAuth, secret: &str| a.accepts(&[token(secret).as_str()]);
        assert!(ok(&a, "old") && !ok(&a, "new") && !a.accepts(&[]));
        // The digest itself, a malformed or a stale token are no credential.
        assert!(!a.accepts(&["old"]) && !a.accepts(&["v1.x.y.z"]));
        let stale = format!("v1.1000.{:016x}.{}", 7, mac("old", 1000, 7));
        assert!(!a.accepts(&[stale.as_str()]));
        // A token is good once: a replay is refused.
        let t = token("old");
        assert!(a.accepts(&[t.as_str()]) && !a.accepts(&[t.as_str()]));
        c.requirepass = Some("new".into());
        a.refresh(&c);
        assert!(ok(&a, "new") && ok(&a, "old"));
        assert_eq!(a.offered(), (Some("new".into()), Some("old".into())));
        if let Some((_, until)) = a.state.write().previous.as_mut() {
            *until = Instant::now();
        }
        assert!(ok(&a, "new") && !ok(&a, "old"));
        c.requirepass = None;
        a.refresh(&c);
        assert!(a.accepts(&[]));
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        assert_eq!(
            hex(&hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex(&hmac_sha1(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }
}

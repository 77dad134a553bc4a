//! The routing decision for a command's keys, following Valkey's `getNodeByQuery`.

use super::View;

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Local,
    Moved(u16, String),
    Ask(u16, String),
    CrossSlot,
    TryAgain,
    Unbound,
    Down,
    DownReadOnly,
}

impl Route {
    /// The error line for a non-local route.
    pub fn error(&self) -> Option<String> {
        Some(match self {
            Route::Local => return None,
            Route::Moved(s, a) => format!("MOVED {s} {a}"),
            Route::Ask(s, a) => format!("ASK {s} {a}"),
            Route::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot".into(),
            Route::TryAgain => "TRYAGAIN Multiple keys request during rehashing of slot".into(),
            Route::Unbound => "CLUSTERDOWN Hash slot not served".into(),
            Route::Down => "CLUSTERDOWN The cluster is down".into(),
            Route::DownReadOnly => {
                "CLUSTERDOWN The cluster is down and only accepts read commands".into()
            }
        })
    }
}

/// How a command reaches the keys it names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// The command writes.
    pub write: bool,
    /// ASKING was sent (or the command carries its own, as RESTORE-ASKING).
    pub asking: bool,
    /// The client sent READONLY: a replica may serve its reads.
    pub readonly_client: bool,
    /// The client is on TLS: redirects name TLS ports.
    pub tls: bool,
}

/// Decides where a command touching `slots` (one per key, in order) runs.
/// `missing` tells how many of the keys are absent locally (asked only for migrating or
/// importing slots).
pub fn route(
    view: &View,
    slots: &[u16],
    access: Access,
    missing: impl FnOnce() -> (usize, usize),
) -> Route {
    let Access {
        write: is_write,
        asking,
        readonly_client,
        tls,
    } = access;
    let Some(&slot) = slots.first() else {
        return Route::Local;
    };
    if slots.iter().any(|s| *s != slot) {
        return Route::CrossSlot;
    }
    let Some(owner) = view.slots.get(slot as usize).copied().flatten() else {
        return Route::Unbound;
    };
    if !view.ok {
        if !view.allow_reads_when_down {
            return Route::Down;
        }
        if is_write {
            return Route::DownReadOnly;
        }
    }
    let addr = |i: u16| {
        view.nodes
            .get(i as usize)
            .map(|n| {
                if tls {
                    n.1.tls.clone()
                } else {
                    n.1.plain.clone()
                }
            })
            .unwrap_or_default()
    };
    let owner_id = view.nodes.get(owner as usize).map(|n| n.0);
    let mine = owner_id == view.myself;
    if mine {
        if let Some(&target) = view.migrating.get(&slot) {
            let (missing, total) = missing();
            if missing == total {
                return Route::Ask(slot, addr(target));
            }
            if missing > 0 {
                return Route::TryAgain;
            }
        }
        return Route::Local;
    }
    if asking && view.importing.contains_key(&slot) {
        let (missing, total) = missing();
        if total > 1 && missing > 0 {
            return Route::TryAgain;
        }
        return Route::Local;
    }
    if readonly_client
        && !is_write
        && view.role_replica_of.is_some()
        && view.role_replica_of == owner_id
    {
        return Route::Local;
    }
    Route::Moved(slot, addr(owner))
}

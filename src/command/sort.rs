//! SORT and SORT_RO over lists, sets and sorted sets: BY (a key pattern, or a constant that
//! keeps the native order), LIMIT, GET (keys, `->` hash fields, `#`), ASC/DESC, ALPHA and
//! STORE, with Valkey's option parsing, LIMIT clamping, tie-breaking and error texts. BY and
//! GET patterns are refused in cluster mode, as Valkey refuses them.
//! Must not: write anything but the STORE destination.

use std::cmp::Ordering;

use bytes::Bytes;

use super::args::{int, is};
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::{Entry, Kind, Update, Value};
use crate::resp::Reply;

/// SORT's key positions, as Valkey's sortGetKeys finds them: the sorted key and the last
/// `STORE` destination (LIMIT, GET and BY arguments skipped).
pub(super) fn key_positions(args: &[Bytes]) -> Vec<usize> {
    let mut keys = vec![1];
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if is(a, "limit") {
            i += 2;
        } else if is(a, "get") || is(a, "by") {
            i += 1;
        } else if is(a, "store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    keys.extend(store.filter(|&p| p < args.len()));
    keys
}

struct Options {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    store: Option<Bytes>,
    by: Option<Bytes>,
    /// BY without `*`: keep the native order.
    dont_sort: bool,
    gets: Vec<Bytes>,
}

fn parse(ctx: &Ctx, args: &[Bytes], read_only: bool) -> Result<Options, CmdError> {
    let cluster = ctx.node.cluster.is_some();
    let mut o = Options {
        desc: false,
        alpha: false,
        limit: None,
        store: None,
        by: None,
        dont_sort: false,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if is(a, "asc") {
            o.desc = false;
        } else if is(a, "desc") {
            o.desc = true;
        } else if is(a, "alpha") {
            o.alpha = true;
        } else if is(a, "limit") && left >= 2 {
            o.limit = Some((int(&args[j + 1])?, int(&args[j + 2])?));
            j += 2;
        } else if !read_only && is(a, "store") && left >= 1 {
            o.store = Some(args[j + 1].clone());
            j += 1;
        } else if is(a, "by") && left >= 1 {
            let pattern = &args[j + 1];
            if !pattern.contains(&b'*') {
                o.dont_sort = true;
            } else if cluster {
                return Err(CmdError::err("BY option of SORT denied in Cluster mode."));
            }
            o.by = Some(pattern.clone());
            j += 1;
        } else if is(a, "get") && left >= 1 {
            if cluster {
                return Err(CmdError::err("GET option of SORT denied in Cluster mode."));
            }
            o.gets.push(args[j + 1].clone());
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// The value a BY or GET pattern names for `element`: `#` is the element itself; otherwise
/// the first `*` takes the element, and `key->field` reads a hash field.
fn lookup_pattern(
    ctx: &mut Ctx,
    pattern: &[u8],
    element: &[u8],
) -> Result<Option<Bytes>, CmdError> {
    if pattern == b"#" {
        return Ok(Some(Bytes::copy_from_slice(element)));
    }
    let Some(star) = pattern.iter().position(|&c| c == b'*') else {
        return Ok(None);
    };
    let after = &pattern[star + 1..];
    let field = after
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&at| at + 2 < after.len());
    let (post, field) = match field {
        Some(at) => (&after[..at], Some(&after[at + 2..])),
        None => (after, None),
    };
    let mut key = pattern[..star].to_vec();
    key.extend_from_slice(element);
    key.extend_from_slice(post);
    match field {
        None => Ok(match ctx.ks.lookup(&key)? {
            Some(Entry {
                value: Value::Str(b),
                ..
            }) => Some(b),
            _ => None,
        }),
        Some(f) => {
            let got = ctx.ks.coll_read(&key, Kind::Hash, |h| match h {
                Some(h) => h.get(f),
                None => Ok(None),
            })?;
            Ok(got.ok().flatten().map(Bytes::from))
        }
    }
}

/// C's strtod over the whole string, as SORT converts weights: leading spaces allowed, an
/// empty string is 0, anything left unparsed, NaN or an out-of-range value is an error.
fn weight(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if s.is_empty() {
        return Some(0.0);
    }
    let v: f64 = t.parse().ok()?;
    let named_inf = t
        .trim_start_matches(['+', '-'])
        .to_ascii_lowercase()
        .starts_with("inf");
    if v.is_nan() || (v.is_infinite() && !named_inf) {
        return None;
    }
    Some(v)
}

/// The elements of the list, set or sorted set at `key` in their native order (a set's in
/// byte order); `None` when the key is missing.
fn elements(ctx: &mut Ctx, key: &[u8]) -> Result<Option<(Vec<Bytes>, bool)>, CmdError> {
    let Some(e) = ctx.ks.lookup(key)? else {
        return Ok(None);
    };
    let all = match e.value {
        Value::List { .. } => ctx.ks.list_write(key, |l| {
            let n = l.len();
            if n == 0 {
                return Ok(Vec::new());
            }
            l.range(0, n - 1)
        })??,
        Value::Set(_) => ctx.ks.coll_read(key, Kind::Set, |h| {
            let mut out = Vec::new();
            if let Some(h) = h {
                h.scan(|m, _| {
                    out.push(m.to_vec());
                    true
                })?;
            }
            Ok(out)
        })??,
        Value::ZSet(_) => ctx.ks.zset_read(key, |z| match z {
            Some(z) => Ok(z.all()?.into_iter().map(|(m, _)| m).collect()),
            None => Ok(Vec::new()),
        })??,
        _ => return Err(CmdError::WrongType),
    };
    let is_set = matches!(e.value, Value::Set(_));
    Ok(Some((all.into_iter().map(Bytes::from).collect(), is_set)))
}

fn sort_generic(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> CmdResult {
    let mut o = parse(ctx, args, read_only)?;
    let (mut items, is_set) = elements(ctx, &args[1])?.unwrap_or_default();
    // A set has no order of its own: what is stored (or a script sees) is sorted.
    if o.dont_sort && is_set && (o.store.is_some() || ctx.client.in_script) {
        o.dont_sort = false;
        o.alpha = true;
        o.by = None;
    }
    let len = items.len() as i64;
    let (lstart, lcount) = o.limit.unwrap_or((0, -1));
    let mut start = lstart.max(0).min(len);
    let count = lcount.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    if o.dont_sort {
        if o.desc && !is_set {
            items.reverse();
        }
    } else {
        let mut keyed: Vec<(Bytes, f64, Option<Bytes>)> = Vec::with_capacity(items.len());
        let mut bad = false;
        for it in items {
            let by = match &o.by {
                Some(p) => lookup_pattern(ctx, p, &it)?,
                None => Some(it.clone()),
            };
            let mut score = 0.0;
            if !o.alpha {
                if let Some(b) = &by {
                    match weight(b) {
                        Some(w) => score = w,
                        None => bad = true,
                    }
                }
            }
            keyed.push((it, score, by));
        }
        if bad {
            return Err(CmdError::err(
                "One or more scores can't be converted into double",
            ));
        }
        let by_pattern = o.by.is_some();
        keyed.sort_by(|a, b| {
            let c = if !o.alpha {
                a.1.partial_cmp(&b.1)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.0.cmp(&b.0))
            } else if by_pattern {
                match (&a.2, &b.2) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(y),
                }
            } else {
                a.0.cmp(&b.0)
            };
            if o.desc {
                c.reverse()
            } else {
                c
            }
        });
        items = keyed.into_iter().map(|k| k.0).collect();
    }
    let picked: Vec<Bytes> = if start <= end && start >= 0 {
        items[start as usize..=end as usize].to_vec()
    } else {
        Vec::new()
    };
    let mut out: Vec<Option<Bytes>> = Vec::new();
    for it in &picked {
        if o.gets.is_empty() {
            out.push(Some(it.clone()));
        }
        for g in &o.gets {
            out.push(lookup_pattern(ctx, g, it)?);
        }
    }
    let Some(dest) = o.store else {
        return Ok(Reply::Array(out.into_iter().map(Reply::opt_bulk).collect()));
    };
    let n = out.len() as i64;
    ctx.ks.update(&dest, |_| (Update::Delete, ()))?;
    if n > 0 {
        ctx.ks.list_write(&dest, |l| {
            for v in out {
                l.push_back(v.map(|b| b.to_vec()).unwrap_or_default());
            }
            Ok(())
        })??;
    }
    Ok(Reply::Int(n))
}

pub fn sort(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, false)
}

pub fn sort_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_convert_as_strtod() {
        assert_eq!(weight(b""), Some(0.0));
        assert_eq!(weight(b"  1.5"), Some(1.5));
        assert_eq!(weight(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(weight(b"1e400"), None);
        assert_eq!(weight(b"1x"), None);
        assert_eq!(weight(b"nan"), None);
        assert_eq!(weight(b"   "), None);
    }

    #[test]
    fn store_key_is_the_last_one() {
        let args: Vec<Bytes> = [
            "SORT", "k", "BY", "store", "STORE", "a", "GET", "x", "STORE", "b",
        ]
        .iter()
        .map(|s| Bytes::from(s.to_string()))
        .collect();
        assert_eq!(key_positions(&args), vec![1, 9]);
    }
}

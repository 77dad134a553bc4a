//! Geo commands over sorted sets whose scores are 52-bit geohashes, as Valkey keeps them:
//! GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS(_RO) and
//! GEORADIUSBYMEMBER(_RO), with Valkey's argument order, errors, reply shapes and sorting.
//! The math (encoding, distances, the nine-cell search plan) is `geohash`'s.
//! Must not: store anything but sorted sets.

use bytes::Bytes;

use super::args::{is, parse_f64, parse_i64};
use super::geohash::{self as gh, Shape, ShapeKind};
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::Update;
use crate::resp::Reply;

fn line(s: &str) -> CmdError {
    CmdError::Line(s.to_string())
}

fn float_or(arg: &[u8], err: &str) -> Result<f64, CmdError> {
    parse_f64(arg).ok_or_else(|| line(err))
}

fn lon_lat(args: &[Bytes]) -> Result<(f64, f64), CmdError> {
    let lon = float_or(&args[0], gh::ERR_NOT_FLOAT)?;
    let lat = float_or(&args[1], gh::ERR_NOT_FLOAT)?;
    if gh::geoadd_score(lon, lat).is_none() {
        return Err(CmdError::Line(gh::invalid_pair_error(lon, lat)));
    }
    Ok((lon, lat))
}

fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    gh::unit_factor(arg).ok_or_else(|| line(gh::ERR_UNSUPPORTED_UNIT))
}

/// `radius unit`: the radius and meters per unit.
fn radius(args: &[Bytes]) -> Result<(f64, f64), CmdError> {
    let r = float_or(&args[0], gh::ERR_NEED_NUMERIC_RADIUS)?;
    if r < 0.0 {
        return Err(line(gh::ERR_RADIUS_NEGATIVE));
    }
    Ok((r, unit(&args[1])?))
}

/// The score of `member` in the sorted set at `key` (`Ok(None)` when either is missing).
fn score_of(ctx: &mut Ctx, key: &[u8], member: &[u8]) -> Result<Option<f64>, CmdError> {
    Ok(ctx.ks.zset_read(key, |z| match z {
        Some(z) => z.score(member),
        None => Ok(None),
    })??)
}

pub fn geoadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut nx, mut xx) = (false, false);
    let mut at = 2;
    while at < args.len() {
        let a = &args[at];
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if !is(a, "ch") {
            break;
        }
        at += 1;
    }
    if (args.len() - at) % 3 != 0 || (nx && xx) {
        return Err(CmdError::Syntax);
    }
    let mut zadd: Vec<Bytes> = vec![Bytes::from_static(b"zadd")];
    zadd.extend(args[1..at].iter().cloned());
    for triple in args[at..].chunks(3) {
        let (lon, lat) = lon_lat(triple)?;
        let bits = gh::geoadd_score(lon, lat).unwrap_or(0);
        zadd.push(Bytes::from(bits.to_string()));
        zadd.push(triple[2].clone());
    }
    super::zsets::zadd(ctx, &zadd)
}

pub fn geodist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let per = match args.len() {
        4 => 1.0,
        5 => unit(&args[4])?,
        _ => return Err(CmdError::Syntax),
    };
    let (a, b) = (&args[2], &args[3]);
    let scores = ctx.ks.zset_read(&args[1], |z| match z {
        Some(z) => Ok(z.score(a)?.zip(z.score(b)?)),
        None => Ok(None),
    })??;
    Ok(match scores {
        Some((s1, s2)) => {
            let (lon1, lat1) = gh::decode_score(s1);
            let (lon2, lat2) = gh::decode_score(s2);
            let d = gh::distance(lon1, lat1, lon2, lat2) / per;
            Reply::Bulk(Bytes::from(gh::format_distance(d)))
        }
        None => Reply::Nil,
    })
}

fn member_scores(ctx: &mut Ctx, args: &[Bytes]) -> Result<Vec<Option<f64>>, CmdError> {
    let members = &args[2..];
    Ok(ctx.ks.zset_read(&args[1], |z| {
        members
            .iter()
            .map(|m| match z {
                Some(z) => z.score(m),
                None => Ok(None),
            })
            .collect::<crate::keyspace::Result<Vec<_>>>()
    })??)
}

pub fn geohash(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let scores = member_scores(ctx, args)?;
    Ok(Reply::Array(
        scores
            .into_iter()
            .map(|s| match s {
                Some(s) => Reply::Bulk(Bytes::from(gh::geohash_string_of_score(s))),
                None => Reply::Nil,
            })
            .collect(),
    ))
}

fn coords(lon: f64, lat: f64) -> Reply {
    Reply::Array(vec![
        Reply::DoubleText(gh::format_coord(lon)),
        Reply::DoubleText(gh::format_coord(lat)),
    ])
}

pub fn geopos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let scores = member_scores(ctx, args)?;
    Ok(Reply::Array(
        scores
            .into_iter()
            .map(|s| match s {
                Some(s) => {
                    let (lon, lat) = gh::decode_score(s);
                    coords(lon, lat)
                }
                None => Reply::NilArray,
            })
            .collect(),
    ))
}

/// Which command runs the search (Valkey's georadiusGeneric flags).
#[derive(Clone, Copy, PartialEq)]
enum GeoCmd {
    Radius { read_only: bool },
    ByMember { read_only: bool },
    Search,
    SearchStore,
}

/// Where the key's existence is known and what a FROMMEMBER/BYMEMBER member decodes to.
struct Source<'a> {
    key: &'a [u8],
    exists: bool,
}

impl Source<'_> {
    fn center(&self, ctx: &mut Ctx, member: &[u8]) -> Result<(f64, f64), CmdError> {
        match score_of(ctx, self.key, member)? {
            Some(s) => Ok(gh::decode_score(s)),
            None => Err(line(gh::ERR_MEMBER_NOT_FOUND)),
        }
    }
}

/// GEORADIUS key positions: the key, and the last STORE/STOREDIST destination.
pub(super) fn radius_key_positions(args: &[Bytes]) -> Vec<usize> {
    let mut store = None;
    let mut i = 5;
    while i < args.len() {
        if (is(&args[i], "store") || is(&args[i], "storedist")) && i + 1 < args.len() {
            store = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    std::iter::once(1).chain(store).collect()
}

fn search(ctx: &mut Ctx, args: &[Bytes], kind: GeoCmd) -> CmdResult {
    let src_at = if kind == GeoCmd::SearchStore { 2 } else { 1 };
    let src = &args[src_at];
    let exists = match ctx.ks.lookup(src)? {
        None => false,
        Some(e) if matches!(e.value, crate::keyspace::Value::ZSet(_)) => true,
        Some(_) => return Err(CmdError::WrongType),
    };
    let source = Source { key: src, exists };
    let mut shape = Shape {
        lon: 0.0,
        lat: 0.0,
        conversion: 1.0,
        kind: ShapeKind::Radius(0.0),
    };
    let geosearch = matches!(kind, GeoCmd::Search | GeoCmd::SearchStore);
    let mut store: Option<Bytes> = (kind == GeoCmd::SearchStore).then(|| args[1].clone());
    let mut store_dist = false;
    let base = match kind {
        GeoCmd::Radius { .. } => {
            (shape.lon, shape.lat) = lon_lat(&args[2..4])?;
            let (r, per) = radius(&args[4..6])?;
            (shape.conversion, shape.kind) = (per, ShapeKind::Radius(r));
            6
        }
        GeoCmd::ByMember { .. } => {
            if source.exists {
                (shape.lon, shape.lat) = source.center(ctx, &args[2])?;
                let (r, per) = radius(&args[3..5])?;
                (shape.conversion, shape.kind) = (per, ShapeKind::Radius(r));
            }
            5
        }
        GeoCmd::Search => 2,
        GeoCmd::SearchStore => 3,
    };
    let no_store = matches!(
        kind,
        GeoCmd::Radius { read_only: true } | GeoCmd::ByMember { read_only: true }
    );
    let (mut with_dist, mut with_hash, mut with_coord, mut any) = (false, false, false, false);
    let (mut from_member, mut from_loc, mut by_radius, mut by_box) = (false, false, false, false);
    let mut sort: Option<bool> = None; // Some(desc)
    let mut count: i64 = 0;
    let rest = &args[base..];
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        let left = rest.len() - i - 1;
        if is(a, "withdist") {
            with_dist = true;
        } else if is(a, "withhash") {
            with_hash = true;
        } else if is(a, "withcoord") {
            with_coord = true;
        } else if is(a, "any") {
            any = true;
        } else if is(a, "asc") {
            sort = Some(false);
        } else if is(a, "desc") {
            sort = Some(true);
        } else if is(a, "count") && left >= 1 {
            count = parse_i64(&rest[i + 1]).ok_or_else(|| line(gh::ERR_NOT_INTEGER))?;
            if count <= 0 {
                return Err(line(gh::ERR_COUNT_NOT_POSITIVE));
            }
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && left >= 1 && !no_store && !geosearch {
            store = Some(rest[i + 1].clone());
            store_dist = is(a, "storedist");
            i += 1;
        } else if is(a, "storedist") && kind == GeoCmd::SearchStore {
            store_dist = true;
        } else if is(a, "frommember") && left >= 1 && geosearch && !from_loc {
            if source.exists {
                (shape.lon, shape.lat) = source.center(ctx, &rest[i + 1])?;
            }
            from_member = true;
            i += 1;
        } else if is(a, "fromlonlat") && left >= 2 && geosearch && !from_member {
            (shape.lon, shape.lat) = lon_lat(&rest[i + 1..i + 3])?;
            from_loc = true;
            i += 2;
        } else if is(a, "byradius") && left >= 2 && geosearch && !by_box {
            let (r, per) = radius(&rest[i + 1..i + 3])?;
            (shape.conversion, shape.kind) = (per, ShapeKind::Radius(r));
            by_radius = true;
            i += 2;
        } else if is(a, "bybox") && left >= 3 && geosearch && !by_radius {
            let w = float_or(&rest[i + 1], gh::ERR_NEED_NUMERIC_WIDTH)?;
            let h = float_or(&rest[i + 2], gh::ERR_NEED_NUMERIC_HEIGHT)?;
            if w < 0.0 || h < 0.0 {
                return Err(line(gh::ERR_BOX_NEGATIVE));
            }
            shape.conversion = unit(&rest[i + 3])?;
            shape.kind = ShapeKind::Box {
                width: w,
                height: h,
            };
            by_box = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if store.is_some() && (with_dist || with_hash || with_coord) {
        return Err(CmdError::Line(gh::store_incompatible_error(
            kind == GeoCmd::SearchStore,
        )));
    }
    let name = String::from_utf8_lossy(&args[0]).into_owned();
    if geosearch && !(from_member || from_loc) {
        return Err(CmdError::Line(gh::from_required_error(&name)));
    }
    if geosearch && !(by_radius || by_box) {
        return Err(CmdError::Line(gh::by_required_error(&name)));
    }
    if any && count == 0 {
        return Err(line(gh::ERR_ANY_REQUIRES_COUNT));
    }
    if !source.exists {
        return match store {
            Some(dest) => {
                ctx.ks.update(&dest, |_| (Update::Delete, ()))?;
                Ok(Reply::Int(0))
            }
            None => Ok(Reply::Array(Vec::new())),
        };
    }
    if count != 0 && sort.is_none() && !any {
        sort = Some(false);
    }
    // (member, score, hit) in scan order, stopping early with ANY.
    let limit = if any { count as usize } else { 0 };
    let ranges = gh::calculate_areas_by_shape(&shape);
    let hits = ctx.ks.zset_read(src, |z| {
        let mut hits: Vec<(Vec<u8>, f64, gh::Hit)> = Vec::new();
        let Some(z) = z else { return Ok(hits) };
        for (min, max) in ranges {
            if limit > 0 && hits.len() >= limit {
                break;
            }
            z.ascending(min, |m, s| {
                if s >= max {
                    return false;
                }
                if let Some(hit) = gh::within_shape(&shape, s) {
                    hits.push((m.to_vec(), s, hit));
                }
                !(limit > 0 && hits.len() >= limit)
            })?;
        }
        Ok(hits)
    })??;
    if hits.is_empty() && store.is_none() {
        return Ok(Reply::Array(Vec::new()));
    }
    let returned = if count == 0 {
        hits.len()
    } else {
        hits.len().min(count as usize)
    };
    let order: Vec<usize> = match sort {
        Some(desc) => {
            let dists: Vec<f64> = hits.iter().map(|h| h.2.dist_m).collect();
            gh::sort_order(&dists, desc, returned)
        }
        None => (0..hits.len()).collect(),
    };
    let picked = order.into_iter().take(returned).map(|i| &hits[i]);
    let Some(dest) = store else {
        let options = [with_dist, with_hash, with_coord]
            .iter()
            .filter(|&&b| b)
            .count();
        let items = picked
            .map(|(m, s, hit)| {
                let member = Reply::Bulk(Bytes::copy_from_slice(m));
                if options == 0 {
                    return member;
                }
                let mut item = vec![member];
                if with_dist {
                    let d = gh::format_distance(hit.dist_m / shape.conversion);
                    item.push(Reply::Bulk(Bytes::from(d)));
                }
                if with_hash {
                    item.push(Reply::Int(gh::hash_reply_int(*s)));
                }
                if with_coord {
                    item.push(coords(hit.lon, hit.lat));
                }
                Reply::Array(item)
            })
            .collect();
        return Ok(Reply::Array(items));
    };
    let stored: Vec<(Vec<u8>, f64)> = picked
        .map(|(m, s, hit)| {
            let score = if store_dist {
                hit.dist_m / shape.conversion
            } else {
                *s
            };
            (m.clone(), score)
        })
        .collect();
    let n = stored.len() as i64;
    ctx.ks.update(&dest, |_| (Update::Delete, ()))?;
    if n > 0 {
        ctx.ks.zset_write(&dest, |z| {
            for (m, s) in &stored {
                z.set(m, *s)?;
            }
            Ok(())
        })??;
    }
    Ok(Reply::Int(n))
}

pub fn georadius(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, GeoCmd::Radius { read_only: false })
}

pub fn georadius_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, GeoCmd::Radius { read_only: true })
}

pub fn georadiusbymember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, GeoCmd::ByMember { read_only: false })
}

pub fn georadiusbymember_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, GeoCmd::ByMember { read_only: true })
}

pub fn geosearch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, GeoCmd::Search)
}

pub fn geosearchstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, GeoCmd::SearchStore)
}

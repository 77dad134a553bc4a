//! The geo math of valkey-server 8.1 (geohash.c, geohash_helper.c and the pure parts of geo.c
//! and pqsort.c), ported operation for operation so that GEOADD scores, GEOPOS/GEODIST/GEOHASH
//! text, and GEOSEARCH/GEORADIUS hits, distances and order come out byte-identical: the 52-bit
//! interleaved geohash, haversine distance, the nine-cell search plan with its score ranges,
//! radius/box membership, result ordering, unit factors, reply number text and the geo error
//! texts.
//!
//! Must not: touch storage or build replies. The command layer scans the sorted set over the
//! ranges returned here and turns the numbers and strings into RESP.
//!
//! Bit-exactness rests on doing every floating-point operation in the same order as the C code,
//! on Rust's `sin`/`cos`/`asin` reaching the same glibc libm as valkey-server, and on Valkey being
//! an x86-64 build (no fused multiply-add; out-of-range double-to-integer casts behave like
//! `cvttsd2si`, which only matters for scores that no GEOADD could have produced).

// Valkey's comparisons are kept as written: they let NaN through where a range check would not.
#![allow(clippy::manual_range_contains)]

/// 26 bits per axis: 52-bit scores, exact integers in a double.
pub const GEO_STEP_MAX: u8 = 26;
/// Web-Mercator latitude limits (EPSG:3857); the poles cannot be encoded.
pub const GEO_LAT_MIN: f64 = -85.05112878;
pub const GEO_LAT_MAX: f64 = 85.05112878;
pub const GEO_LONG_MIN: f64 = -180.0;
pub const GEO_LONG_MAX: f64 = 180.0;
/// Valkey's quadratic-mean earth radius; every distance scales by it.
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
/// `M_PI / 180.0`, the factor Valkey's deg_rad/rad_deg use (not its unused DEG_TO_RAD literal).
const D_R: f64 = std::f64::consts::PI / 180.0;
const TWO_POW_63: f64 = 9223372036854775808.0;

// ---- error texts (full lines, ready for CmdError::Line) ----

/// Unit not one of m/km/ft/mi (GEODIST's optional unit, BYRADIUS/BYBOX/GEORADIUS units).
pub const ERR_UNSUPPORTED_UNIT: &str = "ERR unsupported unit provided. please use M, KM, FT, MI";
/// Radius argument is not a float (GEORADIUS*, BYRADIUS).
pub const ERR_NEED_NUMERIC_RADIUS: &str = "ERR need numeric radius";
/// Radius parsed but below zero; checked before the unit.
pub const ERR_RADIUS_NEGATIVE: &str = "ERR radius cannot be negative";
/// BYBOX width is not a float; width is parsed before height.
pub const ERR_NEED_NUMERIC_WIDTH: &str = "ERR need numeric width";
/// BYBOX height is not a float.
pub const ERR_NEED_NUMERIC_HEIGHT: &str = "ERR need numeric height";
/// BYBOX width or height below zero; checked after both parse, before the unit.
pub const ERR_BOX_NEGATIVE: &str = "ERR height or width cannot be negative";
/// GEORADIUSBYMEMBER member or GEOSEARCH FROMMEMBER member missing from an existing key.
pub const ERR_MEMBER_NOT_FOUND: &str = "ERR could not decode requested zset member";
/// COUNT parsed to zero or a negative number.
pub const ERR_COUNT_NOT_POSITIVE: &str = "ERR COUNT must be > 0";
/// ANY given without COUNT (checked after the whole option loop).
pub const ERR_ANY_REQUIRES_COUNT: &str = "ERR the ANY argument requires COUNT argument";
/// A longitude or latitude that does not parse as a float (getDoubleFromObjectOrReply).
pub const ERR_NOT_FLOAT: &str = "ERR value is not a valid float";
/// COUNT value that is not a 64-bit integer.
pub const ERR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";

/// Longitude or latitude outside the limits. Valkey prints both with `%f`.
pub fn invalid_pair_error(lon: f64, lat: f64) -> String {
    format!(
        "ERR invalid longitude,latitude pair {},{}",
        printf_f(lon),
        printf_f(lat)
    )
}

/// STORE/STOREDIST (or GEOSEARCHSTORE) together with WITHDIST, WITHHASH or WITHCOORD.
pub fn store_incompatible_error(geosearchstore: bool) -> String {
    let who = if geosearchstore {
        "GEOSEARCHSTORE"
    } else {
        "STORE option in GEORADIUS"
    };
    format!("ERR {who} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
}

/// GEOSEARCH/GEOSEARCHSTORE without FROMMEMBER or FROMLONLAT. `cmd` is argv[0] as the client
/// typed it (case kept), because Valkey prints that.
pub fn from_required_error(cmd: &str) -> String {
    format!("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {cmd}")
}

/// GEOSEARCH/GEOSEARCHSTORE without BYRADIUS or BYBOX; `cmd` as in [`from_required_error`].
pub fn by_required_error(cmd: &str) -> String {
    format!("ERR exactly one of BYRADIUS and BYBOX can be specified for {cmd}")
}

/// C's `%f`: Rust's fixed formatting is also exact with ties to even; only the non-finite
/// spellings differ.
fn printf_f(v: f64) -> String {
    if v.is_nan() {
        "nan".to_string()
    } else {
        format!("{v:.6}")
    }
}

// ---- units and reply text ----

/// Meters per unit for m, km, ft, mi (case-insensitive), None for anything else. Valkey compares
/// with strcasecmp, so the argument ends at its first NUL byte.
pub fn unit_factor(unit: &[u8]) -> Option<f64> {
    let u = unit
        .split(|&c| c == 0)
        .next()
        .unwrap_or(&[])
        .to_ascii_lowercase();
    match u.as_slice() {
        b"m" => Some(1.0),
        b"km" => Some(1000.0),
        b"ft" => Some(0.3048),
        b"mi" => Some(1609.34),
        _ => None,
    }
}

/// GEODIST and WITHDIST text (fixedpoint_d2string with 4 digits): scale by 10^4, round half to
/// even as llrint does, print the integer with the point put back. Zero of either sign is
/// "0.0000"; a NaN or overflowing value takes llrint's x86 LLONG_MIN like Valkey does.
pub fn format_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".to_string();
    }
    let scaled = (d * 10000.0).round_ties_even();
    let sv = if scaled.is_nan() || !(-TWO_POW_63..TWO_POW_63).contains(&scaled) {
        i64::MIN
    } else {
        scaled as i64
    };
    let v = sv.unsigned_abs();
    let sign = if sv < 0 { "-" } else { "" };
    format!("{sign}{}.{:04}", v / 10000, v % 10000)
}

/// GEOPOS and WITHCOORD text (ld2string in LD_STR_HUMAN mode: `%.17Lf`, trailing zeros and a
/// bare point trimmed, "-0" turned into "0"). The long double holds the double exactly and both
/// glibc and Rust print the exact binary value correctly rounded (ties to even), so formatting
/// the f64 itself gives the same digits.
pub fn format_coord(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let s = format!("{v:.17}");
    let t = s.trim_end_matches('0');
    let t = t.strip_suffix('.').unwrap_or(t);
    if t == "-0" {
        "0".to_string()
    } else {
        t.to_string()
    }
}

/// WITHHASH integer: Valkey hands the double score to addReplyLongLong, an x86 truncating cast.
pub fn hash_reply_int(score: f64) -> i64 {
    cvtt(score) as i64
}

// ---- geohash bits ----

/// An axis span as `(min, max)`.
#[derive(Debug, Clone, Copy)]
struct Range(f64, f64);

const WGS84_LON: Range = Range(GEO_LONG_MIN, GEO_LONG_MAX);
const WGS84_LAT: Range = Range(GEO_LAT_MIN, GEO_LAT_MAX);
/// GEOHASH re-encodes with the standard geohash latitude span.
const STANDARD_LAT: Range = Range(-90.0, 90.0);

/// The cell a hash covers, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub lon_min: f64,
    pub lon_max: f64,
    pub lat_min: f64,
    pub lat_max: f64,
}

/// Bit positions of each axis in a hash: latitude even, longitude odd.
const LAT_BITS: u64 = 0x5555555555555555;
const LON_BITS: u64 = 0xaaaaaaaaaaaaaaaa;
/// The "binary magic numbers" spreading/gathering masks (and their shifts) of bithacks.
const MASKS: [u64; 6] = [
    LAT_BITS,
    0x3333333333333333,
    0x0F0F0F0F0F0F0F0F,
    0x00FF00FF00FF00FF,
    0x0000FFFF0000FFFF,
    0xFFFFFFFF,
];
const SHIFTS: [u32; 6] = [1, 2, 4, 8, 16, 0];

fn interleave64(lat: u32, lon: u32) -> u64 {
    let (mut x, mut y) = (u64::from(lat), u64::from(lon));
    for (&mask, &shift) in MASKS[..5].iter().zip(&SHIFTS[..5]).rev() {
        x = (x | (x << shift)) & mask;
        y = (y | (y << shift)) & mask;
    }
    x | (y << 1)
}

/// Latitude cell index in the low 32 bits, longitude in the high 32.
fn deinterleave64(v: u64) -> u64 {
    let (mut x, mut y) = (v & LAT_BITS, (v >> 1) & LAT_BITS);
    for (&mask, &shift) in MASKS[1..].iter().zip(&SHIFTS[..5]) {
        x = (x | (x >> shift)) & mask;
        y = (y | (y >> shift)) & mask;
    }
    x | (y << 32)
}

/// C's double-to-uint32 on x86-64 goes through a 64-bit truncation, so 2^32 wraps to 0.
fn offset_to_u32(x: f64) -> u32 {
    (x as u64) as u32
}

fn encode_in(lon_r: Range, lat_r: Range, lon: f64, lat: f64, step: u8) -> Option<u64> {
    if step == 0 || step > 32 {
        return None;
    }
    let outside =
        lon > GEO_LONG_MAX || lon < GEO_LONG_MIN || lat > GEO_LAT_MAX || lat < GEO_LAT_MIN;
    if outside {
        return None;
    }
    if lat < lat_r.0 || lat > lat_r.1 || lon < lon_r.0 || lon > lon_r.1 {
        return None;
    }
    let mut lat_offset = (lat - lat_r.0) / (lat_r.1 - lat_r.0);
    let mut lon_offset = (lon - lon_r.0) / (lon_r.1 - lon_r.0);
    let cells = (1u64 << step) as f64;
    lat_offset *= cells;
    lon_offset *= cells;
    Some(interleave64(
        offset_to_u32(lat_offset),
        offset_to_u32(lon_offset),
    ))
}

/// geohashEncodeWGS84: the `step*2`-bit hash of a point, None outside the limits or for a step
/// outside 1..=32. A point exactly on the north or east limit yields an offset of 2^step, which
/// spills one bit above the hash width, as in Valkey.
pub fn encode(lon: f64, lat: f64, step: u8) -> Option<u64> {
    encode_in(WGS84_LON, WGS84_LAT, lon, lat, step)
}

/// The sorted-set score GEOADD stores (the 26-step hash, already 52 bits wide). The command
/// layer replies [`invalid_pair_error`] when this is None.
pub fn geoadd_score(lon: f64, lat: f64) -> Option<u64> {
    encode(lon, lat, GEO_STEP_MAX)
}

fn decode_in(lon_r: Range, lat_r: Range, bits: u64, step: u8) -> Area {
    let sep = deinterleave64(bits);
    let lat_scale = lat_r.1 - lat_r.0;
    let lon_scale = lon_r.1 - lon_r.0;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let cells = 1u64.checked_shl(u32::from(step)).unwrap_or(0) as f64;
    // The +1 is 32-bit arithmetic in C, so a saturated cell index wraps to 0.
    Area {
        lat_min: lat_r.0 + (ilato as f64 / cells) * lat_scale,
        lat_max: lat_r.0 + (ilato.wrapping_add(1) as f64 / cells) * lat_scale,
        lon_min: lon_r.0 + (ilono as f64 / cells) * lon_scale,
        lon_max: lon_r.0 + (ilono.wrapping_add(1) as f64 / cells) * lon_scale,
    }
}

/// geohashDecodeWGS84: the cell of a `step*2`-bit hash.
pub fn decode_area(bits: u64, step: u8) -> Area {
    decode_in(WGS84_LON, WGS84_LAT, bits, step)
}

/// geohashDecodeToLongLatWGS84: the cell centre, clamped to the limits, as `(lon, lat)`.
pub fn decode(bits: u64, step: u8) -> (f64, f64) {
    let a = decode_area(bits, step);
    let lon = ((a.lon_min + a.lon_max) / 2.0).clamp(GEO_LONG_MIN, GEO_LONG_MAX);
    let lat = ((a.lat_min + a.lat_max) / 2.0).clamp(GEO_LAT_MIN, GEO_LAT_MAX);
    (lon, lat)
}

/// x86 `cvttsd2si`: truncation, or 0x8000000000000000 for NaN and anything out of range.
fn cvtt(x: f64) -> u64 {
    if x.is_nan() || !(-TWO_POW_63..TWO_POW_63).contains(&x) {
        1 << 63
    } else {
        x as i64 as u64
    }
}

/// The `(uint64_t)score` cast decodeGeohash does, as gcc compiles it for x86-64. Only matters for
/// scores written by ZADD rather than GEOADD (negative, fractional or huge ones).
pub fn score_to_bits(score: f64) -> u64 {
    if score >= TWO_POW_63 {
        cvtt(score - TWO_POW_63) ^ (1 << 63)
    } else {
        cvtt(score)
    }
}

/// decodeGeohash: what GEOPOS, WITHCOORD, GEODIST, GEOHASH and FROMMEMBER read out of a score.
/// It never fails in Valkey either (any 64-bit pattern decodes to some clamped point).
pub fn decode_score(score: f64) -> (f64, f64) {
    decode(score_to_bits(score), GEO_STEP_MAX)
}

/// GEOHASH's 11-character string for an already decoded `(lon, lat)`: re-encoded over latitude
/// [-90, 90], ten base-32 characters from the top 50 of 52 bits, and an 11th that is always '0'.
pub fn geohash_string(lon: f64, lat: f64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let bits = encode_in(WGS84_LON, STANDARD_LAT, lon, lat, GEO_STEP_MAX).unwrap_or(0);
    let mut out: String = (1..=10)
        .map(|i| ALPHABET[((bits >> (52 - i * 5)) & 0x1f) as usize] as char)
        .collect();
    out.push('0');
    out
}

/// GEOHASH of a member's score.
pub fn geohash_string_of_score(score: f64) -> String {
    let (lon, lat) = decode_score(score);
    geohash_string(lon, lat)
}

// ---- distances ----

fn deg_rad(a: f64) -> f64 {
    a * D_R
}

fn rad_deg(a: f64) -> f64 {
    a / D_R
}

/// Distance along a meridian (geohashGetLatDistance).
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// geohashGetDistance in meters: haversine with asin(sqrt(a)), and the meridian shortcut when
/// the half longitude difference has a sine of exactly zero.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// geohashGetDistanceIfInRadiusWGS84: the distance from the centre `(clon, clat)` when within
/// `radius_m` (inclusive); a NaN distance would count as inside, as in C.
pub fn within_radius(clon: f64, clat: f64, radius_m: f64, lon: f64, lat: f64) -> Option<f64> {
    let d = distance(clon, clat, lon, lat);
    if d > radius_m {
        return None;
    }
    Some(d)
}

/// geohashGetDistanceIfInRectangle: inside when the meridian distance is within height/2 and
/// the distance along the point's own parallel is within width/2; returns the true distance.
pub fn within_box(
    center_lon: f64,
    center_lat: f64,
    width_m: f64,
    height_m: f64,
    lon: f64,
    lat: f64,
) -> Option<f64> {
    if lat_distance(lat, center_lat) > height_m / 2.0 {
        return None;
    }
    if distance(lon, lat, center_lon, lat) > width_m / 2.0 {
        return None;
    }
    Some(distance(center_lon, center_lat, lon, lat))
}

// ---- search shapes and the nine-cell plan ----

/// Search extent in the user's unit (multiplied by [`Shape::conversion`] where Valkey does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShapeKind {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// Valkey's GeoShape: centre, meters per unit (from [`unit_factor`]) and extent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub lon: f64,
    pub lat: f64,
    pub conversion: f64,
    pub kind: ShapeKind,
}

/// A member that passed the shape test: decoded position and distance in meters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub lon: f64,
    pub lat: f64,
    pub dist_m: f64,
}

/// geoWithinShape: decode the score, then apply the radius or box test. Replies show
/// `dist_m / shape.conversion`.
pub fn within_shape(shape: &Shape, score: f64) -> Option<Hit> {
    let (lon, lat) = decode_score(score);
    let dist_m = match shape.kind {
        ShapeKind::Radius(r) => {
            within_radius(shape.lon, shape.lat, r * shape.conversion, lon, lat)?
        }
        ShapeKind::Box { width, height } => within_box(
            shape.lon,
            shape.lat,
            width * shape.conversion,
            height * shape.conversion,
            lon,
            lat,
        )?,
    };
    Some(Hit { lon, lat, dist_m })
}

/// geohashEstimateStepsByRadius: the coarsest step whose cells still cover `range_m`, one or two
/// steps coarser near the poles, framed to 1..=26.
pub fn estimate_steps_by_radius(range_m: f64, lat: f64) -> u8 {
    if range_m == 0.0 {
        return GEO_STEP_MAX;
    }
    let mut r = range_m;
    let mut step: i32 = 1;
    // The bound only stops a negative radius (rejected by parsing) from doubling forever; the
    // smallest positive double needs about 1100 doublings.
    while r < MERCATOR_MAX && step < 4096 {
        r *= 2.0;
        step += 1;
    }
    step -= 2;
    if lat > 66.0 || lat < -66.0 {
        step -= 1;
        if lat > 80.0 || lat < -80.0 {
            step -= 1;
        }
    }
    step.clamp(1, i32::from(GEO_STEP_MAX)) as u8
}

/// geohashBoundingBox: `[min_lon, min_lat, max_lon, max_lat]` of the shape, widened at the
/// parallel farther from the equator.
pub fn bounding_box(shape: &Shape) -> [f64; 4] {
    let (height, width) = match shape.kind {
        ShapeKind::Radius(r) => (shape.conversion * r, shape.conversion * r),
        ShapeKind::Box { width, height } => (
            shape.conversion * (height / 2.0),
            shape.conversion * (width / 2.0),
        ),
    };
    let (lon, lat) = (shape.lon, shape.lat);
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat + lat_delta).cos());
    let bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat - lat_delta).cos());
    let delta = if lat < 0.0 { bottom } else { top };
    [lon - delta, lat - lat_delta, lon + delta, lat + lat_delta]
}

/// geohash_move_x/_y: one cell along the axis whose bit positions are `mine`. Filling the other
/// axis' positions with ones lets the carry or borrow run across them; bits of the other axis
/// (even one spilled above the hash width) pass through untouched.
fn move_axis(bits: u64, step: u8, up: bool, mine: u64) -> u64 {
    let other = !mine;
    let shift = 64 - 2 * u32::from(step);
    let zz = other >> shift;
    let v = bits & mine;
    let v = if up {
        v.wrapping_add(zz + 1)
    } else {
        (v | zz).wrapping_sub(zz + 1)
    };
    (v & (mine >> shift)) | (bits & other)
}

/// The centre then N, S, E, W, NE, NW, SE, SW: membersOfAllNeighbors' visiting order.
fn nine_cells(hash: u64, step: u8) -> [u64; 9] {
    let ns = |h: u64, up: bool| move_axis(h, step, up, LAT_BITS);
    let e = move_axis(hash, step, true, LON_BITS);
    let w = move_axis(hash, step, false, LON_BITS);
    [
        hash,
        ns(hash, true),
        ns(hash, false),
        e,
        w,
        ns(e, true),
        ns(w, true),
        ns(e, false),
        ns(w, false),
    ]
}

/// geohashCalculateAreasByShapeWGS84 plus membersOfAllNeighbors' skipping: the score ranges to
/// scan, in Valkey's order, each `(min inclusive, max exclusive)` as the doubles Valkey compares
/// scores against (exact: every bound is below 2^53 or a multiple of a large power of two).
/// Cells pruned for lying outside the bounding box are left out, and so is a cell equal to the
/// last one scanned (never compared with the centre, as in Valkey, whose "last" starts at 0).
///
/// Scan each range in ascending (score, member) order and test members with [`within_shape`].
/// With ANY, stop once `count` hits are collected: check before each range and after each
/// member visited.
pub fn calculate_areas_by_shape(shape: &Shape) -> Vec<(f64, f64)> {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(shape);
    let radius_m = match shape.kind {
        ShapeKind::Radius(r) => r,
        ShapeKind::Box { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * shape.conversion;
    let mut steps = estimate_steps_by_radius(radius_m, shape.lat);
    let mut hash = encode(shape.lon, shape.lat, steps).unwrap_or(0);
    let mut cells = nine_cells(hash, steps);

    // A neighbour that ends inside the bounding box means the cells are too small to cover it.
    let too_small = decode_area(cells[1], steps).lat_max < max_lat
        || decode_area(cells[2], steps).lat_min > min_lat
        || decode_area(cells[3], steps).lon_max < max_lon
        || decode_area(cells[4], steps).lon_min > min_lon;
    if steps > 1 && too_small {
        steps -= 1;
        hash = encode(shape.lon, shape.lat, steps).unwrap_or(0);
        cells = nine_cells(hash, steps);
    }
    let area = decode_area(hash, steps);

    let mut keep = [true; 9];
    if steps >= 2 {
        // Indices into nine_cells: a side outside the box takes its three cells with it.
        let mut prune = |idx: [usize; 3]| idx.iter().for_each(|&i| keep[i] = false);
        if area.lat_min < min_lat {
            prune([2, 8, 7]);
        }
        if area.lat_max > max_lat {
            prune([1, 5, 6]);
        }
        if area.lon_min < min_lon {
            prune([4, 8, 6]);
        }
        if area.lon_max > max_lon {
            prune([3, 7, 5]);
        }
    }

    let shift = 52 - 2 * u32::from(steps);
    let mut out = Vec::with_capacity(9);
    let mut last = 0usize;
    for (i, &cell) in cells.iter().enumerate() {
        if !keep[i] || (last != 0 && cell == cells[last]) {
            continue;
        }
        let (min, max) = (cell << shift, cell.wrapping_add(1) << shift);
        out.push((min as f64, max as f64));
        last = i;
    }
    out
}

// ---- ordering ----

/// The order Valkey replies hits in when ASC or DESC applies (COUNT without ANY implies ASC):
/// a permutation of `0..dists.len()` whose first `returned` entries are the reply. When all hits
/// are returned Valkey calls glibc qsort, a stable top-down merge sort; otherwise its own
/// partial quicksort (pqsort) over `0..returned`, whose tie order is reproduced here too.
/// Without ASC/DESC the hits stay in scan order and are simply truncated.
pub fn sort_order(dists: &[f64], desc: bool, returned: usize) -> Vec<usize> {
    // sort_gp_asc: 1, 0 or -1, where a NaN compares as "less" both ways; DESC negates it.
    let sign = if desc { -1 } else { 1 };
    let cmp = |a: usize, b: usize| -> i32 {
        match dists[a].partial_cmp(&dists[b]) {
            Some(std::cmp::Ordering::Greater) => sign,
            Some(std::cmp::Ordering::Equal) => 0,
            _ => -sign,
        }
    };
    let mut idx: Vec<usize> = (0..dists.len()).collect();
    let n = idx.len();
    if returned >= n {
        let mut tmp = Vec::with_capacity(n);
        msort(&mut idx, &mut tmp, &cmp);
    } else if returned > 0 {
        pqsort(&mut idx, 0, n, 0, returned - 1, &cmp);
    }
    idx
}

/// A qsort comparator over element indices: negative, zero or positive.
type Cmp<'a> = &'a dyn Fn(usize, usize) -> i32;

/// glibc's msort_with_tmp: first half n/2, ties keep the left element.
fn msort(v: &mut [usize], tmp: &mut Vec<usize>, cmp: Cmp) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    {
        let (a, b) = v.split_at_mut(n1);
        msort(a, tmp, cmp);
        msort(b, tmp, cmp);
    }
    tmp.clear();
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(v[i], v[j]) <= 0 {
            tmp.push(v[i]);
            i += 1;
        } else {
            tmp.push(v[j]);
            j += 1;
        }
    }
    tmp.extend_from_slice(&v[i..n1]);
    let k = tmp.len();
    v[..k].copy_from_slice(tmp.as_slice());
}

fn med3(v: &[usize], a: usize, b: usize, c: usize, cmp: Cmp) -> usize {
    if cmp(v[a], v[b]) < 0 {
        if cmp(v[b], v[c]) < 0 {
            b
        } else if cmp(v[a], v[c]) < 0 {
            c
        } else {
            a
        }
    } else if cmp(v[b], v[c]) > 0 {
        b
    } else if cmp(v[a], v[c]) < 0 {
        a
    } else {
        c
    }
}

fn vecswap(v: &mut [usize], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

/// A part `[lo, lo+n)` is sorted only if it overlaps the wanted `[lr, rr]`.
fn overlaps(lo: usize, n: usize, lr: usize, rr: usize) -> bool {
    let hi = lo + n - 1;
    !((lr < lo && rr < lo) || (lr > hi && rr > hi))
}

/// Valkey's pqsort (NetBSD's Bentley-McIlroy quicksort that skips parts outside the range), on
/// element indices instead of byte pointers.
fn pqsort(v: &mut [usize], mut lo: usize, mut n: usize, lr: usize, rr: usize, cmp: Cmp) {
    loop {
        if n < 7 {
            for pm in lo + 1..lo + n {
                let mut pl = pm;
                while pl > lo && cmp(v[pl - 1], v[pl]) > 0 {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = lo + n / 2;
        if n > 7 {
            let mut pl = lo;
            let mut pn = lo + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(lo, pm);
        let (mut pa, mut pb) = (lo + 1, lo + 1);
        let (mut pc, mut pd) = (lo + n - 1, lo + n - 1);
        loop {
            while pb <= pc {
                let r = cmp(v[pb], v[lo]);
                if r > 0 {
                    break;
                }
                if r == 0 {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let r = cmp(v[pc], v[lo]);
                if r < 0 {
                    break;
                }
                if r == 0 {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = lo + n;
        let r = (pa - lo).min(pb - pa);
        vecswap(v, lo, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let r = pb - pa;
        if r > 1 && overlaps(lo, r, lr, rr) {
            pqsort(v, lo, r, lr, rr, cmp);
        }
        let r = pd - pc;
        if r > 1 {
            lo = pn - r;
            n = r;
            if overlaps(lo, n, lr, rr) {
                continue;
            }
        }
        return;
    }
}

#[cfg(test)]
#[path = "geohash_tests.rs"]
mod tests;

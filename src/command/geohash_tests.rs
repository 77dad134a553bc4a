//! Unit tests of the geo math against Valkey's documented examples.
use super::*;

// The Sicily set of Valkey's GEOADD/GEOSEARCH documentation.
const SICILY: [(&str, f64, f64); 4] = [
    ("Palermo", 13.361389, 38.115556),
    ("Catania", 15.087269, 37.502669),
    ("edge1", 12.758489, 38.788135),
    ("edge2", 17.241510, 38.788135),
];

fn score(i: usize) -> f64 {
    geoadd_score(SICILY[i].1, SICILY[i].2).unwrap_or(0) as f64
}

fn pos(i: usize) -> String {
    let (x, y) = decode_score(score(i));
    format!("{} {}", format_coord(x), format_coord(y))
}

/// geoGetPointsInRange over the ranges, then the docs' ASC order (or scan order), in km.
fn search(shape: &Shape, asc: bool) -> Vec<(&'static str, String)> {
    let mut set: Vec<(&str, f64)> = (0..4).map(|i| (SICILY[i].0, score(i))).collect();
    set.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
    let mut hits = Vec::new();
    for (min, max) in calculate_areas_by_shape(shape) {
        for &(name, s) in set.iter().filter(|m| m.1 >= min && m.1 < max) {
            if let Some(h) = within_shape(shape, s) {
                hits.push((name, h.dist_m));
            }
        }
    }
    let d: Vec<f64> = hits.iter().map(|h| h.1).collect();
    let order = if asc {
        sort_order(&d, false, d.len())
    } else {
        (0..d.len()).collect()
    };
    order
        .into_iter()
        .map(|i| (hits[i].0, format_distance(hits[i].1 / 1000.0)))
        .collect()
}

fn owned(v: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    v.iter().map(|(a, b)| (*a, b.to_string())).collect()
}

#[test]
fn geoadd_geopos_geohash_geodist() {
    assert_eq!(score(0), 3479099956230698.0);
    assert_eq!(score(1), 3479447370796909.0);
    assert_eq!(pos(0), "13.36138933897018433 38.11555639549629859");
    assert_eq!(pos(1), "15.08726745843887329 37.50266842333162032");
    assert_eq!(pos(2), "12.7584877610206604 38.78813451624225195");
    assert_eq!(geohash_string_of_score(score(0)), "sqc8b49rny0");
    assert_eq!(geohash_string_of_score(score(1)), "sqdtr74hyu0");
    let ((ax, ay), (bx, by)) = (decode_score(score(0)), decode_score(score(1)));
    let d = distance(ax, ay, bx, by);
    assert_eq!(format_distance(d), "166274.1516");
    assert_eq!(format_distance(d / 1000.0), "166.2742");
}

#[test]
fn searches_from_the_docs() {
    let radius = Shape {
        lon: 15.0,
        lat: 37.0,
        conversion: 1000.0,
        kind: ShapeKind::Radius(200.0),
    };
    assert_eq!(
        search(&radius, false),
        owned(&[("Palermo", "190.4424"), ("Catania", "56.4413")])
    );
    assert_eq!(
        search(&radius, true),
        owned(&[("Catania", "56.4413"), ("Palermo", "190.4424")])
    );
    let square = ShapeKind::Box {
        width: 400.0,
        height: 400.0,
    };
    let bx = Shape {
        kind: square,
        ..radius
    };
    let want = [
        ("Catania", "56.4413"),
        ("Palermo", "190.4424"),
        ("edge2", "279.7403"),
        ("edge1", "279.7405"),
    ];
    assert_eq!(search(&bx, true), owned(&want));
}

#[test]
fn round_trip_and_limits() {
    let half_lon = 360.0 / (1u64 << 27) as f64 * 1.000001;
    let half_lat = (GEO_LAT_MAX - GEO_LAT_MIN) / (1u64 << 27) as f64 * 1.000001;
    for (lon, lat) in [
        (0.0, 0.0),
        (-179.9999, -85.0),
        (179.9999, 85.0),
        (-73.9857, 40.7484),
    ] {
        let (x, y) = decode(encode(lon, lat, 26).unwrap_or(0), 26);
        assert!(
            (x - lon).abs() <= half_lon && (y - lat).abs() <= half_lat,
            "{lon},{lat}"
        );
    }
    assert_eq!(encode(181.0, 0.0, 26), None);
    assert_eq!(encode(0.0, 85.06, 26), None);
    assert_eq!(encode(0.0, 0.0, 0), None);
    let err = "ERR invalid longitude,latitude pair 181.000000,0.000000";
    assert_eq!(invalid_pair_error(181.0, 0.0), err);
    // The north-east corner spills a bit above 52 and decodes back, clamped, to the corner.
    let corner = geoadd_score(GEO_LONG_MAX, GEO_LAT_MAX).unwrap_or(0);
    assert_eq!(decode_score(corner as f64), (GEO_LONG_MAX, GEO_LAT_MAX));
}

#[test]
fn steps_units_and_text() {
    assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
    assert_eq!(estimate_steps_by_radius(200000.0, 37.0), 6);
    assert_eq!(estimate_steps_by_radius(200000.0, 70.0), 5);
    assert_eq!(estimate_steps_by_radius(200000.0, -85.0), 4);
    assert_eq!(estimate_steps_by_radius(1e9, 0.0), 1);
    assert_eq!(unit_factor(b"KM"), Some(1000.0));
    assert_eq!(unit_factor(b"Ft"), Some(0.3048));
    assert_eq!(unit_factor(b"mI"), Some(1609.34));
    assert_eq!(unit_factor(b"m\0x"), Some(1.0));
    assert_eq!(unit_factor(b"mm"), None);
    assert_eq!(format_distance(0.0), "0.0000");
    assert_eq!(format_distance(-0.0), "0.0000");
    assert_eq!(format_distance(0.00004), "0.0000");
    assert_eq!(format_distance(0.00006), "0.0001");
    assert_eq!(format_distance(1.5), "1.5000");
    assert_eq!(format_coord(-0.0), "0");
    assert_eq!(format_coord(-1e-20), "0");
    assert_eq!(format_coord(2.0), "2");
    assert_eq!(format_coord(1.5), "1.5");
    assert_eq!(hash_reply_int(3479099956230698.0), 3479099956230698);
    assert_eq!(within_box(0.0, 0.0, 1e9, 2.0, 0.0, 0.001), None);
    assert!(within_box(0.0, 0.0, 1e9, 1e9, 0.0, 0.001).is_some());
    assert_eq!(within_radius(0.0, 0.0, 1.0, 0.0, 0.001), None);
}

#[test]
fn full_sort_is_stable_and_partial_sort_gets_the_prefix() {
    let mut seed = 12345u64;
    let dists: Vec<f64> = (0..200)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) % 50) as f64
        })
        .collect();
    let mut asc: Vec<usize> = (0..dists.len()).collect();
    asc.sort_by(|&a, &b| dists[a].total_cmp(&dists[b]));
    assert_eq!(sort_order(&dists, false, dists.len()), asc);
    let mut desc: Vec<usize> = (0..dists.len()).collect();
    desc.sort_by(|&a, &b| dists[b].total_cmp(&dists[a]));
    assert_eq!(sort_order(&dists, true, dists.len()), desc);
    for k in [1, 5, 17, 64, 199] {
        let order = sort_order(&dists, false, k);
        let mut perm = order.clone();
        perm.sort_unstable();
        assert_eq!(perm, (0..dists.len()).collect::<Vec<_>>());
        let got: Vec<f64> = order[..k].iter().map(|&i| dists[i]).collect();
        let want: Vec<f64> = asc[..k].iter().map(|&i| dists[i]).collect();
        assert_eq!(got, want, "k={k}");
    }
}

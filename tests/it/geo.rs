//! Geo commands against valkey-server 8.1.8, byte for byte: Valkey's documented examples, the
//! argument errors in Valkey's order, every search option (radius and box, FROMMEMBER and
//! FROMLONLAT, COUNT [ANY], ASC/DESC, WITH*, STORE/STOREDIST), then seeded random points and
//! searches in RESP2 and RESP3.

use anyhow::Result;

use crate::commands::Rng;
use crate::harness::{assert_same_reply, node_and_valkey_in};

const CASES: &[&[&str]] = &[
    &[
        "GEOADD",
        "Sicily",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ],
    &["GEODIST", "Sicily", "Palermo", "Catania"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "km"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "MI"],
    &["GEODIST", "Sicily", "Palermo", "Nowhere"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "parsecs"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "km", "x"],
    &["GEODIST", "nokey", "a", "b"],
    &["GEOHASH", "Sicily", "Palermo", "Catania", "Nowhere"],
    &["GEOHASH", "nokey", "a"],
    &["GEOPOS", "Sicily", "Palermo", "Catania", "NonExisting"],
    &["GEOPOS", "nokey", "a"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHCOORD"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "WITHDIST",
        "WITHCOORD",
        "WITHHASH",
    ],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "COUNT",
        "1",
        "ANY",
        "DESC",
    ],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "ANY"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "0"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "x"],
    &["GEORADIUS", "Sicily", "15", "37", "-1", "km"],
    &["GEORADIUS", "Sicily", "15", "37", "x", "km"],
    &["GEORADIUS", "Sicily", "200", "37", "1", "km"],
    &["GEORADIUS", "Sicily", "x", "37", "1", "km"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "furlongs"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "STORE",
        "out",
    ],
    &["ZRANGE", "out", "0", "-1", "WITHSCORES"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "STOREDIST",
        "out",
    ],
    &["ZRANGE", "out", "0", "-1", "WITHSCORES"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "STORE",
        "out",
        "WITHDIST",
    ],
    &["GEORADIUS", "Sicily", "15", "37", "1", "km", "STORE", "out"],
    &["EXISTS", "out"],
    &[
        "GEORADIUS_RO",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "STORE",
        "out",
    ],
    &["GEORADIUS", "nokey", "15", "37", "200", "km"],
    &[
        "GEORADIUS",
        "nokey",
        "15",
        "37",
        "200",
        "km",
        "STORE",
        "out",
    ],
    &["GEOADD", "Sicily", "13.583333", "37.316667", "Agrigento"],
    &["GEORADIUSBYMEMBER", "Sicily", "Agrigento", "100", "km"],
    &["GEORADIUSBYMEMBER", "Sicily", "Nowhere", "100", "km"],
    &["GEORADIUSBYMEMBER", "nokey", "Nowhere", "x", "y"],
    &[
        "GEORADIUSBYMEMBER_RO",
        "Sicily",
        "Agrigento",
        "100",
        "km",
        "WITHDIST",
        "ASC",
    ],
    &[
        "GEOADD",
        "points",
        "12.758489",
        "38.788135",
        "edge1",
        "17.241510",
        "38.788135",
        "edge2",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "200",
        "km",
        "ASC",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "400",
        "400",
        "km",
        "ASC",
        "WITHCOORD",
        "WITHDIST",
    ],
    &[
        "GEOSEARCH",
        "points",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "400",
        "400",
        "km",
        "ASC",
        "WITHCOORD",
        "WITHDIST",
        "WITHHASH",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMMEMBER",
        "Palermo",
        "BYRADIUS",
        "300",
        "km",
        "DESC",
        "COUNT",
        "2",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMMEMBER",
        "Nowhere",
        "BYRADIUS",
        "300",
        "km",
    ],
    &["GEOSEARCH", "Sicily", "BYRADIUS", "300", "km"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37"],
    &["geosearch", "Sicily", "FROMLONLAT", "15", "37"],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "FROMMEMBER",
        "Palermo",
        "BYRADIUS",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "1",
        "km",
        "BYBOX",
        "1",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "-1",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "x",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "1",
        "x",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "1",
        "km",
        "STORE",
        "x",
    ],
    &[
        "GEOSEARCH",
        "nokey",
        "FROMMEMBER",
        "a",
        "BYRADIUS",
        "1",
        "km",
    ],
    &[
        "GEOSEARCHSTORE",
        "dst",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "200",
        "km",
        "STOREDIST",
    ],
    &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
    &[
        "GEOSEARCHSTORE",
        "dst",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "200",
        "km",
        "COUNT",
        "1",
    ],
    &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
    &[
        "GEOSEARCHSTORE",
        "dst",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "200",
        "km",
        "WITHDIST",
    ],
    &[
        "GEOSEARCHSTORE",
        "dst",
        "nokey",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "200",
        "km",
    ],
    &["EXISTS", "dst"],
    &["GEOADD", "g", "NX", "XX", "1", "1", "a"],
    &["GEOADD", "g", "1", "1"],
    &["GEOADD", "g", "181", "1", "a"],
    &["GEOADD", "g", "1", "86", "a"],
    &["GEOADD", "g", "CH", "1", "1", "a", "2", "2", "b"],
    &["GEOADD", "g", "CH", "1", "1", "a", "3", "3", "b"],
    &["GEOADD", "g", "XX", "CH", "4", "4", "a", "5", "5", "c"],
    &["GEOADD", "g", "NX", "6", "6", "a", "7", "7", "d"],
    &["GEOADD", "g", "ch", "ch", "ch"],
    &["ZRANGE", "g", "0", "-1", "WITHSCORES"],
    &["SET", "str", "x"],
    &["GEOADD", "str", "1", "1", "a"],
    &["GEOADD", "str", "1", "100", "a"],
    &["GEOPOS", "str", "a"],
    &["GEODIST", "str", "a", "b"],
    &["GEORADIUS", "str", "1", "100", "1", "km"],
    &[
        "GEOSEARCH",
        "str",
        "FROMLONLAT",
        "1",
        "1",
        "BYRADIUS",
        "1",
        "km",
    ],
];

#[test]
fn geo_cases_match_valkey_byte_for_byte_in_resp2_and_resp3() -> Result<()> {
    crate::harness::assert_cases_match_valkey(CASES)
}

fn coord(r: &mut Rng, spread: f64, center: f64) -> String {
    let x = center + (r.below(2_000_001) as f64 / 1_000_000.0 - 1.0) * spread;
    format!("{x:.6}")
}

fn random_geo_command(r: &mut Rng) -> Vec<String> {
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let member = format!("m{}", r.below(60));
    let (lon, lat) = (coord(r, 3.0, 13.0), coord(r, 2.0, 38.0));
    match r.below(10) {
        0..=3 => s(&["GEOADD", "pts", &lon, &lat, &member]),
        4 => s(&["GEOPOS", "pts", &member, "m1"]),
        5 => s(&[
            "GEODIST",
            "pts",
            &member,
            "m2",
            r.pick(&["m", "km", "mi", "ft"]),
        ]),
        6 => s(&["GEOHASH", "pts", &member]),
        _ => {
            let store = r.below(5) == 0;
            let mut c = if store {
                s(&["GEOSEARCHSTORE", "dst", "pts"])
            } else {
                s(&["GEOSEARCH", "pts"])
            };
            if r.below(3) == 0 {
                c.extend(s(&["FROMMEMBER", &member]));
            } else {
                c.extend(s(&["FROMLONLAT", &lon, &lat]));
            }
            let size = r.pick(&["10", "50", "120", "300", "1000"]);
            if r.below(2) == 0 {
                c.extend(s(&["BYRADIUS", size, "km"]));
            } else {
                c.extend(s(&["BYBOX", size, r.pick(&["20", "80", "400"]), "km"]));
            }
            match r.below(4) {
                0 => c.extend(s(&["COUNT", r.pick(&["1", "3", "10"])])),
                1 => c.extend(s(&["COUNT", r.pick(&["1", "5"]), "ANY"])),
                _ => {}
            }
            if r.below(2) == 0 {
                c.push(r.pick(&["ASC", "DESC"]).into());
            }
            if store {
                if r.below(2) == 0 {
                    c.push("STOREDIST".into());
                }
            } else {
                for w in ["WITHDIST", "WITHCOORD", "WITHHASH"] {
                    if r.below(3) == 0 {
                        c.push(w.into());
                    }
                }
            }
            c
        }
    }
}

/// Seeded points around Sicily and searches of every shape and option; after each stored
/// search the stored set is compared too.
#[test]
fn generated_geo_commands_match_valkey() -> Result<()> {
    for (i, seed) in [0x6e0_0001u64, 0x6e0_0002].into_iter().enumerate() {
        let resp3 = i == 1;
        let (_node, _valkey, mut ours, mut theirs) = node_and_valkey_in(resp3)?;
        let mut r = Rng(seed);
        for step in 0..1500 {
            let cmd = random_geo_command(&mut r);
            let at = format!("seed {seed:#x} step {step} resp3={resp3}");
            assert_same_reply(&mut ours, &mut theirs, &cmd, &at)?;
            if cmd[0] == "GEOSEARCHSTORE" {
                let read = ["ZRANGE", "dst", "0", "-1", "WITHSCORES"];
                assert_same_reply(&mut ours, &mut theirs, &read, &at)?;
            }
        }
    }
    Ok(())
}

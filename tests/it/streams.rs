//! Streams against valkey-server 8.1.8 (the case table is in `stream_cases`): seeded generators mixing every stream command (consumer groups, trimming with `~` under
//! changing node limits, other types on the same keys), compared reply by reply in RESP2 and
//! RESP3 with only clock readings masked; blocking XREAD and XREADGROUP woken by XADD; groups
//! that survive SIGKILL and a replica's promotion.

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::commands::Rng;
use crate::harness::RawConn;
use crate::stream_cases::{masked, same};

const KEYS: &[&str] = &["s1", "s2", "s3"];
const GROUPS: &[&str] = &["g1", "g2"];
const CONSUMERS: &[&str] = &["c1", "c2", "c3"];

/// Generates stream commands over a few keys; `top` is the id counter XADD climbs with.
struct Gen {
    r: Rng,
    top: u64,
    /// Ids XADD was asked for lately, so XDEL, XACK and XCLAIM mostly name real entries.
    recent: Vec<String>,
}

impl Gen {
    fn id(&mut self) -> String {
        if !self.recent.is_empty() && self.r.below(3) > 0 {
            let i = self.r.below(self.recent.len() as u64) as usize;
            return self.recent[i].clone();
        }
        let ms = self.r.below(self.top + 2);
        match self.r.below(4) {
            0 => ms.to_string(),
            _ => format!("{ms}-{}", self.r.below(3)),
        }
    }

    fn bound(&mut self, low: bool) -> String {
        match self.r.below(6) {
            0 => if low { "-" } else { "+" }.to_string(),
            1 => format!("({}", self.id()),
            _ => self.id(),
        }
    }

    fn trim(&mut self, out: &mut Vec<String>) {
        let approx = self.r.below(2) == 0;
        if self.r.below(3) == 0 {
            out.push("MINID".into());
            if approx {
                out.push("~".into());
            }
            out.push(self.id());
        } else {
            out.push("MAXLEN".into());
            out.push(if approx { "~" } else { "=" }.into());
            out.push(self.r.below(40).to_string());
        }
        if approx && self.r.below(3) == 0 {
            out.push("LIMIT".into());
            out.push(self.r.below(30).to_string());
        }
    }

    fn next(&mut self) -> Vec<String> {
        let k = self.r.pick(KEYS).to_string();
        let g = self.r.pick(GROUPS).to_string();
        let c = self.r.pick(CONSUMERS).to_string();
        let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self.r.below(40) {
            0..=11 => {
                let mut v = s(&["XADD", &k]);
                if self.r.below(10) == 0 {
                    v.push("NOMKSTREAM".into());
                }
                if self.r.below(5) == 0 {
                    self.trim(&mut v);
                }
                self.top += self.r.below(3);
                let id = match self.r.below(8) {
                    0 => format!("{}-*", self.top),
                    1 => self.id(),
                    _ => format!("{}-{}", self.top, self.r.below(3)),
                };
                if !id.ends_with('*') {
                    if self.recent.len() >= 40 {
                        self.recent.remove(0);
                    }
                    self.recent.push(id.clone());
                }
                v.push(id);
                let fields = 1 + self.r.below(2);
                for i in 0..fields {
                    let f = if self.r.below(3) == 0 { "g" } else { "f" };
                    v.push(if i == 0 {
                        f.to_string()
                    } else {
                        "h".to_string()
                    });
                    v.push(match self.r.below(4) {
                        0 => "1".to_string(),
                        1 => "x".repeat(self.r.below(80) as usize),
                        _ => format!("v{}", self.r.below(100)),
                    });
                }
                v
            }
            12 | 13 => {
                let mut v = s(&["XDEL", &k]);
                for _ in 0..1 + self.r.below(3) {
                    v.push(self.id());
                }
                v
            }
            14 => {
                let mut v = s(&["XTRIM", &k]);
                self.trim(&mut v);
                v
            }
            15 | 16 => {
                let cmd = if self.r.below(2) == 0 {
                    "XRANGE"
                } else {
                    "XREVRANGE"
                };
                let (a, b) = (self.bound(true), self.bound(false));
                let mut v = if cmd == "XRANGE" {
                    s(&[cmd, &k, &a, &b])
                } else {
                    s(&[cmd, &k, &b, &a])
                };
                if self.r.below(2) == 0 {
                    v.extend(s(&["COUNT", &self.r.below(5).to_string()]));
                }
                v
            }
            17 => s(&["XLEN", &k]),
            18 => {
                let k2 = self.r.pick(KEYS).to_string();
                let id = match self.r.below(4) {
                    0 => "$".to_string(),
                    1 => "+".to_string(),
                    _ => self.id(),
                };
                let id2 = self.id();
                s(&[
                    "XREAD",
                    "COUNT",
                    &self.r.below(4).to_string(),
                    "STREAMS",
                    &k,
                    &k2,
                    &id,
                    &id2,
                ])
            }
            19 => {
                let mut v = s(&["XGROUP", "CREATE", &k, &g]);
                v.push(if self.r.below(3) == 0 {
                    "$".into()
                } else {
                    self.id()
                });
                if self.r.below(2) == 0 {
                    v.push("MKSTREAM".into());
                }
                if self.r.below(3) == 0 {
                    v.extend(s(&["ENTRIESREAD", &self.r.below(6).to_string()]));
                }
                v
            }
            20 => {
                let id = if self.r.below(3) == 0 {
                    "$".into()
                } else {
                    self.id()
                };
                let mut v = s(&["XGROUP", "SETID", &k, &g, &id]);
                if self.r.below(2) == 0 {
                    v.extend(s(&["ENTRIESREAD", &self.r.below(6).to_string()]));
                }
                v
            }
            21 => match self.r.below(4) {
                0 => s(&["XGROUP", "DESTROY", &k, &g]),
                1 => s(&["XGROUP", "DELCONSUMER", &k, &g, &c]),
                _ => s(&["XGROUP", "CREATECONSUMER", &k, &g, &c]),
            },
            22..=25 => {
                let mut v = s(&["XREADGROUP", "GROUP", &g, &c]);
                if self.r.below(2) == 0 {
                    v.extend(s(&["COUNT", &self.r.below(4).to_string()]));
                }
                if self.r.below(4) == 0 {
                    v.push("NOACK".into());
                }
                let id = if self.r.below(4) == 0 {
                    self.id()
                } else {
                    ">".into()
                };
                v.extend(s(&["STREAMS", &k, &id]));
                v
            }
            26 | 27 => {
                let mut v = s(&["XACK", &k, &g]);
                for _ in 0..1 + self.r.below(3) {
                    v.push(self.id());
                }
                v
            }
            28 => s(&["XPENDING", &k, &g]),
            29 => {
                let mut v = s(&["XPENDING", &k, &g]);
                if self.r.below(3) == 0 {
                    v.extend(s(&[
                        "IDLE",
                        if self.r.below(2) == 0 {
                            "0"
                        } else {
                            "99999999"
                        },
                    ]));
                }
                let (a, b) = (self.bound(true), self.bound(false));
                v.extend([a, b, self.r.below(6).to_string()]);
                if self.r.below(2) == 0 {
                    v.push(c);
                }
                v
            }
            30 | 31 => {
                let idle = if self.r.below(4) == 0 {
                    "99999999"
                } else {
                    "0"
                };
                let mut v = s(&["XCLAIM", &k, &g, &c, idle]);
                for _ in 0..1 + self.r.below(3) {
                    v.push(self.id());
                }
                for (w, arg) in [
                    ("JUSTID", None),
                    ("FORCE", None),
                    ("RETRYCOUNT", Some("3")),
                    ("TIME", Some("1000")),
                    ("LASTID", Some("")),
                ] {
                    if self.r.below(5) == 0 {
                        v.push(w.into());
                        match arg {
                            Some("") => v.push(self.id()),
                            Some(a) => v.push(a.into()),
                            None => {}
                        }
                    }
                }
                v
            }
            32 => {
                let idle = if self.r.below(4) == 0 {
                    "99999999"
                } else {
                    "0"
                };
                let start = self.bound(true);
                let mut v = s(&[
                    "XAUTOCLAIM",
                    &k,
                    &g,
                    &c,
                    idle,
                    &start,
                    "COUNT",
                    &(1 + self.r.below(4)).to_string(),
                ]);
                if self.r.below(3) == 0 {
                    v.push("JUSTID".into());
                }
                v
            }
            33 => match self.r.below(4) {
                0 => s(&["XINFO", "STREAM", &k]),
                1 => s(&[
                    "XINFO",
                    "STREAM",
                    &k,
                    "FULL",
                    "COUNT",
                    &self.r.below(4).to_string(),
                ]),
                2 => s(&["XINFO", "GROUPS", &k]),
                _ => s(&["XINFO", "CONSUMERS", &k, &g]),
            },
            34 => {
                let mut v = s(&["XSETID", &k, &format!("{}-9", self.top)]);
                if self.r.below(2) == 0 {
                    v.extend(s(&["ENTRIESADDED", &(self.top + 50).to_string()]));
                }
                if self.r.below(2) == 0 {
                    v.extend(s(&["MAXDELETEDID", &self.id()]));
                }
                v
            }
            // Another type only ever on s3, and not for long.
            35 => match self.r.below(8) {
                0 => s(&["SET", "s3", "plain"]),
                1 if k == "s3" => s(&["DEL", &k]),
                2 => s(&["DEL", "s3"]),
                _ => s(&["TYPE", &k]),
            },
            36 => {
                let n = self.r.pick(&["3", "10", "100", "0"]);
                s(&["CONFIG", "SET", "stream-node-max-entries", n])
            }
            37 => {
                let n = self.r.pick(&["64", "200", "4096"]);
                s(&["CONFIG", "SET", "stream-node-max-bytes", n])
            }
            38 => s(&["XREAD", "STREAMS", &k, "0"]),
            _ => s(&["EXISTS", &k]),
        }
    }
}

/// Thousands of seeded stream commands per run; every reply identical to valkey-server 8.1.8's
/// once clock readings are masked.
#[test]
fn generated_stream_commands_match_valkey() -> Result<()> {
    for (i, seed) in [0x5717_0001u64, 0x5717_0002, 0x5717_0003, 0x5717_0004]
        .into_iter()
        .enumerate()
    {
        let resp3 = i % 2 == 1;
        let (_node, _valkey, mut ours, mut theirs) = crate::harness::node_and_valkey_in(resp3)?;
        let mut g = Gen {
            r: Rng(seed),
            top: 1,
            recent: Vec::new(),
        };
        for step in 0..2500 {
            let cmd = g.next();
            same(
                &mut ours,
                &mut theirs,
                &cmd,
                &format!("seed {seed:#x} step {step} resp3={resp3}"),
            )?;
        }
        for k in KEYS {
            for cmd in [
                vec!["XINFO", "STREAM", k, "FULL", "COUNT", "0"],
                vec!["XRANGE", k, "-", "+"],
            ] {
                same(&mut ours, &mut theirs, &cmd, &format!("seed {seed:#x} end"))?;
            }
        }
    }
    Ok(())
}

/// XREAD BLOCK and XREADGROUP BLOCK wait for XADD (from another client), answer the entries
/// added after `$` or the group's position, and time out with a null array; a blocked
/// XREADGROUP whose stream is deleted gets NOGROUP; the same on both servers.
#[test]
fn blocking_reads_wake_on_xadd_like_valkey() -> Result<()> {
    for resp3 in [false, true] {
        let (node, valkey, mut ours, mut theirs) = crate::harness::node_and_valkey_in(resp3)?;
        let mut ours_w = node.raw()?;
        let mut theirs_w = RawConn::connect(valkey.addr())?;
        let pair = |ours: &mut RawConn, theirs: &mut RawConn, cmd: &[&str]| -> Result<()> {
            same(ours, theirs, cmd, &format!("setup resp3={resp3}"))
        };
        pair(&mut ours_w, &mut theirs_w, &["XADD", "s", "1-0", "a", "1"])?;
        pair(
            &mut ours_w,
            &mut theirs_w,
            &["XGROUP", "CREATE", "s", "g", "$"],
        )?;
        let blocked: &[(&[&str], &[&str])] = &[
            (
                &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
                &["XADD", "s", "2-0", "b", "2"],
            ),
            (
                &[
                    "XREAD", "BLOCK", "5000", "COUNT", "5", "STREAMS", "nokey", "s", "$", "$",
                ],
                &["XADD", "s", "3-0", "c", "3"],
            ),
            (
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "BLOCK",
                    "0",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &["XADD", "s", "4-0", "d", "4"],
            ),
            (
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "BLOCK",
                    "0",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &["DEL", "s"],
            ),
        ];
        for (i, (read, write)) in blocked.iter().enumerate() {
            let at = format!("blocked {i} resp3={resp3}");
            if i == 2 {
                // The group has delivered 2-0 and 3-0 nowhere yet: move it to the top first.
                pair(
                    &mut ours_w,
                    &mut theirs_w,
                    &["XGROUP", "SETID", "s", "g", "$"],
                )?;
            }
            ours.send(&crate::harness::encode_cmd(read))?;
            theirs.send(&crate::harness::encode_cmd(read))?;
            // Both must be waiting (no reply) before the write arrives.
            for c in [&mut ours, &mut theirs] {
                c.set_timeout(Duration::from_millis(300))?;
                ensure!(c.read_frame().is_err(), "{at}: answered before the write");
                c.set_timeout(Duration::from_secs(10))?;
            }
            same(&mut ours_w, &mut theirs_w, write, &at)?;
            let (a, b) = (ours.read_frame()?, theirs.read_frame()?);
            ensure!(
                a == b,
                "{at}: ours {} / valkey {}",
                crate::harness::show(&a),
                crate::harness::show(&b)
            );
        }
        // A timeout answers a null array.
        same(
            &mut ours,
            &mut theirs,
            &["XREAD", "BLOCK", "100", "STREAMS", "s", "$"],
            "timeout",
        )?;
        // Inside MULTI nothing blocks.
        for cmd in [
            &["MULTI"][..],
            &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
            &["EXEC"],
        ] {
            same(&mut ours, &mut theirs, cmd, "multi")?;
        }
    }
    Ok(())
}

/// Consumer groups are durable: pending entries, consumers and the group's position survive a
/// SIGKILL and come back exactly.
#[test]
fn consumer_groups_survive_sigkill() -> Result<()> {
    let mut node = crate::harness::Node::start()?;
    let mut c = node.raw()?;
    for i in 1..=50 {
        c.cmd(&["XADD", "jobs", &format!("{i}-0"), "n", &i.to_string()])?;
    }
    c.cmd(&["XGROUP", "CREATE", "jobs", "workers", "0"])?;
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "w1",
        "COUNT",
        "20",
        "STREAMS",
        "jobs",
        ">",
    ])?;
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "w2",
        "COUNT",
        "10",
        "STREAMS",
        "jobs",
        ">",
    ])?;
    c.cmd(&["XACK", "jobs", "workers", "1-0", "2-0", "25-0"])?;
    c.cmd(&[
        "XCLAIM",
        "jobs",
        "workers",
        "w2",
        "0",
        "5-0",
        "TIME",
        "1000",
        "RETRYCOUNT",
        "4",
    ])?;
    let probes: &[&[&str]] = &[
        &["XPENDING", "jobs", "workers"],
        &["XPENDING", "jobs", "workers", "-", "+", "100"],
        &["XINFO", "GROUPS", "jobs"],
        &["XINFO", "STREAM", "jobs", "FULL", "COUNT", "0"],
        &["XINFO", "CONSUMERS", "jobs", "workers"],
    ];
    let before: Vec<Vec<u8>> = probes
        .iter()
        .map(|p| c.cmd(p).and_then(|r| masked(&r)))
        .collect::<Result<_>>()?;
    drop(c);
    node.kill9()?;
    node.restart()?;
    let mut c = node.raw()?;
    for (p, want) in probes.iter().zip(&before) {
        let got = masked(&c.cmd(p)?)?;
        ensure!(
            &got == want,
            "{p:?} after SIGKILL: {} / before {}",
            crate::harness::show(&got),
            crate::harness::show(want)
        );
    }
    // The group goes on where it was: 30-0 is the next new entry.
    let next = String::from_utf8(c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "w3",
        "COUNT",
        "1",
        "STREAMS",
        "jobs",
        ">",
    ])?)?;
    ensure!(
        next.contains("31-0") && !next.contains("30-0"),
        "the group resumes after 30-0: {next}"
    );
    Ok(())
}

//! Streams against valkey-server 8.1.8, case by case: Valkey's parse order and wording for
//! every stream command, replies in RESP2 and RESP3; and the reply comparison the stream
//! tests share, which masks only clock readings (idle, seen and delivery times).

use anyhow::Result;

use crate::harness::RawConn;

const CASES: &[&[&str]] = &[
    &["XADD", "s", "0-0", "a", "1"],
    &["XADD", "s", "0", "a", "1"],
    &["EXISTS", "s"],
    &["XADD", "s", "1-1", "a", "1"],
    &["XADD", "s", "1-1", "a", "1"],
    &["XADD", "s", "1-0", "a", "1"],
    &["XADD", "s", "1-*", "b", "2"],
    &["XADD", "s", "1-2", "a"],
    &["XADD", "s", "1-5", "a", "1", "b"],
    &["XADD", "s", "x-1", "a", "1"],
    &["XADD", "s", "1-x", "a", "1"],
    &["XADD", "s", "*-1", "a", "1"],
    &["XADD", "s", "-", "a", "1"],
    &["XADD", "s", "+", "a", "1"],
    &["XADD", "s", "01-9", "a", "1"],
    &["XADD", "s", "+5", "a", "1"],
    &["XADD", "s", " 7", "a", "1"],
    &["XADD", "s", "18446744073709551616-0", "a", "1"],
    &["XADD", "s", "MAXLEN", "-1", "9-0", "a", "1"],
    &["XADD", "s", "MAXLEN", "x", "9-0", "a", "1"],
    &["XADD", "s", "MAXLEN", "1", "MINID", "1", "9-0", "a", "1"],
    &["XADD", "s", "LIMIT", "5", "9-0", "a", "1"],
    &["XADD", "s", "MAXLEN", "5", "LIMIT", "5", "9-0", "a", "1"],
    &[
        "XADD", "s", "MAXLEN", "=", "5", "LIMIT", "0", "9-0", "a", "1",
    ],
    &[
        "XADD", "s", "MAXLEN", "~", "5", "LIMIT", "-1", "9-0", "a", "1",
    ],
    &["XADD", "s", "MINID", "-", "9-0", "a", "1"],
    &["XADD", "s", "NOMKSTREAM", "10-0", "a", "1"],
    &["XADD", "nos", "NOMKSTREAM", "1-0", "a", "1"],
    &["EXISTS", "nos"],
    &["XADD", "s", "MAXLEN", "2", "11-0", "c", "3"],
    &["XRANGE", "s", "-", "+"],
    &["XLEN", "s"],
    &["XADD", "q", "MAXLEN", "0", "1-0", "a", "1"],
    &["XLEN", "q"],
    &["XINFO", "STREAM", "q"],
    &["SET", "str", "v"],
    &["XADD", "str", "1-0", "a", "1"],
    &["XADD", "str", "0-0", "a", "1"],
    &["XLEN", "str"],
    &["XRANGE", "str", "-", "+"],
    &["XDEL", "str", "bad"],
    &["XDEL", "nokey", "bad"],
    &["XDEL", "s", "bad"],
    &["XDEL", "s", "10-0", "10-0", "99-0"],
    &["XRANGE", "s", "(10-0", "+"],
    &["XRANGE", "s", "-", "(11-0"],
    &["XRANGE", "s", "(-", "+"],
    &["XRANGE", "s", "(", "+"],
    &["XRANGE", "s", "-", "+", "COUNT", "0"],
    &["XRANGE", "s", "-", "+", "COUNT", "-3"],
    &["XRANGE", "s", "-", "+", "COUNT"],
    &["XRANGE", "s", "-", "+", "COUNT", "x"],
    &["XRANGE", "s", "-", "+", "LIMIT", "1"],
    &["XRANGE", "nokey", "-", "+", "COUNT", "0"],
    &[
        "XRANGE",
        "s",
        "(18446744073709551615-18446744073709551615",
        "+",
    ],
    &["XRANGE", "s", "-", "(0-0"],
    &["XRANGE", "s", "11", "11"],
    &["XREVRANGE", "s", "+", "-", "COUNT", "1"],
    &["XREVRANGE", "s", "-", "+"],
    &["XTRIM", "s"],
    &["XTRIM", "s", "foo", "1"],
    &["XTRIM", "s", "MAXLEN"],
    &["XTRIM", "s", "MAXLEN", "~"],
    &["XTRIM", "s", "LIMIT", "2", "MAXLEN", "1"],
    &["XTRIM", "s", "MAXLEN", "1", "LIMIT", "2"],
    &["XTRIM", "str", "MAXLEN", "-5"],
    &["XTRIM", "str", "MAXLEN", "5"],
    &["XTRIM", "nokey", "MAXLEN", "5"],
    &["XTRIM", "s", "MAXLEN", "~", "0"],
    &["XINFO", "STREAM", "s"],
    &["XSETID", "s", "5-0"],
    &["XSETID", "s", "bad"],
    &["XSETID", "nokey", "5-0"],
    &["XSETID", "str", "5-0"],
    &["XSETID", "s", "20-0", "ENTRIESADDED", "-1"],
    &["XSETID", "s", "20-0", "MAXDELETEDID", "30-0"],
    &["XSETID", "s", "20-0", "ENTRIESADDED"],
    &[
        "XSETID",
        "s",
        "20-0",
        "ENTRIESADDED",
        "1",
        "MAXDELETEDID",
        "15-0",
    ],
    &["XINFO", "STREAM", "s"],
    &["XSETID", "s", "14-0"],
    &["XADD", "s", "19-0", "a", "1"],
    &["XADD", "s", "21-0", "a", "1"],
    &["XADD", "e", "1-0", "a", "1"],
    &["XSETID", "e", "0-5"],
    &["XREAD", "STREAMS", "s"],
    &["XREAD", "STREAMS", "s", "0", "e"],
    &["XREAD", "COUNT", "1", "STREAMS", "s", "e", "0", "0"],
    &["XREAD", "COUNT", "-1", "STREAMS", "s", "0"],
    &["XREAD", "STREAMS", "s", "$"],
    &["XREAD", "STREAMS", "s", "+"],
    &["XREAD", "STREAMS", "nokey", "+"],
    &["XREAD", "STREAMS", "s", ">"],
    &["XREAD", "STREAMS", "str", "0"],
    &["XREAD", "STREAMS", "s", "str", "0", "0"],
    &["XREAD", "GROUP", "g", "c", "STREAMS", "s", "0"],
    &["XREAD", "NOACK", "STREAMS", "s", "0"],
    &["XREAD", "BLOCK", "x", "STREAMS", "s", "0"],
    &["XREAD", "BLOCK", "-1", "STREAMS", "s", "0"],
    &["XREAD", "BLOCK", "0.5", "STREAMS", "s", "0"],
    &["XREAD", "BLOCK", "10", "STREAMS", "s", "$"],
    &["XREAD", "COUNT", "1", "BLOCK", "10", "STREAMS", "s", "0"],
    &["XREAD", "FOO", "STREAMS", "s", "0"],
    &["XREAD", "COUNT", "1", "s", "0"],
    &["XGROUP", "CREATE", "nokey", "g", "$"],
    &["XGROUP", "CREATE", "str", "g", "$"],
    &["XGROUP", "CREATE", "s", "g", "-"],
    &["XGROUP", "CREATE", "s", "g", "0", "ENTRIESREAD", "-2"],
    &["XGROUP", "CREATE", "s", "g", "0", "FOO"],
    &["XGROUP", "CREATE", "s", "g", "0"],
    &["XGROUP", "CREATE", "s", "g", "0"],
    &["XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"],
    &["XGROUP", "CREATE", "m2", "g", "bad", "MKSTREAM"],
    &["EXISTS", "m", "m2"],
    &["XGROUP", "SETID", "s", "nog", "0"],
    &["XGROUP", "SETID", "s", "g", "0", "MKSTREAM"],
    &["XGROUP", "SETID", "s", "g", "+"],
    &["XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "1"],
    &["XGROUP", "CREATECONSUMER", "s", "g", "c1"],
    &["XGROUP", "CREATECONSUMER", "s", "g", "c1"],
    &["XGROUP", "CREATECONSUMER", "s", "nog", "c1"],
    &["XGROUP", "DELCONSUMER", "s", "g", "nobody"],
    &["XGROUP", "DESTROY", "s", "nog"],
    &["XGROUP", "FOO", "s", "g"],
    &["XGROUP", "HELP"],
    &["XGROUP", "CREATE", "s"],
    &["XREADGROUP", "STREAMS", "s", ">"],
    &["XREADGROUP", "GROUP", "g", "STREAMS", "s", ">"],
    &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "$"],
    &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "+"],
    &["XREADGROUP", "GROUP", "nog", "c1", "STREAMS", "s", ">"],
    &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "nokey", ">"],
    &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "str", ">"],
    &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c1",
        "COUNT",
        "1",
        "STREAMS",
        "s",
        ">",
    ],
    &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"],
    &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"],
    &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"],
    &["XREADGROUP", "GROUP", "g", "c3", "STREAMS", "s", "0"],
    &["XINFO", "GROUPS", "s"],
    &["XPENDING", "s", "g"],
    &["XPENDING", "s", "nog"],
    &["XPENDING", "str", "g"],
    &["XPENDING", "s", "g", "-", "+"],
    &["XPENDING", "s", "g", "IDLE", "5", "-", "+"],
    &["XPENDING", "s", "g", "IDLE", "x", "-", "+", "10"],
    &["XPENDING", "s", "g", "-", "+", "x"],
    &["XPENDING", "s", "g", "-", "+", "0"],
    &["XPENDING", "s", "g", "IDLE", "99999999", "-", "+", "10"],
    &["XPENDING", "s", "g", "-", "+", "10", "nobody"],
    &["XDEL", "s", "19-0"],
    &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", "0"],
    &["XACK", "s", "g", "bad"],
    &["XACK", "nokey", "g", "bad"],
    &["XACK", "s", "nog", "bad"],
    &["XACK", "s", "g", "11-0", "11-0", "99-0"],
    &["XCLAIM", "s", "nog", "c", "0", "1-0"],
    &["XCLAIM", "s", "g", "c", "x", "1-0"],
    &["XCLAIM", "s", "g", "c", "0", "1-0", "BOGUS"],
    &["XCLAIM", "s", "g", "c", "0", "1-0", "IDLE", "x"],
    &["XCLAIM", "s", "g", "c", "0", "1-0", "TIME", "x"],
    &["XCLAIM", "s", "g", "c", "0", "1-0", "RETRYCOUNT", "x"],
    &["XCLAIM", "s", "g", "c", "0", "1-0", "LASTID", "x"],
    &["XCLAIM", "s", "g", "c3", "0", "19-0", "21-0", "JUSTID"],
    &["XCLAIM", "s", "g", "c3", "99999999", "21-0"],
    &[
        "XCLAIM",
        "s",
        "g",
        "c3",
        "0",
        "21-0",
        "RETRYCOUNT",
        "7",
        "TIME",
        "1000",
    ],
    &["XCLAIM", "s", "g", "c1", "0", "20-0", "FORCE"],
    &["XAUTOCLAIM", "s", "g", "c", "x", "0"],
    &["XAUTOCLAIM", "s", "g", "c", "0", "bad"],
    &["XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "0"],
    &["XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT"],
    &["XAUTOCLAIM", "s", "nog", "c", "0", "0"],
    &["XAUTOCLAIM", "s", "g", "c4", "0", "0", "COUNT", "1"],
    &[
        "XAUTOCLAIM",
        "s",
        "g",
        "c4",
        "0",
        "0",
        "COUNT",
        "1",
        "JUSTID",
    ],
    &["XAUTOCLAIM", "s", "g", "c4", "0", "0"],
    &["XINFO", "CONSUMERS", "s", "g"],
    &["XINFO", "CONSUMERS", "s", "nog"],
    &["XINFO", "CONSUMERS", "nokey", "g"],
    &["XINFO", "GROUPS", "str"],
    &["XINFO", "STREAM", "s", "FULL"],
    &["XINFO", "STREAM", "s", "FULL", "COUNT", "1"],
    &["XINFO", "STREAM", "s", "FULL", "COUNT"],
    &["XINFO", "STREAM", "s", "PARTIAL"],
    &["XINFO", "HELP"],
    &["XINFO", "FOO", "s"],
    &["XGROUP", "DELCONSUMER", "s", "g", "c4"],
    &["XGROUP", "DESTROY", "s", "g"],
    &["XINFO", "GROUPS", "s"],
    &["TYPE", "s"],
    &["OBJECT", "ENCODING", "s"],
    &["DEL", "s"],
    &["XLEN", "s"],
];

#[test]
fn stream_cases_match_valkey_in_resp2_and_resp3() -> Result<()> {
    for resp3 in [false, true] {
        let (_node, _valkey, mut ours, mut theirs) = crate::harness::node_and_valkey_in(resp3)?;
        for (i, cmd) in CASES.iter().enumerate() {
            same(
                &mut ours,
                &mut theirs,
                cmd,
                &format!("case {i} resp3={resp3}"),
            )?;
        }
    }
    Ok(())
}

/// One RESP frame as a tree, so clock readings can be masked before comparing.
enum Frame {
    Line(u8, Vec<u8>),
    Bulk(u8, Option<Vec<u8>>),
    Agg(u8, Option<Vec<Frame>>),
}

fn parse(b: &[u8], pos: &mut usize) -> Result<Frame> {
    let t = b[*pos];
    let end = *pos
        + b[*pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow::anyhow!("truncated frame"))?;
    let head = b[*pos + 1..end].to_vec();
    *pos = end + 2;
    let n = || -> Result<i64> { Ok(std::str::from_utf8(&head)?.parse()?) };
    Ok(match t {
        b'$' | b'=' | b'!' => {
            let len = n()?;
            if len < 0 {
                Frame::Bulk(t, None)
            } else {
                let data = b[*pos..*pos + len as usize].to_vec();
                *pos += len as usize + 2;
                Frame::Bulk(t, Some(data))
            }
        }
        b'*' | b'%' | b'~' | b'>' => {
            let len = n()?;
            if len < 0 {
                Frame::Agg(t, None)
            } else {
                let items = if t == b'%' { len * 2 } else { len };
                let mut v = Vec::new();
                for _ in 0..items {
                    v.push(parse(b, pos)?);
                }
                Frame::Agg(t, Some(v))
            }
        }
        _ => Frame::Line(t, head),
    })
}

fn is_id(f: &Frame) -> bool {
    matches!(f, Frame::Bulk(_, Some(b)) if b.contains(&b'-') && b.iter().all(|c| c.is_ascii_digit() || *c == b'-'))
}

fn is_int(f: &Frame) -> bool {
    matches!(f, Frame::Line(b':', _))
}

/// Replaces what reads the clock (idle times, delivery and seen times) and Valkey's internal
/// radix-tree node count with 0.
fn mask(f: &mut Frame) {
    let Frame::Agg(_, Some(items)) = f else {
        return;
    };
    for x in items.iter_mut() {
        mask(x);
    }
    let zero = || Frame::Line(b':', b"0".to_vec());
    for i in 0..items.len().saturating_sub(1) {
        let key = match &items[i] {
            Frame::Bulk(_, Some(k)) => k.clone(),
            _ => continue,
        };
        let always = [&b"idle"[..], b"seen-time", b"radix-tree-nodes"].contains(&key.as_slice());
        let unless_never = [&b"inactive"[..], b"active-time"].contains(&key.as_slice());
        if let Frame::Line(b':', v) = &items[i + 1] {
            if always || (unless_never && v.as_slice() != b"-1") {
                items[i + 1] = zero();
            }
        }
    }
    // Pending entries: [id, consumer, time, deliveries] and a consumer's [id, time, deliveries].
    if items.len() == 4 && is_id(&items[0]) && is_int(&items[2]) && is_int(&items[3]) {
        items[2] = zero();
    }
    if items.len() == 3 && is_id(&items[0]) && is_int(&items[1]) && is_int(&items[2]) {
        items[1] = zero();
    }
}

fn emit(f: &Frame, out: &mut Vec<u8>) {
    match f {
        Frame::Line(t, h) => {
            out.push(*t);
            out.extend_from_slice(h);
            out.extend_from_slice(b"\r\n");
        }
        Frame::Bulk(t, None) => out.extend_from_slice(format!("{}-1\r\n", *t as char).as_bytes()),
        Frame::Bulk(t, Some(d)) => {
            out.extend_from_slice(format!("{}{}\r\n", *t as char, d.len()).as_bytes());
            out.extend_from_slice(d);
            out.extend_from_slice(b"\r\n");
        }
        Frame::Agg(t, None) => out.extend_from_slice(format!("{}-1\r\n", *t as char).as_bytes()),
        Frame::Agg(t, Some(v)) => {
            let n = if *t == b'%' { v.len() / 2 } else { v.len() };
            out.extend_from_slice(format!("{}{}\r\n", *t as char, n).as_bytes());
            for x in v {
                emit(x, out);
            }
        }
    }
}

pub(crate) fn masked(raw: &[u8]) -> Result<Vec<u8>> {
    let mut f = parse(raw, &mut 0)?;
    mask(&mut f);
    let mut out = Vec::new();
    emit(&f, &mut out);
    Ok(out)
}

/// Sends `cmd` to both servers; the replies must be identical once clock readings are masked.
pub(crate) fn same<A: AsRef<[u8]>>(
    ours: &mut RawConn,
    theirs: &mut RawConn,
    cmd: &[A],
    at: &str,
) -> Result<()> {
    let (a, b) = (ours.cmd(cmd)?, theirs.cmd(cmd)?);
    let (ma, mb) = (masked(&a)?, masked(&b)?);
    if ma != mb {
        let shown: Vec<String> = cmd
            .iter()
            .map(|x| String::from_utf8_lossy(x.as_ref()).into_owned())
            .collect();
        let d = ma.iter().zip(&mb).take_while(|(x, y)| x == y).count();
        let around =
            |m: &[u8]| crate::harness::show(&m[d.saturating_sub(60)..m.len().min(d + 120)]);
        panic!(
            "{at}: {shown:?}\n ours:   {}\n theirs: {}\n differ at {d}: ours {} / theirs {}",
            crate::harness::show(&a),
            crate::harness::show(&b),
            around(&ma),
            around(&mb),
        );
    }
    Ok(())
}

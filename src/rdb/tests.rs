//! Byte vectors here were produced by valkey-server 8.1.8's DUMP (see the integration tests
//! for the live comparison); hand-made blobs cover the encodings only older servers write.

use bytes::Bytes;

use super::object::read_object;
use super::*;

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[test]
fn crc64_is_jones_as_valkey_computes_it() {
    assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (a, rest) = data.split_at(333);
    assert_eq!(crc64(crc64(0, a), rest), crc64(0, &data));
}

#[test]
fn valkey_payloads_read_back() {
    let cases: Vec<(&[u8], Object)> = vec![
        (
            b"\x00\x05hello\x0b\x00\n\xadb\x05\x98\xab\xc9\x83",
            Object::Str(Bytes::from("hello")),
        ),
        (
            b"\x00\xc190\x0b\x00\xf4KWTnc\xe10",
            Object::Str(Bytes::from("12345")),
        ),
        (
            b"\x12\x01\x02\x0f\x0f\x00\x00\x00\x03\x00\x81a\x02\x81b\x02\x01\x01\xff\x0b\x00\x89\xc4\x169\xbaQ\xb0\xab",
            Object::List(vec![b("a"), b("b"), b("1")]),
        ),
        (
            b"\x0b\x0e\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00\x03\x00\x0b\x00\xcc\xdd\xe1\x91\x90\xf1\xa4\x92",
            Object::Set(vec![b("1"), b("2"), b("3")]),
        ),
        (
            b"\x14\r\r\x00\x00\x00\x02\x00\x81a\x02\x81b\x02\xff\x0b\x00\n\xec\n\xb4I\xa3\xd6T",
            Object::Set(vec![b("a"), b("b")]),
        ),
        (
            b"\x10\r\r\x00\x00\x00\x02\x00\x81f\x02\x81v\x02\xff\x0b\x00I.\x807\xde\xcb\xe1\x14",
            Object::Hash(vec![(b("f"), b("v"))]),
        ),
        (
            b"\x11\x14\x14\x00\x00\x00\x04\x00\x81a\x02\x831.5\x04\x81b\x02\x02\x01\xff\x0b\x00\x93\xdd\tVR\x87n\xea",
            Object::ZSet(vec![(b("a"), 1.5), (b("b"), 2.0)]),
        ),
        (
            b"\x00\xc3\t@d\x01aa\xe0W\x00\x01aa\x0b\x00\x81|\x08tM\xf2\x1b\xf8",
            Object::Str(Bytes::from("a".repeat(100))),
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(read_payload(payload), Ok(want.clone()), "{payload:?}");
        // Every proper prefix and every single-bit flip is refused, never misread.
        for cut in 0..payload.len() {
            assert!(read_payload(&payload[..cut]).is_err());
        }
        for i in 0..payload.len() {
            let mut p = payload.to_vec();
            p[i] ^= 0x10;
            assert!(read_payload(&p).is_err(), "flip at {i}");
        }
    }
    // Our own DUMP of a short string is byte for byte Valkey's.
    assert_eq!(
        dump_payload(&Object::Str(Bytes::from("12345"))),
        b"\x00\xc190\x0b\x00\xf4KWTnc\xe10"
    );
    assert_eq!(
        dump_payload(&Object::Str(Bytes::from("hello"))),
        b"\x00\x05hello\x0b\x00\n\xadb\x05\x98\xab\xc9\x83"
    );
}

#[test]
fn written_objects_read_back() {
    let big = "x".repeat(20000);
    let objs = vec![
        Object::Str(Bytes::from("")),
        Object::Str(Bytes::from("-129")),
        Object::Str(Bytes::from("007")),
        Object::Str(Bytes::from(big.clone())),
        Object::List(vec![b("a"), b(&big), b("-5"), b("")]),
        Object::Set(vec![b("1"), b("x")]),
        Object::Hash(vec![(b("f"), b("1")), (b("g"), b(&big))]),
        Object::ZSet(vec![
            (b("a"), f64::NEG_INFINITY),
            (b("b"), -0.5),
            (b("c"), 1e300),
        ]),
    ];
    for o in objs {
        let mut back = read_payload(&dump_payload(&o));
        // Sorted sets are written highest score first, as Valkey does.
        if let Ok(Object::ZSet(m)) = back.as_mut() {
            m.reverse();
        }
        assert_eq!(back, Ok(o));
    }
    // Versions past 12 and a payload with trailing bytes are refused like Valkey does.
    let mut p = dump_payload(&Object::Str(Bytes::from("v")));
    let n = p.len();
    p[n - 10] = 13;
    let crc = crc64(0, &p[..n - 8]);
    p[n - 8..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(read_payload(&p), Err(PayloadError::VersionOrChecksum));
    let mut body = Vec::new();
    write_object(&mut body, &Object::Str(Bytes::from("v")));
    body.push(0);
    body.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(read_payload(&body), Err(PayloadError::BadData));
}

fn read(ty: u8, data: &[u8]) -> Result<Object> {
    let mut r = Reader::new(data);
    read_object(&mut r, ty)
}

fn rdb_string(blob: &[u8]) -> Vec<u8> {
    let mut out = vec![0x40 | (blob.len() >> 8) as u8, blob.len() as u8];
    out.extend_from_slice(blob);
    out
}

#[test]
fn ziplist_intset_and_zipmap_encodings_of_older_servers() {
    // A ziplist of "ab", 7 (4-bit immediate), -2 (int8 form), 300 (int16), and 70000 (int24).
    let mut entries = Vec::new();
    let mut prev = 0u8;
    for e in [
        &b"\x02ab"[..],
        b"\xf8",
        b"\xfe\xfe",
        b"\xc0\x2c\x01",
        b"\xf0\x70\x11\x01",
    ] {
        entries.push(prev);
        entries.extend_from_slice(e);
        prev = 1 + e.len() as u8;
    }
    let total = 10 + entries.len() + 1;
    let mut zl = (total as u32).to_le_bytes().to_vec();
    zl.extend_from_slice(&0u32.to_le_bytes());
    zl.extend_from_slice(&5u16.to_le_bytes());
    zl.extend_from_slice(&entries);
    zl.push(0xff);
    let want = vec![b("ab"), b("7"), b("-2"), b("300"), b("70000")];
    assert_eq!(
        read(10, &rdb_string(&zl)).unwrap(),
        Object::List(want.clone())
    );
    // The same ziplist as one quicklist node.
    let mut ql = vec![1u8];
    ql.extend_from_slice(&rdb_string(&zl));
    assert_eq!(read(14, &ql).unwrap(), Object::List(want));
    // A wrong prevlen is refused.
    let mut bad = zl.clone();
    bad[10 + 4] = 9;
    assert!(read(10, &rdb_string(&bad)).is_err());

    let mut is = 4u32.to_le_bytes().to_vec();
    is.extend_from_slice(&2u32.to_le_bytes());
    is.extend_from_slice(&(-70000i32).to_le_bytes());
    is.extend_from_slice(&5i32.to_le_bytes());
    assert_eq!(
        read(11, &rdb_string(&is)).unwrap(),
        Object::Set(vec![b("-70000"), b("5")])
    );
    let mut unsorted = is.clone();
    unsorted[8..12].copy_from_slice(&9i32.to_le_bytes());
    assert!(read(11, &rdb_string(&unsorted)).is_err());

    let zm = b"\x01\x01f\x02\x00vv\xff";
    assert_eq!(
        read(9, &rdb_string(zm)).unwrap(),
        Object::Hash(vec![(b("f"), b("vv"))])
    );
}

#[test]
fn listpack_integer_forms_and_damage() {
    // 13-bit -1, 16-bit -300, 24-bit 100000, 32-bit -3e9/2, 64-bit 1<<40, 12-bit-length string.
    let long = "s".repeat(100);
    let mut entries: Vec<Vec<u8>> = vec![
        vec![0xdf, 0xff],
        [&[0xf1][..], &(-300i16).to_le_bytes()].concat(),
        vec![0xf2, 0xa0, 0x86, 0x01],
        [&[0xf3][..], &(-1_500_000_000i32).to_le_bytes()].concat(),
        [&[0xf4][..], &(1i64 << 40).to_le_bytes()].concat(),
        [&[0xe0, 100][..], long.as_bytes()].concat(),
    ];
    let mut lp = vec![0u8; 6];
    for e in entries.iter_mut() {
        let n = e.len();
        lp.extend_from_slice(e);
        if n < 128 {
            lp.push(n as u8);
        } else {
            lp.extend_from_slice(&[(n >> 7) as u8, 0x80 | (n & 0x7f) as u8]);
        }
    }
    lp.push(0xff);
    let total = lp.len() as u32;
    lp[0..4].copy_from_slice(&total.to_le_bytes());
    lp[4..6].copy_from_slice(&6u16.to_le_bytes());
    let mut ql = vec![1u8, 2];
    ql.extend_from_slice(&rdb_string(&lp));
    assert_eq!(
        read(18, &ql).unwrap(),
        Object::List(vec![
            b("-1"),
            b("-300"),
            b("100000"),
            b("-1500000000"),
            b(&(1i64 << 40).to_string()),
            b(&long),
        ])
    );
    let mut wrong_count = lp.clone();
    wrong_count[4] = 5;
    let mut ql = vec![1u8, 2];
    ql.extend_from_slice(&rdb_string(&wrong_count));
    assert!(read(18, &ql).is_err());
}

#[test]
fn empty_and_duplicate_collections_are_refused() {
    assert!(read(2, b"\x00").is_err());
    assert!(read(2, b"\x02\x01a\x01a").is_err());
    assert!(read(4, b"\x02\x01a\x01x\x01a\x01y").is_err());
    assert!(matches!(read(7, b""), Err(RdbError::Unsupported { .. })));
    // A stream with no bytes is cut short, not unsupported.
    assert!(matches!(read(21, b""), Err(RdbError::Truncated(_))));
    assert!(matches!(read(99, b""), Err(RdbError::Corrupt { .. })));
}

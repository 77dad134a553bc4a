//! Unit tests of the HyperLogLog format: layouts, hashing, promotion, merge and counts.
use super::*;

const MAX: usize = DEFAULT_SPARSE_MAX_BYTES;

fn build(range: std::ops::RangeInclusive<u64>, max_bytes: usize) -> Vec<u8> {
    let mut h = new_sparse();
    for i in range {
        add(&mut h, i.to_string().as_bytes(), max_bytes).expect("add");
    }
    h
}

fn card(h: &[u8]) -> u64 {
    count(&mut h.to_vec()).expect("count").0
}

fn regs(h: &[u8]) -> Box<[u8; HLL_REGISTERS]> {
    registers(h).expect("registers")
}

fn assert_close(got: u64, n: u64) {
    let err = (got as f64 - n as f64).abs() / n as f64;
    assert!(err < 0.02, "estimate {got} for {n} is off by {err}");
}

#[test]
fn hashing_matches_reference() {
    // From a separate big-integer transcription of the C function.
    assert_eq!(murmurhash64a(b"", HASH_SEED), 0xd8df_ea65_85bc_9732);
    assert_eq!(murmurhash64a(b"a", HASH_SEED), 0x53d2_470a_9b43_b1a7);
    assert_eq!(murmurhash64a(b"hello", HASH_SEED), 0x0f65_6f01_eecf_e400);
    assert_eq!(murmurhash64a(b"12345678", HASH_SEED), 0x95eb_b863_8913_2953);
    assert_eq!(
        murmurhash64a(b"0123456789abcdefg", HASH_SEED),
        0xf6c8_2f54_9ace_b6e9
    );
    // 0x..e400: low 14 bits are 0x2400 and bit 14 is set, so the pattern length is 1.
    assert_eq!(pat_len(b"hello"), (9216, 1));
    assert_eq!(pat_len(b"a"), (12711, 2));
}

#[test]
fn empty_and_created_layout() {
    let h = new_sparse();
    assert_eq!(h, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
    assert_eq!(decode_sparse(&h).as_deref(), Some("Z:16384"));
    assert_eq!(card(&h), 0);
    let created = pfadd(None, std::iter::empty::<&[u8]>(), MAX).expect("pfadd");
    let created = created.expect("a missing key is created");
    assert_eq!((created.len(), created[15]), (18, 0x80));
    assert_eq!(
        pfadd(Some(&created[..]), [&b"hello"[..]], MAX).map(|o| o.is_some()),
        Ok(true)
    );
}

#[test]
fn sparse_split_and_merge_layout() {
    let mut h = new_sparse();
    assert_eq!(add(&mut h, b"hello", MAX), Ok(true));
    assert_eq!(&h[15..], &[0x80, 0x63, 0xff, 0x80, 0x5b, 0xfe]);
    assert_eq!(add(&mut h, b"hello", MAX), Ok(false));
    assert_eq!(add(&mut h, b"a", MAX), Ok(true));
    assert_eq!(&h[16..], &[0x63, 0xff, 0x80, 0x4d, 0xa5, 0x84, 0x4e, 0x57]);
    assert_eq!(
        decode_sparse(&h).as_deref(),
        Some("Z:9216 v:1,1 Z:3494 v:2,1 Z:3672")
    );

    let mut h = new_sparse();
    assert_eq!(sparse_set(&mut h, 100, 3, MAX), Ok(true));
    assert_eq!(sparse_set(&mut h, 101, 3, MAX), Ok(true));
    assert_eq!(decode_sparse(&h).as_deref(), Some("Z:100 v:3,2 Z:16282"));
    assert_eq!(sparse_set(&mut h, 101, 2, MAX), Ok(false));
    assert_eq!(sparse_set(&mut h, 99, 3, MAX), Ok(true));
    assert_eq!(decode_sparse(&h).as_deref(), Some("Z:99 v:3,3 Z:16282"));
}

#[test]
fn promotion_rules() {
    let mut big = new_sparse();
    assert_eq!(sparse_set(&mut big, 7, 33, MAX), Ok(true));
    assert_eq!(
        (big.len(), big[4], regs(&big)[7]),
        (HLL_DENSE_SIZE, HLL_DENSE, 33)
    );
    // Splitting the only XZERO adds 3 bytes: 21 > 20 forces dense.
    let (mut small, mut fits) = (new_sparse(), new_sparse());
    assert_eq!(add(&mut small, b"hello", 20), Ok(true));
    assert_eq!((small[4], regs(&small)[9216]), (HLL_DENSE, 1));
    assert_eq!(add(&mut fits, b"hello", 21), Ok(true));
    assert_eq!(fits[4], HLL_SPARSE);

    let sparse = build(1..=5000, 1 << 16);
    let promoted = build(1..=5000, MAX);
    assert_eq!((sparse[4], promoted[4]), (HLL_SPARSE, HLL_DENSE));
    assert_eq!(regs(&sparse), regs(&promoted));
    assert_eq!(card(&sparse), card(&promoted));
    assert_close(card(&sparse), 5000);
}

#[test]
fn documented_examples() {
    let h = pfadd(
        None,
        ["a", "b", "c", "d", "e", "f", "g"].map(str::as_bytes),
        MAX,
    );
    assert_eq!(card(&h.expect("ok").expect("new")), 7);
    let h1 = pfadd(None, ["foo", "bar", "zap", "a"].map(str::as_bytes), MAX);
    let h2 = pfadd(None, ["a", "b", "c", "foo"].map(str::as_bytes), MAX);
    let (h1, h2) = (h1.expect("ok").expect("new"), h2.expect("ok").expect("new"));
    let h3 = pfmerge(None, [Some(&h1[..]), Some(&h2[..])], MAX).expect("merge");
    assert_eq!((h3[4], card(&h3)), (HLL_SPARSE, 6));
}

#[test]
fn accuracy_in_both_encodings() {
    // Exact values from the same separate transcription, estimator included.
    let sparse = build(1..=1000, MAX);
    assert_eq!(sparse[4], HLL_SPARSE);
    assert_close(card(&sparse), 1000);
    assert_eq!(card(&sparse), 1001);
    assert_eq!(card(&to_dense(&sparse).expect("dense")), 1001);
    assert_eq!(count_registers(&regs(&sparse)), 1001);

    let dense = build(1..=100_000, MAX);
    assert_eq!(dense[4], HLL_DENSE);
    assert_close(card(&dense), 100_000);
    assert_eq!(card(&dense), 99_562);
    let all = regs(&dense);
    let mut sparse = new_sparse();
    for (i, &v) in all.iter().enumerate().filter(|&(_, &v)| v > 0) {
        sparse_set(&mut sparse, i, v, usize::MAX).expect("set");
    }
    assert_eq!(sparse[4], HLL_SPARSE);
    assert_eq!(regs(&sparse), all);
    assert_eq!(card(&sparse), 99_562);
}

#[test]
fn merge_equals_union() {
    let (a, b, all) = (
        build(1..=600, MAX),
        build(400..=1000, MAX),
        build(1..=1000, MAX),
    );
    let merged = pfmerge(None, [Some(&a[..]), None, Some(&b[..])], MAX).expect("merge");
    assert_eq!((merged[4], merged[15]), (HLL_SPARSE, 0x80));
    assert_eq!(regs(&merged), regs(&all));
    assert_eq!(card(&merged), card(&all));
    let mut m = Merger::new();
    m.add(&a).expect("a");
    m.add(&b).expect("b");
    assert_eq!(m.count(), card(&all));

    // A dense input makes the destination dense; its header (stale cache) is kept.
    let mut dest = build(1..=10, MAX);
    let (c, written) = count(&mut dest).expect("count");
    assert!(written);
    assert_eq!(count(&mut dest), Ok((c, false)));
    let src = to_dense(&build(5..=50, MAX)).expect("dense");
    let out = pfmerge(Some(&dest[..]), [Some(&src[..])], MAX).expect("merge");
    assert_eq!((out.len(), &out[..5]), (HLL_DENSE_SIZE, &b"HYLL\0"[..]));
    let mut cache = c.to_le_bytes();
    cache[7] |= 0x80;
    assert_eq!(&out[8..16], &cache);
    assert_eq!(regs(&out), regs(&build(1..=50, MAX)));
}

#[test]
fn validation() {
    let dense = to_dense(&new_sparse()).expect("dense");
    assert_eq!(validate(&dense), Ok(()));
    assert_eq!(validate(&dense[..dense.len() - 1]), Err(HllError::NotHll));
    assert_eq!(validate(b"HYLL"), Err(HllError::NotHll));
    for (at, byte) in [(0, b'h'), (4, 2)] {
        let mut bad = new_sparse();
        bad[at] = byte;
        assert_eq!(validate(&bad), Err(HllError::NotHll));
    }
    // XZERO:16384 then ZERO:1 covers 16385 registers; the cache flag forces a recount.
    let mut over = new_sparse();
    over.push(0x00);
    over[15] = 0x80;
    assert_eq!(validate(&over), Ok(()));
    assert_eq!(validate_strict(&over), Err(HllError::Corrupt));
    assert_eq!(count(&mut over.clone()), Err(HllError::Corrupt));
    assert_eq!(to_dense(&over), Err(HllError::Corrupt));
    assert_eq!(
        pfmerge(None, [Some(&over[..])], MAX),
        Err(HllError::Corrupt)
    );
    let mut truncated = new_sparse();
    truncated.truncate(17);
    assert_eq!(validate_strict(&truncated), Err(HllError::Corrupt));
    let texts = [HllError::NotHll.to_string(), HllError::Corrupt.to_string()];
    assert_eq!(
        texts[0],
        "WRONGTYPE Key is not a valid HyperLogLog string value."
    );
    assert_eq!(texts[1], "INVALIDOBJ Corrupted HLL object detected");
}

//! The compact blobs stored inside RDB strings: listpack, ziplist, intset and zipmap. Each is
//! read into its elements as byte strings (integers as their decimal text), validating every
//! header, length and terminator so a damaged blob is refused rather than half-read.

/// Reads a listpack: `total u32 | count u16 | entries | 0xFF`.
pub fn listpack(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    if b.len() < 7 || u32::from_le_bytes(b[0..4].try_into().ok()?) as usize != b.len() {
        return None;
    }
    let count = u16::from_le_bytes([b[4], b[5]]);
    let mut out = Vec::new();
    let mut p = 6usize;
    loop {
        let enc = *b.get(p)?;
        if enc == 0xff {
            break;
        }
        let start = p;
        let (value, len) = listpack_entry(&b[p..])?;
        p += len;
        // The back-length: the entry's size again, 7 bits per byte.
        let back = backlen_size(len);
        let stored = b.get(p..p + back)?;
        if decode_backlen(stored) != Some(len) {
            return None;
        }
        p += back;
        debug_assert!(p > start);
        out.push(value);
    }
    if p + 1 != b.len() || (count != u16::MAX && count as usize != out.len()) {
        return None;
    }
    Some(out)
}

/// Bytes of an element's back-length when the element takes `l` bytes.
pub fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// The back-length is stored last byte first, each byte's top bit marking a continuation.
fn decode_backlen(b: &[u8]) -> Option<usize> {
    let mut v = 0usize;
    for (i, &x) in b.iter().rev().enumerate() {
        let last = i + 1 == b.len();
        if (x & 0x80 == 0) != last {
            return None;
        }
        v |= ((x & 0x7f) as usize) << (7 * i);
    }
    Some(v)
}

/// One listpack entry (without its back-length): the value and the bytes it took.
fn listpack_entry(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let e = b[0];
    let int = |v: i64, len: usize| Some((v.to_string().into_bytes(), len));
    let string = |hdr: usize, n: usize| Some((b.get(hdr..hdr + n)?.to_vec(), hdr + n));
    if e & 0x80 == 0 {
        return int((e & 0x7f) as i64, 1);
    }
    if e & 0xc0 == 0x80 {
        return string(1, (e & 0x3f) as usize);
    }
    if e & 0xe0 == 0xc0 {
        let u = (((e & 0x1f) as i64) << 8) | *b.get(1)? as i64;
        return int(if u >= 1 << 12 { u - (1 << 13) } else { u }, 2);
    }
    if e & 0xf0 == 0xe0 {
        return string(2, (((e & 0x0f) as usize) << 8) | *b.get(1)? as usize);
    }
    match e {
        0xf0 => string(
            5,
            u32::from_le_bytes(b.get(1..5)?.try_into().ok()?) as usize,
        ),
        0xf1 => int(i16::from_le_bytes(b.get(1..3)?.try_into().ok()?) as i64, 3),
        0xf2 => {
            let s = b.get(1..4)?;
            let u = s[0] as i64 | (s[1] as i64) << 8 | (s[2] as i64) << 16;
            int(if u >= 1 << 23 { u - (1 << 24) } else { u }, 4)
        }
        0xf3 => int(i32::from_le_bytes(b.get(1..5)?.try_into().ok()?) as i64, 5),
        0xf4 => int(i64::from_le_bytes(b.get(1..9)?.try_into().ok()?), 9),
        _ => None,
    }
}

/// Reads a ziplist: `bytes u32 | tail u32 | count u16 | entries | 0xFF`, each entry
/// `prevlen | encoding | data`.
pub fn ziplist(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    if b.len() < 11 || u32::from_le_bytes(b[0..4].try_into().ok()?) as usize != b.len() {
        return None;
    }
    let count = u16::from_le_bytes([b[8], b[9]]);
    let mut out = Vec::new();
    let mut p = 10usize;
    let mut prev_len = 0usize;
    loop {
        let first = *b.get(p)?;
        if first == 0xff {
            break;
        }
        let start = p;
        let stored_prev = if first < 254 {
            p += 1;
            first as usize
        } else if first == 254 {
            let v = u32::from_le_bytes(b.get(p + 1..p + 5)?.try_into().ok()?) as usize;
            p += 5;
            v
        } else {
            return None;
        };
        if stored_prev != prev_len {
            return None;
        }
        let e = *b.get(p)?;
        let (value, len) = match e >> 6 {
            0 => {
                let n = (e & 0x3f) as usize;
                (b.get(p + 1..p + 1 + n)?.to_vec(), 1 + n)
            }
            1 => {
                let n = (((e & 0x3f) as usize) << 8) | *b.get(p + 1)? as usize;
                (b.get(p + 2..p + 2 + n)?.to_vec(), 2 + n)
            }
            2 => {
                if e != 0x80 {
                    return None;
                }
                let n = u32::from_be_bytes(b.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                (b.get(p + 5..p + 5 + n)?.to_vec(), 5 + n)
            }
            _ => {
                let (v, n): (i64, usize) = match e {
                    0xc0 => (
                        i16::from_le_bytes(b.get(p + 1..p + 3)?.try_into().ok()?) as i64,
                        2,
                    ),
                    0xd0 => (
                        i32::from_le_bytes(b.get(p + 1..p + 5)?.try_into().ok()?) as i64,
                        4,
                    ),
                    0xe0 => (i64::from_le_bytes(b.get(p + 1..p + 9)?.try_into().ok()?), 8),
                    0xf0 => {
                        let s = b.get(p + 1..p + 4)?;
                        let u = s[0] as i64 | (s[1] as i64) << 8 | (s[2] as i64) << 16;
                        (if u >= 1 << 23 { u - (1 << 24) } else { u }, 3)
                    }
                    0xfe => (*b.get(p + 1)? as i8 as i64, 1),
                    0xf1..=0xfd => ((e & 0x0f) as i64 - 1, 0),
                    _ => return None,
                };
                (v.to_string().into_bytes(), 1 + n)
            }
        };
        p += len;
        prev_len = p - start;
        out.push(value);
    }
    if p + 1 != b.len() || (count != u16::MAX && count as usize != out.len()) {
        return None;
    }
    Some(out)
}

/// Reads an intset: `width u32 | count u32 | values` (LE, width 2, 4 or 8), sorted and unique.
pub fn intset(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let width = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?) as usize;
    let count = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || b.len() != 8 + width.checked_mul(count)? {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    let mut last: Option<i64> = None;
    for c in b[8..].chunks_exact(width) {
        let v = match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => i64::from_le_bytes(c.try_into().ok()?),
        };
        if last.is_some_and(|l| l >= v) {
            return None;
        }
        last = Some(v);
        out.push(v.to_string().into_bytes());
    }
    Some(out)
}

/// Reads a zipmap (hashes written before RDB 4): `count u8 | (len key len free value pad)* |
/// 0xFF`, as alternating fields and values.
pub fn zipmap(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut p = 1usize;
    let len_at = |p: &mut usize| -> Option<Option<usize>> {
        let f = *b.get(*p)?;
        match f {
            0xff => Some(None),
            254 => {
                let v = u32::from_le_bytes(b.get(*p + 1..*p + 5)?.try_into().ok()?) as usize;
                *p += 5;
                Some(Some(v))
            }
            n => {
                *p += 1;
                Some(Some(n as usize))
            }
        }
    };
    while let Some(klen) = len_at(&mut p)? {
        out.push(b.get(p..p + klen)?.to_vec());
        p += klen;
        let vlen = len_at(&mut p)??;
        let free = *b.get(p)? as usize;
        p += 1;
        out.push(b.get(p..p + vlen)?.to_vec());
        p += vlen + free;
    }
    (p + 1 == b.len()).then_some(out)
}

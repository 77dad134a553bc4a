//! Bitmaps and bitfields over string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD and BITFIELD_RO, with Valkey's argument order, error texts and range rules.
//!
//! Bit 0 is the most significant bit of byte 0, as in Valkey. A string grows with zero
//! bytes when a write reaches past its end and keeps its TTL; BITOP replaces its destination.
//! Must not: keep bitmaps in any other form than the string value (what GET returns).

use bytes::{Bytes, BytesMut};

use super::args::{int, is, parse_i64};
use super::strings::as_str;
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::{Entry, Update, Value};
use crate::resp::Reply;

const BAD_OFFSET: &str = "bit offset is not an integer or out of range";
const BAD_TYPE: &str =
    "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// A bit offset argument; with `width`, `#n` means `n * width`.
fn bit_offset(ctx: &Ctx, arg: &[u8], width: Option<u32>) -> Result<u64, CmdError> {
    let (hash, digits) = match (arg.first(), width) {
        (Some(b'#'), Some(_)) if arg.len() > 1 => (true, &arg[1..]),
        _ => (false, arg),
    };
    let mut v = parse_i64(digits).ok_or_else(|| CmdError::err(BAD_OFFSET))?;
    if let (true, Some(w)) = (hash, width) {
        v = v.wrapping_mul(w as i64);
    }
    let max_bytes = ctx.node.limits().max_bulk_len as i64;
    if v < 0 || (v >> 3) >= max_bytes {
        return Err(CmdError::err(BAD_OFFSET));
    }
    Ok(v as u64)
}

/// A string value to read bits from: `None` when the key is missing.
fn read_string(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Bytes>, CmdError> {
    match ctx.ks.lookup(key)? {
        None => Ok(None),
        Some(e) => Ok(Some(as_str(&e)?.clone())),
    }
}

/// Runs `f` on the string at `key` grown to at least `len` bytes; its TTL stays.
fn with_grown<R>(
    ctx: &mut Ctx,
    key: &[u8],
    len: usize,
    only_if_changed: bool,
    f: impl FnOnce(&mut BytesMut) -> R,
) -> Result<R, CmdError> {
    ctx.ks.update(key, |old| {
        let (cur, expire_at) = match &old {
            Some(e) => match as_str(e) {
                Ok(b) => (b.clone(), e.expire_at),
                Err(err) => return (Update::Keep, Err(err)),
            },
            None => (Bytes::new(), None),
        };
        let mut buf = BytesMut::from(&cur[..]);
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let r = f(&mut buf);
        // SETBIT of a bit already so in a string long enough writes nothing (Valkey 7.2 on:
        // no event, no propagation).
        if only_if_changed && old.is_some() && buf[..] == cur[..] {
            return (Update::Keep, Ok(r));
        }
        let entry = Entry {
            value: Value::Str(buf.freeze()),
            expire_at,
        };
        (Update::Put(entry), Ok(r))
    })?
}

fn get_bit(s: &[u8], bit: u64) -> u8 {
    s.get((bit >> 3) as usize)
        .map_or(0, |b| (b >> (7 - (bit & 7))) & 1)
}

fn set_bit(s: &mut [u8], bit: u64, on: bool) {
    let byte = &mut s[(bit >> 3) as usize];
    let mask = 1u8 << (7 - (bit & 7));
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
}

pub fn setbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let bit = bit_offset(ctx, &args[2], None)?;
    let bad = || CmdError::err("bit is not an integer or out of range");
    let on = match parse_i64(&args[3]).ok_or_else(bad)? {
        0 => false,
        1 => true,
        _ => return Err(bad()),
    };
    if let Some(len) = ctx.ks.chunked_len_locked(&args[1])? {
        let byte = bit >> 3;
        let cur = ctx.ks.chunked_bytes(&args[1], byte, 1)?[0];
        let mut b = [cur];
        let old = get_bit(&b, bit & 7);
        set_bit(&mut b, bit & 7, on);
        // A bit already so inside the string writes nothing (as below).
        if b[0] != cur || byte >= len {
            ctx.ks.chunked_write(&args[1], byte, &b)?;
        }
        return Ok(Reply::Int(old as i64));
    }
    let old = with_grown(ctx, &args[1], (bit >> 3) as usize + 1, true, |s| {
        let old = get_bit(s, bit);
        set_bit(s, bit, on);
        old
    })?;
    Ok(Reply::Int(old as i64))
}

pub fn getbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let bit = bit_offset(ctx, &args[2], None)?;
    if let Some(len) = ctx.ks.chunked_len(&args[1])? {
        if bit >> 3 >= len {
            return Ok(Reply::Int(0));
        }
        let b = ctx.ks.chunked_bytes(&args[1], bit >> 3, 1)?;
        return Ok(Reply::Int(get_bit(&b, bit & 7) as i64));
    }
    let s = read_string(ctx, &args[1])?.unwrap_or_default();
    Ok(Reply::Int(get_bit(&s, bit) as i64))
}

/// BITCOUNT's and BITPOS's `[start [end [BYTE|BIT]]]`, resolved as Valkey does against the
/// string's length: the inclusive bit range, or `None` when it is empty.
fn bit_range(len: usize, start: i64, end: i64, bit_unit: bool) -> Option<(u64, u64)> {
    let total = if bit_unit { len as i64 * 8 } else { len as i64 };
    let fix = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let (start, mut end) = (fix(start), fix(end));
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    Some(if bit_unit {
        (start as u64, end as u64)
    } else {
        (start as u64 * 8, end as u64 * 8 + 7)
    })
}

fn unit(arg: &Bytes) -> Result<bool, CmdError> {
    if is(arg, "bit") {
        Ok(true)
    } else if is(arg, "byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

fn count_ones(s: &[u8], from: u64, to: u64) -> u64 {
    let (fb, lb) = ((from >> 3) as usize, (to >> 3) as usize);
    let mut n: u64 = s[fb..=lb].iter().map(|b| b.count_ones() as u64).sum();
    // Bits of the edge bytes outside the range.
    let head = s[fb] & !(0xFFu8 >> (from & 7));
    let tail_mask = if to & 7 == 7 {
        0
    } else {
        0xFFu8 >> ((to & 7) + 1)
    };
    let tail = s[lb] & tail_mask;
    n -= head.count_ones() as u64 + tail.count_ones() as u64;
    n
}

pub fn bitcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = match args.len() {
        2 => None,
        // Valkey 8 lets `end` default to the last byte.
        3..=5 => {
            let start = int(&args[2])?;
            let end = args.get(3).map(|a| int(a)).transpose()?.unwrap_or(-1);
            let bit_unit = match args.get(4) {
                Some(a) => unit(a)?,
                None => false,
            };
            Some((start, end, bit_unit))
        }
        _ => return Err(CmdError::Syntax),
    };
    let (start, end, bit_unit) = range.unwrap_or((0, -1, false));
    if let Some(len) = ctx.ks.chunked_len(&args[1])? {
        let Some((from, to)) = bit_range(len as usize, start, end, bit_unit) else {
            return Ok(Reply::Int(0));
        };
        return Ok(Reply::Int(chunked_count(ctx, &args[1], from, to)? as i64));
    }
    let Some(s) = read_string(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    Ok(Reply::Int(match bit_range(s.len(), start, end, bit_unit) {
        Some((from, to)) => count_ones(&s, from, to) as i64,
        None => 0,
    }))
}

/// Set bits of a chunked string in the inclusive bit range (chunks never written count 0).
fn chunked_count(ctx: &mut Ctx, key: &[u8], from: u64, to: u64) -> Result<u64, CmdError> {
    let (fb, lb) = (from >> 3, to >> 3);
    let mut n = 0u64;
    ctx.ks.chunked_scan(key, fb, lb, |_, c| {
        n += c.iter().map(|b| b.count_ones() as u64).sum::<u64>();
        true
    })?;
    // Bits of the edge bytes outside the range.
    let head = ctx.ks.chunked_bytes(key, fb, 1)?[0] & !(0xFFu8 >> (from & 7));
    let tail_mask = if to & 7 == 7 {
        0
    } else {
        0xFFu8 >> ((to & 7) + 1)
    };
    let tail = ctx.ks.chunked_bytes(key, lb, 1)?[0] & tail_mask;
    Ok(n - head.count_ones() as u64 - tail.count_ones() as u64)
}

/// The first bit equal to `want` in the inclusive bit range of a chunked string: for 1 only
/// stored chunks are read; for 0 a chunk never written answers at once.
fn chunked_find(
    ctx: &mut Ctx,
    key: &[u8],
    from: u64,
    to: u64,
    want: u8,
) -> Result<Option<u64>, CmdError> {
    let first_in = |at: u64, c: &[u8]| -> Option<u64> {
        let skip = if want == 1 { 0x00 } else { 0xFF };
        for (i, &b) in c.iter().enumerate() {
            if b == skip {
                continue;
            }
            let base = (at + i as u64) * 8;
            for bit in 0..8u64 {
                let p = base + bit;
                if p >= from && p <= to && (b >> (7 - bit)) & 1 == want {
                    return Some(p);
                }
            }
        }
        None
    };
    let (fb, lb) = (from >> 3, to >> 3);
    if want == 1 {
        let mut found = None;
        ctx.ks.chunked_scan(key, fb, lb, |at, c| {
            found = first_in(at, c);
            found.is_none()
        })?;
        return Ok(found);
    }
    let chunk = crate::keyspace::CHUNK;
    let mut at = fb;
    while at <= lb {
        let n = (chunk - at % chunk).min(lb - at + 1);
        let c = ctx.ks.chunked_bytes(key, at, n)?;
        if let Some(p) = first_in(at, &c) {
            return Ok(Some(p));
        }
        at += n;
    }
    Ok(None)
}

pub fn bitpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let want = int(&args[2])?;
    if want != 0 && want != 1 {
        return Err(CmdError::err("The bit argument must be 1 or 0."));
    }
    let (start, end, bit_unit) = match args.len() {
        3 => (0, None, false),
        4..=6 => {
            let start = int(&args[3])?;
            let bit_unit = match args.get(5) {
                Some(a) => unit(a)?,
                None => false,
            };
            let end = args.get(4).map(|a| int(a)).transpose()?;
            (start, end, bit_unit)
        }
        _ => return Err(CmdError::Syntax),
    };
    let big = ctx.ks.chunked_len(&args[1])?;
    let s = match big {
        Some(_) => Bytes::new(),
        None => match read_string(ctx, &args[1])? {
            Some(s) => s,
            None => return Ok(Reply::Int(if want == 1 { -1 } else { 0 })),
        },
    };
    let len = big.map_or(s.len(), |n| n as usize);
    let Some((from, to)) = bit_range(len, start, end.unwrap_or(-1), bit_unit) else {
        return Ok(Reply::Int(-1));
    };
    let want = want as u8;
    let found = match big {
        Some(_) => chunked_find(ctx, &args[1], from, to, want)?,
        None => (from..=to).find(|&b| get_bit(&s, b) == want),
    };
    if let Some(p) = found {
        return Ok(Reply::Int(p as i64));
    }
    // No clear bit up to the end of the string: the zero padding past it is the answer,
    // unless the caller bounded the range.
    Ok(Reply::Int(if want == 0 && end.is_none() {
        ((to >> 3) + 1) as i64 * 8
    } else {
        -1
    }))
}

pub fn bitop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    #[derive(Clone, Copy, PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = [
        ("and", Op::And),
        ("or", Op::Or),
        ("xor", Op::Xor),
        ("not", Op::Not),
    ]
    .into_iter()
    .find(|(n, _)| is(&args[1], n))
    .map(|(_, o)| o)
    .ok_or(CmdError::Syntax)?;
    if op == Op::Not && args.len() != 4 {
        return Err(CmdError::err(
            "BITOP NOT must be called with a single source key.",
        ));
    }
    // Valkey looks at the sources first: one of another type stops it before the
    // destination is touched (an expired destination stays until something looks at it).
    for k in &args[3..] {
        if let Some((tag, _)) = ctx.ks.peek(k)? {
            if !crate::keyspace::is_string_tag(tag) {
                return Err(CmdError::WrongType);
            }
        }
    }
    let dest = &args[2];
    let keys: Vec<&[u8]> = std::iter::once(&dest[..])
        .chain(args[3..].iter().map(|k| &k[..]))
        .collect();
    ctx.ks.update_many(&keys, |entries| {
        let mut updates: Vec<Update> = entries.iter().map(|_| Update::Keep).collect();
        let mut srcs: Vec<Bytes> = Vec::with_capacity(entries.len() - 1);
        for e in &entries[1..] {
            match e {
                None => srcs.push(Bytes::new()),
                Some(e) => match as_str(e) {
                    Ok(b) => srcs.push(b.clone()),
                    Err(err) => return (updates, Err(err)),
                },
            }
        }
        let len = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
        let byte = |s: &Bytes, i: usize| s.get(i).copied().unwrap_or(0);
        let out: Vec<u8> = (0..len)
            .map(|i| {
                let mut it = srcs.iter().map(|s| byte(s, i));
                let first = it.next().unwrap_or(0);
                match op {
                    Op::Not => !first,
                    Op::And => it.fold(first, |a, b| a & b),
                    Op::Or => it.fold(first, |a, b| a | b),
                    Op::Xor => it.fold(first, |a, b| a ^ b),
                }
            })
            .collect();
        updates[0] = if out.is_empty() {
            Update::Delete
        } else {
            Update::Put(Entry::string(Bytes::from(out)))
        };
        (updates, Ok(Reply::Int(len as i64)))
    })?
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq)]
enum FieldOp {
    Get,
    Set(i64),
    Incr(i64),
}

#[derive(Clone, Copy)]
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

fn field_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let bad = || CmdError::err(BAD_TYPE);
    let signed = match arg.first() {
        Some(b'i' | b'I') => true,
        Some(b'u' | b'U') => false,
        _ => return Err(bad()),
    };
    let bits = parse_i64(&arg[1..]).ok_or_else(bad)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(bad());
    }
    Ok((signed, bits as u32))
}

fn parse_fields(ctx: &Ctx, args: &[Bytes], read_only: bool) -> Result<Vec<Field>, CmdError> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let rem = args.len() - j - 1;
        let a = &args[j];
        let op = if is(a, "get") && rem >= 2 {
            FieldOp::Get
        } else if is(a, "set") && rem >= 3 {
            FieldOp::Set(0)
        } else if is(a, "incrby") && rem >= 3 {
            FieldOp::Incr(0)
        } else if is(a, "overflow") && rem >= 1 {
            let o = &args[j + 1];
            overflow = if is(o, "wrap") {
                Overflow::Wrap
            } else if is(o, "sat") {
                Overflow::Sat
            } else if is(o, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::err("Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = bit_offset(ctx, &args[j + 2], Some(bits))?;
        let op = match op {
            FieldOp::Get => FieldOp::Get,
            FieldOp::Set(_) => FieldOp::Set(int(&args[j + 3])?),
            FieldOp::Incr(_) => FieldOp::Incr(int(&args[j + 3])?),
        };
        if read_only && op != FieldOp::Get {
            return Err(CmdError::err(
                "BITFIELD_RO only supports the GET subcommand",
            ));
        }
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok(fields)
}

fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..bits as u64).fold(0u64, |v, j| (v << 1) | get_bit(s, offset + j) as u64)
}

fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(s, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

fn set_value(s: &mut [u8], offset: u64, bits: u32, v: u64) {
    for j in 0..bits as u64 {
        let on = (v >> (bits as u64 - 1 - j)) & 1 == 1;
        set_bit(s, offset + j, on);
    }
}

/// Valkey's checkUnsignedBitfieldOverflow: whether `value + incr` leaves `bits` bits, and
/// the wrapped or saturated result.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = (1u64 << bits) - 1;
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Sat { max } else { wrap() })
    } else if incr < 0 && incr < minincr {
        (true, if ow == Overflow::Sat { 0 } else { wrap() })
    } else {
        (false, value.wrapping_add(incr as u64))
    }
}

/// Valkey's checkSignedBitfieldOverflow.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                (c | mask) as i64
            } else {
                (c & !mask) as i64
            }
        } else {
            c as i64
        }
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Sat { max } else { wrap() })
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        (true, if ow == Overflow::Sat { min } else { wrap() })
    } else {
        (false, value.wrapping_add(incr))
    }
}

/// One field operation on `s` (long enough for it); its reply.
fn apply(s: &mut [u8], f: &Field) -> Reply {
    let (old_u, old_s) = (
        get_unsigned(s, f.offset, f.bits),
        get_signed(s, f.offset, f.bits),
    );
    let (overflow, new, reply) = match (f.op, f.signed) {
        (FieldOp::Get, true) => return Reply::Int(old_s),
        (FieldOp::Get, false) => return Reply::Int(old_u as i64),
        (FieldOp::Incr(by), true) => {
            let (o, v) = signed_overflow(old_s, by, f.bits, f.overflow);
            (o, v as u64, v)
        }
        (FieldOp::Set(v), true) => {
            let (o, w) = signed_overflow(v, 0, f.bits, f.overflow);
            (o, w as u64, old_s)
        }
        (FieldOp::Incr(by), false) => {
            let (o, v) = unsigned_overflow(old_u, by, f.bits, f.overflow);
            (o, v, v as i64)
        }
        (FieldOp::Set(v), false) => {
            let (o, w) = unsigned_overflow(v as u64, 0, f.bits, f.overflow);
            (o, w, old_u as i64)
        }
    };
    if overflow && f.overflow == Overflow::Fail {
        return Reply::Nil;
    }
    set_value(s, f.offset, f.bits, new);
    Reply::Int(reply)
}

fn bitfield_generic(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> CmdResult {
    let fields = parse_fields(ctx, args, read_only)?;
    let reach = fields
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.offset + f.bits as u64 - 1)
        .max();
    let Some(last_bit) = reach else {
        // Only reads: a missing key reads as zeros.
        let s = read_string(ctx, &args[1])?.unwrap_or_default();
        let mut buf = s.to_vec();
        let need = fields
            .iter()
            .map(|f| ((f.offset + f.bits as u64 + 7) >> 3) as usize)
            .max()
            .unwrap_or(0);
        if buf.len() < need {
            buf.resize(need, 0);
        }
        return Ok(Reply::Array(
            fields.iter().map(|f| apply(&mut buf, f)).collect(),
        ));
    };
    let replies = with_grown(ctx, &args[1], (last_bit >> 3) as usize + 1, false, |s| {
        fields
            .iter()
            .map(|f| {
                if f.op == FieldOp::Get {
                    // A read past the end sees zeros, as writes grew the string only so far.
                    let need = ((f.offset + f.bits as u64 + 7) >> 3) as usize;
                    if s.len() < need {
                        let mut pad = s.to_vec();
                        pad.resize(need, 0);
                        return apply(&mut pad, f);
                    }
                }
                apply(s, f)
            })
            .collect()
    })?;
    Ok(Reply::Array(replies))
}

pub fn bitfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

pub fn bitfield_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_respect_edge_bits() {
        let s = [0xFFu8, 0xFF, 0xFF];
        assert_eq!(count_ones(&s, 0, 23), 24);
        assert_eq!(count_ones(&s, 3, 3), 1);
        assert_eq!(count_ones(&s, 5, 17), 13);
        assert_eq!(count_ones(&[0b1010_0000], 0, 2), 2);
    }

    #[test]
    fn overflow_follows_valkey() {
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), (true, 4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), (true, 255));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), (true, 0));
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Wrap), (true, -128));
        assert_eq!(signed_overflow(-128, -1, 8, Overflow::Sat), (true, -128));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            (true, i64::MIN)
        );
        assert_eq!(signed_overflow(3, 4, 8, Overflow::Fail), (false, 7));
    }
}

//! HyperLogLog strings in exactly the byte format valkey-server 8.1 writes (its `hyperloglog.c`).
//!
//! Owns: the 16-byte header and its cached cardinality, the dense (6-bit registers) and sparse
//! (ZERO / XZERO / VAL run-length opcodes) encodings, MurmurHash64A, register updates including
//! the sparse opcode splitting/merging and the promotion to dense, the Ertl cardinality
//! estimator, and the PFADD / PFCOUNT / PFMERGE byte transformations. Users GET an HLL from one
//! server and SET it on the other, so every byte (including the stale cache bytes PFMERGE keeps)
//! must match what Valkey would have produced for the same command sequence.
//!
//! Must not: touch storage, the keyspace, the network or replies. Callers look values up, check
//! the key's type, persist the bytes returned and turn [`HllError`] into the reply text.

use std::fmt::Write as _;

pub const HLL_MAGIC: &[u8; 4] = b"HYLL";
pub const HLL_P: u32 = 14;
pub const HLL_REGISTERS: usize = 1 << HLL_P;
pub const HLL_HDR_SIZE: usize = 16;
const HLL_BITS: usize = 6;
pub const HLL_DENSE_SIZE: usize = HLL_HDR_SIZE + (HLL_REGISTERS * HLL_BITS).div_ceil(8);
pub const HLL_DENSE: u8 = 0;
pub const HLL_SPARSE: u8 = 1;
/// Valkey's `hll-sparse-max-bytes` default.
pub const DEFAULT_SPARSE_MAX_BYTES: usize = 3000;

/// Bits of the hash left after the register index; the longest zero run is `HLL_Q + 1`.
const HLL_Q: usize = 64 - HLL_P as usize;
const REGISTER_MAX: u32 = (1 << HLL_BITS) - 1;
const ENCODING_AT: usize = 4;
const CARD_AT: usize = 8;
/// The cache-invalid flag is the top bit of the cardinality's most significant byte.
const CACHE_FLAG_AT: usize = 15;
const CACHE_INVALID: u8 = 0x80;
const XZERO_BIT: u8 = 0x40;
const VAL_BIT: u8 = 0x80;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const HASH_SEED: u32 = 0xadc8_3b19;
/// 0.5 / ln(2), the asymptotic alpha of the estimator (the same double as Valkey's literal).
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// A histogram slot per possible byte value, so raw registers can never index out of range.
type Histogram = [u32; 256];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HllError {
    /// The string is not an HLL at all (header checks); Valkey answers with WRONGTYPE.
    #[error("WRONGTYPE Key is not a valid HyperLogLog string value.")]
    NotHll,
    /// The header is fine but the registers cannot be decoded.
    #[error("INVALIDOBJ Corrupted HLL object detected")]
    Corrupt,
}

// ------------------------------------------------------------------ hashing

/// Little-endian value of up to 8 bytes.
fn le_u64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// MurmurHash2, 64-bit, in Valkey's endian-neutral form (blocks read little endian).
pub fn murmurhash64a(key: &[u8], seed: u32) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = u64::from(seed) ^ (key.len() as u64).wrapping_mul(M);
    let mut blocks = key.chunks_exact(8);
    for block in &mut blocks {
        let mut k = le_u64(block);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        h ^= le_u64(tail);
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and the length of its `0..01` pattern (1..=51).
pub fn pat_len(element: &[u8]) -> (usize, u8) {
    let hash = murmurhash64a(element, HASH_SEED);
    let index = (hash & (HLL_REGISTERS as u64 - 1)) as usize;
    // The sentinel bit caps the count at Q+1 even when every remaining bit is zero.
    let rest = (hash >> HLL_P) | (1u64 << HLL_Q);
    (index, 1 + rest.trailing_zeros() as u8)
}

// ------------------------------------------------------------------ header

/// Valkey's `isHLLObjectOrReply` minus the type check. Only the header is inspected: a sparse
/// body with bad runs passes here as in Valkey, and fails later with [`HllError::Corrupt`].
pub fn validate(bytes: &[u8]) -> Result<(), HllError> {
    if bytes.len() < HLL_HDR_SIZE || &bytes[..4] != HLL_MAGIC {
        return Err(HllError::NotHll);
    }
    match bytes[ENCODING_AT] {
        HLL_DENSE if bytes.len() == HLL_DENSE_SIZE => Ok(()),
        HLL_SPARSE => Ok(()),
        _ => Err(HllError::NotHll),
    }
}

/// [`validate`] plus a full walk of a sparse body (runs must cover exactly 16384 registers).
/// Not used by the commands themselves; useful when importing data.
pub fn validate_strict(bytes: &[u8]) -> Result<(), HllError> {
    validate(bytes)?;
    if bytes[ENCODING_AT] == HLL_SPARSE && !walk_sparse(bytes, |_, _, _| {}) {
        return Err(HllError::Corrupt);
    }
    Ok(())
}

fn invalidate_cache(hll: &mut [u8]) {
    if let Some(b) = hll.get_mut(CACHE_FLAG_AT) {
        *b |= CACHE_INVALID;
    }
}

/// Valkey's `createHLLObject`: a sparse header followed by XZERO opcodes covering every register
/// (one opcode, so 18 bytes). The cache field is zero, i.e. a valid cached cardinality of 0.
pub fn new_sparse() -> Vec<u8> {
    let mut s = Vec::with_capacity(HLL_HDR_SIZE + 2);
    s.extend_from_slice(HLL_MAGIC);
    s.push(HLL_SPARSE);
    s.resize(HLL_HDR_SIZE, 0);
    let mut left = HLL_REGISTERS;
    while left > 0 {
        let run = left.min(XZERO_MAX_LEN);
        s.extend_from_slice(&xzero_op(run));
        left -= run;
    }
    s
}

// ------------------------------------------------------------------ dense registers

/// Valkey reads one byte past the last register (the sds terminator, always 0); so do we.
fn byte_at(buf: &[u8], i: usize) -> u8 {
    buf.get(i).copied().unwrap_or(0)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * HLL_BITS / 8;
    let fb = (i * HLL_BITS) & 7;
    let b0 = u32::from(byte_at(regs, byte));
    let b1 = u32::from(byte_at(regs, byte + 1));
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX) as u8
}

fn dense_put(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * HLL_BITS / 8;
    let fb = (i * HLL_BITS) & 7;
    let fb8 = 8 - fb;
    let v = u32::from(val);
    if let Some(b) = regs.get_mut(byte) {
        *b &= !((REGISTER_MAX << fb) as u8);
        *b |= (v << fb) as u8;
    }
    // For the last register this touches only the terminator, with a no-op mask.
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((REGISTER_MAX >> fb8) as u8);
        *b |= (v >> fb8) as u8;
    }
}

/// `hllDenseSet`: raise register `i` to `count`; true when it changed.
fn dense_set(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

// ------------------------------------------------------------------ sparse opcodes

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Op {
    fn at(buf: &[u8], p: usize) -> Op {
        let b = byte_at(buf, p);
        if b & 0xc0 == 0 {
            Op::Zero(usize::from(b & 0x3f) + 1)
        } else if b & 0xc0 == XZERO_BIT {
            Op::XZero(((usize::from(b & 0x3f) << 8) | usize::from(byte_at(buf, p + 1))) + 1)
        } else {
            Op::Val(((b >> 2) & 0x1f) + 1, usize::from(b & 0x3) + 1)
        }
    }

    fn size(self) -> usize {
        if let Op::XZero(_) = self {
            2
        } else {
            1
        }
    }

    fn span(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }
}

fn val_op(value: u8, len: usize) -> u8 {
    ((value - 1) << 2) | (len - 1) as u8 | VAL_BIT
}

fn xzero_op(len: usize) -> [u8; 2] {
    let l = len - 1;
    [(l >> 8) as u8 | XZERO_BIT, (l & 0xff) as u8]
}

/// Visits every run of a sparse HLL as (first register, length, value; 0 for zero runs).
/// False when a run overflows the register count or the runs do not cover all registers.
fn walk_sparse(hll: &[u8], mut visit: impl FnMut(usize, usize, u8)) -> bool {
    let mut idx = 0usize;
    let mut p = HLL_HDR_SIZE;
    while p < hll.len() {
        let op = Op::at(hll, p);
        let run = op.span();
        if run + idx > HLL_REGISTERS {
            return false;
        }
        let value = match op {
            Op::Val(v, _) => v,
            _ => 0,
        };
        visit(idx, run, value);
        idx += run;
        p += op.size();
    }
    idx == HLL_REGISTERS
}

/// `hllSparseToDense`: the whole header (cache included) is kept, only the encoding changes.
fn sparse_to_dense(hll: &[u8]) -> Result<Vec<u8>, HllError> {
    if hll.get(ENCODING_AT) == Some(&HLL_DENSE) {
        return Ok(hll.to_vec());
    }
    let mut dense = vec![0u8; HLL_DENSE_SIZE];
    let hdr = hll.len().min(HLL_HDR_SIZE);
    dense[..hdr].copy_from_slice(&hll[..hdr]);
    dense[ENCODING_AT] = HLL_DENSE;
    let regs = &mut dense[HLL_HDR_SIZE..];
    let valid = walk_sparse(hll, |first, run, value| {
        if value != 0 {
            for i in first..first + run {
                dense_put(regs, i, value);
            }
        }
    });
    if valid {
        Ok(dense)
    } else {
        Err(HllError::Corrupt)
    }
}

fn promote(hll: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    let mut dense = sparse_to_dense(hll)?;
    // Promotion only happens when the register must grow, so this always changes it.
    dense_set(&mut dense[HLL_HDR_SIZE..], index, count);
    *hll = dense;
    Ok(true)
}

/// `hllSparseSet`: raise register `index` to `count` in place, splitting the covering opcode and
/// re-merging equal neighbouring VALs exactly as Valkey does, since the resulting opcode layout is
/// history dependent and is what GET returns. Promotes to dense when the value does not fit a VAL
/// or the string would grow past `max_bytes`. Like Valkey, the sparse body is not fully
/// validated unless a promotion walks it.
fn sparse_set(
    hll: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, HllError> {
    if count > VAL_MAX_VALUE {
        return promote(hll, index, count);
    }

    // Step 1: find the opcode covering `index`.
    let end = hll.len();
    let mut p = HLL_HDR_SIZE;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut span = 0usize;
    while p < end {
        let op = Op::at(hll, p);
        span = op.span();
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += op.size();
        first += span;
    }
    if span == 0 || p >= end {
        return Err(HllError::Corrupt);
    }
    let op = Op::at(hll, p);

    // Step 2: the trivial in-place updates, else split the opcode around `index`.
    let in_place = match op {
        Op::Val(old, _) if old >= count => return Ok(false),
        Op::Val(_, 1) | Op::Zero(1) => true,
        _ => false,
    };
    if in_place {
        hll[p] = val_op(count, 1);
    } else {
        // The split-off parts keep the old opcode's value; zero runs use ZERO up to 64 registers.
        let push_run = |seq: &mut Vec<u8>, len: usize| match op {
            Op::Val(cur, _) => seq.push(val_op(cur, len)),
            _ if len > ZERO_MAX_LEN => seq.extend_from_slice(&xzero_op(len)),
            _ => seq.push((len - 1) as u8),
        };
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        if index != first {
            push_run(&mut seq, index - first);
        }
        seq.push(val_op(count, 1));
        if index != last {
            push_run(&mut seq, last - index);
        }

        // Step 3: substitute the sequence, unless the string would outgrow the sparse limit.
        let old_len = op.size();
        let new_len = end + seq.len() - old_len;
        if seq.len() > old_len && new_len > max_bytes {
            return promote(hll, index, count);
        }
        let tail = (p + old_len).min(end);
        let _replaced: Vec<u8> = hll.splice(p..tail, seq).collect();
        // Only differs when a corrupt XZERO was cut off by the end of the string: Valkey then
        // keeps the logical length and the last written byte lands on the terminator.
        hll.truncate(new_len);
    }

    // Step 4: merge adjacent equal VALs, scanning at most five opcodes from the previous one.
    let mut p = prev.unwrap_or(HLL_HDR_SIZE);
    let mut scan = 5;
    while p < hll.len() && scan > 0 {
        scan -= 1;
        let b = hll[p];
        if b & 0xc0 == XZERO_BIT {
            p += 2;
            continue;
        }
        if b & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < hll.len() && hll[p + 1] & VAL_BIT != 0 {
            if let (Op::Val(v1, l1), Op::Val(v2, l2)) = (Op::at(hll, p), Op::at(hll, p + 1)) {
                if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                    hll[p + 1] = val_op(v1, l1 + l2);
                    hll.remove(p);
                    // Stay on the merged opcode: it may merge with the next one too.
                    continue;
                }
            }
        }
        p += 1;
    }

    invalidate_cache(hll);
    Ok(true)
}

/// Raise one register of a validated HLL (either encoding); true when it changed.
fn set_register(
    hll: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, HllError> {
    match hll.get(ENCODING_AT).copied() {
        Some(HLL_DENSE) if hll.len() == HLL_DENSE_SIZE => {
            Ok(dense_set(&mut hll[HLL_HDR_SIZE..], index, count))
        }
        Some(HLL_SPARSE) => sparse_set(hll, index, count, max_bytes),
        _ => Err(HllError::Corrupt),
    }
}

// ------------------------------------------------------------------ counting

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        // C writes pow(1 - x, 2); compilers lower that to this exact product.
        let d = 1.0 - x;
        z -= d * d * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// Ertl's improved raw estimator ("New cardinality estimation algorithms for HyperLogLog
/// sketches"), with Valkey's operation order so the rounding matches.
fn estimate(h: &Histogram) -> u64 {
    let m = HLL_REGISTERS as f64;
    let mut z = m * tau((m - f64::from(h[HLL_Q + 1])) / m);
    for j in (1..=HLL_Q).rev() {
        z += f64::from(h[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(h[0]) / m);
    // llroundl rounds half away from zero, as f64::round does.
    (ALPHA_INF * m * m / z).round() as u64
}

fn histogram(hll: &[u8]) -> Result<Histogram, HllError> {
    let mut h = [0u32; 256];
    match hll.get(ENCODING_AT).copied() {
        Some(HLL_DENSE) => {
            let regs = &hll[HLL_HDR_SIZE..];
            for i in 0..HLL_REGISTERS {
                h[usize::from(dense_get(regs, i))] += 1;
            }
        }
        Some(HLL_SPARSE) => {
            let valid = walk_sparse(hll, |_, run, value| h[usize::from(value)] += run as u32);
            if !valid {
                return Err(HllError::Corrupt);
            }
        }
        _ => return Err(HllError::NotHll),
    }
    Ok(h)
}

/// Single-key PFCOUNT. Returns the cardinality and whether the header was rewritten: a stale
/// cache is recomputed and stored with the invalid flag cleared, and Valkey persists and
/// propagates that change, so when the flag is true the caller must store `hll`.
pub fn count(hll: &mut [u8]) -> Result<(u64, bool), HllError> {
    validate(hll)?;
    if hll[CACHE_FLAG_AT] & CACHE_INVALID == 0 {
        return Ok((le_u64(&hll[CARD_AT..CARD_AT + 8]), false));
    }
    let card = estimate(&histogram(hll)?);
    hll[CARD_AT..CARD_AT + 8].copy_from_slice(&card.to_le_bytes());
    Ok((card, true))
}

/// The cardinality of raw registers (one byte each), as multi-key PFCOUNT computes it; no cache.
pub fn count_registers(regs: &[u8; HLL_REGISTERS]) -> u64 {
    let mut h = [0u32; 256];
    for &r in regs.iter() {
        h[usize::from(r)] += 1;
    }
    estimate(&h)
}

// ------------------------------------------------------------------ merging

fn merge_raw(into: &mut [u8; HLL_REGISTERS], hll: &[u8]) -> Result<(), HllError> {
    if hll[ENCODING_AT] == HLL_DENSE {
        let regs = &hll[HLL_HDR_SIZE..];
        for (i, slot) in into.iter_mut().enumerate() {
            let v = dense_get(regs, i);
            if v > *slot {
                *slot = v;
            }
        }
        return Ok(());
    }
    let valid = walk_sparse(hll, |first, run, value| {
        for slot in &mut into[first..first + run] {
            if value > *slot {
                *slot = value;
            }
        }
    });
    if valid {
        Ok(())
    } else {
        Err(HllError::Corrupt)
    }
}

/// `hllMerge`: `into[i] = max(into[i], register i of hll)`, after the header checks.
pub fn merge_registers(into: &mut [u8; HLL_REGISTERS], hll: &[u8]) -> Result<(), HllError> {
    validate(hll)?;
    merge_raw(into, hll)
}

/// The registers of an HLL, one byte each (PFDEBUG GETREG).
pub fn registers(hll: &[u8]) -> Result<Box<[u8; HLL_REGISTERS]>, HllError> {
    let mut regs = Box::new([0u8; HLL_REGISTERS]);
    merge_registers(&mut regs, hll)?;
    Ok(regs)
}

/// The dense form of an HLL (unchanged if already dense), for PFDEBUG TODENSE / GETREG.
pub fn to_dense(hll: &[u8]) -> Result<Vec<u8>, HllError> {
    validate(hll)?;
    sparse_to_dense(hll)
}

/// Accumulates keys in command-argument order for multi-key PFCOUNT and for PFMERGE, so the first
/// failing key decides the error exactly as in Valkey. Missing keys are simply not added.
pub struct Merger {
    max: Box<[u8; HLL_REGISTERS]>,
    use_dense: bool,
}

impl Default for Merger {
    fn default() -> Self {
        Self::new()
    }
}

impl Merger {
    pub fn new() -> Self {
        Merger {
            max: Box::new([0u8; HLL_REGISTERS]),
            use_dense: false,
        }
    }

    /// Header checks then register max; the caller has already answered WRONGTYPE for non-strings.
    pub fn add(&mut self, hll: &[u8]) -> Result<(), HllError> {
        validate(hll)?;
        if hll[ENCODING_AT] == HLL_DENSE {
            self.use_dense = true;
        }
        merge_raw(&mut self.max, hll)
    }

    /// Multi-key PFCOUNT's answer.
    pub fn count(&self) -> u64 {
        count_registers(&self.max)
    }

    /// PFMERGE's new destination value; always store it. `dest` must be the destination's current
    /// value, which must also have been [`Merger::add`]ed first (it is PFMERGE's first key).
    /// If any input was dense the destination becomes dense (keeping its header, so the stale
    /// cached value survives under the invalid flag); otherwise each non-zero register is raised
    /// through the sparse path, which may still promote. The cache is always invalidated.
    pub fn finish(&self, dest: Option<&[u8]>, max_bytes: usize) -> Result<Vec<u8>, HllError> {
        let mut out = match dest {
            Some(d) => {
                validate(d)?;
                d.to_vec()
            }
            None => new_sparse(),
        };
        if self.use_dense {
            out = sparse_to_dense(&out)?;
            let regs = &mut out[HLL_HDR_SIZE..];
            for (i, &v) in self.max.iter().enumerate() {
                dense_put(regs, i, v);
            }
        } else {
            for (i, &v) in self.max.iter().enumerate() {
                if v == 0 {
                    continue;
                }
                // Valkey ignores the result here: the destination was already checked by add().
                let _ = set_register(&mut out, i, v, max_bytes);
            }
        }
        invalidate_cache(&mut out);
        Ok(out)
    }
}

// ------------------------------------------------------------------ commands

/// Adds one element to a validated HLL; true when a register changed, in which case the cache
/// flag is set as PFADD does. May replace the buffer with its dense form.
pub fn add(hll: &mut Vec<u8>, element: &[u8], sparse_max_bytes: usize) -> Result<bool, HllError> {
    let (index, count) = pat_len(element);
    let changed = set_register(hll, index, count, sparse_max_bytes)?;
    if changed {
        invalidate_cache(hll);
    }
    Ok(changed)
}

/// PFADD on the key's current value (`None` when missing). `Some(bytes)` means reply 1 and store
/// the bytes; `None` means reply 0 and nothing changed. A missing key is always created, even with
/// no elements. On error Valkey keeps (unpropagated) whatever earlier elements changed in memory;
/// callers wanting that can drive [`add`] themselves.
pub fn pfadd<'a>(
    current: Option<&[u8]>,
    elements: impl IntoIterator<Item = &'a [u8]>,
    sparse_max_bytes: usize,
) -> Result<Option<Vec<u8>>, PfaddError> {
    let (mut hll, mut updated) = match current {
        Some(v) => {
            validate(v).map_err(|error| PfaddError {
                error,
                partial: None,
            })?;
            (v.to_vec(), false)
        }
        None => (new_sparse(), true),
    };
    for e in elements {
        match add(&mut hll, e, sparse_max_bytes) {
            Ok(changed) => updated |= changed,
            // Valkey keeps what the elements before the corrupt run changed (cache untouched).
            Err(error) => {
                return Err(PfaddError {
                    error,
                    partial: updated.then_some(hll),
                })
            }
        }
    }
    if updated {
        invalidate_cache(&mut hll);
        Ok(Some(hll))
    } else {
        Ok(None)
    }
}

/// A PFADD that met a corrupt HLL: the error, and the bytes as the elements before it left
/// them when any changed (the caller stores those, as Valkey keeps them).
#[derive(Debug, PartialEq)]
pub struct PfaddError {
    pub error: HllError,
    pub partial: Option<Vec<u8>>,
}

/// PFMERGE in one call: `dest` is the destination's current value, `sources` the values of the
/// source keys in argument order (`None` for missing keys). Type errors for non-string keys are
/// the caller's, in argument order, before calling.
pub fn pfmerge<'a>(
    dest: Option<&[u8]>,
    sources: impl IntoIterator<Item = Option<&'a [u8]>>,
    sparse_max_bytes: usize,
) -> Result<Vec<u8>, HllError> {
    let mut merger = Merger::new();
    if let Some(d) = dest {
        merger.add(d)?;
    }
    for s in sources.into_iter().flatten() {
        merger.add(s)?;
    }
    merger.finish(dest, sparse_max_bytes)
}

/// PFDEBUG DECODE's text (`z:N`, `Z:N`, `v:VALUE,N`), or `None` when the HLL is not sparse.
pub fn decode_sparse(hll: &[u8]) -> Option<String> {
    if hll.get(ENCODING_AT) != Some(&HLL_SPARSE) {
        return None;
    }
    let mut out = String::new();
    let mut p = HLL_HDR_SIZE;
    while p < hll.len() {
        let op = Op::at(hll, p);
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = match op {
            Op::Zero(n) => write!(out, "z:{n}"),
            Op::XZero(n) => write!(out, "Z:{n}"),
            Op::Val(v, n) => write!(out, "v:{v},{n}"),
        };
        p += op.size();
    }
    Some(out)
}

#[cfg(test)]
#[path = "hll_tests.rs"]
mod tests;

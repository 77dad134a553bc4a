//! LCS: the longest common subsequence of two strings, its length, or the matching ranges
//! (IDX, MINMATCHLEN, WITHMATCHLEN), computed and walked back as Valkey does so the ranges
//! and their order are the same.
//! Must not: write anything.

use bytes::Bytes;

use super::args::{int, is};
use super::strings::as_str;
use super::{CmdError, CmdResult, Ctx};
use crate::resp::Reply;

pub fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut strings = Vec::with_capacity(2);
    for key in &args[1..3] {
        match ctx.ks.lookup(key)? {
            None => strings.push(Bytes::new()),
            Some(e) => match as_str(&e) {
                Ok(b) => strings.push(b.clone()),
                Err(_) => {
                    return Err(CmdError::err(
                        "The specified keys must contain string values",
                    ))
                }
            },
        }
    }
    let (mut idx, mut len, mut with_len, mut min_len) = (false, false, false, 0i64);
    let mut j = 3;
    while j < args.len() {
        let a = &args[j];
        if is(a, "idx") {
            idx = true;
        } else if is(a, "len") {
            len = true;
        } else if is(a, "withmatchlen") {
            with_len = true;
        } else if is(a, "minmatchlen") && j + 1 < args.len() {
            min_len = int(&args[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if idx && len {
        return Err(CmdError::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    let (a, b) = (&strings[0][..], &strings[1][..]);
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return Err(CmdError::err("String too long for LCS"));
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells * 4 > ctx.node.limits().max_bulk_len {
        return Err(CmdError::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let w = blen + 1;
    let mut table = vec![0u32; cells as usize];
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * w + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * w + j - 1] + 1
            } else {
                table[(i - 1) * w + j].max(table[i * w + j - 1])
            };
        }
    }
    let total = table[alen * w + blen];
    if len {
        return Ok(Reply::Int(total as i64));
    }
    // Walk back from the end: the subsequence, and the runs of matches as ranges.
    let mut out = vec![0u8; total as usize];
    let mut left = total as usize;
    let mut ranges = Vec::new();
    // (a_start, a_end, b_start, b_end) of the run being walked.
    let mut run: Option<(usize, usize, usize, usize)> = None;
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            out[left - 1] = a[i - 1];
            run = match run {
                None => Some((i - 1, i - 1, j - 1, j - 1)),
                Some((s, e, bs, be)) if s == i && bs == j => Some((s - 1, e, bs - 1, be)),
                Some(r) => {
                    emit = true;
                    Some(r)
                }
            };
            if run.is_some_and(|(s, _, bs, _)| s == 0 || bs == 0) {
                emit = true;
            }
            left -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * w + j] > table[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = run.is_some();
        }
        if emit {
            if let Some((s, e, bs, be)) = run.take() {
                let n = (e - s + 1) as i64;
                if min_len == 0 || n >= min_len {
                    let mut item = vec![
                        Reply::Array(vec![Reply::Int(s as i64), Reply::Int(e as i64)]),
                        Reply::Array(vec![Reply::Int(bs as i64), Reply::Int(be as i64)]),
                    ];
                    if with_len {
                        item.push(Reply::Int(n));
                    }
                    ranges.push(Reply::Array(item));
                }
            }
        }
    }
    if idx {
        return Ok(Reply::Map(vec![
            (
                Reply::Bulk(Bytes::from_static(b"matches")),
                Reply::Array(ranges),
            ),
            (
                Reply::Bulk(Bytes::from_static(b"len")),
                Reply::Int(total as i64),
            ),
        ]));
    }
    Ok(Reply::Bulk(Bytes::from(out)))
}

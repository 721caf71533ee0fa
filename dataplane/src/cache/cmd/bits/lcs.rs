//! LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest common
//! subsequence of two strings, its length, or the matching ranges, by Redis's dynamic
//! program with its limits on the table's size.

use super::read_str;
use crate::cache::slot::key_slot;
use crate::cache::store::{Store, WrongType};
use crate::limits::STRING_BYTES_MAX;
use crate::proto::resp::errors::{
    LCS_LEN_AND_IDX, LCS_NOT_STRINGS, LCS_NO_MEMORY, LCS_TABLE_TOO_BIG, LCS_TOO_LONG, NOT_INT,
    SYNTAX,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

/// LCS's options.
struct LcsOpts {
    len: bool,
    idx: bool,
    with_match_len: bool,
    min_match_len: u64,
}

fn lcs_opts(a: &Args) -> Result<LcsOpts, &'static str> {
    let mut o = LcsOpts {
        len: false,
        idx: false,
        with_match_len: false,
        min_match_len: 0,
    };
    let mut j = 3;
    while j < a.len() {
        if a.eq(j, "IDX") {
            o.idx = true;
        } else if a.eq(j, "LEN") {
            o.len = true;
        } else if a.eq(j, "WITHMATCHLEN") {
            o.with_match_len = true;
        } else if a.eq(j, "MINMATCHLEN") && j + 1 < a.len() {
            o.min_match_len = a.int(j + 1).ok_or(NOT_INT)?.max(0) as u64;
            j += 1;
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    if o.len && o.idx {
        return Err(LCS_LEN_AND_IDX);
    }
    Ok(o)
}

/// One matching run LCS IDX reports: inclusive ranges in the first and second string.
struct Match {
    a: (u32, u32),
    b: (u32, u32),
}

pub(super) fn lcs(store: &mut Store, a: &Args, now: u64, out: &mut Out) {
    let (ka, kb) = (a.get(1), a.get(2));
    // The first string is copied so that both can be read at once.
    let x = match read_str(store, key_slot(ka), ka, now) {
        Ok(v) => v.unwrap_or(&[]).to_vec(),
        Err(WrongType) => return out.error(LCS_NOT_STRINGS),
    };
    let y = match read_str(store, key_slot(kb), kb, now) {
        Ok(v) => v.unwrap_or(&[]),
        Err(WrongType) => return out.error(LCS_NOT_STRINGS),
    };
    let o = match lcs_opts(a) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    if x.len() >= u32::MAX as usize - 1 || y.len() >= u32::MAX as usize - 1 {
        return out.error(LCS_TOO_LONG);
    }
    // The table Redis would build must fit its bound even when a smaller one does here.
    let cells = (x.len() as u64 + 1) * (y.len() as u64 + 1);
    if cells.saturating_mul(4) > STRING_BYTES_MAX as u64 {
        return out.error(LCS_TABLE_TOO_BIG);
    }
    if o.len {
        return out.int(i64::from(lcs_len(&x, y)));
    }
    let w = y.len() + 1;
    let mut t: Vec<u32> = Vec::new();
    if t.try_reserve_exact(cells as usize).is_err() {
        return out.error(LCS_NO_MEMORY);
    }
    // t[i * w + j]: the LCS length of x[..i] and y[..j]. Built a row at a time.
    t.resize(w, 0);
    let mut row = vec![0u32; w];
    for &xi in &x {
        let prev = &t[t.len() - w..];
        lcs_row(xi, y, prev, &mut row);
        t.extend_from_slice(&row);
    }
    let total = t[x.len() * w + y.len()];
    // Walk back from the end as Redis does, collecting the common string and the runs.
    let mut common = vec![0u8; total as usize];
    let mut left = total as usize;
    let mut matches: Vec<Match> = Vec::new();
    let unset = x.len() as u32;
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (unset, 0u32, 0u32, 0u32);
    let (mut i, mut j) = (x.len(), y.len());
    while i > 0 && j > 0 {
        let mut emit = false;
        if x[i - 1] == y[j - 1] {
            common[left - 1] = x[i - 1];
            let (ii, jj) = ((i - 1) as u32, (j - 1) as u32);
            if a_start == unset {
                (a_start, a_end, b_start, b_end) = (ii, ii, jj, jj);
            } else if a_start == ii + 1 && b_start == jj + 1 {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            left -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != unset {
                emit = true;
            }
        }
        if emit {
            let run = u64::from(a_end - a_start) + 1;
            if o.min_match_len == 0 || run >= o.min_match_len {
                matches.push(Match {
                    a: (a_start, a_end),
                    b: (b_start, b_end),
                });
            }
            a_start = unset;
        }
    }
    if !o.idx {
        return out.bulk(&common);
    }
    out.map(2);
    out.bulk(b"matches");
    out.array(matches.len());
    for m in &matches {
        out.array(2 + usize::from(o.with_match_len));
        out.array(2);
        out.int(i64::from(m.a.0));
        out.int(i64::from(m.a.1));
        out.array(2);
        out.int(i64::from(m.b.0));
        out.int(i64::from(m.b.1));
        if o.with_match_len {
            out.int(i64::from(m.a.1 - m.a.0) + 1);
        }
    }
    out.bulk(b"len");
    out.int(i64::from(total));
}

/// One row of the LCS table: `row[j]` for `x[i]` = `xi`, from the row above, `prev`.
#[inline]
fn lcs_row(xi: u8, y: &[u8], prev: &[u32], row: &mut [u32]) {
    let mut left = 0;
    for ((&yj, p), r) in y.iter().zip(prev.windows(2)).zip(row.iter_mut().skip(1)) {
        left = if xi == yj { p[0] + 1 } else { p[1].max(left) };
        *r = left;
    }
}

/// The LCS length alone, with two rows of the table.
fn lcs_len(x: &[u8], y: &[u8]) -> u32 {
    let mut prev = vec![0u32; y.len() + 1];
    let mut row = vec![0u32; y.len() + 1];
    for &xi in x {
        lcs_row(xi, y, &prev, &mut row);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[y.len()]
}

//! ZSCAN key cursor [MATCH pattern] [COUNT count]: the cursor names the score a scan
//! resumes at, so a member that keeps its score through a scan is returned.

use super::read;
use super::scores::ScoreText;
use crate::cache::cmd::scan::{parse_cursor, parse_options, ScanOptions};
use crate::cache::glob::glob_match;
use crate::cache::store::{Store, WrongType};
use crate::proto::resp::errors::{INVALID_CURSOR, WRONGTYPE};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
/// The order-preserving 64-bit image of a score: ZSCAN's cursor names the score it resumes
/// at. Never 0 (the start and end cursor) for a real score.
fn cursor_of(s: f64) -> u64 {
    let bits = (s + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]. A packed set answers whole with cursor 0,
/// as Redis does for a listpack. A tree answers in score order from the cursor's score,
/// at least COUNT members and always every member of the last score it reaches, so the
/// next call starts at a new score: every member that stays with its score through a scan
/// is returned (a member whose score changes mid-scan may be missed or repeated).
pub(super) fn zscan(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Some(cursor) = parse_cursor(a.get(2)) else {
        return out.error(INVALID_CURSOR);
    };
    let z = match read(store, slot, a.get(1), now) {
        Ok(Some(z)) => z,
        Ok(None) => {
            out.array(2);
            out.bulk(b"0");
            return out.array(0);
        }
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let ScanOptions { count, pattern } = match parse_options(a, 3) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    let mut found: Vec<(f64, &[u8])> = Vec::new();
    let next = if z.encoding() == "listpack" {
        found.extend(z.iter());
        0
    } else {
        let start = if cursor == 0 {
            0
        } else {
            z.partition(|s, _| cursor_of(s) < cursor)
        };
        let mut it = z.iter_from(start);
        let mut pending = it.next();
        let mut last = None;
        loop {
            let Some((s, m)) = pending else { break 0 };
            let c = cursor_of(s);
            if found.len() >= count && last != Some(c) {
                break c;
            }
            found.push((s, m));
            last = Some(c);
            pending = it.next();
        }
    };
    if let Some(p) = pattern {
        found.retain(|(_, m)| glob_match(p, m, false));
    }
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(2 * found.len());
    for (s, m) in found {
        out.bulk(m);
        out.bulk(ScoreText::new(s).as_bytes());
    }
}

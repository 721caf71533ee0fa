//! ZRANDMEMBER key [count [WITHSCORES]]: distinct members for a positive count, independent
//! picks for a negative one (the one reply the data does not bound, so it is capped at
//! `ZRANDMEMBER_REPLY_BYTES_MAX`), from this shard thread's own xorshift generator.

use std::cell::Cell;

use super::{element, header, read};
use crate::cache::store::{xorshift64, Store, WrongType};
use crate::limits::ZRANDMEMBER_REPLY_BYTES_MAX;
use crate::proto::resp::errors::{
    out_of_range_between, NOT_INT, OUT_OF_RANGE, SYNTAX, WRONGTYPE, ZRANDMEMBER_TOO_LARGE,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
thread_local! {
    /// This shard thread's randomness for ZRANDMEMBER (xorshift64; never 0).
    static RNG: Cell<u64> = Cell::new({
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id()) | 1
    });
}

/// A uniform random number below `n` (> 0).
fn rand_below(n: usize) -> usize {
    RNG.with(|r| {
        let mut s = r.get();
        let v = xorshift64(&mut s);
        r.set(s);
        ((v as u128 * n as u128) >> 64) as usize
    })
}

pub(super) fn zrandmember(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    if a.len() == 2 {
        return match read(store, slot, key, now) {
            Ok(Some(z)) => match z.get(rand_below(z.len())) {
                Some((_, m)) => out.bulk(m),
                None => out.null(),
            },
            Ok(None) => out.null(),
            Err(WrongType) => out.error(WRONGTYPE),
        };
    }
    let Some(l) = a.int(2) else {
        return out.error(NOT_INT);
    };
    if l == i64::MIN {
        return out.error(&out_of_range_between(-i64::MAX, i64::MAX));
    }
    if a.len() > 4 || (a.len() == 4 && !a.eq(3, "WITHSCORES")) {
        return out.error(SYNTAX);
    }
    let withscores = a.len() == 4;
    if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
        return out.error(OUT_OF_RANGE);
    }
    let z = match read(store, slot, key, now) {
        Ok(Some(z)) => z,
        Ok(None) => return out.array(0),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let count = l.unsigned_abs() as usize;
    if count == 0 {
        return out.array(0);
    }
    let size = z.len();
    if l < 0 || count == 1 {
        // Repeats allowed: each pick is independent. The one reply the data does not bound.
        let smallest = if withscores { 10 } else { 6 };
        if count.saturating_mul(smallest) > ZRANDMEMBER_REPLY_BYTES_MAX {
            return out.error(ZRANDMEMBER_TOO_LARGE);
        }
        let start = out.buf.len();
        header(out, count, withscores);
        // A packed set is scanned once; a tree is indexed per pick.
        let packed: Vec<(f64, &[u8])> = if z.encoding() == "listpack" {
            z.iter().collect()
        } else {
            Vec::new()
        };
        for _ in 0..count {
            let r = rand_below(size);
            let e = if packed.is_empty() {
                z.get(r)
            } else {
                packed.get(r).copied()
            };
            if let Some((s, m)) = e {
                element(out, s, m, withscores);
            }
            if out.buf.len() - start > ZRANDMEMBER_REPLY_BYTES_MAX {
                out.buf.truncate(start);
                return out.error(ZRANDMEMBER_TOO_LARGE);
            }
        }
        return;
    }
    header(out, count.min(size), withscores);
    if count >= size {
        // The whole set, walked from the top as Redis's iterator walks it.
        let all: Vec<(f64, &[u8])> = z.iter().collect();
        for &(s, m) in all.iter().rev() {
            element(out, s, m, withscores);
        }
    } else if count * 3 > size {
        // Most of the set: selection sampling, in order.
        let mut need = count;
        for (i, (s, m)) in z.iter().enumerate() {
            if rand_below(size - i) < need {
                element(out, s, m, withscores);
                need -= 1;
                if need == 0 {
                    break;
                }
            }
        }
    } else {
        // A few: distinct random ranks (Floyd's algorithm), in the order drawn.
        let mut chosen = hashbrown::HashSet::with_capacity(count);
        let mut order = Vec::with_capacity(count);
        for j in size - count..size {
            let r = rand_below(j + 1);
            let pick = if chosen.insert(r) { r } else { j };
            if pick == j {
                chosen.insert(j);
            }
            order.push(pick);
        }
        for r in order {
            if let Some((s, m)) = z.get(r) {
                element(out, s, m, withscores);
            }
        }
    }
}

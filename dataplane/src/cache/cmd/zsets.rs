//! Sorted sets: ZADD, ZINCRBY, ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT,
//! ZLEXCOUNT, ZRANDMEMBER, ZSCAN; ZRANGE (BYSCORE, BYLEX, REV, LIMIT) and ZRANGESTORE with
//! the older ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZREVRANGE;
//! ZREMRANGEBYSCORE, ZREMRANGEBYRANK, ZREMRANGEBYLEX; ZPOPMIN, ZPOPMAX, ZMPOP and the
//! blocking BZPOPMIN, BZPOPMAX, BZMPOP (one attempt each: see [`try_blocking`]); ZUNION,
//! ZINTER, ZDIFF, their STORE forms and ZINTERCARD.
//!
//! Semantics, reply shapes and error texts are Redis 7.0's (`t_zset.c`), including the order
//! in which it checks arguments and keys. Scores print as Redis 7.0 prints them (`%.17g`):
//! a RESP3 double, a bulk string in RESP2. A command whose keys are several finds each
//! key's slot itself; they all live in this store.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::Write as _;

use super::Attempt;
use crate::cache::entry::{Entry, KIND_ZSET};
use crate::cache::glob::glob_match;
use crate::cache::slot::key_slot;
use crate::cache::store::{xorshift64, Found, Store, WrongType};
use crate::cache::types::set::Member;
use crate::cache::types::zset::cmp_key;
use crate::cache::types::{Obj, Set, Zset};
use crate::limits::ZRANDMEMBER_REPLY_BYTES_MAX;
use crate::proto::resp::command::zsets::ZsetCmd as Z;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{
    at_least_one_key, out_of_range_between, wrong_args, COUNT_NOT_POSITIVE, INVALID_CURSOR,
    LIMIT_NEGATIVE, LIMIT_WITH_RANK, MIN_MAX_NOT_FLOAT, MIN_MAX_NOT_LEX, MUST_BE_POSITIVE,
    NOT_FLOAT, NOT_INT, NUMKEYS_NOT_POSITIVE, OUT_OF_RANGE, SCORE_NAN, SYNTAX, TIMEOUT_NEGATIVE,
    TIMEOUT_NOT_FLOAT, TIMEOUT_OUT_OF_RANGE, WEIGHT_NOT_FLOAT, WITHSCORES_WITH_BYLEX, WRONGTYPE,
    ZADD_GT_LT_NX, ZADD_INCR_PAIR, ZADD_XX_NX, ZRANDMEMBER_TOO_LARGE,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub fn exec(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Cmd::Zsets(cmd) = spec.cmd else {
        return out.error(&wrong_args(spec.name));
    };
    match cmd {
        Z::Zadd => zadd(store, a, slot, now, false, out),
        Z::Zincrby => zadd(store, a, slot, now, true, out),
        Z::Zrem => zrem(store, a, slot, now, out),
        Z::Zcard => match read(store, slot, a.get(1), now) {
            Ok(z) => out.int(z.map_or(0, Zset::len) as i64),
            Err(WrongType) => out.error(WRONGTYPE),
        },
        Z::Zscore => match read(store, slot, a.get(1), now) {
            Ok(Some(z)) => match z.score(a.get(2)) {
                Some(s) => score(out, s),
                None => out.null(),
            },
            Ok(None) => out.null(),
            Err(WrongType) => out.error(WRONGTYPE),
        },
        Z::Zmscore => match read(store, slot, a.get(1), now) {
            Ok(z) => {
                out.array(a.len() - 2);
                for i in 2..a.len() {
                    match z.and_then(|z| z.score(a.get(i))) {
                        Some(s) => score(out, s),
                        None => out.null(),
                    }
                }
            }
            Err(WrongType) => out.error(WRONGTYPE),
        },
        Z::Zrank | Z::Zrevrank => match read(store, slot, a.get(1), now) {
            Ok(Some(z)) => match z.rank(a.get(2)) {
                Some(r) if cmd == Z::Zrank => out.int(r as i64),
                Some(r) => out.int((z.len() - 1 - r) as i64),
                None => out.null(),
            },
            Ok(None) => out.null(),
            Err(WrongType) => out.error(WRONGTYPE),
        },
        Z::Zcount => {
            let Some(range) = ScoreRange::parse(a.get(2), a.get(3)) else {
                return out.error(MIN_MAX_NOT_FLOAT);
            };
            match read(store, slot, a.get(1), now) {
                Ok(z) => out.int(z.map_or(0, |z| range.count(z)) as i64),
                Err(WrongType) => out.error(WRONGTYPE),
            }
        }
        Z::Zlexcount => {
            let Some(range) = LexRange::parse(a.get(2), a.get(3)) else {
                return out.error(MIN_MAX_NOT_LEX);
            };
            match read(store, slot, a.get(1), now) {
                Ok(z) => out.int(z.map_or(0, |z| range.count(z)) as i64),
                Err(WrongType) => out.error(WRONGTYPE),
            }
        }
        Z::Zrandmember => zrandmember(store, a, slot, now, out),
        Z::Zscan => zscan(store, a, slot, now, out),
        Z::Zrange => zrange(store, a, 1, false, None, None, now, out),
        Z::Zrangestore => zrange(store, a, 2, true, None, None, now, out),
        Z::Zrangebyscore => zrange(store, a, 1, false, Some(By::Score), Some(false), now, out),
        Z::Zrevrangebyscore => zrange(store, a, 1, false, Some(By::Score), Some(true), now, out),
        Z::Zrangebylex => zrange(store, a, 1, false, Some(By::Lex), Some(false), now, out),
        Z::Zrevrangebylex => zrange(store, a, 1, false, Some(By::Lex), Some(true), now, out),
        Z::Zrevrange => zrange(store, a, 1, false, Some(By::Rank), Some(true), now, out),
        Z::Zremrangebyscore => zremrange(store, a, slot, now, By::Score, out),
        Z::Zremrangebyrank => zremrange(store, a, slot, now, By::Rank, out),
        Z::Zremrangebylex => zremrange(store, a, slot, now, By::Lex, out),
        Z::Zpopmin | Z::Zpopmax => zpop(store, a, slot, now, cmd == Z::Zpopmax, out),
        Z::Zmpop => match parse_mpop(a, 1) {
            Ok((keys, max, count)) => match pop_first(store, &keys, max, count, now) {
                Ok(Some((key, popped))) => reply_mpop(out, key, &popped),
                Ok(None) => out.null_array(),
                Err(WrongType) => out.error(WRONGTYPE),
            },
            Err(e) => out.error(e),
        },
        Z::Zunion => setop(store, spec, a, now, Op::Union, false, out),
        Z::Zinter => setop(store, spec, a, now, Op::Inter, false, out),
        Z::Zdiff => setop(store, spec, a, now, Op::Diff, false, out),
        Z::Zunionstore => setop(store, spec, a, now, Op::Union, true, out),
        Z::Zinterstore => setop(store, spec, a, now, Op::Inter, true, out),
        Z::Zdiffstore => setop(store, spec, a, now, Op::Diff, true, out),
        Z::Zintercard => setop(store, spec, a, now, Op::Card, false, out),
        // Blocking commands run through `try_blocking` (see `cache::cmd::exec_key`).
        Z::Bzpopmin | Z::Bzpopmax | Z::Bzmpop => out.error(&wrong_args(spec.name)),
    }
}

/// One attempt of BZPOPMIN, BZPOPMAX or BZMPOP: the timeout is checked first (as Redis
/// does), then the keys in order; the first that exists answers (a wrong type is an error),
/// and when none does nothing is written and the command would wait.
pub fn try_blocking(store: &mut Store, spec: &Spec, a: &Args, now: u64, out: &mut Out) -> Attempt {
    let Cmd::Zsets(cmd) = spec.cmd else {
        out.error(&wrong_args(spec.name));
        return Attempt::Answered;
    };
    match cmd {
        Z::Bzpopmin | Z::Bzpopmax => {
            let timeout_ms = match parse_timeout(a.get(a.len() - 1)) {
                Ok(t) => t,
                Err(e) => {
                    out.error(e);
                    return Attempt::Answered;
                }
            };
            let keys: Vec<&[u8]> = (1..a.len() - 1).map(|i| a.get(i)).collect();
            match pop_first(store, &keys, cmd == Z::Bzpopmax, 1, now) {
                Ok(Some((key, popped))) => {
                    // A flat [key, member, score], in RESP2 and RESP3 alike.
                    out.array(1 + 2 * popped.len());
                    out.bulk(key);
                    for (s, m) in &popped {
                        out.bulk(m);
                        score(out, *s);
                    }
                }
                Ok(None) => return Attempt::WouldBlock { timeout_ms },
                Err(WrongType) => out.error(WRONGTYPE),
            }
        }
        Z::Bzmpop => {
            let (keys, max, count) = match parse_mpop(a, 2) {
                Ok(p) => p,
                Err(e) => {
                    out.error(e);
                    return Attempt::Answered;
                }
            };
            let timeout_ms = match parse_timeout(a.get(1)) {
                Ok(t) => t,
                Err(e) => {
                    out.error(e);
                    return Attempt::Answered;
                }
            };
            match pop_first(store, &keys, max, count, now) {
                Ok(Some((key, popped))) => reply_mpop(out, key, &popped),
                Ok(None) => return Attempt::WouldBlock { timeout_ms },
                Err(WrongType) => out.error(WRONGTYPE),
            }
        }
        _ => out.error(&wrong_args(spec.name)),
    }
    Attempt::Answered
}

/// A blocking command's reply when its timeout passes: the null array (RESP3 `_`).
pub fn timed_out(_spec: &Spec, out: &mut Out) {
    out.null_array();
}

// ----- access -------------------------------------------------------------------------------

/// The sorted set at `key` for a read (a hit or miss is counted): None when absent.
fn read<'s>(
    store: &'s mut Store,
    slot: u16,
    key: &[u8],
    now: u64,
) -> Result<Option<&'s Zset>, WrongType> {
    match store.read(slot, key, now) {
        Found::Zset(z) => Ok(Some(z)),
        Found::Missing => Ok(None),
        _ => Err(WrongType),
    }
}

/// Change the sorted set at object `idx` (named by `key`); `f` returns its result and
/// whether it changed the set. An emptied set goes with its key.
fn with_zset<R>(
    store: &mut Store,
    slot: u16,
    key: &[u8],
    idx: u32,
    f: impl FnOnce(&mut Zset) -> (R, bool),
) -> Option<R> {
    store
        .with_obj(slot, key, idx, |obj| match obj {
            Obj::Zset(z) => {
                let (r, changed) = f(z);
                (Some(r), changed)
            }
            _ => (None, false),
        })
        .flatten()
}

/// Make `key` hold `z` (a new value, no TTL), or delete it when `z` is empty.
fn put_result(store: &mut Store, key: &[u8], z: Zset, now: u64) {
    let slot = key_slot(key);
    if z.is_empty() {
        store.remove(slot, key);
    } else {
        let idx = store.new_obj(Obj::Zset(z));
        store.put(slot, Entry::object(KIND_ZSET, key, idx, None, 0), now);
    }
}

// ----- scores -------------------------------------------------------------------------------

/// A score as Redis 7.0 prints it (`%.17g`; `inf`, `-inf`, `-0`).
pub(crate) struct ScoreText {
    b: [u8; 40],
    n: usize,
}

impl std::fmt::Write for ScoreText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        if end > self.b.len() {
            return Err(std::fmt::Error);
        }
        self.b[self.n..end].copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

impl ScoreText {
    pub(crate) fn new(f: f64) -> ScoreText {
        let mut t = ScoreText { b: [0; 40], n: 0 };
        if f.is_infinite() {
            let _ = t.write_str(if f > 0.0 { "inf" } else { "-inf" });
        } else if f == 0.0 {
            let _ = t.write_str(if f.is_sign_negative() { "-0" } else { "0" });
        } else if f.fract() == 0.0 && f.abs() < 1e17 {
            let _ = t.write_str(itoa::Buffer::new().format(f as i64));
        } else {
            t.g17(f);
        }
        t
    }

    /// `%.17g` of a finite, non-zero value.
    fn g17(&mut self, f: f64) {
        let mut e = ScoreText { b: [0; 40], n: 0 };
        let _ = write!(e, "{:.16e}", f.abs());
        let text = &e.b[..e.n];
        // "d.dddddddddddddddde<exp>": 17 significant digits and a decimal exponent.
        let Some(epos) = text.iter().position(|&c| c == b'e') else {
            return;
        };
        let mut digits = [0u8; 17];
        let mut nd = 0;
        for &c in &text[..epos] {
            if c.is_ascii_digit() && nd < 17 {
                digits[nd] = c;
                nd += 1;
            }
        }
        let exp: i32 = std::str::from_utf8(&text[epos + 1..])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        // Trailing zeros of the significand are not printed (%g).
        while nd > 1 && digits[nd - 1] == b'0' {
            nd -= 1;
        }
        let digits = &digits[..nd];
        if f < 0.0 {
            self.push(b'-');
        }
        if !(-4..17).contains(&exp) {
            self.push(digits[0]);
            if nd > 1 {
                self.push(b'.');
                digits[1..].iter().for_each(|&d| self.push(d));
            }
            self.push(b'e');
            self.push(if exp < 0 { b'-' } else { b'+' });
            let a = exp.unsigned_abs();
            if a < 10 {
                self.push(b'0');
            }
            let _ = self.write_str(itoa::Buffer::new().format(a));
        } else if exp >= 0 {
            let int = exp as usize + 1;
            for i in 0..int {
                self.push(digits.get(i).copied().unwrap_or(b'0'));
            }
            if nd > int {
                self.push(b'.');
                digits[int..].iter().for_each(|&d| self.push(d));
            }
        } else {
            self.push(b'0');
            self.push(b'.');
            for _ in 0..(-exp - 1) {
                self.push(b'0');
            }
            digits.iter().for_each(|&d| self.push(d));
        }
    }

    fn push(&mut self, c: u8) {
        if self.n < self.b.len() {
            self.b[self.n] = c;
            self.n += 1;
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }
}

/// A score reply: a RESP3 double, a bulk string in RESP2.
fn score(out: &mut Out, f: f64) {
    let t = ScoreText::new(f);
    if out.resp3 {
        out.buf.push(b',');
        out.buf.extend_from_slice(t.as_bytes());
        out.buf.extend_from_slice(b"\r\n");
    } else {
        out.bulk(t.as_bytes());
    }
}

/// C's isspace.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// A float as Redis's `string2d` reads one (scores, increments, weights, timeouts): the
/// whole argument, no leading space, no NaN, no overflow to infinity or underflow to zero.
fn parse_float(b: &[u8]) -> Option<f64> {
    if b.first().is_none_or(|&c| is_space(c)) {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    let v = strtod(s)?;
    if v.is_nan() {
        return None;
    }
    let body = s.trim_start_matches(['+', '-']);
    if is_hex(body) {
        return v.is_finite().then_some(v);
    }
    if v.is_infinite()
        && !body.eq_ignore_ascii_case("inf")
        && !body.eq_ignore_ascii_case("infinity")
    {
        return None;
    }
    if v == 0.0 {
        let mantissa = body.split(['e', 'E']).next().unwrap_or("");
        if mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c)) {
            return None;
        }
    }
    Some(v)
}

/// A range bound's number as `strtod` reads it in `zslParseRange`: leading space allowed,
/// the rest whole, no NaN; an empty string reads as 0.
fn parse_bound(b: &[u8]) -> Option<f64> {
    if b.is_empty() {
        return Some(0.0);
    }
    let start = b.iter().position(|&c| !is_space(c))?;
    let v = strtod(std::str::from_utf8(&b[start..]).ok()?)?;
    (!v.is_nan()).then_some(v)
}

fn is_hex(body: &str) -> bool {
    body.len() > 2 && body[..2].eq_ignore_ascii_case("0x")
}

/// The whole of `s` as C's `strtod` reads a number: decimal (Rust's grammar is the same,
/// `inf`, `infinity` and `nan` included) or hexadecimal (`0x1.8p3`).
fn strtod(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if !is_hex(body) {
        return None;
    }
    let body = &body[2..];
    let (mant, exp) = match body.find(['p', 'P']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mant.find('.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    // Up to 16 significant hex digits are kept (64 bits); later ones only scale.
    let mut m: u64 = 0;
    let mut shift: i64 = 0;
    let mut kept = 0;
    for (i, c) in int.chars().chain(frac.chars()).enumerate() {
        let d = c.to_digit(16)? as u64;
        let in_frac = i >= int.len();
        if kept < 16 {
            if m != 0 || d != 0 {
                kept += 1;
            }
            m = m * 16 + d;
            if in_frac {
                shift -= 4;
            }
        } else if !in_frac {
            shift += 4;
        }
    }
    let e: i64 = match exp {
        Some(e) => e.parse().ok()?,
        None => 0,
    };
    let v = m as f64 * 2f64.powi((shift + e).clamp(-2000, 2000) as i32);
    Some(if neg { -v } else { v })
}

/// `getPositiveLongFromObjectOrReply`-style parsing: an integer within `min..=max`, else
/// `err` (a non-integer gets `err` too when one is given, as in Redis).
fn parse_long(b: &[u8], min: i64, max: i64) -> Option<i64> {
    crate::proto::resp::parse::parse_i64(b).filter(|v| (min..=max).contains(v))
}

// ----- ranges -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let side = |b: &[u8]| match b.first() {
            Some(b'(') => parse_bound(&b[1..]).map(|v| (v, true)),
            _ => parse_bound(b).map(|v| (v, false)),
        };
        let (min, minex) = side(min)?;
        let (max, maxex) = side(max)?;
        Some(ScoreRange {
            min,
            minex,
            max,
            maxex,
        })
    }

    fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }

    fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }

    /// The ranks `start..end` of the entries in range.
    fn ranks(&self, z: &Zset) -> (usize, usize) {
        if self.min > self.max || (self.min == self.max && (self.minex || self.maxex)) {
            return (0, 0);
        }
        let start = z.partition(|s, _| !self.gte_min(s));
        let end = z.partition(|s, _| self.lte_max(s));
        (start, end.max(start))
    }

    fn count(&self, z: &Zset) -> usize {
        let (s, e) = self.ranks(z);
        e - s
    }
}

/// One end of a lexicographic range: `-`, `+`, `[inclusive` or `(exclusive`.
#[derive(Debug, Clone, Copy)]
enum Lex<'a> {
    Least,
    Most,
    In(&'a [u8]),
    Ex(&'a [u8]),
}

impl<'a> Lex<'a> {
    fn parse(b: &'a [u8]) -> Option<Lex<'a>> {
        match b.first()? {
            b'+' if b.len() == 1 => Some(Lex::Most),
            b'-' if b.len() == 1 => Some(Lex::Least),
            b'(' => Some(Lex::Ex(&b[1..])),
            b'[' => Some(Lex::In(&b[1..])),
            _ => None,
        }
    }

    fn exclusive(&self) -> bool {
        !matches!(self, Lex::In(_))
    }
}

#[derive(Debug, Clone, Copy)]
struct LexRange<'a> {
    min: Lex<'a>,
    max: Lex<'a>,
}

impl<'a> LexRange<'a> {
    fn parse(min: &'a [u8], max: &'a [u8]) -> Option<LexRange<'a>> {
        Some(LexRange {
            min: Lex::parse(min)?,
            max: Lex::parse(max)?,
        })
    }

    fn gte_min(&self, m: &[u8]) -> bool {
        match self.min {
            Lex::Least => true,
            Lex::Most => false,
            Lex::In(b) => m >= b,
            Lex::Ex(b) => m > b,
        }
    }

    fn lte_max(&self, m: &[u8]) -> bool {
        match self.max {
            Lex::Most => true,
            Lex::Least => false,
            Lex::In(b) => m <= b,
            Lex::Ex(b) => m < b,
        }
    }

    /// Redis's `zslIsInLexRange` test for a range that is always empty.
    fn always_empty(&self) -> bool {
        use std::cmp::Ordering::*;
        let cmp = match (self.min, self.max) {
            (Lex::Least, Lex::Least) | (Lex::Most, Lex::Most) => Equal,
            (Lex::Least, _) | (_, Lex::Most) => Less,
            (Lex::Most, _) | (_, Lex::Least) => Greater,
            (Lex::In(a) | Lex::Ex(a), Lex::In(b) | Lex::Ex(b)) => a.cmp(b),
        };
        cmp == Greater || (cmp == Equal && (self.min.exclusive() || self.max.exclusive()))
    }

    /// The ranks `start..end` of the entries in range (meaningful, as in Redis, when all
    /// scores are equal).
    fn ranks(&self, z: &Zset) -> (usize, usize) {
        if self.always_empty() {
            return (0, 0);
        }
        let start = z.partition(|_, m| !self.gte_min(m));
        let end = z.partition(|_, m| self.lte_max(m));
        (start, end.max(start))
    }

    fn count(&self, z: &Zset) -> usize {
        let (s, e) = self.ranks(z);
        e - s
    }
}

/// ZRANGE-style indexes (negative from the end) turned into ranks `start..=end`, None when
/// the range is empty.
fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut end = if end < 0 { end + len } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

// ----- replies ------------------------------------------------------------------------------

/// The array header for `n` elements (with scores: a flat array of 2n in RESP2, n pairs in
/// RESP3, as Redis answers ZRANGE WITHSCORES).
fn header(out: &mut Out, n: usize, withscores: bool) {
    if withscores && !out.resp3 {
        out.array(2 * n);
    } else {
        out.array(n);
    }
}

fn element(out: &mut Out, s: f64, m: &[u8], withscores: bool) {
    if withscores {
        if out.resp3 {
            out.array(2);
        }
        out.bulk(m);
        score(out, s);
    } else {
        out.bulk(m);
    }
}

// ----- ZADD, ZINCRBY, ZREM -----------------------------------------------------------------

fn zadd(store: &mut Store, a: &Args, slot: u16, now: u64, zincrby: bool, out: &mut Out) {
    let key = a.get(1);
    let (mut nx, mut xx, mut ch, mut incr, mut gt, mut lt) =
        (false, false, false, zincrby, false, false);
    let mut i = 2;
    while i < a.len() {
        if a.eq(i, "NX") {
            nx = true;
        } else if a.eq(i, "XX") {
            xx = true;
        } else if a.eq(i, "CH") {
            ch = true;
        } else if a.eq(i, "INCR") {
            incr = true;
        } else if a.eq(i, "GT") {
            gt = true;
        } else if a.eq(i, "LT") {
            lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let pairs = a.len() - i;
    if pairs == 0 || pairs % 2 != 0 {
        return out.error(SYNTAX);
    }
    if nx && xx {
        return out.error(ZADD_XX_NX);
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return out.error(ZADD_GT_LT_NX);
    }
    if incr && pairs > 2 {
        return out.error(ZADD_INCR_PAIR);
    }
    // Every score is parsed before anything changes: the command applies fully or not.
    let mut scores = Vec::with_capacity(pairs / 2);
    for j in (i..a.len()).step_by(2) {
        match parse_float(a.get(j)) {
            Some(s) => scores.push(s),
            None => return out.error(NOT_FLOAT),
        }
    }
    let (idx, created) = match store.obj_index_of(slot, key, KIND_ZSET, now) {
        Err(WrongType) => return out.error(WRONGTYPE),
        Ok(Some(idx)) => (idx, false),
        // No key and XX: nothing to do.
        Ok(None) if xx => return if incr { out.null() } else { out.int(0) },
        Ok(None) => match store.obj_for_write(slot, key, KIND_ZSET, now) {
            Ok(idx) => (idx, true),
            Err(WrongType) => return out.error(WRONGTYPE),
        },
    };
    let r = with_zset(store, slot, key, idx, |z| {
        if created {
            let bytes = (i + 1..a.len()).step_by(2).map(|j| a.get(j).len()).sum();
            z.reserve(scores.len(), bytes);
        }
        let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
        let mut last = 0.0;
        for (k, &s) in scores.iter().enumerate() {
            let member = a.get(i + 1 + 2 * k);
            match z.score(member) {
                Some(cur) => {
                    if nx {
                        continue;
                    }
                    let mut s = s;
                    if incr {
                        s += cur;
                        if s.is_nan() {
                            return (Err(SCORE_NAN), added + updated > 0);
                        }
                    }
                    if (lt && s >= cur) || (gt && s <= cur) {
                        continue;
                    }
                    processed += 1;
                    last = s;
                    if s != cur {
                        z.rescore(member, cur, s);
                        updated += 1;
                    }
                }
                None => {
                    if xx {
                        continue;
                    }
                    z.insert_new(s, member);
                    added += 1;
                    processed += 1;
                    last = s;
                }
            }
        }
        (Ok((added, updated, processed, last)), added + updated > 0)
    });
    match r {
        Some(Ok((added, updated, processed, last))) => {
            if incr {
                if processed > 0 {
                    score(out, last)
                } else {
                    out.null()
                }
            } else {
                out.int(if ch { added + updated } else { added })
            }
        }
        Some(Err(e)) => out.error(e),
        None => out.error(WRONGTYPE),
    }
}

fn zrem(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    let idx = match store.obj_index_of(slot, key, KIND_ZSET, now) {
        Ok(Some(idx)) => idx,
        Ok(None) => return out.int(0),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let removed = with_zset(store, slot, key, idx, |z| {
        let mut n = 0;
        for i in 2..a.len() {
            n += z.remove(a.get(i)).is_some() as i64;
            if z.is_empty() {
                break;
            }
        }
        (n, n > 0)
    });
    out.int(removed.unwrap_or(0));
}

// ----- ZRANGE and its family ----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// ZRANGE, ZRANGESTORE and the older range commands (Redis's `zrangeGenericCommand`): `src`
/// is the source key's position, `by` and `rev` are fixed by the older commands and taken
/// from the options (BYSCORE, BYLEX, REV) by ZRANGE and ZRANGESTORE.
#[allow(clippy::too_many_arguments)]
fn zrange(
    store: &mut Store,
    a: &Args,
    src: usize,
    to_key: bool,
    by: Option<By>,
    rev: Option<bool>,
    now: u64,
    out: &mut Out,
) {
    // An option may set the kind and the direction once, and only where the command
    // leaves them open.
    let (mut by_opt, mut rev_opt) = (by, rev);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = src + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        if !to_key && a.eq(j, "WITHSCORES") {
            withscores = true;
        } else if a.eq(j, "LIMIT") && left >= 2 {
            match (a.int(j + 1), a.int(j + 2)) {
                (Some(o), Some(l)) => (offset, limit) = (o, l),
                _ => return out.error(NOT_INT),
            }
            j += 2;
        } else if rev_opt.is_none() && a.eq(j, "REV") {
            rev_opt = Some(true);
        } else if by_opt.is_none() && a.eq(j, "BYLEX") {
            by_opt = Some(By::Lex);
        } else if by_opt.is_none() && a.eq(j, "BYSCORE") {
            by_opt = Some(By::Score);
        } else {
            return out.error(SYNTAX);
        }
        j += 1;
    }
    let by = by_opt.unwrap_or(By::Rank);
    let rev = rev_opt.unwrap_or(false);
    if limit != -1 && by == By::Rank {
        return out.error(LIMIT_WITH_RANK);
    }
    if withscores && by == By::Lex {
        return out.error(WITHSCORES_WITH_BYLEX);
    }
    // By score or lex, a reverse range is given as max, min.
    let (lo_arg, hi_arg) = if rev && by != By::Rank {
        (a.get(src + 2), a.get(src + 1))
    } else {
        (a.get(src + 1), a.get(src + 2))
    };
    enum Range<'a> {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange<'a>),
    }
    let range = match by {
        By::Rank => match (
            crate::proto::resp::parse::parse_i64(lo_arg),
            crate::proto::resp::parse::parse_i64(hi_arg),
        ) {
            (Some(s), Some(e)) => Range::Rank(s, e),
            _ => return out.error(NOT_INT),
        },
        By::Score => match ScoreRange::parse(lo_arg, hi_arg) {
            Some(r) => Range::Score(r),
            None => return out.error(MIN_MAX_NOT_FLOAT),
        },
        By::Lex => match LexRange::parse(lo_arg, hi_arg) {
            Some(r) => Range::Lex(r),
            None => return out.error(MIN_MAX_NOT_LEX),
        },
    };
    let key = a.get(src);
    let z = match read(store, key_slot(key), key, now) {
        Err(WrongType) => return out.error(WRONGTYPE),
        Ok(Some(z)) => z,
        Ok(None) => {
            if to_key {
                put_result(store, a.get(1), Zset::default(), now);
                out.int(0);
            } else {
                out.array(0);
            }
            return;
        }
    };
    // The ranks `lo..hi` that answer, in ascending order.
    let (lo, hi) = match range {
        Range::Rank(s, e) => match rank_span(s, e, z.len()) {
            Some((s, e)) if rev => (z.len() - 1 - e, z.len() - s),
            Some((s, e)) => (s, e + 1),
            None => (0, 0),
        },
        Range::Score(r) => page(r.ranks(z), offset, limit, rev),
        Range::Lex(r) => page(r.ranks(z), offset, limit, rev),
    };
    if to_key {
        let entries: Vec<(f64, &[u8])> = z.iter_from(lo).take(hi - lo).collect();
        let result = Zset::from_sorted(&entries);
        let n = result.len();
        put_result(store, a.get(1), result, now);
        return out.int(n as i64);
    }
    header(out, hi - lo, withscores);
    if rev {
        let entries: Vec<(f64, &[u8])> = z.iter_from(lo).take(hi - lo).collect();
        for &(s, m) in entries.iter().rev() {
            element(out, s, m, withscores);
        }
    } else {
        for (s, m) in z.iter_from(lo).take(hi - lo) {
            element(out, s, m, withscores);
        }
    }
}

/// LIMIT offset count over the in-range ranks `start..end`, walked from the top when
/// `rev`: the ranks that answer, ascending. A negative offset answers nothing and a
/// negative count means all (Redis's loops behave so).
fn page((start, end): (usize, usize), offset: i64, limit: i64, rev: bool) -> (usize, usize) {
    if offset < 0 {
        return (0, 0);
    }
    let span = end - start;
    let off = (offset as u64).min(span as u64) as usize;
    let take = if limit < 0 {
        span - off
    } else {
        (limit as u64).min((span - off) as u64) as usize
    };
    if rev {
        (end - off - take, end - off)
    } else {
        (start + off, start + off + take)
    }
}

fn zremrange(store: &mut Store, a: &Args, slot: u16, now: u64, by: By, out: &mut Out) {
    let key = a.get(1);
    enum Range<'a> {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange<'a>),
    }
    let range = match by {
        By::Rank => match (a.int(2), a.int(3)) {
            (Some(s), Some(e)) => Range::Rank(s, e),
            _ => return out.error(NOT_INT),
        },
        By::Score => match ScoreRange::parse(a.get(2), a.get(3)) {
            Some(r) => Range::Score(r),
            None => return out.error(MIN_MAX_NOT_FLOAT),
        },
        By::Lex => match LexRange::parse(a.get(2), a.get(3)) {
            Some(r) => Range::Lex(r),
            None => return out.error(MIN_MAX_NOT_LEX),
        },
    };
    let idx = match store.obj_index_of(slot, key, KIND_ZSET, now) {
        Ok(Some(idx)) => idx,
        Ok(None) => return out.int(0),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let n = with_zset(store, slot, key, idx, |z| {
        let (s, e) = match &range {
            Range::Rank(s, e) => match rank_span(*s, *e, z.len()) {
                Some((s, e)) => (s, e + 1),
                None => (0, 0),
            },
            Range::Score(r) => r.ranks(z),
            Range::Lex(r) => r.ranks(z),
        };
        let n = z.remove_ranks(s, e);
        (n, n > 0)
    });
    out.int(n.unwrap_or(0) as i64);
}

// ----- pops ---------------------------------------------------------------------------------

/// Pop up to `count` entries from the low (or, with `max`, the high) end, in pop order.
fn pop_many(z: &mut Zset, max: bool, count: usize) -> Vec<(f64, Vec<u8>)> {
    let n = count.min(z.len());
    let lo = if max { z.len() - n } else { 0 };
    let mut popped: Vec<(f64, Vec<u8>)> = z
        .iter_from(lo)
        .take(n)
        .map(|(s, m)| (s, m.to_vec()))
        .collect();
    if max {
        popped.reverse();
    }
    z.remove_ranks(lo, lo + n);
    popped
}

/// The key that answered a pop and what was popped from it, in pop order.
type Popped<'k> = Option<(&'k [u8], Vec<(f64, Vec<u8>)>)>;

/// Pop from the first of `keys` that exists (Redis checks keys in order and stops at the
/// first that exists, so a wrong type after it is never seen).
fn pop_first<'k>(
    store: &mut Store,
    keys: &[&'k [u8]],
    max: bool,
    count: usize,
    now: u64,
) -> Result<Popped<'k>, WrongType> {
    for &key in keys {
        let slot = key_slot(key);
        let Some(idx) = store.obj_index_of(slot, key, KIND_ZSET, now)? else {
            continue;
        };
        let popped = with_zset(store, slot, key, idx, |z| {
            let p = pop_many(z, max, count);
            let changed = !p.is_empty();
            (p, changed)
        });
        return Ok(Some((key, popped.unwrap_or_default())));
    }
    Ok(None)
}

fn zpop(store: &mut Store, a: &Args, slot: u16, now: u64, max: bool, out: &mut Out) {
    if a.len() > 3 {
        return out.error(SYNTAX);
    }
    let count = if a.len() == 3 {
        match parse_long(a.get(2), 0, i64::MAX) {
            Some(c) => Some(c as usize),
            None => return out.error(MUST_BE_POSITIVE),
        }
    } else {
        None
    };
    let key = a.get(1);
    let idx = match store.obj_index_of(slot, key, KIND_ZSET, now) {
        Ok(Some(idx)) => idx,
        Ok(None) => return out.array(0),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    if count == Some(0) {
        return out.array(0);
    }
    let popped = with_zset(store, slot, key, idx, |z| {
        let p = pop_many(z, max, count.unwrap_or(1));
        let changed = !p.is_empty();
        (p, changed)
    })
    .unwrap_or_default();
    // With a count, RESP3 answers [member, score] pairs; otherwise a flat array.
    let nested = out.resp3 && count.is_some();
    out.array(if nested {
        popped.len()
    } else {
        2 * popped.len()
    });
    for (s, m) in &popped {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        score(out, *s);
    }
}

/// ZMPOP's (and BZMPOP's) arguments after the key count at `at`: the keys, MIN or MAX, and
/// COUNT (1 when absent).
fn parse_mpop<'a>(a: &Args<'a>, at: usize) -> Result<(Vec<&'a [u8]>, bool, usize), &'static str> {
    let numkeys = parse_long(a.get(at), 1, i64::MAX).ok_or(NUMKEYS_NOT_POSITIVE)? as usize;
    let where_at = match at.checked_add(numkeys).and_then(|w| w.checked_add(1)) {
        Some(w) if w < a.len() => w,
        _ => return Err(SYNTAX),
    };
    let max = if a.eq(where_at, "MIN") {
        false
    } else if a.eq(where_at, "MAX") {
        true
    } else {
        return Err(SYNTAX);
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < a.len() {
        if count.is_none() && a.eq(j, "COUNT") && j + 1 < a.len() {
            j += 1;
            count = Some(parse_long(a.get(j), 1, i64::MAX).ok_or(COUNT_NOT_POSITIVE)? as usize);
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    let keys = (at + 1..where_at).map(|i| a.get(i)).collect();
    Ok((keys, max, count.unwrap_or(1)))
}

/// [key, [[member, score], ...]] in RESP2 and RESP3 alike.
fn reply_mpop(out: &mut Out, key: &[u8], popped: &[(f64, Vec<u8>)]) {
    out.array(2);
    out.bulk(key);
    out.array(popped.len());
    for (s, m) in popped {
        out.array(2);
        out.bulk(m);
        score(out, *s);
    }
}

/// A blocking timeout in seconds (a float), as Redis reads it: None waits forever.
fn parse_timeout(b: &[u8]) -> Result<Option<u64>, &'static str> {
    let secs = parse_float(b).ok_or(TIMEOUT_NOT_FLOAT)?;
    let ms = (secs * 1000.0).ceil();
    if ms < 0.0 {
        return Err(TIMEOUT_NEGATIVE);
    }
    if ms >= i64::MAX as f64 {
        return Err(TIMEOUT_OUT_OF_RANGE);
    }
    let ms = ms as u64;
    Ok((ms > 0).then_some(ms))
}

// ----- ZRANDMEMBER, ZSCAN -------------------------------------------------------------------

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

fn zrandmember(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
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

/// A cursor as Redis reads it (`strtoul`: an optional sign, a minus wrapping around).
fn parse_cursor(b: &[u8]) -> Option<u64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

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
fn zscan(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
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
    let (mut count, mut pattern) = (10usize, None);
    let mut j = 3;
    while j < a.len() {
        let left = a.len() - j;
        if a.eq(j, "COUNT") && left >= 2 {
            match a.int(j + 1) {
                Some(c) if c >= 1 => count = c as usize,
                Some(_) => return out.error(SYNTAX),
                None => return out.error(NOT_INT),
            }
        } else if a.eq(j, "MATCH") && left >= 2 {
            let p = a.get(j + 1);
            pattern = (p != b"*").then_some(p);
        } else {
            return out.error(SYNTAX);
        }
        j += 2;
    }
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

// ----- ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD --------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
    /// ZINTERCARD: the intersection's size only.
    Card,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's `zunionInterAggregate`, comparisons and the NaN convention included.
fn aggregate(target: &mut f64, val: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += val;
            // +inf plus -inf is taken as 0.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => *target = if val < *target { val } else { *target },
        Aggregate::Max => *target = if val > *target { val } else { *target },
    }
}

/// An input of ZUNION and its kin: a sorted set, a plain set (every member scores 1), or
/// nothing.
#[derive(Clone, Copy)]
enum Src<'a> {
    None,
    Zset(&'a Zset),
    Set(&'a Set),
}

impl<'a> Src<'a> {
    fn len(&self) -> usize {
        match self {
            Src::None => 0,
            Src::Zset(z) => z.len(),
            Src::Set(s) => s.len(),
        }
    }

    /// The member's score in this input.
    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::None => None,
            Src::Zset(z) => z.score(m),
            // A plain set's members score 1, as in Redis.
            Src::Set(s) => s.contains(m).then_some(1.0),
        }
    }

    /// Every (score, member). A member is borrowed from its input, except a plain set's
    /// integer members, which are spelled out.
    fn entries(&self) -> Box<dyn Iterator<Item = (f64, Cow<'a, [u8]>)> + 'a> {
        match *self {
            Src::None => Box::new(std::iter::empty()),
            Src::Zset(z) => Box::new(z.iter().map(|(s, m)| (s, Cow::Borrowed(m)))),
            Src::Set(s) => Box::new(s.iter().map(|m| {
                let member = match m {
                    Member::Bytes(b) => Cow::Borrowed(b),
                    m => Cow::Owned(m.to_vec()),
                };
                (1.0, member)
            })),
        }
    }
}

fn setop(store: &mut Store, spec: &Spec, a: &Args, now: u64, op: Op, to_key: bool, out: &mut Out) {
    let nk = if to_key { 2 } else { 1 };
    let Some(n) = a.int(nk) else {
        return out.error(NOT_INT);
    };
    if n < 1 {
        return out.error(&at_least_one_key(spec.name));
    }
    if n > (a.len() - nk - 1) as i64 {
        return out.error(SYNTAX);
    }
    let n = n as usize;
    // Look every input up first (each counts a hit or a miss), as Redis does before it
    // reads the options.
    let mut found: Vec<Option<u32>> = Vec::with_capacity(n);
    for j in 0..n {
        let key = a.get(nk + 1 + j);
        let slot = key_slot(key);
        match store.read(slot, key, now) {
            Found::Missing => {
                found.push(None);
                continue;
            }
            Found::Zset(_) | Found::Set(_) => {}
            _ => return out.error(WRONGTYPE),
        }
        found.push(store.peek(slot, key, now).map(Entry::obj_index));
    }
    let mut weights = vec![1.0f64; n];
    let mut how = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = nk + 1 + n;
    let plain = matches!(op, Op::Union | Op::Inter);
    while j < a.len() {
        let left = a.len() - j;
        if plain && left > n && a.eq(j, "WEIGHTS") {
            j += 1;
            for w in weights.iter_mut() {
                match parse_float(a.get(j)) {
                    Some(v) => *w = v,
                    None => return out.error(WEIGHT_NOT_FLOAT),
                }
                j += 1;
            }
        } else if plain && left >= 2 && a.eq(j, "AGGREGATE") {
            how = if a.eq(j + 1, "SUM") {
                Aggregate::Sum
            } else if a.eq(j + 1, "MIN") {
                Aggregate::Min
            } else if a.eq(j + 1, "MAX") {
                Aggregate::Max
            } else {
                return out.error(SYNTAX);
            };
            j += 2;
        } else if !to_key && op != Op::Card && a.eq(j, "WITHSCORES") {
            withscores = true;
            j += 1;
        } else if op == Op::Card && left >= 2 && a.eq(j, "LIMIT") {
            match parse_long(a.get(j + 1), 0, i64::MAX) {
                Some(l) => limit = l as usize,
                None => return out.error(LIMIT_NEGATIVE),
            }
            j += 2;
        } else {
            return out.error(SYNTAX);
        }
    }
    let srcs: Vec<Src> = found
        .iter()
        .map(|f| match f.and_then(|i| store.obj_at(i)) {
            Some(Obj::Zset(z)) => Src::Zset(z),
            Some(Obj::Set(s)) => Src::Set(s),
            _ => Src::None,
        })
        .collect();
    // Smallest input first for union and intersection (Redis sorts them so too).
    let mut order: Vec<usize> = (0..n).collect();
    if op != Op::Diff {
        order.sort_by_key(|&i| srcs[i].len());
    }
    let mut result: Vec<(f64, Cow<[u8]>)> = Vec::new();
    let mut card = 0usize;
    match op {
        Op::Inter | Op::Card => {
            let first = order[0];
            for (s, m) in srcs[first].entries() {
                let mut total = weights[first] * s;
                if total.is_nan() {
                    total = 0.0;
                }
                let mut everywhere = true;
                for &k in &order[1..] {
                    match srcs[k].score(&m) {
                        Some(v) => aggregate(&mut total, v * weights[k], how),
                        None => {
                            everywhere = false;
                            break;
                        }
                    }
                }
                if !everywhere {
                    continue;
                }
                if op == Op::Card {
                    card += 1;
                    if limit > 0 && card >= limit {
                        break;
                    }
                } else {
                    result.push((total, m));
                }
            }
        }
        Op::Union => {
            let largest = order.last().map_or(0, |&i| srcs[i].len());
            let mut acc: hashbrown::HashMap<Cow<[u8]>, f64> =
                hashbrown::HashMap::with_capacity(largest);
            for &k in &order {
                for (s, m) in srcs[k].entries() {
                    let mut v = weights[k] * s;
                    if v.is_nan() {
                        v = 0.0;
                    }
                    acc.entry(m)
                        .and_modify(|t| aggregate(t, v, how))
                        .or_insert(v);
                }
            }
            result.extend(acc.into_iter().map(|(m, s)| (s, m)));
        }
        Op::Diff => {
            for (s, m) in srcs[0].entries() {
                if srcs[1..].iter().all(|o| o.score(&m).is_none()) {
                    result.push((s, m));
                }
            }
        }
    }
    if op == Op::Card {
        return out.int(card as i64);
    }
    result.sort_unstable_by(|x, y| cmp_key(x.0, &x.1, y.0, &y.1));
    if to_key {
        let z = Zset::from_sorted(&result);
        let len = z.len();
        put_result(store, a.get(1), z, now);
        return out.int(len as i64);
    }
    header(out, result.len(), withscores);
    for (s, m) in &result {
        element(out, *s, m, withscores);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, store};
    use super::*;
    use crate::proto::resp::command::lookup;

    fn bulk(s: &str) -> String {
        format!("${}\r\n{s}\r\n", s.len())
    }

    fn arr(items: &[&str]) -> String {
        let mut o = format!("*{}\r\n", items.len());
        for i in items {
            o.push_str(&bulk(i));
        }
        o
    }

    fn err(e: &str) -> String {
        format!("-{e}\r\n")
    }

    fn encoding(s: &mut Store, key: &str) -> &'static str {
        match s.read(key_slot(key.as_bytes()), key.as_bytes(), 0) {
            Found::Zset(z) => z.encoding(),
            _ => "none",
        }
    }

    /// Run in RESP3.
    fn run3(s: &mut Store, line: &str) -> String {
        let words: Vec<&str> = line.split(' ').collect();
        let mut src = Vec::new();
        let mut ranges = Vec::new();
        for w in &words {
            let st = src.len();
            src.extend_from_slice(w.as_bytes());
            ranges.push((st, src.len()));
        }
        let a = Args {
            src: &src,
            ranges: &ranges,
        };
        let spec = lookup(a.get(0)).unwrap();
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, true);
        super::super::exec_key(
            s,
            spec,
            &a,
            key_slot(a.get(1)),
            0,
            super::super::OomCheck::Refuse,
            &mut out,
        );
        String::from_utf8(buf).unwrap()
    }

    /// One blocking attempt in RESP2: the reply (empty when it would block) and the attempt.
    fn attempt(s: &mut Store, line: &str) -> (String, Attempt) {
        let words: Vec<&str> = line.split(' ').collect();
        let mut src = Vec::new();
        let mut ranges = Vec::new();
        for w in &words {
            let st = src.len();
            src.extend_from_slice(w.as_bytes());
            ranges.push((st, src.len()));
        }
        let a = Args {
            src: &src,
            ranges: &ranges,
        };
        let spec = lookup(a.get(0)).unwrap();
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, false);
        let r = try_blocking(s, spec, &a, 0, &mut out);
        (String::from_utf8(buf).unwrap(), r)
    }

    #[test]
    fn scores_print_like_redis_7_0() {
        let t = |f: f64| String::from_utf8(ScoreText::new(f).as_bytes().to_vec()).unwrap();
        assert_eq!(t(1.5), "1.5");
        assert_eq!(t(3.0), "3");
        assert_eq!(t(-0.0), "-0");
        assert_eq!(t(0.1), "0.10000000000000001");
        assert_eq!(t(1e17), "1e+17");
        assert_eq!(t(1e16), "10000000000000000");
        assert_eq!(t(123456789.125), "123456789.125");
        assert_eq!(t(1e-5), "1.0000000000000001e-05");
        assert_eq!(t(0.0001), "0.0001");
        assert_eq!(t(-2.5e-300), "-2.5e-300");
        assert_eq!(t(1.23e-5), "1.2300000000000001e-05");
        assert_eq!(t(5e-324), "4.9406564584124654e-324");
        assert_eq!(t(1e22), "1e+22");
        assert_eq!(t(12345678901234567890.0), "1.2345678901234567e+19");
        assert_eq!(t(0.30000000000000004), "0.30000000000000004");
        assert_eq!(t(f64::INFINITY), "inf");
        assert_eq!(t(f64::NEG_INFINITY), "-inf");
        assert_eq!(t(1.1), "1.1000000000000001");
        assert_eq!(t(1.7976931348623157e308), "1.7976931348623157e+308");
    }

    #[test]
    fn floats_parse_like_redis() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_float(b"1e5"), Some(1e5));
        assert_eq!(parse_float(b"nan"), None);
        assert_eq!(parse_float(b""), None);
        assert_eq!(parse_float(b" 1"), None);
        assert_eq!(parse_float(b"1 "), None);
        assert_eq!(parse_float(b"1e400"), None);
        assert_eq!(parse_float(b"1e-400"), None);
        assert_eq!(parse_float(b"0e-400"), Some(0.0));
        assert_eq!(parse_float(b"abc"), None);
        assert_eq!(parse_bound(b" 2"), Some(2.0));
        assert_eq!(parse_bound(b""), Some(0.0));
        assert_eq!(parse_bound(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_bound(b"NaN"), None);
        assert_eq!(parse_float(b"0x10"), Some(16.0));
        assert_eq!(parse_float(b"-0x1.8p1"), Some(-3.0));
        assert_eq!(parse_float(b"0x"), None);
        assert_eq!(parse_bound(b"0X.8"), Some(0.5));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b" 1"), None);
    }

    #[test]
    fn zadd_options_and_errors() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "ZADD z 1 a 2 b 3 c"), ":3\r\n");
        assert_eq!(run(&mut s, 0, "ZADD z 1 a 5 b"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "ZADD z CH 1 a 6 b 7 d"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "ZADD z NX 100 a 4 e"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "ZSCORE z a"), bulk("1"));
        assert_eq!(run(&mut s, 0, "ZADD z XX 10 a 10 nope"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "ZSCORE z a"), bulk("10"));
        assert_eq!(run(&mut s, 0, "ZSCORE z nope"), "$-1\r\n");
        assert_eq!(run(&mut s, 0, "ZADD z GT CH 5 a 20 b"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "ZADD z LT CH 5 a 30 b"), ":1\r\n");
        assert_eq!(
            run(&mut s, 0, "ZMSCORE z a b nope"),
            format!("*3\r\n{}{}$-1\r\n", bulk("5"), bulk("20"))
        );
        assert_eq!(run(&mut s, 0, "ZADD z INCR 2.5 a"), bulk("7.5"));
        assert_eq!(run(&mut s, 0, "ZADD z NX INCR 1 a"), "$-1\r\n");
        assert_eq!(run(&mut s, 0, "ZADD z GT INCR -1 a"), "$-1\r\n");
        assert_eq!(run(&mut s, 0, "ZINCRBY z 1 a"), bulk("8.5"));
        assert_eq!(run(&mut s, 0, "ZINCRBY z 1 new"), bulk("1"));
        assert_eq!(run(&mut s, 0, "ZADD z XX NX 1 a"), err(ZADD_XX_NX));
        assert_eq!(run(&mut s, 0, "ZADD z GT NX 1 a"), err(ZADD_GT_LT_NX));
        assert_eq!(run(&mut s, 0, "ZADD z LT GT 1 a"), err(ZADD_GT_LT_NX));
        assert_eq!(run(&mut s, 0, "ZADD z INCR 1 a 2 b"), err(ZADD_INCR_PAIR));
        assert_eq!(run(&mut s, 0, "ZADD z 1 a 2"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZADD z XX 1"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZADD z 1 a x b"), err(NOT_FLOAT));
        assert_eq!(run(&mut s, 0, "ZADD z nan a"), err(NOT_FLOAT));
        assert_eq!(run(&mut s, 0, "ZINCRBY z nx a"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZADD z inf x -inf y"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "ZINCRBY z -inf x"), err(SCORE_NAN));
        assert_eq!(run(&mut s, 0, "ZSCORE z x"), bulk("inf"));
        // XX on a missing key creates nothing.
        assert_eq!(run(&mut s, 0, "ZADD nokey XX 1 a"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "ZADD nokey XX INCR 1 a"), "$-1\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS nokey"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "SET str v"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "ZADD str 1 a"), err(WRONGTYPE));
        assert_eq!(run(&mut s, 0, "ZSCORE str a"), err(WRONGTYPE));
        assert_eq!(run(&mut s, 0, "TYPE z"), "+zset\r\n");
        s.check();
    }

    #[test]
    fn zrem_card_rank_and_counts() {
        let mut s = store();
        run(&mut s, 0, "ZADD z 1 a 2 b 3 c 4 d");
        assert_eq!(run(&mut s, 0, "ZCARD z"), ":4\r\n");
        assert_eq!(run(&mut s, 0, "ZCARD nope"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "ZRANK z c"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "ZREVRANK z c"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "ZRANK z x"), "$-1\r\n");
        assert_eq!(run(&mut s, 0, "ZRANK nope x"), "$-1\r\n");
        assert_eq!(run(&mut s, 0, "ZCOUNT z 2 3"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "ZCOUNT z (2 3"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "ZCOUNT z -inf +inf"), ":4\r\n");
        assert_eq!(run(&mut s, 0, "ZCOUNT z (3 (3"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "ZCOUNT z 4 1"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "ZCOUNT z x 1"), err(MIN_MAX_NOT_FLOAT));
        assert_eq!(run(&mut s, 0, "ZREM z a x b"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "ZREM nope a"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "ZREM z c d"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS z"), ":0\r\n");
        run(&mut s, 0, "ZADD l 0 a 0 b 0 c 0 d 0 e");
        assert_eq!(run(&mut s, 0, "ZLEXCOUNT l - +"), ":5\r\n");
        assert_eq!(run(&mut s, 0, "ZLEXCOUNT l [b (d"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "ZLEXCOUNT l (b [d"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "ZLEXCOUNT l + -"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "ZLEXCOUNT l [a [a"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "ZLEXCOUNT l (a [a"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "ZLEXCOUNT l a b"), err(MIN_MAX_NOT_LEX));
        assert_eq!(run(&mut s, 0, "ZLEXCOUNT l +x [b"), err(MIN_MAX_NOT_LEX));
        s.check();
    }

    #[test]
    fn ranges_by_rank_score_and_lex() {
        let mut s = store();
        run(&mut s, 0, "ZADD z 1 a 2 b 3 c 4 d 5 e");
        assert_eq!(
            run(&mut s, 0, "ZRANGE z 0 -1"),
            arr(&["a", "b", "c", "d", "e"])
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGE z 1 2 WITHSCORES"),
            arr(&["b", "2", "c", "3"])
        );
        assert_eq!(run(&mut s, 0, "ZRANGE z -2 100"), arr(&["d", "e"]));
        assert_eq!(run(&mut s, 0, "ZRANGE z 3 1"), "*0\r\n");
        assert_eq!(run(&mut s, 0, "ZRANGE z 0 1 REV"), arr(&["e", "d"]));
        assert_eq!(
            run(&mut s, 0, "ZREVRANGE z 0 1 WITHSCORES"),
            arr(&["e", "5", "d", "4"])
        );
        assert_eq!(run(&mut s, 0, "ZRANGE z (1 3 BYSCORE"), arr(&["b", "c"]));
        assert_eq!(
            run(&mut s, 0, "ZRANGE z 5 (2 BYSCORE REV"),
            arr(&["e", "d", "c"])
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGE z -inf +inf BYSCORE LIMIT 1 2"),
            arr(&["b", "c"])
        );
        assert_eq!(
            run(
                &mut s,
                0,
                "ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2 WITHSCORES"
            ),
            arr(&["d", "4", "c", "3"])
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGE z -inf +inf BYSCORE LIMIT 3 -1"),
            arr(&["d", "e"])
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGE z -inf +inf BYSCORE LIMIT -1 2"),
            "*0\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGE z -inf +inf BYSCORE LIMIT 9 2"),
            "*0\r\n"
        );
        assert_eq!(run(&mut s, 0, "ZRANGEBYSCORE z 2 4"), arr(&["b", "c", "d"]));
        assert_eq!(
            run(&mut s, 0, "ZRANGEBYSCORE z 2 4 LIMIT 0 1 WITHSCORES"),
            arr(&["b", "2"])
        );
        assert_eq!(
            run(&mut s, 0, "ZREVRANGEBYSCORE z 4 2"),
            arr(&["d", "c", "b"])
        );
        assert_eq!(run(&mut s, 0, "ZREVRANGEBYSCORE z (4 (2"), arr(&["c"]));
        assert_eq!(
            run(&mut s, 0, "ZRANGEBYSCORE z str 1"),
            err(MIN_MAX_NOT_FLOAT)
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGEBYSCORE z 1 NaN"),
            err(MIN_MAX_NOT_FLOAT)
        );
        assert_eq!(run(&mut s, 0, "ZRANGEBYSCORE z 0 -1 REV"), err(SYNTAX));
        assert_eq!(
            run(&mut s, 0, "ZRANGE z 0 -1 LIMIT 1 2"),
            err(LIMIT_WITH_RANK)
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGE z - + BYLEX WITHSCORES"),
            err(WITHSCORES_WITH_BYLEX)
        );
        assert_eq!(run(&mut s, 0, "ZREVRANGE z 0 -1 BYSCORE"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZRANGE z 0 x"), err(NOT_INT));
        assert_eq!(
            run(&mut s, 0, "ZRANGE z 0 1 LIMIT x 1 BYSCORE"),
            err(NOT_INT)
        );
        assert_eq!(run(&mut s, 0, "ZRANGE nope 0 -1"), "*0\r\n");
        run(
            &mut s,
            0,
            "ZADD l 0 alpha 0 bar 0 cool 0 down 0 elephant 0 foo",
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGEBYLEX l - [cool"),
            arr(&["alpha", "bar", "cool"])
        );
        assert_eq!(run(&mut s, 0, "ZRANGEBYLEX l (bar (down"), arr(&["cool"]));
        assert_eq!(
            run(&mut s, 0, "ZRANGEBYLEX l - + LIMIT 1 2"),
            arr(&["bar", "cool"])
        );
        assert_eq!(
            run(&mut s, 0, "ZREVRANGEBYLEX l + (d"),
            arr(&["foo", "elephant", "down"])
        );
        assert_eq!(
            run(&mut s, 0, "ZREVRANGEBYLEX l + - LIMIT 1 1"),
            arr(&["elephant"])
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGE l [b [d BYLEX"),
            arr(&["bar", "cool"])
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGEBYLEX l foo bar"),
            err(MIN_MAX_NOT_LEX)
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGEBYLEX l -x [bar"),
            err(MIN_MAX_NOT_LEX)
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGEBYLEX l - + WITHSCORES"),
            err(WITHSCORES_WITH_BYLEX)
        );
        assert_eq!(run(&mut s, 0, "SET str v"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "ZRANGE str 0 -1"), err(WRONGTYPE));
        // The range is checked before the key.
        assert_eq!(
            run(&mut s, 0, "ZRANGEBYSCORE str x 1"),
            err(MIN_MAX_NOT_FLOAT)
        );
    }

    #[test]
    fn resp3_replies_nest_scores() {
        let mut s = store();
        run(&mut s, 0, "ZADD z 1 a 2.5 b");
        assert_eq!(
            run3(&mut s, "ZRANGE z 0 -1 WITHSCORES"),
            "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
        );
        assert_eq!(
            run3(&mut s, "ZRANGE z 0 -1"),
            "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
        assert_eq!(run3(&mut s, "ZSCORE z b"), ",2.5\r\n");
        assert_eq!(run3(&mut s, "ZSCORE z x"), "_\r\n");
        assert_eq!(run3(&mut s, "ZINCRBY z 1 a"), ",2\r\n");
        assert_eq!(run3(&mut s, "ZPOPMIN z"), "*2\r\n$1\r\na\r\n,2\r\n");
        run(&mut s, 0, "ZADD z 1 a 3 c");
        assert_eq!(
            run3(&mut s, "ZPOPMIN z 2"),
            "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
        );
        assert_eq!(
            run3(&mut s, "ZMPOP 1 z MAX"),
            "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nc\r\n,3\r\n"
        );
        assert_eq!(run3(&mut s, "ZMPOP 1 z MAX"), "_\r\n");
        run(&mut s, 0, "ZADD z 1 a 2 b");
        assert_eq!(
            run3(&mut s, "ZUNION 1 z WITHSCORES"),
            "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n"
        );
        assert_eq!(
            run3(&mut s, "ZRANDMEMBER z 5 WITHSCORES"),
            "*2\r\n*2\r\n$1\r\nb\r\n,2\r\n*2\r\n$1\r\na\r\n,1\r\n"
        );
        // ZSCAN answers strings in RESP3 too.
        assert_eq!(
            run3(&mut s, "ZSCAN z 0"),
            format!("*2\r\n{}{}", bulk("0"), arr(&["a", "1", "b", "2"]))
        );
    }

    #[test]
    fn zrangestore_writes_the_destination() {
        let mut s = store();
        run(&mut s, 0, "ZADD z1 1 a 2 b 3 c 4 d");
        assert_eq!(run(&mut s, 0, "ZRANGESTORE z2 z1 0 1"), ":2\r\n");
        assert_eq!(
            run(&mut s, 0, "ZRANGE z2 0 -1 WITHSCORES"),
            arr(&["a", "1", "b", "2"])
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGESTORE z2 z1 5 0 BYSCORE REV LIMIT 0 2"),
            ":2\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGE z2 0 -1 WITHSCORES"),
            arr(&["c", "3", "d", "4"])
        );
        assert_eq!(run(&mut s, 0, "ZRANGESTORE z2 z1 [b [c BYLEX"), ":2\r\n");
        assert_eq!(
            run(&mut s, 0, "ZRANGESTORE z2 z1 0 -1 WITHSCORES"),
            err(SYNTAX)
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGESTORE z2 z1 0 -1 LIMIT 1 2"),
            err(LIMIT_WITH_RANK)
        );
        // An empty result deletes the destination.
        assert_eq!(run(&mut s, 0, "ZRANGESTORE z2 z1 5 6"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS z2"), ":0\r\n");
        run(&mut s, 0, "ZADD z2 1 a");
        assert_eq!(run(&mut s, 0, "ZRANGESTORE z2 missing 0 -1"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS z2"), ":0\r\n");
        run(&mut s, 0, "ZADD z2 1 a");
        run(&mut s, 0, "SET str v");
        assert_eq!(run(&mut s, 0, "ZRANGESTORE z2 str 0 -1"), err(WRONGTYPE));
        assert_eq!(run(&mut s, 0, "ZRANGE z2 0 -1"), arr(&["a"]));
        // The destination may hold any type; it is replaced.
        assert_eq!(run(&mut s, 0, "ZRANGESTORE str z1 0 0"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "TYPE str"), "+zset\r\n");
        s.check();
    }

    #[test]
    fn zremrange_by_rank_score_lex() {
        let mut s = store();
        run(&mut s, 0, "ZADD z 1 a 2 b 3 c 4 d 5 e");
        assert_eq!(run(&mut s, 0, "ZREMRANGEBYRANK z 1 2"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "ZRANGE z 0 -1"), arr(&["a", "d", "e"]));
        assert_eq!(run(&mut s, 0, "ZREMRANGEBYRANK z 5 10"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "ZREMRANGEBYRANK z x 1"), err(NOT_INT));
        assert_eq!(run(&mut s, 0, "ZREMRANGEBYSCORE z (1 4"), ":1\r\n");
        assert_eq!(
            run(&mut s, 0, "ZREMRANGEBYSCORE z str 1"),
            err(MIN_MAX_NOT_FLOAT)
        );
        assert_eq!(run(&mut s, 0, "ZREMRANGEBYSCORE z -inf +inf"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS z"), ":0\r\n");
        run(&mut s, 0, "ZADD l 0 a 0 b 0 c 0 d");
        assert_eq!(run(&mut s, 0, "ZREMRANGEBYLEX l [b (d"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "ZRANGE l 0 -1"), arr(&["a", "d"]));
        assert_eq!(run(&mut s, 0, "ZREMRANGEBYLEX l a b"), err(MIN_MAX_NOT_LEX));
        assert_eq!(run(&mut s, 0, "ZREMRANGEBYLEX nope - +"), ":0\r\n");
        s.check();
    }

    #[test]
    fn pops_and_mpop() {
        let mut s = store();
        run(&mut s, 0, "ZADD z 1 a 2 b 3 c 4 d");
        assert_eq!(run(&mut s, 0, "ZPOPMIN z"), arr(&["a", "1"]));
        assert_eq!(run(&mut s, 0, "ZPOPMAX z 2"), arr(&["d", "4", "c", "3"]));
        assert_eq!(run(&mut s, 0, "ZPOPMIN z 0"), "*0\r\n");
        assert_eq!(run(&mut s, 0, "ZPOPMIN z -1"), err(MUST_BE_POSITIVE));
        assert_eq!(run(&mut s, 0, "ZPOPMIN z 1 2"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZPOPMIN z 10"), arr(&["b", "2"]));
        assert_eq!(run(&mut s, 0, "EXISTS z"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "ZPOPMIN z"), "*0\r\n");
        run(&mut s, 0, "ZADD z2 1 a 2 b 3 c");
        assert_eq!(
            run(&mut s, 0, "ZMPOP 2 z z2 MIN COUNT 2"),
            "*2\r\n$2\r\nz2\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
        assert_eq!(run(&mut s, 0, "ZMPOP 1 z MIN"), "*-1\r\n");
        assert_eq!(run(&mut s, 0, "ZMPOP 0 z MIN"), err(NUMKEYS_NOT_POSITIVE));
        assert_eq!(run(&mut s, 0, "ZMPOP a z MIN"), err(NUMKEYS_NOT_POSITIVE));
        assert_eq!(run(&mut s, 0, "ZMPOP 1 z bad"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZMPOP 1 z MAX MIN"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZMPOP 1 z COUNT"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZMPOP 1 z MIN COUNT 1 COUNT 2"), err(SYNTAX));
        assert_eq!(
            run(&mut s, 0, "ZMPOP 1 z MIN COUNT 0"),
            err(COUNT_NOT_POSITIVE)
        );
        assert_eq!(
            run(&mut s, 0, "ZMPOP 1 z MIN COUNT a"),
            err(COUNT_NOT_POSITIVE)
        );
        assert_eq!(run(&mut s, 0, "ZMPOP 5 z MIN"), err(SYNTAX));
        run(&mut s, 0, "SET str v");
        assert_eq!(run(&mut s, 0, "ZPOPMIN str"), err(WRONGTYPE));
        assert_eq!(run(&mut s, 0, "ZPOPMIN str 0"), err(WRONGTYPE));
        assert_eq!(run(&mut s, 0, "ZMPOP 2 nope str MIN"), err(WRONGTYPE));
        // The first key that exists answers; a wrong type after it is not looked at.
        assert_eq!(
            run(&mut s, 0, "ZMPOP 2 z2 str MAX"),
            "*2\r\n$2\r\nz2\r\n*1\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n"
        );
        s.check();
    }

    #[test]
    fn blocking_pops_answer_or_would_block() {
        let mut s = store();
        assert_eq!(
            attempt(&mut s, "BZPOPMIN a b 0"),
            (String::new(), Attempt::WouldBlock { timeout_ms: None })
        );
        assert_eq!(
            attempt(&mut s, "BZPOPMAX a 1.5"),
            (
                String::new(),
                Attempt::WouldBlock {
                    timeout_ms: Some(1500)
                }
            )
        );
        assert_eq!(
            attempt(&mut s, "BZPOPMAX a 0.0001"),
            (
                String::new(),
                Attempt::WouldBlock {
                    timeout_ms: Some(1)
                }
            )
        );
        assert_eq!(attempt(&mut s, "BZPOPMIN a -1").0, err(TIMEOUT_NEGATIVE));
        assert_eq!(attempt(&mut s, "BZPOPMIN a x").0, err(TIMEOUT_NOT_FLOAT));
        assert_eq!(
            attempt(&mut s, "BZPOPMIN a 1e300").0,
            err(TIMEOUT_OUT_OF_RANGE)
        );
        run(&mut s, 0, "ZADD b 1 x 2 y");
        assert_eq!(
            attempt(&mut s, "BZPOPMIN a b 0"),
            (arr(&["b", "x", "1"]), Attempt::Answered)
        );
        assert_eq!(
            attempt(&mut s, "BZPOPMAX a b 0"),
            (arr(&["b", "y", "2"]), Attempt::Answered)
        );
        assert_eq!(run(&mut s, 0, "EXISTS b"), ":0\r\n");
        run(&mut s, 0, "ZADD b 1 x 2 y 3 z");
        assert_eq!(
            attempt(&mut s, "BZMPOP 0 2 a b MAX COUNT 2"),
            (
                "*2\r\n$1\r\nb\r\n*2\r\n*2\r\n$1\r\nz\r\n$1\r\n3\r\n*2\r\n$1\r\ny\r\n$1\r\n2\r\n"
                    .into(),
                Attempt::Answered
            )
        );
        assert_eq!(
            attempt(&mut s, "BZMPOP 2 1 a MIN"),
            (
                String::new(),
                Attempt::WouldBlock {
                    timeout_ms: Some(2000)
                }
            )
        );
        assert_eq!(
            attempt(&mut s, "BZMPOP 1 0 a MIN").0,
            err(NUMKEYS_NOT_POSITIVE)
        );
        assert_eq!(
            attempt(&mut s, "BZMPOP 1 1 a MIN COUNT 0").0,
            err(COUNT_NOT_POSITIVE)
        );
        // Arguments are checked before the timeout.
        assert_eq!(attempt(&mut s, "BZMPOP x 1 a bad").0, err(SYNTAX));
        assert_eq!(
            attempt(&mut s, "BZMPOP -1 1 a MIN").0,
            err(TIMEOUT_NEGATIVE)
        );
        run(&mut s, 0, "SET str v");
        assert_eq!(attempt(&mut s, "BZPOPMIN str 0").0, err(WRONGTYPE));
        assert_eq!(attempt(&mut s, "BZMPOP 0 1 str MIN").0, err(WRONGTYPE));
        // Where it cannot wait (exec_key: MULTI, scripts), an empty attempt times out at once.
        assert_eq!(run(&mut s, 0, "BZPOPMIN a 0"), "*-1\r\n");
        assert_eq!(run(&mut s, 0, "BZMPOP 0 1 a MIN"), "*-1\r\n");
        assert_eq!(run(&mut s, 0, "BZPOPMIN b 0"), arr(&["b", "x", "1"]));
        s.check();
    }

    #[test]
    fn set_operations() {
        let mut s = store();
        run(&mut s, 0, "ZADD a 1 x 2 y 3 z");
        run(&mut s, 0, "ZADD b 10 y 20 z 30 w");
        assert_eq!(run(&mut s, 0, "ZUNION 2 a b"), arr(&["x", "y", "z", "w"]));
        assert_eq!(
            run(&mut s, 0, "ZUNION 2 a b WITHSCORES"),
            arr(&["x", "1", "y", "12", "z", "23", "w", "30"])
        );
        assert_eq!(
            run(
                &mut s,
                0,
                "ZUNION 2 a b WEIGHTS 2 1 AGGREGATE MAX WITHSCORES"
            ),
            arr(&["x", "2", "y", "10", "z", "20", "w", "30"])
        );
        assert_eq!(
            run(&mut s, 0, "ZINTER 2 a b AGGREGATE MIN WITHSCORES"),
            arr(&["y", "2", "z", "3"])
        );
        assert_eq!(run(&mut s, 0, "ZINTER 2 a nope"), "*0\r\n");
        assert_eq!(run(&mut s, 0, "ZDIFF 2 a b WITHSCORES"), arr(&["x", "1"]));
        assert_eq!(run(&mut s, 0, "ZDIFF 1 a"), arr(&["x", "y", "z"]));
        assert_eq!(run(&mut s, 0, "ZINTERCARD 2 a b"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "ZINTERCARD 2 a b LIMIT 1"), ":1\r\n");
        assert_eq!(
            run(&mut s, 0, "ZINTERCARD 2 a b LIMIT -1"),
            err(LIMIT_NEGATIVE)
        );
        assert_eq!(run(&mut s, 0, "ZINTERCARD 1 a a"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZINTERCARD 1 a WITHSCORES"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZUNIONSTORE d 2 a b"), ":4\r\n");
        assert_eq!(
            run(&mut s, 0, "ZRANGE d 0 -1 WITHSCORES"),
            arr(&["x", "1", "y", "12", "z", "23", "w", "30"])
        );
        assert_eq!(run(&mut s, 0, "ZINTERSTORE d 2 a b WEIGHTS 1 0"), ":2\r\n");
        assert_eq!(
            run(&mut s, 0, "ZRANGE d 0 -1 WITHSCORES"),
            arr(&["y", "2", "z", "3"])
        );
        assert_eq!(run(&mut s, 0, "ZDIFFSTORE d 2 b a"), ":1\r\n");
        assert_eq!(
            run(&mut s, 0, "ZRANGE d 0 -1 WITHSCORES"),
            arr(&["w", "30"])
        );
        assert_eq!(run(&mut s, 0, "ZDIFFSTORE d 2 a a"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS d"), ":0\r\n");
        assert_eq!(
            run(&mut s, 0, "ZUNIONSTORE d 2 a b WITHSCORES"),
            err(SYNTAX)
        );
        assert_eq!(run(&mut s, 0, "ZDIFF 2 a b WEIGHTS 1 2"), err(SYNTAX));
        assert_eq!(
            run(&mut s, 0, "ZUNION 2 a b WEIGHTS 1 x"),
            err(WEIGHT_NOT_FLOAT)
        );
        assert_eq!(run(&mut s, 0, "ZUNION 2 a b AGGREGATE AVG"), err(SYNTAX));
        assert_eq!(
            run(&mut s, 0, "ZUNION 0 a"),
            err("ERR at least 1 input key is needed for 'zunion' command")
        );
        assert_eq!(
            run(&mut s, 0, "ZUNIONSTORE d 0 a"),
            err("ERR at least 1 input key is needed for 'zunionstore' command")
        );
        assert_eq!(run(&mut s, 0, "ZUNION 3 a b"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZUNION x a"), err(NOT_INT));
        run(&mut s, 0, "SET str v");
        assert_eq!(run(&mut s, 0, "ZUNION 2 a str"), err(WRONGTYPE));
        // The keys are checked before the options.
        assert_eq!(run(&mut s, 0, "ZUNION 2 a str BAD"), err(WRONGTYPE));
        // +inf and -inf add up to 0; a weight of 0 times inf is 0.
        run(&mut s, 0, "ZADD pi inf m");
        run(&mut s, 0, "ZADD ni -inf m");
        assert_eq!(
            run(&mut s, 0, "ZUNION 2 pi ni WITHSCORES"),
            arr(&["m", "0"])
        );
        assert_eq!(
            run(&mut s, 0, "ZUNION 1 pi WEIGHTS 0 WITHSCORES"),
            arr(&["m", "0"])
        );
        s.check();
    }

    #[test]
    fn zrandmember_and_zscan() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "ZRANDMEMBER nope"), "$-1\r\n");
        assert_eq!(run(&mut s, 0, "ZRANDMEMBER nope 5"), "*0\r\n");
        run(&mut s, 0, "ZADD z 1 a 2 b 3 c");
        assert!(["$1\r\na\r\n", "$1\r\nb\r\n", "$1\r\nc\r\n"]
            .contains(&run(&mut s, 0, "ZRANDMEMBER z").as_str()));
        assert_eq!(run(&mut s, 0, "ZRANDMEMBER z 0"), "*0\r\n");
        assert_eq!(
            run(&mut s, 0, "ZRANDMEMBER z 3 WITHSCORES"),
            arr(&["c", "3", "b", "2", "a", "1"])
        );
        assert_eq!(run(&mut s, 0, "ZRANDMEMBER z 2").matches('$').count(), 2);
        assert_eq!(run(&mut s, 0, "ZRANDMEMBER z -10").matches('$').count(), 10);
        assert_eq!(run(&mut s, 0, "ZRANDMEMBER z -9223372036854775808"), err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
        assert_eq!(
            run(&mut s, 0, "ZRANDMEMBER z -9223372036854770000 WITHSCORES"),
            err(OUT_OF_RANGE)
        );
        assert_eq!(run(&mut s, 0, "ZRANDMEMBER z 1 bad"), err(SYNTAX));
        assert_eq!(
            run(&mut s, 0, "ZRANDMEMBER z -999999999999"),
            err(ZRANDMEMBER_TOO_LARGE)
        );
        assert_eq!(
            run(&mut s, 0, "ZSCAN z 0"),
            format!(
                "*2\r\n{}{}",
                bulk("0"),
                arr(&["a", "1", "b", "2", "c", "3"])
            )
        );
        assert_eq!(
            run(&mut s, 0, "ZSCAN z 0 MATCH b*"),
            format!("*2\r\n{}{}", bulk("0"), arr(&["b", "2"]))
        );
        assert_eq!(run(&mut s, 0, "ZSCAN z x"), err(INVALID_CURSOR));
        assert_eq!(run(&mut s, 0, "ZSCAN z 0 COUNT 0"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "ZSCAN z 0 BAD 1"), err(SYNTAX));
        assert_eq!(
            run(&mut s, 0, "ZSCAN nope 0 BAD 1"),
            format!("*2\r\n{}*0\r\n", bulk("0"))
        );
        // A large set scans in pieces by score; every member comes back once per scan.
        for i in 0..1000 {
            run(&mut s, 0, &format!("ZADD big {} m{i}", i / 10));
        }
        assert_eq!(encoding(&mut s, "big"), "skiplist");
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            let reply = run(&mut s, 0, &format!("ZSCAN big {cursor} COUNT 25"));
            let lines: Vec<&str> = reply.split("\r\n").collect();
            cursor = lines[2].to_string();
            for pair in lines[4..].chunks(4) {
                if pair.len() == 4 {
                    assert!(seen.insert(pair[1].to_string()), "{} twice", pair[1]);
                }
            }
            calls += 1;
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
        assert!(calls >= 30, "{calls}");
    }

    #[test]
    fn large_sets_behave_the_same() {
        let mut s = store();
        for i in 0..3000 {
            run(&mut s, 0, &format!("ZADD big {} m{i:04}", i % 100));
        }
        s.check();
        assert_eq!(run(&mut s, 0, "ZCARD big"), ":3000\r\n");
        assert_eq!(run(&mut s, 0, "ZCOUNT big 10 (20"), ":300\r\n");
        assert_eq!(run(&mut s, 0, "ZRANK big m0001"), ":30\r\n");
        assert_eq!(
            run(&mut s, 0, "ZRANGE big 0 2"),
            arr(&["m0000", "m0100", "m0200"])
        );
        assert_eq!(
            run(&mut s, 0, "ZRANGEBYSCORE big 99 99 LIMIT 28 5"),
            arr(&["m2899", "m2999"])
        );
        assert_eq!(run(&mut s, 0, "ZREMRANGEBYSCORE big 0 49"), ":1500\r\n");
        assert_eq!(run(&mut s, 0, "ZINCRBY big -100 m0099"), bulk("-1"));
        assert_eq!(run(&mut s, 0, "ZPOPMIN big"), arr(&["m0099", "-1"]));
        assert_eq!(run(&mut s, 0, "ZINTERCARD 2 big big"), ":1499\r\n");
        assert_eq!(run(&mut s, 0, "ZUNIONSTORE u 1 big WEIGHTS 2"), ":1499\r\n");
        assert_eq!(run(&mut s, 0, "ZSCORE u m0050"), bulk("100"));
        assert_eq!(run(&mut s, 0, "ZRANGESTORE small big 0 9"), ":10\r\n");
        assert_eq!(encoding(&mut s, "small"), "listpack");
        s.check();
        // Memory is charged and given back.
        let used = s.used_bytes;
        assert!(used > 1499 * 10);
        run(&mut s, 0, "DEL big u small");
        assert!(s.used_bytes < used / 10, "{}", s.used_bytes);
        s.check();
    }

    #[test]
    fn plain_sets_are_inputs_with_score_one() {
        let mut s = store();
        run(&mut s, 0, "SADD st a b 7");
        run(&mut s, 0, "ZADD z 2 a 5 c");
        assert_eq!(
            run(&mut s, 0, "ZUNION 2 z st WITHSCORES"),
            "*8\r\n$1\r\n7\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n1\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nc\r\n$1\r\n5\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "ZINTERSTORE d 2 z st WEIGHTS 1 10"),
            ":1\r\n"
        );
        assert_eq!(run(&mut s, 0, "ZSCORE d a"), "$2\r\n12\r\n");
        assert_eq!(
            run(&mut s, 0, "ZDIFF 2 st z"),
            "*2\r\n$1\r\n7\r\n$1\r\nb\r\n"
        );
        s.check();
    }
}

//! Range bounds of the sorted-set commands: a score range (`(` for exclusive), a lex range
//! (`-`, `+`, `[`, `(`), each turned into the ranks it covers, and ZRANGE-style rank
//! indexes (negative from the end) turned into a rank span.

use super::scores::parse_bound;
use crate::cache::types::Zset;
#[derive(Debug, Clone, Copy)]
pub(super) struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    pub(super) fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
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
    pub(super) fn ranks(&self, z: &Zset) -> (usize, usize) {
        if self.min > self.max || (self.min == self.max && (self.minex || self.maxex)) {
            return (0, 0);
        }
        let start = z.partition(|s, _| !self.gte_min(s));
        let end = z.partition(|s, _| self.lte_max(s));
        (start, end.max(start))
    }

    pub(super) fn count(&self, z: &Zset) -> usize {
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
pub(super) struct LexRange<'a> {
    min: Lex<'a>,
    max: Lex<'a>,
}

impl<'a> LexRange<'a> {
    pub(super) fn parse(min: &'a [u8], max: &'a [u8]) -> Option<LexRange<'a>> {
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
    pub(super) fn ranks(&self, z: &Zset) -> (usize, usize) {
        if self.always_empty() {
            return (0, 0);
        }
        let start = z.partition(|_, m| !self.gte_min(m));
        let end = z.partition(|_, m| self.lte_max(m));
        (start, end.max(start))
    }

    pub(super) fn count(&self, z: &Zset) -> usize {
        let (s, e) = self.ranks(z);
        e - s
    }
}

/// ZRANGE-style indexes (negative from the end) turned into ranks `start..=end`, None when
/// the range is empty.
pub(super) fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
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

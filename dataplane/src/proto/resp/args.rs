//! A parsed request's arguments: ranges into the buffer the parser read (the connection's
//! query buffer, an inline request's scratch copy, or a forwarded frame).

use super::parse::parse_i64;

#[derive(Clone, Copy)]
pub struct Args<'a> {
    pub src: &'a [u8],
    pub ranges: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    #[inline]
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (s, e) = self.ranges[i];
        &self.src[s..e]
    }

    pub fn int(&self, i: usize) -> Option<i64> {
        parse_i64(self.get(i))
    }

    pub fn eq(&self, i: usize, word: &str) -> bool {
        self.get(i).eq_ignore_ascii_case(word.as_bytes())
    }
}

/// Tests: a command line split on single spaces into the buffer and ranges an [`Args`]
/// borrows (`Args { src: &src, ranges: &ranges }`).
#[cfg(test)]
pub fn split_words(line: &str) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut src = Vec::new();
    let mut ranges = Vec::new();
    for w in line.split(' ') {
        let s = src.len();
        src.extend_from_slice(w.as_bytes());
        ranges.push((s, src.len()));
    }
    (src, ranges)
}

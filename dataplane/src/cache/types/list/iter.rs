//! Iterators over a list, from a position towards either end.

use super::*;

/// Elements from a position towards the tail.
pub struct Iter<'a> {
    pub(super) list: &'a List,
    pub(super) ni: usize,
    pub(super) off: usize,
}

impl<'a> Iter<'a> {
    /// The entries' encoded bodies instead of their elements.
    pub(super) fn raw(self) -> RawIter<'a> {
        RawIter(self)
    }

    #[inline]
    pub(super) fn next_raw(&mut self) -> Option<&'a [u8]> {
        let mut n = self.list.nodes.get(self.ni)?;
        if self.off >= n.data_len() {
            self.ni += 1;
            self.off = 0;
            n = self.list.nodes.get(self.ni)?;
        }
        let (next, raw) = entry_at(n.data(), self.off);
        self.off = next;
        Some(raw)
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    #[inline]
    fn next(&mut self) -> Option<Elem<'a>> {
        self.next_raw().map(decode)
    }
}

pub(super) struct RawIter<'a>(Iter<'a>);

impl<'a> Iterator for RawIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.0.next_raw()
    }
}

/// Elements from the tail towards the head.
pub struct RevIter<'a> {
    pub(super) list: &'a List,
    /// The node being read is `ni - 1`; its entries before `end` are still to come.
    pub(super) ni: usize,
    pub(super) end: usize,
}

impl<'a> RevIter<'a> {
    pub(super) fn raw(self) -> RevRawIter<'a> {
        RevRawIter(self)
    }

    #[inline]
    pub(super) fn next_raw(&mut self) -> Option<&'a [u8]> {
        if self.end == 0 {
            self.ni = self.ni.checked_sub(1)?;
            self.end = self.list.nodes.get(self.ni)?.data_len();
        }
        let n = self.list.nodes.get(self.ni)?;
        let (start, raw) = entry_before(n.data(), self.end);
        self.end = start;
        Some(raw)
    }
}

impl<'a> Iterator for RevIter<'a> {
    type Item = Elem<'a>;

    #[inline]
    fn next(&mut self) -> Option<Elem<'a>> {
        self.next_raw().map(decode)
    }
}

pub(super) struct RevRawIter<'a>(RevIter<'a>);

impl<'a> Iterator for RevRawIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.0.next_raw()
    }
}

//! What an operation touches on one shard: keys, each read or written, or the whole shard,
//! and which connection it comes from. Two accesses conflict when they share a key that
//! one of them writes, when either takes the whole shard in a mode the other's keys or
//! shard-wide access clash with, or when they come from the same connection (a client's
//! commands on one shard run in the order it sent them).

use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Read,
    Write,
}

impl Mode {
    fn clashes(self, other: Mode) -> bool {
        self == Mode::Write || other == Mode::Write
    }
}

/// A connection anywhere on the node: the shard it lives on, its slot there and the slot's
/// generation (so a reused slot is a different connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub shard: u16,
    pub slot: u32,
    pub gen: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub keys: Vec<(Box<[u8]>, Mode)>,
    /// The whole shard (FLUSHALL, DBSIZE inside MULTI), in this mode.
    pub shard: Option<Mode>,
    pub origin: ConnId,
}

/// Key sets at least this large are compared through a hash set instead of pairwise.
const PAIRWISE_KEYS_MAX: usize = 8;

impl Access {
    pub fn new(origin: ConnId) -> Access {
        Access {
            keys: Vec::new(),
            shard: None,
            origin,
        }
    }

    pub fn key(mut self, k: &[u8], m: Mode) -> Access {
        self.add(k, m);
        self
    }

    pub fn add(&mut self, k: &[u8], m: Mode) {
        self.keys.push((k.into(), m));
    }

    pub fn conflicts(&self, other: &Access) -> bool {
        if self.origin == other.origin {
            return true;
        }
        match (self.shard, other.shard) {
            (Some(a), Some(b)) if a.clashes(b) => return true,
            (Some(a), _) if other.keys.iter().any(|(_, m)| a.clashes(*m)) => return true,
            (_, Some(b)) if self.keys.iter().any(|(_, m)| b.clashes(*m)) => return true,
            _ => {}
        }
        let (small, large) = if self.keys.len() <= other.keys.len() {
            (&self.keys, &other.keys)
        } else {
            (&other.keys, &self.keys)
        };
        if small.len() <= PAIRWISE_KEYS_MAX || large.len() <= PAIRWISE_KEYS_MAX {
            return small
                .iter()
                .any(|(k, m)| large.iter().any(|(l, n)| k == l && m.clashes(*n)));
        }
        let writes: HashSet<&[u8]> = small
            .iter()
            .filter(|(_, m)| *m == Mode::Write)
            .map(|(k, _)| &k[..])
            .collect();
        let all: HashSet<&[u8]> = small.iter().map(|(k, _)| &k[..]).collect();
        large.iter().any(|(k, m)| match m {
            Mode::Write => all.contains(&k[..]),
            Mode::Read => writes.contains(&k[..]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u32) -> ConnId {
        ConnId {
            shard: 0,
            slot: n,
            gen: 0,
        }
    }

    #[test]
    fn conflicts_follow_modes_keys_and_origin() {
        let r = |o, k: &str| Access::new(c(o)).key(k.as_bytes(), Mode::Read);
        let w = |o, k: &str| Access::new(c(o)).key(k.as_bytes(), Mode::Write);
        assert!(!r(1, "a").conflicts(&r(2, "a")), "readers share");
        assert!(r(1, "a").conflicts(&w(2, "a")));
        assert!(w(1, "a").conflicts(&w(2, "a")));
        assert!(!w(1, "a").conflicts(&w(2, "b")));
        assert!(
            w(1, "a").conflicts(&w(1, "b")),
            "one client's commands keep their order"
        );
        let mut all = Access::new(c(3));
        all.shard = Some(Mode::Write);
        assert!(all.conflicts(&r(2, "z")));
        let mut read_all = Access::new(c(4));
        read_all.shard = Some(Mode::Read);
        assert!(!read_all.conflicts(&r(2, "z")));
        assert!(read_all.conflicts(&w(2, "z")));
        // Large sets go through the hash path and agree with the pairwise one.
        let mut big1 = Access::new(c(5));
        let mut big2 = Access::new(c(6));
        for i in 0..20 {
            big1.add(format!("x{i}").as_bytes(), Mode::Read);
            big2.add(format!("y{i}").as_bytes(), Mode::Write);
        }
        assert!(!big1.conflicts(&big2));
        big2.add(b"x7", Mode::Read);
        assert!(!big1.conflicts(&big2), "two readers of x7");
        big2.add(b"x9", Mode::Write);
        assert!(big1.conflicts(&big2));
    }
}

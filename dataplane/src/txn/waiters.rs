//! Clients parked on keys (BLPOP, BLMOVE, BZPOPMIN ...): an owner shard's register of the
//! blocking commands that found every key empty, in the order they arrived per key.
//!
//! Owned by one shard (the keys' owner). A waiter is registered under each of its keys; a
//! write to one of them lets the shard try the waiters of that key first-come first-served
//! (`shard/blocked.rs`). A waiter leaves the register exactly once: served, timed out, or
//! dropped because its connection closed, and each of those answers its part once.

use std::collections::VecDeque;

use hashbrown::HashMap;

use super::{ConnId, PartRef};
use crate::runtime::slab::{Slab, SlabKey};

/// One parked command.
#[derive(Debug)]
pub struct Waiter {
    /// The command as the client sent it (one RESP frame).
    pub frame: Box<[u8]>,
    pub resp3: bool,
    pub origin: ConnId,
    /// Where its answer goes: the coordinator shard and the part.
    pub from: u16,
    pub to: PartRef,
    /// Unix ms after which it answers its timeout reply; None: it waits for ever.
    pub deadline_ms: Option<u64>,
    pub keys: Vec<Box<[u8]>>,
}

#[derive(Default)]
pub struct Waiters {
    slab: Slab<Waiter>,
    by_key: HashMap<Box<[u8]>, VecDeque<SlabKey>>,
    /// Waiters with a deadline.
    timed: usize,
}

impl Waiters {
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Is any waiter waiting for a deadline (the shard keeps its fast timer armed)?
    pub fn timed(&self) -> bool {
        self.timed > 0
    }

    /// Park `w` at the back of each of its keys' queues.
    pub fn add(&mut self, w: Waiter) -> SlabKey {
        let keys = w.keys.clone();
        self.timed += w.deadline_ms.is_some() as usize;
        let id = self.slab.insert(w);
        for k in keys {
            let q = self.by_key.entry(k).or_default();
            if !q.contains(&id) {
                q.push_back(id);
            }
        }
        id
    }

    /// The first waiter on `key`.
    pub fn first(&self, key: &[u8]) -> Option<SlabKey> {
        self.by_key.get(key).and_then(|q| q.front().copied())
    }

    /// The waiter after `id` on `key` (the one to try when `id` may not run yet).
    pub fn after(&self, key: &[u8], id: SlabKey) -> Option<SlabKey> {
        let q = self.by_key.get(key)?;
        let i = q.iter().position(|&x| x == id)?;
        q.get(i + 1).copied()
    }

    pub fn get(&self, id: SlabKey) -> Option<&Waiter> {
        self.slab.get(id)
    }

    /// Take `id` out of the register (and out of every key's queue).
    pub fn remove(&mut self, id: SlabKey) -> Option<Waiter> {
        let w = self.slab.remove(id)?;
        self.timed -= w.deadline_ms.is_some() as usize;
        for k in &w.keys {
            if let Some(q) = self.by_key.get_mut(&k[..]) {
                q.retain(|&x| x != id);
                if q.is_empty() {
                    self.by_key.remove(&k[..]);
                }
            }
        }
        Some(w)
    }

    /// Waiters whose deadline is at or before `now_ms`, in slot order.
    pub fn expired(&self, now_ms: u64, out: &mut Vec<SlabKey>) {
        if self.timed == 0 {
            return;
        }
        for (slot, w) in self.slab.iter() {
            if w.deadline_ms.is_some_and(|d| d <= now_ms) {
                let gen = self.slab.gen(slot).expect("a filled slot has a generation");
                out.push(SlabKey { slot, gen });
            }
        }
    }

    /// Every waiter.
    pub fn all(&self, out: &mut Vec<SlabKey>) {
        for (slot, _) in self.slab.iter() {
            let gen = self.slab.gen(slot).expect("a filled slot has a generation");
            out.push(SlabKey { slot, gen });
        }
    }

    /// Every waiter of connection `origin`.
    pub fn of(&self, origin: ConnId, out: &mut Vec<SlabKey>) {
        for (slot, w) in self.slab.iter() {
            if w.origin == origin {
                let gen = self.slab.gen(slot).expect("a filled slot has a generation");
                out.push(SlabKey { slot, gen });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::FlightRef;

    fn waiter(conn: u32, keys: &[&str], deadline_ms: Option<u64>) -> Waiter {
        Waiter {
            frame: Box::new([]),
            resp3: false,
            origin: ConnId {
                shard: 0,
                slot: conn,
                gen: 1,
            },
            from: 0,
            to: PartRef {
                flight: FlightRef { id: conn, gen: 1 },
                part: 0,
            },
            deadline_ms,
            keys: keys.iter().map(|k| k.as_bytes().into()).collect(),
        }
    }

    #[test]
    fn first_come_first_served_per_key_and_left_once() {
        let mut w = Waiters::default();
        let a = w.add(waiter(1, &["x", "y"], None));
        let b = w.add(waiter(2, &["y"], Some(100)));
        let c = w.add(waiter(3, &["x", "x"], Some(50)));
        assert_eq!(w.first(b"x"), Some(a));
        assert_eq!(w.first(b"y"), Some(a));
        assert_eq!(w.after(b"x", a), Some(c));
        assert_eq!(w.after(b"x", c), None);
        assert!(w.timed());
        let mut due = Vec::new();
        w.expired(60, &mut due);
        assert_eq!(due, [c]);
        assert!(w.remove(a).is_some());
        assert!(w.remove(a).is_none(), "a waiter leaves once");
        assert_eq!(w.first(b"y"), Some(b));
        assert_eq!(w.first(b"x"), Some(c));
        let mut mine = Vec::new();
        w.of(b_origin(), &mut mine);
        assert_eq!(mine, [b]);
        w.remove(b);
        w.remove(c);
        assert!(w.is_empty() && !w.timed() && w.first(b"x").is_none());
    }

    fn b_origin() -> ConnId {
        ConnId {
            shard: 0,
            slot: 2,
            gen: 1,
        }
    }
}

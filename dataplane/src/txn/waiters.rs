//! Clients parked on keys (BLPOP, BLMOVE, BZPOPMIN ...): a shard's register of the blocking
//! commands that found every key empty, in the order they arrived per key.
//!
//! Owned by one shard. A waiter is one of three kinds ([`Kind`]):
//! - [`Kind::Local`]: a command whose keys this shard owns, parked under each of them and
//!   tried again here when one is written (`shard/blocked.rs`).
//! - [`Kind::Across`]: a command over keys of several shards, on its *client's* shard. It is
//!   under no key: each attempt is a transaction over the keys' owners, and between attempts
//!   it waits for a wake-up from one of them, its deadline, or its connection's end.
//! - [`Kind::Notify`]: on an owner, such a command's place in line under its keys here. A
//!   write that reaches it does not serve it: it wakes the client's shard, which tries the
//!   whole command again, and holds the line until that attempt settles it (armed again, or
//!   gone).
//!
//! Per key, waiters of every kind stand in one line in arrival order, and the first is
//! served (or woken) first. A waiter leaves the register exactly once: served, timed out, or
//! dropped because its connection closed (or, for a `Notify`, because its command is over),
//! and each of those answers its part once.

use std::collections::VecDeque;

use hashbrown::HashMap;

use super::{ConnId, PartRef};
use crate::runtime::slab::{Slab, SlabKey};

/// A blocking command as it was asked for: its frame and where its answer goes.
#[derive(Debug)]
pub struct Parked {
    /// The command as the client sent it (one RESP frame).
    pub frame: Box<[u8]>,
    pub resp3: bool,
    /// The coordinator shard of its part, and the part.
    pub from: u16,
    pub to: PartRef,
}

/// Where a waiter across shards is in its cycle on its client's shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// An attempt (a transaction over the owners) is in flight.
    Attempting,
    /// Its notify-only waiters are armed on the owners; it waits for a wake-up.
    Waiting,
}

/// A command over keys of several shards, on its client's shard.
#[derive(Debug)]
pub struct Across {
    pub cmd: Parked,
    /// The keys it waits on (for BLMOVE only the source), by owner.
    pub awaited: Vec<(usize, Vec<Box<[u8]>>)>,
    /// The kind of value it waits for (list or sorted set).
    pub kind: u8,
    pub stage: Stage,
    /// An attempt found nothing and armed notify-only waiters on the owners (set through
    /// [`Waiters::arm`]): from then on it is a blocked client, and those waiters must be
    /// dropped when it ends other than through an attempt that took something.
    pub armed: bool,
    /// A wake-up came during an attempt: try again when it ends.
    pub again: bool,
    /// Its connection closed during an attempt: end when it ends, taking nothing.
    pub gone: bool,
    /// Its deadline passed (or the node is shutting down) during an attempt: answer the
    /// timeout when it ends with nothing.
    pub expired: bool,
}

/// On an owner: a waiter across shards' place under its keys here.
#[derive(Debug)]
pub struct Notify {
    /// Its client's shard, and its waiter there.
    pub client: u16,
    pub waiter: SlabKey,
    /// The kind of value it waits for.
    pub kind: u8,
    /// Its client's shard was told; the line waits for that attempt to settle it.
    pub woken: bool,
}

#[derive(Debug)]
pub enum Kind {
    Local(Parked),
    Across(Across),
    Notify(Notify),
}

/// One registered waiter.
#[derive(Debug)]
pub struct Waiter {
    pub origin: ConnId,
    /// Unix ms after which it answers its timeout reply; None: it waits for ever (or, for a
    /// `Notify`, until its client's shard drops it).
    pub deadline_ms: Option<u64>,
    /// The keys it stands in line under (none for `Across`).
    pub keys: Vec<Box<[u8]>>,
    pub kind: Kind,
}

impl Waiter {
    /// Is this a blocked client here (what INFO's blocked_clients counts)? A command across
    /// shards counts once it found nothing, on its client's shard only.
    fn is_client(&self) -> bool {
        match &self.kind {
            Kind::Local(_) => true,
            Kind::Across(x) => x.armed,
            Kind::Notify(_) => false,
        }
    }
}

#[derive(Default)]
pub struct Waiters {
    slab: Slab<Waiter>,
    by_key: HashMap<Box<[u8]>, VecDeque<SlabKey>>,
    /// `Notify` waiters by their client's shard and waiter there.
    notifies: HashMap<(u16, SlabKey), SlabKey>,
    /// Waiters with a deadline.
    timed: usize,
    /// Waiters that are blocked clients ([`Waiter::is_client`]).
    clients: usize,
}

impl Waiters {
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Clients blocked here (a command across shards counts on its client's shard only).
    pub fn clients(&self) -> usize {
        self.clients
    }

    /// Is any waiter waiting for a deadline (the shard keeps its fast timer armed)?
    pub fn timed(&self) -> bool {
        self.timed > 0
    }

    /// Register `w` at the back of each of its keys' lines.
    pub fn add(&mut self, w: Waiter) -> SlabKey {
        let keys = w.keys.clone();
        self.timed += w.deadline_ms.is_some() as usize;
        self.clients += w.is_client() as usize;
        let notify = match &w.kind {
            Kind::Notify(n) => Some((n.client, n.waiter)),
            _ => None,
        };
        let id = self.slab.insert(w);
        if let Some(n) = notify {
            let old = self.notifies.insert(n, id);
            assert!(old.is_none(), "two notify-only waiters for {n:?}");
        }
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

    /// The waiter after `id` on `key`.
    pub fn after(&self, key: &[u8], id: SlabKey) -> Option<SlabKey> {
        let q = self.by_key.get(key)?;
        let i = q.iter().position(|&x| x == id)?;
        q.get(i + 1).copied()
    }

    pub fn get(&self, id: SlabKey) -> Option<&Waiter> {
        self.slab.get(id)
    }

    pub fn get_mut(&mut self, id: SlabKey) -> Option<&mut Waiter> {
        self.slab.get_mut(id)
    }

    /// The `Across` waiter `id`, if it is one.
    pub fn across(&mut self, id: SlabKey) -> Option<&mut Across> {
        match self.slab.get_mut(id).map(|w| &mut w.kind) {
            Some(Kind::Across(a)) => Some(a),
            _ => None,
        }
    }

    /// `Across` waiter `id` found nothing and armed its waiters on the owners.
    pub fn arm(&mut self, id: SlabKey) {
        if let Some(x) = self.across(id) {
            if !x.armed {
                x.armed = true;
                self.clients += 1;
            }
        }
    }

    /// The `Notify` waiter for waiter `waiter` of shard `client`.
    pub fn notify_of(&self, client: u16, waiter: SlabKey) -> Option<SlabKey> {
        self.notifies.get(&(client, waiter)).copied()
    }

    /// It no longer waits for a deadline (an `Across` whose deadline passed mid-attempt).
    pub fn clear_deadline(&mut self, id: SlabKey) {
        if let Some(w) = self.slab.get_mut(id) {
            if w.deadline_ms.take().is_some() {
                self.timed -= 1;
            }
        }
    }

    /// Take `id` out of the register (and out of every key's line).
    pub fn remove(&mut self, id: SlabKey) -> Option<Waiter> {
        let w = self.slab.remove(id)?;
        self.timed -= w.deadline_ms.is_some() as usize;
        self.clients -= w.is_client() as usize;
        if let Kind::Notify(n) = &w.kind {
            self.notifies.remove(&(n.client, n.waiter));
        }
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

    fn ids(&self, mut keep: impl FnMut(&Waiter) -> bool, out: &mut Vec<SlabKey>) {
        for (slot, w) in self.slab.iter() {
            if keep(w) {
                let gen = self.slab.gen(slot).expect("a filled slot has a generation");
                out.push(SlabKey { slot, gen });
            }
        }
    }

    /// Waiters whose deadline is at or before `now_ms`, in slot order.
    pub fn expired(&self, now_ms: u64, out: &mut Vec<SlabKey>) {
        if self.timed > 0 {
            self.ids(|w| w.deadline_ms.is_some_and(|d| d <= now_ms), out);
        }
    }

    /// Every waiter.
    pub fn all(&self, out: &mut Vec<SlabKey>) {
        self.ids(|_| true, out);
    }

    /// Every waiter of connection `origin`.
    pub fn of(&self, origin: ConnId, out: &mut Vec<SlabKey>) {
        self.ids(|w| w.origin == origin, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::FlightRef;

    fn origin(conn: u32) -> ConnId {
        ConnId {
            shard: 0,
            slot: conn,
            gen: 1,
        }
    }

    fn waiter(conn: u32, keys: &[&str], deadline_ms: Option<u64>) -> Waiter {
        Waiter {
            origin: origin(conn),
            deadline_ms,
            keys: keys.iter().map(|k| k.as_bytes().into()).collect(),
            kind: Kind::Local(Parked {
                frame: Box::new([]),
                resp3: false,
                from: 0,
                to: PartRef {
                    flight: FlightRef { id: conn, gen: 1 },
                    part: 0,
                },
            }),
        }
    }

    fn notify(conn: u32, keys: &[&str], client: u16, waiter: SlabKey) -> Waiter {
        Waiter {
            origin: origin(conn),
            deadline_ms: None,
            keys: keys.iter().map(|k| k.as_bytes().into()).collect(),
            kind: Kind::Notify(Notify {
                client,
                waiter,
                kind: 2,
                woken: false,
            }),
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
        w.of(origin(2), &mut mine);
        assert_eq!(mine, [b]);
        w.remove(b);
        w.remove(c);
        assert!(w.is_empty() && !w.timed() && w.first(b"x").is_none());
    }

    #[test]
    fn notify_waiters_share_the_line_and_are_not_clients() {
        let mut w = Waiters::default();
        let far = SlabKey { slot: 7, gen: 3 };
        let a = w.add(waiter(1, &["x"], None));
        let n = w.add(notify(2, &["x", "y"], 1, far));
        let b = w.add(waiter(3, &["x"], None));
        assert_eq!(w.clients(), 2, "a notify-only waiter is no client here");
        assert_eq!(w.notify_of(1, far), Some(n));
        assert_eq!(w.notify_of(0, far), None);
        assert_eq!(w.after(b"x", a), Some(n));
        assert_eq!(w.after(b"x", n), Some(b));
        assert_eq!(w.first(b"y"), Some(n));
        w.remove(a);
        assert_eq!(w.first(b"x"), Some(n), "it keeps its place in line");
        w.remove(n);
        assert_eq!(w.notify_of(1, far), None);
        assert_eq!(w.first(b"x"), Some(b));
        assert!(w.first(b"y").is_none());
        w.remove(b);
        assert!(w.is_empty() && w.clients() == 0);
    }

    #[test]
    fn a_waiter_across_shards_is_a_blocked_client_once_armed() {
        let mut w = Waiters::default();
        let Kind::Local(cmd) = waiter(1, &[], None).kind else {
            unreachable!()
        };
        let x = w.add(Waiter {
            origin: origin(1),
            deadline_ms: Some(5),
            keys: Vec::new(),
            kind: Kind::Across(Across {
                cmd,
                awaited: Vec::new(),
                kind: 2,
                stage: Stage::Attempting,
                armed: false,
                again: false,
                gone: false,
                expired: false,
            }),
        });
        assert_eq!(
            w.clients(),
            0,
            "not blocked before its first attempt found nothing"
        );
        w.arm(x);
        w.arm(x);
        assert_eq!(w.clients(), 1);
        assert!(w.across(x).is_some_and(|a| a.armed));
        w.remove(x);
        assert_eq!(w.clients(), 0);
        assert!(w.is_empty() && !w.timed());
    }

    #[test]
    fn a_deadline_cleared_mid_attempt_stops_the_timer() {
        let mut w = Waiters::default();
        let a = w.add(waiter(1, &[], Some(10)));
        assert!(w.timed());
        w.clear_deadline(a);
        assert!(!w.timed());
        let mut due = Vec::new();
        w.expired(100, &mut due);
        assert!(due.is_empty());
        w.clear_deadline(a);
        w.remove(a);
        assert!(!w.timed() && w.clients() == 0);
    }
}

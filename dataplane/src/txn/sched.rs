//! The owner side of the transaction framework: one [`Scheduler`] per shard decides when
//! work that touches the shard's keys may run.
//!
//! Every piece of work that has to wait sits in one queue ordered by position. A position
//! is a Lamport timestamp: `(counter, shard)`, unique across the node. A multi-shard
//! transaction first *proposes* on each of its shards: the shard gives it the next
//! position of its own clock and records its intents (the keys it will touch). The
//! coordinator takes the largest proposal as the *final* position and sends it with the
//! transaction's first hop; every shard moves the transaction there (a final position is
//! never smaller than that shard's proposal) and advances its clock past it. This is
//! Skeen's total-order algorithm applied to conflicts: two conflicting transactions end up
//! in the same relative order on every shard they share, without a global counter and
//! without retries.
//!
//! A queued entry may run its armed work when its position is final and no entry ahead of
//! it conflicts with it ([`super::access::Access::conflicts`]). Entries ahead are either
//! final (smaller position: they really come first) or provisional (their final position
//! is not known yet, so whatever conflicts with them waits). Nothing waits for anything
//! behind it, and every provisional entry becomes final by messages alone, so the oldest
//! final entry can always run: no deadlock.
//!
//! Work for one shard only (a GET, or an MGET whose keys all live here) is *admitted*: it
//! runs at once when nothing queued conflicts with it, which is the common case and costs
//! a hash lookup; otherwise it joins the queue at the next position, final from the start.
//!
//! A transaction's entry stays in the queue between its hops (its keys stay held) and
//! leaves when a hop marked `conclude` has run, or on a conclude without work (an abort).
//!
//! One connection's requests keep the order it sent them in (a pipelined MSET then MGET
//! sees its own write). Skeen's final position can move a transaction *behind* work that
//! arrived after it, so work from a connection that has a provisional transaction here is
//! *parked*: it takes its place (and a proposal gets its answer) only once that transaction
//! is final, after it. Parking waits only on the same connection's earlier requests, which
//! finalise by messages alone, so it adds no deadlock.

use std::collections::{BTreeMap, VecDeque};

use hashbrown::HashMap;

use super::access::{Access, ConnId, Mode};

/// A place in a shard's queue: a Lamport timestamp, unique on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub clock: u64,
    pub shard: u16,
}

/// A multi-shard transaction: its coordinator shard and that shard's serial number for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxId {
    pub shard: u16,
    pub serial: u64,
}

struct Entry<W> {
    tx: Option<TxId>,
    fin: bool,
    access: Access,
    /// Work that may run once the entry is runnable.
    armed: Option<W>,
    /// Leave the queue once `armed` has run.
    conclude: bool,
    /// Work was handed out and has not been reported run ([`Scheduler::ran`]): the entry
    /// still holds its keys, so nothing that arrives meanwhile overtakes it.
    running: bool,
}

/// What the entries ahead of a point in the queue hold, together.
#[derive(Default)]
struct Held<'a> {
    keys: HashMap<&'a [u8], Mode>,
    writes: usize,
    origins: hashbrown::HashSet<ConnId>,
    shard: Option<Mode>,
}

impl<'a> Held<'a> {
    fn add(&mut self, a: &'a Access) {
        for (k, m) in &a.keys {
            let held = self.keys.entry(&k[..]).or_insert(Mode::Read);
            if *m == Mode::Write && *held == Mode::Read {
                *held = Mode::Write;
                self.writes += 1;
            }
        }
        self.origins.insert(a.origin);
        if let Some(m) = a.shard {
            if self.shard != Some(Mode::Write) {
                self.shard = Some(m);
            }
        }
    }

    /// Would `a` conflict with one of the entries added (see `Access::conflicts`)?
    fn conflicts(&self, a: &Access) -> bool {
        if self.origins.contains(&a.origin) {
            return true;
        }
        match (a.shard, self.shard) {
            (Some(Mode::Write), _) if !self.keys.is_empty() || self.shard.is_some() => return true,
            (Some(Mode::Read), _) if self.writes > 0 || self.shard == Some(Mode::Write) => {
                return true
            }
            _ => {}
        }
        a.keys.iter().any(|(k, m)| match self.shard {
            Some(Mode::Write) => true,
            Some(Mode::Read) if *m == Mode::Write => true,
            _ => self
                .keys
                .get(&k[..])
                .is_some_and(|h| *h == Mode::Write || *m == Mode::Write),
        })
    }
}

/// Work handed out by [`Scheduler::runnable`]: run it, then report it with
/// [`Scheduler::ran`].
pub struct Ticket {
    at: Pos,
    conclude: bool,
}

/// A request parked behind its connection's provisional transaction.
enum Parked<W> {
    /// A proposal; `reply` is what the caller needs to answer it later.
    Propose {
        tx: TxId,
        access: Access,
        reply: W,
    },
    Admit {
        access: Access,
        work: W,
    },
}

pub struct Scheduler<W> {
    me: u16,
    clock: u64,
    queue: BTreeMap<Pos, Entry<W>>,
    txs: HashMap<TxId, Pos>,
    /// How many queued entries name each key, take the whole shard, or come from each
    /// connection (parked requests included): what the fast path of
    /// [`Scheduler::admit`] checks.
    intents: HashMap<Box<[u8]>, u32>,
    whole: u32,
    origins: HashMap<ConnId, u32>,
    /// Provisional entries per connection, and what its later requests parked.
    provisional: HashMap<ConnId, u32>,
    parked: HashMap<ConnId, VecDeque<Parked<W>>>,
    /// Proposals answered late (once unparked), for the caller to send.
    answered: Vec<(Pos, W)>,
}

impl<W> Scheduler<W> {
    pub fn new(me: u16) -> Scheduler<W> {
        Scheduler {
            me,
            clock: 0,
            queue: BTreeMap::new(),
            txs: HashMap::new(),
            intents: HashMap::new(),
            whole: 0,
            origins: HashMap::new(),
            provisional: HashMap::new(),
            parked: HashMap::new(),
            answered: Vec::new(),
        }
    }

    /// Does `origin` have a provisional transaction or parked requests here?
    fn must_park(&self, origin: &ConnId) -> bool {
        self.provisional.contains_key(origin) || self.parked.contains_key(origin)
    }

    fn park(&mut self, origin: ConnId, p: Parked<W>) {
        *self.origins.entry(origin).or_insert(0) += 1;
        self.parked.entry(origin).or_default().push_back(p);
    }

    /// Proposals answered since the last call: (position, the caller's reply note).
    pub fn take_answered(&mut self, out: &mut Vec<(Pos, W)>) {
        out.append(&mut self.answered);
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn next_pos(&mut self) -> Pos {
        self.clock += 1;
        Pos {
            clock: self.clock,
            shard: self.me,
        }
    }

    /// Nothing queued conflicts with `a`. The counters answer most calls; a possible
    /// conflict is confirmed against the queue.
    fn free_for(&self, a: &Access) -> bool {
        if self.queue.is_empty() {
            return true;
        }
        let maybe = self.origins.contains_key(&a.origin)
            || a.shard.is_some()
            || self.whole > 0
            || a.keys.iter().any(|(k, _)| self.intents.contains_key(k));
        !maybe || self.queue.values().all(|e| !e.access.conflicts(a))
    }

    /// May work of `origin` touching only `key` run now? Answered from the counters, with
    /// no allocation, unless the key (or the connection, or the whole shard) is held.
    pub fn free_for_key(&self, origin: ConnId, key: &[u8], mode: Mode) -> bool {
        if self.queue.is_empty() {
            return true;
        }
        let maybe =
            self.origins.contains_key(&origin) || self.whole > 0 || self.intents.contains_key(key);
        !maybe || self.free_for(&Access::new(origin).key(key, mode))
    }

    fn hold(&mut self, a: &Access) {
        for (k, _) in &a.keys {
            *self.intents.entry(k.clone()).or_insert(0) += 1;
        }
        if a.shard.is_some() {
            self.whole += 1;
        }
        *self.origins.entry(a.origin).or_insert(0) += 1;
    }

    fn release(&mut self, a: &Access) {
        for (k, _) in &a.keys {
            if let Some(n) = self.intents.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    self.intents.remove(k);
                }
            }
        }
        if a.shard.is_some() {
            self.whole -= 1;
        }
        if let Some(n) = self.origins.get_mut(&a.origin) {
            *n -= 1;
            if *n == 0 {
                self.origins.remove(&a.origin);
            }
        }
    }

    /// Single-shard work: returned to run now when nothing queued conflicts with it,
    /// otherwise queued (final at once) and handed out later by [`Scheduler::runnable`].
    pub fn admit(&mut self, access: Access, work: W) -> Option<W> {
        if self.must_park(&access.origin) {
            self.park(access.origin, Parked::Admit { access, work });
            return None;
        }
        if self.free_for(&access) {
            return Some(work);
        }
        self.enqueue(access, work);
        None
    }

    /// Hold `access` from now until [`Scheduler::ran`] with the ticket: for work that runs
    /// over several loop turns (a big HSET in slices, issue 13) and was admitted at once,
    /// so nothing queued conflicts with it. Whatever conflicts with it waits behind it.
    pub fn occupy(&mut self, access: Access) -> Ticket {
        let at = self.next_pos();
        self.hold(&access);
        self.queue.insert(
            at,
            Entry {
                tx: None,
                fin: true,
                access,
                armed: None,
                conclude: true,
                running: true,
            },
        );
        Ticket { at, conclude: true }
    }

    /// Queue single-shard work, final at once, at the next position.
    fn enqueue(&mut self, access: Access, work: W) {
        let pos = self.next_pos();
        self.hold(&access);
        self.queue.insert(
            pos,
            Entry {
                tx: None,
                fin: true,
                access,
                armed: Some(work),
                conclude: true,
                running: false,
            },
        );
    }

    /// A multi-shard transaction announces what it will touch here; returns its proposal,
    /// or None when it is parked behind its connection's provisional transaction (the
    /// proposal then comes out of [`Scheduler::take_answered`] with `reply`).
    pub fn propose(&mut self, tx: TxId, access: Access, reply: W) -> Option<Pos> {
        if self.must_park(&access.origin) {
            self.park(access.origin, Parked::Propose { tx, access, reply });
            return None;
        }
        Some(self.place(tx, access))
    }

    fn place(&mut self, tx: TxId, access: Access) -> Pos {
        let pos = self.next_pos();
        *self.provisional.entry(access.origin).or_insert(0) += 1;
        self.hold(&access);
        self.queue.insert(
            pos,
            Entry {
                tx: Some(tx),
                fin: false,
                access,
                armed: None,
                conclude: false,
                running: false,
            },
        );
        let known = self.txs.insert(tx, pos);
        assert!(known.is_none(), "transaction {tx:?} proposed twice");
        pos
    }

    /// A provisional transaction of `origin` became final: when it was its last one, its
    /// parked requests take their places, in order, until one of them is a transaction
    /// (which is provisional in turn).
    fn finalised(&mut self, origin: ConnId) {
        let n = self
            .provisional
            .get_mut(&origin)
            .expect("a provisional entry");
        *n -= 1;
        if *n > 0 {
            return;
        }
        self.provisional.remove(&origin);
        while let Some(p) = self.parked.get_mut(&origin).and_then(VecDeque::pop_front) {
            if let Some(c) = self.origins.get_mut(&origin) {
                *c -= 1;
                if *c == 0 {
                    self.origins.remove(&origin);
                }
            }
            match p {
                Parked::Admit { access, work } => self.enqueue(access, work),
                Parked::Propose { tx, access, reply } => {
                    let pos = self.place(tx, access);
                    self.answered.push((pos, reply));
                    break;
                }
            }
        }
        if self.parked.get(&origin).is_some_and(VecDeque::is_empty) {
            self.parked.remove(&origin);
        }
    }

    /// A hop of transaction `tx`: its final position (with the first hop), work to run
    /// here (none: only the position, or only the conclusion), and whether the transaction
    /// ends here once that work ran.
    pub fn hop(&mut self, tx: TxId, final_pos: Option<Pos>, work: Option<W>, conclude: bool) {
        let Some(&at) = self.txs.get(&tx) else {
            panic!("hop for transaction {tx:?}, which never proposed here");
        };
        let at = match final_pos {
            Some(f) => {
                assert!(f >= at, "final position {f:?} below the proposal {at:?}");
                self.clock = self.clock.max(f.clock);
                let mut e = self.queue.remove(&at).expect("entry at its position");
                assert!(!e.fin, "a second final position for {tx:?}");
                e.fin = true;
                let origin = e.access.origin;
                let clash = self.queue.insert(f, e);
                assert!(clash.is_none(), "two entries at {f:?}");
                self.txs.insert(tx, f);
                self.finalised(origin);
                f
            }
            None => at,
        };
        let e = self.queue.get_mut(&at).expect("entry at its position");
        assert!(
            e.fin,
            "work for transaction {tx:?} before its final position"
        );
        assert!(e.armed.is_none(), "a hop of {tx:?} before the last one ran");
        match work {
            Some(w) => {
                e.armed = Some(w);
                e.conclude = conclude;
            }
            // Its coordinator (this shard) decided while the last hop still runs here:
            // the entry leaves once that hop is reported run.
            None if conclude && e.running => e.conclude = true,
            None if conclude => self.remove(at),
            None => {}
        }
    }

    fn remove(&mut self, at: Pos) {
        if let Some(e) = self.queue.remove(&at) {
            if let Some(tx) = e.tx {
                self.txs.remove(&tx);
            }
            self.release(&e.access);
        }
    }

    /// Hand out, in queue order, every piece of armed work that may run now. Work handed
    /// out together never conflicts; each piece is reported with [`Scheduler::ran`] once it
    /// has run, and until then its entry keeps holding its keys.
    pub fn runnable(&mut self, out: &mut Vec<(Ticket, W)>) {
        // One pass in queue order, keeping what the entries passed so far hold: whether an
        // entry conflicts with anything ahead of it is then a look-up per key, so a pass
        // costs the queue's keys, not their pairs.
        let mut ahead = Held::default();
        for (&at, e) in self.queue.iter_mut() {
            if e.fin && e.armed.is_some() && !ahead.conflicts(&e.access) {
                if let Some(w) = e.armed.take() {
                    e.running = true;
                    let conclude = std::mem::replace(&mut e.conclude, false);
                    out.push((Ticket { at, conclude }, w));
                }
            }
            ahead.add(&e.access);
        }
    }

    /// What is queued and parked, for a failing test to print.
    #[cfg(test)]
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (p, e) in &self.queue {
            s += &format!(
                "  {p:?} tx={:?} fin={} armed={} running={} conclude={} origin={:?}\n",
                e.tx,
                e.fin,
                e.armed.is_some(),
                e.running,
                e.conclude,
                e.access.origin
            );
        }
        for (o, q) in &self.parked {
            s += &format!("  parked {o:?}: {}\n", q.len());
        }
        s
    }

    /// Work handed out with `t` has run.
    pub fn ran(&mut self, t: Ticket) {
        let Some(e) = self.queue.get_mut(&t.at) else {
            panic!("ran work at {:?}, which is not queued", t.at);
        };
        e.running = false;
        if t.conclude || (e.conclude && e.armed.is_none()) {
            assert!(
                e.armed.is_none(),
                "work armed after its transaction concluded"
            );
            self.remove(t.at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::access::Mode;

    fn conn(n: u32) -> ConnId {
        ConnId {
            shard: 9,
            slot: n,
            gen: 0,
        }
    }

    fn w(origin: u32, keys: &[&str]) -> Access {
        let mut a = Access::new(conn(origin));
        for k in keys {
            a.add(k.as_bytes(), Mode::Write);
        }
        a
    }

    fn tx(s: u16, n: u64) -> TxId {
        TxId {
            shard: s,
            serial: n,
        }
    }

    /// Hand out what may run and report it run, as a shard does.
    fn drain(s: &mut Scheduler<&'static str>) -> Vec<&'static str> {
        let mut all = Vec::new();
        loop {
            let mut v = Vec::new();
            s.runnable(&mut v);
            if v.is_empty() {
                return all;
            }
            for (t, w) in v {
                all.push(w);
                s.ran(t);
            }
        }
    }

    #[test]
    fn an_occupied_key_holds_conflicting_work_until_ran() {
        let mut s = Scheduler::new(0);
        let t = s.occupy(w(1, &["h"]));
        assert!(!s.free_for_key(conn(2), b"h", Mode::Read));
        assert_eq!(
            s.admit(w(2, &["h"]), "hlen h"),
            None,
            "behind the big write"
        );
        assert_eq!(
            s.admit(w(3, &["k"]), "get k"),
            Some("get k"),
            "other keys run"
        );
        assert!(drain(&mut s).is_empty(), "the write still holds h");
        s.ran(t);
        assert_eq!(drain(&mut s), vec!["hlen h"]);
        assert!(s.is_empty());
    }

    #[test]
    fn free_work_runs_at_once_and_conflicting_work_waits_for_the_transaction() {
        let mut s = Scheduler::new(0);
        assert_eq!(s.admit(w(1, &["a"]), "get a"), Some("get a"));
        let p = s
            .propose(tx(1, 1), w(2, &["a", "b"]), "proposed")
            .expect("placed");
        assert_eq!(s.admit(w(3, &["c"]), "set c"), Some("set c"), "no conflict");
        assert_eq!(
            s.admit(w(4, &["a"]), "set a"),
            None,
            "behind the transaction"
        );
        assert!(
            drain(&mut s).is_empty(),
            "the transaction is still provisional"
        );
        s.hop(tx(1, 1), Some(p), Some("tx hop 1"), false);
        assert_eq!(drain(&mut s), vec!["tx hop 1"]);
        assert!(
            drain(&mut s).is_empty(),
            "set a waits for the transaction's end"
        );
        s.hop(tx(1, 1), None, Some("tx hop 2"), true);
        assert_eq!(drain(&mut s), vec!["tx hop 2", "set a"]);
        assert!(s.is_empty());
        assert!(s.intents.is_empty() && s.origins.is_empty() && s.whole == 0);
    }

    #[test]
    fn a_final_position_can_move_behind_later_work() {
        let mut s = Scheduler::new(0);
        let p1 = s
            .propose(tx(1, 1), w(1, &["x"]), "proposed")
            .expect("placed");
        // Local work arrives; it conflicts with the provisional entry, so it waits.
        assert_eq!(s.admit(w(2, &["x"]), "local"), None);
        // Another shard proposed later: the final position moves past the local work.
        let fin = Pos {
            clock: p1.clock + 10,
            shard: 3,
        };
        s.hop(tx(1, 1), Some(fin), Some("tx"), true);
        assert_eq!(drain(&mut s), vec!["local", "tx"]);
        // The clock moved past the final position.
        let p2 = s
            .propose(tx(1, 2), w(1, &["y"]), "proposed")
            .expect("placed");
        assert!(p2 > fin);
    }

    #[test]
    fn one_connection_keeps_its_order_on_a_shard() {
        let mut s = Scheduler::new(0);
        let p = s
            .propose(tx(1, 1), w(7, &["a"]), "proposed")
            .expect("placed");
        assert_eq!(s.admit(w(7, &["zzz"]), "later command"), None);
        s.hop(tx(1, 1), Some(p), Some("tx"), true);
        assert_eq!(drain(&mut s), vec!["tx", "later command"]);
    }

    #[test]
    fn a_connection_s_later_requests_stay_behind_its_transaction_wherever_it_lands() {
        let mut s = Scheduler::new(0);
        let p1 = s
            .propose(tx(1, 1), w(1, &["a"]), "proposed")
            .expect("placed");
        // Same connection, pipelined: a local command and another transaction park.
        assert_eq!(s.admit(w(1, &["b"]), "set b"), None);
        assert_eq!(s.propose(tx(1, 2), w(1, &["c"]), "proposal 2"), None);
        // Another connection's work is not held back.
        assert_eq!(s.admit(w(2, &["z"]), "other"), Some("other"));
        // The first transaction's final position lands far behind.
        let fin = Pos {
            clock: p1.clock + 100,
            shard: 5,
        };
        s.hop(tx(1, 1), Some(fin), Some("tx 1"), true);
        let mut answered = Vec::new();
        s.take_answered(&mut answered);
        assert_eq!(answered.len(), 1);
        let (p2, note) = answered[0];
        assert_eq!(note, "proposal 2");
        assert!(
            p2 > fin,
            "the parked proposal comes after the first one's final place"
        );
        assert_eq!(drain(&mut s), vec!["tx 1", "set b"]);
        s.hop(tx(1, 2), Some(p2), Some("tx 2"), true);
        assert_eq!(drain(&mut s), vec!["tx 2"]);
        assert!(s.is_empty() && s.origins.is_empty() && s.parked.is_empty());
    }

    #[test]
    fn readers_share_and_an_abort_releases() {
        let mut s = Scheduler::new(0);
        let mut r = Access::new(conn(1));
        r.add(b"k", Mode::Read);
        let p = s.propose(tx(1, 1), r, "proposed").expect("placed");
        let mut r2 = Access::new(conn(2));
        r2.add(b"k", Mode::Read);
        assert_eq!(s.admit(r2, "reader"), Some("reader"));
        assert_eq!(s.admit(w(3, &["k"]), "writer"), None);
        // Abort: conclude without work, straight from the provisional state.
        s.hop(tx(1, 1), Some(p), None, true);
        assert_eq!(drain(&mut s), vec!["writer"]);
        assert!(s.is_empty());
    }

    #[test]
    fn whole_shard_access_waits_for_and_blocks_everything() {
        let mut s = Scheduler::new(0);
        let p = s
            .propose(tx(1, 1), w(1, &["a"]), "proposed")
            .expect("placed");
        let mut flush = Access::new(conn(2));
        flush.shard = Some(Mode::Write);
        assert_eq!(s.admit(flush, "flush"), None);
        assert_eq!(s.admit(w(3, &["unrelated"]), "set"), None);
        s.hop(tx(1, 1), Some(p), Some("tx"), true);
        assert_eq!(drain(&mut s), vec!["tx", "flush", "set"]);
    }

    #[test]
    fn work_that_runs_keeps_holding_its_keys_until_reported() {
        let mut s = Scheduler::new(0);
        let p = s
            .propose(tx(1, 1), w(1, &["a"]), "proposed")
            .expect("placed");
        s.hop(tx(1, 1), Some(p), Some("hop"), true);
        let mut v = Vec::new();
        s.runnable(&mut v);
        assert_eq!(v.len(), 1);
        // While the hop runs, new work on its key waits instead of overtaking it.
        assert!(!s.free_for_key(conn(2), b"a", Mode::Write));
        assert_eq!(s.admit(w(2, &["a"]), "later"), None);
        let (t, _) = v.pop().unwrap();
        s.ran(t);
        assert_eq!(drain(&mut s), vec!["later"]);
        assert!(s.is_empty());
    }

    /// A transaction of connection 1 on key "a" whose first hop (more follow) runs here.
    fn first_hop_running(s: &mut Scheduler<&'static str>) -> Ticket {
        let p = s
            .propose(tx(1, 1), w(1, &["a"]), "proposed")
            .expect("placed");
        s.hop(tx(1, 1), Some(p), Some("hop 1"), false);
        let mut v = Vec::new();
        s.runnable(&mut v);
        let (t, w) = v.pop().expect("hop 1 runs");
        assert_eq!(w, "hop 1");
        t
    }

    #[test]
    fn the_next_hop_can_arrive_while_the_last_one_runs() {
        let mut s = Scheduler::new(0);
        let t = first_hop_running(&mut s);
        // The coordinator (this shard) answers hop 1 while it runs and sends hop 2.
        s.hop(tx(1, 1), None, Some("hop 2"), true);
        s.ran(t);
        assert_eq!(drain(&mut s), vec!["hop 2"]);
        assert!(s.is_empty());
    }

    #[test]
    fn a_conclusion_while_the_hop_runs_waits_for_it() {
        let mut s = Scheduler::new(0);
        let t = first_hop_running(&mut s);
        // The coordinator aborts (MSETNX found a key) while hop 1 still runs here.
        s.hop(tx(1, 1), None, None, true);
        assert!(!s.free_for_key(conn(2), b"a", Mode::Write), "still held");
        s.ran(t);
        assert!(s.is_empty());
    }

    #[test]
    #[should_panic(expected = "never proposed")]
    fn a_hop_without_a_proposal_is_a_bug() {
        let mut s: Scheduler<&str> = Scheduler::new(0);
        s.hop(tx(1, 1), None, Some("x"), true);
    }
}

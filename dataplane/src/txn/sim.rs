//! A seeded simulation of the transaction framework: three shards, each with a real
//! scheduler and store, coordinators running real flights, and a network that delivers
//! messages in a random order (FIFO per lane, as the mesh does). Bank transfers (two hops:
//! read both balances, then write both or abort) race snapshot readers (one hop over every
//! shard). Checked after every run: every flight finished (no deadlock), every snapshot saw
//! the total, the per-shard execution orders of conflicting hops admit one serial order,
//! and every scheduler is empty. A failing seed is printed so it can be replayed.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::access::{Access, ConnId, Mode};
use super::flight::{Flight, Input, Output, Participant, Rounds, Step};
use super::op::{FlightRef, Op, PartRef, Res};
use super::sched::{Scheduler, TxId};
use crate::cache::cmd::OomCheck;
use crate::cache::op::{self as cache, Key};
use crate::cache::slot::key_slot;
use crate::cache::store::{xorshift64, Policy, Store};
use crate::mesh::{Msg, Reply, SlotTable};

const SHARDS: usize = 3;
const ACCOUNTS: usize = 12;
const BALANCE: i64 = 100;
/// Connections per coordinator shard.
const CONNS: u32 = 4;

enum Work {
    Hop {
        from: usize,
        tx: TxId,
        ops: Vec<(PartRef, Op)>,
    },
    /// A parked proposal's answer: to whom.
    Proposed {
        from: usize,
        to: FlightRef,
        denyoom: bool,
    },
}

struct SimShard {
    sched: Scheduler<Work>,
    store: Store,
    /// Hops in the order they ran here: the transaction and what the hop touched.
    ran: Vec<(TxId, Access)>,
}

/// A transfer: read both balances, then move `amount` or abort when it is not there.
struct Transfer {
    from: (Key, usize),
    to: (Key, usize),
    amount: i64,
    stage: u8,
}

fn balance(r: &Res) -> i64 {
    match r {
        Res::Cache(cache::Res::Values(v)) => v[0]
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .expect("a balance"),
        other => panic!("a balance read answered {other:?}"),
    }
}

impl Rounds for Transfer {
    fn next(&mut self, results: Vec<Res>, _now: Instant) -> Step {
        self.stage += 1;
        match self.stage {
            1 => Step::Hop {
                parts: vec![
                    (
                        self.from.1,
                        Op::Cache(cache::Op::Mget(vec![self.from.0.clone()])),
                    ),
                    (
                        self.to.1,
                        Op::Cache(cache::Op::Mget(vec![self.to.0.clone()])),
                    ),
                ],
                last: false,
            },
            2 => {
                let (f, t) = (balance(&results[0]), balance(&results[1]));
                if f < self.amount {
                    // The part's check failed: the whole transaction stops here.
                    return Step::Reply(b"abort".to_vec());
                }
                let set = |k: &Key, v: i64| {
                    Op::Cache(cache::Op::Mset(vec![(
                        k.clone(),
                        v.to_string().as_bytes().into(),
                    )]))
                };
                Step::Hop {
                    parts: vec![
                        (self.from.1, set(&self.from.0, f - self.amount)),
                        (self.to.1, set(&self.to.0, t + self.amount)),
                    ],
                    last: true,
                }
            }
            _ => Step::Reply(b"ok".to_vec()),
        }
    }
}

/// A snapshot: read every account in one hop; the reply is the sum.
struct Snapshot {
    keys: Vec<(Key, usize)>,
    sent: bool,
}

impl Rounds for Snapshot {
    fn next(&mut self, results: Vec<Res>, _now: Instant) -> Step {
        if !self.sent {
            self.sent = true;
            let parts = self
                .keys
                .iter()
                .map(|(k, s)| (*s, Op::Cache(cache::Op::Mget(vec![k.clone()]))))
                .collect();
            return Step::Hop { parts, last: true };
        }
        let sum: i64 = results.iter().map(balance).sum();
        Step::Reply(sum.to_string().into_bytes())
    }
}

struct Sim {
    rng: u64,
    shards: Vec<SimShard>,
    /// Requests and replies in flight, per (from, to) lane, in order.
    reqs: HashMap<(usize, usize), VecDeque<Msg>>,
    replies: HashMap<(usize, usize), VecDeque<Reply>>,
    /// Flights by (coordinator shard, id).
    flights: HashMap<(usize, u32), Flight>,
    next_id: u32,
    answers: Vec<Vec<u8>>,
    now: Instant,
    /// Each transaction's connection, to check that a connection's order holds.
    origins: HashMap<(u16, u64), ConnId>,
}

impl Sim {
    fn new(seed: u64, accounts: &[(Key, usize)]) -> Sim {
        let shards = (0..SHARDS)
            .map(|s| {
                let r = SlotTable::range_of(s, SHARDS);
                let mut store = Store::new(r.start, r.len(), s as u64 + 1);
                for (k, owner) in accounts {
                    if *owner == s {
                        let op = cache::Op::Mset(vec![(
                            k.clone(),
                            BALANCE.to_string().as_bytes().into(),
                        )]);
                        cache::run(&mut store, &op, 0, OomCheck::Refuse);
                    }
                }
                SimShard {
                    sched: Scheduler::new(s as u16),
                    store,
                    ran: Vec::new(),
                }
            })
            .collect();
        Sim {
            rng: seed | 1,
            shards,
            reqs: HashMap::new(),
            replies: HashMap::new(),
            flights: HashMap::new(),
            next_id: 0,
            answers: Vec::new(),
            now: Instant::now(),
            origins: HashMap::new(),
        }
    }

    fn rand(&mut self, n: usize) -> usize {
        (xorshift64(&mut self.rng) % n as u64) as usize
    }

    /// Start a transaction over `keys` (each read or written as `mode`) from one of
    /// `coord`'s connections.
    fn launch(
        &mut self,
        coord: usize,
        keys: &[(Key, usize)],
        mode: Mode,
        denyoom: bool,
        rounds: Box<dyn Rounds>,
    ) {
        self.next_id += 1;
        let me = FlightRef {
            id: self.next_id,
            gen: 0,
        };
        // A few connections per coordinator, each pipelining its transactions.
        let origin = ConnId {
            shard: coord as u16,
            slot: self.next_id % CONNS,
            gen: 0,
        };
        self.origins
            .insert((coord as u16, self.next_id as u64), origin);
        let participants = participants_for(origin, keys, mode, denyoom);
        let tx = TxId {
            shard: coord as u16,
            serial: self.next_id as u64,
        };
        let mut f = Flight::atomic(me, origin, tx, participants, rounds);
        let mut out = Vec::new();
        f.step(Input::Start, self.now, &mut out);
        self.flights.insert((coord, me.id), f);
        self.outputs(coord, me.id, out);
    }

    fn outputs(&mut self, coord: usize, id: u32, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Send(shard, msg) => {
                    self.reqs.entry((coord, shard)).or_default().push_back(msg)
                }
                Output::Reply(b) => {
                    self.flights.remove(&(coord, id));
                    self.answers.push(b);
                }
                Output::After(_) => panic!("no transaction waits on a timer"),
            }
        }
    }

    fn step_flight(&mut self, coord: usize, f: FlightRef, input: Input) {
        let mut out = Vec::new();
        let flight = self
            .flights
            .get_mut(&(coord, f.id))
            .expect("a result for a live flight");
        flight.step(input, self.now, &mut out);
        self.outputs(coord, f.id, out);
    }

    /// Deliver one message from a random non-empty lane. False when nothing is in flight.
    fn deliver_one(&mut self) -> bool {
        let mut lanes: Vec<(bool, (usize, usize))> = self
            .reqs
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, _)| (true, *k))
            .chain(
                self.replies
                    .iter()
                    .filter(|(_, q)| !q.is_empty())
                    .map(|(k, _)| (false, *k)),
            )
            .collect();
        if lanes.is_empty() {
            return false;
        }
        lanes.sort_unstable();
        let (is_req, (from, to)) = lanes[self.rand(lanes.len())];
        if is_req {
            let msg = self.reqs.get_mut(&(from, to)).and_then(VecDeque::pop_front);
            self.handle(from, to, msg.expect("non-empty lane"));
        } else {
            let r = self
                .replies
                .get_mut(&(from, to))
                .and_then(VecDeque::pop_front);
            match r.expect("non-empty lane") {
                Reply::Part { to: p, res } => {
                    self.step_flight(to, p.flight, Input::Done { part: p.part, res })
                }
                Reply::Proposed { to: f, pos, oom } => {
                    self.step_flight(to, f, Input::Proposed { pos, oom })
                }
                Reply::Encoded { .. } => panic!("no commands in this simulation"),
            }
        }
        true
    }

    fn handle(&mut self, from: usize, at: usize, msg: Msg) {
        let s = &mut self.shards[at];
        match msg {
            Msg::Propose {
                tx,
                to,
                access,
                denyoom,
            } => {
                let note = Work::Proposed { from, to, denyoom };
                if let Some(pos) = s.sched.propose(tx, access, note) {
                    let oom = denyoom && !s.store.make_room(0);
                    self.replies
                        .entry((at, from))
                        .or_default()
                        .push_back(Reply::Proposed { to, pos, oom });
                }
            }
            Msg::Hop {
                tx,
                fin,
                ops,
                conclude,
            } => {
                let work = (!ops.is_empty()).then_some(Work::Hop { from, tx, ops });
                s.sched.hop(tx, fin, work, conclude);
                let mut answered = Vec::new();
                s.sched.take_answered(&mut answered);
                for (pos, w) in answered {
                    let Work::Proposed { from, to, denyoom } = w else {
                        panic!("a parked proposal's note");
                    };
                    let oom = denyoom && !self.shards[at].store.make_room(0);
                    self.replies
                        .entry((at, from))
                        .or_default()
                        .push_back(Reply::Proposed { to, pos, oom });
                }
            }
            other => panic!("unexpected {other:?}"),
        }
        self.run(at);
    }

    fn run(&mut self, at: usize) {
        loop {
            let mut work = Vec::new();
            self.shards[at].sched.runnable(&mut work);
            if work.is_empty() {
                return;
            }
            for (ticket, w) in work {
                let Work::Hop { from, tx, ops } = w else {
                    panic!("only hops run");
                };
                let s = &mut self.shards[at];
                let mut acc = Access::new(ConnId {
                    shard: 0,
                    slot: u32::MAX,
                    gen: 0,
                });
                for (to, op) in ops {
                    let Op::Cache(c) = op else {
                        panic!("cache ops only");
                    };
                    c.add_access(&mut acc);
                    let res = cache::run(&mut s.store, &c, 0, OomCheck::Admitted);
                    self.replies
                        .entry((at, from))
                        .or_default()
                        .push_back(Reply::Part {
                            to,
                            res: Res::Cache(res),
                        });
                }
                s.ran.push((tx, acc));
                s.sched.ran(ticket);
            }
        }
    }
}

/// Accounts spread over the shards: (key, owner).
fn accounts() -> Vec<(Key, usize)> {
    let table = SlotTable::new(SHARDS);
    (0..ACCOUNTS)
        .map(|i| {
            let k = format!("acct:{i}");
            let s = table.shard(key_slot(k.as_bytes()));
            (k.into_bytes().into_boxed_slice(), s)
        })
        .collect()
}

fn participants_for(
    origin: ConnId,
    keys: &[(Key, usize)],
    mode: Mode,
    denyoom: bool,
) -> Vec<Participant> {
    let mut by_shard: Vec<Access> = (0..SHARDS).map(|_| Access::new(origin)).collect();
    for (k, s) in keys {
        by_shard[*s].add(k, mode);
    }
    by_shard
        .into_iter()
        .enumerate()
        .filter(|(_, a)| !a.keys.is_empty())
        .map(|(shard, access)| Participant {
            shard,
            access,
            denyoom,
        })
        .collect()
}

/// One serial order explains every shard's order of conflicting hops (no cycle), and it
/// keeps each connection's order: its transactions run on every shard in the order it
/// started them.
fn serializable(shards: &[SimShard], origins: &HashMap<(u16, u64), ConnId>) -> bool {
    let mut edges: HashMap<TxId, Vec<TxId>> = HashMap::new();
    for s in shards {
        let mut last: HashMap<ConnId, u64> = HashMap::new();
        for (t, _) in &s.ran {
            let o = origins[&(t.shard, t.serial)];
            if let Some(prev) = last.insert(o, t.serial) {
                if prev > t.serial {
                    return false;
                }
            }
        }
        for (i, (a, acc_a)) in s.ran.iter().enumerate() {
            for (b, acc_b) in &s.ran[i + 1..] {
                let mut x = acc_a.clone();
                let mut y = acc_b.clone();
                // Compare keys only: the simulated origins are all alike.
                x.origin.slot = 1;
                y.origin.slot = 2;
                if a != b && x.conflicts(&y) {
                    edges.entry(*a).or_default().push(*b);
                }
            }
        }
    }
    // Depth-first search for a cycle.
    fn visit(n: TxId, edges: &HashMap<TxId, Vec<TxId>>, state: &mut HashMap<TxId, u8>) -> bool {
        match state.get(&n) {
            Some(1) => return false,
            Some(2) => return true,
            _ => {}
        }
        state.insert(n, 1);
        for m in edges.get(&n).into_iter().flatten() {
            if !visit(*m, edges, state) {
                return false;
            }
        }
        state.insert(n, 2);
        true
    }
    let mut state = HashMap::new();
    edges.keys().all(|&n| visit(n, &edges, &mut state))
}

/// One seeded run, checked; returns how many transfers took their abort path (the money
/// was not there).
fn run_seed(seed: u64, transfers: usize, snapshots: usize) -> usize {
    let accts = accounts();
    assert!(
        (0..SHARDS).all(|s| accts.iter().any(|(_, o)| *o == s)),
        "every shard holds an account"
    );
    let mut sim = Sim::new(seed, &accts);
    let (mut t_left, mut s_left) = (transfers, snapshots);
    let mut steps = 0u64;
    loop {
        steps += 1;
        assert!(steps < 10_000_000, "seed {seed}: no progress");
        let launch = (t_left + s_left > 0) && sim.rand(4) == 0;
        if launch {
            let coord = sim.rand(SHARDS);
            if s_left > 0 && (t_left == 0 || sim.rand(4) == 0) {
                s_left -= 1;
                let rounds = Snapshot {
                    keys: accts.clone(),
                    sent: false,
                };
                sim.launch(coord, &accts, Mode::Read, false, Box::new(rounds));
            } else {
                t_left -= 1;
                let a = sim.rand(ACCOUNTS);
                let b = (a + 1 + sim.rand(ACCOUNTS - 1)) % ACCOUNTS;
                let (from, to) = (accts[a].clone(), accts[b].clone());
                let keys = [from.clone(), to.clone()];
                let amount = 1 + sim.rand(60) as i64;
                let rounds = Transfer {
                    from,
                    to,
                    amount,
                    stage: 0,
                };
                sim.launch(coord, &keys, Mode::Write, false, Box::new(rounds));
            }
            continue;
        }
        if !sim.deliver_one() {
            if t_left + s_left == 0 {
                break;
            }
            continue;
        }
    }
    if !sim.flights.is_empty() {
        for (i, s) in sim.shards.iter().enumerate() {
            eprintln!("shard {i}:\n{}", s.sched.describe());
        }
    }
    assert!(
        sim.flights.is_empty(),
        "seed {seed}: {} flights never finished (deadlock)",
        sim.flights.len()
    );
    assert_eq!(sim.answers.len(), transfers + snapshots, "seed {seed}");
    let total = (ACCOUNTS as i64 * BALANCE).to_string().into_bytes();
    let mut aborted = 0;
    for a in &sim.answers {
        match a.as_slice() {
            b"ok" => {}
            b"abort" => aborted += 1,
            sum => assert_eq!(sum, total.as_slice(), "seed {seed}: a torn snapshot"),
        }
    }
    assert!(
        serializable(&sim.shards, &sim.origins),
        "seed {seed}: no serial order explains the run"
    );
    for s in &sim.shards {
        assert!(s.sched.is_empty(), "seed {seed}: a scheduler kept an entry");
    }
    // Whatever aborted changed nothing: the books still balance.
    let mut sum = 0;
    for (k, o) in &accts {
        let r = cache::run(
            &mut sim.shards[*o].store,
            &cache::Op::Mget(vec![k.clone()]),
            0,
            OomCheck::Refuse,
        );
        sum += balance(&Res::Cache(r));
    }
    assert_eq!(sum, ACCOUNTS as i64 * BALANCE, "seed {seed}");
    aborted
}

#[test]
fn conflicting_transactions_across_three_shards_are_serialised_without_deadlock() {
    let mut aborted = 0;
    for seed in 1..=40u64 {
        aborted += run_seed(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 150, 40);
    }
    assert!(aborted > 0, "no transfer ever took its abort path");
}

/// A shard refuses a transaction that needs memory when it is over its limit: the flight
/// concludes on every participant, nothing is written, and nothing stays queued.
#[test]
fn a_refused_part_aborts_the_whole_transaction_cleanly() {
    let accts = accounts();
    let mut sim = Sim::new(7, &accts);
    let (a, b) = (
        accts
            .iter()
            .find(|(_, s)| *s == 0)
            .cloned()
            .expect("an account on shard 0"),
        accts
            .iter()
            .find(|(_, s)| *s == 1)
            .cloned()
            .expect("an account on shard 1"),
    );
    sim.shards[1].store.maxmemory_bytes = 1;
    sim.shards[1].store.policy = Policy::Noeviction;
    struct Refusable(Transfer);
    impl Rounds for Refusable {
        fn next(&mut self, r: Vec<Res>, now: Instant) -> Step {
            self.0.next(r, now)
        }
        fn refused(&mut self) -> Step {
            Step::Reply(b"refused".to_vec())
        }
    }
    let t = Transfer {
        from: a.clone(),
        to: b.clone(),
        amount: 10,
        stage: 0,
    };
    let keys = [a.clone(), b.clone()];
    sim.launch(2, &keys, Mode::Write, true, Box::new(Refusable(t)));
    while sim.deliver_one() {}
    assert_eq!(sim.answers, vec![b"refused".to_vec()]);
    assert!(sim.flights.is_empty());
    for s in &sim.shards {
        assert!(s.sched.is_empty());
        assert!(s.ran.is_empty(), "no hop ran");
    }
}

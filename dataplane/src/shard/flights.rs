//! The flights this shard coordinates: the one launch / round / send path of every
//! operation that runs anywhere but right here. A flight takes its connection's next reply
//! slot, is stepped with its inputs (start, proposals, part results, timers) and its
//! outputs are carried out: messages go into this turn's mesh batch for their shard (or
//! are handled at once when they are for this shard), the reply fills the slot.
//!
//! A forwarded single-key command is the simplest flight: one part whose encoded reply is
//! copied from the reply batch straight into the connection, with nothing allocated.
//!
//! A flight may also be started by this shard for a blocking command parked here (one
//! attempt of a command over keys of several shards, `blocked.rs`): its reply then goes to
//! that waiter instead of a connection.

use std::time::Instant;

use super::{Launch, Shard};
use crate::mesh::Msg;
use crate::metrics::ShardMetrics;
use crate::proto::resp::command::Family;
use crate::runtime::slab::{Slab, SlabKey};
use crate::txn::{ConnId, Flight, FlightRef, Input, Op, Output, PartRef, TxId};

/// What a flight is.
enum Kind {
    /// A single-key command on another shard: its encoded reply is the reply.
    Single,
    Full(Flight),
}

/// Where a flight's reply goes.
#[derive(Clone, Copy)]
enum ReplyTo {
    /// The connection reply slot it fills: connection slot, generation, sequence.
    Conn(u32, u32, u64),
    /// A blocking command waiting on this shard, of which this flight is one attempt.
    Waiter(SlabKey),
    /// Nobody: work this shard started itself (a transaction's marker flight).
    Nowhere,
}

struct Slot {
    kind: Kind,
    reply: ReplyTo,
    family: Family,
    started: Instant,
}

/// Flights by slot, with generations (a result for a flight that ended is dropped).
#[derive(Default)]
pub struct Flights {
    slab: Slab<Slot>,
}

fn key(f: FlightRef) -> SlabKey {
    SlabKey {
        slot: f.id,
        gen: f.gen,
    }
}

impl Flights {
    fn insert(&mut self, s: Slot) -> FlightRef {
        let k = self.slab.insert(s);
        FlightRef {
            id: k.slot,
            gen: k.gen,
        }
    }

    /// A flight's reference before the flight exists (it is built knowing its own name).
    fn reserve(&mut self) -> FlightRef {
        let k = self.slab.reserve();
        FlightRef {
            id: k.slot,
            gen: k.gen,
        }
    }

    fn fill(&mut self, f: FlightRef, s: Slot) {
        let filled = self.slab.fill(key(f), s);
        assert!(filled, "flight {f:?} was not reserved");
    }

    fn get_mut(&mut self, f: FlightRef) -> Option<&mut Slot> {
        self.slab.get_mut(key(f))
    }

    fn remove(&mut self, f: FlightRef) -> Option<Slot> {
        self.slab.remove(key(f))
    }
}

impl Shard {
    /// Take the connection's next reply slot for a flight.
    fn reserve_reply(&mut self, slot: u32) -> Option<(u32, u32, u64)> {
        let c = self.conns.get_mut(slot)?;
        Some((slot, c.gen, c.wait_reply()))
    }

    /// The flight of a single-key command from connection `slot`: where its one part
    /// answers, and the connection's protocol and identity the command runs with. `None` if
    /// the connection is gone.
    fn single_flight(
        &mut self,
        slot: u32,
        family: Family,
        started: Instant,
    ) -> Option<(PartRef, bool, ConnId)> {
        let reply = self.reserve_reply(slot)?;
        let resp3 = self.conns.get(slot).is_some_and(|c| c.resp3());
        let origin = self.conn_id(slot, reply.1);
        let f = self.flights.insert(Slot {
            kind: Kind::Single,
            reply: ReplyTo::Conn(reply.0, reply.1, reply.2),
            family,
            started,
        });
        Some((PartRef { flight: f, part: 0 }, resp3, origin))
    }

    /// Run a single-key command (`frame`) on `shard`.
    pub(super) fn forward(
        &mut self,
        slot: u32,
        shard: usize,
        frame: &[u8],
        family: Family,
        started: Instant,
        caller: crate::auth::ScriptCaller,
    ) {
        let Some((to, resp3, origin)) = self.single_flight(slot, family, started) else {
            return;
        };
        if shard == self.id {
            // Held by a transaction here: the scheduler runs it when the key is free.
            return self.command(self.id, to, frame, resp3, origin, caller);
        }
        self.metrics.counters.mesh_requests_sent += 1;
        let batch = self.mesh.requests(shard, self.now);
        let frame = batch.add_bytes(frame);
        batch.msgs.push(Msg::Command {
            to,
            frame,
            resp3,
            origin,
            caller,
        });
    }

    /// Run a big HSET or HMSET (`frame`, moved out of the connection's query buffer) on
    /// `shard` in slices: no copy and no parse of the whole request in this turn (issue 13).
    /// To another shard the frame travels as the mesh batch's arena when the batch holds no
    /// other bytes (copied into it otherwise); its owner takes it from there.
    pub(super) fn forward_write(
        &mut self,
        slot: u32,
        shard: usize,
        frame: Vec<u8>,
        family: Family,
        started: Instant,
        caller: crate::auth::ScriptCaller,
    ) {
        let Some((to, resp3, origin)) = self.single_flight(slot, family, started) else {
            let cap = frame.capacity();
            return crate::budget::free_elsewhere(frame, cap);
        };
        if shard == self.id {
            return self.admit_write(self.id, to, frame, resp3, origin);
        }
        self.metrics.counters.mesh_requests_sent += 1;
        let batch = self.mesh.requests(shard, self.now);
        let frame = if batch.bytes.is_empty() {
            let range = 0..frame.len();
            batch.bytes = frame;
            range
        } else {
            let range = batch.add_bytes(&frame);
            let cap = frame.capacity();
            crate::budget::free_elsewhere(frame, cap);
            range
        };
        batch.msgs.push(Msg::Command {
            to,
            frame,
            resp3,
            origin,
            caller,
        });
    }

    /// Start a flight for connection `slot`.
    pub(super) fn launch(&mut self, slot: u32, l: Launch, started: Instant) {
        let Some(reply) = self.reserve_reply(slot) else {
            return;
        };
        let origin = self.conn_id(slot, reply.1);
        self.start_flight(ReplyTo::Conn(reply.0, reply.1, reply.2), origin, l, started);
    }

    /// Start a flight that answers nobody (a transaction's marker flight, `kafka/txn/`).
    pub(super) fn launch_background(&mut self, l: Launch) {
        self.next_tx += 1;
        let origin = ConnId {
            shard: self.id as u16,
            slot: u32::MAX,
            gen: self.next_tx as u32,
        };
        let now = self.now;
        self.start_flight(ReplyTo::Nowhere, origin, l, now);
    }

    /// Start a flight for waiter `waiter` (of connection `origin`) parked on this shard: its
    /// reply goes to [`Shard::attempted`].
    pub(super) fn launch_for_waiter(&mut self, waiter: SlabKey, origin: ConnId, l: Launch) {
        let now = self.now;
        self.start_flight(ReplyTo::Waiter(waiter), origin, l, now);
    }

    fn start_flight(&mut self, reply: ReplyTo, origin: ConnId, l: Launch, started: Instant) {
        let me = self.flights.reserve();
        let flight = match l.atomic {
            Some(participants) => {
                self.next_tx += 1;
                let id = TxId {
                    shard: self.id as u16,
                    serial: self.next_tx,
                };
                Flight::atomic(me, origin, id, participants, l.rounds)
            }
            None => Flight::plain(me, origin, l.rounds),
        };
        self.flights.fill(
            me,
            Slot {
                kind: Kind::Full(flight),
                reply,
                family: l.family,
                started,
            },
        );
        self.step_flight(me, Input::Start);
    }

    /// Step flight `f` with `input` and carry out what it asks.
    pub(super) fn step_flight(&mut self, f: FlightRef, input: Input) {
        let now = self.now;
        let mut outputs = std::mem::take(&mut self.outputs);
        match self.flights.get_mut(f).map(|s| &mut s.kind) {
            Some(Kind::Full(flight)) => flight.step(input, now, &mut outputs),
            Some(Kind::Single) => match input {
                Input::Done { res, .. } => match res.cache() {
                    crate::cache::op::Res::Encoded(b) => outputs.push(Output::Reply(b)),
                    other => panic!("a forwarded command answered {other:?}"),
                },
                _ => panic!("a forwarded command stepped with something but its reply"),
            },
            // A flight ends only with its reply, after every part answered: nothing can
            // still be on its way to it.
            None => panic!("input for flight {f:?}, which is not in flight"),
        }
        // Every output goes out before a message to this shard is handled: handling one can
        // step this flight again, and its next hop must not overtake this one's messages.
        let outer = std::mem::replace(&mut self.in_self, true);
        for out in outputs.drain(..) {
            match out {
                Output::Send(shard, msg) => self.send_to(shard, msg),
                Output::Reply(bytes) => match self.end_flight(f) {
                    Some(ReplyTo::Conn(slot, gen, seq)) => {
                        if let Some(c) = self.conns.live(slot, gen) {
                            c.fill_owned(seq, bytes);
                            self.replied(slot);
                        }
                    }
                    Some(ReplyTo::Waiter(w)) => self.attempted(w, bytes),
                    Some(ReplyTo::Nowhere) | None => {}
                },
                Output::After(d) => {
                    self.timers.push((now + d, f));
                    self.arm_fast_timer();
                }
            }
        }
        self.outputs = outputs;
        self.in_self = outer;
        if !outer {
            self.drain_self();
        }
    }

    /// A flight ends: it is recorded (when it answers a connection), and where its reply
    /// goes is returned.
    fn end_flight(&mut self, f: FlightRef) -> Option<ReplyTo> {
        let s = self.flights.remove(f)?;
        if let ReplyTo::Conn(..) = s.reply {
            record(&mut self.metrics, s.family, s.started, self.now);
        }
        Some(s.reply)
    }

    /// A reply went into connection `slot`: paused input may continue (once this shard's
    /// messages to itself are handled, see `drain_self`).
    fn replied(&mut self, slot: u32) {
        self.mark_dirty(slot);
        if self.in_self {
            self.resume.push(slot);
        } else {
            self.process(slot);
        }
    }

    /// An encoded reply for a forwarded command, straight from a reply batch.
    pub(super) fn encoded_reply(&mut self, to: PartRef, bytes: &[u8]) {
        if matches!(
            self.flights.get_mut(to.flight).map(|s| &s.kind),
            Some(Kind::Single)
        ) {
            if let Some(ReplyTo::Conn(slot, gen, seq)) = self.end_flight(to.flight) {
                if let Some(c) = self.conns.live(slot, gen) {
                    c.fill(seq, bytes);
                    self.replied(slot);
                }
            }
        } else {
            let res = crate::txn::Res::Cache(crate::cache::op::Res::Encoded(bytes.to_vec()));
            self.step_flight(to.flight, Input::Done { part: to.part, res });
        }
    }

    /// Like [`Shard::encoded_reply`], taking the bytes (they move to the connection).
    pub(super) fn encoded_reply_owned(&mut self, to: PartRef, bytes: Vec<u8>) {
        if matches!(
            self.flights.get_mut(to.flight).map(|s| &s.kind),
            Some(Kind::Single)
        ) {
            if let Some(ReplyTo::Conn(slot, gen, seq)) = self.end_flight(to.flight) {
                if let Some(c) = self.conns.live(slot, gen) {
                    c.fill_owned(seq, bytes);
                    self.replied(slot);
                }
            }
        } else {
            let res = crate::txn::Res::Cache(crate::cache::op::Res::Encoded(bytes));
            self.step_flight(to.flight, Input::Done { part: to.part, res });
        }
    }

    /// Send `msg` to `shard`: into this turn's batch for it, or handled now when it is
    /// this shard.
    pub(super) fn send_to(&mut self, shard: usize, msg: Msg) {
        if shard == self.id {
            return self.handle_own(msg);
        }
        self.metrics.counters.mesh_requests_sent += 1;
        self.mesh.requests(shard, self.now).msgs.push(msg);
    }

    /// Tell `shards` that a connection's watches are over.
    pub(super) fn send_unwatch(&mut self, origin: ConnId, shards: &[usize]) {
        for &s in shards {
            let op = Op::Cache(crate::cache::op::Op::Unwatch { conn: origin });
            self.send_to(
                s,
                Msg::Part {
                    to: None,
                    op,
                    origin,
                },
            );
        }
    }

    /// Tell `shards` that a connection's parked blocking commands are over.
    pub(super) fn send_unblock(&mut self, origin: ConnId, shards: &[usize]) {
        for &s in shards {
            let op = Op::Cache(crate::cache::op::Op::Unblock { conn: origin });
            self.send_to(
                s,
                Msg::Part {
                    to: None,
                    op,
                    origin,
                },
            );
        }
    }

    /// Flights whose wait is over run their parts again.
    pub(super) fn on_fast_timer(&mut self) {
        self.fast_timer = false;
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.timers = later;
        for (_, f) in due {
            self.step_flight(f, Input::Timer);
        }
        let waiting = self.expire_waiters();
        if !self.timers.is_empty() || waiting {
            self.arm_fast_timer();
        }
    }
}

fn record(m: &mut ShardMetrics, family: Family, started: Instant, now: Instant) {
    m.record(
        family,
        now.saturating_duration_since(started).as_nanos() as u64,
    );
}

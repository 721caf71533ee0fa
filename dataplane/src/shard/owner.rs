//! The owner side of this shard: draining the mesh (replies always; requests while the
//! reply lane back has room), and running what other shards (or this one) ask of it
//! through its scheduler (`txn/sched.rs`): commands, parts, a transaction's proposals and
//! hops. Results go back in this turn's reply batch for the asking shard, or straight to
//! the flight when it is this shard's own.

use std::ops::Range;

use super::Shard;
use crate::cache::cmd::hashes::{SlicedReply, SlicedWrite};
use crate::cache::cmd::OomCheck;
use crate::cache::op::{self as cache, forwarded, parse_forwarded, run_command};
use crate::limits::MOVE_FRAME_BYTES;
use crate::log::ops::LogResult;
use crate::mesh::{Msg, Reply};
use crate::proto::resp::write::Out;
use crate::txn::{Access, ConnId, Dest, Input, Op, PartRef, Res, Ticket, Work};

impl Shard {
    /// Requests wait on a lane because the reply lane back is full (do not sleep).
    pub(super) fn requests_waiting(&self) -> bool {
        (0..self.shared.nshards).any(|s| s != self.id && self.mesh.requests_waiting(s))
    }

    pub(super) fn drain_mesh(&mut self) {
        let n = self.shared.nshards;
        // Replies first: they never wait on anything.
        for from in 0..n {
            while let Some(mut batch) = self.mesh.take_replies(from) {
                let hop = self.now.saturating_duration_since(batch.sent);
                self.metrics
                    .mesh_hop
                    .saturating_record(hop.as_nanos() as u64);
                let mut msgs = std::mem::take(&mut batch.msgs);
                for r in msgs.drain(..) {
                    match r {
                        // A large reply that is the whole arena moves to its connection
                        // uncopied (a GET of a 500 MB value from another shard).
                        Reply::Encoded { to, range }
                            if range.len() >= crate::limits::MOVE_REPLY_BYTES
                                && range == (0..batch.bytes.len()) =>
                        {
                            self.encoded_reply_owned(to, std::mem::take(&mut batch.bytes))
                        }
                        Reply::Encoded { to, range } => self.encoded_reply(to, &batch.bytes[range]),
                        Reply::Part { to, res } => {
                            self.step_flight(to.flight, Input::Done { part: to.part, res })
                        }
                        Reply::Proposed { to, pos, oom } => {
                            self.step_flight(to, Input::Proposed { pos, oom })
                        }
                    }
                }
                batch.msgs = msgs;
                self.mesh.recycle_replies(batch);
            }
        }
        for from in 0..n {
            if from == self.id {
                continue;
            }
            while let Some(mut batch) = self.mesh.take_requests(from) {
                let sent = batch.sent;
                let mut bytes = std::mem::take(&mut batch.bytes);
                for msg in batch.msgs.drain(..) {
                    self.metrics.counters.mesh_requests_served += 1;
                    self.handle(from, msg, &mut bytes, sent);
                }
                batch.bytes = bytes;
                self.mesh.recycle_requests(batch);
            }
        }
        self.run_scheduled();
    }

    /// A message from this shard to itself. It is handled before the call that sent it
    /// returns, but after whatever that call is in the middle of (a flight's other
    /// outputs, another message to itself): messages to itself keep their order, and a
    /// hop to another shard is never overtaken by a later one.
    pub(super) fn handle_own(&mut self, msg: Msg) {
        self.self_msgs.push_back(msg);
        if !self.in_self {
            self.drain_self();
        }
    }

    /// Handle this shard's messages to itself until none are left, run what they made
    /// runnable, then let connections whose replies arrived meanwhile go on (their next
    /// commands must not run before messages already sent on their behalf).
    pub(super) fn drain_self(&mut self) {
        self.in_self = true;
        while let Some(m) = self.self_msgs.pop_front() {
            let now = self.now;
            self.handle(self.id, m, &mut Vec::new(), now);
        }
        self.in_self = false;
        self.run_scheduled();
        for slot in std::mem::take(&mut self.resume) {
            self.process(slot);
        }
    }

    /// `bytes`: the batch's arena, which a big HSET that is all of it takes (`remote_command`).
    fn handle(&mut self, from: usize, msg: Msg, bytes: &mut Vec<u8>, sent: std::time::Instant) {
        match msg {
            Msg::Command {
                to,
                frame,
                resp3,
                origin,
                caller,
            } => self.remote_command(from, to, frame, bytes, resp3, origin, sent, caller),
            Msg::Part { to, op, origin } => match op {
                // Log and group parts do not go through the scheduler (no memory check
                // either).
                Op::Log(_) | Op::Group(_) => self.run_op(from as u16, to, op, OomCheck::Refuse),
                Op::Cache(c) => {
                    let access = c.access(origin);
                    let w = Work::Part {
                        from: from as u16,
                        to,
                        op: Op::Cache(c),
                    };
                    if let Some(w) = self.sched.admit(access, w) {
                        self.run_work(w);
                    }
                }
            },
            Msg::Propose {
                tx,
                to,
                access,
                denyoom,
            } => {
                let note = Work::Proposed {
                    from: from as u16,
                    to,
                    denyoom,
                };
                if let Some(pos) = self.sched.propose(tx, access, note) {
                    let oom = denyoom && !self.store.make_room(self.now_ms);
                    self.reply(from, Reply::Proposed { to, pos, oom });
                }
            }
            Msg::Hop {
                tx,
                fin,
                ops,
                conclude,
            } => {
                let work = (!ops.is_empty()).then_some(Work::Hop {
                    from: from as u16,
                    ops,
                });
                self.sched.hop(tx, fin, work, conclude);
                self.answer_parked();
            }
            Msg::Adopt { fd, kind, tls } => self.adopt(fd, kind, tls, false),
        }
    }

    /// Proposals that waited behind their connection's earlier transaction get their
    /// answers.
    fn answer_parked(&mut self) {
        let mut answered = Vec::new();
        self.sched.take_answered(&mut answered);
        for (pos, note) in answered {
            let Work::Proposed { from, to, denyoom } = note else {
                panic!("a parked proposal without its answer note");
            };
            let oom = denyoom && !self.store.make_room(self.now_ms);
            self.reply(from as usize, Reply::Proposed { to, pos, oom });
        }
    }

    /// A forwarded single-key command: run at once when nothing holds its key (the reply is
    /// encoded straight into the reply batch), else queued. A big HSET is not parsed here:
    /// it takes its frame (the batch's whole arena, moved, when it is all of it) and is
    /// applied in slices.
    #[allow(clippy::too_many_arguments)]
    fn remote_command(
        &mut self,
        from: usize,
        to: PartRef,
        frame: Range<usize>,
        bytes: &mut Vec<u8>,
        resp3: bool,
        origin: ConnId,
        sent: std::time::Instant,
        caller: crate::auth::ScriptCaller,
    ) {
        if frame.len() >= MOVE_FRAME_BYTES && SlicedWrite::wanted(&bytes[frame.clone()]) {
            let owned = if frame == (0..bytes.len()) {
                std::mem::take(bytes)
            } else {
                bytes[frame].to_vec()
            };
            return self.admit_write(from, to, owned, resp3, origin);
        }
        let frame = &bytes[frame];
        let mut args = std::mem::take(&mut self.args);
        let mut scratch = std::mem::take(&mut self.scratch);
        let Some(a) = parse_forwarded(frame, &mut args, &mut scratch) else {
            panic!("a forwarded command frame that does not parse");
        };
        let f = forwarded(&a);
        let free = f.free(&self.sched, origin, &a);
        // Work over a big hash runs in slices (`sliced.rs`).
        if free && self.big_hash(from as u16, to, f.spec, &a, frame, resp3) {
            self.args = args;
            self.scratch = scratch;
            return;
        }
        if free {
            let batch = self.mesh.replies(from, sent);
            let start = batch.bytes.len();
            let mut out = Out::new(&mut batch.bytes, resp3);
            let (store, now) = (&mut self.store, self.now_ms);
            crate::script::as_caller(&caller, || {
                run_command(store, &f, &a, now, OomCheck::Refuse, &mut out)
            });
            let range = start..batch.bytes.len();
            batch.msgs.push(Reply::Encoded { to, range });
        } else {
            self.admit_command(from, to, frame, resp3, f.access(origin, &a), caller);
        }
        self.args = args;
        self.scratch = scratch;
    }

    /// Queue a single-key command behind what holds its key (or run it, if nothing does).
    fn admit_command(
        &mut self,
        from: usize,
        to: PartRef,
        frame: &[u8],
        resp3: bool,
        access: Access,
        caller: crate::auth::ScriptCaller,
    ) {
        let w = Work::Command {
            from: from as u16,
            to,
            frame: frame.into(),
            resp3,
            caller,
        };
        if let Some(w) = self.sched.admit(access, w) {
            self.run_work(w);
        }
    }

    /// A big HSET or HMSET (its whole frame, owned): applied in slices once its key is free
    /// (`sliced.rs`), atomically to other clients.
    pub(super) fn admit_write(
        &mut self,
        from: usize,
        to: PartRef,
        frame: Vec<u8>,
        resp3: bool,
        origin: ConnId,
    ) {
        let write = match SlicedWrite::from_frame(frame, resp3) {
            Ok(w) => w,
            Err(frame) => {
                // Not reached: the caller saw its head. Answered, never left hanging.
                let cap = frame.capacity();
                crate::budget::free_elsewhere(frame, cap);
                let mut b = Vec::new();
                Out::new(&mut b, resp3).error("ERR Protocol error: invalid multibulk");
                let res = Res::Cache(cache::Res::Encoded(b));
                return self.reply(from, Reply::Part { to, res });
            }
        };
        let access = Access::new(origin).key(write.key(), crate::txn::Mode::Write);
        let w = Work::Write {
            from: from as u16,
            to,
            write: Box::new(write),
        };
        if let Some(w) = self.sched.admit(access, w) {
            self.run_work(w);
        }
    }

    /// A single-key command of this shard's own connection whose key a transaction holds.
    pub(super) fn command(
        &mut self,
        from: usize,
        to: PartRef,
        frame: &[u8],
        resp3: bool,
        origin: ConnId,
        caller: crate::auth::ScriptCaller,
    ) {
        let mut args = Vec::new();
        let mut scratch = Vec::new();
        let Some(a) = parse_forwarded(frame, &mut args, &mut scratch) else {
            panic!("a command frame that does not parse");
        };
        let access = forwarded(&a).access(origin, &a);
        self.admit_command(from, to, frame, resp3, access, caller);
        self.run_scheduled();
    }

    /// Run every piece of queued work that may run now. Running work can deliver replies
    /// that start more work here; that work is queued behind what runs (its entries still
    /// hold their keys) and picked up by the next pass.
    pub(super) fn run_scheduled(&mut self) {
        if self.running {
            return;
        }
        self.running = true;
        loop {
            let mut work = std::mem::take(&mut self.runnable);
            self.sched.runnable(&mut work);
            if work.is_empty() {
                self.runnable = work;
                break;
            }
            for (ticket, w) in work.drain(..) {
                // A big HSET keeps its ticket (its key held) until its last slice.
                if let Some(ticket) = self.run_work_under(w, Some(ticket)) {
                    self.sched.ran(ticket);
                }
            }
            self.runnable = work;
        }
        self.running = false;
        // Writes of what ran may serve clients parked on their keys.
        self.serve_ready();
    }

    fn run_work(&mut self, w: Work) {
        let _ = self.run_work_under(w, None);
    }

    /// Run `w`, handed out under `ticket` (None: admitted at once); the ticket back unless a
    /// big HSET in slices keeps it.
    fn run_work_under(&mut self, w: Work, ticket: Option<Ticket>) -> Option<Ticket> {
        self.stall_mark_work(&w);
        match w {
            Work::Command {
                from,
                to,
                frame,
                resp3,
                caller,
            } => {
                match self.sliced_start(&frame, resp3) {
                    Some(Started::Read(job)) => {
                        self.start_reply(from, to, job);
                        return ticket;
                    }
                    Some(Started::Write(Ok(job))) => {
                        self.start_write(from, to, job, ticket);
                        return None;
                    }
                    Some(Started::Write(Err(reply))) => {
                        let res = Res::Cache(cache::Res::Encoded(reply));
                        self.reply(from as usize, Reply::Part { to, res });
                        return ticket;
                    }
                    None => {}
                }
                let op = cache::Op::Command {
                    frame,
                    resp3,
                    caller,
                };
                let res = cache::run(&mut self.store, &op, self.now_ms, OomCheck::Refuse);
                self.reply(
                    from as usize,
                    Reply::Part {
                        to,
                        res: Res::Cache(res),
                    },
                );
            }
            Work::Write {
                from,
                to,
                mut write,
            } => match write.begin(&mut self.store, self.now_ms) {
                Ok(()) => {
                    self.start_write(from, to, *write, ticket);
                    return None;
                }
                Err(reply) => {
                    let res = Res::Cache(cache::Res::Encoded(reply));
                    self.reply(from as usize, Reply::Part { to, res });
                }
            },
            Work::Part { from, to, op } => self.run_op(from, to, op, OomCheck::Refuse),
            // A transaction's memory was checked when it was proposed.
            Work::Hop { from, ops } => {
                for (to, op) in ops {
                    self.run_op(from, Some(to), op, OomCheck::Admitted);
                }
            }
            Work::Proposed { .. } => panic!("a proposal's answer note queued as work"),
        }
        ticket
    }

    /// A queued single-key command over a big hash, started in slices (`sliced.rs`).
    fn sliced_start(&mut self, frame: &[u8], resp3: bool) -> Option<Started> {
        let (mut args, mut scratch) = (Vec::new(), Vec::new());
        let a = parse_forwarded(frame, &mut args, &mut scratch)?;
        let spec = forwarded(&a).spec;
        if let Some(w) = SlicedWrite::start(&mut self.store, spec, &a, frame, self.now_ms, resp3) {
            return Some(Started::Write(w));
        }
        SlicedReply::start(&mut self.store, spec, &a, self.now_ms, resp3).map(Started::Read)
    }

    fn run_op(&mut self, from: u16, to: Option<PartRef>, op: Op, oom: OomCheck) {
        match op {
            Op::Cache(
                c @ (cache::Op::Block { .. }
                | cache::Op::Unblock { .. }
                | cache::Op::Notify { .. }
                | cache::Op::Wake { .. }
                | cache::Op::Claim { .. }),
            ) => self.run_blocking(from, to, c),
            // A KEYS part of its own (not a transaction's hop): in slices (`sliced.rs`).
            Op::Cache(cache::Op::Keys(pattern)) if !matches!(oom, OomCheck::Admitted) => {
                let Some(to) = to else {
                    panic!("a KEYS part with nobody waiting for it");
                };
                self.start_keys(from, to, pattern);
            }
            Op::Cache(c) => {
                let mut res = cache::run(&mut self.store, &c, self.now_ms, oom);
                if let cache::Res::Info(i) = &mut res {
                    // Shard-level figures the store does not know.
                    i.shard_figures(&self.metrics, self.conns.open() as u64);
                }
                if let cache::Op::Configure(crate::cache::cmd::server::Setting::ResetStats) = &c {
                    self.metrics.reset_stats();
                }
                if let Some(to) = to {
                    self.reply(
                        from as usize,
                        Reply::Part {
                            to,
                            res: Res::Cache(res),
                        },
                    );
                }
            }
            Op::Log(l) => {
                let Some(to) = to else {
                    panic!("a log part with nobody waiting for it");
                };
                let dest = Dest { shard: from, to };
                self.with_logs(|logs, ctx| logs.exec(l, dest, ctx));
            }
            Op::Group(g) => {
                let Some(to) = to else {
                    panic!("a group part with nobody waiting for it");
                };
                let dest = Dest { shard: from, to };
                self.with_groups(|groups, ctx| groups.exec(*g, dest, ctx));
            }
        }
    }

    /// Answer `shard`: into this turn's reply batch for it, or straight to the flight when
    /// it is this shard's own.
    pub(super) fn reply(&mut self, shard: usize, r: Reply) {
        if shard != self.id {
            self.mesh.replies(shard, self.now).msgs.push(r);
            return;
        }
        match r {
            Reply::Part { to, res } => {
                self.step_flight(to.flight, Input::Done { part: to.part, res })
            }
            Reply::Proposed { to, pos, oom } => self.step_flight(to, Input::Proposed { pos, oom }),
            Reply::Encoded { .. } => panic!("encoded replies travel only between shards"),
        }
    }

    /// Deliver the results the log produced.
    /// Send the log's replies to their flights. Delivering one can produce more (a flight
    /// here runs its next log part at once), so this goes on until none is left; the
    /// vector's allocation is kept for the next turn.
    pub(super) fn route_log_replies(&mut self) {
        let mut batch = Vec::new();
        loop {
            std::mem::swap(&mut batch, &mut self.log_replies);
            if batch.is_empty() {
                return;
            }
            for (dest, r) in batch.drain(..) {
                self.reply(dest.shard as usize, log_reply(dest.to, r));
            }
        }
    }
}

fn log_reply(to: PartRef, r: LogResult) -> Reply {
    Reply::Part {
        to,
        res: Res::Log(r),
    }
}

/// A single-key command over a big hash, started in slices.
enum Started {
    Read(SlicedReply),
    Write(Result<SlicedWrite, Vec<u8>>),
}

impl Shard {
    /// Start `a` in slices if it is over a big hash (its key free); false: run it whole.
    fn big_hash(
        &mut self,
        from: u16,
        to: PartRef,
        spec: &'static crate::proto::resp::command::Spec,
        a: &crate::proto::resp::Args,
        frame: &[u8],
        resp3: bool,
    ) -> bool {
        let now = self.now_ms;
        match SlicedWrite::start(&mut self.store, spec, a, frame, now, resp3) {
            Some(Ok(job)) => {
                self.start_write(from, to, job, None);
                return true;
            }
            Some(Err(reply)) => {
                let res = Res::Cache(cache::Res::Encoded(reply));
                self.reply(from as usize, Reply::Part { to, res });
                return true;
            }
            None => {}
        }
        match SlicedReply::start(&mut self.store, spec, a, now, resp3) {
            Some(job) => {
                self.start_reply(from, to, job);
                true
            }
            None => false,
        }
    }
}

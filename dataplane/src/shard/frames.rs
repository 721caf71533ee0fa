//! The one frame loop both protocols share: take whole frames off a connection's query
//! buffer, hand each to its front end (`redis/` or `kafka/`), and act on what it decides,
//! until the buffer holds no whole frame, a bound says stop (requests in flight, mesh room,
//! replies its client has not read: see `admission.rs`), or the connection closes.

use bytes::Bytes;

use super::conn::{PartialRequest, Proto};
use super::{Act, Shard};
use crate::budget::{Purpose, Tracked};
use crate::cache::cmd::hashes::SlicedWrite;
use crate::limits::{MOVE_FRAME_BYTES, PARSE_KEEP_ARGS_MIN, PARSE_SLICE_ARGS};
use crate::metrics::stall::What;
use crate::proto::kafka as wire;
use crate::proto::resp::parse::{self, Frame, Resume};
use crate::proto::resp::Args;
use crate::txn::ConnId;

/// Kafka frames smaller than this are copied without being charged to the budget (the
/// charge would cost more than the bytes).
const TRACKED_FRAME_BYTES_MIN: usize = 4096;

/// What the front end did with the frame at the front of the buffer.
enum Took {
    /// Consumed this many bytes.
    Bytes(usize),
    /// Took the frame out of the front of the buffer (the buffer now starts after it).
    Taken,
    /// Not a whole frame yet.
    Incomplete,
    /// A request of many arguments used this turn's parse budget with bytes left: it goes
    /// on in the next loop turn.
    Paused,
    /// A mesh batch it needs is full: retried when there is room.
    Blocked,
    /// A framing error: the connection is closing.
    Broken,
}

impl Shard {
    pub(super) fn conn_id(&self, slot: u32, gen: u32) -> ConnId {
        ConnId {
            shard: self.id as u16,
            slot,
            gen,
        }
    }

    /// Parse and run what the connection's query buffer holds.
    pub(super) fn process(&mut self, slot: u32) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if !c.is_open() || c.blocked {
            return;
        }
        c.incomplete = false;
        let mut query = std::mem::take(&mut c.query);
        let max_inflight = self.shared.cfg.max_inflight_per_conn;
        let mut pos = 0;
        let mut incomplete = false;
        while let Some(c) = self.conns.get(slot) {
            if !c.is_open() || pos >= query.len() {
                break;
            }
            if !c.may_launch(max_inflight) {
                self.metrics.counters.inflight_backpressure += 1;
                break;
            }
            let kafka = matches!(c.proto, Proto::Kafka);
            if self.holds_requests(slot) {
                break;
            }
            let took = if kafka {
                self.kafka_frame(slot, &mut query, pos)
            } else {
                self.resp_frame(slot, &mut query, pos)
            };
            match took {
                Took::Bytes(n) => pos += n,
                Took::Taken => {}
                Took::Incomplete => {
                    let unparsed = query.len() - pos;
                    if unparsed > self.shared.cfg.max_query_buffer_bytes {
                        self.metrics.counters.closed_query_limit += 1;
                        tracing::warn!(
                            shard = self.id,
                            bytes = unparsed,
                            "closing client that reached --max-query-buffer-bytes"
                        );
                        self.close_conn(slot, true);
                    }
                    incomplete = true;
                    // The buffer grows as the frame's bytes arrive (`Conn::take_input`), not
                    // at its header: the memory budget counts what is really held.
                    break;
                }
                Took::Blocked => {
                    self.block(slot);
                    break;
                }
                Took::Paused => {
                    self.parse_next_turn(slot);
                    break;
                }
                Took::Broken => break,
            }
        }
        query.drain(..pos);
        if let Some(c) = self.conns.get_mut(slot) {
            if c.is_open() {
                c.query = query;
                c.incomplete = incomplete;
                c.shrink_input();
                return self.account(slot);
            }
        }
        let cap = query.capacity();
        crate::budget::free_elsewhere(query, cap);
        self.account(slot);
    }

    fn block(&mut self, slot: u32) {
        if let Some(c) = self.conns.get_mut(slot) {
            if !c.blocked {
                c.blocked = true;
                self.blocked.push(slot);
                self.metrics.counters.mesh_backpressure += 1;
            }
        }
    }

    /// The connection's partial request goes on in the next loop turn: the blocked list is
    /// retried every turn and keeps the loop from waiting (not counted as mesh
    /// backpressure). A retry within this turn finds the budget spent and puts it back.
    fn parse_next_turn(&mut self, slot: u32) {
        if let Some(c) = self.conns.get_mut(slot) {
            if !c.blocked {
                c.blocked = true;
                self.blocked.push(slot);
            }
        }
    }

    /// This loop turn's number, to reset each connection's parse budget once a turn.
    fn turn(&self) -> u64 {
        self.metrics.loop_turn.len()
    }

    pub(super) fn retry_blocked(&mut self) {
        if self.blocked.is_empty() {
            return;
        }
        for slot in std::mem::take(&mut self.blocked) {
            if let Some(c) = self.conns.get_mut(slot) {
                c.blocked = false;
                self.process(slot);
                self.mark_dirty(slot);
            }
        }
    }

    /// The RESP frame at `query[pos..]`.
    fn resp_frame(&mut self, slot: u32, query: &mut Vec<u8>, pos: usize) -> Took {
        let buf = &query[pos..];
        let turn = self.turn();
        let Some(c) = self.conns.get_mut(slot) else {
            return Took::Broken;
        };
        let authed = matches!(&c.proto, Proto::Resp(s) if s.authed);
        // A request of many arguments goes on from where its last parse stopped, within a
        // budget of arguments a turn (`PARSE_SLICE_ARGS`).
        let used = if c.parse_turn.0 == turn {
            c.parse_turn.1
        } else {
            0
        };
        let budget = PARSE_SLICE_ARGS.saturating_sub(used);
        let kept = c.partial.take();
        if budget == 0 {
            c.partial = kept;
            return Took::Paused;
        }
        let (mut args, mut resume) = match kept {
            Some(p) => {
                self.stall_mark(What::Named("RESP parse of a request of many arguments"));
                (p.args, p.resume)
            }
            None => (std::mem::take(&mut self.args), Resume::default()),
        };
        let from_conn = resume.is_begun();
        let before = args.len();
        let mut scratch = std::mem::take(&mut self.scratch);
        let limits = if authed {
            self.limits
        } else {
            self.limits.unauthenticated()
        };
        let parsed =
            parse::parse_sliced(buf, &limits, &mut args, &mut scratch, &mut resume, budget);
        if let Ok(Frame::Incomplete | Frame::Paused) = parsed {
            let paused = matches!(parsed, Ok(Frame::Paused));
            if resume.is_begun() && (paused || from_conn || args.len() >= PARSE_KEEP_ARGS_MIN) {
                // Kept in the connection until the frame is whole; the shard's own
                // argument vector is replaced when it was the one lent.
                if let Some(c) = self.conns.get_mut(slot) {
                    let n = args.len().saturating_sub(before);
                    c.parse_turn = (turn, used + n);
                    c.partial = Some(Box::new(PartialRequest { args, resume }));
                }
            } else {
                self.args = args;
            }
            self.scratch = scratch;
            return if paused {
                Took::Paused
            } else {
                Took::Incomplete
            };
        }
        let took = match parsed {
            Err(e) => {
                self.metrics.counters.protocol_errors += 1;
                tracing::debug!(shard = self.id, error = %e, "protocol error; closing");
                if let Some(c) = self.conns.get_mut(slot) {
                    let msg = e.message();
                    c.reply(|o| o.error(&msg));
                }
                self.close_conn(slot, false);
                Took::Broken
            }
            Ok(Frame::Incomplete | Frame::Paused) => Took::Incomplete,
            Ok(Frame::Empty { consumed }) => Took::Bytes(consumed),
            Ok(Frame::Multibulk { consumed }) => {
                let a = Args {
                    src: buf,
                    ranges: &args,
                };
                let (act, started) = self.dispatch_resp(slot, a, &buf[..consumed]);
                match act {
                    // A big HSET at the front of the buffer moves out of it to its shard,
                    // which applies it in slices (issue 13): no copy, no second parse.
                    crate::shard::Act::Forward {
                        shard,
                        family,
                        caller,
                    } if pos == 0
                        && consumed >= MOVE_FRAME_BYTES
                        && SlicedWrite::wanted(&query[..consumed]) =>
                    {
                        let rest = query.split_off(consumed);
                        let frame = std::mem::replace(query, rest);
                        self.forward_write(slot, shard, frame, family, started, caller);
                        self.metrics.counters.commands += 1;
                        Took::Taken
                    }
                    act => self.act(slot, act, &query[pos..pos + consumed], consumed, started),
                }
            }
            Ok(Frame::Inline { consumed }) => {
                let a = Args {
                    src: &scratch,
                    ranges: &args,
                };
                self.run_resp(slot, a, &scratch, consumed)
            }
        };
        if from_conn {
            // A large request's own vector: freed (on the helper thread when large).
            let bytes = args.capacity() * std::mem::size_of::<(usize, usize)>();
            crate::budget::free_elsewhere(args, bytes);
        } else {
            self.args = args;
        }
        self.scratch = scratch;
        took
    }

    fn run_resp(&mut self, slot: u32, a: Args, frame: &[u8], consumed: usize) -> Took {
        let (act, started) = self.dispatch_resp(slot, a, frame);
        self.act(slot, act, frame, consumed, started)
    }

    /// What the RESP front end decides about the request `a` (in `frame`), and when it
    /// started.
    fn dispatch_resp(&mut self, slot: u32, a: Args, frame: &[u8]) -> (Act, std::time::Instant) {
        let started = self.shared.clock.now();
        self.stall.mark(started, What::command(a.get(0), a.len()));
        let Some(c) = self.conns.get_mut(slot) else {
            return (Act::Done, started);
        };
        let gen = c.gen;
        let mut ctx = crate::redis::Ctx {
            node: &self.shared,
            me: self.id,
            owner: &self.owner,
            store: &mut self.store,
            sched: &self.sched,
            mesh: &self.mesh,
            metrics: &mut self.metrics,
            clock: &*self.shared.clock,
            started,
            now_ms: self.now_ms,
            conn: ConnId {
                shard: self.id as u16,
                slot,
                gen,
            },
        };
        let act = crate::redis::dispatch(&mut ctx, c, a, frame);
        // A write here may serve clients parked on its keys, before the next command.
        self.serve_ready();
        (act, started)
    }

    /// The Kafka frame at `query[pos..]`. Its bytes become the request's payload, charged to
    /// this shard's budget until the last part of the request lets go of them (a Produce's
    /// batches after their commit): as `produce` for a Produce, `input` otherwise. A large
    /// frame at the front of the buffer is moved out of it rather than copied.
    fn kafka_frame(&mut self, slot: u32, query: &mut Vec<u8>, pos: usize) -> Took {
        let buf = &query[pos..];
        let n = match wire::frame_len(buf, self.shared.cfg.max_request_bytes) {
            Ok(None) => return Took::Incomplete,
            Ok(Some(n)) => n,
            Err(e) => {
                self.metrics.counters.protocol_errors += 1;
                tracing::debug!(shard = self.id, error = %e, "bad Kafka frame; closing");
                self.close_conn(slot, false);
                return Took::Broken;
            }
        };
        let purpose = match buf.get(4..6) {
            Some([0, 0]) => Purpose::Produce,
            _ => Purpose::Input,
        };
        // The whole frame when it was taken out of the buffer, to put back if the request
        // must wait (a full mesh batch).
        let mut taken = None;
        let (payload, took) = if pos == 0 && n >= MOVE_FRAME_BYTES {
            let rest = query.split_off(n);
            let frame = std::mem::replace(query, rest);
            let cap = frame.capacity();
            let whole = Bytes::from_owner(Tracked::new(frame, cap, purpose));
            let payload = whole.slice(4..n);
            taken = Some(whole);
            (payload, Took::Taken)
        } else if n >= TRACKED_FRAME_BYTES_MIN {
            let frame = buf[4..n].to_vec();
            let len = frame.len();
            (
                Bytes::from_owner(Tracked::new(frame, len, purpose)),
                Took::Bytes(n),
            )
        } else {
            (Bytes::copy_from_slice(&buf[4..n]), Took::Bytes(n))
        };
        let started = self.shared.clock.now();
        let api = payload
            .get(..2)
            .map_or(-1, |k| i16::from_be_bytes([k[0], k[1]]));
        self.stall.mark(started, What::Kafka(api));
        let Some(c) = self.conns.get_mut(slot) else {
            return took;
        };
        let mut ctx = crate::kafka::Ctx {
            node: &self.shared,
            me: self.id,
            owner: &self.owner,
            topics: &self.logs.topics,
            mesh: &self.mesh,
            now: started,
            now_ms: self.now_ms,
            next_producer: &mut self.next_producer,
            tls: c.tls.is_some(),

            principal: None,
        };
        let act = crate::kafka::dispatch(&mut ctx, c, payload);
        match self.act(slot, act, &[], n, started) {
            Took::Bytes(_) => took,
            Took::Blocked => {
                if let Some(whole) = taken {
                    // Rare (the mesh batch is full): the frame goes back, copied once.
                    let mut back = Vec::with_capacity(whole.len() + query.len());
                    back.extend_from_slice(&whole);
                    back.extend_from_slice(query);
                    *query = back;
                }
                Took::Blocked
            }
            other => other,
        }
    }

    /// Carry out what a front end decided about the request in `frame`.
    fn act(
        &mut self,
        slot: u32,
        act: Act,
        frame: &[u8],
        consumed: usize,
        started: std::time::Instant,
    ) -> Took {
        match act {
            Act::Blocked => return Took::Blocked,
            Act::Done => self.mark_dirty(slot),
            Act::Close => self.close_conn(slot, false),
            Act::Reject => {
                self.metrics.counters.protocol_errors += 1;
                self.close_conn(slot, false);
            }
            Act::Forward {
                shard,
                family,
                caller,
            } => self.forward(slot, shard, frame, family, started, caller),
            Act::Launch(l) => self.launch(slot, l, started),
            Act::Unwatch { shards } => {
                let gen = self.conns.get(slot).map_or(0, |c| c.gen);
                let origin = self.conn_id(slot, gen);
                self.send_unwatch(origin, &shards);
                self.mark_dirty(slot);
            }
        }
        self.metrics.counters.commands += 1;
        Took::Bytes(consumed)
    }
}

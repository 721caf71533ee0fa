//! The mesh between shards: for every ordered pair (from, to) two bounded lock-free lanes
//! (crossbeam's `ArrayQueue` used single-producer/single-consumer), one for requests and
//! one for replies, and a doorbell (`IORING_OP_MSG_RING`) that wakes the receiving shard.
//!
//! **Batched.** A shard gathers everything it has for one destination during a loop turn
//! in an outgoing [`Batch`] and pushes it as *one* lane message at the end of the turn;
//! replies go back batched the same way. Sixteen pipelined requests to one remote shard
//! cost one push, one pop and one doorbell, not sixteen. Command frames and encoded
//! replies travel in the batch's byte arena, so a remote GET allocates nothing per request.
//!
//! **Deadlock-free backpressure.** A shard takes a request batch off a lane only when the
//! reply lane back has room for a batch, and it always drains reply lanes. Replies never
//! wait on anything, so two shards whose request lanes are full in both directions still
//! make progress. A batch that finds its lane full stays in the outbox and goes next turn.
//!
//! **Bounds.** Each lane holds `--ring-capacity` batches. A new command needs room for its
//! parts in its destination's outgoing batch ([`limits::MESH_BATCH_PARTS_MAX`]); without it
//! the connection stops being read until the batch has gone (nothing is dropped). Later
//! rounds of operations already started may pass the bound, so nothing in flight is stuck.
//! A command with more parts for one shard than a whole batch holds (a Produce or Fetch
//! naming thousands of one shard's partitions) needs what a command of exactly the bound
//! needs, an empty batch, and then goes in it alone: it waits for the batch to go, never
//! for room that can never come.
//!
//! Lifecycle: lanes are created by the main thread before shards start and shared by exactly
//! two shard threads each; they are dropped after every shard has exited.

pub mod msg;
pub mod route;

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;

use crate::limits;
pub use msg::{Batch, Msg, Reply};
pub use route::SlotTable;

/// The two lanes from one shard to another.
pub struct Lanes {
    pub req: ArrayQueue<Batch<Msg>>,
    pub resp: ArrayQueue<Batch<Reply>>,
}

/// All lanes of an `n`-shard node, indexed `from * n + to`.
pub struct Mesh {
    n: usize,
    lanes: Vec<Arc<Lanes>>,
}

impl Mesh {
    pub fn new(n: usize, capacity: usize) -> Mesh {
        let lanes = (0..n * n)
            .map(|_| {
                Arc::new(Lanes {
                    req: ArrayQueue::new(capacity),
                    resp: ArrayQueue::new(capacity),
                })
            })
            .collect();
        Mesh { n, lanes }
    }

    /// Shard `me`'s side of the mesh: its outgoing and incoming lanes.
    pub fn endpoint(&self, me: usize, now: Instant) -> Endpoint {
        Endpoint {
            out: (0..self.n)
                .map(|to| self.lanes[me * self.n + to].clone())
                .collect(),
            inc: (0..self.n)
                .map(|from| self.lanes[from * self.n + me].clone())
                .collect(),
            ring_fds: vec![-1; self.n],
            reqs: (0..self.n).map(|_| Batch::new(now)).collect(),
            replies: (0..self.n).map(|_| Batch::new(now)).collect(),
            rang: vec![false; self.n],
            spare_msgs: Vec::new(),
            spare_replies: Vec::new(),
            spare_bytes: Vec::new(),
            need: Cell::new(vec![0; self.n]),
        }
    }
}

/// One shard's side of the mesh: lanes out and in, and this turn's outgoing batches.
pub struct Endpoint {
    out: Vec<Arc<Lanes>>,
    inc: Vec<Arc<Lanes>>,
    /// Ring fds of every shard, for doorbells; filled in at start-up.
    pub ring_fds: Vec<RawFd>,
    reqs: Vec<Batch<Msg>>,
    replies: Vec<Batch<Reply>>,
    /// Which peers got a batch this turn and need a doorbell.
    rang: Vec<bool>,
    /// Emptied vectors of batches received, reused for batches sent, so a batch costs no
    /// allocation in steady state.
    spare_msgs: Vec<Vec<Msg>>,
    spare_replies: Vec<Vec<Reply>>,
    spare_bytes: Vec<Vec<u8>>,
    /// Parts per shard, counted by `room_for` (kept to count without allocating).
    need: Cell<Vec<usize>>,
}

/// Push the batch gathered in `out` onto `lane`, leaving `fresh` in its place; on a full
/// lane the batch stays and `fresh` comes back.
fn push<M>(
    lane: &ArrayQueue<Batch<M>>,
    out: &mut Batch<M>,
    fresh: Batch<M>,
) -> Result<(), Batch<M>> {
    let b = std::mem::replace(out, fresh);
    lane.push(b).map_err(|b| std::mem::replace(out, b))
}

fn keep<T>(spares: &mut Vec<Vec<T>>, mut v: Vec<T>) {
    let size = v.capacity() * std::mem::size_of::<T>();
    if spares.len() < limits::MESH_SPARE_VECS_MAX
        && v.capacity() > 0
        && size <= limits::MESH_SPARE_BYTES_MAX
    {
        v.clear();
        spares.push(v);
    }
}

impl Endpoint {
    /// May a new command add `parts` parts for `to` this turn? More parts than a batch
    /// holds need the batch empty (and then fill it past the bound, alone): asking for
    /// room that no batch has would block its connection for good.
    pub fn room(&self, to: usize, parts: usize) -> bool {
        let parts = parts.min(limits::MESH_BATCH_PARTS_MAX);
        self.reqs[to].msgs.len() + parts <= limits::MESH_BATCH_PARTS_MAX
    }

    /// Room this turn for `parts` (the shard of each part; shard `me`'s own are not sent)?
    pub fn room_for(&self, me: usize, parts: impl IntoIterator<Item = usize>) -> bool {
        let mut need = self.need.take();
        need.iter_mut().for_each(|n| *n = 0);
        for s in parts {
            if s != me {
                need[s] += 1;
            }
        }
        let fits = need
            .iter()
            .enumerate()
            .all(|(s, &k)| k == 0 || self.room(s, k));
        self.need.set(need);
        fits
    }

    /// The batch of requests being gathered for `to` (stamped `now` if it was empty).
    pub fn requests(&mut self, to: usize, now: Instant) -> &mut Batch<Msg> {
        let b = &mut self.reqs[to];
        if b.is_empty() {
            b.sent = now;
        }
        b
    }

    /// The batch of replies being gathered for `to`; `sent` is the request's send time.
    pub fn replies(&mut self, to: usize, sent: Instant) -> &mut Batch<Reply> {
        let b = &mut self.replies[to];
        if b.is_empty() || sent < b.sent {
            b.sent = sent;
        }
        b
    }

    /// Take the next request batch from `from`, if the reply lane back has room for the
    /// batch of replies it will produce.
    pub fn take_requests(&mut self, from: usize) -> Option<Batch<Msg>> {
        let back = &self.out[from].resp;
        if back.len() >= back.capacity() {
            return None;
        }
        self.inc[from].req.pop()
    }

    /// Requests from `from` wait because the reply lane back is full.
    pub fn requests_waiting(&self, from: usize) -> bool {
        !self.inc[from].req.is_empty()
    }

    pub fn take_replies(&mut self, from: usize) -> Option<Batch<Reply>> {
        self.inc[from].resp.pop()
    }

    /// A request batch has been handled: keep its vectors for batches to come.
    pub fn recycle_requests(&mut self, b: Batch<Msg>) {
        keep(&mut self.spare_msgs, b.msgs);
        keep(&mut self.spare_bytes, b.bytes);
    }

    /// A reply batch has been handled: keep its vectors for batches to come.
    pub fn recycle_replies(&mut self, b: Batch<Reply>) {
        keep(&mut self.spare_replies, b.msgs);
        keep(&mut self.spare_bytes, b.bytes);
    }

    /// Push this turn's batches, one per destination and direction, where the lane has
    /// room; what does not fit stays for the next turn.
    pub fn flush(&mut self, now: Instant) {
        for to in 0..self.out.len() {
            // A full lane (only this shard pushes to it) would refuse the batch anyway.
            if !self.reqs[to].is_empty() && !self.out[to].req.is_full() {
                let fresh = Batch::reusing(self.spare_msgs.pop(), self.spare_bytes.pop(), now);
                match push(&self.out[to].req, &mut self.reqs[to], fresh) {
                    Ok(()) => self.rang[to] = true,
                    Err(fresh) => self.recycle_requests(fresh),
                }
            }
            if !self.replies[to].is_empty() && !self.out[to].resp.is_full() {
                let fresh = Batch::reusing(self.spare_replies.pop(), self.spare_bytes.pop(), now);
                match push(&self.out[to].resp, &mut self.replies[to], fresh) {
                    Ok(()) => self.rang[to] = true,
                    Err(fresh) => self.recycle_replies(fresh),
                }
            }
        }
    }

    /// Batches still waiting for lane room (the loop must not sleep).
    pub fn backlogged(&self) -> bool {
        self.reqs.iter().any(|b| !b.is_empty()) || self.replies.iter().any(|b| !b.is_empty())
    }

    /// Shards that got a batch since the last call, into `out`: each needs one doorbell.
    pub fn take_doorbells(&mut self, out: &mut Vec<usize>) {
        for (s, rang) in self.rang.iter_mut().enumerate() {
            if std::mem::take(rang) {
                out.push(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::ops::LogOp;
    use crate::txn::{ConnId, Op};

    fn endpoint() -> Endpoint {
        Mesh::new(2, 4).endpoint(0, Instant::now())
    }

    fn fill(e: &mut Endpoint, to: usize, parts: usize) {
        let now = Instant::now();
        for _ in 0..parts {
            e.requests(to, now).msgs.push(Msg::Part {
                to: None,
                op: Op::Log(LogOp::DeleteTopic("t".into())),
                origin: ConnId {
                    shard: 0,
                    slot: 0,
                    gen: 0,
                },
            });
        }
    }

    #[test]
    fn a_command_wider_than_a_batch_goes_alone_in_an_empty_one() {
        let mut e = endpoint();
        let wide = limits::MESH_BATCH_PARTS_MAX + 1000;
        // Shard 0's own parts are not sent and need no room.
        assert!(e.room_for(0, std::iter::repeat_n(0, wide)));
        assert!(e.room_for(0, std::iter::repeat_n(1, wide)));
        fill(&mut e, 1, 1);
        assert!(!e.room_for(0, std::iter::repeat_n(1, wide)));
        assert!(e.room_for(0, std::iter::repeat_n(1, limits::MESH_BATCH_PARTS_MAX - 1)));
        // Once the wide one is in the batch, nothing more fits until it has gone.
        let mut e = endpoint();
        fill(&mut e, 1, wide);
        assert!(!e.room_for(0, [1]));
        e.flush(Instant::now());
        assert!(e.room_for(0, std::iter::repeat_n(1, wide)));
    }
}

//! The mesh between shards: for every ordered pair (from, to) a bounded lock-free queue
//! used single-producer/single-consumer, and a doorbell (`IORING_OP_MSG_RING`) that wakes
//! the receiving shard.
//!
//! Each ordered pair has two lanes, one for requests and one for responses. A shard takes a
//! request off a lane only when the response lane back to its sender has room, and it always
//! drains response lanes. Responses never wait on anything, so two shards whose request lanes
//! are full cannot deadlock each other. That is why the design's "one ring per ordered pair"
//! is a pair of lanes here.
//!
//! Bounds: each lane holds `--ring-capacity` messages. A sender that finds a lane full stops
//! reading from the connection that needed it until the lane drains (backpressure); nothing
//! is dropped.
//!
//! Lifecycle: lanes are created by the main thread before shards start and shared by exactly
//! two shard threads each; they are dropped after every shard has exited.

pub mod msg;

use std::os::fd::RawFd;
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

pub use msg::{ConnRef, ReqBody, Request, RespBody, Response};

/// The two lanes from one shard to another.
pub struct Lanes {
    pub req: ArrayQueue<Request>,
    pub resp: ArrayQueue<Response>,
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
    pub fn endpoint(&self, me: usize) -> Endpoint {
        Endpoint {
            out: (0..self.n)
                .map(|to| self.lanes[me * self.n + to].clone())
                .collect(),
            inc: (0..self.n)
                .map(|from| self.lanes[from * self.n + me].clone())
                .collect(),
            ring_fds: vec![-1; self.n],
            pushed: vec![false; self.n],
        }
    }
}

/// One shard's lanes. `out[to]` it produces into, `inc[from]` it consumes from.
pub struct Endpoint {
    pub out: Vec<Arc<Lanes>>,
    pub inc: Vec<Arc<Lanes>>,
    /// Ring fds of every shard, for doorbells; filled in at start-up.
    pub ring_fds: Vec<RawFd>,
    /// Which peers got messages this loop turn and need a doorbell.
    pub pushed: Vec<bool>,
}

// A failed push hands the message back to the caller, who parks or retries it; that is the
// point of returning it, large as it is.
#[allow(clippy::result_large_err)]
impl Endpoint {
    /// Free request slots towards `to`. Only this shard produces into that lane, so the
    /// answer can only grow until we push.
    pub fn req_room(&self, to: usize) -> usize {
        let l = &self.out[to].req;
        l.capacity() - l.len()
    }

    pub fn resp_room(&self, to: usize) -> usize {
        let l = &self.out[to].resp;
        l.capacity() - l.len()
    }

    /// Push a request the caller has checked room for. Returns it back if the lane is full.
    pub fn push_req(&mut self, to: usize, r: Request) -> Result<(), Request> {
        self.out[to].req.push(r)?;
        self.pushed[to] = true;
        Ok(())
    }

    pub fn push_resp(&mut self, to: usize, r: Response) -> Result<(), Response> {
        self.out[to].resp.push(r)?;
        self.pushed[to] = true;
        Ok(())
    }
}

//! Messages that cross the mesh, and the batches that carry them. They own their data (a
//! part's operation, a frame's bytes in the batch, an encoded reply), so the receiving shard
//! never reads the sender's memory.

use std::ops::Range;
use std::time::Instant;

use crate::txn::{Access, ConnId, FlightRef, Op, PartRef, Pos, Res, TxId};

/// A request to a shard.
#[derive(Debug)]
pub enum Msg {
    /// A part of a plain flight: single-shard work, admitted by the shard's scheduler. No
    /// `to`: nobody waits for the result (a closed connection's UNWATCH).
    Part {
        to: Option<PartRef>,
        op: Op,
        origin: ConnId,
    },
    /// A single-key command as the client sent it: `frame` is its range in the batch's
    /// bytes. The reply comes back encoded for the connection's protocol.
    Command {
        to: PartRef,
        frame: Range<usize>,
        resp3: bool,
        origin: ConnId,
        /// A restricted user's script command: who runs it.
        caller: crate::auth::ScriptCaller,
    },
    /// A transaction announces what it will touch; the answer is a proposed position.
    Propose {
        tx: TxId,
        to: FlightRef,
        access: Access,
        denyoom: bool,
    },
    /// A transaction's hop: its final position (with the first hop), the parts to run here
    /// (maybe none), and whether the transaction ends here once they ran.
    Hop {
        tx: TxId,
        fin: Option<Pos>,
        ops: Vec<(PartRef, Op)>,
        conclude: bool,
    },
    /// Connection balancing (issue 12): a socket the accepting shard hands to this one,
    /// which serves it as if it had accepted it. `kind` is `LISTENER_RESP` or
    /// `LISTENER_KAFKA`; `tls` says it came in on a TLS listener. Dropped undelivered, the
    /// socket closes.
    Adopt {
        fd: std::os::fd::OwnedFd,
        kind: u32,
        tls: bool,
    },
}

/// An answer from a shard.
#[derive(Debug)]
pub enum Reply {
    Part {
        to: PartRef,
        res: Res,
    },
    /// A command's encoded reply: `range` in the batch's bytes.
    Encoded {
        to: PartRef,
        range: Range<usize>,
    },
    Proposed {
        to: FlightRef,
        pos: Pos,
        oom: bool,
    },
}

/// What one lane message carries: every message for one destination from one loop turn.
#[derive(Debug)]
pub struct Batch<M> {
    pub msgs: Vec<M>,
    /// Command frames and encoded replies, referenced by range.
    pub bytes: Vec<u8>,
    /// When the oldest request it carries (or answers) left its shard, for the mesh-hop
    /// histogram.
    pub sent: Instant,
}

impl<M> Batch<M> {
    pub fn new(sent: Instant) -> Batch<M> {
        Batch {
            msgs: Vec::new(),
            bytes: Vec::new(),
            sent,
        }
    }

    /// An empty batch on vectors kept from batches received (or new ones).
    pub fn reusing(msgs: Option<Vec<M>>, bytes: Option<Vec<u8>>, sent: Instant) -> Batch<M> {
        Batch {
            msgs: msgs.unwrap_or_default(),
            bytes: bytes.unwrap_or_default(),
            sent,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Append `b` to the batch's bytes; returns its range.
    pub fn add_bytes(&mut self, b: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        start..self.bytes.len()
    }
}

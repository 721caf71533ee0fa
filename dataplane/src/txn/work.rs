//! What an owner shard's scheduler queues: work other shards (or this one) asked for, with
//! where its results go.

use super::op::{FlightRef, Op, PartRef};

#[derive(Debug)]
pub enum Work {
    /// A single-key command (its frame copied out of the batch it came in).
    Command {
        from: u16,
        to: PartRef,
        frame: Box<[u8]>,
        resp3: bool,
        caller: crate::auth::ScriptCaller,
    },
    /// A big HSET or HMSET of a connection (here or on another shard), applied in slices
    /// when its key is free (`shard/sliced.rs`); it owns its frame (issue 13).
    Write {
        from: u16,
        to: PartRef,
        write: Box<crate::cache::cmd::hashes::SlicedWrite>,
    },
    /// A part of a plain flight; no `to`: nobody waits for the result.
    Part {
        from: u16,
        to: Option<PartRef>,
        op: Op,
    },
    /// A hop of a transaction: its parts, run at once and in order.
    Hop { from: u16, ops: Vec<(PartRef, Op)> },
    /// Not work: how to answer a proposal that was parked (`sched.rs`).
    Proposed {
        from: u16,
        to: FlightRef,
        denyoom: bool,
    },
}

//! The transaction framework: every operation that touches more than one shard, or that
//! must run on a shard other than its connection's, goes through here.
//!
//! - [`flight`]: the coordinator side. A [`Flight`] is a state machine that sends an
//!   operation's parts to their shards hop by hop and builds the reply; what each hop is
//!   comes from the operation's [`Rounds`].
//! - [`sched`]: the owner side. A [`Scheduler`] per shard queues work that conflicts with a
//!   transaction in progress and hands it out in an order every shard agrees on (Lamport
//!   positions, Skeen's algorithm), so multi-shard transactions are serialisable and
//!   deadlock-free, and single-shard work runs at once when nothing conflicts.
//! - [`access`]: what a piece of work touches (keys and modes, the whole shard, its
//!   connection) and when two conflict; [`op`]: the one part type over cache and log;
//!   [`work`]: what a scheduler queues; [`waiters`]: commands parked on keys until a write
//!   serves them (blocking pops).
//!
//! `docs/architecture.md` argues the design against Dragonfly's VLL scheduling and traces a
//! MULTI/EXEC through it.

pub mod access;
pub mod flight;
pub mod op;
pub mod sched;
pub mod waiters;
pub mod work;

#[cfg(test)]
mod sim;

pub use access::{Access, ConnId, Mode};
pub use flight::{Flight, Input, Output, Participant, Rounds, Step};
pub use op::{Dest, FlightRef, Op, PartRef, Res};
pub use sched::{Pos, Scheduler, Ticket, TxId};
pub use work::Work;

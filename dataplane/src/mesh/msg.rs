//! Messages that cross the mesh. They carry owned data (a request's frame bytes, a part
//! operation, an encoded reply), so the receiving shard never reads the sender's memory.

use std::time::Instant;

use crate::cache::exec::{PartOp, PartResult};
use crate::log::ops::{LogOp, LogResult};

/// A connection on the origin shard: slot and generation, so a reply for a connection that
/// closed (and whose slot was reused) is recognised and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRef {
    pub slot: u32,
    pub gen: u32,
}

#[derive(Debug)]
pub enum ReqBody {
    /// A single-key command as the client sent it (one RESP frame); the owner parses it again
    /// and encodes the reply for the connection's protocol version.
    Command { frame: Box<[u8]>, resp3: bool },
    /// A piece of a multi-key or all-shard command.
    Part(PartOp),
    /// An operation on a log partition (or topic) this shard owns; answered once its I/O
    /// completes, not when it is taken off the lane.
    Log(LogOp),
}

#[derive(Debug)]
pub struct Request {
    pub conn: ConnRef,
    /// Position of the reply in the connection's reply order.
    pub seq: u64,
    /// Which part of a split command this is.
    pub part: u32,
    pub body: ReqBody,
    pub sent: Instant,
}

#[derive(Debug)]
pub enum RespBody {
    Encoded(Vec<u8>),
    Part(PartResult),
    Log(LogResult),
}

#[derive(Debug)]
pub struct Response {
    pub conn: ConnRef,
    pub seq: u64,
    pub part: u32,
    pub body: RespBody,
    pub sent: Instant,
}

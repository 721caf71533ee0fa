//! The one operation type of the framework, over cache and log parts, and the references
//! that route a part's result back to the flight that asked.

use crate::cache::op as cache;
use crate::kafka::groups::ops::{GroupOp, GroupRes};
use crate::log::ops::{LogOp, LogResult};

/// What one shard runs for one part of an operation.
#[derive(Debug, Clone)]
pub enum Op {
    Cache(cache::Op),
    Log(LogOp),
    /// A consumer group request for its coordinator shard (`kafka/groups/`).
    Group(Box<GroupOp>),
}

/// What comes back.
#[derive(Debug, Clone)]
pub enum Res {
    Cache(cache::Res),
    Log(LogResult),
    Group(Box<GroupRes>),
}

impl Res {
    pub fn cache(self) -> cache::Res {
        match self {
            Res::Cache(r) => r,
            Res::Log(l) => panic!("a log result {l:?} where a cache result belongs"),
            Res::Group(g) => panic!("a group result {g:?} where a cache result belongs"),
        }
    }

    pub fn log(self) -> LogResult {
        match self {
            Res::Log(r) => r,
            Res::Cache(c) => panic!("a cache result {c:?} where a log result belongs"),
            Res::Group(g) => panic!("a group result {g:?} where a log result belongs"),
        }
    }

    pub fn group(self) -> GroupRes {
        match self {
            Res::Group(g) => *g,
            other => panic!("a result {other:?} where a group result belongs"),
        }
    }
}

/// A flight on its coordinator shard: its slot there and the slot's generation, so a
/// result for a flight that ended (and whose slot was reused) is recognised and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlightRef {
    pub id: u32,
    pub gen: u32,
}

/// One part of a flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartRef {
    pub flight: FlightRef,
    pub part: u32,
}

/// Where a part's result goes: the coordinator shard and the part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    pub shard: u16,
    pub to: PartRef,
}

//! The control protocol's messages (JSON, inside `wire.rs` frames).
//!
//! Client → server: `register`, then (nodes) `vote`, `ack`, `ask`, `heartbeat`, `moved`,
//! `fence`, `fenced`; or
//! (operators) `op`. Server → client: `registered`, the 2PC messages of
//! [`crate::twopc::ToMember`] (`prepare`, `decide`, `catchup`), and `reply` to an `op`.

use serde::{Deserialize, Serialize};

use crate::map::{Epoch, NodeId};
use crate::twopc::ToCoordinator;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// A node announces itself. Without `join`, it must already be in the map (added by
    /// the operator). With it (a `pinion --control` node), a node the map does not know
    /// joins as active with these addresses and weight, and a known one's addresses and
    /// shard count are brought up to date.
    Register {
        node: NodeId,
        /// Checked against the map when given (and no `join`).
        #[serde(default)]
        shards: Option<u16>,
        /// Where RESP clients reach the node: given, the node joins by itself.
        #[serde(default)]
        resp_addr: Option<String>,
        #[serde(default)]
        kafka_addr: Option<String>,
        #[serde(default)]
        shard_endpoints: Vec<String>,
        #[serde(default)]
        weight: Option<u32>,
        /// The node carries out move orders (`moves.rs`): slots it owns stream to their
        /// new owner before a change flips them. A node without it has its slots flipped
        /// without their data.
        #[serde(default)]
        moves: bool,
    },
    Vote {
        epoch: Epoch,
        yes: bool,
    },
    Ack {
        epoch: Epoch,
    },
    Ask {
        prepared: Option<Epoch>,
        committed: Epoch,
    },
    Heartbeat {
        shards: Vec<ShardLoad>,
        /// The log partitions the node holds (its topics'): the control plane places the
        /// ones it learns this way in the map.
        #[serde(default)]
        partitions: Vec<crate::map::TopicPartition>,
    },
    /// The new owner of a partition order has caught up: the old owner is to fence these
    /// partitions (the control plane forwards it to the order's old owner as `fence`).
    Fence {
        id: u64,
        units: Vec<crate::moves::Unit>,
    },
    /// The old owner's answer to a `fence`: the end offset of each fenced partition, and
    /// those it could not fence (forwarded to the order's new owner as `fenced`).
    Fenced {
        id: u64,
        #[serde(default)]
        ends: Vec<(crate::moves::Unit, i64)>,
        #[serde(default)]
        failed: Vec<crate::moves::Unit>,
    },
    /// A node's report on a move order it sends (`moves.rs`): units done, units failed;
    /// `last`: the order is over.
    Moved {
        id: u64,
        #[serde(default)]
        done: Vec<crate::moves::Unit>,
        #[serde(default)]
        failed: Vec<crate::moves::Unit>,
        #[serde(default)]
        last: bool,
    },
    Op {
        op: Op,
    },
    /// A topic change a node forwards (`topics.rs`); answered `topic_reply` with this id.
    Topic {
        id: u64,
        change: super::topics::TopicOp,
    },
}

impl ClientMsg {
    /// The 2PC part of a node's message, if it is one.
    pub fn to_coordinator(&self) -> Option<ToCoordinator> {
        Some(match *self {
            ClientMsg::Vote { epoch, yes } => ToCoordinator::Vote { epoch, yes },
            ClientMsg::Ack { epoch } => ToCoordinator::Ack { epoch },
            ClientMsg::Ask {
                prepared,
                committed,
            } => ToCoordinator::Ask {
                prepared,
                committed,
            },
            _ => return None,
        })
    }
}

/// What a node that joins by itself says about itself.
#[derive(Clone, Debug)]
pub struct Join {
    pub resp_addr: String,
    pub kafka_addr: String,
    pub shard_endpoints: Vec<String>,
    pub weight: u32,
}

/// One shard's load in a heartbeat. Only `busy` feeds placement today; the rest is shown.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShardLoad {
    /// CPU busy fraction, 0..=1.
    pub busy: f64,
    #[serde(default)]
    pub ops_per_s: f64,
    #[serde(default)]
    pub bytes_per_s: f64,
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub p99_us: u64,
    #[serde(default)]
    pub memory_bytes: u64,
}

/// An operator command.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Op {
    Status,
    Nodes,
    Map,
    AddNode {
        id: NodeId,
        resp_addr: String,
        kafka_addr: String,
        #[serde(default)]
        shard_endpoints: Vec<String>,
        shards: u16,
        weight: u32,
    },
    RemoveNode {
        id: NodeId,
    },
    Drain {
        id: NodeId,
    },
    SetWeight {
        id: NodeId,
        weight: u32,
    },
    Rebalance,
    /// Pin a shard's connection weight (`weight`), or unpin it (`null`: the load sets it).
    SetConnWeight {
        node: NodeId,
        shard: u16,
        #[serde(default)]
        weight: Option<u32>,
    },
}

pub fn error_reply(error: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"type": "reply", "ok": false, "error": error}))
        .expect("JSON values serialise")
}

pub fn ok_reply(result: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"type": "reply", "ok": true, "result": result}))
        .expect("JSON values serialise")
}

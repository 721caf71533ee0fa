//! The map changes the core thread runs (`core.rs`): what an operator or a node asks, and
//! how each builds the next map from the committed one (the edit, then placement), among
//! them the connection-weight pins of `set-weight --shard`.

use super::core::Core;
use crate::limits::{CONN_WEIGHT_MAX, PARTITIONS_MAX, WEIGHT_MAX};
use crate::map::{ClusterMap, ConnWeights, Node, NodeId, NodeState, TopicPartition};
use crate::placement::{self, Moves};

/// A map change waiting to run.
#[derive(Debug)]
pub(super) enum Change {
    Add(Node),
    Remove(NodeId),
    Drain(NodeId),
    SetWeight(NodeId, u32),
    Rebalance,
    /// A joining node registered: make it active.
    Activate(NodeId),
    /// A node joined by itself (`pinion --control`): add it as active, or bring its
    /// addresses and shard count up to date.
    Join(Node),
    /// Place again (unbounded): the rest of a change whose first round moved only a few
    /// slots to a node that owned none (`MovePhase::first_round`).
    Place,
    /// Pin one shard's connection weight (`Some`), or let the load set it again (`None`).
    SetConnWeight {
        node: NodeId,
        shard: u16,
        weight: Option<u32>,
    },
    /// A topic change a node forwarded (`topics.rs`), answered to it by `id`.
    Topic {
        id: u64,
        op: super::topics::TopicOp,
    },
}

impl Core {
    /// The next map for a change: the edit, then placement. `None`: nothing would change.
    pub(super) fn build(&mut self, change: &Change) -> Result<Option<(ClusterMap, Moves)>, String> {
        let mut m = (*self.coord.committed().map).clone();
        let existing = |m: &ClusterMap, id: NodeId| match m.node(id) {
            Some(n) if n.state != NodeState::Removed => Ok(n.state),
            _ => Err(format!("node {id} is not in the map")),
        };
        let mut bounded = false;
        match change {
            Change::Add(node) => {
                if existing(&m, node.id).is_ok() {
                    return Err(format!("node {} is already in the map", node.id));
                }
                if node.weight > WEIGHT_MAX {
                    return Err(format!("weight {} exceeds {WEIGHT_MAX}", node.weight));
                }
                m.upsert_node(node.clone());
            }
            Change::Remove(id) => {
                existing(&m, *id)?;
                m.node_mut(*id).expect("exists").state = NodeState::Removed;
                self.load.forget(*id);
                self.known_partitions.remove(id);
            }
            Change::Drain(id) => {
                if existing(&m, *id)? == NodeState::Joining {
                    return Err(format!("node {id} is joining; remove it instead"));
                }
                m.node_mut(*id).expect("exists").state = NodeState::Draining;
            }
            Change::SetWeight(id, w) => {
                existing(&m, *id)?;
                if *w > WEIGHT_MAX {
                    return Err(format!("weight {w} exceeds {WEIGHT_MAX}"));
                }
                m.node_mut(*id).expect("exists").weight = *w;
            }
            Change::Rebalance => {
                self.load.update_factors(&m);
                bounded = true;
            }
            Change::Place | Change::Topic { .. } => {}
            Change::SetConnWeight {
                node,
                shard,
                weight,
            } => set_conn_weight(&mut m, *node, *shard, *weight)?,
            Change::Activate(id) => {
                if existing(&m, *id)? != NodeState::Joining {
                    return Ok(None);
                }
                m.node_mut(*id).expect("exists").state = NodeState::Active;
            }
            Change::Join(node) => {
                if node.weight > WEIGHT_MAX {
                    return Err(format!("weight {} exceeds {WEIGHT_MAX}", node.weight));
                }
                match m.node_mut(node.id) {
                    // Known: the operator's weight and state stand (a drained node stays
                    // draining); the node's own facts are brought up to date.
                    Some(n) if n.state != NodeState::Removed => {
                        n.resp_addr = node.resp_addr.clone();
                        n.kafka_addr = node.kafka_addr.clone();
                        n.shard_endpoints = node.shard_endpoints.clone();
                        n.shards = node.shards;
                        if n.state == NodeState::Joining {
                            n.state = NodeState::Active;
                        }
                    }
                    Some(_) => return Err(format!("node {} was removed", node.id)),
                    None => m.upsert_node(node.clone()),
                }
            }
        }
        // Every change carries the connection weights of the current load factors.
        placement::derive_conn_weights(&mut m, &self.load);
        // A change that would only place partitions the nodes reported is not made by
        // itself (a node re-registering changes nothing); a real change places them too.
        let own: Vec<TopicPartition> = m.partitions.keys().cloned().collect();
        let mut without = m.clone();
        placement::place(&mut without, &self.load, &own, bounded);
        without.epoch = self.epoch();
        if without == *self.coord.committed().map {
            return Ok(None);
        }
        // The partitions the map lists, and those the nodes report holding.
        let parts: Vec<TopicPartition> = m
            .partitions
            .keys()
            .chain(self.known_partitions.values().flatten())
            .cloned()
            .chain(m.topic_partitions())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .take(PARTITIONS_MAX)
            .collect();
        let moves = placement::place(&mut m, &self.load, &parts, bounded);
        m.validate().map_err(|e| e.to_string())?;
        m.epoch = self.epoch();
        if m == *self.coord.committed().map {
            return Ok(None);
        }
        Ok(Some((m, moves)))
    }
}

/// The edit of `set-weight --node N --shard S W|auto`: pins (or unpins) one shard's
/// connection weight in `m`. Refused with the reason, changing nothing, when the node or
/// shard does not exist or the weight is over its bound.
fn set_conn_weight(
    m: &mut ClusterMap,
    node: NodeId,
    shard: u16,
    weight: Option<u32>,
) -> Result<(), String> {
    let shards = match m.node(node) {
        Some(n) if n.state != NodeState::Removed => n.shards,
        _ => return Err(format!("node {node} is not in the map")),
    };
    if shard >= shards {
        return Err(format!(
            "node {node} has {shards} shards (0..={}): shard {shard} is out of range",
            shards - 1
        ));
    }
    if let Some(w) = weight.filter(|&w| w > CONN_WEIGHT_MAX) {
        return Err(format!(
            "connection weight {w} exceeds its bound of {CONN_WEIGHT_MAX}"
        ));
    }
    let weights = m.conn_weights_of(node);
    let entry = m.conn_weights.entry(node).or_insert_with(|| ConnWeights {
        weights,
        pinned: Vec::new(),
    });
    entry.pin(shard, weight);
    if entry.weights.iter().all(|&w| w == 0) {
        return Err(format!(
            "node {node}: at least one shard must keep a connection weight above 0"
        ));
    }
    Ok(())
}

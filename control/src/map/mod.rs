//! The cluster map: which nodes exist, and which (node, shard) owns each of the 16384 cache
//! slots and each log partition, at one epoch.
//!
//! Lifecycle: the control plane builds a candidate map (placement), commits it by two-phase
//! commit under a fresh epoch (`twopc/`), and from then on the map is immutable; nodes serve
//! exactly one committed map at a time.
//!
//! Invariants, checked by [`ClusterMap::validate`] and therefore on every decode: nodes are
//! sorted by id without duplicates; every owner names a node that exists, is not removed, and
//! has that shard; every bound of `limits.rs` holds; per-shard connection weights name
//! serving nodes and fit their shard counts (`conn.rs`).
//!
//! Two forms, both versioned and checksummed with CRC-32C over the byte form:
//! - bytes (`encode`/`decode`): compact, slots as runs of one owner;
//! - JSON (serde, used on the wire and by `map --json`): slots as inclusive ranges, as
//!   CLUSTER SLOTS lists them, and a `checksum` field that decoding recomputes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::limits::{
    ADDR_BYTES_MAX, NODES_MAX, PARTITIONS_MAX, SHARDS_PER_NODE_MAX, SLOTS, TOPIC_BYTES_MAX,
    WEIGHT_MAX,
};
use crate::limits::{TOPICS_MAX, TOPIC_CONFIGS_MAX, TOPIC_CONFIG_BYTES_MAX, TOPIC_PARTITIONS_MAX};

pub type NodeId = u32;
pub type Epoch = u64;

/// The byte form's magic number and version.
const MAGIC: &[u8; 4] = b"PCMP";

/// A key's slot as Redis Cluster (and a pinion node) computes it: CRC-16/XMODEM of the
/// key's hash tag (the first non-empty `{...}`, else the whole key), modulo [`SLOTS`].
pub fn key_slot(key: &[u8]) -> u16 {
    let tag = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let len = rest.iter().position(|&b| b == b'}')?;
            (len > 0).then(|| &rest[..len])
        })
        .unwrap_or(key);
    let crc = tag.iter().fold(0u16, |mut crc, &b| {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    });
    crc % SLOTS as u16
}
pub const FORMAT_VERSION: u16 = 1;

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    #[error("map is truncated")]
    Truncated,
    #[error("not a cluster map (bad magic)")]
    BadMagic,
    #[error("map format version {0} is not supported (this build reads {FORMAT_VERSION})")]
    Version(u16),
    #[error("map checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("{what} exceeds its bound of {max}")]
    Bound { what: &'static str, max: usize },
    #[error("nodes are not sorted by id, or node {0} appears twice")]
    NodeOrder(NodeId),
    #[error("node {node}: {why}")]
    BadNode { node: NodeId, why: &'static str },
    #[error("{what} is owned by {owner}, which is not a serving node with that shard")]
    BadOwner { what: String, owner: Owner },
    #[error("slot range {0}..={1} is not within 0..16384 or overlaps another")]
    BadSlots(u32, u32),
    #[error("partition {0} appears twice")]
    DuplicatePartition(TopicPartition),
    #[error("invalid map text: {0}")]
    Text(&'static str),
    #[error("map is followed by {0} unexpected bytes")]
    Trailing(usize),
    #[error("topic {0}: {1}")]
    BadTopic(String, &'static str),
    #[error("map section {0} is not known to this build")]
    UnknownSection(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Added by the operator; owns nothing until it registers and is made active.
    Joining,
    /// Serving and owning its share.
    Active,
    /// Still serving, but its weight counts as zero so placement moves everything away.
    Draining,
    /// Gone; kept so its id is never reused by accident. Owns nothing, votes on nothing.
    Removed,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Joining => "joining",
            NodeState::Active => "active",
            NodeState::Draining => "draining",
            NodeState::Removed => "removed",
        }
    }

    fn code(self) -> u8 {
        match self {
            NodeState::Joining => 0,
            NodeState::Active => 1,
            NodeState::Draining => 2,
            NodeState::Removed => 3,
        }
    }

    fn from_code(c: u8) -> Option<NodeState> {
        Some(match c {
            0 => NodeState::Joining,
            1 => NodeState::Active,
            2 => NodeState::Draining,
            3 => NodeState::Removed,
            _ => return None,
        })
    }

    /// Whether a node in this state may own slots and partitions.
    pub fn may_own(self) -> bool {
        matches!(self, NodeState::Active | NodeState::Draining)
    }

    /// Whether a node in this state votes on map changes (it serves, so it must agree).
    pub fn votes(self) -> bool {
        matches!(self, NodeState::Active | NodeState::Draining)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: NodeId,
    /// Where RESP clients connect (`host:port`).
    pub resp_addr: String,
    /// Where Kafka clients connect.
    pub kafka_addr: String,
    /// One address per shard when shards listen on their own ports; empty otherwise.
    #[serde(default)]
    pub shard_endpoints: Vec<String>,
    pub shards: u16,
    /// The operator's weight; placement multiplies it by shards and the load factor.
    pub weight: u32,
    pub state: NodeState,
}

/// A (node, shard) pair: who serves a slot or a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    pub node: NodeId,
    pub shard: u16,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {} shard {}", self.node, self.shard)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A topic the cluster created (CreateTopics through the control plane): its partition
/// count and the configs it set, as given (the names and values CreateTopics accepts;
/// nodes check them before asking). Its partitions' owners are in `partitions`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub partitions: u32,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// The map. Immutable once committed; the control plane builds the next one as a copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "MapJson", try_from = "MapJson")]
pub struct ClusterMap {
    pub epoch: Epoch,
    /// Sorted by id, no duplicates.
    pub nodes: Vec<Node>,
    /// Exactly [`SLOTS`] entries; `None` while no node may own it.
    slots: Vec<Option<Owner>>,
    pub partitions: BTreeMap<TopicPartition, Owner>,
    /// Per-shard connection weights of the nodes that do not weigh their shards equally
    /// (`conn.rs`).
    pub conn_weights: BTreeMap<NodeId, ConnWeights>,

    /// The cluster's topics (empty in a map of format 1 without the topic section).
    pub topics: BTreeMap<String, TopicSpec>,
}

impl Default for ClusterMap {
    fn default() -> Self {
        ClusterMap::empty()
    }
}

impl ClusterMap {
    /// Epoch 0: no nodes, nothing owned. Every cluster starts here.
    pub fn empty() -> ClusterMap {
        ClusterMap {
            epoch: 0,
            nodes: Vec::new(),
            slots: vec![None; SLOTS],
            partitions: BTreeMap::new(),
            conn_weights: BTreeMap::new(),

            topics: BTreeMap::new(),
        }
    }

    pub fn slots(&self) -> &[Option<Owner>] {
        &self.slots
    }

    pub fn slot(&self, slot: usize) -> Option<Owner> {
        self.slots.get(slot).copied().flatten()
    }

    /// Sets one slot's owner (panics on a slot past 16383: callers iterate `0..SLOTS`).
    pub fn set_slot(&mut self, slot: usize, owner: Option<Owner>) {
        self.slots[slot] = owner;
    }

    /// Sets the owner of a range of slots (panics past 16383, as `set_slot`).
    pub fn set_slots(&mut self, slots: std::ops::Range<usize>, owner: Option<Owner>) {
        self.slots[slots].fill(owner);
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes
            .binary_search_by_key(&id, |n| n.id)
            .ok()
            .map(|i| &self.nodes[i])
    }

    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        match self.nodes.binary_search_by_key(&id, |n| n.id) {
            Ok(i) => Some(&mut self.nodes[i]),
            Err(_) => None,
        }
    }

    /// Inserts a node or replaces the one with its id, keeping the order by id.
    pub fn upsert_node(&mut self, node: Node) {
        match self.nodes.binary_search_by_key(&node.id, |n| n.id) {
            Ok(i) => self.nodes[i] = node,
            Err(i) => self.nodes.insert(i, node),
        }
    }

    /// The nodes that vote on a change to this map.
    pub fn voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.iter().filter(|n| n.state.votes()).map(|n| n.id)
    }

    /// Slots owned per node, in node order (removed nodes included, with 0).
    pub fn slot_counts(&self) -> BTreeMap<NodeId, usize> {
        let mut counts: BTreeMap<NodeId, usize> = self.nodes.iter().map(|n| (n.id, 0)).collect();
        for owner in self.slots.iter().flatten() {
            *counts.entry(owner.node).or_default() += 1;
        }
        counts
    }

    /// Who serves a log partition: the map's owner for it, else the owner of the slot of
    /// `"<topic>-<partition>"` (the rule nodes use for a partition the map does not list).
    pub fn partition_owner(&self, tp: &TopicPartition) -> Option<Owner> {
        self.partitions
            .get(tp)
            .copied()
            .or_else(|| self.slot(usize::from(key_slot(tp.to_string().as_bytes()))))
    }

    /// Partitions owned per node.
    pub fn partition_counts(&self) -> BTreeMap<NodeId, usize> {
        let mut counts: BTreeMap<NodeId, usize> = self.nodes.iter().map(|n| (n.id, 0)).collect();
        for owner in self.partitions.values() {
            *counts.entry(owner.node).or_default() += 1;
        }
        counts
    }

    /// Checks every invariant of the module header.
    pub fn validate(&self) -> Result<(), MapError> {
        if self.nodes.len() > NODES_MAX {
            return Err(MapError::Bound {
                what: "node count",
                max: NODES_MAX,
            });
        }
        if self.partitions.len() > PARTITIONS_MAX {
            return Err(MapError::Bound {
                what: "partition count",
                max: PARTITIONS_MAX,
            });
        }
        if self.slots.len() != SLOTS {
            return Err(MapError::Bound {
                what: "slot count",
                max: SLOTS,
            });
        }
        for w in self.nodes.windows(2) {
            if w[0].id >= w[1].id {
                return Err(MapError::NodeOrder(w[1].id));
            }
        }
        for n in &self.nodes {
            let bad = |why| MapError::BadNode { node: n.id, why };
            if n.shards == 0 || n.shards > SHARDS_PER_NODE_MAX {
                return Err(bad("shard count must be 1..=1024"));
            }
            if n.weight > WEIGHT_MAX {
                return Err(bad("weight exceeds 1000000"));
            }
            if !n.shard_endpoints.is_empty() && n.shard_endpoints.len() != usize::from(n.shards) {
                return Err(bad("shard endpoints must be none or one per shard"));
            }
            let addrs = [&n.resp_addr, &n.kafka_addr]
                .into_iter()
                .chain(n.shard_endpoints.iter());
            for a in addrs {
                if a.len() > ADDR_BYTES_MAX {
                    return Err(bad("an address exceeds 255 bytes"));
                }
            }
        }
        let serving = |o: &Owner| {
            self.node(o.node)
                .is_some_and(|n| n.state.may_own() && o.shard < n.shards)
        };
        // Slots come in long runs of one owner: check each run's owner once.
        let mut checked: Option<Owner> = None;
        for (slot, owner) in self.slots.iter().enumerate() {
            if let Some(o) = owner {
                if checked == Some(*o) {
                    continue;
                }
                checked = Some(*o);
                if !serving(o) {
                    return Err(MapError::BadOwner {
                        what: format!("slot {slot}"),
                        owner: *o,
                    });
                }
            }
        }
        for (tp, o) in &self.partitions {
            if tp.topic.is_empty() || tp.topic.len() > TOPIC_BYTES_MAX {
                return Err(MapError::Bound {
                    what: "topic name length",
                    max: TOPIC_BYTES_MAX,
                });
            }
            if !serving(o) {
                return Err(MapError::BadOwner {
                    what: format!("partition {tp}"),
                    owner: *o,
                });
            }
        }
        self.validate_conn_weights()?;

        self.validate_topics()
    }

    /// The topic section's bounds: names as Kafka allows them, partition counts, configs.
    fn validate_topics(&self) -> Result<(), MapError> {
        if self.topics.len() > TOPICS_MAX {
            return Err(MapError::Bound {
                what: "topic count",
                max: TOPICS_MAX,
            });
        }
        let mut total = 0usize;
        for (name, t) in &self.topics {
            let bad = |why| MapError::BadTopic(name.clone(), why);
            if name.is_empty() || name.len() > TOPIC_BYTES_MAX {
                return Err(bad("name must be 1..=249 bytes"));
            }
            if t.partitions == 0 || t.partitions > TOPIC_PARTITIONS_MAX {
                return Err(bad("partition count must be 1..=100000"));
            }
            if t.configs.len() > TOPIC_CONFIGS_MAX {
                return Err(bad("too many configs"));
            }
            if t.configs.iter().any(|(k, v)| {
                k.is_empty() || k.len() > TOPIC_CONFIG_BYTES_MAX || v.len() > TOPIC_CONFIG_BYTES_MAX
            }) {
                return Err(bad("a config name or value exceeds 4096 bytes"));
            }
            total += t.partitions as usize;
        }
        if total > PARTITIONS_MAX {
            return Err(MapError::Bound {
                what: "partition count",
                max: PARTITIONS_MAX,
            });
        }
        Ok(())
    }

    /// Every partition of the map's topics, in order.
    pub fn topic_partitions(&self) -> impl Iterator<Item = TopicPartition> + '_ {
        self.topics.iter().flat_map(|(name, t)| {
            (0..t.partitions).map(move |partition| TopicPartition {
                topic: name.clone(),
                partition,
            })
        })
    }

    /// Slots as runs of one owner: (first slot, count, owner). Unowned slots are gaps.
    pub fn slot_runs(&self) -> Vec<(u16, u16, Owner)> {
        let mut runs: Vec<(u16, u16, Owner)> = Vec::new();
        for (slot, owner) in self.slots.iter().enumerate() {
            let Some(o) = owner else { continue };
            match runs.last_mut() {
                Some((start, count, prev))
                    if prev == o && usize::from(*start) + usize::from(*count) == slot =>
                {
                    *count += 1
                }
                // Slots are < 16384, so they fit in u16.
                _ => runs.push((slot as u16, 1, *o)),
            }
        }
        runs
    }

    /// CRC-32C of the byte form: the checksum the JSON form carries.
    pub fn checksum(&self) -> u32 {
        let b = self.encode();
        u32::from_be_bytes([
            b[b.len() - 4],
            b[b.len() - 3],
            b[b.len() - 2],
            b[b.len() - 1],
        ])
    }

    /// SHA-256 of the byte form: names a map in 2PC messages and in the checker.
    pub fn digest(&self) -> MapDigest {
        MapDigest(Sha256::digest(self.encode()).into())
    }
}

/// A map's SHA-256: two maps with one digest are the same map.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapDigest(pub [u8; 32]);

impl fmt::Debug for MapDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for MapDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for MapDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for MapDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(serde::de::Error::custom("a digest is 64 hex digits"));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(serde::de::Error::custom)?;
            out[i] = u8::from_str_radix(hex, 16).map_err(serde::de::Error::custom)?;
        }
        Ok(MapDigest(out))
    }
}

mod codec;
mod conn;
mod json;

pub use conn::ConnWeights;

use json::MapJson;

#[cfg(test)]
mod tests;

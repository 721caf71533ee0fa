//! The cluster map: which nodes exist, and which (node, shard) owns each of the 16384 cache
//! slots and each log partition, at one epoch.
//!
//! Lifecycle: the control plane builds a candidate map (placement), commits it by two-phase
//! commit under a fresh epoch (`twopc/`), and from then on the map is immutable; nodes serve
//! exactly one committed map at a time.
//!
//! Invariants, checked by [`ClusterMap::validate`] and therefore on every decode: nodes are
//! sorted by id without duplicates; every owner names a node that exists, is not removed, and
//! has that shard; every bound of `limits.rs` holds.
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
        Ok(())
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

    /// The compact byte form, checksum last.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.nodes.len() * 64 + self.partitions.len() * 32);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        b.extend_from_slice(&self.epoch.to_be_bytes());
        b.extend_from_slice(&(self.nodes.len() as u32).to_be_bytes());
        for n in &self.nodes {
            b.extend_from_slice(&n.id.to_be_bytes());
            b.push(n.state.code());
            b.extend_from_slice(&n.shards.to_be_bytes());
            b.extend_from_slice(&n.weight.to_be_bytes());
            put_str(&mut b, &n.resp_addr);
            put_str(&mut b, &n.kafka_addr);
            b.extend_from_slice(&(n.shard_endpoints.len() as u16).to_be_bytes());
            for e in &n.shard_endpoints {
                put_str(&mut b, e);
            }
        }
        let runs = self.slot_runs();
        b.extend_from_slice(&(runs.len() as u32).to_be_bytes());
        for (start, count, o) in runs {
            b.extend_from_slice(&start.to_be_bytes());
            b.extend_from_slice(&count.to_be_bytes());
            b.extend_from_slice(&o.node.to_be_bytes());
            b.extend_from_slice(&o.shard.to_be_bytes());
        }
        b.extend_from_slice(&(self.partitions.len() as u32).to_be_bytes());
        for (tp, o) in &self.partitions {
            put_str(&mut b, &tp.topic);
            b.extend_from_slice(&tp.partition.to_be_bytes());
            b.extend_from_slice(&o.node.to_be_bytes());
            b.extend_from_slice(&o.shard.to_be_bytes());
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }

    /// Decodes and validates the byte form. The whole input must be one map.
    pub fn decode(buf: &[u8]) -> Result<ClusterMap, MapError> {
        if buf.len() < MAGIC.len() + 2 + 4 {
            return Err(MapError::Truncated);
        }
        if &buf[..4] != MAGIC {
            return Err(MapError::BadMagic);
        }
        let version = u16::from_be_bytes([buf[4], buf[5]]);
        if version != FORMAT_VERSION {
            return Err(MapError::Version(version));
        }
        let (body, tail) = buf.split_at(buf.len() - 4);
        let stored = u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let computed = crc32c::crc32c(body);
        if stored != computed {
            return Err(MapError::Checksum { stored, computed });
        }
        let mut r = Reader { buf: body, pos: 6 };
        let mut map = ClusterMap::empty();
        map.epoch = r.u64()?;
        let nodes = r.count(NODES_MAX, "node count")?;
        for _ in 0..nodes {
            let id = r.u32()?;
            let state = NodeState::from_code(r.u8()?).ok_or(MapError::BadNode {
                node: id,
                why: "unknown state",
            })?;
            let shards = r.u16()?;
            let weight = r.u32()?;
            let resp_addr = r.str(ADDR_BYTES_MAX, "address length")?;
            let kafka_addr = r.str(ADDR_BYTES_MAX, "address length")?;
            let endpoints = r.u16()?;
            let mut shard_endpoints = Vec::with_capacity(usize::from(endpoints.min(shards)));
            for _ in 0..endpoints {
                shard_endpoints.push(r.str(ADDR_BYTES_MAX, "address length")?);
            }
            map.nodes.push(Node {
                id,
                resp_addr,
                kafka_addr,
                shard_endpoints,
                shards,
                weight,
                state,
            });
        }
        let runs = r.count(SLOTS, "slot run count")?;
        for _ in 0..runs {
            let start = u32::from(r.u16()?);
            let count = u32::from(r.u16()?);
            let owner = Owner {
                node: r.u32()?,
                shard: r.u16()?,
            };
            map.fill_slots(start, count, owner)?;
        }
        let parts = r.count(PARTITIONS_MAX, "partition count")?;
        for _ in 0..parts {
            let topic = r.str(TOPIC_BYTES_MAX, "topic name length")?;
            let partition = r.u32()?;
            let owner = Owner {
                node: r.u32()?,
                shard: r.u16()?,
            };
            let tp = TopicPartition { topic, partition };
            if map.partitions.insert(tp.clone(), owner).is_some() {
                return Err(MapError::DuplicatePartition(tp));
            }
        }
        if r.pos != body.len() {
            return Err(MapError::Trailing(body.len() - r.pos));
        }
        map.validate()?;
        Ok(map)
    }

    fn fill_slots(&mut self, start: u32, count: u32, owner: Owner) -> Result<(), MapError> {
        let end = start + count;
        if count == 0 || end as usize > SLOTS {
            return Err(MapError::BadSlots(start, end.saturating_sub(1)));
        }
        for s in start..end {
            let slot = &mut self.slots[s as usize];
            if slot.is_some() {
                return Err(MapError::BadSlots(start, end - 1));
            }
            *slot = Some(owner);
        }
        Ok(())
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

fn put_str(b: &mut Vec<u8>, s: &str) {
    // Lengths are bounded (<= 255) by `validate` before any map is encoded for others.
    b.extend_from_slice(&(s.len() as u16).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], MapError> {
        let end = self.pos.checked_add(n).ok_or(MapError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(MapError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, MapError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, MapError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, MapError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, MapError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
    fn count(&mut self, max: usize, what: &'static str) -> Result<usize, MapError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(MapError::Bound { what, max });
        }
        Ok(n)
    }
    fn str(&mut self, max: usize, what: &'static str) -> Result<String, MapError> {
        let n = usize::from(self.u16()?);
        if n > max {
            return Err(MapError::Bound { what, max });
        }
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| MapError::Text("a string is not UTF-8"))
    }
}

/// The JSON form: what `map --json` prints and what control messages carry.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapJson {
    version: u16,
    epoch: Epoch,
    nodes: Vec<Node>,
    slots: Vec<SlotRange>,
    partitions: Vec<PartitionJson>,
    /// CRC-32C of the byte form, 8 hex digits.
    checksum: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotRange {
    start: u32,
    /// Inclusive, as CLUSTER SLOTS writes it.
    end: u32,
    node: NodeId,
    shard: u16,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionJson {
    topic: String,
    partition: u32,
    node: NodeId,
    shard: u16,
}

impl From<ClusterMap> for MapJson {
    fn from(m: ClusterMap) -> MapJson {
        let checksum = format!("{:08x}", m.checksum());
        let slots = m
            .slot_runs()
            .into_iter()
            .map(|(start, count, o)| SlotRange {
                start: u32::from(start),
                end: u32::from(start) + u32::from(count) - 1,
                node: o.node,
                shard: o.shard,
            })
            .collect();
        let partitions = m
            .partitions
            .iter()
            .map(|(tp, o)| PartitionJson {
                topic: tp.topic.clone(),
                partition: tp.partition,
                node: o.node,
                shard: o.shard,
            })
            .collect();
        MapJson {
            version: FORMAT_VERSION,
            epoch: m.epoch,
            nodes: m.nodes,
            slots,
            partitions,
            checksum,
        }
    }
}

impl TryFrom<MapJson> for ClusterMap {
    type Error = MapError;

    fn try_from(j: MapJson) -> Result<ClusterMap, MapError> {
        if j.version != FORMAT_VERSION {
            return Err(MapError::Version(j.version));
        }
        if j.nodes.len() > NODES_MAX {
            return Err(MapError::Bound {
                what: "node count",
                max: NODES_MAX,
            });
        }
        let mut map = ClusterMap::empty();
        map.epoch = j.epoch;
        map.nodes = j.nodes;
        for r in j.slots {
            if r.end < r.start {
                return Err(MapError::BadSlots(r.start, r.end));
            }
            let owner = Owner {
                node: r.node,
                shard: r.shard,
            };
            map.fill_slots(r.start, r.end - r.start + 1, owner)?;
        }
        if j.partitions.len() > PARTITIONS_MAX {
            return Err(MapError::Bound {
                what: "partition count",
                max: PARTITIONS_MAX,
            });
        }
        for p in j.partitions {
            let tp = TopicPartition {
                topic: p.topic,
                partition: p.partition,
            };
            let owner = Owner {
                node: p.node,
                shard: p.shard,
            };
            if map.partitions.insert(tp.clone(), owner).is_some() {
                return Err(MapError::DuplicatePartition(tp));
            }
        }
        map.validate()?;
        let stored = u32::from_str_radix(&j.checksum, 16)
            .map_err(|_| MapError::Text("checksum is not 8 hex digits"))?;
        let computed = map.checksum();
        if stored != computed {
            return Err(MapError::Checksum { stored, computed });
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slot_is_redis_clusters() {
        // Values from Redis Cluster's specification and `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"123456789"), 0x31C3 % SLOTS as u16);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    }

    pub(crate) fn sample() -> ClusterMap {
        let mut m = ClusterMap::empty();
        m.epoch = 7;
        for id in [1, 2, 3] {
            m.upsert_node(Node {
                id,
                resp_addr: format!("127.0.0.1:{}", 6370 + id),
                kafka_addr: format!("127.0.0.1:{}", 9090 + id),
                shard_endpoints: if id == 2 {
                    vec!["127.0.0.1:7000".into(), "127.0.0.1:7001".into()]
                } else {
                    vec![]
                },
                shards: 2,
                weight: id,
                state: if id == 3 {
                    NodeState::Draining
                } else {
                    NodeState::Active
                },
            });
        }
        for s in 0..SLOTS {
            if s % 1000 == 999 {
                continue; // a few unowned slots
            }
            let node = (s * 3 / SLOTS) as u32 + 1;
            m.set_slot(
                s,
                Some(Owner {
                    node,
                    shard: ((s * 6 / SLOTS) % 2) as u16,
                }),
            );
        }
        for p in 0..12 {
            m.partitions.insert(
                TopicPartition {
                    topic: "events".into(),
                    partition: p,
                },
                Owner {
                    node: p % 3 + 1,
                    shard: 0,
                },
            );
        }
        m
    }

    #[test]
    fn bytes_round_trip() {
        let m = sample();
        m.validate().unwrap();
        let b = m.encode();
        assert_eq!(ClusterMap::decode(&b).unwrap(), m);
        // Empty map too.
        let e = ClusterMap::empty();
        assert_eq!(ClusterMap::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn contiguous_slots_are_compact() {
        let mut m = ClusterMap::empty();
        m.upsert_node(Node {
            id: 1,
            resp_addr: "a:1".into(),
            kafka_addr: "a:2".into(),
            shard_endpoints: vec![],
            shards: 1,
            weight: 1,
            state: NodeState::Active,
        });
        for s in 0..SLOTS {
            m.set_slot(s, Some(Owner { node: 1, shard: 0 }));
        }
        assert_eq!(m.slot_runs().len(), 1);
        assert!(m.encode().len() < 80, "{}", m.encode().len());
    }

    #[test]
    fn every_flipped_bit_and_truncation_is_refused() {
        let b = sample().encode();
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(ClusterMap::decode(&c).is_err(), "bit flip at {i} accepted");
        }
        for n in 0..b.len() {
            assert!(ClusterMap::decode(&b[..n]).is_err(), "truncation at {n}");
        }
    }

    #[test]
    fn json_round_trip_and_checksum() {
        let m = sample();
        let text = serde_json::to_string(&m).unwrap();
        let back: ClusterMap = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["epoch"], 7);
        assert_eq!(v["slots"][0]["start"], 0);
        // A changed owner with the old checksum is refused.
        let tampered = text.replacen("\"node\":1,\"shard\":0", "\"node\":2,\"shard\":0", 1);
        assert_ne!(tampered, text);
        assert!(serde_json::from_str::<ClusterMap>(&tampered).is_err());
    }

    #[test]
    fn invalid_maps_are_refused() {
        let mut m = sample();
        m.node_mut(3).unwrap().state = NodeState::Removed;
        // Node 3 still owns slots: a removed node may not.
        assert!(matches!(m.validate(), Err(MapError::BadOwner { .. })));

        let mut m = sample();
        m.set_slot(5, Some(Owner { node: 1, shard: 2 }));
        assert!(matches!(m.validate(), Err(MapError::BadOwner { .. })));

        let mut m = sample();
        m.nodes.swap(0, 1);
        assert_eq!(m.validate(), Err(MapError::NodeOrder(1)));

        let mut m = sample();
        m.node_mut(1).unwrap().shard_endpoints = vec!["x:1".into()];
        assert!(matches!(
            m.validate(),
            Err(MapError::BadNode { node: 1, .. })
        ));
    }

    #[test]
    fn counts_and_voters() {
        let m = sample();
        let c = m.slot_counts();
        assert_eq!(c.values().sum::<usize>(), SLOTS - 16);
        assert_eq!(m.partition_counts()[&1], 4);
        assert_eq!(m.voters().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_ne!(m.digest(), ClusterMap::empty().digest());
    }
}

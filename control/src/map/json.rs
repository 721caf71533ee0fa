//! The JSON form of a map: what `map --json` prints and what control messages carry.

use super::*;

/// The JSON form: what `map --json` prints and what control messages carry.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MapJson {
    version: u16,
    epoch: Epoch,
    nodes: Vec<Node>,
    slots: Vec<SlotRange>,
    partitions: Vec<PartitionJson>,
    /// Connection weights (`conn.rs`), for the nodes that have an entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    conn_weights: Vec<ConnWeightsJson>,

    /// The cluster's topics; absent in a map without any (and in one written before them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    topics: BTreeMap<String, TopicSpec>,
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

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnWeightsJson {
    node: NodeId,
    weights: Vec<u32>,
    #[serde(default)]
    pinned: Vec<u16>,
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
        let conn_weights = m
            .conn_weights
            .iter()
            .map(|(&node, c)| ConnWeightsJson {
                node,
                weights: c.weights.clone(),
                pinned: c.pinned.clone(),
            })
            .collect();
        MapJson {
            version: FORMAT_VERSION,
            epoch: m.epoch,
            nodes: m.nodes,
            slots,
            partitions,
            conn_weights,

            topics: m.topics,
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
        if j.conn_weights.len() > NODES_MAX {
            return Err(MapError::Bound {
                what: "connection weight entries",
                max: NODES_MAX,
            });
        }
        for c in j.conn_weights {
            let w = ConnWeights {
                weights: c.weights,
                pinned: c.pinned,
            };
            if map.conn_weights.insert(c.node, w).is_some() {
                return Err(MapError::BadNode {
                    node: c.node,
                    why: "has two connection weight entries",
                });
            }
        }

        if j.topics.len() > TOPICS_MAX {
            return Err(MapError::Bound {
                what: "topic count",
                max: TOPICS_MAX,
            });
        }
        map.topics = j.topics;
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

//! Topic changes: CreateTopics, CreatePartitions and DeleteTopics that a node forwards
//! (`pinion --control`), each a map change committed by 2PC like any other.
//!
//! Owned by the core thread. A node checks a request first (names, counts, configs, its
//! `--max-partitions`) and sends `{type: "topic", id, change}`; the core queues it with the
//! other changes, builds the next map from the committed one (the topic section edited, the
//! new partitions placed by the same weighted rendezvous hashing as every partition, so a
//! later change moves only what must move), proposes it, and answers the node with
//! `{type: "topic_reply", id, error, message, epoch}` once the change is done: `error` is
//! Kafka's code (0 once committed, which is after every voter installed the map or the
//! ack wait ended). A topic change moves no data: its partitions are new (created empty by
//! every node when it installs the map) or gone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{OutMsg, Outbox};
use crate::limits::TOPIC_PARTITIONS_MAX;
use crate::map::{ClusterMap, Owner, TopicPartition, TopicSpec};
use crate::placement::{self, LoadTracker};

/// Kafka's error codes a topic change answers with.
pub const REQUEST_TIMED_OUT: i16 = 7;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const POLICY_VIOLATION: i16 = 44;

/// A topic change a node asks for.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum TopicOp {
    Create {
        name: String,
        partitions: u32,
        /// The configs the topic sets, as given (checked by the node).
        #[serde(default)]
        configs: BTreeMap<String, String>,
    },
    /// CreatePartitions: the topic's new partition count.
    AddPartitions {
        name: String,
        count: u32,
    },
    Delete {
        name: String,
    },
}

impl TopicOp {
    pub fn name(&self) -> &str {
        match self {
            TopicOp::Create { name, .. }
            | TopicOp::AddPartitions { name, .. }
            | TopicOp::Delete { name } => name,
        }
    }
}

/// Why a topic change is refused: Kafka's error code and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRefusal {
    pub code: i16,
    pub message: String,
}

fn refuse(code: i16, message: String) -> TopicRefusal {
    TopicRefusal { code, message }
}

/// Places the partitions of `name` (a topic of `map`) that have no owner in the map, by
/// weighted rendezvous hashing over the candidates; partitions it already places stay.
pub fn place_topic(map: &mut ClusterMap, load: &LoadTracker, name: &str) -> Result<(), String> {
    let Some(count) = map.topics.get(name).map(|t| t.partitions) else {
        return Ok(());
    };
    let cands = placement::candidates(map, load);
    if cands.is_empty() {
        return Err("no active node with a weight above zero may own partitions".into());
    }
    for partition in 0..count {
        let tp = TopicPartition {
            topic: name.to_string(),
            partition,
        };
        if map.partitions.contains_key(&tp) {
            continue;
        }
        let owner: Option<Owner> = placement::owner_of(placement::partition_key(&tp), &cands);
        if let Some(o) = owner {
            map.partitions.insert(tp, o);
        }
    }
    Ok(())
}

/// The next map for a topic change, from the committed `map`. `held`: whether some node
/// reports holding a topic of that name outside the map (created before it joined, or
/// standalone data): creating it again is refused as Kafka refuses an existing topic.
pub fn edit(
    map: &ClusterMap,
    load: &LoadTracker,
    op: &TopicOp,
    held: bool,
) -> Result<ClusterMap, TopicRefusal> {
    let mut m = map.clone();
    let name = op.name();
    match op {
        TopicOp::Create {
            partitions,
            configs,
            ..
        } => {
            if m.topics.contains_key(name) || held {
                return Err(refuse(
                    TOPIC_ALREADY_EXISTS,
                    format!("Topic '{name}' already exists."),
                ));
            }
            if *partitions == 0 || *partitions > TOPIC_PARTITIONS_MAX {
                return Err(refuse(
                    INVALID_PARTITIONS,
                    format!("Number of partitions must be 1..={TOPIC_PARTITIONS_MAX}."),
                ));
            }
            m.topics.insert(
                name.to_string(),
                TopicSpec {
                    partitions: *partitions,
                    configs: configs.clone(),
                },
            );
            // A partition left in the map from an earlier life of the name is placed anew.
            m.partitions.retain(|tp, _| tp.topic != name);
        }
        TopicOp::AddPartitions { count, .. } => {
            let Some(t) = m.topics.get_mut(name) else {
                return Err(refuse(
                    UNKNOWN_TOPIC_OR_PARTITION,
                    format!("Topic '{name}' does not exist in the cluster map."),
                ));
            };
            if *count <= t.partitions {
                return Err(refuse(
                    INVALID_PARTITIONS,
                    format!(
                        "Topic currently has {} partitions, which is higher than the requested {count}.",
                        t.partitions
                    ),
                ));
            }
            if *count > TOPIC_PARTITIONS_MAX {
                return Err(refuse(
                    INVALID_PARTITIONS,
                    format!("Number of partitions must be 1..={TOPIC_PARTITIONS_MAX}."),
                ));
            }
            t.partitions = *count;
        }
        TopicOp::Delete { .. } => {
            if m.topics.remove(name).is_none() {
                return Err(refuse(
                    UNKNOWN_TOPIC_OR_PARTITION,
                    format!("Topic '{name}' does not exist in the cluster map."),
                ));
            }
            m.partitions.retain(|tp, _| tp.topic != name);
        }
    }
    place_topic(&mut m, load, name).map_err(|e| refuse(REQUEST_TIMED_OUT, e))?;
    m.validate()
        .map_err(|e| refuse(POLICY_VIOLATION, e.to_string()))?;
    m.epoch = map.epoch;
    Ok(m)
}

/// Answers a node's topic request.
pub fn reply(out: &Outbox, id: u64, epoch: u64, r: Result<(), TopicRefusal>) {
    let (error, message) = match r {
        Ok(()) => (0, None),
        Err(e) => (e.code, Some(e.message)),
    };
    let v = json!({"type": "topic_reply", "id": id, "error": error, "message": message, "epoch": epoch});
    let payload = serde_json::to_vec(&v).expect("JSON values serialise");
    // A full outbox: the node times its request out (REQUEST_TIMED_OUT).
    let _ = out.try_send(OutMsg::Payload(payload));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::{Node, NodeState};

    fn cluster(nodes: u32) -> ClusterMap {
        let mut m = ClusterMap::empty();
        for id in 1..=nodes {
            m.upsert_node(Node {
                id,
                resp_addr: format!("127.0.0.1:{}", 7000 + id),
                kafka_addr: format!("127.0.0.1:{}", 9000 + id),
                shard_endpoints: vec![],
                shards: 2,
                weight: 1,
                state: NodeState::Active,
            });
        }
        m.epoch = 3;
        m
    }

    fn create(name: &str, partitions: u32) -> TopicOp {
        TopicOp::Create {
            name: name.into(),
            partitions,
            configs: BTreeMap::from([("cleanup.policy".into(), "compact".into())]),
        }
    }

    fn owners(m: &ClusterMap, name: &str) -> BTreeMap<u32, Owner> {
        m.partitions
            .iter()
            .filter(|(tp, _)| tp.topic == name)
            .map(|(tp, o)| (tp.partition, *o))
            .collect()
    }

    #[test]
    fn a_created_topic_is_placed_over_every_node() {
        let load = LoadTracker::default();
        let m = edit(&cluster(3), &load, &create("t", 120), false).unwrap();
        assert_eq!(m.topics["t"].partitions, 120);
        assert_eq!(m.topics["t"].configs["cleanup.policy"], "compact");
        let placed = owners(&m, "t");
        assert_eq!(placed.len(), 120);
        let counts = m.partition_counts();
        for id in 1..=3 {
            // Each of three equal nodes gets about a third (20..60 of 120).
            assert!((20..60).contains(&counts[&id]), "{counts:?}");
        }
        // The same request placed the same way (rendezvous is deterministic).
        assert_eq!(
            m,
            edit(&cluster(3), &load, &create("t", 120), false).unwrap()
        );
    }

    #[test]
    fn existing_topics_are_refused_and_unknown_ones_cannot_change() {
        let load = LoadTracker::default();
        let m = edit(&cluster(2), &load, &create("t", 4), false).unwrap();
        let again = edit(&m, &load, &create("t", 4), false).unwrap_err();
        assert_eq!(again.code, TOPIC_ALREADY_EXISTS);
        // A topic some node holds outside the map is refused too.
        let held = edit(&cluster(2), &load, &create("t", 4), true).unwrap_err();
        assert_eq!(held.code, TOPIC_ALREADY_EXISTS);
        let del = TopicOp::Delete { name: "u".into() };
        assert_eq!(
            edit(&m, &load, &del, false).unwrap_err().code,
            UNKNOWN_TOPIC_OR_PARTITION
        );
        let fewer = TopicOp::AddPartitions {
            name: "t".into(),
            count: 4,
        };
        assert_eq!(
            edit(&m, &load, &fewer, false).unwrap_err().code,
            INVALID_PARTITIONS
        );
        let zero = edit(&cluster(2), &load, &create("z", 0), false).unwrap_err();
        assert_eq!(zero.code, INVALID_PARTITIONS);
    }

    #[test]
    fn adding_partitions_keeps_the_old_owners_and_delete_drops_every_partition() {
        let load = LoadTracker::default();
        let m = edit(&cluster(3), &load, &create("t", 12), false).unwrap();
        let m = edit(&m, &load, &create("other", 3), false).unwrap();
        let before = owners(&m, "t");
        let more = TopicOp::AddPartitions {
            name: "t".into(),
            count: 16,
        };
        let m2 = edit(&m, &load, &more, false).unwrap();
        let after = owners(&m2, "t");
        assert_eq!(after.len(), 16);
        for (p, o) in &before {
            assert_eq!(after[p], *o, "partition {p} moved");
        }
        let m3 = edit(&m2, &load, &TopicOp::Delete { name: "t".into() }, false).unwrap();
        assert!(!m3.topics.contains_key("t"));
        assert!(owners(&m3, "t").is_empty());
        assert_eq!(owners(&m3, "other"), owners(&m, "other"));
        // The byte form carries it all.
        assert_eq!(ClusterMap::decode(&m2.encode()).unwrap(), m2);
    }

    #[test]
    fn a_new_node_takes_only_its_share_of_a_topic() {
        // The same rendezvous as a general change: adding a fourth node moves only the
        // partitions it wins, about a quarter.
        let load = LoadTracker::default();
        let m = edit(&cluster(3), &load, &create("t", 400), false).unwrap();
        let mut grown = m.clone();
        grown.upsert_node(Node {
            id: 4,
            resp_addr: "127.0.0.1:7004".into(),
            kafka_addr: "127.0.0.1:9004".into(),
            shard_endpoints: vec![],
            shards: 2,
            weight: 1,
            state: NodeState::Active,
        });
        let parts: Vec<TopicPartition> = grown.topic_partitions().collect();
        placement::place(&mut grown, &load, &parts, false);
        let moved: Vec<_> = owners(&m, "t")
            .into_iter()
            .filter(|(p, o)| owners(&grown, "t")[p] != *o)
            .collect();
        assert!(moved.iter().all(|(p, _)| owners(&grown, "t")[p].node == 4));
        assert!((60..140).contains(&moved.len()), "{}", moved.len());
    }

    #[test]
    fn requests_decode_from_the_nodes_json() {
        let v = json!({"op": "create", "name": "t", "partitions": 3,
                       "configs": {"cleanup.policy": "compact"}});
        let op: TopicOp = serde_json::from_value(v).unwrap();
        assert_eq!(op.name(), "t");
        let v = json!({"op": "add_partitions", "name": "t", "count": 5});
        assert!(matches!(
            serde_json::from_value::<TopicOp>(v).unwrap(),
            TopicOp::AddPartitions { count: 5, .. }
        ));
        let bad = json!({"op": "create", "name": "t", "partitions": 3, "x": 1});
        assert!(serde_json::from_value::<TopicOp>(bad).is_err());
    }
}

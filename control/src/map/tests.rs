use super::*;
use crate::limits::CONN_WEIGHT_MAX;

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

/// Every single flipped bit (one a byte) and every truncation of `bytes`, a map's encoding,
/// is refused.
fn assert_every_damage_refused(bytes: &[u8]) {
    for i in 0..bytes.len() {
        let mut c = bytes.to_vec();
        c[i] ^= 0x10;
        assert!(ClusterMap::decode(&c).is_err(), "bit flip at {i} accepted");
    }
    for n in 0..bytes.len() {
        assert!(
            ClusterMap::decode(&bytes[..n]).is_err(),
            "truncation at {n}"
        );
    }
}

#[test]
fn every_flipped_bit_and_truncation_is_refused() {
    assert_every_damage_refused(&sample().encode());
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

// Connection weights (`conn.rs`).

fn weighted() -> ClusterMap {
    let mut m = sample();
    m.conn_weights.insert(
        1,
        ConnWeights {
            weights: vec![3, 1],
            pinned: vec![0, 1],
        },
    );
    m.conn_weights.insert(
        2,
        ConnWeights {
            weights: vec![16, 0],
            pinned: vec![1],
        },
    );
    m
}

#[test]
fn conn_weights_round_trip_in_both_forms_and_a_map_without_them_is_unchanged() {
    let m = weighted();
    m.validate().unwrap();
    let b = m.encode();
    assert_eq!(ClusterMap::decode(&b).unwrap(), m);
    let text = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<ClusterMap>(&text).unwrap(), m);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["conn_weights"][0]["weights"], serde_json::json!([3, 1]));
    // Without entries the section (tag, length, body) is left out: the byte form is the
    // one from before connection weights (magic to partitions, then the CRC), and old
    // JSON decodes.
    let plain = sample();
    let pb = plain.encode();
    assert_eq!(
        b.len() - pb.len(),
        1 + 4 + 4 + (4 + 2 + 8 + 2 + 4) + (4 + 2 + 8 + 2 + 2)
    );
    assert_eq!(&b[..pb.len() - 4], &pb[..pb.len() - 4]);
    let ptext = serde_json::to_string(&plain).unwrap();
    assert!(!ptext.contains("conn_weights"));
    assert_eq!(ClusterMap::decode(&pb).unwrap().conn_weights.len(), 0);
    // What a node applies: its entry, else all equal; nothing for a node not in the map.
    assert_eq!(m.conn_weights_of(1), [3, 1]);
    assert_eq!(m.conn_weights_of(3), [1, 1]);
    assert!(m.conn_weights_of(9).is_empty());
}

#[test]
fn the_conn_weights_section_is_checked_like_the_rest() {
    assert_every_damage_refused(&weighted().encode());
}

#[test]
fn invalid_conn_weights_are_refused() {
    let bad = |f: &dyn Fn(&mut ClusterMap)| {
        let mut m = weighted();
        f(&mut m);
        let e = m.validate();
        assert!(matches!(e, Err(MapError::BadNode { .. })), "{e:?}");
    };
    // Not one per shard.
    bad(&|m| m.conn_weights.get_mut(&1).unwrap().weights.push(1));
    bad(&|m| m.conn_weights.get_mut(&1).unwrap().weights.clear());
    // Over the bound.
    bad(&|m| m.conn_weights.get_mut(&1).unwrap().weights[0] = CONN_WEIGHT_MAX + 1);
    // All zero.
    bad(&|m| m.conn_weights.get_mut(&1).unwrap().weights = vec![0, 0]);
    // A pinned shard out of range, or out of order.
    bad(&|m| m.conn_weights.get_mut(&2).unwrap().pinned = vec![2]);
    bad(&|m| m.conn_weights.get_mut(&1).unwrap().pinned = vec![1, 0]);
    // A node not in the map, or removed.
    bad(&|m| {
        m.conn_weights.insert(
            9,
            ConnWeights {
                weights: vec![1],
                pinned: vec![],
            },
        );
    });
    // At the bound is fine.
    let mut m = weighted();
    m.conn_weights.get_mut(&1).unwrap().weights[0] = CONN_WEIGHT_MAX;
    m.validate().unwrap();
}

fn with_topics() -> ClusterMap {
    let mut m = sample();
    let mut configs = BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert("retention.ms".to_string(), "60000".to_string());
    m.topics.insert(
        "events".into(),
        TopicSpec {
            partitions: 12,
            configs,
        },
    );
    m.topics.insert(
        "plain".into(),
        TopicSpec {
            partitions: 1,
            configs: BTreeMap::new(),
        },
    );
    m
}

#[test]
fn a_map_without_topics_has_the_format_1_bytes() {
    // Golden: the empty map as format 1 wrote it before the topic section existed.
    let mut golden = b"PCMP\x00\x01".to_vec();
    golden.extend_from_slice(&[0; 8]); // epoch
    golden.extend_from_slice(&[0; 12]); // nodes, slot runs, partitions
    let crc = crc32c::crc32c(&golden);
    golden.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(ClusterMap::empty().encode(), golden);
    assert_eq!(ClusterMap::decode(&golden).unwrap(), ClusterMap::empty());
    // A map with partitions but no topics carries no section either.
    let m = sample();
    assert!(!m.encode().contains(&SECTION_TOPICS_FOR_TESTS));
}

const SECTION_TOPICS_FOR_TESTS: u8 = b'T';

#[test]
fn topics_round_trip_in_both_forms() {
    let m = with_topics();
    m.validate().unwrap();
    let b = m.encode();
    let back = ClusterMap::decode(&b).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.topics["events"].configs["cleanup.policy"], "compact");
    assert_ne!(m.digest(), sample().digest());
    let text = serde_json::to_string(&m).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["topics"]["events"]["partitions"], 12);
    assert_eq!(serde_json::from_str::<ClusterMap>(&text).unwrap(), m);
    // The JSON of a map without topics has no `topics` field, and decodes without one.
    let plain = serde_json::to_string(&sample()).unwrap();
    assert!(!plain.contains("\"topics\""));
    assert_eq!(
        serde_json::from_str::<ClusterMap>(&plain).unwrap(),
        sample()
    );
    assert_eq!(
        m.topic_partitions().count(),
        13,
        "every partition of every topic"
    );
}

#[test]
fn a_damaged_topic_section_is_refused() {
    assert_every_damage_refused(&with_topics().encode());
    // An unknown section, with a good checksum, is refused rather than dropped.
    let plain = sample().encode();
    let mut c = plain[..plain.len() - 4].to_vec();
    c.extend_from_slice(&[b'Z', 0, 0, 0, 0]);
    let crc = crc32c::crc32c(&c);
    c.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(ClusterMap::decode(&c), Err(MapError::UnknownSection(b'Z')));
}

#[test]
fn topic_bounds_are_checked() {
    let mut m = with_topics();
    m.topics.get_mut("plain").unwrap().partitions = 0;
    assert!(matches!(m.validate(), Err(MapError::BadTopic(..))));
    let mut m = with_topics();
    m.topics.get_mut("plain").unwrap().partitions = crate::limits::TOPIC_PARTITIONS_MAX + 1;
    assert!(matches!(m.validate(), Err(MapError::BadTopic(..))));
    let mut m = with_topics();
    let long = "x".repeat(crate::limits::TOPIC_CONFIG_BYTES_MAX + 1);
    m.topics
        .get_mut("plain")
        .unwrap()
        .configs
        .insert("k".into(), long);
    assert!(matches!(m.validate(), Err(MapError::BadTopic(..))));
    let mut m = with_topics();
    m.topics.insert(String::new(), TopicSpec::default());
    assert!(m.validate().is_err());
}

#[test]
fn weights_and_topics_travel_together_in_their_order() {
    let mut m = weighted();
    m.topics = with_topics().topics;
    m.validate().unwrap();
    let b = m.encode();
    assert_eq!(ClusterMap::decode(&b).unwrap(), m);
    let text = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<ClusterMap>(&text).unwrap(), m);
    // The sections swapped (topics first), with a good checksum, are refused.
    let plain = sample().encode();
    let body = &b[plain.len() - 4..b.len() - 4];
    let wlen = 5 + u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    assert_eq!(body[0], b'W');
    assert_eq!(body[wlen], b'T');
    let mut c = plain[..plain.len() - 4].to_vec();
    c.extend_from_slice(&body[wlen..]);
    c.extend_from_slice(&body[..wlen]);
    let crc = crc32c::crc32c(&c);
    c.extend_from_slice(&crc.to_be_bytes());
    assert!(ClusterMap::decode(&c).is_err());
}

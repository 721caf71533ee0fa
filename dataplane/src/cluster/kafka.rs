//! The Kafka side of cluster mode (`--control`): every node of the view is a broker (its
//! map id, its Kafka address), a partition's leader is its owner node, a group's or
//! transactional id's coordinator is the node owning the slot of the key, and Produce or
//! Fetch parts for partitions this node does not own answer NOT_LEADER_OR_FOLLOWER (the
//! client refreshes its metadata and goes to the leader). Standalone nodes use none of
//! this: the front end checks `Cluster::managed` first.

use super::view::View;
use crate::cache::slot::key_slot;
use crate::log::ops::{LogOp, LogResult};

/// Kafka's NOT_LEADER_OR_FOLLOWER.
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// A broker as Metadata and FindCoordinator list it: (node id, host, port).
pub type Broker = (i32, String, u16);

/// Every node of the view as a broker.
pub fn brokers(view: &View) -> Vec<Broker> {
    view.nodes
        .iter()
        .map(|n| (n.id as i32, n.kafka_host.clone(), n.kafka_port))
        .collect()
}

/// The broker id leading `topic`-`partition`, or -1 while nobody owns it.
pub fn leader(view: &View, topic: &str, partition: i32) -> i32 {
    u32::try_from(partition)
        .ok()
        .and_then(|p| view.partition_owner(topic, p))
        .map_or(-1, |n| view.nodes[n].id as i32)
}

/// The broker coordinating a group or transactional id: the owner of the key's slot.
pub fn coordinator(view: &View, key: &str) -> Option<Broker> {
    let (n, _) = view.owner(key_slot(key.as_bytes()))?;
    let node = &view.nodes[n];
    Some((node.id as i32, node.kafka_host.clone(), node.kafka_port))
}

/// Splits log parts into those this node leads and, per original position, whether it was
/// left out (another node leads it).
pub fn keep_led(view: &View, parts: Vec<(usize, LogOp)>) -> (Vec<(usize, LogOp)>, Vec<bool>) {
    let mut kept = Vec::with_capacity(parts.len());
    let mut left_out = Vec::with_capacity(parts.len());
    for (shard, op) in parts {
        let here = match &op {
            LogOp::Produce {
                topic, partition, ..
            }
            | LogOp::Fetch {
                topic, partition, ..
            } => u32::try_from(*partition)
                .ok()
                .and_then(|p| view.partition_owner(topic, p))
                .is_some_and(|n| view.is_me(n)),
            _ => true,
        };
        left_out.push(!here);
        if here {
            kept.push((shard, op));
        }
    }
    (kept, left_out)
}

/// The results in request order again: `missing` for each part left out.
pub fn refill(results: &[LogResult], left_out: &[bool], missing: &LogResult) -> Vec<LogResult> {
    let mut it = results.iter();
    left_out
        .iter()
        .map(|&out| {
            if out {
                missing.clone()
            } else {
                it.next().cloned().unwrap_or_else(|| missing.clone())
            }
        })
        .collect()
}

/// For a Produce or Fetch: under a control plane, the parts this node leads and which were
/// left out; standalone, every part and `None`.
pub fn split_led(
    node: &crate::shard::NodeShared,
    parts: Vec<(usize, LogOp)>,
) -> (Vec<(usize, LogOp)>, Option<Vec<bool>>) {
    if !node.cluster.managed {
        return (parts, None);
    }
    let (kept, left_out) = node.cluster.with(|v| keep_led(v, parts));
    (kept, Some(left_out))
}

/// `done` over the results in request order, `missing` standing in for parts left out.
pub fn wrap(
    left_out: Option<Vec<bool>>,
    missing: LogResult,
    mut done: crate::kafka::rounds::Finish,
) -> crate::kafka::rounds::Finish {
    match left_out {
        None => done,
        Some(lo) => Box::new(move |results: &[LogResult], now| {
            let all = refill(results, &lo, &missing);
            done(&all, now)
        }),
    }
}

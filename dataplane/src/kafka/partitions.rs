//! The per-partition shape shared by Produce, Fetch and ListOffsets: a request names
//! topics and their partitions; each partition becomes one log part on its owner shard, and
//! the response is built back in the request's order from the parts' results.

use kafka_protocol::messages::TopicName;

use crate::log::ops::{LogOp, LogResult};
use crate::log::topics;
use crate::mesh::SlotTable;

/// A request's topics and their partitions, in request order.
pub type Layout = Vec<(TopicName, Vec<i32>)>;

/// Split a request's partitions by owner shard, one log part each, in request order; also
/// returns the request's layout to answer in.
pub fn split<T>(
    owner: &SlotTable,
    topics: Vec<(TopicName, Vec<T>)>,
    op: impl Fn(&str, T) -> (i32, LogOp),
) -> (Vec<(usize, LogOp)>, Layout) {
    let mut parts = Vec::new();
    let mut layout = Vec::new();
    for (name, partitions) in topics {
        let mut idx = Vec::new();
        for p in partitions {
            let (partition, op) = op(name.0.as_str(), p);
            let shard = owner.shard(topics::partition_slot(name.0.as_str(), partition));
            parts.push((shard, op));
            idx.push(partition);
        }
        layout.push((name, idx));
    }
    (parts, layout)
}

/// Pair each partition of `layout` with its result (results are in the same order) and
/// build its answer with `f`; yields (topic, answers) per topic.
pub fn by_layout<'a, R>(
    layout: &'a Layout,
    results: &'a [LogResult],
    mut f: impl FnMut(i32, &LogResult) -> R + 'a,
) -> impl Iterator<Item = (TopicName, Vec<R>)> + 'a {
    let mut k = 0;
    layout.iter().map(move |(name, idx)| {
        let answers = idx
            .iter()
            .map(|&index| {
                let r = f(index, &results[k]);
                k += 1;
                r
            })
            .collect();
        (name.clone(), answers)
    })
}

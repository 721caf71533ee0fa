//! The per-partition shape shared by Produce, Fetch, ListOffsets and DeleteRecords: a request names
//! topics and their partitions; each partition becomes one log part on its owner shard, and
//! the response is built back in the request's order from the parts' results.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
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

/// A response's per-topic entry, built from the topic's name and its partitions' answers.
pub trait TopicAnswer<P> {
    fn topic(name: TopicName, partitions: Vec<P>) -> Self;
}

/// `TopicAnswer` for a response type: its setters for the name and the partitions.
macro_rules! topic_answer {
    ($t:ty, $p:ty, $name:ident, $parts:ident) => {
        impl TopicAnswer<$p> for $t {
            fn topic(name: TopicName, partitions: Vec<$p>) -> Self {
                <$t>::default().$name(name).$parts(partitions)
            }
        }
    };
}

topic_answer!(
    TopicProduceResponse,
    PartitionProduceResponse,
    with_name,
    with_partition_responses
);
topic_answer!(
    FetchableTopicResponse,
    PartitionData,
    with_topic,
    with_partitions
);
topic_answer!(
    ListOffsetsTopicResponse,
    ListOffsetsPartitionResponse,
    with_name,
    with_partitions
);

topic_answer!(
    DeleteRecordsTopicResult,
    DeleteRecordsPartitionResult,
    with_name,
    with_partitions
);

/// The response's topics: each partition of `layout` paired with its result (results are
/// in the same order) and answered by `partition`.
pub fn by_layout<P, T: TopicAnswer<P>>(
    layout: &Layout,
    results: &[LogResult],
    mut partition: impl FnMut(i32, &LogResult) -> P,
) -> Vec<T> {
    let mut k = 0;
    layout
        .iter()
        .map(|(name, idx)| {
            let answers = idx
                .iter()
                .map(|&index| {
                    let r = partition(index, &results[k]);
                    k += 1;
                    r
                })
                .collect();
            T::topic(name.clone(), answers)
        })
        .collect()
}

/// A request's answer: each partition's result through `partition`, the topics through
/// `body` into the response.
pub fn answer<P: 'static, T: TopicAnswer<P> + 'static>(
    r: super::handlers::Req,
    layout: Layout,
    partition: fn(i32, &LogResult) -> P,
    body: fn(Vec<T>) -> kafka_protocol::messages::ResponseKind,
) -> super::rounds::Finish {
    Box::new(move |results: &[LogResult], _| r.answer(body(by_layout(&layout, results, partition))))
}

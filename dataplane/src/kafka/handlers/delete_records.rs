//! DeleteRecords (v0-v2): each partition's owner moves its log start offset up to the
//! offset asked for (-1: the high watermark), durably, and deletes the whole segments below
//! it (`log/topic_jobs.rs`); the answer is the new log start (Kafka's low watermark).
//! Fetches below it answer OFFSET_OUT_OF_RANGE, ListOffsets earliest answers it, and it
//! survives a restart (the partition's `log-start-offset` file).

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};

use super::Req;
use crate::auth::acl::TopicOp;
use crate::kafka::partitions::{by_layout, split};
use crate::kafka::rounds::{Finish, LogRounds};
use crate::kafka::Ctx;
use crate::log::ops::{LogOp, LogResult};
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, d: DeleteRecordsRequest) -> Act {
    // Topic rules: deleting records asks `delete` of the topic.
    let (topics, denied) = crate::kafka::authz::allowed(ctx, TopicOp::Delete, d.topics, |t| {
        (
            &t.name,
            t.partitions.iter().map(|p| p.partition_index).collect(),
        )
    });
    let topics = topics.into_iter().map(|t| (t.name, t.partitions));
    let (parts, layout) = split(ctx.owner, topics.collect(), |topic, p| {
        let (partition, offset) = (p.partition_index, p.offset);
        let topic = topic.to_string();
        (
            partition,
            LogOp::DeleteRecords {
                topic,
                partition,
                offset,
            },
        )
    });
    let done: Finish = Box::new(move |results: &[LogResult], _| {
        let mut topics: Vec<DeleteRecordsTopicResult> = by_layout(&layout, results, low_watermark);
        topics.extend(crate::kafka::authz::denied_delete_records(&denied));
        r.answer(ResponseKind::DeleteRecords(
            DeleteRecordsResponse::default().with_topics(topics),
        ))
    });
    ctx.launch(LogRounds::new(parts, done))
}

fn low_watermark(index: i32, r: &LogResult) -> DeleteRecordsPartitionResult {
    let (error, low, _) = r.figures();
    DeleteRecordsPartitionResult::default()
        .with_partition_index(index)
        .with_error_code(error)
        .with_low_watermark(low)
}

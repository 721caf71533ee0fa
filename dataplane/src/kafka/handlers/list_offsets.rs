//! ListOffsets (v1-v7): earliest, latest, or by timestamp, answered by each partition's
//! owner (`log/fetch.rs`).

use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, ResponseKind};

use super::Req;
use crate::kafka::partitions::{answer, by_layout, split};
use crate::kafka::rounds::LogRounds;
use crate::kafka::Ctx;
use crate::log::ops::{LogOp, LogResult};
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, l: ListOffsetsRequest) -> Act {
    // isolation_level 1 (read_committed): "latest" is the last stable offset.
    let committed = l.isolation_level == 1;
    // Topic rules (issue 13, f-sec): Kafka asks DESCRIBE of the topic.
    let (topics, denied) =
        crate::kafka::authz::allowed(ctx, crate::auth::acl::TopicOp::Describe, l.topics, |t| {
            (
                &t.name,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        });
    let topics = topics.into_iter().map(|t| (t.name, t.partitions));
    let (parts, layout) = split(ctx.owner, topics.collect(), |topic, p| {
        let (partition, timestamp) = (p.partition_index, p.timestamp);
        let topic = topic.to_string();
        (
            partition,
            LogOp::ListOffsets {
                topic,
                partition,
                timestamp,
                committed,
            },
        )
    });
    let done = if denied.is_empty() {
        answer(r, layout, offset, |topics| {
            ResponseKind::ListOffsets(ListOffsetsResponse::default().with_topics(topics))
        })
    } else {
        crate::kafka::finish(move |results: &[LogResult], _| {
            let mut topics = by_layout(&layout, results, offset);
            topics.extend(crate::kafka::authz::denied_list_offsets(&denied));
            r.answer(ResponseKind::ListOffsets(
                ListOffsetsResponse::default().with_topics(topics),
            ))
        })
    };
    ctx.launch(LogRounds::new(parts, done))
}

fn offset(index: i32, r: &LogResult) -> ListOffsetsPartitionResponse {
    let mut p = ListOffsetsPartitionResponse::default().with_leader_epoch(-1);
    (p.error_code, p.offset, p.timestamp) = r.figures();
    p.with_partition_index(index)
}

//! ListOffsets (v1-v7): earliest, latest, or by timestamp, answered by each partition's
//! owner (`log/fetch.rs`).

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse, ResponseKind};

use super::Req;
use crate::kafka::partitions::{by_layout, split};
use crate::kafka::rounds::LogRounds;
use crate::kafka::{encode_or_empty, finish, Ctx};
use crate::log::ops::{LogOp, LogResult};
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, l: ListOffsetsRequest) -> Act {
    let topics = l
        .topics
        .into_iter()
        .map(|t| (t.name, t.partitions))
        .collect();
    let (parts, layout) = split(ctx.owner, topics, |name, p| {
        let op = LogOp::ListOffsets {
            topic: name.to_string(),
            partition: p.partition_index,
            timestamp: p.timestamp,
        };
        (p.partition_index, op)
    });
    let shards: Vec<usize> = parts.iter().map(|(s, _)| *s).collect();
    let done = finish(move |results: &[LogResult], _| {
        let topics = by_layout(&layout, results, |index, r| {
            let (error, offset, timestamp) = match r {
                LogResult::Offset {
                    error,
                    offset,
                    timestamp,
                } => (*error, *offset, *timestamp),
                other => (other.error(), -1, -1),
            };
            ListOffsetsPartitionResponse::default()
                .with_partition_index(index)
                .with_error_code(error)
                .with_offset(offset)
                .with_timestamp(timestamp)
                .with_leader_epoch(-1)
        })
        .map(|(name, ps)| {
            ListOffsetsTopicResponse::default()
                .with_name(name)
                .with_partitions(ps)
        })
        .collect();
        let body = ResponseKind::ListOffsets(ListOffsetsResponse::default().with_topics(topics));
        encode_or_empty(ApiKey::ListOffsets, r.version, r.cid, &body)
    });
    ctx.launch(LogRounds::new(parts, done), shards.into_iter())
}

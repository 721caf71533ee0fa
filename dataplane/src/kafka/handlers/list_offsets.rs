//! ListOffsets (v1-v7): earliest, latest, or by timestamp, answered by each partition's
//! owner (`log/fetch.rs`).

use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, ResponseKind};

use super::Req;
use crate::kafka::partitions::{answer, split};
use crate::kafka::rounds::LogRounds;
use crate::kafka::Ctx;
use crate::log::ops::{LogOp, LogResult};
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, l: ListOffsetsRequest) -> Act {
    // isolation_level 1 (read_committed): "latest" is the last stable offset.
    let committed = l.isolation_level == 1;
    let topics = l.topics.into_iter().map(|t| (t.name, t.partitions));
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
    let done = answer(r, layout, offset, |topics| {
        ResponseKind::ListOffsets(ListOffsetsResponse::default().with_topics(topics))
    });
    ctx.launch(LogRounds::new(parts, done))
}

fn offset(index: i32, r: &LogResult) -> ListOffsetsPartitionResponse {
    let mut p = ListOffsetsPartitionResponse::default().with_leader_epoch(-1);
    (p.error_code, p.offset, p.timestamp) = r.figures();
    p.with_partition_index(index)
}

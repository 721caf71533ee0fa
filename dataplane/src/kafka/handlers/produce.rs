//! Produce (v3-v9): each partition's records go to its owner shard, which validates,
//! plans and group-commits them (`log/commit.rs`); acks=0 sends no response.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, ResponseKind};

use super::Req;
use crate::kafka::partitions::{by_layout, split};
use crate::kafka::rounds::{Done, LogRounds};
use crate::kafka::{encode_or_empty, finish, Ctx};
use crate::log::ops::{LogOp, LogResult};
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, p: ProduceRequest) -> Act {
    let acks = p.acks;
    let topics = p
        .topic_data
        .into_iter()
        .map(|t| (t.name, t.partition_data))
        .collect();
    let (parts, layout) = split(ctx.owner, topics, |name, pd| {
        let records = pd.records.unwrap_or_default();
        let op = LogOp::Produce {
            topic: name.to_string(),
            partition: pd.index,
            records,
        };
        (pd.index, op)
    });
    let shards: Vec<usize> = parts.iter().map(|(s, _)| *s).collect();
    let done = finish(move |results: &[LogResult], _| {
        if acks == 0 {
            return Done::Reply(Vec::new()); // acks=0: Kafka sends no response
        }
        let responses = by_layout(&layout, results, |index, r| {
            let (error, base, start) = match r {
                LogResult::Produced {
                    error,
                    base_offset,
                    log_start,
                } => (*error, *base_offset, *log_start),
                other => (other.error(), -1, -1),
            };
            PartitionProduceResponse::default()
                .with_index(index)
                .with_error_code(error)
                .with_base_offset(base)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(start)
        })
        .map(|(name, ps)| {
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(ps)
        })
        .collect();
        let body = ResponseKind::Produce(ProduceResponse::default().with_responses(responses));
        encode_or_empty(ApiKey::Produce, r.version, r.cid, &body)
    });
    ctx.launch(LogRounds::new(parts, done), shards.into_iter())
}

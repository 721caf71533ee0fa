//! Produce (v3-v9): each partition's records go to its owner shard, which validates,
//! plans and group-commits them (`log/commit.rs`); acks=0 sends no response.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::ResponseError;

use super::Req;
use crate::auth::acl::TopicOp;
use crate::kafka::partitions::{by_layout, split};
use crate::kafka::rounds::{Done, LogRounds};
use crate::kafka::{finish, Ctx};
use crate::log::ops::{LogOp, LogResult};
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, p: ProduceRequest) -> Act {
    let acks = p.acks;
    // Topic rules (issue 13, f-sec): denied topics are answered TOPIC_AUTHORIZATION_FAILED.
    let (topics, denied) = crate::kafka::authz::allowed(ctx, TopicOp::Write, p.topic_data, |t| {
        (&t.name, t.partition_data.iter().map(|p| p.index).collect())
    });
    let topics = topics.into_iter().map(|t| (t.name, t.partition_data));
    let (parts, layout) = split(ctx.owner, topics.collect(), |topic, pd| {
        let (partition, records) = (pd.index, pd.records.unwrap_or_default());
        let topic = topic.to_string();
        (
            partition,
            LogOp::Produce {
                topic,
                partition,
                records,
            },
        )
    });
    // Cluster mode (issue 12): partitions another node leads answer NOT_LEADER_OR_FOLLOWER.
    let (parts, left_out) = crate::cluster::kafka::split_led(ctx.node, parts);
    if !matches!(acks, -1..=1) {
        // Kafka refuses any other acks before it looks at the records.
        let done = finish(move |_: &[LogResult], _| {
            let responses = layout
                .iter()
                .map(|(name, idx)| {
                    let partitions = idx
                        .iter()
                        .map(|&index| {
                            PartitionProduceResponse::default()
                                .with_index(index)
                                .with_error_code(ResponseError::InvalidRequiredAcks.code())
                                .with_base_offset(-1)
                                .with_log_append_time_ms(-1)
                                .with_log_start_offset(-1)
                        })
                        .collect();
                    TopicProduceResponse::default()
                        .with_name(name.clone())
                        .with_partition_responses(partitions)
                })
                .collect();
            r.answer(ResponseKind::Produce(
                ProduceResponse::default().with_responses(responses),
            ))
        });
        return ctx.launch(LogRounds::new(Vec::new(), done));
    }
    let done = finish(move |results: &[LogResult], _| {
        if acks == 0 {
            return Done::Reply(Vec::new()); // acks=0: Kafka sends no response
        }
        let partition = |index, r: &LogResult| {
            let mut p = PartitionProduceResponse::default().with_log_append_time_ms(-1);
            (p.error_code, p.base_offset, p.log_start_offset) = r.figures();
            p.with_index(index)
        };
        let mut responses = by_layout(&layout, results, partition);
        responses.extend(crate::kafka::authz::denied_produce(&denied));
        r.answer(ResponseKind::Produce(
            ProduceResponse::default().with_responses(responses),
        ))
    });
    let missing = LogResult::Produced {
        error: crate::cluster::kafka::NOT_LEADER_OR_FOLLOWER,
        base_offset: -1,
        log_start: -1,
    };
    let done = crate::cluster::kafka::wrap(left_out, missing, done);
    ctx.launch(LogRounds::new(parts, done))
}

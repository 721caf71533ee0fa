//! Fetch (v4-v12): each partition is read on its owner shard (`log/fetch.rs`). With less
//! than min_bytes and no error, the partitions are asked again every few milliseconds until
//! max_wait_ms (a long poll); fetch sessions are declined.
//!
//! Sizes as in Kafka (KIP-74): a partition answers at most its partition_max_bytes of whole
//! batches, but at least its first batch whole; the response answers at most max_bytes,
//! partitions in request order, but at least the first batch of the first partition with
//! data, so a batch larger than either limit never stalls a consumer.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, ResponseKind};

use super::Req;
use crate::auth::acl::TopicOp;
use crate::kafka::partitions::{by_layout, split};
use crate::kafka::rounds::{Done, LogRounds};
use crate::kafka::{finish, Ctx};
use crate::limits::FETCH_WAIT_MS_MAX;
use crate::log::fetch::batches_within;
use crate::log::ops::{LogOp, LogResult};
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, f: FetchRequest) -> Act {
    let wait = Duration::from_millis(f.max_wait_ms.clamp(0, FETCH_WAIT_MS_MAX) as u64);
    let deadline = ctx.now + wait;
    let min_bytes = f.min_bytes.max(1) as usize;
    let max_bytes = f.max_bytes.max(0) as usize;
    // isolation_level 1: read_committed (up to the last stable offset).
    let committed = f.isolation_level == 1;
    // Topic rules (issue 13, f-sec): denied topics are answered TOPIC_AUTHORIZATION_FAILED
    // at once (no long poll for them).
    let (topics, denied) = crate::kafka::authz::allowed(ctx, TopicOp::Read, f.topics, |t| {
        (&t.topic, t.partitions.iter().map(|p| p.partition).collect())
    });
    let topics = topics.into_iter().map(|t| (t.topic, t.partitions));
    let (parts, layout) = split(ctx.owner, topics.collect(), |topic, p| {
        let (partition, offset, max_bytes) = (p.partition, p.fetch_offset, p.partition_max_bytes);
        let topic = topic.to_string();
        (
            partition,
            LogOp::Fetch {
                topic,
                partition,
                offset,
                max_bytes,
                committed,
            },
        )
    });
    // Cluster mode (issue 12): partitions another node leads answer NOT_LEADER_OR_FOLLOWER.
    let (parts, left_out) = crate::cluster::kafka::split_led(ctx.node, parts);
    let done = finish(move |results: &[LogResult], now| {
        let bytes: usize = results
            .iter()
            .map(|r| match r {
                LogResult::Fetched {
                    records: Some(b), ..
                } => b.len(),
                _ => 0,
            })
            .sum();
        let errors = !denied.is_empty() || results.iter().any(|r| r.error() != 0);
        if bytes < min_bytes && !errors && now < deadline {
            return Done::Wait;
        }
        // What is left of max_bytes, and whether a batch is in the response yet.
        let (mut budget, mut first) = (max_bytes, true);
        let partition = |index, r: &LogResult| {
            let d = PartitionData::default()
                .with_partition_index(index)
                .with_preferred_read_replica(BrokerId(-1));
            match r {
                LogResult::Fetched {
                    error,
                    high_watermark,
                    log_start,
                    records,
                    last_stable,
                    aborted,
                } => {
                    let records = records.as_ref().map_or_else(Bytes::new, |b| {
                        let kept = batches_within(b, budget, first);
                        budget = budget.saturating_sub(kept.len());
                        first &= kept.is_empty();
                        kept
                    });
                    let aborted = aborted
                        .iter()
                        .map(|&(pid, first)| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(pid))
                                .with_first_offset(first)
                        })
                        .collect();
                    d.with_error_code(*error)
                        .with_high_watermark(*high_watermark)
                        .with_last_stable_offset(*last_stable)
                        .with_log_start_offset(*log_start)
                        .with_aborted_transactions(Some(aborted))
                        .with_records(Some(records))
                }
                other => d.with_error_code(other.error()).with_high_watermark(-1),
            }
        };
        let mut responses = by_layout(&layout, results, partition);
        responses.extend(crate::kafka::authz::denied_fetch(&denied));
        r.answer(ResponseKind::Fetch(
            FetchResponse::default().with_responses(responses),
        ))
    });
    let missing = LogResult::Fetched {
        error: crate::cluster::kafka::NOT_LEADER_OR_FOLLOWER,
        high_watermark: -1,
        log_start: -1,
        records: None,
        last_stable: -1,
        aborted: Vec::new(),
    };
    let done = crate::cluster::kafka::wrap(left_out, missing, done);
    ctx.launch(LogRounds::polling(parts, done))
}

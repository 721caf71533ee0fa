//! Topic rules on Kafka requests (issue 13, f-sec): which of a request's topics the SASL
//! principal may touch, and the TOPIC_AUTHORIZATION_FAILED answers for the others. Without
//! SASL every topic is allowed. A denied topic is left out of the work and answered
//! after the allowed ones, each of its partitions with the error.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{BrokerId, TopicName};

use super::Ctx;
use crate::auth::acl::TopicOp;
use crate::auth::sasl::TOPIC_AUTHORIZATION_FAILED;

/// A denied topic and the partitions the request named.
pub type Denied = Vec<(TopicName, Vec<i32>)>;

/// Split `topics` into those the principal may `op` and the denied ones.
pub fn allowed<T>(
    ctx: &Ctx,
    op: TopicOp,
    topics: Vec<T>,
    name: impl Fn(&T) -> (&TopicName, Vec<i32>),
) -> (Vec<T>, Denied) {
    if ctx.principal.is_none() {
        return (topics, Vec::new());
    }
    let mut ok = Vec::with_capacity(topics.len());
    let mut denied = Vec::new();
    for t in topics {
        let (n, parts) = name(&t);
        if ctx.may(op, n.0.as_str()) {
            ok.push(t);
        } else {
            denied.push((n.clone(), parts));
        }
    }
    (ok, denied)
}

pub fn denied_produce(denied: &Denied) -> impl Iterator<Item = TopicProduceResponse> + '_ {
    denied.iter().map(|(name, parts)| {
        TopicProduceResponse::default()
            .with_name(name.clone())
            .with_partition_responses(
                parts
                    .iter()
                    .map(|&index| {
                        PartitionProduceResponse::default()
                            .with_index(index)
                            .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                            .with_base_offset(-1)
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(-1)
                    })
                    .collect(),
            )
    })
}

pub fn denied_list_offsets(denied: &Denied) -> impl Iterator<Item = ListOffsetsTopicResponse> + '_ {
    denied.iter().map(|(name, parts)| {
        ListOffsetsTopicResponse::default()
            .with_name(name.clone())
            .with_partitions(
                parts
                    .iter()
                    .map(|&index| {
                        ListOffsetsPartitionResponse::default()
                            .with_partition_index(index)
                            .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                            .with_offset(-1)
                            .with_timestamp(-1)
                            .with_leader_epoch(-1)
                    })
                    .collect(),
            )
    })
}

pub fn denied_fetch(denied: &Denied) -> impl Iterator<Item = FetchableTopicResponse> + '_ {
    denied.iter().map(|(name, parts)| {
        FetchableTopicResponse::default()
            .with_topic(name.clone())
            .with_partitions(
                parts
                    .iter()
                    .map(|&index| {
                        PartitionData::default()
                            .with_partition_index(index)
                            .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                            .with_high_watermark(-1)
                            .with_preferred_read_replica(BrokerId(-1))
                    })
                    .collect(),
            )
    })
}

pub fn denied_delete_records(
    denied: &Denied,
) -> impl Iterator<Item = DeleteRecordsTopicResult> + '_ {
    denied.iter().map(|(name, parts)| {
        DeleteRecordsTopicResult::default()
            .with_name(name.clone())
            .with_partitions(
                parts
                    .iter()
                    .map(|&index| {
                        DeleteRecordsPartitionResult::default()
                            .with_partition_index(index)
                            .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                            .with_low_watermark(-1)
                    })
                    .collect(),
            )
    })
}

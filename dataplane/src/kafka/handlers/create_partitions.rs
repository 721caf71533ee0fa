//! CreatePartitions (v0-v3): grow a topic's partition count. The topic's home rewrites
//! `topic.meta` with the new count, then every shard takes the grown topic and the owners
//! of the new partitions create them, placed on shards as CreateTopics places partitions
//! (the slot of `"<topic>-<partition>"`). Two hops, as CreateTopics (`create_topics.rs`).
//!
//! A count not above the topic's answers INVALID_PARTITIONS, as Kafka does (partitions
//! cannot be removed); so does a count past `--max-partitions` for the node. Replica
//! assignments may only name this broker. `validate_only` checks and changes nothing.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::create_topics::{partition_room, CreateRounds, Created, Refusal};
use super::Req;
use crate::kafka::{Ctx, NODE_ID};
use crate::limits::TOPIC_PARTITIONS_MAX;
use crate::log::topics::TopicMeta;
use crate::proto::kafka::ErrorCode;
use crate::shard::Act;

fn refusal(code: i16, message: String) -> Refusal {
    Refusal {
        code,
        message: Some(message),
    }
}

/// The message for an error a hop answered.
pub(crate) fn hop_message(code: i16) -> Option<String> {
    if code == ResponseError::ConcurrentTransactions.code() {
        Some("Another change of this topic is under way; retry.".into())
    } else if code == ErrorCode::KafkaStorageError.code() {
        Some("Writing the topic's files failed; the node's log says why.".into())
    } else if code == ErrorCode::UnknownTopicOrPartition.code() {
        Some("The topic was deleted meanwhile.".into())
    } else {
        None
    }
}

pub fn handle(ctx: &Ctx, r: Req, c: CreatePartitionsRequest) -> Act {
    let mut planned = 0u64;
    let mut plan: Vec<(TopicName, Result<TopicMeta, Refusal>)> = Vec::new();
    for t in &c.topics {
        let name = t.name.0.as_str();
        let dup = c
            .topics
            .iter()
            .filter(|o| o.name.0.as_str() == name)
            .count()
            > 1;
        let grown = (|| {
            if dup {
                return Err(refusal(
                    ErrorCode::InvalidRequest.code(),
                    format!("Duplicate topic in request: {name}"),
                ));
            }
            // Topic rules: growing a topic asks `create` of it (Kafka asks ALTER).
            if !ctx.may(crate::auth::acl::TopicOp::Create, name) {
                return Err(refusal(
                    crate::auth::sasl::TOPIC_AUTHORIZATION_FAILED,
                    format!("Not authorized to alter topic {name}"),
                ));
            }
            let Some(cur) = ctx.topics.get(name) else {
                return Err(refusal(
                    ErrorCode::UnknownTopicOrPartition.code(),
                    format!("The topic '{name}' does not exist."),
                ));
            };
            let invalid = ErrorCode::InvalidPartitions.code();
            if t.count == cur.partitions {
                return Err(refusal(
                    invalid,
                    format!("Topic already has {} partitions.", cur.partitions),
                ));
            }
            if t.count < cur.partitions {
                return Err(refusal(
                    invalid,
                    format!(
                        "Topic currently has {} partitions, which is higher than the requested {}.",
                        cur.partitions, t.count
                    ),
                ));
            }
            if t.count > TOPIC_PARTITIONS_MAX {
                return Err(refusal(
                    invalid,
                    format!("A topic has at most {TOPIC_PARTITIONS_MAX} partitions."),
                ));
            }
            let adding = (t.count - cur.partitions) as u64;
            if let Some(a) = &t.assignments {
                let bad = ResponseError::InvalidReplicaAssignment.code();
                if a.len() as u64 != adding {
                    return Err(refusal(
                        bad,
                        format!(
                            "Increasing the number of partitions by {adding} but {} assignments provided.",
                            a.len()
                        ),
                    ));
                }
                if a.iter()
                    .any(|p| p.broker_ids.iter().any(|b| b.0 != NODE_ID))
                {
                    return Err(refusal(
                        bad,
                        format!("This node is the only broker: replicas may only name {NODE_ID}."),
                    ));
                }
            }
            partition_room(ctx, planned + adding, invalid)?;
            planned += adding;
            Ok(TopicMeta {
                partitions: t.count,
                epoch: cur.epoch + 1,
                ..cur.clone()
            })
        })();
        plan.push((t.name.clone(), grown));
    }
    let validate_only = c.validate_only;
    let to_change: Vec<TopicMeta> = if validate_only {
        Vec::new()
    } else {
        plan.iter()
            .filter_map(|(_, g)| g.as_ref().ok().cloned())
            .collect()
    };
    let done: Created = Box::new(move |errors: &[i16]| {
        let mut k = 0;
        let results = plan
            .iter()
            .map(|(name, g)| {
                let (code, message) = match g {
                    Err(e) => (e.code, e.message.clone()),
                    Ok(_) if validate_only => (0, None),
                    Ok(_) => {
                        k += 1;
                        let e = errors.get(k - 1).copied().unwrap_or(0);
                        (e, hop_message(e))
                    }
                };
                CreatePartitionsTopicResult::default()
                    .with_name(name.clone())
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string))
            })
            .collect();
        let body = ResponseKind::CreatePartitions(
            CreatePartitionsResponse::default().with_results(results),
        );
        crate::kafka::encode::encode_or_error(r.key, r.version, r.cid, &body).unwrap_or_default()
    });
    CreateRounds::changes(ctx, to_change, done).launch(ctx)
}

//! CreatePartitions (v0-v3): grow a topic's partition count. The topic's home rewrites
//! `topic.meta` with the new count, then every shard takes the grown topic and the owners
//! of the new partitions create them, placed on shards as CreateTopics places partitions
//! (the slot of `"<topic>-<partition>"`). Two hops, as CreateTopics (`create_topics.rs`).
//!
//! A count not above the topic's answers INVALID_PARTITIONS, as Kafka does (partitions
//! cannot be removed); so does a count past `--max-partitions` for the node. Replica
//! assignments may only name this broker. `validate_only` checks and changes nothing.
//!
//! Under a control plane (`cluster/topics.rs`), a topic of the map is grown there: checked
//! here against the map's count, then forwarded; every node grows its copy when it
//! installs the map, and the answer comes once that change is done. A topic outside the
//! map is grown here, as standalone.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::create_topics::{partition_room, CreateRounds, Created, Refusal};
use super::Req;
use crate::cluster::topics::{Answer, Forward, Ticket, TopicOp};
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
    // Topics of the map (under a control plane): grown by the control plane.
    let mut forwarded: Vec<String> = Vec::new();
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
            let mapped = (!r.internal)
                .then(|| ctx.node.cluster.with(|v| v.topics.get(name).cloned()))
                .flatten()
                .filter(|_| ctx.node.cluster.managed);
            let local = ctx.topics.get(name);
            let cur_count = match (&mapped, local) {
                (Some(t), _) => t.partitions as i32,
                (None, Some(l)) => l.partitions,
                (None, None) => -1,
            };
            if mapped.is_some() && cur_count >= 0 {
                forwarded.push(name.to_string());
            }
            let Some(cur) = local.cloned().or_else(|| {
                // In the map but not created here yet: the map's count stands for it.
                mapped.as_ref().map(|t| TopicMeta {
                    name: name.to_string(),
                    partitions: t.partitions as i32,
                    config: ctx.node.cfg.topic_defaults(),
                    set: t.configs.clone(),
                    epoch: 0,
                })
            }) else {
                return Err(refusal(
                    ErrorCode::UnknownTopicOrPartition.code(),
                    format!("The topic '{name}' does not exist."),
                ));
            };
            let cur = TopicMeta {
                partitions: cur_count,
                ..cur
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
    if !validate_only && !forwarded.is_empty() {
        return forward(ctx, r, plan, &forwarded, c.timeout_ms);
    }
    let done: Created = Box::new(move |errors: &[i16]| {
        let mut k = 0;
        answer(
            r,
            plan.iter().map(|(name, g)| {
                let (code, message) = match g {
                    Err(e) => (e.code, e.message.clone()),
                    Ok(_) if validate_only => (0, None),
                    Ok(_) => {
                        k += 1;
                        let e = errors.get(k - 1).copied().unwrap_or(0);
                        (e, hop_message(e))
                    }
                };
                (name, code, message)
            }),
        )
    });
    CreateRounds::changes(ctx, to_change, done).launch(ctx)
}

/// Grows the map's topics through the control plane; a topic outside the map in the same
/// request is answered INVALID_REQUEST (grow it in a request of its own).
fn forward(
    ctx: &Ctx,
    r: Req,
    plan: Vec<(TopicName, Result<TopicMeta, Refusal>)>,
    forwarded: &[String],
    timeout_ms: i32,
) -> Act {
    let mut tickets: Vec<Ticket> = Vec::new();
    let mut rows: Vec<(TopicName, Result<(), Refusal>)> = Vec::new();
    for (name, g) in plan {
        let row = match g {
            Err(e) => Err(e),
            Ok(_) if !forwarded.iter().any(|f| f == name.0.as_str()) => Err(refusal(
                ErrorCode::InvalidRequest.code(),
                "A topic outside the cluster map cannot be grown with one of the map's; send it alone.".into(),
            )),
            Ok(m) => {
                tickets.push(ctx.node.cluster.topics.ask(TopicOp::AddPartitions {
                    name: m.name.clone(),
                    count: m.partitions as u32,
                }));
                Ok(())
            }
        };
        rows.push((name, row));
    }
    let respond = move |answers: &[Answer]| {
        let mut k = 0;
        answer(
            r,
            rows.iter().map(|(name, row)| {
                let (code, message) = match row {
                    Err(e) => (e.code, e.message.clone()),
                    Ok(()) => {
                        k += 1;
                        answers
                            .get(k - 1)
                            .map_or((ErrorCode::KafkaStorageError.code(), None), |a| {
                                (a.error, a.message.clone())
                            })
                    }
                };
                (name, code, message)
            }),
        )
    };
    let f = Forward::new(tickets, timeout_ms, Box::new(respond));
    ctx.launch_rounds(Box::new(f), [])
}

/// The encoded response to `r`: one result a topic, (name, error code, message), in the
/// request's order. The local and the forwarded path both answer through here.
fn answer<'a>(
    r: Req,
    results: impl Iterator<Item = (&'a TopicName, i16, Option<String>)>,
) -> Vec<u8> {
    let results = results
        .map(|(name, code, message)| {
            CreatePartitionsTopicResult::default()
                .with_name(name.clone())
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string))
        })
        .collect();
    let body =
        ResponseKind::CreatePartitions(CreatePartitionsResponse::default().with_results(results));
    crate::kafka::encode::encode_or_error(r.key, r.version, r.cid, &body).unwrap_or_default()
}

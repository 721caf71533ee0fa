//! DeleteTopics (v1-v6): two rounds. Each topic's `topic.meta` goes first, so a crash
//! mid-delete does not resurrect the topic; then every shard drops it and deletes the
//! partitions it owns. A topic whose `topic.meta` could not be removed (a disk error) is
//! kept whole and answered with that error: dropping it would answer a delete that a
//! restart undoes.
//!
//! Under a control plane (`cluster/topics.rs`), a request naming a topic of the map is
//! forwarded: the control plane drops the topics from the map, and every node deletes its
//! copy when it installs that map; the answer comes once the change is done. A request
//! naming only topics outside the map (created on this node before it joined) deletes them
//! here, as standalone.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, ResponseKind, TopicName,
};

use super::create_topics::in_map;
use super::Req;
use crate::cluster::topics::{Answer, Forward, Ticket, TopicOp};
use crate::kafka::rounds::LogRounds;
use crate::kafka::{finish, Ctx};
use crate::log::ops::{LogOp, LogResult};
use crate::proto::kafka::ErrorCode;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, d: DeleteTopicsRequest) -> Act {
    let n = ctx.node.nshards;
    let names: Vec<TopicName> = if r.version >= 6 {
        d.topics.into_iter().filter_map(|t| t.name).collect()
    } else {
        d.topic_names
    };
    if !r.internal && names.iter().any(|n| in_map(ctx, n.0.as_str())) {
        return forward(ctx, r, names, d.timeout_ms);
    }
    let mut first = Vec::new();
    let mut known_names = Vec::new();
    let mut plan = Vec::new();
    let mut denied = Vec::new();
    for name in names {
        let known = ctx.topics.contains_key(name.0.as_str());
        // Topic rules (issue 13, f-sec): a denied topic is answered as such, not deleted.
        if !ctx.may(crate::auth::acl::TopicOp::Delete, name.0.as_str()) {
            denied.push(name);
            continue;
        }
        if known {
            first.push((ctx.me, LogOp::RemoveTopicMeta(name.0.to_string())));
            known_names.push(name.0.to_string());
        }
        plan.push((name, known));
    }
    // The second hop: every shard deletes each topic whose `topic.meta` is gone.
    let then = Box::new(move |removed: &[LogResult]| {
        let mut parts = Vec::new();
        for (name, r) in known_names.iter().zip(removed) {
            if r.error() == 0 {
                parts.extend((0..n).map(|s| (s, LogOp::DeleteTopic(name.clone()))));
            }
        }
        parts
    });
    let known = plan.iter().filter(|(_, k)| *k).count();
    let done = finish(move |results: &[LogResult], _| {
        // The first hop's results (one per known topic), then `n` per topic it removed.
        let (removed, deleted) = results.split_at(known.min(results.len()));
        let mut i = 0;
        let mut k = 0;
        let responses = plan
            .iter()
            .map(|(name, known)| {
                let error = if *known {
                    let first = removed.get(i).map_or(0, |r| r.error());
                    i += 1;
                    if first != 0 {
                        first
                    } else {
                        let e = deleted
                            .get(k..k + n)
                            .unwrap_or_default()
                            .iter()
                            .map(|r| r.error())
                            .find(|&e| e != 0)
                            .unwrap_or(0);
                        k += n;
                        e
                    }
                } else {
                    ErrorCode::UnknownTopicOrPartition.code()
                };
                DeletableTopicResult::default()
                    .with_name(Some(name.clone()))
                    .with_error_code(error)
            })
            .chain(denied.iter().map(|name| {
                DeletableTopicResult::default()
                    .with_name(Some(name.clone()))
                    .with_error_code(crate::auth::sasl::TOPIC_AUTHORIZATION_FAILED)
            }))
            .collect();
        let body =
            ResponseKind::DeleteTopics(DeleteTopicsResponse::default().with_responses(responses));
        r.answer(body)
    });
    ctx.launch(LogRounds::two_stage(first, then, done))
}

/// Forwards the deletes to the control plane (see the module header).
fn forward(ctx: &Ctx, r: Req, names: Vec<TopicName>, timeout_ms: i32) -> Act {
    let mut plan: Vec<(TopicName, Option<i16>)> = Vec::new();
    let mut tickets: Vec<Ticket> = Vec::new();
    for name in names {
        if !ctx.may(crate::auth::acl::TopicOp::Delete, name.0.as_str()) {
            plan.push((name, Some(crate::auth::sasl::TOPIC_AUTHORIZATION_FAILED)));
            continue;
        }
        tickets.push(ctx.node.cluster.topics.ask(TopicOp::Delete {
            name: name.0.to_string(),
        }));
        plan.push((name, None));
    }
    let respond = move |answers: &[Answer]| {
        let mut k = 0;
        let responses = plan
            .iter()
            .map(|(name, refused)| {
                let (code, message) = match refused {
                    Some(c) => (*c, None),
                    None => {
                        k += 1;
                        answers
                            .get(k - 1)
                            .map_or((ErrorCode::KafkaStorageError.code(), None), |a| {
                                (a.error, a.message.clone())
                            })
                    }
                };
                DeletableTopicResult::default()
                    .with_name(Some(name.clone()))
                    .with_error_code(code)
                    .with_error_message(
                        message.map(kafka_protocol::protocol::StrBytes::from_string),
                    )
            })
            .collect();
        let body =
            ResponseKind::DeleteTopics(DeleteTopicsResponse::default().with_responses(responses));
        crate::kafka::encode::encode_or_error(r.key, r.version, r.cid, &body).unwrap_or_default()
    };
    let f = Forward::new(tickets, timeout_ms, Box::new(respond));
    ctx.launch_rounds(Box::new(f), [])
}

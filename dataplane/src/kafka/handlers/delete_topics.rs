//! DeleteTopics (v1-v6): two rounds. Each topic's `topic.meta` goes first, so a crash
//! mid-delete does not resurrect the topic; then every shard drops it and deletes the
//! partitions it owns.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, ResponseKind, TopicName,
};

use super::Req;
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
    let mut first = Vec::new();
    let mut parts = Vec::new();
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
            for s in 0..n {
                parts.push((s, LogOp::DeleteTopic(name.0.to_string())));
            }
        }
        plan.push((name, known));
    }
    let done = finish(move |results: &[LogResult], _| {
        let mut k = 0;
        let responses = plan
            .iter()
            .map(|(name, known)| {
                let error = if *known {
                    let e = results[k..k + n]
                        .iter()
                        .map(|r| r.error())
                        .find(|&e| e != 0)
                        .unwrap_or(0);
                    k += n;
                    e
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
    ctx.launch(LogRounds::two_stage(first, parts, done))
}

//! CreateTopics (v2-v7): each new topic's `topic.meta` is written on this shard and every
//! shard adds the topic (the owners of its partitions create them on disk).

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, ResponseKind, TopicName,
};

use super::Req;
use crate::kafka::rounds::LogRounds;
use crate::kafka::{finish, Ctx};
use crate::limits::TOPIC_PARTITIONS_MAX;
use crate::log::ops::{LogOp, LogResult};
use crate::log::topics::{self, TopicMeta};
use crate::proto::kafka::ErrorCode;
use crate::shard::Act;
use hashbrown::HashMap;

/// A topic's metadata from a CreateTopics entry or our defaults; errors as Kafka's.
pub(crate) fn topic_meta(
    ctx: &Ctx,
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(String, Option<String>)],
) -> Result<TopicMeta, ErrorCode> {
    if !topics::valid_name(name) {
        return Err(ErrorCode::InvalidTopicException);
    }
    let partitions = if partitions == -1 {
        ctx.node.cfg.default_partitions
    } else {
        partitions
    };
    if !(1..=TOPIC_PARTITIONS_MAX).contains(&partitions) {
        return Err(ErrorCode::InvalidPartitions);
    }
    if replication != -1 && replication != 1 {
        return Err(ErrorCode::InvalidReplicationFactor);
    }
    let mut config = ctx.node.cfg.topic_defaults();
    for (k, v) in configs {
        let Some(v) = v else { continue };
        let n: i64 = v.parse().map_err(|_| ErrorCode::InvalidRequest)?;
        let opt = |n: i64| (n >= 0).then_some(n as u64);
        match k.as_str() {
            "retention.ms" => config.retention_ms = opt(n),
            "retention.bytes" => config.retention_bytes = opt(n),
            "segment.bytes" if n > 0 => config.segment_bytes = n as u64,
            "segment.ms" if n > 0 => config.segment_ms = n as u64,
            _ => {} // other topic configs are accepted and have no effect here
        }
    }
    Ok(TopicMeta {
        name: name.to_string(),
        partitions,
        config,
    })
}

/// Per topic: persist it here, and have every shard add it (owners create partitions);
/// 1 + shards parts each, in that order.
pub(crate) fn create_parts(ctx: &Ctx, metas: &[TopicMeta]) -> Vec<(usize, LogOp)> {
    let mut parts = Vec::new();
    for m in metas {
        parts.push((ctx.me, LogOp::PersistTopic(m.clone())));
        for s in 0..ctx.node.nshards {
            parts.push((s, LogOp::CreateTopic(m.clone())));
        }
    }
    parts
}

pub fn handle(ctx: &Ctx, r: Req, c: CreateTopicsRequest) -> Act {
    let n = ctx.node.nshards;
    // For each requested topic: Ok(meta) to create, or the error to report.
    let mut plan: Vec<(TopicName, Result<TopicMeta, ErrorCode>)> = Vec::new();
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for t in &c.topics {
        *seen.entry(t.name.0.as_str()).or_default() += 1;
    }
    for t in &c.topics {
        let name = t.name.0.to_string();
        // A name given twice: Kafka creates neither and answers INVALID_REQUEST, once.
        match seen.get_mut(name.as_str()) {
            Some(n) if *n > 1 => {
                *n = 0;
                plan.push((t.name.clone(), Err(ErrorCode::InvalidRequest)));
                continue;
            }
            Some(0) => continue,
            _ => {}
        }
        let configs: Vec<(String, Option<String>)> = t
            .configs
            .iter()
            .map(|cf| {
                (
                    cf.name.to_string(),
                    cf.value.as_ref().map(|v| v.to_string()),
                )
            })
            .collect();
        let r = if ctx.topics.contains_key(&name) {
            Err(ErrorCode::TopicAlreadyExists)
        } else {
            topic_meta(ctx, &name, t.num_partitions, t.replication_factor, &configs)
        };
        plan.push((t.name.clone(), r));
    }
    let validate_only = c.validate_only;
    let to_create: Vec<TopicMeta> = if validate_only {
        Vec::new()
    } else {
        plan.iter()
            .filter_map(|(_, r)| r.as_ref().ok().cloned())
            .collect()
    };
    let parts = create_parts(ctx, &to_create);
    let done = finish(move |results: &[LogResult], _| {
        let mut k = 0;
        let topics = plan
            .iter()
            .map(|(name, r)| {
                let (error, partitions) = match r {
                    Err(e) => (e.code(), -1),
                    Ok(m) if validate_only => (0, m.partitions),
                    Ok(m) => {
                        let errs = &results[k..k + n + 1];
                        k += n + 1;
                        let e = errs.iter().map(|r| r.error()).find(|&e| e != 0);
                        (e.unwrap_or(0), m.partitions)
                    }
                };
                CreatableTopicResult::default()
                    .with_name(name.clone())
                    .with_error_code(error)
                    .with_num_partitions(partitions)
                    .with_replication_factor(1)
            })
            .collect();
        let body = ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(topics));
        r.answer(body)
    });
    ctx.launch(LogRounds::new(parts, done))
}

//! CreateTopics (v2-v7), and the topic creation Metadata's auto-create shares: two hops.
//! First each new topic's home shard (`topics::home_slot`) claims the name and writes
//! `topic.meta`; of concurrent creates of one name only the claim holder goes on (the
//! others are answered TOPIC_ALREADY_EXISTS). Then every shard adds the topics whose claim
//! held (the owners of their partitions create them on disk).
//!
//! Under a control plane (`--control`, `cluster/topics.rs`), a request from a client is
//! checked here as above, then each topic to create is forwarded to the control plane,
//! which commits it into the map; the answer comes once that change is done (every node
//! creates the topic when it installs the map). `validate_only` changes nothing anywhere.
//!
//! Configs: every topic config Kafka documents is accepted (`log/topic_config.rs`); an
//! unknown name, a null or a value of the wrong type answers INVALID_CONFIG with Kafka's
//! message.

use std::time::Instant;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::describe_configs::topic_entries;
use super::Req;
use crate::cluster::topics::{self as cluster_topics, Answer, Forward, Ticket};
use crate::kafka::Ctx;
use crate::limits::TOPIC_PARTITIONS_MAX;
use crate::log::ops::LogOp;
use crate::log::topic_config;
use crate::log::topics::{self, TopicMeta};
use crate::proto::kafka::ErrorCode;
use crate::shard::Act;
use crate::txn::{Op, Res, Rounds, Step};
use hashbrown::HashMap;

use crate::auth::acl::TopicOp;
use crate::auth::sasl::TOPIC_AUTHORIZATION_FAILED;

/// Why a topic cannot be created: Kafka's error code, and its message where it has one.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub code: i16,
    pub message: Option<String>,
}

impl From<ErrorCode> for Refusal {
    fn from(e: ErrorCode) -> Refusal {
        Refusal {
            code: e.code(),
            message: None,
        }
    }
}

/// A topic's metadata from a CreateTopics entry or our defaults; errors as Kafka's.
pub(crate) fn topic_meta(
    ctx: &Ctx,
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(String, Option<String>)],
) -> Result<TopicMeta, Refusal> {
    if !topics::valid_name(name) {
        return Err(ErrorCode::InvalidTopicException.into());
    }
    let partitions = if partitions == -1 {
        ctx.node.cfg.default_partitions
    } else {
        partitions
    };
    if !(1..=TOPIC_PARTITIONS_MAX).contains(&partitions) {
        return Err(ErrorCode::InvalidPartitions.into());
    }
    if replication != -1 && replication != 1 {
        return Err(ErrorCode::InvalidReplicationFactor.into());
    }
    partition_room(
        ctx,
        partitions as u64,
        ResponseError::PolicyViolation.code(),
    )?;
    let mut meta = TopicMeta {
        name: name.to_string(),
        partitions,
        config: ctx.node.cfg.topic_defaults(),
        set: Default::default(),
        epoch: 0,
    };
    for (k, v) in configs {
        topic_config::apply(&mut meta.config, &mut meta.set, k, v.as_deref()).map_err(|e| {
            Refusal {
                code: ResponseError::InvalidConfig.code(),
                message: Some(e.to_string()),
            }
        })?;
    }
    Ok(meta)
}

/// The partitions this node holds, all topics together (every shard has the whole table).
pub(crate) fn partitions_held(ctx: &Ctx) -> u64 {
    ctx.topics
        .values()
        .map(|m| m.partitions.max(0) as u64)
        .sum()
}

/// Whether `adding` more partitions fit `--max-partitions` (the fd budget); else `code`
/// with a message that says what to change.
pub(crate) fn partition_room(ctx: &Ctx, adding: u64, code: i16) -> Result<(), Refusal> {
    let (held, max) = (partitions_held(ctx), ctx.node.cfg.max_partitions);
    if held + adding <= max {
        return Ok(());
    }
    Err(Refusal {
        code,
        message: Some(format!(
            "The node holds {held} partitions and may hold {max} (--max-partitions, set by the file descriptor limit): {adding} more do not fit. Delete topics, or raise `ulimit -n` and --max-partitions."
        )),
    })
}

/// What a topic creation's answer is built from: one error code per topic, in order.
pub(crate) type Created = Box<dyn FnMut(&[i16]) -> Vec<u8> + Send>;

/// Where a creation is.
enum Stage {
    Start,
    /// The homes were asked to claim the names.
    Claiming,
    /// Every shard was asked to add the topics whose claim held (the claims' errors).
    Creating(Vec<i16>),
    Done,
}

/// The hops of creating `metas` (see the module header), or of changing them.
pub(crate) struct CreateRounds {
    metas: Vec<TopicMeta>,
    homes: Vec<usize>,
    shards: usize,
    stage: Stage,
    finish: Created,
    /// Changes of existing topics (CreatePartitions, AlterConfigs ...): the homes rewrite
    /// `topic.meta` and every shard takes the changed topic.
    change: bool,
}

impl CreateRounds {
    pub(crate) fn new(ctx: &Ctx, metas: Vec<TopicMeta>, finish: Created) -> CreateRounds {
        let homes = metas
            .iter()
            .map(|m| ctx.owner.shard(topics::home_slot(&m.name)))
            .collect();
        CreateRounds {
            metas,
            homes,
            shards: ctx.node.nshards,
            stage: Stage::Start,
            finish,
            change: false,
        }
    }

    /// The same two hops for changed topics (each `meta` one epoch past the topic's).
    pub(crate) fn changes(ctx: &Ctx, metas: Vec<TopicMeta>, finish: Created) -> CreateRounds {
        CreateRounds {
            change: true,
            ..CreateRounds::new(ctx, metas, finish)
        }
    }

    /// Launch it (the first hop goes to the topics' homes).
    pub(crate) fn launch(self, ctx: &Ctx) -> Act {
        let homes = self.homes.clone();
        ctx.launch_rounds(Box::new(self), homes)
    }
}

impl Rounds for CreateRounds {
    fn next(&mut self, results: Vec<Res>, _: Instant) -> Step {
        let errors: Vec<i16> = results.into_iter().map(|r| r.log().error()).collect();
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Start if self.metas.is_empty() => Step::Reply((self.finish)(&[])),
            Stage::Start => {
                self.stage = Stage::Claiming;
                let parts = self.homes.iter().zip(&self.metas);
                let change = self.change;
                let parts = parts.map(|(&h, m)| {
                    let op = if change {
                        LogOp::RewriteTopic(m.clone())
                    } else {
                        LogOp::PersistTopic(m.clone())
                    };
                    (h, Op::Log(op))
                });
                Step::Hop {
                    parts: parts.collect(),
                    last: false,
                }
            }
            Stage::Claiming => {
                let mut parts = Vec::new();
                for (m, &e) in self.metas.iter().zip(&errors) {
                    if e == 0 {
                        for s in 0..self.shards {
                            let op = if self.change {
                                LogOp::ChangeTopic(m.clone())
                            } else {
                                LogOp::CreateTopic(m.clone())
                            };
                            parts.push((s, Op::Log(op)));
                        }
                    }
                }
                if parts.is_empty() {
                    return Step::Reply((self.finish)(&errors));
                }
                self.stage = Stage::Creating(errors);
                Step::Hop { parts, last: false }
            }
            Stage::Creating(claims) => {
                // A topic's error: its claim's, else the first a shard answered.
                let mut k = 0;
                let out: Vec<i16> = claims
                    .iter()
                    .map(|&c| {
                        if c != 0 {
                            return c;
                        }
                        let e = errors[k..k + self.shards].iter().find(|&&e| e != 0);
                        k += self.shards;
                        e.copied().unwrap_or(0)
                    })
                    .collect();
                Step::Reply((self.finish)(&out))
            }
            // A flight asks no more after its reply.
            Stage::Done => Step::Reply(Vec::new()),
        }
    }
}

pub fn handle(ctx: &Ctx, r: Req, c: CreateTopicsRequest) -> Act {
    // For each requested topic: Ok(meta) to create, or why not.
    let mut plan: Vec<(TopicName, Result<TopicMeta, Refusal>)> = Vec::new();
    let mut seen: HashMap<&str, u32> = HashMap::new();
    let mut planned = 0u64;
    for t in &c.topics {
        *seen.entry(t.name.0.as_str()).or_default() += 1;
    }
    for t in &c.topics {
        let name = t.name.0.to_string();
        // A name given twice: Kafka creates neither and answers INVALID_REQUEST, once.
        match seen.get_mut(name.as_str()) {
            Some(n) if *n > 1 => {
                *n = 0;
                plan.push((t.name.clone(), Err(ErrorCode::InvalidRequest.into())));
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
        // Topic rules (issue 13, f-sec).
        let r = if !ctx.may(TopicOp::Create, &name) {
            Err(Refusal {
                code: TOPIC_AUTHORIZATION_FAILED,
                message: Some("Authorization failed.".into()),
            })
        } else if ctx.topics.contains_key(&name) || (!r.internal && in_map(ctx, &name)) {
            Err(ErrorCode::TopicAlreadyExists.into())
        } else {
            topic_meta(ctx, &name, t.num_partitions, t.replication_factor, &configs).and_then(|m| {
                // The topics before it in this request count against the budget too.
                let adding = planned + m.partitions as u64;
                partition_room(ctx, adding, ResponseError::PolicyViolation.code())?;
                planned = adding;
                Ok(m)
            })
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
    let version = r.version;
    let forward = ctx.node.cluster.managed && !r.internal && !validate_only;
    let tickets: Vec<Ticket> = if forward {
        to_create
            .iter()
            .map(|m| {
                ctx.node
                    .cluster
                    .topics
                    .ask(cluster_topics::TopicOp::Create {
                        name: m.name.clone(),
                        partitions: m.partitions as u32,
                        configs: m.set.clone(),
                    })
            })
            .collect()
    } else {
        Vec::new()
    };
    let respond = move |errors: &[Answer]| {
        let mut k = 0;
        let topics = plan
            .iter()
            .map(|(name, p)| {
                let t = CreatableTopicResult::default()
                    .with_name(name.clone())
                    .with_error_message(None);
                let (error, message, meta) = match p {
                    Err(e) => (e.code, e.message.clone(), None),
                    Ok(m) if validate_only => (0, None, Some(m)),
                    Ok(m) => {
                        k += 1;
                        let a = errors.get(k - 1);
                        let e = a.map_or(ErrorCode::KafkaStorageError.code(), |a| a.error);
                        (e, a.and_then(|a| a.message.clone()), Some(m))
                    }
                };
                let t = t
                    .with_error_code(error)
                    .with_error_message(message.map(StrBytes::from_string));
                match meta.filter(|_| error == 0 && version >= 5) {
                    Some(m) => t
                        .with_num_partitions(m.partitions)
                        .with_replication_factor(1)
                        .with_configs(Some(
                            topic_entries(m)
                                .map(|(d, value, source)| {
                                    CreatableTopicConfigs::default()
                                        .with_name(StrBytes::from_static_str(d.name))
                                        .with_value(Some(StrBytes::from_string(value)))
                                        .with_config_source(source)
                                })
                                .collect(),
                        )),
                    None => t,
                }
            })
            .collect();
        let body = ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(topics));
        crate::kafka::encode::encode_or_error(r.key, r.version, r.cid, &body).unwrap_or_default()
    };
    if forward {
        let f = Forward::new(tickets, c.timeout_ms, Box::new(respond));
        return ctx.launch_rounds(Box::new(f), []);
    }
    CreateRounds::new(ctx, to_create, local(respond)).launch(ctx)
}

/// Whether the cluster map holds the topic (under a control plane).
pub(crate) fn in_map(ctx: &Ctx, name: &str) -> bool {
    ctx.node.cluster.managed && ctx.node.cluster.with(|v| v.topics.contains_key(name))
}

/// A response built from answers, over the codes the local hops answer.
pub(crate) fn local(mut respond: impl FnMut(&[Answer]) -> Vec<u8> + Send + 'static) -> Created {
    Box::new(move |errors: &[i16]| {
        let answers: Vec<Answer> = errors
            .iter()
            .map(|&error| Answer {
                error,
                message: None,
            })
            .collect();
        respond(&answers)
    })
}

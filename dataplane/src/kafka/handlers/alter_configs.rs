//! AlterConfigs (v0-v2), and what IncrementalAlterConfigs shares with it: changing a
//! topic's configs. AlterConfigs replaces the configs a topic sets with those given (the
//! rest go back to their defaults); IncrementalAlterConfigs applies SET, DELETE, APPEND and
//! SUBTRACT to them. Each config is checked as CreateTopics checks it
//! (`log/topic_config.rs`: an unknown name or a bad value answers INVALID_CONFIG). The
//! changed topic goes through the two hops of a topic change (`create_topics.rs`): its home
//! rewrites `topic.meta`, then every shard applies the honoured configs to the partitions
//! it owns (retention at the next tick, segment size and age at the next roll, the largest
//! batch at the next produce).
//!
//! The broker resource: pinion's broker configs are its command-line flags, none of which
//! changes at runtime, so a change of one answers INVALID_REQUEST saying so (Kafka's answer
//! for a config that is not dynamic); DescribeConfigs lists them.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::create_partitions::hop_message;
use super::create_topics::{CreateRounds, Created, Refusal};
use super::describe_configs::{broker_config_names, BROKER, TOPIC};
use super::Req;
use crate::kafka::{Ctx, NODE_ID};
use crate::log::topic_config::{self, ConfigError, Kind};
use crate::log::topics::TopicMeta;
use crate::proto::kafka::ErrorCode;
use crate::shard::Act;

/// What a request asks of one resource's configs.
pub(crate) enum Change {
    /// AlterConfigs: these are the configs it sets now.
    Replace(Vec<(String, Option<String>)>),
    /// IncrementalAlterConfigs: (name, operation, value), applied in order.
    Incremental(Vec<(String, i8, Option<String>)>),
}

/// IncrementalAlterConfigs operations.
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// One resource's answer: type, name, error code and message.
pub(crate) type Outcome = (i8, StrBytes, i16, Option<String>);

fn refusal(code: i16, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: Some(message.into()),
    }
}

fn invalid_config(e: ConfigError) -> Refusal {
    refusal(ResponseError::InvalidConfig.code(), e.to_string())
}

/// The configs `cur` sets after `change`, checked.
fn changed_set(cur: &TopicMeta, change: &Change) -> Result<BTreeMap<String, String>, Refusal> {
    let mut names = std::collections::HashSet::new();
    let mut dup = |name: &str| {
        (!names.insert(name.to_string())).then(|| {
            refusal(
                ErrorCode::InvalidRequest.code(),
                format!("Error due to duplicate config keys: {name}"),
            )
        })
    };
    match change {
        Change::Replace(configs) => {
            let mut set = BTreeMap::new();
            for (name, value) in configs {
                if let Some(e) = dup(name) {
                    return Err(e);
                }
                topic_config::find(name)
                    .ok_or_else(|| invalid_config(ConfigError::Unknown(name.to_string())))?;
                let value = value
                    .clone()
                    .ok_or_else(|| invalid_config(ConfigError::Null(name.to_string())))?;
                set.insert(name.clone(), value);
            }
            Ok(set)
        }
        Change::Incremental(ops) => {
            let mut set = cur.set.clone();
            for (name, op, value) in ops {
                if let Some(e) = dup(name) {
                    return Err(e);
                }
                let d = topic_config::find(name)
                    .ok_or_else(|| invalid_config(ConfigError::Unknown(name.to_string())))?;
                let given = || {
                    value
                        .clone()
                        .ok_or_else(|| invalid_config(ConfigError::Null(name.to_string())))
                };
                match *op {
                    SET => {
                        set.insert(name.clone(), given()?);
                    }
                    DELETE => {
                        set.remove(name);
                    }
                    APPEND | SUBTRACT => {
                        if !matches!(d.kind, Kind::List { .. }) {
                            let what = if *op == APPEND { "append" } else { "subtract" };
                            return Err(invalid_config(ConfigError::Invalid {
                                name: name.clone(),
                                value: value.clone().unwrap_or_default(),
                                why: format!("Config value {what} is not allowed for config key {name}: it is not a list"),
                            }));
                        }
                        let now = topic_config::value(d, &cur.config, &set);
                        let mut items: Vec<String> = now
                            .split(',')
                            .map(|i| i.trim().to_string())
                            .filter(|i| !i.is_empty())
                            .collect();
                        let given = given()?;
                        for item in given.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                            if *op == APPEND {
                                if !items.iter().any(|i| i == item) {
                                    items.push(item.to_string());
                                }
                            } else {
                                items.retain(|i| i != item);
                            }
                        }
                        set.insert(name.clone(), items.join(","));
                    }
                    other => {
                        return Err(refusal(
                            ErrorCode::InvalidRequest.code(),
                            format!("Unknown config operation {other} for {name}"),
                        ))
                    }
                }
            }
            Ok(set)
        }
    }
}

/// What to do with one resource: answer now, or change this topic.
fn plan(ctx: &Ctx, kind: i8, name: &str, change: &Change) -> Result<Option<TopicMeta>, Refusal> {
    match kind {
        TOPIC => {
            // Topic rules: changing a topic's configs asks `create` of it (Kafka asks
            // ALTER_CONFIGS).
            if !ctx.may(crate::auth::acl::TopicOp::Create, name) {
                return Err(refusal(
                    crate::auth::sasl::TOPIC_AUTHORIZATION_FAILED,
                    format!("Not authorized to alter the configs of topic {name}"),
                ));
            }
            let Some(cur) = ctx.topics.get(name) else {
                return Err(refusal(
                    ErrorCode::UnknownTopicOrPartition.code(),
                    format!("Topic {name} does not exist"),
                ));
            };
            let set = changed_set(cur, change)?;
            let meta = cur
                .changed(ctx.node.cfg.topic_defaults(), &set)
                .map_err(invalid_config)?;
            Ok(Some(meta))
        }
        BROKER => {
            if !name.is_empty() && name != NODE_ID.to_string() {
                return Err(refusal(
                    ErrorCode::InvalidRequest.code(),
                    format!("Unexpected broker id, expected {NODE_ID} or empty string, but received {name}"),
                ));
            }
            let names: Vec<&str> = match change {
                Change::Replace(c) => c.iter().map(|(n, _)| n.as_str()).collect(),
                Change::Incremental(c) => c.iter().map(|(n, ..)| n.as_str()).collect(),
            };
            if names.is_empty() {
                return Ok(None);
            }
            let known = broker_config_names();
            let unknown: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !known.contains(n))
                .collect();
            if !unknown.is_empty() {
                return Err(refusal(
                    ResponseError::InvalidConfig.code(),
                    format!("Unknown broker configs: {}", unknown.join(", ")),
                ));
            }
            Err(refusal(
                ErrorCode::InvalidRequest.code(),
                format!(
                    "Cannot update these configs dynamically: {}. pinion's broker configs are its command-line flags, read at start-up (DescribeConfigs names the flag of each).",
                    names.join(", ")
                ),
            ))
        }
        other => Err(refusal(
            ErrorCode::InvalidRequest.code(),
            format!("Resource type {other} has no configs pinion can change"),
        )),
    }
}

/// Change the configs of `resources` (type, name, change); `body` builds the response from
/// each resource's outcome, in request order.
pub(crate) fn alter(
    ctx: &Ctx,
    r: Req,
    resources: Vec<(i8, StrBytes, Change)>,
    validate_only: bool,
    body: fn(Vec<Outcome>) -> ResponseKind,
) -> Act {
    let mut plans: Vec<(i8, StrBytes, Result<Option<TopicMeta>, Refusal>)> = Vec::new();
    for (k, (kind, name, change)) in resources.iter().enumerate() {
        let dup = resources[..k]
            .iter()
            .any(|(t, n, _)| t == kind && n.as_str() == name.as_str());
        let p = if dup {
            Err(refusal(
                ErrorCode::InvalidRequest.code(),
                format!("Duplicate resource in request: {}", name.as_str()),
            ))
        } else {
            plan(ctx, *kind, name.as_str(), change)
        };
        plans.push((*kind, name.clone(), p));
    }
    let to_change: Vec<TopicMeta> = if validate_only {
        Vec::new()
    } else {
        plans
            .iter()
            .filter_map(|(_, _, p)| p.as_ref().ok().cloned().flatten())
            .collect()
    };
    let done: Created = Box::new(move |errors: &[i16]| {
        let mut k = 0;
        let outcomes = plans
            .iter()
            .map(|(kind, name, p)| {
                let (code, message) = match p {
                    Err(e) => (e.code, e.message.clone()),
                    Ok(Some(_)) if !validate_only => {
                        k += 1;
                        let e = errors.get(k - 1).copied().unwrap_or(0);
                        (e, hop_message(e))
                    }
                    Ok(_) => (0, None),
                };
                (*kind, name.clone(), code, message)
            })
            .collect();
        crate::kafka::encode::encode_or_error(r.key, r.version, r.cid, &body(outcomes))
            .unwrap_or_default()
    });
    CreateRounds::changes(ctx, to_change, done).launch(ctx)
}

pub fn handle(ctx: &Ctx, r: Req, a: AlterConfigsRequest) -> Act {
    let resources = a
        .resources
        .into_iter()
        .map(|res| {
            let configs = res
                .configs
                .into_iter()
                .map(|c| (c.name.to_string(), c.value.map(|v| v.to_string())))
                .collect();
            (
                res.resource_type,
                res.resource_name,
                Change::Replace(configs),
            )
        })
        .collect();
    alter(ctx, r, resources, a.validate_only, |outcomes| {
        let responses = outcomes
            .into_iter()
            .map(|(kind, name, code, message)| {
                AlterConfigsResourceResponse::default()
                    .with_resource_type(kind)
                    .with_resource_name(name)
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string))
            })
            .collect();
        ResponseKind::AlterConfigs(AlterConfigsResponse::default().with_responses(responses))
    })
}

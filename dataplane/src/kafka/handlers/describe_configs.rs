//! DescribeConfigs (v1-v4): a topic's configs from this shard's copy of the topic table,
//! every config Kafka documents (`log/topic_config.rs`) with its source (TOPIC_CONFIG where
//! the topic set it, DEFAULT_CONFIG otherwise); the broker's configs from the node's flags,
//! under Kafka's names (STATIC_BROKER_CONFIG where a flag changed the default).

use clap::Parser;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::Req;
use crate::auth::acl::TopicOp;
use crate::config::Config;
use crate::kafka::{reply, Ctx, NODE_ID};
use crate::limits::INDEX_INTERVAL_BYTES;
use crate::log::commit::Fsync;
use crate::log::topic_config::{self, Def, Kind, Use, TOPIC_CONFIGS};
use crate::log::topics::TopicMeta;
use crate::proto::kafka::ErrorCode;
use crate::shard::conn::Conn;
use crate::shard::Act;

/// Kafka's resource types.
pub(crate) const TOPIC: i8 = 2;
pub(crate) const BROKER: i8 = 4;

/// Kafka's config sources.
pub const TOPIC_CONFIG: i8 = 1;
pub const STATIC_BROKER_CONFIG: i8 = 4;
pub const DEFAULT_CONFIG: i8 = 5;

/// Every topic config of `m`: its definition, value and source.
pub(crate) fn topic_entries(
    m: &TopicMeta,
) -> impl Iterator<Item = (&'static Def, String, i8)> + '_ {
    TOPIC_CONFIGS.iter().map(|d| {
        let source = if m.set.contains_key(d.name) {
            TOPIC_CONFIG
        } else {
            DEFAULT_CONFIG
        };
        (d, topic_config::value(d, &m.config, &m.set), source)
    })
}

/// One described config.
struct Entry {
    name: &'static str,
    value: String,
    source: i8,
    read_only: bool,
    kind: Kind,
    doc: &'static str,
}

/// A topic config's broker-wide synonym, as Kafka names it (DescribeConfigs lists it among
/// the synonyms, and a topic that does not set the config takes the broker's value).
fn broker_synonym(topic_config: &str) -> Option<&'static str> {
    Some(match topic_config {
        "retention.ms" => "log.retention.ms",
        "retention.bytes" => "log.retention.bytes",
        "segment.bytes" => "log.segment.bytes",
        "segment.ms" => "log.roll.ms",
        "max.message.bytes" => "message.max.bytes",
        "cleanup.policy" => "log.cleanup.policy",
        "compression.type" => "compression.type",
        "min.insync.replicas" => "min.insync.replicas",
        "flush.ms" => "log.flush.interval.ms",
        "flush.messages" => "log.flush.interval.messages",
        "index.interval.bytes" => "log.index.interval.bytes",
        _ => return None,
    })
}

/// A config's synonyms, most specific first: (name, value, source).
type Synonyms = Vec<(&'static str, String, i8)>;

/// A topic's configs, each with its synonyms, most specific first: the topic's own value
/// where it sets one, then the broker's (its flag, or the default).
fn topic(m: &TopicMeta, brokers: &[Entry]) -> Vec<(Entry, Synonyms)> {
    topic_entries(m)
        .map(|(d, value, source)| {
            let broker = broker_synonym(d.name).and_then(|b| brokers.iter().find(|e| e.name == b));
            let mut synonyms = Vec::new();
            if source == TOPIC_CONFIG {
                synonyms.push((d.name, value.clone(), TOPIC_CONFIG));
            }
            // A topic that does not set it has the broker's source (the flag's, or the
            // default) where pinion honours it.
            let source = match broker {
                Some(b) if source != TOPIC_CONFIG && d.used == Use::Honoured => b.source,
                _ => source,
            };
            if let Some(b) = broker {
                synonyms.push((b.name, b.value.clone(), b.source));
            } else if source == DEFAULT_CONFIG {
                synonyms.push((d.name, value.clone(), DEFAULT_CONFIG));
            }
            let e = Entry {
                name: d.name,
                value,
                source,
                read_only: false,
                kind: d.kind,
                doc: match d.used {
                    Use::Honoured => "Honoured by pinion.",
                    Use::Stored => "Kept by pinion; it has no effect there.",
                },
            };
            (e, synonyms)
        })
        .collect()
}

/// The broker configs DescribeConfigs lists (AlterConfigs names them in its refusal).
pub(crate) fn broker_config_names() -> Vec<&'static str> {
    Config::try_parse_from(["pinion"])
        .map(|d| broker_values(&d, 0).into_iter().map(|(n, ..)| n).collect())
        .unwrap_or_default()
}

/// The broker configs pinion has, under Kafka's names: (name, value, kind, what sets it).
fn broker_values(cfg: &Config, kafka_port: u16) -> Vec<(&'static str, String, Kind, &'static str)> {
    const NEVER: &str = "9223372036854775807";
    let long = Kind::Long { min: i64::MIN };
    let int = Kind::Int { min: 0 };
    let s = Kind::Str { one_of: &[] };
    let (host, port) = cfg.advertised(kafka_port);
    let (flush_messages, flush_ms) = match cfg.fsync {
        Fsync::Always => ("1".to_string(), NEVER.to_string()),
        Fsync::Interval(ms) => (NEVER.to_string(), ms.to_string()),
        Fsync::Never => (NEVER.to_string(), NEVER.to_string()),
    };
    vec![
        ("broker.id", NODE_ID.to_string(), int, "fixed"),
        ("node.id", NODE_ID.to_string(), int, "fixed"),
        (
            "listeners",
            format!("PLAINTEXT://{}", cfg.kafka_listen),
            s,
            "--kafka-listen",
        ),
        (
            "advertised.listeners",
            format!("PLAINTEXT://{host}:{port}"),
            s,
            "--advertise",
        ),
        (
            "socket.request.max.bytes",
            cfg.max_request_bytes.to_string(),
            int,
            "--max-request-bytes",
        ),
        (
            "message.max.bytes",
            cfg.max_message_bytes.to_string(),
            int,
            "--max-message-bytes",
        ),
        (
            "log.dirs",
            cfg.data_dir.join("log").display().to_string(),
            s,
            "--data-dir",
        ),
        (
            "log.segment.bytes",
            cfg.segment_bytes.to_string(),
            int,
            "--segment-bytes",
        ),
        (
            "log.roll.ms",
            cfg.segment_ms.to_string(),
            long,
            "--segment-ms",
        ),
        (
            "log.retention.bytes",
            cfg.retention_bytes
                .map_or("-1".to_string(), |b| b.to_string()),
            long,
            "--retention-bytes",
        ),
        (
            "log.retention.ms",
            cfg.retention_ms.to_string(),
            long,
            "--retention-ms",
        ),
        (
            "log.flush.interval.messages",
            flush_messages,
            long,
            "--fsync",
        ),
        ("log.flush.interval.ms", flush_ms, long, "--fsync"),
        (
            "log.cleanup.policy",
            "delete".into(),
            Kind::List { one_of: &[] },
            "fixed",
        ),
        (
            "log.index.interval.bytes",
            INDEX_INTERVAL_BYTES.to_string(),
            int,
            "fixed",
        ),
        (
            "auto.create.topics.enable",
            cfg.auto_create_topics.to_string(),
            Kind::Bool,
            "--auto-create-topics",
        ),
        (
            "num.partitions",
            cfg.default_partitions.to_string(),
            int,
            "--default-partitions",
        ),
        ("default.replication.factor", "1".into(), int, "fixed"),
        ("min.insync.replicas", "1".into(), int, "fixed"),
        ("compression.type", "producer".into(), s, "fixed"),
        (
            "max.connections",
            cfg.max_kafka_connections.to_string(),
            int,
            "--max-kafka-connections",
        ),
        // pinion's own: the partitions the node may hold (the fd budget).
        (
            "max.partitions",
            cfg.max_partitions.to_string(),
            long,
            "--max-partitions (0 = derived from `ulimit -n`)",
        ),
    ]
}

fn broker(cfg: &Config, kafka_port: u16) -> Vec<Entry> {
    // What the flags give when none is passed: a value that differs was set.
    let defaults = Config::try_parse_from(["pinion"])
        .map(|d| broker_values(&d, kafka_port))
        .unwrap_or_default();
    broker_values(cfg, kafka_port)
        .into_iter()
        .map(|(name, value, kind, doc)| {
            let default = defaults.iter().any(|(n, v, ..)| *n == name && *v == value);
            Entry {
                name,
                value,
                source: if default {
                    DEFAULT_CONFIG
                } else {
                    STATIC_BROKER_CONFIG
                },
                read_only: true,
                kind,
                doc,
            }
        })
        .collect()
}

pub fn handle(ctx: &Ctx, conn: &mut Conn, r: Req, d: DescribeConfigsRequest) -> Act {
    let (synonyms, docs) = (
        d.include_synonyms,
        d.include_documentation && r.version >= 3,
    );
    let results = d
        .resources
        .into_iter()
        .map(|res| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone())
                .with_error_message(None);
            let error = |e: i16, why: String| {
                DescribeConfigsResult::default()
                    .with_resource_type(res.resource_type)
                    .with_resource_name(res.resource_name.clone())
                    .with_error_code(e)
                    .with_error_message(Some(StrBytes::from_string(why)))
            };
            let entries = match res.resource_type {
                TOPIC if !ctx.may(TopicOp::Describe, res.resource_name.as_str()) => {
                    return error(
                        crate::auth::sasl::TOPIC_AUTHORIZATION_FAILED,
                        format!("Not authorized to describe topic {}", res.resource_name.as_str()),
                    )
                }
                TOPIC => match ctx.topics.get(res.resource_name.as_str()) {
                    Some(m) => topic(m, &broker(&ctx.node.cfg, ctx.node.kafka_port)),
                    None => {
                        return error(
                            ErrorCode::UnknownTopicOrPartition.code(),
                            format!("Topic {} does not exist", res.resource_name.as_str()),
                        )
                    }
                },
                BROKER => {
                    let name = res.resource_name.as_str();
                    if !name.is_empty() && name != NODE_ID.to_string() {
                        return error(
                            ErrorCode::InvalidRequest.code(),
                            format!("Unexpected broker id, expected {NODE_ID} or empty string, but received {name}"),
                        );
                    }
                    broker(&ctx.node.cfg, ctx.node.kafka_port)
                        .into_iter()
                        .map(|e| {
                            let own = vec![(e.name, e.value.clone(), e.source)];
                            (e, own)
                        })
                        .collect()
                }
                other => {
                    return error(
                        ErrorCode::InvalidRequest.code(),
                        format!("Resource type {other} is not served"),
                    )
                }
            };
            let wanted = |name: &str| {
                res.configuration_keys
                    .as_ref()
                    .is_none_or(|ks| ks.iter().any(|k| k.as_str() == name))
            };
            base.with_configs(
                entries
                    .into_iter()
                    .filter(|(e, _)| wanted(e.name))
                    .map(|(e, own)| {
                        let value = Some(StrBytes::from_string(e.value));
                        let mut c = DescribeConfigsResourceResult::default()
                            .with_name(StrBytes::from_static_str(e.name))
                            .with_value(value.clone())
                            .with_read_only(e.read_only)
                            .with_config_source(e.source);
                        if synonyms {
                            c = c.with_synonyms(
                                own.into_iter()
                                    .map(|(name, value, source)| {
                                        DescribeConfigsSynonym::default()
                                            .with_name(StrBytes::from_static_str(name))
                                            .with_value(Some(StrBytes::from_string(value)))
                                            .with_source(source)
                                    })
                                    .collect(),
                            );
                        }
                        if r.version >= 3 {
                            c = c.with_config_type(e.kind.code());
                        }
                        if docs {
                            c = c.with_documentation(Some(StrBytes::from_static_str(e.doc)));
                        }
                        c
                    })
                    .collect(),
            )
        })
        .collect();
    let body = DescribeConfigsResponse::default().with_results(results);
    reply(
        conn,
        r.key,
        r.version,
        r.cid,
        ResponseKind::DescribeConfigs(body),
    )
}

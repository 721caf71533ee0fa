//! Metadata (v0-v12): this node as the only broker and the leader of every partition; under
//! a control plane (issue 12), every node of the map, each partition led by its owner.
//! Unknown topics are created when auto-creation allows it (and their names are valid);
//! otherwise listed with UNKNOWN_TOPIC_OR_PARTITION. A topic another request is creating
//! right then (its home holds the claim) is listed with LEADER_NOT_AVAILABLE, as Kafka
//! lists a topic being created; clients ask again.
//!
//! Under a control plane, the map's topics are listed too, with the map's partition counts
//! (before this node has created its copy), and an unknown topic that auto-creation allows
//! is asked of the control plane (`cluster/topics.rs`) and listed LEADER_NOT_AVAILABLE, as
//! Kafka lists a topic it is auto-creating; the client asks again and finds it once the
//! map has it.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use kafka_protocol::ResponseError;

use super::create_topics::{topic_meta, CreateRounds, Created};
use super::Req;
use crate::auth::acl::TopicOp;
use crate::auth::sasl::TOPIC_AUTHORIZATION_FAILED;
use crate::kafka::{encode, Ctx, NODE_ID};
use crate::log::topics::TopicMeta;
use crate::proto::kafka::ErrorCode;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, m: MetadataRequest) -> Act {
    let names: Option<Vec<String>> = m.topics.map(|ts| {
        ts.into_iter()
            .filter_map(|t| t.name.map(|n| n.0.to_string()))
            .collect()
    });
    let auto = ctx.node.cfg.auto_create_topics && (r.version < 4 || m.allow_auto_topic_creation);
    let (host, port) = ctx.advertised();
    // Topic rules (issue 13, f-sec): a listing shows only the topics the principal may
    // describe; a topic named but not describable is answered TOPIC_AUTHORIZATION_FAILED.
    let named = names.is_some();
    // Under a control plane (and not the node's own call): the map's topics.
    let view = ctx.node.cluster.managed.then(|| ctx.node.cluster.current());
    let map_topics = view.as_ref().filter(|_| !r.internal).map(|v| &v.topics);
    let names: Vec<String> = names.unwrap_or_else(|| {
        let mut all: std::collections::BTreeSet<&String> = ctx.topics.keys().collect();
        all.extend(map_topics.into_iter().flat_map(|t| t.keys()));
        all.into_iter()
            .filter(|n| ctx.may(TopicOp::Describe, n))
            .cloned()
            .collect()
    });
    let mut create = Vec::new();
    // Per topic: its partition count, or its error code; None for one being auto-created
    // here (the k-th of `create`), answered once the creation is.
    let mut listed: Vec<(String, Option<Result<i32, i16>>)> = Vec::new();
    for n in names {
        let in_map = map_topics.and_then(|t| t.get(&n));
        let r = match ctx.topics.get(&n) {
            _ if named && !ctx.may(TopicOp::Describe, &n) => Some(Err(TOPIC_AUTHORIZATION_FAILED)),
            _ if in_map.is_some() => in_map.map(|t| Ok(t.partitions as i32)),
            Some(m) => Some(Ok(m.partitions)),
            None if auto && map_topics.is_some() && ctx.may(TopicOp::Create, &n) => {
                Some(auto_create_in_cluster(ctx, &n))
            }
            None if !ctx.may(TopicOp::Create, &n) => {
                Some(Err(ErrorCode::UnknownTopicOrPartition.code()))
            }
            None if auto && !create.iter().any(|m: &TopicMeta| m.name == n) => {
                match topic_meta(ctx, &n, -1, -1, &[]) {
                    Ok(m) => {
                        create.push(m);
                        None
                    }
                    Err(e) => Some(Err(e.code)),
                }
            }
            None => Some(Err(ErrorCode::UnknownTopicOrPartition.code())),
        };
        listed.push((n, r));
    }
    let partitions: Vec<i32> = create.iter().map(|m| m.partitions).collect();
    // `--kafka-shard-ports`: each shard its own broker, leading what it owns.
    let shards = crate::cluster::kafka_ports::shard_brokers(ctx.node, &host, ctx.tls);
    let done: Created = Box::new(move |errors: &[i16]| {
        let mut created = errors.iter().zip(&partitions).map(|(&e, &p)| match e {
            0 => Ok(p),
            // Another request holds the claim: the topic is on its way.
            e if e == ErrorCode::TopicAlreadyExists.code() => {
                Err(ResponseError::LeaderNotAvailable.code())
            }
            e => Err(e),
        });
        let broker = |id: i32, host: &str, port: u16| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port as i32)
        };
        let (brokers, controller) = match &view {
            Some(v) => (
                crate::cluster::kafka::brokers(v)
                    .iter()
                    .map(|(id, h, p)| broker(*id, h, *p))
                    .collect(),
                v.me.map_or(-1, |i| v.nodes[i].id as i32),
            ),
            None => match &shards {
                Some(s) => (
                    s.brokers
                        .iter()
                        .map(|(id, h, p)| broker(*id, h, *p))
                        .collect(),
                    s.controller(),
                ),
                None => (vec![broker(NODE_ID, &host, port)], NODE_ID),
            },
        };
        let leader = |topic: &str, p: i32| match (&view, &shards) {
            (Some(v), _) => crate::cluster::kafka::leader(v, topic, p),
            (None, Some(s)) => s.leader(topic, p),
            (None, None) => NODE_ID,
        };
        let topics = listed
            .iter()
            .map(|(n, r)| {
                let t = MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(n.clone()))));
                let r = match r {
                    Some(r) => *r,
                    None => created
                        .next()
                        .unwrap_or(Err(ErrorCode::KafkaStorageError.code())),
                };
                match r {
                    Err(e) => t.with_error_code(e),
                    Ok(count) => t.with_partitions(
                        (0..count)
                            .map(|p| {
                                let l = BrokerId(leader(n, p));
                                MetadataResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_leader_id(l)
                                    .with_replica_nodes(vec![l])
                                    .with_isr_nodes(vec![l])
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        let body = ResponseKind::Metadata(
            MetadataResponse::default()
                .with_brokers(brokers)
                .with_cluster_id(Some(StrBytes::from_static_str("pinion")))
                .with_controller_id(BrokerId(controller))
                .with_topics(topics),
        );
        encode::encode_or_error(r.key, r.version, r.cid, &body).unwrap_or_default()
    });
    CreateRounds::new(ctx, create, done).launch(ctx)
}

/// Auto-creation under a control plane: the topic (with the node's defaults) is asked of
/// the control plane once, and listed LEADER_NOT_AVAILABLE meanwhile.
fn auto_create_in_cluster(ctx: &Ctx, name: &str) -> Result<i32, i16> {
    let m = topic_meta(ctx, name, -1, -1, &[]).map_err(|e| e.code)?;
    let requests = &ctx.node.cluster.topics;
    if !requests.creating(name) {
        // Nobody waits for this ticket: the next Metadata finds the topic in the map.
        let _ = requests.ask(crate::cluster::topics::TopicOp::Create {
            name: m.name,
            partitions: m.partitions as u32,
            configs: m.set,
        });
    }
    Err(ResponseError::LeaderNotAvailable.code())
}

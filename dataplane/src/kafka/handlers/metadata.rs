//! Metadata (v0-v12): this node as the only broker and the leader of every partition.
//! Unknown topics are created when auto-creation allows it (and their names are valid);
//! otherwise listed with UNKNOWN_TOPIC_OR_PARTITION.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::create_topics::{create_parts, topic_meta};
use super::Req;
use crate::kafka::rounds::LogRounds;
use crate::kafka::{finish, Ctx, NODE_ID};
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
    let (host, port) = ctx.node.cfg.advertised(ctx.node.kafka_port);
    let names: Vec<String> = names.unwrap_or_else(|| ctx.topics.keys().cloned().collect());
    let mut create = Vec::new();
    let mut listed: Vec<(String, Result<i32, ErrorCode>)> = Vec::new();
    for n in names {
        let r = match ctx.topics.get(&n) {
            Some(m) => Ok(m.partitions),
            None if auto && !create.iter().any(|m: &TopicMeta| m.name == n) => {
                topic_meta(ctx, &n, -1, -1, &[]).map(|m| {
                    let p = m.partitions;
                    create.push(m);
                    p
                })
            }
            None => Err(ErrorCode::UnknownTopicOrPartition),
        };
        listed.push((n, r));
    }
    let parts = create_parts(ctx, &create);
    let done = finish(move |_, _| {
        let broker = MetadataResponseBroker::default()
            .with_node_id(BrokerId(NODE_ID))
            .with_host(StrBytes::from_string(host.clone()))
            .with_port(port as i32);
        let topics = listed
            .iter()
            .map(|(n, r)| {
                let t = MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(n.clone()))));
                match r {
                    Err(e) => t.with_error_code(e.code()),
                    Ok(count) => t.with_partitions(
                        (0..*count)
                            .map(|p| {
                                MetadataResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_leader_id(BrokerId(NODE_ID))
                                    .with_replica_nodes(vec![BrokerId(NODE_ID)])
                                    .with_isr_nodes(vec![BrokerId(NODE_ID)])
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        let body = ResponseKind::Metadata(
            MetadataResponse::default()
                .with_brokers(vec![broker])
                .with_cluster_id(Some(StrBytes::from_static_str("pinion")))
                .with_controller_id(BrokerId(NODE_ID))
                .with_topics(topics),
        );
        r.answer(body)
    });
    ctx.launch(LogRounds::new(parts, done))
}

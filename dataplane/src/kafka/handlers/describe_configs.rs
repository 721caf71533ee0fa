//! DescribeConfigs (v1-v4): topic configs from this shard's copy of the topic table; the
//! broker has none to show.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::Req;
use crate::kafka::{reply, Ctx};
use crate::proto::kafka::ErrorCode;
use crate::shard::conn::Conn;
use crate::shard::Act;

/// Kafka's resource type for a topic.
const TOPIC: i8 = 2;

pub fn handle(ctx: &Ctx, conn: &mut Conn, r: Req, d: DescribeConfigsRequest) -> Act {
    let results = d
        .resources
        .into_iter()
        .map(|res| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            if res.resource_type != TOPIC {
                return base;
            }
            let Some(m) = ctx.topics.get(res.resource_name.as_str()) else {
                return base.with_error_code(ErrorCode::UnknownTopicOrPartition.code());
            };
            let opt = |v: Option<u64>| v.map_or("-1".to_string(), |x| x.to_string());
            let all = [
                ("retention.ms", opt(m.config.retention_ms)),
                ("retention.bytes", opt(m.config.retention_bytes)),
                ("segment.bytes", m.config.segment_bytes.to_string()),
                ("segment.ms", m.config.segment_ms.to_string()),
                ("cleanup.policy", "delete".to_string()),
                (
                    "max.message.bytes",
                    ctx.node.cfg.max_message_bytes.to_string(),
                ),
            ];
            let wanted = |name: &str| {
                res.configuration_keys
                    .as_ref()
                    .is_none_or(|ks| ks.iter().any(|k| k.as_str() == name))
            };
            base.with_configs(
                all.into_iter()
                    .filter(|(k, _)| wanted(k))
                    .map(|(k, v)| {
                        DescribeConfigsResourceResult::default()
                            .with_name(StrBytes::from_static_str(k))
                            .with_value(Some(StrBytes::from_string(v)))
                            .with_config_source(1)
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

//! IncrementalAlterConfigs (v0-v1): SET, DELETE, APPEND and SUBTRACT on a topic's configs
//! (APPEND and SUBTRACT only for list configs, as Kafka). The rest is AlterConfigs'
//! (`alter_configs.rs`).

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::alter_configs::{alter, Change};
use super::Req;
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, a: IncrementalAlterConfigsRequest) -> Act {
    let resources = a
        .resources
        .into_iter()
        .map(|res| {
            let ops = res
                .configs
                .into_iter()
                .map(|c| {
                    (
                        c.name.to_string(),
                        c.config_operation,
                        c.value.map(|v| v.to_string()),
                    )
                })
                .collect();
            (
                res.resource_type,
                res.resource_name,
                Change::Incremental(ops),
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
        ResponseKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsResponse::default().with_responses(responses),
        )
    })
}

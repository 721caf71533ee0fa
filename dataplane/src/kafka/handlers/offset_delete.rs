//! OffsetDelete (v0): remove a group's offsets for some partitions (tombstones in its
//! offsets file), except for topics the group, while active, is subscribed to.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    OffsetDeleteRequest, OffsetDeleteResponse, ResponseKind, TopicName,
};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::err;
use crate::kafka::groups::ops::{GroupOp, GroupRes, OffsetDeleteReq, OffsetDeleteRes};
use crate::kafka::groups::rounds::{encode, launch};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, d: OffsetDeleteRequest) -> Act {
    let group = d.group_id.0.to_string();
    let layout: Vec<(TopicName, Vec<i32>)> = d
        .topics
        .into_iter()
        .map(|t| {
            (
                t.name,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let partitions = layout
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(|&p| (t.0.to_string(), p)))
        .collect();
    let req = OffsetDeleteReq {
        group: group.clone(),
        partitions,
    };
    let shard = coordinator(ctx.owner, &group);
    launch(
        ctx,
        vec![(shard, GroupOp::OffsetDelete(req))],
        move |mut res| {
            let o = match res.pop() {
                Some(GroupRes::OffsetDelete(o)) => o,
                _ => OffsetDeleteRes {
                    error: err::UNKNOWN_SERVER_ERROR,
                    partitions: Vec::new(),
                },
            };
            let mut body = OffsetDeleteResponse::default().with_error_code(o.error);
            if o.error == err::NONE {
                let mut k = 0;
                body.topics = layout
                    .iter()
                    .map(|(name, ps)| {
                        let partitions = ps
                            .iter()
                            .map(|&p| {
                                let e = o.partitions.get(k).copied().unwrap_or(err::NONE);
                                k += 1;
                                OffsetDeleteResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(e)
                            })
                            .collect();
                        OffsetDeleteResponseTopic::default()
                            .with_name(name.clone())
                            .with_partitions(partitions)
                    })
                    .collect();
            }
            encode(r, ResponseKind::OffsetDelete(body))
        },
    )
}

//! OffsetFetch (v1-v8): committed offsets from each group's coordinator. v8 asks for
//! several groups at once: one part per group, each on its own coordinator.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetFetchRequest, OffsetFetchResponse, ResponseKind, TopicName,
};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::err;
use crate::kafka::groups::ops::{FetchReq, FetchRes, GroupOp, GroupRes};
use crate::kafka::groups::rounds::{encode, launch, sb};
use crate::kafka::Ctx;
use crate::shard::Act;

fn result(r: Option<GroupRes>) -> FetchRes {
    match r {
        Some(GroupRes::Fetch(f)) => f,
        _ => FetchRes {
            error: err::UNKNOWN_SERVER_ERROR,
            topics: Vec::new(),
        },
    }
}

pub fn handle(ctx: &Ctx, r: Req, f: OffsetFetchRequest) -> Act {
    let v = r.version;
    if v >= 8 {
        let names: Vec<GroupId> = f.groups.iter().map(|g| g.group_id.clone()).collect();
        let parts = f
            .groups
            .into_iter()
            .map(|g| {
                let group = g.group_id.0.to_string();
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                (
                    coordinator(ctx.owner, &group),
                    GroupOp::Fetch(FetchReq { group, topics }),
                )
            })
            .collect();
        return launch(ctx, parts, move |res| {
            let mut res = res.into_iter();
            let groups = names
                .iter()
                .map(|name| {
                    let f = result(res.next());
                    let topics = f
                        .topics
                        .into_iter()
                        .map(|(t, ps)| {
                            let partitions = ps
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p.partition)
                                        .with_committed_offset(p.offset)
                                        .with_committed_leader_epoch(p.leader_epoch)
                                        .with_metadata(Some(sb(p.metadata)))
                                        .with_error_code(p.error)
                                })
                                .collect();
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(sb(t)))
                                .with_partitions(partitions)
                        })
                        .collect();
                    OffsetFetchResponseGroup::default()
                        .with_group_id(name.clone())
                        .with_topics(topics)
                        .with_error_code(f.error)
                })
                .collect();
            encode(
                r,
                ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_groups(groups)),
            )
        });
    }
    let group = f.group_id.0.to_string();
    let topics = f.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let shard = coordinator(ctx.owner, &group);
    launch(
        ctx,
        vec![(shard, GroupOp::Fetch(FetchReq { group, topics }))],
        move |mut res| {
            let f = result(res.pop());
            let topics = f
                .topics
                .into_iter()
                .map(|(t, ps)| {
                    let partitions = ps
                        .into_iter()
                        .map(|p| {
                            let mut out = OffsetFetchResponsePartition::default()
                                .with_partition_index(p.partition)
                                .with_committed_offset(p.offset)
                                .with_metadata(Some(sb(p.metadata)))
                                .with_error_code(if v < 2 && f.error != err::NONE {
                                    f.error
                                } else {
                                    p.error
                                });
                            if v >= 5 {
                                out.committed_leader_epoch = p.leader_epoch;
                            }
                            out
                        })
                        .collect();
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(partitions)
                })
                .collect();
            let mut body = OffsetFetchResponse::default().with_topics(topics);
            if v >= 2 {
                body.error_code = f.error;
            }
            encode(r, ResponseKind::OffsetFetch(body))
        },
    )
}

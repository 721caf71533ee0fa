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
use crate::kafka::groups::rounds::{encode, launch, per_shard, sb};
use crate::kafka::Ctx;
use crate::shard::Act;

fn failed() -> FetchRes {
    FetchRes {
        error: err::UNKNOWN_SERVER_ERROR,
        topics: Vec::new(),
    }
}

/// Each part's answers, to take from by (part, index).
fn answers(res: Vec<GroupRes>) -> Vec<Vec<Option<FetchRes>>> {
    res.into_iter()
        .map(|r| match r {
            GroupRes::Fetch(f) => f.into_iter().map(Some).collect(),
            _ => Vec::new(),
        })
        .collect()
}

pub fn handle(ctx: &Ctx, r: Req, f: OffsetFetchRequest) -> Act {
    let v = r.version;
    if v >= 8 {
        let names: Vec<GroupId> = f.groups.iter().map(|g| g.group_id.clone()).collect();
        let (parts, place) = per_shard(f.groups.into_iter().map(|g| {
            let group = g.group_id.0.to_string();
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let require_stable = f.require_stable;
            (
                coordinator(ctx.owner, &group),
                FetchReq {
                    group,
                    topics,
                    require_stable,
                },
            )
        }));
        let parts = parts
            .into_iter()
            .map(|(s, reqs)| (s, GroupOp::Fetch(reqs)))
            .collect();
        return launch(ctx, parts, move |res| {
            let mut res = answers(res);
            let groups = names
                .iter()
                .zip(&place)
                .map(|(name, &(k, j))| {
                    let f = res
                        .get_mut(k)
                        .and_then(|v| v.get_mut(j))
                        .and_then(Option::take)
                        .unwrap_or_else(failed);
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
        vec![(
            shard,
            GroupOp::Fetch(vec![FetchReq {
                group,
                topics,
                require_stable: f.require_stable,
            }]),
        )],
        move |res| {
            let f = answers(res)
                .into_iter()
                .flatten()
                .next()
                .flatten()
                .unwrap_or_else(failed);
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

//! OffsetCommit (v2-v8): a group's offsets, written to its coordinator's offsets file
//! (`kafka/groups/store.rs`) and answered once durable.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, ResponseKind, TopicName,
};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::err;
use crate::kafka::groups::ops::{CommitOffset, CommitReq, GroupOp, GroupRes};
use crate::kafka::groups::rounds::{encode, launch};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, c: OffsetCommitRequest) -> Act {
    let group = c.group_id.0.to_string();
    let mut layout: Vec<(TopicName, Vec<i32>)> = Vec::new();
    let mut offsets = Vec::new();
    for t in c.topics {
        let mut idx = Vec::new();
        for p in t.partitions {
            idx.push(p.partition_index);
            offsets.push(CommitOffset {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if r.version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.map(|m| m.to_string()),
            });
        }
        layout.push((t.name, idx));
    }
    let n = offsets.len();
    let req = CommitReq {
        group: group.clone(),
        generation: c.generation_id_or_member_epoch,
        member: c.member_id.to_string(),
        instance: c.group_instance_id.map(|i| i.to_string()),
        offsets,
    };
    let shard = coordinator(ctx.owner, &group);
    launch(ctx, vec![(shard, GroupOp::Commit(req))], move |mut res| {
        let errors = match res.pop() {
            Some(GroupRes::Commit(e)) if e.len() == n => e,
            _ => vec![err::UNKNOWN_SERVER_ERROR; n],
        };
        let mut k = 0;
        let topics = layout
            .iter()
            .map(|(name, idx)| {
                let partitions = idx
                    .iter()
                    .map(|&p| {
                        let e = errors[k];
                        k += 1;
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p)
                            .with_error_code(e)
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        encode(
            r,
            ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics)),
        )
    })
}

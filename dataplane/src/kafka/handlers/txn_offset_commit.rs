//! TxnOffsetCommit (v0-v3): offsets a transaction commits for a group, staged on the
//! group's coordinator (`kafka/groups/txn_offsets.rs`) and visible once the transaction
//! commits.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ResponseKind, TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::offset_commit::CommitLayout;
use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::ops::{CommitOffset, GroupOp, TxnCommitReq};
use crate::kafka::groups::rounds::{encode, launch};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, c: TxnOffsetCommitRequest) -> Act {
    let group = c.group_id.0.to_string();
    let mut layout = CommitLayout::default();
    let mut offsets = Vec::new();
    for t in c.topics {
        let mut idx = Vec::new();
        for p in t.partitions {
            idx.push(p.partition_index);
            offsets.push(CommitOffset {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if r.version >= 2 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.map(|m| m.to_string()),
            });
        }
        layout.0.push((t.name, idx));
    }
    let v3 = r.version >= 3;
    let req = TxnCommitReq {
        group: group.clone(),
        pid: c.producer_id.0,
        epoch: c.producer_epoch,
        generation: if v3 { c.generation_id } else { -1 },
        member: if v3 {
            c.member_id.to_string()
        } else {
            String::new()
        },
        instance: c.group_instance_id.filter(|_| v3).map(|i| i.to_string()),
        offsets,
    };
    let shard = coordinator(ctx.owner, &group);
    launch(ctx, vec![(shard, GroupOp::TxnCommit(req))], move |res| {
        let topics = layout.answer(
            res,
            |p, e| {
                TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(p)
                    .with_error_code(e)
            },
            |name, partitions| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(partitions)
            },
        );
        encode(
            r,
            ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics)),
        )
    })
}

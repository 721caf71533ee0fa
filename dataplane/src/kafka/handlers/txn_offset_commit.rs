//! TxnOffsetCommit (v0-v3): offsets a transaction commits for a group, staged on the
//! group's coordinator (`kafka/groups/txn_offsets.rs`) and visible once the transaction
//! commits.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    ResponseKind, TopicName, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::err;
use crate::kafka::groups::ops::{CommitOffset, GroupOp, GroupRes, TxnCommitReq};
use crate::kafka::groups::rounds::{encode, launch};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, c: TxnOffsetCommitRequest) -> Act {
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
                leader_epoch: if r.version >= 2 {
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
    launch(
        ctx,
        vec![(shard, GroupOp::TxnCommit(req))],
        move |mut res| {
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
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(e)
                        })
                        .collect();
                    TxnOffsetCommitResponseTopic::default()
                        .with_name(name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            encode(
                r,
                ResponseKind::TxnOffsetCommit(
                    TxnOffsetCommitResponse::default().with_topics(topics),
                ),
            )
        },
    )
}

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
                leader_epoch: if r.version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.map(|m| m.to_string()),
            });
        }
        layout.0.push((t.name, idx));
    }
    let req = CommitReq {
        group: group.clone(),
        generation: c.generation_id_or_member_epoch,
        member: c.member_id.to_string(),
        instance: c.group_instance_id.map(|i| i.to_string()),
        offsets,
    };
    let shard = coordinator(ctx.owner, &group);
    launch(ctx, vec![(shard, GroupOp::Commit(req))], move |res| {
        let topics = layout.answer(
            res,
            |p, e| {
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p)
                    .with_error_code(e)
            },
            |name, partitions| {
                OffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(partitions)
            },
        );
        encode(
            r,
            ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics)),
        )
    })
}

/// The topics and partitions of a commit (OffsetCommit or TxnOffsetCommit) in request
/// order: the coordinator answers one error per offset in that order.
#[derive(Default)]
pub(super) struct CommitLayout(pub(super) Vec<(TopicName, Vec<i32>)>);

impl CommitLayout {
    /// The response's topics: `res` is the coordinator's answer, one error per partition
    /// (all UNKNOWN_SERVER_ERROR when it is missing or the wrong length).
    pub(super) fn answer<P, T>(
        &self,
        mut res: Vec<GroupRes>,
        part: impl Fn(i32, i16) -> P,
        topic: impl Fn(TopicName, Vec<P>) -> T,
    ) -> Vec<T> {
        let n = self.0.iter().map(|(_, idx)| idx.len()).sum();
        let errors = match res.pop() {
            Some(GroupRes::Commit(e)) if e.len() == n => e,
            _ => vec![err::UNKNOWN_SERVER_ERROR; n],
        };
        let mut errors = errors.into_iter();
        self.0
            .iter()
            .map(|(name, idx)| {
                let partitions = idx
                    .iter()
                    .map(|&p| part(p, errors.next().unwrap_or(err::UNKNOWN_SERVER_ERROR)))
                    .collect();
                topic(name.clone(), partitions)
            })
            .collect()
    }
}

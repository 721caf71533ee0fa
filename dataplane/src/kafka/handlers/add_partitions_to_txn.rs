//! AddPartitionsToTxn (v0-v3): the partitions a transaction writes, logged by the
//! transactional id's coordinator (`kafka/txn/`) before the producer writes to them.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ResponseKind,
};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::ops::{GroupOp, GroupRes};
use crate::kafka::groups::rounds::{encode, launch};
use crate::kafka::txn::err;
use crate::kafka::txn::ops::{TxnOp, TxnRes};
use crate::kafka::Ctx;
use crate::shard::Act;

const FENCED_FROM: i16 = 2;

pub fn handle(ctx: &Ctx, r: Req, a: AddPartitionsToTxnRequest) -> Act {
    let id = a.v3_and_below_transactional_id.0.to_string();
    let mut partitions = Vec::new();
    let mut layout = Vec::new();
    for t in a.v3_and_below_topics {
        for &p in &t.partitions {
            partitions.push((t.name.0.to_string(), p));
        }
        layout.push((t.name, t.partitions));
    }
    let n = partitions.len();
    let op = TxnOp::AddPartitions {
        id: id.clone(),
        pid: a.v3_and_below_producer_id.0,
        epoch: a.v3_and_below_producer_epoch,
        partitions,
    };
    let shard = coordinator(ctx.owner, &id);
    launch(
        ctx,
        vec![(shard, GroupOp::Txn(Box::new(op)))],
        move |mut res| {
            let errors = match res.pop() {
                Some(GroupRes::Txn(TxnRes::Added(e))) if e.len() == n => e,
                _ => vec![err::COORDINATOR_NOT_AVAILABLE; n],
            };
            let mut k = 0;
            let topics = layout
                .iter()
                .map(|(name, ps)| {
                    let results = ps
                        .iter()
                        .map(|&p| {
                            let e = err::fenced_for(errors[k], r.version, FENCED_FROM);
                            k += 1;
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(e)
                        })
                        .collect();
                    AddPartitionsToTxnTopicResult::default()
                        .with_name(name.clone())
                        .with_results_by_partition(results)
                })
                .collect();
            let body =
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics);
            encode(r, ResponseKind::AddPartitionsToTxn(body))
        },
    )
}

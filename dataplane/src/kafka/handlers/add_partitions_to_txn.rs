//! AddPartitionsToTxn (v0-v3): the partitions a transaction writes, logged by the
//! transactional id's coordinator (`kafka/txn/`) before the producer writes to them, then
//! announced to each partition's owner (`LogOp::TxnBegin`), which from then on takes the
//! producer's transactional batches at that epoch, until the transaction's marker (what
//! KIP-890 has a partition leader verify). The answer comes after both hops.

use std::time::Instant;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ResponseKind, TopicName,
};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::ops::{GroupOp, GroupRes};
use crate::kafka::groups::rounds::encode;
use crate::kafka::txn::err;
use crate::kafka::txn::ops::{TxnOp, TxnRes};
use crate::kafka::Ctx;
use crate::log::ops::LogOp;
use crate::log::topics::partition_slot;
use crate::proto::resp::command::Family;
use crate::shard::{Act, Launch};
use crate::txn::{Op, Res, Rounds, Step};

const FENCED_FROM: i16 = 2;

struct AddRounds {
    r: Req,
    coordinator: Option<(usize, Op)>,
    /// The partitions' announcements, sent once the coordinator logged them.
    begins: Option<Vec<(usize, Op)>>,
    layout: Vec<(TopicName, Vec<i32>)>,
    errors: Vec<i16>,
}

impl Rounds for AddRounds {
    fn next(&mut self, results: Vec<Res>, _now: Instant) -> Step {
        if let Some(part) = self.coordinator.take() {
            return Step::Hop {
                parts: vec![part],
                last: false,
            };
        }
        if let Some(begins) = self.begins.take() {
            let n = self.errors.len();
            match results.into_iter().next().map(Res::group) {
                Some(GroupRes::Txn(TxnRes::Added(e))) if e.len() == n => self.errors = e,
                _ => self.errors = vec![err::COORDINATOR_NOT_AVAILABLE; n],
            }
            if self.errors.iter().all(|&e| e == err::NONE) && !begins.is_empty() {
                return Step::Hop {
                    parts: begins,
                    last: false,
                };
            }
        }
        Step::Reply(self.answer())
    }
}

impl AddRounds {
    fn answer(&self) -> Vec<u8> {
        let mut k = 0;
        let topics = self
            .layout
            .iter()
            .map(|(name, ps)| {
                let results = ps
                    .iter()
                    .map(|&p| {
                        let e = err::fenced_for(self.errors[k], self.r.version, FENCED_FROM);
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
        let body = AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics);
        encode(self.r, ResponseKind::AddPartitionsToTxn(body))
    }
}

pub fn handle(ctx: &Ctx, r: Req, a: AddPartitionsToTxnRequest) -> Act {
    let id = a.v3_and_below_transactional_id.0.to_string();
    let (pid, epoch) = (a.v3_and_below_producer_id.0, a.v3_and_below_producer_epoch);
    let mut partitions = Vec::new();
    let mut begins = Vec::new();
    let mut layout = Vec::new();
    for t in a.v3_and_below_topics {
        let topic = t.name.0.to_string();
        for &p in &t.partitions {
            partitions.push((topic.clone(), p));
            let op = LogOp::TxnBegin {
                topic: topic.clone(),
                partition: p,
                pid,
                epoch,
            };
            begins.push((ctx.owner.shard(partition_slot(&topic, p)), Op::Log(op)));
        }
        layout.push((t.name, t.partitions));
    }
    let n = partitions.len();
    // Topic rules: a transaction writes its partitions, so each topic asks `write`. As
    // Kafka, one denied topic fails the request: the others get OPERATION_NOT_ATTEMPTED.
    if layout
        .iter()
        .any(|(t, _)| !ctx.may(crate::auth::acl::TopicOp::Write, t.0.as_str()))
    {
        let errors = layout
            .iter()
            .flat_map(|(t, ps)| {
                let e = if ctx.may(crate::auth::acl::TopicOp::Write, t.0.as_str()) {
                    err::OPERATION_NOT_ATTEMPTED
                } else {
                    crate::auth::sasl::TOPIC_AUTHORIZATION_FAILED
                };
                std::iter::repeat_n(e, ps.len())
            })
            .collect();
        return Act::Launch(Launch {
            rounds: Box::new(AddRounds {
                r,
                coordinator: None,
                begins: None,
                layout,
                errors,
            }),
            atomic: None,
            family: Family::Server,
        });
    }
    let op = TxnOp::AddPartitions {
        id: id.clone(),
        pid,
        epoch,
        partitions,
    };
    let shard = coordinator(ctx.owner, &id);
    if !ctx.mesh.room_for(ctx.me, [shard]) {
        return Act::Blocked;
    }
    Act::Launch(Launch {
        rounds: Box::new(AddRounds {
            r,
            coordinator: Some((shard, Op::Group(Box::new(GroupOp::Txn(Box::new(op)))))),
            begins: Some(begins),
            layout,
            errors: vec![err::COORDINATOR_NOT_AVAILABLE; n],
        }),
        atomic: None,
        family: Family::Server,
    })
}

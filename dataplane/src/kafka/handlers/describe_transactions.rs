//! DescribeTransactions (v0): each transactional id's state, from its coordinator
//! (`kafka/txn/`); one part per coordinator shard.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, ResponseKind, TopicName,
    TransactionalId,
};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::ops::{GroupOp, GroupRes};
use crate::kafka::groups::rounds::{encode, launch, per_shard, sb};
use crate::kafka::txn::err;
use crate::kafka::txn::ops::{TxnOp, TxnRes};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, d: DescribeTransactionsRequest) -> Act {
    let ids: Vec<String> = d
        .transactional_ids
        .iter()
        .map(|t| t.0.to_string())
        .collect();
    let (parts, place) = per_shard(
        ids.iter()
            .map(|id| (coordinator(ctx.owner, id), id.clone())),
    );
    let parts = parts
        .into_iter()
        .map(|(s, ids)| (s, GroupOp::Txn(Box::new(TxnOp::Describe(ids)))))
        .collect();
    launch(ctx, parts, move |res| {
        let answers: Vec<Vec<_>> = res
            .into_iter()
            .map(|g| match g {
                GroupRes::Txn(TxnRes::Describe(d)) => d,
                _ => Vec::new(),
            })
            .collect();
        let states = ids
            .iter()
            .zip(&place)
            .map(|(id, &(k, i))| {
                let base = TransactionState::default()
                    .with_transactional_id(TransactionalId(sb(id.clone())));
                let Some(t) = answers.get(k).and_then(|a| a.get(i)) else {
                    return base.with_error_code(err::COORDINATOR_NOT_AVAILABLE);
                };
                let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (topic, p) in &t.partitions {
                    by_topic.entry(topic).or_default().push(*p);
                }
                let topics = by_topic
                    .into_iter()
                    .map(|(topic, ps)| {
                        TopicData::default()
                            .with_topic(TopicName(sb(topic.to_string())))
                            .with_partitions(ps)
                    })
                    .collect();
                base.with_error_code(t.error)
                    .with_transaction_state(sb(t.state.to_string()))
                    .with_transaction_timeout_ms(t.timeout_ms)
                    .with_transaction_start_time_ms(t.start_ms)
                    .with_producer_id(ProducerId(t.pid))
                    .with_producer_epoch(t.epoch)
                    .with_topics(topics)
            })
            .collect();
        encode(
            r,
            ResponseKind::DescribeTransactions(
                DescribeTransactionsResponse::default().with_transaction_states(states),
            ),
        )
    })
}

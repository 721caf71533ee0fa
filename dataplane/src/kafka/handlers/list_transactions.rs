//! ListTransactions (v0): every transactional id of every coordinator shard, filtered by
//! state and producer id.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, ResponseKind, TransactionalId,
};

use super::Req;
use crate::kafka::groups::ops::{GroupOp, GroupRes};
use crate::kafka::groups::rounds::{encode, launch, sb};
use crate::kafka::txn::ops::{TxnOp, TxnRes};
use crate::kafka::txn::Phase;
use crate::kafka::Ctx;
use crate::shard::Act;

const STATES: [Phase; 6] = [
    Phase::Empty,
    Phase::Ongoing,
    Phase::PrepareCommit,
    Phase::PrepareAbort,
    Phase::CompleteCommit,
    Phase::CompleteAbort,
];

pub fn handle(ctx: &Ctx, r: Req, l: ListTransactionsRequest) -> Act {
    let states: Vec<String> = l.state_filters.iter().map(|s| s.to_string()).collect();
    let unknown: Vec<String> = states
        .iter()
        .filter(|s| !STATES.iter().any(|p| p.name() == s.as_str()))
        .cloned()
        .collect();
    let pids: Vec<i64> = l.producer_id_filters.iter().map(|p| p.0).collect();
    let parts = (0..ctx.node.nshards)
        .map(|s| {
            let op = TxnOp::List {
                states: states.clone(),
                pids: pids.clone(),
            };
            (s, GroupOp::Txn(Box::new(op)))
        })
        .collect();
    launch(ctx, parts, move |res| {
        let mut all = Vec::new();
        for g in res {
            if let GroupRes::Txn(TxnRes::List(l)) = g {
                all.extend(l);
            }
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let listed = all
            .into_iter()
            .map(|t| {
                TransactionState::default()
                    .with_transactional_id(TransactionalId(sb(t.id)))
                    .with_producer_id(ProducerId(t.pid))
                    .with_transaction_state(sb(t.state.to_string()))
            })
            .collect();
        let body = ListTransactionsResponse::default()
            .with_unknown_state_filters(unknown.iter().cloned().map(sb).collect())
            .with_transaction_states(listed);
        encode(r, ResponseKind::ListTransactions(body))
    })
}

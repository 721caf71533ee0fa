//! EndTxn (v0-v3): commit or abort. The coordinator (`kafka/txn/`) logs PrepareCommit or
//! PrepareAbort, answers, and its marker flight writes the markers and completes the
//! transaction.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ResponseKind};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::ops::{GroupOp, GroupRes};
use crate::kafka::groups::rounds::{encode, launch};
use crate::kafka::txn::err;
use crate::kafka::txn::ops::{TxnOp, TxnRes};
use crate::kafka::Ctx;
use crate::shard::Act;

const FENCED_FROM: i16 = 2;

pub fn handle(ctx: &Ctx, r: Req, e: EndTxnRequest) -> Act {
    let id = e.transactional_id.0.to_string();
    let op = TxnOp::End {
        id: id.clone(),
        pid: e.producer_id.0,
        epoch: e.producer_epoch,
        commit: e.committed,
    };
    on_coordinator(ctx, r, &id, op, FENCED_FROM, |e| {
        ResponseKind::EndTxn(EndTxnResponse::default().with_error_code(e))
    })
}

/// Run `op` on transaction `id`'s coordinator shard and answer with the one error code it
/// returns (COORDINATOR_NOT_AVAILABLE when it returns none), as a version from `fenced_from`
/// on expects a fenced producer to be told.
pub(super) fn on_coordinator(
    ctx: &Ctx,
    r: Req,
    id: &str,
    op: TxnOp,
    fenced_from: i16,
    body: impl Fn(i16) -> ResponseKind + Send + 'static,
) -> Act {
    let shard = coordinator(ctx.owner, id);
    launch(
        ctx,
        vec![(shard, GroupOp::Txn(Box::new(op)))],
        move |mut res| {
            let e = match res.pop() {
                Some(GroupRes::Txn(TxnRes::Error(e))) => e,
                _ => err::COORDINATOR_NOT_AVAILABLE,
            };
            encode(r, body(err::fenced_for(e, r.version, fenced_from)))
        },
    )
}

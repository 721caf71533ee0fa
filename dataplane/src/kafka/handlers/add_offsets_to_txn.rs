//! AddOffsetsToTxn (v0-v3): a transaction will commit offsets for a group
//! (`send_offsets_to_transaction`); the coordinator logs the group with the transaction so
//! its marker flight ends the group's staged offsets.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ResponseKind};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::ops::{GroupOp, GroupRes};
use crate::kafka::groups::rounds::{encode, launch};
use crate::kafka::txn::err;
use crate::kafka::txn::ops::{TxnOp, TxnRes};
use crate::kafka::Ctx;
use crate::shard::Act;

const FENCED_FROM: i16 = 2;

pub fn handle(ctx: &Ctx, r: Req, a: AddOffsetsToTxnRequest) -> Act {
    let id = a.transactional_id.0.to_string();
    let op = TxnOp::AddOffsets {
        id: id.clone(),
        pid: a.producer_id.0,
        epoch: a.producer_epoch,
        group: a.group_id.0.to_string(),
    };
    let shard = coordinator(ctx.owner, &id);
    launch(
        ctx,
        vec![(shard, GroupOp::Txn(Box::new(op)))],
        move |mut res| {
            let e = match res.pop() {
                Some(GroupRes::Txn(TxnRes::Error(e))) => e,
                _ => err::COORDINATOR_NOT_AVAILABLE,
            };
            let body = AddOffsetsToTxnResponse::default().with_error_code(err::fenced_for(
                e,
                r.version,
                FENCED_FROM,
            ));
            encode(r, ResponseKind::AddOffsetsToTxn(body))
        },
    )
}

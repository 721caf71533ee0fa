//! AddOffsetsToTxn (v0-v3): a transaction will commit offsets for a group
//! (`send_offsets_to_transaction`); the coordinator logs the group with the transaction so
//! its marker flight ends the group's staged offsets.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ResponseKind};

use super::end_txn::on_coordinator;
use super::Req;
use crate::kafka::txn::ops::TxnOp;
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
    on_coordinator(ctx, r, &id, op, FENCED_FROM, |e| {
        ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(e))
    })
}

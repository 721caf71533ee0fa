//! InitProducerId (v0-v4): a producer id for an idempotent producer (answered here), or,
//! with a `transactional.id`, the id's producer id and a new epoch from its transaction
//! coordinator (`kafka/txn/`), which fences the previous producer of the id.

use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::ops::{GroupOp, GroupRes};
use crate::kafka::groups::rounds::{encode, launch};
use crate::kafka::txn::err;
use crate::kafka::txn::ops::{TxnOp, TxnRes};
use crate::kafka::{reply, Ctx};
use crate::shard::conn::Conn;
use crate::shard::Act;

/// InitProducerId answers PRODUCER_FENCED from this version (KIP-588).
const FENCED_FROM: i16 = 4;

pub fn handle(ctx: &mut Ctx, conn: &mut Conn, r: Req, i: InitProducerIdRequest) -> Act {
    if let Some(id) = i.transactional_id.filter(|t| !t.0.is_empty()) {
        let id = id.0.to_string();
        let op = TxnOp::Init {
            id: id.clone(),
            timeout_ms: i.transaction_timeout_ms,
            pid: i.producer_id.0,
            epoch: i.producer_epoch,
        };
        let shard = coordinator(ctx.owner, &id);
        return launch(
            ctx,
            vec![(shard, GroupOp::Txn(Box::new(op)))],
            move |mut res| {
                let (error, pid, epoch) = match res.pop() {
                    Some(GroupRes::Txn(TxnRes::Init { error, pid, epoch })) => (error, pid, epoch),
                    _ => (err::COORDINATOR_NOT_AVAILABLE, -1, -1),
                };
                let body = InitProducerIdResponse::default()
                    .with_error_code(err::fenced_for(error, r.version, FENCED_FROM))
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch);
                encode(r, ResponseKind::InitProducerId(body))
            },
        );
    }
    // Unique per node and across restarts: the clock in ms, times the shard count, plus
    // this shard, plus a per-shard counter in the low bits.
    *ctx.next_producer = ctx.next_producer.wrapping_add(1);
    let id = (((ctx.now_ms as i64) << 12) | (*ctx.next_producer & 0xff) as i64)
        * ctx.node.nshards as i64
        + ctx.me as i64;
    let body = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(id & i64::MAX & !(1 << 62)))
        .with_producer_epoch(0);
    reply(
        conn,
        r.key,
        r.version,
        r.cid,
        ResponseKind::InitProducerId(body),
    )
}

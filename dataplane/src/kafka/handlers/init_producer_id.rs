//! InitProducerId (v0-v4): a producer id for an idempotent producer.

use kafka_protocol::messages::{InitProducerIdResponse, ProducerId, ResponseKind};

use super::Req;
use crate::kafka::{reply, Ctx};
use crate::shard::conn::Conn;
use crate::shard::Act;

pub fn handle(ctx: &mut Ctx, conn: &mut Conn, r: Req) -> Act {
    // Unique per node and across restarts: the clock in ms, times the shard count, plus
    // this shard, plus a per-shard counter in the low bits.
    *ctx.next_producer = ctx.next_producer.wrapping_add(1);
    let id = (((ctx.now_ms as i64) << 12) | (*ctx.next_producer & 0xff) as i64)
        * ctx.node.nshards as i64
        + ctx.me as i64;
    let body = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(id & i64::MAX))
        .with_producer_epoch(0);
    reply(
        conn,
        r.key,
        r.version,
        r.cid,
        ResponseKind::InitProducerId(body),
    )
}

//! FindCoordinator (v0-v4): this node coordinates every group and transaction (a single
//! node until the control plane).

use kafka_protocol::messages::{BrokerId, FindCoordinatorResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::Req;
use crate::kafka::{reply, Ctx, NODE_ID};
use crate::shard::conn::Conn;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, conn: &mut Conn, r: Req) -> Act {
    let (host, port) = ctx.node.cfg.advertised(ctx.node.kafka_port);
    let body = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(StrBytes::from_string(host))
        .with_port(port as i32);
    reply(
        conn,
        r.key,
        r.version,
        r.cid,
        ResponseKind::FindCoordinator(body),
    )
}

//! FindCoordinator (v0-v4): this node coordinates every group and transaction (a single
//! node until the control plane). v0-v3 ask for one key and are answered in the top-level
//! fields; v4 asks for a batch (`coordinator_keys`) and is answered with one coordinator per
//! key, the top-level fields left out (v4 does not have them).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::Req;
use crate::kafka::{reply, Ctx, NODE_ID};
use crate::shard::conn::Conn;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, conn: &mut Conn, r: Req, f: FindCoordinatorRequest) -> Act {
    let (host, port) = ctx.node.cfg.advertised(ctx.node.kafka_port);
    let host = StrBytes::from_string(host);
    let body = if r.version >= 4 {
        let coordinators = f
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(NODE_ID))
                    .with_host(host.clone())
                    .with_port(port as i32)
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        FindCoordinatorResponse::default()
            .with_node_id(BrokerId(NODE_ID))
            .with_host(host)
            .with_port(port as i32)
    };
    reply(
        conn,
        r.key,
        r.version,
        r.cid,
        ResponseKind::FindCoordinator(body),
    )
}

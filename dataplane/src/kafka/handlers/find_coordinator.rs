//! FindCoordinator (v0-v4): this node coordinates every group and transaction (a single
//! node until the control plane; within it, `kafka/groups` picks the shard). v4 asks for
//! several keys at once and is answered per key. Under a control plane (issue 12), the
//! coordinator is the node owning the key's slot.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::Req;
use crate::kafka::groups::err;
use crate::kafka::{reply, Ctx, NODE_ID};
use crate::shard::conn::Conn;
use crate::shard::Act;

/// Key types: a consumer group, a transactional id.
const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;
/// Kafka's COORDINATOR_NOT_AVAILABLE: no node owns the key yet (a cluster forming).
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

pub fn handle(ctx: &Ctx, conn: &mut Conn, r: Req, f: FindCoordinatorRequest) -> Act {
    let (host, port) = ctx.advertised();
    let host = StrBytes::from_string(host);
    let known = matches!(f.key_type, GROUP | TRANSACTION);
    // Cluster mode (issue 12): the node owning the key's slot; standalone, this node.
    let view = ctx.node.cluster.managed.then(|| ctx.node.cluster.current());
    // `--kafka-shard-ports`: the shard broker that runs the group or transactional id.
    let shards = crate::cluster::kafka_ports::shard_brokers(ctx.node, &host, ctx.tls);
    let at = |key: &str| match (&view, &shards) {
        (Some(v), _) => crate::cluster::kafka::coordinator(v, key)
            .map(|(id, h, p)| (id, StrBytes::from_string(h), p)),
        (None, Some(s)) => {
            let (id, h, p) = s.coordinator(ctx.owner, key);
            Some((id, StrBytes::from_string(h), p))
        }
        (None, None) => Some((NODE_ID, host.clone(), port)),
    };
    let body = if r.version >= 4 {
        let coordinators = f
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let found = at(key.as_str());
                let c = Coordinator::default().with_key(key);
                if let (true, Some((id, host, port))) = (known, found.clone()) {
                    c.with_node_id(BrokerId(id))
                        .with_host(host)
                        .with_port(port as i32)
                } else if known {
                    c.with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(COORDINATOR_NOT_AVAILABLE)
                } else {
                    c.with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(err::INVALID_REQUEST)
                }
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else if let (true, Some((id, host, port))) = (known, at(f.key.as_str())) {
        FindCoordinatorResponse::default()
            .with_node_id(BrokerId(id))
            .with_host(host)
            .with_port(port as i32)
    } else if known {
        FindCoordinatorResponse::default()
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_code(COORDINATOR_NOT_AVAILABLE)
    } else {
        FindCoordinatorResponse::default()
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_code(err::INVALID_REQUEST)
    };
    reply(
        conn,
        r.key,
        r.version,
        r.cid,
        ResponseKind::FindCoordinator(body),
    )
}

//! Heartbeat (v0-v4): a member keeps its session; the answer tells it when the group
//! rebalances (REBALANCE_IN_PROGRESS).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, ResponseKind};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::err;
use crate::kafka::groups::ops::{GroupOp, GroupRes, HeartbeatReq};
use crate::kafka::groups::rounds::{encode, launch};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, h: HeartbeatRequest) -> Act {
    let group = h.group_id.0.to_string();
    let req = HeartbeatReq {
        group: group.clone(),
        generation: h.generation_id,
        member: h.member_id.to_string(),
        instance: h.group_instance_id.map(|i| i.to_string()),
    };
    let shard = coordinator(ctx.owner, &group);
    launch(
        ctx,
        vec![(shard, GroupOp::Heartbeat(req))],
        move |mut res| {
            let e = match res.pop() {
                Some(GroupRes::Error(e)) => e,
                _ => err::UNKNOWN_SERVER_ERROR,
            };
            encode(
                r,
                ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(e)),
            )
        },
    )
}

//! SyncGroup (v0-v5): members wait on the group's coordinator for the leader's assignment;
//! in a stable group each gets its own at once.

use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::err;
use crate::kafka::groups::ops::{GroupOp, GroupRes, SyncReq, SyncRes};
use crate::kafka::groups::rounds::{encode, launch, sb};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, s: SyncGroupRequest) -> Act {
    let group = s.group_id.0.to_string();
    let req = SyncReq {
        group: group.clone(),
        generation: s.generation_id,
        member: s.member_id.to_string(),
        instance: s.group_instance_id.map(|i| i.to_string()),
        protocol_type: s.protocol_type.map(|p| p.to_string()),
        protocol: s.protocol_name.map(|p| p.to_string()),
        assignments: s
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let shard = coordinator(ctx.owner, &group);
    launch(ctx, vec![(shard, GroupOp::Sync(req))], move |mut res| {
        let s = match res.pop() {
            Some(GroupRes::Sync(s)) => s,
            _ => SyncRes::error(err::UNKNOWN_SERVER_ERROR),
        };
        encode(r, ResponseKind::SyncGroup(response(r.version, s)))
    })
}

pub fn response(v: i16, s: SyncRes) -> SyncGroupResponse {
    let (pt, pn) = if v >= 5 {
        (s.protocol_type.map(sb), s.protocol.map(sb))
    } else {
        (None, None)
    };
    SyncGroupResponse::default()
        .with_error_code(s.error)
        .with_protocol_type(pt)
        .with_protocol_name(pn)
        .with_assignment(s.assignment)
}

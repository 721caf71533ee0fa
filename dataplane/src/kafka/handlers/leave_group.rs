//! LeaveGroup (v0-v5): members leave (v3+: several at once, by member id or, for static
//! members, by instance id); the group rebalances without them.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, ResponseKind};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::err;
use crate::kafka::groups::ops::{GroupOp, GroupRes, LeaveReq, LeaveRes};
use crate::kafka::groups::rounds::{encode, launch, sb};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, l: LeaveGroupRequest) -> Act {
    let group = l.group_id.0.to_string();
    let members: Vec<(String, Option<String>)> = if r.version >= 3 {
        l.members
            .into_iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(l.member_id.to_string(), None)]
    };
    let asked = members.clone();
    let req = LeaveReq {
        group: group.clone(),
        members,
    };
    let shard = coordinator(ctx.owner, &group);
    launch(ctx, vec![(shard, GroupOp::Leave(req))], move |mut res| {
        let l = match res.pop() {
            Some(GroupRes::Leave(l)) => l,
            _ => LeaveRes {
                error: err::UNKNOWN_SERVER_ERROR,
                members: Vec::new(),
            },
        };
        let mut body = LeaveGroupResponse::default();
        if r.version >= 3 {
            body.error_code = l.error;
            body.members = asked
                .iter()
                .zip(&l.members)
                .map(|((m, i), &e)| {
                    MemberResponse::default()
                        .with_member_id(sb(m.clone()))
                        .with_group_instance_id(i.clone().map(sb))
                        .with_error_code(e)
                })
                .collect();
        } else {
            // One member: its error is the answer's.
            body.error_code = if l.error != err::NONE {
                l.error
            } else {
                l.members.first().copied().unwrap_or(err::NONE)
            };
        }
        encode(r, ResponseKind::LeaveGroup(body))
    })
}

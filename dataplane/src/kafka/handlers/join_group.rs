//! JoinGroup (v0-v9): a member joins its group on the group's coordinator shard
//! (`kafka/groups/group/`); the answer waits for the rebalance's join phase to end.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, ResponseKind};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::err;
use crate::kafka::groups::ops::{GroupOp, GroupRes, JoinReq, JoinRes, Protocol};
use crate::kafka::groups::rounds::{encode, launch, sb};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, j: JoinGroupRequest, client_id: &str) -> Act {
    let group = j.group_id.0.to_string();
    let req = JoinReq {
        group: group.clone(),
        member: j.member_id.to_string(),
        instance: j.group_instance_id.map(|s| s.to_string()),
        client_id: client_id.to_string(),
        session_timeout_ms: j.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if r.version >= 1 {
            j.rebalance_timeout_ms
        } else {
            j.session_timeout_ms
        },
        protocol_type: j.protocol_type.to_string(),
        protocols: j
            .protocols
            .into_iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata,
            })
            .collect(),
        require_known_member: r.version >= 4,
        supports_skip: r.version >= 9,
    };
    let shard = coordinator(ctx.owner, &group);
    launch(ctx, vec![(shard, GroupOp::Join(req))], move |mut res| {
        let j = match res.pop() {
            Some(GroupRes::Join(j)) => j,
            _ => JoinRes::error("", err::UNKNOWN_SERVER_ERROR),
        };
        encode(r, ResponseKind::JoinGroup(response(r.version, j)))
    })
}

/// The response in version `v`'s shape (fields a version lacks are left at their defaults).
pub fn response(v: i16, j: JoinRes) -> JoinGroupResponse {
    let members = j
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(sb(m.id))
                .with_group_instance_id(if v >= 5 { m.instance.map(sb) } else { None })
                .with_metadata(m.metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(j.error)
        .with_generation_id(j.generation)
        .with_protocol_type(if v >= 7 {
            j.protocol_type.map(sb)
        } else {
            None
        })
        .with_protocol_name(if v >= 7 {
            j.protocol.map(sb)
        } else {
            Some(sb(j.protocol.unwrap_or_default()))
        })
        .with_leader(sb(j.leader))
        .with_skip_assignment(v >= 9 && j.skip_assignment)
        .with_member_id(sb(j.member))
        .with_members(members)
}

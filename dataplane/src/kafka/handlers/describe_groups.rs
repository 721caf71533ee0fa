//! DescribeGroups (v0-v5): each group from its coordinator: state, protocol, and members
//! (with their metadata and assignment once the group is stable). An unknown group is
//! described as Dead, as Kafka does.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, ResponseKind};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::err;
use crate::kafka::groups::ops::{Described, GroupOp, GroupRes};
use crate::kafka::groups::rounds::{encode, launch, per_shard, sb};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, d: DescribeGroupsRequest) -> Act {
    let names = d.groups;
    let (parts, place) = per_shard(names.iter().map(|g| {
        let id = g.0.to_string();
        (coordinator(ctx.owner, &id), id)
    }));
    let parts = parts
        .into_iter()
        .map(|(s, ids)| (s, GroupOp::Describe(ids)))
        .collect();
    launch(ctx, parts, move |res| {
        let mut res: Vec<Vec<Option<Described>>> = res
            .into_iter()
            .map(|r| match r {
                GroupRes::Describe(d) => d.into_iter().map(Some).collect(),
                _ => Vec::new(),
            })
            .collect();
        let groups = names
            .iter()
            .zip(&place)
            .map(|(name, &(k, j))| {
                let d = res
                    .get_mut(k)
                    .and_then(|v| v.get_mut(j))
                    .and_then(Option::take)
                    .unwrap_or(Described {
                        error: err::UNKNOWN_SERVER_ERROR,
                        ..Described::default()
                    });
                let members = d
                    .members
                    .into_iter()
                    .map(|m| {
                        DescribedGroupMember::default()
                            .with_member_id(sb(m.id))
                            .with_group_instance_id(if r.version >= 4 {
                                m.instance.map(sb)
                            } else {
                                None
                            })
                            .with_client_id(sb(m.client_id))
                            .with_client_host(sb(m.client_host))
                            .with_member_metadata(m.metadata)
                            .with_member_assignment(m.assignment)
                    })
                    .collect();
                DescribedGroup::default()
                    .with_error_code(d.error)
                    .with_group_id(name.clone())
                    .with_group_state(sb(d.state.to_string()))
                    .with_protocol_type(sb(d.protocol_type))
                    .with_protocol_data(sb(d.protocol))
                    .with_members(members)
            })
            .collect();
        encode(
            r,
            ResponseKind::DescribeGroups(DescribeGroupsResponse::default().with_groups(groups)),
        )
    })
}

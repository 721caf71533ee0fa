//! ListGroups (v0-v4): every shard lists the groups it coordinates (v4: in the states
//! asked for); the answer is their union.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, ResponseKind};

use super::Req;
use crate::kafka::groups::ops::{GroupOp, GroupRes};
use crate::kafka::groups::rounds::{encode, launch, sb};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, l: ListGroupsRequest) -> Act {
    let states: Vec<String> = l.states_filter.iter().map(|s| s.to_string()).collect();
    let parts = (0..ctx.node.nshards)
        .map(|s| (s, GroupOp::List(states.clone())))
        .collect();
    launch(ctx, parts, move |res| {
        let groups = res
            .into_iter()
            .flat_map(|g| match g {
                GroupRes::List(l) => l,
                _ => Vec::new(),
            })
            .map(|g| {
                let listed = ListedGroup::default()
                    .with_group_id(GroupId(sb(g.group)))
                    .with_protocol_type(sb(g.protocol_type));
                if r.version >= 4 {
                    listed.with_group_state(sb(g.state.to_string()))
                } else {
                    listed
                }
            })
            .collect();
        encode(
            r,
            ResponseKind::ListGroups(ListGroupsResponse::default().with_groups(groups)),
        )
    })
}

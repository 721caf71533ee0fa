//! DeleteGroups (v0-v2): each empty group's offsets are removed on its coordinator (a
//! durable record in its offsets file); a group with members answers NON_EMPTY_GROUP.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, ResponseKind};

use super::Req;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::err;
use crate::kafka::groups::ops::{GroupOp, GroupRes};
use crate::kafka::groups::rounds::{encode, launch, per_shard};
use crate::kafka::Ctx;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, r: Req, d: DeleteGroupsRequest) -> Act {
    let names = d.groups_names;
    let (parts, place) = per_shard(names.iter().map(|g| {
        let id = g.0.to_string();
        (coordinator(ctx.owner, &id), id)
    }));
    let parts = parts
        .into_iter()
        .map(|(s, ids)| (s, GroupOp::Delete(ids)))
        .collect();
    launch(ctx, parts, move |res| {
        let res: Vec<Vec<i16>> = res
            .into_iter()
            .map(|r| match r {
                GroupRes::Deleted(e) => e,
                _ => Vec::new(),
            })
            .collect();
        let results = names
            .iter()
            .zip(&place)
            .map(|(name, &(k, j))| {
                let e = res
                    .get(k)
                    .and_then(|v| v.get(j))
                    .copied()
                    .unwrap_or(err::UNKNOWN_SERVER_ERROR);
                DeletableGroupResult::default()
                    .with_group_id(name.clone())
                    .with_error_code(e)
            })
            .collect();
        encode(
            r,
            ResponseKind::DeleteGroups(DeleteGroupsResponse::default().with_results(results)),
        )
    })
}

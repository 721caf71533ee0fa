//! A group request as a flight: one hop of [`GroupOp`] parts, each for its group's
//! coordinator shard (one part for most APIs; one per group for batched OffsetFetch,
//! DescribeGroups and DeleteGroups; one per shard for ListGroups), then the response, built
//! from the parts' results in part order. A JoinGroup or SyncGroup part is answered when the
//! rebalance reaches it; the flight simply waits for it.

use std::time::Instant;

use super::ops::{GroupOp, GroupRes};
use crate::kafka::Ctx;
use crate::proto::resp::command::Family;
use crate::shard::{Act, Launch};
use crate::txn::{Op, Res, Rounds, Step};

pub type Finish = Box<dyn FnMut(Vec<GroupRes>) -> Vec<u8> + Send>;

pub struct GroupRounds {
    parts: Option<Vec<(usize, GroupOp)>>,
    finish: Finish,
}

impl Rounds for GroupRounds {
    fn next(&mut self, results: Vec<Res>, _now: Instant) -> Step {
        if let Some(parts) = self.parts.take() {
            let parts = parts
                .into_iter()
                .map(|(s, g)| (s, Op::Group(Box::new(g))))
                .collect();
            return Step::Hop { parts, last: false };
        }
        let results = results.into_iter().map(Res::group).collect();
        Step::Reply((self.finish)(results))
    }
}

/// Run `parts` on their coordinators and answer with `finish` over their results.
pub fn launch(
    ctx: &Ctx,
    parts: Vec<(usize, GroupOp)>,
    finish: impl FnMut(Vec<GroupRes>) -> Vec<u8> + Send + 'static,
) -> Act {
    if !ctx.mesh.room_for(ctx.me, parts.iter().map(|(s, _)| *s)) {
        return Act::Blocked;
    }
    Act::Launch(Launch {
        rounds: Box::new(GroupRounds {
            parts: Some(parts),
            finish: Box::new(finish),
        }),
        atomic: None,
        family: Family::Server,
    })
}

/// Items for coordinators as one part per shard (`(shard, items)`), and where each item
/// went: `(part, index in the part)`, in the items' order. A request naming thousands of
/// groups is then at most one part per shard, within any mesh batch's room.
#[allow(clippy::type_complexity)]
pub fn per_shard<T>(
    items: impl IntoIterator<Item = (usize, T)>,
) -> (Vec<(usize, Vec<T>)>, Vec<(usize, usize)>) {
    let mut parts: Vec<(usize, Vec<T>)> = Vec::new();
    let mut place = Vec::new();
    for (shard, item) in items {
        let k = match parts.iter().position(|(s, _)| *s == shard) {
            Some(k) => k,
            None => {
                parts.push((shard, Vec::new()));
                parts.len() - 1
            }
        };
        place.push((k, parts[k].1.len()));
        parts[k].1.push(item);
    }
    (parts, place)
}

/// The response to `r`, encoded.
pub fn encode(
    r: crate::kafka::handlers::Req,
    body: kafka_protocol::messages::ResponseKind,
) -> Vec<u8> {
    match r.answer(body) {
        crate::kafka::rounds::Done::Reply(b) => b,
        crate::kafka::rounds::Done::Wait => Vec::new(),
    }
}

/// A string as the wire types hold it.
pub fn sb(s: String) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s)
}

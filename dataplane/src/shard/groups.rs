//! The consumer group coordinator's seam to its shard: calls into `kafka::groups::Groups`
//! with this turn's clock and I/O, and the answers it produced sent to their flights.

use super::Shard;
use crate::kafka::groups::{GroupCtx, Groups};
use crate::mesh::Reply;
use crate::txn::Res;

impl Shard {
    /// Run `f` on the group coordinator, then send the answers it produced.
    pub(super) fn with_groups<R>(&mut self, f: impl FnOnce(&mut Groups, &mut GroupCtx) -> R) -> R {
        let mut ctx = GroupCtx {
            io: &mut self.io,
            now: self.now,
            now_ms: self.now_ms,
            topics: &self.logs.topics,
        };
        let r = f(&mut self.groups, &mut ctx);
        for (dest, res) in self.groups.take_replies() {
            let reply = Reply::Part {
                to: dest.to,
                res: Res::Group(Box::new(res)),
            };
            self.reply(dest.shard as usize, reply);
        }
        // Transactions: the marker flights the coordinator asks for (`kafka/txn/rounds.rs`).
        for d in self.groups.txns.take_drives() {
            let rounds = crate::kafka::txn::rounds::markers(d, &self.owner);
            self.launch_background(crate::shard::Launch {
                rounds: Box::new(rounds),
                atomic: None,
                family: crate::proto::resp::command::Family::Server,
            });
        }
        r
    }
}

//! EXEC of a transaction that queued a command over keys of several shards (RENAME, SMOVE,
//! LMOVE, SINTERSTORE, EVAL ... without a common `{hash tag}`), which no single owner can
//! run. The whole transaction then runs as one gathered flight (`gather.rs`), atomic over
//! every key any queued command names:
//! 1. each owner checks this connection's watches there and sends the keys' values
//!    (`Op::Batch` holding an `Op::Dump`), memory checked first as for any EXEC;
//! 2. this shard loads them into its scratch store, runs every queued command there in
//!    order, exactly as the owners would, and sends each changed key back to its owner
//!    (`Op::Restore`).
//!
//! The flight holds every key from the first hop to the last, so no other client sees a
//! state between two queued commands. Commands over a whole keyspace (DBSIZE, KEYS, SCAN,
//! FLUSHALL) cannot run on the scratch store: a transaction with one of them does not
//! take this path (`needed`), and its several-shard commands answer CROSSSLOT.

use super::gather::{in_scratch, restore_hop, Restores};
use super::multi::{assemble, execabort_oom, Planned};
use super::together::{self, Owners};
use super::{encode, Ctx};
use crate::cache::cmd::OomCheck;
use crate::cache::op::{self as cache, parse_frame, Key, Op as CacheOp, Res as CacheRes};
use crate::cache::slot::key_slot;
use crate::proto::resp::command::{lookup, Cmd, Family, Route};
use crate::shard::{Act, Launch};
use crate::txn::{Access, ConnId, Mode, Op, Participant, Res, Rounds, Step};

/// Does this transaction need the gathered path: a command over keys of several shards,
/// and none over a whole keyspace?
pub(super) fn needed(ctx: &Ctx, frames: &[Box<[u8]>]) -> bool {
    let mut several = false;
    for frame in frames {
        let (mut args, mut scratch) = (Vec::new(), Vec::new());
        let Some(a) = parse_frame(frame, &mut args, &mut scratch) else {
            continue;
        };
        let Some(spec) = lookup(a.get(0)) else {
            continue;
        };
        match spec.route {
            Route::Key | Route::Multi(_) => {
                several |= matches!(together::owners(ctx, spec, &a), Owners::Several)
            }
            // MSETNX is all or nothing: over several shards it needs every key at hand.
            Route::Keys { .. } if spec.cmd == Cmd::Msetnx => {
                several |= matches!(together::owners(ctx, spec, &a), Owners::Several)
            }
            Route::All | Route::Cursor => return false,
            Route::Local | Route::Keys { .. } => {}
        }
    }
    several
}

/// Start the transaction: `cmds` in order, `ops` the parts of those that run on a store
/// (in command order), `watching` the connection's watched keys and their shards.
pub(super) fn launch(
    ctx: &Ctx,
    cmds: Vec<Planned>,
    ops: Vec<CacheOp>,
    watching: &[(Key, usize)],
    denyoom: bool,
    resp3: bool,
) -> Act {
    let mut all = Access::new(ctx.conn);
    for op in &ops {
        op.add_access(&mut all);
    }
    // Each owner: the keys it sends (each once), and what the flight holds there.
    let mut owners: Vec<(usize, Vec<Key>, Access)> = Vec::new();
    let at = |shard: usize, owners: &mut Vec<(usize, Vec<Key>, Access)>| match owners
        .iter()
        .position(|(s, _, _)| *s == shard)
    {
        Some(i) => i,
        None => {
            owners.push((shard, Vec::new(), Access::new(ctx.conn)));
            owners.len() - 1
        }
    };
    for (k, mode) in all.keys {
        let i = at(ctx.owner.shard(key_slot(&k)), &mut owners);
        owners[i].2.add(&k, mode);
        if !owners[i].1.contains(&k) {
            owners[i].1.push(k);
        }
    }
    for (k, shard) in watching {
        let i = at(*shard, &mut owners);
        owners[i].2.add(k, Mode::Read);
    }
    let watched = |s: usize| watching.iter().any(|(_, w)| *w == s);
    let first = owners
        .iter()
        .map(|(s, keys, _)| {
            let batch = CacheOp::Batch {
                ops: if keys.is_empty() {
                    Vec::new()
                } else {
                    vec![CacheOp::Dump(keys.clone())]
                },
                watch: watched(*s).then_some(ctx.conn),
                denyoom,
            };
            (*s, Op::Cache(batch))
        })
        .collect();
    let participants = owners
        .iter()
        .map(|(s, _, access)| Participant {
            shard: *s,
            access: access.clone(),
            denyoom,
        })
        .collect();
    Act::Launch(Launch {
        rounds: Box::new(ExecGather {
            cmds,
            ops,
            parts: owners.into_iter().map(|(s, keys, _)| (s, keys)).collect(),
            first,
            conn: ctx.conn,
            watch_shards: watching.iter().map(|(_, s)| *s).collect(),
            now_ms: ctx.now_ms,
            resp3,
            stage: Stage::Start,
        }),
        atomic: Some(participants),
        family: Family::Transaction,
    })
}

enum Stage {
    Start,
    Dumped,
    /// The writes are out; this is the reply.
    Reply(Vec<u8>),
    Done,
}

struct ExecGather {
    cmds: Vec<Planned>,
    ops: Vec<CacheOp>,
    /// Each owner and the keys it sends, in the order of `first`.
    parts: Vec<(usize, Vec<Key>)>,
    first: Vec<(usize, Op)>,
    conn: ConnId,
    watch_shards: Vec<usize>,
    now_ms: u64,
    resp3: bool,
    stage: Stage,
}

impl ExecGather {
    /// Run the transaction over what the owners sent: its reply, and what changed.
    /// None with the reply when the owners refused it (a watch changed, or memory).
    fn run(&mut self, results: Vec<Res>) -> Result<(Vec<u8>, Restores), Vec<u8>> {
        let mut dumps = Vec::with_capacity(results.len());
        for res in results {
            match res.cache() {
                CacheRes::Batch(None) => return Err(encode(self.resp3, |o| o.null_array())),
                CacheRes::Oom => return Err(execabort_oom(self.resp3)),
                CacheRes::Batch(Some(mut v)) => match v.pop() {
                    Some(CacheRes::Dumps(values)) => dumps.push(values),
                    None => dumps.push(Vec::new()),
                    Some(other) => panic!("a dump hop answered {other:?}"),
                },
                other => panic!("a transaction's first hop answered {other:?}"),
            }
        }
        let (cmds, ops) = (
            std::mem::take(&mut self.cmds),
            std::mem::take(&mut self.ops),
        );
        let (now, resp3) = (self.now_ms, self.resp3);
        Ok(in_scratch(&self.parts, dumps, now, |store| {
            let results = ops
                .iter()
                .map(|op| cache::run(store, op, now, OomCheck::Admitted))
                .collect();
            assemble(cmds, results, resp3)
        }))
    }
}

impl Rounds for ExecGather {
    fn next(&mut self, results: Vec<Res>, _now: std::time::Instant) -> Step {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Start => {
                self.stage = Stage::Dumped;
                Step::Hop {
                    parts: std::mem::take(&mut self.first),
                    last: false,
                }
            }
            Stage::Dumped => match self.run(results) {
                Err(reply) => Step::Reply(reply),
                Ok((reply, restores)) if restores.is_empty() => Step::Reply(reply),
                Ok((reply, restores)) => {
                    self.stage = Stage::Reply(reply);
                    restore_hop(restores)
                }
            },
            Stage::Reply(reply) => Step::Reply(reply),
            Stage::Done => panic!("a gathered EXEC stepped after its reply"),
        }
    }

    fn refused(&mut self) -> Step {
        // Refused for memory before the first hop: EXEC still ends the watches.
        self.stage = Stage::Reply(execabort_oom(self.resp3));
        let mut shards = self.watch_shards.clone();
        shards.sort_unstable();
        shards.dedup();
        if shards.is_empty() {
            return Step::Reply(execabort_oom(self.resp3));
        }
        Step::Hop {
            parts: shards
                .into_iter()
                .map(|s| (s, Op::Cache(CacheOp::Unwatch { conn: self.conn })))
                .collect(),
            last: true,
        }
    }
}

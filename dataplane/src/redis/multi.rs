//! MULTI, EXEC, DISCARD, WATCH's companions and UNWATCH, with Redis 7's semantics.
//!
//! Between MULTI and EXEC, commands are checked (table, arity, authentication, memory) and
//! queued; a refused one makes EXEC answer EXECABORT. EXEC plans every queued command in
//! order: connection commands run at once (their replies are ready), keyed and all-shard
//! commands become parts. The parts then run as *one* unit:
//!
//! - all on one shard (and any WATCHed keys there too): one batch that shard runs at once,
//!   checking the watches first;
//! - on several shards: a transaction of the framework (`txn/`). It proposes on every shard
//!   it touches with every key it reads or writes (WATCHed keys as reads), checks the
//!   watches in a first hop when there are any, and runs the parts in the last hop. While
//!   it holds its keys nothing else touches them, so EXEC is atomic and isolated across
//!   shards.
//!
//! A command over keys of several shards (RENAME, SMOVE ... without a common hash tag)
//! needs its values gathered on one shard: a transaction that queued one runs whole that
//! way (`exec_gather.rs`).
//!
//! A failed WATCH answers a null array; a runtime error (WRONGTYPE ...) is one element of
//! the reply, the rest ran, as in Redis. EXEC over the memory limit with a command that
//! needs memory is refused whole (`EXECABORT ... OOM`).

use super::connection::{self, Local};
use super::join::{Join, Plan};
use super::keys;
use super::session::Queued;
use super::together::{self, Owners};
use super::{encode, participants, server, session, Ctx};
use crate::cache::op::{parse_frame, Op as CacheOp, Res as CacheRes};
use crate::cache::slot::key_slot;
use crate::limits::MULTI_QUEUED_MAX;
use crate::proto::resp::command::{lookup, Cmd, Family, Route, Spec};
use crate::proto::resp::errors::{self, OOM};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
use crate::shard::conn::Conn;
use crate::shard::{Act, Launch};
use crate::txn::{Mode, Op, Res, Rounds, Step};
use std::sync::atomic::Ordering;

/// Queue a command inside MULTI.
pub fn queue(ctx: &mut Ctx, conn: &mut Conn, spec: &Spec, a: &Args, frame: &[u8]) -> Act {
    let max_bytes = ctx.node.cfg.max_query_buffer_bytes;
    let full = {
        let q = session(conn).multi.as_ref().expect("inside MULTI");
        q.frames.len() >= MULTI_QUEUED_MAX || q.bytes + frame.len() > max_bytes
    };
    if full {
        return super::refuse(conn, errors::MULTI_TOO_LONG);
    }
    // Queueing may use unbounded memory: refused when a shard the command touches (or,
    // for a command without keys, this one) refuses writes, as Redis refuses when out of
    // memory.
    let mut shards: Vec<usize> = Vec::new();
    spec.for_each_key(a, |k| shards.push(ctx.owner.shard(key_slot(k))));
    if shards.is_empty() {
        shards.push(ctx.me);
    }
    let refused = shards.iter().any(|&s| {
        if s == ctx.me {
            !ctx.store.make_room(ctx.now_ms)
        } else {
            ctx.node.refusing_writes[s].load(Ordering::Relaxed)
        }
    });
    if refused {
        return super::refuse(conn, OOM);
    }
    let q = session(conn).multi.as_mut().expect("inside MULTI");
    q.frames.push(frame.into());
    q.bytes += frame.len();
    conn.reply(|o| o.simple("QUEUED"));
    Act::Done
}

/// MULTI, EXEC, DISCARD, UNWATCH.
pub fn command(ctx: &mut Ctx, conn: &mut Conn, spec: &Spec) -> Act {
    let sess = session(conn);
    match spec.cmd {
        Cmd::Multi => {
            if sess.multi.is_some() {
                conn.reply(|o| o.error(errors::MULTI_NESTED));
            } else {
                sess.multi = Some(Queued::default());
                conn.reply(|o| o.ok());
            }
            Act::Done
        }
        Cmd::Discard => {
            if sess.multi.is_none() {
                conn.reply(|o| o.error(errors::DISCARD_WITHOUT_MULTI));
                return Act::Done;
            }
            // Blocked on room: a DISCARD parsed again later must still find its MULTI.
            let act = unwatch(ctx, conn);
            if !matches!(act, Act::Blocked) {
                session(conn).multi = None;
            }
            act
        }
        Cmd::Unwatch => unwatch(ctx, conn),
        Cmd::Exec => exec(ctx, conn),
        _ => panic!("{} is not a transaction command", spec.name),
    }
}

/// Forget this connection's watches (their shards are told; nobody waits for that).
fn unwatch(ctx: &mut Ctx, conn: &mut Conn) -> Act {
    let shards = session(conn).watch_shards();
    if !ctx.room(shards.iter()) {
        return Act::Blocked;
    }
    session(conn).watching.clear();
    conn.reply(|o| o.ok());
    forget_watches(shards)
}

/// One queued command, planned.
pub(super) enum Planned {
    /// Its reply is known now (a connection command, or an error).
    Ready(Vec<u8>),
    /// The next `count` of the transaction's parts (commands' parts stand in command
    /// order), joined.
    Parts { count: usize, join: Join },
}

fn exec(ctx: &mut Ctx, conn: &mut Conn) -> Act {
    if session(conn).multi.is_none() {
        conn.reply(|o| o.error(errors::EXEC_WITHOUT_MULTI));
        return Act::Done;
    }
    // EXEC sends at most one message to each shard: check room before anything runs.
    let all: Vec<usize> = (0..ctx.node.nshards).collect();
    if !ctx.room(all.iter()) {
        return Act::Blocked;
    }
    let sess = session(conn);
    let queued = sess.multi.take().expect("checked above");
    let watch_shards = sess.watch_shards();
    let watching = std::mem::take(&mut sess.watching);
    if queued.failed {
        conn.reply(|o| o.error(errors::EXECABORT));
        return forget_watches(watch_shards);
    }
    let id = conn.id;
    let gathered = super::exec_gather::needed(ctx, &queued.frames);
    let mut cmds = Vec::new();
    let mut parts: Vec<(usize, CacheOp)> = Vec::new();
    let mut needs_memory = Vec::new();
    // Shards whose whole keyspace a command reads (DBSIZE, KEYS, SCAN, INFO).
    let mut reads_all = Vec::new();
    for frame in &queued.frames {
        let (mut args, mut scratch) = (Vec::new(), Vec::new());
        let Some(a) = parse_frame(frame, &mut args, &mut scratch) else {
            panic!("a queued command that no longer parses");
        };
        let spec = lookup(a.get(0)).expect("queued commands are in the table");
        let resp3 = session(conn).resp3;
        // ACLs (issue 13, f-sec): rules changed since queueing refuse the command here.
        if let Some(e) = super::acl::recheck(ctx, session(conn), id, spec, &a) {
            cmds.push(Planned::Ready(encode(resp3, |o| o.error(&e))));
            continue;
        }
        let planned = match spec.route {
            // EXEC drops the watches itself: a queued UNWATCH has nothing left to drop.
            Route::Local if spec.cmd == Cmd::Unwatch => Planned::Ready(encode(resp3, |o| o.ok())),
            Route::Local => match connection::run(ctx, session(conn), id, spec, &a) {
                Local::Reply(b) | Local::Close(b) => Planned::Ready(b),
                Local::Plan(_) if gathered => {
                    Planned::Ready(encode(resp3, |o| o.error(errors::CONFIG_IN_GATHERED_EXEC)))
                }
                Local::Plan(p) => add(&mut parts, p, spec, &mut needs_memory),
            },
            Route::Key | Route::Multi(_) => {
                let shard = match together::owners(ctx, spec, &a) {
                    Owners::None => ctx.me,
                    Owners::One(s) => s,
                    // Runs on the scratch store with the rest (`exec_gather.rs`).
                    Owners::Several if gathered => ctx.me,
                    Owners::Several => {
                        cmds.push(Planned::Ready(encode(resp3, |o| {
                            o.error(errors::CROSSSHARD)
                        })));
                        continue;
                    }
                };
                let op = CacheOp::Command {
                    frame: frame.clone(),
                    resp3,
                    caller: super::acl::script_caller(ctx, conn, spec),
                };
                let p = Plan {
                    parts: vec![(shard, op)],
                    join: Join::Encoded,
                };
                add(&mut parts, p, spec, &mut needs_memory)
            }
            Route::Keys { step } => match keys::split(ctx, spec, &a, step) {
                // On the scratch store every key is at hand: one all-or-nothing part.
                Ok(p) if spec.cmd == Cmd::Msetnx && p.parts.len() > 1 && gathered => {
                    let pairs = p
                        .parts
                        .into_iter()
                        .flat_map(|(_, op)| match op {
                            CacheOp::Msetnx(pairs) => pairs,
                            other => panic!("MSETNX planned {other:?}"),
                        })
                        .collect();
                    let p = Plan {
                        parts: vec![(ctx.me, CacheOp::Msetnx(pairs))],
                        join: Join::Sum,
                    };
                    add(&mut parts, p, spec, &mut needs_memory)
                }
                Ok(p) if spec.cmd == Cmd::Msetnx && p.parts.len() > 1 => {
                    Planned::Ready(encode(resp3, |o| {
                        o.error(errors::MSETNX_ACROSS_SHARDS_IN_MULTI)
                    }))
                }
                Ok(p) => add(&mut parts, p, spec, &mut needs_memory),
                Err(e) => Planned::Ready(encode(resp3, |o| o.error(&e))),
            },
            Route::All | Route::Cursor => match server::plan(ctx, spec, a) {
                Ok(p) => {
                    reads_all.extend(p.parts.iter().map(|(s, _)| *s));
                    add(&mut parts, p, spec, &mut needs_memory)
                }
                Err(e) => Planned::Ready(encode(resp3, |o| o.error(&e))),
            },
        };
        cmds.push(planned);
    }
    let resp3 = session(conn).resp3;
    if gathered {
        let ops = parts.into_iter().map(|(_, op)| op).collect();
        let denyoom = !needs_memory.is_empty();
        return super::exec_gather::launch(ctx, cmds, ops, &watching, denyoom, resp3);
    }
    let mut shards: Vec<usize> = parts
        .iter()
        .map(|(s, _)| *s)
        .chain(watch_shards.iter().copied())
        .collect();
    shards.sort_unstable();
    shards.dedup();
    let mut rounds = Exec {
        cmds,
        stage: Stage::Start,
        parts: Vec::new(),
        checks: Vec::new(),
        batched: false,
        resp3,
    };
    match shards.as_slice() {
        [] => {
            let reply = rounds.assemble(Vec::new());
            conn.reply(|o| o.buf.extend_from_slice(&reply));
            ctx.record(Family::Transaction);
            Act::Done
        }
        [one] => {
            // One shard: a batch it runs at once, its watches checked first.
            let watch = watch_shards.contains(one).then_some(ctx.conn);
            let ops = parts.into_iter().map(|(_, op)| op).collect();
            let batch = CacheOp::Batch {
                ops,
                watch,
                denyoom: !needs_memory.is_empty(),
            };
            rounds.parts = vec![(*one, Op::Cache(batch))];
            rounds.batched = true;
            Act::Launch(Launch {
                rounds: Box::new(rounds),
                atomic: None,
                family: Family::Transaction,
            })
        }
        _ => {
            let mut ps = participants(ctx.conn, &parts, &shards, false);
            for p in &mut ps {
                p.denyoom = needs_memory.contains(&p.shard);
                for (k, _) in watching.iter().filter(|(_, s)| *s == p.shard) {
                    p.access.add(k, Mode::Read);
                }
                if reads_all.contains(&p.shard) && p.access.shard.is_none() {
                    p.access.shard = Some(Mode::Read);
                }
            }
            rounds.checks = watch_shards
                .iter()
                .map(|&s| (s, Op::Cache(CacheOp::CheckWatch { conn: ctx.conn })))
                .collect();
            rounds.parts = parts.into_iter().map(|(s, o)| (s, Op::Cache(o))).collect();
            Act::Launch(Launch {
                rounds: Box::new(rounds),
                atomic: Some(ps),
                family: Family::Transaction,
            })
        }
    }
}

/// Add a command's plan to the transaction's parts.
fn add(
    parts: &mut Vec<(usize, CacheOp)>,
    p: Plan,
    spec: &Spec,
    needs_memory: &mut Vec<usize>,
) -> Planned {
    let count = p.parts.len();
    if spec.denyoom() {
        needs_memory.extend(p.parts.iter().map(|(s, _)| *s));
    }
    parts.extend(p.parts);
    Planned::Parts {
        count,
        join: p.join,
    }
}

/// Drop a connection's watches on their shards (nobody waits for that).
fn forget_watches(shards: Vec<usize>) -> Act {
    if shards.is_empty() {
        Act::Done
    } else {
        Act::Unwatch { shards }
    }
}

#[derive(PartialEq, Eq)]
enum Stage {
    Start,
    Checked,
    Ran,
    /// Refused for memory; the watches were dropped in a last hop.
    Refused,
}

/// EXEC's rounds: check the watches (when several shards hold them), then run the parts,
/// then assemble the reply in command order.
struct Exec {
    cmds: Vec<Planned>,
    stage: Stage,
    parts: Vec<(usize, Op)>,
    checks: Vec<(usize, Op)>,
    /// The parts went to one shard as one batch.
    batched: bool,
    resp3: bool,
}

pub(super) fn execabort_oom(resp3: bool) -> Vec<u8> {
    encode(resp3, |o| {
        o.error(&format!(
            "EXECABORT Transaction discarded because of: {OOM}"
        ))
    })
}

/// EXEC's reply: each command's, in order, from the results of the parts (in command
/// order).
pub(super) fn assemble(cmds: Vec<Planned>, results: Vec<CacheRes>, resp3: bool) -> Vec<u8> {
    let mut results = results.into_iter();
    encode(resp3, |o: &mut Out| {
        o.array(cmds.len());
        for c in cmds {
            match c {
                Planned::Ready(b) => o.buf.extend_from_slice(&b),
                Planned::Parts { count, join, .. } => {
                    join.finish(results.by_ref().take(count).collect(), o)
                }
            }
        }
    })
}

impl Exec {
    fn assemble(&mut self, results: Vec<CacheRes>) -> Vec<u8> {
        assemble(std::mem::take(&mut self.cmds), results, self.resp3)
    }
}

impl Rounds for Exec {
    fn next(&mut self, results: Vec<Res>, _now: std::time::Instant) -> Step {
        match self.stage {
            Stage::Start if !self.checks.is_empty() => {
                self.stage = Stage::Checked;
                Step::Hop {
                    parts: std::mem::take(&mut self.checks),
                    last: false,
                }
            }
            Stage::Start | Stage::Checked => {
                let changed = results
                    .into_iter()
                    .any(|r| matches!(r.cache(), CacheRes::Changed(true)));
                if changed {
                    return Step::Reply(encode(self.resp3, |o| o.null_array()));
                }
                self.stage = Stage::Ran;
                Step::Hop {
                    parts: std::mem::take(&mut self.parts),
                    last: true,
                }
            }
            Stage::Ran => {
                let mut results: Vec<CacheRes> = results.into_iter().map(Res::cache).collect();
                if self.batched {
                    match results.pop() {
                        Some(CacheRes::Batch(Some(v))) => results = v,
                        Some(CacheRes::Batch(None)) => {
                            return Step::Reply(encode(self.resp3, |o| o.null_array()))
                        }
                        Some(CacheRes::Oom) => return Step::Reply(execabort_oom(self.resp3)),
                        other => panic!("a transaction batch answered {other:?}"),
                    }
                }
                Step::Reply(self.assemble(results))
            }
            Stage::Refused => Step::Reply(execabort_oom(self.resp3)),
        }
    }

    fn refused(&mut self) -> Step {
        // EXEC ends the connection's watches even when refused: drop them, then answer.
        self.stage = Stage::Refused;
        let unwatch: Vec<(usize, Op)> = std::mem::take(&mut self.checks)
            .into_iter()
            .map(|(s, op)| match op {
                Op::Cache(CacheOp::CheckWatch { conn }) => {
                    (s, Op::Cache(CacheOp::Unwatch { conn }))
                }
                other => (s, other),
            })
            .collect();
        if unwatch.is_empty() {
            return Step::Reply(execabort_oom(self.resp3));
        }
        Step::Hop {
            parts: unwatch,
            last: true,
        }
    }
}

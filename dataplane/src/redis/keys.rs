//! Multi-key commands: MGET, MSET, MSETNX, DEL, UNLINK, EXISTS, TOUCH and WATCH. Their keys
//! are split by owner shard into parts; across shards they run as one transaction (every
//! part holds its keys until all are done), so no client sees half an MSET and MSETNX is
//! all-or-nothing.

use super::join::{Join, Msetnx, Plan};
use super::{launch, participants, session, Ctx};
use crate::cache::op::{Key, Op};
use crate::cache::slot::key_slot;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{self, wrong_args};
use crate::proto::resp::Args;
use crate::shard::conn::Conn;
use crate::shard::{Act, Launch};

/// The parts of a multi-key command (not WATCH), and how to join them.
pub fn split(ctx: &Ctx, spec: &Spec, a: &Args, step: usize) -> Result<Plan, String> {
    if step == 2 && a.len() % 2 == 0 {
        return Err(wrong_args(spec.name));
    }
    let n = ctx.node.nshards;
    let mut by_shard: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (pos, i) in (1..a.len()).step_by(step).enumerate() {
        by_shard[ctx.owner.shard(key_slot(a.get(i)))].push(pos as u32);
    }
    let key = |pos: u32| -> Key { a.get(1 + pos as usize * step).into() };
    let val = |pos: u32| -> Key { a.get(2 + pos as usize * step).into() };
    let mut parts = Vec::new();
    let mut positions = Vec::new();
    for (shard, ps) in by_shard.into_iter().enumerate() {
        if ps.is_empty() {
            continue;
        }
        let keys = || ps.iter().map(|&p| key(p)).collect();
        let pairs = || ps.iter().map(|&p| (key(p), val(p))).collect();
        let op = match spec.cmd {
            Cmd::Mget => Op::Mget(keys()),
            Cmd::Mset => Op::Mset(pairs()),
            Cmd::Msetnx => Op::Msetnx(pairs()),
            Cmd::Exists => Op::Exists(keys()),
            Cmd::Touch => Op::Touch(keys()),
            Cmd::Del | Cmd::Unlink => Op::Del(keys()),
            _ => panic!("{} is not a multi-key command", spec.name),
        };
        parts.push((shard, op));
        positions.push(ps);
    }
    let join = match spec.cmd {
        Cmd::Mget => Join::Mget {
            positions,
            n: a.len() - 1,
        },
        Cmd::Mset => Join::Ok,
        _ => Join::Sum,
    };
    Ok(Plan { parts, join })
}

/// Plan and start a multi-key command.
pub fn plan(
    ctx: &mut Ctx,
    conn: &mut Conn,
    spec: &Spec,
    a: Args,
    step: usize,
) -> Result<Act, String> {
    if spec.cmd == Cmd::Watch {
        return Ok(watch(ctx, conn, a));
    }
    let plan = split(ctx, spec, &a, step)?;
    let resp3 = conn.resp3();
    if spec.cmd == Cmd::Msetnx && plan.parts.len() > 1 {
        return Ok(msetnx(ctx, plan, resp3));
    }
    Ok(launch(ctx, plan, true, spec, resp3))
}

/// MSETNX over several shards: a transaction that counts, then sets or not.
fn msetnx(ctx: &mut Ctx, plan: Plan, resp3: bool) -> Act {
    let shards: Vec<usize> = plan.parts.iter().map(|(s, _)| *s).collect();
    if !ctx.room(shards.iter()) {
        return Act::Blocked;
    }
    let participants = participants(ctx.conn, &plan.parts, &shards, true);
    let mut counts = Vec::new();
    let mut sets = Vec::new();
    for (shard, op) in plan.parts {
        let Op::Msetnx(pairs) = op else {
            panic!("MSETNX parts are Msetnx ops");
        };
        counts.push((
            shard,
            Op::Exists(pairs.iter().map(|(k, _)| k.clone()).collect()),
        ));
        sets.push((shard, Op::Mset(pairs)));
    }
    Act::Launch(Launch {
        rounds: Box::new(Msetnx::new(counts, sets, resp3)),
        atomic: Some(participants),
        family: crate::proto::resp::command::Family::Write,
    })
}

/// WATCH: register the keys with their owners; EXEC checks them there.
fn watch(ctx: &mut Ctx, conn: &mut Conn, a: Args) -> Act {
    if session(conn).multi.is_some() {
        // Answered, not queued, and the transaction stays valid (as in Redis).
        conn.reply(|o| o.error(errors::WATCH_IN_MULTI));
        return Act::Done;
    }
    let n = ctx.node.nshards;
    let mut by_shard: Vec<Vec<Key>> = vec![Vec::new(); n];
    for i in 1..a.len() {
        by_shard[ctx.owner.shard(key_slot(a.get(i)))].push(a.get(i).into());
    }
    let parts: Vec<(usize, Op)> = by_shard
        .into_iter()
        .enumerate()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(shard, keys)| {
            (
                shard,
                Op::Watch {
                    conn: ctx.conn,
                    keys,
                },
            )
        })
        .collect();
    if !ctx.room(parts.iter().map(|(s, _)| s)) {
        return Act::Blocked;
    }
    let sess = session(conn);
    for (shard, op) in &parts {
        if let Op::Watch { keys, .. } = op {
            for k in keys {
                if !sess.watching.iter().any(|(w, _)| w == k) {
                    sess.watching.push((k.clone(), *shard));
                }
            }
        }
    }
    let spec = crate::proto::resp::command::spec(Cmd::Watch);
    let resp3 = sess.resp3;
    launch(
        ctx,
        Plan {
            parts,
            join: Join::Ok,
        },
        false,
        spec,
        resp3,
    )
}

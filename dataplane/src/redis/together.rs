//! Commands whose keys run together (`Route::Multi`: SINTERSTORE, LMOVE, RENAME, EVAL ...).
//! When every key has one owner, the command runs there as a single-key command does: here
//! when this shard owns them and nothing holds them, else on the owner (through its
//! scheduler, holding every key). When the keys span shards it is a transaction that gathers
//! their values here ([`super::gather`]).
//!
//! A blocking command (BLPOP, BLMOVE, BZPOPMIN ...) of one owner tries at once when that is
//! this shard and its keys are free; otherwise, or when it finds nothing, it becomes a part
//! that the owner parks on its keys until a write, its timeout or the connection's end
//! answers it (`shard/blocked.rs`). Over keys of several shards the part is for this shard,
//! the client's: it waits here and tries the whole command atomically over the owners, again
//! each time one of them reports a write to a key it waits on.

use super::join::{Join, Plan};
use super::{gather, here_or_forward, launch, session, Ctx};
use crate::cache::cmd::{try_blocking, Attempt};
use crate::cache::op::{keys_free, Op as CacheOp};
use crate::cache::slot::key_slot;
use crate::proto::resp::command::Spec;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
use crate::shard::conn::Conn;
use crate::shard::Act;

/// Where a command's keys live.
pub enum Owners {
    /// No key: the command runs on the connection's shard.
    None,
    One(usize),
    Several,
}

pub fn owners(ctx: &Ctx, spec: &Spec, a: &Args) -> Owners {
    let mut found = Owners::None;
    spec.for_each_key(a, |k| {
        let s = ctx.owner.shard(key_slot(k));
        found = match found {
            Owners::None => Owners::One(s),
            Owners::One(o) if o == s => Owners::One(s),
            _ => Owners::Several,
        };
    });
    found
}

pub fn dispatch(ctx: &mut Ctx, conn: &mut Conn, spec: &'static Spec, a: Args, frame: &[u8]) -> Act {
    let shard = match owners(ctx, spec, &a) {
        Owners::None => ctx.me,
        Owners::One(s) => s,
        Owners::Several if spec.blocking() => return blocking(ctx, conn, spec, a, frame, None),
        Owners::Several => {
            let caller = super::acl::script_caller(ctx, conn, spec);
            return gather::launch(ctx, spec, &a, frame, conn.resp3(), caller);
        }
    };
    if spec.blocking() {
        return blocking(ctx, conn, spec, a, frame, Some(shard));
    }
    here_or_forward(ctx, conn, spec, a, shard)
}

/// A blocking command whose keys `owner` owns, or (None) whose keys have several owners:
/// then this shard parks it and makes its attempts.
fn blocking(
    ctx: &mut Ctx,
    conn: &mut Conn,
    spec: &'static Spec,
    a: Args,
    frame: &[u8],
    owner: Option<usize>,
) -> Act {
    let resp3 = conn.resp3();
    let shard = owner.unwrap_or(ctx.me);
    if owner == Some(ctx.me) && keys_free(ctx.sched, ctx.conn, spec, &a) {
        let mut buf = Vec::new();
        let (store, now) = (&mut *ctx.store, ctx.now_ms);
        if try_blocking(store, spec, &a, now, &mut Out::new(&mut buf, resp3)) == Attempt::Answered {
            conn.reply(|out| out.buf.extend_from_slice(&buf));
            ctx.record(spec.family);
            return Act::Done;
        }
    }
    let plan = Plan {
        parts: vec![(
            shard,
            CacheOp::Block {
                frame: frame.into(),
                resp3,
                origin: ctx.conn,
            },
        )],
        join: Join::Encoded,
    };
    let act = launch(ctx, plan, false, spec, resp3);
    if matches!(act, Act::Launch(_)) {
        // Where it may wait: its owner, or this shard and every owner (for the waiters
        // that tell this shard about writes).
        let mut on = vec![shard];
        if owner.is_none() {
            spec.for_each_key(&a, |k| on.push(ctx.owner.shard(key_slot(k))));
        }
        let sess = session(conn);
        for s in on {
            if !sess.blocked_on.contains(&s) {
                sess.blocked_on.push(s);
            }
        }
    }
    act
}

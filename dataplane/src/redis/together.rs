//! Commands whose keys run together (`Route::Multi`: SINTERSTORE, LMOVE, RENAME, EVAL ...).
//! When every key has one owner, the command runs there as a single-key command does: here
//! when this shard owns them and nothing holds them, else on the owner (through its
//! scheduler, holding every key). When the keys span shards the command is refused with
//! [`errors::CROSSSHARD`]; a `{hash tag}` puts them on one shard.

use super::{refuse, Ctx};
use crate::cache::cmd::{exec_key, OomCheck};
use crate::cache::op::key_mode;
use crate::cache::slot::key_slot;
use crate::proto::resp::command::Spec;
use crate::proto::resp::errors;
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

pub fn dispatch(ctx: &mut Ctx, conn: &mut Conn, spec: &'static Spec, a: Args) -> Act {
    let shard = match owners(ctx, spec, &a) {
        Owners::None => ctx.me,
        Owners::One(s) => s,
        Owners::Several => return refuse(conn, errors::CROSSSHARD),
    };
    if shard == ctx.me {
        let mode = key_mode(spec);
        let mut free = true;
        spec.for_each_key(&a, |k| {
            free = free && ctx.sched.free_for_key(ctx.conn, k, mode)
        });
        if free {
            let (store, now) = (&mut *ctx.store, ctx.now_ms);
            let slot = key_slot(a.get(1));
            conn.reply(|out| exec_key(store, spec, &a, slot, now, OomCheck::Refuse, out));
            ctx.record(spec.family);
            return Act::Done;
        }
    } else if !ctx.mesh.room(shard, 1) {
        return Act::Blocked;
    }
    Act::Forward {
        shard,
        family: spec.family,
    }
}

//! The RESP front end: one parsed command in, an [`Act`] out. It checks the command (table,
//! arity, authentication), queues it inside MULTI, and routes it: connection and server
//! commands answer here ([`connection`], [`server`]); a single-key command runs here when
//! this shard owns the key and nothing holds it, else it is forwarded to its owner;
//! multi-key and all-shard commands become parts joined by [`join`] ([`keys`],
//! [`server`]); MULTI/EXEC/WATCH are [`multi`]. Anything that spans shards is a flight of
//! the transaction framework (`txn/`), atomic when it writes or reads keys on several
//! shards.
//!
//! Lives on the connection's shard; touches the shard only through [`Ctx`].

pub mod acl;
pub mod connection;
pub mod exec_gather;
pub mod gather;
pub mod join;
pub mod keys;
pub mod multi;
pub mod server;
pub mod session;
pub mod together;

use std::time::Instant;

pub use session::Session;

use crate::cache::cmd::{exec_key, OomCheck};
use crate::cache::op::{keys_free, Op as CacheOp};
use crate::cache::slot::key_slot;
use crate::cache::store::Store;
use crate::clock::Clock;
use crate::mesh::{Endpoint, SlotTable};
use crate::metrics::ShardMetrics;
use crate::proto::resp::command::cluster::ClusterCmd;
use crate::proto::resp::command::{lookup, Cmd, Family, Route, Spec, NOAUTH};
use crate::proto::resp::errors::{self, unknown_command, wrong_args};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
use crate::shard::conn::{Conn, Proto};
use crate::shard::{Act, Launch, NodeShared};
use crate::txn::{Access, ConnId, Participant, Scheduler, Work};
use join::{OneHop, Plan};

/// What the RESP front end may see and touch of its shard.
pub struct Ctx<'a> {
    pub node: &'a NodeShared,
    pub me: usize,
    pub owner: &'a SlotTable,
    pub store: &'a mut Store,
    pub sched: &'a Scheduler<Work>,
    pub mesh: &'a Endpoint,
    pub metrics: &'a mut ShardMetrics,
    pub clock: &'a dyn Clock,
    pub started: Instant,
    pub now_ms: u64,
    pub conn: ConnId,
}

impl Ctx<'_> {
    fn record(&mut self, family: Family) {
        let ns = self.clock.now().saturating_duration_since(self.started);
        self.metrics.record(family, ns.as_nanos() as u64);
        self.metrics.commands.ran(ns.as_nanos() as u64);
    }

    /// Do the outgoing batches have room for these parts (one entry per part)?
    fn room<'s>(&self, shards: impl Iterator<Item = &'s usize>) -> bool {
        self.mesh.room_for(self.me, shards.copied())
    }
}

fn session(conn: &mut Conn) -> &mut Session {
    match &mut conn.proto {
        Proto::Resp(s) => s,
        Proto::Kafka => panic!("a RESP command on a Kafka connection"),
    }
}

/// Encode one reply for this connection's protocol.
pub(crate) fn encode(resp3: bool, f: impl FnOnce(&mut Out)) -> Vec<u8> {
    let mut buf = Vec::new();
    f(&mut Out::new(&mut buf, resp3));
    buf
}

/// Commands that run at once even inside MULTI (Redis's list).
fn runs_inside_multi(cmd: Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Exec | Cmd::Discard | Cmd::Multi | Cmd::Watch | Cmd::Quit
    )
}

/// Handle one command. `frame` is the request as a multibulk frame (what is forwarded or
/// queued).
pub fn dispatch(ctx: &mut Ctx, conn: &mut Conn, a: Args, frame: &[u8]) -> Act {
    let Some(spec) = lookup(a.get(0)) else {
        let shown: Vec<&[u8]> = (1..a.len().min(4)).map(|i| a.get(i)).collect();
        let msg = unknown_command(a.get(0), &shown);
        return refuse(conn, &msg);
    };
    if !spec.arity_ok(a.len()) {
        ctx.metrics.commands.rejected(spec);
        return refuse(conn, &wrong_args(spec.name));
    }
    let id = conn.id;
    let sess = session(conn);
    if !sess.authed && spec.flags & NOAUTH == 0 {
        ctx.metrics.commands.rejected(spec);
        return refuse(conn, errors::NOAUTH);
    }
    // ACLs (issue 13, f-sec): the user's commands and key patterns.
    if sess.authed && spec.flags & NOAUTH == 0 {
        match acl::permit(ctx, sess, id, spec, &a) {
            acl::Permit::Yes => {}
            acl::Permit::Gone => return Act::Close,
            acl::Permit::No(msg) => {
                ctx.metrics.commands.rejected(spec);
                return refuse(conn, &msg);
            }
        }
    }
    // Cluster mode (issue 12): keys owned elsewhere get MOVED. Standalone on the plain
    // port nothing is checked, as before.
    // Slots on the move: ASK, TRYAGAIN, and ASKING on the new owner; the move's own
    // commands are not checked.
    let asking = std::mem::take(&mut sess.asking);
    let internal = matches!(
        spec.cmd,
        Cmd::Cluster(ClusterCmd::MoveSlot | ClusterCmd::MoveIn)
    );
    if internal && !ctx.node.cluster.managed {
        // Only nodes of a cluster move data.
        ctx.metrics.commands.rejected(spec);
        return refuse(conn, errors::MOVE_STANDALONE);
    }
    if (sess.shard_port || ctx.node.cluster.managed) && !internal {
        let (me, shard_port) = (ctx.me, sess.shard_port);
        let verdict = ctx.node.cluster.with_moves(|v, m| {
            crate::cluster::check_moving(v, m, me, shard_port, asking, spec, &a)
        });
        if let Some(e) = verdict.error() {
            ctx.metrics.commands.rejected(spec);
            return refuse(conn, &e);
        }
    }
    let sess = session(conn);
    if sess.multi.is_some() && !runs_inside_multi(spec.cmd) {
        return multi::queue(ctx, conn, spec, &a, frame);
    }
    ctx.metrics.commands.call(spec);
    let act = route(ctx, conn, spec, a, frame);
    ctx.metrics.commands.done();
    act
}

/// Run or route a command that passed its checks.
fn route(ctx: &mut Ctx, conn: &mut Conn, spec: &'static Spec, a: Args, frame: &[u8]) -> Act {
    match spec.route {
        Route::Local => match spec.cmd {
            Cmd::Multi | Cmd::Exec | Cmd::Discard | Cmd::Unwatch => multi::command(ctx, conn, spec),
            _ => connection::exec(ctx, conn, spec, a),
        },
        Route::Key => single_key(ctx, conn, spec, a),
        Route::Multi(_) => together::dispatch(ctx, conn, spec, a, frame),
        Route::Keys { step } => match keys::plan(ctx, conn, spec, a, step) {
            Ok(launch) => launch,
            Err(e) => refuse(conn, &e),
        },
        Route::All | Route::Cursor => match server::plan(ctx, spec, a) {
            // A flush empties every shard at once: no transaction sees half of it.
            Ok(plan) => {
                let atomic = matches!(spec.cmd, Cmd::Flushdb | Cmd::Flushall);
                launch(ctx, plan, atomic, spec, conn.resp3())
            }
            Err(e) => refuse(conn, &e),
        },
    }
}

/// An error reply for a command that was not run (inside MULTI it also dooms the
/// transaction).
fn refuse(conn: &mut Conn, msg: &str) -> Act {
    if let Proto::Resp(s) = &mut conn.proto {
        s.flag_multi();
    }
    conn.reply(|o| o.error(msg));
    Act::Done
}

/// A single-key command: here when this shard owns the key and nothing holds it, else on
/// its owner (or through this shard's scheduler, when a transaction holds the key).
fn single_key(ctx: &mut Ctx, conn: &mut Conn, spec: &'static Spec, a: Args) -> Act {
    let shard = ctx.owner.shard(key_slot(a.get(1)));
    here_or_forward(ctx, conn, spec, a, shard)
}

/// A command whose keys (if any) `shard` owns: run here when that is this shard and nothing
/// holds its keys, else forwarded to `shard` (or through this shard's scheduler).
fn here_or_forward(
    ctx: &mut Ctx,
    conn: &mut Conn,
    spec: &'static Spec,
    a: Args,
    shard: usize,
) -> Act {
    let caller = acl::script_caller(ctx, conn, spec);
    if shard == ctx.me {
        // A reply over a big hash goes through the shard, which builds it in slices.
        if keys_free(ctx.sched, ctx.conn, spec, &a)
            && !crate::cache::cmd::hashes::wants_slices(ctx.store, spec, &a)
            && !crate::cache::cmd::hashes::wants_write_slices(spec, &a)
        {
            let (store, now) = (&mut *ctx.store, ctx.now_ms);
            let slot = key_slot(a.get(1));
            conn.reply(|out| {
                crate::script::as_caller(&caller, || {
                    exec_key(store, spec, &a, slot, now, OomCheck::Refuse, out)
                })
            });
            ctx.record(spec.family);
            return Act::Done;
        }
    } else if !ctx.mesh.room(shard, 1) {
        return Act::Blocked;
    }
    Act::Forward {
        shard,
        family: spec.family,
        caller,
    }
}

/// Start `plan`: a transaction when `atomic` and its parts span shards, else plain parts.
fn launch(ctx: &mut Ctx, plan: Plan, atomic: bool, spec: &Spec, resp3: bool) -> Act {
    let mut shards: Vec<usize> = plan.parts.iter().map(|(s, _)| *s).collect();
    shards.sort_unstable();
    shards.dedup();
    let participants = (atomic && shards.len() > 1)
        .then(|| participants(ctx.conn, &plan.parts, &shards, spec.denyoom()));
    let fits = match &participants {
        Some(_) => ctx.room(shards.iter()),
        None => ctx.room(plan.parts.iter().map(|(s, _)| s)),
    };
    if !fits {
        return Act::Blocked;
    }
    Act::Launch(Launch {
        rounds: Box::new(OneHop::new(plan, resp3)),
        atomic: participants,
        family: spec.family,
    })
}

/// Each shard's access for a transaction over `parts`.
pub(crate) fn participants(
    origin: ConnId,
    parts: &[(usize, CacheOp)],
    shards: &[usize],
    denyoom: bool,
) -> Vec<Participant> {
    shards
        .iter()
        .map(|&shard| {
            let mut access = Access::new(origin);
            for (_, op) in parts.iter().filter(|(s, _)| *s == shard) {
                op.add_access(&mut access);
            }
            Participant {
                shard,
                access,
                denyoom,
            }
        })
        .collect()
}

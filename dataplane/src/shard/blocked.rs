//! Blocking commands (BLPOP, BLMOVE, BZPOPMIN ...) that found nothing, parked in the shard's
//! [`Waiters`](crate::txn::waiters::Waiters) until a write, their timeout or their
//! connection's end answers them. Each parked command answers its part exactly once.
//!
//! **Keys of one shard**: the command is parked on that owner, under each of its keys. A
//! write to one of them (the store lists it as ready) lets the waiters of that key try again,
//! first come first served, right after the command that wrote. A waiter is served only when
//! nothing queued holds its keys (a transaction between its hops must not see them change)
//! and when the key holds the type it waits for (as in Redis, a key turned into a string
//! wakes nobody).
//!
//! **Keys of several shards**: the command waits on its client's shard (an `Across` waiter)
//! and every try is one atomic attempt over all its keys' owners (`redis/gather.rs`,
//! [`gather::attempt`]), a flight of the transaction framework whose reply comes back here
//! ([`Shard::attempted`]). An attempt that finds nothing arms a *notify-only* waiter on each
//! owner of a key it waits on, in the same transaction (so no write falls between finding the
//! keys empty and waiting on them). On an owner such a waiter stands in its keys' lines with
//! the local ones; when a write reaches it first it does not take anything: it wakes the
//! client's shard (`Op::Wake`) and holds the line until the next attempt settles it (armed
//! again when that finds nothing, dropped when it took something). The client's shard owns
//! the deadline; the connection's end or the deadline drop the owners' waiters
//! (`Op::Notify` without keys). An attempt takes what it found only if, inside its
//! transaction and right before its writes, the waiter still waits and its client is still
//! connected (`Op::Claim`).

use super::Shard;
use crate::cache::cmd::{timed_out, try_blocking, Attempt};
use crate::cache::entry::{KIND_LIST, KIND_ZSET};
use crate::cache::migrate::Gate;
use crate::cache::op::{self as cache, keys_free, parse_frame, Key};
use crate::cache::slot::key_slot;
use crate::mesh::{Msg, Reply};
use crate::proto::resp::command::lists::ListCmd;
use crate::proto::resp::command::{lookup, Cmd, Family, Spec};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
use crate::redis::gather;
use crate::runtime::slab::SlabKey;
use crate::txn::waiters::{Across, Kind, Notify, Parked, Stage, Waiter};
use crate::txn::{ConnId, Op, PartRef, Res};

/// The kind of value a blocking command of `spec`'s family waits for.
fn awaited_kind(spec: &Spec) -> u8 {
    match spec.family {
        Family::Zset => KIND_ZSET,
        _ => KIND_LIST,
    }
}

/// The keys a blocking command waits on: all of them, but only the source of BLMOVE and
/// BRPOPLPUSH (as in Redis, a push to the destination wakes nobody).
fn awaited_keys<'a>(spec: &Spec, a: &Args<'a>) -> Vec<&'a [u8]> {
    match spec.cmd {
        Cmd::Lists(ListCmd::Blmove | ListCmd::Brpoplpush) => vec![a.get(1)],
        _ => {
            let mut keys = Vec::new();
            spec.for_each_key(a, |k| keys.push(k));
            keys
        }
    }
}

/// The reply of the blocking command in `frame` when its timeout passes.
fn timeout_reply(frame: &[u8], resp3: bool) -> Vec<u8> {
    let (mut args, mut scratch) = (Vec::new(), Vec::new());
    let a = parse_frame(frame, &mut args, &mut scratch).expect("a parked command parses");
    let spec = lookup(a.get(0)).expect("a parked command is in the table");
    let mut buf = Vec::new();
    timed_out(spec, &mut Out::new(&mut buf, resp3));
    buf
}

impl Shard {
    /// Run one of the blocking commands' ops (a part, or a transaction's part).
    pub(super) fn run_blocking(&mut self, from: u16, to: Option<PartRef>, op: cache::Op) {
        match op {
            cache::Op::Block {
                frame,
                resp3,
                origin,
            } => {
                let Some(to) = to else {
                    panic!("a blocking command with nobody waiting for it");
                };
                self.park_or_answer(from, to, frame, resp3, origin)
            }
            cache::Op::Unblock { conn } => self.unblock(conn),
            cache::Op::Notify {
                waiter,
                origin,
                kind,
                keys,
            } => {
                self.notify(from, waiter, origin, kind, keys);
                if let Some(to) = to {
                    self.answer(from, to, cache::Res::Done);
                }
            }
            cache::Op::Wake { waiter } => self.wake(waiter),
            cache::Op::Claim { waiter } => {
                let yes = self.may_take(waiter);
                if let Some(to) = to {
                    self.answer(from, to, cache::Res::Count(yes as i64));
                }
            }
            other => panic!("{other:?} is not a blocking command's op"),
        }
    }

    fn answer(&mut self, from: u16, to: PartRef, res: cache::Res) {
        self.reply(
            from as usize,
            Reply::Part {
                to,
                res: Res::Cache(res),
            },
        );
    }

    fn count_blocked(&mut self) {
        self.metrics.counters.blocked_clients = self.waiters.clients() as u64;
    }

    /// A blocking command's part, admitted by the scheduler: answered now when it can be,
    /// else parked (here on its keys, or as a waiter across shards when they have several
    /// owners).
    fn park_or_answer(
        &mut self,
        from: u16,
        to: PartRef,
        frame: Box<[u8]>,
        resp3: bool,
        origin: ConnId,
    ) {
        let (mut args, mut scratch) = (Vec::new(), Vec::new());
        let a = parse_frame(&frame, &mut args, &mut scratch).expect("a parked command parses");
        let spec = lookup(a.get(0)).expect("a parked command is in the table");
        let mut here = true;
        spec.for_each_key(&a, |k| here &= self.owner.shard(key_slot(k)) == self.id);
        if !here {
            return self.park_across(from, to, frame, resp3, origin);
        }
        let mut buf = Vec::new();
        let attempt = try_blocking(
            &mut self.store,
            spec,
            &a,
            self.now_ms,
            &mut Out::new(&mut buf, resp3),
        );
        let timeout_ms = match attempt {
            Attempt::Answered => return self.answer(from, to, cache::Res::Encoded(buf)),
            Attempt::WouldBlock { timeout_ms } => timeout_ms,
        };
        let mut keys: Vec<Key> = Vec::new();
        spec.for_each_key(&a, |k| {
            if !keys.iter().any(|x| &x[..] == k) {
                keys.push(k.into());
            }
        });
        for k in &keys {
            self.store.block_key(k);
        }
        let deadline_ms = timeout_ms.map(|t| self.now_ms.saturating_add(t));
        self.waiters.add(Waiter {
            origin,
            deadline_ms,
            keys,
            kind: Kind::Local(Parked {
                frame,
                resp3,
                from,
                to,
            }),
        });
        self.count_blocked();
        if deadline_ms.is_some() {
            self.arm_fast_timer();
        }
    }

    /// Take local waiter `id` out and answer it with `bytes`.
    fn release(&mut self, id: SlabKey, bytes: Vec<u8>) {
        let Some(w) = self.waiters.remove(id) else {
            return;
        };
        let Kind::Local(p) = w.kind else {
            panic!("release of a waiter that is not parked here");
        };
        for k in &w.keys {
            self.store.unblock_key(k);
        }
        self.count_blocked();
        self.answer(p.from, p.to, cache::Res::Encoded(bytes));
    }

    /// Waiter `id`'s timeout passed (or the node shuts down): a local one answers its
    /// timeout reply; one across shards does too, or, mid-attempt, when the attempt ends
    /// with nothing.
    fn time_out(&mut self, id: SlabKey) {
        let Some(w) = self.waiters.get(id) else {
            return;
        };
        match &w.kind {
            Kind::Local(p) => {
                let buf = timeout_reply(&p.frame, p.resp3);
                self.release(id, buf);
            }
            Kind::Across(x) if x.stage == Stage::Attempting => {
                if let Some(x) = self.waiters.across(id) {
                    x.expired = true;
                }
                self.waiters.clear_deadline(id);
            }
            Kind::Across(_) => self.end_across(id, None, true),
            // Its client's shard keeps the deadline.
            Kind::Notify(_) => {}
        }
    }

    // ----- keys of several shards: the client's shard -------------------------------------

    /// A blocking command over keys of several shards, on its client's shard: its arguments
    /// are checked against no data, then it waits here and makes its first attempt.
    fn park_across(
        &mut self,
        from: u16,
        to: PartRef,
        frame: Box<[u8]>,
        resp3: bool,
        origin: ConnId,
    ) {
        let (mut args, mut scratch) = (Vec::new(), Vec::new());
        let a = parse_frame(&frame, &mut args, &mut scratch).expect("a parked command parses");
        let spec = lookup(a.get(0)).expect("a parked command is in the table");
        let mut buf = Vec::new();
        let out = &mut Out::new(&mut buf, resp3);
        let timeout_ms = match gather::dry_run(spec, &a, self.now_ms, out) {
            Attempt::Answered => return self.answer(from, to, cache::Res::Encoded(buf)),
            Attempt::WouldBlock { timeout_ms } => timeout_ms,
        };
        let awaited = gather::by_owner(&self.owner, awaited_keys(spec, &a));
        let kind = awaited_kind(spec);
        let deadline_ms = timeout_ms.map(|t| self.now_ms.saturating_add(t));
        let id = self.waiters.add(Waiter {
            origin,
            deadline_ms,
            keys: Vec::new(),
            kind: Kind::Across(Across {
                cmd: Parked {
                    frame,
                    resp3,
                    from,
                    to,
                },
                awaited,
                kind,
                stage: Stage::Attempting,
                armed: false,
                again: false,
                gone: false,
                expired: false,
            }),
        });
        self.count_blocked();
        if deadline_ms.is_some() {
            self.arm_fast_timer();
        }
        self.attempt(id);
    }

    /// Start an attempt of waiter `id` across shards.
    fn attempt(&mut self, id: SlabKey) {
        let Some(w) = self.waiters.get(id) else {
            return;
        };
        let Kind::Across(x) = &w.kind else {
            return;
        };
        let origin = w.origin;
        let (mut args, mut scratch) = (Vec::new(), Vec::new());
        let a =
            parse_frame(&x.cmd.frame, &mut args, &mut scratch).expect("a parked command parses");
        let spec = lookup(a.get(0)).expect("a parked command is in the table");
        let waiting = gather::Waiting {
            waiter: id,
            client: self.id,
            origin,
            kind: x.kind,
            awaited: x.awaited.clone(),
            armed: x.armed,
        };
        let (frame, resp3) = (&x.cmd.frame[..], x.cmd.resp3);
        let launch = gather::attempt(&self.owner, spec, &a, frame, resp3, self.now_ms, waiting);
        if let Some(x) = self.waiters.across(id) {
            x.stage = Stage::Attempting;
            x.again = false;
        }
        self.launch_for_waiter(id, origin, launch);
    }

    /// An attempt of waiter `id` ended: `reply` is the command's reply, or empty when it took
    /// nothing.
    pub(super) fn attempted(&mut self, id: SlabKey, reply: Vec<u8>) {
        let Some(origin) = self.waiters.get(id).map(|w| w.origin) else {
            return;
        };
        let open = self.client_open(origin);
        let Some(x) = self.waiters.across(id) else {
            return;
        };
        if !reply.is_empty() {
            // It took what it found, and its waiters on the owners went with that attempt.
            return self.end_across(id, Some(reply), false);
        }
        let (stop, again) = (x.gone || !open || x.expired, x.again);
        x.stage = Stage::Waiting;
        self.waiters.arm(id);
        self.count_blocked();
        if stop {
            self.end_across(id, None, true)
        } else if again {
            self.attempt(id)
        }
    }

    /// A key waiter `id` waits on was written: try again (after the attempt in flight, if
    /// there is one).
    fn wake(&mut self, id: SlabKey) {
        let Some(x) = self.waiters.across(id) else {
            return;
        };
        match x.stage {
            Stage::Attempting => x.again = true,
            Stage::Waiting => self.attempt(id),
        }
    }

    /// May an attempt of waiter `id` take what it found?
    fn may_take(&self, id: SlabKey) -> bool {
        match self.waiters.get(id) {
            Some(Waiter {
                origin,
                kind: Kind::Across(x),
                ..
            }) => !x.gone && self.client_open(*origin),
            _ => false,
        }
    }

    /// Is connection `origin` (of this shard) still open?
    fn client_open(&self, origin: ConnId) -> bool {
        origin.shard as usize == self.id
            && self
                .conns
                .get(origin.slot)
                .is_some_and(|c| c.gen == origin.gen && c.is_open())
    }

    /// Waiter `id` across shards is over: it answers `reply` (None: its timeout reply), and
    /// (`drop_owners`) its waiters on the owners are dropped if an attempt armed them.
    fn end_across(&mut self, id: SlabKey, reply: Option<Vec<u8>>, drop_owners: bool) {
        let Some(w) = self.waiters.remove(id) else {
            return;
        };
        let Kind::Across(x) = w.kind else {
            panic!("end of a waiter that is not across shards");
        };
        self.count_blocked();
        if drop_owners && x.armed {
            for (shard, _) in &x.awaited {
                let op = cache::Op::Notify {
                    waiter: id,
                    origin: w.origin,
                    kind: x.kind,
                    keys: None,
                };
                let msg = Msg::Part {
                    to: None,
                    op: Op::Cache(op),
                    origin: w.origin,
                };
                self.send_to(*shard, msg);
            }
        }
        let bytes = reply.unwrap_or_else(|| timeout_reply(&x.cmd.frame, x.cmd.resp3));
        self.answer(x.cmd.from, x.cmd.to, cache::Res::Encoded(bytes));
    }

    // ----- keys of several shards: an owner -----------------------------------------------

    /// Waiter `waiter` of shard `client` found `keys` (this shard's) empty and waits on them
    /// (Some): its notify-only waiter here is placed in line, or keeps its place and may
    /// wake again; or it is over (None) and leaves.
    fn notify(
        &mut self,
        client: u16,
        waiter: SlabKey,
        origin: ConnId,
        kind: u8,
        keys: Option<Vec<Key>>,
    ) {
        let known = self.waiters.notify_of(client, waiter);
        match (keys, known) {
            (Some(_), Some(id)) => {
                if let Some(Waiter {
                    kind: Kind::Notify(n),
                    ..
                }) = self.waiters.get_mut(id)
                {
                    n.woken = false;
                }
            }
            (Some(keys), None) => {
                for k in &keys {
                    self.store.block_key(k);
                }
                self.waiters.add(Waiter {
                    origin,
                    deadline_ms: None,
                    keys,
                    kind: Kind::Notify(Notify {
                        client,
                        waiter,
                        kind,
                        woken: false,
                    }),
                });
            }
            (None, Some(id)) => self.drop_notify(id),
            (None, None) => {}
        }
    }

    /// Notify-only waiter `id` leaves; the waiters behind it may be served.
    fn drop_notify(&mut self, id: SlabKey) {
        let Some(w) = self.waiters.remove(id) else {
            return;
        };
        for k in w.keys {
            self.store.unblock_key(&k);
            if self.waiters.first(&k).is_some() {
                self.store.keep_ready(k);
            }
        }
    }

    // ----- serving ---------------------------------------------------------------------------

    /// Serve the waiters of every key written since the last call (and of keys their
    /// serving writes, as BLMOVE's destination).
    pub(super) fn serve_ready(&mut self) {
        if !self.store.has_ready() {
            return;
        }
        let mut keys = Vec::new();
        let mut held = Vec::new();
        loop {
            self.store.take_ready(&mut keys);
            if keys.is_empty() {
                break;
            }
            for k in keys.drain(..) {
                if !self.serve_key(&k) {
                    held.push(k);
                }
            }
        }
        // Keys a transaction holds are tried again after it (the next call).
        for k in held {
            self.store.keep_ready(k);
        }
    }

    /// Serve `key`'s waiters in order while it has data: a local waiter tries again, a
    /// notify-only one wakes its client's shard and holds the line. False when the first
    /// may not run yet because queued work holds one of its keys.
    fn serve_key(&mut self, key: &[u8]) -> bool {
        if !self.store.gates.is_empty() {
            self.redirect_gone(key);
        }
        while let Some(id) = self.waiters.first(key) {
            let w = self.waiters.get(id).expect("a queued waiter is registered");
            let has = |store: &mut crate::cache::store::Store, kind: u8, now: u64| {
                store
                    .peek(key_slot(key), key, now)
                    .is_some_and(|e| e.kind() == kind)
            };
            let p = match &w.kind {
                Kind::Local(p) => p,
                Kind::Notify(n) => {
                    if n.woken || !has(&mut self.store, n.kind, self.now_ms) {
                        return true;
                    }
                    let (client, waiter, origin) = (n.client, n.waiter, w.origin);
                    if let Some(Waiter {
                        kind: Kind::Notify(n),
                        ..
                    }) = self.waiters.get_mut(id)
                    {
                        n.woken = true;
                    }
                    let msg = Msg::Part {
                        to: None,
                        op: Op::Cache(cache::Op::Wake { waiter }),
                        origin,
                    };
                    self.send_to(client as usize, msg);
                    return true;
                }
                Kind::Across(_) => panic!("a waiter across shards in a key's line"),
            };
            let (mut args, mut scratch) = (Vec::new(), Vec::new());
            let a =
                parse_frame(&p.frame, &mut args, &mut scratch).expect("a parked command parses");
            let spec = lookup(a.get(0)).expect("a parked command is in the table");
            if !has(&mut self.store, awaited_kind(spec), self.now_ms) {
                return true;
            }
            if !keys_free(&self.sched, w.origin, spec, &a) {
                return false;
            }
            let mut buf = Vec::new();
            let attempt = try_blocking(
                &mut self.store,
                spec,
                &a,
                self.now_ms,
                &mut Out::new(&mut buf, p.resp3),
            );
            match attempt {
                Attempt::Answered => self.release(id, buf),
                Attempt::WouldBlock { .. } => return true,
            }
        }
        true
    }

    /// `key`'s slot was handed over to another node (`cache/migrate.rs`, `GONE`): its
    /// local waiters are answered `-MOVED slot host:port` with the new owner, as Redis
    /// Cluster answers a client blocked on a slot it no longer serves; a cluster client
    /// sends the command again there. Notify-only waiters (a command over keys of several
    /// shards) are left to their client's shard.
    fn redirect_gone(&mut self, key: &[u8]) {
        let slot = key_slot(key);
        let Some(Gate::Gone { host, port }) = self.store.gates.get(&slot) else {
            return;
        };
        let moved = format!("-MOVED {slot} {host}:{port}\r\n").into_bytes();
        let mut ids = Vec::new();
        self.waiters.all(&mut ids);
        for id in ids {
            let local = self.waiters.get(id).is_some_and(|w| {
                matches!(w.kind, Kind::Local(_)) && w.keys.iter().any(|k| &k[..] == key)
            });
            if local {
                self.release(id, moved.clone());
            }
        }
    }

    // ----- deadlines, connections, shutdown ---------------------------------------------------

    /// Answer the waiters whose timeout passed; true while some still wait with one.
    pub(super) fn expire_waiters(&mut self) -> bool {
        let mut due = Vec::new();
        self.waiters.expired(self.now_ms, &mut due);
        for id in due {
            self.time_out(id);
        }
        self.waiters.timed()
    }

    /// Shutdown: every parked command answers its timeout reply now (one across shards
    /// mid-attempt, when the attempt ends with nothing), so that its connection can finish
    /// and close.
    pub(super) fn unblock_all(&mut self) {
        let mut all = Vec::new();
        self.waiters.all(&mut all);
        for id in all {
            self.time_out(id);
        }
    }

    /// Connection `conn` closed: its parked commands answer (to nobody) and leave, taking
    /// nothing; its notify-only waiters here leave.
    pub(super) fn unblock(&mut self, conn: ConnId) {
        let mut mine = Vec::new();
        self.waiters.of(conn, &mut mine);
        for id in mine {
            let Some(w) = self.waiters.get(id) else {
                continue;
            };
            match &w.kind {
                Kind::Local(_) => self.time_out(id),
                Kind::Across(x) if x.stage == Stage::Attempting => {
                    if let Some(x) = self.waiters.across(id) {
                        x.gone = true;
                    }
                }
                Kind::Across(_) => self.end_across(id, None, true),
                Kind::Notify(_) => self.drop_notify(id),
            }
        }
    }
}

//! Blocking commands on the keys' owner (BLPOP, BLMOVE, BZPOPMIN ...): a command that finds
//! every key empty is parked in the shard's [`Waiters`]; a write to one of its keys (the
//! store lists it as ready) lets the waiters of that key try again, first come first served,
//! right after the command that wrote; a deadline or the connection's end answers it with
//! its timeout reply. Each parked command answers its flight exactly once.
//!
//! A waiter is served only when nothing queued holds its keys (a transaction between its
//! hops must not see them change) and when the key holds the type it waits for (as in
//! Redis, a key turned into a string wakes nobody).

use super::Shard;
use crate::cache::cmd::{timed_out, try_blocking, Attempt};
use crate::cache::entry::{KIND_LIST, KIND_ZSET};
use crate::cache::op::{self as cache, keys_free, parse_frame};
use crate::cache::slot::key_slot;
use crate::mesh::Reply;
use crate::proto::resp::command::{lookup, Family, Spec};
use crate::proto::resp::write::Out;
use crate::runtime::slab::SlabKey;
use crate::txn::waiters::Waiter;
use crate::txn::{ConnId, PartRef, Res};

/// The kind of value a blocking command of `spec`'s family waits for.
fn awaited_kind(spec: &Spec) -> u8 {
    match spec.family {
        Family::Zset => KIND_ZSET,
        _ => KIND_LIST,
    }
}

impl Shard {
    /// A blocking command's part, admitted by the scheduler: answered now when it can be,
    /// else parked.
    pub(super) fn park_or_answer(
        &mut self,
        from: u16,
        to: Option<PartRef>,
        frame: Box<[u8]>,
        resp3: bool,
        origin: ConnId,
    ) {
        let Some(to) = to else {
            panic!("a blocking command with nobody waiting for it");
        };
        let (mut args, mut scratch) = (Vec::new(), Vec::new());
        let a = parse_frame(&frame, &mut args, &mut scratch).expect("a parked command parses");
        let spec = lookup(a.get(0)).expect("a parked command is in the table");
        let mut buf = Vec::new();
        let attempt = try_blocking(
            &mut self.store,
            spec,
            &a,
            self.now_ms,
            &mut Out::new(&mut buf, resp3),
        );
        let timeout_ms = match attempt {
            Attempt::Answered => return self.answer(from, to, buf),
            Attempt::WouldBlock { timeout_ms } => timeout_ms,
        };
        let mut keys: Vec<Box<[u8]>> = Vec::new();
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
            frame,
            resp3,
            origin,
            from,
            to,
            deadline_ms,
            keys,
        });
        self.metrics.counters.blocked_clients = self.waiters.len() as u64;
        if deadline_ms.is_some() {
            self.arm_fast_timer();
        }
    }

    fn answer(&mut self, from: u16, to: PartRef, bytes: Vec<u8>) {
        self.reply(
            from as usize,
            Reply::Part {
                to,
                res: Res::Cache(cache::Res::Encoded(bytes)),
            },
        );
    }

    /// Take waiter `id` out and answer it with `bytes`.
    fn release(&mut self, id: SlabKey, bytes: Vec<u8>) {
        let Some(w) = self.waiters.remove(id) else {
            return;
        };
        for k in &w.keys {
            self.store.unblock_key(k);
        }
        self.metrics.counters.blocked_clients = self.waiters.len() as u64;
        self.answer(w.from, w.to, bytes);
    }

    /// Take waiter `id` out with its timeout reply.
    fn time_out(&mut self, id: SlabKey) {
        let Some(w) = self.waiters.get(id) else {
            return;
        };
        let (mut args, mut scratch) = (Vec::new(), Vec::new());
        let a = parse_frame(&w.frame, &mut args, &mut scratch).expect("a parked command parses");
        let spec = lookup(a.get(0)).expect("a parked command is in the table");
        let mut buf = Vec::new();
        timed_out(spec, &mut Out::new(&mut buf, w.resp3));
        self.release(id, buf);
    }

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

    /// Serve `key`'s waiters in order while it has data. False when the first may not run
    /// yet because queued work holds one of its keys.
    fn serve_key(&mut self, key: &[u8]) -> bool {
        while let Some(id) = self.waiters.first(key) {
            let w = self.waiters.get(id).expect("a queued waiter is registered");
            let (mut args, mut scratch) = (Vec::new(), Vec::new());
            let a =
                parse_frame(&w.frame, &mut args, &mut scratch).expect("a parked command parses");
            let spec = lookup(a.get(0)).expect("a parked command is in the table");
            let live = self
                .store
                .peek(key_slot(key), key, self.now_ms)
                .is_some_and(|e| e.kind() == awaited_kind(spec));
            if !live {
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
                &mut Out::new(&mut buf, w.resp3),
            );
            match attempt {
                Attempt::Answered => self.release(id, buf),
                Attempt::WouldBlock { .. } => return true,
            }
        }
        true
    }

    /// Answer the waiters whose timeout passed; true while some still wait with one.
    pub(super) fn expire_waiters(&mut self) -> bool {
        let mut due = Vec::new();
        self.waiters.expired(self.now_ms, &mut due);
        for id in due {
            self.time_out(id);
        }
        self.waiters.timed()
    }

    /// Shutdown: every parked command answers its timeout reply now, so that its
    /// connection can finish and close.
    pub(super) fn unblock_all(&mut self) {
        let mut all = Vec::new();
        self.waiters.all(&mut all);
        for id in all {
            self.time_out(id);
        }
    }

    /// Connection `conn` closed: its parked commands answer (to nobody) and leave.
    pub(super) fn unblock(&mut self, conn: ConnId) {
        let mut mine = Vec::new();
        self.waiters.of(conn, &mut mine);
        for id in mine {
            self.time_out(id);
        }
    }
}

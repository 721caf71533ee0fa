//! A command whose keys must run together (`Route::Multi`) but live on several shards:
//! SINTERSTORE, LMOVE, RENAME, BITOP, EVAL ... over keys without a common `{hash tag}`.
//!
//! It is an atomic flight over the keys' owners, holding every key throughout (in the
//! command's mode), in two hops:
//! 1. each owner sends its keys' values (`Op::Dump`, `cache/dump.rs`);
//! 2. this shard loads them into a scratch store, runs the command there exactly as the
//!    owner would (`exec_key`), and sends each changed key's new value (or its deletion) back
//!    to its owner (`Op::Restore`); a command that changed nothing concludes instead.
//!
//! The reply goes out after the last hop, so a client never sees it before the writes are in
//! place. The cost is the copy of each value both ways: a `{hash tag}` that puts the keys on
//! one shard runs the command in place and copies nothing.
//!
//! A blocking command over keys of several shards (BLPOP, BLMOVE, BZPOPMIN ...) is tried
//! the same way, once per [`attempt`], by its waiter on the client's shard
//! (`shard/blocked.rs`). Such an attempt has one more hop, and a different end:
//! 2. after the run, the client's shard (a participant, holding no key) answers whether
//!    the attempt may take what it found ([`CacheOp::Claim`]): the waiter still waits and
//!    its client is still connected. Asked inside the transaction and right before the
//!    writes go out, so a client that left never gets an element popped for it;
//! 3. the last hop writes back what it took and, on each owner of a key it waits on, arms
//!    the command's notify-only waiter when it found nothing, or drops it when it is over
//!    ([`CacheOp::Notify`]). Arming inside the transaction means that no write can fall
//!    between finding a key empty and waiting on it.
//!
//! Its reply, for the waiter, is the command's reply, or empty when it took nothing.

use std::cell::RefCell;

use super::Ctx;
use crate::cache::cmd::{exec_key, try_blocking, Attempt, OomCheck};
use crate::cache::dump::{dump_key, restore_key};
use crate::cache::op::{key_mode, parse_frame, Key, Op as CacheOp, Res as CacheRes};
use crate::cache::slot::{key_slot, SLOTS};
use crate::cache::store::Store;
use crate::mesh::SlotTable;
use crate::proto::resp::command::{lookup, Spec};
use crate::proto::resp::errors::OOM;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
use crate::runtime::slab::SlabKey;
use crate::shard::{Act, Launch};
use crate::txn::{Access, ConnId, Op, Participant, Res, Rounds, Step};

use super::encode;

thread_local! {
    /// The store gathered commands run in, one per shard thread, empty between commands.
    static SCRATCH: RefCell<Option<Store>> = const { RefCell::new(None) };
}

/// Seed of the scratch store's random choices (SPOP, SRANDMEMBER ...).
const SCRATCH_SEED: u64 = 0x5eed_9a7e;

/// `keys` grouped by their owners (each key once), in the order they come.
pub fn by_owner<'k>(
    owner: &SlotTable,
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> Vec<(usize, Vec<Key>)> {
    let mut parts: Vec<(usize, Vec<Key>)> = Vec::new();
    for k in keys {
        let shard = owner.shard(key_slot(k));
        let i = match parts.iter().position(|(s, _)| *s == shard) {
            Some(i) => i,
            None => {
                parts.push((shard, Vec::new()));
                parts.len() - 1
            }
        };
        if !parts[i].1.iter().any(|x| &x[..] == k) {
            parts[i].1.push(k.into());
        }
    }
    parts
}

/// `spec`'s keys in `a`, by owner.
fn owners_of(owner: &SlotTable, spec: &Spec, a: &Args) -> Vec<(usize, Vec<Key>)> {
    let mut keys: Vec<&[u8]> = Vec::new();
    spec.for_each_key(a, |k| keys.push(k));
    by_owner(owner, keys)
}

/// Each owner holds its keys in the command's mode.
fn participants(origin: ConnId, spec: &Spec, parts: &[(usize, Vec<Key>)]) -> Vec<Participant> {
    let mode = key_mode(spec);
    parts
        .iter()
        .map(|(shard, keys)| {
            let mut access = Access::new(origin);
            for k in keys {
                access.add(k, mode);
            }
            Participant {
                shard: *shard,
                access,
                denyoom: spec.denyoom(),
            }
        })
        .collect()
}

/// Start `spec` (the command in `frame`, parsed as `a`) over its keys' owners.
pub fn launch(
    ctx: &mut Ctx,
    spec: &'static Spec,
    a: &Args,
    frame: &[u8],
    resp3: bool,
    caller: crate::auth::ScriptCaller,
) -> Act {
    let parts = owners_of(ctx.owner, spec, a);
    if !ctx.room(parts.iter().map(|(s, _)| s)) {
        return Act::Blocked;
    }
    let participants = participants(ctx.conn, spec, &parts);
    Act::Launch(Launch {
        rounds: Box::new(Gather {
            frame: frame.into(),
            resp3,
            now_ms: ctx.now_ms,
            parts,
            stage: Stage::Dump,
            blocking: None,
            caller,
        }),
        atomic: Some(participants),
        family: spec.family,
    })
}

/// Who an attempt of a blocking command is for, and what it waits on.
pub struct Waiting {
    /// The waiter, on the client's shard (the shard that runs the attempt).
    pub waiter: SlabKey,
    pub client: usize,
    pub origin: ConnId,
    /// The kind of value it waits for (list or sorted set).
    pub kind: u8,
    /// The keys it waits on, by owner.
    pub awaited: Vec<(usize, Vec<Key>)>,
    /// An earlier attempt armed its notify-only waiters (to drop when it is over).
    pub armed: bool,
}

/// One attempt of the blocking command `spec` (in `frame`, parsed as `a`) over its keys'
/// owners, for its waiter `w` on this shard: a transaction over the owners and this shard.
/// Later attempts are started by the flights' own progress, so the mesh's room for new
/// requests is not asked.
pub fn attempt(
    owner: &SlotTable,
    spec: &'static Spec,
    a: &Args,
    frame: &[u8],
    resp3: bool,
    now_ms: u64,
    w: Waiting,
) -> Launch {
    let parts = owners_of(owner, spec, a);
    let mut participants = participants(w.origin, spec, &parts);
    if !parts.iter().any(|(s, _)| *s == w.client) {
        // The claim runs on the client's shard, inside the transaction; it holds no key.
        participants.push(Participant {
            shard: w.client,
            access: Access::new(w.origin),
            denyoom: false,
        });
    }
    Launch {
        rounds: Box::new(Gather {
            frame: frame.into(),
            resp3,
            now_ms,
            parts,
            stage: Stage::Dump,
            blocking: Some(w),
            caller: None,
        }),
        atomic: Some(participants),
        family: spec.family,
    }
}

/// A blocking command's attempt against no data (the empty scratch store): its answer when
/// its arguments are wrong, else how long it would wait. Nothing is written.
pub fn dry_run(spec: &Spec, a: &Args, now_ms: u64, out: &mut Out) -> Attempt {
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        let store = slot.get_or_insert_with(|| Store::new(0, SLOTS, SCRATCH_SEED));
        let attempt = try_blocking(store, spec, a, now_ms, out);
        debug_assert_eq!(
            store.keys, 0,
            "a blocking attempt made a key out of nothing"
        );
        attempt
    })
}

enum Stage {
    Dump,
    Run,
    /// A blocking attempt ran (`served`: it answered); the claim is asked.
    Claim {
        reply: Vec<u8>,
        restores: Restores,
        served: bool,
    },
    /// The writes are out; this is the reply.
    Reply(Vec<u8>),
    Done,
}

pub struct Gather {
    frame: Box<[u8]>,
    resp3: bool,
    now_ms: u64,
    /// Each owner and its keys (each key once).
    parts: Vec<(usize, Vec<Key>)>,
    stage: Stage,
    /// One attempt of a blocking command, for this waiter.
    blocking: Option<Waiting>,
    /// A restricted user's script command: who runs it.
    caller: crate::auth::ScriptCaller,
}

/// Keys to write back, per owner.
pub(super) type Restores = Vec<(usize, Vec<(Key, Option<Vec<u8>>)>)>;

/// The last hop of a gathered flight: each owner sets or deletes its changed keys.
pub(super) fn restore_hop(restores: Restores) -> Step {
    Step::Hop {
        parts: restores
            .into_iter()
            .map(|(s, kvs)| (s, Op::Cache(CacheOp::Restore(kvs))))
            .collect(),
        last: true,
    }
}

/// Load the values the owners sent (`dumps[i]` for the keys of `parts[i]`, in order) into
/// this thread's scratch store, run `f` there, and return its result with every key whose
/// value changed (its new bytes, or None when it is gone), per owner. The scratch store is
/// left empty.
pub(super) fn in_scratch<R>(
    parts: &[(usize, Vec<Key>)],
    dumps: Vec<Vec<Option<Vec<u8>>>>,
    now: u64,
    f: impl FnOnce(&mut Store) -> R,
) -> (R, Restores) {
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        let store = slot.get_or_insert_with(|| Store::new(0, SLOTS, SCRATCH_SEED));
        let mut originals = Vec::new();
        for ((shard, keys), values) in parts.iter().zip(dumps) {
            for (k, v) in keys.iter().zip(values) {
                assert!(
                    restore_key(store, k, v.as_deref(), now),
                    "a dump that does not load"
                );
                originals.push((*shard, k, v));
            }
        }
        let r = f(store);
        let mut restores: Restores = Vec::new();
        for (shard, k, before) in originals {
            let after = dump_key(store, k, now);
            store.remove(key_slot(k), k);
            if after == before {
                continue;
            }
            match restores.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, kvs)) => kvs.push((k.clone(), after)),
                None => restores.push((shard, vec![(k.clone(), after)])),
            }
        }
        store.settle();
        if store.keys != 0 {
            // The command made a key it did not name: drop it (its keys are all named,
            // so this is a bug elsewhere, kept from leaking into the next command).
            debug_assert!(false, "a gathered command created an undeclared key");
            store.flush(now);
        }
        (r, restores)
    })
}

impl Gather {
    /// Run the command over the gathered values: its reply, what changed, and whether it
    /// answered (a blocking attempt that found nothing did not, and wrote nothing).
    fn run(&self, results: Vec<Res>) -> (Vec<u8>, Restores, bool) {
        let (mut args, mut scratch_bytes) = (Vec::new(), Vec::new());
        let a = parse_frame(&self.frame, &mut args, &mut scratch_bytes)
            .expect("a gathered command frame parses");
        let spec = lookup(a.get(0)).expect("a gathered command is in the table");
        let dumps = results
            .into_iter()
            .map(|res| match res.cache() {
                CacheRes::Dumps(values) => values,
                _ => panic!("a dump hop answered something else"),
            })
            .collect();
        let ((reply, served), restores) = in_scratch(&self.parts, dumps, self.now_ms, |store| {
            let mut reply = Vec::new();
            let out = &mut Out::new(&mut reply, self.resp3);
            let served = match self.blocking {
                None => {
                    let slot = key_slot(a.get(1));
                    crate::script::as_caller(&self.caller, || {
                        exec_key(store, spec, &a, slot, self.now_ms, OomCheck::Admitted, out)
                    });
                    true
                }
                Some(_) => try_blocking(store, spec, &a, self.now_ms, out) == Attempt::Answered,
            };
            (reply, served)
        });
        (reply, restores, served)
    }

    /// A blocking attempt's last hop: write back what it took when it may take it, and arm
    /// or drop its notify-only waiters; the reply (empty: it took nothing).
    fn settle(&mut self, reply: Vec<u8>, restores: Restores, served: bool, claimed: bool) -> Step {
        let w = self
            .blocking
            .as_ref()
            .expect("a claim for a blocking attempt");
        let take = served && claimed;
        let mut parts: Vec<(usize, Op)> = Vec::new();
        if take {
            for (s, kvs) in restores {
                parts.push((s, Op::Cache(CacheOp::Restore(kvs))));
            }
        }
        // It waits on when it found nothing and its client is still there; otherwise its
        // waiters on the owners (if an earlier attempt armed them) are dropped.
        let wait = claimed && !served;
        if wait || w.armed {
            for (s, keys) in &w.awaited {
                let op = CacheOp::Notify {
                    waiter: w.waiter,
                    origin: w.origin,
                    kind: w.kind,
                    keys: wait.then(|| keys.clone()),
                };
                parts.push((*s, Op::Cache(op)));
            }
        }
        let reply = if take { reply } else { Vec::new() };
        if parts.is_empty() {
            return Step::Reply(reply);
        }
        self.stage = Stage::Reply(reply);
        Step::Hop { parts, last: true }
    }
}

impl Rounds for Gather {
    fn next(&mut self, results: Vec<Res>, _now: std::time::Instant) -> Step {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Dump => {
                self.stage = Stage::Run;
                Step::Hop {
                    parts: self
                        .parts
                        .iter()
                        .map(|(s, ks)| (*s, Op::Cache(CacheOp::Dump(ks.clone()))))
                        .collect(),
                    last: false,
                }
            }
            Stage::Run => {
                let (reply, restores, served) = self.run(results);
                if let Some(w) = &self.blocking {
                    let claim = CacheOp::Claim { waiter: w.waiter };
                    let client = w.client;
                    self.stage = Stage::Claim {
                        reply,
                        restores,
                        served,
                    };
                    return Step::Hop {
                        parts: vec![(client, Op::Cache(claim))],
                        last: false,
                    };
                }
                if restores.is_empty() {
                    return Step::Reply(reply);
                }
                self.stage = Stage::Reply(reply);
                restore_hop(restores)
            }
            Stage::Claim {
                reply,
                restores,
                served,
            } => {
                let claimed = results
                    .into_iter()
                    .next()
                    .is_some_and(|r| matches!(r.cache(), CacheRes::Count(1)));
                self.settle(reply, restores, served, claimed)
            }
            Stage::Reply(reply) => Step::Reply(reply),
            Stage::Done => panic!("a gathered command stepped after its reply"),
        }
    }

    fn refused(&mut self) -> Step {
        let oom = encode(self.resp3, |o| o.error(OOM));
        match &self.blocking {
            // A blocking attempt that may not run answers the error, and its waiters on
            // the owners (if armed) are dropped first.
            Some(w) if w.armed => {
                let parts = w
                    .awaited
                    .iter()
                    .map(|(s, _)| {
                        let op = CacheOp::Notify {
                            waiter: w.waiter,
                            origin: w.origin,
                            kind: w.kind,
                            keys: None,
                        };
                        (*s, Op::Cache(op))
                    })
                    .collect();
                self.stage = Stage::Reply(oom);
                Step::Hop { parts, last: true }
            }
            _ => Step::Reply(oom),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::cache::entry::KIND_LIST;
    use crate::proto::resp::args::split_words;

    const CLIENT: usize = 0;

    fn origin() -> ConnId {
        ConnId {
            shard: CLIENT as u16,
            slot: 3,
            gen: 1,
        }
    }

    fn waiter() -> SlabKey {
        SlabKey { slot: 9, gen: 2 }
    }

    /// A key of `shard` on a 2-shard node.
    fn key_on(owner: &SlotTable, shard: usize, prefix: &str) -> String {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .find(|k| owner.shard(key_slot(k.as_bytes())) == shard)
            .expect("some key lands on every shard")
    }

    fn frame(line: &str) -> Vec<u8> {
        let words: Vec<&str> = line.split(' ').collect();
        let mut f = format!("*{}\r\n", words.len()).into_bytes();
        for w in words {
            f.extend_from_slice(format!("${}\r\n{w}\r\n", w.len()).as_bytes());
        }
        f
    }

    /// One attempt of `line` for the test's waiter, armed or not.
    fn attempt_of(owner: &SlotTable, line: &str, armed: bool) -> Box<dyn Rounds> {
        let (src, ranges) = split_words(line);
        let a = Args {
            src: &src,
            ranges: &ranges,
        };
        let spec = lookup(a.get(0)).expect("a known command");
        let mut keys: Vec<&[u8]> = Vec::new();
        spec.for_each_key(&a, |k| keys.push(k));
        let w = Waiting {
            waiter: waiter(),
            client: CLIENT,
            origin: origin(),
            kind: KIND_LIST,
            awaited: by_owner(owner, keys),
            armed,
        };
        let l = attempt(owner, spec, &a, &frame(line), false, 0, w);
        let participants = l.atomic.expect("an attempt is a transaction");
        let mut shards: Vec<usize> = participants.iter().map(|p| p.shard).collect();
        shards.sort_unstable();
        assert_eq!(shards, [0, 1], "every owner, and the client's shard");
        l.rounds
    }

    fn hop(s: Step) -> (Vec<(usize, CacheOp)>, bool) {
        match s {
            Step::Hop { parts, last } => (
                parts
                    .into_iter()
                    .map(|(s, op)| match op {
                        Op::Cache(c) => (s, c),
                        Op::Log(_) | Op::Group(_) => {
                            panic!("a log or group op in a blocking attempt")
                        }
                    })
                    .collect(),
                last,
            ),
            _ => panic!("a hop was expected"),
        }
    }

    fn reply(s: Step) -> Vec<u8> {
        match s {
            Step::Reply(b) => b,
            _ => panic!("a reply was expected"),
        }
    }

    /// The dump hop, answered with `values` per part (a list of one element each, or none).
    fn dumps(r: &mut dyn Rounds, values: &[Option<&str>]) -> Step {
        let (parts, last) = hop(r.next(Vec::new(), Instant::now()));
        assert!(!last);
        assert_eq!(parts.len(), values.len());
        let results = parts
            .iter()
            .zip(values)
            .map(|((_, op), v)| {
                let CacheOp::Dump(keys) = op else {
                    panic!("a dump was expected, got {op:?}");
                };
                let mut s = Store::new(0, SLOTS, 1);
                let bytes = keys
                    .iter()
                    .map(|k| {
                        let item = (*v)?;
                        let line = format!("RPUSH {} {item}", String::from_utf8_lossy(k));
                        let (src, ranges) = split_words(&line);
                        let a = Args {
                            src: &src,
                            ranges: &ranges,
                        };
                        let spec = lookup(b"RPUSH").expect("RPUSH");
                        let mut sink = Vec::new();
                        let out = &mut Out::new(&mut sink, false);
                        exec_key(&mut s, spec, &a, key_slot(k), 0, OomCheck::Refuse, out);
                        dump_key(&mut s, k, 0)
                    })
                    .collect();
                Res::Cache(CacheRes::Dumps(bytes))
            })
            .collect();
        r.next(results, Instant::now())
    }

    /// The claim hop: asked on the client's shard, answered `yes`.
    fn claim(r: &mut dyn Rounds, s: Step, yes: bool) -> Step {
        let (parts, last) = hop(s);
        assert!(!last);
        assert!(
            matches!(&parts[..], [(CLIENT, CacheOp::Claim { waiter: w })] if *w == waiter()),
            "{parts:?}"
        );
        r.next(
            vec![Res::Cache(CacheRes::Count(yes as i64))],
            Instant::now(),
        )
    }

    fn done(n: usize) -> Vec<Res> {
        (0..n).map(|_| Res::Cache(CacheRes::Done)).collect()
    }

    fn notifies(parts: &[(usize, CacheOp)]) -> Vec<(usize, Option<Vec<Key>>)> {
        parts
            .iter()
            .filter_map(|(s, op)| match op {
                CacheOp::Notify {
                    waiter: w,
                    origin: o,
                    keys,
                    ..
                } => {
                    assert!(*w == waiter() && *o == origin());
                    Some((*s, keys.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn finding_nothing_arms_a_waiter_on_every_owner_inside_the_transaction() {
        let owner = SlotTable::new(2);
        let (a, b) = (key_on(&owner, 0, "a"), key_on(&owner, 1, "b"));
        let mut r = attempt_of(&owner, &format!("BLPOP {a} {b} 0"), false);
        let s = dumps(&mut *r, &[None, None]);
        let (parts, last) = hop(claim(&mut *r, s, true));
        assert!(last, "arming is the transaction's last hop");
        let key = |k: &str| Some(vec![Key::from(k.as_bytes())]);
        assert_eq!(notifies(&parts), [(0, key(&a)), (1, key(&b))]);
        assert_eq!(parts.len(), 2, "nothing else is written: {parts:?}");
        assert!(reply(r.next(done(2), Instant::now())).is_empty());
    }

    #[test]
    fn finding_data_takes_it_and_drops_the_armed_waiters() {
        let owner = SlotTable::new(2);
        let (a, b) = (key_on(&owner, 0, "a"), key_on(&owner, 1, "b"));
        let mut r = attempt_of(&owner, &format!("BLPOP {a} {b} 0"), true);
        let s = dumps(&mut *r, &[None, Some("job")]);
        let (parts, last) = hop(claim(&mut *r, s, true));
        assert!(last);
        assert!(
            parts.iter().any(|(s, op)| *s == 1
                && matches!(op, CacheOp::Restore(kvs) if kvs.len() == 1 && kvs[0].1.is_none())),
            "b is emptied on its owner: {parts:?}"
        );
        assert_eq!(notifies(&parts), [(0, None), (1, None)]);
        let got = reply(r.next(done(parts.len()), Instant::now()));
        let want = format!("*2\r\n${}\r\n{b}\r\n$3\r\njob\r\n", b.len());
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }

    #[test]
    fn a_client_that_left_gets_nothing_taken() {
        let owner = SlotTable::new(2);
        let (a, b) = (key_on(&owner, 0, "a"), key_on(&owner, 1, "b"));
        // Never armed: nothing to write or drop, so the transaction just ends.
        let mut r = attempt_of(&owner, &format!("BLPOP {a} {b} 0"), false);
        let s = dumps(&mut *r, &[Some("x"), None]);
        assert!(reply(claim(&mut *r, s, false)).is_empty());
        // Armed: only its waiters on the owners go, and nothing is restored.
        let mut r = attempt_of(&owner, &format!("BLPOP {a} {b} 0"), true);
        let s = dumps(&mut *r, &[Some("x"), None]);
        let (parts, last) = hop(claim(&mut *r, s, false));
        assert!(last);
        assert_eq!(notifies(&parts), [(0, None), (1, None)]);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(reply(r.next(done(2), Instant::now())).is_empty());
    }

    #[test]
    fn blmove_waits_on_its_source_and_writes_both_ends() {
        let owner = SlotTable::new(2);
        let (src, dst) = (key_on(&owner, 0, "src"), key_on(&owner, 1, "dst"));
        let line = format!("BLMOVE {src} {dst} LEFT RIGHT 0");
        let (wsrc, wranges) = split_words(&line);
        let args = Args {
            src: &wsrc,
            ranges: &wranges,
        };
        let spec = lookup(b"BLMOVE").expect("BLMOVE");
        let w = Waiting {
            waiter: waiter(),
            client: CLIENT,
            origin: origin(),
            kind: KIND_LIST,
            awaited: by_owner(&owner, [src.as_bytes()]),
            armed: true,
        };
        let mut r = attempt(&owner, spec, &args, &frame(&line), false, 0, w).rounds;
        let s = dumps(&mut *r, &[Some("t"), None]);
        let (parts, _) = hop(claim(&mut *r, s, true));
        let restored: Vec<usize> = parts
            .iter()
            .filter(|(_, op)| matches!(op, CacheOp::Restore(_)))
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(restored, [0, 1]);
        assert_eq!(
            notifies(&parts),
            [(0, None)],
            "only the source's owner had a waiter"
        );
        assert_eq!(
            reply(r.next(done(parts.len()), Instant::now())),
            b"$1\r\nt\r\n"
        );
    }

    #[test]
    fn a_refused_attempt_drops_its_armed_waiters_and_answers_oom() {
        let owner = SlotTable::new(2);
        let (a, b) = (key_on(&owner, 0, "a"), key_on(&owner, 1, "b"));
        let mut r = attempt_of(&owner, &format!("BLPOP {a} {b} 0"), true);
        let (parts, last) = hop(r.refused());
        assert!(last);
        assert_eq!(notifies(&parts), [(0, None), (1, None)]);
        let got = reply(r.next(done(2), Instant::now()));
        assert!(got.starts_with(b"-OOM"), "{got:?}");
        let mut r = attempt_of(&owner, &format!("BLPOP {a} {b} 0"), false);
        assert!(reply(r.refused()).starts_with(b"-OOM"));
    }

    #[test]
    fn a_dry_run_checks_arguments_and_reads_the_timeout() {
        let run = |line: &str| {
            let (src, ranges) = split_words(line);
            let a = Args {
                src: &src,
                ranges: &ranges,
            };
            let spec = lookup(a.get(0)).expect("a known command");
            let mut buf = Vec::new();
            let r = dry_run(spec, &a, 1000, &mut Out::new(&mut buf, false));
            (r, String::from_utf8(buf).unwrap())
        };
        assert_eq!(
            run("BLPOP a b 1.5"),
            (
                Attempt::WouldBlock {
                    timeout_ms: Some(1500)
                },
                String::new()
            )
        );
        assert_eq!(
            run("BZPOPMIN a b 0").0,
            Attempt::WouldBlock { timeout_ms: None }
        );
        let (r, out) = run("BLPOP a b -1");
        assert_eq!(r, Attempt::Answered);
        assert!(out.starts_with("-ERR timeout is negative"), "{out}");
    }
}

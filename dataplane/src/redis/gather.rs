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

use std::cell::RefCell;

use super::Ctx;
use crate::cache::cmd::{exec_key, OomCheck};
use crate::cache::dump::{dump_key, restore_key};
use crate::cache::op::{key_mode, parse_frame, Key, Op as CacheOp, Res as CacheRes};
use crate::cache::slot::{key_slot, SLOTS};
use crate::cache::store::Store;
use crate::proto::resp::command::{lookup, Spec};
use crate::proto::resp::errors::OOM;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
use crate::shard::{Act, Launch};
use crate::txn::{Access, Op, Participant, Res, Rounds, Step};

use super::encode;

thread_local! {
    /// The store gathered commands run in, one per shard thread, empty between commands.
    static SCRATCH: RefCell<Option<Store>> = const { RefCell::new(None) };
}

/// Seed of the scratch store's random choices (SPOP, SRANDMEMBER ...).
const SCRATCH_SEED: u64 = 0x5eed_9a7e;

/// Start `spec` (the command in `frame`, parsed as `a`) over its keys' owners.
pub fn launch(ctx: &mut Ctx, spec: &'static Spec, a: &Args, frame: &[u8], resp3: bool) -> Act {
    let mut parts: Vec<(usize, Vec<Key>)> = Vec::new();
    spec.for_each_key(a, |k| {
        let shard = ctx.owner.shard(key_slot(k));
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
    });
    if !ctx.room(parts.iter().map(|(s, _)| s)) {
        return Act::Blocked;
    }
    let mode = key_mode(spec);
    let participants = parts
        .iter()
        .map(|(shard, keys)| {
            let mut access = Access::new(ctx.conn);
            for k in keys {
                access.add(k, mode);
            }
            Participant {
                shard: *shard,
                access,
                denyoom: spec.denyoom(),
            }
        })
        .collect();
    Act::Launch(Launch {
        rounds: Box::new(Gather {
            frame: frame.into(),
            resp3,
            now_ms: ctx.now_ms,
            parts,
            stage: Stage::Dump,
        }),
        atomic: Some(participants),
        family: spec.family,
    })
}

enum Stage {
    Dump,
    Run,
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
}

/// Keys to write back, per owner.
pub(super) type Restores = Vec<(usize, Vec<(Key, Option<Vec<u8>>)>)>;

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
    /// Run the command over the gathered values: its reply, and what changed.
    fn run(&self, results: Vec<Res>) -> (Vec<u8>, Restores) {
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
        in_scratch(&self.parts, dumps, self.now_ms, |store| {
            let mut reply = Vec::new();
            exec_key(
                store,
                spec,
                &a,
                key_slot(a.get(1)),
                self.now_ms,
                OomCheck::Admitted,
                &mut Out::new(&mut reply, self.resp3),
            );
            reply
        })
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
                let (reply, restores) = self.run(results);
                if restores.is_empty() {
                    return Step::Reply(reply);
                }
                self.stage = Stage::Reply(reply);
                Step::Hop {
                    parts: restores
                        .into_iter()
                        .map(|(s, kvs)| (s, Op::Cache(CacheOp::Restore(kvs))))
                        .collect(),
                    last: true,
                }
            }
            Stage::Reply(reply) => Step::Reply(reply),
            Stage::Done => panic!("a gathered command stepped after its reply"),
        }
    }

    fn refused(&mut self) -> Step {
        Step::Reply(encode(self.resp3, |o| o.error(OOM)))
    }
}

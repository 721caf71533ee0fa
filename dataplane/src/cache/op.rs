//! The cache's part of the one transaction `Op` type (`txn::Op`): what a shard runs against
//! its store for another shard's request, for a part of a multi-key command, or for a hop
//! of a transaction, and what comes back.

use super::cmd::server::{self, Setting, ShardInfo};
use super::cmd::{exec_key, keys, strings, OomCheck};
use super::dump::{dump_key, restore_key};
use super::slot::key_slot;
use super::store::Store;
use crate::proto::resp::command::{lookup, Route, Spec};
use crate::proto::resp::parse::{self, Frame, Limits};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
use crate::runtime::slab::SlabKey;
use crate::txn::{Access, ConnId, Mode, Scheduler};

pub type Key = Box<[u8]>;
/// A key and its value (MSET).
pub type Pair = (Key, Key);

#[derive(Debug, Clone)]
pub enum Op {
    /// A single-key command as the client sent it (one RESP frame); the reply comes back
    /// encoded for the connection's protocol.
    Command {
        frame: Box<[u8]>,
        resp3: bool,
        /// A restricted user's script command: who runs it (`script::as_caller`).
        caller: crate::auth::ScriptCaller,
    },
    Mget(Vec<Key>),
    Mset(Vec<Pair>),
    /// MSETNX with every key on this shard.
    Msetnx(Vec<Pair>),
    Del(Vec<Key>),
    Exists(Vec<Key>),
    Touch(Vec<Key>),
    Dbsize,
    Flush,
    Keys(Vec<u8>),
    /// RANDOMKEY's part; `seed` makes the shard's pick.
    RandomKey {
        seed: u64,
    },
    Scan {
        cursor: usize,
        count: usize,
        pattern: Option<Vec<u8>>,
        kind: Option<u8>,
    },
    Info,
    Configure(Setting),
    Watch {
        conn: ConnId,
        keys: Vec<Key>,
    },
    /// EXEC's check: did anything `conn` watches here change? Its watches here end.
    CheckWatch {
        conn: ConnId,
    },
    Unwatch {
        conn: ConnId,
    },
    /// A blocking command (BLPOP ...) whose keys this shard owns: answered at once when it
    /// finds data, else parked on its keys (`shard/blocked.rs`) until a write, its timeout
    /// or its connection's end answers it. Run anywhere else, it answers at once.
    Block {
        frame: Box<[u8]>,
        resp3: bool,
        origin: ConnId,
    },
    /// Connection `conn` closed: its parked commands here are dropped.
    Unblock {
        conn: ConnId,
    },
    /// A blocking command over keys of several shards, from its client's shard (whose
    /// waiter is `waiter`): it found `keys` (this shard's) empty and waits on them (Some),
    /// or it is over (None). Its notify-only waiter here is armed (placed in line, or ready
    /// to wake again) or dropped (`shard/blocked.rs`).
    Notify {
        waiter: SlabKey,
        origin: ConnId,
        /// The kind of value it waits for.
        kind: u8,
        keys: Option<Vec<Key>>,
    },
    /// To a blocking command's client's shard: a key its waiter `waiter` waits on was
    /// written; it tries again.
    Wake {
        waiter: SlabKey,
    },
    /// On a blocking command's client's shard, inside an attempt: may the attempt take
    /// what it found (does `waiter` still wait, with its client connected)? Count 1 or 0.
    Claim {
        waiter: SlabKey,
    },
    /// The keys' values as bytes (`cache/dump.rs`): the first hop of a command whose keys
    /// live on several shards.
    Dump(Vec<Key>),
    /// Set each key to its dumped value, or delete it (None): that command's last hop.
    Restore(Vec<(Key, Option<Vec<u8>>)>),
    /// Several ops run at once and in order (a transaction on one shard); none of them
    /// when `watch` is a connection whose watches here changed, or when `denyoom` and the
    /// shard is over its memory limit (then the answer is `Oom`).
    Batch {
        ops: Vec<Op>,
        watch: Option<ConnId>,
        denyoom: bool,
    },
}

#[derive(Debug, Clone)]
pub enum Res {
    Encoded(Vec<u8>),
    Values(Vec<Option<Vec<u8>>>),
    Count(i64),
    Keys(Vec<Vec<u8>>),
    /// A sliced KEYS part's answer (`shard/sliced.rs`): `n` keys already written as RESP
    /// bulk strings, one after the other, so the join copies bytes rather than encoding
    /// and freeing a million small vectors in one turn.
    KeysEncoded {
        n: usize,
        bulks: Vec<u8>,
    },
    /// A shard's random key (None when it has none) and its key count.
    RandomKey {
        key: Option<Vec<u8>>,
        weight: u64,
    },
    Scan {
        next: usize,
        keys: Vec<Vec<u8>>,
    },
    Info(ShardInfo),
    /// [`Op::Dump`]'s values, in key order (None: no such key).
    Dumps(Vec<Option<Vec<u8>>>),
    Done,
    Oom,
    Changed(bool),
    /// A batch's results, or None when its watch check failed and nothing ran.
    Batch(Option<Vec<Res>>),
}

/// Frames travelling between shards were parsed once already; re-parsing them needs no
/// tighter bounds than the frame itself.
fn forwarded_limits(frame: &[u8]) -> Limits {
    Limits {
        bulk_bytes_max: frame.len(),
        ..Limits::default()
    }
}

/// Parse a command frame this node parsed before (forwarded, or queued by MULTI) into
/// `args` (ranges into the frame, or into `scratch` for an inline one). None if it is not a
/// whole frame, which the node never passes on.
pub fn parse_frame<'a>(
    frame: &'a [u8],
    args: &'a mut Vec<(usize, usize)>,
    scratch: &'a mut Vec<u8>,
) -> Option<Args<'a>> {
    let src: &[u8] = match parse::parse(frame, &forwarded_limits(frame), args, scratch) {
        Ok(Frame::Multibulk { .. }) => frame,
        Ok(Frame::Inline { .. }) => scratch,
        _ => return None,
    };
    (!args.is_empty()).then_some(Args { src, ranges: args })
}

/// Like [`parse_frame`], for a single-key command (a key at argument 1).
pub fn parse_forwarded<'a>(
    frame: &'a [u8],
    args: &'a mut Vec<(usize, usize)>,
    scratch: &'a mut Vec<u8>,
) -> Option<Args<'a>> {
    parse_frame(frame, args, scratch).filter(|a| a.len() >= 2)
}

/// A forwarded command (one key, or several keys of one shard): its table entry, first
/// argument and mode.
pub struct Forwarded<'a> {
    pub spec: &'static Spec,
    /// Argument 1: the key of a single-key command.
    pub key: &'a [u8],
    pub mode: Mode,
}

impl Forwarded<'_> {
    /// What the command holds: each of its keys, in its mode.
    pub fn access(&self, origin: ConnId, a: &Args) -> Access {
        let mut acc = Access::new(origin);
        self.add_access(&mut acc, a);
        acc
    }

    fn add_access(&self, acc: &mut Access, a: &Args) {
        if self.spec.route == Route::Key {
            acc.add(self.key, self.mode);
        } else {
            self.spec.for_each_key(a, |k| acc.add(k, self.mode));
        }
    }

    /// May it run now: does nothing queued hold any of its keys?
    pub fn free<W>(&self, sched: &Scheduler<W>, origin: ConnId, a: &Args) -> bool {
        keys_free(sched, origin, self.spec, a)
    }
}

/// May `spec`'s command in `a`, from `origin`, run now on this shard: does nothing queued
/// hold any of its keys (in the command's mode)? No allocation.
pub fn keys_free<W>(sched: &Scheduler<W>, origin: ConnId, spec: &Spec, a: &Args) -> bool {
    let mode = key_mode(spec);
    if spec.route == Route::Key {
        return sched.free_for_key(origin, a.get(1), mode);
    }
    let mut free = true;
    spec.for_each_key(a, |k| free = free && sched.free_for_key(origin, k, mode));
    free
}

/// Look a forwarded command up once: what it is and what it touches.
pub fn forwarded<'a>(a: &Args<'a>) -> Forwarded<'a> {
    // The connection's shard looked the command up before sending it.
    let spec = lookup(a.get(0)).expect("a forwarded command is in the table");
    Forwarded {
        spec,
        key: a.get(1),
        mode: key_mode(spec),
    }
}

/// How a single-key command holds its key: writes exclusively, reads shared.
pub fn key_mode(spec: &Spec) -> Mode {
    if spec.writes() {
        Mode::Write
    } else {
        Mode::Read
    }
}

/// Run a forwarded single-key command, encoding its reply into `out`.
pub fn run_command(
    store: &mut Store,
    f: &Forwarded,
    a: &Args,
    now: u64,
    oom: OomCheck,
    out: &mut Out,
) {
    exec_key(store, f.spec, a, key_slot(f.key), now, oom, out);
}

impl Op {
    /// Add what this op touches on its shard to `acc`.
    pub fn add_access(&self, acc: &mut Access) {
        let keys = |acc: &mut Access, ks: &[Key], m: Mode| {
            for k in ks {
                acc.add(k, m);
            }
        };
        match self {
            Op::Command { frame, .. } | Op::Block { frame, .. } => {
                let (mut args, mut scratch) = (Vec::new(), Vec::new());
                if let Some(a) = parse_forwarded(frame, &mut args, &mut scratch) {
                    forwarded(&a).add_access(acc, &a);
                }
            }
            Op::Mget(ks) | Op::Exists(ks) | Op::Touch(ks) | Op::Dump(ks) => {
                keys(acc, ks, Mode::Read)
            }
            Op::Restore(kvs) => {
                for (k, _) in kvs {
                    acc.add(k, Mode::Write);
                }
            }
            Op::Del(ks) => keys(acc, ks, Mode::Write),
            Op::Mset(ps) | Op::Msetnx(ps) => {
                for (k, _) in ps {
                    acc.add(k, Mode::Write);
                }
            }
            Op::Flush => acc.shard = Some(Mode::Write),
            Op::Batch { ops, .. } => ops.iter().for_each(|o| o.add_access(acc)),
            Op::Dbsize
            | Op::Keys(_)
            | Op::RandomKey { .. }
            | Op::Scan { .. }
            | Op::Info
            | Op::Configure(_)
            | Op::Watch { .. }
            | Op::CheckWatch { .. }
            | Op::Unwatch { .. }
            | Op::Unblock { .. }
            | Op::Notify { .. }
            | Op::Wake { .. }
            | Op::Claim { .. } => {}
        }
    }

    pub fn access(&self, origin: ConnId) -> Access {
        let mut a = Access::new(origin);
        self.add_access(&mut a);
        a
    }
}

/// Run a forwarded command frame; its reply encoded.
fn run_frame(store: &mut Store, frame: &[u8], resp3: bool, now: u64, oom: OomCheck) -> Res {
    let (mut args, mut scratch) = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    match parse_forwarded(frame, &mut args, &mut scratch) {
        Some(a) => {
            let f = forwarded(&a);
            run_command(store, &f, &a, now, oom, &mut Out::new(&mut buf, resp3))
        }
        None => panic!("a forwarded command frame that does not parse"),
    }
    Res::Encoded(buf)
}

/// Run `op` against this shard's store.
pub fn run(store: &mut Store, op: &Op, now: u64, oom: OomCheck) -> Res {
    let checked = oom == OomCheck::Admitted;
    match op {
        Op::Command {
            frame,
            resp3,
            caller,
        } => crate::script::as_caller(caller, || run_frame(store, frame, *resp3, now, oom)),
        Op::Block { frame, resp3, .. } => run_frame(store, frame, *resp3, now, oom),
        Op::Mget(ks) => strings::mget(store, ks, now),
        Op::Mset(ps) => strings::mset(store, ps, now, checked),
        Op::Msetnx(ps) => strings::msetnx(store, ps, now, checked),
        Op::Del(ks) => keys::del(store, ks, now),
        Op::Exists(ks) => keys::count_existing(store, ks, now),
        Op::Touch(ks) => keys::touch(store, ks, now),
        Op::Dbsize => server::dbsize(store),
        Op::Flush => server::flush(store, now),
        Op::Keys(p) => server::keys(store, p, now),
        Op::RandomKey { seed } => server::random_key(store, *seed, now),
        Op::Scan {
            cursor,
            count,
            pattern,
            kind,
        } => server::scan(store, *cursor, *count, pattern.as_deref(), *kind, now),
        Op::Info => server::info(store),
        Op::Configure(s) => server::configure(store, s),
        Op::Watch { conn, keys } => {
            for k in keys {
                store.watch(*conn, k, now);
            }
            Res::Done
        }
        Op::CheckWatch { conn } => Res::Changed(store.watch_changed(*conn, now)),
        // The shard runs these itself (`shard/blocked.rs`).
        Op::Unblock { .. } | Op::Notify { .. } | Op::Wake { .. } | Op::Claim { .. } => Res::Done,
        Op::Dump(ks) => Res::Dumps(ks.iter().map(|k| dump_key(store, k, now)).collect()),
        Op::Restore(kvs) => {
            for (k, v) in kvs {
                // The bytes were made by `dump_key` on this node: a form that does not read
                // back is a bug, not input.
                assert!(
                    restore_key(store, k, v.as_deref(), now),
                    "a dump that does not load"
                );
            }
            Res::Done
        }
        Op::Unwatch { conn } => {
            store.unwatch(*conn);
            Res::Done
        }
        Op::Batch {
            ops,
            watch,
            denyoom,
        } => {
            // Memory first (Redis refuses such an EXEC before it looks at watches).
            if *denyoom && !store.make_room(now) {
                if let Some(conn) = watch {
                    store.unwatch(*conn);
                }
                return Res::Oom;
            }
            if let Some(conn) = watch {
                if store.watch_changed(*conn, now) {
                    return Res::Batch(None);
                }
            }
            let admitted = OomCheck::Admitted;
            Res::Batch(Some(
                ops.iter().map(|o| run(store, o, now, admitted)).collect(),
            ))
        }
    }
}

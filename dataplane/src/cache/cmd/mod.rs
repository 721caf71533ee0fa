//! Command semantics on the shard that owns the key(s), one module per family (as Dragonfly's
//! `*_family` files): [`strings`], [`hashes`], [`lists`], [`sets`], [`zsets`], [`bits`]
//! (bitmaps and string ranges), [`keys`] (expiry, type, delete, exists) and [`server`] (the
//! shard's part of DBSIZE, FLUSHALL, KEYS, SCAN, INFO, CONFIG SET). A family that holds
//! several concerns is a folder, one file per concern, its `mod.rs` the dispatch.
//!
//! A command whose keys are several (`Route::Multi`) runs here with all of them on this
//! store: it finds each key's slot with `key_slot`; the `slot` argument is argument 1's.
//!
//! Pure over a [`Store`], a clock value and an output buffer: no I/O, so every command is
//! unit-tested here without sockets. Single-key commands write their RESP reply directly;
//! the shard's part of a multi-key or all-shard command returns a [`super::op::Res`] that
//! the connection's shard joins with the other parts.

pub mod bits;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod scan;
pub mod server;
pub mod sets;
pub mod sort;
pub mod strings;
pub mod zsets;

use super::store::Store;
use crate::proto::resp::command::{Family, Spec};
use crate::proto::resp::errors::{wrong_args, OOM};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

/// Whether a write that may grow memory is refused over the limit (`noeviction`), or was
/// already admitted: a transaction checks memory once, when it is scheduled, so that its
/// commands then apply all or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomCheck {
    Refuse,
    Admitted,
}

/// Run a single-key command. `slot` is the key's slot, already computed for routing.
pub fn exec_key(
    store: &mut Store,
    spec: &Spec,
    a: &Args,
    slot: u16,
    now: u64,
    oom: OomCheck,
    out: &mut Out,
) {
    // Slots on the move, and the move's own commands (issue 12, `cache/migrate.rs`).
    if crate::cache::migrate::intercept(store, spec, a, slot, now, out) {
        return;
    }
    if spec.denyoom() && !store.make_room(now) && oom == OomCheck::Refuse {
        out.error(OOM);
        return;
    }
    if spec.blocking() {
        // Run where it cannot wait (inside MULTI or a script, or forwarded as a plain
        // command): it answers what it finds, or its timeout's reply at once.
        if let Attempt::WouldBlock { .. } = try_blocking(store, spec, a, now, out) {
            timed_out(spec, out);
        }
        return;
    }
    match spec.family {
        Family::Read | Family::Write => strings::exec(store, spec, a, slot, now, out),
        Family::Hash => hashes::exec(store, spec, a, slot, now, out),
        Family::Keyspace => keys::exec(store, spec, a, slot, now, out),
        Family::List => lists::exec(store, spec, a, slot, now, out),
        Family::Set => sets::exec(store, spec, a, slot, now, out),
        Family::Zset => zsets::exec(store, spec, a, slot, now, out),
        Family::Bitmap => bits::exec(store, spec, a, slot, now, out),
        Family::Script => crate::script::exec(store, spec, a, now, oom, out),
        Family::Connection | Family::Server | Family::Transaction => {
            out.error(&wrong_args(spec.name))
        }
    }
}

/// What a blocking command's attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// It wrote its reply: data, or an error.
    Answered,
    /// Every key is empty; nothing was written. `timeout_ms` is the wait the command asked
    /// for (None: forever).
    WouldBlock { timeout_ms: Option<u64> },
}

/// One attempt of a [`crate::proto::resp::command::BLOCKING`] command (BLPOP, BLMOVE,
/// BZPOPMIN ...) against this store, which holds all its keys.
pub fn try_blocking(store: &mut Store, spec: &Spec, a: &Args, now: u64, out: &mut Out) -> Attempt {
    match spec.family {
        Family::List => lists::try_blocking(store, spec, a, now, out),
        Family::Zset => zsets::try_blocking(store, spec, a, now, out),
        _ => {
            out.error(&wrong_args(spec.name));
            Attempt::Answered
        }
    }
}

/// The reply of a blocking command whose timeout passed (a null of the command's shape).
pub fn timed_out(spec: &Spec, out: &mut Out) {
    match spec.family {
        Family::List => lists::timed_out(spec, out),
        Family::Zset => zsets::timed_out(spec, out),
        _ => out.null(),
    }
}

pub(crate) fn parse_f64(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.trim() != s {
        return None;
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().ok()?,
    };
    if v.is_nan() {
        return None;
    }
    Some(v)
}

/// An expiry option turned into an absolute unix-ms deadline.
pub(crate) fn deadline(unit_ms: i64, absolute: bool, v: i64, now_ms: u64) -> Option<u64> {
    let ms = v.checked_mul(unit_ms)?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(now_ms as i64)?
    };
    u64::try_from(at).ok()
}

/// EX/PX/EXAT/PXAT: the unit in ms and whether the value is absolute.
pub(crate) fn expiry_option(a: &Args, i: usize) -> Option<(i64, bool)> {
    if a.eq(i, "EX") {
        Some((1000, false))
    } else if a.eq(i, "PX") {
        Some((1, false))
    } else if a.eq(i, "EXAT") {
        Some((1000, true))
    } else if a.eq(i, "PXAT") {
        Some((1, true))
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::cache::slot::key_slot;
    use crate::proto::resp::command::{lookup, Cmd};

    /// Run one command line against a store and return the raw RESP2 reply.
    pub fn run(store: &mut Store, now: u64, line: &str) -> String {
        let (src, ranges) = crate::proto::resp::args::split_words(line);
        let a = Args {
            src: &src,
            ranges: &ranges,
        };
        let spec = lookup(a.get(0)).expect("known command");
        assert!(spec.arity_ok(a.len()), "arity for {line}");
        // Multi-key commands run as their parts do (all keys here).
        let keys: Vec<Box<[u8]>> = (1..a.len()).map(|i| a.get(i).into()).collect();
        let part = match spec.cmd {
            Cmd::Del | Cmd::Unlink => Some(super::keys::del(store, &keys, now)),
            Cmd::Exists => Some(super::keys::count_existing(store, &keys, now)),
            Cmd::Touch => Some(super::keys::touch(store, &keys, now)),
            _ => None,
        };
        if let Some(res) = part {
            let crate::cache::op::Res::Count(n) = res else {
                panic!("{line} answered {res:?}");
            };
            return format!(":{n}\r\n");
        }
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, false);
        exec_key(
            store,
            spec,
            &a,
            key_slot(a.get(1)),
            now,
            OomCheck::Refuse,
            &mut out,
        );
        // As the shard does between commands: every test of a small collection also
        // checks that its inline form round-trips.
        store.settle();
        String::from_utf8(buf).unwrap()
    }

    pub fn store() -> Store {
        Store::new(0, crate::cache::slot::SLOTS, 7)
    }
}

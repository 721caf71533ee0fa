//! Sorted sets: semantics over a shard's store. (Being built.)

use super::Attempt;
use crate::cache::store::Store;
use crate::proto::resp::command::Spec;
use crate::proto::resp::errors::wrong_args;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub fn exec(_store: &mut Store, spec: &Spec, _a: &Args, _slot: u16, _now: u64, out: &mut Out) {
    out.error(&wrong_args(spec.name))
}

/// One attempt of a blocking command (see `cache::cmd::try_blocking`).
pub fn try_blocking(
    _store: &mut Store,
    spec: &Spec,
    _a: &Args,
    _now: u64,
    out: &mut Out,
) -> Attempt {
    out.error(&wrong_args(spec.name));
    Attempt::Answered
}

/// A blocking command's reply when its timeout passes.
pub fn timed_out(_spec: &Spec, out: &mut Out) {
    out.null_array();
}

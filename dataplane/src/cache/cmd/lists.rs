//! Lists: semantics over a shard's store. (Being built.)

use crate::cache::store::Store;
use crate::proto::resp::command::Spec;
use crate::proto::resp::errors::wrong_args;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub fn exec(_store: &mut Store, spec: &Spec, _a: &Args, _slot: u16, _now: u64, out: &mut Out) {
    out.error(&wrong_args(spec.name))
}

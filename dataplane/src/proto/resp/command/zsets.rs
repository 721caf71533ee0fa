//! Sorted sets: the commands, their arity, flags, routes. Semantics in `cache/cmd`.

#[allow(unused_imports)]
use super::{
    s, Cmd, Family as F, KeySpec, Route as R, Spec, BLOCKING, DENYOOM, NOSCRIPT, READONLY, WRITE,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZsetCmd {}

pub static TABLE: &[Spec] = &[];

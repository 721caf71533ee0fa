//! Scripting and functions: the commands, their arity, flags, routes. Semantics in
//! `crate::script`.
//!
//! EVAL and FCALL hold their declared keys exclusively (WRITE) since a script may write
//! any of them; the _RO forms share them (READONLY). SCRIPT and FUNCTION answer on the
//! connection's shard: what they manage is node-wide (`script::Shared`).

use super::{s, Cmd, Family as F, KeySpec, Route as R, Spec, NOSCRIPT, READONLY, WRITE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptCmd {
    Eval,
    Evalsha,
    EvalRo,
    EvalshaRo,
    Fcall,
    FcallRo,
    Script,
    Function,
}

const KEYS: R = R::Multi(KeySpec::NumKeys { at: 2, lead: false });

pub static TABLE: &[Spec] = &[
    s(
        "eval",
        Cmd::Scripts(ScriptCmd::Eval),
        -3,
        WRITE | NOSCRIPT,
        KEYS,
        F::Script,
    ),
    s(
        "evalsha",
        Cmd::Scripts(ScriptCmd::Evalsha),
        -3,
        WRITE | NOSCRIPT,
        KEYS,
        F::Script,
    ),
    s(
        "eval_ro",
        Cmd::Scripts(ScriptCmd::EvalRo),
        -3,
        READONLY | NOSCRIPT,
        KEYS,
        F::Script,
    ),
    s(
        "evalsha_ro",
        Cmd::Scripts(ScriptCmd::EvalshaRo),
        -3,
        READONLY | NOSCRIPT,
        KEYS,
        F::Script,
    ),
    s(
        "fcall",
        Cmd::Scripts(ScriptCmd::Fcall),
        -3,
        WRITE | NOSCRIPT,
        KEYS,
        F::Script,
    ),
    s(
        "fcall_ro",
        Cmd::Scripts(ScriptCmd::FcallRo),
        -3,
        READONLY | NOSCRIPT,
        KEYS,
        F::Script,
    ),
    s(
        "script",
        Cmd::Scripts(ScriptCmd::Script),
        -2,
        NOSCRIPT,
        R::Local,
        F::Script,
    ),
    s(
        "function",
        Cmd::Scripts(ScriptCmd::Function),
        -2,
        NOSCRIPT,
        R::Local,
        F::Script,
    ),
];

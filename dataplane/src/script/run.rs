//! Running one script or function to completion on this shard: the `redis.call` bridge into
//! the shard's store, the checks Redis makes on each call (script_lua.c, script.c), the
//! clock and kill hook, and the reply.
//!
//! The store is lent to Lua only for the length of the run, through scoped functions set as
//! `redis.call` and `redis.pcall`; nothing of it outlives the run.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use mlua::{Function, HookTriggers, Lua, MultiValue, Table, Value, VmState};

use super::convert::{error_table, fmt_g, lua_to_reply, reply_to_lua, string_field};
use super::vm::{raise, Vm};
use super::{RunSlot, Shared};
use crate::auth::acl::Denied;
use crate::auth::{LogEntry, Reason, ScriptCaller};
use crate::cache::cmd::{exec_key, keys as key_cmds, strings, OomCheck};
use crate::cache::op::{self, Key, Op, Res};
use crate::cache::slot::key_slot;
use crate::cache::store::Store;
use crate::limits::{SCRIPT_GC_PERIOD, SCRIPT_HOOK_INSTRUCTIONS};
use crate::proto::resp::command::{lookup, Cmd, Family, Route, Spec, NOSCRIPT};
use crate::proto::resp::errors::{self, script as err};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

/// One invocation: what it may do and the keys it declared.
pub struct Invocation<'a> {
    /// The sha1 of an EVAL script, or the function's name (for error messages and STATS).
    pub name: &'a str,
    pub eval: bool,
    pub keys: Vec<&'a [u8]>,
    pub args: Vec<&'a [u8]>,
    /// Write commands are refused (EVAL_RO, FCALL_RO, `no-writes`).
    pub read_only: bool,
    /// Commands that may grow memory run even when the shard is out of it (`allow-oom`).
    pub allow_oom: bool,
    /// The shard was out of memory when the script started (Redis checks once, before).
    pub oom_at_start: bool,
    /// Every key a command touches must be declared (a node with several shards: the
    /// script's store holds only the declared keys for sure).
    pub strict: bool,
    /// The whole command, for FUNCTION STATS.
    pub command: Vec<Vec<u8>>,
    /// The node's registry and this shard's place in it.
    pub shared: &'a Arc<Shared>,
    pub shard: usize,
    /// A restricted user running the script: each call is checked against its ACL.
    pub caller: ScriptCaller,
}

/// What the hook and the bridge share with the run.
struct RunState {
    shared: Arc<Shared>,
    shard: usize,
    started: Instant,
    eval: bool,
    /// The run wrote: it can no longer be killed.
    dirty: Cell<bool>,
    /// Killed: the hook now fires on every instruction, so a pcall cannot hold it.
    killed: Cell<bool>,
    /// Why it was killed (the error it keeps raising).
    why: Cell<&'static str>,
    warned: Cell<bool>,
}

impl RunState {
    fn slot(&self) -> &RunSlot {
        &self.shared.runs[self.shard]
    }
}

/// The count hook: past the busy threshold the script is reported, and a kill from another
/// shard (SCRIPT KILL, FUNCTION KILL) stops it with Redis's error unless it has written.
fn hook(st: &Rc<RunState>, lua: &Lua) -> mlua::Result<VmState> {
    if st.killed.get() {
        return stop(st, lua);
    }
    let slot = st.slot();
    let mut kill = slot.kill.load(std::sync::atomic::Ordering::SeqCst) && !st.dirty.get();
    let mut why = err::KILLED;
    let elapsed_ms = st.started.elapsed().as_millis() as u64;
    let busy_ms = st.shared.busy_ms();
    if busy_ms > 0 && elapsed_ms >= busy_ms {
        if !st.warned.get() {
            st.warned.set(true);
            tracing::warn!(
                shard = st.shard,
                "Slow script detected: still in execution after {elapsed_ms} milliseconds. You can try killing the script using the {} command.",
                if st.eval { "SCRIPT KILL" } else { "FUNCTION KILL" }
            );
        }
        // With one shard no connection can reach SCRIPT KILL while this thread runs the
        // script: stop it here, as a kill would, if that leaves nothing half done.
        if st.shared.nshards == 1 && !st.dirty.get() {
            kill = true;
            why = err::KILLED_SLOW;
        }
    }
    if kill {
        tracing::warn!(shard = st.shard, "Lua script killed: {why}");
        st.why.set(why);
        arm_kill(st, lua)?;
        return stop(st, lua);
    }
    Ok(VmState::Continue)
}

/// Raise the kill error, but only in the script's own code: the prelude code that runs the
/// script under xpcall (and returns its result) must finish, or the error would escape
/// past the message handler.
fn stop(st: &Rc<RunState>, lua: &Lua) -> mlua::Result<VmState> {
    let in_script = lua
        .inspect_stack(0, |d| {
            d.source()
                .source
                .as_deref()
                .is_some_and(|s| s.starts_with('@'))
        })
        .unwrap_or(false);
    if in_script {
        Err(mlua::Error::runtime(st.why.get()))
    } else {
        Ok(VmState::Continue)
    }
}

/// The script is killed: from now on the hook fires on every instruction and raises, so
/// that no pcall can hold the script (as Redis switches its hook to every line).
fn arm_kill(st: &Rc<RunState>, lua: &Lua) -> mlua::Result<()> {
    st.killed.set(true);
    let again = st.clone();
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(1),
        move |lua, _| hook(&again, lua),
    )
}

/// Run `func` (an EVAL chunk, or a registered function) and write its reply.
pub fn run(vm: &Vm, func: &Function, inv: &Invocation, store: &mut Store, now: u64, out: &mut Out) {
    let st = Rc::new(RunState {
        shared: inv.shared.clone(),
        shard: inv.shard,
        started: Instant::now(),
        eval: inv.eval,
        dirty: Cell::new(false),
        killed: Cell::new(false),
        why: Cell::new(err::KILLED),
        warned: Cell::new(false),
    });
    st.slot().start(inv.eval, inv.name, &inv.command);
    let h = st.clone();
    let hooked = vm
        .lua
        .set_global_hook(
            HookTriggers::new().every_nth_instruction(SCRIPT_HOOK_INSTRUCTIONS),
            move |lua, _| hook(&h, lua),
        )
        .is_ok();
    vm.session.resp3.set(false);
    *vm.session.caller.borrow_mut() = inv.caller.as_ref().map(|c| c.user.clone());
    let result = invoke(vm, func, inv, store, now, &st);
    *vm.session.caller.borrow_mut() = None;
    if hooked {
        vm.lua.remove_global_hook();
        vm.lua.remove_hook();
    }
    st.slot().end();
    match result {
        Ok(Ok(v)) => lua_to_reply(&v, vm.session.resp3.get(), out, 0),
        Ok(Err(t)) => out.error(&failure_text(&t, inv.name)),
        Err(e) => out.error(&format!(
            "ERR Error running script {}, {}",
            inv.name,
            super::vm::error_message(&e)
        )),
    }
    if vm.gc_tick() {
        let _ = vm.lua.gc_step_kbytes(SCRIPT_GC_PERIOD as i32);
    }
}

/// The reply to a script that raised `t` (`{err=, source=, line=}`): Redis's
/// "<err> script: <name>, on <source>:<line>."
fn failure_text(t: &Table, name: &str) -> String {
    let msg = string_field(t, "err")
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .unwrap_or_else(|| "ERR unknown error".into());
    match (string_field(t, "source"), t.raw_get::<Option<i64>>("line")) {
        (Some(source), Ok(Some(line))) => format!(
            "{msg} script: {name}, on {}:{line}.",
            String::from_utf8_lossy(&source)
        ),
        _ => msg,
    }
}

/// Lend the store to `redis.call`, run, take the store back. The outer Result is Lua
/// failing in a way scripts cannot cause (out of memory while setting up ...); the inner one
/// is the script's own result or the error table it raised.
fn invoke(
    vm: &Vm,
    func: &Function,
    inv: &Invocation,
    store: &mut Store,
    now: u64,
    st: &Rc<RunState>,
) -> mlua::Result<Result<Value, Table>> {
    let lua = &vm.lua;
    let keys = lua.create_sequence_from(
        inv.keys
            .iter()
            .map(|k| lua.create_string(k))
            .collect::<mlua::Result<Vec<_>>>()?,
    )?;
    let args = lua.create_sequence_from(
        inv.args
            .iter()
            .map(|a| lua.create_string(a))
            .collect::<mlua::Result<Vec<_>>>()?,
    )?;
    let mut declared: Vec<&[u8]> = inv.keys.clone();
    declared.sort_unstable();
    let bridge = RefCell::new(Bridge {
        store,
        now,
        inv,
        declared,
        st: st.clone(),
        session: vm.session.clone(),
        argv: Vec::new(),
        ranges: Vec::new(),
        reply: Vec::new(),
    });
    lua.scope(|scope| {
        // redis.call raises a failed command's error table (as a Rust error the message
        // handler turns back into the table); redis.pcall returns it.
        let call = scope.create_function(|lua, a: MultiValue| {
            let (v, failed) = bridge.borrow_mut().call(lua, a)?;
            match (failed, &v) {
                (true, Value::Table(t)) => Err(raise(&string_field(t, "err").unwrap_or_default())),
                _ => Ok(v),
            }
        })?;
        let pcall =
            scope.create_function(|lua, a: MultiValue| Ok(bridge.borrow_mut().call(lua, a)?.0))?;
        vm.api.raw_set("call", call)?;
        vm.api.raw_set("pcall", pcall)?;
        let (ok, v): (bool, Value) = if inv.eval {
            vm.globals.raw_set("KEYS", keys)?;
            vm.globals.raw_set("ARGV", args)?;
            vm.xpcall.call((func.clone(), vm.handler.clone()))?
        } else {
            vm.run
                .call((func.clone(), vm.handler.clone(), keys, args))?
        };
        vm.api.raw_set("call", vm.outside.clone())?;
        vm.api.raw_set("pcall", vm.outside.clone())?;
        Ok(match (ok, v) {
            (true, v) => Ok(v),
            (false, Value::Table(t)) => Err(t),
            (false, other) => Err(error_table(lua, format!("{other:?}").as_bytes())?),
        })
    })
}

/// `redis.call` / `redis.pcall` for one run.
struct Bridge<'a, 's> {
    store: &'s mut Store,
    now: u64,
    inv: &'a Invocation<'a>,
    /// The declared keys, sorted.
    declared: Vec<&'a [u8]>,
    st: Rc<RunState>,
    session: Rc<super::vm::Session>,
    argv: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    reply: Vec<u8>,
}

/// Why a call was refused before it ran (Redis's wording; Lua adds `ERR `).
type Refusal = String;

impl Bridge<'_, '_> {
    /// Answers (reply, failed): `failed` when the reply is an error table, which redis.call
    /// raises and redis.pcall returns.
    fn call(&mut self, lua: &Lua, a: MultiValue) -> mlua::Result<(Value, bool)> {
        if a.is_empty() {
            return Ok((
                Value::Table(error_table(lua, err::NO_ARGS.as_bytes())?),
                true,
            ));
        }
        self.argv.clear();
        self.ranges.clear();
        for v in a.iter() {
            let start = self.argv.len();
            match v {
                Value::String(s) => self.argv.extend_from_slice(&s.as_bytes()),
                Value::Integer(i) => self.argv.extend_from_slice(fmt_g(*i as f64, 17).as_bytes()),
                Value::Number(n) => self.argv.extend_from_slice(fmt_g(*n, 17).as_bytes()),
                _ => {
                    return Ok((
                        Value::Table(error_table(lua, err::BAD_ARG.as_bytes())?),
                        true,
                    ))
                }
            }
            self.ranges.push((start, self.argv.len()));
        }
        self.reply.clear();
        let done = self.execute();
        if self.st.killed.get() {
            arm_kill(&self.st, lua)?;
        }
        match done {
            Ok(()) => reply_to_lua(lua, &self.reply),
            Err(why) => Ok((Value::Table(error_table(lua, why.as_bytes())?), true)),
        }
    }

    /// Check the call as Redis's `scriptCall` does, then run it into `self.reply`.
    fn execute(&mut self) -> Result<(), Refusal> {
        let a = Args {
            src: &self.argv,
            ranges: &self.ranges,
        };
        let Some(spec) = lookup(a.get(0)) else {
            return Err(err::UNKNOWN_COMMAND.into());
        };
        if !spec.arity_ok(a.len()) {
            return Err(err::ARITY.into());
        }
        if !allowed(spec) {
            return Err(err::NOT_ALLOWED.into());
        }
        if let Some(c) = &self.inv.caller {
            verify_acl(c, spec, &a)?;
        }
        let all_shards = matches!(spec.route, Route::All | Route::Cursor);
        if all_shards && self.inv.strict {
            return Err(err::ALL_SHARDS.into());
        }
        if self.inv.read_only && spec.writes() {
            return Err(err::READ_ONLY.into());
        }
        if spec.denyoom() && !self.inv.allow_oom && self.inv.oom_at_start && !self.st.dirty.get() {
            return Err(format!("-{}", errors::OOM));
        }
        if self.inv.strict {
            let mut undeclared = None;
            spec.for_each_key(&a, |k| {
                if undeclared.is_none() && self.declared.binary_search(&k).is_err() {
                    undeclared = Some(k);
                }
            });
            if let Some(k) = undeclared {
                return Err(err::undeclared(k));
            }
        }
        if spec.writes() && !self.st.dirty.get() {
            // From here on the script cannot be killed (Redis's UNKILLABLE). A kill that
            // raced with this first write wins: nothing has been written yet.
            self.st.dirty.set(true);
            let slot = self.st.slot();
            slot.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
            if slot.kill.load(std::sync::atomic::Ordering::SeqCst) {
                self.st.dirty.set(false);
                self.st.killed.set(true);
                slot.dirty.store(false, std::sync::atomic::Ordering::SeqCst);
                return Err(err::KILLED.into());
            }
        }
        let mut out = Out::new(&mut self.reply, self.session.resp3.get());
        let store = &mut *self.store;
        match spec.route {
            Route::Local => local(spec, &a, self.now, &mut out),
            Route::Keys { step } => several_keys(store, spec, &a, step, self.now, &mut out),
            Route::All | Route::Cursor => every_shard(store, spec, &a, self.now, &mut out),
            Route::Key | Route::Multi(_) => exec_key(
                store,
                spec,
                &a,
                key_slot(a.get(1)),
                self.now,
                OomCheck::Admitted,
                &mut out,
            ),
        }
        Ok(())
    }
}

/// Redis's `scriptVerifyACL`: the calling user's commands and key patterns, a denial
/// logged (ACL LOG, context `lua`) and answered in Redis 7.0's words.
fn verify_acl(c: &crate::auth::Caller, spec: &Spec, a: &Args) -> Result<(), Refusal> {
    let (reason, object, why) = match c.user.check(spec, a) {
        Ok(()) => return Ok(()),
        Err(Denied::Cmd(name)) => (Reason::Command, name, errors::SCRIPT_ACL_CMD),
        Err(Denied::Key(k)) => (
            Reason::Key,
            String::from_utf8_lossy(&k).into_owned(),
            errors::SCRIPT_ACL_KEY,
        ),
    };
    c.users.log(LogEntry {
        count: 1,
        reason,
        context: "lua",
        object,
        username: c.user.name.clone(),
        created: Instant::now(),
        client_info: c.client_info.clone(),
    });
    Err(why.into())
}

/// Commands a script may call: not NOSCRIPT ones (Redis 7 marks every blocking command
/// so), not transactions or connection state, not scripting itself.
fn allowed(spec: &Spec) -> bool {
    if spec.flags & NOSCRIPT != 0 || spec.blocking() {
        return false;
    }
    match spec.family {
        Family::Transaction | Family::Script => false,
        Family::Connection => matches!(spec.cmd, Cmd::Ping | Cmd::Echo | Cmd::Select),
        Family::Server => matches!(
            spec.cmd,
            Cmd::Dbsize | Cmd::Flushdb | Cmd::Flushall | Cmd::Keys | Cmd::Time
        ),
        _ => true,
    }
}

fn local(spec: &Spec, a: &Args, now: u64, out: &mut Out) {
    match spec.cmd {
        Cmd::Time => {
            let us = now.saturating_mul(1000);
            out.array(2);
            out.bulk((us / 1_000_000).to_string().as_bytes());
            out.bulk((us % 1_000_000).to_string().as_bytes());
        }
        Cmd::Ping if a.len() == 1 => out.simple("PONG"),
        Cmd::Ping if a.len() == 2 => out.bulk(a.get(1)),
        Cmd::Echo => out.bulk(a.get(1)),
        Cmd::Select => match a.int(1) {
            Some(0) => out.ok(),
            Some(_) => out.error(errors::DB_INDEX),
            None => out.error(errors::NOT_INT),
        },
        _ => out.error(&errors::wrong_args(spec.name)),
    }
}

/// MGET, MSET, MSETNX, DEL, UNLINK, EXISTS, TOUCH: every key is on this shard (the script's
/// keys are), so the command is its one part.
fn several_keys(store: &mut Store, spec: &Spec, a: &Args, step: usize, now: u64, out: &mut Out) {
    if step == 2 && a.len() % 2 == 0 {
        return out.error(&errors::wrong_args(spec.name));
    }
    let keys: Vec<Key> = (1..a.len())
        .step_by(step)
        .map(|i| a.get(i).into())
        .collect();
    let pairs = || -> Vec<(Key, Key)> {
        (1..a.len())
            .step_by(2)
            .map(|i| (a.get(i).into(), a.get(i + 1).into()))
            .collect()
    };
    let res = match spec.cmd {
        Cmd::Mget => strings::mget(store, &keys, now),
        Cmd::Mset => strings::mset(store, &pairs(), now, true),
        Cmd::Msetnx => strings::msetnx(store, &pairs(), now, true),
        Cmd::Del | Cmd::Unlink => key_cmds::del(store, &keys, now),
        Cmd::Exists => key_cmds::count_existing(store, &keys, now),
        Cmd::Touch => key_cmds::touch(store, &keys, now),
        _ => return out.error(&errors::wrong_args(spec.name)),
    };
    encode_part(spec, res, out);
}

/// DBSIZE, KEYS, FLUSHDB, FLUSHALL on a node whose one shard holds every key.
fn every_shard(store: &mut Store, spec: &Spec, a: &Args, now: u64, out: &mut Out) {
    let op = match spec.cmd {
        Cmd::Dbsize => Op::Dbsize,
        Cmd::Keys => Op::Keys(a.get(1).to_vec()),
        Cmd::Flushdb | Cmd::Flushall => {
            if a.len() > 2 || (a.len() == 2 && !a.eq(1, "ASYNC") && !a.eq(1, "SYNC")) {
                return out.error(errors::SYNTAX);
            }
            Op::Flush
        }
        _ => return out.error(err::ALL_SHARDS),
    };
    let res = op::run(store, &op, now, OomCheck::Admitted);
    encode_part(spec, res, out);
}

fn encode_part(spec: &Spec, res: Res, out: &mut Out) {
    match res {
        Res::Values(vals) => {
            out.array(vals.len());
            for v in &vals {
                out.bulk_opt(v.as_deref());
            }
        }
        Res::Count(n) if spec.cmd == Cmd::Msetnx => out.int((n > 0) as i64),
        Res::Count(n) => out.int(n),
        Res::Keys(keys) => {
            out.array(keys.len());
            for k in &keys {
                out.bulk(k);
            }
        }
        Res::Oom => out.error(errors::OOM),
        _ => out.ok(),
    }
}

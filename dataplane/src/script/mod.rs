//! Lua scripting, as Redis 7.0 has it: EVAL, EVALSHA and their _RO forms, SCRIPT, and
//! functions (FUNCTION LOAD ..., FCALL, FCALL_RO), on one embedded Lua 5.1 engine.
//!
//! Owner and lifecycle: every shard has its own Lua states in a thread-local [`Engine`]
//! (one for EVAL scripts, one for function libraries, as Redis keeps them apart); a script
//! runs to completion on the shard's thread, so it is atomic on that shard and never
//! crosses threads. A script runs on the shard that owns the keys it declares (or, over
//! keys of several shards, on a scratch store the transaction framework fills with them:
//! `redis/gather.rs`); so on a node with several shards every key it touches must be
//! declared, and [`run`] refuses the others with a clear error rather than touch a key
//! this store does not hold.
//!
//! What must be the same on every shard (the script bodies that EVAL or SCRIPT LOAD
//! cached, the function libraries) lives once in the node's [`Shared`] registry. Each
//! shard compiles from it lazily: a script another shard cached is compiled here the first
//! time EVALSHA asks for it, and a generation number tells a shard that its compiled
//! copies are stale (SCRIPT FLUSH, FUNCTION LOAD, DELETE, FLUSH, RESTORE), so these
//! commands answer on the connection's shard and need no message to the others. The
//! registry's locks are taken only on those changes and on a shard's first sight of a
//! script; a cached EVAL takes none.
//!
//! Files: [`vm`] (a sandboxed Lua state and the `redis` API, with `prelude.lua`), [`run`]
//! (one invocation: `redis.call` into the store, the time limit and SCRIPT KILL),
//! [`convert`] (replies to Lua values and back), [`libs`] (`bit`, `cjson`), [`admin`]
//! (SCRIPT and FUNCTION).

pub mod admin;
pub mod convert;
pub mod libs;
pub mod msgpack;
pub mod run;
pub mod vm;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use mlua::Function;

use crate::cache::cmd::OomCheck;
use crate::cache::store::Store;
use crate::limits::SCRIPT_BUSY_MS;
use crate::proto::resp::command::scripting::ScriptCmd;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{self, wrong_args};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
use run::Invocation;
use vm::{Mode, Vm};

/// Script flags (a `#!lua flags=...` line, or `register_function`'s `flags`).
pub mod flags {
    pub const NO_WRITES: u8 = 1;
    pub const ALLOW_OOM: u8 = 2;
    pub const ALLOW_STALE: u8 = 4;
    pub const NO_CLUSTER: u8 = 8;
    pub const ALLOW_CROSS_SLOT: u8 = 16;
    /// An EVAL script without a shebang line: Redis 6 behaviour, flags come from commands.
    pub const EVAL_COMPAT: u8 = 128;

    /// In the order FUNCTION LIST shows them.
    pub const NAMES: [(&str, u8); 5] = [
        ("no-writes", NO_WRITES),
        ("allow-oom", ALLOW_OOM),
        ("allow-stale", ALLOW_STALE),
        ("no-cluster", NO_CLUSTER),
        ("allow-cross-slot-keys", ALLOW_CROSS_SLOT),
    ];

    /// A flag by name, case-insensitively (register_function).
    pub fn parse(name: &str) -> Option<u8> {
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, f)| *f)
    }

    /// An EVAL script's flags from its shebang line, and the line's length (the script
    /// compiles from the newline on, so its line numbers stay). The error as Redis replies.
    pub fn shebang(body: &[u8]) -> Result<(u8, usize), String> {
        if !body.starts_with(b"#!") {
            return Ok((EVAL_COMPAT, 0));
        }
        let Some(end) = body.iter().position(|&c| c == b'\n') else {
            return Err("ERR Invalid script shebang".into());
        };
        let line = String::from_utf8_lossy(&body[..end]);
        let parts: Vec<&str> = line.split_ascii_whitespace().collect();
        let engine = parts.first().copied().unwrap_or("#!");
        if engine != "#!lua" {
            return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
        }
        let mut f = 0;
        for p in &parts[1..] {
            let Some(list) = p.strip_prefix("flags=") else {
                return Err(format!("ERR Unknown lua shebang option: {p}"));
            };
            if list.is_empty() {
                continue;
            }
            for name in list.split(',') {
                match NAMES.iter().find(|(n, _)| *n == name) {
                    Some((_, bit)) => f |= bit,
                    None => return Err(format!("ERR Unexpected flag in script shebang: {name}")),
                }
            }
        }
        Ok((f, end))
    }
}

/// The SHA1 of `data` in lowercase hex (script names, `redis.sha1hex`).
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// The Redis version scripts see (`redis.REDIS_VERSION`, `REDIS_VERSION_NUM`).
pub fn version() -> (&'static str, f64) {
    let v = crate::redis::connection::REDIS_COMPAT_VERSION;
    let mut num = 0u32;
    for part in v.split('.').take(3) {
        num = (num << 8) | part.parse::<u32>().unwrap_or(0);
    }
    (v, num as f64)
}

/// A function library as FUNCTION LOAD accepted it.
#[derive(Clone)]
pub struct Library {
    pub name: String,
    /// The whole code, shebang line included (FUNCTION LIST WITHCODE, DUMP).
    pub code: Arc<[u8]>,
    pub functions: Vec<FunctionInfo>,
}

#[derive(Clone)]
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<String>,
    pub flags: u8,
}

/// A script running on a shard, as other shards see it (SCRIPT KILL, FUNCTION STATS).
pub struct Running {
    pub eval: bool,
    /// The function's name (empty for EVAL scripts).
    pub name: String,
    /// The FCALL command (empty for EVAL scripts).
    pub command: Vec<Vec<u8>>,
    pub started: Instant,
}

/// One shard's running script, if any.
#[derive(Default)]
pub struct RunSlot {
    running: Mutex<Option<Running>>,
    /// Set by SCRIPT KILL / FUNCTION KILL on another shard; the script's hook obeys.
    pub kill: AtomicBool,
    /// The running script has written (so it cannot be killed).
    pub dirty: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RunSlot {
    fn start(&self, eval: bool, name: &str, command: &[Vec<u8>]) {
        let mut g = lock(&self.running);
        self.kill.store(false, Ordering::SeqCst);
        self.dirty.store(false, Ordering::SeqCst);
        *g = Some(Running {
            eval,
            name: if eval {
                String::new()
            } else {
                name.to_string()
            },
            command: command.to_vec(),
            started: Instant::now(),
        });
    }

    fn end(&self) {
        let mut g = lock(&self.running);
        *g = None;
        self.kill.store(false, Ordering::SeqCst);
        self.dirty.store(false, Ordering::SeqCst);
    }
}

/// The node-wide part of scripting: registries every shard compiles from, and each shard's
/// running script. Held in `NodeShared`.
pub struct Shared {
    pub nshards: usize,
    busy_ms: AtomicU64,
    /// sha1 (lowercase hex) -> script body.
    scripts: Mutex<HashMap<String, Arc<[u8]>>>,
    /// Bumped by SCRIPT FLUSH: every shard drops its compiled scripts.
    scripts_gen: AtomicU64,
    libraries: Mutex<Vec<Library>>,
    /// Bumped by every change of the libraries: every shard reloads them.
    libraries_gen: AtomicU64,
    pub runs: Vec<RunSlot>,
}

impl Shared {
    pub fn new(nshards: usize) -> Shared {
        Shared {
            nshards,
            busy_ms: AtomicU64::new(SCRIPT_BUSY_MS),
            scripts: Mutex::new(HashMap::new()),
            scripts_gen: AtomicU64::new(0),
            libraries: Mutex::new(Vec::new()),
            libraries_gen: AtomicU64::new(0),
            runs: (0..nshards.max(1)).map(|_| RunSlot::default()).collect(),
        }
    }

    /// How long a script runs before it counts as slow (Redis's `busy-reply-threshold`);
    /// 0 never.
    pub fn busy_ms(&self) -> u64 {
        self.busy_ms.load(Ordering::Relaxed)
    }

    pub fn set_busy_ms(&self, ms: u64) {
        self.busy_ms.store(ms, Ordering::Relaxed);
    }

    /// SCRIPT KILL (`eval`) or FUNCTION KILL: stop every running script of that kind that
    /// has not written. The error as Redis words it when none could be.
    pub fn kill(&self, eval: bool) -> Result<(), &'static str> {
        let (mut killed, mut unkillable, mut other_kind) = (false, false, false);
        for slot in &self.runs {
            let g = lock(&slot.running);
            let Some(r) = g.as_ref() else { continue };
            if slot.dirty.load(Ordering::SeqCst) {
                unkillable = true;
            } else if r.eval != eval {
                other_kind = true;
            } else {
                slot.kill.store(true, Ordering::SeqCst);
                killed = true;
            }
        }
        if killed {
            Ok(())
        } else if unkillable {
            Err(errors::UNKILLABLE)
        } else if other_kind && eval {
            Err(errors::BUSY_FUNCTION)
        } else if other_kind {
            Err(errors::BUSY_SCRIPT)
        } else {
            Err(errors::NOTBUSY)
        }
    }

    fn script_body(&self, sha: &str) -> Option<Arc<[u8]>> {
        lock(&self.scripts).get(sha).cloned()
    }

    fn add_script(&self, sha: &str, body: &[u8]) {
        let mut g = lock(&self.scripts);
        if !g.contains_key(sha) {
            g.insert(sha.to_string(), body.into());
        }
    }
}

/// A compiled EVAL script.
struct Script {
    func: Function,
    flags: u8,
}

struct EvalState {
    vm: Vm,
    gen: u64,
    scripts: HashMap<String, Script>,
}

/// A registered function, compiled on this shard.
struct Callable {
    func: Function,
    flags: u8,
    name: String,
}

struct FunctionState {
    vm: Vm,
    gen: u64,
    /// Lowercased name -> function (Redis looks functions up case-insensitively).
    functions: HashMap<String, Callable>,
}

/// A shard's scripting engine: its Lua states and what it compiled.
pub struct Engine {
    shared: Arc<Shared>,
    shard: usize,
    eval: Option<EvalState>,
    functions: Option<FunctionState>,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    /// Who runs the script command this thread is executing (set by [`as_caller`]).
    static CALLER: RefCell<crate::auth::ScriptCaller> = const { RefCell::new(None) };
}

/// Run `f` (which executes a command) as `caller`: a script it runs checks each
/// `redis.call` against that user's ACL. The RESP path and the shard that runs a forwarded
/// script command set it; with None (an unrestricted user) nothing is checked.
pub fn as_caller<R>(caller: &crate::auth::ScriptCaller, f: impl FnOnce() -> R) -> R {
    if caller.is_none() {
        return f();
    }
    let before = CALLER.with(|c| c.replace(caller.clone()));
    let r = f();
    CALLER.with(|c| *c.borrow_mut() = before);
    r
}

fn caller() -> crate::auth::ScriptCaller {
    CALLER.with(|c| c.borrow().clone())
}

/// Give this thread (a shard) its engine over the node's registry. A thread that was never
/// attached (a unit test) gets a one-shard registry of its own.
pub fn attach(shared: Arc<Shared>, shard: usize) {
    ENGINE.with(|e| {
        *e.borrow_mut() = Some(Engine {
            shared,
            shard,
            eval: None,
            functions: None,
        })
    });
}

fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    ENGINE.with(|e| {
        let mut g = e.borrow_mut();
        let engine = g.get_or_insert_with(|| Engine {
            shared: Arc::new(Shared::new(1)),
            shard: 0,
            eval: None,
            functions: None,
        });
        f(engine)
    })
}

/// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO, on the shard that holds the keys
/// (from `cache::cmd::exec_key`).
pub fn exec(store: &mut Store, spec: &Spec, a: &Args, now: u64, oom: OomCheck, out: &mut Out) {
    let Cmd::Scripts(c) = spec.cmd else {
        return out.error(&wrong_args(spec.name));
    };
    with_engine(|e| match c {
        ScriptCmd::Eval => e.eval(store, a, false, false, now, oom, out),
        ScriptCmd::EvalRo => e.eval(store, a, false, true, now, oom, out),
        ScriptCmd::Evalsha => e.eval(store, a, true, false, now, oom, out),
        ScriptCmd::EvalshaRo => e.eval(store, a, true, true, now, oom, out),
        ScriptCmd::Fcall => e.fcall(store, a, false, now, oom, out),
        ScriptCmd::FcallRo => e.fcall(store, a, true, now, oom, out),
        ScriptCmd::Script | ScriptCmd::Function => out.error(&wrong_args(spec.name)),
    })
}

/// SCRIPT and FUNCTION, on the connection's shard.
pub fn admin(spec: &Spec, a: &Args, out: &mut Out) {
    with_engine(|e| match spec.cmd {
        Cmd::Scripts(ScriptCmd::Script) => admin::script(e, a, out),
        Cmd::Scripts(ScriptCmd::Function) => admin::function(e, a, out),
        _ => out.error(&wrong_args(spec.name)),
    })
}

/// The number of keys at argument 2: Redis's checks and errors (`bad` for a count that is
/// not an integer).
fn numkeys(a: &Args, bad: &str) -> Result<usize, String> {
    let n = a.int(2).ok_or_else(|| bad.to_string())?;
    if n > a.len() as i64 - 3 {
        return Err(errors::NUMKEYS_TOO_MANY.into());
    }
    if n < 0 {
        return Err(errors::NUMKEYS_NEGATIVE.into());
    }
    Ok(n as usize)
}

/// Redis's checks before a script runs: its flags against the command and memory. Answers
/// (read_only, allow_oom).
fn prepare(fl: u8, ro: bool, oom_at_start: bool) -> Result<(bool, bool), &'static str> {
    let compat = fl & flags::EVAL_COMPAT != 0;
    if !compat {
        if fl & flags::NO_WRITES == 0 && ro {
            return Err(errors::RO_WITH_WRITE_FLAG);
        }
        if oom_at_start && fl & (flags::ALLOW_OOM | flags::NO_WRITES) == 0 {
            return Err(errors::SCRIPT_OOM);
        }
    }
    let read_only = ro || (!compat && fl & flags::NO_WRITES != 0);
    let allow_oom = !compat && fl & flags::ALLOW_OOM != 0;
    Ok((read_only, allow_oom))
}

/// Compile an EVAL script body; the error as Redis replies it.
fn compile_script(vm: &Vm, body: &[u8]) -> Result<Script, String> {
    let (fl, skip) = flags::shebang(body)?;
    let func = vm
        .compile(&body[skip..], "@user_script")
        .map_err(|m| format!("ERR Error compiling script (new function): {m}"))?;
    Ok(Script { func, flags: fl })
}

/// Run a library's top level in `vm` to collect the functions it registers. The error as
/// Redis replies it.
fn load_library(vm: &Vm, code: &[u8]) -> Result<Vec<vm::Registered>, String> {
    use crate::limits::FUNCTION_LOAD_TIMEOUT_MS;
    let func = vm
        .compile(code, "@user_function")
        .map_err(|m| format!("ERR Error compiling function: {m}"))?;
    *vm.session.registering.borrow_mut() = Some(Vec::new());
    let set = vm.set_loading(true);
    let started = Instant::now();
    let timed_out = std::rc::Rc::new(std::cell::Cell::new(false));
    let t = timed_out.clone();
    let hooked = vm
        .lua
        .set_global_hook(
            mlua::HookTriggers::new()
                .every_nth_instruction(crate::limits::SCRIPT_HOOK_INSTRUCTIONS / 10),
            move |_, _| {
                if t.get() || started.elapsed().as_millis() as u64 > FUNCTION_LOAD_TIMEOUT_MS {
                    t.set(true);
                    return Err(mlua::Error::runtime(errors::script::LOAD_TIMEOUT));
                }
                Ok(mlua::VmState::Continue)
            },
        )
        .is_ok();
    let result: mlua::Result<(bool, mlua::Value)> =
        set.and_then(|()| vm.xpcall.call((func, vm.handler.clone())));
    if hooked {
        vm.lua.remove_global_hook();
        vm.lua.remove_hook();
    }
    let _ = vm.set_loading(false);
    let registered = vm
        .session
        .registering
        .borrow_mut()
        .take()
        .unwrap_or_default();
    let failure = |msg: String| Err(format!("ERR Error registering functions: {msg}"));
    match result {
        Err(e) => failure(vm::error_message(&e)),
        Ok((false, v)) => {
            let msg = match &v {
                mlua::Value::Table(t) => convert::string_field(t, "err")
                    .map(|m| String::from_utf8_lossy(&m).into_owned())
                    .unwrap_or_default(),
                other => format!("{other:?}"),
            };
            failure(msg)
        }
        Ok((true, _)) if registered.is_empty() => Err("ERR No functions registered".into()),
        Ok((true, _)) => Ok(registered),
    }
}

/// The library name and engine of FUNCTION LOAD's code (its `#!<engine> name=<name>`
/// line), and where the code after that line starts.
pub fn library_metadata(code: &[u8]) -> Result<(String, String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&c| c == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[..end]);
    let parts: Vec<&str> = line.split_ascii_whitespace().collect();
    let Some(first) = parts.first() else {
        return Err("ERR Invalid library metadata".into());
    };
    let engine = first.get(2..).unwrap_or("").to_string();
    let mut name = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(p[5..].to_string());
            continue;
        }
        return Err(format!("ERR Invalid metadata value given: {p}"));
    }
    let name = name.ok_or("ERR Library name was not given")?;
    Ok((engine, name, end))
}

impl Engine {
    /// The EVAL state, fresh if SCRIPT FLUSH ran since it was made.
    fn eval_state(&mut self) -> Result<&mut EvalState, String> {
        let gen = self.shared.scripts_gen.load(Ordering::Acquire);
        if self.eval.as_ref().is_none_or(|s| s.gen != gen) {
            self.eval = None;
            let vm = Vm::new(Mode::Eval).map_err(|e| format!("ERR {e}"))?;
            self.eval = Some(EvalState {
                vm,
                gen,
                scripts: HashMap::new(),
            });
        }
        self.eval.as_mut().ok_or_else(|| "ERR no Lua state".into())
    }

    /// The function state, reloaded from the registry if the libraries changed.
    fn function_state(&mut self) -> Result<&mut FunctionState, String> {
        let gen = self.shared.libraries_gen.load(Ordering::Acquire);
        if self.functions.as_ref().is_none_or(|s| s.gen != gen) {
            self.functions = None;
            let vm = Vm::new(Mode::Function).map_err(|e| format!("ERR {e}"))?;
            let libs = lock(&self.shared.libraries).clone();
            let gen = self.shared.libraries_gen.load(Ordering::Acquire);
            let mut functions = HashMap::new();
            for lib in &libs {
                let skip = library_metadata(&lib.code).map(|m| m.2).unwrap_or(0);
                match load_library(&vm, &lib.code[skip..]) {
                    Ok(reg) => {
                        for r in reg {
                            functions.insert(
                                r.name.to_ascii_lowercase(),
                                Callable {
                                    func: r.callback,
                                    flags: r.flags,
                                    name: r.name,
                                },
                            );
                        }
                    }
                    Err(e) => tracing::warn!(library = lib.name, "reloading a library: {e}"),
                }
            }
            self.functions = Some(FunctionState { vm, gen, functions });
        }
        self.functions
            .as_mut()
            .ok_or_else(|| "ERR no Lua state".into())
    }

    /// Compile and cache a script here and in the registry (EVAL, SCRIPT LOAD).
    fn cache_script(&mut self, body: &[u8]) -> Result<String, String> {
        let sha = sha1_hex(body);
        let shared = self.shared.clone();
        let st = self.eval_state()?;
        if !st.scripts.contains_key(&sha) {
            let s = compile_script(&st.vm, body)?;
            st.scripts.insert(sha.clone(), s);
        }
        shared.add_script(&sha, body);
        Ok(sha)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval(
        &mut self,
        store: &mut Store,
        a: &Args,
        by_sha: bool,
        ro: bool,
        now: u64,
        oom: OomCheck,
        out: &mut Out,
    ) {
        if by_sha && a.get(1).len() != 40 {
            return out.error(errors::NOSCRIPT);
        }
        let nk = match numkeys(a, errors::NOT_INT) {
            Ok(n) => n,
            Err(e) => return out.error(&e),
        };
        let sha = if by_sha {
            String::from_utf8_lossy(a.get(1)).to_ascii_lowercase()
        } else {
            sha1_hex(a.get(1))
        };
        let shared = self.shared.clone();
        let shard = self.shard;
        let st = match self.eval_state() {
            Ok(st) => st,
            Err(e) => return out.error(&e),
        };
        if !st.scripts.contains_key(&sha) {
            let body: Arc<[u8]> = if by_sha {
                match shared.script_body(&sha) {
                    Some(b) => b,
                    None => return out.error(errors::NOSCRIPT),
                }
            } else {
                a.get(1).into()
            };
            match compile_script(&st.vm, &body) {
                Ok(s) => {
                    st.scripts.insert(sha.clone(), s);
                }
                Err(e) => return out.error(&e),
            }
            if !by_sha {
                shared.add_script(&sha, &body);
            }
        }
        let Some(script) = st.scripts.get(&sha) else {
            return out.error(errors::NOSCRIPT);
        };
        let oom_at_start = oom == OomCheck::Refuse && !store.make_room(now);
        let (read_only, allow_oom) = match prepare(script.flags, ro, oom_at_start) {
            Ok(p) => p,
            Err(e) => return out.error(e),
        };
        let inv = Invocation {
            name: &sha,
            eval: true,
            keys: (3..3 + nk).map(|i| a.get(i)).collect(),
            args: (3 + nk..a.len()).map(|i| a.get(i)).collect(),
            read_only,
            allow_oom,
            oom_at_start,
            strict: shared.nshards > 1,
            command: Vec::new(),
            shared: &shared,
            shard,
            caller: caller(),
        };
        let func = script.func.clone();
        run::run(&st.vm, &func, &inv, store, now, out);
    }

    fn fcall(
        &mut self,
        store: &mut Store,
        a: &Args,
        ro: bool,
        now: u64,
        oom: OomCheck,
        out: &mut Out,
    ) {
        let shared = self.shared.clone();
        let shard = self.shard;
        let st = match self.function_state() {
            Ok(st) => st,
            Err(e) => return out.error(&e),
        };
        let key = String::from_utf8_lossy(a.get(1)).to_ascii_lowercase();
        let Some(f) = st.functions.get(&key) else {
            return out.error(errors::FUNCTION_NOT_FOUND);
        };
        let nk = match numkeys(a, errors::NUMKEYS_BAD) {
            Ok(n) => n,
            Err(e) => return out.error(&e),
        };
        let oom_at_start = oom == OomCheck::Refuse && !store.make_room(now);
        let (read_only, allow_oom) = match prepare(f.flags, ro, oom_at_start) {
            Ok(p) => p,
            Err(e) => return out.error(e),
        };
        let inv = Invocation {
            name: &f.name,
            eval: false,
            keys: (3..3 + nk).map(|i| a.get(i)).collect(),
            args: (3 + nk..a.len()).map(|i| a.get(i)).collect(),
            read_only,
            allow_oom,
            oom_at_start,
            strict: shared.nshards > 1,
            command: (0..a.len()).map(|i| a.get(i).to_vec()).collect(),
            shared: &shared,
            shard,
            caller: caller(),
        };
        let func = f.func.clone();
        run::run(&st.vm, &func, &inv, store, now, out);
    }
}

#[cfg(test)]
mod tests;

//! One sandboxed Lua 5.1 state: the libraries Redis gives scripts, the `redis` API, and the
//! read-only globals (built by `prelude.lua`). A shard has one for EVAL scripts and one for
//! function libraries, as Redis has; both live on the shard's thread only.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mlua::{ChunkMode, Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

use super::convert::fmt_g;
use super::{flags, libs};
use crate::limits::{SCRIPT_GC_PERIOD, SCRIPT_MEMORY_MAX_BYTES};
use crate::proto::resp::command::lookup;

const PRELUDE: &str = include_str!("prelude.lua");

/// EVAL scripts, or function libraries (FUNCTION LOAD, FCALL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Eval,
    Function,
}

/// A function a library registered while it loaded.
pub struct Registered {
    pub name: String,
    pub description: Option<String>,
    pub flags: u8,
    pub callback: Function,
}

/// What the Rust functions of the `redis` API share with the run in progress.
#[derive(Default)]
pub struct Session {
    /// The protocol commands answer the script in (`redis.setresp`); RESP2 at each start.
    pub resp3: Cell<bool>,
    /// While a library loads: the functions it registered so far. None otherwise, and then
    /// `redis.register_function` refuses.
    pub registering: RefCell<Option<Vec<Registered>>>,
    /// The restricted user running the script (None: unrestricted): `redis.acl_check_cmd`
    /// answers for it.
    pub caller: RefCell<Option<std::sync::Arc<crate::auth::acl::User>>>,
}

pub struct Vm {
    pub lua: Lua,
    pub mode: Mode,
    /// The globals scripts see (a read-only proxy).
    pub env: Table,
    /// The real globals behind `env` (KEYS and ARGV are set here).
    pub globals: Table,
    /// `env`'s metatable: its `__index` is the registration API while a library loads.
    env_meta: Table,
    load_env: Option<Table>,
    /// The real `redis` table: `call` and `pcall` are set per run.
    pub api: Table,
    /// What `redis.call` and `redis.pcall` are between runs.
    pub outside: Function,
    pub xpcall: Function,
    /// `run(f, handler, keys, args)`: a registered function under xpcall.
    pub run: Function,
    /// The xpcall message handler: the error as a table with the script's source and line.
    pub handler: Function,
    pub session: Rc<Session>,
    /// Invocations since the last incremental garbage collection step.
    gc_count: Cell<u32>,
}

/// An error table's `err` text, raised from Rust (`redis.call`): Lua sees it as an error
/// value the message handler and `pcall` turn back into the text.
#[derive(Debug)]
pub struct Raised(pub Vec<u8>);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl std::error::Error for Raised {}

pub fn raise(text: &[u8]) -> mlua::Error {
    mlua::Error::external(Raised(text.to_vec()))
}

/// The error table text a Rust function raised, if this error is one.
pub fn raised(e: &mlua::Error) -> Option<&[u8]> {
    match e {
        mlua::Error::CallbackError { cause, .. } => raised(cause),
        mlua::Error::WithContext { cause, .. } => raised(cause),
        mlua::Error::ExternalError(x) => x.downcast_ref::<Raised>().map(|r| &r.0[..]),
        _ => None,
    }
}

/// The text of a Lua error value that is a Rust error (the innermost cause's message).
pub fn error_message(e: &mlua::Error) -> String {
    if let Some(text) = raised(e) {
        return String::from_utf8_lossy(text).into_owned();
    }
    match e {
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::WithContext { cause, .. } => error_message(cause),
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => m.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Bytes of a Lua value as `lua_tolstring` gives them (strings and numbers), else None.
pub fn as_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(fmt_g(*i as f64, 14).into_bytes()),
        Value::Number(n) => Some(fmt_g(*n, 14).into_bytes()),
        _ => None,
    }
}

/// `redis.acl_check_cmd`'s answer (the command is known): may the script's user run
/// this command with these arguments (Redis's ACLCheckAllUserCommandPerm)?
fn acl_allows(session: &Session, a: &MultiValue) -> bool {
    let caller = session.caller.borrow();
    let Some(user) = caller.as_ref() else {
        return true;
    };
    let (mut src, mut ranges) = (Vec::new(), Vec::new());
    for v in a.iter() {
        let start = src.len();
        src.extend_from_slice(&as_bytes(v).unwrap_or_default());
        ranges.push((start, src.len()));
    }
    let args = crate::proto::resp::Args {
        src: &src,
        ranges: &ranges,
    };
    match lookup(args.get(0)) {
        // Keys cannot be read from a request of the wrong arity: the command alone.
        Some(spec) if !spec.arity_ok(args.len()) => user.allows_command(spec, &args),
        Some(spec) => user.check(spec, &args).is_ok(),
        None => false,
    }
}

impl Vm {
    pub fn new(mode: Mode) -> mlua::Result<Vm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        lua.set_memory_limit(SCRIPT_MEMORY_MAX_BYTES)?;
        let session = Rc::new(Session::default());
        let raw = lua.create_table()?;
        raw.raw_set(
            "errstr",
            lua.create_function(|lua, v: Value| {
                Ok(match v {
                    Value::Error(e) => Value::String(lua.create_string(error_message(&e))?),
                    other => other,
                })
            })?,
        )?;
        let outside = lua.create_function(|_, _: MultiValue| -> mlua::Result<()> {
            Err(raise(
                b"ERR redis.call/pcall can only be called inside a script invocation",
            ))
        })?;
        raw.raw_set("outside", outside.clone())?;
        raw.raw_set(
            "sha1hex",
            lua.create_function(|_, v: Value| {
                Ok(super::sha1_hex(&as_bytes(&v).unwrap_or_default()))
            })?,
        )?;
        raw.raw_set(
            "log",
            lua.create_function(|_, (level, msg): (f64, mlua::String)| {
                let msg = msg.to_string_lossy();
                match level as i64 {
                    0 => tracing::debug!(target: "pinion::script", "{msg}"),
                    1 | 2 => tracing::info!(target: "pinion::script", "{msg}"),
                    _ => tracing::warn!(target: "pinion::script", "{msg}"),
                }
                Ok(())
            })?,
        )?;
        let s = session.clone();
        raw.raw_set(
            "setresp",
            lua.create_function(move |_, v: f64| {
                s.resp3.set(v == 3.0);
                Ok(())
            })?,
        )?;
        raw.raw_set(
            "known_command",
            lua.create_function(|_, v: Value| {
                Ok(as_bytes(&v).is_some_and(|name| lookup(&name).is_some()))
            })?,
        )?;
        let s = session.clone();
        raw.raw_set(
            "acl_allows",
            lua.create_function(move |_, a: MultiValue| Ok(acl_allows(&s, &a)))?,
        )?;
        let (version, version_num) = super::version();
        raw.raw_set("version", version)?;
        raw.raw_set("version_num", version_num)?;
        raw.raw_set("bit", libs::bit(&lua)?)?;
        raw.raw_set("cjson", libs::cjson(&lua)?)?;
        raw.raw_set("cmsgpack", super::msgpack::cmsgpack(&lua)?)?;
        if mode == Mode::Function {
            let s = session.clone();
            raw.raw_set(
                "register_function",
                lua.create_function(move |_, args: MultiValue| Ok(register(&s, args).err()))?,
            )?;
        }
        let mode_name = match mode {
            Mode::Eval => "eval",
            Mode::Function => "function",
        };
        let handles: Table = lua
            .load(PRELUDE)
            .set_name("=pinion")
            .set_mode(ChunkMode::Text)
            .call((raw, mode_name))?;
        let env: Table = handles.raw_get("env")?;
        lua.set_globals(env.clone())?;
        let handler = lua.create_function(error_handler)?;
        Ok(Vm {
            mode,
            env,
            globals: handles.raw_get("globals")?,
            env_meta: handles.raw_get("env_meta")?,
            load_env: handles.raw_get("load_env")?,
            api: handles.raw_get("api")?,
            outside,
            xpcall: handles.raw_get("xpcall")?,
            run: handles.raw_get("run")?,
            handler,
            session,
            lua,
            gc_count: Cell::new(0),
        })
    }

    /// Count an invocation; true every `SCRIPT_GC_PERIOD`-th, when a collection step is due
    /// (as Redis steps its collector, so that no full cycle lands on one script).
    pub fn gc_tick(&self) -> bool {
        let n = self.gc_count.get() + 1;
        let due = n >= SCRIPT_GC_PERIOD;
        self.gc_count.set(if due { 0 } else { n });
        due
    }

    /// Compile source (never binary) with the script globals; on error, Lua's message.
    pub fn compile(&self, source: &[u8], name: &str) -> Result<Function, String> {
        self.lua
            .load(source)
            .set_name(name)
            .set_mode(ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| error_message(&e))
    }

    /// While a library's top level runs, its globals are the registration API only.
    pub fn set_loading(&self, loading: bool) -> mlua::Result<()> {
        match (&self.load_env, loading) {
            (Some(l), true) => self.env_meta.raw_set("__index", l.clone()),
            _ => self.env_meta.raw_set("__index", self.globals.clone()),
        }
    }
}

/// The xpcall message handler (Redis's `__redis__err__handler`): the error as a table
/// `{err=, source=, line=}`, where source and line are those of the innermost script code
/// on the stack (not of the C or prelude function that raised it).
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let t = match err {
        Value::Table(t) => t,
        Value::Error(e) if raised(&e).is_some() => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(raised(&e).unwrap_or_default())?)?;
            t
        }
        other => {
            let msg = match &other {
                Value::Error(e) => error_message(e).into_bytes(),
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Nil => b"nil".to_vec(),
                Value::Boolean(b) => b.to_string().into_bytes(),
                v => as_bytes(v).unwrap_or_else(|| v.type_name().as_bytes().to_vec()),
            };
            let mut text = b"ERR ".to_vec();
            text.extend_from_slice(&msg);
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(text)?)?;
            t
        }
    };
    for level in 1..8 {
        let found = lua.inspect_stack(level, |d| {
            let src = d.source();
            let source = src.source.as_deref().unwrap_or("").to_string();
            (source.starts_with('@') && src.what != "C").then(|| (source, d.current_line()))
        });
        match found {
            None => break,
            Some(Some((source, line))) => {
                t.raw_set("source", source)?;
                if let Some(line) = line {
                    t.raw_set("line", line)?;
                }
                break;
            }
            Some(None) => {}
        }
    }
    Ok(t)
}

/// Library and function names: letters, digits and underscores, at least one.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

const NAME_RULE: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

fn string_arg(v: &Value) -> Option<String> {
    as_bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// `redis.register_function(name, callback)` or `redis.register_function{function_name=,
/// callback=, flags=, description=}`; the error text as Redis words it.
fn register(s: &Session, args: MultiValue) -> Result<(), String> {
    let mut reg = s.registering.borrow_mut();
    let Some(list) = reg.as_mut() else {
        return Err("redis.register_function can only be called on FUNCTION LOAD command".into());
    };
    let (name, callback, description, fl) = match args.len() {
        1 => {
            let Some(Value::Table(t)) = args.front() else {
                return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into());
            };
            let (mut name, mut callback, mut description, mut fl) = (None, None, None, 0u8);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                let Some(key) = string_arg(&k) else {
                    return Err(
                        "named argument key given to redis.register_function is not a string"
                            .into(),
                    );
                };
                match key.to_ascii_lowercase().as_str() {
                    "function_name" => {
                        name = Some(string_arg(&v).ok_or("function_name argument given to redis.register_function must be a string")?);
                    }
                    "description" => {
                        description = Some(string_arg(&v).ok_or("description argument given to redis.register_function must be a string")?);
                    }
                    "callback" => match v {
                        Value::Function(f) => callback = Some(f),
                        _ => return Err(
                            "callback argument given to redis.register_function must be a function"
                                .into(),
                        ),
                    },
                    "flags" => {
                        let Value::Table(ft) = v else {
                            return Err("flags argument to redis.register_function must be a table representing function flags".into());
                        };
                        for f in ft.sequence_values::<Value>() {
                            let f = f.map_err(|e| e.to_string())?;
                            let bit = string_arg(&f).and_then(|n| flags::parse(&n));
                            fl |= bit.ok_or("unknown flag given")?;
                        }
                    }
                    _ => return Err("unknown argument given to redis.register_function".into()),
                }
            }
            let name = name.ok_or("redis.register_function must get a function name argument")?;
            let callback =
                callback.ok_or("redis.register_function must get a callback argument")?;
            (name, callback, description, fl)
        }
        2 => {
            let name = args
                .front()
                .and_then(string_arg)
                .ok_or("first argument to redis.register_function must be a string")?;
            let Some(Value::Function(f)) = args.get(1) else {
                return Err("second argument to redis.register_function must be a function".into());
            };
            (name, f.clone(), None, 0)
        }
        _ => return Err("wrong number of arguments to redis.register_function".into()),
    };
    if !valid_name(name.as_bytes()) {
        return Err(NAME_RULE.into());
    }
    if list.iter().any(|r| r.name == name) {
        return Err("Function already exists in the library".into());
    }
    list.push(Registered {
        name,
        description,
        flags: fl,
        callback,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(vm: &Vm, code: &str) -> Result<Value, String> {
        let f = vm.compile(code.as_bytes(), "@user_script")?;
        let (ok, v): (bool, Value) = vm
            .xpcall
            .call((f, vm.handler.clone()))
            .map_err(|e| e.to_string())?;
        if ok {
            return Ok(v);
        }
        let Value::Table(t) = v else {
            return Err(format!("{v:?}"));
        };
        let msg: String = t.raw_get("err").unwrap_or_default();
        let line: Option<i64> = t.raw_get("line").unwrap_or_default();
        Err(format!("{msg} line {line:?}"))
    }

    #[test]
    fn the_sandbox_holds() {
        let vm = Vm::new(Mode::Eval).unwrap();
        let err = |code: &str| run(&vm, code).expect_err(code);
        assert!(err("a = 10").contains("Attempt to modify a readonly table"));
        assert!(
            err("return a").contains("Script attempted to access nonexistent global variable 'a'")
        );
        assert!(err("print('x')").contains("nonexistent global variable 'print'"));
        assert!(err("loadfile('x')").contains("'loadfile'"));
        assert!(err("return os.time()").contains("'os'"));
        assert!(err("setmetatable(_G, {})").contains("readonly"));
        assert!(err("local g = getmetatable(_G); g.__index = {}").contains("readonly"));
        assert!(err("redis = function() return 1 end").contains("readonly"));
        assert!(err("_G = {}").contains("readonly"));
        assert!(err("redis.call = function() return 1 end").contains("readonly"));
        assert!(err("cjson.encode = function() return 1 end").contains("readonly"));
        assert!(err("bit.lshift = function() return 1 end").contains("readonly"));
        assert!(err("string.rep = nil").contains("readonly"));
        assert!(err("rawset(_G, 'x', 1)").contains("readonly"));
        assert!(err("getfenv(print)").contains("'print'"));
        assert!(err("local e = getfenv(string.format); e.x = 1").contains("readonly"));
        assert!(err("setfenv(0, {})").contains("readonly"));
        assert!(err("getmetatable('').__index.upper = nil").contains("index"));
        assert!(
            err("return loadstring(string.dump(function() return 1 end))()")
                .contains("attempt to call a nil value")
        );
        // What Redis leaves to scripts is there, and pairs sees through the read-only views.
        let n = |code: &str| match run(&vm, code) {
            Ok(Value::Integer(i)) => i as f64,
            Ok(Value::Number(n)) => n,
            other => panic!("{code}: {other:?}"),
        };
        assert_eq!(
            n("local c = 0 for k in pairs(redis) do c = c + 1 end return c > 10 and 1 or 0"),
            1.0
        );
        assert_eq!(n("return loadstring('return 1 + 1')()"), 2.0);
        assert_eq!(
            n("local ok, e = pcall(error, {err='x'}) return ok and 1 or 0"),
            0.0
        );
        assert_eq!(n("return bit.band(7, 3)"), 3.0);
        assert_eq!(n("return #cjson.encode({1,2})"), 5.0);
        assert_eq!(
            n("return select('#', coroutine.wrap(function() return 1, 2 end)())"),
            2.0
        );
        let s = |code: &str| match run(&vm, code) {
            Ok(Value::String(s)) => s.to_string_lossy(),
            other => panic!("{code}: {other:?}"),
        };
        assert_eq!(
            s("return redis.sha1hex('')"),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            s("return redis.sha1hex('Pizza & Mandolino')"),
            "74822d82031af7493c20eefa13bd07ec4fada82f"
        );
        assert_eq!(
            s("local _, e = pcall(function() return a end) return e"),
            "Script attempted to access nonexistent global variable 'a'"
        );
        assert_eq!(s("return redis.error_reply('My Error').err"), "My Error");
        assert_eq!(s("return redis.status_reply('fine').ok"), "fine");
        assert_eq!(s("return type(redis.error_reply(1).err)"), "string");
        // The error's line is the script's, even when raised inside the prelude.
        assert!(
            err("\n\nredis.sha1hex()").ends_with("line Some(3)"),
            "{}",
            err("\n\nredis.sha1hex()")
        );
        assert!(err("redis.call('ping')").contains("only be called inside a script"));
    }

    #[test]
    fn libraries_register_their_functions() {
        let vm = Vm::new(Mode::Function).unwrap();
        let load = |code: &str| -> Result<Vec<Registered>, String> {
            *vm.session.registering.borrow_mut() = Some(Vec::new());
            vm.set_loading(true).unwrap();
            let r = run(&vm, code);
            vm.set_loading(false).unwrap();
            let got = vm.session.registering.borrow_mut().take().unwrap();
            r.map(|_| got)
        };
        let got = load("redis.register_function('f1', function(k, a) return 1 end)").unwrap();
        assert_eq!(got[0].name, "f1");
        let got = load(
            "redis.register_function{function_name='f2', callback=function() end, flags={'no-writes'}, description='d'}",
        )
        .unwrap();
        assert_eq!(got[0].flags, flags::NO_WRITES);
        assert_eq!(got[0].description.as_deref(), Some("d"));
        let e = |code: &str| load(code).err().unwrap_or_default();
        assert!(e("return math.random()").contains("nonexistent global variable 'math'"));
        assert!(e("return redis.call('ping')").contains("nonexistent global variable 'call'"));
        assert!(e("a = 1").contains("readonly"));
        assert!(e("redis.register_function('f', 1)").contains("second argument"));
        assert!(e(
            "redis.register_function{function_name='f', callback=function() end, flags={'bad'}}"
        )
        .contains("unknown flag given"));
        assert!(
            e("redis.register_function('b@d', function() end)").contains("Library names can only")
        );
        assert!(e("redis.register_function('f', function() end) redis.register_function('f', function() end)").contains("already exists in the library"));
        // Outside a load, registration is refused.
        assert!(run(&vm, "redis.register_function('x', function() end)").is_err());
    }
}

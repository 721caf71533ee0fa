//! The RESP command table: every command pinion knows, its arity (Redis's convention:
//! negative means "at least"), its flags, how it is routed between shards, and the histogram
//! family its latency is recorded under.
//!
//! The core commands (connection, server, strings, hashes, keyspace, transactions) are in
//! [`TABLE`] here; each further family has its own file with its own `Cmd` enum and table
//! ([`lists`], [`sets`], [`zsets`], [`bits`], [`scripting`]). [`lookup`] searches them all.

pub mod bits;
pub mod cluster;
pub mod lists;
pub mod scripting;
pub mod sets;
pub mod zsets;

use std::collections::HashMap;
use std::sync::OnceLock;

use super::Args;
use crate::limits::COMMAND_NAME_MAX;

/// Every command the cache serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmd {
    Ping,
    Echo,
    Hello,
    Auth,
    Select,
    Quit,
    Command,
    Client,
    Config,
    Info,
    Dbsize,
    Flushdb,
    Flushall,
    Get,
    Set,
    Setnx,
    Setex,
    Psetex,
    Getset,
    Getdel,
    Getex,
    Append,
    Strlen,
    Incr,
    Decr,
    Incrby,
    Decrby,
    Incrbyfloat,
    Mget,
    Mset,
    Msetnx,
    Del,
    Unlink,
    Exists,
    Expire,
    Pexpire,
    Expireat,
    Pexpireat,
    Ttl,
    Pttl,
    Persist,
    Type,
    Keys,
    Scan,
    Hset,
    Hmset,
    Hget,
    Hmget,
    Hgetall,
    Hdel,
    Hlen,
    Hexists,
    Hincrby,
    Hsetnx,
    Hincrbyfloat,
    Hstrlen,
    Hkeys,
    Hvals,
    Hrandfield,
    Hscan,
    Rename,
    Renamenx,
    Copy,
    Randomkey,
    Expiretime,
    Pexpiretime,
    Time,
    Object,
    Memory,
    Touch,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Sort,
    SortRo,
    Lists(lists::ListCmd),
    Sets(sets::SetCmd),
    Zsets(zsets::ZsetCmd),
    Bits(bits::BitCmd),
    Scripts(scripting::ScriptCmd),
    // Users and ACLs (issue 13, f-sec).
    Acl,
    Cluster(cluster::ClusterCmd),
}

/// How a command finds the shard that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Runs on the connection's own shard and touches no keyspace.
    Local,
    /// One key, argument 1: runs on the key's owner.
    Key,
    /// Keys at 1, 1+step, 1+2*step ...: split by owner, run in parts, joined in order.
    Keys { step: usize },
    /// Runs on every shard; the parts are combined.
    All,
    /// SCAN: the cursor names a slot, and so a shard.
    Cursor,
    /// Several keys that one command reads and writes together (SINTERSTORE, LMOVE,
    /// RENAME, EVAL ...): it runs on their owner when they share one, and as a transaction
    /// over their owners otherwise.
    Multi(KeySpec),
}

/// Where a [`Route::Multi`] command's keys are among its arguments. Positions past the
/// end of the arguments name no key (the command reports its own syntax error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// `first`, `first + step`, ... up to `last` (negative counts from the end: -1 is the
    /// last argument).
    Range {
        first: usize,
        last: isize,
        step: usize,
    },
    /// The number of keys is argument `at`, the keys follow it; with `lead`, argument 1 is
    /// a key too (ZUNIONSTORE's destination).
    NumKeys { at: usize, lead: bool },
    /// Argument 1, and the argument after each `word` (SORT ... STORE destination).
    KeyAndAfter { word: &'static str },
}

/// Latency histogram family; one HDR histogram per family per shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Connection,
    Read,
    Write,
    Keyspace,
    Hash,
    Server,
    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH.
    Transaction,
    List,
    Set,
    Zset,
    /// Bitmaps and string ranges.
    Bitmap,
    /// EVAL, FCALL, SCRIPT, FUNCTION.
    Script,
}

impl Family {
    pub const ALL: [Family; 12] = [
        Family::Connection,
        Family::Read,
        Family::Write,
        Family::Keyspace,
        Family::Hash,
        Family::Server,
        Family::Transaction,
        Family::List,
        Family::Set,
        Family::Zset,
        Family::Bitmap,
        Family::Script,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Connection => "connection",
            Family::Read => "string_read",
            Family::Write => "string_write",
            Family::Keyspace => "keyspace",
            Family::Hash => "hash",
            Family::Server => "server",
            Family::Transaction => "transaction",
            Family::List => "list",
            Family::Set => "set",
            Family::Zset => "zset",
            Family::Bitmap => "bitmap",
            Family::Script => "script",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

pub const WRITE: u8 = 1;
/// Refused with `-OOM` under `noeviction` when the shard is over its memory limit.
pub const DENYOOM: u8 = 2;
pub const READONLY: u8 = 4;
/// Allowed before AUTH.
pub const NOAUTH: u8 = 8;
/// May wait for data (BLPOP, BZPOPMIN ...): outside MULTI and scripts, a command that finds
/// nothing parks on its keys' owner until a write serves it or its timeout passes.
pub const BLOCKING: u8 = 16;
/// Refused inside a script (EVAL, MULTI, WATCH ...).
pub const NOSCRIPT: u8 = 32;

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub cmd: Cmd,
    pub arity: i32,
    pub flags: u8,
    pub route: Route,
    pub family: Family,
}

impl Spec {
    /// A write: it holds its keys exclusively.
    pub fn writes(&self) -> bool {
        self.flags & WRITE != 0
    }

    /// May grow memory: refused over the limit when nothing can be evicted.
    pub fn denyoom(&self) -> bool {
        self.flags & DENYOOM != 0
    }

    /// May wait for data ([`BLOCKING`]).
    pub fn blocking(&self) -> bool {
        self.flags & BLOCKING != 0
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }

    /// First key, last key (negative counts from the end) and step, as COMMAND reports them
    /// (a command whose number of keys is an argument reports 0, 0, 0, as Redis's
    /// "movablekeys" commands do).
    pub fn key_positions(&self) -> (i64, i64, i64) {
        match self.route {
            Route::Key => (1, 1, 1),
            Route::Keys { step } => (1, -1, step as i64),
            Route::Multi(KeySpec::Range { first, last, step }) => {
                (first as i64, last as i64, step as i64)
            }
            _ => (0, 0, 0),
        }
    }

    /// Call `f` with each key the command names, in argument order. Commands that name no
    /// key (or whose key count is malformed) call it never.
    pub fn for_each_key<'a>(&self, a: &Args<'a>, mut f: impl FnMut(&'a [u8])) {
        let n = a.len();
        let (first, last, step) = match self.route {
            Route::Key => (1, 1, 1),
            Route::Keys { step } => (1, n.saturating_sub(1), step),
            Route::Multi(KeySpec::Range { first, last, step }) => {
                let last = if last < 0 { n as isize + last } else { last };
                match usize::try_from(last) {
                    Ok(last) => (first, last, step),
                    Err(_) => return,
                }
            }
            Route::Multi(KeySpec::NumKeys { at, lead }) => {
                let Some(count) = a.int(at).and_then(|c| usize::try_from(c).ok()) else {
                    return;
                };
                if at + count >= n || count == 0 {
                    return;
                }
                if lead && n > 1 {
                    f(a.get(1));
                }
                (at + 1, at + count, 1)
            }
            Route::Multi(KeySpec::KeyAndAfter { word }) => {
                if n > 1 {
                    f(a.get(1));
                }
                for i in 2..n.saturating_sub(1) {
                    if a.eq(i, word) {
                        f(a.get(i + 1));
                    }
                }
                return;
            }
            _ => return,
        };
        let mut i = first;
        while i <= last && i < n {
            f(a.get(i));
            i += step.max(1);
        }
    }

    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.writes() {
            v.push("write");
        }
        if self.flags & READONLY != 0 {
            v.push("readonly");
        }
        if self.denyoom() {
            v.push("denyoom");
        }
        if self.flags & NOAUTH != 0 {
            v.push("no-auth");
        }
        if self.flags & BLOCKING != 0 {
            v.push("blocking");
        }
        if self.flags & NOSCRIPT != 0 {
            v.push("noscript");
        }
        if v.is_empty() {
            v.push("fast");
        }
        v
    }
}

pub(crate) const fn s(
    name: &'static str,
    cmd: Cmd,
    arity: i32,
    flags: u8,
    route: Route,
    family: Family,
) -> Spec {
    Spec {
        name,
        cmd,
        arity,
        flags,
        route,
        family,
    }
}

use Family as F;
use Route as R;

/// RENAME, RENAMENX, COPY: a source and a destination key.
const KEYS_1_2: Route = R::Multi(KeySpec::Range {
    first: 1,
    last: 2,
    step: 1,
});
/// OBJECT and MEMORY: a subcommand, then (for most subcommands) a key.
const KEY_2: Route = R::Multi(KeySpec::Range {
    first: 2,
    last: 2,
    step: 1,
});

/// The table. Order is the order COMMAND lists them in.
pub static TABLE: &[Spec] = &[
    s("ping", Cmd::Ping, -1, 0, R::Local, F::Connection),
    s("echo", Cmd::Echo, 2, 0, R::Local, F::Connection),
    s("hello", Cmd::Hello, -1, NOAUTH, R::Local, F::Connection),
    s("auth", Cmd::Auth, -2, NOAUTH, R::Local, F::Connection),
    s("select", Cmd::Select, 2, 0, R::Local, F::Connection),
    s("quit", Cmd::Quit, -1, NOAUTH, R::Local, F::Connection),
    s("command", Cmd::Command, -1, 0, R::Local, F::Server),
    s("client", Cmd::Client, -2, 0, R::Local, F::Connection),
    s("config", Cmd::Config, -2, 0, R::Local, F::Server),
    s("info", Cmd::Info, -1, 0, R::All, F::Server),
    s("dbsize", Cmd::Dbsize, 1, READONLY, R::All, F::Server),
    s("flushdb", Cmd::Flushdb, -1, WRITE, R::All, F::Server),
    s("flushall", Cmd::Flushall, -1, WRITE, R::All, F::Server),
    s("get", Cmd::Get, 2, READONLY, R::Key, F::Read),
    s("set", Cmd::Set, -3, WRITE | DENYOOM, R::Key, F::Write),
    s("setnx", Cmd::Setnx, 3, WRITE | DENYOOM, R::Key, F::Write),
    s("setex", Cmd::Setex, 4, WRITE | DENYOOM, R::Key, F::Write),
    s("psetex", Cmd::Psetex, 4, WRITE | DENYOOM, R::Key, F::Write),
    s("getset", Cmd::Getset, 3, WRITE | DENYOOM, R::Key, F::Write),
    s("getdel", Cmd::Getdel, 2, WRITE, R::Key, F::Write),
    s("getex", Cmd::Getex, -2, WRITE, R::Key, F::Write),
    s("append", Cmd::Append, 3, WRITE | DENYOOM, R::Key, F::Write),
    s("strlen", Cmd::Strlen, 2, READONLY, R::Key, F::Read),
    s("incr", Cmd::Incr, 2, WRITE | DENYOOM, R::Key, F::Write),
    s("decr", Cmd::Decr, 2, WRITE | DENYOOM, R::Key, F::Write),
    s("incrby", Cmd::Incrby, 3, WRITE | DENYOOM, R::Key, F::Write),
    s("decrby", Cmd::Decrby, 3, WRITE | DENYOOM, R::Key, F::Write),
    s(
        "incrbyfloat",
        Cmd::Incrbyfloat,
        3,
        WRITE | DENYOOM,
        R::Key,
        F::Write,
    ),
    s(
        "mget",
        Cmd::Mget,
        -2,
        READONLY,
        R::Keys { step: 1 },
        F::Read,
    ),
    s(
        "mset",
        Cmd::Mset,
        -3,
        WRITE | DENYOOM,
        R::Keys { step: 2 },
        F::Write,
    ),
    s(
        "msetnx",
        Cmd::Msetnx,
        -3,
        WRITE | DENYOOM,
        R::Keys { step: 2 },
        F::Write,
    ),
    s("del", Cmd::Del, -2, WRITE, R::Keys { step: 1 }, F::Keyspace),
    s(
        "unlink",
        Cmd::Unlink,
        -2,
        WRITE,
        R::Keys { step: 1 },
        F::Keyspace,
    ),
    s(
        "exists",
        Cmd::Exists,
        -2,
        READONLY,
        R::Keys { step: 1 },
        F::Keyspace,
    ),
    s("expire", Cmd::Expire, -3, WRITE, R::Key, F::Keyspace),
    s("pexpire", Cmd::Pexpire, -3, WRITE, R::Key, F::Keyspace),
    s("expireat", Cmd::Expireat, -3, WRITE, R::Key, F::Keyspace),
    s("pexpireat", Cmd::Pexpireat, -3, WRITE, R::Key, F::Keyspace),
    s("ttl", Cmd::Ttl, 2, READONLY, R::Key, F::Keyspace),
    s("pttl", Cmd::Pttl, 2, READONLY, R::Key, F::Keyspace),
    s("persist", Cmd::Persist, 2, WRITE, R::Key, F::Keyspace),
    s("type", Cmd::Type, 2, READONLY, R::Key, F::Keyspace),
    s(
        "sort",
        Cmd::Sort,
        -2,
        WRITE | DENYOOM,
        R::Multi(KeySpec::KeyAndAfter { word: "STORE" }),
        F::Keyspace,
    ),
    s("sort_ro", Cmd::SortRo, -2, READONLY, R::Key, F::Keyspace),
    s("keys", Cmd::Keys, 2, READONLY, R::All, F::Keyspace),
    s("scan", Cmd::Scan, -2, READONLY, R::Cursor, F::Keyspace),
    s("hset", Cmd::Hset, -4, WRITE | DENYOOM, R::Key, F::Hash),
    s("hmset", Cmd::Hmset, -4, WRITE | DENYOOM, R::Key, F::Hash),
    s("hget", Cmd::Hget, 3, READONLY, R::Key, F::Hash),
    s("hmget", Cmd::Hmget, -3, READONLY, R::Key, F::Hash),
    s("hgetall", Cmd::Hgetall, 2, READONLY, R::Key, F::Hash),
    s("hdel", Cmd::Hdel, -3, WRITE, R::Key, F::Hash),
    s("hlen", Cmd::Hlen, 2, READONLY, R::Key, F::Hash),
    s("hexists", Cmd::Hexists, 3, READONLY, R::Key, F::Hash),
    s("hincrby", Cmd::Hincrby, 4, WRITE | DENYOOM, R::Key, F::Hash),
    s("hsetnx", Cmd::Hsetnx, 4, WRITE | DENYOOM, R::Key, F::Hash),
    s(
        "hincrbyfloat",
        Cmd::Hincrbyfloat,
        4,
        WRITE | DENYOOM,
        R::Key,
        F::Hash,
    ),
    s("hstrlen", Cmd::Hstrlen, 3, READONLY, R::Key, F::Hash),
    s("hkeys", Cmd::Hkeys, 2, READONLY, R::Key, F::Hash),
    s("hvals", Cmd::Hvals, 2, READONLY, R::Key, F::Hash),
    s("hrandfield", Cmd::Hrandfield, -2, READONLY, R::Key, F::Hash),
    s("hscan", Cmd::Hscan, -3, READONLY, R::Key, F::Hash),
    s("rename", Cmd::Rename, 3, WRITE, KEYS_1_2, F::Keyspace),
    s("renamenx", Cmd::Renamenx, 3, WRITE, KEYS_1_2, F::Keyspace),
    s(
        "copy",
        Cmd::Copy,
        -3,
        WRITE | DENYOOM,
        KEYS_1_2,
        F::Keyspace,
    ),
    s(
        "randomkey",
        Cmd::Randomkey,
        1,
        READONLY,
        R::All,
        F::Keyspace,
    ),
    s(
        "expiretime",
        Cmd::Expiretime,
        2,
        READONLY,
        R::Key,
        F::Keyspace,
    ),
    s(
        "pexpiretime",
        Cmd::Pexpiretime,
        2,
        READONLY,
        R::Key,
        F::Keyspace,
    ),
    s("time", Cmd::Time, 1, 0, R::Local, F::Server),
    s("object", Cmd::Object, -2, READONLY, KEY_2, F::Keyspace),
    s("memory", Cmd::Memory, -2, READONLY, KEY_2, F::Keyspace),
    s(
        "touch",
        Cmd::Touch,
        -2,
        READONLY,
        R::Keys { step: 1 },
        F::Keyspace,
    ),
    s("multi", Cmd::Multi, 1, 0, R::Local, F::Transaction),
    s("exec", Cmd::Exec, 1, 0, R::Local, F::Transaction),
    s("discard", Cmd::Discard, 1, 0, R::Local, F::Transaction),
    s(
        "watch",
        Cmd::Watch,
        -2,
        0,
        R::Keys { step: 1 },
        F::Transaction,
    ),
    s("unwatch", Cmd::Unwatch, 1, 0, R::Local, F::Transaction),
    // Users and ACLs (issue 13, f-sec): `redis/acl.rs`; categories in `auth/categories.rs`.
    s("acl", Cmd::Acl, -2, NOSCRIPT, R::Local, F::Server),
];

/// Every family's table, in the order COMMAND lists them.
pub static TABLES: &[&[Spec]] = &[
    TABLE,
    lists::TABLE,
    sets::TABLE,
    zsets::TABLE,
    bits::TABLE,
    scripting::TABLE,
    cluster::TABLE,
];

/// Every command the node serves.
pub fn all() -> impl Iterator<Item = &'static Spec> {
    TABLES.iter().flat_map(|t| t.iter())
}

/// `spec`'s place among [`all`] (for per-command figures): found from its address in its
/// table, without a search by name.
pub fn index(spec: &Spec) -> usize {
    let at = spec as *const Spec as usize;
    let size = std::mem::size_of::<Spec>();
    let mut before = 0;
    for t in TABLES {
        let start = t.as_ptr() as usize;
        if at >= start && at < start + std::mem::size_of_val(*t) {
            return before + (at - start) / size;
        }
        before += t.len();
    }
    // Not a row of the tables (a test's own Spec): past every real index.
    before
}

fn by_name() -> &'static HashMap<&'static [u8], &'static Spec> {
    static MAP: OnceLock<HashMap<&'static [u8], &'static Spec>> = OnceLock::new();
    MAP.get_or_init(|| all().map(|s| (s.name.as_bytes(), s)).collect())
}

/// Look a command name up, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    if name.len() > COMMAND_NAME_MAX {
        return None;
    }
    let mut lower = [0u8; COMMAND_NAME_MAX];
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    by_name().get(&lower[..name.len()]).copied()
}

pub fn spec(cmd: Cmd) -> &'static Spec {
    // Every Cmd has exactly one row; the unit test below checks it.
    all().find(|s| s.cmd == cmd).unwrap_or(&TABLE[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_total() {
        assert_eq!(lookup(b"GeT").map(|s| s.cmd), Some(Cmd::Get));
        assert_eq!(lookup(b"nosuch").map(|s| s.cmd), None);
        assert_eq!(lookup(&[b'x'; 100]).map(|s| s.cmd), None);
        for (i, row) in all().enumerate() {
            assert_eq!(index(row), i, "{}", row.name);
            assert!(row.name.len() <= COMMAND_NAME_MAX, "{}", row.name);
            assert_eq!(spec(row.cmd).name, row.name);
            assert_eq!(
                lookup(row.name.to_uppercase().as_bytes()).map(|s| s.cmd),
                Some(row.cmd)
            );
        }
    }

    fn keys_of(route: Route, line: &str) -> Vec<String> {
        let (src, ranges) = crate::proto::resp::args::split_words(line);
        let a = Args {
            src: &src,
            ranges: &ranges,
        };
        let spec = s("x", Cmd::Ping, -1, 0, route, Family::Server);
        let mut keys = Vec::new();
        spec.for_each_key(&a, |k| keys.push(String::from_utf8_lossy(k).into_owned()));
        keys
    }

    #[test]
    fn keys_are_found_where_the_spec_says() {
        let range = |first, last, step| Route::Multi(KeySpec::Range { first, last, step });
        let numkeys = |at, lead| Route::Multi(KeySpec::NumKeys { at, lead });
        assert_eq!(keys_of(range(1, -2, 1), "blpop a b 0"), ["a", "b"]);
        assert_eq!(keys_of(range(1, 2, 1), "lmove s d left right"), ["s", "d"]);
        let sort = Route::Multi(KeySpec::KeyAndAfter { word: "STORE" });
        assert_eq!(keys_of(sort, "sort l alpha store d limit 0 1"), ["l", "d"]);
        assert_eq!(keys_of(sort, "sort l store"), ["l"]);
        assert_eq!(keys_of(range(2, -1, 1), "bitop and d x y"), ["d", "x", "y"]);
        assert_eq!(
            keys_of(numkeys(2, true), "zunionstore d 2 x y w"),
            ["d", "x", "y"]
        );
        assert_eq!(keys_of(numkeys(2, false), "eval s 1 k arg"), ["k"]);
        assert_eq!(keys_of(numkeys(1, false), "lmpop 2 a b left"), ["a", "b"]);
        // Malformed or out-of-range counts name no key; the command reports the error.
        assert!(keys_of(numkeys(1, false), "lmpop 5 a left").is_empty());
        assert!(keys_of(numkeys(1, false), "lmpop x a left").is_empty());
        assert!(keys_of(numkeys(1, false), "lmpop -1 a").is_empty());
        assert!(keys_of(numkeys(2, false), "eval s 0").is_empty());
        assert!(keys_of(range(2, 2, 1), "object help").is_empty());
    }

    #[test]
    fn arity_follows_redis_convention() {
        let get = lookup(b"get").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(3));
        let set = lookup(b"set").unwrap();
        assert!(set.arity_ok(3) && set.arity_ok(7) && !set.arity_ok(2));
    }
}

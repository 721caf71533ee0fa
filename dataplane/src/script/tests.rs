//! Scripts and functions run against a store, as a shard runs them.

use std::sync::Arc;

use super::*;
use crate::cache::cmd::testing::store;
use crate::cache::slot::{key_slot, SLOTS};
use crate::proto::resp::command::lookup;

/// Run one command given as separate arguments against `s`; the raw RESP2 reply.
fn cmd(s: &mut Store, args: &[&str]) -> String {
    cmd3(s, args, false)
}

fn cmd3(s: &mut Store, args: &[&str], resp3: bool) -> String {
    let mut src = Vec::new();
    let mut ranges = Vec::new();
    for w in args {
        let st = src.len();
        src.extend_from_slice(w.as_bytes());
        ranges.push((st, src.len()));
    }
    let a = Args {
        src: &src,
        ranges: &ranges,
    };
    let spec = lookup(a.get(0)).expect("known command");
    assert!(spec.arity_ok(a.len()), "arity of {args:?}");
    let mut buf = Vec::new();
    let mut out = Out::new(&mut buf, resp3);
    if spec.route == crate::proto::resp::command::Route::Local {
        admin(spec, &a, &mut out);
    } else {
        crate::cache::cmd::exec_key(
            s,
            spec,
            &a,
            key_slot(a.get(1)),
            0,
            OomCheck::Refuse,
            &mut out,
        );
    }
    String::from_utf8(buf).unwrap()
}

fn fresh() -> Store {
    attach(Arc::new(Shared::new(1)), 0);
    store()
}

#[test]
fn eval_converts_types_both_ways() {
    let mut s = fresh();
    assert_eq!(
        cmd(&mut s, &["EVAL", "return 'hello'", "0"]),
        "$5\r\nhello\r\n"
    );
    assert_eq!(cmd(&mut s, &["EVAL", "return 100.5", "0"]), ":100\r\n");
    assert_eq!(
        cmd(&mut s, &["EVAL", "return {1,2,3,'ciao',{1,2}}", "0"]),
        "*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n"
    );
    assert_eq!(
        cmd(
            &mut s,
            &[
                "EVAL",
                "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}",
                "2",
                "a{t}",
                "b{t}",
                "c",
                "d"
            ]
        ),
        "*4\r\n$4\r\na{t}\r\n$4\r\nb{t}\r\n$1\r\nc\r\n$1\r\nd\r\n"
    );
    cmd(&mut s, &["SET", "x", "0"]);
    assert_eq!(
        cmd(
            &mut s,
            &[
                "EVAL",
                "local foo = redis.pcall('incr',KEYS[1]) return {type(foo),foo}",
                "1",
                "x"
            ]
        ),
        "*2\r\n$6\r\nnumber\r\n:1\r\n"
    );
    cmd(&mut s, &["SET", "mykey", "myval"]);
    assert_eq!(
        cmd(
            &mut s,
            &[
                "EVAL",
                "local foo = redis.pcall('incr',KEYS[1]) return {type(foo),foo['err']}",
                "1",
                "mykey"
            ]
        ),
        "*2\r\n$5\r\ntable\r\n$43\r\nERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        cmd(
            &mut s,
            &[
                "EVAL",
                "local foo = redis.pcall('get','nokey') return {type(foo),foo == false}",
                "1",
                "nokey"
            ]
        ),
        "*2\r\n$7\r\nboolean\r\n:1\r\n"
    );
    assert_eq!(
        cmd(
            &mut s,
            &[
                "EVAL",
                "local foo = redis.call('set',KEYS[1],'v') return {type(foo),foo['ok']}",
                "1",
                "k"
            ]
        ),
        "*2\r\n$5\r\ntable\r\n$2\r\nOK\r\n"
    );
    assert_eq!(
        cmd(
            &mut s,
            &["EVAL", "return redis.call('get', KEYS[1])", "1", "k"]
        ),
        "$1\r\nv\r\n"
    );
    // Numbers go to commands as %.17g.
    assert_eq!(
        cmd(
            &mut s,
            &[
                "EVAL",
                "redis.call('set', KEYS[1], 0.1) return redis.call('get', KEYS[1])",
                "1",
                "f"
            ]
        ),
        "$19\r\n0.10000000000000001\r\n"
    );
    // RESP3 inside the script: a map comes back as {map=...}, and goes out as a map.
    cmd(&mut s, &["HSET", "h", "field", "value"]);
    assert_eq!(
        cmd3(
            &mut s,
            &[
                "EVAL",
                "redis.setresp(3); return redis.call('hgetall', KEYS[1])",
                "1",
                "h"
            ],
            true
        ),
        "%1\r\n$5\r\nfield\r\n$5\r\nvalue\r\n"
    );
    assert_eq!(
        cmd(
            &mut s,
            &[
                "EVAL",
                "redis.setresp(3); return redis.call('hgetall', KEYS[1])",
                "1",
                "h"
            ]
        ),
        "*2\r\n$5\r\nfield\r\n$5\r\nvalue\r\n"
    );
    // Several keys of one command at once.
    assert_eq!(
        cmd(&mut s, &["EVAL", "redis.call('mset', KEYS[1], 1, KEYS[2], 2) return redis.call('mget', KEYS[1], KEYS[2], KEYS[3])", "3", "a{t}", "b{t}", "c{t}"]),
        "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"
    );
    assert_eq!(
        cmd(
            &mut s,
            &[
                "EVAL",
                "return redis.call('del', KEYS[1], KEYS[2])",
                "2",
                "a{t}",
                "b{t}"
            ]
        ),
        ":2\r\n"
    );
    s.check();
}

#[test]
fn errors_are_worded_as_redis_words_them() {
    let mut s = fresh();
    let sha = sha1_hex(b"redis.call('nosuchcommand')");
    assert_eq!(
        cmd(&mut s, &["EVAL", "redis.call('nosuchcommand')", "0"]),
        format!(
            "-ERR Unknown Redis command called from script script: {sha}, on @user_script:1.\r\n"
        )
    );
    assert!(cmd(&mut s, &["EVAL", "redis.call('get','a','b','c')", "0"])
        .contains("Wrong number of args"));
    assert!(cmd(&mut s, &["EVAL", "return redis.call()", "0"]).contains("one argument"));
    cmd(&mut s, &["SET", "foo", "bar"]);
    assert!(cmd(
        &mut s,
        &["EVAL", "redis.call('hset',KEYS[1],'a','b')", "1", "foo"]
    )
    .starts_with("-WRONGTYPE"));
    assert!(cmd(&mut s, &["EVAL", "return a", "0"])
        .starts_with("-ERR Script attempted to access nonexistent global variable 'a'"));
    assert!(cmd(&mut s, &["EVAL", "a = 10", "0"]).contains("Attempt to modify a readonly table"));
    assert_eq!(
        cmd(&mut s, &["EVAL", "return 'x'", "-12"]),
        "-ERR Number of keys can't be negative\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["EVAL", "return 'x'", "2", "a"]),
        "-ERR Number of keys can't be greater than number of args\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["EVAL", "return 'x'", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert!(cmd(&mut s, &["EVAL", "return (", "0"])
        .starts_with("-ERR Error compiling script (new function): user_script:1:"));
    assert_eq!(
        cmd(
            &mut s,
            &["EVAL", "return {err='ERR this is an error'}", "0"]
        ),
        "-ERR this is an error\r\n"
    );
    assert_eq!(
        cmd(
            &mut s,
            &["EVAL", "return redis.error_reply('My Error')", "0"]
        ),
        "-My Error\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["EVAL", "return redis.status_reply('fine')", "0"]),
        "+fine\r\n"
    );
    assert!(cmd(&mut s, &["EVAL", "redis.call('multi')", "0"])
        .contains("This Redis command is not allowed from script"));
    assert!(
        cmd(&mut s, &["EVAL", "redis.call('eval', 'return 1', 0)", "0"])
            .contains("not allowed from script")
    );
    assert_eq!(
        cmd(&mut s, &["EVAL", "return redis.call('ping')", "0"]),
        "+PONG\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["EVAL", "return #redis.call('time')", "0"]),
        ":2\r\n"
    );
    assert!(cmd(
        &mut s,
        &["EVAL", "return redis.pcall('blpop', 'l', 0)", "0"]
    )
    .contains("not allowed from script"));
    assert!(cmd(&mut s, &["EVAL", "#!lua flags=bad\nreturn 1", "0"])
        .starts_with("-ERR Unexpected flag in script shebang: bad"));
    assert!(cmd(&mut s, &["EVAL", "#!python\nreturn 1", "0"]).starts_with("-ERR Unexpected engine"));
    // The shebang line keeps the line numbers.
    let r = cmd(&mut s, &["EVAL", "#!lua\n\nredis.call('nosuch')", "0"]);
    assert!(r.ends_with("on @user_script:3.\r\n"), "{r}");
}

#[test]
fn read_only_scripts_refuse_writes() {
    let mut s = fresh();
    cmd(&mut s, &["SET", "foo", "bar"]);
    assert_eq!(
        cmd(
            &mut s,
            &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "foo"]
        ),
        "$3\r\nbar\r\n"
    );
    assert!(cmd(
        &mut s,
        &["EVAL_RO", "redis.call('del', KEYS[1])", "1", "foo"]
    )
    .starts_with("-ERR Write commands are not allowed from read-only scripts."));
    assert!(cmd(
        &mut s,
        &[
            "EVAL",
            "#!lua flags=no-writes\nredis.call('del', KEYS[1])",
            "1",
            "foo"
        ]
    )
    .starts_with("-ERR Write commands are not allowed from read-only scripts."));
    assert_eq!(
        cmd(&mut s, &["EVAL_RO", "#!lua\nreturn 1", "0"]),
        "-ERR Can not execute a script with write flag using *_ro command.\r\n"
    );
    assert_eq!(cmd(&mut s, &["GET", "foo"]), "$3\r\nbar\r\n");
}

#[test]
fn scripts_are_cached_and_flushed() {
    let mut s = fresh();
    cmd(&mut s, &["SET", "mykey", "myval"]);
    let body = "return redis.call('get',KEYS[1])";
    let sha = sha1_hex(body.as_bytes());
    assert_eq!(sha, "fd758d1589d044dd850a6f05d52f2eefd27f033f");
    assert!(cmd(&mut s, &["EVALSHA", &sha, "1", "mykey"]).starts_with("-NOSCRIPT"));
    assert_eq!(
        cmd(&mut s, &["EVAL", body, "1", "mykey"]),
        "$5\r\nmyval\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["EVALSHA", &sha, "1", "mykey"]),
        "$5\r\nmyval\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["EVALSHA", &sha.to_uppercase(), "1", "mykey"]),
        "$5\r\nmyval\r\n"
    );
    assert!(cmd(&mut s, &["EVALSHA", "NotValidShaSUM", "0"]).starts_with("-NOSCRIPT"));
    assert_eq!(
        cmd(
            &mut s,
            &[
                "SCRIPT",
                "EXISTS",
                &sha,
                "ffd632c7d33e571e9f24556ebed26c3479a87130"
            ]
        ),
        "*2\r\n:1\r\n:0\r\n"
    );
    assert_eq!(cmd(&mut s, &["SCRIPT", "FLUSH"]), "+OK\r\n");
    assert!(cmd(&mut s, &["EVALSHA", &sha, "1", "mykey"]).starts_with("-NOSCRIPT"));
    assert_eq!(
        cmd(&mut s, &["SCRIPT", "LOAD", body]),
        format!("${}\r\n{sha}\r\n", sha.len())
    );
    assert_eq!(
        cmd(&mut s, &["EVALSHA_RO", &sha, "1", "mykey"]),
        "$5\r\nmyval\r\n"
    );
    assert!(cmd(&mut s, &["SCRIPT", "LOAD", "return ("]).starts_with("-ERR Error compiling script"));
    assert_eq!(
        cmd(&mut s, &["SCRIPT", "FLUSH", "bad"]),
        "-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["SCRIPT", "NOPE"]),
        "-ERR unknown subcommand 'NOPE'. Try SCRIPT HELP.\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["SCRIPT", "KILL"]),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    assert!(cmd(&mut s, &["SCRIPT", "HELP"]).starts_with("*17\r\n+SCRIPT <subcommand>"));
}

#[test]
fn a_script_registered_elsewhere_is_found_here() {
    // Two shards share one registry: a script cached on one runs by sha on the other.
    let shared = Arc::new(Shared::new(2));
    let body = "return ARGV[1]";
    let sha = sha1_hex(body.as_bytes());
    let shared0 = shared.clone();
    std::thread::spawn(move || {
        attach(shared0, 0);
        let mut s = store();
        assert_eq!(
            cmd(&mut s, &["EVAL", "return ARGV[1]", "0", "a"]),
            "$1\r\na\r\n"
        );
    })
    .join()
    .unwrap();
    attach(shared, 1);
    let mut s = store();
    assert_eq!(cmd(&mut s, &["EVALSHA", &sha, "0", "b"]), "$1\r\nb\r\n");
}

#[test]
fn undeclared_keys_are_refused_on_a_sharded_node() {
    attach(Arc::new(Shared::new(2)), 0);
    // A store that owns half the slots, as shard 0 of two does.
    let mut s = Store::new(0, SLOTS / 2, 7);
    let r = cmd(
        &mut s,
        &["EVAL", "return redis.call('set', 'other', 1)", "0"],
    );
    assert!(
        r.starts_with("-ERR Script attempted to access key 'other' that was not declared in KEYS"),
        "{r}"
    );
    let r = cmd(
        &mut s,
        &[
            "EVAL",
            "return redis.call('mget', KEYS[1], 'b{b}')",
            "1",
            "a{b}",
        ],
    );
    assert!(r.contains("'b{b}'"), "{r}");
    // The key check comes before the command runs: the other shard's key is never touched.
    let r = cmd(&mut s, &["EVAL", "return redis.call('get', 'a{t}')", "0"]);
    assert!(r.contains("'a{t}'"), "{r}");
    assert!(
        cmd(&mut s, &["EVAL", "return redis.call('dbsize')", "0"]).contains("spans every shard")
    );
    assert_eq!(
        cmd(
            &mut s,
            &["EVAL", "return redis.call('set', KEYS[1], 1)", "1", "a{b}"]
        ),
        "+OK\r\n"
    );
    // pcall sees the refusal as an error table.
    assert_eq!(
        cmd(
            &mut s,
            &[
                "EVAL",
                "local r = redis.pcall('get', 'zz') return type(r.err)",
                "0"
            ]
        ),
        "$6\r\nstring\r\n"
    );
    s.check();
}

#[test]
fn one_shard_scripts_may_touch_any_key() {
    let mut s = fresh();
    assert_eq!(
        cmd(
            &mut s,
            &[
                "EVAL",
                "redis.call('set', 'x', 1) return redis.call('dbsize')",
                "0"
            ]
        ),
        ":1\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["EVAL", "return redis.call('keys', '*')", "0"]),
        "*1\r\n$1\r\nx\r\n"
    );
}

#[test]
fn functions_load_list_call_delete() {
    let mut s = fresh();
    let lib = "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return redis.call('set', keys[1], args[1]) end)\nredis.register_function{function_name='ro', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}";
    assert_eq!(cmd(&mut s, &["FUNCTION", "LOAD", lib]), "$5\r\nmylib\r\n");
    assert!(cmd(&mut s, &["FUNCTION", "LOAD", lib]).contains("Library 'mylib' already exists"));
    assert_eq!(
        cmd(&mut s, &["FUNCTION", "LOAD", "REPLACE", lib]),
        "$5\r\nmylib\r\n"
    );
    assert_eq!(cmd(&mut s, &["FCALL", "myfunc", "1", "k", "v"]), "+OK\r\n");
    assert_eq!(cmd(&mut s, &["FCALL", "MYFUNC", "1", "k", "w"]), "+OK\r\n");
    assert_eq!(cmd(&mut s, &["FCALL_RO", "ro", "1", "k"]), "$1\r\nw\r\n");
    assert!(cmd(&mut s, &["FCALL_RO", "myfunc", "1", "k", "v"])
        .contains("Can not execute a script with write flag"));
    assert_eq!(
        cmd(&mut s, &["FCALL", "nosuch", "0"]),
        "-ERR Function not found\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["FCALL", "myfunc", "x"]),
        "-ERR Bad number of keys provided\r\n"
    );
    let list = cmd(&mut s, &["FUNCTION", "LIST"]);
    assert!(
        list.starts_with(
            "*1\r\n*6\r\n$12\r\nlibrary_name\r\n$5\r\nmylib\r\n$6\r\nengine\r\n$3\r\nLUA\r\n"
        ),
        "{list}"
    );
    assert!(
        list.contains("$5\r\nreads\r\n$5\r\nflags\r\n*1\r\n+no-writes\r\n"),
        "{list}"
    );
    assert!(cmd(&mut s, &["FUNCTION", "LIST", "WITHCODE"]).contains("library_code"));
    assert_eq!(
        cmd(&mut s, &["FUNCTION", "LIST", "LIBRARYNAME", "nomatch*"]),
        "*0\r\n"
    );
    let other = "#!lua name=other\nredis.register_function('myfunc', function() return 1 end)";
    assert_eq!(
        cmd(&mut s, &["FUNCTION", "LOAD", other]),
        "-ERR Function myfunc already exists\r\n"
    );
    let dump = {
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, false);
        let words = ["FUNCTION", "DUMP"];
        let mut src = Vec::new();
        let mut ranges = Vec::new();
        for w in words {
            let st = src.len();
            src.extend_from_slice(w.as_bytes());
            ranges.push((st, src.len()));
        }
        admin(
            lookup(b"function").unwrap(),
            &Args {
                src: &src,
                ranges: &ranges,
            },
            &mut out,
        );
        buf
    };
    assert!(dump.starts_with(b"$"));
    assert_eq!(cmd(&mut s, &["FUNCTION", "DELETE", "mylib"]), "+OK\r\n");
    assert_eq!(
        cmd(&mut s, &["FUNCTION", "DELETE", "mylib"]),
        "-ERR Library not found\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["FCALL", "myfunc", "1", "k", "v"]),
        "-ERR Function not found\r\n"
    );
    assert_eq!(cmd(&mut s, &["FUNCTION", "LIST"]), "*0\r\n");
    assert!(
        cmd(&mut s, &["FUNCTION", "LOAD", "#!lua name=lib\nreturn 1"])
            .contains("No functions registered")
    );
    assert!(cmd(
        &mut s,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nlocal a = 1 while 1 do a = a + 1 end"
        ]
    )
    .contains("FUNCTION LOAD timeout"));
    assert_eq!(
        cmd(&mut s, &["FUNCTION", "LOAD", "#!bad_engine name=lib\n"]),
        "-ERR Engine 'bad_engine' not found\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["FUNCTION", "LOAD", "#!lua name=test foo=bar\n"]),
        "-ERR Invalid metadata value given: foo=bar\r\n"
    );
    assert!(cmd(
        &mut s,
        &["FUNCTION", "LOAD", "#!lua name=lib\nredis.call('ping')"]
    )
    .contains("nonexistent global variable 'call'"));
    assert_eq!(
        cmd(&mut s, &["FUNCTION", "FLUSH", "bad"]),
        "-ERR FUNCTION FLUSH only supports SYNC|ASYNC option\r\n"
    );
    assert_eq!(cmd(&mut s, &["FUNCTION", "FLUSH"]), "+OK\r\n");
    assert!(cmd(&mut s, &["FUNCTION", "STATS"]).contains("running_script"));
    let errors_in_fn =
        "#!lua name=e\nredis.register_function('boom', function() return redis.call('nosuch') end)";
    cmd(&mut s, &["FUNCTION", "LOAD", errors_in_fn]);
    assert_eq!(
        cmd(&mut s, &["FCALL", "boom", "0"]),
        "-ERR Unknown Redis command called from script script: boom, on @user_function:2.\r\n"
    );
    s.check();
}

#[test]
fn the_time_limit_stops_a_runaway_read_only_script() {
    let shared = Arc::new(Shared::new(1));
    shared.set_busy_ms(50);
    attach(shared, 0);
    let mut s = store();
    let r = cmd(&mut s, &["EVAL", "while true do end", "0"]);
    assert!(
        r.starts_with("-ERR Script killed after running past the busy threshold"),
        "{r}"
    );
    // pcall cannot hold a killed script.
    let r = cmd(
        &mut s,
        &[
            "EVAL",
            "while true do pcall(function() while true do end end) end",
            "0",
        ],
    );
    assert!(r.contains("Script killed"), "{r}");
    // Coroutines neither.
    let r = cmd(
        &mut s,
        &[
            "EVAL",
            "local co = coroutine.wrap(function() while true do end end) co()",
            "0",
        ],
    );
    assert!(r.contains("Script killed"), "{r}");
    // The state is usable afterwards.
    assert_eq!(cmd(&mut s, &["EVAL", "return 1", "0"]), ":1\r\n");
    // A function is stopped the same way, with its own name and line in the error.
    let lib =
        "#!lua name=spin\nredis.register_function('spin', function()\n while true do end end)";
    assert_eq!(cmd(&mut s, &["FUNCTION", "LOAD", lib]), "$4\r\nspin\r\n");
    let r = cmd(&mut s, &["FCALL", "spin", "0"]);
    assert!(
        r.starts_with("-ERR Script killed after running past the busy threshold"),
        "{r}"
    );
    assert!(r.ends_with("script: spin, on @user_function:3.\r\n"), "{r}");
}

#[test]
fn script_kill_from_another_thread() {
    let shared = Arc::new(Shared::new(2));
    shared.set_busy_ms(0);
    let killer = shared.clone();
    let t = std::thread::spawn(move || {
        // Wait until shard 0 runs the script, then kill it as SCRIPT KILL would.
        loop {
            if lock(&killer.runs[0].running).is_some() {
                break;
            }
            std::thread::yield_now();
        }
        assert_eq!(killer.kill(false), Err(errors::BUSY_SCRIPT));
        killer.kill(true)
    });
    attach(shared.clone(), 0);
    let mut s = Store::new(0, SLOTS / 2, 7);
    let r = cmd(&mut s, &["EVAL", "while true do end", "0"]);
    assert_eq!(t.join().unwrap(), Ok(()));
    let sha = sha1_hex(b"while true do end");
    assert_eq!(
        r,
        format!(
            "-ERR Script killed by user with SCRIPT KILL... script: {sha}, on @user_script:1.\r\n"
        )
    );
    assert_eq!(shared.kill(true), Err(errors::NOTBUSY));
}

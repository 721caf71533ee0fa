"""Lua scripting through redis-py and redis-cli on a 2-shard node: EVAL and EVALSHA with
keys on either shard, the script cache seen from every shard, functions, type conversions,
undeclared keys, read-only scripts, and SCRIPT KILL / FUNCTION KILL from a connection of
the other shard."""

import threading
import time

import pytest
import redis

from conftest import keys_on, shard_of


def client_on(node, shard, **kw):
    """A redis-py client whose connection the node serves on `shard` (CLIENT ID says)."""
    for _ in range(64):
        c = node.client(**kw)
        if c.client_id() % 2 == shard:
            return c
        c.close()
    pytest.fail(f"no connection landed on shard {shard}")


def tagged(shard, prefix="t"):
    """A hash tag whose keys live on `shard`."""
    i = 0
    while shard_of(f"{{{prefix}{i}}}") != shard:
        i += 1
    return f"{{{prefix}{i}}}"


def test_type_conversions_round_trip(r):
    assert r.eval("return 'hello'", 0) == b"hello"
    assert r.eval("return 100.5", 0) == 100
    assert r.eval("return true", 0) == 1
    assert r.eval("return false", 0) is None
    assert r.eval("return {ok='fine'}", 0) == b"fine"
    assert r.eval("return {1,2,3,'ciao',{1,2}}", 0) == [1, 2, 3, b"ciao", [1, 2]]
    assert r.eval("return {1,nil,3}", 0) == [1]
    with pytest.raises(redis.ResponseError, match="^this is an error$"):
        r.eval("return {err='ERR this is an error'}", 0)
    with pytest.raises(redis.ResponseError, match="^My Error$"):
        r.eval("return redis.error_reply('My Error')", 0)
    r.set("n{a}", 0)
    r.set("s{a}", "str")
    got = r.eval(
        """
        local i = redis.call('incr', KEYS[1])
        local s = redis.call('get', KEYS[2])
        local missing = redis.call('get', KEYS[3])
        local ok = redis.call('set', KEYS[3], 'x')
        local arr = redis.call('mget', KEYS[1], KEYS[2], KEYS[4])
        local e = redis.pcall('incr', KEYS[2])
        return {type(i), i, type(s), s, tostring(missing), ok.ok, arr[1], arr[2], tostring(arr[3]), e.err}
        """,
        4, "n{a}", "s{a}", "m{a}", "z{a}",
    )
    assert got == [
        b"number", 1, b"string", b"str", b"false", b"OK", b"1", b"str", b"false",
        b"ERR value is not an integer or out of range",
    ]
    # A Lua number goes to a command as %.17g, and integers stay integers.
    assert r.eval("redis.call('set', KEYS[1], ARGV[1] * 1) return redis.call('get', KEYS[1])", 1, "f", "3") == b"3"
    assert r.eval("redis.call('set', KEYS[1], 0.1) return redis.call('get', KEYS[1])", 1, "f") == b"0.10000000000000001"
    # Binary-safe strings both ways.
    assert r.eval("return ARGV[1]", 0, b"a\x00b\xff") == b"a\x00b\xff"
    # cjson and bit are there.
    assert r.eval("return cjson.encode({a={1,2}})", 0) == b'{"a":[1,2]}'
    assert r.eval("return cjson.decode(ARGV[1]).k", 0, '{"k": "v"}') == b"v"
    assert r.eval("return bit.bor(1,2,4,8,16,32,64,128)", 0) == 255
    assert r.eval("return redis.sha1hex('Pizza & Mandolino')", 0) == b"74822d82031af7493c20eefa13bd07ec4fada82f"


def test_resp3_script_replies(node):
    c = node.client(protocol=3)
    c.hset("h", "field", "value")
    assert c.eval("redis.setresp(3) return redis.call('hgetall', KEYS[1])", 1, "h") == {b"field": b"value"}
    assert c.eval("redis.setresp(2) return redis.call('hgetall', KEYS[1])", 1, "h") == [b"field", b"value"]
    assert c.eval("redis.setresp(3) return true", 0) is True
    c.close()


def test_scripts_run_on_the_shard_of_their_keys(node):
    """Keys of either shard, from connections of either shard: the script runs where its
    keys are and sees them."""
    for conn_shard in (0, 1):
        c = client_on(node, conn_shard)
        for key_shard in (0, 1):
            tag = tagged(key_shard, f"s{conn_shard}")
            k1, k2 = f"a{tag}", f"b{tag}"
            assert c.eval(
                "redis.call('set', KEYS[1], ARGV[1]) redis.call('hset', KEYS[2], ARGV[1], ARGV[2]) "
                "return {redis.call('get', KEYS[1]), redis.call('hlen', KEYS[2])}",
                2, k1, k2, "v", "w",
            ) == [b"v", 1]
            assert c.get(k1) == b"v"
        c.close()


def test_a_script_over_keys_of_two_shards_runs_atomically(node):
    """Keys without a common tag: the transaction framework gathers them, the script runs
    once over all of them, and its writes land on both owners."""
    a, b = keys_on(0, 1, "x")[0], keys_on(1, 1, "x")[0]
    c = node.client()
    c.set(a, 10)
    c.set(b, 5)
    moved = c.eval(
        """
        local from = tonumber(redis.call('get', KEYS[1]))
        local n = tonumber(ARGV[1])
        if from < n then return redis.error_reply('ERR not enough') end
        redis.call('decrby', KEYS[1], n)
        redis.call('incrby', KEYS[2], n)
        return {redis.call('get', KEYS[1]), redis.call('get', KEYS[2])}
        """,
        2, a, b, 3,
    )
    assert moved == [b"7", b"8"]
    assert c.mget(a, b) == [b"7", b"8"]
    with pytest.raises(redis.ResponseError, match="not enough"):
        c.eval("if tonumber(redis.call('get', KEYS[1])) < 100 then return redis.error_reply('ERR not enough') end", 2, a, b)
    # An undeclared key is refused there too: it is not in the gathered store.
    other = keys_on(0, 1, "y")[0]
    with pytest.raises(redis.ResponseError, match="not declared in KEYS"):
        c.eval("redis.call('set', ARGV[1], 1)", 2, a, b, other)
    assert c.get(other) is None
    c.close()


def test_undeclared_keys_are_refused_and_untouched(node):
    c = node.client()
    mine = keys_on(0, 1, "decl")[0]
    for other in (keys_on(0, 1, "undecl")[0], keys_on(1, 1, "undecl")[0]):
        with pytest.raises(redis.ResponseError, match=f"Script attempted to access key '{other}' that was not declared in KEYS"):
            c.eval("redis.call('set', KEYS[1], 1) return redis.call('set', ARGV[1], 'bad')", 1, mine, other)
        assert c.get(other) is None
        # pcall sees the refusal as an error table and can go on.
        assert c.eval(
            "local r = redis.pcall('get', ARGV[1]) return r.err ~= nil and 'refused' or 'read'",
            1, mine, other,
        ) == b"refused"
    # A command that spans every shard is refused too.
    with pytest.raises(redis.ResponseError, match="spans every shard"):
        c.eval("return redis.call('dbsize')", 0)
    c.close()


def test_evalsha_finds_a_script_cached_by_another_shard(node):
    body = "return {ARGV[1], #KEYS}"
    a, b = client_on(node, 0), client_on(node, 1)
    sha = a.script_load(body)
    assert b.script_exists(sha) == [True]
    assert b.evalsha(sha, 0, "x") == [b"x", 0]
    # EVAL caches too: EVALSHA on the other shard finds the body.
    body2 = "return 'second'"
    assert a.eval(body2, 0) == b"second"
    sha2 = a.script_load(body2)
    assert b.evalsha(sha2.upper(), 0) == b"second"
    # register_script: EVALSHA first, EVAL on NOSCRIPT; keys on either shard.
    incr = b.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    for k in (keys_on(0, 1, "rs")[0], keys_on(1, 1, "rs")[0]):
        assert incr(keys=[k], args=[5]) == 5
        assert incr(keys=[k], args=[5], client=a) == 10
    with pytest.raises(redis.exceptions.NoScriptError):
        a.evalsha("ffd632c7d33e571e9f24556ebed26c3479a87130", 0)
    # SCRIPT FLUSH on one shard empties the cache of every shard.
    assert b.script_flush() is True
    assert a.script_exists(sha, sha2) == [False, False]
    for c in (a, b):
        with pytest.raises(redis.exceptions.NoScriptError):
            c.evalsha(sha, 0, "x")
    a.close()
    b.close()


def test_script_errors_as_redis_words_them(r):
    sha = r.script_load("redis.call('nosuchcommand')")
    with pytest.raises(redis.ResponseError) as e:
        r.evalsha(sha, 0)
    assert str(e.value) == f"Unknown Redis command called from script script: {sha}, on @user_script:1."
    with pytest.raises(redis.ResponseError, match="Wrong number of args calling Redis command from script"):
        r.eval("redis.call('get', 'a', 'b')", 0)
    r.set("wt", "str")
    with pytest.raises(redis.ResponseError, match="^WRONGTYPE"):
        r.eval("redis.call('hset', KEYS[1], 'f', 'v')", 1, "wt")
    with pytest.raises(redis.ResponseError, match="Script attempted to access nonexistent global variable 'a'"):
        r.eval("return a", 0)
    with pytest.raises(redis.ResponseError, match="Attempt to modify a readonly table"):
        r.eval("a = 10", 0)
    with pytest.raises(redis.ResponseError, match="This Redis command is not allowed from script"):
        r.eval("redis.call('multi')", 0)
    with pytest.raises(redis.ResponseError, match="Number of keys can't be negative"):
        r.eval("return 1", -1)
    with pytest.raises(redis.ResponseError, match="Error compiling script"):
        r.eval("return (", 0)
    # pcall turns a failed redis.call into its message.
    assert r.eval("local ok, e = pcall(redis.call, 'nosuch') return e", 0) == b"ERR Unknown Redis command called from script"


def test_read_only_scripts(r):
    r.set("ro", "v")
    assert r.eval_ro("return redis.call('get', KEYS[1])", 1, "ro") == b"v"
    with pytest.raises(redis.ResponseError, match="Write commands are not allowed from read-only scripts"):
        r.eval_ro("return redis.call('del', KEYS[1])", 1, "ro")
    sha = r.script_load("#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])")
    assert r.evalsha_ro(sha, 1, "ro") == b"v"
    with pytest.raises(redis.ResponseError, match=r"Can not execute a script with write flag using \*_ro command"):
        r.eval_ro("#!lua\nreturn 1", 0)
    assert r.get("ro") == b"v"


def test_eval_inside_multi(r):
    with r.pipeline(transaction=True) as p:
        p.set("m{x}", 1)
        p.eval("return redis.call('incr', KEYS[1])", 1, "m{x}")
        p.get("m{x}")
        assert p.execute() == [True, 2, b"2"]


def test_functions_on_every_shard(node):
    a, b = client_on(node, 0), client_on(node, 1)
    lib = """#!lua name=mylib
local function set(keys, args) return redis.call('set', keys[1], args[1]) end
redis.register_function('myset', set)
redis.register_function{function_name='myget', callback=function(keys) return redis.call('get', keys[1]) end,
    flags={'no-writes'}, description='reads a key'}
"""
    assert a.function_load(lib) == b"mylib"
    with pytest.raises(redis.ResponseError, match="Library 'mylib' already exists"):
        b.function_load(lib)
    assert b.function_load(lib, replace=True) == b"mylib"
    for c in (a, b):
        for k in (keys_on(0, 1, "fn")[0], keys_on(1, 1, "fn")[0]):
            assert c.fcall("myset", 1, k, "v") == b"OK"
            assert c.fcall_ro("myget", 1, k) == b"v"
    with pytest.raises(redis.ResponseError, match=r"Can not execute a script with write flag using \*_ro command"):
        a.fcall_ro("myset", 1, "k", "v")
    with pytest.raises(redis.ResponseError, match="Function not found"):
        a.fcall("nosuch", 0)
    listing = b.function_list(withcode=True)
    assert len(listing) == 1
    entry = dict(zip(listing[0][::2], listing[0][1::2]))
    assert entry[b"library_name"] == b"mylib" and entry[b"engine"] == b"LUA"
    assert entry[b"library_code"] == lib.encode()
    names = sorted(dict(zip(f[::2], f[1::2]))[b"name"] for f in entry[b"functions"])
    assert names == [b"myget", b"myset"]
    assert a.function_list(library="nomatch*") == []
    # DUMP and RESTORE round trip.
    payload = a.function_dump()
    assert b.function_flush() is True
    with pytest.raises(redis.ResponseError, match="Function not found"):
        a.fcall("myset", 1, "k", "v")
    assert a.function_restore(payload) is True
    assert b.fcall("myset", 1, "k", "w") == b"OK"
    assert a.function_delete("mylib") is True
    with pytest.raises(redis.ResponseError, match="Function not found"):
        b.fcall("myset", 1, "k", "v")
    with pytest.raises(redis.ResponseError, match="Library not found"):
        b.function_delete("mylib")
    with pytest.raises(redis.ResponseError, match="No functions registered"):
        a.function_load("#!lua name=empty\nreturn 1")
    a.close()
    b.close()


def run_in_thread(fn):
    box = {}

    def go():
        try:
            box["result"] = fn()
        except Exception as e:  # the reply under test is usually an error
            box["error"] = e

    t = threading.Thread(target=go)
    t.start()
    return t, box


def kill_until(killer, kill, expect, timeout=10.0):
    """Call `kill` until it stops answering NOTBUSY (the script has started)."""
    deadline = time.time() + timeout
    while True:
        try:
            return kill()
        except redis.ResponseError as e:
            if "NOTBUSY" not in str(e) or time.time() > deadline:
                raise
        time.sleep(0.01)


def test_script_kill_from_the_other_shard(node):
    runner = client_on(node, 0)
    killer = client_on(node, 1)
    t, box = run_in_thread(lambda: runner.eval("while true do end", 0))
    assert kill_until(killer, killer.script_kill, True) is True
    t.join(timeout=20)
    assert not t.is_alive()
    assert "Script killed by user with SCRIPT KILL..." in str(box.get("error"))
    assert runner.ping() is True
    # A script caught in pcall loops is still killed.
    t, box = run_in_thread(lambda: runner.eval("while true do pcall(function() while true do end end) end", 0))
    assert kill_until(killer, killer.script_kill, True) is True
    t.join(timeout=20)
    assert "Script killed" in str(box.get("error"))
    # A script that wrote cannot be killed; it runs to its end.
    k = keys_on(0, 1, "unkillable")[0]
    t, box = run_in_thread(
        lambda: runner.eval("redis.call('set', KEYS[1], 'w') for i = 1, 3e8 do end return 'done'", 1, k)
    )
    with pytest.raises(redis.ResponseError, match="^UNKILLABLE"):
        kill_until(killer, killer.script_kill, True)
    t.join(timeout=60)
    assert box.get("result") == b"done"
    with pytest.raises(redis.ResponseError, match="NOTBUSY"):
        killer.script_kill()
    runner.close()
    killer.close()


def test_function_kill_and_stats(node):
    runner = client_on(node, 1)
    killer = client_on(node, 0)
    killer.function_load("#!lua name=loop\nredis.register_function('spin', function() while true do end end)")
    t, box = run_in_thread(lambda: runner.fcall("spin", 0))
    deadline = time.time() + 10
    while True:
        stats = killer.function_stats()
        running = stats[1] if isinstance(stats, list) else stats.get(b"running_script")
        if running:
            break
        assert time.time() < deadline
        time.sleep(0.01)
    with pytest.raises(redis.ResponseError, match="BUSY"):
        killer.script_kill()
    assert killer.function_kill() in (True, b"OK")
    t.join(timeout=20)
    assert "Script killed by user with SCRIPT KILL..." in str(box.get("error"))
    assert "script: spin, on @user_function:2." in str(box.get("error"))
    runner.close()
    killer.close()


def test_redis_cli_eval(node, tmp_path):
    script = tmp_path / "incr.lua"
    script.write_text("redis.call('set', KEYS[1], ARGV[1]) return redis.call('incrby', KEYS[1], ARGV[2])")
    out = node.cli("--eval", str(script), "cli{k}", ",", "40", "2")
    assert out.strip() == "42"
    assert node.cli("EVAL", "return {1, 'two'}", "0").split() == ["1", "two"]
    assert node.cli("FUNCTION", "LOAD", "#!lua name=cli\nredis.register_function('hi', function() return 'hi' end)").strip() == "cli"
    assert node.cli("FCALL", "hi", "0").strip() == "hi"


def test_large_replies_and_tables_cross_the_lua_boundary_without_harm(node):
    """A script returning or packing 100,000 elements aborted the node (a Lua reference held
    per element overflowed mlua's reference stack, a panic). They are answered now, and the
    node serves on."""
    r = node.client()
    r.rpush("{big}", *range(100_000))
    assert len(r.eval("return redis.call('lrange', KEYS[1], 0, -1)", 1, "{big}")) == 100_000
    assert len(r.eval("local t = {} for i = 1, 100000 do t[i] = {i} end return t", 0)) == 100_000
    m = r.eval("local t = {} for i = 1, 100000 do t[tostring(i)] = i end return {map = t}", 0)
    assert len(m) in (100_000, 200_000)  # RESP2 flattens a map
    packed = r.eval("return cmsgpack.pack(redis.call('lrange', KEYS[1], 0, -1))", 1, "{big}")
    assert packed[:3] == b"\xdd\x00\x01"  # array32 of 0x186a0 elements
    assert r.eval("local m = {} for i = 1, 100000 do m[tostring(i)] = i end "
                  "return cmsgpack.unpack(cmsgpack.pack(m))['99999']", 0) == 99999
    assert r.ping()

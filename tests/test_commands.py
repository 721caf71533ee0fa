"""Every RESP command pinion serves, through redis-py and redis-cli, on a 2-shard node.
Keys are chosen so that multi-key commands span both shards."""

import time

import pytest
import redis

from conftest import Raw, keys_on, shard_of


def test_connection_commands(r, node):
    assert r.ping() is True
    assert r.echo("hi") == b"hi"
    assert node.cli("PING", "x").strip() == "x"
    assert r.execute_command("SELECT", 0) is True
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r.execute_command("SELECT", 1)
    assert r.client_setname("worker-1") is True
    assert r.client_getname() == "worker-1"  # redis-py decodes this one itself
    cid = r.client_id()
    assert isinstance(cid, int) and cid > 0
    assert node.client().client_id() != cid
    raw = Raw(node.port)
    n = int(raw.cmd("COMMAND", "COUNT")[1:])
    assert n >= 50
    info = raw.cmd("COMMAND", "INFO", "get", "mset")
    assert info.startswith(b"*2\r\n*10\r\n$3\r\nget\r\n:2\r\n")
    assert b"$4\r\nmset\r\n:-3\r\n" in info
    assert raw.cmd("COMMAND").startswith(b"*%d\r\n" % n)
    raw.close()


def test_quit_closes_after_reply(node):
    out = node.cli("QUIT")
    assert out.strip() == "OK"


def test_strings(r):
    assert r.get("nope") is None
    assert r.set("s", "v") is True
    assert r.get("s") == b"v"
    assert r.set("s", "w", nx=True) is None
    assert r.set("s", "w", xx=True) is True
    assert r.set("s", "x", get=True) == b"w"
    assert r.setnx("s", "y") is False
    assert r.setnx("s2", "y") is True
    assert r.getset("s", "z") == b"x"
    assert r.getdel("s") == b"z"
    assert r.get("s") is None
    assert r.append("ap", "ab") == 2
    assert r.append("ap", "cd") == 4
    assert r.strlen("ap") == 4
    assert r.incr("cnt") == 1
    assert r.incrby("cnt", 10) == 11
    assert r.decr("cnt") == 10
    assert r.decrby("cnt", 4) == 6
    assert r.incrbyfloat("fl", 1.5) == 1.5
    assert r.incrbyfloat("fl", 0.25) == 1.75
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.incr("ap")
    with pytest.raises(redis.ResponseError, match="not a valid float"):
        r.incrbyfloat("ap", 1)
    r.set("big", 2**63 - 1)
    with pytest.raises(redis.ResponseError, match="overflow"):
        r.incr("big")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SET", "k", "v", "NX", "XX")
    with pytest.raises(redis.ResponseError, match="invalid expire time"):
        r.execute_command("SET", "k", "v", "EX", "0")


def test_set_expiry_options(r):
    assert r.set("e1", "v", ex=100)
    assert 99 <= r.ttl("e1") <= 100
    assert r.set("e2", "v", px=5000)
    assert 4900 <= r.pttl("e2") <= 5000
    at = int(time.time()) + 50
    assert r.set("e3", "v", exat=at)
    assert 48 <= r.ttl("e3") <= 50
    assert r.set("e4", "v", pxat=int(time.time() * 1000) + 60000)
    assert 58 <= r.ttl("e4") <= 60
    assert r.set("e4", "v2", keepttl=True)
    assert 58 <= r.ttl("e4") <= 60
    assert r.set("e4", "v3")
    assert r.ttl("e4") == -1
    assert r.execute_command("SETEX", "e5", 30, "v") is True
    assert 29 <= r.ttl("e5") <= 30
    assert r.execute_command("PSETEX", "e6", 3000, "v") is True
    assert 2900 <= r.pttl("e6") <= 3000
    assert r.getex("e6", persist=True) == b"v"
    assert r.ttl("e6") == -1
    assert r.getex("e6", ex=20) == b"v"
    assert 19 <= r.ttl("e6") <= 20


def test_keys_and_ttl_commands(r):
    r.set("k", "v")
    assert r.ttl("k") == -1
    assert r.ttl("missing") == -2
    assert r.expire("k", 100) is True
    assert r.expire("missing", 100) is False
    assert r.pexpire("k", 50000) is True
    assert 49000 <= r.pttl("k") <= 50000
    assert r.expireat("k", int(time.time()) + 200) is True
    assert 198 <= r.ttl("k") <= 200
    assert r.pexpireat("k", int(time.time() * 1000) + 300000) is True
    assert r.persist("k") is True
    assert r.persist("k") is False
    assert r.type("k") == b"string"
    r.hset("h", "f", "v")
    assert r.type("h") == b"hash"
    assert r.type("none") == b"none"
    # An expire in the past deletes.
    assert r.expire("k", -1) is True
    assert r.exists("k") == 0


def test_multi_key_commands_span_shards(r):
    a = keys_on(0, 5, "a")
    b = keys_on(1, 5, "b")
    mixed = [x for pair in zip(a, b) for x in pair]
    assert {shard_of(k) for k in mixed} == {0, 1}
    assert r.mset({k: f"val-{k}" for k in mixed}) is True
    got = r.mget(mixed + ["missing"])
    assert got == [f"val-{k}".encode() for k in mixed] + [None]
    assert r.exists(*mixed, "missing") == 10
    assert r.dbsize() == 10
    assert sorted(r.keys("*")) == sorted(k.encode() for k in mixed)
    assert sorted(r.keys("a*")) == sorted(k.encode() for k in a)
    assert r.delete(a[0], b[0], "missing") == 2
    assert r.unlink(a[1], b[1]) == 2
    assert r.dbsize() == 6
    # MSETNX: all-or-nothing across shards.
    assert r.msetnx({a[0]: "1", b[0]: "2"}) is True
    assert r.msetnx({a[0]: "x", "fresh": "y"}) is False
    assert r.get("fresh") is None
    assert r.get(a[0]) == b"1"
    assert r.flushdb() is True
    assert r.dbsize() == 0
    r.set("x", 1)
    assert r.flushall() is True
    assert r.dbsize() == 0


def test_scan_covers_all_shards(r):
    keys = {f"scan:{i}".encode() for i in range(500)}
    r.mset({k: b"v" for k in keys})
    r.hset("scanhash", "f", "v")
    seen = set(r.scan_iter(count=7))
    assert keys | {b"scanhash"} == seen
    assert set(r.scan_iter(match="scan:1*")) == {k for k in keys if k.startswith(b"scan:1")}
    assert set(r.scan_iter(_type="hash")) == {b"scanhash"}
    with pytest.raises(redis.ResponseError):
        r.execute_command("SCAN", "notanumber")


def test_hashes(r):
    assert r.hset("h", mapping={"a": 1, "b": 2}) == 2
    assert r.hset("h", "a", 3) == 0
    assert r.hget("h", "a") == b"3"
    assert r.hget("h", "zz") is None
    assert r.hmget("h", "a", "b", "c") == [b"3", b"2", None]
    assert r.hgetall("h") == {b"a": b"3", b"b": b"2"}
    assert r.hlen("h") == 2
    assert r.hexists("h", "a") is True
    assert r.hexists("h", "zz") is False
    assert r.hincrby("h", "a", 5) == 8
    assert r.hincrby("h", "new", -2) == -2
    assert r.execute_command("HMSET", "h", "c", "4") is True
    assert r.hdel("h", "a", "b", "c", "new", "nope") == 4
    assert r.exists("h") == 0
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.hset("str", "f", "v")
    r.hset("h2", "f", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.get("h2")
    r.hset("h2", "n", "abc")
    with pytest.raises(redis.ResponseError, match="hash value is not an integer"):
        r.hincrby("h2", "n", 1)


def test_errors_are_worded_like_redis(r):
    with pytest.raises(redis.ResponseError, match="unknown command 'NOPE', with args beginning with: 'a'"):
        r.execute_command("NOPE", "a")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get' command"):
        r.execute_command("GET")
    with pytest.raises(redis.ResponseError, match="value is not an integer"):
        r.execute_command("EXPIRE", "k", "soon")


def test_info_and_config(r, node):
    r.set("a", 1)
    r.get("a")
    r.get("missing")
    info = r.info()
    assert info["redis_mode"] == "standalone"
    assert info["shards"] == 2
    assert info["connected_clients"] >= 1
    assert info["keyspace_hits"] >= 1 and info["keyspace_misses"] >= 1
    assert info["used_memory"] > 0
    assert info["db0"]["keys"] == 1
    assert "keyspace_hits" in r.info("stats")
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    assert r.config_set("maxmemory", "10mb") is True
    assert r.config_get("maxmemory")["maxmemory"] == str(10 * 1024 * 1024)
    assert r.config_set("maxmemory-policy", "allkeys-lru") is True
    assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
    assert {"maxmemory", "maxmemory-policy", "maxmemory-samples"} <= set(r.config_get("maxmemory*"))
    with pytest.raises(redis.ResponseError, match="Unknown option"):
        r.config_set("no-such-option", "1")
    # redis-benchmark asks for these on start.
    assert node.cli("CONFIG", "GET", "save").split() == ["save"]


def test_resp3_with_redis_py(node):
    c = node.client(protocol=3)
    c.hset("h", mapping={"a": "1"})
    assert c.hgetall("h") == {b"a": b"1"}
    assert c.get("missing") is None
    assert c.incrbyfloat("f", 2.5) == 2.5
    info = c.info("server")
    assert info["redis_mode"] == "standalone"
    c.close()


def test_redis_cli_raw_and_resp3(node):
    assert node.cli("SET", "cli", "hello").strip() == "OK"
    assert node.cli("GET", "cli").strip() == "hello"
    node.cli("HSET", "hh", "f", "v")
    # redis-cli prints a RESP3 map as `1# "f" => "v"`, a RESP2 array as `1) "f"`.
    assert node.cli("--no-raw", "-3", "HGETALL", "hh").strip() == '1# "f" => "v"'
    assert node.cli("--no-raw", "HGETALL", "hh").split("\n")[0] == '1) "f"'
    assert node.cli("--no-raw", "-3", "GET", "nothing").strip() == "(nil)"
    # Commands from stdin, as in `cat cmds | redis-cli`.
    out = node.cli(input=b"SET p1 1\nINCR p1\nGET p1\n")
    assert out.split() == ["OK", "2", "2"]

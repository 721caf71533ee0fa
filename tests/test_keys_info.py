"""The rest of strings, hashes and keys, and the introspection tools rely on, through redis-py
and redis-cli on a 2-shard node: hash commands, RENAME/COPY (one shard by {tag}, and across
shards), OBJECT, MEMORY USAGE, EXPIRETIME, RANDOMKEY, INFO sections, CONFIG and COMMAND."""

import time

import pytest
import redis

from conftest import Raw, keys_on, shard_of


def test_hash_commands(r):
    assert r.hsetnx("h", "f", "v") == 1
    assert r.hsetnx("h", "f", "w") == 0
    assert r.hget("h", "f") == b"v"
    assert r.hincrbyfloat("h", "n", 10.5) == 10.5
    assert r.hincrbyfloat("h", "n", 0.1) == pytest.approx(10.6)
    assert r.hget("h", "n") == b"10.6"
    assert r.hstrlen("h", "n") == 4
    assert r.hstrlen("h", "nope") == 0
    assert sorted(r.hkeys("h")) == [b"f", b"n"]
    assert sorted(r.hvals("h")) == [b"10.6", b"v"]
    with pytest.raises(redis.ResponseError, match="hash value is not a float"):
        r.hincrbyfloat("h", "f", 1)
    r.set("s", "x")
    for call in (lambda: r.hkeys("s"), lambda: r.hsetnx("s", "a", "b"), lambda: r.hrandfield("s")):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            call()


def test_hrandfield(r):
    assert r.hrandfield("nope") is None
    assert r.hrandfield("nope", 3) == []
    r.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
    assert r.hrandfield("h") in (b"a", b"b", b"c")
    assert sorted(r.hrandfield("h", 10)) == [b"a", b"b", b"c"]
    assert len(set(r.hrandfield("h", 2))) == 2
    many = r.hrandfield("h", -20)
    assert len(many) == 20 and set(many) <= {b"a", b"b", b"c"}
    pairs = r.hrandfield("h", 3, withvalues=True)
    assert dict(zip(pairs[::2], pairs[1::2])) == {b"a": b"1", b"b": b"2", b"c": b"3"}
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("HRANDFIELD", "h", 1, "WITHSCORES")


def test_hscan_returns_every_field_of_a_big_hash(r):
    fields = {f"f{i}": str(i) for i in range(10_000)}
    for i in range(0, 10_000, 1000):
        r.hset("big", mapping={k: fields[k] for k in list(fields)[i : i + 1000]})
    assert r.object("encoding", "big") == b"hashtable"
    seen = {}
    cursor, calls = 0, 0
    while True:
        cursor, part = r.hscan("big", cursor, count=100)
        seen.update(part)
        calls += 1
        if cursor == 0:
            break
    assert calls > 10
    assert seen == {k.encode(): v.encode() for k, v in fields.items()}
    # MATCH filters fields; a small hash comes back whole with cursor 0.
    _, some = r.hscan("big", 0, match="f999*", count=20_000)
    assert set(some) == {b"f999", b"f9990", b"f9991", b"f9992", b"f9993", b"f9994", b"f9995",
                         b"f9996", b"f9997", b"f9998", b"f9999"}
    r.hset("small", mapping={"a": 1, "b": 2})
    assert r.hscan("small", 0) == (0, {b"a": b"1", b"b": b"2"})
    assert r.hscan("nope", 0) == (0, {})


def test_hash_encoding_follows_redis_bounds(r):
    r.hset("h", "f", "v")
    assert r.object("encoding", "h") == b"listpack"
    r.hset("h", mapping={f"f{i}": "v" for i in range(511)})
    assert r.hlen("h") == 512 and r.object("encoding", "h") == b"listpack"
    r.hset("h", "one-more", "v")
    assert r.object("encoding", "h") == b"hashtable"
    r.hset("long", "f", "x" * 65)
    assert r.object("encoding", "long") == b"hashtable"


def test_rename_and_copy_on_one_shard(r):
    assert r.set("{t}a", "1", px=50_000)
    assert r.rename("{t}a", "{t}b")
    assert r.exists("{t}a") == 0
    assert r.get("{t}b") == b"1"
    assert 49_000 < r.pttl("{t}b") <= 50_000, "RENAME keeps the TTL"
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.rename("{t}nope", "{t}x")
    r.hset("{t}h", mapping={"f": "v"})
    assert r.renamenx("{t}h", "{t}b") is False
    assert r.renamenx("{t}h", "{t}h2") is True
    assert r.hgetall("{t}h2") == {b"f": b"v"}
    # COPY is deep and keeps the TTL; REPLACE overwrites.
    r.expire("{t}h2", 100)
    assert r.copy("{t}h2", "{t}h3") is True
    assert 99 <= r.ttl("{t}h3") <= 100
    r.hset("{t}h3", "f", "changed")
    assert r.hget("{t}h2", "f") == b"v"
    assert r.copy("{t}h2", "{t}h3") is False
    assert r.copy("{t}h2", "{t}h3", replace=True) is True
    assert r.hget("{t}h3", "f") == b"v"
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r.copy("{t}h2", "{t}h4", destination_db=1)
    with pytest.raises(redis.ResponseError, match="source and destination objects are the same"):
        r.copy("{t}h2", "{t}h2")
    assert r.copy("{t}nope", "{t}x") is False


def test_rename_and_copy_across_shards(r):
    a, b = keys_on(0, 1, "src")[0], keys_on(1, 1, "dst")[0]
    assert shard_of(a) != shard_of(b)
    r.hset(a, mapping={"f": "v"})
    r.expire(a, 100)
    assert r.rename(a, b)
    assert r.exists(a) == 0 and r.hgetall(b) == {b"f": b"v"}
    assert 99 <= r.ttl(b) <= 100
    assert r.copy(b, a) is True
    assert r.hgetall(a) == {b"f": b"v"}


def test_object_and_memory(r, node):
    for value, enc in [("12345", b"int"), ("-42", b"int"), ("0042", b"embstr"),
                       ("x" * 44, b"embstr"), ("x" * 45, b"raw")]:
        r.set("k", value)
        assert r.object("encoding", "k") == enc, value
    assert r.object("encoding", "nope") is None
    r.set("n", 7)
    assert r.object("refcount", "n") == 2147483647  # a shared integer, as in Redis
    assert r.object("refcount", "k") == 1
    assert r.object("idletime", "k") == 0
    with pytest.raises(redis.ResponseError, match="An LFU maxmemory policy is not selected"):
        r.object("freq", "k")
    assert r.config_set("maxmemory-policy", "allkeys-lfu")
    assert r.object("freq", "k") >= 0
    with pytest.raises(redis.ResponseError, match="An LFU maxmemory policy is selected"):
        r.object("idletime", "k")
    assert r.config_set("maxmemory-policy", "noeviction")
    with pytest.raises(redis.ResponseError, match=r"wrong number of arguments for 'object\|encoding'"):
        r.execute_command("OBJECT", "ENCODING")
    assert "OBJECT <subcommand>" in node.cli("OBJECT", "HELP")
    small = r.memory_usage("n")
    r.set("big", "x" * 100_000)
    big = r.memory_usage("big", samples=0)
    assert 0 < small < 200 and 100_000 < big < 101_000
    assert r.memory_usage("nope") is None
    r.hset("h", mapping={f"f{i}": "v" * 10 for i in range(1000)})
    assert r.memory_usage("h") > 1000 * 10


def test_expiretime_and_time(r):
    assert r.expiretime("nope") == -2
    r.set("k", "v")
    assert r.expiretime("k") == -1
    at = int(time.time()) + 100
    r.expireat("k", at)
    assert r.expiretime("k") == at
    assert r.pexpiretime("k") == at * 1000
    secs, usecs = r.time()
    assert abs(secs - time.time()) < 5 and 0 <= usecs < 1_000_000


def test_randomkey_sees_every_shard(r):
    assert r.randomkey() is None
    a, b = keys_on(0, 1, "ra")[0], keys_on(1, 1, "rb")[0]
    r.set(a, 1)
    r.set(b, 2)
    seen = {r.randomkey() for _ in range(200)}
    assert seen == {a.encode(), b.encode()}
    r.delete(a, b)
    assert r.randomkey() is None


def test_info_sections(r, node):
    r.set("a", 1)
    r.get("a")
    with pytest.raises(redis.ResponseError):
        r.execute_command("GET")  # rejected: wrong arity
    cpu = r.info("cpu")
    assert set(cpu) >= {"used_cpu_sys", "used_cpu_user", "used_cpu_user_children"}
    assert isinstance(cpu["used_cpu_user"], float) and "used_memory" not in cpu
    clients = r.info("clients")
    assert clients["blocked_clients"] == 0 and clients["connected_clients"] >= 1
    mem = r.info("memory")
    assert mem["mem_allocator"] == "libc" and mem["used_memory"] > 0
    assert mem["maxmemory_policy"] == "noeviction" and "used_memory_human" in mem
    assert r.info("keyspace")["db0"]["keys"] == 1
    stats = r.info("commandstats")
    assert stats["cmdstat_set"]["calls"] == 1
    assert stats["cmdstat_get"]["calls"] == 1 and stats["cmdstat_get"]["rejected_calls"] == 1
    assert "usec_per_call" in stats["cmdstat_set"]
    default = r.info()
    assert "master_repl_offset" in default and "cmdstat_set" not in default
    everything = r.info("all")
    assert "cmdstat_set" in everything and "used_cpu_user" in everything
    text = node.cli("INFO", "cpu", "sentinel")
    assert "used_cpu_user" in text and "master_repl_offset" not in text
    # Sections are separated by one blank line and never repeated.
    text = node.cli("INFO", "cpu", "all")
    assert text.count("# CPU") == 1 and "\n\n# Memory" in text.replace("\r", "")


def test_config_set_of_settings_without_effect(r, node):
    assert r.config_get("hash-max-ziplist-entries") == {"hash-max-ziplist-entries": "512"}
    assert r.config_set("hash-max-ziplist-entries", 1000)
    assert r.config_get("hash-max-listpack-entries") == {"hash-max-listpack-entries": "1000"}
    # Several pairs at once; every other connection (on either shard) sees them.
    assert r.execute_command("CONFIG", "SET", "lua-time-limit", "100", "appendonly", "YES",
                             "save", "")
    for _ in range(4):
        c = node.client()
        assert c.config_get("busy-reply-threshold") == {"busy-reply-threshold": "100"}
        assert c.config_get("appendonly") == {"appendonly": "yes"}
        c.close()
    assert node.cli("CONFIG", "GET", "zset-max-*").split() == [
        "zset-max-listpack-entries", "128", "zset-max-listpack-value", "64"]
    got = r.config_get("lazyfree-*")
    assert got["lazyfree-lazy-user-flush"] == "no" and len(got) == 5
    # Several patterns, each setting once.
    both = node.cli("CONFIG", "GET", "maxmemory", "maxmemory*").split()
    assert both.count("maxmemory") == 1 and "maxmemory-policy" in both
    with pytest.raises(redis.ResponseError, match="argument must be 'yes' or 'no'"):
        r.config_set("activerehashing", "maybe")
    with pytest.raises(redis.ResponseError, match="duplicate parameter"):
        r.execute_command("CONFIG", "SET", "hz", "10", "hz", "20")
    with pytest.raises(redis.ResponseError, match="can't set immutable config"):
        r.config_set("maxclients", 5)
    with pytest.raises(redis.ResponseError, match=r"wrong number of arguments for 'config\|set'"):
        r.execute_command("CONFIG", "SET", "hz")
    # A refused pair applies nothing.
    with pytest.raises(redis.ResponseError):
        r.execute_command("CONFIG", "SET", "hz", "50", "appendonly", "maybe")
    assert r.config_get("hz") == {"hz": "10"}


def test_config_resetstat(r):
    r.set("t", "v", px=1)
    time.sleep(0.01)
    assert r.get("t") is None
    r.get("missing")
    stats = r.info("stats")
    assert stats["expired_keys"] >= 1 and stats["keyspace_misses"] >= 1
    assert r.config_resetstat()
    stats = r.info("stats")
    assert stats["expired_keys"] == 0 and stats["keyspace_misses"] == 0
    assert stats["total_commands_processed"] <= 2
    assert "cmdstat_get" not in r.info("commandstats")


def test_command_introspection(node):
    raw = Raw(node.port)
    n = int(raw.cmd("COMMAND", "COUNT")[1:])
    assert n >= 70
    assert raw.cmd("COMMAND").startswith(b"*%d\r\n" % n)
    entry = raw.cmd("COMMAND", "INFO", "rename")
    assert entry.startswith(b"*1\r\n*10\r\n$6\r\nrename\r\n:3\r\n")
    docs = raw.cmd("COMMAND", "DOCS", "hset", "nosuch")
    assert docs.startswith(b"*2\r\n$4\r\nhset\r\n") and b"$4\r\nhash\r\n" in docs
    assert raw.cmd("COMMAND", "GETKEYS", "RENAME", "a", "b") == b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    assert raw.cmd("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2") == b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    assert raw.cmd("COMMAND", "GETKEYS", "PING") == b"-ERR The command has no key arguments\r\n"
    assert raw.cmd("COMMAND", "GETKEYS", "NOSUCH", "a") == b"-ERR Invalid command specified\r\n"
    # RESP3: COMMAND DOCS is a map of maps, as redis-cli 7 reads it for its hints.
    raw.cmd("HELLO", "3")
    assert raw.cmd("COMMAND", "DOCS", "get").startswith(b"%1\r\n$3\r\nget\r\n%2\r\n")
    raw.close()

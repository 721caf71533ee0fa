"""Sets through redis-py and redis-cli against the real binary (2 shards): every command,
its errors as Redis 7.0 words them, RESP3 replies, a 100k-member set, WATCH and memory.
Commands of several keys use {tag} keys, on each shard in turn."""

import collections

import pytest
import redis

from conftest import Raw, keys_on, shard_of

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def tag_on(shard: int) -> str:
    """A hash tag whose keys live on `shard`."""
    return next(t for t in (f"t{i}" for i in range(1000)) if shard_of("{%s}" % t) == shard)


def test_basics_on_both_shards(r):
    for shard in (0, 1):
        s, i = keys_on(shard, 2, f"set{shard}:")
        assert r.sadd(s, "foo") == 1
        assert r.sadd(s, "bar", "bar", "foo") == 1
        assert r.scard(s) == 2
        assert r.sismember(s, "foo") == 1
        assert r.sismember(s, "bla") == 0
        assert r.smismember(s, ["bla", "foo"]) == [0, 1]
        assert r.smembers(s) == {b"foo", b"bar"}
        assert r.sadd(i, 17, 16, -5, 2**63 - 1) == 4
        assert r.smembers(i) == {b"17", b"16", b"-5", b"9223372036854775807"}
        assert r.sismember(i, "016") == 0
        assert r.srem(i, 16, 99, "x") == 1
        assert r.srem(s, "foo", "bar") == 2
        assert r.exists(s) == 0
        assert r.type(i) == b"set"
    assert r.smembers("nokey") == set()
    assert r.scard("nokey") == 0
    assert r.smismember("nokey", ["a", "b"]) == [0, 0]
    assert r.srem("nokey", "a") == 0


def test_wrongtype_and_argument_errors(r):
    r.set("str", "x")
    r.sadd("{w}set", "a")
    r.set("{w}str", "x")
    for args in [
        ("SADD", "str", "a"),
        ("SREM", "str", "a"),
        ("SMEMBERS", "str"),
        ("SISMEMBER", "str", "a"),
        ("SMISMEMBER", "str", "a"),
        ("SCARD", "str"),
        ("SPOP", "str"),
        ("SRANDMEMBER", "str", "3"),
        ("SSCAN", "str", "0"),
        ("SMOVE", "{w}str", "{w}set", "a"),
        ("SMOVE", "{w}set", "{w}str", "a"),
        ("SINTER", "{w}set", "{w}str"),
        ("SUNION", "{w}nokey", "{w}str"),
        ("SDIFF", "{w}set", "{w}str"),
        ("SINTERSTORE", "{w}d", "{w}str", "{w}set"),
        ("SINTERCARD", "2", "{w}set", "{w}str"),
    ]:
        with pytest.raises(redis.ResponseError, match=WRONGTYPE):
            r.execute_command(*args)
    assert r.get("str") == b"x"
    assert r.exists("{w}d") == 0
    assert r.hset("h", "f", "v") == 1
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.sadd("h", "a")
    raw = Raw(r.connection_pool.connection_kwargs["port"])
    assert raw.cmd("SADD", "k") == b"-ERR wrong number of arguments for 'sadd' command\r\n"
    assert raw.cmd("SMISMEMBER", "k") == b"-ERR wrong number of arguments for 'smismember' command\r\n"
    assert raw.cmd("SPOP", "k", "-1") == b"-ERR value is out of range, must be positive\r\n"
    assert raw.cmd("SPOP", "k", "1", "2") == b"-ERR syntax error\r\n"
    assert raw.cmd("SRANDMEMBER", "k", "x") == b"-ERR value is not an integer or out of range\r\n"
    assert raw.cmd("SRANDMEMBER", "{w}set", "-9223372036854775808").startswith(
        b"-ERR value is out of range, value must between -9223372036854775807"
    )
    assert raw.cmd("SINTERCARD", "0", "k") == b"-ERR numkeys should be greater than 0\r\n"
    assert raw.cmd("SINTERCARD", "2", "k") == b"-ERR Number of keys can't be greater than number of args\r\n"
    assert raw.cmd("SINTERCARD", "1", "k", "LIMIT", "-1") == b"-ERR LIMIT can't be negative\r\n"
    assert raw.cmd("SINTERCARD", "1", "k", "bar") == b"-ERR syntax error\r\n"
    assert raw.cmd("SSCAN", "k", "x") == b"-ERR invalid cursor\r\n"
    assert raw.cmd("SSCAN", "{w}set", "0", "COUNT", "0") == b"-ERR syntax error\r\n"
    raw.close()


def test_spop_and_srandmember(r):
    assert r.spop("nokey") is None
    assert r.spop("nokey", 3) == []
    assert r.srandmember("nokey") is None
    assert r.srandmember("nokey", 5) == []
    for contents in (
        [str(i) for i in range(1, 27)],
        [chr(ord("a") + i) for i in range(26)],
    ):
        r.sadd("s", *contents)
        got = []
        for count in (11, 9, 0, 4, 1, 0, 1, 0):
            popped = r.spop("s", count)
            assert len(popped) == count
            got += popped
        assert sorted(x.decode() for x in got) == sorted(contents)
        assert r.exists("s") == 0
    r.sadd("s", *range(10))
    members = {str(i).encode() for i in range(10)}
    assert set(r.srandmember("s", 10)) == members
    assert set(r.srandmember("s", 100)) == members
    assert r.srandmember("s", 0) == []
    five = r.srandmember("s", 5)
    assert len(set(five)) == 5 and set(five) <= members
    # A negative count repeats, and spreads evenly over the members.
    many = r.srandmember("s", -10000)
    assert len(many) == 10000
    counts = collections.Counter(many)
    assert set(counts) == members
    assert all(800 < c < 1200 for c in counts.values()), counts
    assert r.srandmember("s") in members
    assert r.spop("s", 100) and r.exists("s") == 0


@pytest.mark.parametrize("shard", [0, 1])
def test_multi_key_commands(r, shard):
    t = tag_on(shard)
    k = lambda name: "{%s}%s" % (t, name)  # noqa: E731
    r.sadd(k("s1"), *range(200), "foo")
    r.sadd(k("s2"), *range(195, 395), "foo")
    r.sadd(k("s3"), 199, 195, 1000, 2000, "foo")
    r.sadd(k("s4"), *range(5, 200))
    assert r.sinter(k("s1"), k("s2")) == {b"195", b"196", b"197", b"198", b"199", b"foo"}
    assert r.sinter(k("s1"), k("s2"), k("s3")) == {b"195", b"199", b"foo"}
    assert r.sinter(k("s1"), k("nokey")) == set()
    assert r.sintercard(2, [k("s1"), k("s2")]) == 6
    assert r.sintercard(2, [k("s1"), k("s2")], limit=3) == 3
    assert r.sintercard(3, [k("s1"), k("s2"), k("s3")], limit=0) == 3
    assert len(r.sunion(k("s1"), k("s2"), k("nokey"))) == 396
    assert r.sdiff(k("s1"), k("s4")) == {b"0", b"1", b"2", b"3", b"4", b"foo"}
    assert r.sdiff(k("s1"), k("s1")) == set()
    assert r.sinterstore(k("res"), [k("s1"), k("s2")]) == 6
    assert r.smembers(k("res")) == {b"195", b"196", b"197", b"198", b"199", b"foo"}
    assert r.sunionstore(k("res"), [k("s3"), k("nokey")]) == 5
    assert r.sdiffstore(k("res"), [k("s1"), k("s4"), k("s2")]) == 5
    assert r.smembers(k("res")) == {b"0", b"1", b"2", b"3", b"4"}
    # An empty result deletes the destination, whatever it held.
    r.set(k("res"), "string")
    assert r.sinterstore(k("res"), [k("s1"), k("nokey")]) == 0
    assert r.exists(k("res")) == 0
    # SMOVE: into a new key, between encodings, and the source's last member.
    r.sadd(k("a"), "x")
    assert r.smove(k("a"), k("b"), "x") is True
    assert r.exists(k("a")) == 0
    assert r.smembers(k("b")) == {b"x"}
    assert r.smove(k("b"), k("s4"), "nope") is False
    assert r.smove(k("nokey"), k("b"), "x") is False
    assert r.smove(k("b"), k("s4"), "x") is True
    assert r.sismember(k("s4"), "x") == 1
    assert r.smove(k("s4"), k("s4"), "x") is True


def test_multi_key_commands_across_shards(node):
    r, w = node.client(), node.client()
    a, b = keys_on(0, 2, "xa"), keys_on(1, 2, "xb")
    r.sadd(a[0], *range(100), "foo")
    r.sadd(b[0], *range(50, 1000), "foo")
    nums = lambda rng: {str(i).encode() for i in rng}  # noqa: E731
    assert r.sinter(a[0], b[0]) == nums(range(50, 100)) | {b"foo"}
    assert r.sintercard(2, [a[0], b[0]]) == 51
    assert len(r.sunion(a[0], b[0])) == 1001
    assert r.sdiff(a[0], b[0]) == nums(range(50))
    # A STORE onto another shard writes only its destination: a watcher of a source sees
    # no change.
    with w.pipeline() as p:
        p.watch(b[0])
        p.multi()
        p.scard(b[0])
        assert r.sinterstore(b[1], [a[0], b[0]]) == 51
        assert p.execute() == [951]
    assert r.smembers(b[1]) == nums(range(50, 100)) | {b"foo"}
    assert r.sdiffstore(a[1], [b[0], a[0]]) == 900
    assert r.sunionstore(a[1], [a[0], "nokey"]) == 101
    # SMOVE between shards, while a scan of the destination is under way: the scan still
    # returns every member present throughout, once.
    cursor, seen = r.sscan(b[0], 0, count=10)
    assert r.smove(a[0], b[0], 1) is True
    assert r.smove(a[0], b[0], "foo") is True
    assert r.smove(a[0], b[0], "nope") is False
    while cursor:
        cursor, batch = r.sscan(b[0], cursor, count=10)
        seen += batch
    assert len(seen) == len(set(seen))
    assert nums(range(50, 1000)) | {b"foo"} <= set(seen)
    assert r.sismember(b[0], 1) == 1 and r.sismember(a[0], 1) == 0
    assert r.sismember(a[0], "foo") == 0 and r.scard(b[0]) == 952
    r.close()
    w.close()


def test_sscan(r):
    assert r.sscan("nokey") == (0, [])
    r.sadd("pat", "foo", "fab", "fiz", "foobar", 1, 2, 3, 4)
    cursor, found = r.sscan("pat", 0, match="foo*", count=10000)
    assert cursor == 0 and sorted(found) == [b"foo", b"foobar"]
    r.sadd("mixed", 1, "a")
    assert r.sscan("mixed", 0, match="*1*", count=100) == (0, [b"1"])
    # A large set scanned a few members at a time while most of it is removed: every
    # member present throughout comes back, and none twice.
    r.sadd("big", "x", *range(3000))
    seen, cursor, calls = [], 0, 0
    while True:
        cursor, batch = r.sscan("big", cursor, count=10)
        seen += batch
        calls += 1
        if calls == 5:
            r.srem("big", *range(100, 3000))
        if cursor == 0:
            break
    assert calls > 5
    assert len(seen) == len(set(seen))
    assert {str(i).encode() for i in range(100)} <= set(seen)
    assert set(r.sscan_iter("big", count=7)) == {b"x", *(str(i).encode() for i in range(100))}


def test_hundred_thousand_members(r):
    before = r.info("memory")["used_memory"]
    pipe = r.pipeline(transaction=False)
    for start in range(0, 100_000, 1000):
        pipe.sadd("huge", *(f"member:{i}" for i in range(start, start + 1000)))
    assert sum(pipe.execute()) == 100_000
    assert r.scard("huge") == 100_000
    used = r.info("memory")["used_memory"] - before
    # Slots and arena bytes: well under redis-server's ~60 bytes per member.
    assert 100_000 * 14 < used < 100_000 * 60, used
    assert r.smismember("huge", ["member:0", "member:99999", "member:100000"]) == [1, 1, 0]
    assert len(set(r.sscan_iter("huge", count=1000))) == 100_000
    assert len(r.srandmember("huge", 1000)) == 1000
    popped = r.spop("huge", 60_000)
    assert len(popped) == len(set(popped)) == 60_000
    assert r.scard("huge") == 40_000
    assert r.sismember("huge", popped[0]) == 0
    assert len(r.smembers("huge")) == 40_000
    assert r.delete("huge") == 1
    assert r.info("memory")["used_memory"] == before


def test_resp3_replies(node):
    c = node.client(protocol=3)
    c.sadd("s", "a", "b", 1)
    assert c.smembers("s") == {b"a", b"b", b"1"}
    assert c.sismember("s", "a") == 1
    assert isinstance(c.srandmember("s", 2), list)
    cursor, found = c.sscan("s")
    assert cursor == 0 and sorted(found) == [b"1", b"a", b"b"]
    c.sadd("{p}x", 1, 2, 3)
    c.sadd("{p}y", 2, 3, 4)
    assert c.sinter("{p}x", "{p}y") == {b"2", b"3"}
    assert c.sunion("{p}x", "{p}y") == {b"1", b"2", b"3", b"4"}
    assert c.sdiff("{p}x", "{p}y") == {b"1"}
    assert c.smembers("nokey") == set()
    assert c.spop("nokey") is None
    c.close()
    raw = Raw(node.port)
    assert raw.cmd("HELLO", "3").startswith(b"%")
    assert raw.cmd("SMEMBERS", "nokey") == b"~0\r\n"
    assert raw.cmd("SPOP", "s", "0") == b"~0\r\n"
    assert raw.cmd("SPOP", "nokey", "2") == b"~0\r\n"
    assert raw.cmd("SRANDMEMBER", "nokey", "2") == b"*0\r\n"
    assert raw.cmd("SPOP", "nokey") == b"_\r\n"
    assert raw.cmd("SPOP", "s", "10").startswith(b"~3\r\n")
    assert raw.cmd("SINTER", "{p}x", "{p}nokey") == b"~0\r\n"
    assert raw.cmd("SMISMEMBER", "{p}x", "1", "9") == b"*2\r\n:1\r\n:0\r\n"
    assert raw.cmd("SSCAN", "{p}x", "0").startswith(b"*2\r\n$1\r\n0\r\n*3\r\n")
    raw.close()


def test_redis_cli(node):
    assert node.cli("SADD", "cli", "b", "a").strip() == "2"
    assert sorted(node.cli("SMEMBERS", "cli").split()) == ["a", "b"]
    # redis-cli prints a RESP3 set as `1~ "a"`, a RESP2 array as `1) "a"`.
    out = node.cli("--no-raw", "-3", "SMEMBERS", "cli").splitlines()
    assert sorted(line.split(" ", 1)[1] for line in out) == ['"a"', '"b"']
    assert all(line.split(" ", 1)[0].endswith("~") for line in out)
    assert node.cli("--no-raw", "SMEMBERS", "cli").splitlines()[0].startswith("1) ")
    assert node.cli("--no-raw", "SPOP", "nokey").strip() == "(nil)"
    assert node.cli("SCARD", "cli").strip() == "2"


def test_watch_sees_only_real_changes(node):
    r, other = node.client(), node.client()
    r.sadd("{m}src", "a", "b")
    r.sadd("{m}dst", "a")
    # SMOVE of a member the destination holds already leaves it unchanged: EXEC runs.
    with r.pipeline() as p:
        p.watch("{m}dst")
        p.multi()
        p.sadd("{m}dst", "c")
        assert other.smove("{m}src", "{m}dst", "a") is True
        assert p.execute() == [1]
    assert r.smembers("{m}dst") == {b"a", b"c"}
    # A real addition aborts it.
    with r.pipeline() as p:
        p.watch("{m}dst")
        p.multi()
        p.sadd("{m}dst", "d")
        assert other.smove("{m}src", "{m}dst", "b") is True
        with pytest.raises(redis.WatchError):
            p.execute()
    # Set commands queue and run inside MULTI like any other.
    with r.pipeline() as p:
        p.sadd("{m}t", 1, 2, 3).srem("{m}t", 2).scard("{m}t").sinterstore("{m}u", ["{m}t", "{m}dst"])
        assert p.execute() == [3, 1, 2, 0]
    r.close()
    other.close()


def test_object_encoding_where_served(r):
    r.sadd("ints", *range(512))
    r.sadd("strs", "a")
    try:
        enc = r.object("encoding", "ints")
    except redis.ResponseError:
        pytest.skip("OBJECT is not served yet")
    assert enc == b"intset"
    assert r.object("encoding", "strs") == b"hashtable"
    r.sadd("ints", 512)
    assert r.object("encoding", "ints") == b"hashtable"


def test_noeviction_refuses_growing_sets(start):
    node = start("--maxmemory", "1mb", "--eviction", "noeviction")
    r = node.client()
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        for i in range(1000):
            r.sadd("grow", *(f"m:{i}:{j}:" + "x" * 50 for j in range(100)))
    n = r.scard("grow")
    assert 0 < n < 100_000
    # Shrinking is still allowed, and gives the memory back.
    assert len(r.spop("grow", n - 1)) == n - 1
    assert r.sadd("grow", "fits") == 1
    r.close()

"""Lists through redis-py (RESP2 and RESP3) and redis-cli on a 2-shard node: every list
command, Redis 7.0's replies and error texts, multi-key commands on {hash tag} keys (on each
shard), blocking commands that find data (or answer their timeout inside MULTI), and a large
list read back by range and index."""

import random

import pytest
import redis

from conftest import Raw, keys_on, shard_of

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def tag_on(shard: int) -> str:
    """A hash tag whose keys live on `shard`."""
    return "{" + keys_on(shard, 1, prefix="tag")[0] + "}"


@pytest.mark.parametrize("shard", [0, 1])
def test_push_pop_range_on_each_shard(r, shard):
    k = keys_on(shard, 1, prefix="list")[0]
    assert r.lpush(k, "a", "b", "c", "d") == 4
    assert r.rpush(k, 0, 1, 2, 3) == 8
    assert r.lrange(k, 0, -1) == [b"d", b"c", b"b", b"a", b"0", b"1", b"2", b"3"]
    assert r.llen(k) == 8
    assert r.lindex(k, 0) == b"d"
    assert r.lindex(k, -1) == b"3"
    assert r.lindex(k, 100) is None
    assert r.lpop(k) == b"d"
    assert r.rpop(k) == b"3"
    assert r.lpop(k, 2) == [b"c", b"b"]
    assert r.rpop(k, 2) == [b"2", b"1"]
    assert r.lpop(k, 0) == []
    assert r.rpop(k, 10) == [b"0", b"a"]
    assert r.exists(k) == 0
    assert r.lpop(k) is None
    assert r.lpop(k, 3) is None
    assert r.lpushx(k, "x") == 0
    assert r.rpushx(k, "x") == 0
    assert r.exists(k) == 0
    assert r.rpush(k, "m") == 1
    assert r.lpushx(k, "l") == 2
    assert r.rpushx(k, "r1", "r2") == 4
    assert r.lrange(k, 0, -1) == [b"l", b"m", b"r1", b"r2"]
    assert r.type(k) == b"list"


def test_pop_count_order_and_deletion(r):
    assert r.lpush("pc", "aa", "bb", "cc", "dd", "ee", "ff", "gg") == 7
    assert r.lpop("pc", 1) == [b"gg"]
    assert r.lpop("pc", 2) == [b"ff", b"ee"]
    assert r.rpop("pc", 2) == [b"aa", b"bb"]
    assert r.rpop("pc", 1) == [b"cc"]
    assert r.rpop("pc", 123) == [b"dd"]
    assert r.exists("pc") == 0
    with pytest.raises(redis.ResponseError, match="value is out of range, must be positive"):
        r.lpop("pc", -123)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'lpop' command"):
        r.execute_command("LPOP", "pc", 1, 1)


def test_wrongtype_everywhere(r):
    t = tag_on(0)
    r.set(f"str{t}", "v")
    r.rpush(f"l{t}", "a")
    for args in [
        ("LPUSH", f"str{t}", "a"),
        ("RPUSHX", f"str{t}", "a"),
        ("LPOP", f"str{t}"),
        ("RPOP", f"str{t}", 2),
        ("LLEN", f"str{t}"),
        ("LRANGE", f"str{t}", 0, -1),
        ("LINDEX", f"str{t}", 0),
        ("LSET", f"str{t}", 0, "x"),
        ("LINSERT", f"str{t}", "BEFORE", "a", "b"),
        ("LREM", f"str{t}", 0, "a"),
        ("LTRIM", f"str{t}", 0, 1),
        ("LPOS", f"str{t}", "a"),
        ("LMOVE", f"str{t}", f"l{t}", "LEFT", "LEFT"),
        ("RPOPLPUSH", f"l{t}", f"str{t}"),
        ("LMPOP", 2, f"nosuch{t}", f"str{t}", "LEFT"),
        ("BLPOP", f"str{t}", 0),
        ("BRPOP", f"nosuch{t}", f"str{t}", 0),
        ("BLMOVE", f"str{t}", f"l{t}", "LEFT", "RIGHT", 0),
        ("BLMPOP", 0, 1, f"str{t}", "RIGHT"),
    ]:
        with pytest.raises(redis.ResponseError, match="^" + WRONGTYPE):
            r.execute_command(*args)
    # Nothing moved on the refused moves.
    assert r.lrange(f"l{t}", 0, -1) == [b"a"]
    assert r.get(f"str{t}") == b"v"
    r.rpush("alist", "x")
    with pytest.raises(redis.ResponseError, match="^" + WRONGTYPE):
        r.get("alist")


def test_lset_linsert_lrem_ltrim(r):
    big = "x" * 9000
    r.rpush("ls", 99, 98, big, 96, 95)
    assert r.lset("ls", 1, "foo") is True
    assert r.lset("ls", -1, "bar") is True
    assert r.lrange("ls", 0, -1) == [b"99", b"foo", big.encode(), b"96", b"bar"]
    with pytest.raises(redis.ResponseError, match="^index out of range"):
        r.lset("ls", 10, "foo")
    with pytest.raises(redis.ResponseError, match="^no such key"):
        r.lset("nosuch", 0, "foo")
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range"):
        r.execute_command("LSET", "ls", "x", "foo")

    r.rpush("li", "a", big, "c", "d")
    assert r.linsert("li", "before", "c", "zz") == 5
    assert r.linsert("li", "after", "c", "yy") == 6
    assert r.linsert("li", "AFTER", "d", "dd") == 7
    assert r.linsert("li", "after", "bad", "ddd") == -1
    assert r.linsert("li", "BEFORE", "a", "aa") == 8
    assert r.linsert("nosuch", "before", "a", "aa") == 0
    assert r.lrange("li", 0, -1) == [b"aa", b"a", big.encode(), b"zz", b"c", b"yy", b"d", b"dd"]
    with pytest.raises(redis.ResponseError, match="^syntax error"):
        r.execute_command("LINSERT", "li", "aft3r", "aa", "42")

    r.rpush("lr", big, "foo", "bar", "foobar", "foobared", "zap", "bar", "test", "foo", "foo")
    assert r.lrem("lr", 0, "bar") == 2
    assert r.lrem("lr", 1, "foo") == 1
    assert r.lrem("lr", -1, "foo") == 1
    assert r.lrem("lr", 1, "nosuch") == 0
    assert r.lrange("lr", 0, -1) == [big.encode(), b"foobar", b"foobared", b"zap", b"test", b"foo"]
    r.rpush("ints", big, 1, 2, 3, 2)
    assert r.lrem("ints", -1, 2) == 1
    assert r.lrange("ints", 1, -1) == [b"1", b"2", b"3"]

    def trim(lo, hi):
        r.delete("lt")
        r.rpush("lt", 1, 2, 3, 4, big)
        assert r.ltrim("lt", lo, hi) is True
        return r.lrange("lt", 0, -1)

    assert trim(0, 0) == [b"1"]
    assert trim(1, -2) == [b"2", b"3", b"4"]
    assert trim(-2, -1) == [b"4", big.encode()]
    assert trim(-10, 10) == [b"1", b"2", b"3", b"4", big.encode()]
    assert trim(0, -6) == []
    assert r.exists("lt") == 0
    assert r.ltrim("nosuch", 0, 1) is True


def test_lpos(r):
    r.rpush("lp", "a", "b", "c", 1, 2, 3, "c", "c")
    assert r.lpos("lp", "a") == 0
    assert r.lpos("lp", "c") == 2
    assert r.lpos("lp", 2) == 4
    assert r.lpos("lp", "c", rank=2) == 6
    assert r.lpos("lp", "c", rank=4) is None
    assert r.lpos("lp", "c", rank=-1) == 7
    assert r.lpos("lp", "c", count=0) == [2, 6, 7]
    assert r.lpos("lp", "c", count=2, rank=-1) == [7, 6]
    assert r.lpos("lp", "c", count=0, maxlen=3) == [2]
    assert r.lpos("lp", "c", count=0, maxlen=3, rank=-1) == [7, 6]
    assert r.lpos("nosuch", "c", count=0) == []
    assert r.lpos("nosuch", "c") is None
    with pytest.raises(redis.ResponseError, match="^RANK can't be zero: use 1 to start from the first match"):
        r.lpos("lp", "c", rank=0)
    with pytest.raises(redis.ResponseError, match="^COUNT can't be negative"):
        r.lpos("lp", "c", count=-1)
    with pytest.raises(redis.ResponseError, match="^MAXLEN can't be negative"):
        r.lpos("lp", "c", maxlen=-1)
    with pytest.raises(redis.ResponseError, match="^syntax error"):
        r.execute_command("LPOS", "lp", "c", "COUNT")


@pytest.mark.parametrize("shard", [0, 1])
def test_lmove_rpoplpush_between_tagged_lists(r, shard):
    t = tag_on(shard)
    src, dst = f"src{t}", f"dst{t}"
    assert shard_of(src) == shard_of(dst) == shard
    r.rpush(src, "a", "b", "c", "d")
    assert r.rpoplpush(src, dst) == b"d"
    assert r.lmove(src, dst, "LEFT", "RIGHT") == b"a"
    assert r.lmove(src, dst, "RIGHT", "LEFT") == b"c"
    assert r.lrange(src, 0, -1) == [b"b"]
    assert r.lrange(dst, 0, -1) == [b"c", b"d", b"a"]
    assert r.lmove(src, dst, "LEFT", "LEFT") == b"b"
    assert r.exists(src) == 0
    assert r.lrange(dst, 0, -1) == [b"b", b"c", b"d", b"a"]
    # Missing source: null, and no destination created.
    assert r.rpoplpush(f"none{t}", f"new{t}") is None
    assert r.exists(f"new{t}") == 0
    # The same list: a rotation, which keeps the key's TTL.
    r.expire(dst, 100)
    assert r.lmove(dst, dst, "LEFT", "RIGHT") == b"b"
    assert r.lrange(dst, 0, -1) == [b"c", b"d", b"a", b"b"]
    assert 0 < r.ttl(dst) <= 100
    with pytest.raises(redis.ResponseError, match="^syntax error"):
        r.execute_command("LMOVE", src, dst, "UP", "LEFT")


def test_lmpop(r):
    t = tag_on(1)
    a, b = f"a{t}", f"b{t}"
    assert r.lmpop(2, a, b, direction="LEFT") is None
    r.rpush(a, "a", "b", "c", "d", "e")
    r.rpush(b, 1, 2, 3)
    assert r.lmpop(2, a, b, direction="LEFT", count=2) == [a.encode(), [b"a", b"b"]]
    assert r.lmpop(2, a, b, direction="RIGHT", count=10) == [a.encode(), [b"e", b"d", b"c"]]
    assert r.exists(a) == 0
    assert r.lmpop(2, a, b, direction="LEFT") == [b.encode(), [b"1"]]
    for args, msg in [
        ((0, a, "LEFT"), "^numkeys should be greater than 0"),
        (("x", a, "LEFT"), "^numkeys should be greater than 0"),
        ((1, a, "UP"), "^syntax error"),
        ((1, a, "LEFT", "COUNT", 1, "COUNT", 2), "^syntax error"),
        ((5, a, "LEFT"), "^syntax error"),
        ((1, a, "LEFT", "COUNT", 0), "^count should be greater than 0"),
    ]:
        with pytest.raises(redis.ResponseError, match=msg):
            r.execute_command("LMPOP", *args)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'lmpop' command"):
        r.execute_command("LMPOP", 1, a)


def test_blocking_commands_with_data_and_bad_arguments(r):
    t = tag_on(0)
    a, b, c = f"a{t}", f"b{t}", f"c{t}"
    r.rpush(b, 1, 2, 3, 4)
    assert list(r.blpop([a, b], timeout=1)) == [b.encode(), b"1"]
    assert list(r.brpop([a, b], timeout=0)) == [b.encode(), b"4"]
    assert r.blmpop(1, 2, a, b, direction="LEFT", count=5) == [b.encode(), [b"2", b"3"]]
    assert r.exists(b) == 0
    r.rpush(a, "x", "y")
    assert r.blmove(a, c, 1, "RIGHT", "LEFT") == b"y"
    assert r.brpoplpush(a, c, 0) == b"x"
    assert r.lrange(c, 0, -1) == [b"x", b"y"]
    for args, msg in [
        (("BLPOP", a, -1), "^timeout is negative"),
        (("BLPOP", a, "abc"), "^timeout is not a float or out of range"),
        (("BRPOP", a, b, "inf"), "^timeout is out of range"),
        (("BLMOVE", a, c, "LEFT", "UP", 0), "^syntax error"),
        (("BLMOVE", a, c, "LEFT", "LEFT", -2), "^timeout is negative"),
        (("BRPOPLPUSH", a, c, "x"), "^timeout is not a float or out of range"),
        (("BLMPOP", -1, 1, a, "LEFT"), "^timeout is negative"),
        (("BLMPOP", 0, 0, a, "LEFT"), "^numkeys should be greater than 0"),
    ]:
        with pytest.raises(redis.ResponseError, match=msg):
            r.execute_command(*args)


def test_blocking_commands_inside_multi_answer_at_once(r):
    t = tag_on(1)
    k = f"q{t}"
    pipe = r.pipeline(transaction=True)
    pipe.rpush(k, "job")
    pipe.blpop([k], timeout=0)
    pipe.blpop([k], timeout=0)
    pipe.brpoplpush(k, f"other{t}", 0)
    pipe.blmpop(0, 1, k, direction="RIGHT")
    got = pipe.execute()
    assert got[0] == 1 and list(got[1]) == [k.encode(), b"job"]
    assert got[2:] == [None, None, None]


def test_watch_sees_list_writes(node):
    r, other = node.client(), node.client()
    r.rpush("w", "a")
    with r.pipeline(transaction=True) as p:
        p.watch("w")
        other.lpop("w")
        p.multi()
        p.rpush("w", "b")
        with pytest.raises(redis.WatchError):
            p.execute()
    # LREM that removes nothing is no write: the transaction runs.
    r.rpush("w", "a")
    with r.pipeline(transaction=True) as p:
        p.watch("w")
        other.lrem("w", 0, "nothing")
        p.multi()
        p.llen("w")
        assert p.execute() == [1]
    r.close()
    other.close()


def test_resp3_replies(node):
    r = node.client(protocol=3)
    t = tag_on(0)
    assert r.lpop("nosuch") is None
    assert r.lpop("nosuch", 2) is None
    assert r.lindex("nosuch", 0) is None
    assert r.lpos("nosuch", "a") is None
    r.rpush(f"r3{t}", "a", "b", "c")
    assert r.lpop(f"r3{t}", 0) == []
    assert r.lrange(f"r3{t}", 0, -1) == [b"a", b"b", b"c"]
    assert r.lpos(f"r3{t}", "b", count=0) == [1]
    assert r.lmpop(1, f"r3{t}", direction="RIGHT") == [f"r3{t}".encode(), [b"c"]]
    assert list(r.blpop([f"r3{t}"], timeout=1)) == [f"r3{t}".encode(), b"a"]
    assert r.lmove(f"r3{t}", f"d3{t}", "LEFT", "LEFT") == b"b"
    assert r.lmpop(1, f"r3{t}", direction="LEFT") is None
    r.close()
    # The exact bytes: RESP3's one null for both null shapes.
    raw = Raw(node.port)
    assert raw.cmd("HELLO", "3").startswith(b"%")
    assert raw.cmd("LPOP", "nosuch", "1") == b"_\r\n"
    assert raw.cmd("RPOPLPUSH", f"nosuch{t}", f"x{t}") == b"_\r\n"
    assert raw.cmd("LPOS", "nosuch", "a", "COUNT", "0") == b"*0\r\n"
    raw.close()
    raw = Raw(node.port)
    assert raw.cmd("LPOP", "nosuch", "1") == b"*-1\r\n"
    assert raw.cmd("LPOP", "nosuch") == b"$-1\r\n"
    assert raw.cmd("RPUSH", "z", "zero") == b":1\r\n"
    assert raw.cmd("LPOP", "z", "0") == b"*0\r\n"
    raw.close()


def test_redis_cli(node):
    assert node.cli("RPUSH", "cli", "a", "b", "c").strip() == "3"
    assert node.cli("LRANGE", "cli", "0", "-1").split() == ["a", "b", "c"]
    assert node.cli("LINDEX", "cli", "-1").strip() == "c"
    assert node.cli("LPOS", "cli", "b").strip() == "1"
    assert node.cli("LPOP", "cli", "2").split() == ["a", "b"]
    assert "WRONGTYPE" in node.cli("GET", "cli")
    assert node.cli("LLEN", "cli").strip() == "1"


def test_large_list_range_and_index(r):
    n = 100_000
    for start in range(0, n, 10_000):
        r.rpush("big", *[f"element:{i}" for i in range(start, start + 10_000)])
    assert r.llen("big") == n
    rng = random.Random(7)
    for _ in range(200):
        i = rng.randrange(n)
        assert r.lindex("big", i) == f"element:{i}".encode()
        assert r.lindex("big", i - n) == f"element:{i}".encode()
    for _ in range(50):
        lo = rng.randrange(n)
        hi = min(n - 1, lo + rng.randrange(300))
        assert r.lrange("big", lo, hi) == [f"element:{i}".encode() for i in range(lo, hi + 1)]
    everything = r.lrange("big", 0, -1)
    assert len(everything) == n and everything[-1] == f"element:{n - 1}".encode()
    # Edits in the middle, then the whole list again.
    assert r.linsert("big", "AFTER", "element:50000", "inserted") == n + 1
    assert r.lset("big", 70_001, "changed") is True
    assert r.lrem("big", 0, "element:10") == 1
    want = [f"element:{i}" for i in range(n)]
    want.insert(50_001, "inserted")
    want[70_001] = "changed"
    want.remove("element:10")
    assert r.lrange("big", 0, -1) == [w.encode() for w in want]
    assert r.lpos("big", "changed") == 70_000
    assert r.ltrim("big", 1000, -1001) is True
    assert r.llen("big") == len(want) - 2000
    assert r.lindex("big", 0) == want[1000].encode()


def test_memory_is_charged_and_given_back(start):
    node = start()
    r = node.client()
    before = r.info("memory")["used_memory"]
    for start_i in range(0, 100_000, 10_000):
        r.rpush("mem", *[f"element:{i}" for i in range(start_i, start_i + 10_000)])
    grown = r.info("memory")["used_memory"] - before
    # About the bytes of the entries (14 to 15 each): a packed encoding, not a node each.
    assert 1_300_000 < grown < 2_000_000, grown
    r.delete("mem")
    assert r.info("memory")["used_memory"] == before
    r.close()


def test_noeviction_refuses_list_growth(start):
    node = start("--maxmemory", "1mb", "--eviction", "noeviction")
    r = node.client()
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        for i in range(1000):
            r.rpush(f"grow{i % 2}", *(["x" * 100] * 100))
    # Pops and trims still work, and free memory for pushes again.
    assert r.lpop("grow0") == b"x" * 100
    assert r.ltrim("grow0", 0, 0) is True
    r.ltrim("grow1", 0, 0)
    assert r.rpush("grow0", "y") == 2
    r.close()

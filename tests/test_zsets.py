"""Sorted sets through redis-py and redis-cli on a 2-shard node: every command, the error
texts Redis 7.0 uses, RESP2 and RESP3 replies, multi-key commands on both shards ({tag}
keys), and a 100k-member set checked by rank and range."""

import random

import pytest
import redis

from conftest import Raw, keys_on, shard_of


def tags():
    """A hash tag on each shard: multi-key commands run on either owner."""
    return [f"{{{keys_on(s, 1, 'zt')[0]}}}" for s in (0, 1)]


def test_zadd_options_and_reads(r):
    assert r.zadd("z", {"a": 1, "b": 2, "c": 3}) == 3
    assert r.zadd("z", {"a": 1, "b": 5}) == 0
    assert r.zadd("z", {"a": 1, "b": 6, "d": 7}, ch=True) == 2
    assert r.zadd("z", {"a": 100, "e": 4}, nx=True) == 1
    assert r.zadd("z", {"a": 10, "nope": 1}, xx=True) == 0
    assert r.zscore("z", "a") == 10.0
    assert r.zadd("z", {"a": 5, "b": 20}, gt=True, ch=True) == 1
    assert r.zadd("z", {"a": 5, "b": 30}, lt=True, ch=True) == 1
    assert r.zmscore("z", ["a", "b", "nope"]) == [5.0, 20.0, None]
    assert r.zadd("z", {"a": 2.5}, incr=True) == 7.5
    assert r.zadd("z", {"a": 1}, nx=True, incr=True) is None
    assert r.zincrby("z", 1, "a") == 8.5
    assert r.zcard("z") == 5 and r.zcard("missing") == 0
    assert r.zrank("z", "c") == 0 and r.zrevrank("z", "c") == 4
    assert r.zrank("z", "x") is None and r.zrank("missing", "x") is None
    assert r.zcount("z", 3, 7) == 3
    assert r.zcount("z", "(3", "+inf") == 4
    assert r.zscore("z", "nope") is None
    assert r.zrem("z", "a", "x") == 1
    r.set("str", "v")
    for cmd in (("ZADD", "str", 1, "a"), ("ZSCORE", "str", "a"), ("ZRANGE", "str", 0, -1),
                ("ZCARD", "str"), ("ZPOPMIN", "str"), ("ZRANDMEMBER", "str")):
        with pytest.raises(redis.ResponseError, match="^WRONGTYPE"):
            r.execute_command(*cmd)
    assert r.type("z") == b"zset"


@pytest.mark.parametrize(
    "cmd,msg",
    [
        (("ZADD", "z", "XX", "NX", 1, "a"), "XX and NX options at the same time are not compatible"),
        (("ZADD", "z", "GT", "LT", 1, "a"), "GT, LT, and/or NX options at the same time are not compatible"),
        (("ZADD", "z", "INCR", 1, "a", 2, "b"), "INCR option supports a single increment-element pair"),
        (("ZADD", "z", 1, "a", 2), "syntax error"),
        (("ZADD", "z", "nan", "a"), "value is not a valid float"),
        (("ZADD", "z", "", "a"), "value is not a valid float"),
        (("ZRANGEBYSCORE", "z", "str", 1), "min or max is not a float"),
        (("ZRANGEBYLEX", "z", "a", "[b"), "min or max not valid string range item"),
        (("ZRANGE", "z", 0, -1, "LIMIT", 1, 2), "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"),
        (("ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"), "syntax error, WITHSCORES not supported in combination with BYLEX"),
        (("ZPOPMIN", "z", -1), "value is out of range, must be positive"),
        (("ZMPOP", 0, "z", "MIN"), "numkeys should be greater than 0"),
        (("ZMPOP", 1, "z", "MIN", "COUNT", 0), "count should be greater than 0"),
        (("ZUNION", 0, "z"), "at least 1 input key is needed for 'zunion' command"),
        (("ZINTERCARD", 1, "z", "LIMIT", -1), "LIMIT can't be negative"),
        (("ZUNION", 2, "{t}a", "{t}b", "WEIGHTS", 1, "x"), "weight value is not a float"),
        (("ZRANDMEMBER", "z", "-9223372036854775808"), "value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
        (("ZSCAN", "z", "x"), "invalid cursor"),
        (("BZPOPMIN", "z", -1), "timeout is negative"),
        (("BZPOPMIN", "z", "x"), "timeout is not a float or out of range"),
        (("ZINCRBY", "z", 1), "wrong number of arguments for 'zincrby' command"),
    ],
)
def test_errors_are_worded_like_redis_7_0(r, cmd, msg):
    r.zadd("z", {"a": 1})
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(*cmd)
    assert str(e.value) == msg


def test_nan_increment_is_refused(r):
    r.zadd("z", {"x": float("inf")})
    with pytest.raises(redis.ResponseError, match=r"^resulting score is not a number \(NaN\)$"):
        r.zincrby("z", float("-inf"), "x")
    assert r.zscore("z", "x") == float("inf")


def test_ranges(r):
    r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    assert r.zrange("z", 0, -1) == [b"a", b"b", b"c", b"d", b"e"]
    assert r.zrange("z", 1, 2, withscores=True) == [(b"b", 2.0), (b"c", 3.0)]
    assert r.zrange("z", 0, 1, desc=True) == [b"e", b"d"]
    assert r.zrevrange("z", 0, 1, withscores=True) == [(b"e", 5.0), (b"d", 4.0)]
    assert r.zrange("z", "(1", 3, byscore=True) == [b"b", b"c"]
    assert r.zrange("z", 5, "(2", byscore=True, desc=True) == [b"e", b"d", b"c"]
    assert r.zrange("z", "-inf", "+inf", byscore=True, offset=1, num=2) == [b"b", b"c"]
    assert r.zrangebyscore("z", 2, 4, start=0, num=1, withscores=True) == [(b"b", 2.0)]
    assert r.zrevrangebyscore("z", "(4", "(2") == [b"c"]
    r.zadd("l", {m: 0 for m in ("alpha", "bar", "cool", "down", "elephant", "foo")})
    assert r.zrangebylex("l", "-", "[cool") == [b"alpha", b"bar", b"cool"]
    assert r.zrangebylex("l", "-", "+", start=1, num=2) == [b"bar", b"cool"]
    assert r.zrevrangebylex("l", "+", "(d") == [b"foo", b"elephant", b"down"]
    assert r.zrange("l", "[b", "[d", bylex=True) == [b"bar", b"cool"]
    assert r.zlexcount("l", "[b", "(d") == 2
    assert r.zrange("missing", 0, -1) == []
    # Scores print as Redis 7.0 prints them (%.17g).
    r.zadd("f", {"x": 0.1, "y": 1e17, "z": -0.0})
    raw = Raw(r.connection_pool.connection_kwargs["port"])
    assert raw.cmd("ZSCORE", "f", "x") == b"$19\r\n0.10000000000000001\r\n"
    assert raw.cmd("ZSCORE", "f", "y") == b"$5\r\n1e+17\r\n"
    assert raw.cmd("ZSCORE", "f", "z") == b"$1\r\n0\r\n"  # -0 is kept as 0, as a listpack keeps it
    raw.close()


def test_remrange_and_pops(r):
    r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    assert r.zremrangebyrank("z", 1, 2) == 2
    assert r.zremrangebyscore("z", "(1", 4) == 1
    assert r.zrange("z", 0, -1) == [b"a", b"e"]
    r.zadd("l", {"a": 0, "b": 0, "c": 0, "d": 0})
    assert r.zremrangebylex("l", "[b", "(d") == 2
    assert r.zpopmin("z") == [(b"a", 1.0)]
    assert r.zpopmax("z", 5) == [(b"e", 5.0)]
    assert r.exists("z") == 0
    assert r.zpopmin("z") == []
    r.zadd("z", {"a": 1, "b": 2, "c": 3})
    assert r.zmpop(2, ["missing", "z"], min=True, count=2) == [b"z", [[b"a", b"1"], [b"b", b"2"]]]
    assert r.zmpop(1, ["missing"], max=True) is None


def test_multi_key_commands_on_each_shard(r):
    for t in tags():
        a, b, d = f"{t}a", f"{t}b", f"{t}d"
        r.zadd(a, {"x": 1, "y": 2, "z": 3})
        r.zadd(b, {"y": 10, "z": 20, "w": 30})
        assert r.zunion([a, b], withscores=True) == [(b"x", 1.0), (b"y", 12.0), (b"z", 23.0), (b"w", 30.0)]
        assert r.zinter([a, b], aggregate="MIN", withscores=True) == [(b"y", 2.0), (b"z", 3.0)]
        assert r.zdiff([a, b], withscores=True) == [b"x", b"1"]  # redis-py leaves ZDIFF flat
        assert r.zintercard(2, [a, b]) == 2
        assert r.zintercard(2, [a, b], limit=1) == 1
        assert r.zunionstore(d, {a: 2, b: 1}, aggregate="MAX") == 4
        assert r.zrange(d, 0, -1, withscores=True) == [(b"x", 2.0), (b"y", 10.0), (b"z", 20.0), (b"w", 30.0)]
        assert r.zinterstore(d, [a, b]) == 2
        assert r.zdiffstore(d, [b, a]) == 1
        assert r.zrange(d, 0, -1) == [b"w"]
        assert r.zdiffstore(d, [a, a]) == 0
        assert r.exists(d) == 0
        assert r.zrangestore(d, b, 15, 100, byscore=True) == 2
        assert r.zrange(d, 0, -1, withscores=True) == [(b"z", 20.0), (b"w", 30.0)]
        assert r.zrangestore(d, f"{t}missing", 0, -1) == 0
        assert r.exists(d) == 0
        assert r.zmpop(2, [f"{t}missing", b], max=True) == [b.encode(), [[b"w", b"30"]]]
        assert r.bzpopmin([f"{t}missing", a], 1) == (a.encode(), b"x", 1.0)
        assert r.bzpopmax([a], 0) == (a.encode(), b"z", 3.0)
        assert r.bzmpop(1, 2, [f"{t}missing", a], min=True, count=5) == [a.encode(), [[b"y", b"2"]]]
        assert r.exists(a) == 0
    # Keys of two shards in one command are gathered to one shard and written back.
    k0, k1 = keys_on(0, 1, "za")[0], keys_on(1, 1, "zb")[0]
    r.zadd(k0, {"x": 1, "y": 2})
    r.zadd(k1, {"y": 10})
    assert r.zunion([k0, k1], withscores=True) == [(b"x", 1.0), (b"y", 12.0)]
    assert r.zunionstore(k1, [k0, k1]) == 2
    assert r.zrange(k1, 0, -1, withscores=True) == [(b"x", 1.0), (b"y", 12.0)]


def test_blocking_pops_validate_and_answer_with_data(r):
    t = tags()[0]
    with pytest.raises(redis.ResponseError, match="^timeout is negative$"):
        r.bzpopmin([f"{t}q"], -1)
    with pytest.raises(redis.ResponseError, match="^numkeys should be greater than 0$"):
        r.execute_command("BZMPOP", 0, 0, f"{t}q", "MIN")
    r.set(f"{t}s", "v")
    with pytest.raises(redis.ResponseError, match="^WRONGTYPE"):
        r.bzpopmin([f"{t}s"], 0)
    r.zadd(f"{t}q", {"m": 1})
    assert r.bzpopmin([f"{t}s2", f"{t}q"], 0) == (f"{t}q".encode(), b"m", 1.0)


def test_blocking_pops_inside_multi_answer_at_once(r):
    t = tags()[1]
    p = r.pipeline(transaction=True)
    p.bzpopmin([f"{t}empty"], 0)
    p.zadd(f"{t}q", {"m": 1})
    p.bzpopmax([f"{t}q"], 0)
    assert p.execute() == [None, 1, (f"{t}q".encode(), b"m", 1.0)]


def test_watch_sees_zset_writes(node):
    c, other = node.client(), node.client()
    c.zadd("wz", {"a": 1})
    with c.pipeline() as p:
        p.watch("wz")
        other.zincrby("wz", 1, "a")
        p.multi()
        p.zscore("wz", "a")
        with pytest.raises(redis.WatchError):
            p.execute()
    # A write that changes nothing does not break the watch.
    with c.pipeline() as p:
        p.watch("wz")
        other.zadd("wz", {"a": 2})
        other.zrem("wz", "nope")
        p.multi()
        p.zscore("wz", "a")
        assert p.execute() == [2.0]
    c.close()
    other.close()


def test_zrandmember_and_zscan(r):
    r.zadd("z", {"a": 1, "b": 2, "c": 3})
    assert r.zrandmember("z") in (b"a", b"b", b"c")
    assert r.zrandmember("missing") is None
    assert sorted(r.zrandmember("z", 2)) != [] and len(set(r.zrandmember("z", 2))) == 2
    assert len(r.zrandmember("z", -10)) == 10
    # Asked for more than there is: the whole set, from the top (as Redis walks it).
    assert r.zrandmember("z", 5, withscores=True) == [b"c", b"3", b"b", b"2", b"a", b"1"]
    assert r.zscan("z") == (0, [(b"a", 1.0), (b"b", 2.0), (b"c", 3.0)])
    assert r.zscan("z", match="b*") == (0, [(b"b", 2.0)])
    assert r.zscan("missing") == (0, [])


def test_resp3(node):
    c = node.client(protocol=3)
    c.zadd("z", {"a": 1, "b": 2.5})
    assert c.zscore("z", "b") == 2.5
    assert c.zincrby("z", 1, "a") == 2.0
    assert c.zmscore("z", ["a", "nope"]) == [2.0, None]
    raw = Raw(node.port)
    assert raw.cmd("HELLO", "3").startswith(b"%")
    # Pairs nest in RESP3; scores are doubles.
    assert raw.cmd("ZRANGE", "z", 0, -1, "WITHSCORES") == b"*2\r\n*2\r\n$1\r\na\r\n,2\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
    assert raw.cmd("ZRANGEBYSCORE", "z", 0, 2, "WITHSCORES") == b"*1\r\n*2\r\n$1\r\na\r\n,2\r\n"
    assert raw.cmd("ZUNION", 1, "z", "WITHSCORES") == b"*2\r\n*2\r\n$1\r\na\r\n,2\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
    assert raw.cmd("ZRANDMEMBER", "z", 1, "WITHSCORES") in (b"*1\r\n*2\r\n$1\r\na\r\n,2\r\n", b"*1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n")
    assert raw.cmd("ZSCORE", "z", "nope") == b"_\r\n"
    assert raw.cmd("ZPOPMIN", "z") == b"*2\r\n$1\r\na\r\n,2\r\n"
    raw.cmd("ZADD", "z", 1, "a")
    assert raw.cmd("ZPOPMIN", "z", 1) == b"*1\r\n*2\r\n$1\r\na\r\n,1\r\n"
    assert raw.cmd("ZMPOP", 1, "z", "MAX") == b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
    assert raw.cmd("ZMPOP", 1, "z", "MAX") == b"_\r\n"
    assert raw.cmd("BZPOPMIN", "z", "0.01") == b"_\r\n"  # nothing came within the timeout
    raw.close()
    c.close()


def test_redis_cli(node):
    assert node.cli("ZADD", "cz", "1", "a", "2.5", "b").strip() == "2"
    assert node.cli("ZRANGE", "cz", "0", "-1", "WITHSCORES").split() == ["a", "1", "b", "2.5"]
    assert node.cli("--no-raw", "ZSCORE", "cz", "b").strip() == '"2.5"'
    # RESP3: redis-cli prints doubles as (double).
    assert node.cli("--no-raw", "-3", "ZSCORE", "cz", "b").strip() == "(double) 2.5"
    out = node.cli("--no-raw", "-3", "ZRANGE", "cz", "0", "-1", "WITHSCORES").splitlines()
    assert out[0].strip() == '1) 1) "a"' and out[1].strip() == "2) (double) 1"
    assert node.cli("ZCARD", "cz").strip() == "2"
    assert node.cli(input=b"ZADD piped 1 x\nZINCRBY piped 2 x\nZSCORE piped x\n").split() == ["1", "3", "3"]


def test_large_zset_rank_and_range(r, node):
    n = 100_000
    rnd = random.Random(7)
    scores = {f"member:{i:06}": rnd.randrange(1_000_000) for i in range(n)}
    p = r.pipeline(transaction=False)
    items = list(scores.items())
    for i in range(0, n, 1000):
        p.zadd("big", dict(items[i : i + 1000]))
    assert sum(p.execute()) == n
    assert r.zcard("big") == n
    order = sorted(scores.items(), key=lambda kv: (kv[1], kv[0].encode()))
    ranks = {m: i for i, (m, _) in enumerate(order)}
    for m in rnd.sample(list(scores), 200):
        assert r.zrank("big", m) == ranks[m]
        assert r.zrevrank("big", m) == n - 1 - ranks[m]
        assert r.zscore("big", m) == scores[m]
    for start in (0, 1, 4999, 50_000, n - 10):
        got = r.zrange("big", start, start + 9, withscores=True)
        assert got == [(m.encode(), float(s)) for m, s in order[start : start + 10]]
    lo, hi = 250_000, 260_000
    want = [m.encode() for m, s in order if lo <= s <= hi]
    assert r.zcount("big", lo, hi) == len(want)
    assert r.zrangebyscore("big", lo, hi) == want
    assert r.zrevrangebyscore("big", hi, lo, start=5, num=7) == want[::-1][5:12]
    # ZSCAN visits every member once.
    seen = {}
    for m, s in r.zscan_iter("big", count=500):
        assert m not in seen
        seen[m] = s
    assert len(seen) == n
    # Updates and removals keep ranks right.
    for m in rnd.sample(list(scores), 1000):
        r.zincrby("big", 1_000_000, m)
        scores[m] += 1_000_000
    assert r.zremrangebyrank("big", 0, 9_999) == 10_000
    order = sorted(scores.items(), key=lambda kv: (kv[1], kv[0].encode()))[10_000:]
    assert r.zrange("big", -5, -1) == [m.encode() for m, _ in order[-5:]]
    assert r.zrange("big", 0, 4) == [m.encode() for m, _ in order[:5]]
    assert r.zcard("big") == n - 10_000
    # Memory is charged as the set grows and given back when it goes.
    used = r.info("memory")["used_memory"]
    r.delete("big")
    assert r.info("memory")["used_memory"] < used - 2_000_000

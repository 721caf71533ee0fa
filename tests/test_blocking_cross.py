"""Blocking commands over keys of several shards (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
BZPOPMIN, BZMPOP) through redis-py, redis-cli and raw RESP on a 2-shard node: the client's
shard tries the whole command atomically over the owners and waits for a write on any of
them. Woken by a push to either shard, moves across shards, timeouts, a client that
disconnects (it takes nothing, and its waiters on every shard go), first come first
served, shutdown, and many pushers racing many poppers with every element delivered
exactly once."""

import random
import threading
import time

import pytest

from conftest import Raw, encode, keys_on


def blocked(node) -> int:
    return node.metric("pinion_blocked_clients")


def park(node, *args):
    """Send a blocking command on a raw connection without waiting for its reply."""
    raw = Raw(node.port, timeout=30)
    raw.send(encode(*args))
    return raw


def two(prefix):
    """A key on shard 0 and a key on shard 1."""
    return keys_on(0, 1, prefix + "a")[0], keys_on(1, 1, prefix + "b")[0]


@pytest.mark.parametrize("pushed", [0, 1])
def test_blpop_over_both_shards_is_served_by_a_push_to_either(node, r, pushed):
    keys = two("q")
    waiter = park(node, "BLPOP", *keys, 0)
    node.wait_metric("pinion_blocked_clients", 1)
    assert r.rpush(keys[pushed], "job1", "job2") == 2
    assert waiter.read_reply() == encode(keys[pushed], "job1")
    assert r.lrange(keys[pushed], 0, -1) == [b"job2"]
    assert r.exists(keys[1 - pushed]) == 0
    node.wait_metric("pinion_blocked_clients", 0)


def test_data_already_there_answers_at_once_from_the_first_key_with_data(node, r):
    a, b = two("ready")
    r.rpush(b, "from-b")
    assert r.blpop([a, b], timeout=0) == (b.encode(), b"from-b")
    r.rpush(a, "from-a")
    r.rpush(b, "from-b")
    # Like Redis: the first key (in argument order) that has data.
    assert r.brpop([b, a], timeout=0) == (b.encode(), b"from-b")
    assert r.brpop([b, a], timeout=0) == (a.encode(), b"from-a")
    assert blocked(node) == 0


def test_redis_cli_blocks_across_shards(node, r):
    a, b = two("cli")
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("v", node.cli("BRPOP", a, b, "5")))
    t.start()
    node.wait_metric("pinion_blocked_clients", 1)
    r.lpush(b, "hello")
    t.join(10)
    assert out["v"].split() == [b, "hello"]
    assert node.cli("BLPOP", a, b, "0.1").strip() == ""


@pytest.mark.parametrize("src_shard", [0, 1])
def test_blmove_moves_across_shards_when_the_source_gets_data(node, r, src_shard):
    src = keys_on(src_shard, 1, "pending")[0]
    dst = keys_on(1 - src_shard, 1, "working")[0]
    waiter = park(node, "BLMOVE", src, dst, "RIGHT", "LEFT", 0)
    node.wait_metric("pinion_blocked_clients", 1)
    r.rpush(dst, "old")  # a push to the destination wakes nobody
    assert blocked(node) == 1
    r.lpush(src, "task")
    assert waiter.read_reply() == b"$4\r\ntask\r\n"
    assert r.lrange(dst, 0, -1) == [b"task", b"old"]
    assert r.exists(src) == 0
    # BRPOPLPUSH, with data there already.
    r.rpush(src, "t2")
    assert r.brpoplpush(src, dst, timeout=0) == b"t2"
    assert r.lrange(dst, 0, -1) == [b"t2", b"task", b"old"]
    node.wait_metric("pinion_blocked_clients", 0)


def test_blmpop_across_shards_takes_count_from_the_first_key(node, r):
    a, b = two("mp")
    raw = park(node, "BLMPOP", 0, 2, a, b, "RIGHT", "COUNT", 2)
    node.wait_metric("pinion_blocked_clients", 1)
    r.rpush(b, "1", "2", "3")
    assert raw.read_reply() == b"*2\r\n" + encode(b)[4:] + b"*2\r\n$1\r\n3\r\n$1\r\n2\r\n"
    assert r.lrange(b, 0, -1) == [b"1"]


@pytest.mark.parametrize("pushed", [0, 1])
def test_bzpopmin_over_shards_serves_the_lowest_score(node, r, pushed):
    keys = two("z")
    waiter = park(node, "BZPOPMIN", *keys, 0)
    node.wait_metric("pinion_blocked_clients", 1)
    r.zadd(keys[pushed], {"b": 2, "a": 1})
    assert waiter.read_reply() == encode(keys[pushed], "a", "1")
    assert r.zrange(keys[pushed], 0, -1) == [b"b"]
    # BZPOPMAX and BZMPOP over the same keys, data already there.
    assert r.bzpopmax(list(keys), timeout=0) == (keys[pushed].encode(), b"b", 2.0)
    r.zadd(keys[1 - pushed], {"m": 5})
    raw = Raw(node.port)
    assert raw.cmd("BZMPOP", 0, 2, *keys, "MIN") == (
        b"*2\r\n" + encode(keys[1 - pushed])[4:] + b"*1\r\n*2\r\n$1\r\nm\r\n$1\r\n5\r\n"
    )


def test_a_list_waiter_is_not_woken_by_a_zset(node, r):
    a, b = two("typed")
    waiter = park(node, "BLPOP", a, b, 0)
    node.wait_metric("pinion_blocked_clients", 1)
    r.zadd(b, {"m": 1})
    r.set(a, "a string")
    assert blocked(node) == 1
    r.delete(a)
    r.rpush(a, "v")
    assert waiter.read_reply() == encode(a, "v")


def test_wrong_type_found_by_an_attempt_is_an_error(node, r):
    a, b = two("wt")
    r.set(a, "x")
    raw = Raw(node.port)
    assert raw.cmd("BLPOP", a, b, 0).startswith(b"-WRONGTYPE")
    assert raw.cmd("BLPOP", a, b, -1) == b"-ERR timeout is negative\r\n"
    assert blocked(node) == 0


def test_timeout_answers_null_on_time(node, r):
    a, b = two("t")
    t0 = time.monotonic()
    assert r.blpop([a, b], timeout=0.3) is None
    elapsed = time.monotonic() - t0
    assert 0.25 <= elapsed < 2, elapsed
    raw = Raw(node.port)
    t0 = time.monotonic()
    assert raw.cmd("BLMOVE", a, b, "LEFT", "RIGHT", "0.2") == b"$-1\r\n"
    assert raw.cmd("BZPOPMIN", a, b, "0.2") == b"*-1\r\n"
    assert 0.35 <= time.monotonic() - t0 < 3
    node.wait_metric("pinion_blocked_clients", 0)
    # Nothing of theirs is left waiting: a later push stays where it is.
    r.rpush(a, "kept")
    r.rpush(b, "kept")
    assert r.lrange(a, 0, -1) == [b"kept"] and r.lrange(b, 0, -1) == [b"kept"]


def test_a_disconnected_waiter_is_dropped_everywhere_and_takes_nothing(node, r):
    a, b = two("gone")
    waiters = [park(node, "BLPOP", a, b, 0), park(node, "BLMOVE", a, b, "LEFT", "LEFT", 0)]
    node.wait_metric("pinion_blocked_clients", 2)
    for w in waiters:
        w.close()
    node.wait_metric("pinion_blocked_clients", 0)
    r.rpush(a, "kept-a")
    r.rpush(b, "kept-b")
    # A live waiter parked after them is served; the gone ones took nothing.
    live = park(node, "BRPOP", b, a, 0)
    assert live.read_reply() == encode(b, "kept-b")
    assert r.lrange(a, 0, -1) == [b"kept-a"]
    assert r.exists(b) == 0


@pytest.mark.parametrize("pushed", [0, 1])
def test_two_waiters_are_served_first_come_first_served(node, r, pushed):
    keys = two("fifo")
    first = park(node, "BLPOP", *keys, 0)
    node.wait_metric("pinion_blocked_clients", 1)
    second = park(node, "BLPOP", *keys, 0)
    node.wait_metric("pinion_blocked_clients", 2)
    r.rpush(keys[pushed], "x", "y")
    assert first.read_reply() == encode(keys[pushed], "x")
    assert second.read_reply() == encode(keys[pushed], "y")
    node.wait_metric("pinion_blocked_clients", 0)


def test_a_local_waiter_behind_a_cross_shard_one_waits_its_turn(node, r):
    a, b = two("line")
    first = park(node, "BLPOP", a, b, 0)  # keys on both shards
    node.wait_metric("pinion_blocked_clients", 1)
    second = park(node, "BLPOP", a, 0)  # a's shard only
    node.wait_metric("pinion_blocked_clients", 2)
    r.rpush(a, "1")
    assert first.read_reply() == encode(a, "1")
    r.rpush(a, "2")
    assert second.read_reply() == encode(a, "2")


def test_blocking_inside_multi_never_blocks(node, r):
    a, b = two("multi")
    raw = Raw(node.port)
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("BLPOP", a, b, 0) == b"+QUEUED\r\n"
    assert raw.cmd("BLPOP", a, 0) == b"+QUEUED\r\n"
    t0 = time.monotonic()
    reply = raw.cmd("EXEC")
    assert time.monotonic() - t0 < 2
    # Over keys of one shard or of several (the transaction then runs gathered): the
    # timeout's null at once, as in Redis.
    assert reply == b"*2\r\n*-1\r\n*-1\r\n", reply
    assert blocked(node) == 0
    # With data on the second shard, the gathered transaction pops it.
    r.rpush(b, "x")
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("BLPOP", a, b, 0) == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == b"*1\r\n" + encode(b, "x")
    assert r.llen(b) == 0


def test_shutdown_answers_clients_parked_across_shards(start):
    n = start()
    a, b = two("down")
    waiter = park(n, "BLPOP", a, b, 0)
    n.wait_metric("pinion_blocked_clients", 1)
    t0 = time.monotonic()
    assert n.stop() == 0
    assert time.monotonic() - t0 < 5
    assert waiter.read_reply() == b"*-1\r\n" or waiter.closed_by_peer()


def test_pushers_and_poppers_over_several_shards_deliver_every_element_once(node, r):
    """Poppers blocked over keys of both shards (and one on a single key), pushers on
    other connections: every element pushed is popped by exactly one client, none lost."""
    keys = keys_on(0, 2, "race") + keys_on(1, 2, "race")
    n_items, n_pushers = 600, 3
    got, lock = [], threading.Lock()
    errors = []

    def pop(which):
        c = node.client()
        try:
            while True:
                item = c.blpop(which, timeout=3)
                if item is None:
                    return
                with lock:
                    got.append(item[1])
        except Exception as e:  # surfaced below
            errors.append(e)

    def push(start):
        c = node.client()
        rnd = random.Random(start)
        for i in range(start, n_items, n_pushers):
            c.rpush(rnd.choice(keys), f"item{i}")

    poppers = [threading.Thread(target=pop, args=(keys[i:] + keys[:i],)) for i in range(4)]
    poppers.append(threading.Thread(target=pop, args=([keys[0]],)))
    for t in poppers:
        t.start()
    node.wait_metric("pinion_blocked_clients", len(poppers))
    pushers = [threading.Thread(target=push, args=(s,)) for s in range(n_pushers)]
    for t in pushers:
        t.start()
    for t in pushers + poppers:
        t.join(60)
    assert not errors, errors
    assert len(got) == n_items, f"{n_items - len(got)} lost or {len(got) - n_items} twice"
    assert sorted(got) == sorted(f"item{i}".encode() for i in range(n_items))
    assert sum(r.llen(k) for k in keys) == 0
    node.wait_metric("pinion_blocked_clients", 0)

"""Blocking pops (BLPOP, BRPOP, BLMOVE, BZPOPMIN) through redis-py and raw RESP on a 2-shard
node: served by a later push from any connection on either shard, first come first served,
timeouts, a blocked client that disconnects, MULTI that pushes and deletes, keys that turn
into another type, and shutdown with clients still parked. Keys of several shards:
test_blocking_cross.py."""

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


@pytest.mark.parametrize("shard", [0, 1])
def test_push_serves_a_client_parked_on_either_shard(node, r, shard):
    key = keys_on(shard, 1, "q")[0]
    before = blocked(node)
    waiter = park(node, "BLPOP", key, 0)
    node.wait_metric("pinion_blocked_clients", before + 1)
    assert r.rpush(key, "job1", "job2") == 2
    assert waiter.read_reply() == encode(key, "job1")
    # The waiter took one element; the other stays.
    assert r.lrange(key, 0, -1) == [b"job2"]
    node.wait_metric("pinion_blocked_clients", before)


def test_waiters_are_served_first_come_first_served(node, r):
    key = keys_on(1, 1, "fifo")[0]
    waiters = []
    for i in range(3):
        waiters.append(park(node, "BRPOP", key, 0))
        node.wait_metric("pinion_blocked_clients", i + 1)
    r.lpush(key, "c", "b", "a")  # list is a b c; BRPOP takes from the right
    got = [w.read_reply() for w in waiters]
    assert got == [encode(key, v) for v in ("c", "b", "a")]
    assert r.exists(key) == 0


def test_timeout_answers_null_after_the_wait(node, r):
    key = keys_on(0, 1, "t")[0]
    t0 = time.monotonic()
    assert r.blpop([key], timeout=0.3) is None
    elapsed = time.monotonic() - t0
    assert 0.25 <= elapsed < 3, elapsed
    raw = Raw(node.port)
    assert raw.cmd("BLPOP", key, "0.05") == b"*-1\r\n"
    assert raw.cmd("BLMOVE", key, key, "LEFT", "RIGHT", "0.05") == b"$-1\r\n"
    assert raw.cmd("BLPOP", key, "-1") == b"-ERR timeout is negative\r\n"
    assert raw.cmd("BLPOP", key, "abc") == b"-ERR timeout is not a float or out of range\r\n"
    assert blocked(node) == 0


def test_data_already_there_answers_at_once(r):
    key = keys_on(1, 1, "ready")[0]
    r.rpush(key, "x")
    assert r.blpop([key], timeout=0) == (key.encode(), b"x")


def test_a_disconnected_waiter_is_dropped_and_takes_nothing(node, r):
    key = keys_on(1, 1, "gone")[0]
    waiter = park(node, "BLPOP", key, 0)
    node.wait_metric("pinion_blocked_clients", 1)
    waiter.close()
    node.wait_metric("pinion_blocked_clients", 0)
    r.rpush(key, "kept")
    assert r.lrange(key, 0, -1) == [b"kept"]


def test_blmove_moves_when_the_source_gets_data(node, r):
    src, dst = "{jobs}:pending", "{jobs}:working"
    waiter = park(node, "BLMOVE", src, dst, "RIGHT", "LEFT", 0)
    node.wait_metric("pinion_blocked_clients", 1)
    r.lpush(src, "task")
    assert waiter.read_reply() == b"$4\r\ntask\r\n"
    assert r.lrange(dst, 0, -1) == [b"task"]
    assert r.exists(src) == 0


def test_multi_that_pushes_and_deletes_wakes_nobody(node, r):
    key = keys_on(0, 1, "m")[0]
    waiter = park(node, "BLPOP", key, 0)
    node.wait_metric("pinion_blocked_clients", 1)
    pipe = r.pipeline(transaction=True)
    pipe.lpush(key, "x").delete(key)
    assert pipe.execute() == [1, 1]
    # Still parked: a later push serves it.
    assert blocked(node) == 1
    r.lpush(key, "y")
    assert waiter.read_reply() == encode(key, "y")


def test_a_key_turned_into_a_string_wakes_nobody(node, r):
    key = keys_on(1, 1, "typed")[0]
    waiter = park(node, "BLPOP", key, 0)
    node.wait_metric("pinion_blocked_clients", 1)
    r.set(key, "not a list")
    assert blocked(node) == 1
    r.delete(key)
    r.rpush(key, "v")
    assert waiter.read_reply() == encode(key, "v")


def test_bzpopmin_serves_the_lowest_score(node, r):
    key = keys_on(0, 1, "z")[0]
    waiter = park(node, "BZPOPMIN", key, 0)
    node.wait_metric("pinion_blocked_clients", 1)
    r.zadd(key, {"b": 2, "a": 1})
    assert waiter.read_reply() == encode(key, "a", "1")
    assert r.zrange(key, 0, -1) == [b"b"]


def test_many_waiters_and_pushers_lose_nothing(node):
    """Consumers blocked on one queue and producers pushing from other connections: every
    element is delivered exactly once."""
    key = "{work}:queue"
    n_items, n_consumers = 400, 4
    got, lock = [], threading.Lock()

    def consume():
        c = node.client()
        while True:
            item = c.blpop([key], timeout=3)
            if item is None:
                return
            with lock:
                got.append(item[1])

    def produce(start):
        c = node.client()
        for i in range(start, n_items, 2):
            c.rpush(key, f"item{i}")

    consumers = [threading.Thread(target=consume) for _ in range(n_consumers)]
    for t in consumers:
        t.start()
    producers = [threading.Thread(target=produce, args=(s,)) for s in (0, 1)]
    for t in producers:
        t.start()
    for t in producers + consumers:
        t.join(30)
    assert sorted(got) == sorted(f"item{i}".encode() for i in range(n_items))


def test_shutdown_answers_parked_clients(start):
    n = start()
    waiter = park(n, "BLPOP", "never", 0)
    n.wait_metric("pinion_blocked_clients", 1)
    t0 = time.monotonic()
    assert n.stop() == 0
    assert time.monotonic() - t0 < 5
    assert waiter.read_reply() == b"*-1\r\n" or waiter.closed_by_peer()

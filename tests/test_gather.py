"""Commands whose keys must run together, over keys of different shards (no hash tag), on a
2-shard node: the values travel to the connection's shard and back inside one transaction
(redis/gather.rs). Checked against the same commands on one shard, for atomicity under
concurrent writers, and for TTLs carried along."""

import threading

from conftest import keys_on


def two(prefix):
    return keys_on(0, 1, prefix + "a")[0], keys_on(1, 1, prefix + "b")[0]


def test_rename_and_copy_across_shards_keep_value_and_ttl(r):
    a, b = two("ren")
    r.set(a, "v", px=60_000)
    assert r.rename(a, b)
    assert r.get(b) == b"v" and r.exists(a) == 0
    assert 0 < r.pttl(b) <= 60_000
    r.hset(a, mapping={"f": "1", "g": "2"})
    assert r.copy(a, b, replace=True)
    assert r.hgetall(b) == {b"f": b"1", b"g": b"2"}
    assert r.pttl(b) == -1
    assert r.renamenx(a, b) is False


def test_set_algebra_and_moves_across_shards(r):
    a, b = two("set")
    r.sadd(a, "1", "2", "3")
    r.sadd(b, "2", "3", "4")
    assert r.sinter(a, b) == {b"2", b"3"}
    assert r.sinterstore(a, a, b) == 2
    assert r.smembers(a) == {b"2", b"3"}
    assert r.smove(a, b, "2") and not r.smove(a, b, "nope")
    assert r.smembers(a) == {b"3"}
    la, lb = two("list")
    r.rpush(la, "x", "y")
    assert r.lmove(la, lb, "LEFT", "RIGHT") == b"x"
    assert r.lrange(la, 0, -1) == [b"y"] and r.lrange(lb, 0, -1) == [b"x"]
    assert r.rpoplpush(la, lb) == b"y"
    assert r.exists(la) == 0 and r.lrange(lb, 0, -1) == [b"y", b"x"]


def test_wrongtype_and_reads_change_nothing(r):
    a, b = two("wt")
    r.set(a, "str")
    r.rpush(b, "x")
    try:
        r.lmove(a, b, "LEFT", "RIGHT")
        raise AssertionError("LMOVE from a string must fail")
    except Exception as e:  # noqa: BLE001
        assert "WRONGTYPE" in str(e)
    assert r.get(a) == b"str" and r.lrange(b, 0, -1) == [b"x"]


def test_concurrent_cross_shard_moves_keep_every_element(node):
    """Two clients move elements back and forth between lists on different shards while
    a third reads both: no element is lost or duplicated, and no read sees one in both or
    in neither."""
    a, b = two("bank")
    c = node.client()
    c.rpush(a, *[f"e{i}" for i in range(50)])
    stop = threading.Event()
    torn = []

    def mover(src, dst):
        m = node.client()
        while not stop.is_set():
            m.lmove(src, dst, "LEFT", "RIGHT")

    def reader():
        rd = node.client()
        for _ in range(300):
            p = rd.pipeline(transaction=True)
            p.llen(a).llen(b)
            la, lb = p.execute()
            if la + lb != 50:
                torn.append((la, lb))
        stop.set()

    ts = [threading.Thread(target=mover, args=(a, b)), threading.Thread(target=mover, args=(b, a)), threading.Thread(target=reader)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not torn, torn[:5]
    items = c.lrange(a, 0, -1) + c.lrange(b, 0, -1)
    assert sorted(items) == sorted(f"e{i}".encode() for i in range(50))

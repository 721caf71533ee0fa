"""Transactions across shards through redis-py on a 2-shard node: MULTI/EXEC atomicity and
isolation under a bank workload, WATCH (writes, expiry, eviction, any shard), MSETNX racing,
EXECABORT, DISCARD, nesting errors, large transactions, RESP3 replies, and a transaction
over every shard while one shard has a client that does not read its replies."""

import random
import threading
import time

import pytest
import redis

from conftest import Raw, encode, keys_on, shard_of


def test_exec_runs_queued_commands_in_order_across_shards(r):
    a, b = keys_on(0, 1, "a")[0], keys_on(1, 1, "b")[0]
    pipe = r.pipeline(transaction=True)
    pipe.set(a, 1).incr(a).set(b, "x").append(b, "y").mget(a, b).ping().delete(a, b).exists(a, b)
    assert pipe.execute() == [True, 2, True, 2, [b"2", b"xy"], True, 2, 0]


def test_execabort_discard_and_nesting_behave_like_redis(node):
    raw = Raw(node.port)
    a, b = keys_on(0, 1, "a")[0], keys_on(1, 1, "b")[0]
    # A command that cannot be queued dooms the transaction; nothing of it runs.
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("SET", a, 1) == b"+QUEUED\r\n"
    assert raw.cmd("NOSUCHCOMMAND", "x").startswith(b"-ERR unknown command 'NOSUCHCOMMAND'")
    assert raw.cmd("SET", b, 2) == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    assert raw.cmd("EXISTS", a, b) == b":0\r\n"
    # So does a wrong number of arguments.
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("GET") == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert raw.cmd("EXEC").startswith(b"-EXECABORT")
    # A runtime error is one element of the reply; the rest ran.
    assert raw.cmd("SET", a, "notanumber") == b"+OK\r\n"
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("INCR", a) == b"+QUEUED\r\n"
    assert raw.cmd("SET", b, "ran") == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == (
        b"*2\r\n-ERR value is not an integer or out of range\r\n+OK\r\n"
    )
    assert raw.cmd("GET", b) == b"$3\r\nran\r\n"
    # DISCARD drops the queue; outside MULTI it and EXEC are errors.
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("DEL", a, b) == b"+QUEUED\r\n"
    assert raw.cmd("DISCARD") == b"+OK\r\n"
    assert raw.cmd("EXISTS", a, b) == b":2\r\n"
    assert raw.cmd("DISCARD") == b"-ERR DISCARD without MULTI\r\n"
    assert raw.cmd("EXEC") == b"-ERR EXEC without MULTI\r\n"
    # A nested MULTI and a WATCH inside MULTI are errors that leave the transaction valid.
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("MULTI") == b"-ERR MULTI calls can not be nested\r\n"
    assert raw.cmd("WATCH", a) == b"-ERR WATCH inside MULTI is not allowed\r\n"
    assert raw.cmd("PING") == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == b"*1\r\n+PONG\r\n"
    # An empty transaction answers an empty array.
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("EXEC") == b"*0\r\n"
    raw.close()


def test_watch_fails_exec_when_a_key_on_either_shard_changes(node):
    r, other = node.client(), node.client()
    for shard in (0, 1):
        k = keys_on(shard, 1, f"w{shard}")[0]
        r.set(k, 1)
        # Untouched: EXEC runs.
        pipe = r.pipeline()
        pipe.watch(k)
        pipe.multi()
        pipe.incr(k)
        assert pipe.execute() == [2]
        # Changed by another client after WATCH: EXEC answers null, nothing runs.
        pipe = r.pipeline()
        pipe.watch(k)
        other.set(k, 100)
        pipe.multi()
        pipe.incr(k)
        with pytest.raises(redis.WatchError):
            pipe.execute()
        assert other.get(k) == b"100"
        # The watch ended with EXEC.
        pipe = r.pipeline()
        pipe.multi()
        pipe.incr(k)
        assert pipe.execute() == [101]
    # UNWATCH forgets; a watch on a key that does not exist sees it created.
    k = keys_on(1, 1, "fresh")[0]
    raw = Raw(node.port)
    assert raw.cmd("WATCH", k) == b"+OK\r\n"
    other.set(k, 1)
    assert raw.cmd("UNWATCH") == b"+OK\r\n"
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("GET", k) == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == b"*1\r\n$1\r\n1\r\n"
    other.delete(k)
    assert raw.cmd("WATCH", k) == b"+OK\r\n"
    other.set(k, 2)
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("GET", k) == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == b"*-1\r\n"
    raw.close()
    r.close()
    other.close()


def test_watch_sees_expiry_and_eviction(start):
    node = start("--maxmemory", "2mb", "--eviction", "lru")
    r, other = node.client(), node.client()
    # A key live when watched and expired by EXEC counts as changed.
    k = keys_on(0, 1, "ttl")[0]
    r.set(k, "v", px=150)
    pipe = r.pipeline()
    pipe.watch(k)
    deadline = time.time() + 10
    while other.exists(k):
        assert time.time() < deadline, "the key never expired"
        time.sleep(0.02)
    pipe.multi()
    pipe.set(k, "again")
    with pytest.raises(redis.WatchError):
        pipe.execute()
    # A key evicted after WATCH counts as changed.
    victim = keys_on(1, 1, "victim")[0]
    r.set(victim, "x" * 100)
    pipe = r.pipeline()
    pipe.watch(victim)
    i = 0
    while other.exists(victim):
        other.set(f"fill:{i}", "y" * 1000)
        i += 1
        assert i < 200_000, "the watched key was never evicted"
    pipe.multi()
    pipe.set(victim, "back")
    with pytest.raises(redis.WatchError):
        pipe.execute()
    r.close()
    other.close()


def test_multi_of_a_thousand_commands(r):
    keys = [f"m:{i}" for i in range(250)]
    assert {shard_of(k) for k in keys} == {0, 1}
    pipe = r.pipeline(transaction=True)
    for k in keys:
        pipe.set(k, 1)
    for k in keys:
        pipe.incrby(k, 2)
    for k in keys:
        pipe.get(k)
    pipe.mget(keys[:100])
    for k in keys[:248]:
        pipe.exists(k)
    pipe.dbsize()
    res = pipe.execute()
    assert len(res) == 1000
    assert res[:250] == [True] * 250
    assert res[250:500] == [3] * 250
    assert res[500:750] == [b"3"] * 250
    assert res[750] == [b"3"] * 100
    assert res[751:999] == [1] * 248
    assert res[999] == 250


def test_exec_replies_in_resp3(node):
    r3 = node.client(protocol=3)
    a, b = keys_on(0, 1, "r3a")[0], keys_on(1, 1, "r3b")[0]
    r3.hset(a, "f", "v")
    pipe = r3.pipeline(transaction=True)
    pipe.hgetall(a).get(b).incrbyfloat(b, 1.5)
    assert pipe.execute() == [{b"f": b"v"}, None, 1.5]
    raw = Raw(node.port)
    assert raw.cmd("HELLO", "3").startswith(b"%7\r\n")
    assert raw.cmd("WATCH", b) == b"+OK\r\n"
    r3.set(b, 0)
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("GET", b) == b"+QUEUED\r\n"
    assert raw.cmd("GET", a) == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == b"_\r\n", "a failed WATCH is a RESP3 null"
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("GET", "nosuchkey") == b"+QUEUED\r\n"
    assert raw.cmd("HGETALL", a) == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == b"*2\r\n_\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
    raw.close()
    r3.close()


def test_racing_msetnx_is_all_or_nothing(node):
    """Clients race MSETNX over overlapping key sets that span both shards: for every
    round, each key holds the value of one winner, and a winner set all of its keys."""
    rounds, racers = 150, 6
    clients = [node.client() for _ in range(racers)]
    for rnd in range(rounds):
        keys = keys_on(0, 3, f"nx{rnd}:") + keys_on(1, 3, f"nx{rnd}:")
        random.Random(rnd).shuffle(keys)
        # Racer i takes a window of 3 keys: windows overlap their neighbours.
        sets = [keys[(i % 4):(i % 4) + 3] for i in range(racers)]
        results = [None] * racers
        barrier = threading.Barrier(racers)

        def race(i):
            barrier.wait()
            results[i] = clients[i].msetnx({k: f"r{i}" for k in sets[i]})

        threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i in range(racers) if results[i]]
        assert winners, f"round {rnd}: nobody won"
        values = dict(zip(keys, clients[0].mget(keys)))
        for i in winners:
            assert all(values[k] == f"r{i}".encode() for k in sets[i]), f"round {rnd}: racer {i} won half"
        for k, v in values.items():
            if v is not None:
                owner = int(v.decode()[1:])
                assert owner in winners and k in sets[owner], f"round {rnd}: {k} holds a loser's value"
        # Two winners never share a key.
        for i in winners:
            for j in winners:
                if i < j:
                    assert not set(sets[i]) & set(sets[j])
    for c in clients:
        c.close()


def test_bank_transfers_never_show_a_torn_snapshot(node):
    """Writers move money between accounts on different shards, with WATCH/MULTI/EXEC and
    with plain MULTI/EXEC; readers take MULTI/MGET/EXEC snapshots. Every snapshot sums to
    the total, WATCH aborts happen under contention, and the books balance at the end."""
    accounts = keys_on(0, 8, "acct") + keys_on(1, 8, "acct")
    hot = accounts[:3] + accounts[8:11]
    total = 1000 * len(accounts)
    setup = node.client()
    setup.mset({a: 1000 for a in accounts})
    target = 10_000
    done = {"watch": 0, "plain": 0, "aborts": 0, "snapshots": 0, "torn": 0}
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def watch_writer(seed):
        rng = random.Random(seed)
        c = node.client()
        try:
            while not stop.is_set():
                a, b = rng.sample(hot, 2)
                amount = rng.randint(1, 50)
                with c.pipeline() as pipe:
                    try:
                        pipe.watch(a, b)
                        ba, bb = (int(v) for v in pipe.mget(a, b))
                        pipe.multi()
                        pipe.set(a, ba - amount)
                        pipe.set(b, bb + amount)
                        pipe.execute()
                        with lock:
                            done["watch"] += 1
                    except redis.WatchError:
                        with lock:
                            done["aborts"] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            c.close()

    def plain_writer(seed):
        rng = random.Random(seed)
        c = node.client()
        try:
            while not stop.is_set():
                a = rng.choice(accounts[:8])
                b = rng.choice(accounts[8:])
                if rng.random() < 0.5:
                    a, b = b, a
                amount = rng.randint(1, 50)
                pipe = c.pipeline(transaction=True)
                pipe.decrby(a, amount).incrby(b, amount)
                pipe.execute()
                with lock:
                    done["plain"] += 1
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            c.close()

    def reader():
        c = node.client()
        try:
            while not stop.is_set():
                pipe = c.pipeline(transaction=True)
                pipe.mget(accounts)
                (vals,) = pipe.execute()
                s = sum(int(v) for v in vals)
                with lock:
                    done["snapshots"] += 1
                    if s != total:
                        done["torn"] += 1
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=watch_writer, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=plain_writer, args=(10 + i,)) for i in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.time() + 240
    while True:
        with lock:
            transfers = done["watch"] + done["plain"]
        if transfers >= target or errors or time.time() > deadline:
            break
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors
    assert done["watch"] + done["plain"] >= target, done
    assert done["torn"] == 0, done
    assert done["snapshots"] > 100, done
    assert done["aborts"] > 0, f"no WATCH abort under contention: {done}"
    assert sum(int(v) for v in setup.mget(accounts)) == total
    print(f"bank workload: {done}")
    setup.close()


def test_a_transaction_over_every_shard_completes_while_a_shard_has_a_stuck_client(start):
    """Clients that pipeline large GETs and never read keep their shards' output and
    in-flight limits busy; transactions over both shards still complete."""
    node = start("--max-inflight-per-conn", "64")
    r = node.client()
    big = keys_on(0, 1, "big")[0]
    r.set(big, "z" * 200_000)
    stuck = []
    shards = set()
    while shards != {0, 1}:
        raw = Raw(node.port)
        cid = int(raw.cmd("CLIENT", "ID")[1:-2])
        shards.add(cid % 2)
        raw.send(encode("GET", big) * 2000)
        stuck.append(raw)
        assert len(stuck) < 40, "connections never landed on both shards"
    a, b = keys_on(0, 1, "ta")[0], keys_on(1, 1, "tb")[0]
    t0 = time.time()
    for i in range(200):
        pipe = r.pipeline(transaction=True)
        pipe.set(a, i).set(b, i).mget(a, b)
        assert pipe.execute() == [True, True, [str(i).encode()] * 2]
    assert time.time() - t0 < 30
    for raw in stuck:
        raw.close()
    r.close()


def test_queueing_a_write_for_a_full_shard_is_refused_from_any_connection(start):
    """Redis refuses to queue commands while out of memory. A write for a shard over its
    limit (noeviction) is refused on every connection, whichever shard it sits on; EXEC
    then aborts, DISCARD still works, and writes for the other shard queue normally."""
    node = start("--eviction", "noeviction")
    r = node.client()
    r.config_set("maxmemory", r.info("memory")["used_memory"] + 400 * 1024)
    # A CONFIG SET error inside EXEC is worded as Redis words it.
    pipe = r.pipeline(transaction=True)
    pipe.config_set("maxmemory", "bla")
    with pytest.raises(redis.ResponseError, match="CONFIG SET failed"):
        pipe.execute()
    full, free = keys_on(1, 1, "full")[0], keys_on(0, 1, "free")[0]
    i = 0
    while True:
        try:
            r.set(f"{{{full}}}:{i}", "v" * 1000)
        except redis.exceptions.OutOfMemoryError:
            break
        i += 1
        assert i < 10_000, "the shard never filled"
    seen = set()
    conns = []
    while seen != {0, 1}:
        raw = Raw(node.port)
        seen.add(int(raw.cmd("CLIENT", "ID")[1:-2]) % 2)
        conns.append(raw)
        assert len(conns) < 40
    for raw in conns:
        assert raw.cmd("MULTI") == b"+OK\r\n"
        assert raw.cmd("SET", free, 1) == b"+QUEUED\r\n"
        # Only keys count: a value that would hash to the full shard is no reason to refuse.
        assert raw.cmd("MSET", free, full) == b"+QUEUED\r\n"
        assert raw.cmd("SET", full, 1).startswith(b"-OOM")
        assert raw.cmd("EXEC").startswith(b"-EXECABORT")
        assert raw.cmd("MULTI") == b"+OK\r\n"
        assert raw.cmd("SET", full, 1).startswith(b"-OOM")
        assert raw.cmd("DISCARD") == b"+OK\r\n"
        raw.close()
    assert r.exists(free) == 0
    r.close()


def test_watch_on_one_shard_and_writes_on_another_from_either_shard(node):
    """EXEC whose watched keys all live on the connection's own shard while its commands
    touch the other shard: the check hop to the own shard answers at once, and the next
    hop must not overtake the first hop's message to the other shard."""
    other = node.client()
    for conn_shard in (0, 1):
        raw = None
        for _ in range(64):
            raw = Raw(node.port)
            if int(raw.cmd("CLIENT", "ID")[1:-2]) % 2 == conn_shard:
                break
            raw.close()
        else:
            pytest.fail(f"no connection landed on shard {conn_shard}")
        mine = keys_on(conn_shard, 1, f"own{conn_shard}")[0]
        theirs = keys_on(1 - conn_shard, 1, f"far{conn_shard}")[0]
        for round in range(20):
            assert raw.cmd("WATCH", mine) == b"+OK\r\n"
            changed = round % 2 == 1
            if changed:
                other.set(mine, round)
            assert raw.cmd("MULTI") == b"+OK\r\n"
            assert raw.cmd("SET", theirs, round) == b"+QUEUED\r\n"
            reply = raw.cmd("EXEC")
            if changed:
                assert reply == b"*-1\r\n"
            else:
                assert reply == b"*1\r\n+OK\r\n"
                assert other.get(theirs) == str(round).encode()
        raw.close()
    other.close()


def test_queued_unwatch_and_what_breaks_a_watch_follow_redis(node):
    """UNWATCH queued inside MULTI answers OK at EXEC (EXEC drops the watches anyway). A
    write that changes nothing (HDEL of no field, a failed HINCRBY) leaves a WATCH intact,
    as in Redis; one that changes the key breaks it."""
    raw, other = Raw(node.port), node.client()
    h = keys_on(1, 1, "h")[0]
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("UNWATCH") == b"+QUEUED\r\n"
    assert raw.cmd("PING") == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == b"*2\r\n+OK\r\n+PONG\r\n"
    other.hset(h, mapping={"text": "x", "big": str(2**63 - 1)})
    assert raw.cmd("WATCH", h) == b"+OK\r\n"
    assert other.hdel(h, "nosuchfield") == 0
    with pytest.raises(redis.ResponseError, match="not an integer"):
        other.hincrby(h, "text", 1)
    with pytest.raises(redis.ResponseError, match="overflow"):
        other.hincrby(h, "big", 1)
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("HLEN", h) == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == b"*1\r\n:2\r\n"
    assert raw.cmd("WATCH", h) == b"+OK\r\n"
    assert other.hdel(h, "text") == 1
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("HLEN", h) == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == b"*-1\r\n"
    raw.close()
    other.close()


def test_exec_that_fits_memory_when_it_starts_applies_whole(start):
    """EXEC checks memory once, before it runs: a transaction admitted then runs every
    command, even when an earlier one takes the shard over the limit (Redis does not
    re-check inside EXEC). MSETNX after a big SET is not refused half-way."""
    node = start("--eviction", "noeviction")
    raw, r = Raw(node.port), node.client()
    # 64 KiB above what an empty node uses (its stores' fixed tables), split over the shards.
    r.config_set("maxmemory", r.info("memory")["used_memory"] + 64 * 1024)
    big, a, b = keys_on(0, 3, "m")
    assert raw.cmd("MULTI") == b"+OK\r\n"
    assert raw.cmd("SET", big, "v" * 100_000) == b"+QUEUED\r\n"
    assert raw.cmd("MSETNX", a, 1, b, 2) == b"+QUEUED\r\n"
    assert raw.cmd("EXEC") == b"*2\r\n+OK\r\n:1\r\n"
    assert r.mget(a, b) == [b"1", b"2"]
    # Now over the limit: the next such EXEC is refused whole.
    assert raw.cmd("SET", a, 3).startswith(b"-OOM")
    raw.close()
    r.close()


def test_exec_runs_commands_over_keys_of_several_shards(node):
    """RENAME, SMOVE, LMOVE, ZUNIONSTORE and MSETNX over keys of both shards, inside
    MULTI: the whole transaction runs on gathered copies of its keys, in order."""
    r = node.client()
    a, b = keys_on(0, 2, "ga"), keys_on(1, 3, "gb")
    pipe = r.pipeline(transaction=True)
    pipe.set(a[0], "v").rename(a[0], b[0]).get(b[0]).exists(a[0])
    pipe.sadd(a[1], "m", "n").smove(a[1], b[1], "m").smembers(b[1])
    pipe.rpush("l" + a[0], 1, 2).lmove("l" + a[0], "l" + b[0], "LEFT", "RIGHT")
    assert pipe.execute() == [True, True, b"v", 0, 2, True, {b"m"}, 2, b"1"]
    assert r.get(b[0]) == b"v" and not r.exists(a[0])
    assert r.smembers(a[1]) == {b"n"} and r.smembers(b[1]) == {b"m"}
    # MSETNX over both shards inside MULTI is all or nothing.
    r.set(b[0], "taken")
    pipe = r.pipeline(transaction=True)
    pipe.msetnx({a[0]: "1", b[0]: "2"}).mget(a[0], b[0])
    assert pipe.execute() == [False, [None, b"taken"]]
    r.delete(b[0])
    pipe = r.pipeline(transaction=True)
    pipe.msetnx({a[0]: "1", b[0]: "2"}).mget(a[0], b[0])
    assert pipe.execute() == [True, [b"1", b"2"]]
    # A runtime error is that command's element; the rest ran.
    pipe = r.pipeline(transaction=True)
    pipe.rename(a[1], b[1]).incr(b[1]).scard(b[1])
    res = pipe.execute(raise_on_error=False)
    assert res[0] is True and res[2] == 1, res
    assert isinstance(res[1], redis.ResponseError) and "WRONGTYPE" in str(res[1])
    assert not r.exists(a[1]) and r.smembers(b[1]) == {b"n"}
    # A whole-keyspace command keeps the old answer for the several-shard one.
    pipe = r.pipeline(transaction=True)
    pipe.rename(a[0], b[2]).dbsize()
    res = pipe.execute(raise_on_error=False)
    assert isinstance(res[0], redis.ResponseError) and "same shard" in str(res[0])


def test_gathered_exec_honours_watch(node):
    r, other = node.client(), node.client()
    a, (b, dst) = keys_on(0, 1, "wa")[0], keys_on(1, 2, "wb")
    r.sadd(a, "m")
    with r.pipeline(transaction=True) as pipe:
        pipe.watch(b)
        other.set(b, "changed")
        pipe.multi()
        pipe.smove(a, dst, "m")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.smembers(a) == {b"m"} and not r.exists(dst)
    # Unchanged, the same transaction runs.
    with r.pipeline(transaction=True) as pipe:
        pipe.watch(b)
        pipe.multi()
        pipe.smove(a, dst, "m")
        assert pipe.execute() == [True]
    assert not r.exists(a) and r.smembers(dst) == {b"m"}


def test_gathered_exec_is_isolated(node):
    """Moves between lists on two shards inside MULTI, while readers take atomic
    snapshots of both lengths: the total never changes."""
    a, b = keys_on(0, 1, "ia")[0], keys_on(1, 1, "ib")[0]
    r = node.client()
    r.rpush(a, *range(50))
    stop = threading.Event()
    torn, moved, failed = [], [], []

    def mover():
        c = node.client()
        try:
            while not stop.is_set():
                p = c.pipeline(transaction=True)
                p.lmove(a, b, "LEFT", "RIGHT").lmove(a, b, "LEFT", "RIGHT")
                p.lmove(b, a, "LEFT", "RIGHT").lmove(b, a, "LEFT", "RIGHT")
                moved.append(p.execute())
        except Exception as e:  # reported below: a failed transaction fails the test
            failed.append(e)

    def reader():
        c = node.client()
        for _ in range(300):
            p = c.pipeline(transaction=True)
            la, lb = p.llen(a).llen(b).execute()
            if la + lb != 50:
                torn.append((la, lb))

    t = threading.Thread(target=mover)
    t.start()
    try:
        reader()
    finally:
        stop.set()
        t.join()
    assert failed == [] and torn == []
    assert len(moved) > 0 and all(len(m) == 4 and None not in m for m in moved)
    assert r.llen(a) == 50 and r.llen(b) == 0

"""Big hashes do not stall their shard (issue 13, stall detection): HGETALL, HKEYS and HVALS
of a hash with a million fields are encoded over several loop turns from a frozen view of the
hash, and an HSET of 250k fields is applied over several turns while its key is held, so
other clients of the shard are served in between; the answers are whole and the write is
atomic to other clients. The bound is the node's own loop-turn metric: no turn runs past
--stall-warn-ms meanwhile."""
import re
import subprocess
import sys
import urllib.request

import redis

from conftest import keys_on
from test_stalls_keys import pings_during

N = 1_000_000
# A loop turn longer than this counts as a stall. Before slicing, HGETALL of 1M fields held
# its shard 38-100 ms in one turn on the 2-CPU test machine (HKEYS 50-60, HVALS 55-72); a slice
# is about a millisecond (none ran past 8 ms in 3 runs), so this leaves room for a loaded
# machine's scheduling noise.
STALL_MS = 25


def fill_hash(node, key, n, batch=1000):
    """HSET `n` fields field:i = value:i through redis-cli --pipe, `batch` fields a command."""
    parts = []
    kb = key.encode()
    for start in range(0, n, batch):
        end = min(n, start + batch)
        items = [b"HSET", kb]
        for i in range(start, end):
            items += [b"field:%d" % i, b"value:%d" % i]
        parts.append(b"*%d\r\n" % len(items) + b"".join(
            b"$%d\r\n%s\r\n" % (len(x), x) for x in items))
    r = subprocess.run(["redis-cli", "-p", str(node.port), "--pipe"], input=b"".join(parts),
                       capture_output=True, timeout=300)
    assert r.returncode == 0 and b"errors: 0" in r.stdout, r.stdout[-500:]


def shard_metric(node, name, shard=0) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{node.admin_port}/metrics",
                                  timeout=5).read().decode()
    m = re.search(rf'^{name}{{shard="{shard}"}} ([\d.e+-]+)$', body, re.M)
    assert m, f"{name} for shard {shard} not in /metrics"
    return float(m.group(1))


def expected(n):
    return {b"field:%d" % i: b"value:%d" % i for i in range(n)}


def test_replies_over_a_million_fields_do_not_stall_the_shard(start):
    # One shard: the big reply, the PINGs and the other connection share one loop.
    node = start("--stall-warn-ms", str(STALL_MS), cores="0")
    fill_hash(node, "h", N)
    r = node.client()
    assert r.hlen("h") == N
    want = expected(N)
    for cmd, check in [
        ("hgetall", lambda got: got == want),
        ("hkeys", lambda got: len(got) == N and set(got) == set(want)),
        ("hvals", lambda got: len(got) == N and set(got) == set(want.values())),
    ]:
        # The node's own measure: a run in which no loop turn ran past --stall-warn-ms while
        # the reply was built, so the PINGs beside it waited at most one short turn. Up to
        # three runs: the test machine's 2 CPUs are shared with other builds, whose
        # preemption can stretch any turn; the whole command in one turn stretches every
        # run (38-100 ms before slicing).
        runs = []
        for _ in range(3):
            stalls = shard_metric(node, "pinion_shard_loop_stalls_total")
            got, lat = pings_during(node, lambda: getattr(r, cmd)("h"))
            new_stalls = shard_metric(node, "pinion_shard_loop_stalls_total") - stalls
            print(f"{cmd}: {len(lat)} PINGs during it, p50 {lat[len(lat) // 2] * 1e3:.2f} ms, "
                  f"max {lat[-1] * 1e3:.2f} ms; turns past {STALL_MS} ms: {new_stalls:.0f}")
            assert check(got), f"{cmd} answered {len(got)} items, not the whole hash"
            assert len(lat) > 0
            runs.append(new_stalls)
            if new_stalls == 0:
                break
        assert 0 in runs, (runs, node.log_text()[-2000:])
    r.close()


HLEN_LOOP = r"""
import socket, sys, threading, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
print("ready", flush=True)
seen = []
key = sys.argv[2].encode()
while not stop.is_set():
    s.sendall(b"*2\r\n$4\r\nHLEN\r\n$%d\r\n%s\r\n" % (len(key), key))
    got = b""
    while not got.endswith(b"\r\n"):
        got += s.recv(64)
    seen.append(int(got[1:-2]))
    time.sleep(0.0005)  # leaves the 2 CPUs to the node and the writer
print(" ".join(map(str, seen)))
"""


def test_hset_of_250k_fields_is_applied_in_slices_atomically(start):
    node = start("--stall-warn-ms", "60", cores="0")
    r = node.client()
    n = 250_000
    for run in range(2):
        key = f"big{run}"
        pairs = [x for i in range(n) for x in (f"f{i}", f"v{i}")]
        stalls = shard_metric(node, "pinion_shard_loop_stalls_total")
        # Another connection reads the key's length throughout: never a part of the write,
        # though the write spans many loop turns.
        p = subprocess.Popen([sys.executable, "-c", HLEN_LOOP, str(node.port), key],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"ready"
        try:
            added = r.execute_command("HSET", key, *pairs)
        finally:
            out, _ = p.communicate(timeout=60)
        seen = [int(x) for x in out.split()]
        new_stalls = shard_metric(node, "pinion_shard_loop_stalls_total") - stalls
        # Reported, not asserted: receiving and parsing the 500,001 arguments still takes
        # one long turn (docs/reliability.md).
        print(f"HSET {n} fields: {len(seen)} HLENs beside it, values {sorted(set(seen))}; "
              f"turns past 60 ms: {new_stalls:.0f}")
        assert added == n
        assert set(seen) <= {0, n}, sorted(set(seen))[:10]
        assert r.hlen(key) == n and r.hget(key, "f12345") == b"v12345"
    # Over an existing hash: the new fields added, the old ones overwritten; HMSET too.
    assert r.hset("big0", mapping={f"f{i}": "x" for i in range(n - 10, n + 20_000)}) == 20_000
    assert r.hlen("big0") == n + 20_000 and r.hget("big0", f"f{n - 1}") == b"x"
    assert r.hmset("big0", {f"g{i}": "y" for i in range(20_000)}) is True
    assert r.hlen("big0") == n + 40_000
    # Pipelined on one connection, after the big write: its own reads see all of it.
    pipe = r.pipeline(transaction=False)
    pipe.hset("fresh", mapping={f"f{i}": "1" for i in range(30_000)}).hlen("fresh")
    pipe.hget("fresh", "f29999")
    assert pipe.execute() == [30_000, 30_000, b"1"]
    # A wrong type is refused before anything is written.
    r.set("str", "x")
    try:
        r.hset("str", mapping={f"f{i}": "1" for i in range(30_000)})
        raise AssertionError("HSET over a string answered")
    except redis.ResponseError as e:
        assert "WRONGTYPE" in str(e)
    assert r.get("str") == b"x"
    r.close()


def test_a_reply_is_the_hash_as_it_was_when_the_command_ran(start):
    node = start(cores="0")
    fill_hash(node, "h", 200_000)
    r = node.client()
    # Pipelined on one connection: the writes after HGETALL run while its reply is built
    # (they copy the table first), and HGETALL still answers the hash as it was.
    p = r.pipeline(transaction=False)
    p.hgetall("h").hset("h", "new", "1").hdel("h", "field:0").hlen("h").hkeys("h")
    got = p.execute()
    assert len(got[0]) == 200_000 and b"new" not in got[0] and got[0][b"field:0"] == b"value:0"
    assert got[1:4] == [1, 1, 200_000]
    assert b"new" in got[4] and b"field:0" not in got[4] and len(got[4]) == 200_000
    # RESP3: a map.
    r3 = node.client(protocol=3)
    m = r3.hgetall("h")
    assert isinstance(m, dict) and len(m) == 200_000 and m[b"new"] == b"1"
    # Inside MULTI/EXEC and scripts the command runs whole, in the transaction.
    p = r.pipeline(transaction=True)
    p.hset("h", "in-multi", "1").hkeys("h").hdel("h", "in-multi")
    got = p.execute()
    assert got[0] == 1 and len(got[1]) == 200_001 and b"in-multi" in got[1] and got[2] == 1
    assert r.eval("return #redis.call('hvals', KEYS[1])", 1, "h") == 200_000
    # Small hashes and other types are answered as before.
    r.hset("small", mapping={"a": "1", "b": "2"})
    assert r.hgetall("small") == {b"a": b"1", b"b": b"2"}
    r.set("str", "x")
    try:
        r.hgetall("str")
        raise AssertionError("HGETALL of a string answered")
    except redis.ResponseError as e:
        assert "WRONGTYPE" in str(e)
    r.close()
    r3.close()


def test_big_replies_from_either_shard(start):
    node = start()
    r = node.client()
    for shard in (0, 1):
        (k,) = keys_on(shard, 1, prefix="big")
        fill_hash(node, k, 100_000)
        assert r.hgetall(k) == expected(100_000)
        assert sorted(r.hvals(k)) == sorted(expected(100_000).values())
    r.close()

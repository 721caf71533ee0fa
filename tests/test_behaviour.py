"""Pipelines across shards, TTL expiry, eviction policies, AUTH, limits, bad input,
redis-benchmark, and graceful shutdown with histogram dumps."""

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
import redis

from conftest import Raw, encode, keys_on, shard_of


def test_pipeline_of_thousands_keeps_order_across_shards(r):
    n = 5000
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"p:{i}", i)
    for i in range(n):
        pipe.get(f"p:{i}")
    res = pipe.execute()
    assert res[:n] == [True] * n
    assert res[n:] == [str(i).encode() for i in range(n)]
    assert {shard_of(f"p:{i}") for i in range(n)} == {0, 1}


def test_raw_pipeline_mixed_local_remote_and_multi_key(node):
    """One write of 3000 mixed commands; replies must come back in exactly that order."""
    raw = Raw(node.port)
    a, b = keys_on(0, 1, "x")[0], keys_on(1, 1, "y")[0]
    frames, expect = [], []
    for i in range(1000):
        frames.append(encode("SET", a if i % 2 else b, i))
        expect.append(b"+OK\r\n")
        frames.append(encode("MGET", a, b))
        frames.append(encode("PING"))
        expect.append(None)  # checked below
        expect.append(b"+PONG\r\n")
    raw.send(b"".join(frames))
    last = {a: None, b: None}
    for i in range(1000):
        assert raw.read_reply() == b"+OK\r\n"
        last[a if i % 2 else b] = str(i).encode()
        mget = raw.read_reply()
        want = b"*2\r\n" + b"".join(
            (b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v)) for v in (last[a], last[b])
        )
        assert mget == want, f"reply {i} out of order"
        assert raw.read_reply() == b"+PONG\r\n"
    raw.close()


def test_active_expiry_removes_untouched_keys(r):
    keys = {f"ttl:{i}": "v" for i in range(300)}
    r.mset(keys)
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.pexpire(k, 200)
    pipe.execute()
    r.set("keep", "v")
    assert r.dbsize() == 301
    deadline = time.time() + 5
    while time.time() < deadline and r.dbsize() > 1:
        time.sleep(0.1)
    # Nobody read the keys: only the active expiry cycle can have removed them.
    assert r.dbsize() == 1
    assert r.info("stats")["expired_keys"] == 300
    assert r.get("keep") == b"v"


def test_lazy_expiry_on_access(r):
    r.set("lazy", "v", px=100)
    time.sleep(0.15)
    assert r.get("lazy") is None
    assert r.exists("lazy") == 0


def fill(r, prefix, n, size=100):
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"{prefix}{i}", "x" * size)
    pipe.execute()


def survivors(r, prefix, idx):
    pipe = r.pipeline(transaction=False)
    for i in idx:
        pipe.exists(f"{prefix}{i}")
    return sum(pipe.execute())


@pytest.mark.parametrize("policy", ["lru", "lfu", "fifo"])
def test_eviction_policy_picks_the_expected_victims(start, policy):
    node = start("--maxmemory", "1mb", "--eviction", policy, "--eviction-samples", "10")
    r = node.client()

    def touch_hot():
        pipe = r.pipeline(transaction=False)
        for i in hot:
            pipe.get(f"old:{i}")
        pipe.execute()

    # 200 "old" keys, of which the upper half is read again and again while 9000 new keys
    # (about 1.4 MB in all) push the node past its limit.
    fill(r, "old:", 200)
    hot = range(100, 200)
    for _ in range(10):
        touch_hot()
    for batch in range(18):
        pipe = r.pipeline(transaction=False)
        for i in range(batch * 500, (batch + 1) * 500):
            pipe.set(f"new:{i}", "x" * 100)
        pipe.execute()
        touch_hot()
    assert r.info("stats")["evicted_keys"] > 1000
    assert r.info("memory")["used_memory"] <= 1024 * 1024 + 16 * 1024
    hot_left = survivors(r, "old:", hot)
    cold_left = survivors(r, "old:", range(0, 100))
    new_tail = survivors(r, "new:", range(8900, 9000))
    if policy == "fifo":
        # Oldest inserted goes first, however often it was read.
        assert hot_left + cold_left <= 20, (hot_left, cold_left)
        assert new_tail >= 90
    elif policy == "lru":
        # The cold keys are the least recently used; the hot ones were read moments ago.
        assert hot_left >= 90, (hot_left, cold_left)
        assert cold_left <= 20, (hot_left, cold_left)
    else:
        # LFU: the hot keys' counters are high; cold keys compete with new ones on equal terms.
        assert hot_left >= 90, (hot_left, cold_left)
        assert cold_left <= hot_left - 20, (hot_left, cold_left)
    r.close()


def test_noeviction_answers_oom_and_keeps_serving(start):
    node = start("--maxmemory", "1mb", "--eviction", "noeviction")
    r = node.client()
    with pytest.raises(redis.exceptions.OutOfMemoryError, match="command not allowed when used memory > 'maxmemory'"):
        for i in range(100000):
            r.set(f"k{i}", "x" * 100)
    before = r.dbsize()
    assert 0 < before < 100000
    assert r.get("k0") == b"x" * 100
    assert r.delete("k0") == 1
    assert r.info("stats")["evicted_keys"] == 0
    r.close()


def test_auth(start):
    node = start("--requirepass", "s3cret")
    raw = Raw(node.port)
    assert raw.cmd("GET", "k") == b"-NOAUTH Authentication required.\r\n"
    assert raw.cmd("AUTH", "wrong") == b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    assert raw.cmd("AUTH", "s3cret") == b"+OK\r\n"
    assert raw.cmd("SET", "k", "v") == b"+OK\r\n"
    raw.close()
    r = node.client(password="s3cret")
    assert r.get("k") == b"v"
    r3 = node.client(password="s3cret", protocol=3)
    assert r3.get("k") == b"v"
    with pytest.raises(redis.AuthenticationError):
        node.client(password="nope").ping()
    assert node.cli("-a", "s3cret", "--no-auth-warning", "GET", "k").strip() == "v"


def bystander_ok(node):
    """A second connection still gets served."""
    c = node.client()
    c.set("bystander", "ok")
    assert c.get("bystander") == b"ok"
    c.close()


@pytest.mark.parametrize(
    "garbage,error",
    [
        (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*99999999999\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$9999999999\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*2\r\n:1\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
        (b'SET "unbalanced\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
        (b"x" * (70 * 1024), b"-ERR Protocol error: too big inline request\r\n"),
    ],
)
def test_malformed_frames_get_an_error_then_close(node, garbage, error):
    other = Raw(node.port)
    assert other.cmd("SET", "before", "1") == b"+OK\r\n"
    bad = Raw(node.port)
    bad.send(garbage)
    assert bad.read_reply() == error
    assert bad.closed_by_peer()
    assert other.cmd("GET", "before") == b"$1\r\n1\r\n"
    bystander_ok(node)


def test_random_garbage_never_hurts_other_connections(node):
    import random

    rng = random.Random(7)
    other = Raw(node.port)
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))
        try:
            s.sendall(blob)
            s.settimeout(0.05)
            s.recv(65536)
        except (socket.timeout, ConnectionError):
            pass
        s.close()
        assert other.cmd("INCR", "alive") == b":%d\r\n" % (i + 1)
    other.close()


def test_half_frames_then_close_and_peer_reset(node):
    for partial in [b"*3\r\n$3\r\nSET\r\n$1\r\nk", b"*2\r\n$3\r\nGET\r\n$100\r\nabc", b"*", b"GET k"]:
        s = socket.create_connection(("127.0.0.1", node.port))
        s.sendall(partial)
        s.close()
    # A reset (RST) in the middle of a big pipeline.
    s = socket.create_connection(("127.0.0.1", node.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.sendall(b"".join(encode("SET", f"r{i}", "v" * 100) for i in range(2000)))
    s.close()
    bystander_ok(node)


def test_huge_value_round_trips(r):
    v = os.urandom(8 * 1024 * 1024)
    assert r.set("huge", v)
    assert r.get("huge") == v
    assert r.strlen("huge") == len(v)


def test_bulk_over_max_bulk_bytes_is_refused(start):
    node = start("--max-bulk-bytes", "1mb", "--max-query-buffer-bytes", "2mb")
    raw = Raw(node.port)
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
    assert raw.read_reply() == b"-ERR Protocol error: invalid bulk length\r\n"
    assert raw.closed_by_peer()
    bystander_ok(node)


def test_client_that_never_reads_is_closed_at_the_output_limit(start):
    node = start("--output-buffer-limit-bytes", "4mb")
    r = node.client()
    r.set("blob", "x" * 100_000)
    hog = socket.create_connection(("127.0.0.1", node.port))
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # Ask for ~200 MB of replies and read none of them.
    try:
        for _ in range(20):
            hog.sendall(encode("GET", "blob") * 100)
    except (BrokenPipeError, ConnectionResetError):
        pass
    node.wait_metric("pinion_closed_output_limit_total", 1)
    assert r.get("blob") == b"x" * 100_000
    hog.close()
    r.close()


def test_max_connections(start):
    node = start("--max-connections", "3")
    # The fixture's readiness probe may still be closing: wait until nothing is open.
    node.wait_metric("pinion_connections_open", 0)
    held = [Raw(node.port) for _ in range(3)]
    for h in held:
        assert h.cmd("PING") == b"+PONG\r\n"
    extra = Raw(node.port)
    assert extra.read_reply() == b"-ERR max number of clients reached\r\n"
    assert extra.closed_by_peer()
    held.pop().close()
    node.wait_metric("pinion_connections_open", 2)
    again = Raw(node.port)
    assert again.cmd("PING") == b"+PONG\r\n"
    again.close()
    for h in held:
        h.close()


def test_inline_commands_and_redis_benchmark(node):
    raw = Raw(node.port)
    raw.send(b"PING\r\nSET inl 'a b'\r\nGET inl\r\n")
    assert raw.read_reply() == b"+PONG\r\n"
    assert raw.read_reply() == b"+OK\r\n"
    assert raw.read_reply() == b"$3\r\na b\r\n"
    raw.close()
    out = subprocess.run(
        ["redis-benchmark", "-p", str(node.port), "-t", "ping,set,get,mset", "-n", "20000", "-c", "20", "-P", "16", "-q"],
        capture_output=True, timeout=120, text=True,
    )
    assert out.returncode == 0, out.stderr
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "MSET (10 keys)"]:
        assert re.search(rf"^{re.escape(test)}: [\d.]+ requests per second", out.stdout.replace("\r", "\n"), re.M), out.stdout


def test_admin_endpoint_and_histogram_dumps(start):
    node = start()
    r = node.client()
    for i in range(100):
        r.set(f"h{i}", i)
        r.get(f"h{i}")
    body = urllib.request.urlopen(f"http://127.0.0.1:{node.admin_port}/metrics", timeout=5).read().decode()
    assert re.search(r"^pinion_commands_total (\d+)", body, re.M)
    assert 'pinion_latency_seconds{op="string_read",quantile="0.99"}' in body
    hist = urllib.request.urlopen(f"http://127.0.0.1:{node.admin_port}/histograms", timeout=5).read().decode()
    assert "# pinion histogram shard=all op=string_write unit=us" in hist
    # SIGUSR1 writes the dump while serving.
    node.proc.send_signal(signal.SIGUSR1)
    deadline = time.time() + 5
    while time.time() < deadline and not node.hist.exists():
        time.sleep(0.05)
    text = node.hist.read_text()
    assert "shard=0 op=string_read" in text and "shard=1 op=string_read" in text
    m = re.search(r"shard=all op=string_read unit=us\n(.*?)#\[Max\s+=\s+[\d.]+, Total count\s+=\s+(\d+)\]", text, re.S)
    assert m and int(m.group(2)) == 100
    r.close()
    # Graceful shutdown writes the final dump and exits 0 (the fixture checks the code).
    node.hist.unlink()
    assert node.stop() == 0
    assert "shard=all op=mesh_hop" in node.hist.read_text()


def test_shutdown_finishes_in_flight_requests(start):
    node = start()
    raw = Raw(node.port)
    n = 3000
    raw.send(b"".join(encode("SET", f"sd{i}", i) for i in range(n)))
    node.proc.send_signal(signal.SIGTERM)
    got = 0
    try:
        for _ in range(n):
            assert raw.read_reply() == b"+OK\r\n"
            got += 1
    except ConnectionError:
        pass
    # Everything received before the signal is answered; then the connection closes.
    assert got > 0
    assert raw.closed_by_peer()
    assert node.proc.wait(timeout=20) == 0


def test_backpressure_from_full_lanes_and_inflight_limit_loses_nothing(start):
    """Tiny mesh lanes and a small in-flight limit force the pause/cancel/resume paths:
    every reply must still arrive, in order, on every connection."""
    node = start("--ring-capacity", "16", "--max-inflight-per-conn", "8")
    remote = keys_on(1, 200, "bp")  # connections land on either shard; half go remote
    local = keys_on(0, 200, "bq")
    conns = [Raw(node.port) for _ in range(4)]
    n = 4000
    for c_i, c in enumerate(conns):
        frames = []
        for i in range(n):
            k = (remote if i % 2 else local)[i % 200]
            frames.append(encode("SET", f"{k}:{c_i}", i))
            frames.append(encode("GET", f"{k}:{c_i}"))
        c.send(b"".join(frames))
    for c in conns:
        for i in range(n):
            assert c.read_reply() == b"+OK\r\n"
            v = str(i).encode()
            assert c.read_reply() == b"$%d\r\n%s\r\n" % (len(v), v)
        c.close()
    assert node.metric("pinion_mesh_backpressure_total") + node.metric("pinion_inflight_backpressure_total") > 0
    bystander_ok(node)


def test_query_buffer_limit_closes_the_client(start):
    node = start("--max-bulk-bytes", "1mb", "--max-query-buffer-bytes", "2mb")
    raw = Raw(node.port)
    # Three arguments of almost 1 MiB each: every bulk is legal, the request as a whole
    # cannot fit in the query buffer.
    part = b"$1000000\r\n" + b"x" * 1000000 + b"\r\n"
    try:
        raw.send(b"*4\r\n$4\r\nMSET\r\n" + part * 3)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert raw.closed_by_peer()
    assert node.metric("pinion_closed_query_limit_total") == 1
    bystander_ok(node)


def test_sqpoll_mode_serves(start):
    node = start("--sqpoll-idle-ms", "20")
    r = node.client()
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"sq{i}", i)
    pipe.execute()
    assert r.mget([f"sq{i}" for i in range(0, 1000, 100)]) == [str(i).encode() for i in range(0, 1000, 100)]
    time.sleep(0.1)  # let the SQ threads go idle; the next command must wake them
    assert r.get("sq999") == b"999"
    r.close()


def test_a_second_node_on_the_same_port_is_refused(node):
    """Every shard listens with SO_REUSEPORT; that must not let another process share it."""
    from conftest import binary, free_port

    out = subprocess.run(
        [binary(), "--cores", "0", "--resp-listen", f"127.0.0.1:{node.port}",
         "--admin-listen", f"127.0.0.1:{free_port()}", "--data-dir", str(node.data)],
        capture_output=True, text=True, timeout=20,
    )
    assert out.returncode == 1
    assert "in use" in out.stderr
    bystander_ok(node)

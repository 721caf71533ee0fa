"""The memory budget (issue "Hardening", item 1): `--memory-budget` bounds what a node holds
for requests in flight, replies not yet read, produce and fetch, and the cache; at the budget
a shard stops reading from the connections that want more, and small requests keep being
served. Each test measures the node's peak RSS (VmHWM) against the budget."""

import re
import socket
import threading
import time
import urllib.request

import redis

from conftest import Raw, encode, keys_on

MB = 1 << 20
# RSS may pass the budget by what it does not count (the allocator's slack, batches between
# shards, the binary): the Done-when allows 1.5 GB for a 1 GB budget.
RSS_SLACK = 1.5


def status_kb(node, field: str) -> int:
    text = open(f"/proc/{node.proc.pid}/status").read()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


def rss(node) -> int:
    return status_kb(node, "VmRSS") * 1024


def peak_rss(node) -> int:
    return status_kb(node, "VmHWM") * 1024


def memory_gauges(node) -> dict:
    """{(shard, purpose): bytes} from /metrics."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{node.admin_port}/metrics", timeout=5).read().decode()
    return {
        (int(s), p): int(v)
        for s, p, v in re.findall(r'^pinion_memory_bytes\{shard="(\d+)",purpose="(\w+)"\} (\d+)$', body, re.M)
    }


def ping_latencies(node, seconds: float, every=0.01) -> list:
    """PING on a fresh connection, then again every `every` s for `seconds`; each latency."""
    out = []
    deadline = time.time() + seconds
    raw = Raw(node.port, timeout=5)
    while time.time() < deadline:
        t0 = time.perf_counter()
        assert raw.cmd("PING") == b"+PONG\r\n"
        out.append(time.perf_counter() - t0)
        time.sleep(every)
    raw.close()
    return out


def p99(xs: list) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def test_a_flood_of_partial_huge_bulk_strings_keeps_rss_bounded_and_ping_fast(start):
    """Eight clients each stream a 400 MB bulk string and never finish it. The node holds no
    more than its budget of them (it stops reading from them), a client sending PING is
    answered fast all along, and when nothing can progress the largest partial request is
    closed with an error that says why. Before the budget every byte was buffered: 8 x 200
    MB of RSS."""
    budget = 256 * MB
    node = start("--memory-budget", "256mb")
    base = rss(node)
    stop = threading.Event()
    flooders = []

    def flood(s):
        chunk = b"x" * MB
        sent = 0
        try:
            s.sendall(b"*3\r\n$3\r\nSET\r\n$5\r\nhuge1\r\n$400000000\r\n")
            while not stop.is_set() and sent < 200 * MB:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # paused past the send timeout, or closed by the node

    threads = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", node.port))
        s.settimeout(1.0)
        flooders.append(s)
        t = threading.Thread(target=flood, args=(s,), daemon=True)
        t.start()
        threads.append(t)
    lat = ping_latencies(node, 4.0)
    stop.set()
    for t in threads:
        t.join(10)
    peak = peak_rss(node) - base
    assert peak < budget * RSS_SLACK, f"peak RSS grew by {peak / MB:.0f} MB over a {budget / MB:.0f} MB budget"
    assert p99(lat) < 0.05, f"PING p99 {p99(lat) * 1000:.1f} ms during the flood"
    assert node.metric("pinion_budget_pauses_total") > 0
    # Nothing could complete: the largest partial requests were closed, each with the reason.
    assert node.metric("pinion_budget_closed_total") > 0
    said = b""
    for s in flooders:
        s.settimeout(0.2)
        try:
            while chunk := s.recv(65536):
                said += chunk
        except OSError:
            pass
        s.close()
    assert b"-ERR memory budget exhausted: closing the connection with the largest partial request" in said
    # The node serves normally once the flood is gone.
    assert node.client().set("after", "flood")


def test_clients_pipelining_gets_without_reading_stay_within_the_budget(start):
    """Eight clients pipeline 2000 GETs of a 100 KB value each and read nothing (the issue
    saw 16 of them take RSS to 5.8 GB). Their replies are held within the budget: once it
    is spent their requests wait for them to read, and a fresh PING answers at once."""
    budget = 256 * MB
    node = start("--memory-budget", "256mb")
    r = node.client()
    # One value per shard, so the replies of every hog are partly forwarded between shards.
    blobs = [keys_on(0, 1, "blob")[0], keys_on(1, 1, "blob")[0]]
    for b in blobs:
        r.set(b, "v" * 100_000)
    base = rss(node)
    hogs = []
    for i in range(8):
        s = socket.create_connection(("127.0.0.1", node.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(2.0)
        try:
            s.sendall(encode("GET", blobs[i % 2]) * 2000)
        except OSError:
            pass  # the node stopped reading it: that is the point
        hogs.append(s)
    # The hogs' shards reach their budget and pause them: what they hold stops growing.
    deadline = time.time() + 20
    held, last = -1, 0
    while held != last or node.metric("pinion_budget_pauses_total") == 0:
        assert time.time() < deadline, "the budget never paused the hogs"
        time.sleep(0.3)
        last, held = held, sum(v for (_, p), v in memory_gauges(node).items() if p == "output")
    # New clients are served at once: a PING on each of 20 fresh connections.
    lat = []
    for _ in range(20):
        raw = Raw(node.port)
        t0 = time.perf_counter()
        assert raw.cmd("PING") == b"+PONG\r\n"
        lat.append(time.perf_counter() - t0)
        raw.close()
    peak = peak_rss(node) - base
    assert peak < budget * RSS_SLACK, f"peak RSS grew by {peak / MB:.0f} MB over a {budget / MB:.0f} MB budget"
    assert max(lat) < 0.1, f"slowest PING {max(lat) * 1000:.1f} ms"
    # What the shards hold for the hogs is bounded near the budget: past it by the replies
    # already in flight when it was reached, up to 64 per connection while the reply-size
    # estimate starts at 64 KiB (8 hogs x 64 x 100 KB is about 50 MB; a loaded 2-CPU CI
    # machine saw 340 MB held for this 256 MB budget), so the bound is the RSS one.
    g = memory_gauges(node)
    held = sum(v for (_, p), v in g.items() if p == "output")
    assert MB < held < budget * RSS_SLACK, g
    for s in hogs:
        s.close()
    assert r.get(blobs[0]) == b"v" * 100_000
    r.close()


def test_a_value_larger_than_the_output_limit_is_set_and_read_by_redis_py(start):
    """A client that reads gets a reply larger than --output-buffer-limit-bytes: the limit is
    for clients that stop reading (before, every GET of a 100 MB value was closed at a 64 MB
    limit, as every GET of a 500 MB value was at the default 256 MB)."""
    node = start("--memory-budget", "512mb", "--output-buffer-limit-bytes", "64mb")
    r = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=60)
    value = b"0123456789abcdef" * (100 * MB // 16)
    assert r.set("big", value)
    assert r.strlen("big") == len(value)
    for _ in range(2):
        assert r.get("big") == value
    assert node.metric("pinion_closed_output_limit_total") == 0
    # A client that asks for it and stops reading is still closed at the limit.
    hog = socket.create_connection(("127.0.0.1", node.port))
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.sendall(encode("GET", "big"))
    node.wait_metric("pinion_closed_output_limit_total", 1)
    hog.close()
    assert r.get("big") == value
    r.close()


def test_metrics_show_memory_per_shard_and_purpose(start):
    """`/metrics` has a gauge per shard and purpose, and each shard's share of the budget."""
    node = start("--memory-budget", "1gb")
    r = node.client()
    r.set("k", "v" * 1000)
    # The gauges are refreshed every 100 ms.
    deadline = time.time() + 5
    want = [f'pinion_memory_budget_bytes{{shard="{shard}"}} {512 * MB}' for shard in (0, 1)]
    while True:
        body = urllib.request.urlopen(f"http://127.0.0.1:{node.admin_port}/metrics", timeout=5).read().decode()
        if all(w in body for w in want):
            break
        assert time.time() < deadline, body
        time.sleep(0.05)
    deadline = time.time() + 5
    while True:
        g = memory_gauges(node)
        if all(g.get((s, "cache"), 0) > 0 for s in (0, 1)):
            break
        assert time.time() < deadline, g
        time.sleep(0.05)
    assert {p for (_, p) in g} == {"input", "output", "produce", "fetch", "cache"}
    # The receive buffers are input from the start.
    assert all(g[(s, "input")] >= 256 * 16384 for s in (0, 1)), g
    # A partial request shows as input while it is held.
    raw = Raw(node.port)
    shard = int(raw.cmd("CLIENT", "ID")[1:-2]) % 2
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$50000000\r\n" + b"x" * (20 * MB))
    deadline = time.time() + 5
    while memory_gauges(node)[(shard, "input")] < 20 * MB:
        assert time.time() < deadline, memory_gauges(node)
        time.sleep(0.05)
    raw.close()
    deadline = time.time() + 5
    while memory_gauges(node)[(shard, "input")] > 10 * MB:
        assert time.time() < deadline, memory_gauges(node)
        time.sleep(0.05)

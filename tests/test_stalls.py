"""Stall detection (issue 13): every shard's loop-turn lengths in /metrics and the
--hist-dump file, and a warning naming the operation when a turn runs past --stall-warn-ms."""

import re
import signal
import socket
import threading
import time
import urllib.request

import pytest
import redis

from conftest import keys_on
from test_stalls_keys import pings_during


def client_on(node, shard, **kw):
    """A redis-py client whose connection the node serves on `shard` (CLIENT ID says)."""
    for _ in range(64):
        c = node.client(**kw)
        if c.client_id() % 2 == shard:
            return c
        c.close()
    pytest.fail(f"no connection landed on shard {shard}")


def metrics_text(node) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{node.admin_port}/metrics", timeout=5).read().decode()


def labelled(body: str, name: str, **labels) -> float:
    sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{re.escape(name)}{{{re.escape(sel)}}} ([\d.e+-]+)$", body, re.M)
    assert m, f"{name}{{{sel}}} not in /metrics"
    return float(m.group(1))


def stall_shard_zero(node, hold_s=0.3):
    """Run a Lua busy loop on shard 0 for about `hold_s` seconds, ended by SCRIPT KILL from
    a connection of shard 1 (which keeps being served: the stall is shard 0's alone)."""
    runner, killer = client_on(node, 0), client_on(node, 1)
    box = {}

    def run():
        try:
            runner.eval("while true do end", 0)
        except redis.ResponseError as e:
            box["error"] = str(e)

    t = threading.Thread(target=run)
    t.start()
    # Let it hold the shard for the stall's length: this sleep sets how long the stall is,
    # it synchronises nothing (SCRIPT KILL below waits until the script runs).
    time.sleep(hold_s)
    deadline = time.time() + 10
    while True:
        try:
            killer.script_kill()
            break
        except redis.ResponseError as e:
            assert "NOTBUSY" in str(e) and time.time() < deadline, e
            time.sleep(0.01)
    t.join(timeout=20)
    assert not t.is_alive()
    assert "Script killed" in box.get("error", ""), box
    runner.close()
    killer.close()


def wait_for_log(node, needle: str, timeout=10.0) -> str:
    deadline = time.time() + timeout
    while needle not in (text := node.log_text()):
        assert time.time() < deadline, f"{needle!r} never logged:\n{text[-3000:]}"
        time.sleep(0.02)
    return text


def test_a_long_script_is_named_in_a_warning_and_counted(start):
    node = start("--stall-warn-ms", "50")
    assert node.metric("pinion_loop_stalls_total") == 0
    stall_shard_zero(node)
    text = wait_for_log(node, "shard stalled")
    # tracing colours its fields when it thinks it writes to a terminal: read the plain text.
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    line = next(l for l in text.splitlines() if "shard stalled" in l)
    assert "command EVAL with 2 arguments" in line, line
    assert "shard=0" in line, line
    turn_ms = int(re.search(r"turn_ms=(\d+)", line).group(1))
    assert turn_ms >= 200, line
    assert node.metric("pinion_loop_stalls_total") >= 1
    body = metrics_text(node)
    assert labelled(body, "pinion_shard_loop_stalls_total", shard=0) >= 1
    assert labelled(body, "pinion_shard_loop_stalls_total", shard=1) == 0
    assert labelled(body, "pinion_loop_turn_max_seconds", shard=0) >= 0.2


def test_warnings_are_off_at_zero_but_turns_are_still_measured(start):
    node = start("--stall-warn-ms", "0")
    stall_shard_zero(node)
    body = metrics_text(node)
    assert labelled(body, "pinion_loop_turn_max_seconds", shard=0) >= 0.2
    assert node.metric("pinion_loop_stalls_total") == 0
    assert "shard stalled" not in node.log_text()


def test_loop_turn_histogram_in_metrics_and_the_dump(start):
    node = start()
    r = node.client()
    for i in range(200):
        r.set(f"k{i}", i)
    body = metrics_text(node)
    for shard in (0, 1):
        assert labelled(body, "pinion_loop_turn_seconds_count", shard=shard) > 0
        p50 = labelled(body, "pinion_loop_turn_seconds", shard=shard, quantile=0.5)
        p99 = labelled(body, "pinion_loop_turn_seconds", shard=shard, quantile=0.99)
        mx = labelled(body, "pinion_loop_turn_max_seconds", shard=shard)
        assert 0 < p50 <= p99 <= mx < 5, (shard, p50, p99, mx)
    # Not mixed into the command-family latency summary.
    assert 'pinion_latency_seconds{op="loop_turn"' not in body
    node.proc.send_signal(signal.SIGUSR1)
    deadline = time.time() + 5
    while not (node.hist.exists() and "op=loop_turn" in node.hist.read_text()):
        assert time.time() < deadline, "no loop_turn histogram in the dump"
        time.sleep(0.05)
    text = node.hist.read_text()
    for label in ("all", "0", "1"):
        m = re.search(
            rf"shard={label} op=loop_turn unit=us\n(.*?)#\[Max\s+=\s+[\d.]+, Total count\s+=\s+(\d+)\]",
            text,
            re.S,
        )
        assert m and int(m.group(2)) > 0, label
    r.close()


def fill(r, n, prefix="key:"):
    pl = r.pipeline(transaction=False)
    for i in range(n):
        pl.set(f"{prefix}{i}", "v")
        if i % 20000 == 19999:
            pl.execute()
    pl.execute()


def test_flushall_frees_lazily_without_stalling_on_the_flush(start):
    # One shard, so the flush and the PINGs share its loop.
    node = start("--stall-warn-ms", "150", cores="0")
    r = node.client()
    fill(r, 1_000_000)
    used = int(r.info("memory")["used_memory"])
    r.flushall()
    # The keys are gone for every command at once; the memory accounting forgets them.
    assert r.dbsize() == 0 and r.get("key:1") is None
    assert int(r.info("memory")["used_memory"]) < used // 10
    # The shard keeps serving while what the flush dropped is freed, and finishes freeing.
    assert r.ping() is True
    r.set("after", "1")
    node.wait_metric("pinion_lazy_free_pending", 0)
    assert r.get("after") == b"1"
    # Freeing 1M keys inside the command took over 150 ms; now no stall names the flush.
    text = re.sub(r"\x1b\[[0-9;]*m", "", node.log_text())
    assert not [l for l in text.splitlines() if "shard stalled" in l and "FLUSH" in l], text[-2000:]
    r.close()


# A loop turn longer than this counts as a stall in the big-command tests (as in
# tests/test_big_hash.py: a parse or apply slice is a few ms; this leaves room for the
# loaded 2-CPU test machine's scheduling noise).
BIG_STALL_MS = 25


def hset_request(key: bytes, n: int) -> bytes:
    """One HSET of `n` fields f<i> = v<i>, as the bytes a client sends."""
    parts = [b"*%d\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n" % (2 + 2 * n, len(key), key)]
    for i in range(n):
        f, v = b"f%d" % i, b"v%d" % i
        parts.append(b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(f), f, len(v), v))
    return b"".join(parts)


def socket_on(port: int, shard: int) -> socket.socket:
    """A raw connection the node serves on `shard` (CLIENT ID says, as `client_on`)."""
    for _ in range(64):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"CLIENT ID\r\n")
        got = b""
        while not got.endswith(b"\r\n"):
            chunk = s.recv(64)
            assert chunk, f"closed after {got!r}"
            got += chunk
        if int(got[1:-2]) % 2 == shard:
            return s
        s.close()
    pytest.fail(f"no connection landed on shard {shard}")


def send_whole(port: int, req: bytes, shard: int = 0) -> bytes:
    """Send a request whole on a fresh connection of `shard`; its one-line reply."""
    s = socket_on(port, shard)
    try:
        s.sendall(req)
        got = b""
        while not got.endswith(b"\r\n"):
            chunk = s.recv(4096)
            assert chunk, f"closed after {got!r}"
            got += chunk
        return got
    finally:
        s.close()


@pytest.mark.parametrize("n", [250_000, 1_000_000])
@pytest.mark.parametrize("key_shard", [0, 1], ids=["key on its shard", "key on another shard"])
def test_a_big_hset_holds_no_loop_turn_past_the_stall_threshold(start, n, key_shard):
    # A 1M-field HSET (2M+2 arguments, 25 MB) was refused before (more than 1M arguments:
    # the connection closed). Its parse then ran in slices, but the turn that handed the
    # whole request to its shard copied the frame, parsed it again whole and copied its
    # arguments: 185-455 ms. Now the frame moves (out of the query buffer, to another shard
    # as the mesh batch's arena) and its owner reads its pairs slice by slice. The
    # connection is on shard 0; the key on shard 0 or on shard 1.
    node = start("--stall-warn-ms", str(BIG_STALL_MS))
    # The node's own measure: a run in which no loop turn of either shard ran past
    # --stall-warn-ms. Up to three runs: the test machine's 2 CPUs are shared with other
    # builds, whose preemption can stretch any turn (as in tests/test_big_hash.py); the old
    # hand-over stretched every run.
    runs = []
    for run in range(3):
        key = keys_on(key_shard, 1, f"big{run}:")[0].encode()
        req = hset_request(key, n)
        stalls = node.metric("pinion_loop_stalls_total")
        reply, lat = pings_during(node, lambda: send_whole(node.port, req, shard=0))
        new_stalls = node.metric("pinion_loop_stalls_total") - stalls
        print(f"HSET of {n} fields, key on shard {key_shard}: {len(lat)} PINGs during it, "
              f"max {lat[-1] * 1e3:.1f} ms; turns past {BIG_STALL_MS} ms: {new_stalls:.0f}")
        # The command's result is exact.
        assert reply == b":%d\r\n" % n, reply
        r = node.client()
        assert r.hlen(key) == n
        for i in (0, 1, 8_191, 8_192, 32_767, 32_768, n // 2, n - 1):
            assert r.hget(key, f"f{i}") == f"v{i}".encode()
        assert r.hget(key, f"f{n}") is None
        r.close()
        # Another client's PINGs were answered while it ran.
        assert len(lat) >= 10, lat
        runs.append(new_stalls)
        if new_stalls == 0:
            break
    text = re.sub(r"\x1b\[[0-9;]*m", "", node.log_text())
    named = [l for l in text.splitlines() if "shard stalled" in l]
    assert 0 in runs, f"turns past {BIG_STALL_MS} ms in every run: {runs}; {named[-5:]}"


def test_a_big_hset_is_atomic_to_other_clients(start):
    # Another client reads the hash's length while a 250k-field HSET is applied in slices
    # on another shard: it sees no field of it, or all of them, never part.
    node = start()
    n = 250_000
    key = keys_on(1, 1, "atomic:")[0].encode()
    req = hset_request(key, n)
    seen, stop = set(), threading.Event()

    def watch():
        r = client_on(node, 1)
        while not stop.is_set():
            seen.add(r.hlen(key))
        r.close()

    t = threading.Thread(target=watch)
    t.start()
    try:
        assert send_whole(node.port, req, shard=0) == b":%d\r\n" % n
    finally:
        stop.set()
        t.join()
    assert seen <= {0, n}, sorted(seen)[:5]
    assert node.client().hlen(key) == n

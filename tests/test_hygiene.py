"""Connection hygiene (issue 13, item 5): idle timeouts (Redis's `timeout`, Kafka's
connections.max.idle.ms), the slowloris deadline for a partly received request, the
per-source-address connection limit, and Redis's protected mode.

Deadlines here are 1 s; the node checks them every 100 ms tick. Waits poll the socket for the
close with a bound, so a test takes about as long as its deadline.
"""

import socket
import struct
import subprocess
import time

import pytest

from conftest import Node, Raw, encode


def connect(port: int, host="127.0.0.1", source: str | None = None) -> Raw:
    """A Raw client to host:port, from `source` when given (127.0.0.2 is loopback too, but
    another address)."""
    raw = Raw.__new__(Raw)
    raw.s = socket.create_connection((host, port), timeout=10, source_address=(source, 0) if source else None)
    raw.buf = b""
    return raw


def wait_closed(c: Raw, within: float) -> float:
    """Seconds until the server closes `c`; fails if it is still open after `within`."""
    t0 = time.time()
    assert c.closed_by_peer(wait=within), f"still open after {within} s"
    return time.time() - t0


def first_line(c: Raw) -> bytes:
    return c._line()


# ----- idle timeouts ----------------------------------------------------------------------

def test_an_idle_resp_client_is_closed_while_active_and_blocked_ones_stay(start):
    node = start("--client-idle-timeout-s", "1")
    idle, active, blocked = Raw(node.port), Raw(node.port), Raw(node.port)
    assert idle.cmd("PING") == b"+PONG\r\n"
    blocked.send(encode("BLPOP", "hyg:list", "0"))
    t0 = time.time()
    # The active client talks every 200 ms until the idle one is closed.
    while not idle.closed_by_peer(wait=0.2):
        assert active.cmd("PING") == b"+PONG\r\n"
        assert time.time() - t0 < 5, "the idle client was not closed"
    took = time.time() - t0
    assert took >= 0.9, f"closed after {took:.2f} s, before the 1 s timeout"
    # Another idle period for the blocked client, then it is served.
    for _ in range(8):
        assert active.cmd("PING") == b"+PONG\r\n"
        time.sleep(0.2)  # pacing the active client, not synchronisation
    assert active.cmd("RPUSH", "hyg:list", "v") == b":1\r\n"
    assert blocked.read_reply() == b"*2\r\n$8\r\nhyg:list\r\n$1\r\nv\r\n"
    # Served just now: not idle yet.
    assert blocked.cmd("PING") == b"+PONG\r\n"


def test_config_set_timeout_acts_and_config_get_reports_the_flag(start):
    node = start()
    r = node.client()
    assert r.config_get("timeout") == {"timeout": "0"}
    quiet = Raw(node.port)
    assert quiet.cmd("PING") == b"+PONG\r\n"
    assert not quiet.closed_by_peer(wait=1.5), "closed with no timeout set"
    assert r.config_set("timeout", 1)
    assert r.config_get("timeout") == {"timeout": "1"}
    # Both the client already open and a new one are closed once idle a second.
    fresh = Raw(node.port)
    assert wait_closed(quiet, 3) < 3
    assert 0.9 <= wait_closed(fresh, 3) < 3
    assert r.config_set("timeout", 0)
    r.close()

    flagged = start("--client-idle-timeout-s", "7")
    assert flagged.client().config_get("timeout") == {"timeout": "7"}


# ----- Kafka ------------------------------------------------------------------------------

def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)
def kstr(t: str): return i16(len(t)) + t.encode()


def fetch_v4(topic: str, offset: int, max_wait_ms: int) -> bytes:
    body = i32(-1) + i32(max_wait_ms) + i32(1) + i32(1 << 20) + b"\x00"
    body += i32(1) + kstr(topic) + i32(1) + i32(0) + i64(offset) + i32(1 << 20)
    payload = i16(1) + i16(4) + i32(7) + kstr("hygiene") + body
    return i32(len(payload)) + payload


def read_frame(c: Raw) -> bytes:
    while len(c.buf) < 4:
        c._fill()
    n = struct.unpack(">i", c.buf[:4])[0]
    while len(c.buf) < 4 + n:
        c._fill()
    frame, c.buf = c.buf[4 : 4 + n], c.buf[4 + n :]
    return frame


def test_an_idle_kafka_connection_is_closed_but_a_long_polling_fetch_is_not(start):
    from kafka import KafkaProducer

    node = start("--kafka-idle-timeout-ms", "1000")
    p = KafkaProducer(bootstrap_servers=f"127.0.0.1:{node.kafka_port}")
    p.send("hyg", b"one").get(timeout=10)
    p.close()
    idle = Raw(node.kafka_port)
    poller = Raw(node.kafka_port)
    t0 = time.time()
    # A fetch at the end of the partition waits up to 2.5 s for data: owed a reply, not idle.
    poller.send(fetch_v4("hyg", 1, 2500))
    assert 0.9 <= wait_closed(idle, 4) < 4
    reply = read_frame(poller)
    assert struct.unpack(">i", reply[:4])[0] == 7  # correlation id
    assert time.time() - t0 >= 2.4
    # Answered just now, so still open, and served again.
    poller.send(fetch_v4("hyg", 0, 0))
    assert b"one" in read_frame(poller)


# ----- slowloris --------------------------------------------------------------------------

def test_a_half_sent_request_is_closed_but_a_slow_steady_large_one_completes(start):
    node = start("--partial-frame-timeout-s", "1")
    half = Raw(node.port)
    half.send(b"*3\r\n$3\r\nSET\r\n$5\r\nhalf:\r\n$100\r\nabc")
    dribble = Raw(node.port)
    dribble.send(b"*3\r\n$3\r\nSET\r\n$1\r\nd\r\n$1000\r\n")
    steady = Raw(node.port)
    value = b"x" * (1 << 20)
    frame = encode("SET", "big", value)
    t0 = time.time()
    # 1 MiB in 50 KiB pieces every 100 ms: about 2 s at 500 KB/s, past the 1 s deadline.
    # Meanwhile the dribbler sends one byte every 100 ms (10 B/s, under the 1 KiB/s floor).
    dribbled, closed = False, None
    for i in range(0, len(frame), 50 << 10):
        steady.send(frame[i : i + (50 << 10)])
        if not dribbled:
            try:
                dribble.send(b"x")
            except (BrokenPipeError, ConnectionResetError):
                dribbled = True
        time.sleep(0.1)  # the pace of the slow client under test
    assert time.time() - t0 > 1.5
    assert steady.read_reply() == b"+OK\r\n"
    assert wait_closed(half, 3) < 3
    assert wait_closed(dribble, 3) < 3
    assert steady.cmd("STRLEN", "big") == b":1048576\r\n"
    assert "arrives too slowly" in node.log_text()


# ----- per-address limit ------------------------------------------------------------------

def test_connections_per_source_address_are_limited(start):
    node = start("--max-connections-per-ip", "2")
    a1 = connect(node.port, source="127.0.0.2")
    a2 = connect(node.port, source="127.0.0.2")
    assert a1.cmd("PING") == b"+PONG\r\n" and a2.cmd("PING") == b"+PONG\r\n"
    a3 = connect(node.port, source="127.0.0.2")
    assert a3.read_reply() == b"-ERR max number of clients per address reached\r\n"
    assert wait_closed(a3, 3) < 3
    # Kafka counts against the same address, and is closed without RESP text.
    k = connect(node.kafka_port, source="127.0.0.2")
    k.s.settimeout(3)
    assert k.s.recv(100) == b""
    # Another address has its own count.
    others = [connect(node.port, source="127.0.0.1") for _ in range(2)]
    assert all(o.cmd("PING") == b"+PONG\r\n" for o in others)
    # A slot frees when a connection closes.
    a1.close()
    deadline = time.time() + 5
    while True:
        a4 = connect(node.port, source="127.0.0.2")
        reply = a4.cmd("PING")
        if reply == b"+PONG\r\n":
            break
        assert time.time() < deadline, "the closed connection still counts"
        a4.close()


# ----- protected mode ---------------------------------------------------------------------

def outside_address() -> str | None:
    """An IPv4 address of this machine other than loopback."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for a in out.split():
        if "." in a and not a.startswith("127."):
            return a
    return None


class Bound(Node):
    """A node whose RESP listener binds 0.0.0.0 instead of the fixtures' 127.0.0.1."""

    def launch(self):
        self.args = [f"0.0.0.0:{self.port}" if a == f"127.0.0.1:{self.port}" else a for a in self.args]
        super().launch()


@pytest.fixture
def bound(tmp_path):
    nodes = []

    def _start(*flags):
        sub = tmp_path / f"bound{len(nodes)}"
        sub.mkdir()
        n = Bound(sub, *flags)
        nodes.append(n)
        return n

    yield _start
    for n in nodes:
        assert n.stop() == 0, n.log_text()[-3000:]


def test_protected_mode_refuses_remote_clients_without_a_password(bound):
    ip = outside_address()
    if ip is None:
        pytest.skip("this machine has no address other than loopback (hostname -I)")
    node = bound()
    remote = connect(node.port, host=ip)
    line = first_line(remote)
    assert line.startswith(b"-DENIED Redis is running in protected mode"), line
    assert b"--protected-mode no" in line
    assert wait_closed(remote, 3) < 3
    assert node.client().ping()  # loopback is served

    with_password = bound("--requirepass", "s3cret")
    remote = connect(with_password.port, host=ip)
    assert remote.cmd("AUTH", "s3cret") == b"+OK\r\n"

    open_node = bound("--protected-mode", "no")
    for host in (ip, "127.0.0.1"):
        assert connect(open_node.port, host=host).cmd("PING") == b"+PONG\r\n"

"""Fixtures that start the real `pinion` binary and connect real clients to it.

The binary is taken from $PINION_BIN (tools/test.sh builds it in release mode), else from
target/release or target/debug. Every node gets free loopback ports and its own data
folder, runs with 2 shards, and is stopped with SIGTERM at the end of the test, which also
checks that it exits 0 (graceful shutdown is part of every test).
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent


def binary(name: str = "pinion", env: str = "PINION_BIN") -> str:
    """A workspace binary: $env if set, else target/release or target/debug."""
    if os.environ.get(env):
        return os.environ[env]
    for kind in ("release", "debug"):
        p = ROOT / "target" / kind / name
        if p.exists():
            return str(p)
    raise RuntimeError(f"{name} binary not found: run `cargo build --release` or set {env}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_cpus() -> str:
    cpus = sorted(os.sched_getaffinity(0))
    return ",".join(str(c) for c in (cpus[:2] if len(cpus) >= 2 else cpus * 2))


# Redis Cluster's key slot function, to pick keys that land on a chosen shard.
def crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key: bytes) -> int:
    s = key.find(b"{")
    if s != -1:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1 : e]
    return crc16(key) % 16384


def shard_of(key, nshards=2) -> int:
    if isinstance(key, str):
        key = key.encode()
    slot = key_slot(key)
    for i in range(nshards):
        if i * 16384 // nshards <= slot < (i + 1) * 16384 // nshards:
            return i
    raise AssertionError("unreachable")


def keys_on(shard: int, n: int, prefix="k", nshards=2):
    out, i = [], 0
    while len(out) < n:
        k = f"{prefix}{i}"
        if shard_of(k, nshards) == shard:
            out.append(k)
        i += 1
    return out


class Node:
    def __init__(self, tmp: Path, *flags: str, cores: str | None = None):
        self.port = free_port()
        self.kafka_port = free_port()
        self.admin_port = free_port()
        flags = list(flags)
        if "--data-dir" in flags:
            i = flags.index("--data-dir")
            self.data = Path(flags[i + 1])
            del flags[i : i + 2]
        else:
            self.data = tmp / "data"
        self.hist = tmp / "hist.txt"
        self.log_path = tmp / "pinion.log"
        self.args = [
            binary(),
            "--cores", cores or two_cpus(),
            "--resp-listen", f"127.0.0.1:{self.port}",
            "--kafka-listen", f"127.0.0.1:{self.kafka_port}",
            "--admin-listen", f"127.0.0.1:{self.admin_port}",
            "--data-dir", str(self.data),
            "--hist-dump", str(self.hist),
            *flags,
        ]
        self.log = open(self.log_path, "wb")
        self.launch()

    def restart(self):
        """Start the same node again (same ports, same data) after it stopped or was killed."""
        assert self.proc.poll() is not None, "stop or kill the node first"
        self.log = open(self.log_path, "ab")
        self.launch()

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def launch(self):
        # Ready means this process logged "pinion ready". A bare connect is not enough: right
        # after a restart the previous process's listener can linger in the kernel (its
        # io_uring is torn down asynchronously) and accept connections for a moment.
        readies = self.log_path.read_text(errors="replace").count("pinion ready") if self.log_path.exists() else 0
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pinion exited early:\n{self.log_path.read_text()}")
            if self.log_path.read_text(errors="replace").count("pinion ready") > readies:
                return
            time.sleep(0.02)
        raise RuntimeError("pinion did not become ready")

    def client(self, **kw) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10, **kw)

    def cli(self, *args: str, input: bytes | None = None, check=True) -> str:
        r = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            input=input, capture_output=True, timeout=30,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"redis-cli {args} failed: {r.stderr.decode()}")
        return r.stdout.decode()

    def stop(self, sig=signal.SIGTERM, timeout=20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("pinion did not stop within the timeout")
        self.log.close()
        return self.proc.returncode

    def metric(self, name: str) -> int:
        import re
        import urllib.request

        body = urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=5).read().decode()
        m = re.search(rf"^{re.escape(name)} (\d+)", body, re.M)
        assert m, f"{name} not in /metrics"
        return int(m.group(1))

    def wait_metric(self, name: str, value: int, timeout=10.0):
        """Wait until a counter or gauge reads `value` (connections close asynchronously)."""
        deadline = time.time() + timeout
        while (v := self.metric(name)) != value:
            assert time.time() < deadline, f"{name} stayed {v}, expected {value}"
            time.sleep(0.02)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start(tmp_path):
    """Factory: start(*flags) -> Node. Every node started is stopped and must exit 0."""
    nodes = []

    def _start(*flags, cores=None):
        sub = tmp_path / f"node{len(nodes)}"
        sub.mkdir()
        n = Node(sub, *flags, cores=cores)
        nodes.append(n)
        return n

    yield _start
    for n in nodes:
        rc = n.stop()
        assert rc == 0, f"pinion exited {rc}:\n{n.log_text()[-3000:]}"
        assert "panicked" not in n.log_text()


@pytest.fixture
def node(start):
    return start()


@pytest.fixture
def r(node):
    c = node.client()
    yield c
    c.close()


def encode(*args) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Raw:
    """A bare socket speaking RESP, for exact bytes and malformed input."""

    def __init__(self, port: int, timeout=10.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes):
        self.s.sendall(data)

    def cmd(self, *args) -> bytes:
        self.send(encode(*args))
        return self.read_reply()

    def _fill(self):
        chunk = self.s.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed by server")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_reply(self) -> bytes:
        """One whole reply, returned as its raw bytes."""
        line = self._line()
        out = line + b"\r\n"
        t = line[:1]
        if t in (b"$", b"="):
            n = int(line[1:])
            if n >= 0:
                while len(self.buf) < n + 2:
                    self._fill()
                out += self.buf[: n + 2]
                self.buf = self.buf[n + 2 :]
        elif t in (b"*", b"~", b">", b"%"):
            n = int(line[1:])
            for _ in range(max(n, 0) * (2 if t == b"%" else 1)):
                out += self.read_reply()
        return out

    def closed_by_peer(self, wait=5.0) -> bool:
        """True if the server closes (EOF or reset) within `wait` seconds."""
        self.s.settimeout(wait)
        try:
            while True:
                if not self.s.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()

"""pinion-control, the control plane, through its real binary.

Operator commands go through the real CLI (`pinion-control add-node ... --json`). Nodes are
fake members written here in Python: they speak the control protocol (HMAC-SHA256 frames
over a per-connection nonce and sequence), register, and answer two-phase commit (vote yes
on PREPARE, apply on COMMIT, ack). The binary is $PINION_CONTROL_BIN, else target/release or
target/debug.
"""

import hashlib
import hmac
import json
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import binary, free_port

SLOTS = 16384


def control_bin() -> str:
    return binary("pinion-control", "PINION_CONTROL_BIN")


def wait_for(cond, timeout=15.0, what="condition"):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Client:
    """The control protocol: the server's 16-byte nonce, then frames of
    len u32 | HMAC-SHA256(secret, dir | nonce | seq u64 | payload) | JSON payload."""

    def __init__(self, port: int, secret: bytes, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.secret = secret
        self.nonce = self._read(16)
        self.out_seq = 0
        self.in_seq = 0

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("closed by the control plane")
            buf += chunk
        return buf

    def _mac(self, side: bytes, seq: int, payload: bytes) -> bytes:
        msg = side + self.nonce + struct.pack(">Q", seq) + payload
        return hmac.new(self.secret, msg, hashlib.sha256).digest()

    def send(self, msg: dict):
        payload = json.dumps(msg).encode()
        mac = self._mac(b"C", self.out_seq, payload)
        self.out_seq += 1
        self.sock.sendall(struct.pack(">I", 32 + len(payload)) + mac + payload)

    def recv(self) -> dict:
        (n,) = struct.unpack(">I", self._read(4))
        body = self._read(n)
        mac, payload = body[:32], body[32:]
        assert hmac.compare_digest(mac, self._mac(b"S", self.in_seq, payload)), "server frame fails its MAC"
        self.in_seq += 1
        return json.loads(payload)

    def closed_by_peer(self, wait=5.0) -> bool:
        self.sock.settimeout(wait)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class Member(threading.Thread):
    """A fake node: registers, then answers 2PC as a correct participant would."""

    def __init__(self, port: int, secret: bytes, node: int, shards: int):
        super().__init__(daemon=True)
        self.c = Client(port, secret)
        self.c.send({"type": "register", "node": node, "shards": shards})
        self.hello = self.c.recv()
        self.c.sock.settimeout(None)
        self.committed_epoch = 0
        self.prepared = None
        self.lock = threading.Lock()
        if self.hello.get("type") == "registered":
            self.start()

    def run(self):
        try:
            while True:
                m = self.c.recv()
                with self.lock:
                    self.handle(m)
        except (EOFError, OSError):
            return

    def handle(self, m):
        t = m["type"]
        if t == "prepare":
            self.prepared = m["epoch"]
            self.c.send({"type": "vote", "epoch": m["epoch"], "yes": True})
        elif t == "decide":
            if m["commit"] and self.prepared == m["epoch"]:
                self.committed_epoch = m["epoch"]
            if self.prepared == m["epoch"]:
                self.prepared = None
            self.c.send({"type": "ack", "epoch": m["epoch"]})
        elif t == "catchup":
            self.committed_epoch = max(self.committed_epoch, m["map"]["epoch"])

    def heartbeat(self, busy):
        with self.lock:
            self.c.send({"type": "heartbeat", "shards": [{"busy": b} for b in busy]})

    def stop(self):
        # shutdown() wakes the reader thread blocked in recv; close() alone does not.
        try:
            self.c.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.c.close()
        if self.is_alive():
            self.join(timeout=5)
            assert not self.is_alive(), "member thread did not stop"


class Control:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.data = tmp / "control-data"
        self.secret_file = tmp / "secret"
        self.secret_file.write_text("test-secret-0123456789abcdef\n")
        self.secret = b"test-secret-0123456789abcdef"
        self.log_path = tmp / "control.log"
        self.members = []
        self.launch()

    def launch(self):
        readies = self.log_path.read_text().count("pinion-control listening") if self.log_path.exists() else 0
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [control_bin(), "serve", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", str(self.data), "--secret-file", str(self.secret_file)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 15
        while self.log_path.read_text().count("pinion-control listening") <= readies:
            assert self.proc.poll() is None, f"pinion-control exited:\n{self.log_text()}"
            assert time.time() < deadline, "pinion-control did not start"
            time.sleep(0.02)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def run(self, *args, secret_file=None):
        return subprocess.run(
            [control_bin(), *args, "--addr", f"127.0.0.1:{self.port}",
             "--secret-file", str(secret_file or self.secret_file)],
            capture_output=True, timeout=60,
        )

    def cli(self, *args):
        """Runs a CLI command with --json; returns the parsed result (fails on an error)."""
        r = self.run(*args, "--json")
        assert r.returncode == 0, f"{args}: {r.stdout.decode()} {r.stderr.decode()}"
        return json.loads(r.stdout)

    def add(self, node, weight=1, shards=2):
        return self.cli("add-node", "--id", str(node), "--resp", f"127.0.0.1:{7000 + node}",
                        "--kafka", f"127.0.0.1:{9000 + node}", "--shards", str(shards),
                        "--weight", str(weight))

    def member(self, node, shards=2) -> Member:
        m = Member(self.port, self.secret, node, shards)
        self.members.append(m)
        return m

    def nodes(self):
        return {n["id"]: n for n in self.cli("nodes")["nodes"]}

    def wait_state(self, node, state):
        wait_for(lambda: self.nodes()[node]["state"] == state, what=f"node {node} {state}")

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self) -> int:
        for m in self.members:
            m.stop()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def control(tmp_path):
    c = Control(tmp_path)
    yield c
    rc = c.stop()
    assert rc == 0, f"pinion-control exited {rc}:\n{c.log_text()[-3000:]}"
    assert "panicked" not in c.log_text()


def slot_shares(m):
    counts = {}
    for r in m["slots"]:
        counts[r["node"]] = counts.get(r["node"], 0) + r["end"] - r["start"] + 1
    return counts


def three_active(control):
    for n in (1, 2, 3):
        control.add(n)
    for n in (1, 2, 3):
        control.member(n)
        control.wait_state(n, "active")


def test_nodes_join_and_a_weight_two_node_gets_two_fifths(control):
    assert control.cli("status")["epoch"] == 0
    r = control.add(1)
    assert r["committed"] and r["epoch"] == 1
    assert control.nodes()[1]["state"] == "joining"
    m = control.cli("map")
    assert m["slots"] == [] and m["version"] == 1
    control.add(2)
    control.add(3)
    for n in (1, 2, 3):
        control.member(n)
        control.wait_state(n, "active")
    m = control.cli("map")
    shares = slot_shares(m)
    assert sum(shares.values()) == SLOTS
    for n in (1, 2, 3):
        assert abs(shares[n] / SLOTS - 1 / 3) < 0.1 / 3, shares
    # Both shards of each node own slots.
    assert {(r["node"], r["shard"]) for r in m["slots"]} == {(n, s) for n in (1, 2, 3) for s in (0, 1)}
    # Every member applied the commits it voted on.
    wait_for(lambda: all(x.committed_epoch == m["epoch"] for x in control.members), what="members at the map's epoch")

    epoch = m["epoch"]
    control.add(4, weight=2)
    control.member(4)
    control.wait_state(4, "active")
    m2 = control.cli("map")
    assert m2["epoch"] == epoch + 2  # added (joining), then active
    shares2 = slot_shares(m2)
    assert abs(shares2[4] / SLOTS - 0.4) <= 0.04, shares2
    # Only slots that went to node 4 moved.
    def owners(m):
        o = {}
        for r in m["slots"]:
            for s in range(r["start"], r["end"] + 1):
                o[s] = r["node"]
        return o
    before, after = owners(m), owners(m2)
    moved = [s for s in range(SLOTS) if before[s] != after[s]]
    assert moved and all(after[s] == 4 for s in moved)
    st = control.cli("status")
    assert st["epoch"] == m2["epoch"] and st["phase"] == "idle" and sorted(st["connected"]) == [1, 2, 3, 4]


def test_set_weight_drain_and_remove(control):
    three_active(control)
    e = control.cli("status")["epoch"]
    r = control.cli("set-weight", "--id", "2", "--weight", "3")
    assert r["epoch"] == e + 1 and r["moved"]["slots"] > 0
    shares = slot_shares(control.cli("map"))
    assert abs(shares[2] / SLOTS - 0.6) <= 0.06, shares

    r = control.cli("drain", "--id", "1")
    assert r["epoch"] == e + 2
    n = control.nodes()
    assert n[1]["state"] == "draining" and n[1]["slots"] == 0
    assert n[2]["slots"] + n[3]["slots"] == SLOTS

    r = control.cli("remove-node", "--id", "1")
    assert r["epoch"] == e + 3
    assert control.nodes()[1]["state"] == "removed"
    # A removed node may not register again; an unknown node neither.
    for bad in (1, 99):
        m = Member(control.port, control.secret, bad, 2)
        assert m.hello == {"type": "reply", "ok": False, "error": m.hello["error"]}
        assert m.c.closed_by_peer()
        m.c.close()
    assert "refused node" in control.log_text()
    # Errors from the CLI: unknown node, bad weight.
    r = control.run("set-weight", "--id", "42", "--weight", "1")
    assert r.returncode != 0 and b"not in the map" in r.stderr
    # Nothing moved by a rebalance without load reports.
    r = control.cli("rebalance")
    assert r["changed"] is False


def test_a_change_aborts_when_a_voter_does_not_answer(control):
    three_active(control)
    e = control.cli("status")["epoch"]
    control.members[2].stop()  # node 3 goes away without being removed
    r = control.run("set-weight", "--id", "1", "--weight", "2", "--json")
    assert r.returncode != 0 and b"aborted" in r.stdout, r.stdout
    st = control.cli("status")
    assert st["epoch"] == e and st["last_epoch"] == e + 1  # the aborted epoch is burnt
    # Removing the dead node does not need its vote.
    r = control.cli("remove-node", "--id", "3")
    assert r["epoch"] == e + 2
    assert slot_shares(control.cli("map")).keys() == {1, 2}


def test_kill9_and_restart_keep_the_map_and_epoch(control):
    three_active(control)
    control.cli("set-weight", "--id", "3", "--weight", "2")
    before = control.cli("map")
    control.kill9()
    for m in control.members:
        m.stop()
    control.members.clear()
    control.launch()
    after = control.cli("map")
    assert after == before
    assert control.cli("status")["epoch"] == before["epoch"]
    # The members come back, and the next change commits above the old epoch.
    for n in (1, 2, 3):
        control.member(n)
    wait_for(lambda: sorted(control.cli("status")["connected"]) == [1, 2, 3], what="members reconnected")
    r = control.cli("set-weight", "--id", "1", "--weight", "2")
    assert r["epoch"] == before["epoch"] + 1
    # And once more, with SIGTERM this time.
    assert control.stop() == 0
    control.members.clear()
    control.launch()
    assert control.cli("map")["epoch"] == before["epoch"] + 1


def test_a_wrong_secret_or_a_bad_frame_is_refused(control, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-secret-0123456789\n")
    r = control.run("status", secret_file=wrong)
    assert r.returncode != 0 and b"secret" in r.stderr
    # A node with the wrong secret is cut off at its first frame.
    c = Client(control.port, b"not-the-secret-0123456789")
    c.send({"type": "register", "node": 1, "shards": 2})
    assert c.closed_by_peer()
    c.close()
    assert "refused unauthenticated peer" in control.log_text()
    # A replayed frame (same bytes on a new connection, so another nonce) is refused too.
    c = Client(control.port, control.secret)
    payload = json.dumps({"type": "op", "op": {"cmd": "status"}}).encode()
    forged = hmac.new(control.secret, b"C" + b"\0" * 16 + struct.pack(">Q", 0) + payload, hashlib.sha256).digest()
    c.sock.sendall(struct.pack(">I", 32 + len(payload)) + forged + payload)
    assert c.closed_by_peer()
    c.close()
    # An oversized length prefix is refused before reading it.
    c = Client(control.port, control.secret)
    c.sock.sendall(struct.pack(">I", 1 << 31))
    assert c.closed_by_peer()
    c.close()
    # A good client still gets answers, and a node message before register is refused.
    c = Client(control.port, control.secret)
    c.send({"type": "op", "op": {"cmd": "status"}})
    assert c.recv()["ok"] is True
    c.close()
    c = Client(control.port, control.secret)
    c.send({"type": "vote", "epoch": 1, "yes": True})
    assert c.recv() == {"type": "reply", "ok": False, "error": "register first"}
    assert c.closed_by_peer()
    c.close()


def test_heartbeats_feed_the_load_factors(control):
    three_active(control)
    hot, cold = control.members[0], control.members[1:]
    # Node 1 reports itself three times as busy as the others, for a while.
    for _ in range(20):
        hot.heartbeat([0.9, 0.9])
        for m in cold:
            m.heartbeat([0.3, 0.3])
    wait_for(lambda: all(n["load"] is not None for n in control.nodes().values()), what="load reported")
    before = control.nodes()[1]["slots"]
    r = control.cli("rebalance")
    assert r["committed"] and r["moved"]["slots"] > 0
    n = control.nodes()
    assert n[1]["slots"] < before and all(f < 1 for f in n[1]["load_factors"]), n[1]

"""pinion-control with `--store etcd://`: two control planes against a real etcd (Debian's
etcd-server, started here on free loopback ports with a temporary data directory), one
leading and one standing by.

Operators use the real CLI; nodes are fake members (the control protocol in Python, as in
test_control.py) that follow the leader: each tries the control planes in turn, a standby
refuses it and names the leader, and when its control plane dies it reconnects. A member can
hold its vote or its ack, which stops a change in the middle (votes awaited, or decision
logged and acks awaited) so the leader can be killed there. Every member checks, at every
map it installs, that it never sees two different maps at one epoch.

The binary is $PINION_CONTROL_BIN, else target/release or target/debug. Without an `etcd`
binary the tests skip, except in CI (where tools/test.sh installs etcd-server).
"""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port
from test_control import SLOTS, Client, control_bin, slot_shares, wait_for

ETCD = shutil.which("etcd")
pytestmark = pytest.mark.skipif(
    ETCD is None and not os.environ.get("CI"),
    reason="no etcd binary (Debian: apt-get install etcd-server; tools/test.sh installs it)",
)

SECRET = b"test-secret-0123456789abcdef"
# LEADER_LEASE_TTL_S in control/src/limits.rs: a standby takes over within about this long.
LEASE_TTL_S = 5


class Etcd:
    def __init__(self, tmp: Path):
        assert ETCD, "etcd is not installed (tools/test.sh installs etcd-server)"
        self.port, peer = free_port(), free_port()
        self.log = open(tmp / "etcd.log", "wb")
        client, peer_url = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{peer}"
        self.proc = subprocess.Popen(
            [ETCD, "--name", "pinion-test", "--data-dir", str(tmp / "etcd-data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", f"pinion-test={peer_url}", "--initial-cluster-state", "new"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )

        def healthy():
            assert self.proc.poll() is None, f"etcd exited:\n{(tmp / 'etcd.log').read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=1) as r:
                    return json.loads(r.read()).get("health") == "true"
            except OSError:
                return False

        wait_for(healthy, timeout=30, what="etcd healthy")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


class Plane:
    """One `pinion-control serve --store etcd://...` process."""

    def __init__(self, tmp: Path, name: str, etcd: Etcd):
        self.name = name
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.data = tmp / f"{name}-data"
        self.secret_file = tmp / "secret"
        self.secret_file.write_bytes(SECRET + b"\n")
        self.log_path = tmp / f"{name}.log"
        self.store = f"etcd://127.0.0.1:{etcd.port}"
        self.proc = None
        self.launch()

    def launch(self):
        starts = self.log_text().count("pinion-control listening")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [control_bin(), "serve", "--listen", self.addr, "--data-dir", str(self.data),
             "--secret-file", str(self.secret_file), "--store", self.store],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for(lambda: self.log_text().count("pinion-control listening") > starts
                 or self.proc.poll() is not None, what=f"{self.name} listening")
        assert self.proc.poll() is None, f"{self.name} exited:\n{self.log_text()[-3000:]}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def run(self, *args):
        return subprocess.run(
            [control_bin(), *args, "--addr", self.addr, "--secret-file", str(self.secret_file)],
            capture_output=True, timeout=60,
        )

    def cli(self, *args):
        r = self.run(*args, "--json")
        assert r.returncode == 0, f"{self.name} {args}: {r.stdout.decode()} {r.stderr.decode()}"
        return json.loads(r.stdout)

    def role(self):
        r = self.run("status", "--json")
        if r.returncode != 0:
            return None
        st = json.loads(r.stdout)
        return "leader" if st.get("store", "").endswith(", leading") else st.get("role")

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.log.close()
        return self.proc.returncode


class Member(threading.Thread):
    """A fake node that follows the leader and checks it never serves two maps at one epoch.

    `hold_votes` / `hold_acks`: ignore prepares / do not ack decisions, while set."""

    def __init__(self, node: int, planes, shards=2):
        super().__init__(daemon=True)
        self.node, self.planes, self.shards = node, planes, shards
        self.hold_votes = self.hold_acks = False
        self.served = {}  # epoch -> checksum of the map installed at that epoch
        self.prepared = None  # (epoch, checksum)
        self.violations = []
        self.connected_to = None
        self.registrations = 0
        self.stopping = False
        self.c = None
        self.start()

    def install(self, epoch, checksum):
        if self.served.get(epoch, checksum) != checksum:
            self.violations.append(f"node {self.node}: two maps at epoch {epoch}")
        self.served[epoch] = checksum

    def connect(self):
        """Registers with whichever control plane accepts (the leader); None if none does."""
        for p in self.planes:
            try:
                c = Client(p.port, SECRET, timeout=5)
                c.send({"type": "register", "node": self.node, "shards": self.shards})
                hello = c.recv()
            except (OSError, EOFError):
                continue
            if hello.get("type") == "registered":
                c.sock.settimeout(None)
                self.connected_to = p.name
                self.registrations += 1
                return c
            c.close()  # a standby: it named the leader, and the loop tries the others
        return None

    def run(self):
        while not self.stopping:
            self.c = self.connect()
            if self.c is None:
                time.sleep(0.1)
                continue
            try:
                while True:
                    self.handle(self.c.recv())
            except (EOFError, OSError):
                self.connected_to = None

    def handle(self, m):
        t = m["type"]
        if t == "prepare":
            if self.hold_votes:
                return
            self.prepared = (m["epoch"], m["map"]["checksum"])
            self.c.send({"type": "vote", "epoch": m["epoch"], "yes": True})
        elif t == "decide":
            e = m["epoch"]
            if self.prepared and self.prepared[0] == e:
                if m["commit"]:
                    self.install(e, self.prepared[1])
                self.prepared = None
            if not self.hold_acks:
                self.c.send({"type": "ack", "epoch": e})
        elif t == "catchup":
            self.install(m["map"]["epoch"], m["map"]["checksum"])

    def stop(self):
        self.stopping = True
        if self.c is not None:
            try:
                self.c.sock.shutdown(2)
            except OSError:
                pass
            self.c.close()
        self.join(timeout=10)


@pytest.fixture
def ha(tmp_path):
    etcd = Etcd(tmp_path)
    a = Plane(tmp_path, "a", etcd)
    wait_for(lambda: a.role() == "leader", what="a leading")
    b = Plane(tmp_path, "b", etcd)
    wait_for(lambda: b.role() == "standby", what="b standing by")
    members = []
    yield a, b, members
    for m in members:
        m.stop()
        assert not m.violations, m.violations
    for p in (a, b):
        rc = p.stop() if p.proc.poll() is None else 0
        assert rc in (0, -9), f"{p.name} exited {rc}:\n{p.log_text()[-3000:]}"
        assert "panicked" not in p.log_text()
    etcd.stop()


def two_active_members(a, b, members):
    # Changes sent to the standby are forwarded to the leader by the CLI.
    for n in (1, 2):
        r = b.cli("add-node", "--id", str(n), "--resp", f"127.0.0.1:{7000 + n}",
                  "--kafka", f"127.0.0.1:{9000 + n}", "--shards", "2")
        assert r["committed"]
    for n in (1, 2):
        members.append(Member(n, [b, a]))
    wait_for(lambda: {n["state"] for n in a.cli("nodes")["nodes"]} == {"active"}, what="members active")
    assert all(m.connected_to == "a" for m in members)
    return a.cli("status")["epoch"]


def test_the_standby_finishes_a_decided_change_after_kill9_of_the_leader(ha):
    a, b, members = ha
    st = b.cli("status")
    assert st["role"] == "standby" and st["leader"] == a.addr
    e = two_active_members(a, b, members)
    # A standby serves the map read-only (from etcd), the same map the leader serves.
    assert b.cli("map") == a.cli("map")

    # Decision logged, acks held: kill -9 the leader there.
    for m in members:
        m.hold_acks = True
    change = subprocess.Popen(
        [control_bin(), "set-weight", "--id", "1", "--weight", "3", "--addr", a.addr,
         "--secret-file", str(a.secret_file), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: a.cli("status")["phase"] == "committing", what="decision logged")
    killed = time.monotonic()
    a.kill9()
    assert change.wait(timeout=30) != 0  # its answer died with the leader
    for m in members:
        m.hold_acks = False

    wait_for(lambda: b.role() == "leader", timeout=3 * LEASE_TTL_S, what="b leading")
    failover_s = time.monotonic() - killed
    print(f"failover after kill -9: {failover_s:.2f} s (lease TTL {LEASE_TTL_S} s)")
    assert failover_s < 2 * LEASE_TTL_S
    assert "recovered a change in progress" in b.log_text()
    # The members follow the new leader, which re-sends the logged decision and ends it.
    wait_for(lambda: all(m.connected_to == "b" for m in members), what="members on b")
    wait_for(lambda: b.cli("status")["phase"] == "idle", what="change ended on b")
    m = b.cli("map")
    assert m["epoch"] == e + 1 and b.cli("status")["last_epoch"] == e + 1
    assert {n["id"]: n["weight"] for n in m["nodes"]} == {1: 3, 2: 1}
    assert abs(slot_shares(m)[1] / SLOTS - 0.75) < 0.075
    for x in members:
        assert x.served[e + 1] == m["checksum"], x.served

    # The old leader comes back as a standby, and serves the same map.
    a.launch()
    wait_for(lambda: a.role() == "standby", what="a standing by")
    assert a.cli("status")["leader"] == b.addr
    assert a.cli("map") == m


def test_an_undecided_change_is_aborted_and_a_deposed_leader_is_fenced(ha):
    a, b, members = ha
    e = two_active_members(a, b, members)

    # Votes held: the change is begun and undecided when the leader dies.
    members[1].hold_votes = True
    change = subprocess.Popen(
        [control_bin(), "set-weight", "--id", "2", "--weight", "2", "--addr", a.addr,
         "--secret-file", str(a.secret_file), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: a.cli("status")["phase"] == "preparing", what="change begun")
    a.kill9()
    assert change.wait(timeout=30) != 0
    members[1].hold_votes = False
    wait_for(lambda: b.role() == "leader", timeout=3 * LEASE_TTL_S, what="b leading")
    # The new leader found e + 1 begun and undecided, and aborted it (presumed abort: an
    # abort ends at once): the map stays at e, and e + 1 is burnt.
    assert f"change done epoch={e + 1} committed=false" in b.log_text()
    wait_for(lambda: b.cli("status")["phase"] == "idle", what="abort ended")
    st = b.cli("status")
    assert st["epoch"] == e and st["last_epoch"] == e + 1
    wait_for(lambda: all(m.connected_to == "b" for m in members), what="members on b")
    r = b.cli("set-weight", "--id", "2", "--weight", "2")
    assert r["committed"] and r["epoch"] == e + 2
    before = b.cli("map")
    assert all(x.served.get(e + 1) is None for x in members)
    wait_for(lambda: all(x.served.get(e + 2) == before["checksum"] for x in members), what="members at e+2")

    # Fencing: freeze the leader past its lease. The standby takes over; the old leader,
    # thawed, finds its lease gone, stops coordinating and comes back as a standby.
    a.launch()
    wait_for(lambda: a.role() == "standby", what="a standing by")
    b.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: a.role() == "leader", timeout=3 * LEASE_TTL_S, what="a leading")
    finally:
        b.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: "restarting as a standby" in b.log_text(), what="b deposed")
    assert "lost the etcd lease" in b.log_text()
    wait_for(lambda: b.role() == "standby", what="b standing by again")
    assert b.cli("status")["leader"] == a.addr
    assert a.cli("map") == before and b.cli("map") == before
    # The members, cut off by b's restart, follow a; a change through b reaches a.
    wait_for(lambda: all(m.connected_to == "a" for m in members), what="members on a")
    r = b.cli("set-weight", "--id", "1", "--weight", "2")
    assert r["committed"] and r["epoch"] == e + 3
    after = a.cli("map")
    assert after["epoch"] == e + 3 and b.cli("map") == after
    wait_for(lambda: all(x.served.get(e + 3) == after["checksum"] for x in members), what="members at e+3")


def test_an_etcd_outage_stops_coordination_until_etcd_is_back(tmp_path):
    etcd = Etcd(tmp_path)
    a = Plane(tmp_path, "a", etcd)
    try:
        wait_for(lambda: a.role() == "leader", what="a leading")
        r = a.cli("add-node", "--id", "1", "--resp", "127.0.0.1:7001", "--kafka", "127.0.0.1:9001")
        assert r["committed"] and r["epoch"] == 1
        # etcd stops answering: the leader cannot renew its lease, so once the lease has
        # run out it stops coordinating and restarts as a standby, which keeps trying etcd.
        etcd.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: "restarting as a standby" in a.log_text(), timeout=3 * LEASE_TTL_S,
                     what="a stepping down")
            assert "lost the etcd lease" in a.log_text()
            wait_for(lambda: a.log_text().count("pinion-control listening") == 2, what="a restarted")
            r = a.run("add-node", "--id", "2", "--resp", "127.0.0.1:7002", "--kafka", "127.0.0.1:9002")
            assert r.returncode != 0 and b"standby" in r.stderr, r.stderr
        finally:
            etcd.proc.send_signal(signal.SIGCONT)
        # etcd is back: the same process leads again, from the log as etcd has it.
        wait_for(lambda: a.role() == "leader", timeout=3 * LEASE_TTL_S, what="a leading again")
        r = a.cli("add-node", "--id", "2", "--resp", "127.0.0.1:7002", "--kafka", "127.0.0.1:9002")
        assert r["committed"] and r["epoch"] == 2
        assert [n["id"] for n in a.cli("map")["nodes"]] == [1, 2]
        assert a.stop() == 0
        assert "panicked" not in a.log_text()
    finally:
        if a.proc.poll() is None:
            a.kill9()
        etcd.stop()

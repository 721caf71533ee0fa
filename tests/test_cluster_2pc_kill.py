"""kill -9 at each step of a map change (issue 12): the coordinator (pinion-control) and a
participant (a pinion node) die at a chosen step of the two-phase commit, are restarted,
and afterwards every member serves one map at one epoch, the control plane's, and clients
go on.

The processes die by their test-only crash points (`PINION_CONTROL_CRASH_AT`,
`PINION_MEMBER_CRASH_AT`: an abort at that step, no clean-up, like kill -9; see
control/src/crashpoint.rs and dataplane/src/cluster/crashpoint.rs). A process is armed by
restarting it with the variable set, once the cluster has formed, so it dies in the change
the test makes (set-weight of node 1), not while the cluster forms.

Throughout, a watcher reads CLUSTER NODES (each line carries the view's epoch, and one
reply comes from one view) from every node every few milliseconds, and the test checks that
no two different maps were ever served at one epoch."""

import os
import threading
import time

import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from redis.cluster import RedisCluster

from conftest import Raw
from test_cluster import cluster_info, control, member, wait_formed  # noqa: F401 (fixture)
from test_control import wait_for

# What each crash leaves the change as: committed, or aborted (then made again).
COORDINATOR_STEPS = {
    "prepare_sent": "aborted",  # Begin logged, no decision: the restarted coordinator aborts
    "votes_in": "aborted",
    "decision_logged": "committed",  # the restarted coordinator re-sends the commit
    "decision_half_sent": "committed",
}
# The participant is restarted after the change has ended without it.
PARTICIPANT_STEPS = {
    "prepared": "aborted",  # no vote: the prepare times out; in doubt, it asks: abort
    "voted": "committed",  # in doubt, it asks: the committed map (catch-up)
    "committed": "committed",  # it serves the committed map it persisted
    "acked": "committed",
}
VICTIM = 2  # the participant that dies
TOPIC = "before"
PARTITIONS = 6
RECORDS = 300


def cluster_nodes(port: int):
    """(epoch, map) from one CLUSTER NODES reply: the map as each master's name, address and
    slot ranges, without the `myself` flag (the only part that differs between nodes)."""
    r = Raw(port, timeout=2)
    try:
        reply = r.cmd("CLUSTER", "NODES")
    finally:
        r.close()
    text = reply.split(b"\r\n", 1)[1].decode()
    epochs, masters = set(), []
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        epochs.add(int(f[6]))
        masters.append((f[0], f[1], tuple(f[8:])))
    assert len(epochs) <= 1, text
    return (epochs.pop() if epochs else 0), tuple(sorted(masters))


class Watcher(threading.Thread):
    """Reads every node's (epoch, map) until stopped; records each distinct pair seen."""

    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.seen = {}  # epoch -> {map: [node ids that served it]}
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            for i, n in enumerate(self.nodes, start=1):
                try:
                    epoch, m = cluster_nodes(n.port)
                except (OSError, ConnectionError, IndexError):
                    continue  # the node is down or restarting
                with self.lock:
                    self.seen.setdefault(epoch, {}).setdefault(m, set()).add(i)
            self.halt.wait(0.005)

    def stop(self):
        self.halt.set()
        self.join(timeout=10)
        assert not self.is_alive()

    def at(self, epoch):
        """The maps seen at `epoch`, each with the nodes that served it."""
        with self.lock:
            return {m: set(ids) for m, ids in self.seen.get(epoch, {}).items()}

    def check(self):
        with self.lock:
            twice = {e: ms for e, ms in self.seen.items() if len(ms) > 1}
        assert not twice, f"two different maps served at one epoch: {twice}"


def control_map(control):
    return control.cli("map")


def runs_by_port(m, nodes):
    """The control plane's map as CLUSTER SLOTS would list it: (first, last, RESP port)."""
    port = {i: n.port for i, n in enumerate(nodes, start=1)}
    owner = [None] * 16384
    for r in m["slots"]:
        for s in range(r["start"], r["end"] + 1):
            owner[s] = port[r["node"]]
    runs, start = [], 0
    for s in range(1, 16385):
        if s == 16384 or owner[s] != owner[start]:
            runs.append((start, s - 1, owner[start]))
            start = s
    return runs


def slots_of(n):
    reply = redis.Redis(port=n.port, socket_timeout=5).execute_command("CLUSTER", "SLOTS")
    return sorted((int(s[0]), int(s[1]), int(s[2][1])) for s in reply)


def shards_of(n):
    r = redis.Redis(port=n.port, socket_timeout=5)
    reply = r.execute_command("CLUSTER", "SHARDS")
    r.close()
    return sorted(repr(s) for s in reply)


def converged(control, nodes):
    """Every node serves the control plane's committed map, and nothing is in flight."""
    status = control.cli("status")
    if status["phase"] != "idle" or sorted(status["connected"]) != [1, 2, 3]:
        return None
    if any(cluster_info(n)["cluster_current_epoch"] != str(status["epoch"]) for n in nodes):
        return None
    m = control_map(control)
    if m["epoch"] != status["epoch"]:
        return None
    want = runs_by_port(m, nodes)
    if any(slots_of(n) != want for n in nodes):
        return None
    return m


def produce(port, topic, n, partitions):
    p = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "linger.ms": 5})
    errors = []
    for i in range(n):
        p.produce(topic, key=str(i), value=f"{topic}-{i}", partition=i % partitions,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0 and errors == []


def consume(port, topic, partitions, want):
    """Reads the given partitions from offset 0 until `want` records came."""
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": f"check-{topic}",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in partitions])
    seen = set()
    deadline = time.time() + 60
    while len(seen) < want and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        seen.add(m.value().decode())
    c.close()
    return seen


def create_topic(nodes, topic, partitions):
    # Topics are cluster-wide (the map holds them): created once, on any node.
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{nodes[0].kafka_port}"})
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    fs[topic].result(timeout=15)


def leaders(n, topic):
    md = AdminClient({"bootstrap.servers": f"127.0.0.1:{n.kafka_port}"}).list_topics(topic, timeout=10)
    return {p.id: p.leader for p in md.topics[topic].partitions.values()}


def set_weight_in_background(control, weight):
    """Runs `set-weight --id 1` in a thread (it answers when the change ends, or fails when
    the control plane dies); returns the thread and a dict that receives the result."""
    out = {}

    def go():
        out["r"] = control.run("set-weight", "--id", "1", "--weight", str(weight), "--json")

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, out


def with_env(var, value, launch):
    os.environ[var] = value
    try:
        launch()
    finally:
        del os.environ[var]


def wait_crashed(proc, log_text, var, step):
    wait_for(lambda: proc.poll() is not None, timeout=30, what=f"the crash at {step}")
    assert proc.returncode == -6, proc.returncode  # SIGABRT: the crash point, not another death
    assert f"{var}={step}: test crash point reached" in log_text()


@pytest.fixture
def three_loaded(start, control):
    """Three nodes formed, with keys and records written; a watcher running."""
    nodes = [member(start, control, i) for i in (1, 2, 3)]
    wait_formed(control, nodes)
    rc = RedisCluster(host="127.0.0.1", port=nodes[0].port, socket_timeout=10)
    for i in range(1000):
        rc.set(f"key:{i}", i)
    rc.close()
    create_topic(nodes, TOPIC, PARTITIONS)
    produce(nodes[0].kafka_port, TOPIC, RECORDS, PARTITIONS)
    watcher = Watcher(nodes)
    watcher.start()
    yield nodes, watcher
    watcher.stop()


def finish(control, nodes, watcher, outcome, epoch_before, leaders_before):
    """After the crash and the restart: one map everywhere, the expected outcome, and
    clients that go on."""
    m = wait_for(lambda: converged(control, nodes), timeout=60, what="every node on the control plane's map")
    weight = {n["id"]: n["weight"] for n in m["nodes"]}
    if outcome == "committed":
        assert m["epoch"] == epoch_before + 1 and weight[1] == 2, (m["epoch"], weight)
    else:
        # The aborted epoch is burnt; the map is the one before.
        assert m["epoch"] == epoch_before and weight[1] == 1, (m["epoch"], weight)
        assert control.cli("status")["last_epoch"] == epoch_before + 1
        # No node ever served the aborted epoch's map.
        assert not watcher.at(epoch_before + 1), watcher.at(epoch_before + 1)
        r = control.cli("set-weight", "--id", "1", "--weight", "2")
        assert r["committed"] and r["epoch"] == epoch_before + 2
        m = wait_for(lambda: converged(control, nodes), timeout=60, what="the change made again")
    # CLUSTER SLOTS and SHARDS agree on every node; so do the partitions' leaders.
    assert len({repr(slots_of(n)) for n in nodes}) == 1
    assert len({repr(shards_of(n)) for n in nodes}) == 1
    after = [leaders(n, TOPIC) for n in nodes]
    assert after[0] == after[1] == after[2], after
    # Every node's view at the final epoch was read by the watcher, and no epoch had two maps.
    wait_for(lambda: any(ids == {1, 2, 3} for ids in watcher.at(m["epoch"]).values()),
             what="the watcher reading the final map on every node")
    watcher.check()
    assert len(watcher.at(m["epoch"])) == 1
    # Acknowledged records of partitions whose leader stayed are all still there (a
    # participant that died kept its log).
    stayed = [p for p, l in after[0].items() if leaders_before[p] == l]
    assert stayed
    want = {f"{TOPIC}-{i}" for i in range(RECORDS) if i % PARTITIONS in stayed}
    assert consume(nodes[1].kafka_port, TOPIC, stayed, len(want)) == want
    # Clients go on: redis-py RedisCluster and confluent-kafka, on the map as it is now.
    rc = RedisCluster(host="127.0.0.1", port=nodes[2].port, socket_timeout=10)
    for i in range(1000):
        rc.set(f"after:{i}", i)
    assert all(rc.get(f"after:{i}") == str(i).encode() for i in range(1000))
    rc.close()
    create_topic(nodes, "after", PARTITIONS)
    produce(nodes[2].kafka_port, "after", RECORDS, PARTITIONS)
    want = {f"after-{i}" for i in range(RECORDS)}
    assert consume(nodes[0].kafka_port, "after", range(PARTITIONS), RECORDS) == want


@pytest.mark.parametrize("step", list(COORDINATOR_STEPS))
def test_coordinator_killed_at_each_2pc_step(step, three_loaded, control):
    nodes, watcher = three_loaded
    epoch = control.cli("status")["epoch"]
    leaders_before = leaders(nodes[0], TOPIC)
    # Arm the coordinator: restart it with the crash point set.
    assert control.stop() == 0
    with_env("PINION_CONTROL_CRASH_AT", step, control.launch)
    wait_formed(control, nodes)
    t, out = set_weight_in_background(control, 2)
    wait_crashed(control.proc, control.log_text, "PINION_CONTROL_CRASH_AT", step)
    t.join(timeout=60)
    assert out["r"].returncode != 0  # the operator's command lost its control plane
    control.log.close()
    control.launch()
    finish(control, nodes, watcher, COORDINATOR_STEPS[step], epoch, leaders_before)


@pytest.mark.parametrize("step", list(PARTICIPANT_STEPS))
def test_participant_killed_at_each_2pc_step(step, three_loaded, control):
    nodes, watcher = three_loaded
    victim = nodes[VICTIM - 1]
    epoch = control.cli("status")["epoch"]
    leaders_before = leaders(nodes[0], TOPIC)
    # Arm the participant: restart it with the crash point set.
    assert victim.stop() == 0
    with_env("PINION_MEMBER_CRASH_AT", step, victim.restart)
    wait_formed(control, nodes)
    t, out = set_weight_in_background(control, 2)
    wait_crashed(victim.proc, victim.log_text, "PINION_MEMBER_CRASH_AT", step)
    # The change ends without the victim (the prepare times out, or the ack wait ends).
    t.join(timeout=60)
    r = out["r"]
    if PARTICIPANT_STEPS[step] == "committed":
        assert r.returncode == 0, r.stdout + r.stderr
    else:
        assert r.returncode != 0 and b"aborted" in r.stdout, r.stdout + r.stderr
    victim.restart()
    finish(control, nodes, watcher, PARTICIPANT_STEPS[step], epoch, leaders_before)

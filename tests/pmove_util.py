"""What the partition-move tests (test_cluster_partition_move*.py) share: a topic of 12
partitions with an idempotent confluent-kafka producer running throughout (`KafkaWriter`,
`topic_with_writer`, `two_with_writer`), every record read back from the partitions'
leaders (`read_all`), and the check that each acknowledged record is stored once, at the
offset it was acknowledged at, with its value, and that each partition's offsets are dense
(`check_every_record`)."""

import os
import threading
from contextlib import contextmanager

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from test_cluster import member
from test_cluster_2pc_kill import create_topic, leaders
from test_cluster_move import wait_settled
from test_control import wait_for

TOPIC = "moving"
PARTITIONS = 12


class KafkaWriter(threading.Thread):
    """Produces `r<N>` round robin over the partitions, idempotently, until stopped;
    remembers each acknowledged record's (partition, offset) and every delivery error."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.p = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "enable.idempotence": True,
                           "acks": "all", "linger.ms": 2, "retry.backoff.ms": 50,
                           "message.timeout.ms": 120_000})
        self.acked = {}
        self.errors = []
        self.slowest = 0.0
        self.stop = threading.Event()

    def delivered(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.acked[(msg.partition(), msg.offset())] = msg.value()
            self.slowest = max(self.slowest, msg.latency() or 0.0)

    def run(self):
        n = 0
        while not self.stop.is_set():
            try:
                self.p.produce(TOPIC, value=f"r{n}".encode(), partition=n % PARTITIONS,
                               on_delivery=self.delivered)
                n += 1
            except BufferError:
                pass
            self.p.poll(0.001 if n % 50 else 0.01)

    def finish(self):
        self.stop.set()
        self.join(30)
        assert self.p.flush(120) == 0, "records still unacknowledged"


def topic_with_writer(control, nodes, port, records):
    """Creates the topic on `nodes`, waits until their heartbeats report its partitions,
    and starts a `KafkaWriter` through `port`; returns it once `records` are acknowledged."""
    create_topic(nodes, TOPIC, PARTITIONS)
    wait_for(lambda: control.cli("status")["known_partitions"] >= PARTITIONS,
             what="the nodes' heartbeats report the partitions")
    w = KafkaWriter(port)
    w.start()
    wait_for(lambda: len(w.acked) > records, what="records before the changes")
    return w


@contextmanager
def env(var, value):
    os.environ[var] = value
    try:
        yield
    finally:
        del os.environ[var]


def two_with_writer(start, control, env1=None, env2=None):
    """Nodes 1 and 2 (each started with its environment variable, if any), the topic on
    both, and a producer writing through node 2 (which is not killed as an old owner)."""
    nodes = []
    for i, e in ((1, env1), (2, env2)):
        if e:
            with env(*e):
                nodes.append(member(start, control, i))
        else:
            nodes.append(member(start, control, i))
    wait_settled(control, nodes)
    w = topic_with_writer(control, nodes, nodes[1].kafka_port, 2000)
    return nodes, w


def leaders_and_node_1s(nodes):
    """The partitions' leaders (asked through node 2), and the partitions node 1 leads,
    which a move off node 1 moves; fails when node 1 leads none."""
    before = leaders(nodes[1], TOPIC)
    moving = [p for p, n in before.items() if n == 1]
    assert moving, before
    return before, moving


def more_records(w, n=1000, timeout=60):
    k = len(w.acked)
    wait_for(lambda: len(w.acked) > k + n, timeout=timeout, what=f"{n} more records acknowledged")


def read_all(port):
    """Every record of every partition, from its leader by the cluster's metadata:
    {(partition, offset): value}, and each partition's end offset."""
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": "check",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    ends = {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1]
            for p in range(PARTITIONS)}
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    got = {}
    left = {p for p, e in ends.items() if e > 0}
    pos = {}

    def drained():
        for m in c.consume(1000, 0.5):
            if m.error():
                raise KafkaException(m.error())
            got[(m.partition(), m.offset())] = m.value()
            pos[m.partition()] = m.offset() + 1
            if pos[m.partition()] >= ends[m.partition()]:
                left.discard(m.partition())
        return not left

    wait_for(drained, timeout=60, what="every partition read to its end")
    c.close()
    return got, ends


def check_every_record(w, port):
    """Every record `w` had acknowledged is where it was acknowledged, with its value, read
    from the partitions' leaders through `port`; each partition's offsets run without a gap
    from 0 to its end; every stored record was acknowledged once. Returns what was read."""
    got, ends = read_all(port)
    lost = [(k, v, got.get(k)) for k, v in w.acked.items() if got.get(k) != v]
    assert not lost, f"{len(lost)} acknowledged records lost or changed, e.g. {lost[:5]}"
    for p in range(PARTITIONS):
        offsets = sorted(o for (q, o) in got if q == p)
        assert offsets == list(range(ends[p])), (p, ends[p], len(offsets))
    assert len(got) == len(w.acked), "every stored record was acknowledged once"
    return got


def moved_state(node, p):
    """Partition `p`'s `moved` file on `node` (`fenced`, `retired`, `copied ...`), or
    `serving` where it has none."""
    f = node.data / "log" / TOPIC / str(p) / "moved"
    return f.read_text().strip() if f.exists() else "serving"


def in_background(control, *args):
    """Runs a control CLI command in a thread (it answers when the change ends, or fails
    when the control plane dies); returns the thread and a dict that receives the result."""
    out = {}

    def go():
        out["r"] = control.run(*args, "--json")

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, out


def complete_by_rebalance(control, nodes, w, owner=2):
    """`rebalance` (again, if a round left some) until every partition is led by `owner`;
    the producer keeps going; every acknowledged record is read back at its offset."""
    def all_moved(timeout):
        try:
            return wait_for(lambda: set(leaders(nodes[1], TOPIC).values()) == {owner},
                            timeout=timeout, what="every partition on its new owner")
        except AssertionError:
            return False

    for _ in range(4):
        if all_moved(5):
            break
        control.cli("rebalance")
        wait_settled(control, nodes)
    after = leaders(nodes[1], TOPIC)
    assert set(after.values()) == {owner}, after
    more_records(w)
    w.finish()
    assert w.errors == [], w.errors[:5]
    check_every_record(w, nodes[1].kafka_port)
    return after

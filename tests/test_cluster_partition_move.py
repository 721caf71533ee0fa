"""Moving log partitions when the map changes (issue 12): a partition that changes node is
pulled by its new owner from the old one by offset (sealed segments, then the active one
until caught up); the old owner fences it (produce answers NOT_LEADER_OR_FOLLOWER, which
clients retry), the new owner copies up to the fenced end, and the 2PC commit flips it. No
acknowledged record is lost and every record keeps its offset.

Three nodes and a real pinion-control (fixtures of test_cluster.py), a topic of 12
partitions, and an idempotent confluent-kafka producer running through two changes: node 3
drains (the map now places the partitions the nodes report, so partitions move between the
other nodes too), then a fourth node of weight 2 joins."""

import threading

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from test_cluster import cluster_info, control, member  # noqa: F401 (fixture)
from test_cluster_2pc_kill import create_topic, leaders
from test_cluster_move import start_three, wait_settled
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


def wait_epoch(control, nodes):
    st = control.cli("status")
    wait_for(lambda: all(cluster_info(n)["cluster_current_epoch"] == str(st["epoch"]) for n in nodes),
             what="every node on the committed map")


def test_partitions_move_with_their_records_and_offsets_while_a_producer_runs(start, control):
    three = start_three(start, control)
    wait_settled(control, three)
    create_topic(three, TOPIC, PARTITIONS)
    wait_for(lambda: control.cli("status")["known_partitions"] >= PARTITIONS,
             what="the nodes' heartbeats report the partitions")
    w = KafkaWriter(three[0].kafka_port)
    w.start()
    wait_for(lambda: len(w.acked) > 3000, what="records before the changes")
    before = leaders(three[0], TOPIC)

    # Node 3 drains: its partitions go to nodes 1 and 2, and the map now places every
    # partition (some move between nodes 1 and 2).
    res = control.cli("drain", "--id", "3")
    assert res["committed"] is True, res
    wait_epoch(control, three)
    drained = leaders(three[0], TOPIC)
    assert 3 not in drained.values(), drained
    n = len(w.acked)
    wait_for(lambda: len(w.acked) > n + 2000, what="records after the drain")

    # A fourth node of weight 2 joins: partitions move to it (it has no such topic yet).
    fourth = member(start, control, 4, weight=2)
    nodes = three + [fourth]
    wait_for(lambda: control.nodes().get(4, {}).get("partitions", 0) > 0, timeout=60,
             what="partitions on node 4")
    wait_for(lambda: control.cli("status")["moving"] is None
             and control.cli("status")["queued"] == 0
             and control.cli("status")["open_epoch"] is None, timeout=60, what="the changes done")
    wait_epoch(control, nodes)
    after = leaders(three[0], TOPIC)
    assert 4 in after.values(), after
    n = len(w.acked)
    wait_for(lambda: len(w.acked) > n + 2000, what="records after the join")
    w.finish()
    print(f"producer: {len(w.acked)} records acknowledged, slowest {w.slowest:.3f} s from produce "
          f"to acknowledgement; leaders {before} -> {drained} -> {after}")
    assert w.errors == [], w.errors[:5]
    assert "some units did not move" not in control.log_text()
    moved = {p for p in range(PARTITIONS) if before[p] != after[p]}
    assert len(moved) >= PARTITIONS // 3, (before, after)

    # Every acknowledged record is where it was acknowledged, with its value, read from the
    # new leaders; each partition's offsets run without a gap from 0 to its end.
    got, ends = read_all(three[1].kafka_port)
    lost = [(k, v, got.get(k)) for k, v in w.acked.items() if got.get(k) != v]
    assert not lost, f"{len(lost)} acknowledged records lost or changed, e.g. {lost[:5]}"
    for p in range(PARTITIONS):
        offsets = sorted(o for (q, o) in got if q == p)
        assert offsets == list(range(ends[p])), (p, ends[p], len(offsets))
    assert len(got) == len(w.acked), "every stored record was acknowledged once"
    # The moved partitions' files: each is served by one node; its old owners retired it.
    for p in moved:
        owner = nodes[after[p] - 1]
        assert any(f.stat().st_size > 0 for f in (owner.data / "log" / TOPIC / str(p)).glob("*.log"))
        old = nodes[before[p] - 1]
        marker = old.data / "log" / TOPIC / str(p) / "moved"
        assert marker.read_text().strip() == "retired", (p, before[p])

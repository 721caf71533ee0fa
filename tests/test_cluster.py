"""A cluster on loopback (issue 12): one pinion-control and three pinion nodes, each with its
own ports and data folder, joined with `--control`. Clients route by the map: redis-py
RedisCluster across the nodes, confluent-kafka over 12 partitions led by the three nodes.
A node with a wrong secret is refused. The control plane is the real binary
($PINION_CONTROL_BIN, else target/release or target/debug)."""

import time

import pytest
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from redis.cluster import RedisCluster

from conftest import key_slot
from test_control import Control, wait_for
from test_kafka_frames import batch, produce_error, produce_v3, request

HEARTBEAT_MS = "200"


@pytest.fixture
def control(tmp_path):
    c = Control(tmp_path)
    yield c
    rc = c.stop()
    assert rc == 0, f"pinion-control exited {rc}:\n{c.log_text()[-3000:]}"
    assert "panicked" not in c.log_text()


def member(start, control, node_id, *flags, secret_file=None, weight=None):
    extra = ["--weight", str(weight)] if weight else []
    return start("--control", f"127.0.0.1:{control.port}", "--node-id", str(node_id),
                 "--control-secret-file", str(secret_file or control.secret_file),
                 "--heartbeat-ms", HEARTBEAT_MS, *extra, *flags)


def cluster_info(n) -> dict:
    text = redis.Redis(port=n.port, socket_timeout=5).execute_command("CLUSTER", "INFO").decode()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def wait_formed(control, nodes):
    """Every node serves the control plane's committed map, which has them all active."""
    want = len(nodes)

    def formed():
        status = control.cli("status")
        # A node that joins owning nothing gets its slots in two changes (a first round,
        # then the rest): formed means no change is running or queued.
        if status["queued"] or status.get("moving") is not None or status["open_epoch"] is not None:
            return False
        ns = control.nodes()
        if sum(1 for n in ns.values() if n["state"] == "active" and n["connected"]) != want:
            return False
        infos = [cluster_info(n) for n in nodes]
        return all(i["cluster_state"] == "ok" and i["cluster_known_nodes"] == str(want)
                   and i["cluster_current_epoch"] == str(status["epoch"]) for i in infos)

    wait_for(formed, timeout=30, what=f"a cluster of {want} nodes")


@pytest.fixture
def three(start, control):
    nodes = [member(start, control, i) for i in (1, 2, 3)]
    wait_formed(control, nodes)
    return nodes


def test_redis_cluster_writes_and_reads_10000_keys_over_three_nodes(three, control):
    slots = redis.Redis(port=three[0].port).execute_command("CLUSTER", "SLOTS")
    assert sorted({s[2][1] for s in slots}) == sorted(n.port for n in three)
    rc = RedisCluster(host="127.0.0.1", port=three[0].port, socket_timeout=10)
    assert sorted(n.port for n in rc.get_primaries()) == sorted(n.port for n in three)
    for i in range(10_000):
        rc.set(f"key:{i}", i)
    for i in range(10_000):
        assert rc.get(f"key:{i}") == str(i).encode()
    rc.close()
    # Each node holds its share, and the shares add up: no key was stored twice.
    sizes = [n.client().dbsize() for n in three]
    assert sum(sizes) == 10_000 and all(s > 1000 for s in sizes), sizes
    # A node answers MOVED for a key another node owns, to that node's address.
    ports = {n.port for n in three}
    moved = 0
    for i in range(50):
        try:
            three[0].client().get(f"key:{i}")
        except redis.exceptions.MovedError as e:
            assert e.port in ports - {three[0].port} and e.slot_id == key_slot(f"key:{i}".encode())
            moved += 1
    assert moved > 0


def test_kafka_12_partitions_spread_over_three_nodes(three, control):
    topic = "orders"
    # Topics are cluster-wide (the map holds them): created once, on any node.
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{three[0].kafka_port}"})
    fs = admin.create_topics([NewTopic(topic, num_partitions=12, replication_factor=1)])
    fs[topic].result(timeout=15)
    md = AdminClient({"bootstrap.servers": f"127.0.0.1:{three[0].kafka_port}"}).list_topics(timeout=10)
    assert sorted(md.brokers) == [1, 2, 3]
    leaders = {p.id: p.leader for p in md.topics[topic].partitions.values()}
    assert len(leaders) == 12 and set(leaders.values()) == {1, 2, 3}, leaders
    # A Produce sent to a node that does not lead the partition: NOT_LEADER_OR_FOLLOWER (6).
    by_id = {i: n for i, n in enumerate(three, start=1)}
    other = next(n for i, n in by_id.items() if i != leaders[0])
    assert produce_error(request(other.kafka_port, produce_v3(topic, batch(1, 0)))) == 6
    assert produce_error(request(by_id[leaders[0]].kafka_port, produce_v3(topic, batch(1, 0)))) != 6
    p = Producer({"bootstrap.servers": f"127.0.0.1:{three[0].kafka_port}", "linger.ms": 5})
    errors = []
    for i in range(1200):
        p.produce(topic, key=str(i), value=f"v{i}", partition=i % 12,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0 and errors == []
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{three[1].kafka_port}", "group.id": "g1",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    seen = set()
    deadline = time.time() + 60
    while len(seen) < 1200 and time.time() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        seen.add(m.value().decode())
        assert int(m.key()) % 12 == m.partition()
    c.close()
    assert seen == {f"v{i}" for i in range(1200)}
    # Each node stored the records of exactly the partitions it leads.
    for node_id, n in enumerate(three, start=1):
        owned = {pid for pid, leader in leaders.items() if leader == node_id}
        root = n.data / "log" / topic
        written = {int(d.name) for d in root.iterdir()
                   if any(f.stat().st_size > 0 for f in d.glob("*.log"))}
        assert written == owned, (node_id, owned, written)

def test_a_node_with_a_wrong_secret_is_refused(start, control, tmp_path):
    bad = tmp_path / "wrong-secret"
    bad.write_text("not-the-secret-0123456789abcdef\n")
    n = member(start, control, 9, secret_file=bad)
    wait_for(lambda: "refused unauthenticated peer" in control.log_text(), what="the control plane's refusal")
    wait_for(lambda: "not registered" in n.log_text(), what="the node's log line")
    assert 9 not in control.nodes()
    # It owns nothing until it joins: keys answer CLUSTERDOWN.
    with pytest.raises(redis.exceptions.ClusterDownError, match="Hash slot not served"):
        n.client().set("k", "v")


def test_heartbeats_carry_each_shards_load(three, control):
    def loads():
        load = control.nodes()[2]["load"]
        return load if load and len(load) == 2 else None

    load = wait_for(loads, what="a heartbeat from node 2")
    for shard in load:
        assert 0.0 <= shard["busy"] <= 1.0
        assert {"ops_per_s", "bytes_per_s", "connections", "p99_us", "memory_bytes"} <= set(shard)
    # Traffic shows up in the next reports.
    c = three[1].client()
    def busy():
        for i in range(200):
            c.ping()
        return sum(s["ops_per_s"] for s in loads() or []) > 0
    wait_for(busy, what="ops/s in node 2's heartbeat")


def test_a_fourth_node_of_weight_2_gets_its_share_and_clients_go_on(start, three, control):
    # Ownership only: slots move in the map, their keys do not move yet (no ASK).
    fourth = member(start, control, 4, weight=2)
    nodes = three + [fourth]
    wait_formed(control, nodes)
    share = control.nodes()[4]["slots"] / 16384
    assert abs(share - 2 / 5) <= 0.1 * 2 / 5, share
    epochs = {cluster_info(n)["cluster_current_epoch"] for n in nodes}
    assert len(epochs) == 1
    rc = RedisCluster(host="127.0.0.1", port=three[0].port, socket_timeout=10)
    assert len(rc.get_primaries()) == 4
    for i in range(2000):
        rc.set(f"after:{i}", i)
    for i in range(2000):
        assert rc.get(f"after:{i}") == str(i).encode()
    rc.close()
    assert fourth.client().dbsize() > 0


def test_a_drained_node_owns_nothing_and_clients_go_on(three, control):
    control.cli("drain", "--id", "3")
    status = control.cli("status")
    assert control.nodes()[3]["slots"] == 0 and control.nodes()[3]["state"] == "draining"
    wait_for(lambda: all(cluster_info(n)["cluster_current_epoch"] == str(status["epoch"]) for n in three),
             what="every node on the drained map")
    slots = redis.Redis(port=three[2].port).execute_command("CLUSTER", "SLOTS")
    assert {s[2][1] for s in slots} == {three[0].port, three[1].port}
    rc = RedisCluster(host="127.0.0.1", port=three[2].port, socket_timeout=10)
    for i in range(1000):
        rc.set(f"d:{i}", i)
    assert all(rc.get(f"d:{i}") == str(i).encode() for i in range(1000))
    rc.close()
    assert three[2].client().dbsize() == 0


def test_a_restarted_node_serves_its_persisted_map_before_the_control_plane_is_back(three, control):
    epoch = cluster_info(three[1])["cluster_current_epoch"]
    slots = redis.Redis(port=three[1].port).execute_command("CLUSTER", "SLOTS")
    assert control.stop() == 0
    three[1].kill9()
    three[1].restart()
    # The control plane is down: the map comes from <data-dir>/cluster/member.state.
    assert cluster_info(three[1])["cluster_current_epoch"] == epoch
    assert redis.Redis(port=three[1].port).execute_command("CLUSTER", "SLOTS") == slots
    control.launch()
    wait_formed(control, three)
    assert cluster_info(three[1])["cluster_current_epoch"] == epoch

"""`--kafka-shard-ports BASE` (issue 12): each shard listens for Kafka on BASE+i and is its
own broker (id node-id x 1000 + i), leading the partitions it owns, so clients that follow
the metadata reach the owning shard and nothing crosses the mesh. Through real clients:
confluent-kafka (librdkafka) and kafka-python; the group and transaction coordinators
still answer, at the shard that runs them."""

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition

from conftest import crc16, shard_of
from test_cluster_resp import free_ports

PARTITIONS = 8
MESH = "pinion_mesh_requests_sent_total"


def java_hash(s: str) -> int:
    h = 0
    for c in s:  # ASCII ids: one UTF-16 unit per character
        h = (h * 31 + ord(c)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def coordinator_shard(key: str) -> int:
    """The shard that runs a group or transactional id: the owner of its
    __consumer_offsets partition's slot (kafka/groups/mod.rs)."""
    h = java_hash(key)
    p = (0 if h == -(1 << 31) else abs(h)) % 50
    slot = crc16(f"__consumer_offsets-{p}".encode()) % 16384
    return 0 if slot < 8192 else 1


@pytest.fixture
def sharded(start):
    base = free_ports(2)
    node = start("--kafka-shard-ports", str(base))
    node.kafka_base = base
    return node


def create(node, topic, partitions=PARTITIONS):
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{node.kafka_port}"})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(timeout=15)


def test_metadata_lists_each_shard_as_a_broker_leading_what_it_owns(sharded):
    create(sharded, "orders")
    for port in (sharded.kafka_port, sharded.kafka_base, sharded.kafka_base + 1):
        md = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=10)
        assert {b.id: (b.host, b.port) for b in md.brokers.values()} == {
            1000: ("127.0.0.1", sharded.kafka_base),
            1001: ("127.0.0.1", sharded.kafka_base + 1),
        }
        assert md.controller_id == 1000
        leaders = {p.id: p.leader for p in md.topics["orders"].partitions.values()}
        assert leaders == {p: 1000 + shard_of(f"orders-{p}") for p in range(PARTITIONS)}
        assert set(leaders.values()) == {1000, 1001}


def test_confluent_kafka_produces_and_fetches_on_the_owning_shards_with_no_mesh_hop(sharded):
    create(sharded, "t")
    mesh = sharded.metric(MESH)
    p = Producer({"bootstrap.servers": f"127.0.0.1:{sharded.kafka_port}", "linger.ms": 5})
    errors = []
    for i in range(2000):
        p.produce("t", key=str(i), value=f"v{i}", partition=i % PARTITIONS,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0 and errors == []
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{sharded.kafka_port}", "group.id": "unused",
                  "enable.auto.commit": False})
    c.assign([TopicPartition("t", i, 0) for i in range(PARTITIONS)])
    seen = {}
    while len(seen) < 2000:
        m = c.poll(10)
        assert m is not None, f"consumed {len(seen)} of 2000"
        assert not m.error(), m.error()
        seen[m.value().decode()] = m.partition()
    c.close()
    assert seen == {f"v{i}": i % PARTITIONS for i in range(2000)}
    # Every Produce, ListOffsets and Fetch went to the shard that owns its partitions.
    assert sharded.metric(MESH) == mesh
    # Each shard wrote its own partitions.
    for part in range(PARTITIONS):
        assert any(f.stat().st_size > 0 for f in (sharded.data / "log" / "t" / str(part)).glob("*.log"))


def test_kafka_python_produces_and_fetches_on_the_owning_shards_with_no_mesh_hop(sharded):
    create(sharded, "kp")
    mesh = sharded.metric(MESH)
    p = KafkaProducer(bootstrap_servers=f"127.0.0.1:{sharded.kafka_port}", linger_ms=5)
    futures = [p.send("kp", value=f"v{i}".encode(), partition=i % PARTITIONS) for i in range(800)]
    p.flush(timeout=30)
    assert all(f.get(timeout=10).partition == i % PARTITIONS for i, f in enumerate(futures))
    p.close()
    c = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{sharded.kafka_port}", enable_auto_commit=False,
                      consumer_timeout_ms=10_000)
    c.assign([KTopicPartition("kp", i) for i in range(PARTITIONS)])
    c.seek_to_beginning()
    got = sorted(m.value.decode() for m in c)
    c.close()
    assert got == sorted(f"v{i}" for i in range(800))
    assert sharded.metric(MESH) == mesh


def test_the_group_coordinator_is_the_shard_that_runs_the_group(sharded):
    create(sharded, "g")
    p = Producer({"bootstrap.servers": f"127.0.0.1:{sharded.kafka_port}"})
    for i in range(400):
        p.produce("g", value=f"v{i}", partition=i % PARTITIONS)
    assert p.flush(30) == 0
    group = "readers"
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{sharded.kafka_port}", "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["g"])
    seen = set()
    while len(seen) < 400:
        m = c.poll(10)
        assert m is not None, f"consumed {len(seen)} of 400"
        if not m.error():
            seen.add(m.value().decode())
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition("g", i) for i in range(PARTITIONS)], timeout=10)
    c.close()
    assert sum(tp.offset for tp in committed) == 400
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{sharded.kafka_port}"})
    desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    assert desc.coordinator.id == 1000 + coordinator_shard(group)
    assert desc.coordinator.port == sharded.kafka_base + coordinator_shard(group)


def test_transactions_commit_through_the_shard_coordinator(sharded):
    create(sharded, "tx")
    p = Producer({"bootstrap.servers": f"127.0.0.1:{sharded.kafka_port}", "transactional.id": "tx-1"})
    p.init_transactions(15)
    p.begin_transaction()
    for i in range(100):
        p.produce("tx", value=f"v{i}", partition=i % PARTITIONS)
    p.commit_transaction(15)
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{sharded.kafka_port}", "group.id": "tx-reader",
                  "isolation.level": "read_committed", "enable.auto.commit": False})
    c.assign([TopicPartition("tx", i, 0) for i in range(PARTITIONS)])
    seen = set()
    while len(seen) < 100:
        m = c.poll(10)
        assert m is not None, f"consumed {len(seen)} of 100"
        if not m.error():
            seen.add(m.value().decode())
    c.close()
    assert seen == {f"v{i}" for i in range(100)}


def test_without_the_flag_the_node_is_the_one_broker(node):
    md = AdminClient({"bootstrap.servers": f"127.0.0.1:{node.kafka_port}"}).list_topics(timeout=10)
    assert [(b.id, b.port) for b in md.brokers.values()] == [(0, node.kafka_port)]


def test_the_flag_is_refused_under_a_control_plane(start, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("test-secret-0123456789abcdef\n")
    with pytest.raises(RuntimeError, match="--kafka-shard-ports is for standalone nodes"):
        start("--kafka-shard-ports", str(free_ports(2)), "--control", "127.0.0.1:1", "--node-id", "1",
              "--control-secret-file", str(secret))

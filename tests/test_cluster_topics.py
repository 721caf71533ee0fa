"""Topics under a control plane (issue 12): the cluster map holds the topics, so a topic is
created, grown and deleted once, against any node, for the whole cluster.

Three nodes and a real pinion-control (fixtures of test_cluster.py); every Kafka call goes
through confluent-kafka (librdkafka), and each check reads what a Kafka user would: the
metadata every node answers, the records read back, the configs DescribeConfigs shows, the
partition folders on disk."""

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions, NewTopic)

from test_cluster import cluster_info, control, member  # noqa: F401 (fixture)
from test_control import wait_for

TOPIC = "orders"


def admin(n):
    return AdminClient({"bootstrap.servers": f"127.0.0.1:{n.kafka_port}"})


def leaders_on(n, topic):
    """The topic's leaders as node n's metadata lists them (every topic is asked for, so
    nothing is auto-created), or None when it is not listed."""
    md = admin(n).list_topics(timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return {p.id: p.leader for p in t.partitions.values()}


def error_of(future):
    try:
        future.result(timeout=30)
    except KafkaException as e:
        return e.args[0].code()
    return None


def wait_settled(control, nodes, timeout=60):
    """Every node active and connected, no change running or queued, every node on the
    committed map."""
    def settled():
        st = control.cli("status")
        if st["queued"] or st["moving"] is not None or st["open_epoch"] is not None:
            return False
        ns = control.nodes()
        if sum(1 for n in ns.values() if n["state"] == "active" and n["connected"]) != len(nodes):
            return False
        return all(cluster_info(n)["cluster_current_epoch"] == str(st["epoch"]) for n in nodes)
    wait_for(settled, timeout=timeout, what="no change running, every node on the committed map")


def produce_keyed(nodes, topic, count, partitions, tag):
    boot = ",".join(f"127.0.0.1:{n.kafka_port}" for n in nodes)
    p = Producer({"bootstrap.servers": boot, "linger.ms": 5, "enable.idempotence": True})
    errors = []
    for i in range(count):
        p.produce(topic, key=f"{tag}{i}", value=f"{tag}-v{i}", partition=i % partitions,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(60) == 0 and errors == [], errors[:5]
    return {f"{tag}-v{i}" for i in range(count)}


def consume_all(nodes, topic, partitions, want):
    boot = ",".join(f"127.0.0.1:{n.kafka_port}" for n in nodes)
    c = Consumer({"bootstrap.servers": boot, "group.id": f"read-{len(want)}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen = set()

    def done():
        for m in c.consume(1000, 0.5):
            if m.error():
                raise KafkaException(m.error())
            seen.add(m.value().decode())
        return want <= seen
    wait_for(done, timeout=60, what="every record read back")
    c.close()
    return seen


def test_a_topic_created_on_one_node_exists_cluster_wide(start, control):
    nodes = [member(start, control, i) for i in (1, 2, 3)]
    wait_settled(control, nodes, timeout=120)
    by_id = {i: n for i, n in enumerate(nodes, start=1)}

    # Created once, against node 2 only, with a config.
    a = admin(nodes[1])
    fs = a.create_topics([NewTopic(TOPIC, num_partitions=12, replication_factor=1,
                                                 config={"cleanup.policy": "compact"})])
    assert error_of(fs[TOPIC]) is None
    wait_settled(control, nodes)
    m = control.cli("map")
    assert m["topics"][TOPIC] == {"partitions": 12, "configs": {"cleanup.policy": "compact"}}, m["topics"]

    # Every node lists it with the same 12 leaders, spread over the three nodes.
    first = leaders_on(nodes[0], TOPIC)
    assert first is not None and len(first) == 12, first
    assert set(first.values()) == {1, 2, 3}, first
    for n in nodes[1:]:
        assert leaders_on(n, TOPIC) == first

    # Creating it again, on any node, answers TOPIC_ALREADY_EXISTS; validate_only and a bad
    # config are answered by the node without touching the map.
    for n in nodes:
        a = admin(n)
        fs = a.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=1)])
        assert error_of(fs[TOPIC]) == KafkaError.TOPIC_ALREADY_EXISTS
    epoch = control.cli("status")["epoch"]
    a = admin(nodes[0])
    fs = a.create_topics([NewTopic("checked", num_partitions=3, replication_factor=1)],
                                       validate_only=True)
    assert error_of(fs["checked"]) is None
    a = admin(nodes[0])
    fs = a.create_topics([NewTopic("bad", num_partitions=3, replication_factor=1,
                                                 config={"cleanup.policy": "nonsense"})])
    assert error_of(fs["bad"]) == KafkaError.INVALID_CONFIG
    assert control.cli("status")["epoch"] == epoch
    assert "checked" not in control.cli("map").get("topics", {})
    assert leaders_on(nodes[2], "checked") is None

    # Produce through every node as bootstrap, consume everything back.
    want = produce_keyed(nodes, TOPIC, 1200, 12, "a")
    assert consume_all(nodes, TOPIC, 12, want) >= want
    # Each leader holds its partitions' records; the others' copies are empty.
    for node_id, n in by_id.items():
        led = {p for p, leader in first.items() if leader == node_id}
        written = {int(d.name) for d in (n.data / "log" / TOPIC).iterdir()
                   if any(f.stat().st_size > 0 for f in d.glob("*.log"))}
        assert written == led, (node_id, led, written)

    # DescribeConfigs on a leader shows the topic's config.
    leader = by_id[first[0]]
    res = ConfigResource(ConfigResource.Type.TOPIC, TOPIC)
    a = admin(leader)
    configs = a.describe_configs([res])[res].result(timeout=15)
    assert configs["cleanup.policy"].value == "compact"

    # CreatePartitions to 16 on node 3: every node lists 16, the old leaders stay.
    a = admin(nodes[2])
    fs = a.create_partitions([NewPartitions(TOPIC, 16)])
    assert error_of(fs[TOPIC]) is None
    for n in nodes:
        grown = leaders_on(n, TOPIC)
        assert len(grown) == 16, grown
        assert all(grown[p] == first[p] for p in range(12)), (first, grown)
    grown = leaders_on(nodes[0], TOPIC)
    more = produce_keyed(nodes, TOPIC, 320, 16, "b")
    assert consume_all(nodes, TOPIC, 16, more) >= more

    # A node restarted keeps serving its partitions, with their records.
    victim = by_id[grown[0]]
    victim.kill9()
    victim.restart()
    wait_settled(control, nodes)
    assert leaders_on(victim, TOPIC) == grown
    after = produce_keyed(nodes, TOPIC, 160, 16, "c")
    assert consume_all(nodes, TOPIC, 16, want | more | after) >= want | more | after

    # DeleteTopics on node 1 removes it everywhere: map, metadata, folders.
    a = admin(nodes[0])
    fs = a.delete_topics([TOPIC])
    assert error_of(fs[TOPIC]) is None
    assert TOPIC not in control.cli("map").get("topics", {})
    for n in nodes:
        folder = n.data / "log" / TOPIC  # its partitions' folders and topic.meta are gone
        wait_for(lambda f=folder: not f.exists() or not any(f.iterdir()), what=f"{TOPIC} gone on {n.port}")
        assert leaders_on(n, TOPIC) is None
    # And it is not placed again from a late heartbeat.
    wait_for(lambda: control.cli("status")["known_partitions"] == 0, what="no partition reported")


def test_auto_creation_goes_through_the_map(start, control):
    nodes = [member(start, control, i) for i in (1, 2)]
    wait_settled(control, nodes, timeout=120)
    # A producer to an unknown topic: Metadata auto-creates it (LEADER_NOT_AVAILABLE first,
    # as Kafka answers), the control plane commits it, and the records land.
    want = produce_keyed(nodes, "auto", 100, 1, "x")
    assert "auto" in control.cli("map")["topics"]
    assert consume_all(nodes, "auto", 1, want) >= want
    for n in nodes:
        assert leaders_on(n, "auto") is not None

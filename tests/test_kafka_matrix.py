"""The client matrix for Kafka transactions and admin (issue 11): the clients the other files
do not drive there. kafkajs (Node.js) as a transactional producer with `sendOffsets`, a
`readUncommitted: false` group consumer, and its admin client; kafka-python's own
transactional `KafkaProducer`."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka_util import bootstrap, create

HERE = Path(__file__).parent
FAST = ("--group-initial-rebalance-delay-ms", "300")


def kafkajs(name, *args, timeout=90):
    script = HERE / "js" / name
    if not shutil.which("node") or not (HERE / "js" / "node_modules" / "kafkajs").exists():
        pytest.skip("node and kafkajs are installed by tools/test.sh")
    out = subprocess.run(["node", str(script), *args], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def read_all(node, topic, partitions, isolation, want):
    """`want` records of `topic` from its log start as (partition, offset, value)."""
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "reader",
                  "enable.auto.commit": False, "isolation.level": isolation})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out = []
    idle = 0
    while len(out) < want and idle < 100:
        m = c.poll(0.1)
        if m is None:
            idle += 1
            continue
        assert m.error() is None, m.error()
        out.append((m.partition(), m.offset(), m.value().decode()))
    # Nothing past `want`: one more quiet second.
    extra = c.poll(1.0)
    c.close()
    assert extra is None or extra.error() is not None, extra.value()
    return out


def committed(node, group, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": group})
    got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    c.close()
    return [tp.offset for tp in got]


def test_kafkajs_transactions_abort_then_commit_with_offsets(start):
    node = start(*FAST)
    create(node, "js-tx", 2)
    out = kafkajs("kafkajs_txn.js", bootstrap(node), "js-tx", "2", "js-eos")
    want = sorted(f"committed-{i}" for i in range(10))
    assert sorted(v for _, _, v in out["read"]) == want
    # The markers take offsets: per partition 5 aborted, ABORT, 5 committed.
    assert sorted(o for p, o, _ in out["read"] if p == 0) == [6, 7, 8, 9, 10]
    ru = read_all(node, "js-tx", 2, "read_uncommitted", 20)
    assert sorted(v for _, _, v in ru) == sorted(want + [f"aborted-{i}" for i in range(10)])
    # Only the committed transaction's sendOffsets took effect.
    assert committed(node, "js-eos", "js-tx", 1) == [7]


def test_kafkajs_admin_partitions_configs_and_delete_records(start):
    node = start()
    create(node, "js-admin", 2)
    p = Producer({"bootstrap.servers": bootstrap(node), "acks": "all"})
    for i in range(6):
        p.produce("js-admin", f"r{i}".encode(), partition=0)
    assert p.flush(10) == 0
    out = kafkajs("kafkajs_admin.js", bootstrap(node), "js-admin")
    assert out["partitions"] == 4
    assert out["shrink"] == "INVALID_PARTITIONS", out
    assert out["configs"]["retention.ms"] == "123456"
    assert out["configs"]["cleanup.policy"] == "delete"
    assert out["offsets"] == [[0, 4, 6], [1, 0, 0], [2, 0, 0], [3, 0, 0]]
    # What kafkajs changed is what another client sees.
    assert [v for _, _, v in read_all(node, "js-admin", 1, "read_uncommitted", 2)] == ["r4", "r5"]
    a = AdminClient({"bootstrap.servers": bootstrap(node)})
    assert len(a.list_topics("js-admin", timeout=10).topics["js-admin"].partitions) == 4


def test_kafka_python_transactional_producer(start):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    node = start(*FAST)
    create(node, "kp-tx", 2)
    p = KafkaProducer(bootstrap_servers=bootstrap(node), transactional_id="kp-tx-1")
    p.init_transactions()
    p.begin_transaction()
    for i in range(10):
        p.send("kp-tx", f"aborted-{i}".encode(), partition=i % 2)
    p.flush(10)
    p.send_offsets_to_transaction({KTP("kp-tx", 0): OffsetAndMetadata(3, "", -1)}, "kp-eos")
    p.abort_transaction()
    p.begin_transaction()
    for i in range(10):
        p.send("kp-tx", f"committed-{i}".encode(), partition=i % 2)
    p.send_offsets_to_transaction({KTP("kp-tx", 0): OffsetAndMetadata(7, "", -1)}, "kp-eos")
    p.commit_transaction()
    p.close(10)

    c = KafkaConsumer(bootstrap_servers=bootstrap(node), isolation_level="read_committed",
                      enable_auto_commit=False, consumer_timeout_ms=3000)
    c.assign([KTP("kp-tx", 0), KTP("kp-tx", 1)])
    c.seek_to_beginning()
    got = [m.value.decode() for m in c]
    c.close()
    want = sorted(f"committed-{i}" for i in range(10))
    assert sorted(got) == want
    ru = read_all(node, "kp-tx", 2, "read_uncommitted", 20)
    assert sorted(v for _, _, v in ru) == sorted(want + [f"aborted-{i}" for i in range(10)])
    assert committed(node, "kp-eos", "kp-tx", 1) == [7]


def test_kafka_python_describe_configs_of_a_topic(start):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic as KNewTopic

    node = start()
    k = KafkaAdminClient(bootstrap_servers=bootstrap(node))
    k.create_topics([KNewTopic("kp-conf", 1, 1, topic_configs={"cleanup.policy": "compact"})])
    k.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-conf",
                                    configs={"retention.ms": "654321"})])
    res = ConfigResource(ConfigResourceType.TOPIC, "kp-conf")
    modified = k.describe_configs([res])["topic"]["kp-conf"]
    everything = k.describe_configs([res], config_filter="all")["topic"]["kp-conf"]
    k.close()
    # kafka-python 3.0 alters incrementally when the broker lists IncrementalAlterConfigs:
    # the create's cleanup.policy stays beside the new retention.ms.
    assert {n: (c["value"], c["config_source"]) for n, c in modified.items()} == {
        "cleanup.policy": ("compact", "DYNAMIC_TOPIC_CONFIG"),
        "retention.ms": ("654321", "DYNAMIC_TOPIC_CONFIG"),
    }
    assert everything["segment.bytes"]["config_source"] == "DEFAULT_CONFIG", everything
    assert everything["retention.ms"]["value"] == "654321"

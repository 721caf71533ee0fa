"""Kafka robustness: requests wider than a mesh batch, record batches whose header lies
about their records, and the admin APIs CreatePartitions and DeleteRecords, through
kafka-python, confluent-kafka and raw frames."""

import resource
import socket
import struct
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import crc16

# The mesh's batch bound (limits::MESH_BATCH_PARTS_MAX): a request with more parts than this
# for one other shard once never found room and waited forever.
BATCH_PARTS_MAX = 4096


def shard_of_partition(topic: str, p: int) -> int:
    return int(crc16(f"{topic}-{p}".encode()) % 16384 >= 8192)


def wide_partition_count(topic: str, over: int) -> int:
    """The fewest partitions for which each of the two shards owns more than `over`."""
    counts = [0, 0]
    p = 0
    while min(counts) <= over:
        counts[shard_of_partition(topic, p)] += 1
        p += 1
    return p


@pytest.fixture
def many_fds():
    """Each partition holds two files: raise the soft fd limit (the node inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 20000
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"needs `ulimit -n` of {want} (hard limit is {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_produce_and_fetch_wider_than_a_mesh_batch_are_answered(start, many_fds):
    topic = "wide"
    n = wide_partition_count(topic, BATCH_PARTS_MAX) + 50
    node = start()
    boot = f"127.0.0.1:{node.kafka_port}"
    admin = KafkaAdminClient(bootstrap_servers=boot, request_timeout_ms=120000)
    admin.create_topics([NewTopic(topic, n, 1)], timeout_ms=120000)
    admin.close()

    # One record per partition, lingering until flush() drains them all into
    # one Produce request naming every partition (kafka-python batches per node).
    producer = KafkaProducer(
        bootstrap_servers=boot, linger_ms=60000, delivery_timeout_ms=120000, batch_size=16384,
        max_request_size=16 << 20, request_timeout_ms=30000,
        retries=0,
    )
    futures = [producer.send(topic, value=b"v%d" % p, partition=p) for p in range(n)]
    producer.flush(timeout=60)
    offsets = [f.get(timeout=60).offset for f in futures]
    producer.close()
    assert offsets == [0] * n

    # A consumer assigned every partition asks for all of them in one Fetch.
    consumer = KafkaConsumer(
        bootstrap_servers=boot, auto_offset_reset="earliest", enable_auto_commit=False,
        fetch_max_wait_ms=100, request_timeout_ms=30000, max_poll_records=100000,
        fetch_max_bytes=64 << 20,
    )
    tps = [TopicPartition(topic, p) for p in range(n)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    seen = {}
    deadline = time.time() + 60
    while len(seen) < n and time.time() < deadline:
        for tp, records in consumer.poll(timeout_ms=1000).items():
            for rec in records:
                seen[tp.partition] = rec.value
    consumer.close()
    assert len(seen) == n, f"{len(seen)} of {n} partitions answered"
    assert all(seen[p] == b"v%d" % p for p in range(n))

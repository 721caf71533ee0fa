"""Kafka compatibility bugs that real clients hit, each through the clients that found it:
FindCoordinator in every version (v4 asks for a batch of keys), a Fetch whose first batch is
larger than the fetch's max bytes (KIP-74), ListOffsets by timestamp inside a batch, topics
auto-created by many clients at once, and CreateTopics with every config Kafka documents and
DescribeConfigs of topics and the broker."""

import socket
import struct
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic
from kafka_util import bootstrap, kcat

T0 = 1_700_000_000_000


def segment_batches(node, topic, partition=0):
    """(base offset, record count, size) of every batch in a partition's segments."""
    out = []
    for seg in sorted((node.data / "log" / topic / str(partition)).glob("*.log")):
        data, pos = seg.read_bytes(), 0
        while pos + 61 <= len(data):
            base, length = struct.unpack(">qi", data[pos:pos + 12])
            if length <= 0:
                break  # the zeros after the active segment's last batch
            count = struct.unpack(">i", data[pos + 57:pos + 61])[0]
            out.append((base, count, 12 + length))
            pos += 12 + length
    return out


def produce_one_batch(node, topic, values, partition=0, timestamps=None, codec="none"):
    """Produce `values` as one batch (librdkafka lingers until all are queued)."""
    p = Producer({"bootstrap.servers": bootstrap(node), "linger.ms": 1000,
                  "batch.size": 1_000_000, "compression.type": codec, "acks": "all"})
    # With the partitions known first, nothing goes out before all are queued.
    p.list_topics(topic, timeout=10)
    errors = []
    for i, v in enumerate(values):
        kw = {"timestamp": timestamps[i]} if timestamps else {}
        p.produce(topic, value=v, partition=partition,
                  on_delivery=lambda e, m: e and errors.append(e), **kw)
    assert p.flush(20) == 0 and not errors, errors


def kafka_request(port, payload: bytes, timeout=10.0) -> bytes:
    """One request on a fresh connection; the response without its size prefix."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(payload)) + payload)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
    return buf[4:]


def fetch_v4(port, topic, partitions, max_bytes, partition_max_bytes):
    """A Fetch v4 from offset 0 of `partitions`: {partition: (error, record bytes)}."""
    t = topic.encode()
    body = struct.pack(">iiiib", -1, 100, 1, max_bytes, 0)
    body += struct.pack(">ih", 1, len(t)) + t + struct.pack(">i", len(partitions))
    for p in partitions:
        body += struct.pack(">iqi", p, 0, partition_max_bytes)
    header = struct.pack(">hhih", 1, 4, 11, 4) + b"test"
    r = kafka_request(port, header + body)
    cid, _throttle, ntopics = struct.unpack(">iii", r[:12])
    assert (cid, ntopics) == (11, 1)
    pos = 12
    (n,) = struct.unpack(">h", r[pos:pos + 2])
    pos += 2 + n
    (nparts,) = struct.unpack(">i", r[pos:pos + 4])
    pos += 4
    out = {}
    for _ in range(nparts):
        part, err, _hw, _lso, naborted = struct.unpack(">ihqqi", r[pos:pos + 26])
        pos += 26 + 16 * max(naborted, 0)
        (size,) = struct.unpack(">i", r[pos:pos + 4])
        pos += 4 + max(size, 0)
        out[part] = (err, max(size, 0))
    return out


# ----- FindCoordinator ------------------------------------------------------------------


def test_find_coordinator_answers_every_version_and_each_batched_key(node):
    """kafka-python asks v4 with a batch of keys (KIP-699). The v4 answer used to fail to
    encode and the node closed the connection without a word."""
    from kafka import KafkaAdminClient
    from kafka.protocol.metadata import CoordinatorType, FindCoordinatorRequest

    admin = KafkaAdminClient(bootstrap_servers=bootstrap(node), request_timeout_ms=5000)
    try:
        for v in range(4):
            req = FindCoordinatorRequest(key="g", key_type=0, min_version=v, max_version=v)
            r = admin._manager.run(admin._manager.send, req)
            assert (r.error_code, r.node_id, r.host, r.port) == (0, 0, "127.0.0.1", node.kafka_port)
        ids = admin._manager.run(admin._find_coordinator_ids, ["g1", "g2", "g3"])
        assert ids == {"g1": 0, "g2": 0, "g3": 0}
        ids = admin._manager.run(admin._find_coordinator_ids, ["tx"], CoordinatorType.TRANSACTION)
        assert ids == {"tx": 0}
    finally:
        admin.close()
    assert "encoding a Kafka response failed" not in node.log_text()


# ----- Fetch: a batch larger than max bytes -----------------------------------------------


def big_batches(node, topic, partitions=(0,)):
    """One batch of 100 records of ~1 KB (about 100 KB) in each of `partitions`."""
    for p in partitions:
        produce_one_batch(node, topic, [f"{p}-{i:03d}-".encode() + b"x" * 1000 for i in range(100)],
                          partition=p)
        batches = segment_batches(node, topic, p)
        assert len(batches) == 1 and batches[0][1] == 100 and batches[0][2] > 100_000, batches


def test_kafka_python_consumes_a_batch_larger_than_max_partition_fetch_bytes(node):
    from kafka import KafkaConsumer

    big_batches(node, "wide")
    consumer = KafkaConsumer("wide", bootstrap_servers=bootstrap(node), auto_offset_reset="earliest",
                             max_partition_fetch_bytes=1500, fetch_max_bytes=1500,
                             consumer_timeout_ms=5000, group_id=None)
    got = []
    for m in consumer:  # ends after 5 s without a record
        got.append(m.value)
        if len(got) == 100:
            break
    consumer.close()
    assert len(got) == 100 and got[0].startswith(b"0-000-") and got[-1].startswith(b"0-099-")


def test_confluent_consumes_batches_larger_than_every_fetch_limit(node):
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    admin.create_topics([NewTopic("wide2", 2, 1)])["wide2"].result(10)
    big_batches(node, "wide2", (0, 1))
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "wide",
                  "enable.auto.commit": False, "max.partition.fetch.bytes": 1500,
                  "fetch.max.bytes": 1500, "message.max.bytes": 1000})
    c.assign([TopicPartition("wide2", p, 0) for p in (0, 1)])
    got, deadline = [], time.time() + 20
    while len(got) < 200 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None:
            assert m.error() is None, m.error()
            got.append((m.partition(), m.offset()))
    c.close()
    assert sorted(got) == [(p, o) for p in (0, 1) for o in range(100)]


def test_fetch_response_max_bytes_keeps_whole_batches_and_at_least_one(node):
    """The response's max_bytes as Kafka applies it: partitions in request order, whole
    batches, but always the first batch of the first partition with data."""
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    admin.create_topics([NewTopic("sized", 2, 1)])["sized"].result(10)
    big_batches(node, "sized", (0, 1))
    size = segment_batches(node, "sized", 0)[0][2]
    port = node.kafka_port
    # Both limits far below one batch: the first partition's batch comes whole, alone.
    assert fetch_v4(port, "sized", [0, 1], 1500, 1500) == {0: (0, size), 1: (0, 0)}
    assert fetch_v4(port, "sized", [1, 0], 1500, 1500) == {1: (0, size), 0: (0, 0)}
    # Room in the response for both: each partition's first batch comes whole.
    assert fetch_v4(port, "sized", [0, 1], 10 << 20, 1500) == {0: (0, size), 1: (0, size)}
    # Room for one and a half: the second batch would pass max_bytes.
    assert fetch_v4(port, "sized", [0, 1], size + size // 2, 1 << 20) == {0: (0, size), 1: (0, 0)}


# ----- ListOffsets by timestamp ------------------------------------------------------------


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_offsets_for_times_finds_the_record_inside_a_batch(node, codec):
    """10 records in one batch, one second apart: t0+3.5 s is offset 4 (Kafka's answer),
    not the batch's first offset."""
    topic = f"times-{codec}"
    produce_one_batch(node, topic, [f"r{i}".encode() for i in range(10)],
                      timestamps=[T0 + 1000 * i for i in range(10)], codec=codec)
    assert [c for _, c, _ in segment_batches(node, topic)] == [10]
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "times"})
    for ts, want in [(T0 - 5, 0), (T0, 0), (T0 + 3500, 4), (T0 + 9000, 9), (T0 + 9001, -1)]:
        got = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)[0]
        assert got.error is None and got.offset == want, (ts, got)
    c.close()

    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KTP

    k = KafkaConsumer(bootstrap_servers=bootstrap(node), group_id=None)
    got = k.offsets_for_times({KTP(topic, 0): T0 + 6200})[KTP(topic, 0)]
    k.close()
    assert (got.offset, got.timestamp) == (7, T0 + 7000)

    out = kcat(node, "-C", "-t", topic, "-o", f"s@{T0 + 2500}", "-e", "-f", "%o %s\n")
    assert out.splitlines() == [f"{o} r{o}" for o in range(3, 10)]


# ----- topics auto-created by many clients at once -----------------------------------------


def test_concurrent_auto_create_writes_topic_meta_once(node):
    """Eight producers and four metadata readers on both shards ask for the same 20 new
    topics at once. Each creating shard used to write `topic.meta.tmp` and rename it; two at
    once renamed one file twice (`file operation failed ... rename ... No such file`)."""
    from kafka import KafkaConsumer

    topics = [f"race-{i}" for i in range(20)]
    errors, start = [], threading.Barrier(12)

    def produce(k):
        p = Producer({"bootstrap.servers": bootstrap(node), "linger.ms": 0})
        start.wait()
        for t in topics:
            p.produce(t, value=f"{k}".encode(), on_delivery=lambda e, m: e and errors.append(e))
        if p.flush(30) != 0:
            errors.append("unflushed")

    def describe_topics():
        start.wait()
        kc = KafkaConsumer(bootstrap_servers=bootstrap(node), group_id=None)
        for t in topics:
            kc.partitions_for_topic(t)
        kc.close()

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(8)]
    threads += [threading.Thread(target=describe_topics) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    assert "file operation failed" not in node.log_text()
    for t in topics:
        meta = (node.data / "log" / t / "topic.meta").read_text()
        assert meta.startswith("partitions=1\n"), (t, meta)
    node.stop()
    node.restart()
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "race"})
    c.assign([TopicPartition(t, 0, 0) for t in topics])
    got, deadline = [], time.time() + 20
    while len(got) < 8 * len(topics) and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None:
            assert m.error() is None, m.error()
            got.append((m.topic(), m.value().decode()))
    c.close()
    assert sorted(got) == sorted((t, str(k)) for t in topics for k in range(8))


# ----- CreateTopics configs, DescribeConfigs ----------------------------------------------

# Every topic config Kafka documents, with a valid value other than its default.
EVERY_CONFIG = {
    "cleanup.policy": "compact,delete",
    "compression.type": "lz4",
    "compression.gzip.level": "5",
    "compression.lz4.level": "3",
    "compression.zstd.level": "7",
    "delete.retention.ms": "1000",
    "file.delete.delay.ms": "1000",
    "flush.messages": "1000",
    "flush.ms": "1000",
    "follower.replication.throttled.replicas": "*",
    "index.interval.bytes": "8192",
    "leader.replication.throttled.replicas": "*",
    "local.retention.bytes": "-1",
    "local.retention.ms": "-1",
    "max.compaction.lag.ms": "60000",
    "max.message.bytes": "20000",
    "message.downconversion.enable": "false",
    "message.format.version": "3.0-IV1",
    "message.timestamp.after.max.ms": "60000",
    "message.timestamp.before.max.ms": "60000",
    "message.timestamp.difference.max.ms": "60000",
    "message.timestamp.type": "LogAppendTime",
    "min.cleanable.dirty.ratio": "0.25",
    "min.compaction.lag.ms": "10",
    "min.insync.replicas": "1",
    "preallocate": "true",
    "remote.log.copy.disable": "true",
    "remote.log.delete.on.disable": "true",
    "remote.storage.enable": "false",
    "retention.bytes": "123456789",
    "retention.ms": "3600000",
    "segment.bytes": "2097152",
    "segment.index.bytes": "4096",
    "segment.jitter.ms": "10",
    "segment.ms": "3600000",
    "unclean.leader.election.enable": "true",
}


def describe(admin, topic):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([res])[res].result(10)


def create_error(admin, topic, config):
    with pytest.raises(KafkaException) as e:
        admin.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(10)
    return e.value.args[0]


def test_create_topics_accepts_every_documented_config_and_describes_it(node):
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    admin.create_topics([NewTopic("every", 1, 1, config=EVERY_CONFIG)])["every"].result(10)
    configs = describe(admin, "every")
    assert set(configs) == set(EVERY_CONFIG)
    for k, v in EVERY_CONFIG.items():
        assert (configs[k].value, configs[k].source) == (v, ConfigSource.DYNAMIC_TOPIC_CONFIG.value), k

    # The two the issue names, alone; what the topic does not set is the default.
    admin.create_topics([NewTopic("two", 1, 1, config={"cleanup.policy": "compact",
                                                       "compression.type": "lz4"})])["two"].result(10)
    configs = describe(admin, "two")
    assert configs["cleanup.policy"].value == "compact"
    assert configs["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    for k, v in [("retention.ms", "604800000"), ("max.message.bytes", "1048576"),
                 ("segment.bytes", "1073741824"), ("message.timestamp.type", "CreateTime")]:
        assert (configs[k].value, configs[k].source) == (v, ConfigSource.DEFAULT_CONFIG.value), k

    # kafka-python's admin client too.
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic

    k = KafkaAdminClient(bootstrap_servers=bootstrap(node))
    k.create_topics([KNewTopic("kp", 1, 1, topic_configs={"cleanup.policy": "compact",
                                                          "retention.ms": "1000"})])
    k.close()
    assert describe(admin, "kp")["retention.ms"].value == "1000"

    # An unknown name, a value of the wrong type or out of range: INVALID_CONFIG.
    for cfg in [{"retention.forever": "1"}, {"retention.ms": "soon"},
                {"cleanup.policy": "sometimes"}, {"segment.bytes": "1000"},
                {"compression.type": "brotli"}, {"preallocate": "maybe"}]:
        err = create_error(admin, "refused", cfg)
        assert err.code() == KafkaError.INVALID_CONFIG, (cfg, err)
    assert "refused" not in admin.list_topics(timeout=10).topics

    # The configs live in topic.meta: a restart describes the same.
    node.stop()
    node.restart()
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    configs = describe(admin, "every")
    assert {k: configs[k].value for k in EVERY_CONFIG} == EVERY_CONFIG


def test_honoured_topic_configs_take_effect(node):
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    one_mb = str(1 << 20)
    fs = admin.create_topics([
        NewTopic("small", 1, 1, config={"max.message.bytes": "10000"}),
        NewTopic("kept", 1, 1, config={"segment.bytes": one_mb, "retention.bytes": one_mb}),
        NewTopic("compacted", 1, 1, config={"segment.bytes": one_mb, "retention.bytes": one_mb,
                                            "cleanup.policy": "compact"}),
    ])
    for f in fs.values():
        f.result(10)

    # max.message.bytes: a 20 KB batch is refused, a 5 KB one taken.
    p = Producer({"bootstrap.servers": bootstrap(node), "linger.ms": 0, "retries": 0})
    results = []
    for size in (5000, 20000):
        p.produce("small", value=b"m" * size, on_delivery=lambda e, m: results.append(e))
        p.flush(10)
    assert results[0] is None
    assert results[1] is not None and results[1].code() == KafkaError.MSG_SIZE_TOO_LARGE, results

    # segment.bytes rolls at 1 MiB; retention.bytes then deletes old segments, except on a
    # compact-only topic (compaction keeps the latest record of each key: all of them here,
    # every key being different; a compacted topic takes keyed records only).
    lines = "\n".join(f"{i:06d}:" + "z" * 1000 for i in range(4000)) + "\n"
    for topic in ("kept", "compacted"):
        kcat(node, "-P", "-K", ":", "-t", topic, "-X", "batch.size=100000", input=lines.encode())
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "ret"})
    deadline = time.time() + 10
    while c.get_watermark_offsets(TopicPartition("kept", 0), timeout=10)[0] == 0:
        assert time.time() < deadline, "retention never deleted a segment"
        time.sleep(0.1)  # retention runs from the 100 ms tick
    assert len(list((node.data / "log" / "compacted" / "0").glob("*.log"))) >= 4
    assert c.get_watermark_offsets(TopicPartition("compacted", 0), timeout=10) == (0, 4000)
    c.close()


def test_describe_configs_of_the_broker(start):
    node = start("--max-message-bytes", "2mb")
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    res = ConfigResource(ConfigResource.Type.BROKER, "0")
    configs = admin.describe_configs([res])[res].result(10)
    mmb = configs["message.max.bytes"]
    assert (mmb.value, mmb.source) == (str(2 << 20), ConfigSource.STATIC_BROKER_CONFIG.value)
    seg = configs["log.segment.bytes"]
    assert (seg.value, seg.source) == ("1073741824", ConfigSource.DEFAULT_CONFIG.value)
    assert configs["advertised.listeners"].value == f"PLAINTEXT://127.0.0.1:{node.kafka_port}"
    for name in ["log.retention.ms", "num.partitions", "auto.create.topics.enable",
                 "socket.request.max.bytes", "log.dirs", "broker.id"]:
        assert name in configs, name

    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType

    k = KafkaAdminClient(bootstrap_servers=bootstrap(node))
    got = k.describe_configs([KConfigResource(ConfigResourceType.BROKER, "0")], config_filter="all")
    k.close()
    text = repr(got)
    assert "message.max.bytes" in text and str(2 << 20) in text

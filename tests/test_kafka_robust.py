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


# ----- record batches whose header count the records do not back --------------------------

I32_MAX = 2**31 - 1
PRODUCE = 0
CORRUPT, INVALID_RECORD = 2, 87


def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)


def s16(text: str | None) -> bytes:
    return i16(-1) if text is None else i16(len(text)) + text.encode()


def kafka_request(port: int, payload: bytes, timeout=10.0) -> bytes:
    """One request frame; the response without its size."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(i32(len(payload)) + payload)
        got = b""
        while len(got) < 4 or len(got) < 4 + struct.unpack(">i", got[:4])[0]:
            chunk = sock.recv(65536)
            assert chunk, f"closed without an answer after {got!r}"
            got += chunk
        return got[4:]


def produce_v3(topic: str, records: bytes) -> bytes:
    return (i16(PRODUCE) + i16(3) + i32(99) + s16("robust") + s16(None) + i16(-1) + i32(5000)
            + i32(1) + s16(topic) + i32(1) + i32(0) + i32(len(records)) + records)


def produce_answer(body: bytes) -> tuple[int, int]:
    """(error code, base offset) of the one partition of a Produce v3 response."""
    assert struct.unpack(">i", body[:4])[0] == 99
    n = struct.unpack(">h", body[8:10])[0]
    at = 10 + n + 4 + 4
    return struct.unpack(">hq", body[at:at + 10])


def recount(batch: bytes, count: int) -> bytes:
    """`batch` whose header claims `count` records (last offset delta count - 1), CRC right."""
    from kafka.record.util import calc_crc32c

    b = bytearray(batch)
    b[23:27] = i32(count - 1)
    b[57:61] = i32(count)
    b[17:21] = struct.pack(">I", calc_crc32c(bytes(b[21:])))
    return bytes(b)


def client_batch(values, compression=0) -> bytes:
    from kafka.record.default_records import DefaultRecordBatchBuilder

    b = DefaultRecordBatchBuilder(2, compression, False, -1, -1, -1, 1 << 20)
    for i, v in enumerate(values):
        b.append(i, timestamp=1_700_000_000_000 + i, key=None, value=v, headers=[])
    return bytes(b.build())


def one_body_under_a_huge_count() -> bytes:
    """The adversarial batch: a count of 2^31 - 1 (and a matching last offset delta) over one
    8-byte body."""
    head = client_batch([b"x"])[:61]
    b = bytearray(head + b"\x00" * 8)
    b[8:12] = i32(len(b) - 12)
    return recount(bytes(b), I32_MAX)


def test_a_batch_whose_records_do_not_back_its_count_is_refused(node):
    port = node.kafka_port
    topic = "counted"
    kafka_request(port, i16(3) + i16(1) + i32(98) + s16("robust") + i32(1) + s16(topic))  # creates it
    cases = [
        ("2^31-1 over one 8-byte body", one_body_under_a_huge_count(), INVALID_RECORD),
        ("5 claimed, 3 present", recount(client_batch([b"a", b"b", b"c"]), 5), INVALID_RECORD),
        ("2 claimed, 3 present", recount(client_batch([b"a", b"b", b"c"]), 2), INVALID_RECORD),
    ]
    for codec, name in [(1, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd")]:
        try:
            packed = client_batch([b"a" * 100, b"b" * 100, b"c" * 100], codec)
        except Exception as e:  # the client lacks the codec's module
            print(f"{name}: {e}")
            continue
        cases.append((f"{name}: 1000 claimed, 3 present", recount(packed, 1000), None))
        cases.append((f"{name}: honest", packed, 0))
    for name, records, want in cases:
        err, base = produce_answer(kafka_request(port, produce_v3(topic, records)))
        if want is None:
            assert err in (INVALID_RECORD, CORRUPT), (name, err)
        else:
            assert err == want, (name, err, base)
    # The refused batches moved nothing: the next records take the offsets after the honest
    # compressed batches (3 records each), not 2^31 - 1.
    honest = sum(1 for _, _, want in cases if want == 0)
    err, base = produce_answer(kafka_request(port, produce_v3(topic, client_batch([b"after"]))))
    assert (err, base) == (0, 3 * honest)
    consumer = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}", auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition(topic, 0)])
    got = [(r.offset, r.value) for r in consumer]
    consumer.close()
    assert got[-1] == (3 * honest, b"after")
    assert [o for o, _ in got] == list(range(3 * honest + 1))


def test_real_clients_batches_of_every_codec_pass_the_record_walk(node):
    from confluent_kafka import Consumer, Producer

    boot = f"127.0.0.1:{node.kafka_port}"
    codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
    for codec in codecs:
        p = Producer({"bootstrap.servers": boot, "compression.type": codec, "linger.ms": 50})
        for i in range(200):
            p.produce("codecs", value=(f"{codec}-{i}-" + "x" * (i % 37)).encode(), key=b"k%d" % i,
                      headers=[("h", b"v")], partition=0)
        assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": boot, "group.id": "codecs", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    from confluent_kafka import TopicPartition as TP
    c.assign([TP("codecs", 0, 0)])
    seen = []
    deadline = time.time() + 30
    while len(seen) < 200 * len(codecs) and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            seen.append((m.offset(), m.value().decode().split("-")[0]))
    c.close()
    assert [o for o, _ in seen] == list(range(200 * len(codecs)))
    assert [v for _, v in seen] == [c for c in codecs for _ in range(200)]

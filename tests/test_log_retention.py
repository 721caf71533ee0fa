"""Retention under a fast producer: size-based retention deletes only acknowledged segments
that no read is using, so a partition whose planned appends run several segments ahead of
its group commits keeps acknowledging. Before the fix, retention could delete (and close the
write handle of) a rolled segment whose appends were still waiting to be written; the
partition then failed every write for good, the producer retried until its records timed
out, and every segment file left was empty."""

import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 8
RECORDS = 20_000  # per round, spread over the partitions: about 20 MB
VALUE_BYTES = 1000
# Each round is a new topic on the same node. On the old binary about one round in five
# stalled a partition (in 9 runs of 10 within 12 rounds), so 20 rounds fail there all but
# about one time in 150; a fixed round takes about 0.3 s.
ROUNDS = 20


def produce_all(bootstrap, topic):
    """Produce RECORDS records as fast as the client allows (acks=all, pipelined without a
    bound), round-robin over the partitions; the last one of each partition names itself.
    Returns the delivery reports as (partition, error, offset) and how many never came."""
    reports = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "batch.size": 200_000, "enable.idempotence": False,
                  "message.timeout.ms": 5000,
                  "on_delivery": lambda err, m: reports.append((m.partition(), err, m.offset()))})
    filler = b"v" * VALUE_BYTES
    for i in range(RECORDS):
        value = last_value(topic, i) if i >= RECORDS - PARTITIONS else filler
        while True:
            try:
                p.produce(topic, value=value, partition=i % PARTITIONS)
                break
            except BufferError:
                p.poll(0.05)
    left = p.flush(10)
    return reports, left


def last_value(topic, i):
    return f"{topic}-{i:05d}-".encode().ljust(VALUE_BYTES, b"v")


def tails(bootstrap, topic, ends):
    """The last record of each partition, read by one consumer from each end - 1."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"tail-{topic}",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, k, ends[k] - 1) for k in range(PARTITIONS)])
    got = {}
    deadline = time.time() + 15
    try:
        while len(got) < PARTITIONS and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                continue
            got.setdefault(m.partition(), (m.offset(), m.value()))
        return got
    finally:
        c.close()


def test_retention_never_stalls_a_fast_producer(start):
    # Segments of 64 KiB: each ~200 KB batch rolls a new one, so planned appends often wait
    # in segments behind the active one while earlier groups are being written, and a
    # retention.bytes of 1 deletes, at each 100 ms tick, every segment retention may delete.
    node = start("--segment-bytes", "64kb")
    bootstrap = f"127.0.0.1:{node.kafka_port}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    per_part = RECORDS // PARTITIONS
    for r in range(ROUNDS):
        topic = f"ret-{r}"
        admin.create_topics([NewTopic(topic, PARTITIONS, 1, config={
            "cleanup.policy": "delete", "retention.bytes": "1"})])[topic].result(10)
        reports, left = produce_all(bootstrap, topic)
        errors = [e for _, e, _ in reports if e is not None]
        assert left == 0 and not errors, (
            f"round {r}: {left} records never acknowledged, {len(errors)} failed "
            f"({errors[:1]}); segments: "
            + str(sorted((f.parent.name, f.name, f.stat().st_size)
                         for f in (node.data / "log" / topic).glob("*/*.log"))))
        for k in range(PARTITIONS):
            offsets = sorted(o for pk, _, o in reports if pk == k)
            assert offsets == list(range(per_part)), f"round {r} partition {k}"
        got = tails(bootstrap, topic, [per_part] * PARTITIONS)
        for k in range(PARTITIONS):
            assert k in got, f"round {r}: nothing read from partition {k}'s tail"
            off, value = got[k]
            last = (per_part - 1) * PARTITIONS + k  # records go round-robin
            assert off == per_part - 1
            assert value == last_value(topic, last), (r, k, value[:20])
    # Retention did run: the first topic's partitions start past offset 0.
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    lo, hi = c.get_watermark_offsets(TopicPartition("ret-0", 0), timeout=10)
    c.close()
    assert 0 < lo < hi == per_part, (lo, hi)
    assert "stops taking writes" not in node.log_text()

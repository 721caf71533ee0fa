"""Kafka admin APIs through real clients (confluent-kafka's AdminClient, kafka-python's
KafkaAdminClient, kcat): CreatePartitions, AlterConfigs, IncrementalAlterConfigs,
DeleteRecords, DescribeConfigs with synonyms, ApiVersions; and file descriptors as a
budgeted resource (--max-partitions, checked against `ulimit -n`)."""

import os
import socket
import stat
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

from conftest import binary, keys_on
from kafka_util import bootstrap


def admin(node) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap(node)})


def kcat(node, *args, input=None, timeout=60):
    r = subprocess.run(["kcat", "-b", bootstrap(node), *args],
                       input=input, capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def create(a, *topics):
    for f in a.create_topics(list(topics)).values():
        f.result(10)


def error_of(future) -> KafkaError:
    with pytest.raises(KafkaException) as e:
        future.result(10)
    return e.value.args[0]


def partitions_of(a, topic) -> int:
    return len(a.list_topics(topic, timeout=10).topics[topic].partitions)


def produce(node, topic, values, partition, **conf):
    p = Producer({"bootstrap.servers": bootstrap(node), "acks": "all", **conf})
    errors = []
    for v in values:
        p.produce(topic, value=v, partition=partition, on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0 and not errors, errors


def watermarks(node, topic, partition):
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        c.close()


def describe(a, topic, **kw):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return a.describe_configs([res], **kw)[res].result(10)


def incremental(a, topic, *ops, validate_only=False):
    entries = [ConfigEntry(n, v, incremental_operation=op) for n, op, v in ops]
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    return a.incremental_alter_configs([res], validate_only=validate_only)[res]


# ----- CreatePartitions ---------------------------------------------------------------------

def test_create_partitions_grows_a_topic_durably(node):
    a = admin(node)
    create(a, NewTopic("grow", 2, 1))
    produce(node, "grow", [b"old-0"], 0)

    # validate_only checks and changes nothing.
    a.create_partitions([NewPartitions("grow", 6)], validate_only=True)["grow"].result(10)
    assert partitions_of(a, "grow") == 2

    a.create_partitions([NewPartitions("grow", 6)])["grow"].result(10)
    assert partitions_of(a, "grow") == 6
    for p in range(6):
        assert (node.data / "log" / "grow" / str(p)).is_dir(), p
    # The new partitions take records and serve them, on whichever shard owns them.
    for p in range(2, 6):
        produce(node, "grow", [b"new-%d" % p], p)
    for p in range(2, 6):
        assert kcat(node, "-C", "-t", "grow", "-p", str(p), "-o", "beginning", "-e", "-q") == f"new-{p}\n"

    # A decrease, or the same count: INVALID_PARTITIONS with Kafka's messages.
    e = error_of(a.create_partitions([NewPartitions("grow", 3)])["grow"])
    assert e.code() == KafkaError.INVALID_PARTITIONS and "higher than the requested 3" in e.str(), e
    e = error_of(a.create_partitions([NewPartitions("grow", 6)])["grow"])
    assert e.code() == KafkaError.INVALID_PARTITIONS and "already has 6" in e.str(), e
    e = error_of(a.create_partitions([NewPartitions("nope", 6)])["nope"])
    assert e.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, e
    # Replicas on another broker: there is none.
    e = error_of(a.create_partitions([NewPartitions("grow", 7, replica_assignment=[[5]])])["grow"])
    assert e.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, e

    # kafka-python's admin client, and the count lives in topic.meta across a restart.
    from kafka import KafkaAdminClient
    from kafka.admin import NewPartitions as KNewPartitions

    k = KafkaAdminClient(bootstrap_servers=bootstrap(node))
    k.create_partitions({"grow": KNewPartitions(8)})
    k.close()
    assert partitions_of(a, "grow") == 8
    assert "partitions=8" in (node.data / "log" / "grow" / "topic.meta").read_text()
    node.stop()
    node.restart()
    a = admin(node)
    assert partitions_of(a, "grow") == 8
    assert kcat(node, "-C", "-t", "grow", "-p", "0", "-o", "beginning", "-e", "-q") == "old-0\n"
    assert kcat(node, "-C", "-t", "grow", "-p", "5", "-o", "beginning", "-e", "-q") == "new-5\n"
    produce(node, "grow", [b"after"], 7)
    assert watermarks(node, "grow", 7) == (0, 1)


def test_concurrent_changes_of_one_topic_agree_on_every_shard(node):
    # Grows and config changes of one topic sent at once: each is applied or answered
    # CONCURRENT_TRANSACTIONS (retry), and every shard ends with the same topic.
    a = admin(node)
    create(a, NewTopic("busy", 1, 1))
    count, retention, raced = 1, None, 0
    for k in range(2, 12):
        grow = a.create_partitions([NewPartitions("busy", k)])["busy"]
        alter = incremental(a, "busy", ("retention.ms", AlterConfigOpType.SET, str(1000 * k)))
        for f, what in ((grow, "grow"), (alter, "alter")):
            e = f.exception(10)
            if e is None:
                if what == "grow":
                    count = k
                else:
                    retention = str(1000 * k)
            else:
                assert e.args[0].code() in (KafkaError.CONCURRENT_TRANSACTIONS,
                                            KafkaError.INVALID_PARTITIONS), e
                raced += 1  # noqa: SIM113 (how many lost, for a failing run's locals)
    for _ in range(2):
        assert partitions_of(a, "busy") == count
        if retention:
            assert describe(a, "busy")["retention.ms"].value == retention
        # Every partition takes a record on whichever shard owns it.
        for p in range(count):
            produce(node, "busy", [b"x"], p)
        node.stop()
        node.restart()
        a = admin(node)


def test_a_topic_deleted_while_it_is_changed_stays_deleted(node):
    a = admin(node)
    names = [f"gone{i}" for i in range(12)]
    create(a, *[NewTopic(n, 2, 1) for n in names])
    for n in names:
        # The change and the delete at once: whichever order they take, the topic is gone
        # afterwards, also after a restart (a topic.meta renamed in after the delete's
        # unlink would bring it back with empty partitions).
        change = incremental(a, n, ("retention.ms", AlterConfigOpType.SET, "5000"))
        grow = a.create_partitions([NewPartitions(n, 4)])[n]
        gone = a.delete_topics([n])[n]
        assert gone.exception(10) is None
        for f in (change, grow):
            e = f.exception(10)
            assert e is None or e.args[0].code() in (
                KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.CONCURRENT_TRANSACTIONS), e
    assert not set(names) & set(a.list_topics(timeout=10).topics)
    node.kill9()
    node.restart()
    assert not set(names) & set(admin(node).list_topics(timeout=10).topics)
    assert not any((node.data / "log" / n / "topic.meta").exists() for n in names)


# ----- AlterConfigs and IncrementalAlterConfigs ---------------------------------------------

def test_incremental_alter_configs_set_delete_append_subtract(node):
    a = admin(node)
    create(a, NewTopic("conf", 1, 1, config={"compression.type": "lz4"}))
    S, D, A, U = (AlterConfigOpType.SET, AlterConfigOpType.DELETE,
                  AlterConfigOpType.APPEND, AlterConfigOpType.SUBTRACT)

    incremental(a, "conf", ("retention.ms", S, "3600000"), ("preallocate", S, "true"),
                ("cleanup.policy", A, "compact")).result(10)
    c = describe(a, "conf")
    assert (c["retention.ms"].value, c["retention.ms"].source) == (
        "3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert c["preallocate"].value == "true"
    assert c["cleanup.policy"].value == "delete,compact"
    assert c["compression.type"].value == "lz4", "a config not named stays"

    incremental(a, "conf", ("cleanup.policy", U, "delete"), ("retention.ms", D, None)).result(10)
    c = describe(a, "conf")
    assert c["cleanup.policy"].value == "compact"
    assert (c["retention.ms"].value, c["retention.ms"].source) == (
        "604800000", ConfigSource.DEFAULT_CONFIG.value)

    # validate_only changes nothing.
    incremental(a, "conf", ("retention.ms", S, "5"), validate_only=True).result(10)
    assert describe(a, "conf")["retention.ms"].value == "604800000"

    # Refused: an unknown key, a bad value, APPEND to a config that is not a list.
    for op in [("retention.forever", S, "1"), ("retention.ms", S, "soon"),
               ("segment.bytes", S, "1"), ("retention.ms", A, "5")]:
        e = error_of(incremental(a, "conf", op))
        assert e.code() == KafkaError.INVALID_CONFIG, (op, e)
    e = error_of(incremental(a, "nope", ("retention.ms", S, "5")))
    assert e.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, e

    # The broker's configs are flags: a clear refusal that names them.
    res = ConfigResource(ConfigResource.Type.BROKER, "0", incremental_configs=[
        ConfigEntry("log.retention.ms", "5", incremental_operation=S)])
    e = error_of(a.incremental_alter_configs([res])[res])
    assert e.code() == KafkaError.INVALID_REQUEST and "log.retention.ms" in e.str(), e

    # Durable: topic.meta carries the change across a kill -9.
    node.kill9()
    node.restart()
    c = describe(admin(node), "conf")
    assert (c["cleanup.policy"].value, c["preallocate"].value, c["compression.type"].value) == (
        "compact", "true", "lz4")


def test_alter_configs_replaces_the_topic_configs(node):
    a = admin(node)
    create(a, NewTopic("whole", 1, 1, config={"retention.ms": "1000", "preallocate": "true"}))
    res = ConfigResource(ConfigResource.Type.TOPIC, "whole",
                         set_config={"max.message.bytes": "20000"})
    a.alter_configs([res])[res].result(10)
    c = describe(a, "whole")
    assert c["max.message.bytes"].value == "20000"
    # Not named: back to the defaults (AlterConfigs is not incremental).
    assert c["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert c["preallocate"].value == "false"

    # It takes effect: a 30 KB batch is now too large.
    p = Producer({"bootstrap.servers": bootstrap(node), "retries": 0})
    got = []
    p.produce("whole", value=b"x" * 30000, on_delivery=lambda e, m: got.append(e))
    p.flush(10)
    assert got[0] is not None and got[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, got

    # kafka-python: IncrementalAlterConfigs (its default when the broker lists it), then
    # AlterConfigs forced.
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KRes, ConfigResourceType

    k = KafkaAdminClient(bootstrap_servers=bootstrap(node))
    k.alter_configs([KRes(ConfigResourceType.TOPIC, "whole", configs={"retention.ms": "7000"})])
    c = describe(a, "whole")
    assert (c["retention.ms"].value, c["max.message.bytes"].value) == ("7000", "20000")
    k.alter_configs([KRes(ConfigResourceType.TOPIC, "whole",
                          configs={"max.message.bytes": ("DELETE", None)})])
    assert describe(a, "whole")["max.message.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    k.alter_configs([KRes(ConfigResourceType.TOPIC, "whole", configs={"retention.ms": "8000"})],
                    incremental=False)
    assert describe(a, "whole")["retention.ms"].value == "8000"
    k.close()


def test_altered_retention_and_segment_bytes_take_effect(node):
    a = admin(node)
    create(a, NewTopic("shrink", 1, 1))
    one_mb = str(1 << 20)
    incremental(a, "shrink", ("segment.bytes", AlterConfigOpType.SET, one_mb),
                ("retention.bytes", AlterConfigOpType.SET, one_mb)).result(10)
    lines = "\n".join(f"{i:06d}-" + "z" * 1000 for i in range(4000)) + "\n"
    kcat(node, "-P", "-t", "shrink", "-X", "batch.size=100000", input=lines.encode())
    # Rolled at 1 MiB; retention (from the 100 ms tick) deletes the oldest segments.
    def segments():
        return len(list((node.data / "log" / "shrink" / "0").glob("*.log")))

    deadline = time.time() + 10
    while watermarks(node, "shrink", 0)[0] == 0 or segments() > 3:
        assert time.time() < deadline, f"retention left {segments()} segments"
        time.sleep(0.1)


# ----- DeleteRecords ------------------------------------------------------------------------

def test_delete_records_moves_the_log_start_durably(node):
    a = admin(node)
    create(a, NewTopic("trim", 2, 1, config={"segment.bytes": str(1 << 20)}))
    values = [b"%05d-" % i + b"y" * 20000 for i in range(200)]  # ~4 MB: several segments
    produce(node, "trim", values, 0, **{"linger.ms": 5})
    segments = sorted((node.data / "log" / "trim" / "0").glob("*.log"))
    assert len(segments) >= 3

    [(tp, f)] = a.delete_records([TopicPartition("trim", 0, 150)]).items()
    assert f.result(10).low_watermark == 150
    assert watermarks(node, "trim", 0) == (150, 200)
    # Whole segments below the start are gone; the one holding 150 stays.
    left = sorted((node.data / "log" / "trim" / "0").glob("*.log"))
    assert len(left) < len(segments)
    assert all(int(p.stem) <= 150 for p in left[:1])

    # kcat from the beginning starts at 150; a fetch below it is OFFSET_OUT_OF_RANGE.
    out = kcat(node, "-C", "-t", "trim", "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%o\n")
    assert out.split() == [str(o) for o in range(150, 200)]
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "low",
                  "auto.offset.reset": "error", "enable.auto.commit": False})
    c.assign([TopicPartition("trim", 0, 10)])
    deadline, err = time.time() + 10, None
    while err is None and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error():
            err = m.error()
        assert m is None or m.error() or m.offset() >= 150
    c.close()
    assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET, err

    # Below the start changes nothing; past the high watermark is refused; -1 is the end.
    [(_, f)] = a.delete_records([TopicPartition("trim", 0, 10)]).items()
    assert f.result(10).low_watermark == 150
    [(_, f)] = a.delete_records([TopicPartition("trim", 0, 500)]).items()
    assert error_of(f).code() == KafkaError.OFFSET_OUT_OF_RANGE
    produce(node, "trim", [b"a", b"b", b"c"], 1)
    from kafka import KafkaAdminClient
    from kafka.structs import TopicPartition as KTP

    k = KafkaAdminClient(bootstrap_servers=bootstrap(node))
    got = k.delete_records({KTP("trim", 1): -1})
    k.close()
    assert watermarks(node, "trim", 1) == (3, 3), got

    # Several at once on one partition: written one after another, the last one wins.
    futures = [a.delete_records([TopicPartition("trim", 0, o)]) for o in (153, 151, 155, 152)]
    lows = [f.result(10).low_watermark for fs in futures for f in fs.values()]
    assert max(lows) == 155 and all(low >= o for low, o in zip(lows, (153, 151, 155, 152))), lows
    assert watermarks(node, "trim", 0) == (155, 200)

    # It survives kill -9.
    node.kill9()
    node.restart()
    assert watermarks(node, "trim", 0) == (155, 200)
    assert watermarks(node, "trim", 1) == (3, 3)
    out = kcat(node, "-C", "-t", "trim", "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%o\n")
    assert out.split()[0] == "155"


# ----- DescribeConfigs and ApiVersions ------------------------------------------------------

def test_describe_configs_answers_synonyms_and_sources(start):
    node = start("--retention-ms", "3600000")
    a = admin(node)
    create(a, NewTopic("syn", 1, 1, config={"segment.bytes": str(2 << 20)}))
    c = describe(a, "syn")  # librdkafka always asks for synonyms
    seg = c["segment.bytes"]
    assert seg.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert [(s.name, s.source) for s in seg.synonyms.values()] == [
        ("segment.bytes", ConfigSource.DYNAMIC_TOPIC_CONFIG.value),
        ("log.segment.bytes", ConfigSource.DEFAULT_CONFIG.value)]
    # Not set by the topic, set by a flag: the broker's value and source.
    ret = c["retention.ms"]
    assert (ret.value, ret.source) == ("3600000", ConfigSource.STATIC_BROKER_CONFIG.value)
    assert [(s.name, s.value) for s in ret.synonyms.values()] == [("log.retention.ms", "3600000")]

    res = ConfigResource(ConfigResource.Type.BROKER, "0")
    b = a.describe_configs([res])[res].result(10)
    assert int(b["max.partitions"].value) > 0
    assert b["log.retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value


def kafka_request(port, payload: bytes, timeout=10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        return s.recv(size, socket.MSG_WAITALL)


def test_api_versions_advertises_the_admin_apis(node):
    # ApiVersions v0: api_key, correlation id 7, client id "t".
    body = kafka_request(node.kafka_port, struct.pack(">hhih", 18, 0, 7, 1) + b"t")
    cid, error, n = struct.unpack(">ihi", body[:10])
    assert (cid, error) == (7, 0)
    apis = {}
    for i in range(n):
        key, lo, hi = struct.unpack(">hhh", body[10 + 6 * i:16 + 6 * i])
        apis[key] = (lo, hi)
    # CreatePartitions, AlterConfigs, IncrementalAlterConfigs, DeleteRecords.
    assert apis[37] == (0, 3) and apis[33] == (0, 2) and apis[44] == (0, 1) and apis[21] == (0, 2)


# ----- file descriptors as a budgeted resource ----------------------------------------------

@pytest.fixture
def nofile(tmp_path, monkeypatch):
    """Run the node under `prlimit --nofile=N:N` (soft and hard, so it cannot raise it)."""
    real = binary()

    def limit(n):
        wrapper = tmp_path / f"pinion-nofile-{n}"
        wrapper.write_text(f'#!/bin/sh\nexec prlimit --nofile={n}:{n} {real} "$@"\n')
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PINION_BIN", str(wrapper))

    yield limit
    monkeypatch.setenv("PINION_BIN", real)


def test_partitions_past_the_fd_budget_are_refused_and_the_rest_served(start, nofile):
    nofile(512)
    node = start()
    a = admin(node)
    res = ConfigResource(ConfigResource.Type.BROKER, "0")
    budget = int(a.describe_configs([res])[res].result(10)["max.partitions"].value)
    assert 64 < budget < 256, budget  # 512 fds: 2 per partition after the reserves

    # Fill it: one topic of budget - 10, then what does not fit is refused with a message.
    one_mb = str(1 << 20)
    create(a, NewTopic("many", budget - 10, 1, config={"segment.bytes": one_mb}))
    e = error_of(a.create_topics([NewTopic("more", 20, 1)])["more"])
    assert e.code() == KafkaError.POLICY_VIOLATION and "--max-partitions" in e.str(), e
    e = error_of(a.create_partitions([NewPartitions("many", budget + 1)])["many"])
    assert e.code() == KafkaError.INVALID_PARTITIONS and "--max-partitions" in e.str(), e
    create(a, NewTopic("last", 10, 1))  # exactly to the budget

    # Produce 4 segments' worth to every partition: the rolled segments' read handles stay
    # within the shard's cache, so nothing runs out of descriptors (each used to hold one:
    # 19 + 2 x 112 + 3 x 102 is past 512).
    n = budget - 10
    p = Producer({"bootstrap.servers": bootstrap(node), "acks": "all", "linger.ms": 20,
                  "batch.size": 1 << 20})
    errors = []
    for _ in range(33):
        for i in range(n):
            p.produce("many", value=b"r" * 100_000, partition=i,
                      on_delivery=lambda e, m: e and errors.append(e))
        p.poll(0)
        assert p.flush(60) == 0
    assert not errors, errors[:3]
    assert len(list((node.data / "log" / "many" / "0").glob("*.log"))) >= 4
    fds = len(os.listdir(f"/proc/{node.proc.pid}/fd"))
    assert fds < 512, fds
    # Every record reads back from the beginning (older segments' handles reopen as needed).
    out = kcat(node, "-C", "-t", "many", "-o", "beginning", "-e", "-q", "-f", "%p\n", timeout=120)
    assert len(out.split()) == 33 * n
    # RESP keys of both shards keep answering.
    r = node.client()
    for shard in (0, 1):
        k = keys_on(shard, 1, prefix="fd")[0]
        assert r.set(k, "x") and r.get(k) == b"x"
    assert "Too many open files" not in node.log_text()
    assert "stops taking writes" not in node.log_text()

    # A restart under the same limit recovers every partition.
    node.stop()
    node.restart()
    assert watermarks(node, "many", n - 1) == (0, 33)
    assert len(os.listdir(f"/proc/{node.proc.pid}/fd")) < 512


def test_rolls_that_run_out_of_descriptors_wait_instead_of_failing(start, nofile):
    # 120 idle RESP connections take the descriptors rolls need: opening the new segments
    # fails with EMFILE for a moment. The partitions keep their appends and open again from
    # the next tick; they used to stop taking writes for good (KAFKA_STORAGE_ERROR, retried
    # by the client until its timeout).
    nofile(512)
    node = start()
    a = admin(node)
    n = 110
    create(a, NewTopic("rolls", n, 1, config={"segment.bytes": str(1 << 20)}))
    idle = [socket.create_connection(("127.0.0.1", node.port)) for _ in range(120)]
    p = Producer({"bootstrap.servers": bootstrap(node), "acks": "all", "linger.ms": 20,
                  "batch.size": 1 << 20})
    errors = []
    for _ in range(22):
        for i in range(n):
            p.produce("rolls", value=b"r" * 100_000, partition=i,
                      on_delivery=lambda e, m: e and errors.append(e))
        p.poll(0)
        assert p.flush(60) == 0
    assert not errors, errors[:3]
    for s in idle:
        s.close()
    assert "stops taking writes" not in node.log_text()
    assert sum(watermarks(node, "rolls", i)[1] for i in (0, 50, 109)) == 66
    assert len(list((node.data / "log" / "rolls" / "7").glob("*.log"))) >= 3


def test_a_max_partitions_the_fd_limit_cannot_hold_fails_the_start(start, nofile):
    nofile(512)
    with pytest.raises(RuntimeError) as e:
        start("--max-partitions", "100000")
    text = str(e.value)
    assert "--max-partitions 100000" in text and "ulimit -n" in text, text
    assert "pinion ready" not in text


def test_a_limit_below_what_the_shards_hold_fails_the_start(start, nofile):
    # Refused before any shard starts, saying what to raise (it used to fail somewhere in
    # a shard's start-up, or start with no room for a single partition).
    nofile(64)
    with pytest.raises(RuntimeError) as e:
        start()
    text = str(e.value)
    assert "`ulimit -n` is 64" in text and "pinion ready" not in text, text


def test_a_restart_under_a_lower_fd_limit_fails_clearly_never_ready(start, nofile):
    nofile(1024)
    node = start()
    create(admin(node), NewTopic("wide", 300, 1))
    node.stop()
    # 600 descriptors of partitions under a limit of 256: the start fails and says why.
    nofile(256)
    node.args[0] = binary()
    before = node.log_text().count("pinion ready")
    with pytest.raises(RuntimeError) as e:
        node.restart()
    assert node.log_text().count("pinion ready") == before
    assert "ulimit -n" in str(e.value), str(e.value)[-2000:]
    # Back under a limit that holds them, it starts and serves every partition.
    nofile(1024)
    node.args[0] = binary()
    node.restart()
    assert partitions_of(admin(node), "wide") == 300

"""Kafka transactions (exactly-once) through real clients: confluent-kafka's transactional
producer (abort, then commit), read_committed and read_uncommitted consumers
(confluent-kafka and kafka-python), the last stable offset, zombie fencing,
send_offsets_to_transaction, DescribeTransactions/ListTransactions (kafka-python's admin),
recovery after a crash at each step of the two-phase commit (PINION_TXN_CRASH_AT), the
transaction timeout, and a consume-transform-produce loop across kill -9 rounds
(tools/eos_kill_loop.py)."""

import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tools"))

import eos_kill_loop  # noqa: E402
from kafka_util import bootstrap, create  # noqa: E402

FAST = ("--group-initial-rebalance-delay-ms", "300")


def txn_producer(node, txid, **extra):
    conf = {"bootstrap.servers": bootstrap(node), "transactional.id": txid, "linger.ms": 2}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(20)
    return p


def read_all(node, topic, partitions, isolation, want=None, timeout=15.0, idle=1.0):
    """Every record of `topic` from the start as (partition, offset, value), read with
    `isolation`; stops once `want` records came (or after `idle` s without one)."""
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "reader",
                  "enable.auto.commit": False, "isolation.level": isolation})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = []
    deadline = time.time() + timeout
    last = time.time()
    while time.time() < deadline:
        m = c.poll(0.1)
        if m is None:
            if (want is None or len(out) >= want) and time.time() - last > idle:
                break
            continue
        assert m.error() is None, m.error()
        last = time.time()
        out.append((m.partition(), m.offset(), m.value().decode()))
    c.close()
    return out


def values(records):
    return sorted(v for _, _, v in records)


def test_abort_then_commit_read_committed_sees_only_the_commit(start):
    node = start()
    create(node, "tx", 2)
    p = txn_producer(node, "tx-1")
    p.begin_transaction()
    for i in range(10):
        p.produce("tx", f"aborted-{i}".encode(), partition=i % 2)
    p.flush(10)
    p.abort_transaction(10)
    p.begin_transaction()
    for i in range(10):
        p.produce("tx", f"committed-{i}".encode(), partition=i % 2)
    p.commit_transaction(10)
    committed = [f"committed-{i}" for i in range(10)]
    aborted = [f"aborted-{i}" for i in range(10)]
    rc = read_all(node, "tx", 2, "read_committed", want=10)
    assert values(rc) == sorted(committed)
    ru = read_all(node, "tx", 2, "read_uncommitted", want=20)
    assert values(ru) == sorted(committed + aborted)
    # The markers take offsets the consumers skip: per partition, 5 aborted records, the
    # ABORT marker, 5 committed ones, the COMMIT marker.
    assert sorted(o for part, o, _ in ru if part == 0) == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "wm"})
    assert c.get_watermark_offsets(TopicPartition("tx", 0), timeout=5, cached=False) == (0, 12)
    c.close()


def test_kafka_python_read_committed_consumer(start):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    node = start()
    create(node, "kp", 1)
    p = txn_producer(node, "tx-kp")
    p.begin_transaction()
    for i in range(5):
        p.produce("kp", f"no-{i}".encode(), partition=0)
    p.flush(10)
    p.abort_transaction(10)
    p.begin_transaction()
    for i in range(5):
        p.produce("kp", f"yes-{i}".encode(), partition=0)
    p.commit_transaction(10)

    def consume(isolation, n):
        c = KafkaConsumer(bootstrap_servers=bootstrap(node), isolation_level=isolation,
                          enable_auto_commit=False, consumer_timeout_ms=3000)
        c.assign([KTP("kp", 0)])
        c.seek_to_beginning()
        got = []
        for m in c:
            got.append(m.value.decode())
            if len(got) >= n:
                break
        c.close()
        return got

    assert consume("read_committed", 5) == [f"yes-{i}" for i in range(5)]
    assert sorted(consume("read_uncommitted", 10)) == sorted(
        [f"no-{i}" for i in range(5)] + [f"yes-{i}" for i in range(5)])


def test_an_open_transaction_holds_the_last_stable_offset(start):
    node = start()
    create(node, "lso", 1)
    plain = Producer({"bootstrap.servers": bootstrap(node), "acks": "all"})
    plain.produce("lso", b"before", partition=0)
    plain.flush(10)
    p = txn_producer(node, "tx-lso")
    p.begin_transaction()
    p.produce("lso", b"open", partition=0)
    p.flush(10)
    # A plain record after the open transaction's: readable uncommitted only.
    plain.produce("lso", b"after", partition=0)
    plain.flush(10)
    rc = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "x",
                   "isolation.level": "read_committed"})
    ru = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "x",
                   "isolation.level": "read_uncommitted"})
    tp = TopicPartition("lso", 0)
    # ListOffsets latest: the last stable offset for read_committed.
    assert rc.get_watermark_offsets(tp, timeout=5, cached=False) == (0, 1)
    assert ru.get_watermark_offsets(tp, timeout=5, cached=False) == (0, 3)
    assert values(read_all(node, "lso", 1, "read_committed", idle=1.5)) == ["before"]
    p.commit_transaction(10)
    assert values(read_all(node, "lso", 1, "read_committed", want=3)) == ["after", "before", "open"]
    assert rc.get_watermark_offsets(tp, timeout=5, cached=False) == (0, 4)
    rc.close()
    ru.close()


def test_a_zombie_producer_is_fenced(start):
    node = start()
    create(node, "z", 2)
    old = txn_producer(node, "tx-z")
    old.begin_transaction()
    old.produce("z", b"zombie-1", partition=0)
    old.flush(10)
    # A new instance with the same transactional.id aborts the old one's transaction.
    new = txn_producer(node, "tx-z")
    new.begin_transaction()
    new.produce("z", b"new-1", partition=1)
    new.commit_transaction(10)
    # The old instance can no longer write or commit.
    with pytest.raises(KafkaException) as e:
        old.produce("z", b"zombie-2", partition=1)
        old.commit_transaction(10)
    err = e.value.args[0]
    assert err.fatal() or err.txn_requires_abort(), err
    assert "fenc" in str(err).lower() or "epoch" in str(err).lower(), err
    assert values(read_all(node, "z", 2, "read_committed", want=1)) == ["new-1"]


def test_send_offsets_to_transaction_commits_offsets_with_the_output(start):
    node = start(*FAST)
    create(node, "src", 1)
    create(node, "dst", 1)
    feed = Producer({"bootstrap.servers": bootstrap(node), "acks": "all"})
    for i in range(6):
        feed.produce("src", f"v{i}".encode(), partition=0)
    feed.flush(10)

    def consumer():
        c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "ctp",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "isolation.level": "read_committed"})
        c.subscribe(["src"])
        return c

    c = consumer()
    p = txn_producer(node, "tx-ctp")
    got = []
    deadline = time.time() + 20
    while len(got) < 3 and time.time() < deadline:
        got += [m for m in c.consume(3 - len(got), 0.5) if m.error() is None]
    assert len(got) == 3
    # Aborted: neither output nor offsets.
    p.begin_transaction()
    for m in got:
        p.produce("dst", m.value().upper())
    p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 10)
    p.abort_transaction(10)
    offs = c.committed([TopicPartition("src", 0)], timeout=10)
    assert offs[0].offset < 0
    # Committed: both.
    p.begin_transaction()
    for m in got:
        p.produce("dst", m.value().upper())
    p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 10)
    p.commit_transaction(10)
    c.close()
    c = consumer()
    deadline = time.time() + 20
    while not c.assignment() and time.time() < deadline:
        c.poll(0.2)
    assert c.committed([TopicPartition("src", 0)], timeout=10)[0].offset == 3
    c.close()
    assert values(read_all(node, "dst", 1, "read_committed", want=3)) == ["V0", "V1", "V2"]


def test_describe_and_list_transactions(start):
    from kafka.admin import KafkaAdminClient

    node = start()
    create(node, "d", 2)
    p = txn_producer(node, "tx-d", **{"transaction.timeout.ms": 30000})
    p.begin_transaction()
    p.produce("d", b"x", partition=1)
    p.flush(10)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap(node))
    d = admin.describe_transactions(["tx-d"])["tx-d"]
    assert d.state.value == "Ongoing"
    assert d.transaction_timeout_ms == 30000
    assert d.producer_id >= 0 and d.transaction_start_time_ms > 0
    assert {(tp.topic, tp.partition) for tp in d.topic_partitions} == {("d", 1)}
    listed = [t for ts in admin.list_transactions().values() for t in ts]
    assert [(t.transactional_id, t.state.value) for t in listed] == [("tx-d", "Ongoing")]
    p.commit_transaction(10)
    # The marker flight completes the transaction right after EndTxn is answered.
    deadline = time.time() + 10
    while admin.describe_transactions(["tx-d"])["tx-d"].state.value != "CompleteCommit":
        assert time.time() < deadline
        time.sleep(0.05)
    assert admin.list_transactions(state_filters=["Ongoing"]) in ({}, {0: []})
    admin.close()


def test_transaction_timeout_aborts_and_fences(start):
    node = start()
    create(node, "to", 1)
    p = txn_producer(node, "tx-to", **{"transaction.timeout.ms": 1000})
    p.begin_transaction()
    p.produce("to", b"stuck", partition=0)
    p.flush(10)
    # Nothing commits it: the coordinator aborts it after 1 s, and the LSO moves on.
    deadline = time.time() + 10
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "x",
                  "isolation.level": "read_committed"})
    while c.get_watermark_offsets(TopicPartition("to", 0), timeout=5, cached=False)[1] != 2:
        assert time.time() < deadline, "the timed-out transaction was not aborted"
        time.sleep(0.1)
    c.close()
    assert read_all(node, "to", 1, "read_committed", idle=0.5) == []
    with pytest.raises(KafkaException):
        p.commit_transaction(10)


@pytest.mark.parametrize("step,commit", [
    ("prepare", True), ("prepare", False), ("markers", True), ("complete", True),
])
def test_recovery_finishes_a_transaction_cut_at_each_step(start, monkeypatch, step, commit):
    """PINION_TXN_CRASH_AT=<step> makes the node abort at that step of the two-phase
    commit: `prepare` (PREPARE durable, no marker written), `markers` (the first partition's
    marker durable, the others not), `complete` (COMPLETE durable). After a restart the
    transaction's outcome holds on every partition."""
    monkeypatch.setenv("PINION_TXN_CRASH_AT", step)
    node = start()
    create(node, "cr", 4)
    p = txn_producer(node, f"tx-cr-{step}", **{"message.timeout.ms": 5000})
    p.begin_transaction()
    for i in range(8):
        p.produce("cr", f"r{i}".encode(), partition=i % 4)
    p.flush(10)
    with pytest.raises(KafkaException):
        if commit:
            p.commit_transaction(5)
        else:
            p.abort_transaction(5)
        # A step after the answer: the crash comes right after it.
        deadline = time.time() + 5
        while node.proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        raise KafkaException("the node crashed after answering")
    node.proc.wait(10)
    assert f"crash point {step}" in node.log_text()
    monkeypatch.delenv("PINION_TXN_CRASH_AT")
    node.restart()
    want = [f"r{i}" for i in range(8)] if commit else []
    got = read_all(node, "cr", 4, "read_committed", want=len(want), timeout=20, idle=1.5)
    assert values(got) == sorted(want)
    assert values(read_all(node, "cr", 4, "read_uncommitted", want=8)) == sorted(
        f"r{i}" for i in range(8))
    # Nothing is left open: every partition's LSO is its high watermark.
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "x",
                  "isolation.level": "read_committed"})
    u = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "x"})
    for part in range(4):
        tp = TopicPartition("cr", part)
        deadline = time.time() + 10
        while (c.get_watermark_offsets(tp, timeout=5, cached=False)
               != u.get_watermark_offsets(tp, timeout=5, cached=False)):
            assert time.time() < deadline
            time.sleep(0.1)
    c.close()
    u.close()


def test_exactly_once_output_across_kill_9_rounds(tmp_path):
    """The consume-transform-produce loop of tools/eos_kill_loop.py, with as many kill -9
    rounds as fit in about a minute: 0 duplicates, 0 losses."""
    r = eos_kill_loop.run(rounds=20, per_round=200, seed=7, work=tmp_path,
                          log=lambda _: None, budget_s=50)
    assert r["rounds"] >= 3, r
    assert r["duplicates"] == 0 and r["lost"] == 0 and r["unexpected"] == 0, r
    assert r["in_doubt"] == [], r  # no transaction left between PREPARE and COMPLETE

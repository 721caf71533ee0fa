"""Partition pulls (issue 12, item 4, the log part; `dataplane/src/log/pull/`): node Y copies
a topic-partition from node X by offset over X's Kafka port, tails it, and after X fences
produce, copies the last batches and serves it with identical offsets; X then retires it.
Driven through the admin endpoint, checked with confluent-kafka and hand-built frames.
"""

import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kafka.record.default_records import DefaultRecordBatchBuilder

from test_control import wait_for
from test_log import produce_v3

NOT_LEADER_OR_FOLLOWER = 6


def boot(node) -> str:
    return f"127.0.0.1:{node.kafka_port}"


def admin(node, method, path, **params):
    """An admin endpoint call: (HTTP status, decoded JSON)."""
    q = "&".join(f"{k}={v}" for k, v in params.items())
    url = f"http://127.0.0.1:{node.admin_port}{path}" + (f"?{q}" if q else "")
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=90) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def progress(node, topic, partition):
    st, pulls = admin(node, "GET", "/partitions/pull")
    assert st == 200
    return next((p for p in pulls if p["topic"] == topic and p["partition"] == partition), None)


def wait_caught_up(node, topic, partition, timeout=60):
    def caught():
        p = progress(node, topic, partition)
        assert p["state"] != "failed", p
        return p if p["lag"] == 0 else None
    return wait_for(caught, timeout, what=f"the pull of {topic}-{partition} to catch up")


def create(node, topic, partitions, **config):
    a = AdminClient({"bootstrap.servers": boot(node)})
    a.create_topics([NewTopic(topic, partitions, 1, config={k: str(v) for k, v in config.items()})])[topic].result(15)


def read(node, topic, partition, isolation="read_uncommitted", timeout=60):
    """Every record of the partition from its start: [(offset, key, value, headers)]."""
    c = Consumer({"bootstrap.servers": boot(node), "group.id": "cmp", "enable.auto.commit": False,
                  "isolation.level": isolation, "fetch.max.bytes": 8 << 20})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    if isolation == "read_committed":
        hi = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)[1]
    c.assign([TopicPartition(topic, partition, lo)])
    out = []
    deadline = time.time() + timeout
    idle = time.time()
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            # read_committed hides aborted records and control batches: stop when idle.
            if (out and out[-1][0] >= hi - 1) or time.time() - idle > 2:
                break
            continue
        assert m.error() is None, m.error()
        idle = time.time()
        out.append((m.offset(), m.key(), m.value(), tuple(m.headers() or ())))
    c.close()
    return lo, hi, out


def fill(node, topic, partition, n, txns=10, per_txn=1000, value_bytes=16):
    """`n` records from an idempotent producer (keys, values, headers), then `txns`
    transactions of `per_txn` records, even ones committed and odd ones aborted."""
    p = Producer({"bootstrap.servers": boot(node), "enable.idempotence": True, "linger.ms": 5,
                  "batch.num.messages": 500})
    pad = "x" * value_bytes
    failed = []
    for i in range(n):
        p.produce(topic, key=f"k{i}", value=f"v{i}-{pad}", partition=partition,
                  headers=[("h", str(i).encode())], on_delivery=lambda e, m: e and failed.append(e))
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(60) == 0 and failed == []
    if txns:
        t = Producer({"bootstrap.servers": boot(node), "transactional.id": f"tx-{topic}", "linger.ms": 5})
        t.init_transactions(20)
        for k in range(txns):
            t.begin_transaction()
            tag = "commit" if k % 2 == 0 else "abort"
            for i in range(per_txn):
                t.produce(topic, key=f"t{k}-{i}", value=f"{tag}-{k}-{i}", partition=partition)
            if tag == "commit":
                t.commit_transaction(20)
            else:
                t.flush(20)
                t.abort_transaction(20)


def raw_batch(values, pid=-1, epoch=-1, seq=-1) -> bytes:
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                  batch_size=1 << 20)
    for i, v in enumerate(values):
        b.append(i, int(time.time() * 1000), None, v, [])
    return bytes(b.build())


def raw_fetch(port, topic, partition, offset, max_bytes=1 << 20):
    """Fetch v4 built by hand: (error code, high watermark, record bytes)."""
    t = topic.encode()
    body = struct.pack(">iiiib", -1, 0, 0, max_bytes, 0)
    body += struct.pack(">i", 1) + struct.pack(">h", len(t)) + t
    body += struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, max_bytes)
    header = struct.pack(">hhih", 1, 4, 7, 4) + b"test"
    payload = header + body
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(struct.pack(">i", len(payload)) + payload)
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
        chunk = s.recv(1 << 20)
        assert chunk, "connection closed"
        data += chunk
    s.close()
    r = data[4:]
    pos = 4 + 4 + 4  # correlation id, throttle time, topic count
    (n,) = struct.unpack(">h", r[pos:pos + 2])
    pos += 2 + n + 4  # name, partition count
    _, err, hw, _lso = struct.unpack(">ihqq", r[pos:pos + 22])
    pos += 22
    (aborted,) = struct.unpack(">i", r[pos:pos + 4])
    pos += 4 + max(aborted, 0) * 16
    (size,) = struct.unpack(">i", r[pos:pos + 4])
    return err, hw, r[pos + 4:pos + 4 + max(size, 0)]


def configs(node, topic):
    a = AdminClient({"bootstrap.servers": boot(node)})
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    got = a.describe_configs([res])[res].result(15)
    return {k: v.value for k, v in got.items()}


def partitions_of(node, topic):
    md = AdminClient({"bootstrap.servers": boot(node)}).list_topics(topic, timeout=10)
    return len(md.topics[topic].partitions)


def test_a_pull_moves_a_partition_with_identical_offsets(start):
    x, y = start(), start()
    topic = "moving"
    create(x, topic, 2, **{"segment.bytes": 1 << 20, "retention.ms": 86_400_000})
    fill(x, topic, 0, 40_000, txns=10, per_txn=1000)
    # DeleteRecords: the log start moves into the middle of the log (and of a batch).
    a = AdminClient({"bootstrap.servers": boot(x)})
    futs = a.delete_records([TopicPartition(topic, 0, 1001)])
    for f in futs.values():
        f.result(15)

    # A producer keeps producing to X while Y pulls.
    acked, stop = [], threading.Event()

    def keep_producing():
        p = Producer({"bootstrap.servers": boot(x), "enable.idempotence": True, "linger.ms": 2,
                      "message.timeout.ms": 4000})
        i = 0
        while not stop.is_set():
            p.produce(topic, value=f"bg-{i}", key=f"bg{i}", partition=0, headers=[("bg", b"1")],
                      on_delivery=lambda e, m: None if e else acked.append((m.offset(), m.value())))
            p.poll(0)
            i += 1
            time.sleep(0.0005)
        p.flush(10)

    bg = threading.Thread(target=keep_producing)
    bg.start()
    try:
        st, body = admin(y, "POST", "/partitions/pull", topic=topic, partition=0, frm="")
        assert st == 400 and "from=" in body["error"]
        st, body = admin(y, "POST", "/partitions/pull", topic=topic, partition=0, **{"from": boot(x)})
        assert st == 202, body
        assert body["state"] in ("copying", "caught_up") and body["resumed"] is False
        # Y created the topic as X has it, and the partition answers nothing while it imports.
        assert partitions_of(y, topic) == 2
        cx, cy = configs(x, topic), configs(y, topic)
        for k in ("segment.bytes", "retention.ms", "cleanup.policy"):
            assert cx[k] == cy[k], (k, cx[k], cy[k])
        assert produce_v3(y.kafka_port, topic, 0, raw_batch([b"no"]))[0] == NOT_LEADER_OR_FOLLOWER
        assert raw_fetch(y.kafka_port, topic, 0, 0)[0] == NOT_LEADER_OR_FOLLOWER
        # A second pull of the same partition is refused while one runs.
        st, body = admin(y, "POST", "/partitions/pull", topic=topic, partition=0, **{"from": boot(x)})
        assert st == 409, body
        caught = wait_caught_up(y, topic, 0)
        assert caught["next_offset"] > 50_000
        wait_for(lambda: len(acked) > 200, what="the background producer's acks")
    finally:
        # Fence X: produce pauses (retriable NOT_LEADER_OR_FOLLOWER), the end settles.
        st, fence = admin(x, "POST", "/partitions/release", topic=topic, partition=0)
        stop.set()
        bg.join()
    assert st == 200 and fence["settled"] and fence["state"] == "fenced", fence
    end = fence["end_offset"]
    assert produce_v3(x.kafka_port, topic, 0, raw_batch([b"late"]))[0] == NOT_LEADER_OR_FOLLOWER
    assert all(off < end for off, _ in acked)
    st, done = admin(y, "POST", "/partitions/pull/finish", topic=topic, partition=0, end=end)
    assert st == 200 and done["state"] == "done" and done["lag"] == 0, done
    # X stops serving the partition.
    st, body = admin(x, "POST", "/partitions/release", topic=topic, partition=0, state="retired")
    assert st == 200, body
    assert raw_fetch(x.kafka_port, topic, 0, 1001)[0] == NOT_LEADER_OR_FOLLOWER

    # Every record, at the same offset, with the same key, value and headers (X's copy is
    # read back by serving it again for a moment; then retired again).
    assert admin(x, "POST", "/partitions/release", topic=topic, partition=0, state="serving")[0] == 200
    lo_x, hi_x, on_x = read(x, topic, 0)
    assert admin(x, "POST", "/partitions/release", topic=topic, partition=0, state="retired")[0] == 200
    lo_y, hi_y, on_y = read(y, topic, 0)
    assert (lo_y, hi_y) == (lo_x, hi_x) == (1001, end)
    assert raw_fetch(y.kafka_port, topic, 0, 1000)[0] == 1  # OFFSET_OUT_OF_RANGE: below the start
    assert len(on_y) > 45_000 and on_y == on_x
    by_offset = {o: v for o, _, v, _ in on_y}
    assert acked and all(by_offset.get(o) == v for o, v in acked)
    # read_committed on Y hides the aborted transactions and shows the committed ones.
    _, _, committed = read(y, topic, 0, "read_committed")
    vals = [v.decode() for _, _, v, _ in committed]
    assert not any(v.startswith("abort-") for v in vals)
    assert sum(v.startswith("commit-") for v in vals) == 5 * 1000
    assert sum(v.startswith(b"abort-") for _, _, v, _ in on_y) == 5 * 1000

    # An idempotent producer retrying its last batch against Y gets the original offset,
    # and nothing is appended twice.
    last_bg = max(o for o, _ in acked)
    err, hw, records = raw_fetch(y.kafka_port, topic, 0, last_bg)
    assert err == 0 and hw == end
    size = 12 + struct.unpack(">i", records[8:12])[0]
    first = records[:size]
    base = struct.unpack(">q", first[:8])[0]
    assert struct.unpack(">q", first[43:51])[0] >= 0, "an idempotent producer's batch"
    err, got = produce_v3(y.kafka_port, topic, 0, first)
    assert (err, got) == (0, base)
    assert raw_fetch(y.kafka_port, topic, 0, end)[1] == end
    # New records continue the offsets.
    p = Producer({"bootstrap.servers": boot(y), "enable.idempotence": True})
    offs = []
    p.produce(topic, value=b"after", partition=0, on_delivery=lambda e, m: offs.append(m.offset()))
    assert p.flush(15) == 0 and offs == [end]
    # The other partition of the topic stayed on X; Y's is there and empty.
    assert partitions_of(y, topic) == 2

    # Y serves the partition after a restart too; X keeps it retired.
    y.stop()
    y.restart()
    x.stop()
    x.restart()
    assert raw_fetch(y.kafka_port, topic, 0, end)[1] == end + 1
    assert raw_fetch(x.kafka_port, topic, 0, 1001)[0] == NOT_LEADER_OR_FOLLOWER


def test_a_pull_killed_mid_copy_restarts_and_resumes_or_starts_over(start):
    x, y = start(), start()
    topic = "resumed"
    create(x, topic, 1, **{"segment.bytes": 4 << 20})
    fill(x, topic, 0, 30_000, txns=2, per_txn=500, value_bytes=1000)
    st, body = admin(y, "POST", "/partitions/pull", topic=topic, partition=0, **{"from": boot(x)})
    assert st == 202, body
    wait_for(lambda: progress(y, topic, 0)["next_offset"] > 0, what="the copy to start")
    y.kill9()
    y.restart()
    # Restarted: the partition is still importing (not served); no pull runs.
    assert progress(y, topic, 0) is None
    assert produce_v3(y.kafka_port, topic, 0, raw_batch([b"no"]))[0] == NOT_LEADER_OR_FOLLOWER
    st, body = admin(y, "POST", "/partitions/pull", topic=topic, partition=0, **{"from": boot(x)})
    assert st == 202 and body["resumed"] is True, body
    p = wait_caught_up(y, topic, 0)
    # It continued the copy: what it wrote is less than the partition (30 MB and more).
    assert p["restarted"] is False and p["bytes"] < 30_000 * 1000, p

    # Killed again; meanwhile X's log start moves past what Y copied: the pull starts over.
    y.kill9()
    fill(x, topic, 0, 2_000, txns=0)
    lo, hi = Consumer({"bootstrap.servers": boot(x), "group.id": "w"}).get_watermark_offsets(
        TopicPartition(topic, 0), timeout=10)
    a = AdminClient({"bootstrap.servers": boot(x)})
    for f in a.delete_records([TopicPartition(topic, 0, hi - 500)]).values():
        f.result(15)
    y.restart()
    st, body = admin(y, "POST", "/partitions/pull", topic=topic, partition=0, **{"from": boot(x)})
    assert st == 202 and body["resumed"] is True, body
    p = wait_caught_up(y, topic, 0)
    assert p["restarted"] is True
    st, fence = admin(x, "POST", "/partitions/release", topic=topic, partition=0)
    assert st == 200 and fence["end_offset"] == hi, fence
    st, done = admin(y, "POST", "/partitions/pull/finish", topic=topic, partition=0, end=hi)
    assert st == 200 and done["state"] == "done", done
    assert read(y, topic, 0) == read(x, topic, 0)
    assert read(y, topic, 0)[0] == hi - 500


def test_bad_sources_get_clear_errors(start):
    x, y = start(), start()
    create(x, "t", 1)
    cases = [
        ({"topic": "t", "partition": 0, "from": "127.0.0.1:1"}, 502, "cannot connect"),
        ({"topic": "t", "partition": 0, "from": "no-such-host.invalid:9092"}, 502, "resolve"),
        # An HTTP port is not a Kafka port.
        ({"topic": "t", "partition": 0, "from": f"127.0.0.1:{x.admin_port}"}, 502, "is it a Kafka port"),
        ({"topic": "nope", "partition": 0, "from": boot(x)}, 502, "error code 3"),
        ({"topic": "t", "partition": 5, "from": boot(x)}, 400, "no partition 5"),
        ({"topic": "t", "partition": -1, "from": boot(x)}, 400, "no such partition"),
        ({"topic": "t", "partition": "zero", "from": boot(x)}, 400, "partition="),
    ]
    for params, status, needle in cases:
        st, body = admin(y, "POST", "/partitions/pull", **params)
        assert st == status and needle in body["error"], (params, st, body)
    # Nothing was created or held on Y by the failed starts.
    st, pulls = admin(y, "GET", "/partitions/pull")
    assert st == 200 and pulls == []
    assert set(AdminClient({"bootstrap.servers": boot(y)}).list_topics(timeout=10).topics) <= {"__consumer_offsets"}
    # An import goes only into an empty partition.
    create(y, "full", 1)
    create(x, "full", 1)
    assert produce_v3(y.kafka_port, "full", 0, raw_batch([b"here"]))[0] == 0
    st, body = admin(y, "POST", "/partitions/pull", topic="full", partition=0, **{"from": boot(x)})
    assert st == 409 and "already holds records" in body["error"], body
    # A finish given an end the source is already past (it was not fenced) fails, and the
    # partition stays importing.
    assert produce_v3(x.kafka_port, "t", 0, raw_batch([b"a", b"b"]))[0] == 0
    st, body = admin(y, "POST", "/partitions/pull", topic="t", partition=0, **{"from": boot(x)})
    assert st == 202, body
    st, body = admin(y, "POST", "/partitions/pull/finish", topic="t", partition=0, end=1)
    assert st == 500 and "is the partition fenced there?" in body["error"], body
    assert progress(y, "t", 0)["state"] == "failed"
    assert raw_fetch(y.kafka_port, "t", 0, 0)[0] == NOT_LEADER_OR_FOLLOWER
    # Finishing a pull that does not run, releasing a partition that does not exist.
    assert admin(y, "POST", "/partitions/pull/finish", topic="u", partition=0, end=0)[0] == 404
    assert admin(x, "POST", "/partitions/release", topic="t", partition=3)[0] == 404
    # The admin token guards the endpoints.
    z = start("--admin-token", "s3cret")
    req = urllib.request.Request(f"http://127.0.0.1:{z.admin_port}/partitions/pull")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("served without the token")
    except urllib.error.HTTPError as e:
        assert e.code == 401
    req.add_header("Authorization", "Bearer s3cret")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.loads(r.read()) == []


def test_copy_throughput(start, capsys):
    """How fast a pull copies: about 200 MB of 1 KiB records, from X's start until the
    first Fetch that finds the copy at X's end (progress's `caught_up_s`)."""
    x, y = start(), start()
    topic = "bulk"
    create(x, topic, 1)
    p = Producer({"bootstrap.servers": boot(x), "linger.ms": 20, "batch.size": 1 << 20,
                  "queue.buffering.max.kbytes": 1 << 20, "acks": "all"})
    value = b"y" * 1024
    n = 200_000
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=value, partition=0)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(120) == 0
    st, body = admin(y, "POST", "/partitions/pull", topic=topic, partition=0, **{"from": boot(x)})
    assert st == 202, body
    got = wait_caught_up(y, topic, 0, timeout=120)
    assert got["next_offset"] == n
    mb = got["bytes"] / 1e6
    with capsys.disabled():
        print(f"\npartition pull: {mb:.1f} MB in {got['caught_up_s']:.2f} s = "
              f"{mb / got['caught_up_s']:.0f} MB/s (both nodes on this host)")
    st, fence = admin(x, "POST", "/partitions/release", topic=topic, partition=0)
    st, done = admin(y, "POST", "/partitions/pull/finish", topic=topic, partition=0, end=fence["end_offset"])
    assert st == 200 and done["state"] == "done", done


def test_a_pull_of_a_compacted_log_keeps_its_holes_after_the_policy_changed(start):
    """A log compacted on X has holes; after its topic went back to `delete`, X allows them
    through its `compacted` marker. The copy on Y must allow them too, or Y's recovery (dense
    offsets for a `delete` topic) would cut the log at the first hole."""
    from test_compaction import compacted, create as create_compacted, produce, read_log

    x, y = start(), start()
    topic = "holes"
    create_compacted(x, topic, **{"cleanup.policy": "compact"})
    # Keys of their own before and after a run of keys written again later: compaction keeps
    # the first and drops whole batches of the run, holes between batches.
    pad = "x" * 200
    for phase, n in (("a", 300), ("k", 5000), ("c", 300), ("k", 15_000)):
        produce(x, topic, [((f"k{i % 50}" if phase == "k" else f"{phase}{i}").encode(),
                            f"{phase}{i}-{pad}".encode()) for i in range(n)])
    got, _ = compacted(x, topic, lambda recs: len(recs) < 5_000)
    offsets = [o for o, _, _ in got]
    assert any(b - a > 1 for a, b in zip(offsets, offsets[1:])), ("compaction left holes", len(got), offsets[:5], offsets[-5:])
    a = AdminClient({"bootstrap.servers": boot(x)})
    res = ConfigResource("topic", topic, set_config={"cleanup.policy": "delete"})
    a.alter_configs([res])[res].result(15)

    st, body = admin(y, "POST", "/partitions/pull", topic=topic, partition=0, **{"from": boot(x)})
    assert st == 202, body
    wait_caught_up(y, topic, 0)
    st, fence = admin(x, "POST", "/partitions/release", topic=topic, partition=0)
    assert st == 200 and fence["settled"], fence
    st, done = admin(y, "POST", "/partitions/pull/finish", topic=topic, partition=0, end=fence["end_offset"])
    assert st == 200 and done["state"] == "done", done
    assert configs(y, topic)["cleanup.policy"] == "delete"
    assert read_log(y, topic) == got
    # Y's recovery after a restart keeps the holes: the whole log, at the same offsets.
    y.stop()
    y.restart()
    assert read_log(y, topic) == got

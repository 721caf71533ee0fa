"""Log compaction (`cleanup.policy=compact` and `compact,delete`) through real clients: the
latest value per key survives with its original offset, tombstones go after
delete.retention.ms, the files shrink, keyless records are refused, and a kill at any point
of putting a cleaned segment in place loses nothing. Passes are awaited through
`pinion_log_compaction_passes_total`, never slept on."""

import os
import subprocess
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                  NewTopic)
from kafka_util import bootstrap

ONE_MB = 1 << 20
PASSES = "pinion_log_compaction_passes_total"


def create(node, topic, **config):
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    cfg = {"segment.bytes": str(ONE_MB), "min.cleanable.dirty.ratio": "0.01", **config}
    admin.create_topics([NewTopic(topic, 1, 1, config=cfg)])[topic].result(10)


def produce(node, topic, records, compression="none"):
    """Produce (key, value) pairs in order; returns each one's offset, in order."""
    p = Producer({"bootstrap.servers": bootstrap(node), "linger.ms": 5,
                  "batch.size": 200_000, "compression.type": compression, "acks": "all"})
    offsets = [None] * len(records)

    def done(i):
        def cb(err, msg):
            assert err is None, err
            offsets[i] = msg.offset()
        return cb

    for i, (k, v) in enumerate(records):
        while True:
            try:
                p.produce(topic, key=k, value=v, on_delivery=done(i))
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(30) == 0
    assert None not in offsets
    return offsets


def read_log(node, topic, start=OFFSET_BEGINNING):
    """Every record from `start` to the high watermark: [(offset, key, value)]."""
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "compaction-test",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    tp = TopicPartition(topic, 0, start)
    c.assign([tp])
    out, deadline = [], time.time() + 30
    while time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            break
        out.append((m.offset(), m.key(), m.value()))
    else:
        raise AssertionError("never reached the end of the log")
    c.close()
    return out


def state_of(records):
    """Replay a log into the state it describes: key -> (offset, value)."""
    state = {}
    for off, k, v in records:
        if v is None:
            state.pop(k, None)
        else:
            state[k] = (off, v)
    return state


def watermarks(node, topic):
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()


def wait_passes(node, at_least, timeout=60.0):
    deadline = time.time() + timeout
    while (n := node.metric(PASSES)) < at_least:
        assert time.time() < deadline, f"{PASSES} stayed {n}, expected {at_least}"
        time.sleep(0.05)
    return n


def disk_bytes(node, topic):
    return sum(f.stat().st_size for f in (node.data / "log" / topic / "0").glob("*.log"))


def workload(keys=200, rounds=30, deleted=50, size=1000):
    """(records, compression) to produce in order: many updates per key (half of them in
    lz4 batches of random values, so cleaned compressed batches are rebuilt too), then
    tombstones for the first `deleted` keys, then enough further updates of other keys that
    the tombstones' segment rolls and can be cleaned."""
    key = lambda k: f"k{k:04d}".encode()
    plain = [(key(k), f"r{r:03d}-".encode() + b"v" * size)
             for r in range(rounds // 2) for k in range(keys)]
    packed = [(key(k), os.urandom(size)) for r in range(rounds // 2, rounds) for k in range(keys)]
    tombstones = [(key(k), None) for k in range(deleted)]
    filler = [(key(k), f"f{r:03d}-".encode() + b"w" * size)
              for r in range(16) for k in range(keys - 100, keys)]
    return [(plain, "none"), (packed, "lz4"), (tombstones, "lz4"), (filler, "none")]


def produce_all(node, topic, chunks):
    """Produce the chunks of a workload in order: (records, offsets)."""
    records, offsets = [], []
    for recs, compression in chunks:
        offsets += produce(node, topic, recs, compression=compression)
        records += recs
    return records, offsets


def compacted(node, topic, small_enough):
    """Await passes until the log read back satisfies `small_enough` (each pass is awaited
    through the passes metric; a segment sealed after a pass started makes another one)."""
    passes = wait_passes(node, 1)
    deadline = time.time() + 60
    while not small_enough(got := read_log(node, topic)):
        assert time.time() < deadline, f"compaction never got there: {len(got)} records"
        passes = wait_passes(node, passes + 1)
    return got, passes


def expected_state(records, offsets):
    return state_of([(o, k, v) for (k, v), o in zip(records, offsets)])


def test_a_consumer_rebuilds_the_latest_state_and_tombstones_go(start):
    node = start()
    create(node, "state", **{"cleanup.policy": "compact", "delete.retention.ms": "5000"})
    chunks = workload()
    records, offsets = produce_all(node, "state", chunks)
    tombstones = chunks[2][0]
    want = expected_state(records, offsets)
    written = sum(len(k) + len(v or b"") for k, v in records)

    got, passes = compacted(node, "state", lambda got: len(got) < len(records) / 3)
    first_pass = time.time()
    assert state_of(got) == want, "the latest value per key, at its original offset"
    offs = [o for o, _, _ in got]
    assert offs == sorted(offs) and len(set(offs)) == len(offs)
    tombstoned = {k for k, v in tombstones}
    if time.time() - first_pass < 2.5:
        # Within delete.retention.ms of the first cleaning a consumer still sees deletes.
        assert any(k in tombstoned and v is None for _, k, v in got)
    assert watermarks(node, "state") == (0, len(records)), "log start and end stay"
    assert node.metric("pinion_log_compaction_reclaimed_bytes_total") > 0
    assert disk_bytes(node, "state") < written / 3, "the files shrank"

    # A fetch at an offset compaction removed answers from the next record kept.
    kept = set(offs)
    removed = next(o for o in range(len(records)) if o not in kept)
    after = read_log(node, "state", start=removed)
    assert after[0][0] == min(o for o in offs if o > removed)

    # kcat reads the same state (NULL for a tombstone's value with -Z).
    out = subprocess.run(
        ["kcat", "-b", bootstrap(node), "-C", "-t", "state", "-o", "beginning", "-e", "-Z",
         "-f", "%o\t%k\t%S\n"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    lines = [ln.split(b"\t") for ln in out.stdout.splitlines() if ln]
    kstate = {}
    for o, k, size in lines:
        if size == b"-1":
            kstate.pop(k, None)
        else:
            kstate[k] = int(o)
    assert kstate == {k: o for k, (o, _) in want.items()}

    # Past delete.retention.ms the next pass drops the tombstones: the deleted keys are gone.
    deadline = time.time() + 60
    while True:
        wait_passes(node, passes + 1)
        passes = node.metric(PASSES)
        got = read_log(node, "state")
        if not any(k in tombstoned for _, k, _ in got):
            break
        assert time.time() < deadline, "tombstones outlived delete.retention.ms"
    assert state_of(got) == want


def test_keyless_records_are_refused_on_a_compacted_topic(start):
    node = start()
    create(node, "keyed", **{"cleanup.policy": "compact"})
    p = Producer({"bootstrap.servers": bootstrap(node), "linger.ms": 0, "retries": 0})
    errors = []
    # One batch each (a batch with a keyless record is refused whole, as Kafka does).
    p.produce("keyed", value=b"no key", on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    p.produce("keyed", key=b"k", value=b"keyed", on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    assert errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD, errors
    assert errors[1] is None
    assert watermarks(node, "keyed") == (0, 1)


@pytest.mark.parametrize("point", ["written", "renamed"])
def test_kill_mid_compaction_loses_nothing(start, monkeypatch, point):
    """PINION_COMPACT_CRASH_AT aborts the node after the cleaned copy of a segment is
    synced (`written`) or after it is renamed over the segment (`renamed`); the restarted
    node finishes the compaction and every key keeps its latest value."""
    node = start()
    # Not compacted while it is written: a pass of this node could clean the whole log
    # before the stop, and leave the restarted one nothing to change.
    create(node, "crash", **{"cleanup.policy": "delete"})
    records, offsets = produce_all(node, "crash", workload(rounds=12))
    want = expected_state(records, offsets)
    node.stop()
    # Restarted and made compacted, every segment is dirty: the first pass changes the
    # first segment and the node aborts at the injection point.
    monkeypatch.setenv("PINION_COMPACT_CRASH_AT", point)
    node.restart()
    res = ConfigResource("topic", "crash", incremental_configs=[ConfigEntry(
        "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)])
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})  # outlives its futures
    admin.incremental_alter_configs([res])[res].result(10)
    deadline = time.time() + 60
    while node.proc.poll() is None:
        assert time.time() < deadline, "the fault injection point was never reached"
        time.sleep(0.05)
    assert node.proc.returncode != 0
    assert "fault injection" in node.log_text()
    folder = node.data / "log" / "crash" / "0"
    if point == "written":
        assert list(folder.glob("*.cleaned")), "killed with a cleaned copy not yet in place"
    monkeypatch.delenv("PINION_COMPACT_CRASH_AT")
    node.restart()
    assert not list(folder.glob("*.cleaned")), "recovery removed the leftover"
    assert watermarks(node, "crash") == (0, len(records)), "log start and end stay"
    assert state_of(read_log(node, "crash")) == want, "nothing lost after the crash"
    got, _ = compacted(node, "crash", lambda got: len(got) < len(records) / 3)
    assert state_of(got) == want
    # And once more after a clean restart, from what is on disk.
    node.stop()
    node.restart()
    assert state_of(read_log(node, "crash")) == want


def test_kill_9_while_a_cleaned_copy_is_written_loses_nothing(start):
    """A real SIGKILL mid-compaction: each restart cleans every segment again, the test
    kills the node as soon as a `.cleaned` copy appears in the folder, and after the last
    restart a consumer still rebuilds the latest value of every key."""
    node = start()
    create(node, "killed", **{"cleanup.policy": "compact"})
    records, offsets = produce_all(node, "killed", workload(rounds=16))
    want = expected_state(records, offsets)
    folder = node.data / "log" / "killed" / "0"
    hits = 0
    for _ in range(5):
        node.kill9()
        node.restart()
        deadline = time.time() + 5
        while not list(folder.glob("*.cleaned")) and time.time() < deadline:
            time.sleep(0.001)
        hits += bool(list(folder.glob("*.cleaned")))
    node.kill9()
    assert hits >= 1, "never caught a compaction mid-way"
    node.restart()
    assert watermarks(node, "killed") == (0, len(records))
    assert state_of(read_log(node, "killed")) == want
    got, _ = compacted(node, "killed", lambda got: len(got) < len(records) / 3)
    assert state_of(got) == want


def test_compact_delete_also_honours_retention(start):
    node = start()
    create(node, "both", **{"cleanup.policy": "compact,delete",
                            "retention.bytes": str(2 * ONE_MB)})
    # 2000 keys, each written three times in a row: 6 MB, of which retention keeps about
    # 2 MiB, and compaction a third of what is sealed.
    records = [(f"u{i:05d}".encode(), bytes([r]) * 1000) for i in range(2000) for r in range(3)]
    # All 6 MB in flight at once: retention must spare segments whose appends are pending.
    offsets = produce(node, "both", records)
    # Retention runs from the 100 ms tick and unlinks through the ring: await its effect.
    deadline = time.time() + 30
    while (low := watermarks(node, "both")[0]) == 0 or disk_bytes(node, "both") > 4 * ONE_MB:
        assert time.time() < deadline, "retention never deleted the old segments"
        time.sleep(0.1)
    # Compaction too: what is left of the log holds fewer records than its offsets span.
    got, _ = compacted(node, "both", lambda got: len(got) < len(records) - got[0][0])
    assert got[0][0] >= low
    latest = expected_state(records, offsets)
    assert state_of(got) == {k: (o, v) for k, (o, v) in latest.items() if o >= got[0][0]}

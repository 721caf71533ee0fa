"""Recovery's offset checks on real segment files: a topic that is not compacted has dense
offsets, so a bit flipped forward in a batch's base offset (the batch CRC does not cover
it) is corruption, and recovery cuts the log at that batch; a compacted topic's holes (and
those of a topic compacted before its cleanup.policy changed to delete) are kept."""

import struct

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                  NewTopic)

from test_compaction import (bootstrap, compacted, expected_state, produce_all, read_log,
                             state_of, watermarks, workload)


def batches(path):
    """(position, base offset) of every whole batch of a segment file."""
    data, pos, out = path.read_bytes(), 0, []
    while pos + 12 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        if length <= 0 or pos + 12 + length > len(data):
            break
        out.append((pos, base))
        pos += 12 + length
    return out


def produce_one_batch_each(node, topic, values):
    p = Producer({"bootstrap.servers": bootstrap(node), "linger.ms": 0, "acks": "all"})
    for v in values:
        p.produce(topic, value=v)
        assert p.flush(10) == 0


@pytest.mark.parametrize("where", ["last", "middle"])
def test_a_base_offset_flipped_forward_cuts_a_plain_topic_there(start, where):
    node = start()
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    admin.create_topics([NewTopic("plain", 1, 1, config={"segment.bytes": str(1 << 20)})])[
        "plain"].result(10)
    # 100 KB each, one batch each: about ten batches a segment.
    values = [f"value-{i:03d}-".encode() + b"x" * 100_000 for i in range(40)]
    produce_one_batch_each(node, "plain", values)
    assert watermarks(node, "plain") == (0, 40)
    assert node.stop() == 0

    folder = node.data / "log" / "plain" / "0"
    segments = sorted(folder.glob("*.log"))
    assert len(segments) >= 4, "several segments"
    # The log's last batch (only a dense check sees that one), or a batch in the middle
    # of an earlier segment (the batch after it then goes back, too).
    seg = segments[-1] if where == "last" else segments[1]
    at = -1 if where == "last" else len(batches(seg)) // 2
    pos, base = batches(seg)[at]
    with open(seg, "r+b") as f:
        f.seek(pos + 7)
        (low,) = f.read(1)
        f.seek(pos + 7)
        f.write(bytes([low ^ 0x40]))  # +64 (bit 6 of base offsets below 64 is clear)
    assert batches(seg)[at][1] == base + 64

    node.restart()
    assert watermarks(node, "plain") == (0, base), "cut at the flipped batch"
    assert "recovery truncated" in node.log_text()
    got = read_log(node, "plain")
    assert [(o, v) for o, _, v in got] == list(enumerate(values[:base])), "nothing after it"
    assert not [s for s in folder.glob("*.log") if int(s.stem) > base], "later segments gone"
    # Appends continue at the cut, densely.
    produce_one_batch_each(node, "plain", [b"after"])
    assert watermarks(node, "plain") == (0, base + 1)
    assert read_log(node, "plain", start=base)[0][0::2] == (base, b"after")


def test_a_compacted_topic_keeps_its_holes_across_restarts(start):
    """Holes compaction left are kept by recovery, also after the topic's cleanup.policy
    changes to delete (the partition folder says it was compacted)."""
    node = start()
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    admin.create_topics([NewTopic("kept", 1, 1, config={
        "cleanup.policy": "compact", "segment.bytes": str(1 << 20),
        "min.cleanable.dirty.ratio": "0.01"})])["kept"].result(10)
    records, offsets = produce_all(node, "kept", workload(rounds=12))
    want = expected_state(records, offsets)
    got, _ = compacted(node, "kept", lambda got: len(got) < len(records) / 3)
    offs = [o for o, _, _ in got]
    assert offs[-1] - offs[0] + 1 > len(offs), "the log has holes"

    node.stop()
    node.restart()
    assert watermarks(node, "kept") == (0, len(records))
    assert state_of(read_log(node, "kept")) == want
    assert "recovery truncated" not in node.log_text()

    # No longer compacted: the holes stay, and so does every record.
    res = ConfigResource("topic", "kept", incremental_configs=[ConfigEntry(
        "cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(10)
    described = admin.describe_configs([ConfigResource("topic", "kept")])
    config = next(iter(described.values())).result(10)
    assert config["cleanup.policy"].value == "delete"
    node.stop()
    node.restart()
    assert watermarks(node, "kept") == (0, len(records))
    assert [o for o, _, _ in read_log(node, "kept")] == offs
    assert "recovery truncated" not in node.log_text()


def test_a_topic_created_again_after_delete_records_starts_at_zero(start):
    """DeleteTopics removes the partition folder's log-start-offset (and compaction's
    marker) too: before, the folder's rmdir failed on it, and a topic created again under
    the name took the old log start at the next restart."""
    node = start()
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    for round in range(2):
        admin.create_topics([NewTopic("again", 1, 1)])["again"].result(10)
        produce_one_batch_each(node, "again", [b"v"] * 10)
        if round == 0:
            done = admin.delete_records([TopicPartition("again", 0, 5)])
            assert next(iter(done.values())).result(10).low_watermark == 5
            assert watermarks(node, "again") == (5, 10)
            admin.delete_topics(["again"])["again"].result(10)
            assert not (node.data / "log" / "again" / "0").exists()
    node.stop()
    node.restart()
    assert watermarks(node, "again") == (0, 10)

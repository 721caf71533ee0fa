"""kcat in the Kafka client matrix beyond produce and consume: its balanced consumer
(`-G`, librdkafka's KafkaConsumer) sharing a group with another kcat, committing on exit
and resuming from the commits, and its transactional producer (`-X transactional.id`):
committed at end of input, and a transaction left open by a killed kcat aborted by the
coordinator once `transaction.timeout.ms` passes, so read_committed readers skip it."""

import signal
import subprocess
import threading

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from kafka_util import bootstrap, create, kcat, wait_for

FAST = ("--group-initial-rebalance-delay-ms", "300")


class GroupKcat:
    """A `kcat -G` process whose output lines (`partition offset value`) are collected."""

    def __init__(self, node, group, topic):
        self.proc = subprocess.Popen(
            ["kcat", "-b", bootstrap(node), "-G", group, "-u", "-q",
             "-X", "auto.offset.reset=earliest", "-f", "%p %o %s\\n", topic],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            p, o, v = line.decode().rstrip("\n").split(" ", 2)
            self.lines.append((int(p), int(o), v))

    def stop(self):
        """SIGTERM: kcat closes its consumer, which commits what it consumed."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        self.reader.join(10)
        return rc


def describe(admin, group):
    return admin.describe_consumer_groups([group])[group].result(10)


def test_two_kcat_balanced_consumers_split_a_group_commit_and_resume(start):
    node = start(*FAST)
    topic, group = "kcat-group", "kcat-g"
    admin = create(node, topic, 4)
    a, b = GroupKcat(node, group, topic), GroupKcat(node, group, topic)
    try:
        def split():
            d = describe(admin, group)
            parts = [len(m.assignment.topic_partitions) for m in d.members]
            return str(d.state).endswith("STABLE") and len(parts) == 2 and sorted(parts) == [2, 2]
        wait_for(split, 30, "two members with two partitions each")
        values = [f"v{i}" for i in range(400)]
        kcat(node, "-P", "-t", topic, "-K", ":",
             input="".join(f"k{i}:{v}\n" for i, v in enumerate(values)).encode())
        wait_for(lambda: len(a.lines) + len(b.lines) >= len(values), 30, "every record consumed")
    finally:
        rcs = [a.stop(), b.stop()]
    assert rcs == [0, 0], (a.proc.stderr.read().decode(), b.proc.stderr.read().decode())
    got = a.lines + b.lines
    assert sorted(v for _, _, v in got) == sorted(values)  # each exactly once
    parts_a = {p for p, _, _ in a.lines}
    parts_b = {p for p, _, _ in b.lines}
    assert parts_a and parts_b and not parts_a & parts_b, (parts_a, parts_b)
    # Each partition read in order, from offset 0, without a gap.
    for p in range(4):
        offs = [o for q, o, _ in got if q == p]
        assert offs == list(range(len(offs))), (p, offs[:10])

    # The commits made on close are the partitions' ends.
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "probe",
                  "isolation.level": "read_uncommitted"})
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(4)}
    c.close()
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    committed = {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == topic}
    assert committed == ends

    # A new kcat of the group resumes from the commits: only the records added since.
    more = [f"w{i}" for i in range(100)]
    kcat(node, "-P", "-t", topic, "-K", ":",
         input="".join(f"m{i}:{v}\n" for i, v in enumerate(more)).encode())
    out = kcat(node, "-G", group, "-e", "-q", "-X", "auto.offset.reset=earliest",
               "-f", "%s\\n", topic)
    assert sorted(out.split()) == sorted(more)


def test_kcat_transactions_commit_at_end_of_input_and_time_out_when_killed(node):
    topic = "kcat-txn"
    create(node, topic, 1)
    committed = [f"c{i}" for i in range(50)]
    kcat(node, "-P", "-t", topic, "-X", "transactional.id=kcat-t1",
         input=("\n".join(committed) + "\n").encode())

    # An open transaction: kcat is interrupted mid-input and exits without ending it.
    # Enough input that kcat has produced most of it by then.
    pending = [f"a{i:06d}" for i in range(200_000)]
    p = subprocess.Popen(["kcat", "-b", bootstrap(node), "-P", "-t", topic,
                          "-X", "transactional.id=kcat-t2", "-X", "transaction.timeout.ms=6000"],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(("\n".join(pending) + "\n").encode())
    p.stdin.flush()
    tp = TopicPartition(topic, 0)
    unc = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "u",
                    "isolation.level": "read_uncommitted"})
    com = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "c",
                    "isolation.level": "read_committed"})
    wait_for(lambda: unc.get_watermark_offsets(tp, timeout=10)[1] >= 51 + 100_000, 30,
             "the open transaction's records on the partition")
    # While it is open, the last stable offset stays at its first record.
    assert com.get_watermark_offsets(tp, timeout=10)[1] == 51
    p.send_signal(signal.SIGINT)
    p.stdin.close()
    p.wait(30)
    # The coordinator aborts it once its timeout passes: the LSO reaches the end.
    wait_for(lambda: com.get_watermark_offsets(tp, timeout=10)
             == unc.get_watermark_offsets(tp, timeout=10), 30, "the timed-out transaction aborted")
    unc.close()
    com.close()

    later = [f"d{i}" for i in range(20)]
    kcat(node, "-P", "-t", topic, "-X", "transactional.id=kcat-t1",
         input=("\n".join(later) + "\n").encode())
    read = kcat(node, "-C", "-t", topic, "-e", "-q", "-X", "isolation.level=read_committed",
                "-f", "%s\\n").split()
    assert read == committed + later
    everything = kcat(node, "-C", "-t", topic, "-e", "-q", "-X",
                      "isolation.level=read_uncommitted", "-f", "%s\\n").split()
    sent = len(everything) - len(committed) - len(later)
    assert sent >= 100_000
    assert everything == committed + pending[:sent] + later

#!/usr/bin/env python3
"""kill -9 cycles under mixed load: does the node lose or duplicate an acknowledged record?

Each cycle starts the node (timing its recovery: from the process's start to its
"pinion ready" line), then runs at once
  - an idempotent confluent-kafka producer with acks=all over several partitions, each
    record's value unique (cycle:seq), every acknowledgement noted with its offset;
  - a RESP client writing strings, counters and MULTI transactions (load only: the cache
    keeps nothing across a restart, by design);
  - a kafka-python consumer of the consumer group GROUP, assigned every partition at the
    group's committed offsets, that reads on and commits what it read synchronously
    (OffsetCommit) every few records, noting each commit the node acknowledged;
and kills the node with SIGKILL after a random time. With --torn-tail, some cycles then
damage the tail of a partition's last segment (cut it at a random byte, or flip bits in its
last batch) before the next start; the acknowledged records from the damaged batch on are
then not expected any more (the damage destroyed them), all before it are.

After each restart the group's committed offsets are read back (OffsetFetch): for every
partition at least the last acknowledged commit (none lost) and never past the partition's
high watermark (nothing committed that was not produced). The next cycle's consumer resumes
from them and must get no gap: its first record of a partition is the committed offset
itself, and offsets follow one another (records before the committed offset may be read
again; none after it is skipped).

At the end the node starts once more and every partition is read from the beginning:
  - every acknowledged record is at its acknowledged offset with its value (no loss);
  - no value is stored twice (no duplicate), offsets are dense from 0.

    python3 tools/crash_loop.py --cycles 100 [--partitions 6] [--torn-tail] [--seed S]

The binary is $PINION_BIN or target/release/pinion. Prints a summary (records, recovery
times) and exits 1 on any loss or duplicate. tests/test_crash_loop.py runs a few cycles in CI.
"""

import argparse
import os
import random
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
import kafka  # noqa: E402
import kafka.errors  # noqa: E402
import redis  # noqa: E402

from conftest import Node  # noqa: E402

TOPIC = "crashloop"
GROUP = "crashloop-group"
# The consumer commits after this many records of a partition (and when a poll comes back
# empty), so a cycle makes hundreds of commits.
COMMIT_EVERY_RECORDS = 50


def segment_batches(path: Path):
    """(start, end, base offset) of each whole batch stored in a segment file."""
    data, pos, out = path.read_bytes(), 0, []
    while pos + 12 <= len(data):
        base, length = struct.unpack(">qi", data[pos : pos + 12])
        if length <= 0 or pos + 12 + length > len(data):
            break
        out.append((pos, pos + 12 + length, base))
        pos += 12 + length
    return out


def damage_tail(data_dir: Path, partitions: int, rng: random.Random):
    """Cut or flip bits in the last batch of a random partition's last segment. Returns
    (partition, first offset no longer expected) or None when there was nothing to damage."""
    part = rng.randrange(partitions)
    segs = sorted((data_dir / "log" / TOPIC / str(part)).glob("*.log"))
    if not segs:
        return None
    seg = segs[-1]
    batches = segment_batches(seg)
    if not batches:
        return None
    start, end, base = batches[-1]
    with open(seg, "r+b") as f:
        if rng.random() < 0.5:
            f.truncate(rng.randrange(start + 1, end))
        else:
            at = rng.randrange(start + 12, end)
            f.seek(at)
            b = f.read(1)[0]
            f.seek(at)
            f.write(bytes([b ^ (1 << rng.randrange(8))]))
    return part, base


class Load:
    """One cycle's producer and cache traffic, until stopped."""

    def __init__(self, node: Node, cycle: int, partitions: int, resume: dict):
        self.node, self.cycle, self.partitions = node, cycle, partitions
        self.acked = []  # (partition, offset, value)
        self.stop = threading.Event()
        self.cache_ops = 0
        # The group's committed offsets this cycle's consumer starts from (None: nothing
        # committed, from offset 0); what it read; commits the node acknowledged.
        self.resume = resume
        self.commits_acked = []  # [{partition: offset}] in the order acknowledged
        self.commits_failed = 0
        self.gaps = []  # (partition, offset expected, offset read)
        self.consumed = 0
        self.producer = Producer({
            "bootstrap.servers": f"127.0.0.1:{node.kafka_port}",
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "message.timeout.ms": 5000,
            "log_level": 2,  # the node is killed on purpose: no connection-refused noise
        })
        self.threads = [threading.Thread(target=self.produce), threading.Thread(target=self.cache),
                        threading.Thread(target=self.consume_and_commit)]

    def start(self):
        for t in self.threads:
            t.start()

    def report(self, err, msg):
        if err is None:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))

    def produce(self):
        seq = 0
        while not self.stop.is_set():
            value = f"{self.cycle}:{seq}".encode()
            try:
                self.producer.produce(TOPIC, value=value, partition=seq % self.partitions,
                                      on_delivery=self.report)
                seq += 1
            except BufferError:
                pass
            self.producer.poll(0 if seq % 64 else 0.001)

    def cache(self):
        c = redis.Redis(port=self.node.port, socket_timeout=2)
        i = 0
        while not self.stop.is_set():
            try:
                c.set(f"k{i % 1000}", i)
                c.incr("counter")
                p = c.pipeline(transaction=True)
                p.set(f"a{i % 97}", i).incr(f"b{i % 89}").lpush(f"l{i % 13}", i)
                p.execute()
                self.cache_ops += 5
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.01)
            i += 1

    def consume_and_commit(self):
        """Read on from the committed offsets and commit what was read synchronously every
        COMMIT_EVERY_RECORDS records. kafka-python, for its commit timeout: librdkafka's
        commit (and its close after one) waits for a coordinator for ever once the node is
        killed, and would send the stale commit to the next process."""
        c = kafka.KafkaConsumer(
            bootstrap_servers=f"127.0.0.1:{self.node.kafka_port}",
            group_id=GROUP,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            request_timeout_ms=3000,
            reconnect_backoff_max_ms=200,
        )
        start = {p: (off if off is not None else 0) for p, off in self.resume.items()}
        tps = {p: kafka.TopicPartition(TOPIC, p) for p in range(self.partitions)}
        try:
            c.assign(list(tps.values()))
            for p, tp in tps.items():
                c.seek(tp, start[p])
            expect = dict(start)  # the next offset each partition must give
            read = {}  # partition -> the offset to commit (the next one to read)
            since = 0
            while not self.stop.is_set():
                try:
                    batch = c.poll(timeout_ms=50)
                except kafka.errors.KafkaError:
                    continue
                for tp, records in batch.items():
                    for m in records:
                        p, off = tp.partition, m.offset
                        if off > expect[p]:
                            self.gaps.append((p, expect[p], off))
                        expect[p] = max(expect[p], off + 1)
                        read[p] = off + 1
                        self.consumed += 1
                        since += 1
                if not read or (since < COMMIT_EVERY_RECORDS and batch):
                    continue
                offsets = {tps[p]: kafka.OffsetAndMetadata(o, "", -1) for p, o in read.items()}
                since = 0
                try:
                    c.commit(offsets, timeout_ms=3000)
                except kafka.errors.KafkaError:
                    self.commits_failed += 1
                    continue
                self.commits_acked.append(dict(read))
        finally:
            c.close(autocommit=False, timeout_ms=1000)

    def finish(self):
        """After the kill: stop the traffic, drop what was never acknowledged."""
        self.stop.set()
        for t in self.threads:
            t.join()
        self.producer.purge(in_queue=True, in_flight=True)
        self.producer.poll(0)
        self.producer.flush(0)
        self.producer = None  # destroyed now, not retrying against the next start


def read_back(node: Node, partitions: int, timeout=120):
    """Every stored record, per partition, from offset 0 to the high watermark."""
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{node.kafka_port}", "group.id": "crashloop-check",
                  "enable.auto.commit": False, "fetch.max.bytes": 8 << 20})
    highs = {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in range(partitions)}
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(partitions) if highs[p] > 0])
    got = {p: [] for p in range(partitions)}
    deadline = time.time() + timeout
    while any(len(got[p]) < highs[p] for p in got) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            raise RuntimeError(f"consumer: {m.error()}")
        got[m.partition()].append((m.offset(), m.value()))
    c.close()
    return got, highs


def committed_offsets(node: Node, partitions: int):
    """The group's committed offset per partition (None where nothing is committed), and
    each partition's high watermark, as a new client sees them after a restart."""
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{node.kafka_port}", "group.id": GROUP,
                  "enable.auto.commit": False, "log_level": 2})
    try:
        tps = c.committed([TopicPartition(TOPIC, p) for p in range(partitions)], timeout=20)
        got = {}
        for t in tps:
            if t.error is not None:
                raise RuntimeError(f"OffsetFetch {t}: {t.error}")
            got[t.partition] = t.offset if t.offset >= 0 else None
        highs = {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1]
                 for p in range(partitions)}
        return got, highs
    finally:
        c.close()


def check_commits(got: dict, highs: dict, acked: dict, damaged_parts: set):
    """Committed offsets read back against what was acknowledged and what is stored:
    (partition, acknowledged, read back) where a commit went back, and (partition, read
    back, high watermark) where one lies past the records stored (unless a damaged tail
    took those records)."""
    lost = [(p, a, got[p]) for p, a in acked.items() if got[p] is None or got[p] < a]
    beyond = [(p, o, highs[p]) for p, o in got.items()
              if o is not None and o > highs[p] and p not in damaged_parts]
    return lost, beyond


def run(cycles: int, partitions: int, damage_rate: float, seed: int, work: Path, log=print):
    rng = random.Random(seed)
    node = Node(work, "--fsync", "always")
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{node.kafka_port}"})  # outlives its future
    admin.create_topics([NewTopic(TOPIC, partitions, 1)])[TOPIC].result(10)
    expected = {}  # (partition, offset) -> value
    recoveries, damaged, cache_ops = [], 0, 0
    # The group's offsets: the last commit acknowledged per partition, the partitions whose
    # tail a damage cut (their commits may now lie past the records), and what went wrong.
    commit_acked, damaged_parts = {}, set()
    commits, commits_failed, consumed = 0, 0, 0
    commit_lost, commit_beyond, gaps = [], [], []
    resume = {p: None for p in range(partitions)}
    for cycle in range(cycles):
        load = Load(node, cycle, partitions, resume)
        load.start()
        time.sleep(rng.uniform(0.3, 1.5))
        node.kill9()
        load.finish()
        cache_ops += load.cache_ops
        consumed += load.consumed
        commits += len(load.commits_acked)
        commits_failed += load.commits_failed
        gaps += [(cycle, *g) for g in load.gaps]
        for ok in load.commits_acked:
            commit_acked.update(ok)
        for part, off, value in load.acked:
            expected[(part, off)] = value
        if rng.random() < damage_rate:
            hit = damage_tail(node.data, partitions, rng)
            if hit:
                damaged += 1
                part, lost_from = hit
                damaged_parts.add(part)
                expected = {k: v for k, v in expected.items() if not (k[0] == part and k[1] >= lost_from)}
        t0 = time.time()
        node.restart()
        recoveries.append(time.time() - t0)
        resume, highs = committed_offsets(node, partitions)
        lost_c, beyond_c = check_commits(resume, highs, commit_acked, damaged_parts)
        commit_lost += [(cycle, *x) for x in lost_c]
        commit_beyond += [(cycle, *x) for x in beyond_c]
        # A commit past a damaged tail would make the consumer wait for records that are
        # gone: it resumes from the high watermark there, as auto.offset.reset would.
        resume = {p: (min(o, highs[p]) if o is not None else None) for p, o in resume.items()}
        log(f"cycle {cycle}: {len(load.acked)} acked, {len(load.commits_acked)} commits acked, "
            f"recovered in {recoveries[-1]*1000:.0f} ms")
    got, highs = read_back(node, partitions)
    node.stop()
    stored = {p: dict(recs) for p, recs in got.items()}
    lost = [k for k, v in expected.items() if stored[k[0]].get(k[1]) != v]
    values = [v for recs in got.values() for _, v in recs]
    dups = len(values) - len(set(values))
    holes = [p for p, recs in got.items() if [o for o, _ in recs] != list(range(highs[p]))]
    return {
        "cycles": cycles, "acked": len(expected), "stored": len(values), "lost": len(lost),
        "lost_examples": lost[:5], "duplicates": dups, "holes": holes, "damaged": damaged,
        "cache_ops": cache_ops, "truncations_logged": node.log_text().count("recovery truncated"),
        "commits_acked": commits, "commits_failed": commits_failed, "consumed": consumed,
        "commit_lost": commit_lost[:5] + [len(commit_lost)] if commit_lost else [],
        "commit_beyond": commit_beyond[:5] + [len(commit_beyond)] if commit_beyond else [],
        "gaps": gaps[:5] + [len(gaps)] if gaps else [],
        "recovery_ms": {
            "min": min(recoveries) * 1000, "median": statistics.median(recoveries) * 1000,
            "max": max(recoveries) * 1000,
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--torn-tail", action="store_true", help="damage a tail after 30%% of the kills")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        r = run(a.cycles, a.partitions, 0.3 if a.torn_tail else 0.0, a.seed, Path(d))
    print(f"seed {a.seed}: {r}")
    ok = (r["lost"] == 0 and r["duplicates"] == 0 and not r["holes"] and not r["commit_lost"]
          and not r["commit_beyond"] and not r["gaps"])
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

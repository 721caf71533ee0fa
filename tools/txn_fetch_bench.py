#!/usr/bin/env python3
"""read_committed against read_uncommitted fetch throughput, on the same data.

Starts a node (tests/conftest's Node), fills a topic with committed transactions
(confluent-kafka's transactional producer, --txn-mb MiB per transaction, 64 KiB records),
then reads it all from the start with kcat (librdkafka, C), alternating
isolation.level=read_committed and read_uncommitted, --runs times each after one warm-up
read. Prints MB/s of
record bytes per run, the medians and their ratio.

    python3 tools/txn_fetch_bench.py [--mb 512] [--partitions 4] [--runs 3]

The binary is $PINION_BIN or target/release/pinion.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from conftest import Node  # noqa: E402

TOPIC = "txnbench"
RECORD = 64 << 10


def fill(bootstrap: str, mb: int, partitions: int, txn_mb: int) -> int:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "bench",
                  "linger.ms": 5, "batch.size": 1 << 20,
                  "queue.buffering.max.kbytes": 1 << 20})
    p.init_transactions(30)
    value = b"x" * RECORD
    n = mb * (1 << 20) // RECORD
    per_txn = max(1, txn_mb * (1 << 20) // RECORD)
    for i in range(n):
        if i % per_txn == 0:
            if i:
                p.commit_transaction(60)
            p.begin_transaction()
        while True:
            try:
                p.produce(TOPIC, value, partition=i % partitions)
                break
            except BufferError:
                p.poll(0.05)
    p.commit_transaction(60)
    return n * RECORD


def read(bootstrap: str, isolation: str, records: int) -> float:
    t = time.time()
    r = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", TOPIC, "-o", "beginning", "-e", "-q",
         "-f", "%o\n", "-X", f"isolation.level={isolation}",
         "-X", "fetch.max.bytes=52428800", "-X", "queued.max.messages.kbytes=1048576"],
        capture_output=True, text=True, timeout=600)
    took = time.time() - t
    got = r.stdout.count("\n")
    assert got == records, f"{isolation}: read {got} of {records} records: {r.stderr[-500:]}"
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--txn-mb", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        node = Node(Path(d))
        try:
            b = f"127.0.0.1:{node.kafka_port}"
            admin = AdminClient({"bootstrap.servers": b})
            admin.create_topics([NewTopic(TOPIC, a.partitions, 1)])[TOPIC].result(10)
            total = fill(b, a.mb, a.partitions, a.txn_mb)
            records = total // RECORD
            rates = {"read_committed": [], "read_uncommitted": []}
            read(b, "read_uncommitted", records)  # warm-up: the first read is cold
            for k in range(a.runs):
                # Each run reads both ways, the first of the pair alternating.
                for iso in sorted(rates, reverse=k % 2 == 1):
                    s = read(b, iso, records)
                    rates[iso].append(total / s / 1e6)
                    print(f"{iso}: {rates[iso][-1]:.0f} MB/s", flush=True)
            med = {k: statistics.median(v) for k, v in rates.items()}
            print(f"median read_committed {med['read_committed']:.0f} MB/s, "
                  f"read_uncommitted {med['read_uncommitted']:.0f} MB/s, ratio "
                  f"{med['read_committed'] / med['read_uncommitted']:.2f} "
                  f"({a.mb} MiB in {a.mb // a.txn_mb} transactions, {a.partitions} partitions)")
        finally:
            node.stop()


if __name__ == "__main__":
    main()

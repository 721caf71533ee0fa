#!/usr/bin/env python3
"""Exactly-once across kill -9: a consume-transform-produce loop with transactions.

A processor (confluent-kafka, in its own process) reads `eos-in` through a consumer group
with isolation.level=read_committed and, per batch, in one transaction: produces each
record transformed to `eos-out` and commits the consumed offsets with
send_offsets_to_transaction, then commits. Each round feeds new input (acks=all, unique
values), waits until the processor committed a transaction of it, and then, at a random
moment while it is mid-stream, kills the node with SIGKILL, and the processor with it; both
start again. The new processor's transactional producer fences the old one (whose open
transaction the node aborts), a transaction the node had prepared is completed by its
recovery, and the consumer resumes from the committed offsets (KIP-447 stable offsets).

The processor dies with the node because librdkafka 2.16's send_offsets_to_transaction can
block past its timeout once the group coordinator's connection went away
(confluentinc/librdkafka#5456, #5511), so a client left running would hang, not fail.

At the end every input value must be in `eos-out` read with read_committed exactly once:
0 duplicates and 0 losses.

    python3 tools/eos_kill_loop.py --rounds 20 [--per-round 300] [--seed S]

The binary is $PINION_BIN or target/release/pinion. Exits 1 on any loss or duplicate.
tests/test_kafka_txn.py runs as many rounds as fit in about a minute in CI.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from conftest import Node  # noqa: E402

IN, OUT, GROUP, TXID = "eos-in", "eos-out", "eos-group", "eos-tx"
PARTITIONS = 2
# EOS_DEBUG=eos,protocol turns on librdkafka's debug log in the processor.
DEBUG = {"debug": os.environ["EOS_DEBUG"]} if os.environ.get("EOS_DEBUG") else {}


def bootstrap(node) -> str:
    return f"127.0.0.1:{node.kafka_port}"


def clients(bootstrap_servers):
    c = Consumer({
        "bootstrap.servers": bootstrap_servers, "group.id": GROUP,
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
    })
    c.subscribe([IN])
    p = Producer({
        "bootstrap.servers": bootstrap_servers, "transactional.id": TXID,
        "transaction.timeout.ms": 10000, "linger.ms": 2, **DEBUG,
    })
    p.init_transactions(30)
    return c, p


def worker(bootstrap_servers: str, batch: int):
    """The processor process: consume, transform, produce and commit the offsets in one
    transaction per batch; prints a line per committed transaction. On an error it starts
    again from what is committed (new clients: the new producer fences the old one)."""
    c = p = None
    while True:
        try:
            if p is None:
                c, p = clients(bootstrap_servers)
            msgs = [m for m in c.consume(batch, 0.2) if m.error() is None]
            if not msgs:
                continue
            p.begin_transaction()
            for m in msgs:
                p.produce(OUT, b"out:" + m.value(), partition=m.partition())
            p.send_offsets_to_transaction(
                c.position(c.assignment()), c.consumer_group_metadata(), 10)
            p.commit_transaction(10)
            print("commit", flush=True)
        except (KafkaException, RuntimeError) as e:
            print("error", str(e)[:200].replace("\n", " "), flush=True)
            try:
                if c is not None:
                    c.close()
            except (KafkaException, RuntimeError):
                pass
            c = p = None
            time.sleep(0.2)


class Processor:
    """The worker process, and what it reported: committed transactions, errors."""

    def __init__(self, node, batch: int):
        self.node, self.batch = node, batch
        self.commits = 0
        self.errors = []
        self.starts = 0
        self.proc = None

    def start(self):
        self.starts += 1
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", bootstrap(self.node),
             "--batch", str(self.batch)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc):
        for line in proc.stdout:
            if line.startswith("commit"):
                self.commits += 1
            elif line.startswith("error"):
                self.errors.append(line.strip())

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def feed(node, values):
    p = Producer({"bootstrap.servers": bootstrap(node), "acks": "all",
                  "enable.idempotence": True, "linger.ms": 2})
    errors = []
    for i, v in enumerate(values):
        p.produce(IN, v.encode(), partition=i % PARTITIONS,
                  on_delivery=lambda e, m: errors.append(e) if e else None)
    assert p.flush(60) == 0, "feeding the input timed out"
    assert not errors, errors


def read_output(node, want: int, timeout: float):
    """Every value in `eos-out`, read_committed, once `want` of them are there (or the
    timeout passed)."""
    c = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "eos-check",
                  "isolation.level": "read_committed", "enable.auto.commit": False})
    c.assign([TopicPartition(OUT, p, 0) for p in range(PARTITIONS)])
    values = []
    deadline = time.time() + timeout
    idle_since = time.time()
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            if len(values) >= want and time.time() - idle_since > 2:
                break
            continue
        if m.error():
            continue
        idle_since = time.time()
        values.append(m.value().decode())
    c.close()
    return values


def left_in_doubt(node, wait_s=30.0):
    """Transactions still between PREPARE and COMPLETE (PrepareCommit, PrepareAbort) once
    the whole output is readable, after waiting up to `wait_s` for their markers: what
    recovery left undone (kafka-python's ListTransactions)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap(node))
    try:
        deadline = time.time() + wait_s
        while True:
            listed = admin.list_transactions(state_filters=["PrepareCommit", "PrepareAbort"])
            stuck = [t.transactional_id for ts in listed.values() for t in ts]
            if not stuck or time.time() > deadline:
                return stuck
            time.sleep(0.1)
    finally:
        admin.close()


def run(rounds: int, per_round: int, seed: int, work: Path, log=print, budget_s=None):
    rng = random.Random(seed)
    node = Node(work, "--group-initial-rebalance-delay-ms", "300")
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    for t in (IN, OUT):
        admin.create_topics([NewTopic(t, PARTITIONS, 1)])[t].result(10)
    proc = Processor(node, batch=20)
    proc.start()
    fed = []
    started = time.time()
    done_rounds = 0
    try:
        for r in range(rounds):
            if budget_s is not None and time.time() - started > budget_s:
                break
            values = [f"r{r}-{i}" for i in range(per_round)]
            feed(node, values)
            fed += values
            # Kill while the processor is mid-stream: after it committed something new.
            before = proc.commits
            deadline = time.time() + 20
            while proc.commits == before and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
            # The node and the application die together, mid-stream; both come back.
            node.kill9()
            proc.kill()
            node.restart()
            proc.start()
            done_rounds += 1
            log(f"round {r + 1}: fed {len(fed)}, transactions {proc.commits}")
        out = read_output(node, len(fed), timeout=120)
        in_doubt = left_in_doubt(node)
    finally:
        proc.kill()
        node.stop()
    text = node.log_text()
    want = {"out:" + v for v in fed}
    seen = {}
    for v in out:
        seen[v] = seen.get(v, 0) + 1
    dups = sum(n - 1 for n in seen.values() if n > 1)
    lost = len(want - set(seen))
    extra = len(set(seen) - want)
    return {
        "rounds": done_rounds, "input": len(fed), "output": len(out), "duplicates": dups,
        "lost": lost, "unexpected": extra, "transactions": proc.commits,
        "in_doubt": in_doubt,
        "client_errors": len(proc.errors),
        # What the kills left for the node to finish: transactions found prepared at a
        # restart (completed by recovery), open ones aborted when the new producer came.
        "recovered_prepared": text.count("completing a transaction prepared before the restart"),
        "fenced_open": text.count("a new producer of the id: aborting its open transaction"), "seconds": round(time.time() - started, 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=20, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.batch)
    with tempfile.TemporaryDirectory() as d:
        r = run(a.rounds, a.per_round, a.seed, Path(d))
    print(r)
    ok = r["duplicates"] == 0 and r["lost"] == 0 and r["unexpected"] == 0 and not r["in_doubt"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

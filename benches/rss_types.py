#!/usr/bin/env python3
"""RSS per element of each collection type, pinion against redis-server, each started fresh
and alone: 1M elements in one key (list, set of strings, set of integers, sorted set, hash),
and a small-collection-heavy keyspace (100k keys of 10 elements each, per type).

    python3 benches/rss_types.py [--pinion target/release/pinion] [--elements 1000000]

Prints bytes per element for both servers and the ratio pinion / redis (lower is better
for pinion; the goal is at most 1.2).

Before the first reading each server receives WARM_BYTES of traffic that stores nothing
(ECHO): memory a server fills on first use whatever it stores (pinion's provided receive
buffers, 4 MiB per shard by default; redis-server's query buffer) is then in both readings
and not counted as the data's."""

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time

import redis

BATCH = 1000
WARM_BYTES = 16 << 20
WARM_PAYLOAD = b"w" * (16 << 10)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def start(kind, binary, work):
    port = free_port()
    if kind == "redis":
        args = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", work]
    else:
        args = [binary, "--cores", "0", "--resp-listen", f"127.0.0.1:{port}",
                "--kafka-listen", f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{free_port()}",
                "--data-dir", os.path.join(work, "pinion"), "--log-level", "warn"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = redis.Redis(port=port)
    for _ in range(200):
        try:
            c.ping()
            return p, c
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{kind} did not start")


def warm(c):
    pipe = c.pipeline(transaction=False)
    for _ in range(WARM_BYTES // len(WARM_PAYLOAD)):
        pipe.echo(WARM_PAYLOAD)
        if len(pipe) >= 64:
            pipe.execute()
    pipe.execute()


def load_big(c, kind, n):
    pipe = c.pipeline(transaction=False)
    for start in range(0, n, BATCH):
        items = range(start, min(n, start + BATCH))
        if kind == "list":
            pipe.rpush("big", *(f"element:{i:08d}" for i in items))
        elif kind == "set":
            pipe.sadd("big", *(f"member:{i:08d}" for i in items))
        elif kind == "intset":
            pipe.sadd("big", *(str(i * 7) for i in items))
        elif kind == "zset":
            pipe.zadd("big", {f"member:{i:08d}": i * 1.5 for i in items})
        elif kind == "hash":
            pipe.hset("big", mapping={f"field:{i:08d}": f"value:{i}" for i in items})
        if len(pipe) >= 20:
            pipe.execute()
    pipe.execute()


def load_small(c, kind, keys, per_key=10):
    pipe = c.pipeline(transaction=False)
    for k in range(keys):
        key = f"small:{k:08d}"
        items = [f"e{j}:{k}" for j in range(per_key)]
        if kind == "list":
            pipe.rpush(key, *items)
        elif kind in ("set", "intset"):
            pipe.sadd(key, *(items if kind == "set" else [str(j * 1000 + k) for j in range(per_key)]))
        elif kind == "zset":
            pipe.zadd(key, {m: j for j, m in enumerate(items)})
        elif kind == "hash":
            pipe.hset(key, mapping={m: "v" for m in items})
        if len(pipe) >= 500:
            pipe.execute()
    pipe.execute()


def measure(kind, binary, typ, shape, n):
    work = tempfile.mkdtemp()
    try:
        p, c = start(kind, binary, work)
        try:
            warm(c)
            before = rss_bytes(p.pid)
            if shape == "big":
                load_big(c, typ, n)
                count = n
            else:
                load_small(c, typ, n // 10)
                count = n
            after = rss_bytes(p.pid)
            return (after - before) / count
        finally:
            p.terminate()
            p.wait(20)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pinion", default="target/release/pinion")
    ap.add_argument("--elements", type=int, default=1_000_000)
    ap.add_argument("--types", default="list,set,intset,zset,hash")
    a = ap.parse_args()
    print(f"# RSS per element, {a.elements} elements (big: one key; small: {a.elements // 10} keys x 10)")
    print(f"{'case':<14} {'redis_B':>9} {'pinion_B':>9} {'ratio':>7}")
    for typ in a.types.split(","):
        for shape in ("big", "small"):
            r = measure("redis", a.pinion, typ, shape, a.elements)
            p = measure("pinion", a.pinion, typ, shape, a.elements)
            print(f"{typ + '/' + shape:<14} {r:9.1f} {p:9.1f} {p / r if r else 0:7.2f}", flush=True)


if __name__ == "__main__":
    main()

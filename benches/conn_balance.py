#!/usr/bin/env python3
"""Connection balancing policies under skewed connections (issue 12).

For each --conn-balance policy, a fresh node runs two redis-benchmark groups at once:
  heavy: a quarter of the connections, long-lived, pipelining -P 10 (ten times the requests
         of a light connection per round trip);
  light: three quarters, short-lived (-k 0: a new connection for every request).
It reports each shard thread's CPU over the run (utime+stime from
/proc/PID/task/TID/stat of the `shard-N` threads), the imbalance max/mean, the throughput
and the p99 of both groups (redis-benchmark --csv); median of --runs runs.

  PINION_BIN=target/release/pinion python3 benches/conn_balance.py [--cores 0,1] [--runs 3]
"""

import argparse
import csv
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

POLICIES = ["reuseport", "round-robin", "weighted", "least-conn"]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shard_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per shard thread (by thread name)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name.startswith("shard-"):
            fields = stat[stat.rindex(")") + 2 :].split()
            out[name] = (int(fields[11]) + int(fields[12])) / TICKS
    return out


def start(binary, policy, cores, tmp):
    port, kport, aport = free_port(), free_port(), free_port()
    args = [binary, "--cores", cores, "--conn-balance", policy,
            "--resp-listen", f"127.0.0.1:{port}", "--kafka-listen", f"127.0.0.1:{kport}",
            "--admin-listen", f"127.0.0.1:{aport}", "--data-dir", tmp,
            "--max-connections", "100000"]
    log = open(os.path.join(tmp, "log"), "wb")
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 15
    while time.time() < deadline:
        if "pinion ready" in open(os.path.join(tmp, "log"), errors="replace").read():
            return p, port
        if p.poll() is not None:
            sys.exit(open(os.path.join(tmp, "log")).read())
        time.sleep(0.05)
    sys.exit("pinion did not start")


def bench(port, clients, requests, extra, gen_cpus):
    cmd = ["taskset", "-c", gen_cpus, "redis-benchmark", "-p", str(port), "-c", str(clients),
           "-n", str(requests), "-t", "set,get", "-r", "100000", "--csv", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def parse(out: str):
    """(requests/s, p99 ms) summed and worst over the tests of a --csv output."""
    rps, p99 = 0.0, 0.0
    for row in csv.DictReader(io.StringIO(out)):
        rps += float(row["rps"])
        p99 = max(p99, float(row["p99_latency_ms"]))
    return rps, p99


def one(binary, policy, cores, gen_cpus, a):
    with tempfile.TemporaryDirectory() as tmp:
        p, port = start(binary, policy, cores, tmp)
        try:
            before = shard_cpu(p.pid)
            t0 = time.time()
            heavy = bench(port, a.heavy, a.heavy_requests, ["-P", "10"], gen_cpus)
            light = bench(port, a.light, a.light_requests, ["-k", "0"], gen_cpus)
            h_out, _ = heavy.communicate()
            l_out, _ = light.communicate()
            wall = time.time() - t0
            after = shard_cpu(p.pid)
        finally:
            p.terminate()
            p.wait()
    cpu = [after[k] - before.get(k, 0.0) for k in sorted(after)]
    mean = statistics.mean(cpu)
    return {
        "cpu": cpu,
        "imbalance": max(cpu) / mean if mean > 0 else 0.0,
        "heavy": parse(h_out),
        "light": parse(l_out),
        "wall": wall,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cores", default="0,1", help="pinion's shards")
    ap.add_argument("--gen-cpus", default=None, help="redis-benchmark's CPUs (default: pinion's)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--heavy", type=int, default=4, help="long-lived -P 10 connections")
    ap.add_argument("--light", type=int, default=12, help="short-lived connections")
    ap.add_argument("--heavy-requests", type=int, default=200_000)
    ap.add_argument("--light-requests", type=int, default=40_000)
    ap.add_argument("--policies", default=",".join(POLICIES))
    a = ap.parse_args()
    binary = os.environ.get("PINION_BIN", "target/release/pinion")
    gen = a.gen_cpus or a.cores
    print(f"# {a.heavy} heavy (-P 10, {a.heavy_requests} req) + {a.light} light (-k 0, "
          f"{a.light_requests} req) connections; shards on {a.cores}, load on {gen}; "
          f"median of {a.runs}")
    print("| policy | shard CPU s | imbalance max/mean | heavy req/s | heavy p99 ms | light req/s | light p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for policy in a.policies.split(","):
        runs = [one(binary, policy, a.cores, gen, a) for _ in range(a.runs)]
        runs.sort(key=lambda r: r["imbalance"])
        med = runs[len(runs) // 2]
        m = lambda f: statistics.median(f(r) for r in runs)  # noqa: E731
        print(f"| {policy} | {' / '.join(f'{c:.2f}' for c in med['cpu'])} "
              f"| {m(lambda r: r['imbalance']):.2f} (runs {', '.join('%.2f' % r['imbalance'] for r in runs)}) "
              f"| {m(lambda r: r['heavy'][0]):.0f} | {m(lambda r: r['heavy'][1]):.2f} "
              f"| {m(lambda r: r['light'][0]):.0f} | {m(lambda r: r['light'][1]):.2f} |", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Throughput with and without TLS on one node (docs/benchmarks.md, "TLS").

Starts one pinion with plain and TLS listeners for both protocols (certificates made with
the openssl CLI), then alternates plain and TLS runs of the same load, three of each:
redis-benchmark -t set,get at -P 16 and -P 1 (50 connections, 100-byte values), and a
confluent-kafka producer (1 KiB records, acks=1, --fsync never so the disk is not what is
measured). Prints each run, the medians and the TLS/plain ratios, of throughput and of
the node's CPU time per request (user + system, from /proc), which a busy shared machine
disturbs far less than throughput.

    tools/bench_tls.py [--pinion target/release/pinion] [--cores 0,1] [--runs 3]
"""

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certs(d: Path):
    def ossl(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench CA",
         "-addext", "basicConstraints=critical,CA:TRUE")
    (d / "s.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-set_serial", "1", "-days", "2", "-extfile", "s.ext", "-out", "server.pem")


def cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_bench(port, pipeline, tls, ca, n):
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set,get", "-n", str(n),
           "-c", "50", "-P", str(pipeline), "-d", "100", "-q"]
    if tls:
        cmd += ["--tls", "--cacert", str(ca)]
    out = subprocess.run(cmd, capture_output=True, timeout=600, check=True).stdout.decode()
    # -q prints "SET: 123456.78 requests per second, p50=..." (with \r progress before it).
    rates = {}
    for m in re.finditer(r"(SET|GET): ([\d.]+) requests per second", out):
        rates[m.group(1)] = float(m.group(2))
    return rates


KAFKA_PRODUCER = r"""
import sys, time
from confluent_kafka import Producer
boot, n, tls, ca, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
conf = {"bootstrap.servers": boot, "acks": "1", "linger.ms": 5, "batch.size": 262144,
        "queue.buffering.max.messages": 1000000}
if tls:
    conf.update({"security.protocol": "SSL", "ssl.ca.location": ca})
p = Producer(conf)
value = b"x" * 1024
p.produce(topic, value)
p.flush(30)
t = time.perf_counter()
for i in range(n):
    while True:
        try:
            p.produce(topic, value)
            break
        except BufferError:
            p.poll(0.01)
p.flush(60)
print(n / (time.perf_counter() - t))
"""


def kafka_bench(port, tls, ca, n, topic):
    out = subprocess.run([sys.executable, "-c", KAFKA_PRODUCER, f"127.0.0.1:{port}", str(n),
                          "1" if tls else "0", str(ca), topic],
                         capture_output=True, timeout=600, check=True).stdout.decode()
    return float(out.split()[-1])


def main():
    ap = argparse.ArgumentParser()
    root = Path(__file__).resolve().parent.parent
    ap.add_argument("--pinion", default=os.environ.get("PINION_BIN", str(root / "target/release/pinion")))
    ap.add_argument("--cores", default="0,1")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=400_000)
    ap.add_argument("--records", type=int, default=200_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_certs(d)
        ports = {k: free_port() for k in ("resp", "kafka", "resp_tls", "kafka_tls", "admin")}
        log = open(d / "pinion.log", "wb")
        node = subprocess.Popen([
            a.pinion, "--cores", a.cores, "--data-dir", str(d / "data"), "--fsync", "never",
            "--resp-listen", f"127.0.0.1:{ports['resp']}",
            "--kafka-listen", f"127.0.0.1:{ports['kafka']}",
            "--admin-listen", f"127.0.0.1:{ports['admin']}",
            "--resp-tls-listen", f"127.0.0.1:{ports['resp_tls']}",
            "--kafka-tls-listen", f"127.0.0.1:{ports['kafka_tls']}",
            "--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server.key"),
        ], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 15
            while b"pinion ready" not in (d / "pinion.log").read_bytes():
                assert node.poll() is None and time.time() < deadline, (d / "pinion.log").read_text()
                time.sleep(0.05)
            ca = d / "ca.pem"
            results, cpu = {}, {}
            for pipeline in (16, 1):
                n = a.requests if pipeline > 1 else a.requests // 4
                for run in range(a.runs):
                    for tls in (False, True):
                        port = ports["resp_tls"] if tls else ports["resp"]
                        c0 = cpu_s(node.pid)
                        r = redis_bench(port, pipeline, tls, ca, n)
                        us = (cpu_s(node.pid) - c0) * 1e6 / (2 * n)
                        for cmd, v in r.items():
                            results.setdefault((f"{cmd} -P {pipeline}", tls), []).append(v)
                        cpu.setdefault((f"SET+GET -P {pipeline}", tls), []).append(us)
                        print(f"run {run} -P {pipeline} {'tls  ' if tls else 'plain'} {r} node {us:.2f} us/req", flush=True)
            for run in range(a.runs):
                for tls in (False, True):
                    port = ports["kafka_tls"] if tls else ports["kafka"]
                    c0 = cpu_s(node.pid)
                    v = kafka_bench(port, tls, ca, a.records, f"bench-{run}-{int(tls)}")
                    us = (cpu_s(node.pid) - c0) * 1e6 / a.records
                    results.setdefault(("produce 1 KiB", tls), []).append(v)
                    cpu.setdefault(("produce 1 KiB", tls), []).append(us)
                    print(f"run {run} produce {'tls  ' if tls else 'plain'} {v:.0f} records/s node {us:.2f} us/record", flush=True)
            print("\n| load | plain (median) | TLS (median) | TLS / plain |")
            print("| --- | --- | --- | --- |")
            for name in dict.fromkeys(k for k, _ in results):
                p = statistics.median(results[(name, False)])
                t = statistics.median(results[(name, True)])
                unit = "records/s" if "produce" in name else "req/s"
                print(f"| {name} | {p:,.0f} {unit} | {t:,.0f} {unit} | {t / p:.2f} |")
            print("\n| load | node CPU plain (median) | node CPU TLS (median) | TLS / plain |")
            print("| --- | --- | --- | --- |")
            for name in dict.fromkeys(k for k, _ in cpu):
                p = statistics.median(cpu[(name, False)])
                t = statistics.median(cpu[(name, True)])
                unit = "us/record" if "produce" in name else "us/request"
                print(f"| {name} | {p:.2f} {unit} | {t:.2f} {unit} | {t / p:.2f} |")
        finally:
            node.send_signal(signal.SIGTERM)
            node.wait(30)


if __name__ == "__main__":
    main()

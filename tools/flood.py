#!/usr/bin/env python3
"""Memory flood: many connections stream huge requests at a node with a memory budget, while
one well-behaved client measures its latency (issue "Hardening", the first Done-when).

It starts the node itself (free loopback ports, a scratch data directory), then:
- `--resp-conns` connections each stream a `SET` whose bulk string is `--bulk-bytes` long;
- `--kafka-conns` connections each stream Produce requests of `--produce-bytes` (valid
  RecordBatch v2 batches of about 1 MB each, topic `flood`);
- every flooder sends as fast as the node takes its bytes, reads and discards whatever the
  node answers, and reconnects when the node closes it;
- a separate process sends PING, SET and GET of small values one at a time (a client with
  small requests) and records each command's latency;
- the node's RSS is sampled every 20 ms (and VmHWM read at the end).

    python3 tools/flood.py --bin target/release/pinion --budget 1gb \\
        --resp-conns 250 --kafka-conns 250 --seconds 30

Prints one summary (max RSS, the well-behaved client's p50/p99/p99.9/max, what the node
closed) and exits 1 when RSS passed `--rss-limit` or p99 passed `--p99-limit-ms`.
"""

import argparse
import json
import multiprocessing as mp
import os
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

MB = 1 << 20


def parse_size(s: str) -> int:
    m = re.fullmatch(r"(\d+)\s*(b|kb|mb|gb)?", s.strip().lower())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {s}")
    return int(m.group(1)) * {None: 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}[m.group(2)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----- requests --------------------------------------------------------------------------


def varint(v: int) -> bytes:
    z, out = (v << 1) ^ (v >> 63), b""
    while True:
        byte, z = z & 0x7F, z >> 7
        if not z:
            return out + bytes([byte])
        out += bytes([byte | 0x80])


def record_batch(value: bytes) -> bytes:
    """A RecordBatch v2 with one record (no producer id), as a plain producer sends it."""
    from kafka.record.util import calc_crc32c

    r = b"\x00" + varint(0) + varint(0) + varint(-1) + varint(len(value)) + value + varint(0)
    records = varint(len(r)) + r
    ts = int(time.time() * 1000)
    tail = struct.pack(">hiqqqhii", 0, 0, ts, ts, -1, -1, -1, 1) + records
    head = struct.pack(">qiib", 0, 4 + 1 + 4 + len(tail), 0, 2)
    return head + struct.pack(">I", calc_crc32c(tail)) + tail


def produce_request(total: int) -> tuple:
    """(head, batch, count): a Produce v3 request for topic `flood` partition 0 whose records
    are `count` copies of `batch` (about 1 MB each), about `total` bytes in all. The frame is
    head + batch * count."""
    batch = record_batch(b"p" * (1_000_000 - 200))
    count = max(1, total // len(batch))
    records_len = len(batch) * count
    t = b"flood"
    body = struct.pack(">hhi", -1, 1, 30_000)  # transactional id null, acks=1, timeout
    body += struct.pack(">i", 1) + struct.pack(">h", len(t)) + t
    body += struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", records_len)
    header = struct.pack(">hhih", 0, 3, 1, 5) + b"flood"
    size = len(header) + len(body) + records_len
    return struct.pack(">i", size) + header + body, batch, count


# ----- flooders --------------------------------------------------------------------------


class Stream:
    """One flooding connection: sends one frame after another from `parts`."""

    def __init__(self, addr, kind, frame):
        self.addr, self.kind, self.frame = addr, kind, frame
        self.s = None
        self.connect()

    def connect(self):
        self.s = socket.create_connection(self.addr)
        self.s.setblocking(False)
        self.part, self.off = 0, 0
        self.sent_in_frame = 0

    def chunk(self) -> memoryview:
        head, body, count = self.frame
        if self.part == 0:
            return memoryview(head)[self.off :]
        if self.part <= count:
            return memoryview(body)[self.off :]
        return memoryview(self.frame_tail())[self.off :]

    def frame_tail(self) -> bytes:
        return b"\r\n" if self.kind == "resp" else b""

    def advance(self, n: int) -> bool:
        """n bytes went out; True when a whole frame did."""
        self.off += n
        head, body, count = self.frame
        lens = [len(head)] + [len(body)] * count + [len(self.frame_tail())]
        while self.part < len(lens) and self.off >= lens[self.part]:
            self.off -= lens[self.part]
            self.part += 1
        if self.part >= len(lens):
            self.part, self.off = 0, 0
            return True
        return False


def flooder(conns: list, seconds: float, out: mp.Queue):
    """Drive `conns` [(addr, kind, frame)] until the deadline; report counts."""
    sel = selectors.DefaultSelector()
    streams = []
    stats = {"bytes": 0, "frames": 0, "closed_by_node": 0, "budget_errors": 0, "replies": 0}
    for addr, kind, frame in conns:
        st = Stream(addr, kind, frame)
        streams.append(st)
        sel.register(st.s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
    deadline = time.time() + seconds
    while time.time() < deadline:
        for key, ev in sel.select(0.05):
            st = key.data
            try:
                if ev & selectors.EVENT_READ:
                    data = st.s.recv(1 << 16)
                    if not data:
                        raise ConnectionResetError
                    stats["replies"] += 1
                    if b"memory budget exhausted" in data:
                        stats["budget_errors"] += 1
                if ev & selectors.EVENT_WRITE:
                    c = st.chunk()
                    n = st.s.send(c[: 4 * MB])
                    stats["bytes"] += n
                    if st.advance(n):
                        stats["frames"] += 1
            except BlockingIOError:
                pass
            except OSError:
                stats["closed_by_node"] += 1
                sel.unregister(st.s)
                st.s.close()
                try:
                    st.connect()
                    sel.register(st.s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
                except OSError:
                    pass
    for st in streams:
        try:
            st.s.close()
        except OSError:
            pass
    out.put(stats)


# ----- the well-behaved client -------------------------------------------------------------


def probe(port: int, seconds: float, out: mp.Queue):
    """PING, SET and GET of a small value, one at a time, every millisecond."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    cmds = [
        b"*1\r\n$4\r\nPING\r\n",
        b"*3\r\n$3\r\nSET\r\n$5\r\nprobe\r\n$5\r\nvalue\r\n",
        b"*2\r\n$3\r\nGET\r\n$5\r\nprobe\r\n",
    ]
    lat, errors = [], 0
    deadline = time.time() + seconds
    i = 0
    while time.time() < deadline:
        cmd = cmds[i % 3]
        i += 1
        t0 = time.perf_counter()
        try:
            s.sendall(cmd)
            line = f.readline()
            if line.startswith(b"$") and int(line[1:]) >= 0:
                f.read(int(line[1:]) + 2)
        except OSError:
            errors += 1
            break
        lat.append(time.perf_counter() - t0)
        if not line or line.startswith(b"-"):
            errors += 1
        time.sleep(0.001)
    out.put({"latencies": lat, "errors": errors})


# ----- the node ----------------------------------------------------------------------------


def status_kb(pid: int, field: str) -> int:
    text = open(f"/proc/{pid}/status").read()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


def metrics(admin_port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).read().decode()


def metric(body: str, name: str) -> int:
    m = re.search(rf"^{re.escape(name)} (\d+)", body, re.M)
    return int(m.group(1)) if m else -1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/pinion")
    ap.add_argument("--cores", default=None, help="the node's --cores (default: the first two CPUs)")
    ap.add_argument("--budget", default="1gb", help="--memory-budget ('' for none: the node's default)")
    ap.add_argument("--resp-conns", type=int, default=250)
    ap.add_argument("--kafka-conns", type=int, default=250)
    ap.add_argument("--bulk-bytes", type=parse_size, default=1 << 30)
    ap.add_argument("--produce-bytes", type=parse_size, default=50 * MB)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--workers", type=int, default=2, help="flooding processes")
    ap.add_argument("--extra", default="", help="more node flags, space-separated")
    ap.add_argument("--rss-limit", type=parse_size, default=1536 * MB)
    ap.add_argument("--p99-limit-ms", type=float, default=10.0)
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = ap.parse_args()

    cpus = sorted(os.sched_getaffinity(0))
    cores = a.cores or ",".join(str(c) for c in cpus[:2])
    ports = {k: free_port() for k in ("resp", "kafka", "admin")}
    data = tempfile.mkdtemp(prefix="pinion-flood-")
    # Bulks of --bulk-bytes must pass the node's framing limits to be buffered at all (the
    # defaults refuse a 1 GB bulk at its header).
    bulk_limit = max(a.bulk_bytes + MB, 512 * MB)
    args = [
        a.bin, "--cores", cores,
        "--resp-listen", f"127.0.0.1:{ports['resp']}",
        "--kafka-listen", f"127.0.0.1:{ports['kafka']}",
        "--admin-listen", f"127.0.0.1:{ports['admin']}",
        "--data-dir", data,
        "--max-bulk-bytes", str(bulk_limit),
        "--max-query-buffer-bytes", str(bulk_limit + MB),
        "--max-request-bytes", str(max(a.produce_bytes + MB, 100 * MB)),
        "--max-connections", str(a.resp_conns + 100),
        "--max-kafka-connections", str(a.kafka_conns + 100),
        "--log-level", "warn",
        *([] if not a.budget else ["--memory-budget", a.budget]),
        *a.extra.split(),
    ]
    log = open(os.path.join(data, "node.log"), "wb")
    node = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", ports["resp"]), timeout=1).close()
                break
            except OSError:
                if node.poll() is not None or time.time() > deadline:
                    sys.exit(f"the node did not start: {open(os.path.join(data, 'node.log')).read()}")
                time.sleep(0.05)
        idle_rss = status_kb(node.pid, "VmRSS") * 1024

        resp_frame = (
            b"*3\r\n$3\r\nSET\r\n$5\r\nflood\r\n$%d\r\n" % a.bulk_bytes,
            b"x" * MB,
            a.bulk_bytes // MB,
        )
        # A bulk that is not a whole number of MB would need a tail; keep it whole.
        assert a.bulk_bytes % MB == 0, "--bulk-bytes must be a multiple of 1 MB"
        kafka_frame = produce_request(a.produce_bytes)
        conns = [(("127.0.0.1", ports["resp"]), "resp", resp_frame)] * a.resp_conns
        conns += [(("127.0.0.1", ports["kafka"]), "kafka", kafka_frame)] * a.kafka_conns
        q = mp.Queue()
        workers = [
            mp.Process(target=flooder, args=(conns[i :: a.workers], a.seconds, q))
            for i in range(a.workers)
        ]
        for w in workers:
            w.start()
        time.sleep(min(1.0, a.seconds / 10))  # the flood is under way
        pq = mp.Queue()
        prober = mp.Process(target=probe, args=(ports["resp"], a.seconds - 1.5, pq))
        prober.start()
        rss_max, samples = 0, 0
        end = time.time() + a.seconds
        while time.time() < end:
            rss_max = max(rss_max, status_kb(node.pid, "VmRSS") * 1024)
            samples += 1
            time.sleep(0.02)
        probed = pq.get(timeout=60)
        flood = {"bytes": 0, "frames": 0, "closed_by_node": 0, "budget_errors": 0, "replies": 0}
        for _ in workers:
            for k, v in q.get(timeout=60).items():
                flood[k] += v
        for w in workers + [prober]:
            w.join(10)
        hwm = status_kb(node.pid, "VmHWM") * 1024
        body = metrics(ports["admin"])
        lat = sorted(probed["latencies"])

        def pct(p):
            return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")

        summary = {
            "connections": {"resp": a.resp_conns, "kafka": a.kafka_conns},
            "bulk_bytes": a.bulk_bytes,
            "produce_bytes": a.produce_bytes,
            "budget": a.budget or "default",
            "seconds": a.seconds,
            "idle_rss_mb": round(idle_rss / MB, 1),
            "max_rss_mb": round(max(rss_max, hwm) / MB, 1),
            "rss_samples": samples,
            "probe_commands": len(lat),
            "probe_errors": probed["errors"],
            "probe_ms": {"p50": round(pct(0.5), 3), "p99": round(pct(0.99), 3),
                         "p99.9": round(pct(0.999), 3), "max": round(lat[-1] * 1000, 3) if lat else None},
            "flood_mb_sent": round(flood["bytes"] / MB),
            "flood_frames_completed": flood["frames"],
            "flood_closed_by_node": flood["closed_by_node"],
            "flood_budget_errors_read": flood["budget_errors"],
            "node_budget_closed": metric(body, "pinion_budget_closed_total"),
            "node_budget_pauses": metric(body, "pinion_budget_pauses_total"),
            "node_protocol_errors": metric(body, "pinion_protocol_errors_total"),
            "node_recv_nobufs": metric(body, "pinion_recv_nobufs_total"),
        }
        if a.json:
            print(json.dumps(summary))
        else:
            for k, v in summary.items():
                print(f"{k:28} {v}")
        ok = max(rss_max, hwm) <= a.rss_limit and pct(0.99) <= a.p99_limit_ms and probed["errors"] == 0
        return 0 if ok else 1
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(30)
        except subprocess.TimeoutExpired:
            node.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

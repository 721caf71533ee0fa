#!/usr/bin/env python3
"""Seed the fuzz corpus (fuzz/corpus/<target>/) from real clients' bytes.

Starts a one-shard pinion node, puts a recording TCP proxy in front of its RESP and Kafka
listeners (the node advertises the proxy, so Kafka clients stay on it after bootstrap), and
drives it with redis-cli, redis-benchmark, redis-py, kcat, confluent-kafka and kafka-python.
What the clients sent becomes the seeds:

- resp_parse: each RESP connection's first bytes (mode byte 0, then up to 2 KiB of the stream);
- kafka_request: each Kafka request payload (the frame without its size prefix), at most
  two per client, API and version, the smallest;
- record_batch and segment_recovery: the batches the clients produced, as the node stored
  them (its segment files), whole and one batch at a time;
- topic_config: the topic.meta files the node wrote for the clients' topics (their
  configs included);
- control_wire and control_map: the control plane's messages and maps, from
  pinion-control driven as tests/test_control.py drives it (when its binary is given).

    python3 tools/fuzz_capture.py --bin target/release/pinion \
        --control-bin target/release/pinion-control --out fuzz/corpus

Seeds are named by content hash, so a rerun adds only new bytes.
"""
import argparse
import hashlib
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """A TCP proxy to `upstream` recording what each client connection sent."""

    def __init__(self, upstream: int, replies: bool = False):
        self.upstream = upstream
        self.replies = replies
        self.reply_streams: list[bytearray] = []
        self.port = free_port()
        self.streams: list[bytearray] = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(128)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.upstream))
            rec, back = bytearray(), bytearray() if self.replies else None
            with self.lock:
                self.streams.append(rec)
                if back is not None:
                    self.reply_streams.append(back)
            threading.Thread(target=self.pump, args=(c, u, rec), daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c, back), daemon=True).start()

    @staticmethod
    def pump(src, dst, rec):
        try:
            while data := src.recv(65536):
                if rec is not None:
                    rec.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def run(cmd, **kw):
    kw.setdefault("timeout", 60)
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        print(f"  ({' '.join(map(str, cmd))[:80]} exited {r.returncode}: {r.stderr[-200:]!r})")
    return r


def resp_clients(port: int):
    cli = ["redis-cli", "-p", str(port)]
    for args in (["PING"], ["SET", "k", "v"], ["GET", "k"], ["MSET", "a", "1", "b{t}", "2"],
                 ["HSET", "h", "f", "v", "g", "w"], ["ZADD", "z", "1.5", "m"], ["LPUSH", "l", "x", "y"],
                 ["EVAL", "return redis.call('GET', KEYS[1])", "1", "k"], ["CLIENT", "SETNAME", "seed"],
                 ["-3", "HELLO", "3"], ["SET", "bin", "a\r\nb\tc"], ["EXPIRE", "k", "100"],
                 ["SCAN", "0", "MATCH", "*", "COUNT", "10"], ["INCRBYFLOAT", "f", "-1.5e3"]):
        if args[0] == "-3":
            run(cli[:1] + ["-3"] + cli[1:] + args[1:])
        else:
            run(cli + args)
    run(cli, input=b"MULTI\nSET q 1\nINCR q\nEXEC\nGET q\n")
    run(["redis-benchmark", "-p", str(port), "-n", "50", "-c", "2", "-P", "4", "-q",
         "-t", "ping_inline,ping_mbulk,set,get,lpush,rpop,sadd,hset,zadd,mset"])
    import redis

    r = redis.Redis(port=port)
    p = r.pipeline(transaction=True)
    p.set("p1", "x" * 300).get("p1").incr("n").hset("h2", mapping={"a": 1, "b": 2}).expire("p1", 5)
    p.execute()
    r.blpop(["nolist"], timeout=0.1)
    r3 = redis.Redis(port=port, protocol=3, client_name="r3")
    r3.hgetall("h")
    r3.zrange("z", 0, -1, withscores=True)


def kafka_clients(port: int, data: Path):
    boot = f"127.0.0.1:{port}"
    kc = ["kcat", "-b", boot]
    run(kc + ["-L"])
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        run(kc + ["-P", "-t", f"kcat-{codec}", "-z", codec, "-K:", "-H", "h=v"],
            input=b"".join(b"k%d:value %d %s\n" % (i, i, codec.encode() * 20) for i in range(20)))
    run(kc + ["-C", "-t", "kcat-gzip", "-e", "-o", "beginning", "-q"])
    run(kc + ["-Q", "-t", "kcat-gzip:0:0"])
    run(kc + ["-G", "kcat-group", "kcat-none", "-e", "-q", "-o", "beginning"], timeout=30)

    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    a = AdminClient({"bootstrap.servers": boot})
    for f in a.create_topics([NewTopic("ck-topic", 3, 1), NewTopic("ck-gone", 1, 1), NewTopic("ck-configs", 1, 1, config={
            "retention.ms": "3600000", "cleanup.policy": "compact,delete",
            "segment.bytes": "1048576", "compression.type": "zstd"})]).values():
        f.result(10)
    for f in a.describe_configs([ConfigResource("topic", "ck-topic")]).values():
        f.result(10)
    p = Producer({"bootstrap.servers": boot, "enable.idempotence": True, "linger.ms": 5,
                  "compression.type": "lz4"})
    for i in range(200):
        p.produce("ck-topic", key=b"k%d" % i, value=b"v" * (i % 50), partition=i % 3,
                  headers=[("h", b"x")])
    p.flush(10)
    c = Consumer({"bootstrap.servers": boot, "group.id": "ck-group", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe(["ck-topic"])
    got = 0
    deadline = time.time() + 20
    while got < 200 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    c.commit(asynchronous=False)
    c.committed([TopicPartition("ck-topic", 0)], timeout=5)
    c.offsets_for_times([TopicPartition("ck-topic", 0, 0)], timeout=5)
    c.close()
    try:
        a.list_consumer_groups().result(10)
        a.describe_consumer_groups(["ck-group"])["ck-group"].result(10)
    except Exception as e:  # noqa: BLE001 - seeds are what was sent, answered or not
        print(f"  (confluent admin groups: {e})")
    for f in a.delete_topics(["ck-gone"]).values():
        f.result(10)

    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.structs import TopicPartition as KTopicPartition
    from kafka.admin import NewTopic as KNewTopic

    ka = KafkaAdminClient(bootstrap_servers=boot)
    ka.create_topics([KNewTopic("kp-topic", 2, 1), KNewTopic("kp-gone", 1, 1)])
    kp = KafkaProducer(bootstrap_servers=boot, compression_type="gzip", linger_ms=5)
    for i in range(100):
        kp.send("kp-topic", key=b"k%d" % i, value=b"kafka-python %d" % i, headers=[("h", b"1")])
    kp.flush(10)
    kp.close()
    kcons = KafkaConsumer("kp-topic", bootstrap_servers=boot, group_id="kp-group",
                          auto_offset_reset="earliest", consumer_timeout_ms=4000)
    for _ in kcons:
        pass
    kcons.commit()
    kcons.close()
    try:
        ka.list_groups()
        ka.describe_groups(["kp-group"])
        ka.list_group_offsets("kp-group")
        ka.delete_group_offsets("kp-group", [KTopicPartition("kp-topic", 1)])
        ka.delete_groups(["kcat-group"])
    except Exception as e:  # noqa: BLE001
        print(f"  (kafka-python admin groups: {e})")
    ka.delete_topics(["kp-gone"])
    ka.close()


def put(out: Path, target: str, name: str, data: bytes):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}-{hashlib.sha1(data).hexdigest()[:12]}").write_bytes(data)


def kafka_frames(stream: bytes):
    pos = 0
    while pos + 4 <= len(stream):
        (n,) = struct.unpack_from(">i", stream, pos)
        if n < 0 or pos + 4 + n > len(stream):
            return
        yield stream[pos + 4 : pos + 4 + n]
        pos += 4 + n


def client_id(payload: bytes) -> str:
    if len(payload) < 10:
        return "unknown"
    (n,) = struct.unpack_from(">h", payload, 8)
    cid = payload[10 : 10 + max(n, 0)].decode(errors="replace")
    for known in ("rdkafka", "kafka-python", "kcat"):
        if known in cid:
            return known
    return "".join(ch for ch in cid if ch.isalnum())[:16] or "unknown"


def batches(seg: bytes):
    pos = 0
    while pos + 61 <= len(seg):
        (n,) = struct.unpack_from(">i", seg, pos + 8)
        size = 12 + n
        if n < 49 or pos + size > len(seg):
            return
        yield seg[pos : pos + size]
        pos += size


STATES = {"joining": 0, "active": 1, "draining": 2, "removed": 3}


def map_bytes(m: dict) -> bytes:
    """A map's byte form (control/src/map.rs `encode`) from its JSON form."""
    def s(x: str) -> bytes:
        b = x.encode()
        return struct.pack(">H", len(b)) + b

    out = bytearray(b"PCMP" + struct.pack(">HQI", 1, m["epoch"], len(m["nodes"])))
    for n in m["nodes"]:
        out += struct.pack(">IBHI", n["id"], STATES[n["state"]], n["shards"], n["weight"])
        out += s(n["resp_addr"]) + s(n["kafka_addr"])
        eps = n.get("shard_endpoints", [])
        out += struct.pack(">H", len(eps)) + b"".join(s(e) for e in eps)
    out += struct.pack(">I", len(m["slots"]))
    for r in m["slots"]:
        out += struct.pack(">HHIH", r["start"], r["end"] - r["start"] + 1, r["node"], r["shard"])
    out += struct.pack(">I", len(m["partitions"]))
    for p in m["partitions"]:
        out += s(p["topic"]) + struct.pack(">IIH", p["partition"], p["node"], p["shard"])
    return bytes(out) + struct.pack(">I", crc32c(bytes(out)))


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def compact(m: dict) -> dict:
    """The same map with each owner's slots in one contiguous run: a real map interleaves
    single slots (thousands of runs, hundreds of KB); the seed keeps its nodes, owners and
    shares in a few hundred bytes. Its checksum is recomputed."""
    share = defaultdict(int)
    for r in m["slots"]:
        share[(r["node"], r["shard"])] += r["end"] - r["start"] + 1
    slots, at = [], 0
    for (node, shard), n in sorted(share.items()):
        slots.append({"start": at, "end": at + n - 1, "node": node, "shard": shard})
        at += n
    c = dict(m, slots=slots)
    c["checksum"] = "%08x" % struct.unpack(">I", map_bytes(c)[-4:])[0]
    return c


def compact_maps(v):
    if isinstance(v, dict):
        if "slots" in v and "nodes" in v:
            return compact(v)
        return {k: compact_maps(x) for k, x in v.items()}
    if isinstance(v, list):
        return [compact_maps(x) for x in v]
    return v


def control_seeds(control_bin: str, out: Path):
    """Drive pinion-control as tests/test_control.py does, through a recording proxy that
    also records the server's messages (what a node decodes)."""
    import json

    sys.path.insert(0, str(ROOT / "tests"))
    os.environ["PINION_CONTROL_BIN"] = control_bin
    import test_control as tc  # noqa: E402

    with tempfile.TemporaryDirectory() as tmp:
        c = tc.Control(Path(tmp))
        rec = Recorder(c.port, replies=True)
        c.port = rec.port  # the CLI and the members go through the recorder
        try:
            for node in (1, 2, 3):
                c.add(node)
            for node in (1, 2, 3):
                c.member(node)
            for node in (1, 2, 3):
                c.wait_state(node, "active")
            m = compact(c.cli("map"))
            put(out, "control_map", "map-json", b"\x02" + json.dumps(m).encode())
            put(out, "control_map", "map-bytes", b"\x00" + map_bytes(m))
        finally:
            c.stop()
    n = 0
    both = [(s, False) for s in rec.streams] + [(s, True) for s in rec.reply_streams]
    for stream, from_server in both:
        s = bytes(stream)
        if len(s) <= 16:
            continue
        # A server stream starts with the 16-byte nonce.
        body = s[16:] if from_server else s
        if n < 40:  # a few streams; the messages below are the bulk of the seeds
            put(out, "control_wire", "stream", b"\x00" + body[:1024])
        for f in kafka_frames_u32(body):
            payload = f[32:]
            if len(payload) > 4096:
                payload = json.dumps(compact_maps(json.loads(payload))).encode()
            put(out, "control_wire", "payload", b"\x01" + payload)
            n += 1
    print(f"control_wire: {n} messages")


def kafka_frames_u32(stream: bytes):
    pos = 0
    while pos + 4 <= len(stream):
        (n,) = struct.unpack_from(">I", stream, pos)
        if pos + 4 + n > len(stream):
            return
        yield stream[pos + 4 : pos + 4 + n]
        pos += 4 + n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=str(ROOT / "target/release/pinion"))
    ap.add_argument("--control-bin")
    ap.add_argument("--out", default=str(ROOT / "fuzz/corpus"))
    args = ap.parse_args()
    out = Path(args.out)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        resp_port, kafka_port, admin_port = free_port(), free_port(), free_port()
        resp_rec, kafka_rec = Recorder(resp_port), Recorder(kafka_port)
        data = tmp / "data"
        log = open(tmp / "pinion.log", "wb")
        node = subprocess.Popen(
            [args.bin, "--cores", "0", "--resp-listen", f"127.0.0.1:{resp_port}",
             "--kafka-listen", f"127.0.0.1:{kafka_port}", "--admin-listen", f"127.0.0.1:{admin_port}",
             "--data-dir", str(data), "--advertise", f"127.0.0.1:{kafka_rec.port}",
             "--auto-create-topics", "true"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 15
            while b"pinion ready" not in (tmp / "pinion.log").read_bytes():
                assert node.poll() is None and time.time() < deadline, (tmp / "pinion.log").read_text()
                time.sleep(0.05)
            print("RESP clients")
            resp_clients(resp_rec.port)
            print("Kafka clients")
            kafka_clients(kafka_rec.port, data)
            time.sleep(0.5)
        finally:
            node.terminate()
            node.wait(20)

        n = 0
        for stream in resp_rec.streams:
            if stream:
                put(out, "resp_parse", "stream", b"\x00" + bytes(stream[:2048]))
                n += 1
        print(f"resp_parse: {n} streams")

        kept = defaultdict(list)
        for stream in kafka_rec.streams:
            for payload in kafka_frames(bytes(stream)):
                if len(payload) < 8 or len(payload) > 16 * 1024:
                    continue
                key, ver = struct.unpack_from(">hh", payload, 0)
                kept[(client_id(payload), key, ver)].append(payload)
        for (client, key, ver), ps in sorted(kept.items()):
            for p in sorted(set(ps), key=len)[:2]:
                put(out, "kafka_request", f"{client}-api{key}-v{ver}", p)
        print(f"kafka_request: {len(kept)} (client, api, version) kinds")

        segs = sorted(data.rglob("*.log"))
        for seg in segs:
            b = seg.read_bytes()
            if not b:
                continue
            topic = seg.parent.name
            whole = b""
            for one in batches(b):
                if len(whole) + len(one) > 8192:
                    break
                whole += one
            if whole:
                put(out, "segment_recovery", f"{topic}", b"\x00" + whole)
            first = next(batches(b), b"")
            if 0 < len(first) <= 8192:
                put(out, "record_batch", f"{topic}", b"\x00" + struct.pack(">q", 0) + first)
        print(f"record_batch, segment_recovery: {len(segs)} segments")
        metas = sorted(data.rglob("topic.meta"))
        for meta in metas:
            put(out, "topic_config", meta.parent.name, meta.read_bytes())
        print(f"topic_config: {len(metas)} topic.meta files")

    if args.control_bin:
        control_seeds(args.control_bin, out)


if __name__ == "__main__":
    main()

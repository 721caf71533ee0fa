#!/usr/bin/env python3
"""The worst loop turn while one command with a huge argument list arrives and runs.

For each field count, a fresh one-shard node takes one HSET of that many fields from a raw
socket (the request built in advance and sent whole), while another process PINGs the node;
prints the shard's longest loop turn (`pinion_loop_turn_max_seconds`, a fresh node's only
long work is this command), the longest PING and what the stall warning named.

    PINION_BIN=... python3 tools/big_args_stall.py [--fields 250000 1000000] [--runs 3]
        [--key-shard 0|1]

With --key-shard the node has two shards: the request's connection is on shard 0 and its
key on the shard named; the worst turn is the longer of the two shards'.
"""

import argparse
import re
import socket
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import Node, keys_on  # noqa: E402
from test_stalls_keys import pings_during, turn_max  # noqa: E402


def hset_request(key: bytes, n: int) -> bytes:
    parts = [b"*%d\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n" % (2 + 2 * n, len(key), key)]
    for i in range(n):
        f, v = b"f%d" % i, b"v%d" % i
        parts.append(b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(f), f, len(v), v))
    return b"".join(parts)


def conn_on(port: int, shard: int | None) -> socket.socket:
    """A connection (of `shard`, by CLIENT ID, when it is named)."""
    for _ in range(64):
        s = socket.create_connection(("127.0.0.1", port))
        if shard is None:
            return s
        s.sendall(b"CLIENT ID\r\n")
        got = b""
        while not got.endswith(b"\r\n"):
            got += s.recv(64)
        if int(got[1:-2]) % 2 == shard:
            return s
        s.close()
    raise SystemExit(f"no connection on shard {shard}")


def send(port: int, req: bytes, shard: int | None = None) -> bytes:
    s = conn_on(port, shard)
    s.sendall(req)
    got = b""
    while not got.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    s.close()
    return got


def one(n: int, req: bytes, key: bytes, key_shard, work: Path):
    two = key_shard is not None
    node = Node(work, "--stall-warn-ms", "5", cores=None if two else "0")
    shards = (0, 1) if two else (0,)
    try:
        before = max(turn_max(node, s) for s in shards)
        reply, lat = pings_during(node, lambda: send(node.port, req, 0 if two else None))
        after = max(turn_max(node, s) for s in shards)
        hlen = node.client().hlen(key) if reply.startswith(b":") else None
        named = re.findall(r"shard stalled.*", node.log_text())
        return {"fields": n, "reply": reply.strip().decode(errors="replace"), "hlen": hlen,
                "turn_max_ms": after * 1e3, "turn_max_before_ms": before * 1e3,
                "pings": len(lat), "ping_max_ms": lat[-1] * 1e3 if lat else None,
                "stall_lines": named[-3:]}
    finally:
        node.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fields", type=int, nargs="+", default=[250_000, 1_000_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--key-shard", type=int, choices=[0, 1], default=None)
    a = ap.parse_args()
    key = b"h" if a.key_shard is None else keys_on(a.key_shard, 1, "h")[0].encode()
    for n in a.fields:
        req = hset_request(key, n)
        maxes, pings = [], []
        for run in range(a.runs):
            with tempfile.TemporaryDirectory() as d:
                r = one(n, req, key, a.key_shard, Path(d))
            print(r, flush=True)
            maxes.append(r["turn_max_ms"])
            pings.append(r["ping_max_ms"] or 0)
        print(f"HSET {n} fields ({len(req)} bytes): worst turn median "
              f"{statistics.median(maxes):.1f} ms (runs {', '.join(f'{m:.1f}' for m in maxes)}); "
              f"PING max median {statistics.median(pings):.1f} ms", flush=True)


if __name__ == "__main__":
    main()

"""Connection balancing inside a node (issue 12): --conn-balance and --shard-weights.

A RESP connection's shard is its CLIENT ID modulo the shard count; /metrics has the open
connections per shard (pinion_shard_connections_open), which counts Kafka ones too.
"""

import os
import re
import socket
import subprocess
import time
import urllib.request

import pytest
import redis
from confluent_kafka import Consumer, Producer

POLICIES = ["reuseport", "round-robin", "weighted", "least-conn"]


def per_shard(node) -> list[int]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{node.admin_port}/metrics", timeout=5).read().decode()
    rows = re.findall(r'^pinion_shard_connections_open\{shard="(\d+)"\} (\d+)$', body, re.M)
    assert rows, "pinion_shard_connections_open not in /metrics"
    return [int(v) for _, v in sorted(rows, key=lambda r: int(r[0]))]


def wait_per_shard(node, want: list[int], timeout=10.0):
    deadline = time.time() + timeout
    while (got := per_shard(node)) != want:
        assert time.time() < deadline, f"connections per shard stayed {got}, expected {want}"
        time.sleep(0.02)


def resp_conn(node) -> tuple[redis.Redis, int]:
    """A RESP connection and its shard (2 shards)."""
    c = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=10, single_connection_client=True)
    return c, c.client_id() % 2


def kafka_socket(node) -> socket.socket:
    return socket.create_connection(("127.0.0.1", node.kafka_port), timeout=10)


def spread(conns) -> list[int]:
    out = [0, 0]
    for _, shard in conns:
        out[shard] += 1
    return out


def test_round_robin_alternates_resp_and_kafka_independently(start):
    node = start("--conn-balance", "round-robin")
    conns = [resp_conn(node) for _ in range(20)]
    assert [s for _, s in conns] == [0, 1] * 10
    kafka = [kafka_socket(node) for _ in range(6)]
    wait_per_shard(node, [13, 13])
    for c, _ in conns:
        assert c.ping()
        c.close()
    for s in kafka:
        s.close()
    wait_per_shard(node, [0, 0])


def test_weighted_three_to_one(start):
    node = start("--conn-balance", "weighted", "--shard-weights", "3,1")
    conns = [resp_conn(node) for _ in range(40)]
    got = spread(conns)
    # Smooth WRR gives exactly 30:10; allow a little in case of refactors of the order.
    assert abs(got[0] - 30) <= 2 and abs(got[1] - 10) <= 2, got
    # Interleaved, not in bursts: shard 1 never waits more than 3 picks.
    shards = [s for _, s in conns]
    assert all(1 in shards[i : i + 4] for i in range(0, 36)), shards
    wait_per_shard(node, got)
    for c, _ in conns:
        c.set("k", "v")
        c.close()


def test_least_conn_sends_new_connections_where_some_closed(start):
    node = start("--conn-balance", "least-conn")
    conns = [resp_conn(node) for _ in range(10)]
    assert spread(conns) == [5, 5]
    # Close four of shard 1's connections: the next four go to shard 1.
    closing = [c for c in conns if c[1] == 1][:4]
    for c, _ in closing:
        c.close()
    conns = [c for c in conns if c not in closing]
    wait_per_shard(node, [5, 1])
    fresh = [resp_conn(node) for _ in range(4)]
    assert [s for _, s in fresh] == [1, 1, 1, 1]
    # Balanced again: ties go in turn.
    more = [resp_conn(node) for _ in range(2)]
    assert sorted(s for _, s in more) == [0, 1]
    # Kafka connections count too.
    kafka = [kafka_socket(node) for _ in range(3)]
    wait_per_shard(node, [8, 7])
    for c, _ in conns + fresh + more:
        c.close()
    for s in kafka:
        s.close()
    wait_per_shard(node, [0, 0])


def test_weights_must_match_the_shards(tmp_path):
    from conftest import binary, free_port, two_cpus

    r = subprocess.run(
        [binary(), "--cores", two_cpus(), "--conn-balance", "weighted", "--shard-weights", "1,2,3",
         "--resp-listen", f"127.0.0.1:{free_port()}", "--kafka-listen", f"127.0.0.1:{free_port()}",
         "--admin-listen", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "d")],
        capture_output=True, timeout=30,
    )
    assert r.returncode != 0
    assert b"--shard-weights has 3 weights for 2 shards" in r.stdout + r.stderr


@pytest.mark.parametrize("policy", POLICIES)
def test_resp_and_kafka_work_through_each_policy(start, policy):
    node = start("--conn-balance", policy)
    conns = [resp_conn(node) for _ in range(8)]
    for i, (c, _) in enumerate(conns):
        c.set(f"key{i}", i)
    for i, (c, _) in enumerate(conns):
        assert c.get(f"key{(i + 3) % 8}") == str((i + 3) % 8).encode()
    if policy != "reuseport":
        assert spread(conns) == [4, 4]
    topic = f"bal-{policy}"
    p = Producer({"bootstrap.servers": f"127.0.0.1:{node.kafka_port}"})
    for i in range(20):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode())
    assert p.flush(30) == 0
    c = Consumer({
        "bootstrap.servers": f"127.0.0.1:{node.kafka_port}",
        "group.id": f"g-{policy}",
        "auto.offset.reset": "earliest",
    })
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < 20 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    assert sorted(got) == sorted(f"v{i}".encode() for i in range(20))
    for c, _ in conns:
        c.close()


def fds(node) -> int:
    return len(os.listdir(f"/proc/{node.proc.pid}/fd"))


def test_a_full_shard_refuses_a_handed_connection_and_nothing_leaks(start):
    node = start("--conn-balance", "round-robin", "--max-connections", "4")
    base = fds(node)
    conns = [resp_conn(node) for _ in range(4)]
    assert spread(conns) == [2, 2]
    # The fifth is handed to shard 0 and refused there like any over-limit connection.
    extra = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    extra.sendall(b"PING\r\n")
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = extra.recv(1024)
        if not chunk:
            break
        reply += chunk
    assert reply.startswith(b"-ERR max number of clients reached"), reply
    try:
        assert extra.recv(1024) == b"", "the refused connection stays open"
    except ConnectionResetError:
        pass  # closed with our PING unread: a reset
    extra.close()
    assert node.metric("pinion_connections_rejected_total") == 1
    wait_per_shard(node, [2, 2])
    for c, _ in conns:
        c.close()
    wait_per_shard(node, [0, 0])
    node.wait_metric("pinion_connections_open", 0)
    deadline = time.time() + 10
    while fds(node) != base:
        assert time.time() < deadline, f"{fds(node)} descriptors open, {base} before"
        time.sleep(0.02)
    # The counts came back: the next four spread as before.
    again = [resp_conn(node) for _ in range(4)]
    assert spread(again) == [2, 2]
    for c, _ in again:
        c.close()


def test_tls_connections_are_balanced_too(start, tmp_path):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "k.pem", "-out", "c.pem", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        cwd=tmp_path, check=True, capture_output=True,
    )
    from conftest import free_port

    tls_port = free_port()
    node = start("--conn-balance", "round-robin", "--tls-cert", str(tmp_path / "c.pem"),
                 "--tls-key", str(tmp_path / "k.pem"), "--resp-tls-listen", f"127.0.0.1:{tls_port}")
    shards = []
    clients = []
    for _ in range(6):
        c = redis.Redis(host="127.0.0.1", port=tls_port, ssl=True, ssl_cert_reqs="none",
                        socket_timeout=10, single_connection_client=True)
        shards.append(c.client_id() % 2)
        c.set("t", "1")
        clients.append(c)
    assert sorted(shards) == [0, 0, 0, 1, 1, 1]
    for c in clients:
        c.close()

"""Hardening against operator mistakes and hostile input (issue "Hardening"): one node per
data directory."""

import pytest

from conftest import Node


def test_a_second_node_on_one_data_dir_refuses_to_start(start, tmp_path):
    first = start()
    r = first.client()
    r.set("k", "v")
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    with pytest.raises(RuntimeError) as e:
        Node(second_dir, "--data-dir", str(first.data))
    text = str(e.value)
    assert "is in use by another pinion" in text and str(first.proc.pid) in text, text
    # The first node goes on serving, with its data.
    assert r.get("k") == b"v"
    # After it stops, the directory can be used again.
    assert first.stop() == 0
    third_dir = tmp_path / "third"
    third_dir.mkdir()
    third = Node(third_dir, "--data-dir", str(first.data))
    assert third.client().ping()
    assert third.stop() == 0


def test_a_second_node_on_the_same_port_refuses_to_start(start, tmp_path):
    first = start()
    other = tmp_path / "other"
    other.mkdir()
    import subprocess

    from conftest import binary, free_port

    out = subprocess.run(
        [binary(), "--cores", "0", "--resp-listen", f"127.0.0.1:{first.port}",
         "--kafka-listen", f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{free_port()}",
         "--data-dir", str(other / "data")],
        capture_output=True, timeout=30,
    )
    assert out.returncode != 0
    assert b"in use" in out.stdout + out.stderr
    assert first.client().ping()


def test_produce_with_acks_outside_minus_one_to_one_is_refused(node):
    from test_log import kcat, produce_v3

    kcat(node, "-P", "-t", "acked", input=b"first\n")
    batch = open_batch()
    err, _ = produce_v3(node.kafka_port, "acked", 0, batch, acks=5)
    assert err == 21  # INVALID_REQUIRED_ACKS
    out = kcat(node, "-C", "-t", "acked", "-o", "beginning", "-e", "-f", "%s\n")
    assert out.splitlines() == ["first"]


def open_batch() -> bytes:
    from test_log import idempotent_batch

    return idempotent_batch([b"x"], -1, -1, -1)


def create_topics_v2(port, names, partitions=1) -> dict:
    """A CreateTopics v2 request built by hand (clients refuse duplicate names before
    sending); returns {name: error_code} from the response."""
    import struct

    from test_kafka import kafka_request

    body = struct.pack(">i", len(names))
    for n in names:
        b = n.encode()
        body += struct.pack(">h", len(b)) + b + struct.pack(">ihii", partitions, 1, 0, 0)
    body += struct.pack(">ib", 10_000, 0)  # timeout, validate_only
    header = struct.pack(">hhih", 19, 2, 5, 4) + b"test"
    resp = kafka_request(port, header + body)
    # correlation id, throttle time, topics [name, error code, error message]
    (count,) = struct.unpack(">i", resp[8:12])
    pos, out = 12, {}
    for _ in range(count):
        (n,) = struct.unpack(">h", resp[pos : pos + 2])
        name = resp[pos + 2 : pos + 2 + n].decode()
        (err, m) = struct.unpack(">hh", resp[pos + 2 + n : pos + 6 + n])
        out[name] = err
        pos += 6 + n + max(m, 0)
    return out


def test_a_topic_named_twice_in_create_topics_is_refused_whole(node):
    from confluent_kafka.admin import AdminClient

    assert create_topics_v2(node.kafka_port, ["twice", "once", "twice"]) == {"twice": 42, "once": 0}
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{node.kafka_port}"})
    md = admin.list_topics(timeout=10)
    assert "once" in md.topics and "twice" not in md.topics


def test_scan_cursor_past_the_last_slot_and_client_names_with_spaces_are_refused(node):
    from conftest import Raw

    raw = Raw(node.port)
    assert raw.cmd("SCAN", "16384") == b"-ERR invalid cursor\r\n"
    assert raw.cmd("SCAN", "99999999999999999999") == b"-ERR invalid cursor\r\n"
    assert raw.cmd("SCAN", "16383").startswith(b"*2\r\n")
    bad = b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    assert raw.cmd("HELLO", "3", "SETNAME", "a b") == bad
    assert raw.cmd("CLIENT", "SETNAME", "a\nb") == bad
    assert raw.cmd("CLIENT", "GETNAME") == b"$-1\r\n"
    assert raw.cmd("HELLO", "2", "SETNAME", "worker-1").startswith(b"*")
    assert raw.cmd("CLIENT", "GETNAME") == b"$8\r\nworker-1\r\n"


def test_before_auth_only_small_requests_are_read(start):
    """As Redis: with a password, a connection that has not authenticated may send at most 10
    arguments of 16 KiB each; a larger declared length is refused at its header, so no
    unauthenticated client makes the node buffer hundreds of MB."""
    from conftest import Raw

    n = start("--requirepass", "secret")
    raw = Raw(n.port)
    raw.send(b"*2\r\n$3\r\nSET\r\n$490000000\r\n" + b"x" * 1000)
    assert raw.read_reply() == b"-ERR Protocol error: unauthenticated bulk length\r\n"
    assert raw.closed_by_peer()
    raw = Raw(n.port)
    raw.send(b"*11\r\n")
    assert raw.read_reply() == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    assert raw.closed_by_peer()
    # Small requests before AUTH are answered; after AUTH, large values are fine.
    raw = Raw(n.port)
    assert raw.cmd("PING").startswith(b"-NOAUTH")
    assert raw.cmd("AUTH", "secret") == b"+OK\r\n"
    big = "v" * 100_000
    assert raw.cmd("SET", "k", big) == b"+OK\r\n"
    assert raw.cmd("STRLEN", "k") == b":100000\r\n"


def test_out_of_descriptors_on_accept_neither_floods_the_log_nor_locks_clients_out(tmp_path):
    """EMFILE on accept: a line a second at most (it was a tight loop writing 600 MB of log in
    5 s), the clients already served go on, and once descriptors free up new clients are
    served again."""
    import resource
    import socket
    import subprocess
    import time
    import urllib.request

    from conftest import Raw, binary, free_port

    port, admin = free_port(), free_port()
    log = tmp_path / "pinion.log"

    def low_limit():
        # Above the node's own start-up floor (96 for one shard, shard/node.rs), far below
        # what the connections below need.
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    proc = subprocess.Popen(
        [binary(), "--cores", "0", "--resp-listen", f"127.0.0.1:{port}",
         "--kafka-listen", f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{admin}",
         "--data-dir", str(tmp_path / "data")],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT, preexec_fn=low_limit,
    )
    try:
        deadline = time.time() + 15
        while "pinion ready" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.02)
        keep = Raw(port)
        assert keep.cmd("PING") == b"+PONG\r\n"
        socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(200)]
        deadline = time.time() + 10
        while "accept failed" not in log.read_text(errors="replace"):
            assert time.time() < deadline, "no accept ever failed"
            time.sleep(0.05)
        time.sleep(2)  # a flood would show here
        lines = log.read_text(errors="replace").count("accept failed")
        assert 1 <= lines <= 6, lines
        assert keep.cmd("PING") == b"+PONG\r\n"
        for s in socks:
            s.close()
        deadline = time.time() + 10
        while True:
            try:
                fresh = Raw(port, timeout=2)
                if fresh.cmd("PING") == b"+PONG\r\n":
                    break
            except OSError:
                pass
            assert time.time() < deadline, "new clients stayed locked out"
        body = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
        assert "pinion_accept_errors" in body
    finally:
        proc.terminate()
        assert proc.wait(20) == 0


def test_each_protocol_has_its_own_connection_limit_and_kafka_is_closed_not_sent_resp(start):
    """Kafka clients over their limit were sent RESP's '-ERR max number of clients reached',
    which kcat read as a 759517778-byte response. Now each protocol counts its own
    connections; a Kafka client over the limit is closed, a RESP one gets Redis's error."""
    import socket
    import struct

    from conftest import Raw
    from test_kafka import api_versions_v0, kafka_request

    n = start("--max-connections", "2", "--max-kafka-connections", "2")
    resp = [Raw(n.port), Raw(n.port)]
    for r in resp:
        assert r.cmd("PING") == b"+PONG\r\n"
    kafka = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", n.kafka_port), timeout=5)
        payload = api_versions_v0()
        s.sendall(struct.pack(">i", len(payload)) + payload)
        assert len(s.recv(4)) == 4  # answered: two RESP clients did not use up Kafka's room
        kafka.append(s)
    extra = socket.create_connection(("127.0.0.1", n.kafka_port), timeout=5)
    assert extra.recv(100) == b""  # closed, no RESP text
    extra.close()
    third = Raw(n.port)
    assert third.read_reply() == b"-ERR max number of clients reached\r\n"
    for s in kafka:
        s.close()
    # The two RESP clients stay; the Kafka room frees up once the node has seen the closes.
    n.wait_metric("pinion_connections_open", 2)
    assert kafka_request(n.kafka_port, api_versions_v0())[:4] == struct.pack(">i", 7)


def test_a_shard_that_cannot_recover_its_log_fails_the_node(start, tmp_path):
    """After kill -9 with more partitions than `ulimit -n` allows, a shard could not open
    them, yet the node logged "pinion ready" and its partitions failed for good. Now the
    node exits at start-up and says what to raise."""
    import resource
    import subprocess

    from confluent_kafka.admin import AdminClient, NewTopic

    from conftest import binary, free_port

    n = start()
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{n.kafka_port}"})
    for f in admin.create_topics([NewTopic("wide", 120)]).values():
        f.result(30)
    n.kill9()

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))

    out = subprocess.run(
        [binary(), "--cores", "0", "--resp-listen", f"127.0.0.1:{free_port()}",
         "--kafka-listen", f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{free_port()}",
         "--data-dir", str(n.data)],
        capture_output=True, timeout=60, preexec_fn=low_limit,
    )
    text = (out.stdout + out.stderr).decode(errors="replace")
    assert out.returncode != 0, text[-2000:]
    assert "pinion ready" not in text
    assert "ulimit -n" in text and "opening wide-" in text, text[-2000:]
    # With enough descriptors the same data directory starts and serves every partition.
    n.restart()
    md = AdminClient({"bootstrap.servers": f"127.0.0.1:{n.kafka_port}"}).list_topics(timeout=10)
    assert len(md.topics["wide"].partitions) == 120


def test_an_expiry_storm_expires_every_key_counts_each_once_and_resetstat_clears_the_count(node):
    """200,000 keys expiring together: active expiry removes all of them (in slices of at most
    a quarter of each tick), INFO's expired_keys counts each once, and CONFIG RESETSTAT sets it
    back to 0 (it counted 38% of a million expired keys and survived RESETSTAT)."""
    import time

    r = node.client()
    n = 200_000
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"storm:{i}", "v", px=300)
        if len(pipe) == 5000:
            pipe.execute()
    pipe.execute()
    deadline = time.time() + 30
    while r.dbsize() != 0:
        assert time.time() < deadline, r.dbsize()
        time.sleep(0.1)
    assert r.info("stats")["expired_keys"] == n
    assert r.ping()
    r.config_resetstat()
    assert r.info("stats")["expired_keys"] == 0


def test_idle_admin_connections_do_not_keep_metrics_from_others(node):
    """The admin endpoint served one connection at a time (each idle one held it for its
    read timeout): 2000 idle connections made /metrics unreachable."""
    import socket
    import urllib.request

    idle = [socket.create_connection(("127.0.0.1", node.admin_port), timeout=5) for _ in range(2000)]
    body = urllib.request.urlopen(f"http://127.0.0.1:{node.admin_port}/metrics", timeout=5).read()
    assert b"pinion_commands_total" in body or b"pinion_" in body
    for s in idle:
        s.close()

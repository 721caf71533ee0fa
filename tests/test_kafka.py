"""The Kafka front door: ApiVersions, Metadata and FindCoordinator through kcat and
confluent-kafka, and bad frames closing only their own connection."""

import socket
import struct
import subprocess

from confluent_kafka.admin import AdminClient

from conftest import Raw


def kafka_request(port, payload: bytes, timeout=5.0) -> bytes:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(struct.pack(">i", len(payload)) + payload)
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    size = struct.unpack(">i", head)[0]
    body = b""
    while len(body) < size:
        body += s.recv(size - len(body))
    s.close()
    return body


def api_versions_v0(correlation_id=7, version=0) -> bytes:
    # header v1: api_key, api_version, correlation_id, client_id (nullable string)
    return struct.pack(">hhih", 18, version, correlation_id, 4) + b"test"


def test_kcat_lists_the_broker(node):
    out = subprocess.run(
        ["kcat", "-b", f"127.0.0.1:{node.kafka_port}", "-L", "-m", "5"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert f"broker 0 at 127.0.0.1:{node.kafka_port} (controller)" in out.stdout
    # Asking for a topic creates it (--auto-create-topics is on by default).
    out = subprocess.run(
        ["kcat", "-b", f"127.0.0.1:{node.kafka_port}", "-L", "-t", "fresh", "-m", "5"],
        capture_output=True, text=True, timeout=30,
    )
    assert 'topic "fresh" with 1 partitions' in out.stdout, out.stdout


def test_unknown_topic_without_auto_create(start):
    node = start("--auto-create-topics", "false")
    out = subprocess.run(
        ["kcat", "-b", f"127.0.0.1:{node.kafka_port}", "-L", "-t", "missing", "-m", "5"],
        capture_output=True, text=True, timeout=30,
    )
    assert "Unknown topic or partition" in out.stdout


def test_confluent_kafka_admin_metadata(node):
    a = AdminClient({"bootstrap.servers": f"127.0.0.1:{node.kafka_port}"})
    md = a.list_topics(timeout=10)
    assert md.cluster_id == "pinion"
    assert list(md.brokers) == [0]
    assert md.brokers[0].port == node.kafka_port


def test_api_versions_v0_and_unknown_version_downgrade(node):
    body = kafka_request(node.kafka_port, api_versions_v0(7, 0))
    cid, err, n = struct.unpack(">ihi", body[:10])
    assert (cid, err) == (7, 0)
    keys = {struct.unpack(">hhh", body[10 + 6 * i : 16 + 6 * i])[0] for i in range(n)}
    assert {0, 1, 2, 3, 18, 19} <= keys  # Produce, Fetch, ListOffsets, Metadata, ApiVersions, CreateTopics
    # A version from the future gets UNSUPPORTED_VERSION (35) in v0 form, with our list.
    body = kafka_request(node.kafka_port, api_versions_v0(9, 99))
    cid, err = struct.unpack(">ih", body[:6])
    assert (cid, err) == (9, 35)


def test_bad_kafka_frames_close_only_their_connection(node):
    resp_bystander = Raw(node.port)
    for frame in [
        b"\xff\xff\xff\xff",                    # negative size
        struct.pack(">i", 200 * 1024 * 1024),   # over --max-request-bytes
        struct.pack(">i", 8) + b"\x7f\x7f" + b"\x00" * 6,  # unknown API key
        struct.pack(">i", 3) + b"abc",          # too short for a header
    ]:
        s = socket.create_connection(("127.0.0.1", node.kafka_port), timeout=5)
        s.sendall(frame)
        s.settimeout(5)
        assert s.recv(100) == b"", f"{frame[:8]!r} should close the connection"
        s.close()
    assert resp_bystander.cmd("PING") == b"+PONG\r\n"
    body = kafka_request(node.kafka_port, api_versions_v0(3, 0))
    assert struct.unpack(">ih", body[:6]) == (3, 0)


def test_hostile_array_length_does_not_take_the_node_down(node):
    """A Metadata request whose topics array claims 2^31-1 entries: the decoder reserves
    for the claim before reading (kafka-protocol does), which used to abort the process.
    Only this connection may close; the node and its other connections carry on."""
    bystander = Raw(node.port)
    for version, header_ver in [(1, 1), (9, 2)]:
        if header_ver == 1:
            header = struct.pack(">hhih", 3, version, 77, 4) + b"evil"
            body = struct.pack(">i", 0x7FFFFFFF)  # topics array length, then nothing
        else:
            header = struct.pack(">hhih", 3, version, 77, 4) + b"evil" + b"\x00"  # tagged fields
            body = b"\xff\xff\xff\xff\x07"  # compact array length as a huge varint
        payload = header + body
        s = socket.create_connection(("127.0.0.1", node.kafka_port), timeout=5)
        s.sendall(struct.pack(">i", len(payload)) + payload)
        s.settimeout(5)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        s.close()
        assert node.proc.poll() is None, "the node died"
    assert bystander.cmd("PING") == b"+PONG\r\n"
    body = kafka_request(node.kafka_port, api_versions_v0(4, 0))
    assert struct.unpack(">ih", body[:6]) == (4, 0)

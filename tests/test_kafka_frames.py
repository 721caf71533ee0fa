"""Kafka frames whose lengths lie, sent to a node under a tight address-space limit.

kafka-protocol's decoders reserve `Vec::with_capacity(n)` for array counts read off the wire,
before reading the elements. The node used to survive that by reserving address space with
mmap(MAP_NORESERVE) for allocations of 1 GiB or more, which still fails under
`vm.overcommit_memory=2` or an address-space limit, and Rust aborts on a failed allocation.
Now `proto::kafka::schema` checks every length against the bytes that follow before the
request is decoded. Each test here runs the node with RLIMIT_AS a little above what it maps
at start (so any reservation of 1 GiB or more fails), sends frames that claim huge or
past-the-end arrays, compact arrays, strings, bytes, tagged fields and record batches for
every API served, and checks that each is answered with a clean close (or, for a record
batch, an error code), that the node stays up, and that real clients still work.
"""

import resource
import socket
import struct
import subprocess
import time

import pytest

from conftest import Raw

HEADROOM = 768 << 20  # less than 1 GiB: a 1 GiB reservation must fail

I32_MAX = 0x7FFFFFFF
HUGE_VAR = 0xFFFFFFFF  # a compact length of 2^32 - 2


# ----- encoding ---------------------------------------------------------------------------

def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)


def uvarint(v: int) -> bytes:
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def s(text: str | None) -> bytes:
    """A (nullable) string with an int16 length."""
    if text is None:
        return i16(-1)
    return i16(len(text)) + text.encode()


def cs(text: str | None) -> bytes:
    """A compact (nullable) string."""
    if text is None:
        return uvarint(0)
    return uvarint(len(text) + 1) + text.encode()


def carr(n: int) -> bytes:
    return uvarint(n + 1)


TAGS = b"\x00"  # an empty tagged section


def header(key: int, version: int, flexible: bool, client_id="frames") -> bytes:
    h = i16(key) + i16(version) + i32(99) + s(client_id)
    return h + TAGS if flexible else h


# ----- the node under a limit -------------------------------------------------------------

def vm_size(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


@pytest.fixture
def limited(start):
    """A node whose address space may grow by less than 1 GiB past what it maps once ready."""
    node = start()
    pid = node.proc.pid
    limit = vm_size(pid) + HEADROOM
    resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
    limits = open(f"/proc/{pid}/limits").read()
    assert f"Max address space         {limit}" in limits, limits
    return node


def send_frame(port: int, payload: bytes) -> bytes:
    """Send one request frame; what the node sends back before it closes (b"" if nothing)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(i32(len(payload)) + payload)
        got = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return got
            if not chunk:
                return got
            got += chunk
            if len(got) >= 4 and len(got) >= 4 + struct.unpack(">i", got[:4])[0]:
                return got
    finally:
        sock.close()


def request(port: int, payload: bytes) -> bytes:
    got = send_frame(port, payload)
    assert len(got) >= 8, f"no response: {got!r}"
    return got[4:]


# ----- the frames -------------------------------------------------------------------------

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
FIND_COORDINATOR, API_VERSIONS, CREATE_TOPICS, DELETE_TOPICS = 10, 18, 19, 20
INIT_PRODUCER_ID, DESCRIBE_CONFIGS = 22, 32

# (what lies, payload): each claims more than the frame holds, so the node must close the
# connection without decoding. Arrays are the ones that used to allocate from the claim.
LYING = [
    # Produce v3 (int16/int32 lengths)
    ("Produce v3 topic_data array", header(PRODUCE, 3, False) + s(None) + i16(1) + i32(1000) + i32(I32_MAX)),
    ("Produce v3 partition_data array", header(PRODUCE, 3, False) + s(None) + i16(1) + i32(1000)
        + i32(1) + s("t") + i32(I32_MAX)),
    ("Produce v3 transactional_id string", header(PRODUCE, 3, False) + i16(0x7FFF) + b"tx"),
    ("Produce v3 topic name string", header(PRODUCE, 3, False) + s(None) + i16(1) + i32(1000)
        + i32(1) + i16(0x7FFF) + b"t"),
    ("Produce v3 records bytes", header(PRODUCE, 3, False) + s(None) + i16(1) + i32(1000)
        + i32(1) + s("t") + i32(1) + i32(0) + i32(I32_MAX) + b"\x00" * 16),
    # Produce v9 (flexible: compact lengths, tagged fields)
    ("Produce v9 topic_data compact array", header(PRODUCE, 9, True) + cs(None) + i16(1) + i32(1000)
        + uvarint(HUGE_VAR)),
    ("Produce v9 partition_data compact array", header(PRODUCE, 9, True) + cs(None) + i16(1) + i32(1000)
        + carr(1) + cs("t") + uvarint(HUGE_VAR)),
    ("Produce v9 records compact bytes", header(PRODUCE, 9, True) + cs(None) + i16(1) + i32(1000)
        + carr(1) + cs("t") + carr(1) + i32(0) + uvarint(1 << 31)),
    ("Produce v9 tagged field size", header(PRODUCE, 9, True) + cs(None) + i16(1) + i32(1000)
        + carr(0) + uvarint(1) + uvarint(7) + uvarint(1 << 31)),
    ("Produce v9 tagged field count", header(PRODUCE, 9, True) + cs(None) + i16(1) + i32(1000)
        + carr(0) + uvarint(HUGE_VAR)),
    # Fetch
    ("Fetch v4 topics array", header(FETCH, 4, False) + i32(-1) + i32(500) + i32(1) + i32(1 << 20)
        + i8(0) + i32(I32_MAX)),
    ("Fetch v4 partitions array", header(FETCH, 4, False) + i32(-1) + i32(500) + i32(1) + i32(1 << 20)
        + i8(0) + i32(1) + s("t") + i32(I32_MAX)),
    ("Fetch v11 forgotten_topics array", header(FETCH, 11, False) + i32(-1) + i32(500) + i32(1)
        + i32(1 << 20) + i8(0) + i32(0) + i32(-1) + i32(0) + i32(I32_MAX)),
    ("Fetch v11 rack_id string", header(FETCH, 11, False) + i32(-1) + i32(500) + i32(1) + i32(1 << 20)
        + i8(0) + i32(0) + i32(-1) + i32(0) + i32(0) + i16(0x7FFF)),
    ("Fetch v12 topics compact array", header(FETCH, 12, True) + i32(-1) + i32(500) + i32(1)
        + i32(1 << 20) + i8(0) + i32(0) + i32(-1) + uvarint(HUGE_VAR)),
    ("Fetch v12 cluster_id tagged string", header(FETCH, 12, True) + i32(-1) + i32(500) + i32(1)
        + i32(1 << 20) + i8(0) + i32(0) + i32(-1) + carr(0) + carr(0) + cs("")
        + uvarint(1) + uvarint(0) + uvarint(3) + uvarint(HUGE_VAR)),
    # Metadata
    ("Metadata v1 topics array", header(METADATA, 1, False) + i32(I32_MAX)),
    ("Metadata v4 topic name string", header(METADATA, 4, False) + i32(1) + i16(0x7FFF) + b"x"),
    ("Metadata v9 topics compact array", header(METADATA, 9, True) + uvarint(HUGE_VAR) + TAGS),
    ("Metadata v12 topic name compact string", header(METADATA, 12, True) + carr(1) + b"\x00" * 16
        + uvarint(HUGE_VAR)),
    ("Metadata v12 topics just past the frame", header(METADATA, 12, True) + carr(3) + b"\x00" * 40),
    # CreateTopics
    ("CreateTopics v2 topics array", header(CREATE_TOPICS, 2, False) + i32(I32_MAX)),
    ("CreateTopics v2 assignments array", header(CREATE_TOPICS, 2, False) + i32(1) + s("t") + i32(1)
        + i16(1) + i32(I32_MAX)),
    ("CreateTopics v2 broker_ids array", header(CREATE_TOPICS, 2, False) + i32(1) + s("t") + i32(-1)
        + i16(-1) + i32(1) + i32(0) + i32(I32_MAX)),
    ("CreateTopics v2 configs array", header(CREATE_TOPICS, 2, False) + i32(1) + s("t") + i32(1)
        + i16(1) + i32(0) + i32(I32_MAX)),
    ("CreateTopics v5 topics compact array", header(CREATE_TOPICS, 5, True) + uvarint(HUGE_VAR)),
    ("CreateTopics v5 config value compact string", header(CREATE_TOPICS, 5, True) + carr(1) + cs("t")
        + i32(1) + i16(1) + carr(0) + carr(1) + cs("retention.ms") + uvarint(HUGE_VAR)),
    # ApiVersions (and the request header)
    ("ApiVersions v3 client_software_name", header(API_VERSIONS, 3, True) + uvarint(HUGE_VAR)),
    ("ApiVersions v3 header tagged size", i16(API_VERSIONS) + i16(3) + i32(99) + s("frames")
        + uvarint(1) + uvarint(9) + uvarint(1 << 30)),
    ("ApiVersions v1 header client_id", i16(API_VERSIONS) + i16(1) + i32(99) + i16(0x7FFF) + b"x"),
    # ListOffsets
    ("ListOffsets v1 topics array", header(LIST_OFFSETS, 1, False) + i32(-1) + i32(I32_MAX)),
    ("ListOffsets v1 partitions array", header(LIST_OFFSETS, 1, False) + i32(-1) + i32(1) + s("t")
        + i32(I32_MAX)),
    ("ListOffsets v6 topics compact array", header(LIST_OFFSETS, 6, True) + i32(-1) + i8(0)
        + uvarint(HUGE_VAR)),
    # DeleteTopics
    ("DeleteTopics v1 topic_names array", header(DELETE_TOPICS, 1, False) + i32(I32_MAX)),
    ("DeleteTopics v4 topic_names compact array", header(DELETE_TOPICS, 4, True) + uvarint(HUGE_VAR)),
    ("DeleteTopics v6 topics compact array", header(DELETE_TOPICS, 6, True) + uvarint(HUGE_VAR)),
    # DescribeConfigs
    ("DescribeConfigs v1 resources array", header(DESCRIBE_CONFIGS, 1, False) + i32(I32_MAX)),
    ("DescribeConfigs v1 configuration_keys array", header(DESCRIBE_CONFIGS, 1, False) + i32(1) + i8(2)
        + s("t") + i32(I32_MAX)),
    ("DescribeConfigs v4 configuration_keys compact array", header(DESCRIBE_CONFIGS, 4, True) + carr(1)
        + i8(2) + cs("t") + uvarint(HUGE_VAR)),
    # InitProducerId
    ("InitProducerId v0 transactional_id", header(INIT_PRODUCER_ID, 0, False) + i16(0x7FFF) + b"x"),
    ("InitProducerId v2 transactional_id compact", header(INIT_PRODUCER_ID, 2, True) + uvarint(HUGE_VAR)),
    # FindCoordinator
    ("FindCoordinator v0 key string", header(FIND_COORDINATOR, 0, False) + i16(0x7FFF) + b"g"),
    ("FindCoordinator v4 coordinator_keys compact array", header(FIND_COORDINATOR, 4, True) + i8(0)
        + uvarint(HUGE_VAR)),
]


def test_every_lying_length_closes_only_its_connection_under_an_address_space_limit(limited):
    node = limited
    bystander = Raw(node.port)
    errors = node.metric("pinion_protocol_errors_total")
    for what, payload in LYING:
        got = send_frame(node.kafka_port, payload)
        assert got == b"", f"{what}: expected a close, got {got[:16]!r}"
        assert node.proc.poll() is None, f"{what}: the node died:\n{node.log_text()[-2000:]}"
    node.wait_metric("pinion_protocol_errors_total", errors + len(LYING))
    assert bystander.cmd("PING") == b"+PONG\r\n"
    # The node still serves Kafka, through a real client.
    md = subprocess.run(
        ["kcat", "-b", f"127.0.0.1:{node.kafka_port}", "-L", "-m", "5"],
        capture_output=True, text=True, timeout=30,
    )
    assert md.returncode == 0 and "broker 0 at" in md.stdout, md.stderr


# ----- record batches ---------------------------------------------------------------------

def batch(records: int, last_offset_delta: int, length_delta=0, body=b"\x00" * 8) -> bytes:
    """A RecordBatch v2 whose header claims `records` records; its CRC is right, so only the
    claims are wrong. `length_delta` is added to the batch length field."""
    from kafka.record.util import calc_crc32c

    after_crc = (
        i16(0)                  # attributes
        + i32(last_offset_delta)
        + i64(0) + i64(0)       # first and max timestamp
        + i64(-1) + i16(-1) + i32(-1)  # producer id, epoch, base sequence
        + i32(records)
        + body
    )
    crc = struct.pack(">I", calc_crc32c(after_crc))
    length = 4 + 1 + 4 + len(after_crc)  # epoch, magic, crc, rest
    return i64(0) + i32(length + length_delta) + i32(0) + i8(2) + crc + after_crc


def produce_v3(topic: str, records: bytes) -> bytes:
    return (header(PRODUCE, 3, False) + s(None) + i16(1) + i32(5000)
            + i32(1) + s(topic) + i32(1) + i32(0) + i32(len(records)) + records)


def produce_error(body: bytes) -> int:
    """The error code of the one partition of a Produce v3 response."""
    # correlation id, topics count, topic name, partitions count, index, error code
    assert struct.unpack(">i", body[:4])[0] == 99
    n = struct.unpack(">h", body[8:10])[0]
    at = 10 + n + 4 + 4
    return struct.unpack(">h", body[at:at + 2])[0]


def test_record_batches_whose_header_lies_get_an_error_code_not_an_allocation(limited):
    node = limited
    subprocess.run(
        ["kcat", "-b", f"127.0.0.1:{node.kafka_port}", "-L", "-t", "lies", "-m", "5"],
        capture_output=True, timeout=30, check=True,
    )
    corrupt, invalid = 2, 87
    # The batch length claims 2 GiB more than the records hold.
    body = request(node.kafka_port, produce_v3("lies", batch(1, 0, length_delta=I32_MAX - 100)))
    assert produce_error(body) == corrupt
    # A record count of 2^31 - 1 that its last offset delta contradicts.
    body = request(node.kafka_port, produce_v3("lies", batch(I32_MAX, 0)))
    assert produce_error(body) == invalid
    # A negative record count.
    body = request(node.kafka_port, produce_v3("lies", batch(-5, 0)))
    assert produce_error(body) == invalid
    # Shorter than a batch header.
    body = request(node.kafka_port, produce_v3("lies", b"\x00" * 20))
    assert produce_error(body) == corrupt
    assert node.proc.poll() is None
    # Real clients still produce and consume, through the same limited node.
    p = subprocess.run(
        ["kcat", "-b", f"127.0.0.1:{node.kafka_port}", "-P", "-t", "lies", "-p", "0"],
        input=b"after-1\nafter-2\n", capture_output=True, timeout=30,
    )
    assert p.returncode == 0, p.stderr
    c = subprocess.run(
        ["kcat", "-b", f"127.0.0.1:{node.kafka_port}", "-C", "-t", "lies", "-p", "0", "-o", "beginning",
         "-e", "-q"],
        capture_output=True, text=True, timeout=30,
    )
    assert c.stdout.splitlines() == ["after-1", "after-2"], (c.stdout, c.stderr)


def test_a_frame_with_more_elements_than_the_limit_is_closed(limited):
    """2^20 + 1 Metadata topics that are all there: refused by count, not by size."""
    node = limited
    n = (1 << 20) + 1
    payload = header(METADATA, 9, True) + carr(n) + b"\x00\x00" * n + b"\x01\x00\x00\x00"
    started = time.time()
    assert send_frame(node.kafka_port, payload) == b""
    assert time.time() - started < 10
    body = request(node.kafka_port, header(METADATA, 9, True) + carr(0) + b"\x01\x00\x00\x00")
    assert struct.unpack(">i", body[:4])[0] == 99

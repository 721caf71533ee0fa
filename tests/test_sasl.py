"""Kafka SASL (issue 13, item 7): SaslHandshake and SaslAuthenticate with PLAIN, SCRAM-SHA-256
and SCRAM-SHA-512 over SASL_PLAINTEXT, users from the --users file, topic rules, and
unauthenticated requests refused; with kcat and confluent-kafka."""
import socket
import struct
import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import binary


def add_user(path, name, password, *rules):
    r = subprocess.run(
        [binary(), "users", "add", name, *rules, "--password-stdin", "--file", str(path)],
        input=password.encode(), capture_output=True, timeout=30,
    )
    assert r.returncode == 0, r.stderr.decode()


@pytest.fixture
def sasl_node(start, tmp_path):
    path = tmp_path / "users.acl"
    add_user(path, "writer", "writer-pw", "topic:write:orders-*", "topic:create:orders-*",
             "topic:read:orders-*")
    add_user(path, "reader", "reader-pw", "topic:read:orders-*")
    add_user(path, "admin", "admin-pw", "topic:all:*")
    return start("--users", str(path))


def conf(node, mech, user, password, **extra):
    c = {
        "bootstrap.servers": f"127.0.0.1:{node.kafka_port}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": mech,
        "sasl.username": user,
        "sasl.password": password,
    }
    c.update(extra)
    return c


def kcat(node, mech, user, password, *args, input=None, timeout=30):
    return subprocess.run(
        ["kcat", "-b", f"127.0.0.1:{node.kafka_port}", "-X", "security.protocol=SASL_PLAINTEXT",
         "-X", f"sasl.mechanisms={mech}", "-X", f"sasl.username={user}",
         "-X", f"sasl.password={password}", *args],
        input=input, capture_output=True, timeout=timeout,
    )


def produce(node, mech, user, password, topic, values):
    errors = []
    p = Producer(conf(node, mech, user, password, **{"message.timeout.ms": 10000}))
    for v in values:
        p.produce(topic, v, on_delivery=lambda err, msg: err and errors.append(err))
    left = p.flush(15)
    return errors, left


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_right_password_produces_and_consumes(sasl_node, mech):
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    errors, left = produce(sasl_node, mech, "writer", "writer-pw", topic, [b"a", b"b", b"c"])
    assert errors == [] and left == 0
    c = Consumer(conf(sasl_node, mech, "reader", "reader-pw", **{
        "group.id": f"g-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"}))
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    for _ in range(50):
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
        if len(got) == 3:
            break
    c.close()
    assert got == [b"a", b"b", b"c"]
    # kcat with the same mechanism.
    r = kcat(sasl_node, mech, "reader", "reader-pw", "-C", "-t", topic, "-e", "-o", "beginning")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split() == ["a", "b", "c"]


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_password_fails_authentication(sasl_node, mech):
    a = AdminClient(conf(sasl_node, mech, "writer", "not-the-password"))
    with pytest.raises(KafkaException) as e:
        a.list_topics(timeout=10)
    err = e.value.args[0]
    assert err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED,
                          KafkaError._TRANSPORT, KafkaError._TIMED_OUT), err
    r = kcat(sasl_node, mech, "writer", "not-the-password", "-L", timeout=30)
    assert r.returncode != 0
    assert "Authentication failed" in r.stderr.decode() or "SASL" in r.stderr.decode()
    # Logged with RESP's failures (the default user is open on loopback).
    log = sasl_node.client().acl_log()
    assert any(e["reason"] == "auth" and e["context"] == "kafka" and e["username"] == "writer"
               and e["count"] >= 2 for e in log), log


def frame(api_key, version, cid, body, client=b"t"):
    head = struct.pack(">hhih", api_key, version, cid, len(client)) + client
    msg = head + body
    return struct.pack(">i", len(msg)) + msg


def read_frame(s):
    n = struct.unpack(">i", recv_exact(s, 4))[0]
    return recv_exact(s, n)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def plain_login(node, user, password):
    """A raw connection after SaslHandshake v1 (PLAIN) and SaslAuthenticate v0."""
    s = socket.create_connection(("127.0.0.1", node.kafka_port), timeout=5)
    s.sendall(frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
    assert struct.unpack(">ih", read_frame(s)[:6]) == (1, 0)
    token = b"\0" + user.encode() + b"\0" + password.encode()
    s.sendall(frame(36, 0, 2, struct.pack(">i", len(token)) + token))
    assert struct.unpack(">ih", read_frame(s)[:6]) == (2, 0)
    return s


def test_wrong_mechanism_and_unauthenticated_requests(sasl_node):
    # SaslHandshake v1 naming GSSAPI: UNSUPPORTED_SASL_MECHANISM (33) and our mechanisms.
    s = socket.create_connection(("127.0.0.1", sasl_node.kafka_port), timeout=5)
    mech = b"GSSAPI"
    s.sendall(frame(17, 1, 7, struct.pack(">h", len(mech)) + mech))
    resp = read_frame(s)
    cid, err, n = struct.unpack(">ihi", resp[:10])
    assert (cid, err, n) == (7, 33, 3)
    assert b"PLAIN" in resp and b"SCRAM-SHA-256" in resp and b"SCRAM-SHA-512" in resp
    s.close()
    # Metadata before authenticating: the connection is closed, nothing answered.
    s = socket.create_connection(("127.0.0.1", sasl_node.kafka_port), timeout=5)
    s.sendall(frame(3, 1, 8, struct.pack(">i", -1)))
    with pytest.raises((ConnectionError, OSError)):
        read_frame(s)
    s.close()
    # ApiVersions is allowed and lists the SASL APIs.
    s = socket.create_connection(("127.0.0.1", sasl_node.kafka_port), timeout=5)
    s.sendall(frame(18, 0, 9, b""))
    resp = read_frame(s)
    keys = {struct.unpack(">h", resp[10 + 6 * i:12 + 6 * i])[0]
            for i in range(struct.unpack(">i", resp[6:10])[0])}
    assert {17, 36} <= keys
    s.close()
    # librdkafka with a mechanism the broker lacks: it fails to authenticate.
    r = kcat(sasl_node, "OAUTHBEARER", "writer", "writer-pw", "-L", "-X",
             "enable.sasl.oauthbearer.unsecure.jwt=true", timeout=30)
    assert r.returncode != 0
    assert "Unsupported SASL mechanism" in r.stderr.decode() or "UNSUPPORTED_SASL_MECHANISM" in r.stderr.decode() \
        or "mechanism" in r.stderr.decode().lower()
    # The default user (nopass: RESP is open on loopback) cannot log in over SASL.
    with pytest.raises(AssertionError):
        plain_login(sasl_node, "default", "anything")
    # A client without SASL is closed at its first request other than ApiVersions.
    a = AdminClient({"bootstrap.servers": f"127.0.0.1:{sasl_node.kafka_port}"})
    with pytest.raises(KafkaException):
        a.list_topics(timeout=5)


def test_unauthorised_topic(sasl_node):
    # reader may not write orders-*, and may not touch payments at all.
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    errors, left = produce(sasl_node, "SCRAM-SHA-256", "writer", "writer-pw", topic, [b"x"])
    assert errors == [] and left == 0
    errors, left = produce(sasl_node, "SCRAM-SHA-256", "reader", "reader-pw", topic, [b"y"])
    assert left == 0 and errors
    assert errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, errors[0]
    # Metadata lists only what the principal may describe.
    a = AdminClient(conf(sasl_node, "PLAIN", "reader", "reader-pw"))
    md = a.list_topics(timeout=10)
    assert topic in md.topics
    md = a.list_topics(topic="payments", timeout=10)
    assert md.topics["payments"].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # CreateTopics: writer may create orders-*, not payments.
    w = AdminClient(conf(sasl_node, "SCRAM-SHA-512", "writer", "writer-pw"))
    fs = w.create_topics([NewTopic("payments", 1, 1), NewTopic(f"orders-new-{uuid.uuid4().hex[:4]}", 1, 1)])
    results = {}
    for name, f in fs.items():
        try:
            f.result(10)
            results[name] = None
        except KafkaException as e:
            results[name] = e.args[0].code()
    assert results["payments"] == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert [v for k, v in results.items() if k != "payments"] == [None]
    # DeleteTopics without a delete rule.
    fs = w.delete_topics([topic])
    with pytest.raises(KafkaException) as e:
        fs[topic].result(10)
    assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # ListOffsets (watermarks) of a topic reader may not describe.
    adm = AdminClient(conf(sasl_node, "PLAIN", "admin", "admin-pw"))
    fs = adm.create_topics([NewTopic("payments-1", 1, 1)])
    fs["payments-1"].result(10)
    # (librdkafka stops at Metadata's answer, so ListOffsets is sent raw after a PLAIN login.)
    s = plain_login(sasl_node, "reader", "reader-pw")
    for name, want in ((b"payments-1", 29), (topic.encode(), 0)):
        body = struct.pack(">ii", -1, 1) + struct.pack(">h", len(name)) + name \
            + struct.pack(">iiq", 1, 0, -1)
        s.sendall(frame(2, 1, 5, body))
        resp = read_frame(s)
        n = struct.unpack(">h", resp[8:10])[0]
        assert resp[10:10 + n] == name
        part, err = struct.unpack(">ih", resp[14 + n:20 + n])
        assert (part, err) == (0, want)
    s.close()
    # Fetch by reader of a topic it may not read, with kcat.
    r = kcat(sasl_node, "PLAIN", "reader", "reader-pw", "-C", "-t", "payments", "-p", "0",
             "-o", "beginning", "-e", timeout=30)
    assert r.returncode != 0 or "not authorized" in r.stderr.decode().lower() \
        or "authorization" in r.stderr.decode().lower()


def test_admin_apis_follow_topic_rules(sasl_node):
    """DeleteRecords asks `delete`, CreatePartitions and AlterConfigs `create`, DescribeConfigs
    `describe`: a principal without the right gets TOPIC_AUTHORIZATION_FAILED and the topic is
    left as it was."""
    from confluent_kafka import TopicPartition as TP
    from confluent_kafka.admin import ConfigResource, NewPartitions

    topic = f"orders-{uuid.uuid4().hex[:8]}"
    w = AdminClient(conf(sasl_node, "SCRAM-SHA-512", "writer", "writer-pw"))
    w.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    errors, left = produce(sasl_node, "SCRAM-SHA-256", "writer", "writer-pw", topic,
                           [b"a", b"b", b"c"])
    assert errors == [] and left == 0
    reader = AdminClient(conf(sasl_node, "PLAIN", "reader", "reader-pw"))

    def code_of(fut):
        with pytest.raises(KafkaException) as e:
            fut.result(timeout=15)
        return e.value.args[0].code()

    # DeleteRecords: reader may not; the records stay.
    res = reader.delete_records([TP(topic, 0, 2)])
    assert code_of(res[TP(topic, 0, 2)]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # CreatePartitions and AlterConfigs: reader may not.
    fs = reader.create_partitions([NewPartitions(topic, 4)])
    assert code_of(fs[topic]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"retention.ms": "1000"})
    fs = reader.alter_configs([res])
    assert code_of(fs[res]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # DescribeConfigs of a topic reader may not describe.
    res = ConfigResource(ConfigResource.Type.TOPIC, "payments")
    assert code_of(reader.describe_configs([res])[res]) == KafkaError.TOPIC_AUTHORIZATION_FAILED

    # admin (topic:all:*) may do all of it, and sees the first two records gone.
    admin = AdminClient(conf(sasl_node, "PLAIN", "admin", "admin-pw"))
    res = admin.delete_records([TP(topic, 0, 2)])
    assert res[TP(topic, 0, 2)].result(timeout=15).low_watermark == 2
    admin.create_partitions([NewPartitions(topic, 4)])[topic].result(timeout=15)
    md = admin.list_topics(topic=topic, timeout=10)
    assert len(md.topics[topic].partitions) == 4

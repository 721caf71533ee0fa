"""Kafka consumer groups through real clients: confluent-kafka (librdkafka), kafka-python
and kafkajs joining, rebalancing (eager, cooperative-sticky, static members), committing
offsets that survive kill -9, and the admin APIs over groups."""

import re
import json
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka_util import bootstrap, create, wait_for

HERE = Path(__file__).resolve().parent
FAST = ("--group-initial-rebalance-delay-ms", "300")


def produce(node, topic, values, partitions):
    """Produce `values` round-robin over `partitions` (acks=all); returns them per partition."""
    p = Producer({"bootstrap.servers": bootstrap(node), "acks": "all", "linger.ms": 2})
    errors = []
    for i, v in enumerate(values):
        p.produce(topic, v.encode(), partition=i % partitions,
                  on_delivery=lambda e, m: errors.append(e) if e else None)
    assert p.flush(20) == 0
    assert not errors, errors


def consumer(node, group, **extra):
    conf = {"bootstrap.servers": bootstrap(node), "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    conf.update(extra)
    return Consumer(conf)


class Reader:
    """Polls several consumers in turn, committing each record it reads (at-least-once:
    a commit refused by a rebalance leaves the record to be read again)."""

    def __init__(self):
        self.seen = {}  # (partition, offset) -> value
        self.by = {}  # consumer name -> records read

    def pump(self, consumers):
        for name, c in consumers.items():
            m = c.poll(0.02)
            if m is None:
                continue
            assert m.error() is None, m.error()
            self.seen.setdefault((m.partition(), m.offset()), m.value().decode())
            self.by[name] = self.by.get(name, 0) + 1
            try:
                c.commit(message=m, asynchronous=False)
            except KafkaException:
                pass


def sizes(consumers):
    return sorted(len(c.assignment()) for c in consumers.values())


def test_three_consumers_share_six_partitions_through_a_leave_and_a_join_and_a_kill_9(start):
    node = start(*FAST)
    create(node, "shared", 6)
    produce(node, "shared", [f"a{i}" for i in range(300)], 6)
    r = Reader()
    cs = {n: consumer(node, "three", **{"client.id": n}) for n in "abc"}
    for c in cs.values():
        c.subscribe(["shared"])
    wait_for(lambda: sizes(cs) == [2, 2, 2] and len(r.seen) >= 150, 60,
             "three members with two partitions each", lambda: r.pump(cs))
    # One leaves (LeaveGroup on close): the other two take its partitions over.
    cs.pop("c").close()
    produce(node, "shared", [f"b{i}" for i in range(300)], 6)
    wait_for(lambda: sizes(cs) == [3, 3] and len(r.seen) >= 450, 60,
             "two members with three partitions each", lambda: r.pump(cs))
    # Another joins: back to two each, and everything is read.
    cs["d"] = consumer(node, "three", **{"client.id": "d"})
    cs["d"].subscribe(["shared"])
    wait_for(lambda: sizes(cs) == [2, 2, 2] and len(r.seen) == 600, 60,
             "every record read by a group of three", lambda: r.pump(cs))
    assert r.by.get("d", 0) > 0, "the member that joined read its share"
    # Committed: every partition at its end (100 records each).
    tps = [TopicPartition("shared", p) for p in range(6)]
    wait_for(lambda: all(t.offset == 100 for t in cs["a"].committed(tps, timeout=10)), 30,
             "every partition committed at its end", lambda: r.pump(cs))
    for c in cs.values():
        c.close()
    assert sorted(r.seen) == [(p, o) for p in range(6) for o in range(100)]
    # kill -9: the committed offsets come back, and a new member resumes from them.
    node.kill9()
    node.restart()
    produce(node, "shared", [f"c{i}" for i in range(60)], 6)
    after = Reader()
    again = {"e": consumer(node, "three")}
    again["e"].subscribe(["shared"])
    wait_for(lambda: len(after.seen) >= 60, 60, "the records produced after the restart",
             lambda: after.pump(again))
    end = time.time() + 1.0
    while time.time() < end:
        after.pump(again)
    again["e"].close()
    assert sorted(after.seen) == [(p, o) for p in range(6) for o in range(100, 110)]
    assert sorted(after.seen.values()) == sorted(f"c{i}" for i in range(60))


def test_kafka_python_group_consumer_commits_and_resumes(start):
    from kafka import KafkaConsumer, KafkaProducer

    node = start(*FAST)
    bs = bootstrap(node)
    producer = KafkaProducer(bootstrap_servers=bs, value_serializer=str.encode)
    for i in range(100):
        producer.send("classic-group", f"message {i}")
    producer.flush()

    def read(want):
        c = KafkaConsumer("classic-group", bootstrap_servers=bs, group_id="kp",
                          auto_offset_reset="earliest", value_deserializer=bytes.decode)
        got = []
        deadline = time.time() + 60
        while len(got) < want and time.time() < deadline:
            for msgs in c.poll(timeout_ms=500).values():
                got.extend(m.value for m in msgs)
        # The group's auto-commit commits what was read when the consumer closes.
        c.close()
        return got

    first = read(100)
    assert sorted(first, key=lambda s: int(s.split()[1])) == [f"message {i}" for i in range(100)]
    for i in range(100, 110):
        producer.send("classic-group", f"message {i}")
    producer.flush()
    producer.close()
    assert sorted(read(10), key=lambda s: int(s.split()[1])) == [f"message {i}" for i in range(100, 110)]


def kafkajs():
    script = HERE / "js" / "kafkajs_group.js"
    if not shutil.which("node") or not (HERE / "js" / "node_modules" / "kafkajs").exists():
        pytest.skip("node and kafkajs are installed by tools/test.sh")
    return script


def test_kafkajs_consumes_through_a_group(start):
    script = kafkajs()
    node = start(*FAST)
    create(node, "js-group", 3)
    produce(node, "js-group", [f"v{i}" for i in range(90)], 3)
    out = subprocess.run(["node", str(script), bootstrap(node), "js-group", "js", "90"],
                         capture_output=True, timeout=90)
    assert out.returncode == 0, out.stderr.decode()
    seen = json.loads(out.stdout)
    assert sorted(v for _, _, v in seen) == sorted(f"v{i}" for i in range(90))
    # kafkajs committed on disconnect: the group's offsets are at the ends.
    c = consumer(node, "js")
    committed = c.committed([TopicPartition("js-group", p) for p in range(3)], timeout=10)
    c.close()
    assert [t.offset for t in committed] == [30, 30, 30]


ASSIGNER = """
import sys, time
from confluent_kafka import Consumer, TopicPartition
bs, want = sys.argv[1], int(sys.argv[2])
c = Consumer({"bootstrap.servers": bs, "group.id": "assigner", "auto.offset.reset": "earliest",
              "enable.auto.commit": False})
# No offsets given: librdkafka fetches the group's committed offsets (OffsetFetch).
c.assign([TopicPartition("assigned", 0), TopicPartition("assigned", 1)])
got = []
deadline = time.time() + 30
while len(got) < want and time.time() < deadline:
    m = c.poll(0.2)
    if m is not None and m.error() is None:
        got.append(m.value().decode())
c.commit(asynchronous=False)
c.close()
print(" ".join(sorted(got)))
"""


def test_assign_without_offsets_uses_the_groups_committed_offsets(start):
    """A consumer with a group.id that assign()s partitions without offsets used to crash
    its process (librdkafka on OffsetFetch unsupported, rc 139)."""
    node = start(*FAST)
    create(node, "assigned", 2)
    produce(node, "assigned", [f"x{i}" for i in range(10)], 2)

    def run(want):
        out = subprocess.run([sys.executable, "-c", ASSIGNER, bootstrap(node), str(want)],
                             capture_output=True, timeout=60)
        assert out.returncode == 0, (out.returncode, out.stderr.decode()[-2000:])
        return out.stdout.decode().split()

    assert run(10) == sorted(f"x{i}" for i in range(10))
    produce(node, "assigned", [f"y{i}" for i in range(4)], 2)
    assert run(4) == sorted(f"y{i}" for i in range(4))


def test_cooperative_sticky_moves_only_the_partitions_it_must(start):
    node = start(*FAST)
    create(node, "coop", 4)
    produce(node, "coop", [f"v{i}" for i in range(200)], 4)
    events = {"a": [], "b": []}
    r = Reader()

    def member(name):
        c = consumer(node, "coop", **{"partition.assignment.strategy": "cooperative-sticky"})
        c.subscribe(["coop"],
                    on_assign=lambda _c, ps: events[name].append(("assign", sorted(p.partition for p in ps))),
                    on_revoke=lambda _c, ps: events[name].append(("revoke", sorted(p.partition for p in ps))))
        return c

    cs = {"a": member("a")}
    wait_for(lambda: sizes(cs) == [4], 60, "a alone with every partition", lambda: r.pump(cs))
    cs["b"] = member("b")
    wait_for(lambda: sizes(cs) == [2, 2] and len(r.seen) == 200, 60,
             "two partitions each and every record read", lambda: r.pump(cs))
    # a gave up two partitions incrementally and kept the other two throughout.
    revoked = [ps for kind, ps in events["a"] if kind == "revoke" and ps]
    assert len(revoked) == 1 and len(revoked[0]) == 2, events
    kept = sorted(p.partition for p in cs["a"].assignment())
    assert sorted(revoked[0] + kept) == [0, 1, 2, 3]
    assert sorted(p.partition for p in cs["b"].assignment()) == revoked[0]
    assert [e for e in events["b"] if e[0] == "assign" and e[1]] == [("assign", revoked[0])]
    for c in cs.values():
        c.close()


def test_a_static_member_restarts_without_a_rebalance(start):
    node = start(*FAST)
    create(node, "static", 4)
    produce(node, "static", [f"v{i}" for i in range(40)], 4)
    events = {"a": [], "b": []}
    r = Reader()

    def member(instance):
        c = consumer(node, "static", **{"group.instance.id": instance, "session.timeout.ms": 30000})
        c.subscribe(["static"],
                    on_assign=lambda _c, ps: events[instance].append(("assign", sorted(p.partition for p in ps))),
                    on_revoke=lambda _c, ps: events[instance].append(("revoke", sorted(p.partition for p in ps))))
        return c

    cs = {"a": member("a"), "b": member("b")}
    wait_for(lambda: sizes(cs) == [2, 2] and len(r.seen) == 40, 60,
             "two static members with two partitions each", lambda: r.pump(cs))
    settle = time.time() + 1.5
    while time.time() < settle:
        r.pump(cs)
    a_parts = sorted(p.partition for p in cs["a"].assignment())
    b_events = list(events["b"])
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    before = admin.describe_consumer_groups(["static"])["static"].result(10)
    # A static member does not leave when it closes; its successor takes its place.
    cs.pop("a").close()
    events["a"].clear()
    cs["a"] = member("a")
    wait_for(lambda: sizes(cs) == [2, 2], 30, "the restarted member's assignment",
             lambda: r.pump(cs))
    end = time.time() + 3.0
    while time.time() < end:  # heartbeats go on: b must see no rebalance
        r.pump(cs)
    assert sorted(p.partition for p in cs["a"].assignment()) == a_parts
    assert events["a"] == [("assign", a_parts)]
    assert events["b"] == b_events, "the other member saw a rebalance"
    after = admin.describe_consumer_groups(["static"])["static"].result(10)
    assert str(after.state).endswith("STABLE")
    ids = {m.group_instance_id: m.member_id for m in after.members}
    old = {m.group_instance_id: m.member_id for m in before.members}
    assert set(ids) == {"a", "b"} and ids["b"] == old["b"] and ids["a"] != old["a"]
    for c in cs.values():
        c.close()


def java_hash(s: str) -> int:
    h = 0
    for ch in s.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_file(node, group):
    h = java_hash(group)
    p = 0 if h == -(1 << 31) else abs(h) % 50
    return node.data / "groups" / f"offsets-{p}.log"


def test_offsets_file_is_rewritten_when_it_grows_and_survives_kill_9(start):
    node = start()
    create(node, "many", 100)
    c = consumer(node, "rewrite")

    def tps(n=None):
        return [TopicPartition("many", p, n) if n is not None else TopicPartition("many", p)
                for p in range(100)]

    path = offsets_file(node, "rewrite")
    for n in range(1, 1001):
        c.commit(offsets=tps(n), asynchronous=False)
    # Rewritten (once or more) down to its live offsets; it grows again from there. The size
    # it had when the rewrite began is the node's own figure: sampling it from here races the
    # rewrite, which starts as soon as a commit crosses the threshold.
    wait_for(lambda: "rewriting an offsets file" in node.log_text(), 10, "the rewrite")
    rewrites = [(int(re.search(r"from_bytes=(\d+)", line)[1]),
                 int(re.search(r"to_bytes=(\d+)", line)[1]))
                for line in re.sub(r"\x1b\[[0-9;]*m", "", node.log_text()).splitlines()
                if "rewriting an offsets file" in line]
    assert rewrites, node.log_text()[-2000:]
    largest = max(a for a, _ in rewrites)
    assert all(a >= 4 << 20 for a, _ in rewrites), rewrites
    assert all(b < a for a, b in rewrites), rewrites
    assert path.stat().st_size < largest
    assert not path.with_name(path.name + ".tmp").exists()
    got = c.committed(tps(), timeout=10)
    assert [t.offset for t in got] == [1000] * 100
    c.close()
    node.kill9()
    node.restart()
    c = consumer(node, "rewrite")
    got = c.committed(tps(), timeout=10)
    c.close()
    assert [t.offset for t in got] == [1000] * 100


def test_admin_lists_describes_deletes_groups_and_their_offsets(start):
    from kafka import TopicPartition as KTP
    from kafka.admin import KafkaAdminClient

    node = start(*FAST)
    create(node, "adm", 2)
    create(node, "other", 1)
    produce(node, "adm", [f"v{i}" for i in range(10)], 2)
    r = Reader()
    live = {"a": consumer(node, "busy")}
    live["a"].subscribe(["adm"])
    wait_for(lambda: len(r.seen) == 10, 60, "the busy group reading", lambda: r.pump(live))
    idle = consumer(node, "idle")
    idle.commit(offsets=[TopicPartition("adm", 0, 3), TopicPartition("other", 0, 1)], asynchronous=False)
    idle.close()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap(node))
    try:
        listed = {g["group_id"]: g for g in admin.list_groups()}
        assert listed["busy"]["group_state"] == "Stable"
        assert listed["busy"]["protocol_type"] == "consumer"
        assert listed["idle"]["group_state"] == "Empty"
        assert [g["group_id"] for g in admin.list_groups(states_filter=["Empty"])] == ["idle"]
        described = admin.describe_groups(["busy", "idle", "nope"])
        assert described["busy"]["group_state"] == "Stable"
        assert len(described["busy"]["members"]) == 1
        assert described["idle"]["group_state"] == "Empty"
        assert described["nope"]["group_state"] == "Dead"
        offsets = admin.list_group_offsets({"idle": None})["idle"]
        assert {(tp.topic, tp.partition): o.offset for tp, o in offsets.items()} == \
            {("adm", 0): 3, ("other", 0): 1}
        # OffsetDelete: refused for a topic the active group consumes; done for an idle group.
        r.pump(live)
        busy = admin.delete_group_offsets("busy", [KTP("adm", 0)])
        assert [e.__name__ for e in busy.values()] == ["GroupSubscribedToTopicError"], busy
        done = admin.delete_group_offsets("idle", [KTP("other", 0)])
        assert [e.__name__ for e in done.values()] == ["NoError"], done
        offsets = admin.list_group_offsets({"idle": None})["idle"]
        assert {(tp.topic, tp.partition) for tp in offsets} == {("adm", 0)}
        # DeleteGroups: a group with members is refused, an empty one goes with its offsets.
        res = admin.delete_groups(["busy", "idle", "nope"])
        assert res["idle"] == "OK" and res["nope"] == "GroupIdNotFoundError", res
        assert res["busy"] == "NonEmptyGroupError", res
        assert "idle" not in {g["group_id"] for g in admin.list_groups()}
        assert admin.list_group_offsets({"idle": None})["idle"] == {}
    finally:
        admin.close()
        live["a"].close()


def kafka_call(port, request, response_cls, version, correlation_id):
    request.with_header(correlation_id=correlation_id, client_id="sweep")
    frame = request.encode(version=version, header=True, framed=True)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(frame)
        head = b""
        while len(head) < 4:
            chunk = s.recv(4 - len(head))
            assert chunk, f"{type(request).__name__} v{version}: connection closed without an answer"
            head += chunk
        size = struct.unpack(">i", head)[0]
        body = b""
        while len(body) < size:
            chunk = s.recv(size - len(body))
            assert chunk, "connection closed mid-answer"
            body += chunk
    finally:
        s.close()
    return response_cls.decode(body, version=version, header=True)


def test_every_advertised_group_api_version_is_answered(node):
    """ApiVersions lists each group API at exactly the versions the node answers: every one
    of them gets a well-formed answer (the version before the lowest and after the highest
    are refused at decode)."""
    from kafka.protocol.admin import groups as ag
    from kafka.protocol.consumer import group as cg
    from kafka.protocol.metadata import find_coordinator as fc
    from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse

    create(node, "sweep", 1)
    v = kafka_call(node.kafka_port, ApiVersionsRequest[0](), ApiVersionsResponse, 0, 1)
    advertised = {k.api_key: (k.min_version, k.max_version) for k in v.api_keys}
    cases = {
        10: (fc.FindCoordinatorRequest, fc.FindCoordinatorResponse,
             dict(key="g", key_type=0, coordinator_keys=["g", "h"])),
        11: (cg.JoinGroupRequest, cg.JoinGroupResponse,
             dict(group_id="sweep-g", session_timeout_ms=10000, rebalance_timeout_ms=10000,
                  member_id="", protocol_type="consumer", protocols=[])),
        14: (cg.SyncGroupRequest, cg.SyncGroupResponse,
             dict(group_id="sweep-g", generation_id=1, member_id="m", assignments=[])),
        12: (cg.HeartbeatRequest, cg.HeartbeatResponse,
             dict(group_id="sweep-g", generation_id=1, member_id="m")),
        13: (cg.LeaveGroupRequest, cg.LeaveGroupResponse,
             dict(group_id="sweep-g", member_id="m", members=[])),
        8: (cg.OffsetCommitRequest, cg.OffsetCommitResponse,
            dict(group_id="sweep-g", generation_id_or_member_epoch=-1, member_id="", topics=[])),
        9: (cg.OffsetFetchRequest, cg.OffsetFetchResponse,
            dict(group_id="sweep-g", topics=None, groups=[])),
        16: (ag.ListGroupsRequest, ag.ListGroupsResponse, dict(states_filter=[])),
        15: (ag.DescribeGroupsRequest, ag.DescribeGroupsResponse, dict(groups=["sweep-g"])),
        42: (ag.DeleteGroupsRequest, ag.DeleteGroupsResponse, dict(groups_names=["sweep-none"])),
        47: (cg.OffsetDeleteRequest, cg.OffsetDeleteResponse, dict(group_id="sweep-g", topics=[])),
    }
    # What each answers for these requests (no member, no protocols, no offsets).
    checks = {
        10: lambda o, v: (o.error_code == 0 and o.node_id == 0) if v < 4
        else [(c.key, c.error_code) for c in o.coordinators] == [("g", 0), ("h", 0)],
        11: lambda o, v: o.error_code == 23,  # INCONSISTENT_GROUP_PROTOCOL: none offered
        14: lambda o, v: o.error_code == 25,  # UNKNOWN_MEMBER_ID
        12: lambda o, v: o.error_code == 25,
        13: lambda o, v: o.error_code == (25 if v < 3 else 0),
        8: lambda o, v: o.topics == [],
        9: lambda o, v: (o.groups == []) if v >= 8 else (o.topics == [] and (v < 2 or o.error_code == 0)),
        16: lambda o, v: o.error_code == 0,
        15: lambda o, v: [g.group_id for g in o.groups] == ["sweep-g"] and o.groups[0].error_code == 0,
        42: lambda o, v: [(r.group_id, r.error_code) for r in o.results] == [("sweep-none", 69)],
        47: lambda o, v: o.error_code in (0, 69),
    }
    cid = 100
    for key, (req, resp, fields) in cases.items():
        assert key in advertised, f"API {key} is not advertised"
        lo, hi = advertised[key]
        for version in range(lo, hi + 1):
            cid += 1
            msg = req[version](**{k: v for k, v in fields.items() if req[version].has_field(k)}) \
                if hasattr(req[version], "has_field") else req[version](**fields)
            out = kafka_call(node.kafka_port, msg, resp, version, cid)
            assert checks[key](out, version), (key, version, out)


def test_requests_naming_thousands_of_groups_are_answered(node):
    """Batched APIs go to each coordinator as one part per shard, so a request naming more
    groups than a mesh batch holds is answered (it would otherwise wait for room forever)."""
    from kafka.protocol.admin import groups as ag
    from kafka.protocol.consumer import group as cg

    names = [f"many-{i}" for i in range(10000)]  # over 4096 on each of two shards
    d = kafka_call(node.kafka_port, ag.DescribeGroupsRequest[5](groups=names),
                   ag.DescribeGroupsResponse, 5, 1)
    assert [g.group_id for g in d.groups] == names
    assert {g.group_state for g in d.groups} == {"Dead"}
    x = kafka_call(node.kafka_port, ag.DeleteGroupsRequest[2](groups_names=names),
                   ag.DeleteGroupsResponse, 2, 2)
    assert [(r.group_id, r.error_code) for r in x.results] == [(n, 69) for n in names]
    groups = [cg.OffsetFetchRequest[8].OffsetFetchRequestGroup(group_id=n, topics=None) for n in names]
    f = kafka_call(node.kafka_port, cg.OffsetFetchRequest[8](groups=groups, require_stable=False),
                   cg.OffsetFetchResponse, 8, 3)
    assert [(g.group_id, g.error_code, g.topics) for g in f.groups] == [(n, 0, []) for n in names]


def test_no_acknowledged_commit_is_lost_to_kill_9(start):
    """Commits acknowledged before a kill -9 are there after the restart: each round commits
    rising offsets until the node dies mid-stream; the recovered offset is the last one
    acknowledged by then, or the one in flight when it died."""
    import random
    import threading

    node = start()
    create(node, "durable", 4)
    rng = random.Random(11)
    for _ in range(5):
        c = consumer(node, "durable-group")
        state = {"acked": None, "stop": False}

        def commit_loop(c=c, state=state):
            n = 1000 * (_ + 1)
            while not state["stop"]:
                n += 1
                try:
                    c.commit(offsets=[TopicPartition("durable", p, n) for p in range(4)],
                             asynchronous=False)
                    state["acked"] = n
                except KafkaException:
                    pass

        t = threading.Thread(target=commit_loop)
        t.start()
        wait_for(lambda: state["acked"] is not None and state["acked"] % 1000 >= 20, 30,
                 "commits going through")
        time.sleep(rng.uniform(0.0, 0.3))
        node.kill9()
        before = state["acked"]
        state["stop"] = True
        node.restart()
        probe = Consumer({"bootstrap.servers": bootstrap(node), "group.id": "durable-group"})
        got = {t.offset for t in probe.committed([TopicPartition("durable", p) for p in range(4)],
                                                 timeout=10)}
        probe.close()
        # The commit in flight at the kill may land (now or on the client's retry).
        assert got <= {before, before + 1}, (got, before)
        t.join(60)
        assert not t.is_alive()
        c.close()

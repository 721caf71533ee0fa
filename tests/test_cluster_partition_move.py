"""Moving log partitions when the map changes (issue 12): a partition that changes node is
pulled by its new owner from the old one by offset (sealed segments, then the active one
until caught up); the old owner fences it (produce answers NOT_LEADER_OR_FOLLOWER, which
clients retry), the new owner copies up to the fenced end, and the 2PC commit flips it. No
acknowledged record is lost and every record keeps its offset.

Three nodes and a real pinion-control (fixtures of test_cluster.py), a topic of 12
partitions, and an idempotent confluent-kafka producer running through two changes: node 3
drains (the map now places the partitions the nodes report, so partitions move between the
other nodes too), then a fourth node of weight 2 joins."""

from test_cluster import cluster_info, control, member  # noqa: F401 (fixture)
from test_cluster_2pc_kill import leaders
from test_cluster_move import start_three, wait_settled
from test_control import wait_for
from pmove_util import (
    PARTITIONS,
    TOPIC,
    check_every_record,
    more_records,
    moved_state,
    topic_with_writer,
)


def wait_epoch(control, nodes):
    st = control.cli("status")
    wait_for(lambda: all(cluster_info(n)["cluster_current_epoch"] == str(st["epoch"]) for n in nodes),
             what="every node on the committed map")


def test_partitions_move_with_their_records_and_offsets_while_a_producer_runs(start, control):
    three = start_three(start, control)
    wait_settled(control, three)
    w = topic_with_writer(control, three, three[0].kafka_port, 3000)
    before = leaders(three[0], TOPIC)

    # Node 3 drains: its partitions go to nodes 1 and 2, and the map now places every
    # partition (some move between nodes 1 and 2).
    res = control.cli("drain", "--id", "3")
    assert res["committed"] is True, res
    wait_epoch(control, three)
    drained = leaders(three[0], TOPIC)
    assert 3 not in drained.values(), drained
    more_records(w, 2000, timeout=15)

    # A fourth node of weight 2 joins: partitions move to it (it has no such topic yet).
    fourth = member(start, control, 4, weight=2)
    nodes = three + [fourth]
    wait_for(lambda: control.nodes().get(4, {}).get("partitions", 0) > 0, timeout=60,
             what="partitions on node 4")
    wait_for(lambda: control.cli("status")["moving"] is None
             and control.cli("status")["queued"] == 0
             and control.cli("status")["open_epoch"] is None, timeout=60, what="the changes done")
    wait_epoch(control, nodes)
    after = leaders(three[0], TOPIC)
    assert 4 in after.values(), after
    more_records(w, 2000, timeout=15)
    w.finish()
    print(f"producer: {len(w.acked)} records acknowledged, slowest {w.slowest:.3f} s from produce "
          f"to acknowledgement; leaders {before} -> {drained} -> {after}")
    assert w.errors == [], w.errors[:5]
    assert "some units did not move" not in control.log_text()
    moved = {p for p in range(PARTITIONS) if before[p] != after[p]}
    assert len(moved) >= PARTITIONS // 3, (before, after)

    # Every acknowledged record is where it was acknowledged, with its value, read from the
    # new leaders; each partition's offsets run without a gap from 0 to its end.
    check_every_record(w, three[1].kafka_port)
    # The moved partitions' files: each is served by one node; its old owners retired it.
    for p in moved:
        owner = nodes[after[p] - 1]
        assert any(f.stat().st_size > 0 for f in (owner.data / "log" / TOPIC / str(p)).glob("*.log"))
        assert moved_state(nodes[before[p] - 1], p) == "retired", (p, before[p])

"""Partition moves that fail half-way (issue 12, "Moving data when the map changes"): the new
owner killed mid-pull, the old owner killed while the partitions are fenced, the control
plane killed while they are fenced. In each case no acknowledged record is lost, producers
go on, and a later change completes the move.

Two nodes and a real pinion-control; a topic of 12 partitions; an idempotent
confluent-kafka producer runs throughout. Node 1's weight goes to 0, so every partition it
leads moves to node 2. The faults come from test hooks of the node (an abort, SIGABRT, at a
chosen step, which is kill -9 without the timing race; or a pause after the fence in which
the test kills a process with kill -9): `PINION_PULL_CRASH_AT=copied` (the new owner dies
once a pull wrote its first batches) and `PINION_PMOVE_FENCED_DELAY_MS` (the old owner
fenced its partitions and waits before it answers). The timeouts are the documented ones
(`MOVE_ORDER_TIMEOUT_MS` 30 s without a report; `PMOVE_FENCE_ANSWER_WAIT_MS` 10 s for the
fence's answer)."""

from test_cluster import control  # noqa: F401 (fixture)
from test_cluster_2pc_kill import leaders
from test_cluster_move import wait_settled
from test_control import wait_for
from test_partition_pull import admin
from pmove_util import (
    TOPIC,
    complete_by_rebalance,
    in_background,
    leaders_and_node_1s,
    more_records,
    moved_state,
    two_with_writer,
)


def acked_on(w, partitions):
    return sum(1 for (p, _) in list(w.acked) if p in partitions)


def pulls(node):
    st, body = admin(node, "GET", "/partitions/pull")
    assert st == 200, body
    return body


def no_pull_running(node):
    return all(p["state"] in ("done", "failed") for p in pulls(node))


def fenced_move(start, control):
    """Nodes 1 and 2 with a producer, node 1 waiting 4 s after it fences before it answers,
    and `set-weight --id 1 --weight 0` running in the background: returns (nodes, writer,
    leaders before, the partitions moving off node 1, the command's thread) once node 1
    fenced them."""
    nodes, w = two_with_writer(start, control, env1=("PINION_PMOVE_FENCED_DELAY_MS", "4000"))
    before, moving = leaders_and_node_1s(nodes)
    t, _ = in_background(control, "set-weight", "--id", "1", "--weight", "0")
    wait_for(lambda: "partition fenced for its move" in nodes[0].log_text(), timeout=60,
             what="the old owner fenced")
    return nodes, w, before, moving, t


def test_new_owner_killed_mid_pull(start, control):
    nodes, w = two_with_writer(start, control, env2=("PINION_PULL_CRASH_AT", "copied"))
    _, moving = leaders_and_node_1s(nodes)
    t, out = in_background(control, "set-weight", "--id", "1", "--weight", "0")
    # Node 2 dies once a pull wrote its first batches: mid-copy.
    wait_for(lambda: nodes[1].proc.poll() is not None, timeout=60, what="the new owner's crash")
    assert nodes[1].proc.returncode == -6, nodes[1].proc.returncode
    assert "PINION_PULL_CRASH_AT=copied: test crash point reached" in nodes[1].log_text()
    nodes[1].restart()
    # The move is in doubt until its order times out (no report for MOVE_ORDER_TIMEOUT_MS):
    # meanwhile the old owner, never fenced (it fences only once every pull caught up),
    # serves produce to the moving partitions.
    k = acked_on(w, moving)
    wait_for(lambda: acked_on(w, moving) > k + 300, timeout=20,
             what="produce to the moving partitions while their move hangs")
    assert t.is_alive(), "the change waits for the order to time out"
    t.join(90)
    assert not t.is_alive(), "set-weight did not answer"
    assert out["r"].returncode == 0, out["r"].stderr
    assert "some units did not move" in control.log_text()
    # A later change (the restarted node's own re-join, else a rebalance) completes the
    # move, resuming from what the copies kept.
    complete_by_rebalance(control, nodes, w)
    assert "resumed=true" in nodes[1].log_text()
    for p in moving:
        assert moved_state(nodes[0], p) == "retired"


def test_old_owner_killed_after_the_fence(start, control):
    nodes, w, _, moving, t = fenced_move(start, control)
    nodes[0].kill9()
    fenced = [p for p in moving if moved_state(nodes[0], p) == "fenced"]
    assert fenced, "partitions fenced on the disk at the kill"
    nodes[0].restart()
    t.join(90)
    assert not t.is_alive(), "set-weight did not answer"
    wait_settled(control, nodes)
    # Each fenced partition either moved (node 2 leads it) or is served again by node 1
    # (the map kept it there, and the settle unfenced it): never fenced for good.
    now = leaders(nodes[1], TOPIC)

    def unfenced():
        for p in fenced:
            if moved_state(nodes[0], p) != ("retired" if now[p] == 2 else "serving"):
                return False
        return True

    wait_for(unfenced, timeout=30, what="every fenced partition settled by the map")
    more_records(w)
    complete_by_rebalance(control, nodes, w)


def test_control_plane_killed_while_partitions_are_fenced(start, control):
    nodes, w, before, moving, t = fenced_move(start, control)
    control.kill9()
    control.launch()
    t.join(60)
    # The restarted control plane forgot the move phase: the change was not proposed. The
    # nodes register again, get `settle`, and node 1 serves its fenced partitions again.
    wait_settled(control, nodes)

    def served_again():
        for p in moving:
            marker = nodes[0].data / "log" / TOPIC / str(p) / "moved"
            if marker.exists():
                return False
        return True

    wait_for(served_again, timeout=30, what="node 1's fences undone by the settle")
    assert leaders(nodes[1], TOPIC) == before
    more_records(w)
    # Node 2's pulls end when the fence answer does not come (PMOVE_FENCE_ANSWER_WAIT_MS);
    # their copies stay as imports, which the next attempt resumes.
    wait_for(lambda: no_pull_running(nodes[1]), timeout=30, what="node 2's pulls ended")
    res = control.cli("set-weight", "--id", "1", "--weight", "0")
    assert res["committed"] is True, res
    wait_settled(control, nodes)
    complete_by_rebalance(control, nodes, w)
    assert "resumed=true" in nodes[1].log_text()

"""A partition move whose copy finished but whose flip aborted (issue 12, "Moving data when
the map changes"): the old owner fenced its partitions and answered their ends, the new
owner copied them to those ends, and then the old owner died before its 2PC vote, so the
change aborted and the map never gave the new owner the partitions.

The new owner keeps each complete copy `copied` (its `moved` file), never served; the old
owner, restarted, serves the partitions again and takes more records; a later change moves
them, each pull resuming the copy from its end (it is a prefix of the old owner's log).
Every acknowledged record is read back once, at its offset, and offsets are dense.

Two nodes and a real pinion-control; a topic of 12 partitions; an idempotent
confluent-kafka producer through node 2 runs throughout. The death is the node's test hook
`PINION_MEMBER_CRASH_AT=prepared` (an abort, SIGABRT, once the prepared map is durable and
before the vote is sent: kill -9 at that exact step)."""

from test_cluster import control  # noqa: F401 (fixture)
from test_cluster_2pc_kill import leaders, wait_crashed, with_env
from test_cluster_move import wait_settled
from test_control import wait_for
from pmove_util import (
    TOPIC,
    complete_by_rebalance,
    in_background,
    leaders_and_node_1s,
    more_records,
    moved_state as moved,
    two_with_writer,
)


def test_flip_aborted_after_the_copy_finished(start, control):
    nodes, w = two_with_writer(start, control)
    old, new = nodes
    before, moving = leaders_and_node_1s(nodes)
    # Arm node 1: restarted with the crash point, it dies at its next prepare, which is the
    # flip's (the partitions' move runs before the change is proposed).
    assert old.stop() == 0
    with_env("PINION_MEMBER_CRASH_AT", "prepared", old.restart)
    wait_settled(control, nodes)
    t, out = in_background(control, "set-weight", "--id", "1", "--weight", "0")
    wait_crashed(old.proc, old.log_text, "PINION_MEMBER_CRASH_AT", "prepared")
    t.join(60)
    assert not t.is_alive(), "set-weight did not answer"
    assert out["r"].returncode != 0 and b"aborted" in out["r"].stdout, out["r"].stdout
    # Node 2 finished every copy (the flip was proposed only then), and holds each one
    # `copied`: not served, whatever the map says later, until a pull takes it again.
    assert new.log_text().count("partition copied to its fenced end") >= len(moving)
    for p in moving:
        assert moved(new, p).startswith("copied"), (p, moved(new, p))

    old.restart()
    wait_settled(control, nodes)
    assert leaders(new, TOPIC) == before
    # The abort is settled: node 1 serves its partitions again, node 2's copies forget the
    # move's epoch (no later map can serve them).
    wait_for(lambda: all(moved(old, p) == "serving" for p in moving), timeout=30,
             what="node 1 serving its fenced partitions again")
    wait_for(lambda: all(moved(new, p) == "copied" for p in moving), timeout=30,
             what="node 2's copies settled as never given")
    assert "a copied partition the map did not give here" in new.log_text()
    # Node 1 takes records past the ends node 2 copied.
    more_records(w)

    res = control.cli("set-weight", "--id", "1", "--weight", "0")
    assert res["committed"] is True, res
    wait_settled(control, nodes)
    complete_by_rebalance(control, nodes, w)
    log = new.log_text()
    assert "resumed=true" in log
    assert "not a prefix of the source's log" not in log
    for p in moving:
        assert moved(new, p) == "serving", p
        assert moved(old, p) == "retired", p

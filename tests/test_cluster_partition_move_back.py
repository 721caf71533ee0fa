"""A log partition moves back to a node that gave it away (issue 12, "Moving data when the
map changes"): the old owner kept a retired copy (its `moved` file says `retired`), and the
import wipes it (renamed away whole, then deleted) before it pulls the partition again.

Two nodes and a real pinion-control; a topic of 12 partitions; an idempotent confluent-kafka
producer runs throughout. Node 2's weight goes to 0 (every partition to node 1), then back
to 1 (the partitions rendezvous hashing gave node 2 return there). Every acknowledged record
is read back once, at the offset it was acknowledged at, with its value, and each
partition's offsets are dense."""

from test_cluster import control, member  # noqa: F401 (fixture)
from test_cluster_2pc_kill import leaders
from test_cluster_move import wait_settled
from test_control import wait_for
from pmove_util import (
    PARTITIONS,
    TOPIC,
    check_every_record,
    env,
    in_background,
    more_records,
    moved_state,
    topic_with_writer,
)


def set_weight(control, nodes, node_id, weight):
    res = control.cli("set-weight", "--id", str(node_id), "--weight", str(weight))
    assert res["committed"] is True, res
    wait_settled(control, nodes)


def test_a_partition_moves_back_to_the_node_that_gave_it_away(start, control):
    two = [member(start, control, i) for i in (1, 2)]
    wait_settled(control, two)
    w = topic_with_writer(control, two, two[0].kafka_port, 2000)

    # Weight 0: node 2 gives every partition it has to node 1 and keeps retired copies.
    first = leaders(two[0], TOPIC)
    set_weight(control, two, 2, 0)
    away = leaders(two[0], TOPIC)
    assert set(away.values()) == {1}, away
    gave = [p for p in range(PARTITIONS) if first[p] == 2]
    assert gave, first
    for p in gave:
        assert moved_state(two[1], p) == "retired", p
    more_records(w, 1000, timeout=15)

    # Weight 1 again: placement gives node 2 its share back, among them partitions it
    # holds a retired copy of.
    set_weight(control, two, 2, 1)
    back = leaders(two[0], TOPIC)
    returned = [p for p in gave if back[p] == 2]
    assert returned, (first, away, back)
    assert "some units did not move" not in control.log_text()
    more_records(w, 1000, timeout=15)
    w.finish()
    assert w.errors == [], w.errors[:5]
    print(f"producer: {len(w.acked)} records acknowledged, slowest {w.slowest:.3f} s; "
          f"leaders {first} -> {away} -> {back}; back on node 2: {returned}")

    got = check_every_record(w, two[0].kafka_port)
    for p in returned:
        # Node 2 serves the partition again from a fresh copy: no marker, no wipe left,
        # and its records run past what node 1 took from it the first time.
        folder = two[1].data / "log" / TOPIC / str(p)
        assert not (folder / "moved").exists(), p
        assert not (folder.parent / f".{p}.wiping").exists(), p
        assert sum(f.stat().st_size for f in folder.glob("*.log")) > 0, p
        # Node 1 retired its copy in turn.
        assert moved_state(two[0], p) == "retired"
    assert any((p, 0) in got for p in returned)


def test_a_node_killed_mid_wipe_keeps_no_half_of_its_retired_copy(start, control):
    """The node taking a partition back dies right after its wipe renamed the retired copy
    away (PINION_PULL_CRASH_AT=wipe-renamed: an abort, like kill -9, at that step): it
    restarts with no part of the old copy in the partition's place (start-up deletes the
    renamed copy), and the move completes at the next change."""
    one = member(start, control, 1)
    with env("PINION_PULL_CRASH_AT", "wipe-renamed"):
        two = [one, member(start, control, 2)]
    wait_settled(control, two)
    w = topic_with_writer(control, two, two[0].kafka_port, 2000)
    first = leaders(two[0], TOPIC)
    set_weight(control, two, 2, 0)
    gave = [p for p in range(PARTITIONS) if first[p] == 2]
    assert gave, first
    more_records(w, 1000, timeout=15)

    t, _ = in_background(control, "set-weight", "--id", "2", "--weight", "1")
    victim = two[1]
    wait_for(lambda: victim.proc.poll() is not None, timeout=60, what="the crash mid-wipe")
    assert victim.proc.returncode == -6, victim.proc.returncode
    assert "PINION_PULL_CRASH_AT=wipe-renamed: test crash point reached" in victim.log_text()
    topic_dir = victim.data / "log" / TOPIC
    wiping = [p for p in gave if (topic_dir / f".{p}.wiping").exists()]
    assert len(wiping) == 1, wiping
    p = wiping[0]
    # The partition's own folder is gone: nothing of the old copy is in its place.
    assert not (topic_dir / str(p)).exists()
    victim.restart()
    # Start-up deleted the renamed copy; the partition is empty here (and not served: the
    # map still names node 1), or already importing again.
    assert not (topic_dir / f".{p}.wiping").exists()
    t.join(90)
    wait_settled(control, two)
    for _ in range(3):
        if leaders(two[0], TOPIC)[p] == 2:
            break
        control.cli("rebalance")
        wait_settled(control, two)
    assert leaders(two[0], TOPIC)[p] == 2
    more_records(w, 1000, timeout=15)
    w.finish()
    assert w.errors == [], w.errors[:5]
    got = check_every_record(w, two[0].kafka_port)
    assert any(q == p for (q, _) in got)

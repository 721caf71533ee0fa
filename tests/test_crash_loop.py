"""kill -9 cycles under mixed load, a few in CI (tools/crash_loop.py runs 100 outside it):
no acknowledged record lost or duplicated, offsets dense, and damaged tails recovered; a
consumer group's acknowledged offset commits survive every kill, never lie past what was
produced, and a consumer resuming from them skips nothing."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import crash_loop  # noqa: E402


def test_kill_9_cycles_lose_and_duplicate_nothing(tmp_path):
    r = crash_loop.run(cycles=4, partitions=3, damage_rate=0.0, seed=11, work=tmp_path, log=lambda _: None)
    assert r["acked"] > 1000, r
    assert (r["lost"], r["duplicates"], r["holes"]) == (0, 0, []), r
    assert r["commits_acked"] > 20 and r["consumed"] > 1000, r
    assert (r["commit_lost"], r["commit_beyond"], r["gaps"]) == ([], [], []), r


def test_kill_9_cycles_with_torn_and_flipped_tails_recover(tmp_path):
    r = crash_loop.run(cycles=4, partitions=3, damage_rate=1.0, seed=5, work=tmp_path, log=lambda _: None)
    assert r["damaged"] >= 3 and r["truncations_logged"] >= r["damaged"], r
    assert (r["lost"], r["duplicates"], r["holes"]) == (0, 0, []), r
    assert (r["commit_lost"], r["commit_beyond"], r["gaps"]) == ([], [], []), r

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

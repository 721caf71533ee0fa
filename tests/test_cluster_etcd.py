"""Nodes under control planes that share an etcd store (issue 12): real pinion nodes given
`--control STANDBY,LEADER` find the leader (a standby refuses them and names it), form a
cluster, and after kill -9 of the leader follow the standby that takes over, which then
commits a change they install. Skips without an `etcd` binary, as test_control_etcd.py."""

import os
import shutil

import pytest
import redis
from redis.cluster import RedisCluster

from test_cluster import HEARTBEAT_MS, cluster_info
from test_control import wait_for
from test_control_etcd import LEASE_TTL_S, ha  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(
    shutil.which("etcd") is None and not os.environ.get("CI"),
    reason="no etcd binary (Debian: apt-get install etcd-server; tools/test.sh installs it)",
)


def test_nodes_find_the_leader_and_follow_the_standby_that_takes_over(start, ha):
    a, b, _ = ha
    nodes = [start("--control", f"{b.addr},{a.addr}", "--node-id", str(i),
                   "--control-secret-file", str(a.secret_file), "--heartbeat-ms", HEARTBEAT_MS)
             for i in (1, 2)]

    def formed(plane):
        ns = plane.cli("nodes")["nodes"]
        status = plane.cli("status")
        epoch = status["epoch"]
        # No change running or queued (a node that joins owning nothing gets its slots in
        # two changes: a first round, then the rest).
        if status["queued"] or status.get("moving") is not None or status["open_epoch"] is not None:
            return False
        return (len(ns) == 2 and all(n["state"] == "active" and n["connected"] for n in ns)
                and all(cluster_info(n)["cluster_current_epoch"] == str(epoch) for n in nodes))

    wait_for(lambda: formed(a), timeout=30, what="a cluster led by a")
    rc = RedisCluster(host="127.0.0.1", port=nodes[0].port, socket_timeout=10)
    for i in range(1000):
        rc.set(f"k:{i}", i)
    assert sum(n.client().dbsize() for n in nodes) == 1000
    rc.close()

    a.kill9()
    wait_for(lambda: b.role() == "leader", timeout=LEASE_TTL_S * 4, what="b leading")
    wait_for(lambda: all(n["connected"] for n in b.cli("nodes")["nodes"]), timeout=30,
             what="the nodes reconnected to b")
    assert b.cli("drain", "--id", "2")["committed"]
    epoch = b.cli("status")["epoch"]
    wait_for(lambda: all(cluster_info(n)["cluster_current_epoch"] == str(epoch) for n in nodes),
             what="both nodes on b's map")
    slots = redis.Redis(port=nodes[1].port).execute_command("CLUSTER", "SLOTS")
    assert {s[2][1] for s in slots} == {nodes[0].port}

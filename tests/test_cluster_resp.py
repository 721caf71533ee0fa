"""Cluster-mode emulation in one node (issue 12, step 1): CLUSTER commands, `--shard-ports`
(each shard its own master on its own port, MOVED for keys of other shards), through real
cluster clients: redis-py RedisCluster, redis-cli -c, redis-benchmark --cluster."""

import random
import socket
import subprocess

import redis
from redis.cluster import RedisCluster

from conftest import Raw, key_slot, keys_on


def free_ports(n: int) -> int:
    """A base port with `n` free consecutive ports after it."""
    for _ in range(200):
        base = random.randint(20000, 60000)
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                s.bind(("127.0.0.1", base + i))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def cluster_node(start):
    base = free_ports(2)
    return start("--shard-ports", str(base)), base


def test_cluster_slots_nodes_info_without_shard_ports(node, r):
    assert r.execute_command("CLUSTER", "SLOTS") == [[0, 16383, [b"127.0.0.1", node.port, r.execute_command("CLUSTER", "MYID")]]]
    info = r.execute_command("CLUSTER", "INFO").decode()
    assert "cluster_state:ok" in info and "cluster_slots_assigned:16384" in info
    assert "cluster_known_nodes:1" in info
    # Without shard ports (or a control plane) the node is not a cluster node to INFO.
    assert r.info("cluster") == {"cluster_enabled": 0}
    lines = r.execute_command("CLUSTER", "NODES").decode().splitlines()
    assert len(lines) == 1
    assert f"127.0.0.1:{node.port}@{node.port + 10000} myself,master - 0 0 0 connected 0-16383" in lines[0]
    assert r.execute_command("CLUSTER", "KEYSLOT", "a") == 15495
    assert r.execute_command("CLUSTER", "KEYSLOT", "x{a}y") == 15495
    for c in ("READONLY", "READWRITE", "ASKING"):
        assert Raw(node.port).cmd(c) == b"+OK\r\n"
    with_err = Raw(node.port)
    assert with_err.cmd("CLUSTER", "ADDSLOTS", "1").startswith(b"-ERR this node's slots are assigned by pinion-control")
    assert with_err.cmd("CLUSTER", "NOSUCH").startswith(b"-ERR unknown subcommand")
    # The plain port routes every key as before: no MOVED.
    for k in keys_on(0, 3) + keys_on(1, 3):
        assert r.set(k, k) and r.get(k) == k.encode()


def test_shard_ports_list_each_shard_and_move_keys_of_the_other(start):
    node, base = cluster_node(start)
    r = node.client()
    assert r.info("cluster") == {"cluster_enabled": 1}
    slots = r.execute_command("CLUSTER", "SLOTS")
    assert [(s[0], s[1], s[2][1]) for s in slots] == [(0, 8191, base), (8192, 16383, base + 1)]
    shards = r.execute_command("CLUSTER", "SHARDS")
    assert len(shards) == 2
    lines = redis.Redis(port=base + 1).execute_command("CLUSTER", "NODES").decode().splitlines()
    assert len(lines) == 2 and "myself" not in lines[0] and "myself,master" in lines[1]
    assert lines[1].endswith(" 8192-16383")
    mine, other = keys_on(0, 1)[0], keys_on(1, 1)[0]
    s0 = Raw(base)
    assert s0.cmd("SET", mine, "v") == b"+OK\r\n"
    assert s0.cmd("GET", other) == f"-MOVED {key_slot(other.encode())} 127.0.0.1:{base + 1}\r\n".encode()
    s1 = Raw(base + 1)
    assert s1.cmd("SET", other, "w") == b"+OK\r\n"
    assert s1.cmd("GET", other) == b"$1\r\nw\r\n"
    # Keys of one slot on the other shard inside MULTI: MOVED, and EXEC aborts.
    assert s0.cmd("MULTI") == b"+OK\r\n"
    assert s0.cmd("SET", other, "x").startswith(b"-MOVED")
    assert s0.cmd("EXEC").startswith(b"-EXECABORT")
    # Keys of several slots on this node: served through the mesh, as on the plain port.
    assert s0.cmd("MSET", mine, "1", other, "2") == b"+OK\r\n"
    # The plain port still serves everything.
    assert r.get(other) == b"2" and r.get(mine) == b"1"
    # MYID differs per shard port.
    assert redis.Redis(port=base).execute_command("CLUSTER", "MYID") != redis.Redis(port=base + 1).execute_command("CLUSTER", "MYID")
    r.close()


def test_redis_py_cluster_writes_and_reads_10000_keys(start):
    node, base = cluster_node(start)
    rc = RedisCluster(host="127.0.0.1", port=base, socket_timeout=10)
    assert sorted(n.port for n in rc.get_primaries()) == [base, base + 1]
    for i in range(10_000):
        rc.set(f"key:{i}", i)
    for i in range(10_000):
        assert rc.get(f"key:{i}") == str(i).encode()
    rc.close()
    # Each shard port served only its own keys: nothing went through the mesh.
    assert node.metric("pinion_mesh_requests_sent_total") == 0
    # They are really there, whichever way a client looks: the plain port sees all 10,000.
    assert node.client().dbsize() == 10_000


def test_redis_cli_follows_moved(start):
    node, base = cluster_node(start)
    other = keys_on(1, 1)[0]
    out = subprocess.run(["redis-cli", "-c", "-p", str(base), "SET", other, "via-moved"],
                         capture_output=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == b"OK", out
    out = subprocess.run(["redis-cli", "-c", "-p", str(base), "GET", other], capture_output=True, timeout=30)
    assert out.stdout.strip() == b"via-moved"
    # Without -c the client sees the redirection itself.
    out = subprocess.run(["redis-cli", "-p", str(base), "GET", other], capture_output=True, timeout=30)
    assert b"MOVED" in out.stdout + out.stderr


def test_redis_benchmark_cluster_runs(start):
    node, base = cluster_node(start)
    out = subprocess.run(["redis-benchmark", "--cluster", "-p", str(base), "-t", "set,get",
                          "-n", "20000", "-c", "8", "-q"], capture_output=True, timeout=120)
    text = out.stdout.decode() + out.stderr.decode()
    assert out.returncode == 0, text
    assert "Cluster has 2 master nodes" in text, text
    assert "SET:" in text and "GET:" in text and "requests per second" in text, text
    assert "MOVED" not in text and "error" not in text.lower(), text
    assert node.metric("pinion_commands_total") >= 40000


def test_shard_ports_stay_their_shards_under_conn_balance(start):
    """With --conn-balance round-robin only shard 0 takes the plain port and hands its
    connections on; each shard port still belongs to its own shard: shard 1's port serves
    shard 1's keys in place and moves shard 0's, on every connection, and the plain port
    (handed to either shard) routes every key without MOVED."""
    base = free_ports(2)
    node = start("--shard-ports", str(base), "--conn-balance", "round-robin")
    mine0, mine1 = keys_on(0, 1)[0], keys_on(1, 1)[0]
    for _ in range(4):  # several connections: none may land on the wrong shard
        s1 = Raw(base + 1)
        assert s1.cmd("SET", mine1, "one") == b"+OK\r\n"
        assert s1.cmd("GET", mine0) == f"-MOVED {key_slot(mine0.encode())} 127.0.0.1:{base}\r\n".encode()
        s0 = Raw(base)
        assert s0.cmd("SET", mine0, "zero") == b"+OK\r\n"
        assert s0.cmd("GET", mine1).startswith(b"-MOVED")
        s0.close()
        s1.close()
    for _ in range(4):
        plain = Raw(node.port)
        assert plain.cmd("GET", mine0) == b"$4\r\nzero\r\n"
        assert plain.cmd("GET", mine1) == b"$3\r\none\r\n"
        plain.close()

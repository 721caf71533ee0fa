"""A client blocked (BLPOP) on a key of a slot that moves to another node is answered
`-MOVED slot host:port` with the new owner when the old owner hands the slot over (issue
12, "Moving data when the map changes"), as Redis Cluster answers a client blocked on a slot
it no longer serves; a cluster client sends the command again there and gets what is pushed
later. Two nodes and a real pinion-control; node 1's weight goes to 0, so each of its slots
moves to node 2."""

import threading

import redis
from redis.cluster import RedisCluster

from conftest import Raw, encode, key_slot
from test_cluster import control, member  # noqa: F401 (fixture)
from test_cluster_move import slot_owner_ports, wait_settled
from test_control import wait_for


def blocked(n):
    return int(redis.Redis(port=n.port, socket_timeout=5).info("clients")["blocked_clients"])


def test_clients_blocked_on_a_moving_slot_are_redirected_to_its_new_owner(start, control):
    one, two = member(start, control, 1), member(start, control, 2)
    wait_settled(control, [one, two])
    owner = slot_owner_ports(one)
    keys = [k for k in (f"bl:{i}" for i in range(1000)) if owner[key_slot(k.encode())] == one.port]
    raw_key, rc_key = keys[0], keys[1]

    # A raw connection blocked forever on a key of node 1.
    raw = Raw(one.port, timeout=60)
    raw.send(encode("BLPOP", raw_key, "0"))
    # A cluster client blocked too, on another key of node 1, in a thread.
    rc = RedisCluster(host="127.0.0.1", port=one.port, socket_timeout=90)
    got = {}

    def waits():
        got["r"] = rc.blpop([rc_key], timeout=60)

    t = threading.Thread(target=waits, daemon=True)
    t.start()
    wait_for(lambda: blocked(one) >= 2, what="two clients blocked on node 1")

    res = control.cli("set-weight", "--id", "1", "--weight", "0")
    assert res["committed"] is True, res
    wait_settled(control, [one, two])
    slot = key_slot(raw_key.encode())
    assert raw.read_reply() == f"-MOVED {slot} 127.0.0.1:{two.port}\r\n".encode()
    # The redirected cluster client waits again, on node 2 now.
    wait_for(lambda: blocked(two) >= 1, what="the cluster client blocked on node 2")
    assert blocked(one) == 0
    assert t.is_alive()
    pusher = RedisCluster(host="127.0.0.1", port=two.port, socket_timeout=10)
    assert pusher.rpush(rc_key, "pushed") == 1
    t.join(30)
    assert not t.is_alive(), "the cluster client's BLPOP did not return"
    assert got["r"] in ([rc_key.encode(), b"pushed"], (rc_key.encode(), b"pushed")), got
    assert pusher.llen(rc_key) == 0
    rc.close()
    pusher.close()

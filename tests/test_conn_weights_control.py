"""Per-shard connection weights from the control plane (issue 12, "connections inside a
node"): `pinion-control set-weight --node N --shard S W` commits them in the map by
two-phase commit, and a node under `--control` with `--conn-balance weighted` spreads new
connections by them. /metrics shows the weight in use (pinion_conn_weight{shard}) and the
connections each shard serves (pinion_shard_connections_open{shard}).

The control plane is the real binary ($PINION_CONTROL_BIN, else target/release or
target/debug)."""

from conftest import Raw
from test_cluster import control, member, wait_formed  # noqa: F401 (control is a fixture)


def swrr(weights, picks):
    """nginx's smooth weighted round robin from a fresh round, as the node runs it
    (`shard/balance.rs`): how many of `picks` new connections each shard gets."""
    current = [0] * len(weights)
    counts = [0] * len(weights)
    for _ in range(picks):
        best = None
        for s, w in enumerate(weights):
            if w == 0:
                current[s] = 0
                continue
            current[s] += w
            if best is None or current[s] > current[best]:
                best = s
        current[best] -= sum(weights)
        counts[best] += 1
    return counts


def open_on(n, shard):
    return n.metric(f'pinion_shard_connections_open{{shard="{shard}"}}')


def wait_weights(n, weights):
    for s, w in enumerate(weights):
        n.wait_metric(f'pinion_conn_weight{{shard="{s}"}}', w)


def set_weight(control, node, shard, w):
    r = control.cli("set-weight", "--node", str(node), "--shard", str(shard), str(w))
    assert r["committed"] is True, r
    return r


def spread(n, count):
    """Opens `count` RESP connections (each answers a PING, so its shard serves it) and
    returns (the sockets, how many each shard got), from /metrics."""
    for s in (0, 1):  # nothing else is connected (earlier clients closed)
        n.wait_metric(f'pinion_shard_connections_open{{shard="{s}"}}', 0)
    conns = []
    for _ in range(count):
        c = Raw(n.port)
        assert c.cmd("PING") == b"+PONG\r\n"
        conns.append(c)
    return conns, [open_on(n, 0), open_on(n, 1)]


def close_all(conns):
    for c in conns:
        c.close()


def test_weights_set_through_the_control_plane_spread_new_connections(start, control):
    n = member(start, control, 1, "--conn-balance", "weighted", "--shard-weights", "5,1")
    wait_formed(control, [n])
    # The first map does not weigh this node's shards: equal, and it wins over the flag.
    wait_weights(n, [1, 1])
    epoch = control.cli("status")["epoch"]
    set_weight(control, 1, 0, 3)
    r = set_weight(control, 1, 1, 1)
    assert r["epoch"] == epoch + 2  # each pin is one committed change
    wait_weights(n, [3, 1])
    m = control.cli("map")
    assert m["conn_weights"] == [{"node": 1, "weights": [3, 1], "pinned": [0, 1]}]
    node = control.nodes()[1]
    assert node["conn_weights"] == [3, 1] and node["conn_pinned"] == [0, 1]
    text = control.run("nodes").stdout.decode()
    assert "3*,1*" in text, text
    text = control.run("map").stdout.decode()
    assert "conn-weights node 1 weights 3,1 pinned [0,1]" in text, text

    conns, got = spread(n, 40)
    want = swrr([3, 1], 40)
    assert want == [30, 10]
    assert got == want, got
    close_all(conns)

    # Weight 0: new connections avoid the shard.
    set_weight(control, 1, 1, 0)
    wait_weights(n, [3, 0])
    conns, got = spread(n, 20)
    assert got == swrr([3, 0], 20) == [20, 0], got
    close_all(conns)

    # `auto` gives the shard back to the load, which weighs it at the unit (16).
    set_weight(control, 1, 1, "auto")
    wait_weights(n, [3, 16])
    assert control.nodes()[1]["conn_pinned"] == [0]


def test_weights_survive_a_node_restart_without_the_control_plane(start, control):
    n = member(start, control, 1, "--conn-balance", "weighted")
    wait_formed(control, [n])
    set_weight(control, 1, 0, 1)
    set_weight(control, 1, 1, 3)
    wait_weights(n, [1, 3])
    epoch = control.cli("status")["epoch"]
    # Both stop: the restarted node has only <data-dir>/cluster/member.state.
    assert control.stop() == 0
    assert n.stop() == 0
    n.restart()
    wait_weights(n, [1, 3])
    conns, got = spread(n, 40)
    assert got == swrr([1, 3], 40) == [10, 30], got
    close_all(conns)
    # The control plane comes back and the node rejoins: the pins stand, nothing changes.
    control.launch()
    wait_formed(control, [n])
    assert control.cli("status")["epoch"] == epoch
    assert control.nodes()[1]["conn_weights"] == [1, 3]
    wait_weights(n, [1, 3])


def test_an_invalid_weight_is_refused_and_changes_nothing(start, control):
    n = member(start, control, 1, "--conn-balance", "weighted")
    wait_formed(control, [n])
    set_weight(control, 1, 0, 0)
    before = control.cli("map")

    def refused(*args, why):
        r = control.run("set-weight", *args)
        err = r.stderr.decode()
        assert r.returncode != 0 and why in err, (args, r.returncode, err)

    refused("--node", "1", "--shard", "2", "5", why="node 1 has 2 shards (0..=1): shard 2 is out of range")
    refused("--node", "1", "--shard", "1", "1001", why="connection weight 1001 exceeds its bound of 1000")
    refused("--node", "7", "--shard", "0", "1", why="node 7 is not in the map")
    refused("--node", "1", "--shard", "1", "0", why="at least one shard must keep a connection weight above 0")
    refused("--node", "1", "--shard", "1", "lots", why='"lots" is not a weight')
    refused("--node", "1", "--shard", "1", why="required")
    assert control.cli("map") == before
    assert control.cli("status")["epoch"] == before["epoch"]
    wait_weights(n, [0, 16])
    # The node-weight form still works beside it.
    r = control.cli("set-weight", "--id", "1", "--weight", "2")
    assert r["epoch"] == before["epoch"] + 1
    assert control.nodes()[1]["weight"] == 2

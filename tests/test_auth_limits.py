"""Password guessing (issue 13): failed authentications are counted per client address (AUTH,
HELLO AUTH, Kafka SASL PLAIN and SCRAM). Past --auth-failures-max within
--auth-failure-window-ms, every attempt from that address, a right password included, is
refused for --auth-block-ms; other addresses are served. Refusals are counted in
`pinion_auth_refused_total` and logged. A second source address is 127.0.0.2: the client's
socket is bound to it (RESP), or a small forwarder in the test connects from it (Kafka)."""
import socket
import subprocess
import threading
import time

import pytest
import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from conftest import binary

REFUSED = "too many failed authentication attempts from this address"
# lib_name=None keeps redis-py from sending CLIENT SETINFO before AUTH (deprecated in 8.x).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class FromAddress(redis.Connection):
    """A redis-py connection whose socket is bound to `source` before it connects."""

    def __init__(self, source="127.0.0.1", **kw):
        self.source = source
        super().__init__(**kw)

    def _connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((self.source, 0))
        s.settimeout(self.socket_connect_timeout or 10)
        s.connect((self.host, self.port))
        s.settimeout(self.socket_timeout)
        return s


def client(node, source, password=None, username=None):
    pool = redis.ConnectionPool(connection_class=FromAddress, source=source, host="127.0.0.1",
                                port=node.port, socket_timeout=10, password=password,
                                username=username, lib_name=None, lib_version=None,
                                protocol=2)
    return redis.Redis(connection_pool=pool)


def raw_auth(node, source, *args):
    """One AUTH (or HELLO) on a fresh connection from `source`: the reply as text."""
    c = client(node, source)
    try:
        return c.execute_command(*args)
    except (redis.ResponseError, redis.AuthenticationError) as e:
        return f"error: {e}"
    finally:
        c.close()


def await_true(f, deadline_s=20.0, what="condition"):
    end = time.monotonic() + deadline_s
    while not f():
        assert time.monotonic() < end, f"{what} not reached within {deadline_s} s"
        time.sleep(0.05)


def test_resp_guessing_is_refused_per_address(start):
    node = start("--requirepass", "right-pw", "--auth-failures-max", "3",
                 "--auth-block-ms", "1500")
    # Three wrong passwords (AUTH twice, HELLO AUTH once) from 127.0.0.1.
    assert "invalid username-password pair" in raw_auth(node, "127.0.0.1", "AUTH", "nope1")
    assert "invalid username-password pair" in raw_auth(node, "127.0.0.1", "AUTH", "nope2")
    assert "invalid username-password pair" in raw_auth(
        node, "127.0.0.1", "HELLO", "3", "AUTH", "default", "nope3")
    # Now the right password is refused from that address, by AUTH and HELLO alike ...
    assert REFUSED in raw_auth(node, "127.0.0.1", "AUTH", "right-pw")
    assert REFUSED in raw_auth(node, "127.0.0.1", "HELLO", "3", "AUTH", "default", "right-pw")
    with pytest.raises(redis.ResponseError, match=REFUSED):
        client(node, "127.0.0.1", password="right-pw").ping()
    # ... and served from another.
    other = client(node, "127.0.0.2", password="right-pw")
    conn = other.connection_pool.get_connection()
    assert conn._sock.getsockname()[0] == "127.0.0.2"
    assert conn.send_command("PING") is None and conn.read_response() == b"PONG"
    other.connection_pool.release(conn)
    other.close()
    assert node.metric("pinion_auth_refused_total") >= 3
    assert "too many failed attempts" in node.log_text()
    # The cool-down ends (1.5 s): retrying meanwhile does not lengthen it.
    await_true(lambda: raw_auth(node, "127.0.0.1", "AUTH", "right-pw") is True,
               what="AUTH from 127.0.0.1 after the cool-down")
    assert client(node, "127.0.0.1", password="right-pw").ping() is True


def test_resp_limit_off_and_flags_checked(start, tmp_path):
    node = start("--requirepass", "right-pw", "--auth-failures-max", "0")
    for i in range(20):
        assert "invalid username-password pair" in raw_auth(node, "127.0.0.1", "AUTH", f"x{i}")
    assert raw_auth(node, "127.0.0.1", "AUTH", "right-pw") is True
    assert node.metric("pinion_auth_refused_total") == 0
    r = subprocess.run([binary(), "--data-dir", str(tmp_path / "d"), "--auth-block-ms", "0"],
                       capture_output=True, timeout=30)
    assert r.returncode != 0 and b"--auth-block-ms" in r.stderr
    # Refused before anything touched the disk: no data folder, no lock file.
    assert not (tmp_path / "d").exists()


class Forwarder:
    """Accepts on 127.0.0.1:`listen` and forwards each connection to `port` from source
    address 127.0.0.2."""

    def __init__(self, listen, port):
        self.port = port
        self.listener = socket.create_server(("127.0.0.1", listen))
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.listener.accept()
            except OSError:
                return
            b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            b.bind(("127.0.0.2", 0))
            try:
                b.connect(("127.0.0.1", self.port))
            except OSError:
                a.close()
                continue
            self.socks += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    @staticmethod
    def _pump(x, y):
        try:
            while chunk := x.recv(65536):
                y.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (x, y):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()
        for s in self.socks:
            s.close()


def add_user(path, name, password, *rules):
    r = subprocess.run(
        [binary(), "users", "add", name, *rules, "--password-stdin", "--file", str(path)],
        input=password.encode(), capture_output=True, timeout=30,
    )
    assert r.returncode == 0, r.stderr.decode()


def login(bootstrap, mech, password, timeout=1.5):
    """Metadata with confluent-kafka over SASL_PLAINTEXT as `writer`: None when it is
    served, else the errors the client reported (librdkafka retries a failed login by
    itself until `timeout`, so one call may make several attempts; refused ones do not
    lengthen the cool-down)."""
    errors = []
    a = AdminClient({
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": mech,
        "sasl.username": "writer",
        "sasl.password": password,
        "error_cb": lambda e: errors.append(e.str()),
    })
    try:
        md = a.list_topics(timeout=timeout)
        assert md.brokers
        return None
    except KafkaException as e:
        a.poll(0.5)  # serves error_cb
        return errors + [str(e)]
    finally:
        del a


def refused(errors):
    return errors is not None and any(REFUSED in e for e in errors)


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-256"])
def test_kafka_sasl_guessing_is_refused_per_address(start, tmp_path, mech):
    path = tmp_path / "users.acl"
    add_user(path, "writer", "writer-pw", "topic:all:*")
    # Metadata names the forwarder, so a client that bootstraps through it stays on
    # 127.0.0.2; one that bootstraps directly authenticates from 127.0.0.1 first.
    probe = socket.create_server(("127.0.0.1", 0))
    fwd_port = probe.getsockname()[1]
    probe.close()
    node = start("--users", str(path), "--auth-failures-max", "3", "--auth-block-ms", "8000",
                 "--advertise", f"127.0.0.1:{fwd_port}")
    fwd = Forwarder(fwd_port, node.kafka_port)
    direct = f"127.0.0.1:{node.kafka_port}"
    try:
        # Wrong passwords from 127.0.0.1 until that address is refused.
        await_true(lambda: refused(login(direct, mech, "not-the-password")),
                   what="refusal after wrong passwords")
        # The right password from 127.0.0.1 is refused, with the reason ...
        assert refused(login(direct, mech, "writer-pw"))
        # ... and served from 127.0.0.2 during the cool-down.
        assert login(f"127.0.0.1:{fwd_port}", mech, "writer-pw", timeout=10) is None
        assert node.metric("pinion_auth_refused_total") >= 2
        assert refused(login(direct, mech, "writer-pw"))
        # The cool-down ends (8 s).
        await_true(lambda: login(direct, mech, "writer-pw") is None,
                   what="SASL login from 127.0.0.1 after the cool-down")
    finally:
        fwd.close()

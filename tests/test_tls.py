"""TLS on the RESP and Kafka listeners (issue 13, item 6), through real clients.

Certificates are made at test time with the openssl CLI: a CA, a server certificate for
localhost and 127.0.0.1, a client certificate, an expired client certificate (through
`openssl ca`, which can back-date), and a second server certificate with another serial for
the SIGHUP reload. Clients: redis-cli --tls, redis-py with ssl, kcat and confluent-kafka with
security.protocol=SSL, and Python's ssl module where a test needs to see the certificate.
"""

import signal
import socket
import ssl
import subprocess
import time

import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import free_port


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


CA_CNF = """
[ca]
default_ca = test_ca
[test_ca]
dir = .
database = index.txt
new_certs_dir = .
serial = serial.txt
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=pinion test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    (d / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")

    def leaf(name, cn, ext, serial):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-set_serial", str(serial), "-days", "30", "-extfile", ext,
                "-out", f"{name}.pem", cwd=d)

    leaf("server", "localhost", "server.ext", 1001)
    leaf("server2", "localhost", "server.ext", 1002)
    leaf("client", "pinion test client", "client.ext", 2001)
    # An expired client certificate: `openssl ca` takes explicit start and end dates.
    (d / "ca.cnf").write_text(CA_CNF)
    (d / "index.txt").write_text("")
    (d / "serial.txt").write_text("0BB9\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=expired client",
            cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem",
            "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
            "-extfile", "client.ext", "-in", "expired.csr", "-out", "expired.pem", "-notext",
            cwd=d)
    return d


def tls_node(start, certs, *extra, ca=False):
    """A node with TLS listeners for both protocols; its TLS ports are set on it."""
    rp, kp = free_port(), free_port()
    flags = ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
             "--resp-tls-listen", f"127.0.0.1:{rp}", "--kafka-tls-listen", f"127.0.0.1:{kp}"]
    if ca:
        flags += ["--tls-ca", str(certs / "ca.pem")]
    n = start(*flags, *extra)
    n.tls_port, n.kafka_tls_port = rp, kp
    return n


def tls_client(node, certs, cert=None, **kw):
    kw.setdefault("ssl_ca_certs", str(certs / "ca.pem"))
    if cert:
        kw.update(ssl_certfile=str(certs / f"{cert}.pem"), ssl_keyfile=str(certs / f"{cert}.key"))
    return redis.Redis(host="127.0.0.1", port=node.tls_port, ssl=True, socket_timeout=10, **kw)


def redis_cli_tls(node, certs, *args, cert=None):
    cmd = ["redis-cli", "--tls", "--cacert", str(certs / "ca.pem"), "-p", str(node.tls_port)]
    if cert:
        cmd += ["--cert", str(certs / f"{cert}.pem"), "--key", str(certs / f"{cert}.key")]
    return subprocess.run([*cmd, *args], capture_output=True, timeout=30)


def ssl_context(certs, cert=None):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(certs / f"{cert}.pem"), str(certs / f"{cert}.key"))
    return ctx


def peer_serial(node, certs, cert=None):
    """The serial number of the certificate a new TLS connection is shown."""
    with socket.create_connection(("127.0.0.1", node.tls_port), timeout=10) as raw:
        with ssl_context(certs, cert).wrap_socket(raw, server_hostname="localhost") as s:
            return int(s.getpeercert()["serialNumber"], 16)


def raw_ping(node, certs, cert=None):
    """PING through Python's ssl module (in TLS 1.3 the server judges a client certificate
    after the client's handshake is done, so its verdict arrives on the first read)."""
    with socket.create_connection(("127.0.0.1", node.tls_port), timeout=10) as raw:
        with ssl_context(certs, cert).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"PING\r\n")
            return s.recv(100)


def test_redis_cli_and_redis_py_over_tls(start, certs):
    n = tls_node(start, certs)
    r = redis_cli_tls(n, certs, "SET", "k", "over tls")
    assert r.returncode == 0 and r.stdout == b"OK\n", r
    r = redis_cli_tls(n, certs, "GET", "k")
    assert r.stdout == b"over tls\n", r
    c = tls_client(n, certs)
    assert c.get("k") == b"over tls"
    # Large values and pipelines, both ways (records are at most 16 KiB; replies larger than
    # a send are sealed in pieces).
    big = bytes(range(256)) * 12_000  # 3 MB
    c.set("big", big)
    assert c.get("big") == big
    p = c.pipeline(transaction=False)
    for i in range(2000):
        p.set(f"p{i}", i)
        p.get(f"p{i}")
    out = p.execute()
    assert out[1::2] == [str(i).encode() for i in range(2000)]
    # Keys on both shards, the plain listener sees the same data.
    assert n.client().get("big") == big
    assert n.client().get("p1999") == b"1999"
    # RESP3 and a MULTI over TLS.
    c3 = tls_client(n, certs, protocol=3)
    with c3.pipeline() as m:
        m.incr("ctr").incr("ctr")
        assert m.execute() == [1, 2]
    assert n.metric("pinion_tls_failures_total") == 0


def test_kafka_over_tls_with_kcat_and_confluent_kafka(start, certs):
    n = tls_node(start, certs)
    boot = f"127.0.0.1:{n.kafka_tls_port}"
    ssl_conf = {"security.protocol": "SSL", "ssl.ca.location": str(certs / "ca.pem")}
    # Metadata over TLS names the TLS port, so the client stays on TLS.
    md = AdminClient({"bootstrap.servers": boot, **ssl_conf}).list_topics(timeout=10)
    assert md.brokers[0].port == n.kafka_tls_port
    p = Producer({"bootstrap.servers": boot, **ssl_conf, "acks": "all"})
    errors = []
    for i in range(200):
        p.produce("tls-topic", key=b"k", value=f"m{i}".encode(), partition=0,
                  on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0 and not errors
    kcat = subprocess.run(
        ["kcat", "-b", boot, "-X", "security.protocol=SSL", "-X",
         f"ssl.ca.location={certs / 'ca.pem'}", "-C", "-t", "tls-topic", "-p", "0",
         "-o", "beginning", "-c", "200", "-e", "-q"],
        capture_output=True, timeout=60)
    assert kcat.returncode == 0, kcat.stderr
    assert kcat.stdout.decode().split() == [f"m{i}" for i in range(200)]
    # kcat produces over TLS; confluent-kafka consumes it over TLS.
    r = subprocess.run(
        ["kcat", "-b", boot, "-X", "security.protocol=SSL", "-X",
         f"ssl.ca.location={certs / 'ca.pem'}", "-P", "-t", "tls-topic", "-p", "0"],
        input=b"from-kcat\n", capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    c = Consumer({"bootstrap.servers": boot, **ssl_conf, "group.id": "g-tls",
                  "enable.auto.commit": False})
    c.assign([TopicPartition("tls-topic", 0, 200)])
    msg = None
    deadline = time.time() + 30
    while msg is None and time.time() < deadline:
        msg = c.poll(1)
    c.close()
    assert msg is not None and msg.error() is None and msg.value() == b"from-kcat"
    # Plain Kafka clients still get the plain port.
    md = AdminClient({"bootstrap.servers": f"127.0.0.1:{n.kafka_port}"}).list_topics(timeout=10)
    assert md.brokers[0].port == n.kafka_port


def test_client_certificates_with_tls_ca(start, certs):
    n = tls_node(start, certs, ca=True)
    # A certificate the CA signed: served.
    assert tls_client(n, certs, cert="client").ping()
    r = redis_cli_tls(n, certs, "PING", cert="client")
    assert r.stdout == b"PONG\n", r
    # No certificate: the handshake is refused.
    with pytest.raises(redis.ConnectionError):
        tls_client(n, certs).ping()
    r = redis_cli_tls(n, certs, "PING")
    assert r.stdout != b"PONG\n"
    # An expired certificate: refused with the certificate_expired alert.
    with pytest.raises(ssl.SSLError, match="(?i)certificate expired"):
        raw_ping(n, certs, cert="expired")
    with pytest.raises(ssl.SSLError, match="(?i)certificate required"):
        raw_ping(n, certs)
    assert raw_ping(n, certs, cert="client") == b"+PONG\r\n"
    r = redis_cli_tls(n, certs, "PING", cert="expired")
    assert r.stdout != b"PONG\n"
    # Kafka too: a client without a certificate gets nothing; one with it is served.
    boot = f"127.0.0.1:{n.kafka_tls_port}"
    ssl_conf = {"security.protocol": "SSL", "ssl.ca.location": str(certs / "ca.pem")}
    ok = AdminClient({"bootstrap.servers": boot, **ssl_conf,
                      "ssl.certificate.location": str(certs / "client.pem"),
                      "ssl.key.location": str(certs / "client.key")})
    assert ok.list_topics(timeout=10).brokers[0].port == n.kafka_tls_port
    from confluent_kafka import KafkaException
    with pytest.raises(KafkaException):
        AdminClient({"bootstrap.servers": boot, **ssl_conf}).list_topics(timeout=3)
    # Each refusal was counted and logged (rate-limited), and the node serves on.
    assert n.metric("pinion_tls_failures_total") >= 3
    assert "TLS failed; closing the connection" in n.log_text()
    assert tls_client(n, certs, cert="client").ping()


def test_sighup_reloads_the_certificate(start, certs, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes((certs / "server.pem").read_bytes())
    key.write_bytes((certs / "server.key").read_bytes())
    rp = free_port()
    n = start("--tls-cert", str(cert), "--tls-key", str(key), "--resp-tls-listen", f"127.0.0.1:{rp}")
    n.tls_port = rp
    assert peer_serial(n, certs) == 1001
    held = tls_client(n, certs)
    held.set("a", 1)
    # A bad new certificate: logged, the old one kept.
    key.write_text("garbage")
    n.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "TLS certificate not reloaded" not in n.log_text():
        assert time.time() < deadline, n.log_text()
        time.sleep(0.02)
    assert peer_serial(n, certs) == 1001
    # The new pair: new connections see it; the open one goes on.
    cert.write_bytes((certs / "server2.pem").read_bytes())
    key.write_bytes((certs / "server2.key").read_bytes())
    n.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "TLS certificate reloaded" not in n.log_text():
        assert time.time() < deadline, n.log_text()
        time.sleep(0.02)
    assert peer_serial(n, certs) == 1002
    assert held.get("a") == b"1"


def test_plaintext_on_the_tls_port_is_closed_cleanly(start, certs):
    n = tls_node(start, certs)
    bystander = tls_client(n, certs)
    bystander.set("b", "still here")
    plain_bystander = n.client()
    # A RESP client speaking plaintext to the TLS port: closed, nothing decrypted or run.
    s = socket.create_connection(("127.0.0.1", n.tls_port), timeout=5)
    s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n")
    got = b""
    while chunk := s.recv(4096):
        got += chunk
    s.close()
    assert b"+OK" not in got
    # redis-cli without --tls on the TLS port fails; so does a Kafka client without SSL.
    r = subprocess.run(["redis-cli", "-p", str(n.tls_port), "PING"], capture_output=True, timeout=30)
    assert r.stdout != b"PONG\n"
    r = subprocess.run(["kcat", "-b", f"127.0.0.1:{n.kafka_tls_port}", "-L", "-m", "3"],
                       capture_output=True, timeout=30)
    assert r.returncode != 0
    # TLS to the plain port fails too (pinion reads the ClientHello as a bad RESP request).
    with pytest.raises((ssl.SSLError, OSError)):
        with socket.create_connection(("127.0.0.1", n.port), timeout=5) as raw:
            ssl_context(certs).wrap_socket(raw, server_hostname="localhost")
    assert n.client().get("x") is None
    assert bystander.get("b") == b"still here"
    assert plain_bystander.ping()
    assert n.metric("pinion_tls_failures_total") >= 2
    assert "panicked" not in n.log_text()
    # A TLS client that connects and goes away mid-handshake costs nothing either.
    for _ in range(20):
        socket.create_connection(("127.0.0.1", n.tls_port), timeout=5).close()
    assert tls_client(n, certs).get("b") == b"still here"


def test_tls_flags_are_checked(start, certs, tmp_path):
    from conftest import binary

    def run(*flags):
        return subprocess.run([binary(), "--data-dir", str(tmp_path / "d"), *flags],
                              capture_output=True, timeout=30)

    r = run("--resp-tls-listen", "127.0.0.1:0")
    assert r.returncode != 0 and b"--tls-cert" in r.stderr
    r = run("--resp-tls-listen", "127.0.0.1:0", "--resp-listen", "127.0.0.1:0",
            "--kafka-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
            "--tls-cert", str(certs / "server.pem"), "--tls-key", str(tmp_path / "missing.key"))
    assert r.returncode != 0 and b"missing.key" in r.stderr, r.stderr


def memory_input(node):
    import re
    import urllib.request

    body = urllib.request.urlopen(f"http://127.0.0.1:{node.admin_port}/metrics", timeout=5).read().decode()
    return sum(int(v) for v in re.findall(r'^pinion_memory_bytes\{shard="\d+",purpose="input"\} (\d+)$', body, re.M))


def test_tls_connections_are_charged_to_the_memory_budget(start, certs):
    n = tls_node(start, certs)
    # The gauges are a shard's figures as of its last budget check; the first check charges
    # the receive buffer ring, which stays for the node's life.
    deadline = time.time() + 10
    while (base := memory_input(n)) == 0:
        assert time.time() < deadline, "no budget check in 10 s"
        time.sleep(0.02)
    clients = [tls_client(n, certs) for _ in range(20)]
    for c in clients:
        assert c.ping()
    # rustls's buffers are charged as input, TLS_CONN_BYTES (48 KiB) per connection, on top
    # of the query buffers, and given back when the connections close. Each connection's
    # charge is brought up to date when it is served, so both directions are awaited.
    deadline = time.time() + 10
    while (now := memory_input(n)) < base + 20 * 48 * 1024:
        assert time.time() < deadline, f"input went from {base} to {now} only"
        time.sleep(0.02)
    for c in clients:
        c.close()
    deadline = time.time() + 10
    while (now := memory_input(n)) > base:
        assert time.time() < deadline, f"input still {now} after close, {base} before"
        time.sleep(0.02)


def test_a_handshake_not_done_in_time_is_closed(start, certs):
    n = tls_node(start, certs, "--tls-handshake-timeout-ms", "300")
    done = tls_client(n, certs)
    assert done.ping()
    silent = socket.create_connection(("127.0.0.1", n.tls_port), timeout=10)
    halfway = socket.create_connection(("127.0.0.1", n.kafka_tls_port), timeout=10)
    halfway.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
    t = time.time()
    for s in (silent, halfway):
        # Closed by the node (EOF, or a reset), well before the socket's own 10 s timeout.
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        s.close()
    assert time.time() - t < 5
    assert n.metric("pinion_tls_failures_total") == 2
    assert "TLS handshake not done within --tls-handshake-timeout-ms" in n.log_text()
    # A connection whose handshake finished is not touched by the deadline.
    assert done.ping()


def test_quit_over_tls_ends_with_close_notify(start, certs):
    n = tls_node(start, certs)
    with socket.create_connection(("127.0.0.1", n.tls_port), timeout=10) as raw:
        # suppress_ragged_eofs=False: a close without close_notify would raise SSLEOFError.
        s = ssl_context(certs).wrap_socket(raw, server_hostname="localhost",
                                           suppress_ragged_eofs=False)
        s.sendall(b"SET q 1\r\nQUIT\r\n")
        got = b""
        while chunk := s.recv(100):
            got += chunk
        assert got == b"+OK\r\n+OK\r\n"
    assert n.client().get("q") == b"1"


def test_sasl_over_tls(start, certs, tmp_path):
    """SASL_SSL: SCRAM over the Kafka TLS listener with kcat and confluent-kafka; a wrong
    password is refused there as on the plain port, and a client without SASL on the TLS
    port gets nothing but ApiVersions."""
    from conftest import binary

    users = tmp_path / "users.acl"
    r = subprocess.run([binary(), "users", "add", "app", "topic:all:*", "--password-stdin",
                        "--file", str(users)], input=b"app-pw", capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    n = tls_node(start, certs, "--users", str(users))
    boot = f"127.0.0.1:{n.kafka_tls_port}"
    conf = {"bootstrap.servers": boot, "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(certs / "ca.pem"), "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": "app", "sasl.password": "app-pw"}
    p = Producer({**conf, "acks": "all"})
    errors = []
    for i in range(50):
        p.produce("sasl-tls", value=f"s{i}".encode(), partition=0,
                  on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0 and not errors
    kcat = subprocess.run(
        ["kcat", "-b", boot, "-X", "security.protocol=SASL_SSL", "-X",
         f"ssl.ca.location={certs / 'ca.pem'}", "-X", "sasl.mechanisms=SCRAM-SHA-256",
         "-X", "sasl.username=app", "-X", "sasl.password=app-pw",
         "-C", "-t", "sasl-tls", "-p", "0", "-o", "beginning", "-c", "50", "-e", "-q"],
        capture_output=True, timeout=60)
    assert kcat.returncode == 0, kcat.stderr
    assert kcat.stdout.decode().split() == [f"s{i}" for i in range(50)]
    bad = subprocess.run(
        ["kcat", "-b", boot, "-X", "security.protocol=SASL_SSL", "-X",
         f"ssl.ca.location={certs / 'ca.pem'}", "-X", "sasl.mechanisms=PLAIN",
         "-X", "sasl.username=app", "-X", "sasl.password=wrong", "-L", "-m", "5"],
        capture_output=True, timeout=60)
    assert bad.returncode != 0
    assert b"Authentication failed" in bad.stderr or b"SASL" in bad.stderr, bad.stderr
    # TLS without SASL: only ApiVersions is served, so Metadata never arrives.
    with pytest.raises(Exception):
        AdminClient({"bootstrap.servers": boot, "security.protocol": "SSL",
                     "ssl.ca.location": str(certs / "ca.pem")}).list_topics(timeout=5)

"""Small helpers the Kafka test files share: the node's bootstrap address, topic creation
through confluent-kafka's admin client, and kcat runs that must succeed."""

import subprocess
import time

from confluent_kafka.admin import AdminClient, NewTopic


def bootstrap(node) -> str:
    return f"127.0.0.1:{node.kafka_port}"


def create(node, topic, partitions, config=None) -> AdminClient:
    """Create `topic` with `partitions` (and topic `config`); the admin client is returned
    for further calls."""
    admin = AdminClient({"bootstrap.servers": bootstrap(node)})
    new = NewTopic(topic, partitions, 1, config=config or {})
    admin.create_topics([new])[topic].result(10)
    return admin


def kcat(node, *args, input=None, timeout=60) -> str:
    """Run kcat against the node; its stdout, once it exits 0."""
    r = subprocess.run(["kcat", "-b", bootstrap(node), *args], input=input,
                       capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def wait_for(cond, timeout, what, pump=lambda: time.sleep(0.05)):
    """Call `pump` until `cond()` holds; fail naming `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, f"timed out waiting for {what}"
        pump()

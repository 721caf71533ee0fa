"""pinion-bench against a real node: counts match what the server did, errors are shown,
open loop keeps its schedule, histogram files merge and plot."""

import json
import os
import subprocess
import time

from confluent_kafka import Consumer, TopicPartition

from conftest import binary, free_port


def bench_binary() -> str:
    return binary("pinion-bench", "PINION_BENCH_BIN")


def bench(*args, check=True, timeout=120):
    p = subprocess.run([bench_binary(), *args], capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"pinion-bench {' '.join(args)} failed:\n{p.stdout.decode()}\n{p.stderr.decode()}")
    return p


def cpus():
    return ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:2])


def test_resp_closed_loop_counts_every_request_the_server_saw(node, r, tmp_path):
    out = tmp_path / "run.json"
    hist = tmp_path / "run.txt"
    before = node.metric("pinion_commands_total")
    bench("resp", "--addr", f"127.0.0.1:{node.port}", "--cores", cpus(), "--connections", "8",
          "--pipeline", "4", "--requests", "20000", "--warmup", "0", "--ratio", "1:1",
          "--keyspace", "500", "--value-bytes", "10", "--json", str(out), "--hist-out", str(hist), "--quiet")
    j = json.loads(out.read_text())
    assert j["ops"] == 20000 and j["errors"] == 0
    assert j["ops_per_sec"] > 0 and 0 < j["p50_us"] <= j["p99_us"] <= j["max_us"]
    assert node.metric("pinion_commands_total") - before == 20000
    # SETs landed: keys of the benchmark's shape, values of the size asked for.
    keys = r.keys("key:*")
    assert 0 < len(keys) <= 500 and all(len(k) == 16 for k in keys)
    assert len(r.get(keys[0])) == 10
    text = hist.read_text()
    assert "Percentile" in text and f"Total count    = {20000:>12}" in text
    assert "Interval_Compressed_Histogram" in (tmp_path / "run.txt.hlog").read_text()


def test_placement_decides_whether_operations_cross_the_mesh(node, tmp_path):
    # Each connection asks CLIENT ID for its shard, then draws only keys other shards own
    # (remote: every operation is one mesh request) or only keys its own shard owns (local:
    # none). The node's own counter is the judge, not pinion-bench's slot function.
    sent = {}
    for placement in ("remote", "local"):
        out = tmp_path / f"{placement}.json"
        before = node.metric("pinion_mesh_requests_sent_total")
        p = bench("resp", "--addr", f"127.0.0.1:{node.port}", "--cores", cpus(), "--connections", "8",
                  "--pipeline", "4", "--requests", "20000", "--warmup", "0", "--ratio", "1:4",
                  "--keyspace", "5000", "--placement", placement, "--shards", "2",
                  "--json", str(out), "--quiet")
        sent[placement] = node.metric("pinion_mesh_requests_sent_total") - before
        j = json.loads(out.read_text())
        assert j["ops"] == 20000 and j["errors"] == 0
        assert j["placement"] == placement and sum(j["connections_per_shard"]) == 8
        assert f"{placement} keys; connections per shard" in p.stdout.decode()
    assert 19_800 <= sent["remote"] <= 20_200, sent
    assert sent["local"] <= 200, sent
    # Placement needs the shard count; without it the run says so instead of guessing.
    p = bench("resp", "--addr", f"127.0.0.1:{node.port}", "--placement", "local", "--duration", "1",
              check=False)
    assert p.returncode == 1 and b"--shards" in p.stderr


def test_server_errors_are_counted_and_shown(start, tmp_path):
    node = start("--maxmemory", "1mb", "--eviction", "noeviction")
    out = tmp_path / "err.json"
    p = bench("resp", "--addr", f"127.0.0.1:{node.port}", "--cores", cpus(), "--connections", "4",
              "--requests", "4000", "--warmup", "0", "--ratio", "1:0", "--keyspace", "100000",
              "--value-bytes", "1000", "--json", str(out), "--quiet")
    j = json.loads(out.read_text())
    assert j["ops"] == 4000
    assert 0 < j["errors"] < 4000, "the first SETs fit in 1 MB, later ones are refused"
    assert "maxmemory" in j["first_error"]
    assert "maxmemory" in p.stdout.decode()


def test_open_loop_keeps_its_schedule(node, tmp_path):
    out = tmp_path / "open.json"
    bench("resp", "--addr", f"127.0.0.1:{node.port}", "--cores", cpus(), "--connections", "4",
          "--rate", "2000", "--duration", "2", "--warmup", "0.5", "--ratio", "0:1",
          "--json", str(out), "--quiet")
    j = json.loads(out.read_text())
    assert j["mode"] == "open" and j["errors"] == 0
    assert 1600 <= j["ops_per_sec"] <= 2400, j["ops_per_sec"]


def test_open_loop_charges_a_stalled_server_for_the_wait(start, tmp_path):
    # Stop the node for 300 ms in the middle of an open-loop run: requests due during the
    # stall are charged from when they were due, so the tail shows the stall. (A closed
    # loop would send nothing while stalled and hide it: coordinated omission.)
    node = start(cores="0")
    out = tmp_path / "stall.json"
    p = subprocess.Popen([bench_binary(), "resp", "--addr", f"127.0.0.1:{node.port}", "--cores", cpus(),
                          "--connections", "2", "--rate", "1000", "--duration", "2", "--warmup", "0",
                          "--ratio", "0:1", "--json", str(out), "--quiet"])
    time.sleep(0.8)
    os.kill(node.proc.pid, 19)  # SIGSTOP
    time.sleep(0.3)
    os.kill(node.proc.pid, 18)  # SIGCONT
    assert p.wait(timeout=30) == 0
    j = json.loads(out.read_text())
    assert j["max_us"] >= 250_000, j
    assert j["p99_us"] >= 50_000, "about 15% of requests were due during the stall"


def test_kafka_produce_and_consume_agree_with_the_broker(node, tmp_path):
    addr = f"127.0.0.1:{node.kafka_port}"
    out = tmp_path / "p.json"
    p = bench("kafka", "--addr", addr, "--cores", cpus(), "--connections", "3", "--pipeline", "2",
              "--requests", "30000", "--warmup", "0", "--json", str(out), "--quiet",
              "produce", "--topic", "bench", "--partitions", "3", "--record-bytes", "100",
              "--batch-bytes", "10000", "--compression", "lz4")
    j = json.loads(out.read_text())
    assert j["ops"] == 30000 and j["errors"] == 0
    assert "MB/s of record values acknowledged" in p.stdout.decode()
    c = Consumer({"bootstrap.servers": addr, "group.id": "check"})
    total = sum(c.get_watermark_offsets(TopicPartition("bench", k), timeout=10)[1] for k in range(3))
    c.close()
    assert total == 30000
    out = tmp_path / "c.json"
    bench("kafka", "--addr", addr, "--cores", cpus(), "--connections", "3", "--duration", "1.5",
          "--warmup", "0", "--json", str(out), "--quiet", "consume", "--topic", "bench")
    j = json.loads(out.read_text())
    assert j["records"] == 30000 and j["errors"] == 0


def test_refused_connection_ends_the_run_with_a_clear_message():
    p = bench("resp", "--addr", f"127.0.0.1:{free_port()}", "--duration", "1", check=False)
    assert p.returncode == 1
    assert b"connecting to" in p.stderr and b"refused" in p.stderr.lower()


def test_server_closing_mid_run_ends_the_run(start):
    node = start()
    p = subprocess.Popen([bench_binary(), "resp", "--addr", f"127.0.0.1:{node.port}", "--cores", cpus(),
                          "--connections", "4", "--duration", "20", "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1)
    node.kill9()
    _, err = p.communicate(timeout=20)
    assert p.returncode == 1
    assert b"closed a connection" in err or b"reset" in err.lower(), err
    node.restart()  # the fixture ends with a clean stop


def test_histograms_merge_and_plot_with_a_node_dump(node, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    for h, ratio in ((a, "0:1"), (b, "1:0")):
        bench("resp", "--addr", f"127.0.0.1:{node.port}", "--cores", cpus(), "--connections", "2",
              "--requests", "3000", "--warmup", "0", "--ratio", ratio, "--hist-out", str(h), "--quiet")
    merged = tmp_path / "m.txt"
    p = bench("hist", "merge", "-o", str(merged), str(a), str(b) + ".hlog")
    assert "6000 values" in p.stdout.decode()
    assert f"Total count    = {6000:>12}" in merged.read_text()
    # The node's own dump (SIGUSR1 writes it) is one more input, by section.
    os.kill(node.proc.pid, 10)
    deadline = time.time() + 10
    while not (node.hist.exists() and "op=string_read" in node.hist.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    svg, png = tmp_path / "c.svg", tmp_path / "c.png"
    bench("hist", "plot", "--svg", str(svg), "--png", str(png), "--title", "GET vs SET",
          f"GET={a}", f"SET={b}.hlog", f"server GET={node.hist}@op=string_read")
    s = svg.read_text()
    assert s.startswith("<svg") and "GET vs SET" in s and "server GET" in s and "99.9%" in s
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    bad = bench("hist", "plot", "--svg", str(svg), "x=" + str(tmp_path / "missing"), check=False)
    assert bad.returncode == 1 and b"missing" in bad.stderr


def test_many_commits_in_flight_on_one_partition_survive_recovery(start, tmp_path):
    """32 produce requests in flight on one partition, batches of odd sizes so each group
    starts inside the previous one's last 4 KiB block (rewritten whole by O_DIRECT), with
    segment rolls: after a restart, recovery reads the log back CRC by CRC and cuts nothing."""
    node = start("--segment-bytes", "2mb", cores="0")
    addr = f"127.0.0.1:{node.kafka_port}"
    bench("kafka", "--addr", addr, "--cores", cpus(), "--connections", "4", "--pipeline", "8",
          "--requests", "60000", "--warmup", "0", "--quiet", "produce", "--topic", "many",
          "--partitions", "1", "--record-bytes", "333", "--batch-bytes", "9000")

    def high_watermark():
        c = Consumer({"bootstrap.servers": addr, "group.id": "many"})
        hw = c.get_watermark_offsets(TopicPartition("many", 0), timeout=10)[1]
        c.close()
        return hw

    assert high_watermark() == 60000
    node.stop()
    node.restart()
    assert "recovery truncated" not in node.log_text()
    assert high_watermark() == 60000
    out = tmp_path / "c.json"
    bench("kafka", "--addr", addr, "--cores", cpus(), "--connections", "1", "--duration", "2",
          "--warmup", "0", "--json", str(out), "--quiet", "consume", "--topic", "many")
    assert json.loads(out.read_text())["records"] == 60000

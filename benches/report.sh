#!/usr/bin/env bash
# The performance report, in one go on one machine, with pinion-bench as the client:
#
#   1. pinion (one shard) vs redis-server on the same pinned CPU: SET and GET, pipeline 1
#      and 16, closed loop; then GET open loop at 50% and 90% of redis-server's closed-loop
#      GET rate (latency from intended send times).
#   2. The client checked against a known peer: redis-benchmark vs pinion-bench closed-loop
#      GET on redis-server, same connections and pipeline.
#   3. pinion's log vs fio on the same filesystem: fio sequential O_DIRECT write rate and
#      64 KiB write+fdatasync latency; pinion produce (1 KiB records, acks=all,
#      --fsync always) on 1 and 4 partitions, fetch, and produce latency at a steady rate.
#   4. Shard-count scaling: GET pipeline 16 against 1..N shards (N = CPUs).
#
# Each figure is the median of ROUNDS runs, servers alternating within a round. Writes
# the generated part of docs/benchmarks.md (between the report markers) and
# docs/img/get-open-loop.{svg,png}.
#
#   benches/report.sh                  # ROUNDS=3 DUR=4
#   ROUNDS=5 DUR=10 benches/report.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in redis-server redis-benchmark fio; do
  command -v $tool >/dev/null || { echo "missing $tool (apt-get install redis-server redis-tools fio)"; exit 1; }
done
cargo build --release -q -p pinion -p pinion-bench
exec python3 - "$@" <<'PY'
import json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROUNDS = int(os.environ.get("ROUNDS", 3))
DUR = float(os.environ.get("DUR", 4))
CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPU = int(os.environ.get("SERVER_CPU", CPUS[0]))
CLIENT_CPUS = os.environ.get("CLIENT_CPUS", ",".join(str(c) for c in CPUS if c != SERVER_CPU) or str(SERVER_CPU))
DIR = Path(os.environ.get("DIR", "bench-data")).resolve()
BENCH = "target/release/pinion-bench"
PINION = "target/release/pinion"
shutil.rmtree(DIR, ignore_errors=True)
DIR.mkdir(parents=True)
work = Path(tempfile.mkdtemp(prefix="pinion-report-"))
procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on {port} did not start")


def start(kind, cpus=str(SERVER_CPU), fsync="always"):
    port, kport = free_port(), free_port()
    if kind == "redis":
        cmd = ["taskset", "-c", cpus, "redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    else:
        data = DIR / f"pinion-{port}"
        cmd = [PINION, "--cores", cpus, "--resp-listen", f"127.0.0.1:{port}", "--kafka-listen",
               f"127.0.0.1:{kport}", "--admin-listen", "127.0.0.1:0", "--data-dir", str(data),
               "--fsync", fsync, "--log-level", "warn"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    wait_port(port)
    if kind == "pinion":
        wait_port(kport)
    return p, port, kport


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)


def bench(*args, cores=CLIENT_CPUS):
    out = work / f"b{time.monotonic_ns()}.json"
    hist = out.with_suffix(".txt")
    mode, rest = args[0], list(args[1:])
    load = ["--cores", cores, "--json", str(out), "--hist-out", str(hist), "--quiet"]
    if mode == "kafka":
        # Load flags go before the produce/consume subcommand.
        i = next(k for k, a in enumerate(rest) if a in ("produce", "consume"))
        cmd = [BENCH, "kafka", *rest[:i], *load, *rest[i:]]
    else:
        cmd = [BENCH, mode, *rest, *load]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    j = json.loads(out.read_text())
    j["hist"] = str(hist)
    return j


med = statistics.median
results = {}
def add(key, v):
    results.setdefault(key, []).append(v)

def prefill(addr, n):
    """SET n values over the 100 000 keys the GET cases read."""
    bench("resp", "--addr", addr, "--connections", "50", "--pipeline", "16", "--ratio", "1:0",
          "--keyspace", "100000", "--requests", str(n), "--warmup", "0")

# 1. RESP, closed loop, then open loop.
cases = [("SET", "1:0", 1), ("SET", "1:0", 16), ("GET", "0:1", 1), ("GET", "0:1", 16)]
for r in range(ROUNDS):
    for kind in ("redis", "pinion"):
        p, port, _ = start(kind)
        addr = f"127.0.0.1:{port}"
        prefill(addr, 400000)
        for op, ratio, pl in cases:
            j = bench("resp", "--addr", addr, "--connections", "50", "--pipeline", str(pl),
                      "--ratio", ratio, "--keyspace", "100000", "--duration", str(DUR))
            assert j["errors"] == 0, j
            add((kind, op, pl), j)
        stop(p)
redis_get = med(j["ops_per_sec"] for j in results[("redis", "GET", 1)])
for r in range(ROUNDS):
    for kind in ("redis", "pinion"):
        p, port, _ = start(kind)
        addr = f"127.0.0.1:{port}"
        prefill(addr, 200000)
        for pct in (50, 90):
            j = bench("resp", "--addr", addr, "--connections", "50", "--ratio", "0:1", "--keyspace",
                      "100000", "--rate", str(redis_get * pct / 100), "--duration", str(DUR))
            add((kind, "open", pct), j)
        stop(p)

# 2. pinion-bench against redis-benchmark, both on redis-server.
def redis_benchmark(port, pl, n):
    out = subprocess.run(["taskset", "-c", CLIENT_CPUS, "redis-benchmark", "-p", str(port), "-t", "get",
                          "-c", "50", "-P", str(pl), "-n", str(n), "-r", "100000", "--csv"],
                         check=True, capture_output=True, text=True).stdout
    line = [l for l in out.splitlines() if l.startswith('"GET"')][0]
    return float(line.split(",")[1].strip('"'))

for r in range(ROUNDS):
    p, port, _ = start("redis")
    for pl, n in ((1, int(150_000 * DUR / 4)), (16, int(2_000_000 * DUR / 4))):
        add(("rb", pl), redis_benchmark(port, pl, n))
        j = bench("resp", "--addr", f"127.0.0.1:{port}", "--connections", "50", "--pipeline", str(pl),
                  "--ratio", "0:1", "--keyspace", "100000", "--duration", str(DUR))
        add(("pb", pl), j["ops_per_sec"])
    stop(p)

# 3. The log against fio.
fio_dir = DIR / "fio"
def fio(*args):
    fio_dir.mkdir(exist_ok=True)
    out = subprocess.run(["fio", "--name=x", f"--directory={fio_dir}", "--output-format=json", *args],
                         check=True, capture_output=True, text=True).stdout
    shutil.rmtree(fio_dir)
    return json.loads(out)["jobs"][0]

for r in range(ROUNDS):
    w = fio("--rw=write", "--bs=1m", "--size=1g", "--direct=1", "--ioengine=io_uring", "--iodepth=8")
    add("fio_mbs", w["write"]["bw_bytes"] / 1e6)
    rd = fio("--rw=read", "--bs=1m", "--size=1g", "--direct=1", "--ioengine=io_uring", "--iodepth=8")
    add("fio_read_mbs", rd["read"]["bw_bytes"] / 1e6)
    s = fio("--rw=write", "--bs=64k", "--size=128m", "--fdatasync=1", "--ioengine=sync")
    pct = s["sync"]["lat_ns"]["percentile"]
    add("fio_sync_p50", pct["50.000000"] / 1e3)
    add("fio_sync_p99", pct["99.000000"] / 1e3)
    subprocess.run(["sync"])
    time.sleep(2)
    p, _, kport = start("pinion")
    addr = f"127.0.0.1:{kport}"
    for parts in (1, 4):
        j = bench("kafka", "--addr", addr, "--connections", str(parts), "--pipeline", "4",
                  "--duration", str(DUR), "produce", "--topic", f"t{parts}", "--partitions", str(parts),
                  "--record-bytes", "1024", "--batch-bytes", str(512 * 1024))
        assert j["errors"] == 0, j
        add(("produce", parts), j)
    j = bench("kafka", "--addr", addr, "--connections", "4", "--duration", str(DUR), "--warmup", "0",
              "consume", "--topic", "t4")
    add("fetch", j)
    j = bench("kafka", "--addr", addr, "--connections", "1", "--rate", "2000", "--duration", str(DUR),
              "produce", "--topic", "lat", "--record-bytes", "1024", "--batch-bytes", "1024")
    assert j["errors"] == 0, j
    add("produce_lat", j)
    stop(p)
    shutil.rmtree(DIR, ignore_errors=True)
    DIR.mkdir(parents=True)

# 4. Shard scaling.
for r in range(ROUNDS):
    for n in range(1, len(CPUS) + 1):
        cpus = ",".join(str(c) for c in CPUS[:n])
        p, port, _ = start("pinion", cpus=cpus)
        j = bench("resp", "--addr", f"127.0.0.1:{port}", "--connections", "50", "--pipeline", "16",
                  "--ratio", "0:1", "--keyspace", "100000", "--duration", str(DUR),
                  cores=",".join(str(c) for c in CPUS))
        add(("scale", n), j["ops_per_sec"])
        stop(p)

# Plots: open-loop GET at 90% of redis-server's rate.
img = Path("docs/img")
img.mkdir(parents=True, exist_ok=True)
def median_run(key):
    runs = sorted(results[key], key=lambda j: j["p99_us"])
    return runs[len(runs) // 2]
subprocess.run([BENCH, "hist", "plot", "--svg", str(img / "get-open-loop.svg"), "--png",
                str(img / "get-open-loop.png"), "--title",
                f"GET, open loop at 90% of redis-server's max ({redis_get * 0.9:,.0f}/s), 50 connections",
                f"redis-server={median_run(('redis', 'open', 90))['hist']}",
                f"pinion={median_run(('pinion', 'open', 90))['hist']}"], check=True)

# The generated section of docs/benchmarks.md.
def m(key, field="ops_per_sec"):
    v = results[key]
    return med(x[field] if isinstance(x, dict) else x for x in v)

lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
model = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")), "?")
L = []
L.append(f"Generated by `benches/report.sh` on {time.strftime('%Y-%m-%d')} ({model}, {len(CPUS)} CPUs, "
         f"kernel {os.uname().release}); medians of {ROUNDS} rounds of {DUR:g} s. Servers on CPU "
         f"{SERVER_CPU}, pinion-bench on CPU(s) {CLIENT_CPUS}.\n")
L.append("### pinion vs redis-server, one core each (closed loop, 50 connections)\n")
L.append("| case | redis-server ops/s | pinion ops/s | ratio | redis p99 µs | pinion p99 µs |")
L.append("|---|---:|---:|---:|---:|---:|")
for op, _, pl in cases:
    a, b = m(("redis", op, pl)), m(("pinion", op, pl))
    L.append(f"| {op} -P{pl} | {a:,.0f} | {b:,.0f} | **{b / a:.2f}** | "
             f"{m(('redis', op, pl), 'p99_us'):,.0f} | {m(('pinion', op, pl), 'p99_us'):,.0f} |")
L.append("\n### GET latency, open loop (coordinated omission corrected)\n")
L.append("| rate | redis p50 / p99 / p99.9 µs | pinion p50 / p99 / p99.9 µs | p99 ratio |")
L.append("|---|---:|---:|---:|")
for pct in (50, 90):
    rr, pp = ("redis", "open", pct), ("pinion", "open", pct)
    f = lambda k: " / ".join(f"{m(k, q):,.0f}" for q in ("p50_us", "p99_us", "p999_us"))
    L.append(f"| {pct}% of redis max ({redis_get * pct / 100:,.0f}/s) | {f(rr)} | {f(pp)} | "
             f"**{m(pp, 'p99_us') / m(rr, 'p99_us'):.2f}** |")
L.append("\n![GET latency by percentile](img/get-open-loop.svg)\n")
L.append("### The client against redis-benchmark (both on redis-server, GET, 50 connections)\n")
L.append("| pipeline | redis-benchmark ops/s | pinion-bench ops/s | ratio |")
L.append("|---|---:|---:|---:|")
for pl in (1, 16):
    a, b = med(results[("rb", pl)]), med(results[("pb", pl)])
    L.append(f"| {pl} | {a:,.0f} | {b:,.0f} | **{b / a:.2f}** |")
L.append("\n### The log against the disk (1 KiB records, acks=all, --fsync always)\n")
fio_mbs = med(results["fio_mbs"])
L.append("| what | MB/s | vs fio O_DIRECT |")
L.append("|---|---:|---:|")
L.append(f"| fio sequential O_DIRECT write, 1 MiB, iodepth 8 | {fio_mbs:,.0f} | 1.00 |")
for parts in (1, 4):
    v = med(j["ops_per_sec"] * 1024 / 1e6 for j in results[("produce", parts)])
    L.append(f"| pinion produce, {parts} partition(s), 512 KiB batches, 4 in flight per connection | {v:,.0f} | **{v / fio_mbs:.2f}** |")
v = med(j["mb_per_sec"] for j in results["fetch"])
fio_read = med(results["fio_read_mbs"])
L.append("")
L.append("| reading back | MB/s | vs fio O_DIRECT read |")
L.append("|---|---:|---:|")
L.append(f"| fio sequential O_DIRECT read, 1 MiB, iodepth 8 | {fio_read:,.0f} | 1.00 |")
L.append(f"| pinion fetch, 4 connections, 4 partitions from the start (not in the page cache: written O_DIRECT) | {v:,.0f} | **{v / fio_read:.2f}** |")
L.append("")
L.append("| durable write latency | p50 µs | p99 µs |")
L.append("|---|---:|---:|")
L.append(f"| fio 64 KiB write + fdatasync | {med(results['fio_sync_p50']):,.0f} | {med(results['fio_sync_p99']):,.0f} |")
L.append(f"| pinion produce, one 1 KiB record per request at 2000/s, acks=all | "
         f"{m('produce_lat', 'p50_us'):,.0f} | {m('produce_lat', 'p99_us'):,.0f} |")
L.append("\n### Shard scaling (GET -P16, 50 connections, client on every CPU)\n")
L.append("| shards | ops/s | vs 1 shard |")
L.append("|---:|---:|---:|")
one = med(results[("scale", 1)])
for n in range(1, len(CPUS) + 1):
    v = med(results[("scale", n)])
    L.append(f"| {n} | {v:,.0f} | {v / one:.2f} |")
section = "\n".join(L) + "\n"

doc = Path("docs/benchmarks.md")
text = doc.read_text() if doc.exists() else "# Benchmarks\n"
begin, end = "<!-- report:begin -->", "<!-- report:end -->"
if begin in text and end in text:
    text = text.split(begin)[0] + begin + "\n" + section + end + text.split(end, 1)[1]
else:
    text = text.rstrip() + "\n\n## The report\n\n" + begin + "\n" + section + end + "\n"
doc.write_text(text)
print(section)
for p in procs:
    if p.poll() is None:
        p.kill()
shutil.rmtree(DIR, ignore_errors=True)
shutil.rmtree(work, ignore_errors=True)
PY

#!/usr/bin/env bash
# pinion's log against the disk's own limits, measured by fio, on the same filesystem, in
# one run.
#
# 1. fio: sequential O_DIRECT 1 MiB writes (the disk's write rate) and 64 KiB writes each
#    followed by fdatasync (the durable-write latency floor), in the data folder.
# 2. pinion (one shard, --fsync always): produce 1 KiB records with acks=all from kcat
#    (librdkafka, linger 5 ms, 1 MB batches), then read them all back with kcat (fetch
#    throughput). A C client, so the figures are the node's, not a Python loop's.
# 3. Produce latency under acks=all at a moderate rate (linger 0), p50/p99, printed next to
#    fio's fdatasync p50/p99.
#
#   benches/log_vs_fio.sh                       # data under ./bench-data
#   DIR=/mnt/nvme/bench RECORDS=400000 benches/log_vs_fio.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${DIR:-$PWD/bench-data}
RECORDS=${RECORDS:-200000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-19192}
OUT=${OUT:-}
save() { if [ -n "$OUT" ]; then tee -a "$OUT"; else cat; fi; }

command -v fio >/dev/null || { echo "missing fio (apt-get install fio)"; exit 1; }
command -v kcat >/dev/null || { echo "missing kcat (apt-get install kcat)"; exit 1; }
python3 -c "import confluent_kafka" 2>/dev/null || { echo "missing confluent-kafka (pip install confluent-kafka)"; exit 1; }
cargo build --release -q -p pinion
rm -rf "$DIR" && mkdir -p "$DIR/fio"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT

fio --name=seq --directory="$DIR/fio" --rw=write --bs=1m --size=1g --direct=1 \
  --ioengine=io_uring --iodepth=8 --output-format=json > "$DIR/seq.json"
fio --name=sync --directory="$DIR/fio" --rw=write --bs=64k --size=128m --fdatasync=1 \
  --ioengine=sync --output-format=json > "$DIR/sync.json"
rm -rf "$DIR/fio"
# Let the host finish fio's writeback before pinion is measured on the same disk.
sync; sleep 5

target/release/pinion --cores "$SERVER_CPU" --kafka-listen "127.0.0.1:$PORT" --resp-listen 127.0.0.1:0 \
  --admin-listen 127.0.0.1:0 --data-dir "$DIR/pinion" --fsync always --log-level warn &
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

taskset -c "$CLIENT_CPU" python3 - "$PORT" "$RECORDS" "$DIR" <<'PY' | save
import json, statistics, sys, time
from confluent_kafka import Consumer, Producer, TopicPartition
port, n, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
boot = f"127.0.0.1:{port}"
seq = json.load(open(f"{d}/seq.json"))["jobs"][0]["write"]
fio_mbs = seq["bw_bytes"] / 1e6
sync = json.load(open(f"{d}/sync.json"))["jobs"][0]["sync"]["lat_ns"]["percentile"]
fio_p50, fio_p99 = sync["50.000000"] / 1e6, sync["99.000000"] / 1e6

import subprocess
value = b"v" * 1024
with open(f"{d}/records.txt", "wb") as f:
    f.write((b"v" * 1023 + b"\n") * n)
t0 = time.time()
subprocess.run(["kcat", "-b", boot, "-P", "-t", "bench", "-X", "acks=all", "-X", "linger.ms=5",
                "-X", "batch.size=1000000", "-X", "queue.buffering.max.messages=1000000",
                "-l", f"{d}/records.txt"], check=True)
produce_s = time.time() - t0
produce_mbs = n * 1024 / produce_s / 1e6
t0 = time.time()
out = subprocess.run(["kcat", "-b", boot, "-C", "-t", "bench", "-o", "beginning", "-e", "-q",
                      "-X", "fetch.max.bytes=52428800", "-f", "%o\n"], check=True, capture_output=True)
fetch_s = time.time() - t0
assert len(out.stdout.split()) == n, "every record read back"
fetch_mbs = n * 1024 / fetch_s / 1e6

lat = []
p2 = Producer({"bootstrap.servers": boot, "acks": "all", "linger.ms": 0})
sent = {}
def done(err, msg, t=None):
    if err is None:
        lat.append(time.perf_counter() - msg.opaque if hasattr(msg, "opaque") else 0)
for i in range(3000):
    t = time.perf_counter()
    p2.produce("latency", value=value, on_delivery=lambda e, m, t=t: e is None and lat.append(time.perf_counter() - t))
    p2.poll(0)
    time.sleep(0.001)
p2.flush(30)
lat.sort()
p50, p99 = lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3

print(f"# pinion log vs fio: {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, data in {d}")
print(f"fio sequential O_DIRECT write       {fio_mbs:8.1f} MB/s")
print(f"pinion produce 1 KiB, acks=all,     {produce_mbs:8.1f} MB/s   ratio {produce_mbs / fio_mbs:.2f} of fio  ({n} records, --fsync always)")
print(f"pinion fetch (read back)            {fetch_mbs:8.1f} MB/s")
print(f"fio 64 KiB write+fdatasync latency  p50 {fio_p50:6.2f} ms  p99 {fio_p99:6.2f} ms")
print(f"pinion produce latency, acks=all    p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({len(lat)} records, ~1000/s, linger 0)")
PY

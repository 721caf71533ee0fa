#!/usr/bin/env bash
# pinion vs redis-server, side by side on one machine, in one run.
#
# Each server runs alone, pinned to one core (SERVER_CPU); redis-benchmark runs pinned to
# another (CLIENT_CPU). For SET and GET at -c 50 with -P 1 and -P 16 it prints ops/s, p50
# and p99 for both servers, and the pinion/redis ratios (ops/s: higher is better for
# pinion; latency: lower is better). Each case runs ROUNDS times, alternating servers, and
# the median is reported. Also the server's CPU time per request (µs, user + system, from
# /proc): where the client is the bottleneck (-P 1 on one client core) ops/s ties, and this
# is the figure that still tells the servers apart. Then memory: RSS growth for 1M keys (16-byte keys, 32-byte
# values), loaded with redis-cli --pipe, per key.
#
#   benches/redis_side_by_side.sh                 # defaults below
#   ROUNDS=5 REQUESTS=1000000 benches/redis_side_by_side.sh
#   OUT=results.txt benches/redis_side_by_side.sh   # also append the results to a file
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-400000}
KEYS=${KEYS:-1000000}
PORT_REDIS=${PORT_REDIS:-16379}
PORT_PINION=${PORT_PINION:-16380}
OUT=${OUT:-}

for tool in redis-server redis-benchmark redis-cli taskset python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install redis-server redis-tools util-linux)"; exit 1; }
done
cargo build --release -q -p pinion
PINION=target/release/pinion
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

start_redis() {
  taskset -c "$SERVER_CPU" redis-server --port "$PORT_REDIS" --save '' --appendonly no \
    --daemonize no --logfile "$WORK/redis.log" --dir "$WORK" &
  SERVER_PID=$!
  wait_port "$PORT_REDIS"
}
start_pinion() {
  "$PINION" --cores "$SERVER_CPU" --resp-listen "127.0.0.1:$PORT_PINION" \
    --admin-listen 127.0.0.1:0 --data-dir "$WORK/pinion" --log-level warn &
  SERVER_PID=$!
  wait_port "$PORT_PINION"
}
stop_server() { kill -TERM "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; }
wait_port() {
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "server on $1 did not start"; exit 1
}
save() { if [ -n "$OUT" ]; then tee -a "$OUT"; else cat; fi; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One redis-benchmark run; prints "ops p50 p99" (ms) and the server's CPU µs per request.
bench() { # port test pipeline
  local t0; t0=$(cpu_ticks "$SERVER_PID")
  taskset -c "$CLIENT_CPU" redis-benchmark -p "$1" -t "$2" -n "$REQUESTS" -c 50 -P "$3" \
    -r 100000 -d 32 --csv 2>/dev/null | python3 -c '
import csv, sys
rows = [r for r in csv.reader(sys.stdin)]
hdr, row = rows[0], rows[1]
d = dict(zip(hdr, row))
print(d["rps"], d["p50_latency_ms"], d["p99_latency_ms"], end=" ")'
  local t1; t1=$(cpu_ticks "$SERVER_PID")
  python3 -c "import os, sys; print((int(sys.argv[2]) - int(sys.argv[1])) * 1e6 / os.sysconf('SC_CLK_TCK') / int(sys.argv[3]))" "$t0" "$t1" "$REQUESTS"
}

median() { python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

declare -A R
for round in $(seq "$ROUNDS"); do
  for server in redis pinion; do
    if [ "$server" = redis ]; then start_redis; port=$PORT_REDIS; else start_pinion; port=$PORT_PINION; fi
    for p in 1 16; do
      for t in set get; do
        read -r ops p50 p99 cpu < <(bench "$port" "$t" "$p")
        R[$server,$t,$p,cpu]+="$cpu "
        R[$server,$t,$p,ops]+="$ops "
        R[$server,$t,$p,p50]+="$p50 "
        R[$server,$t,$p,p99]+="$p99 "
      done
    done
    stop_server
  done
done

{
  echo "# pinion vs redis-server: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
  echo "# redis-benchmark -c 50 -n $REQUESTS -r 100000 -d 32; median of $ROUNDS rounds"
  printf '%-10s %12s %12s %8s %9s %9s %8s %9s %9s %8s %9s %9s %8s\n' case redis_ops pinion_ops ratio r_p50ms p_p50ms ratio r_p99ms p_p99ms ratio r_cpu_us p_cpu_us ratio
  for p in 1 16; do
    for t in set get; do
      ro=$(median ${R[redis,$t,$p,ops]}); po=$(median ${R[pinion,$t,$p,ops]})
      r5=$(median ${R[redis,$t,$p,p50]}); p5=$(median ${R[pinion,$t,$p,p50]})
      r9=$(median ${R[redis,$t,$p,p99]}); p9=$(median ${R[pinion,$t,$p,p99]})
      rc=$(median ${R[redis,$t,$p,cpu]}); pc=$(median ${R[pinion,$t,$p,cpu]})
      python3 - "$t" "$p" "$ro" "$po" "$r5" "$p5" "$r9" "$p9" "$rc" "$pc" <<'PY'
import sys
t, p, ro, po, r5, p5, r9, p9, rc, pc = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
ratio = lambda a, b: f"{b / a:.2f}" if a else "n/a"
print(f"{t.upper()+' -P'+p:<10} {ro:12.0f} {po:12.0f} {ratio(ro, po):>8} {r5:9.3f} {p5:9.3f} {ratio(r5, p5):>8} {r9:9.3f} {p9:9.3f} {ratio(r9, p9):>8} {rc:9.2f} {pc:9.2f} {ratio(rc, pc):>8}")
PY
    done
  done
} | save

# Memory: RSS growth for KEYS keys of 16 bytes with 32-byte values.
python3 - "$KEYS" > "$WORK/load.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
v = b"v" * 32
for i in range(n):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$16\r\n" + k + b"\r\n$32\r\n" + v + b"\r\n")
PY
declare -A M
for server in redis pinion; do
  if [ "$server" = redis ]; then start_redis; port=$PORT_REDIS; else start_pinion; port=$PORT_PINION; fi
  before=$(rss_kb "$SERVER_PID")
  redis-cli -p "$port" --pipe < "$WORK/load.resp" >/dev/null
  n=$(redis-cli -p "$port" dbsize)
  [ "$n" = "$KEYS" ] || { echo "$server holds $n keys, expected $KEYS"; exit 1; }
  after=$(rss_kb "$SERVER_PID")
  M[$server]=$(( (after - before) * 1024 / KEYS ))
  stop_server
done
python3 - "${M[redis]}" "${M[pinion]}" "$KEYS" <<'PY' | save
import sys
r, p, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"RSS per key ({n} keys, 16 B keys, 32 B values): redis {r} B, pinion {p} B, ratio {p / r:.2f} (lower is better for pinion)")
PY

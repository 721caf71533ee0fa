#!/usr/bin/env bash
# pinion vs redis-server for the collection types, side by side on one machine, in one run.
#
# Throughput: redis-benchmark's lpush, lpop, sadd, spop, zadd, hset and lrange_100 tests,
# plus ZRANGEBYSCORE over a 1,000-member sorted set (LIMIT 0 10), at -c 50 with -P 1 and
# -P 16. Each server runs alone pinned to SERVER_CPU, the client on CLIENT_CPU; each case runs
# ROUNDS times alternating servers, and the median and the pinion/redis ratio are printed.
#
# Memory: benches/rss_types.py (RSS per element for every type) unless MEMORY=0.
#
#   benches/types_side_by_side.sh
#   ROUNDS=5 REQUESTS=1000000 OUT=results.txt benches/types_side_by_side.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-400000}
PORT_REDIS=${PORT_REDIS:-16379}
PORT_PINION=${PORT_PINION:-16380}
MEMORY=${MEMORY:-1}
OUT=${OUT:-}
TESTS=${TESTS:-lpush lpop sadd spop zadd hset lrange_100 zrangebyscore}

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
    --kafka-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --data-dir "$WORK/pinion" --log-level warn &
  SERVER_PID=$!
  wait_port "$PORT_PINION"
}
stop_server() { kill -TERM "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; }
wait_port() {
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "server on $1 did not start"; exit 1
}
save() { if [ -n "$OUT" ]; then tee -a "$OUT"; else cat; fi; }
median() { python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# One redis-benchmark run; prints ops/s.
bench() { # port test pipeline
  local args
  if [ "$2" = zrangebyscore ]; then
    args=(zrangebyscore bench:zset 100 600 LIMIT 0 10)
  else
    args=(-t "$2" -r 100000)
  fi
  taskset -c "$CLIENT_CPU" redis-benchmark -p "$1" -n "$REQUESTS" -c 50 -P "$3" -d 32 --csv \
    "${args[@]}" 2>/dev/null | python3 -c '
import csv, sys
rows = [r for r in csv.reader(sys.stdin)]
print(dict(zip(rows[0], rows[-1]))["rps"])'
}

# lpop/spop need something to pop and lrange_100 a list: redis-benchmark's own lpush/sadd
# runs fill them when they come first; zrangebyscore gets its 1,000 members here.
prepare() { # port
  python3 - "$1" <<'PY'
import sys, redis
r = redis.Redis(port=int(sys.argv[1]))
r.delete("bench:zset")
r.zadd("bench:zset", {f"member:{i}": i for i in range(1000)})
PY
}

declare -A R
for round in $(seq "$ROUNDS"); do
  for server in redis pinion; do
    if [ "$server" = redis ]; then start_redis; port=$PORT_REDIS; else start_pinion; port=$PORT_PINION; fi
    prepare "$port"
    for p in 1 16; do
      for t in $TESTS; do
        R[$server,$t,$p]+="$(bench "$port" "$t" "$p") "
      done
    done
    stop_server
  done
done

{
  echo "# pinion vs redis-server, collection types: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
  echo "# redis-benchmark -c 50 -n $REQUESTS -d 32; median ops/s of $ROUNDS rounds"
  printf '%-20s %12s %12s %8s\n' case redis_ops pinion_ops ratio
  for p in 1 16; do
    for t in $TESTS; do
      ro=$(median ${R[redis,$t,$p]}); po=$(median ${R[pinion,$t,$p]})
      python3 -c 'import sys; t, ro, po = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]); print(f"{t:<20} {ro:12.0f} {po:12.0f} {po / ro if ro else 0:8.2f}")' "$t -P$p" "$ro" "$po"
    done
  done
} | save

if [ "$MEMORY" = 1 ]; then
  python3 benches/rss_types.py --pinion "$PINION" | save
fi

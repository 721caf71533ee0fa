#!/usr/bin/env bash
# What a mesh hop costs the node: the same RESP load on a 2-shard pinion, once with every
# key owned by the shard the connection sits on (local: no hop) and once with every key
# owned by the other shard (remote: each command goes over the mesh and its reply comes
# back). pinion-bench's --placement picks the keys after asking CLIENT ID which shard each
# connection landed on, so the two runs differ in the hop and nothing else.
#
# For -P 1 and -P 16 (50 connections, GET:SET 4:1, keys prefilled so GETs hit) it prints
# the node's CPU time per command (µs, user + system of the whole process from /proc,
# divided by the commands the node counted in the same window), ops/s as pinion-bench
# measured it, and remote/local ratios. Each case runs ROUNDS times, local and remote
# alternating (which goes first alternates too), and medians are reported. The node's own
# mesh counter is read around every run as a check: remote must show about one mesh
# request per command, local about none.
#
# CPU per command is the figure to compare: it is the server's, wherever the client runs.
# ops/s also depends on the client, which shares CLIENT_CPUS with the node by default
# (this is written on a 2-CPU machine); it is the same client for local and remote.
#
#   benches/mesh_hop.sh                              # defaults below
#   ROUNDS=5 REQUESTS=4000000 benches/mesh_hop.sh
#   DUR=5 benches/mesh_hop.sh                        # 5 s per run instead of a count
#   OUT=results.txt benches/mesh_hop.sh              # also append the results to a file
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_CPUS=${SERVER_CPUS:-0,1}
CLIENT_CPUS=${CLIENT_CPUS:-0,1}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-2000000}
DUR=${DUR:-}
WARMUP=${WARMUP:-0.5}
CONNS=${CONNS:-50}
KEYSPACE=${KEYSPACE:-100000}
VALUE_BYTES=${VALUE_BYTES:-64}
PORT=${PORT:-16381}
ADMIN_PORT=${ADMIN_PORT:-16382}
KAFKA_PORT=${KAFKA_PORT:-16383}
OUT=${OUT:-}

for tool in redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install redis-tools python3)"; exit 1; }
done
SHARDS=$(python3 -c 'import sys; print(len(sys.argv[1].split(",")))' "$SERVER_CPUS")
[ "$SHARDS" -ge 2 ] || { echo "SERVER_CPUS=$SERVER_CPUS: a mesh needs at least 2 shards"; exit 1; }
cargo build --release -q -p pinion -p pinion-bench
PINION=target/release/pinion
BENCH=target/release/pinion-bench
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$PINION" --cores "$SERVER_CPUS" --resp-listen "127.0.0.1:$PORT" \
  --kafka-listen "127.0.0.1:$KAFKA_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  --data-dir "$WORK/pinion" --log-level warn &
SERVER_PID=$!
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$PORT" ping >/dev/null || { echo "pinion did not start on $PORT"; exit 1; }

save() { if [ -n "$OUT" ]; then tee -a "$OUT"; else cat; fi; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() {
  python3 - "$ADMIN_PORT" "$1" <<'PY'
import re, sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
print(re.search(rf"^{re.escape(sys.argv[2])} (\d+)", body, re.M).group(1))
PY
}
median() { python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# Every key the load draws, so GETs hit and both placements read values of one size.
python3 - "$KEYSPACE" "$VALUE_BYTES" > "$WORK/load.resp" <<'PY'
import sys
n, vb = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
v = b"x" * vb
for i in range(n):
    out.write(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$%d\r\n%s\r\n" % (i, vb, v))
PY
redis-cli -p "$PORT" --pipe < "$WORK/load.resp" >/dev/null
n=$(redis-cli -p "$PORT" dbsize)
[ "$n" = "$KEYSPACE" ] || { echo "pinion holds $n keys, expected $KEYSPACE"; exit 1; }

if [ -n "$DUR" ]; then LENGTH=(--duration "$DUR"); else LENGTH=(--requests "$REQUESTS"); fi

# One pinion-bench run; prints "ops_per_sec cpu_us_per_command mesh_requests_per_command".
run() { # pipeline placement
  local t0 c0 m0 t1 c1 m1
  t0=$(cpu_ticks "$SERVER_PID"); c0=$(metric pinion_commands_total); m0=$(metric pinion_mesh_requests_sent_total)
  "$BENCH" resp --addr "127.0.0.1:$PORT" --cores "$CLIENT_CPUS" --connections "$CONNS" \
    --pipeline "$1" --ratio 1:4 --keyspace "$KEYSPACE" --value-bytes "$VALUE_BYTES" \
    --warmup "$WARMUP" "${LENGTH[@]}" --placement "$2" --shards "$SHARDS" \
    --json "$WORK/run.json" --quiet >/dev/null
  t1=$(cpu_ticks "$SERVER_PID"); c1=$(metric pinion_commands_total); m1=$(metric pinion_mesh_requests_sent_total)
  python3 - "$WORK/run.json" "$t0" "$t1" "$c0" "$c1" "$m0" "$m1" <<'PY'
import json, os, sys
j = json.load(open(sys.argv[1]))
t0, t1, c0, c1, m0, m1 = map(int, sys.argv[2:])
assert j["errors"] == 0, f"pinion-bench saw errors: {j['first_error']}"
cmds = c1 - c0
print(j["ops_per_sec"], (t1 - t0) * 1e6 / os.sysconf("SC_CLK_TCK") / cmds, (m1 - m0) / cmds)
PY
}

declare -A R
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="local remote"; else order="remote local"; fi
  for p in 1 16; do
    for pl in $order; do
      read -r ops cpu mesh < <(run "$p" "$pl")
      R[$pl,$p,ops]+="$ops "
      R[$pl,$p,cpu]+="$cpu "
      R[$pl,$p,mesh]+="$mesh "
      echo "round $round -P $p $pl: $ops ops/s, $cpu µs CPU/command, $mesh mesh requests/command" >&2
    done
  done
done
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || { echo "pinion exited $?"; exit 1; }

{
  if [ -n "$DUR" ]; then what="$DUR s"; else what="$REQUESTS requests"; fi
  echo "# mesh hop: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -r), pinion $(git rev-parse --short HEAD) on CPUs $SERVER_CPUS ($SHARDS shards), pinion-bench on CPUs $CLIENT_CPUS"
  echo "# pinion-bench resp -c $CONNS --ratio 1:4 (GET:SET 4:1) --keyspace $KEYSPACE (prefilled) --value-bytes $VALUE_BYTES, $what after ${WARMUP} s warm-up; median of $ROUNDS rounds"
  printf '%-6s %12s %12s %8s %10s %10s %8s %9s %9s\n' case local_ops remote_ops ratio l_cpu_us r_cpu_us ratio l_mesh r_mesh
  for p in 1 16; do
    python3 - "$p" "$(median ${R[local,$p,ops]})" "$(median ${R[remote,$p,ops]})" \
      "$(median ${R[local,$p,cpu]})" "$(median ${R[remote,$p,cpu]})" \
      "$(median ${R[local,$p,mesh]})" "$(median ${R[remote,$p,mesh]})" <<'PY'
import sys
p = sys.argv[1]
lo, ro, lc, rc, lm, rm = map(float, sys.argv[2:])
print(f"{'-P ' + p:<6} {lo:12.0f} {ro:12.0f} {ro / lo:8.2f} {lc:10.3f} {rc:10.3f} {rc / lc:8.2f} {lm:9.3f} {rm:9.3f}")
PY
  done
  echo "# ratio = remote/local; *_mesh = mesh requests the node sent per command (expect ~0 local, ~1 remote)"
} | save

#!/usr/bin/env bash
# What `--shard-ports` saves the node (issue 12): the same redis-benchmark load (SET and GET,
# random keys over 2 shards) once on the plain port, where half the keys belong to the other
# shard and take the mesh hop, and once with `redis-benchmark --cluster` on the shard ports,
# where the client sends each key to its owning shard and nothing crosses the mesh.
#
# Prints, per run, the node's CPU time per command (ns: user + system of the whole process
# from /proc/PID/stat, divided by the commands the node counted in the same window) and the
# mesh requests sent (plain: about half the commands; cluster: 0), then the medians and the
# plain/cluster ratio. Runs alternate, ROUNDS of each. An idle node burns no CPU, so CPU per
# command is the server's cost whatever the client and the machine's other load do.
#
#   benches/shard_ports.sh
#   ROUNDS=5 REQUESTS=1000000 PIPELINE=1 benches/shard_ports.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${PINION_BIN:-target/release/pinion}
SERVER_CPUS=${SERVER_CPUS:-0,1}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-400000}
PIPELINE=${PIPELINE:-16}
CONNS=${CONNS:-32}
PORT=${PORT:-17479}
BASE=${BASE:-17480}
ADMIN=${ADMIN:-17644}

DATA=$(mktemp -d)
LOG=$DATA/pinion.log
"$BIN" --cores "$SERVER_CPUS" --resp-listen 127.0.0.1:$PORT --kafka-listen 127.0.0.1:0 \
  --admin-listen 127.0.0.1:$ADMIN --shard-ports $BASE --data-dir "$DATA/data" > "$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do grep -q "pinion ready" "$LOG" && break; sleep 0.1; done

cpu() { awk '{print $14 + $15}' /proc/$PID/stat; }   # clock ticks (USER_HZ = 100)
metric() { curl -s http://127.0.0.1:$ADMIN/metrics | awk -v m="$1" '$1 == m {print $2}'; }

declare -a PLAIN CLUSTER
run() { # label, redis-benchmark target flags...
  local label=$1; shift
  local c0 n0 m0 c1 n1 m1
  c0=$(cpu); n0=$(metric pinion_commands_total); m0=$(metric pinion_mesh_requests_sent_total)
  redis-benchmark "$@" -t set,get -n "$REQUESTS" -c "$CONNS" -P "$PIPELINE" -r 100000 -q > /dev/null
  c1=$(cpu); n1=$(metric pinion_commands_total); m1=$(metric pinion_mesh_requests_sent_total)
  local ns=$(( (c1 - c0) * 10000000 / (n1 - n0) ))
  echo "$label: $((n1 - n0)) commands, $((m1 - m0)) mesh requests, $ns ns CPU per command" >&2
  echo "$ns"
}
for _ in $(seq "$ROUNDS"); do
  PLAIN+=("$(run plain -p $PORT)")
  CLUSTER+=("$(run cluster --cluster -p $BASE)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median "${PLAIN[@]}"); c=$(median "${CLUSTER[@]}")
echo "pipeline $PIPELINE: plain port $p ns/command, --shard-ports (redis-benchmark --cluster) $c ns/command, ratio $(echo "scale=2; $p / $c" | bc)"

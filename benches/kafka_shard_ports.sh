#!/usr/bin/env bash
# What `--kafka-shard-ports` saves the node, and what it costs the client (issue 12).
#
# Two nodes of 2 shards run side by side: "node" is one Kafka endpoint (broker 0 leads every
# partition; a partition of the other shard takes the mesh hop), "shards" has
# --kafka-shard-ports (each shard its own broker leading what it owns, no hop). The same
# kcat (librdkafka) load runs against each in turn, alternating, ROUNDS of each: produce
# RECORDS records of SIZE bytes (no key: spread over PARTITIONS partitions) with
# `kcat -P`, then read them all back with `kcat -C -e`.
#
# Per run it prints, for produce and for fetch, the node's CPU time per record (ns: user +
# system of the whole process from /proc/PID/stat; an idle node burns none, so this is the
# server's cost whatever else the machine runs), records/s (wall clock, client included)
# and the mesh requests sent; then the medians and the node/shards ratios. Last, what a
# librdkafka client holds for each: its threads and its connections to the node.
#
# LINGER_MS and BATCH are the producer's linger.ms and batch.num.messages: the defaults make
# the large batches of a throughput producer (the hop is paid per batch, per shard); with
# LINGER_MS=0 BATCH=1 every record is its own Produce request, and pays the hop alone.
#
#   benches/kafka_shard_ports.sh
#   ROUNDS=5 RECORDS=2000000 benches/kafka_shard_ports.sh
#   ROUNDS=5 RECORDS=200000 LINGER_MS=0 BATCH=1 benches/kafka_shard_ports.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${PINION_BIN:-target/release/pinion}
SERVER_CPUS=${SERVER_CPUS:-0,1}
ROUNDS=${ROUNDS:-3}
RECORDS=${RECORDS:-400000}
SIZE=${SIZE:-100}
PARTITIONS=${PARTITIONS:-8}
LINGER_MS=${LINGER_MS:-5}
BATCH=${BATCH:-10000}
# Ports: node (resp, kafka, admin), shards (resp, kafka, admin, shard base).
P=${PORT_BASE:-18400}
N_RESP=$P N_KAFKA=$((P + 1)) N_ADMIN=$((P + 2))
S_RESP=$((P + 3)) S_KAFKA=$((P + 4)) S_ADMIN=$((P + 5)) S_BASE=$((P + 6))

DIR=$(mktemp -d)
start() { # name resp kafka admin extra...
  local name=$1 resp=$2 kafka=$3 admin=$4; shift 4
  "$BIN" --cores "$SERVER_CPUS" --resp-listen 127.0.0.1:$resp --kafka-listen 127.0.0.1:$kafka \
    --admin-listen 127.0.0.1:$admin --data-dir "$DIR/$name" "$@" > "$DIR/$name.log" 2>&1 &
  echo $!
}
NODE=$(start node $N_RESP $N_KAFKA $N_ADMIN)
SHARDS=$(start shards $S_RESP $S_KAFKA $S_ADMIN --kafka-shard-ports $S_BASE)
trap 'kill $NODE $SHARDS 2>/dev/null; wait $NODE $SHARDS 2>/dev/null; rm -rf "$DIR"' EXIT
for name in node shards; do
  for _ in $(seq 100); do grep -q "pinion ready" "$DIR/$name.log" && break; sleep 0.1; done
done

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # clock ticks (USER_HZ = 100)
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
now_ns() { date +%s%N; }

head -c $((RECORDS * SIZE)) /dev/zero | tr '\0' 'x' | fold -w "$SIZE" > "$DIR/records"
create() { # kafka-port topic
  python3 - "$1" "$2" "$PARTITIONS" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
port, t, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
a = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
a.create_topics([NewTopic(t, num_partitions=n, replication_factor=1)])[t].result(15)
EOF
}

declare -a NP NF SP SF NPR NFR SPR SFR
run() { # pid admin kafka label topic -> "produce_ns fetch_ns produce_rps fetch_rps"
  local pid=$1 admin=$2 kafka=$3 label=$4 topic=$5
  local c0 m0 t0 c1 m1 t1 c2 m2 t2
  create "$kafka" "$topic"
  c0=$(cpu "$pid"); m0=$(metric "$admin" pinion_mesh_requests_sent_total); t0=$(now_ns)
  kcat -P -b 127.0.0.1:$kafka -t "$topic" -X linger.ms="$LINGER_MS" -X batch.num.messages="$BATCH" -z none \
    < "$DIR/records"
  c1=$(cpu "$pid"); m1=$(metric "$admin" pinion_mesh_requests_sent_total); t1=$(now_ns)
  local got
  got=$(kcat -C -b 127.0.0.1:$kafka -t "$topic" -o beginning -e -q -f '\n' | wc -l)
  c2=$(cpu "$pid"); m2=$(metric "$admin" pinion_mesh_requests_sent_total); t2=$(now_ns)
  [ "$got" -ge "$RECORDS" ] || { echo "$label: read $got of $RECORDS records" >&2; exit 1; }
  local pns fns prps frps
  pns=$(( (c1 - c0) * 10000000 / RECORDS )); fns=$(( (c2 - c1) * 10000000 / RECORDS ))
  prps=$(( RECORDS * 1000000000 / (t1 - t0) )); frps=$(( RECORDS * 1000000000 / (t2 - t1) ))
  echo "$label: produce $pns ns CPU/record, $prps records/s, $((m1 - m0)) mesh requests; fetch $fns ns CPU/record, $frps records/s, $((m2 - m1)) mesh requests" >&2
  echo "$pns $fns $prps $frps"
}
for i in $(seq "$ROUNDS"); do
  read -r a b c d < <(run "$NODE" $N_ADMIN $N_KAFKA "one endpoint per node" "bench-$i")
  NP+=("$a"); NF+=("$b"); NPR+=("$c"); NFR+=("$d")
  read -r a b c d < <(run "$SHARDS" $S_ADMIN $S_KAFKA "--kafka-shard-ports   " "bench-$i")
  SP+=("$a"); SF+=("$b"); SPR+=("$c"); SFR+=("$d")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { echo "scale=2; $1 / $2" | bc; }
np=$(median "${NP[@]}"); nf=$(median "${NF[@]}"); sp=$(median "${SP[@]}"); sf=$(median "${SF[@]}")
npr=$(median "${NPR[@]}"); nfr=$(median "${NFR[@]}"); spr=$(median "${SPR[@]}"); sfr=$(median "${SFR[@]}")
echo "medians of $ROUNDS, $RECORDS records of $SIZE B over $PARTITIONS partitions, 2 shards, linger.ms $LINGER_MS, batch.num.messages $BATCH:"
echo "  produce: node $np ns CPU/record, shards $sp; CPU ratio node/shards $(ratio "$np" "$sp"); records/s node $npr, shards $spr (shards/node $(ratio "$spr" "$npr"))"
echo "  fetch:   node $nf ns CPU/record, shards $sf; CPU ratio node/shards $(ratio "$nf" "$sf"); records/s node $nfr, shards $sfr (shards/node $(ratio "$sfr" "$nfr"))"

# What the client holds: librdkafka threads and TCP connections to the node, after a
# produce that touched every partition.
for k in $N_KAFKA $S_KAFKA; do
  python3 - "$k" "$PARTITIONS" <<'EOF'
import os, subprocess, sys
from confluent_kafka import Producer
port, parts = sys.argv[1], int(sys.argv[2])
before = len(os.listdir("/proc/self/task"))
p = Producer({"bootstrap.servers": f"127.0.0.1:{port}"})
for i in range(parts):
    p.produce("bench-1", value=b"x", partition=i)
p.flush(15)
threads = len(os.listdir("/proc/self/task")) - before
ss = subprocess.run(["ss", "-tnp"], capture_output=True, text=True).stdout
conns = sum(1 for line in ss.splitlines() if f"pid={os.getpid()}," in line)
print(f"  client on :{port}: {threads} librdkafka threads, {conns} connections")
EOF
done

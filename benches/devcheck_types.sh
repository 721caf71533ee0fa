#!/bin/bash
# pinion vs redis-server per collection type on one pinned core (CPU 0), redis-benchmark on
# CPUs 8-15 with 4 threads; median of ROUNDS. For a bare 16-core host with no packages: DIR is
# the devcheck/ folder of ../shared/notes/scaling-16core.md (stripped pinion, redis-server,
# redis-benchmark and their libraries, run through the carried ld-linux).
#   OUT=dir bash benches/devcheck_types.sh devcheck
cd "${1:-devcheck}"; L=$PWD/lib
R=${OUT:-/tmp}/types.txt; : > $R
say() { echo "$@" | tee -a $R; }
ulimit -n 100000 2>/dev/null
wait_port() { for i in $(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
bench() { # port args...
  local p=$1; shift
  taskset -c 8-15 $L/ld-linux-x86-64.so.2 --library-path $L ./redis-benchmark -p $p --threads 4 -c 50 -n ${N:-500000} -d 32 --csv "$@" 2>/dev/null | awk -F'"' 'NR>1 && $2!="" {v=$4} END {print v}'
}
PORT=7300
for round in $(seq ${ROUNDS:-2}); do
 for server in redis pinion; do
  PORT=$((PORT+3))
  if [ $server = redis ]; then taskset -c 0 $L/ld-linux-x86-64.so.2 --library-path $L ./redis-server --port $PORT --save '' --appendonly no > /tmp/s.log 2>&1 & SP=$!
  else rm -rf /tmp/pt; $L/ld-linux-x86-64.so.2 --library-path $L ./pinion --cores 0 --resp-listen 127.0.0.1:$PORT --kafka-listen 127.0.0.1:$((PORT+1)) --admin-listen 127.0.0.1:0 --data-dir /tmp/pt --log-level warn > /tmp/s.log 2>&1 & SP=$!; fi
  wait_port $PORT || say "$server did not start"
  N=2000 bench $PORT -r 1000 zadd bench:zset __rand_int__ member:__rand_int__ >/dev/null
  for P in 1 16; do
   for t in lpush lpop sadd spop zadd hset lrange_100; do say "$round $server $t -P$P $(bench $PORT -P $P -r 100000 -t $t)"; done
   say "$round $server zrangebyscore -P$P $(bench $PORT -P $P zrangebyscore bench:zset 100 600 LIMIT 0 10)"
  done
  kill $SP; wait $SP 2>/dev/null
 done
done
say "== done"

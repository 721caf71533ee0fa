#!/usr/bin/env bash
# Run the packaged fuzz targets on every core of a bare host (no Rust, no registry): one
# libFuzzer process per core, the targets dealt round-robin over the cores, the processes of
# one target sharing its corpus folder (libFuzzer rereads it every second, -reload). Built
# and packaged on a development machine by `tools/fuzz.sh --package DIR` (copied there as
# DIR/fuzz.sh):
#
#   DIR/fuzz/bin/<target>      the instrumented fuzz binaries
#   DIR/fuzz/lib/              their shared libraries and ld-linux (they run through it, so
#                              the host's glibc does not matter)
#   DIR/fuzz/corpus/<target>/  the seed corpus
#
#   OUT=/tmp/out bash DIR/fuzz.sh DIR SECONDS [TARGET...]
#
# OUT receives results.txt (per target: processes, process-seconds, executions, execs/s,
# coverage, features, corpus size, crashes), artifacts/<target>/ (crash, timeout and oom
# inputs), logs/<target>-<n>.log, and corpus.tar.gz (seeds plus what was found; the working
# corpus lives in $WORK, default /tmp/pinion-fuzz, so OUT stays a few files). Exit status 1
# if anything crashed.
set -uo pipefail
DIR="$(cd "${1:?usage: OUT=dir fuzz.sh DIR SECONDS [TARGET...]}" && pwd)"
SECONDS_RUN="${2:?seconds}"
shift 2
OUT="${OUT:?set OUT to the results folder}"
F="$DIR/fuzz"
L="$F/lib"
if [ $# -gt 0 ]; then targets=("$@"); else
  # The issue's four first: dealt round-robin, the first targets get the spare cores.
  targets=()
  for t in kafka_request record_batch segment_recovery resp_parse control_map control_wire topic_config; do
    [ -x "$F/bin/$t" ] && targets+=("$t")
  done
fi
# CORES: how many processes (default: one per CPU; more share CPUs round-robin).
cores="${CORES:-$(nproc)}"
WORK="${WORK:-/tmp/pinion-fuzz}"
mkdir -p "$OUT/logs"
for t in "${targets[@]}"; do
  mkdir -p "$WORK/corpus/$t" "$OUT/artifacts/$t"
  cp -n "$F/corpus/$t/"* "$WORK/corpus/$t/" 2>/dev/null || true
done

start=$(date +%s)
pids=()
declare -A procs
for ((i = 0; i < cores; i++)); do
  t="${targets[$((i % ${#targets[@]}))]}"
  procs[$t]=$((${procs[$t]:-0} + 1))
  # A process that stops on a crash is started again for the time left (the crash input
  # stays in artifacts/), so a finding costs no core the rest of the run.
  pin=(env)
  command -v taskset >/dev/null && pin=(taskset -c "$((i % $(nproc)))")
  (
    end=$((start + SECONDS_RUN)); run=0
    while left=$((end - $(date +%s))); [ "$left" -gt 2 ]; do
      "${pin[@]}" "$L/ld-linux-x86-64.so.2" --library-path "$L" "$F/bin/$t" \
        -max_total_time="$left" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
        -seed=$((1000 + 100 * run + i)) -artifact_prefix="$OUT/artifacts/$t/" \
        "$WORK/corpus/$t" >>"$OUT/logs/$t-$i.log" 2>&1
      run=$((run + 1))
    done
  ) &
  pids+=($!)
done
echo "$cores processes over ${#targets[@]} targets for ${SECONDS_RUN}s"
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
elapsed=$(($(date +%s) - start))

{
  echo "# $(date -u +%FT%TZ) $(hostname) $(nproc) CPUs, ${SECONDS_RUN}s, wall ${elapsed}s"
  printf '%-18s %5s %8s %13s %9s %6s %7s %6s %s\n' target procs proc_s execs execs/s cov ft corp crashes
  for t in "${targets[@]}"; do
    [ -n "${procs[$t]:-}" ] || { echo "$t: no process (fewer processes than targets; set CORES)"; continue; }
    execs=0
    for log in "$OUT/logs/$t"-*.log; do
      n=$(awk -F: '/stat::number_of_executed_units/{gsub(/ /,"",$NF); s += $NF} END {print s + 0}' "$log")
      execs=$((execs + n))
    done
    # Coverage: the best any process of the target reached.
    cov=0; ft=0; corp=0
    for log in "$OUT/logs/$t"-*.log; do
      last=$(grep -E '^#[0-9]+' "$log" | tail -1)
      c=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last"); f=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
      k=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
      [ "${c:-0}" -gt "$cov" ] && cov=$c
      [ "${f:-0}" -gt "$ft" ] && ft=$f
      [ "${k:-0}" -gt "$corp" ] && corp=$k
    done
    crashes=$(find "$OUT/artifacts/$t" -type f | wc -l)
    cpu=$((${procs[$t]} * elapsed))
    printf '%-18s %5s %8s %13s %9s %6s %7s %6s %s\n' "$t" "${procs[$t]}" "$cpu" "$execs" \
      "$((execs / (elapsed > 0 ? elapsed * ${procs[$t]} : 1)))" "$cov" "$ft" "$corp" "$crashes"
    [ "$crashes" -gt 0 ] && failed=1
  done
} | tee "$OUT/results.txt"
tar -C "$WORK" -czf "$OUT/corpus.tar.gz" corpus
exit "$failed"

#!/usr/bin/env bash
# Coverage-guided fuzzing of pinion's parsers and decoders (libFuzzer through cargo-fuzz, on
# the stable toolchain: `--sanitizer none`, see docs/reliability.md, "Fuzzing").
#
#   tools/fuzz.sh --smoke                 # CI: build once, then every target for 60 s
#   tools/fuzz.sh --seconds 3600          # a long run: an hour per target, one after another
#   tools/fuzz.sh --seconds 600 resp_parse kafka_request
#   tools/fuzz.sh --build-only            # just the binaries
#   tools/fuzz.sh --package devcheck      # binaries, their libraries and the seeds for a
#                                         # bare many-core host: devcheck/fuzz/ and
#                                         # devcheck/fuzz.sh (tools/fuzz_parallel.sh)
#
# Each target starts from its seed corpus (fuzz/corpus/<target>, captured from real clients
# by tools/fuzz_capture.py) plus what earlier runs found (fuzz/work/corpus/<target>, not
# committed). Results, one line per target (executions, execs/s, coverage, features,
# corpus, peak RSS, crashes), go to fuzz/work/results.txt (or $RESULTS) and to stdout; a
# crash's input is kept in fuzz/work/artifacts/<target>/. Exit status 1 if any target
# crashed: reproduce with `<binary> <crash file>`, then make it a unit test in the crate
# it came from.
#
# Environment: CARGO_TARGET_DIR (where cargo-fuzz builds; default fuzz/target), FUZZ_WORK
# (default fuzz/work), RESULTS, FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail
cd "$(dirname "$0")/.."

# The cargo-fuzz release this was tested with; CI installs exactly it.
CARGO_FUZZ_VERSION=0.13.2
TARGETS_ALL=(resp_parse kafka_request record_batch segment_recovery control_wire control_map topic_config)

seconds=60
build_only=0
package=
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) seconds=60 ;;
    --seconds) seconds="$2"; shift ;;
    --build-only) build_only=1 ;;
    --package) package="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${TARGETS_ALL[@]}")

if ! cargo fuzz --version 2>/dev/null | grep -q "cargo-fuzz $CARGO_FUZZ_VERSION"; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# One build for every target. `--sanitizer none`: the only mode stable rustc supports
# (the sanitizers need -Zsanitizer, a nightly flag); coverage comes from the SanitizerCoverage
# pass (-Cpasses=sancov-module, -Cllvm-args), which stable accepts. Debug assertions (and so
# overflow checks) are on: an overflow on a length from the wire is a finding.
cargo fuzz build --sanitizer none --debug-assertions
bin_dir="${CARGO_TARGET_DIR:-fuzz/target}/x86_64-unknown-linux-gnu/release"
[ "$build_only" = 1 ] && { echo "built in $bin_dir"; exit 0; }
if [ -n "$package" ]; then
  # Everything travels: the binaries (debug info stripped, symbols kept for backtraces),
  # their shared libraries and ld-linux, the seeds, and the runner.
  p="$package/fuzz"
  rm -rf "$p" && mkdir -p "$p/bin" "$p/lib" "$p/corpus"
  for t in "${TARGETS_ALL[@]}"; do strip --strip-debug -o "$p/bin/$t" "$bin_dir/$t"; done
  for l in $(ldd "$p"/bin/* | awk '/=>/{print $3}' | sort -u) /lib64/ld-linux-x86-64.so.2; do
    cp -L "$l" "$p/lib/"
  done
  cp -r fuzz/corpus/. "$p/corpus/"
  cp tools/fuzz_parallel.sh "$package/fuzz.sh"
  du -sh "$p"
  echo "on the host: OUT=<folder> bash $package/fuzz.sh $package <seconds>"
  exit 0
fi

work="${FUZZ_WORK:-fuzz/work}"
results="${RESULTS:-$work/results.txt}"
mkdir -p "$work"
{
  echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?') ${seconds}s per target, $(nproc) CPUs, $(rustc --version)"
  printf '%-18s %12s %9s %7s %7s %6s %7s %s\n' target execs execs/s cov ft corp rss_mb crashes
} | tee -a "$results"

failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t" fuzz/corpus/"$t"
  log="$work/$t.log"
  stamp="$work/.start-$t"
  touch "$stamp"
  set +e
  # The first folder receives new inputs; the seed folder is only read.
  # shellcheck disable=SC2086
  "$bin_dir/$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts/$t/" ${FUZZ_ARGS:-} \
    "$work/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(awk -F: '/stat::number_of_executed_units/{gsub(/ /,"",$NF); print $NF}' "$log" | tail -1)
  rate=$(awk -F: '/stat::average_exec_per_sec/{gsub(/ /,"",$NF); print $NF}' "$log" | tail -1)
  rss=$(awk -F: '/stat::peak_rss_mb/{gsub(/ /,"",$NF); print $NF}' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  # What this run found (crash-, timeout- and oom- files; earlier runs' stay, not counted).
  crashes=$(find "$work/artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
    -newer "$stamp" | wc -l)
  printf '%-18s %12s %9s %7s %7s %6s %7s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
    "${ft:-?}" "${corp:-?}" "${rss:-?}" "$crashes" | tee -a "$results"
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    failed=1
    echo "--- $t exited $rc; the end of $log:" >&2
    tail -40 "$log" >&2
  fi
done
exit "$failed"

#!/usr/bin/env bash
# Redis 7.0.15's own test suite, with its unmodified runner, against pinion and against
# redis-server, unit by unit; then a table of passes side by side (docs/compatibility.md,
# "Redis 7.0.15 test suite", records the figures).
#
#   tools/redis-compat.sh                      # every unit, both servers
#   tools/redis-compat.sh type/list scripting  # only these units
#
# Each unit gets a fresh 1-shard pinion node and a fresh redis-server, and runs exactly
#   ./runtest --host 127.0.0.1 --port P --single unit/U --singledb --durable --ignore-encoding \
#     --tags -slow --tags -needs:debug --tags -needs:repl --tags -needs:save
# (with TERM=dumb, for plain logs) under a wall-clock limit, so a hang is reported as a hang. A server that dies during a unit
# is reported as a crash.
#
# Environment:
#   PINION_BIN     pinion binary (default: $CARGO_TARGET_DIR or target/, release then debug)
#   REDIS_SERVER   redis-server binary (default: redis-server on PATH; 7.0.15 is the reference)
#   REDIS_SRC      a redis source tree at tag 7.0.15 (only runtest and tests/ are used). Without
#                  it: $CACHE/redis-7.0.15 if present, else the tag from a git clone of
#                  redis/redis at $REDIS_GIT, else Debian's upstream tarball
#                  (redis_7.0.15.orig.tar.gz, fetched with apt-get source --download-only;
#                  Debian's patches are not applied). The tree's runner and tests must be the
#                  release's byte for byte; REDIS_SRC_ALLOW_MODIFIED=1 runs a modified one anyway
#                  (and the results say so).
#   REDIS_GIT      git repository holding tag 7.0.15 (default /work/.mirror/redis+redis/repo)
#   OUT            results folder (default /tmp/redis-compat/<timestamp>)
#   CACHE          where the source is kept between runs (default /tmp/redis-compat/src)
#   UNIT_TIMEOUT   wall-clock seconds per unit and server (default 900)
#   ONLY           "pinion" or "redis" to run one side only
#   RUNTEST_EXTRA  extra runner flags (default none), e.g. "--clients 1 --timeout 120"
#   DIAGNOSE=1     NOT the measured configuration: the private copy of the runner ignores the
#                  errors of its external-server set-up (FUNCTION FLUSH, and CONFIG GET/SET of a
#                  block's overrides), so a unit that the unmodified runner aborts at its start
#                  still shows which of its tests fail and why. summary.md says so.
#   TRACE=1        also runs each unit against redis-server through a recording proxy
#                  (tools/redis_compat_report.py proxy), to list per test the commands it
#                  sends; summary.md then counts the tests that need a command that pinion
#                  neither serves nor has planned (issue 10), which bounds the reachable ratio.
#
# Results: $OUT/summary.md (the table, hangs, crashes, aborts), $OUT/failures/<unit>.txt (the
# tests redis-server passes and pinion does not, each with its error), $OUT/{pinion,redis}/
# <unit>.log (the runner's output) and <unit>.server.log (the server's).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

REDIS_TAG=7.0.15
# sha256 over the sha256sum lines of runtest and every file under tests/ except tests/tmp,
# sorted by path, in redis's tag 7.0.15 (equal to Debian's redis_7.0.15.orig.tar.gz).
RUNNER_FINGERPRINT=4fd58bf42fc9fa6461a503fbda62dbb1844b13097f18bc0c384c3ea30a6cf48a
DEBIAN_ORIG_SHA256=4b1dc4ee6d622a09fff9c6777191209750fb5e5a725ef78ea012d6eef4c22982
DEFAULT_UNITS=(type/string type/incr type/hash type/list type/set type/zset expire keyspace
  protocol scan multi bitops info-command scripting)

CACHE="${CACHE:-/tmp/redis-compat/src}"
REDIS_GIT="${REDIS_GIT:-/work/.mirror/redis+redis/repo}"
UNIT_TIMEOUT="${UNIT_TIMEOUT:-900}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${OUT:-/tmp/redis-compat/$STAMP}"
ONLY="${ONLY:-}"
RUNTEST_EXTRA="${RUNTEST_EXTRA:-}"
DIAGNOSE="${DIAGNOSE:-0}"
TRACE="${TRACE:-0}"
UNITS=("$@")
[ ${#UNITS[@]} -gt 0 ] || UNITS=("${DEFAULT_UNITS[@]}")

say() { printf '%s\n' "$*" >&2; }
die() { say "redis-compat: $*"; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

fingerprint() {
  (cd "$1" && { printf 'runtest\0'; find tests -type f ! -path 'tests/tmp/*' -print0; } \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
}

# --- tools ---------------------------------------------------------------------------------
if ! command -v tclsh8.6 >/dev/null && ! command -v tclsh8.5 >/dev/null; then
  say "installing tcl (the test runner is Tcl)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcl >/dev/null
fi
command -v python3 >/dev/null || die "python3 is needed for the report"
command -v redis-cli >/dev/null || die "redis-cli is needed (apt-get install redis-tools)"

if [ -z "${PINION_BIN:-}" ]; then
  for d in "${CARGO_TARGET_DIR:-$ROOT/target}"/{release,debug}; do
    if [ -x "$d/pinion" ]; then PINION_BIN="$d/pinion"; break; fi
  done
fi
REDIS_SERVER="${REDIS_SERVER:-$(command -v redis-server || true)}"
if [ "$ONLY" != redis ]; then
  [ -n "${PINION_BIN:-}" ] && [ -x "$PINION_BIN" ] \
    || die "no pinion binary: cargo build --release -p pinion, or set PINION_BIN"
fi
if [ "$ONLY" != pinion ]; then
  [ -n "$REDIS_SERVER" ] && [ -x "$REDIS_SERVER" ] \
    || die "no redis-server: apt-get install redis-server, or set REDIS_SERVER"
fi

# --- the redis source at 7.0.15 ------------------------------------------------------------
fetch_source() { # -> prints the path of a tree whose runner is the release's
  local dest="$CACHE/redis-$REDIS_TAG"
  if [ -n "${REDIS_SRC:-}" ]; then
    [ -x "$REDIS_SRC/runtest" ] && [ -d "$REDIS_SRC/tests" ] || die "REDIS_SRC=$REDIS_SRC has no runtest and tests/"
    echo "$REDIS_SRC"; return
  fi
  if [ -d "$dest/tests" ]; then echo "$dest"; return; fi
  mkdir -p "$CACHE"
  local tmp; tmp="$(mktemp -d "$CACHE/.fetch.XXXXXX")"
  if git -C "$REDIS_GIT" rev-parse -q --verify "refs/tags/$REDIS_TAG" >/dev/null 2>&1; then
    say "redis $REDIS_TAG source: git archive from $REDIS_GIT"
    git -C "$REDIS_GIT" archive --prefix="redis-$REDIS_TAG/" "$REDIS_TAG" | tar -x -C "$tmp"
  else
    say "redis $REDIS_TAG source: Debian's upstream tarball (apt-get source --download-only redis)"
    local apt="$tmp/apt"
    mkdir -p "$apt/lists/partial"
    printf 'deb-src http://deb.debian.org/debian-security bookworm-security main\ndeb-src http://deb.debian.org/debian bookworm main\n' >"$apt/src.list"
    local o=(-o "Dir::Etc::SourceList=$apt/src.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$apt/lists")
    if apt-get "${o[@]}" update -qq >/dev/null 2>&1 \
      && (cd "$apt" && apt-get "${o[@]}" source --download-only -qq "redis=5:$REDIS_TAG-*" >/dev/null 2>&1 \
        || apt-get "${o[@]}" source --download-only -qq redis >/dev/null 2>&1) \
      && [ -f "$apt/redis_$REDIS_TAG.orig.tar.gz" ] \
      && echo "$DEBIAN_ORIG_SHA256  $apt/redis_$REDIS_TAG.orig.tar.gz" | sha256sum -c --quiet; then
      tar -xzf "$apt/redis_$REDIS_TAG.orig.tar.gz" -C "$tmp"
    else
      rm -rf "$tmp"
      die "could not get the redis $REDIS_TAG source. Get it with any of:
  git clone --branch $REDIS_TAG --depth 1 https://github.com/redis/redis /tmp/redis-$REDIS_TAG
  curl -L https://download.redis.io/releases/redis-$REDIS_TAG.tar.gz | tar -xz -C /tmp
  git -C <a clone of redis/redis> archive --prefix=redis-$REDIS_TAG/ $REDIS_TAG | tar -x -C /tmp
then rerun with REDIS_SRC=/tmp/redis-$REDIS_TAG"
    fi
  fi
  rm -rf "$dest"
  mv "$tmp/redis-$REDIS_TAG" "$dest"
  rm -rf "$tmp"
  echo "$dest"
}

SRC="$(fetch_source)"
FP="$(fingerprint "$SRC")"
MODIFIED=0
if [ "$FP" != "$RUNNER_FINGERPRINT" ]; then
  if [ "${REDIS_SRC_ALLOW_MODIFIED:-0}" = 1 ]; then
    MODIFIED=1
    say "WARNING: $SRC's runner or tests differ from redis $REDIS_TAG's; results are not comparable"
  else
    die "$SRC's runtest or tests/ differ from redis $REDIS_TAG's (fingerprint $FP).
The suite is run unmodified; use a pristine tree (unset REDIS_SRC to fetch one), or set
REDIS_SRC_ALLOW_MODIFIED=1 to run it anyway."
  fi
fi

# The runner writes under tests/tmp: run it from a private copy of runtest and tests/.
mkdir -p "$OUT/failures"
RUNNER="$OUT/runner"
mkdir -p "$RUNNER"
cp -a "$SRC/runtest" "$SRC/tests" "$RUNNER/"
if [ "$DIAGNOSE" = 1 ]; then
  # Not the measured configuration: lets a unit run past the external-server set-up that an
  # incomplete server refuses (FUNCTION FLUSH, CONFIG SET of a block's overrides), so the
  # failures of the tests themselves show. Three lines of tests/support/server.tcl.
  f="$RUNNER/tests/support/server.tcl"
  sed -i -e 's/^    r function flush$/    catch {r function flush} ;# DIAGNOSE/' \
    -e 's/^        dict set saved_config \$param \[lindex \[r config get \$param\] 1\]$/        catch {dict set saved_config $param [lindex [r config get $param] 1]} ;# DIAGNOSE/' \
    -e 's/^        r config set \$param \$val$/        catch {r config set $param $val} ;# DIAGNOSE/' "$f"
  [ "$(grep -c ';# DIAGNOSE' "$f")" = 4 ] || die "DIAGNOSE: $f is not the 7.0.15 text expected"
  MODIFIED=diagnose
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- servers -------------------------------------------------------------------------------
SERVER_PID=""
start_pinion() { # dir -> sets PORT, SERVER_PID
  local dir="$1"
  PORT="$(free_port)"
  local kport aport
  kport="$(free_port)"; aport="$(free_port)"
  mkdir -p "$dir/data"
  "$PINION_BIN" --cores 0 --resp-listen "127.0.0.1:$PORT" --kafka-listen "127.0.0.1:$kport" \
    --admin-listen "127.0.0.1:$aport" --data-dir "$dir/data" >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "$dir/server.log" "pinion ready"
}

start_redis() { # dir -> sets PORT, SERVER_PID
  local dir="$1"
  PORT="$(free_port)"
  mkdir -p "$dir/data"
  "$REDIS_SERVER" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir/data" \
    >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "$dir/server.log" "Ready to accept connections"
}

PROXY_PID=""
start_trace() { # dir -> redis-server behind the recording proxy; sets PORT, SERVER_PID
  local dir="$1"
  start_redis "$dir"
  local target="$PORT"
  # redis-server's commands and subcommands: a test that sends an unknown one on purpose
  # does not need it.
  { redis-cli -p "$target" command list; redis-cli -p "$target" --raw command | grep -E '^[a-z_-]+\|[a-z_-]+$'; } \
    | tr 'a-z|' 'A-Z ' | sort -u >"$OUT/redis-commands.txt" 2>/dev/null || true
  PORT="$(free_port)"
  python3 "$ROOT/tools/redis_compat_report.py" proxy "$PORT" "$target" "$dir/trace.log" \
    2>"$dir/proxy.log" &
  PROXY_PID=$!
  local i
  for i in $(seq 1 100); do
    [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && return
    sleep 0.05
  done
  die "trace proxy on $PORT not ready"
}

wait_ready() { # log, line
  local i
  for i in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$1" >&2; die "server exited at start"; }
    if grep -q "$2" "$1" 2>/dev/null && [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ]; then return; fi
    sleep 0.05
  done
  die "server on $PORT not ready after 15 s"
}

stop_server() { # sets END: "ok", "crashed (exit status N)" or "did not stop on SIGTERM"
  local st=0 i
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    wait "$SERVER_PID" || st=$?
    END="crashed (exit status $st)"
  else
    kill -TERM "$SERVER_PID"
    END="did not stop on SIGTERM"
    for i in $(seq 1 200); do
      if ! kill -0 "$SERVER_PID" 2>/dev/null; then END=ok; break; fi
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" || true
  fi
  SERVER_PID=""
}
cleanup() {
  [ -z "$SERVER_PID" ] || kill -KILL "$SERVER_PID" 2>/dev/null || true
  [ -z "$PROXY_PID" ] || kill -TERM "$PROXY_PID" 2>/dev/null || true
}
trap cleanup EXIT

# --- the units -----------------------------------------------------------------------------
SIDES=(redis pinion)
[ -n "$ONLY" ] && SIDES=("$ONLY")
[ "$TRACE" = 1 ] && [ "$ONLY" != pinion ] && SIDES+=(trace)
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "redis_src=$SRC fingerprint=$FP modified=$MODIFIED"
  [ "$ONLY" = pinion ] || echo "redis_server=$REDIS_SERVER version=$("$REDIS_SERVER" --version)"
  if [ "$ONLY" != redis ]; then
    echo "pinion_bin=$PINION_BIN"
    echo "pinion_version=$("$PINION_BIN" --version) tree=$ROOT commit=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
  fi
  echo "unit_timeout=$UNIT_TIMEOUT runtest_extra=$RUNTEST_EXTRA"
} >"$OUT/meta.txt"

for unit in "${UNITS[@]}"; do
  for side in "${SIDES[@]}"; do
    name="${unit//\//_}"
    dir="$OUT/$side/$name"
    mkdir -p "$dir"
    "start_$side" "$dir"
    if [ "$side" = pinion ] && [ ! -f "$OUT/pinion/commands.txt" ]; then
      redis-cli -p "$PORT" command list >"$OUT/pinion/commands.txt" 2>/dev/null || true
    fi
    # shellcheck disable=SC2086
    cmd=(./runtest --host 127.0.0.1 --port "$PORT" --single "unit/$unit" --singledb --durable
      --ignore-encoding --tags -slow --tags -needs:debug --tags -needs:repl --tags -needs:save
      $RUNTEST_EXTRA)
    base=("${cmd[@]}")
    say "== $side unit/$unit (port $PORT)"
    t0=$(date +%s)
    for try in 1 2 3 4 5; do
      echo "${cmd[*]}" >"$dir/command.txt"
      st=0
      (cd "$RUNNER" && TERM=dumb timeout -k 10 "$UNIT_TIMEOUT" "${cmd[@]}" </dev/null >"$dir/runtest.log" 2>&1) || st=$?
      # The runner's own control socket (port 21079 and up) collides with another runner's
      # on this machine now and then: its free-port probe binds 0.0.0.0, its listener
      # 127.0.0.1. Then nothing ran; run again with that socket moved (--baseport moves only
      # the runner's own ports, and command.txt records it).
      grep -qE "couldn't open socket: address already in use|Can't find a non busy port" "$dir/runtest.log" \
        && ! grep -q '^Testing unit/' "$dir/runtest.log" || break
      say "   the runner's control port was busy (try $try); again with another --baseport"
      cmd=("${base[@]}" --baseport $((22000 + (RANDOM % 400) * 40)))
      sleep $((1 + RANDOM % 5))
    done
    t1=$(date +%s)
    stop_server
    if [ -n "$PROXY_PID" ]; then kill -TERM "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=""; fi
    {
      echo "exit=$st"
      echo "seconds=$((t1 - t0))"
      [ "$st" = 124 ] || [ "$st" = 137 ] && echo "hang=1"
      echo "server=$END"
    } >"$dir/status.txt"
    # The runner's own tests/tmp leftovers belong to this run only.
    rm -rf "$RUNNER/tests/tmp/"server.* "$RUNNER/tests/tmp/"redis.conf.* 2>/dev/null || true
    say "   $(grep -c '^\[ok\]' "$dir/runtest.log" || true) passed, $(grep -c '^\[err\]' "$dir/runtest.log" || true) errors, runner exit $st, $((t1 - t0)) s, server: $END"
  done
done

python3 "$ROOT/tools/redis_compat_report.py" "$OUT" "${UNITS[@]}"
say "results: $OUT"

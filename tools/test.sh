#!/usr/bin/env bash
# The whole test suite, from a fresh Linux machine: installs what it needs (redis-tools,
# redis-server, kcat, strace, Python clients for Redis and Kafka), then runs format and lint checks, unit tests, criterion
# benches in test mode, a 60 s fuzz smoke per fuzz target, and the integration tests against
# the real binary.
#
#   tools/test.sh            # everything
#   tools/test.sh -k auth    # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "installing test dependencies"
need_apt=()
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-benchmark >/dev/null || need_apt+=(redis-tools)
command -v kcat >/dev/null || need_apt+=(kcat)
# test_log.py attaches strace to check the shards make no blocking file calls.
command -v strace >/dev/null || need_apt+=(strace)
# test_tls.py makes its CA and certificates with the openssl CLI.
command -v openssl >/dev/null || need_apt+=(openssl)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
# The embedded Lua (mlua, vendored Lua 5.1) is compiled from C.
command -v cc >/dev/null || need_apt+=(gcc libc6-dev)
# pinion-control's etcd store: etcd-client compiles etcd's .proto files with protoc, and
# test_control_etcd.py runs a real etcd.
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
command -v etcd >/dev/null || need_apt+=(etcd-server)
# pinion-bench's PNG/SVG plots draw their labels with DejaVu Sans.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
# tests/test_disk_faults.py (as root): loop devices, ext4, and device-mapper where the kernel has it
command -v dmsetup >/dev/null || need_apt+=(dmsetup)
command -v mkfs.ext4 >/dev/null || need_apt+=(e2fsprogs)
command -v losetup >/dev/null || need_apt+=(mount)
if [ ${#need_apt[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The redis-server package starts a service on 6379; tests use their own ports, but stop it
# so the README's first command finds its port free.
as_root service redis-server stop >/dev/null 2>&1 || true
# The same for etcd-server's service on 2379 (test_control_etcd.py starts its own etcd).
as_root service etcd stop >/dev/null 2>&1 || true
PY_DEPS=("redis>=5" "pytest>=7" "kafka-python>=2.2" "confluent-kafka>=2.3")
python3 - <<'PY' || python3 -m pip install -q --disable-pip-version-check "${PY_DEPS[@]}" 2>/dev/null || python3 -m pip install -q --break-system-packages "${PY_DEPS[@]}"
import redis, pytest, kafka, confluent_kafka  # noqa: F401
PY
# test_groups.py drives kafkajs (Node.js) as a group consumer (issue 11).
if ! command -v npm >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
[ -d tests/js/node_modules/kafkajs ] || npm install --prefix tests/js --no-audit --no-fund --silent
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "unit tests"
cargo test --workspace --quiet

step "criterion benches (test mode: each runs once)"
cargo bench --workspace --quiet -- --test

step "release build"
cargo build --release -p pinion -p pinion-bench
export PINION_BIN="$PWD/target/release/pinion"
export PINION_BENCH_BIN="$PWD/target/release/pinion-bench"
# The control plane (test_control.py).
cargo build --release -p pinion-control
export PINION_CONTROL_BIN="$PWD/target/release/pinion-control"

# --- fuzz smoke (issue 13, item 3; tools/fuzz.sh, docs/testing.md "Fuzzing") ---
# cargo-fuzz (pinned, installed --locked by tools/fuzz.sh) builds the seven libFuzzer targets
# once on the stable toolchain (--sanitizer none), then each runs 60 s from its seed corpus.
# A crash fails the suite; its input is in fuzz/work/artifacts/<target>/.
# PINION_SKIP_FUZZ=1 skips it (a local rerun of the rest).
if [ "${PINION_SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzz smoke (60 s per target)"
  command -v c++ >/dev/null || { as_root apt-get update -qq; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null; }
  cargo fmt --manifest-path fuzz/Cargo.toml -- --check
  tools/fuzz.sh --smoke
fi
# --- end of the fuzz smoke ---

step "integration tests"
cd tests
python3 -m pytest -q -p no:cacheprovider "$@"

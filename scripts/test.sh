#!/usr/bin/env bash
# Installs what the tests need, builds release binaries, lints, runs every test (unit, integration,
# bench smoke). Everything uses the release profile, so RocksDB is compiled once; the target dir
# lives outside the clone so clones and CI runs share it.
#   CARGO_TARGET_DIR      default $HOME/.cache/rockslot-target
#   ROCKSLOT_MEMTEST_GB   data loaded by the memory test (default 3)
#   ROCKSLOT_FULLSYNC_GB  data fully synced to a new replica by the failover tests (default 2)
#   extra arguments are passed to the test binaries (e.g. a test name filter)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rockslot-target}"

cargo build --release --bins
# Lints are part of the suite: a warning fails the run.
cargo clippy --release --all-targets -- -D warnings
# Unit tests, binaries' tests and the integration tests (tests/it), two at a time.
cargo test --release --lib --bins --tests -- --test-threads 2 "$@"
# Benchmarks run once each in test mode (criterion rejects libtest's --test-threads).
if [ "$#" -eq 0 ]; then
    cargo test --release --benches
fi

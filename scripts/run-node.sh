#!/usr/bin/env bash
# Builds rockslot (release) and runs one node in the foreground with conf/rockslot.conf:
# port 7000, password "valkey", data in ./data/7000. Ctrl-C stops it (graceful shutdown).
# Extra arguments are config overrides, e.g. `scripts/run-node.sh --port 7001 --dir ./data/7001`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rockslot-target}"
cargo build --release --bins
mkdir -p data/7000

echo "rockslot: starting one node on 127.0.0.1:7000 (data in ./data/7000)"
echo "rockslot: connect with:  redis-cli -p 7000 -a valkey"
exec "$CARGO_TARGET_DIR/release/rockslot-server" conf/rockslot.conf "$@"

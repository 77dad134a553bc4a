#!/usr/bin/env bash
# The fault campaign, long form: scripts/chaos.sh [SECONDS] [SEED]
# Runs tests/it/chaos.rs (a 3x2 cluster in synchronous mode under writers, with SIGKILLs of
# primaries and replicas, SIGSTOPs, manual failovers and native slot migrations chosen from
# SEED) for SECONDS of faults (default 1800), then checks that no acknowledged write is lost,
# every slot has one owner and every replica holds its primary's keys. Prints each fault and
# a summary line: operations, acknowledged, lost, faults by kind, and the seed to replay.
# The test suite runs the same campaign for 60 s with a fresh seed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-1800}"
seed="${2:-$(date +%s%N)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rockslot-target}"
cargo build --release --bins
ROCKSLOT_CHAOS_SECS="$secs" ROCKSLOT_CHAOS_SEED="$seed" \
    cargo test --release --test it chaos:: -- --nocapture --test-threads 1

#!/usr/bin/env bash
# The fault campaign, long form: scripts/chaos.sh [SECONDS] [SEED] [sync|default|both]
# Runs tests/it/chaos.rs (a 3x2 cluster under writers, with SIGKILLs of primaries and replicas,
# bus partitions, SIGSTOPs, manual failovers, native and legacy slot migrations and slot
# backups restored in place, chosen from SEED) for SECONDS of faults (default 1800) in the
# synchronous mode (no acknowledged write may be lost), the default mode (losses counted, each
# inside a failover window) or both one after the other (the default). Each checks that every
# slot has one owner and every replica holds exactly its primary's data. Prints each fault and a summary line per mode: operations,
# acknowledged, lost, faults by kind, and the seed to replay.
# The test suite runs the same campaigns for 60 s (synchronous) and 30 s (default).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-1800}"
seed="${2:-$(date +%s%N)}"
case "${3:-both}" in
    sync) filter=chaos_campaign_sync ;;
    default) filter=chaos_campaign_default ;;
    both) filter=chaos:: ;;
    *) echo "usage: scripts/chaos.sh [SECONDS] [SEED] [sync|default|both]" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rockslot-target}"
cargo build --release --bins
ROCKSLOT_CHAOS_SECS="$secs" ROCKSLOT_CHAOS_SEED="$seed" \
    cargo test --release --test it "$filter" -- --nocapture --test-threads 1

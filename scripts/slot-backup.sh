#!/usr/bin/env bash
# Backs up hash slots of a running rockslot cluster into a directory.
#
#   scripts/slot-backup.sh HOST:PORT DIR [SLOTS...] [-a PASSWORD]
#
#   HOST:PORT  any node of the cluster
#   DIR        where the backup goes (created; must not hold a backup already)
#   SLOTS      slot ranges like 0-8191 or 0-100,200-300 (default: all 16384 slots)
#   -a PASS    the cluster's password (default: $REDISCLI_AUTH, else none)
#
# Each primary owning requested slots streams a consistent snapshot of them; DIR gets one SST
# file per slot-range family and, written last, a manifest with per-file sizes and SHA-1
# checksums (a directory without a manifest is a partial backup). Client traffic is not
# paused. Runs `rockslot-cli --cluster backup HOST:PORT --out DIR [--slots ...]`.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}
case "${1:-}" in -h | --help | help | "") usage; exit 0 ;; esac

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rockslot-target}"
CLI="$CARGO_TARGET_DIR/release/rockslot-cli"
[ -x "$CLI" ] || { echo "slot-backup.sh: $CLI not built (cargo build --release)" >&2; exit 1; }

seed="$1"; dir="${2:?DIR missing (see --help)}"; shift 2
pass="${REDISCLI_AUTH:-}"
slots=()
while [ $# -gt 0 ]; do
    case "$1" in
        -a) pass="${2:?-a needs a password}"; shift 2 ;;
        *) slots+=(--slots "$1"); shift ;;
    esac
done
auth=()
[ -n "$pass" ] && auth=(-a "$pass" --no-auth-warning)
exec "$CLI" "${auth[@]}" --cluster backup "$seed" --out "$dir" "${slots[@]}"

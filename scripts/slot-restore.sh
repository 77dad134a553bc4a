#!/usr/bin/env bash
# Restores a slot backup (see slot-backup.sh) into a running rockslot cluster, whatever its
# layout: each slot's data goes to the primary that owns it now.
#
#   scripts/slot-restore.sh HOST:PORT DIR [SLOTS...] [--replace] [-a PASSWORD]
#
#   HOST:PORT  any node of the target cluster
#   DIR        a backup directory
#   SLOTS      restore only these slot ranges (0-100,200-300; default: all in the backup)
#   --replace  overwrite keys that already exist (without it, any collision aborts the whole
#              restore before anything changes)
#   -a PASS    the cluster's password (default: $REDISCLI_AUTH, else none)
#
# The manifest and every file's size and checksum are verified before any node is touched; a
# damaged or partial backup is refused naming the file. Expired keys stay expired.
# Runs `rockslot-cli --cluster restore HOST:PORT --from DIR [--slots ...] [--replace]`.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}
case "${1:-}" in -h | --help | help | "") usage; exit 0 ;; esac

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rockslot-target}"
CLI="$CARGO_TARGET_DIR/release/rockslot-cli"
[ -x "$CLI" ] || { echo "slot-restore.sh: $CLI not built (cargo build --release)" >&2; exit 1; }

seed="$1"; dir="${2:?DIR missing (see --help)}"; shift 2
pass="${REDISCLI_AUTH:-}"
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        -a) pass="${2:?-a needs a password}"; shift 2 ;;
        --replace) extra+=(--replace); shift ;;
        *) extra+=(--slots "$1"); shift ;;
    esac
done
auth=()
[ -n "$pass" ] && auth=(-a "$pass" --no-auth-warning)
exec "$CLI" "${auth[@]}" --cluster restore "$seed" --from "$dir" "${extra[@]}"

#!/usr/bin/env bash
# Larger-than-RAM benchmark: loads DATA_GB of incompressible values into one rockslot-server
# whose block cache is CACHE (default 1 GB for 20 GB of data, a 1:20 ratio; scale
# DATA_GB down where the disk or the time is short), then runs redis-benchmark random GET and
# SET over the whole keyspace and prints requests/s, p50/p99 latency, RSS and the data size on
# disk. The keys are `key:%012d`, the names redis-benchmark's `-r` produces, so every GET hits
# a loaded key.
#
# Environment:
#   DATA_GB      value bytes to load, in GB (default 20)
#   VALUE_SIZE   bytes per value (default 1000)
#   CACHE        storage-block-cache-size (default 1gb)
#   REQUESTS     requests per redis-benchmark run (default 200000)
#   SETTLE_TIMEOUT  seconds to wait for the load's compactions before measuring (default 1800)
#   KEEP         1 = keep the temporary directory
#   CARGO_TARGET_DIR  where the release binary is (default ~/.cache/rockslot-target); this
#                script does not build
#
# Quick run:  DATA_GB=2 CACHE=128mb scripts/bench-big.sh
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    "") ;;
    *) echo "bench-big.sh: no arguments expected (see --help)" >&2; exit 2 ;;
esac

DATA_GB="${DATA_GB:-20}"
VALUE_SIZE="${VALUE_SIZE:-1000}"
CACHE="${CACHE:-1gb}"
REQUESTS="${REQUESTS:-200000}"
LOAD_TIMEOUT=3600
die() { echo "bench-big.sh: $*" >&2; exit 1; }
[[ "$DATA_GB" =~ ^[0-9]+$ ]] && [ "$DATA_GB" -ge 1 ] || die "DATA_GB must be a whole number >= 1"
[[ "$VALUE_SIZE" =~ ^[0-9]+$ ]] && [ "$VALUE_SIZE" -ge 16 ] || die "VALUE_SIZE must be >= 16"
KEYS=$((DATA_GB * 1000000000 / VALUE_SIZE))

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rockslot-target}"
BIN="$CARGO_TARGET_DIR/release/rockslot-server"
[ -x "$BIN" ] || die "no $BIN; build it (cargo build --release --bins)"
command -v redis-benchmark >/dev/null || die "needs redis-benchmark (scripts/setup.sh)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/rockslot-bench-big.XXXXXX")"
PID=""
cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "bench-big.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free=$(df -Pk "$TMP" | awk 'NR == 2 { print $4 }')
[ "$free" -gt $((DATA_GB * 1000000 * 3 / 2)) ] || die "needs about $((DATA_GB * 3 / 2)) GB free in $TMP"

PORT=""
for _ in $(seq 200); do
    p=$((21000 + RANDOM % 8000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; then
        PORT=$p
        break
    fi
done
[ -n "$PORT" ] || die "no free port"

"$BIN" --bind 127.0.0.1 --port "$PORT" --dir "$TMP/data" --appendfsync everysec \
    --storage-block-cache-size "$CACHE" >"$TMP/server.log" 2>&1 &
PID=$!
for _ in $(seq 300); do
    [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ] && break
    kill -0 "$PID" 2>/dev/null || { tail -20 "$TMP/server.log" >&2; die "server exited"; }
    sleep 0.1
done

rss() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$PID/status"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

echo "loading $KEYS keys of $VALUE_SIZE random bytes ($DATA_GB GB), block cache $CACHE ..." >&2
t=$(now)
# Random base64 values (incompressible for LZ4), streamed as RESP into redis-cli --pipe.
python3 - "$KEYS" "$VALUE_SIZE" <<'PY' | timeout "$LOAD_TIMEOUT" redis-cli -p "$PORT" --pipe >"$TMP/load.out" 2>&1 || { tail -5 "$TMP/load.out" >&2; die "load failed"; }
import base64, os, sys
n, size = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
hdr = b"$%d\r\n" % size
raw = size * 3 // 4 + 3
batch = 10000
for start in range(0, n, batch):
    m = min(batch, n - start)
    blob = base64.b64encode(os.urandom(raw * m))
    parts = []
    for j in range(m):
        k = b"key:%012d" % (start + j)
        parts.append(b"*3\r\n$3\r\nSET\r\n$16\r\n%s\r\n%s%s\r\n" % (k, hdr, blob[j * size:(j + 1) * size]))
    out.write(b"".join(parts))
PY
LOAD_S=$(since "$t")
grep -q "errors: 0, replies: $KEYS\$" "$TMP/load.out" || { cat "$TMP/load.out" >&2; die "load reported errors"; }
RSS_LOAD=$(rss)
echo "loaded in $LOAD_S s; RSS $RSS_LOAD MiB" >&2

# Settle: the load leaves compactions behind; measure once the server has used less than 5%
# of a core for a second (at most SETTLE_TIMEOUT), so reads do not compete with them.
SETTLE_TIMEOUT="${SETTLE_TIMEOUT:-1800}"
hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
t=$(now)
deadline=$((SECONDS + SETTLE_TIMEOUT))
while [ "$SECONDS" -lt "$deadline" ]; do
    a=$(ticks)
    sleep 1
    b=$(ticks)
    [ $((b - a)) -le $((hz * 5 / 100)) ] && break
done
SETTLE_S=$(since "$t")
DISK_MB=$(du -sm "$TMP/data" | cut -f1)
echo "compactions settled after $SETTLE_S s; $DISK_MB MB on disk" >&2

# One redis-benchmark run: "rps p50 p99" from its latency summary.
run() { # test pipeline
    redis-benchmark -p "$PORT" -t "$1" -r "$KEYS" -d "$VALUE_SIZE" -n "$REQUESTS" -c 50 -P "$2" 2>&1 \
        | tr '\r' '\n' | awk '
            /throughput summary/ { rps = $3 }
            /latency summary/ { getline; getline; p50 = $3; p99 = $5 }
            END { print rps, p50, p99 }'
}
ROWS=()
for p in 1 16; do
    for t in get set; do
        read -r rps p50 p99 <<<"$(run "$t" "$p")"
        ROWS+=("$(printf '| %-4s | %2s | %10s | %8s | %8s | %8s |' "${t^^}" "$p" "$rps" "$p50" "$p99" "$(rss)")")
    done
done

echo
echo "Larger than RAM: $KEYS keys, $VALUE_SIZE-byte random values ($DATA_GB GB, $DISK_MB MB on disk), block cache $CACHE"
echo "load: $LOAD_S s with redis-cli --pipe (compactions done $SETTLE_S s later), RSS after load $RSS_LOAD MiB"
echo "| test | -P | requests/s | p50 (ms) | p99 (ms) | RSS (MiB) |"
echo "|------|----|------------|----------|----------|-----------|"
printf '%s\n' "${ROWS[@]}"

#!/usr/bin/env bash
# Big stream and big bitmap benchmark: loads ENTRIES stream entries (ids 1-0, 2-0, ...) into
# one key on rockslot-server and on valkey-server 8.1.8 (appendonly everysec, as in bench.sh),
# then runs redis-benchmark on each: XADD with auto ids at the end, XRANGE of one entry by a
# random id, XREADGROUP of new entries through a consumer group, XPENDING; then SETBIT and
# GETBIT at random offsets of a bitmap of 2^32 bits and BITCOUNT of all of it. Prints
# requests/s, p50/p99 latency and RSS side by side, and the rockslot/valkey ratio.
#
# Environment:
#   ENTRIES     entries loaded before measuring (default 10000000)
#   REQUESTS    requests per redis-benchmark run (default 200000)
#   SERVERS     which servers to run (default "rockslot valkey")
#   CARGO_TARGET_DIR  where the release binary is (default ~/.cache/rockslot-target); this
#                script does not build
#
# Quick run:  ENTRIES=1000000 scripts/bench-stream.sh
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    "") ;;
    *) echo "bench-stream.sh: no arguments expected (see --help)" >&2; exit 2 ;;
esac

ENTRIES="${ENTRIES:-10000000}"
REQUESTS="${REQUESTS:-200000}"
SERVERS="${SERVERS:-rockslot valkey}"
die() { echo "bench-stream.sh: $*" >&2; exit 1; }
[[ "$ENTRIES" =~ ^[0-9]+$ ]] && [ "$ENTRIES" -ge 1000 ] || die "ENTRIES must be >= 1000"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rockslot-target}"
BIN="$CARGO_TARGET_DIR/release/rockslot-server"
[ -x "$BIN" ] || die "no $BIN; build it (cargo build --release --bins)"
command -v redis-benchmark >/dev/null || die "needs redis-benchmark (scripts/setup.sh)"
VK="$(bash scripts/valkey-bin.sh)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/rockslot-bench-stream.XXXXXX")"
PID=""
stop() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        PID=""
    fi
}
cleanup() { stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    for _ in $(seq 200); do
        p=$((21000 + RANDOM % 8000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "no free port"
}

rss() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$PID/status"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# One redis-benchmark run of a custom command: "rps p50 p99".
run() { # port randomkeys command...
    local port="$1" r="$2"
    shift 2
    redis-benchmark -p "$port" -r "$r" -n "$REQUESTS" -c 50 -P 1 "$@" 2>&1 \
        | tr '\r' '\n' | awk '
            /throughput summary/ { rps = $3 }
            /latency summary/ { getline; getline; p50 = $3; p99 = $5 }
            END { print rps, p50, p99 }'
}

# SETBIT and GETBIT at random offsets of a 2^32-bit bitmap, then BITCOUNT of all of it:
# "rps p50 p99" per line, from one client.
bitmap_run() { # port
    python3 - "$1" "$REQUESTS" <<'PY'
import random, sys, time
import redis
r = redis.Redis(port=int(sys.argv[1]))
n = int(sys.argv[2]) // 4
rng = random.Random(7)
def measure(fn, count):
    lat = []
    t0 = time.perf_counter()
    for _ in range(count):
        a = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - a)
    elapsed = time.perf_counter() - t0
    lat.sort()
    print("%.2f %.3f %.3f" % (count / elapsed, lat[count // 2] * 1000, lat[min(count - 1, count * 99 // 100)] * 1000))
measure(lambda: r.setbit("bitmap", rng.randrange(1 << 32), 1), n)
measure(lambda: r.getbit("bitmap", rng.randrange(1 << 32)), n)
measure(lambda: r.bitcount("bitmap"), 5)
PY
}

declare -A RES
for server in $SERVERS; do
    port=$(free_port)
    mkdir -p "$TMP/$server"
    case "$server" in
        rockslot) "$BIN" --bind 127.0.0.1 --port "$port" --dir "$TMP/$server" --appendfsync everysec \
            >"$TMP/$server.log" 2>&1 & ;;
        valkey) "$VK/valkey-server" --bind 127.0.0.1 --port "$port" --dir "$TMP/$server" \
            --appendonly yes --appendfsync everysec --save '' >"$TMP/$server.log" 2>&1 & ;;
        *) die "unknown server $server" ;;
    esac
    PID=$!
    for _ in $(seq 300); do
        [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ] && break
        kill -0 "$PID" 2>/dev/null || { tail -20 "$TMP/$server.log" >&2; die "$server exited"; }
        sleep 0.1
    done
    echo "$server: loading $ENTRIES entries ..." >&2
    t=$(now)
    python3 - "$ENTRIES" <<'PY' | redis-cli -p "$port" --pipe >"$TMP/load.out" 2>&1 || { tail -5 "$TMP/load.out" >&2; die "load failed"; }
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
for start in range(1, n + 1, 10000):
    parts = []
    for i in range(start, min(start + 10000, n + 1)):
        idb = b"%d-0" % i
        val = b"value-%016d" % i
        parts.append(b"*5\r\n$4\r\nXADD\r\n$6\r\nstream\r\n$%d\r\n%s\r\n$5\r\nfield\r\n$%d\r\n%s\r\n"
                     % (len(idb), idb, len(val), val))
    out.write(b"".join(parts))
PY
    grep -q "errors: 0, replies: $ENTRIES\$" "$TMP/load.out" || { cat "$TMP/load.out" >&2; die "load reported errors"; }
    RES[$server,load]=$(since "$t")
    RES[$server,rss_load]=$(rss)
    RES[$server,xlen]=$(redis-cli -p "$port" XLEN stream)
    redis-cli -p "$port" XGROUP CREATE stream readers '$' >/dev/null
    RES[$server,xadd]=$(run "$port" 1 XADD stream '*' field value-of-some-length)
    RES[$server,xrange]=$(run "$port" "$ENTRIES" XRANGE stream __rand_int__ + COUNT 1)
    # The group reads the entries XADD just appended, ten at a time.
    RES[$server,xreadgroup]=$(run "$port" 1 XREADGROUP GROUP readers c COUNT 10 STREAMS stream '>')
    RES[$server,xpending]=$(run "$port" 1 XPENDING stream readers)
    RES[$server,rss]=$(rss)
    # Random bit offsets (redis-benchmark's __rand_int__ is zero-padded, which SETBIT
    # refuses): one redis-py client, one command at a time.
    bitmap_run "$port" >"$TMP/bitmap.out"
    RES[$server,setbit]=$(sed -n 1p "$TMP/bitmap.out")
    RES[$server,getbit]=$(sed -n 2p "$TMP/bitmap.out")
    RES[$server,bitcount]=$(sed -n 3p "$TMP/bitmap.out")
    RES[$server,bits]=$(redis-cli -p "$port" BITCOUNT bitmap)
    RES[$server,rss_bitmap]=$(rss)
    stop
done

echo
echo "Stream of $ENTRIES entries (one key), redis-benchmark -c 50 -P 1 -n $REQUESTS;"
echo "bitmap of 2^32 bits: $((REQUESTS / 4)) SETBIT then GETBIT at random offsets and 5 BITCOUNT, one client"
for server in $SERVERS; do
    echo "$server: loaded in ${RES[$server,load]} s with redis-cli --pipe, XLEN ${RES[$server,xlen]}, RSS after load ${RES[$server,rss_load]} MiB, after the stream commands ${RES[$server,rss]} MiB, after the bitmap (${RES[$server,bits]} bits set) ${RES[$server,rss_bitmap]} MiB"
done
echo "| command | server | requests/s | p50 (ms) | p99 (ms) |"
echo "|---------|--------|------------|----------|----------|"
for cmd in xadd xrange xreadgroup xpending setbit getbit bitcount; do
    for server in $SERVERS; do
        read -r rps p50 p99 <<<"${RES[$server,$cmd]}"
        printf '| %-10s | %-8s | %10s | %8s | %8s |\n' "${cmd^^}" "$server" "$rps" "$p50" "$p99"
    done
done
if [[ " $SERVERS " == *" rockslot "* && " $SERVERS " == *" valkey "* ]]; then
    for cmd in xadd xrange xreadgroup xpending setbit getbit bitcount; do
        read -r a _ <<<"${RES[rockslot,$cmd]}"
        read -r b _ <<<"${RES[valkey,$cmd]}"
        awk -v c="${cmd^^}" -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%s rockslot/valkey %.2f\n", c, a / b }'
    done
fi

#!/usr/bin/env bash
# Throughput of rockslot vs valkey-server 8.1.8 and Debian's redis-server, side by side, with
# redis-benchmark. All servers persist with appendfsync everysec (redis: AOF on, RDB snapshots off).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    cat <<'USAGE'
usage: scripts/bench.sh [-n REQUESTS] [-c CLIENTS] [-t TESTS] [-r KEYSPACE] [-d BYTES] [-k ROUNDS]

Builds rockslot-server (release), starts it, valkey-server 8.1.8 and redis-server on free
loopback ports with temporary data dirs, runs `redis-benchmark -q -t TESTS -n REQUESTS -c
CLIENTS -P 1` and `-P 16` against each, ROUNDS times in turn (rockslot, redis, valkey, then
again), and prints each server's median requests/s side by side with ratios to both peers,
then each server's RSS. All servers are stopped and their data removed on exit.

  -n REQUESTS   requests per test (default 200000)
  -c CLIENTS    parallel connections (default 50)
  -t TESTS      redis-benchmark tests (default set,get; "all" = its full default list)
  -r KEYSPACE   random keys from a keyspace of this size (default: the single default key)
  -d BYTES      value size (default 3, redis-benchmark's own)
  -k ROUNDS     runs per server and pipeline depth; the median is reported (default 3):
                one run varies by 20-30% between runs on a small machine
  -h, --help    this help

Environment: CARGO_TARGET_DIR (default $HOME/.cache/rockslot-target).
USAGE
}

REQUESTS=200000
CLIENTS=50
TESTS=set,get
KEYSPACE=
DATASIZE=
ROUNDS=3
while [ $# -gt 0 ]; do
    case "$1" in
        -n) REQUESTS="$2"; shift 2 ;;
        -c) CLIENTS="$2"; shift 2 ;;
        -t) TESTS="$2"; shift 2 ;;
        -r) KEYSPACE="$2"; shift 2 ;;
        -d) DATASIZE="$2"; shift 2 ;;
        -k) ROUNDS="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rockslot-target}"
cargo build --release --bin rockslot-server
BIN="$CARGO_TARGET_DIR/release/rockslot-server"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/rockslot-bench.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((21000 + RANDOM % 1500))
        if port_free "$p" && port_free $((p + 10000)); then
            echo "$p"
            return
        fi
    done
    echo "bench.sh: no free port" >&2
    exit 1
}
wait_ready() { # port name log
    for _ in $(seq 600); do
        [ "$(redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    echo "bench.sh: $2 did not become ready on port $1; log tail:" >&2
    tail -n 30 "$3" >&2
    exit 1
}

RS_PORT=$(free_port)
mkdir -p "$TMP/rockslot"
"$BIN" --bind 127.0.0.1 --port "$RS_PORT" --dir "$TMP/rockslot" --appendfsync everysec \
    >"$TMP/rockslot.log" 2>&1 &
RS_PID=$!
PIDS+=($RS_PID)
wait_ready "$RS_PORT" rockslot-server "$TMP/rockslot.log"

RD_PORT=$(free_port)
while [ "$RD_PORT" = "$RS_PORT" ]; do RD_PORT=$(free_port); done
mkdir -p "$TMP/redis"
redis-server --bind 127.0.0.1 --port "$RD_PORT" --appendonly yes --appendfsync everysec \
    --save "" --dir "$TMP/redis" --daemonize no >"$TMP/redis.log" 2>&1 &
RD_PID=$!
PIDS+=($RD_PID)
wait_ready "$RD_PORT" redis-server "$TMP/redis.log"

VK_BIN="$(bash scripts/valkey-bin.sh)"
VK_PORT=$(free_port)
while [ "$VK_PORT" = "$RS_PORT" ] || [ "$VK_PORT" = "$RD_PORT" ]; do VK_PORT=$(free_port); done
mkdir -p "$TMP/valkey"
"$VK_BIN/valkey-server" --bind 127.0.0.1 --port "$VK_PORT" --appendonly yes --appendfsync everysec \
    --save "" --dir "$TMP/valkey" --daemonize no >"$TMP/valkey.log" 2>&1 &
VK_PID=$!
PIDS+=($VK_PID)
wait_ready "$VK_PORT" valkey-server "$TMP/valkey.log"

# Prints "TEST rps" lines for one run.
bench() { # port pipeline
    local tests=(-t "$TESTS")
    [ "$TESTS" = all ] && tests=()
    [ -n "$KEYSPACE" ] && tests+=(-r "$KEYSPACE")
    [ -n "$DATASIZE" ] && tests+=(-d "$DATASIZE")
    redis-benchmark -h 127.0.0.1 -p "$1" -q "${tests[@]}" -n "$REQUESTS" -c "$CLIENTS" -P "$2" 2>&1 \
        | tr '\r' '\n' | awk -F': ' '/ requests per second/ { split($2, a, " "); print $1 "\t" a[1] }'
}

# The median requests/s per test of several "TEST rps" runs.
median() {
    awk -F'\t' '{ v[$1] = v[$1] " " $2; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
        END {
            for (i = 0; i < n; i++) {
                t = order[i]; k = split(v[t], a, " ")
                for (x = 1; x <= k; x++) for (y = x + 1; y <= k; y++) if (a[y] < a[x]) { s = a[x]; a[x] = a[y]; a[y] = s }
                print t "\t" a[int((k + 1) / 2)]
            }
        }'
}

echo "redis-benchmark -n $REQUESTS -c $CLIENTS, appendfsync everysec, median of $ROUNDS rounds; rockslot :$RS_PORT, $(redis-server --version | awk '{print $1, $3}') :$RD_PORT" >&2
ROWS=()
for P in 1 16; do
    rs_all="" rd_all="" vk_all=""
    for round in $(seq "$ROUNDS"); do
        echo "  running -P $P, round $round ..." >&2
        rs_all+="$(bench "$RS_PORT" "$P")"$'\n'
        rd_all+="$(bench "$RD_PORT" "$P")"$'\n'
        vk_all+="$(bench "$VK_PORT" "$P")"$'\n'
    done
    rs="$(printf '%s' "$rs_all" | grep . | median)"
    rd="$(printf '%s' "$rd_all" | grep . | median)"
    vk="$(printf '%s' "$vk_all" | grep . | median)"
    while IFS=$'\t' read -r test rps; do
        [ -n "$test" ] || continue
        other="$(printf '%s\n' "$rd" | awk -F'\t' -v t="$test" '$1 == t { print $2 }')"
        valkey="$(printf '%s\n' "$vk" | awk -F'\t' -v t="$test" '$1 == t { print $2 }')"
        ROWS+=("$test"$'\t'"$P"$'\t'"$rps"$'\t'"${other:-n/a}"$'\t'"${valkey:-n/a}")
    done <<<"$rs"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
printf '| %-8s | %-8s | %12s | %12s | %8s | %12s | %8s |\n' test pipeline "rockslot rps" "valkey rps" "/valkey" "redis rps" "/redis"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ---------- ---------- -------------- -------------- ---------- -------------- ----------
for row in "${ROWS[@]}"; do
    IFS=$'\t' read -r test p rs rd vk <<<"$row"
    printf '| %-8s | %-8s | %12.0f | %12s | %8s | %12s | %8s |\n' "$test" "$p" "$rs" "$vk" "$(ratio "$rs" "$vk")" "$rd" "$(ratio "$rs" "$rd")"
done
rss() { awk '/^VmRSS/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo n/a; }
echo "RSS after the run: rockslot $(rss "$RS_PID"), valkey $(rss "$VK_PID"), redis $(rss "$RD_PID")"
